/* cg_optim.c — the optimizer update in generated code: Adam / AdamW on one parameter tensor,
 * called by train_step_update (codegen.c) right after the last kernel of the step that reads the
 * tensor or writes its gradient, while that gradient is still in the caches.
 *
 * The arithmetic is the runtime's (runtime/optim.c, PyTorch's order) operation for operation,
 * with no fast-math flags: every operation rounds once, as the runtime's loops compiled with
 * -ffp-contract=off do, so the fused step gives the same bytes as train_step followed by the
 * runtime's update. The per-step scalars (bias corrections, step size) come in the NnrtUpdate the
 * runtime fills in, so they are the runtime's doubles rounded once to float.
 *
 * A tensor is split across the thread pool in blocks of 4 rows (dims[0]) like the runtime's pass;
 * the update is element-wise, so any split gives the same bytes. Each block runs explicit vectors
 * of the target's width, then single elements for the rest. */
#include <stdio.h>
#include <string.h>

#include "cg.h"

enum { OPTIM_ROWS = 4, OPTIM_PARALLEL_MIN = 1 << 14 }; /* the runtime's split (runtime/optim.c) */

/* struct NnrtUpdate's fields, in order (nnrt.h). */
enum {
    U_M, U_V, U_NEG_STEP, U_W1, U_W1_COMPLEMENT, U_B2, U_C2, U_EPS, U_WD, U_DECAY, U_L2, U_SMALL_LERP,
    U_FIELDS
};

static LLVMTypeRef update_type(Cg *cg) {
    LLVMTypeRef f32 = LLVMFloatTypeInContext(cg->ctx);
    LLVMTypeRef fields[U_FIELDS] = {cg->ptr, cg->ptr, f32, f32, f32, f32, f32, f32, f32, f32, cg->i32, cg->i32};
    return LLVMStructTypeInContext(cg->ctx, fields, U_FIELDS, false);
}

static LLVMValueRef update_field(Cg *cg, LLVMValueRef update, unsigned field) {
    LLVMTypeRef type = update_type(cg);
    LLVMTypeRef ft = field <= U_V ? cg->ptr : field >= U_L2 ? cg->i32 : LLVMFloatTypeInContext(cg->ctx);
    return LLVMBuildLoad2(cg->b, ft, LLVMBuildStructGEP2(cg->b, type, update, field, ""), "");
}

/* The loop's scalars, loaded once per task (splatted for the vector loop). */
typedef struct AdamScalars {
    LLVMValueRef neg_step, w1, w1_complement, b2, c2, eps, wd, decay;
} AdamScalars;

static AdamScalars adam_splat(Cg *cg, const AdamScalars *s, unsigned lanes) {
    return (AdamScalars){cg_splat(cg, s->neg_step, lanes), cg_splat(cg, s->w1, lanes),
                         cg_splat(cg, s->w1_complement, lanes), cg_splat(cg, s->b2, lanes), cg_splat(cg, s->c2, lanes),
                         cg_splat(cg, s->eps, lanes), cg_splat(cg, s->wd, lanes), cg_splat(cg, s->decay, lanes)};
}

/* Strict IEEE operations: no reassociation, no contraction (the runtime rounds each one). */
static LLVMValueRef add(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(cg->b, a, b, ""); }
static LLVMValueRef sub(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(cg->b, a, b, ""); }
static LLVMValueRef mul(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(cg->b, a, b, ""); }
static LLVMValueRef div_(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(cg->b, a, b, ""); }

typedef struct AdamPointers {
    LLVMValueRef p, g, m, v;
} AdamPointers;

/* One element (lanes 0) or one vector of `lanes` elements at index i: runtime/optim.c's adam_loop
 * (decay: AdamW's decoupled weight decay). */
static void adam_element(Cg *cg, const AdamScalars *s, const AdamPointers *a, LLVMValueRef i, unsigned lanes, bool l2,
                         bool small_lerp, bool decay) {
    LLVMValueRef p, g, m, v;
    if (lanes) {
        p = cg_vload_full(cg, a->p, i, lanes), g = cg_vload_full(cg, a->g, i, lanes);
        m = cg_vload_full(cg, a->m, i, lanes), v = cg_vload_full(cg, a->v, i, lanes);
    } else {
        p = cg_load(cg, a->p, i), g = cg_load(cg, a->g, i), m = cg_load(cg, a->m, i), v = cg_load(cg, a->v, i);
    }
    if (decay) p = mul(cg, p, s->decay);
    if (l2) g = add(cg, g, mul(cg, s->wd, p));
    m = small_lerp ? add(cg, m, mul(cg, s->w1, sub(cg, g, m))) : sub(cg, g, mul(cg, sub(cg, g, m), s->w1_complement));
    v = mul(cg, v, s->b2);
    v = add(cg, v, mul(cg, mul(cg, s->c2, g), g));
    LLVMValueRef denom = add(cg, cg_math(cg, "llvm.sqrt", v), s->eps);
    p = add(cg, p, div_(cg, mul(cg, s->neg_step, m), denom));
    if (lanes) {
        cg_vstore_full(cg, m, a->m, i), cg_vstore_full(cg, v, a->v, i), cg_vstore_full(cg, p, a->p, i);
    } else {
        cg_store(cg, m, a->m, i), cg_store(cg, v, a->v, i), cg_store(cg, p, a->p, i);
    }
}

