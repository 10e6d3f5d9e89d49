/*
 * main.c — ebmd: command line, start-up, and the lifecycle on the main
 * thread's event loop (API.md section 3).
 *
 * The main thread owns the configuration and the registry and never
 * answers requests: the HTTP workers (http/server.c) do. Signals are
 * registered with evsignal_new, so their handlers run inside the loop and
 * may do real work:
 *   SIGHUP           re-read the configuration and the models directory,
 *                    build a new catalog off to the side, publish it
 *   SIGTERM/SIGINT   STOPPING=1, graceful stop of the workers (bounded),
 *                    exit 0; a second SIGINT exits at once
 *   SIGPIPE          ignored (a client that goes away is not fatal)
 * With [models] watch = true, inotify on the models directory triggers the
 * same reload of the models (not of the configuration), debounced.
 *
 * Start-up order: config, socket bound, models loaded, workers started,
 * then READY=1. One shutdown path tears down in reverse.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "config.h"
#include "daemon/daemon.h"
#include "util/util.h"

#define EXIT_USAGE 2
#define DEBOUNCE_MS 200
/* How often a models directory that went away is looked for. */
#define REARM_MS 250
#define MAX_DRAIN_MS 30000u

struct daemon {
	/* command line */
	const char *config_path;      /* NULL: built-in defaults */
	const char *cli_listen;
	const char *cli_models;
	bool check_only;

	struct ebm_conf conf;
	char *token;                  /* NULL: no authentication */
	struct ebm_http_metrics *metrics;
	struct ebm_http_server *server;
	struct ebmd_registry *registry;
	struct ebmd_repository *repository;  /* /v2/repository/... */

	struct event_base *base;
	struct event *ev_term;
	struct event *ev_int;
	struct event *ev_hup;
	struct event *ev_watchdog;
	struct event *ev_stopped;     /* activated by the last worker */
	struct event *ev_force;       /* drain took too long */
	struct event *ev_inotify;
	struct event *ev_debounce;
	struct event *ev_rearm;       /* retries while the directory is gone */
	int inotify_fd;
	int wd;                       /* watch of watched_dir; -1: lost */
	char *watched_dir;            /* NULL: not watching */

	bool stopping;
	int exit_code;
};

/* ======================================================================
 * Command line
 * ==================================================================== */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [--config FILE] [--listen HOST:PORT] [--models DIR]\n"
		"            [--check-config] [--version] [--help]\n"
		"\n"
		"Serves the energy models (*.ebm) of a directory over HTTP.\n"
		"\n"
		"  --config FILE      INI configuration (default: built-in defaults)\n"
		"  --listen HOST:PORT address to listen on (overrides [server] listen)\n"
		"  --models DIR       models directory (overrides [models] dir)\n"
		"  --check-config     validate the configuration and every model,\n"
		"                     print what would be served, and exit\n"
		"  --version          print the version and exit\n"
		"  --help             print this help and exit\n"
		"\n"
		"Signals: SIGHUP reloads, SIGTERM/SIGINT stop gracefully.\n",
		EBMD_PROG);
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(struct daemon *d, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *value = NULL;
		const char **target = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return EXIT_SUCCESS;
		}
		if (strcmp(a, "--version") == 0) {
			printf("%s %s (libebm %s)\n", EBMD_PROG, EBMD_VERSION,
					EBM_VERSION_STRING);
			return EXIT_SUCCESS;
		}
		if (strcmp(a, "--check-config") == 0) {
			d->check_only = true;
			continue;
		}
		static const struct {
			const char *name;
			size_t offset;
		} opts[] = {
			{ "--config", offsetof(struct daemon, config_path) },
			{ "--listen", offsetof(struct daemon, cli_listen) },
			{ "--models", offsetof(struct daemon, cli_models) },
		};
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
			size_t len = strlen(opts[k].name);
			if (strncmp(a, opts[k].name, len) != 0) {
				continue;
			}
			if (a[len] == '=') {
				value = a + len + 1;
			} else if (a[len] == '\0') {
				if (i + 1 >= argc) {
					fprintf(stderr, "%s: %s needs a value\n", EBMD_PROG,
							opts[k].name);
					return EXIT_USAGE;
				}
				value = argv[++i];
			} else {
				continue;
			}
			target = (const char **)((char *)d + opts[k].offset);
			break;
		}
		if (target == NULL) {
			fprintf(stderr, "%s: unknown argument '%s'\n"
					"Try '%s --help'.\n", EBMD_PROG, a, EBMD_PROG);
			return EXIT_USAGE;
		}
		if (value[0] == '\0') {
			fprintf(stderr, "%s: %s: empty value\n", EBMD_PROG, a);
			return EXIT_USAGE;
		}
		*target = value;
	}
	return -1;
}

