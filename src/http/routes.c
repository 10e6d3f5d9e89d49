/*
 * routes.c — routing and the endpoint handlers of API.md section 2.
 *
 * Every request gets exactly one reply, chosen by this precedence when
 * several errors apply: 404 (unknown path), 405, 401, 503, 413, 415, 400,
 * 404 (unknown model), 422. Routing and the method come first, then the
 * token and readiness (no body is looked at before those), then the body:
 * its size, then request.c's phase 1 (rows 413, 415, 400), the model
 * lookup, and phase 2 (422).
 *
 * The catalog is acquired once per request and released at the end, so a
 * request finishes on the models it started with whatever reloads happen.
 * Maths runs on the worker's own struct ebm_ctx and grow-only scratch.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http/http.h"
#include "util/util.h"

#define CT_JSON "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* ======================================================================
 * Replies
 * ==================================================================== */

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* Sends w->out with the given status; returns the status sent. */
static int reply(struct ebm_http_worker *w, struct evhttp_request *req,
		int status, const char *content_type)
{
	static const char oom[] = "{\"error\":{\"code\":\"internal_error\","
			"\"message\":\"out of memory building the response\"}}\n";
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *body = evhttp_request_get_output_buffer(req);
	if (w->out.failed) {
		status = 500;
		content_type = CT_JSON;
		evbuffer_add(body, oom, sizeof(oom) - 1);
	} else {
		evbuffer_add(body, w->out.data, w->out.len);
	}
	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (w->closing) {
		evhttp_add_header(h, "Connection", "close");
	}
	evhttp_send_reply(req, status, reason(status), NULL);
	return status;
}

static int reply_error(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_error *e)
{
	if (w->v2) {
		ebm_http_v2_encode_error(&w->out, e);
	} else {
		ebm_http_encode_error(&w->out, e);
	}
	return reply(w, req, e->status, CT_JSON);
}

int ebm_http_reply(struct ebm_http_worker *w, struct evhttp_request *req,
		int status, const char *content_type)
{
	return reply(w, req, status, content_type);
}

int ebm_http_reply_error(struct ebm_http_worker *w,
		struct evhttp_request *req, const struct ebm_http_error *e)
{
	return reply_error(w, req, e);
}

__attribute__((format(printf, 5, 6)))
static int fail(struct ebm_http_worker *w, struct evhttp_request *req,
		int status, const char *code, const char *fmt, ...)
{
	struct ebm_http_error e = { .status = status, .code = code };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	return reply_error(w, req, &e);
}

/* ======================================================================
 * Routing
 * ==================================================================== */

struct route {
	enum ebm_http_endpoint ep;
	char *name;         /* decoded {name}, malloc'ed, or NULL */
	char *version;      /* /v2's decoded {version}, malloc'ed, or NULL */
};

/* Matches "/v1/models/{name}[/suffix]"; false when the path is not one. */
static bool match_model_path(const char *path, struct route *r)
{
	static const char prefix[] = "/v1/models/";
	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0) {
		return false;
	}
	const char *seg = path + sizeof(prefix) - 1;
	const char *slash = strchr(seg, '/');
	size_t seg_len = slash != NULL ? (size_t)(slash - seg) : strlen(seg);
	if (seg_len == 0) {
		return false;
	}
	if (slash == NULL) {
		r->ep = EBM_HTTP_EP_MODEL;
	} else if (strcmp(slash, "/score") == 0) {
		r->ep = EBM_HTTP_EP_SCORE;
	} else if (strcmp(slash, "/repair") == 0) {
		r->ep = EBM_HTTP_EP_REPAIR;
	} else if (strcmp(slash, "/drift") == 0) {  /* monitor */
		r->ep = EBM_HTTP_EP_DRIFT;
	} else {
		return false;
	}
	char *raw = malloc(seg_len + 1);
	if (raw == NULL) {
		return false;
	}
	memcpy(raw, seg, seg_len);
	raw[seg_len] = '\0';
	size_t len = 0;
	r->name = evhttp_uridecode(raw, 0, &len);
	free(raw);
	/* A %00 cannot name a file: leave the name unmatchable. */
	if (r->name != NULL && strlen(r->name) != len) {
		r->name[0] = '\0';
	}
	return r->name != NULL;
}

