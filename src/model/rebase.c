/*
 * rebase.c — a model with a new reference set (ebm_model_rebase in
 * ebm/model.h): the same weights, standardization and metadata, the given
 * rows as reference, their energies recomputed and sorted ascending (ties
 * in row order, as train does), checked and checksummed like any model.
 */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/util.h"

struct ranked {
	float energy;
	size_t row;
};

static int cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	if (x->energy != y->energy) {
		return x->energy < y->energy ? -1 : 1;
	}
	return x->row < y->row ? -1 : (x->row > y->row);
}

enum ebm_status ebm_model_rebase(const struct ebm_model *m,
		struct ebm_ctx *ctx, const float *rows, size_t n_rows,
		struct ebm_model **out, struct ebm_error *err)
{
	*out = NULL;
	size_t d = m->net.d;
	if (n_rows == 0 || n_rows > EBM_MODEL_MAX_REF) {
		return ebm_error_set(err, EBM_STATUS_LIMIT, "a reference set needs "
				"1..%u rows, got %zu", EBM_MODEL_MAX_REF, n_rows);
	}
	float *energy = ebm_alloc_array(n_rows, sizeof(*energy));
	struct ranked *r = ebm_alloc_array(n_rows, sizeof(*r));
	float *ref_rows = ebm_alloc_array(n_rows, d * sizeof(float));
	float *ref_energy = ebm_alloc_array(n_rows, sizeof(float));
	void *buf = NULL;
	size_t size = 0;
	struct ebm_model *copy = NULL;
	enum ebm_status st = EBM_STATUS_NOMEM;
	if (energy == NULL || r == NULL || ref_rows == NULL
			|| ref_energy == NULL) {
		ebm_error_set(err, st, "out of memory for %zu reference rows",
				n_rows);
		goto out;
	}
	/* NUMERIC with err->line (and column for a non-finite input) naming
	 * the 1-based row */
	st = ebm_model_energy(m, ctx, rows, n_rows, energy, err);
	if (st != EBM_STATUS_OK) {
		goto out;
	}
	for (size_t i = 0; i < n_rows; i++) {
		r[i] = (struct ranked){ energy[i], i };
	}
	qsort(r, n_rows, sizeof(*r), cmp_ranked);
	for (size_t i = 0; i < n_rows; i++) {
		memcpy(ref_rows + i * d, rows + r[i].row * d, d * sizeof(float));
		ref_energy[i] = r[i].energy;
	}
	/* A deep copy through the file format: whatever the model holds is
	 * carried over as written. */
	st = ebm_model_write_buffer(m, &buf, &size, err);
	if (st == EBM_STATUS_OK) {
		st = ebm_model_load_buffer(buf, size, "<model>", &copy, err);
	}
	if (st != EBM_STATUS_OK) {
		goto out;
	}
	free(copy->ref_rows);
	free(copy->ref_energy);
	copy->ref_rows = ref_rows;
	copy->ref_energy = ref_energy;
	copy->n_ref = (uint32_t)n_rows;
	ref_rows = NULL;
	ref_energy = NULL;
	st = ebm_model_finalize(copy, err);
	if (st != EBM_STATUS_OK) {
		ebm_model_destroy(copy);
		copy = NULL;
		goto out;
	}
	*out = copy;

out:
	free(buf);
	free(energy);
	free(r);
	free(ref_rows);
	free(ref_energy);
	return st;
}
