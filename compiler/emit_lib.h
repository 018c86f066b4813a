/* emit_lib.h — `nnc FILE.nn --emit=lib --weights CKPT [-o NAME]`: the inference library NAME.a
 * (one object, the model's kernels and its weights, depending on libc and libm only) and its
 * header NAME.h, whose exported symbols all start with NAME_ (compiler/DESIGN.md, "Deployment"). */
#ifndef NNC_EMIT_LIB_H
#define NNC_EMIT_LIB_H

#include "arena.h"
#include "codegen.h"
#include "plan.h"
#include "sema.h"
#include "target.h"

typedef struct EmitLibOptions {
    const char *output;       /* NAME or DIR/NAME (a trailing .a or .h is dropped); NULL: the source's stem */
    const char *source;       /* the .nn file, for the default name and the header's comment */
    const char *weights;      /* the checkpoint */
    const char *version;      /* nnc's, for the header's comment */
    TargetOptions target;     /* opt level, --target, --target-cpu */
} EmitLibOptions;

/* Writes NAME.a and NAME.h. Returns 0, 1 after a user-facing error (bad name, wrong checkpoint,
 * unwritable output), 2 after an internal failure. */
int emit_lib(Arena *arena, const Model *model, const Plan *plan, const CodegenInfo *info, const EmitLibOptions *options);

/* The data spec's `scale` (idx(..., scale=)) that predict applies to inputs; 1 when there is none. */
double emit_input_scale(const Model *model);

#endif
