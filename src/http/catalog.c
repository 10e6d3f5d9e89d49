/*
 * catalog.c — the catalog: one immutable, refcounted snapshot of what the
 * daemon serves (model files, one product per file, named compositions,
 * their prebuilt model-info JSON, and the request-level settings).
 *
 * daemon/ builds a catalog off to the side on every (re)load, then
 * publishes it to the server, which swaps a pointer. A request holds a
 * reference from start to finish, so it finishes on the version it started
 * with; the last reference frees the catalog. Model files that did not
 * change between two loads are shared by both catalogs through their own
 * refcount (struct ebm_http_model), so a reload does not reread them.
 *
 * Each catalog also caches what POST /v1/score needs to build a product
 * cheaply: every model file's energies on every compatible file's
 * reference rows (see http.h for the bounds), computed as the files are
 * added, so that an ad-hoc product is a weighted sum and a sort.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "http/http.h"
#include "util/util.h"

/* ======================================================================
 * Model files
 * ==================================================================== */

struct ebm_http_model *ebm_http_model_create(struct ebm_model *model,
		const char *name, const char *path)
{
	struct ebm_http_model *hm = ebm_xcalloc(1, sizeof(*hm));
	atomic_init(&hm->refs, 1);
	hm->model = model;
	hm->name = ebm_xstrdup(name);
	hm->path = ebm_xstrdup(path != NULL ? path : name);
	hm->loaded_at = time(NULL);
	return hm;
}

struct ebm_http_model *ebm_http_model_ref(struct ebm_http_model *hm)
{
	atomic_fetch_add(&hm->refs, 1);
	return hm;
}

void ebm_http_model_unref(struct ebm_http_model *hm)
{
	if (hm == NULL || atomic_fetch_sub(&hm->refs, 1) != 1) {
		return;
	}
	ebm_model_destroy(hm->model);
	free(hm->name);
	free(hm->path);
	free(hm);
}

/* ======================================================================
 * Versions of products
 * ==================================================================== */

void ebm_http_product_version(const struct ebm_product *p, char version[13],
		char checksum[33])
{
	size_t n = ebm_product_n_models(p);
	if (n == 1 && ebm_product_weight(p, 0) == 1.0) {
		const char *c = ebm_model_checksum(ebm_product_model(p, 0));
		snprintf(checksum, 33, "%s", c);
		snprintf(version, 13, "%.12s", c);
		return;
	}
	/* "checksum*weight\n" per expert, in order: the same experts with
	 * the same weights give the same version. */
	XXH3_state_t *st = XXH3_createState();
	if (st == NULL) {
		ebm_log_error("out of memory hashing a composition");
		abort();
	}
	XXH3_128bits_reset(st);
	for (size_t i = 0; i < n; i++) {
		char line[80];
		int len = snprintf(line, sizeof(line), "%s*%.17g\n",
				ebm_model_checksum(ebm_product_model(p, i)),
				ebm_product_weight(p, i));
		XXH3_128bits_update(st, line, (size_t)len);
	}
	XXH128_canonical_t canon;
	XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(st));
	XXH3_freeState(st);
	for (size_t i = 0; i < sizeof(canon.digest); i++) {
		snprintf(checksum + 2 * i, 3, "%02x", canon.digest[i]);
	}
	snprintf(version, 13, "%.12s", checksum);
}

/* ======================================================================
 * Catalog
 * ==================================================================== */

struct ebm_http_catalog *ebm_http_catalog_create(
		const struct ebm_http_settings *settings,
		struct ebm_http_metrics *metrics)
{
	struct ebm_http_catalog *c = ebm_xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	c->settings = *settings;
	c->settings.token = settings->token != NULL
			? ebm_xstrdup(settings->token) : NULL;
	c->metrics = metrics;
	return c;
}

static void entry_finish(struct ebm_http_entry *e)
{
	ebm_http_drift_unref(e->drift);  /* monitor */
	ebm_product_destroy(e->product);
	for (size_t i = 0; i < e->n_models; i++) {
		ebm_http_model_unref(e->models[i]);
	}
	free(e->models);
	free(e->weights);
	ebm_http_schema_finish(&e->schema);
	free(e->names);
	free(e->info);
	free(e->name);
	memset(e, 0, sizeof(*e));
}

