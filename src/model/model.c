/*
 * model.c — the in-memory model: building and finalizing, metadata,
 * the reference set (median, p-values), energies and their gradients,
 * scores, and sampling. The network maths is core's (ebm_net_forward,
 * ebm_net_input_grad, ebm_chain_run); the file format is format.c's.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/*
 * Rows go through the network in slices of this many, so scratch memory
 * stays bounded (n_rows may be large) while each product still amortizes
 * over enough rows for BLAS.
 */
#define ROWS_PER_PASS 256u

#define MAX_SAMPLE_STEPS 1000000u

/*
 * Default step sizes, in standardized units (every feature has unit scale
 * there, so one value suits every model):
 * - Langevin and MALA: eps = 0.01 with noise sqrt(2 eps) ~ 0.14, the
 *   textbook discretization of the Langevin diffusion. Small enough that
 *   unadjusted chains stay close to the target for the smooth MLPs we
 *   train, large enough that 100 steps move a chain by about one unit.
 * - Random-walk MH: proposal std 0.1, about what gives a reasonable
 *   acceptance rate in a few to a few dozen standardized dimensions.
 */
#define DEFAULT_LANGEVIN_STEP 0.01f
#define DEFAULT_MH_STEP 0.1f

/* ======================================================================
 * Lifecycle
 * ==================================================================== */

struct ebm_model *ebm_model_alloc(void)
{
	struct ebm_model *m = ebm_xcalloc(1, sizeof(*m));
	m->checksum[0] = '\0';
	return m;
}

void ebm_model_destroy(struct ebm_model *m)
{
	if (m == NULL) {
		return;
	}
	if (m->feature_names != NULL) {
		for (uint32_t i = 0; i < m->net.d; i++) {
			free(m->feature_names[i]);
		}
		free(m->feature_names);
	}
	ebm_net_finish(&m->net);
	free(m->objective);
	free(m->options);
	free(m->ref_rows);
	free(m->ref_energy);
	free(m->name_order);
	free(m);
}

enum ebm_status ebm_model_finalize(struct ebm_model *m,
		struct ebm_error *err)
{
	uint32_t *order = NULL;
	void *data = NULL;
	size_t size;
	char hex[33];
	enum ebm_status st = ebm_model_check(m, "<model>", &order, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	st = ebm_model_serialize(m, &data, &size, hex, err);
	free(data);
	if (st != EBM_STATUS_OK) {
		free(order);
		return st;
	}
	free(m->name_order);
	m->name_order = order;
	memcpy(m->checksum, hex, sizeof(m->checksum));
	return EBM_STATUS_OK;
}

/* ======================================================================
 * Metadata
 * ==================================================================== */

size_t ebm_model_n_features(const struct ebm_model *m)
{
	return m->net.d;
}

const char *ebm_model_feature_name(const struct ebm_model *m, size_t i)
{
	if (m->feature_names == NULL || i >= m->net.d) {
		return NULL;
	}
	return m->feature_names[i];
}

long ebm_model_feature_index(const struct ebm_model *m, const char *name)
{
	if (m->feature_names == NULL || name == NULL) {
		return -1;
	}
	if (m->name_order == NULL) {
		/* Built but not finalized: no index yet. */
		for (uint32_t i = 0; i < m->net.d; i++) {
			if (strcmp(m->feature_names[i], name) == 0) {
				return (long)i;
			}
		}
		return -1;
	}
	return ebm_names_find((const char *const *)m->feature_names,
			m->name_order, m->net.d, name);
}

float ebm_model_alpha(const struct ebm_model *m)
{
	return m->alpha;
}

const char *ebm_model_objective(const struct ebm_model *m)
{
	return m->objective ? m->objective : "";
}

size_t ebm_model_n_members(const struct ebm_model *m)
{
	return m->net.n_members;
}

size_t ebm_model_n_protos(const struct ebm_model *m)
{
	return m->net.proto.n;
}

size_t ebm_model_n_layers(const struct ebm_model *m)
{
	return m->net.n_layers;
}

size_t ebm_model_hidden(const struct ebm_model *m, size_t layer)
{
	return layer < m->net.n_layers ? m->net.hidden[layer] : 0;
}

const char *ebm_model_activation(const struct ebm_model *m)
{
	return ebm_act_name(m->net.act);
}

uint64_t ebm_model_created(const struct ebm_model *m)
{
	return m->created;
}

uint64_t ebm_model_seed(const struct ebm_model *m)
{
	return m->seed;
}

const char *ebm_model_checksum(const struct ebm_model *m)
{
	return m->checksum;
}

const char *ebm_model_training_options(const struct ebm_model *m)
{
	return m->options ? m->options : "";
}

/* ======================================================================
 * Reference set
 * ==================================================================== */

size_t ebm_model_n_ref(const struct ebm_model *m)
{
	return m->n_ref;
}

const float *ebm_model_ref_rows(const struct ebm_model *m)
{
	return m->ref_rows;
}

const float *ebm_model_ref_energies(const struct ebm_model *m)
{
	return m->ref_energy;
}

size_t ebm_model_median_index(const struct ebm_model *m)
{
	return m->n_ref > 0 ? (m->n_ref - 1) / 2 : 0;
}

float ebm_model_median_energy(const struct ebm_model *m)
{
	return m->ref_energy[ebm_model_median_index(m)];
}

double ebm_p_value(const float *sorted_energy, size_t n, float energy)
{
	if (isnan(energy)) {
		return NAN;
	}
	/* lo = first index whose energy is >= `energy`: all from there count. */
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sorted_energy[mid] < energy) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return (double)(1 + (n - lo)) / (double)(n + 1);
}

