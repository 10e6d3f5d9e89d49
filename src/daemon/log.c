/*
 * log.c — where every log line of ebmd goes: stderr, one line per event,
 * written with a single write(2) so that lines from different threads do
 * not interleave. Under systemd (stderr is the journal stream), each line
 * starts with its syslog priority ("<3>" ... "<7>") so journald keeps the
 * severity, and journald adds the timestamp; elsewhere the line starts
 * with a UTC timestamp and the level.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include "daemon/daemon.h"
#include "util/util.h"

static atomic_bool to_journal;

/* True when JOURNAL_STREAM names the device and inode of our stderr. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	if (js == NULL) {
		return false;
	}
	unsigned long long dev = 0;
	unsigned long long ino = 0;
	if (sscanf(js, "%llu:%llu", &dev, &ino) != 2) {
		return false;
	}
	struct stat st;
	if (fstat(STDERR_FILENO, &st) != 0) {
		return false;
	}
	return (unsigned long long)st.st_dev == dev
			&& (unsigned long long)st.st_ino == ino;
}

static void hook(enum ebm_log_level level, const char *message, void *user)
{
	(void)user;
	static const char *const names[] = { "error", "warn", "info", "debug" };
	static const int priorities[] = { 3, 4, 6, 7 };
	unsigned l = (unsigned)level <= EBM_LOG_DEBUG ? (unsigned)level : 3u;
	char line[1400];
	int n;
	if (atomic_load_explicit(&to_journal, memory_order_relaxed)) {
		n = snprintf(line, sizeof(line), "<%d>", priorities[l]);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		char stamp[32];
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s: ", stamp,
				ts.tv_nsec / 1000000, EBMD_PROG, names[l]);
	}
	if (n < 0) {
		return;
	}
	size_t len = (size_t)n;
	/* One event, one line: embedded newlines become spaces. */
	for (const char *p = message; *p != '\0' && len < sizeof(line) - 1;
			p++) {
		line[len++] = *p == '\n' || *p == '\r' ? ' ' : *p;
	}
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void ebmd_log_init(enum ebm_log_level level)
{
	atomic_store(&to_journal, stderr_is_journal());
	ebm_log_set(hook, NULL, level);
}

/* SIGHUP, while the workers log: only the level changes (an atomic). */
void ebmd_log_set_level(enum ebm_log_level level)
{
	ebm_log_set_level(level);
}

enum ebm_log_level ebmd_log_level(enum ebm_conf_log_level level)
{
	switch (level) {
	case EBM_CONF_LOG_ERROR:
		return EBM_LOG_ERROR;
	case EBM_CONF_LOG_WARN:
		return EBM_LOG_WARN;
	case EBM_CONF_LOG_DEBUG:
		return EBM_LOG_DEBUG;
	case EBM_CONF_LOG_INFO:
	default:
		return EBM_LOG_INFO;
	}
}