/* ======================================================================
 * Configuration and token
 * ==================================================================== */

/* Parses the file (or the defaults) and applies the command line. */
static bool load_conf(const struct daemon *d, struct ebm_conf *c)
{
	struct ebm_error err;
	ebm_error_clear(&err);
	enum ebm_status st;
	if (d->config_path != NULL) {
		st = ebm_conf_load_file(d->config_path, c, &err);
	} else {
		st = ebm_conf_parse_string("", "<defaults>", c, &err);
	}
	if (st != EBM_STATUS_OK) {
		ebm_log_error("%s", err.message);
		return false;
	}
	if ((d->cli_listen != NULL && ebm_conf_set(c, "listen", d->cli_listen,
			"--listen", &err) != EBM_STATUS_OK)
			|| (d->cli_models != NULL && ebm_conf_set(c, "models_dir",
			d->cli_models, "--models", &err) != EBM_STATUS_OK)) {
		ebm_log_error("%s", err.message);
		ebm_conf_finish(c);
		return false;
	}
	return true;
}

/* The token of `path` (ebm_conf_read_token), or NULL (logged). */
static char *read_token(const char *path)
{
	char *token = NULL;
	unsigned mode = 0;
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_conf_read_token(path, &token, &mode, &err) != EBM_STATUS_OK) {
		ebm_log_error("[server] auth_token_file: %s", err.message);
		return NULL;
	}
	/* Any access by group or others: reading leaks the token, writing
	 * lets them choose it. */
	if ((mode & 077) != 0) {
		ebm_log_warn("[server] auth_token_file '%s' has mode %04o: group "
				"or others can access it; make it readable by ebmd only "
				"(chmod 600)", path, mode);
	}
	return token;
}

