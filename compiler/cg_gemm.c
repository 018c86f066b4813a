/* cg_gemm.c — a register-blocked matrix-product micro-kernel in explicit LLVM vector IR, shared
 * by the dense forward pass and both backward products.
 *
 *   C[i, j] = scale * sum_p A(i,p) B(p,j)  (+ bias[j]) (then act)   for i < M, j < J, p < P
 *   A(i,p) = a[i*a_rs + p*a_cs]   (one element, broadcast to a vector)
 *   B(p,j) = b[p*b_rs + j]        (contiguous in j: vector loads)
 *   C(i,j) = c[i*c_rs + j]        (contiguous in j: vector stores)
 *
 * A tile of MR rows x NR vectors of C stays in registers (MR*NR accumulators) while p runs, so
 * each step loads NR vectors of B and MR scalars of A for MR*NR fused multiply-adds. Columns are
 * static (J is known at compile time): full tiles, then the remaining vectors with a masked last
 * one. Rows may be runtime (the batch): full MR-row tiles, then single rows.
 *
 * Large products are split across threads by row blocks through the runtime's
 * nnrt_parallel_for; each row block is computed by one thread with the same code as in a serial
 * run, so results do not depend on the thread count. */
#include <stdio.h>
#include <string.h>

#include "cg.h"

enum { GEMM_MR = 4, GEMM_NR = 4 };

typedef struct GemmTile {
    int mr;          /* rows in this tile */
    int nv;          /* vectors in this tile */
    int last_lanes;  /* lanes used in the last vector (VW when full) */
} GemmTile;

static LLVMValueRef cg_splat(Cg *cg, LLVMValueRef scalar, unsigned lanes) {
    LLVMTypeRef vec = LLVMVectorType(LLVMTypeOf(scalar), lanes);
    LLVMValueRef undef = LLVMGetUndef(vec);
    LLVMValueRef one = LLVMBuildInsertElement(cg->b, undef, scalar, LLVMConstInt(cg->i32, 0, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(cg->i32, lanes));
    return LLVMBuildShuffleVector(cg->b, one, undef, zeros, "");
}

static LLVMValueRef cg_mask(Cg *cg, unsigned lanes, int used) {
    LLVMValueRef bits[64];
    for (unsigned i = 0; i < lanes; i++) bits[i] = LLVMConstInt(cg->i1, (int)i < used, 0);
    return LLVMConstVector(bits, lanes);
}

/* Vector load/store of `lanes` elements at base[index]; masked when used < lanes. */
static LLVMValueRef cg_vload(Cg *cg, LLVMValueRef base, LLVMValueRef index, unsigned lanes, int used) {
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    LLVMValueRef ptr = cg_gep(cg, base, index);
    if (used == (int)lanes) {
        LLVMValueRef v = LLVMBuildLoad2(cg->b, vec, ptr, "");
        LLVMSetAlignment(v, cg->f64 ? 8 : 4);
        return v;
    }
    LLVMTypeRef types[2] = {vec, cg->ptr};
    const char *name = "llvm.masked.load";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, types, 2);
    LLVMValueRef args[4] = {ptr, LLVMConstInt(cg->i32, cg->f64 ? 8 : 4, 0), cg_mask(cg, lanes, used), LLVMConstNull(vec)};
    return LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, types, 2), fn, args, 4, "");
}

static void cg_vstore(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index, unsigned lanes, int used) {
    LLVMValueRef ptr = cg_gep(cg, base, index);
    if (used == (int)lanes) {
        LLVMValueRef st = LLVMBuildStore(cg->b, value, ptr);
        LLVMSetAlignment(st, cg->f64 ? 8 : 4);
        return;
    }
    LLVMTypeRef types[2] = {LLVMTypeOf(value), cg->ptr};
    const char *name = "llvm.masked.store";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, types, 2);
    LLVMValueRef args[4] = {value, ptr, LLVMConstInt(cg->i32, cg->f64 ? 8 : 4, 0), cg_mask(cg, lanes, used)};
    LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, types, 2), fn, args, 4, "");
}

