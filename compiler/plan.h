/* plan.h — the memory plan: where every node's tensor lives, decided at compile time.
 * Activations and gradients get offsets in one workspace, reused by liveness; views share their
 * source's storage; a node absorbs a consumer its family can compute in the same kernel (fusion:
 * dense/conv2d with a following activation, maxpool_grad with relu_grad; OpFamily.fuses). */
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
/* Elements of scratch (in the workspace's fixed part, after the per-example buffers) a node's
 * kernel needs (its op family's scratch rule: e.g. the im2col slots of conv2d and its gradients). */
int64_t plan_scratch_elements(const Graph *g, const Node *node);

#endif
