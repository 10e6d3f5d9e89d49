/*
 * main.c — entry point of ebmd-train: picks the subcommand, answers
 * --help and --version, and routes libebm's log messages to stderr. Each
 * subcommand lives in its own cmd-*.c.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "tool/tool.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "train", ebm_tool_cmd_train, "fit a model to a CSV of normal rows" },
	{ "eval", ebm_tool_cmd_eval, "AUROC, AUPRC, precision/recall/F1 on "
			"labelled rows" },
	{ "score", ebm_tool_cmd_score, "energy, score, p_value, anomaly per row "
			"(CSV)" },
	{ "sample", ebm_tool_cmd_sample, "draw rows from a model (CSV)" },
	{ "inspect", ebm_tool_cmd_inspect, "model information (JSON)" },
	{ "rebase", ebm_tool_cmd_rebase, "adopt a CSV's rows as a model's "
			"reference set" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s COMMAND [OPTIONS]\n"
		"\n"
		"Train and use energy-based anomaly detection models (.ebm files).\n"
		"\n"
		"Commands:\n", EBM_TOOL_PROG);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	}
	fprintf(f,
		"\n"
		"  %s train   --data FILE.csv --out MODEL.ebm [options]\n"
		"  %s eval    --model MODEL.ebm --data FILE.csv [--json]\n"
		"  %s score   --model MODEL.ebm --data FILE.csv\n"
		"  %s sample  --model MODEL.ebm -n N [--sampler langevin|mala|mh]\n"
		"  %s inspect MODEL.ebm\n"
		"\n"
		"Options:\n"
		"  -h, --help     show this help ('%s COMMAND --help' for a command)\n"
		"  --version      show the version\n"
		"\n"
		"Exit status: 0 success, 1 failure (bad data, bad model, I/O),\n"
		"2 usage error, 130 interrupted.\n",
		EBM_TOOL_PROG, EBM_TOOL_PROG, EBM_TOOL_PROG, EBM_TOOL_PROG,
		EBM_TOOL_PROG, EBM_TOOL_PROG);
}

/* libebm never prints; its warnings and errors end up here. */
static void log_to_stderr(enum ebm_log_level level, const char *message,
		void *user)
{
	(void)user;
	fprintf(stderr, "%s: %s%s\n", EBM_TOOL_PROG,
			level == EBM_LOG_ERROR ? "error: " : level == EBM_LOG_WARN
			? "warning: " : "", message);
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0) {
			return &commands[i];
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EBM_TOOL_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
		usage(stdout);
		return EBM_TOOL_EXIT_OK;
	}
	if (strcmp(name, "--version") == 0) {
		printf("%s %s\n", EBM_TOOL_PROG, EBMD_VERSION);
		return EBM_TOOL_EXIT_OK;
	}
	if (strcmp(name, "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return EBM_TOOL_EXIT_OK;
		}
		const struct command *c = find(argv[2]);
		if (c == NULL) {
			return ebm_tool_usage_error(NULL, "unknown command '%s'",
					argv[2]);
		}
		char help[] = "--help";
		char *args[] = { argv[2], help, NULL };
		return c->run(2, args);
	}
	if (name[0] == '-') {
		return ebm_tool_usage_error(NULL, "unknown option '%s'", name);
	}
	const struct command *c = find(name);
	if (c == NULL) {
		return ebm_tool_usage_error(NULL, "unknown command '%s'", name);
	}

	ebm_log_set(log_to_stderr, NULL, EBM_LOG_WARN);
	int rc = c->run(argc - 1, argv + 1);

	/* A full disk or a closed pipe must not pass for success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ebm_tool_error("error writing to standard output");
		if (rc == EBM_TOOL_EXIT_OK) {
			rc = EBM_TOOL_EXIT_FAILURE;
		}
	}
	return rc;
}
