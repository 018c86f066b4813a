/* codegen.c — the LLVM module: kernels, entry points and the model descriptor.
 *
 * Each entry point (train_step, eval_step, infer, train_step_f64) is a straight sequence of
 * kernel calls in graph order over the nodes it needs; buffer addresses come from the plan
 * (workspace offset * n). Kernels are specialized per node and element type (cg_*.c). */
#include "codegen.h"

#include <llvm-c/DebugInfo.h>

#include <stdio.h>
#include <string.h>

#include "cg.h"
#include "ops.h"
#include "nnrt.h"

/* ---------------------------------------------------------------- IR helpers */

LLVMValueRef cg_i64(Cg *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, true); }
LLVMValueRef cg_const(Cg *cg, double v) { return LLVMConstReal(cg->elem, v); }

LLVMValueRef cg_var(Cg *cg, LLVMTypeRef type, const char *name) {
    LLVMBuilderRef b = LLVMCreateBuilderInContext(cg->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(cg->entry_block);
    if (first)
        LLVMPositionBuilderBefore(b, first);
    else
        LLVMPositionBuilderAtEnd(b, cg->entry_block);
    LLVMValueRef v = LLVMBuildAlloca(b, type, name);
    LLVMDisposeBuilder(b);
    return v;
}

CgFunctionScope cg_function_save(Cg *cg) {
    return (CgFunctionScope){cg->fn, cg->shard, cg->entry_block, LLVMGetInsertBlock(cg->b), cg->args};
}

CgFunctionScope cg_function_enter(Cg *cg, LLVMValueRef fn) {
    CgFunctionScope saved = cg_function_save(cg);
    cg->fn = fn;
    cg->shard = NULL;
    cg->args = (CgKernelArgs){0};
    cg->entry_block = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(cg->b, cg->entry_block);
    return saved;
}

void cg_function_leave(Cg *cg, const CgFunctionScope *saved) {
    cg->fn = saved->fn;
    cg->shard = saved->shard;
    cg->args = saved->args;
    cg->entry_block = saved->entry_block;
    LLVMPositionBuilderAtEnd(cg->b, saved->block);
}

LLVMValueRef cg_gep(Cg *cg, LLVMValueRef base, LLVMValueRef index) {
    return LLVMBuildInBoundsGEP2(cg->b, cg->elem, base, &index, 1, "");
}

LLVMValueRef cg_load(Cg *cg, LLVMValueRef base, LLVMValueRef index) {
    return LLVMBuildLoad2(cg->b, cg->elem, cg_gep(cg, base, index), "");
}

void cg_store(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index) {
    LLVMBuildStore(cg->b, value, cg_gep(cg, base, index));
}

static LLVMValueRef cg_fast(LLVMValueRef v) {
    if (LLVMCanValueUseFastMathFlags(v))
        LLVMSetFastMathFlags(v, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract | LLVMFastMathNoSignedZeros);
    return v;
}

/* contract only: a multiply-add may fuse, but no sum is reordered */
static LLVMValueRef cg_contract(LLVMValueRef v) {
    if (LLVMCanValueUseFastMathFlags(v)) LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
    return v;
}
LLVMValueRef cg_fadd_ordered(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return cg_contract(LLVMBuildFAdd(cg->b, a, b, "")); }
LLVMValueRef cg_fsub_ordered(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return cg_contract(LLVMBuildFSub(cg->b, a, b, "")); }
LLVMValueRef cg_fmul_ordered(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return cg_contract(LLVMBuildFMul(cg->b, a, b, "")); }
LLVMValueRef cg_fadd(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return cg_fast(LLVMBuildFAdd(cg->b, a, b, "")); }
LLVMValueRef cg_fsub(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return cg_fast(LLVMBuildFSub(cg->b, a, b, "")); }
LLVMValueRef cg_fmul(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return cg_fast(LLVMBuildFMul(cg->b, a, b, "")); }
LLVMValueRef cg_fdiv(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return cg_fast(LLVMBuildFDiv(cg->b, a, b, "")); }
LLVMValueRef cg_mul(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(cg->b, a, b, ""); }
LLVMValueRef cg_add(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(cg->b, a, b, ""); }

LLVMValueRef cg_math(Cg *cg, const char *intrinsic, LLVMValueRef x) {
    unsigned id = LLVMLookupIntrinsicID(intrinsic, strlen(intrinsic));
    LLVMTypeRef type = LLVMTypeOf(x);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, &type, 1);
    LLVMTypeRef fn_type = LLVMIntrinsicGetType(cg->ctx, id, &type, 1);
    return LLVMBuildCall2(cg->b, fn_type, fn, &x, 1, "");
}

LLVMValueRef cg_libm(Cg *cg, const char *name, LLVMValueRef x) {
    char full[32];
    snprintf(full, sizeof full, "%s%s", name, cg->f64 ? "" : "f");
    LLVMTypeRef fn_type = LLVMFunctionType(cg->elem, &cg->elem, 1, false);
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, full);
    if (!fn) fn = LLVMAddFunction(cg->mod, full, fn_type);
    return LLVMBuildCall2(cg->b, fn_type, fn, &x, 1, "");
}

LLVMValueRef cg_max(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef gt = LLVMBuildFCmp(cg->b, LLVMRealOGT, a, b, "");
    return LLVMBuildSelect(cg->b, gt, a, b, "");
}

LLVMValueRef cg_to_double(Cg *cg, LLVMValueRef x) {
    return cg->f64 ? x : LLVMBuildFPExt(cg->b, x, cg->f64_type, "");
}

LLVMValueRef cg_n_as_elem(Cg *cg, LLVMValueRef n) { return LLVMBuildSIToFP(cg->b, n, cg->elem, ""); }

CgLoop cg_loop_begin(Cg *cg, LLVMValueRef lo, LLVMValueRef hi, const char *name) {
    CgLoop loop = {0};
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
    loop.header = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
    loop.body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "body");
    loop.exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "exit");
    LLVMBuildBr(cg->b, loop.header);
    LLVMPositionBuilderAtEnd(cg->b, loop.header);
    loop.iv = LLVMBuildPhi(cg->b, cg->i64, name);
    LLVMAddIncoming(loop.iv, &lo, &pre, 1);
    LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSLT, loop.iv, hi, "");
    LLVMBuildCondBr(cg->b, more, loop.body, loop.exit);
    LLVMPositionBuilderAtEnd(cg->b, loop.body);
    return loop;
}

