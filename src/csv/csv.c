/*
 * csv.c — the streaming CSV reader described in csv.h.
 *
 * Layers, bottom up: a byte source (a file descriptor behind a fixed-size
 * buffer, or a caller's memory block), a field scanner that undoes RFC 4180
 * quoting into one reusable field buffer, the header and row readers, and
 * the whole-table loader used by ebmd-train. What the numbers mean is left
 * to the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv/csv.h"
#include "util/util.h"

/* Bytes read from a file at a time. */
#define READ_SIZE ((size_t)64 * 1024)
/* Initial size of the field buffer; it doubles up to EBM_CSV_MAX_FIELD + 1. */
#define FIELD_INITIAL 256
/* Bytes of a cell's text quoted in a message before it is cut with "...". */
#define SHOW_MAX 64
/* Output room for show() of max bytes: 4 per byte (\xNN), a UTF-8 sequence
 * that starts just before the cut, the "..." and the NUL. */
#define SHOW_SIZE(max) (4 * ((max) + 4) + 4)
/* The largest magnitude accepted, as the task states it: FLT_MAX rounded to
 * 8 significant digits. Anything between FLT_MAX and this rounds to FLT_MAX. */
#define FLOAT_LIMIT 3.4028235e38

/* What peek()/get() return instead of a byte. */
enum {
	CH_END = -1,
	CH_ERR = -2,
};

/* What ended a field. */
enum term {
	TERM_COMMA,
	TERM_NEWLINE,
	TERM_END,
};

struct ebm_csv {
	char *origin;            /* for messages */

	/* Byte source: data[pos..len) is unread; data[0] is at byte `base`. */
	int fd;                  /* -1 when reading a caller's buffer */
	bool close_fd;           /* false for stdin */
	unsigned char *rbuf;     /* READ_SIZE bytes, files only */
	const unsigned char *data;
	size_t len, pos;
	uint64_t base;
	bool eof;
	int read_errno;          /* sticky once a read failed */
	uint64_t line;           /* physical line of data[pos], 1-based */

	/* The field being scanned, NUL-terminated; len < cap always. */
	char *field;
	size_t field_len, field_cap;
	uint64_t field_line, field_col, field_offset;

	/* Header. */
	char **names;
	size_t n_columns;
	uint32_t *order;         /* names sorted (util/names.c), for lookups
	                          * and the duplicate check */

	uint64_t row_line;
	bool empty_nan;          /* an empty cell is NaN (missing), not an error */
	bool done;
	enum ebm_status status;  /* first error; then every call repeats it */
	struct ebm_error error;
};

/* ---- messages ----------------------------------------------------------- */

/*
 * Copies s[0..len) into out for a message: control characters and bytes
 * that are not UTF-8 become \n, \r, \t or \xNN, and input after `max` bytes
 * is replaced by "...". out must hold SHOW_SIZE(max) bytes.
 */