struct ebm_http_catalog *ebm_http_catalog_ref(struct ebm_http_catalog *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void ebm_http_catalog_unref(struct ebm_http_catalog *c)
{
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1) {
		return;
	}
	for (size_t i = 0; i < c->n_entries; i++) {
		entry_finish(&c->entries[i]);
	}
	free(c->entries);
	for (size_t i = 0; i < c->n_model_files; i++) {
		for (size_t j = 0; j < c->n_model_files; j++) {
			free(c->cross[i * c->cap + j]);
		}
	}
	free(c->cross);
	free(c->files);
	ebm_secret_free(c->settings.token);  /* not left in freed memory */
	free(c);
}

/* Linear: used only while building, before the entries are sorted. */
static struct ebm_http_entry *find_unsorted(struct ebm_http_catalog *c,
		const char *name)
{
	for (size_t i = 0; i < c->n_entries; i++) {
		if (strcmp(c->entries[i].name, name) == 0) {
			return &c->entries[i];
		}
	}
	return NULL;
}

/*
 * Completes a new entry whose name, models, weights and product are set:
 * schema, version, info text, counters. Appends it on success; on failure
 * releases what it holds.
 */
static bool finish_entry(struct ebm_http_catalog *c, struct ebm_http_entry *e,
		struct ebm_error *err)
{
	size_t d = ebm_product_n_features(e->product);
	if (d > 0 && ebm_product_feature_name(e->product, 0) != NULL) {
		e->names = ebm_alloc_array(d, sizeof(*e->names));
		if (e->names == NULL) {
			goto nomem;
		}
		for (size_t j = 0; j < d; j++) {
			e->names[j] = ebm_product_feature_name(e->product, j);
		}
	}
	if (!ebm_http_schema_init(&e->schema, d, e->names)) {
		goto nomem;
	}
	ebm_http_product_version(e->product, e->version, e->checksum);
	json_t *info = ebm_http_entry_info(e);
	if (info != NULL) {
		e->info = json_dumps(info, JSON_COMPACT | JSON_REAL_PRECISION(15));
		json_decref(info);
	}
	if (e->info == NULL) {
		goto nomem;
	}
	if (c->metrics != NULL) {
		e->stats = ebm_http_metrics_model(c->metrics, e->name);
		if (c->settings.drift_window > 0) {  /* monitor */
			e->drift = ebm_http_drift_attach(e->stats, e->product,
					e->version, c->settings.drift_window);
		}
	}
	c->entries = ebm_xrealloc(c->entries,
			(c->n_entries + 1) * sizeof(*c->entries));
	c->entries[c->n_entries++] = *e;
	return true;

nomem:
	entry_finish(e);
	ebm_error_set(err, EBM_STATUS_NOMEM, "out of memory");
	return false;
}

/* ======================================================================
 * Cached blocks of products (POST /v1/score)
 * ==================================================================== */

/* Room for one more model file in files[] and cross[]. */
static void grow_files(struct ebm_http_catalog *c)
{
	size_t n = c->n_model_files;
	if (n < c->cap) {
		return;
	}
	size_t cap = c->cap > 0 ? 2 * c->cap : 8;
	float **cross = ebm_xcalloc(cap * cap, sizeof(*cross));
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			cross[i * cap + j] = c->cross[i * c->cap + j];
		}
	}
	free(c->cross);
	c->cross = cross;
	c->files = ebm_xrealloc(c->files, cap * sizeof(*c->files));
	c->cap = cap;
}

/* Computes block (a, b) if it is missing and fits the budget. A block
 * that cannot be computed (a non-finite energy) stays missing: a product
 * that needs it computes it again and reports the error. */
static void cache_block(struct ebm_http_catalog *c, size_t a, size_t b,
		struct ebm_ctx *ctx)
{
	float **slot = &c->cross[a * c->cap + b];
	size_t n_ref = ebm_model_n_ref(c->files[b]);
	if (*slot != NULL || n_ref > EBM_HTTP_CROSS_MAX_FLOATS - c->cross_floats) {
		return;
	}
	float *e = ebm_alloc_array(n_ref, sizeof(float));
	if (e == NULL) {
		return;
	}
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_product_ref_block(c->files[a], c->files[b], ctx, e, &err)
			!= EBM_STATUS_OK) {
		ebm_log_debug("not caching the energies of one model on another's "
				"reference rows: %s", err.message);
		free(e);
		return;
	}
	*slot = e;
	c->cross_floats += n_ref;
}

