/*
 * fake-core.c — TEMPORARY stand-ins for ebm_net_forward, ebm_net_input_grad
 * (src/core/member.c) and ebm_chain_run (src/core/sampler.c), which are
 * being written in parallel. Linked only into the model tests so that they
 * link today. Delete this file (and its mention in tests/meson.build) once
 * the real core lands.
 *
 * They are honest, naive implementations of core.h's definitions, one row
 * at a time with no BLAS:
 *   f(z) = -0.5 z'Pz + (1/K) sum_k (w_k' h_L + c_k), h_l = act(W_l h_{l-1} + b_l)
 * so the tests' hand-computed energies hold for the real core too.
 */
#include <math.h>
#include <string.h>

#include "core/core.h"

static float act(enum ebm_act a, float x)
{
	if (a == EBM_ACT_SOFTPLUS) {
		return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
	}
	return x / (1.0f + expf(-x));
}

static float act_grad(enum ebm_act a, float x)
{
	float s = 1.0f / (1.0f + expf(-x));
	if (a == EBM_ACT_SOFTPLUS) {
		return s;
	}
	return s + x * s * (1.0f - s);
}

static size_t sum_hidden(const struct ebm_net *net)
{
	size_t t = 0;
	for (uint32_t l = 0; l < net->n_layers; l++) {
		t += net->hidden[l];
	}
	return t;
}

/* f and (if g) df/dz of one row; scratch holds 3 * sum_hidden + d floats. */
static void one_row(const struct ebm_net *net, float *scratch, const float *z,
		float *f, float *g)
{
	size_t d = net->d, sh = sum_hidden(net);
	float *pre = scratch;           /* pre-activations, all layers */
	float *post = pre + sh;         /* activations, all layers */
	float *delta = post + sh;       /* backward, all layers */
	float *gz = delta + sh;         /* d */
	double acc = 0.0;
	for (size_t i = 0; i < d; i++) {
		for (size_t j = 0; j < d; j++) {
			acc -= 0.5 * (double)net->prec[i * d + j] * z[i] * z[j];
		}
	}
	if (g != NULL) {
		for (size_t i = 0; i < d; i++) {
			double s = 0.0;
			for (size_t j = 0; j < d; j++) {
				s += 0.5 * ((double)net->prec[i * d + j] +
						net->prec[j * d + i]) * z[j];
			}
			g[i] = (float)-s;
		}
	}
	double members = 0.0;
	for (uint32_t k = 0; k < net->n_members; k++) {
		const float *p = net->params + (size_t)k * net->n_params;
		const float *in = z;
		size_t n_in = d, off = 0;
		const float *wl[EBM_MODEL_MAX_LAYERS];
		for (uint32_t l = 0; l < net->n_layers; l++) {
			size_t h = net->hidden[l];
			const float *w = p, *b = p + h * n_in;
			wl[l] = w;
			for (size_t o = 0; o < h; o++) {
				double s = b[o];
				for (size_t i = 0; i < n_in; i++) {
					s += (double)w[o * n_in + i] * in[i];
				}
				pre[off + o] = (float)s;
				post[off + o] = act(net->act, (float)s);
			}
			p = b + h;
			in = post + off;
			n_in = h;
			off += h;
		}
		double m = p[n_in];
		for (size_t i = 0; i < n_in; i++) {
			m += (double)p[i] * in[i];
		}
		members += m;
		if (g == NULL) {
			continue;
		}
		/* Backward: dm/dh_L = w, then through each layer. */
		const float *up = p;  /* dm/d(post of current layer) */
		size_t l_off = off;
		memset(gz, 0, d * sizeof(float));
		for (uint32_t l = net->n_layers; l-- > 0;) {
			size_t h = net->hidden[l];
			l_off -= h;
			size_t prev = l == 0 ? d : net->hidden[l - 1];
			float *dl = delta + l_off;
			for (size_t o = 0; o < h; o++) {
				dl[o] = up[o] * act_grad(net->act, pre[l_off + o]);
			}
			float *down = l == 0 ? gz : delta + l_off - prev;
			for (size_t i = 0; i < prev; i++) {
				double s = 0.0;
				for (size_t o = 0; o < h; o++) {
					s += (double)wl[l][o * prev + i] * dl[o];
				}
				down[i] = (float)s;
			}
			up = down;
		}
		for (size_t i = 0; i < d; i++) {
			g[i] += gz[i] / (float)net->n_members;
		}
	}
	*f = (float)(acc + members / net->n_members);
}

bool ebm_net_forward(const struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, float *f)
{
	return ebm_net_input_grad(net, w, z, n, f, NULL);
}

bool ebm_net_input_grad(const struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, float *f, float *g)
{
	float *scratch = ebm_work_reserve(w, 3 * sum_hidden(net) + net->d);
	if (scratch == NULL) {
		return false;
	}
	for (size_t r = 0; r < n; r++) {
		one_row(net, scratch, z + r * net->d, &f[r],
				g ? g + r * net->d : NULL);
	}
	return true;
}

/* log q(to | from) up to a constant, for MALA's correction. */
static double log_q(const float *to, const float *from, const float *g_from,
		size_t d, float eps, float noise)
{
	double s = 0.0;
	for (size_t j = 0; j < d; j++) {
		double r = to[j] - from[j] - eps * g_from[j];
		s += r * r;
	}
	return -s / (2.0 * noise * noise);
}

bool ebm_chain_run(ebm_grad_fn fn, void *user, const struct ebm_chain_opts *o,
		struct ebm_rng *rng, float *z, size_t n, size_t d, float *scratch,
		uint64_t *accepted, uint64_t *proposed)
{
	float *g = scratch, *zp = g + n * d, *gp = zp + n * d;
	float *f = gp + n * d + n * d, *fp = f + n;
	float eps = o->step_size;
	float noise = o->noise < 0.0f ? sqrtf(2.0f * eps) : o->noise;
	*accepted = 0;
	*proposed = 0;
	if (!fn(user, z, n, f, g)) {
		return false;
	}
	for (size_t step = 0; step < o->n_steps; step++) {
		for (size_t i = 0; i < n * d; i++) {
			float e = (float)ebm_rng_normal(rng);
			if (o->sampler == EBM_SAMPLER_MH) {
				zp[i] = z[i] + eps * e;
			} else {
				zp[i] = z[i] + eps * g[i] + noise * e;
			}
		}
		if (!fn(user, zp, n, fp, gp)) {
			return false;
		}
		for (size_t r = 0; r < n; r++) {
			bool take = true;
			if (o->sampler != EBM_SAMPLER_LANGEVIN) {
				double la = (double)fp[r] - f[r];
				if (o->sampler == EBM_SAMPLER_MALA) {
					la += log_q(z + r * d, zp + r * d, gp + r * d, d, eps,
							noise) - log_q(zp + r * d, z + r * d,
							g + r * d, d, eps, noise);
				}
				take = la >= 0.0 || ebm_rng_uniform(rng) < exp(la);
			}
			(*proposed)++;
			if (take) {
				(*accepted)++;
				memcpy(z + r * d, zp + r * d, d * sizeof(float));
				memcpy(g + r * d, gp + r * d, d * sizeof(float));
				f[r] = fp[r];
			}
		}
	}
	return true;
}
