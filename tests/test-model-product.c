/*
 * test-model-product.c — products of experts, integrated-gradient
 * explanations and repair, on Gaussian energies where every answer is
 * known in closed form: E(x) = 0.5 sum_j p_j x_j^2 (MLP output weights 0,
 * standardization the identity).
 *   - product energy: sum_k w_k E_k;
 *   - integrated gradients from r to x: contrib_j = 0.5 p_j (x_j^2 - r_j^2)
 *     exactly (the integrand is linear in t, so the midpoint rule is exact);
 *   - repair descends toward the origin, never raising the energy.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebm/product.h"
#include "fixture-model.h"
#include "model/model.h"

static struct ebm_model *gaussian(size_t d, const float *p, size_t n_ref,
		float row_step, const char *const *names)
{
	struct ebm_model *m = ebm_model_alloc();
	uint32_t hidden[1] = {4};
	ck_assert(ebm_net_init(&m->net, (uint32_t)d, 1, 1, hidden, EBM_ACT_SILU));
	for (size_t j = 0; j < d; j++) {
		m->net.prec[j * d + j] = p[j];
	}
	m->n_ref = (uint32_t)n_ref;
	m->ref_rows = calloc(n_ref * d, sizeof(float));
	m->ref_energy = calloc(n_ref, sizeof(float));
	for (size_t i = 0; i < n_ref; i++) {
		m->ref_rows[i * d] = row_step * (float)i;
		m->ref_energy[i] = 0.5f * p[0] * m->ref_rows[i * d] *
				m->ref_rows[i * d];
	}
	m->alpha = 0.05f;
	m->objective = strdup("dsm");
	m->options = strdup("");
	if (names != NULL) {
		m->feature_names = calloc(d, sizeof(char *));
		for (size_t j = 0; j < d; j++) {
			m->feature_names[j] = strdup(names[j]);
		}
	}
	struct ebm_error err;
	ck_assert_msg(ebm_model_finalize(m, &err) == EBM_STATUS_OK, "%s",
			err.message);
	return m;
}

static const float P1[3] = {1.0f, 2.0f, 0.5f};
static const float P2[3] = {0.25f, 1.0f, 3.0f};

START_TEST(single_equals_model)
{
	struct ebm_model *m = gaussian(3, P1, 9, 0.5f, NULL);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p;
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){m},
			NULL, 1, ctx, &p, &err), EBM_STATUS_OK);
	float x[6] = {0.3f, -1.0f, 2.0f, 3.0f, 0.0f, 0.1f};
	struct ebm_score a[2], b[2];
	ck_assert_int_eq(ebm_model_score(m, ctx, x, 2, 0.05, a, NULL), 0);
	ck_assert_int_eq(ebm_product_score(p, ctx, x, 2, 0.05, b, NULL), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert(a[i].energy == b[i].energy && a[i].score == b[i].score);
		ck_assert(a[i].p_value == b[i].p_value);
		ck_assert(a[i].anomaly == b[i].anomaly);
	}
	ck_assert_uint_eq(ebm_product_n_ref(p), 9);
	/* Median row: rank ceil(9/2) = 5, x0 = 4 * 0.5. */
	ck_assert_float_eq(ebm_product_median_row(p)[0], 2.0f);
	ck_assert_float_eq(ebm_product_median_energy(p), 0.5f * 1.0f * 4.0f);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
}
END_TEST

