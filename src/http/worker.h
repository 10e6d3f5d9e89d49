/*
 * worker.h — what server.c and conn.c share: a worker (one thread, its
 * event base and evhttp), the connections it tracks, and the server.
 * Internal to those two files; everything else sees http.h.
 */
#ifndef EBM_HTTP_WORKER_H
#define EBM_HTTP_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "http/http.h"

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
	CONN_REJECTED,   /* 431 or 413 sent; dropping input until LINGER_MS */
};

/* Where a chunked body's framing is (conn.c follows it as it arrives). */
enum chunk_state {
	CHUNK_SIZE = 0,       /* hex digits of a chunk's size */
	CHUNK_EXT,            /* the rest of the size line */
	CHUNK_DATA,           /* chunk_size bytes of data left */
	CHUNK_DATA_END,       /* the line end after the data */
	CHUNK_TRAILER_START,  /* a trailer line, or the empty line that ends */
	CHUNK_TRAILER,
	CHUNK_DONE,
};

enum scan_verdict {
	SCAN_OK = 0,
	SCAN_HEADERS_TOO_LARGE,  /* 431 */
	SCAN_BODY_TOO_LARGE,     /* beyond the hard cap: 413 without evhttp */
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
	/* ... kept until they are complete, then parsed in place: the
	 * answer to a body beyond the hard cap needs them (evhttp has no
	 * request to answer yet) */
	struct ebm_http_buf head;
	const char *method;           /* in head, or NULL */
	const char *target;
	const char *authorization;
	/* the body: Content-Length, or the sum of the chunk sizes so far */
	bool has_length;
	bool chunked;
	uint64_t body_declared;
	enum chunk_state chunk_state;
	uint64_t chunk_size;          /* being read, or data left */
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
	/* Bodies beyond this (max_body_bytes, plus as much again and at least
	 * 64 KiB) are answered by conn.c without being read; evhttp's own
	 * limit is higher still. */
	uint64_t body_cap;
	struct ebm_http_buf answer;   /* such an answer, reused */
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
	const struct ebm_http_repository *repository;  /* or NULL */
};

static inline struct timeval ms_to_tv(unsigned ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000) * 1000,
	};
	return tv;
}

/* ---- conn.c ---------------------------------------------------------------- */

/* The worker whose loop runs on this thread (set by worker_main; listener
 * callbacks get evhttp's argument, not ours). */
extern _Thread_local struct worker *conn_this_worker;

/* evhttp_set_bevcb: makes and counts each accepted connection's
 * bufferevent (arg: the worker). */
struct bufferevent *conn_make_bev(struct event_base *base, void *arg);
/* The worker's adopt event (PRIO_ADOPT): attaches a struct conn to each
 * connection accepted since the last call. */
void conn_on_adopt(evutil_socket_t fd, short what, void *arg);
/* The listener's error callback and the end of its backoff. */
void conn_on_accept_error(struct evconnlistener *l, void *arg);
void conn_on_backoff_end(evutil_socket_t fd, short what, void *arg);

/* The tracked connection of evcon, or NULL. */
struct conn *conn_find(struct worker *wk, struct evhttp_connection *evcon);
/* (Re)starts c's timer, remembering the worker's blocked time. */
void conn_arm(struct conn *c, const struct timeval *tv);
/* Enters a phase and sets its deadline. */
void conn_set_phase(struct conn *c, enum conn_phase phase);
/* Enters READING with what is already buffered (pipelined bytes), or
 * IDLE. */
void conn_start_reading(struct conn *c);

#endif
