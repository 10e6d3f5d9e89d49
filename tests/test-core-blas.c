/*
 * test-core-blas.c — the BLAS path against the naive reference path:
 * ebm_gemm and ebm_gemv against ebm_gemm_ref / ebm_gemv_ref on both sides
 * of the size thresholds and every transpose, and the whole network
 * (forward, input gradient, parameter gradient, DSM loss and gradient)
 * evaluated once through BLAS and once with ebm_blas_force_ref(true).
 *
 * In a build without BLAS both sides are the same function, so the whole
 * program is a skip there (exit status 77, which meson reports as SKIP)
 * rather than a test that cannot fail. To be sure the two sides really
 * differ, each comparison also requires that some large product is not
 * bit-identical to the reference (BLAS accumulates in float with FMA, the
 * reference in double), and that forcing the reference makes it so.
 *
 * Tolerance: NMSE <= 1e-10 for one product (float round-off, error about
 * sqrt(k) * 6e-8 relative for k <= 300); 1e-9 through the whole network.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/core.h"

static void fill_random(struct ebm_rng *r, float *p, size_t n, float s)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = s * (float)ebm_rng_normal(r);
	}
}

/* Squared error of a against b, and squared norm of b. */
static void sq_err(const float *a, const float *b, size_t n, double *e,
		double *s)
{
	for (size_t q = 0; q < n; q++) {
		*e += ((double)a[q] - b[q]) * ((double)a[q] - b[q]);
		*s += (double)b[q] * b[q];
	}
}

START_TEST(gemm_blas_vs_ref)
{
	static const size_t sizes[] = {1, 3, 15, 16, 17, 64, 130, 257};
	struct ebm_rng r;
	ebm_rng_init(&r, 1);
	bool any_differs = false;
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t m = sizes[si], n = sizes[(si + 3) % 8], k = sizes[(si + 5) % 8];
		for (int ta = 0; ta < 2; ta++) {
			for (int tb = 0; tb < 2; tb++) {
				float *a = malloc(m * k * sizeof(float));
				float *b = malloc(k * n * sizeof(float));
				float *c1 = malloc(m * n * sizeof(float));
				float *c2 = malloc(m * n * sizeof(float));
				float *c3 = malloc(m * n * sizeof(float));
				fill_random(&r, a, m * k, 1.0f);
				fill_random(&r, b, k * n, 1.0f);
				fill_random(&r, c1, m * n, 1.0f);
				memcpy(c2, c1, m * n * sizeof(float));
				memcpy(c3, c1, m * n * sizeof(float));
				ebm_gemm(ta, tb, m, n, k, 0.5f, a, ta ? m : k, b, tb ? k : n,
						0.25f, c1, n);
				ebm_gemm_ref(ta, tb, m, n, k, 0.5f, a, ta ? m : k, b,
						tb ? k : n, 0.25f, c2, n);
				bool was = ebm_blas_force_ref(true);
				ebm_gemm(ta, tb, m, n, k, 0.5f, a, ta ? m : k, b, tb ? k : n,
						0.25f, c3, n);
				ebm_blas_force_ref(was);
				double e = 0.0, s = 0.0;
				sq_err(c1, c2, m * n, &e, &s);
				ck_assert_msg(e <= 1e-10 * s + 1e-20, "m%zu n%zu k%zu: %g", m,
						n, k, e / s);
				ck_assert_msg(memcmp(c2, c3, m * n * sizeof(float)) == 0,
						"forced reference differs from the reference");
				any_differs |= memcmp(c1, c2, m * n * sizeof(float)) != 0;
				free(a);
				free(b);
				free(c1);
				free(c2);
				free(c3);
			}
		}
	}
	ck_assert_msg(any_differs, "no product went through BLAS");
}
END_TEST

START_TEST(gemv_blas_vs_ref)
{
	static const size_t sizes[] = {1, 3, 15, 16, 17, 64, 130, 257};
	struct ebm_rng r;
	ebm_rng_init(&r, 2);
	bool any_differs = false;
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t m = sizes[si], n = sizes[(si + 3) % 8];
		for (int ta = 0; ta < 2; ta++) {
			size_t ny = ta ? n : m, nx = ta ? m : n;
			float *a = malloc(m * n * sizeof(float));
			float *x = malloc(nx * sizeof(float));
			float *y1 = malloc(ny * sizeof(float));
			float *y2 = malloc(ny * sizeof(float));
			float *y3 = malloc(ny * sizeof(float));
			fill_random(&r, a, m * n, 1.0f);
			fill_random(&r, x, nx, 1.0f);
			fill_random(&r, y1, ny, 1.0f);
			memcpy(y2, y1, ny * sizeof(float));
			memcpy(y3, y1, ny * sizeof(float));
			ebm_gemv(ta, m, n, 0.5f, a, n, x, 0.25f, y1);
			ebm_gemv_ref(ta, m, n, 0.5f, a, n, x, 0.25f, y2);
			bool was = ebm_blas_force_ref(true);
			ebm_gemv(ta, m, n, 0.5f, a, n, x, 0.25f, y3);
			ebm_blas_force_ref(was);
			double e = 0.0, s = 0.0;
			sq_err(y1, y2, ny, &e, &s);
			ck_assert_msg(e <= 1e-10 * s + 1e-20, "m%zu n%zu trans %d: %g", m,
					n, ta, e / s);
			ck_assert(memcmp(y2, y3, ny * sizeof(float)) == 0);
			any_differs |= memcmp(y1, y2, ny * sizeof(float)) != 0;
			free(a);
			free(x);
			free(y1);
			free(y2);
			free(y3);
		}
	}
	ck_assert_msg(any_differs, "no product went through BLAS");
}
END_TEST

