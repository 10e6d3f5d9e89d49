/*
 * test-conf-parse.c — the configuration module (src/conf): defaults, every
 * key, every error message with its line, comment and line-ending forms,
 * the shipped config/ebmd.conf, command-line overrides, the listen and
 * token helpers, the file reader's limits, and format() round trips.
 * Config text is built in memory; token and file tests use a temporary
 * directory.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

#ifndef EBM_TEST_SOURCE_DIR
#define EBM_TEST_SOURCE_DIR "."
#endif

#define SHIPPED EBM_TEST_SOURCE_DIR "/config/ebmd.conf"

/* ---- helpers ------------------------------------------------------------ */

static void parse_ok(const char *text, struct ebm_conf *c)
{
	struct ebm_error err;
	enum ebm_status st = ebm_conf_parse_string(text, "t.conf", c, &err);
	ck_assert_msg(st == EBM_STATUS_OK, "parse failed: %s", err.message);
}

static bool is_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		if (b[i] != 0) {
			return false;
		}
	}
	return true;
}

/* text fails with exactly this message (origin "t.conf") at this line. */
static void expect_error(const char *text, const char *message, unsigned line)
{
	struct ebm_conf c;
	struct ebm_error err;
	enum ebm_status st = ebm_conf_parse_string(text, "t.conf", &c, &err);
	ck_assert_msg(st == EBM_STATUS_FORMAT, "status %s for:\n%s",
			ebm_status_string(st), text);
	ck_assert_int_eq(err.code, EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message, message);
	ck_assert_uint_eq(err.line, line);
	/* left finished: nothing to free, safe to finish again */
	ck_assert(is_zero(&c, sizeof(c)));
	ebm_conf_finish(&c);
}

