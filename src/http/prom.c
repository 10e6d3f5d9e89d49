/*
 * prom.c — the counters behind GET /metrics and their Prometheus text
 * exposition (format 0.0.4).
 *
 * Request counters and the latency histogram live in one slot per worker
 * thread: each slot has a single writer, which updates it with relaxed
 * atomic loads and stores (no locked read-modify-write on the request
 * path), and a scrape sums the slots. Per-model counters are shared by
 * all workers and use atomic adds, once per request rather than per row.
 * The table of model names only grows (under a mutex, at catalog build
 * time), so the pointers handed out stay valid.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "util/util.h"

/* Upper bounds (seconds) of the latency buckets: 0.5 ms to 10 s. */
static const double bucket_le[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
	2.5, 5.0, 10.0,
};
#define N_BUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

/* The status codes the daemon itself answers with; anything else (none
 * expected) is counted as code="other". */
static const int status_codes[] = {
	200, 400, 401, 404, 405, 413, 415, 422, 500, 503,
};
#define N_CODES (sizeof(status_codes) / sizeof(status_codes[0]) + 1)

static const char *const endpoint_labels[EBM_HTTP_EP_COUNT] = {
	[EBM_HTTP_EP_HEALTHZ] = "/healthz",
	[EBM_HTTP_EP_READYZ] = "/readyz",
	[EBM_HTTP_EP_METRICS] = "/metrics",
	[EBM_HTTP_EP_MODELS] = "/v1/models",
	[EBM_HTTP_EP_MODEL] = "/v1/models/{name}",
	[EBM_HTTP_EP_SCORE] = "/v1/models/{name}/score",
	[EBM_HTTP_EP_REPAIR] = "/v1/models/{name}/repair",
	[EBM_HTTP_EP_COMPOSE] = "/v1/score",
	[EBM_HTTP_EP_V2_LIVE] = "/v2/health/live",
	[EBM_HTTP_EP_V2_READY] = "/v2/health/ready",
	[EBM_HTTP_EP_V2_SERVER] = "/v2",
	[EBM_HTTP_EP_V2_MODEL] = "/v2/models/{name}",
	[EBM_HTTP_EP_V2_MODEL_READY] = "/v2/models/{name}/ready",
	[EBM_HTTP_EP_V2_INFER] = "/v2/models/{name}/infer",
	[EBM_HTTP_EP_V2_REPO_INDEX] = "/v2/repository/index",
	[EBM_HTTP_EP_V2_REPO_LOAD] = "/v2/repository/models/{name}/load",
	[EBM_HTTP_EP_V2_REPO_UNLOAD] = "/v2/repository/models/{name}/unload",
	[EBM_HTTP_EP_DRIFT] = "/v1/models/{name}/drift",
	[EBM_HTTP_EP_UI] = "/ui",
	[EBM_HTTP_EP_OTHER] = "other",
};

struct slot {
	atomic_uint_fast64_t count[EBM_HTTP_EP_COUNT][N_CODES];
	/* Per bucket, not cumulative; the render accumulates. */
	atomic_uint_fast64_t bucket[EBM_HTTP_EP_COUNT][N_BUCKETS];
	atomic_uint_fast64_t total[EBM_HTTP_EP_COUNT];
	atomic_uint_fast64_t sum_ns[EBM_HTTP_EP_COUNT];
	atomic_int_fast64_t conns_open;
	atomic_uint_fast64_t drops[EBM_HTTP_DROP_COUNT];
};

static const char *const drop_labels[EBM_HTTP_DROP_COUNT] = {
	[EBM_HTTP_DROP_REQUEST_TIMEOUT] = "request_timeout",
	[EBM_HTTP_DROP_IDLE_TIMEOUT] = "idle_timeout",
	[EBM_HTTP_DROP_WRITE_TIMEOUT] = "write_timeout",
	[EBM_HTTP_DROP_HEADERS_TOO_LARGE] = "headers_too_large",
};

struct named_stats {
	char *name;
	struct ebm_http_model_stats stats;
};