static void route_path(const char *path, struct route *r)
{
	r->ep = EBM_HTTP_EP_OTHER;
	r->name = NULL;
	r->version = NULL;
	if (path == NULL) {
		return;
	}
	if (strncmp(path, "/v2", 3) == 0) {
		if (!ebm_http_v2_match(path, &r->ep, &r->name, &r->version)) {
			r->ep = EBM_HTTP_EP_OTHER;
		}
	} else if (strcmp(path, "/healthz") == 0) {
		r->ep = EBM_HTTP_EP_HEALTHZ;
	} else if (strcmp(path, "/readyz") == 0) {
		r->ep = EBM_HTTP_EP_READYZ;
	} else if (strcmp(path, "/metrics") == 0) {
		r->ep = EBM_HTTP_EP_METRICS;
	} else if (strcmp(path, "/v1/models") == 0) {
		r->ep = EBM_HTTP_EP_MODELS;
	} else if (strcmp(path, "/v1/score") == 0) {
		r->ep = EBM_HTTP_EP_COMPOSE;
	} else if (strcmp(path, "/ui") == 0 || strcmp(path, "/ui/data") == 0) {
		r->ep = EBM_HTTP_EP_UI;  /* monitor */
	} else if (!match_model_path(path, r)) {
		r->ep = EBM_HTTP_EP_OTHER;
	}
}

static bool is_post(enum ebm_http_endpoint ep)
{
	return ep == EBM_HTTP_EP_SCORE || ep == EBM_HTTP_EP_REPAIR
			|| ep == EBM_HTTP_EP_COMPOSE || ep == EBM_HTTP_EP_V2_INFER
			|| ep == EBM_HTTP_EP_V2_REPO_INDEX
			|| ep == EBM_HTTP_EP_V2_REPO_LOAD
			|| ep == EBM_HTTP_EP_V2_REPO_UNLOAD;
}

/* ======================================================================
 * Headers
 * ==================================================================== */

/* Compares all of `token` whatever `given` is, so the time taken does not
 * depend on where they differ. */
static bool token_equal(const char *given, size_t given_len,
		const char *token)
{
	size_t len = strlen(token);
	unsigned diff = given_len != len;
	for (size_t i = 0; i < len; i++) {
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
		diff |= (unsigned)(g ^ (unsigned char)token[i]);
	}
	return diff == 0;
}

/* h is the Authorization header (or NULL): "Bearer <token>", the scheme
 * in any case (RFC 7235). */
static bool authorized(const char *h, const char *token)
{
	if (h == NULL || strncasecmp(h, "Bearer", 6) != 0
			|| (h[6] != ' ' && h[6] != '\t')) {
		return false;
	}
	const char *t = h + 6;
	while (*t == ' ' || *t == '\t') {
		t++;
	}
	size_t len = strlen(t);
	while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\t')) {
		len--;
	}
	return token_equal(t, len, token);
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	return p;
}

/*
 * No Content-Type, or application/json with at most a charset parameter
 * of utf-8 (any case, quoted or not): RFC 8259 JSON is UTF-8.
 */
static bool content_type_ok(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(
			evhttp_request_get_input_headers(req), "Content-Type");
	if (ct == NULL) {
		return true;
	}
	const char *p = skip_ws(ct);
	static const char json[] = "application/json";
	if (strncasecmp(p, json, sizeof(json) - 1) != 0) {
		return false;
	}
	p = skip_ws(p + sizeof(json) - 1);
	while (*p == ';') {
		p = skip_ws(p + 1);
		if (*p == '\0') {
			break;
		}
		if (strncasecmp(p, "charset=", 8) != 0) {
			return false;
		}
		p += 8;
		bool quoted = *p == '"';
		p += quoted;
		if (strncasecmp(p, "utf-8", 5) == 0) {
			p += 5;
		} else if (strncasecmp(p, "utf8", 4) == 0) {
			p += 4;
		} else {
			return false;
		}
		if (quoted) {
			if (*p != '"') {
				return false;
			}
			p++;
		}
		p = skip_ws(p);
	}
	return *p == '\0';
}

bool ebm_http_content_type_json(struct evhttp_request *req)
{
	return content_type_ok(req);
}

/* ======================================================================
 * Health, metrics, metadata
 * ==================================================================== */

static int get_readyz(struct ebm_http_worker *w, struct evhttp_request *req)
{
	if (ebm_http_server_stopping(w->server)) {
		return fail(w, req, 503, "shutting_down", "ebmd is shutting down");
	}
	struct ebm_http_catalog *c = ebm_http_server_acquire(w->server);
	size_t n = c != NULL ? c->n_model_files : 0;
	ebm_http_catalog_unref(c);
	if (n == 0) {
		return fail(w, req, 503, "not_ready", "no model is loaded yet");
	}
	ebm_http_buf_reset(&w->out);
	ebm_http_buf_printf(&w->out, "{\"status\":\"ready\",\"models\":%zu}\n",
			n);
	return reply(w, req, 200, CT_JSON);
}

static int get_metrics(struct ebm_http_worker *w, struct evhttp_request *req)
{
	struct ebm_http_catalog *c = ebm_http_server_acquire(w->server);
	size_t n = c != NULL ? c->n_model_files : 0;
	ebm_http_buf_reset(&w->out);
	ebm_http_metrics_render(w->metrics, n, &w->out);
	if (c != NULL) {
		ebm_http_drift_render(c, &w->out);  /* monitor */
	}
	ebm_http_catalog_unref(c);
	return reply(w, req, 200, CT_METRICS);
}

