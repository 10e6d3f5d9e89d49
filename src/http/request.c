/*
 * request.c — JSON request bodies of the scoring endpoints, decoded with
 * jansson and checked into plain C arrays, with the status codes and
 * messages of API.md section 2. Knows nothing of HTTP itself: the route
 * passes the body and its Content-Type verdict in, and the model's schema
 * for phase 2 (see http.h for why there are two phases).
 *
 * Messages say what and where, in the request's own terms:
 *   "instances[3]: expected 32 features, got 31"
 *   "instances[0][2]: expected a number, got a string"
 *   "instances[1].cpu: 1e+39 does not fit a 32-bit float"
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/http.h"
#include "util/util.h"

bool ebm_http_fail(struct ebm_http_error *e, int status, const char *code,
		const char *fmt, ...)
{
	if (e == NULL) {
		return false;
	}
	e->status = status;
	e->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return false;
}

/* ======================================================================
 * Schema
 * ==================================================================== */

/* Stable merge sort of idx[0..n) by names[idx[i]], tmp[n] scratch. qsort
 * has no user pointer, and schemas are built on several threads (ad-hoc
 * compositions), so no file-scope state. */
static void sort_by_name(uint32_t *idx, uint32_t *tmp, size_t n,
		const char *const *names)
{
	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			size_t a = lo;
			size_t b = mid;
			size_t k = lo;
			while (a < mid && b < hi) {
				tmp[k++] = strcmp(names[idx[a]], names[idx[b]]) <= 0
						? idx[a++] : idx[b++];
			}
			while (a < mid) {
				tmp[k++] = idx[a++];
			}
			while (b < hi) {
				tmp[k++] = idx[b++];
			}
		}
		memcpy(idx, tmp, n * sizeof(*idx));
	}
}

bool ebm_http_schema_init(struct ebm_http_schema *s, size_t d,
		const char *const *names)
{
	s->d = d;
	s->names = names;
	s->order = NULL;
	if (names == NULL || d == 0) {
		s->names = NULL;
		return true;
	}
	s->order = ebm_alloc_array(2 * d, sizeof(*s->order));
	if (s->order == NULL) {
		return false;
	}
	for (size_t j = 0; j < d; j++) {
		s->order[j] = (uint32_t)j;
	}
	sort_by_name(s->order, s->order + d, d, names);
	return true;
}

void ebm_http_schema_finish(struct ebm_http_schema *s)
{
	free(s->order);
	s->order = NULL;
	s->names = NULL;
	s->d = 0;
}

long ebm_http_schema_index(const struct ebm_http_schema *s, const char *name)
{
	if (s->order == NULL) {
		return -1;
	}
	size_t lo = 0;
	size_t hi = s->d;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->names[s->order[mid]], name);
		if (c == 0) {
			return (long)s->order[mid];
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return -1;
}

/* ======================================================================
 * Phase 1: syntax and types
 * ==================================================================== */

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "something else";
}

static bool wrong_type(struct ebm_http_error *e, const char *where,
		const char *expected, const json_t *got)
{
	return ebm_http_fail(e, 400, "wrong_type", "%s: expected %s, got %s",
			where, expected, type_name(got));
}

/*
 * A value that must become a float: a JSON number within float range.
 * jansson itself refuses literals that overflow a double ("1e400").
 */
static bool check_float(const json_t *v, const char *where,
		struct ebm_http_error *e)
{
	if (!json_is_number(v)) {
		return wrong_type(e, where, "a number", v);
	}
	double x = json_number_value(v);
	if (!isfinite(x)) {
		return ebm_http_fail(e, 400, "invalid_number",
				"%s: not a finite number", where);
	}
	if (fabs(x) > (double)FLT_MAX) {
		return ebm_http_fail(e, 400, "invalid_number",
				"%s: %g does not fit a 32-bit float", where, x);
	}
	return true;
}

/* A key quoted for a message, cut short if very long. */
static void where_key(char *buf, size_t size, size_t row, const char *key)
{
	snprintf(buf, size, "instances[%zu].%.64s%s", row, key,
			strlen(key) > 64 ? "..." : "");
}

