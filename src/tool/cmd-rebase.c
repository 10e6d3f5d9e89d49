/*
 * cmd-rebase.c — `ebmd-train rebase`: the model with the rows of a CSV as
 * its new reference set (API.md section 6, "Re-baselining"), through
 * ebm_model_rebase(): the same weights and standardization, energies
 * recomputed and sorted, the same bounds as train (the model's recorded
 * reference_min and reference_max), written atomically like train's
 * output. The model's own file is never the output.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tool/tool.h"
#include "util/util.h"

static const char help[] =
	"Usage: " EBM_TOOL_PROG " rebase --model MODEL.ebm --data FILE.csv "
	"--out NEW.ebm [options]\n"
	"\n"
	"Write NEW.ebm: MODEL.ebm with the rows of FILE.csv as its reference\n"
	"set (energies recomputed and sorted), keeping its weights and\n"
	"standardization, so that p-values are taken against today's normal\n"
	"without retraining. Columns are matched to the model's features by\n"
	"name (any order). The number of rows must be within the model's\n"
	"reference_min..reference_max (its training options; 50..5000 by\n"
	"default). NEW.ebm is replaced only once complete and must not be\n"
	"MODEL.ebm itself.\n"
	"\n"
	"Options:\n"
	"  --model FILE          the model (.ebm)\n"
	"  --data FILE           CSV with a header row\n"
	"  --out FILE            the new model\n"
	"  --label-column NAME   a column that is not a feature (default\n"
	"                        'label', when present; a name given explicitly\n"
	"                        must exist)\n"
	"  --normal-only         keep only the rows labelled 0\n"
	"  -h, --help            show this help\n";

enum { OPT_MODEL, OPT_DATA, OPT_OUT, OPT_LABEL, OPT_NORMAL };

static const struct ebm_tool_opt opts[] = {
	[OPT_MODEL] = { "--model", true },
	[OPT_DATA] = { "--data", true },
	[OPT_OUT] = { "--out", true },
	[OPT_LABEL] = { "--label-column", true },
	[OPT_NORMAL] = { "--normal-only", false },
};

/* `key`'s value in the model's "key=value\n" training options, or def. */
static uint64_t option_u64(const struct ebm_model *m, const char *key,
		uint64_t def)
{
	const char *s = ebm_model_training_options(m);
	size_t len = strlen(key);
	while (s != NULL && *s != '\0') {
		if (strncmp(s, key, len) == 0 && s[len] == '=') {
			char *end;
			unsigned long long v = strtoull(s + len + 1, &end, 10);
			return end != s + len + 1 && (*end == '\n' || *end == '\0')
					? (uint64_t)v : def;
		}
		s = strchr(s, '\n');
		s = s != NULL ? s + 1 : NULL;
	}
	return def;
}

/* True when a and b name the same existing file. */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	if (strcmp(a, b) == 0) {
		return true;
	}
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev
			&& sa.st_ino == sb.st_ino;
}

/* The rows of `data` to adopt (labelled 0 with normal_only), malloc'ed. */
static float *pick_rows(const struct ebm_tool_data *data, bool normal_only,
		size_t *n_out, uint64_t **lines_out)
{
	float *x = ebm_alloc_array(data->n_rows > 0 ? data->n_rows : 1,
			data->d * sizeof(float));
	uint64_t *lines = ebm_alloc_array(data->n_rows > 0 ? data->n_rows : 1,
			sizeof(*lines));
	if (x == NULL || lines == NULL) {
		free(x);
		free(lines);
		ebm_tool_error("%s: out of memory for %zu rows", data->path,
				data->n_rows);
		return NULL;
	}
	size_t n = 0;
	for (size_t i = 0; i < data->n_rows; i++) {
		if (normal_only && data->labels[i] != 0.0f) {
			continue;
		}
		memcpy(x + n * data->d, data->x + i * data->d,
				data->d * sizeof(float));
		lines[n++] = data->lines[i];
	}
	*n_out = n;
	*lines_out = lines;
	return x;
}