START_TEST(weighted_sum_and_union)
{
	struct ebm_model *a = gaussian(3, P1, 5, 1.0f, NULL);
	struct ebm_model *b = gaussian(3, P2, 4, 0.5f, NULL);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p;
	struct ebm_error err;
	double w[2] = {1.0, 0.5};
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a, b},
			w, 2, ctx, &p, &err), EBM_STATUS_OK);
	ck_assert_uint_eq(ebm_product_n_ref(p), 9);
	float x[3] = {1.0f, 2.0f, -1.0f};
	float e;
	ck_assert_int_eq(ebm_product_energy(p, ctx, x, 1, &e, NULL), 0);
	double ea = 0.5 * (1.0 * 1 + 2.0 * 4 + 0.5 * 1);
	double eb = 0.5 * (0.25 * 1 + 1.0 * 4 + 3.0 * 1);
	ck_assert_msg(fabs(e - (ea + 0.5 * eb)) < 1e-5, "%g", e);
	/* Union reference energies under the product: rows (t, 0, 0) with
	 * t in {0,1,2,3,4} and {0,0.5,1,1.5}: E = 0.5 t^2 (1 + 0.5 * 0.25). */
	const float *re = ebm_product_ref_energies(p);
	float expect[9] = {0, 0, 0.25f, 1, 1, 2.25f, 4, 9, 16};
	for (int i = 0; i < 9; i++) {
		ck_assert_float_eq_tol(re[i], expect[i] * 0.5f * 1.125f, 1e-5f);
	}
	struct ebm_score s;
	ck_assert_int_eq(ebm_product_score(p, ctx, x, 1, 0.25, &s, NULL), 0);
	/* E(x) = 4.75 + 0.5 * 3.625 = 6.5625; only the top reference energy
	 * (9) is >= it: p = (1 + 1) / 10. */
	ck_assert(fabs(s.p_value - 0.2) < 1e-12 && s.anomaly);
	ck_assert_int_eq(ebm_product_score(p, ctx, x, 1, 0.2, &s, NULL), 0);
	ck_assert(!s.anomaly);
	ck_assert_float_eq(ebm_product_alpha(p), 0.05f);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(a);
	ebm_model_destroy(b);
}
END_TEST

START_TEST(incompatible)
{
	const char *n1[3] = {"a", "b", "c"}, *n2[3] = {"a", "x", "c"};
	struct ebm_model *a = gaussian(3, P1, 5, 1.0f, n1);
	struct ebm_model *b = gaussian(3, P2, 5, 1.0f, n2);
	struct ebm_model *c = gaussian(2, P2, 5, 1.0f, NULL);
	struct ebm_model *u = gaussian(3, P2, 5, 1.0f, NULL);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p = NULL;
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a, b},
			NULL, 2, ctx, &p, &err), EBM_STATUS_MISMATCH);
	ck_assert_str_eq(err.message,
			"models[1] calls feature 1 'x' where another model has 'b'");
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a, c},
			NULL, 2, ctx, &p, &err), EBM_STATUS_MISMATCH);
	ck_assert_str_eq(err.message, "models[1] has 2 features, models[0] has 3");
	double w[2] = {1.0, 0.0};
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a, u},
			w, 2, ctx, &p, &err), EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message,
			"weights[1] must be a finite number > 0, got 0");
	ck_assert_ptr_null(p);
	/* A model without names composes with a named one; names come from
	 * the named expert. */
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){u, a},
			NULL, 2, ctx, &p, &err), EBM_STATUS_OK);
	ck_assert_str_eq(ebm_product_feature_name(p, 2), "c");
	ck_assert_int_eq(ebm_product_feature_index(p, "b"), 1);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(a);
	ebm_model_destroy(b);
	ebm_model_destroy(c);
	ebm_model_destroy(u);
}
END_TEST

