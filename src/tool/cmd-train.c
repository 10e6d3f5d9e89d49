/*
 * cmd-train.c — `ebmd-train train`: reads a CSV of (mostly) normal rows,
 * fits a model with ebm_train_fit() and writes it atomically with
 * ebm_model_write_file(). Options map one to one onto struct
 * ebm_train_options through the table below, which also generates --help
 * with the library's defaults; the library validates their combination.
 *
 * SIGINT asks the trainer to stop at the end of the current epoch (through
 * the progress callback); the output file is then left as it was.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "csv/csv.h"
#include "tool/tool.h"
#include "util/util.h"

struct train_cli {
	struct ebm_train_options opt;
	const char *data;
	const char *out;
	const char *label;      /* NULL: "label", if present */
	bool normal_only;
	bool quiet;
};

/* ---- the option table ---------------------------------------------------- */

enum kind {
	KIND_STRING,    /* const char * */
	KIND_BOOL,      /* bool, takes no value */
	KIND_U32,       /* uint32_t from min to max */
	KIND_U64,       /* uint64_t, any */
	KIND_FLOAT,     /* float in `range` */
	KIND_OBJECTIVE, /* enum ebm_objective */
	KIND_HIDDEN,    /* n_layers + hidden[] */
	KIND_NET_WEIGHT, /* "auto" or a float >= 0: proto_net_{auto,weight} */
};

struct flag {
	const char *name;
	enum kind kind;
	size_t offset;               /* into struct train_cli */
	enum ebm_tool_range range;   /* KIND_FLOAT */
	uint32_t min, max;           /* KIND_U32 */
	const char *arg;             /* value placeholder in --help */
	const char *help;
};

