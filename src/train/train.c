/*
 * train.c — ebm_train_fit: split the rows, fit standardization and the
 * Gaussian base, train each MLP member with DSM or CD on a small pool of
 * worker threads, keep the best weight average by held-out denoising loss,
 * and assemble the model with its scored reference set.
 *
 * Determinism: every random draw comes from a generator seeded by (seed,
 * member, step, worker), a batch is split over workers the same way every
 * time, and per-worker gradients are summed in worker order; the same
 * options, data and thread count therefore give the same bits.
 * BLAS runs single-threaded inside workers (its own threads would fight
 * ours for the cores).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "train/train.h"

/* Fewer rows than this cannot be split into training, validation and a
 * reference set worth the name. */
#define MIN_ROWS 20
/* Rows of the validation set evaluated per call (bounds scratch size). */
#define VAL_CHUNK 1024
/* Per-coordinate drift clip and clamp margin (standardized units) of the
 * CD chains. */
#define CD_GRAD_CLIP 5.0f
#define CD_MARGIN 1.0f

enum job {
	JOB_NONE,
	JOB_DSM,       /* gradients of one DSM batch, per worker */
	JOB_CD,        /* gradients of one CD batch, per worker */
	JOB_REDUCE,    /* sum worker gradients over a parameter slice */
	JOB_UPDATE,    /* Adam and weight averaging over a parameter slice */
	JOB_QUIT,
};

struct trainer;

struct worker {
	struct trainer *tr;
	unsigned id;
	pthread_t thread;
	bool started;
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
	/* pool */
	unsigned n_workers;
	struct worker *workers;
	pthread_mutex_t mu;
	pthread_cond_t cv_start, cv_done;
	uint64_t generation;
	unsigned pending;
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
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

static void shard(size_t len, unsigned n_workers, unsigned id, size_t *start,
		size_t *count)
{
	size_t a = len * id / n_workers;
	size_t b = len * (id + 1) / n_workers;
	*start = a;
	*count = b - a;
}

static bool all_finite(const float *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(p[i])) {
			return false;
		}
	}
	return true;
}

/* ---- per-worker jobs --------------------------------------------------------- */

static void gather(const struct trainer *tr, size_t first, size_t count,
		float *z)
{
	for (size_t i = 0; i < count; i++) {
		size_t row = tr->order[tr->batch_start + first + i];
		memcpy(z + i * tr->d, tr->ztrain + row * tr->d, tr->d * sizeof(float));
	}
}

static bool job_dsm(struct worker *w)
{
	struct trainer *tr = w->tr;
	size_t first, count;
	shard(tr->batch_len, tr->n_workers, w->id, &first, &count);
	if (count == 0) {
		return true;
	}
	struct ebm_rng rng;
	ebm_rng_init(&rng, mix_seed(tr->o->seed, tr->member, tr->step, w->id));
	gather(tr, first, count, w->z);
	ebm_rng_normal_fill(&rng, w->eps, count * tr->d);
	for (size_t i = 0; i < count; i++) {
		w->sigma[i] = tr->sigmas[ebm_rng_below(&rng, tr->o->n_sigmas)];
	}
	return ebm_member_dsm(&tr->net, tr->params, &w->work, w->z, w->eps,
			w->sigma, count, &w->loss, w->grad);
}

struct oracle {
	const struct ebm_net *net;
	const float *params;
	struct ebm_work *work;
};

static bool oracle_fn(void *user, const float *z, size_t n, float *f, float *g)
{
	struct oracle *o = user;
	return ebm_member_input_grad(o->net, o->params, o->work, z, n, f, g);
}

