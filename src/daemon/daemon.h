/*
 * daemon.h — internal header of ebmd's daemon module: logging to stderr
 * (log.c), systemd notifications (notify.c), and the registry that turns
 * a models directory plus the configuration into catalogs (registry.c).
 * main.c holds the command line and the lifecycle (signals, reload,
 * graceful stop) on the main thread's event loop.
 *
 * Everything here runs on the main thread, except the log hook, which any
 * thread may call.
 */
#ifndef EBM_DAEMON_DAEMON_H
#define EBM_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#include "conf/conf.h"
#include "ebm/ebm.h"
#include "http/http.h"

#define EBMD_PROG "ebmd"

/* ---- log.c -------------------------------------------------------------- */

/*
 * Installs the libebm log hook (used by every module through the util
 * macros): one line per message on stderr, prefixed with the syslog
 * priority ("<3>") when stderr is the journal (JOURNAL_STREAM matches),
 * else with a UTC timestamp and the level. Messages above `level` are
 * dropped before being formatted.
 */
void ebmd_log_init(enum ebm_log_level level);
void ebmd_log_set_level(enum ebm_log_level level);
enum ebm_log_level ebmd_log_level(enum ebm_conf_log_level level);

/* ---- notify.c ----------------------------------------------------------- */

/*
 * Sends a notification ("READY=1\nSTATUS=...") to the service manager;
 * does nothing when NOTIFY_SOCKET is unset. Through libsystemd's sd_notify
 * when built with it, else a datagram of our own (same protocol).
 */
void ebmd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval the manager expects (WATCHDOG_USEC for this
 * process), or 0 when there is none. */
uint64_t ebmd_watchdog_usec(void);

/* ---- registry.c ---------------------------------------------------------- */

struct ebmd_registry;

/*
 * metrics (may be NULL, for --check-config) counts every model-file load
 * attempt; it must outlive the registry. Aborts on OOM.
 */
struct ebmd_registry *ebmd_registry_create(struct ebm_http_metrics *metrics);
void ebmd_registry_destroy(struct ebmd_registry *r);

/*
 * Scans conf->models_dir and builds a new catalog (one reference, for the
 * caller): every "*.ebm" that is not hidden, named by its stem, plus the
 * [compose.NAME] sections. Files whose identity (device, inode, size,
 * mtime) did not change since the previous load are shared, not reread.
 * A file that fails to load is logged and counted, and its previous
 * version, if any, stays in the catalog. A directory that cannot be read
 * keeps the previous set of files. *n_errors receives how many things
 * failed (files, compositions, the directory).
 */
struct ebm_http_catalog *ebmd_registry_load(struct ebmd_registry *r,
		const struct ebm_conf *conf, const char *token, size_t *n_errors);

/*
 * The model repository of /v2 (API.md section 5). load_file: (re)loads
 * {name}.ebm from conf->models_dir now, validated as a reload is, and
 * serves it again if it was unloaded; returns the new catalog, or NULL
 * with the reason in why (the previous version keeps serving). unload:
 * the catalog without {name} until its next load or reload, or NULL when
 * {name} is not a served file.
 */
struct ebm_http_catalog *ebmd_registry_load_file(struct ebmd_registry *r,
		const struct ebm_conf *conf, const char *token, const char *name,
		char *why, size_t why_size);
struct ebm_http_catalog *ebmd_registry_unload(struct ebmd_registry *r,
		const struct ebm_conf *conf, const char *token, const char *name);
/* The JSON array of POST /v2/repository/index into out: every *.ebm of
 * the directory and every served file, with version, state and reason. */
void ebmd_registry_index(struct ebmd_registry *r, const struct ebm_conf *conf,
		struct ebm_http_buf *out);

/* ---- repository.c -------------------------------------------------------- */

struct ebmd_repository;

/*
 * Serves the model repository endpoints of `server` from the main loop
 * `base`: a worker's call is queued, run on the main thread (so it is
 * serialized with SIGHUP and the watch), and waited for. conf and token
 * are read at each call (the daemon replaces them on SIGHUP). close()
 * fails what is queued and refuses new calls (503); call it before the
 * workers are joined.
 */
struct ebmd_repository *ebmd_repository_create(struct event_base *base,
		struct ebmd_registry *registry, struct ebm_http_server *server,
		const struct ebm_conf *conf, char *const *token);
void ebmd_repository_close(struct ebmd_repository *r);
void ebmd_repository_destroy(struct ebmd_repository *r);

#endif