#define CLI(field) offsetof(struct train_cli, field)
#define OPT(field) offsetof(struct train_cli, opt.field)
#define F(name, field, range, help) \
	{ name, KIND_FLOAT, OPT(field), EBM_TOOL_RANGE_##range, 0, 0, "X", help }
#define U(name, field, min, max, help) \
	{ name, KIND_U32, OPT(field), 0, min, max, "N", help }

static const struct flag flags[] = {
	{ "--data", KIND_STRING, CLI(data), 0, 0, 0, "FILE",
		"CSV with a header row (required)" },
	{ "--out", KIND_STRING, CLI(out), 0, 0, 0, "FILE",
		"model file to write (required); replaced only once complete" },
	{ "--label-column", KIND_STRING, CLI(label), 0, 0, 0, "NAME",
		"column that is not a feature (default 'label', ignored if absent;"
		" a name given here must exist)" },
	{ "--normal-only", KIND_BOOL, CLI(normal_only), 0, 0, 0, NULL,
		"train only on rows whose label is 0 (needs the label column)" },
	{ "--quiet", KIND_BOOL, CLI(quiet), 0, 0, 0, NULL,
		"no progress and no summary: errors and warnings only" },
	{ "--objective", KIND_OBJECTIVE, OPT(objective), 0, 0, 0, "dsm|cd",
		"dsm: denoising score matching; cd: contrastive divergence with"
		" short-run Langevin chains and a replay buffer" },
	{ "--hidden", KIND_HIDDEN, 0, 0, 0, 0, "W,W,...",
		"hidden layer widths of each member" },
	U("--members", n_members, 1, EBM_MODEL_MAX_MEMBERS,
		"independently seeded members, averaged"),
	U("--epochs", epochs, 0, UINT32_MAX,
		"maximum epochs; early stopping may end sooner (0: no member "
		"trained, the network is the Gaussian base)"),
	U("--max-steps", max_steps, 0, UINT32_MAX,
		"most optimizer steps per member: fewer epochs than --epochs run"
		" where an epoch has many steps (0 = no limit)"),
	U("--batch", batch, 1, UINT32_MAX, "rows per step"),
	F("--lr", lr, POSITIVE, "Adam learning rate"),
	F("--beta1", beta1, HALF_UNIT, "Adam first-moment decay"),
	F("--beta2", beta2, HALF_UNIT, "Adam second-moment decay"),
	F("--weight-decay", weight_decay, NONNEGATIVE,
		"decoupled weight decay (AdamW)"),
	F("--clip", clip_norm, NONNEGATIVE, "gradient-norm clip, 0 = off"),
	F("--warmup-frac", warmup_frac, HALF_UNIT,
		"share of steps with linear learning-rate warm-up"),
	F("--ema", ema_decay, HALF_UNIT,
		"decay of the weight moving average, 0 = off"),
	F("--ema-power", ema_power, NONNEGATIVE,
		"until the average's weight on the newest step falls to 1 - ema,"
		" it averages all steps so far, step s weighted by s^X (0 = all"
		" alike)"),
	U("--patience", patience, 0, UINT32_MAX,
		"dsm: epochs without validation improvement before stopping,"
		" then the best weights are kept; 0 = no early stopping (cd always"
		" runs every epoch and keeps the last weights)"),
	{ "--seed", KIND_U64, OPT(seed), 0, 0, 0, "N",
		"random seed: same seed, data and --threads give the same file" },
	F("--reference-frac", reference_frac, OPEN_UNIT,
		"share of rows held out as the reference set"),
	U("--reference-min", reference_min, 1, EBM_MODEL_MAX_REF,
		"fewest reference rows"),
	U("--reference-max", reference_max, 1, EBM_MODEL_MAX_REF,
		"most reference rows"),
	F("--val-frac", val_frac, HALF_UNIT,
		"share of rows held out for early stopping"),
	F("--alpha", alpha, OPEN_UNIT, "significance level stored in the file"),
	U("--threads", n_threads, 1, UINT32_MAX, "worker threads"),
	F("--prec-shrink", prec_shrink, UNIT,
		"shrinkage s of the Gaussian base term: (1-s) Cov + s I"),
	{ "--robust-scale", KIND_BOOL, OPT(robust_scale), 0, 0, 0, NULL,
		"standardize features by median and IQR / 1.349 instead of mean"
		" and standard deviation" },
	F("--sigma-min", sigma_min, POSITIVE, "dsm: smallest noise level"),
	F("--sigma-max", sigma_max, POSITIVE, "dsm: largest noise level"),
	U("--n-sigmas", n_sigmas, 1, UINT32_MAX, "dsm: noise levels"),
	U("--cd-steps", cd_steps, 1, UINT32_MAX,
		"cd: Langevin steps per training step"),
	F("--cd-step-size", cd_step_size, POSITIVE, "cd: Langevin step size"),
	F("--cd-noise", cd_noise, NONNEGATIVE,
		"cd: standard deviation of the Langevin noise"),
	U("--cd-buffer", cd_buffer, 1, UINT32_MAX, "cd: replay buffer rows (>= --batch)"),
	F("--cd-reinit", cd_reinit, UNIT,
		"cd: share of chains restarted from noise"),
	F("--cd-energy-reg", cd_energy_reg, NONNEGATIVE,
		"cd: weight of the f^2 penalty"),
	U("--protos", n_protos, 0, EBM_MODEL_MAX_PROTOS,
		"most learned prototypes (k-means centres of the training rows, or"
		" every row if fewer) in the energy's prototype term; 0 = none"
		" (the network alone, a version-1 model file)"),
	U("--proto-iters", proto_iters, 0, 1000,
		"k-means passes fitting the prototypes"),
	F("--proto-alpha", proto_alpha, NONNEGATIVE,
		"prototype j's bandwidth is h (r_j / median r)^X, r_j its distance"
		" to the 5th nearest other prototype, h by held-out likelihood;"
		" 0 = one bandwidth for all"),
	{ "--proto-net-weight", KIND_NET_WEIGHT, OPT(proto_net_weight), 0, 0, 0,
		"X|auto",
		"with prototypes, the energy is X E_net / s_net + E_proto / s_proto,"
		" s the interquartile range of each on the validation rows; 0 ="
		" the prototype term alone (the network is not trained); auto = X"
		" from 0, 0.25, 0.5, 1, 2, 4, whichever best tells the validation"
		" rows from copies of them with an eighth of the features swapped"
		" in from other rows" },
	{ "--proto-net-noise", KIND_BOOL, OPT(proto_net_noise), 0, 0, 0, NULL,
		"with auto, also score copies moved by Gaussian noise of norm 0.5"
		" and average the two AUROCs (auto's first version)" },
};

#undef U
#undef F
#undef OPT
#undef CLI

#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

/* ---- help ---------------------------------------------------------------- */

/* The default of a flag as --help shows it; "" when there is none. */
static void default_text(const struct flag *f, const struct train_cli *c,
		char *buf, size_t size)
{
	const char *p = (const char *)c + f->offset;
	buf[0] = '\0';
	switch (f->kind) {
	case KIND_STRING:
	case KIND_BOOL:
		break;
	case KIND_U32:
		snprintf(buf, size, "%" PRIu32, *(const uint32_t *)(const void *)p);
		break;
	case KIND_U64:
		snprintf(buf, size, "%" PRIu64, *(const uint64_t *)(const void *)p);
		break;
	case KIND_FLOAT:
		snprintf(buf, size, "%g", ebm_tool_float_value(
				*(const float *)(const void *)p));
		break;
	case KIND_OBJECTIVE:
		snprintf(buf, size, "%s", ebm_objective_name(c->opt.objective));
		break;
	case KIND_NET_WEIGHT:
		if (c->opt.proto_net_auto) {
			snprintf(buf, size, "auto");
		} else {
			snprintf(buf, size, "%g", ebm_tool_float_value(
					c->opt.proto_net_weight));
		}
		break;
	case KIND_HIDDEN: {
		size_t k = 0;
		for (uint32_t l = 0; l < c->opt.n_layers && k + 12 < size; l++) {
			k += (size_t)snprintf(buf + k, size - k, l > 0 ? ",%" PRIu32
					: "%" PRIu32, c->opt.hidden[l]);
		}
		break;
	}
	}
}

/*
 * Prints text word by word, each word after a space, from column `indent`
 * (where the cursor is on entry), starting a new line indented the same
 * way before any word that would pass column `width`.
 */
static void wrap(const char *text, int indent, int width)
{
	int col = indent;
	const char *p = text;
	while (*p != '\0') {
		int len = (int)strcspn(p, " ");
		if (col > indent && col + 1 + len > width) {
			printf("\n%*s", indent, "");
			col = indent;
		}
		printf(" %.*s", len, p);
		col += 1 + len;
		p += len;
		while (*p == ' ') {
			p++;
		}
	}
	putchar('\n');
}

static void print_help(void)
{
	struct train_cli defaults;
	memset(&defaults, 0, sizeof(defaults));
	ebm_train_options_init(&defaults.opt);

	printf("Usage: %s train --data FILE.csv --out MODEL.ebm [options]\n"
		"\n"
		"Fit an energy model to the rows of FILE.csv (all columns but the\n"
		"label column are features; their header names become the model's\n"
		"feature names) and write it to MODEL.ebm.\n"
		"\n"
		"Options:\n", EBM_TOOL_PROG);
	for (size_t i = 0; i < N_FLAGS; i++) {
		const struct flag *f = &flags[i];
		char left[64];
		char def[128];
		snprintf(left, sizeof(left), "%s%s%s", f->name,
				f->arg != NULL ? " " : "", f->arg != NULL ? f->arg : "");
		default_text(f, &defaults, def, sizeof(def));
		char text[512];
		snprintf(text, sizeof(text), "%s%s%s%s", f->help,
				def[0] != '\0' ? " [" : "", def,
				def[0] != '\0' ? "]" : "");
		printf("  %-22s", left);
		wrap(text, 24, 79);
	}
	printf("  %-22s %s\n", "-h, --help", "show this help");
	printf("\n"
		"SOURCE_DATE_EPOCH, if set, is the creation time recorded in the\n"
		"file (Unix seconds), for byte-identical rebuilds.\n"
		"Ctrl-C stops at the end of the current epoch without writing.\n"
		"Exit status: 0 written, 1 failure, 2 usage error, 130 interrupted.\n");
}

/* ---- parsing ------------------------------------------------------------- */

/* "256,256": 1 to EBM_MODEL_MAX_LAYERS widths, each 1 to the max width. */
static bool parse_hidden(const char *text, struct ebm_train_options *o)
{
	uint32_t n = 0;
	uint32_t w[EBM_MODEL_MAX_LAYERS];
	const char *p = text;
	for (;;) {
		char item[24];
		size_t len = strcspn(p, ",");
		uint64_t v;
		if (n == EBM_MODEL_MAX_LAYERS || len == 0 || len >= sizeof(item)) {
			goto bad;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (item[0] < '0' || item[0] > '9') {
			goto bad;
		}
		char *end;
		errno = 0;
		v = strtoull(item, &end, 10);
		if (*end != '\0' || errno != 0 || v < 1 || v > EBM_MODEL_MAX_WIDTH) {
			goto bad;
		}
		w[n++] = (uint32_t)v;
		if (p[len] == '\0') {
			break;
		}
		p += len + 1;
	}
	o->n_layers = n;
	memcpy(o->hidden, w, n * sizeof(w[0]));
	return true;

bad:
	ebm_tool_error("--hidden: expected 1 to %u comma-separated widths from"
			" 1 to %u, got '%s'", EBM_MODEL_MAX_LAYERS,
			EBM_MODEL_MAX_WIDTH, text);
	return false;
}

static bool apply(const struct flag *f, const char *value,
		struct train_cli *c)
{
	void *p = (char *)c + f->offset;
	switch (f->kind) {
	case KIND_STRING:
		*(const char **)p = value;
		return true;
	case KIND_BOOL:
		*(bool *)p = true;
		return true;
	case KIND_U32:
		return ebm_tool_parse_u32(f->name, value, f->min, f->max, p);
	case KIND_U64:
		return ebm_tool_parse_u64(f->name, value, 0, UINT64_MAX, p);
	case KIND_FLOAT:
		return ebm_tool_parse_float(f->name, value, f->range, p);
	case KIND_OBJECTIVE:
		if (!ebm_objective_parse(value, &c->opt.objective)) {
			ebm_tool_error("%s: expected dsm or cd, got '%s'", f->name,
					value);
			return false;
		}
		return true;
	case KIND_HIDDEN:
		return parse_hidden(value, &c->opt);
	case KIND_NET_WEIGHT:
		return ebm_tool_parse_float_or(f->name, value,
				EBM_TOOL_RANGE_NONNEGATIVE, "auto", &c->opt.proto_net_auto,
				p);
	}
	return false;
}

/* Returns EBM_TOOL_EXIT_OK to go on, or the exit code. */
static int parse(int argc, char **argv, struct train_cli *c)
{
	struct ebm_tool_opt opts[N_FLAGS];
	for (size_t i = 0; i < N_FLAGS; i++) {
		opts[i].name = flags[i].name;
		opts[i].has_value = flags[i].kind != KIND_BOOL;
	}
	struct ebm_tool_args a;
	ebm_tool_args_init(&a, "train", argc, argv);
	for (;;) {
		int k = ebm_tool_args_next(&a, opts, N_FLAGS);
		if (k == EBM_TOOL_ARG_END) {
			break;
		}
		if (k == EBM_TOOL_ARG_HELP) {
			print_help();
			return -1;
		}
		if (k == EBM_TOOL_ARG_POSITIONAL) {
			return ebm_tool_usage_error("train",
					"unexpected argument '%s'", a.value);
		}
		if (k < 0) {
			return EBM_TOOL_EXIT_USAGE;
		}
		if (!apply(&flags[k], a.value, c)) {
			return EBM_TOOL_EXIT_USAGE;
		}
	}
	if (c->data == NULL || c->out == NULL) {
		return ebm_tool_usage_error("train", "missing --%s",
				c->data == NULL ? "data" : "out");
	}

	/* https://reproducible-builds.org/specs/source-date-epoch/ */
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde != NULL) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(sde, &end, 10);
		if (sde[0] < '0' || sde[0] > '9' || *end != '\0' || errno != 0) {
			ebm_tool_error("SOURCE_DATE_EPOCH: expected Unix seconds as a "
					"decimal integer, got '%s'", sde);
			return EBM_TOOL_EXIT_USAGE;
		}
		c->opt.created = (uint64_t)v;
	} else {
		time_t now = time(NULL);
		c->opt.created = now > 0 ? (uint64_t)now : 0;
	}

	struct ebm_error err;
	ebm_error_clear(&err);
	if (ebm_train_options_validate(&c->opt, &err) != EBM_STATUS_OK) {
		ebm_tool_print_error(NULL, NULL, &err);
		return EBM_TOOL_EXIT_USAGE;
	}
	return EBM_TOOL_EXIT_OK;
}

