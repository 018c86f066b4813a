/* plan.c — fusion and buffer assignment.
 *
 * 1. Fusion: a node whose only reader its family can compute in the same kernel (OpFamily.fuses:
 *    dense and conv2d apply a following relu/tanh/sigmoid, maxpool_grad a following relu_grad)
 *    does so; the consumer becomes a view of the producer's buffer. The backward rules need only
 *    the activation's output, so nothing is lost.
 * 2. Liveness: a buffer lives from the node that writes it to the last node that reads it (in
 *    the training step's order, which contains the eval and inference orders).
 * 3. Offsets: greedy first-fit of those intervals in a workspace measured in elements per
 *    example; every buffer is [n, size], so one offset scales with the batch. */
#include "plan.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* A node whose only reader is a consumer its family can compute (OpFamily.fuses) computes it in
 * its own kernel, and the consumer becomes a view of its buffer. */
static void plan_fuse(Graph *g) {
    int count = g->nodes.len;
    int *uses = ARENA_ARRAY(g->arena, int, count);
    for (int i = 0; i < count; i++) {
        const Node *n = graph_node(g, i);
        for (int j = 0; j < n->input_count; j++) uses[n->inputs[j]]++;
    }
    if (g->output >= 0) uses[g->output]++;
    for (int i = 0; i < count; i++) {
        Node *consumer = graph_node(g, i);
        if (consumer->input_count == 0) continue;
        Node *producer = graph_node(g, consumer->inputs[0]);
        const OpFamily *family = ops_family(producer->op);
        if (!family || !family->fuses || producer->fused >= 0 || uses[producer->id] != 1 ||
            !family->fuses(g, producer, consumer))
            continue;
        producer->fused = consumer->id;
        consumer->view_of = producer->id;
    }
}

int64_t plan_scratch_elements(const Graph *g, const Node *node) {
    const OpFamily *family = ops_family(node->op);
    return family && family->scratch ? family->scratch(g, node) : 0;
}

typedef struct Interval {
    int64_t begin_offset, size;
    int first, last; /* node indices */
} Interval;

Plan *plan_build(Arena *arena, Graph *g) {
    plan_fuse(g);
    int count = g->nodes.len;
    Plan *p = ARENA_NEW(arena, Plan);
    p->storage = ARENA_ARRAY(arena, Storage, count);
    p->offset = ARENA_ARRAY(arena, int64_t, count);
    int *last_use = ARENA_ARRAY(arena, int, count);
    for (int i = 0; i < count; i++) last_use[i] = i;
    for (int i = 0; i < count; i++) {
        const Node *n = graph_node(g, i);
        for (int j = 0; j < n->input_count; j++) {
            int src = graph_storage(g, n->inputs[j]);
            if (last_use[src] < i) last_use[src] = i;
        }
    }
    /* The inference output is read after the last forward node. */
    if (g->output >= 0) last_use[graph_storage(g, g->output)] = count;

    /* Live buffers, sorted by offset; a buffer leaves when no node at or after i reads it. */
    Interval *live = ARENA_ARRAY(arena, Interval, count);
    int live_count = 0;
    int64_t high_water = 0;
    for (int i = 0; i < count; i++) {
        const Node *n = graph_node(g, i);
        if (n->view_of >= 0) continue;
        if (i == g->input) { p->storage[i] = STORAGE_INPUT; continue; }
        if (i == g->target) { p->storage[i] = STORAGE_TARGET; continue; }
        if (n->grad_param >= 0) { p->storage[i] = STORAGE_GRAD; continue; }
        if (n->sum_slot >= 0 || n->shape.rank == 0) { p->storage[i] = STORAGE_NONE; continue; }
        p->storage[i] = STORAGE_WORKSPACE;
        int kept = 0;
        for (int k = 0; k < live_count; k++)
            if (live[k].last >= i) live[kept++] = live[k];
        live_count = kept;
        /* Sizes are rounded to 16 elements so every buffer starts 64-byte aligned for float32. */
        int64_t size = (n->size + 15) & ~(int64_t)15;
        /* First fit: the lowest gap between live buffers that holds this one. */
        int64_t offset = 0;
        int at = 0;
        for (; at < live_count && live[at].begin_offset < offset + size; at++)
            if (live[at].begin_offset + live[at].size > offset) offset = live[at].begin_offset + live[at].size;
        memmove(&live[at + 1], &live[at], sizeof(Interval) * (size_t)(live_count - at));
        live[at] = (Interval){offset, size, i, last_use[i]};
        live_count++;
        p->offset[i] = offset;
        if (offset + size > high_water) high_water = offset + size;
    }
    for (int i = 0; i < count; i++) {
        int src = graph_storage(g, i);
        if (src != i) {
            p->storage[i] = p->storage[src];
            p->offset[i] = p->offset[src];
        }
    }
    p->workspace_per_example = high_water;
    /* The fixed part is scratch for one kernel at a time; 16 elements of slack keep even a
     * model without such kernels a valid pointer. */
    int64_t scratch = 0;
    for (int i = 0; i < count; i++) {
        int64_t need = plan_scratch_elements(g, graph_node(g, i));
        if (need > scratch) scratch = need;
    }
    p->workspace_fixed = scratch + 16;
    p->activation_bytes_per_example = high_water * 4;
    return p;
}
