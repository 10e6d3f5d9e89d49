/*
 * v2.c — the Open Inference Protocol (KServe V2 REST) of API.md section 5:
 * its routes, its metadata and infer answers, and its error shape
 * {"error": "<what and where>"}. routes.c routes here and applies the
 * same head precedence as for /v1 (404 path, 405, 401, 503); the body of
 * an infer request is decoded by tensor.c (413, 415, 400), the model is
 * looked up (404), then checked against the model (422), and scored by
 * the one scoring function /v1 uses (ebm_http_score), so the numbers are
 * those of /v1/models/{name}/score, bit for bit.
 *
 * Outputs go back as JSON data, or as raw little-endian bytes after the
 * JSON header (binary tensor data extension) when asked for.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config.h"
#include "http/http.h"
#include "util/util.h"

#define CT_JSON "application/json"
#define CT_BINARY "application/octet-stream"

/* ======================================================================
 * Routes
 * ==================================================================== */

bool ebm_http_v2_endpoint(enum ebm_http_endpoint ep)
{
	return ep >= EBM_HTTP_EP_V2_LIVE && ep <= EBM_HTTP_EP_V2_REPO_UNLOAD;
}

/* The decoded segment at *p (up to the next '/'), advancing *p; NULL when
 * empty or out of memory. A %00 leaves it unmatchable (""). */
static char *segment(const char **p)
{
	const char *s = *p;
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (n == 0) {
		return NULL;
	}
	char *raw = malloc(n + 1);
	if (raw == NULL) {
		return NULL;
	}
	memcpy(raw, s, n);
	raw[n] = '\0';
	size_t len = 0;
	char *out = evhttp_uridecode(raw, 0, &len);
	free(raw);
	if (out != NULL && strlen(out) != len) {
		out[0] = '\0';
	}
	*p = s + n;
	return out;
}

static bool skip(const char **p, const char *lit)
{
	size_t n = strlen(lit);
	if (strncmp(*p, lit, n) != 0) {
		return false;
	}
	*p += n;
	return true;
}

bool ebm_http_v2_match(const char *path, enum ebm_http_endpoint *ep,
		char **name, char **version)
{
	*name = NULL;
	*version = NULL;
	if (strcmp(path, "/v2") == 0) {
		*ep = EBM_HTTP_EP_V2_SERVER;
		return true;
	}
	if (strcmp(path, "/v2/health/live") == 0) {
		*ep = EBM_HTTP_EP_V2_LIVE;
		return true;
	}
	if (strcmp(path, "/v2/health/ready") == 0) {
		*ep = EBM_HTTP_EP_V2_READY;
		return true;
	}
	if (strcmp(path, "/v2/repository/index") == 0) {
		*ep = EBM_HTTP_EP_V2_REPO_INDEX;
		return true;
	}
	const char *p = path;
	if (skip(&p, "/v2/repository/models/")) {
		*name = segment(&p);
		if (*name != NULL && strcmp(p, "/load") == 0) {
			*ep = EBM_HTTP_EP_V2_REPO_LOAD;
			return true;
		}
		if (*name != NULL && strcmp(p, "/unload") == 0) {
			*ep = EBM_HTTP_EP_V2_REPO_UNLOAD;
			return true;
		}
	} else if (skip(&p, "/v2/models/")) {
		*name = segment(&p);
		if (*name != NULL && skip(&p, "/versions/")) {
			*version = segment(&p);
			if (*version == NULL) {
				goto no;
			}
		}
		if (*name != NULL && *p == '\0') {
			*ep = EBM_HTTP_EP_V2_MODEL;
			return true;
		}
		if (*name != NULL && strcmp(p, "/ready") == 0) {
			*ep = EBM_HTTP_EP_V2_MODEL_READY;
			return true;
		}
		if (*name != NULL && strcmp(p, "/infer") == 0) {
			*ep = EBM_HTTP_EP_V2_INFER;
			return true;
		}
	}
no:
	free(*name);
	free(*version);
	*name = NULL;
	*version = NULL;
	return false;
}

