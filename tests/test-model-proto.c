/*
 * test-model-proto.c — version 2 of the model file (the prototype term):
 * round trip through memory with identical energies, a model without
 * prototypes still written as version 1, and one test per rejection of a
 * corrupt prototype field (each patched file is resealed, so the checks
 * past the checksum are reached); and the shipped models, written by
 * earlier builds, still give their own reference rows the reference
 * energies stored in them (the scoring code may change in the last bits
 * only, or every stored p-value would drift).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "model/model.h"

static void w32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static uint32_t r32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			(uint32_t)p[3] << 24;
}

static void reseal(uint8_t *buf, size_t size)
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, size - 16));
	memcpy(buf + size - 16, c.digest, 16);
}

static void patch_f32(uint8_t *buf, size_t size, size_t off, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	w32(buf + off, u);
	reseal(buf, size);
}

static char *dup_s(const char *s)
{
	char *p = malloc(strlen(s) + 1);
	strcpy(p, s);
	return p;
}

#define D 3
#define NP 4
#define NREF 6

/* A small finalized model with NP prototypes (n_protos 0: none). */
static struct ebm_model *build(uint32_t n_protos)
{
	static const uint32_t hidden[1] = { 5 };
	struct ebm_model *m = ebm_model_alloc();
	ck_assert(ebm_net_init(&m->net, D, 1, 1, hidden, EBM_ACT_SILU));
	for (uint32_t j = 0; j < D; j++) {
		m->net.mean[j] = 0.5f * (float)j;
		m->net.scale[j] = 1.0f + 0.25f * (float)j;
		m->net.prec[j * D + j] = 1.0f;
	}
	for (size_t i = 0; i < m->net.n_params; i++) {
		m->net.params[i] = 0.01f * (float)(i % 7) - 0.03f;
	}
	ck_assert(ebm_proto_init(&m->net.proto, n_protos, D));
	for (uint32_t j = 0; j < n_protos; j++) {
		for (uint32_t q = 0; q < D; q++) {
			m->net.proto.c[j * D + q] = (float)j - 1.5f + 0.1f * (float)q;
		}
		m->net.proto.logw[j] = logf(1.0f / (float)n_protos);
		m->net.proto.h[j] = 0.6f + 0.1f * (float)j;
	}
	if (n_protos > 0) {
		m->net.proto.w_net = 0.25f;
		m->net.proto.w_proto = 2.0f;
		ebm_proto_update(&m->net.proto, D);
	}
	m->alpha = 0.01f;
	m->created = 1;
	m->seed = 2;
	m->objective = dup_s("dsm");
	m->options = dup_s("protos=4\n");
	m->n_ref = NREF;
	m->ref_rows = malloc(NREF * D * sizeof(float));
	m->ref_energy = malloc(NREF * sizeof(float));
	for (size_t i = 0; i < NREF * D; i++) {
		m->ref_rows[i] = 0.3f * (float)(i % 5) - 0.6f;
	}
	for (uint32_t i = 0; i < NREF; i++) {
		m->ref_energy[i] = (float)i;
	}
	struct ebm_error err;
	ck_assert_msg(ebm_model_finalize(m, &err) == EBM_STATUS_OK, "%s",
			err.message);
	return m;
}

static uint8_t *serialize(const struct ebm_model *m, size_t *size)
{
	void *buf;
	struct ebm_error err;
	ck_assert_int_eq(ebm_model_write_buffer(m, &buf, size, &err),
			EBM_STATUS_OK);
	return buf;
}

/* Offset of the prototype header: after the hidden widths and strings. */
static size_t proto_hdr(const uint8_t *p)
{
	size_t pos = 64 + 4 * (size_t)r32(p + 32);
	pos += 4 + r32(p + pos);                  /* objective */
	uint32_t has_names = r32(p + pos);
	pos += 4;
	for (uint32_t i = 0; has_names && i < r32(p + 24); i++) {
		pos += 4 + r32(p + pos);
	}
	pos += 4 + r32(p + pos);                  /* options */
	return pos;
}

/* Offset of the blob's prototype centres: after mean, scale, P, params. */
static size_t protos_off(const uint8_t *p, const struct ebm_model *m)
{
	size_t pos = proto_hdr(p) + 12;
	pos += (16 - pos % 16) % 16;
	return pos + 4 * (2 * D + D * D + m->net.n_params);
}

static void energies(const struct ebm_model *m, float *e)
{
	static const float x[2 * D] = { 0.1f, 0.7f, 1.9f, -2.0f, 3.0f, 0.4f };
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	ck_assert_int_eq(ebm_model_energy(m, ctx, x, 2, e, &err), EBM_STATUS_OK);
	ebm_ctx_destroy(ctx);
}

static void expect_reject(const uint8_t *buf, size_t size,
		enum ebm_status code, const char *message, uint64_t offset)
{
	struct ebm_model *m = NULL;
	struct ebm_error err;
	enum ebm_status st = ebm_model_load_buffer(buf, size, "t.ebm", &m, &err);
	ck_assert_msg(st == code, "status %s, want %s (%s)",
			ebm_status_string(st), ebm_status_string(code), err.message);
	ck_assert_ptr_null(m);
	ck_assert_str_eq(err.message, message);
	ck_assert_uint_eq(err.offset, offset);
}

