/*
 * proto.c — the learned-prototype term of the energy network:
 *
 *   g(z) = log sum_j exp(a_j - ||z - c_j||^2 / (2 h_j^2))
 *   dg/dz = sum_j r_j (c_j - z) / h_j^2,   r_j = softmax_j(...)
 *
 * a mixture of n isotropic Gaussians (centres c_j, bandwidths h_j, log
 * weights a_j that include the normalizing -d log h_j) in standardized
 * units. It
 * is smooth, so gradients, integrated-gradient explanations, repair and
 * Langevin all work on it; its cost per row is O(n d), n fixed at
 * training time. Squared distances go through one GEMM per chunk of rows
 * (||z||^2 + ||c||^2 - 2 z.c), the gradient through a second one.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* Rows per chunk: bounds the distance scratch to CHUNK x n floats. */
#define CHUNK 256
/* Terms this far below the largest one are dropped: exp(-50) ~ 2e-22 of
 * it, far below float resolution, and most of the n terms of a row are
 * that small, so most exponentials are skipped. */
#define NEGLIGIBLE 50.0

bool ebm_proto_init(struct ebm_proto *p, uint32_t n, uint32_t d)
{
	memset(p, 0, sizeof(*p));
	if (n == 0) {
		return true;
	}
	size_t nd;
	if (!ebm_mul_size(n, d, &nd)) {
		return false;
	}
	p->c = ebm_alloc_array(nd, sizeof(float));
	p->logw = ebm_alloc_array(n, sizeof(float));
	p->h = ebm_alloc_array(n, sizeof(float));
	p->c_sq = ebm_alloc_array(n, sizeof(float));
	p->inv2h2 = ebm_alloc_array(n, sizeof(float));
	if (p->c == NULL || p->logw == NULL || p->h == NULL || p->c_sq == NULL ||
			p->inv2h2 == NULL) {
		ebm_proto_finish(p);
		return false;
	}
	memset(p->c, 0, nd * sizeof(float));
	memset(p->logw, 0, n * sizeof(float));
	memset(p->c_sq, 0, n * sizeof(float));
	for (uint32_t j = 0; j < n; j++) {
		p->h[j] = 1.0f;
		p->inv2h2[j] = 0.5f;
	}
	p->n = n;
	p->w_net = 1.0f;
	p->w_proto = 1.0f;
	return true;
}

void ebm_proto_finish(struct ebm_proto *p)
{
	free(p->c);
	free(p->logw);
	free(p->h);
	free(p->c_sq);
	free(p->inv2h2);
	memset(p, 0, sizeof(*p));
}

void ebm_proto_update(struct ebm_proto *p, uint32_t d)
{
	for (uint32_t j = 0; j < p->n; j++) {
		double s = 0.0;
		for (uint32_t q = 0; q < d; q++) {
			double v = p->c[(size_t)j * d + q];
			s += v * v;
		}
		p->c_sq[j] = (float)s;
		p->inv2h2[j] = (float)(0.5 / ((double)p->h[j] * p->h[j]));
	}
}

size_t ebm_proto_scratch(const struct ebm_proto *p, uint32_t d, size_t n)
{
	size_t rows = n < CHUNK ? n : CHUNK;
	(void)d;
	return rows * (size_t)p->n;
}

/* Lanes of the maximum: independent accumulators the compiler turns into
 * one vector max (the maximum is exact, so their order does not matter). */
#define LANES 8

static float row_max(const float *s, size_t k)
{
	float m[LANES];
	for (size_t l = 0; l < LANES; l++) {
		m[l] = -INFINITY;
	}
	size_t j = 0;
	for (; j + LANES <= k; j += LANES) {
		for (size_t l = 0; l < LANES; l++) {
			m[l] = s[j + l] > m[l] ? s[j + l] : m[l];
		}
	}
	for (; j < k; j++) {
		m[0] = s[j] > m[0] ? s[j] : m[0];
	}
	float mx = m[0];
	for (size_t l = 1; l < LANES; l++) {
		mx = m[l] > mx ? m[l] : mx;
	}
	return mx;
}