/* !llvm.loop !{self, !{"llvm.loop.unroll.disable"}} on a latch branch */
static void cg_disable_unroll(Cg *cg, LLVMValueRef branch) {
    const char *text = "llvm.loop.unroll.disable";
    LLVMMetadataRef name = LLVMMDStringInContext2(cg->ctx, text, strlen(text));
    LLVMMetadataRef property = LLVMMDNodeInContext2(cg->ctx, &name, 1);
    LLVMMetadataRef self = LLVMTemporaryMDNode(cg->ctx, NULL, 0);
    LLVMMetadataRef ops[2] = {self, property};
    LLVMMetadataRef loop_id = LLVMMDNodeInContext2(cg->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(self, loop_id); /* makes the node refer to itself, as loop IDs do */
    LLVMSetMetadata(branch, LLVMGetMDKindIDInContext(cg->ctx, "llvm.loop", 9), LLVMMetadataAsValue(cg->ctx, loop_id));
}

void cg_loop_end(Cg *cg, CgLoop *loop) {
    LLVMValueRef next = LLVMBuildNSWAdd(cg->b, loop->iv, cg_i64(cg, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
    LLVMValueRef branch = LLVMBuildBr(cg->b, loop->header);
    if (loop->no_unroll) cg_disable_unroll(cg, branch);
    LLVMAddIncoming(loop->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(cg->b, loop->exit);
}

static void cg_set_attr(Cg *cg, LLVMValueRef fn, unsigned index, const char *name) {
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, index, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
}

/* The float64 twin only serves gradcheck on a batch of 3: optimizing it would double compile
 * time for nothing, so its functions are left as written (optnone requires noinline). */
static void cg_mark_unoptimized_if_f64(Cg *cg, LLVMValueRef fn) {
    if (!cg->f64) return;
    cg_set_attr(cg, fn, LLVMAttributeFunctionIndex, "optnone");
    cg_set_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
}


/* ---------------------------------------------------------------- the global batch (NnrtShard)
 * Kernels whose result depends on the whole batch rather than on their own examples take the
 * train step's `const NnrtShard *` as a trailing argument (their families flag them
 * OPK_GLOBAL_BATCH): the loss gradients (1 / total), dropout in training (global example index)
 * and batchnorm's training statistics (allreduce_sum). */
/* Kernels that take the step seed (dropout's masks; their families flag them OPK_SEEDED). */
static bool cg_seeded(const Node *n, bool training) { return (ops_kind_flags(n->op) & OPK_SEEDED) && (training || n->backward); }

static bool cg_sharded(const Node *n, bool training) {
    return (ops_kind_flags(n->op) & OPK_GLOBAL_BATCH) && (training || n->backward);
}

/* struct NnrtShard { i64 total; i64 first; ptr allreduce_sum; ptr comm; } */
static LLVMValueRef cg_shard_field(Cg *cg, unsigned field, LLVMTypeRef type) {
    LLVMTypeRef fields[] = {cg->i64, cg->i64, cg->ptr, cg->ptr};
    LLVMTypeRef shard_type = LLVMStructTypeInContext(cg->ctx, fields, 4, false);
    return LLVMBuildLoad2(cg->b, type, LLVMBuildStructGEP2(cg->b, shard_type, cg->shard, field, ""), "");
}

LLVMValueRef cg_batch_total(Cg *cg, LLVMValueRef n) { return cg->shard ? cg_shard_field(cg, 0, cg->i64) : n; }
LLVMValueRef cg_batch_first(Cg *cg) { return cg->shard ? cg_shard_field(cg, 1, cg->i64) : cg_i64(cg, 0); }

void cg_allreduce_sum(Cg *cg, LLVMValueRef buf, int64_t count) {
    if (!cg->shard) return;
    LLVMTypeRef params[] = {cg->ptr, cg->ptr, cg->i64};
    LLVMTypeRef type = LLVMFunctionType(cg->void_type, params, 3, false);
    LLVMValueRef args[] = {cg->shard, buf, cg_i64(cg, count)};
    LLVMBuildCall2(cg->b, type, cg_shard_field(cg, 2, cg->ptr), args, 3, "");
}

CgKernelArgs cg_kernel_args(const Graph *g, const Node *node, bool training, bool update) {
    CgKernelArgs a = {0};
    a.items[a.count++] = (CgArg){CG_ARG_OUTPUT, 0};
    for (int j = 0; j < node->input_count; j++) a.items[a.count++] = (CgArg){CG_ARG_INPUT, j};
    if (node->weight >= 0) a.items[a.count++] = (CgArg){CG_ARG_WEIGHT, 0};
    if (node->bias >= 0) a.items[a.count++] = (CgArg){CG_ARG_BIAS, 0};
    if (node->running_mean >= 0) a.items[a.count++] = (CgArg){CG_ARG_RUNNING_MEAN, 0};
    if (node->running_var >= 0) a.items[a.count++] = (CgArg){CG_ARG_RUNNING_VAR, 0};
    if (plan_scratch_elements(g, node) > 0) a.items[a.count++] = (CgArg){CG_ARG_SCRATCH, 0};
    a.items[a.count++] = (CgArg){CG_ARG_BATCH, 0};
    if (cg_seeded(node, training)) a.items[a.count++] = (CgArg){CG_ARG_SEED, 0};
    if (cg_sharded(node, training)) a.items[a.count++] = (CgArg){CG_ARG_SHARD, 0};
    if (update) {
        a.items[a.count++] = (CgArg){CG_ARG_UPDATED, 0};
        a.items[a.count++] = (CgArg){CG_ARG_UPDATE, 0};
    }
    return a;
}

static bool cg_arg_is_i64(CgArgRole role) { return role == CG_ARG_BATCH || role == CG_ARG_SEED; }

LLVMValueRef cg_arg(Cg *cg, CgArgRole role, int index) {
    for (int i = 0; i < cg->args.count; i++)
        if (cg->args.items[i].role == role && cg->args.items[i].index == index) return LLVMGetParam(cg->fn, (unsigned)i);
    return NULL;
}

LLVMValueRef cg_kernel_begin(Cg *cg, const Node *node) {
    bool inference_variant = ops_inference_variant(cg->g, node) && !cg->training;
    char name[96];
    snprintf(name, sizeof name, "k%d_%s%s%s_%s", node->id, graph_op_names[node->op], inference_variant ? "_eval" : "",
             cg->update_variant ? "_update" : "", cg->f64 ? "f64" : "f32");
    CgKernelArgs args = cg_kernel_args(cg->g, node, cg->training, cg->update_variant);
    LLVMTypeRef params[sizeof args.items / sizeof args.items[0]];
    for (int i = 0; i < args.count; i++) params[i] = cg_arg_is_i64(args.items[i].role) ? cg->i64 : cg->ptr;
    LLVMTypeRef type = LLVMFunctionType(cg->void_type, params, (unsigned)args.count, false);
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, type);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    /* Buffers never overlap (the plan guarantees it): noalias lets LLVM vectorize freely. The
     * shard and the update are descriptors, not buffers. */
    for (int i = 0; i < args.count; i++) {
        CgArgRole role = args.items[i].role;
        if (cg_arg_is_i64(role) || role == CG_ARG_SHARD || role == CG_ARG_UPDATE) continue;
        cg_set_attr(cg, fn, (unsigned)i + 1, "noalias");
        cg_set_attr(cg, fn, (unsigned)i + 1, "nocapture");
    }
    cg_set_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
    /* Each kernel runs once per step: inlining gains nothing and hides kernels from profiles. */
    if (!cg->f64) cg_set_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
    cg_mark_unoptimized_if_f64(cg, fn);
    cg->fn = fn;
    cg->args = args;
    cg->shard = cg_arg(cg, CG_ARG_SHARD, 0);
    cg->entry_block = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(cg->b, cg->entry_block);
    return fn;
}

void cg_kernel_end(Cg *cg) { LLVMBuildRetVoid(cg->b); }

/* ---------------------------------------------------------------- entry points */

typedef enum EntryKind { ENTRY_TRAIN, ENTRY_EVAL, ENTRY_INFER } EntryKind;

static LLVMValueRef cg_node_kernel(Cg *cg, const Node *n) { return ops_family(n->op)->kernel(cg, n); }

/* Which nodes an entry point must run: everything its roots depend on. */
static bool *cg_needed(Cg *cg, EntryKind kind) {
    const Graph *g = cg->g;
    int count = g->nodes.len;
    bool *need = ARENA_ARRAY(g->arena, bool, count);
    if (kind == ENTRY_INFER) {
        need[g->output] = true;
    } else {
        need[g->loss] = true;
        for (int i = 0; i < g->metrics.len; i++) need[((Node *)g->metrics.items[i])->id] = true;
        if (kind == ENTRY_TRAIN)
            for (int i = g->forward_count; i < count; i++) need[i] = true;
    }
    for (int i = count - 1; i >= 0; i--) {
        if (!need[i]) continue;
        const Node *n = graph_node(g, i);
        for (int j = 0; j < n->input_count; j++) need[n->inputs[j]] = true;
        if (n->view_of >= 0) need[n->view_of] = true;
    }
    return need;
}

typedef struct EntryArgs {
    LLVMValueRef params, grads, x, y, ws, n, seed, sums, out, shard;
    bool training;
    LLVMValueRef update;       /* train_step_update: its const NnrtUpdate *; else NULL */
    struct CgUpdates *updates; /* with update: what both update entry points share */
} EntryArgs;

/* Built once for train_step_update and its profiled twin: each parameter's update pass, and each
 * gradient kernel's update variant (NULL when its family does not fuse the update: tried). */
typedef struct CgUpdates {
    LLVMValueRef *passes;   /* per parameter */
    LLVMValueRef *kernels;  /* per node */
    bool *tried;            /* per node */
} CgUpdates;

static LLVMValueRef cg_node_pointer(Cg *cg, const EntryArgs *a, const Node *n) {
    switch (cg->plan->storage[n->id]) {
    case STORAGE_INPUT: return a->x;
    case STORAGE_TARGET: return a->y;
    case STORAGE_WORKSPACE:
        return cg_gep(cg, a->ws, cg_mul(cg, cg_i64(cg, cg->plan->offset[n->id]), a->n));
    case STORAGE_GRAD:
        return cg_gep(cg, a->grads, cg_i64(cg, graph_param(cg->g, n->grad_param)->offset));
    case STORAGE_NONE: {
        LLVMValueRef index = cg_i64(cg, n->sum_slot);
        return LLVMBuildInBoundsGEP2(cg->b, cg->f64_type, a->sums, &index, 1, "");
    }
    }
    return NULL;
}

static LLVMValueRef cg_param_pointer(Cg *cg, const EntryArgs *a, int param) {
    return cg_gep(cg, a->params, cg_i64(cg, graph_param(cg->g, param)->offset));
}

/* The value the caller passes for one argument of n's kernel (see cg_kernel_args). */
static LLVMValueRef cg_arg_value(Cg *cg, const EntryArgs *a, const Node *n, CgArg arg) {
    switch (arg.role) {
    case CG_ARG_OUTPUT: return cg_node_pointer(cg, a, n);
    case CG_ARG_INPUT: return cg_node_pointer(cg, a, graph_node(cg->g, n->inputs[arg.index]));
    case CG_ARG_WEIGHT: return cg_param_pointer(cg, a, n->weight);
    case CG_ARG_BIAS: return cg_param_pointer(cg, a, n->bias);
    case CG_ARG_RUNNING_MEAN: return cg_param_pointer(cg, a, n->running_mean);
    case CG_ARG_RUNNING_VAR: return cg_param_pointer(cg, a, n->running_var);
    case CG_ARG_SCRATCH: /* the fixed part after the per-example buffers */
        return cg_gep(cg, a->ws, cg_mul(cg, cg_i64(cg, cg->plan->workspace_per_example), a->n));
    case CG_ARG_BATCH: return a->n;
    case CG_ARG_SEED: return a->seed;
    case CG_ARG_SHARD: return a->shard;
    case CG_ARG_UPDATED: return cg_param_pointer(cg, a, n->grad_param);
    case CG_ARG_UPDATE: return a->update;
    }
    return NULL;
}

/* The per-kernel profile of train_step_profiled: one NnrtKernelInfo constant per kernel call. */
typedef struct CgProfile {
    LLVMValueRef *infos;
    int count;
} CgProfile;

static LLVMValueRef cg_string(Cg *cg, const char *s);

/* Floating-point operations per example of a node's kernel in the profile (its family's). */
static int64_t cg_node_flops(const Graph *g, const Node *n) {
    const OpFamily *family = ops_family(n->op);
    return family && family->kernel_flops ? family->kernel_flops(g, n) : 0;
}

/* nnrt_profile_mark(kernel) */
static void cg_profile_mark(Cg *cg, int kernel) {
    LLVMTypeRef type = LLVMFunctionType(cg->void_type, &cg->i32, 1, false);
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, "nnrt_profile_mark");
    if (!fn) fn = LLVMAddFunction(cg->mod, "nnrt_profile_mark", type);
    LLVMValueRef arg = LLVMConstInt(cg->i32, (unsigned long long)(int64_t)kernel, true);
    LLVMBuildCall2(cg->b, type, fn, &arg, 1, "");
}

/* updates: the kernel's update variant ("dense_dw dense0+update") */
static void cg_profile_kernel(Cg *cg, CgProfile *prof, const Node *n, bool updates) {
    const Node *fwd = graph_forward_of(cg->g, n);
    char name[160];
    snprintf(name, sizeof name, "%s %s%s", graph_op_names[n->op], fwd->layer ? fwd->layer : "", updates ? "+update" : "");
    LLVMValueRef fields[2] = {cg_string(cg, name), cg_i64(cg, cg_node_flops(cg->g, n))};
    prof->infos[prof->count] = LLVMConstStructInContext(cg->ctx, fields, 2, false);
    cg_profile_mark(cg, prof->count++);
}

/* train_step_update: where each trainable parameter is updated. A parameter whose gradient some
 * kernel writes is updated right after the last kernel that reads it (weight, bias) or writes its
 * gradient: the gradient is complete and no later kernel reads the old value. One with no
 * gradient kernel gets its zero gradient at the end of the step and is updated after it (-1). */
static int *cg_update_points(Cg *cg, const bool *need) {
    const Graph *g = cg->g;
    int *at = ARENA_ARRAY(g->arena, int, g->params.len + 1);
    bool *written = ARENA_ARRAY(g->arena, bool, g->params.len + 1);
    for (int p = 0; p < g->params.len; p++) at[p] = -1;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = graph_node(g, i);
        if (!need[i] || n->view_of >= 0 || i == g->input || i == g->target) continue;
        const int uses[] = {n->weight, n->bias, n->grad_param};
        for (int k = 0; k < 3; k++)
            if (uses[k] >= 0) at[uses[k]] = i;
        if (n->grad_param >= 0) written[n->grad_param] = true;
    }
    for (int p = 0; p < g->params.len; p++)
        if (!written[p]) at[p] = -1;
    return at;
}

/* The update of parameter p in train_step_update (and its own row in the profile). */
static void cg_call_update(Cg *cg, const EntryArgs *a, int p, CgProfile *prof) {
    const ParamTensor *t = graph_param(cg->g, p);
    if (!t->trainable || t->size == 0) return;
    LLVMValueRef *pass = &a->updates->passes[p];
    if (!*pass) *pass = cg_optim_update_kernel(cg, p);
    LLVMValueRef args[3] = {a->params, a->grads, a->update};
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(*pass), *pass, args, 3, "");
    if (!prof) return;
    char name[160];
    snprintf(name, sizeof name, "update %s", t->name);
    LLVMValueRef fields[2] = {cg_string(cg, name), cg_i64(cg, 0)};
    prof->infos[prof->count] = LLVMConstStructInContext(cg->ctx, fields, 2, false);
    cg_profile_mark(cg, prof->count++);
}