/* Elements [lo, hi): whole vectors, then single elements. */
static void adam_range(Cg *cg, const AdamScalars *s, const AdamPointers *a, LLVMValueRef lo, LLVMValueRef hi, bool l2,
                       bool small_lerp, bool decay) {
    unsigned lanes = (unsigned)cg->vector_bytes / 4u;
    LLVMValueRef L = cg_i64(cg, lanes);
    LLVMValueRef vectors = LLVMBuildSDiv(cg->b, LLVMBuildNSWSub(cg->b, hi, lo, ""), L, "");
    AdamScalars wide = adam_splat(cg, s, lanes);
    CgLoop k = cg_loop_begin(cg, cg_i64(cg, 0), vectors, "vec");
    adam_element(cg, &wide, a, cg_add(cg, lo, cg_mul(cg, k.iv, L)), lanes, l2, small_lerp, decay);
    cg_loop_end(cg, &k);
    CgLoop i = cg_loop_begin(cg, cg_add(cg, lo, cg_mul(cg, vectors, L)), hi, "tail");
    adam_element(cg, s, a, i.iv, 0, l2, small_lerp, decay);
    cg_loop_end(cg, &i);
}

typedef struct UpdateTask {
    int64_t size, block; /* the tensor's elements, elements per block of rows */
} UpdateTask;

/* Elements [lo, hi) of the tensor at a (p, g, m, v) with NnrtUpdate u, inline. */
static void update_range_inline(Cg *cg, const AdamPointers *a, LLVMValueRef u, LLVMValueRef lo, LLVMValueRef hi) {
    AdamScalars s = {update_field(cg, u, U_NEG_STEP), update_field(cg, u, U_W1),
                     update_field(cg, u, U_W1_COMPLEMENT), update_field(cg, u, U_B2), update_field(cg, u, U_C2),
                     update_field(cg, u, U_EPS), update_field(cg, u, U_WD), update_field(cg, u, U_DECAY)};
    /* the three flags are the same for every element: one loop per combination, as the
     * runtime's specializations (decay and l2 never both: AdamW decays, Adam adds to g) */
    LLVMValueRef zero = LLVMConstInt(cg->i32, 0, 0);
    LLVMValueRef l2 = LLVMBuildICmp(cg->b, LLVMIntNE, update_field(cg, u, U_L2), zero, "");
    LLVMValueRef small = LLVMBuildICmp(cg->b, LLVMIntNE, update_field(cg, u, U_SMALL_LERP), zero, "");
    LLVMValueRef decay = LLVMBuildFCmp(cg->b, LLVMRealUNE, s.decay, LLVMConstReal(LLVMFloatTypeInContext(cg->ctx), 1.0), "");
    LLVMValueRef variant = LLVMBuildZExt(cg->b, l2, cg->i32, "");
    variant = LLVMBuildOr(cg->b, variant, LLVMBuildShl(cg->b, LLVMBuildZExt(cg->b, small, cg->i32, ""), LLVMConstInt(cg->i32, 1, 0), ""), "");
    variant = LLVMBuildOr(cg->b, variant, LLVMBuildShl(cg->b, LLVMBuildZExt(cg->b, decay, cg->i32, ""), LLVMConstInt(cg->i32, 2, 0), ""), "");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "updated");
    LLVMBasicBlockRef cases[8];
    for (int c = 0; c < 8; c++) cases[c] = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "variant");
    LLVMValueRef sw = LLVMBuildSwitch(cg->b, variant, cases[0], 7);
    for (int c = 1; c < 8; c++) LLVMAddCase(sw, LLVMConstInt(cg->i32, (unsigned)c, 0), cases[c]);
    for (int c = 0; c < 8; c++) {
        LLVMPositionBuilderAtEnd(cg->b, cases[c]);
        adam_range(cg, &s, a, lo, hi, c & 1, c & 2, c & 4);
        LLVMBuildBr(cg->b, done);
    }
    LLVMPositionBuilderAtEnd(cg->b, done);
}

