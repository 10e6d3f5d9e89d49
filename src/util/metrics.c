/*
 * metrics.c — AUROC, the Mann-Whitney statistic, shared by `ebmd-train
 * eval` (tool/detection-metrics.c) and the trainer's choice of the
 * network's weight (train/weigh.c). Pure, no I/O. Follows scikit-learn's
 * roc_auc_score, so numbers can be cross-checked there.
 */
#include <math.h>
#include <stdlib.h>

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

bool ebm_auroc(const double *score, const bool *label, size_t n,
		double *out)
{
	size_t n_pos = 0;
	for (size_t i = 0; i < n; i++) {
		n_pos += label[i] ? 1 : 0;
	}
	size_t n_neg = n - n_pos;
	if (n_pos == 0 || n_neg == 0) {
		*out = NAN;
		return true;
	}
	struct item *it = ebm_alloc_array(n, sizeof(*it));
	if (it == NULL) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		it[i].score = score[i];
		it[i].label = label[i];
	}
	qsort(it, n, sizeof(*it), by_score);

	/*
	 * Mann-Whitney: U = (sum of the positives' ranks) - n_pos(n_pos+1)/2,
	 * AUROC = U / (n_pos n_neg). A group of tied scores at 1-based ranks
	 * i+1 .. j all get the average rank (i + 1 + j) / 2. Ranks are summed
	 * in double: exact for n below 2^26 or so, and far below any rounding
	 * that matters for a ratio in [0, 1].
	 */
	double rank_sum = 0;
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		size_t pos_in_group = 0;
		while (j < n && it[j].score == it[i].score) {
			pos_in_group += it[j].label ? 1 : 0;
			j++;
		}
		double avg_rank = ((double)(i + 1) + (double)j) / 2.0;
		rank_sum += avg_rank * (double)pos_in_group;
		i = j;
	}
	free(it);

	double u = rank_sum - (double)n_pos * ((double)n_pos + 1.0) / 2.0;
	*out = u / ((double)n_pos * (double)n_neg);
	return true;
}
