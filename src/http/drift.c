/*
 * drift.c — what ebmd watches in the traffic of each served name (API.md
 * section 6): the p-values of the last `window` rows scored, their KS test
 * against the reference set (the maths is libebm's ebm_drift_test), the
 * ebmd_p_value histogram, and the aggregates of the status page.
 *
 * The scoring path only writes: one relaxed atomic fetch-add on the
 * window's head per request, then one relaxed store per row into its ring
 * slot (the grid index k of the p-value, and the score), and a few adds to
 * the histogram. A reader (GET drift, a scrape, the page) copies the ring
 * under the window's own mutex, which writers never take, and tests the
 * copy: a row being stored during the copy is counted with its previous
 * value or, in a ring not yet full, left out; nothing else can tear.
 *
 * One window per served name (a model file or a named composition), kept
 * across reloads while its version (file content; experts and weights) and
 * the window size stay the same, and started afresh otherwise. Ad-hoc
 * products of POST /v1/score have none (they are not a served name).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ebm/drift.h"
#include "http/http.h"
#include "info/info.h"
#include "util/util.h"

const double ebm_http_p_bucket_le[EBM_HTTP_P_BUCKETS] = {
	0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0,
};

#define HISTORY 120      /* past statistics kept per window */
#define HIST_BINS 20     /* bins of the page's histograms */

struct point {
	time_t t;
	double statistic;
	double p_value;
	uint64_t rows;       /* recorded by then */
	uint64_t anomalies;
};

#define RATE_SECONDS 60  /* the page's rates: over about the last minute */

struct ebm_http_drift {
	atomic_uint refs;
	char version[13];
	size_t window;
	uint32_t n_grid;               /* n_ref + 1 of the entry's product */
	atomic_uint_fast64_t head;     /* rows recorded */
	atomic_uint_fast64_t anomalies;  /* of those, flagged */
	_Atomic uint32_t *k;           /* ring: grid index of the p-value, 0
	                                * while never written */
	_Atomic float *score;          /* ring: score */
	/* the reference set's scores, for the page */
	float ref_lo, ref_hi;
	double ref_hist[HIST_BINS];    /* fractions */
	pthread_mutex_t lock;          /* readers only: below */
	uint32_t *copy;                /* window floats of scratch */
	struct point history[HISTORY];
	size_t n_history;
	size_t next_history;
};

/* ---- the scoring path ------------------------------------------------- */

static void record(struct ebm_http_drift *d, const struct ebm_score *s,
		size_t n)
{
	size_t skip = n > d->window ? n - d->window : 0;
	uint64_t anomalies = 0;
	for (size_t i = 0; i < n; i++) {
		anomalies += s[i].anomaly;
	}
	if (anomalies > 0) {
		atomic_fetch_add_explicit(&d->anomalies, anomalies,
				memory_order_relaxed);
	}
	uint64_t at = atomic_fetch_add_explicit(&d->head, n,
			memory_order_relaxed);
	for (size_t i = skip; i < n; i++) {
		size_t slot = (size_t)((at + i) % d->window);
		atomic_store_explicit(&d->k[slot],
				ebm_drift_grid_index(s[i].p_value, d->n_grid),
				memory_order_relaxed);
		atomic_store_explicit(&d->score[slot], s[i].score,
				memory_order_relaxed);
	}
}

static void histogram(struct ebm_http_model_stats *st,
		const struct ebm_score *s, size_t n)
{
	uint64_t counts[EBM_HTTP_P_BUCKETS] = { 0 };
	double sum = 0.0;
	for (size_t i = 0; i < n; i++) {
		size_t b = 0;
		while (b + 1 < EBM_HTTP_P_BUCKETS
				&& s[i].p_value > ebm_http_p_bucket_le[b]) {
			b++;
		}
		counts[b]++;
		sum += s[i].p_value;
	}
	for (size_t b = 0; b < EBM_HTTP_P_BUCKETS; b++) {
		if (counts[b] > 0) {
			atomic_fetch_add_explicit(&st->p_bucket[b], counts[b],
					memory_order_relaxed);
		}
	}
	double old = atomic_load_explicit(&st->p_sum, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&st->p_sum, &old,
			old + sum, memory_order_relaxed, memory_order_relaxed)) {
	}
}

