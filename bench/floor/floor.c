/*
 * floor.c — the HTTP floor of this machine: the least a libevent + jansson
 * server with ebmd's threading must do per request, to measure ebmd
 * against (bench/http-bench.sh).
 *
 * Same architecture as src/http/server.c: one listening socket, --threads
 * workers, each with its own event base and evhttp accepting from that
 * socket through its own evconnlistener. For a POST on any path it reads
 * the body, parses it with json_loadb and answers a fixed JSON body of
 * about the size of ebmd's single-row score answer, Content-Type
 * application/json. Anything else gets 405. No routing, no validation, no
 * metrics, no logging, no scoring.
 *
 *   floor [--threads N] [--listen HOST:PORT]     (default 1, 127.0.0.1:0)
 *
 * Prints "listening on HOST:PORT" on stdout once every worker runs (port 0
 * asks the kernel for a free port); runs until killed.
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
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <jansson.h>

/* 153 bytes, as ebmd's answer to one row of the demo model. */
static const char answer[] =
	"{\"model\":\"demo\",\"version\":\"000000000000\",\"alpha\":0.01,"
	"\"results\":[{\"energy\":4.3598657,\"score\":0.07952881,"
	"\"p_value\":0.48509485094850946,\"anomaly\":false}]}\n";

struct worker {
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
};

static void on_request(struct evhttp_request *req, void *arg)
{
	(void)arg;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_send_error(req, 405, NULL);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
	json_error_t jerr;
	json_t *root = json_loadb(body, len, 0, &jerr);
	if (root == NULL) {
		evhttp_send_error(req, 400, NULL);
		return;
	}
	json_decref(root);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			"Content-Type", "application/json");
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	evbuffer_add(out, answer, sizeof(answer) - 1);
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	event_base_dispatch(w->base);
	return NULL;
}

static int listen_on(const char *spec, char *bound, size_t size)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
		fprintf(stderr, "floor: --listen '%s': expected HOST:PORT\n", spec);
		return -1;
	}
	const char *h = spec;
	size_t hlen = (size_t)(colon - spec);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "floor: %s: %s\n", spec, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK
				| SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0
				|| listen(fd, 511) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "floor: cannot listen on %s: %s\n", spec,
				strerror(errno));
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			port = ntohs(a->sin_port);
		}
	}
	snprintf(bound, size, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			ip, port);
	return fd;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: floor [--threads N] [--listen HOST:PORT]\n");
}

int main(int argc, char **argv)
{
	long threads = 1;
	const char *listen_spec = "127.0.0.1:0";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			char *end;
			threads = strtol(argv[++i], &end, 10);
			if (*end != '\0' || threads < 1 || threads > 256) {
				fprintf(stderr, "floor: --threads: expected 1..256\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
			listen_spec = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	char bound[96];
	int fd = listen_on(listen_spec, bound, sizeof(bound));
	if (fd < 0) {
		return 1;
	}
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	if (w == NULL) {
		return 1;
	}
	for (long i = 0; i < threads; i++) {
		w[i].base = event_base_new();
		w[i].http = w[i].base != NULL ? evhttp_new(w[i].base) : NULL;
		if (w[i].http == NULL) {
			fprintf(stderr, "floor: cannot create evhttp\n");
			return 1;
		}
		evhttp_set_gencb(w[i].http, on_request, NULL);
		struct evconnlistener *l = evconnlistener_new(w[i].base, NULL, NULL,
				LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (l == NULL || evhttp_bind_listener(w[i].http, l) == NULL) {
			fprintf(stderr, "floor: cannot attach the listener\n");
			return 1;
		}
	}
	for (long i = 0; i < threads; i++) {
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "floor: cannot start worker %ld\n", i);
			return 1;
		}
	}
	printf("listening on %s (%ld worker thread%s)\n", bound, threads,
			threads == 1 ? "" : "s");
	fflush(stdout);
	for (long i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
	}
	return 0;
}
