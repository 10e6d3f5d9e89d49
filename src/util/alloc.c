/*
 * alloc.c — checked allocation for small internal objects (abort on
 * exhaustion, like redis zmalloc) and overflow-checked size arithmetic for
 * everything sized by input; the one wipe of secrets.
 */
/* explicit_bzero (glibc >= 2.25, the BSDs) is outside POSIX. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static void oom(size_t size)
{
	ebm_log_error("out of memory allocating %zu bytes", size);
	fprintf(stderr, "libebm: out of memory allocating %zu bytes\n", size);
	abort();
}

void *ebm_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL) {
		oom(size);
	}
	return p;
}

void *ebm_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL) {
		oom(n * size);
	}
	return p;
}

void *ebm_xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (q == NULL) {
		oom(size);
	}
	return q;
}

char *ebm_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = ebm_xmalloc(n);
	memcpy(p, s, n);
	return p;
}

bool ebm_mul_size(size_t a, size_t b, size_t *out)
{
	if (b != 0 && a > SIZE_MAX / b) {
		return false;
	}
	*out = a * b;
	return true;
}

bool ebm_add_size(size_t a, size_t b, size_t *out)
{
	if (a > SIZE_MAX - b) {
		return false;
	}
	*out = a + b;
	return true;
}

void *ebm_alloc_array(size_t n, size_t size)
{
	size_t total;
	if (!ebm_mul_size(n, size, &total)) {
		return NULL;
	}
	return malloc(total ? total : 1);
}

void ebm_secret_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0) {
		explicit_bzero(p, n);
	}
}

void ebm_secret_free(char *s)
{
	if (s != NULL) {
		ebm_secret_wipe(s, strlen(s));
		free(s);
	}
}