/* The new file j: its own rows (a product of it alone with a weight other
 * than 1), then every earlier file it can compose with. */
static void cache_file(struct ebm_http_catalog *c, size_t j,
		struct ebm_ctx *ctx)
{
	cache_block(c, j, j, ctx);
	for (size_t i = 0; i < j; i++) {
		const struct ebm_model *pair[2] = { c->files[i], c->files[j] };
		if (ebm_product_check(pair, 2, NULL) != EBM_STATUS_OK) {
			continue;
		}
		cache_block(c, i, j, ctx);
		cache_block(c, j, i, ctx);
	}
}

/* The blocks of a product of files idx[0..n) (n * n pointers). */
static size_t blocks_of(const struct ebm_http_catalog *c, const size_t *idx,
		size_t n, const float **blocks)
{
	size_t missing = 0;
	for (size_t k = 0; k < n; k++) {
		for (size_t b = 0; b < n; b++) {
			blocks[k * n + b] = c->cross[idx[k] * c->cap + idx[b]];
			if (blocks[k * n + b] == NULL) {
				missing += ebm_model_n_ref(c->files[idx[b]]);
			}
		}
	}
	return missing;
}

bool ebm_http_catalog_product(const struct ebm_http_catalog *c,
		const struct ebm_http_entry *const *entries, const double *weights,
		size_t n, struct ebm_ctx *ctx, struct ebm_product **out,
		size_t *evals, struct ebm_http_error *e)
{
	*out = NULL;
	if (evals != NULL) {
		*evals = 0;
	}
	if (n == 0 || n > EBM_PRODUCT_MAX_MODELS) {
		return ebm_http_fail(e, 422, "invalid_models",
				"models: expected 1 to %u models, got %zu",
				EBM_PRODUCT_MAX_MODELS, n);
	}
	const struct ebm_model *models[EBM_PRODUCT_MAX_MODELS];
	size_t idx[EBM_PRODUCT_MAX_MODELS];
	size_t total = 0;
	for (size_t k = 0; k < n; k++) {
		models[k] = entries[k]->models[0]->model;
		idx[k] = entries[k]->file;
		total += ebm_model_n_ref(models[k]);
	}
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_product_check(models, n, &err) == EBM_STATUS_MISMATCH) {
		return ebm_http_fail(e, 422, "incompatible_models", "models: %s",
				err.message);
	}
	const float *blocks[EBM_PRODUCT_MAX_MODELS * EBM_PRODUCT_MAX_MODELS];
	size_t missing = blocks_of(c, idx, n, blocks);
	if (n == 1 && (weights == NULL || weights[0] == 1.0)) {
		missing = 0;   /* the model itself: its stored energies */
	}
	if (total > EBM_HTTP_ADHOC_MAX_REF || missing > EBM_HTTP_ADHOC_MAX_EVALS) {
		return ebm_http_fail(e, 422, "composition_too_large",
				"models: the product's reference set has %zu rows and "
				"needs %zu energies computed; an ad-hoc composition may "
				"have at most %zu and %zu (declare it as [compose.NAME] "
				"in the configuration instead)", total, missing,
				EBM_HTTP_ADHOC_MAX_REF, EBM_HTTP_ADHOC_MAX_EVALS);
	}
	enum ebm_status st = ebm_product_create_cached(models, weights, n,
			blocks, ctx, out, &err);
	if (evals != NULL) {
		*evals = missing;
	}
	if (st == EBM_STATUS_OK) {
		return true;
	}
	if (st == EBM_STATUS_MISMATCH) {
		return ebm_http_fail(e, 422, "incompatible_models", "models: %s",
				err.message);
	}
	if (st == EBM_STATUS_INVALID_ARGUMENT || st == EBM_STATUS_NUMERIC) {
		return ebm_http_fail(e, 422, "invalid_models", "models: %s",
				err.message);
	}
	ebm_log_error("building a product failed: %s", err.message);
	return ebm_http_fail(e, 500, "internal_error", "%s", err.message);
}