enum ebm_status ebm_http_score_rows(const struct ebm_product *product,
		struct ebm_http_model_stats *stats, struct ebm_http_drift *drift,
		struct ebm_ctx *ctx, const float *x, size_t n, double alpha,
		struct ebm_score *out, struct ebm_error *err)
{
	enum ebm_status rc = ebm_product_score(product, ctx, x, n, alpha, out,
			err);
	if (rc != EBM_STATUS_OK) {
		return rc;
	}
	ebm_http_record_scores(stats, drift, out, n);
	return EBM_STATUS_OK;
}

void ebm_http_record_scores(struct ebm_http_model_stats *stats,
		struct ebm_http_drift *drift, const struct ebm_score *out, size_t n)
{
	if (stats != NULL) {
		uint64_t anomalies = 0;
		for (size_t i = 0; i < n; i++) {
			anomalies += out[i].anomaly;
		}
		atomic_fetch_add(&stats->rows, n);
		atomic_fetch_add(&stats->anomalies, anomalies);
		if (drift != NULL) {
			histogram(stats, out, n);
		}
	}
	if (drift != NULL) {
		record(drift, out, n);
	}
}

/* ---- windows ---------------------------------------------------------- */

static struct ebm_http_drift *drift_create(const struct ebm_product *p,
		const char *version, size_t window)
{
	struct ebm_http_drift *d = ebm_xcalloc(1, sizeof(*d));
	atomic_init(&d->refs, 1);
	snprintf(d->version, sizeof(d->version), "%s", version);
	d->window = window;
	size_t n_ref = ebm_product_n_ref(p);
	d->n_grid = n_ref + 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(n_ref + 1);
	atomic_init(&d->head, 0);
	atomic_init(&d->anomalies, 0);
	d->k = ebm_xcalloc(window, sizeof(*d->k));
	d->score = ebm_xcalloc(window, sizeof(*d->score));
	d->copy = ebm_xcalloc(window, sizeof(*d->copy));
	for (size_t i = 0; i < window; i++) {
		atomic_init(&d->k[i], 0);
		atomic_init(&d->score[i], 0.0f);
	}
	const float *e = ebm_product_ref_energies(p);
	float med = ebm_product_median_energy(p);
	/* the page's score axis: the reference's range up to its 99th
	 * percentile (a long tail would squash the rest); beyond is "above" */
	d->ref_lo = e[0] - med;
	d->ref_hi = e[(n_ref - 1) - (n_ref - 1) / 100] - med;
	if (!(d->ref_hi > d->ref_lo)) {
		d->ref_hi = d->ref_lo + 1.0f;
	}
	double width = ((double)d->ref_hi - d->ref_lo) / HIST_BINS;
	for (size_t i = 0; i < n_ref; i++) {
		double at = ((double)(e[i] - med) - d->ref_lo) / width;
		if (at < HIST_BINS || !((e[i] - med) > d->ref_hi)) {
			long b = (long)at;
			b = b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b;
			d->ref_hist[b] += 1.0 / (double)n_ref;
		}
	}
	pthread_mutex_init(&d->lock, NULL);
	return d;
}

struct ebm_http_drift *ebm_http_drift_attach(struct ebm_http_model_stats *stats,
		const struct ebm_product *product, const char *version,
		size_t window)
{
	struct ebm_http_drift *cur = stats->drift;
	size_t n_grid = ebm_product_n_ref(product) + 1;
	if (cur != NULL && cur->window == window && cur->n_grid == n_grid
			&& strcmp(cur->version, version) == 0) {
		atomic_fetch_add(&cur->refs, 1);
		return cur;
	}
	struct ebm_http_drift *d = drift_create(product, version, window);
	ebm_http_drift_unref(cur);
	stats->drift = d;
	atomic_fetch_add(&d->refs, 1);
	return d;
}

void ebm_http_drift_unref(struct ebm_http_drift *d)
{
	if (d == NULL || atomic_fetch_sub(&d->refs, 1) != 1) {
		return;
	}
	pthread_mutex_destroy(&d->lock);
	free(d->k);
	free(d->score);
	free(d->copy);
	free(d);
}

/* ---- readers ---------------------------------------------------------- */