void ebm_http_v2_encode_error(struct ebm_http_buf *b,
		const struct ebm_http_error *e)
{
	ebm_http_buf_reset(b);
	ebm_http_buf_puts(b, "{\"error\":");
	ebm_http_buf_json_string(b, e->message);
	ebm_http_buf_puts(b, "}\n");
}

/* ======================================================================
 * Health and metadata
 * ==================================================================== */

static int json_reply(struct ebm_http_worker *w, struct evhttp_request *req,
		int status)
{
	return ebm_http_reply(w, req, status, CT_JSON);
}

static int get_ready(struct ebm_http_worker *w, struct evhttp_request *req)
{
	ebm_http_buf_reset(&w->out);
	if (w->draining || ebm_http_server_stopping(w->server)) {
		ebm_http_buf_puts(&w->out, "{\"ready\":false}\n");
		return json_reply(w, req, 503);
	}
	struct ebm_http_catalog *c = ebm_http_server_acquire(w->server);
	size_t n = c != NULL ? c->n_model_files : 0;
	ebm_http_catalog_unref(c);
	ebm_http_buf_puts(&w->out, n > 0 ? "{\"ready\":true}\n"
			: "{\"ready\":false}\n");
	return json_reply(w, req, n > 0 ? 200 : 400);
}

static int get_server(struct ebm_http_worker *w, struct evhttp_request *req)
{
	ebm_http_buf_reset(&w->out);
	ebm_http_buf_puts(&w->out, "{\"name\":\"ebmd\",\"version\":");
	ebm_http_buf_json_string(&w->out, EBMD_VERSION);
	ebm_http_buf_puts(&w->out, ",\"extensions\":[\"binary_tensor_data\","
			"\"model_repository\",\"parameters\"]}\n");
	return json_reply(w, req, 200);
}

/* The served entry for {name} and {version}, or NULL with the 404 in e. */
static const struct ebm_http_entry *find(const struct ebm_http_catalog *c,
		const char *name, const char *version, struct ebm_http_error *e)
{
	const struct ebm_http_entry *entry = ebm_http_catalog_find(c, name);
	if (entry == NULL) {
		ebm_http_fail(e, 404, "unknown_model", "model '%.128s' not found",
				name);
		return NULL;
	}
	if (version != NULL && strcmp(version, entry->version) != 0) {
		ebm_http_fail(e, 404, "unknown_version", "model '%.128s' has no "
				"version '%.64s' (it serves version '%s')", name, version,
				entry->version);
		return NULL;
	}
	return entry;
}

