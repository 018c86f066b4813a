/* comm.h — how the ranks of a data-parallel run talk to each other.
 *
 * Two implementations sit behind this interface, one per runtime archive:
 *   comm_none.c  (libnnrt.a)      one process: rank 0 of 1, every collective returns at once.
 *                                 The plain executable has no MPI dependency at all.
 *   comm_mpi.c   (libnnrt_mpi.a)  Open MPI over MPI_COMM_WORLD (nnc --mpi links it).
 * Only the main thread calls these (MPI_THREAD_FUNNELED): the worker threads of
 * nnrt_parallel_for never communicate.
 *
 * Collectives must be called by every rank in the same order with the same counts. A collective
 * that fails (a peer died, the network broke) cannot be recovered from: the implementation prints
 * `rank R: error: ...` naming the operation and the MPI error, and aborts the whole job. */
#ifndef NNRT_COMM_H
#define NNRT_COMM_H

#include <stddef.h>
#include <stdint.h>

typedef struct NnrtComm {
    int rank, size;
} NnrtComm;

/* Starts the communication layer (MPI_Init_thread) and fills rank and size. Returns 0 or -1
 * after reporting. */
int nnrt_comm_start(NnrtComm *c, int *argc, char ***argv);
/* Ends it. A nonzero status in a job of several ranks aborts the job (MPI_Abort) with that status:
 * the other ranks may be blocked in a collective this rank will never join. */
void nnrt_comm_finish(const NnrtComm *c, int status);
/* "none" or "Open MPI x.y.z", for banners. */
const char *nnrt_comm_name(void);

/* In-place elementwise sums over the ranks; every rank gets the same result. */
void nnrt_comm_sum_f32(const NnrtComm *c, float *buf, int64_t count);
void nnrt_comm_sum_f64(const NnrtComm *c, double *buf, int64_t count);
/* In-place elementwise maximum over the ranks. */
void nnrt_comm_max_i64(const NnrtComm *c, int64_t *buf, int64_t count);
/* Copies rank 0's `bytes` bytes at buf to every rank. */
void nnrt_comm_broadcast(const NnrtComm *c, void *buf, size_t bytes);

#endif /* NNRT_COMM_H */
