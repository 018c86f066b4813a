/* summary.h — the `nnc summary` table: every layer with op, output shape, parameters and
 * forward FLOPs per example, then totals (parameters, FLOPs forward and backward, bytes of
 * parameters, optimizer state and activations per example). */
#ifndef NNC_SUMMARY_H
#define NNC_SUMMARY_H

#include "arena.h"
#include "plan.h"
#include "sema.h"

const char *summary_table(Arena *arena, const Model *model, const Plan *plan);

#endif