static bool job_cd(struct worker *w)
{
	struct trainer *tr = w->tr;
	const struct ebm_train_options *o = tr->o;
	size_t d = tr->d;
	size_t first, count;
	shard(tr->batch_len, tr->n_workers, w->id, &first, &count);
	if (count == 0) {
		return true;
	}
	struct ebm_rng rng;
	ebm_rng_init(&rng, mix_seed(o->seed, tr->member, tr->step, w->id));
	gather(tr, first, count, w->z);
	/* Chains: from the replay buffer, or (cd_reinit of them) from noise
	 * spread over the clamp box. Slots were picked by the main thread,
	 * distinct within the batch, so no two workers write one slot. */
	const size_t *slots = tr->cd_used + first;
	for (size_t i = 0; i < count; i++) {
		size_t slot = slots[i];
		float *zs = w->zs + i * d;
		if (ebm_rng_uniform(&rng) < o->cd_reinit) {
			for (size_t j = 0; j < d; j++) {
				zs[j] = tr->lo[j] + (tr->hi[j] - tr->lo[j]) *
						(float)ebm_rng_uniform(&rng);
			}
		} else {
			memcpy(zs, tr->buffer + slot * d, d * sizeof(float));
		}
	}
	struct oracle orc = {&tr->net, tr->params, &w->work};
	struct ebm_chain_opts co = {
		.sampler = EBM_SAMPLER_LANGEVIN,
		.n_steps = o->cd_steps,
		.step_size = o->cd_step_size,
		.noise = o->cd_noise,
		.grad_clip = CD_GRAD_CLIP,
		.lo = tr->lo,
		.hi = tr->hi,
	};
	uint64_t acc, prop;
	if (!ebm_chain_run(oracle_fn, &orc, &co, &rng, w->zs, count, d, w->chain,
				&acc, &prop)) {
		return false;
	}
	for (size_t i = 0; i < count; i++) {
		memcpy(tr->buffer + slots[i] * d, w->zs + i * d, d * sizeof(float));
	}
	/* loss = mean m(samples) - mean m(data) + reg (mean m_d^2 + mean m_s^2):
	 * row weights df = d loss / d m. */
	float *md = w->m, *ms = w->m + count;
	if (!ebm_member_mlp(&tr->net, tr->params, &w->work, w->z, count, md) ||
			!ebm_member_mlp(&tr->net, tr->params, &w->work, w->zs, count,
					ms)) {
		return false;
	}
	float inv_b = 1.0f / (float)tr->batch_len;
	double loss = 0.0;
	for (size_t i = 0; i < count; i++) {
		w->df[i] = inv_b * (-1.0f + 2.0f * o->cd_energy_reg * md[i]);
		w->df[count + i] = inv_b * (1.0f + 2.0f * o->cd_energy_reg * ms[i]);
		loss += inv_b * ((double)ms[i] - (double)md[i] + o->cd_energy_reg *
				((double)md[i] * md[i] + (double)ms[i] * ms[i]));
	}
	w->loss = loss;
	return ebm_member_param_grad(&tr->net, tr->params, &w->work, w->z, count,
			w->df, NULL, w->grad) &&
			ebm_member_param_grad(&tr->net, tr->params, &w->work, w->zs,
					count, w->df + count, NULL, w->grad);
}

static void job_reduce(struct worker *w)
{
	struct trainer *tr = w->tr;
	size_t begin, len;
	shard(tr->n_params, tr->n_workers, w->id, &begin, &len);
	size_t end = begin + len;
	memcpy(tr->grad + begin, tr->workers[0].grad + begin,
			len * sizeof(float));
	for (unsigned t = 1; t < tr->n_workers; t++) {
		const float *g = tr->workers[t].grad;
		for (size_t q = begin; q < end; q++) {
			tr->grad[q] += g[q];
		}
	}
	w->sumsq = ebm_sumsq(tr->grad, begin, end);
}

static void job_update(struct worker *w)
{
	struct trainer *tr = w->tr;
	size_t begin, len;
	shard(tr->n_params, tr->n_workers, w->id, &begin, &len);
	ebm_adam_update(&tr->adam, &tr->astep, tr->params, tr->grad, begin,
			begin + len);
	if (tr->ema != NULL) {
		ebm_ema_update(tr->ema, tr->params, begin, begin + len,
				tr->o->ema_decay, tr->o->ema_power, tr->astep.t - 1);
	}
}

