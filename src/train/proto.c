/*
 * proto.c (train) — fits the prototype term of core/proto.c on
 * standardized training rows:
 *
 *   centres   k-means (Lloyd) from `max` training rows drawn without
 *             replacement by the seed, `iters` passes; every training row
 *             itself when there are no more than `max`. Log weights are
 *             the log shares of rows nearest each centre; empty centres
 *             are dropped.
 *   bandwidth h_j = h (r_j / median r)^alpha, r_j the distance from
 *             centre j to its 5th nearest other centre (alpha = 0: one h
 *             for all, a fixed-bandwidth KDE; alpha > 0 widens kernels
 *             where centres are sparse), and h the value of a log-spaced
 *             grid that maximizes the held-out log-likelihood (normalizing
 *             constants -d log h_j included) of the validation rows, which
 *             no centre was fitted on.
 *
 * Everything is single-threaded and seeded: same rows, same seed, same
 * bits. Distances go through ebm_gemm.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

/* Rows per distance GEMM: bounds scratch to CHUNK x max floats. */
#define CHUNK 512
/* Validation rows used to choose h (a random subset of them if more). */
#define BW_ROWS 2000
/* Bandwidth grid: BW_N values from BW_LO to BW_HI times the median
 * distance of a validation row to its nearest centre. */
#define BW_N 31
#define BW_LO 0.02
#define BW_HI 8.0

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* lab[i] = nearest centre of row i, and (optionally) its squared distance. */
static bool assign(const float *z, size_t n, uint32_t d, const float *c,
		const float *c_sq, size_t k, uint32_t *lab, float *dist)
{
	float *S = ebm_alloc_array((n < CHUNK ? n : CHUNK) * k, sizeof(float));
	if (S == NULL) {
		return false;
	}
	for (size_t r0 = 0; r0 < n; r0 += CHUNK) {
		size_t m = n - r0 < CHUNK ? n - r0 : CHUNK;
		ebm_gemm(false, true, m, k, d, 1.0f, z + r0 * d, d, c, d, 0.0f, S, k);
		for (size_t i = 0; i < m; i++) {
			const float *s = S + i * k;
			size_t best = 0;
			float bv = INFINITY;
			for (size_t j = 0; j < k; j++) {
				float v = c_sq[j] - 2.0f * s[j];
				if (v < bv) {
					bv = v;
					best = j;
				}
			}
			lab[r0 + i] = (uint32_t)best;
			if (dist != NULL) {
				double zz = 0.0;
				for (size_t q = 0; q < d; q++) {
					double v = z[(r0 + i) * d + q];
					zz += v * v;
				}
				double d2 = zz + bv;
				dist[r0 + i] = (float)(d2 > 0.0 ? d2 : 0.0);
			}
		}
	}
	free(S);
	return true;
}

static void sq_norms(const float *c, size_t k, uint32_t d, float *c_sq)
{
	for (size_t j = 0; j < k; j++) {
		double s = 0.0;
		for (size_t q = 0; q < d; q++) {
			s += (double)c[j * d + q] * c[j * d + q];
		}
		c_sq[j] = (float)s;
	}
}

