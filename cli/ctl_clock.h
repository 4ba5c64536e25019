/* A monotonic clock in milliseconds: deadlines must not move when the wall clock does. */
#ifndef CTL_CLOCK_H
#define CTL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
