/* time.h - clocks. Monotonic for durations and deadlines, wall for what people read. */
#ifndef FV_CORE_TIME_H
#define FV_CORE_TIME_H

#include <stdint.h>

uint64_t fv_now_ms(void);     /* monotonic milliseconds */
uint64_t fv_now_ns(void);     /* monotonic nanoseconds */
uint64_t fv_wall_ms(void);    /* milliseconds since the Unix epoch */
/* CPU time the calling thread has used, in nanoseconds: what a stretch of work cost the
 * process itself, without the time a busy machine let other processes run meanwhile. */
uint64_t fv_thread_cpu_ns(void);

#endif