START_TEST(explain_closed_form)
{
	struct ebm_model *a = gaussian(3, P1, 9, 0.5f, NULL);
	struct ebm_model *b = gaussian(3, P2, 4, 0.5f, NULL);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p;
	double w[2] = {1.0, 2.0};
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a, b},
			w, 2, ctx, &p, NULL), EBM_STATUS_OK);
	float x[6] = {3.0f, -1.0f, 0.5f, -2.0f, 4.0f, 1.0f};
	float c[6];
	struct ebm_score s[2];
	ck_assert_int_eq(ebm_product_explain(p, ctx, x, 2, c, NULL), 0);
	ck_assert_int_eq(ebm_product_score(p, ctx, x, 2, 0.05, s, NULL), 0);
	const float *r = ebm_product_median_row(p);
	for (int i = 0; i < 2; i++) {
		double sum = 0.0;
		for (int j = 0; j < 3; j++) {
			double pj = P1[j] + 2.0 * P2[j];
			double expect = 0.5 * pj * (x[i * 3 + j] * x[i * 3 + j] -
					r[j] * r[j]);
			ck_assert_msg(fabs(c[i * 3 + j] - expect) < 1e-3 * (1 + fabs(expect)),
					"row %d feature %d: %g vs %g", i, j, c[i * 3 + j], expect);
			sum += c[i * 3 + j];
		}
		ck_assert_msg(fabs(sum - s[i].score) <= 0.01 * fabs(s[i].score),
				"row %d: sum %g score %g", i, sum, s[i].score);
	}
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(a);
	ebm_model_destroy(b);
}
END_TEST

START_TEST(repair_descends)
{
	struct ebm_model *a = gaussian(3, P1, 9, 0.5f, NULL);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p;
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a},
			NULL, 1, ctx, &p, NULL), EBM_STATUS_OK);
	float x[6] = {3.0f, -2.0f, 1.0f, 0.0f, 0.0f, 0.0f};
	float out[6], before[2], after[2];
	bool fixed[3] = {false, true, false};
	struct ebm_repair_options o;
	ebm_repair_options_init(&o);
	o.fixed = fixed;
	o.steps = 200;
	o.step_size = 0.1f;
	ck_assert_int_eq(ebm_product_repair(p, ctx, &o, x, 2, out, before, after,
			NULL), 0);
	/* Row 0 moves toward the origin in the free features only. */
	ck_assert(after[0] <= before[0]);
	ck_assert_float_eq(out[1], -2.0f);
	ck_assert_msg(fabsf(out[0]) < 0.2f && fabsf(out[2]) < 0.2f,
			"%g %g", out[0], out[2]);
	/* The minimum itself stays put. */
	ck_assert_float_eq(after[1], before[1]);
	ck_assert(out[3] == 0.0f && out[4] == 0.0f && out[5] == 0.0f);
	/* Each further step never raises the energy. */
	float prev = before[0];
	for (uint32_t steps = 1; steps <= 30; steps++) {
		o.steps = steps;
		ck_assert_int_eq(ebm_product_repair(p, ctx, &o, x, 1, out, NULL,
				after, NULL), 0);
		ck_assert(after[0] <= prev);
		prev = after[0];
	}
	/* A row far out (60 standard deviations) reaches the minimum with the
	 * default options: the trust region grows while steps succeed. */
	ebm_repair_options_init(&o);
	float far[3] = {60.0f, 0.0f, -30.0f};
	ck_assert_int_eq(ebm_product_repair(p, ctx, &o, far, 1, out, before,
			after, NULL), 0);
	ck_assert_msg(fabsf(out[0]) < 0.5f && fabsf(out[2]) < 0.5f,
			"far row ended at %g %g (energy %g -> %g)", out[0], out[2],
			before[0], after[0]);
	struct ebm_error err;
	o.steps = 0;
	ck_assert_int_eq(ebm_product_repair(p, ctx, &o, x, 1, out, NULL, NULL,
			&err), EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "steps must be 1..1000, got 0");
	o.steps = 5;
	o.step_size = 2.0f;
	ck_assert_int_eq(ebm_product_repair(p, ctx, &o, x, 1, out, NULL, NULL,
			&err), EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "step_size must be in (0, 1], got 2");
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(a);
}
END_TEST

/* The trust region of product.h, step by step, on E = 0.5 z0^2 + ...
 * (unit scale, so z = x) from rows on the z0 axis, where the normalized
 * direction is exactly -sign(z0) e0. */
