/*
 * test-http-request.c — the request parser and validator of the HTTP API
 * (src/http/request.c) on strings: every 400 (syntax, types, numbers), the
 * 413/415 verdicts and their precedence, every 422 of phase 2 with its
 * message, and the conversion of positional and named rows. Also the JSON
 * encoding helpers of response.c that the error bodies go through.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

#define MAX_ROWS 4

/* Names deliberately not in sorted order, to exercise the schema index. */
static const char *const names3[3] = { "c", "a", "b" };

struct outcome {
	bool ok;
	struct ebm_http_error e;
	struct ebm_http_request r;
};

static struct outcome parse_kind(enum ebm_http_kind kind, const char *body,
		bool ct_ok)
{
	struct outcome o;
	memset(&o, 0, sizeof(o));
	o.ok = ebm_http_request_parse(&o.r, kind, body, strlen(body), ct_ok,
			MAX_ROWS, &o.e);
	return o;
}

static struct outcome parse(const char *body)
{
	return parse_kind(EBM_HTTP_KIND_SCORE, body, true);
}

/* Parse must fail with this status, code and exact message. */
static void expect_fail(enum ebm_http_kind kind, const char *body,
		bool ct_ok, int status, const char *code, const char *message)
{
	struct outcome o = parse_kind(kind, body, ct_ok);
	ck_assert_msg(!o.ok, "'%s' was accepted", body);
	ck_assert_int_eq(o.e.status, status);
	ck_assert_str_eq(o.e.code, code);
	if (message != NULL) {
		ck_assert_str_eq(o.e.message, message);
	}
	/* Nothing left to release after a failure. */
	ck_assert_ptr_null(o.r.root);
}

#define FAIL400(body, code, msg) \
	expect_fail(EBM_HTTP_KIND_SCORE, body, true, 400, code, msg)

/* ======================================================================
 * Phase 1: 400
 * ==================================================================== */

START_TEST(test_invalid_json)
{
	struct outcome o = parse("{\"instances\": [[1, 2]");
	ck_assert(!o.ok);
	ck_assert_int_eq(o.e.status, 400);
	ck_assert_str_eq(o.e.code, "invalid_json");
	ck_assert_msg(strstr(o.e.message, "body is not valid JSON: line 1")
			== o.e.message, "%s", o.e.message);
	FAIL400("", "invalid_json", NULL);
	FAIL400("{\"instances\": [[1]]} trailing", "invalid_json", NULL);
	/* A literal that overflows a double is refused by the parser. */
	FAIL400("{\"instances\": [[1e400]]}", "invalid_json", NULL);
	/* NaN and Infinity are not JSON. */
	FAIL400("{\"instances\": [[NaN]]}", "invalid_json", NULL);
	FAIL400("{\"instances\": [[Infinity]]}", "invalid_json", NULL);
	/* Duplicate keys would make a row ambiguous. */
	o = parse("{\"instances\": [{\"a\": 1, \"a\": 2}]}");
	ck_assert(!o.ok);
	ck_assert_str_eq(o.e.code, "invalid_json");
	ck_assert_msg(strstr(o.e.message, "duplicate") != NULL, "%s",
			o.e.message);
}
END_TEST

START_TEST(test_wrong_types)
{
	FAIL400("[[1, 2, 3]]", "wrong_type",
			"body: expected a JSON object, got an array");
	FAIL400("{\"rows\": [[1]]}", "missing_field",
			"instances: required field is missing");
	FAIL400("{\"instances\": {\"a\": 1}}", "wrong_type",
			"instances: expected an array of rows, got an object");
	FAIL400("{\"instances\": null}", "wrong_type",
			"instances: expected an array of rows, got null");
	FAIL400("{\"instances\": [[1, 2], 3]}", "wrong_type",
			"instances[1]: expected an array of numbers or an object, "
			"got a number");
	FAIL400("{\"instances\": [[1, 2], [1, \"2\", 3]]}", "wrong_type",
			"instances[1][1]: expected a number, got a string");
	/* null is a missing feature in score and compose rows only. */
	expect_fail(EBM_HTTP_KIND_REPAIR, "{\"instances\": [[1, null]]}", true,
			400, "wrong_type", "instances[0][1]: expected a number, got null");
	expect_fail(EBM_HTTP_KIND_REPAIR, "{\"instances\": [{\"a\": null}]}",
			true, 400, "wrong_type",
			"instances[0].a: expected a number, got null");
	FAIL400("{\"instances\": [[true]]}", "wrong_type",
			"instances[0][0]: expected a number, got a boolean");
	FAIL400("{\"instances\": [[\"NaN\"]]}", "wrong_type",
			"instances[0][0]: expected a number, got a string");
	FAIL400("{\"instances\": [[[1]]]}", "wrong_type",
			"instances[0][0]: expected a number, got an array");
	FAIL400("{\"instances\": [{\"a\": 1, \"b\": \"x\"}]}", "wrong_type",
			"instances[0].b: expected a number, got a string");
	FAIL400("{\"instances\": [[1]], \"alpha\": \"0.1\"}", "wrong_type",
			"alpha: expected a number, got a string");
	FAIL400("{\"instances\": [[1]], \"alpha\": null}", "wrong_type",
			"alpha: expected a number, got null");
	FAIL400("{\"instances\": [[1]], \"explain\": 1}", "wrong_type",
			"explain: expected a boolean, got a number");
}
END_TEST

