/*
 * conf.c — ebmd's configuration (API.md section 3): the directive table,
 * the value parsers and the checks of sections and keys, on top of the INI
 * grammar of ini.c, and the formatter behind --check-config. The file and
 * token-file readers are in file.c.
 *
 * It only checks syntax and ranges. Resolving threads = 0 to a CPU count,
 * binding the listen address, reading the token and loading the models a
 * [compose.NAME] section names are the daemon's job. Nothing here prints or
 * keeps global state; every function is safe to call from one thread at a
 * time per struct ebm_conf.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/ini.h"
#include "util/util.h"

/* ---- the directive table ------------------------------------------------ */

enum type {
	TYPE_STRING,    /* non-empty text (paths) */
	TYPE_LISTEN,    /* HOST:PORT, see check_listen() */
	TYPE_UINT,      /* unsigned in [min, max] */
	TYPE_UINT64,    /* uint64_t in [min, max] */
	TYPE_BOOL,
	TYPE_ALPHA,     /* double in (0, 1), with a has_ flag */
	TYPE_LOG_LEVEL,
	TYPE_MODELS,    /* [compose.NAME] only: comma-separated names */
	TYPE_WEIGHTS,   /* [compose.NAME] only: comma-separated numbers > 0 */
};

enum sec {
	SEC_NONE = 0,   /* before the first header */
	SEC_SERVER,
	SEC_MODELS,
	SEC_LOG,
	SEC_MONITOR,
	SEC_COMPOSE,
	SEC_COUNT,
};

static const char *const sec_names[SEC_COUNT] = {
	"", "server", "models", "log", "monitor", "compose",
};

struct directive {
	enum sec sec;
	const char *key;        /* name in the file */
	const char *name;       /* name for ebm_conf_set() (the struct field) */
	enum type type;
	const char *def;        /* default, as file text; NULL: not set */
	uint64_t min, max;      /* TYPE_UINT, TYPE_UINT64 */
	size_t offset;          /* into struct ebm_conf or ebm_conf_compose */
	size_t has_offset;      /* TYPE_ALPHA: its bool "is set" flag */
	bool reloadable;        /* false: kept from launch on SIGHUP */
};

#define CONF(f) offsetof(struct ebm_conf, f)
#define COMPOSE(f) offsetof(struct ebm_conf_compose, f)

/* Grouped by section: ebm_conf_format() writes them in this order. */
static const struct directive directives[] = {
	{SEC_SERVER, "listen", "listen", TYPE_LISTEN, "127.0.0.1:8080",
		0, 0, CONF(listen), 0, false},
	{SEC_SERVER, "threads", "threads", TYPE_UINT, "0",
		0, 256, CONF(threads), 0, false},
	{SEC_SERVER, "max_body_bytes", "max_body_bytes", TYPE_UINT64, "8388608",
		1024, 1073741824, CONF(max_body_bytes), 0, false},
	{SEC_SERVER, "max_rows", "max_rows", TYPE_UINT, "10000",
		1, 1000000, CONF(max_rows), 0, true},
	{SEC_SERVER, "request_timeout_ms", "request_timeout_ms", TYPE_UINT, "5000",
		1, 3600000, CONF(request_timeout_ms), 0, false},
	{SEC_SERVER, "auth_token_file", "auth_token_file", TYPE_STRING, NULL,
		0, 0, CONF(auth_token_file), 0, true},
	{SEC_SERVER, "max_connections", "max_connections", TYPE_UINT, "1024",
		1, 100000, CONF(max_connections), 0, false},
	{SEC_SERVER, "max_header_bytes", "max_header_bytes", TYPE_UINT, "16384",
		1024, 1048576, CONF(max_header_bytes), 0, false},
	{SEC_SERVER, "idle_timeout_ms", "idle_timeout_ms", TYPE_UINT, "30000",
		1, 3600000, CONF(idle_timeout_ms), 0, false},
	{SEC_MODELS, "dir", "models_dir", TYPE_STRING, "models",
		0, 0, CONF(models_dir), 0, true},
	{SEC_MODELS, "alpha", "alpha", TYPE_ALPHA, NULL,
		0, 0, CONF(alpha), CONF(has_alpha), true},
	{SEC_MODELS, "watch", "watch", TYPE_BOOL, "false",
		0, 0, CONF(watch), 0, true},
	{SEC_LOG, "level", "log_level", TYPE_LOG_LEVEL, "info",
		0, 0, CONF(log_level), 0, true},
	{SEC_MONITOR, "window", "monitor_window", TYPE_UINT, "1000",
		0, 1000000, CONF(monitor_window), 0, true},
	{SEC_MONITOR, "drift_alpha", "drift_alpha", TYPE_ALPHA, "0.001",
		0, 0, CONF(drift_alpha), CONF(has_drift_alpha), true},
	{SEC_MONITOR, "ui", "ui", TYPE_BOOL, "false",
		0, 0, CONF(ui), 0, true},
	{SEC_COMPOSE, "models", "models", TYPE_MODELS, NULL,
		0, 0, COMPOSE(models), 0, true},
	{SEC_COMPOSE, "weights", "weights", TYPE_WEIGHTS, NULL,
		0, 0, COMPOSE(weights), 0, true},
	{SEC_COMPOSE, "alpha", "alpha", TYPE_ALPHA, NULL,
		0, 0, COMPOSE(alpha), COMPOSE(has_alpha), true},
};

