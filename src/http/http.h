/*
 * http.h — internal header of the HTTP module (API.md section 2):
 *
 *   server.c      evhttp on worker threads, one listening socket, limits,
 *                 graceful drain
 *   routes.c      routing, the status-code precedence, the endpoint handlers
 *   request.c     JSON request decoding and validation into plain C arrays
 *   response.c    JSON response encoding into a growable byte buffer
 *   prom.c        Prometheus counters and their text exposition
 *   model-info.c  the model-info object of GET /v1/models/{name}
 *   catalog.c     the catalog: a refcounted snapshot of everything served
 *   v2.c          the Open Inference Protocol (API.md section 5): routes,
 *                 metadata, infer replies, the repository endpoints
 *   tensor.c      V2 infer requests, JSON and binary tensors, into floats
 *
 * What it leaves to others: finding, loading and reloading model files,
 * the configuration file, signals and systemd belong to daemon/, which
 * builds catalogs and hands them to the server. Only this module includes
 * event2/ and jansson.h; the declarations below name their types only as
 * incomplete structs.
 *
 * Threads: the server's workers call into routes/request/response with
 * their own struct ebm_http_worker_state; catalogs and their models are
 * immutable once published and shared by all workers; metrics are safe to
 * update from any thread.
 */
#ifndef EBM_HTTP_HTTP_H
#define EBM_HTTP_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ebm/ebm.h"
#include "ebm/model.h"
#include "ebm/product.h"
#include "ebm/missing.h"

struct json_t;

/* ======================================================================
 * Errors sent to clients: {"error":{"code":..., "message":...}}
 * ==================================================================== */

struct ebm_http_error {
	int status;           /* HTTP status: 400, 404, 413, 415, 422, ... */
	const char *code;     /* static snake_case string */
	char message[512];    /* what and where: "instances[3]: ..." */
};

/* Fills e and returns false, so that callers can `return http_fail(...)`. */
bool ebm_http_fail(struct ebm_http_error *e, int status, const char *code,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ======================================================================
 * Growable byte buffer (response.c). Allocation failure is sticky: the
 * buffer stops growing, `failed` is set, and the caller answers 500.
 * ==================================================================== */

struct ebm_http_buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
};