START_TEST(test_float_range)
{
	FAIL400("{\"instances\": [[1e39]]}", "invalid_number",
			"instances[0][0]: 1e+39 does not fit a 32-bit float");
	FAIL400("{\"instances\": [[0, -3.5e38]]}", "invalid_number",
			"instances[0][1]: -3.5e+38 does not fit a 32-bit float");
	FAIL400("{\"instances\": [{\"a\": 1e300}]}", "invalid_number",
			"instances[0].a: 1e+300 does not fit a 32-bit float");
	/* The largest float itself is fine, and so are huge integers that
	 * fit a float. */
	struct outcome o = parse("{\"instances\": [[3.4028234e38, "
			"-3.4028234e38, 9007199254740993, 1e-50]]}");
	ck_assert_msg(o.ok, "%s", o.e.message);
	ebm_http_request_finish(&o.r);
}
END_TEST

START_TEST(test_repair_types)
{
	const enum ebm_http_kind k = EBM_HTTP_KIND_REPAIR;
	expect_fail(k, "{\"instances\": [[1]], \"steps\": 1.5}", true, 400,
			"wrong_type", "steps: expected an integer, got 1.5");
	expect_fail(k, "{\"instances\": [[1]], \"steps\": \"5\"}", true, 400,
			"wrong_type", "steps: expected an integer, got a string");
	expect_fail(k, "{\"instances\": [[1]], \"step_size\": [0.1]}", true,
			400, "wrong_type", "step_size: expected a number, got an array");
	expect_fail(k, "{\"instances\": [[1]], \"fixed\": 3}", true, 400,
			"wrong_type",
			"fixed: expected an array of feature indices or names, got a "
			"number");
	expect_fail(k, "{\"instances\": [[1]], \"fixed\": [0, 1.5]}", true, 400,
			"wrong_type", "fixed[1]: expected an integer, got 1.5");
	expect_fail(k, "{\"instances\": [[1]], \"fixed\": [null]}", true, 400,
			"wrong_type",
			"fixed[0]: expected a feature index or name, got null");
	/* 50.0 is an integer. */
	struct outcome o = parse_kind(k, "{\"instances\": [[1]], "
			"\"steps\": 50.0, \"step_size\": 0.5, \"fixed\": [0, \"a\"]}",
			true);
	ck_assert_msg(o.ok, "%s", o.e.message);
	ck_assert(o.r.has_steps);
	ck_assert(o.r.steps == 50.0);
	ck_assert(o.r.has_step_size);
	ck_assert_ptr_nonnull(o.r.fixed);
	ebm_http_request_finish(&o.r);
}
END_TEST

START_TEST(test_compose_types)
{
	const enum ebm_http_kind k = EBM_HTTP_KIND_COMPOSE;
	expect_fail(k, "{\"instances\": [[1]]}", true, 400, "missing_field",
			"models: required field is missing");
	expect_fail(k, "{\"instances\": [[1]], \"models\": \"a\"}", true, 400,
			"wrong_type", "models: expected an array of model names, got "
			"a string");
	expect_fail(k, "{\"instances\": [[1]], \"models\": [\"a\", 2]}", true,
			400, "wrong_type",
			"models[1]: expected a model name, got a number");
	expect_fail(k, "{\"instances\": [[1]], \"models\": [\"a\"], "
			"\"weights\": 1}", true, 400, "wrong_type",
			"weights: expected an array of numbers, got a number");
	expect_fail(k, "{\"instances\": [[1]], \"models\": [\"a\"], "
			"\"weights\": [\"1\"]}", true, 400, "wrong_type",
			"weights[0]: expected a number, got a string");
	expect_fail(k, "{\"instances\": [[1]], \"models\": [\"a\"], "
			"\"alpha\": true}", true, 400, "wrong_type",
			"alpha: expected a number, got a boolean");
	struct outcome o = parse_kind(k, "{\"instances\": [[1]], "
			"\"models\": [\"a\", \"b\"], \"weights\": [1, 0.5], "
			"\"explain\": true}", true);
	ck_assert_msg(o.ok, "%s", o.e.message);
	ck_assert_uint_eq(o.r.n_models, 2);
	ck_assert_str_eq(o.r.models[1], "b");
	ck_assert(o.r.weights[1] == 0.5);
	ck_assert(o.r.explain);
	ebm_http_request_finish(&o.r);
}
END_TEST

