/*
 * member.c — one MLP member of the energy network with the Gaussian base:
 * f_k(z) = -0.5 z'Pz + w' h_L + c. Forward pass, input gradient (the
 * score), parameter gradient, and the exact gradient of the denoising
 * score-matching loss by double backpropagation. The whole-network
 * functions (members averaged) sit at the bottom.
 *
 * Notation for a batch of n rows (all matrices row-major, one row per
 * example): H_0 = Z, A_l = H_{l-1} W_l' + b_l, H_l = s(A_l); S1_l = s'(A_l),
 * S2_l = s''(A_l). First-order backward: Da_L = S1_L .* w, Dh_{l-1} =
 * Da_l W_l, Da_{l-1} = S1_{l-1} .* Dh_{l-1}; the score is Dh_0 - Z P.
 *
 * DSM needs d/dtheta of v . grad_z f for a fixed direction v per row, which
 * equals the directional derivative along v of df/dtheta (mixed partials
 * commute). So we push a tangent through the first-order pass:
 *   tangent forward:  Ht_0 = V, At_l = Ht_{l-1} W_l', Ht_l = S1_l .* At_l
 *   tangent backward: Dat_L = S2_L .* At_L .* w
 *                     Dht_{l-1} = Dat_l W_l
 *                     Dat_{l-1} = S2 .* At .* Dh + S1 .* Dht   (layer l-1)
 *   gradients:        dW_l = Dat_l' H_{l-1} + Da_l' Ht_{l-1}
 *                     db_l = colsum Dat_l,  dw = colsum Ht_L,  dc = 0
 * Rows of Dat and Da are stored stacked ([Dat; Da], 2n x h) as are H and Ht
 * ([H; Ht]), so each dW_l is a single GEMM with k = 2n.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "core/core.h"

/* ---- activations ---------------------------------------------------------- */

/*
 * expf for the activation loops, written so the compiler vectorizes it:
 * Cody-Waite reduction x = n ln2 + r, Cephes' degree-6 polynomial for e^r
 * (relative error about 2 ulp), 2^n assembled in the exponent bits. libm's
 * expf is a scalar call per element, which made the activations cost a
 * fifth of a training step. Inputs are clamped to [-60, 60]: the sigmoid
 * of a very negative input then bottoms out near 1e-26 instead of sliding
 * into subnormals, which made training several times slower. Past that
 * range SiLU and softplus are already at their asymptotes in float.
 */
static inline float vexpf(float x)
{
	/* A NaN must come out as NaN (so the caller sees a non-finite energy)
	 * without reaching the float-to-int conversion, where it is undefined
	 * behaviour: compute on 0 instead and blend the NaN back at the end.
	 * Ternaries, not fminf/fmaxf: those must honour NaN rules that keep
	 * them from vectorizing. */
	float xc = x == x ? x : 0.0f;
	xc = xc < -60.0f ? -60.0f : xc;
	xc = xc > 60.0f ? 60.0f : xc;
	/* Round to nearest by the 1.5 * 2^23 trick: floorf/rintf do not
	 * vectorize on baseline x86-64. */
	float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
	float r = xc - n * 0.693359375f;
	r = r + n * 2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
	float scale;
	memcpy(&scale, &bits, sizeof(scale));
	return x == x ? p * scale : x;
}

