/*
 * tensor.c — infer requests of the Open Inference Protocol (API.md
 * section 5), JSON and binary, decoded into plain float arrays with the
 * status codes of section 2: phase 1 here without the model (413 rows,
 * 415, 400 everything malformed or inconsistent), phase 2 against the
 * model's schema (422), as request.c does for /v1.
 *
 * The binary tensor data extension: with Inference-Header-Content-Length
 * L, the body's first L bytes are the JSON header, the rest raw tensor
 * data, little-endian and row-major, in input order; each binary input
 * says its byte count in parameters.binary_data_size. Every size is
 * derived from shape and datatype with overflow checks and compared with
 * what the body holds before anything is read or allocated; a header
 * length beyond the body, a size that does not match, and bytes left over
 * are 400, naming the input.
 *
 * Values go through the same check as /v1's numbers (request.c,
 * ebm_http_check_value): finite and within a 32-bit float; NaN (binary
 * data only: JSON has no NaN) is a missing value (API.md section 6),
 * which the scoring path profiles out.
 */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/http.h"
#include "util/util.h"

/* Datatypes of the protocol that ebmd does not take as input. */
static const char *const other_types[] = {
	"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
	"INT32", "INT64", "FP16", "BF16", "BYTES",
};

static const char *const output_names[] = {
	"energy", "score", "p_value", "anomaly", "contributions",
};

static const char *kind_of(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static bool wrong(struct ebm_http_error *e, const char *where,
		const char *expected, const json_t *got)
{
	return ebm_http_fail(e, 400, "wrong_type", "%s: expected %s, got %s",
			where, expected, kind_of(got));
}

static void shape_text(const struct ebm_http_v2_input *in, char *buf,
		size_t size)
{
	if (in->rank == 1) {
		snprintf(buf, size, "[%llu]", (unsigned long long)in->shape[0]);
	} else {
		snprintf(buf, size, "[%llu, %llu]",
				(unsigned long long)in->shape[0],
				(unsigned long long)in->shape[1]);
	}
}

/* "inputs[2] 'cpu'" for messages. */
static void input_where(char *buf, size_t size, size_t i, const char *name)
{
	snprintf(buf, size, "inputs[%zu] '%.64s'", i, name);
}

/* 413 first: the rows an input declares, before anything else is looked
 * at (section 2's order puts it before 415 and 400). */
static bool too_many_rows(const json_t *root, size_t max_rows,
		struct ebm_http_error *e)
{
	const json_t *inputs = json_is_object(root)
			? json_object_get(root, "inputs") : NULL;
	size_t i;
	const json_t *in;
	json_array_foreach(inputs, i, in) {
		const json_t *shape = json_object_get(in, "shape");
		const json_t *n = json_array_get(shape, 0);
		if (json_is_integer(n) && json_integer_value(n) > 0
				&& (uint64_t)json_integer_value(n) > max_rows) {
			return !ebm_http_fail(e, 413, "too_many_rows",
					"inputs[%zu].shape: %lld rows, at most %zu are accepted",
					i, (long long)json_integer_value(n), max_rows);
		}
	}
	return false;
}

static bool parse_shape(struct ebm_http_v2_input *in, const json_t *shape,
		const char *where, struct ebm_http_error *e)
{
	if (shape == NULL) {
		return ebm_http_fail(e, 400, "missing_field",
				"%s: shape is missing", where);
	}
	if (!json_is_array(shape)) {
		return wrong(e, where, "shape as an array of integers", shape);
	}
	size_t rank = json_array_size(shape);
	if (rank < 1 || rank > 2) {
		return ebm_http_fail(e, 400, "invalid_shape",
				"%s: shape has %zu dimensions; expected [N, d], [N] or "
				"[N, 1]", where, rank);
	}
	in->rank = rank;
	size_t count = 1;
	for (size_t k = 0; k < rank; k++) {
		const json_t *v = json_array_get(shape, k);
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			return ebm_http_fail(e, 400, "invalid_shape",
					"%s: shape[%zu] must be an integer >= 0", where, k);
		}
		in->shape[k] = (uint64_t)json_integer_value(v);
		if (in->shape[k] > SIZE_MAX
				|| !ebm_mul_size(count, (size_t)in->shape[k], &count)) {
			return ebm_http_fail(e, 400, "invalid_shape",
					"%s: the shape's element count overflows", where);
		}
	}
	in->count = count;
	return true;
}

