/*
 * model.h — load, inspect, score, sample and write energy models.
 *
 * A model is f(x) = base(z) + (1/K) * sum_k mlp_k(z), z = (x - mean) / scale,
 * read as an unnormalized log-density; its energy is E(x) = -f(x). base(z) =
 * -0.5 * z' P z is a fixed Gaussian term (P: precision of the standardized
 * training data, shrunk) that keeps exp(f) integrable and gives the MLP
 * members a sensible starting point. Every file also carries a reference set
 * of held-out normal rows (raw units) with their energies, sorted ascending,
 * from which score and p_value are derived (see ../../API.md section 1).
 * Version 2 adds a prototype term: n_protos centres c_j (standardized units)
 * with bandwidths h_j and log weights a_j, and the log-density becomes the
 * tempered product  w_net * f(z) + w_proto * log sum_j exp(a_j -
 * ||z - c_j||^2 / (2 h_j^2)).
 *
 * FILE FORMAT, versions 1 and 2 (docs/model-format.md has the long form).
 * Every integer and float is little-endian; floats are IEEE-754 binary32.
 * The writer uses version 1 for a model without prototypes.
 *
 *   offset size  field
 *   0      8     magic "EBMMODEL"
 *   8      4     u32 format version (1 or 2)
 *   12     4     u32 byte-order mark 0x01020304 (bytes 04 03 02 01)
 *   16     8     u64 file size in bytes, checksum included
 *   24     4     u32 d, number of features          (1 .. 65536)
 *   28     4     u32 K, number of MLP members       (1 .. 64)
 *   32     4     u32 L, hidden layers per member    (1 .. 16)
 *   36     4     u32 activation (0 = SiLU, 1 = softplus)
 *   40     4     u32 n_ref, reference rows          (1 .. 10,000,000)
 *   44     4     f32 alpha                          (0 < alpha < 1)
 *   48     8     u64 created, Unix seconds
 *   56     8     u64 seed
 *   64     4*L   u32 hidden widths                  (each 1 .. 65536)
 *   ...          str objective                      (1 .. 64 bytes)
 *   ...    4     u32 has_feature_names (0 or 1)
 *   ...          str[d] feature names if has_feature_names (1 .. 256 bytes,
 *                distinct, no control characters)
 *   ...          str training options, "key=value\n" lines (0 .. 65536 bytes)
 *   ...    4     version 2 only: u32 n_protos           (1 .. 65536)
 *   ...    4     version 2 only: f32 w_net              (finite, >= 0)
 *   ...    4     version 2 only: f32 w_proto            (finite, > 0)
 *   ...          zero bytes up to the next multiple of 16 from the file start
 *   ...          f32 blob:
 *                  mean[d], scale[d] (every scale > 0),
 *                  P[d*d] (row-major),
 *                  K members of n_params floats each (layout in
 *                  src/core/core.h: per hidden layer W (h_out x h_in,
 *                  row-major) then b (h_out); then w_out (h_L), b_out (1)),
 *                  version 2 only: protos[n_protos * d] (standardized),
 *                  proto_logw[n_protos], proto_h[n_protos] (each > 0),
 *                  ref_rows[n_ref * d] (raw units),
 *                  ref_energy[n_ref] (non-decreasing)
 *   end-16 16    checksum: XXH3 128-bit hash of every preceding byte, in
 *                the canonical (big-endian) byte order of XXH128_canonical_t
 *
 *   str = u32 byte length, then that many UTF-8 bytes, no terminator.
 *
 * Every float in the blob must be finite. A file with any other size than
 * the one its counts imply, bytes after the checksum included, is refused.
 *
 * Thread-safety: a loaded model is immutable and may be shared by any
 * number of threads; each thread brings its own struct ebm_ctx.
 */
#ifndef EBM_MODEL_H
#define EBM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebm/ebm.h"

