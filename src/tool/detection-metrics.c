/*
 * detection-metrics.c — detection quality of a scored, labelled data set:
 * average precision (AUPRC) and precision/recall/F1 at a fixed decision
 * (AUROC is ebm_auroc, util/metrics.c: the trainer needs it too).
 * Pure functions with no I/O, so that tests link this file alone; `eval`
 * does the reading and printing.
 *
 * Conventions follow scikit-learn (roc_auc_score, average_precision_score,
 * precision_recall_fscore_support with zero_division=0) so that numbers
 * can be cross-checked there.
 */
#include <math.h>
#include <stdlib.h>

#include "tool/tool.h"
#include "util/util.h"

struct item {
	double score;
	bool label;
};

static int by_score(const void *pa, const void *pb)
{
	const struct item *a = pa;
	const struct item *b = pb;
	return (a->score > b->score) - (a->score < b->score);
}

/* The rows sorted by ascending score; NULL when memory runs out. */
static struct item *sorted(const double *score, const bool *label, size_t n)
{
	struct item *it = ebm_alloc_array(n, sizeof(*it));
	if (it == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		it[i].score = score[i];
		it[i].label = label[i];
	}
	qsort(it, n, sizeof(*it), by_score);
	return it;
}

bool ebm_tool_auprc(const double *score, const bool *label, size_t n,
		double *out)
{
	size_t n_pos = 0;
	for (size_t i = 0; i < n; i++) {
		n_pos += label[i] ? 1 : 0;
	}
	if (n_pos == 0) {
		*out = NAN;
		return true;
	}
	struct item *it = sorted(score, label, n);
	if (it == NULL) {
		return false;
	}

	/*
	 * Walk thresholds from the highest score down. Each group of equal
	 * scores is one threshold: its rows are flagged together, so recall
	 * jumps once and that step is weighted by the precision after the
	 * whole group.
	 */
	double ap = 0;
	double prev_recall = 0;
	size_t tp = 0;
	size_t flagged = 0;
	size_t j = n;
	while (j > 0) {
		size_t i = j;
		while (i > 0 && it[i - 1].score == it[j - 1].score) {
			i--;
			tp += it[i].label ? 1 : 0;
			flagged++;
		}
		double recall = (double)tp / (double)n_pos;
		double precision = (double)tp / (double)flagged;
		ap += (recall - prev_recall) * precision;
		prev_recall = recall;
		j = i;
	}
	free(it);
	*out = ap;
	return true;
}

void ebm_tool_confusion_count(const bool *flagged, const bool *label,
		size_t n, struct ebm_tool_confusion *out)
{
	out->tp = out->fp = out->fn = out->tn = 0;
	for (size_t i = 0; i < n; i++) {
		if (flagged[i]) {
			if (label[i]) {
				out->tp++;
			} else {
				out->fp++;
			}
		} else if (label[i]) {
			out->fn++;
		} else {
			out->tn++;
		}
	}
}

double ebm_tool_precision(const struct ebm_tool_confusion *c)
{
	size_t flagged = c->tp + c->fp;
	return flagged == 0 ? 0.0 : (double)c->tp / (double)flagged;
}

double ebm_tool_recall(const struct ebm_tool_confusion *c)
{
	size_t pos = c->tp + c->fn;
	return pos == 0 ? 0.0 : (double)c->tp / (double)pos;
}

double ebm_tool_f1(const struct ebm_tool_confusion *c)
{
	/* 2TP / (2TP + FP + FN) equals 2PR / (P + R) and needs no division
	 * by a rounded P + R. */
	size_t denom = 2 * c->tp + c->fp + c->fn;
	return denom == 0 || c->tp == 0 ? 0.0
			: 2.0 * (double)c->tp / (double)denom;
}