/* ======================================================================
 * Phase 1: 413 and 415, and the precedence 413 > 415 > 400
 * ==================================================================== */

START_TEST(test_413_415_precedence)
{
	const char *five = "{\"instances\": [[1], [2], [3], [4], [5]]}";
	expect_fail(EBM_HTTP_KIND_SCORE, five, true, 413, "too_many_rows",
			"instances: 5 rows, at most 4 are accepted");
	/* 413 wins over 415 and over a 400 in a row. */
	expect_fail(EBM_HTTP_KIND_SCORE, five, false, 413, "too_many_rows",
			NULL);
	expect_fail(EBM_HTTP_KIND_SCORE,
			"{\"instances\": [[1], [2], [3], [4], [\"x\"]]}", true, 413,
			"too_many_rows", NULL);
	/* 415 wins over 400. */
	expect_fail(EBM_HTTP_KIND_SCORE, "{\"instances\": [[1]]}", false, 415,
			"unsupported_media_type",
			"Content-Type must be application/json");
	expect_fail(EBM_HTTP_KIND_SCORE, "not json", false, 415,
			"unsupported_media_type", NULL);
	expect_fail(EBM_HTTP_KIND_SCORE, "{\"instances\": [[\"x\"]]}", false,
			415, "unsupported_media_type", NULL);
	/* Exactly max_rows is fine. */
	struct outcome o = parse("{\"instances\": [[1], [2], [3], [4]]}");
	ck_assert_msg(o.ok, "%s", o.e.message);
	ck_assert_uint_eq(o.r.n_rows, 4);
	ebm_http_request_finish(&o.r);
}
END_TEST

/* ======================================================================
 * Phase 2: bounds (422)
 * ==================================================================== */

static void expect_check(enum ebm_http_kind kind, const char *body,
		const char *code, const char *message)
{
	struct outcome o = parse_kind(kind, body, true);
	ck_assert_msg(o.ok, "%s: %s", body, o.e.message);
	bool ok = ebm_http_request_check(&o.r, &o.e);
	if (code == NULL) {
		ck_assert_msg(ok, "%s: %s", body, o.e.message);
	} else {
		ck_assert_msg(!ok, "'%s' passed the check", body);
		ck_assert_int_eq(o.e.status, 422);
		ck_assert_str_eq(o.e.code, code);
		ck_assert_str_eq(o.e.message, message);
	}
	ebm_http_request_finish(&o.r);
}

START_TEST(test_check_bounds)
{
	const enum ebm_http_kind s = EBM_HTTP_KIND_SCORE;
	const enum ebm_http_kind r = EBM_HTTP_KIND_REPAIR;
	expect_check(s, "{\"instances\": []}", "empty_instances",
			"instances: expected at least one row");
	expect_check(s, "{\"instances\": [[1]], \"alpha\": 0}", "invalid_alpha",
			"alpha: must be in (0, 1), got 0");
	expect_check(s, "{\"instances\": [[1]], \"alpha\": 1}", "invalid_alpha",
			"alpha: must be in (0, 1), got 1");
	expect_check(s, "{\"instances\": [[1]], \"alpha\": -0.5}",
			"invalid_alpha", "alpha: must be in (0, 1), got -0.5");
	expect_check(s, "{\"instances\": [[1]], \"alpha\": 0.999}", NULL, NULL);
	expect_check(r, "{\"instances\": [[1]], \"steps\": 0}", "invalid_steps",
			"steps: must be in 1..1000, got 0");
	expect_check(r, "{\"instances\": [[1]], \"steps\": 1001}",
			"invalid_steps", "steps: must be in 1..1000, got 1001");
	expect_check(r, "{\"instances\": [[1]], \"steps\": -3}",
			"invalid_steps", "steps: must be in 1..1000, got -3");
	expect_check(r, "{\"instances\": [[1]], \"steps\": 1000}", NULL, NULL);
	expect_check(r, "{\"instances\": [[1]], \"step_size\": 0}",
			"invalid_step_size", "step_size: must be in (0, 1], got 0");
	expect_check(r, "{\"instances\": [[1]], \"step_size\": 1.5}",
			"invalid_step_size", "step_size: must be in (0, 1], got 1.5");
	expect_check(r, "{\"instances\": [[1]], \"step_size\": 1}", NULL, NULL);
}
END_TEST