static unsigned resolve_threads(unsigned threads)
{
	if (threads > 0) {
		return threads;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1u : n > 256 ? 256u : (unsigned)n;
}

/* ======================================================================
 * --check-config
 * ==================================================================== */

static int check_config(struct daemon *d)
{
	size_t n_errors = 0;
	struct ebm_conf *c = &d->conf;
	if (!ebm_conf_parse_listen(c->listen, NULL, NULL)) {
		ebm_log_error("[server] listen: expected HOST:PORT, got '%s'",
				c->listen);
		n_errors++;
	}
	char *token = NULL;
	if (c->auth_token_file != NULL) {
		token = read_token(c->auth_token_file);
		n_errors += token == NULL;
	}
	struct ebmd_registry *r = ebmd_registry_create(NULL);
	size_t n_load_errors = 0;
	struct ebm_http_catalog *cat = ebmd_registry_load(r, c, token,
			&n_load_errors);
	n_errors += n_load_errors;
	printf("configuration %s: listen %s, models from %s, %u threads, "
			"%s\n", c->origin != NULL ? c->origin : "<defaults>", c->listen,
			c->models_dir, resolve_threads(c->threads),
			token != NULL ? "token required" : "no authentication");
	for (size_t i = 0; i < cat->n_entries; i++) {
		const struct ebm_http_entry *e = &cat->entries[i];
		printf("%s %s version %s, %zu features, %zu reference rows",
				e->composition ? "composition" : "model", e->name,
				e->version, e->schema.d, ebm_product_n_ref(e->product));
		if (e->composition) {
			printf(", product of");
			for (size_t k = 0; k < e->n_models; k++) {
				printf("%s %s*%g", k > 0 ? "," : "", e->models[k]->name,
						e->weights[k]);
			}
		}
		printf("\n");
	}
	if (cat->n_model_files == 0) {
		printf("no model files in %s: ebmd would start but not be ready\n",
				c->models_dir);
	}
	ebm_http_catalog_unref(cat);
	ebmd_registry_destroy(r);
	ebm_secret_free(token);
	if (n_errors > 0) {
		fprintf(stderr, "%s: %zu error%s\n", EBMD_PROG, n_errors,
				n_errors == 1 ? "" : "s");
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

/* ======================================================================
 * Reload
 * ==================================================================== */

static void notify_status(struct daemon *d, const char *state)
{
	struct ebm_http_catalog *c = ebm_http_server_acquire(d->server);
	size_t files = c != NULL ? c->n_model_files : 0;
	size_t comps = c != NULL ? c->n_entries - c->n_model_files : 0;
	ebm_http_catalog_unref(c);
	ebmd_notify("%sSTATUS=%s %zu model%s and %zu composition%s on %s",
			state, files > 0 ? "serving" : "waiting for models: serving",
			files, files == 1 ? "" : "s", comps, comps == 1 ? "" : "s",
			ebm_http_server_address(d->server));
}

static void update_watch(struct daemon *d);

/* Builds a catalog from the current configuration and publishes it. */
static void reload_models(struct daemon *d, const char *why)
{
	size_t n_errors = 0;
	struct ebm_http_catalog *c = ebmd_registry_load(d->registry, &d->conf,
			d->token, &n_errors);
	size_t files = c->n_model_files;
	size_t comps = c->n_entries - c->n_model_files;
	ebm_http_server_publish(d->server, c);
	if (n_errors > 0) {
		ebm_log_warn("%s: serving %zu models and %zu compositions; %zu "
				"error%s (see above)", why, files, comps, n_errors,
				n_errors == 1 ? "" : "s");
	} else {
		ebm_log_info("%s: serving %zu models and %zu compositions", why,
				files, comps);
	}
}

/* Keeps the launch-only settings of `old` in `next`, with a log line for
 * each that the file changed. */
static void keep_launch_only(const struct ebm_conf *old, struct ebm_conf *next)
{
#define KEEP_NUM(field, key) \
	if (next->field != old->field && !ebm_conf_reloadable("server", key)) { \
		ebm_log_warn("[server] %s changed; it takes effect at the next " \
				"restart", key); \
		next->field = old->field; \
	}
	if (strcmp(next->listen, old->listen) != 0
			&& !ebm_conf_reloadable("server", "listen")) {
		ebm_log_warn("[server] listen changed to %s; ebmd keeps listening "
				"on %s until it restarts", next->listen, old->listen);
		free(next->listen);
		next->listen = ebm_xstrdup(old->listen);
	}
	KEEP_NUM(threads, "threads")
	KEEP_NUM(max_body_bytes, "max_body_bytes")
	KEEP_NUM(max_header_bytes, "max_header_bytes")
	KEEP_NUM(request_timeout_ms, "request_timeout_ms")
	KEEP_NUM(idle_timeout_ms, "idle_timeout_ms")
	KEEP_NUM(max_connections, "max_connections")
#undef KEEP_NUM
}

/* SIGHUP: configuration, token, then models. A configuration that does
 * not parse leaves the old one in force (the models are still rescanned). */
static void reload_all(struct daemon *d)
{
	ebm_log_info("SIGHUP: reloading");
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ebmd_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
			(unsigned long long)now.tv_sec * 1000000ull
			+ (unsigned long long)now.tv_nsec / 1000ull);
	struct ebm_conf next;
	if (d->config_path != NULL && load_conf(d, &next)) {
		keep_launch_only(&d->conf, &next);
		char *token = NULL;
		bool token_ok = true;
		if (next.auth_token_file != NULL) {
			token = read_token(next.auth_token_file);
			token_ok = token != NULL;
		}
		if (token_ok) {
			ebm_conf_finish(&d->conf);
			d->conf = next;
			ebm_secret_free(d->token);
			d->token = token;
			ebmd_log_set_level(ebmd_log_level(d->conf.log_level));
		} else {
			ebm_log_error("keeping the previous configuration");
			ebm_conf_finish(&next);
		}
	} else if (d->config_path != NULL) {
		ebm_log_error("keeping the previous configuration");
	}
	reload_models(d, "reload");
	update_watch(d);
	notify_status(d, "READY=1\n");
}

/* ======================================================================
 * Watching the models directory
 * ==================================================================== */

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct daemon *d = arg;
	if (d->stopping) {
		return;
	}
	reload_models(d, "models directory changed");
	notify_status(d, "");
}

/* Writers touch a file several times; reload once it settles. */
static void schedule_reload(struct daemon *d)
{
	struct timeval tv = { 0, DEBOUNCE_MS * 1000 };
	event_add(d->ev_debounce, &tv);
}

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE \
		| IN_ATTRIB | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* Watches d->watched_dir; false (errno set) if it cannot be watched. */
static bool add_watch(struct daemon *d)
{
	d->wd = inotify_add_watch(d->inotify_fd, d->watched_dir, WATCH_MASK);
	return d->wd >= 0;
}

/* The watch is gone (directory deleted or moved away): look for the
 * directory again every REARM_MS until it is back. */
static void lose_watch(struct daemon *d)
{
	if (d->wd >= 0) {
		/* A moved directory is still watched under its new name. */
		inotify_rm_watch(d->inotify_fd, d->wd);
		d->wd = -1;
	}
	ebm_log_warn("models directory '%s' went away; watching for it to "
			"come back", d->watched_dir);
	struct timeval tv = { 0, REARM_MS * 1000 };
	event_add(d->ev_rearm, &tv);
}

static void on_rearm(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct daemon *d = arg;
	if (d->stopping || d->watched_dir == NULL || d->wd >= 0) {
		return;
	}
	if (!add_watch(d)) {
		struct timeval tv = { 0, REARM_MS * 1000 };
		event_add(d->ev_rearm, &tv);
		return;
	}
	ebm_log_info("models directory '%s' is back; watching it again",
			d->watched_dir);
	/* Whatever it holds already arrived before the watch. */
	schedule_reload(d);
}

/* A symbolic link appears whole (a ConfigMap's new key); a new regular
 * file is still being written and announces itself by IN_CLOSE_WRITE. */
static bool created_symlink(const struct daemon *d, const char *name)
{
	size_t len = strlen(d->watched_dir) + strlen(name) + 2;
	char *path = ebm_xmalloc(len);
	snprintf(path, len, "%s/%s", d->watched_dir, name);
	struct stat st;
	bool link = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
	free(path);
	return link;
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct daemon *d = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	bool lost = false;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			break;
		}
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				relevant = true;  /* events were lost: rescan */
				continue;
			}
			if (d->wd < 0 || ev->wd != d->wd) {
				continue;  /* left over from a watch given up */
			}
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
				lost = true;
			} else if ((ev->mask & IN_CREATE) && !(ev->mask & IN_ISDIR)) {
				relevant |= ev->len > 0 && created_symlink(d, ev->name);
			} else if (!(ev->mask & IN_CREATE)) {
				relevant = true;
			}
		}
	}
	if (lost) {
		lose_watch(d);
		relevant = true;
	}
	if (relevant) {
		schedule_reload(d);
	}
}