static void run_job(struct worker *w)
{
	switch (w->tr->job) {
	case JOB_DSM:
	case JOB_CD:
		memset(w->grad, 0, w->tr->n_params * sizeof(float));
		w->loss = 0.0;
		w->ok = w->tr->job == JOB_DSM ? job_dsm(w) : job_cd(w);
		break;
	case JOB_REDUCE:
		job_reduce(w);
		break;
	case JOB_UPDATE:
		job_update(w);
		break;
	case JOB_NONE:
	case JOB_QUIT:
		break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct trainer *tr = w->tr;
	uint64_t seen = 0;
	for (;;) {
		pthread_mutex_lock(&tr->mu);
		while (tr->generation == seen) {
			pthread_cond_wait(&tr->cv_start, &tr->mu);
		}
		seen = tr->generation;
		enum job job = tr->job;
		pthread_mutex_unlock(&tr->mu);
		if (job == JOB_QUIT) {
			return NULL;
		}
		run_job(w);
		pthread_mutex_lock(&tr->mu);
		if (--tr->pending == 0) {
			pthread_cond_signal(&tr->cv_done);
		}
		pthread_mutex_unlock(&tr->mu);
	}
}

/* Runs tr->job on every worker (the caller is worker 0) and waits. */
static void dispatch(struct trainer *tr)
{
	pthread_mutex_lock(&tr->mu);
	tr->pending = tr->n_workers - 1;
	tr->generation++;
	pthread_cond_broadcast(&tr->cv_start);
	pthread_mutex_unlock(&tr->mu);
	if (tr->job == JOB_QUIT) {
		return; /* workers exit without reporting; the caller joins them */
	}
	run_job(&tr->workers[0]);
	pthread_mutex_lock(&tr->mu);
	while (tr->pending > 0) {
		pthread_cond_wait(&tr->cv_done, &tr->mu);
	}
	pthread_mutex_unlock(&tr->mu);
}

/* ---- setup and teardown ------------------------------------------------------- */

static void workers_finish(struct trainer *tr)
{
	if (tr->workers == NULL) {
		return;
	}
	tr->job = JOB_QUIT;
	dispatch(tr);
	for (unsigned i = 0; i < tr->n_workers; i++) {
		struct worker *w = &tr->workers[i];
		if (w->started) {
			pthread_join(w->thread, NULL);
		}
		ebm_work_finish(&w->work);
		free(w->grad);
		free(w->z);
		free(w->eps);
		free(w->sigma);
		free(w->zs);
		free(w->m);
		free(w->df);
		free(w->chain);
	}
	free(tr->workers);
	tr->workers = NULL;
	pthread_mutex_destroy(&tr->mu);
	pthread_cond_destroy(&tr->cv_start);
	pthread_cond_destroy(&tr->cv_done);
}

static bool workers_init(struct trainer *tr)
{
	unsigned n = tr->o->n_threads;
	if (n > tr->o->batch) {
		n = tr->o->batch;
	}
	tr->n_workers = n;
	tr->workers = calloc(n, sizeof(*tr->workers));
	if (tr->workers == NULL) {
		return false;
	}
	pthread_mutex_init(&tr->mu, NULL);
	pthread_cond_init(&tr->cv_start, NULL);
	pthread_cond_init(&tr->cv_done, NULL);
	size_t rows = (tr->o->batch + n - 1) / n;
	size_t d = tr->d;
	bool ok = true;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &tr->workers[i];
		w->tr = tr;
		w->id = i;
		ebm_work_init(&w->work);
		w->grad = ebm_alloc_array(tr->n_params, sizeof(float));
		w->z = ebm_alloc_array(rows * d, sizeof(float));
		w->eps = ebm_alloc_array(rows * d, sizeof(float));
		w->sigma = ebm_alloc_array(rows, sizeof(float));
		w->zs = ebm_alloc_array(rows * d, sizeof(float));
		w->m = ebm_alloc_array(2 * rows, sizeof(float));
		w->df = ebm_alloc_array(2 * rows, sizeof(float));
		w->chain = ebm_alloc_array(4 * rows * d + 2 * rows, sizeof(float));
		ok = ok && w->grad && w->z && w->eps && w->sigma && w->zs && w->m &&
				w->df && w->chain;
	}
	for (unsigned i = 1; ok && i < n; i++) {
		ok = pthread_create(&tr->workers[i].thread, NULL, worker_main,
				&tr->workers[i]) == 0;
		tr->workers[i].started = ok;
	}
	return ok;
}

bool ebm_spd_inverse(double *a, size_t d)
{
	/* Cholesky a = L L' in the lower triangle. */
	for (size_t j = 0; j < d; j++) {
		double s = a[j * d + j];
		for (size_t k = 0; k < j; k++) {
			s -= a[j * d + k] * a[j * d + k];
		}
		if (!(s > 0.0)) {
			return false;
		}
		double ljj = sqrt(s);
		a[j * d + j] = ljj;
		for (size_t i = j + 1; i < d; i++) {
			double t = a[i * d + j];
			for (size_t k = 0; k < j; k++) {
				t -= a[i * d + k] * a[j * d + k];
			}
			a[i * d + j] = t / ljj;
		}
	}
	/* Invert L in place (lower triangle). */
	for (size_t j = 0; j < d; j++) {
		a[j * d + j] = 1.0 / a[j * d + j];
		for (size_t i = j + 1; i < d; i++) {
			double t = 0.0;
			for (size_t k = j; k < i; k++) {
				t -= a[i * d + k] * a[k * d + j];
			}
			a[i * d + j] = t / a[i * d + i];
		}
	}
	/* a^-1 = L^-T L^-1; fill both triangles. */
	for (size_t i = 0; i < d; i++) {
		for (size_t j = 0; j <= i; j++) {
			double t = 0.0;
			for (size_t k = i; k < d; k++) {
				t += a[k * d + i] * a[k * d + j];
			}
			a[j * d + i] = t; /* upper triangle: L entries no longer read */
		}
	}
	for (size_t i = 0; i < d; i++) {
		for (size_t j = 0; j < i; j++) {
			a[i * d + j] = a[j * d + i];
		}
	}
	return true;
}

static int float_cmp(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n-1], linear between order statistics. */
static double quantile(const float *v, size_t n, double q)
{
	double at = q * (double)(n - 1);
	size_t i = (size_t)at;
	if (i + 1 >= n) {
		return v[n - 1];
	}
	return v[i] + (at - (double)i) * ((double)v[i + 1] - v[i]);
}

/*
 * Robust centre and scale of each feature: median and IQR / 1.349 (the
 * standard deviation of a normal with that IQR). A feature whose IQR is
 * (nearly) zero, as a mostly constant or binary one often is, keeps its
 * standard deviation sd[j], or 1 when that is zero too.
 */
