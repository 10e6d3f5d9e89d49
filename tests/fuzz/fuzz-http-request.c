/*
 * fuzz-http-request.c — libFuzzer target: the HTTP API's request parser
 * and validator (src/http/request.c) on arbitrary bodies, for each kind of
 * request, against a schema with names. Invariants: a refused body leaves
 * nothing to free and gets a 400 or 413 with a message; an accepted one
 * goes through every phase-2 check without crashing; every error body the
 * daemon would send is valid JSON (the message quotes input).
 *
 * Differential: score bodies of the common shape skip jansson (request.c's
 * fast path) and numbers are written by an exact integer search
 * (response.c). Both must agree with the jansson / snprintf reference to
 * the bit and the byte: the same verdict, status and message, the same
 * rows, alpha and explain; the same text for the float and double made of
 * the input's first bytes.
 *
 * /v2 (tensor.c): the same bytes as a JSON infer body, and as a binary one
 * whose first two bytes (little-endian) are the Inference-Header-Content-
 * Length, possibly beyond the body. Invariants: a refusal is 400 or 413
 * (or 415 never, the verdict passed is "ok") with nothing left to free and
 * a valid {"error": ...} body; an accepted request has every input's
 * values finite within a float or NaN (missing), and goes through phase 2
 * (422 only).
 * Differential: JSON bodies of the common shape skip jansson (tensor.c's
 * fast path); both paths must give the same verdict and message, and the
 * same tensors to the bit.
 *
 * Missing values: null is accepted in score and compose rows only, and
 * becomes NaN exactly there (has_null set); repair rows never hold NaN.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[3] = { "b", "a", "c" };

static void check_error_body(const struct ebm_http_error *e)
{
	if (e->message[0] == '\0' || e->code == NULL) {
		abort();
	}
	struct ebm_http_buf b;
	ebm_http_buf_init(&b);
	ebm_http_encode_error(&b, e);
	json_t *doc = json_loadb(b.data, b.len, 0, NULL);
	if (doc == NULL) {
		abort();
	}
	json_decref(doc);
	ebm_http_buf_finish(&b);
}

struct outcome {
	bool ok;
	int status;
	char message[sizeof(((struct ebm_http_error *)0)->message)];
	size_t n_rows;
	float x[64 * 3];
	bool has_alpha;
	double alpha;
	bool explain;
};

static void score_outcome(const uint8_t *data, size_t size,
		const struct ebm_http_schema *s, struct outcome *o)
{
	struct ebm_http_request r;
	struct ebm_http_error e;
	memset(o, 0, sizeof(*o));
	o->ok = ebm_http_request_parse(&r, EBM_HTTP_KIND_SCORE,
			(const char *)data, size, true, 64, &e)
			&& ebm_http_request_check(&r, &e)
			&& ebm_http_request_rows(&r, s, o->x, &e);
	if (!o->ok) {
		o->status = e.status;
		memcpy(o->message, e.message, sizeof(o->message));
	} else {
		o->n_rows = r.n_rows;
		o->has_alpha = r.has_alpha;
		o->alpha = r.alpha;
		o->explain = r.explain;
	}
	ebm_http_request_finish(&r);
}

static void compare_paths(const uint8_t *data, size_t size,
		const struct ebm_http_schema *s)
{
	static struct outcome fast, ref;
	score_outcome(data, size, s, &fast);
	bool was = ebm_http_request_force_jansson(true);
	score_outcome(data, size, s, &ref);
	ebm_http_request_force_jansson(was);
	if (fast.ok != ref.ok) {
		abort();
	}
	if (!fast.ok) {
		if (fast.status != ref.status
				|| strcmp(fast.message, ref.message) != 0) {
			abort();
		}
		return;
	}
	if (fast.n_rows != ref.n_rows || fast.has_alpha != ref.has_alpha
			|| fast.explain != ref.explain
			|| (fast.has_alpha && memcmp(&fast.alpha, &ref.alpha,
					sizeof(double)) != 0)
			|| memcmp(fast.x, ref.x, fast.n_rows * 3 * sizeof(float)) != 0) {
		abort();
	}
}

static void compare_numbers(const uint8_t *data, size_t size)
{
	float f;
	double d;
	if (size < sizeof(f) + sizeof(d)) {
		return;
	}
	memcpy(&f, data, sizeof(f));
	memcpy(&d, data + sizeof(f), sizeof(d));
	struct ebm_http_buf a, b;
	ebm_http_buf_init(&a);
	ebm_http_buf_init(&b);
	ebm_http_buf_json_float(&a, f);
	ebm_http_buf_json_double(&a, d);
	bool was = ebm_http_numbers_force_ref(true);
	ebm_http_buf_json_float(&b, f);
	ebm_http_buf_json_double(&b, d);
	ebm_http_numbers_force_ref(was);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
		abort();
	}
	ebm_http_buf_finish(&a);
	ebm_http_buf_finish(&b);
}

static void v2_body(const char *body, size_t len, long long header_len,
		const struct ebm_http_schema *s)
{
	struct ebm_http_v2_request r;
	struct ebm_http_error e;
	if (!ebm_http_v2_parse(&r, body, len, header_len, true, 64, &e)) {
		if ((e.status != 400 && e.status != 413) || r.root != NULL
				|| r.inputs != NULL || e.message[0] == '\0') {
			abort();
		}
		struct ebm_http_buf b;
		ebm_http_buf_init(&b);
		ebm_http_v2_encode_error(&b, &e);
		json_t *doc = json_loadb(b.data, b.len, 0, NULL);
		if (doc == NULL || !json_is_string(json_object_get(doc, "error"))) {
			abort();
		}
		json_decref(doc);
		ebm_http_buf_finish(&b);
		return;
	}
	if (r.n_rows > 64 || r.n_inputs == 0) {
		abort();
	}
	for (size_t i = 0; i < r.n_inputs; i++) {
		const struct ebm_http_v2_input *in = &r.inputs[i];
		if (in->shape[0] != r.n_rows) {
			abort();
		}
		for (size_t k = 0; k < in->count; k++) {
			if (!(in->values[k] >= -FLT_MAX && in->values[k] <= FLT_MAX)
					&& !isnan(in->values[k])) {
				abort();
			}
		}
	}
	static float x[64 * 3];
	if (!ebm_http_v2_rows(&r, s, x, &e) && e.status != 422) {
		abort();
	}
	ebm_http_v2_finish(&r);
}

/* The V2 JSON fast path against jansson: the same verdict, and for an
 * accepted body the same tensor, bit for bit, and parameters. */
