/* tilecc C runtime: thread pool and thread-count control for compiled models.
 *
 * Build: cc -O2 -fPIC -c tilecc_runtime.c   (tilecc.codegen.link does this for you)
 * Needs C11 atomics and pthreads. On Linux idle workers sleep on a futex; elsewhere on a
 * condition variable.
 *
 * Dispatch protocol (why it is shaped like this): a model calls tilecc_parallel_for hundreds
 * of times per inference, often for a few microseconds of work, so a dispatch must cost far
 * less than a mutex + condvar round trip. The dispatcher publishes the job, bumps
 * `generation`, and only makes a wake-up syscall when some worker is really asleep. Workers
 * spin a little after each job because the next one usually follows within microseconds.
 * Task ids are claimed from a shared counter by whoever is running: the dispatcher does not
 * wait for a worker the OS has not scheduled yet (a busy neighbour core would otherwise stall
 * every parallel region for a scheduler time slice); it runs the unclaimed tasks itself, then
 * closes the job and waits only for workers that joined it. A worker joins by counting itself
 * in `active` and then checking the job is still open (seq_cst on both sides, so either the
 * dispatcher sees the worker or the worker sees the job closed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tilecc_runtime.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <sched.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif
#if defined(__linux__) && defined(SYS_futex)
#include <linux/futex.h>
#define TILECC_USE_FUTEX 1
#endif

/* Spin iterations before sleeping: long enough to bridge the gap between two kernels of one
 * inference, short enough not to burn a core between inferences. The last YIELD_ITERS of them
 * yield the core instead: on an oversubscribed machine the thread we wait for may be
 * runnable but not running, and pure spinning would just delay it further. */
#define SPIN_ITERS 2000
#define YIELD_ITERS 16

/* Spinning only pays when every pool thread has a core of its own; with more threads than
 * cores it steals time from the thread being waited for, so spin (almost) not at all then. */
static atomic_int g_spin_iters = SPIN_ITERS;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && __ARM_ARCH >= 7)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

#ifdef TILECC_USE_FUTEX
static void wait_on(atomic_int *word, int value) {
    syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}
static void wake_all(atomic_int *word) {
    syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
/* One shared condvar is enough: wake-ups are rare (only when someone slept) and spurious
 * ones are harmless because every waiter re-checks its word. */
static pthread_mutex_t g_wait_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wait_cv = PTHREAD_COND_INITIALIZER;
static void wait_on(atomic_int *word, int value) {
    pthread_mutex_lock(&g_wait_mu);
    if (atomic_load(word) == value) pthread_cond_wait(&g_wait_cv, &g_wait_mu);
    pthread_mutex_unlock(&g_wait_mu);
}
static void wake_all(atomic_int *word) {
    (void)word;
    pthread_mutex_lock(&g_wait_mu);
    pthread_cond_broadcast(&g_wait_cv);
    pthread_mutex_unlock(&g_wait_mu);
}
#endif

/* Wait until *word != old; returns the new value. `sleepers` counts threads that may be in
 * wait_on(word) so the other side can skip the wake syscall when nobody sleeps. The
 * increment and the re-check are seq_cst, pairing with the waker's store-then-load. */
static int wait_while_equal(atomic_int *word, int old, atomic_int *sleepers) {
    int spin = atomic_load_explicit(&g_spin_iters, memory_order_relaxed);
    for (int i = 0; i < spin + YIELD_ITERS; i++) {
        int v = atomic_load_explicit(word, memory_order_acquire);
        if (v != old) return v;
        if (i < spin) cpu_relax();
        else sched_yield();
    }
    for (;;) {
        atomic_fetch_add(sleepers, 1);
        if (atomic_load(word) == old) wait_on(word, old);
        atomic_fetch_sub(sleepers, 1);
        int v = atomic_load_explicit(word, memory_order_acquire);
        if (v != old) return v;
    }
}

/* ---- thread count ------------------------------------------------------------------- */

static atomic_int g_num_threads; /* 0 until first read, so the environment is read lazily */

static int clamp_to(long n, long max) {
    if (n < 1) return 1;
    return n > max ? (int)max : (int)n;
}

static int available_cores(void) {
#if defined(__linux__) && defined(CPU_COUNT)
    /* Affinity, not the online count: containers and taskset often give us fewer cores, and
     * oversubscribing a spinning pool is far worse than using one core too few. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return clamp_to(CPU_COUNT(&set), TILECC_MAX_THREADS);
#endif
    return clamp_to(sysconf(_SC_NPROCESSORS_ONLN), TILECC_MAX_THREADS);
}

int32_t tilecc_max_threads(void) {
    return clamp_to((long)available_cores() * TILECC_THREADS_PER_CORE, TILECC_MAX_THREADS);
}


static int default_num_threads(void) {
    const char *env = getenv("TILECC_NUM_THREADS");
    int cores = available_cores();
    if (env && *env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        /* A library cannot fail its caller over an environment variable: warn, then run. */
        if (*end != '\0' || v < 1 || errno == ERANGE) {
            fprintf(stderr, "tilecc: TILECC_NUM_THREADS=%s is not a positive integer; using "
                    "%d thread(s), the cores available\n", env, cores);
            return cores;
        }
        if (v > tilecc_max_threads()) {
            fprintf(stderr, "tilecc: TILECC_NUM_THREADS=%s is above the cap; using %d threads "
                    "(%d per available core, at most %d)\n", env, tilecc_max_threads(),
                    TILECC_THREADS_PER_CORE, TILECC_MAX_THREADS);
        }
        return clamp_to(v, tilecc_max_threads());
    }
    return cores;
}