static float repair_x0(const struct ebm_product *p, struct ebm_ctx *ctx,
		float x0, uint32_t steps)
{
	float x[3] = {x0, 0.0f, 0.0f}, out[3];
	struct ebm_repair_options o;
	ebm_repair_options_init(&o);
	o.steps = steps;
	ck_assert_int_eq(ebm_product_repair(p, ctx, &o, x, 1, out, NULL, NULL,
			NULL), 0);
	ck_assert(out[1] == 0.0f && out[2] == 0.0f);
	return out[0];
}

START_TEST(repair_trust_region)
{
	struct ebm_model *a = gaussian(3, P1, 9, 0.5f, NULL);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p;
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a},
			NULL, 1, ctx, &p, NULL), EBM_STATUS_OK);
	const double r = (double)(EBM_REPAIR_DEFAULT_STEP_SIZE * sqrtf(3.0f));
	/* Far out, every full step succeeds: lengths r, 2r, 4r, ... capped at
	 * 32 r. After k steps the row has moved by the sum. */
	static const double moved[] = {0, 1, 3, 7, 15, 31, 63, 95, 127, 159};
	for (uint32_t k = 1; k < 10; k++) {
		double got = 100.0 - (double)repair_x0(p, ctx, 100.0f, k);
		ck_assert_msg(fabs(got - moved[k] * r) < 1e-4 * moved[k] * r,
				"%u steps: moved %g, expected %g", k, got, moved[k] * r);
	}
	/* From 0.4 r a full step overshoots to -0.6 r (higher energy): halved,
	 * to -0.1 r. The next length is r/2, which overshoots (0.4 r), as does
	 * r/4 (0.15 r); r/8 lands at 0.025 r. */
	float x0 = (float)(0.4 * r);
	ck_assert_msg(fabs(repair_x0(p, ctx, x0, 1) + 0.1 * r) < 1e-6,
			"%g", (double)repair_x0(p, ctx, x0, 1));
	ck_assert_msg(fabs(repair_x0(p, ctx, x0, 2) - 0.025 * r) < 1e-6,
			"%g", (double)repair_x0(p, ctx, x0, 2));
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(a);
}
END_TEST

/* A narrow valley, E = 0.5 (z0^2 + 1000 z1^2): normalized gradient steps
 * bounce across z1 and crawl along z0; the momentum of the direction
 * follows the valley better. From (20, 0.3) (E = 245) the default 50
 * steps ended at E 165 without momentum and end at 74 with it (the
 * isotropic trust region still shrinks at each crossing). */
START_TEST(repair_follows_a_narrow_valley)
{
	static const float PV[3] = {1.0f, 1000.0f, 1.0f};
	struct ebm_model *a = gaussian(3, PV, 9, 0.5f, NULL);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p;
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a},
			NULL, 1, ctx, &p, NULL), EBM_STATUS_OK);
	float x[3] = {20.0f, 0.3f, 0.0f}, out[3], before, after;
	struct ebm_repair_options o;
	ebm_repair_options_init(&o);
	ck_assert_int_eq(ebm_product_repair(p, ctx, &o, x, 1, out, &before,
			&after, NULL), EBM_STATUS_OK);
	ck_assert_msg(fabsf(before - 245.0f) < 1e-3f, "%g", (double)before);
	printf("narrow valley: E %g -> %g at (%g, %g)\n", (double)before,
			(double)after, (double)out[0], (double)out[1]);
	ck_assert_msg(after < 100.0f, "E after 50 steps %g", (double)after);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(a);
}
END_TEST

/* Near a minimum, a momentum step that finds no descent costs 21 energy
 * evaluations; the descent then drops momentum for that row for good, so
 * the row settles and stops instead of alternating failed momentum steps
 * with tiny gradient steps until the step budget runs out. */
