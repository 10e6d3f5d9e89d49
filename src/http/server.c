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
 * max_header_bytes: we count the bytes of each request's line and
 * headers, line ends included, as they arrive; beyond the limit the
 * connection gets a JSON 431 and is closed (after reading and dropping
 * what the client still sends, for at most LINGER_MS, so that it sees the
 * answer rather than a reset). evhttp's own header limit, set a little
 * higher, is a backstop (it would answer 413 in HTML).
 *
 * Connections are tracked from the moment they are accepted: evhttp 2.1
 * reports nothing before a complete request, but it asks us for each new
 * connection's bufferevent (evhttp_set_bevcb). We make it, count the
 * connection, and once evhttp has wrapped it (a priority-0 event, before
 * any I/O can happen on it) find its evhttp_connection through the
 * bufferevent's callback argument and attach a close callback, a timer
 * and a callback on its input buffer. Then:
 *   - max_connections is shared out among the workers; a worker with as
 *     many connections open as its share stops accepting until one
 *     closes, idle ones included. (A failing accept(), e.g. EMFILE, pauses
 *     accepting for ACCEPT_BACKOFF_MS rather than spinning.)
 *   - A connection waiting for a request (just accepted, or its last
 *     response written) is closed after idle_timeout_ms without a byte.
 *   - From its first byte, a request must be read completely (line,
 *     headers, body) within request_timeout_ms, however the bytes trickle
 *     in; else the connection is closed. evhttp's own timeout only
 *     measures inactivity, which one byte a second never triggers.
 *   - A response being written must make progress at least every
 *     request_timeout_ms.
 *   - A long answer blocks the worker (a request is answered
 *     synchronously, and the loop reads and writes nothing meanwhile); that
 *     time is not charged to the other connections: a deadline that falls
 *     due is first moved on by the time the worker spent in answers of at
 *     least BLOCKED_MIN_MS since it was set. Shorter answers do not count:
 *     between them the loop serves every connection, and counting them
 *     would let a steady load of small requests suspend the deadlines (and
 *     shelter slow clients). evhttp's own timeouts would charge it all, so
 *     for tracked connections they are set out of the way
 *     (TRACKED_BACKSTOP_S).
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
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "conf/conf.h"
#include "http/http.h"
#include "util/util.h"

#define PRIO_COUNT 3
#define PRIO_ADOPT 0 /* above everything: runs before any I/O */
#define PRIO_STOP 2  /* below the default (PRIO_COUNT / 2) */
#define LISTEN_BACKLOG 511
#define ACCEPT_BACKOFF_MS 100
#define LINGER_MS 1000
/* evhttp's inactivity timeout on connections our timers look after. */
#define TRACKED_BACKSTOP_S 86400
/* Answers at least this long are time the other connections are owed. */
#define BLOCKED_MIN_MS 50

struct worker;

enum conn_phase {
	CONN_IDLE = 0,   /* waiting for a request: idle_timeout_ms */
	CONN_READING,    /* a request has begun: request_timeout_ms in all */
	CONN_BUSY,       /* request complete, answering and writing: the
	                  * response must progress every request_timeout_ms */
	CONN_REJECTED,   /* 431 sent; dropping input until LINGER_MS */
};

/* One accepted connection (owned by the worker, freed by its close
 * callback). */
