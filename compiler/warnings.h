/* warnings.h — models that compile but are probably not what was meant (called by sema once the
 * forward graph is built). What an op does that matters here is a flag of the op table
 * (OPK_CANCELS_CHANNEL_BIAS, OPK_APPLIES_SOFTMAX, OPK_SEQUENCE_OUTPUT, ...), so no op is named:
 *
 *   - a bias feeding a normalization that cancels it (dense/conv -> batchnorm): suggest bias=false
 *   - an activation a loss applies itself (softmax -> cross_entropy, sigmoid -> bce)
 *   - conv1d or a pool reading a [t, d] sequence as [c, t]: suggest transpose
 *   - a binding or layer whose value reaches neither the loss, a metric nor the output; these
 *     nodes are then removed from the graph (no parameters, computation or summary rows). */
#ifndef NNC_WARNINGS_H
#define NNC_WARNINGS_H

#include <stdbool.h>

#include "arena.h"
#include "diag.h"
#include "graph.h"

/* A name bound to a tensor by an assignment (in a block instance too). */
typedef struct TensorBinding {
    const char *name;
    Span span;
    int node;
} TensorBinding;

/* Reports the warnings above through diag. Returns which forward nodes reach the loss, a metric
 * or the output (for graph_prune), or NULL when that was not decided: `complete` is false when
 * errors left the graph partial (unused values would then be guesses, so they are not reported). */
bool *warnings_check(Arena *arena, Diag *diag, const Graph *g, const TensorBinding *bindings, int binding_count,
                     bool complete);

#endif
