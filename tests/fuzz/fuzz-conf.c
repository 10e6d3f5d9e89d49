/*
 * fuzz-conf.c — libFuzzer target: the configuration parser on arbitrary
 * text. An accepted configuration must survive format() and parse again,
 * and parse to the same configuration's text (there is no line limit any
 * more, so no exception).
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
		if (ebm_conf_parse_string(again, "format", &c2, &err) !=
				EBM_STATUS_OK) {
			abort();
		}
		char *third = ebm_conf_format(&c2);
		if (strcmp(again, third) != 0) {
			abort();
		}
		free(third);
		ebm_conf_finish(&c2);
		free(again);
		ebm_conf_finish(&c);
	}
	free(text);
	return 0;
}