int ebm_tool_cmd_rebase(int argc, char **argv)
{
	const char *model_path = NULL;
	const char *data_path = NULL;
	const char *out_path = NULL;
	const char *label = "label";
	bool label_given = false;
	bool normal_only = false;

	struct ebm_tool_args a;
	ebm_tool_args_init(&a, "rebase", argc, argv);
	for (;;) {
		int k = ebm_tool_args_next(&a, opts, sizeof(opts) / sizeof(opts[0]));
		if (k == EBM_TOOL_ARG_END) {
			break;
		}
		switch (k) {
		case EBM_TOOL_ARG_HELP:
			fputs(help, stdout);
			return EBM_TOOL_EXIT_OK;
		case EBM_TOOL_ARG_POSITIONAL:
			return ebm_tool_usage_error("rebase",
					"unexpected argument '%s'", a.value);
		case OPT_MODEL:
			model_path = a.value;
			break;
		case OPT_DATA:
			data_path = a.value;
			break;
		case OPT_OUT:
			out_path = a.value;
			break;
		case OPT_LABEL:
			label = a.value;
			label_given = true;
			break;
		case OPT_NORMAL:
			normal_only = true;
			break;
		default:
			return EBM_TOOL_EXIT_USAGE;
		}
	}
	if (model_path == NULL || data_path == NULL || out_path == NULL) {
		return ebm_tool_usage_error("rebase", "missing --%s",
				model_path == NULL ? "model"
				: data_path == NULL ? "data" : "out");
	}
	if (same_file(model_path, out_path)) {
		return ebm_tool_usage_error("rebase", "--out '%s' is the model "
				"itself; write the new model elsewhere (ebmd reloads it "
				"when it replaces the old file)", out_path);
	}

	int rc = EBM_TOOL_EXIT_FAILURE;
	struct ebm_tool_data data = { 0 };
	struct ebm_model *m = NULL, *next = NULL;
	struct ebm_ctx *ctx = NULL;
	float *x = NULL;
	uint64_t *lines = NULL;
	size_t n = 0;
	m = ebm_tool_model_load(model_path);
	if (m == NULL) {
		goto out;
	}
	if (!ebm_tool_data_load(data_path, m, label, label_given || normal_only,
			&data)) {
		goto out;
	}
	if (normal_only && data.labels == NULL) {
		ebm_tool_error("%s: --normal-only needs the label column '%s'",
				data_path, label);
		goto out;
	}
	x = pick_rows(&data, normal_only, &n, &lines);
	if (x == NULL) {
		goto out;
	}
	uint64_t lo = option_u64(m, "reference_min", 50);
	uint64_t hi = option_u64(m, "reference_max", 5000);
	if (n < lo || n > hi) {
		ebm_tool_error("%s: %zu %srows; the reference set of %s needs "
				"%" PRIu64 "..%" PRIu64 " (its reference_min and "
				"reference_max)", data_path, n,
				normal_only ? "normal " : "", model_path, lo, hi);
		goto out;
	}
	ctx = ebm_ctx_create();
	if (ctx == NULL) {
		ebm_tool_error("out of memory");
		goto out;
	}
	struct ebm_error err;
	ebm_error_clear(&err);
	enum ebm_status st = ebm_model_rebase(m, ctx, x, n, &next, &err);
	if (st == EBM_STATUS_NUMERIC && err.line >= 1 && err.line <= n) {
		ebm_tool_error("%s:%" PRIu64 ": energy is not finite", data_path,
				lines[err.line - 1]);
		goto out;
	}
	if (st != EBM_STATUS_OK) {
		ebm_tool_print_error(data_path, "cannot rebase", &err);
		goto out;
	}
	if (ebm_model_write_file(next, out_path, &err) != EBM_STATUS_OK) {
		ebm_tool_print_error(out_path, NULL, &err);
		goto out;
	}
	fprintf(stderr, "wrote %s (checksum %.12s, %zu reference rows; was "
			"%.12s with %zu)\n", out_path, ebm_model_checksum(next), n,
			ebm_model_checksum(m), ebm_model_n_ref(m));
	rc = EBM_TOOL_EXIT_OK;

out:
	ebm_ctx_destroy(ctx);
	free(x);
	free(lines);
	ebm_tool_data_finish(&data);
	ebm_model_destroy(next);
	ebm_model_destroy(m);
	return rc;
}
