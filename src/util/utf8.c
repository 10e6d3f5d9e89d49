/*
 * utf8.c — the one UTF-8 validator: model-file strings (model/format.c),
 * CSV column names (csv/csv.c) and everything ebmd puts into JSON
 * (http/response.c) use it, so all three accept exactly the same bytes.
 */
#include "util/util.h"

size_t ebm_utf8_decode(const void *bytes, size_t len, uint32_t *cp)
{
	const unsigned char *s = bytes;
	if (len == 0) {
		return 0;
	}
	unsigned char c = s[0];
	size_t n;
	uint32_t v, min;
	if (c < 0x80) {
		if (cp != NULL) {
			*cp = c;
		}
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1fu;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0fu;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07u;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n) {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		v = v << 6 | (s[i] & 0x3fu);
	}
	/* Overlong forms, surrogates and values past Unicode are invalid. */
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
		return 0;
	}
	if (cp != NULL) {
		*cp = v;
	}
	return n;
}

bool ebm_utf8_valid(const void *bytes, size_t len)
{
	const unsigned char *s = bytes;
	size_t i = 0;
	while (i < len) {
		size_t n = ebm_utf8_decode(s + i, len - i, NULL);
		if (n == 0) {
			return false;
		}
		i += n;
	}
	return true;
}