START_TEST(test_check_compose)
{
	const enum ebm_http_kind k = EBM_HTTP_KIND_COMPOSE;
	expect_check(k, "{\"instances\": [[1]], \"models\": []}",
			"invalid_models", "models: expected at least one model name");
	char body[2048];
	int n = snprintf(body, sizeof(body),
			"{\"instances\": [[1]], \"models\": [");
	for (int i = 0; i < 65; i++) {
		n += snprintf(body + n, sizeof(body) - (size_t)n, "%s\"m\"",
				i > 0 ? "," : "");
	}
	snprintf(body + n, sizeof(body) - (size_t)n, "]}");
	expect_check(k, body, "invalid_models",
			"models: at most 64 models, got 65");
	expect_check(k, "{\"instances\": [[1]], \"models\": [\"a\", \"b\"], "
			"\"weights\": [1]}", "invalid_weights",
			"weights: expected 2 weights (one per model), got 1");
	expect_check(k, "{\"instances\": [[1]], \"models\": [\"a\", \"b\"], "
			"\"weights\": [1, 0]}", "invalid_weights",
			"weights[1]: must be a finite number > 0, got 0");
	expect_check(k, "{\"instances\": [[1]], \"models\": [\"a\"], "
			"\"weights\": [-2]}", "invalid_weights",
			"weights[0]: must be a finite number > 0, got -2");
	expect_check(k, "{\"instances\": [], \"models\": [\"a\"]}",
			"empty_instances", "instances: expected at least one row");
	expect_check(k, "{\"instances\": [[1]], \"models\": [\"a\"], "
			"\"alpha\": 1.5}", "invalid_alpha",
			"alpha: must be in (0, 1), got 1.5");
	expect_check(k, "{\"instances\": [[1]], \"models\": [\"a\", \"b\"], "
			"\"weights\": [1e-3, 1e3]}", NULL, NULL);
	/* API.md: a model may appear once. 64 times "m" used to be accepted
	 * and cost 64 x 64 blocks of reference energies. */
	expect_check(k, "{\"instances\": [[1]], \"models\": [\"a\", \"b\", "
			"\"a\"], \"weights\": [1e-3, 1e3, 1]}", "duplicate_model",
			"models[2]: 'a' is already models[0]; a model may appear once "
			"(give it a larger weight instead)");
	n = snprintf(body, sizeof(body), "{\"instances\": [[1]], \"models\": [");
	for (int i = 0; i < 64; i++) {
		n += snprintf(body + n, sizeof(body) - (size_t)n, "%s\"m\"",
				i > 0 ? "," : "");
	}
	snprintf(body + n, sizeof(body) - (size_t)n, "]}");
	expect_check(k, body, "duplicate_model",
			"models[1]: 'm' is already models[0]; a model may appear once "
			"(give it a larger weight instead)");
}
END_TEST

/* ======================================================================
 * Phase 2: rows and fixed features against a schema (422)
 * ==================================================================== */

static bool rows(const char *body, const struct ebm_http_schema *s,
		float *x, struct ebm_http_error *e)
{
	struct ebm_http_request r;
	ck_assert_msg(ebm_http_request_parse(&r, EBM_HTTP_KIND_REPAIR, body,
			strlen(body), true, MAX_ROWS, e), "%s", e->message);
	bool ok = ebm_http_request_rows(&r, s, x, e);
	ebm_http_request_finish(&r);
	return ok;
}

static void expect_rows_fail(const char *body, const struct ebm_http_schema *s,
		const char *code, const char *message)
{
	float x[MAX_ROWS * 3];
	struct ebm_http_error e;
	ck_assert_msg(!rows(body, s, x, &e), "'%s' was accepted", body);
	ck_assert_int_eq(e.status, 422);
	ck_assert_str_eq(e.code, code);
	ck_assert_str_eq(e.message, message);
}

START_TEST(test_rows)
{
	struct ebm_http_schema named;
	struct ebm_http_schema positional;
	ck_assert(ebm_http_schema_init(&named, 3, names3));
	ck_assert(ebm_http_schema_init(&positional, 3, NULL));
	ck_assert_int_eq(ebm_http_schema_index(&named, "c"), 0);
	ck_assert_int_eq(ebm_http_schema_index(&named, "a"), 1);
	ck_assert_int_eq(ebm_http_schema_index(&named, "b"), 2);
	ck_assert_int_eq(ebm_http_schema_index(&named, "d"), -1);
	ck_assert_int_eq(ebm_http_schema_index(&positional, "a"), -1);

	float x[MAX_ROWS * 3];
	struct ebm_http_error e;
	/* Positional and named rows mixed; names in any order. */
	ck_assert(rows("{\"instances\": [[1, 2, 3], "
			"{\"b\": 6, \"c\": 4, \"a\": 5}, [-1e-3, 0, 7e5]]}", &named, x,
			&e));
	const float want[9] = { 1, 2, 3, 4, 5, 6, -1e-3f, 0, 7e5f };
	for (int i = 0; i < 9; i++) {
		ck_assert_msg(x[i] == want[i], "x[%d] = %g", i, (double)x[i]);
	}
	expect_rows_fail("{\"instances\": [[1, 2, 3], [1, 2]]}", &named,
			"wrong_feature_count",
			"instances[1]: expected 3 features, got 2");
	expect_rows_fail("{\"instances\": [[1, 2, 3, 4]]}", &positional,
			"wrong_feature_count",
			"instances[0]: expected 3 features, got 4");
	expect_rows_fail("{\"instances\": [[]]}", &positional,
			"wrong_feature_count",
			"instances[0]: expected 3 features, got 0");
	expect_rows_fail("{\"instances\": [{\"a\": 1, \"b\": 2, \"c\": 3}]}",
			&positional, "no_feature_names",
			"instances[0]: this model has no feature names; send an array "
			"of 3 numbers");
	expect_rows_fail("{\"instances\": [{\"a\": 1, \"b\": 2, \"c\": 3, "
			"\"zz\": 4}]}", &named, "unknown_feature",
			"instances[0].zz: unknown feature 'zz'");
	expect_rows_fail("{\"instances\": [[1, 2, 3], {\"a\": 1, \"c\": 3}]}",
			&named, "missing_feature",
			"instances[1]: missing feature 'b'");
	expect_rows_fail("{\"instances\": [{}]}", &named, "missing_feature",
			"instances[0]: missing feature 'c'");
	ebm_http_schema_finish(&named);
	ebm_http_schema_finish(&positional);
}
END_TEST