#undef CONF
#undef COMPOSE

#define N_DIRECTIVES (sizeof(directives) / sizeof(directives[0]))

#define COMPOSE_NAME_MAX 64
#define MODEL_NAME_MAX 255
#define NAME_CHARS "[A-Za-z0-9_.-]"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static const struct directive *find_directive(enum sec sec, const char *key)
{
	for (size_t i = 0; i < N_DIRECTIVES; i++) {
		if (directives[i].sec == sec && strcmp(directives[i].key, key) == 0) {
			return &directives[i];
		}
	}
	return NULL;
}

/* ---- value parsers ------------------------------------------------------ */

/* Plain decimal digits only: no sign, space, or base prefix. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (*s == '\0') {
		return false;
	}
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9') {
			return false;
		}
		unsigned digit = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - digit) / 10) {
			return false;
		}
		v = v * 10 + digit;
	}
	*out = v;
	return true;
}

/*
 * A finite number from s up to *end (strtod's syntax, so the daemon must
 * keep the "C" numeric locale). Leading white space is the caller's to trim.
 */
static bool parse_number(const char *s, double *out, const char **end)
{
	if (*s == '\0' || isspace((unsigned char)*s)) {
		return false;
	}
	char *e;
	double v = strtod(s, &e);
	if (e == s || !isfinite(v)) {
		return false;
	}
	*out = v;
	*end = e;
	return true;
}

static bool parse_alpha(const char *s, double *out)
{
	const char *end;
	double v;
	if (!parse_number(s, &v, &end) || *end != '\0' || !(v > 0.0 && v < 1.0)) {
		return false;
	}
	*out = v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool is_name_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '.' || ch == '-';
}

static bool valid_name(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!is_name_char(s[i])) {
			return false;
		}
	}
	return true;
}

/* An RFC 1123 host name: dot-separated labels of 1..63 [A-Za-z0-9-]. */
static bool valid_hostname(const char *s, size_t len)
{
	if (len == 0 || len > 253) {
		return false;
	}
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-') {
				return false;
			}
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-') {
			return false;
		}
		if (label == 0 && s[i] == '-') {
			return false;
		}
		label++;
	}
	return true;
}

static bool valid_host(const char *s, size_t len, bool ipv6)
{
	char tmp[INET6_ADDRSTRLEN];
	unsigned char addr[16];
	size_t digits = 0;
	while (digits < len && (isdigit((unsigned char)s[digits]) ||
			s[digits] == '.')) {
		digits++;
	}
	/* All digits and dots: an IPv4 address, or nothing ("1.2.3"). */
	if (ipv6 || (len > 0 && digits == len)) {
		if (len == 0 || len >= sizeof(tmp)) {
			return false;
		}
		memcpy(tmp, s, len);
		tmp[len] = '\0';
		return inet_pton(ipv6 ? AF_INET6 : AF_INET, tmp, addr) == 1;
	}
	return valid_hostname(s, len);
}

#define LISTEN_EXPECTED "expected HOST:PORT"