START_TEST(t_roundtrip_v2)
{
	struct ebm_model *a = build(NP);
	size_t size;
	uint8_t *buf = serialize(a, &size);
	ck_assert_uint_eq(r32(buf + 8), 2);
	struct ebm_model *b = NULL;
	struct ebm_error err;
	ck_assert_int_eq(ebm_model_load_buffer(buf, size, NULL, &b, &err),
			EBM_STATUS_OK);
	const struct ebm_proto *pa = &a->net.proto, *pb = &b->net.proto;
	ck_assert_uint_eq(pb->n, NP);
	ck_assert(pb->w_net == pa->w_net && pb->w_proto == pa->w_proto);
	ck_assert(memcmp(pa->h, pb->h, NP * sizeof(float)) == 0);
	ck_assert(memcmp(pa->c, pb->c, NP * D * sizeof(float)) == 0);
	ck_assert(memcmp(pa->logw, pb->logw, NP * sizeof(float)) == 0);
	ck_assert(memcmp(pa->c_sq, pb->c_sq, NP * sizeof(float)) == 0);
	ck_assert_str_eq(ebm_model_checksum(a), ebm_model_checksum(b));
	float ea[2], eb[2];
	energies(a, ea);
	energies(b, eb);
	ck_assert(memcmp(ea, eb, sizeof(ea)) == 0);
	/* The energy is the tempered product: with the term removed it is
	 * the network's alone, so the two differ. */
	struct ebm_model *c = build(0);
	float ec[2];
	energies(c, ec);
	ck_assert(ec[0] != ea[0]);
	void *again;
	size_t size2;
	ck_assert_int_eq(ebm_model_write_buffer(b, &again, &size2, &err),
			EBM_STATUS_OK);
	ck_assert_uint_eq(size2, size);
	ck_assert(memcmp(again, buf, size) == 0);
	free(again);
	free(buf);
	ebm_model_destroy(a);
	ebm_model_destroy(b);
	ebm_model_destroy(c);
}
END_TEST

START_TEST(t_no_protos_is_version_1)
{
	struct ebm_model *m = build(0);
	size_t size;
	uint8_t *buf = serialize(m, &size);
	ck_assert_uint_eq(r32(buf + 8), 1);
	/* version 1 has no prototype header: the padding starts right after
	 * the options string */
	size_t end = proto_hdr(buf);
	size_t blob = end + (16 - end % 16) % 16;
	ck_assert_uint_eq(size, blob + 4 * (2 * D + D * D + m->net.n_params +
			NREF * D + NREF) + 16);
	free(buf);
	ebm_model_destroy(m);
}
END_TEST

