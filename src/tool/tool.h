/*
 * tool.h — internal header of ebmd-train, the offline tool: subcommand
 * entry points, argument scanning and strict number parsing, loading CSV
 * data in a model's feature order, training progress, evaluation metrics
 * and the model-info JSON that `inspect` prints (and ebmd will reuse).
 *
 * Everything here prints its own messages to stderr, prefixed with
 * "ebmd-train: ", and returns false (or NULL) after doing so; callers only
 * choose the exit code. The one exception is detection-metrics.c, which is
 * pure and prints nothing, so that unit tests can link it alone.
 *
 * The user-facing contract is ../../API.md section 4.
 */
#ifndef EBM_TOOL_TOOL_H
#define EBM_TOOL_TOOL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebm/model.h"
#include "ebm/train.h"

#define EBM_TOOL_PROG "ebmd-train"

/* Exit codes: API.md section 4 and the conventions of shell tools. */
#define EBM_TOOL_EXIT_OK 0
#define EBM_TOOL_EXIT_FAILURE 1      /* bad data, bad model, I/O */
#define EBM_TOOL_EXIT_USAGE 2        /* bad command line */
#define EBM_TOOL_EXIT_INTERRUPTED 130 /* 128 + SIGINT */

/* ---- subcommands (cmd-*.c): argv[0] is the subcommand name --------------- */

int ebm_tool_cmd_train(int argc, char **argv);
int ebm_tool_cmd_eval(int argc, char **argv);
int ebm_tool_cmd_score(int argc, char **argv);
int ebm_tool_cmd_sample(int argc, char **argv);
int ebm_tool_cmd_inspect(int argc, char **argv);
int ebm_tool_cmd_rebase(int argc, char **argv);

/* ---- messages (args.c) --------------------------------------------------- */

/* Prints "ebmd-train: <message>\n" to stderr. */
void ebm_tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Prints "ebmd-train: <message>" and "Try 'ebmd-train CMD --help'." to
 * stderr and returns EBM_TOOL_EXIT_USAGE. cmd may be NULL (top level).
 */
int ebm_tool_usage_error(const char *cmd, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));

/*
 * Prints a library error. When the message does not already mention
 * `origin` (a path), it is prefixed with "origin: ". origin may be NULL.
 */
void ebm_tool_print_error(const char *origin, const char *what,
		const struct ebm_error *err);

/* ---- argument scanning (args.c) ------------------------------------------ */

/* One option a subcommand accepts. */
struct ebm_tool_opt {
	const char *name;  /* "--lr", or a short form such as "-n" */
	bool has_value;    /* takes an argument: "--lr 0.1" or "--lr=0.1" */
};

struct ebm_tool_args {
	const char *cmd;   /* subcommand, for messages */
	int argc;
	char **argv;
	int i;             /* next index into argv */
	bool options_done; /* "--" seen: everything after is positional */
	const char *value; /* the current option's value or the positional */
};

/* Returned by ebm_tool_args_next() besides an index into the table. */
#define EBM_TOOL_ARG_END (-1)        /* no arguments left */
#define EBM_TOOL_ARG_POSITIONAL (-2) /* a->value is the argument */
#define EBM_TOOL_ARG_HELP (-3)       /* -h or --help */
#define EBM_TOOL_ARG_ERROR (-4)      /* message printed; exit with USAGE */

/* Starts scanning argv[1..argc) (argv[0] is the subcommand). */
void ebm_tool_args_init(struct ebm_tool_args *a, const char *cmd, int argc,
		char **argv);

/*
 * Returns the index in opts[0..n_opts) of the next option (its value, if
 * it takes one, in a->value) or one of the EBM_TOOL_ARG_* codes. Unknown
 * options and missing values are reported here.
 */
int ebm_tool_args_next(struct ebm_tool_args *a,
		const struct ebm_tool_opt *opts, size_t n_opts);

/* ---- strict number parsing (args.c) -------------------------------------- */

/*
 * Each parser accepts the whole string or nothing (no leading blanks, no
 * trailing text, no sign on integers) and prints
 * "ebmd-train: FLAG: expected ..., got 'TEXT'" on failure.
 */
enum ebm_tool_range {
	EBM_TOOL_RANGE_POSITIVE,    /* > 0 */
	EBM_TOOL_RANGE_NONNEGATIVE, /* >= 0 */
	EBM_TOOL_RANGE_OPEN_UNIT,   /* (0, 1) */
	EBM_TOOL_RANGE_HALF_UNIT,   /* [0, 1) */
	EBM_TOOL_RANGE_UNIT,        /* [0, 1] */
};

bool ebm_tool_parse_float(const char *flag, const char *text,
		enum ebm_tool_range range, float *out);
/* A float in range, or the word (then *is_word is true, *out untouched). */
bool ebm_tool_parse_float_or(const char *flag, const char *text,
		enum ebm_tool_range range, const char *word, bool *is_word,
		float *out);
bool ebm_tool_parse_double(const char *flag, const char *text,
		enum ebm_tool_range range, double *out);
bool ebm_tool_parse_u64(const char *flag, const char *text, uint64_t min,
		uint64_t max, uint64_t *out);
bool ebm_tool_parse_u32(const char *flag, const char *text, uint32_t min,
		uint32_t max, uint32_t *out);

/*
 * The double nearest to the shortest decimal that reads back as f (0.01f
 * gives 0.01, not 0.0099999998). Used wherever a stored float is shown or
 * compared with a decimal the user typed.
 */
