/*
 * test-model-missing.c — rows with missing features (include/ebm/missing.h)
 * on a correlated Gaussian energy, where the answers are known:
 *   E(x) = 0.5 z' P z,  z = (x - mean) / scale  (MLP output weights 0),
 * so the minimizer of E over the missing features m given the observed o
 * is the conditional mean z_m = -P_mm^-1 P_mo z_o, and the profiled
 * energy is 0.5 z_o' S z_o with S the Schur complement: the same law for
 * reference rows and test rows drawn from the Gaussian, so p-values
 * against the profiled reference set are uniform.
 *   - imputed values equal the conditional mean, energies never rise;
 *   - calibration: share of Gaussian rows with p < 0.1 at 1 and 2 missing;
 *   - rows without NaN: ebm_product_score()'s answer bit for bit;
 *   - the cache: one reference profile per missing set, LRU budget;
 *   - threads sharing a product and its cache get the single-thread
 *     answer bit for bit (run it under TSan: see docs/daemon.md).
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ebm/missing.h"
#include "model/model.h"
#include "util/util.h"

#define D 4

/* Covariance C = A A' (A lower triangular), P = C^-1. */
static const double A[D][D] = {
	{1.0, 0, 0, 0},
	{0.8, 0.6, 0, 0},
	{-0.5, 0.3, 0.7, 0},
	{0.2, -0.4, 0.5, 0.6},
};
static const float MEAN[D] = {1.0f, -2.0f, 0.5f, 3.0f};
static const float SCALE[D] = {2.0f, 0.5f, 1.0f, 4.0f};

static void precision(double p[D][D])
{
	double c[D][2 * D];
	for (int i = 0; i < D; i++) {
		for (int j = 0; j < D; j++) {
			double s = 0;
			for (int k = 0; k < D; k++) {
				s += A[i][k] * A[j][k];
			}
			c[i][j] = s;
			c[i][D + j] = i == j;
		}
	}
	for (int i = 0; i < D; i++) {   /* Gauss-Jordan, C is SPD */
		double piv = c[i][i];
		for (int j = 0; j < 2 * D; j++) {
			c[i][j] /= piv;
		}
		for (int r = 0; r < D; r++) {
			if (r != i) {
				double f = c[r][i];
				for (int j = 0; j < 2 * D; j++) {
					c[r][j] -= f * c[i][j];
				}
			}
		}
	}
	for (int i = 0; i < D; i++) {
		for (int j = 0; j < D; j++) {
			p[i][j] = c[i][D + j];
		}
	}
}

/* n raw rows drawn from the Gaussian. */
static void draw(struct ebm_rng *r, float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double eps[D];
		for (int k = 0; k < D; k++) {
			eps[k] = ebm_rng_normal(r);
		}
		for (int j = 0; j < D; j++) {
			double z = 0;
			for (int k = 0; k < D; k++) {
				z += A[j][k] * eps[k];
			}
			x[i * D + j] = (float)(MEAN[j] + SCALE[j] * z);
		}
	}
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : (x > y);
}

