/*
 * atomic-file.c — "write these bytes to this path atomically": a reader
 * of the path sees the old content or the new, complete and synced, never
 * a mix, and a writer killed at any moment leaves no partial file behind
 * (the next write removes its stale temporary file). Moved out of
 * model/format.c, which writes model files with it; docs/model-format.md
 * section 6 describes the behaviour.
 */
/* O_TMPFILE, AT_EMPTY_PATH and flock() are Linux/BSD, not POSIX. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/*
 * A name nobody else will pick: pid, a per-process counter and the clock,
 * mixed. O_EXCL catches the rest.
 */
static uint64_t temp_suffix(void)
{
	static atomic_uint_fast64_t counter;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t x = (uint64_t)getpid() << 32 ^ atomic_fetch_add(&counter, 1) ^
			(uint64_t)ts.tv_nsec << 16 ^ (uint64_t)ts.tv_sec;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return (x ^ (x >> 31)) & 0xffffffffffffull;
}

/* Temporary names: ".<base>.tmp-<12 hex digits>" (the base cut to 200
 * bytes so that the name stays under NAME_MAX). */
#define TEMP_BASE_MAX 200
#define TEMP_HEX 12
/* A temporary file of ours older than this, that no live writer holds
 * locked, was left by a writer that died; the next write removes it. */
#define STALE_TEMP_SECONDS 60

static void temp_name(char *buf, size_t cap, const char *dir,
		const char *base)
{
	snprintf(buf, cap, "%s/.%.*s.tmp-%0*" PRIx64, dir, TEMP_BASE_MAX, base,
			TEMP_HEX, temp_suffix());
}

/* Creates a new named temporary file; -1 with errno when it cannot. */
static int create_named_temp(char *tmp, size_t cap, const char *dir,
		const char *base)
{
	int fd = -1;
	for (int attempt = 0; attempt < 100; attempt++) {
		temp_name(tmp, cap, dir, base);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0 || errno != EEXIST) {
			break;
		}
	}
	return fd;
}

/*
 * Gives the anonymous file fd (O_TMPFILE) a fresh temporary name in dir,
 * through /proc/self/fd (any user), else AT_EMPTY_PATH (needs
 * CAP_DAC_READ_SEARCH). False with errno when neither works.
 */
static bool link_anonymous(int fd, char *tmp, size_t cap, const char *dir,
		const char *base)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	for (int attempt = 0; attempt < 100; attempt++) {
		temp_name(tmp, cap, dir, base);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) {
			return true;
		}
		if (errno == EEXIST) {
			continue;
		}
		if (linkat(fd, "", AT_FDCWD, tmp, AT_EMPTY_PATH) == 0) {
			return true;
		}
		if (errno != EEXIST) {
			return false;
		}
	}
	return false;
}

/* ".<base>.tmp-" followed by exactly TEMP_HEX lower-case hex digits. */
static bool is_our_temp(const char *name, const char *base)
{
	size_t blen = strlen(base);
	if (blen > TEMP_BASE_MAX) {
		blen = TEMP_BASE_MAX;
	}
	if (name[0] != '.' || strncmp(name + 1, base, blen) != 0) {
		return false;
	}
	const char *p = name + 1 + blen;
	if (strncmp(p, ".tmp-", 5) != 0) {
		return false;
	}
	p += 5;
	for (int i = 0; i < TEMP_HEX; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
			return false;
		}
	}
	return p[TEMP_HEX] == '\0';
}

/*
 * Removes temporary files that earlier writes of `base` left in dir when
 * they were killed (SIGKILL, power loss) between creating and renaming
 * them. A writer holds an exclusive flock() on its temporary file from
 * just after creating it until after the rename, so a file of our pattern
 * that can be locked, and was last modified more than STALE_TEMP_SECONDS
 * ago (which covers the instant between a writer's open and its flock),
 * has no writer left. Anything else (a live writer's file, another name,
 * a file we cannot open, a file system without flock) is left alone.
 * Best effort: errors are ignored.
 */
static void remove_stale_temps(const char *dir, const char *base)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		return;
	}
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!is_our_temp(e->d_name, base)) {
			continue;
		}
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW
				| O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			continue;
		}
		struct stat sb;
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)
				&& sb.st_mtime <= now - STALE_TEMP_SECONDS
				&& flock(fd, LOCK_EX | LOCK_NB) == 0) {
			unlinkat(dirfd(d), e->d_name, 0);
		}
		close(fd);
	}
	closedir(d);
}