/*
 * Built twice, for baseline x86-64 and for AVX2 machines, and picked
 * at load time: 8-wide vectors halve the activations' share of a step.
 * Not under ThreadSanitizer: an ifunc resolver runs before its runtime is
 * up and crashes the program at load.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) \
		&& !defined(__SANITIZE_THREAD__)
#define EBM_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define EBM_VECTOR_CLONES
#endif

/* h = s(a), s1 = s'(a), s2 = s''(a) (s1/s2 may be NULL), elementwise. */
EBM_VECTOR_CLONES
static void act_eval(enum ebm_act act, size_t len, float *restrict h,
		float *restrict s1, float *restrict s2, const float *restrict a)
{
	if (act == EBM_ACT_SOFTPLUS) {
		for (size_t i = 0; i < len; i++) {
			float x = a[i];
			float e = vexpf(-fabsf(x));
			float sg = 1.0f / (1.0f + vexpf(-x));
			h[i] = fmaxf(x, 0.0f) + log1pf(e);
			if (s1 != NULL) {
				s1[i] = sg;
			}
			if (s2 != NULL) {
				s2[i] = sg * (1.0f - sg);
			}
		}
		return;
	}
	/* SiLU: s = a sg(a); s' = sg (1 + a (1 - sg));
	 * s'' = sg (1 - sg) (2 + a (1 - 2 sg)). Three loops so each one is a
	 * straight vectorizable body. */
	if (s1 == NULL) {
		for (size_t i = 0; i < len; i++) {
			float x = a[i];
			h[i] = x / (1.0f + vexpf(-x));
		}
		return;
	}
	if (s2 == NULL) {
		for (size_t i = 0; i < len; i++) {
			float x = a[i];
			float sg = 1.0f / (1.0f + vexpf(-x));
			h[i] = x * sg;
			s1[i] = sg * (1.0f + x * (1.0f - sg));
		}
		return;
	}
	for (size_t i = 0; i < len; i++) {
		float x = a[i];
		float sg = 1.0f / (1.0f + vexpf(-x));
		h[i] = x * sg;
		s1[i] = sg * (1.0f + x * (1.0f - sg));
		s2[i] = sg * (1.0f - sg) * (2.0f + x * (1.0f - 2.0f * sg));
	}
}

/* ---- parameter views ------------------------------------------------------ */

struct layer_view {
	const float *W;   /* h_out x h_in */
	const float *b;   /* h_out */
	size_t in, out;
	size_t off_W, off_b;
};

struct member_view {
	struct layer_view layer[EBM_MODEL_MAX_LAYERS];
	const float *w;   /* h_L */
	float c;
	size_t off_w, off_c;
};

static void member_view(const struct ebm_net *net, const float *params,
		struct member_view *v)
{
	size_t off = 0;
	size_t in = net->d;
	for (uint32_t l = 0; l < net->n_layers; l++) {
		size_t out = net->hidden[l];
		struct layer_view *lv = &v->layer[l];
		lv->in = in;
		lv->out = out;
		lv->off_W = off;
		lv->W = params + off;
		off += out * in;
		lv->off_b = off;
		lv->b = params + off;
		off += out;
		in = out;
	}
	v->off_w = off;
	v->w = params + off;
	off += in;
	v->off_c = off;
	v->c = params[off];
	assert(off + 1 == net->n_params);
}

/* A = H W' + b for n rows. */
static void affine(const struct layer_view *lv, const float *H, size_t n,
		float *A)
{
	for (size_t i = 0; i < n; i++) {
		memcpy(A + i * lv->out, lv->b, lv->out * sizeof(float));
	}
	if (n == 1) {
		/* One row (the daemon's common case): a matrix-vector product. */
		ebm_gemv(false, lv->out, lv->in, 1.0f, lv->W, lv->in, H, 1.0f, A);
		return;
	}
	ebm_gemm(false, true, n, lv->out, lv->in, 1.0f, H, lv->in, lv->W, lv->in,
			1.0f, A, lv->out);
}

/* f[i] += -0.5 z_i' P z_i and, if G, G[i] -= P z_i. PZ: n x d scratch. */
static void base_term(const struct ebm_net *net, const float *Z, size_t n,
		float *PZ, float *f, float *G)
{
	size_t d = net->d;
	ebm_gemm(false, false, n, d, d, 1.0f, Z, d, net->prec, d, 0.0f, PZ, d);
	for (size_t i = 0; i < n; i++) {
		double q = 0.0;
		for (size_t j = 0; j < d; j++) {
			q += (double)Z[i * d + j] * (double)PZ[i * d + j];
		}
		f[i] += (float)(-0.5 * q);
		if (G != NULL) {
			for (size_t j = 0; j < d; j++) {
				G[i * d + j] -= PZ[i * d + j];
			}
		}
	}
}

