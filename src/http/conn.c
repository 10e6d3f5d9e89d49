/*
 * conn.c — connection tracking and deadlines of the HTTP workers
 * (server.c runs the workers; worker.h has the structs).
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
 * max_header_bytes: we count the bytes of each request's line and
 * headers, line ends included, as they arrive; beyond the limit the
 * connection gets a JSON 431 and is closed (after reading and dropping
 * what the client still sends, for at most LINGER_MS, so that it sees the
 * answer rather than a reset).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "http/worker.h"
#include "util/util.h"

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

struct conn *conn_find(struct worker *wk,
		struct evhttp_connection *evcon)
{
	for (size_t i = 0; i < wk->n_conns; i++) {
		if (wk->conns[i]->evcon == evcon) {
			return wk->conns[i];
		}
	}
	return NULL;
}

void conn_arm(struct conn *c, const struct timeval *tv)
{
	c->busy_mark = c->wk->blocked_ns;
	event_add(c->timer, tv);
}

/* Enters a phase and sets its deadline. */
void conn_set_phase(struct conn *c, enum conn_phase phase)
{
	struct worker *wk = c->wk;
	c->phase = phase;
	switch (phase) {
	case CONN_IDLE:
		conn_arm(c, &wk->idle_tv);
		break;
	case CONN_READING:
		c->hdr_bytes = 0;
		c->hdr_lines = 0;
		c->hdr_line_nonempty = false;
		c->hdr_done = false;
		ebm_http_buf_reset(&c->head);
		conn_arm(c, &wk->request_tv);
		break;
	case CONN_BUSY:
		/* Armed once the answer is queued (on_request). */
		event_del(c->timer);
		break;
	case CONN_REJECTED:
		conn_arm(c, &wk->linger_tv);
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
		conn_arm(c, &c->wk->request_tv);
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

/* The request's head is complete: where its line and the headers that
 * matter are (NUL-terminated in place in c->head), and how its body is
 * delimited. */
static void parse_head(struct conn *c)
{
	c->method = NULL;
	c->target = NULL;
	c->authorization = NULL;
	c->has_length = false;
	c->chunked = false;
	c->chunk_state = CHUNK_SIZE;
	c->chunk_size = 0;
	c->body_declared = 0;
	ebm_http_buf_add(&c->head, "", 1);
	if (c->head.failed) {
		return;
	}
	const char *length = NULL;
	char *p = c->head.data;
	char *end = c->head.data + c->head.len - 1;
	for (size_t line = 0; p < end; line++) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL) {
			eol = end;
		}
		char *e = eol;
		while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) {
			e--;
		}
		*e = '\0';
		if (line == 0) {
			/* METHOD SP target SP version */
			char *sp = strchr(p, ' ');
			if (sp != NULL) {
				*sp = '\0';
				c->method = p;
				c->target = sp + 1;
				char *sp2 = strchr(sp + 1, ' ');
				if (sp2 != NULL) {
					*sp2 = '\0';
				}
			}
		} else {
			char *colon = strchr(p, ':');
			if (colon != NULL) {
				*colon = '\0';
				char *v = colon + 1;
				while (*v == ' ' || *v == '\t') {
					v++;
				}
				/* The first of each, as evhttp_find_header takes it. */
				if (strcasecmp(p, "Authorization") == 0
						&& c->authorization == NULL) {
					c->authorization = v;
				} else if (strcasecmp(p, "Content-Length") == 0
						&& length == NULL) {
					length = v;
				} else if (strcasecmp(p, "Transfer-Encoding") == 0
						&& !c->chunked) {
					c->chunked = strcasecmp(v, "chunked") == 0;
				}
			}
		}
		p = eol + 1;
	}
	if (!c->chunked && length != NULL) {
		/* evhttp refuses anything else (400) itself. */
		char *rest;
		errno = 0;
		unsigned long long v = strtoull(length, &rest, 10);
		if (errno == 0 && rest != length && *rest == '\0'
				&& length[0] != '-') {
			c->has_length = true;
			c->body_declared = v;
		}
	}
}

static int hex_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/*
 * Follows a chunked body through n bytes, adding every chunk's declared
 * size to body_declared as its size line ends. Returns false once the
 * body is over `cap`. Bytes that are not valid framing end the scan:
 * evhttp refuses them (400) itself.
 */
static bool scan_chunked(struct conn *c, const unsigned char *p, size_t n,
		uint64_t cap)
{
	for (size_t i = 0; i < n && c->chunk_state != CHUNK_DONE; i++) {
		unsigned char ch = p[i];
		switch (c->chunk_state) {
		case CHUNK_SIZE:
			if (hex_digit(ch) >= 0) {
				c->chunk_size = c->chunk_size * 16 + (uint64_t)hex_digit(ch);
				if (c->chunk_size > cap) {
					c->body_declared += c->chunk_size;
					return false;
				}
				break;
			}
			if (ch != '\n') {
				c->chunk_state = ch == ';' || ch == ' ' || ch == '\t'
						|| ch == '\r' ? CHUNK_EXT : CHUNK_DONE;
				break;
			}
			/* The size line ends: */
			/* fall through */
		case CHUNK_EXT:
			if (ch != '\n') {
				break;
			}
			c->body_declared += c->chunk_size;
			if (c->body_declared > cap) {
				return false;
			}
			c->chunk_state = c->chunk_size > 0 ? CHUNK_DATA
					: CHUNK_TRAILER_START;
			break;
		case CHUNK_DATA: {
			size_t k = n - i < c->chunk_size ? n - i
					: (size_t)c->chunk_size;
			c->chunk_size -= k;
			i += k - 1;
			if (c->chunk_size == 0) {
				c->chunk_state = CHUNK_DATA_END;
			}
			break;
		}
		case CHUNK_DATA_END:
			if (ch == '\n') {
				c->chunk_state = CHUNK_SIZE;
			}
			break;
		case CHUNK_TRAILER_START:
			c->chunk_state = ch == '\n' ? CHUNK_DONE
					: ch == '\r' ? CHUNK_TRAILER_START : CHUNK_TRAILER;
			break;
		case CHUNK_TRAILER:
			if (ch == '\n') {
				c->chunk_state = CHUNK_TRAILER_START;
			}
			break;
		case CHUNK_DONE:
			break;
		}
	}
	return true;
}