/*
 * NULL when s is HOST:PORT (HOST an IPv4 address, a host name or [IPv6];
 * PORT 0..65535), else the reason. *host (without brackets) and *host_len
 * point into s.
 */
static const char *check_listen(const char *s, const char **host,
		size_t *host_len, unsigned *port)
{
	const char *h, *colon;
	size_t hl;
	bool ipv6 = s[0] == '[';
	if (ipv6) {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':') {
			return LISTEN_EXPECTED;
		}
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s) {
			return LISTEN_EXPECTED;
		}
		h = s;
		hl = (size_t)(colon - s);
		if (memchr(h, ':', hl) != NULL) {
			return LISTEN_EXPECTED " with an IPv6 HOST in [brackets]";
		}
	}
	if (!valid_host(h, hl, ipv6)) {
		return LISTEN_EXPECTED " with HOST an IPv4 address, a host name "
				"or [IPv6]";
	}
	uint64_t p;
	if (colon[1] == '\0') {
		return LISTEN_EXPECTED;
	}
	if (strlen(colon + 1) > 5 || !parse_u64(colon + 1, &p) || p > 65535) {
		return LISTEN_EXPECTED " with PORT in 0..65535";
	}
	*host = h;
	*host_len = hl;
	*port = (unsigned)p;
	return NULL;
}

bool ebm_conf_parse_listen(const char *s, char **host, unsigned *port)
{
	const char *h;
	size_t hl;
	unsigned p;
	if (s == NULL || check_listen(s, &h, &hl, &p) != NULL) {
		return false;
	}
	if (host != NULL) {
		*host = ebm_xmalloc(hl + 1);
		memcpy(*host, h, hl);
		(*host)[hl] = '\0';
	}
	if (port != NULL) {
		*port = p;
	}
	return true;
}

/* Calls fn on each comma-separated item of s, trimmed; false stops. */
static bool each_item(const char *s, bool (*fn)(const char *item, size_t len,
		void *user), void *user)
{
	for (;;) {
		const char *comma = strchr(s, ',');
		const char *end = comma != NULL ? comma : s + strlen(s);
		const char *b = s;
		while (b < end && isspace((unsigned char)*b)) {
			b++;
		}
		const char *e = end;
		while (e > b && isspace((unsigned char)e[-1])) {
			e--;
		}
		if (!fn(b, (size_t)(e - b), user)) {
			return false;
		}
		if (comma == NULL) {
			return true;
		}
		s = comma + 1;
	}
}

static size_t count_items(const char *s)
{
	size_t n = 1;
	for (; *s != '\0'; s++) {
		n += *s == ',';
	}
	return n;
}

struct list {
	size_t n;
	char **names;
	double *weights;
	char *why;
	size_t why_size;
};

static bool add_name(const char *item, size_t len, void *user)
{
	struct list *l = user;
	if (!valid_name(item, len, MODEL_NAME_MAX)) {
		snprintf(l->why, l->why_size, "expected comma-separated model names "
				"of 1..%d characters " NAME_CHARS, MODEL_NAME_MAX);
		return false;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (strlen(l->names[i]) == len && memcmp(l->names[i], item, len) == 0) {
			snprintf(l->why, l->why_size, "model '%s' is listed twice",
					l->names[i]);
			return false;
		}
	}
	l->names[l->n] = ebm_xmalloc(len + 1);
	memcpy(l->names[l->n], item, len);
	l->names[l->n][len] = '\0';
	l->n++;
	return true;
}

static bool add_weight(const char *item, size_t len, void *user)
{
	struct list *l = user;
	double v;
	const char *end;
	if (len == 0 || !parse_number(item, &v, &end) || end != item + len ||
			!(v > 0.0)) {
		snprintf(l->why, l->why_size, "expected comma-separated numbers > 0");
		return false;
	}
	l->weights[l->n++] = v;
	return true;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; names != NULL && i < n; i++) {
		free(names[i]);
	}
	free(names);
}