static void show(const char *s, size_t len, size_t max, char *out, size_t size)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;
	while (i < len && o + 16 < size) {
		if (i >= max) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		size_t n = ebm_utf8_decode(u + i, len - i, NULL);
		if (n == 0 || u[i] < 0x20 || u[i] == 0x7f) {
			if (u[i] == '\n') {
				memcpy(out + o, "\\n", 2);
				o += 2;
			} else if (u[i] == '\r') {
				memcpy(out + o, "\\r", 2);
				o += 2;
			} else if (u[i] == '\t') {
				memcpy(out + o, "\\t", 2);
				o += 2;
			} else {
				static const char hex[] = "0123456789abcdef";
				out[o++] = '\\';
				out[o++] = 'x';
				out[o++] = hex[u[i] >> 4];
				out[o++] = hex[u[i] & 0xf];
			}
			i++;
		} else {
			memcpy(out + o, u + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
}

/*
 * Fills e (may be NULL) with
 * "origin[:line[:column]][ (column 'colname')]: <message>"; line and column
 * are left out when 0, colname when NULL. Returns code.
 */
static enum ebm_status vloc_error(struct ebm_error *e, enum ebm_status code,
		const char *origin, uint64_t line, uint64_t column,
		const char *colname, uint64_t offset, const char *fmt, va_list ap)
{
	char body[sizeof(e->message)];
	char where[48] = "";
	char name[SHOW_SIZE(EBM_CSV_MAX_NAME)];

	vsnprintf(body, sizeof(body), fmt, ap);
	if (line != 0 && column != 0) {
		snprintf(where, sizeof(where), ":%" PRIu64 ":%" PRIu64, line, column);
	} else if (line != 0) {
		snprintf(where, sizeof(where), ":%" PRIu64, line);
	}
	if (colname != NULL) {
		show(colname, strlen(colname), EBM_CSV_MAX_NAME, name, sizeof(name));
		ebm_error_set(e, code, "%s%s (column '%s'): %s", origin, where, name,
				body);
	} else {
		ebm_error_set(e, code, "%s%s: %s", origin, where, body);
	}
	if (e != NULL) {
		e->line = line;
		e->column = column;
		e->offset = offset;
	}
	return code;
}

static enum ebm_status loc_error(struct ebm_error *e, enum ebm_status code,
		const char *origin, uint64_t line, uint64_t column,
		const char *colname, uint64_t offset, const char *fmt, ...)
		__attribute__((format(printf, 8, 9)));

static enum ebm_status loc_error(struct ebm_error *e, enum ebm_status code,
		const char *origin, uint64_t line, uint64_t column,
		const char *colname, uint64_t offset, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vloc_error(e, code, origin, line, column, colname, offset, fmt, ap);
	va_end(ap);
	return code;
}

/* Records the reader's (sticky) error. Always returns false. */
static bool fail(struct ebm_csv *c, enum ebm_status code, uint64_t line,
		uint64_t column, const char *colname, uint64_t offset,
		const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static bool fail(struct ebm_csv *c, enum ebm_status code, uint64_t line,
		uint64_t column, const char *colname, uint64_t offset,
		const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vloc_error(&c->error, code, c->origin, line, column, colname, offset,
			fmt, ap);
	va_end(ap);
	c->status = code;
	return false;
}

static bool read_failed(struct ebm_csv *c)
{
	c->status = ebm_error_set_errno(&c->error, c->read_errno,
			"cannot read '%s'", c->origin);
	return false;
}

/* Copies the reader's error to err (if any) and returns its status. */
static enum ebm_status report(const struct ebm_csv *c, struct ebm_error *err)
{
	if (err != NULL) {
		*err = c->error;
	}
	return c->status;
}

/* ---- byte source -------------------------------------------------------- */

/*
 * Appends more input after the unread bytes, moving them to the start of
 * the read buffer. Returns 1 when bytes were added, CH_END at the end of
 * the input and CH_ERR when reading failed.
 */
static int fill(struct ebm_csv *c)
{
	if (c->read_errno != 0) {
		return CH_ERR;
	}
	if (c->eof) {
		return CH_END;
	}
	if (c->fd < 0) {
		c->eof = true;
		return CH_END;
	}
	size_t keep = c->len - c->pos;
	memmove(c->rbuf, c->data + c->pos, keep);
	c->base += c->pos;
	c->data = c->rbuf;
	c->len = keep;
	c->pos = 0;
	for (;;) {
		ssize_t r = read(c->fd, c->rbuf + keep, READ_SIZE - keep);
		if (r > 0) {
			c->len += (size_t)r;
			return 1;
		}
		if (r == 0) {
			c->eof = true;
			return CH_END;
		}
		if (errno != EINTR) {
			c->read_errno = errno;
			return CH_ERR;
		}
	}
}

static inline int peek(struct ebm_csv *c)
{
	while (c->pos == c->len) {
		int r = fill(c);
		if (r < 0) {
			return r;
		}
	}
	return c->data[c->pos];
}

static inline int get(struct ebm_csv *c)
{
	int ch = peek(c);
	if (ch >= 0) {
		c->pos++;
	}
	return ch;
}

static inline uint64_t offset_now(const struct ebm_csv *c)
{
	return c->base + c->pos;
}

/* Skips a UTF-8 byte order mark at the start of the input. */
static bool skip_bom(struct ebm_csv *c)
{
	/* A pipe may deliver the three bytes in separate reads. */
	while (c->len - c->pos < 3) {
		int r = fill(c);
		if (r == CH_ERR) {
			return read_failed(c);
		}
		if (r == CH_END) {
			break;
		}
	}
	if (c->len - c->pos >= 3
			&& memcmp(c->data + c->pos, "\xef\xbb\xbf", 3) == 0) {
		c->pos += 3;
	}
	return true;
}

/* ---- fields ------------------------------------------------------------- */

static bool field_push(struct ebm_csv *c, int ch)
{
	if (c->field_len == EBM_CSV_MAX_FIELD) {
		return fail(c, EBM_STATUS_LIMIT, c->field_line, c->field_col, NULL,
				c->field_offset, "field is longer than %zu bytes",
				EBM_CSV_MAX_FIELD);
	}
	if (c->field_len + 1 == c->field_cap) {
		size_t cap = c->field_cap * 2;
		if (cap > EBM_CSV_MAX_FIELD + 1) {
			cap = EBM_CSV_MAX_FIELD + 1;
		}
		char *p = realloc(c->field, cap);
		if (p == NULL) {
			return fail(c, EBM_STATUS_NOMEM, c->field_line, c->field_col,
					NULL, c->field_offset,
					"out of memory growing a field to %zu bytes", cap);
		}
		c->field = p;
		c->field_cap = cap;
	}
	c->field[c->field_len++] = (char)ch;
	return true;
}

/*
 * Having just read '\r': consumes the '\n' of a CRLF and says whether there
 * was one. A lone '\r' is not a line end.
 */
static bool take_lf(struct ebm_csv *c, bool *crlf)
{
	int ch = peek(c);
	if (ch == CH_ERR) {
		return read_failed(c);
	}
	*crlf = ch == '\n';
	if (*crlf) {
		c->pos++;
		c->line++;
	}
	return true;
}

/* After a closing quote: the field must end here. */
static bool end_quoted(struct ebm_csv *c, enum term *term)
{
	int ch = get(c);
	bool crlf = false;
	switch (ch) {
	case ',':
		*term = TERM_COMMA;
		return true;
	case '\n':
		c->line++;
		*term = TERM_NEWLINE;
		return true;
	case CH_END:
		*term = TERM_END;
		return true;
	case CH_ERR:
		return read_failed(c);
	case '\r':
		if (!take_lf(c, &crlf)) {
			return false;
		}
		if (crlf) {
			*term = TERM_NEWLINE;
			return true;
		}
		break;
	default:
		break;
	}
	char byte = (char)ch;
	char shown[SHOW_SIZE(1)];
	show(&byte, 1, 1, shown, sizeof(shown));
	return fail(c, EBM_STATUS_FORMAT, c->line, c->field_col, NULL,
			offset_now(c) - 1,
			"expected ',' or end of line after closing quote, got '%s'",
			shown);
}

/*
 * Scans field number `col` (1-based) of the current record into c->field
 * and says what ended it. *quoted tells "" apart from an empty unquoted
 * field, which at the start of a record means a blank line.
 */
static bool read_field(struct ebm_csv *c, uint64_t col, enum term *term,
		bool *quoted)
{
	c->field_len = 0;
	c->field_line = c->line;
	c->field_col = col;
	c->field_offset = offset_now(c);
	*quoted = false;

	int ch = peek(c);
	if (ch == CH_ERR) {
		return read_failed(c);
	}
	if (ch == '"') {
		c->pos++;
		*quoted = true;
		for (;;) {
			ch = get(c);
			if (ch == CH_ERR) {
				return read_failed(c);
			}
			if (ch == CH_END) {
				return fail(c, EBM_STATUS_FORMAT, c->field_line, col, NULL,
						c->field_offset, "unterminated quoted field");
			}
			if (ch == '"') {
				int next = peek(c);
				if (next == CH_ERR) {
					return read_failed(c);
				}
				if (next != '"') {
					break;
				}
				c->pos++;
			} else if (ch == '\n') {
				c->line++;
			}
			if (!field_push(c, ch)) {
				return false;
			}
		}
		c->field[c->field_len] = '\0';
		return end_quoted(c, term);
	}

	for (;;) {
		bool crlf;
		ch = get(c);
		switch (ch) {
		case ',':
			*term = TERM_COMMA;
			goto done;
		case '\n':
			c->line++;
			*term = TERM_NEWLINE;
			goto done;
		case CH_END:
			*term = TERM_END;
			goto done;
		case CH_ERR:
			return read_failed(c);
		case '\r':
			if (!take_lf(c, &crlf)) {
				return false;
			}
			if (crlf) {
				*term = TERM_NEWLINE;
				goto done;
			}
			break;
		default:
			break;
		}
		if (!field_push(c, ch)) {
			return false;
		}
	}
done:
	c->field[c->field_len] = '\0';
	return true;
}

/* ---- header ------------------------------------------------------------- */

/* Checks the current field as column name number col and appends it. */
static bool add_name(struct ebm_csv *c, uint64_t col, size_t *cap)
{
	if (c->n_columns == EBM_CSV_MAX_COLUMNS) {
		return fail(c, EBM_STATUS_LIMIT, 1, 0, NULL, c->field_offset,
				"more than %d columns", EBM_CSV_MAX_COLUMNS);
	}
	/* err->column is set for all of these, even where the message words
	 * the column differently. */
	struct ebm_error *e = &c->error;
	size_t len = c->field_len;
	if (len == 0) {
		fail(c, EBM_STATUS_FORMAT, 1, 0, NULL, c->field_offset,
				"empty column name in column %" PRIu64, col);
		e->column = col;
		return false;
	}
	if (len > EBM_CSV_MAX_NAME) {
		return fail(c, EBM_STATUS_LIMIT, c->field_line, col, NULL,
				c->field_offset, "column name is longer than %d bytes",
				EBM_CSV_MAX_NAME);
	}
	if (memchr(c->field, '\0', len) != NULL) {
		return fail(c, EBM_STATUS_FORMAT, c->field_line, col, NULL,
				c->field_offset, "column name contains a NUL byte");
	}
	if (!ebm_utf8_valid(c->field, len)) {
		return fail(c, EBM_STATUS_FORMAT, c->field_line, col, NULL,
				c->field_offset, "column name is not valid UTF-8");
	}
	if (c->n_columns == *cap) {
		size_t n = *cap == 0 ? 16 : *cap * 2;
		char **p = realloc(c->names, n * sizeof(*p));
		if (p == NULL) {
			return fail(c, EBM_STATUS_NOMEM, 1, 0, NULL, UINT64_MAX,
					"out of memory reading %zu column names", n);
		}
		c->names = p;
		*cap = n;
	}
	char *name = malloc(len + 1);
	if (name == NULL) {
		return fail(c, EBM_STATUS_NOMEM, 1, 0, NULL, UINT64_MAX,
				"out of memory reading column names");
	}
	memcpy(name, c->field, len + 1);
	c->names[c->n_columns++] = name;
	return true;
}

/* Sorts the names for lookups and rejects the first repeated one. */
static bool index_names(struct ebm_csv *c)
{
	size_t n = c->n_columns;
	const char *const *names = (const char *const *)c->names;
	c->order = ebm_names_sort(names, n);
	if (c->order == NULL) {
		return fail(c, EBM_STATUS_NOMEM, 1, 0, NULL, UINT64_MAX,
				"out of memory indexing %zu column names", n);
	}
	/* Report the repeat that comes first in the file. */
	size_t dup = ebm_names_duplicate(names, c->order, n, NULL);
	if (dup != SIZE_MAX) {
		char shown[SHOW_SIZE(EBM_CSV_MAX_NAME)];
		show(c->names[dup], strlen(c->names[dup]), EBM_CSV_MAX_NAME, shown,
				sizeof(shown));
		fail(c, EBM_STATUS_FORMAT, 1, 0, NULL, UINT64_MAX,
				"duplicate column name '%s'", shown);
		c->error.column = dup + 1;
		return false;
	}
	return true;
}

static bool read_header(struct ebm_csv *c)
{
	if (!skip_bom(c)) {
		return false;
	}
	int ch = peek(c);
	if (ch == CH_ERR) {
		return read_failed(c);
	}
	if (ch == CH_END) {
		return fail(c, EBM_STATUS_FORMAT, 0, 0, NULL, UINT64_MAX,
				"no header row (file is empty)");
	}
	size_t cap = 0;
	for (uint64_t col = 1;; col++) {
		enum term term;
		bool quoted;
		if (!read_field(c, col, &term, &quoted)) {
			return false;
		}
		if (col == 1 && !quoted && c->field_len == 0 && term != TERM_COMMA) {
			return fail(c, EBM_STATUS_FORMAT, 1, 0, NULL, c->field_offset,
					"header row is blank");
		}
		if (!add_name(c, col, &cap)) {
			return false;
		}
		if (term != TERM_COMMA) {
			break;
		}
	}
	return index_names(c);
}

/* ---- opening and closing ------------------------------------------------ */

static struct ebm_csv *reader_new(const char *origin)
{
	struct ebm_csv *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return NULL;
	}
	c->fd = -1;
	c->line = 1;
	c->row_line = 1;
	c->status = EBM_STATUS_OK;
	ebm_error_clear(&c->error);
	size_t n = strlen(origin) + 1;
	c->origin = malloc(n);
	c->field_cap = FIELD_INITIAL;
	c->field = malloc(c->field_cap);
	if (c->origin == NULL || c->field == NULL) {
		free(c->origin);
		free(c->field);
		free(c);
		return NULL;
	}
	memcpy(c->origin, origin, n);
	return c;
}

/* Reads the header of a new reader and hands it out, or frees it. */
static enum ebm_status finish_open(struct ebm_csv *c, struct ebm_csv **out,
		struct ebm_error *err)
{
	if (!read_header(c)) {
		enum ebm_status status = report(c, err);
		ebm_csv_close(c);
		return status;
	}
	*out = c;
	return EBM_STATUS_OK;
}

enum ebm_status ebm_csv_open(const char *path, struct ebm_csv **out,
		struct ebm_error *err)
{
	if (out == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"ebm_csv_open: out is NULL");
	}
	*out = NULL;
	if (path == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"ebm_csv_open: path is NULL");
	}
	bool is_stdin = strcmp(path, "-") == 0;
	struct ebm_csv *c = reader_new(is_stdin ? "<stdin>" : path);
	if (c == NULL) {
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory opening '%s'", path);
	}
	c->rbuf = malloc(READ_SIZE);
	if (c->rbuf == NULL) {
		ebm_csv_close(c);
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory opening '%s'", path);
	}
	c->data = c->rbuf;
	if (is_stdin) {
		c->fd = STDIN_FILENO;
	} else {
		c->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (c->fd < 0) {
			int saved = errno;
			ebm_csv_close(c);
			return ebm_error_set_errno(err, saved, "cannot open '%s'", path);
		}
		c->close_fd = true;
	}
	return finish_open(c, out, err);
}

