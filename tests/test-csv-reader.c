/*
 * test-csv-reader.c — the CSV reader (src/csv): parsing, every error
 * message with its location, limits, and reading real files, pipes and
 * stdin. Most inputs are built in memory; the file tests use
 * tests/data/thyroid.csv and temporary files.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "csv/csv.h"

#ifndef EBM_TEST_DATA_DIR
#define EBM_TEST_DATA_DIR "tests/data"
#endif

#define THYROID EBM_TEST_DATA_DIR "/thyroid.csv"

/* ---- helpers ------------------------------------------------------------ */

static struct ebm_csv *open_ok(const char *text)
{
	struct ebm_csv *c = NULL;
	struct ebm_error err;
	enum ebm_status st = ebm_csv_open_buffer(text, strlen(text), "data.csv",
			&c, &err);
	ck_assert_msg(st == EBM_STATUS_OK, "open failed: %s", err.message);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* Reads the next row, which must exist, into v. */
static void next_ok(struct ebm_csv *c, float *v)
{
	struct ebm_error err;
	bool got = false;
	enum ebm_status st = ebm_csv_next(c, v, &got, &err);
	ck_assert_msg(st == EBM_STATUS_OK, "next failed: %s", err.message);
	ck_assert(got);
}

static void next_end(struct ebm_csv *c)
{
	float v[8];
	bool got = true;
	ck_assert_int_eq(ebm_csv_next(c, v, &got, NULL), EBM_STATUS_OK);
	ck_assert(!got);
}

static void check_error(const struct ebm_error *err, enum ebm_status st,
		enum ebm_status code, const char *message, uint64_t line,
		uint64_t column)
{
	ck_assert_msg(st == code, "status %s, want %s (%s)",
			ebm_status_string(st), ebm_status_string(code), err->message);
	ck_assert_int_eq(err->code, code);
	ck_assert_str_eq(err->message, message);
	ck_assert_uint_eq(err->line, line);
	ck_assert_uint_eq(err->column, column);
}

/* Opening text (header included) fails with this message. */
static void expect_open_error(const char *text, size_t size,
		enum ebm_status code, const char *message, uint64_t line,
		uint64_t column)
{
	struct ebm_csv *c = (struct ebm_csv *)&c;
	struct ebm_error err;
	enum ebm_status st = ebm_csv_open_buffer(text, size, "data.csv", &c,
			&err);
	ck_assert_ptr_null(c);
	check_error(&err, st, code, message, line, column);
}

/* The header is fine; reading rows eventually fails with this message. */
static void expect_row_error(const char *text, enum ebm_status code,
		const char *message, uint64_t line, uint64_t column)
{
	struct ebm_csv *c = open_ok(text);
	float *v = calloc(ebm_csv_n_columns(c), sizeof(*v));
	struct ebm_error err;
	enum ebm_status st;
	bool got;
	int rows = 0;
	while ((st = ebm_csv_next(c, v, &got, &err)) == EBM_STATUS_OK && got) {
		ck_assert_int_lt(++rows, 1000);
	}
	ck_assert(!got);
	check_error(&err, st, code, message, line, column);
	/* Errors are sticky: the next call says the same. */
	struct ebm_error again;
	ck_assert_int_eq(ebm_csv_next(c, v, &got, &again), code);
	ck_assert(!got);
	ck_assert_str_eq(again.message, message);
	free(v);
	ebm_csv_close(c);
}

static void expect_table_error(const char *text, const char *label,
		bool required, enum ebm_status code, const char *message,
		uint64_t line, uint64_t column)
{
	struct ebm_table t;
	memset(&t, 0xab, sizeof(t));
	struct ebm_error err;
	enum ebm_status st = ebm_csv_read_table_buffer(text, strlen(text),
			"data.csv", label, required, &t, &err);
	check_error(&err, st, code, message, line, column);
	/* On failure the table is left zeroed. */
	ck_assert_uint_eq(t.n_rows, 0);
	ck_assert_uint_eq(t.n_cols, 0);
	ck_assert_ptr_null(t.names);
	ck_assert_ptr_null(t.data);
	ck_assert_ptr_null(t.labels);
	ck_assert_ptr_null(t.lines);
}

static void table_ok(const char *text, const char *label, bool required,
		struct ebm_table *t)
{
	struct ebm_error err;
	enum ebm_status st = ebm_csv_read_table_buffer(text, strlen(text),
			"data.csv", label, required, t, &err);
	ck_assert_msg(st == EBM_STATUS_OK, "read_table failed: %s", err.message);
}

/* Parses "x,y\n<cell>,0\n" and returns x; the cell must be accepted. */
static float one_value(const char *cell)
{
	char text[256];
	snprintf(text, sizeof(text), "x,y\n%s,0\n", cell);
	struct ebm_csv *c = open_ok(text);
	float v[2];
	next_ok(c, v);
	next_end(c);
	ebm_csv_close(c);
	return v[0];
}

/* Writes size bytes to a new temporary file; returns its malloc'd path. */
static char *temp_file(const char *data, size_t size)
{
	const char *dir = getenv("TMPDIR");
	char *path = malloc(4096);
	snprintf(path, 4096, "%s/ebm-csv-test-XXXXXX", dir ? dir : "/tmp");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	size_t done = 0;
	while (done < size) {
		ssize_t w = write(fd, data + done, size - done);
		ck_assert_int_gt(w, 0);
		done += (size_t)w;
	}
	ck_assert_int_eq(close(fd), 0);
	return path;
}

static char *slurp(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	fclose(f);
	*size = n;
	return buf;
}

static void tables_equal(const struct ebm_table *a, const struct ebm_table *b)
{
	ck_assert_uint_eq(a->n_rows, b->n_rows);
	ck_assert_uint_eq(a->n_cols, b->n_cols);
	for (size_t j = 0; j < a->n_cols; j++) {
		ck_assert_str_eq(a->names[j], b->names[j]);
	}
	ck_assert(memcmp(a->data, b->data,
			a->n_rows * a->n_cols * sizeof(float)) == 0);
	ck_assert(memcmp(a->lines, b->lines, a->n_rows * sizeof(uint64_t)) == 0);
	ck_assert((a->labels == NULL) == (b->labels == NULL));
	if (a->labels != NULL) {
		ck_assert(memcmp(a->labels, b->labels,
				a->n_rows * sizeof(float)) == 0);
	}
}

/* ---- parsing ------------------------------------------------------------ */

START_TEST(test_simple)
{
	struct ebm_csv *c = open_ok("a,b,c\n1,2.5,-3\n4e2,0,.5\n");
	ck_assert_uint_eq(ebm_csv_n_columns(c), 3);
	ck_assert_str_eq(ebm_csv_column_name(c, 0), "a");
	ck_assert_str_eq(ebm_csv_column_name(c, 2), "c");
	ck_assert_ptr_null(ebm_csv_column_name(c, 3));
	ck_assert_int_eq(ebm_csv_find_column(c, "b"), 1);
	ck_assert_int_eq(ebm_csv_find_column(c, "c"), 2);
	ck_assert_int_eq(ebm_csv_find_column(c, "d"), -1);
	ck_assert_int_eq(ebm_csv_find_column(c, "A"), -1);
	ck_assert_uint_eq(ebm_csv_line(c), 1);

	float v[3];
	next_ok(c, v);
	ck_assert_float_eq(v[0], 1.0f);
	ck_assert_float_eq(v[1], 2.5f);
	ck_assert_float_eq(v[2], -3.0f);
	ck_assert_uint_eq(ebm_csv_line(c), 2);
	next_ok(c, v);
	ck_assert_float_eq(v[0], 400.0f);
	ck_assert_float_eq(v[1], 0.0f);
	ck_assert_float_eq(v[2], 0.5f);
	ck_assert_uint_eq(ebm_csv_line(c), 3);
	next_end(c);
	next_end(c);
	ck_assert_uint_eq(ebm_csv_line(c), 3);
	ebm_csv_close(c);
	ebm_csv_close(NULL);
}
END_TEST

START_TEST(test_crlf)
{
	struct ebm_csv *c = open_ok("a,b\r\n1,2\r\n3,4\r\n");
	ck_assert_str_eq(ebm_csv_column_name(c, 1), "b");
	float v[2];
	next_ok(c, v);
	ck_assert_float_eq(v[1], 2.0f);
	next_ok(c, v);
	ck_assert_float_eq(v[0], 3.0f);
	ck_assert_float_eq(v[1], 4.0f);
	ck_assert_uint_eq(ebm_csv_line(c), 3);
	next_end(c);
	ebm_csv_close(c);

	/* Mixed endings in one file. */
	c = open_ok("a,b\n1,2\r\n3,4\n5,6\r\n");
	for (int i = 0; i < 3; i++) {
		next_ok(c, v);
		ck_assert_float_eq(v[1], 2.0f * (float)(i + 1));
	}
	next_end(c);
	ebm_csv_close(c);
}
END_TEST

START_TEST(test_no_trailing_newline)
{
	struct ebm_csv *c = open_ok("a,b\n1,2\n3,4");
	float v[2];
	next_ok(c, v);
	next_ok(c, v);
	ck_assert_float_eq(v[0], 3.0f);
	ck_assert_float_eq(v[1], 4.0f);
	next_end(c);
	ebm_csv_close(c);

	c = open_ok("a,b\r\n1,2\r\n3,4");
	next_ok(c, v);
	next_ok(c, v);
	ck_assert_float_eq(v[1], 4.0f);
	next_end(c);
	ebm_csv_close(c);

	/* Header alone without a newline. */
	c = open_ok("a,b");
	ck_assert_uint_eq(ebm_csv_n_columns(c), 2);
	ck_assert_str_eq(ebm_csv_column_name(c, 1), "b");
	next_end(c);
	ebm_csv_close(c);
}
END_TEST

START_TEST(test_bom)
{
	struct ebm_csv *c = open_ok("\xef\xbb\xbf" "f0,f1\n1,2\n");
	ck_assert_str_eq(ebm_csv_column_name(c, 0), "f0");
	ck_assert_int_eq(ebm_csv_find_column(c, "f0"), 0);
	float v[2];
	next_ok(c, v);
	ck_assert_float_eq(v[0], 1.0f);
	next_end(c);
	ebm_csv_close(c);

	/* A BOM before a quoted name. */
	c = open_ok("\xef\xbb\xbf\"f0\",f1\n1,2\n");
	ck_assert_str_eq(ebm_csv_column_name(c, 0), "f0");
	ebm_csv_close(c);

	/* Only the first three bytes count as a BOM: a second one is part of
	 * the name (valid UTF-8, so accepted as such). */
	c = open_ok("\xef\xbb\xbf\xef\xbb\xbf" "f0\n1\n");
	ck_assert_str_eq(ebm_csv_column_name(c, 0), "\xef\xbb\xbf" "f0");
	ebm_csv_close(c);
}
END_TEST

START_TEST(test_quoted)
{
	struct ebm_csv *c = open_ok(
			"\"a \"\"x\"\"\",\"b,c\",\"line\nbreak\",\"\"\"\",plain\"q\n"
			"\"1.5\",\" 2 \",\"-3e1\",\"4\",5\n");
	ck_assert_uint_eq(ebm_csv_n_columns(c), 5);
	ck_assert_str_eq(ebm_csv_column_name(c, 0), "a \"x\"");
	ck_assert_str_eq(ebm_csv_column_name(c, 1), "b,c");
	ck_assert_str_eq(ebm_csv_column_name(c, 2), "line\nbreak");
	ck_assert_str_eq(ebm_csv_column_name(c, 3), "\"");
	/* A quote inside an unquoted field is an ordinary character. */
	ck_assert_str_eq(ebm_csv_column_name(c, 4), "plain\"q");
	ck_assert_int_eq(ebm_csv_find_column(c, "b,c"), 1);
	float v[5];
	next_ok(c, v);
	ck_assert_float_eq(v[0], 1.5f);
	ck_assert_float_eq(v[1], 2.0f);
	ck_assert_float_eq(v[2], -30.0f);
	ck_assert_float_eq(v[3], 4.0f);
	ck_assert_float_eq(v[4], 5.0f);
	/* The header spans lines 1-2, so the row is on line 3. */
	ck_assert_uint_eq(ebm_csv_line(c), 3);
	next_end(c);
	ebm_csv_close(c);

	/* Quoted last field followed by CRLF, and by end of input. */
	c = open_ok("a,b\r\n1,\"2\"\r\n3,\"4\"");
	next_ok(c, v);
	ck_assert_float_eq(v[1], 2.0f);
	next_ok(c, v);
	ck_assert_float_eq(v[1], 4.0f);
	next_end(c);
	ebm_csv_close(c);
}
END_TEST

START_TEST(test_number_forms)
{
	ck_assert_float_eq(one_value("0"), 0.0f);
	ck_assert_float_eq(one_value("-0"), 0.0f);
	ck_assert(signbit(one_value("-0")));
	ck_assert_float_eq(one_value("+1"), 1.0f);
	ck_assert_float_eq(one_value(".25"), 0.25f);
	ck_assert_float_eq(one_value("5."), 5.0f);
	ck_assert_float_eq(one_value("1e3"), 1000.0f);
	ck_assert_float_eq(one_value("1E-3"), 1e-3f);
	ck_assert_float_eq(one_value("0.774193548"), 0.774193548f);
	/* Spaces and tabs around a number, quoted or not. */
	ck_assert_float_eq(one_value("  1.5\t "), 1.5f);
	ck_assert_float_eq(one_value("\" -2 \""), -2.0f);
	/* Subnormal floats are kept; smaller values underflow to zero. */
	float sub = one_value("1e-40");
	ck_assert(sub > 0.0f && sub < FLT_MIN);
	ck_assert_float_eq(sub, 1e-40f);
	ck_assert_float_eq(one_value("1e-50"), 0.0f);
	ck_assert_float_eq(one_value("1e-400"), 0.0f);
	/* The float range edge: FLT_MAX itself and the 8-digit spelling. */
	ck_assert_float_eq(one_value("3.40282347e38"), FLT_MAX);
	ck_assert_float_eq(one_value("3.4028235e38"), FLT_MAX);
	ck_assert_float_eq(one_value("-3.4028235e38"), -FLT_MAX);
}
END_TEST

START_TEST(test_find_many_columns)
{
	/* find_column on a wider header, names in non-sorted order. */
	char text[4096] = "";
	size_t o = 0;
	for (int i = 99; i >= 0; i--) {
		o += (size_t)snprintf(text + o, sizeof(text) - o, "col%d%s", i,
				i ? "," : "\n");
	}
	struct ebm_csv *c = open_ok(text);
	ck_assert_uint_eq(ebm_csv_n_columns(c), 100);
	for (int i = 0; i < 100; i++) {
		char name[16];
		snprintf(name, sizeof(name), "col%d", i);
		ck_assert_int_eq(ebm_csv_find_column(c, name), 99 - i);
	}
	ck_assert_int_eq(ebm_csv_find_column(c, "col100"), -1);
	ck_assert_int_eq(ebm_csv_find_column(c, ""), -1);
	ebm_csv_close(c);
}
END_TEST

START_TEST(test_blank_lines_at_end)
{
	const char *texts[] = {
		"a,b\n1,2\n\n",
		"a,b\n1,2\n\n\n\n",
		"a,b\r\n1,2\r\n\r\n\r\n",
		"a,b\n1,2\n\r\n\n",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct ebm_csv *c = open_ok(texts[i]);
		float v[2];
		next_ok(c, v);
		ck_assert_float_eq(v[1], 2.0f);
		next_end(c);
		ebm_csv_close(c);
	}
}
END_TEST

/* ---- labels and tables -------------------------------------------------- */

START_TEST(test_label_extraction)
{
	struct ebm_table t;
	table_ok("f0,label,f1\n1,0,2\n3,1,4\n5,1.0,6\n", "label", true, &t);
	ck_assert_uint_eq(t.n_rows, 3);
	ck_assert_uint_eq(t.n_cols, 2);
	ck_assert_str_eq(t.names[0], "f0");
	ck_assert_str_eq(t.names[1], "f1");
	const float want[] = {1, 2, 3, 4, 5, 6};
	for (size_t i = 0; i < 6; i++) {
		ck_assert_float_eq(t.data[i], want[i]);
	}
	ck_assert_ptr_nonnull(t.labels);
	ck_assert_float_eq(t.labels[0], 0.0f);
	ck_assert_float_eq(t.labels[1], 1.0f);
	ck_assert_float_eq(t.labels[2], 1.0f);
	ck_assert_uint_eq(t.lines[0], 2);
	ck_assert_uint_eq(t.lines[2], 4);
	ebm_table_finish(&t);
	ck_assert_ptr_null(t.data);
	ck_assert_uint_eq(t.n_rows, 0);
	ebm_table_finish(&t);

	/* Label absent but optional: no labels, all columns are features. */
	table_ok("f0,f1\n1,2\n", "label", false, &t);
	ck_assert_uint_eq(t.n_cols, 2);
	ck_assert_ptr_null(t.labels);
	ebm_table_finish(&t);

	/* No label column asked for: "label" is just a feature. */
	table_ok("f0,label\n1,7\n", NULL, false, &t);
	ck_assert_uint_eq(t.n_cols, 2);
	ck_assert_str_eq(t.names[1], "label");
	ck_assert_float_eq(t.data[1], 7.0f);
	ck_assert_ptr_null(t.labels);
	ebm_table_finish(&t);

	ebm_table_finish(NULL);
}
END_TEST

START_TEST(test_table_growth)
{
	/* Enough rows to grow the table several times. */
	size_t n = 1000;
	char *text = malloc(n * 32 + 16);
	size_t o = (size_t)sprintf(text, "x,y,label\n");
	for (size_t i = 0; i < n; i++) {
		o += (size_t)sprintf(text + o, "%zu,%zu.5,%zu\n", i, i, i % 2);
	}
	struct ebm_table t;
	table_ok(text, "label", true, &t);
	ck_assert_uint_eq(t.n_rows, n);
	ck_assert_uint_eq(t.n_cols, 2);
	for (size_t i = 0; i < n; i++) {
		ck_assert_float_eq(t.data[2 * i], (float)i);
		ck_assert_float_eq(t.data[2 * i + 1], (float)i + 0.5f);
		ck_assert_float_eq(t.labels[i], (float)(i % 2));
		ck_assert_uint_eq(t.lines[i], i + 2);
	}
	ebm_table_finish(&t);
	free(text);
}
END_TEST

START_TEST(test_label_errors)
{
	expect_table_error("f0,label\n1,0\n2,2\n", "label", true,
			EBM_STATUS_FORMAT,
			"data.csv:3:2 (column 'label'): label must be 0 or 1, got 2", 3, 2);
	expect_table_error("label,f0\n0.5,1\n", "label", false,
			EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'label'): label must be 0 or 1, got 0.5",
			2, 1);
	expect_table_error("label,f0\n-1,1\n", "label", true, EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'label'): label must be 0 or 1, got -1",
			2, 1);
	/* A label that is not a number gets the ordinary cell message. */
	expect_table_error("f0,label\n1,yes\n", "label", true, EBM_STATUS_FORMAT,
			"data.csv:2:2 (column 'label'): expected a number, got 'yes'",
			2, 2);
	expect_table_error("f0,f1\n1,2\n", "label", true, EBM_STATUS_FORMAT,
			"data.csv:1: label column 'label' not found", 1, 0);
	expect_table_error("f0,f1\n1,2\n", "is_anomaly", true, EBM_STATUS_FORMAT,
			"data.csv:1: label column 'is_anomaly' not found", 1, 0);
	expect_table_error("label\n1\n", "label", true, EBM_STATUS_FORMAT,
			"data.csv:1: no feature columns", 1, 0);
}
END_TEST

