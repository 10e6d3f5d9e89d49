/*
 * info.c — the model-info object of GET /v1/models/{name} (API.md
 * section 2), built with jansson. The fields of a model file are those
 * `ebmd-train inspect` prints (src/tool/info.c, whose logic this follows;
 * http/ does not depend on the tool), except that `alpha` is the one in
 * force and `loaded_at` is when the daemon read the file.
 *
 * Dump the objects with JSON_REAL_PRECISION(15) or less: floats from the
 * file are converted to their shortest decimal first, which 17 digits
 * would spoil again (0.05 prints as 0.050000000000000003).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "http/http.h"

bool ebm_http_iso8601(uint64_t t, char buf[32])
{
	/* Year 9999 ends at 253402300799; beyond that ISO 8601 needs a sign. */
	if (t > 253402300799u) {
		return false;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL) {
		return false;
	}
	return strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

/* Adds key -> value; false (and value released) when jansson fails. */
static bool put(json_t *obj, const char *key, json_t *value)
{
	return value != NULL && json_object_set_new(obj, key, value) == 0;
}

/* {"key": "value", ...} from "key=value\n" lines. */
static json_t *options_object(const char *text)
{
	json_t *obj = json_object();
	if (obj == NULL) {
		return NULL;
	}
	const char *p = text != NULL ? text : "";
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t key_len = eq != NULL ? (size_t)(eq - p) : len;
		if (key_len > 0) {
			char key[256];
			key_len = key_len < sizeof(key) - 1 ? key_len
					: sizeof(key) - 1;
			memcpy(key, p, key_len);
			key[key_len] = '\0';
			json_t *v = eq != NULL
					? json_stringn(eq + 1, len - key_len - 1)
					: json_string("");
			if (!put(obj, key, v)) {
				json_decref(obj);
				return NULL;
			}
		}
		p += len;
		if (*p == '\n') {
			p++;
		}
	}
	return obj;
}

static json_t *time_string(uint64_t t)
{
	char buf[32];
	return ebm_http_iso8601(t, buf) ? json_string(buf) : json_null();
}

/* jansson integers are signed 64-bit: larger seeds become strings. */
static json_t *seed_value(uint64_t seed)
{
	if (seed <= (uint64_t)INT64_MAX) {
		return json_integer((json_int_t)seed);
	}
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRIu64, seed);
	return json_string(buf);
}

/* An array of the d names, or null. */
static json_t *names_value(const struct ebm_http_schema *s)
{
	if (s->names == NULL) {
		return json_null();
	}
	json_t *a = json_array();
	for (size_t j = 0; a != NULL && j < s->d; j++) {
		if (json_array_append_new(a, json_string(s->names[j])) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

json_t *ebm_http_model_info(const struct ebm_model *m, const char *name,
		double alpha, time_t loaded_at)
{
	json_t *info = json_object();
	json_t *hidden = json_array();
	json_t *names = NULL;
	if (info == NULL || hidden == NULL) {
		goto fail;
	}
	size_t d = ebm_model_n_features(m);
	if (d > 0 && ebm_model_feature_name(m, 0) != NULL) {
		names = json_array();
		for (size_t j = 0; names != NULL && j < d; j++) {
			if (json_array_append_new(names,
					json_string(ebm_model_feature_name(m, j))) != 0) {
				goto fail;
			}
		}
	} else {
		names = json_null();
	}
	if (names == NULL) {
		goto fail;
	}
	for (size_t l = 0; l < ebm_model_n_layers(m); l++) {
		if (json_array_append_new(hidden,
				json_integer((json_int_t)ebm_model_hidden(m, l))) != 0) {
			goto fail;
		}
	}
	const char *checksum = ebm_model_checksum(m);
	char version[13];
	snprintf(version, sizeof(version), "%.12s", checksum);

	/* The order of API.md first, then the extras. */
	if (!put(info, "name", json_string(name))
			|| !put(info, "version", json_string(version))
			|| !put(info, "features", json_integer((json_int_t)d))
			|| !put(info, "feature_names", json_incref(names))
			|| !put(info, "alpha", json_real(alpha))
			|| !put(info, "reference_size",
				json_integer((json_int_t)ebm_model_n_ref(m)))
			|| !put(info, "objective", json_string(ebm_model_objective(m)))
			|| !put(info, "hidden", json_incref(hidden))
			|| !put(info, "created", time_string(ebm_model_created(m)))
			|| !put(info, "checksum", json_string(checksum))
			|| !put(info, "loaded_at", time_string((uint64_t)loaded_at))
			|| !put(info, "members",
				json_integer((json_int_t)ebm_model_n_members(m)))
			|| !put(info, "activation",
				json_string(ebm_model_activation(m)))
			|| !put(info, "seed", seed_value(ebm_model_seed(m)))
			|| !put(info, "training_options",
				options_object(ebm_model_training_options(m)))) {
		goto fail;
	}
	json_decref(names);
	json_decref(hidden);
	return info;

fail:
	json_decref(names);
	json_decref(hidden);
	json_decref(info);
	return NULL;
}

/* A composition: its experts in "models" and "weights", "hidden" [],
 * "created" and "loaded_at" of its newest expert. */
static json_t *composition_info(const struct ebm_http_entry *e)
{
	json_t *info = json_object();
	json_t *models = json_array();
	json_t *weights = json_array();
	if (info == NULL || models == NULL || weights == NULL) {
		goto fail;
	}
	uint64_t created = 0;
	time_t loaded_at = 0;
	for (size_t i = 0; i < e->n_models; i++) {
		const struct ebm_http_model *hm = e->models[i];
		if (json_array_append_new(models, json_string(hm->name)) != 0
				|| json_array_append_new(weights,
					json_real(e->weights[i])) != 0) {
			goto fail;
		}
		uint64_t c = ebm_model_created(hm->model);
		created = c > created ? c : created;
		loaded_at = hm->loaded_at > loaded_at ? hm->loaded_at : loaded_at;
	}
	if (!put(info, "name", json_string(e->name))
			|| !put(info, "version", json_string(e->version))
			|| !put(info, "features", json_integer((json_int_t)e->schema.d))
			|| !put(info, "feature_names", names_value(&e->schema))
			|| !put(info, "alpha", json_real(e->alpha))
			|| !put(info, "reference_size",
				json_integer((json_int_t)ebm_product_n_ref(e->product)))
			|| !put(info, "objective", json_string("product"))
			|| !put(info, "hidden", json_array())
			|| !put(info, "created", time_string(created))
			|| !put(info, "checksum", json_string(e->checksum))
			|| !put(info, "loaded_at", time_string((uint64_t)loaded_at))
			|| !put(info, "models", json_incref(models))
			|| !put(info, "weights", json_incref(weights))) {
		goto fail;
	}
	json_decref(models);
	json_decref(weights);
	return info;

fail:
	json_decref(models);
	json_decref(weights);
	json_decref(info);
	return NULL;
}

json_t *ebm_http_entry_info(const struct ebm_http_entry *e)
{
	if (e->composition) {
		return composition_info(e);
	}
	const struct ebm_http_model *hm = e->models[0];
	return ebm_http_model_info(hm->model, e->name, e->alpha, hm->loaded_at);
}