enum ebm_status ebm_csv_open_buffer(const char *data, size_t size,
		const char *origin, struct ebm_csv **out, struct ebm_error *err)
{
	if (out == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"ebm_csv_open_buffer: out is NULL");
	}
	*out = NULL;
	if (data == NULL && size != 0) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"ebm_csv_open_buffer: data is NULL");
	}
	struct ebm_csv *c = reader_new(origin != NULL ? origin : "<buffer>");
	if (c == NULL) {
		return ebm_error_set(err, EBM_STATUS_NOMEM,
				"out of memory opening a CSV buffer");
	}
	c->data = (const unsigned char *)data;
	c->len = size;
	c->eof = true;
	return finish_open(c, out, err);
}

void ebm_csv_close(struct ebm_csv *c)
{
	if (c == NULL) {
		return;
	}
	if (c->close_fd) {
		close(c->fd);
	}
	for (size_t i = 0; i < c->n_columns; i++) {
		free(c->names[i]);
	}
	free(c->names);
	free(c->order);
	free(c->field);
	free(c->rbuf);
	free(c->origin);
	free(c);
}

size_t ebm_csv_n_columns(const struct ebm_csv *c)
{
	return c->n_columns;
}

const char *ebm_csv_column_name(const struct ebm_csv *c, size_t i)
{
	return i < c->n_columns ? c->names[i] : NULL;
}