/* Score rows: null is NaN (missing), has_null says so; absent is not null. */
START_TEST(test_null_rows)
{
	struct ebm_http_schema named;
	ck_assert(ebm_http_schema_init(&named, 3, names3));
	static const enum ebm_http_kind kinds[] = { EBM_HTTP_KIND_SCORE,
		EBM_HTTP_KIND_COMPOSE };
	static const char body[] = "{\"models\": [\"m\"], \"instances\": "
			"[[1, null, 3], {\"b\": null, \"c\": 4, \"a\": 5}, [7, 8, 9]]}";
	for (size_t k = 0; k < 2; k++) {
		struct ebm_http_request r;
		struct ebm_http_error e;
		ck_assert_msg(ebm_http_request_parse(&r, kinds[k], body,
				strlen(body), true, MAX_ROWS, &e), "%s", e.message);
		ck_assert(r.has_null);
		float x[9];
		ck_assert(ebm_http_request_rows(&r, &named, x, &e));
		ck_assert(x[0] == 1 && isnan(x[1]) && x[2] == 3);
		ck_assert(x[3] == 4 && x[4] == 5 && isnan(x[5]));
		ck_assert(x[6] == 7 && x[7] == 8 && x[8] == 9);
		ebm_http_request_finish(&r);
	}
	struct ebm_http_request r;
	struct ebm_http_error e;
	const char *plain = "{\"instances\": [{\"b\": 1, \"c\": 4, \"a\": 5}]}";
	ck_assert(ebm_http_request_parse(&r, EBM_HTTP_KIND_SCORE, plain,
			strlen(plain), true, MAX_ROWS, &e));
	ck_assert(!r.has_null);
	ebm_http_request_finish(&r);
	const char *absent = "{\"instances\": [{\"b\": null, \"c\": 4}]}";
	ck_assert(ebm_http_request_parse(&r, EBM_HTTP_KIND_SCORE, absent,
			strlen(absent), true, MAX_ROWS, &e));
	float x[3];
	ck_assert(!ebm_http_request_rows(&r, &named, x, &e));
	ck_assert_int_eq(e.status, 422);
	ck_assert_str_eq(e.message, "instances[0]: missing feature 'a'");
	ebm_http_request_finish(&r);
	ebm_http_schema_finish(&named);
}
END_TEST

static bool fixed(const char *fixed_json, const struct ebm_http_schema *s,
		bool *out, struct ebm_http_error *e)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"instances\": [[1, 2, 3]], "
			"\"fixed\": %s}", fixed_json);
	struct ebm_http_request r;
	ck_assert_msg(ebm_http_request_parse(&r, EBM_HTTP_KIND_REPAIR, body,
			strlen(body), true, MAX_ROWS, e), "%s", e->message);
	bool ok = ebm_http_request_fixed(&r, s, out, e);
	ebm_http_request_finish(&r);
	return ok;
}

static void expect_fixed_fail(const char *fixed_json,
		const struct ebm_http_schema *s, const char *code,
		const char *message)
{
	bool out[3];
	struct ebm_http_error e;
	ck_assert_msg(!fixed(fixed_json, s, out, &e), "'%s' was accepted",
			fixed_json);
	ck_assert_int_eq(e.status, 422);
	ck_assert_str_eq(e.code, code);
	ck_assert_str_eq(e.message, message);
}