/* One tile of C at rows [i0, i0+mr) and columns [j0, j0 + ...). */
static void cg_gemm_tile(Cg *cg, const CgGemm *g, LLVMValueRef i0, int64_t j0, GemmTile t, unsigned lanes) {
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    LLVMValueRef acc[GEMM_MR][GEMM_NR];
    for (int r = 0; r < t.mr; r++)
        for (int v = 0; v < t.nv; v++) {
            acc[r][v] = cg_var(cg, vec, "acc");
            LLVMBuildStore(cg->b, LLVMConstNull(vec), acc[r][v]);
        }
    LLVMValueRef row_a[GEMM_MR];
    for (int r = 0; r < t.mr; r++) row_a[r] = cg_mul(cg, cg_add(cg, i0, cg_i64(cg, r)), cg_i64(cg, g->a_rs));

    CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), g->P, "p");
    LLVMValueRef b_row = cg_add(cg, cg_mul(cg, p.iv, cg_i64(cg, g->b_rs)), cg_i64(cg, j0));
    LLVMValueRef bv[GEMM_NR];
    for (int v = 0; v < t.nv; v++)
        bv[v] = cg_vload(cg, g->b, cg_add(cg, b_row, cg_i64(cg, v * (int64_t)lanes)), lanes, v == t.nv - 1 ? t.last_lanes : (int)lanes);
    LLVMValueRef a_col = cg_mul(cg, p.iv, cg_i64(cg, g->a_cs));
    for (int r = 0; r < t.mr; r++) {
        LLVMValueRef a = cg_splat(cg, cg_load(cg, g->a, cg_add(cg, row_a[r], a_col)), lanes);
        for (int v = 0; v < t.nv; v++) {
            LLVMValueRef old = LLVMBuildLoad2(cg->b, vec, acc[r][v], "");
            LLVMBuildStore(cg->b, cg_fadd(cg, old, cg_fmul(cg, a, bv[v])), acc[r][v]);
        }
    }
    p.no_unroll = true;
    cg_loop_end(cg, &p);

    for (int v = 0; v < t.nv; v++) {
        int used = v == t.nv - 1 ? t.last_lanes : (int)lanes;
        LLVMValueRef col = cg_i64(cg, j0 + v * (int64_t)lanes);
        LLVMValueRef bias = g->bias && !g->row_bias ? cg_vload(cg, g->bias, col, lanes, used) : NULL;
        for (int r = 0; r < t.mr; r++) {
            LLVMValueRef row = cg_add(cg, i0, cg_i64(cg, r));
            LLVMValueRef value = LLVMBuildLoad2(cg->b, vec, acc[r][v], "");
            if (g->scale != 1.0) value = cg_fmul(cg, value, cg_splat(cg, cg_const(cg, g->scale), lanes));
            if (bias) value = cg_fadd(cg, value, bias);
            if (g->bias && g->row_bias) value = cg_fadd(cg, value, cg_splat(cg, cg_load(cg, g->bias, row), lanes));
            LLVMValueRef at = cg_add(cg, cg_mul(cg, row, cg_i64(cg, g->c_rs)), col);
            if (g->accumulate) value = cg_fadd(cg, value, cg_vload(cg, g->c, at, lanes, used));
            if (g->act != OP_INPUT) value = cg_activation(cg, g->act, value);
            cg_vstore(cg, value, g->c, at, lanes, used);
        }
    }
}

/* All column tiles of `mr` rows starting at row i0. */
static void cg_gemm_rows(Cg *cg, const CgGemm *g, LLVMValueRef i0, int mr, unsigned lanes) {
    int64_t full_vectors = g->J / lanes;
    int tail = (int)(g->J % lanes);
    int64_t j0 = 0;
    for (; j0 + GEMM_NR * (int64_t)lanes <= full_vectors * (int64_t)lanes; j0 += GEMM_NR * (int64_t)lanes)
        cg_gemm_tile(cg, g, i0, j0, (GemmTile){mr, GEMM_NR, (int)lanes}, lanes);
    int rest = (int)((full_vectors * (int64_t)lanes - j0) / lanes) + (tail ? 1 : 0);
    if (rest > 0) cg_gemm_tile(cg, g, i0, j0, (GemmTile){mr, rest, tail ? tail : (int)lanes}, lanes);
}

/* Row blocks [begin, end) of MR rows each; the last block may hold fewer rows, done one by one.
 * Serial and threaded runs use the same tiles, so every element sees the same arithmetic. */
static void cg_gemm_blocks(Cg *cg, const CgGemm *g, LLVMValueRef begin, LLVMValueRef end, unsigned lanes) {
    CgLoop t = cg_loop_begin(cg, begin, end, "block");
    LLVMValueRef row0 = cg_mul(cg, t.iv, cg_i64(cg, GEMM_MR));
    LLVMValueRef full = LLVMBuildICmp(cg->b, LLVMIntSLE, cg_add(cg, row0, cg_i64(cg, GEMM_MR)), g->M, "");
    LLVMBasicBlockRef full_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "full");
    LLVMBasicBlockRef part_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "partial");
    LLVMBasicBlockRef join_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "join");
    LLVMBuildCondBr(cg->b, full, full_bb, part_bb);
    LLVMPositionBuilderAtEnd(cg->b, full_bb);
    cg_gemm_rows(cg, g, row0, GEMM_MR, lanes);
    LLVMBuildBr(cg->b, join_bb);
    LLVMPositionBuilderAtEnd(cg->b, part_bb);
    CgLoop i = cg_loop_begin(cg, row0, g->M, "i");
    cg_gemm_rows(cg, g, i.iv, 1, lanes);
    cg_loop_end(cg, &i);
    LLVMBuildBr(cg->b, join_bb);
    LLVMPositionBuilderAtEnd(cg->b, join_bb);
    cg_loop_end(cg, &t);
}

