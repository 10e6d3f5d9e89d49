/*
 * test-train-fit.c — ebm_train_fit end to end on data with known answers:
 * a bimodal density whose modes the MLP must find (the Gaussian base alone
 * puts its minimum energy between them), both objectives, reproducibility,
 * cancellation and the rejection of unusable input.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ebm/model.h"
#include "ebm/train.h"
#include "model/model.h"
#include "train/train.h"
#include "util/util.h"

/* n rows of d = 2: x0 from +-2 with noise 0.3, x1 standard normal. */
static float *bimodal(size_t n, uint64_t seed)
{
	struct ebm_rng r;
	ebm_rng_init(&r, seed);
	float *x = malloc(n * 2 * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		x[2 * i] = (i % 2 ? 2.0f : -2.0f) + 0.3f * (float)ebm_rng_normal(&r);
		x[2 * i + 1] = (float)ebm_rng_normal(&r);
	}
	return x;
}

static void small_options(struct ebm_train_options *o)
{
	ebm_train_options_init(o);
	o->n_protos = 0;   /* these tests train the network */
	o->n_layers = 2;
	o->hidden[0] = 32;
	o->hidden[1] = 32;
	o->epochs = 60;
	o->batch = 64;
	o->lr = 3e-3f;
	o->patience = 0;
	/* The noise ladder must stay well below the 4-unit gap between the
	 * modes (2 standardized units here), or DSM learns the smoothed,
	 * near-unimodal density it sees through the noise. */
	o->sigma_max = 0.3f;
	o->seed = 5;
	o->created = 1700000000;
}

static float energy_at(const struct ebm_model *m, float a, float b)
{
	struct ebm_ctx *ctx = ebm_ctx_create();
	float x[2] = {a, b}, e;
	ck_assert_int_eq(ebm_model_energy(m, ctx, x, 1, &e, NULL), EBM_STATUS_OK);
	ebm_ctx_destroy(ctx);
	return e;
}

static float energy_at3(const struct ebm_model *m, float a, float b, float c)
{
	struct ebm_ctx *ctx = ebm_ctx_create();
	float x[3] = {a, b, c}, e;
	ck_assert_int_eq(ebm_model_energy(m, ctx, x, 1, &e, NULL), EBM_STATUS_OK);
	ebm_ctx_destroy(ctx);
	return e;
}

static void check_bimodal(enum ebm_objective obj)
{
	size_t n = 1200;
	float *x = bimodal(n, 1);
	struct ebm_train_options o;
	small_options(&o);
	o.objective = obj;
	if (obj == EBM_OBJECTIVE_CD) {
		o.epochs = 40;
		o.cd_buffer = 2000;
	}
	const char *names[2] = {"x0", "x1"};
	struct ebm_model *m = NULL;
	struct ebm_error err;
	enum ebm_status st = ebm_train_fit(&o, x, n, 2, names, NULL, NULL, &m,
			&err);
	ck_assert_msg(st == EBM_STATUS_OK, "%s", err.message);
	/* Both modes are more likely than the gap between them. */
	float e_mid = energy_at(m, 0.0f, 0.0f);
	float e_left = energy_at(m, -2.0f, 0.0f);
	float e_right = energy_at(m, 2.0f, 0.0f);
	ck_assert_msg(e_left < e_mid - 1.0f && e_right < e_mid - 1.0f,
			"%s: E(-2)=%g E(0)=%g E(2)=%g", ebm_objective_name(obj), e_left,
			e_mid, e_right);
	/* Far from the data is much less likely than the modes. */
	ck_assert(energy_at(m, 8.0f, 5.0f) > e_right + 5.0f);
	/* Metadata and the reference set. */
	ck_assert_uint_eq(ebm_model_n_features(m), 2);
	ck_assert_str_eq(ebm_model_feature_name(m, 1), "x1");
	ck_assert_str_eq(ebm_model_objective(m), ebm_objective_name(obj));
	ck_assert_uint_eq(ebm_model_created(m), 1700000000);
	size_t n_ref = ebm_model_n_ref(m);
	ck_assert_uint_eq(n_ref, 120); /* reference_frac 0.1 of 1200 */
	const float *re = ebm_model_ref_energies(m);
	for (size_t i = 1; i < n_ref; i++) {
		ck_assert(re[i - 1] <= re[i]);
	}
	/* Stored energies are the model's energies of the stored rows. */
	struct ebm_ctx *ctx = ebm_ctx_create();
	float *e = malloc(n_ref * sizeof(float));
	ck_assert_int_eq(ebm_model_energy(m, ctx, ebm_model_ref_rows(m), n_ref, e,
			NULL), EBM_STATUS_OK);
	for (size_t i = 0; i < n_ref; i++) {
		ck_assert_float_eq_tol(e[i], re[i], 1e-4f * (1.0f + fabsf(re[i])));
	}
	free(e);
	ebm_ctx_destroy(ctx);
	ebm_model_destroy(m);
	free(x);
}