START_TEST(repair_drops_momentum_at_a_floor)
{
	struct ebm_model *a = gaussian(3, P1, 9, 0.5f, NULL);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p;
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a},
			NULL, 1, ctx, &p, NULL), EBM_STATUS_OK);
	float x[3] = {0.8f, -0.6f, 1.1f}, out[3], before, after;
	struct ebm_repair_options o;
	ebm_repair_options_init(&o);
	o.steps = 500;
	uint64_t rows0 = ctx->product_rows;
	ck_assert_int_eq(ebm_product_repair(p, ctx, &o, x, 1, out, &before,
			&after, NULL), EBM_STATUS_OK);
	uint64_t evals = ctx->product_rows - rows0;
	printf("repair to a floor: E %g -> %g in %llu evaluations\n",
			(double)before, (double)after, (unsigned long long)evals);
	ck_assert_msg(after < before, "%g -> %g", (double)before, (double)after);
	for (size_t j = 0; j < 3; j++) {
		ck_assert_msg(fabsf(out[j]) < 1e-3f, "out[%zu] = %g", j,
				(double)out[j]);
	}
	ck_assert_msg(evals < 1000, "%llu evaluations for 500 steps",
			(unsigned long long)evals);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(a);
}
END_TEST

START_TEST(nonfinite_row_named)
{
	struct ebm_model *a = gaussian(3, P1, 9, 0.5f, NULL);
	struct ebm_ctx *ctx = ebm_ctx_create();
	struct ebm_product *p;
	ck_assert_int_eq(ebm_product_create((const struct ebm_model *const[]){a},
			NULL, 1, ctx, &p, NULL), EBM_STATUS_OK);
	float x[6] = {0.0f, 0.0f, 0.0f, 1e30f, 1e30f, 0.0f};
	float e[2];
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_energy(p, ctx, x, 2, e, &err),
			EBM_STATUS_NUMERIC);
	ck_assert_uint_eq(err.line, 2);
	ebm_product_destroy(p);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(a);
}
END_TEST

/* Two products are the same: reference energies, median row, scores. */
static void same_product(const struct ebm_product *p,
		const struct ebm_product *q, struct ebm_ctx *ctx)
{
	size_t n = ebm_product_n_ref(p), d = ebm_product_n_features(p);
	ck_assert_uint_eq(ebm_product_n_ref(q), n);
	ck_assert(memcmp(ebm_product_ref_energies(p),
			ebm_product_ref_energies(q), n * sizeof(float)) == 0);
	ck_assert(memcmp(ebm_product_median_row(p), ebm_product_median_row(q),
			d * sizeof(float)) == 0);
	float x[3 * 5];
	for (size_t j = 0; j < 3 * d; j++) {
		x[j] = 0.37f * (float)j - 1.0f;
	}
	struct ebm_score a[3], b[3];
	ck_assert_int_eq(ebm_product_score(p, ctx, x, 3, 0.05, a, NULL), 0);
	ck_assert_int_eq(ebm_product_score(q, ctx, x, 3, 0.05, b, NULL), 0);
	for (size_t i = 0; i < 3; i++) {
		ck_assert(a[i].energy == b[i].energy && a[i].score == b[i].score);
		ck_assert(a[i].p_value == b[i].p_value);
		ck_assert(a[i].anomaly == b[i].anomaly);
	}
}

/* A product from precomputed blocks (all, some, none) is the product
 * ebm_product_create() computes, bit for bit; on real networks (BLAS-sized
 * batches, reference sets that do not fill the last batch). */
