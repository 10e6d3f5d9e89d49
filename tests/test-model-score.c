/*
 * test-model-score.c — the numbers of API.md section 1 on models whose
 * energy is known in closed form: median, p_value, energy and its
 * gradient, score, and sampling.
 *
 * The "Gaussian" model below has every MLP weight zero except the output
 * biases c_k, so whatever the activation, f(z) = -0.5 z'z + mean_k(c_k)
 * with P = I, and E(x) = 0.5 |(x - mean) / scale|^2 - mean_k(c_k).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define D 3

static const float g_mean[D] = { 1.0f, -2.0f, 0.5f };
static const float g_scale[D] = { 2.0f, 0.5f, 1.0f };
/* Output biases of the two members: their average is 1. */
static const float g_bias[2] = { 0.5f, 1.5f };

static double closed_form_energy(const float *x)
{
	double s = 0.0;
	for (int j = 0; j < D; j++) {
		double z = ((double)x[j] - g_mean[j]) / g_scale[j];
		s += 0.5 * z * z;
	}
	return s - 1.0;
}

static char *dup_s(const char *s)
{
	char *p = malloc(strlen(s) + 1);
	strcpy(p, s);
	return p;
}

/*
 * n_ref reference rows along the first axis, x = mean + t e_1 with
 * t = 0, 0.5, 1, ..., so their energies 0.5 (t / 2)^2 - 1 ascend.
 */
static struct ebm_model *gauss_model(uint32_t n_ref, float weight)
{
	static const uint32_t hidden[1] = { 4 };
	struct ebm_model *m = ebm_model_alloc();
	ck_assert(ebm_net_init(&m->net, D, 2, 1, hidden, EBM_ACT_SILU));
	memcpy(m->net.mean, g_mean, sizeof(g_mean));
	memcpy(m->net.scale, g_scale, sizeof(g_scale));
	for (int j = 0; j < D; j++) {
		m->net.prec[j * D + j] = 1.0f;
	}
	size_t np = m->net.n_params;
	for (int k = 0; k < 2; k++) {
		float *p = m->net.params + k * np;
		/* Optional non-zero weights, for the gradient check. */
		for (size_t i = 0; i + 1 < np; i++) {
			p[i] = weight * (float)((int)((i * 7 + (size_t)k * 3) % 11) - 5);
		}
		p[np - 1] = g_bias[k];
	}
	m->alpha = 0.05f;
	m->objective = dup_s("dsm");
	m->options = dup_s("");
	m->n_ref = n_ref;
	m->ref_rows = malloc((size_t)n_ref * D * sizeof(float));
	m->ref_energy = malloc(n_ref * sizeof(float));
	for (uint32_t i = 0; i < n_ref; i++) {
		float *x = m->ref_rows + (size_t)i * D;
		memcpy(x, g_mean, sizeof(g_mean));
		x[0] += 0.5f * (float)i;
		m->ref_energy[i] = (float)closed_form_energy(x);
	}
	struct ebm_error err;
	ck_assert_msg(ebm_model_finalize(m, &err) == EBM_STATUS_OK, "%s",
			err.message);
	return m;
}

/* ---- reference set ----------------------------------------------------- */

START_TEST(t_median_index)
{
	/* Rank ceil(n/2), 1-based: index (n - 1) / 2. */
	static const size_t want[] = { 0, 0, 0, 1, 1, 2, 2, 3 };
	for (uint32_t n = 1; n <= 7; n++) {
		struct ebm_model *m = gauss_model(n, 0.0f);
		ck_assert_uint_eq(ebm_model_median_index(m), want[n]);
		ck_assert(ebm_model_median_energy(m) ==
				ebm_model_ref_energies(m)[want[n]]);
		ebm_model_destroy(m);
	}
}
END_TEST

