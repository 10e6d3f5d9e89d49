/*
 * csv.h — streaming reader for the numeric CSV files of ebmd-train.
 *
 * Format accepted (RFC 4180 with a few allowances):
 *   - a header row of column names is required; names are non-empty, unique,
 *     valid UTF-8 without NUL bytes, at most EBM_CSV_MAX_NAME bytes, and
 *     there are at most EBM_CSV_MAX_COLUMNS of them;
 *   - records end in LF or CRLF; the last one may lack a newline; a UTF-8
 *     byte order mark at the very start is skipped;
 *   - a field starting with '"' is quoted: it runs to the next lone '"',
 *     "" inside it stands for one '"', and it may hold ',' and newlines; the
 *     closing quote must be followed by ',' or the end of the record. A '"'
 *     elsewhere in an unquoted field is an ordinary character;
 *   - every data cell is a finite decimal number (strtod syntax in the "C"
 *     locale, spaces and tabs around it allowed) that fits a 32-bit float;
 *     empty cells (unless read with the _missing functions below),
 *     nan/inf in any spelling and hex floats are rejected;
 *   - every data row has exactly as many fields as the header; a blank line
 *     counts as a row of zero fields, except that blank lines at the very
 *     end of the input are ignored;
 *   - a field is at most EBM_CSV_MAX_FIELD bytes.
 *
 * Errors come back as an enum ebm_status and a struct ebm_error whose
 * message names the origin (the path, "<stdin>" for "-", or the name given
 * for a buffer), the 1-based line of the record and the 1-based column
 * (field number), e.g.
 *   data.csv:12:3 (column 'f2'): expected a number, got 'abc'
 * err->line and err->column repeat the location (0 when the message has
 * none; for header problems err->column is the offending column even when
 * the message words it differently) and err->offset is the byte offset of
 * the field or record at fault. EBM_STATUS_FORMAT is used for malformed
 * content, EBM_STATUS_IO for open/read failures (err->sys_errno set),
 * EBM_STATUS_LIMIT when a limit above is exceeded, EBM_STATUS_NOMEM when an
 * allocation fails and EBM_STATUS_INVALID_ARGUMENT for caller mistakes.
 *
 * The reader holds no global state and never prints. One reader must not
 * be used from two threads at once; distinct readers are independent.
 * Input is read through a fixed-size buffer, so files of any length stream
 * (ebm_csv_read_table of course keeps the whole table in memory).
 */
#ifndef EBM_CSV_CSV_H
#define EBM_CSV_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ebm/ebm.h"

/* Largest number of columns in the header. */
#define EBM_CSV_MAX_COLUMNS 65536
/* Largest field, in bytes, quotes excluded. */
#define EBM_CSV_MAX_FIELD ((size_t)1 << 20)
/* Largest column name, in bytes. */
#define EBM_CSV_MAX_NAME 256

/* A streaming reader; opaque. */
struct ebm_csv;

/*
 * Opens path ("-" means standard input, which is read but not closed) and
 * reads its header row. On success *out is a new reader, to be released
 * with ebm_csv_close(). On failure *out is NULL and err says why: a file
 * that cannot be opened gives EBM_STATUS_IO and
 * "cannot open 'x.csv': No such file or directory"; an empty input gives
 * "x.csv: no header row (file is empty)".
 */
enum ebm_status ebm_csv_open(const char *path, struct ebm_csv **out,
		struct ebm_error *err);

/*
 * As ebm_csv_open, reading data[0..size) instead of a file (for tests and
 * fuzzing). The bytes are not copied: data must stay valid and unchanged
 * until ebm_csv_close(). origin names the input in messages (copied;
 * NULL means "<buffer>"). data may be NULL when size is 0.
 */
enum ebm_status ebm_csv_open_buffer(const char *data, size_t size,
		const char *origin, struct ebm_csv **out, struct ebm_error *err);

/* Closes the file (unless it is stdin) and frees c. NULL is ignored. */
void ebm_csv_close(struct ebm_csv *c);

/* Number of columns in the header (at least 1). */
size_t ebm_csv_n_columns(const struct ebm_csv *c);

/*
 * Name of column i (0-based, file order), or NULL if i is out of range.
 * Borrowed: valid until ebm_csv_close(c).
 */
const char *ebm_csv_column_name(const struct ebm_csv *c, size_t i);

/* 0-based index of the column called name (exact, byte-wise), or -1. */
long ebm_csv_find_column(const struct ebm_csv *c, const char *name);

/*
 * Reads the next data row into values[0..ebm_csv_n_columns(c)) and sets
 * *got_row = true. At the end of the input returns EBM_STATUS_OK with
 * *got_row = false (and keeps doing so). values is only meaningful when a
 * row was read.
 *
 * Errors stop the reader: once a call has failed, every later call fails
 * again with the same status and message. When a row has the wrong number
 * of fields that is reported ("data.csv:7: expected 7 fields, got 6") in
 * preference to a bad cell in the same row.
 */
enum ebm_status ebm_csv_next(struct ebm_csv *c, float *values, bool *got_row,
		struct ebm_error *err);

/*
 * 1-based line on which the last row returned by ebm_csv_next() starts; 1
 * (the header) before any row has been read.
 */
uint64_t ebm_csv_line(const struct ebm_csv *c);

/* ---- whole tables -------------------------------------------------------- */

/*
 * A CSV file held in memory. Every pointer is owned by the table and freed
 * by ebm_table_finish().
 */
struct ebm_table {
	size_t n_rows, n_cols;   /* n_cols = feature columns (label excluded) */
	char **names;            /* n_cols owned names, in file order */
	float *data;             /* n_rows x n_cols row-major */
	float *labels;           /* n_rows, or NULL when there is no label column */
	uint64_t *lines;         /* n_rows: file line of each row (for messages) */
};

/*
 * Reads all of path ("-" is stdin) into *out. Every column is a feature
 * except the one named label_column (NULL: none), whose values must be 0
 * or 1 ("data.csv:4:7 (column 'label'): label must be 0 or 1, got 2") and
 * go to out->labels. When that column is absent out->labels is NULL, or,
 * if label_required, the call fails with
 * "data.csv:1: label column 'label' not found". An input with no data rows
 * ("data.csv: no data rows") or no feature column is an error too.
 *
 * On success the caller owns *out and releases it with ebm_table_finish().
 * On failure *out is zeroed and nothing stays allocated.
 */
enum ebm_status ebm_csv_read_table(const char *path, const char *label_column,
		bool label_required, struct ebm_table *out, struct ebm_error *err);

/* As ebm_csv_read_table, from data[0..size); see ebm_csv_open_buffer(). */
enum ebm_status ebm_csv_read_table_buffer(const char *data, size_t size,
		const char *origin, const char *label_column, bool label_required,
		struct ebm_table *out, struct ebm_error *err);

/*
 * As ebm_csv_read_table and ebm_csv_read_table_buffer, except that an
 * empty feature cell (nothing but spaces and tabs) is read as NaN, a
 * missing value, for `ebmd-train score` and `eval` (API.md section 6);
 * an empty label cell is still an error.
 */
enum ebm_status ebm_csv_read_table_missing(const char *path,
		const char *label_column, bool label_required, struct ebm_table *out,
		struct ebm_error *err);
enum ebm_status ebm_csv_read_table_buffer_missing(const char *data,
		size_t size, const char *origin, const char *label_column,
		bool label_required, struct ebm_table *out, struct ebm_error *err);

/* Frees everything t owns and zeroes it. Safe on a zeroed table and NULL. */
void ebm_table_finish(struct ebm_table *t);

#endif
