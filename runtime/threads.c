/* threads.c — the worker pool behind nnrt_parallel_for, which generated kernels call to split
 * their row blocks across threads.
 *
 * Why a process-wide pool: generated code calls nnrt_parallel_for without a handle (the ABI stays
 * small), and a process trains one model. The pool is started once by nnrt_main (--threads).
 *
 * Determinism: [0, count) is cut into `threads` contiguous chunks whose bounds depend only on
 * count and the thread count, and kernels give every output element to exactly one task, so the
 * arithmetic — and the result — does not depend on scheduling.
 *
 * Waiting: kernels follow each other within microseconds, so a worker spins briefly (with the
 * pause instruction, yielding now and then) before sleeping on a condition variable; the caller
 * runs chunk 0 itself and waits for the others the same way (the chunks are balanced). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "nnrt_internal.h"

/* Spin this many rounds before yielding the CPU (waiter) or sleeping (worker): when the machine is
 * oversubscribed, a spinning thread would otherwise hold the core the other one needs. */
enum { NNRT_MAX_THREADS = 256, NNRT_SPIN_ROUNDS = 1 << 16, NNRT_YIELD_EVERY = 1 << 10 };

typedef struct NnrtPool {
    int threads;                  /* including the caller; 1 = run everything inline */
    pthread_t workers[NNRT_MAX_THREADS];
    atomic_uint_fast64_t generation; /* bumped for each parallel_for */
    atomic_int pending;           /* workers still running the current job */
    atomic_int sleepers;
    atomic_int stop;
    NnrtTask task;
    void *ctx;
    int64_t count;
    pthread_mutex_t lock;
    pthread_cond_t wake;
} NnrtPool;

static NnrtPool nnrt_pool = {.threads = 1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static inline void nnrt_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void nnrt_run_chunk(NnrtPool *p, int index) {
    int64_t begin = p->count * index / p->threads, end = p->count * (index + 1) / p->threads;
    if (begin < end) p->task(p->ctx, begin, end);
}

static void *nnrt_worker(void *arg) {
    NnrtPool *p = &nnrt_pool;
    int index = (int)(intptr_t)arg;
    uint_fast64_t seen = 0;
    for (;;) {
        uint_fast64_t now;
        int spins = 0;
        while ((now = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen) {
            if (atomic_load(&p->stop)) return NULL;
            if (++spins < NNRT_SPIN_ROUNDS) {
                if (spins % NNRT_YIELD_EVERY == 0) sched_yield();
                else nnrt_cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
            spins = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = now;
        nnrt_run_chunk(p, index);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

int nnrt_threads_start(int64_t threads) {
    NnrtPool *p = &nnrt_pool;
    if (threads < 1) threads = 1;
    if (threads > NNRT_MAX_THREADS) threads = NNRT_MAX_THREADS;
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&p->workers[i], NULL, nnrt_worker, (void *)(intptr_t)i) != 0) {
            nnrt_error("cannot start worker thread %d of %lld", i, (long long)threads);
            atomic_store(&p->stop, 1);
            return -1;
        }
        p->threads = i + 1;
    }
    return 0;
}

void nnrt_threads_stop(void) {
    NnrtPool *p = &nnrt_pool;
    if (p->threads <= 1) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->threads; i++) pthread_join(p->workers[i], NULL);
    p->threads = 1;
    atomic_store(&p->stop, 0);
}

void nnrt_parallel_for(int64_t count, NnrtTask task, void *ctx) {
    NnrtPool *p = &nnrt_pool;
    if (p->threads <= 1 || count < 2) {
        if (count > 0) task(ctx, 0, count);
        return;
    }
    p->task = task;
    p->ctx = ctx;
    p->count = count;
    atomic_store_explicit(&p->pending, p->threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    nnrt_run_chunk(p, 0);
    for (int spins = 1; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins % NNRT_YIELD_EVERY == 0) sched_yield();
        else nnrt_cpu_relax();
    }
}