static bool check_row(const json_t *row, size_t i, struct ebm_http_error *e)
{
	char where[128];
	if (json_is_array(row)) {
		size_t j;
		const json_t *v;
		json_array_foreach(row, j, v) {
			snprintf(where, sizeof(where), "instances[%zu][%zu]", i, j);
			if (!check_float(v, where, e)) {
				return false;
			}
		}
		return true;
	}
	if (json_is_object(row)) {
		const char *key;
		const json_t *v;
		json_object_foreach((json_t *)row, key, v) {
			where_key(where, sizeof(where), i, key);
			if (!check_float(v, where, e)) {
				return false;
			}
		}
		return true;
	}
	snprintf(where, sizeof(where), "instances[%zu]", i);
	return wrong_type(e, where, "an array of numbers or an object", row);
}

/* An integral JSON number (50 or 50.0). */
static bool get_integral(const json_t *v, const char *where, double *out,
		struct ebm_http_error *e)
{
	if (!json_is_number(v)) {
		return wrong_type(e, where, "an integer", v);
	}
	double x = json_number_value(v);
	if (!isfinite(x) || x != floor(x)) {
		return ebm_http_fail(e, 400, "wrong_type",
				"%s: expected an integer, got %g", where, x);
	}
	*out = x;
	return true;
}

static bool parse_score_fields(struct ebm_http_request *r,
		struct ebm_http_error *e)
{
	json_t *v = json_object_get(r->root, "alpha");
	if (v != NULL) {
		if (!json_is_number(v)) {
			return wrong_type(e, "alpha", "a number", v);
		}
		r->has_alpha = true;
		r->alpha = json_number_value(v);
	}
	v = json_object_get(r->root, "explain");
	if (v != NULL) {
		if (!json_is_boolean(v)) {
			return wrong_type(e, "explain", "a boolean", v);
		}
		r->explain = json_is_true(v);
	}
	return true;
}

static bool parse_repair_fields(struct ebm_http_request *r,
		struct ebm_http_error *e)
{
	json_t *v = json_object_get(r->root, "steps");
	if (v != NULL) {
		if (!get_integral(v, "steps", &r->steps, e)) {
			return false;
		}
		r->has_steps = true;
	}
	v = json_object_get(r->root, "step_size");
	if (v != NULL) {
		if (!json_is_number(v)) {
			return wrong_type(e, "step_size", "a number", v);
		}
		r->has_step_size = true;
		r->step_size = json_number_value(v);
	}
	v = json_object_get(r->root, "fixed");
	if (v != NULL) {
		if (!json_is_array(v)) {
			return wrong_type(e, "fixed",
					"an array of feature indices or names", v);
		}
		size_t i;
		json_t *f;
		json_array_foreach(v, i, f) {
			char where[32];
			snprintf(where, sizeof(where), "fixed[%zu]", i);
			double ignored;
			if (json_is_string(f)) {
				continue;
			}
			if (!json_is_number(f)) {
				return wrong_type(e, where,
						"a feature index or name", f);
			}
			if (!get_integral(f, where, &ignored, e)) {
				return false;
			}
		}
		r->fixed = v;
	}
	return true;
}

static bool parse_compose_fields(struct ebm_http_request *r,
		struct ebm_http_error *e)
{
	json_t *v = json_object_get(r->root, "models");
	if (v == NULL) {
		return ebm_http_fail(e, 400, "missing_field",
				"models: required field is missing");
	}
	if (!json_is_array(v)) {
		return wrong_type(e, "models", "an array of model names", v);
	}
	size_t n = json_array_size(v);
	if (n > 0) {
		r->models = malloc(n * sizeof(*r->models));
		if (r->models == NULL) {
			return ebm_http_fail(e, 500, "internal_error",
					"out of memory");
		}
	}
	size_t i;
	json_t *m;
	json_array_foreach(v, i, m) {
		if (!json_is_string(m)) {
			char where[32];
			snprintf(where, sizeof(where), "models[%zu]", i);
			return wrong_type(e, where, "a model name", m);
		}
		r->models[i] = json_string_value(m);
	}
	r->n_models = n;

	v = json_object_get(r->root, "weights");
	if (v != NULL) {
		if (!json_is_array(v)) {
			return wrong_type(e, "weights", "an array of numbers", v);
		}
		size_t nw = json_array_size(v);
		r->weights = malloc((nw > 0 ? nw : 1) * sizeof(*r->weights));
		if (r->weights == NULL) {
			return ebm_http_fail(e, 500, "internal_error",
					"out of memory");
		}
		json_t *w;
		json_array_foreach(v, i, w) {
			if (!json_is_number(w)) {
				char where[32];
				snprintf(where, sizeof(where), "weights[%zu]", i);
				return wrong_type(e, where, "a number", w);
			}
			r->weights[i] = json_number_value(w);
		}
		r->n_weights = nw;
	}
	return parse_score_fields(r, e);
}