bool ebm_http_catalog_add_model(struct ebm_http_catalog *c,
		struct ebm_http_model *hm, struct ebm_ctx *ctx,
		struct ebm_error *err)
{
	if (find_unsorted(c, hm->name) != NULL) {
		ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"model '%s' is already served", hm->name);
		return false;
	}
	struct ebm_http_entry e = { 0 };
	const struct ebm_model *models[1] = { hm->model };
	if (ebm_product_create(models, NULL, 1, ctx, &e.product, err)
			!= EBM_STATUS_OK) {
		return false;
	}
	e.name = ebm_xstrdup(hm->name);
	e.n_models = 1;
	e.models = ebm_xmalloc(sizeof(*e.models));
	e.models[0] = ebm_http_model_ref(hm);
	e.weights = ebm_xmalloc(sizeof(*e.weights));
	e.weights[0] = 1.0;
	e.alpha = c->settings.has_alpha ? c->settings.alpha
			: ebm_http_float_value(ebm_model_alpha(hm->model));
	grow_files(c);
	e.file = c->n_model_files;
	if (!finish_entry(c, &e, err)) {
		return false;
	}
	c->files[c->n_model_files] = hm->model;
	cache_file(c, c->n_model_files, ctx);
	c->n_model_files++;
	return true;
}

bool ebm_http_catalog_add_composition(struct ebm_http_catalog *c,
		const char *name, const char *const *models, const double *weights,
		size_t n, double alpha, struct ebm_ctx *ctx, struct ebm_error *err)
{
	if (n == 0 || n > EBM_PRODUCT_MAX_MODELS) {
		ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"composition '%s': needs 1..%u models, has %zu", name,
				EBM_PRODUCT_MAX_MODELS, n);
		return false;
	}
	const struct ebm_http_entry *same = find_unsorted(c, name);
	if (same != NULL) {
		ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"composition '%s': the name is already served by %s", name,
				same->composition ? "another composition" : "a model file");
		return false;
	}
	struct ebm_http_entry e = { 0 };
	e.name = ebm_xstrdup(name);
	e.composition = true;
	e.models = ebm_xcalloc(n, sizeof(*e.models));
	e.weights = ebm_xmalloc(n * sizeof(*e.weights));
	const struct ebm_model *raw[EBM_PRODUCT_MAX_MODELS];
	size_t idx[EBM_PRODUCT_MAX_MODELS];
	double min_alpha = 1.0;
	for (size_t i = 0; i < n; i++) {
		const struct ebm_http_entry *m = find_unsorted(c, models[i]);
		if (m == NULL || m->composition) {
			ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
					"composition '%s': model '%s' is not loaded", name,
					models[i]);
			goto fail;
		}
		e.models[i] = ebm_http_model_ref(m->models[0]);
		e.n_models = i + 1;
		e.weights[i] = weights != NULL ? weights[i] : 1.0;
		raw[i] = m->models[0]->model;
		idx[i] = m->file;
		min_alpha = m->alpha < min_alpha ? m->alpha : min_alpha;
	}
	struct ebm_error perr;
	ebm_error_clear(&perr);
	const float *blocks[EBM_PRODUCT_MAX_MODELS * EBM_PRODUCT_MAX_MODELS];
	blocks_of(c, idx, n, blocks);
	if (ebm_product_create_cached(raw, e.weights, n, blocks, ctx, &e.product,
			&perr) != EBM_STATUS_OK) {
		ebm_error_set(err, perr.code, "composition '%s': %s", name,
				perr.message);
		goto fail;
	}
	e.alpha = alpha > 0.0 ? alpha : min_alpha;
	return finish_entry(c, &e, err);

fail:
	entry_finish(&e);
	return false;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct ebm_http_entry *)a)->name,
			((const struct ebm_http_entry *)b)->name);
}

void ebm_http_catalog_seal(struct ebm_http_catalog *c)
{
	if (c->n_entries > 1) {
		qsort(c->entries, c->n_entries, sizeof(*c->entries), cmp_entry);
	}
}

const struct ebm_http_entry *ebm_http_catalog_find(
		const struct ebm_http_catalog *c, const char *name)
{
	struct ebm_http_entry key = { .name = (char *)name };
	if (c->n_entries == 0) {
		return NULL;
	}
	return bsearch(&key, c->entries, c->n_entries, sizeof(*c->entries),
			cmp_entry);
}