/*
 * One row of S: on entry s[j] = z.c_j; on exit g, and (if want_r) s[j] =
 * r_j / h_j^2 with *tot = sum_j s[j], the factor of the -z term of the
 * gradient. Every loop but the exponentials is branch-free over j, so it
 * vectorizes; the exponentials skip the negligible terms (most of them).
 */
static double row_eval(const struct ebm_proto *p, size_t k, double zz,
		float *s, bool want_r, double *tot)
{
	const float *c_sq = p->c_sq, *logw = p->logw, *inv2h2 = p->inv2h2;
	for (size_t j = 0; j < k; j++) {
		double d2 = zz + c_sq[j] - 2.0 * s[j];
		d2 = d2 > 0.0 ? d2 : 0.0;
		s[j] = (float)(logw[j] - d2 * (double)inv2h2[j]);
	}
	double mx = row_max(s, k);
	double sum = 0.0, wsum = 0.0;
	for (size_t j = 0; j < k; j++) {
		double t = (double)s[j] - mx;
		if (t < -NEGLIGIBLE) {
			s[j] = 0.0f;
			continue;
		}
		/* in float: the terms are stored in float anyway, and expf
		 * costs half of exp */
		float e = expf((float)t);
		s[j] = e;
		sum += e;
		wsum += e * (double)inv2h2[j];
	}
	if (want_r) {
		float f = (float)(2.0 / sum);
		for (size_t j = 0; j < k; j++) {
			s[j] = s[j] * f * inv2h2[j];
		}
		*tot = 2.0 * wsum / sum;
	}
	return mx + log(sum);
}

void ebm_proto_eval(const struct ebm_proto *p, uint32_t d, const float *z,
		size_t n, float *scratch, float *g, float *grad)
{
	size_t k = p->n;
	float *S = scratch;
	for (size_t r0 = 0; r0 < n; r0 += CHUNK) {
		size_t m = n - r0 < CHUNK ? n - r0 : CHUNK;
		const float *Z = z + r0 * d;
		/* S = Z C': the distances of the whole chunk in one GEMM */
		ebm_gemm(false, true, m, k, d, 1.0f, Z, d, p->c, d, 0.0f, S, k);
		float *G = grad != NULL ? grad + r0 * d : NULL;
		for (size_t i = 0; i < m; i++) {
			double zz = 0.0;
			for (size_t q = 0; q < d; q++) {
				zz += (double)Z[i * d + q] * Z[i * d + q];
			}
			double tot = 0.0;
			g[r0 + i] = (float)row_eval(p, k, zz, S + i * k, G != NULL, &tot);
			if (G != NULL) {
				float ft = (float)-tot;
				for (size_t q = 0; q < d; q++) {
					G[i * d + q] = ft * Z[i * d + q];
				}
			}
		}
		if (G != NULL) {
			/* grad = sum_j r_j (c_j - z) / h_j^2: the chunk's R C in one
			 * GEMM onto the -tot z terms */
			ebm_gemm(false, false, m, d, k, 1.0f, S, k, p->c, d, 1.0f, G, d);
		}
	}
}

bool ebm_proto_copy(struct ebm_proto *dst, const struct ebm_proto *src,
		uint32_t d)
{
	if (!ebm_proto_init(dst, src->n, d)) {
		return false;
	}
	if (src->n == 0) {
		return true;
	}
	dst->w_net = src->w_net;
	dst->w_proto = src->w_proto;
	memcpy(dst->c, src->c, (size_t)src->n * d * sizeof(float));
	memcpy(dst->logw, src->logw, src->n * sizeof(float));
	memcpy(dst->h, src->h, src->n * sizeof(float));
	memcpy(dst->c_sq, src->c_sq, src->n * sizeof(float));
	memcpy(dst->inv2h2, src->inv2h2, src->n * sizeof(float));
	return true;
}