static bool robust_scale(struct ebm_net *net, const float *x,
		const size_t *rows, size_t n, const double *mean, const double *sd)
{
	size_t d = net->d;
	float *col = ebm_alloc_array(n, sizeof(float));
	if (col == NULL) {
		return false;
	}
	for (size_t j = 0; j < d; j++) {
		for (size_t i = 0; i < n; i++) {
			col[i] = x[rows[i] * d + j];
		}
		qsort(col, n, sizeof(float), float_cmp);
		double med = quantile(col, n, 0.5);
		double iqr = (quantile(col, n, 0.75) - quantile(col, n, 0.25)) /
				1.349;
		double tiny = 1e-6 * fmax(1.0, fabs(mean[j]));
		net->mean[j] = (float)med;
		net->scale[j] = iqr > tiny ? (float)iqr
				: (sd[j] > tiny ? (float)sd[j] : 1.0f);
	}
	free(col);
	return true;
}

/*
 * Standardization (mean and standard deviation, or with `robust` median
 * and IQR) and the base precision P = ((1 - s) Cov(z) + s I)^-1 from the
 * training rows.
 */
static bool fit_base(struct ebm_net *net, const float *x, const size_t *rows,
		size_t n, float shrink, bool robust)
{
	size_t d = net->d;
	double *mean = calloc(d, sizeof(double));
	double *sd = calloc(d, sizeof(double));
	double *cov = ebm_alloc_array(d * d, sizeof(double));
	if (mean == NULL || sd == NULL || cov == NULL) {
		free(mean);
		free(sd);
		free(cov);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < d; j++) {
			mean[j] += x[rows[i] * d + j];
		}
	}
	for (size_t j = 0; j < d; j++) {
		mean[j] /= (double)n;
	}
	memset(cov, 0, d * d * sizeof(double));
	for (size_t i = 0; i < n; i++) {
		const float *r = x + rows[i] * d;
		for (size_t a = 0; a < d; a++) {
			double da = r[a] - mean[a];
			for (size_t b = 0; b <= a; b++) {
				cov[a * d + b] += da * (r[b] - mean[b]);
			}
		}
	}
	for (size_t j = 0; j < d; j++) {
		sd[j] = sqrt(cov[j * d + j] / (double)n);
		/* A constant feature keeps scale 1: it then standardizes to 0. */
		net->mean[j] = (float)mean[j];
		net->scale[j] = sd[j] > 1e-6 * fmax(1.0, fabs(mean[j])) ? (float)sd[j]
				: 1.0f;
	}
	bool ok = !robust || robust_scale(net, x, rows, n, mean, sd);
	for (size_t a = 0; a < d; a++) {
		for (size_t b = 0; b <= a; b++) {
			double c = cov[a * d + b] / (double)n /
					((double)net->scale[a] * (double)net->scale[b]);
			double v = (1.0 - shrink) * c + (a == b ? shrink : 0.0);
			cov[a * d + b] = v;
			cov[b * d + a] = v;
		}
	}
	ok = ok && ebm_spd_inverse(cov, d);
	for (size_t q = 0; ok && q < d * d; q++) {
		net->prec[q] = (float)cov[q];
	}
	free(mean);
	free(sd);
	free(cov);
	return ok;
}

static void init_member(const struct ebm_net *net, float *p, uint64_t seed)
{
	struct ebm_rng rng;
	ebm_rng_init(&rng, seed);
	size_t off = 0, in = net->d;
	for (uint32_t l = 0; l < net->n_layers; l++) {
		size_t out = net->hidden[l];
		/* He-style scale for a smooth ReLU-like activation. */
		float s = sqrtf(2.0f / (float)in);
		for (size_t q = 0; q < out * in; q++) {
			p[off + q] = s * (float)ebm_rng_normal(&rng);
		}
		off += out * in;
		memset(p + off, 0, out * sizeof(float));
		off += out;
		in = out;
	}
	/* A small output layer: training starts close to the Gaussian base. */
	float s = 0.1f / sqrtf((float)in);
	for (size_t q = 0; q < in; q++) {
		p[off + q] = s * (float)ebm_rng_normal(&rng);
	}
	p[off + in] = 0.0f;
}

/* ---- validation --------------------------------------------------------------- */

struct valset {
	const float *z;   /* n x d standardized */
	float *eps;       /* n x d, fixed for the whole run */
	float *sigma;     /* n */
	size_t n;
};

static bool val_init(struct valset *v, const struct trainer *tr,
		const float *z, size_t n)
{
	v->z = z;
	v->n = n;
	v->eps = ebm_alloc_array(n * tr->d + 1, sizeof(float));
	v->sigma = ebm_alloc_array(n + 1, sizeof(float));
	if (v->eps == NULL || v->sigma == NULL) {
		return false;
	}
	struct ebm_rng rng;
	ebm_rng_init(&rng, mix_seed(tr->o->seed, UINT64_MAX, 0, 0));
	ebm_rng_normal_fill(&rng, v->eps, n * tr->d);
	/* Every level equally often, so the criterion does not wobble with
	 * the draw of levels. */
	for (size_t i = 0; i < n; i++) {
		v->sigma[i] = tr->sigmas[i % tr->o->n_sigmas];
	}
	return true;
}

static void val_finish(struct valset *v)
{
	free(v->eps);
	free(v->sigma);
}

