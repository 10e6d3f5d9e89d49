/*
 * step.c — one training step, split over the workers: the DSM or CD
 * gradient of each worker's shard of the batch, the sum of the workers'
 * gradients and the Adam and weight-average update, each over a slice of
 * the parameters; and the CD replay-buffer slots of a batch. Each piece
 * runs on every worker through the pool (pool.c), with the scratch here.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

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

static void run_job(void *arg, unsigned id)
{
	struct worker *w = &((struct trainer *)arg)->workers[id];
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
	}
}

void ebm_train_dispatch(struct trainer *tr)
{
	ebm_pool_run(&tr->pool, run_job, tr);
}

/* ---- the workers ----------------------------------------------------------------- */

void ebm_train_workers_finish(struct trainer *tr)
{
	if (tr->workers == NULL) {
		return;
	}
	ebm_pool_finish(&tr->pool);
	for (unsigned i = 0; i < tr->n_workers; i++) {
		struct worker *w = &tr->workers[i];
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
}

bool ebm_train_workers_init(struct trainer *tr)
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
	return ok && ebm_pool_init(&tr->pool, n);
}

/*
 * A fresh replay buffer for member k, started from uniform noise over the
 * clamp box, and a new shuffled order of its slots.
 */
bool ebm_train_replay_reset(struct trainer *tr, uint32_t k)
{
	size_t n = tr->o->cd_buffer, d = tr->d;
	if (tr->buffer == NULL) {
		tr->buffer = ebm_alloc_array(n * d, sizeof(float));
		tr->slots = ebm_alloc_array(n, sizeof(size_t));
		if (tr->buffer == NULL || tr->slots == NULL) {
			return false;
		}
	}
	ebm_rng_init(&tr->slot_rng, mix_seed(tr->o->seed, k, 0, 4));
	for (size_t i = 0; i < n; i++) {
		tr->slots[i] = i;
		for (size_t j = 0; j < d; j++) {
			tr->buffer[i * d + j] = tr->lo[j] + (tr->hi[j] - tr->lo[j]) *
					(float)ebm_rng_uniform(&tr->slot_rng);
		}
	}
	ebm_rng_shuffle(&tr->slot_rng, tr->slots, n);
	tr->slot_pos = 0;
	return true;
}

/*
 * The replay-buffer slots of the next CD batch: the next batch_len entries
 * of the member's slot permutation, cyclically, so that every slot is used
 * once per pass through the buffer. cd_buffer >= batch (validated) keeps
 * them distinct.
 */
void ebm_train_pick_slots(struct trainer *tr)
{
	size_t n = tr->o->cd_buffer;
	for (size_t i = 0; i < tr->batch_len; i++) {
		tr->cd_used[i] = tr->slots[(tr->slot_pos + i) % n];
	}
	tr->slot_pos = (tr->slot_pos + tr->batch_len) % n;
}
