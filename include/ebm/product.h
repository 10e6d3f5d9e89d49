/*
 * product.h — products of experts, explanations and repair.
 *
 * A product is E(x) = sum_i w_i E_i(x) over models with the same features
 * (energies add, so a product of experts is itself an energy model). Its
 * reference set is the union of the experts' reference rows, scored under
 * the product energy once, when the product is created. A product of one
 * model with weight 1 is that model exactly: it reuses the stored
 * reference energies, so its scores equal ebm_model_score()'s bit for bit.
 *
 * Scoring the union costs one energy evaluation per expert and union row.
 * A caller that builds many products of the same models (ebmd's ad-hoc
 * compositions) computes each "block" -- one model's energies on another's
 * reference rows, ebm_product_ref_block() -- once and hands them to
 * ebm_product_create_cached(), which is then a weighted sum and a sort,
 * with the same result bit for bit.
 *
 * Every scoring-side operation the daemon offers goes through a product:
 * score, explain (integrated gradients from the median-energy reference
 * row) and repair (energy descent with a trust region and backtracking).
 *
 * Thread-safety: a product is immutable after creation (but for the cache
 * of include/ebm/missing.h, which guards itself) and may be shared
 * by threads, each with its own struct ebm_ctx. It borrows its models: they
 * must outlive it.
 */
#ifndef EBM_PRODUCT_H
#define EBM_PRODUCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebm/ebm.h"
#include "ebm/model.h"

#define EBM_PRODUCT_MAX_MODELS 64u

struct ebm_product;

/*
 * Whether n models can form a product, from their metadata alone (no
 * maths): MISMATCH (message names the models by index and says what
 * differs: feature count, or the name of feature j) when they do not have
 * the same number of features, or two with names differ;
 * INVALID_ARGUMENT for n == 0 or n > EBM_PRODUCT_MAX_MODELS.
 */
enum ebm_status ebm_product_check(const struct ebm_model *const *models,
		size_t n, struct ebm_error *err);

/*
 * Creates the product of n models with weights (NULL = all 1; each must be
 * finite and > 0). Errors: those of ebm_product_check(); INVALID_ARGUMENT
 * for a bad weight (reported before a MISMATCH); NUMERIC if a reference
 * row's product energy is not finite. ctx is scratch for scoring the union
 * reference set: block by block, expert k on the reference rows of model b
 * as ebm_product_ref_block() computes it, summed in the order of the
 * experts with float weights.
 */
enum ebm_status ebm_product_create(const struct ebm_model *const *models,
		const double *weights, size_t n, struct ebm_ctx *ctx,
		struct ebm_product **out, struct ebm_error *err);

/*
 * The energies of model m on the reference rows of model ref
 * (ebm_model_n_ref(ref) floats into out): one block of a product's union
 * reference set, exactly as ebm_product_create() computes it. MISMATCH if
 * the feature counts differ; NUMERIC (err->line: the row of ref) if an
 * energy is not finite.
 */
enum ebm_status ebm_product_ref_block(const struct ebm_model *m,
		const struct ebm_model *ref, struct ebm_ctx *ctx, float *out,
		struct ebm_error *err);

/*
 * ebm_product_create() with blocks computed beforehand: blocks is NULL or
 * n * n pointers, blocks[k * n + b] either NULL (computed here) or the
 * ebm_product_ref_block(models[k], models[b]) energies, borrowed for the
 * call. The product is the one ebm_product_create() gives, bit for bit;
 * with every block given it costs n additions per union row and a sort.
 */
enum ebm_status ebm_product_create_cached(
		const struct ebm_model *const *models, const double *weights,
		size_t n, const float *const *blocks, struct ebm_ctx *ctx,
		struct ebm_product **out, struct ebm_error *err);
void ebm_product_destroy(struct ebm_product *p);

size_t ebm_product_n_models(const struct ebm_product *p);
const struct ebm_model *ebm_product_model(const struct ebm_product *p,
		size_t i);
