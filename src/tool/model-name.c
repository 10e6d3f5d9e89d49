/*
 * model-name.c — the model name (file stem) shown by inspect; the info
 * object itself is built by src/info/model-info.c, shared with the daemon.
 */
#include <string.h>

#include "tool/tool.h"

char *ebm_tool_model_name(const char *path, char *buf, size_t size)
{
	const char *base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	size_t len = strlen(base);
	/* Like Python's Path.stem: a leading dot is not an extension. */
	const char *dot = strrchr(base, '.');
	if (dot != NULL && dot != base) {
		len = (size_t)(dot - base);
	}
	if (size == 0) {
		return buf;
	}
	len = len < size - 1 ? len : size - 1;
	memcpy(buf, base, len);
	buf[len] = '\0';
	return buf;
}