/* The module's one update loop, nnc_adam_f32(p, g, m, v, count, update): every pass and every
 * fused kernel calls it on its elements, so the eight loop variants exist once per module, not
 * once per tensor (compile time, code size). */
static LLVMValueRef adam_function(Cg *cg) {
    const char *name = "nnc_adam_f32";
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
    if (fn) return fn;
    LLVMTypeRef params[6] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->ptr};
    fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->void_type, params, 6, false));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    const char *attrs[] = {"noinline", "nounwind"};
    for (int i = 0; i < 2; i++) {
        unsigned kind = LLVMGetEnumAttributeKindForName(attrs[i], strlen(attrs[i]));
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
    }
    for (unsigned i = 0; i < 4; i++) { /* four disjoint buffers */
        unsigned kind = LLVMGetEnumAttributeKindForName("noalias", 7);
        LLVMAddAttributeAtIndex(fn, i + 1, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
    }
    CgFunctionScope saved = cg_function_enter(cg, fn);
    AdamPointers a = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), LLVMGetParam(fn, 3)};
    update_range_inline(cg, &a, LLVMGetParam(fn, 5), cg_i64(cg, 0), LLVMGetParam(fn, 4));
    LLVMBuildRetVoid(cg->b);
    cg_function_leave(cg, &saved);
    return fn;
}

/* Elements [lo, hi) of the tensor at a (p, g, m, v) with NnrtUpdate u: a call of the module's loop. */
static void update_range(Cg *cg, const AdamPointers *a, LLVMValueRef u, LLVMValueRef lo, LLVMValueRef hi) {
    LLVMValueRef fn = adam_function(cg);
    LLVMValueRef args[6] = {cg_gep(cg, a->p, lo), cg_gep(cg, a->g, lo), cg_gep(cg, a->m, lo), cg_gep(cg, a->v, lo),
                            LLVMBuildNSWSub(cg->b, hi, lo, ""), u};
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(fn), fn, args, 6, "");
}

/* values: p, g, m, v (the tensor's part of each buffer), update. Blocks [begin, end). */
static void update_blocks(Cg *cg, LLVMValueRef *values, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const UpdateTask *t = user;
    AdamPointers a = {values[0], values[1], values[2], values[3]};
    LLVMValueRef lo = cg_mul(cg, begin, cg_i64(cg, t->block));
    LLVMValueRef hi = cg_min_i64(cg, cg_mul(cg, end, cg_i64(cg, t->block)), cg_i64(cg, t->size));
    update_range(cg, &a, values[4], lo, hi);
}

LLVMValueRef cg_optim_update_kernel(Cg *cg, int param) {
    const ParamTensor *t = graph_param(cg->g, param);

    LLVMTypeRef params[3] = {cg->ptr, cg->ptr, cg->ptr};
    char name[96];
    snprintf(name, sizeof name, "update_p%d_adam_f32", param);
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->void_type, params, 3, false));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8), nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, noinline, 0));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, nounwind, 0));
    CgFunctionScope saved = cg_function_enter(cg, fn);

    LLVMValueRef off = cg_i64(cg, t->offset), u = LLVMGetParam(fn, 2);
    LLVMValueRef values[5] = {cg_gep(cg, LLVMGetParam(fn, 0), off), cg_gep(cg, LLVMGetParam(fn, 1), off),
                              cg_gep(cg, update_field(cg, u, U_M), off), cg_gep(cg, update_field(cg, u, U_V), off), u};
    int64_t rows = t->shape.rank > 0 && t->shape.dims[0] > 0 ? t->shape.dims[0] : 1;
    UpdateTask task = {t->size, t->size / rows * OPTIM_ROWS};
    LLVMValueRef blocks = cg_i64(cg, (rows + OPTIM_ROWS - 1) / OPTIM_ROWS);
    cg_parallel_for(cg, blocks, values, 5, t->size < OPTIM_PARALLEL_MIN, update_blocks, &task);
    LLVMBuildRetVoid(cg->b);
    cg_function_leave(cg, &saved);
    return fn;
}

/* ---------------------------------------------------------------- the update inside a product */

/* Rows per task: a multiple of every row tile of cg_gemm (4 direct; 6 or 12 packed) and enough
 * rows (>= 2 packed tiles) for the packed path. Either path computes each element of C as one
 * chain of multiply-adds in order of p, so the fused gradient has the unfused one's bits
 * (e2e.fused_update_identical checks it). */
