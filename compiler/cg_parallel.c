/* cg_parallel.c — outlining a loop body into a task for the runtime's thread pool.
 *
 * cg_parallel_for(count, values, body) emits body(values, begin, end) for [0, count): the body
 * is built once inside a new internal function task(ctx, begin, end), whose ctx is a struct of
 * the values it reads (pointers and runtime sizes), and the caller hands the task to
 * nnrt_parallel_for. The pool's threads claim pieces of [0, count) as they become free; a body
 * that writes disjoint outputs per index, each computed the same way in any range, therefore
 * gives the same bytes for any thread count and any timing.
 * f64 kernels (gradient checking), `serial` requests and libraries (--emit=lib, which link no
 * runtime: each caller's thread runs its own call) run the body inline on [0, count). */
#include <stdio.h>

#include "cg.h"

enum { CG_PARALLEL_MAX_VALUES = 16 };

void cg_parallel_for(Cg *cg, LLVMValueRef count, LLVMValueRef *values, int value_count, bool serial,
                     CgParallelBody body, void *user) {
    if (serial || cg->f64 || cg->single_thread) {
        body(cg, values, cg_i64(cg, 0), count, user);
        return;
    }
    /* the kernel's shard argument (cg->shard) travels too: cg_batch_first & co. read it */
    LLVMValueRef all[CG_PARALLEL_MAX_VALUES + 1];
    for (int i = 0; i < value_count; i++) all[i] = values[i];
    bool shard = cg->shard != NULL;
    if (shard) all[value_count] = cg->shard;
    int count_all = value_count + (shard ? 1 : 0);
    values = all;
    LLVMTypeRef fields[CG_PARALLEL_MAX_VALUES + 1];
    for (int i = 0; i < count_all; i++) fields[i] = LLVMTypeOf(values[i]);
    LLVMTypeRef ctx_type = LLVMStructTypeInContext(cg->ctx, fields, (unsigned)count_all, false);
    LLVMValueRef ctx = cg_var(cg, ctx_type, "task_ctx");
    for (int i = 0; i < count_all; i++)
        LLVMBuildStore(cg->b, values[i], LLVMBuildStructGEP2(cg->b, ctx_type, ctx, (unsigned)i, ""));

    LLVMValueRef saved_fn = cg->fn, saved_shard = cg->shard;
    LLVMBasicBlockRef saved_entry = cg->entry_block, saved_block = LLVMGetInsertBlock(cg->b);
    LLVMTypeRef task_params[3] = {cg->ptr, cg->i64, cg->i64};
    LLVMTypeRef task_type = LLVMFunctionType(cg->void_type, task_params, 3, false);
    char name[160];
    snprintf(name, sizeof name, "%s.task", LLVMGetValueName(saved_fn)); /* LLVM numbers repeats */
    LLVMValueRef task = LLVMAddFunction(cg->mod, name, task_type);
    LLVMSetLinkage(task, LLVMInternalLinkage);
    cg->fn = task;
    cg->entry_block = LLVMAppendBasicBlockInContext(cg->ctx, task, "entry");
    LLVMPositionBuilderAtEnd(cg->b, cg->entry_block);
    LLVMValueRef arg = LLVMGetParam(task, 0), loaded[CG_PARALLEL_MAX_VALUES + 1];
    for (int i = 0; i < count_all; i++)
        loaded[i] = LLVMBuildLoad2(cg->b, fields[i], LLVMBuildStructGEP2(cg->b, ctx_type, arg, (unsigned)i, ""), "");
    if (shard) cg->shard = loaded[value_count];
    body(cg, loaded, LLVMGetParam(task, 1), LLVMGetParam(task, 2), user);
    LLVMBuildRetVoid(cg->b);
    cg->fn = saved_fn;
    cg->shard = saved_shard;
    cg->entry_block = saved_entry;
    LLVMPositionBuilderAtEnd(cg->b, saved_block);

    LLVMTypeRef pf_params[3] = {cg->i64, cg->ptr, cg->ptr};
    LLVMTypeRef pf_type = LLVMFunctionType(cg->void_type, pf_params, 3, false);
    LLVMValueRef pf = LLVMGetNamedFunction(cg->mod, "nnrt_parallel_for");
    if (!pf) pf = LLVMAddFunction(cg->mod, "nnrt_parallel_for", pf_type);
    LLVMValueRef args[3] = {count, task, ctx};
    LLVMBuildCall2(cg->b, pf_type, pf, args, 3, "");
}
