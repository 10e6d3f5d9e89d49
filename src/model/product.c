/*
 * product.c — products of experts (weighted sums of model energies):
 * creation (the union reference set, block by block), accessors, energies
 * and scores. The two gradient-based services built on any product live
 * in explain.c (integrated gradients) and repair.c (energy descent). A
 * single model is the product of one expert with weight 1 and reuses its
 * stored reference energies, so its scores are the model's own.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "ebm/product.h"

/* ---- energies --------------------------------------------------------- */

/* model.h: energy (and grad) of the product for n rows. */
enum ebm_status ebm_product_eval(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n, float *energy,
		float *grad, struct ebm_error *err)
{
	size_t d = p->d;
	ctx->product_rows += n;
	float *tmp = ebm_work_reserve(&ctx->prod[EBM_PBUF_TMP], n);
	float *gtmp = NULL;
	if (grad != NULL) {
		gtmp = ebm_work_reserve(&ctx->prod[EBM_PBUF_ACC], n * d);
	}
	if (tmp == NULL || (grad != NULL && gtmp == NULL)) {
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory for scratch space");
	}
	for (size_t k = 0; k < p->n; k++) {
		enum ebm_status st = grad != NULL ?
				ebm_model_energy_grad(p->models[k], ctx, x, n, tmp, gtmp, err) :
				ebm_model_energy(p->models[k], ctx, x, n, tmp, err);
		if (st != EBM_STATUS_OK) {
			return st;
		}
		float w = (float)p->weights[k];
		for (size_t i = 0; i < n; i++) {
			energy[i] = k == 0 ? w * tmp[i] : energy[i] + w * tmp[i];
		}
		if (grad != NULL) {
			for (size_t q = 0; q < n * d; q++) {
				grad[q] = k == 0 ? w * gtmp[q] : grad[q] + w * gtmp[q];
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(energy[i])) {
			enum ebm_status st = ebm_error_set(err, EBM_STATUS_NUMERIC,
					"row %zu: energy is not finite", i + 1);
			if (err != NULL) {
				err->line = i + 1;
			}
			return st;
		}
	}
	return EBM_STATUS_OK;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : (x > y);
}

/* ---- creation ------------------------------------------------------------ */

/* Same feature count as models[0]; same names as the first named expert
 * wherever both have names. */
enum ebm_status ebm_product_check(const struct ebm_model *const *models,
		size_t n, struct ebm_error *err)
{
	if (models == NULL || n == 0 || n > EBM_PRODUCT_MAX_MODELS) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"a product needs 1 to %u models, got %zu",
				EBM_PRODUCT_MAX_MODELS, n);
	}
	size_t d = ebm_model_n_features(models[0]);
	const struct ebm_model *named = NULL;
	for (size_t k = 0; k < n; k++) {
		const struct ebm_model *b = models[k];
		if (ebm_model_n_features(b) != d) {
			return ebm_error_set(err, EBM_STATUS_MISMATCH,
					"models[%zu] has %zu features, models[0] has %zu", k,
					ebm_model_n_features(b), d);
		}
		if (named == NULL && ebm_model_feature_name(b, 0) != NULL) {
			named = b;
		}
	}
	if (named == NULL) {
		return EBM_STATUS_OK;
	}
	for (size_t k = 0; k < n; k++) {
		const struct ebm_model *b = models[k];
		if (ebm_model_feature_name(b, 0) == NULL) {
			continue;
		}
		for (size_t j = 0; j < d; j++) {
			const char *na = ebm_model_feature_name(named, j);
			const char *nb = ebm_model_feature_name(b, j);
			if (strcmp(na, nb) != 0) {
				return ebm_error_set(err, EBM_STATUS_MISMATCH,
						"models[%zu] calls feature %zu '%s' where another "
						"model has '%s'", k, j, nb, na);
			}
		}
	}
	return EBM_STATUS_OK;
}

enum ebm_status ebm_product_ref_block(const struct ebm_model *m,
		const struct ebm_model *ref, struct ebm_ctx *ctx, float *out,
		struct ebm_error *err)
{
	if (ebm_model_n_features(m) != ebm_model_n_features(ref)) {
		return ebm_error_set(err, EBM_STATUS_MISMATCH,
				"the models have %zu and %zu features",
				ebm_model_n_features(m), ebm_model_n_features(ref));
	}
	/* One call over the block, from its first row: the same batches
	 * whoever computes it, so the same bits. */
	return ebm_model_energy(m, ctx, ebm_model_ref_rows(ref),
			ebm_model_n_ref(ref), out, err);
}

