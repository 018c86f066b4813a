/* target.h — from an LLVM module to a file: verify, optimize with the new pass manager, emit
 * an object/assembly/IR file, or link an executable against the runtime with `cc`. */
#ifndef NNC_TARGET_H
#define NNC_TARGET_H

#include <llvm-c/Core.h>
#include <stdbool.h>

typedef enum EmitKind { EMIT_EXE, EMIT_OBJ, EMIT_ASM, EMIT_LLVM, EMIT_LIB, EMIT_ONNX } EmitKind;

typedef struct TargetOptions {
    int opt_level;          /* 0..3 */
    const char *triple;     /* NULL: the host; else a --target triple target_known_triple accepts */
    const char *cpu;        /* NULL or "native": the host; else an LLVM CPU name such as x86-64-v3 */
    EmitKind emit;
    const char *output;     /* path; "-" is stdout for asm and llvm */
    const char *runtime_lib;/* libnnrt.a (libnnrt_mpi.a with mpi), for EMIT_EXE */
    bool mpi;               /* link the MPI runtime and the MPI libraries */
    int verbose;
} TargetOptions;

/* Bytes of the widest vector register the target CPU has for floats: 64 with AVX-512 (the host's
 * features, or x86-64-v4), else 32 (AVX2). The code generator sizes its matrix-product tiles
 * to it: 16-float vectors on an AVX2 CPU would be split in two and spill. */
int target_vector_bytes(const TargetOptions *options);
/* Returns 0 on success; 1 when the output cannot be written (a user-facing problem); 2 for
 * internal failures (invalid IR, LLVM errors, the linker failing). Consumes nothing. */
int target_emit(LLVMModuleRef module, const TargetOptions *options);
/* The optimized object code of `module` for the target, in *object (the caller disposes it), for
 * outputs that package it themselves (--emit=lib). Same statuses as target_emit. */
int target_emit_object(LLVMModuleRef module, const TargetOptions *options, LLVMMemoryBufferRef *object);
/* Is `triple` a --target nnc can emit for (the host's, x86_64-linux-gnu, aarch64-linux-gnu)? */
bool target_known_triple(const char *triple);
/* Is `cpu` a --target-cpu of that target (NULL: the host)? *list gets the names for a message. */
bool target_known_cpu(const char *triple, const char *cpu, const char **list);
/* Where the runtime library is (libnnrt.a, or libnnrt_mpi.a for mpi): $NNC_RUNTIME (or
 * $NNC_RUNTIME_MPI), beside the nnc executable, or the install path. NULL when it is nowhere. */
const char *target_find_runtime(bool mpi);
/* The runtime library for executables of `triple` (NULL: the host): target_find_runtime(mpi) for
 * the host, the cross-built aarch64/libnnrt.a ($NNC_RUNTIME_AARCH64, beside nnc, the install path)
 * for aarch64. NULL when there is none. */
const char *target_find_runtime_for(const char *triple, bool mpi);
/* Can a training executable for `triple` be linked (always for the host)? false after printing
 * why not: no cross runtime, an unreadable $NNC_RUNTIME_AARCH64, or --mpi. */
bool target_cross_exe_ok(const char *triple, bool mpi);
/* Was this nnc built with an MPI library to link `--mpi` models against? */
bool target_have_mpi(void);

#endif
