/*
 * test-http-catalog.c — the catalog's cache for POST /v1/score: the
 * blocks (one model file's energies on another's reference rows) are
 * computed when files are added, for compatible pairs only; an ad-hoc
 * product built from them is ebm_product_create()'s product bit for bit
 * and computes nothing on the request path; a named composition uses the
 * same cache; and a product over the documented bound is refused before
 * any maths.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture-model.h"
#include "http/http.h"

static const char *const names5[5] = {"a", "b", "c", "d", "e"};

static void add(struct ebm_http_catalog *c, struct ebm_model *m,
		const char *name, struct ebm_ctx *ctx)
{
	struct ebm_http_model *hm = ebm_http_model_create(m, name, NULL);
	struct ebm_error err;
	ck_assert_msg(ebm_http_catalog_add_model(c, hm, ctx, &err), "%s",
			err.message);
	ebm_http_model_unref(hm);
}

static struct ebm_http_catalog *catalog(void)
{
	struct ebm_http_settings s = { .max_rows = 100 };
	return ebm_http_catalog_create(&s, NULL);
}

START_TEST(adhoc_from_cache)
{
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_http_catalog *c = catalog();
	add(c, fixture_model(5, 48, 300, 1, names5), "x", ctx);
	add(c, fixture_model(5, 32, 77, 2, NULL), "y", ctx);
	add(c, fixture_model(4, 32, 50, 3, NULL), "narrow", ctx);
	add(c, fixture_model(5, 64, 513, 4, names5), "z", ctx);
	struct ebm_error err;
	const char *experts[2] = {"z", "x"};
	double cw[2] = {0.5, 2.0};
	ck_assert_msg(ebm_http_catalog_add_composition(c, "zx", experts, cw, 2,
			-1.0, ctx, &err), "%s", err.message);
	ebm_http_catalog_seal(c);
	/* Every file's own block, and compatible pairs, are cached; "narrow"
	 * (4 features) composes with nobody. */
	ck_assert_uint_eq(c->n_model_files, 4);
	size_t n_ref[4] = {300, 77, 50, 513};
	size_t expect = 0;
	for (size_t a = 0; a < 4; a++) {
		for (size_t b = 0; b < 4; b++) {
			bool want = a == b || (a != 2 && b != 2);
			ck_assert_msg((c->cross[a * c->cap + b] != NULL) == want,
					"block %zu,%zu", a, b);
			expect += want ? n_ref[b] : 0;
		}
	}
	ck_assert_uint_eq(c->cross_floats, expect);

	const struct ebm_http_entry *e[3] = {
		ebm_http_catalog_find(c, "y"), ebm_http_catalog_find(c, "z"),
		ebm_http_catalog_find(c, "x"),
	};
	double w[3] = {1.0, 0.25, 3.0};
	struct ebm_product *p, *q;
	struct ebm_http_error he;
	size_t evals = 99;
	ck_assert(ebm_http_catalog_product(c, e, w, 3, ctx, &p, &evals, &he));
	ck_assert_uint_eq(evals, 0);
	const struct ebm_model *models[3] = {
		e[0]->models[0]->model, e[1]->models[0]->model,
		e[2]->models[0]->model,
	};
	ck_assert_int_eq(ebm_product_create(models, w, 3, ctx, &q, NULL), 0);
	size_t n = ebm_product_n_ref(q);
	ck_assert_uint_eq(n, 77 + 513 + 300);
	ck_assert_uint_eq(ebm_product_n_ref(p), n);
	ck_assert(memcmp(ebm_product_ref_energies(p), ebm_product_ref_energies(q),
			n * sizeof(float)) == 0);
	ck_assert(memcmp(ebm_product_median_row(p), ebm_product_median_row(q),
			5 * sizeof(float)) == 0);
	ebm_product_destroy(p);
	ebm_product_destroy(q);

	/* The named composition came from the same cache. */
	const struct ebm_http_entry *zx = ebm_http_catalog_find(c, "zx");
	const struct ebm_model *two[2] = { models[1], models[2] };
	ck_assert_int_eq(ebm_product_create(two, cw, 2, ctx, &q, NULL), 0);
	ck_assert(memcmp(ebm_product_ref_energies(zx->product),
			ebm_product_ref_energies(q), (513 + 300) * sizeof(float)) == 0);
	ebm_product_destroy(q);

	/* Incompatible: 422 before any maths. */
	const struct ebm_http_entry *bad[2] = {
		ebm_http_catalog_find(c, "x"), ebm_http_catalog_find(c, "narrow"),
	};
	ck_assert(!ebm_http_catalog_product(c, bad, NULL, 2, ctx, &p, &evals,
			&he));
	ck_assert_int_eq(he.status, 422);
	ck_assert_str_eq(he.code, "incompatible_models");
	ck_assert_uint_eq(evals, 0);
	ebm_http_catalog_unref(c);
	ebm_ctx_destroy(ctx);
}
END_TEST

/* A product whose union reference set is over EBM_HTTP_ADHOC_MAX_REF is
 * refused (422) without an energy computed; one model alone is not a
 * product to build (its own stored energies). */
START_TEST(adhoc_bound)
{
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_http_catalog *c = catalog();
	size_t big = EBM_HTTP_ADHOC_MAX_REF / 2 + 1;
	add(c, fixture_model(1, 4, big, 5, NULL), "p", ctx);
	add(c, fixture_model(1, 4, big, 6, NULL), "q", ctx);
	ebm_http_catalog_seal(c);
	const struct ebm_http_entry *e[2] = {
		ebm_http_catalog_find(c, "p"), ebm_http_catalog_find(c, "q"),
	};
	struct ebm_product *p = NULL;
	struct ebm_http_error he;
	size_t evals = 99;
	ck_assert(!ebm_http_catalog_product(c, e, NULL, 2, ctx, &p, &evals, &he));
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(evals, 0);
	ck_assert_int_eq(he.status, 422);
	ck_assert_str_eq(he.code, "composition_too_large");
	ck_assert_msg(strstr(he.message, "[compose.NAME]") != NULL, "%s",
			he.message);
	ck_assert(ebm_http_catalog_product(c, e, NULL, 1, ctx, &p, &evals, &he));
	ck_assert_uint_eq(evals, 0);
	ck_assert_uint_eq(ebm_product_n_ref(p), big);
	ebm_product_destroy(p);
	/* A lone model with a weight is a product too, from its own block. */
	double two = 2.0;
	ck_assert(ebm_http_catalog_product(c, e, &two, 1, ctx, &p, &evals, &he));
	ck_assert_uint_eq(evals, 0);
	float med = 2.0f * ebm_model_median_energy(e[0]->models[0]->model);
	ck_assert_float_eq_tol(ebm_product_median_energy(p), med,
			1e-5f * (1.0f + fabsf(med)));
	ebm_product_destroy(p);
	ebm_http_catalog_unref(c);
	ebm_ctx_destroy(ctx);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("http-catalog");
	TCase *tc = tcase_create("compose");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, adhoc_from_cache);
	tcase_add_test(tc, adhoc_bound);
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
