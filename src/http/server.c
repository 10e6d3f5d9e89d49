/*
 * server.c — the HTTP server: `threads` workers, each with its own event
 * base, evhttp and scoring context, all accepting from ONE listening
 * socket.
 *
 * Why one shared socket rather than SO_REUSEPORT (one socket per worker):
 * a request is answered synchronously on its worker, and scoring a large
 * batch keeps that worker busy. With SO_REUSEPORT the kernel hashes every
 * new connection to a fixed socket, so connections would queue behind a
 * busy worker while others idle; with one socket, only workers waiting in
 * their event loop accept, so new connections go to idle workers. The
 * cost is that every idle worker wakes for each new connection and all
 * but one get EAGAIN (harmless at one worker per CPU). One socket also
 * cannot be joined by another process binding the same port, and port 0
 * needs no second bind. Each worker wraps the socket in its own
 * evconnlistener (without LEV_OPT_CLOSE_ON_FREE) bound with
 * evhttp_bind_listener; the server closes the socket itself.
 *
 * Limits: max_body_bytes is checked by routes.c so that the answer is a
 * JSON 413 that respects the status precedence; evhttp's own limit is set
 * above it (twice, and at least 64 KiB more) as a hard cap, beyond which
 * evhttp reads and drops the body and answers its own 413 page.
 * max_header_bytes and request_timeout_ms map to evhttp's header limit and
 * per-connection read/write timeout; evhttp 2.1 has one inactivity timeout
 * per connection, so idle keep-alive connections are closed after
 * request_timeout_ms too, or idle_timeout_ms if shorter. max_connections is
 * shared out among the workers: a worker that has as many connections
 * open as its share stops accepting until one closes. Connections are
 * counted from their first request (evhttp 2.1 reports a new connection
 * only then), through their close callback.
 *
 * Graceful stop: the stop event of each worker has the lowest priority,
 * so the worker first answers every request it has already read; then it
 * stops accepting, answers 503 to anything read later (with Connection:
 * close), waits until its responses are written (or drain_ms), and frees
 * its evhttp, which closes the remaining idle connections.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "conf/conf.h"
#include "http/http.h"
#include "util/util.h"

#define PRIO_COUNT 3
#define PRIO_STOP 2  /* below the default (PRIO_COUNT / 2) */
#define LISTEN_BACKLOG 511

struct worker {
	struct ebm_http_worker w;     /* what routes.c sees */
	struct ebm_http_server *srv;
	pthread_t thread;
	bool started;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *stop_ev;
	struct event *drain_ev;
	double drain_deadline;
	size_t pending;               /* responses not yet written */
	/* open connections (identity only; never dereferenced) */
	struct evhttp_connection **conns;
	size_t n_conns;
	size_t cap_conns;
	size_t max_conns;             /* this worker's share */
	bool accepting_paused;
	bool warned_limit;
};

struct ebm_http_server {
	struct ebm_http_options opts;
	char *listen;
	struct ebm_http_metrics *metrics;
	int fd;
	char address[80];
	size_t n_workers;
	struct worker *workers;
	pthread_mutex_t lock;         /* guards `current` */
	struct ebm_http_catalog *current;
	atomic_bool stopping;
	atomic_size_t running;        /* worker threads not yet exited */
	void (*done)(void *);
	void *done_user;
};

/* ======================================================================
 * Listening socket
 * ==================================================================== */

static void format_address(const struct sockaddr_storage *ss, char *buf,
		size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
		snprintf(buf, size, "[%s]:%u", ip, port);
		return;
	}
	const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	port = ntohs(a->sin_port);
	snprintf(buf, size, "%s:%u", ip, port);
}

static enum ebm_status bind_socket(struct ebm_http_server *s,
		struct ebm_error *err)
{
	char *host = NULL;
	unsigned port;
	if (!ebm_conf_parse_listen(s->listen, &host, &port)) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"listen '%s': expected HOST:PORT", s->listen);
	}
	char port_s[8];
	snprintf(port_s, sizeof(port_s), "%u", port);
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port_s, &hints, &res);
	free(host);
	if (rc != 0) {
		return ebm_error_set(err, EBM_STATUS_IO, "listen '%s': %s",
				s->listen, gai_strerror(rc));
	}
	int saved = 0;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
				ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0
				&& listen(fd, LISTEN_BACKLOG) == 0) {
			s->fd = fd;
			break;
		}
		saved = errno;
		close(fd);
	}
	freeaddrinfo(res);
	if (s->fd < 0) {
		return ebm_error_set_errno(err, saved, "cannot listen on %s",
				s->listen);
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0) {
		format_address(&ss, s->address, sizeof(s->address));
	} else {
		snprintf(s->address, sizeof(s->address), "%s", s->listen);
	}
	return EBM_STATUS_OK;
}