static void v2_compare(const char *body, size_t len)
{
	static struct ebm_http_v2_request a, b;
	struct ebm_http_error ea, eb;
	bool oka = ebm_http_v2_parse(&a, body, len, -1, true, 64, &ea);
	bool was = ebm_http_v2_force_jansson(true);
	bool okb = ebm_http_v2_parse(&b, body, len, -1, true, 64, &eb);
	ebm_http_v2_force_jansson(was);
	if (oka != okb) {
		abort();
	}
	if (!oka) {
		if (ea.status != eb.status || strcmp(ea.message, eb.message) != 0) {
			abort();
		}
		return;
	}
	if (a.n_inputs != b.n_inputs || a.n_rows != b.n_rows
			|| a.has_alpha != b.has_alpha || a.explain != b.explain
			|| a.binary_output != b.binary_output
			|| a.n_outputs != b.n_outputs
			|| (a.has_alpha && memcmp(&a.alpha, &b.alpha, sizeof(double)))
			|| (a.id == NULL) != (b.id == NULL)
			|| (a.id != NULL && strcmp(a.id, b.id) != 0)) {
		abort();
	}
	for (size_t i = 0; i < a.n_inputs; i++) {
		const struct ebm_http_v2_input *x = &a.inputs[i], *y = &b.inputs[i];
		if (strcmp(x->name, y->name) != 0 || x->fp64 != y->fp64
				|| x->rank != y->rank || x->count != y->count
				|| memcmp(x->shape, y->shape, sizeof(x->shape)) != 0
				|| memcmp(x->values, y->values,
				x->count * sizeof(float)) != 0) {
			abort();
		}
	}
	ebm_http_v2_finish(&a);
	ebm_http_v2_finish(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum ebm_http_kind kinds[] = {
		EBM_HTTP_KIND_SCORE, EBM_HTTP_KIND_REPAIR, EBM_HTTP_KIND_COMPOSE,
	};
	struct ebm_http_schema s;
	if (!ebm_http_schema_init(&s, 3, names)) {
		abort();
	}
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct ebm_http_request r;
		struct ebm_http_error e;
		if (!ebm_http_request_parse(&r, kinds[k], (const char *)data, size,
				true, 64, &e)) {
			if ((e.status != 400 && e.status != 413) || r.root != NULL) {
				abort();
			}
			check_error_body(&e);
			continue;
		}
		float x[64 * 3];
		bool fixed[3];
		if (!ebm_http_request_check(&r, &e)
				|| !ebm_http_request_rows(&r, &s, x, &e)
				|| !ebm_http_request_fixed(&r, &s, fixed, &e)) {
			if (e.status != 422) {
				abort();
			}
			check_error_body(&e);
		} else {
			bool nan = false;
			for (size_t i = 0; i < r.n_rows * 3; i++) {
				nan = nan || x[i] != x[i];
			}
			if ((nan && !r.has_null) || (kinds[k] == EBM_HTTP_KIND_REPAIR
					&& (nan || r.has_null))) {
				abort();
			}
		}
		ebm_http_request_finish(&r);
	}
	v2_body((const char *)data, size, -1, &s);
	v2_compare((const char *)data, size);
	if (size >= 2) {
		v2_body((const char *)data + 2, size - 2,
				(long long)(data[0] | data[1] << 8), &s);
	}
	compare_paths(data, size, &s);
	compare_numbers(data, size);
	ebm_http_schema_finish(&s);
	return 0;
}