/* A decimal integer without printf (the infer reply writes several). */
static void put_int(struct ebm_http_buf *b, long long v)
{
	char digits[24];
	size_t i = sizeof(digits);
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v
			: (unsigned long long)v;
	do {
		digits[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0) {
		digits[--i] = '-';
	}
	ebm_http_buf_add(b, digits + i, sizeof(digits) - i);
}

static void put_shape(struct ebm_http_buf *b, long long n, long long d)
{
	ebm_http_buf_puts(b, "\"shape\":[");
	put_int(b, n);
	if (d >= 0) {
		ebm_http_buf_add(b, ",", 1);
		put_int(b, d);
	}
	ebm_http_buf_add(b, "]", 1);
}

static void put_tensor_meta(struct ebm_http_buf *b, const char *name,
		const char *datatype, long long n, long long d)
{
	ebm_http_buf_printf(b, "{\"name\":\"%s\",\"datatype\":\"%s\",", name,
			datatype);
	put_shape(b, n, d);
	ebm_http_buf_add(b, "}", 1);
}

static int get_model(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_entry *entry)
{
	struct ebm_http_buf *b = &w->out;
	long long d = (long long)entry->schema.d;
	ebm_http_buf_reset(b);
	ebm_http_buf_puts(b, "{\"name\":");
	ebm_http_buf_json_string(b, entry->name);
	ebm_http_buf_puts(b, ",\"versions\":[");
	ebm_http_buf_json_string(b, entry->version);
	ebm_http_buf_puts(b, "],\"platform\":\"ebmd\",\"inputs\":[");
	put_tensor_meta(b, "input", "FP32", -1, d);
	ebm_http_buf_puts(b, "],\"outputs\":[");
	put_tensor_meta(b, "energy", "FP32", -1, -1);
	ebm_http_buf_add(b, ",", 1);
	put_tensor_meta(b, "score", "FP32", -1, -1);
	ebm_http_buf_add(b, ",", 1);
	put_tensor_meta(b, "p_value", "FP64", -1, -1);
	ebm_http_buf_add(b, ",", 1);
	put_tensor_meta(b, "anomaly", "BOOL", -1, -1);
	ebm_http_buf_add(b, ",", 1);
	put_tensor_meta(b, "contributions", "FP32", -1, d);
	ebm_http_buf_puts(b, "],\"parameters\":{\"alpha\":");
	ebm_http_buf_json_double(b, entry->alpha);
	ebm_http_buf_printf(b, ",\"reference_size\":%zu}}\n",
			ebm_product_n_ref(entry->product));
	return json_reply(w, req, 200);
}

static int get_model_ready(struct ebm_http_worker *w,
		struct evhttp_request *req, const struct ebm_http_entry *entry)
{
	ebm_http_buf_reset(&w->out);
	ebm_http_buf_puts(&w->out, "{\"name\":");
	ebm_http_buf_json_string(&w->out, entry->name);
	ebm_http_buf_puts(&w->out, ",\"ready\":true}\n");
	return json_reply(w, req, 200);
}

/* ======================================================================
 * Infer
 * ==================================================================== */

enum output { OUT_ENERGY, OUT_SCORE, OUT_P_VALUE, OUT_ANOMALY,
	OUT_CONTRIBUTIONS, OUT_COUNT };

static const char *const out_names[OUT_COUNT] = {
	"energy", "score", "p_value", "anomaly", "contributions",
};
static const char *const out_types[OUT_COUNT] = {
	"FP32", "FP32", "FP64", "BOOL", "FP32",
};
static const size_t out_sizes[OUT_COUNT] = { 4, 4, 8, 1, 4 };

static enum output output_of(const char *name)
{
	for (int k = 0; k < OUT_COUNT; k++) {
		if (strcmp(name, out_names[k]) == 0) {
			return (enum output)k;
		}
	}
	return OUT_ENERGY;  /* tensor.c admitted only the five names */
}

static void put_le32(unsigned char *o, uint32_t u)
{
	o[0] = (unsigned char)u;
	o[1] = (unsigned char)(u >> 8);
	o[2] = (unsigned char)(u >> 16);
	o[3] = (unsigned char)(u >> 24);
}

/* The raw bytes of one output, appended to b a chunk at a time. */
static void put_binary(struct ebm_http_buf *b, enum output k,
		const struct ebm_score *s, const float *contrib, size_t n, size_t d)
{
	size_t count = k == OUT_CONTRIBUTIONS ? n * d : n;
	unsigned char chunk[4096];
	size_t used = 0;
	for (size_t i = 0; i < count; i++) {
		uint32_t u;
		uint64_t v;
		unsigned char *o = chunk + used;
		switch (k) {
		case OUT_ENERGY:
			memcpy(&u, &s[i].energy, 4);
			put_le32(o, u);
			break;
		case OUT_SCORE:
			memcpy(&u, &s[i].score, 4);
			put_le32(o, u);
			break;
		case OUT_P_VALUE:
			memcpy(&v, &s[i].p_value, 8);
			put_le32(o, (uint32_t)v);
			put_le32(o + 4, (uint32_t)(v >> 32));
			break;
		case OUT_ANOMALY:
			o[0] = s[i].anomaly ? 1 : 0;
			break;
		default:
			memcpy(&u, &contrib[i], 4);
			put_le32(o, u);
			break;
		}
		used += out_sizes[k];
		if (used + 8 > sizeof(chunk)) {
			ebm_http_buf_add(b, (const char *)chunk, used);
			used = 0;
		}
	}
	ebm_http_buf_add(b, (const char *)chunk, used);
}

static void put_json_data(struct ebm_http_buf *b, enum output k,
		const struct ebm_score *s, const float *contrib, size_t n, size_t d)
{
	size_t count = k == OUT_CONTRIBUTIONS ? n * d : n;
	ebm_http_buf_puts(b, "\"data\":[");
	for (size_t i = 0; i < count && !b->failed; i++) {
		if (i > 0) {
			ebm_http_buf_add(b, ",", 1);
		}
		switch (k) {
		case OUT_ENERGY:
			ebm_http_buf_json_float(b, s[i].energy);
			break;
		case OUT_SCORE:
			ebm_http_buf_json_float(b, s[i].score);
			break;
		case OUT_P_VALUE:
			ebm_http_buf_json_double(b, s[i].p_value);
			break;
		case OUT_ANOMALY:
			ebm_http_buf_puts(b, s[i].anomaly ? "true" : "false");
			break;
		default:
			ebm_http_buf_json_float(b, contrib[i]);
			break;
		}
	}
	ebm_http_buf_add(b, "]", 1);
}

/* Inference-Header-Content-Length as a byte count; -1 when absent, -2
 * when it is not one. */
static long long header_length(struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
			"Inference-Header-Content-Length");
	if (h == NULL) {
		return -1;
	}
	while (*h == ' ' || *h == '\t') {
		h++;
	}
	long long v = 0;
	const char *p = h;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (1ll << 50)) {
			return -2;
		}
		v = v * 10 + (*p - '0');
	}
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	return p == h || *p != '\0' ? -2 : v;
}

