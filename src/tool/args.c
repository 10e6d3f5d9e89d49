/*
 * args.c — command-line plumbing shared by every ebmd-train subcommand:
 * error messages, scanning options from a table, and strict parsing of
 * numbers. Each subcommand owns its option table and what the values mean.
 *
 * getopt_long() would do the scanning, but it is a GNU extension (we build
 * with _POSIX_C_SOURCE only) and its messages cannot name the subcommand.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/tool.h"

/* ---- messages ------------------------------------------------------------ */

void ebm_tool_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(EBM_TOOL_PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int ebm_tool_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(EBM_TOOL_PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (cmd != NULL) {
		fprintf(stderr, "Try '%s %s --help'.\n", EBM_TOOL_PROG, cmd);
	} else {
		fprintf(stderr, "Try '%s --help'.\n", EBM_TOOL_PROG);
	}
	return EBM_TOOL_EXIT_USAGE;
}

void ebm_tool_print_error(const char *origin, const char *what,
		const struct ebm_error *err)
{
	const char *msg = err->message[0] != '\0' ? err->message
			: ebm_status_string(err->code);
	bool named = origin == NULL || strstr(msg, origin) != NULL;
	fprintf(stderr, "%s: %s%s%s%s%s\n", EBM_TOOL_PROG,
			named ? "" : origin, named ? "" : ": ",
			what != NULL ? what : "", what != NULL ? ": " : "", msg);
}

/* ---- option scanning ----------------------------------------------------- */

void ebm_tool_args_init(struct ebm_tool_args *a, const char *cmd, int argc,
		char **argv)
{
	a->cmd = cmd;
	a->argc = argc;
	a->argv = argv;
	a->i = 1;
	a->options_done = false;
	a->value = NULL;
}

int ebm_tool_args_next(struct ebm_tool_args *a,
		const struct ebm_tool_opt *opts, size_t n_opts)
{
	a->value = NULL;
	if (a->i >= a->argc) {
		return EBM_TOOL_ARG_END;
	}
	char *arg = a->argv[a->i++];
	if (a->options_done || arg[0] != '-' || arg[1] == '\0') {
		/* "-" alone is a positional too (conventionally stdin). */
		a->value = arg;
		return EBM_TOOL_ARG_POSITIONAL;
	}
	if (strcmp(arg, "--") == 0) {
		a->options_done = true;
		return ebm_tool_args_next(a, opts, n_opts);
	}
	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
		return EBM_TOOL_ARG_HELP;
	}

	/* "--name=value" is split at the first '='; short options never are. */
	const char *eq = arg[1] == '-' ? strchr(arg, '=') : NULL;
	size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	for (size_t k = 0; k < n_opts; k++) {
		const char *name = opts[k].name;
		if (strlen(name) != len || strncmp(name, arg, len) != 0) {
			continue;
		}
		if (!opts[k].has_value) {
			if (eq != NULL) {
				ebm_tool_usage_error(a->cmd,
						"option '%s' takes no value", name);
				return EBM_TOOL_ARG_ERROR;
			}
			return (int)k;
		}
		if (eq != NULL) {
			a->value = eq + 1;
		} else if (a->i < a->argc) {
			a->value = a->argv[a->i++];
		} else {
			ebm_tool_usage_error(a->cmd, "option '%s' needs a value",
					name);
			return EBM_TOOL_ARG_ERROR;
		}
		return (int)k;
	}
	ebm_tool_usage_error(a->cmd, "unknown option '%.*s'", (int)len, arg);
	return EBM_TOOL_ARG_ERROR;
}

/* ---- numbers ------------------------------------------------------------- */

static const char *range_text(enum ebm_tool_range range)
{
	switch (range) {
	case EBM_TOOL_RANGE_POSITIVE: return "a positive number";
	case EBM_TOOL_RANGE_NONNEGATIVE: return "a number >= 0";
	case EBM_TOOL_RANGE_OPEN_UNIT: return "a number between 0 and 1 "
			"(both excluded)";
	case EBM_TOOL_RANGE_HALF_UNIT: return "a number in [0, 1)";
	case EBM_TOOL_RANGE_UNIT: return "a number in [0, 1]";
	}
	return "a number";
}