START_TEST(test_fixed)
{
	struct ebm_http_schema named;
	struct ebm_http_schema positional;
	ck_assert(ebm_http_schema_init(&named, 3, names3));
	ck_assert(ebm_http_schema_init(&positional, 3, NULL));
	bool out[3];
	struct ebm_http_error e;
	ck_assert(fixed("[2, \"c\"]", &named, out, &e));
	ck_assert(out[0] && !out[1] && out[2]);
	ck_assert(fixed("[]", &positional, out, &e));
	ck_assert(!out[0] && !out[1] && !out[2]);
	expect_fixed_fail("[3]", &named, "invalid_fixed",
			"fixed[0]: feature index must be in 0..2, got 3");
	expect_fixed_fail("[0, -1]", &named, "invalid_fixed",
			"fixed[1]: feature index must be in 0..2, got -1");
	expect_fixed_fail("[\"zz\"]", &named, "unknown_feature",
			"fixed[0]: unknown feature 'zz'");
	expect_fixed_fail("[\"a\"]", &positional, "no_feature_names",
			"fixed[0]: this model has no feature names; give feature "
			"indices");
	ebm_http_schema_finish(&named);
	ebm_http_schema_finish(&positional);
}
END_TEST

/* ======================================================================
 * Encoding
 * ==================================================================== */

