/* summary.h — the `nnc summary` table: every layer with op, output shape, parameters and
 * forward FLOPs per example, then totals (parameters, FLOPs forward and backward, bytes of
 * parameters, optimizer state and activations per example). */
#ifndef NNC_SUMMARY_H
#define NNC_SUMMARY_H

#include "arena.h"
#include "plan.h"
#include "sema.h"

/* One row of the table: a forward node that is a layer (not the target, not a metric). */
typedef struct SummaryLayer {
    const char *name;  /* the layer's name, or "-" for unnamed elementwise steps */
    const char *op;    /* as printed: "dense", "conv1d", "scale/shift", "mean"... */
    const char *shape; /* "[128]", "scalar" */
    int64_t params, flops, backward_flops;
} SummaryLayer;

typedef struct SummaryLayers {
    SummaryLayer *items;
    int count;
    int64_t params, forward_flops, backward_flops; /* totals */
} SummaryLayers;

/* The rows and totals the table is printed from; `nnc diff` and `nnc compare` use them too. */
SummaryLayers summary_layers(Arena *arena, const Model *model);

const char *summary_table(Arena *arena, const Model *model, const Plan *plan);

#endif