/* ======================================================================
 * Catalog swap
 * ==================================================================== */

/*
 * A mutex rather than a bare atomic pointer: taking a reference is "load
 * the pointer, then increment its count", and without the lock a reload
 * could drop the last reference in between. The critical sections are a
 * few instructions long.
 */
struct ebm_http_catalog *ebm_http_server_acquire(struct ebm_http_server *s)
{
	pthread_mutex_lock(&s->lock);
	struct ebm_http_catalog *c = s->current;
	if (c != NULL) {
		ebm_http_catalog_ref(c);
	}
	pthread_mutex_unlock(&s->lock);
	return c;
}

void ebm_http_server_publish(struct ebm_http_server *s,
		struct ebm_http_catalog *c)
{
	pthread_mutex_lock(&s->lock);
	struct ebm_http_catalog *old = s->current;
	s->current = c;
	pthread_mutex_unlock(&s->lock);
	ebm_http_catalog_unref(old);
}

bool ebm_http_server_stopping(const struct ebm_http_server *s)
{
	return atomic_load(&s->stopping);
}

const char *ebm_http_server_address(const struct ebm_http_server *s)
{
	return s->address;
}

/* ======================================================================
 * Workers
 * ==================================================================== */

void *ebm_http_worker_scratch(struct ebm_http_worker *w,
		enum ebm_http_scratch which, size_t n, size_t size)
{
	size_t bytes;
	if (!ebm_mul_size(n > 0 ? n : 1, size, &bytes)) {
		return NULL;
	}
	if (bytes > w->scratch[which].bytes) {
		void *p = realloc(w->scratch[which].p, bytes);
		if (p == NULL) {
			return NULL;
		}
		w->scratch[which].p = p;
		w->scratch[which].bytes = bytes;
	}
	return w->scratch[which].p;
}

static void pause_accepting(struct worker *wk, bool pause)
{
	if (wk->bound == NULL || wk->accepting_paused == pause) {
		return;
	}
	struct evconnlistener *l = evhttp_bound_socket_get_listener(wk->bound);
	if (pause) {
		evconnlistener_disable(l);
		/* Once at warn level; under sustained load it would repeat. */
		if (!wk->warned_limit) {
			ebm_log_warn("worker %zu: %zu connections open (its share of "
					"max_connections), not accepting more until one "
					"closes", wk->w.index, wk->n_conns);
			wk->warned_limit = true;
		} else {
			ebm_log_debug("worker %zu: at its connection limit again",
					wk->w.index);
		}
	} else {
		evconnlistener_enable(l);
	}
	wk->accepting_paused = pause;
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct worker *wk = arg;
	for (size_t i = 0; i < wk->n_conns; i++) {
		if (wk->conns[i] == evcon) {
			wk->conns[i] = wk->conns[--wk->n_conns];
			break;
		}
	}
	if (wk->n_conns < wk->max_conns && !wk->w.draining) {
		pause_accepting(wk, false);
	}
}

static void track_connection(struct worker *wk, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon == NULL) {
		return;
	}
	for (size_t i = 0; i < wk->n_conns; i++) {
		if (wk->conns[i] == evcon) {
			return;
		}
	}
	if (wk->n_conns == wk->cap_conns) {
		wk->cap_conns = wk->cap_conns > 0 ? 2 * wk->cap_conns : 64;
		wk->conns = ebm_xrealloc(wk->conns,
				wk->cap_conns * sizeof(*wk->conns));
	}
	wk->conns[wk->n_conns++] = evcon;
	evhttp_connection_set_closecb(evcon, on_conn_close, wk);
	if (wk->n_conns >= wk->max_conns) {
		pause_accepting(wk, true);
	}
}

static void on_complete(struct evhttp_request *req, void *arg)
{
	(void)req;
	struct worker *wk = arg;
	if (wk->pending > 0) {
		wk->pending--;
	}
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct worker *wk = arg;
	track_connection(wk, req);
	wk->pending++;
	evhttp_request_set_on_complete_cb(req, on_complete, wk);
	ebm_http_route(&wk->w, req);
}