struct conn {
	struct worker *wk;
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	struct event *timer;
	struct evbuffer_cb_entry *input_cb;
	struct evbuffer_cb_entry *output_cb;
	enum conn_phase phase;
	bool began_before_stop;       /* was READING when the stop came */
	uint64_t busy_mark;           /* wk->blocked_ns when the timer was set */
	size_t index;                 /* in wk->conns */
	/* the current request's line and headers, as they arrive */
	size_t hdr_bytes;             /* up to and including the empty line */
	size_t hdr_lines;
	bool hdr_line_nonempty;
	bool hdr_done;
};

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
	struct conn **conns;          /* tracked connections */
	size_t n_conns;
	size_t cap_conns;
	/* accepted, bufferevent made, not yet adopted (one reference each) */
	struct bufferevent **fresh;
	size_t n_fresh;
	size_t cap_fresh;
	struct event *adopt_ev;
	size_t n_open;                /* fresh + tracked */
	size_t max_conns;             /* this worker's share */
	bool accepting;               /* the listener is enabled */
	bool backoff;                 /* accept() failed; retry later */
	struct event *backoff_ev;
	bool warned_limit;
	bool warned_accept;
	struct timeval idle_tv;       /* idle_timeout_ms */
	struct timeval request_tv;    /* request_timeout_ms */
	struct timeval backstop_tv;   /* untracked connections (no memory):
	                               * the larger of the two, plus 1 s */
	struct timeval tracked_tv;    /* TRACKED_BACKSTOP_S */
	uint64_t blocked_ns;          /* time in answers of BLOCKED_MIN_MS or
	                               * more, in total */
	struct timeval linger_tv;
	char *answer_431;             /* the whole HTTP response */
	size_t answer_431_len;
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

static struct timeval ms_to_tv(unsigned ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000) * 1000,
	};
	return tv;
}

/* Enables the listener exactly when this worker should accept: not
 * draining, under its share of max_connections, not backing off. */
static void update_accepting(struct worker *wk)
{
	if (wk->bound == NULL) {
		return;
	}
	bool want = !wk->w.draining && wk->n_open < wk->max_conns
			&& !wk->backoff;
	if (want == wk->accepting) {
		return;
	}
	struct evconnlistener *l = evhttp_bound_socket_get_listener(wk->bound);
	if (want) {
		evconnlistener_enable(l);
	} else {
		evconnlistener_disable(l);
		if (wk->n_open >= wk->max_conns) {
			/* Once at warn level; under sustained load it would
			 * repeat. */
			if (!wk->warned_limit) {
				ebm_log_warn("worker %zu: %zu connections open (its share "
						"of max_connections), not accepting more until one "
						"closes", wk->w.index, wk->n_open);
				wk->warned_limit = true;
			} else {
				ebm_log_debug("worker %zu: at its connection limit again",
						wk->w.index);
			}
		}
	}
	wk->accepting = want;
}

static struct conn *find_conn(struct worker *wk,
		struct evhttp_connection *evcon)
{
	for (size_t i = 0; i < wk->n_conns; i++) {
		if (wk->conns[i]->evcon == evcon) {
			return wk->conns[i];
		}
	}
	return NULL;
}

static void arm(struct conn *c, const struct timeval *tv)
{
	c->busy_mark = c->wk->blocked_ns;
	event_add(c->timer, tv);
}

/* Enters a phase and sets its deadline. */
static void set_phase(struct conn *c, enum conn_phase phase)
{
	struct worker *wk = c->wk;
	c->phase = phase;
	switch (phase) {
	case CONN_IDLE:
		arm(c, &wk->idle_tv);
		break;
	case CONN_READING:
		c->hdr_bytes = 0;
		c->hdr_lines = 0;
		c->hdr_line_nonempty = false;
		c->hdr_done = false;
		arm(c, &wk->request_tv);
		break;
	case CONN_BUSY:
		/* Armed once the answer is queued (on_request). */
		event_del(c->timer);
		break;
	case CONN_REJECTED:
		arm(c, &wk->linger_tv);
		break;
	}
}

/* Bytes of a response left for the client: it is still reading. */
static void on_output(struct evbuffer *buf,
		const struct evbuffer_cb_info *info, void *arg)
{
	(void)buf;
	struct conn *c = arg;
	if (info->n_deleted > 0 && c->phase == CONN_BUSY) {
		arm(c, &c->wk->request_tv);
	}
}

/*
 * Follows the request line and headers through n bytes: a line ends with
 * LF (a CR before it does not count as content), and the first empty line
 * after the request line ends the headers. Returns the bytes that belong
 * to them.
 */