/* Builds n's kernel (its update variant with `update`) without disturbing the function being built. */
static LLVMValueRef cg_build_kernel(Cg *cg, const EntryArgs *a, const Node *n, bool update) {
    CgFunctionScope saved = cg_function_save(cg);
    cg->training = a->training;
    cg->update_variant = update;
    cg->update_applied = false;
    LLVMValueRef fn = cg_node_kernel(cg, n);
    if (update && !cg->update_applied) {
        LLVMDeleteFunction(fn); /* the family computes the gradient only: the separate pass updates */
        fn = NULL;
    }
    cg->update_variant = cg->update_applied = false;
    cg_function_leave(cg, &saved);
    return fn;
}

/* train_step_update: node i's update variant when the update of the parameter whose gradient it
 * writes is due right after it (update_at) and its family applies it in the kernel; else NULL. */
static LLVMValueRef cg_update_variant(Cg *cg, const EntryArgs *a, const Node *n, const int *update_at) {
    if (!update_at || n->grad_param < 0 || update_at[n->grad_param] != n->id) return NULL;
    const ParamTensor *t = graph_param(cg->g, n->grad_param);
    if (!t->trainable || t->size == 0) return NULL;
    if (!a->updates->tried[n->id]) {
        a->updates->tried[n->id] = true;
        a->updates->kernels[n->id] = cg_build_kernel(cg, a, n, true);
    }
    return a->updates->kernels[n->id];
}