static enum ebm_status fail_reference(struct ebm_error *err,
		enum ebm_status st, size_t k, size_t b)
{
	if (err != NULL) {
		/* Keep the expert's message, truncated to fit the prefix. */
		char msg[400];
		memcpy(msg, err->message, sizeof(msg) - 1);
		msg[sizeof(msg) - 1] = '\0';
		snprintf(err->message, sizeof(err->message),
				"reference set of the product: models[%zu] on the "
				"reference rows of models[%zu]: %.399s", k, b, msg);
	}
	return st;
}

/*
 * The union reference energies under the product, in union order (the
 * rows of models[0], then those of models[1], ...): for each block b and
 * expert k, blocks[k * n + b] when given, else computed into scratch.
 */
static enum ebm_status union_energies(struct ebm_product *p,
		const float *const *blocks, struct ebm_ctx *ctx,
		struct ebm_error *err)
{
	size_t n = p->n;
	size_t max_block = 0;
	for (size_t b = 0; b < n; b++) {
		size_t nb = ebm_model_n_ref(p->models[b]);
		max_block = nb > max_block ? nb : max_block;
	}
	float *tmp = NULL;
	size_t off = 0;
	for (size_t b = 0; b < n; b++) {
		const struct ebm_model *mb = p->models[b];
		size_t nb = ebm_model_n_ref(mb);
		float *acc = p->ref_energy + off;
		for (size_t k = 0; k < n; k++) {
			const float *e = blocks != NULL ? blocks[k * n + b] : NULL;
			if (e == NULL) {
				if (tmp == NULL) {
					tmp = ebm_alloc_array(max_block, sizeof(float));
					if (tmp == NULL) {
						return ebm_error_set(err, EBM_STATUS_NOMEM,
								"out of memory for %zu reference energies",
								max_block);
					}
				}
				enum ebm_status st = ebm_product_ref_block(p->models[k], mb,
						ctx, tmp, err);
				if (st != EBM_STATUS_OK) {
					free(tmp);
					return fail_reference(err, st, k, b);
				}
				e = tmp;
			}
			float w = (float)p->weights[k];
			for (size_t i = 0; i < nb; i++) {
				acc[i] = k == 0 ? w * e[i] : acc[i] + w * e[i];
			}
		}
		for (size_t i = 0; i < nb; i++) {
			if (!isfinite(acc[i])) {
				free(tmp);
				enum ebm_status st = ebm_error_set(err, EBM_STATUS_NUMERIC,
						"reference set of the product: row %zu: energy is "
						"not finite", off + i + 1);
				if (err != NULL) {
					err->line = off + i + 1;
				}
				return st;
			}
		}
		off += nb;
	}
	free(tmp);
	return EBM_STATUS_OK;
}

enum ebm_status ebm_product_create(const struct ebm_model *const *models,
		const double *weights, size_t n, struct ebm_ctx *ctx,
		struct ebm_product **out, struct ebm_error *err)
{
	return ebm_product_create_cached(models, weights, n, NULL, ctx, out,
			err);
}

