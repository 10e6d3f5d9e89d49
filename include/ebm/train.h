/*
 * train.h — fit an energy model to rows of normal data.
 *
 * ebm_train_fit() takes raw rows in memory, holds out a reference set and a
 * validation set (both shuffled by the seed), fits K MLP members with the
 * chosen objective, and returns a complete model ready for
 * ebm_model_write_file(). It does no I/O: progress goes to a callback.
 *
 * Objectives:
 *   "dsm" — denoising score matching over a geometric ladder of noise
 *           levels: minimise sigma^2 || grad_z f(z + sigma n) + n / sigma ||^2
 *           (exact parameter gradient by double backpropagation).
 *   "cd"  — contrastive divergence: grad f(data) - grad f(samples), samples
 *           from short-run Langevin chains fed by a persistent replay buffer,
 *           plus a small penalty on f^2.
 * Both use Adam with warm-up and cosine decay, gradient-norm clipping, an
 * exponential moving average of the weights, and early stopping on the
 * held-out denoising loss of the averaged weights.
 *
 * Same options, data and n_threads give bit-identical models.
 */
#ifndef EBM_TRAIN_H
#define EBM_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebm/ebm.h"
#include "ebm/model.h"

enum ebm_objective {
	EBM_OBJECTIVE_DSM = 0,
	EBM_OBJECTIVE_CD,
};

bool ebm_objective_parse(const char *name, enum ebm_objective *out);
const char *ebm_objective_name(enum ebm_objective o);

struct ebm_train_options {
	enum ebm_objective objective;
	uint32_t n_layers;
	uint32_t hidden[EBM_MODEL_MAX_LAYERS];
	uint32_t n_members;       /* independently seeded members, averaged */
	uint32_t epochs;          /* upper bound; early stopping may end sooner */
	uint32_t max_steps;       /* optimizer steps per member at most, 0 = any */
	uint32_t batch;
	float lr;
	float beta1, beta2;       /* Adam moments */
	float weight_decay;       /* decoupled (AdamW) */
	float clip_norm;          /* gradient-norm clip, 0 = off */
	float warmup_frac;        /* fraction of steps with linear warm-up */
	float ema_decay;          /* weight averaging, 0 = off */
	float ema_power;          /* early on, weight step s by s^power */
	uint32_t patience;        /* dsm: epochs without improvement before stop */
	float reference_frac;     /* share of rows held out as reference set */
	uint32_t reference_min, reference_max;
	float val_frac;           /* share of rows held out for early stopping */
	float alpha;              /* default significance stored in the file */
	float prec_shrink;        /* base precision: (1-s) Cov + s I, inverted */
	bool robust_scale;        /* standardize by median and IQR, not mean/sd */
	/* dsm */
	float sigma_min, sigma_max;
	uint32_t n_sigmas;
	/* cd */
	uint32_t cd_steps;        /* Langevin steps per training step */
	float cd_step_size;       /* eps in x' = x + eps * grad f + noise */
	float cd_noise;           /* standard deviation of the Langevin noise */
	float cd_reinit;          /* fraction of chains restarted from noise */
	uint32_t cd_buffer;       /* replay buffer rows, >= batch for cd */
	float cd_energy_reg;      /* weight of f^2 penalty */
	/* prototype term (0 prototypes: none, a version-1 model) */
	uint32_t n_protos;        /* at most this many k-means centres */
	uint32_t proto_iters;     /* Lloyd passes */
	float proto_alpha;        /* bandwidth ~ local spacing^alpha, 0 = one h */
	float proto_net_weight;   /* lambda: F = lambda f / s_net + g / s_proto */
	bool proto_net_auto;      /* lambda chosen from the data instead */
	bool proto_net_noise;     /* auto also scores noisy copies (its first
	                           * version) */
	uint64_t seed;
	uint32_t n_threads;       /* worker threads, >= 1 */
	uint64_t created;         /* Unix seconds written to the file */
};

/* Fills in the shipped defaults (the ones bench/quality measured). */
void ebm_train_options_init(struct ebm_train_options *o);

/*
 * Checks every option against its documented range; the message names the
 * option ("lr must be > 0, got -1").
 */
enum ebm_status ebm_train_options_validate(const struct ebm_train_options *o,
		struct ebm_error *err);

/* Writes the options as "key=value\n" lines; returns a malloc'ed string. */
char *ebm_train_options_format(const struct ebm_train_options *o);

struct ebm_train_progress {
	uint32_t member, n_members;   /* 0-based member being trained */
	uint32_t epoch, n_epochs;     /* 1-based epoch just finished */
	uint64_t n_train_rows;        /* rows fitted (reference/val held out) */
	uint64_t rows_done;           /* training rows processed so far, all
	                               * members, counting repeats per epoch */
	double train_loss;
	double val_loss;              /* held-out denoising loss, EMA weights */
	double best_val_loss;         /* dsm: lowest so far; cd: NAN (not used) */
	double rows_per_s;            /* training rows processed per second */
	double elapsed_s;
	double eta_s;                 /* estimate of the time left */
	bool improved;
};

/* Return false to cancel training (ebm_train_fit then returns CANCELLED). */
typedef bool (*ebm_train_progress_fn)(const struct ebm_train_progress *p,
		void *user);

/*
 * Fits a model to n_rows x d raw rows (row-major). feature_names is NULL or
 * d distinct names (copied). On success *out owns the new model.
 * Errors: INVALID_ARGUMENT (options, too few rows, constant data is fine),
 * NUMERIC (non-finite input), DIVERGED, CANCELLED, NOMEM.
 */
enum ebm_status ebm_train_fit(const struct ebm_train_options *opt,
		const float *x, size_t n_rows, size_t d,
		const char *const *feature_names, ebm_train_progress_fn progress,
		void *user, struct ebm_model **out, struct ebm_error *err);

#endif
