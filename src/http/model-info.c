/*
 * model-info.c — the info object of a served entry (GET /v1/models/{name}):
 * a model file's comes from src/info/ (the same as `ebmd-train inspect`
 * prints, with the alpha in force and the daemon's load time), a
 * composition's is built here.
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
#include "info/info.h"

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
	if (!ebm_info_put(info, "name", json_string(e->name))
			|| !ebm_info_put(info, "version", json_string(e->version))
			|| !ebm_info_put(info, "features", json_integer((json_int_t)e->schema.d))
			|| !ebm_info_put(info, "feature_names", names_value(&e->schema))
			|| !ebm_info_put(info, "alpha", json_real(e->alpha))
			|| !ebm_info_put(info, "reference_size",
				json_integer((json_int_t)ebm_product_n_ref(e->product)))
			|| !ebm_info_put(info, "objective", json_string("product"))
			|| !ebm_info_put(info, "hidden", json_array())
			|| !ebm_info_put(info, "created", ebm_info_time(created))
			|| !ebm_info_put(info, "checksum", json_string(e->checksum))
			|| !ebm_info_put(info, "loaded_at", ebm_info_time((uint64_t)loaded_at))
			|| !ebm_info_put(info, "models", json_incref(models))
			|| !ebm_info_put(info, "weights", json_incref(weights))) {
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
	return ebm_info_model(hm->model, e->name, e->alpha, hm->loaded_at);
}
