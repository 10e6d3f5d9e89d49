/*
 * adam.c — Adam with decoupled weight decay (AdamW) and an exponential
 * moving average of the weights, over slices of the parameter vector so
 * that the trainer's workers can update disjoint ranges in parallel.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

bool ebm_adam_init(struct ebm_adam *a, size_t n)
{
	memset(a, 0, sizeof(*a));
	a->n = n;
	a->m = calloc(n, sizeof(float));
	a->v = calloc(n, sizeof(float));
	if (a->m == NULL || a->v == NULL) {
		ebm_adam_finish(a);
		return false;
	}
	return true;
}

void ebm_adam_finish(struct ebm_adam *a)
{
	free(a->m);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

double ebm_sumsq(const float *g, size_t begin, size_t end)
{
	double s = 0.0;
	for (size_t i = begin; i < end; i++) {
		s += (double)g[i] * (double)g[i];
	}
	return s;
}

void ebm_adam_update(struct ebm_adam *a, const struct ebm_adam_step *s,
		float *p, const float *g, size_t begin, size_t end)
{
	double bc1 = 1.0 - pow(s->beta1, (double)s->t);
	double bc2 = 1.0 - pow(s->beta2, (double)s->t);
	float step = (float)(s->lr / (bc1 > 0.0 ? bc1 : 1.0));
	float inv_bc2 = (float)(1.0 / bc2);
	float decay = 1.0f - s->lr * s->weight_decay;
	float b1 = s->beta1, b2 = s->beta2, gs = s->grad_scale;
	float *restrict m = a->m;
	float *restrict v = a->v;
	float *restrict pp = p;
	for (size_t i = begin; i < end; i++) {
		float gi = g[i] * gs;
		m[i] = b1 * m[i] + (1.0f - b1) * gi;
		v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
		pp[i] = pp[i] * decay - step * m[i] / (sqrtf(v[i] * inv_bc2) + 1e-8f);
	}
}

void ebm_ema_update(float *ema, const float *p, size_t begin, size_t end,
		float decay, float power, uint64_t t)
{
	/* Early on a plain EMA would be dominated by the random start. With
	 * k_t = (t+1)/(t+2+power) the average of steps 1..t+1 weights step s
	 * in proportion to about s^power (polynomial-decay averaging); power 8
	 * is the usual warm-up (1 + t) / (10 + t), power 0 a uniform average.
	 * Once k_t reaches the decay, the EMA takes over. */
	float warm = (float)((1.0 + (double)t) / (2.0 + (double)power +
			(double)t));
	float k = decay < warm ? decay : warm;
	for (size_t i = begin; i < end; i++) {
		ema[i] = k * ema[i] + (1.0f - k) * p[i];
	}
}
