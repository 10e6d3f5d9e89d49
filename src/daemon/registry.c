/*
 * registry.c — the set of served models and compositions: scans the
 * models directory, loads and fully validates new or changed files, and
 * builds a catalog (http.h) off to the side, which main.c then publishes.
 *
 * The registry remembers the model files of the previous load with their
 * identity (device, inode, size, mtime): a file whose identity did not
 * change is shared with the new catalog instead of being read again; a
 * file that fails to load keeps its previous version serving. Loading a
 * file means ebm_model_load_file(), which checks every count, offset,
 * float and the checksum, so a truncated or half-written file is refused
 * before it can replace anything.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "daemon/daemon.h"
#include "util/util.h"

#define SUFFIX ".ebm"
#define SUFFIX_LEN (sizeof(SUFFIX) - 1)

/* A name with a string: why a file did not load, or an unloaded name. */
struct note {
	char *name;
	char *text;
};

struct note_list {
	size_t n;
	struct note *v;
};

struct ebmd_registry {
	struct ebm_http_metrics *metrics;   /* may be NULL */
	struct ebm_ctx *ctx;                /* scratch for products */
	size_t n_models;
	struct ebm_http_model **models;     /* previous load, references */
	struct note_list failed;            /* last load attempt's failures */
	struct note_list unloaded;          /* /v2 unload, until the next load */
};

static struct note *note_find(struct note_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].name, name) == 0) {
			return &l->v[i];
		}
	}
	return NULL;
}

static void note_drop(struct note_list *l, const char *name)
{
	struct note *n = note_find(l, name);
	if (n != NULL) {
		free(n->name);
		free(n->text);
		*n = l->v[--l->n];
	}
}

static void note_set(struct note_list *l, const char *name, const char *text)
{
	note_drop(l, name);
	l->v = ebm_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n].name = ebm_xstrdup(name);
	l->v[l->n].text = ebm_xstrdup(text);
	l->n++;
}

static void note_clear(struct note_list *l)
{
	while (l->n > 0) {
		note_drop(l, l->v[0].name);
	}
	free(l->v);
	l->v = NULL;
}

struct ebmd_registry *ebmd_registry_create(struct ebm_http_metrics *metrics)
{
	struct ebmd_registry *r = ebm_xcalloc(1, sizeof(*r));
	r->metrics = metrics;
	r->ctx = ebm_ctx_create();
	return r;
}

static void drop_models(struct ebm_http_model **models, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ebm_http_model_unref(models[i]);
	}
	free(models);
}

void ebmd_registry_destroy(struct ebmd_registry *r)
{
	if (r == NULL) {
		return;
	}
	drop_models(r->models, r->n_models);
	note_clear(&r->failed);
	note_clear(&r->unloaded);
	ebm_ctx_destroy(r->ctx);
	free(r);
}

/* ======================================================================
 * Files
 * ==================================================================== */

static struct ebm_http_model *find_previous(const struct ebmd_registry *r,
		const char *name)
{
	for (size_t i = 0; i < r->n_models; i++) {
		if (strcmp(r->models[i]->name, name) == 0) {
			return r->models[i];
		}
	}
	return NULL;
}

