/*
 * adam.c — Adam with decoupled weight decay (AdamW), global gradient-norm
 * clipping and an exponential moving average of the weights. Plain loops:
 * these are O(n_params) per step, dwarfed by the GEMMs.
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

double ebm_grad_clip(float *g, size_t n, float max_norm)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++) {
		s += (double)g[i] * (double)g[i];
	}
	double norm = sqrt(s);
	if (max_norm > 0.0f && norm > max_norm) {
		float k = (float)(max_norm / norm);
		for (size_t i = 0; i < n; i++) {
			g[i] *= k;
		}
	}
	return norm;
}

void ebm_adam_step(struct ebm_adam *a, float *p, const float *g, float lr,
		float beta1, float beta2, float weight_decay)
{
	a->t++;
	double bc1 = 1.0 - pow(beta1, (double)a->t);
	double bc2 = 1.0 - pow(beta2, (double)a->t);
	float step = (float)(lr / (bc1 > 0.0 ? bc1 : 1.0));
	float inv_bc2 = (float)(1.0 / bc2);
	float decay = 1.0f - lr * weight_decay;
	float *restrict m = a->m;
	float *restrict v = a->v;
	for (size_t i = 0; i < a->n; i++) {
		m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
		v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
		p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i] * inv_bc2) + 1e-8f);
	}
}

void ebm_ema_update(float *ema, const float *p, size_t n, float decay,
		uint64_t t)
{
	/* Early on the average would be dominated by the random start; the
	 * usual warm-up (1 + t) / (10 + t) lets it follow the weights. */
	float warm = (float)((1.0 + (double)t) / (10.0 + (double)t));
	float k = decay < warm ? decay : warm;
	for (size_t i = 0; i < n; i++) {
		ema[i] = k * ema[i] + (1.0f - k) * p[i];
	}
}