/* Copies the ring's filled slots into d->copy (lock held); the count. */
static size_t snapshot(struct ebm_http_drift *d, uint64_t *total)
{
	uint64_t head = atomic_load_explicit(&d->head, memory_order_relaxed);
	size_t have = head < d->window ? (size_t)head : d->window;
	size_t n = 0;
	for (size_t i = 0; i < have; i++) {
		uint32_t k = atomic_load_explicit(&d->k[i], memory_order_relaxed);
		if (k != 0) {
			d->copy[n++] = k;
		}
	}
	*total = head;
	return n;
}

static void check_locked(struct ebm_http_drift *d, double drift_alpha,
		struct ebm_http_drift_report *r)
{
	r->window = d->window;
	r->count = snapshot(d, &r->total);
	r->checked_at = time(NULL);
	r->statistic = NAN;
	r->p_value = NAN;
	r->drift = false;
	if (r->count == 0) {
		return;
	}
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_drift_test(d->copy, r->count, d->n_grid, &r->statistic,
			&r->p_value, &err) != EBM_STATUS_OK) {
		/* cannot happen: every index stored is in 1..n_grid */
		ebm_log_error("drift: %s", err.message);
		r->statistic = NAN;
		r->p_value = NAN;
		return;
	}
	r->drift = r->count >= d->window && r->p_value < drift_alpha;
	struct point *last = d->n_history > 0
			? &d->history[(d->next_history + HISTORY - 1) % HISTORY] : NULL;
	if (last == NULL || r->checked_at > last->t) {
		d->history[d->next_history] = (struct point){ r->checked_at,
				r->statistic, r->p_value, r->total,
				atomic_load_explicit(&d->anomalies, memory_order_relaxed) };
		d->next_history = (d->next_history + 1) % HISTORY;
		d->n_history += d->n_history < HISTORY;
	}
}

void ebm_http_drift_check(struct ebm_http_drift *d, double drift_alpha,
		struct ebm_http_drift_report *r)
{
	if (d == NULL) {
		*r = (struct ebm_http_drift_report){ .statistic = NAN,
				.p_value = NAN, .checked_at = time(NULL) };
		return;
	}
	pthread_mutex_lock(&d->lock);
	check_locked(d, drift_alpha, r);
	pthread_mutex_unlock(&d->lock);
}

void ebm_http_drift_encode(struct ebm_http_buf *b, const char *name,
		const struct ebm_http_drift_report *r)
{
	char when[32];
	ebm_http_buf_puts(b, "{\"model\":");
	ebm_http_buf_json_string(b, name);
	ebm_http_buf_printf(b, ",\"window\":%zu,\"count\":%zu,\"statistic\":",
			r->window, r->count);
	ebm_http_buf_json_double(b, r->statistic);
	ebm_http_buf_puts(b, ",\"p_value\":");
	ebm_http_buf_json_double(b, r->p_value);
	ebm_http_buf_printf(b, ",\"drift\":%s,\"checked_at\":",
			r->drift ? "true" : "false");
	if (ebm_info_iso8601((uint64_t)r->checked_at, when)) {
		ebm_http_buf_json_string(b, when);
	} else {
		ebm_http_buf_puts(b, "null");
	}
	ebm_http_buf_add(b, "}", 1);
}

void ebm_http_drift_render(const struct ebm_http_catalog *c,
		struct ebm_http_buf *b)
{
	bool any = false;
	for (size_t i = 0; i < c->n_entries; i++) {
		any = any || c->entries[i].drift != NULL;
	}
	if (!any) {
		return;
	}
	struct ebm_http_drift_report *r = ebm_alloc_array(c->n_entries,
			sizeof(*r));
	if (r == NULL) {
		b->failed = true;
		return;
	}
	for (size_t i = 0; i < c->n_entries; i++) {
		ebm_http_drift_check(c->entries[i].drift, c->settings.drift_alpha,
				&r[i]);
	}
	ebm_http_buf_puts(b, "# HELP ebmd_drift_statistic Kolmogorov-Smirnov "
			"distance of the last window's p-values from the uniform, by "
			"model\n# TYPE ebmd_drift_statistic gauge\n");
	for (size_t i = 0; i < c->n_entries; i++) {
		if (c->entries[i].drift != NULL && r[i].count > 0) {
			ebm_http_buf_puts(b, "ebmd_drift_statistic{model=");
			ebm_http_prom_label(b, c->entries[i].name);
			ebm_http_buf_printf(b, "} %.17g\n", r[i].statistic);
		}
	}
	ebm_http_buf_puts(b, "# HELP ebmd_drift 1 when the p-values of a full "
			"window differ from the reference set's at [monitor] "
			"drift_alpha, by model\n# TYPE ebmd_drift gauge\n");
	for (size_t i = 0; i < c->n_entries; i++) {
		if (c->entries[i].drift != NULL) {
			ebm_http_buf_puts(b, "ebmd_drift{model=");
			ebm_http_prom_label(b, c->entries[i].name);
			ebm_http_buf_printf(b, "} %d\n", r[i].drift ? 1 : 0);
		}
	}
	free(r);
}

