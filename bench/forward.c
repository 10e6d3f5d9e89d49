/*
 * forward.c — in-process scoring rate of one model, single-threaded: the
 * maths ebmd does for a score request, without HTTP or JSON, to compare
 * ebmd's batch throughput against (bench/http-bench.sh).
 *
 *   forward MODEL.ebm [--batch 256] [--seconds 3] [--route score]
 *
 * Builds the product of the one model (as ebmd's catalog serves a model
 * file) and calls the entry point of one daemon route (--route score:
 * ebm_product_score; explain: ebm_product_explain; repair:
 * ebm_product_repair with the default options) on batches of --batch rows
 * on one struct ebm_ctx, with BLAS
 * single-threaded as in ebmd's workers. Rows are the model's reference
 * rows (held-out data, raw units), repeated to fill a batch. Runs for
 * --seconds after one warm-up batch and prints
 *
 *   rows_per_s R cpu_rows_per_s C  (batches B of N rows in T s ...)
 *
 * R is per second of wall-clock time, C per second of CPU time of this
 * process (the steadier figure on a machine shared with other jobs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ebm/model.h"
#include "ebm/product.h"

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static enum ebm_status run(int which, const struct ebm_product *p,
		struct ebm_ctx *ctx, const struct ebm_repair_options *ro,
		const float *x, size_t n, double alpha, struct ebm_score *s,
		float *out, struct ebm_error *err)
{
	switch (which) {
	case 1:
		return ebm_product_explain(p, ctx, x, n, out, err);
	case 2:
		return ebm_product_repair(p, ctx, ro, x, n, out, NULL, NULL, err);
	default:
		return ebm_product_score(p, ctx, x, n, alpha, s, err);
	}
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	long batch = 256;
	double seconds = 3.0;
	const char *route = "score";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
			batch = strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtod(argv[++i], NULL);
		} else if (strcmp(argv[i], "--route") == 0 && i + 1 < argc) {
			route = argv[++i];
		} else if (argv[i][0] != '-' && path == NULL) {
			path = argv[i];
		} else {
			path = NULL;
			break;
		}
	}
	int which = strcmp(route, "score") == 0 ? 0 :
			strcmp(route, "explain") == 0 ? 1 :
			strcmp(route, "repair") == 0 ? 2 : -1;
	if (path == NULL || batch < 1 || !(seconds > 0.0) || which < 0) {
		fprintf(stderr, "Usage: forward MODEL.ebm [--batch N] "
				"[--seconds S] [--route score|explain|repair]\n");
		return 2;
	}
	ebm_set_blas_threads(1);
	struct ebm_error err;
	ebm_error_clear(&err);
	struct ebm_model *m = NULL;
	if (ebm_model_load_file(path, &m, &err) != EBM_STATUS_OK) {
		fprintf(stderr, "forward: %s\n", err.message);
		return 1;
	}
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p = NULL;
	const struct ebm_model *models[1] = { m };
	if (ctx == NULL || ebm_product_create(models, NULL, 1, ctx, &p, &err)
			!= EBM_STATUS_OK) {
		fprintf(stderr, "forward: %s\n", err.message);
		return 1;
	}
	size_t d = ebm_model_n_features(m);
	size_t n_ref = ebm_model_n_ref(m);
	const float *ref = ebm_model_ref_rows(m);
	size_t n = (size_t)batch;
	float *x = malloc(n * d * sizeof(*x));
	struct ebm_score *s = malloc(n * sizeof(*s));
	float *out = malloc(n * d * sizeof(*out));
	if (x == NULL || s == NULL || out == NULL) {
		fprintf(stderr, "forward: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(x + i * d, ref + (i % n_ref) * d, d * sizeof(*x));
	}
	double alpha = ebm_model_alpha(m);
	/* Warm-up: sizes the context's scratch, as a worker's first request
	 * does. */
	struct ebm_repair_options ro;
	ebm_repair_options_init(&ro);
	if (run(which, p, ctx, &ro, x, n, alpha, s, out, &err) != EBM_STATUS_OK) {
		fprintf(stderr, "forward: %s\n", err.message);
		return 1;
	}
	unsigned long batches = 0;
	size_t anomalies = 0;
	double t0 = clock_s(CLOCK_MONOTONIC);
	double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	double t;
	do {
		run(which, p, ctx, &ro, x, n, alpha, s, out, NULL);
		anomalies += s[0].anomaly;
		batches++;
		t = clock_s(CLOCK_MONOTONIC) - t0;
	} while (t < seconds);
	double c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	double rows = (double)batches * (double)n;
	printf("rows_per_s %.0f cpu_rows_per_s %.0f  (%s: batches %lu of %zu "
			"rows in %.3f s, %.3f s CPU; d=%zu)\n", rows / t, rows / c, route,
			batches, n, t, c, d);
	(void)anomalies;
	free(out);
	free(s);
	free(x);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
	return 0;
}