/* ---- running ------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	static const char msg[] = "\n" EBM_TOOL_PROG ": stopping after this "
			"epoch (Ctrl-C again to quit at once)\n";
	if (interrupted) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	interrupted = 1;
	ssize_t unused = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)unused;
}

/*
 * Fails early, before any training time is spent, when the model could
 * not be written into the --out directory.
 */
static bool check_out_dir(const char *out)
{
	char dir[4096];
	const char *slash = strrchr(out, '/');
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else {
		size_t len = slash == out ? 1 : (size_t)(slash - out);
		snprintf(dir, sizeof(dir), "%.*s", (int)len, out);
	}
	if (access(dir, W_OK | X_OK) != 0) {
		int e = errno;
		ebm_tool_error("%s: cannot write in directory '%s': %s", out, dir,
				strerror(e));
		return false;
	}
	return true;
}

/* Keeps the rows labelled 0, in order; returns how many. */
static size_t keep_normal(struct ebm_table *t)
{
	size_t kept = 0;
	for (size_t i = 0; i < t->n_rows; i++) {
		if (t->labels[i] != 0.0f) {
			continue;
		}
		if (kept != i) {
			memmove(t->data + kept * t->n_cols, t->data + i * t->n_cols,
					t->n_cols * sizeof(float));
			t->lines[kept] = t->lines[i];
			t->labels[kept] = t->labels[i];
		}
		kept++;
	}
	return kept;
}

