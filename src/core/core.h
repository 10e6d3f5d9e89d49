/*
 * core.h — the numeric core: the energy network, its gradients, samplers.
 * No I/O, no logging, no globals. Every dense product goes through
 * ebm_gemm()/ebm_gemv() (blas.c: OpenBLAS above a size threshold, the naive
 * reference below it and in tests).
 *
 * The network works in standardized units z = (x - mean) / scale:
 *
 *   f(z)     = base(z) + (1/K) sum_k m_k(z)        (log-density, up to Z)
 *   base(z)  = -0.5 z' P z                          (P symmetric, fixed)
 *   m_k(z)   = w' h_L + c,  h_l = act(W_l h_{l-1} + b_l),  h_0 = z
 *
 * With a prototype term (proto.n > 0, proto.c), the whole network is the
 * tempered product
 *   F(z) = w_net * f(z) + w_proto * g(z),
 *   g(z) = log sum_j exp(a_j - ||z - c_j||^2 / (2 h_j^2))
 * (see struct ebm_proto). Without one (proto.n == 0) F = f exactly.
 *
 * Member parameter layout (n_params floats, contiguous): for l = 1..L,
 * W_l (h_l x h_{l-1}, row-major) then b_l (h_l); then w (h_L), then c (1).
 *
 * Training works one member at a time on f_k(z) = base(z) + m_k(z); the
 * functions below that take `params` evaluate that single-member f_k with
 * the parameters given (so the trainer can pass averaged copies).
 *
 * Batches are row-major: n rows of d floats.
 */
#ifndef EBM_CORE_CORE_H
#define EBM_CORE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebm/model.h"
#include "util/util.h"

enum ebm_act {
	EBM_ACT_SILU = 0,
	EBM_ACT_SOFTPLUS = 1,
};
#define EBM_ACT_COUNT 2

const char *ebm_act_name(enum ebm_act a);

/*
 * Learned prototypes: a mixture of n isotropic Gaussians in standardized
 * units, centres c (n x d, row-major), bandwidths h (n), log weights logw
 * (n; the mixture weight plus the normalizing -d log h_j), and the two
 * weights of the tempered product. c_sq (||c_j||^2) and inv2h2
 * (1 / (2 h_j^2)) are derived: call ebm_proto_update() after changing c
 * or h.
 */
struct ebm_proto {
	uint32_t n;
	float w_net, w_proto;
	float *c;
	float *logw;
	float *h;
	float *c_sq;
	float *inv2h2;
};

struct ebm_net {
	uint32_t d;
	uint32_t n_members;
	uint32_t n_layers;
	uint32_t hidden[EBM_MODEL_MAX_LAYERS];
	enum ebm_act act;
	size_t n_params;  /* per member */
	float *mean;      /* d */
	float *scale;     /* d, > 0 */
	float *prec;      /* d x d, symmetric */
	float *params;    /* n_members x n_params */
	struct ebm_proto proto; /* n == 0: none */
};

/* Parameters of one member; 0 if the count overflows size_t. */
size_t ebm_net_param_count(uint32_t d, uint32_t n_layers,
		const uint32_t *hidden);

/*
 * Allocates zeroed arrays for the given shape (scale set to 1, P to 0).
 * Returns false (and leaves net zeroed) on overflow or allocation failure.
 */
bool ebm_net_init(struct ebm_net *net, uint32_t d, uint32_t n_members,
		uint32_t n_layers, const uint32_t *hidden, enum ebm_act act);
/* Frees the arrays; the struct may be reused with ebm_net_init. */
void ebm_net_finish(struct ebm_net *net);
/* Deep copy into dst (initialized by this call). */
bool ebm_net_copy(struct ebm_net *dst, const struct ebm_net *src);

/* Largest hidden width (or d if larger): sizes the scratch buffers. */
size_t ebm_net_max_width(const struct ebm_net *net);

/* z = (x - mean) / scale for n rows. */
void ebm_net_standardize(const struct ebm_net *net, const float *x, size_t n,
		float *z);
/* x = z * scale + mean for n rows. */
void ebm_net_unstandardize(const struct ebm_net *net, const float *z,
		size_t n, float *x);

/* ---- scratch ------------------------------------------------------------ */

/* Grows-only scratch buffer; one per thread. */
struct ebm_work {
	float *buf;
	size_t cap;   /* floats */
};
void ebm_work_init(struct ebm_work *w);
void ebm_work_finish(struct ebm_work *w);
/* Returns a buffer of at least n floats (contents undefined), or NULL. */
float *ebm_work_reserve(struct ebm_work *w, size_t n);

/* ---- whole network (all members averaged) ---------------------------- */

/* f[i] = f(z_i). Returns false only if scratch cannot be allocated. */
bool ebm_net_forward(const struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, float *f);
/* f[i] = f(z_i) and g[i*d + j] = df/dz_ij. */
bool ebm_net_input_grad(const struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, float *f, float *g);

