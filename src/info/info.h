/*
 * info.h — the model-info JSON object (API.md section 2) for both
 * binaries: `ebmd-train inspect` and ebmd's GET /v1/models/{name}.
 */
#ifndef EBM_INFO_INFO_H
#define EBM_INFO_INFO_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "ebm/model.h"

/* "2026-01-31T12:00:00Z"; false when t does not fit ISO 8601 years. */
bool ebm_info_iso8601(uint64_t t, char buf[32]);
/* A JSON string of ebm_info_iso8601(t), or null. New reference. */
json_t *ebm_info_time(uint64_t t);
/* Adds key -> value (stolen); false, value released, when jansson fails
 * or value is NULL. */
bool ebm_info_put(json_t *obj, const char *key, json_t *value);

/*
 * The model-info object of a model file: the fields of API.md first
 * (name, version, features, feature_names, alpha, reference_size,
 * objective, hidden, created, checksum, loaded_at), then members,
 * activation, seed, training_options. alpha is the one in force. A new
 * reference (caller decrefs), or NULL when jansson fails.
 */
json_t *ebm_info_model(const struct ebm_model *m, const char *name,
		double alpha, time_t loaded_at);

#endif