#define EBM_MODEL_MAGIC "EBMMODEL"
#define EBM_MODEL_FORMAT_VERSION 2u
#define EBM_MODEL_MAX_FEATURES 65536u
#define EBM_MODEL_MAX_MEMBERS 64u
#define EBM_MODEL_MAX_LAYERS 16u
#define EBM_MODEL_MAX_WIDTH 65536u
#define EBM_MODEL_MAX_REF 10000000u
#define EBM_MODEL_MAX_PROTOS 65536u
#define EBM_MODEL_MAX_NAME 256u
#define EBM_MODEL_MAX_OBJECTIVE 64u
#define EBM_MODEL_MAX_OPTIONS 65536u
/* Whole files above this size are refused before being read. */
#define EBM_MODEL_MAX_FILE_BYTES ((uint64_t)1 << 32)

struct ebm_model;   /* opaque; immutable once built or loaded */
struct ebm_ctx;     /* opaque per-thread scratch memory */

/* ---- loading, writing, freeing ----------------------------------------- */

/*
 * Reads and fully validates a model file. On success *out owns a new model
 * (free with ebm_model_destroy). On failure *out is NULL and err says what
 * is wrong and at which byte offset. Errors: IO, FORMAT, LIMIT, NOMEM.
 */
enum ebm_status ebm_model_load_file(const char *path, struct ebm_model **out,
		struct ebm_error *err);

/*
 * Same from memory. `origin` names the bytes in messages (a path, or NULL
 * for "<buffer>"). The buffer is not retained.
 */
enum ebm_status ebm_model_load_buffer(const void *data, size_t size,
		const char *origin, struct ebm_model **out, struct ebm_error *err);

/*
 * Serializes to a new malloc'ed buffer (*out_data, caller frees with free()).
 */
enum ebm_status ebm_model_write_buffer(const struct ebm_model *m,
		void **out_data, size_t *out_size, struct ebm_error *err);

/*
 * Writes atomically: a temporary file in the target's directory (created
 * anonymous with O_TMPFILE where supported, named only once complete),
 * fsync, rename over `path`, fsync of the directory. On failure the
 * temporary file is removed and any existing `path` is untouched. After a
 * success, stale temporary files of earlier writes of `path` that were
 * killed (".NAME.tmp-<12 hex>", older than 60 s, not locked by a live
 * writer) are removed; docs/model-format.md section 6 has the details.
 */
enum ebm_status ebm_model_write_file(const struct ebm_model *m,
		const char *path, struct ebm_error *err);

/* Frees the model. NULL is ignored. */
void ebm_model_destroy(struct ebm_model *m);

/* ---- metadata (all borrowed pointers live as long as the model) -------- */

size_t ebm_model_n_features(const struct ebm_model *m);
/* NULL when the model was trained without feature names. */
const char *ebm_model_feature_name(const struct ebm_model *m, size_t i);
/* Index of the feature called `name`, or -1. */
long ebm_model_feature_index(const struct ebm_model *m, const char *name);
float ebm_model_alpha(const struct ebm_model *m);
const char *ebm_model_objective(const struct ebm_model *m);
size_t ebm_model_n_members(const struct ebm_model *m);
size_t ebm_model_n_layers(const struct ebm_model *m);
/* Prototypes of the prototype term; 0 for a model without one (version 1). */
size_t ebm_model_n_protos(const struct ebm_model *m);
size_t ebm_model_hidden(const struct ebm_model *m, size_t layer);
const char *ebm_model_activation(const struct ebm_model *m);
uint64_t ebm_model_created(const struct ebm_model *m);
uint64_t ebm_model_seed(const struct ebm_model *m);
/* 32 lowercase hex digits of the stored checksum. */
const char *ebm_model_checksum(const struct ebm_model *m);
/* "key=value\n" lines recorded at training time. */
const char *ebm_model_training_options(const struct ebm_model *m);

/* ---- reference set ----------------------------------------------------- */