static int get_models(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_catalog *c)
{
	ebm_http_buf_reset(&w->out);
	ebm_http_buf_puts(&w->out, "{\"models\":[");
	for (size_t i = 0; i < c->n_entries; i++) {
		if (i > 0) {
			ebm_http_buf_add(&w->out, ",", 1);
		}
		ebm_http_buf_puts(&w->out, c->entries[i].info);
	}
	ebm_http_buf_puts(&w->out, "]}\n");
	return reply(w, req, 200, CT_JSON);
}

static int unknown_model(struct ebm_http_worker *w,
		struct evhttp_request *req, const char *where, const char *name)
{
	return fail(w, req, 404, "unknown_model", "%s%smodel '%.128s' not found",
			where, where[0] != '\0' ? ": " : "", name);
}

static int get_model(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_catalog *c, const char *name)
{
	const struct ebm_http_entry *e = ebm_http_catalog_find(c, name);
	if (e == NULL) {
		return unknown_model(w, req, "", name);
	}
	ebm_http_buf_reset(&w->out);
	ebm_http_buf_puts(&w->out, e->info);
	ebm_http_buf_add(&w->out, "\n", 1);
	return reply(w, req, 200, CT_JSON);
}

/* monitor: GET /v1/models/{name}/drift */
static int get_drift(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_catalog *c, const char *name)
{
	const struct ebm_http_entry *e = ebm_http_catalog_find(c, name);
	if (e == NULL) {
		return unknown_model(w, req, "", name);
	}
	struct ebm_http_drift_report r;
	ebm_http_drift_check(e->drift, c->settings.drift_alpha, &r);
	ebm_http_buf_reset(&w->out);
	ebm_http_drift_encode(&w->out, e->name, &r);
	ebm_http_buf_add(&w->out, "\n", 1);
	return reply(w, req, 200, CT_JSON);
}

/* monitor: GET /ui and /ui/data, only with [monitor] ui = true; open
 * like /metrics (aggregates only). */
static int get_ui(struct ebm_http_worker *w, struct evhttp_request *req,
		const char *path)
{
	struct ebm_http_catalog *c = ebm_http_server_acquire(w->server);
	int status;
	if (c == NULL || !c->settings.ui) {
		status = fail(w, req, 404, "not_found", "no such path: %.200s "
				"(the status page needs [monitor] ui = true)", path);
	} else if (strcmp(path, "/ui") == 0) {
		ebm_http_buf_reset(&w->out);
		ebm_http_buf_puts(&w->out, ebm_http_ui_html);
		status = reply(w, req, 200, "text/html; charset=utf-8");
	} else {
		ebm_http_buf_reset(&w->out);
		ebm_http_monitor_encode(c, &w->out);
		status = reply(w, req, 200, CT_JSON);
	}
	ebm_http_catalog_unref(c);
	return status;
}

/* ======================================================================
 * Scoring, explanations, repair
 * ==================================================================== */

/* What a score or repair runs against: a served entry or an ad-hoc
 * product of /v1/score. */
struct target {
	const char *name;                     /* entry name, or NULL */
	const struct ebm_http_entry *entry;   /* or NULL */
	const struct ebm_http_request *req;   /* for the ad-hoc header */
	const struct ebm_product *product;
	const struct ebm_http_schema *schema;
	double alpha;                         /* default in force */
	char version[13];
	struct ebm_http_model_stats *stats;
};

static void maths_fail(const struct ebm_error *err, const char *rows,
		struct ebm_http_error *e);

/* Maps a library failure while repairing to a reply. */
static int maths_error(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_error *err)
{
	struct ebm_http_error e;
	maths_fail(err, "instances", &e);
	return reply_error(w, req, &e);
}

static int nomem(struct ebm_http_worker *w, struct evhttp_request *req)
{
	return fail(w, req, 500, "internal_error",
			"out of memory for this request");
}

/* {"model":"x","version":"v", or {"models":[...],"weights":[...],... */
static void header(struct ebm_http_buf *b, const struct target *t)
{
	ebm_http_buf_reset(b);
	if (t->name != NULL) {
		ebm_http_buf_puts(b, "{\"model\":");
		ebm_http_buf_json_string(b, t->name);
	} else {
		const struct ebm_http_request *r = t->req;
		ebm_http_buf_puts(b, "{\"models\":[");
		for (size_t i = 0; i < r->n_models; i++) {
			if (i > 0) {
				ebm_http_buf_add(b, ",", 1);
			}
			ebm_http_buf_json_string(b, r->models[i]);
		}
		ebm_http_buf_puts(b, "],\"weights\":[");
		for (size_t i = 0; i < r->n_models; i++) {
			if (i > 0) {
				ebm_http_buf_add(b, ",", 1);
			}
			ebm_http_buf_json_double(b,
					ebm_product_weight(t->product, i));
		}
		ebm_http_buf_add(b, "]", 1);
	}
	ebm_http_buf_puts(b, ",\"version\":");
	ebm_http_buf_json_string(b, t->version);
}

