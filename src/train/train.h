/*
 * train.h (internal) — the trainer's pieces shared by its files: Adam and
 * the weight average (adam.c), the base fit (base.c), the worker pool
 * (pool.c), one training step (step.c) and the loop (train.c).
 */
#ifndef EBM_TRAIN_TRAIN_H
#define EBM_TRAIN_TRAIN_H

#include <pthread.h>
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

/* ---- pool.c: the worker threads ---------------------------------------------- */

/* Runs on worker `id` (0 .. n - 1; 0 is the thread that called run). */
typedef void (*ebm_pool_fn)(void *arg, unsigned id);

struct ebm_pool_thread;

struct ebm_pool {
	unsigned n;                       /* workers, the caller included */
	unsigned n_started;               /* threads running (n - 1 after init) */
	struct ebm_pool_thread *threads;
	pthread_mutex_t mu;
	pthread_cond_t cv_start, cv_done;
	uint64_t generation;              /* one per run, and one to quit */
	unsigned pending;                 /* threads still running fn */
	ebm_pool_fn fn;
	void *arg;
	bool quit;
};

/* Starts n - 1 threads (n >= 1). False, with nothing left running, if a
 * thread cannot be started or memory is short. */
bool ebm_pool_init(struct ebm_pool *p, unsigned n);
/* fn(arg, id) on every worker at once; returns when all have returned. */
void ebm_pool_run(struct ebm_pool *p, ebm_pool_fn fn, void *arg);
/* Stops and joins the threads; safe after a failed or no init. */
void ebm_pool_finish(struct ebm_pool *p);

/* ---- the trainer (train.c, step.c) ---------------------------------------------- */

/* Per-coordinate drift clip and clamp margin (standardized units) of the
 * CD chains. */
#define CD_GRAD_CLIP 5.0f
#define CD_MARGIN 1.0f

enum job {
	JOB_DSM,       /* gradients of one DSM batch, per worker */
	JOB_CD,        /* gradients of one CD batch, per worker */
	JOB_REDUCE,    /* sum worker gradients over a parameter slice */
	JOB_UPDATE,    /* Adam and weight averaging over a parameter slice */
};

struct trainer;

struct worker {
	struct trainer *tr;
	unsigned id;
	struct ebm_work work;
	float *grad;      /* n_params */
	float *z;         /* shard x d: data rows */
	float *eps;       /* shard x d: DSM noise */
	float *sigma;     /* shard */
	float *zs;        /* shard x d: CD samples */
	float *m;         /* 2 x shard: CD outputs */
	float *df;        /* 2 x shard: CD row weights */
	float *chain;     /* chain scratch */
	double loss;
	double sumsq;     /* JOB_REDUCE: squared norm of its slice */
	bool ok;
};

/* Values of lambda --proto-net-weight auto chooses from. */
#define EBM_TRAIN_N_WEIGHTS 6

/* How lambda came about. */
struct ebm_train_weighing {
	float lambda;                        /* the weight used */
	/* auto: the grid (ebm_train_net_weight_grid's order) and each
	 * value's criterion, the mean AUROC */
	float grid[EBM_TRAIN_N_WEIGHTS];
	double auroc[EBM_TRAIN_N_WEIGHTS];
};

struct trainer {
	const struct ebm_train_options *o;
	struct ebm_net net;        /* shape, standardization, base; params of
	                            * all members as they are finished */
	size_t d, n_params;
	const float *ztrain;       /* standardized training rows */
	size_t n_train;
	size_t *order;             /* shuffled row order of this epoch */
	float *sigmas;             /* the noise ladder */
	float *lo, *hi;            /* CD clamp box */
	float *buffer;             /* CD replay buffer, cd_buffer x d */
	size_t *slots;             /* CD buffer slot permutation */
	size_t slot_pos;
	struct ebm_rng slot_rng;
	size_t *cd_used;           /* batch: the slot each chain of the step used */
	struct ebm_train_weighing weighing;   /* the network's weight next to
	                                      * the prototypes */
	const struct ebm_train_probe *probe;
	/* the current job */
	float *params;             /* member being trained */
	float *grad;               /* reduced gradient (JOB_REDUCE) */
	float *ema;                /* averaged weights, NULL when off */
	struct ebm_adam adam;
	struct ebm_adam_step astep;
	uint32_t member;
	uint64_t step;
	size_t batch_start, batch_len;
	enum job job;
	/* the workers: scratch of each, and the threads that run them */
	unsigned n_workers;
	struct worker *workers;
	struct ebm_pool pool;
};