double ebm_tool_float_value(float f);

/* ---- data in a model's feature order (data.c) ---------------------------- */

struct ebm_table; /* src/csv/csv.h */

struct ebm_tool_data {
	const char *path;
	size_t n_rows, d;
	const float *x;         /* n_rows x d, in the model's feature order */
	const float *labels;    /* n_rows labels, or NULL */
	const uint64_t *lines;  /* file line of each row */
	float *owned_x;         /* x when the columns had to be reordered */
	bool missing;           /* some value of x is NaN (an empty cell) */
	struct ebm_table *table;
};

/*
 * Reads `path` and matches its columns to the model's features: by name
 * when the model has names (any order; a missing or unknown column is an
 * error naming it), else by position (the counts must agree). The column
 * `label_column` (may be NULL) is not a feature; with label_required it
 * must exist. On failure prints why and returns false; *out is then empty.
 * Release with ebm_tool_data_finish().
 */
bool ebm_tool_data_load(const char *path, const struct ebm_model *m,
		const char *label_column, bool label_required,
		struct ebm_tool_data *out);
/* As ebm_tool_data_load, with empty feature cells read as NaN, missing
 * values (score and eval; API.md section 6); sets out->missing. */
bool ebm_tool_data_load_missing(const char *path, const struct ebm_model *m,
		const char *label_column, bool label_required,
		struct ebm_tool_data *out);
void ebm_tool_data_finish(struct ebm_tool_data *d);

/*
 * Scores rows [0, n_rows) of `data` in blocks: out[i] answers row i. A
 * non-finite energy is reported with the file and line of its row.
 */
bool ebm_tool_data_score(const struct ebm_tool_data *data,
		const struct ebm_model *m, double alpha, struct ebm_score *out);

/*
 * As ebm_tool_data_score, for data that may have missing values: rows
 * with NaN are scored with them profiled out (include/ebm/missing.h).
 * completed (n_rows x d, may be NULL) gets the completed rows. A row with
 * every feature missing is reported with its file and line.
 */
bool ebm_tool_data_score_missing(const struct ebm_tool_data *data,
		const struct ebm_model *m, double alpha, struct ebm_score *out,
		float *completed);

/*
 * Loads a model file, printing the library's message on failure.
 * Returns NULL then; free with ebm_model_destroy().
 */
struct ebm_model *ebm_tool_model_load(const char *path);

/* ---- training progress (progress.c) -------------------------------------- */

struct ebm_tool_progress {
	bool quiet;
	bool tty;              /* stderr is a terminal: one updating line */
	bool line_open;        /* a \r line is on screen without its \n */
	bool have_pending;     /* `last` has not been printed (plain mode) */
	double last_print;     /* ebm_now() of the last line or update */
	struct ebm_train_progress last;
	uint32_t current_member;
	uint64_t epochs_done;  /* epochs finished by earlier members */
	const volatile sig_atomic_t *cancel; /* set by a signal; may be NULL */
};

void ebm_tool_progress_init(struct ebm_tool_progress *p, bool quiet,
		const volatile sig_atomic_t *cancel);

/* An ebm_train_progress_fn; `user` is a struct ebm_tool_progress. */
bool ebm_tool_progress_update(const struct ebm_train_progress *tp,
		void *user);

/*
 * Prints what is still pending (the last epoch in plain mode, a newline
 * after the terminal line). Call once training has returned.
 */
void ebm_tool_progress_end(struct ebm_tool_progress *p);

/* "85,000": v rounded to a whole number with thousands separators. */
void ebm_tool_format_count(double v, char *buf, size_t size);

/* Epochs run by all members together, once training has returned. */
uint64_t ebm_tool_progress_epochs(const struct ebm_tool_progress *p);

/* ---- metrics (detection-metrics.c): pure, no I/O ------------------------- */

/*
 * Both take n finite scores (higher = more anomalous) and labels (true =
 * anomaly). They return false only when scratch memory cannot be
 * allocated; an undefined metric is NAN. AUROC is ebm_auroc (util.h).
 */

/*
 * Average precision, scikit-learn's definition: sum over distinct
 * thresholds t (rows with equal scores enter together) of
 * (R(t) - R(t_prev)) * P(t). NAN when there is no positive.
 */
bool ebm_tool_auprc(const double *score, const bool *label, size_t n,
		double *out);

/*
 * Counts at a fixed decision (flagged[i] = predicted anomaly). Precision
 * with nothing flagged, recall with no positive and F1 with P + R = 0 are 0
 * (scikit-learn's zero_division=0).
 */
struct ebm_tool_confusion {
	size_t tp, fp, fn, tn;
};
void ebm_tool_confusion_count(const bool *flagged, const bool *label,
		size_t n, struct ebm_tool_confusion *out);
double ebm_tool_precision(const struct ebm_tool_confusion *c);
double ebm_tool_recall(const struct ebm_tool_confusion *c);
double ebm_tool_f1(const struct ebm_tool_confusion *c);

/* ---- model name (model-name.c) ------------------------------------------ */

typedef struct json_t json_t; /* jansson's, when jansson.h is not included */

/*
 * The stem of a model path: "models/web.ebm" gives "web". Writes at most
 * size bytes including the terminator into buf and returns buf.
 */
char *ebm_tool_model_name(const char *path, char *buf, size_t size);

#endif
