/*
 * weigh.c (train) — chooses lambda, the network's weight in the tempered
 * product F = lambda f / s_net + g / s_proto, from the data in front of it
 * (--proto-net-weight auto).
 *
 * Neither term wins everywhere: the prototypes rank anomalies among many
 * normal modes (letter, optdigits, landsat), the network where a few
 * directions matter (wilt, waveform). The choice is made without labels,
 * by how well each lambda of a small grid tells the validation rows (no
 * prototype or member was fitted on them) from perturbed copies of them:
 * three copies of each, every copy taking an eighth of its features (at
 * least one), chosen at random, from random training rows. Every
 * marginal is kept; only the dependence between features is broken.
 *
 * The criterion is the AUROC of the validation rows against their copies
 * (energy -F as the score), and the best lambda wins; ties go to the
 * value nearest 1. Chosen by cross-validation over the 23 ADBench sets
 * (bench/results/quality_notes.md, issue 9): this swap alone, the same
 * with Gaussian noise of norm 0.5 as a second perturbation (the mean of
 * both AUROCs; --proto-net-noise, the first version of auto), and fixed
 * weights were the candidates.
 *
 * Single-threaded and seeded: same rows, same seed, same choice.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

/* Copies of each validation row per perturbation. */
#define COPIES 3
/* Rows per evaluation, bounding the prototype scratch. */
#define CHUNK 512

/* The grid, in the order ties are broken: nearest 1 first. */
static const float grid[] = { 1.0f, 0.5f, 2.0f, 0.25f, 4.0f, 0.0f };
#define N_GRID (sizeof(grid) / sizeof(grid[0]))
_Static_assert(N_GRID == EBM_TRAIN_N_WEIGHTS, "grid size");

double ebm_train_auroc(const float *neg, size_t n_neg, const float *pos,
		size_t n_pos)
{
	size_t n = n_neg + n_pos;
	double *s = ebm_alloc_array(n, sizeof(double));
	bool *label = ebm_alloc_array(n, sizeof(bool));
	double auc = NAN;
	if (s != NULL && label != NULL) {
		for (size_t i = 0; i < n; i++) {
			s[i] = i < n_neg ? neg[i] : pos[i - n_neg];
			label[i] = i >= n_neg;
		}
		if (!ebm_auroc(s, label, n, &auc)) {
			auc = NAN;
		}
	}
	free(s);
	free(label);
	return auc;
}

/* The score -F of n rows for one lambda, in the model's own arithmetic. */
static void score(const float *fn, const float *fg, size_t n, float w_net,
		float w_proto, float *out)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = -(w_net * fn[i] + w_proto * fg[i]);
	}
}

float ebm_train_pick_net_weight(const float *fn, const float *fg, size_t n,
		const float *const *fn_p, const float *const *fg_p, size_t n_sets,
		size_t n_p, float s_net, float s_proto, double *crit)
{
	float *a = ebm_alloc_array(n, sizeof(float));
	float *b = ebm_alloc_array(n_p, sizeof(float));
	float best = NAN;
	double best_c = -INFINITY;
	if (a == NULL || b == NULL) {
		goto out;
	}
	float w_proto = (float)(1.0 / s_proto);
	for (size_t g = 0; g < N_GRID; g++) {
		float w_net = (float)(grid[g] / s_net);
		score(fn, fg, n, w_net, w_proto, a);
		double c = 0.0;
		for (size_t k = 0; k < n_sets; k++) {
			score(fn_p[k], fg_p[k], n_p, w_net, w_proto, b);
			c += ebm_train_auroc(a, n, b, n_p) / (double)n_sets;
		}
		if (crit != NULL) {
			crit[g] = c;
		}
		if (c > best_c) {
			best_c = c;
			best = grid[g];
		}
	}
out:
	free(a);
	free(b);
	return best;
}

size_t ebm_train_net_weight_grid(const float **values)
{
	*values = grid;
	return N_GRID;
}

