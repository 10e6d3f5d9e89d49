/*
 * fixture-model.h — a small random energy model built in memory, for
 * tests that need real network maths (BLAS-sized products, energies that
 * are not closed-form): d features, one hidden layer of `hidden` SiLU
 * units with random weights, a unit base precision, n_ref reference rows
 * drawn from a standard normal and sorted by their energy. names: NULL or
 * d feature names.
 */
#ifndef EBM_TESTS_FIXTURE_MODEL_H
#define EBM_TESTS_FIXTURE_MODEL_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

struct fixture_ref {
	float e;
	size_t i;
};

static int fixture_cmp_ref(const void *a, const void *b)
{
	const struct fixture_ref *x = a, *y = b;
	return x->e < y->e ? -1 : x->e > y->e ? 1 : (x->i > y->i) - (x->i < y->i);
}

static struct ebm_model *fixture_model(size_t d, uint32_t hidden,
		size_t n_ref, uint64_t seed, const char *const *names)
{
	struct ebm_model *m = ebm_model_alloc();
	uint32_t h[1] = { hidden };
	ck_assert(ebm_net_init(&m->net, (uint32_t)d, 1, 1, h, EBM_ACT_SILU));
	struct ebm_rng r;
	ebm_rng_init(&r, seed);
	ebm_rng_normal_fill(&r, m->net.params, m->net.n_params);
	for (size_t q = 0; q < m->net.n_params; q++) {
		m->net.params[q] *= 0.3f;
	}
	for (size_t j = 0; j < d; j++) {
		m->net.prec[j * d + j] = 1.0f;
		m->net.mean[j] = 0.1f * (float)j;
	}
	float *rows = malloc(n_ref * d * sizeof(float));
	float *e = malloc(n_ref * sizeof(float));
	struct fixture_ref *order = malloc(n_ref * sizeof(*order));
	ck_assert(rows != NULL && e != NULL && order != NULL);
	ebm_rng_normal_fill(&r, rows, n_ref * d);
	struct ebm_ctx *ctx = ebm_ctx_create();
	ck_assert_int_eq(ebm_model_energy(m, ctx, rows, n_ref, e, NULL), 0);
	ebm_ctx_destroy(ctx);
	for (size_t i = 0; i < n_ref; i++) {
		order[i].e = e[i];
		order[i].i = i;
	}
	qsort(order, n_ref, sizeof(*order), fixture_cmp_ref);
	m->n_ref = (uint32_t)n_ref;
	m->ref_rows = malloc(n_ref * d * sizeof(float));
	m->ref_energy = malloc(n_ref * sizeof(float));
	for (size_t i = 0; i < n_ref; i++) {
		memcpy(m->ref_rows + i * d, rows + order[i].i * d, d * sizeof(float));
		m->ref_energy[i] = order[i].e;
	}
	free(rows);
	free(e);
	free(order);
	m->alpha = 0.05f;
	m->objective = strdup("dsm");
	m->options = strdup("");
	if (names != NULL) {
		m->feature_names = calloc(d, sizeof(char *));
		for (size_t j = 0; j < d; j++) {
			m->feature_names[j] = strdup(names[j]);
		}
	}
	struct ebm_error err;
	ck_assert_msg(ebm_model_finalize(m, &err) == EBM_STATUS_OK, "%s",
			err.message);
	return m;
}

#endif