/* ---- scratch layout --------------------------------------------------------- */

/*
 * Per layer l (width h): HH (2n x h: H then Ht), S1, S2, DD (2n x h: Dat then
 * Da), DH (n x h, Dh_l), AT (n x h, At_l). Plus ZV (2n x d: Z then V),
 * G (n x d), PZ (n x d).
 */
struct tape {
	float *HH[EBM_MODEL_MAX_LAYERS];
	float *S1[EBM_MODEL_MAX_LAYERS];
	float *S2[EBM_MODEL_MAX_LAYERS];
	float *DD[EBM_MODEL_MAX_LAYERS];
	float *DH[EBM_MODEL_MAX_LAYERS];
	float *AT[EBM_MODEL_MAX_LAYERS];
	float *ZV, *G, *PZ;
};

static bool tape_init(const struct ebm_net *net, struct ebm_work *w, size_t n,
		bool second_order, struct tape *t)
{
	size_t per_layer = second_order ? 9 : 4;
	size_t total = 4 * n * net->d;
	for (uint32_t l = 0; l < net->n_layers; l++) {
		total += per_layer * n * net->hidden[l];
	}
	float *p = ebm_work_reserve(w, total);
	if (p == NULL) {
		return false;
	}
	memset(t, 0, sizeof(*t));
	for (uint32_t l = 0; l < net->n_layers; l++) {
		size_t nh = n * net->hidden[l];
		t->HH[l] = p; p += 2 * nh;
		t->S1[l] = p; p += nh;
		t->DH[l] = p; p += nh;
		if (second_order) {
			t->S2[l] = p; p += nh;
			t->DD[l] = p; p += 2 * nh;
			t->AT[l] = p; p += nh;
		} else {
			t->DD[l] = p - nh; /* Da lives in the DH slot's place */
		}
	}
	t->ZV = p; p += 2 * n * net->d;
	t->G = p; p += n * net->d;
	t->PZ = p;
	return true;
}

/* Forward pass storing H, S1 (and S2). Rows of Z are copied to ZV. */
static void forward(const struct ebm_net *net, const struct member_view *v,
		const struct tape *t, const float *Z, size_t n, bool second_order,
		float *f)
{
	size_t d = net->d;
	memcpy(t->ZV, Z, n * d * sizeof(float));
	const float *H = t->ZV;
	for (uint32_t l = 0; l < net->n_layers; l++) {
		const struct layer_view *lv = &v->layer[l];
		float *A = t->HH[l] + n * lv->out; /* Ht slot as scratch for A */
		affine(lv, H, n, A);
		act_eval(net->act, n * lv->out, t->HH[l], t->S1[l],
				second_order ? t->S2[l] : NULL, A);
		H = t->HH[l];
	}
	size_t hl = v->layer[net->n_layers - 1].out;
	for (size_t i = 0; i < n; i++) {
		f[i] = v->c;
	}
	ebm_gemv(false, n, hl, 1.0f, H, hl, v->w, 1.0f, f);
}

/*
 * First-order backward from row weights df (NULL = all ones): Da_l into
 * t->DD[l] (second half when second_order, i.e. rows n..2n-1), Dh_l into
 * t->DH[l] (second order only), and the input gradient of sum df_i m(z_i)
 * into G (without the base term) if G is not NULL.
 */