bool ebm_http_request_parse(struct ebm_http_request *r,
		enum ebm_http_kind kind, const char *body, size_t len,
		bool content_type_ok, size_t max_rows, struct ebm_http_error *e)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	json_error_t jerr;
	/* Duplicate keys are refused: in a row object they would make a
	 * feature's value depend on the parser. */
	r->root = json_loadb(body != NULL ? body : "", len,
			JSON_REJECT_DUPLICATES, &jerr);

	/* 413 (too many rows) before 415 before 400, as API.md orders them;
	 * the rows can only be counted once the JSON has been read. */
	json_t *inst = r->root != NULL && json_is_object(r->root)
			? json_object_get(r->root, "instances") : NULL;
	if (inst != NULL && json_is_array(inst)
			&& json_array_size(inst) > max_rows) {
		ebm_http_fail(e, 413, "too_many_rows",
				"instances: %zu rows, at most %zu are accepted",
				json_array_size(inst), max_rows);
		goto fail;
	}
	if (!content_type_ok) {
		ebm_http_fail(e, 415, "unsupported_media_type",
				"Content-Type must be application/json");
		goto fail;
	}
	if (r->root == NULL) {
		ebm_http_fail(e, 400, "invalid_json",
				"body is not valid JSON: line %d, column %d: %s",
				jerr.line, jerr.column, jerr.text);
		goto fail;
	}
	if (!json_is_object(r->root)) {
		wrong_type(e, "body", "a JSON object", r->root);
		goto fail;
	}
	if (inst == NULL) {
		ebm_http_fail(e, 400, "missing_field",
				"instances: required field is missing");
		goto fail;
	}
	if (!json_is_array(inst)) {
		wrong_type(e, "instances", "an array of rows", inst);
		goto fail;
	}
	r->instances = inst;
	r->n_rows = json_array_size(inst);
	size_t i;
	json_t *row;
	json_array_foreach(inst, i, row) {
		if (!check_row(row, i, e)) {
			goto fail;
		}
	}
	bool ok;
	switch (kind) {
	case EBM_HTTP_KIND_SCORE:
		ok = parse_score_fields(r, e);
		break;
	case EBM_HTTP_KIND_REPAIR:
		ok = parse_repair_fields(r, e);
		break;
	case EBM_HTTP_KIND_COMPOSE:
		ok = parse_compose_fields(r, e);
		break;
	default:
		ok = ebm_http_fail(e, 500, "internal_error", "unknown request kind");
		break;
	}
	if (!ok) {
		goto fail;
	}
	return true;

fail:
	ebm_http_request_finish(r);
	return false;
}

void ebm_http_request_finish(struct ebm_http_request *r)
{
	json_decref(r->root);
	free(r->models);
	free(r->weights);
	memset(r, 0, sizeof(*r));
}

/* ======================================================================
 * Phase 2: bounds and the model's schema
 * ==================================================================== */