static bool parse_datatype(struct ebm_http_v2_input *in, const json_t *dt,
		const char *where, struct ebm_http_error *e)
{
	if (dt == NULL) {
		return ebm_http_fail(e, 400, "missing_field",
				"%s: datatype is missing", where);
	}
	if (!json_is_string(dt)) {
		return wrong(e, where, "datatype as a string", dt);
	}
	const char *s = json_string_value(dt);
	if (strcmp(s, "FP32") == 0 || strcmp(s, "FP64") == 0) {
		in->fp64 = s[2] == '6';
		return true;
	}
	for (size_t k = 0; k < sizeof(other_types) / sizeof(*other_types); k++) {
		if (strcmp(s, other_types[k]) == 0) {
			return ebm_http_fail(e, 400, "unsupported_datatype",
					"%s: datatype %s is not accepted; send FP32 or FP64",
					where, s);
		}
	}
	return ebm_http_fail(e, 400, "unknown_datatype",
			"%s: unknown datatype '%.32s' (FP32 or FP64)", where, s);
}

/* Row and column of element k, for messages. */
static void element_where(char *buf, size_t size, const char *where,
		const struct ebm_http_v2_input *in, size_t k)
{
	size_t cols = in->rank == 2 && in->shape[1] > 0 ? in->shape[1] : 1;
	if (in->rank == 2) {
		snprintf(buf, size, "%s[%zu][%zu]", where, k / cols, k % cols);
	} else {
		snprintf(buf, size, "%s[%zu]", where, k);
	}
}

static bool check_element(const struct ebm_http_v2_input *in, size_t k,
		double v, const char *where, struct ebm_http_error *e)
{
	if (isnan(v)) {
		return true;   /* a missing value */
	}
	if (isfinite(v) && fabs(v) <= (double)FLT_MAX) {
		return true;
	}
	char at[160];
	element_where(at, sizeof(at), where, in, k);
	return ebm_http_check_value(v, at, e);
}

/* The raw little-endian values at p (in->count of them, bounds checked by
 * the caller) into in->values. */
