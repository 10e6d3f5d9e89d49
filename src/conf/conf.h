/*
 * conf.h — ebmd's configuration: the INI file of API.md section 3, parsed
 * with inih against a directive table (section, key, type, default,
 * bounds, target field, reloadable). Parsing takes a string so tests need
 * no files; ebm_conf_load_file() is the thin wrapper that reads a file.
 *
 * Errors name the file, the line and the key:
 *   "ebmd.conf:12: [server] max_rows: expected an integer in 1..1000000, got 'lots'"
 *   "ebmd.conf:3: unknown section [sever]"
 *   "ebmd.conf:7: [models] unknown key 'aplha'"
 */
#ifndef EBM_CONF_CONF_H
#define EBM_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebm/ebm.h"
#include "ebm/product.h"

enum ebm_conf_log_level {
	EBM_CONF_LOG_ERROR = 0,
	EBM_CONF_LOG_WARN,
	EBM_CONF_LOG_INFO,
	EBM_CONF_LOG_DEBUG,
};

/* A [compose.NAME] section. */
struct ebm_conf_compose {
	char *name;                 /* NAME: 1..64 of [A-Za-z0-9_.-] */
	size_t n_models;            /* 1 .. EBM_PRODUCT_MAX_MODELS */
	char **models;              /* model names (file stems) */
	double *weights;            /* n_models, each > 0; all 1 if not given */
	bool has_alpha;
	double alpha;               /* (0, 1) when has_alpha */
	unsigned line;              /* line of the section header */
};

struct ebm_conf {
	/* [server] */
	char *listen;               /* "HOST:PORT", default "127.0.0.1:8080" */
	unsigned threads;           /* 0 in the file means "number of CPUs"; the
	                             * daemon resolves it; 1..256 otherwise */
	uint64_t max_body_bytes;    /* default 8 MiB; 1 KiB .. 1 GiB */
	unsigned max_rows;          /* default 10000; 1 .. 1000000 */
	unsigned request_timeout_ms;/* default 5000; 1 .. 3600000 */
	char *auth_token_file;      /* NULL: no auth */
	unsigned max_connections;   /* default 1024; 1 .. 100000 */
	unsigned max_header_bytes;  /* default 16384; 1 KiB .. 1 MiB */
	unsigned idle_timeout_ms;   /* default 30000; keep-alive idle */
	/* [models] */
	char *models_dir;           /* default "models" */
	bool has_alpha;
	double alpha;               /* (0, 1) when has_alpha */
	bool watch;                 /* default false */
	/* [log] */
	enum ebm_conf_log_level log_level; /* default info */
	/* [compose.NAME] sections, in file order */
	size_t n_compose;
	struct ebm_conf_compose *compose;
	/* where it came from ("<defaults>" when no file) */
	char *origin;
};

/* Fills c with the built-in defaults (owns its strings). */
void ebm_conf_init_defaults(struct ebm_conf *c);
/* Frees everything c owns; c may be reused with init_defaults. */
void ebm_conf_finish(struct ebm_conf *c);

/*
 * Parses INI text over the defaults into c (initialized by this call).
 * origin names the text in messages. On failure c is left finished (nothing
 * to free) and err->message is "origin:line: ..." with err->line set.
 */
enum ebm_status ebm_conf_parse_string(const char *text, const char *origin,
		struct ebm_conf *c, struct ebm_error *err);

/* Reads path (at most 1 MiB) and parses it. IO errors name the path. */
enum ebm_status ebm_conf_load_file(const char *path, struct ebm_conf *c,
		struct ebm_error *err);

/*
 * Applies a command-line override ("listen", "models_dir") with the same
 * validation as the file; the message names the flag instead of a line.
 */
enum ebm_status ebm_conf_set(struct ebm_conf *c, const char *key,
		const char *value, const char *flag, struct ebm_error *err);

/* Looks up a compose section by name, or NULL. */
const struct ebm_conf_compose *ebm_conf_find_compose(const struct ebm_conf *c,
		const char *name);

/*
 * True when a key may change on SIGHUP; launch-only keys (listen, threads)
 * keep their old values on reload, with a log line from the daemon.
 */
bool ebm_conf_reloadable(const char *section, const char *key);

/* Writes the effective configuration as INI text (malloc'ed), for
 * --check-config output and logs. */
char *ebm_conf_format(const struct ebm_conf *c);

#endif