/* The request's rows as floats in the worker's X scratch (422 when they
 * do not fit the schema), or NULL with the reply sent in *status. */
static float *request_rows(struct ebm_http_worker *w,
		struct evhttp_request *req, const struct ebm_http_request *r,
		const struct ebm_http_schema *schema, int *status)
{
	struct ebm_http_error e;
	size_t nd;
	float *x = NULL;
	if (ebm_mul_size(r->n_rows, schema->d, &nd)) {
		x = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_X, nd,
				sizeof(float));
	}
	if (x == NULL) {
		*status = nomem(w, req);
		return NULL;
	}
	if (!ebm_http_request_rows(r, schema, x, &e)) {
		*status = reply_error(w, req, &e);
		return NULL;
	}
	return x;
}

/* A library failure while scoring, as the error to send; rows names the
 * request's rows ("instances"). */
static void maths_fail(const struct ebm_error *err, const char *rows,
		struct ebm_http_error *e)
{
	if (err->code == EBM_STATUS_NUMERIC && err->line > 0) {
		if (err->column > 0) {
			ebm_http_fail(e, 422, "non_finite",
					"%s[%llu][%llu]: not a finite number", rows,
					(unsigned long long)err->line - 1,
					(unsigned long long)err->column - 1);
		} else {
			ebm_http_fail(e, 422, "non_finite_energy",
					"%s[%llu]: the energy of this row is not finite", rows,
					(unsigned long long)err->line - 1);
		}
	} else if (err->code == EBM_STATUS_NUMERIC) {
		ebm_http_fail(e, 422, "non_finite_energy", "%s", err->message);
	} else {
		ebm_log_error("scoring failed: %s", err->message);
		ebm_http_fail(e, 500, "internal_error", "%s", err->message);
	}
}

bool ebm_http_score(struct ebm_http_worker *w, const struct ebm_product *p,
		struct ebm_http_model_stats *stats, struct ebm_http_drift *drift,
		const float *x, size_t n,
		size_t d, double alpha, bool explain, bool has_missing,
		const char *rows, struct ebm_score **scores, float **contrib,
		const float **completed, struct ebm_http_error *e)
{
	size_t nd;
	struct ebm_score *s = ebm_http_worker_scratch(w,
			EBM_HTTP_SCRATCH_SCORES, n, sizeof(*s));
	if (s == NULL || !ebm_mul_size(n, d, &nd)) {
		return ebm_http_fail(e, 500, "internal_error",
				"out of memory for this request");
	}
	struct ebm_error err;
	ebm_error_clear(&err);
	*completed = NULL;
	/* ---- missing values (API.md section 6): rows with NaN (null) are
	 * profiled by libebm (missing.h); explanations and the response use
	 * the completed rows. Rows without take the plain path. */
	if (has_missing) {
		float *done = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_COMPLETED,
				nd, sizeof(float));
		if (done == NULL) {
			return ebm_http_fail(e, 500, "internal_error",
					"out of memory for this request");
		}
		size_t n_ref = ebm_product_n_ref(p);
		size_t sets = ebm_product_missing_uncached(p, x, n);
		if (sets > 0 && sets > EBM_HTTP_MAX_PROFILE_ROWS / n_ref) {
			return ebm_http_fail(e, 422, "too_many_missing_sets",
					"%s: %zu new sets of missing features would profile "
					"%zu reference rows each; at most %zu per request "
					"(send fewer distinct sets at a time)", rows, sets,
					n_ref, EBM_HTTP_MAX_PROFILE_ROWS / n_ref);
		}
		enum ebm_status st = ebm_product_score_missing(p, w->ctx, x, n,
				alpha, s, done, &err);
		if (st == EBM_STATUS_INVALID_ARGUMENT && err.line > 0) {
			return ebm_http_fail(e, 422, "all_missing",
					"%s[%llu]: every feature is missing", rows,
					(unsigned long long)err.line - 1);
		}
		if (st != EBM_STATUS_OK) {
			maths_fail(&err, rows, e);
			return false;
		}
		x = done;
		*completed = done;
		/* ---- end of missing values */
	} else if (ebm_product_score(p, w->ctx, x, n, alpha, s, &err)
			!= EBM_STATUS_OK) {
		maths_fail(&err, rows, e);
		return false;
	}
	float *c = NULL;
	if (explain) {
		c = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_OUT, nd,
				sizeof(float));
		if (c == NULL) {
			return ebm_http_fail(e, 500, "internal_error",
					"out of memory for this request");
		}
		if (ebm_product_explain(p, w->ctx, x, n, c, &err)
				!= EBM_STATUS_OK) {
			maths_fail(&err, rows, e);
			return false;
		}
	}
	ebm_http_record_scores(stats, drift, s, n);
	*scores = s;
	*contrib = c;
	return true;
}