/* ======================================================================
 * Scratch
 * ==================================================================== */

/* struct ebm_ctx is defined in model.h (shared with product.c). */

struct ebm_ctx *ebm_ctx_create(void)
{
	struct ebm_ctx *ctx = ebm_xmalloc(sizeof(*ctx));
	ebm_work_init(&ctx->net);
	ebm_work_init(&ctx->z);
	ebm_work_init(&ctx->f);
	ebm_work_init(&ctx->g);
	ebm_work_init(&ctx->e);
	ebm_work_init(&ctx->chain);
	for (size_t i = 0; i < EBM_CTX_PRODUCT_BUFS; i++) {
		ebm_work_init(&ctx->prod[i]);
	}
	ctx->product_rows = 0;
	return ctx;
}

void ebm_ctx_destroy(struct ebm_ctx *ctx)
{
	if (ctx == NULL) {
		return;
	}
	ebm_work_finish(&ctx->net);
	ebm_work_finish(&ctx->z);
	ebm_work_finish(&ctx->f);
	ebm_work_finish(&ctx->g);
	ebm_work_finish(&ctx->e);
	ebm_work_finish(&ctx->chain);
	for (size_t i = 0; i < EBM_CTX_PRODUCT_BUFS; i++) {
		ebm_work_finish(&ctx->prod[i]);
	}
	free(ctx);
}

/* ======================================================================
 * Energies
 * ==================================================================== */

static enum ebm_status row_error(struct ebm_error *err, size_t row,
		size_t column, const char *what)
{
	/* what == NULL: an input feature (column > 0) is not finite. */
	if (what == NULL) {
		ebm_error_set(err, EBM_STATUS_NUMERIC,
				"row %zu: feature %zu is not a finite number", row, column);
	} else {
		ebm_error_set(err, EBM_STATUS_NUMERIC, "row %zu: %s is not finite",
				row, what);
	}
	if (err != NULL) {
		err->line = row;
		err->column = column;
	}
	return EBM_STATUS_NUMERIC;
}

static enum ebm_status nomem(struct ebm_error *err)
{
	return ebm_error_set(err, EBM_STATUS_NOMEM,
			"out of memory for scratch space");
}

/*
 * E (and dE/dx if grad) of n_rows raw rows; row numbers in messages start
 * at first_row + 1.
 */
