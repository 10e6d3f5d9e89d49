/*
 * test-core-grad.c — every gradient of the energy network against central
 * finite differences: the score (input gradient), the parameter gradient
 * used by contrastive divergence, and the double-backpropagated gradient of
 * the denoising score-matching loss. (BLAS against the reference products:
 * test-core-blas.c.)
 *
 * Tolerances: the network runs in float32. With step h = 1e-3 in double
 * around float evaluations, rounding error in a central difference is about
 * eps_f * |f| / h ~ 1e-4 relative, truncation h^2 f''' ~ 1e-6; comparisons
 * use the normalised error |a - b| / max(|a|, |b|, 1e-2) < 2e-2 per entry and
 * a vector-level NMSE < 1e-4.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void fill_random(struct ebm_rng *r, float *p, size_t n, float s)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = s * (float)ebm_rng_normal(r);
	}
}

/* A small random network: d=4, hidden 6,5, with an SPD base precision. */
static void make_net(struct ebm_net *net, enum ebm_act act, uint32_t members)
{
	uint32_t hidden[2] = {6, 5};
	ck_assert(ebm_net_init(net, 4, members, 2, hidden, act));
	struct ebm_rng r;
	ebm_rng_init(&r, 7);
	fill_random(&r, net->params, net->n_params * members, 0.6f);
	size_t d = net->d;
	float a[16];
	fill_random(&r, a, 16, 0.3f);
	/* P = A A' + 0.5 I: symmetric positive definite. */
	for (size_t i = 0; i < d; i++) {
		for (size_t j = 0; j < d; j++) {
			double s = i == j ? 0.5 : 0.0;
			for (size_t k = 0; k < d; k++) {
				s += a[i * d + k] * a[j * d + k];
			}
			net->prec[i * d + j] = (float)s;
		}
	}
}

static double rel_err(double a, double b)
{
	double m = fmax(fmax(fabs(a), fabs(b)), 1e-2);
	return fabs(a - b) / m;
}

static double member_f(const struct ebm_net *net, const float *params,
		struct ebm_work *w, const float *z, size_t n)
{
	float f[8];
	ck_assert(ebm_member_input_grad(net, params, w, z, n, f, NULL));
	double s = 0.0;
	for (size_t i = 0; i < n; i++) {
		s += f[i];
	}
	return s;
}

static void check_input_grad(enum ebm_act act)
{
	struct ebm_net net;
	make_net(&net, act, 1);
	struct ebm_work w;
	ebm_work_init(&w);
	struct ebm_rng r;
	ebm_rng_init(&r, 11);
	size_t n = 3, d = net.d;
	float z[12], g[12], f[3];
	fill_random(&r, z, n * d, 1.0f);
	ck_assert(ebm_member_input_grad(&net, net.params, &w, z, n, f, g));
	const double h = 1e-3;
	for (size_t q = 0; q < n * d; q++) {
		float save = z[q];
		z[q] = save + (float)h;
		double fp = member_f(&net, net.params, &w, z, n);
		z[q] = save - (float)h;
		double fm = member_f(&net, net.params, &w, z, n);
		z[q] = save;
		double fd = (fp - fm) / (2.0 * h);
		ck_assert_msg(rel_err(g[q], fd) < 2e-2, "%s: dz[%zu] analytic %g fd %g",
				ebm_act_name(act), q, g[q], fd);
	}
	ebm_work_finish(&w);
	ebm_net_finish(&net);
}

START_TEST(input_grad_silu) { check_input_grad(EBM_ACT_SILU); }
END_TEST
START_TEST(input_grad_softplus) { check_input_grad(EBM_ACT_SOFTPLUS); }
END_TEST

/* Whole network (3 members averaged) against finite differences. */
START_TEST(net_input_grad_members)
{
	struct ebm_net net;
	make_net(&net, EBM_ACT_SILU, 3);
	struct ebm_work w;
	ebm_work_init(&w);
	struct ebm_rng r;
	ebm_rng_init(&r, 5);
	size_t d = net.d;
	float z[4], g[4], f, fp, fm, f2;
	fill_random(&r, z, d, 1.0f);
	ck_assert(ebm_net_input_grad(&net, &w, z, 1, &f, g));
	ck_assert(ebm_net_forward(&net, &w, z, 1, &f2));
	ck_assert_float_eq_tol(f, f2, 1e-5f);
	/* The average of the members' own values. */
	double avg = 0.0;
	for (uint32_t k = 0; k < 3; k++) {
		avg += member_f(&net, net.params + k * net.n_params, &w, z, 1) / 3.0;
	}
	ck_assert_msg(fabs(avg - f) < 1e-4, "avg %g f %g", avg, f);
	for (size_t j = 0; j < d; j++) {
		float save = z[j];
		z[j] = save + 1e-3f;
		ck_assert(ebm_net_forward(&net, &w, z, 1, &fp));
		z[j] = save - 1e-3f;
		ck_assert(ebm_net_forward(&net, &w, z, 1, &fm));
		z[j] = save;
		double fd = ((double)fp - (double)fm) / 2e-3;
		ck_assert_msg(rel_err(g[j], fd) < 2e-2, "g[%zu] %g fd %g", j, g[j],
				fd);
	}
	ebm_work_finish(&w);
	ebm_net_finish(&net);
}
END_TEST