static void cg_call_kernels(Cg *cg, const EntryArgs *a, EntryKind kind, LLVMValueRef *kernels, CgProfile *prof) {
    const Graph *g = cg->g;
    bool *need = cg_needed(cg, kind);
    int *update_at = a->update ? cg_update_points(cg, need) : NULL;
    if (prof) cg_profile_mark(cg, -1);
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = graph_node(g, i);
        if (!need[i] || n->view_of >= 0 || i == g->input || i == g->target) continue;
        LLVMValueRef fn = cg_update_variant(cg, a, n, update_at);
        bool updates = fn != NULL; /* the kernel updates its parameter itself */
        /* In eval/infer the loss kernel writes the loss slot; in train it does too. */
        CgKernelArgs layout = cg_kernel_args(g, n, a->training, updates);
        LLVMValueRef args[sizeof layout.items / sizeof layout.items[0]];
        for (int k = 0; k < layout.count; k++) args[k] = cg_arg_value(cg, a, n, layout.items[k]);
        int count = layout.count;
        if (!updates) {
            /* kernels[] holds 2 x the nodes: a mode-specific op's inference variant (eval, infer)
             * at count + i, every other kernel at i (shared by the entry points that call it) */
            int slot = ops_inference_variant(g, n) && !a->training ? g->nodes.len + i : i;
            fn = kernels[slot];
            if (!fn) fn = kernels[slot] = cg_build_kernel(cg, a, n, false);
        }
        LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)count, "");
        if (prof) cg_profile_kernel(cg, prof, n, updates);
        if (update_at)
            for (int p = 0; p < g->params.len; p++)
                if (update_at[p] == i && !(updates && p == n->grad_param)) cg_call_update(cg, a, p, prof);
    }
    if (kind == ENTRY_TRAIN) {
        /* Parameters no node differentiates (off the loss's path) get zero gradients. */
        bool *written = ARENA_ARRAY(g->arena, bool, g->params.len);
        for (int i = g->forward_count; i < g->nodes.len; i++)
            if (graph_node(g, i)->grad_param >= 0) written[graph_node(g, i)->grad_param] = true;
        for (int p = 0; p < g->params.len; p++) {
            if (written[p]) continue;
            const ParamTensor *t = graph_param(g, p);
            LLVMBuildMemSet(cg->b, cg_gep(cg, a->grads, cg_i64(cg, t->offset)), LLVMConstInt(LLVMInt8TypeInContext(cg->ctx), 0, 0),
                            cg_i64(cg, t->size * (cg->f64 ? 8 : 4)), 8);
        }
    }
    if (update_at)
        for (int p = 0; p < g->params.len; p++)
            if (update_at[p] < 0) cg_call_update(cg, a, p, prof);
}

