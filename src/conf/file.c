/*
 * file.c — the configuration's files: ebm_conf_load_file() (read whole,
 * then ebm_conf_parse_string()) and ebm_conf_read_token() (the bearer
 * token's file, wiped once read), both through read_small_file(), which
 * never reads more than a bound and refuses anything but a regular file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "util/util.h"

#define CONF_FILE_MAX (1024 * 1024)
#define TOKEN_FILE_MAX 4096

/* ---- files -------------------------------------------------------------- */

/*
 * Reads a whole regular file of at most `max` bytes into a NUL-terminated
 * buffer (*out, free() it; *n_out bytes before the NUL). O_NONBLOCK keeps a
 * FIFO from blocking the open; it then fails the regular-file check.
 */
static enum ebm_status read_small_file(const char *path, const char *what,
		size_t max, char **out, size_t *n_out, struct stat *st,
		struct ebm_error *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		return ebm_error_set_errno(err, errno, "cannot read '%s'", path);
	}
	enum ebm_status status = EBM_STATUS_OK;
	char *buf = NULL;
	size_t n = 0;
	if (fstat(fd, st) != 0) {
		status = ebm_error_set_errno(err, errno, "cannot read '%s'", path);
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		status = ebm_error_set(err, EBM_STATUS_IO,
				"cannot read '%s': not a regular file", path);
		goto out;
	}
	if ((uint64_t)st->st_size > max) {
		goto too_large;
	}
	/* st_size is only a hint (0 under /proc, or the file may grow): read
	 * to the end, never keeping more than max + 1 bytes. */
	size_t cap = st->st_size > 0 ? (size_t)st->st_size + 1 : 4096;
	for (;;) {
		if (buf == NULL || n == cap) {
			if (buf != NULL) {
				cap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
			}
			char *b = realloc(buf, cap + 1);
			if (b == NULL) {
				status = ebm_error_set(err, EBM_STATUS_NOMEM,
						"cannot read '%s': out of memory", path);
				goto out;
			}
			buf = b;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			status = ebm_error_set_errno(err, errno, "cannot read '%s'", path);
			goto out;
		}
		if (r == 0) {
			break;
		}
		n += (size_t)r;
		if (n > max) {
			goto too_large;
		}
	}
	buf[n] = '\0';
	*out = buf;
	*n_out = n;
	buf = NULL;
	goto out;
too_large:
	status = ebm_error_set(err, EBM_STATUS_LIMIT,
			"%s '%s' is larger than %zu bytes", what, path, max);
out:
	close(fd);
	free(buf);
	return status;
}

enum ebm_status ebm_conf_load_file(const char *path, struct ebm_conf *c,
		struct ebm_error *err)
{
	char *text;
	size_t n;
	struct stat st;
	memset(c, 0, sizeof(*c));
	enum ebm_status status = read_small_file(path, "configuration file",
			CONF_FILE_MAX, &text, &n, &st, err);
	if (status != EBM_STATUS_OK) {
		return status;
	}
	const char *nul = memchr(text, '\0', n);
	if (nul != NULL) {
		unsigned line = 1;
		for (const char *s = text; s < nul; s++) {
			line += *s == '\n';
		}
		ebm_error_set(err, EBM_STATUS_FORMAT, "%s:%u: unexpected NUL byte",
				path, line);
		if (err != NULL) {
			err->line = line;
		}
		free(text);
		return EBM_STATUS_FORMAT;
	}
	status = ebm_conf_parse_string(text, path, c, err);
	free(text);
	return status;
}

enum ebm_status ebm_conf_read_token(const char *path, char **token,
		unsigned *mode, struct ebm_error *err)
{
	char *text;
	size_t n;
	struct stat st;
	*token = NULL;
	enum ebm_status status = read_small_file(path, "token file",
			TOKEN_FILE_MAX, &text, &n, &st, err);
	if (status != EBM_STATUS_OK) {
		return status;
	}
	const char *s = text;
	size_t len = 0;
	while (len < n && text[len] != '\n') {
		len++;
	}
	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1])) {
		len--;
	}
	if (len == 0) {
		status = ebm_error_set(err, EBM_STATUS_FORMAT,
				"token file '%s': the first line is empty", path);
	}
	for (size_t i = 0; i < len && status == EBM_STATUS_OK; i++) {
		if (iscntrl((unsigned char)s[i])) {
			status = ebm_error_set(err, EBM_STATUS_FORMAT,
					"token file '%s': the token contains a control character",
					path);
		}
	}
	if (status == EBM_STATUS_OK) {
		*token = ebm_xmalloc(len + 1);
		memcpy(*token, s, len);
		(*token)[len] = '\0';
		if (mode != NULL) {
			*mode = (unsigned)(st.st_mode & 07777);
		}
	}
	ebm_secret_wipe(text, n);
	free(text);
	return status;
}
