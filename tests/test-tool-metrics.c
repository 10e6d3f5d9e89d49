/*
 * test-tool-metrics.c — the detection metrics of `ebmd-train eval`
 * (src/tool/detection-metrics.c, and AUROC in src/util/metrics.c): AUROC,
 * average precision and
 * precision/recall/F1 on cases computed by hand or taken from
 * scikit-learn's documentation, ties, single-class inputs, and AUROC against a brute-force pair count.
 *
 * Tolerances: the hand-computed values are ratios of small integers; the
 * code sums at most a few hundred doubles, so 1e-12 leaves ample room for
 * rounding while still catching any off-by-one in ranks or thresholds.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "tool/tool.h"
#include "util/util.h"

#define EPS 1e-12

static double auroc(const double *s, const bool *y, size_t n)
{
	double v = -1;
	ck_assert(ebm_auroc(s, y, n, &v));
	return v;
}

static double auprc(const double *s, const bool *y, size_t n)
{
	double v = -1;
	ck_assert(ebm_tool_auprc(s, y, n, &v));
	return v;
}

START_TEST(test_perfect_and_inverted)
{
	const double s[] = { 1, 2, 3, 4 };
	const bool up[] = { 0, 0, 1, 1 };
	const bool down[] = { 1, 1, 0, 0 };
	ck_assert_double_eq_tol(auroc(s, up, 4), 1.0, EPS);
	ck_assert_double_eq_tol(auprc(s, up, 4), 1.0, EPS);
	ck_assert_double_eq_tol(auroc(s, down, 4), 0.0, EPS);
	/* Descending: 4(0) 3(0) 2(1) 1(1): R=1/2 at P=1/3, R=1 at P=1/2. */
	ck_assert_double_eq_tol(auprc(s, down, 4), 0.5 / 3 + 0.5 / 2, EPS);
}
END_TEST

START_TEST(test_sklearn_doc_example)
{
	/* roc_auc_score and average_precision_score docs: 0.75 and 0.8333. */
	const double s[] = { 0.1, 0.4, 0.35, 0.8 };
	const bool y[] = { 0, 0, 1, 1 };
	ck_assert_double_eq_tol(auroc(s, y, 4), 0.75, EPS);
	ck_assert_double_eq_tol(auprc(s, y, 4), 5.0 / 6.0, EPS);
}
END_TEST

START_TEST(test_ties)
{
	/*
	 * Pairs (pos, neg): (2,1)=1, (2,2)=1/2, (3,1)=1, (3,2)=1, so AUROC is
	 * 3.5/4. Thresholds: 3 gives P=1, R=1/2; the tied 2s enter together,
	 * P=2/3, R=1. AP = 1/2 * 1 + 1/2 * 2/3.
	 */
	const double s[] = { 1, 2, 2, 3 };
	const bool y[] = { 0, 1, 0, 1 };
	ck_assert_double_eq_tol(auroc(s, y, 4), 0.875, EPS);
	ck_assert_double_eq_tol(auprc(s, y, 4), 0.5 + 0.5 * 2.0 / 3.0, EPS);

	/* Positive listed after the negative inside the tie: same answer. */
	const double s2[] = { 3, 2, 2, 1 };
	const bool y2[] = { 1, 0, 1, 0 };
	ck_assert_double_eq_tol(auroc(s2, y2, 4), 0.875, EPS);
	ck_assert_double_eq_tol(auprc(s2, y2, 4), 0.5 + 0.5 * 2.0 / 3.0, EPS);
}
END_TEST

START_TEST(test_all_tied)
{
	const double s[] = { 5, 5, 5, 5 };
	const bool y[] = { 1, 0, 0, 1 };
	ck_assert_double_eq_tol(auroc(s, y, 4), 0.5, EPS);
	/* One threshold flags everything: P = 1/2 over the whole recall. */
	ck_assert_double_eq_tol(auprc(s, y, 4), 0.5, EPS);
}
END_TEST

