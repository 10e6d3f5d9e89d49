/*
 * model-info.c — the model-info object of API.md ("GET
 * /v1/models/{name}"), built with jansson, shared by `ebmd-train inspect`
 * and the daemon so the two can never disagree on a field.
 *
 * Dump the objects with JSON_REAL_PRECISION(15) or less: floats from the
 * file are converted to their shortest decimal first, which 17 digits
 * would spoil again (0.05 prints as 0.050000000000000003).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "info/info.h"
#include "util/util.h"

bool ebm_info_iso8601(uint64_t t, char buf[32])
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

bool ebm_info_put(json_t *obj, const char *key, json_t *value)
{
	return value != NULL && json_object_set_new(obj, key, value) == 0;
}

/*
 * A value as shown: files written before options were stored in shortest
 * form hold floats as %.9g ("lr=0.00100000005"); a value that is a
 * decimal with a point or an exponent and reads back completely as a
 * finite float is shown as that float's shortest text ("0.001"), the
 * text a file written today holds. Anything else (integers, seeds,
 * "256,256", names) is shown as stored.
 */
static json_t *option_value(const char *v, size_t len)
{
	char text[64];
	bool decimal = len > 0 && len < sizeof(text);
	for (size_t i = 0; decimal && i < len; i++) {
		char c = v[i];
		decimal = (c >= '0' && c <= '9') || c == '.' || c == 'e'
				|| c == 'E' || c == '-' || c == '+';
	}
	if (decimal && (memchr(v, '.', len) != NULL || memchr(v, 'e', len)
			!= NULL || memchr(v, 'E', len) != NULL)) {
		memcpy(text, v, len);
		text[len] = '\0';
		char *end;
		float f = strtof(text, &end);
		if (end == text + len && isfinite(f)) {
			char shortest[32];
			ebm_shortest_float(shortest, sizeof(shortest), f);
			return json_string(shortest);
		}
	}
	return json_stringn(v, len);
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
					? option_value(eq + 1, len - key_len - 1)
					: json_string("");
			if (!ebm_info_put(obj, key, v)) {
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

json_t *ebm_info_time(uint64_t t)
{
	char buf[32];
	return ebm_info_iso8601(t, buf) ? json_string(buf) : json_null();
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

json_t *ebm_info_model(const struct ebm_model *m, const char *name,
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
	if (!ebm_info_put(info, "name", json_string(name))
			|| !ebm_info_put(info, "version", json_string(version))
			|| !ebm_info_put(info, "features", json_integer((json_int_t)d))
			|| !ebm_info_put(info, "feature_names", json_incref(names))
			|| !ebm_info_put(info, "alpha", json_real(alpha))
			|| !ebm_info_put(info, "reference_size",
				json_integer((json_int_t)ebm_model_n_ref(m)))
			|| !ebm_info_put(info, "objective", json_string(ebm_model_objective(m)))
			|| !ebm_info_put(info, "hidden", json_incref(hidden))
			|| !ebm_info_put(info, "created", ebm_info_time(ebm_model_created(m)))
			|| !ebm_info_put(info, "checksum", json_string(checksum))
			|| !ebm_info_put(info, "loaded_at", ebm_info_time((uint64_t)loaded_at))
			|| !ebm_info_put(info, "members",
				json_integer((json_int_t)ebm_model_n_members(m)))
			|| !ebm_info_put(info, "activation",
				json_string(ebm_model_activation(m)))
			|| !ebm_info_put(info, "seed", seed_value(ebm_model_seed(m)))
			|| !ebm_info_put(info, "training_options",
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
