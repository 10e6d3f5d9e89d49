/*
 * fuzz-conf.c — libFuzzer target: the configuration parser on arbitrary
 * text. An accepted configuration must survive format() and parse again,
 * unless format() wrote a line over inih's limit of 198 characters (a
 * documented limit of Debian's libinih build: `key = value` with spaces
 * and round-trip number formatting can lengthen a line that fitted).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct ebm_conf c;
	if (ebm_conf_parse_string(text, "fuzz.conf", &c, NULL) == EBM_STATUS_OK) {
		char *again = ebm_conf_format(&c);
		struct ebm_conf c2;
		struct ebm_error err;
		if (ebm_conf_parse_string(again, "format", &c2, &err) ==
				EBM_STATUS_OK) {
			ebm_conf_finish(&c2);
		} else if (strstr(err.message, "line is longer than") == NULL) {
			abort();
		}
		free(again);
		ebm_conf_finish(&c);
	}
	free(text);
	return 0;
}
