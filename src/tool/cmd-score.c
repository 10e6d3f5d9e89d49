/*
 * cmd-score.c — `ebmd-train score`: scores every row of a CSV against a
 * model and writes energy,score,p_value,anomaly as CSV to stdout, one line
 * per input row in input order (API.md section 1 defines the numbers).
 * Empty cells are missing values, profiled out (API.md section 6); with
 * --imputed two more columns say which and with what.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tool/tool.h"
#include "util/util.h"

static const char help[] =
	"Usage: " EBM_TOOL_PROG " score --model MODEL.ebm --data FILE.csv "
	"[options]\n"
	"\n"
	"Score each row of FILE.csv and write CSV to standard output:\n"
	"  energy,score,p_value,anomaly\n"
	"one line per data row, in order; anomaly is 1 when p_value < alpha.\n"
	"Columns are matched to the model's features by name (any order).\n"
	"An empty cell is a missing value: the row is scored with it profiled\n"
	"out (energy minimized over it, the p-value against the reference set\n"
	"treated the same way).\n"
	"\n"
	"Options:\n"
	"  --model FILE          the model (.ebm)\n"
	"  --data FILE           CSV with a header row\n"
	"  --label-column NAME   a column that is not a feature and is ignored\n"
	"                        (default 'label', when present; a name given\n"
	"                        explicitly must exist)\n"
	"  --alpha A             significance level, 0 < A < 1 (default: the\n"
	"                        model's)\n"
	"  --imputed             two more columns: missing (the feature\n"
	"                        indices of the empty cells, ';'-separated) and\n"
	"                        imputed (their profiled values, raw units)\n"
	"  -h, --help            show this help\n";

enum { OPT_MODEL, OPT_DATA, OPT_LABEL, OPT_ALPHA, OPT_IMPUTED };

static const struct ebm_tool_opt opts[] = {
	[OPT_MODEL] = { "--model", true },
	[OPT_DATA] = { "--data", true },
	[OPT_LABEL] = { "--label-column", true },
	[OPT_ALPHA] = { "--alpha", true },
	[OPT_IMPUTED] = { "--imputed", false },
};

/* ",missing,imputed" cells of one row: indices and values of its NaNs. */
static void print_imputed(const float *x, const float *done, size_t d)
{
	const char *sep = ",";
	for (size_t j = 0; j < d; j++) {
		if (isnan(x[j])) {
			printf("%s%zu", sep, j);
			sep = ";";
		}
	}
	if (sep[0] == ',') {
		putchar(',');
	}
	sep = ",";
	for (size_t j = 0; j < d; j++) {
		if (isnan(x[j])) {
			printf("%s%.9g", sep, (double)done[j]);
			sep = ";";
		}
	}
	if (sep[0] == ',') {
		putchar(',');
	}
}

int ebm_tool_cmd_score(int argc, char **argv)
{
	const char *model_path = NULL;
	const char *data_path = NULL;
	const char *label = "label";
	bool label_given = false;
	double alpha = 0;
	bool alpha_given = false;
	bool imputed = false;

	struct ebm_tool_args a;
	ebm_tool_args_init(&a, "score", argc, argv);
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
			return ebm_tool_usage_error("score",
					"unexpected argument '%s'", a.value);
		case OPT_MODEL:
			model_path = a.value;
			break;
		case OPT_DATA:
			data_path = a.value;
			break;
		case OPT_LABEL:
			label = a.value;
			label_given = true;
			break;
		case OPT_ALPHA:
			if (!ebm_tool_parse_double("--alpha", a.value,
					EBM_TOOL_RANGE_OPEN_UNIT, &alpha)) {
				return EBM_TOOL_EXIT_USAGE;
			}
			alpha_given = true;
			break;
		case OPT_IMPUTED:
			imputed = true;
			break;
		default:
			return EBM_TOOL_EXIT_USAGE;
		}
	}
	if (model_path == NULL || data_path == NULL) {
		return ebm_tool_usage_error("score", "missing --%s",
				model_path == NULL ? "model" : "data");
	}

	int rc = EBM_TOOL_EXIT_FAILURE;
	struct ebm_tool_data data = { 0 };
	struct ebm_score *s = NULL;
	float *done = NULL;
	struct ebm_model *m = ebm_tool_model_load(model_path);
	if (m == NULL) {
		goto out;
	}
	if (!alpha_given) {
		alpha = ebm_tool_float_value(ebm_model_alpha(m));
	}
	if (!ebm_tool_data_load_missing(data_path, m, label, label_given,
			&data)) {
		goto out;
	}
	s = ebm_alloc_array(data.n_rows, sizeof(*s));
	if (imputed) {
		done = ebm_alloc_array(data.n_rows, data.d * sizeof(float));
	}
	if (s == NULL || (imputed && done == NULL)) {
		ebm_tool_error("%s: out of memory for %zu rows", data_path,
				data.n_rows);
		goto out;
	}
	/* Everything is scored before anything is printed, so that a bad
	 * row leaves no half-written output behind. */
	if (!ebm_tool_data_score_missing(&data, m, alpha, s, done)) {
		goto out;
	}
	puts(imputed ? "energy,score,p_value,anomaly,missing,imputed"
			: "energy,score,p_value,anomaly");
	for (size_t i = 0; i < data.n_rows; i++) {
		printf("%.9g,%.9g,%.9g,%d", (double)s[i].energy,
				(double)s[i].score, s[i].p_value, s[i].anomaly ? 1 : 0);
		if (imputed) {
			print_imputed(data.x + i * data.d, done + i * data.d, data.d);
		}
		putchar('\n');
	}
	rc = EBM_TOOL_EXIT_OK;

out:
	free(s);
	free(done);
	ebm_tool_data_finish(&data);
	ebm_model_destroy(m);
	return rc;
}