static void stop_watch(struct daemon *d)
{
	if (d->ev_rearm != NULL) {
		event_del(d->ev_rearm);
	}
	if (d->ev_inotify != NULL) {
		event_free(d->ev_inotify);
		d->ev_inotify = NULL;
	}
	if (d->inotify_fd >= 0) {
		close(d->inotify_fd);
		d->inotify_fd = -1;
	}
	d->wd = -1;
	free(d->watched_dir);
	d->watched_dir = NULL;
}

/*
 * Follows [models] watch and dir after start-up and every reload: a new
 * directory is watched instead of the old one, and a watch lost with its
 * directory is re-armed at once if the directory is back (else on_rearm
 * keeps looking for it).
 */
static void update_watch(struct daemon *d)
{
	if (!d->conf.watch) {
		if (d->watched_dir != NULL) {
			ebm_log_info("no longer watching %s", d->watched_dir);
		}
		stop_watch(d);
		return;
	}
	if (d->watched_dir != NULL
			&& strcmp(d->watched_dir, d->conf.models_dir) == 0) {
		if (d->wd < 0 && add_watch(d)) {
			event_del(d->ev_rearm);
			ebm_log_info("watching %s for changes again", d->watched_dir);
		}
		return;
	}
	stop_watch(d);
	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd < 0) {
		ebm_log_error("inotify: %s; models are reloaded on SIGHUP only",
				strerror(errno));
		return;
	}
	d->ev_inotify = event_new(d->base, d->inotify_fd, EV_READ | EV_PERSIST,
			on_inotify, d);
	if (d->ev_inotify == NULL || event_add(d->ev_inotify, NULL) != 0) {
		ebm_log_error("cannot watch '%s'", d->conf.models_dir);
		stop_watch(d);
		return;
	}
	d->watched_dir = ebm_xstrdup(d->conf.models_dir);
	if (!add_watch(d)) {
		int e = errno;
		if (e == ENOENT || e == ENOTDIR) {
			ebm_log_warn("models directory '%s': %s; watching for it to "
					"appear", d->watched_dir, strerror(e));
			struct timeval tv = { 0, REARM_MS * 1000 };
			event_add(d->ev_rearm, &tv);
			return;
		}
		ebm_log_error("watching '%s': %s; models are reloaded on SIGHUP "
				"only", d->watched_dir, strerror(e));
		stop_watch(d);
		return;
	}
	ebm_log_info("watching %s for changes", d->watched_dir);
}

