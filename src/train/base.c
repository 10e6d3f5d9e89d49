/*
 * base.c — standardization (mean and standard deviation, or median and
 * IQR) and the Gaussian base precision fitted on the training rows, with
 * the Cholesky inverse it needs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

bool ebm_spd_inverse(double *a, size_t d)
{
	/* Cholesky a = L L' in the lower triangle. */
	for (size_t j = 0; j < d; j++) {
		double s = a[j * d + j];
		for (size_t k = 0; k < j; k++) {
			s -= a[j * d + k] * a[j * d + k];
		}
		if (!(s > 0.0)) {
			return false;
		}
		double ljj = sqrt(s);
		a[j * d + j] = ljj;
		for (size_t i = j + 1; i < d; i++) {
			double t = a[i * d + j];
			for (size_t k = 0; k < j; k++) {
				t -= a[i * d + k] * a[j * d + k];
			}
			a[i * d + j] = t / ljj;
		}
	}
	/* Invert L in place (lower triangle). */
	for (size_t j = 0; j < d; j++) {
		a[j * d + j] = 1.0 / a[j * d + j];
		for (size_t i = j + 1; i < d; i++) {
			double t = 0.0;
			for (size_t k = j; k < i; k++) {
				t -= a[i * d + k] * a[k * d + j];
			}
			a[i * d + j] = t / a[i * d + i];
		}
	}
	/* a^-1 = L^-T L^-1; fill both triangles. */
	for (size_t i = 0; i < d; i++) {
		for (size_t j = 0; j <= i; j++) {
			double t = 0.0;
			for (size_t k = i; k < d; k++) {
				t += a[k * d + i] * a[k * d + j];
			}
			a[j * d + i] = t; /* upper triangle: L entries no longer read */
		}
	}
	for (size_t i = 0; i < d; i++) {
		for (size_t j = 0; j < i; j++) {
			a[i * d + j] = a[j * d + i];
		}
	}
	return true;
}

static int float_cmp(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n-1], linear between order statistics. */
static double quantile(const float *v, size_t n, double q)
{
	double at = q * (double)(n - 1);
	size_t i = (size_t)at;
	if (i + 1 >= n) {
		return v[n - 1];
	}
	return v[i] + (at - (double)i) * ((double)v[i + 1] - v[i]);
}

/*
 * Robust centre and scale of each feature: median and IQR / 1.349 (the
 * standard deviation of a normal with that IQR). A feature whose IQR is
 * (nearly) zero, as a mostly constant or binary one often is, keeps its
 * standard deviation sd[j], or 1 when that is zero too.
 */
static bool robust_scale(struct ebm_net *net, const float *x,
		const size_t *rows, size_t n, const double *mean, const double *sd)
{
	size_t d = net->d;
	float *col = ebm_alloc_array(n, sizeof(float));
	if (col == NULL) {
		return false;
	}
	for (size_t j = 0; j < d; j++) {
		for (size_t i = 0; i < n; i++) {
			col[i] = x[rows[i] * d + j];
		}
		qsort(col, n, sizeof(float), float_cmp);
		double med = quantile(col, n, 0.5);
		double iqr = (quantile(col, n, 0.75) - quantile(col, n, 0.25)) /
				1.349;
		double tiny = 1e-6 * fmax(1.0, fabs(mean[j]));
		net->mean[j] = (float)med;
		net->scale[j] = iqr > tiny ? (float)iqr
				: (sd[j] > tiny ? (float)sd[j] : 1.0f);
	}
	free(col);
	return true;
}

/*
 * Standardization (mean and standard deviation, or with `robust` median
 * and IQR) and the base precision P = ((1 - s) Cov(z) + s I)^-1 from the
 * training rows.
 */
bool ebm_train_fit_base(struct ebm_net *net, const float *x,
		const size_t *rows, size_t n, float shrink, bool robust)
{
	size_t d = net->d;
	double *mean = calloc(d, sizeof(double));
	double *sd = calloc(d, sizeof(double));
	double *cov = ebm_alloc_array(d * d, sizeof(double));
	if (mean == NULL || sd == NULL || cov == NULL) {
		free(mean);
		free(sd);
		free(cov);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < d; j++) {
			mean[j] += x[rows[i] * d + j];
		}
	}
	for (size_t j = 0; j < d; j++) {
		mean[j] /= (double)n;
	}
	memset(cov, 0, d * d * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		const float *r = x + rows[i] * d;
		for (size_t a = 0; a < d; a++) {
			double da = r[a] - mean[a];
			for (size_t b = 0; b <= a; b++) {
				cov[a * d + b] += da * (r[b] - mean[b]);
			}
		}
	}
	for (size_t j = 0; j < d; j++) {
		sd[j] = sqrt(cov[j * d + j] / (double)n);
		/* A constant feature keeps scale 1: it then standardizes to 0. */
		net->mean[j] = (float)mean[j];
		net->scale[j] = sd[j] > 1e-6 * fmax(1.0, fabs(mean[j])) ? (float)sd[j]
				: 1.0f;
	}
	bool ok = !robust || robust_scale(net, x, rows, n, mean, sd);
	for (size_t a = 0; a < d; a++) {
		for (size_t b = 0; b <= a; b++) {
			double c = cov[a * d + b] / (double)n /
					((double)net->scale[a] * (double)net->scale[b]);
			double v = (1.0 - shrink) * c + (a == b ? shrink : 0.0);
			cov[a * d + b] = v;
			cov[b * d + a] = v;
		}
	}
	ok = ok && ebm_spd_inverse(cov, d);
	for (size_t q = 0; ok && q < d * d; q++) {
		net->prec[q] = (float)cov[q];
	}
	free(mean);
	free(sd);
	free(cov);
	return ok;
}
