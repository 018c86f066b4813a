/* comm_none.c — the communication layer of a single process (libnnrt.a): one rank, and every
 * collective is the identity. See comm.h. */
#include "comm.h"

int nnrt_comm_start(NnrtComm *c, int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    c->rank = 0;
    c->size = 1;
    return 0;
}

void nnrt_comm_finish(const NnrtComm *c, int status) {
    (void)c;
    (void)status;
}

const char *nnrt_comm_name(void) { return "none"; }

void nnrt_comm_sum_f32(const NnrtComm *c, float *buf, int64_t count) {
    (void)c, (void)buf, (void)count;
}

void nnrt_comm_sum_f64(const NnrtComm *c, double *buf, int64_t count) {
    (void)c, (void)buf, (void)count;
}

void nnrt_comm_max_i64(const NnrtComm *c, int64_t *buf, int64_t count) {
    (void)c, (void)buf, (void)count;
}

void nnrt_comm_broadcast(const NnrtComm *c, void *buf, size_t bytes) {
    (void)c, (void)buf, (void)bytes;
}
