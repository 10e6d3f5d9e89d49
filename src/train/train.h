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

struct ebm_adam {
	size_t n;
	uint64_t t;
	float *m, *v;
};

bool ebm_adam_init(struct ebm_adam *a, size_t n);
void ebm_adam_finish(struct ebm_adam *a);
/* p -= Adam step for gradient g; decoupled weight decay lr * wd * p. */
void ebm_adam_step(struct ebm_adam *a, float *p, const float *g, float lr,
		float beta1, float beta2, float weight_decay);
/* Scales g to norm max_norm if larger (0 = no clip); returns the norm
 * before clipping. */
double ebm_grad_clip(float *g, size_t n, float max_norm);
/* ema = k ema + (1 - k) p with k = min(decay, (1 + t) / (10 + t)). */
void ebm_ema_update(float *ema, const float *p, size_t n, float decay,
		uint64_t t);

/* In-place inverse of a symmetric positive-definite d x d matrix (double,
 * Cholesky). False if it is not positive definite. */
bool ebm_spd_inverse(double *a, size_t d);

#endif