static bool read_binary(struct ebm_http_v2_input *in, const unsigned char *p,
		const char *where, struct ebm_http_error *e)
{
	for (size_t k = 0; k < in->count; k++) {
		double v;
		if (in->fp64) {
			uint64_t u = 0;
			for (int b = 7; b >= 0; b--) {
				u = u << 8 | p[8 * k + (size_t)b];
			}
			memcpy(&v, &u, sizeof(v));
		} else {
			uint32_t u = (uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8
					| (uint32_t)p[4 * k + 2] << 16
					| (uint32_t)p[4 * k + 3] << 24;
			float f;
			memcpy(&f, &u, sizeof(f));
			v = f;
		}
		if (!check_element(in, k, v, where, e)) {
			return false;
		}
		in->values[k] = (float)v;
	}
	return true;
}

/* Elements of JSON data, nested at most `depth` levels, into in->values
 * (room for in->count); *n counts them, also past the room. */
static bool walk_data(struct ebm_http_v2_input *in, size_t room,
		const json_t *v, size_t depth, size_t *n, const char *where,
		struct ebm_http_error *e)
{
	if (json_is_array(v)) {
		if (depth == 0) {
			return ebm_http_fail(e, 400, "invalid_data",
					"%s: data is nested deeper than its shape", where);
		}
		size_t i;
		const json_t *x;
		json_array_foreach(v, i, x) {
			if (!walk_data(in, room, x, depth - 1, n, where, e)) {
				return false;
			}
		}
		return true;
	}
	if (!json_is_number(v)) {
		char at[160];
		snprintf(at, sizeof(at), "%s: data element %zu", where, *n);
		return wrong(e, at, "a number", v);
	}
	if (*n < in->count && in->count <= room) {
		if (!check_element(in, *n, json_number_value(v), where, e)) {
			return false;
		}
		in->values[*n] = (float)json_number_value(v);
	}
	(*n)++;
	return true;
}

static bool parse_input(struct ebm_http_v2_request *r, size_t i,
		const json_t *in_json, size_t json_len, const unsigned char *bin,
		size_t bin_len, size_t *bin_used, bool has_binary,
		struct ebm_http_error *e)
{
	struct ebm_http_v2_input *in = &r->inputs[i];
	char where[96];
	snprintf(where, sizeof(where), "inputs[%zu]", i);
	if (!json_is_object(in_json)) {
		return wrong(e, where, "a tensor object", in_json);
	}
	const json_t *name = json_object_get(in_json, "name");
	if (name == NULL) {
		return ebm_http_fail(e, 400, "missing_field",
				"%s: name is missing", where);
	}
	if (!json_is_string(name)) {
		return wrong(e, where, "name as a string", name);
	}
	in->name = json_string_value(name);
	for (size_t k = 0; k < i; k++) {
		if (strcmp(r->inputs[k].name, in->name) == 0) {
			return ebm_http_fail(e, 400, "duplicate_input",
					"%s: input name '%.64s' is already inputs[%zu]", where,
					in->name, k);
		}
	}
	input_where(where, sizeof(where), i, in->name);
	if (!parse_datatype(in, json_object_get(in_json, "datatype"), where, e)
			|| !parse_shape(in, json_object_get(in_json, "shape"), where,
			e)) {
		return false;
	}
	if (i > 0 && in->shape[0] != r->inputs[0].shape[0]) {
		return ebm_http_fail(e, 400, "invalid_shape",
				"%s: %llu rows, but inputs[0] has %llu", where,
				(unsigned long long)in->shape[0],
				(unsigned long long)r->inputs[0].shape[0]);
	}
	const json_t *params = json_object_get(in_json, "parameters");
	if (params != NULL && !json_is_object(params)) {
		return wrong(e, where, "parameters as an object", params);
	}
	const json_t *size = json_object_get(params, "binary_data_size");
	const json_t *data = json_object_get(in_json, "data");
	if (size != NULL) {
		if (!json_is_integer(size) || json_integer_value(size) < 0) {
			return ebm_http_fail(e, 400, "invalid_binary_size",
					"%s: binary_data_size must be an integer >= 0", where);
		}
		if (!has_binary) {
			return ebm_http_fail(e, 400, "missing_binary_data",
					"%s: binary_data_size without the "
					"Inference-Header-Content-Length header", where);
		}
		if (data != NULL) {
			return ebm_http_fail(e, 400, "invalid_data",
					"%s: both data and binary_data_size", where);
		}
		uint64_t declared = (uint64_t)json_integer_value(size);
		size_t need;
		char shape[64];
		shape_text(in, shape, sizeof(shape));
		if (!ebm_mul_size(in->count, in->fp64 ? 8 : 4, &need)) {
			return ebm_http_fail(e, 400, "invalid_shape",
					"%s: shape %s of %s takes more bytes than a size can "
					"count", where, shape, in->fp64 ? "FP64" : "FP32");
		}
		if (declared != need) {
			return ebm_http_fail(e, 400, "invalid_binary_size",
					"%s: binary_data_size is %llu, but shape %s of %s takes "
					"%llu bytes", where, (unsigned long long)declared, shape,
					in->fp64 ? "FP64" : "FP32", (unsigned long long)in->count
					* (in->fp64 ? 8ull : 4ull));
		}
		if (need > bin_len - *bin_used) {
			return ebm_http_fail(e, 400, "invalid_binary_size",
					"%s: needs %zu bytes of binary data from offset %zu, the "
					"body has %zu after its JSON header", where, need,
					*bin_used, bin_len);
		}
		in->values = malloc(in->count > 0 ? in->count * sizeof(float) : 1);
		if (in->values == NULL) {
			return ebm_http_fail(e, 500, "internal_error", "out of memory");
		}
		if (!read_binary(in, bin + *bin_used, where, e)) {
			return false;
		}
		*bin_used += need;
		return true;
	}
	if (data == NULL) {
		return ebm_http_fail(e, 400, "missing_field",
				"%s: data is missing (or parameters.binary_data_size)",
				where);
	}
	if (!json_is_array(data)) {
		return wrong(e, where, "data as an array", data);
	}
	/* Every element takes a byte of the JSON at least: a shape beyond that
	 * cannot match, and is not allocated (its elements are only counted). */
	size_t room = in->count <= json_len ? in->count : 0;
	in->values = malloc(room > 0 ? room * sizeof(float) : 1);
	if (in->values == NULL) {
		return ebm_http_fail(e, 500, "internal_error", "out of memory");
	}
	size_t n = 0;
	if (!walk_data(in, room, data, in->rank, &n, where, e)) {
		return false;
	}
	if (n != in->count) {
		char shape[64];
		shape_text(in, shape, sizeof(shape));
		return ebm_http_fail(e, 400, "invalid_data",
				"%s: data has %zu elements, shape %s has %zu", where, n,
				shape, in->count);
	}
	return true;
}

static bool parse_parameters(struct ebm_http_v2_request *r,
		struct ebm_http_error *e)
{
	const json_t *p = json_object_get(r->root, "parameters");
	if (p == NULL) {
		return true;
	}
	if (!json_is_object(p)) {
		return wrong(e, "parameters", "an object", p);
	}
	const json_t *v = json_object_get(p, "alpha");
	if (v != NULL) {
		if (!json_is_number(v)) {
			return wrong(e, "parameters.alpha", "a number", v);
		}
		r->has_alpha = true;
		r->alpha = json_number_value(v);
	}
	v = json_object_get(p, "explain");
	if (v != NULL) {
		if (!json_is_boolean(v)) {
			return wrong(e, "parameters.explain", "a boolean", v);
		}
		r->explain = json_is_true(v);
	}
	v = json_object_get(p, "binary_data_output");
	if (v != NULL) {
		if (!json_is_boolean(v)) {
			return wrong(e, "parameters.binary_data_output", "a boolean", v);
		}
		r->binary_output = json_is_true(v);
	}
	return true;
}

static bool parse_outputs(struct ebm_http_v2_request *r,
		struct ebm_http_error *e)
{
	const json_t *outs = json_object_get(r->root, "outputs");
	if (outs == NULL) {
		return true;
	}
	if (!json_is_array(outs)) {
		return wrong(e, "outputs", "an array", outs);
	}
	size_t i;
	const json_t *o;
	json_array_foreach(outs, i, o) {
		char where[32];
		snprintf(where, sizeof(where), "outputs[%zu]", i);
		if (!json_is_object(o)) {
			return wrong(e, where, "an output object", o);
		}
		const json_t *name = json_object_get(o, "name");
		if (!json_is_string(name)) {
			return name == NULL ? ebm_http_fail(e, 400, "missing_field",
					"%s: name is missing", where)
					: wrong(e, where, "name as a string", name);
		}
		const char *s = json_string_value(name);
		bool known = false;
		for (size_t k = 0; k < sizeof(output_names) / sizeof(*output_names);
				k++) {
			known |= strcmp(s, output_names[k]) == 0;
		}
		if (!known) {
			return ebm_http_fail(e, 400, "unknown_output",
					"%s: unknown output '%.64s' (energy, score, p_value, "
					"anomaly, contributions)", where, s);
		}
		for (size_t k = 0; k < r->n_outputs; k++) {
			if (strcmp(r->outputs[k].name, s) == 0) {
				return ebm_http_fail(e, 400, "duplicate_output",
						"%s: output '%s' is already outputs[%zu]", where, s,
						k);
			}
		}
		/* Five names, no duplicates: never beyond the array. */
		struct ebm_http_v2_output *out = &r->outputs[r->n_outputs++];
		out->name = s;
		out->binary = -1;
		const json_t *p = json_object_get(o, "parameters");
		if (p != NULL && !json_is_object(p)) {
			return wrong(e, where, "parameters as an object", p);
		}
		const json_t *b = json_object_get(p, "binary_data");
		if (b != NULL) {
			if (!json_is_boolean(b)) {
				return wrong(e, where, "parameters.binary_data as a boolean",
						b);
			}
			out->binary = json_is_true(b);
		}
		if (strcmp(s, "contributions") == 0) {
			r->explain = true;
		}
	}
	return true;
}

/* ======================================================================
 * Phase 1 fast path: the common JSON infer body, without a jansson tree
 *
 * {"inputs": [{"name": "...", "datatype": "FP32"|"FP64", "shape": [N, d]
 * or [N], "data": numbers nested at most as deep as the shape}], "id":
 * "...", "parameters": {"alpha": n, "explain": b, "binary_data_output":
 * b}} -- one tensor, these keys only, each once, in any order, plain
 * ASCII strings without escapes -- is read straight into floats, with
 * request.c's number reader (the double jansson would give, or it gives
 * up). As for /v1 (request.c), anything else -- outputs, another key, a
 * number outside the exact range or beyond a float, a count that does not
 * match the shape, more rows than max_rows, any syntax error -- makes the
 * fast path give up and the body goes through jansson, so every error and
 * every accepted value is what the jansson path gives. A profile of
 * 256-row V2 JSON requests had ebmd spend most of its time in json_loadb.
 * ==================================================================== */

static atomic_bool fast_off;

bool ebm_http_v2_force_jansson(bool on)
{
	return atomic_exchange(&fast_off, on);
}

struct fast {
	const char *p;
	const char *end;
};

static bool f_char(struct fast *f, char c)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\r'
			|| *f->p == '\t')) {
		f->p++;
	}
	if (f->p < f->end && *f->p == c) {
		f->p++;
		return true;
	}
	return false;
}

