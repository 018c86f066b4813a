/* threads.c — the worker pool behind nnrt_parallel_for, which generated kernels (and the
 * optimizer and batch conversion) call to split work across threads.
 *
 * Why a process-wide pool: generated code calls nnrt_parallel_for without a handle (the ABI stays
 * small), and a process trains one model. The pool is started once by nnrt_main (--threads).
 *
 * Scheduling: [0, count) is cut into pieces of a fixed grain, and every thread — the caller
 * included — claims pieces from a shared counter until none are left; the caller returns when
 * every piece is finished. A thread the OS has descheduled (the machine is shared) therefore
 * delays nobody: the others take its pieces. Determinism does not depend on who runs a piece:
 * kernels give every output element to exactly one index and compute it the same way whichever
 * thread runs it, so the result is the same for any thread count and any interleaving.
 *
 * The claim counter packs (job sequence << 32 | next piece) into one atomic word. A job is
 * published as: word = (seq, CLOSED); write task, ctx, count; word = (seq, 0). A worker reads the
 * word, then the job fields, and claims a piece with a compare-and-swap on the word it read: the
 * swap fails if the job changed in between, so a claimed piece always belongs to the fields read.
 *
 * Waiting: kernels follow each other within microseconds, so a worker spins briefly (with the
 * pause instruction, yielding now and then) before sleeping on a condition variable. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "nnrt_internal.h"

/* Spin this many rounds before yielding the CPU (waiter) or sleeping (worker): when the machine is
 * oversubscribed, a spinning thread would otherwise hold the core the other one needs. */
enum { NNRT_MAX_THREADS = 256, NNRT_SPIN_ROUNDS = 1 << 16, NNRT_YIELD_EVERY = 1 << 10 };
/* Pieces per thread: more balance against less claiming overhead. */
enum { NNRT_PIECES_PER_THREAD = 4 };
#define NNRT_CLOSED 0xffffffffull

typedef struct NnrtPool {
    int threads;                  /* including the caller; 1 = run everything inline */
    pthread_t workers[NNRT_MAX_THREADS];
    _Alignas(64) atomic_uint_least64_t word; /* seq << 32 | next piece (NNRT_CLOSED while publishing) */
    _Alignas(64) atomic_int_least64_t finished; /* pieces of the current job done */
    atomic_int sleepers;
    atomic_int stop;
    _Atomic(NnrtTask) task;
    _Atomic(void *) ctx;
    atomic_int_least64_t count, grain, pieces;
    uint64_t seq;                 /* the caller's job counter */
    pthread_mutex_t lock;
    pthread_cond_t wake;
} NnrtPool;

static NnrtPool nnrt_pool = {.threads = 1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static inline void nnrt_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claims and runs pieces of the job whose word was `seen`; returns when none is left for it. */
static void nnrt_run_pieces(NnrtPool *p, uint64_t seen) {
    const uint64_t job = seen >> 32;
    /* acquire: a field written for a later job makes the swap below see that job's word */
    NnrtTask task = atomic_load_explicit(&p->task, memory_order_acquire);
    void *ctx = atomic_load_explicit(&p->ctx, memory_order_acquire);
    int64_t count = atomic_load_explicit(&p->count, memory_order_acquire);
    int64_t grain = atomic_load_explicit(&p->grain, memory_order_acquire);
    int64_t pieces = atomic_load_explicit(&p->pieces, memory_order_acquire);
    for (;;) {
        uint64_t next = seen & NNRT_CLOSED;
        if ((seen >> 32) != job || next == NNRT_CLOSED || (int64_t)next >= pieces) return;
        /* fails (and reloads `seen`) if another thread claimed first or another job was published */
        if (!atomic_compare_exchange_weak_explicit(&p->word, &seen, seen + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        int64_t begin = (int64_t)next * grain, end = begin + grain < count ? begin + grain : count;
        task(ctx, begin, end);
        atomic_fetch_add_explicit(&p->finished, 1, memory_order_release);
        seen = atomic_load_explicit(&p->word, memory_order_acquire);
    }
}

static void *nnrt_worker(void *arg) {
    NnrtPool *p = &nnrt_pool;
    (void)arg;
    uint64_t last_job = 0;
    for (;;) {
        uint64_t w;
        int spins = 0;
        while (((w = atomic_load(&p->word)) >> 32) == last_job || (w & NNRT_CLOSED) == NNRT_CLOSED) {
            if (atomic_load(&p->stop)) return NULL;
            if (++spins < NNRT_SPIN_ROUNDS) {
                if (spins % NNRT_YIELD_EVERY == 0) sched_yield();
                else nnrt_cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while ((atomic_load(&p->word) >> 32) == last_job && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
            spins = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        last_job = w >> 32;
        nnrt_run_pieces(p, w);
    }
}

int nnrt_threads_start(int64_t threads) {
    NnrtPool *p = &nnrt_pool;
    if (threads < 1) threads = 1;
    if (threads > NNRT_MAX_THREADS) threads = NNRT_MAX_THREADS;
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&p->workers[i], NULL, nnrt_worker, NULL) != 0) {
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
    int64_t pieces = (int64_t)p->threads * NNRT_PIECES_PER_THREAD;
    if (pieces > count) pieces = count;
    int64_t grain = (count + pieces - 1) / pieces;
    pieces = (count + grain - 1) / grain;
    uint64_t job = ++p->seq & 0xffffffffull;
    if (job == 0) job = p->seq = 1; /* 0 is "no job yet" for the workers */
    /* publish: close the word, write the fields, open the word */
    atomic_store(&p->word, job << 32 | NNRT_CLOSED);
    atomic_store_explicit(&p->task, task, memory_order_release);
    atomic_store_explicit(&p->ctx, ctx, memory_order_release);
    atomic_store_explicit(&p->count, count, memory_order_release);
    atomic_store_explicit(&p->grain, grain, memory_order_release);
    atomic_store_explicit(&p->pieces, pieces, memory_order_release);
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    atomic_store(&p->word, job << 32);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    nnrt_run_pieces(p, job << 32);
    for (int spins = 1; atomic_load_explicit(&p->finished, memory_order_acquire) < pieces; spins++) {
        if (spins % NNRT_YIELD_EVERY == 0) sched_yield();
        else nnrt_cpu_relax();
    }
}