/* ======================================================================
 * Signals and shutdown
 * ==================================================================== */

/* Called on the last worker thread to exit: wake the main loop. */
static void workers_done(void *arg)
{
	struct daemon *d = arg;
	event_active(d->ev_stopped, 0, 0);
}

static void on_stopped(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct daemon *d = arg;
	ebm_log_info("all requests finished; exiting");
	event_base_loopbreak(d->base);
}

static void on_force(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ebm_log_error("workers did not stop in time; exiting now");
	_exit(EXIT_FAILURE);
}

/*
 * Every connection is a file descriptor. Raises the soft open-file limit
 * (up to the hard one) to leave room for max_connections, plus the
 * daemon's own: stdio, the listening socket, inotify, each worker's event
 * base and notification pair, a model file being read. Without it the
 * usual soft limit of 1024 would refuse connections (EMFILE) well below
 * the default max_connections. Says so when even the hard limit is short.
 */
static void ensure_fd_limit(unsigned max_connections, unsigned threads)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		return;
	}
	rlim_t want = (rlim_t)max_connections + 16 + 2 * (rlim_t)threads;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) {
		return;
	}
	rlim_t target = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
			? want : rl.rlim_max;
	struct rlimit raised = { .rlim_cur = target, .rlim_max = rl.rlim_max };
	if (target > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &raised) == 0) {
		ebm_log_info("open-file limit raised from %llu to %llu for "
				"max_connections = %u", (unsigned long long)rl.rlim_cur,
				(unsigned long long)target, max_connections);
		rl.rlim_cur = target;
	}
	if (rl.rlim_cur < want) {
		ebm_log_warn("[server] max_connections = %u, but the open-file "
				"limit is %llu (hard limit %llu): about %llu connections "
				"can be open at once; raise LimitNOFILE= or ulimit -n",
				max_connections, (unsigned long long)rl.rlim_cur,
				(unsigned long long)rl.rlim_max,
				(unsigned long long)(rl.rlim_cur > want - max_connections
				? rl.rlim_cur - (want - max_connections) : 0));
	}
}

/* How long a worker waits for its responses to be written once it stops:
 * the request timeout, at most MAX_DRAIN_MS. */