long ebm_csv_find_column(const struct ebm_csv *c, const char *name)
{
	return ebm_names_find((const char *const *)c->names, c->order,
			c->n_columns, name);
}

uint64_t ebm_csv_line(const struct ebm_csv *c)
{
	return c->row_line;
}

/* ---- rows --------------------------------------------------------------- */

enum number {
	NUMBER_OK,
	NUMBER_BAD,
	NUMBER_NONFINITE,
	NUMBER_RANGE,
};

/*
 * Parses s[0..len) (no surrounding blanks, len > 0, s[len] writable) as a
 * finite float. strtod alone would also take leading white space of any
 * kind, hex floats, and nan/inf, so those are sorted out first.
 */
static enum number parse_number(char *s, size_t len, float *out)
{
	s[len] = '\0';
	const char *p = s;
	if (*p == '+' || *p == '-') {
		p++;
	}
	bool word = *p == 'i' || *p == 'I' || *p == 'n' || *p == 'N';
	if (!word && !(*p >= '0' && *p <= '9') && *p != '.') {
		return NUMBER_BAD;
	}
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		return NUMBER_BAD;
	}
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	int saved = errno;
	if (end != s + len) {
		return NUMBER_BAD;
	}
	if (word || !isfinite(d)) {
		/* nan(...), inf, infinity: all parsed by strtod, all refused.
		 * An overflowing literal sets ERANGE and is a range error. */
		if (word || saved != ERANGE) {
			return NUMBER_NONFINITE;
		}
		return NUMBER_RANGE;
	}
	/* ERANGE with a small result is underflow: 0 or a subnormal is fine. */
	if (fabs(d) > FLOAT_LIMIT) {
		return NUMBER_RANGE;
	}
	/* Between FLT_MAX and FLOAT_LIMIT: round down explicitly rather than
	 * lean on the out-of-range conversion. */
	if (d > FLT_MAX) {
		*out = FLT_MAX;
	} else if (d < -FLT_MAX) {
		*out = -FLT_MAX;
	} else {
		*out = (float)d;
	}
	return NUMBER_OK;
}