/* A string of printable ASCII without escapes into buf (size bytes). */
static bool f_string(struct fast *f, char *buf, size_t size)
{
	if (!f_char(f, '"')) {
		return false;
	}
	size_t n = 0;
	while (f->p < f->end && *f->p != '"') {
		unsigned char c = (unsigned char)*f->p++;
		if (c < 0x20 || c >= 0x7f || c == '\\' || n + 1 >= size) {
			return false;
		}
		buf[n++] = (char)c;
	}
	if (f->p == f->end) {
		return false;
	}
	f->p++;
	buf[n] = '\0';
	return true;
}

static bool f_literal(struct fast *f, bool *out)
{
	f_char(f, ' ');
	if (f->end - f->p >= 4 && memcmp(f->p, "true", 4) == 0) {
		f->p += 4;
		*out = true;
		return true;
	}
	if (f->end - f->p >= 5 && memcmp(f->p, "false", 5) == 0) {
		f->p += 5;
		*out = false;
		return true;
	}
	return false;
}

static bool f_number(struct fast *f, double *out)
{
	f_char(f, ' ');
	return f->p < f->end && ebm_http_json_number(&f->p, f->end, out);
}

static bool f_parameters(struct fast *f, struct ebm_http_v2_request *r)
{
	bool seen[3] = { false, false, false };
	char key[32];
	if (!f_char(f, '{')) {
		return false;
	}
	if (f_char(f, '}')) {
		return true;
	}
	do {
		if (!f_string(f, key, sizeof(key)) || !f_char(f, ':')) {
			return false;
		}
		int k = strcmp(key, "alpha") == 0 ? 0
				: strcmp(key, "explain") == 0 ? 1
				: strcmp(key, "binary_data_output") == 0 ? 2 : -1;
		if (k < 0 || seen[k]) {
			return false;
		}
		seen[k] = true;
		if (k == 0 ? !f_number(f, &r->alpha) : !f_literal(f, k == 1
				? &r->explain : &r->binary_output)) {
			return false;
		}
		r->has_alpha |= k == 0;
	} while (f_char(f, ','));
	return f_char(f, '}');
}