/* infer's last step: the output tensor, as probabilities for classifiers. */
static void cg_emit_output(Cg *cg, const EntryArgs *a) {
    const Graph *g = cg->g;
    const Node *out = graph_node(g, g->output);
    LLVMValueRef src = cg_node_pointer(cg, a, out);
    int64_t size = out->size;
    if (cg->model->output_kind != NNRT_OUTPUT_PROBABILITIES) {
        LLVMBuildMemCpy(cg->b, a->out, 4, src, 4, cg_mul(cg, a->n, cg_i64(cg, size * 4)));
        return;
    }
    /* one distribution per row of the last axis: per example, or per position of [t, C] logits */
    int64_t classes = out->shape.dims[out->shape.rank - 1], rows = size / classes;
    LLVMValueRef max_var = cg_var(cg, cg->elem, "max");
    LLVMValueRef sum_var = cg_var(cg, cg->elem, "sum");
    CgLoop row = cg_loop_begin(cg, cg_i64(cg, 0), rows > 1 ? cg_mul(cg, a->n, cg_i64(cg, rows)) : a->n, "row");
    cg_row_softmax(cg, a->out, src, cg_mul(cg, row.iv, cg_i64(cg, classes)), cg_i64(cg, classes), max_var, sum_var);
    cg_loop_end(cg, &row);
}

static void cg_select_type(Cg *cg, bool f64) {
    cg->f64 = f64;
    cg->elem = f64 ? cg->f64_type : LLVMFloatTypeInContext(cg->ctx);
}

/* train_step(params, grads, x, y, ws, n, seed, sums, shard) / eval_step(params, x, y, ws, n, sums) /
 * infer(params, x, ws, n, out); with updates (float32 training only), train_step_update:
 * train_step's arguments and the const NnrtUpdate *. */
static LLVMValueRef cg_entry(Cg *cg, EntryKind kind, bool f64, const char *name, LLVMValueRef *kernels, CgProfile *prof,
                             CgUpdates *updates) {
    cg_select_type(cg, f64);
    LLVMTypeRef p = cg->ptr;
    LLVMTypeRef train_params[] = {p, p, p, p, p, cg->i64, cg->i64, p, p, p};
    LLVMTypeRef eval_params[] = {p, p, p, p, cg->i64, p};
    LLVMTypeRef infer_params[] = {p, p, p, cg->i64, p};
    LLVMTypeRef type = kind == ENTRY_TRAIN  ? LLVMFunctionType(cg->void_type, train_params, updates ? 10 : 9, false)
                       : kind == ENTRY_EVAL ? LLVMFunctionType(cg->void_type, eval_params, 6, false)
                                            : LLVMFunctionType(cg->void_type, infer_params, 5, false);
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, type);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    cg_mark_unoptimized_if_f64(cg, fn);
    cg->fn = fn;
    cg->shard = NULL;
    cg->entry_block = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(cg->b, cg->entry_block);
    EntryArgs a = {0};
    a.seed = cg_i64(cg, 0);
    if (kind == ENTRY_TRAIN) {
        a.params = LLVMGetParam(fn, 0);
        a.grads = LLVMGetParam(fn, 1);
        a.x = LLVMGetParam(fn, 2);
        a.y = LLVMGetParam(fn, 3);
        a.ws = LLVMGetParam(fn, 4);
        a.n = LLVMGetParam(fn, 5);
        a.seed = LLVMGetParam(fn, 6);
        a.sums = LLVMGetParam(fn, 7);
        a.shard = LLVMGetParam(fn, 8);
        a.training = true;
        if (updates) a.update = LLVMGetParam(fn, 9), a.updates = updates;
    } else if (kind == ENTRY_EVAL) {
        a.params = LLVMGetParam(fn, 0);
        a.x = LLVMGetParam(fn, 1);
        a.y = LLVMGetParam(fn, 2);
        a.ws = LLVMGetParam(fn, 3);
        a.n = LLVMGetParam(fn, 4);
        a.sums = LLVMGetParam(fn, 5);
    } else {
        a.params = LLVMGetParam(fn, 0);
        a.x = LLVMGetParam(fn, 1);
        a.ws = LLVMGetParam(fn, 2);
        a.n = LLVMGetParam(fn, 3);
        a.out = LLVMGetParam(fn, 4);
    }
    cg_call_kernels(cg, &a, kind, kernels, prof);
    if (kind == ENTRY_INFER) cg_emit_output(cg, &a);
    LLVMBuildRetVoid(cg->b);
    return fn;
}

/* ---------------------------------------------------------------- the descriptor */

static LLVMValueRef cg_string(Cg *cg, const char *s) {
    if (!s) return LLVMConstNull(cg->ptr);
    LLVMValueRef init = LLVMConstStringInContext(cg->ctx, s, (unsigned)strlen(s), false);
    LLVMValueRef global = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), ".str");
    LLVMSetInitializer(global, init);
    LLVMSetGlobalConstant(global, true);
    LLVMSetLinkage(global, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(global, LLVMGlobalUnnamedAddr);
    return global;
}

static LLVMValueRef cg_const_global(Cg *cg, LLVMValueRef init, const char *name) {
    LLVMValueRef global = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(global, init);
    LLVMSetGlobalConstant(global, true);
    LLVMSetLinkage(global, LLVMPrivateLinkage);
    return global;
}

static LLVMValueRef cg_i32c(Cg *cg, int64_t v) { return LLVMConstInt(cg->i32, (unsigned long long)v, true); }

static LLVMValueRef cg_dims(Cg *cg, const Shape *s) {
    LLVMValueRef dims[NNRT_MAX_RANK];
    for (int i = 0; i < NNRT_MAX_RANK; i++) dims[i] = cg_i64(cg, i < s->rank ? s->dims[i] : 0);
    return LLVMConstArray2(cg->i64, dims, NNRT_MAX_RANK);
}

/* Does the train step draw random numbers (a kernel takes the step seed)? */
static int cg_uses_rng(const Graph *g) {
    for (int i = 0; i < g->nodes.len; i++)
        if (ops_kind_flags(graph_node(g, i)->op) & OPK_SEEDED) return 1;
    return 0;
}