static size_t scan_header_bytes(struct conn *c, const unsigned char *p,
		size_t n)
{
	for (size_t i = 0; i < n; i++) {
		c->hdr_bytes++;
		if (p[i] == '\n') {
			if (c->hdr_lines > 0 && !c->hdr_line_nonempty) {
				c->hdr_done = true;
				return i + 1;
			}
			c->hdr_lines++;
			c->hdr_line_nonempty = false;
		} else if (p[i] != '\r') {
			c->hdr_line_nonempty = true;
		}
	}
	return n;
}

/* Scans buf from offset `from` on; true when the request's line and
 * headers are over max_header_bytes. */
static bool headers_too_large(struct conn *c, struct evbuffer *buf,
		size_t from)
{
	size_t len = evbuffer_get_length(buf);
	size_t off = from;
	while (!c->hdr_done && off < len
			&& c->hdr_bytes <= c->wk->srv->opts.max_header_bytes) {
		struct evbuffer_ptr pos;
		struct evbuffer_iovec vec[8];
		if (evbuffer_ptr_set(buf, &pos, off, EVBUFFER_PTR_SET) != 0) {
			break;
		}
		int n = evbuffer_peek(buf, (ev_ssize_t)(len - off), &pos, vec, 8);
		if (n <= 0) {
			break;
		}
		for (int i = 0; i < n && i < 8 && !c->hdr_done && off < len; i++) {
			size_t m = vec[i].iov_len < len - off ? vec[i].iov_len
					: len - off;
			off += scan_header_bytes(c, vec[i].iov_base, m);
		}
	}
	return c->hdr_bytes > c->wk->srv->opts.max_header_bytes;
}

/* Headers over the limit: answer 431 straight on the socket (evhttp has
 * no request to answer yet), end our side, and drop whatever else comes
 * until the client closes or LINGER_MS pass. */
static void reject_headers(struct conn *c, struct evbuffer *buf)
{
	struct worker *wk = c->wk;
	ebm_http_metrics_drop(wk->w.metrics, wk->w.index,
			EBM_HTTP_DROP_HEADERS_TOO_LARGE);
	ebm_log_debug("worker %zu: request line and headers over "
			"max_header_bytes: 431, closing", wk->w.index);
	set_phase(c, CONN_REJECTED);
	/* evhttp must not parse any of it. */
	evbuffer_drain(buf, evbuffer_get_length(buf));
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd >= 0) {
		/* Small, and nothing else is queued: it fits the socket
		 * buffer; if not, the client gets the close alone. */
		ssize_t w = send(fd, wk->answer_431, wk->answer_431_len,
				MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		shutdown(fd, SHUT_WR);
	}
}

