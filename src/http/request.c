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
#include <stdatomic.h>
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
	s->order = ebm_names_sort(names, d);
	return s->order != NULL;
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
	return ebm_names_find(s->names, s->order, s->d, name);
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
	return ebm_http_check_value(json_number_value(v), where, e);
}

bool ebm_http_check_value(double x, const char *where,
		struct ebm_http_error *e)
{
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

/* A row's value: a float, or -- in score rows, API.md section 6 -- null
 * for a missing feature. */
static bool check_value(const json_t *v, const char *where, bool nulls,
		bool *has_null, struct ebm_http_error *e)
{
	if (nulls && json_is_null(v)) {
		*has_null = true;
		return true;
	}
	return check_float(v, where, e);
}

static bool check_row(const json_t *row, size_t i, bool nulls,
		bool *has_null, struct ebm_http_error *e)
{
	char where[128];
	if (json_is_array(row)) {
		size_t j;
		const json_t *v;
		json_array_foreach(row, j, v) {
			snprintf(where, sizeof(where), "instances[%zu][%zu]", i, j);
			if (!check_value(v, where, nulls, has_null, e)) {
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
			if (!check_value(v, where, nulls, has_null, e)) {
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

/* ======================================================================
 * Phase 1 fast path: the common score body, without a jansson tree
 *
 * {"instances": [[n, ...], ...], "alpha": n, "explain": true|false} with
 * positional rows all of one width, only these keys, each once, in any
 * order, is read straight into floats. A profile of 256-row score requests
 * had ebmd spend more time in json_loadb (one json_t per number) than in
 * the model. Anything else -- another key, object rows, ragged rows, a
 * string, an escape, a number the exact conversion below does not cover,
 * more rows than max_rows, any syntax error -- makes the fast path give up
 * and the body goes through jansson as before, so every error status and
 * message, and every accepted value, is what the jansson path gives.
 * ==================================================================== */

static atomic_bool fast_off;

bool ebm_http_request_force_jansson(bool on)
{
	return atomic_exchange(&fast_off, on);
}

static const double pow10_exact[23] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
	1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

struct scan {
	const char *p;
	const char *end;
};

static void skip_space(struct scan *sc)
{
	while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\n'
			|| *sc->p == '\r' || *sc->p == '\t')) {
		sc->p++;
	}
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Appends the decimal digits at *pp to *w while it stays below 10^18 (18
 * significant digits; leading zeros do not count); eight at a time where
 * it can (the SWAR conversion of simdjson and fast_float). *count gets the
 * number of digits read. False when a digit would not fit.
 */
static bool scan_digits(const char **pp, const char *end, uint64_t *w,
		int *count)
{
	const char *p = *pp;
	uint64_t v = *w;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (end - p >= 8) {
		uint64_t c;
		memcpy(&c, p, sizeof(c));
		if ((((c & 0xF0F0F0F0F0F0F0F0ull)
				| (((c + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull)
				>> 4)) != 0x3333333333333333ull)) {
			break;   /* not eight digits */
		}
		if (v >= 10000000000ull) {
			return false;
		}
		c -= 0x3030303030303030ull;
		c = c * 10 + (c >> 8);
		c = ((c & 0x000000FF000000FFull) * 0x000F424000000064ull
				+ ((c >> 16) & 0x000000FF000000FFull)
				* 0x0000271000000001ull) >> 32;
		v = v * 100000000 + (uint32_t)c;
		p += 8;
	}
#endif
	while (p < end && is_digit(*p)) {
		if (v >= 100000000000000000ull) {
			return false;
		}
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	*count = (int)(p - *pp);
	*pp = p;
	*w = v;
	return true;
}

/*
 * A JSON number, as the double json_number_value() would give for it:
 * an integer (no fraction, no exponent) is jansson's json_int_t converted
 * to double; a real is strtod's correctly rounded value, computed here
 * only when it is exact in one IEEE operation (Clinger's fast path: at
 * most 2^53 as an integer significand, a power of ten up to 10^22).
 * False when the token is not a JSON number or is outside that range.
 */
static bool scan_number(struct scan *sc, double *out)
{
	const char *p = sc->p;
	const char *end = sc->end;
	bool neg = false;
	if (p < end && *p == '-') {
		neg = true;
		p++;
	}
	if (p == end || !is_digit(*p)) {
		return false;
	}
	uint64_t w = 0;
	int n;
	int exp10 = 0;
	bool real = false;
	if (*p == '0') {
		p++;   /* a digit after it is refused by the caller */
	} else if (!scan_digits(&p, end, &w, &n)) {
		return false;
	}
	if (p < end && *p == '.') {
		real = true;
		p++;
		if (!scan_digits(&p, end, &w, &n) || n == 0) {
			return false;
		}
		exp10 = -n;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		real = true;
		p++;
		bool eneg = false;
		if (p < end && (*p == '+' || *p == '-')) {
			eneg = *p == '-';
			p++;
		}
		if (p == end || !is_digit(*p)) {
			return false;
		}
		int ev = 0;
		while (p < end && is_digit(*p)) {
			if (ev < 100000) {
				ev = ev * 10 + (*p - '0');
			}
			p++;
		}
		exp10 += eneg ? -ev : ev;
	}
	if (!real) {
		/* jansson: strtoll, then (double); below 10^18 always fits. */
		long long v = (long long)w;
		*out = (double)(neg ? -v : v);
	} else if (w == 0) {
		*out = neg ? -0.0 : 0.0;
	} else {
		if (w > ((uint64_t)1 << 53) || exp10 < -22 || exp10 > 22) {
			return false;
		}
		double v = (double)w;
		v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
		*out = neg ? -v : v;
	}
	sc->p = p;
	return true;
}

bool ebm_http_json_number(const char **p, const char *end, double *out)
{
	struct scan sc = { *p, end };
	if (!scan_number(&sc, out)) {
		return false;
	}
	*p = sc.p;
	return true;
}

static bool scan_char(struct scan *sc, char c)
{
	skip_space(sc);
	if (sc->p < sc->end && *sc->p == c) {
		sc->p++;
		return true;
	}
	return false;
}

/* A key without escapes, compared with the fast path's three. */
enum fast_key { KEY_OTHER, KEY_INSTANCES, KEY_ALPHA, KEY_EXPLAIN };

static enum fast_key scan_key(struct scan *sc)
{
	if (!scan_char(sc, '"')) {
		return KEY_OTHER;
	}
	const char *k = sc->p;
	while (sc->p < sc->end && *sc->p != '"') {
		if (*sc->p == '\\' || (unsigned char)*sc->p < 0x20
				|| (unsigned char)*sc->p >= 0x80) {
			return KEY_OTHER;
		}
		sc->p++;
	}
	if (sc->p == sc->end) {
		return KEY_OTHER;
	}
	size_t n = (size_t)(sc->p - k);
	sc->p++;
	if (n == 9 && memcmp(k, "instances", 9) == 0) {
		return KEY_INSTANCES;
	}
	if (n == 5 && memcmp(k, "alpha", 5) == 0) {
		return KEY_ALPHA;
	}
	if (n == 7 && memcmp(k, "explain", 7) == 0) {
		return KEY_EXPLAIN;
	}
	return KEY_OTHER;
}

static bool scan_literal(struct scan *sc, const char *lit, size_t n)
{
	if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, lit, n) != 0) {
		return false;
	}
	sc->p += n;
	return true;
}

/* Appends one float to r->values, growing it. */
static bool push_value(struct ebm_http_request *r, size_t *cap, float v)
{
	if (r->n_values == *cap) {
		size_t c = *cap > 0 ? 2 * *cap : 256;
		float *p = c < *cap ? NULL : realloc(r->values, c * sizeof(*p));
		if (p == NULL) {
			return false;
		}
		r->values = p;
		*cap = c;
	}
	r->values[r->n_values++] = v;
	return true;
}

/* "[[n, ...], ...]": rows of one width >= 1, at least one row. */
static bool scan_instances(struct scan *sc, struct ebm_http_request *r,
		size_t max_rows)
{
	size_t cap = 0;
	if (!scan_char(sc, '[')) {
		return false;
	}
	do {
		if (r->n_rows == max_rows || !scan_char(sc, '[')) {
			return false;
		}
		size_t width = 0;
		do {
			double v;
			skip_space(sc);
			if (!scan_number(sc, &v) || !(fabs(v) <= (double)FLT_MAX)
					|| !push_value(r, &cap, (float)v)) {
				return false;
			}
			width++;
		} while (scan_char(sc, ','));
		if (!scan_char(sc, ']')) {
			return false;
		}
		if (r->n_rows == 0) {
			r->width = width;
		} else if (width != r->width) {
			return false;
		}
		r->n_rows++;
	} while (scan_char(sc, ','));
	return scan_char(sc, ']');
}

static bool fast_score(struct ebm_http_request *r, const char *body,
		size_t len, size_t max_rows)
{
	struct scan sc = { body, body + len };
	bool seen[4] = { false, false, false, false };
	if (!scan_char(&sc, '{')) {
		return false;
	}
	do {
		enum fast_key key = scan_key(&sc);
		if (key == KEY_OTHER || seen[key] || !scan_char(&sc, ':')) {
			return false;
		}
		seen[key] = true;
		skip_space(&sc);
		switch (key) {
		case KEY_INSTANCES:
			if (!scan_instances(&sc, r, max_rows)) {
				return false;
			}
			break;
		case KEY_ALPHA:
			if (!scan_number(&sc, &r->alpha)) {
				return false;
			}
			r->has_alpha = true;
			break;
		case KEY_EXPLAIN:
			if (scan_literal(&sc, "true", 4)) {
				r->explain = true;
			} else if (!scan_literal(&sc, "false", 5)) {
				return false;
			}
			break;
		default:
			return false;
		}
	} while (scan_char(&sc, ','));
	if (!scan_char(&sc, '}')) {
		return false;
	}
	skip_space(&sc);
	return sc.p == sc.end && seen[KEY_INSTANCES];
}

bool ebm_http_request_parse(struct ebm_http_request *r,
		enum ebm_http_kind kind, const char *body, size_t len,
		bool content_type_ok, size_t max_rows, struct ebm_http_error *e)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	if (kind == EBM_HTTP_KIND_SCORE && content_type_ok && body != NULL
			&& !atomic_load_explicit(&fast_off, memory_order_relaxed)) {
		if (fast_score(r, body, len, max_rows)) {
			return true;
		}
		free(r->values);
		memset(r, 0, sizeof(*r));
		r->kind = kind;
	}
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
	/* null is a missing feature in score rows only (docs/daemon.md). */
	bool nulls = kind == EBM_HTTP_KIND_SCORE || kind == EBM_HTTP_KIND_COMPOSE;
	json_array_foreach(inst, i, row) {
		if (!check_row(row, i, nulls, &r->has_null, e)) {
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
	free(r->values);
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
		/* API.md: a model may appear once (so may a [compose] expert). */
		for (size_t i = 1; i < r->n_models; i++) {
			for (size_t j = 0; j < i; j++) {
				if (strcmp(r->models[i], r->models[j]) == 0) {
					return ebm_http_fail(e, 422, "duplicate_model",
							"models[%zu]: '%.128s' is already models[%zu]; "
							"a model may appear once (give it a larger "
							"weight instead)", i, r->models[i], j);
				}
			}
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

/* A value phase 1 passed: a number, or null (missing) as NaN. */
static float row_value(const json_t *v)
{
	return json_is_null(v) ? NAN : (float)json_number_value(v);
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
	const char *key;
	json_t *v;
	size_t given = 0;
	json_object_foreach((json_t *)row, key, v) {
		long j = ebm_http_schema_index(s, key);
		if (j < 0) {
			char where[128];
			where_key(where, sizeof(where), i, key);
			return ebm_http_fail(e, 422, "unknown_feature",
					"%s: unknown feature '%.64s'", where, key);
		}
		x[j] = row_value(v);
		given++;
	}
	/* Keys are distinct (the parser refuses duplicates) and known, so
	 * fewer than d of them leave a feature out: absent is not null. */
	for (size_t j = 0; given < d && j < d; j++) {
		if (json_object_get(row, s->names[j]) == NULL) {
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
	if (r->values != NULL) {
		/* The fast path: every row has r->width numbers. */
		if (r->width != d) {
			return ebm_http_fail(e, 422, "wrong_feature_count",
					"instances[0]: expected %zu features, got %zu", d,
					r->width);
		}
		memcpy(x, r->values, r->n_values * sizeof(*x));
		return true;
	}
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
			xi[j] = row_value(json_array_get(row, j));
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