/*
 * Scans buf from offset `from` on: the request's line and headers (kept
 * in c->head until they are complete), then, for a chunked body, its
 * framing. Says whether the request is over max_header_bytes, or its body
 * over the hard cap (a Content-Length beyond it, or chunks adding up to
 * more).
 */
static enum scan_verdict scan_request(struct conn *c, struct evbuffer *buf,
		size_t from)
{
	struct worker *wk = c->wk;
	size_t len = evbuffer_get_length(buf);
	size_t off = from;
	while (off < len && (!c->hdr_done
			? c->hdr_bytes <= wk->srv->opts.max_header_bytes
			: c->chunked && c->chunk_state != CHUNK_DONE)) {
		struct evbuffer_ptr pos;
		struct evbuffer_iovec vec[8];
		if (evbuffer_ptr_set(buf, &pos, off, EVBUFFER_PTR_SET) != 0) {
			break;
		}
		int n = evbuffer_peek(buf, (ev_ssize_t)(len - off), &pos, vec, 8);
		if (n <= 0) {
			break;
		}
		for (int i = 0; i < n && i < 8 && off < len; i++) {
			const unsigned char *p = vec[i].iov_base;
			size_t m = vec[i].iov_len < len - off ? vec[i].iov_len
					: len - off;
			size_t used = 0;
			if (!c->hdr_done) {
				used = scan_header_bytes(c, p, m);
				if (c->hdr_bytes > wk->srv->opts.max_header_bytes) {
					return SCAN_HEADERS_TOO_LARGE;
				}
				ebm_http_buf_add(&c->head, (const char *)p, used);
				if (c->hdr_done) {
					parse_head(c);
					if (c->has_length && c->body_declared > wk->body_cap) {
						return SCAN_BODY_TOO_LARGE;
					}
				}
			}
			if (c->hdr_done && c->chunked && used < m
					&& !scan_chunked(c, p + used, m - used, wk->body_cap)) {
				return SCAN_BODY_TOO_LARGE;
			}
			off += m;
		}
	}
	return SCAN_OK;
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
	conn_set_phase(c, CONN_REJECTED);
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

/* A body beyond the hard cap: answered without reading it, from the
 * request's head by the usual precedence (routes.c), straight on the
 * socket like the 431, and the connection closed after the linger. */
static void reject_body(struct conn *c, struct evbuffer *buf)
{
	struct worker *wk = c->wk;
	ebm_http_refuse_oversized(&wk->w, c->method, c->target,
			c->authorization, c->body_declared, c->has_length,
			&wk->answer);
	conn_set_phase(c, CONN_REJECTED);
	evbuffer_drain(buf, evbuffer_get_length(buf));
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd >= 0 && !wk->answer.failed) {
		/* Under a kilobyte, nothing else queued: it fits the socket
		 * buffer; if not, the client gets the close alone. */
		ssize_t w = send(fd, wk->answer.data, wk->answer.len,
				MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		shutdown(fd, SHUT_WR);
	}
}

static void check_request(struct conn *c, struct evbuffer *buf, size_t from)
{
	switch (scan_request(c, buf, from)) {
	case SCAN_OK:
		break;
	case SCAN_HEADERS_TOO_LARGE:
		reject_headers(c, buf);
		break;
	case SCAN_BODY_TOO_LARGE:
		reject_body(c, buf);
		break;
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
		conn_set_phase(c, CONN_READING);
	}
	if (c->phase == CONN_READING) {
		size_t len = evbuffer_get_length(buf);
		check_request(c, buf, len > info->n_added ? len - info->n_added
				: 0);
	}
}

/* Enters READING with what is already buffered (pipelined bytes). */
void conn_start_reading(struct conn *c)
{
	struct evbuffer *buf = bufferevent_get_input(c->bev);
	if (evbuffer_get_length(buf) == 0) {
		conn_set_phase(c, CONN_IDLE);
		return;
	}
	conn_set_phase(c, CONN_READING);
	check_request(c, buf, 0);
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
	ebm_http_buf_finish(&c->head);
	struct conn *last = wk->conns[--wk->n_conns];
	wk->conns[c->index] = last;
	last->index = c->index;
	free(c);
	wk->n_open--;
	ebm_http_metrics_connection(wk->w.metrics, wk->w.index, -1);
	update_accepting(wk);
}

/* evhttp asks for the bufferevent of a connection it has just accepted. */
struct bufferevent *conn_make_bev(struct event_base *base, void *arg)
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

void conn_on_adopt(evutil_socket_t fd, short what, void *arg)
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
			conn_start_reading(c);
		}
		bufferevent_decref(bev);
	}
	wk->n_fresh = 0;
	update_accepting(wk);
}

void conn_on_backoff_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *wk = arg;
	wk->backoff = false;
	update_accepting(wk);
}

/* The worker whose loop runs on this thread (listener callbacks get
 * evhttp's argument, not ours). */
_Thread_local struct worker *conn_this_worker;

/* accept() failed with something else than EAGAIN (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM): left enabled, the listening socket would wake the
 * loop again at once, forever. */
void conn_on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;  /* the evhttp */
	struct worker *wk = conn_this_worker;
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