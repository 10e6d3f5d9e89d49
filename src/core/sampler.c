/*
 * sampler.c — MCMC on an energy model through a gradient oracle:
 * unadjusted Langevin (training's short-run chains), MALA, and random-walk
 * Metropolis-Hastings. The MH tests use only differences of f, so the
 * partition function never appears.
 */
#include <math.h>
#include <string.h>

#include "core/core.h"

static float clipf(float v, float c)
{
	if (c <= 0.0f) {
		return v;
	}
	return v > c ? c : (v < -c ? -c : v);
}

static bool in_box(const struct ebm_chain_opts *o, const float *z, size_t d)
{
	if (o->lo == NULL || o->hi == NULL) {
		return true;
	}
	for (size_t j = 0; j < d; j++) {
		if (!(z[j] >= o->lo[j] && z[j] <= o->hi[j])) {
			return false;
		}
	}
	return true;
}

/* Langevin drift mean(z) = z + eps * clip(g). */
static void drift(const struct ebm_chain_opts *o, const float *z,
		const float *g, size_t len, float *out)
{
	for (size_t k = 0; k < len; k++) {
		out[k] = z[k] + o->step_size * clipf(g[k], o->grad_clip);
	}
}

static bool langevin(ebm_grad_fn fn, void *user,
		const struct ebm_chain_opts *o, struct ebm_rng *rng, float *z,
		size_t n, size_t d, float *f, float *g, float *xi)
{
	size_t len = n * d;
	float noise = o->noise < 0.0f ? sqrtf(2.0f * o->step_size) : o->noise;
	for (size_t s = 0; s < o->n_steps; s++) {
		if (!fn(user, z, n, f, g)) {
			return false;
		}
		ebm_rng_normal_fill(rng, xi, len);
		drift(o, z, g, len, z);
		for (size_t k = 0; k < len; k++) {
			z[k] += noise * xi[k];
		}
		if (o->lo != NULL && o->hi != NULL) {
			for (size_t k = 0; k < len; k++) {
				size_t j = k % d;
				z[k] = fminf(fmaxf(z[k], o->lo[j]), o->hi[j]);
			}
		}
	}
	return true;
}

static bool metropolis(ebm_grad_fn fn, void *user,
		const struct ebm_chain_opts *o, struct ebm_rng *rng, float *z,
		size_t n, size_t d, float *scratch, uint64_t *accepted)
{
	bool mala = o->sampler == EBM_SAMPLER_MALA;
	size_t len = n * d;
	float *g = scratch;
	float *zp = g + len;
	float *gp = zp + len;
	float *xi = gp + len;
	float *f = xi + len;
	float *fp = f + n;
	float eps = o->step_size;
	float sd = mala ? sqrtf(2.0f * eps) : eps;
	if (!fn(user, z, n, f, g)) {
		return false;
	}
	for (size_t s = 0; s < o->n_steps; s++) {
		ebm_rng_normal_fill(rng, xi, len);
		if (mala) {
			drift(o, z, g, len, zp);
		} else {
			memcpy(zp, z, len * sizeof(float));
		}
		for (size_t k = 0; k < len; k++) {
			zp[k] += sd * xi[k];
		}
		if (!fn(user, zp, n, fp, gp)) {
			return false;
		}
		for (size_t i = 0; i < n; i++) {
			const float *zi = z + i * d;
			const float *zpi = zp + i * d;
			double log_a = (double)fp[i] - (double)f[i];
			if (mala) {
				/* log q(z | z') - log q(z' | z), q = N(mean(.), 2 eps I). */
				double fwd = 0.0, rev = 0.0;
				for (size_t j = 0; j < d; j++) {
					double mf = zi[j] + eps * clipf(g[i * d + j], o->grad_clip);
					double mr = zpi[j] +
							eps * clipf(gp[i * d + j], o->grad_clip);
					fwd += (zpi[j] - mf) * (zpi[j] - mf);
					rev += (zi[j] - mr) * (zi[j] - mr);
				}
				log_a += (fwd - rev) / (4.0 * eps);
			}
			bool ok = isfinite(log_a) && in_box(o, zpi, d) &&
					(log_a >= 0.0 || log(ebm_rng_uniform(rng)) < log_a);
			if (ok) {
				memcpy(z + i * d, zpi, d * sizeof(float));
				memcpy(g + i * d, gp + i * d, d * sizeof(float));
				f[i] = fp[i];
				(*accepted)++;
			}
		}
	}
	return true;
}

bool ebm_chain_run(ebm_grad_fn fn, void *user, const struct ebm_chain_opts *o,
		struct ebm_rng *rng, float *z, size_t n, size_t d, float *scratch,
		uint64_t *accepted, uint64_t *proposed)
{
	*accepted = 0;
	*proposed = (uint64_t)n * o->n_steps;
	if (o->sampler == EBM_SAMPLER_LANGEVIN) {
		float *g = scratch;
		float *xi = g + n * d;
		float *f = xi + n * d;
		if (!langevin(fn, user, o, rng, z, n, d, f, g, xi)) {
			return false;
		}
		*accepted = *proposed;
		return true;
	}
	return metropolis(fn, user, o, rng, z, n, d, scratch, accepted);
}

bool ebm_sampler_parse(const char *name, enum ebm_sampler *out)
{
	static const char *const names[] = {"langevin", "mala", "mh"};
	if (name == NULL) {
		return false;
	}
	for (int i = 0; i < 3; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum ebm_sampler)i;
			return true;
		}
	}
	return false;
}

const char *ebm_sampler_name(enum ebm_sampler s)
{
	switch (s) {
	case EBM_SAMPLER_LANGEVIN: return "langevin";
	case EBM_SAMPLER_MALA: return "mala";
	case EBM_SAMPLER_MH: return "mh";
	}
	return "unknown";
}
