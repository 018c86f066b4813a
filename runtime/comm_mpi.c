/* comm_mpi.c — the communication layer of libnnrt_mpi.a: Open MPI over MPI_COMM_WORLD.
 *
 * Errors: MPI_COMM_WORLD gets MPI_ERRORS_RETURN so that a failed collective is reported by us,
 * naming the rank (log.c prefixes `rank R: `) and the operation, before MPI_Abort ends the job.
 * A rank that dies outright is noticed by mpirun, which terminates the others and names it.
 * Sums go through MPI_Allreduce: Open MPI's algorithms (recursive doubling, ring, Rabenseifner)
 * hand every rank the same bits, and train.c checks after each epoch that the parameters agree. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>

#include "comm.h"
#include "nnrt_internal.h"

#define STR2(x) #x
#define STR(x) STR2(x)

/* MPI counts are int: larger buffers go in pieces of this many elements. */
enum { CHUNK = 1 << 30 };

static void check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
    nnrt_error("%s failed: %s", what, msg);
    nnrt_hint("another rank has probably died; mpirun names it above or below");
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int nnrt_comm_start(NnrtComm *c, int *argc, char ***argv) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        nnrt_error("MPI_Init_thread failed; run the model under mpirun, or build it without --mpi");
        return -1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    return 0;
}

void nnrt_comm_finish(const NnrtComm *c, int status) {
    fflush(stdout);
    fflush(stderr);
    if (status != 0 && c->size > 1) MPI_Abort(MPI_COMM_WORLD, status);
    MPI_Finalize();
}

const char *nnrt_comm_name(void) {
#ifdef OMPI_MAJOR_VERSION
    return "Open MPI " STR(OMPI_MAJOR_VERSION) "." STR(OMPI_MINOR_VERSION) "." STR(OMPI_RELEASE_VERSION);
#else
    return "MPI " STR(MPI_VERSION) "." STR(MPI_SUBVERSION);
#endif
}

static void allreduce(void *buf, int64_t count, MPI_Datatype type, size_t elem, MPI_Op op) {
    for (int64_t done = 0; done < count; done += CHUNK) {
        int64_t k = count - done < CHUNK ? count - done : CHUNK;
        check(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)done * elem, (int)k, type, op,
                            MPI_COMM_WORLD),
              "MPI_Allreduce");
    }
}

void nnrt_comm_sum_f32(const NnrtComm *c, float *buf, int64_t count) {
    if (c->size > 1) allreduce(buf, count, MPI_FLOAT, sizeof(float), MPI_SUM);
}

void nnrt_comm_sum_f64(const NnrtComm *c, double *buf, int64_t count) {
    if (c->size > 1) allreduce(buf, count, MPI_DOUBLE, sizeof(double), MPI_SUM);
}

void nnrt_comm_max_i64(const NnrtComm *c, int64_t *buf, int64_t count) {
    if (c->size > 1) allreduce(buf, count, MPI_INT64_T, sizeof(int64_t), MPI_MAX);
}

void nnrt_comm_broadcast(const NnrtComm *c, void *buf, size_t bytes) {
    if (c->size < 2) return;
    for (size_t done = 0; done < bytes; done += CHUNK) {
        size_t k = bytes - done < (size_t)CHUNK ? bytes - done : (size_t)CHUNK;
        check(MPI_Bcast((char *)buf + done, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
    }
}