enum { FUSED_ROWS = 48 };

typedef struct FusedGemmTask {
    const CgGemm *g;
    int64_t offset; /* the parameter's, into the flat buffers (m and v) */
} FusedGemmTask;

/* values: c, a, b, M, P, the parameter's values, update. Row blocks [begin, end): their rows of C,
 * then the update of those rows (still in this core's cache). */
static void fused_gemm_blocks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const FusedGemmTask *t = user;
    const CgGemm *g = t->g;
    LLVMValueRef r0 = cg_mul(cg, begin, cg_i64(cg, FUSED_ROWS));
    LLVMValueRef r1 = cg_min_i64(cg, cg_mul(cg, end, cg_i64(cg, FUSED_ROWS)), v[3]);
    CgGemm rows = *g;
    rows.c = cg_gep(cg, v[0], cg_mul(cg, r0, cg_i64(cg, g->c_rs)));
    rows.a = cg_gep(cg, v[1], cg_mul(cg, r0, cg_i64(cg, g->a_rs)));
    rows.b = v[2];
    rows.M = LLVMBuildNSWSub(cg->b, r1, r0, "");
    if (!LLVMIsAConstantInt(g->P)) rows.P = v[4]; /* a constant stays one: cg_gemm decides by it */
    rows.serial = true;
    cg_gemm(cg, &rows);
    /* the update's pointers: the whole tensor's, indexed by element */
    LLVMValueRef u = v[6];
    LLVMValueRef off = cg_i64(cg, t->offset);
    AdamPointers a = {v[5], v[0], cg_gep(cg, update_field(cg, u, U_M), off), cg_gep(cg, update_field(cg, u, U_V), off)};
    update_range(cg, &a, u, cg_mul(cg, r0, cg_i64(cg, g->J)), cg_mul(cg, r1, cg_i64(cg, g->J)));
}

/* Fused multiply-adds below which cg_gemm runs a product on one thread (its own threshold, for a
 * batch of 64), so the fused form splits about the same products. */
enum { FUSED_PARALLEL_MIN_FMAS = 1 << 18 };

bool cg_optim_gemm(Cg *cg, const Node *node, const CgGemm *g) {
    if (!cg->update_variant || cg->f64 || node->grad_param < 0) return false;
    const ParamTensor *t = graph_param(cg->g, node->grad_param);
    /* C must be the parameter's whole gradient, written (not accumulated) in rows of J */
    if (g->c != cg_arg_out(cg) || g->c_rs != g->J || g->bias || g->act || g->accumulate || g->serial ||
        !LLVMIsAConstantInt(g->M) || LLVMConstIntGetSExtValue(g->M) * g->J != t->size)
        return false;
    int64_t M = LLVMConstIntGetSExtValue(g->M);
    int64_t P = LLVMIsAConstantInt(g->P) ? LLVMConstIntGetSExtValue(g->P) : 64;
    FusedGemmTask task = {g, t->offset};
    LLVMValueRef values[7] = {g->c, g->a, g->b, g->M, g->P, cg_arg(cg, CG_ARG_UPDATED, 0), cg_arg(cg, CG_ARG_UPDATE, 0)};
    bool serial = t->size < OPTIM_PARALLEL_MIN && M * P * g->J < FUSED_PARALLEL_MIN_FMAS;
    cg_parallel_for(cg, cg_i64(cg, (M + FUSED_ROWS - 1) / FUSED_ROWS), values, 7, serial, fused_gemm_blocks, &task);
    cg->update_applied = true;
    return true;
}

/* ---------------------------------------------------------------- the update inside any task */

int cg_optim_task_values(Cg *cg, const Node *node, LLVMValueRef *out) {
    if (!cg->update_variant || cg->f64 || node->grad_param < 0) return 0;
    out[0] = cg_arg(cg, CG_ARG_UPDATED, 0);
    out[1] = cg_arg(cg, CG_ARG_UPDATE, 0);
    return 2;
}

void cg_optim_rows(Cg *cg, const Node *node, LLVMValueRef grad, const LLVMValueRef *values, LLVMValueRef lo, LLVMValueRef hi) {
    if (!cg->update_variant || cg->f64 || node->grad_param < 0) return;
    LLVMValueRef u = values[1];
    LLVMValueRef off = cg_i64(cg, graph_param(cg->g, node->grad_param)->offset);
    AdamPointers a = {values[0], grad, cg_gep(cg, update_field(cg, u, U_M), off), cg_gep(cg, update_field(cg, u, U_V), off)};
    update_range(cg, &a, u, lo, hi);
    cg->update_applied = true;
}
