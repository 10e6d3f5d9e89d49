/*
 * missing.h — scoring rows with missing features (API.md section 6).
 *
 * A missing feature is NaN in a raw row. Such a row is scored with its
 * missing features profiled out: E is minimized over them with the
 * observed features held fixed, by the descent of ebm_product_repair()
 * (fixed = the observed features) started from the first expert's
 * training mean for the missing ones. energy and score are those of the
 * completed row; its p_value is computed against the product's reference
 * rows treated the same way (each with the same features profiled out
 * from the same start), so that it stays calibrated.
 *
 * The profiled reference energies of each missing set are computed once
 * and kept in a cache inside the product: least recently used sets are
 * dropped past a byte budget (EBM_MISSING_DEFAULT_BUDGET unless set).
 * The cache is the one mutable part of a product; a mutex guards its
 * lists only (never a descent), so threads with their own ctx may score
 * against a shared product concurrently. Two threads missing the same
 * new set at once may both compute it; one result is kept.
 */
#ifndef EBM_MISSING_H
#define EBM_MISSING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebm/ebm.h"
#include "ebm/model.h"
#include "ebm/product.h"

/* Descent iterations per profiled row; the step size is repair's default. */
#define EBM_MISSING_STEPS 100u
/* Bytes of profiled reference energies a product keeps (per product). */
#define EBM_MISSING_DEFAULT_BUDGET ((size_t)32 << 20)

/* True if some of the d values of row x are NaN (missing). */
bool ebm_row_has_missing(const float *x, size_t d);

/*
 * Profiles out the features flagged in missing (d flags, the same for
 * every row) of n_rows raw rows x: out (n_rows x d, raw) is x with each
 * missing feature replaced by its minimizer of E given the others; the
 * values of x at missing positions are ignored (NaN is fine). energy (may
 * be NULL) gets E of each completed row, never above E at the start.
 * INVALID_ARGUMENT when every feature is missing; errors of the descent.
 */
enum ebm_status ebm_product_profile(const struct ebm_product *p,
		struct ebm_ctx *ctx, const bool *missing, const float *x,
		size_t n_rows, float *out, float *energy, struct ebm_error *err);

/*
 * ebm_product_score() for rows that may hold NaN (missing) values: rows
 * without NaN get exactly ebm_product_score()'s answer; a row with NaN is
 * profiled (rows with the same missing set in one descent), its energy
 * and score are of the completed row and its p_value (and anomaly) is
 * against the reference set profiled over the same missing set.
 * completed (n_rows x d, may be NULL) receives the completed rows (equal
 * to x where nothing is missing). A row with every feature missing is
 * INVALID_ARGUMENT with err->line its 1-based index; NUMERIC as for
 * ebm_product_score().
 */
enum ebm_status ebm_product_score_missing(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, double alpha,
		struct ebm_score *out, float *completed, struct ebm_error *err);

/*
 * The number of distinct missing sets among the n_rows rows of x that the
 * cache does not hold now: what ebm_product_score_missing() would profile
 * the reference set for (each costs ebm_product_n_ref(p) descents), for a
 * caller that bounds a request's cost before any maths. No maths, counts
 * nothing in the stats; another thread may change the answer.
 */
size_t ebm_product_missing_uncached(const struct ebm_product *p,
		const float *x, size_t n_rows);

struct ebm_missing_stats {
	uint64_t lookups;            /* missing sets looked up */
	uint64_t hits;               /* ... found in the cache */
	uint64_t reference_profiles; /* reference sets profiled (misses) */
	uint64_t evictions;          /* sets dropped for the budget */
	size_t entries;              /* sets held now */
	size_t bytes;                /* their bytes */
	size_t budget;               /* the byte budget */
};

/* A snapshot of the product's missing-set cache counters. */
void ebm_product_missing_stats(const struct ebm_product *p,
		struct ebm_missing_stats *out);

/* Sets the cache's byte budget (0: cache nothing), dropping sets to fit. */
void ebm_product_missing_set_budget(const struct ebm_product *p,
		size_t bytes);

#endif