/* Scores the rows x (from request_rows) against t. */
static int run_score(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_request *r, const struct target *t,
		const float *x)
{
	size_t n = r->n_rows;
	size_t d = t->schema->d;
	double alpha = r->has_alpha ? r->alpha : t->alpha;
	struct ebm_score *s;
	float *contrib;
	const float *completed;
	struct ebm_http_error e;
	if (!ebm_http_score(w, t->product, t->stats,
			t->entry != NULL ? t->entry->drift : NULL, x, n, d, alpha,
			r->explain, r->has_null, "instances", &s, &contrib, &completed,
			&e)) {
		return reply_error(w, req, &e);
	}
	header(&w->out, t);
	ebm_http_buf_puts(&w->out, ",\"alpha\":");
	ebm_http_buf_json_double(&w->out, alpha);
	ebm_http_buf_add(&w->out, ",", 1);
	if (completed != NULL) {   /* missing values */
		ebm_http_encode_score_results_missing(&w->out, s, n, contrib, d,
				x, completed);
	} else {
		ebm_http_encode_score_results(&w->out, s, n, contrib, d);
	}
	ebm_http_buf_puts(&w->out, "}\n");
	return reply(w, req, 200, CT_JSON);
}

static int run_repair(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_request *r, const struct target *t)
{
	struct ebm_http_error e;
	size_t n = r->n_rows;
	size_t d = t->schema->d;
	size_t nd;
	if (!ebm_mul_size(n, d, &nd)) {
		return nomem(w, req);
	}
	float *x = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_X, nd,
			sizeof(float));
	float *out = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_OUT, nd,
			sizeof(float));
	float *eb = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_E_BEFORE, n,
			sizeof(float));
	float *ea = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_E_AFTER, n,
			sizeof(float));
	double *pb = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_P_BEFORE, n,
			sizeof(double));
	double *pa = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_P_AFTER, n,
			sizeof(double));
	float *row = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_ROW, d,
			sizeof(float));
	bool *fixed = ebm_http_worker_scratch(w, EBM_HTTP_SCRATCH_FIXED, d,
			sizeof(bool));
	if (x == NULL || out == NULL || eb == NULL || ea == NULL || pb == NULL
			|| pa == NULL || row == NULL || fixed == NULL) {
		return nomem(w, req);
	}
	if (!ebm_http_request_rows(r, t->schema, x, &e)
			|| !ebm_http_request_fixed(r, t->schema, fixed, &e)) {
		return reply_error(w, req, &e);
	}
	struct ebm_repair_options o;
	ebm_repair_options_init(&o);
	if (r->has_steps) {
		o.steps = (uint32_t)r->steps;
	}
	if (r->has_step_size) {
		o.step_size = (float)r->step_size;
	}
	o.fixed = fixed;
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_product_repair(t->product, w->ctx, &o, x, n, out, eb, ea, &err)
			!= EBM_STATUS_OK) {
		return maths_error(w, req, &err);
	}
	const float *ref = ebm_product_ref_energies(t->product);
	size_t n_ref = ebm_product_n_ref(t->product);
	for (size_t i = 0; i < n; i++) {
		pb[i] = ebm_p_value(ref, n_ref, eb[i]);
		pa[i] = ebm_p_value(ref, n_ref, ea[i]);
	}
	header(&w->out, t);
	ebm_http_buf_add(&w->out, ",", 1);
	ebm_http_encode_repair_results(&w->out, x, out, row, n, d, eb, ea, pb,
			pa);
	ebm_http_buf_puts(&w->out, "}\n");
	return reply(w, req, 200, CT_JSON);
}

/* Phase 1 of a POST body: size (413), then request.c (413, 415, 400). */
static bool read_body(struct ebm_http_worker *w, struct evhttp_request *req,
		enum ebm_http_kind kind, size_t max_rows, struct ebm_http_request *r,
		struct ebm_http_error *e)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > w->options->max_body_bytes) {
		return ebm_http_fail(e, 413, "body_too_large",
				"body has %zu bytes, at most %llu are accepted", len,
				(unsigned long long)w->options->max_body_bytes);
	}
	const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
	if (body == NULL) {
		return ebm_http_fail(e, 500, "internal_error", "out of memory");
	}
	return ebm_http_request_parse(r, kind, body, len, content_type_ok(req),
			max_rows, e);
}