/* Parses a models or weights list into l (l->names or l->weights owned). */
static bool parse_list(const char *s, bool names, struct list *l)
{
	size_t n = count_items(s);
	if (n > EBM_PRODUCT_MAX_MODELS) {
		snprintf(l->why, l->why_size, "expected at most %u %s",
				EBM_PRODUCT_MAX_MODELS, names ? "models" : "weights");
		return false;
	}
	l->n = 0;
	if (names) {
		l->names = ebm_xcalloc(n, sizeof(*l->names));
		if (!each_item(s, add_name, l)) {
			free_names(l->names, l->n);
			l->names = NULL;
			return false;
		}
	} else {
		l->weights = ebm_xcalloc(n, sizeof(*l->weights));
		if (!each_item(s, add_weight, l)) {
			free(l->weights);
			l->weights = NULL;
			return false;
		}
	}
	return true;
}

/*
 * Sets d's field in base (struct ebm_conf, or struct ebm_conf_compose for
 * its alpha) from value. On failure base is unchanged and why holds the
 * reason. The list types are handled by set_compose().
 */
static bool apply(const struct directive *d, void *base, const char *value,
		char *why, size_t why_size)
{
	char *field = (char *)base + d->offset;
	uint64_t u;
	switch (d->type) {
	case TYPE_STRING:
		if (value[0] == '\0') {
			snprintf(why, why_size, "expected a non-empty value");
			return false;
		}
		free(*(char **)field);
		*(char **)field = ebm_xstrdup(value);
		return true;
	case TYPE_LISTEN: {
		const char *h;
		size_t hl;
		unsigned port;
		const char *reason = check_listen(value, &h, &hl, &port);
		if (reason != NULL) {
			snprintf(why, why_size, "%s", reason);
			return false;
		}
		free(*(char **)field);
		*(char **)field = ebm_xstrdup(value);
		return true;
	}
	case TYPE_UINT:
	case TYPE_UINT64:
		if (!parse_u64(value, &u) || u < d->min || u > d->max) {
			snprintf(why, why_size, "expected an integer in %llu..%llu",
					(unsigned long long)d->min, (unsigned long long)d->max);
			return false;
		}
		if (d->type == TYPE_UINT) {
			*(unsigned *)field = (unsigned)u;
		} else {
			*(uint64_t *)field = u;
		}
		return true;
	case TYPE_BOOL:
		if (!parse_bool(value, (bool *)field)) {
			snprintf(why, why_size, "expected true/false, yes/no, on/off or 1/0");
			return false;
		}
		return true;
	case TYPE_ALPHA:
		if (!parse_alpha(value, (double *)field)) {
			snprintf(why, why_size, "expected a number strictly between 0 and 1");
			return false;
		}
		*(bool *)((char *)base + d->has_offset) = true;
		return true;
	case TYPE_LOG_LEVEL:
		for (size_t i = 0; i < 4; i++) {
			if (strcasecmp(value, level_names[i]) == 0) {
				*(enum ebm_conf_log_level *)field = (enum ebm_conf_log_level)i;
				return true;
			}
		}
		snprintf(why, why_size, "expected error, warn, info or debug");
		return false;
	case TYPE_MODELS:
	case TYPE_WEIGHTS:
		break;
	}
	snprintf(why, why_size, "not settable here");
	return false;
}

/* ---- defaults and lifetime ---------------------------------------------- */

void ebm_conf_init_defaults(struct ebm_conf *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < N_DIRECTIVES; i++) {
		const struct directive *d = &directives[i];
		if (d->sec != SEC_COMPOSE && d->def != NULL) {
			char why[160];
			bool ok = apply(d, c, d->def, why, sizeof(why));
			assert(ok && "a default in the directive table is invalid");
			(void)ok;
		}
	}
	c->origin = ebm_xstrdup("<defaults>");
}

static void compose_finish(struct ebm_conf_compose *k)
{
	free(k->name);
	free_names(k->models, k->n_models);
	free(k->weights);
}

void ebm_conf_finish(struct ebm_conf *c)
{
	if (c == NULL) {
		return;
	}
	free(c->listen);
	free(c->auth_token_file);
	free(c->models_dir);
	for (size_t i = 0; i < c->n_compose; i++) {
		compose_finish(&c->compose[i]);
	}
	free(c->compose);
	free(c->origin);
	memset(c, 0, sizeof(*c));
}

const struct ebm_conf_compose *ebm_conf_find_compose(const struct ebm_conf *c,
		const char *name)
{
	for (size_t i = 0; i < c->n_compose; i++) {
		if (strcmp(c->compose[i].name, name) == 0) {
			return &c->compose[i];
		}
	}
	return NULL;
}

