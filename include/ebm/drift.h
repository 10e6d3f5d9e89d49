/*
 * drift.h — is a stream of conformal p-values still what unchanged normal
 * traffic gives? (API.md section 6, "Drift".)
 *
 * A model with n_ref reference rows gives every row a p-value
 * (1 + #{r : E(r) >= E(x)}) / (n_ref + 1), so p-values live on the grid
 * k / N, k = 1..N, N = n_ref + 1, and a new normal row (exchangeable with
 * the reference rows) gets each k with probability 1/N: the p-values of
 * unchanged traffic follow the discrete uniform distribution on that grid,
 * and so do the reference rows' own. The test below compares a window of
 * grid indices k against it.
 *
 * statistic: the Kolmogorov-Smirnov distance sup_t |F_w(t) - F_0(t)|
 * between the window's empirical CDF and the discrete uniform CDF
 * F_0(t) = floor(t) / N.
 *
 * p_value: its significance as a two-sample test of the window (w rows)
 * against the reference set (n_ref rows), with effective size
 * n_e = w n_ref / (w + n_ref) and the asymptotic Kolmogorov distribution
 * with Stephens' correction, Q((sqrt(n_e) + 0.12 + 0.11 / sqrt(n_e)) D).
 * Conditionally on its reference set, a model's p-values deviate from the
 * uniform by the reference set's own sampling error (order 1/sqrt(n_ref));
 * the two-sample size accounts for it, so a small reference set raises no
 * false alarms however long the window.
 *
 * Pure maths: no I/O, no allocation.
 */
#ifndef EBM_DRIFT_H
#define EBM_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "ebm/ebm.h"

/* The grid index k (1..n_grid) of a p-value of a reference of
 * n_grid - 1 rows: p * n_grid rounded to the nearest integer, clamped. */
uint32_t ebm_drift_grid_index(double p_value, uint32_t n_grid);

/*
 * Tests the window k[0..w) (grid indices in 1..n_grid, n_grid = n_ref + 1;
 * sorted in place) against the discrete uniform. w = 0 gives statistic 0
 * and p_value 1. INVALID_ARGUMENT for n_grid < 2 or an index outside
 * 1..n_grid (err names its position).
 */
enum ebm_status ebm_drift_test(uint32_t *k, size_t w, uint32_t n_grid,
		double *statistic, double *p_value, struct ebm_error *err);

/* Q_KS(lambda) = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lambda^2), in [0, 1]. */
double ebm_ks_q(double lambda);

#endif
