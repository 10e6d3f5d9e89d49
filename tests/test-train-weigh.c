/*
 * test-train-weigh.c — --proto-net-weight auto (src/train/weigh.c): the
 * AUROC against hand-counted pairs, the pick on terms of known worth, and
 * end to end on two densities with a known winner: tight clusters on a
 * circle, where the prototypes see what the Gaussian cannot, and a
 * correlated Gaussian in 8 dimensions, which the Gaussian base is and a
 * kernel density of a few hundred rows is not.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebm/model.h"
#include "ebm/train.h"
#include "model/model.h"
#include "train/train.h"
#include "util/util.h"

START_TEST(auroc_counts_pairs)
{
	const float lo[] = { 1, 2, 3 }, hi[] = { 4, 5 };
	ck_assert_double_eq(ebm_train_auroc(lo, 3, hi, 2), 1.0);
	ck_assert_double_eq(ebm_train_auroc(hi, 2, lo, 3), 0.0);
	/* pos {2, 3} against neg {1, 3}: 2 > 1, 2 < 3, 3 > 1, 3 = 3 (half). */
	const float neg[] = { 1, 3 }, pos[] = { 3, 2 };
	ck_assert_double_eq_tol(ebm_train_auroc(neg, 2, pos, 2), 2.5 / 4.0, 1e-12);
	const float same[] = { 7, 7, 7, 7 };
	ck_assert_double_eq_tol(ebm_train_auroc(same, 3, same, 1), 0.5, 1e-12);
	ck_assert(isnan(ebm_train_auroc(neg, 0, pos, 2)));
	ck_assert(isnan(ebm_train_auroc(neg, 2, pos, 0)));
}
END_TEST

/* n clean rows with both terms standard normal; perturbed rows have the
 * same terms, except that the informative one is lowered by 2. */
static float pick(bool net_informative, bool proto_informative, double *crit)
{
	enum { N = 400 };
	static float fn[N], fg[N], fnp[N], fgp[N];
	struct ebm_rng r;
	ebm_rng_init(&r, 3);
	for (size_t i = 0; i < N; i++) {
		fn[i] = (float)ebm_rng_normal(&r);
		fg[i] = (float)ebm_rng_normal(&r);
		fnp[i] = (float)ebm_rng_normal(&r) - (net_informative ? 2.0f : 0.0f);
		fgp[i] = (float)ebm_rng_normal(&r) - (proto_informative ? 2.0f : 0.0f);
	}
	const float *pn[] = { fnp }, *pg[] = { fgp };
	/* Spreads of 2 and 0.5 on purpose: the pick weighs standardized terms. */
	for (size_t i = 0; i < N; i++) {
		fn[i] *= 2.0f;
		fnp[i] *= 2.0f;
		fg[i] *= 0.5f;
		fgp[i] *= 0.5f;
	}
	return ebm_train_pick_net_weight(fn, fg, N, pn, pg, 1, N, 2.0f, 0.5f,
			crit);
}

START_TEST(pick_follows_the_informative_term)
{
	const float *grid;
	size_t n_grid = ebm_train_net_weight_grid(&grid);
	ck_assert_uint_eq(n_grid, 6);
	ck_assert(grid[0] == 1.0f);   /* ties go to 1 */
	double crit[6];
	ck_assert(pick(true, false, crit) == 4.0f);
	for (size_t g = 1; g < n_grid; g++) {
		/* more weight on the informative term, a better criterion */
		for (size_t h = 0; h < n_grid; h++) {
			if (grid[g] > grid[h]) {
				ck_assert_msg(crit[g] > crit[h], "lambda %g: %g, %g: %g",
						(double)grid[g], crit[g], (double)grid[h], crit[h]);
			}
		}
	}
	ck_assert(pick(false, true, crit) == 0.0f);
	/* The lowest weight gives the best criterion, near the term's own
	 * AUROC: Phi(2 / sqrt 2) = 0.92. */
	ck_assert_double_eq_tol(crit[n_grid - 1], 0.92, 0.03);
}
END_TEST

START_TEST(pick_breaks_ties_toward_1)
{
	enum { N = 50 };
	float f[N];
	for (size_t i = 0; i < N; i++) {
		f[i] = (float)i;
	}
	const float *p[] = { f };
	/* Perturbed rows score like the clean ones under every lambda. */
	ck_assert(ebm_train_pick_net_weight(f, f, N, p, p, 1, N, 1.0f, 1.0f,
			NULL) == 1.0f);
}
END_TEST

/* The options record's value of key, or NULL. */
static const char *option(const struct ebm_model *m, const char *key,
		char *buf, size_t size)
{
	const char *p = m->options;
	size_t k = strlen(key);
	while (p != NULL && *p != '\0') {
		const char *e = strchr(p, '\n');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len > k && strncmp(p, key, k) == 0 && p[k] == '=') {
			snprintf(buf, size, "%.*s", (int)(len - k - 1), p + k + 1);
			return buf;
		}
		p = e != NULL ? e + 1 : NULL;
	}
	return NULL;
}

/* Fits protos next to the untrained network (--epochs 0: the Gaussian
 * base), weight auto; returns the weight used. */
