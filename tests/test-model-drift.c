/*
 * test-model-drift.c — the KS drift test of ebm/drift.h on distributions
 * with known answers:
 *   - the Kolmogorov tail Q(lambda) at its tabulated critical values;
 *   - exact statistics of hand-made windows (perfectly uniform, all at
 *     one end, one value);
 *   - calibration in the real conformal setting: reference energies and
 *     traffic drawn from the same continuous law, p-values computed like
 *     ebm_p_value; the false-alarm rate at 5% stays at or below 5% (within
 *     Monte Carlo error) even with a reference set of 40 rows and windows
 *     of 1000, where the one-sample test (size w) would alarm far more;
 *   - power: traffic shifted by 1 sd is detected.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ebm/drift.h"
#include "ebm/model.h"
#include "util/util.h"

START_TEST(kolmogorov_tail)
{
	/* lambda of the 5%, 1% and 0.1% critical values (Smirnov's table) */
	ck_assert(fabs(ebm_ks_q(1.3581) - 0.05) < 5e-4);
	ck_assert(fabs(ebm_ks_q(1.6276) - 0.01) < 1e-4);
	ck_assert(fabs(ebm_ks_q(1.9495) - 0.001) < 2e-5);
	ck_assert(ebm_ks_q(0.0) == 1.0);
	ck_assert(ebm_ks_q(0.1) == 1.0);
	ck_assert(ebm_ks_q(10.0) < 1e-80);
	/* decreasing */
	double prev = 1.0;
	for (double l = 0.2; l < 3.0; l += 0.05) {
		double q = ebm_ks_q(l);
		ck_assert(q <= prev);
		prev = q;
	}
}
END_TEST

START_TEST(exact_statistics)
{
	enum { N = 101 };
	uint32_t k[N];
	double d, p;
	/* each grid point once: the window is the null itself */
	for (uint32_t i = 0; i < N; i++) {
		k[i] = N - i;
	}
	ck_assert_int_eq(ebm_drift_test(k, N, N, &d, &p, NULL), EBM_STATUS_OK);
	ck_assert(fabs(d) < 1e-12);
	ck_assert(p == 1.0);
	/* all at the smallest p-value: D = 1 - 1/N */
	for (size_t i = 0; i < 50; i++) {
		k[i] = 1;
	}
	ck_assert_int_eq(ebm_drift_test(k, 50, N, &d, &p, NULL), EBM_STATUS_OK);
	ck_assert(fabs(d - (1.0 - 1.0 / N)) < 1e-12);
	/* n_e = 50 * 100 / 150; lambda ~ 5.7: no doubt */
	ck_assert(p < 1e-20);
	/* one value in the middle: D = max(50/101, 1 - 51/101) */
	k[0] = 51;
	ck_assert_int_eq(ebm_drift_test(k, 1, N, &d, &p, NULL), EBM_STATUS_OK);
	ck_assert(fabs(d - 50.0 / 101.0) < 1e-12);
	/* empty */
	ck_assert_int_eq(ebm_drift_test(k, 0, N, &d, &p, NULL), EBM_STATUS_OK);
	ck_assert(d == 0.0 && p == 1.0);
	/* bad input is named */
	struct ebm_error err;
	k[0] = 0;
	ck_assert_int_eq(ebm_drift_test(k, 1, N, &d, &p, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_nonnull(strstr(err.message, "index 0"));
	k[0] = N + 1;
	ck_assert_int_eq(ebm_drift_test(k, 1, N, &d, &p, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(ebm_drift_test(k, 1, 1, &d, &p, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	/* the grid index of a p-value */
	ck_assert_uint_eq(ebm_drift_grid_index(1.0 / 101.0, 101), 1);
	ck_assert_uint_eq(ebm_drift_grid_index(1.0, 101), 101);
	ck_assert_uint_eq(ebm_drift_grid_index(37.0 / 101.0, 101), 37);
	ck_assert_uint_eq(ebm_drift_grid_index(0.0, 101), 1);
	ck_assert_uint_eq(ebm_drift_grid_index(NAN, 101), 1);
}
END_TEST

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* Share of `reps` windows of w rows flagged at level 0.05 (and, in
 * *naive, the share the one-sample test of size w would flag), with a new
 * reference set of n_ref rows per repetition; traffic ~ N(shift, 1) while
 * the reference ~ N(0, 1); the energy is x^2 / 2 (one feature). */
static double alarm_rate(size_t n_ref, size_t w, size_t reps, double shift,
		uint64_t seed, double *naive)
{
	struct ebm_rng rng;
	ebm_rng_init(&rng, seed);
	float *ref = malloc(n_ref * sizeof(*ref));
	uint32_t *k = malloc(w * sizeof(*k));
	size_t alarms = 0, naive_alarms = 0;
	for (size_t r = 0; r < reps; r++) {
		for (size_t i = 0; i < n_ref; i++) {
			double z = ebm_rng_normal(&rng);
			ref[i] = (float)(0.5 * z * z);
		}
		qsort(ref, n_ref, sizeof(*ref), cmp_float);
		for (size_t i = 0; i < w; i++) {
			double z = ebm_rng_normal(&rng) + shift;
			double p = ebm_p_value(ref, n_ref, (float)(0.5 * z * z));
			k[i] = ebm_drift_grid_index(p, (uint32_t)n_ref + 1);
		}
		double d, p;
		ck_assert_int_eq(ebm_drift_test(k, w, (uint32_t)n_ref + 1, &d, &p,
				NULL), EBM_STATUS_OK);
		alarms += p < 0.05;
		double s = sqrt((double)w);
		naive_alarms += ebm_ks_q((s + 0.12 + 0.11 / s) * d) < 0.05;
	}
	free(ref);
	free(k);
	*naive = (double)naive_alarms / (double)reps;
	return (double)alarms / (double)reps;
}

START_TEST(calibrated_with_small_reference)
{
	double naive;
	/* 400 repetitions: sd of a 5% rate is 1.1% */
	double rate = alarm_rate(40, 1000, 400, 0.0, 7, &naive);
	ck_assert_msg(rate <= 0.05 + 0.025, "false alarms %.3f at 5%%", rate);
	/* what the one-sample test would do: the reference's own error
	 * dominates, and it alarms in most windows */
	ck_assert_msg(naive > 0.3, "one-sample rate %.3f", naive);
	rate = alarm_rate(1000, 1000, 400, 0.0, 8, &naive);
	ck_assert_msg(rate <= 0.05 + 0.025, "false alarms %.3f at 5%%", rate);
	/* not vacuous: near the level, not 0 */
	ck_assert_msg(rate >= 0.005, "false alarms %.3f: far too conservative",
			rate);
}
END_TEST

START_TEST(detects_a_shift)
{
	double naive;
	double rate = alarm_rate(1000, 1000, 100, 1.0, 9, &naive);
	ck_assert_msg(rate >= 0.95, "detected %.2f of shifted windows", rate);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("drift");
	tcase_add_test(tc, kolmogorov_tail);
	tcase_add_test(tc, exact_statistics);
	tcase_add_test(tc, calibrated_with_small_reference);
	tcase_add_test(tc, detects_a_shift);
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