/* Both terms of n rows z, CHUNK rows at a time. */
static bool eval_terms(struct ebm_net *net, struct ebm_work *w,
		const struct ebm_proto *p, const float *z, size_t n, float *fn,
		float *fg, float *scratch)
{
	uint32_t d = net->d;
	for (size_t i = 0; i < n; i += CHUNK) {
		size_t m = n - i < CHUNK ? n - i : CHUNK;
		if (!ebm_net_forward(net, w, z + i * d, m, fn + i)) {
			return false;
		}
		ebm_proto_eval(p, d, z + i * d, m, scratch, fg + i, NULL);
	}
	return true;
}

enum ebm_status ebm_train_choose_net_weight(struct ebm_net *net,
		struct ebm_work *w, const struct ebm_proto *p, const float *z,
		size_t n, const float *zval, size_t n_val, const float *fn,
		const float *fg, float s_net, float s_proto, bool noise,
		uint64_t seed, struct ebm_train_weighing *wt, struct ebm_error *err)
{
	uint32_t d = net->d;
	size_t n_p = COPIES * n_val;
	float *zp = n_p > SIZE_MAX / d ? NULL :
			ebm_alloc_array(n_p * d, sizeof(float));
	int kinds = noise ? 2 : 1;
	float *terms = ebm_alloc_array(n_p, 2 * (size_t)kinds * sizeof(float));
	uint32_t *perm = ebm_alloc_array(d, sizeof(uint32_t));
	float *scratch = ebm_alloc_array(ebm_proto_scratch(p, d, CHUNK),
			sizeof(float));
	enum ebm_status st = EBM_STATUS_OK;
	if (zp == NULL || terms == NULL || perm == NULL || scratch == NULL) {
		st = ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory weighing the network");
		goto out;
	}
	float *fn_p[2] = { terms, terms + 2 * n_p };
	float *fg_p[2] = { terms + n_p, terms + 3 * n_p };
	for (uint32_t j = 0; j < d; j++) {
		perm[j] = j;
	}
	struct ebm_rng rng;
	ebm_rng_init(&rng, seed);
	uint32_t k_swap = (uint32_t)lround((double)d / 8.0);
	k_swap = k_swap < 1 ? 1 : k_swap;
	for (int kind = 0; kind < kinds; kind++) {
		for (size_t i = 0; i < n_p; i++) {
			float *row = zp + i * d;
			memcpy(row, zval + (i % n_val) * d, d * sizeof(float));
			if (kind == 0) {
				/* k_swap distinct features (a partial Fisher-Yates over
				 * the feature indices), each from its own training row. */
				for (uint32_t s = 0; s < k_swap; s++) {
					uint32_t t = s + (uint32_t)ebm_rng_below(&rng, d - s);
					uint32_t j = perm[t];
					perm[t] = perm[s];
					perm[s] = j;
					size_t r = (size_t)ebm_rng_below(&rng, n);
					row[j] = z[r * d + j];
				}
			} else {
				float sd = 0.5f / sqrtf((float)d);
				for (uint32_t j = 0; j < d; j++) {
					row[j] += sd * (float)ebm_rng_normal(&rng);
				}
			}
		}
		if (!eval_terms(net, w, p, zp, n_p, fn_p[kind], fg_p[kind],
					scratch)) {
			st = ebm_error_set(err, EBM_STATUS_NOMEM,
					"out of memory weighing the network");
			goto out;
		}
	}
	memcpy(wt->grid, grid, sizeof(grid));
	wt->lambda = ebm_train_pick_net_weight(fn, fg, n_val,
			(const float *const *)fn_p, (const float *const *)fg_p,
			(size_t)kinds, n_p, s_net, s_proto, wt->auroc);
	if (isnan(wt->lambda)) {
		st = ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory weighing the network");
	}
out:
	free(zp);
	free(terms);
	free(perm);
	free(scratch);
	return st;
}
