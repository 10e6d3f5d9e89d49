/*
 * test-core-proto.c — the prototype term (src/core/proto.c) and its place
 * in the network: densities with known answers (one prototype is a
 * Gaussian; two far-apart prototypes are two Gaussians with their log
 * weights), central finite differences of its gradient and of the whole
 * tempered product F = w_net f + w_proto g, the BLAS path against the
 * reference GEMM, and the prototype fit of src/train/proto.c on data with
 * a known answer.
 *
 * Tolerances as test-core-grad.c: float32 maths, central differences with
 * step 1e-3 in double; normalised error < 2e-2 per entry.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "train/train.h"

static void fill_random(struct ebm_rng *r, float *p, size_t n, float s)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = s * (float)ebm_rng_normal(r);
	}
}

static double rel_err(double a, double b)
{
	double m = fmax(fmax(fabs(a), fabs(b)), 1e-2);
	return fabs(a - b) / m;
}

/* g and dg/dz of n rows through ebm_proto_eval. */
static void eval(const struct ebm_proto *p, uint32_t d, const float *z,
		size_t n, float *g, float *grad)
{
	float *s = malloc((ebm_proto_scratch(p, d, n) + 1) * sizeof(float));
	ck_assert_ptr_nonnull(s);
	ebm_proto_eval(p, d, z, n, s, g, grad);
	free(s);
}

START_TEST(t_one_prototype_is_a_gaussian)
{
	/* g(z) = log w - ||z - c||^2 / (2 h^2), gradient (c - z) / h^2. */
	struct ebm_proto p;
	uint32_t d = 3;
	ck_assert(ebm_proto_init(&p, 1, d));
	p.c[0] = 1.0f;
	p.c[1] = -2.0f;
	p.c[2] = 0.5f;
	p.logw[0] = logf(0.25f);
	p.h[0] = 0.7f;
	ebm_proto_update(&p, d);
	float z[6] = {0.0f, 0.0f, 0.0f, 1.0f, -2.0f, 1.5f};
	float g[2], grad[6];
	eval(&p, d, z, 2, g, grad);
	for (int i = 0; i < 2; i++) {
		double d2 = 0.0;
		for (uint32_t q = 0; q < d; q++) {
			double v = z[i * 3 + q] - p.c[q];
			d2 += v * v;
			double want = (p.c[q] - z[i * 3 + q]) / (0.7 * 0.7);
			ck_assert_msg(fabs(grad[i * 3 + q] - want) < 1e-4,
					"grad[%d][%u] = %g, want %g", i, q, grad[i * 3 + q], want);
		}
		double want = log(0.25) - d2 / (2 * 0.7 * 0.7);
		ck_assert_msg(fabs(g[i] - want) < 1e-4, "g[%d] = %g, want %g", i,
				g[i], want);
	}
	ebm_proto_finish(&p);
}
END_TEST

START_TEST(t_two_far_prototypes)
{
	/* Near either centre the other contributes exp(-~5000): g is that
	 * centre's Gaussian with its own log weight. */
	struct ebm_proto p;
	uint32_t d = 2;
	ck_assert(ebm_proto_init(&p, 2, d));
	p.c[0] = -10.0f;
	p.c[1] = 0.0f;
	p.c[2] = 10.0f;
	p.c[3] = 0.0f;
	p.logw[0] = logf(0.9f);
	p.logw[1] = logf(0.1f);
	p.h[0] = 0.2f;
	p.h[1] = 0.2f;
	ebm_proto_update(&p, d);
	float z[4] = {-10.1f, 0.05f, 10.0f, -0.1f};
	float g[2], grad[4];
	eval(&p, d, z, 2, g, grad);
	double w1 = log(0.9) - (0.01 + 0.0025) / (2 * 0.04);
	double w2 = log(0.1) - 0.01 / (2 * 0.04);
	ck_assert_msg(fabs(g[0] - w1) < 1e-4, "g[0] = %g, want %g", g[0], w1);
	ck_assert_msg(fabs(g[1] - w2) < 1e-4, "g[1] = %g, want %g", g[1], w2);
	ck_assert(fabs(grad[0] - 0.1 / 0.04) < 1e-3);
	ck_assert(fabs(grad[1] + 0.05 / 0.04) < 1e-3);
	ck_assert(fabs(grad[3] - 0.1 / 0.04) < 1e-3);
	ebm_proto_finish(&p);
}
END_TEST