static void report(const struct train_cli *c, const struct ebm_model *m,
		uint64_t rows, uint64_t epochs, double seconds)
{
	char rate[32];
	ebm_tool_format_count(seconds > 0 ? (double)rows * (double)epochs
			/ seconds : 0, rate, sizeof(rate));
	if (epochs > 0) {
		fprintf(stderr, "trained %" PRIu64 " rows x %" PRIu64 " epochs in "
				"%.1f s (%s rows/s)\n", rows, epochs, seconds, rate);
	}
	/* The seconds are the whole run's: with a trained network they are
	 * on the line above. */
	const char *opts = ebm_model_training_options(m);
	const char *used = opts != NULL ? strstr(opts, "\nproto_net_weight_used=")
			: NULL;
	if (ebm_model_n_protos(m) > 0 && epochs > 0 && used != NULL) {
		used += strlen("\nproto_net_weight_used=");
		fprintf(stderr, "fitted %zu prototypes; the network's weight next "
				"to them: %.*s (auto)\n", ebm_model_n_protos(m),
				(int)strcspn(used, "\n"), used);
	} else if (ebm_model_n_protos(m) > 0 && epochs > 0) {
		fprintf(stderr, "fitted %zu prototypes\n", ebm_model_n_protos(m));
	} else if (ebm_model_n_protos(m) > 0) {
		fprintf(stderr, "fitted %zu prototypes (the network was not "
				"trained) in %.1f s\n", ebm_model_n_protos(m), seconds);
	}
	fprintf(stderr, "wrote %s (checksum %.12s, %zu reference rows)\n",
			c->out, ebm_model_checksum(m), ebm_model_n_ref(m));
}