bool ebm_conf_reloadable(const char *section, const char *key)
{
	enum sec sec = SEC_NONE;
	if (strncmp(section, "compose.", 8) == 0) {
		sec = SEC_COMPOSE;
	}
	for (int s = SEC_SERVER; s < SEC_COMPOSE; s++) {
		if (strcmp(section, sec_names[s]) == 0) {
			sec = (enum sec)s;
		}
	}
	const struct directive *d = sec != SEC_NONE ? find_directive(sec, key) : NULL;
	return d != NULL && d->reloadable;
}

/* ---- parsing ------------------------------------------------------------- */

/* The state of one parse: what ini.c has delivered so far. */
struct parse {
	struct ebm_conf *c;
	const char *origin;
	unsigned line;              /* current line */
	enum sec sec;
	unsigned sec_line[SEC_COUNT];
	unsigned seen[N_DIRECTIVES]; /* line of each key in this section */
	size_t n_weights;           /* weights in the current compose, or 0 */
	bool failed;
	struct ebm_error err;
};

__attribute__((format(printf, 3, 4)))
static void fail_at(struct parse *p, unsigned line, const char *fmt, ...)
{
	char msg[sizeof(p->err.message)];
	va_list ap;
	if (p->failed) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ebm_error_set(&p->err, EBM_STATUS_FORMAT, "%s:%u: %s", p->origin, line, msg);
	p->err.line = line;
	p->failed = true;
}

#define FAIL(p, ...) fail_at((p), (p)->line, __VA_ARGS__)

static struct ebm_conf_compose *current_compose(struct parse *p)
{
	return &p->c->compose[p->c->n_compose - 1];
}

/* "server", or "compose.NAME" in buf. */
static const char *section_label(struct parse *p, char *buf, size_t size)
{
	if (p->sec != SEC_COMPOSE) {
		return sec_names[p->sec];
	}
	snprintf(buf, size, "compose.%s", current_compose(p)->name);
	return buf;
}

/* Checks the section being left. */
static void end_section(struct parse *p)
{
	if (p->sec == SEC_COMPOSE && current_compose(p)->n_models == 0) {
		fail_at(p, current_compose(p)->line,
				"[compose.%s] missing key 'models'", current_compose(p)->name);
	}
}

static bool begin_compose(struct parse *p, const char *name)
{
	struct ebm_conf *c = p->c;
	if (!valid_name(name, strlen(name), COMPOSE_NAME_MAX)) {
		FAIL(p, "compose name: expected 1..%d characters " NAME_CHARS
				", got '%s'", COMPOSE_NAME_MAX, name);
		return false;
	}
	const struct ebm_conf_compose *old = ebm_conf_find_compose(c, name);
	if (old != NULL) {
		FAIL(p, "duplicate section [compose.%s] (first on line %u)", name,
				old->line);
		return false;
	}
	c->compose = ebm_xrealloc(c->compose, (c->n_compose + 1) *
			sizeof(*c->compose));
	struct ebm_conf_compose *k = &c->compose[c->n_compose++];
	memset(k, 0, sizeof(*k));
	k->name = ebm_xstrdup(name);
	k->line = p->line;
	p->n_weights = 0;
	return true;
}

/* models, weights or alpha of the current [compose.NAME]. */
static bool set_compose(struct parse *p, const struct directive *d,
		const char *value, char *why, size_t why_size)
{
	struct ebm_conf_compose *k = current_compose(p);
	struct list l = {.why = why, .why_size = why_size};
	switch (d->type) {
	case TYPE_MODELS:
		if (!parse_list(value, true, &l)) {
			return false;
		}
		if (p->n_weights != 0 && l.n != p->n_weights) {
			free_names(l.names, l.n);
			snprintf(why, why_size, "expected %zu models, one per weight",
					p->n_weights);
			return false;
		}
		k->models = l.names;
		k->n_models = l.n;
		if (k->weights == NULL) {
			k->weights = ebm_xcalloc(l.n, sizeof(*k->weights));
			for (size_t i = 0; i < l.n; i++) {
				k->weights[i] = 1.0;
			}
		}
		return true;
	case TYPE_WEIGHTS:
		if (!parse_list(value, false, &l)) {
			return false;
		}
		if (k->n_models != 0 && l.n != k->n_models) {
			free(l.weights);
			snprintf(why, why_size, "expected %zu weights, one per model",
					k->n_models);
			return false;
		}
		free(k->weights);
		k->weights = l.weights;
		p->n_weights = l.n;
		return true;
	default:
		return apply(d, k, value, why, why_size);
	}
}