/* Mean held-out denoising loss of member parameters p; NAN on failure. */
static double val_loss(struct trainer *tr, const struct valset *v,
		const float *p)
{
	double total = 0.0;
	struct ebm_work *work = &tr->workers[0].work;
	for (size_t s = 0; s < v->n; s += VAL_CHUNK) {
		size_t c = v->n - s < VAL_CHUNK ? v->n - s : VAL_CHUNK;
		double l;
		if (!ebm_member_dsm(&tr->net, p, work, v->z + s * tr->d,
					v->eps + s * tr->d, v->sigma + s, c, &l, NULL)) {
			return NAN;
		}
		total += l;
	}
	return total / (double)v->n;
}

/* ---- one member -------------------------------------------------------------- */

struct fit_state {
	ebm_train_progress_fn progress;
	void *user;
	double t0;
	uint64_t rows_done;
	uint64_t rows_total;   /* planned, for the ETA */
};

/*
 * The replay-buffer slots of the next CD batch: the next batch_len entries
 * of the member's slot permutation, cyclically, so that every slot is used
 * once per pass through the buffer. cd_buffer >= batch (validated) keeps
 * them distinct.
 */
static void pick_slots(struct trainer *tr)
{
	size_t n = tr->o->cd_buffer;
	for (size_t i = 0; i < tr->batch_len; i++) {
		tr->cd_used[i] = tr->slots[(tr->slot_pos + i) % n];
	}
	tr->slot_pos = (tr->slot_pos + tr->batch_len) % n;
}

static float lr_at(const struct ebm_train_options *o, uint64_t step,
		uint64_t total)
{
	double warm = o->warmup_frac * (double)total;
	if (warm >= 1.0 && (double)step < warm) {
		return o->lr * (float)(((double)step + 1.0) / warm);
	}
	/* Cosine from lr to lr / 10 over the rest of the planned steps. */
	double t = total > warm ? ((double)step - warm) / ((double)total - warm)
			: 1.0;
	t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
	return o->lr * (float)(0.1 + 0.45 * (1.0 + cos(3.14159265358979323846 * t)));
}

