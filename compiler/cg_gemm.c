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

/* GEMM_NR_MAX: a last tile of up to 6 vectors absorbs the 1-2 leftover vectors of a row (24
 * accumulators + 6 B vectors + 1 broadcast fit the 32 vector registers), so no thin tile with
 * too few independent accumulators to hide the FMA latency remains. */
enum { GEMM_MR = 4, GEMM_NR = 4, GEMM_NR_MAX = 6 };

/* The tile widths for the target's registers: with 32 vector registers (AVX-512) 4 vectors of
 * C per row (16 accumulators, a last tile of up to 6); with 16 (AVX2) 2 and 3, so accumulators,
 * B vectors and the broadcast still fit without spilling. */
static int gemm_nr(const Cg *cg) { return cg->vector_bytes >= 64 ? GEMM_NR : 2; }
static int gemm_nr_max(const Cg *cg) { return cg->vector_bytes >= 64 ? GEMM_NR_MAX : 3; }

typedef struct GemmTile {
    int mr;          /* rows in this tile */
    int nv;          /* vectors in this tile */
    int last_lanes;  /* lanes used in the last vector (VW when full) */
} GemmTile;

LLVMValueRef cg_splat(Cg *cg, LLVMValueRef scalar, unsigned lanes) {
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

LLVMValueRef cg_vload_masked(Cg *cg, LLVMValueRef base, LLVMValueRef index, unsigned lanes, LLVMValueRef mask) {
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    LLVMTypeRef types[2] = {vec, cg->ptr};
    const char *name = "llvm.masked.load";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, types, 2);
    LLVMValueRef args[4] = {cg_gep(cg, base, index), LLVMConstInt(cg->i32, cg->f64 ? 8 : 4, 0), mask, LLVMConstNull(vec)};
    return LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, types, 2), fn, args, 4, "");
}

void cg_vstore_masked(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index, LLVMValueRef mask) {
    LLVMTypeRef types[2] = {LLVMTypeOf(value), cg->ptr};
    const char *name = "llvm.masked.store";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, types, 2);
    LLVMValueRef args[4] = {value, cg_gep(cg, base, index), LLVMConstInt(cg->i32, cg->f64 ? 8 : 4, 0), mask};
    LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, types, 2), fn, args, 4, "");
}

LLVMValueRef cg_lanes_below(Cg *cg, LLVMValueRef count, unsigned lanes) {
    LLVMValueRef idx[64];
    for (unsigned i = 0; i < lanes; i++) idx[i] = cg_i64(cg, i);
    return LLVMBuildICmp(cg->b, LLVMIntSLT, LLVMConstVector(idx, lanes), cg_splat(cg, count, lanes), "");
}

LLVMValueRef cg_vload_full(Cg *cg, LLVMValueRef base, LLVMValueRef index, unsigned lanes) {
    LLVMValueRef v = LLVMBuildLoad2(cg->b, LLVMVectorType(cg->elem, lanes), cg_gep(cg, base, index), "");
    LLVMSetAlignment(v, cg->f64 ? 8 : 4);
    return v;
}

void cg_vstore_full(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index) {
    LLVMValueRef st = LLVMBuildStore(cg->b, value, cg_gep(cg, base, index));
    LLVMSetAlignment(st, cg->f64 ? 8 : 4);
}

/* Vector load/store of `lanes` elements at base[index]; masked when used < lanes. */
static LLVMValueRef cg_vload(Cg *cg, LLVMValueRef base, LLVMValueRef index, unsigned lanes, int used) {
    if (used < (int)lanes) return cg_vload_masked(cg, base, index, lanes, cg_mask(cg, lanes, used));
    return cg_vload_full(cg, base, index, lanes);
}

static void cg_vstore(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index, unsigned lanes, int used) {
    if (used < (int)lanes) cg_vstore_masked(cg, value, base, index, cg_mask(cg, lanes, used));
    else cg_vstore_full(cg, value, base, index);
}