static float fit_auto(const float *x, size_t n, size_t d)
{
	struct ebm_train_options o;
	ebm_train_options_init(&o);
	o.epochs = 0;
	o.n_layers = 1;
	o.hidden[0] = 8;
	o.seed = 4;
	o.created = 1700000000;
	o.proto_net_auto = true;
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ck_assert_msg(ebm_train_fit(&o, x, n, d, NULL, NULL, NULL, &m, &err) ==
			EBM_STATUS_OK, "%s", err.message);
	char buf[160];
	ck_assert_str_eq(option(m, "proto_net_weight", buf, sizeof(buf)), "auto");
	const char *used = option(m, "proto_net_weight_used", buf, sizeof(buf));
	ck_assert_ptr_nonnull(used);
	float lambda = strtof(used, NULL);
	/* Each grid value's criterion, smallest weight first; the weight used
	 * has the best one. */
	const char *list = option(m, "proto_net_weight_auroc", buf, sizeof(buf));
	ck_assert_ptr_nonnull(list);
	const float want[] = { 0, 0.25f, 0.5f, 1, 2, 4 };
	double best = -1.0, at_used = -1.0;
	const char *p = list;
	for (size_t k = 0; k < 6; k++) {
		char *end;
		float w = strtof(p, &end);
		ck_assert_msg(w == want[k] && *end == ':', "%s", list);
		double a = strtod(end + 1, &end);
		ck_assert_msg(a >= 0.0 && a <= 1.0, "%s", list);
		best = a > best ? a : best;
		at_used = w == lambda ? a : at_used;
		ck_assert_msg(*end == (k < 5 ? ',' : '\0'), "%s", list);
		p = end + 1;
	}
	ck_assert_msg(at_used == best, "used %g, %s", (double)lambda, list);
	/* The network's weight in the file is lambda over its spread. */
	ck_assert(lambda == 0.0f ? m->net.proto.w_net == 0.0f :
			m->net.proto.w_net > 0.0f);
	ebm_model_destroy(m);
	return lambda;
}

START_TEST(auto_prefers_protos_on_clusters)
{
	/* Eight tight clusters on a circle: the Gaussian sees one round
	 * blob, and a row that takes x from another row mostly lands inside
	 * it, between the clusters, where the prototypes see a hole. */
	size_t n = 3000;
	struct ebm_rng r;
	ebm_rng_init(&r, 21);
	float *x = malloc(n * 2 * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		double a = 6.283185307179586 * (double)(i % 8) / 8.0;
		x[2 * i] = (float)(3.0 * cos(a)) + 0.3f * (float)ebm_rng_normal(&r);
		x[2 * i + 1] = (float)(3.0 * sin(a)) + 0.3f * (float)ebm_rng_normal(&r);
	}
	float lambda = fit_auto(x, n, 2);
	ck_assert_msg(lambda <= 0.25f, "lambda %g", (double)lambda);
	free(x);
}
END_TEST

START_TEST(auto_prefers_the_gaussian_on_a_gaussian)
{
	/* 8 features, each 0.9 times a shared factor plus noise: the
	 * Gaussian base is the true density; 600 kernels in 8 dimensions
	 * are a rough copy of it. */
	size_t n = 800, d = 8;
	struct ebm_rng r;
	ebm_rng_init(&r, 22);
	float *x = malloc(n * d * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		float s = (float)ebm_rng_normal(&r);
		for (size_t j = 0; j < d; j++) {
			x[i * d + j] = 0.9f * s + 0.45f * (float)ebm_rng_normal(&r);
		}
	}
	float lambda = fit_auto(x, n, d);
	ck_assert_msg(lambda >= 2.0f, "lambda %g", (double)lambda);
	free(x);
}
END_TEST

/* --proto-net-noise: the record says so, and its criterion (swap and
 * noise averaged) is not the swap's alone. */
START_TEST(noise_adds_a_second_perturbation)
{
	size_t n = 1200, d = 3;
	struct ebm_rng r;
	ebm_rng_init(&r, 23);
	float *x = malloc(n * d * sizeof(float));
	for (size_t i = 0; i < n * d; i++) {
		x[i] = (float)ebm_rng_normal(&r) + (i % d == 0 ? 4.0f * (float)(i % 2) : 0.0f);
	}
	char list[2][160];
	for (int noise = 0; noise < 2; noise++) {
		struct ebm_train_options o;
		ebm_train_options_init(&o);
		o.epochs = 0;
		o.n_layers = 1;
		o.hidden[0] = 8;
		o.seed = 4;
		o.created = 1700000000;
		o.proto_net_noise = noise == 1;
		struct ebm_model *m = NULL;
		struct ebm_error err;
		ck_assert_msg(ebm_train_fit(&o, x, n, d, NULL, NULL, NULL, &m, &err) ==
				EBM_STATUS_OK, "%s", err.message);
		char buf[160];
		ck_assert_str_eq(option(m, "proto_net_weight", buf, sizeof(buf)),
				noise ? "auto+noise" : "auto");
		ck_assert_ptr_nonnull(option(m, "proto_net_weight_auroc", list[noise],
				sizeof(list[noise])));
		ebm_model_destroy(m);
	}
	ck_assert_msg(strcmp(list[0], list[1]) != 0, "%s", list[0]);
	free(x);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("train-weigh");
	TCase *tc = tcase_create("weigh");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, auroc_counts_pairs);
	tcase_add_test(tc, pick_follows_the_informative_term);
	tcase_add_test(tc, pick_breaks_ties_toward_1);
	tcase_add_test(tc, auto_prefers_protos_on_clusters);
	tcase_add_test(tc, auto_prefers_the_gaussian_on_a_gaussian);
	tcase_add_test(tc, noise_adds_a_second_perturbation);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