void ebm_http_p_value_render(struct ebm_http_buf *b, const char *name,
		const struct ebm_http_model_stats *st, bool help)
{
	if (help) {
		ebm_http_buf_puts(b, "# HELP ebmd_p_value Conformal p-values of "
				"scored rows, by model\n# TYPE ebmd_p_value histogram\n");
	}
	uint64_t cum = 0;
	for (size_t i = 0; i < EBM_HTTP_P_BUCKETS; i++) {
		cum += atomic_load_explicit(&st->p_bucket[i], memory_order_relaxed);
		ebm_http_buf_puts(b, "ebmd_p_value_bucket{model=");
		ebm_http_prom_label(b, name);
		ebm_http_buf_printf(b, ",le=\"%g\"} %llu\n", ebm_http_p_bucket_le[i],
				(unsigned long long)cum);
	}
	ebm_http_buf_puts(b, "ebmd_p_value_bucket{model=");
	ebm_http_prom_label(b, name);
	ebm_http_buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	ebm_http_buf_puts(b, "ebmd_p_value_sum{model=");
	ebm_http_prom_label(b, name);
	ebm_http_buf_printf(b, "} %.17g\n",
			atomic_load_explicit(&st->p_sum, memory_order_relaxed));
	ebm_http_buf_puts(b, "ebmd_p_value_count{model=");
	ebm_http_prom_label(b, name);
	ebm_http_buf_printf(b, "} %llu\n", (unsigned long long)cum);
}

/* ---- the status page's aggregates ---------------------------------------- */

static void encode_counts(struct ebm_http_buf *b, const uint64_t *v,
		size_t n)
{
	ebm_http_buf_add(b, "[", 1);
	for (size_t i = 0; i < n; i++) {
		ebm_http_buf_printf(b, "%s%llu", i > 0 ? "," : "",
				(unsigned long long)v[i]);
	}
	ebm_http_buf_add(b, "]", 1);
}

