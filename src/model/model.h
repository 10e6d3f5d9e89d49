/*
 * model.h (internal) — the definition behind the opaque struct ebm_model,
 * for the modules that build one (train/) or serialize one (model/).
 * Everything else uses include/ebm/model.h.
 *
 * A builder allocates with ebm_model_alloc(), fills every field (the net
 * with ebm_net_init(), strings with malloc'ed copies that the model then
 * owns), and calls ebm_model_finalize(). After that the model is never
 * modified again.
 */
#ifndef EBM_MODEL_MODEL_H
#define EBM_MODEL_MODEL_H

#include "core/core.h"
#include "ebm/model.h"
#include "ebm/product.h"

struct ebm_model {
	struct ebm_net net;        /* owns its arrays */
	float alpha;
	uint64_t created;
	uint64_t seed;
	char *objective;           /* owned */
	char **feature_names;      /* NULL, or d owned strings */
	char *options;             /* owned, "key=value\n" lines; NULL = "" */
	uint32_t n_ref;
	float *ref_rows;           /* n_ref x d raw, ascending energy */
	float *ref_energy;         /* n_ref, ascending */
	char checksum[33];         /* hex, set by load or by finalize */
	/*
	 * Set by load and by finalize, never by a builder: the d feature
	 * indices sorted by name (strcmp order) for ebm_model_feature_index();
	 * NULL when the model has no feature names. Owned.
	 */
	uint32_t *name_order;
};

/* A zeroed model to be filled in by a builder. Never NULL (aborts on OOM). */
/* Per-thread scratch (opaque outside src/model/). Each buffer grows as
 * needed and is reused; product.c has its own so that it can call the
 * model functions, which use the others, while holding its results. */
#define EBM_CTX_PRODUCT_BUFS 7
struct ebm_ctx {
	struct ebm_work net;    /* the network's own scratch */
	struct ebm_work z;      /* standardized rows */
	struct ebm_work f;      /* log-densities */
	struct ebm_work g;      /* input gradients */
	struct ebm_work e;      /* energies (score) */
	struct ebm_work chain;  /* sampler scratch */
	struct ebm_work prod[EBM_CTX_PRODUCT_BUFS];
	uint64_t product_rows;  /* rows ebm_product_eval has evaluated: the
	                         * cost of repair and missing values, for tests */
};

struct ebm_model *ebm_model_alloc(void);

/*
 * Checks a built model the way the reader checks a file (shapes, finite
 * floats, sorted energies, names) and computes its checksum by serializing
 * it. A model that fails is not fit to be written. Errors are those of the
 * reader (FORMAT, LIMIT, with "<model>" as origin and the byte offset the
 * offending value would have in the file), INVALID_ARGUMENT for a model
 * whose arrays were never allocated, NOMEM.
 */
enum ebm_status ebm_model_finalize(struct ebm_model *m,
		struct ebm_error *err);

/* ---- products: shared by product.c, explain.c and repair.c ------------ */

/* The scratch buffers of struct ebm_ctx that products use (ctx->prod). */
enum {
	EBM_PBUF_ACC,     /* accumulated energies or gradients */
	EBM_PBUF_TMP,     /* one expert's energies or gradients */
	EBM_PBUF_PTS,     /* explain: path points; repair: proposals */
	EBM_PBUF_GRAD,    /* explain: path gradients; repair: gradients */
	EBM_PBUF_E,       /* repair: current energies */
	EBM_PBUF_AUX,     /* repair: proposal energies and step scales */
	EBM_PBUF_VEL,     /* repair: each row's momentum direction */
};

struct ebm_product {
	size_t n;
	const struct ebm_model *models[EBM_PRODUCT_MAX_MODELS];
	double weights[EBM_PRODUCT_MAX_MODELS];
	size_t d;
	const struct ebm_model *named;  /* first expert with feature names */
	float alpha;
	size_t n_ref;
	float *ref_energy;              /* owned, ascending */
	float *median_row;              /* owned, d floats */
	/* missing.c: profiled reference energies per missing set; the one
	 * part that changes after creation, behind its own mutex. Owned. */
	struct ebm_missing_cache *missing;
};

/* missing.c: an empty cache (aborts on OOM), and its release. */
struct ebm_missing_cache *ebm_missing_cache_create(void);
void ebm_missing_cache_destroy(struct ebm_missing_cache *c);

/*
 * product.c: energy (and grad, n x d, if not NULL) of the product for n
 * raw rows, sum_k w_k E_k with float weights in the order of the experts.
 * Errors from the experts already name the row (1-based within x).
 */
enum ebm_status ebm_product_eval(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n, float *energy,
		float *grad, struct ebm_error *err);

/* ---- scoring: shared by model.c and product.c ------------------------- */

/* model.c: INVALID_ARGUMENT unless 0 < alpha < 1 (checked before any
 * maths). */
enum ebm_status ebm_score_check_alpha(double alpha, struct ebm_error *err);

/*
 * model.c: the one way energies become scores, for models and products
 * alike: out[i] gets e[i], e[i] - median, the p-value of e[i] against the
 * n_ref sorted reference energies, and p < alpha.
 */
void ebm_scores_of(const float *e, size_t n, float median,
		const float *ref_energy, size_t n_ref, double alpha,
		struct ebm_score *out);

/* ---- shared by model.c and format.c ---------------------------------- */

/*
 * format.c: every check the reader makes on the decoded content, applied
 * to a model in memory; `origin` names it in messages. On success and if
 * name_order is not NULL, *name_order receives a new malloc'ed array of
 * the d feature indices sorted by name (NULL for a model without names).
 */
enum ebm_status ebm_model_check(const struct ebm_model *m,
		const char *origin, uint32_t **name_order, struct ebm_error *err);

/*
 * format.c: serializes a model that passed ebm_model_check() into a new
 * malloc'ed buffer (caller frees) and writes its 32 hex digit checksum
 * plus NUL into hex (33 bytes) when hex is not NULL. Errors: NOMEM, LIMIT.
 */
enum ebm_status ebm_model_serialize(const struct ebm_model *m,
		void **out_data, size_t *out_size, char *hex, struct ebm_error *err);

#endif