START_TEST(t_reject_proto_header)
{
	struct ebm_model *m = build(NP);
	size_t size;
	uint8_t *buf = serialize(m, &size);
	size_t h = proto_hdr(buf);
	char msg[160];

	w32(buf + h, 0);
	reseal(buf, size);
	snprintf(msg, sizeof(msg), "t.ebm: offset %zu: prototype count is 0 in "
			"a version-2 file, must be at least 1", h);
	expect_reject(buf, size, EBM_STATUS_FORMAT, msg, h);

	w32(buf + h, EBM_MODEL_MAX_PROTOS + 1);
	reseal(buf, size);
	snprintf(msg, sizeof(msg), "t.ebm: offset %zu: prototype count is %u, "
			"over the limit of %u", h, EBM_MODEL_MAX_PROTOS + 1,
			EBM_MODEL_MAX_PROTOS);
	expect_reject(buf, size, EBM_STATUS_LIMIT, msg, h);

	/* one prototype more than the blob holds */
	w32(buf + h, NP + 1);
	reseal(buf, size);
	struct ebm_model *out = NULL;
	struct ebm_error err;
	ck_assert_int_eq(ebm_model_load_buffer(buf, size, "t.ebm", &out, &err),
			EBM_STATUS_FORMAT);
	ck_assert_ptr_null(out);
	ck_assert_msg(strstr(err.message, "bytes of floats") != NULL, "%s",
			err.message);
	w32(buf + h, NP);

	static const struct {
		size_t at;
		float v;
		const char *what;
	} bad[] = {
		{ 4, -0.5f, "network weight is -0.5, must be finite and >= 0" },
		{ 4, INFINITY, "network weight is inf, must be finite and >= 0" },
		{ 8, 0.0f, "prototype weight is 0, must be finite and > 0" },
		{ 8, NAN, "prototype weight is nan, must be finite and > 0" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		float keep;
		memcpy(&keep, buf + h + bad[i].at, 4);
		patch_f32(buf, size, h + bad[i].at, bad[i].v);
		snprintf(msg, sizeof(msg), "t.ebm: offset %zu: %s", h + bad[i].at,
				bad[i].what);
		expect_reject(buf, size, EBM_STATUS_FORMAT, msg, h + bad[i].at);
		patch_f32(buf, size, h + bad[i].at, keep);
	}
	/* w_net = 0 (the prototypes alone) is valid */
	patch_f32(buf, size, h + 4, 0.0f);
	ck_assert_int_eq(ebm_model_load_buffer(buf, size, "t.ebm", &out, &err),
			EBM_STATUS_OK);
	ebm_model_destroy(out);

	/* a version-2 file cut inside its prototype header */
	uint8_t *cut = malloc(h + 6 + 16);
	memcpy(cut, buf, h + 6);
	uint64_t sz = h + 6 + 16;
	for (int i = 0; i < 8; i++) {
		cut[16 + i] = (uint8_t)(sz >> (8 * i));
	}
	reseal(cut, (size_t)sz);
	snprintf(msg, sizeof(msg), "t.ebm: offset %zu: unexpected end of file "
			"in the prototype header", h + 4);
	expect_reject(cut, (size_t)sz, EBM_STATUS_FORMAT, msg, h + 4);
	free(cut);
	free(buf);
	ebm_model_destroy(m);
}
END_TEST

START_TEST(t_reject_proto_values)
{
	struct ebm_model *m = build(NP);
	size_t size;
	uint8_t *buf = serialize(m, &size);
	size_t c = protos_off(buf, m);
	char msg[128];
	patch_f32(buf, size, c + 4 * 5, NAN);
	snprintf(msg, sizeof(msg), "t.ebm: offset %zu: non-finite value in "
			"protos[5]", c + 20);
	expect_reject(buf, size, EBM_STATUS_FORMAT, msg, c + 20);
	patch_f32(buf, size, c + 4 * 5, m->net.proto.c[5]);
	size_t lw = c + 4 * NP * D;
	patch_f32(buf, size, lw + 4, -INFINITY);
	snprintf(msg, sizeof(msg), "t.ebm: offset %zu: non-finite value in "
			"proto_logw[1]", lw + 4);
	expect_reject(buf, size, EBM_STATUS_FORMAT, msg, lw + 4);
	patch_f32(buf, size, lw + 4, m->net.proto.logw[1]);
	size_t hh = lw + 4 * NP;
	static const float bad[3] = { 0.0f, -1.0f, NAN };
	static const char *shown[3] = { "0", "-1", "nan" };
	for (int i = 0; i < 3; i++) {
		patch_f32(buf, size, hh + 8, bad[i]);
		snprintf(msg, sizeof(msg), "t.ebm: offset %zu: proto_h[2] is %s, "
				"must be finite and > 0", hh + 8, shown[i]);
		expect_reject(buf, size, EBM_STATUS_FORMAT, msg, hh + 8);
	}
	free(buf);
	ebm_model_destroy(m);
}
END_TEST

START_TEST(t_finalize_rejects_bad_protos)
{
	struct ebm_model *m = build(NP);
	struct ebm_error err;
	m->net.proto.h[1] = 0.0f;
	ck_assert_int_eq(ebm_model_finalize(m, &err), EBM_STATUS_FORMAT);
	ck_assert_msg(strstr(err.message, "proto_h[1] is 0") != NULL, "%s",
			err.message);
	ebm_model_destroy(m);
}
END_TEST

/* Largest |E(ref_i) - stored_i| / (1 + |stored_i|) over the reference rows
 * of the model file at path. */
static double ref_drift(const char *path)
{
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ck_assert_msg(ebm_model_load_file(path, &m, &err) == EBM_STATUS_OK,
			"%s: %s", path, err.message);
	size_t n = ebm_model_n_ref(m);
	float *e = malloc(n * sizeof(*e));
	ck_assert_ptr_nonnull(e);
	struct ebm_ctx *ctx = ebm_ctx_create();
	ck_assert_int_eq(ebm_model_energy(m, ctx, ebm_model_ref_rows(m), n, e,
			&err), EBM_STATUS_OK);
	const float *want = ebm_model_ref_energies(m);
	double worst = 0.0;
	for (size_t i = 0; i < n; i++) {
		double r = fabs((double)e[i] - want[i]) / (1.0 + fabs(want[i]));
		worst = r > worst ? r : worst;
	}
	ebm_ctx_destroy(ctx);
	free(e);
	ebm_model_destroy(m);
	return worst;
}

START_TEST(t_shipped_models_keep_ref_energies)
{
	static const char *const path[] = {
		EBM_TEST_SOURCE_DIR "/models/demo.ebm",
		EBM_TEST_SOURCE_DIR "/models/demo-cd.ebm",
	};
	for (size_t k = 0; k < 2; k++) {
		double drift = ref_drift(path[k]);
		/* a few float roundings of energies of order 1..10 */
		ck_assert_msg(drift < 1e-5, "%s: stored reference energies off by "
				"%g (relative)", path[k], drift);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("proto");
	tcase_add_test(tc, t_roundtrip_v2);
	tcase_add_test(tc, t_no_protos_is_version_1);
	tcase_add_test(tc, t_reject_proto_header);
	tcase_add_test(tc, t_reject_proto_values);
	tcase_add_test(tc, t_finalize_rejects_bad_protos);
	tcase_add_test(tc, t_shipped_models_keep_ref_energies);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
