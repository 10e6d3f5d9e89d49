/*
 * ini.c — the INI grammar of ebmd.conf (ini.h says what it accepts).
 *
 * ebmd parsed with inih until 2026-12: Debian's build of it passes the
 * handler no line number, calls it for no section without keys, and
 * continues an indented line as the value before, so conf.c read the
 * lines and the section headers itself and left inih only "key = value"
 * and comments, which is most of nothing. This is that grammar, with the
 * line numbers the error messages need, in a hundred lines.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "conf/ini.h"

#define QUOTE_MAX 200

/* [b, e) without white space at either end. */
static void trim(const char **b, const char **e)
{
	while (*b < *e && isspace((unsigned char)**b)) {
		(*b)++;
	}
	while (*e > *b && isspace((unsigned char)(*e)[-1])) {
		(*e)--;
	}
}

/* The first of `chars` in [s, e), or the first ';' after white space
 * (an inline comment), or e. chars may be "". */
static const char *find_or_comment(const char *s, const char *e,
		const char *chars)
{
	bool was_space = false;
	for (; s < e; s++) {
		if (strchr(chars, *s) != NULL && *s != '\0') {
			return s;
		}
		if (was_space && *s == ';') {
			return s;
		}
		was_space = isspace((unsigned char)*s);
	}
	return e;
}

static void fail(const struct ebm_ini_handler *h, void *user, unsigned line,
		const char *what, const char *b, const char *e)
{
	char msg[QUOTE_MAX + 80];
	size_t len = (size_t)(e - b);
	snprintf(msg, sizeof(msg), "%s, got '%.*s'", what,
			(int)(len > QUOTE_MAX ? QUOTE_MAX : len), b);
	h->error(user, line, msg);
}

bool ebm_ini_parse(char *text, const struct ebm_ini_handler *h, void *user)
{
	char *s = text;
	if (strncmp(s, "\xEF\xBB\xBF", 3) == 0) {
		s += 3;
	}
	for (unsigned line = 1; *s != '\0'; line++) {
		char *nl = strchr(s, '\n');
		char *end = nl != NULL ? nl : s + strlen(s);
		const char *b = s;
		const char *e = end;
		s = nl != NULL ? nl + 1 : end;
		trim(&b, &e);
		if (b == e || *b == ';' || *b == '#') {
			continue;
		}
		/* From here on the line is cut up in place: its bytes are text's,
		 * and the next line starts at s whatever is written before it. */
		char *line_b = (char *)b;
		if (*b == '[') {
			const char *close = find_or_comment(b + 1, e, "]");
			if (close == e || *close != ']') {
				fail(h, user, line, "expected ']' to end the section header",
						b, e);
				return false;
			}
			const char *nb = b + 1;
			const char *ne = close;
			trim(&nb, &ne);
			line_b[ne - b] = '\0';
			if (!h->section(user, line, line_b + (nb - b))) {
				return false;
			}
			continue;
		}
		const char *sep = find_or_comment(b, e, "=:");
		if (sep == e || (*sep != '=' && *sep != ':')) {
			fail(h, user, line, "expected 'key = value'", b, e);
			return false;
		}
		const char *kb = b;
		const char *ke = sep;
		trim(&kb, &ke);
		const char *vb = sep + 1;
		const char *ve = find_or_comment(vb, e, "");
		trim(&vb, &ve);
		/* ke <= sep < vb <= ve <= e: the NULs land on the separator (or
		 * white space after the key) and after the value. */
		line_b[ke - b] = '\0';
		line_b[ve - b] = '\0';
		if (!h->pair(user, line, line_b + (kb - b), line_b + (vb - b))) {
			return false;
		}
	}
	return true;
}