/* Mirrors struct NnrtParam / NnrtTrainDefaults / NnrtModel in nnrt.h, field by field. */
static void cg_descriptor(Cg *cg, const CodegenInfo *info, LLVMValueRef *entries, const CgProfile *prof,
                          const CgProfile *update_prof) {
    const Model *m = cg->model;
    const Graph *g = cg->g;
    LLVMTypeRef dims_type = LLVMArrayType2(cg->i64, NNRT_MAX_RANK);
    LLVMTypeRef param_fields[] = {cg->ptr, cg->i32, dims_type, cg->i64, cg->i64, cg->i32, cg->i64, cg->i64, cg->i32};
    LLVMTypeRef param_type = LLVMStructTypeInContext(cg->ctx, param_fields, 9, false);
    LLVMValueRef *params = ARENA_ARRAY(g->arena, LLVMValueRef, g->params.len + 1);
    for (int i = 0; i < g->params.len; i++) {
        const ParamTensor *t = graph_param(g, i);
        LLVMValueRef f[] = {cg_string(cg, t->name), cg_i32c(cg, t->shape.rank), cg_dims(cg, &t->shape), cg_i64(cg, t->offset),
                            cg_i64(cg, t->size), cg_i32c(cg, t->init), cg_i64(cg, t->fan_in), cg_i64(cg, t->fan_out),
                            cg_i32c(cg, t->trainable)};
        params[i] = LLVMConstStructInContext(cg->ctx, f, 9, false);
    }
    LLVMValueRef param_table = cg_const_global(cg, LLVMConstArray2(param_type, params, (uint64_t)g->params.len), "nnc.params");

    LLVMValueRef *metric_names = ARENA_ARRAY(g->arena, LLVMValueRef, m->metric_count + 1);
    LLVMValueRef *metric_reduce = ARENA_ARRAY(g->arena, LLVMValueRef, m->metric_count + 1);
    for (int i = 0; i < m->metric_count; i++) {
        metric_names[i] = cg_string(cg, m->metric_names[i]);
        metric_reduce[i] = cg_i32c(cg, m->metric_reduce[i]);
    }
    metric_names[m->metric_count] = LLVMConstNull(cg->ptr);
    metric_reduce[m->metric_count] = cg_i32c(cg, 0);
    LLVMValueRef names_table = cg_const_global(cg, LLVMConstArray2(cg->ptr, metric_names, (uint64_t)m->metric_count + 1), "nnc.metric_names");
    LLVMValueRef reduce_table = cg_const_global(cg, LLVMConstArray2(cg->i32, metric_reduce, (uint64_t)m->metric_count + 1), "nnc.metric_reduce");

    LLVMTypeRef f64t = cg->f64_type;
    LLVMTypeRef defaults_fields[] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64, cg->i64, f64t, cg->i64};
    LLVMValueRef defaults_values[] = {cg_string(cg, m->data), cg_string(cg, m->validate), cg_string(cg, m->optimizer),
                                      cg_string(cg, m->schedule), cg_i64(cg, m->epochs), cg_i64(cg, m->batch),
                                      cg_i64(cg, m->seed), LLVMConstReal(f64t, m->clip), cg_i64(cg, m->early_stop)};
    (void)defaults_fields;
    LLVMValueRef defaults = LLVMConstStructInContext(cg->ctx, defaults_values, 9, false);

    LLVMTypeRef kernel_fields[2] = {cg->ptr, cg->i64};
    LLVMTypeRef kernel_type = LLVMStructTypeInContext(cg->ctx, kernel_fields, 2, false);
    LLVMValueRef kernel_table = cg_const_global(cg, LLVMConstArray2(kernel_type, prof->infos, (uint64_t)prof->count), "nnc.kernels");
    LLVMValueRef update_table = cg_const_global(cg, LLVMConstArray2(kernel_type, update_prof->infos, (uint64_t)update_prof->count),
                                                "nnc.update_kernels");

    const Node *output = graph_node(g, g->output);
    /* class targets: one id per example (class[N]) or per position (class[t, N]); the dims keep
     * the declared shape, the rank and size count the ids */
    bool class_target = m->target_kind == NNRT_TARGET_CLASS;
    int target_rank = class_target ? m->target_shape.rank - 1 : m->target_shape.rank;
    int64_t target_size = 1;
    for (int i = 0; i < target_rank; i++) target_size *= m->target_shape.dims[i];
    LLVMValueRef fields[] = {
        cg_i32c(cg, NNRT_ABI_VERSION),
        cg_string(cg, m->name), cg_string(cg, info->source_path), cg_string(cg, info->source_dir),
        cg_string(cg, info->source_hash), cg_string(cg, info->summary),
        cg_i64(cg, g->param_count), cg_i32c(cg, g->params.len), param_table,
        cg_i32c(cg, m->input_kind), cg_string(cg, m->input_name), cg_i32c(cg, m->input_shape.rank),
        cg_dims(cg, &m->input_shape), cg_i64(cg, shape_size(&m->input_shape)), cg_i64(cg, m->input_vocab),
        cg_i32c(cg, m->target_kind), cg_string(cg, m->target_name), cg_i64(cg, m->target_classes),
        cg_i32c(cg, target_rank), cg_dims(cg, &m->target_shape), cg_i64(cg, target_size),
        cg_string(cg, m->loss_name), cg_i32c(cg, m->metric_count), names_table, reduce_table,
        cg_i32c(cg, m->output_kind), cg_i64(cg, output->size),
        cg_i64(cg, cg->plan->workspace_fixed), cg_i64(cg, cg->plan->workspace_per_example),
        cg_i32c(cg, cg_uses_rng(g)),
        defaults,
        entries[0], entries[1], entries[2], entries[3],
        entries[4], cg_i32c(cg, prof->count), kernel_table,
        entries[5], entries[6], cg_i32c(cg, update_prof->count), update_table,
    };
    LLVMValueRef descriptor = LLVMConstStructInContext(cg->ctx, fields, sizeof fields / sizeof fields[0], false);
    LLVMValueRef global = LLVMAddGlobal(cg->mod, LLVMTypeOf(descriptor), "nnrt_model");
    LLVMSetInitializer(global, descriptor);
    LLVMSetGlobalConstant(global, true);
}

/* A code generator with a new module named `name`, its builder and the types every kernel uses. */
static Cg cg_start(LLVMContextRef context, const Model *model, const Plan *plan, const CodegenInfo *info, const char *name) {
    Cg cg = {.ctx = context, .model = model, .g = model->graph, .plan = plan, .vector_bytes = info->vector_bytes ? info->vector_bytes : 64};
    cg.mod = LLVMModuleCreateWithNameInContext(name, context);
    cg.b = LLVMCreateBuilderInContext(context);
    cg.i1 = LLVMInt1TypeInContext(context);
    cg.i32 = LLVMInt32TypeInContext(context);
    cg.i64 = LLVMInt64TypeInContext(context);
    cg.f64_type = LLVMDoubleTypeInContext(context);
    cg.ptr = LLVMPointerTypeInContext(context, 0);
    cg.void_type = LLVMVoidTypeInContext(context);
    return cg;
}