/* A random term: n prototypes in d dimensions. */
static void make_proto(struct ebm_proto *p, uint32_t n, uint32_t d,
		uint64_t seed)
{
	struct ebm_rng r;
	ebm_rng_init(&r, seed);
	ck_assert(ebm_proto_init(p, n, d));
	fill_random(&r, p->c, (size_t)n * d, 1.0f);
	fill_random(&r, p->logw, n, 0.5f);
	for (uint32_t j = 0; j < n; j++) {
		p->h[j] = 0.5f + 0.6f * (float)ebm_rng_uniform(&r);
	}
	ebm_proto_update(p, d);
}

START_TEST(t_proto_gradient_fd)
{
	struct ebm_proto p;
	uint32_t d = 5;
	make_proto(&p, 40, d, 3);
	struct ebm_rng r;
	ebm_rng_init(&r, 5);
	float z[15], g[3], grad[15];
	fill_random(&r, z, 15, 1.0f);
	eval(&p, d, z, 3, g, grad);
	for (size_t q = 0; q < 15; q++) {
		float zp[15], zm[15], gp[3], gm[3];
		memcpy(zp, z, sizeof(z));
		memcpy(zm, z, sizeof(z));
		zp[q] += 1e-3f;
		zm[q] -= 1e-3f;
		eval(&p, d, zp, 3, gp, NULL);
		eval(&p, d, zm, 3, gm, NULL);
		size_t i = q / d;
		double fd = ((double)gp[i] - gm[i]) / (2e-3);
		ck_assert_msg(rel_err(fd, grad[q]) < 2e-2, "dg/dz[%zu] = %g, fd %g",
				q, grad[q], fd);
	}
	ebm_proto_finish(&p);
}
END_TEST

/* Many rows and prototypes (BLAS path, several row chunks) against the
 * reference GEMM. */
START_TEST(t_proto_blas_matches_reference)
{
	struct ebm_proto p;
	uint32_t d = 17;
	size_t n = 600;
	make_proto(&p, 300, d, 9);
	struct ebm_rng r;
	ebm_rng_init(&r, 10);
	float *z = malloc(n * d * sizeof(float));
	float *g1 = malloc(n * sizeof(float)), *g2 = malloc(n * sizeof(float));
	float *d1 = malloc(n * d * sizeof(float));
	float *d2 = malloc(n * d * sizeof(float));
	fill_random(&r, z, n * d, 1.0f);
	eval(&p, d, z, n, g1, d1);
	bool was = ebm_blas_force_ref(true);
	eval(&p, d, z, n, g2, d2);
	ebm_blas_force_ref(was);
	for (size_t i = 0; i < n; i++) {
		ck_assert(rel_err(g1[i], g2[i]) < 1e-4);
	}
	for (size_t q = 0; q < n * d; q++) {
		ck_assert(rel_err(d1[q], d2[q]) < 1e-3);
	}
	free(z);
	free(g1);
	free(g2);
	free(d1);
	free(d2);
	ebm_proto_finish(&p);
}
END_TEST

/* The whole network with a prototype term: F = w_net f + w_proto g, its
 * input gradient by finite differences, F = w_proto g when w_net is 0, and
 * F = f when the term is gone. */