int ebm_tool_cmd_train(int argc, char **argv)
{
	struct train_cli c;
	memset(&c, 0, sizeof(c));
	ebm_train_options_init(&c.opt);
	int rc = parse(argc, argv, &c);
	if (rc != EBM_TOOL_EXIT_OK) {
		return rc < 0 ? EBM_TOOL_EXIT_OK : rc;
	}
	if (c.normal_only && c.label == NULL) {
		c.label = "label";
	}
	if (!check_out_dir(c.out)) {
		return EBM_TOOL_EXIT_FAILURE;
	}

	rc = EBM_TOOL_EXIT_FAILURE;
	struct ebm_table t;
	struct ebm_model *m = NULL;
	struct ebm_error err;
	bool have_table = false;
	bool have_handler = false;
	struct sigaction old_sa;
	memset(&t, 0, sizeof(t));
	ebm_error_clear(&err);

	if (ebm_csv_read_table(c.data, c.label != NULL ? c.label : "label",
			c.label != NULL, &t, &err) != EBM_STATUS_OK) {
		ebm_tool_print_error(c.data, NULL, &err);
		goto out;
	}
	have_table = true;
	if (t.n_cols == 0) {
		ebm_tool_error("%s: no feature columns", c.data);
		goto out;
	}
	size_t n_rows = t.n_rows;
	if (c.normal_only && t.labels == NULL) {
		ebm_tool_error("%s: --normal-only needs the label column '%s'",
				c.data, c.label);
		goto out;
	}
	if (c.normal_only) {
		n_rows = keep_normal(&t);
	}
	if (n_rows == 0) {
		ebm_tool_error("%s: no rows to train on%s", c.data,
				c.normal_only ? " (none is labelled 0)" : "");
		goto out;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	have_handler = sigaction(SIGINT, &sa, &old_sa) == 0;

	struct ebm_tool_progress progress;
	ebm_tool_progress_init(&progress, c.quiet, &interrupted);
	double t0 = ebm_now();
	enum ebm_status st = ebm_train_fit(&c.opt, t.data, n_rows, t.n_cols,
			(const char *const *)t.names, ebm_tool_progress_update,
			&progress, &m, &err);
	double seconds = ebm_now() - t0;
	ebm_tool_progress_end(&progress);

	if (interrupted) {
		ebm_tool_error("interrupted; %s not written", c.out);
		rc = EBM_TOOL_EXIT_INTERRUPTED;
		goto out;
	}
	if (st != EBM_STATUS_OK) {
		ebm_tool_print_error(NULL, "training failed", &err);
		goto out;
	}
	if (ebm_model_write_file(m, c.out, &err) != EBM_STATUS_OK) {
		ebm_tool_print_error(c.out, NULL, &err);
		goto out;
	}
	if (!c.quiet) {
		report(&c, m, progress.last.n_train_rows,
				ebm_tool_progress_epochs(&progress), seconds);
	}
	rc = EBM_TOOL_EXIT_OK;

out:
	if (have_handler) {
		sigaction(SIGINT, &old_sa, NULL);
	}
	ebm_model_destroy(m);
	if (have_table) {
		ebm_table_finish(&t);
	}
	return rc;
}