/*
 * Parses the current field as the cell of column index i. A failure is
 * written to *e (not to the reader) so that a wrong field count, found
 * later in the row, can take precedence.
 */
static bool parse_cell(struct ebm_csv *c, size_t i, float *out,
		struct ebm_error *e)
{
	char *s = c->field;
	size_t len = c->field_len;
	while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
		len--;
	}
	const char *name = c->names[i];
	if (len == 0 && c->empty_nan) {
		*out = NAN;
		return true;
	}
	if (len == 0) {
		loc_error(e, EBM_STATUS_FORMAT, c->origin, c->field_line, i + 1,
				name, c->field_offset,
				"expected a number, got an empty cell");
		return false;
	}
	char shown[SHOW_SIZE(SHOW_MAX)];
	show(s, len, SHOW_MAX, shown, sizeof(shown));
	switch (parse_number(s, len, out)) {
	case NUMBER_OK:
		return true;
	case NUMBER_BAD:
		loc_error(e, EBM_STATUS_FORMAT, c->origin, c->field_line, i + 1,
				name, c->field_offset, "expected a number, got '%s'",
				shown);
		return false;
	case NUMBER_NONFINITE:
		loc_error(e, EBM_STATUS_FORMAT, c->origin, c->field_line, i + 1,
				name, c->field_offset, "'%s' is not a finite number",
				shown);
		return false;
	case NUMBER_RANGE:
		loc_error(e, EBM_STATUS_FORMAT, c->origin, c->field_line, i + 1,
				name, c->field_offset,
				"value %s does not fit a 32-bit float", shown);
		return false;
	}
	return false;
}

