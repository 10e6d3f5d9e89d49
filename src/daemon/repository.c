/*
 * repository.c — the model repository extension of /v2 (API.md section
 * 5: index, load, unload) for the HTTP workers, run on the main thread.
 *
 * The registry belongs to the main thread (daemon.h), which also runs
 * SIGHUP and the watch's reloads. A worker's call is therefore a job: it
 * is queued under a mutex, the main loop is woken (event_active is
 * thread-safe with libevent's pthreads support), the main thread runs the
 * job against the registry and publishes the catalog it yields, and the
 * worker, waiting on a condition variable, sends the answer. Jobs run one
 * at a time between the main loop's other events, so a load never
 * interleaves with a reload. Once closed (shutdown), queued and new jobs
 * fail with 503 instead of waiting for a loop that no longer runs.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/daemon.h"
#include "util/util.h"

enum job_kind { JOB_INDEX, JOB_LOAD, JOB_UNLOAD };

struct job {
	enum job_kind kind;
	const char *name;
	struct ebm_http_buf *out;      /* index */
	bool ok;
	struct ebm_http_error e;
	bool done;
	struct job *next;
};

struct ebmd_repository {
	struct ebm_http_repository ops;
	struct ebmd_registry *registry;
	struct ebm_http_server *server;
	const struct ebm_conf *conf;
	char *const *token;
	struct event *ev;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head;              /* queued, oldest first */
	struct job *tail;
	bool closed;
};

static void run_job(struct ebmd_repository *r, struct job *j)
{
	struct ebm_http_catalog *c = NULL;
	j->ok = true;
	if (j->kind == JOB_INDEX) {
		ebmd_registry_index(r->registry, r->conf, j->out);
		return;
	}
	if (j->kind == JOB_LOAD) {
		char why[sizeof(j->e.message)];
		c = ebmd_registry_load_file(r->registry, r->conf, *r->token,
				j->name, why, sizeof(why));
		if (c == NULL) {
			j->ok = ebm_http_fail(&j->e, 400, "load_failed", "%s", why);
			ebm_log_error("repository load of '%s' refused: %s", j->name,
					why);
			return;
		}
	} else {
		c = ebmd_registry_unload(r->registry, r->conf, *r->token, j->name);
		if (c == NULL) {
			j->ok = ebm_http_fail(&j->e, 404, "unknown_model",
					"model '%.128s' is not served", j->name);
			return;
		}
	}
	size_t files = c->n_model_files;
	size_t comps = c->n_entries - c->n_model_files;
	ebm_http_server_publish(r->server, c);
	ebm_log_info("repository %s of '%s': serving %zu models and %zu "
			"compositions", j->kind == JOB_LOAD ? "load" : "unload", j->name,
			files, comps);
}

static void on_jobs(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ebmd_repository *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->lock);
		struct job *j = r->head;
		if (j != NULL) {
			r->head = j->next;
			if (r->head == NULL) {
				r->tail = NULL;
			}
		}
		pthread_mutex_unlock(&r->lock);
		if (j == NULL) {
			return;
		}
		run_job(r, j);
		pthread_mutex_lock(&r->lock);
		j->done = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
	}
}

/* On a worker thread: queues j and waits until it is done or refused. */
static bool submit(struct ebmd_repository *r, struct job *j)
{
	pthread_mutex_lock(&r->lock);
	if (r->closed) {
		pthread_mutex_unlock(&r->lock);
		return ebm_http_fail(&j->e, 503, "shutting_down",
				"ebmd is shutting down");
	}
	j->next = NULL;
	if (r->tail != NULL) {
		r->tail->next = j;
	} else {
		r->head = j;
	}
	r->tail = j;
	event_active(r->ev, 0, 0);
	while (!j->done) {
		pthread_cond_wait(&r->cond, &r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return j->ok;
}

static bool op_index(void *user, struct ebm_http_buf *out,
		struct ebm_http_error *e)
{
	struct job j = { .kind = JOB_INDEX, .out = out };
	bool ok = submit(user, &j);
	*e = j.e;
	return ok;
}

static bool op_load(void *user, const char *name, struct ebm_http_error *e)
{
	struct job j = { .kind = JOB_LOAD, .name = name };
	bool ok = submit(user, &j);
	*e = j.e;
	return ok;
}

static bool op_unload(void *user, const char *name, struct ebm_http_error *e)
{
	struct job j = { .kind = JOB_UNLOAD, .name = name };
	bool ok = submit(user, &j);
	*e = j.e;
	return ok;
}

struct ebmd_repository *ebmd_repository_create(struct event_base *base,
		struct ebmd_registry *registry, struct ebm_http_server *server,
		const struct ebm_conf *conf, char *const *token)
{
	struct ebmd_repository *r = ebm_xcalloc(1, sizeof(*r));
	r->registry = registry;
	r->server = server;
	r->conf = conf;
	r->token = token;
	r->ev = event_new(base, -1, 0, on_jobs, r);
	if (r->ev == NULL) {
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->ops = (struct ebm_http_repository){
		.user = r, .index = op_index, .load = op_load, .unload = op_unload,
	};
	ebm_http_server_set_repository(server, &r->ops);
	return r;
}

void ebmd_repository_close(struct ebmd_repository *r)
{
	if (r == NULL) {
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->closed = true;
	for (struct job *j = r->head; j != NULL; j = j->next) {
		j->ok = ebm_http_fail(&j->e, 503, "shutting_down",
				"ebmd is shutting down");
		j->done = true;
	}
	r->head = r->tail = NULL;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void ebmd_repository_destroy(struct ebmd_repository *r)
{
	if (r == NULL) {
		return;
	}
	event_free(r->ev);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}
