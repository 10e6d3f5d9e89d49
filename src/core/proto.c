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

void ebm_proto_eval(const struct ebm_proto *p, uint32_t d, const float *z,
		size_t n, float *scratch, float *g, float *grad)
{
	size_t k = p->n;
	float *S = scratch;
	for (size_t r0 = 0; r0 < n; r0 += CHUNK) {
		size_t m = n - r0 < CHUNK ? n - r0 : CHUNK;
		const float *Z = z + r0 * d;
		/* S = Z C' */
		ebm_gemm(false, true, m, k, d, 1.0f, Z, d, p->c, d, 0.0f, S, k);
		float *G = grad != NULL ? grad + r0 * d : NULL;
		for (size_t i = 0; i < m; i++) {
			double zz = 0.0;
			for (size_t q = 0; q < d; q++) {
				zz += (double)Z[i * d + q] * Z[i * d + q];
			}
			float *s = S + i * k;
			double mx = -INFINITY;
			for (size_t j = 0; j < k; j++) {
				double d2 = zz + p->c_sq[j] - 2.0 * s[j];
				double a = p->logw[j] - (d2 > 0.0 ? d2 : 0.0) *
						(double)p->inv2h2[j];
				s[j] = (float)a;
				mx = a > mx ? a : mx;
			}
			double sum = 0.0;
			for (size_t j = 0; j < k; j++) {
				double t = (double)s[j] - mx;
				double e = t < -NEGLIGIBLE ? 0.0 : exp(t);
				s[j] = (float)e;
				sum += e;
			}
			g[r0 + i] = (float)(mx + log(sum));
			if (G != NULL) {
				/* s_j = r_j / h_j^2; the z term's factor is their sum */
				double inv = 1.0 / sum, tot = 0.0;
				for (size_t j = 0; j < k; j++) {
					s[j] = (float)(s[j] * inv * 2.0 * p->inv2h2[j]);
					tot += s[j];
				}
				for (size_t q = 0; q < d; q++) {
					G[i * d + q] = (float)(-tot * Z[i * d + q]);
				}
			}
		}
		if (G != NULL) {
			/* grad = sum_j r_j (c_j - z) / h_j^2 */
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
