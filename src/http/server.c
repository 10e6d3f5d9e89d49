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
 * JSON 413 that respects the status precedence. Bodies are buffered up to
 * a hard cap above it (twice, and at least 64 KiB more); conn.c answers a
 * body beyond the cap from the request's head alone (the same JSON and
 * precedence, then Connection: close) without reading it. evhttp's own
 * limit is set higher still, for connections conn.c could not track.
 * max_header_bytes is counted by conn.c (a JSON 431); evhttp's own
 * header limit, set a little higher, is a backstop (it would answer 413
 * in HTML).
 *
 * Connection tracking, the header limit and the per-connection deadlines
 * live in conn.c; worker.h has the structs both files share.
 *
 * Graceful stop: the stop event of each worker has the lowest priority,
 * so the worker first answers every request it has already read; then it
 * stops accepting. A request whose bytes had begun to arrive is in flight:
 * it is read to the end and answered as usual; a request that begins
 * later is answered 503; both with Connection: close. The worker waits
 * until those requests have arrived and every response is written (or
 * drain_ms), and frees its evhttp, which closes the idle connections.
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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "conf/conf.h"
#include "http/worker.h"
#include "util/util.h"

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

/* The daemon's model repository for /v2 (set before the workers start,
 * read by them). */
void ebm_http_server_set_repository(struct ebm_http_server *s,
		const struct ebm_http_repository *repo)
{
	s->repository = repo;
}

const struct ebm_http_repository *ebm_http_server_repository(
		const struct ebm_http_server *s)
{
	return s->repository;
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


static void on_complete(struct evhttp_request *req, void *arg)
{
	struct worker *wk = arg;
	if (wk->pending > 0) {
		wk->pending--;
	}
	struct conn *c = conn_find(wk, evhttp_request_get_connection(req));
	if (c != NULL && c->phase == CONN_BUSY) {
		/* Bytes of the next request may be buffered already. */
		conn_start_reading(c);
	}
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct worker *wk = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct conn *c = conn_find(wk, evcon);
	if (c != NULL) {
		conn_set_phase(c, CONN_BUSY);
	}
	wk->pending++;
	evhttp_request_set_on_complete_cb(req, on_complete, wk);
	/* Stopping: a request that had begun to arrive is in flight and gets
	 * its answer; one that began later gets 503. */
	bool stopping = wk->w.draining;
	wk->w.draining = stopping && !(c != NULL && c->began_before_stop);
	if (c != NULL) {
		c->began_before_stop = false;
	}
	double t0 = ebm_now();
	ebm_http_route(&wk->w, req);
	wk->w.draining = stopping;
	double dt = ebm_now() - t0;
	if (dt >= BLOCKED_MIN_MS / 1e3) {
		wk->blocked_ns += (uint64_t)(dt * 1e9);
	}
	/* The answer is queued; now it must be read. (Looked up again: the
	 * connection is not freed during the route, but cheap to be sure.) */
	c = conn_find(wk, evcon);
	if (c != NULL && c->phase == CONN_BUSY) {
		conn_arm(c, &wk->request_tv);
	}
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
	size_t arriving = 0;
	for (size_t i = 0; i < wk->n_conns; i++) {
		const struct conn *c = wk->conns[i];
		arriving += c->began_before_stop && c->phase == CONN_READING;
	}
	if ((wk->pending == 0 && arriving == 0)
			|| ebm_now() >= wk->drain_deadline) {
		if (wk->pending + arriving > 0) {
			ebm_log_warn("worker %zu: %zu responses still unwritten and "
					"%zu requests still arriving after %u ms, closing",
					wk->w.index, wk->pending, arriving,
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
	wk->w.closing = true;
	for (size_t i = 0; i < wk->n_conns; i++) {
		struct conn *c = wk->conns[i];
		c->began_before_stop = c->phase == CONN_READING;
	}
	if (wk->bound != NULL) {
		evhttp_del_accept_socket(wk->http, wk->bound);
		wk->bound = NULL;
	}
	if (wk->backoff_ev != NULL) {
		event_del(wk->backoff_ev);
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
	conn_this_worker = wk;
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
	cap = cap + extra < cap ? UINT64_MAX / 2 : cap + extra;
	wk->body_cap = cap;
	ebm_http_buf_init(&wk->answer);
	/* Behind conn.c's cap, for connections it could not track (out of
	 * memory): there evhttp answers its own HTML 413. */
	cap = cap + 65536 < cap ? UINT64_MAX : cap + 65536;
	evhttp_set_max_body_size(wk->http, (ev_ssize_t)(cap > INT64_MAX
			? INT64_MAX : cap));
	/* Ours counts line ends too, so it trips first (see the top). */
	evhttp_set_max_headers_size(wk->http, (size_t)o->max_header_bytes
			+ 1024);
	char body[200];
	int blen = snprintf(body, sizeof(body), "{\"error\":{\"code\":"
			"\"headers_too_large\",\"message\":\"request line and headers "
			"exceed max_header_bytes (%u bytes)\"}}", o->max_header_bytes);
	char answer[400];
	snprintf(answer, sizeof(answer), "HTTP/1.1 431 Request Header Fields "
			"Too Large\r\nContent-Type: application/json\r\n"
			"Content-Length: %d\r\nConnection: close\r\n\r\n%s", blen, body);
	wk->answer_431 = ebm_xstrdup(answer);
	wk->answer_431_len = strlen(wk->answer_431);
	wk->linger_tv = ms_to_tv(LINGER_MS);
	wk->request_tv = ms_to_tv(o->request_timeout_ms);
	wk->idle_tv = ms_to_tv(o->idle_timeout_ms > 0 ? o->idle_timeout_ms
			: o->request_timeout_ms);
	/* Behind our own timers, never before them. */
	wk->backstop_tv = ms_to_tv((o->idle_timeout_ms > o->request_timeout_ms
			? o->idle_timeout_ms : o->request_timeout_ms) + 1000);
	wk->tracked_tv = (struct timeval){ .tv_sec = TRACKED_BACKSTOP_S };
	evhttp_set_timeout_tv(wk->http, &wk->backstop_tv);
	evhttp_set_bevcb(wk->http, conn_make_bev, wk);
	wk->adopt_ev = event_new(wk->base, -1, 0, conn_on_adopt, wk);
	wk->backoff_ev = evtimer_new(wk->base, conn_on_backoff_end, wk);
	if (wk->adopt_ev == NULL || wk->backoff_ev == NULL
			|| event_priority_set(wk->adopt_ev, PRIO_ADOPT) != 0) {
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"cannot create the connection events");
	}
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
	evconnlistener_set_error_cb(l, conn_on_accept_error);
	wk->accepting = true;
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
		/* Closes the connections left (their close callbacks run). */
		evhttp_free(wk->http);
	}
	for (size_t i = 0; i < wk->n_fresh; i++) {
		bufferevent_decref(wk->fresh[i]);
	}
	free(wk->fresh);
	free(wk->answer_431);
	ebm_http_buf_finish(&wk->answer);
	if (wk->adopt_ev != NULL) {
		event_free(wk->adopt_ev);
	}
	if (wk->backoff_ev != NULL) {
		event_free(wk->backoff_ev);
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