/* The stores of one tile row: scale, bias, accumulate, activation, then C(row, col ..). */
static void cg_gemm_store(Cg *cg, const CgGemm *g, LLVMValueRef row, LLVMValueRef col, LLVMValueRef value, unsigned lanes,
                          int used, LLVMValueRef bias) {
    if (g->scale != 1.0) value = cg_fmul(cg, value, cg_splat(cg, cg_const(cg, g->scale), lanes));
    if (bias) value = cg_fadd(cg, value, bias);
    if (g->bias && g->row_bias) value = cg_fadd(cg, value, cg_splat(cg, cg_load(cg, g->bias, row), lanes));
    LLVMValueRef at = cg_add(cg, cg_mul(cg, row, cg_i64(cg, g->c_rs)), col);
    if (g->accumulate) value = cg_fadd(cg, value, cg_vload(cg, g->c, at, lanes, used));
    if (g->act) value = cg_activation(cg, g->act->op, value);
    cg_vstore(cg, value, g->c, at, lanes, used);
}

/* One tile of C at rows [i0, i0+mr) and columns [j0, j0 + ...). */
static void cg_gemm_tile(Cg *cg, const CgGemm *g, LLVMValueRef i0, LLVMValueRef j0, GemmTile t, unsigned lanes) {
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    LLVMValueRef acc[GEMM_MR][GEMM_NR_MAX];
    for (int r = 0; r < t.mr; r++)
        for (int v = 0; v < t.nv; v++) {
            acc[r][v] = cg_var(cg, vec, "acc");
            LLVMBuildStore(cg->b, LLVMConstNull(vec), acc[r][v]);
        }
    LLVMValueRef row_a[GEMM_MR];
    for (int r = 0; r < t.mr; r++) row_a[r] = cg_mul(cg, cg_add(cg, i0, cg_i64(cg, r)), cg_i64(cg, g->a_rs));

    CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), g->P, "p");
    LLVMValueRef b_row = cg_add(cg, cg_mul(cg, p.iv, cg_i64(cg, g->b_rs)), j0);
    LLVMValueRef bv[GEMM_NR_MAX];
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
        LLVMValueRef col = cg_add(cg, j0, cg_i64(cg, v * (int64_t)lanes));
        LLVMValueRef bias = g->bias && !g->row_bias ? cg_vload(cg, g->bias, col, lanes, used) : NULL;
        for (int r = 0; r < t.mr; r++)
            cg_gemm_store(cg, g, cg_add(cg, i0, cg_i64(cg, r)), col, LLVMBuildLoad2(cg->b, vec, acc[r][v], ""), lanes, used, bias);
    }
}

/* Sums each of `lanes` vectors across its lanes: result lane k = sum of vs[k]. A tree of
 * shuffles: each level halves the partial sums per output and doubles the outputs per vector. */
static LLVMValueRef cg_transpose_sum(Cg *cg, LLVMValueRef *vs, unsigned lanes) {
    for (unsigned count = lanes, s = lanes; count > 1; count /= 2, s /= 2) {
        LLVMValueRef lo_idx[64], hi_idx[64];
        unsigned k = 0;
        for (unsigned src = 0; src < 2; src++)
            for (unsigned q = 0; q < lanes / s; q++)
                for (unsigned t = 0; t < s / 2; t++, k++) {
                    lo_idx[k] = LLVMConstInt(cg->i32, src * lanes + q * s + t, 0);
                    hi_idx[k] = LLVMConstInt(cg->i32, src * lanes + q * s + t + s / 2, 0);
                }
        for (unsigned i = 0; i < count / 2; i++) {
            LLVMValueRef lo = LLVMBuildShuffleVector(cg->b, vs[2 * i], vs[2 * i + 1], LLVMConstVector(lo_idx, lanes), "");
            LLVMValueRef hi = LLVMBuildShuffleVector(cg->b, vs[2 * i], vs[2 * i + 1], LLVMConstVector(hi_idx, lanes), "");
            vs[i] = cg_fadd(cg, lo, hi);
        }
    }
    return vs[0];
}

