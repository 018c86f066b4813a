/* autodiff.h — reverse-mode differentiation on the graph IR.
 * Appends the backward nodes (ordinary graph nodes, lowered by the same code generator) that
 * compute d(mean loss)/d(every trainable parameter) into the gradient buffer. */
#ifndef NNC_AUTODIFF_H
#define NNC_AUTODIFF_H

#include <stdbool.h>

#include "graph.h"

/* `inject_bug` names an op whose backward rule is deliberately made wrong (a test build feature
 * that proves `gradcheck` catches a wrong gradient); NULL normally. Returns false for an
 * unknown op name in `inject_bug`. */
bool ad_append_backward(Graph *g, const char *inject_bug);

#endif