START_TEST(test_one_class)
{
	const double s[] = { 1, 2, 3 };
	const bool zeros[] = { 0, 0, 0 };
	const bool ones[] = { 1, 1, 1 };
	ck_assert(isnan(auroc(s, zeros, 3)));
	ck_assert(isnan(auprc(s, zeros, 3)));
	ck_assert(isnan(auroc(s, ones, 3)));
	ck_assert_double_eq_tol(auprc(s, ones, 3), 1.0, EPS);
	ck_assert(isnan(auroc(s, zeros, 0)));
	ck_assert(isnan(auprc(s, zeros, 0)));
}
END_TEST

/* AUROC as the share of (positive, negative) pairs ranked right. */
static double pairs_auroc(const double *s, const bool *y, size_t n)
{
	double good = 0;
	double total = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			if (!y[i] || y[j]) {
				continue;
			}
			total += 1;
			good += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
		}
	}
	return good / total;
}

START_TEST(test_auroc_matches_pair_count)
{
	enum { N = 300 };
	double s[N];
	bool y[N];
	srand(12345);
	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < N; i++) {
			y[i] = rand() % 4 == 0;
			/* Few distinct values, so that ties are common. */
			s[i] = (double)(rand() % 17) + (y[i] ? 3 : 0);
		}
		y[0] = true;
		y[1] = false;
		ck_assert_double_eq_tol(auroc(s, y, N), pairs_auroc(s, y, N), EPS);
	}
}
END_TEST

START_TEST(test_confusion)
{
	const bool flagged[] = { 1, 1, 0, 0, 1 };
	const bool label[] = { 1, 0, 1, 0, 0 };
	struct ebm_tool_confusion c;
	ebm_tool_confusion_count(flagged, label, 5, &c);
	ck_assert_uint_eq(c.tp, 1);
	ck_assert_uint_eq(c.fp, 2);
	ck_assert_uint_eq(c.fn, 1);
	ck_assert_uint_eq(c.tn, 1);
	ck_assert_double_eq_tol(ebm_tool_precision(&c), 1.0 / 3.0, EPS);
	ck_assert_double_eq_tol(ebm_tool_recall(&c), 0.5, EPS);
	/* 2PR / (P + R) = (1/3) / (5/6). */
	ck_assert_double_eq_tol(ebm_tool_f1(&c), 0.4, EPS);
}
END_TEST

START_TEST(test_confusion_degenerate)
{
	const bool none[] = { 0, 0, 0 };
	const bool label[] = { 1, 0, 0 };
	struct ebm_tool_confusion c;
	ebm_tool_confusion_count(none, label, 3, &c);
	ck_assert_double_eq(ebm_tool_precision(&c), 0.0);
	ck_assert_double_eq(ebm_tool_recall(&c), 0.0);
	ck_assert_double_eq(ebm_tool_f1(&c), 0.0);

	/* No anomalies at all, two false alarms. */
	const bool flagged[] = { 1, 1, 0 };
	ebm_tool_confusion_count(flagged, none, 3, &c);
	ck_assert_uint_eq(c.fp, 2);
	ck_assert_double_eq(ebm_tool_precision(&c), 0.0);
	ck_assert_double_eq(ebm_tool_recall(&c), 0.0);
	ck_assert_double_eq(ebm_tool_f1(&c), 0.0);

	/* Everything right. */
	ebm_tool_confusion_count(label, label, 3, &c);
	ck_assert_double_eq(ebm_tool_f1(&c), 1.0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tool");
	TCase *tc = tcase_create("metrics");
	tcase_add_test(tc, test_perfect_and_inverted);
	tcase_add_test(tc, test_sklearn_doc_example);
	tcase_add_test(tc, test_ties);
	tcase_add_test(tc, test_all_tied);
	tcase_add_test(tc, test_one_class);
	tcase_add_test(tc, test_auroc_matches_pair_count);
	tcase_add_test(tc, test_confusion);
	tcase_add_test(tc, test_confusion_degenerate);
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
