/*
 * conf.h — ebmd's configuration: the INI file of API.md section 3, parsed
 * (ini.c) against a directive table (section, key, type, default,
 * bounds, target field, reloadable). Parsing takes a string so tests need
 * no files; ebm_conf_load_file() is the thin wrapper that reads a file.
 *
 * Errors name the file, the line and the key:
 *   "ebmd.conf:12: [server] max_rows: expected an integer in 1..1000000, got 'lots'"
 *   "ebmd.conf:3: unknown section [sever]"
 *   "ebmd.conf:7: [models] unknown key 'aplha'"
 *
 * Syntax (ini.h has it exactly): comments start a line with '#' or ';'; a
 * ';' after white space starts an inline comment ('#' does not). Keys and
 * values are trimmed; "key: value" also works. Lines may end in CRLF and
 * have no length limit (the file has: 1 MiB). Each section and each key
 * may appear once. Sizes are plain
 * integers in bytes, times plain integers in milliseconds.
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
	/* [monitor] */
	unsigned monitor_window;    /* default 1000; 0 (off) .. 1000000 */
	bool has_drift_alpha;       /* always true once parsed (a default) */
	double drift_alpha;         /* default 0.001; (0, 1) */
	bool ui;                    /* default false */
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
 * Parses INI text over the defaults into c (initialized by this call; free
 * it with ebm_conf_finish). origin names the text in messages ("<string>"
 * when NULL) and is copied into c->origin. On failure, EBM_STATUS_FORMAT:
 * c is left finished (nothing to free) and err->message is
 * "origin:line: ..." for the first error, with err->line set. The messages:
 *   unknown section [NAME]
 *   duplicate section [NAME] (first on line N)
 *   compose name: expected 1..64 characters [A-Za-z0-9_.-], got 'NAME'
 *   expected ']' to end the section header, got 'TEXT'
 *   expected 'key = value', got 'TEXT'
 *   key 'KEY' outside any section
 *   [SECTION] unknown key 'KEY'
 *   [SECTION] KEY: duplicate key (first on line N)
 *   [SECTION] KEY: REASON, got 'VALUE'
 *   [compose.NAME] missing key 'models'    (line of the section header)
 * Thread-safe for distinct c.
 */
enum ebm_status ebm_conf_parse_string(const char *text, const char *origin,
		struct ebm_conf *c, struct ebm_error *err);

/*
 * Reads path (a regular file of at most 1 MiB) and parses it with the path
 * as origin. c is always initialized: on failure it is left finished.
 * Errors: EBM_STATUS_IO "cannot read 'PATH': strerror" (or ": not a
 * regular file"), EBM_STATUS_LIMIT "configuration file 'PATH' is larger
 * than 1048576 bytes", EBM_STATUS_FORMAT "PATH:N: unexpected NUL byte" and
 * everything ebm_conf_parse_string reports.
 */
enum ebm_status ebm_conf_load_file(const char *path, struct ebm_conf *c,
		struct ebm_error *err);

/*
 * Applies a command-line override with the same validation as the file.
 * key is a field name of struct ebm_conf for a file key ("listen",
 * "models_dir", "log_level", ...) or "section.key" ("models.dir"); compose
 * keys cannot be set. value is copied. On failure c is unchanged and the
 * status is EBM_STATUS_INVALID_ARGUMENT with the message naming the flag
 * ("--listen: expected HOST:PORT, got 'x'"), or "[server] listen: ..." when
 * flag is NULL; an unknown key gives "FLAG: unknown configuration key 'KEY'".
 */
enum ebm_status ebm_conf_set(struct ebm_conf *c, const char *key,
		const char *value, const char *flag, struct ebm_error *err);

/* Looks up a compose section by name, or NULL. */
const struct ebm_conf_compose *ebm_conf_find_compose(const struct ebm_conf *c,
		const char *name);

/*
 * True when a key may change on SIGHUP; launch-only keys (listen, threads,
 * max_body_bytes, request_timeout_ms, max_connections, max_header_bytes,
 * idle_timeout_ms: the HTTP server is built with them) keep their old
 * values on reload, with a log line from the daemon.
 */
bool ebm_conf_reloadable(const char *section, const char *key);

/*
 * Writes the effective configuration as INI text (malloc'ed; free() it),
 * for --check-config output and logs: every key, unset ones as comments,
 * then the compose sections. ebm_conf_parse_string() reads it back to an
 * equal struct (the origin aside), unless a path set with ebm_conf_set()
 * holds a newline or " ;".
 */
char *ebm_conf_format(const struct ebm_conf *c);

/*
 * Checks "HOST:PORT": HOST is an IPv4 dotted quad, a host name (RFC 1123
 * labels, "localhost" included) or an IPv6 address in brackets ("[::1]");
 * PORT is 0..65535 (0: any free port). On success, when not NULL, *host
 * gets HOST without brackets (malloc'ed; free() it) and *port the port.
 * Returns false, touching neither, when s is not of this form.
 */
bool ebm_conf_parse_listen(const char *s, char **host, unsigned *port);

/*
 * Reads the auth token: the first line of path with surrounding white
 * space removed. On success *token is malloc'ed (free() it) and, when
 * mode is not NULL, *mode gets the file's permission bits (st_mode & 07777;
 * the daemon warns when mode & 077, i.e. group or others have any access).
 * On failure *token is NULL: EBM_STATUS_IO
 * "cannot read 'PATH': strerror" (or ": not a regular file"),
 * EBM_STATUS_LIMIT "token file 'PATH' is larger than 4096 bytes",
 * EBM_STATUS_FORMAT "token file 'PATH': the first line is empty" or
 * "token file 'PATH': the token contains a control character".
 */
enum ebm_status ebm_conf_read_token(const char *path, char **token,
		unsigned *mode, struct ebm_error *err);

#endif
