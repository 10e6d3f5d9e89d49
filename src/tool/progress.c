/*
 * progress.c — what `train` shows while the trainer runs. On a terminal:
 * one line rewritten in place after every epoch (at most ten times a
 * second). Anywhere else (a log file, CI, journald): a plain line per epoch
 * at most every two seconds, plus the last epoch of each member, which is
 * only known to be the last once the next member starts or training
 * returns (early stopping does not announce itself).
 *
 * The callback is also the only way to stop the trainer: it returns false
 * once the cancel flag (set by the SIGINT handler) is up.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tool/tool.h"
#include "util/util.h"

#define TTY_INTERVAL_S 0.1
#define PLAIN_INTERVAL_S 2.0

void ebm_tool_progress_init(struct ebm_tool_progress *p, bool quiet,
		const volatile sig_atomic_t *cancel)
{
	memset(p, 0, sizeof(*p));
	p->quiet = quiet;
	p->tty = isatty(STDERR_FILENO) == 1;
	p->last_print = -1e300;
	p->cancel = cancel;
}

void ebm_tool_format_count(double v, char *buf, size_t size)
{
	char digits[32];
	if (!isfinite(v) || v < 0 || v > 1e18) {
		snprintf(buf, size, "-");
		return;
	}
	int n = snprintf(digits, sizeof(digits), "%.0f", v);
	size_t k = 0;
	for (int i = 0; i < n && k + 2 < size; i++) {
		if (i > 0 && (n - i) % 3 == 0) {
			buf[k++] = ',';
		}
		buf[k++] = digits[i];
	}
	buf[k] = '\0';
}

/* "0:42", "12:03", "1:02:03". */
static void duration(double s, char *buf, size_t size)
{
	if (!isfinite(s) || s < 0 || s > 1e9) {
		snprintf(buf, size, "?");
		return;
	}
	unsigned long t = (unsigned long)(s + 0.5);
	if (t >= 3600) {
		snprintf(buf, size, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60,
				t % 60);
	} else {
		snprintf(buf, size, "%lu:%02lu", t / 60, t % 60);
	}
}

static void format_line(const struct ebm_train_progress *tp, char *buf,
		size_t size)
{
	char rate[32];
	char eta[32];
	ebm_tool_format_count(tp->rows_per_s, rate, sizeof(rate));
	duration(tp->eta_s, eta, sizeof(eta));
	char val[64] = "";
	if (isfinite(tp->val_loss) && isfinite(tp->best_val_loss)) {
		snprintf(val, sizeof(val), " val %.4f (best %.4f)", tp->val_loss,
				tp->best_val_loss);
	} else if (isfinite(tp->val_loss)) {
		/* cd: reported, not used to pick weights. Without a validation
		 * set (--val-frac 0) there is none. */
		snprintf(val, sizeof(val), " val-dsm %.4f", tp->val_loss);
	}
	snprintf(buf, size, "member %u/%u epoch %u/%u loss %.4f%s %s rows/s "
			"ETA %s", (unsigned)tp->member + 1, (unsigned)tp->n_members,
			(unsigned)tp->epoch, (unsigned)tp->n_epochs, tp->train_loss,
			val, rate, eta);
}

static void print_plain(struct ebm_tool_progress *p,
		const struct ebm_train_progress *tp)
{
	char line[256];
	format_line(tp, line, sizeof(line));
	fprintf(stderr, "%s\n", line);
	p->have_pending = false;
}

/* Rewrites the terminal line; \033[K clears what a longer one left. */
static void draw(struct ebm_tool_progress *p,
		const struct ebm_train_progress *tp)
{
	char line[256];
	format_line(tp, line, sizeof(line));
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	p->line_open = true;
}

bool ebm_tool_progress_update(const struct ebm_train_progress *tp,
		void *user)
{
	struct ebm_tool_progress *p = user;
	bool go_on = p->cancel == NULL || *p->cancel == 0;

	if (tp->member != p->current_member) {
		/* A new member: the previous one's last epoch is final. */
		p->epochs_done += p->last.epoch;
		if (!p->quiet && !p->tty && p->have_pending) {
			print_plain(p, &p->last);
		}
		if (!p->quiet && p->tty && p->line_open) {
			/* It stopped early: leave its last state on screen. */
			draw(p, &p->last);
			fputc('\n', stderr);
			p->line_open = false;
		}
		p->current_member = tp->member;
	}
	p->last = *tp;
	if (p->quiet) {
		return go_on;
	}

	double now = ebm_now();
	bool final = tp->epoch >= tp->n_epochs;
	if (p->tty) {
		if (final || !go_on || now - p->last_print >= TTY_INTERVAL_S) {
			draw(p, tp);
			p->last_print = now;
		}
		if (final && tp->member + 1 < tp->n_members) {
			/* Keep each member's last line on screen. */
			fputc('\n', stderr);
			p->line_open = false;
		}
	} else if (final || now - p->last_print >= PLAIN_INTERVAL_S) {
		print_plain(p, tp);
		p->last_print = now;
	} else {
		p->have_pending = true;
	}
	return go_on;
}

void ebm_tool_progress_end(struct ebm_tool_progress *p)
{
	if (p->quiet) {
		return;
	}
	if (p->tty && p->line_open) {
		draw(p, &p->last);
		fputc('\n', stderr);
		p->line_open = false;
	}
	if (!p->tty && p->have_pending) {
		print_plain(p, &p->last);
	}
	fflush(stderr);
}

uint64_t ebm_tool_progress_epochs(const struct ebm_tool_progress *p)
{
	return p->epochs_done + p->last.epoch;
}