/* application/json as for /v1, or, with binary data, also
 * application/octet-stream (what the protocol's clients send). */
static bool content_type_ok(struct evhttp_request *req, bool binary)
{
	if (ebm_http_content_type_json(req)) {
		return true;
	}
	const char *ct = evhttp_find_header(
			evhttp_request_get_input_headers(req), "Content-Type");
	if (!binary || ct == NULL) {
		return false;
	}
	while (*ct == ' ' || *ct == '\t') {
		ct++;
	}
	size_t n = strlen(CT_BINARY);
	return strncasecmp(ct, CT_BINARY, n) == 0
			&& (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Writes the response of a scored request into w->out and sends it. */
static int infer_reply(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_v2_request *r,
		const struct ebm_http_entry *entry, double alpha,
		const struct ebm_score *s, const float *contrib)
{
	size_t n = r->n_rows;
	size_t d = entry->schema.d;
	struct ebm_http_v2_output outs[OUT_COUNT];
	size_t n_outs = r->n_outputs;
	if (n_outs > 0) {
		memcpy(outs, r->outputs, n_outs * sizeof(*outs));
	} else {
		for (int k = 0; k < OUT_COUNT; k++) {
			if (k != OUT_CONTRIBUTIONS || r->explain) {
				outs[n_outs].name = out_names[k];
				outs[n_outs++].binary = -1;
			}
		}
	}
	bool binary[OUT_COUNT];
	bool any_binary = false;
	for (size_t i = 0; i < n_outs; i++) {
		binary[i] = outs[i].binary >= 0 ? outs[i].binary == 1
				: r->binary_output;
		any_binary |= binary[i];
	}
	struct ebm_http_buf *b = &w->out;
	ebm_http_buf_reset(b);
	ebm_http_buf_puts(b, "{\"model_name\":");
	ebm_http_buf_json_string(b, entry->name);
	ebm_http_buf_puts(b, ",\"model_version\":");
	ebm_http_buf_json_string(b, entry->version);
	if (r->id != NULL) {
		ebm_http_buf_puts(b, ",\"id\":");
		ebm_http_buf_json_string(b, r->id);
	}
	ebm_http_buf_puts(b, ",\"parameters\":{\"alpha\":");
	ebm_http_buf_json_double(b, alpha);
	ebm_http_buf_puts(b, "},\"outputs\":[");
	for (size_t i = 0; i < n_outs; i++) {
		enum output k = output_of(outs[i].name);
		ebm_http_buf_puts(b, i > 0 ? ",{\"name\":\"" : "{\"name\":\"");
		ebm_http_buf_puts(b, out_names[k]);
		ebm_http_buf_puts(b, "\",\"datatype\":\"");
		ebm_http_buf_puts(b, out_types[k]);
		ebm_http_buf_puts(b, "\",");
		put_shape(b, (long long)n, k == OUT_CONTRIBUTIONS ? (long long)d
				: -1);
		ebm_http_buf_add(b, ",", 1);
		if (binary[i]) {
			size_t count = k == OUT_CONTRIBUTIONS ? n * d : n;
			ebm_http_buf_puts(b, "\"parameters\":{\"binary_data_size\":");
			put_int(b, (long long)(count * out_sizes[k]));
			ebm_http_buf_add(b, "}", 1);
		} else {
			put_json_data(b, k, s, contrib, n, d);
		}
		ebm_http_buf_add(b, "}", 1);
	}
	ebm_http_buf_puts(b, "]}");
	if (!any_binary) {
		ebm_http_buf_add(b, "\n", 1);
		return json_reply(w, req, 200);
	}
	char len[32];
	snprintf(len, sizeof(len), "%zu", b->len);
	for (size_t i = 0; i < n_outs; i++) {
		if (binary[i]) {
			put_binary(b, output_of(outs[i].name), s, contrib, n, d);
		}
	}
	if (!b->failed) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
				"Inference-Header-Content-Length", len);
	}
	return ebm_http_reply(w, req, 200, CT_BINARY);
}