static void update_spin(int threads) {
    static int cores;
    if (cores == 0) cores = available_cores();
    atomic_store_explicit(&g_spin_iters, threads > cores ? 0 : SPIN_ITERS, memory_order_relaxed);
}

void tilecc_set_num_threads(int32_t n) {
    update_spin(clamp_to(n, TILECC_MAX_THREADS));
    atomic_store(&g_num_threads, clamp_to(n, TILECC_MAX_THREADS));
}

int32_t tilecc_get_num_threads(void) {
    int n = atomic_load_explicit(&g_num_threads, memory_order_relaxed);
    if (n == 0) {
        int expected = 0;
        n = default_num_threads();
        update_spin(n);
        if (!atomic_compare_exchange_strong(&g_num_threads, &expected, n)) n = expected;
    }
    return n;
}

/* ---- pool --------------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t dispatch; /* held by the one thread currently dispatching */
    int num_workers;          /* started threads; guarded by `dispatch` */
    int start_generation[TILECC_MAX_THREADS];
    /* The job: written by the dispatcher before it bumps `generation` (release), read by
     * workers after they see the bump (acquire). */
    tilecc_task_fn fn;
    void *cdata;
    int32_t num_tasks;
    atomic_int generation;       /* futex word workers wait on */
    atomic_int open;             /* 1 while the current job accepts joining workers */
    atomic_int next_task;        /* next unclaimed task id of the current job */
    atomic_int active;           /* workers inside the current job; dispatcher waits on it */
    atomic_int result;           /* first non-zero task result */
    atomic_int worker_sleepers;  /* workers that may sleep on `generation` */
    atomic_int waiter_sleeping;  /* dispatcher may sleep on `active` */
} pool_t;

static pool_t g_pool = {.dispatch = PTHREAD_MUTEX_INITIALIZER};
static _Thread_local int t_in_task; /* set on pool threads and while task 0 runs */

static void record_result(int32_t r) {
    if (r != 0) {
        int expected = 0;
        atomic_compare_exchange_strong(&g_pool.result, &expected, r);
    }
}

/* Claim and run task ids of the current job until none are left. */
static void run_claimed_tasks(tilecc_task_fn fn, void *cdata, int32_t n) {
    for (;;) {
        int t = atomic_fetch_add(&g_pool.next_task, 1);
        if (t >= n) return;
        record_result(fn(t, n, cdata));
    }
}