/* Fused multiply-adds below which splitting across threads costs more than it saves. */
enum { GEMM_PARALLEL_MIN_FMAS = 1 << 16 };

static int64_t cg_const_or(LLVMValueRef v, int64_t fallback) {
    return LLVMIsAConstantInt(v) ? LLVMConstIntGetSExtValue(v) : fallback;
}

void cg_gemm(Cg *cg, const CgGemm *g) {
    /* 64-byte vectors: 16 floats or 8 doubles (two halves on AVX2 targets, still correct). */
    unsigned lanes = cg->f64 ? 8 : 16;
    LLVMValueRef blocks = LLVMBuildSDiv(cg->b, cg_add(cg, g->M, cg_i64(cg, GEMM_MR - 1)), cg_i64(cg, GEMM_MR), "");
    /* A runtime M is the batch (times positions): assume 64 rows when estimating the work. */
    int64_t work = cg_const_or(g->M, 64) * cg_const_or(g->P, 64) * g->J;
    if (cg->f64 || work < GEMM_PARALLEL_MIN_FMAS) {
        cg_gemm_blocks(cg, g, cg_i64(cg, 0), blocks, lanes);
        return;
    }
    /* Outline the blocks into task(ctx, begin, end) and hand them to nnrt_parallel_for; ctx
     * carries the operands (pointers and the runtime sizes). */
    LLVMTypeRef fields[6] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64};
    LLVMTypeRef ctx_type = LLVMStructTypeInContext(cg->ctx, fields, 6, false);
    LLVMValueRef values[6] = {g->c, g->a, g->b, g->bias ? g->bias : LLVMConstNull(cg->ptr), g->M, g->P};
    LLVMValueRef ctx = cg_var(cg, ctx_type, "gemm_ctx");
    for (unsigned i = 0; i < 6; i++) LLVMBuildStore(cg->b, values[i], LLVMBuildStructGEP2(cg->b, ctx_type, ctx, i, ""));

    LLVMValueRef saved_fn = cg->fn;
    LLVMBasicBlockRef saved_entry = cg->entry_block, saved_block = LLVMGetInsertBlock(cg->b);
    LLVMTypeRef task_params[3] = {cg->ptr, cg->i64, cg->i64};
    LLVMTypeRef task_type = LLVMFunctionType(cg->void_type, task_params, 3, false);
    char name[128];
    snprintf(name, sizeof name, "%s.rows", LLVMGetValueName(saved_fn));
    LLVMValueRef task = LLVMAddFunction(cg->mod, name, task_type);
    LLVMSetLinkage(task, LLVMInternalLinkage);
    cg->fn = task;
    cg->entry_block = LLVMAppendBasicBlockInContext(cg->ctx, task, "entry");
    LLVMPositionBuilderAtEnd(cg->b, cg->entry_block);
    LLVMValueRef arg = LLVMGetParam(task, 0);
    LLVMValueRef loaded[6];
    for (unsigned i = 0; i < 6; i++)
        loaded[i] = LLVMBuildLoad2(cg->b, fields[i], LLVMBuildStructGEP2(cg->b, ctx_type, arg, i, ""), "");
    CgGemm inner = *g;
    inner.c = loaded[0];
    inner.a = loaded[1];
    inner.b = loaded[2];
    inner.bias = g->bias ? loaded[3] : NULL;
    inner.M = loaded[4];
    inner.P = loaded[5];
    cg_gemm_blocks(cg, &inner, LLVMGetParam(task, 1), LLVMGetParam(task, 2), lanes);
    LLVMBuildRetVoid(cg->b);
    cg->fn = saved_fn;
    cg->entry_block = saved_entry;
    LLVMPositionBuilderAtEnd(cg->b, saved_block);

    LLVMTypeRef pf_params[3] = {cg->i64, cg->ptr, cg->ptr};
    LLVMTypeRef pf_type = LLVMFunctionType(cg->void_type, pf_params, 3, false);
    LLVMValueRef pf = LLVMGetNamedFunction(cg->mod, "nnrt_parallel_for");
    if (!pf) pf = LLVMAddFunction(cg->mod, "nnrt_parallel_for", pf_type);
    LLVMValueRef args[3] = {blocks, task, ctx};
    LLVMBuildCall2(cg->b, pf_type, pf, args, 3, "");
}