/*
 * The new content is written to an anonymous file (O_TMPFILE) in the
 * target's directory, so that a writer killed while writing or syncing
 * leaves nothing behind; only once complete and synced does it get a
 * temporary name, to be renamed over the target an instant later. Where
 * O_TMPFILE is not supported, a named temporary file is created at once
 * with open(O_CREAT | O_EXCL). Either way the mode is 0666 less the umask
 * (and any default ACL), exactly as for a plain create, and the file is
 * held under an exclusive flock() until after the rename (see
 * remove_stale_temps).
 */
enum ebm_status ebm_write_file_atomic(const char *path, const void *bytes,
		size_t size, struct ebm_error *err)
{
	const uint8_t *data = bytes;
	enum ebm_status st = EBM_STATUS_OK;
	char *dir = NULL, *tmp = NULL;
	int fd = -1, dfd = -1;
	bool created = false;    /* tmp names a file we must remove */
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"%s: not a file name", path);
	}
	if (slash == NULL) {
		dir = ebm_xstrdup(".");
	} else {
		size_t n = slash == path ? 1 : (size_t)(slash - path);
		dir = ebm_xmalloc(n + 1);
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	size_t tmp_cap = strlen(dir) + TEMP_BASE_MAX + 32;
	tmp = ebm_xmalloc(tmp_cap);
	bool anonymous = true;
	for (;;) {
		if (anonymous) {
			fd = open(dir, O_WRONLY | O_TMPFILE | O_CLOEXEC, 0666);
			if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR
					|| errno == EINVAL)) {
				anonymous = false;  /* not supported here */
			}
		}
		if (!anonymous) {
			fd = create_named_temp(tmp, tmp_cap, dir, base);
			created = fd >= 0;
		}
		if (fd < 0) {
			st = ebm_error_set_errno(err, errno,
					"%s: cannot create a temporary file in '%s'", path, dir);
			goto out;
		}
		(void)flock(fd, LOCK_EX);
		if (!write_all(fd, data, size)) {
			st = created ? ebm_error_set_errno(err, errno,
					"%s: write to '%s' failed", path, tmp)
				: ebm_error_set_errno(err, errno, "%s: write to a "
					"temporary file in '%s' failed", path, dir);
			goto out;
		}
		if (fsync(fd) != 0) {
			st = created ? ebm_error_set_errno(err, errno,
					"%s: fsync of '%s' failed", path, tmp)
				: ebm_error_set_errno(err, errno, "%s: fsync of a "
					"temporary file in '%s' failed", path, dir);
			goto out;
		}
		if (!anonymous) {
			break;
		}
		if (link_anonymous(fd, tmp, tmp_cap, dir, base)) {
			created = true;
			break;
		}
		/* Cannot name it (no /proc, no privilege): start again the
		 * classic way. */
		close(fd);
		fd = -1;
		anonymous = false;
	}
	if (rename(tmp, path) != 0) {
		st = ebm_error_set_errno(err, errno, "%s: cannot rename '%s' over "
				"it", path, tmp);
		goto out;
	}
	created = false;
	int rc = close(fd);  /* releases the lock, after the rename */
	fd = -1;
	if (rc != 0) {
		st = ebm_error_set_errno(err, errno, "%s: written, but closing it "
				"failed", path);
		goto out;
	}
	/*
	 * Make the rename itself durable. Some file systems cannot fsync a
	 * directory (EINVAL); the rename has happened, so only real I/O errors
	 * are reported.
	 */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		st = ebm_error_set_errno(err, errno, "%s: written, but cannot open "
				"directory '%s' to fsync it", path, dir);
		goto out;
	}
	if (fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP) {
		st = ebm_error_set_errno(err, errno, "%s: written, but fsync of "
				"directory '%s' failed", path, dir);
		goto out;
	}
	remove_stale_temps(dir, base);
out:
	if (created) {
		unlink(tmp);
	}
	if (fd >= 0) {
		close(fd);
	}
	if (dfd >= 0) {
		close(dfd);
	}
	free(tmp);
	free(dir);
	return st;
}