START_TEST(cached_equals_fresh)
{
	const size_t d = 5;
	struct ebm_model *m[3] = {
		fixture_model(d, 48, 300, 1, NULL),
		fixture_model(d, 32, 77, 2, NULL),
		fixture_model(d, 64, 513, 3, NULL),
	};
	const struct ebm_model *const *models = (const struct ebm_model *const *)m;
	struct ebm_ctx *ctx = ebm_ctx_create();
	float *blk[9];
	for (size_t k = 0; k < 3; k++) {
		for (size_t b = 0; b < 3; b++) {
			blk[k * 3 + b] = malloc(ebm_model_n_ref(m[b]) * sizeof(float));
			ck_assert_int_eq(ebm_product_ref_block(m[k], m[b], ctx,
					blk[k * 3 + b], NULL), EBM_STATUS_OK);
		}
	}
	double w[3] = {1.0, 0.3, 2.5};
	struct ebm_product *fresh, *cached;
	ck_assert_int_eq(ebm_product_create(models, w, 3, ctx, &fresh, NULL), 0);
	const float *all[9], *some[9];
	for (size_t q = 0; q < 9; q++) {
		all[q] = blk[q];
		some[q] = q % 2 == 0 ? blk[q] : NULL;
	}
	ck_assert_int_eq(ebm_product_create_cached(models, w, 3, all, ctx,
			&cached, NULL), 0);
	same_product(fresh, cached, ctx);
	ebm_product_destroy(cached);
	ck_assert_int_eq(ebm_product_create_cached(models, w, 3, some, ctx,
			&cached, NULL), 0);
	same_product(fresh, cached, ctx);
	ebm_product_destroy(cached);
	ebm_product_destroy(fresh);
	/* Two of the three, in another order: the blocks are per pair. */
	const struct ebm_model *two[2] = { m[2], m[0] };
	const float *pair[4] = { blk[8], blk[6], blk[2], blk[0] };
	ck_assert_int_eq(ebm_product_create(two, NULL, 2, ctx, &fresh, NULL), 0);
	ck_assert_int_eq(ebm_product_create_cached(two, NULL, 2, pair, ctx,
			&cached, NULL), 0);
	same_product(fresh, cached, ctx);
	/* The union's energies are sum_k w_k E_k of each union row. */
	float e[513 + 300];
	ck_assert_int_eq(ebm_product_energy(fresh, ctx, ebm_model_ref_rows(m[2]),
			513, e, NULL), 0);
	for (size_t i = 0; i < 513; i++) {
		ck_assert_float_eq_tol(e[i], blk[8][i] + blk[2][i],
				1e-4f * (1.0f + fabsf(e[i])));
	}
	ebm_product_destroy(cached);
	ebm_product_destroy(fresh);
	for (size_t q = 0; q < 9; q++) {
		free(blk[q]);
	}
	ebm_ctx_destroy(ctx);
	for (size_t k = 0; k < 3; k++) {
		ebm_model_destroy(m[k]);
	}
}
END_TEST

/* Compatibility is decided from metadata alone, with the messages of
 * ebm_product_create. */
START_TEST(check_without_maths)
{
	const char *n1[3] = {"a", "b", "c"}, *n2[3] = {"a", "x", "c"};
	struct ebm_model *a = gaussian(3, P1, 5, 1.0f, n1);
	struct ebm_model *b = gaussian(3, P2, 5, 1.0f, n2);
	struct ebm_model *u = gaussian(3, P2, 5, 1.0f, NULL);
	struct ebm_error err;
	ck_assert_int_eq(ebm_product_check((const struct ebm_model *const[]){u,
			a, b}, 3, &err), EBM_STATUS_MISMATCH);
	ck_assert_str_eq(err.message,
			"models[2] calls feature 1 'x' where another model has 'b'");
	ck_assert_int_eq(ebm_product_check((const struct ebm_model *const[]){u,
			a}, 2, &err), EBM_STATUS_OK);
	ck_assert_int_eq(ebm_product_check((const struct ebm_model *const[]){u},
			0, &err), EBM_STATUS_INVALID_ARGUMENT);
	ebm_model_destroy(a);
	ebm_model_destroy(b);
	ebm_model_destroy(u);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("product");
	tcase_add_test(tc, single_equals_model);
	tcase_add_test(tc, weighted_sum_and_union);
	tcase_add_test(tc, incompatible);
	tcase_add_test(tc, explain_closed_form);
	tcase_add_test(tc, repair_descends);
	tcase_add_test(tc, repair_trust_region);
	tcase_add_test(tc, repair_follows_a_narrow_valley);
	tcase_add_test(tc, repair_drops_momentum_at_a_floor);
	tcase_add_test(tc, nonfinite_row_named);
	tcase_add_test(tc, cached_equals_fresh);
	tcase_add_test(tc, check_without_maths);
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