START_TEST(test_encoding)
{
	struct ebm_http_buf b;
	ebm_http_buf_init(&b);
	struct ebm_http_error e = { .status = 400, .code = "wrong_type" };
	snprintf(e.message, sizeof(e.message), "a \"quote\", \\ and \n\x01");
	ebm_http_encode_error(&b, &e);
	ck_assert_str_eq(b.data, "{\"error\":{\"code\":\"wrong_type\","
			"\"message\":\"a \\\"quote\\\", \\\\ and \\n\\u0001\"}}\n");

	/* Not UTF-8 (a stray continuation byte, a cut sequence, an overlong
	 * '/', a surrogate): U+FFFD, so the body stays valid JSON. */
	ebm_http_buf_reset(&b);
	ebm_http_buf_json_string(&b, "a\x80" "b\xc3\xa9\xe2\x82 \xc0\xaf"
			"\xed\xa0\x80");
	ck_assert_str_eq(b.data, "\"a\xef\xbf\xbd" "b\xc3\xa9\xef\xbf\xbd"
			"\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			"\xef\xbf\xbd\"");
	ck_assert(ebm_http_utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80"));
	ck_assert(!ebm_http_utf8_valid("\xf4\x90\x80\x80"));

	ebm_http_buf_reset(&b);
	ebm_http_buf_json_float(&b, 0.1f);
	ebm_http_buf_add(&b, " ", 1);
	ebm_http_buf_json_float(&b, 1.0f / 3.0f);
	ebm_http_buf_add(&b, " ", 1);
	ebm_http_buf_json_float(&b, NAN);
	ebm_http_buf_add(&b, " ", 1);
	ebm_http_buf_json_double(&b, 0.01);
	ebm_http_buf_add(&b, " ", 1);
	ebm_http_buf_json_double(&b, 1.0 / 3.0);
	ck_assert_str_eq(b.data, "0.1 0.33333334 null 0.01 0.3333333333333333");
	/* Every float printed reads back as the same float. */
	for (float v = 1e-7f; v < 1e7f; v *= 1.37f) {
		ebm_http_buf_reset(&b);
		ebm_http_buf_json_float(&b, v);
		ck_assert(strtof(b.data, NULL) == v);
	}
	ck_assert(ebm_http_float_value(0.05f) == 0.05);
	ebm_http_buf_finish(&b);
}
END_TEST

/* ======================================================================
 * Fast paths: the same answers as jansson and snprintf
 * ==================================================================== */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Parses body with the fast path on and off; both must agree. */
static void same_as_jansson(const char *body, bool ct_ok, size_t width)
{
	struct outcome a;
	struct outcome b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.ok = ebm_http_request_parse(&a.r, EBM_HTTP_KIND_SCORE, body,
			strlen(body), ct_ok, MAX_ROWS, &a.e);
	ebm_http_request_force_jansson(true);
	b.ok = ebm_http_request_parse(&b.r, EBM_HTTP_KIND_SCORE, body,
			strlen(body), ct_ok, MAX_ROWS, &b.e);
	ebm_http_request_force_jansson(false);
	ck_assert_msg(a.ok == b.ok, "'%s': fast %d, jansson %d", body, a.ok,
			b.ok);
	if (!a.ok) {
		ck_assert_int_eq(a.e.status, b.e.status);
		ck_assert_str_eq(a.e.code, b.e.code);
		ck_assert_str_eq(a.e.message, b.e.message);
		return;
	}
	ck_assert_uint_eq(a.r.n_rows, b.r.n_rows);
	ck_assert(a.r.has_alpha == b.r.has_alpha);
	ck_assert_msg(!a.r.has_alpha || memcmp(&a.r.alpha, &b.r.alpha,
			sizeof(double)) == 0, "'%s': alpha %a vs %a", body, a.r.alpha,
			b.r.alpha);
	ck_assert(a.r.explain == b.r.explain);
	struct ebm_http_schema sc;
	ck_assert(ebm_http_schema_init(&sc, width, NULL));
	float xa[MAX_ROWS * 8];
	float xb[MAX_ROWS * 8];
	struct ebm_http_error ea;
	struct ebm_http_error eb;
	memset(&ea, 0, sizeof(ea));
	memset(&eb, 0, sizeof(eb));
	bool oka = ebm_http_request_rows(&a.r, &sc, xa, &ea);
	bool okb = ebm_http_request_rows(&b.r, &sc, xb, &eb);
	ck_assert(oka == okb);
	if (oka) {
		for (size_t i = 0; i < a.r.n_rows * width; i++) {
			ck_assert_msg(memcmp(&xa[i], &xb[i], sizeof(float)) == 0,
					"'%s': value %zu: %a vs %a", body, i, (double)xa[i],
					(double)xb[i]);
		}
	} else {
		ck_assert_str_eq(ea.message, eb.message);
	}
	ebm_http_schema_finish(&sc);
	ebm_http_request_finish(&a.r);
	ebm_http_request_finish(&b.r);
}

START_TEST(test_fast_request)
{
	static const char *const bodies[] = {
		"{\"instances\": [[1, 2]]}",
		"{\"instances\":[[1,2],[3,4]],\"alpha\":0.05,\"explain\":true}",
		" {\n\t\"explain\" : false , \"instances\" : [ [ -0.0 , -0 ] ] }\r\n",
		"{\"alpha\": 1, \"instances\": [[0.000471698113, 1e-3]]}",
		"{\"alpha\": 2e-1, \"instances\": [[1E+2, -1.5e3]]}",
		"{\"instances\": [[1, 2]], \"instances\": [[1, 2]]}",
		"{\"instances\": [[1, 2]], \"alpha\": 0.1, \"alpha\": 0.2}",
		"{\"instances\": [[1, 2], [3]]}",
		"{\"instances\": [[1, 2], {\"a\": 1}]}",
		"{\"instances\": []}",
		"{\"instances\": [[]]}",
		"{\"instances\": [[01]]}",
		"{\"instances\": [[1.]]}",
		"{\"instances\": [[.5]]}",
		"{\"instances\": [[+1]]}",
		"{\"instances\": [[1e]]}",
		"{\"instances\": [[-]]}",
		"{\"instances\": [[1e400]]}",
		"{\"instances\": [[1e39]]}",
		"{\"instances\": [[3.4028234e38, 9007199254740993]]}",
		"{\"instances\": [[123456789012345678901234567890]]}",
		"{\"instances\": [[0.1234567890123456789]]}",
		"{\"instances\": [[1e-50, 1e-30]]}",
		"{\"instances\": [[123456789012345678, -999999999999999999]]}",
		"{\"instances\": [[1234567890123456789, 12345678901234567890]]}",
		"{\"instances\": [[0.12345678901234567, 12345678.87654321]]}",
		"{\"instances\": [[0.00000000000000000000001, 9007199254740993.0]]}",
		"{\"instances\": [[100000000000000000000.5, 1.000000000000000000]]}",
		"{\"instances\": [[00000000, 0.000000000]]}",
		"{\"instances\": [[12345678e1, 87654321.12345678e-3]]}",
		"{\"instances\": [[1, 2]]} x",
		"{\"instances\": [[1, 2]],}",
		"{\"instances\": [[1, 2],]}",
		"{\"instances\": [[1, 2,]]}",
		"{\"instances\": [[1, 2]]",
		"{\"instances\": [[1, 2]], \"explain\": 1}",
		"{\"instances\": [[1, 2]], \"explain\": tru}",
		"{\"instances\": [[1, 2]], \"alpha\": \"0.1\"}",
		"{\"instances\": [[1, 2]], \"other\": 1}",
		"{\"inst\\u0061nces\": [[1, 2]]}",
		"{\"instances\": [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]}",
		"{\"explain\": true}",
		"{}",
		"[]",
		"",
	};
	/* The common shape does take the fast path. */
	struct outcome o = parse("{\"instances\": [[1, 2], [3, 4]]}");
	ck_assert(o.ok);
	ck_assert_ptr_null(o.r.root);
	ck_assert_ptr_nonnull(o.r.values);
	ck_assert_uint_eq(o.r.width, 2);
	ebm_http_request_finish(&o.r);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		same_as_jansson(bodies[i], true, 2);
		same_as_jansson(bodies[i], false, 2);
	}
	/* Random numbers in every spelling. */
	static const char *const fmts[] = { "%.17g", "%.9g", "%.6g", "%g",
			"%e", "%.3E", "%.12f", "%.0f", "%.1f" };
	char body[1024];
	for (int t = 0; t < 5000; t++) {
		size_t width = 1 + rnd() % 8;
		size_t rows = 1 + rnd() % MAX_ROWS;
		int n = snprintf(body, sizeof(body), "{\"instances\":[");
		for (size_t i = 0; i < rows; i++) {
			n += snprintf(body + n, sizeof(body) - (size_t)n, "%s[",
					i > 0 ? "," : "");
			for (size_t j = 0; j < width; j++) {
				double v = ldexp((double)(rnd() >> 11), -53)
						* pow(10.0, (double)(int)(rnd() % 24) - 12);
				if (rnd() & 1) {
					v = -v;
				}
				const char *f = fmts[rnd() % (sizeof(fmts) / sizeof(fmts[0]))];
				if (j > 0) {
					body[n++] = ',';
				}
				if (rnd() % 8 == 0) {
					n += snprintf(body + n, sizeof(body) - (size_t)n, "%lld",
							(long long)(v * 1e6));
				} else {
					n += snprintf(body + n, sizeof(body) - (size_t)n, f, v);
				}
			}
			n += snprintf(body + n, sizeof(body) - (size_t)n, "]");
		}
		snprintf(body + n, sizeof(body) - (size_t)n, "],\"alpha\":%.*g}",
				(int)(1 + rnd() % 17), ldexp((double)(rnd() >> 11), -53));
		same_as_jansson(body, true, width);
	}
}
END_TEST