START_TEST(t_p_value)
{
	/* (1 + #{E_ref >= e}) / (n + 1), counted by hand. */
	static const float ref[4] = { 1.0f, 2.0f, 2.0f, 3.0f };
	ck_assert_double_eq(ebm_p_value(ref, 4, 0.0f), 1.0);        /* below all */
	ck_assert_double_eq(ebm_p_value(ref, 4, 1.0f), 1.0);        /* = lowest */
	ck_assert_double_eq(ebm_p_value(ref, 4, 1.5f), 4.0 / 5.0);
	ck_assert_double_eq(ebm_p_value(ref, 4, 2.0f), 4.0 / 5.0);  /* ties count */
	ck_assert_double_eq(ebm_p_value(ref, 4, 2.5f), 2.0 / 5.0);
	ck_assert_double_eq(ebm_p_value(ref, 4, 3.0f), 2.0 / 5.0);
	ck_assert_double_eq(ebm_p_value(ref, 4, 3.5f), 1.0 / 5.0);  /* above all */
	ck_assert_double_eq(ebm_p_value(ref, 4, INFINITY), 1.0 / 5.0);
	ck_assert_double_eq(ebm_p_value(ref, 4, -INFINITY), 1.0);
	static const float same[3] = { 2.0f, 2.0f, 2.0f };
	ck_assert_double_eq(ebm_p_value(same, 3, 2.0f), 1.0);
	ck_assert_double_eq(ebm_p_value(same, 3, 2.000001f), 0.25);
	ck_assert_double_eq(ebm_p_value(same, 1, 5.0f), 0.5);
	ck_assert_double_eq(ebm_p_value(NULL, 0, 5.0f), 1.0);
	ck_assert(isnan(ebm_p_value(ref, 4, NAN)));
	/* Against a linear count on a longer array with runs of ties. */
	float big[101];
	for (int i = 0; i < 101; i++) {
		big[i] = (float)(i / 3);
	}
	for (float e = -1.0f; e <= 35.0f; e += 0.5f) {
		size_t count = 0;
		for (int i = 0; i < 101; i++) {
			count += big[i] >= e;
		}
		ck_assert_double_eq(ebm_p_value(big, 101, e),
				(double)(1 + count) / 102.0);
	}
}
END_TEST

/* ---- energies ---------------------------------------------------------- */

START_TEST(t_energy)
{
	struct ebm_model *m = gauss_model(5, 0.0f);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	float x[4 * D] = {
		1.0f, -2.0f, 0.5f,      /* the mean: E = -1 */
		3.0f, -2.0f, 0.5f,      /* z = (1, 0, 0): E = -0.5 */
		-1.0f, -1.0f, 2.5f,     /* z = (-1, 2, 2): E = 3.5 */
		0.0f, 0.0f, 0.0f,
	};
	float e[4];
	ck_assert_int_eq(ebm_model_energy(m, ctx, x, 4, e, &err), EBM_STATUS_OK);
	ck_assert_float_eq_tol(e[0], -1.0f, 1e-6f);
	ck_assert_float_eq_tol(e[1], -0.5f, 1e-6f);
	ck_assert_float_eq_tol(e[2], 3.5f, 1e-6f);
	ck_assert_float_eq_tol(e[3], (float)closed_form_energy(x + 9), 1e-5f);
	/* Zero rows is fine. */
	ck_assert_int_eq(ebm_model_energy(m, ctx, NULL, 0, NULL, &err),
			EBM_STATUS_OK);
	ebm_ctx_destroy(ctx);
	ebm_ctx_destroy(NULL);
	ebm_model_destroy(m);
}
END_TEST