size_t ebm_model_n_ref(const struct ebm_model *m);
/* n_ref x d raw rows, ordered by ascending energy. */
const float *ebm_model_ref_rows(const struct ebm_model *m);
/* n_ref energies, ascending. */
const float *ebm_model_ref_energies(const struct ebm_model *m);
/* Rank ceil(n_ref/2) (1-based): index (n_ref - 1) / 2 of the sorted set. */
size_t ebm_model_median_index(const struct ebm_model *m);
float ebm_model_median_energy(const struct ebm_model *m);
/*
 * (1 + #{r : E(r) >= energy}) / (n_ref + 1), over a sorted energy array.
 * Usable for any sorted reference (compositions bring their own).
 */
double ebm_p_value(const float *sorted_energy, size_t n, float energy);

/* ---- scoring ------------------------------------------------------------ */

/* Scratch memory for one thread; grows as needed, reused across calls. */
struct ebm_ctx *ebm_ctx_create(void);
void ebm_ctx_destroy(struct ebm_ctx *ctx);

/*
 * energy[i] = E(x_i) for n_rows raw rows x (row-major, n_rows x d).
 * A non-finite input or energy fails with NUMERIC naming the row (err->line
 * holds the 1-based row). Thread-safe for distinct ctx.
 */
enum ebm_status ebm_model_energy(const struct ebm_model *m,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, float *energy,
		struct ebm_error *err);

/*
 * As ebm_model_energy, plus grad[i*d + j] = dE/dx_ij in raw units.
 */
enum ebm_status ebm_model_energy_grad(const struct ebm_model *m,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, float *energy,
		float *grad, struct ebm_error *err);

struct ebm_score {
	float energy;   /* E(x) */
	float score;    /* E(x) - median reference energy */
	double p_value; /* conformal tail probability */
	bool anomaly;   /* p_value < alpha */
};

/* Scores n_rows rows at significance `alpha` (0 < alpha < 1). */
enum ebm_status ebm_model_score(const struct ebm_model *m, struct ebm_ctx *ctx,
		const float *x, size_t n_rows, double alpha, struct ebm_score *out,
		struct ebm_error *err);

/* ---- re-baselining (rebase.c) ----------------------------------------- */

/*
 * A new model (*out; free with ebm_model_destroy) with m's weights,
 * standardization and metadata and `rows` (n_rows x d, raw units) as its
 * reference set, their energies recomputed and sorted ascending; its
 * checksum (so its version) is that of the new content. Errors: LIMIT
 * (n_rows outside 1..EBM_MODEL_MAX_REF), NUMERIC naming the row in
 * err->line (and the feature in err->column for a non-finite input),
 * NOMEM. Bounds of a tool's own (train's reference_min/max) are the
 * caller's to check.
 */
enum ebm_status ebm_model_rebase(const struct ebm_model *m,
		struct ebm_ctx *ctx, const float *rows, size_t n_rows,
		struct ebm_model **out, struct ebm_error *err);

/* ---- sampling ----------------------------------------------------------- */

enum ebm_sampler {
	EBM_SAMPLER_LANGEVIN = 0, /* unadjusted Langevin */
	EBM_SAMPLER_MALA,         /* Metropolis-adjusted Langevin */
	EBM_SAMPLER_MH,           /* random-walk Metropolis-Hastings */
};

/* Parses "langevin" | "mala" | "mh"; false if unknown. */
bool ebm_sampler_parse(const char *name, enum ebm_sampler *out);
const char *ebm_sampler_name(enum ebm_sampler s);

struct ebm_sample_options {
	enum ebm_sampler sampler;
	size_t n_steps;      /* 1 .. 1,000,000 */
	float step_size;     /* standardized units, > 0; 0 picks a default */
	uint64_t seed;
};
void ebm_sample_options_init(struct ebm_sample_options *o);

/*
 * Draws n rows (raw units, n x d into out) by running n independent chains
 * from reference rows. accept_rate (may be NULL) gets the fraction of
 * accepted proposals (1 for unadjusted Langevin).
 */
enum ebm_status ebm_model_sample(const struct ebm_model *m,
		struct ebm_ctx *ctx, const struct ebm_sample_options *opt, size_t n,
		float *out, double *accept_rate, struct ebm_error *err);

#endif