static bool wrong_count(struct ebm_csv *c, uint64_t line, uint64_t offset,
		uint64_t got)
{
	return fail(c, EBM_STATUS_FORMAT, line, 0, NULL, offset,
			"expected %zu field%s, got %" PRIu64, c->n_columns,
			c->n_columns == 1 ? "" : "s", got);
}

/*
 * After a blank line: more blank lines up to the end of the input are
 * fine; anything else makes the first blank line a row of zero fields.
 */
static bool skip_blank_tail(struct ebm_csv *c, uint64_t line, uint64_t offset)
{
	for (;;) {
		bool crlf;
		int ch = peek(c);
		switch (ch) {
		case CH_ERR:
			return read_failed(c);
		case CH_END:
			c->done = true;
			return true;
		case '\n':
			c->pos++;
			c->line++;
			continue;
		case '\r':
			c->pos++;
			if (!take_lf(c, &crlf)) {
				return false;
			}
			if (crlf) {
				continue;
			}
			break;
		default:
			break;
		}
		return wrong_count(c, line, offset, 0);
	}
}

static bool read_row(struct ebm_csv *c, float *values, bool *got_row)
{
	uint64_t line = c->line;
	uint64_t offset = offset_now(c);
	struct ebm_error cell_error;
	bool cell_bad = false;
	uint64_t n = 0;
	for (;;) {
		enum term term;
		bool quoted;
		if (!read_field(c, n + 1, &term, &quoted)) {
			return false;
		}
		if (n == 0 && !quoted && c->field_len == 0 && term != TERM_COMMA) {
			if (term == TERM_END) {
				c->done = true;
				return true;
			}
			return skip_blank_tail(c, line, offset);
		}
		/* Fields past the header's count are still scanned, to report
		 * how many there are. */
		if (n < c->n_columns && !cell_bad) {
			cell_bad = !parse_cell(c, (size_t)n, &values[n], &cell_error);
		}
		n++;
		if (term != TERM_COMMA) {
			break;
		}
	}
	if (n != c->n_columns) {
		return wrong_count(c, line, offset, n);
	}
	if (cell_bad) {
		c->error = cell_error;
		c->status = cell_error.code;
		return false;
	}
	c->row_line = line;
	*got_row = true;
	return true;
}

enum ebm_status ebm_csv_next(struct ebm_csv *c, float *values, bool *got_row,
		struct ebm_error *err)
{
	if (got_row != NULL) {
		*got_row = false;
	}
	if (c == NULL || values == NULL || got_row == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"ebm_csv_next: NULL argument");
	}
	if (c->status == EBM_STATUS_OK && !c->done) {
		read_row(c, values, got_row);
	}
	if (c->status != EBM_STATUS_OK) {
		return report(c, err);
	}
	return EBM_STATUS_OK;
}

