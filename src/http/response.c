/*
 * response.c — JSON responses written straight into a growable buffer.
 * A score response with explanations has rows x features numbers; going
 * through a jansson tree would allocate one object per number, so the
 * results are printed directly, with the shortest decimal that reads back
 * as the same float (or double). The JSON here is fixed-shape and every
 * string passes through ebm_http_buf_json_string().
 */
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "util/util.h"

/* ======================================================================
 * Buffer
 * ==================================================================== */

void ebm_http_buf_init(struct ebm_http_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void ebm_http_buf_finish(struct ebm_http_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void ebm_http_buf_reset(struct ebm_http_buf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data != NULL) {
		b->data[0] = '\0';
	}
}

/* Room for n more bytes plus a terminating NUL. */
static bool grow(struct ebm_http_buf *b, size_t n)
{
	if (b->failed) {
		return false;
	}
	if (b->cap > b->len && n < b->cap - b->len) {
		return true;
	}
	size_t need = b->len + n + 1;
	if (need < b->len) {
		b->failed = true;
		return false;
	}
	size_t cap = b->cap > 0 ? b->cap : 256;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void ebm_http_buf_add(struct ebm_http_buf *b, const char *s, size_t n)
{
	if (!grow(b, n)) {
		return;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void ebm_http_buf_puts(struct ebm_http_buf *b, const char *s)
{
	ebm_http_buf_add(b, s, strlen(s));
}

void ebm_http_buf_printf(struct ebm_http_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		ebm_http_buf_add(b, small, (size_t)n);
		return;
	}
	if (!grow(b, (size_t)n)) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

size_t ebm_http_utf8_seq(const char *s)
{
	return *s == '\0' ? 0 : ebm_utf8_decode(s, strnlen(s, 4), NULL);
}

bool ebm_http_utf8_valid(const char *s)
{
	return ebm_utf8_valid(s, strlen(s));
}

void ebm_http_buf_json_string(struct ebm_http_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	/* U+FFFD REPLACEMENT CHARACTER, for bytes that are not UTF-8: messages
	 * quote client input, and JSON text must be UTF-8 (RFC 8259). */
	static const char replacement[] = "\xef\xbf\xbd";
	ebm_http_buf_add(b, "\"", 1);
	const char *run = s;
	const char *p = s;
	while (*p != '\0') {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x80) {
			size_t n = ebm_http_utf8_seq(p);
			if (n > 0) {
				p += n;
				continue;
			}
			ebm_http_buf_add(b, run, (size_t)(p - run));
			ebm_http_buf_add(b, replacement, sizeof(replacement) - 1);
			run = ++p;
			continue;
		}
		if (c >= 0x20 && c != '"' && c != '\\') {
			p++;
			continue;
		}
		ebm_http_buf_add(b, run, (size_t)(p - run));
		run = ++p;
		switch (c) {
		case '"':
			ebm_http_buf_add(b, "\\\"", 2);
			break;
		case '\\':
			ebm_http_buf_add(b, "\\\\", 2);
			break;
		case '\n':
			ebm_http_buf_add(b, "\\n", 2);
			break;
		case '\t':
			ebm_http_buf_add(b, "\\t", 2);
			break;
		case '\r':
			ebm_http_buf_add(b, "\\r", 2);
			break;
		default: {
			char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			ebm_http_buf_add(b, esc, sizeof(esc));
			break;
		}
		}
	}
	ebm_http_buf_add(b, run, (size_t)(p - run));
	ebm_http_buf_add(b, "\"", 1);
}

/* ======================================================================
 * Numbers: the shortest text that reads back, util/shortest.c
 * ==================================================================== */

bool ebm_http_numbers_force_ref(bool on)
{
	return ebm_shortest_force_ref(on);
}

double ebm_http_float_value(float f)
{
	if (!isfinite(f)) {
		return (double)f;
	}
	char buf[32];
	ebm_shortest_float(buf, sizeof(buf), f);
	return strtod(buf, NULL);
}

/* Room for n more bytes at the end of b (plus a NUL), or NULL. */
static char *reserve(struct ebm_http_buf *b, size_t n)
{
	return grow(b, n) ? b->data + b->len : NULL;
}

/* Ends the bytes written from reserve() at `end`. */
static void commit(struct ebm_http_buf *b, char *end)
{
	b->len = (size_t)(end - b->data);
	b->data[b->len] = '\0';
}

#define FLOAT_MAX_CHARS 32    /* "-1.23456789e-38" and then some */
#define DOUBLE_MAX_CHARS 40   /* "-1.2345678901234567e-308" */

/* The JSON text of v at o (FLOAT_MAX_CHARS of room); returns its end. */
static char *put_float(char *o, float v)
{
	if (!isfinite(v)) {
		memcpy(o, "null", 4);
		return o + 4;
	}
	return o + ebm_shortest_float(o, FLOAT_MAX_CHARS, v);
}

static char *put_double(char *o, double v)
{
	if (!isfinite(v)) {
		memcpy(o, "null", 4);
		return o + 4;
	}
	return o + ebm_shortest_double(o, DOUBLE_MAX_CHARS, v);
}

void ebm_http_buf_json_float(struct ebm_http_buf *b, float v)
{
	char *o = reserve(b, FLOAT_MAX_CHARS);
	if (o != NULL) {
		commit(b, put_float(o, v));
	}
}

void ebm_http_buf_json_double(struct ebm_http_buf *b, double v)
{
	char *o = reserve(b, DOUBLE_MAX_CHARS);
	if (o != NULL) {
		commit(b, put_double(o, v));
	}
}

/* ======================================================================
 * Bodies
 * ==================================================================== */

void ebm_http_encode_error(struct ebm_http_buf *b,
		const struct ebm_http_error *e)
{
	ebm_http_buf_reset(b);
	ebm_http_buf_puts(b, "{\"error\":{\"code\":");
	ebm_http_buf_json_string(b, e->code);
	ebm_http_buf_puts(b, ",\"message\":");
	ebm_http_buf_json_string(b, e->message);
	ebm_http_buf_puts(b, "}}\n");
}

static void float_array(struct ebm_http_buf *b, const float *v, size_t n)
{
	ebm_http_buf_add(b, "[", 1);
	for (size_t j = 0; j < n; j++) {
		if (j > 0) {
			ebm_http_buf_add(b, ",", 1);
		}
		ebm_http_buf_json_float(b, v[j]);
	}
	ebm_http_buf_add(b, "]", 1);
}

/* Appends a string literal. */
#define PUT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)

void ebm_http_encode_score_results(struct ebm_http_buf *b,
		const struct ebm_score *s, size_t n_rows, const float *contrib,
		size_t d)
{
	ebm_http_encode_score_results_missing(b, s, n_rows, contrib, d, NULL,
			NULL);
}

/* ,"missing":[j...],"imputed":[v...] for the NaN entries of xi. */
static void missing_fields(struct ebm_http_buf *b, const float *xi,
		const float *ci, size_t d)
{
	ebm_http_buf_puts(b, ",\"missing\":[");
	bool first = true;
	for (size_t j = 0; j < d; j++) {
		if (isnan(xi[j])) {
			ebm_http_buf_printf(b, first ? "%zu" : ",%zu", j);
			first = false;
		}
	}
	ebm_http_buf_puts(b, "],\"imputed\":[");
	first = true;
	for (size_t j = 0; j < d; j++) {
		if (isnan(xi[j])) {
			if (!first) {
				ebm_http_buf_add(b, ",", 1);
			}
			ebm_http_buf_json_float(b, ci[j]);
			first = false;
		}
	}
	ebm_http_buf_add(b, "]", 1);
}

void ebm_http_encode_score_results_missing(struct ebm_http_buf *b,
		const struct ebm_score *s, size_t n_rows, const float *contrib,
		size_t d, const float *x, const float *completed)
{
	ebm_http_buf_puts(b, "\"results\":[");
	for (size_t i = 0; i < n_rows && !b->failed; i++) {
		/* One reservation per row: the fixed keys and three numbers. */
		char *o = reserve(b, 64 + 2 * FLOAT_MAX_CHARS + DOUBLE_MAX_CHARS);
		if (o == NULL) {
			break;
		}
		o = i > 0 ? PUT(o, ",{\"energy\":") : PUT(o, "{\"energy\":");
		o = put_float(o, s[i].energy);
		o = PUT(o, ",\"score\":");
		o = put_float(o, s[i].score);
		o = PUT(o, ",\"p_value\":");
		o = put_double(o, s[i].p_value);
		o = s[i].anomaly ? PUT(o, ",\"anomaly\":true")
				: PUT(o, ",\"anomaly\":false");
		commit(b, o);
		if (x != NULL && ebm_row_has_missing(x + i * d, d)) {
			missing_fields(b, x + i * d, completed + i * d, d);
		}
		if (contrib != NULL) {
			ebm_http_buf_puts(b, ",\"contributions\":");
			float_array(b, contrib + i * d, d);
		}
		ebm_http_buf_add(b, "}", 1);
	}
	ebm_http_buf_add(b, "]", 1);
}

void ebm_http_encode_repair_results(struct ebm_http_buf *b,
		const float *x, const float *repaired, float *delta_scratch,
		size_t n_rows, size_t d, const float *e_before, const float *e_after,
		const double *p_before, const double *p_after)
{
	ebm_http_buf_puts(b, "\"results\":[");
	for (size_t i = 0; i < n_rows && !b->failed; i++) {
		const float *xi = x + i * d;
		const float *ri = repaired + i * d;
		for (size_t j = 0; j < d; j++) {
			delta_scratch[j] = ri[j] - xi[j];
		}
		ebm_http_buf_puts(b, i > 0 ? ",{\"repaired\":" : "{\"repaired\":");
		float_array(b, ri, d);
		ebm_http_buf_puts(b, ",\"delta\":");
		float_array(b, delta_scratch, d);
		ebm_http_buf_puts(b, ",\"energy_before\":");
		ebm_http_buf_json_float(b, e_before[i]);
		ebm_http_buf_puts(b, ",\"energy_after\":");
		ebm_http_buf_json_float(b, e_after[i]);
		ebm_http_buf_puts(b, ",\"p_value_before\":");
		ebm_http_buf_json_double(b, p_before[i]);
		ebm_http_buf_puts(b, ",\"p_value_after\":");
		ebm_http_buf_json_double(b, p_after[i]);
		ebm_http_buf_add(b, "}", 1);
	}
	ebm_http_buf_add(b, "]", 1);
}