static enum ebm_status train_member(struct trainer *tr, uint32_t k,
		const struct valset *val, struct fit_state *fs, struct ebm_error *err)
{
	const struct ebm_train_options *o = tr->o;
	size_t np = tr->n_params;
	float *params = tr->net.params + (size_t)k * np;
	enum ebm_status st = EBM_STATUS_OK;
	float *grad = ebm_alloc_array(np, sizeof(float));
	float *ema = ebm_alloc_array(np, sizeof(float));
	float *best = ebm_alloc_array(np, sizeof(float));
	if (grad == NULL || ema == NULL || best == NULL ||
			!ebm_adam_init(&tr->adam, np)) {
		free(grad);
		free(ema);
		free(best);
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory for %zu parameters", np);
	}
	init_member(&tr->net, params, mix_seed(o->seed, k, 0, 1));
	memcpy(ema, params, np * sizeof(float));
	memcpy(best, params, np * sizeof(float));
	tr->params = params;
	tr->grad = grad;
	tr->ema = o->ema_decay > 0.0f ? ema : NULL;
	tr->member = k;
	enum job grad_job = o->objective == EBM_OBJECTIVE_CD ? JOB_CD : JOB_DSM;
	struct ebm_rng order_rng;
	ebm_rng_init(&order_rng, mix_seed(o->seed, k, 0, 2));
	for (size_t i = 0; i < tr->n_train; i++) {
		tr->order[i] = i;
	}
	uint64_t steps_per_epoch = (tr->n_train + o->batch - 1) / o->batch;
	uint64_t total_steps = steps_per_epoch * o->epochs;
	double best_val = INFINITY;
	uint32_t since_best = 0;
	uint64_t step = 0;
	const float *current = o->ema_decay > 0.0f ? ema : params;
	const bool select = o->objective == EBM_OBJECTIVE_DSM;
	for (uint32_t epoch = 1; epoch <= o->epochs; epoch++) {
		double e0 = ebm_now();
		double epoch_loss = 0.0;
		ebm_rng_shuffle(&order_rng, tr->order, tr->n_train);
		for (size_t b = 0; b < tr->n_train; b += o->batch, step++) {
			tr->batch_start = b;
			tr->batch_len = tr->n_train - b < o->batch ? tr->n_train - b
					: o->batch;
			tr->step = step;
			if (grad_job == JOB_CD) {
				pick_slots(tr);
			}
			tr->job = grad_job;
			dispatch(tr);
			if (grad_job == JOB_CD && tr->probe != NULL &&
					tr->probe->cd_step != NULL) {
				tr->probe->cd_step(tr->probe->user, k, step, tr->cd_used,
						tr->batch_len);
			}
			double loss = 0.0;
			for (unsigned t = 0; t < tr->n_workers; t++) {
				struct worker *w = &tr->workers[t];
				if (!w->ok) {
					st = ebm_error_set(err, EBM_STATUS_NOMEM,
							"out of memory for training scratch");
					goto out;
				}
				loss += w->loss;
			}
			tr->job = JOB_REDUCE;
			dispatch(tr);
			double sumsq = 0.0;
			for (unsigned t = 0; t < tr->n_workers; t++) {
				sumsq += tr->workers[t].sumsq;
			}
			/* DSM workers return gradients of sums; CD ones of means. */
			float scale = 1.0f;
			if (grad_job == JOB_DSM) {
				scale = 1.0f / (float)tr->batch_len;
				loss /= (double)tr->batch_len;
			}
			double norm = sqrt(sumsq) * scale;
			if (!isfinite(loss) || !isfinite(norm)) {
				st = ebm_error_set(err, EBM_STATUS_DIVERGED,
						"training diverged: member %u, epoch %u, step %llu: "
						"%s is not finite (try a smaller --lr)", k + 1, epoch,
						(unsigned long long)step,
						isfinite(loss) ? "gradient" : "loss");
				goto out;
			}
			if (o->clip_norm > 0.0f && norm > o->clip_norm) {
				scale *= (float)(o->clip_norm / norm);
			}
			tr->astep = (struct ebm_adam_step){
				.t = step + 1,
				.lr = lr_at(o, step, total_steps),
				.beta1 = o->beta1,
				.beta2 = o->beta2,
				.weight_decay = o->weight_decay,
				.grad_scale = scale,
			};
			tr->job = JOB_UPDATE;
			dispatch(tr);
			epoch_loss += loss * (double)tr->batch_len;
			fs->rows_done += tr->batch_len;
		}
		if (!all_finite(params, np)) {
			st = ebm_error_set(err, EBM_STATUS_DIVERGED,
					"training diverged: member %u, epoch %u: weights are not "
					"finite (try a smaller --lr)", k + 1, epoch);
			goto out;
		}
		double vl = val->n > 0 ? val_loss(tr, val, current) : epoch_loss;
		/* The held-out denoising loss measures a DSM fit; contrastive
		 * divergence does not aim at it (its energies sharpen while its
		 * detection improves), so for cd it is only reported and the last
		 * weights are kept. */
		bool improved = select && isfinite(vl) && vl < best_val;
		if (improved) {
			best_val = vl;
			since_best = 0;
			memcpy(best, current, np * sizeof(float));
		} else {
			since_best++;
		}
		bool stop = select && o->patience > 0 && since_best >= o->patience;
		if (fs->progress != NULL) {
			double now = ebm_now();
			double elapsed = now - fs->t0;
			double rate = (double)tr->n_train / fmax(now - e0, 1e-9);
			double left = (double)(fs->rows_total - fs->rows_done);
			struct ebm_train_progress p = {
				.member = k,
				.n_members = o->n_members,
				.epoch = epoch,
				.n_epochs = o->epochs,
				.n_train_rows = tr->n_train,
				.rows_done = fs->rows_done,
				.train_loss = epoch_loss / (double)tr->n_train,
				.val_loss = vl,
				.best_val_loss = select ? best_val : NAN,
				.rows_per_s = rate,
				.elapsed_s = elapsed,
				.eta_s = left / fmax(fs->rows_done / fmax(elapsed, 1e-9), 1.0),
				.improved = improved,
			};
			if (!fs->progress(&p, fs->user)) {
				st = ebm_error_set(err, EBM_STATUS_CANCELLED,
						"training cancelled");
				goto out;
			}
		}
		if (stop) {
			/* The planned work shrinks: keep the ETA honest. */
			fs->rows_total -= (uint64_t)(o->epochs - epoch) * tr->n_train;
			break;
		}
	}
	memcpy(params, select ? best : current, np * sizeof(float));
out:
	ebm_adam_finish(&tr->adam);
	free(grad);
	free(ema);
	free(best);
	return st;
}

/* ---- the model ------------------------------------------------------------------ */

struct ref_entry {
	float energy;
	size_t row;
};

static int ref_cmp(const void *a, const void *b)
{
	const struct ref_entry *x = a, *y = b;
	if (x->energy != y->energy) {
		return x->energy < y->energy ? -1 : 1;
	}
	return x->row < y->row ? -1 : (x->row > y->row);
}

