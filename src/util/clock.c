/* clock.c — a monotonic clock for progress and rates. */
#include <time.h>

#include "util/util.h"

double ebm_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