/* B stored transposed (B(p,j) = b[j*b_rs + p], A contiguous in p too): a tile of mr rows x nc
 * columns keeps one vector accumulator per output over p (lanes-wide steps, a masked last one),
 * then one shuffle tree sums them all. Row r of the tile is lanes [r*NC, r*NC + nc). */
static void cg_gemm_tile_nt(Cg *cg, const CgGemm *g, LLVMValueRef i0, LLVMValueRef j0, int mr, int nc, unsigned lanes) {
    const int NC = (int)lanes / GEMM_MR;
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    int64_t P = LLVMConstIntGetSExtValue(g->P), full = P / lanes;
    int tail = (int)(P % lanes);
    LLVMValueRef acc[64] = {0};
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nc; c++) {
            acc[r * NC + c] = cg_var(cg, vec, "acc");
            LLVMBuildStore(cg->b, LLVMConstNull(vec), acc[r * NC + c]);
        }
    LLVMValueRef row_a[GEMM_MR], row_b[16];
    for (int r = 0; r < mr; r++) row_a[r] = cg_mul(cg, cg_add(cg, i0, cg_i64(cg, r)), cg_i64(cg, g->a_rs));
    for (int c = 0; c < nc; c++) row_b[c] = cg_mul(cg, cg_add(cg, j0, cg_i64(cg, c)), cg_i64(cg, g->b_rs));
    for (int part = 0; part < 2; part++) {
        if (part == 0 ? full == 0 : tail == 0) continue;
        CgLoop p = cg_loop_begin(cg, cg_i64(cg, part ? full : 0), cg_i64(cg, part ? full + 1 : full), "p");
        LLVMValueRef at = cg_mul(cg, p.iv, cg_i64(cg, lanes));
        int used = part ? tail : (int)lanes;
        LLVMValueRef av[GEMM_MR], bv[16];
        for (int r = 0; r < mr; r++) av[r] = cg_vload(cg, g->a, cg_add(cg, row_a[r], at), lanes, used);
        for (int c = 0; c < nc; c++) bv[c] = cg_vload(cg, g->b, cg_add(cg, row_b[c], at), lanes, used);
        for (int r = 0; r < mr; r++)
            for (int c = 0; c < nc; c++) {
                LLVMValueRef old = LLVMBuildLoad2(cg->b, vec, acc[r * NC + c], "");
                LLVMBuildStore(cg->b, cg_fadd(cg, old, cg_fmul(cg, av[r], bv[c])), acc[r * NC + c]);
            }
        p.no_unroll = true;
        cg_loop_end(cg, &p);
    }
    LLVMValueRef sums[64];
    for (unsigned k = 0; k < lanes; k++)
        sums[k] = acc[k] ? LLVMBuildLoad2(cg->b, vec, acc[k], "") : LLVMConstNull(vec);
    LLVMValueRef total = cg_transpose_sum(cg, sums, lanes);
    LLVMValueRef bias = g->bias && !g->row_bias ? cg_vload(cg, g->bias, j0, (unsigned)nc, nc) : NULL;
    for (int r = 0; r < mr; r++) {
        LLVMValueRef idx[16];
        for (int c = 0; c < nc; c++) idx[c] = LLVMConstInt(cg->i32, (unsigned)(r * NC + c), 0);
        LLVMValueRef row = LLVMBuildShuffleVector(cg->b, total, LLVMGetUndef(vec), LLVMConstVector(idx, (unsigned)nc), "");
        cg_gemm_store(cg, g, cg_add(cg, i0, cg_i64(cg, r)), j0, row, (unsigned)nc, nc, bias);
    }
}

