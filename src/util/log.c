/*
 * log.c — the log hook. libebm never writes to a stream itself; whoever
 * embeds it (ebmd, ebmd-train, tests) installs a function with
 * ebm_log_set() and decides where lines go.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

static ebm_log_fn log_fn;
static void *log_user;
static enum ebm_log_level log_max = EBM_LOG_ERROR;

void ebm_log_set(ebm_log_fn fn, void *user, enum ebm_log_level max_level)
{
	log_fn = fn;
	log_user = user;
	log_max = max_level;
}

bool ebm_log_enabled(enum ebm_log_level level)
{
	return log_fn != NULL && level <= log_max;
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
	if (log_fn != NULL) {
		log_fn(level, msg, log_user);
	}
}