static enum ebm_status eval(const struct ebm_model *m, struct ebm_ctx *ctx,
		const float *x, size_t n_rows, size_t first_row, float *energy,
		float *grad, struct ebm_error *err)
{
	const struct ebm_net *net = &m->net;
	size_t d = net->d;
	for (size_t start = 0; start < n_rows; start += ROWS_PER_PASS) {
		size_t nb = n_rows - start < ROWS_PER_PASS ?
				n_rows - start : ROWS_PER_PASS;
		const float *xb = x + start * d;
		for (size_t i = 0; i < nb; i++) {
			for (size_t j = 0; j < d; j++) {
				if (!isfinite(xb[i * d + j])) {
					return row_error(err, first_row + start + i + 1, j + 1,
							NULL);
				}
			}
		}
		float *z = ebm_work_reserve(&ctx->z, nb * d);
		float *f = ebm_work_reserve(&ctx->f, nb);
		float *g = grad ? ebm_work_reserve(&ctx->g, nb * d) : NULL;
		if (z == NULL || f == NULL || (grad != NULL && g == NULL)) {
			return nomem(err);
		}
		ebm_net_standardize(net, xb, nb, z);
		bool ok = grad ? ebm_net_input_grad(net, &ctx->net, z, nb, f, g) :
				ebm_net_forward(net, &ctx->net, z, nb, f);
		if (!ok) {
			return nomem(err);
		}
		for (size_t i = 0; i < nb; i++) {
			float e = -f[i];
			if (!isfinite(e)) {
				return row_error(err, first_row + start + i + 1, 0,
						"energy");
			}
			energy[start + i] = e;
			if (grad == NULL) {
				continue;
			}
			/* z_j = (x_j - mean_j) / scale_j, so dE/dx_j = -df/dz_j / scale_j. */
			for (size_t j = 0; j < d; j++) {
				float v = -g[i * d + j] / net->scale[j];
				if (!isfinite(v)) {
					return row_error(err, first_row + start + i + 1, 0,
							"energy gradient");
				}
				grad[(start + i) * d + j] = v;
			}
		}
	}
	return EBM_STATUS_OK;
}

static enum ebm_status check_args(const struct ebm_model *m,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, const void *out,
		struct ebm_error *err)
{
	if (m == NULL || ctx == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"no model or context given");
	}
	if (n_rows > 0 && (x == NULL || out == NULL)) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"no input or output array given");
	}
	return EBM_STATUS_OK;
}

enum ebm_status ebm_model_energy(const struct ebm_model *m,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, float *energy,
		struct ebm_error *err)
{
	enum ebm_status st = check_args(m, ctx, x, n_rows, energy, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	return eval(m, ctx, x, n_rows, 0, energy, NULL, err);
}

enum ebm_status ebm_model_energy_grad(const struct ebm_model *m,
		struct ebm_ctx *ctx, const float *x, size_t n_rows, float *energy,
		float *grad, struct ebm_error *err)
{
	enum ebm_status st = check_args(m, ctx, x, n_rows, energy, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	if (n_rows > 0 && grad == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"no gradient array given");
	}
	return eval(m, ctx, x, n_rows, 0, energy, grad, err);
}

enum ebm_status ebm_score_check_alpha(double alpha, struct ebm_error *err)
{
	/* Written so that NaN fails too. */
	if (!(alpha > 0.0 && alpha < 1.0)) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"alpha must be in (0, 1), got %g", alpha);
	}
	return EBM_STATUS_OK;
}

void ebm_scores_of(const float *e, size_t n, float median,
		const float *ref_energy, size_t n_ref, double alpha,
		struct ebm_score *out)
{
	for (size_t i = 0; i < n; i++) {
		out[i].energy = e[i];
		out[i].score = e[i] - median;
		out[i].p_value = ebm_p_value(ref_energy, n_ref, e[i]);
		out[i].anomaly = out[i].p_value < alpha;
	}
}

