/*
 * data.c — CSV rows for an existing model (eval and score): reads the
 * file with the CSV module, lines its columns up with the model's features
 * (by name when the model has names, else by position), scores rows in
 * blocks, and turns library errors into messages that name the file and
 * line. Loading a model file lives here too, for the same messages.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv/csv.h"
#include "ebm/missing.h"
#include "tool/tool.h"
#include "util/util.h"

/* Rows scored per library call: bounds scratch memory, not a tuning knob. */
#define SCORE_BLOCK 4096

struct ebm_model *ebm_tool_model_load(const char *path)
{
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_model_load_file(path, &m, &err) != EBM_STATUS_OK) {
		ebm_tool_print_error(path, NULL, &err);
		return NULL;
	}
	return m;
}

/*
 * Fills col[j] = table column of model feature j. The counts are compared
 * first so that a file with a wrong number of features always says both
 * numbers; with names, the message adds the first column at fault.
 */
static bool match_columns(const char *path, const struct ebm_table *t,
		const struct ebm_model *m, size_t *col)
{
	size_t d = ebm_model_n_features(m);
	bool named = d > 0 && ebm_model_feature_name(m, 0) != NULL;
	if (!named) {
		if (t->n_cols != d) {
			ebm_tool_error("%s: %zu feature columns, but the model "
					"has %zu features", path, t->n_cols, d);
			return false;
		}
		for (size_t j = 0; j < d; j++) {
			col[j] = j;
		}
		return true;
	}

	/* The table's own name index (util/names.c), for d lookups. */
	const char *const *names = (const char *const *)t->names;
	uint32_t *order = ebm_names_sort(names, t->n_cols);
	if (order == NULL) {
		ebm_tool_error("%s: out of memory indexing %zu columns", path,
				t->n_cols);
		return false;
	}
	const char *missing = NULL;
	for (size_t j = 0; j < d; j++) {
		const char *name = ebm_model_feature_name(m, j);
		long k = ebm_names_find(names, order, t->n_cols, name);
		col[j] = k >= 0 ? (size_t)k : t->n_cols;
		if (k < 0 && missing == NULL) {
			missing = name;
		}
	}
	free(order);
	const char *unknown = NULL;
	for (size_t k = 0; k < t->n_cols && unknown == NULL; k++) {
		if (ebm_model_feature_index(m, t->names[k]) < 0) {
			unknown = t->names[k];
		}
	}
	char detail[512] = "";
	if (missing != NULL) {
		snprintf(detail, sizeof(detail), "missing feature column '%s'",
				missing);
	} else if (unknown != NULL) {
		snprintf(detail, sizeof(detail), "unknown column '%s' (not a "
				"feature of the model; --label-column names a column "
				"to leave out)", unknown);
	}
	if (t->n_cols != d) {
		ebm_tool_error("%s: %zu feature columns, but the model has %zu "
				"features%s%s", path, t->n_cols, d,
				detail[0] != '\0' ? "; " : "", detail);
		return false;
	}
	if (detail[0] != '\0') {
		ebm_tool_error("%s: %s", path, detail);
		return false;
	}
	/* Equal counts, every distinct model name found: a bijection. */
	return true;
}

static bool identity(const size_t *col, size_t d)
{
	for (size_t j = 0; j < d; j++) {
		if (col[j] != j) {
			return false;
		}
	}
	return true;
}

static bool data_load(const char *path, const struct ebm_model *m,
		const char *label_column, bool label_required, bool missing,
		struct ebm_tool_data *out);

bool ebm_tool_data_load(const char *path, const struct ebm_model *m,
		const char *label_column, bool label_required,
		struct ebm_tool_data *out)
{
	return data_load(path, m, label_column, label_required, false, out);
}

bool ebm_tool_data_load_missing(const char *path, const struct ebm_model *m,
		const char *label_column, bool label_required,
		struct ebm_tool_data *out)
{
	return data_load(path, m, label_column, label_required, true, out);
}

static bool data_load(const char *path, const struct ebm_model *m,
		const char *label_column, bool label_required, bool missing,
		struct ebm_tool_data *out)
{
	memset(out, 0, sizeof(*out));
	out->path = path;
	size_t d = ebm_model_n_features(m);
	size_t *col = NULL;
	struct ebm_table *t = ebm_xcalloc(1, sizeof(*t));
	struct ebm_error err;
	ebm_error_clear(&err);

	enum ebm_status st = missing
			? ebm_csv_read_table_missing(path, label_column, label_required,
					t, &err)
			: ebm_csv_read_table(path, label_column, label_required, t,
					&err);
	if (st != EBM_STATUS_OK) {
		ebm_tool_print_error(path, NULL, &err);
		free(t);
		return false;
	}
	col = ebm_xcalloc(d ? d : 1, sizeof(*col));
	if (!match_columns(path, t, m, col)) {
		goto fail;
	}