START_TEST(t_energy_grad)
{
	struct ebm_model *m = gauss_model(5, 0.0f);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	float x[2 * D] = { 3.0f, -1.0f, 0.0f, -1.0f, -2.5f, 2.0f };
	float e[2], g[2 * D];
	ck_assert_int_eq(ebm_model_energy_grad(m, ctx, x, 2, e, g, &err),
			EBM_STATUS_OK);
	/* dE/dx_j = z_j / scale_j. */
	for (int i = 0; i < 2; i++) {
		ck_assert_float_eq_tol(e[i], (float)closed_form_energy(x + i * D),
				1e-5f);
		for (int j = 0; j < D; j++) {
			float z = (x[i * D + j] - g_mean[j]) / g_scale[j];
			ck_assert_float_eq_tol(g[i * D + j], z / g_scale[j], 1e-5f);
		}
	}
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

/*
 * With non-zero MLP weights: the analytic raw-unit gradient against a
 * central difference of the energy. h = 1e-2 raw units; float energies
 * of magnitude ~10 carry ~1e-6 absolute error, so the difference quotient
 * is good to ~1e-4 plus O(h^2) curvature terms: 2e-2 absolute leaves room.
 */
START_TEST(t_energy_grad_fd)
{
	struct ebm_model *m = gauss_model(5, 0.05f);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	float x[D] = { 0.3f, -1.2f, 1.1f }, e, g[D];
	ck_assert_int_eq(ebm_model_energy_grad(m, ctx, x, 1, &e, g, &err),
			EBM_STATUS_OK);
	float e2;
	ck_assert_int_eq(ebm_model_energy(m, ctx, x, 1, &e2, &err),
			EBM_STATUS_OK);
	ck_assert_float_eq_tol(e, e2, 1e-5f);
	for (int j = 0; j < D; j++) {
		const float h = 1e-2f;
		float xp[D], xm[D], ep, em;
		memcpy(xp, x, sizeof(x));
		memcpy(xm, x, sizeof(x));
		xp[j] += h;
		xm[j] -= h;
		ck_assert_int_eq(ebm_model_energy(m, ctx, xp, 1, &ep, &err),
				EBM_STATUS_OK);
		ck_assert_int_eq(ebm_model_energy(m, ctx, xm, 1, &em, &err),
				EBM_STATUS_OK);
		ck_assert_float_eq_tol(g[j], (ep - em) / (2 * h), 2e-2f);
	}
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

START_TEST(t_energy_rejects)
{
	struct ebm_model *m = gauss_model(5, 0.0f);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	float x[2 * D] = { 1, 2, 3, 4, 5, NAN };
	float e[2], g[2 * D];
	ck_assert_int_eq(ebm_model_energy(m, ctx, x, 2, e, &err),
			EBM_STATUS_NUMERIC);
	ck_assert_str_eq(err.message, "row 2: feature 3 is not a finite number");
	ck_assert_uint_eq(err.line, 2);
	ck_assert_uint_eq(err.column, 3);
	x[5] = INFINITY;
	ck_assert_int_eq(ebm_model_energy_grad(m, ctx, x, 2, e, g, &err),
			EBM_STATUS_NUMERIC);
	ck_assert_uint_eq(err.line, 2);
	/* Finite input, infinite energy: (3e38 - mean) / 0.5 overflows. */
	x[5] = 3.0f;
	x[1] = 3e38f;
	ck_assert_int_eq(ebm_model_energy(m, ctx, x, 2, e, &err),
			EBM_STATUS_NUMERIC);
	ck_assert_str_eq(err.message, "row 1: energy is not finite");
	ck_assert_uint_eq(err.line, 1);
	ck_assert_uint_eq(err.column, 0);
	ck_assert_int_eq(ebm_model_energy(m, NULL, x, 2, e, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

/* More rows than one pass holds: same answers, rows numbered globally. */
START_TEST(t_energy_many_rows)
{
	struct ebm_model *m = gauss_model(5, 0.05f);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	const size_t n = 1000;
	float *x = malloc(n * D * sizeof(float));
	float *e = malloc(n * sizeof(float));
	float *g = malloc(n * D * sizeof(float));
	for (size_t i = 0; i < n * D; i++) {
		x[i] = (float)((int)(i * 37 % 101) - 50) * 0.05f;
	}
	ck_assert_int_eq(ebm_model_energy_grad(m, ctx, x, n, e, g, &err),
			EBM_STATUS_OK);
	for (size_t i = 0; i < n; i += 97) {
		float one, g1[D];
		ck_assert_int_eq(ebm_model_energy_grad(m, ctx, x + i * D, 1, &one,
				g1, &err), EBM_STATUS_OK);
		ck_assert(one == e[i]);
		ck_assert_mem_eq(g1, g + i * D, sizeof(g1));
	}
	x[699 * D + 1] = NAN;
	ck_assert_int_eq(ebm_model_energy(m, ctx, x, n, e, &err),
			EBM_STATUS_NUMERIC);
	ck_assert_str_eq(err.message,
			"row 700: feature 2 is not a finite number");
	ck_assert_uint_eq(err.line, 700);
	struct ebm_score *s = malloc(n * sizeof(*s));
	ck_assert_int_eq(ebm_model_score(m, ctx, x, n, 0.1, s, &err),
			EBM_STATUS_NUMERIC);
	ck_assert_uint_eq(err.line, 700);
	free(s);
	free(x);
	free(e);
	free(g);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

/* One context serves models of different sizes, in any order. */
START_TEST(t_ctx_reuse)
{
	static const uint32_t wide[2] = { 64, 32 };
	struct ebm_model *small = gauss_model(5, 0.0f);
	struct ebm_model *big = ebm_model_alloc();
	ck_assert(ebm_net_init(&big->net, 20, 3, 2, wide, EBM_ACT_SOFTPLUS));
	big->alpha = 0.1f;
	big->objective = dup_s("cd");
	big->n_ref = 1;
	big->ref_rows = calloc(20, sizeof(float));
	big->ref_energy = calloc(1, sizeof(float));
	for (int j = 0; j < 20; j++) {
		big->net.prec[j * 20 + j] = 1.0f;
	}
	struct ebm_error err;
	ck_assert_int_eq(ebm_model_finalize(big, &err), EBM_STATUS_OK);
	struct ebm_ctx *ctx = ebm_ctx_create();
	float xs[D] = { 1.0f, -2.0f, 0.5f }, xb[20] = { 0 }, e;
	float gb[20];
	ck_assert_int_eq(ebm_model_energy(small, ctx, xs, 1, &e, &err), 0);
	ck_assert_float_eq_tol(e, -1.0f, 1e-6f);
	ck_assert_int_eq(ebm_model_energy_grad(big, ctx, xb, 1, &e, gb, &err), 0);
	ck_assert_float_eq_tol(e, 0.0f, 1e-6f);
	ck_assert_int_eq(ebm_model_energy(small, ctx, xs, 1, &e, &err), 0);
	ck_assert_float_eq_tol(e, -1.0f, 1e-6f);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(small);
	ebm_model_destroy(big);
}
END_TEST

/* ---- score -------------------------------------------------------------- */

START_TEST(t_score)
{
	/* Reference energies 0.5 (t/2)^2 - 1 for t = 0, .5, .., 2: -1,
	 * -0.96875, -0.875, -0.71875, -0.5; median (index 2) -0.875. */
	struct ebm_model *m = gauss_model(5, 0.0f);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	ck_assert_float_eq_tol(ebm_model_median_energy(m), -0.875f, 1e-7f);
	float x[3 * D] = {
		1.0f, -2.0f, 0.5f,      /* E = -1: ties the lowest, p = 6/6 */
		2.0f, -2.0f, 0.5f,      /* z1 = .5, E = -0.875: p = 4/6 */
		11.0f, -2.0f, 0.5f,     /* z1 = 5, E = 11.5: above all, p = 1/6 */
	};
	struct ebm_score s[3];
	ck_assert_int_eq(ebm_model_score(m, ctx, x, 3, 0.2, s, &err),
			EBM_STATUS_OK);
	ck_assert_float_eq_tol(s[0].energy, -1.0f, 1e-6f);
	ck_assert_float_eq_tol(s[0].score, -0.125f, 1e-6f);
	ck_assert_double_eq(s[0].p_value, 1.0);
	ck_assert(!s[0].anomaly);
	ck_assert_float_eq_tol(s[1].score, 0.0f, 1e-6f);
	ck_assert_double_eq_tol(s[1].p_value, 4.0 / 6.0, 1e-12);
	ck_assert(!s[1].anomaly);
	ck_assert_float_eq_tol(s[2].energy, 11.5f, 1e-5f);
	ck_assert_float_eq_tol(s[2].score, 12.375f, 1e-5f);
	ck_assert_double_eq_tol(s[2].p_value, 1.0 / 6.0, 1e-12);
	ck_assert(s[2].anomaly);               /* 1/6 < 0.2 */
	ck_assert_int_eq(ebm_model_score(m, ctx, x, 3, 0.1, s, &err),
			EBM_STATUS_OK);
	ck_assert(!s[2].anomaly);              /* 1/6 >= 0.1 */
	/* alpha outside (0, 1) */
	static const double bad[] = { 0.0, 1.0, -0.1, 1.5, NAN };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(ebm_model_score(m, ctx, x, 3, bad[i], s, &err),
				EBM_STATUS_INVALID_ARGUMENT);
	}
	ck_assert_int_eq(ebm_model_score(m, ctx, x, 3, 0.0, s, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "alpha must be in (0, 1), got 0");
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

/* ---- sampling ------------------------------------------------------------ */

START_TEST(t_sampler_names)
{
	static const char *names[] = { "langevin", "mala", "mh" };
	for (int i = 0; i < 3; i++) {
		enum ebm_sampler s;
		ck_assert(ebm_sampler_parse(names[i], &s));
		ck_assert_int_eq(s, i);
		ck_assert_str_eq(ebm_sampler_name(s), names[i]);
	}
	enum ebm_sampler s = EBM_SAMPLER_MH;
	ck_assert(!ebm_sampler_parse("Langevin", &s));
	ck_assert(!ebm_sampler_parse("", &s));
	ck_assert(!ebm_sampler_parse(NULL, &s));
	ck_assert_int_eq(s, EBM_SAMPLER_MH);
	ck_assert_str_eq(ebm_sampler_name((enum ebm_sampler)7), "unknown");
	struct ebm_sample_options o;
	memset(&o, 0xab, sizeof(o));
	ebm_sample_options_init(&o);
	ck_assert_int_eq(o.sampler, EBM_SAMPLER_LANGEVIN);
	ck_assert_uint_eq(o.n_steps, 100);
	ck_assert(o.step_size == 0.0f);
	ck_assert_uint_eq(o.seed, 0);
}
END_TEST

START_TEST(t_sample_basics)
{
	struct ebm_model *m = gauss_model(5, 0.05f);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	const size_t n = 300;   /* more than one pass of chains */
	float *a = malloc(n * D * sizeof(float));
	float *b = malloc(n * D * sizeof(float));
	for (int k = 0; k < 3; k++) {
		struct ebm_sample_options o;
		ebm_sample_options_init(&o);
		o.sampler = (enum ebm_sampler)k;
		o.n_steps = 20;
		o.seed = 11;
		double rate = -1.0;
		ck_assert_msg(ebm_model_sample(m, ctx, &o, n, a, &rate, &err) ==
				EBM_STATUS_OK, "%s", err.message);
		ck_assert(rate >= 0.0 && rate <= 1.0);
		if (o.sampler == EBM_SAMPLER_LANGEVIN) {
			ck_assert_double_eq(rate, 1.0);
		}
		for (size_t i = 0; i < n * D; i++) {
			ck_assert(isfinite(a[i]));
		}
		/* Same seed, same draws; another seed, other draws. */
		ck_assert_int_eq(ebm_model_sample(m, ctx, &o, n, b, NULL, &err),
				EBM_STATUS_OK);
		ck_assert_mem_eq(a, b, n * D * sizeof(float));
		o.seed = 12;
		ck_assert_int_eq(ebm_model_sample(m, ctx, &o, n, b, NULL, &err),
				EBM_STATUS_OK);
		ck_assert(memcmp(a, b, n * D * sizeof(float)) != 0);
	}
	/* NULL options: the defaults. */
	ck_assert_int_eq(ebm_model_sample(m, ctx, NULL, 4, a, NULL, &err),
			EBM_STATUS_OK);
	double rate = -1.0;
	ck_assert_int_eq(ebm_model_sample(m, ctx, NULL, 0, NULL, &rate, &err),
			EBM_STATUS_OK);
	ck_assert_double_eq(rate, 1.0);
	free(a);
	free(b);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

START_TEST(t_sample_rejects)
{
	struct ebm_model *m = gauss_model(5, 0.0f);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	float out[D];
	struct ebm_sample_options o;
	ebm_sample_options_init(&o);
	o.n_steps = 0;
	ck_assert_int_eq(ebm_model_sample(m, ctx, &o, 1, out, NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "steps must be in 1 .. 1000000, got 0");
	o.n_steps = 1000001;
	ck_assert_int_eq(ebm_model_sample(m, ctx, &o, 1, out, NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	o.n_steps = 10;
	o.step_size = -0.1f;
	ck_assert_int_eq(ebm_model_sample(m, ctx, &o, 1, out, NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	o.step_size = NAN;
	ck_assert_int_eq(ebm_model_sample(m, ctx, &o, 1, out, NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	o.step_size = INFINITY;
	ck_assert_int_eq(ebm_model_sample(m, ctx, &o, 1, out, NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	o.step_size = 0.0f;
	o.sampler = (enum ebm_sampler)5;
	ck_assert_int_eq(ebm_model_sample(m, ctx, &o, 1, out, NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "unknown sampler 5");
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

/*
 * The target is N(mean, diag(scale^2)) in raw units. 500 chains of 500
 * Langevin steps at the default eps = 0.01 (diffusion time 5: the start's
 * influence decays like e^-5) must recover it. Standard errors with 500
 * draws: mean ~ scale / 22, variance ~ 6% relative; unadjusted Langevin
 * inflates the variance by 1 / (1 - eps/2), 0.5%. The bounds below are
 * more than 4 standard errors wide. This checks that chains start from
 * standardized reference rows and come back in raw units.
 */
START_TEST(t_sample_gaussian)
{
	struct ebm_model *m = gauss_model(5, 0.0f);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_error err;
	const size_t n = 500;
	float *x = malloc(n * D * sizeof(float));
	struct ebm_sample_options o;
	ebm_sample_options_init(&o);
	o.n_steps = 500;
	o.seed = 3;
	ck_assert_int_eq(ebm_model_sample(m, ctx, &o, n, x, NULL, &err),
			EBM_STATUS_OK);
	for (int j = 0; j < D; j++) {
		double s = 0.0, ss = 0.0;
		for (size_t i = 0; i < n; i++) {
			s += x[i * D + j];
		}
		double mu = s / (double)n;
		for (size_t i = 0; i < n; i++) {
			double r = x[i * D + j] - mu;
			ss += r * r;
		}
		double var = ss / (double)(n - 1);
		double want_var = (double)g_scale[j] * g_scale[j];
		ck_assert_msg(fabs(mu - g_mean[j]) < 0.2 * g_scale[j],
				"feature %d: mean %g, want %g", j, mu, (double)g_mean[j]);
		ck_assert_msg(fabs(var / want_var - 1.0) < 0.3,
				"feature %d: variance %g, want %g", j, var, want_var);
	}
	free(x);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

static Suite *score_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("reference");
	tcase_add_test(tc, t_median_index);
	tcase_add_test(tc, t_p_value);
	suite_add_tcase(s, tc);

	tc = tcase_create("energy");
	tcase_add_test(tc, t_energy);
	tcase_add_test(tc, t_energy_grad);
	tcase_add_test(tc, t_energy_grad_fd);
	tcase_add_test(tc, t_energy_rejects);
	tcase_add_test(tc, t_energy_many_rows);
	tcase_add_test(tc, t_ctx_reuse);
	tcase_add_test(tc, t_score);
	suite_add_tcase(s, tc);

	tc = tcase_create("sample");
	tcase_add_test(tc, t_sampler_names);
	tcase_add_test(tc, t_sample_basics);
	tcase_add_test(tc, t_sample_rejects);
	tcase_add_test(tc, t_sample_gaussian);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(score_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