/* data: numbers nested at most `depth` arrays deep (the outer one
 * included), into in->values, growing it; *cap its room, *deepest the
 * deepest nesting seen. */
static bool f_data(struct fast *f, struct ebm_http_v2_input *in,
		size_t *cap, int depth, int *deepest)
{
	if (!f_char(f, '[')) {
		return false;
	}
	*deepest = 3 - depth > *deepest ? 3 - depth : *deepest;
	if (f_char(f, ']')) {
		return true;
	}
	do {
		f_char(f, ' ');
		if (f->p < f->end && *f->p == '[') {
			if (depth <= 1 || !f_data(f, in, cap, depth - 1, deepest)) {
				return false;
			}
			continue;
		}
		double v;
		if (!f_number(f, &v) || !(fabs(v) <= (double)FLT_MAX)) {
			return false;
		}
		if (in->count == *cap) {
			size_t c = *cap > 0 ? 2 * *cap : 256;
			float *p = c < *cap ? NULL
					: realloc(in->values, c * sizeof(*p));
			if (p == NULL) {
				return false;
			}
			in->values = p;
			*cap = c;
		}
		in->values[in->count++] = (float)v;
	} while (f_char(f, ','));
	return f_char(f, ']');
}

static bool f_shape(struct fast *f, struct ebm_http_v2_input *in)
{
	if (!f_char(f, '[')) {
		return false;
	}
	in->rank = 0;
	do {
		f_char(f, ' ');
		uint64_t v = 0;
		const char *start = f->p;
		/* At most 9 digits: no product of two overflows. */
		while (f->p < f->end && *f->p >= '0' && *f->p <= '9'
				&& f->p - start < 9) {
			v = v * 10 + (uint64_t)(*f->p++ - '0');
		}
		if (f->p == start || (*start == '0' && f->p - start > 1)
				|| in->rank == 2) {
			return false;
		}
		in->shape[in->rank++] = v;
	} while (f_char(f, ','));
	return f_char(f, ']');
}

