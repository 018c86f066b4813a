/* checkpoint.h — reading a training checkpoint (safetensors, written by `./model train --save`)
 * into the compiler, for the outputs that embed the weights (--emit=lib, --emit=onnx).
 * The model decides what must be there: every parameter tensor with its exact shape, F32 and
 * finite; nothing else but optimizer state, the best-epoch copies and the standardization
 * statistics, which are read when present. */
#ifndef NNC_CHECKPOINT_H
#define NNC_CHECKPOINT_H

#include "arena.h"
#include "sema.h"

typedef struct Checkpoint {
    const char *path;
    float *params;      /* [graph->param_count], at each ParamTensor's offset */
    float *mean, *std;  /* [input size] (__standardize.mean/std), or NULL when not standardized */
    const char *vocab;  /* metadata "vocab" (csv(tokenize="words"): the words, '\n'-joined), or NULL */
} Checkpoint;

/* Returns 0, or 1 after printing "nnc: error: checkpoint 'PATH': ..." naming the tensor at fault. */
int checkpoint_load(Arena *arena, const char *path, const Model *model, Checkpoint *out);

#endif
