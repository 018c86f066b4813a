/* target.h — from an LLVM module to a file: verify, optimize with the new pass manager, emit
 * an object/assembly/IR file, or link an executable against the runtime with `cc`. */
#ifndef NNC_TARGET_H
#define NNC_TARGET_H

#include <llvm-c/Core.h>

typedef enum EmitKind { EMIT_EXE, EMIT_OBJ, EMIT_ASM, EMIT_LLVM } EmitKind;

typedef struct TargetOptions {
    int opt_level;          /* 0..3 */
    const char *cpu;        /* NULL or "native": the host; else an LLVM CPU name such as x86-64-v3 */
    EmitKind emit;
    const char *output;     /* path; "-" is stdout for asm and llvm */
    const char *runtime_lib;/* libnnrt.a, for EMIT_EXE */
    int verbose;
} TargetOptions;

/* Returns 0 on success; 1 when the output cannot be written (a user-facing problem); 2 for
 * internal failures (invalid IR, LLVM errors, the linker failing). Consumes nothing. */
int target_emit(LLVMModuleRef module, const TargetOptions *options);
/* Where the runtime library is: $NNC_RUNTIME, beside the nnc executable, or the install path. */
const char *target_find_runtime(void);

#endif