struct ebm_http_metrics {
	size_t n_slots;
	struct slot *slots;
	pthread_mutex_t lock;        /* guards the table below */
	size_t n_models;
	size_t cap_models;
	struct named_stats **models;
	atomic_uint_fast64_t reload_ok;
	atomic_uint_fast64_t reload_error;
};

const char *ebm_http_endpoint_label(enum ebm_http_endpoint ep)
{
	return ep < EBM_HTTP_EP_COUNT ? endpoint_labels[ep] : "other";
}

struct ebm_http_metrics *ebm_http_metrics_create(size_t n_slots)
{
	struct ebm_http_metrics *m = ebm_xcalloc(1, sizeof(*m));
	m->n_slots = n_slots > 0 ? n_slots : 1;
	m->slots = ebm_xcalloc(m->n_slots, sizeof(*m->slots));
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void ebm_http_metrics_destroy(struct ebm_http_metrics *m)
{
	if (m == NULL) {
		return;
	}
	for (size_t i = 0; i < m->n_models; i++) {
		ebm_http_drift_unref(m->models[i]->stats.drift);  /* monitor */
		free(m->models[i]->name);
		free(m->models[i]);
	}
	free(m->models);
	pthread_mutex_destroy(&m->lock);
	free(m->slots);
	free(m);
}

struct ebm_http_model_stats *ebm_http_metrics_model(
		struct ebm_http_metrics *m, const char *name)
{
	pthread_mutex_lock(&m->lock);
	struct ebm_http_model_stats *found = NULL;
	for (size_t i = 0; i < m->n_models && found == NULL; i++) {
		if (strcmp(m->models[i]->name, name) == 0) {
			found = &m->models[i]->stats;
		}
	}
	if (found == NULL) {
		if (m->n_models == m->cap_models) {
			m->cap_models = m->cap_models > 0 ? 2 * m->cap_models : 16;
			m->models = ebm_xrealloc(m->models,
					m->cap_models * sizeof(*m->models));
		}
		struct named_stats *ns = ebm_xcalloc(1, sizeof(*ns));
		ns->name = ebm_xstrdup(name);
		atomic_init(&ns->stats.rows, 0);
		atomic_init(&ns->stats.anomalies, 0);
		m->models[m->n_models++] = ns;
		found = &ns->stats;
	}
	pthread_mutex_unlock(&m->lock);
	return found;
}

void ebm_http_metrics_reload(struct ebm_http_metrics *m, bool ok)
{
	if (m != NULL) {
		atomic_fetch_add(ok ? &m->reload_ok : &m->reload_error, 1);
	}
}

/* Single-writer increment: plain load and store, no locked instruction. */
static void bump(atomic_uint_fast64_t *c, uint64_t by)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
			+ by, memory_order_relaxed);
}

void ebm_http_metrics_request(struct ebm_http_metrics *m, size_t slot,
		enum ebm_http_endpoint ep, int status, double seconds)
{
	if (m == NULL || slot >= m->n_slots || ep >= EBM_HTTP_EP_COUNT) {
		return;
	}
	struct slot *s = &m->slots[slot];
	size_t code = N_CODES - 1;
	for (size_t i = 0; i + 1 < N_CODES; i++) {
		if (status_codes[i] == status) {
			code = i;
			break;
		}
	}
	bump(&s->count[ep][code], 1);
	size_t b = 0;
	while (b < N_BUCKETS && seconds > bucket_le[b]) {
		b++;
	}
	if (b < N_BUCKETS) {
		bump(&s->bucket[ep][b], 1);
	}
	bump(&s->total[ep], 1);
	bump(&s->sum_ns[ep], seconds > 0 ? (uint64_t)(seconds * 1e9) : 0);
}

void ebm_http_metrics_connection(struct ebm_http_metrics *m, size_t slot,
		int delta)
{
	if (m == NULL || slot >= m->n_slots) {
		return;
	}
	atomic_int_fast64_t *c = &m->slots[slot].conns_open;
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
			+ delta, memory_order_relaxed);
}

