/*
 * error.c — filling struct ebm_error, and status names.
 */
#include <stdio.h>
#include <string.h>

#include "util/util.h"

const char *ebm_status_string(enum ebm_status status)
{
	switch (status) {
	case EBM_STATUS_OK: return "ok";
	case EBM_STATUS_INVALID_ARGUMENT: return "invalid_argument";
	case EBM_STATUS_IO: return "io";
	case EBM_STATUS_FORMAT: return "format";
	case EBM_STATUS_NOMEM: return "nomem";
	case EBM_STATUS_LIMIT: return "limit";
	case EBM_STATUS_NUMERIC: return "numeric";
	case EBM_STATUS_DIVERGED: return "diverged";
	case EBM_STATUS_CANCELLED: return "cancelled";
	case EBM_STATUS_MISMATCH: return "mismatch";
	}
	return "unknown";
}

void ebm_error_clear(struct ebm_error *err)
{
	if (err == NULL) {
		return;
	}
	memset(err, 0, sizeof(*err));
	err->code = EBM_STATUS_OK;
	err->offset = UINT64_MAX;
}

enum ebm_status ebm_error_vset(struct ebm_error *err, enum ebm_status code,
		const char *fmt, va_list ap)
{
	if (err != NULL) {
		ebm_error_clear(err);
		err->code = code;
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
	}
	return code;
}

enum ebm_status ebm_error_set(struct ebm_error *err, enum ebm_status code,
		const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ebm_error_vset(err, code, fmt, ap);
	va_end(ap);
	return code;
}

enum ebm_status ebm_error_set_errno(struct ebm_error *err, int saved_errno,
		const char *fmt, ...)
{
	if (err == NULL) {
		return EBM_STATUS_IO;
	}
	va_list ap;
	va_start(ap, fmt);
	ebm_error_vset(err, EBM_STATUS_IO, fmt, ap);
	va_end(ap);
	err->sys_errno = saved_errno;
	size_t len = strlen(err->message);
	snprintf(err->message + len, sizeof(err->message) - len, ": %s",
			strerror(saved_errno));
	return EBM_STATUS_IO;
}