START_TEST(dsm_finds_both_modes) { check_bimodal(EBM_OBJECTIVE_DSM); }
END_TEST
START_TEST(cd_finds_both_modes) { check_bimodal(EBM_OBJECTIVE_CD); }
END_TEST

static void *fit_bytes(unsigned threads, uint64_t seed, size_t *size)
{
	size_t n = 400;
	float *x = bimodal(n, 2);
	struct ebm_train_options o;
	small_options(&o);
	o.epochs = 5;
	o.n_members = 2;
	o.n_threads = threads;
	o.seed = seed;
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ck_assert_int_eq(ebm_train_fit(&o, x, n, 2, NULL, NULL, NULL, &m, &err),
			EBM_STATUS_OK);
	void *buf;
	ck_assert_int_eq(ebm_model_write_buffer(m, &buf, size, &err),
			EBM_STATUS_OK);
	ebm_model_destroy(m);
	free(x);
	return buf;
}

START_TEST(same_seed_same_bytes)
{
	for (unsigned threads = 1; threads <= 3; threads++) {
		size_t s1, s2, s3;
		void *a = fit_bytes(threads, 9, &s1);
		void *b = fit_bytes(threads, 9, &s2);
		void *c = fit_bytes(threads, 10, &s3);
		ck_assert_uint_eq(s1, s2);
		ck_assert_msg(memcmp(a, b, s1) == 0, "threads %u: files differ",
				threads);
		ck_assert(s1 != s3 || memcmp(a, c, s1) != 0);
		free(a);
		free(b);
		free(c);
	}
}
END_TEST

static bool cancel_at_3(const struct ebm_train_progress *p, void *user)
{
	int *calls = user;
	(*calls)++;
	ck_assert_uint_eq(p->n_train_rows, 400 - 50 - 40);
	ck_assert(isfinite(p->train_loss) && isfinite(p->val_loss));
	return p->epoch < 3;
}

START_TEST(progress_and_cancel)
{
	float *x = bimodal(400, 3);
	struct ebm_train_options o;
	small_options(&o);
	int calls = 0;
	struct ebm_model *m = (struct ebm_model *)&calls; /* must be reset */
	struct ebm_error err;
	ck_assert_int_eq(ebm_train_fit(&o, x, 400, 2, NULL, cancel_at_3, &calls,
			&m, &err), EBM_STATUS_CANCELLED);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(calls, 3);
	free(x);
}
END_TEST

struct epoch_count {
	int calls;
	uint32_t n_epochs;
};

static bool count_epochs(const struct ebm_train_progress *p, void *user)
{
	struct epoch_count *c = user;
	c->calls++;
	c->n_epochs = p->n_epochs;
	/* cd reports the held-out denoising loss but never selects on it. */
	ck_assert(isfinite(p->val_loss));
	ck_assert(isnan(p->best_val_loss));
	ck_assert(!p->improved);
	return true;
}

/* Trains on x (400 rows of bimodal()) counting epochs into c. */
static struct ebm_model *fit_counting(const struct ebm_train_options *o,
		const float *x, struct epoch_count *c)
{
	*c = (struct epoch_count){0};
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ck_assert_msg(ebm_train_fit(o, x, 400, 2, NULL, count_epochs, c, &m,
			&err) == EBM_STATUS_OK, "%s", err.message);
	return m;
}