double ebm_product_weight(const struct ebm_product *p, size_t i);
size_t ebm_product_n_features(const struct ebm_product *p);
/* The first expert's name for feature i that is not NULL, or NULL. */
const char *ebm_product_feature_name(const struct ebm_product *p, size_t i);
long ebm_product_feature_index(const struct ebm_product *p, const char *name);
/* Smallest alpha among the experts. */
float ebm_product_alpha(const struct ebm_product *p);
size_t ebm_product_n_ref(const struct ebm_product *p);
/* Union reference energies under the product, ascending. */
const float *ebm_product_ref_energies(const struct ebm_product *p);
float ebm_product_median_energy(const struct ebm_product *p);
/* The raw row (d floats) whose energy is the median (rank ceil(n/2)). */
const float *ebm_product_median_row(const struct ebm_product *p);

/* energy[i] = sum_k w_k E_k(x_i); NUMERIC naming the row (err->line,
 * 1-based) when an input or the energy is not finite. */
enum ebm_status ebm_product_energy(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, float *energy,
		struct ebm_error *err);

/* As ebm_model_score, under the product and its union reference set. */
enum ebm_status ebm_product_score(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, double alpha,
		struct ebm_score *out, struct ebm_error *err);

/*
 * Per-feature attribution of score: integrated gradients of E along the
 * straight path from the median-energy reference row r to x,
 *   contrib_j = (x_j - r_j) * integral_0^1 dE/dx_j (r + t (x - r)) dt,
 * by the midpoint rule with 32 points, doubled (up to 1024) until the
 * contributions sum to E(x) - E(r) = score within 0.1% (or 1e-4 absolute).
 * contrib is n_rows x d. Positive: the feature pushed the row away from
 * normal.
 */
enum ebm_status ebm_product_explain(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, float *contrib,
		struct ebm_error *err);

#define EBM_REPAIR_DEFAULT_STEPS 50u
#define EBM_REPAIR_MAX_STEPS 1000u
#define EBM_REPAIR_DEFAULT_STEP_SIZE 0.05f
#define EBM_REPAIR_MAX_STEP_SIZE 1.0f

struct ebm_repair_options {
	uint32_t steps;        /* 1 .. EBM_REPAIR_MAX_STEPS */
	float step_size;       /* (0, EBM_REPAIR_MAX_STEP_SIZE], standardized */
	const bool *fixed;     /* d flags, or NULL: features that must not move */
};
void ebm_repair_options_init(struct ebm_repair_options *o);

/*
 * Moves each row toward a nearby likely point by descent on E in the first
 * expert's standardized units z, with a trust region per row:
 *   - the direction is the gradient of E in z with the fixed features
 *     masked, normalized to length 1 (u), or, while it stays within 84
 *     degrees of u (cosine > 0.1), the momentum v = 0.7 v + u normalized:
 *     in a narrow valley it follows the floor where u bounces across.
 *     Each step moves the row by exactly its step length h (Euclidean,
 *     in z);
 *   - the first step length is step_size * sqrt(d);
 *   - a step is taken only if E falls; otherwise h is halved, up to 20
 *     times; if the direction was the momentum, the row goes along u
 *     from then on (it is near a floor, where momentum would only
 *     overshoot); a row that finds no lower energy along u (or whose
 *     masked gradient is 0) stops for good: a local minimum;
 *   - a step taken at full length doubles the next one, up to 32 times
 *     the first; a step taken after halving sets the next length to the
 *     one that worked.
 * So energy_after <= energy_before, always, fixed features never move, a
 * row far out crosses the distance in few steps and a row near a minimum
 * takes small ones. Each of the `steps` iterations makes at most one move
 * per row. out is n_rows x d raw units; before/after may be NULL.
 */
enum ebm_status ebm_product_repair(const struct ebm_product *p,
		struct ebm_ctx *ctx, const struct ebm_repair_options *o,
		const float *x, size_t n_rows, float *out, float *energy_before,
		float *energy_after, struct ebm_error *err);

#endif
