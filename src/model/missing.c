/*
 * missing.c — rows with missing features: profiling them out by repair's
 * descent, and the per-product cache of profiled reference energies, one
 * sorted array per missing set, least recently used first out past a byte
 * budget (contract in include/ebm/missing.h).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "ebm/missing.h"

/* ---- the cache --------------------------------------------------------- */

struct missing_set {
	struct missing_set *prev, *next;   /* LRU list, most recent first */
	uint64_t hash;
	bool *mask;                        /* d flags */
	float *energy;                     /* n_ref, ascending */
	size_t bytes;
	unsigned refs;                     /* holders, the list included */
	bool linked;
};

struct ebm_missing_cache {
	pthread_mutex_t lock;
	struct missing_set *head, *tail;
	struct ebm_missing_stats stats;
};

struct ebm_missing_cache *ebm_missing_cache_create(void)
{
	struct ebm_missing_cache *c = ebm_xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->stats.budget = EBM_MISSING_DEFAULT_BUDGET;
	return c;
}

static void set_free(struct missing_set *s)
{
	free(s->mask);
	free(s->energy);
	free(s);
}

void ebm_missing_cache_destroy(struct ebm_missing_cache *c)
{
	if (c == NULL) {
		return;
	}
	struct missing_set *s = c->head;
	while (s != NULL) {
		struct missing_set *next = s->next;
		set_free(s);
		s = next;
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Callers hold the lock. */
static void unlink_set(struct ebm_missing_cache *c, struct missing_set *s)
{
	if (s->prev != NULL) {
		s->prev->next = s->next;
	} else {
		c->head = s->next;
	}
	if (s->next != NULL) {
		s->next->prev = s->prev;
	} else {
		c->tail = s->prev;
	}
	s->prev = s->next = NULL;
	s->linked = false;
	c->stats.entries--;
	c->stats.bytes -= s->bytes;
}

static void push_front(struct ebm_missing_cache *c, struct missing_set *s)
{
	s->prev = NULL;
	s->next = c->head;
	if (c->head != NULL) {
		c->head->prev = s;
	} else {
		c->tail = s;
	}
	c->head = s;
	s->linked = true;
	c->stats.entries++;
	c->stats.bytes += s->bytes;
}

static void release_locked(struct missing_set *s)
{
	if (--s->refs == 0) {
		set_free(s);
	}
}

/* Drops least recently used sets until the budget holds. */
static void evict_locked(struct ebm_missing_cache *c)
{
	while (c->tail != NULL && c->stats.bytes > c->stats.budget) {
		struct missing_set *s = c->tail;
		unlink_set(c, s);
		c->stats.evictions++;
		release_locked(s);   /* freed now unless a scorer holds it */
	}
}

static void release(struct ebm_missing_cache *c, struct missing_set *s)
{
	pthread_mutex_lock(&c->lock);
	release_locked(s);
	pthread_mutex_unlock(&c->lock);
}

static uint64_t mask_hash(const bool *mask, size_t d)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */
	for (size_t j = 0; j < d; j++) {
		h = (h ^ (uint64_t)(mask[j] ? 1 + j : 0)) * 1099511628211ull;
	}
	return h;
}

/* The held set for mask, or NULL; counts the lookup. */
static struct missing_set *lookup(struct ebm_missing_cache *c,
		const bool *mask, size_t d, uint64_t h)
{
	pthread_mutex_lock(&c->lock);
	c->stats.lookups++;
	struct missing_set *s = c->head;
	while (s != NULL && !(s->hash == h
			&& memcmp(s->mask, mask, d * sizeof(bool)) == 0)) {
		s = s->next;
	}
	if (s != NULL) {
		c->stats.hits++;
		unlink_set(c, s);
		push_front(c, s);
		s->refs++;
	}
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* Keeps the new set s (held once by the caller) unless an equal one got
 * in first, which is then returned held instead and s freed. */
static struct missing_set *insert(struct ebm_missing_cache *c,
		struct missing_set *s, size_t d)
{
	pthread_mutex_lock(&c->lock);
	c->stats.reference_profiles++;
	struct missing_set *t = c->head;
	while (t != NULL && !(t->hash == s->hash
			&& memcmp(t->mask, s->mask, d * sizeof(bool)) == 0)) {
		t = t->next;
	}
	if (t != NULL) {
		t->refs++;
		pthread_mutex_unlock(&c->lock);
		set_free(s);
		return t;
	}
	if (s->bytes <= c->stats.budget) {
		s->refs++;          /* the list's hold */
		push_front(c, s);
		evict_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
	return s;
}

size_t ebm_product_missing_uncached(const struct ebm_product *p,
		const float *x, size_t n_rows)
{
	size_t d = p->d;
	struct ebm_missing_cache *c = p->missing;
	/* The distinct missing sets first, without the lock. */
	bool *masks = ebm_alloc_array(n_rows > 0 ? n_rows : 1, d * sizeof(bool));
	if (masks == NULL) {
		return n_rows;   /* the caller's bound errs on the safe side */
	}
	size_t n_sets = 0;
	for (size_t i = 0; i < n_rows; i++) {
		const float *xi = x + i * d;
		if (!ebm_row_has_missing(xi, d)) {
			continue;
		}
		bool *m = masks + n_sets * d;
		for (size_t j = 0; j < d; j++) {
			m[j] = isnan(xi[j]);
		}
		bool seen = false;
		for (size_t k = 0; k < n_sets && !seen; k++) {
			seen = memcmp(masks + k * d, m, d * sizeof(bool)) == 0;
		}
		n_sets += !seen;
	}
	size_t n = 0;
	pthread_mutex_lock(&c->lock);
	for (size_t k = 0; k < n_sets; k++) {
		const bool *m = masks + k * d;
		uint64_t h = mask_hash(m, d);
		struct missing_set *s = c->head;
		while (s != NULL && !(s->hash == h
				&& memcmp(s->mask, m, d * sizeof(bool)) == 0)) {
			s = s->next;
		}
		n += s == NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(masks);
	return n;
}

void ebm_product_missing_stats(const struct ebm_product *p,
		struct ebm_missing_stats *out)
{
	struct ebm_missing_cache *c = p->missing;
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
}

void ebm_product_missing_set_budget(const struct ebm_product *p,
		size_t bytes)
{
	struct ebm_missing_cache *c = p->missing;
	pthread_mutex_lock(&c->lock);
	c->stats.budget = bytes;
	evict_locked(c);
	pthread_mutex_unlock(&c->lock);
}

/* ---- profiling ------------------------------------------------------------ */

bool ebm_row_has_missing(const float *x, size_t d)
{
	for (size_t j = 0; j < d; j++) {
		if (isnan(x[j])) {
			return true;
		}
	}
	return false;
}

enum ebm_status ebm_product_profile(const struct ebm_product *p,
		struct ebm_ctx *ctx, const bool *missing, const float *x,
		size_t n_rows, float *out, float *energy, struct ebm_error *err)
{
	size_t d = p->d;
	bool *fixed = malloc(d * sizeof(bool));
	float *start = ebm_alloc_array(n_rows > 0 ? n_rows : 1,
			d * sizeof(float));
	if (fixed == NULL || start == NULL) {
		free(fixed);
		free(start);
		return ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
	}
	size_t n_missing = 0;
	for (size_t j = 0; j < d; j++) {
		fixed[j] = !missing[j];
		n_missing += missing[j];
	}
	if (n_missing == d) {
		free(fixed);
		free(start);
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"every feature is missing");
	}
	/* Every missing feature starts at the first expert's training mean
	 * (z = 0), reference rows and scored rows alike. */
	const float *mean = p->models[0]->net.mean;
	for (size_t i = 0; i < n_rows; i++) {
		for (size_t j = 0; j < d; j++) {
			start[i * d + j] = missing[j] ? mean[j] : x[i * d + j];
		}
	}
	struct ebm_repair_options o;
	ebm_repair_options_init(&o);
	o.steps = EBM_MISSING_STEPS;
	o.fixed = fixed;
	enum ebm_status st = ebm_product_repair(p, ctx, &o, start, n_rows, out,
			NULL, energy, err);
	free(fixed);
	free(start);
	return st;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : (x > y);
}

/* The union reference rows profiled over mask, sorted: a new set held
 * once by the caller. */
static enum ebm_status profile_reference(const struct ebm_product *p,
		struct ebm_ctx *ctx, const bool *mask, uint64_t h,
		struct missing_set **out, struct ebm_error *err)
{
	size_t d = p->d;
	size_t n = p->n_ref;
	struct missing_set *s = calloc(1, sizeof(*s));
	float *rows = ebm_alloc_array(n, d * sizeof(float));
	float *done = ebm_alloc_array(n, d * sizeof(float));
	if (s != NULL) {
		s->mask = malloc(d * sizeof(bool));
		s->energy = ebm_alloc_array(n, sizeof(float));
	}
	if (s == NULL || rows == NULL || done == NULL || s->mask == NULL
			|| s->energy == NULL) {
		if (s != NULL) {
			set_free(s);
		}
		free(rows);
		free(done);
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory for %zu reference rows", n);
	}
	size_t off = 0;
	for (size_t k = 0; k < p->n; k++) {
		size_t nk = ebm_model_n_ref(p->models[k]);
		memcpy(rows + off * d, ebm_model_ref_rows(p->models[k]),
				nk * d * sizeof(float));
		off += nk;
	}
	enum ebm_status st = ebm_product_profile(p, ctx, mask, rows, n, done,
			s->energy, err);
	free(rows);
	free(done);
	if (st != EBM_STATUS_OK) {
		set_free(s);
		return st;
	}
	qsort(s->energy, n, sizeof(float), cmp_float);
	memcpy(s->mask, mask, d * sizeof(bool));
	s->hash = h;
	s->bytes = sizeof(*s) + d * sizeof(bool) + n * sizeof(float);
	s->refs = 1;
	*out = s;
	return EBM_STATUS_OK;
}

/* The reference energies of mask, held: from the cache or computed. */
static enum ebm_status reference_for(const struct ebm_product *p,
		struct ebm_ctx *ctx, const bool *mask, struct missing_set **out,
		struct ebm_error *err)
{
	uint64_t h = mask_hash(mask, p->d);
	*out = lookup(p->missing, mask, p->d, h);
	if (*out != NULL) {
		return EBM_STATUS_OK;
	}
	struct missing_set *s = NULL;
	enum ebm_status st = profile_reference(p, ctx, mask, h, &s, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	*out = insert(p->missing, s, p->d);
	return EBM_STATUS_OK;
}

enum ebm_status ebm_product_score_missing(const struct ebm_product *p,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, double alpha,
		struct ebm_score *out, float *completed, struct ebm_error *err)
{
	enum ebm_status st = ebm_score_check_alpha(alpha, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	size_t d = p->d;
	/* Which rows have holes, and the first of them with all missing. */
	size_t n_holes = 0;
	for (size_t i = 0; i < n_rows; i++) {
		const float *xi = x + i * d;
		if (!ebm_row_has_missing(xi, d)) {
			continue;
		}
		size_t m = 0;
		for (size_t j = 0; j < d; j++) {
			m += isnan(xi[j]) != 0;
		}
		if (m == d) {
			st = ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
					"row %zu: every feature is missing", i + 1);
			if (err != NULL) {
				err->line = i + 1;
			}
			return st;
		}
		n_holes++;
	}
	if (n_holes == 0) {
		if (completed != NULL) {
			memcpy(completed, x, n_rows * d * sizeof(float));
		}
		return ebm_product_score(p, ctx, x, n_rows, alpha, out, err);
	}
	float *full = completed != NULL ? completed
			: ebm_alloc_array(n_rows, d * sizeof(float));
	size_t *group = ebm_alloc_array(n_holes, sizeof(size_t));
	float *gx = ebm_alloc_array(n_holes, d * sizeof(float));
	float *gout = ebm_alloc_array(n_holes, d * sizeof(float));
	bool *mask = malloc(d * sizeof(bool));
	bool *done = calloc(n_rows, sizeof(bool));
	bool *holds = calloc(n_rows, sizeof(bool));   /* row took a hold */
	struct missing_set **ref = calloc(n_rows, sizeof(*ref));
	if (full == NULL || group == NULL || gx == NULL || gout == NULL
			|| mask == NULL || done == NULL || holds == NULL || ref == NULL) {
		st = ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
		goto out;
	}
	memcpy(full, x, n_rows * d * sizeof(float));
	/* One descent per missing set: the rows that share it, together. */
	for (size_t i = 0; i < n_rows; i++) {
		const float *xi = x + i * d;
		if (done[i] || !ebm_row_has_missing(xi, d)) {
			continue;
		}
		for (size_t j = 0; j < d; j++) {
			mask[j] = isnan(xi[j]);
		}
		size_t ng = 0;
		for (size_t k = i; k < n_rows; k++) {
			const float *xk = x + k * d;
			bool same = !done[k];
			for (size_t j = 0; j < d && same; j++) {
				same = (isnan(xk[j]) != 0) == mask[j];
			}
			if (same) {
				done[k] = true;
				memcpy(gx + ng * d, xk, d * sizeof(float));
				group[ng++] = k;
			}
		}
		st = ebm_product_profile(p, ctx, mask, gx, ng, gout, NULL, err);
		if (st == EBM_STATUS_OK) {
			st = reference_for(p, ctx, mask, &ref[i], err);
			holds[i] = st == EBM_STATUS_OK;
		}
		if (st != EBM_STATUS_OK) {
			if (err != NULL && st == EBM_STATUS_NUMERIC && err->line > 0
					&& err->line <= ng) {
				err->line = group[err->line - 1] + 1;
			}
			goto out;
		}
		for (size_t g = 0; g < ng; g++) {
			memcpy(full + group[g] * d, gout + g * d, d * sizeof(float));
			if (group[g] != i) {
				ref[group[g]] = ref[i];   /* borrowed from row i's hold */
			}
		}
	}
	/* Energies and scores of the completed rows in one call, the rows
	 * without holes among them exactly as ebm_product_score has them;
	 * then the p-values of the rows with holes against their sets. */
	st = ebm_product_score(p, ctx, full, n_rows, alpha, out, err);
	if (st != EBM_STATUS_OK) {
		goto out;
	}
	for (size_t i = 0; i < n_rows; i++) {
		if (ref[i] != NULL) {
			out[i].p_value = ebm_p_value(ref[i]->energy, p->n_ref,
					out[i].energy);
			out[i].anomaly = out[i].p_value < alpha;
		}
	}
out:
	/* Release the holds: one per set, taken by its first row. */
	for (size_t i = 0; holds != NULL && ref != NULL && i < n_rows; i++) {
		if (holds[i]) {
			release(p->missing, ref[i]);
		}
	}
	if (full != completed) {
		free(full);
	}
	free(group);
	free(gx);
	free(gout);
	free(mask);
	free(done);
	free(holds);
	free(ref);
	return st;
}