/* ---- whole tables ------------------------------------------------------- */

void ebm_table_finish(struct ebm_table *t)
{
	if (t == NULL) {
		return;
	}
	if (t->names != NULL) {
		for (size_t i = 0; i < t->n_cols; i++) {
			free(t->names[i]);
		}
	}
	free(t->names);
	free(t->data);
	free(t->labels);
	free(t->lines);
	memset(t, 0, sizeof(*t));
}

/* Doubles the row capacity of t (first to 16 rows). */
static enum ebm_status grow_table(struct ebm_table *t, size_t *cap,
		const struct ebm_csv *c, struct ebm_error *err)
{
	size_t rows, n_data, b_data, b_lines, b_labels;
	if (!ebm_mul_size(*cap == 0 ? 8 : *cap, 2, &rows)
			|| !ebm_mul_size(rows, t->n_cols, &n_data)
			|| !ebm_mul_size(n_data, sizeof(float), &b_data)
			|| !ebm_mul_size(rows, sizeof(uint64_t), &b_lines)
			|| !ebm_mul_size(rows, sizeof(float), &b_labels)) {
		return loc_error(err, EBM_STATUS_LIMIT, c->origin, c->row_line, 0,
				NULL, UINT64_MAX,
				"data set too large: %zu rows of %zu columns overflow "
				"size_t", *cap, t->n_cols);
	}
	float *data = realloc(t->data, b_data);
	if (data != NULL) {
		t->data = data;
	}
	uint64_t *lines = data == NULL ? NULL : realloc(t->lines, b_lines);
	if (lines != NULL) {
		t->lines = lines;
	}
	float *labels = NULL;
	if (lines != NULL && t->labels != NULL) {
		labels = realloc(t->labels, b_labels);
		if (labels != NULL) {
			t->labels = labels;
		}
	}
	if (data == NULL || lines == NULL
			|| (t->labels != NULL && labels == NULL)) {
		return loc_error(err, EBM_STATUS_NOMEM, c->origin, c->row_line, 0,
				NULL, UINT64_MAX, "out of memory after %zu rows",
				t->n_rows);
	}
	*cap = rows;
	return EBM_STATUS_OK;
}

static enum ebm_status read_table(struct ebm_csv *c, const char *label_column,
		bool label_required, struct ebm_table *out, struct ebm_error *err)
{
	struct ebm_table t = {0};
	float *row = NULL;
	enum ebm_status status;
	size_t n_all = c->n_columns;
	long label = label_column != NULL ? ebm_csv_find_column(c, label_column)
			: -1;

	if (label < 0 && label_required) {
		char shown[SHOW_SIZE(EBM_CSV_MAX_NAME)];
		show(label_column, strlen(label_column), EBM_CSV_MAX_NAME, shown,
				sizeof(shown));
		status = loc_error(err, EBM_STATUS_FORMAT, c->origin, 1, 0, NULL,
				UINT64_MAX, "label column '%s' not found", shown);
		goto out;
	}
	t.n_cols = n_all - (label >= 0 ? 1 : 0);
	if (t.n_cols == 0) {
		status = loc_error(err, EBM_STATUS_FORMAT, c->origin, 1, 0, NULL,
				UINT64_MAX, "no feature columns");
		goto out;
	}
	t.names = calloc(t.n_cols, sizeof(*t.names));
	row = ebm_alloc_array(n_all, sizeof(*row));
	if (label >= 0) {
		/* A one-row start, so that grow_table() keeps it in step. */
		t.labels = malloc(sizeof(*t.labels));
	}
	if (t.names == NULL || row == NULL || (label >= 0 && t.labels == NULL)) {
		status = ebm_error_set(err, EBM_STATUS_NOMEM,
				"%s: out of memory for %zu columns", c->origin, n_all);
		goto out;
	}
	for (size_t i = 0, j = 0; i < n_all; i++) {
		if ((long)i == label) {
			continue;
		}
		size_t len = strlen(c->names[i]) + 1;
		t.names[j] = malloc(len);
		if (t.names[j] == NULL) {
			status = ebm_error_set(err, EBM_STATUS_NOMEM,
					"%s: out of memory for column names", c->origin);
			goto out;
		}
		memcpy(t.names[j++], c->names[i], len);
	}

	size_t cap = 0;
	for (;;) {
		bool got_row;
		status = ebm_csv_next(c, row, &got_row, err);
		if (status != EBM_STATUS_OK) {
			goto out;
		}
		if (!got_row) {
			break;
		}
		if (t.n_rows == cap) {
			status = grow_table(&t, &cap, c, err);
			if (status != EBM_STATUS_OK) {
				goto out;
			}
		}
		float *dst = t.data + t.n_rows * t.n_cols;
		for (size_t i = 0; i < n_all; i++) {
			if ((long)i != label) {
				*dst++ = row[i];
			}
		}
		if (label >= 0) {
			float v = row[label];
			if (isnan(v)) {
				status = loc_error(err, EBM_STATUS_FORMAT, c->origin,
						c->row_line, (uint64_t)label + 1,
						c->names[label], UINT64_MAX,
						"label must be 0 or 1, got an empty cell");
				goto out;
			}
			if (v != 0.0f && v != 1.0f) {
				status = loc_error(err, EBM_STATUS_FORMAT, c->origin,
						c->row_line, (uint64_t)label + 1,
						c->names[label], UINT64_MAX,
						"label must be 0 or 1, got %g", (double)v);
				goto out;
			}
			t.labels[t.n_rows] = v;
		}
		t.lines[t.n_rows] = c->row_line;
		t.n_rows++;
	}
	if (t.n_rows == 0) {
		status = loc_error(err, EBM_STATUS_FORMAT, c->origin, 0, 0, NULL,
				UINT64_MAX, "no data rows");
		goto out;
	}
	*out = t;
	memset(&t, 0, sizeof(t));
	status = EBM_STATUS_OK;
out:
	free(row);
	ebm_table_finish(&t);
	return status;
}

