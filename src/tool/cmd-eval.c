/*
 * cmd-eval.c — `ebmd-train eval`: scores a labelled CSV (1 = anomaly,
 * 0 = normal) and reports detection quality: AUROC and AUPRC over the
 * energy ranking, and precision/recall/F1 of the decision p_value < alpha.
 * Text for people, one JSON object with --json. The arithmetic is in
 * detection-metrics.c.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "tool/tool.h"
#include "util/util.h"

static const char help[] =
	"Usage: " EBM_TOOL_PROG " eval --model MODEL.ebm --data FILE.csv "
	"[options]\n"
	"\n"
	"Score labelled rows and print AUROC, AUPRC (average precision) and\n"
	"precision/recall/F1 of 'anomaly' (p_value < alpha), with counts.\n"
	"Rows are ranked by energy (higher = more anomalous); tied energies\n"
	"share their rank. Columns are matched to the model's features by\n"
	"name (any order).\n"
	"\n"
	"An empty cell is a missing value, profiled out as in 'score'. When\n"
	"some row has one, rows are ranked by p_value instead (ascending, ties\n"
	"by score): energies with different features profiled out are not\n"
	"comparable, p-values are.\n"
	"\n"
	"Options:\n"
	"  --model FILE          the model (.ebm)\n"
	"  --data FILE           CSV with a header row and a label column\n"
	"  --label-column NAME   the label column: 1 = anomaly, 0 = normal\n"
	"                        (default 'label'; required)\n"
	"  --alpha A             significance level, 0 < A < 1 (default: the\n"
	"                        model's)\n"
	"  --json                print one JSON object instead of text\n"
	"  -h, --help            show this help\n"
	"\n"
	"AUROC is null when every row has the same label; AUPRC is null when\n"
	"no row is an anomaly. Precision with nothing flagged, and F1 when\n"
	"precision and recall are both 0, are reported as 0.\n";

enum { OPT_MODEL, OPT_DATA, OPT_LABEL, OPT_ALPHA, OPT_JSON };

static const struct ebm_tool_opt opts[] = {
	[OPT_MODEL] = { "--model", true },
	[OPT_DATA] = { "--data", true },
	[OPT_LABEL] = { "--label-column", true },
	[OPT_ALPHA] = { "--alpha", true },
	[OPT_JSON] = { "--json", false },
};

struct report {
	const char *model;
	const char *data;
	const char *label;
	double alpha;
	size_t n_rows, n_anomalies, n_flagged;
	double auroc, auprc;
	struct ebm_tool_confusion c;
	const char *note;
};

static json_t *number_or_null(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

static bool print_json(const struct report *r)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:I, s:I, s:I, s:o, s:o, "
			"s:f, s:f, s:f, s:I, s:I, s:I, s:I}",
			"model", r->model, "data", r->data, "label_column", r->label,
			"alpha", r->alpha,
			"rows", (json_int_t)r->n_rows,
			"anomalies", (json_int_t)r->n_anomalies,
			"flagged", (json_int_t)r->n_flagged,
			"auroc", number_or_null(r->auroc),
			"auprc", number_or_null(r->auprc),
			"precision", ebm_tool_precision(&r->c),
			"recall", ebm_tool_recall(&r->c),
			"f1", ebm_tool_f1(&r->c),
			"tp", (json_int_t)r->c.tp, "fp", (json_int_t)r->c.fp,
			"fn", (json_int_t)r->c.fn, "tn", (json_int_t)r->c.tn);
	if (o == NULL) {
		return false;
	}
	if (r->note != NULL
			&& json_object_set_new(o, "note", json_string(r->note)) != 0) {
		json_decref(o);
		return false;
	}
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER
			| JSON_REAL_PRECISION(15));
	json_decref(o);
	if (text == NULL) {
		return false;
	}
	printf("%s\n", text);
	free(text);
	return true;
}

static void print_metric(const char *name, double v, const char *why)
{
	if (isnan(v)) {
		printf("%-10s n/a (%s)\n", name, why != NULL ? why : "undefined");
	} else {
		printf("%-10s %.4f\n", name, v);
	}
}

static void print_text(const struct report *r)
{
	printf("%-10s %s\n", "model", r->model);
	printf("%-10s %s\n", "data", r->data);
	printf("%-10s %zu\n", "rows", r->n_rows);
	printf("%-10s %zu\n", "anomalies", r->n_anomalies);
	printf("%-10s %zu (p_value < alpha = %g)\n", "flagged", r->n_flagged,
			r->alpha);
	print_metric("AUROC", r->auroc, "needs both labels");
	print_metric("AUPRC", r->auprc, "needs at least one anomaly");
	print_metric("precision", ebm_tool_precision(&r->c), NULL);
	print_metric("recall", ebm_tool_recall(&r->c), NULL);
	print_metric("F1", ebm_tool_f1(&r->c), NULL);
	if (r->note != NULL) {
		printf("note: %s\n", r->note);
	}
}

/* Labels must be exactly 0 or 1: anything else is a data error. */
static bool read_labels(const struct ebm_tool_data *data, bool *label)
{
	for (size_t i = 0; i < data->n_rows; i++) {
		float v = data->labels[i];
		if (v != 0.0f && v != 1.0f) {
			ebm_tool_error("%s:%" PRIu64 ": label must be 0 or 1, got %g",
					data->path, data->lines[i], (double)v);
			return false;
		}
		label[i] = v == 1.0f;
	}
	return true;
}

