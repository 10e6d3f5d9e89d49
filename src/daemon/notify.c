/*
 * notify.c — Type=notify support: READY, RELOADING, STOPPING, WATCHDOG and
 * STATUS messages to the service manager. With libsystemd (meson option
 * `systemd`) this is sd_notify(); without it, the same protocol by hand:
 * one datagram to the AF_UNIX socket named by NOTIFY_SOCKET ('@' for the
 * abstract namespace), as redis does. Both do nothing when NOTIFY_SOCKET
 * is unset, so ebmd runs the same outside systemd.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon/daemon.h"
#include "util/util.h"

#if EBMD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#else
#include <sys/socket.h>
#include <sys/un.h>
#endif

#if !EBMD_HAVE_SYSTEMD
static void send_datagram(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (path == NULL || path[0] == '\0') {
		return;
	}
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if (len >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
		ebm_log_warn("NOTIFY_SOCKET '%s' is not usable", path);
		return;
	}
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@') {
		addr.sun_path[0] = '\0';
	}
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ebm_log_warn("notify socket: %s", strerror(errno));
		return;
	}
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path)
			+ len);
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
			(const struct sockaddr *)&addr, alen) < 0) {
		ebm_log_warn("notify '%s': %s", path, strerror(errno));
	}
	close(fd);
}
#endif

void ebmd_notify(const char *fmt, ...)
{
	if (getenv("NOTIFY_SOCKET") == NULL) {
		return;
	}
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
#if EBMD_HAVE_SYSTEMD
	int rc = sd_notify(0, msg);
	if (rc < 0) {
		ebm_log_warn("sd_notify: %s", strerror(-rc));
	}
#else
	send_datagram(msg);
#endif
}

uint64_t ebmd_watchdog_usec(void)
{
#if EBMD_HAVE_SYSTEMD
	uint64_t usec = 0;
	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
#else
	const char *u = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	if (u == NULL) {
		return 0;
	}
	if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid()) {
		return 0;
	}
	return strtoull(u, NULL, 10);
#endif
}