enum ebm_status ebm_product_create_cached(
		const struct ebm_model *const *models, const double *weights,
		size_t n, const float *const *blocks, struct ebm_ctx *ctx,
		struct ebm_product **out, struct ebm_error *err)
{
	*out = NULL;
	enum ebm_status st = ebm_product_check(models, n, err);
	if (st == EBM_STATUS_INVALID_ARGUMENT) {
		return st;
	}
	for (size_t k = 0; k < n; k++) {
		double w = weights != NULL ? weights[k] : 1.0;
		if (!(isfinite(w) && w > 0.0)) {
			return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
					"weights[%zu] must be a finite number > 0, got %g", k, w);
		}
	}
	if (st != EBM_STATUS_OK) {
		return st;
	}
	struct ebm_product *p = ebm_xcalloc(1, sizeof(*p));
	p->n = n;
	p->d = ebm_model_n_features(models[0]);
	p->alpha = 1.0f;
	p->missing = ebm_missing_cache_create();
	for (size_t k = 0; k < n; k++) {
		p->models[k] = models[k];
		p->weights[k] = weights != NULL ? weights[k] : 1.0;
		float a = ebm_model_alpha(models[k]);
		p->alpha = a < p->alpha ? a : p->alpha;
		if (p->named == NULL && ebm_model_feature_name(models[k], 0) != NULL) {
			p->named = models[k];
		}
	}
	size_t total = 0;
	for (size_t k = 0; k < n; k++) {
		total += ebm_model_n_ref(models[k]);
	}
	size_t d = p->d;
	p->n_ref = total;
	p->ref_energy = ebm_alloc_array(total, sizeof(float));
	p->median_row = ebm_alloc_array(d, sizeof(float));
	if (p->ref_energy == NULL || p->median_row == NULL) {
		ebm_product_destroy(p);
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory for %zu reference rows", total);
	}
	if (n == 1 && p->weights[0] == 1.0) {
		/* The model itself: its stored energies, not recomputed ones. */
		memcpy(p->ref_energy, ebm_model_ref_energies(models[0]),
				total * sizeof(float));
		memcpy(p->median_row, ebm_model_ref_rows(models[0]) +
				ebm_model_median_index(models[0]) * d, d * sizeof(float));
		*out = p;
		return EBM_STATUS_OK;
	}
	st = union_energies(p, blocks, ctx, err);
	if (st != EBM_STATUS_OK) {
		ebm_product_destroy(p);
		return st;
	}
	/* The median-energy row: rank ceil(n/2) among the union; the first
	 * row in union order with that energy. */
	float *sorted = p->ref_energy;
	float *copy = ebm_alloc_array(total, sizeof(float));
	if (copy == NULL) {
		ebm_product_destroy(p);
		return ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
	}
	memcpy(copy, sorted, total * sizeof(float));
	qsort(sorted, total, sizeof(float), cmp_float);
	float med = sorted[(total - 1) / 2];
	size_t best = 0;
	for (size_t i = 0; i < total; i++) {
		if (copy[i] == med) {
			best = i;
			break;
		}
	}
	free(copy);
	for (size_t k = 0; k < n; k++) {
		size_t nk = ebm_model_n_ref(models[k]);
		if (best < nk) {
			memcpy(p->median_row, ebm_model_ref_rows(models[k]) + best * d,
					d * sizeof(float));
			break;
		}
		best -= nk;
	}
	*out = p;
	return EBM_STATUS_OK;
}

void ebm_product_destroy(struct ebm_product *p)
{
	if (p == NULL) {
		return;
	}
	free(p->ref_energy);
	free(p->median_row);
	ebm_missing_cache_destroy(p->missing);
	free(p);
}

/* ---- accessors -------------------------------------------------------------- */

size_t ebm_product_n_models(const struct ebm_product *p) { return p->n; }

const struct ebm_model *ebm_product_model(const struct ebm_product *p,
		size_t i)
{
	return i < p->n ? p->models[i] : NULL;
}

double ebm_product_weight(const struct ebm_product *p, size_t i)
{
	return i < p->n ? p->weights[i] : 0.0;
}

size_t ebm_product_n_features(const struct ebm_product *p) { return p->d; }

const char *ebm_product_feature_name(const struct ebm_product *p, size_t i)
{
	return p->named != NULL ? ebm_model_feature_name(p->named, i) : NULL;
}

long ebm_product_feature_index(const struct ebm_product *p, const char *name)
{
	return p->named != NULL ? ebm_model_feature_index(p->named, name) : -1;
}

float ebm_product_alpha(const struct ebm_product *p) { return p->alpha; }
size_t ebm_product_n_ref(const struct ebm_product *p) { return p->n_ref; }

const float *ebm_product_ref_energies(const struct ebm_product *p)
{
	return p->ref_energy;
}

float ebm_product_median_energy(const struct ebm_product *p)
{
	return p->ref_energy[(p->n_ref - 1) / 2];
}

const float *ebm_product_median_row(const struct ebm_product *p)
{
	return p->median_row;
}

/* ---- scoring ------------------------------------------------------------------ */

enum ebm_status ebm_product_energy(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, float *energy,
		struct ebm_error *err)
{
	return ebm_product_eval(p, ctx, x, n_rows, energy, NULL, err);
}

enum ebm_status ebm_product_score(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, double alpha,
		struct ebm_score *out, struct ebm_error *err)
{
	enum ebm_status st = ebm_score_check_alpha(alpha, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	float *e = ebm_work_reserve(&ctx->prod[EBM_PBUF_E], n_rows);
	if (n_rows > 0 && e == NULL) {
		return ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
	}
	st = ebm_product_eval(p, ctx, x, n_rows, e, NULL, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	ebm_scores_of(e, n_rows, ebm_product_median_energy(p), p->ref_energy,
			p->n_ref, alpha, out);
	return EBM_STATUS_OK;
}