static bool evaluate(const struct ebm_tool_data *data,
		const struct ebm_model *m, struct report *r)
{
	bool ok = false;
	size_t n = data->n_rows;
	struct ebm_score *s = ebm_alloc_array(n, sizeof(*s));
	double *energy = ebm_alloc_array(n, sizeof(*energy));
	bool *label = ebm_alloc_array(n, sizeof(*label));
	bool *flagged = ebm_alloc_array(n, sizeof(*flagged));
	if (s == NULL || energy == NULL || label == NULL || flagged == NULL) {
		ebm_tool_error("%s: out of memory for %zu rows", data->path, n);
		goto out;
	}
	if (!read_labels(data, label) || !ebm_tool_data_score_missing(data, m,
			r->alpha, s, NULL)) {
		goto out;
	}
	r->n_rows = n;
	/* With holes: 1 - p_value, ties broken by score with a term below
	 * half the p-values' grid step 1 / (n_ref + 1). */
	double step = 1.0 / ((double)ebm_model_n_ref(m) + 1.0);
	for (size_t i = 0; i < n; i++) {
		energy[i] = !data->missing ? s[i].energy : 1.0 - s[i].p_value
				+ atan((double)s[i].score) / 3.14159265358979 * 0.9 * step;
		flagged[i] = s[i].anomaly;
		r->n_anomalies += label[i] ? 1 : 0;
		r->n_flagged += flagged[i] ? 1 : 0;
	}
	if (!ebm_auroc(energy, label, n, &r->auroc)
			|| !ebm_tool_auprc(energy, label, n, &r->auprc)) {
		ebm_tool_error("%s: out of memory for %zu rows", data->path, n);
		goto out;
	}
	ebm_tool_confusion_count(flagged, label, n, &r->c);
	if (r->n_anomalies == 0) {
		r->note = "every row is labelled 0: AUROC and AUPRC are undefined";
	} else if (r->n_anomalies == n) {
		r->note = "every row is labelled 1: AUROC is undefined";
	}
	ok = true;

out:
	free(flagged);
	free(label);
	free(energy);
	free(s);
	return ok;
}

int ebm_tool_cmd_eval(int argc, char **argv)
{
	struct report r = { .label = "label", .auroc = NAN, .auprc = NAN };
	bool alpha_given = false;
	bool json = false;

	struct ebm_tool_args a;
	ebm_tool_args_init(&a, "eval", argc, argv);
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
			return ebm_tool_usage_error("eval",
					"unexpected argument '%s'", a.value);
		case OPT_MODEL:
			r.model = a.value;
			break;
		case OPT_DATA:
			r.data = a.value;
			break;
		case OPT_LABEL:
			r.label = a.value;
			break;
		case OPT_ALPHA:
			if (!ebm_tool_parse_double("--alpha", a.value,
					EBM_TOOL_RANGE_OPEN_UNIT, &r.alpha)) {
				return EBM_TOOL_EXIT_USAGE;
			}
			alpha_given = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		default:
			return EBM_TOOL_EXIT_USAGE;
		}
	}
	if (r.model == NULL || r.data == NULL) {
		return ebm_tool_usage_error("eval", "missing --%s",
				r.model == NULL ? "model" : "data");
	}

	int rc = EBM_TOOL_EXIT_FAILURE;
	struct ebm_tool_data data = { 0 };
	struct ebm_model *m = ebm_tool_model_load(r.model);
	if (m == NULL) {
		goto out;
	}
	if (!alpha_given) {
		r.alpha = ebm_tool_float_value(ebm_model_alpha(m));
	}
	if (!ebm_tool_data_load_missing(r.data, m, r.label, true, &data)) {
		goto out;
	}
	if (data.n_rows == 0) {
		ebm_tool_error("%s: no data rows", r.data);
		goto out;
	}
	if (!evaluate(&data, m, &r)) {
		goto out;
	}
	if (json) {
		if (!print_json(&r)) {
			ebm_tool_error("out of memory building the JSON report");
			goto out;
		}
	} else {
		print_text(&r);
	}
	rc = EBM_TOOL_EXIT_OK;

out:
	ebm_tool_data_finish(&data);
	ebm_model_destroy(m);
	return rc;
}