static void backward(const struct ebm_net *net, const struct member_view *v,
		const struct tape *t, size_t n, const float *df, bool second_order,
		float *G)
{
	uint32_t L = net->n_layers;
	for (uint32_t l = L; l-- > 0;) {
		size_t h = v->layer[l].out;
		float *Da = second_order ? t->DD[l] + n * h : t->DD[l];
		const float *S1 = t->S1[l];
		if (l == L - 1) {
			for (size_t i = 0; i < n; i++) {
				float s = df != NULL ? df[i] : 1.0f;
				for (size_t j = 0; j < h; j++) {
					Da[i * h + j] = S1[i * h + j] * v->w[j] * s;
				}
			}
		} else {
			const float *Dh = t->DH[l];
			for (size_t k = 0; k < n * h; k++) {
				Da[k] = S1[k] * Dh[k]; /* may alias Dh: same index */
			}
		}
		/* Dh_{l-1} = Da_l W_l, into the layer below's DH (or G). */
		size_t in = v->layer[l].in;
		float *Dh_below = l > 0 ? t->DH[l - 1] : G;
		if (Dh_below != NULL && n == 1) {
			ebm_gemv(true, h, in, 1.0f, v->layer[l].W, in, Da, 0.0f,
					Dh_below);
		} else if (Dh_below != NULL) {
			ebm_gemm(false, false, n, in, h, 1.0f, Da, h, v->layer[l].W, in,
					0.0f, Dh_below, in);
		}
	}
}

/* ---- public member functions -------------------------------------------------- */

bool ebm_member_input_grad(const struct ebm_net *net, const float *params,
		struct ebm_work *w, const float *z, size_t n, float *f, float *g)
{
	struct member_view v;
	struct tape t;
	member_view(net, params, &v);
	if (!tape_init(net, w, n, false, &t)) {
		return false;
	}
	forward(net, &v, &t, z, n, false, f);
	if (g != NULL) {
		backward(net, &v, &t, n, NULL, false, g);
	}
	base_term(net, z, n, t.PZ, f, g);
	return true;
}

bool ebm_member_mlp(const struct ebm_net *net, const float *params,
		struct ebm_work *w, const float *z, size_t n, float *m)
{
	struct member_view v;
	struct tape t;
	member_view(net, params, &v);
	if (!tape_init(net, w, n, false, &t)) {
		return false;
	}
	forward(net, &v, &t, z, n, false, m);
	return true;
}

bool ebm_member_param_grad(const struct ebm_net *net, const float *params,
		struct ebm_work *w, const float *z, size_t n, const float *df,
		float *f, float *grad)
{
	struct member_view v;
	struct tape t;
	member_view(net, params, &v);
	if (!tape_init(net, w, n, false, &t)) {
		return false;
	}
	float *fz = t.G; /* n floats of scratch are enough (G is n x d) */
	forward(net, &v, &t, z, n, false, fz);
	if (f != NULL) {
		memcpy(f, fz, n * sizeof(float));
		base_term(net, z, n, t.PZ, f, NULL);
	}
	uint32_t L = net->n_layers;
	size_t hl = v.layer[L - 1].out;
	/* dw = H_L' df, dc = sum df. */
	ebm_gemv(true, n, hl, 1.0f, t.HH[L - 1], hl, df, 1.0f, grad + v.off_w);
	double sdf = 0.0;
	for (size_t i = 0; i < n; i++) {
		sdf += df[i];
	}
	grad[v.off_c] += (float)sdf;
	/* Backward layer by layer, taking dW, db from each Da. */
	for (uint32_t l = L; l-- > 0;) {
		const struct layer_view *lv = &v.layer[l];
		size_t h = lv->out;
		float *Da = t.DD[l];
		if (l == L - 1) {
			for (size_t i = 0; i < n; i++) {
				for (size_t j = 0; j < h; j++) {
					Da[i * h + j] = t.S1[l][i * h + j] * v.w[j] * df[i];
				}
			}
		} else {
			for (size_t k = 0; k < n * h; k++) {
				Da[k] *= t.S1[l][k];
			}
		}
		const float *Hin = l > 0 ? t.HH[l - 1] : t.ZV;
		ebm_gemm(true, false, h, lv->in, n, 1.0f, Da, h, Hin, lv->in, 1.0f,
				grad + lv->off_W, lv->in);
		float *db = grad + lv->off_b;
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < h; j++) {
				db[j] += Da[i * h + j];
			}
		}
		if (l > 0) {
			/* Dh_{l-1} = Da W, written where layer l-1's Da lives;
			 * multiplied by S1 at the top of the next iteration. */
			ebm_gemm(false, false, n, lv->in, h, 1.0f, Da, h, lv->W, lv->in,
					0.0f, t.DD[l - 1], lv->in);
		}
	}
	return true;
}

