/*
 * free-check.c — an LD_PRELOAD library for the token-wipe test: every
 * free() in the process first looks for FREE_CHECK_NEEDLE (the token) in
 * the block; found, it says so on stderr and the process exits 99. So a
 * wipe the compiler dropped before free() (a plain memset is a dead store
 * to it) fails the test, where explicit_bzero passes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void (*real_free)(void *);
static const char *needle;
static size_t needle_len;

__attribute__((constructor)) static void init(void)
{
	real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	needle = getenv("FREE_CHECK_NEEDLE");
	needle_len = needle != NULL ? strlen(needle) : 0;
}

void free(void *p)
{
	if (p != NULL && needle_len > 0) {
		size_t n = malloc_usable_size(p);
		if (memmem(p, n, needle, needle_len) != NULL) {
			static const char msg[] = "free-check: a freed block still "
					"holds the token\n";
			ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
			(void)w;
			_exit(99);
		}
	}
	if (real_free != NULL) {
		real_free(p);
	}
}