	out->table = t;
	out->n_rows = t->n_rows;
	out->d = d;
	out->labels = t->labels;
	out->lines = t->lines;
	if (identity(col, d)) {
		out->x = t->data;
	} else {
		out->owned_x = ebm_alloc_array(t->n_rows, d * sizeof(float));
		if (out->owned_x == NULL) {
			ebm_tool_error("%s: out of memory for %zu rows", path,
					t->n_rows);
			out->table = NULL;
			goto fail;
		}
		for (size_t i = 0; i < t->n_rows; i++) {
			const float *src = t->data + i * t->n_cols;
			float *dst = out->owned_x + i * d;
			for (size_t j = 0; j < d; j++) {
				dst[j] = src[col[j]];
			}
		}
		out->x = out->owned_x;
	}
	for (size_t i = 0; missing && i < out->n_rows && !out->missing; i++) {
		out->missing = ebm_row_has_missing(out->x + i * d, d);
	}
	free(col);
	return true;

fail:
	free(col);
	ebm_table_finish(t);
	free(t);
	memset(out, 0, sizeof(*out));
	return false;
}

void ebm_tool_data_finish(struct ebm_tool_data *d)
{
	if (d->table != NULL) {
		ebm_table_finish(d->table);
		free(d->table);
	}
	free(d->owned_x);
	memset(d, 0, sizeof(*d));
}

bool ebm_tool_data_score(const struct ebm_tool_data *data,
		const struct ebm_model *m, double alpha, struct ebm_score *out)
{
	struct ebm_ctx *ctx = ebm_ctx_create();
	if (ctx == NULL) {
		ebm_tool_error("out of memory");
		return false;
	}
	bool ok = true;
	for (size_t i = 0; i < data->n_rows && ok; i += SCORE_BLOCK) {
		size_t n = data->n_rows - i;
		n = n < SCORE_BLOCK ? n : SCORE_BLOCK;
		struct ebm_error err;
		ebm_error_clear(&err);
		enum ebm_status st = ebm_model_score(m, ctx, data->x + i * data->d,
				n, alpha, out + i, &err);
		if (st == EBM_STATUS_OK) {
			continue;
		}
		ok = false;
		/* err.line is the 1-based row within this block. */
		if (st == EBM_STATUS_NUMERIC && err.line >= 1 && err.line <= n) {
			ebm_tool_error("%s:%" PRIu64 ": energy is not finite",
					data->path, data->lines[i + err.line - 1]);
		} else {
			ebm_tool_print_error(data->path, "cannot score", &err);
		}
	}
	ebm_ctx_destroy(ctx);
	return ok;
}

bool ebm_tool_data_score_missing(const struct ebm_tool_data *data,
		const struct ebm_model *m, double alpha, struct ebm_score *out,
		float *completed)
{
	size_t d = data->d;
	if (!data->missing) {
		if (completed != NULL) {
			memcpy(completed, data->x, data->n_rows * d * sizeof(float));
		}
		return ebm_tool_data_score(data, m, alpha, out);
	}
	/* The product of the model alone scores as the model does; it holds
	 * the profiled reference sets, one per missing set, for all blocks. */
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p = NULL;
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ctx == NULL || ebm_product_create(&m, NULL, 1, ctx, &p, &err)
			!= EBM_STATUS_OK) {
		ebm_tool_print_error(data->path, "cannot score", &err);
		ebm_ctx_destroy(ctx);
		return false;
	}
	bool ok = true;
	for (size_t i = 0; i < data->n_rows && ok; i += SCORE_BLOCK) {
		size_t n = data->n_rows - i;
		n = n < SCORE_BLOCK ? n : SCORE_BLOCK;
		ebm_error_clear(&err);
		enum ebm_status st = ebm_product_score_missing(p, ctx,
				data->x + i * d, n, alpha, out + i,
				completed != NULL ? completed + i * d : NULL, &err);
		if (st == EBM_STATUS_OK) {
			continue;
		}
		ok = false;
		bool located = err.line >= 1 && err.line <= n;
		if (st == EBM_STATUS_INVALID_ARGUMENT && located) {
			ebm_tool_error("%s:%" PRIu64 ": every feature is missing",
					data->path, data->lines[i + err.line - 1]);
		} else if (st == EBM_STATUS_NUMERIC && located) {
			ebm_tool_error("%s:%" PRIu64 ": energy is not finite",
					data->path, data->lines[i + err.line - 1]);
		} else {
			ebm_tool_print_error(data->path, "cannot score", &err);
		}
	}
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	return ok;
}