/* ---- one member: f_k(z) = base(z) + m_k(z), params of that member ---- */

/* f = f_k(z); g (may be NULL) = grad_z f_k. */
bool ebm_member_input_grad(const struct ebm_net *net, const float *params,
		struct ebm_work *w, const float *z, size_t n, float *f, float *g);

/* m[i] = m_k(z_i): the MLP output alone, without the base term. */
bool ebm_member_mlp(const struct ebm_net *net, const float *params,
		struct ebm_work *w, const float *z, size_t n, float *m);

/*
 * Parameter gradient of sum_i df[i] * f_k(z_i): grad += that (n_params
 * floats, accumulated). f (may be NULL) receives f_k(z_i).
 */
bool ebm_member_param_grad(const struct ebm_net *net, const float *params,
		struct ebm_work *w, const float *z, size_t n, const float *df,
		float *f, float *grad);

/*
 * Denoising score matching on one batch: z clean rows, eps standard normal
 * noise (n x d), sigma[i] the noise level of row i. The loss of row i is
 *   0.5 * || sigma_i * grad f_k(z_i + sigma_i eps_i) + eps_i ||^2
 * (= sigma^2-weighted DSM). Returns the summed loss in *loss and, when
 * grad is not NULL, accumulates its exact parameter gradient (double
 * backpropagation) into grad.
 */
bool ebm_member_dsm(const struct ebm_net *net, const float *params,
		struct ebm_work *w, const float *z, const float *eps,
		const float *sigma, size_t n, double *loss, float *grad);

/* ---- prototype term (proto.c) ------------------------------------------ */

/* Zeroed arrays for n prototypes of d features (n == 0: none, no arrays);
 * every h_j, w_net and w_proto start at 1. False on overflow or
 * allocation failure. */
bool ebm_proto_init(struct ebm_proto *p, uint32_t n, uint32_t d);
void ebm_proto_finish(struct ebm_proto *p);
bool ebm_proto_copy(struct ebm_proto *dst, const struct ebm_proto *src,
		uint32_t d);
/* Recomputes c_sq and inv2h2 from c and h. */
void ebm_proto_update(struct ebm_proto *p, uint32_t d);
/* Floats of scratch ebm_proto_eval() needs for n rows. */
size_t ebm_proto_scratch(const struct ebm_proto *p, uint32_t d, size_t n);
/* g[i] = g(z_i) (without the weights); grad (may be NULL) = dg/dz. */
void ebm_proto_eval(const struct ebm_proto *p, uint32_t d, const float *z,
		size_t n, float *scratch, float *g, float *grad);

/* ---- dense products (blas.c) --------------------------------------------
 * Row-major C = alpha * op(A) op(B) + beta * C with op(A) m x k, op(B) k x n.
 */
void ebm_gemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
		float alpha, const float *a, size_t lda, const float *b, size_t ldb,
		float beta, float *c, size_t ldc);
/* y = alpha * op(A) x + beta * y, A m x n row-major. */
void ebm_gemv(bool trans_a, size_t m, size_t n, float alpha, const float *a,
		size_t lda, const float *x, float beta, float *y);
/* The reference versions, always built; tests compare against them. */
void ebm_gemm_ref(bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
		float alpha, const float *a, size_t lda, const float *b, size_t ldb,
		float beta, float *c, size_t ldc);
void ebm_gemv_ref(bool trans_a, size_t m, size_t n, float alpha,
		const float *a, size_t lda, const float *x, float beta, float *y);
/* Sets BLAS's own thread count (call once at start-up). */
void ebm_blas_set_threads(int n);
/* Forces the reference path (tests); returns the previous setting. */
bool ebm_blas_force_ref(bool on);

/* ---- samplers (sampler.c) ----------------------------------------------- */

/*
 * An energy-gradient oracle in standardized space: f and grad_z f of n
 * rows. Returns false on failure (scratch).
 */
typedef bool (*ebm_grad_fn)(void *user, const float *z, size_t n, float *f,
		float *g);

struct ebm_chain_opts {
	enum ebm_sampler sampler;
	size_t n_steps;
	float step_size;     /* eps */
	float noise;         /* Langevin noise std; < 0 means sqrt(2 eps) */
	float grad_clip;     /* per-coordinate clip of the drift, 0 = off */
	const float *lo, *hi;/* optional per-feature clamp box (d floats) */
};

/*
 * Runs n chains of dimension d in place on z (n x d) for n_steps steps.
 * scratch must hold 4*n*d + 2*n floats. *accepted receives the number of
 * accepted proposals (all, for unadjusted Langevin); *proposed the total.
 */
bool ebm_chain_run(ebm_grad_fn fn, void *user, const struct ebm_chain_opts *o,
		struct ebm_rng *rng, float *z, size_t n, size_t d, float *scratch,
		uint64_t *accepted, uint64_t *proposed);

#endif
