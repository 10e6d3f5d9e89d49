/*
 * model.h (internal) — the definition behind the opaque struct ebm_model,
 * for the modules that build one (train/) or serialize one (model/).
 * Everything else uses include/ebm/model.h.
 */
#ifndef EBM_MODEL_MODEL_H
#define EBM_MODEL_MODEL_H

#include "core/core.h"
#include "ebm/model.h"

struct ebm_model {
	struct ebm_net net;        /* owns its arrays */
	float alpha;
	uint64_t created;
	uint64_t seed;
	char *objective;           /* owned */
	char **feature_names;      /* NULL, or d owned strings */
	char *options;             /* owned, "key=value\n" lines */
	uint32_t n_ref;
	float *ref_rows;           /* n_ref x d raw, ascending energy */
	float *ref_energy;         /* n_ref, ascending */
	char checksum[33];         /* hex, set by load or by finalize */
};

/* A zeroed model to be filled in by a builder. Never NULL (aborts on OOM). */
struct ebm_model *ebm_model_alloc(void);

/*
 * Checks a built model the way the reader checks a file (shapes, finite
 * floats, sorted energies, names) and computes its checksum by serializing
 * it. A model that fails is not fit to be written.
 */
enum ebm_status ebm_model_finalize(struct ebm_model *m,
		struct ebm_error *err);

#endif
