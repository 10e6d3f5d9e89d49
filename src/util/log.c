/*
 * log.c — the log hook. libebm never writes to a stream itself; whoever
 * embeds it (ebmd, ebmd-train, tests) installs a function with
 * ebm_log_set() and decides where lines go.
 *
 * Every thread reads the hook and the level on each message, and ebmd
 * changes the level on SIGHUP while its workers log: all three are
 * atomics (relaxed: a message may still see the old level for a moment,
 * nothing else hangs on it). Changing the hook itself while other threads
 * log is still not supported (fn and user are two loads).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

static _Atomic(ebm_log_fn) log_fn;
static _Atomic(void *) log_user;
static atomic_int log_max = EBM_LOG_ERROR;

void ebm_log_set(ebm_log_fn fn, void *user, enum ebm_log_level max_level)
{
	atomic_store_explicit(&log_user, user, memory_order_relaxed);
	atomic_store_explicit(&log_max, (int)max_level, memory_order_relaxed);
	atomic_store_explicit(&log_fn, fn, memory_order_release);
}

void ebm_log_set_level(enum ebm_log_level max_level)
{
	atomic_store_explicit(&log_max, (int)max_level, memory_order_relaxed);
}

bool ebm_log_enabled(enum ebm_log_level level)
{
	return atomic_load_explicit(&log_fn, memory_order_relaxed) != NULL
			&& (int)level <= atomic_load_explicit(&log_max,
			memory_order_relaxed);
}

void ebm_log_write(enum ebm_log_level level, const char *file, int line,
		const char *fmt, ...)
{
	char msg[1024];
	const char *base = strrchr(file, '/');
	int n = snprintf(msg, sizeof(msg), "[%s:%d] ", base ? base + 1 : file,
			line);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		n = 0;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	ebm_log_fn fn = atomic_load_explicit(&log_fn, memory_order_acquire);
	if (fn != NULL) {
		fn(level, msg, atomic_load_explicit(&log_user,
				memory_order_relaxed));
	}
}