static bool str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
			(a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Equal in every key (origin and compose line numbers aside). */
static bool conf_equal(const struct ebm_conf *a, const struct ebm_conf *b)
{
	if (!str_eq(a->listen, b->listen) || a->threads != b->threads ||
			a->max_body_bytes != b->max_body_bytes ||
			a->max_rows != b->max_rows ||
			a->request_timeout_ms != b->request_timeout_ms ||
			!str_eq(a->auth_token_file, b->auth_token_file) ||
			a->max_connections != b->max_connections ||
			a->max_header_bytes != b->max_header_bytes ||
			a->idle_timeout_ms != b->idle_timeout_ms ||
			!str_eq(a->models_dir, b->models_dir) ||
			a->has_alpha != b->has_alpha ||
			(a->has_alpha && a->alpha != b->alpha) ||
			a->watch != b->watch || a->log_level != b->log_level ||
			a->n_compose != b->n_compose) {
		return false;
	}
	for (size_t i = 0; i < a->n_compose; i++) {
		const struct ebm_conf_compose *x = &a->compose[i];
		const struct ebm_conf_compose *y = &b->compose[i];
		if (strcmp(x->name, y->name) != 0 || x->n_models != y->n_models ||
				x->has_alpha != y->has_alpha ||
				(x->has_alpha && x->alpha != y->alpha)) {
			return false;
		}
		for (size_t j = 0; j < x->n_models; j++) {
			if (strcmp(x->models[j], y->models[j]) != 0 ||
					x->weights[j] != y->weights[j]) {
				return false;
			}
		}
	}
	return true;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	char *buf = malloc(1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static char tmp_dir[] = "/tmp/test-conf-XXXXXX";

static void tmp_setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void tmp_teardown(void)
{
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	ck_assert_int_eq(system(cmd), 0);
	strcpy(tmp_dir, "/tmp/test-conf-XXXXXX");
}

/* Writes n bytes to tmp_dir/name with this mode; returns the path. */
static const char *write_file(const char *name, const char *data, size_t n,
		mode_t mode)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

/* ---- defaults and every key --------------------------------------------- */

static void check_defaults(const struct ebm_conf *c)
{
	ck_assert_str_eq(c->listen, "127.0.0.1:8080");
	ck_assert_uint_eq(c->threads, 0);
	ck_assert_uint_eq(c->max_body_bytes, 8u << 20);
	ck_assert_uint_eq(c->max_rows, 10000);
	ck_assert_uint_eq(c->request_timeout_ms, 5000);
	ck_assert_ptr_null(c->auth_token_file);
	ck_assert_uint_eq(c->max_connections, 1024);
	ck_assert_uint_eq(c->max_header_bytes, 16384);
	ck_assert_uint_eq(c->idle_timeout_ms, 30000);
	ck_assert_str_eq(c->models_dir, "models");
	ck_assert(!c->has_alpha);
	ck_assert(!c->watch);
	ck_assert_int_eq(c->log_level, EBM_CONF_LOG_INFO);
	ck_assert_uint_eq(c->monitor_window, 1000);
	ck_assert(c->has_drift_alpha && c->drift_alpha == 0.001);
	ck_assert(!c->ui);
	ck_assert_uint_eq(c->n_compose, 0);
	ck_assert_ptr_null(c->compose);
}

/* Found by fuzz-conf: a one-byte file without '=' read past its end while
 * checking for a BOM (heap-buffer-overflow under ASan). The copy is
 * malloc'ed to size so ASan sees any overread. */
START_TEST(test_short_syntax_error)
{
	char *text = malloc(2);
	memcpy(text, "\xd6", 2);
	struct ebm_conf c;
	struct ebm_error err;
	ck_assert_int_eq(ebm_conf_parse_string(text, "short.conf", &c, &err),
			EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message,
			"short.conf:1: expected 'key = value', got '\xd6'");
	free(text);
}
END_TEST

/* Found by fuzz-conf: "dir =;x" is the value ";x", but format() wrote
 * "dir = ;x", which reads back as an empty value (inline comment). */
START_TEST(test_format_semicolon_value)
{
	struct ebm_conf c, c2;
	ck_assert_int_eq(ebm_conf_parse_string("[models]\ndir =;x\n", "a", &c,
			NULL), EBM_STATUS_OK);
	ck_assert_str_eq(c.models_dir, ";x");
	char *text = ebm_conf_format(&c);
	ck_assert_int_eq(ebm_conf_parse_string(text, "b", &c2, NULL),
			EBM_STATUS_OK);
	ck_assert_str_eq(c2.models_dir, ";x");
	free(text);
	ebm_conf_finish(&c);
	ebm_conf_finish(&c2);
}
END_TEST

START_TEST(test_defaults)
{
	struct ebm_conf c;
	ebm_conf_init_defaults(&c);
	check_defaults(&c);
	ck_assert_str_eq(c.origin, "<defaults>");
	ebm_conf_finish(&c);
	ck_assert(is_zero(&c, sizeof(c)));
	ebm_conf_finish(&c);
	ebm_conf_finish(NULL);

	parse_ok("", &c);
	check_defaults(&c);
	ck_assert_str_eq(c.origin, "t.conf");
	ebm_conf_finish(&c);

	ck_assert_int_eq(ebm_conf_parse_string("\n\n# only comments\n", NULL, &c,
			NULL), EBM_STATUS_OK);
	check_defaults(&c);
	ck_assert_str_eq(c.origin, "<string>");
	ebm_conf_finish(&c);

	/* Empty sections are fine. */
	parse_ok("[server]\n[models]\n[log]\n", &c);
	check_defaults(&c);
	ebm_conf_finish(&c);
}
END_TEST

static const char full_text[] =
	"[server]\n"
	"listen = [::1]:9000\n"
	"threads = 8\n"
	"max_body_bytes = 1048576\n"
	"max_rows = 500\n"
	"request_timeout_ms = 250\n"
	"auth_token_file = /etc/ebmd/token\n"
	"max_connections = 64\n"
	"max_header_bytes = 4096\n"
	"idle_timeout_ms = 1000\n"
	"\n"
	"[models]\n"
	"dir = /var/lib/ebmd/models\n"
	"alpha = 0.001\n"
	"watch = yes\n"
	"\n"
	"[log]\n"
	"level = debug\n"
	"[monitor]\n"
	"window = 250\n"
	"drift_alpha = 0.01\n"
	"ui = true\n"
	"[compose.web-1.x]\n"
	"models = cpu, net ,disk\n"
	"weights = 1, 0.5, 2e-1\n"
	"alpha = 0.05\n"
	"\n"
	"[compose.solo]\n"
	"models = cpu\n";

static void check_full(const struct ebm_conf *c)
{
	ck_assert_str_eq(c->listen, "[::1]:9000");
	ck_assert_uint_eq(c->threads, 8);
	ck_assert_uint_eq(c->max_body_bytes, 1048576);
	ck_assert_uint_eq(c->max_rows, 500);
	ck_assert_uint_eq(c->request_timeout_ms, 250);
	ck_assert_str_eq(c->auth_token_file, "/etc/ebmd/token");
	ck_assert_uint_eq(c->max_connections, 64);
	ck_assert_uint_eq(c->max_header_bytes, 4096);
	ck_assert_uint_eq(c->idle_timeout_ms, 1000);
	ck_assert_str_eq(c->models_dir, "/var/lib/ebmd/models");
	ck_assert(c->has_alpha);
	ck_assert(c->alpha == 0.001);
	ck_assert(c->watch);
	ck_assert_int_eq(c->log_level, EBM_CONF_LOG_DEBUG);
	ck_assert_uint_eq(c->monitor_window, 250);
	ck_assert(c->drift_alpha == 0.01);
	ck_assert(c->ui);
	ck_assert_uint_eq(c->n_compose, 2);

	const struct ebm_conf_compose *k = ebm_conf_find_compose(c, "web-1.x");
	ck_assert_ptr_eq(k, &c->compose[0]);
	ck_assert_uint_eq(k->line, 23);
	ck_assert_uint_eq(k->n_models, 3);
	ck_assert_str_eq(k->models[0], "cpu");
	ck_assert_str_eq(k->models[1], "net");
	ck_assert_str_eq(k->models[2], "disk");
	ck_assert(k->weights[0] == 1.0 && k->weights[1] == 0.5 &&
			k->weights[2] == 0.2);
	ck_assert(k->has_alpha && k->alpha == 0.05);

	k = ebm_conf_find_compose(c, "solo");
	ck_assert_ptr_eq(k, &c->compose[1]);
	ck_assert_uint_eq(k->line, 28);
	ck_assert_uint_eq(k->n_models, 1);
	ck_assert_str_eq(k->models[0], "cpu");
	ck_assert(k->weights[0] == 1.0);
	ck_assert(!k->has_alpha);
	ck_assert_ptr_null(ebm_conf_find_compose(c, "cpu"));
}

START_TEST(test_every_key)
{
	struct ebm_conf c;
	parse_ok(full_text, &c);
	check_full(&c);
	ebm_conf_finish(&c);
}
END_TEST

START_TEST(test_crlf)
{
	char text[sizeof(full_text) * 2];
	size_t n = 0;
	for (const char *s = full_text; *s != '\0'; s++) {
		if (*s == '\n') {
			text[n++] = '\r';
		}
		text[n++] = *s;
	}
	text[n] = '\0';
	struct ebm_conf c;
	parse_ok(text, &c);
	check_full(&c);
	ebm_conf_finish(&c);

	/* Line numbers still count CRLF lines. */
	expect_error("[server]\r\n\r\nthreads = x\r\n",
			"t.conf:3: [server] threads: expected an integer in 0..256, got 'x'", 3);
}
END_TEST

START_TEST(test_comments)
{
	struct ebm_conf c;
	parse_ok("\xEF\xBB\xBF# a comment\n"
			"; another\n"
			"\n"
			"   [ server ]   ; inline after a header\n"
			"  threads = 4 ; four\n"
			"\tmax_rows=7\n"
			"    # indented comment\n"
			"max_connections: 9\n"
			"[models]\n"
			"dir = a;b # c ; a comment: ';' after white space\n"
			"   \n"
			"watch = ON\n", &c);
	ck_assert_uint_eq(c.threads, 4);
	ck_assert_uint_eq(c.max_rows, 7);
	ck_assert_uint_eq(c.max_connections, 9);
	/* '#', or ';' without white space before it, stays in the value. */
	ck_assert_str_eq(c.models_dir, "a;b # c");
	ck_assert(c.watch);
	ebm_conf_finish(&c);
}
END_TEST

START_TEST(test_bools_and_levels)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
	static const char *const no[] = {"false", "no", "off", "0", "Off", "NO"};
	char text[128];
	struct ebm_conf c;
	for (size_t i = 0; i < 6; i++) {
		snprintf(text, sizeof(text), "[models]\nwatch = %s\n", yes[i]);
		parse_ok(text, &c);
		ck_assert(c.watch);
		ebm_conf_finish(&c);
		snprintf(text, sizeof(text), "[models]\nwatch = %s\n", no[i]);
		parse_ok(text, &c);
		ck_assert(!c.watch);
		ebm_conf_finish(&c);
	}
	static const char *const levels[] = {"error", "warn", "info", "DEBUG"};
	for (int i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "[log]\nlevel = %s\n", levels[i]);
		parse_ok(text, &c);
		ck_assert_int_eq(c.log_level, i);
		ebm_conf_finish(&c);
	}
}
END_TEST

START_TEST(test_bounds_accepted)
{
	struct ebm_conf c;
	parse_ok("[server]\nthreads = 256\nmax_body_bytes = 1073741824\n"
			"max_rows = 1000000\nrequest_timeout_ms = 3600000\n"
			"max_connections = 100000\nmax_header_bytes = 1048576\n"
			"idle_timeout_ms = 3600000\nlisten = 0.0.0.0:0\n"
			"[models]\nalpha = 0.999999\n"
			"[monitor]\nwindow = 1000000\ndrift_alpha = 0.999999\n", &c);
	ck_assert_uint_eq(c.monitor_window, 1000000);
	ck_assert_uint_eq(c.threads, 256);
	ck_assert_uint_eq(c.max_body_bytes, 1073741824u);
	ck_assert_uint_eq(c.max_rows, 1000000);
	ck_assert_uint_eq(c.request_timeout_ms, 3600000);
	ck_assert_uint_eq(c.max_connections, 100000);
	ck_assert_uint_eq(c.max_header_bytes, 1048576);
	ck_assert_uint_eq(c.idle_timeout_ms, 3600000);
	ebm_conf_finish(&c);

	parse_ok("[server]\nthreads = 1\nmax_body_bytes = 1024\nmax_rows = 1\n"
			"request_timeout_ms = 1\nmax_connections = 1\n"
			"max_header_bytes = 1024\nidle_timeout_ms = 1\n"
			"[models]\nalpha = 1e-9\n"
			"[monitor]\nwindow = 0\ndrift_alpha = 1e-12\n", &c);
	ck_assert_uint_eq(c.monitor_window, 0);
	ck_assert(c.drift_alpha == 1e-12);
	ck_assert_uint_eq(c.max_body_bytes, 1024);
	ck_assert_uint_eq(c.max_rows, 1);
	ck_assert(c.alpha == 1e-9);
	ebm_conf_finish(&c);

	/* Leading zeros are still decimal. */
	parse_ok("[server]\nmax_rows = 010\n", &c);
	ck_assert_uint_eq(c.max_rows, 10);
	ebm_conf_finish(&c);
}
END_TEST

START_TEST(test_compose_forms)
{
	struct ebm_conf c;
	/* weights before models; alpha; names with every allowed character */
	parse_ok("[compose.A_z.0-9]\nweights = 3,0.25\nalpha=0.5\n"
			"models = x.y_Z-1,b\n", &c);
	ck_assert_uint_eq(c.n_compose, 1);
	const struct ebm_conf_compose *k = &c.compose[0];
	ck_assert_str_eq(k->name, "A_z.0-9");
	ck_assert_uint_eq(k->line, 1);
	ck_assert_uint_eq(k->n_models, 2);
	ck_assert_str_eq(k->models[0], "x.y_Z-1");
	ck_assert_str_eq(k->models[1], "b");
	ck_assert(k->weights[0] == 3.0 && k->weights[1] == 0.25);
	ck_assert(k->has_alpha && k->alpha == 0.5);
	ebm_conf_finish(&c);

	/* 64 models, 64-character compose name, compose between sections */
	char text[512];
	char name[65];
	memset(name, 'n', 64);
	name[64] = '\0';
	int len = snprintf(text, sizeof(text), "[server]\n[compose.%s]\nmodels = ",
			name);
	for (int i = 0; i < 64; i++) {
		len += snprintf(text + len, sizeof(text) - (size_t)len, "%s%c",
				i ? "," : "", 'A' + (i % 26) + (i >= 26 ? 32 : 0));
		if (i >= 52) {
			len += snprintf(text + len, sizeof(text) - (size_t)len, "%d", i);
		}
	}
	snprintf(text + len, sizeof(text) - (size_t)len, "\n[log]\nlevel = warn\n");
	parse_ok(text, &c);
	ck_assert_uint_eq(c.compose[0].n_models, 64);
	ck_assert_str_eq(c.compose[0].name, name);
	ck_assert_int_eq(c.log_level, EBM_CONF_LOG_WARN);
	ebm_conf_finish(&c);
}
END_TEST

START_TEST(test_long_lines)
{
	/* No line limit (inih's was 198 characters, an artefact of its line
	 * buffer): a 10000-character value, white space around it dropped. */
	size_t n = 10000;
	char *value = malloc(n + 1);
	memset(value, 'x', n);
	value[n] = '\0';
	char *text = malloc(n + 64);
	snprintf(text, n + 64, "[server]\n    auth_token_file = %s   \n", value);
	struct ebm_conf c;
	parse_ok(text, &c);
	ck_assert_str_eq(c.auth_token_file, value);
	ebm_conf_finish(&c);
	/* an error on such a line quotes at most 200 bytes of it */
	snprintf(text, n + 64, "[server]\n\n%s\n", value);
	struct ebm_error err;
	ck_assert_int_eq(ebm_conf_parse_string(text, "t.conf", &c, &err),
			EBM_STATUS_FORMAT);
	ck_assert_uint_eq(err.line, 3);
	ck_assert_uint_lt(strlen(err.message), 300);
	ck_assert_ptr_nonnull(strstr(err.message, "expected 'key = value'"));
	free(text);
	free(value);
}
END_TEST

/* ---- every error message ------------------------------------------------ */

struct error_case {
	const char *text;
	const char *message;
	unsigned line;
};

static const struct error_case errors[] = {
	/* sections and structure */
	{"[sever]\n", "t.conf:1: unknown section [sever]", 1},
	{"[server]\n\n[]\n", "t.conf:3: unknown section []", 3},
	{"[compose]\n", "t.conf:1: unknown section [compose]", 1},
	{"[Server]\n", "t.conf:1: unknown section [Server]", 1},
	{"[server]\nlisten = 1.2.3.4:80\n\n[models]\naplha = 0.1\n",
		"t.conf:5: [models] unknown key 'aplha'", 5},
	{"[log]\nlevel = info\nfile = x\n", "t.conf:3: [log] unknown key 'file'", 3},
	{"listen = x\n", "t.conf:1: key 'listen' outside any section", 1},
	{"# c\n\nthreads = 2\n[server]\n",
		"t.conf:3: key 'threads' outside any section", 3},
	{"[server]\nthreads = 2\n; c\nthreads = 3\n",
		"t.conf:4: [server] threads: duplicate key (first on line 2)", 4},
	{"[models]\ndir = a\ndir = a\n",
		"t.conf:3: [models] dir: duplicate key (first on line 2)", 3},
	{"[log]\nlevel = info\n[server]\n[log]\n",
		"t.conf:4: duplicate section [log] (first on line 1)", 4},
	{"[server\nthreads = 1\n",
		"t.conf:1: expected ']' to end the section header, got '[server'", 1},
	{"[server ; x]\n",
		"t.conf:1: expected ']' to end the section header, got '[server ; x]'", 1},
	{"[server]\nlisten\n", "t.conf:2: expected 'key = value', got 'listen'", 2},
	{"\xEF\xBB\xBF  junk  \n", "t.conf:1: expected 'key = value', got 'junk'", 1},
	/* the first error wins, whichever kind comes first */
	{"[server]\nbad line\n[nope]\n",
		"t.conf:2: expected 'key = value', got 'bad line'", 2},
	{"[server]\nnope = 1\nbad line\n", "t.conf:2: [server] unknown key 'nope'", 2},
	/* [monitor] */
	{"[monitor]\nwindow = 1000001\n",
		"t.conf:2: [monitor] window: expected an integer in 0..1000000, got '1000001'", 2},
	{"[monitor]\nwindow = -1\n",
		"t.conf:2: [monitor] window: expected an integer in 0..1000000, got '-1'", 2},
	{"[monitor]\n\ndrift_alpha = 0\n",
		"t.conf:3: [monitor] drift_alpha: expected a number strictly between 0 and 1, got '0'", 3},
	{"[monitor]\ndrift_alpha = 1.5\n",
		"t.conf:2: [monitor] drift_alpha: expected a number strictly between 0 and 1, got '1.5'", 2},
	{"[monitor]\nui = maybe\n",
		"t.conf:2: [monitor] ui: expected true/false, yes/no, on/off or 1/0, got 'maybe'", 2},
	{"[monitor]\nwindows = 10\n", "t.conf:2: [monitor] unknown key 'windows'", 2},
	/* integers */
	{"[server]\nmax_rows = lots\n",
		"t.conf:2: [server] max_rows: expected an integer in 1..1000000, got 'lots'", 2},
	{"[server]\nmax_rows = 0\n",
		"t.conf:2: [server] max_rows: expected an integer in 1..1000000, got '0'", 2},
	{"[server]\nmax_rows = 1000001\n",
		"t.conf:2: [server] max_rows: expected an integer in 1..1000000, got '1000001'", 2},
	{"[server]\nmax_rows = -1\n",
		"t.conf:2: [server] max_rows: expected an integer in 1..1000000, got '-1'", 2},
	{"[server]\nmax_rows = +5\n",
		"t.conf:2: [server] max_rows: expected an integer in 1..1000000, got '+5'", 2},
	{"[server]\nmax_rows = 1e3\n",
		"t.conf:2: [server] max_rows: expected an integer in 1..1000000, got '1e3'", 2},
	{"[server]\nmax_rows = 12 rows\n",
		"t.conf:2: [server] max_rows: expected an integer in 1..1000000, got '12 rows'", 2},
	{"[server]\nmax_rows =\n",
		"t.conf:2: [server] max_rows: expected an integer in 1..1000000, got ''", 2},
	{"[server]\nthreads = 257\n",
		"t.conf:2: [server] threads: expected an integer in 0..256, got '257'", 2},
	{"[server]\nthreads = 99999999999999999999999\n",
		"t.conf:2: [server] threads: expected an integer in 0..256, "
		"got '99999999999999999999999'", 2},
	{"[server]\nmax_body_bytes = 1023\n",
		"t.conf:2: [server] max_body_bytes: expected an integer in 1024..1073741824, "
		"got '1023'", 2},
	{"[server]\nmax_body_bytes = 8M\n",
		"t.conf:2: [server] max_body_bytes: expected an integer in 1024..1073741824, "
		"got '8M'", 2},
	{"[server]\nmax_body_bytes = 1073741825\n",
		"t.conf:2: [server] max_body_bytes: expected an integer in 1024..1073741824, "
		"got '1073741825'", 2},
	{"[server]\nrequest_timeout_ms = 0\n",
		"t.conf:2: [server] request_timeout_ms: expected an integer in 1..3600000, "
		"got '0'", 2},
	{"[server]\nrequest_timeout_ms = 3600001\n",
		"t.conf:2: [server] request_timeout_ms: expected an integer in 1..3600000, "
		"got '3600001'", 2},
	{"[server]\nmax_connections = 100001\n",
		"t.conf:2: [server] max_connections: expected an integer in 1..100000, "
		"got '100001'", 2},
	{"[server]\nmax_connections = 0\n",
		"t.conf:2: [server] max_connections: expected an integer in 1..100000, "
		"got '0'", 2},
	{"[server]\nmax_header_bytes = 1023\n",
		"t.conf:2: [server] max_header_bytes: expected an integer in 1024..1048576, "
		"got '1023'", 2},
	{"[server]\nmax_header_bytes = 1048577\n",
		"t.conf:2: [server] max_header_bytes: expected an integer in 1024..1048576, "
		"got '1048577'", 2},
	{"[server]\nidle_timeout_ms = 0\n",
		"t.conf:2: [server] idle_timeout_ms: expected an integer in 1..3600000, "
		"got '0'", 2},
	{"[server]\nidle_timeout_ms = 3600001\n",
		"t.conf:2: [server] idle_timeout_ms: expected an integer in 1..3600000, "
		"got '3600001'", 2},
	/* strings */
	{"[models]\ndir =\n",
		"t.conf:2: [models] dir: expected a non-empty value, got ''", 2},
	{"[server]\nauth_token_file = ; none\n",
		"t.conf:2: [server] auth_token_file: expected a non-empty value, got ''", 2},
	/* booleans and levels */
	{"[models]\nwatch = maybe\n",
		"t.conf:2: [models] watch: expected true/false, yes/no, on/off or 1/0, "
		"got 'maybe'", 2},
	{"[models]\nwatch = yes # inline\n",
		"t.conf:2: [models] watch: expected true/false, yes/no, on/off or 1/0, "
		"got 'yes # inline'", 2},
	{"[models]\nwatch = 2\n",
		"t.conf:2: [models] watch: expected true/false, yes/no, on/off or 1/0, "
		"got '2'", 2},
	{"[log]\nlevel = verbose\n",
		"t.conf:2: [log] level: expected error, warn, info or debug, got 'verbose'", 2},
	{"[log]\nlevel = warning\n",
		"t.conf:2: [log] level: expected error, warn, info or debug, got 'warning'", 2},
	/* alpha */
	{"[models]\nalpha = 0\n",
		"t.conf:2: [models] alpha: expected a number strictly between 0 and 1, got '0'", 2},
	{"[models]\nalpha = 1\n",
		"t.conf:2: [models] alpha: expected a number strictly between 0 and 1, got '1'", 2},
	{"[models]\nalpha = -1\n",
		"t.conf:2: [models] alpha: expected a number strictly between 0 and 1, got '-1'", 2},
	{"[models]\nalpha = nan\n",
		"t.conf:2: [models] alpha: expected a number strictly between 0 and 1, got 'nan'", 2},
	{"[models]\nalpha = inf\n",
		"t.conf:2: [models] alpha: expected a number strictly between 0 and 1, got 'inf'", 2},
	{"[models]\nalpha = low\n",
		"t.conf:2: [models] alpha: expected a number strictly between 0 and 1, got 'low'", 2},
	{"[models]\nalpha = 0.1x\n",
		"t.conf:2: [models] alpha: expected a number strictly between 0 and 1, got '0.1x'", 2},
	{"[models]\nalpha = 1e-400\n",
		"t.conf:2: [models] alpha: expected a number strictly between 0 and 1, "
		"got '1e-400'", 2},
	{"[models]\nalpha =\n",
		"t.conf:2: [models] alpha: expected a number strictly between 0 and 1, got ''", 2},
	/* listen */
	{"[server]\nlisten = localhost\n",
		"t.conf:2: [server] listen: expected HOST:PORT, got 'localhost'", 2},
	{"[server]\nlisten = 127.0.0.1:\n",
		"t.conf:2: [server] listen: expected HOST:PORT, got '127.0.0.1:'", 2},
	{"[server]\nlisten = :8080\n",
		"t.conf:2: [server] listen: expected HOST:PORT, got ':8080'", 2},
	{"[server]\nlisten =\n", "t.conf:2: [server] listen: expected HOST:PORT, got ''", 2},
	{"[server]\nlisten = [::1]8080\n",
		"t.conf:2: [server] listen: expected HOST:PORT, got '[::1]8080'", 2},
	{"[server]\nlisten = [::1\n",
		"t.conf:2: [server] listen: expected HOST:PORT, got '[::1'", 2},
	{"[server]\nlisten = 127.0.0.1:65536\n",
		"t.conf:2: [server] listen: expected HOST:PORT with PORT in 0..65535, "
		"got '127.0.0.1:65536'", 2},
	{"[server]\nlisten = 127.0.0.1:123456\n",
		"t.conf:2: [server] listen: expected HOST:PORT with PORT in 0..65535, "
		"got '127.0.0.1:123456'", 2},
	{"[server]\nlisten = 127.0.0.1:http\n",
		"t.conf:2: [server] listen: expected HOST:PORT with PORT in 0..65535, "
		"got '127.0.0.1:http'", 2},
	{"[server]\nlisten = 127.0.0.1:-1\n",
		"t.conf:2: [server] listen: expected HOST:PORT with PORT in 0..65535, "
		"got '127.0.0.1:-1'", 2},
	{"[server]\nlisten = ::1:8080\n",
		"t.conf:2: [server] listen: expected HOST:PORT with an IPv6 HOST in "
		"[brackets], got '::1:8080'", 2},
	{"[server]\nlisten = 256.1.1.1:80\n",
		"t.conf:2: [server] listen: expected HOST:PORT with HOST an IPv4 address, "
		"a host name or [IPv6], got '256.1.1.1:80'", 2},
	{"[server]\nlisten = 1.2.3:80\n",
		"t.conf:2: [server] listen: expected HOST:PORT with HOST an IPv4 address, "
		"a host name or [IPv6], got '1.2.3:80'", 2},
	{"[server]\nlisten = bad_host:80\n",
		"t.conf:2: [server] listen: expected HOST:PORT with HOST an IPv4 address, "
		"a host name or [IPv6], got 'bad_host:80'", 2},
	{"[server]\nlisten = -host:80\n",
		"t.conf:2: [server] listen: expected HOST:PORT with HOST an IPv4 address, "
		"a host name or [IPv6], got '-host:80'", 2},
	{"[server]\nlisten = a..b:80\n",
		"t.conf:2: [server] listen: expected HOST:PORT with HOST an IPv4 address, "
		"a host name or [IPv6], got 'a..b:80'", 2},
	{"[server]\nlisten = [zz::1]:80\n",
		"t.conf:2: [server] listen: expected HOST:PORT with HOST an IPv4 address, "
		"a host name or [IPv6], got '[zz::1]:80'", 2},
	{"[server]\nlisten = []:80\n",
		"t.conf:2: [server] listen: expected HOST:PORT with HOST an IPv4 address, "
		"a host name or [IPv6], got '[]:80'", 2},
	{"[server]\nlisten = [127.0.0.1]:80\n",
		"t.conf:2: [server] listen: expected HOST:PORT with HOST an IPv4 address, "
		"a host name or [IPv6], got '[127.0.0.1]:80'", 2},
	/* compose sections */
	{"[compose.bad name]\n",
		"t.conf:1: compose name: expected 1..64 characters [A-Za-z0-9_.-], "
		"got 'bad name'", 1},
	{"[compose.]\n",
		"t.conf:1: compose name: expected 1..64 characters [A-Za-z0-9_.-], got ''", 1},
	{"[compose.a/b]\n",
		"t.conf:1: compose name: expected 1..64 characters [A-Za-z0-9_.-], "
		"got 'a/b'", 1},
	{"[compose.nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn]\n",
		"t.conf:1: compose name: expected 1..64 characters [A-Za-z0-9_.-], "
		"got 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn'", 1},
	{"[compose.a]\nmodels = x\n[compose.b]\nmodels = x\n[compose.a]\nmodels = y\n",
		"t.conf:5: duplicate section [compose.a] (first on line 1)", 5},
	{"[compose.a]\nweights = 1\n[server]\n",
		"t.conf:1: [compose.a] missing key 'models'", 1},
	{"[server]\n[compose.a]\nalpha = 0.5\n",
		"t.conf:2: [compose.a] missing key 'models'", 2},
	/* a syntax error inside the section comes before its missing key */
	{"[compose.a]\nbad\n", "t.conf:2: expected 'key = value', got 'bad'", 2},
	{"[compose.a]\nmodel = x\n", "t.conf:2: [compose.a] unknown key 'model'", 2},
	{"[compose.a]\nmodels = x\nmodels = y\n",
		"t.conf:3: [compose.a] models: duplicate key (first on line 2)", 3},
	{"[compose.a]\nmodels =\n",
		"t.conf:2: [compose.a] models: expected comma-separated model names of "
		"1..255 characters [A-Za-z0-9_.-], got ''", 2},
	{"[compose.a]\nmodels = a,,b\n",
		"t.conf:2: [compose.a] models: expected comma-separated model names of "
		"1..255 characters [A-Za-z0-9_.-], got 'a,,b'", 2},
	{"[compose.a]\nmodels = a,\n",
		"t.conf:2: [compose.a] models: expected comma-separated model names of "
		"1..255 characters [A-Za-z0-9_.-], got 'a,'", 2},
	{"[compose.a]\nmodels = a, b c\n",
		"t.conf:2: [compose.a] models: expected comma-separated model names of "
		"1..255 characters [A-Za-z0-9_.-], got 'a, b c'", 2},
	{"[compose.a]\nmodels = a, b, a\n",
		"t.conf:2: [compose.a] models: model 'a' is listed twice, got 'a, b, a'", 2},
	{"[compose.a]\nmodels = a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,"
		"a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a\n",
		"t.conf:2: [compose.a] models: expected at most 64 models, got "
		"'a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,"
		"a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a,a'", 2},
	{"[compose.a]\nmodels = a, b\nweights = 1, 2, 3\n",
		"t.conf:3: [compose.a] weights: expected 2 weights, one per model, "
		"got '1, 2, 3'", 3},
	{"[compose.a]\nweights = 1, 2\n\nmodels = a\n",
		"t.conf:4: [compose.a] models: expected 2 models, one per weight, got 'a'", 4},
	{"[compose.a]\nmodels = a, b\nweights = 1, 0\n",
		"t.conf:3: [compose.a] weights: expected comma-separated numbers > 0, "
		"got '1, 0'", 3},
	{"[compose.a]\nmodels = a, b\nweights = 1, -2\n",
		"t.conf:3: [compose.a] weights: expected comma-separated numbers > 0, "
		"got '1, -2'", 3},
	{"[compose.a]\nmodels = a\nweights = heavy\n",
		"t.conf:3: [compose.a] weights: expected comma-separated numbers > 0, "
		"got 'heavy'", 3},
	{"[compose.a]\nmodels = a\nweights = nan\n",
		"t.conf:3: [compose.a] weights: expected comma-separated numbers > 0, "
		"got 'nan'", 3},
	{"[compose.a]\nmodels = a\nweights = 1e999\n",
		"t.conf:3: [compose.a] weights: expected comma-separated numbers > 0, "
		"got '1e999'", 3},
	{"[compose.a]\nmodels = a, b\nweights = 1,,2\n",
		"t.conf:3: [compose.a] weights: expected comma-separated numbers > 0, "
		"got '1,,2'", 3},
	{"[compose.a]\nmodels = a, b\nweights = 1 2\n",
		"t.conf:3: [compose.a] weights: expected comma-separated numbers > 0, "
		"got '1 2'", 3},
	{"[compose.a]\nmodels = a\nweights =\n",
		"t.conf:3: [compose.a] weights: expected comma-separated numbers > 0, "
		"got ''", 3},
	{"[compose.a]\nmodels = a\nalpha = 1\n",
		"t.conf:3: [compose.a] alpha: expected a number strictly between 0 and 1, "
		"got '1'", 3},
};

START_TEST(test_error)
{
	expect_error(errors[_i].text, errors[_i].message, errors[_i].line);
}
END_TEST

/* ---- the shipped config/ebmd.conf --------------------------------------- */

/* text with "# " removed from lines that start with "# " + one of keys. */
static char *uncomment(const char *text, const char *const *keys, size_t n)
{
	char *out = malloc(strlen(text) + 1);
	char *o = out;
	bool bol = true;
	for (const char *s = text; *s != '\0'; s++) {
		if (bol && strncmp(s, "# ", 2) == 0) {
			for (size_t i = 0; i < n; i++) {
				if (strncmp(s + 2, keys[i], strlen(keys[i])) == 0) {
					s += 2;
					break;
				}
			}
		}
		*o++ = *s;
		bol = *s == '\n';
	}
	*o = '\0';
	return out;
}

START_TEST(test_shipped)
{
	struct ebm_conf c, d;
	struct ebm_error err;
	ck_assert_msg(ebm_conf_load_file(SHIPPED, &c, &err) == EBM_STATUS_OK,
			"%s", err.message);
	ebm_conf_init_defaults(&d);
	ck_assert(conf_equal(&c, &d));
	ck_assert_str_eq(c.origin, SHIPPED);
	ebm_conf_finish(&c);

	/* It documents every key: each appears as "key = " or "# key = ". */
	char *text = read_text(SHIPPED);
	char *all = ebm_conf_format(&d);
	for (char *line = strtok(all, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		if (line[0] == '[') {
			ck_assert_msg(strstr(text, line) != NULL, "no %s", line);
			continue;
		}
		char key[64], want[80];
		ck_assert_int_eq(sscanf(line[0] == '#' ? line + 2 : line, "%63s", key), 1);
		snprintf(want, sizeof(want), "\n%s = ", key);
		bool found = strstr(text, want) != NULL;
		snprintf(want, sizeof(want), "\n# %s = ", key);
		found = found || strstr(text, want) != NULL;
		ck_assert_msg(found, "config/ebmd.conf does not document %s", key);
	}
	free(all);
	ebm_conf_finish(&d);

	/* Its commented-out examples are valid too. */
	static const char *const keys[] = {"auth_token_file = ", "alpha = ",
		"[compose.", "models = ", "weights = "};
	char *on = uncomment(text, keys, 5);
	ck_assert_int_eq(ebm_conf_parse_string(on, "ebmd.conf", &c, &err),
			EBM_STATUS_OK);
	ck_assert_str_eq(c.auth_token_file, "/etc/ebmd/token");
	ck_assert(c.has_alpha && c.alpha == 0.01);
	const struct ebm_conf_compose *k = ebm_conf_find_compose(&c, "example");
	ck_assert_ptr_nonnull(k);
	ck_assert_uint_eq(k->n_models, 2);
	ck_assert_str_eq(k->models[0], "cpu");
	ck_assert_str_eq(k->models[1], "net");
	ck_assert(k->weights[0] == 1.0 && k->weights[1] == 0.5);
	ck_assert(k->has_alpha && k->alpha == 0.01);
	ebm_conf_finish(&c);
	free(on);
	free(text);
}
END_TEST

/* ---- overrides, reload flags, listen ------------------------------------ */

START_TEST(test_set)
{
	struct ebm_conf c;
	struct ebm_error err;
	ebm_conf_init_defaults(&c);
	ck_assert_int_eq(ebm_conf_set(&c, "listen", "[::]:0", "--listen", &err),
			EBM_STATUS_OK);
	ck_assert_str_eq(c.listen, "[::]:0");
	ck_assert_int_eq(ebm_conf_set(&c, "models_dir", "/srv/m", "--models", &err),
			EBM_STATUS_OK);
	ck_assert_str_eq(c.models_dir, "/srv/m");
	ck_assert_int_eq(ebm_conf_set(&c, "models.dir", "m2", NULL, &err),
			EBM_STATUS_OK);
	ck_assert_str_eq(c.models_dir, "m2");
	ck_assert_int_eq(ebm_conf_set(&c, "server.threads", "3", NULL, &err),
			EBM_STATUS_OK);
	ck_assert_uint_eq(c.threads, 3);
	ck_assert_int_eq(ebm_conf_set(&c, "log_level", "debug", NULL, &err),
			EBM_STATUS_OK);
	ck_assert_int_eq(c.log_level, EBM_CONF_LOG_DEBUG);
	ck_assert_int_eq(ebm_conf_set(&c, "alpha", "0.2", NULL, &err),
			EBM_STATUS_OK);
	ck_assert(c.has_alpha && c.alpha == 0.2);
	ck_assert_int_eq(ebm_conf_set(&c, "auth_token_file", "/t", NULL, &err),
			EBM_STATUS_OK);
	ck_assert_str_eq(c.auth_token_file, "/t");

	/* Failures name the flag and leave c unchanged. */
	ck_assert_int_eq(ebm_conf_set(&c, "listen", "x", "--listen", &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "--listen: expected HOST:PORT, got 'x'");
	ck_assert_uint_eq(err.line, 0);
	ck_assert_str_eq(c.listen, "[::]:0");
	ck_assert_int_eq(ebm_conf_set(&c, "listen", "h:99999", "--listen", &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message,
			"--listen: expected HOST:PORT with PORT in 0..65535, got 'h:99999'");
	ck_assert_int_eq(ebm_conf_set(&c, "models_dir", "", "--models", &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "--models: expected a non-empty value, got ''");
	ck_assert_str_eq(c.models_dir, "m2");
	ck_assert_int_eq(ebm_conf_set(&c, "listen", "x", NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "[server] listen: expected HOST:PORT, got 'x'");
	ck_assert_int_eq(ebm_conf_set(&c, "threads", "300", "--threads", NULL),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_uint_eq(c.threads, 3);
	ck_assert_int_eq(ebm_conf_set(&c, "nope", "1", "--nope", &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "--nope: unknown configuration key 'nope'");
	ck_assert_int_eq(ebm_conf_set(&c, "models", "a", NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "models: unknown configuration key 'models'");
	ck_assert_int_eq(ebm_conf_set(&c, "log.level", NULL, "--log-level", &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message,
			"--log-level: expected error, warn, info or debug, got ''");
	ebm_conf_finish(&c);
}
END_TEST

START_TEST(test_reloadable)
{
	ck_assert(!ebm_conf_reloadable("server", "listen"));
	ck_assert(!ebm_conf_reloadable("server", "threads"));
	/* The HTTP server is built with these. */
	ck_assert(!ebm_conf_reloadable("server", "max_body_bytes"));
	ck_assert(!ebm_conf_reloadable("server", "request_timeout_ms"));
	ck_assert(!ebm_conf_reloadable("server", "max_connections"));
	ck_assert(!ebm_conf_reloadable("server", "max_header_bytes"));
	ck_assert(!ebm_conf_reloadable("server", "idle_timeout_ms"));
	ck_assert(ebm_conf_reloadable("server", "max_rows"));
	ck_assert(ebm_conf_reloadable("server", "auth_token_file"));
	ck_assert(ebm_conf_reloadable("models", "dir"));
	ck_assert(ebm_conf_reloadable("models", "alpha"));
	ck_assert(ebm_conf_reloadable("log", "level"));
	ck_assert(ebm_conf_reloadable("compose.x", "models"));
	ck_assert(ebm_conf_reloadable("compose.x", "weights"));
	ck_assert(!ebm_conf_reloadable("server", "nope"));
	ck_assert(!ebm_conf_reloadable("nope", "listen"));
	ck_assert(!ebm_conf_reloadable("compose", "models"));
	ck_assert(!ebm_conf_reloadable("models", "models"));
}
END_TEST

START_TEST(test_listen)
{
	static const struct {
		const char *s, *host;
		unsigned port;
	} good[] = {
		{"127.0.0.1:8080", "127.0.0.1", 8080},
		{"0.0.0.0:0", "0.0.0.0", 0},
		{"localhost:65535", "localhost", 65535},
		{"[::1]:8080", "::1", 8080},
		{"[::]:80", "::", 80},
		{"[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1", 1},
		{"example.com:443", "example.com", 443},
		{"a-b.c9:00080", "a-b.c9", 80},
		{"host1:1", "host1", 1},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *host = NULL;
		unsigned port = 1234567;
		ck_assert_msg(ebm_conf_parse_listen(good[i].s, &host, &port), "%s",
				good[i].s);
		ck_assert_str_eq(host, good[i].host);
		ck_assert_uint_eq(port, good[i].port);
		free(host);
		ck_assert(ebm_conf_parse_listen(good[i].s, NULL, NULL));
	}
	static const char *const bad[] = {
		"", "8080", "host", ":1", "host:", "host:65536", "host:1:2",
		"::1:80", "[::1]", "[::1]:", "[::1]x:80", "1.2.3.4.5:80",
		"999.1.1.1:1", "-a:1", "a-:1", "a..b:1", "a b:1", "a.:1",
		"[10.0.0.1]:1", "h:+1", "h: 1", " h:1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *host = (char *)"untouched";
		unsigned port = 7;
		ck_assert_msg(!ebm_conf_parse_listen(bad[i], &host, &port), "%s", bad[i]);
		ck_assert_str_eq(host, "untouched");
		ck_assert_uint_eq(port, 7);
	}
	ck_assert(!ebm_conf_parse_listen(NULL, NULL, NULL));
}
END_TEST

/* ---- token file --------------------------------------------------------- */

static void token_ok(const char *data, size_t n, mode_t mode, const char *want)
{
	const char *path = write_file("token", data, n, mode);
	char *token = NULL;
	unsigned got_mode = 0xdead;
	struct ebm_error err;
	ck_assert_msg(ebm_conf_read_token(path, &token, &got_mode, &err) ==
			EBM_STATUS_OK, "%s", err.message);
	ck_assert_str_eq(token, want);
	ck_assert_uint_eq(got_mode, mode);
	free(token);
}

static void token_error(const char *data, size_t n, enum ebm_status code,
		const char *why)
{
	const char *path = write_file("token", data, n, 0600);
	char *token = (char *)"x";
	struct ebm_error err;
	char want[512];
	ck_assert_int_eq(ebm_conf_read_token(path, &token, NULL, &err), code);
	ck_assert_ptr_null(token);
	snprintf(want, sizeof(want), why, path);
	ck_assert_str_eq(err.message, want);
}

START_TEST(test_token)
{
	token_ok("  s3cret-token  \nsecond line\n", 29, 0600, "s3cret-token");
	/* The permission bits come back as they are (the daemon warns on
	 * any group or other bit). */
	token_ok("abc", 3, 0644, "abc");
	token_ok("abc\r\n", 5, 0640, "abc");
	token_ok("\tBearer xyz \r\n", 14, 0604, "Bearer xyz");
	token_ok("abc\n", 4, 0400, "abc");
	token_ok("abc\n", 4, 0620, "abc");
	token_ok("abc\n", 4, 0602, "abc");
	token_ok("abc\n", 4, 04600, "abc");

	/* exactly 4096 bytes, no newline: the whole file is the token */
	char big[4097];
	memset(big, 'k', 4096);
	big[4096] = '\0';
	token_ok(big, 4096, 0600, big);
}
END_TEST

START_TEST(test_token_errors)
{
	token_error("", 0, EBM_STATUS_FORMAT, "token file '%s': the first line is empty");
	token_error("\n", 1, EBM_STATUS_FORMAT, "token file '%s': the first line is empty");
	token_error("  \r\nabc\n", 8, EBM_STATUS_FORMAT,
			"token file '%s': the first line is empty");
	token_error("ab\x01" "cd\n", 6, EBM_STATUS_FORMAT,
			"token file '%s': the token contains a control character");
	token_error("ab\0cd\n", 6, EBM_STATUS_FORMAT,
			"token file '%s': the token contains a control character");
	char big[4097];
	memset(big, 'k', sizeof(big));
	token_error(big, sizeof(big), EBM_STATUS_LIMIT,
			"token file '%s' is larger than 4096 bytes");

	char path[300], want[400];
	char *token = (char *)"x";
	struct ebm_error err;
	snprintf(path, sizeof(path), "%s/missing", tmp_dir);
	ck_assert_int_eq(ebm_conf_read_token(path, &token, NULL, &err),
			EBM_STATUS_IO);
	ck_assert_ptr_null(token);
	snprintf(want, sizeof(want), "cannot read '%s': %s", path, strerror(ENOENT));
	ck_assert_str_eq(err.message, want);
	ck_assert_int_eq(err.sys_errno, ENOENT);

	ck_assert_int_eq(ebm_conf_read_token(tmp_dir, &token, NULL, &err),
			EBM_STATUS_IO);
	snprintf(want, sizeof(want), "cannot read '%s': not a regular file", tmp_dir);
	ck_assert_str_eq(err.message, want);
}
END_TEST

/* ---- files -------------------------------------------------------------- */

START_TEST(test_load_file)
{
	struct ebm_conf c;
	struct ebm_error err;
	char want[512];
	const char *path = write_file("ok.conf", full_text, strlen(full_text), 0644);
	ck_assert_int_eq(ebm_conf_load_file(path, &c, &err), EBM_STATUS_OK);
	check_full(&c);
	ck_assert_str_eq(c.origin, path);
	ebm_conf_finish(&c);

	/* Messages name the file. */
	path = write_file("bad.conf", "[server]\n\nmax_rows = lots\n", 26, 0644);
	ck_assert_int_eq(ebm_conf_load_file(path, &c, &err), EBM_STATUS_FORMAT);
	snprintf(want, sizeof(want), "%s:3: [server] max_rows: expected an integer "
			"in 1..1000000, got 'lots'", path);
	ck_assert_str_eq(err.message, want);
	ck_assert_uint_eq(err.line, 3);
	ck_assert(is_zero(&c, sizeof(c)));

	path = write_file("nul.conf", "[server]\n\nthreads\0 = 1\n", 23, 0644);
	ck_assert_int_eq(ebm_conf_load_file(path, &c, &err), EBM_STATUS_FORMAT);
	snprintf(want, sizeof(want), "%s:3: unexpected NUL byte", path);
	ck_assert_str_eq(err.message, want);
	ck_assert_uint_eq(err.line, 3);
	ck_assert(is_zero(&c, sizeof(c)));

	/* 1 MiB of comments is fine; one byte more is not. */
	size_t n = 1 << 20;
	char *big = malloc(n + 1);
	memset(big, '#', n + 1);
	for (size_t i = 79; i < n + 1; i += 80) {
		big[i] = '\n';
	}
	path = write_file("big.conf", big, n, 0644);
	ck_assert_int_eq(ebm_conf_load_file(path, &c, &err), EBM_STATUS_OK);
	ebm_conf_finish(&c);
	path = write_file("big.conf", big, n + 1, 0644);
	ck_assert_int_eq(ebm_conf_load_file(path, &c, &err), EBM_STATUS_LIMIT);
	snprintf(want, sizeof(want),
			"configuration file '%s' is larger than 1048576 bytes", path);
	ck_assert_str_eq(err.message, want);
	ck_assert(is_zero(&c, sizeof(c)));
	free(big);

	char missing[300];
	snprintf(missing, sizeof(missing), "%s/none.conf", tmp_dir);
	ck_assert_int_eq(ebm_conf_load_file(missing, &c, &err), EBM_STATUS_IO);
	snprintf(want, sizeof(want), "cannot read '%s': %s", missing,
			strerror(ENOENT));
	ck_assert_str_eq(err.message, want);
	ck_assert(is_zero(&c, sizeof(c)));
	ebm_conf_finish(&c);

	ck_assert_int_eq(ebm_conf_load_file(tmp_dir, &c, NULL), EBM_STATUS_IO);
	ck_assert_int_eq(ebm_conf_load_file("/dev/null", &c, &err), EBM_STATUS_IO);
	ck_assert_str_eq(err.message, "cannot read '/dev/null': not a regular file");
}
END_TEST

/* ---- format ------------------------------------------------------------- */

static void round_trip(const struct ebm_conf *c)
{
	char *text = ebm_conf_format(c);
	struct ebm_conf d;
	struct ebm_error err;
	ck_assert_msg(ebm_conf_parse_string(text, "formatted", &d, &err) ==
			EBM_STATUS_OK, "%s\n%s", err.message, text);
	ck_assert_msg(conf_equal(c, &d), "round trip differs:\n%s", text);
	/* and formatting is stable */
	char *again = ebm_conf_format(&d);
	ck_assert_str_eq(text, again);
	free(again);
	free(text);
	ebm_conf_finish(&d);
}

START_TEST(test_format)
{
	struct ebm_conf c;
	ebm_conf_init_defaults(&c);
	char *text = ebm_conf_format(&c);
	ck_assert_str_eq(text,
			"[server]\n"
			"listen = 127.0.0.1:8080\n"
			"threads = 0\n"
			"max_body_bytes = 8388608\n"
			"max_rows = 10000\n"
			"request_timeout_ms = 5000\n"
			"# auth_token_file = (not set)\n"
			"max_connections = 1024\n"
			"max_header_bytes = 16384\n"
			"idle_timeout_ms = 30000\n"
			"\n"
			"[models]\n"
			"dir = models\n"
			"# alpha = (not set)\n"
			"watch = false\n"
			"\n"
			"[log]\n"
			"level = info\n"
			"\n"
			"[monitor]\n"
			"window = 1000\n"
			"drift_alpha = 0.001\n"
			"ui = false\n");
	free(text);
	round_trip(&c);
	ebm_conf_finish(&c);

	parse_ok(full_text, &c);
	round_trip(&c);
	text = ebm_conf_format(&c);
	ck_assert_ptr_nonnull(strstr(text, "\n[compose.web-1.x]\nmodels = cpu,net,disk\n"
			"weights = 1,0.5,0.2\nalpha = 0.05\n\n[compose.solo]\nmodels = cpu\n"
			"weights = 1\n# alpha = (not set)\n"));
	free(text);
	ebm_conf_finish(&c);

	/* Numbers that need all 17 digits survive. */
	parse_ok("[models]\nalpha = 0.1\n[compose.p]\nmodels = a, b, c\n"
			"weights = 0.33333333333333331, 1e-300, 123456789.125\n"
			"alpha = 0.30000000000000004\n", &c);
	round_trip(&c);
	ck_assert(c.compose[0].weights[0] == 1.0 / 3.0);
	ebm_conf_finish(&c);

	/* Values set from the command line too. */
	ebm_conf_init_defaults(&c);
	ck_assert_int_eq(ebm_conf_set(&c, "listen", "[::1]:0", NULL, NULL),
			EBM_STATUS_OK);
	ck_assert_int_eq(ebm_conf_set(&c, "models_dir", "/a b/c", NULL, NULL),
			EBM_STATUS_OK);
	round_trip(&c);
	ebm_conf_finish(&c);
}
END_TEST

/* ---- suite -------------------------------------------------------------- */

static Suite *conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_format_semicolon_value);
	tcase_add_test(tc, test_short_syntax_error);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_crlf);
	tcase_add_test(tc, test_comments);
	tcase_add_test(tc, test_bools_and_levels);
	tcase_add_test(tc, test_bounds_accepted);
	tcase_add_test(tc, test_compose_forms);
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_shipped);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, test_error, 0,
			(int)(sizeof(errors) / sizeof(errors[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("api");
	tcase_add_test(tc, test_set);
	tcase_add_test(tc, test_reloadable);
	tcase_add_test(tc, test_listen);
	tcase_add_test(tc, test_format);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_token);
	tcase_add_test(tc, test_token_errors);
	tcase_add_test(tc, test_load_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(conf_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