static enum ebm_status read_path(const char *path, const char *label_column,
		bool label_required, bool missing, struct ebm_table *out,
		struct ebm_error *err);

enum ebm_status ebm_csv_read_table(const char *path, const char *label_column,
		bool label_required, struct ebm_table *out, struct ebm_error *err)
{
	return read_path(path, label_column, label_required, false, out, err);
}

enum ebm_status ebm_csv_read_table_missing(const char *path,
		const char *label_column, bool label_required, struct ebm_table *out,
		struct ebm_error *err)
{
	return read_path(path, label_column, label_required, true, out, err);
}

static enum ebm_status read_path(const char *path, const char *label_column,
		bool label_required, bool missing, struct ebm_table *out,
		struct ebm_error *err)
{
	if (out == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"ebm_csv_read_table: out is NULL");
	}
	memset(out, 0, sizeof(*out));
	if (label_required && label_column == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"ebm_csv_read_table: a label is required but none named");
	}
	struct ebm_csv *c;
	enum ebm_status status = ebm_csv_open(path, &c, err);
	if (status != EBM_STATUS_OK) {
		return status;
	}
	c->empty_nan = missing;
	status = read_table(c, label_column, label_required, out, err);
	ebm_csv_close(c);
	return status;
}

static enum ebm_status read_buffer(const char *data, size_t size,
		const char *origin, const char *label_column, bool label_required,
		bool missing, struct ebm_table *out, struct ebm_error *err);

enum ebm_status ebm_csv_read_table_buffer(const char *data, size_t size,
		const char *origin, const char *label_column, bool label_required,
		struct ebm_table *out, struct ebm_error *err)
{
	return read_buffer(data, size, origin, label_column, label_required,
			false, out, err);
}

enum ebm_status ebm_csv_read_table_buffer_missing(const char *data,
		size_t size, const char *origin, const char *label_column,
		bool label_required, struct ebm_table *out, struct ebm_error *err)
{
	return read_buffer(data, size, origin, label_column, label_required,
			true, out, err);
}

static enum ebm_status read_buffer(const char *data, size_t size,
		const char *origin, const char *label_column, bool label_required,
		bool missing, struct ebm_table *out, struct ebm_error *err)
{
	if (out == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"ebm_csv_read_table_buffer: out is NULL");
	}
	memset(out, 0, sizeof(*out));
	if (label_required && label_column == NULL) {
		return ebm_error_set(err, EBM_STATUS_INVALID_ARGUMENT,
				"ebm_csv_read_table_buffer: a label is required but "
				"none named");
	}
	struct ebm_csv *c;
	enum ebm_status status = ebm_csv_open_buffer(data, size, origin, &c, err);
	if (status != EBM_STATUS_OK) {
		return status;
	}
	c->empty_nan = missing;
	status = read_table(c, label_column, label_required, out, err);
	ebm_csv_close(c);
	return status;
}