static struct ebm_model *gaussian(size_t n_ref, uint64_t seed)
{
	struct ebm_model *m = ebm_model_alloc();
	uint32_t hidden[1] = {4};
	ck_assert(ebm_net_init(&m->net, D, 1, 1, hidden, EBM_ACT_SILU));
	double p[D][D];
	precision(p);
	for (int i = 0; i < D; i++) {
		m->net.mean[i] = MEAN[i];
		m->net.scale[i] = SCALE[i];
		for (int j = 0; j < D; j++) {
			m->net.prec[i * D + j] = (float)p[i][j];
		}
	}
	struct ebm_rng r;
	ebm_rng_init(&r, seed);
	m->n_ref = (uint32_t)n_ref;
	m->ref_rows = malloc(n_ref * D * sizeof(float));
	m->ref_energy = malloc(n_ref * sizeof(float));
	draw(&r, m->ref_rows, n_ref);
	struct ebm_ctx *ctx = ebm_ctx_create();
	ck_assert_int_eq(ebm_model_energy(m, ctx, m->ref_rows, n_ref,
			m->ref_energy, NULL), 0);
	ebm_ctx_destroy(ctx);
	/* Rows in energy order (the file's invariant). */
	float *pairs = malloc(n_ref * (D + 1) * sizeof(float));
	for (size_t i = 0; i < n_ref; i++) {
		pairs[i * (D + 1)] = m->ref_energy[i];
		memcpy(pairs + i * (D + 1) + 1, m->ref_rows + i * D,
				D * sizeof(float));
	}
	qsort(pairs, n_ref, (D + 1) * sizeof(float), cmp_float);
	for (size_t i = 0; i < n_ref; i++) {
		m->ref_energy[i] = pairs[i * (D + 1)];
		memcpy(m->ref_rows + i * D, pairs + i * (D + 1) + 1,
				D * sizeof(float));
	}
	free(pairs);
	m->alpha = 0.1f;
	m->objective = strdup("dsm");
	m->options = strdup("");
	struct ebm_error err;
	ck_assert_msg(ebm_model_finalize(m, &err) == EBM_STATUS_OK, "%s",
			err.message);
	return m;
}

/* Field by field: the struct has padding. */
static bool same_score(const struct ebm_score *a, const struct ebm_score *b,
		size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (memcmp(&a[i].energy, &b[i].energy, sizeof(float)) != 0
				|| memcmp(&a[i].score, &b[i].score, sizeof(float)) != 0
				|| memcmp(&a[i].p_value, &b[i].p_value, sizeof(double)) != 0
				|| a[i].anomaly != b[i].anomaly) {
			return false;
		}
	}
	return true;
}

static struct ebm_product *single(const struct ebm_model *m,
		struct ebm_ctx *ctx)
{
	struct ebm_product *p;
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_create(&m, NULL, 1, ctx, &p, &err), 0);
	return p;
}

/* The conditional mean of the missing features of raw row x, raw units. */
static void conditional_mean(const float *x, const bool *miss, double *out)
{
	double p[D][D];
	precision(p);
	double z[D];
	for (int j = 0; j < D; j++) {
		z[j] = miss[j] ? 0.0 : (x[j] - MEAN[j]) / SCALE[j];
	}
	/* Solve P_mm z_m = -P_mo z_o by Gauss-Jordan on the missing block. */
	int idx[D], k = 0;
	for (int j = 0; j < D; j++) {
		if (miss[j]) {
			idx[k++] = j;
		}
	}
	double a[D][D + 1];
	for (int i = 0; i < k; i++) {
		double rhs = 0;
		for (int j = 0; j < D; j++) {
			if (!miss[j]) {
				rhs -= p[idx[i]][j] * z[j];
			}
		}
		for (int j = 0; j < k; j++) {
			a[i][j] = p[idx[i]][idx[j]];
		}
		a[i][k] = rhs;
	}
	for (int i = 0; i < k; i++) {
		double piv = a[i][i];
		for (int j = 0; j <= k; j++) {
			a[i][j] /= piv;
		}
		for (int r = 0; r < k; r++) {
			if (r != i) {
				double f = a[r][i];
				for (int j = 0; j <= k; j++) {
					a[r][j] -= f * a[i][j];
				}
			}
		}
	}
	for (int i = 0; i < D; i++) {
		out[i] = x[i];
	}
	for (int i = 0; i < k; i++) {
		out[idx[i]] = MEAN[idx[i]] + SCALE[idx[i]] * a[i][k];
	}
}

