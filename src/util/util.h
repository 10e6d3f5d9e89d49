/*
 * util.h — internal helpers shared by every module: the log hook behind
 * ebm_log_set(), error filling, checked allocation, overflow-checked sizes,
 * a seeded random number generator, and a monotonic clock.
 */
#ifndef EBM_UTIL_UTIL_H
#define EBM_UTIL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebm/ebm.h"

/* ---- logging ------------------------------------------------------------ */

bool ebm_log_enabled(enum ebm_log_level level);
/* Changes the level of the installed hook; safe while other threads log
 * (ebmd's SIGHUP). */
void ebm_log_set_level(enum ebm_log_level max_level);
void ebm_log_write(enum ebm_log_level level, const char *file, int line,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The level is checked before anything is formatted. */
#define EBM_LOG(level, ...) \
	do { \
		if (ebm_log_enabled(level)) { \
			ebm_log_write(level, __FILE__, __LINE__, __VA_ARGS__); \
		} \
	} while (0)
#define ebm_log_error(...) EBM_LOG(EBM_LOG_ERROR, __VA_ARGS__)
#define ebm_log_warn(...) EBM_LOG(EBM_LOG_WARN, __VA_ARGS__)
#define ebm_log_info(...) EBM_LOG(EBM_LOG_INFO, __VA_ARGS__)
#define ebm_log_debug(...) EBM_LOG(EBM_LOG_DEBUG, __VA_ARGS__)

/* ---- errors ------------------------------------------------------------- */

/*
 * Fills err (if not NULL) with code and a printf-formatted message; line,
 * column and offset are reset to "not applicable". Returns `code` so that
 * callers can write `return ebm_error_set(err, EBM_STATUS_FORMAT, ...)`.
 */
enum ebm_status ebm_error_set(struct ebm_error *err, enum ebm_status code,
		const char *fmt, ...) __attribute__((format(printf, 3, 4)));
enum ebm_status ebm_error_vset(struct ebm_error *err, enum ebm_status code,
		const char *fmt, va_list ap);
/* As ebm_error_set, also saving errno and appending ": strerror(errno)". */
enum ebm_status ebm_error_set_errno(struct ebm_error *err, int saved_errno,
		const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- allocation ---------------------------------------------------------- */

/*
 * For small, fixed-size internal allocations: abort with a log line when
 * memory runs out. Sizes that come from input use plain malloc and return
 * EBM_STATUS_NOMEM instead.
 */
void *ebm_xmalloc(size_t size);
void *ebm_xcalloc(size_t n, size_t size);
void *ebm_xrealloc(void *p, size_t size);
char *ebm_xstrdup(const char *s);

/* *out = a * b; false on overflow. */
bool ebm_mul_size(size_t a, size_t b, size_t *out);
/* *out = a + b; false on overflow. */
bool ebm_add_size(size_t a, size_t b, size_t *out);

/* malloc(n * size) with overflow check; NULL on overflow or failure. */
void *ebm_alloc_array(size_t n, size_t size);

/* ---- text (utf8.c, names.c) --------------------------------------------- */

/*
 * Length (1..4) of the valid UTF-8 sequence at s[0..len), its code point
 * in *cp (may be NULL); 0 when len is 0 or s does not start with one (a
 * bad lead byte, a truncated sequence, an overlong form, a surrogate, a
 * value past U+10FFFF). U+0000 is a valid one-byte sequence.
 */
size_t ebm_utf8_decode(const void *s, size_t len, uint32_t *cp);
/* Whether s[0..len) is all valid UTF-8. */
bool ebm_utf8_valid(const void *s, size_t len);

/*
 * A name index: the permutation of names[0..n) that sorts them by strcmp,
 * equal names in index order. A new malloc'ed array of n indices, or NULL
 * when memory runs out (or n > UINT32_MAX). names must outlive it.
 */
uint32_t *ebm_names_sort(const char *const *names, size_t n);
/* The index i with names[i] equal to name, by binary search, or -1 (also
 * for NULL arguments). */
long ebm_names_find(const char *const *names, const uint32_t *order,
		size_t n, const char *name);
/* The smallest index whose name repeats an earlier one (SIZE_MAX: none);
 * *first (may be NULL) receives the index of that earlier one. */
size_t ebm_names_duplicate(const char *const *names, const uint32_t *order,
		size_t n, size_t *first);

/* ---- numbers (shortest.c) ---------------------------------------------- */

/*
 * The shortest %g text (6 to 9 significant digits for a float, 15 to 17
 * for a double) that strtof / strtod read back as v, into buf (at least
 * 32 bytes for a float, 40 for a double); returns its length. For finite
 * v; "inf"/"nan" otherwise, as printf writes them.
 */
int ebm_shortest_float(char *buf, size_t size, float v);
int ebm_shortest_double(char *buf, size_t size, double v);
/* Tests: true sends every value through the snprintf reference, to
 * compare it with the fast path. Returns the previous setting. */
bool ebm_shortest_force_ref(bool on);

/* ---- files (atomic-file.c) ---------------------------------------------- */

/*
 * Writes size bytes to path atomically: a temporary file in the target's
 * directory (created anonymous with O_TMPFILE where supported, named only
 * once complete), fsync, rename over `path`, fsync of the directory. On
 * failure (IO, INVALID_ARGUMENT for a path that names no file; err says
 * which step and file) the temporary file is removed and any existing
 * `path` is untouched. After a success, stale temporary files of earlier
 * writes of `path` that were killed (".NAME.tmp-<12 hex>", older than
 * 60 s, not locked by a live writer) are removed. The mode is 0666 less
 * the umask, as for a plain create.
 */
enum ebm_status ebm_write_file_atomic(const char *path, const void *data,
		size_t size, struct ebm_error *err);

/*
 * Secrets (the bearer token and the buffers it passed through): zeroes n
 * bytes with explicit_bzero, which the compiler may not drop as a dead
 * store before free() the way it drops memset.
 */
void ebm_secret_wipe(void *p, size_t n);
/* Wipes the string s (up to its NUL) and frees it; NULL is a no-op. */
void ebm_secret_free(char *s);

/* ---- random numbers ----------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: fast, reproducible everywhere. */
struct ebm_rng {
	uint64_t s[4];
	bool has_spare;
	double spare;
};

void ebm_rng_init(struct ebm_rng *r, uint64_t seed);
uint64_t ebm_rng_u64(struct ebm_rng *r);
/* Uniform in [0, 1). */
double ebm_rng_uniform(struct ebm_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t ebm_rng_below(struct ebm_rng *r, uint64_t n);
/* Standard normal (polar Box-Muller). */
double ebm_rng_normal(struct ebm_rng *r);
/* Fills out[0..n) with standard normals as floats. */
void ebm_rng_normal_fill(struct ebm_rng *r, float *out, size_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void ebm_rng_shuffle(struct ebm_rng *r, size_t *idx, size_t n);

/* ---- AUROC (metrics.c) ---------------------------------------------------- */

/*
 * n finite scores (higher = more anomalous) and labels (true = anomaly):
 * the Mann-Whitney statistic with average ranks for ties, so a tie between
 * a positive and a negative counts one half. *out is NAN unless both
 * classes are present. False only when scratch memory cannot be allocated.
 */
bool ebm_auroc(const double *score, const bool *label, size_t n,
		double *out);

/* ---- time --------------------------------------------------------------- */

/* Seconds on a monotonic clock. */
double ebm_now(void);

#endif