/* k-means centres and counts; returns false on allocation failure. */
static bool kmeans(const float *z, size_t n, uint32_t d, size_t k,
		uint32_t iters, uint64_t seed, float *c, double *count)
{
	bool ok = false;
	size_t *idx = ebm_alloc_array(n, sizeof(size_t));
	uint32_t *lab = ebm_alloc_array(n, sizeof(uint32_t));
	float *c_sq = ebm_alloc_array(k, sizeof(float));
	double *sum = ebm_alloc_array(k * d, sizeof(double));
	if (idx == NULL || lab == NULL || c_sq == NULL || sum == NULL) {
		goto out;
	}
	struct ebm_rng rng;
	ebm_rng_init(&rng, seed);
	for (size_t i = 0; i < n; i++) {
		idx[i] = i;
	}
	ebm_rng_shuffle(&rng, idx, n);
	for (size_t j = 0; j < k; j++) {
		memcpy(c + j * d, z + idx[j] * d, d * sizeof(float));
	}
	for (uint32_t it = 0; it <= iters; it++) {
		sq_norms(c, k, d, c_sq);
		if (!assign(z, n, d, c, c_sq, k, lab, NULL)) {
			goto out;
		}
		memset(count, 0, k * sizeof(double));
		if (it == iters) {
			break;  /* counts of the final centres */
		}
		memset(sum, 0, k * d * sizeof(double));
		for (size_t i = 0; i < n; i++) {
			count[lab[i]] += 1.0;
			for (size_t q = 0; q < d; q++) {
				sum[(size_t)lab[i] * d + q] += z[i * d + q];
			}
		}
		for (size_t j = 0; j < k; j++) {
			if (count[j] > 0.0) {   /* an empty centre stays put */
				for (size_t q = 0; q < d; q++) {
					c[j * d + q] = (float)(sum[j * d + q] / count[j]);
				}
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		count[lab[i]] += 1.0;
	}
	ok = true;
out:
	free(idx);
	free(lab);
	free(c_sq);
	free(sum);
	return ok;
}

/* Mean held-out log-likelihood, up to a constant, of the rows with squared
 * distances D (n x k) for bandwidths h * rel[j]: the terms are a[j] -
 * D c2[j], a[j] = lw[j] - d log(h rel[j]), c2[j] = 1 / (2 h^2 rel[j]^2)
 * (a and c2 are scratch of k doubles). Terms 50 below the row's largest
 * are dropped (exp(-50) ~ 2e-22), as in core/proto.c. */
static double heldout_ll(const float *D, size_t n, size_t k,
		const float *lw, const float *rel, uint32_t d, double h, double *a,
		double *c2)
{
	for (size_t j = 0; j < k; j++) {
		double hj = h * rel[j];
		a[j] = lw[j] - (double)d * log(hj);
		c2[j] = 0.5 / (hj * hj);
	}
	double total = 0.0;
	for (size_t i = 0; i < n; i++) {
		const float *r = D + i * k;
		double mx = -INFINITY;
		for (size_t j = 0; j < k; j++) {
			double v = a[j] - r[j] * c2[j];
			mx = v > mx ? v : mx;
		}
		double s = 0.0;
		for (size_t j = 0; j < k; j++) {
			double t = a[j] - r[j] * c2[j] - mx;
			s += t < -50.0 ? 0.0 : exp(t);
		}
		total += mx + log(s);
	}
	return total / (double)n;
}

/* rel[j] = (r_j / median r)^alpha, r_j the distance from centre j to its
 * K_NEAR-th nearest other centre (all 1 when alpha is 0 or k <= K_NEAR). */
#define K_NEAR 5
static bool relative_widths(const struct ebm_proto *p, uint32_t d,
		float alpha, float *rel)
{
	size_t k = p->n;
	for (size_t j = 0; j < k; j++) {
		rel[j] = 1.0f;
	}
	if (alpha == 0.0f || k <= K_NEAR) {
		return true;
	}
	float *S = ebm_alloc_array((k < CHUNK ? k : CHUNK) * k, sizeof(float));
	float *r = ebm_alloc_array(k, sizeof(float));
	float *sorted = ebm_alloc_array(k, sizeof(float));
	if (S == NULL || r == NULL || sorted == NULL) {
		free(S);
		free(r);
		free(sorted);
		return false;
	}
	for (size_t r0 = 0; r0 < k; r0 += CHUNK) {
		size_t m = k - r0 < CHUNK ? k - r0 : CHUNK;
		ebm_gemm(false, true, m, k, d, 1.0f, p->c + r0 * d, d, p->c, d, 0.0f,
				S, k);
		for (size_t i = 0; i < m; i++) {
			float best[K_NEAR];
			for (int q = 0; q < K_NEAR; q++) {
				best[q] = INFINITY;
			}
			for (size_t j = 0; j < k; j++) {
				if (j == r0 + i) {
					continue;
				}
				float d2 = p->c_sq[r0 + i] + p->c_sq[j] - 2.0f * S[i * k + j];
				d2 = d2 > 0.0f ? d2 : 0.0f;
				/* insertion into the K_NEAR smallest, ascending */
				for (int q = 0; q < K_NEAR; q++) {
					if (d2 < best[q]) {
						float t = best[q];
						best[q] = d2;
						d2 = t;
					}
				}
			}
			r[r0 + i] = sqrtf(best[K_NEAR - 1]);
		}
	}
	memcpy(sorted, r, k * sizeof(float));
	qsort(sorted, k, sizeof(float), cmp_float);
	double med = sorted[(k - 1) / 2];
	for (size_t j = 0; j < k; j++) {
		double q = med > 0.0 ? r[j] / med : 1.0;
		q = q > 1e-3 ? q : 1e-3;
		rel[j] = (float)pow(q, (double)alpha);
	}
	free(S);
	free(r);
	free(sorted);
	return true;
}

enum ebm_status ebm_train_fit_protos(struct ebm_proto *p, uint32_t d,
		const float *z, size_t n, const float *zval, size_t n_val,
		uint32_t max, uint32_t iters, float alpha, uint64_t seed,
		struct ebm_error *err)
{
	size_t k = n < max ? n : max;
	float *c = ebm_alloc_array(k * d, sizeof(float));
	double *count = ebm_alloc_array(k, sizeof(double));
	float *D = NULL, *best = NULL, *vz = NULL, *rel = NULL, *lw = NULL;
	double *ta = NULL, *tc = NULL;
	enum ebm_status st = EBM_STATUS_NOMEM;
	if (c == NULL || count == NULL) {
		goto out;
	}
	if (n <= max) {
		memcpy(c, z, k * d * sizeof(float));
		for (size_t j = 0; j < k; j++) {
			count[j] = 1.0;
		}
	} else if (!kmeans(z, n, d, k, iters, seed, c, count)) {
		goto out;
	}
	size_t kept = 0;
	for (size_t j = 0; j < k; j++) {
		kept += count[j] > 0.0;
	}
	if (!ebm_proto_init(p, (uint32_t)kept, d)) {
		goto out;
	}
	for (size_t j = 0, o = 0; j < k; j++) {
		if (count[j] > 0.0) {
			memcpy(p->c + o * d, c + j * d, d * sizeof(float));
			p->logw[o] = (float)log(count[j] / (double)n);
			o++;
		}
	}
	ebm_proto_update(p, d);
	k = kept;

	/* Bandwidth: squared distances of (up to BW_ROWS) validation rows. */
	size_t nv = n_val < BW_ROWS ? n_val : BW_ROWS;
	if (nv == 0) {
		st = ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"the prototype term needs validation rows to choose its "
				"bandwidth (--val-frac > 0)");
		goto out;
	}
	vz = ebm_alloc_array(nv * d, sizeof(float));
	D = ebm_alloc_array(nv * k, sizeof(float));
	best = ebm_alloc_array(nv, sizeof(float));
	rel = ebm_alloc_array(k, sizeof(float));
	lw = ebm_alloc_array(k, sizeof(float));
	ta = ebm_alloc_array(k, sizeof(double));
	tc = ebm_alloc_array(k, sizeof(double));
	size_t *idx = ebm_alloc_array(n_val, sizeof(size_t));
	if (vz == NULL || D == NULL || best == NULL || rel == NULL ||
			lw == NULL || ta == NULL || tc == NULL || idx == NULL ||
			!relative_widths(p, d, alpha, rel)) {
		free(idx);
		goto out;
	}
	struct ebm_rng rng;
	ebm_rng_init(&rng, seed ^ 0x9e3779b97f4a7c15ull);
	for (size_t i = 0; i < n_val; i++) {
		idx[i] = i;
	}
	if (nv < n_val) {
		ebm_rng_shuffle(&rng, idx, n_val);
	}
	for (size_t i = 0; i < nv; i++) {
		memcpy(vz + i * d, zval + idx[i] * d, d * sizeof(float));
	}
	free(idx);
	ebm_gemm(false, true, nv, k, d, 1.0f, vz, d, p->c, d, 0.0f, D, k);
	for (size_t i = 0; i < nv; i++) {
		double zz = 0.0;
		for (size_t q = 0; q < d; q++) {
			zz += (double)vz[i * d + q] * vz[i * d + q];
		}
		float mn = INFINITY;
		for (size_t j = 0; j < k; j++) {
			double d2 = zz + p->c_sq[j] - 2.0 * D[i * k + j];
			D[i * k + j] = (float)(d2 > 0.0 ? d2 : 0.0);
			mn = fminf(mn, D[i * k + j]);
		}
		best[i] = sqrtf(mn);
	}
	qsort(best, nv, sizeof(float), cmp_float);
	double base = best[(nv - 1) / 2];
	if (!(base > 1e-3)) {
		base = 1e-3;   /* duplicates: keep the grid away from 0 */
	}
	memcpy(lw, p->logw, k * sizeof(float));   /* log shares */
	double bh = base, bll = -INFINITY;
	for (int g = 0; g < BW_N; g++) {
		double t = (double)g / (BW_N - 1);
		double h = base * BW_LO * pow(BW_HI / BW_LO, t);
		double ll = heldout_ll(D, nv, k, lw, rel, d, h, ta, tc);
		if (ll > bll) {
			bll = ll;
			bh = h;
		}
	}
	for (size_t j = 0; j < k; j++) {
		double hj = bh * rel[j];
		p->h[j] = (float)hj;
		p->logw[j] = (float)(lw[j] - (double)d * log(hj));
	}
	ebm_proto_update(p, d);
	st = EBM_STATUS_OK;
out:
	if (st == EBM_STATUS_NOMEM) {
		ebm_proto_finish(p);
		ebm_error_set(err, st, "out of memory fitting the prototypes");
	} else if (st != EBM_STATUS_OK) {
		ebm_proto_finish(p);
	}
	free(c);
	free(count);
	free(D);
	free(best);
	free(vz);
	free(rel);
	free(lw);
	free(ta);
	free(tc);
	return st;
}

/* A robust spread of v (n > 0, reordered): the interquartile range, else
 * the standard deviation, else 1. */
static double spread(float *v, size_t n)
{
	qsort(v, n, sizeof(float), cmp_float);
	double s = (double)v[(3 * (n - 1)) / 4] - (double)v[(n - 1) / 4];
	if (s > 0.0 && isfinite(s)) {
		return s;
	}
	double m = 0.0, q = 0.0;
	for (size_t i = 0; i < n; i++) {
		m += v[i];
	}
	m /= (double)n;
	for (size_t i = 0; i < n; i++) {
		q += (v[i] - m) * (v[i] - m);
	}
	s = sqrt(q / (double)n);
	return s > 0.0 && isfinite(s) ? s : 1.0;
}

enum ebm_status ebm_train_protos(struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, const float *zval, size_t n_val,
		const struct ebm_train_options *o, struct ebm_train_weighing *wt,
		struct ebm_error *err)
{
	struct ebm_proto p;
	uint32_t d = net->d;
	enum ebm_status st = ebm_train_fit_protos(&p, d, z, n, zval, n_val,
			o->n_protos, o->proto_iters, o->proto_alpha, o->seed, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	/* The tempered product: each term divided by the spread of its
	 * energies on the validation rows, so neither dominates by scale. */
	float *fn = ebm_alloc_array(n_val, 2 * sizeof(float));
	float *fg = ebm_alloc_array(n_val, 2 * sizeof(float));
	float *s = ebm_alloc_array(ebm_proto_scratch(&p, d, n_val),
			sizeof(float));
	if (fn == NULL || fg == NULL || s == NULL ||
			!ebm_net_forward(net, w, zval, n_val, fn)) {
		st = ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory weighing the prototypes");
		ebm_proto_finish(&p);
		goto out;
	}
	ebm_proto_eval(&p, d, zval, n_val, s, fg, NULL);
	/* spread() reorders its input: it gets copies. */
	memcpy(fn + n_val, fn, n_val * sizeof(float));
	memcpy(fg + n_val, fg, n_val * sizeof(float));
	double s_net = spread(fn + n_val, n_val);
	double s_proto = spread(fg + n_val, n_val);
	wt->lambda = o->proto_net_weight;
	if (o->proto_net_auto) {
		st = ebm_train_choose_net_weight(net, w, &p, z, n, zval, n_val, fn,
				fg, (float)s_net, (float)s_proto, o->proto_net_noise,
				o->seed ^ 0x5851f42d4c957f2dull, wt, err);
		if (st != EBM_STATUS_OK) {
			ebm_proto_finish(&p);
			goto out;
		}
	}
	p.w_proto = (float)(1.0 / s_proto);
	p.w_net = (float)(wt->lambda / s_net);
	ebm_proto_finish(&net->proto);
	net->proto = p;
out:
	free(fn);
	free(fg);
	free(s);
	return st;
}