static int post_model(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_catalog *c, enum ebm_http_endpoint ep,
		const char *name)
{
	struct ebm_http_request r;
	struct ebm_http_error e;
	enum ebm_http_kind kind = ep == EBM_HTTP_EP_SCORE
			? EBM_HTTP_KIND_SCORE : EBM_HTTP_KIND_REPAIR;
	if (!read_body(w, req, kind, c->settings.max_rows, &r, &e)) {
		return reply_error(w, req, &e);
	}
	int status;
	const struct ebm_http_entry *entry = ebm_http_catalog_find(c, name);
	if (entry == NULL) {
		status = unknown_model(w, req, "", name);
	} else if (!ebm_http_request_check(&r, &e)) {
		status = reply_error(w, req, &e);
	} else {
		struct target t = {
			.name = entry->name,
			.entry = entry,
			.product = entry->product,
			.schema = &entry->schema,
			.alpha = entry->alpha,
			.stats = entry->stats,
		};
		memcpy(t.version, entry->version, sizeof(t.version));
		if (kind == EBM_HTTP_KIND_REPAIR) {
			status = run_repair(w, req, &r, &t);
		} else {
			const float *x = request_rows(w, req, &r, t.schema, &status);
			if (x != NULL) {
				status = run_score(w, req, &r, &t, x);
			}
		}
	}
	ebm_http_request_finish(&r);
	return status;
}

/*
 * POST /v1/score: a product built for this request, and everything that
 * can refuse it checked before any maths: the models (404), the request's
 * bounds and duplicates (422), whether the models compose, the rows
 * against the product's features, and the product's cost (422, see
 * http.h). The product itself comes from the catalog's cached blocks.
 */
static int post_compose(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct ebm_http_catalog *c)
{
	struct ebm_http_request r;
	struct ebm_http_error e;
	if (!read_body(w, req, EBM_HTTP_KIND_COMPOSE, c->settings.max_rows, &r,
			&e)) {
		return reply_error(w, req, &e);
	}
	int status;
	struct ebm_product *p = NULL;
	const struct ebm_http_entry *entries[EBM_PRODUCT_MAX_MODELS];
	const struct ebm_model *models[EBM_PRODUCT_MAX_MODELS];
	double alpha = 1.0;
	/* 404 for an unknown model comes before any 422. */
	for (size_t i = 0; i < r.n_models; i++) {
		const struct ebm_http_entry *m = ebm_http_catalog_find(c,
				r.models[i]);
		if (m == NULL || m->composition) {
			char where[32];
			snprintf(where, sizeof(where), "models[%zu]", i);
			status = unknown_model(w, req, where, r.models[i]);
			goto out;
		}
		if (i < EBM_PRODUCT_MAX_MODELS) {
			entries[i] = m;
			models[i] = m->models[0]->model;
			alpha = m->alpha < alpha ? m->alpha : alpha;
		}
	}
	if (!ebm_http_request_check(&r, &e)) {
		status = reply_error(w, req, &e);
		goto out;
	}
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_product_check(models, r.n_models, &err) == EBM_STATUS_MISMATCH) {
		status = fail(w, req, 422, "incompatible_models", "models: %s",
				err.message);
		goto out;
	}
	/* The product's features: those of its first expert with names (as
	 * ebm_product_feature_name has them), else positional. */
	const struct ebm_http_entry *named = entries[0];
	for (size_t i = 0; i < r.n_models; i++) {
		if (entries[i]->schema.names != NULL) {
			named = entries[i];
			break;
		}
	}
	const float *x = request_rows(w, req, &r, &named->schema, &status);
	if (x == NULL) {
		goto out;
	}
	if (!ebm_http_catalog_product(c, entries, r.weights, r.n_models, w->ctx,
			&p, NULL, &e)) {
		status = reply_error(w, req, &e);
		goto out;
	}
	struct target t = {
		.req = &r,
		.product = p,
		.schema = &named->schema,
		.alpha = c->settings.has_alpha ? c->settings.alpha : alpha,
		.stats = w->adhoc_stats,
	};
	char checksum[33];
	ebm_http_product_version(p, t.version, checksum);
	status = run_score(w, req, &r, &t, x);

out:
	ebm_product_destroy(p);
	ebm_http_request_finish(&r);
	return status;
}

/* ======================================================================
 * Precedence of the head: 404 (path), 405, 401, 503
 * ==================================================================== */

/* What the request line and the Authorization header alone decide. */
struct refusal {
	struct ebm_http_error e;
	const char *header;           /* an extra response header, or NULL */
	const char *value;
};

