/* fuzz-csv.c — libFuzzer target: the CSV reader on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "csv/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ebm_table t;
	struct ebm_error err;
	if (ebm_csv_read_table_buffer((const char *)data, size, "fuzz.csv",
			"label", false, &t, &err) == EBM_STATUS_OK) {
		/* Everything accepted must be finite and consistent. */
		for (size_t i = 0; i < t.n_rows * t.n_cols; i++) {
			if (!(t.data[i] == t.data[i])) {
				abort();
			}
		}
		ebm_table_finish(&t);
	}
	return 0;
}