static int post_infer(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_catalog *c, const char *name,
		const char *version)
{
	struct ebm_http_error e;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > w->options->max_body_bytes) {
		ebm_http_fail(&e, 413, "body_too_large",
				"body has %zu bytes, at most %llu are accepted", len,
				(unsigned long long)w->options->max_body_bytes);
		return ebm_http_reply_error(w, req, &e);
	}
	long long hlen = header_length(req);
	bool ct_ok = content_type_ok(req, hlen != -1);
	if (hlen == -2) {
		ebm_http_fail(&e, ct_ok ? 400 : 415, ct_ok ? "invalid_header_length"
				: "unsupported_media_type", ct_ok
				? "Inference-Header-Content-Length: not a byte count"
				: "Content-Type must be application/json, or "
				"application/octet-stream with binary data");
		return ebm_http_reply_error(w, req, &e);
	}
	const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
	if (body == NULL) {
		ebm_http_fail(&e, 500, "internal_error", "out of memory");
		return ebm_http_reply_error(w, req, &e);
	}
	struct ebm_http_v2_request r;
	if (!ebm_http_v2_parse(&r, body, len, hlen, ct_ok, c->settings.max_rows,
			&e)) {
		return ebm_http_reply_error(w, req, &e);
	}
	int status;
	const struct ebm_http_entry *entry = find(c, name, version, &e);
	/* /v1's bounds on alpha (422), through /v1's own check. */
	struct ebm_http_request base = {
		.kind = EBM_HTTP_KIND_SCORE,
		.n_rows = 1,
		.has_alpha = r.has_alpha,
		.alpha = r.alpha,
	};
	size_t nd;
	float *x = NULL;
	struct ebm_score *s;
	float *contrib;
	const float *completed;   /* V2 outputs carry no imputed values */
	if (entry == NULL || !ebm_http_request_check(&base, &e)) {
		status = ebm_http_reply_error(w, req, &e);
	} else if (!ebm_mul_size(r.n_rows, entry->schema.d, &nd)
			|| (x = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_X,
			nd > 0 ? nd : 1, sizeof(float))) == NULL) {
		ebm_http_fail(&e, 500, "internal_error",
				"out of memory for this request");
		status = ebm_http_reply_error(w, req, &e);
	} else if (!ebm_http_v2_rows(&r, &entry->schema, x, &e)) {
		status = ebm_http_reply_error(w, req, &e);
	} else {
		double alpha = r.has_alpha ? r.alpha : entry->alpha;
		bool has_missing = false;   /* NaN: a missing value */
		for (size_t k = 0; k < nd && !has_missing; k++) {
			has_missing = isnan(x[k]);
		}
		if (!ebm_http_score(w, entry->product, entry->stats, entry->drift,
				x, r.n_rows,
				entry->schema.d, alpha, r.explain, has_missing, "inputs",
				&s, &contrib, &completed, &e)) {
			status = ebm_http_reply_error(w, req, &e);
		} else {
			status = infer_reply(w, req, &r, entry, alpha, s, contrib);
		}
	}
	ebm_http_v2_finish(&r);
	return status;
}