static void finish_drain(struct worker *wk)
{
	if (wk->http != NULL) {
		/* Closes the connections that are left (idle keep-alive). */
		evhttp_free(wk->http);
		wk->http = NULL;
		wk->bound = NULL;
	}
	event_base_loopbreak(wk->base);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *wk = arg;
	if (wk->pending == 0 || ebm_now() >= wk->drain_deadline) {
		if (wk->pending > 0) {
			ebm_log_warn("worker %zu: %zu responses still unwritten after "
					"%u ms, closing", wk->w.index, wk->pending,
					wk->srv->opts.drain_ms);
		}
		finish_drain(wk);
	}
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *wk = arg;
	if (wk->w.draining) {
		return;
	}
	wk->w.draining = true;
	if (wk->bound != NULL) {
		evhttp_del_accept_socket(wk->http, wk->bound);
		wk->bound = NULL;
	}
	wk->drain_deadline = ebm_now() + wk->srv->opts.drain_ms / 1e3;
	struct timeval tick = { 0, 10 * 1000 };
	wk->drain_ev = event_new(wk->base, -1, EV_PERSIST, on_drain_tick, wk);
	if (wk->drain_ev == NULL || event_add(wk->drain_ev, &tick) != 0) {
		finish_drain(wk);
	}
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct ebm_http_server *s = wk->srv;
	event_base_dispatch(wk->base);
	ebm_log_debug("worker %zu: stopped", wk->w.index);
	if (atomic_fetch_sub(&s->running, 1) == 1 && s->done != NULL) {
		s->done(s->done_user);
	}
	return NULL;
}

static enum ebm_status worker_init(struct ebm_http_server *s,
		struct worker *wk, size_t index, struct ebm_error *err)
{
	const struct ebm_http_options *o = &s->opts;
	wk->srv = s;
	wk->w.server = s;
	wk->w.options = &s->opts;
	wk->w.metrics = s->metrics;
	wk->w.adhoc_stats = ebm_http_metrics_model(s->metrics, "_adhoc");
	wk->w.index = index;
	wk->w.ctx = ebm_ctx_create();
	ebm_http_buf_init(&wk->w.out);
	size_t share = (o->max_connections + s->n_workers - 1) / s->n_workers;
	wk->max_conns = share > 0 ? share : 1;

	wk->base = event_base_new();
	if (wk->base == NULL || event_base_priority_init(wk->base, PRIO_COUNT)
			!= 0) {
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"cannot create an event base");
	}
	wk->http = evhttp_new(wk->base);
	if (wk->http == NULL) {
		return ebm_error_set(err, EBM_STATUS_NOMEM, "cannot create evhttp");
	}
	uint64_t cap = o->max_body_bytes;
	uint64_t extra = o->max_body_bytes > 65536 ? o->max_body_bytes : 65536;
	cap = cap + extra < cap ? UINT64_MAX : cap + extra;
	evhttp_set_max_body_size(wk->http, (ev_ssize_t)(cap > INT64_MAX
			? INT64_MAX : cap));
	evhttp_set_max_headers_size(wk->http, o->max_header_bytes);
	unsigned timeout_ms = o->request_timeout_ms;
	if (o->idle_timeout_ms > 0 && o->idle_timeout_ms < timeout_ms) {
		timeout_ms = o->idle_timeout_ms;
	}
	struct timeval tv = {
		.tv_sec = timeout_ms / 1000,
		.tv_usec = (timeout_ms % 1000) * 1000,
	};
	evhttp_set_timeout_tv(wk->http, &tv);
	/* Every method reaches us, so that a wrong one gets 405 + Allow
	 * rather than evhttp's 501. */
	evhttp_set_allowed_methods(wk->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST
			| EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE
			| EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT
			| EVHTTP_REQ_PATCH);
	/* Read and drop an oversized body before answering, so the client
	 * sees the answer rather than a reset. */
	evhttp_set_flags(wk->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_gencb(wk->http, on_request, wk);

	struct evconnlistener *l = evconnlistener_new(wk->base, NULL, NULL,
			LEV_OPT_CLOSE_ON_EXEC, 0, s->fd);
	if (l == NULL) {
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"cannot create a listener");
	}
	wk->bound = evhttp_bind_listener(wk->http, l);
	if (wk->bound == NULL) {
		evconnlistener_free(l);
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"cannot attach the listener to evhttp");
	}
	wk->stop_ev = event_new(wk->base, -1, 0, on_stop, wk);
	if (wk->stop_ev == NULL || event_priority_set(wk->stop_ev, PRIO_STOP)
			!= 0) {
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"cannot create the stop event");
	}
	return EBM_STATUS_OK;
}