static bool f_tensor(struct fast *f, struct ebm_http_v2_request *r,
		struct ebm_http_v2_input *in)
{
	bool seen[4] = { false, false, false, false };
	char key[16];
	char dt[8];
	size_t cap = 0;
	int deepest = 0;
	if (!f_char(f, '{')) {
		return false;
	}
	do {
		if (!f_string(f, key, sizeof(key)) || !f_char(f, ':')) {
			return false;
		}
		int k = strcmp(key, "name") == 0 ? 0
				: strcmp(key, "datatype") == 0 ? 1
				: strcmp(key, "shape") == 0 ? 2
				: strcmp(key, "data") == 0 ? 3 : -1;
		if (k < 0 || seen[k]) {
			return false;
		}
		seen[k] = true;
		bool ok;
		switch (k) {
		case 0:
			ok = f_string(f, r->fast_name, sizeof(r->fast_name));
			break;
		case 1:
			ok = f_string(f, dt, sizeof(dt)) && (strcmp(dt, "FP32") == 0
					|| strcmp(dt, "FP64") == 0);
			in->fp64 = ok && dt[2] == '6';
			break;
		case 2:
			ok = f_shape(f, in);
			break;
		default:
			ok = f_data(f, in, &cap, 2, &deepest);
			break;
		}
		if (!ok) {
			return false;
		}
	} while (f_char(f, ','));
	if (!f_char(f, '}') || !seen[0] || !seen[1] || !seen[2] || !seen[3]) {
		return false;
	}
	in->name = r->fast_name;
	/* The count must be the shape's (no overflow: count <= the body). */
	uint64_t want = in->rank == 2 ? in->shape[0] * in->shape[1]
			: in->shape[0];
	if (in->shape[0] == 0 || (in->rank == 2 && in->shape[1] == 0)
			|| want != in->count || (size_t)deepest > in->rank) {
		return false;
	}
	return true;
}