bool ebm_member_dsm(const struct ebm_net *net, const float *params,
		struct ebm_work *w, const float *z, const float *eps,
		const float *sigma, size_t n, double *loss, float *grad)
{
	struct member_view v;
	struct tape t;
	size_t d = net->d;
	uint32_t L = net->n_layers;
	bool second = grad != NULL;
	member_view(net, params, &v);
	if (!tape_init(net, w, n, true, &t)) {
		return false;
	}
	/* Noisy input into G's place first (forward copies it into ZV). */
	float *Zt = t.G;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < d; j++) {
			Zt[i * d + j] = z[i * d + j] + sigma[i] * eps[i * d + j];
		}
	}
	float *fz = t.PZ; /* n floats; PZ is only needed after this */
	forward(net, &v, &t, Zt, n, second, fz);
	/* Input gradient G of the MLP, then the base term: G -= Zt P. */
	backward(net, &v, &t, n, NULL, true, t.G);
	ebm_gemm(false, false, n, d, d, -1.0f, t.ZV, d, net->prec, d, 1.0f, t.G,
			d);
	/* Residual r = sigma g + eps; loss 0.5 |r|^2; V = sigma r = dloss/dg. */
	float *V = t.ZV + n * d;
	double total = 0.0;
	for (size_t i = 0; i < n; i++) {
		double acc = 0.0;
		for (size_t j = 0; j < d; j++) {
			float r = sigma[i] * t.G[i * d + j] + eps[i * d + j];
			acc += (double)r * (double)r;
			V[i * d + j] = sigma[i] * r;
		}
		total += 0.5 * acc;
	}
	*loss = total;
	if (!second) {
		return true;
	}
	/* Tangent forward: At_l = Ht_{l-1} W_l', Ht_l = S1_l .* At_l. */
	const float *Ht = V;
	for (uint32_t l = 0; l < L; l++) {
		const struct layer_view *lv = &v.layer[l];
		size_t h = lv->out;
		float *At = t.AT[l];
		ebm_gemm(false, true, n, h, lv->in, 1.0f, Ht, lv->in, lv->W, lv->in,
				0.0f, At, h);
		float *Htl = t.HH[l] + n * h;
		const float *S1 = t.S1[l];
		for (size_t k = 0; k < n * h; k++) {
			Htl[k] = S1[k] * At[k];
		}
		Ht = Htl;
	}
	/* dw = colsum Ht_L. */
	size_t hl = v.layer[L - 1].out;
	float *dw = grad + v.off_w;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < hl; j++) {
			dw[j] += Ht[i * hl + j];
		}
	}
	/* Tangent backward with the parameter gradients. */
	for (uint32_t l = L; l-- > 0;) {
		const struct layer_view *lv = &v.layer[l];
		size_t h = lv->out;
		float *Dat = t.DD[l];
		const float *S2 = t.S2[l];
		const float *At = t.AT[l];
		if (l == L - 1) {
			for (size_t i = 0; i < n; i++) {
				for (size_t j = 0; j < h; j++) {
					size_t k = i * h + j;
					Dat[k] = S2[k] * At[k] * v.w[j];
				}
			}
		} else {
			/* Dat currently holds Dht_l (written by the layer above). */
			const float *S1 = t.S1[l];
			const float *Dh = t.DH[l];
			for (size_t k = 0; k < n * h; k++) {
				Dat[k] = S2[k] * At[k] * Dh[k] + S1[k] * Dat[k];
			}
		}
		/* dW_l = [Dat; Da]' [H_{l-1}; Ht_{l-1}] — stacked, one GEMM. */
		const float *HHin = l > 0 ? t.HH[l - 1] : t.ZV;
		ebm_gemm(true, false, h, lv->in, 2 * n, 1.0f, Dat, h, HHin, lv->in,
				1.0f, grad + lv->off_W, lv->in);
		float *db = grad + lv->off_b;
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < h; j++) {
				db[j] += Dat[i * h + j];
			}
		}
		if (l > 0) {
			ebm_gemm(false, false, n, lv->in, h, 1.0f, Dat, h, lv->W, lv->in,
					0.0f, t.DD[l - 1], lv->in);
		}
	}
	return true;
}

