/*
 * info.c — the model info object (API.md section 2, "GET /v1/models/{name}")
 * built with jansson, as `inspect` prints it. Kept in one function so that
 * ebmd can serve exactly the same fields; callers choose the dump flags.
 * Dump with JSON_REAL_PRECISION(15) or less: floats from the file are
 * converted to their shortest decimal, which 17 digits would spoil again
 * (0.05 prints as 0.050000000000000003).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tool/tool.h"

bool ebm_tool_iso8601(uint64_t t, char buf[32])
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

char *ebm_tool_model_name(const char *path, char *buf, size_t size)
{
	const char *base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	size_t len = strlen(base);
	/* Like Python's Path.stem: a leading dot is not an extension. */
	const char *dot = strrchr(base, '.');
	if (dot != NULL && dot != base) {
		len = (size_t)(dot - base);
	}
	if (size == 0) {
		return buf;
	}
	len = len < size - 1 ? len : size - 1;
	memcpy(buf, base, len);
	buf[len] = '\0';
	return buf;
}

/* Adds key -> value; false (and value released) when jansson fails. */
static bool put(json_t *obj, const char *key, json_t *value)
{
	return value != NULL && json_object_set_new(obj, key, value) == 0;
}

/* {"key": "value", ...} from "key=value\n" lines; lines without '=' map
 * the whole line to "". */
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
	return ebm_tool_iso8601(t, buf) ? json_string(buf) : json_null();
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

json_t *ebm_tool_model_info_json(const struct ebm_model *m, const char *name)
{
	json_t *info = json_object();
	json_t *names = NULL;
	json_t *hidden = json_array();
	if (info == NULL || hidden == NULL) {
		goto fail;
	}

	size_t d = ebm_model_n_features(m);
	if (d > 0 && ebm_model_feature_name(m, 0) != NULL) {
		names = json_array();
		for (size_t j = 0; names != NULL && j < d; j++) {
			if (json_array_append_new(names,
					json_string(ebm_model_feature_name(m, j)))
					!= 0) {
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
				json_integer((json_int_t)ebm_model_hidden(m, l)))
				!= 0) {
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
			|| !put(info, "alpha",
				json_real(ebm_tool_float_value(ebm_model_alpha(m))))
			|| !put(info, "reference_size",
				json_integer((json_int_t)ebm_model_n_ref(m)))
			|| !put(info, "objective",
				json_string(ebm_model_objective(m)))
			|| !put(info, "hidden", json_incref(hidden))
			|| !put(info, "created", time_string(ebm_model_created(m)))
			|| !put(info, "checksum", json_string(checksum))
			|| !put(info, "loaded_at",
				time_string((uint64_t)time(NULL)))
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