/* d = 12, hidden 64,48: every layer's product of a 300-row batch is
 * above the threshold, so the BLAS run really takes BLAS. */
static void make_net(struct ebm_net *net, uint32_t members)
{
	uint32_t hidden[2] = {64, 48};
	ck_assert(ebm_net_init(net, 12, members, 2, hidden, EBM_ACT_SILU));
	struct ebm_rng r;
	ebm_rng_init(&r, 5);
	fill_random(&r, net->params, net->n_params * members, 0.2f);
	for (size_t j = 0; j < net->d; j++) {
		net->prec[j * net->d + j] = 1.0f;
	}
}

/* Everything the network computes for one batch, into out (in order):
 * f, input gradient, member-0 f, parameter gradient, DSM loss, DSM
 * gradient. Returns the number of floats written. */
static size_t run_net(const struct ebm_net *net, const float *z,
		const float *eps, const float *sigma, size_t n, float *out)
{
	size_t d = net->d, np = net->n_params;
	struct ebm_work w;
	ebm_work_init(&w);
	float *o = out;
	ck_assert(ebm_net_input_grad(net, &w, z, n, o, o + n));
	o += n + n * d;
	float *df = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		df[i] = (float)(i % 7) - 3.0f;
	}
	memset(o + n, 0, np * sizeof(float));
	ck_assert(ebm_member_param_grad(net, net->params, &w, z, n, df, o,
			o + n));
	o += n + np;
	double loss = 0.0;
	memset(o + 1, 0, np * sizeof(float));
	ck_assert(ebm_member_dsm(net, net->params, &w, z, eps, sigma, n, &loss,
			o + 1));
	o[0] = (float)loss;
	o += 1 + np;
	free(df);
	ebm_work_finish(&w);
	return (size_t)(o - out);
}

START_TEST(network_blas_vs_ref)
{
	struct ebm_net net;
	make_net(&net, 3);
	size_t n = 300, d = net.d, np = net.n_params;
	struct ebm_rng r;
	ebm_rng_init(&r, 9);
	float *z = malloc(n * d * sizeof(float));
	float *eps = malloc(n * d * sizeof(float));
	float *sigma = malloc(n * sizeof(float));
	fill_random(&r, z, n * d, 1.0f);
	fill_random(&r, eps, n * d, 1.0f);
	for (size_t i = 0; i < n; i++) {
		sigma[i] = 0.1f + 0.01f * (float)(i % 10);
	}
	size_t total = n + n * d + n + np + 1 + np;
	float *blas = malloc(total * sizeof(float));
	float *ref = malloc(total * sizeof(float));
	ck_assert_uint_eq(run_net(&net, z, eps, sigma, n, blas), total);
	bool was = ebm_blas_force_ref(true);
	ck_assert_uint_eq(run_net(&net, z, eps, sigma, n, ref), total);
	ebm_blas_force_ref(was);
	/* Section by section, so a failure says which. */
	static const char *const what[] = {"f", "input gradient", "member f",
			"parameter gradient", "dsm loss", "dsm gradient"};
	size_t len[] = {n, n * d, n, np, 1, np};
	size_t off = 0;
	for (size_t k = 0; k < 6; k++) {
		double e = 0.0, s = 0.0;
		sq_err(blas + off, ref + off, len[k], &e, &s);
		ck_assert_msg(e <= 1e-9 * s + 1e-20, "%s: NMSE %g", what[k], e / s);
		off += len[k];
	}
	ck_assert_msg(memcmp(blas, ref, total * sizeof(float)) != 0,
			"the BLAS run is bit-identical to the reference run");
	free(z);
	free(eps);
	free(sigma);
	free(blas);
	free(ref);
	ebm_net_finish(&net);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("blas");
	tcase_add_test(tc, gemm_blas_vs_ref);
	tcase_add_test(tc, gemv_blas_vs_ref);
	tcase_add_test(tc, network_blas_vs_ref);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!EBM_HAVE_BLAS) {
		puts("SKIP: built without BLAS, nothing to compare the reference "
				"with");
		return 77;
	}
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
