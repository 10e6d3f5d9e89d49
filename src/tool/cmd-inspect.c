/*
 * cmd-inspect.c — `ebmd-train inspect MODEL.ebm`: loads and validates a
 * model file and prints its info object (src/info/model-info.c) as
 * pretty JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "info/info.h"
#include "tool/tool.h"

static const char help[] =
	"Usage: " EBM_TOOL_PROG " inspect MODEL.ebm\n"
	"\n"
	"Validate a model file completely and print what it holds as JSON:\n"
	"name (the file stem), version (first 12 hex digits of the checksum),\n"
	"features, feature_names (or null), alpha, reference_size, objective,\n"
	"hidden, created, checksum, loaded_at (now), members, activation,\n"
	"seed and training_options (the options it was trained with).\n"
	"\n"
	"Exit status: 0 valid, 1 unreadable or malformed, 2 usage error.\n";

int ebm_tool_cmd_inspect(int argc, char **argv)
{
	struct ebm_tool_args a;
	const char *path = NULL;
	ebm_tool_args_init(&a, "inspect", argc, argv);
	for (;;) {
		int k = ebm_tool_args_next(&a, NULL, 0);
		if (k == EBM_TOOL_ARG_END) {
			break;
		}
		switch (k) {
		case EBM_TOOL_ARG_HELP:
			fputs(help, stdout);
			return EBM_TOOL_EXIT_OK;
		case EBM_TOOL_ARG_POSITIONAL:
			if (path != NULL) {
				return ebm_tool_usage_error("inspect",
						"one model file only, got '%s' and '%s'",
						path, a.value);
			}
			path = a.value;
			break;
		default:
			return EBM_TOOL_EXIT_USAGE;
		}
	}
	if (path == NULL) {
		return ebm_tool_usage_error("inspect", "missing MODEL.ebm");
	}

	struct ebm_model *m = ebm_tool_model_load(path);
	if (m == NULL) {
		return EBM_TOOL_EXIT_FAILURE;
	}
	int rc = EBM_TOOL_EXIT_FAILURE;
	char name[256];
	json_t *info = ebm_info_model(m,
			ebm_tool_model_name(path, name, sizeof(name)),
			ebm_tool_float_value(ebm_model_alpha(m)), time(NULL));
	char *text = NULL;
	if (info != NULL) {
		text = json_dumps(info, JSON_INDENT(2) | JSON_PRESERVE_ORDER
				| JSON_REAL_PRECISION(15));
	}
	if (text == NULL) {
		ebm_tool_error("%s: out of memory building the model info", path);
		goto out;
	}
	printf("%s\n", text);
	rc = EBM_TOOL_EXIT_OK;

out:
	free(text);
	json_decref(info);
	ebm_model_destroy(m);
	return rc;
}