START_TEST(imputes_conditional_mean)
{
	struct ebm_model *m = gaussian(50, 1);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p = single(m, ctx);
	struct ebm_rng r;
	ebm_rng_init(&r, 7);
	enum { N = 64 };
	float x[N * D], out[N * D], start[N * D], e[N], e0[N];
	draw(&r, x, N);
	/* Far rows too: the descent must cross the distance. */
	for (size_t j = 0; j < D; j++) {
		x[j] = MEAN[j] + 6.0f * SCALE[j];
	}
	static const bool masks[][D] = {
		{true, false, false, false}, {false, false, true, false},
		{true, true, false, false}, {false, true, false, true},
		{true, true, true, false},
	};
	const float *mean = m->net.mean;
	for (size_t q = 0; q < sizeof(masks) / sizeof(masks[0]); q++) {
		const bool *miss = masks[q];
		struct ebm_error err;
		ck_assert_int_eq(ebm_product_profile(p, ctx, miss, x, N, out, e,
				&err), 0);
		for (size_t i = 0; i < N; i++) {
			for (size_t j = 0; j < D; j++) {
				start[i * D + j] = miss[j] ? mean[j] : x[i * D + j];
			}
		}
		ck_assert_int_eq(ebm_product_energy(p, ctx, start, N, e0, &err), 0);
		for (size_t i = 0; i < N; i++) {
			double want[D];
			conditional_mean(x + i * D, miss, want);
			ck_assert_float_le(e[i], e0[i]);
			for (size_t j = 0; j < D; j++) {
				if (!miss[j]) {
					ck_assert(out[i * D + j] == x[i * D + j]);
					continue;
				}
				/* Within 5e-3 standard units of the conditional mean
				 * (whose conditional sd is ~0.5 here), the far row 1e-2:
				 * energies are floats, and along a flat direction a step
				 * that lowers E by less than its ulp is not seen, so the
				 * descent stops ~sqrt(ulp(E) / curvature) short. */
				double dz = (out[i * D + j] - want[j]) / SCALE[j];
				ck_assert_msg(fabs(dz) < (i == 0 ? 1e-2 : 5e-3), "mask %zu row %zu feature %zu:"
						" imputed %g, conditional mean %g", q, i, j,
						(double)out[i * D + j], want[j]);
			}
		}
	}
	bool all[D] = {true, true, true, true};
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_profile(p, ctx, all, x, 1, out, NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

/* Share of n Gaussian rows with k random features missing whose p-value
 * is below 0.1; plain: against the unprofiled reference energies. */
static double share_below(const struct ebm_product *p, struct ebm_ctx *ctx,
		size_t k, size_t n, bool plain)
{
	struct ebm_rng r;
	ebm_rng_init(&r, 100 + k);
	float *x = malloc(n * D * sizeof(float));
	float *done = malloc(n * D * sizeof(float));
	struct ebm_score *s = malloc(n * sizeof(*s));
	draw(&r, x, n);
	for (size_t i = 0; i < n; i++) {
		for (size_t c = 0; c < k; c++) {
			size_t j;
			do {
				j = ebm_rng_below(&r, D);
			} while (isnan(x[i * D + j]));
			x[i * D + j] = NAN;
		}
	}
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_score_missing(p, ctx, x, n, 0.1, s, done,
			&err), 0);
	size_t below = 0;
	for (size_t i = 0; i < n; i++) {
		double pv = plain ? ebm_p_value(ebm_product_ref_energies(p),
				ebm_product_n_ref(p), s[i].energy) : s[i].p_value;
		below += pv < 0.1;
		ck_assert(s[i].anomaly == (s[i].p_value < 0.1));
	}
	free(x);
	free(done);
	free(s);
	return (double)below / (double)n;
}

START_TEST(calibrated)
{
	struct ebm_model *m = gaussian(2000, 3);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p = single(m, ctx);
	for (size_t k = 1; k <= 2; k++) {
		/* 2000 rows and 2000 reference rows: the share's sd is ~0.0095;
		 * [0.07, 0.13] is three of them. */
		double s = share_below(p, ctx, k, 2000, false);
		ck_assert_msg(s >= 0.07 && s <= 0.13,
				"%zu missing: share with p < 0.1 is %g", k, s);
		/* Against the reference set as it is, rows with holes would look
		 * too likely: the profiled reference is what calibrates. */
		double plain = share_below(p, ctx, k, 2000, true);
		ck_assert_msg(plain < 0.06, "%zu missing, unprofiled: %g", k, plain);
	}
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

START_TEST(complete_rows_unchanged)
{
	struct ebm_model *m = gaussian(200, 4);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p = single(m, ctx);
	struct ebm_rng r;
	ebm_rng_init(&r, 9);
	enum { N = 40 };
	float x[N * D], done[N * D];
	struct ebm_score a[N], b[N];
	draw(&r, x, N);
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_score(p, ctx, x, N, 0.05, a, &err), 0);
	ck_assert_int_eq(ebm_product_score_missing(p, ctx, x, N, 0.05, b, done,
			&err), 0);
	ck_assert(same_score(a, b, N));
	ck_assert(memcmp(x, done, sizeof(x)) == 0);
	/* Holes in some rows leave the others' answers alone. */
	x[3 * D + 1] = NAN;
	x[17 * D + 0] = NAN;
	x[17 * D + 2] = NAN;
	ck_assert_int_eq(ebm_product_score_missing(p, ctx, x, N, 0.05, b, done,
			&err), 0);
	for (size_t i = 0; i < N; i++) {
		if (i != 3 && i != 17) {
			ck_assert(same_score(&a[i], &b[i], 1));
		}
	}
	ck_assert(!isnan(done[3 * D + 1]) && !isnan(done[17 * D]));
	ck_assert_float_le(b[3].energy, a[3].energy + 10.0f);
	/* Every feature missing: the row is named. */
	for (size_t j = 0; j < D; j++) {
		x[5 * D + j] = NAN;
	}
	ck_assert_int_eq(ebm_product_score_missing(p, ctx, x, N, 0.05, b, done,
			&err), EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_uint_eq(err.line, 6);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

/* Scores one row with the given feature missing. */
static void score_hole(const struct ebm_product *p, struct ebm_ctx *ctx,
		size_t j, struct ebm_score *s)
{
	float x[D] = {1.0f, -2.0f, 0.5f, 3.0f};
	x[j] = NAN;
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_score_missing(p, ctx, x, 1, 0.05, s, NULL,
			&err), 0);
}

START_TEST(cache_reuse_and_bound)
{
	struct ebm_model *m = gaussian(300, 5);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p = single(m, ctx);
	struct ebm_missing_stats st;
	struct ebm_score a, b;
	ebm_product_missing_stats(p, &st);
	ck_assert_uint_eq(st.reference_profiles, 0);
	ck_assert_uint_eq(st.budget, EBM_MISSING_DEFAULT_BUDGET);
	float probe[3 * D] = {1, NAN, 0, 3, 2, NAN, 1, 2, 0, 0, 0, NAN};
	ck_assert_uint_eq(ebm_product_missing_uncached(p, probe, 3), 2);
	score_hole(p, ctx, 1, &a);
	ck_assert_uint_eq(ebm_product_missing_uncached(p, probe, 3), 1);
	ck_assert_uint_eq(ebm_product_missing_uncached(p, probe, 2), 0);
	score_hole(p, ctx, 1, &b);   /* the same hole: no new profile */
	ck_assert(same_score(&a, &b, 1));
	ebm_product_missing_stats(p, &st);
	ck_assert_uint_eq(st.reference_profiles, 1);
	ck_assert_uint_eq(st.lookups, 2);
	ck_assert_uint_eq(st.hits, 1);
	ck_assert_uint_eq(st.entries, 1);
	size_t one = st.bytes;
	ck_assert_uint_ge(one, 300 * sizeof(float));
	/* A budget of one set: a second hole evicts the first. */
	ebm_product_missing_set_budget(p, one);
	score_hole(p, ctx, 2, &b);
	ebm_product_missing_stats(p, &st);
	ck_assert_uint_eq(st.reference_profiles, 2);
	ck_assert_uint_eq(st.entries, 1);
	ck_assert_uint_eq(st.evictions, 1);
	ck_assert_uint_le(st.bytes, one);
	score_hole(p, ctx, 1, &b);   /* evicted: profiled again, same answer */
	ck_assert(same_score(&a, &b, 1));
	ebm_product_missing_stats(p, &st);
	ck_assert_uint_eq(st.reference_profiles, 3);
	/* Budget 0: nothing kept, every row profiles its reference. */
	ebm_product_missing_set_budget(p, 0);
	ebm_product_missing_stats(p, &st);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.bytes, 0);
	score_hole(p, ctx, 1, &b);
	score_hole(p, ctx, 1, &b);
	ck_assert(same_score(&a, &b, 1));
	ebm_product_missing_stats(p, &st);
	ck_assert_uint_eq(st.reference_profiles, 5);
	ck_assert_uint_eq(st.entries, 0);
	/* Rows sharing a hole in one call: one lookup for all of them. */
	ebm_product_missing_set_budget(p, EBM_MISSING_DEFAULT_BUDGET);
	float x[3 * D] = {1, NAN, 0, 3, 2, NAN, 1, 2, 0, 0, NAN, 1};
	struct ebm_score s[3];
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_score_missing(p, ctx, x, 3, 0.05, s, NULL,
			&err), 0);
	struct ebm_missing_stats st2;
	ebm_product_missing_stats(p, &st2);
	ck_assert_uint_eq(st2.lookups, st.lookups + 2);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

/* ---- threads sharing a product ------------------------------------------ */

enum { TN = 24, THREADS = 4, ROUNDS = 15 };

struct job {
	const struct ebm_product *p;
	const float *x;
	const struct ebm_score *want;
	bool ok;
};

static void *worker(void *arg)
{
	struct job *j = arg;
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_score s[TN];
	j->ok = ctx != NULL;
	for (int r = 0; r < ROUNDS && j->ok; r++) {
		struct ebm_error err;
		j->ok = ebm_product_score_missing(j->p, ctx, j->x, TN, 0.05, s, NULL,
				&err) == EBM_STATUS_OK
				&& same_score(s, j->want, TN);
	}
	ebm_ctx_destroy(ctx);
	return NULL;
}

START_TEST(threads_share_the_cache)
{
	struct ebm_model *m = gaussian(200, 6);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p = single(m, ctx);
	struct ebm_rng r;
	ebm_rng_init(&r, 11);
	float x[TN * D];
	draw(&r, x, TN);
	for (size_t i = 0; i < TN; i++) {
		x[i * D + i % D] = NAN;            /* four holes of one feature */
		if (i % 3 == 0) {
			x[i * D + (i + 1) % D] = NAN;  /* and some of two */
		}
	}
	struct ebm_score want[TN];
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_score_missing(p, ctx, x, TN, 0.05, want,
			NULL, &err), 0);
	/* Room for two sets of the eight: constant eviction and reinsertion. */
	struct ebm_missing_stats st;
	ebm_product_missing_stats(p, &st);
	ebm_product_missing_set_budget(p, 2 * st.bytes / st.entries);
	pthread_t t[THREADS];
	struct job jobs[THREADS];
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (struct job){ p, x, want, false };
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker, &jobs[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(jobs[i].ok, "thread %d got another answer", i);
	}
	ebm_product_missing_stats(p, &st);
	ck_assert_uint_le(st.entries, 2);
	ck_assert_uint_gt(st.evictions, 0);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("missing");
	TCase *tc = tcase_create("missing");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, imputes_conditional_mean);
	tcase_add_test(tc, calibrated);
	tcase_add_test(tc, complete_rows_unchanged);
	tcase_add_test(tc, cache_reuse_and_bound);
	tcase_add_test(tc, threads_share_the_cache);
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
