/*
 * repair.c — moving rows toward nearby likely points: descent on a
 * product's energy with a trust region and backtracking (contract in
 * include/ebm/product.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "ebm/product.h"

#define REPAIR_MAX_HALVINGS 20
#define REPAIR_MAX_GROWTH 32.0f
/* Heavy-ball momentum of the descent direction: in a narrow curved
 * valley (a cd network's energy far from the data) plain normalized
 * gradient steps zig-zag across it; the average direction follows it. */
#define REPAIR_MOMENTUM 0.7
/* The momentum direction is used only while it is this aligned with the
 * gradient (cosine); otherwise the step restarts from the gradient. */
#define REPAIR_MIN_COSINE 0.1

void ebm_repair_options_init(struct ebm_repair_options *o)
{
	o->steps = EBM_REPAIR_DEFAULT_STEPS;
	o->step_size = EBM_REPAIR_DEFAULT_STEP_SIZE;
	o->fixed = NULL;
}

enum ebm_status ebm_product_repair(const struct ebm_product *p,
		struct ebm_ctx *ctx, const struct ebm_repair_options *o,
		const float *x, size_t n_rows, float *out, float *energy_before,
		float *energy_after, struct ebm_error *err)
{
	if (o->steps < 1 || o->steps > EBM_REPAIR_MAX_STEPS) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"steps must be 1..%u, got %u", EBM_REPAIR_MAX_STEPS, o->steps);
	}
	if (!(o->step_size > 0.0f && o->step_size <= EBM_REPAIR_MAX_STEP_SIZE)) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"step_size must be in (0, %g], got %g",
				(double)EBM_REPAIR_MAX_STEP_SIZE, (double)o->step_size);
	}
	size_t d = p->d;
	/* "Standardized units" are those of the first expert. */
	const float *scale = p->models[0]->net.scale;
	float *e = ebm_work_reserve(&ctx->prod[EBM_PBUF_E], n_rows);
	float *g = ebm_work_reserve(&ctx->prod[EBM_PBUF_GRAD], n_rows * d);
	float *prop = ebm_work_reserve(&ctx->prod[EBM_PBUF_PTS], n_rows * d);
	float *aux = ebm_work_reserve(&ctx->prod[EBM_PBUF_AUX], 5 * n_rows);
	float *vel = ebm_work_reserve(&ctx->prod[EBM_PBUF_VEL], n_rows * d);
	if (n_rows > 0 && (e == NULL || g == NULL || prop == NULL || aux == NULL ||
			vel == NULL)) {
		return ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
	}
	float *e_prop = aux;          /* n_rows */
	float *h = aux + n_rows;      /* step scale of each row this step */
	float *active = aux + 2 * n_rows;
	float *rad = aux + 3 * n_rows; /* each row's trust radius */
	/* 1: this step goes along the momentum; 0: along u; -1: along u for
	 * good (a momentum step found no descent: the row is near a floor) */
	float *mom = aux + 4 * n_rows;
	memcpy(out, x, n_rows * d * sizeof(float));
	enum ebm_status st = ebm_product_eval(p, ctx, out, n_rows, e, NULL, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	if (energy_before != NULL) {
		memcpy(energy_before, e, n_rows * sizeof(float));
	}
	/* Trust region: a row starts with steps of `radius`; a step taken
	 * whole doubles its radius (up to REPAIR_MAX_GROWTH times the start),
	 * a step that had to be halved leaves the radius at what worked. So a
	 * row far out crosses the distance in few steps and a row near a
	 * minimum takes small ones. */
	float radius = o->step_size * sqrtf((float)d);
	float radius_max = radius * REPAIR_MAX_GROWTH;
	for (size_t i = 0; i < n_rows; i++) {
		active[i] = 1.0f;
		rad[i] = radius;
		mom[i] = 0.0f;
	}
	memset(vel, 0, n_rows * d * sizeof(float));
	for (uint32_t step = 0; step < o->steps; step++) {
		/* ebm_product_eval's gradient output is written over g. */
		float *e_tmp = e_prop;
		st = ebm_product_eval(p, ctx, out, n_rows, e_tmp, g, err);
		if (st != EBM_STATUS_OK) {
			return st;
		}
		/* Gradient in the first expert's standardized units, masked;
		 * direction normalized so that a full step moves `radius`. */
		size_t n_active = 0;
		for (size_t i = 0; i < n_rows; i++) {
			float *gi = g + i * d;
			double norm2 = 0.0;
			for (size_t j = 0; j < d; j++) {
				gi[j] = (o->fixed != NULL && o->fixed[j]) ? 0.0f
						: gi[j] * scale[j];
				norm2 += (double)gi[j] * gi[j];
			}
			if (active[i] == 0.0f || !(norm2 > 0.0)) {
				active[i] = 0.0f;
				h[i] = 0.0f;
				continue;
			}
			float inv = (float)(1.0 / sqrt(norm2));
			for (size_t j = 0; j < d; j++) {
				gi[j] *= inv;
			}
			/* v = momentum v + u (u the unit gradient); step along v/|v|
			 * while that still descends clearly, else restart at u. A
			 * fixed feature has u_j = 0 and v_j = 0 throughout. */
			float *vi = vel + i * d;
			double vv = 0.0, vu = 0.0;
			for (size_t j = 0; j < d; j++) {
				vi[j] = (float)(REPAIR_MOMENTUM * vi[j]) + gi[j];
				vv += (double)vi[j] * vi[j];
				vu += (double)vi[j] * gi[j];
			}
			if (mom[i] >= 0.0f && vv > 0.0 &&
					vu > REPAIR_MIN_COSINE * sqrt(vv)) {
				float vinv = (float)(1.0 / sqrt(vv));
				for (size_t j = 0; j < d; j++) {
					gi[j] = vi[j] * vinv;
				}
				mom[i] = 1.0f;
			} else {
				memcpy(vi, gi, d * sizeof(float));
				mom[i] = mom[i] < 0.0f ? -1.0f : 0.0f;
			}
			h[i] = rad[i];
			n_active++;
		}
		if (n_active == 0) {
			break;
		}
		for (int tries = 0; tries <= REPAIR_MAX_HALVINGS; tries++) {
			bool pending = false;
			for (size_t i = 0; i < n_rows; i++) {
				for (size_t j = 0; j < d; j++) {
					/* dz = -h g  =>  dx = scale * dz */
					prop[i * d + j] = out[i * d + j] -
							h[i] * g[i * d + j] * scale[j];
				}
			}
			st = ebm_product_eval(p, ctx, prop, n_rows, e_prop, NULL, err);
			if (st != EBM_STATUS_OK) {
				return st;
			}
			for (size_t i = 0; i < n_rows; i++) {
				if (h[i] == 0.0f) {
					continue;
				}
				if (e_prop[i] < e[i]) {
					memcpy(out + i * d, prop + i * d, d * sizeof(float));
					e[i] = e_prop[i];
					rad[i] = h[i] == rad[i] ? fminf(2.0f * h[i], radius_max)
							: h[i];
					h[i] = 0.0f;
				} else if (tries == REPAIR_MAX_HALVINGS && mom[i] > 0.0f) {
					/* momentum led nowhere: from here on, the gradient */
					mom[i] = -1.0f;
					h[i] = 0.0f;
				} else if (tries == REPAIR_MAX_HALVINGS) {
					active[i] = 0.0f; /* no descent left: a local minimum */
					h[i] = 0.0f;
				} else {
					h[i] *= 0.5f;
					pending = true;
				}
			}
			if (!pending) {
				break;
			}
		}
	}
	if (energy_after != NULL) {
		memcpy(energy_after, e, n_rows * sizeof(float));
	}
	return EBM_STATUS_OK;
}
