/*
 * test-util-text.c — the one UTF-8 validator and the one name index
 * (src/util/utf8.c, src/util/names.c) that model files, CSV headers,
 * ebmd's JSON and request schemas, and ebmd-train's column matching share.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static size_t dec(const char *s, size_t len, uint32_t *cp)
{
	return ebm_utf8_decode(s, len, cp);
}

START_TEST(utf8_accepts)
{
	uint32_t cp;
	ck_assert_uint_eq(dec("A", 1, &cp), 1);
	ck_assert_uint_eq(cp, 'A');
	ck_assert_uint_eq(dec("", 1, &cp), 1);       /* U+0000, one byte */
	ck_assert_uint_eq(cp, 0);
	ck_assert_uint_eq(dec("\xc2\x80", 2, &cp), 2);
	ck_assert_uint_eq(cp, 0x80);
	ck_assert_uint_eq(dec("\xdf\xbf", 2, &cp), 2);
	ck_assert_uint_eq(cp, 0x7ff);
	ck_assert_uint_eq(dec("\xe2\x82\xac", 3, &cp), 3);   /* euro sign */
	ck_assert_uint_eq(cp, 0x20ac);
	ck_assert_uint_eq(dec("\xed\x9f\xbf", 3, &cp), 3);   /* U+D7FF */
	ck_assert_uint_eq(dec("\xee\x80\x80", 3, &cp), 3);   /* U+E000 */
	ck_assert_uint_eq(dec("\xf0\x9f\x98\x80", 4, &cp), 4);
	ck_assert_uint_eq(cp, 0x1f600);
	ck_assert_uint_eq(dec("\xf4\x8f\xbf\xbf", 4, &cp), 4);
	ck_assert_uint_eq(cp, 0x10ffff);
	ck_assert_uint_eq(dec("\xc3\xa9xyz", 5, NULL), 2);   /* cp may be NULL */
	ck_assert(ebm_utf8_valid("caf\xc3\xa9 \xe2\x82\xac", 9));
	ck_assert(ebm_utf8_valid("", 0));
}
END_TEST

START_TEST(utf8_refuses)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		{ "\x80", 1 },                 /* lone continuation byte */
		{ "\xbf", 1 },
		{ "\xc0\x80", 2 },             /* overlong NUL */
		{ "\xc1\xbf", 2 },             /* overlong */
		{ "\xe0\x80\x80", 3 },         /* overlong */
		{ "\xe0\x9f\xbf", 3 },         /* overlong U+07FF */
		{ "\xf0\x8f\xbf\xbf", 4 },     /* overlong U+FFFF */
		{ "\xed\xa0\x80", 3 },         /* surrogate U+D800 */
		{ "\xed\xbf\xbf", 3 },         /* surrogate U+DFFF */
		{ "\xf4\x90\x80\x80", 4 },     /* U+110000 */
		{ "\xf5\x80\x80\x80", 4 },     /* lead byte past Unicode */
		{ "\xff", 1 },
		{ "\xc3", 1 },                 /* truncated */
		{ "\xe2\x82", 2 },
		{ "\xf0\x9f\x98", 3 },
		{ "\xc3(", 2 },                /* not a continuation */
		{ "\xe2\x28\xac", 3 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t cp = 12345;
		ck_assert_msg(dec(bad[i].s, bad[i].len, &cp) == 0, "case %zu", i);
		ck_assert_uint_eq(cp, 12345);  /* untouched */
		ck_assert_msg(!ebm_utf8_valid(bad[i].s, bad[i].len), "case %zu", i);
	}
	ck_assert_uint_eq(dec("A", 0, NULL), 0);
	ck_assert(!ebm_utf8_valid("ok\xc3", 3));
	ck_assert(!ebm_utf8_valid("\xe2\x82\xac\x80", 4));
}
END_TEST

START_TEST(names_index)
{
	const char *const names[] = {"cpu", "b", "cpu", "a", "b", "cpu", "z"};
	size_t n = sizeof(names) / sizeof(names[0]);
	uint32_t *order = ebm_names_sort(names, n);
	ck_assert_ptr_nonnull(order);
	/* Sorted by name, equal names in index order. */
	static const uint32_t want[] = {3, 1, 4, 0, 2, 5, 6};
	for (size_t k = 0; k < n; k++) {
		ck_assert_uint_eq(order[k], want[k]);
	}
	ck_assert_int_eq(ebm_names_find(names, order, n, "a"), 3);
	ck_assert_int_eq(ebm_names_find(names, order, n, "z"), 6);
	long c = ebm_names_find(names, order, n, "cpu");
	ck_assert(c == 0 || c == 2 || c == 5);
	ck_assert_int_eq(ebm_names_find(names, order, n, "cp"), -1);
	ck_assert_int_eq(ebm_names_find(names, order, n, ""), -1);
	ck_assert_int_eq(ebm_names_find(names, order, n, NULL), -1);
	ck_assert_int_eq(ebm_names_find(names, NULL, n, "a"), -1);
	/* The first repeat in index order is names[2] ("cpu" again), though
	 * "b" sorts first. */
	size_t first = 99;
	ck_assert_uint_eq(ebm_names_duplicate(names, order, n, &first), 2);
	ck_assert_uint_eq(first, 0);
	free(order);

	const char *const distinct[] = {"x", "w", "y"};
	order = ebm_names_sort(distinct, 3);
	ck_assert_uint_eq(ebm_names_duplicate(distinct, order, 3, &first),
			SIZE_MAX);
	ck_assert_uint_eq(first, SIZE_MAX);
	ck_assert_int_eq(ebm_names_find(distinct, order, 3, "w"), 1);
	free(order);

	order = ebm_names_sort(NULL, 0);
	ck_assert_ptr_nonnull(order);
	ck_assert_int_eq(ebm_names_find(distinct, order, 0, "w"), -1);
	ck_assert_uint_eq(ebm_names_duplicate(distinct, order, 0, NULL),
			SIZE_MAX);
	free(order);
}
END_TEST

/* Many names: the index agrees with a linear search for every name. */
START_TEST(names_many)
{
	enum { N = 1000 };
	static char buf[N][8];
	const char *names[N];
	for (size_t i = 0; i < N; i++) {
		snprintf(buf[i], sizeof(buf[i]), "f%zu", (i * 7919) % N);
		names[i] = buf[i];
	}
	uint32_t *order = ebm_names_sort(names, N);
	for (size_t k = 1; k < N; k++) {
		ck_assert(strcmp(names[order[k - 1]], names[order[k]]) < 0);
	}
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(ebm_names_find(names, order, N, names[i]), (long)i);
	}
	ck_assert_uint_eq(ebm_names_duplicate(names, order, N, NULL), SIZE_MAX);
	free(order);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("text");
	tcase_add_test(tc, utf8_accepts);
	tcase_add_test(tc, utf8_refuses);
	tcase_add_test(tc, names_index);
	tcase_add_test(tc, names_many);
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
