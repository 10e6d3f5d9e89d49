/*
 * blas.c — the only file that talks to BLAS. Products above a small size
 * go to cblas_sgemm / cblas_sgemv; tiny ones, and every product when the
 * build has no BLAS or a test forces it, use the naive reference loops,
 * which are always compiled so tests can compare the two.
 */
#include <assert.h>
#include <stdatomic.h>

#include "config.h"
#include "core/core.h"

#if EBM_HAVE_BLAS
#include <cblas.h>
#endif

/* Below this many multiply-adds BLAS's call overhead outweighs its speed
 * (ggml's BLAS backend declines anything under 32 per side likewise). */
#define BLAS_MIN_MACS (16u * 16u * 16u)

static atomic_bool force_ref;

bool ebm_blas_force_ref(bool on)
{
	return atomic_exchange(&force_ref, on);
}

void ebm_blas_set_threads(int n)
{
#if EBM_HAVE_BLAS
	openblas_set_num_threads(n < 1 ? 1 : n);
#else
	(void)n;
#endif
}

void ebm_set_blas_threads(int n)
{
	ebm_blas_set_threads(n);
}

void ebm_gemm_ref(bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
		float alpha, const float *a, size_t lda, const float *b, size_t ldb,
		float beta, float *c, size_t ldc)
{
	for (size_t i = 0; i < m; i++) {
		for (size_t j = 0; j < n; j++) {
			double acc = 0.0;
			for (size_t p = 0; p < k; p++) {
				float av = trans_a ? a[p * lda + i] : a[i * lda + p];
				float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
				acc += (double)av * (double)bv;
			}
			float prev = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
			c[i * ldc + j] = (float)(alpha * acc) + prev;
		}
	}
}

void ebm_gemv_ref(bool trans_a, size_t m, size_t n, float alpha,
		const float *a, size_t lda, const float *x, float beta, float *y)
{
	size_t rows = trans_a ? n : m;
	size_t cols = trans_a ? m : n;
	for (size_t i = 0; i < rows; i++) {
		double acc = 0.0;
		for (size_t j = 0; j < cols; j++) {
			float av = trans_a ? a[j * lda + i] : a[i * lda + j];
			acc += (double)av * (double)x[j];
		}
		float prev = beta == 0.0f ? 0.0f : beta * y[i];
		y[i] = (float)(alpha * acc) + prev;
	}
}

void ebm_gemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
		float alpha, const float *a, size_t lda, const float *b, size_t ldb,
		float beta, float *c, size_t ldc)
{
	assert(lda >= (trans_a ? m : k) && ldb >= (trans_b ? k : n) && ldc >= n);
	if (m == 0 || n == 0) {
		return;
	}
#if EBM_HAVE_BLAS
	if (!atomic_load_explicit(&force_ref, memory_order_relaxed) &&
			(double)m * (double)n * (double)k >= BLAS_MIN_MACS) {
		cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
				trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
				alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
		return;
	}
#endif
	ebm_gemm_ref(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
			ldc);
}

void ebm_gemv(bool trans_a, size_t m, size_t n, float alpha, const float *a,
		size_t lda, const float *x, float beta, float *y)
{
	assert(lda >= n);
	if (m == 0 || n == 0) {
		return;
	}
#if EBM_HAVE_BLAS
	if (!atomic_load_explicit(&force_ref, memory_order_relaxed) &&
			(double)m * (double)n >= 256.0) {
		cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
				(int)m, (int)n, alpha, a, (int)lda, x, 1, beta, y, 1);
		return;
	}
#endif
	ebm_gemv_ref(trans_a, m, n, alpha, a, lda, x, beta, y);
}