START_TEST(test_header_only)
{
	struct ebm_csv *c = open_ok("f0,f1\n");
	next_end(c);
	ebm_csv_close(c);
	expect_table_error("f0,f1\n", NULL, false, EBM_STATUS_FORMAT,
			"data.csv: no data rows", 0, 0);
	expect_table_error("f0,f1", NULL, false, EBM_STATUS_FORMAT,
			"data.csv: no data rows", 0, 0);
	expect_table_error("f0,label\n\n\n", "label", true, EBM_STATUS_FORMAT,
			"data.csv: no data rows", 0, 0);
}
END_TEST

START_TEST(test_invalid_arguments)
{
	struct ebm_error err;
	struct ebm_table t;
	ck_assert_int_eq(ebm_csv_read_table_buffer("a\n1\n", 4, "x", NULL, true,
			&t, &err), EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(ebm_csv_open(NULL, NULL, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	struct ebm_csv *c;
	ck_assert_int_eq(ebm_csv_open_buffer(NULL, 3, "x", &c, &err),
			EBM_STATUS_INVALID_ARGUMENT);
	ck_assert_ptr_null(c);
	/* An empty buffer may be NULL; it is simply empty. The origin defaults
	 * to "<buffer>". */
	ck_assert_int_eq(ebm_csv_open_buffer(NULL, 0, NULL, &c, &err),
			EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message, "<buffer>: no header row (file is empty)");
	/* err may be NULL. */
	ck_assert_int_eq(ebm_csv_open_buffer("", 0, "x", &c, NULL),
			EBM_STATUS_FORMAT);
	ck_assert_int_eq(ebm_csv_read_table_buffer("a\nx\n", 4, "x", NULL, false,
			&t, NULL), EBM_STATUS_FORMAT);
}
END_TEST

/* ---- error messages ----------------------------------------------------- */

START_TEST(test_error_not_a_number)
{
	expect_row_error("f0,f1,f2\n1,2,3\n4,5,abc\n", EBM_STATUS_FORMAT,
			"data.csv:3:3 (column 'f2'): expected a number, got 'abc'", 3, 3);
	expect_row_error("f0,f1\n1.5x,2\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '1.5x'", 2, 1);
	expect_row_error("f0,f1\n1 5,2\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '1 5'", 2, 1);
	expect_row_error("f0,f1\n1,2,\n", EBM_STATUS_FORMAT,
			"data.csv:2: expected 2 fields, got 3", 2, 0);
	/* The text shown is the trimmed cell. */
	expect_row_error("f0,f1\n1,  x \n", EBM_STATUS_FORMAT,
			"data.csv:2:2 (column 'f1'): expected a number, got 'x'", 2, 2);
	/* Hex floats, '+-', a lone sign or dot, and exotic blanks. */
	expect_row_error("f0\n0x1p3\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '0x1p3'", 2, 1);
	expect_row_error("f0\n-0X10\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '-0X10'", 2, 1);
	expect_row_error("f0\n+-1\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '+-1'", 2, 1);
	expect_row_error("f0\n-\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '-'", 2, 1);
	expect_row_error("f0\n.\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '.'", 2, 1);
	expect_row_error("f0\n\v1\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '\\x0b1'", 2, 1);
	/* A lone CR is not a line end; it is shown escaped. */
	expect_row_error("f0,f1\n1\r2,3\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '1\\r2'", 2, 1);
	/* A NUL byte inside a cell. */
	const char nul[] = "f0\n1\0002\n";
	struct ebm_csv *c;
	struct ebm_error err;
	ck_assert_int_eq(ebm_csv_open_buffer(nul, sizeof(nul) - 1, "data.csv",
			&c, &err), EBM_STATUS_OK);
	float v[1];
	bool got;
	check_error(&err, ebm_csv_next(c, v, &got, &err), EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got '1\\x002'",
			2, 1);
	ebm_csv_close(c);
}
END_TEST

START_TEST(test_error_long_value_cut)
{
	char text[300] = "f0\n";
	memset(text + 3, 'z', 200);
	text[203] = '\n';
	text[204] = '\0';
	char want[200];
	snprintf(want, sizeof(want),
			"data.csv:2:1 (column 'f0'): expected a number, got '%.64s...'",
			text + 3);
	expect_row_error(text, EBM_STATUS_FORMAT, want, 2, 1);
}
END_TEST

START_TEST(test_error_empty_cell)
{
	expect_row_error("f0,f1\n1,\n", EBM_STATUS_FORMAT,
			"data.csv:2:2 (column 'f1'): expected a number, got an empty cell",
			2, 2);
	expect_row_error("f0,f1\n,2\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got an empty cell",
			2, 1);
	expect_row_error("f0,f1\n\"\",2\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got an empty cell",
			2, 1);
	expect_row_error("f0,f1\n1,  \n", EBM_STATUS_FORMAT,
			"data.csv:2:2 (column 'f1'): expected a number, got an empty cell",
			2, 2);
	/* With one column a quoted empty cell is a cell, not a blank line. */
	expect_row_error("f0\n1\n\"\"\n2\n", EBM_STATUS_FORMAT,
			"data.csv:3:1 (column 'f0'): expected a number, got an empty cell",
			3, 1);
}
END_TEST

/* The _missing readers: an empty feature cell is NaN; a bad cell, an
 * empty label and a ragged row are still errors. */
START_TEST(test_empty_cell_missing)
{
	static const char text[] = "f0,f1,label\n1,,0\n , 2,1\n\"\",3,0\n";
	struct ebm_table t;
	struct ebm_error err;
	ck_assert_int_eq(ebm_csv_read_table_buffer_missing(text,
			sizeof(text) - 1, "data.csv", "label", true, &t, &err), 0);
	ck_assert_uint_eq(t.n_rows, 3);
	ck_assert_uint_eq(t.n_cols, 2);
	ck_assert(t.data[0] == 1.0f && isnan(t.data[1]));
	ck_assert(isnan(t.data[2]) && t.data[3] == 2.0f);
	ck_assert(isnan(t.data[4]) && t.data[5] == 3.0f);
	ck_assert(t.labels[1] == 1.0f);
	ebm_table_finish(&t);
	static const char bad_label[] = "f0,label\n1,\n";
	ck_assert_int_eq(ebm_csv_read_table_buffer_missing(bad_label,
			sizeof(bad_label) - 1, "data.csv", "label", true, &t, &err),
			EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message, "data.csv:2:2 (column 'label'): label "
			"must be 0 or 1, got an empty cell");
	static const char bad_cell[] = "f0,f1\n1,\n2,x\n";
	ck_assert_int_eq(ebm_csv_read_table_buffer_missing(bad_cell,
			sizeof(bad_cell) - 1, "data.csv", NULL, false, &t, &err),
			EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message,
			"data.csv:3:2 (column 'f1'): expected a number, got 'x'");
	/* And the ordinary reader still refuses the empty cell. */
	ck_assert_int_eq(ebm_csv_read_table_buffer(text, sizeof(text) - 1,
			"data.csv", "label", true, &t, &err), EBM_STATUS_FORMAT);
	ck_assert_str_eq(err.message, "data.csv:2:2 (column 'f1'): expected a "
			"number, got an empty cell");
}
END_TEST

START_TEST(test_error_ragged)
{
	expect_row_error("f0,f1,f2,f3,f4,f5,f6\n"
			"1,2,3,4,5,6,7\n1,2,3,4,5,6,7\n1,2,3,4,5,6,7\n"
			"1,2,3,4,5,6,7\n1,2,3,4,5,6,7\n1,2,3,4,5,6\n",
			EBM_STATUS_FORMAT, "data.csv:7: expected 7 fields, got 6", 7, 0);
	expect_row_error("f0,f1\n1,2\n1,2,3\n", EBM_STATUS_FORMAT,
			"data.csv:3: expected 2 fields, got 3", 3, 0);
	expect_row_error("f0,f1\n1,2\n1,2,3,4,5,6,7,8,9,10\n", EBM_STATUS_FORMAT,
			"data.csv:3: expected 2 fields, got 10", 3, 0);
	expect_row_error("f0,f1\n1,2\n1", EBM_STATUS_FORMAT,
			"data.csv:3: expected 2 fields, got 1", 3, 0);
	/* A wrong count wins over a bad cell earlier in the same row (a
	 * semicolon-separated file is the typical case). */
	expect_row_error("f0,f1\n1;2\n", EBM_STATUS_FORMAT,
			"data.csv:2: expected 2 fields, got 1", 2, 0);
	expect_row_error("f0,f1,f2\nabc,1\n", EBM_STATUS_FORMAT,
			"data.csv:2: expected 3 fields, got 2", 2, 0);
	/* Singular. */
	expect_row_error("f0\n1\n1,2\n", EBM_STATUS_FORMAT,
			"data.csv:3: expected 1 field, got 2", 3, 0);
}
END_TEST

START_TEST(test_error_blank_line_in_middle)
{
	expect_row_error("f0,f1\n1,2\n\n3,4\n", EBM_STATUS_FORMAT,
			"data.csv:3: expected 2 fields, got 0", 3, 0);
	expect_row_error("f0,f1\r\n1,2\r\n\r\n\r\n3,4\r\n", EBM_STATUS_FORMAT,
			"data.csv:3: expected 2 fields, got 0", 3, 0);
	expect_row_error("f0,f1\n\n1,2\n", EBM_STATUS_FORMAT,
			"data.csv:2: expected 2 fields, got 0", 2, 0);
	expect_row_error("f0\n1\n\n2\n", EBM_STATUS_FORMAT,
			"data.csv:3: expected 1 field, got 0", 3, 0);
	/* A line of spaces is not blank: it is a row with one blank cell. */
	expect_row_error("f0,f1\n1,2\n  \n", EBM_STATUS_FORMAT,
			"data.csv:3: expected 2 fields, got 1", 3, 0);
}
END_TEST

START_TEST(test_error_header)
{
	expect_open_error("f0,f1,f0\n1,2,3\n", 15, EBM_STATUS_FORMAT,
			"data.csv:1: duplicate column name 'f0'", 1, 3);
	/* The first repeat in file order is named. */
	const char *t = "a,b,b,a\n";
	expect_open_error(t, strlen(t), EBM_STATUS_FORMAT,
			"data.csv:1: duplicate column name 'b'", 1, 3);
	t = "f0,f1,f2,,f4\n1,2,3,4,5\n";
	expect_open_error(t, strlen(t), EBM_STATUS_FORMAT,
			"data.csv:1: empty column name in column 4", 1, 4);
	t = "f0,f1,\n";
	expect_open_error(t, strlen(t), EBM_STATUS_FORMAT,
			"data.csv:1: empty column name in column 3", 1, 3);
	t = "\"\",f1\n";
	expect_open_error(t, strlen(t), EBM_STATUS_FORMAT,
			"data.csv:1: empty column name in column 1", 1, 1);
	t = "\nf0\n1\n";
	expect_open_error(t, strlen(t), EBM_STATUS_FORMAT,
			"data.csv:1: header row is blank", 1, 0);
	t = "f0,\"f\xff\"\n";
	expect_open_error(t, strlen(t), EBM_STATUS_FORMAT,
			"data.csv:1:2: column name is not valid UTF-8", 1, 2);
	expect_open_error("f0,a\0b\n", 7, EBM_STATUS_FORMAT,
			"data.csv:1:2: column name contains a NUL byte", 1, 2);
	t = "f0,\"f1\"x\n";
	expect_open_error(t, strlen(t), EBM_STATUS_FORMAT,
			"data.csv:1:2: expected ',' or end of line after closing quote, "
			"got 'x'", 1, 2);
}
END_TEST

START_TEST(test_error_empty_file)
{
	expect_open_error("", 0, EBM_STATUS_FORMAT,
			"data.csv: no header row (file is empty)", 0, 0);
	expect_open_error("\xef\xbb\xbf", 3, EBM_STATUS_FORMAT,
			"data.csv: no header row (file is empty)", 0, 0);
	/* An incomplete BOM is part of the (invalid UTF-8) name. */
	expect_open_error("\xef\xbb", 2, EBM_STATUS_FORMAT,
			"data.csv:1:1: column name is not valid UTF-8", 1, 1);
	expect_table_error("", NULL, false, EBM_STATUS_FORMAT,
			"data.csv: no header row (file is empty)", 0, 0);
}
END_TEST

START_TEST(test_error_overflow)
{
	expect_row_error("f0,f1\n1,2\n1,2\n1,2\n0,1e39\n", EBM_STATUS_FORMAT,
			"data.csv:5:2 (column 'f1'): value 1e39 does not fit a 32-bit float",
			5, 2);
	expect_row_error("f0\n-1e39\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): value -1e39 does not fit a 32-bit "
			"float", 2, 1);
	/* Beyond double too: strtod reports ERANGE with HUGE_VAL. */
	expect_row_error("f0\n1e400\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): value 1e400 does not fit a 32-bit "
			"float", 2, 1);
	expect_row_error("f0\n-1e400\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): value -1e400 does not fit a 32-bit "
			"float", 2, 1);
	/* Just past the limit. */
	expect_row_error("f0\n3.4028236e38\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): value 3.4028236e38 does not fit a "
			"32-bit float", 2, 1);
}
END_TEST

START_TEST(test_error_nonfinite)
{
	const char *words[] = {
		"nan", "NaN", "NAN", "-nan", "+nan", "nan(123)", "nan()",
		"inf", "INF", "-inf", "+Inf", "infinity", "-Infinity", "INFINITY",
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		char text[64], want[128];
		snprintf(text, sizeof(text), "f0,f1\n1,2\n3,%s\n", words[i]);
		snprintf(want, sizeof(want),
				"data.csv:3:2 (column 'f1'): '%s' is not a finite number",
				words[i]);
		expect_row_error(text, EBM_STATUS_FORMAT, want, 3, 2);
	}
	/* Words strtod does not take are just not numbers. */
	expect_row_error("f0\nnone\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got 'none'", 2, 1);
	expect_row_error("f0\ninfo\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): expected a number, got 'info'", 2, 1);
	expect_row_error("f0\n\"nan\"\n", EBM_STATUS_FORMAT,
			"data.csv:2:1 (column 'f0'): 'nan' is not a finite number", 2, 1);
}
END_TEST

START_TEST(test_error_unterminated)
{
	expect_row_error("f0,f1\n1,2\n\"1.5,2\n3,4\n", EBM_STATUS_FORMAT,
			"data.csv:3:1: unterminated quoted field", 3, 1);
	expect_row_error("f0,f1\n1,\"2", EBM_STATUS_FORMAT,
			"data.csv:2:2: unterminated quoted field", 2, 2);
	const char *t = "f0,\"f1\n";
	expect_open_error(t, strlen(t), EBM_STATUS_FORMAT,
			"data.csv:1:2: unterminated quoted field", 1, 2);
	/* Text after a closing quote. */
	expect_row_error("f0,f1\n\"1\"2,3\n", EBM_STATUS_FORMAT,
			"data.csv:2:1: expected ',' or end of line after closing quote, "
			"got '2'", 2, 1);
	expect_row_error("f0,f1\n\"1\" ,3\n", EBM_STATUS_FORMAT,
			"data.csv:2:1: expected ',' or end of line after closing quote, "
			"got ' '", 2, 1);
	expect_row_error("f0,f1\n1,\"3\"\rx\n", EBM_STATUS_FORMAT,
			"data.csv:2:2: expected ',' or end of line after closing quote, "
			"got '\\r'", 2, 2);
}
END_TEST

START_TEST(test_error_offsets)
{
	/* err->offset is the byte offset of the field (or row) at fault. */
	const char *t = "f0,f1\n1,2\n3,abc\n";
	struct ebm_csv *c = open_ok(t);
	float v[2];
	bool got;
	struct ebm_error err;
	next_ok(c, v);
	ck_assert_int_eq(ebm_csv_next(c, v, &got, &err), EBM_STATUS_FORMAT);
	ck_assert_uint_eq(err.offset, (uint64_t)(strstr(t, "abc") - t));
	ebm_csv_close(c);

	t = "\xef\xbb\xbf" "f0,f1\n1,2\n1\n";
	c = open_ok(t);
	next_ok(c, v);
	ck_assert_int_eq(ebm_csv_next(c, v, &got, &err), EBM_STATUS_FORMAT);
	ck_assert_uint_eq(err.offset, 13);
	ck_assert_uint_eq(err.line, 3);
	ebm_csv_close(c);
}
END_TEST

/* ---- limits ------------------------------------------------------------- */

/* "c0,c1,...,c<n-1>\n" followed by `rows` rows of zeros. */
static char *wide_csv(size_t n, size_t rows)
{
	size_t cap = n * 10 + rows * n * 2 + 16;
	char *text = malloc(cap);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		o += (size_t)snprintf(text + o, cap - o, "c%zu%c", i,
				i + 1 < n ? ',' : '\n');
	}
	for (size_t r = 0; r < rows; r++) {
		for (size_t i = 0; i < n; i++) {
			text[o++] = '0';
			text[o++] = i + 1 < n ? ',' : '\n';
		}
	}
	text[o] = '\0';
	return text;
}

START_TEST(test_limit_columns)
{
	char *text = wide_csv(EBM_CSV_MAX_COLUMNS, 1);
	struct ebm_table t;
	table_ok(text, NULL, false, &t);
	ck_assert_uint_eq(t.n_cols, EBM_CSV_MAX_COLUMNS);
	ck_assert_uint_eq(t.n_rows, 1);
	ck_assert_str_eq(t.names[EBM_CSV_MAX_COLUMNS - 1], "c65535");
	ebm_table_finish(&t);
	free(text);

	text = wide_csv(EBM_CSV_MAX_COLUMNS + 1, 1);
	expect_open_error(text, strlen(text), EBM_STATUS_LIMIT,
			"data.csv:1: more than 65536 columns", 1, 0);
	free(text);
}
END_TEST

START_TEST(test_limit_field)
{
	/* A cell of exactly EBM_CSV_MAX_FIELD bytes is fine ("1" + spaces). */
	size_t n = EBM_CSV_MAX_FIELD;
	char *text = malloc(n + 64);
	size_t o = (size_t)sprintf(text, "f0,f1\n");
	text[o++] = '1';
	memset(text + o, ' ', n - 1);
	o += n - 1;
	o += (size_t)sprintf(text + o, ",2\n");
	struct ebm_csv *c = open_ok(text);
	float v[2];
	next_ok(c, v);
	ck_assert_float_eq(v[0], 1.0f);
	ck_assert_float_eq(v[1], 2.0f);
	next_end(c);
	ebm_csv_close(c);

	/* One byte more is refused, quoted or not. */
	o = (size_t)sprintf(text, "f0,f1\n3,4\n0,");
	memset(text + o, '7', n + 1);
	o += n + 1;
	strcpy(text + o, "\n");
	expect_row_error(text, EBM_STATUS_LIMIT,
			"data.csv:3:2: field is longer than 1048576 bytes", 3, 2);
	o = (size_t)sprintf(text, "f0,f1\n\"");
	memset(text + o, '7', n + 1);
	o += n + 1;
	strcpy(text + o, "\",1\n");
	expect_row_error(text, EBM_STATUS_LIMIT,
			"data.csv:2:1: field is longer than 1048576 bytes", 2, 1);
	free(text);
}
END_TEST

START_TEST(test_limit_name)
{
	char text[1024];
	size_t o = (size_t)sprintf(text, "f0,");
	memset(text + o, 'n', EBM_CSV_MAX_NAME);
	o += EBM_CSV_MAX_NAME;
	strcpy(text + o, "\n1,2\n");
	struct ebm_csv *c = open_ok(text);
	ck_assert_uint_eq(strlen(ebm_csv_column_name(c, 1)), EBM_CSV_MAX_NAME);
	ebm_csv_close(c);

	o = (size_t)sprintf(text, "f0,");
	memset(text + o, 'n', EBM_CSV_MAX_NAME + 1);
	o += EBM_CSV_MAX_NAME + 1;
	strcpy(text + o, "\n1,2\n");
	expect_open_error(text, strlen(text), EBM_STATUS_LIMIT,
			"data.csv:1:2: column name is longer than 256 bytes", 1, 2);
}
END_TEST

/* ---- files, pipes and stdin --------------------------------------------- */

START_TEST(test_real_file)
{
	struct ebm_table t;
	struct ebm_error err;
	enum ebm_status st = ebm_csv_read_table(THYROID, "label", true, &t, &err);
	ck_assert_msg(st == EBM_STATUS_OK, "%s", err.message);
	ck_assert_uint_eq(t.n_rows, 3772);
	ck_assert_uint_eq(t.n_cols, 6);
	for (size_t j = 0; j < 6; j++) {
		char name[8];
		snprintf(name, sizeof(name), "f%zu", j);
		ck_assert_str_eq(t.names[j], name);
	}
	ck_assert_float_eq(t.data[0], 0.774193548f);
	ck_assert_float_eq(t.data[1], 0.00113207547f);
	ck_assert_float_eq(t.data[5], 0.236065574f);
	ck_assert_float_eq(t.labels[0], 0.0f);
	ck_assert_uint_eq(t.lines[0], 2);
	ck_assert_uint_eq(t.lines[t.n_rows - 1], 3773);
	size_t anomalies = 0;
	for (size_t i = 0; i < t.n_rows; i++) {
		ck_assert(t.labels[i] == 0.0f || t.labels[i] == 1.0f);
		anomalies += t.labels[i] == 1.0f;
	}
	ck_assert_uint_gt(anomalies, 0);
	ck_assert_uint_lt(anomalies, t.n_rows);

	/* The file is several read buffers long: reading it from memory in
	 * one piece must give the same table. */
	size_t size;
	char *bytes = slurp(THYROID, &size);
	ck_assert_uint_gt(size, 3 * 65536);
	struct ebm_table m;
	st = ebm_csv_read_table_buffer(bytes, size, "thyroid.csv", "label", true,
			&m, &err);
	ck_assert_msg(st == EBM_STATUS_OK, "%s", err.message);
	tables_equal(&t, &m);
	ebm_table_finish(&m);
	free(bytes);

	/* The streaming interface sees the same rows. */
	struct ebm_csv *c;
	ck_assert_int_eq(ebm_csv_open(THYROID, &c, &err), EBM_STATUS_OK);
	ck_assert_uint_eq(ebm_csv_n_columns(c), 7);
	ck_assert_int_eq(ebm_csv_find_column(c, "label"), 6);
	float v[7];
	bool got;
	size_t rows = 0;
	while (ebm_csv_next(c, v, &got, &err) == EBM_STATUS_OK && got) {
		ck_assert_float_eq(v[3], t.data[rows * 6 + 3]);
		rows++;
	}
	ck_assert(!got);
	ck_assert_uint_eq(rows, 3772);
	ebm_csv_close(c);
	ebm_table_finish(&t);
}
END_TEST

START_TEST(test_missing_file)
{
	struct ebm_csv *c = (struct ebm_csv *)&c;
	struct ebm_error err;
	enum ebm_status st = ebm_csv_open(EBM_TEST_DATA_DIR "/no-such.csv", &c,
			&err);
	check_error(&err, st, EBM_STATUS_IO,
			"cannot open '" EBM_TEST_DATA_DIR "/no-such.csv': "
			"No such file or directory", 0, 0);
	ck_assert_int_eq(err.sys_errno, ENOENT);
	ck_assert_ptr_null(c);

	struct ebm_table t;
	st = ebm_csv_read_table("x.csv-that-is-not-here", "label", false, &t,
			&err);
	check_error(&err, st, EBM_STATUS_IO,
			"cannot open 'x.csv-that-is-not-here': No such file or directory",
			0, 0);
	ck_assert_ptr_null(t.data);

	/* A directory opens but cannot be read. */
	st = ebm_csv_open(EBM_TEST_DATA_DIR, &c, &err);
	check_error(&err, st, EBM_STATUS_IO,
			"cannot read '" EBM_TEST_DATA_DIR "': Is a directory", 0, 0);
	ck_assert_int_eq(err.sys_errno, EISDIR);
}
END_TEST

/*
 * A file several read buffers long with quoted fields, CRLF and long cells
 * at every alignment: reading it from disk and from memory must agree.
 */
START_TEST(test_buffer_boundaries)
{
	size_t cap = 1 << 20, o = 0;
	char *text = malloc(cap);
	o += (size_t)sprintf(text, "\xef\xbb\xbf\"a\",b,\"c\"\"\",label\r\n");
	size_t rows = 0;
	while (o < 400000) {
		size_t pad = rows % 97;
		o += (size_t)sprintf(text + o, "\"%zu.25\",%*s%zu,", rows, (int)pad,
				"", rows * 3);
		o += (size_t)sprintf(text + o, "\"  -%zu.5%*s\",%zu%s", rows % 1000,
				(int)(pad / 2), "", rows % 2, rows % 3 ? "\r\n" : "\n");
		rows++;
	}
	char *path = temp_file(text, o);
	struct ebm_table f, m;
	struct ebm_error err;
	ck_assert_int_eq(ebm_csv_read_table(path, "label", true, &f, &err),
			EBM_STATUS_OK);
	table_ok(text, "label", true, &m);
	ck_assert_uint_eq(f.n_rows, rows);
	ck_assert_str_eq(f.names[1], "b");
	ck_assert_str_eq(f.names[2], "c\"");
	tables_equal(&f, &m);
	for (size_t i = 0; i < rows; i += 1234) {
		ck_assert_float_eq(f.data[3 * i], (float)i + 0.25f);
		ck_assert_float_eq(f.data[3 * i + 1], (float)(i * 3));
		ck_assert_float_eq(f.data[3 * i + 2], -((float)(i % 1000) + 0.5f));
		ck_assert_float_eq(f.labels[i], (float)(i % 2));
		ck_assert_uint_eq(f.lines[i], i + 2);
	}
	ebm_table_finish(&f);
	ebm_table_finish(&m);
	unlink(path);
	free(path);
	free(text);
}
END_TEST

/*
 * Makes `text` the process's stdin through a pipe, written by a child that
 * sends the first `slow` bytes one write at a time so that the reader sees
 * short reads. Returns the saved stdin for restore_stdin().
 */
static int pipe_to_stdin(const char *text, size_t slow, pid_t *child)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		size_t len = strlen(text), i = 0;
		for (; i < len && i < slow; i++) {
			struct timespec ts = {0, 2000000};
			if (write(fds[1], text + i, 1) != 1) {
				_exit(1);
			}
			nanosleep(&ts, NULL);
		}
		while (i < len) {
			ssize_t w = write(fds[1], text + i, len - i);
			if (w <= 0) {
				_exit(1);
			}
			i += (size_t)w;
		}
		_exit(0);
	}
	close(fds[1]);
	int saved = dup(STDIN_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
	close(fds[0]);
	*child = pid;
	return saved;
}

/* Puts the saved stdin back and reaps the writer; true if it wrote all. */
static bool restore_stdin(int saved, pid_t child)
{
	int status;
	ck_assert_int_eq(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

START_TEST(test_stdin)
{
	/* The BOM and the first names arrive a byte at a time. */
	pid_t child;
	int saved = pipe_to_stdin("\xef\xbb\xbf\"x\",y\r\n1,2\r\n3,\"4\"\r\n", 12,
			&child);
	struct ebm_table t;
	struct ebm_error err;
	enum ebm_status st = ebm_csv_read_table("-", NULL, false, &t, &err);
	bool wrote = restore_stdin(saved, child);
	ck_assert_msg(st == EBM_STATUS_OK, "%s", err.message);
	ck_assert_uint_eq(t.n_rows, 2);
	ck_assert_uint_eq(t.n_cols, 2);
	ck_assert_str_eq(t.names[0], "x");
	ck_assert_str_eq(t.names[1], "y");
	float x = t.data[3];
	ebm_table_finish(&t);
	ck_assert_float_eq(x, 4.0f);
	ck_assert(wrote);

	/* Messages call it <stdin>; stdin stays open after the reader. */
	saved = pipe_to_stdin("a\n1\nx\n", 0, &child);
	st = ebm_csv_read_table("-", NULL, false, &t, &err);
	int still_open = fcntl(STDIN_FILENO, F_GETFD);
	wrote = restore_stdin(saved, child);
	ck_assert_int_ne(still_open, -1);
	check_error(&err, st, EBM_STATUS_FORMAT,
			"<stdin>:3:1 (column 'a'): expected a number, got 'x'", 3, 1);
	ck_assert(wrote);
}
END_TEST

/* ---- robustness --------------------------------------------------------- */

/*
 * Random edits of a valid file never crash, and every outcome is either a
 * table of finite values or a located message about this input. (Run under
 * the sanitizers and valgrind for memory errors.)
 */
START_TEST(test_mutations)
{
	static const char base[] =
		"\xef\xbb\xbf" "f0,\"f 1\",label\r\n1.5,-2e3,0\r\n\"3\",4,1\n5,.5,0\n";
	static const char alphabet[] = ",\"\r\n0.1e-+ nax\xef\xbb\xbf";
	uint64_t s = 0x9e3779b97f4a7c15u;
	char buf[128];
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = sizeof(base) - 1;
		memcpy(buf, base, len);
		int edits = 1 + iter % 4;
		for (int e = 0; e < edits; e++) {
			s = s * 6364136223846793005u + 1442695040888963407u;
			size_t at = (size_t)(s >> 33) % (len + 1);
			char ch = alphabet[(s >> 20) % (sizeof(alphabet) - 1)];
			switch ((s >> 12) % 3) {
			case 0: /* replace */
				if (at < len) {
					buf[at] = ch;
				}
				break;
			case 1: /* insert */
				if (len + 1 < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = ch;
					len++;
				}
				break;
			default: /* delete */
				if (at < len) {
					memmove(buf + at, buf + at + 1, len - at - 1);
					len--;
				}
				break;
			}
		}
		struct ebm_table t;
		struct ebm_error err;
		enum ebm_status st = ebm_csv_read_table_buffer(buf, len, "m.csv",
				"label", iter % 2 == 0, &t, &err);
		if (st == EBM_STATUS_OK) {
			ck_assert_uint_gt(t.n_rows, 0);
			ck_assert_uint_gt(t.n_cols, 0);
			for (size_t i = 0; i < t.n_rows * t.n_cols; i++) {
				ck_assert(isfinite(t.data[i]));
			}
			ebm_table_finish(&t);
		} else {
			ck_assert_int_eq(st, EBM_STATUS_FORMAT);
			ck_assert_int_eq(err.code, st);
			ck_assert_msg(strncmp(err.message, "m.csv", 5) == 0,
					"%s", err.message);
			ck_assert_ptr_null(t.data);
		}
	}
}
END_TEST

static Suite *csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_simple);
	tcase_add_test(tc, test_crlf);
	tcase_add_test(tc, test_no_trailing_newline);
	tcase_add_test(tc, test_bom);
	tcase_add_test(tc, test_quoted);
	tcase_add_test(tc, test_number_forms);
	tcase_add_test(tc, test_find_many_columns);
	tcase_add_test(tc, test_blank_lines_at_end);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_test(tc, test_label_extraction);
	tcase_add_test(tc, test_table_growth);
	tcase_add_test(tc, test_label_errors);
	tcase_add_test(tc, test_header_only);
	tcase_add_test(tc, test_invalid_arguments);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_error_not_a_number);
	tcase_add_test(tc, test_error_long_value_cut);
	tcase_add_test(tc, test_error_empty_cell);
	tcase_add_test(tc, test_empty_cell_missing);
	tcase_add_test(tc, test_error_ragged);
	tcase_add_test(tc, test_error_blank_line_in_middle);
	tcase_add_test(tc, test_error_header);
	tcase_add_test(tc, test_error_empty_file);
	tcase_add_test(tc, test_error_overflow);
	tcase_add_test(tc, test_error_nonfinite);
	tcase_add_test(tc, test_error_unterminated);
	tcase_add_test(tc, test_error_offsets);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_limit_columns);
	tcase_add_test(tc, test_limit_field);
	tcase_add_test(tc, test_limit_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_test(tc, test_real_file);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_buffer_boundaries);
	tcase_add_test(tc, test_stdin);
	tcase_add_test(tc, test_mutations);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(csv_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