/* ======================================================================
 * Model repository
 * ==================================================================== */

static int repository(struct ebm_http_worker *w, struct evhttp_request *req,
		enum ebm_http_endpoint ep, const char *name)
{
	const struct ebm_http_repository *repo =
			ebm_http_server_repository(w->server);
	struct ebm_http_error e;
	if (repo == NULL) {
		ebm_http_fail(&e, 404, "not_found",
				"this server has no model repository");
		return ebm_http_reply_error(w, req, &e);
	}
	ebm_http_buf_reset(&w->out);
	if (ep == EBM_HTTP_EP_V2_REPO_INDEX) {
		if (!repo->index(repo->user, &w->out, &e)) {
			return ebm_http_reply_error(w, req, &e);
		}
		ebm_http_buf_add(&w->out, "\n", 1);
		return json_reply(w, req, 200);
	}
	bool ok = ep == EBM_HTTP_EP_V2_REPO_LOAD
			? repo->load(repo->user, name, &e)
			: repo->unload(repo->user, name, &e);
	if (!ok) {
		return ebm_http_reply_error(w, req, &e);
	}
	ebm_http_buf_reset(&w->out);
	ebm_http_buf_puts(&w->out, "{}\n");
	return json_reply(w, req, 200);
}

int ebm_http_v2(struct ebm_http_worker *w, struct evhttp_request *req,
		enum ebm_http_endpoint ep, const char *name, const char *version,
		const struct ebm_http_catalog *c)
{
	struct ebm_http_error e;
	const struct ebm_http_entry *entry;
	switch (ep) {
	case EBM_HTTP_EP_V2_LIVE:
		ebm_http_buf_reset(&w->out);
		ebm_http_buf_puts(&w->out, "{\"live\":true}\n");
		return json_reply(w, req, 200);
	case EBM_HTTP_EP_V2_READY:
		return get_ready(w, req);
	case EBM_HTTP_EP_V2_SERVER:
		return get_server(w, req);
	case EBM_HTTP_EP_V2_MODEL:
	case EBM_HTTP_EP_V2_MODEL_READY:
		entry = find(c, name, version, &e);
		if (entry == NULL) {
			return ebm_http_reply_error(w, req, &e);
		}
		return ep == EBM_HTTP_EP_V2_MODEL ? get_model(w, req, entry)
				: get_model_ready(w, req, entry);
	case EBM_HTTP_EP_V2_INFER:
		return post_infer(w, req, c, name, version);
	case EBM_HTTP_EP_V2_REPO_INDEX:
	case EBM_HTTP_EP_V2_REPO_LOAD:
	case EBM_HTTP_EP_V2_REPO_UNLOAD:
		return repository(w, req, ep, name);
	default:
		ebm_http_fail(&e, 404, "not_found", "no such path");
		return ebm_http_reply_error(w, req, &e);
	}
}