static unsigned drain_ms(const struct ebm_conf *c)
{
	return c->request_timeout_ms < MAX_DRAIN_MS ? c->request_timeout_ms
			: MAX_DRAIN_MS;
}

static void begin_shutdown(struct daemon *d, const char *why)
{
	d->stopping = true;
	if (d->ev_debounce != NULL) {
		event_del(d->ev_debounce);
	}
	if (d->ev_rearm != NULL) {
		event_del(d->ev_rearm);
	}
	/* Stop first, log after: once the line is out, /readyz says 503
	 * (the test waits for the line and races the workers otherwise). */
	ebm_http_server_stop(d->server, workers_done, d);
	ebm_log_info("%s: stopping; finishing requests in flight", why);
	ebmd_notify("STOPPING=1\nSTATUS=stopping: finishing requests in flight");
	/* Each worker bounds its own drain once it has answered what it had
	 * already read; a worker still busy with such requests is waited for
	 * up to twice that, then ebmd exits anyway (non-zero). */
	unsigned ms = 2 * drain_ms(&d->conf) + 5000;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_add(d->ev_force, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct daemon *d = arg;
	if (sig == SIGHUP) {
		if (!d->stopping) {
			reload_all(d);
		}
		return;
	}
	if (d->stopping) {
		if (sig == SIGINT) {
			ebm_log_warn("second SIGINT: exiting now");
			_exit(128 + SIGINT);
		}
		return;
	}
	begin_shutdown(d, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ebmd_notify("WATCHDOG=1");
}

/* ======================================================================
 * Start-up and teardown
 * ==================================================================== */

static bool add_events(struct daemon *d)
{
	d->ev_term = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->ev_int = evsignal_new(d->base, SIGINT, on_signal, d);
	d->ev_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
	d->ev_stopped = event_new(d->base, -1, 0, on_stopped, d);
	d->ev_force = evtimer_new(d->base, on_force, d);
	d->ev_debounce = evtimer_new(d->base, on_debounce, d);
	d->ev_rearm = evtimer_new(d->base, on_rearm, d);
	if (d->ev_term == NULL || d->ev_int == NULL || d->ev_hup == NULL
			|| d->ev_stopped == NULL || d->ev_force == NULL
			|| d->ev_debounce == NULL || d->ev_rearm == NULL
			|| event_add(d->ev_term, NULL) != 0
			|| event_add(d->ev_int, NULL) != 0
			|| event_add(d->ev_hup, NULL) != 0) {
		return false;
	}
	uint64_t usec = ebmd_watchdog_usec();
	if (usec > 0) {
		/* Twice per interval, as sd_watchdog_enabled(3) advises. */
		uint64_t half = usec / 2;
		struct timeval tv = { (time_t)(half / 1000000),
			(suseconds_t)(half % 1000000) };
		d->ev_watchdog = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
		if (d->ev_watchdog == NULL || event_add(d->ev_watchdog, &tv) != 0) {
			return false;
		}
		ebm_log_info("watchdog every %llu ms",
				(unsigned long long)(half / 1000));
	}
	return true;
}

static void free_event(struct event *ev)
{
	if (ev != NULL) {
		event_free(ev);
	}
}

/* Starts the workers with the handled signals blocked, so that they are
 * delivered to the main thread, whose loop handles them. */
static enum ebm_status start_workers(struct daemon *d, struct ebm_error *err)
{
	sigset_t block;
	sigset_t old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	enum ebm_status st = ebm_http_server_start(d->server, err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return st;
}

static int run(struct daemon *d)
{
	signal(SIGPIPE, SIG_IGN);
	/* Requests run on our own worker threads: each product stays on the
	 * thread that asked for it. */
	ebm_set_blas_threads(1);
#ifdef M_TRIM_THRESHOLD
	/* glibc gives the free top of a worker thread's heap back to the
	 * kernel once it exceeds 128 KiB, so a worker answering batches of a
	 * few hundred rows (body, evbuffer chains, response) had its memory
	 * unmapped after each request and faulted in again by the next
	 * (bench/http-bench.sh, 256-row requests). Keep up to 2 MiB per heap;
	 * setting it turns off glibc's adaptive thresholds, so blocks up to
	 * 1 MiB (bodies of some ten thousand rows) stay on the heap too rather
	 * than being mapped and unmapped each time. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 2 << 20);
#endif
	if (d->conf.auth_token_file != NULL) {
		d->token = read_token(d->conf.auth_token_file);
		if (d->token == NULL) {
			return EXIT_FAILURE;
		}
	}
	unsigned threads = resolve_threads(d->conf.threads);
	ensure_fd_limit(d->conf.max_connections, threads);
	struct ebm_http_options o = {
		.listen = d->conf.listen,
		.threads = threads,
		.max_body_bytes = d->conf.max_body_bytes,
		.max_header_bytes = d->conf.max_header_bytes,
		.request_timeout_ms = d->conf.request_timeout_ms,
		.idle_timeout_ms = d->conf.idle_timeout_ms,
		.max_connections = d->conf.max_connections,
		.drain_ms = drain_ms(&d->conf),
	};
	d->metrics = ebm_http_metrics_create(threads);
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_http_server_create(&o, d->metrics, &d->server, &err)
			!= EBM_STATUS_OK) {
		ebm_log_error("%s", err.message);
		return EXIT_FAILURE;
	}
	ebm_log_info("listening on %s (%u worker thread%s)",
			ebm_http_server_address(d->server), threads,
			threads == 1 ? "" : "s");

	d->base = event_base_new();
	if (d->base == NULL || !add_events(d)) {
		ebm_log_error("cannot set up the main event loop");
		return EXIT_FAILURE;
	}
	d->registry = ebmd_registry_create(d->metrics);
	d->repository = ebmd_repository_create(d->base, d->registry, d->server,
			&d->conf, &d->token);
	if (d->repository == NULL) {
		ebm_log_error("cannot set up the main event loop");
		return EXIT_FAILURE;
	}
	reload_models(d, "start-up");
	if (start_workers(d, &err) != EBM_STATUS_OK) {
		ebm_log_error("%s", err.message);
		ebm_http_server_stop(d->server, NULL, NULL);
		return EXIT_FAILURE;
	}
	update_watch(d);
	notify_status(d, "READY=1\n");
	ebm_log_info("ebmd %s ready", EBMD_VERSION);

	event_base_dispatch(d->base);
	return d->exit_code;
}

static void teardown(struct daemon *d)
{
	/* No worker may wait for the main loop from now on. */
	ebmd_repository_close(d->repository);
	/* Joins the workers (stopped by now) and drops the catalog. */
	ebm_http_server_destroy(d->server);
	ebmd_repository_destroy(d->repository);
	stop_watch(d);
	free_event(d->ev_rearm);
	free_event(d->ev_watchdog);
	free_event(d->ev_debounce);
	free_event(d->ev_force);
	free_event(d->ev_stopped);
	free_event(d->ev_hup);
	free_event(d->ev_int);
	free_event(d->ev_term);
	if (d->base != NULL) {
		event_base_free(d->base);
	}
	ebmd_registry_destroy(d->registry);
	ebm_http_metrics_destroy(d->metrics);
	ebm_secret_free(d->token);
	ebm_conf_finish(&d->conf);
}

int main(int argc, char **argv)
{
	struct daemon d = { .inotify_fd = -1, .wd = -1, .exit_code = EXIT_SUCCESS };
	int rc = parse_args(&d, argc, argv);
	if (rc >= 0) {
		return rc;
	}
	ebmd_log_init(EBM_LOG_INFO);
	if (!load_conf(&d, &d.conf)) {
		return EXIT_FAILURE;
	}
	ebmd_log_set_level(ebmd_log_level(d.conf.log_level));
	if (d.check_only) {
		rc = check_config(&d);
		ebm_conf_finish(&d.conf);
		return rc;
	}
	rc = run(&d);
	if (d.server != NULL && !d.stopping) {
		/* Start-up failed after the server was made: nothing runs. */
		ebm_http_server_stop(d.server, NULL, NULL);
	}
	teardown(&d);
	return rc;
}