static bool same_identity(const struct ebm_http_model *hm,
		const struct stat *st)
{
	return hm->dev == (uint64_t)st->st_dev
			&& hm->ino == (uint64_t)st->st_ino
			&& hm->size == (uint64_t)st->st_size
			&& hm->mtime.tv_sec == st->st_mtim.tv_sec
			&& hm->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void set_identity(struct ebm_http_model *hm, const struct stat *st)
{
	hm->dev = (uint64_t)st->st_dev;
	hm->ino = (uint64_t)st->st_ino;
	hm->size = (uint64_t)st->st_size;
	hm->mtime = st->st_mtim;
}

/* "web.ebm" -> "web"; false for hidden files, other suffixes, ".ebm". */
static bool model_stem(const char *file, char *stem, size_t size)
{
	size_t len = strlen(file);
	if (file[0] == '.' || len <= SUFFIX_LEN
			|| strcmp(file + len - SUFFIX_LEN, SUFFIX) != 0
			|| len - SUFFIX_LEN >= size) {
		return false;
	}
	memcpy(stem, file, len - SUFFIX_LEN);
	stem[len - SUFFIX_LEN] = '\0';
	return true;
}

/*
 * The model to serve under `stem` from `path`: the previous one when the
 * file is unchanged, else a fresh load; on a failed load the previous one
 * (if any). NULL when there is nothing to serve. Counts load attempts.
 */
static struct ebm_http_model *load_one(struct ebmd_registry *r,
		const char *stem, const char *path, size_t *n_errors)
{
	struct ebm_http_model *prev = find_previous(r, stem);
	struct stat st;
	if (stat(path, &st) != 0) {
		int e = errno;
		ebm_log_error("model '%s': %s: %s%s", stem, path, strerror(e),
				prev != NULL ? "; keeping the version loaded before" : "");
		char why[512];
		snprintf(why, sizeof(why), "%s: %s", path, strerror(e));
		note_set(&r->failed, stem, why);
		(*n_errors)++;
		return prev != NULL ? ebm_http_model_ref(prev) : NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		ebm_log_debug("%s: not a regular file, skipped", path);
		note_set(&r->failed, stem, "not a regular file");
		return NULL;
	}
	note_drop(&r->failed, stem);
	if (prev != NULL && same_identity(prev, &st)) {
		return ebm_http_model_ref(prev);
	}
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ebm_error_clear(&err);
	enum ebm_status rc = ebm_model_load_file(path, &m, &err);
	ebm_http_metrics_reload(r->metrics, rc == EBM_STATUS_OK);
	if (rc != EBM_STATUS_OK) {
		if (prev != NULL) {
			ebm_log_error("model '%s': %s; keeping version %.12s",
					stem, err.message, ebm_model_checksum(prev->model));
		} else {
			ebm_log_error("model '%s': %s; not served", stem, err.message);
		}
		note_set(&r->failed, stem, err.message);
		(*n_errors)++;
		return prev != NULL ? ebm_http_model_ref(prev) : NULL;
	}
	struct ebm_http_model *hm = ebm_http_model_create(m, stem, path);
	/* If the file changed while it was read, leave its identity unknown
	 * so that the next load reads it again. */
	struct stat after;
	if (stat(path, &after) == 0 && after.st_ino == st.st_ino
			&& after.st_size == st.st_size
			&& after.st_mtim.tv_sec == st.st_mtim.tv_sec
			&& after.st_mtim.tv_nsec == st.st_mtim.tv_nsec) {
		set_identity(hm, &st);
	}
	ebm_log_info("model '%s': loaded %s (version %.12s, %zu features, "
			"%zu reference rows)%s", stem, path, ebm_model_checksum(m),
			ebm_model_n_features(m), ebm_model_n_ref(m),
			prev != NULL ? ", replacing the previous version" : "");
	return hm;
}

static int cmp_model(const void *a, const void *b)
{
	const struct ebm_http_model *x = *(const struct ebm_http_model *const *)a;
	const struct ebm_http_model *y = *(const struct ebm_http_model *const *)b;
	return strcmp(x->name, y->name);
}

/* The new list of files into *out (references); false if the directory
 * cannot be read (then *out is empty). */
static bool scan(struct ebmd_registry *r, const char *dir,
		struct ebm_http_model ***out, size_t *n_out, size_t *n_errors)
{
	*out = NULL;
	*n_out = 0;
	DIR *d = opendir(dir);
	if (d == NULL) {
		int e = errno;
		ebm_log_error("models directory '%s': %s", dir, strerror(e));
		(*n_errors)++;
		return false;
	}
	size_t cap = 0;
	struct dirent *de;
	for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
		char stem[EBM_MODEL_MAX_NAME + 1];
		if (!model_stem(de->d_name, stem, sizeof(stem))) {
			continue;
		}
		if (!ebm_http_utf8_valid(stem)) {
			/* Names are reported in JSON, which is UTF-8. */
			ebm_log_error("%s/%s: the file name is not valid UTF-8; not "
					"served", dir, de->d_name);
			(*n_errors)++;
			continue;
		}
		size_t len = strlen(dir) + strlen(de->d_name) + 2;
		char *path = ebm_xmalloc(len);
		snprintf(path, len, "%s/%s", dir, de->d_name);
		struct ebm_http_model *hm = load_one(r, stem, path, n_errors);
		free(path);
		if (hm == NULL) {
			continue;
		}
		if (*n_out == cap) {
			cap = cap > 0 ? 2 * cap : 16;
			*out = ebm_xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[(*n_out)++] = hm;
	}
	if (errno != 0) {
		ebm_log_error("models directory '%s': %s", dir, strerror(errno));
		(*n_errors)++;
	}
	closedir(d);
	if (*n_out > 1) {
		qsort(*out, *n_out, sizeof(**out), cmp_model);
	}
	return true;
}

/* ======================================================================
 * Catalog
 * ==================================================================== */

/* A catalog of r->models (less the unloaded) and the compositions. */
static struct ebm_http_catalog *build(struct ebmd_registry *r,
		const struct ebm_conf *conf, const char *token, size_t *n_errors)
{
	struct ebm_http_settings settings = {
		.token = (char *)token,
		.max_rows = conf->max_rows,
		.has_alpha = conf->has_alpha,
		.alpha = conf->alpha,
		.drift_window = conf->monitor_window,
		.drift_alpha = conf->drift_alpha,
		.ui = conf->ui,
	};
	struct ebm_http_catalog *c = ebm_http_catalog_create(&settings,
			r->metrics);
	for (size_t i = 0; i < r->n_models; i++) {
		if (note_find(&r->unloaded, r->models[i]->name) != NULL) {
			continue;
		}
		struct ebm_error err;
		ebm_error_clear(&err);
		if (!ebm_http_catalog_add_model(c, r->models[i], r->ctx, &err)) {
			ebm_log_error("model '%s': %s; not served", r->models[i]->name,
					err.message);
			(*n_errors)++;
		}
	}
	for (size_t i = 0; i < conf->n_compose; i++) {
		const struct ebm_conf_compose *k = &conf->compose[i];
		struct ebm_error err;
		ebm_error_clear(&err);
		if (!ebm_http_catalog_add_composition(c, k->name,
				(const char *const *)k->models, k->weights, k->n_models,
				k->has_alpha ? k->alpha : -1.0, r->ctx, &err)) {
			ebm_log_error("%s:%u: [compose.%s]: %s; not served",
					conf->origin != NULL ? conf->origin : "config", k->line,
					k->name, err.message);
			(*n_errors)++;
		}
	}
	ebm_http_catalog_seal(c);
	return c;
}

struct ebm_http_catalog *ebmd_registry_load(struct ebmd_registry *r,
		const struct ebm_conf *conf, const char *token, size_t *n_errors)
{
	*n_errors = 0;
	/* A reload serves again what /v2 unloaded; failures are those of this
	 * scan. */
	note_clear(&r->unloaded);
	note_clear(&r->failed);
	struct ebm_http_model **models;
	size_t n_models;
	if (!scan(r, conf->models_dir, &models, &n_models, n_errors)) {
		/* Unreadable directory: keep serving what was there. */
		models = r->n_models > 0
				? ebm_xmalloc(r->n_models * sizeof(*models)) : NULL;
		for (size_t i = 0; i < r->n_models; i++) {
			models[i] = ebm_http_model_ref(r->models[i]);
		}
		n_models = r->n_models;
	}
	drop_models(r->models, r->n_models);
	r->models = models;
	r->n_models = n_models;
	return build(r, conf, token, n_errors);
}

/* ======================================================================
 * One file at a time: the model repository of /v2
 * ==================================================================== */

struct ebm_http_catalog *ebmd_registry_load_file(struct ebmd_registry *r,
		const struct ebm_conf *conf, const char *token, const char *name,
		char *why, size_t why_size)
{
	char file[EBM_MODEL_MAX_NAME + SUFFIX_LEN + 2];
	char stem[EBM_MODEL_MAX_NAME + 1];
	snprintf(file, sizeof(file), "%s" SUFFIX, name);
	if (strchr(name, '/') != NULL || strlen(name) > EBM_MODEL_MAX_NAME
			|| !model_stem(file, stem, sizeof(stem))
			|| !ebm_http_utf8_valid(name)) {
		snprintf(why, why_size, "'%.128s' cannot name a model file", name);
		return NULL;
	}
	size_t len = strlen(conf->models_dir) + strlen(file) + 2;
	char *path = ebm_xmalloc(len);
	snprintf(path, len, "%s/%s", conf->models_dir, file);
	size_t n_errors = 0;
	note_drop(&r->failed, stem);
	struct ebm_http_model *prev = find_previous(r, stem);
	struct ebm_http_model *hm = load_one(r, stem, path, &n_errors);
	free(path);
	const struct note *failure = note_find(&r->failed, stem);
	if (failure != NULL || hm == NULL) {
		snprintf(why, why_size, "model '%s': %s%s", stem, failure != NULL
				? failure->text : "not loaded", prev != NULL
				? "; the version loaded before keeps serving" : "");
		ebm_http_model_unref(hm);
		return NULL;
	}
	if (prev != NULL) {
		for (size_t i = 0; i < r->n_models; i++) {
			if (r->models[i] == prev) {
				ebm_http_model_unref(prev);
				r->models[i] = hm;
			}
		}
	} else {
		r->models = ebm_xrealloc(r->models,
				(r->n_models + 1) * sizeof(*r->models));
		r->models[r->n_models++] = hm;
		qsort(r->models, r->n_models, sizeof(*r->models), cmp_model);
	}
	note_drop(&r->unloaded, stem);
	return build(r, conf, token, &n_errors);
}

struct ebm_http_catalog *ebmd_registry_unload(struct ebmd_registry *r,
		const struct ebm_conf *conf, const char *token, const char *name)
{
	if (find_previous(r, name) == NULL
			|| note_find(&r->unloaded, name) != NULL) {
		return NULL;
	}
	note_set(&r->unloaded, name, "unloaded");
	size_t n_errors = 0;
	return build(r, conf, token, &n_errors);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void ebmd_registry_index(struct ebmd_registry *r, const struct ebm_conf *conf,
		struct ebm_http_buf *out)
{
	char **names = NULL;
	size_t n = 0;
	DIR *d = opendir(conf->models_dir);
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		char stem[EBM_MODEL_MAX_NAME + 1];
		if (model_stem(de->d_name, stem, sizeof(stem))
				&& ebm_http_utf8_valid(stem)) {
			names = ebm_xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = ebm_xstrdup(stem);
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	/* Served files whose file has gone are still listed: they serve. */
	for (size_t i = 0; i < r->n_models; i++) {
		bool listed = false;
		for (size_t k = 0; k < n && !listed; k++) {
			listed = strcmp(names[k], r->models[i]->name) == 0;
		}
		if (!listed) {
			names = ebm_xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = ebm_xstrdup(r->models[i]->name);
		}
	}
	if (n > 1) {
		qsort(names, n, sizeof(*names), cmp_str);
	}
	ebm_http_buf_add(out, "[", 1);
	for (size_t k = 0; k < n; k++) {
		const struct ebm_http_model *hm = find_previous(r, names[k]);
		const struct note *unloaded = note_find(&r->unloaded, names[k]);
		const struct note *failed = note_find(&r->failed, names[k]);
		bool ready = hm != NULL && unloaded == NULL;
		ebm_http_buf_puts(out, k > 0 ? ",{\"name\":" : "{\"name\":");
		ebm_http_buf_json_string(out, names[k]);
		ebm_http_buf_puts(out, ",\"version\":");
		char version[13] = "";
		if (hm != NULL) {
			snprintf(version, sizeof(version), "%.12s",
					ebm_model_checksum(hm->model));
		}
		ebm_http_buf_json_string(out, version);
		ebm_http_buf_puts(out, ready ? ",\"state\":\"READY\""
				: ",\"state\":\"UNAVAILABLE\"");
		ebm_http_buf_puts(out, ",\"reason\":");
		ebm_http_buf_json_string(out, failed != NULL ? failed->text
				: unloaded != NULL ? "unloaded"
				: hm == NULL ? "not loaded yet" : "");
		ebm_http_buf_add(out, "}", 1);
		free(names[k]);
	}
	ebm_http_buf_add(out, "]", 1);
	free(names);
}