LLVMModuleRef cg_build_module(LLVMContextRef context, const Model *model, const Plan *plan, const CodegenInfo *info) {
    Cg cg = cg_start(context, model, plan, info, model->name);

    int count = model->graph->nodes.len;
    LLVMValueRef *kernels32 = ARENA_ARRAY(model->graph->arena, LLVMValueRef, 2 * count); /* see cg_call_kernels */
    LLVMValueRef *kernels64 = ARENA_ARRAY(model->graph->arena, LLVMValueRef, 2 * count);
    LLVMValueRef entries[7];
    CgProfile prof = {ARENA_ARRAY(model->graph->arena, LLVMValueRef, count + 1), 0};
    int params = model->graph->params.len;
    CgProfile update_prof = {ARENA_ARRAY(model->graph->arena, LLVMValueRef, count + params + 1), 0};
    CgUpdates updates = {ARENA_ARRAY(model->graph->arena, LLVMValueRef, params + 1), ARENA_ARRAY(model->graph->arena, LLVMValueRef, count),
                         ARENA_ARRAY(model->graph->arena, bool, count)};
    entries[0] = cg_entry(&cg, ENTRY_TRAIN, false, "nnc_train_step", kernels32, NULL, NULL);
    entries[1] = cg_entry(&cg, ENTRY_EVAL, false, "nnc_eval_step", kernels32, NULL, NULL);
    entries[2] = cg_entry(&cg, ENTRY_INFER, false, "nnc_infer", kernels32, NULL, NULL);
    entries[3] = cg_entry(&cg, ENTRY_TRAIN, true, "nnc_train_step_f64", kernels64, NULL, NULL);
    entries[4] = cg_entry(&cg, ENTRY_TRAIN, false, "nnc_train_step_profiled", kernels32, &prof, NULL);
    /* the same kernels, each parameter's update after its last use (cg_update_points), inside
     * the gradient kernel where its family fuses it (cg_optim_gemm) */
    entries[5] = cg_entry(&cg, ENTRY_TRAIN, false, "nnc_train_step_update", kernels32, NULL, &updates);
    entries[6] = cg_entry(&cg, ENTRY_TRAIN, false, "nnc_train_step_update_profiled", kernels32, &update_prof, &updates);
    cg_descriptor(&cg, info, entries, &prof, &update_prof);
    LLVMDisposeBuilder(cg.b);
    return cg.mod;
}

/* ---------------------------------------------------------------- the inference library */

/* A private constant with the bytes of `count` floats (both targets are little-endian, as the
 * checkpoint is), aligned for vector loads. */
LLVMValueRef cg_float_table(Cg *cg, const float *values, int64_t count, const char *name) {
    LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, (const char *)values, (size_t)(count > 0 ? count : 0) * 4, true);
    LLVMValueRef global = cg_const_global(cg, init, name);
    LLVMSetAlignment(global, 64);
    return global;
}

static LLVMValueRef cg_ret_if(Cg *cg, LLVMValueRef condition, int code) {
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "fail");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "ok");
    LLVMBuildCondBr(cg->b, condition, fail, ok);
    LLVMPositionBuilderAtEnd(cg->b, fail);
    LLVMBuildRet(cg->b, cg_i32c(cg, code));
    LLVMPositionBuilderAtEnd(cg->b, ok);
    return NULL;
}

/* Bytes of the preprocessed input of n examples at the start of the workspace, kept a multiple of
 * 64 so that the inference workspace after it stays aligned. */
static LLVMValueRef cg_lib_input_bytes(Cg *cg, LLVMValueRef n64) {
    LLVMValueRef bytes = cg_mul(cg, n64, cg_i64(cg, shape_size(&cg->model->input_shape) * 4));
    return LLVMBuildAnd(cg->b, cg_add(cg, bytes, cg_i64(cg, 63)), cg_i64(cg, ~(int64_t)63), "");
}

/* Examples per inference call in PREFIX_predict: a large batch runs in chunks whose buffers
 * (about 4 MiB of workspace) stay in the caches, instead of each layer sweeping every example's
 * buffers through memory; also bounds the workspace. Not much smaller: each chunk streams the
 * dense layers' weights again (the CNN's first dense layer has 1.6 MB of them; 1 MiB chunks of
 * 5 examples ran its batch of 256 at 13.5k images/s, 4 MiB chunks of 21 at 16k, on the AVX-512
 * Xeon of 2026-12-02). The kernels compute each example alike in any batch, so chunking changes
 * no value. */
static int64_t cg_lib_chunk(const Cg *cg) {
    int64_t per_example = (cg->plan->workspace_per_example + shape_size(&cg->model->input_shape)) * 4;
    int64_t chunk = ((int64_t)4 << 20) / (per_example > 0 ? per_example : 1);
    return chunk < 1 ? 1 : chunk > 256 ? 256 : chunk;
}

void cg_chunk_bounds(Cg *cg, LLVMValueRef chunk, LLVMValueRef total, int64_t chunks, LLVMValueRef *lo, LLVMValueRef *hi) {
    *lo = LLVMBuildSDiv(cg->b, cg_mul(cg, chunk, total), cg_i64(cg, chunks), "");
    *hi = LLVMBuildSDiv(cg->b, cg_mul(cg, cg_add(cg, chunk, cg_i64(cg, 1)), total), cg_i64(cg, chunks), "");
}

LLVMValueRef cg_min_i64(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, a, b, ""), a, b, "");
}

/* size_t PREFIX_workspace_size(int n): 64 bytes of alignment slack, the preprocessed input and the
 * inference workspace (the plan's, as the executable's predict allocates it) of min(n, chunk)
 * examples. 0 for n < 0. */
static void cg_lib_workspace_size(Cg *cg, const char *name) {
    LLVMTypeRef type = LLVMFunctionType(cg->i64, &cg->i32, 1, false);
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, type);
    cg->fn = fn;
    cg->entry_block = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(cg->b, cg->entry_block);
    LLVMValueRef n = LLVMGetParam(fn, 0);
    LLVMValueRef negative = LLVMBuildICmp(cg->b, LLVMIntSLT, n, cg_i32c(cg, 0), "");
    LLVMValueRef n64 = LLVMBuildSExt(cg->b, LLVMBuildSelect(cg->b, negative, cg_i32c(cg, 0), n, ""), cg->i64, "");
    n64 = cg_min_i64(cg, n64, cg_i64(cg, cg_lib_chunk(cg)));
    LLVMValueRef ws = cg_mul(cg, cg_add(cg, cg_i64(cg, cg->plan->workspace_fixed), cg_mul(cg, cg_i64(cg, cg->plan->workspace_per_example), n64)),
                             cg_i64(cg, 4));
    LLVMValueRef total = cg_add(cg, cg_add(cg, ws, cg_lib_input_bytes(cg, n64)), cg_i64(cg, 64));
    LLVMBuildRet(cg->b, LLVMBuildSelect(cg->b, negative, cg_i64(cg, 0), total, ""));
}

/* int PREFIX_predict(const input_t *input, int n, float *output, void *workspace): returns 1 for
 * n < 0 or a NULL pointer with n > 0, 2 for a token id outside [0, vocabulary), else 0. */
