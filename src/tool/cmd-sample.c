/*
 * cmd-sample.c — `ebmd-train sample`: draws rows from a model with one of
 * the library's MCMC samplers and writes them as CSV in raw feature units,
 * under a header of the feature names (f0..f{d-1} when the model has none).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/tool.h"
#include "util/util.h"

/* Rows per run: a guard against typos, far above any sensible use. */
#define MAX_SAMPLES 10000000u
#define MAX_STEPS 1000000u

static const char help[] =
	"Usage: " EBM_TOOL_PROG " sample --model MODEL.ebm -n N [options]\n"
	"\n"
	"Draw N rows from the model, each from its own Markov chain started at\n"
	"a reference row, and write them as CSV (raw units) to standard\n"
	"output under a header of the feature names.\n"
	"\n"
	"Options:\n"
	"  --model FILE          the model (.ebm)\n"
	"  -n N                  rows to draw (1 to 10000000)\n"
	"  --sampler NAME        langevin (unadjusted, default), mala\n"
	"                        (Metropolis-adjusted Langevin) or mh\n"
	"                        (random-walk Metropolis-Hastings)\n"
	"  --steps K             steps per chain (1 to 1000000; default: the\n"
	"                        library's)\n"
	"  --step-size S         step size in standardized units, > 0 (default:\n"
	"                        the library's)\n"
	"  --seed S              random seed (default: the library's)\n"
	"  -h, --help            show this help\n"
	"\n"
	"For mala and mh the acceptance rate is printed to standard error.\n";

enum { OPT_MODEL, OPT_N, OPT_SAMPLER, OPT_STEPS, OPT_STEP_SIZE, OPT_SEED };

static const struct ebm_tool_opt opts[] = {
	[OPT_MODEL] = { "--model", true },
	[OPT_N] = { "-n", true },
	[OPT_SAMPLER] = { "--sampler", true },
	[OPT_STEPS] = { "--steps", true },
	[OPT_STEP_SIZE] = { "--step-size", true },
	[OPT_SEED] = { "--seed", true },
};

/* One CSV field, quoted when it holds a separator, quote or line break. */
static void put_field(const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"') {
			putchar('"');
		}
		putchar(*s);
	}
	putchar('"');
}

static void print_rows(const struct ebm_model *m, const float *x, size_t n)
{
	size_t d = ebm_model_n_features(m);
	for (size_t j = 0; j < d; j++) {
		const char *name = ebm_model_feature_name(m, j);
		if (j > 0) {
			putchar(',');
		}
		if (name != NULL) {
			put_field(name);
		} else {
			printf("f%zu", j);
		}
	}
	putchar('\n');
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < d; j++) {
			printf(j > 0 ? ",%.9g" : "%.9g", (double)x[i * d + j]);
		}
		putchar('\n');
	}
}

int ebm_tool_cmd_sample(int argc, char **argv)
{
	const char *model_path = NULL;
	uint64_t n = 0;
	bool n_given = false;
	struct ebm_sample_options so;
	ebm_sample_options_init(&so);

	struct ebm_tool_args a;
	ebm_tool_args_init(&a, "sample", argc, argv);
	for (;;) {
		int k = ebm_tool_args_next(&a, opts, sizeof(opts) / sizeof(opts[0]));
		if (k == EBM_TOOL_ARG_END) {
			break;
		}
		uint32_t steps;
		switch (k) {
		case EBM_TOOL_ARG_HELP:
			fputs(help, stdout);
			return EBM_TOOL_EXIT_OK;
		case EBM_TOOL_ARG_POSITIONAL:
			return ebm_tool_usage_error("sample",
					"unexpected argument '%s'", a.value);
		case OPT_MODEL:
			model_path = a.value;
			break;
		case OPT_N:
			if (!ebm_tool_parse_u64("-n", a.value, 1, MAX_SAMPLES, &n)) {
				return EBM_TOOL_EXIT_USAGE;
			}
			n_given = true;
			break;
		case OPT_SAMPLER:
			if (!ebm_sampler_parse(a.value, &so.sampler)) {
				ebm_tool_error("--sampler: expected langevin, mala or "
						"mh, got '%s'", a.value);
				return EBM_TOOL_EXIT_USAGE;
			}
			break;
		case OPT_STEPS:
			if (!ebm_tool_parse_u32("--steps", a.value, 1, MAX_STEPS,
					&steps)) {
				return EBM_TOOL_EXIT_USAGE;
			}
			so.n_steps = steps;
			break;
		case OPT_STEP_SIZE:
			if (!ebm_tool_parse_float("--step-size", a.value,
					EBM_TOOL_RANGE_POSITIVE, &so.step_size)) {
				return EBM_TOOL_EXIT_USAGE;
			}
			break;
		case OPT_SEED:
			if (!ebm_tool_parse_u64("--seed", a.value, 0, UINT64_MAX,
					&so.seed)) {
				return EBM_TOOL_EXIT_USAGE;
			}
			break;
		default:
			return EBM_TOOL_EXIT_USAGE;
		}
	}
	if (model_path == NULL) {
		return ebm_tool_usage_error("sample", "missing --model");
	}
	if (!n_given) {
		return ebm_tool_usage_error("sample", "missing -n");
	}

	int rc = EBM_TOOL_EXIT_FAILURE;
	float *x = NULL;
	struct ebm_ctx *ctx = NULL;
	struct ebm_model *m = ebm_tool_model_load(model_path);
	if (m == NULL) {
		goto out;
	}
	size_t d = ebm_model_n_features(m);
	size_t n_values;
	if (!ebm_mul_size((size_t)n, d, &n_values)
			|| (x = ebm_alloc_array(n_values, sizeof(float))) == NULL) {
		ebm_tool_error("out of memory for %zu rows of %zu features",
				(size_t)n, d);
		goto out;
	}
	ctx = ebm_ctx_create();
	if (ctx == NULL) {
		ebm_tool_error("out of memory");
		goto out;
	}
	double accept = 1.0;
	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_model_sample(m, ctx, &so, (size_t)n, x, &accept, &err)
			!= EBM_STATUS_OK) {
		ebm_tool_print_error(model_path, "sampling failed", &err);
		goto out;
	}
	print_rows(m, x, (size_t)n);
	if (so.sampler != EBM_SAMPLER_LANGEVIN) {
		fprintf(stderr, "%s: %s acceptance rate %.3f\n", EBM_TOOL_PROG,
				ebm_sampler_name(so.sampler), accept);
	}
	rc = EBM_TOOL_EXIT_OK;

out:
	ebm_ctx_destroy(ctx);
	free(x);
	ebm_model_destroy(m);
	return rc;
}
