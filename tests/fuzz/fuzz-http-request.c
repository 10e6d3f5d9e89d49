/*
 * fuzz-http-request.c — libFuzzer target: the HTTP API's request parser
 * and validator (src/http/request.c) on arbitrary bodies, for each kind of
 * request, against a schema with names. Invariants: a refused body leaves
 * nothing to free and gets a 400 or 413 with a message; an accepted one
 * goes through every phase-2 check without crashing; every error body the
 * daemon would send is valid JSON (the message quotes input).
 */
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
		}
		ebm_http_request_finish(&r);
	}
	ebm_http_schema_finish(&s);
	return 0;
}