void ebm_http_buf_init(struct ebm_http_buf *b);
void ebm_http_buf_finish(struct ebm_http_buf *b);
/* Empties the buffer, keeping its memory (and clearing `failed`). */
void ebm_http_buf_reset(struct ebm_http_buf *b);
void ebm_http_buf_add(struct ebm_http_buf *b, const char *s, size_t n);
void ebm_http_buf_puts(struct ebm_http_buf *b, const char *s);
void ebm_http_buf_printf(struct ebm_http_buf *b, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s starts with
 * NUL or with bytes that are not UTF-8 (overlong, surrogate, > U+10FFFF). */
size_t ebm_http_utf8_seq(const char *s);
bool ebm_http_utf8_valid(const char *s);

/* A JSON string literal, quotes included, escaped as RFC 8259 requires;
 * bytes that are not UTF-8 become U+FFFD. */
void ebm_http_buf_json_string(struct ebm_http_buf *b, const char *s);
/* The shortest decimal that reads back as v (finite; else "null"). */
void ebm_http_buf_json_float(struct ebm_http_buf *b, float v);
void ebm_http_buf_json_double(struct ebm_http_buf *b, double v);

/* The double nearest to the shortest decimal that reads back as f, so
 * 0.01f is reported as 0.01 rather than 0.0099999998. */
double ebm_http_float_value(float f);

/*
 * Numbers are written by an exact integer fast path, and by snprintf with
 * a strtof/strtod check (the reference) outside its range; both give the
 * same text. Tests force the reference to compare the two; returns the
 * previous setting.
 */
bool ebm_http_numbers_force_ref(bool on);

/* {"error":{"code":...,"message":...}} into b (reset first). */
void ebm_http_encode_error(struct ebm_http_buf *b,
		const struct ebm_http_error *e);

/* "results":[{"energy","score","p_value","anomaly"[,"contributions"]}...]
 * appended to b; contrib (n_rows x d) may be NULL. */
void ebm_http_encode_score_results(struct ebm_http_buf *b,
		const struct ebm_score *s, size_t n_rows, const float *contrib,
		size_t d);

/* As ebm_http_encode_score_results, and a row of x (n_rows x d) with NaN
 * (missing) gets "missing":[indices] and "imputed":[the values of
 * completed there] after "anomaly". */
void ebm_http_encode_score_results_missing(struct ebm_http_buf *b,
		const struct ebm_score *s, size_t n_rows, const float *contrib,
		size_t d, const float *x, const float *completed);

/* "results":[{"repaired","delta","energy_before","energy_after",
 * "p_value_before","p_value_after"}...] appended to b. x and repaired are
 * n_rows x d; delta_scratch holds d floats. */
void ebm_http_encode_repair_results(struct ebm_http_buf *b,
		const float *x, const float *repaired, float *delta_scratch,
		size_t n_rows, size_t d, const float *e_before, const float *e_after,
		const double *p_before, const double *p_after);

/* ======================================================================
 * Feature schema of a served model: count and optional names
 * ==================================================================== */

struct ebm_http_schema {
	size_t d;
	const char *const *names;  /* d borrowed names, or NULL (positional) */
	uint32_t *order;           /* owned: indices sorted by name, or NULL */
};

/*
 * names (d strings, borrowed; they must outlive the schema) may be NULL.
 * Returns false only when memory runs out.
 */
bool ebm_http_schema_init(struct ebm_http_schema *s, size_t d,
		const char *const *names);
void ebm_http_schema_finish(struct ebm_http_schema *s);
/* Index of the feature `name`, or -1 (also when the schema has no names). */
long ebm_http_schema_index(const struct ebm_http_schema *s, const char *name);

/* ======================================================================
 * Requests (request.c)
 *
 * Decoding runs in two phases so that the status precedence of API.md
 * holds (..., 413, 415, 400, 404 unknown model, 422):
 *   1. ebm_http_request_parse(): JSON syntax and types (400), the row
 *      count (413) and the Content-Type verdict (415), without the model;
 *   2. after the route has found the model (404), the ebm_http_request_*
 *      checks against its schema and the documented bounds (422).
 * ==================================================================== */

enum ebm_http_kind {
	EBM_HTTP_KIND_SCORE,    /* POST /v1/models/{name}/score */
	EBM_HTTP_KIND_REPAIR,   /* POST /v1/models/{name}/repair */
	EBM_HTTP_KIND_COMPOSE,  /* POST /v1/score */
};

struct ebm_http_request {
	enum ebm_http_kind kind;
	struct json_t *root;       /* owned */
	struct json_t *instances;  /* borrowed from root: an array, or NULL
	                            * when the fast path read the rows */
	size_t n_rows;
	/* The fast path's rows (root and instances NULL): n_rows x width
	 * floats, owned. */
	float *values;
	size_t n_values;
	size_t width;
	/* score and compose */
	bool has_null;             /* some feature is null (missing) */
	bool has_alpha;
	double alpha;
	bool explain;
	/* repair: values as sent; bounds are checked in phase 2 */
	bool has_steps;
	double steps;              /* an integral number */
	bool has_step_size;
	double step_size;
	struct json_t *fixed;      /* borrowed: array of ints/strings, or NULL */
	/* compose */
	size_t n_models;
	const char **models;       /* owned array of strings borrowed from root */
	double *weights;           /* owned, n_models, or NULL (all 1) */
	size_t n_weights;          /* as sent; must equal n_models (phase 2) */
};

/*
 * Phase 1. `content_type_ok` is the route's verdict on the Content-Type
 * header, passed in so that a 413 for too many rows still wins over a 415.
 * On failure e says why (413, 415 or 400) and r holds nothing; on success
 * release r with ebm_http_request_finish().
 */
bool ebm_http_request_parse(struct ebm_http_request *r,
		enum ebm_http_kind kind, const char *body, size_t len,
		bool content_type_ok, size_t max_rows, struct ebm_http_error *e);
void ebm_http_request_finish(struct ebm_http_request *r);

/*
 * Score bodies of the common shape are read without jansson (request.c
 * says which); true sends every body through jansson, for tests that
 * compare the two. Returns the previous setting.
 */
bool ebm_http_request_force_jansson(bool on);

/* Phase 2, 422: alpha in (0, 1), steps in 1..EBM_REPAIR_MAX_STEPS,
 * step_size in (0, EBM_REPAIR_MAX_STEP_SIZE], one weight > 0 per model,
 * 1..EBM_PRODUCT_MAX_MODELS distinct models, at least one instance. */
bool ebm_http_request_check(const struct ebm_http_request *r,
		struct ebm_http_error *e);

/*
 * Phase 2, 422: converts the rows into x (n_rows x s->d floats, raw units,
 * caller-supplied). Arrays must have d numbers; objects must name every
 * feature exactly once, and only for a schema with names.
 */
bool ebm_http_request_rows(const struct ebm_http_request *r,
		const struct ebm_http_schema *s, float *x, struct ebm_http_error *e);

/* Phase 2, 422: fixed[j] (s->d flags, caller-supplied) from `fixed`. */
bool ebm_http_request_fixed(const struct ebm_http_request *r,
		const struct ebm_http_schema *s, bool *fixed,
		struct ebm_http_error *e);

/* ======================================================================
 * Metrics (prom.c)
 * ==================================================================== */

enum ebm_http_endpoint {
	EBM_HTTP_EP_HEALTHZ = 0,
	EBM_HTTP_EP_READYZ,
	EBM_HTTP_EP_METRICS,
	EBM_HTTP_EP_MODELS,
	EBM_HTTP_EP_MODEL,
	EBM_HTTP_EP_SCORE,
	EBM_HTTP_EP_REPAIR,
	EBM_HTTP_EP_COMPOSE,
	/* Open Inference Protocol (v2.c); versioned paths share the label of
	 * the unversioned one. */
	EBM_HTTP_EP_V2_LIVE,
	EBM_HTTP_EP_V2_READY,
	EBM_HTTP_EP_V2_SERVER,
	EBM_HTTP_EP_V2_MODEL,
	EBM_HTTP_EP_V2_MODEL_READY,
	EBM_HTTP_EP_V2_INFER,
	EBM_HTTP_EP_V2_REPO_INDEX,
	EBM_HTTP_EP_V2_REPO_LOAD,
	EBM_HTTP_EP_V2_REPO_UNLOAD,
	/* monitor (drift.c, ui.c) */
	EBM_HTTP_EP_DRIFT,         /* GET /v1/models/{name}/drift */
	EBM_HTTP_EP_UI,            /* GET /ui, /ui/data ([monitor] ui) */
	/* end monitor */
	EBM_HTTP_EP_OTHER,         /* unknown paths (404) */
	EBM_HTTP_EP_COUNT
};

/* The endpoint's label: the path template ("/v1/models/{name}/score"). */
const char *ebm_http_endpoint_label(enum ebm_http_endpoint ep);

#define EBM_HTTP_P_BUCKETS 10
extern const double ebm_http_p_bucket_le[EBM_HTTP_P_BUCKETS];
struct ebm_http_drift;

/* Counters of one served name; lives as long as the metrics. */
struct ebm_http_model_stats {
	atomic_uint_fast64_t rows;
	atomic_uint_fast64_t anomalies;
	/* monitor (drift.c): ebmd_p_value, rows per bucket (not cumulative;
	 * bounds in ebm_http_p_bucket_le) and the sum of p-values; the
	 * current drift window of this name, touched only by the (one)
	 * catalog builder, never by requests (they use the entry's) */
	atomic_uint_fast64_t p_bucket[EBM_HTTP_P_BUCKETS];
	_Atomic double p_sum;
	struct ebm_http_drift *drift;
	/* end monitor */
};

struct ebm_http_metrics;

/* n_slots request-counter slots (one per worker thread). Aborts on OOM. */
struct ebm_http_metrics *ebm_http_metrics_create(size_t n_slots);
void ebm_http_metrics_destroy(struct ebm_http_metrics *m);

/*
 * The counters of `name`, created on first use and kept (Prometheus
 * counters must not go backwards, so a model that disappears and comes
 * back continues its counts). Thread-safe. Never NULL (aborts on OOM).
 */
struct ebm_http_model_stats *ebm_http_metrics_model(
		struct ebm_http_metrics *m, const char *name);

/* One model-file load attempt (ebmd_model_reloads_total). Thread-safe. */
void ebm_http_metrics_reload(struct ebm_http_metrics *m, bool ok);

/* One answered request; `slot` is the worker's own (single writer). */
void ebm_http_metrics_request(struct ebm_http_metrics *m, size_t slot,
		enum ebm_http_endpoint ep, int status, double seconds);

/* Why the server closed a connection on its own. */
enum ebm_http_drop {
	EBM_HTTP_DROP_REQUEST_TIMEOUT = 0, /* request not read in time */
	EBM_HTTP_DROP_IDLE_TIMEOUT,        /* no request within idle time */
	EBM_HTTP_DROP_WRITE_TIMEOUT,       /* response not read in time */
	EBM_HTTP_DROP_HEADERS_TOO_LARGE,   /* answered 431 and closed */
	EBM_HTTP_DROP_COUNT
};

/* Connections of a worker: `delta` opened (+1) or closed (-1)
 * (ebmd_connections_open); single writer per slot. */
void ebm_http_metrics_connection(struct ebm_http_metrics *m, size_t slot,
		int delta);

/* One connection closed by the server (ebmd_connections_dropped_total). */
void ebm_http_metrics_drop(struct ebm_http_metrics *m, size_t slot,
		enum ebm_http_drop why);

/* A label value escaped as the exposition format asks, quotes included. */
void ebm_http_prom_label(struct ebm_http_buf *b, const char *s);

/* The text exposition format (version 0.0.4) into b. */
void ebm_http_metrics_render(struct ebm_http_metrics *m, size_t models_loaded,
		struct ebm_http_buf *b);

/* ======================================================================
 * Catalog (catalog.c): what is served, as one immutable snapshot
 * ==================================================================== */

/* One loaded model file. Shared (refcounted) between the catalogs of
 * consecutive reloads while the file does not change. */
struct ebm_http_model {
	atomic_uint refs;
	struct ebm_model *model;   /* owned */
	char *name;                /* file stem */
	char *path;
	/* identity of the file that was loaded, to skip unchanged ones */
	uint64_t dev, ino, size;
	struct timespec mtime;
	time_t loaded_at;
};

/* Takes ownership of `model`; copies name and path; one reference. */
struct ebm_http_model *ebm_http_model_create(struct ebm_model *model,
		const char *name, const char *path);
struct ebm_http_model *ebm_http_model_ref(struct ebm_http_model *hm);
/* Drops a reference; the last one frees. NULL is ignored. */
void ebm_http_model_unref(struct ebm_http_model *hm);

/* A served name: a model file or a named composition. */
struct ebm_http_entry {
	char *name;
	bool composition;
	size_t n_models;
	struct ebm_http_model **models;  /* references held */
	double *weights;                 /* n_models */
	struct ebm_product *product;     /* owned; borrows the models */
	double alpha;                    /* default alpha in force */
	char version[13];
	char checksum[33];
	struct ebm_http_schema schema;
	const char **names;              /* schema names storage (borrowed
	                                  * strings), or NULL */
	char *info;                      /* model-info JSON text, owned */
	struct ebm_http_model_stats *stats;
	size_t file;                     /* model files: index in the
	                                  * catalog's files[] */
	struct ebm_http_drift *drift;    /* reference held, or NULL (no
	                                  * monitoring, or no metrics) */
};

/* Request-level settings that a reload may change with the models. */
struct ebm_http_settings {
	char *token;          /* owned; NULL: no authentication */
	size_t max_rows;
	bool has_alpha;       /* [models] alpha */
	double alpha;
	/* [monitor] */
	unsigned drift_window;  /* 0: monitoring off */
	double drift_alpha;
	bool ui;
};

/*
 * Bounds of POST /v1/score, whose product is built per request. The
 * catalog computes, as each model file is added (at load and reload, not
 * on the request path), every block a product of model files can need:
 * the energies of file a on the reference rows of file b, for every pair
 * of compatible files, up to EBM_HTTP_CROSS_MAX_FLOATS energies in all.
 * An ad-hoc product is then n additions per union reference row and a
 * sort; its union may have at most EBM_HTTP_ADHOC_MAX_REF rows, and the
 * blocks that did not fit the cache (computed for the request) at most
 * EBM_HTTP_ADHOC_MAX_EVALS energies. Beyond either it is refused (422,
 * composition_too_large); a [compose.NAME] section has no such bound.
 */
#define EBM_HTTP_CROSS_MAX_FLOATS ((size_t)4 << 20)   /* 16 MiB */
#define EBM_HTTP_ADHOC_MAX_REF ((size_t)1 << 18)      /* 262,144 rows */
#define EBM_HTTP_ADHOC_MAX_EVALS ((size_t)1 << 16)    /* 65,536 energies */

/*
 * Missing values: a score request may make ebmd profile at most this many
 * reference rows for missing sets not yet cached (each a descent), that
 * is at most EBM_HTTP_MAX_PROFILE_ROWS / n_ref new sets; beyond it is
 * 422 too_many_missing_sets, checked before any maths.
 */
#define EBM_HTTP_MAX_PROFILE_ROWS ((size_t)1 << 16)

struct ebm_http_catalog {
	atomic_uint refs;
	size_t n_entries;
	struct ebm_http_entry *entries;  /* sorted by name once sealed */
	size_t n_model_files;            /* entries that are files */
	struct ebm_http_settings settings;
	struct ebm_http_metrics *metrics; /* borrowed; may be NULL */
	/* The model files in the order added (borrowed from their entries),
	 * and the cached blocks: cross[a * cap + b] = energies of files[a] on
	 * the reference rows of files[b] (owned), or NULL. */
	const struct ebm_model **files;
	size_t cap;
	float **cross;
	size_t cross_floats;
};

/*
 * A new, empty catalog with one reference. `settings` is copied (token
 * duplicated). metrics (may be NULL, for --check-config) must outlive it.
 */
struct ebm_http_catalog *ebm_http_catalog_create(
		const struct ebm_http_settings *settings,
		struct ebm_http_metrics *metrics);

/*
 * Serves the model file `hm` (a reference is taken) under hm->name, with
 * the configured alpha if any, else the file's. ctx is scratch. False with
 * err set when the product cannot be built or memory runs out.
 */
bool ebm_http_catalog_add_model(struct ebm_http_catalog *c,
		struct ebm_http_model *hm, struct ebm_ctx *ctx,
		struct ebm_error *err);

/*
 * Serves the product of the named model files already added. alpha < 0:
 * the smallest of the experts' alphas in force. weights NULL: all 1.
 * Errors name the composition: an unknown model, a name already served,
 * incompatible models (MISMATCH).
 */
bool ebm_http_catalog_add_composition(struct ebm_http_catalog *c,
		const char *name, const char *const *models, const double *weights,
		size_t n, double alpha, struct ebm_ctx *ctx, struct ebm_error *err);

/*
 * The product of n model-file entries of c with weights (NULL: all 1) for
 * POST /v1/score, from the cached blocks: the same product, bit for bit,
 * as ebm_product_create() of those models. Refuses before any maths (422
 * composition_too_large) a product over the bounds above, and answers 422
 * invalid_models for a bad weight or a non-finite reference energy and
 * 422 incompatible_models for models that cannot compose. *evals (may be
 * NULL) receives the number of energies computed for this call.
 */
bool ebm_http_catalog_product(const struct ebm_http_catalog *c,
		const struct ebm_http_entry *const *entries, const double *weights,
		size_t n, struct ebm_ctx *ctx, struct ebm_product **out,
		size_t *evals, struct ebm_http_error *e);

/* Sorts the entries for lookup; call once, after the last add. */
void ebm_http_catalog_seal(struct ebm_http_catalog *c);

/* The entry called `name`, or NULL. Borrowed from c. */
const struct ebm_http_entry *ebm_http_catalog_find(
		const struct ebm_http_catalog *c, const char *name);

struct ebm_http_catalog *ebm_http_catalog_ref(struct ebm_http_catalog *c);
/* Drops a reference; the last one frees. NULL is ignored. Thread-safe. */
void ebm_http_catalog_unref(struct ebm_http_catalog *c);

/*
 * "version" and "checksum" of a product: 12 and 32 hex digits of XXH3-128
 * over its experts' checksums and weights. A product of one model with
 * weight 1 has that model's version and checksum.
 */
void ebm_http_product_version(const struct ebm_product *p, char version[13],
		char checksum[33]);

/* ======================================================================
 * Model info (model-info.c): the object of GET /v1/models/{name}
 * ==================================================================== */

/* The info object of an entry (model file or composition). */
struct json_t *ebm_http_entry_info(const struct ebm_http_entry *e);

/* ======================================================================
 * Server (server.c)
 * ==================================================================== */

struct ebm_http_options {
	const char *listen;          /* "HOST:PORT", "[v6]:PORT"; port 0 ok */
	unsigned threads;            /* >= 1 */
	uint64_t max_body_bytes;
	unsigned max_header_bytes;
	unsigned request_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned max_connections;
	unsigned drain_ms;           /* bound on the graceful stop */
};

struct ebm_http_server;

/*
 * Binds the listening socket and prepares every worker (event base, evhttp,
 * scratch). No thread runs yet. The caller keeps `metrics` alive.
 */
enum ebm_status ebm_http_server_create(const struct ebm_http_options *o,
		struct ebm_http_metrics *metrics, struct ebm_http_server **out,
		struct ebm_error *err);

/* "127.0.0.1:8080" as actually bound (the real port when 0 was asked). */
const char *ebm_http_server_address(const struct ebm_http_server *s);

/*
 * The model repository extension of /v2 (API.md section 5), provided by
 * the daemon: each call runs on a worker thread and returns once the
 * daemon has done it (serialized with reloads). index appends the JSON
 * array to out; each returns false with e set (400 a file that does not
 * load, 404 a name not served, 503 while stopping).
 */
struct ebm_http_repository {
	void *user;
	bool (*index)(void *user, struct ebm_http_buf *out,
			struct ebm_http_error *e);
	bool (*load)(void *user, const char *name, struct ebm_http_error *e);
	bool (*unload)(void *user, const char *name, struct ebm_http_error *e);
};

/* Installs the repository (borrowed; NULL: the endpoints answer 404).
 * Before the workers start. */
void ebm_http_server_set_repository(struct ebm_http_server *s,
		const struct ebm_http_repository *repo);
const struct ebm_http_repository *ebm_http_server_repository(
		const struct ebm_http_server *s);

/* Starts the worker threads. */
enum ebm_status ebm_http_server_start(struct ebm_http_server *s,
		struct ebm_error *err);

/*
 * Serves `c` from now on: takes over the caller's reference; requests
 * already running keep the catalog they started with, and the previous
 * catalog is freed by its last user. Thread-safe.
 */
void ebm_http_server_publish(struct ebm_http_server *s,
		struct ebm_http_catalog *c);

/* The current catalog with a new reference (release with unref), or NULL
 * before the first publish. Thread-safe. */
struct ebm_http_catalog *ebm_http_server_acquire(struct ebm_http_server *s);

/*
 * Begins the graceful stop: /readyz answers 503 at once; each worker
 * finishes the requests it has already received, stops accepting, closes
 * idle connections, and exits once its responses are written or drain_ms
 * has passed. `done` (may be NULL) is called once, from the last worker
 * thread to exit. Thread-safe; later calls do nothing.
 */
void ebm_http_server_stop(struct ebm_http_server *s, void (*done)(void *),
		void *user);

/* True once stop was called. */
bool ebm_http_server_stopping(const struct ebm_http_server *s);

/* Joins the workers (stop must have been called if they were started),
 * frees everything, and drops the current catalog. NULL is ignored. */
void ebm_http_server_destroy(struct ebm_http_server *s);

/* ======================================================================
 * Workers (server.c runs them, routes.c answers their requests)
 * ==================================================================== */

struct evhttp_request;

/* Grow-only scratch arrays of a worker, one per purpose. */
enum ebm_http_scratch {
	EBM_HTTP_SCRATCH_X = 0,     /* request rows, n x d floats */
	EBM_HTTP_SCRATCH_OUT,       /* repaired rows / contributions */
	EBM_HTTP_SCRATCH_SCORES,    /* struct ebm_score per row */
	EBM_HTTP_SCRATCH_E_BEFORE,
	EBM_HTTP_SCRATCH_E_AFTER,
	EBM_HTTP_SCRATCH_P_BEFORE,
	EBM_HTTP_SCRATCH_P_AFTER,
	EBM_HTTP_SCRATCH_ROW,       /* d floats (deltas) */
	EBM_HTTP_SCRATCH_FIXED,     /* d bools */
	EBM_HTTP_SCRATCH_COMPLETED, /* rows with missing values filled in */
	EBM_HTTP_SCRATCH_COUNT
};

struct ebm_http_worker {
	struct ebm_http_server *server;
	const struct ebm_http_options *options;  /* the server's */
	struct ebm_http_metrics *metrics;
	struct ebm_http_model_stats *adhoc_stats; /* "_adhoc" counters */
	size_t index;                 /* metrics slot */
	struct ebm_ctx *ctx;          /* the maths' scratch, reused */
	struct ebm_http_buf out;      /* response body, reused */
	struct {
		void *p;
		size_t bytes;
	} scratch[EBM_HTTP_SCRATCH_COUNT];
	/* Set by the worker itself once it has seen the stop: requests that
	 * begin from then on are answered 503; a request whose bytes had begun
	 * to arrive before is in flight and answered as usual. Either way the
	 * answer carries "Connection: close" (closing). */
	bool draining;
	bool closing;
	/* The request is under /v2: errors take the protocol's shape. */
	bool v2;
};

/* n * size bytes of the given scratch (contents undefined), or NULL on
 * overflow or when memory runs out. Valid until the next call for the
 * same purpose. */
void *ebm_http_worker_scratch(struct ebm_http_worker *w,
		enum ebm_http_scratch which, size_t n, size_t size);

/* routes.c, for v2.c: sends w->out (or a 500 if it failed to grow) with
 * the status and Content-Type; an error as JSON in the shape of the
 * request's API (w->v2). Both return the status sent. */
int ebm_http_reply(struct ebm_http_worker *w, struct evhttp_request *req,
		int status, const char *content_type);
int ebm_http_reply_error(struct ebm_http_worker *w,
		struct evhttp_request *req, const struct ebm_http_error *e);

/* routes.c: no Content-Type, or application/json (charset utf-8 at most). */
bool ebm_http_content_type_json(struct evhttp_request *req);

/*
 * routes.c: the one scoring path of /v1 and /v2. Scores the n rows x (n x
 * d floats, raw units) against p at alpha, with contributions when
 * explain, records them (ebm_http_record_scores: rows, anomalies, the
 * p-value histogram and the drift window; stats and drift may be NULL,
 * ad-hoc products have no window). *scores and
 * *contrib (NULL unless explain) are the worker's scratch. With
 * has_missing, NaN features are missing (API.md section 6): the rows are
 * profiled (missing.h) and *completed is the worker's scratch with them
 * filled in (NULL otherwise); contributions are of the completed rows.
 * On failure e names the row as "<rows>[i]" (rows: "instances", "inputs").
 */
bool ebm_http_score(struct ebm_http_worker *w, const struct ebm_product *p,
		struct ebm_http_model_stats *stats, struct ebm_http_drift *drift,
		const float *x, size_t n,
		size_t d, double alpha, bool explain, bool has_missing,
		const char *rows, struct ebm_score **scores, float **contrib,
		const float **completed, struct ebm_http_error *e);

/* ======================================================================
 * Open Inference Protocol, /v2 (v2.c, tensor.c)
 * ==================================================================== */

/* "/v2..." into its endpoint, {name} and {version} (malloc'ed, or NULL);
 * false when the path is not a /v2 endpoint. */
bool ebm_http_v2_match(const char *path, enum ebm_http_endpoint *ep,
		char **name, char **version);
/* Whether the endpoint is one of /v2's. */
bool ebm_http_v2_endpoint(enum ebm_http_endpoint ep);
/* {"error":"..."} into b (reset first). */
void ebm_http_v2_encode_error(struct ebm_http_buf *b,
		const struct ebm_http_error *e);
/* Answers a /v2 request whose head passed (c: the catalog, may be NULL
 * for the health and repository endpoints). */
int ebm_http_v2(struct ebm_http_worker *w, struct evhttp_request *req,
		enum ebm_http_endpoint ep, const char *name, const char *version,
		const struct ebm_http_catalog *c);

/*
 * A decoded infer request (tensor.c): phase 1 of section 2's precedence,
 * without the model. Every input's values are checked (finite, within a
 * float) and converted to floats.
 */
#define EBM_HTTP_V2_MAX_INPUTS 4096
#define EBM_HTTP_V2_MAX_OUTPUTS 16

struct ebm_http_v2_input {
	const char *name;       /* borrowed from the JSON header */
	bool fp64;
	size_t rank;            /* 1 or 2 */
	uint64_t shape[2];
	size_t count;           /* elements: the shape's product */
	float *values;          /* owned, count floats, row-major */
};

struct ebm_http_v2_output {
	const char *name;       /* borrowed */
	int binary;             /* -1: not said, 0, 1 */
};

struct ebm_http_v2_request {
	struct json_t *root;    /* owned: the JSON (header) */
	const char *id;         /* borrowed, or NULL */
	size_t n_inputs;
	struct ebm_http_v2_input *inputs;   /* owned */
	size_t n_outputs;       /* 0: the default outputs */
	struct ebm_http_v2_output outputs[EBM_HTTP_V2_MAX_OUTPUTS];
	bool has_alpha;
	double alpha;
	bool explain;
	bool binary_output;     /* parameters.binary_data_output */
	size_t n_rows;          /* N of the inputs (all agree) */
	/* The fast path's strings (root NULL): name and id point here. */
	char fast_name[128];
	char fast_id[128];
};

/*
 * body (len bytes) with header_len the Inference-Header-Content-Length
 * (or -1 without the header). content_type_ok: the route's verdict. 413,
 * 415, 400 as section 2 orders them; e says what and where.
 */
bool ebm_http_v2_parse(struct ebm_http_v2_request *r, const char *body,
		size_t len, long long header_len, bool content_type_ok,
		size_t max_rows, struct ebm_http_error *e);
void ebm_http_v2_finish(struct ebm_http_v2_request *r);

/* Phase 2 (422): the inputs as n_rows x s->d floats into x. */
bool ebm_http_v2_rows(const struct ebm_http_v2_request *r,
		const struct ebm_http_schema *s, float *x, struct ebm_http_error *e);

/* request.c's fast-path number reader, for tensor.c's: the JSON number at
 * *p (a '-' or a digit) as the double jansson would give for it, *p moved
 * past it; false when it is not one or outside the exact range (the
 * caller then falls back to jansson). A digit right after a leading 0 is
 * left for the caller to refuse. */
bool ebm_http_json_number(const char **p, const char *end, double *out);

/* V2 infer bodies of the common shape are read without jansson (tensor.c
 * says which); true sends every body through jansson, for tests that
 * compare the two. Returns the previous setting. */
bool ebm_http_v2_force_jansson(bool on);

/* Phase 1 helper shared with /v1 (request.c): a value that must become a
 * float; 400 naming `where` when it is not finite or does not fit. */
bool ebm_http_check_value(double x, const char *where,
		struct ebm_http_error *e);

/* routes.c: answers one complete request (exactly one reply). */
void ebm_http_route(struct ebm_http_worker *w, struct evhttp_request *req);

/*
 * routes.c, for conn.c: the whole HTTP response (status line, headers
 * with Connection: close, JSON body) into *out for a request whose body
 * is beyond the hard cap and is not read, from its request line (method,
 * target) and Authorization header (may be NULL): the 404 (path), 405,
 * 401 or 503 it would get anyway, else 413 naming `bytes` (the declared
 * Content-Length when `declared`, else how much had arrived). Counted in
 * the request metrics like any answer.
 */
void ebm_http_refuse_oversized(struct ebm_http_worker *w, const char *method,
		const char *target, const char *authorization, uint64_t bytes,
		bool declared, struct ebm_http_buf *out);


/* ======================================================================
 * Monitor (drift.c): p-value windows, drift, the status page's aggregates
 * ==================================================================== */

/*
 * Scores n rows of x against `product` and records them: rows and
 * anomalies into stats, and, when drift is not NULL, the p-value
 * histogram and the drift window. THE scoring call of every served entry
 * (/v1 score, and any other protocol's): pass entry->product,
 * entry->stats, entry->drift. stats and drift may be NULL (ad hoc
 * products pass their own stats and no window). Recording is lock-free:
 * a few relaxed atomic adds per request and one store per row.
 */
enum ebm_status ebm_http_score_rows(const struct ebm_product *product,
		struct ebm_http_model_stats *stats, struct ebm_http_drift *drift,
		struct ebm_ctx *ctx, const float *x, size_t n, double alpha,
		struct ebm_score *out, struct ebm_error *err);
/* The recording half of ebm_http_score_rows, for scores computed another
 * way (rows with missing values): the same counts, histogram and window. */
void ebm_http_record_scores(struct ebm_http_model_stats *stats,
		struct ebm_http_drift *drift, const struct ebm_score *out, size_t n);

/*
 * The window of `stats`' name for an entry with this product and version:
 * the current one (a new reference) when version and window size are the
 * same, else a new, empty one that becomes current. Called by the
 * catalog builder only. Never NULL (aborts on OOM).
 */
struct ebm_http_drift *ebm_http_drift_attach(struct ebm_http_model_stats *stats,
		const struct ebm_product *product, const char *version,
		size_t window);
void ebm_http_drift_unref(struct ebm_http_drift *d);

/* The answer of GET /v1/models/{name}/drift, computed now. */
struct ebm_http_drift_report {
	size_t window;      /* 0: monitoring off */
	size_t count;       /* rows in the window, <= window */
	uint64_t total;     /* rows recorded since the window began */
	double statistic;   /* NAN when count == 0 */
	double p_value;     /* NAN when count == 0 */
	bool drift;
	time_t checked_at;
};

/* d may be NULL (monitoring off). Thread-safe; takes the window's lock,
 * which the scoring path never does. Also appends the result to the
 * window's history (at most one point a second). */
void ebm_http_drift_check(struct ebm_http_drift *d, double drift_alpha,
		struct ebm_http_drift_report *r);

/* {"model","window","count","statistic","p_value","drift","checked_at"} */
void ebm_http_drift_encode(struct ebm_http_buf *b, const char *name,
		const struct ebm_http_drift_report *r);

/* ebmd_drift_statistic and ebmd_drift of every monitored entry of c. */
void ebm_http_drift_render(const struct ebm_http_catalog *c,
		struct ebm_http_buf *b);

/* ebmd_p_value{model=name} of stats (for prom.c). */
void ebm_http_p_value_render(struct ebm_http_buf *b, const char *name,
		const struct ebm_http_model_stats *stats, bool help);

/*
 * The status page's data for every entry of c (ui.c polls it):
 * {"models":[{"model","drift":{...as GET drift},"rows","anomalies",
 * "p_hist":[...],"score_hist":{"lo","hi","window":[...],"reference":[...],
 * "below","above"},"history":[[t,statistic,p_value],...],"rows_per_s",
 * "anomalies_per_s"}],"time"}; the rates are over about the last minute of
 * checks (null before two checks a second apart).
 * Aggregates only, never rows.
 */
void ebm_http_monitor_encode(const struct ebm_http_catalog *c,
		struct ebm_http_buf *b);

/* ui.c: the page (generated from ui.html at build time). */
extern const char ebm_http_ui_html[];

#endif