/* A generator seed from the run's seed and three indices. */
static inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b,
		uint64_t c)
{
	uint64_t h = seed ^ 0x243f6a8885a308d3ull;
	uint64_t parts[3] = {a, b, c};
	for (int i = 0; i < 3; i++) {
		h ^= parts[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 33;
	}
	return h;
}

/* Worker id's share [*start, *start + *count) of len items. */
static inline void shard(size_t len, unsigned n_workers, unsigned id,
		size_t *start, size_t *count)
{
	size_t a = len * id / n_workers;
	size_t b = len * (id + 1) / n_workers;
	*start = a;
	*count = b - a;
}

/* step.c: the workers' scratch for batches of up to o->batch rows, and
 * the pool (false if memory or a thread is short; finish is safe then). */
bool ebm_train_workers_init(struct trainer *tr);
void ebm_train_workers_finish(struct trainer *tr);
/* step.c: runs tr->job on every worker and waits. */
void ebm_train_dispatch(struct trainer *tr);
/* step.c: the CD replay buffer, fresh for member k (false: no memory),
 * and the slots of the next batch. */
bool ebm_train_replay_reset(struct trainer *tr, uint32_t k);
void ebm_train_pick_slots(struct trainer *tr);

/* base.c: standardization and the Gaussian base from the training rows. */
bool ebm_train_fit_base(struct ebm_net *net, const float *x,
		const size_t *rows, size_t n, float shrink, bool robust);

/* ---- prototype term (proto.c) ---------------------------------------- */

/*
 * Centres (k-means of the n rows z, at most max, `iters` Lloyd passes
 * from rows drawn by seed; every row when n <= max), log weights (shares
 * of rows) and bandwidths (h_j = h (r_j / median r)^alpha, h by held-out
 * log-likelihood of zval; see proto.c) into p, which this initializes.
 * Errors: NOMEM, INVALID_ARGUMENT (no validation rows).
 */
enum ebm_status ebm_train_fit_protos(struct ebm_proto *p, uint32_t d,
		const float *z, size_t n, const float *zval, size_t n_val,
		uint32_t max, uint32_t iters, float alpha, uint64_t seed,
		struct ebm_error *err);

/*
 * Fits the prototypes (o->n_protos > 0) and attaches them to the trained
 * net as the tempered product F = lambda f / s_net + g / s_proto, s the
 * spread of each term's values on the validation rows; lambda is
 * o->proto_net_weight, or with o->proto_net_auto the choice of weigh.c.
 * *wt receives the weight used (and, with auto, the criterion).
 */
enum ebm_status ebm_train_protos(struct ebm_net *net, struct ebm_work *w,
		const float *z, size_t n, const float *zval, size_t n_val,
		const struct ebm_train_options *o, struct ebm_train_weighing *wt,
		struct ebm_error *err);

/* ---- the network's weight next to the prototypes (weigh.c) ------------ */

/* P(pos > neg) + P(pos == neg) / 2 over all pairs; NAN when either set is
 * empty or on allocation failure. */
double ebm_train_auroc(const float *neg, size_t n_neg, const float *pos,
		size_t n_pos);

/* The grid lambda is chosen from, in tie-breaking order; returns its size. */
size_t ebm_train_net_weight_grid(const float **values);

/*
 * The lambda of the grid whose score -(lambda f / s_net + g / s_proto)
 * best tells n clean rows (terms fn, fg) from each of n_sets perturbed
 * sets of n_p rows (fn_p[k], fg_p[k]): the largest mean AUROC, ties to
 * the earlier grid value. crit (may be NULL) receives each grid value's
 * mean AUROC. Returns NAN on allocation failure.
 */
float ebm_train_pick_net_weight(const float *fn, const float *fg, size_t n,
		const float *const *fn_p, const float *const *fg_p, size_t n_sets,
		size_t n_p, float s_net, float s_proto, double *crit);

/*
 * --proto-net-weight auto: perturbs the n_val validation rows zval (their
 * network and prototype terms fn, fg) with features swapped in from the
 * n training rows z (and, with noise, a second time with small Gaussian
 * noise), and picks lambda by
 * ebm_train_pick_net_weight (see weigh.c) into wt. The net must not carry
 * the prototypes p yet. Errors: NOMEM.
 */
enum ebm_status ebm_train_choose_net_weight(struct ebm_net *net,
		struct ebm_work *w, const struct ebm_proto *p, const float *z,
		size_t n, const float *zval, size_t n_val, const float *fn,
		const float *fg, float s_net, float s_proto, bool noise,
		uint64_t seed, struct ebm_train_weighing *wt, struct ebm_error *err);

/* Prototypes and a network of weight 0: the network is not trained. */
static inline bool ebm_train_protos_alone(const struct ebm_train_options *o)
{
	return o->n_protos > 0 && !o->proto_net_auto &&
			o->proto_net_weight == 0.0f;
}

#endif
