/*
 * explain.c — per-feature attributions of a product's score: integrated
 * gradients of the energy along the straight path from the median-energy
 * reference row to the row (contract in include/ebm/product.h, formula in
 * the README's "Explanations and repair").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "ebm/product.h"

#define IG_MIN_POINTS 32u
#define IG_MAX_POINTS 1024u

/* Integrated gradients of one row with m midpoint-rule points. */
static enum ebm_status ig_row(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t m, float *contrib,
		struct ebm_error *err)
{
	size_t d = p->d;
	const float *r = p->median_row;
	float *pts = ebm_work_reserve(&ctx->prod[EBM_PBUF_PTS], m * d);
	float *g = ebm_work_reserve(&ctx->prod[EBM_PBUF_GRAD], m * d);
	float *e = ebm_work_reserve(&ctx->prod[EBM_PBUF_AUX], m);
	if (pts == NULL || g == NULL || e == NULL) {
		return ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
	}
	for (size_t k = 0; k < m; k++) {
		float t = ((float)k + 0.5f) / (float)m;
		for (size_t j = 0; j < d; j++) {
			pts[k * d + j] = r[j] + t * (x[j] - r[j]);
		}
	}
	enum ebm_status st = ebm_product_eval(p, ctx, pts, m, e, g, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	for (size_t j = 0; j < d; j++) {
		double s = 0.0;
		for (size_t k = 0; k < m; k++) {
			s += g[k * d + j];
		}
		contrib[j] = (float)((double)(x[j] - r[j]) * s / (double)m);
	}
	return EBM_STATUS_OK;
}

enum ebm_status ebm_product_explain(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, float *contrib,
		struct ebm_error *err)
{
	size_t d = p->d;
	float *e = ebm_work_reserve(&ctx->prod[EBM_PBUF_E], n_rows);
	if (n_rows > 0 && e == NULL) {
		return ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
	}
	enum ebm_status st = ebm_product_eval(p, ctx, x, n_rows, e, NULL, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	float med = ebm_product_median_energy(p);
	for (size_t i = 0; i < n_rows; i++) {
		double score = (double)e[i] - (double)med;
		for (size_t m = IG_MIN_POINTS; m <= IG_MAX_POINTS; m *= 2) {
			st = ig_row(p, ctx, x + i * d, m, contrib + i * d, err);
			if (st != EBM_STATUS_OK) {
				if (err != NULL) {
					err->line = i + 1;
				}
				return st;
			}
			double sum = 0.0;
			for (size_t j = 0; j < d; j++) {
				sum += contrib[i * d + j];
			}
			if (fabs(sum - score) <= 1e-3 * fabs(score) + 1e-4) {
				break;
			}
		}
	}
	return EBM_STATUS_OK;
}
