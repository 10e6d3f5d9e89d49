/*
 * names.c — the one feature-name index: an array of names with the
 * permutation that sorts them, for lookups by binary search and for
 * finding the first repeated name. Model files (feature names), ebmd's
 * request schemas, CSV headers and ebmd-train's column matching use it.
 */
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* Stable merge sort of idx[0..n) by names[idx[i]], tmp[n] scratch (no
 * file-scope state: indexes are built on several threads). */
static void sort_by_name(uint32_t *idx, uint32_t *tmp, size_t n,
		const char *const *names)
{
	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			size_t a = lo, b = mid, k = lo;
			while (a < mid && b < hi) {
				tmp[k++] = strcmp(names[idx[a]], names[idx[b]]) <= 0
						? idx[a++] : idx[b++];
			}
			while (a < mid) {
				tmp[k++] = idx[a++];
			}
			while (b < hi) {
				tmp[k++] = idx[b++];
			}
		}
		memcpy(idx, tmp, n * sizeof(*idx));
	}
}

uint32_t *ebm_names_sort(const char *const *names, size_t n)
{
	if (n > UINT32_MAX) {
		return NULL;
	}
	uint32_t *order = ebm_alloc_array(n > 0 ? 2 * n : 1, sizeof(*order));
	if (order == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		order[i] = (uint32_t)i;
	}
	sort_by_name(order, order + n, n, names);
	/* The scratch half is not needed any more. */
	uint32_t *shrunk = realloc(order, (n > 0 ? n : 1) * sizeof(*order));
	return shrunk != NULL ? shrunk : order;
}

long ebm_names_find(const char *const *names, const uint32_t *order,
		size_t n, const char *name)
{
	if (names == NULL || order == NULL || name == NULL) {
		return -1;
	}
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(names[order[mid]], name);
		if (c == 0) {
			return (long)order[mid];
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return -1;
}

size_t ebm_names_duplicate(const char *const *names, const uint32_t *order,
		size_t n, size_t *first)
{
	/* Equal names are adjacent and in index order: every entry of a run
	 * but its first repeats the run's first. */
	size_t dup = SIZE_MAX, orig = SIZE_MAX;
	size_t run = 0;
	for (size_t k = 1; k < n; k++) {
		if (strcmp(names[order[k - 1]], names[order[k]]) != 0) {
			run = k;
		} else if (order[k] < dup) {
			dup = order[k];
			orig = order[run];
		}
	}
	if (first != NULL) {
		*first = orig;
	}
	return dup;
}