void ebm_http_metrics_drop(struct ebm_http_metrics *m, size_t slot,
		enum ebm_http_drop why)
{
	if (m != NULL && slot < m->n_slots && why < EBM_HTTP_DROP_COUNT) {
		bump(&m->slots[slot].drops[why], 1);
	}
}

static uint64_t load(const atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* A label value escaped as the exposition format asks. */
void ebm_http_prom_label(struct ebm_http_buf *b, const char *s)
{
	ebm_http_buf_add(b, "\"", 1);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"') {
			ebm_http_buf_add(b, "\\", 1);
			ebm_http_buf_add(b, p, 1);
		} else if (*p == '\n') {
			ebm_http_buf_add(b, "\\n", 2);
		} else if ((unsigned char)*p < 0x80) {
			ebm_http_buf_add(b, p, 1);
		} else {
			/* The exposition format is UTF-8. */
			size_t n = ebm_http_utf8_seq(p);
			if (n == 0) {
				ebm_http_buf_add(b, "\xef\xbf\xbd", 3);
			} else {
				ebm_http_buf_add(b, p, n);
				p += n - 1;
			}
		}
	}
	ebm_http_buf_add(b, "\"", 1);
}

static void render_requests(struct ebm_http_metrics *m,
		struct ebm_http_buf *b)
{
	ebm_http_buf_puts(b,
			"# HELP ebmd_requests_total HTTP requests answered, by endpoint "
			"and status code.\n"
			"# TYPE ebmd_requests_total counter\n");
	for (size_t ep = 0; ep < EBM_HTTP_EP_COUNT; ep++) {
		for (size_t c = 0; c < N_CODES; c++) {
			uint64_t n = 0;
			for (size_t s = 0; s < m->n_slots; s++) {
				n += load(&m->slots[s].count[ep][c]);
			}
			if (n == 0) {
				continue;
			}
			ebm_http_buf_printf(b,
					"ebmd_requests_total{endpoint=\"%s\",code=\"",
					endpoint_labels[ep]);
			if (c + 1 < N_CODES) {
				ebm_http_buf_printf(b, "%d", status_codes[c]);
			} else {
				ebm_http_buf_puts(b, "other");
			}
			ebm_http_buf_printf(b, "\"} %llu\n", (unsigned long long)n);
		}
	}
}

static void render_histogram(struct ebm_http_metrics *m,
		struct ebm_http_buf *b)
{
	ebm_http_buf_puts(b,
			"# HELP ebmd_request_duration_seconds Time from a complete "
			"request to its queued response.\n"
			"# TYPE ebmd_request_duration_seconds histogram\n");
	for (size_t ep = 0; ep < EBM_HTTP_EP_COUNT; ep++) {
		uint64_t total = 0;
		uint64_t sum_ns = 0;
		for (size_t s = 0; s < m->n_slots; s++) {
			total += load(&m->slots[s].total[ep]);
			sum_ns += load(&m->slots[s].sum_ns[ep]);
		}
		if (total == 0) {
			continue;
		}
		const char *label = endpoint_labels[ep];
		uint64_t cum = 0;
		for (size_t k = 0; k < N_BUCKETS; k++) {
			for (size_t s = 0; s < m->n_slots; s++) {
				cum += load(&m->slots[s].bucket[ep][k]);
			}
			/* The slots are read one after the other while workers
			 * keep counting: keep the buckets monotonic. */
			if (cum > total) {
				total = cum;
			}
			ebm_http_buf_printf(b,
					"ebmd_request_duration_seconds_bucket{endpoint=\"%s\","
					"le=\"%g\"} %llu\n", label, bucket_le[k],
					(unsigned long long)cum);
		}
		ebm_http_buf_printf(b,
				"ebmd_request_duration_seconds_bucket{endpoint=\"%s\","
				"le=\"+Inf\"} %llu\n"
				"ebmd_request_duration_seconds_sum{endpoint=\"%s\"} %.9g\n"
				"ebmd_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
				label, (unsigned long long)total, label,
				(double)sum_ns / 1e9, label, (unsigned long long)total);
	}
}