static void worker_finish(struct worker *wk)
{
	if (wk->drain_ev != NULL) {
		event_free(wk->drain_ev);
	}
	if (wk->stop_ev != NULL) {
		event_free(wk->stop_ev);
	}
	if (wk->http != NULL) {
		evhttp_free(wk->http);
	}
	if (wk->base != NULL) {
		event_base_free(wk->base);
	}
	ebm_ctx_destroy(wk->w.ctx);
	ebm_http_buf_finish(&wk->w.out);
	for (size_t i = 0; i < EBM_HTTP_SCRATCH_COUNT; i++) {
		free(wk->w.scratch[i].p);
	}
	free(wk->conns);
}

/* ======================================================================
 * Server
 * ==================================================================== */

enum ebm_status ebm_http_server_create(const struct ebm_http_options *o,
		struct ebm_http_metrics *metrics, struct ebm_http_server **out,
		struct ebm_error *err)
{
	*out = NULL;
	/* Event bases created from here on can be woken from other threads
	 * (the stop signal comes from the main thread). */
	if (evthread_use_pthreads() != 0) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"libevent has no pthreads support");
	}
	struct ebm_http_server *s = ebm_xcalloc(1, sizeof(*s));
	s->opts = *o;
	s->listen = ebm_xstrdup(o->listen);
	s->opts.listen = s->listen;
	s->opts.threads = o->threads > 0 ? o->threads : 1;
	s->metrics = metrics;
	s->fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->stopping, false);
	atomic_init(&s->running, 0);

	enum ebm_status st = bind_socket(s, err);
	if (st != EBM_STATUS_OK) {
		ebm_http_server_destroy(s);
		return st;
	}
	s->n_workers = s->opts.threads;
	s->workers = ebm_xcalloc(s->n_workers, sizeof(*s->workers));
	for (size_t i = 0; i < s->n_workers; i++) {
		st = worker_init(s, &s->workers[i], i, err);
		if (st != EBM_STATUS_OK) {
			ebm_http_server_destroy(s);
			return st;
		}
	}
	*out = s;
	return EBM_STATUS_OK;
}

enum ebm_status ebm_http_server_start(struct ebm_http_server *s,
		struct ebm_error *err)
{
	for (size_t i = 0; i < s->n_workers; i++) {
		struct worker *wk = &s->workers[i];
		atomic_fetch_add(&s->running, 1);
		int rc = pthread_create(&wk->thread, NULL, worker_main, wk);
		if (rc != 0) {
			atomic_fetch_sub(&s->running, 1);
			return ebm_error_set_errno(err, rc,
					"cannot start worker thread %zu", i);
		}
		wk->started = true;
	}
	return EBM_STATUS_OK;
}

void ebm_http_server_stop(struct ebm_http_server *s, void (*done)(void *),
		void *user)
{
	if (atomic_exchange(&s->stopping, true)) {
		return;
	}
	s->done = done;
	s->done_user = user;
	size_t started = 0;
	for (size_t i = 0; i < s->n_workers; i++) {
		if (s->workers[i].started) {
			started++;
			event_active(s->workers[i].stop_ev, 0, 0);
		}
	}
	if (started == 0 && done != NULL) {
		done(user);
	}
}

void ebm_http_server_destroy(struct ebm_http_server *s)
{
	if (s == NULL) {
		return;
	}
	for (size_t i = 0; i < s->n_workers; i++) {
		if (s->workers[i].started) {
			pthread_join(s->workers[i].thread, NULL);
		}
	}
	for (size_t i = 0; i < s->n_workers; i++) {
		worker_finish(&s->workers[i]);
	}
	free(s->workers);
	if (s->fd >= 0) {
		close(s->fd);
	}
	ebm_http_catalog_unref(s->current);
	pthread_mutex_destroy(&s->lock);
	free(s->listen);
	free(s);
}