/* ---- whole network ------------------------------------------------------------- */

/* F = w_net * f + w_proto * g (core.h); the tape is no longer needed, so
 * its scratch is reused. */
static bool proto_term(const struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, float *f, float *g)
{
	const struct ebm_proto *p = &net->proto;
	size_t d = net->d;
	size_t extra = n + (g != NULL ? n * d : 0);
	float *s = ebm_work_reserve(w, ebm_proto_scratch(p, net->d, n) + extra);
	if (s == NULL) {
		return false;
	}
	float *pf = s, *pg = g != NULL ? s + n : NULL;
	ebm_proto_eval(p, net->d, z, n, s + extra, pf, pg);
	for (size_t i = 0; i < n; i++) {
		f[i] = p->w_net * f[i] + p->w_proto * pf[i];
	}
	if (g != NULL) {
		for (size_t q = 0; q < n * d; q++) {
			g[q] = p->w_net * g[q] + p->w_proto * pg[q];
		}
	}
	return true;
}

static bool net_eval(const struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, float *f, float *g)
{
	size_t d = net->d;
	float inv_k = 1.0f / (float)net->n_members;
	if (net->proto.n > 0 && net->proto.w_net == 0.0f) {
		/* The network has weight 0 (the default model: prototypes alone),
		 * so F is the prototype term alone and the members, as costly as
		 * the prototypes, are not evaluated: the same F as 0 * f + g. */
		for (size_t i = 0; i < n; i++) {
			f[i] = 0.0f;
		}
		if (g != NULL) {
			memset(g, 0, n * d * sizeof(float));
		}
		return proto_term(net, w, z, n, f, g);
	}
	struct tape t;
	if (!tape_init(net, w, n, false, &t)) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		f[i] = 0.0f;
	}
	if (g != NULL) {
		memset(g, 0, n * d * sizeof(float));
	}
	/* Members one after another through the same tape; each member's f
	 * lands in PZ and its input gradient in G before being averaged in. */
	for (uint32_t k = 0; k < net->n_members; k++) {
		struct member_view v;
		member_view(net, net->params + k * net->n_params, &v);
		forward(net, &v, &t, z, n, false, t.PZ);
		for (size_t i = 0; i < n; i++) {
			f[i] += inv_k * t.PZ[i];
		}
		if (g != NULL) {
			backward(net, &v, &t, n, NULL, false, t.G);
			for (size_t q = 0; q < n * d; q++) {
				g[q] += inv_k * t.G[q];
			}
		}
	}
	base_term(net, z, n, t.PZ, f, g);
	return net->proto.n == 0 || proto_term(net, w, z, n, f, g);
}

bool ebm_net_forward(const struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, float *f)
{
	return net_eval(net, w, z, n, f, NULL);
}

bool ebm_net_input_grad(const struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, float *f, float *g)
{
	return net_eval(net, w, z, n, f, g);
}
