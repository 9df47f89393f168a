/* time.h - clocks. Monotonic for durations and deadlines, wall for what people read. */
#ifndef FV_CORE_TIME_H
#define FV_CORE_TIME_H

#include <stdint.h>

uint64_t fv_now_ms(void);     /* monotonic milliseconds */
uint64_t fv_now_ns(void);     /* monotonic nanoseconds */
uint64_t fv_wall_ms(void);    /* milliseconds since the Unix epoch */

#endif
