/*
 * test-core-sampler.c — the three samplers on an energy with known
 * moments: f(z) = -0.5 z'Pz (the MLP's output weights are zero), i.e. a
 * Gaussian with covariance P^-1 = S.
 *
 * Tolerances: 4000 independent chains give a standard error of about
 * sqrt(S_ii / 4000) ~ 0.02 on each mean and ~ S_ii * sqrt(2 / 4000) ~ 2% on
 * each variance; bounds are 0.08 on means and 10% (of the larger diagonal
 * entry) on covariances. Unadjusted Langevin is biased: its stationary
 * variance along an eigenvalue l of P is 1 / (l (1 - eps l / 2)), 2.5% high
 * at eps = 0.02 here, inside the bound; MALA and MH are exact.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define N_CHAINS 4000

struct oracle {
	struct ebm_net net;
	struct ebm_work work;
};

static bool oracle_fn(void *user, const float *z, size_t n, float *f, float *g)
{
	struct oracle *o = user;
	return ebm_member_input_grad(&o->net, o->net.params, &o->work, z, n, f, g);
}

static void oracle_init(struct oracle *o)
{
	uint32_t hidden[1] = {3};
	ck_assert(ebm_net_init(&o->net, 2, 1, 1, hidden, EBM_ACT_SILU));
	/* Hidden weights non-zero, output weights zero: the MLP contributes
	 * a constant only. P = [[2, 0.6], [0.6, 1]]. */
	for (size_t i = 0; i < 6; i++) {
		o->net.params[i] = 0.3f * (float)i - 0.7f;
	}
	o->net.prec[0] = 2.0f;
	o->net.prec[1] = 0.6f;
	o->net.prec[2] = 0.6f;
	o->net.prec[3] = 1.0f;
	ebm_work_init(&o->work);
}

static void check_moments(enum ebm_sampler s, float step, size_t n_steps,
		double *accept)
{
	struct oracle o;
	oracle_init(&o);
	float *z = calloc(N_CHAINS * 2, sizeof(float));
	float *scratch = calloc(4 * N_CHAINS * 2 + 2 * N_CHAINS, sizeof(float));
	struct ebm_rng rng;
	ebm_rng_init(&rng, 42);
	/* Start away from the mode so that the test sees the chains move. */
	for (size_t i = 0; i < N_CHAINS; i++) {
		z[2 * i] = 2.0f;
		z[2 * i + 1] = -2.0f;
	}
	struct ebm_chain_opts co = {
		.sampler = s,
		.n_steps = n_steps,
		.step_size = step,
		.noise = -1.0f,
	};
	uint64_t acc, prop;
	ck_assert(ebm_chain_run(oracle_fn, &o, &co, &rng, z, N_CHAINS, 2, scratch,
			&acc, &prop));
	ck_assert_uint_eq(prop, (uint64_t)N_CHAINS * n_steps);
	*accept = (double)acc / (double)prop;
	double m[2] = {0, 0}, c[3] = {0, 0, 0};
	for (size_t i = 0; i < N_CHAINS; i++) {
		m[0] += z[2 * i];
		m[1] += z[2 * i + 1];
	}
	m[0] /= N_CHAINS;
	m[1] /= N_CHAINS;
	for (size_t i = 0; i < N_CHAINS; i++) {
		double a = z[2 * i] - m[0], b = z[2 * i + 1] - m[1];
		c[0] += a * a;
		c[1] += a * b;
		c[2] += b * b;
	}
	/* S = P^-1 = [[1, -0.6], [-0.6, 2]] / 1.64. */
	double det = 2.0 * 1.0 - 0.36;
	double expect[3] = {1.0 / det, -0.6 / det, 2.0 / det};
	const char *name = ebm_sampler_name(s);
	ck_assert_msg(fabs(m[0]) < 0.08 && fabs(m[1]) < 0.08,
			"%s: mean (%g, %g)", name, m[0], m[1]);
	for (int k = 0; k < 3; k++) {
		c[k] /= N_CHAINS;
		ck_assert_msg(fabs(c[k] - expect[k]) < 0.1 * expect[2],
				"%s: cov[%d] = %g, expected %g", name, k, c[k], expect[k]);
	}
	free(z);
	free(scratch);
	ebm_work_finish(&o.work);
	ebm_net_finish(&o.net);
}

START_TEST(langevin_gaussian)
{
	double a;
	check_moments(EBM_SAMPLER_LANGEVIN, 0.02f, 600, &a);
	ck_assert(a == 1.0);
}
END_TEST

START_TEST(mala_gaussian)
{
	double a;
	check_moments(EBM_SAMPLER_MALA, 0.2f, 400, &a);
	/* MALA at this step accepts most proposals, but not all. */
	ck_assert_msg(a > 0.6 && a < 1.0, "MALA acceptance %g", a);
}
END_TEST

START_TEST(mh_gaussian)
{
	double a;
	check_moments(EBM_SAMPLER_MH, 0.8f, 600, &a);
	ck_assert_msg(a > 0.2 && a < 0.9, "MH acceptance %g", a);
}
END_TEST

/* The clamp box keeps Langevin chains inside it. */
START_TEST(langevin_box)
{
	struct oracle o;
	oracle_init(&o);
	float z[2 * 16], scratch[4 * 32 + 32];
	memset(z, 0, sizeof(z));
	float lo[2] = {-0.5f, -0.25f}, hi[2] = {0.5f, 0.25f};
	struct ebm_rng rng;
	ebm_rng_init(&rng, 3);
	struct ebm_chain_opts co = {
		.sampler = EBM_SAMPLER_LANGEVIN, .n_steps = 50, .step_size = 0.5f,
		.noise = 1.0f, .lo = lo, .hi = hi,
	};
	uint64_t acc, prop;
	ck_assert(ebm_chain_run(oracle_fn, &o, &co, &rng, z, 16, 2, scratch, &acc,
			&prop));
	for (size_t i = 0; i < 16; i++) {
		ck_assert(z[2 * i] >= lo[0] && z[2 * i] <= hi[0]);
		ck_assert(z[2 * i + 1] >= lo[1] && z[2 * i + 1] <= hi[1]);
	}
	ebm_work_finish(&o.work);
	ebm_net_finish(&o.net);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("sampler");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, langevin_gaussian);
	tcase_add_test(tc, mala_gaussian);
	tcase_add_test(tc, mh_gaussian);
	tcase_add_test(tc, langevin_box);
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