/* Contrastive divergence sharpens the energy, so the held-out denoising
 * loss rises while the model improves; early stopping on it would keep the
 * untrained start. cd runs every epoch whatever --patience says. */
START_TEST(cd_ignores_patience)
{
	float *x = bimodal(400, 3);
	struct ebm_train_options o;
	small_options(&o);
	o.objective = EBM_OBJECTIVE_CD;
	o.epochs = 12;
	o.patience = 1;
	struct epoch_count c;
	struct ebm_model *m = fit_counting(&o, x, &c);
	ck_assert_int_eq(c.calls, 12);
	ebm_model_destroy(m);
	free(x);
}
END_TEST

/* --max-steps ends training after the epoch that reaches the budget: 310
 * training rows in batches of 64 are 5 steps an epoch, so 12 steps are 3
 * epochs of the 60 allowed, and the model records the budget. 0 is no
 * budget: every epoch runs. */
START_TEST(max_steps_bounds_epochs)
{
	float *x = bimodal(400, 3);
	struct ebm_train_options o;
	small_options(&o);
	o.objective = EBM_OBJECTIVE_CD;
	o.max_steps = 12;
	struct epoch_count c;
	struct ebm_model *m = fit_counting(&o, x, &c);
	ck_assert_int_eq(c.calls, 3);
	ck_assert_uint_eq(c.n_epochs, 3);
	ck_assert_ptr_nonnull(strstr(m->options, "\nmax_steps=12\n"));
	ebm_model_destroy(m);
	o.max_steps = 0;
	o.epochs = 7;
	m = fit_counting(&o, x, &c);
	ck_assert_int_eq(c.calls, 7);
	ck_assert_uint_eq(c.n_epochs, 7);
	ck_assert_ptr_null(strstr(m->options, "max_steps="));
	ebm_model_destroy(m);
	free(x);
}
END_TEST

/* Replay-buffer use, recorded step by step through the trainer's probe. */
struct coverage {
	size_t n_buffer;
	unsigned *visits;     /* per slot, over the whole run */
	uint64_t *last_step;  /* per slot: the step that last used it, + 1 */
	size_t steps, chains;
	bool bad_slot, shared_in_step;
};

static void on_cd_step(void *user, uint32_t member, uint64_t step,
		const size_t *slots, size_t n)
{
	struct coverage *c = user;
	(void)member;
	c->steps++;
	c->chains += n;
	for (size_t i = 0; i < n; i++) {
		if (slots[i] >= c->n_buffer) {
			c->bad_slot = true;
			continue;
		}
		/* Two chains of one step in one slot: two workers would write it
		 * at once. */
		c->shared_in_step |= c->last_step[slots[i]] == step + 1;
		c->last_step[slots[i]] = step + 1;
		c->visits[slots[i]]++;
	}
}

/*
 * Persistent CD cycles through the whole replay buffer: after one epoch of
 * 1,000 rows (800 trained on, 13 batches of 64) every one of 300 slots has
 * been used, each two or three times, and never twice in one step. A
 * buffer size that is not a multiple of the batch and two workers make
 * the wrap-around and the split of a batch over workers count.
 */
START_TEST(cd_replay_buffer_every_slot)
{
	size_t n = 1000;
	float *x = bimodal(n, 8);
	struct ebm_train_options o;
	small_options(&o);
	o.objective = EBM_OBJECTIVE_CD;
	o.epochs = 1;
	o.cd_steps = 2;
	o.cd_buffer = 300;
	o.n_threads = 2;
	struct coverage c = {
		.n_buffer = o.cd_buffer,
		.visits = calloc(o.cd_buffer, sizeof(unsigned)),
		.last_step = calloc(o.cd_buffer, sizeof(uint64_t)),
	};
	struct ebm_train_probe probe = {.cd_step = on_cd_step, .user = &c};
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ck_assert_int_eq(ebm_train_fit_probed(&o, x, n, 2, NULL, NULL, NULL,
			&probe, &m, &err), EBM_STATUS_OK);
	ck_assert_uint_eq(c.steps, 13);
	ck_assert_uint_eq(c.chains, 800);
	ck_assert(!c.bad_slot);
	ck_assert(!c.shared_in_step);
	unsigned lo = UINT32_MAX, hi = 0;
	size_t unused = 0;
	for (size_t i = 0; i < o.cd_buffer; i++) {
		lo = c.visits[i] < lo ? c.visits[i] : lo;
		hi = c.visits[i] > hi ? c.visits[i] : hi;
		unused += c.visits[i] == 0;
	}
	ck_assert_msg(unused == 0, "%zu of %u replay-buffer slots never used",
			unused, o.cd_buffer);
	ck_assert_msg(lo == 2 && hi == 3, "slot use between %u and %u times",
			lo, hi);
	ebm_model_destroy(m);
	free(c.visits);
	free(c.last_step);
	free(x);
}
END_TEST

