/*
 * pool.c — the trainer's worker threads: per-worker scratch, start-up,
 * hand-off of one job to every worker (the caller is worker 0), shut-down.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

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
		ebm_train_run_job(w);
		pthread_mutex_lock(&tr->mu);
		if (--tr->pending == 0) {
			pthread_cond_signal(&tr->cv_done);
		}
		pthread_mutex_unlock(&tr->mu);
	}
}

/* Runs tr->job on every worker (the caller is worker 0) and waits. */
void ebm_train_dispatch(struct trainer *tr)
{
	pthread_mutex_lock(&tr->mu);
	tr->pending = tr->n_workers - 1;
	tr->generation++;
	pthread_cond_broadcast(&tr->cv_start);
	pthread_mutex_unlock(&tr->mu);
	if (tr->job == JOB_QUIT) {
		return; /* workers exit without reporting; the caller joins them */
	}
	ebm_train_run_job(&tr->workers[0]);
	pthread_mutex_lock(&tr->mu);
	while (tr->pending > 0) {
		pthread_cond_wait(&tr->cv_done, &tr->mu);
	}
	pthread_mutex_unlock(&tr->mu);
}

/* ---- setup and teardown ------------------------------------------------------- */

void ebm_train_workers_finish(struct trainer *tr)
{
	if (tr->workers == NULL) {
		return;
	}
	tr->job = JOB_QUIT;
	ebm_train_dispatch(tr);
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
