/* plan.h — the memory plan: where every node's tensor lives, decided at compile time.
 * Activations and gradients get offsets in one workspace, reused by liveness; views share their
 * source's storage; dense layers absorb the activation that follows them (fusion). */
#ifndef NNC_PLAN_H
#define NNC_PLAN_H

#include <stdint.h>

#include "arena.h"
#include "graph.h"

typedef enum Storage {
    STORAGE_NONE,      /* losses, metrics: they write the step's sums */
    STORAGE_INPUT,     /* the batch input x */
    STORAGE_TARGET,    /* the batch target y */
    STORAGE_WORKSPACE, /* offset * n elements into the workspace */
    STORAGE_GRAD,      /* a parameter's gradient in the gradient buffer */
} Storage;

typedef struct Plan {
    Storage *storage;  /* per node (views: their source's storage) */
    int64_t *offset;   /* STORAGE_WORKSPACE: elements per example before this buffer */
    int64_t workspace_per_example;
    int64_t workspace_fixed;
    int64_t activation_bytes_per_example; /* float32 workspace bytes, for summaries */
} Plan;

Plan *plan_build(Arena *arena, Graph *g);
/* Convolution kernels cut the batch into this many fixed chunks (example ranges that depend only
 * on n) run by the thread pool; each chunk has its own scratch slot, and the weight gradient sums
 * the chunks' partial sums in chunk order, so results do not depend on the thread count. */
enum { PLAN_CONV_CHUNKS = 8 };
/* Elements of scratch (in the workspace's fixed part, after the per-example buffers) a node's
 * kernel needs: PLAN_CONV_CHUNKS slots of im2col matrix for conv2d and its gradients. */
int64_t plan_scratch_elements(const Graph *g, const Node *node);
/* Elements of one chunk's slot of that scratch. */
int64_t plan_conv_slot_elements(const Graph *g, const Node *node);

#endif