/* All column tiles of `mr` rows starting at row i0: a loop over the full tiles, then the rest. */
static void cg_gemm_rows(Cg *cg, const CgGemm *g, LLVMValueRef i0, int mr, unsigned lanes) {
    int64_t width = g->b_transposed ? (int64_t)lanes / GEMM_MR : gemm_nr(cg) * (int64_t)lanes; /* columns per full tile */
    int64_t tiles = g->J / width, rest = g->J - tiles * width;
    if (tiles > 0) {
        CgLoop jt = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, tiles), "jt");
        LLVMValueRef j0 = cg_mul(cg, jt.iv, cg_i64(cg, width));
        if (g->b_transposed) cg_gemm_tile_nt(cg, g, i0, j0, mr, (int)width, lanes);
        else cg_gemm_tile(cg, g, i0, j0, (GemmTile){mr, gemm_nr(cg), (int)lanes}, lanes);
        jt.no_unroll = true;
        cg_loop_end(cg, &jt);
    }
    if (rest == 0) return;
    LLVMValueRef j0 = cg_i64(cg, tiles * width);
    if (g->b_transposed) cg_gemm_tile_nt(cg, g, i0, j0, mr, (int)rest, lanes);
    else cg_gemm_tile(cg, g, i0, j0, (GemmTile){mr, (int)((rest + lanes - 1) / lanes), rest % lanes ? (int)(rest % lanes) : (int)lanes}, lanes);
}

/* cg_gemm_rows for the broadcast tiles when the row ends in 1-2 leftover vectors: the last full
 * tile takes them (one wider tile instead of a latency-bound thin one). */
static void cg_gemm_rows_merged(Cg *cg, const CgGemm *g, LLVMValueRef i0, int mr, unsigned lanes) {
    int nr = gemm_nr(cg);
    int64_t width = nr * (int64_t)lanes, tiles = g->J / width, rest = g->J - tiles * width;
    int64_t rest_vectors = (rest + (int64_t)lanes - 1) / (int64_t)lanes;
    if (g->b_transposed || tiles == 0 || rest == 0 || nr + rest_vectors > gemm_nr_max(cg)) {
        cg_gemm_rows(cg, g, i0, mr, lanes);
        return;
    }
    if (tiles > 1) {
        CgLoop jt = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, tiles - 1), "jt");
        cg_gemm_tile(cg, g, i0, cg_mul(cg, jt.iv, cg_i64(cg, width)), (GemmTile){mr, nr, (int)lanes}, lanes);
        jt.no_unroll = true;
        cg_loop_end(cg, &jt);
    }
    GemmTile last = {mr, (int)(nr + rest_vectors), rest % lanes ? (int)(rest % lanes) : (int)lanes};
    cg_gemm_tile(cg, g, i0, cg_i64(cg, (tiles - 1) * width), last, lanes);
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
    cg_gemm_rows_merged(cg, g, row0, GEMM_MR, lanes);
    LLVMBuildBr(cg->b, join_bb);
    LLVMPositionBuilderAtEnd(cg->b, part_bb);
    CgLoop i = cg_loop_begin(cg, row0, g->M, "i");
    cg_gemm_rows(cg, g, i.iv, 1, lanes);
    cg_loop_end(cg, &i);
    LLVMBuildBr(cg->b, join_bb);
    LLVMPositionBuilderAtEnd(cg->b, join_bb);
    t.no_unroll = true;
    cg_loop_end(cg, &t);
}

/* A long reduction (the batch's rows in a weight gradient: dW = dy^T x) streams all of B once
 * per row block of C, from memory when B is larger than the caches. Cut into pieces of PB steps,
 * each piece of B (PB x J, at most 128 KiB) is read by every row block while it is still in L2,
 * and C accumulates the pieces in order: the same order for any thread count. Only products
 * without bias or activation (those would have to wait for the last piece) and with a
 * broadcast A are cut. */
static int64_t gemm_reduction_block(const CgGemm *g) {
    int64_t pb = 32768 / g->J; /* 128 KiB of float B */
    return pb < 32 ? 32 : pb > 256 ? 256 : pb;
}