static void check_param_grad(enum ebm_act act)
{
	struct ebm_net net;
	make_net(&net, act, 1);
	struct ebm_work w;
	ebm_work_init(&w);
	struct ebm_rng r;
	ebm_rng_init(&r, 3);
	size_t n = 4, d = net.d, np = net.n_params;
	float z[16], df[4] = {1.0f, -0.5f, 2.0f, 0.25f}, f[4];
	fill_random(&r, z, n * d, 1.0f);
	float *grad = calloc(np, sizeof(float));
	ck_assert(ebm_member_param_grad(&net, net.params, &w, z, n, df, f, grad));
	float fi[4];
	ck_assert(ebm_member_input_grad(&net, net.params, &w, z, n, fi, NULL));
	for (size_t i = 0; i < n; i++) {
		ck_assert_float_eq_tol(f[i], fi[i], 1e-5f);
	}
	for (size_t p = 0; p < np; p++) {
		float save = net.params[p];
		double s[2];
		for (int side = 0; side < 2; side++) {
			net.params[p] = save + (side ? -1e-3f : 1e-3f);
			float ff[4];
			ck_assert(ebm_member_input_grad(&net, net.params, &w, z, n, ff,
					NULL));
			s[side] = 0.0;
			for (size_t i = 0; i < n; i++) {
				s[side] += df[i] * (double)ff[i];
			}
		}
		net.params[p] = save;
		double fd = (s[0] - s[1]) / 2e-3;
		ck_assert_msg(rel_err(grad[p], fd) < 2e-2, "%s: param %zu: %g vs fd %g",
				ebm_act_name(act), p, grad[p], fd);
	}
	free(grad);
	ebm_work_finish(&w);
	ebm_net_finish(&net);
}

START_TEST(param_grad_silu) { check_param_grad(EBM_ACT_SILU); }
END_TEST
START_TEST(param_grad_softplus) { check_param_grad(EBM_ACT_SOFTPLUS); }
END_TEST

static void check_dsm_grad(enum ebm_act act)
{
	struct ebm_net net;
	make_net(&net, act, 1);
	struct ebm_work w;
	ebm_work_init(&w);
	struct ebm_rng r;
	ebm_rng_init(&r, 9);
	size_t n = 5, d = net.d, np = net.n_params;
	float z[20], eps[20], sigma[5] = {0.1f, 0.3f, 1.0f, 0.5f, 0.05f};
	fill_random(&r, z, n * d, 1.0f);
	fill_random(&r, eps, n * d, 1.0f);
	float *grad = calloc(np, sizeof(float));
	double loss, loss2;
	ck_assert(ebm_member_dsm(&net, net.params, &w, z, eps, sigma, n, &loss,
			grad));
	ck_assert(ebm_member_dsm(&net, net.params, &w, z, eps, sigma, n, &loss2,
			NULL));
	ck_assert(fabs(loss - loss2) < 1e-9 * fmax(1.0, fabs(loss)));
	/* The loss itself, from the input gradient. */
	float zt[20], g[20], f[5];
	for (size_t q = 0; q < n * d; q++) {
		zt[q] = z[q] + sigma[q / d] * eps[q];
	}
	ck_assert(ebm_member_input_grad(&net, net.params, &w, zt, n, f, g));
	double ref = 0.0;
	for (size_t q = 0; q < n * d; q++) {
		double rq = sigma[q / d] * g[q] + eps[q];
		ref += 0.5 * rq * rq;
	}
	ck_assert_msg(fabs(ref - loss) < 1e-4 * fmax(1.0, ref), "%g vs %g", ref,
			loss);
	double err2 = 0.0, norm2 = 0.0;
	for (size_t p = 0; p < np; p++) {
		float save = net.params[p];
		double lp, lm;
		net.params[p] = save + 1e-3f;
		ck_assert(ebm_member_dsm(&net, net.params, &w, z, eps, sigma, n, &lp,
				NULL));
		net.params[p] = save - 1e-3f;
		ck_assert(ebm_member_dsm(&net, net.params, &w, z, eps, sigma, n, &lm,
				NULL));
		net.params[p] = save;
		double fd = (lp - lm) / 2e-3;
		ck_assert_msg(rel_err(grad[p], fd) < 3e-2, "%s: param %zu: %g vs fd %g",
				ebm_act_name(act), p, grad[p], fd);
		err2 += (grad[p] - fd) * (grad[p] - fd);
		norm2 += fd * fd;
	}
	ck_assert_msg(err2 / norm2 < 1e-4, "NMSE %g", err2 / norm2);
	free(grad);
	ebm_work_finish(&w);
	ebm_net_finish(&net);
}