static enum ebm_status assemble(struct trainer *tr, const float *x,
		const size_t *ref_rows, size_t n_ref, const char *const *names,
		struct ebm_model **out, struct ebm_error *err)
{
	const struct ebm_train_options *o = tr->o;
	size_t d = tr->d;
	struct ebm_model *m = ebm_model_alloc();
	enum ebm_status st = EBM_STATUS_NOMEM;
	float *z = ebm_alloc_array(n_ref * d, sizeof(float));
	float *f = ebm_alloc_array(n_ref, sizeof(float));
	struct ref_entry *e = ebm_alloc_array(n_ref, sizeof(*e));
	m->ref_rows = ebm_alloc_array(n_ref * d, sizeof(float));
	m->ref_energy = ebm_alloc_array(n_ref, sizeof(float));
	if (z == NULL || f == NULL || e == NULL || m->ref_rows == NULL ||
			m->ref_energy == NULL || !ebm_net_copy(&m->net, &tr->net)) {
		ebm_error_set(err, st, "out of memory assembling the model");
		goto fail;
	}
	for (size_t i = 0; i < n_ref; i++) {
		memcpy(m->ref_rows + i * d, x + ref_rows[i] * d, d * sizeof(float));
	}
	ebm_net_standardize(&m->net, m->ref_rows, n_ref, z);
	if (!ebm_net_forward(&m->net, &tr->workers[0].work, z, n_ref, f)) {
		ebm_error_set(err, st, "out of memory scoring the reference set");
		goto fail;
	}
	for (size_t i = 0; i < n_ref; i++) {
		if (!isfinite(f[i])) {
			st = ebm_error_set(err, EBM_STATUS_DIVERGED,
					"training diverged: reference row %zu has a non-finite "
					"energy", i + 1);
			goto fail;
		}
		e[i].energy = -f[i];
		e[i].row = ref_rows[i];
	}
	qsort(e, n_ref, sizeof(*e), ref_cmp);
	for (size_t i = 0; i < n_ref; i++) {
		memcpy(m->ref_rows + i * d, x + e[i].row * d, d * sizeof(float));
		m->ref_energy[i] = e[i].energy;
	}
	m->n_ref = (uint32_t)n_ref;
	m->alpha = o->alpha;
	m->created = o->created;
	m->seed = o->seed;
	m->objective = ebm_xstrdup(ebm_objective_name(o->objective));
	m->options = ebm_train_options_format(o);
	if (names != NULL) {
		m->feature_names = ebm_xcalloc(d, sizeof(char *));
		for (size_t j = 0; j < d; j++) {
			m->feature_names[j] = ebm_xstrdup(names[j]);
		}
	}
	st = ebm_model_finalize(m, err);
	if (st != EBM_STATUS_OK) {
		goto fail;
	}
	free(z);
	free(f);
	free(e);
	*out = m;
	return EBM_STATUS_OK;
fail:
	free(z);
	free(f);
	free(e);
	ebm_model_destroy(m);
	return st;
}

/* ---- entry point ------------------------------------------------------------------ */

static enum ebm_status check_input(const float *x, size_t n_rows, size_t d,
		const struct ebm_train_options *o, struct ebm_error *err)
{
	if (d == 0 || d > EBM_MODEL_MAX_FEATURES) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"need 1 to %u features, got %zu", EBM_MODEL_MAX_FEATURES, d);
	}
	if (n_rows < MIN_ROWS) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"need at least %d rows to train, got %zu", MIN_ROWS, n_rows);
	}
	for (size_t i = 0; i < n_rows; i++) {
		for (size_t j = 0; j < d; j++) {
			if (!isfinite(x[i * d + j])) {
				enum ebm_status st = ebm_error_set(err, EBM_STATUS_NUMERIC,
						"row %zu, feature %zu: value is not finite", i + 1,
						j + 1);
				if (err != NULL) {
					err->line = i + 1;
					err->column = j + 1;
				}
				return st;
			}
		}
	}
	return ebm_train_options_validate(o, err);
}

enum ebm_status ebm_train_fit(const struct ebm_train_options *opt,
		const float *x, size_t n_rows, size_t d,
		const char *const *feature_names, ebm_train_progress_fn progress,
		void *user, struct ebm_model **out, struct ebm_error *err)
{
	return ebm_train_fit_probed(opt, x, n_rows, d, feature_names, progress,
			user, NULL, out, err);
}

enum ebm_status ebm_train_fit_probed(const struct ebm_train_options *opt,
		const float *x, size_t n_rows, size_t d,
		const char *const *feature_names, ebm_train_progress_fn progress,
		void *user, const struct ebm_train_probe *probe,
		struct ebm_model **out, struct ebm_error *err)
{
	*out = NULL;
	enum ebm_status st = check_input(x, n_rows, d, opt, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	const struct ebm_train_options *o = opt;
	struct trainer tr;
	struct valset val = {0};
	memset(&tr, 0, sizeof(tr));
	tr.o = o;
	tr.d = d;
	tr.probe = probe;
	float *z = NULL;
	size_t *idx = ebm_alloc_array(n_rows, sizeof(size_t));
	/* Split: reference set, validation set, training rows (shuffled). */
	size_t n_ref = (size_t)llround(o->reference_frac * (double)n_rows);
	n_ref = n_ref < o->reference_min ? o->reference_min : n_ref;
	n_ref = n_ref > o->reference_max ? o->reference_max : n_ref;
	n_ref = n_ref > n_rows / 2 ? n_rows / 2 : n_ref;
	size_t n_val = (size_t)llround(o->val_frac * (double)n_rows);
	if (o->val_frac > 0.0f && n_val == 0) {
		n_val = 1;
	}
	size_t n_train = n_rows - n_ref - n_val;
	if (idx == NULL) {
		return ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
	}
	if (n_train < MIN_ROWS / 2) {
		free(idx);
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"only %zu rows left to train after holding out %zu reference "
				"and %zu validation rows", n_train, n_ref, n_val);
	}
	struct ebm_rng rng;
	ebm_rng_init(&rng, mix_seed(o->seed, 0, 0, 3));
	for (size_t i = 0; i < n_rows; i++) {
		idx[i] = i;
	}
	ebm_rng_shuffle(&rng, idx, n_rows);
	const size_t *ref_rows = idx;
	const size_t *val_rows = idx + n_ref;
	const size_t *train_rows = idx + n_ref + n_val;