/* Bytes arrived on a connection (called by the input buffer as they are
 * added, before evhttp parses them): the first byte of a request starts
 * its deadline, and its line and headers are measured. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
		void *arg)
{
	struct conn *c = arg;
	if (info->n_added == 0) {
		return;
	}
	if (c->phase == CONN_REJECTED) {
		evbuffer_drain(buf, evbuffer_get_length(buf));
		return;
	}
	if (c->phase == CONN_IDLE) {
		set_phase(c, CONN_READING);
	}
	if (c->phase == CONN_READING) {
		size_t len = evbuffer_get_length(buf);
		size_t from = len > info->n_added ? len - info->n_added : 0;
		if (headers_too_large(c, buf, from)) {
			reject_headers(c, buf);
		}
	}
}

/* Enters READING with what is already buffered (pipelined bytes). */
static void start_reading_buffered(struct conn *c)
{
	struct evbuffer *buf = bufferevent_get_input(c->bev);
	if (evbuffer_get_length(buf) == 0) {
		set_phase(c, CONN_IDLE);
		return;
	}
	set_phase(c, CONN_READING);
	if (headers_too_large(c, buf, 0)) {
		reject_headers(c, buf);
	}
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	struct worker *wk = c->wk;
	uint64_t owed = wk->blocked_ns - c->busy_mark;
	if (owed >= 1000000 && c->phase != CONN_REJECTED) {
		/* The worker was blocked in long answers meanwhile: that time
		 * is not the client's. */
		struct timeval tv = {
			.tv_sec = (time_t)(owed / 1000000000u),
			.tv_usec = (suseconds_t)(owed % 1000000000u / 1000u),
		};
		c->busy_mark = wk->blocked_ns;
		event_add(c->timer, &tv);
		return;
	}
	static const struct {
		enum ebm_http_drop why;
		const char *what;
	} reasons[] = {
		[CONN_IDLE] = { EBM_HTTP_DROP_IDLE_TIMEOUT,
			"no request within idle_timeout_ms" },
		[CONN_READING] = { EBM_HTTP_DROP_REQUEST_TIMEOUT,
			"request not complete within request_timeout_ms" },
		[CONN_BUSY] = { EBM_HTTP_DROP_WRITE_TIMEOUT,
			"response not read for request_timeout_ms" },
	};
	if (c->phase != CONN_REJECTED) {
		ebm_http_metrics_drop(wk->w.metrics, wk->w.index,
				reasons[c->phase].why);
		ebm_log_debug("worker %zu: closing a connection: %s", wk->w.index,
				reasons[c->phase].what);
	}
	/* Calls on_conn_close, which frees c. */
	evhttp_connection_free(c->evcon);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	struct conn *c = arg;
	struct worker *wk = c->wk;
	if (c->phase == CONN_BUSY && wk->pending > 0) {
		wk->pending--;  /* its response will never be written */
	}
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
	evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->output_cb);
	event_free(c->timer);
	struct conn *last = wk->conns[--wk->n_conns];
	wk->conns[c->index] = last;
	last->index = c->index;
	free(c);
	wk->n_open--;
	ebm_http_metrics_connection(wk->w.metrics, wk->w.index, -1);
	update_accepting(wk);
}

/* evhttp asks for the bufferevent of a connection it has just accepted. */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct worker *wk = arg;
	/* As evhttp makes its own: it closes the socket itself. */
	struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
	if (bev == NULL) {
		return NULL;  /* evhttp tries again itself; then untracked */
	}
	/* Keeps bev valid until adopted, even if evhttp gives up on the
	 * connection at once. */
	bufferevent_incref(bev);
	if (wk->n_fresh == wk->cap_fresh) {
		wk->cap_fresh = wk->cap_fresh > 0 ? 2 * wk->cap_fresh : 16;
		wk->fresh = ebm_xrealloc(wk->fresh,
				wk->cap_fresh * sizeof(*wk->fresh));
	}
	wk->fresh[wk->n_fresh++] = bev;
	wk->n_open++;
	ebm_http_metrics_connection(wk->w.metrics, wk->w.index, +1);
	event_active(wk->adopt_ev, 0, 0);
	/* At the limit: the listener's accept loop stops after this one. */
	update_accepting(wk);
	return bev;
}

/* Attaches a struct conn to each connection accepted since the last call. */
/*
 * Answers go out as soon as they are written: with Nagle's algorithm the
 * last segment of a multi-segment answer waits for the client's ACK of
 * the previous ones, which a client delays by up to 40 ms (measured:
 * 256-row answers took a 48 ms median, ebmd idle 60% of the time).
 */
