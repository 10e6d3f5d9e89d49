/*
 * ebm.h — the common part of libebm's public API: version, status codes,
 * the error record every public function fills, and the log hook.
 *
 * libebm never prints. Anything worth telling a human goes through the log
 * hook installed with ebm_log_set(); errors come back as an enum ebm_status
 * plus an optional struct ebm_error filled by the callee.
 */
#ifndef EBM_EBM_H
#define EBM_EBM_H

#include <stddef.h>
#include <stdint.h>

#define EBM_VERSION_STRING "0.1.0"

enum ebm_status {
	EBM_STATUS_OK = 0,
	EBM_STATUS_INVALID_ARGUMENT, /* a caller-supplied value is out of range */
	EBM_STATUS_IO,               /* open/read/write/rename failed (errno kept) */
	EBM_STATUS_FORMAT,           /* malformed model file or CSV */
	EBM_STATUS_NOMEM,            /* an input-sized allocation failed */
	EBM_STATUS_LIMIT,            /* an input exceeds a documented limit */
	EBM_STATUS_NUMERIC,          /* a non-finite number where one is needed */
	EBM_STATUS_DIVERGED,         /* training produced non-finite loss/weights */
	EBM_STATUS_CANCELLED,        /* a progress callback asked to stop */
	EBM_STATUS_MISMATCH,         /* shapes/features of two objects disagree */
};

/*
 * Filled by the callee on failure (when the pointer is not NULL). `message`
 * is complete and human-readable on its own ("thyroid.csv:12:3: expected a
 * number, got 'abc'"); the other fields repeat its location for programs.
 * `line`/`column` are 1-based and 0 when not applicable; `offset` is a byte
 * offset into a file or buffer, or UINT64_MAX when not applicable.
 */
struct ebm_error {
	enum ebm_status code;
	int sys_errno;      /* errno saved at the failing call, or 0 */
	uint64_t line;
	uint64_t column;
	uint64_t offset;
	char message[512];
};

/* Static English name of a status ("ok", "format", ...). Never NULL. */
const char *ebm_status_string(enum ebm_status status);

/* Clears *err to "no error" (code OK, empty message). NULL is ignored. */
void ebm_error_clear(struct ebm_error *err);

enum ebm_log_level {
	EBM_LOG_ERROR = 0,
	EBM_LOG_WARN,
	EBM_LOG_INFO,
	EBM_LOG_DEBUG,
};

/*
 * Receives one complete message (no trailing newline). Called from whatever
 * thread produced the message; the callee must be thread-safe.
 */
typedef void (*ebm_log_fn)(enum ebm_log_level level, const char *message,
		void *user);

/*
 * Installs the log hook; NULL restores the default (discard everything).
 * Messages above max_level are dropped before they are formatted.
 * Not thread-safe with respect to concurrent logging: call it at start-up.
 */
void ebm_log_set(ebm_log_fn fn, void *user, enum ebm_log_level max_level);

/*
 * Sets how many threads the BLAS library may use inside one product
 * (OpenBLAS's own pool); n < 1 counts as 1. A program with its own worker
 * threads (ebmd) wants 1, so each product stays on the thread that asked
 * for it. Call once at start-up, before any scoring. Does nothing in a
 * build without BLAS.
 */
void ebm_set_blas_threads(int n);

#endif