/* Endpoints behind the token and readiness (all but health and metrics). */
static bool is_v1(enum ebm_http_endpoint ep)
{
	return ep != EBM_HTTP_EP_OTHER && ep != EBM_HTTP_EP_HEALTHZ
			&& ep != EBM_HTTP_EP_READYZ && ep != EBM_HTTP_EP_METRICS
			&& ep != EBM_HTTP_EP_V2_LIVE && ep != EBM_HTTP_EP_V2_READY
			&& ep != EBM_HTTP_EP_UI;
}

/* Of those, the ones that answer before any model is loaded: /v2's
 * server metadata and model repository (which is how one gets loaded). */
static bool needs_models(enum ebm_http_endpoint ep)
{
	return ep != EBM_HTTP_EP_V2_SERVER && ep != EBM_HTTP_EP_V2_REPO_INDEX
			&& ep != EBM_HTTP_EP_V2_REPO_LOAD
			&& ep != EBM_HTTP_EP_V2_REPO_UNLOAD;
}

/*
 * True (and *out filled) when the path is unknown (404), the method wrong
 * (405, with Allow), the token missing or wrong (401, with
 * WWW-Authenticate), or ebmd not ready or stopping (503): the answers that
 * come before anything about the body. Health and metrics endpoints need
 * neither token nor readiness. c is the catalog (NULL: none published).
 */
static bool refuse_head(const struct ebm_http_worker *w,
		const struct route *rt, const char *path,
		enum evhttp_cmd_type method, const char *authorization,
		const struct ebm_http_catalog *c, struct refusal *out)
{
	bool post = is_post(rt->ep);
	bool method_ok = post ? method == EVHTTP_REQ_POST
			: method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD;
	out->header = NULL;
	out->value = NULL;
	if (rt->ep == EBM_HTTP_EP_OTHER) {
		return !ebm_http_fail(&out->e, 404, "not_found",
				"no such path: %.200s", path != NULL ? path : "");
	}
	if (!method_ok) {
		out->header = "Allow";
		out->value = post ? "POST" : "GET, HEAD";
		return !ebm_http_fail(&out->e, 405, "method_not_allowed",
				"%.200s accepts %s only", path,
				post ? "POST" : "GET and HEAD");
	}
	if (!is_v1(rt->ep)) {
		return false;
	}
	if (c != NULL && c->settings.token != NULL
			&& !authorized(authorization, c->settings.token)) {
		out->header = "WWW-Authenticate";
		out->value = "Bearer realm=\"ebmd\"";
		return !ebm_http_fail(&out->e, 401, "unauthorized",
				"missing or wrong 'Authorization: Bearer' token");
	}
	if (w->draining) {
		return !ebm_http_fail(&out->e, 503, "shutting_down",
				"ebmd is shutting down");
	}
	if ((c == NULL || c->n_model_files == 0) && needs_models(rt->ep)) {
		return !ebm_http_fail(&out->e, 503, "not_ready",
				"no model is loaded yet");
	}
	return false;
}

/* /v1/... once the head passed: the endpoint. */
static int v1(struct ebm_http_worker *w, struct evhttp_request *req,
		const struct route *rt, const struct ebm_http_catalog *c)
{
	switch (rt->ep) {
	case EBM_HTTP_EP_MODELS:
		return get_models(w, req, c);
	case EBM_HTTP_EP_MODEL:
		return get_model(w, req, c, rt->name);
	case EBM_HTTP_EP_DRIFT:
		return get_drift(w, req, c, rt->name);
	case EBM_HTTP_EP_SCORE:
	case EBM_HTTP_EP_REPAIR:
		return post_model(w, req, c, rt->ep, rt->name);
	case EBM_HTTP_EP_COMPOSE:
		return post_compose(w, req, c);
	default:
		if (ebm_http_v2_endpoint(rt->ep)) {
			return ebm_http_v2(w, req, rt->ep, rt->name, rt->version, c);
		}
		return fail(w, req, 404, "not_found", "no such path");
	}
}

static const char *method_name(enum evhttp_cmd_type method)
{
	return method == EVHTTP_REQ_POST ? "POST"
			: method == EVHTTP_REQ_GET ? "GET"
			: method == EVHTTP_REQ_HEAD ? "HEAD" : "other";
}