enum ebm_status ebm_model_score(const struct ebm_model *m, struct ebm_ctx *ctx,
		const float *x, size_t n_rows, double alpha, struct ebm_score *out,
		struct ebm_error *err)
{
	enum ebm_status st = check_args(m, ctx, x, n_rows, out, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	st = ebm_score_check_alpha(alpha, err);
	if (st != EBM_STATUS_OK) {
		return st;
	}
	size_t d = m->net.d;
	float median = ebm_model_median_energy(m);
	for (size_t start = 0; start < n_rows; start += ROWS_PER_PASS) {
		size_t nb = n_rows - start < ROWS_PER_PASS ?
				n_rows - start : ROWS_PER_PASS;
		float *e = ebm_work_reserve(&ctx->e, nb);
		if (e == NULL) {
			return nomem(err);
		}
		st = eval(m, ctx, x + start * d, nb, start, e, NULL, err);
		if (st != EBM_STATUS_OK) {
			return st;
		}
		ebm_scores_of(e, nb, median, m->ref_energy, m->n_ref, alpha,
				out + start);
	}
	return EBM_STATUS_OK;
}

/* ======================================================================
 * Sampling
 * ==================================================================== */

/* ebm_sampler_parse and ebm_sampler_name live with the samplers in
 * src/core/sampler.c. */

void ebm_sample_options_init(struct ebm_sample_options *o)
{
	memset(o, 0, sizeof(*o));
	o->sampler = EBM_SAMPLER_LANGEVIN;
	o->n_steps = 100;
	o->step_size = 0.0f;
	o->seed = 0;
}

struct grad_user {
	const struct ebm_net *net;
	struct ebm_work *work;
};

static bool net_grad(void *user, const float *z, size_t n, float *f,
		float *g)
{
	struct grad_user *u = user;
	return ebm_net_input_grad(u->net, u->work, z, n, f, g);
}

enum ebm_status ebm_model_sample(const struct ebm_model *m,
		struct ebm_ctx *ctx, const struct ebm_sample_options *opt, size_t n,
		float *out, double *accept_rate, struct ebm_error *err)
{
	struct ebm_sample_options defaults;
	if (m == NULL || ctx == NULL || (n > 0 && out == NULL)) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"no model, context or output given");
	}
	if (opt == NULL) {
		ebm_sample_options_init(&defaults);
		opt = &defaults;
	}
	if (opt->sampler != EBM_SAMPLER_LANGEVIN &&
			opt->sampler != EBM_SAMPLER_MALA &&
			opt->sampler != EBM_SAMPLER_MH) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"unknown sampler %d", (int)opt->sampler);
	}
	if (opt->n_steps < 1 || opt->n_steps > MAX_SAMPLE_STEPS) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"steps must be in 1 .. %u, got %zu", MAX_SAMPLE_STEPS,
				opt->n_steps);
	}
	if (!(opt->step_size >= 0.0f) || !isfinite(opt->step_size)) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"step size must be a finite number > 0 (or 0 for the "
				"default), got %g", (double)opt->step_size);
	}
	struct ebm_chain_opts co;
	memset(&co, 0, sizeof(co));
	co.sampler = opt->sampler;
	co.n_steps = opt->n_steps;
	co.step_size = opt->step_size;
	if (co.step_size == 0.0f) {
		co.step_size = opt->sampler == EBM_SAMPLER_MH ?
				DEFAULT_MH_STEP : DEFAULT_LANGEVIN_STEP;
	}
	co.noise = -1.0f;        /* sqrt(2 eps) */
	co.grad_clip = 0.0f;
	co.lo = NULL;
	co.hi = NULL;

	const struct ebm_net *net = &m->net;
	size_t d = net->d;
	struct ebm_rng rng;
	ebm_rng_init(&rng, opt->seed);
	struct grad_user gu = { .net = net, .work = &ctx->net };
	uint64_t accepted = 0, proposed = 0;
	/* Chains are independent: run them in slices to bound scratch. */
	for (size_t start = 0; start < n; start += ROWS_PER_PASS) {
		size_t nb = n - start < ROWS_PER_PASS ? n - start : ROWS_PER_PASS;
		float *z = ebm_work_reserve(&ctx->z, nb * d);
		float *scratch = ebm_work_reserve(&ctx->chain, 4 * nb * d + 2 * nb);
		if (z == NULL || scratch == NULL) {
			return nomem(err);
		}
		for (size_t i = 0; i < nb; i++) {
			size_t r = (start + i) % m->n_ref;
			ebm_net_standardize(net, m->ref_rows + r * d, 1, z + i * d);
		}
		uint64_t acc = 0, prop = 0;
		if (!ebm_chain_run(net_grad, &gu, &co, &rng, z, nb, d, scratch,
				&acc, &prop)) {
			return nomem(err);
		}
		accepted += acc;
		proposed += prop;
		float *xb = out + start * d;
		ebm_net_unstandardize(net, z, nb, xb);
		for (size_t i = 0; i < nb; i++) {
			for (size_t j = 0; j < d; j++) {
				if (!isfinite(xb[i * d + j])) {
					ebm_error_set(err, EBM_STATUS_NUMERIC,
							"sample %zu: the chain diverged (non-finite "
							"value); try a smaller step size",
							start + i + 1);
					if (err != NULL) {
						err->line = start + i + 1;
					}
					return EBM_STATUS_NUMERIC;
				}
			}
		}
	}
	if (accept_rate != NULL) {
		/* No proposals (n = 0) counts as nothing rejected. */
		*accept_rate = proposed > 0 ?
				(double)accepted / (double)proposed : 1.0;
	}
	return EBM_STATUS_OK;
}