static void cg_lib_predict(Cg *cg, const CgLibrary *lib, const char *name, LLVMValueRef infer, LLVMValueRef weights) {
    const Model *m = cg->model;
    LLVMTypeRef params[] = {cg->ptr, cg->i32, cg->ptr, cg->ptr};
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->i32, params, 4, false));
    cg_set_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
    cg->fn = fn;
    cg->entry_block = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
    LLVMPositionBuilderAtEnd(cg->b, cg->entry_block);
    LLVMValueRef input = LLVMGetParam(fn, 0), n = LLVMGetParam(fn, 1), output = LLVMGetParam(fn, 2), ws = LLVMGetParam(fn, 3);
    cg_ret_if(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, n, cg_i32c(cg, 0), ""), 1);
    cg_ret_if(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, n, cg_i32c(cg, 0), ""), 0);
    LLVMValueRef null_arg = LLVMBuildOr(cg->b, LLVMBuildIsNull(cg->b, input, ""),
                                        LLVMBuildOr(cg->b, LLVMBuildIsNull(cg->b, output, ""), LLVMBuildIsNull(cg->b, ws, ""), ""), "");
    cg_ret_if(cg, null_arg, 1);
    LLVMValueRef n64 = LLVMBuildSExt(cg->b, n, cg->i64, "");
    /* the caller's workspace, rounded up to 64 bytes: [preprocessed input | inference workspace] */
    LLVMValueRef address = LLVMBuildPtrToInt(cg->b, ws, cg->i64, "");
    LLVMValueRef aligned = LLVMBuildAnd(cg->b, cg_add(cg, address, cg_i64(cg, 63)), cg_i64(cg, ~(int64_t)63), "");
    LLVMValueRef offset = LLVMBuildSub(cg->b, aligned, address, "");
    LLVMTypeRef i8 = LLVMInt8TypeInContext(cg->ctx);
    LLVMValueRef x = LLVMBuildInBoundsGEP2(cg->b, i8, ws, &offset, 1, "x");
    int64_t chunk = cg_lib_chunk(cg);
    LLVMValueRef x_bytes = cg_lib_input_bytes(cg, cg_min_i64(cg, n64, cg_i64(cg, chunk)));
    LLVMValueRef rest = LLVMBuildInBoundsGEP2(cg->b, i8, x, &x_bytes, 1, "infer_ws");

    int64_t size = shape_size(&m->input_shape);
    LLVMValueRef mean = lib->mean ? cg_float_table(cg, lib->mean, size, "nnc.lib.mean") : NULL;
    LLVMValueRef std = lib->std ? cg_float_table(cg, lib->std, size, "nnc.lib.std") : NULL;
    LLVMValueRef chunks = LLVMBuildSDiv(cg->b, cg_add(cg, n64, cg_i64(cg, chunk - 1)), cg_i64(cg, chunk), "");
    CgLoop piece = cg_loop_begin(cg, cg_i64(cg, 0), chunks, "chunk");
    LLVMValueRef start = cg_mul(cg, piece.iv, cg_i64(cg, chunk));
    LLVMValueRef nb = cg_min_i64(cg, cg_i64(cg, chunk), LLVMBuildSub(cg->b, n64, start, ""));
    LLVMValueRef first = cg_mul(cg, start, cg_i64(cg, size));
    CgLoop example = cg_loop_begin(cg, cg_i64(cg, 0), nb, "example");
    CgLoop feature = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, size), "feature");
    LLVMValueRef index = cg_add(cg, cg_mul(cg, example.iv, cg_i64(cg, size)), feature.iv);
    LLVMValueRef source = cg_add(cg, first, index);
    LLVMValueRef value;
    if (m->input_kind == NNRT_INPUT_INT) {
        /* token ids, as the executable's data sets check them, carried as exact floats */
        LLVMValueRef id = LLVMBuildLoad2(cg->b, cg->i32, LLVMBuildInBoundsGEP2(cg->b, cg->i32, input, &source, 1, ""), "id");
        LLVMValueRef bad = LLVMBuildICmp(cg->b, LLVMIntSLT, id, cg_i32c(cg, 0), "");
        if (m->input_vocab > 0) bad = LLVMBuildOr(cg->b, bad, LLVMBuildICmp(cg->b, LLVMIntSGE, id, cg_i32c(cg, m->input_vocab), ""), "");
        cg_ret_if(cg, bad, 2);
        value = LLVMBuildSIToFP(cg->b, id, cg->elem, "");
    } else {
        value = cg_load(cg, input, source);
        /* as idx() scales bytes: in double, rounded once */
        if (lib->scale != 1)
            value = LLVMBuildFPTrunc(cg->b, LLVMBuildFMul(cg->b, LLVMBuildFPExt(cg->b, value, cg->f64_type, ""),
                                                          LLVMConstReal(cg->f64_type, lib->scale), ""),
                                     cg->elem, "");
        /* as the runtime standardizes: (x - mean) / std in float, no contraction */
        if (mean)
            value = LLVMBuildFDiv(cg->b, LLVMBuildFSub(cg->b, value, cg_load(cg, mean, feature.iv), ""), cg_load(cg, std, feature.iv), "");
    }
    cg_store(cg, value, x, index);
    cg_loop_end(cg, &feature);
    cg_loop_end(cg, &example);
    LLVMValueRef out = cg_gep(cg, output, cg_mul(cg, start, cg_i64(cg, graph_node(cg->g, cg->g->output)->size)));
    LLVMValueRef args[] = {weights, x, rest, nb, out};
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(infer), infer, args, 5, "");
    cg_loop_end(cg, &piece);
    LLVMBuildRet(cg->b, cg_i32c(cg, 0));
}

LLVMModuleRef cg_build_library(LLVMContextRef context, const Model *model, const Plan *plan, const CodegenInfo *info,
                               const CgLibrary *lib) {
    Cg cg = cg_start(context, model, plan, info, lib->prefix);
    cg.single_thread = true;
    cg.lib_params = lib->params;
    LLVMValueRef *kernels = ARENA_ARRAY(model->graph->arena, LLVMValueRef, 2 * model->graph->nodes.len); /* see cg_call_kernels */
    LLVMValueRef infer = cg_entry(&cg, ENTRY_INFER, false, "nnc_infer", kernels, NULL, NULL);
    LLVMValueRef weights = cg_float_table(&cg, lib->params, model->graph->param_count, "nnc.lib.weights");
    char name[300];
    snprintf(name, sizeof name, "%s_workspace_size", lib->prefix);
    cg_lib_workspace_size(&cg, name);
    snprintf(name, sizeof name, "%s_predict", lib->prefix);
    cg_lib_predict(&cg, lib, name, infer, weights);
    /* nothing but the two entry points is visible outside the object: internal functions get
     * private linkage (no symbol at all), so two models' libraries link into one program */
    for (LLVMValueRef fn = LLVMGetFirstFunction(cg.mod); fn; fn = LLVMGetNextFunction(fn))
        if (!LLVMIsDeclaration(fn) && LLVMGetLinkage(fn) == LLVMInternalLinkage) LLVMSetLinkage(fn, LLVMPrivateLinkage);
    LLVMDisposeBuilder(cg.b);
    return cg.mod;
}