static bool fast_infer(struct ebm_http_v2_request *r, const char *body,
		size_t len, size_t max_rows)
{
	struct fast f = { body, body + len };
	bool seen[3] = { false, false, false };
	char key[16];
	r->inputs = calloc(1, sizeof(*r->inputs));
	if (r->inputs == NULL) {
		return false;
	}
	r->n_inputs = 1;
	struct ebm_http_v2_input *in = &r->inputs[0];
	if (!f_char(&f, '{')) {
		return false;
	}
	do {
		if (!f_string(&f, key, sizeof(key)) || !f_char(&f, ':')) {
			return false;
		}
		int k = strcmp(key, "inputs") == 0 ? 0
				: strcmp(key, "id") == 0 ? 1
				: strcmp(key, "parameters") == 0 ? 2 : -1;
		if (k < 0 || seen[k]) {
			return false;
		}
		seen[k] = true;
		bool ok;
		if (k == 0) {
			ok = f_char(&f, '[') && f_tensor(&f, r, in) && f_char(&f, ']');
		} else if (k == 1) {
			ok = f_string(&f, r->fast_id, sizeof(r->fast_id));
			r->id = r->fast_id;
		} else {
			ok = f_parameters(&f, r);
		}
		if (!ok) {
			return false;
		}
	} while (f_char(&f, ','));
	if (!f_char(&f, '}') || !seen[0]) {
		return false;
	}
	f_char(&f, ' ');
	if (f.p != f.end || in->shape[0] > max_rows) {
		return false;
	}
	r->n_rows = (size_t)in->shape[0];
	return true;
}

bool ebm_http_v2_parse(struct ebm_http_v2_request *r, const char *body,
		size_t len, long long header_len, bool content_type_ok,
		size_t max_rows, struct ebm_http_error *e)
{
	memset(r, 0, sizeof(*r));
	size_t json_len = len;
	bool has_binary = header_len >= 0;
	if (has_binary && (unsigned long long)header_len > len) {
		/* Nothing can be read, not even the rows: 415 still applies. */
		if (!content_type_ok) {
			return ebm_http_fail(e, 415, "unsupported_media_type",
					"Content-Type must be application/json, or "
					"application/octet-stream with binary data");
		}
		return ebm_http_fail(e, 400, "invalid_header_length",
				"Inference-Header-Content-Length: %lld is beyond the body "
				"(%zu bytes)", header_len, len);
	}
	if (has_binary) {
		json_len = (size_t)header_len;
	} else if (content_type_ok
			&& !atomic_load_explicit(&fast_off, memory_order_relaxed)) {
		if (fast_infer(r, body, len, max_rows)) {
			return true;
		}
		ebm_http_v2_finish(r);
	}
	json_error_t jerr;
	r->root = json_loadb(body, json_len, JSON_REJECT_DUPLICATES, &jerr);
	if (r->root != NULL && too_many_rows(r->root, max_rows, e)) {
		goto fail;
	}
	if (!content_type_ok) {
		ebm_http_fail(e, 415, "unsupported_media_type",
				"Content-Type must be application/json, or "
				"application/octet-stream with binary data");
		goto fail;
	}
	if (r->root == NULL) {
		ebm_http_fail(e, 400, "invalid_json", "%s is not valid JSON: line "
				"%d, column %d: %s", has_binary ? "the JSON header" : "body",
				jerr.line, jerr.column, jerr.text);
		goto fail;
	}
	if (!json_is_object(r->root)) {
		wrong(e, "body", "a JSON object", r->root);
		goto fail;
	}
	const json_t *id = json_object_get(r->root, "id");
	if (id != NULL) {
		if (!json_is_string(id)) {
			wrong(e, "id", "a string", id);
			goto fail;
		}
		r->id = json_string_value(id);
	}
	if (!parse_parameters(r, e)) {
		goto fail;
	}
	const json_t *inputs = json_object_get(r->root, "inputs");
	if (inputs == NULL) {
		ebm_http_fail(e, 400, "missing_field",
				"inputs: required field is missing");
		goto fail;
	}
	if (!json_is_array(inputs)) {
		wrong(e, "inputs", "an array of tensors", inputs);
		goto fail;
	}
	size_t n = json_array_size(inputs);
	if (n == 0 || n > EBM_HTTP_V2_MAX_INPUTS) {
		ebm_http_fail(e, 400, "invalid_inputs",
				"inputs: expected 1 to %d tensors, got %zu",
				EBM_HTTP_V2_MAX_INPUTS, n);
		goto fail;
	}
	r->inputs = calloc(n, sizeof(*r->inputs));
	if (r->inputs == NULL) {
		ebm_http_fail(e, 500, "internal_error", "out of memory");
		goto fail;
	}
	r->n_inputs = n;
	const unsigned char *bin = (const unsigned char *)body + json_len;
	size_t bin_len = len - json_len;
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		if (!parse_input(r, i, json_array_get(inputs, i), json_len, bin,
				bin_len, &used, has_binary, e)) {
			goto fail;
		}
	}
	if (used != bin_len) {
		ebm_http_fail(e, 400, "invalid_binary_size",
				"%zu bytes left over after the inputs' binary data (%zu "
				"bytes declared, %zu after the JSON header)", bin_len - used,
				used, bin_len);
		goto fail;
	}
	if (!parse_outputs(r, e)) {
		goto fail;
	}
	r->n_rows = (size_t)r->inputs[0].shape[0];
	return true;