static bool in_range(double v, enum ebm_tool_range range)
{
	switch (range) {
	case EBM_TOOL_RANGE_POSITIVE: return v > 0;
	case EBM_TOOL_RANGE_NONNEGATIVE: return v >= 0;
	case EBM_TOOL_RANGE_OPEN_UNIT: return v > 0 && v < 1;
	case EBM_TOOL_RANGE_HALF_UNIT: return v >= 0 && v < 1;
	case EBM_TOOL_RANGE_UNIT: return v >= 0 && v <= 1;
	}
	return false;
}

/* A decimal number and nothing else: strtod would skip leading blanks. */
static bool read_double(const char *text, double *out)
{
	if (text[0] == '\0' || strchr(" \t\n\v\f\r", text[0]) != NULL) {
		return false;
	}
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (*end != '\0' || !isfinite(v)) {
		return false;
	}
	*out = v;
	return true;
}

bool ebm_tool_parse_double(const char *flag, const char *text,
		enum ebm_tool_range range, double *out)
{
	double v;
	if (!read_double(text, &v) || !in_range(v, range)) {
		ebm_tool_error("%s: expected %s, got '%s'", flag,
				range_text(range), text);
		return false;
	}
	*out = v;
	return true;
}

bool ebm_tool_parse_float_or(const char *flag, const char *text,
		enum ebm_tool_range range, const char *word, bool *is_word,
		float *out)
{
	double v;
	if (word != NULL && strcmp(text, word) == 0) {
		*is_word = true;
		return true;
	}
	/* Checked after rounding: 1e-50 is positive, (float)1e-50 is not. */
	if (!read_double(text, &v) || fabs(v) > FLT_MAX
			|| !in_range((float)v, range)) {
		ebm_tool_error("%s: expected %s%s%s%s, got '%s'", flag,
				range_text(range), word != NULL ? " or '" : "",
				word != NULL ? word : "", word != NULL ? "'" : "", text);
		return false;
	}
	if (is_word != NULL) {
		*is_word = false;
	}
	*out = (float)v;
	return true;
}

bool ebm_tool_parse_float(const char *flag, const char *text,
		enum ebm_tool_range range, float *out)
{
	return ebm_tool_parse_float_or(flag, text, range, NULL, NULL, out);
}

static void int_error(const char *flag, const char *text, uint64_t min,
		uint64_t max)
{
	if (max == UINT64_MAX) {
		ebm_tool_error("%s: expected an integer >= %" PRIu64 ", got '%s'",
				flag, min, text);
	} else {
		ebm_tool_error("%s: expected an integer from %" PRIu64 " to %"
				PRIu64 ", got '%s'", flag, min, max, text);
	}
}

bool ebm_tool_parse_u64(const char *flag, const char *text, uint64_t min,
		uint64_t max, uint64_t *out)
{
	/* strtoull accepts blanks, '+' and '-' (wrapping "-1" around). */
	if (text[0] < '0' || text[0] > '9') {
		int_error(flag, text, min, max);
		return false;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (*end != '\0' || errno == ERANGE || v < min || v > max) {
		int_error(flag, text, min, max);
		return false;
	}
	*out = (uint64_t)v;
	return true;
}

bool ebm_tool_parse_u32(const char *flag, const char *text, uint32_t min,
		uint32_t max, uint32_t *out)
{
	uint64_t v;
	if (!ebm_tool_parse_u64(flag, text, min, max, &v)) {
		return false;
	}
	*out = (uint32_t)v;
	return true;
}

double ebm_tool_float_value(float f)
{
	char buf[32];
	if (!isfinite(f)) {
		return (double)f;
	}
	/* FLT_DECIMAL_DIG (9) significant digits always round-trip. */
	for (int prec = 1; prec < 9; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
		double v = strtod(buf, NULL);
		if ((float)v == f) {
			return v;
		}
	}
	return (double)f;
}