/* "[name]" (ini.c): ends the section before and begins this one. */
static bool on_section(void *user, unsigned line, const char *name)
{
	struct parse *p = user;
	p->line = line;
	end_section(p);
	if (p->failed) {
		return false;
	}
	for (size_t i = 0; i < N_DIRECTIVES; i++) {
		if (directives[i].sec == SEC_COMPOSE) {
			p->seen[i] = 0;
		}
	}
	if (strncmp(name, "compose.", 8) == 0) {
		if (!begin_compose(p, name + 8)) {
			return false;
		}
		p->sec = SEC_COMPOSE;
		return true;
	}
	for (int s = SEC_SERVER; s < SEC_COMPOSE; s++) {
		if (strcmp(name, sec_names[s]) == 0) {
			if (p->sec_line[s] != 0) {
				FAIL(p, "duplicate section [%s] (first on line %u)", name,
						p->sec_line[s]);
				return false;
			}
			p->sec = (enum sec)s;
			p->sec_line[s] = p->line;
			return true;
		}
	}
	FAIL(p, "unknown section [%s]", name);
	return false;
}

/* "key = value" (ini.c): the directive of this section, checked and
 * applied. */
static bool on_pair(void *user, unsigned line, const char *key,
		const char *value)
{
	struct parse *p = user;
	char label[96];
	char why[160];
	p->line = line;
	if (p->sec == SEC_NONE) {
		FAIL(p, "key '%s' outside any section", key);
		return false;
	}
	const char *sec = section_label(p, label, sizeof(label));
	const struct directive *d = find_directive(p->sec, key);
	if (d == NULL) {
		FAIL(p, "[%s] unknown key '%s'", sec, key);
		return false;
	}
	size_t i = (size_t)(d - directives);
	if (p->seen[i] != 0) {
		FAIL(p, "[%s] %s: duplicate key (first on line %u)", sec, key,
				p->seen[i]);
		return false;
	}
	p->seen[i] = p->line;
	bool ok = p->sec == SEC_COMPOSE
			? set_compose(p, d, value, why, sizeof(why))
			: apply(d, p->c, value, why, sizeof(why));
	if (!ok) {
		FAIL(p, "[%s] %s: %s, got '%s'", sec, key, why, value);
		return false;
	}
	return true;
}

/* A malformed line (ini.c). */
static void on_error(void *user, unsigned line, const char *message)
{
	struct parse *p = user;
	fail_at(p, line, "%s", message);
}

enum ebm_status ebm_conf_parse_string(const char *text, const char *origin,
		struct ebm_conf *c, struct ebm_error *err)
{
	static const struct ebm_ini_handler handler = {
		.section = on_section,
		.pair = on_pair,
		.error = on_error,
	};
	struct parse p;
	memset(&p, 0, sizeof(p));
	p.c = c;
	p.origin = origin != NULL ? origin : "<string>";
	ebm_conf_init_defaults(c);
	/* ini.c cuts the lines up in place. */
	char *copy = ebm_xstrdup(text != NULL ? text : "");
	if (ebm_ini_parse(copy, &handler, &p) && !p.failed) {
		end_section(&p);
	}
	free(copy);
	if (p.failed) {
		ebm_conf_finish(c);
		if (err != NULL) {
			*err = p.err;
		}
		return p.err.code;
	}
	free(c->origin);
	c->origin = ebm_xstrdup(p.origin);
	return EBM_STATUS_OK;
}

#undef FAIL

/* ---- command-line overrides --------------------------------------------- */

static const struct directive *find_by_name(const char *name)
{
	for (size_t i = 0; i < N_DIRECTIVES; i++) {
		const struct directive *d = &directives[i];
		size_t sl = strlen(sec_names[d->sec]);
		if (d->sec == SEC_COMPOSE) {
			continue;
		}
		if (strcmp(name, d->name) == 0 ||
				(strncmp(name, sec_names[d->sec], sl) == 0 && name[sl] == '.' &&
				strcmp(name + sl + 1, d->key) == 0)) {
			return d;
		}
	}
	return NULL;
}

