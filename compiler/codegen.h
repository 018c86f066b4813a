/* codegen.h — graph IR + plan to an LLVM module (via the LLVM C API).
 * The module defines `nnrt_model` (runtime/include/nnrt.h): the descriptor and the entry points
 * train_step, eval_step, infer (float32) and train_step_f64 (float64, for gradcheck). */
#ifndef NNC_CODEGEN_H
#define NNC_CODEGEN_H

#include <llvm-c/Core.h>

#include "plan.h"
#include "sema.h"

typedef struct CodegenInfo {
    const char *source_path; /* absolute */
    const char *source_dir;
    const char *source_hash;
    const char *summary;     /* the summary table text */
    int vector_bytes;        /* the target's float vector width (target_vector_bytes): 32 or 64 */
} CodegenInfo;

/* Builds the module in `context`. Returns NULL (after printing why) on an internal failure. */
LLVMModuleRef cg_build_module(LLVMContextRef context, const Model *model, const Plan *plan, const CodegenInfo *info);

/* An inference library (--emit=lib): the inference graph's kernels (the same specialized code as
 * the executable's, run single-threaded per call), the weights as one read-only constant, and two
 * exported functions, PREFIX_workspace_size(int n) and PREFIX_predict(input, n, output, workspace),
 * which applies the input preprocessing below before inference. Every other symbol is private. */
typedef struct CgLibrary {
    const char *prefix;      /* a C identifier: the exported symbols' prefix */
    const float *params;     /* [param_count]: the checkpoint's weights */
    const float *mean, *std; /* [input size] standardization ((x - mean) / std), or NULL */
    double scale;            /* the data spec's scale (1: none), applied first as predict's idx() does */
} CgLibrary;
LLVMModuleRef cg_build_library(LLVMContextRef context, const Model *model, const Plan *plan, const CodegenInfo *info,
                               const CgLibrary *lib);

#endif