static void set_nodelay(evutil_socket_t fd)
{
	int one = 1;
	if (fd >= 0) {
		/* Fails only on a socket that is not TCP (nothing to do). */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
}

static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *wk = arg;
	for (size_t i = 0; i < wk->n_fresh; i++) {
		struct bufferevent *bev = wk->fresh[i];
		bufferevent_data_cb readcb = NULL;
		void *cbarg = NULL;
		bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
		/* evhttp's callbacks get the evhttp_connection as their
		 * argument; NULL callbacks: evhttp has already freed it. */
		struct evhttp_connection *evcon = cbarg;
		struct conn *c = NULL;
		if (readcb != NULL && evcon != NULL
				&& evhttp_connection_get_bufferevent(evcon) == bev) {
			c = calloc(1, sizeof(*c));
			set_nodelay(bufferevent_getfd(bev));
		}
		if (c != NULL) {
			c->timer = evtimer_new(wk->base, on_deadline, c);
			c->input_cb = evbuffer_add_cb(bufferevent_get_input(bev),
					on_input, c);
			c->output_cb = evbuffer_add_cb(bufferevent_get_output(bev),
					on_output, c);
			if (c->timer == NULL || c->input_cb == NULL
					|| c->output_cb == NULL) {
				if (c->timer != NULL) {
					event_free(c->timer);
				}
				if (c->input_cb != NULL) {
					evbuffer_remove_cb_entry(bufferevent_get_input(bev),
							c->input_cb);
				}
				if (c->output_cb != NULL) {
					evbuffer_remove_cb_entry(bufferevent_get_output(bev),
							c->output_cb);
				}
				free(c);
				c = NULL;
			}
		}
		if (c == NULL) {
			/* Not tracked (out of memory, or already gone): it no
			 * longer counts. */
			wk->n_open--;
			ebm_http_metrics_connection(wk->w.metrics, wk->w.index, -1);
		} else {
			c->wk = wk;
			c->evcon = evcon;
			c->bev = bev;
			if (wk->n_conns == wk->cap_conns) {
				wk->cap_conns = wk->cap_conns > 0 ? 2 * wk->cap_conns : 64;
				wk->conns = ebm_xrealloc(wk->conns,
						wk->cap_conns * sizeof(*wk->conns));
			}
			c->index = wk->n_conns;
			wk->conns[wk->n_conns++] = c;
			evhttp_connection_set_closecb(evcon, on_conn_close, c);
			evhttp_connection_set_timeout_tv(evcon, &wk->tracked_tv);
			c->phase = CONN_IDLE;
			start_reading_buffered(c);
		}
		bufferevent_decref(bev);
	}
	wk->n_fresh = 0;
	update_accepting(wk);
}

static void on_backoff_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *wk = arg;
	wk->backoff = false;
	update_accepting(wk);
}

/* The worker whose loop runs on this thread (listener callbacks get
 * evhttp's argument, not ours). */
static _Thread_local struct worker *this_worker;

/* accept() failed with something else than EAGAIN (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM): left enabled, the listening socket would wake the
 * loop again at once, forever. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;  /* the evhttp */
	struct worker *wk = this_worker;
	if (wk == NULL) {
		return;
	}
	int e = EVUTIL_SOCKET_ERROR();
	if (!wk->warned_accept) {
		ebm_log_warn("worker %zu: cannot accept a connection: %s (%zu open); "
				"pausing accepts for %d ms", wk->w.index, strerror(e),
				wk->n_open, ACCEPT_BACKOFF_MS);
		wk->warned_accept = true;
	} else {
		ebm_log_debug("worker %zu: cannot accept a connection: %s",
				wk->w.index, strerror(e));
	}
	wk->backoff = true;
	update_accepting(wk);
	struct timeval tv = ms_to_tv(ACCEPT_BACKOFF_MS);
	if (event_add(wk->backoff_ev, &tv) != 0) {
		wk->backoff = false;
		update_accepting(wk);
	}
}

static void on_complete(struct evhttp_request *req, void *arg)
{
	struct worker *wk = arg;
	if (wk->pending > 0) {
		wk->pending--;
	}
	struct conn *c = find_conn(wk, evhttp_request_get_connection(req));
	if (c != NULL && c->phase == CONN_BUSY) {
		/* Bytes of the next request may be buffered already. */
		start_reading_buffered(c);
	}
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct worker *wk = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct conn *c = find_conn(wk, evcon);
	if (c != NULL) {
		set_phase(c, CONN_BUSY);
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
	c = find_conn(wk, evcon);
	if (c != NULL && c->phase == CONN_BUSY) {
		arm(c, &wk->request_tv);
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
	this_worker = wk;
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
	evhttp_set_bevcb(wk->http, make_bev, wk);
	wk->adopt_ev = event_new(wk->base, -1, 0, on_adopt, wk);
	wk->backoff_ev = evtimer_new(wk->base, on_backoff_end, wk);
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
	evconnlistener_set_error_cb(l, on_accept_error);
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
