/* tilecc C runtime: the few services a compiled model object calls.
 *
 * A model object (<name>_init / <name>_run / <name>_workspace_size) references only these
 * functions and libm. They are linked into each model's shared library, so a device needs
 * nothing else: no Python, no allocator during run.
 */
#ifndef TILECC_RUNTIME_H
#define TILECC_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A unit of parallel work: task `task_id` of `num_tasks`; non-zero return is an error code. */
typedef int32_t (*tilecc_task_fn)(int32_t task_id, int32_t num_tasks, void *cdata);

/* Run fn(t, n, cdata) for every t in [0, n), n = tilecc_get_num_threads(), each exactly once,
 * and wait for all. The caller and a pool of n - 1 threads (started on first use) claim task
 * ids as they get to them, so the caller may run several when a pool thread is late.
 * Returns the first non-zero task result, else 0. A call made from inside a task (or while
 * another thread is using the pool) runs as one task, fn(0, 1, cdata), on the calling thread. */
int32_t tilecc_parallel_for(tilecc_task_fn fn, void *cdata);

/* Thread count for later parallel_for calls, clamped to [1, TILECC_MAX_THREADS] (an explicit
 * count may oversubscribe on purpose). Default: $TILECC_NUM_THREADS if set, else the cores
 * this process may run on. A variable that is not a positive integer is ignored (the cores are
 * used) and one above tilecc_max_threads() is capped, each with one warning on stderr. */
void tilecc_set_num_threads(int32_t n);
int32_t tilecc_get_num_threads(void);

#define TILECC_MAX_THREADS 256
/* The cap on $TILECC_NUM_THREADS: this many threads per available core (at most
 * TILECC_MAX_THREADS); beyond a few per core a spinning pool only steals time from itself
 * (=99999 on 2 cores used to start 256 threads). */
#define TILECC_THREADS_PER_CORE 4
int32_t tilecc_max_threads(void);

/* CLOCK_MONOTONIC in nanoseconds; profiling builds time each kernel call with it. */
int64_t tilecc_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* TILECC_RUNTIME_H */