/*
 * Every chain of a CD batch needs a slot of its own: a buffer smaller than
 * the batch is refused with both values named (dsm never uses it).
 */
START_TEST(cd_buffer_smaller_than_batch)
{
	struct ebm_train_options o;
	ebm_train_options_init(&o);
	o.n_protos = 0;   /* cd trains the network: the network model */
	o.objective = EBM_OBJECTIVE_CD;
	o.batch = 256;
	o.cd_buffer = 100;
	struct ebm_error err;
	ck_assert_int_eq(ebm_train_options_validate(&o, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "cd-buffer (100) must be at least batch "
			"(256): every chain of a batch needs its own slot");
	o.cd_buffer = 256;
	ck_assert_int_eq(ebm_train_options_validate(&o, &err), EBM_STATUS_OK);
	o.objective = EBM_OBJECTIVE_DSM;
	o.cd_buffer = 100;
	ck_assert_int_eq(ebm_train_options_validate(&o, &err), EBM_STATUS_OK);
	/* And through the trainer: nothing is trained. */
	float *x = bimodal(400, 4);
	small_options(&o);
	o.objective = EBM_OBJECTIVE_CD;
	o.cd_buffer = 10;
	struct ebm_model *m = NULL;
	ck_assert_int_eq(ebm_train_fit(&o, x, 400, 2, NULL, NULL, NULL, &m, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_null(m);
	ck_assert(strstr(err.message, "cd-buffer (10)") != NULL);
	free(x);
}
END_TEST

START_TEST(rejects_bad_input)
{
	float *x = bimodal(400, 4);
	struct ebm_train_options o;
	small_options(&o);
	struct ebm_model *m;
	struct ebm_error err;
	ck_assert_int_eq(ebm_train_fit(&o, x, 10, 2, NULL, NULL, NULL, &m, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "need at least 20 rows to train, got 10");
	x[7] = NAN;
	ck_assert_int_eq(ebm_train_fit(&o, x, 400, 2, NULL, NULL, NULL, &m, &err),
			EBM_STATUS_NUMERIC);
	ck_assert_str_eq(err.message, "row 4, feature 2: value is not finite");
	ck_assert_uint_eq(err.line, 4);
	x[7] = 0.0f;
	o.lr = -1.0f;
	ck_assert_int_eq(ebm_train_fit(&o, x, 400, 2, NULL, NULL, NULL, &m, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(err.message, "lr must be in (0, 1], got -1");
	small_options(&o);
	o.sigma_min = 2.0f;
	o.sigma_max = 1.0f;
	ck_assert_int_eq(ebm_train_options_validate(&o, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_null(m);
	free(x);
}
END_TEST

/* A constant feature standardizes to zero instead of dividing by zero. */
/*
 * --epochs 0: no member is trained, so the energy is the fitted Gaussian
 * base alone: exactly quadratic, with the curvature of
 * the inverse covariance (rows from N(0, diag(1, 9)): 1/2 x^2 and x^2/18
 * along the axes), and the model says "gauss".
 */
START_TEST(epochs_0_is_the_gaussian)
{
	size_t n = 4000;
	struct ebm_rng r;
	ebm_rng_init(&r, 12);
	float *x = malloc(n * 2 * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		x[2 * i] = (float)ebm_rng_normal(&r);
		x[2 * i + 1] = 3.0f * (float)ebm_rng_normal(&r);
	}
	struct ebm_train_options o;
	small_options(&o);
	o.epochs = 0;
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ck_assert_msg(ebm_train_fit(&o, x, n, 2, NULL, NULL, NULL, &m, &err) ==
			EBM_STATUS_OK, "%s", err.message);
	ck_assert_str_eq(ebm_model_objective(m), "gauss");
	double e0 = energy_at(m, 0.0f, 0.0f);
	double ea = energy_at(m, 1.0f, 0.0f) - e0;
	double eb = energy_at(m, 0.0f, 3.0f) - e0;
	ck_assert_msg(fabs(ea - 0.5) < 0.05 && fabs(eb - 0.5) < 0.05,
			"E(1, 0) - E(0) = %g, E(0, 3) - E(0) = %g, want 0.5", ea, eb);
	/* second differences of a quadratic are one constant */
	double e2 = energy_at(m, 2.0f, 0.0f) - e0;
	double em = energy_at(m, -1.0f, 0.0f) - e0;
	ck_assert_msg(fabs((e2 - 2.0 * ea) - (ea + em)) < 1e-3,
			"not quadratic: %g %g %g", ea, e2, em);
	ebm_model_destroy(m);
	free(x);
}
END_TEST

START_TEST(constant_feature)
{
	float *x = bimodal(300, 6);
	for (size_t i = 0; i < 300; i++) {
		x[2 * i + 1] = 4.0f;
	}
	struct ebm_train_options o;
	small_options(&o);
	o.epochs = 3;
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ck_assert_int_eq(ebm_train_fit(&o, x, 300, 2, NULL, NULL, NULL, &m, &err),
			EBM_STATUS_OK);
	ck_assert(isfinite(energy_at(m, 1.0f, 4.0f)));
	ebm_model_destroy(m);
	free(x);
}
END_TEST

/*
 * --robust-scale: a feature with a few huge values is scaled by its IQR,
 * not by the standard deviation the outliers inflate; a binary feature
 * whose IQR is zero keeps its standard deviation; a constant one scale 1.
 */
START_TEST(robust_scale)
{
	size_t n = 400;
	float *x = malloc(n * 3 * sizeof(float));
	struct ebm_rng r;
	ebm_rng_init(&r, 7);
	for (size_t i = 0; i < n; i++) {
		x[3 * i] = 10.0f + 2.0f * (float)ebm_rng_normal(&r);
		if (i % 50 == 0) {
			x[3 * i] = 1000.0f; /* 2% outliers */
		}
		x[3 * i + 1] = i % 10 == 0 ? 1.0f : 0.0f;
		x[3 * i + 2] = -3.0f;
	}
	struct ebm_train_options o;
	small_options(&o);
	o.epochs = 2;
	o.robust_scale = true;
	struct ebm_model *m = NULL;
	struct ebm_error err;
	ck_assert_int_eq(ebm_train_fit(&o, x, n, 3, NULL, NULL, NULL, &m, &err),
			EBM_STATUS_OK);
	/* Median about 10, IQR / 1.349 about 2 (the std would be ~140). */
	ck_assert_float_eq_tol(m->net.mean[0], 10.0f, 0.5f);
	ck_assert_float_eq_tol(m->net.scale[0], 2.0f, 0.4f);
	/* Binary 10%: median 0, IQR 0 -> standard deviation 0.3. */
	ck_assert_float_eq_tol(m->net.mean[1], 0.0f, 1e-6f);
	ck_assert_float_eq_tol(m->net.scale[1], 0.3f, 0.03f);
	ck_assert_float_eq_tol(m->net.mean[2], -3.0f, 1e-6f);
	ck_assert_float_eq(m->net.scale[2], 1.0f);
	ck_assert(strstr(ebm_model_training_options(m), "scaling=robust\n")
			!= NULL);
	ck_assert(isfinite(energy_at3(m, 10.0f, 0.0f, -3.0f)));
	ebm_model_destroy(m);
	/* The default keeps mean and standard deviation. */
	o.robust_scale = false;
	ck_assert_int_eq(ebm_train_fit(&o, x, n, 3, NULL, NULL, NULL, &m, &err),
			EBM_STATUS_OK);
	ck_assert(m->net.scale[0] > 50.0f);
	ck_assert(strstr(ebm_model_training_options(m), "scaling=std\n") != NULL);
	ebm_model_destroy(m);
	free(x);
}
END_TEST

/*
 * The weight average: with power 0 it is the plain mean of the start and
 * every step, with power 1 it weights them 1 : 2 : 3 ..., and once the
 * decay caps k it is an ordinary EMA.
 */
START_TEST(ema_power)
{
	float a[2] = {0.0f, 0.0f};
	double mean0 = 0.0, lin = 0.0, wsum = 0.0;
	for (uint64_t t = 0; t < 200; t++) {
		float p[2] = {(float)(t + 1), (float)(t + 1)};
		ebm_ema_update(a, p, 0, 1, 0.9999f, 0.0f, t);
		ebm_ema_update(a + 1, p + 1, 0, 1, 0.9999f, 1.0f, t);
	}
	for (int s = 0; s <= 200; s++) { /* s = 0 is the start, value 0 */
		mean0 += s / 201.0;
		lin += (double)(s + 1) * s;
		wsum += s + 1;
	}
	ck_assert_float_eq_tol(a[0], (float)mean0, 1e-3f);
	ck_assert_float_eq_tol(a[1], (float)(lin / wsum), 1e-3f);
	/* The cap: k = decay = 0.5 from the first step on. */
	float e = 4.0f, q = 0.0f;
	ebm_ema_update(&e, &q, 0, 1, 0.5f, 0.0f, 100);
	ck_assert_float_eq_tol(e, 2.0f, 1e-6f);
	struct ebm_train_options o;
	ebm_train_options_init(&o);
	o.ema_power = -1.0f;
	struct ebm_error err;
	ck_assert_int_eq(ebm_train_options_validate(&o, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert(strstr(err.message, "ema-power") != NULL);
}
END_TEST

/* The pool runs fn once on every worker per run, the caller as worker 0,
 * and is done with all of them when run returns. */
struct pool_count {
	unsigned calls[5];
	pthread_t caller;
	bool caller_not_0;
};

static void count_call(void *arg, unsigned id)
{
	struct pool_count *c = arg;
	c->calls[id]++; /* each worker its own counter: no race */
	if (id == 0 && !pthread_equal(pthread_self(), c->caller)) {
		c->caller_not_0 = true;
	}
}

START_TEST(pool_runs_every_worker)
{
	for (unsigned n = 1; n <= 5; n++) {
		struct ebm_pool p;
		ck_assert(ebm_pool_init(&p, n));
		struct pool_count c = {.caller = pthread_self()};
		for (unsigned r = 1; r <= 200; r++) {
			ebm_pool_run(&p, count_call, &c);
			for (unsigned i = 0; i < n; i++) {
				ck_assert_uint_eq(c.calls[i], r);
			}
		}
		ck_assert(!c.caller_not_0);
		for (unsigned i = n; i < 5; i++) {
			ck_assert_uint_eq(c.calls[i], 0);
		}
		ebm_pool_finish(&p);
		ebm_pool_finish(&p); /* a second finish does nothing */
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("train");
	TCase *tc = tcase_create("fit");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, dsm_finds_both_modes);
	tcase_add_test(tc, cd_finds_both_modes);
	tcase_add_test(tc, same_seed_same_bytes);
	tcase_add_test(tc, progress_and_cancel);
	tcase_add_test(tc, cd_ignores_patience);
	tcase_add_test(tc, max_steps_bounds_epochs);
	tcase_add_test(tc, cd_replay_buffer_every_slot);
	tcase_add_test(tc, cd_buffer_smaller_than_batch);
	tcase_add_test(tc, rejects_bad_input);
	tcase_add_test(tc, constant_feature);
	tcase_add_test(tc, epochs_0_is_the_gaussian);
	tcase_add_test(tc, robust_scale);
	tcase_add_test(tc, ema_power);
	tcase_add_test(tc, pool_runs_every_worker);
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