static void render_models(struct ebm_http_metrics *m, struct ebm_http_buf *b)
{
	pthread_mutex_lock(&m->lock);
	ebm_http_buf_puts(b,
			"# HELP ebmd_rows_scored_total Rows scored, by model or "
			"composition (ad-hoc /v1/score products count as \"_adhoc\").\n"
			"# TYPE ebmd_rows_scored_total counter\n");
	for (size_t i = 0; i < m->n_models; i++) {
		ebm_http_buf_puts(b, "ebmd_rows_scored_total{model=");
		ebm_http_prom_label(b, m->models[i]->name);
		ebm_http_buf_printf(b, "} %llu\n",
				(unsigned long long)load(&m->models[i]->stats.rows));
	}
	ebm_http_buf_puts(b,
			"# HELP ebmd_anomalies_total Scored rows flagged as anomalies "
			"(p_value < alpha).\n"
			"# TYPE ebmd_anomalies_total counter\n");
	for (size_t i = 0; i < m->n_models; i++) {
		ebm_http_buf_puts(b, "ebmd_anomalies_total{model=");
		ebm_http_prom_label(b, m->models[i]->name);
		ebm_http_buf_printf(b, "} %llu\n",
				(unsigned long long)load(&m->models[i]->stats.anomalies));
	}
	for (size_t i = 0; i < m->n_models; i++) {  /* monitor */
		ebm_http_p_value_render(b, m->models[i]->name,
				&m->models[i]->stats, i == 0);
	}
	pthread_mutex_unlock(&m->lock);
}

static void render_connections(struct ebm_http_metrics *m,
		struct ebm_http_buf *b)
{
	int64_t open = 0;
	for (size_t s = 0; s < m->n_slots; s++) {
		open += atomic_load_explicit(&m->slots[s].conns_open,
				memory_order_relaxed);
	}
	ebm_http_buf_printf(b,
			"# HELP ebmd_connections_open Client connections open.\n"
			"# TYPE ebmd_connections_open gauge\n"
			"ebmd_connections_open %lld\n"
			"# HELP ebmd_connections_dropped_total Connections closed by "
			"ebmd: a request not received within request_timeout_ms, no "
			"request within idle_timeout_ms, a response not read for "
			"request_timeout_ms, or headers over max_header_bytes "
			"(answered 431).\n"
			"# TYPE ebmd_connections_dropped_total counter\n",
			(long long)(open > 0 ? open : 0));
	for (size_t k = 0; k < EBM_HTTP_DROP_COUNT; k++) {
		uint64_t n = 0;
		for (size_t s = 0; s < m->n_slots; s++) {
			n += load(&m->slots[s].drops[k]);
		}
		ebm_http_buf_printf(b,
				"ebmd_connections_dropped_total{reason=\"%s\"} %llu\n",
				drop_labels[k], (unsigned long long)n);
	}
}

void ebm_http_metrics_render(struct ebm_http_metrics *m, size_t models_loaded,
		struct ebm_http_buf *b)
{
	render_requests(m, b);
	render_histogram(m, b);
	render_models(m, b);
	render_connections(m, b);
	ebm_http_buf_printf(b,
			"# HELP ebmd_models_loaded Model files being served.\n"
			"# TYPE ebmd_models_loaded gauge\n"
			"ebmd_models_loaded %zu\n"
			"# HELP ebmd_model_reloads_total Model file load attempts, by "
			"result.\n"
			"# TYPE ebmd_model_reloads_total counter\n"
			"ebmd_model_reloads_total{result=\"ok\"} %llu\n"
			"ebmd_model_reloads_total{result=\"error\"} %llu\n"
			"# HELP ebmd_build_info Version of the running ebmd.\n"
			"# TYPE ebmd_build_info gauge\n"
			"ebmd_build_info{version=\"%s\"} 1\n",
			models_loaded,
			(unsigned long long)atomic_load(&m->reload_ok),
			(unsigned long long)atomic_load(&m->reload_error),
			EBM_VERSION_STRING);
}
