/*
 * train.c — ebm_train_fit: split the rows, fit standardization and the
 * Gaussian base (base.c), train each MLP member with DSM or CD, one step
 * at a time over a small pool of worker threads (step.c, pool.c), keep the
 * best weight average by held-out denoising loss, and assemble the model
 * with its scored reference set.
 *
 * Determinism: every random draw comes from a generator seeded by (seed,
 * member, step, worker), a batch is split over workers the same way every
 * time, and per-worker gradients are summed in worker order; the same
 * options, data and thread count therefore give the same bits.
 * BLAS runs single-threaded inside workers (its own threads would fight
 * ours for the cores).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "train/train.h"

/* Fewer rows than this cannot be split into training, validation and a
 * reference set worth the name. */
#define MIN_ROWS 20
/* Rows of the validation set evaluated per call (bounds scratch size). */
#define VAL_CHUNK 1024

/* ---- helpers ------------------------------------------------------------ */

static bool all_finite(const float *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(p[i])) {
			return false;
		}
	}
	return true;
}

/* ---- a new member ------------------------------------------------------------ */

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

/* Epochs each member runs at most: --epochs, fewer when --max-steps
 * would be passed first (at least one epoch). */
static uint32_t member_epochs(const struct ebm_train_options *o,
		size_t n_train)
{
	uint64_t steps_per_epoch = (n_train + o->batch - 1) / o->batch;
	if (o->max_steps == 0 || steps_per_epoch == 0) {
		return o->epochs;
	}
	uint64_t cap = (o->max_steps + steps_per_epoch - 1) / steps_per_epoch;
	return cap < o->epochs ? (uint32_t)(cap > 0 ? cap : 1) : o->epochs;
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
	const uint32_t n_epochs = member_epochs(o, tr->n_train);
	uint64_t total_steps = steps_per_epoch * n_epochs;
	double best_val = INFINITY;
	uint32_t since_best = 0;
	uint64_t step = 0;
	const float *current = o->ema_decay > 0.0f ? ema : params;
	const bool select = o->objective == EBM_OBJECTIVE_DSM;
	for (uint32_t epoch = 1; epoch <= n_epochs; epoch++) {
		double e0 = ebm_now();
		double epoch_loss = 0.0;
		ebm_rng_shuffle(&order_rng, tr->order, tr->n_train);
		for (size_t b = 0; b < tr->n_train; b += o->batch, step++) {
			tr->batch_start = b;
			tr->batch_len = tr->n_train - b < o->batch ? tr->n_train - b
					: o->batch;
			tr->step = step;
			if (grad_job == JOB_CD) {
				ebm_train_pick_slots(tr);
			}
			tr->job = grad_job;
			ebm_train_dispatch(tr);
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
			ebm_train_dispatch(tr);
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
			ebm_train_dispatch(tr);
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
				.n_epochs = n_epochs,
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
			fs->rows_total -= (uint64_t)(n_epochs - epoch) * tr->n_train;
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

/* After "proto_net_weight=auto": the weight chosen and each grid value's
 * criterion, smallest weight first ("0:0.6663,0.25:0.666,..."). */
static void append_weighing(char **options,
		const struct ebm_train_weighing *wt)
{
	char used[32], list[EBM_TRAIN_N_WEIGHTS * 48] = "";
	size_t len = 0;
	bool done[EBM_TRAIN_N_WEIGHTS] = { false };
	for (size_t k = 0; k < EBM_TRAIN_N_WEIGHTS; k++) {
		size_t g = EBM_TRAIN_N_WEIGHTS;
		for (size_t i = 0; i < EBM_TRAIN_N_WEIGHTS; i++) {
			if (!done[i] && (g == EBM_TRAIN_N_WEIGHTS ||
						wt->grid[i] < wt->grid[g])) {
				g = i;
			}
		}
		done[g] = true;
		char v[32];
		ebm_shortest_float(v, sizeof(v), wt->grid[g]);
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s:%.4f",
				k > 0 ? "," : "", v, wt->auroc[g]);
	}
	ebm_shortest_float(used, sizeof(used), wt->lambda);
	size_t n = strlen(*options) + sizeof(used) + sizeof(list) + 64;
	char *t = ebm_xmalloc(n);
	snprintf(t, n, "%sproto_net_weight_used=%s\nproto_net_weight_auroc=%s\n",
			*options, used, list);
	free(*options);
	*options = t;
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
	/* What was fitted: "protos" for the prototype energy alone (no
	 * network training), "dsm+protos" for a product, "dsm" or "cd";
	 * "gauss" for untrained members (--epochs 0). */
	char objective[32];
	snprintf(objective, sizeof(objective), "%s%s",
			ebm_train_protos_alone(o) ? "" :
			o->epochs == 0 ? "gauss" : ebm_objective_name(o->objective),
			o->n_protos == 0 ? "" : ebm_train_protos_alone(o) ? "protos" :
			"+protos");
	m->objective = ebm_xstrdup(objective);
	m->options = ebm_train_options_format(o);
	if (o->n_protos > 0 && o->proto_net_auto && m->options[0] != '\0') {
		append_weighing(&m->options, &tr->weighing);
	}
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
	if (!ebm_train_fit_base(&tr.net, x, train_rows, n_train, o->prec_shrink,
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
			tr.hi == NULL || tr.cd_used == NULL || !ebm_train_workers_init(&tr)) {
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
		.rows_total = (uint64_t)n_train * member_epochs(o, n_train) *
				o->n_members,
	};
	/* With --epochs 0, or prototypes and --proto-net-weight 0 (the network
	 * has weight 0), the members are not trained: all-zero MLPs, so f is
	 * the Gaussian base alone. */
	uint32_t n_fit = o->epochs == 0 ||
			ebm_train_protos_alone(o) ? 0 :
			o->n_members;
	for (uint32_t k = 0; k < n_fit; k++) {
		if (o->objective == EBM_OBJECTIVE_CD) {
			if (!ebm_train_replay_reset(&tr, k)) {
				st = ebm_error_set(err, EBM_STATUS_NOMEM,
						"out of memory for the replay buffer");
				goto out;
			}
		}
		st = train_member(&tr, k, &val, &fs, err);
		if (st != EBM_STATUS_OK) {
			goto out;
		}
	}
	if (o->n_protos > 0) {
		st = ebm_train_protos(&tr.net, &tr.workers[0].work, z, n_train,
				z + n_train * d, n_val, o, &tr.weighing, err);
		if (st != EBM_STATUS_OK) {
			goto out;
		}
	}
	st = assemble(&tr, x, ref_rows, n_ref, feature_names, out, err);
out:
	ebm_train_workers_finish(&tr);
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