START_TEST(t_net_with_protos)
{
	uint32_t hidden[2] = {6, 5};
	struct ebm_net net;
	ck_assert(ebm_net_init(&net, 4, 2, 2, hidden, EBM_ACT_SILU));
	struct ebm_rng r;
	ebm_rng_init(&r, 7);
	fill_random(&r, net.params, net.n_params * 2, 0.6f);
	for (size_t j = 0; j < 4; j++) {
		net.prec[j * 4 + j] = 0.5f + 0.1f * (float)j;
	}
	struct ebm_work w;
	ebm_work_init(&w);
	float z[12], f0[3], f[3], g[12], pg[3];
	fill_random(&r, z, 12, 1.0f);
	ck_assert(ebm_net_forward(&net, &w, z, 3, f0));
	make_proto(&net.proto, 25, 4, 4);
	net.proto.w_net = 0.3f;
	net.proto.w_proto = 1.7f;
	ck_assert(ebm_net_input_grad(&net, &w, z, 3, f, g));
	eval(&net.proto, 4, z, 3, pg, NULL);
	for (int i = 0; i < 3; i++) {
		double want = 0.3 * f0[i] + 1.7 * pg[i];
		ck_assert_msg(rel_err(f[i], want) < 1e-5, "F[%d] = %g, want %g", i,
				f[i], want);
	}
	for (size_t q = 0; q < 12; q++) {
		float zp[12], zm[12], fp[3], fm[3];
		memcpy(zp, z, sizeof(z));
		memcpy(zm, z, sizeof(z));
		zp[q] += 1e-3f;
		zm[q] -= 1e-3f;
		ck_assert(ebm_net_forward(&net, &w, zp, 3, fp));
		ck_assert(ebm_net_forward(&net, &w, zm, 3, fm));
		double fd = ((double)fp[q / 4] - fm[q / 4]) / 2e-3;
		ck_assert_msg(rel_err(fd, g[q]) < 2e-2, "dF/dz[%zu] = %g, fd %g", q,
				g[q], fd);
	}
	/* A copy carries the term. */
	struct ebm_net copy;
	ck_assert(ebm_net_copy(&copy, &net));
	float fc[3];
	ck_assert(ebm_net_forward(&copy, &w, z, 3, fc));
	ck_assert(memcmp(fc, f, sizeof(f)) == 0);
	ebm_net_finish(&copy);
	/* Network weight 0 (the default model): F and its gradient are the
	 * prototype term's alone, the members (nonzero here) play no part. */
	net.proto.w_net = 0.0f;
	float pd[12];
	eval(&net.proto, 4, z, 3, pg, pd);
	ck_assert(ebm_net_input_grad(&net, &w, z, 3, f, g));
	for (int i = 0; i < 3; i++) {
		ck_assert_float_eq(f[i], 1.7f * pg[i]);
	}
	for (size_t q = 0; q < 12; q++) {
		ck_assert_float_eq(g[q], 1.7f * pd[q]);
	}
	ebm_proto_finish(&net.proto);
	ck_assert(ebm_net_forward(&net, &w, z, 3, f));
	ck_assert(memcmp(f, f0, sizeof(f)) == 0);
	ebm_work_finish(&w);
	ebm_net_finish(&net);
}
END_TEST

/* Two tight clusters of 300 and 100 rows, two prototypes: the centres are
 * the cluster means, the log weights log 3/4 and log 1/4; and the
 * bandwidth of rows drawn from N(0, s^2 I) with every row a centre is of
 * the order of s (the likelihood-optimal KDE bandwidth shrinks like
 * n^(-1/(d+4)), so between s/4 and s). */