enum ebm_status ebm_conf_set(struct ebm_conf *c, const char *key,
		const char *value, const char *flag, struct ebm_error *err)
{
	const struct directive *d = find_by_name(key);
	char why[160];
	if (d == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"%s: unknown configuration key '%s'", flag != NULL ? flag : key,
				key);
	}
	if (value == NULL) {
		value = "";
	}
	if (apply(d, c, value, why, sizeof(why))) {
		return EBM_STATUS_OK;
	}
	if (flag != NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"%s: %s, got '%s'", flag, why, value);
	}
	return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
			"[%s] %s: %s, got '%s'", sec_names[d->sec], d->key, why, value);
}

/* ---- formatting ------------------------------------------------------------ */

struct buf {
	char *s;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3)))
static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		assert(n >= 0);
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)n;
		b->s = ebm_xrealloc(b->s, b->cap);
	}
}

/* The shortest %g text that reads back as exactly v. */
static void put_double(struct buf *b, double v)
{
	char tmp[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v) {
			break;
		}
	}
	put(b, "%s", tmp);
}

static void put_directive(struct buf *b, const struct directive *d,
		const void *base)
{
	const char *field = (const char *)base + d->offset;
	switch (d->type) {
	case TYPE_STRING:
	case TYPE_LISTEN:
		if (*(char *const *)field == NULL) {
			put(b, "# %s = (not set)\n", d->key);
		} else {
			/* " ;" starts a comment (ini.h): a value that
			 * begins with ';' (legal as "key =;x") goes out unspaced. */
			const char *v = *(char *const *)field;
			put(b, v[0] == ';' ? "%s =%s\n" : "%s = %s\n", d->key, v);
		}
		return;
	case TYPE_UINT:
		put(b, "%s = %u\n", d->key, *(const unsigned *)field);
		return;
	case TYPE_UINT64:
		put(b, "%s = %llu\n", d->key,
				(unsigned long long)*(const uint64_t *)field);
		return;
	case TYPE_BOOL:
		put(b, "%s = %s\n", d->key, *(const bool *)field ? "true" : "false");
		return;
	case TYPE_ALPHA:
		if (!*(const bool *)((const char *)base + d->has_offset)) {
			put(b, "# %s = (not set)\n", d->key);
			return;
		}
		put(b, "%s = ", d->key);
		put_double(b, *(const double *)field);
		put(b, "\n");
		return;
	case TYPE_LOG_LEVEL:
		put(b, "%s = %s\n", d->key,
				level_names[*(const enum ebm_conf_log_level *)field]);
		return;
	case TYPE_MODELS:
	case TYPE_WEIGHTS: {
		const struct ebm_conf_compose *k = base;
		put(b, "%s = ", d->key);
		for (size_t i = 0; i < k->n_models; i++) {
			if (d->type == TYPE_MODELS) {
				put(b, "%s%s", i > 0 ? "," : "", k->models[i]);
			} else {
				put(b, "%s", i > 0 ? "," : "");
				put_double(b, k->weights[i]);
			}
		}
		put(b, "\n");
		return;
	}
	}
}

char *ebm_conf_format(const struct ebm_conf *c)
{
	struct buf b = {ebm_xmalloc(1024), 0, 1024};
	enum sec sec = SEC_NONE;
	for (size_t i = 0; i < N_DIRECTIVES; i++) {
		const struct directive *d = &directives[i];
		if (d->sec == SEC_COMPOSE) {
			continue;
		}
		if (d->sec != sec) {
			put(&b, "%s[%s]\n", sec != SEC_NONE ? "\n" : "", sec_names[d->sec]);
			sec = d->sec;
		}
		put_directive(&b, d, c);
	}
	for (size_t k = 0; k < c->n_compose; k++) {
		put(&b, "\n[compose.%s]\n", c->compose[k].name);
		for (size_t i = 0; i < N_DIRECTIVES; i++) {
			if (directives[i].sec == SEC_COMPOSE) {
				put_directive(&b, &directives[i], &c->compose[k]);
			}
		}
	}
	return b.s;
}