static void *worker_main(void *arg) {
    int index = (int)(intptr_t)arg;
    int seen = g_pool.start_generation[index];
    t_in_task = 1;
    for (;;) {
        seen = wait_while_equal(&g_pool.generation, seen, &g_pool.worker_sleepers);
        atomic_fetch_add(&g_pool.active, 1);
        /* Still open: the job (fn, cdata, n, published before `open`) stays valid until this
         * worker leaves `active`. It may be a job newer than `seen`; that one counts us too. */
        if (atomic_load(&g_pool.open))
            run_claimed_tasks(g_pool.fn, g_pool.cdata, g_pool.num_tasks);
        if (atomic_fetch_sub(&g_pool.active, 1) == 1 && atomic_load(&g_pool.waiter_sleeping))
            wake_all(&g_pool.active);
    }
    return NULL;
}

/* A forked child has none of the parent's threads: start from an empty pool. */
static void reset_pool_in_child(void) {
    pthread_mutex_init(&g_pool.dispatch, NULL);
    g_pool.num_workers = 0;
    atomic_store(&g_pool.active, 0);
    atomic_store(&g_pool.open, 0);
    atomic_store(&g_pool.worker_sleepers, 0);
    atomic_store(&g_pool.waiter_sleeping, 0);
}

/* Start workers until there are `want`; called with `dispatch` held. */
static void grow_pool(int want) {
    static int atfork_registered;
    if (!atfork_registered) {
        pthread_atfork(NULL, NULL, reset_pool_in_child);
        atfork_registered = 1;
    }
    /* Workers inherit a full signal mask so signals keep going to the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (g_pool.num_workers < want) {
        int i = g_pool.num_workers;
        pthread_t th;
        g_pool.start_generation[i] = atomic_load(&g_pool.generation);
        if (pthread_create(&th, NULL, worker_main, (void *)(intptr_t)i) != 0) break;
        pthread_detach(th);
        g_pool.num_workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* One task on the calling thread, marked as inside a task so that a parallel_for nested in
 * it runs inline too (even if the pool becomes free meanwhile). */
static int32_t run_inline(tilecc_task_fn fn, void *cdata) {
    int saved = t_in_task;
    t_in_task = 1;
    int32_t r = fn(0, 1, cdata);
    t_in_task = saved;
    return r;
}

int32_t tilecc_parallel_for(tilecc_task_fn fn, void *cdata) {
    int n = tilecc_get_num_threads();
    if (n <= 1 || t_in_task) return run_inline(fn, cdata);
    /* Another thread owns the pool (two models run concurrently): run inline, not wait. */
    if (pthread_mutex_trylock(&g_pool.dispatch) != 0) return run_inline(fn, cdata);
    if (g_pool.num_workers < n - 1) grow_pool(n - 1);
    int workers = g_pool.num_workers;
    if (workers == 0) {
        pthread_mutex_unlock(&g_pool.dispatch);
        return run_inline(fn, cdata);
    }
    if (n > workers + 1) n = workers + 1;

    g_pool.fn = fn;
    g_pool.cdata = cdata;
    g_pool.num_tasks = n;
    atomic_store_explicit(&g_pool.result, 0, memory_order_relaxed);
    atomic_store(&g_pool.next_task, 0);
    atomic_store(&g_pool.open, 1);
    atomic_fetch_add(&g_pool.generation, 1);
    if (atomic_load(&g_pool.worker_sleepers) > 0) wake_all(&g_pool.generation);

    t_in_task = 1;
    run_claimed_tasks(fn, cdata, n);
    t_in_task = 0;

    /* Every task id is claimed (and ours are done): close the job, then wait for the workers
     * that joined it to finish theirs before the job slot and `cdata` are reused. */
    atomic_store(&g_pool.open, 0);
    int left;
    while ((left = atomic_load(&g_pool.active)) != 0)
        wait_while_equal(&g_pool.active, left, &g_pool.waiter_sleeping);
    int32_t result = atomic_load(&g_pool.result);
    pthread_mutex_unlock(&g_pool.dispatch);
    return result;
}

/* Monotonic nanoseconds, for profiling builds of a model (codegen/aot.py calls it around each
 * kernel). CLOCK_MONOTONIC: wall time that never jumps, through the vDSO on Linux, ~20 ns. */
int64_t tilecc_now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