bool ebm_http_request_check(const struct ebm_http_request *r,
		struct ebm_http_error *e)
{
	if (r->kind == EBM_HTTP_KIND_COMPOSE) {
		if (r->n_models == 0) {
			return ebm_http_fail(e, 422, "invalid_models",
					"models: expected at least one model name");
		}
		if (r->n_models > EBM_PRODUCT_MAX_MODELS) {
			return ebm_http_fail(e, 422, "invalid_models",
					"models: at most %u models, got %zu",
					EBM_PRODUCT_MAX_MODELS, r->n_models);
		}
		if (r->weights != NULL && r->n_weights != r->n_models) {
			return ebm_http_fail(e, 422, "invalid_weights",
					"weights: expected %zu weights (one per model), got %zu",
					r->n_models, r->n_weights);
		}
		for (size_t i = 0; r->weights != NULL && i < r->n_weights; i++) {
			/* Written so that NaN fails too. */
			if (!(r->weights[i] > 0.0) || !isfinite(r->weights[i])) {
				return ebm_http_fail(e, 422, "invalid_weights",
						"weights[%zu]: must be a finite number > 0, got %g",
						i, r->weights[i]);
			}
		}
	}
	if (r->has_alpha && !(r->alpha > 0.0 && r->alpha < 1.0)) {
		return ebm_http_fail(e, 422, "invalid_alpha",
				"alpha: must be in (0, 1), got %g", r->alpha);
	}
	if (r->has_steps && !(r->steps >= 1.0
			&& r->steps <= (double)EBM_REPAIR_MAX_STEPS)) {
		return ebm_http_fail(e, 422, "invalid_steps",
				"steps: must be in 1..%u, got %g", EBM_REPAIR_MAX_STEPS,
				r->steps);
	}
	if (r->has_step_size && !(r->step_size > 0.0
			&& r->step_size <= (double)EBM_REPAIR_MAX_STEP_SIZE)) {
		return ebm_http_fail(e, 422, "invalid_step_size",
				"step_size: must be in (0, %g], got %g",
				(double)EBM_REPAIR_MAX_STEP_SIZE, r->step_size);
	}
	if (r->n_rows == 0) {
		return ebm_http_fail(e, 422, "empty_instances",
				"instances: expected at least one row");
	}
	return true;
}

static bool object_row(const json_t *row, size_t i,
		const struct ebm_http_schema *s, float *x, struct ebm_http_error *e)
{
	size_t d = s->d;
	if (s->names == NULL) {
		return ebm_http_fail(e, 422, "no_feature_names",
				"instances[%zu]: this model has no feature names; "
				"send an array of %zu numbers", i, d);
	}
	/* Every value is finite (phase 1), so NaN marks "not given". */
	for (size_t j = 0; j < d; j++) {
		x[j] = NAN;
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)row, key, v) {
		long j = ebm_http_schema_index(s, key);
		if (j < 0) {
			char where[128];
			where_key(where, sizeof(where), i, key);
			return ebm_http_fail(e, 422, "unknown_feature",
					"%s: unknown feature '%.64s'", where, key);
		}
		x[j] = (float)json_number_value(v);
	}
	for (size_t j = 0; j < d; j++) {
		if (isnan(x[j])) {
			return ebm_http_fail(e, 422, "missing_feature",
					"instances[%zu]: missing feature '%.64s'", i,
					s->names[j]);
		}
	}
	return true;
}

bool ebm_http_request_rows(const struct ebm_http_request *r,
		const struct ebm_http_schema *s, float *x, struct ebm_http_error *e)
{
	size_t d = s->d;
	size_t i;
	json_t *row;
	json_array_foreach(r->instances, i, row) {
		float *xi = x + i * d;
		if (json_is_object(row)) {
			if (!object_row(row, i, s, xi, e)) {
				return false;
			}
			continue;
		}
		size_t n = json_array_size(row);
		if (n != d) {
			return ebm_http_fail(e, 422, "wrong_feature_count",
					"instances[%zu]: expected %zu features, got %zu", i, d,
					n);
		}
		for (size_t j = 0; j < d; j++) {
			xi[j] = (float)json_number_value(json_array_get(row, j));
		}
	}
	return true;
}

bool ebm_http_request_fixed(const struct ebm_http_request *r,
		const struct ebm_http_schema *s, bool *fixed,
		struct ebm_http_error *e)
{
	for (size_t j = 0; j < s->d; j++) {
		fixed[j] = false;
	}
	if (r->fixed == NULL) {
		return true;
	}
	size_t i;
	json_t *f;
	json_array_foreach(r->fixed, i, f) {
		long j;
		if (json_is_string(f)) {
			const char *name = json_string_value(f);
			if (s->names == NULL) {
				return ebm_http_fail(e, 422, "no_feature_names",
						"fixed[%zu]: this model has no feature names; "
						"give feature indices", i);
			}
			j = ebm_http_schema_index(s, name);
			if (j < 0) {
				return ebm_http_fail(e, 422, "unknown_feature",
						"fixed[%zu]: unknown feature '%.64s'", i, name);
			}
		} else {
			double v = json_number_value(f);
			if (v < 0.0 || v >= (double)s->d) {
				return ebm_http_fail(e, 422, "invalid_fixed",
						"fixed[%zu]: feature index must be in 0..%zu, got %g",
						i, s->d - 1, v);
			}
			j = (long)v;
		}
		fixed[j] = true;
	}
	return true;
}
