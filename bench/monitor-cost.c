/*
 * monitor-cost.c -- the traffic monitor's cost on the scoring path, in
 * process and without HTTP: ns per single-row ebm_http_score_rows() call
 * of a served entry with monitoring on ([monitor] window = 1000: counters,
 * the p-value histogram and the drift window) and off (window = 0:
 * counters only), interleaved in ROUNDS rounds of CALLS calls each, one
 * thread. Prints the medians and their ratio.
 *
 *   build/bench/monitor-cost MODEL.ebm [ROUNDS [CALLS]]
 */
#include <stdio.h>
#include <stdlib.h>

#include "http/http.h"
#include "util/util.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static struct ebm_http_catalog *catalog(struct ebm_model *m, unsigned window,
		struct ebm_http_metrics *metrics, struct ebm_ctx *ctx)
{
	struct ebm_http_settings s = { .max_rows = 1, .drift_window = window,
			.drift_alpha = 0.001 };
	struct ebm_http_catalog *c = ebm_http_catalog_create(&s, metrics);
	struct ebm_http_model *hm = ebm_http_model_create(m, "m", NULL);
	struct ebm_error err;
	if (!ebm_http_catalog_add_model(c, hm, ctx, &err)) {
		fprintf(stderr, "monitor-cost: %s\n", err.message);
		exit(1);
	}
	ebm_http_model_unref(hm);
	ebm_http_catalog_seal(c);
	return c;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s MODEL.ebm [ROUNDS [CALLS]]\n", argv[0]);
		return 2;
	}
	size_t rounds = argc > 2 ? strtoul(argv[2], NULL, 10) : 21;
	size_t calls = argc > 3 ? strtoul(argv[3], NULL, 10) : 200000;
	struct ebm_error err;
	struct ebm_model *a = NULL, *b = NULL;
	if (ebm_model_load_file(argv[1], &a, &err) != EBM_STATUS_OK
			|| ebm_model_load_file(argv[1], &b, &err) != EBM_STATUS_OK) {
		fprintf(stderr, "monitor-cost: %s\n", err.message);
		return 1;
	}
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_http_metrics *metrics_on = ebm_http_metrics_create(1);
	struct ebm_http_metrics *metrics_off = ebm_http_metrics_create(1);
	struct ebm_http_catalog *on = catalog(a, 1000, metrics_on, ctx);
	struct ebm_http_catalog *off = catalog(b, 0, metrics_off, ctx);
	const struct ebm_http_entry *e_on = &on->entries[0];
	const struct ebm_http_entry *e_off = &off->entries[0];
	size_t d = ebm_model_n_features(a);
	const float *x = ebm_model_ref_rows(a) + (ebm_model_n_ref(a) / 2) * d;
	double *t_on = calloc(rounds, sizeof(double));
	double *t_off = calloc(rounds, sizeof(double));
	double *ratio = calloc(rounds, sizeof(double));
	struct ebm_score s;
	for (size_t r = 0; r < rounds; r++) {
		for (int which = 0; which < 2; which++) {
			const struct ebm_http_entry *e = which == 0 ? e_on : e_off;
			double t0 = ebm_now();
			for (size_t i = 0; i < calls; i++) {
				if (ebm_http_score_rows(e->product, e->stats, e->drift, ctx,
						x, 1, 0.01, &s, &err) != EBM_STATUS_OK) {
					fprintf(stderr, "monitor-cost: %s\n", err.message);
					return 1;
				}
			}
			double ns = (ebm_now() - t0) * 1e9 / (double)calls;
			(which == 0 ? t_on : t_off)[r] = ns;
		}
		ratio[r] = t_off[r] / t_on[r];
	}
	struct ebm_http_drift_report rep;
	ebm_http_drift_check(e_on->drift, 0.001, &rep);
	qsort(t_on, rounds, sizeof(double), cmp_double);
	qsort(t_off, rounds, sizeof(double), cmp_double);
	qsort(ratio, rounds, sizeof(double), cmp_double);
	printf("single-row ebm_http_score_rows, %zu rounds x %zu calls: on %.1f "
			"ns, off %.1f ns (medians); throughput on/off %.3f (median of "
			"per-round ratios); window count %zu\n", rounds, calls,
			t_on[rounds / 2], t_off[rounds / 2], ratio[rounds / 2],
			rep.count);
	ebm_http_catalog_unref(on);
	ebm_http_catalog_unref(off);
	ebm_http_metrics_destroy(metrics_on);
	ebm_http_metrics_destroy(metrics_off);
	ebm_ctx_destroy(ctx);
	free(t_on);
	free(t_off);
	free(ratio);
	return 0;
}