void ebm_http_route(struct ebm_http_worker *w, struct evhttp_request *req)
{
	double t0 = ebm_now();
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	struct route rt;
	route_path(path, &rt);
	w->v2 = path != NULL && strncmp(path, "/v2", 3) == 0
			&& (path[3] == '\0' || path[3] == '/');
	/* The catalog is held to the end: the request finishes on it. */
	struct ebm_http_catalog *c = is_v1(rt.ep)
			? ebm_http_server_acquire(w->server) : NULL;
	const char *authorization = evhttp_find_header(
			evhttp_request_get_input_headers(req), "Authorization");

	int status;
	struct refusal r;
	if (refuse_head(w, &rt, path, method, authorization, c, &r)) {
		if (r.header != NULL) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
					r.header, r.value);
		}
		status = reply_error(w, req, &r.e);
	} else if (rt.ep == EBM_HTTP_EP_HEALTHZ) {
		ebm_http_buf_reset(&w->out);
		ebm_http_buf_puts(&w->out, "{\"status\":\"ok\"}\n");
		status = reply(w, req, 200, CT_JSON);
	} else if (rt.ep == EBM_HTTP_EP_READYZ) {
		status = get_readyz(w, req);
	} else if (rt.ep == EBM_HTTP_EP_METRICS) {
		status = get_metrics(w, req);
	} else if (rt.ep == EBM_HTTP_EP_V2_LIVE || rt.ep == EBM_HTTP_EP_V2_READY) {
		status = ebm_http_v2(w, req, rt.ep, NULL, NULL, NULL);
	} else if (rt.ep == EBM_HTTP_EP_UI) {
		status = get_ui(w, req, path);
	} else {
		status = v1(w, req, &rt, c);
	}
	ebm_http_catalog_unref(c);
	double dt = ebm_now() - t0;
	ebm_http_metrics_request(w->metrics, w->index, rt.ep, status, dt);
	ebm_log_debug("%s %.200s -> %d (%.3f ms)", method_name(method),
			path != NULL ? path : "-", status, dt * 1e3);
	free(rt.name);
	free(rt.version);
}

/* ======================================================================
 * A body beyond the hard cap (conn.c)
 * ==================================================================== */

static enum evhttp_cmd_type parse_method(const char *m)
{
	static const struct {
		const char *name;
		enum evhttp_cmd_type type;
	} methods[] = {
		{ "GET", EVHTTP_REQ_GET }, { "POST", EVHTTP_REQ_POST },
		{ "HEAD", EVHTTP_REQ_HEAD }, { "PUT", EVHTTP_REQ_PUT },
		{ "DELETE", EVHTTP_REQ_DELETE }, { "OPTIONS", EVHTTP_REQ_OPTIONS },
		{ "TRACE", EVHTTP_REQ_TRACE }, { "CONNECT", EVHTTP_REQ_CONNECT },
		{ "PATCH", EVHTTP_REQ_PATCH },
	};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcmp(m, methods[i].name) == 0) {
			return methods[i].type;
		}
	}
	return EVHTTP_REQ_TRACE;  /* unknown: wrong on every path */
}

void ebm_http_refuse_oversized(struct ebm_http_worker *w, const char *method,
		const char *target, const char *authorization, uint64_t bytes,
		bool declared, struct ebm_http_buf *out)
{
	double t0 = ebm_now();
	struct evhttp_uri *uri = target != NULL ? evhttp_uri_parse_with_flags(
			target, EVHTTP_URI_NONCONFORMANT) : NULL;
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type m = parse_method(method != NULL ? method : "");
	struct route rt;
	route_path(path, &rt);
	w->v2 = path != NULL && strncmp(path, "/v2", 3) == 0
			&& (path[3] == '\0' || path[3] == '/');
	struct ebm_http_catalog *c = is_v1(rt.ep)
			? ebm_http_server_acquire(w->server) : NULL;
	struct refusal r;
	if (!refuse_head(w, &rt, path, m, authorization, c, &r)) {
		ebm_http_fail(&r.e, 413, "body_too_large", declared
				? "body declares %llu bytes (Content-Length), at most %llu "
				"are accepted" : "chunked body of at least %llu bytes, at "
				"most %llu are accepted", (unsigned long long)bytes,
				(unsigned long long)w->options->max_body_bytes);
	}
	ebm_http_catalog_unref(c);
	ebm_http_buf_reset(&w->out);
	if (w->v2) {
		ebm_http_v2_encode_error(&w->out, &r.e);
	} else {
		ebm_http_encode_error(&w->out, &r.e);
	}
	ebm_http_buf_reset(out);
	ebm_http_buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			"Cache-Control: no-store\r\nConnection: close\r\n",
			r.e.status, reason(r.e.status), CT_JSON);
	if (r.header != NULL) {
		ebm_http_buf_printf(out, "%s: %s\r\n", r.header, r.value);
	}
	ebm_http_buf_printf(out, "Content-Length: %zu\r\n\r\n", w->out.len);
	ebm_http_buf_add(out, w->out.data, w->out.len);
	double dt = ebm_now() - t0;
	ebm_http_metrics_request(w->metrics, w->index, rt.ep, r.e.status, dt);
	ebm_log_debug("%s %.200s -> %d: body beyond the hard cap, closing",
			method_name(m),
			path != NULL ? path : "-", r.e.status);
	free(rt.name);
	free(rt.version);
	if (uri != NULL) {
		evhttp_uri_free(uri);
	}
}
