/*
 * pool.c — a fixed set of threads that run one function on every worker at
 * once: ebm_pool_run() hands fn to the n - 1 threads, runs it as worker 0
 * on the calling thread, and returns when all n have finished. The trainer
 * runs every piece of a training step through it.
 */
#include <pthread.h>
#include <stdlib.h>

#include "train/train.h"

struct ebm_pool_thread {
	struct ebm_pool *pool;
	unsigned id;
	pthread_t thread;
};

static void *thread_main(void *arg)
{
	struct ebm_pool_thread *t = arg;
	struct ebm_pool *p = t->pool;
	uint64_t seen = 0;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->generation == seen) {
			pthread_cond_wait(&p->cv_start, &p->mu);
		}
		seen = p->generation;
		bool quit = p->quit;
		ebm_pool_fn fn = p->fn;
		void *arg_fn = p->arg;
		pthread_mutex_unlock(&p->mu);
		if (quit) {
			return NULL;
		}
		fn(arg_fn, t->id);
		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0) {
			pthread_cond_signal(&p->cv_done);
		}
		pthread_mutex_unlock(&p->mu);
	}
}

bool ebm_pool_init(struct ebm_pool *p, unsigned n)
{
	*p = (struct ebm_pool){.n = n};
	p->threads = calloc(n > 1 ? n - 1 : 1, sizeof(*p->threads));
	if (p->threads == NULL) {
		return false;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_start, NULL);
	pthread_cond_init(&p->cv_done, NULL);
	for (unsigned i = 1; i < n; i++) {
		struct ebm_pool_thread *t = &p->threads[i - 1];
		t->pool = p;
		t->id = i;
		if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
			ebm_pool_finish(p);
			return false;
		}
		p->n_started++;
	}
	return true;
}

void ebm_pool_run(struct ebm_pool *p, ebm_pool_fn fn, void *arg)
{
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->pending = p->n_started;
	p->generation++;
	pthread_cond_broadcast(&p->cv_start);
	pthread_mutex_unlock(&p->mu);
	fn(arg, 0);
	pthread_mutex_lock(&p->mu);
	while (p->pending > 0) {
		pthread_cond_wait(&p->cv_done, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
}

void ebm_pool_finish(struct ebm_pool *p)
{
	if (p->threads == NULL) {
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	p->generation++;
	pthread_cond_broadcast(&p->cv_start);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n_started; i++) {
		pthread_join(p->threads[i].thread, NULL);
	}
	free(p->threads);
	p->threads = NULL;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv_start);
	pthread_cond_destroy(&p->cv_done);
}