static void same_text(float f, double d, bool is_float)
{
	struct ebm_http_buf a;
	struct ebm_http_buf b;
	ebm_http_buf_init(&a);
	ebm_http_buf_init(&b);
	ebm_http_buf_add(&a, "", 0);
	ebm_http_buf_add(&b, "", 0);
	if (is_float) {
		ebm_http_buf_json_float(&a, f);
		ebm_http_numbers_force_ref(true);
		ebm_http_buf_json_float(&b, f);
	} else {
		ebm_http_buf_json_double(&a, d);
		ebm_http_numbers_force_ref(true);
		ebm_http_buf_json_double(&b, d);
	}
	ebm_http_numbers_force_ref(false);
	ck_assert_msg(strcmp(a.data, b.data) == 0, "%a: fast %s, snprintf %s",
			is_float ? (double)f : d, a.data, b.data);
	ebm_http_buf_finish(&a);
	ebm_http_buf_finish(&b);
}

START_TEST(test_fast_numbers)
{
	/* Around powers of ten and the fast path's bounds. */
	for (int e = -6; e <= 16; e++) {
		for (int k = 1; k < 200; k++) {
			double d = k * pow(10.0, e);
			float f = (float)d;
			same_text(0, d, false);
			same_text(0, nextafter(d, 0), false);
			same_text(0, nextafter(d, INFINITY), false);
			same_text(f, 0, true);
			same_text(nextafterf(f, 0), 0, true);
			same_text(nextafterf(f, INFINITY), 0, true);
		}
	}
	same_text(0.0f, 0, true);
	same_text(-0.0f, 0, true);
	same_text(0, 0.0, false);
	same_text(0, -0.0, false);
	/* Any bits, magnitudes where responses live, p-values. */
	for (int i = 0; i < 30000; i++) {
		uint32_t u = (uint32_t)rnd();
		float f;
		memcpy(&f, &u, sizeof(f));
		if (isfinite(f)) {
			same_text(f, 0, true);
		}
		uint64_t w = rnd();
		double d;
		memcpy(&d, &w, sizeof(d));
		if (isfinite(d)) {
			same_text(0, d, false);
		}
		f = ldexpf((float)(rnd() >> 40) / 16777216.0f + 0.5f,
				(int)(rnd() % 40) - 16);
		same_text((rnd() & 1) ? -f : f, 0, true);
		d = ldexp((double)(rnd() >> 11) / 9007199254740992.0 + 0.5,
				(int)(rnd() % 70) - 16);
		same_text(0, (rnd() & 1) ? -d : d, false);
		uint64_t n_ref = 1 + rnd() % 100000;
		uint64_t k = 1 + rnd() % n_ref;
		same_text(0, (double)k / (double)(n_ref + 1), false);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("http-request");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_invalid_json);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_float_range);
	tcase_add_test(tc, test_repair_types);
	tcase_add_test(tc, test_compose_types);
	tcase_add_test(tc, test_413_415_precedence);
	suite_add_tcase(s, tc);
	tc = tcase_create("check");
	tcase_add_test(tc, test_check_bounds);
	tcase_add_test(tc, test_check_compose);
	tcase_add_test(tc, test_rows);
	tcase_add_test(tc, test_null_rows);
	tcase_add_test(tc, test_fixed);
	suite_add_tcase(s, tc);
	tc = tcase_create("encode");
	tcase_add_test(tc, test_encoding);
	suite_add_tcase(s, tc);
	tc = tcase_create("fast");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fast_request);
	tcase_add_test(tc, test_fast_numbers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