	ebm_blas_set_threads(1);
	if (!ebm_net_init(&tr.net, (uint32_t)d, o->n_members, o->n_layers,
				o->hidden, EBM_ACT_SILU)) {
		st = ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory for the network");
		goto out;
	}
	tr.n_params = tr.net.n_params;
	if (!fit_base(&tr.net, x, train_rows, n_train, o->prec_shrink,
				o->robust_scale)) {
		st = ebm_error_set(err, EBM_STATUS_NUMERIC,
				"the covariance of the training rows is not positive "
				"definite even after shrinkage");
		goto out;
	}
	/* Standardized copies: training rows first, then validation rows. */
	z = ebm_alloc_array((n_train + n_val) * d, sizeof(float));
	tr.order = ebm_alloc_array(n_train, sizeof(size_t));
	tr.sigmas = ebm_alloc_array(o->n_sigmas, sizeof(float));
	tr.lo = ebm_alloc_array(d, sizeof(float));
	tr.hi = ebm_alloc_array(d, sizeof(float));
	tr.cd_used = ebm_alloc_array(o->batch, sizeof(size_t));
	if (z == NULL || tr.order == NULL || tr.sigmas == NULL || tr.lo == NULL ||
			tr.hi == NULL || tr.cd_used == NULL || !workers_init(&tr)) {
		st = ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory for training buffers");
		goto out;
	}
	for (size_t i = 0; i < n_train; i++) {
		ebm_net_standardize(&tr.net, x + train_rows[i] * d, 1, z + i * d);
	}
	for (size_t i = 0; i < n_val; i++) {
		ebm_net_standardize(&tr.net, x + val_rows[i] * d, 1,
				z + (n_train + i) * d);
	}
	tr.ztrain = z;
	tr.n_train = n_train;
	for (uint32_t s = 0; s < o->n_sigmas; s++) {
		double t = o->n_sigmas > 1 ? (double)s / (o->n_sigmas - 1) : 0.0;
		tr.sigmas[s] = (float)(o->sigma_min *
				pow((double)o->sigma_max / o->sigma_min, t));
	}
	for (size_t j = 0; j < d; j++) {
		float lo = INFINITY, hi = -INFINITY;
		for (size_t i = 0; i < n_train; i++) {
			lo = fminf(lo, z[i * d + j]);
			hi = fmaxf(hi, z[i * d + j]);
		}
		tr.lo[j] = lo - CD_MARGIN;
		tr.hi[j] = hi + CD_MARGIN;
	}
	if (!val_init(&val, &tr, z + n_train * d, n_val)) {
		st = ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
		goto out;
	}
	struct fit_state fs = {
		.progress = progress,
		.user = user,
		.t0 = ebm_now(),
		.rows_total = (uint64_t)n_train * o->epochs * o->n_members,
	};
	for (uint32_t k = 0; k < o->n_members; k++) {
		if (o->objective == EBM_OBJECTIVE_CD) {
			/* A fresh replay buffer per member, started from noise. */
			free(tr.buffer);
			free(tr.slots);
			tr.buffer = ebm_alloc_array((size_t)o->cd_buffer * d,
					sizeof(float));
			tr.slots = ebm_alloc_array(o->cd_buffer, sizeof(size_t));
			if (tr.buffer == NULL || tr.slots == NULL) {
				st = ebm_error_set(err, EBM_STATUS_NOMEM,
						"out of memory for the replay buffer");
				goto out;
			}
			ebm_rng_init(&tr.slot_rng, mix_seed(o->seed, k, 0, 4));
			for (size_t i = 0; i < o->cd_buffer; i++) {
				tr.slots[i] = i;
				for (size_t j = 0; j < d; j++) {
					tr.buffer[i * d + j] = tr.lo[j] + (tr.hi[j] - tr.lo[j]) *
							(float)ebm_rng_uniform(&tr.slot_rng);
				}
			}
			ebm_rng_shuffle(&tr.slot_rng, tr.slots, o->cd_buffer);
			tr.slot_pos = 0;
		}
		st = train_member(&tr, k, &val, &fs, err);
		if (st != EBM_STATUS_OK) {
			goto out;
		}
	}
	st = assemble(&tr, x, ref_rows, n_ref, feature_names, out, err);
out:
	workers_finish(&tr);
	val_finish(&val);
	ebm_net_finish(&tr.net);
	free(z);
	free(idx);
	free(tr.order);
	free(tr.sigmas);
	free(tr.lo);
	free(tr.hi);
	free(tr.buffer);
	free(tr.slots);
	free(tr.cd_used);
	return st;
}