START_TEST(t_fit_known_answer)
{
	uint32_t d = 2;
	size_t n = 400, nv = 100;
	float *z = malloc(n * d * sizeof(float));
	float *zv = malloc(nv * d * sizeof(float));
	struct ebm_rng r;
	ebm_rng_init(&r, 1);
	for (size_t i = 0; i < n; i++) {
		float cx = i < 300 ? -5.0f : 5.0f;
		z[i * 2] = cx + 0.05f * (float)ebm_rng_normal(&r);
		z[i * 2 + 1] = 0.05f * (float)ebm_rng_normal(&r);
	}
	for (size_t i = 0; i < nv; i++) {
		zv[i * 2] = (i % 4 ? -5.0f : 5.0f) + 0.05f * (float)ebm_rng_normal(&r);
		zv[i * 2 + 1] = 0.05f * (float)ebm_rng_normal(&r);
	}
	/* Random initial rows may both fall in the big cluster; Lloyd then
	 * cannot separate them, so try seeds until one starts in both (the
	 * check is on what k-means converges to, not on the draw). */
	struct ebm_proto p;
	bool found = false;
	for (uint64_t seed = 1; seed < 20 && !found; seed++) {
		ck_assert_int_eq(ebm_train_fit_protos(&p, d, z, n, zv, nv, 2, 10,
				0.0f, seed, NULL), EBM_STATUS_OK);
		ck_assert_uint_le(p.n, 2);
		if (p.n == 2 && (p.c[0] < 0) != (p.c[2] < 0)) {
			found = true;
			int big = p.c[0] < 0 ? 0 : 1;
			ck_assert(fabs(p.c[big * 2] + 5.0) < 0.02);
			ck_assert(fabs(p.c[(1 - big) * 2] - 5.0) < 0.02);
			/* log share minus the normalizing d log h */
			ck_assert(p.h[0] == p.h[1]);
			double norm = d * log(p.h[0]);
			ck_assert(fabs(p.logw[big] - (log(0.75) - norm)) < 1e-5);
			ck_assert(fabs(p.logw[1 - big] - (log(0.25) - norm)) < 1e-5);
			/* bandwidth of the order of the cluster sd */
			ck_assert_msg(p.h[0] > 0.03 && p.h[0] < 0.1, "h = %g", p.h[0]);
		}
		ebm_proto_finish(&p);
	}
	ck_assert(found);
	free(z);
	free(zv);

	/* Every row a centre (n <= max): one Gaussian of sd 0.5. */
	n = 500;
	z = malloc(n * d * sizeof(float));
	zv = malloc(nv * d * sizeof(float));
	fill_random(&r, z, n * d, 0.5f);
	fill_random(&r, zv, nv * d, 0.5f);
	ck_assert_int_eq(ebm_train_fit_protos(&p, d, z, n, zv, nv, 1000, 10,
			0.0f, 1, NULL), EBM_STATUS_OK);
	ck_assert_uint_eq(p.n, n);
	ck_assert(memcmp(p.c, z, n * d * sizeof(float)) == 0);
	ck_assert(fabs(p.logw[7] + log((double)n) + d * log(p.h[7])) < 1e-5);
	ck_assert_msg(p.h[0] > 0.5 / 4 && p.h[0] < 0.5, "h = %g", p.h[0]);
	ebm_proto_finish(&p);

	/* alpha = 1: rows in the sparse tail (|z| > 1) get wider kernels than
	 * rows in the dense middle, in proportion to their spacing */
	ck_assert_int_eq(ebm_train_fit_protos(&p, d, z, n, zv, nv, 1000, 10,
			1.0f, 1, NULL), EBM_STATUS_OK);
	double in = 0.0, out = 0.0;
	int n_in = 0, n_out = 0;
	for (size_t i = 0; i < n; i++) {
		double rr = hypot(z[i * 2], z[i * 2 + 1]);
		if (rr < 0.25) {
			in += log(p.h[i]);
			n_in++;
		} else if (rr > 1.0) {
			out += log(p.h[i]);
			n_out++;
		}
	}
	ck_assert(n_in > 10 && n_out > 10);
	ck_assert_msg(out / n_out > in / n_in + log(2.0), "tail %g, middle %g",
			exp(out / n_out), exp(in / n_in));
	ebm_proto_finish(&p);
	free(z);
	free(zv);
}
END_TEST

START_TEST(t_fit_deterministic)
{
	uint32_t d = 3;
	size_t n = 700, nv = 60;
	float *z = malloc(n * d * sizeof(float));
	struct ebm_rng r;
	ebm_rng_init(&r, 2);
	fill_random(&r, z, n * d, 1.0f);
	struct ebm_proto a, b, c;
	ck_assert_int_eq(ebm_train_fit_protos(&a, d, z, n - nv, z + (n - nv) * d,
			nv, 64, 5, 0.5f, 7, NULL), EBM_STATUS_OK);
	ck_assert_int_eq(ebm_train_fit_protos(&b, d, z, n - nv, z + (n - nv) * d,
			nv, 64, 5, 0.5f, 7, NULL), EBM_STATUS_OK);
	ck_assert_int_eq(ebm_train_fit_protos(&c, d, z, n - nv, z + (n - nv) * d,
			nv, 64, 5, 0.5f, 8, NULL), EBM_STATUS_OK);
	ck_assert_uint_eq(a.n, b.n);
	ck_assert(memcmp(a.c, b.c, (size_t)a.n * d * sizeof(float)) == 0);
	ck_assert(memcmp(a.h, b.h, a.n * sizeof(float)) == 0);
	ck_assert(a.n != c.n || memcmp(a.c, c.c, (size_t)a.n * d *
			sizeof(float)) != 0);
	/* log weights are log shares (plus -d log h_j): the shares sum to 1 */
	double s = 0.0;
	for (uint32_t j = 0; j < a.n; j++) {
		s += exp(a.logw[j] + d * log(a.h[j]));
	}
	ck_assert(fabs(s - 1.0) < 1e-4);
	ebm_proto_finish(&a);
	ebm_proto_finish(&b);
	ebm_proto_finish(&c);
	free(z);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("proto");
	tcase_add_test(tc, t_one_prototype_is_a_gaussian);
	tcase_add_test(tc, t_two_far_prototypes);
	tcase_add_test(tc, t_proto_gradient_fd);
	tcase_add_test(tc, t_proto_blas_matches_reference);
	tcase_add_test(tc, t_net_with_protos);
	tcase_add_test(tc, t_fit_known_answer);
	tcase_add_test(tc, t_fit_deterministic);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