/* "p_hist", "score_hist", "history" of d (lock held, after a check). */
static void encode_aggregates(struct ebm_http_buf *b,
		struct ebm_http_drift *d, size_t count)
{
	uint64_t p_hist[HIST_BINS] = { 0 };
	for (size_t i = 0; i < count; i++) {
		/* k / n_grid in (0, 1]: bin ceil(p * bins) - 1 */
		double p = (double)d->copy[i] / d->n_grid;
		long bin = (long)ceil(p * HIST_BINS) - 1;
		bin = bin < 0 ? 0 : bin >= HIST_BINS ? HIST_BINS - 1 : bin;
		p_hist[bin]++;
	}
	ebm_http_buf_puts(b, ",\"p_hist\":");
	encode_counts(b, p_hist, HIST_BINS);
	uint64_t s_hist[HIST_BINS] = { 0 };
	uint64_t below = 0, above = 0;
	uint64_t head = atomic_load_explicit(&d->head, memory_order_relaxed);
	size_t have = head < d->window ? (size_t)head : d->window;
	double width = ((double)d->ref_hi - d->ref_lo) / HIST_BINS;
	for (size_t i = 0; i < have; i++) {
		if (atomic_load_explicit(&d->k[i], memory_order_relaxed) == 0) {
			continue;
		}
		double s = atomic_load_explicit(&d->score[i], memory_order_relaxed);
		double at = (s - d->ref_lo) / width;
		if (at < 0.0) {
			below++;
		} else if (at >= HIST_BINS) {
			above += s > d->ref_hi;
			s_hist[HIST_BINS - 1] += !(s > d->ref_hi);
		} else {
			s_hist[(size_t)at]++;
		}
	}
	ebm_http_buf_puts(b, ",\"score_hist\":{\"lo\":");
	ebm_http_buf_json_float(b, d->ref_lo);
	ebm_http_buf_puts(b, ",\"hi\":");
	ebm_http_buf_json_float(b, d->ref_hi);
	ebm_http_buf_puts(b, ",\"window\":");
	encode_counts(b, s_hist, HIST_BINS);
	ebm_http_buf_puts(b, ",\"reference\":[");
	for (size_t i = 0; i < HIST_BINS; i++) {
		if (i > 0) {
			ebm_http_buf_add(b, ",", 1);
		}
		ebm_http_buf_json_double(b, d->ref_hist[i]);
	}
	ebm_http_buf_printf(b, "],\"below\":%llu,\"above\":%llu}",
			(unsigned long long)below, (unsigned long long)above);
	ebm_http_buf_puts(b, ",\"history\":[");
	size_t first = (d->next_history + HISTORY - d->n_history) % HISTORY;
	for (size_t i = 0; i < d->n_history; i++) {
		const struct point *pt = &d->history[(first + i) % HISTORY];
		ebm_http_buf_printf(b, "%s[%lld,", i > 0 ? "," : "",
				(long long)pt->t);
		ebm_http_buf_json_double(b, pt->statistic);
		ebm_http_buf_add(b, ",", 1);
		ebm_http_buf_json_double(b, pt->p_value);
		ebm_http_buf_add(b, "]", 1);
	}
	ebm_http_buf_add(b, "]", 1);
	/* rates between the oldest point of about the last minute and the
	 * newest (the check just made) */
	const struct point *now = d->n_history > 0
			? &d->history[(d->next_history + HISTORY - 1) % HISTORY] : NULL;
	const struct point *then = now;
	for (size_t i = 0; i < d->n_history; i++) {
		const struct point *pt = &d->history[(first + i) % HISTORY];
		if (now != NULL && now->t - pt->t <= RATE_SECONDS) {
			then = pt;
			break;
		}
	}
	ebm_http_buf_puts(b, ",\"rows_per_s\":");
	if (now != NULL && now->t > then->t) {
		double dt = (double)(now->t - then->t);
		ebm_http_buf_json_double(b, (double)(now->rows - then->rows) / dt);
		ebm_http_buf_puts(b, ",\"anomalies_per_s\":");
		ebm_http_buf_json_double(b,
				(double)(now->anomalies - then->anomalies) / dt);
	} else {
		ebm_http_buf_puts(b, "null,\"anomalies_per_s\":null");
	}
}

void ebm_http_monitor_encode(const struct ebm_http_catalog *c,
		struct ebm_http_buf *b)
{
	ebm_http_buf_printf(b, "{\"time\":%lld,\"models\":[",
			(long long)time(NULL));
	for (size_t i = 0; i < c->n_entries; i++) {
		const struct ebm_http_entry *e = &c->entries[i];
		struct ebm_http_drift_report r;
		if (i > 0) {
			ebm_http_buf_add(b, ",", 1);
		}
		ebm_http_buf_puts(b, "{\"model\":");
		ebm_http_buf_json_string(b, e->name);
		ebm_http_buf_printf(b, ",\"rows\":%llu,\"anomalies\":%llu",
				e->stats != NULL ? (unsigned long long)atomic_load(
					&e->stats->rows) : 0ULL,
				e->stats != NULL ? (unsigned long long)atomic_load(
					&e->stats->anomalies) : 0ULL);
		ebm_http_buf_puts(b, ",\"drift\":");
		if (e->drift == NULL) {
			ebm_http_drift_check(NULL, c->settings.drift_alpha, &r);
			ebm_http_drift_encode(b, e->name, &r);
			ebm_http_buf_add(b, "}", 1);
			continue;
		}
		pthread_mutex_lock(&e->drift->lock);
		check_locked(e->drift, c->settings.drift_alpha, &r);
		ebm_http_drift_encode(b, e->name, &r);
		encode_aggregates(b, e->drift, r.count);
		pthread_mutex_unlock(&e->drift->lock);
		ebm_http_buf_add(b, "}", 1);
	}
	ebm_http_buf_puts(b, "]}\n");
}
