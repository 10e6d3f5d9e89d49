/*
 * ini.h — the INI grammar of ebmd.conf (ini.c), internal to src/conf.
 *
 * Line by line ('\n' ends a line; white space around every line, a CR
 * included, is dropped; a UTF-8 byte order mark at the start is skipped):
 *   - empty, or starting with ';' or '#': nothing;
 *   - "[name]": a section header; the name is trimmed, and what follows
 *     the ']' is ignored (a comment, usually). A ';' after white space
 *     before any ']' starts a comment, and then the ']' is missing;
 *   - "key = value" or "key: value" (the first '=' or ':'): a pair; a ';'
 *     after white space starts a comment (in the key too, which then has
 *     no separator), '#' does not; key and value are trimmed;
 *   - anything else is an error.
 * No continuation lines, no escapes, no quoting, no length limit.
 */
#ifndef EBM_CONF_INI_H
#define EBM_CONF_INI_H

#include <stdbool.h>

struct ebm_ini_handler {
	/* "[name]" on `line`; false stops the parse. */
	bool (*section)(void *user, unsigned line, const char *name);
	/* "key = value" on `line`; false stops the parse. */
	bool (*pair)(void *user, unsigned line, const char *key,
			const char *value);
	/* A line that is neither: what is wrong, e.g. "expected 'key = value',
	 * got 'junk'" (the line quoted, at most 200 bytes); the parse stops. */
	void (*error)(void *user, unsigned line, const char *message);
};

/*
 * Parses text (NUL-terminated, written to: names, keys and values are
 * NUL-terminated in place), calling h in line order. Returns true when
 * every line was read, false when a callback stopped the parse or a line
 * was malformed (h->error was called). Never allocates.
 */
bool ebm_ini_parse(char *text, const struct ebm_ini_handler *h, void *user);

#endif
