/*
 * train.h (internal) — optimizer pieces shared by the trainer's files.
 */
#ifndef EBM_TRAIN_TRAIN_H
#define EBM_TRAIN_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "ebm/train.h"

/* Adam moments for n parameters; the step counter is the caller's. */
struct ebm_adam {
	size_t n;
	float *m, *v;
};

struct ebm_adam_step {
	uint64_t t;          /* 1-based step number (bias correction) */
	float lr;
	float beta1, beta2;
	float weight_decay;  /* decoupled: p *= 1 - lr * weight_decay */
	float grad_scale;    /* applied to g first (1/batch times the clip) */
};

bool ebm_adam_init(struct ebm_adam *a, size_t n);
void ebm_adam_finish(struct ebm_adam *a);
/*
 * One Adam step on parameters [begin, end): p, g indexed from 0 like the
 * moments. Slices of one step may run on different threads.
 */
void ebm_adam_update(struct ebm_adam *a, const struct ebm_adam_step *s,
		float *p, const float *g, size_t begin, size_t end);
/* Sum of squares of g[begin, end), in double. */
double ebm_sumsq(const float *g, size_t begin, size_t end);
/*
 * ema = k ema + (1 - k) p on [begin, end), k = min(decay, (t+1)/(t+2+power))
 * for the 0-based step t: until the decay caps it, the average weights
 * step s in proportion to s^power (power 0: all steps alike).
 */
void ebm_ema_update(float *ema, const float *p, size_t begin, size_t end,
		float decay, float power, uint64_t t);

/*
 * What the trainer did, for tests: ebm_train_fit_probed() is
 * ebm_train_fit() with these callbacks (any may be NULL), called on the
 * calling thread.
 */
struct ebm_train_probe {
	/* After every CD step: the replay-buffer slot each of the n chains of
	 * the batch started from and was written back to, in batch order. */
	void (*cd_step)(void *user, uint32_t member, uint64_t step,
			const size_t *slots, size_t n);
	void *user;
};

enum ebm_status ebm_train_fit_probed(const struct ebm_train_options *opt,
		const float *x, size_t n_rows, size_t d,
		const char *const *feature_names, ebm_train_progress_fn progress,
		void *user, const struct ebm_train_probe *probe,
		struct ebm_model **out, struct ebm_error *err);

/* In-place inverse of a symmetric positive-definite d x d matrix (double,
 * Cholesky). False if it is not positive definite. */
bool ebm_spd_inverse(double *a, size_t d);

#endif