static void cg_gemm_reduction_blocks(Cg *cg, const CgGemm *g, LLVMValueRef begin, LLVMValueRef end, unsigned lanes) {
    int64_t pb = gemm_reduction_block(g);
    bool cut = !g->b_transposed && !g->bias && !g->act && !cg->f64 &&
               (!LLVMIsAConstantInt(g->P) || LLVMConstIntGetSExtValue(g->P) > 2 * pb);
    if (!cut) {
        cg_gemm_blocks(cg, g, begin, end, lanes);
        return;
    }
    LLVMValueRef PB = cg_i64(cg, pb);
    /* piece 0 writes (or accumulates into, when the product does) C; the others add to it */
    CgGemm piece = *g;
    LLVMValueRef short_p = LLVMBuildICmp(cg->b, LLVMIntSLT, g->P, PB, "");
    piece.P = LLVMBuildSelect(cg->b, short_p, g->P, PB, "");
    cg_gemm_blocks(cg, &piece, begin, end, lanes);
    LLVMValueRef pieces = LLVMBuildSDiv(cg->b, cg_add(cg, g->P, cg_i64(cg, pb - 1)), PB, "");
    CgLoop k = cg_loop_begin(cg, cg_i64(cg, 1), pieces, "piece");
    LLVMValueRef p0 = cg_mul(cg, k.iv, PB), rest = LLVMBuildNSWSub(cg->b, g->P, p0, "");
    piece.P = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, rest, PB, ""), rest, PB, "");
    piece.a = cg_gep(cg, g->a, cg_mul(cg, p0, cg_i64(cg, g->a_cs)));
    piece.b = cg_gep(cg, g->b, cg_mul(cg, p0, cg_i64(cg, g->b_rs)));
    piece.accumulate = true;
    cg_gemm_blocks(cg, &piece, begin, end, lanes);
    k.no_unroll = true;
    cg_loop_end(cg, &k);
}

/* Fused multiply-adds below which splitting across threads costs more than it saves. */
enum { GEMM_PARALLEL_MIN_FMAS = 1 << 18 }; /* a 64x128x10 product: 2 us on one core */

static int64_t cg_const_or(LLVMValueRef v, int64_t fallback) {
    return LLVMIsAConstantInt(v) ? LLVMConstIntGetSExtValue(v) : fallback;
}

typedef struct GemmTask {
    const CgGemm *g;
    unsigned lanes;
} GemmTask;

/* The task body: the operands (c, a, b, bias, M, P) come from the task's context. */
static void cg_gemm_task(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const GemmTask *t = user;
    CgGemm inner = *t->g;
    inner.c = v[0];
    inner.a = v[1];
    inner.b = v[2];
    inner.bias = t->g->bias ? v[3] : NULL;
    if (!LLVMIsAConstantInt(inner.M)) inner.M = v[4];
    if (!LLVMIsAConstantInt(inner.P)) inner.P = v[5];
    cg_gemm_reduction_blocks(cg, &inner, begin, end, t->lanes);
}

void cg_gemm(Cg *cg, const CgGemm *g) {
    /* the target's vectors: 16 floats or 8 doubles with AVX-512, 8 or 4 with AVX2 */
    unsigned lanes = (unsigned)cg->vector_bytes / (cg->f64 ? 8u : 4u);
    LLVMValueRef blocks = LLVMBuildSDiv(cg->b, cg_add(cg, g->M, cg_i64(cg, GEMM_MR - 1)), cg_i64(cg, GEMM_MR), "");
    /* A runtime M is the batch (times positions): assume 64 rows when estimating the work. */
    int64_t work = cg_const_or(g->M, 64) * cg_const_or(g->P, 64) * g->J;
    LLVMValueRef values[6] = {g->c, g->a, g->b, g->bias ? g->bias : LLVMConstNull(cg->ptr), g->M, g->P};
    GemmTask task = {g, lanes};
    cg_parallel_for(cg, blocks, values, 6, g->serial || work < GEMM_PARALLEL_MIN_FMAS, cg_gemm_task, &task);
}
