/*
 * drift.c — the KS test of a window of conformal p-values (ebm/drift.h).
 */
#include <math.h>
#include <stdlib.h>

#include "ebm/drift.h"
#include "util/util.h"

uint32_t ebm_drift_grid_index(double p_value, uint32_t n_grid)
{
	double k = nearbyint(p_value * (double)n_grid);
	if (!(k >= 1.0)) {
		return 1;
	}
	if (k > (double)n_grid) {
		return n_grid;
	}
	return (uint32_t)k;
}

double ebm_ks_q(double lambda)
{
	if (!(lambda > 0.0)) {
		return 1.0;
	}
	if (lambda < 0.2) {
		/* the series converges slowly here, and Q is 1 to 15 digits */
		return 1.0;
	}
	double sum = 0.0;
	double sign = 1.0;
	for (int j = 1; j <= 100; j++) {
		double term = exp(-2.0 * (double)j * (double)j * lambda * lambda);
		sum += sign * term;
		if (term < 1e-17 * fabs(sum)) {
			break;
		}
		sign = -sign;
	}
	double q = 2.0 * sum;
	return q < 0.0 ? 0.0 : q > 1.0 ? 1.0 : q;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a;
	uint32_t y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

enum ebm_status ebm_drift_test(uint32_t *k, size_t w, uint32_t n_grid,
		double *statistic, double *p_value, struct ebm_error *err)
{
	if (n_grid < 2) {
		ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"drift test: the grid needs at least 2 points, got %u",
				(unsigned)n_grid);
		return EBM_STATUS_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < w; i++) {
		if (k[i] < 1 || k[i] > n_grid) {
			ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
					"drift test: index %zu is %u, outside 1..%u", i,
					(unsigned)k[i], (unsigned)n_grid);
			return EBM_STATUS_INVALID_ARGUMENT;
		}
	}
	*statistic = 0.0;
	*p_value = 1.0;
	if (w == 0) {
		return EBM_STATUS_OK;
	}
	qsort(k, w, sizeof(*k), cmp_u32);
	/* Both CDFs are step functions jumping at integers; between two
	 * distinct window values F_w is constant and F_0 rises, so the sup is
	 * reached just below a window value (t = k - 1) or at one (t = k,
	 * after all its copies). */
	double d = 0.0;
	double n = (double)n_grid;
	double wd = (double)w;
	size_t i = 0;
	while (i < w) {
		size_t j = i;
		while (j + 1 < w && k[j + 1] == k[i]) {
			j++;
		}
		double below = (double)(k[i] - 1) / n - (double)i / wd;
		double at = (double)(j + 1) / wd - (double)k[i] / n;
		d = fmax(d, fmax(fabs(below), fabs(at)));
		i = j + 1;
	}
	double n_ref = n - 1.0;
	double ne = wd * n_ref / (wd + n_ref);
	double s = sqrt(ne);
	*statistic = d;
	*p_value = ebm_ks_q((s + 0.12 + 0.11 / s) * d);
	return EBM_STATUS_OK;
}
