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

#endif