fail:
	ebm_http_v2_finish(r);
	return false;
}

void ebm_http_v2_finish(struct ebm_http_v2_request *r)
{
	for (size_t i = 0; i < r->n_inputs; i++) {
		free(r->inputs[i].values);
	}
	free(r->inputs);
	json_decref(r->root);
	memset(r, 0, sizeof(*r));
}

/* ======================================================================
 * Phase 2: the inputs against the model's features
 * ==================================================================== */

static bool is_column(const struct ebm_http_v2_input *in)
{
	return in->rank == 1 || in->shape[1] == 1;
}

bool ebm_http_v2_rows(const struct ebm_http_v2_request *r,
		const struct ebm_http_schema *s, float *x, struct ebm_http_error *e)
{
	size_t d = s->d;
	size_t n = r->n_rows;
	const struct ebm_http_v2_input *in0 = &r->inputs[0];
	char where[96];
	if (n == 0) {
		return ebm_http_fail(e, 422, "empty_instances",
				"inputs: the tensors have no rows");
	}
	bool by_feature = r->n_inputs > 1 || (d > 1 && s->names != NULL
			&& is_column(in0) && ebm_http_schema_index(s, in0->name) >= 0);
	if (!by_feature) {
		if (in0->rank != 2 || in0->shape[1] != d) {
			char shape[64];
			shape_text(in0, shape, sizeof(shape));
			input_where(where, sizeof(where), 0, in0->name);
			return ebm_http_fail(e, 422, "wrong_feature_count",
					"%s: expected shape [N, %zu] (%zu features), got %s",
					where, d, d, shape);
		}
		memcpy(x, in0->values, n * d * sizeof(*x));
		return true;
	}
	if (s->names == NULL) {
		return ebm_http_fail(e, 422, "no_feature_names",
				"inputs: this model has no feature names; send one tensor "
				"of shape [N, %zu]", d);
	}
	if (r->n_inputs != d) {
		/* Name what is wrong: an unknown name first, else a missing one. */
		for (size_t i = 0; i < r->n_inputs; i++) {
			if (ebm_http_schema_index(s, r->inputs[i].name) < 0) {
				input_where(where, sizeof(where), i, r->inputs[i].name);
				return ebm_http_fail(e, 422, "unknown_feature",
						"%s: unknown feature", where);
			}
		}
		for (size_t j = 0; j < d; j++) {
			bool given = false;
			for (size_t i = 0; i < r->n_inputs && !given; i++) {
				given = strcmp(r->inputs[i].name, s->names[j]) == 0;
			}
			if (!given) {
				return ebm_http_fail(e, 422, "missing_feature",
						"inputs: missing feature '%.64s'", s->names[j]);
			}
		}
	}
	for (size_t i = 0; i < r->n_inputs; i++) {
		const struct ebm_http_v2_input *in = &r->inputs[i];
		input_where(where, sizeof(where), i, in->name);
		long j = ebm_http_schema_index(s, in->name);
		if (j < 0) {
			return ebm_http_fail(e, 422, "unknown_feature",
					"%s: unknown feature", where);
		}
		if (!is_column(in)) {
			char shape[64];
			shape_text(in, shape, sizeof(shape));
			return ebm_http_fail(e, 422, "wrong_feature_count",
					"%s: a feature's tensor has shape [N] or [N, 1], got %s",
					where, shape);
		}
		for (size_t k = 0; k < n; k++) {
			x[k * d + (size_t)j] = in->values[k];
		}
	}
	return true;
}