START_TEST(dsm_grad_silu) { check_dsm_grad(EBM_ACT_SILU); }
END_TEST
START_TEST(dsm_grad_softplus) { check_dsm_grad(EBM_ACT_SOFTPLUS); }
END_TEST

/* DSM on a 3-layer net, to exercise the middle-layer tangent recursion. */
START_TEST(dsm_grad_deep)
{
	struct ebm_net net;
	uint32_t hidden[3] = {5, 7, 3};
	ck_assert(ebm_net_init(&net, 3, 1, 3, hidden, EBM_ACT_SILU));
	struct ebm_rng r;
	ebm_rng_init(&r, 21);
	fill_random(&r, net.params, net.n_params, 0.7f);
	for (size_t j = 0; j < 3; j++) {
		net.prec[j * 3 + j] = 1.0f;
	}
	/* h = 1e-2 here: the loss is larger on this net, so float rounding
	 * (~6e-8 * |loss| / h) would swamp h = 1e-3 for the small entries. */
	struct ebm_work w;
	ebm_work_init(&w);
	size_t n = 3, np = net.n_params;
	float z[9], eps[9], sigma[3] = {0.2f, 0.7f, 0.4f};
	fill_random(&r, z, 9, 1.0f);
	fill_random(&r, eps, 9, 1.0f);
	float *grad = calloc(np, sizeof(float));
	double loss;
	ck_assert(ebm_member_dsm(&net, net.params, &w, z, eps, sigma, n, &loss,
			grad));
	for (size_t p = 0; p < np; p++) {
		float save = net.params[p];
		double lp, lm;
		net.params[p] = save + 1e-2f;
		ck_assert(ebm_member_dsm(&net, net.params, &w, z, eps, sigma, n, &lp,
				NULL));
		net.params[p] = save - 1e-2f;
		ck_assert(ebm_member_dsm(&net, net.params, &w, z, eps, sigma, n, &lm,
				NULL));
		net.params[p] = save;
		double fd = (lp - lm) / 2e-2;
		ck_assert_msg(rel_err(grad[p], fd) < 3e-2, "param %zu: %g vs fd %g",
				p, grad[p], fd);
	}
	free(grad);
	ebm_work_finish(&w);
	ebm_net_finish(&net);
}
END_TEST

/* Hand-computed: f = -0.5 z'Pz + w' silu(W z + b) + c at one point. */
START_TEST(forward_hand_computed)
{
	struct ebm_net net;
	uint32_t hidden[1] = {1};
	ck_assert(ebm_net_init(&net, 2, 1, 1, hidden, EBM_ACT_SILU));
	/* W = [1, 2], b = 0.5, w = 3, c = -1; P = diag(1, 4). */
	float p[] = {1.0f, 2.0f, 0.5f, 3.0f, -1.0f};
	memcpy(net.params, p, sizeof(p));
	net.prec[0] = 1.0f;
	net.prec[3] = 4.0f;
	struct ebm_work w;
	ebm_work_init(&w);
	float z[2] = {0.5f, -1.0f}, f, g[2];
	ck_assert(ebm_net_input_grad(&net, &w, z, 1, &f, g));
	double a = 0.5 - 2.0 + 0.5; /* -1 */
	double sg = 1.0 / (1.0 + exp(-a));
	double expect = -0.5 * (0.25 + 4.0) + 3.0 * a * sg - 1.0;
	ck_assert_msg(fabs(f - expect) < 1e-5, "f %g expect %g", f, expect);
	double ds = sg * (1.0 + a * (1.0 - sg));
	ck_assert(fabs(g[0] - (-0.5 + 3.0 * ds * 1.0)) < 1e-5);
	ck_assert(fabs(g[1] - (4.0 + 3.0 * ds * 2.0)) < 1e-5);
	ebm_work_finish(&w);
	ebm_net_finish(&net);
}
END_TEST

/* Non-finite input gives a non-finite f (so callers can refuse the row),
 * and very large pre-activations stay finite. */
START_TEST(forward_nonfinite_and_extremes)
{
	struct ebm_net net;
	make_net(&net, EBM_ACT_SILU, 1);
	struct ebm_work w;
	ebm_work_init(&w);
	float z[8] = {NAN, 0.0f, 1.0f, 2.0f, 1e4f, -1e4f, 3e3f, -5e3f}, f[2];
	ck_assert(ebm_net_forward(&net, &w, z, 2, f));
	ck_assert(isnan(f[0]));
	ck_assert(isfinite(f[1]));
	ebm_work_finish(&w);
	ebm_net_finish(&net);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("grad");
	tcase_add_test(tc, forward_hand_computed);
	tcase_add_test(tc, forward_nonfinite_and_extremes);
	tcase_add_test(tc, input_grad_silu);
	tcase_add_test(tc, input_grad_softplus);
	tcase_add_test(tc, net_input_grad_members);
	tcase_add_test(tc, param_grad_silu);
	tcase_add_test(tc, param_grad_softplus);
	tcase_add_test(tc, dsm_grad_silu);
	tcase_add_test(tc, dsm_grad_softplus);
	tcase_add_test(tc, dsm_grad_deep);
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
