/* cg_gemm.c — the matrix products in explicit LLVM vector IR, shared by dense (forward and both
 * backward products), conv2d (im2col products), attention and the recurrent kernels.
 *
 *   C[i, j] = scale * sum_p A(i,p) B(p,j)  (+ bias) (then act)   for i < M, j < J, p < P
 *   A(i,p) = a[i*a_rs + p*a_cs]   (one element, broadcast to a vector)
 *   B(p,j) = b[p*b_rs + j]        (or b[j*b_rs + p] when b_transposed)
 *   C(i,j) = c[i*c_rs + j]        (contiguous in j: vector stores)
 *
 * Two paths (cg_gemm at the end picks one; compiler/DESIGN.md "Matrix products" says why):
 * - packed: panels of B copied to an L1-resident stack buffer, MR x 2-vector register tiles,
 *   kc blocks, (row chunk, panel group) tasks — every product with enough rows;
 * - direct: the tiles below, reading B in place (MR rows x NR vectors broadcast tiles, or
 *   dot-product tiles for a transposed B) — few rows, the float64 twin, narrow packed B.
 * In both, each element of C is one chain of multiply-adds in order of p (the dot-product tiles
 * excepted: lane sums, then a tree), computed by one task with the same code whatever the thread
 * count, so results do not depend on the threads. */
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

/* The products' multiply-adds and the dot-product tiles' lane sums carry only the `contract`
 * flag (a fused multiply-add), not cg_fadd's reassociation: each element must be the same chain
 * in every tile shape and on every path, or an example's bits would depend on the batch (on NEON
 * a 1-row tile once summed in another order than a 4-row one). */
static LLVMValueRef gemm_fma(Cg *cg, LLVMValueRef acc, LLVMValueRef a, LLVMValueRef b) {
    return cg_fadd_ordered(cg, acc, cg_fmul_ordered(cg, a, b));
}

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

/* ceil(a / b) for positive i64 values */
static LLVMValueRef ceil_div(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSDiv(cg->b, LLVMBuildNSWSub(cg->b, cg_add(cg, a, b), cg_i64(cg, 1), ""), b, "");
}

static LLVMValueRef cg_mask(Cg *cg, unsigned lanes, int used) {
    LLVMValueRef bits[64];
    for (unsigned i = 0; i < lanes; i++) bits[i] = LLVMConstInt(cg->i1, (int)i < used, 0);
    return LLVMConstVector(bits, lanes);
}

/* A call of the intrinsic `name` overloaded on types[0..ntypes). */
static LLVMValueRef call_intrinsic(Cg *cg, const char *name, LLVMTypeRef *types, size_t ntypes, LLVMValueRef *args, unsigned nargs) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, types, ntypes);
    return LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, types, ntypes), fn, args, nargs, "");
}

LLVMValueRef cg_vload_masked(Cg *cg, LLVMValueRef base, LLVMValueRef index, unsigned lanes, LLVMValueRef mask) {
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    LLVMTypeRef types[2] = {vec, cg->ptr};
    LLVMValueRef args[4] = {cg_gep(cg, base, index), LLVMConstInt(cg->i32, cg->f64 ? 8 : 4, 0), mask, LLVMConstNull(vec)};
    return call_intrinsic(cg, "llvm.masked.load", types, 2, args, 4);
}

void cg_vstore_masked(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index, LLVMValueRef mask) {
    LLVMTypeRef types[2] = {LLVMTypeOf(value), cg->ptr};
    LLVMValueRef args[4] = {value, cg_gep(cg, base, index), LLVMConstInt(cg->i32, cg->f64 ? 8 : 4, 0), mask};
    call_intrinsic(cg, "llvm.masked.store", types, 2, args, 4);
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

/* log2(lanes) rounds of two-input shuffles, each swapping the off-diagonal blocks of half the
 * size (a butterfly: 24 shuffles for 8 x 8). */
void cg_transpose(Cg *cg, LLVMValueRef *rows, unsigned lanes) {
    for (unsigned d = lanes / 2; d >= 1; d /= 2) {
        LLVMValueRef lo[64], hi[64];
        for (unsigned l = 0; l < lanes; l++) {
            lo[l] = LLVMConstInt(cg->i32, (l & d) ? lanes + l - d : l, 0);
            hi[l] = LLVMConstInt(cg->i32, (l & d) ? lanes + l : l + d, 0);
        }
        for (unsigned i = 0; i < lanes; i++) {
            if (i & d) continue;
            LLVMValueRef a = rows[i], b = rows[i + d];
            rows[i] = LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(lo, lanes), "");
            rows[i + d] = LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(hi, lanes), "");
        }
    }
}

/* Column block c0 (cols of it, compile-time) of every block of rows; exact: the last block's
 * stores are masked to the rows that exist. */
static void transpose_column_block(Cg *cg, LLVMValueRef src, int64_t src_rs, LLVMValueRef rows, LLVMValueRef c0, int cols,
                                   LLVMValueRef dst, int64_t dst_rs, unsigned lanes, bool exact) {
    if (exact && LLVMIsAConstantInt(rows) && LLVMConstIntGetSExtValue(rows) % lanes == 0) exact = false; /* whole blocks */
    LLVMValueRef mask = cols < (int)lanes ? cg_lanes_below(cg, cg_i64(cg, cols), lanes) : NULL;
    LLVMValueRef last = LLVMBuildNSWSub(cg->b, rows, cg_i64(cg, 1), "");
    CgLoop rb = cg_loop_begin(cg, cg_i64(cg, 0), ceil_div(cg, rows, cg_i64(cg, lanes)), "rb");
    LLVMValueRef r0 = cg_mul(cg, rb.iv, cg_i64(cg, lanes)), v[64];
    for (unsigned r = 0; r < lanes; r++) {
        LLVMValueRef row = cg_min_i64(cg, cg_add(cg, r0, cg_i64(cg, r)), last);
        LLVMValueRef at = cg_add(cg, cg_mul(cg, row, cg_i64(cg, src_rs)), c0);
        v[r] = mask ? cg_vload_masked(cg, src, at, lanes, mask) : cg_vload_full(cg, src, at, lanes);
    }
    cg_transpose(cg, v, lanes);
    LLVMValueRef store_mask = exact ? cg_lanes_below(cg, LLVMBuildNSWSub(cg->b, rows, r0, ""), lanes) : NULL;
    for (int c = 0; c < cols; c++) {
        LLVMValueRef at = cg_add(cg, cg_mul(cg, cg_add(cg, c0, cg_i64(cg, c)), cg_i64(cg, dst_rs)), r0);
        if (store_mask) cg_vstore_masked(cg, v[c], dst, at, store_mask);
        else cg_vstore_full(cg, v[c], dst, at);
    }
    rb.no_unroll = true;
    cg_loop_end(cg, &rb);
}

void cg_transpose_copy(Cg *cg, LLVMValueRef src, int64_t src_rs, LLVMValueRef rows, int64_t cols, LLVMValueRef dst, int64_t dst_rs,
                       bool exact) {
    unsigned lanes = (unsigned)cg->vector_bytes / (cg->f64 ? 8u : 4u);
    int64_t full = cols / lanes;
    if (full > 0) {
        CgLoop cb = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, full), "cb");
        transpose_column_block(cg, src, src_rs, rows, cg_mul(cg, cb.iv, cg_i64(cg, lanes)), (int)lanes, dst, dst_rs, lanes, exact);
        cb.no_unroll = true;
        cg_loop_end(cg, &cb);
    }
    if (cols % lanes)
        transpose_column_block(cg, src, src_rs, rows, cg_i64(cg, full * (int64_t)lanes), (int)(cols % lanes), dst, dst_rs, lanes, exact);
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
            LLVMBuildStore(cg->b, gemm_fma(cg, old, a, bv[v]), acc[r][v]);
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
            vs[i] = cg_fadd_ordered(cg, lo, hi);
        }
    }
    return vs[0];
}

/* Columns per dot-product tile: GEMM_MR rows x lanes/GEMM_MR columns fill one shuffle tree; a
 * single row (a library's one-example call) takes up to 8 columns, 8 independent chains instead
 * of 4 for the FMA latency (the first dense layer of the CNN at batch 1: 19.3 -> 18.2 us). The
 * tree sums each output alike whatever its slot, so both shapes give the same bits. */
enum { NT_ROW_COLUMNS = 8 };
static int nt_columns(int mr, unsigned lanes) {
    if (mr > 1) return (int)lanes / GEMM_MR;
    return (int)lanes < NT_ROW_COLUMNS ? (int)lanes : NT_ROW_COLUMNS;
}

/* B stored transposed (B(p,j) = b[j*b_rs + p], A contiguous in p too): a tile of mr rows x nc
 * columns keeps one vector accumulator per output over p (lanes-wide steps, a masked last one),
 * then one shuffle tree sums them all. Row r of the tile is lanes [r*NC, r*NC + nc). */
static void cg_gemm_tile_nt(Cg *cg, const CgGemm *g, LLVMValueRef i0, LLVMValueRef j0, int mr, int nc, unsigned lanes) {
    const int NC = nt_columns(mr, lanes);
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
                LLVMBuildStore(cg->b, gemm_fma(cg, old, av[r], bv[c]), acc[r * NC + c]);
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
    int64_t width = g->b_transposed ? nt_columns(mr, lanes) : gemm_nr(cg) * (int64_t)lanes; /* columns per full tile */
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
    cg_gemm_blocks(cg, &inner, begin, end, t->lanes);
}

/* ---------------------------------------------------------------- packed products
 *
 * The broadcast tiles above read B where it lies: a row of B is J floats apart from the next, so
 * the p-th rows of one column tile fall into a few cache sets (a stride of 1536 or 2048 bytes
 * maps 128 rows onto 8 or 2 of L1's 64 sets) and B streams from L2 for every row block. The
 * packed path copies a panel of B (W = 2 vectors of columns, kc rows) into a contiguous buffer
 * on the stack, where it stays in L1 while every row tile of a chunk of rows passes over it:
 *
 *   for each (row chunk, panel group) task:  (the thread pool's tasks; chunk-major)
 *     for each kc block of the reduction:    (outside: the chunk's block of A stays in L2)
 *       for each panel of the group:
 *         pack B[p0 .. p0+kc, panel]         (the buffer is kc x W: 16 KiB)
 *         for each MR-row tile of the chunk: (MR x 2 vectors of C in registers)
 *           acc = the C tile (after the first block) or 0; acc += A(i,p) B(p,j) for p in the block
 *           store acc, or at the last block: scale, bias, activation, store
 *
 * Each element of C is still one sequence of fused multiply-adds over p in order (the partial
 * sums round-trip through C exactly), whoever runs which task: the bytes do not depend on the
 * thread count. A chunk of rows (MC x kc of A, 192 KiB) stays in L2 while the task's panels pass. */

/* MR rows x 2 vectors: 12 accumulators + 2 B vectors + 1 broadcast of AVX2's 16 registers; 24 of
 * 32 with AVX-512 (the shape of BLIS's Haswell and Skylake-X kernels, transposed). */
static int packed_mr(const Cg *cg) { return cg->vector_bytes >= 64 ? 12 : 6; }
enum { PACKED_NR = 2, PACKED_PANEL_BYTES = 16384, PACKED_CHUNK_BYTES = 196608 };

typedef struct PackedGemm {
    const CgGemm *g;      /* the product (accumulate cleared when it is folded into the first block) */
    unsigned lanes;
    int mr;               /* rows per tile */
    int64_t W;            /* columns per panel */
    int64_t kc;           /* reduction rows per block */
    int64_t mc;           /* rows per chunk (a multiple of mr) */
    int64_t panels;       /* ceil(J / W) */
    bool fold_accumulate; /* C += A B: the first block starts from C instead of 0 */
    bool pack_a;          /* A is transposed (a_rs 1, a_cs long): copy each chunk's block first */
    int64_t per_group;    /* panels per group, 0: from PACKED_MIN_TASKS (packed_per_group) */
    bool spread;          /* parallel: rows in PACKED_CHUNKS chunks or more (each reads its A once) */
} PackedGemm;

static int64_t packed_width(const Cg *cg) { return PACKED_NR * (int64_t)cg->vector_bytes / (cg->f64 ? 8 : 4); }
static int64_t packed_elem_bytes(const Cg *cg) { return cg->f64 ? 8 : 4; }

/* A stack buffer of `count` elements named `name`: one per function (every packed product in
 * it reuses it). */
static LLVMValueRef packed_buffer(Cg *cg, const char *name, int64_t count) {
    LLVMTypeRef type = LLVMArrayType2(cg->elem, (uint64_t)count);
    LLVMValueRef first = LLVMGetFirstInstruction(cg->entry_block);
    for (LLVMValueRef i = first; i && LLVMIsAAllocaInst(i); i = LLVMGetNextInstruction(i)) {
        size_t len;
        const char *n = LLVMGetValueName2(i, &len);
        if (len == strlen(name) && memcmp(n, name, len) == 0 && LLVMGetAllocatedType(i) == type) return i;
    }
    LLVMValueRef buf = cg_var(cg, type, name);
    LLVMSetAlignment(buf, 64);
    return buf;
}

/* Tasks are (row chunk, panel group) pairs: enough of them for the pool to balance (about 16)
 * when there are few chunks, else one group per chunk (each chunk's A is then read once). The
 * panels per group spread evenly (8 panels wanted in 6 groups are 4 groups of 2, not 6 with 2
 * empty: an empty task would still count as a piece of the pool's balance). Runtime M: values. */
enum { PACKED_MIN_TASKS = 16, PACKED_CHUNKS = 8, PACKED_TALL = 4 };
/* Rows per chunk: M cut into the nearest whole number of chunks of about mc rows (at least one),
 * shared evenly and rounded up to whole tiles — 256 rows are one chunk, not 246 + 10 (a second
 * chunk packs every panel of B again for a few rows); a chunk stays within 1.5 mc rows (L2). */
static LLVMValueRef packed_chunk_rows(Cg *cg, const PackedGemm *k, LLVMValueRef M) {
    LLVMValueRef n = LLVMBuildSDiv(cg->b, cg_add(cg, M, cg_i64(cg, k->mc / 2)), cg_i64(cg, k->mc), "");
    n = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, n, cg_i64(cg, 1), ""), cg_i64(cg, 1), n, "");
    if (k->spread) { /* M >= 4 J: at least PACKED_CHUNKS chunks of 4 tiles or more where M has the rows */
        LLVMValueRef some = cg_min_i64(cg, cg_i64(cg, PACKED_CHUNKS), LLVMBuildSDiv(cg->b, M, cg_i64(cg, 4 * k->mr), ""));
        LLVMValueRef tall = LLVMBuildICmp(cg->b, LLVMIntSGE, M, cg_i64(cg, PACKED_TALL * k->g->J), "");
        some = LLVMBuildSelect(cg->b, tall, some, cg_i64(cg, 1), "");
        n = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, n, some, ""), some, n, "");
    }
    if (k->pack_a) { /* a packed block holds mc rows at most: ceil(M / n) <= mc */
        LLVMValueRef least = ceil_div(cg, M, cg_i64(cg, k->mc));
        n = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, n, least, ""), least, n, "");
    }
    return cg_mul(cg, ceil_div(cg, ceil_div(cg, M, n), cg_i64(cg, k->mr)), cg_i64(cg, k->mr));
}
/* Panels per group for `chunks` row chunks. */
static LLVMValueRef packed_per_group(Cg *cg, const PackedGemm *k, LLVMValueRef chunks) {
    LLVMValueRef panels = cg_i64(cg, k->panels);
    if (k->per_group) return cg_i64(cg, k->per_group);
    LLVMValueRef want = cg_min_i64(cg, ceil_div(cg, cg_i64(cg, PACKED_MIN_TASKS), chunks), panels);
    return ceil_div(cg, panels, ceil_div(cg, panels, ceil_div(cg, panels, want)));
}
static LLVMValueRef packed_groups(Cg *cg, const PackedGemm *k, LLVMValueRef per_group) {
    return ceil_div(cg, cg_i64(cg, k->panels), per_group);
}

/* The kc blocks of a reduction of P: at least one, so that an empty reduction (a rank given no
 * examples of a batch's last few) still writes C = 0 (+ bias). */
static LLVMValueRef packed_blocks(Cg *cg, const PackedGemm *k, LLVMValueRef P) {
    LLVMValueRef blocks = ceil_div(cg, P, cg_i64(cg, k->kc));
    return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, blocks, cg_i64(cg, 1), ""), cg_i64(cg, 1), blocks, "");
}

/* The mask of the lanes of vector v that lie inside a panel of `width` (runtime) columns. */
static LLVMValueRef packed_mask(Cg *cg, const PackedGemm *k, LLVMValueRef width, int v) {
    return cg_lanes_below(cg, LLVMBuildNSWSub(cg->b, width, cg_i64(cg, v * (int64_t)k->lanes), ""), k->lanes);
}

/* if (cond) body(true) else body(false) */
typedef void (*PackedBody)(Cg *cg, const PackedGemm *k, bool flag, void *user);
static void packed_branch(Cg *cg, const PackedGemm *k, LLVMValueRef cond, PackedBody body, void *user) {
    LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "then");
    LLVMBasicBlockRef no = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "else");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "endif");
    LLVMBuildCondBr(cg->b, cond, yes, no);
    LLVMPositionBuilderAtEnd(cg->b, yes);
    body(cg, k, true, user);
    LLVMBuildBr(cg->b, join);
    LLVMPositionBuilderAtEnd(cg->b, no);
    body(cg, k, false, user);
    LLVMBuildBr(cg->b, join);
    LLVMPositionBuilderAtEnd(cg->b, join);
}

/* body(full): the whole-panel case with plain loads and stores, the last panel's with masked
 * ones (masked stores are slow on some cores); one of them when J leaves no doubt. */
static void packed_either(Cg *cg, const PackedGemm *k, LLVMValueRef full_panel, PackedBody body, void *user) {
    if (k->g->J % k->W == 0 || k->g->J < k->W) body(cg, k, k->g->J % k->W == 0, user);
    else packed_branch(cg, k, full_panel, body, user);
}

typedef struct PackedPanel {
    LLVMValueRef buf, p0, len, j0, width, full; /* full: width == W (i1) */
} PackedPanel;

/* The panel of a transposed B (B(p, j) = b[j*b_rs + p]: W rows of b, len long): whole blocks of
 * `lanes` reduction rows by in-register transposes (cg_transpose, `lanes` vector loads and
 * stores per block, not lanes^2 scalar loads and inserts), the last len % lanes rows one
 * element at a time. Past `width` the lanes repeat the last column. */
static void packed_pack_transposed(Cg *cg, const PackedGemm *k, const PackedPanel *q) {
    const CgGemm *g = k->g;
    unsigned lanes = k->lanes;
    LLVMValueRef src = cg_gep(cg, g->b, cg_add(cg, cg_mul(cg, q->j0, cg_i64(cg, g->b_rs)), q->p0));
    LLVMValueRef blocks = LLVMBuildSDiv(cg->b, q->len, cg_i64(cg, lanes), "");
    CgLoop cb = cg_loop_begin(cg, cg_i64(cg, 0), blocks, "pack_block");
    transpose_column_block(cg, src, g->b_rs, q->width, cg_mul(cg, cb.iv, cg_i64(cg, lanes)), (int)lanes, q->buf, k->W, lanes, false);
    cb.no_unroll = true;
    cg_loop_end(cg, &cb);
    LLVMValueRef last_col = LLVMBuildNSWSub(cg->b, q->width, cg_i64(cg, 1), "");
    CgLoop p = cg_loop_begin(cg, cg_mul(cg, blocks, cg_i64(cg, lanes)), q->len, "pack");
    for (int64_t jj = 0; jj < k->W; jj++) {
        LLVMValueRef j = cg_min_i64(cg, cg_i64(cg, jj), last_col);
        LLVMValueRef x = cg_load(cg, src, cg_add(cg, cg_mul(cg, j, cg_i64(cg, g->b_rs)), p.iv));
        cg_store(cg, x, q->buf, cg_add(cg, cg_mul(cg, p.iv, cg_i64(cg, k->W)), cg_i64(cg, jj)));
    }
    p.no_unroll = true;
    cg_loop_end(cg, &p);
}

/* buf[p*W + jj] = B(p0 + p, j0 + jj) for p < len, jj < W (B not transposed: whole vectors of its
 * rows). Past `width` the lanes hold zeros: the tiles compute them but never store them. */
static void packed_pack_body(Cg *cg, const PackedGemm *k, bool full, void *user) {
    const PackedPanel *q = user;
    const CgGemm *g = k->g;
    unsigned lanes = k->lanes;
    CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), q->len, "pack");
    LLVMValueRef row = cg_add(cg, q->p0, p.iv), to = cg_mul(cg, p.iv, cg_i64(cg, k->W));
    for (int v = 0; v < PACKED_NR; v++) {
        LLVMValueRef at = cg_add(cg, cg_mul(cg, row, cg_i64(cg, g->b_rs)), cg_add(cg, q->j0, cg_i64(cg, v * (int64_t)lanes)));
        LLVMValueRef value = full ? cg_vload_full(cg, g->b, at, lanes) : cg_vload_masked(cg, g->b, at, lanes, packed_mask(cg, k, q->width, v));
        cg_vstore_full(cg, value, q->buf, cg_add(cg, to, cg_i64(cg, v * (int64_t)lanes)));
    }
    cg_loop_end(cg, &p);
}

/* A transposed A (A(i,p) = a[i + p*a_cs]: a weight gradient's dy^T) read in place costs a tile
 * `len` scattered lines, a_cs*4 bytes apart, that crowd a few L1 sets and defeat the
 * prefetchers. The chunk's block is copied first, tile after tile, each tile's rows side by side
 * per p (buf[t*packed_a_stride + p*mr + r] = A(row0 + t*mr + r, p0 + p)): row p of a is read
 * once, in order, and a tile's broadcasts walk one contiguous strip. Whole vectors are stored
 * (lanes > mr): the lanes past mr land on the next p's slots, written after them, or on the
 * tile's padding. Rows past the chunk are zeros (computed, never stored). */
static int64_t packed_a_stride(const PackedGemm *k) { return k->kc * k->mr + k->lanes; }

static void packed_pack_a(Cg *cg, const PackedGemm *k, LLVMValueRef buf, LLVMValueRef row0, LLVMValueRef rows, LLVMValueRef p0,
                          LLVMValueRef len) {
    const CgGemm *g = k->g;
    LLVMValueRef MR = cg_i64(cg, k->mr), full_tiles = LLVMBuildSDiv(cg->b, rows, MR, "");
    LLVMValueRef rest = LLVMBuildSRem(cg->b, rows, MR, "");
    LLVMValueRef full_mask = cg_mask(cg, k->lanes, k->mr), rest_mask = cg_lanes_below(cg, rest, k->lanes);
    LLVMValueRef stride = cg_i64(cg, packed_a_stride(k));
    CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), len, "pack_a");
    LLVMValueRef src = cg_gep(cg, g->a, cg_add(cg, row0, cg_mul(cg, cg_add(cg, p0, p.iv), cg_i64(cg, g->a_cs))));
    LLVMValueRef to = cg_mul(cg, p.iv, MR);
    CgLoop t = cg_loop_begin(cg, cg_i64(cg, 0), full_tiles, "pack_a_tile");
    LLVMValueRef value = cg_vload_masked(cg, src, cg_mul(cg, t.iv, MR), k->lanes, full_mask);
    cg_vstore_full(cg, value, buf, cg_add(cg, cg_mul(cg, t.iv, stride), to));
    t.no_unroll = true;
    cg_loop_end(cg, &t);
    /* the chunk's last, partial tile (rows % mr of them): a masked load, the rest zeros */
    LLVMValueRef value_rest = cg_vload_masked(cg, src, cg_mul(cg, full_tiles, MR), k->lanes, rest_mask);
    cg_vstore_full(cg, value_rest, buf, cg_add(cg, cg_mul(cg, full_tiles, stride), to));
    p.no_unroll = true;
    cg_loop_end(cg, &p);
}

/* C(row, col ..) = the tile row's vector: at the last block scale, bias, activation first. */
static void packed_store(Cg *cg, const PackedGemm *k, LLVMValueRef row, LLVMValueRef col, LLVMValueRef value, LLVMValueRef mask,
                         LLVMValueRef bias, bool final) {
    const CgGemm *g = k->g;
    if (final) {
        if (g->scale != 1.0) value = cg_fmul(cg, value, cg_splat(cg, cg_const(cg, g->scale), k->lanes));
        if (bias) value = cg_fadd(cg, value, bias);
        if (g->bias && g->row_bias) value = cg_fadd(cg, value, cg_splat(cg, cg_load(cg, g->bias, row), k->lanes));
        if (g->act) value = cg_activation(cg, g->act->op, value);
    }
    LLVMValueRef at = cg_add(cg, cg_mul(cg, row, cg_i64(cg, g->c_rs)), col);
    if (mask) cg_vstore_masked(cg, value, g->c, at, mask);
    else cg_vstore_full(cg, value, g->c, at);
}

typedef struct PackedTile {
    const PackedPanel *panel;
    LLVMValueRef i0, rows;  /* the tile's first row and its rows (1..mr) */
    LLVMValueRef *acc;      /* [mr][PACKED_NR] accumulator variables */
    bool final;
} PackedTile;

/* The tile's stores, rows past `rows` skipped. */
static void packed_tile_stores(Cg *cg, const PackedGemm *k, bool full, void *user) {
    const PackedTile *t = user;
    const PackedPanel *q = t->panel;
    LLVMTypeRef vec = LLVMVectorType(cg->elem, k->lanes);
    LLVMValueRef masks[PACKED_NR], bias[PACKED_NR], cols[PACKED_NR];
    for (int v = 0; v < PACKED_NR; v++) {
        cols[v] = cg_add(cg, q->j0, cg_i64(cg, v * (int64_t)k->lanes));
        masks[v] = full ? NULL : packed_mask(cg, k, q->width, v);
        bias[v] = NULL;
        if (t->final && k->g->bias && !k->g->row_bias)
            bias[v] = full ? cg_vload_full(cg, k->g->bias, cols[v], k->lanes) : cg_vload_masked(cg, k->g->bias, cols[v], k->lanes, masks[v]);
    }
    for (int r = 0; r < k->mr; r++) {
        LLVMBasicBlockRef store_bb = NULL, next_bb = NULL;
        if (r > 0) { /* row 0 always exists */
            store_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "tile_row");
            next_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "tile_next");
            LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, cg_i64(cg, r), t->rows, ""), store_bb, next_bb);
            LLVMPositionBuilderAtEnd(cg->b, store_bb);
        }
        LLVMValueRef row = cg_add(cg, t->i0, cg_i64(cg, r));
        for (int v = 0; v < PACKED_NR; v++)
            packed_store(cg, k, row, cols[v], LLVMBuildLoad2(cg->b, vec, t->acc[r * PACKED_NR + v], ""), masks[v], bias[v], t->final);
        if (r > 0) {
            LLVMBuildBr(cg->b, next_bb);
            LLVMPositionBuilderAtEnd(cg->b, next_bb);
        }
    }
}

/* acc = C's tile (rows past `rows` read the last row again: their sums are never stored). */
static void packed_tile_loads(Cg *cg, const PackedGemm *k, bool full, void *user) {
    const PackedTile *t = user;
    const PackedPanel *q = t->panel;
    LLVMValueRef last = LLVMBuildNSWSub(cg->b, t->rows, cg_i64(cg, 1), "");
    for (int r = 0; r < k->mr; r++) {
        LLVMValueRef row = cg_add(cg, t->i0, r ? cg_min_i64(cg, cg_i64(cg, r), last) : cg_i64(cg, 0));
        for (int v = 0; v < PACKED_NR; v++) {
            LLVMValueRef at = cg_add(cg, cg_mul(cg, row, cg_i64(cg, k->g->c_rs)), cg_add(cg, q->j0, cg_i64(cg, v * (int64_t)k->lanes)));
            LLVMValueRef value = full ? cg_vload_full(cg, k->g->c, at, k->lanes)
                                      : cg_vload_masked(cg, k->g->c, at, k->lanes, packed_mask(cg, k, q->width, v));
            LLVMBuildStore(cg->b, value, t->acc[r * PACKED_NR + v]);
        }
    }
}

static void packed_tile_store_all(Cg *cg, const PackedGemm *k, bool final, void *user) {
    PackedTile t = *(const PackedTile *)user;
    t.final = final;
    packed_either(cg, k, t.panel->full, packed_tile_stores, &t);
}

/* Asks for the next tile's C (rows i0 + mr ..) while this one computes: a later block loads it
 * into the accumulators before its first multiply-add, and a long reduction's C (a weight
 * gradient's, kc blocks of the batch rows) has left the cache between two blocks. A prefetch
 * never faults, so the rows past M need no test. */
/* A data prefetch of base[index] into all cache levels, for writing or for reading. */
static void packed_prefetch(Cg *cg, LLVMValueRef base, LLVMValueRef index, bool write) {
    LLVMTypeRef types[1] = {cg->ptr};
    LLVMValueRef args[4] = {cg_gep(cg, base, index), LLVMConstInt(cg->i32, write, 0), LLVMConstInt(cg->i32, 3, 0),
                            LLVMConstInt(cg->i32, 1, 0)};
    call_intrinsic(cg, "llvm.prefetch", types, 1, args, 4);
}

static void packed_prefetch_next(Cg *cg, const PackedGemm *k, const PackedPanel *q, LLVMValueRef i0) {
    for (int r = 0; r < k->mr; r++)
        for (int v = 0; v < PACKED_NR; v++) {
            LLVMValueRef row = cg_add(cg, i0, cg_i64(cg, k->mr + r));
            packed_prefetch(cg, k->g->c, cg_add(cg, cg_mul(cg, row, cg_i64(cg, k->g->c_rs)), cg_add(cg, q->j0, cg_i64(cg, v * (int64_t)k->lanes))),
                            true);
        }
}

/* One tile: rows [i0, i0 + rows) (rows <= mr), the panel's columns, reduction rows [p0, p0+len)
 * from the packed buffer. init: start from C's tile instead of 0; final: the last block. */
static void packed_tile(Cg *cg, const PackedGemm *k, const PackedPanel *q, LLVMValueRef i0, LLVMValueRef rows, LLVMValueRef a_tile,
                        LLVMValueRef init, LLVMValueRef final) {
    const CgGemm *g = k->g;
    unsigned lanes = k->lanes;
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    LLVMValueRef acc[12 * PACKED_NR];
    for (int i = 0; i < k->mr * PACKED_NR; i++) {
        acc[i] = cg_var(cg, vec, "acc");
        LLVMBuildStore(cg->b, LLVMConstNull(vec), acc[i]);
    }
    PackedTile t = {q, i0, rows, acc, false};
    LLVMBasicBlockRef load_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "c_tile");
    LLVMBasicBlockRef go_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "tile");
    LLVMBuildCondBr(cg->b, init, load_bb, go_bb);
    LLVMPositionBuilderAtEnd(cg->b, load_bb);
    packed_either(cg, k, q->full, packed_tile_loads, &t);
    LLVMBuildBr(cg->b, go_bb);
    LLVMPositionBuilderAtEnd(cg->b, go_bb);
    packed_prefetch_next(cg, k, q, i0);

    /* rows past `rows` read the tile's last row of A again (valid memory; never stored); a packed
     * A (a_tile) has its rows side by side at every p */
    LLVMValueRef a_row[12], last = LLVMBuildNSWSub(cg->b, rows, cg_i64(cg, 1), "");
    int64_t a_cs = a_tile ? k->mr : g->a_cs;
    for (int r = 0; r < k->mr; r++) {
        if (a_tile) {
            a_row[r] = cg_gep(cg, a_tile, cg_i64(cg, r));
            continue;
        }
        LLVMValueRef row = cg_add(cg, i0, r ? cg_min_i64(cg, cg_i64(cg, r), last) : cg_i64(cg, 0));
        a_row[r] = cg_gep(cg, g->a, cg_add(cg, cg_mul(cg, row, cg_i64(cg, g->a_rs)), cg_mul(cg, q->p0, cg_i64(cg, g->a_cs))));
    }
    CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), q->len, "p");
    LLVMValueRef bv[PACKED_NR], b_at = cg_mul(cg, p.iv, cg_i64(cg, k->W)), a_col = cg_mul(cg, p.iv, cg_i64(cg, a_cs));
    for (int v = 0; v < PACKED_NR; v++) bv[v] = cg_vload_full(cg, q->buf, cg_add(cg, b_at, cg_i64(cg, v * (int64_t)lanes)), lanes);
    if (!g->b_transposed) /* the next panel's row p (its columns follow this one's): in cache when it is packed */
        for (int v = 0; v < PACKED_NR; v++)
            packed_prefetch(cg, g->b, cg_add(cg, cg_mul(cg, cg_add(cg, q->p0, p.iv), cg_i64(cg, g->b_rs)),
                                             cg_add(cg, q->j0, cg_i64(cg, k->W + v * (int64_t)lanes))), false);
    for (int r = 0; r < k->mr; r++) {
        LLVMValueRef a = cg_splat(cg, cg_load(cg, a_row[r], a_col), lanes);
        for (int v = 0; v < PACKED_NR; v++) {
            LLVMValueRef old = LLVMBuildLoad2(cg->b, vec, acc[r * PACKED_NR + v], "");
            LLVMBuildStore(cg->b, gemm_fma(cg, old, a, bv[v]), acc[r * PACKED_NR + v]);
        }
    }
    p.no_unroll = true;
    cg_loop_end(cg, &p);
    if (LLVMIsAConstantInt(final)) packed_tile_store_all(cg, k, LLVMConstIntGetZExtValue(final), &t);
    else packed_branch(cg, k, final, packed_tile_store_all, &t);
}

/* The task body over (row chunk, panel group) pairs [begin, end), chunk-major: for each kc block
 * (outside, so the chunk's block of A stays in L2 while the group's panels pass), each panel,
 * packed, then every tile of the chunk's rows against it. values: c, a, b, bias, M, P, and the kc
 * blocks [first, end) to run (all, or one: packed_gemm) */
static void packed_task(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    PackedGemm k = *(const PackedGemm *)user;
    CgGemm inner = *k.g;
    inner.c = v[0];
    inner.a = v[1];
    inner.b = v[2];
    inner.bias = k.g->bias ? v[3] : NULL;
    if (!LLVMIsAConstantInt(inner.M)) inner.M = v[4];
    if (!LLVMIsAConstantInt(inner.P)) inner.P = v[5];
    k.g = &inner;
    PackedPanel q = {.buf = packed_buffer(cg, "panel", PACKED_PANEL_BYTES / packed_elem_bytes(cg))}; /* kc x W at most */
    /* mc / mr tiles and the one a partial last tile's zeros may land in */
    LLVMValueRef a_block = k.pack_a ? packed_buffer(cg, "a_block", (k.mc / k.mr + 1) * packed_a_stride(&k)) : NULL;
    LLVMValueRef mc = packed_chunk_rows(cg, &k, inner.M);
    LLVMValueRef per_group = packed_per_group(cg, &k, ceil_div(cg, inner.M, mc)), groups = packed_groups(cg, &k, per_group);
    LLVMValueRef KC = cg_i64(cg, k.kc), MR = cg_i64(cg, k.mr), W = cg_i64(cg, k.W);
    LLVMValueRef blocks = packed_blocks(cg, &k, inner.P);
    LLVMValueRef final_block = LLVMBuildNSWSub(cg->b, blocks, cg_i64(cg, 1), "");
    LLVMValueRef fold = LLVMConstInt(cg->i1, k.fold_accumulate, 0);

    CgLoop t = cg_loop_begin(cg, begin, end, "task");
    LLVMValueRef chunk = LLVMBuildSDiv(cg->b, t.iv, groups, ""), group = LLVMBuildSRem(cg->b, t.iv, groups, "");
    LLVMValueRef row0 = cg_mul(cg, chunk, mc);
    LLVMValueRef rows = cg_min_i64(cg, LLVMBuildNSWSub(cg->b, inner.M, row0, ""), mc);
    LLVMValueRef first = cg_mul(cg, group, per_group), last = cg_min_i64(cg, cg_add(cg, first, per_group), cg_i64(cg, k.panels));
    CgLoop b = cg_loop_begin(cg, v[6], v[7], "kblock");
    q.p0 = cg_mul(cg, b.iv, KC);
    q.len = cg_min_i64(cg, LLVMBuildNSWSub(cg->b, inner.P, q.p0, ""), KC);
    LLVMValueRef init = LLVMBuildOr(cg->b, fold, LLVMBuildICmp(cg->b, LLVMIntSGT, b.iv, cg_i64(cg, 0), ""), "");
    LLVMValueRef final = LLVMIsAConstantInt(blocks) && LLVMConstIntGetSExtValue(blocks) == 1
                             ? LLVMConstInt(cg->i1, 1, 0)
                             : LLVMBuildICmp(cg->b, LLVMIntEQ, b.iv, final_block, "");
    if (a_block) packed_pack_a(cg, &k, a_block, row0, rows, q.p0, q.len);
    CgLoop j = cg_loop_begin(cg, first, last, "panel");
    q.j0 = cg_mul(cg, j.iv, W);
    q.width = cg_min_i64(cg, LLVMBuildNSWSub(cg->b, cg_i64(cg, inner.J), q.j0, ""), W);
    q.full = LLVMBuildICmp(cg->b, LLVMIntEQ, q.width, W, "");
    if (inner.b_transposed) packed_pack_transposed(cg, &k, &q);
    else packed_either(cg, &k, q.full, packed_pack_body, &q);
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), ceil_div(cg, rows, MR), "tile");
    LLVMValueRef i0 = cg_add(cg, row0, cg_mul(cg, i.iv, MR));
    LLVMBasicBlockRef skip_bb = NULL;
    if (inner.lower) { /* a tile wholly above the diagonal: j0 > its last row */
        LLVMBasicBlockRef tile_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "below_diagonal");
        skip_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "above_diagonal");
        LLVMValueRef needed = LLVMBuildICmp(cg->b, LLVMIntSLT, q.j0, cg_add(cg, i0, MR), "");
        LLVMBuildCondBr(cg->b, needed, tile_bb, skip_bb);
        LLVMPositionBuilderAtEnd(cg->b, tile_bb);
    }
    LLVMValueRef a_tile = a_block ? cg_gep(cg, a_block, cg_mul(cg, i.iv, cg_i64(cg, packed_a_stride(&k)))) : NULL;
    packed_tile(cg, &k, &q, i0, cg_min_i64(cg, LLVMBuildNSWSub(cg->b, cg_add(cg, row0, rows), i0, ""), MR), a_tile, init, final);
    if (skip_bb) {
        LLVMBuildBr(cg->b, skip_bb);
        LLVMPositionBuilderAtEnd(cg->b, skip_bb);
    }
    i.no_unroll = true;
    cg_loop_end(cg, &i);
    j.no_unroll = true;
    cg_loop_end(cg, &j);
    b.no_unroll = true;
    cg_loop_end(cg, &b);
    t.no_unroll = true;
    cg_loop_end(cg, &t);
}

/* Whether the packed path can compute g: C += s A B (s != 1) cannot start from C, a transposed B
 * only where the caller allows its other summation order (pack_transposed), and a B that already
 * is one narrow contiguous panel (the recurrent kernels pack their own) needs no copy. */
static bool packed_fits(const Cg *cg, const CgGemm *g) {
    if (cg->f64) return false; /* the float64 twin serves gradcheck on 3 examples: keep it small */
    if (g->accumulate && g->scale != 1.0) return false;
    if (g->b_transposed && !g->pack_transposed) return false;
    return !(g->b_rs == g->J && g->J <= packed_width(cg) && !g->b_transposed);
}

/* A reduction longer than this over a transposed A (a weight gradient's batch rows) runs its kc
 * blocks one after another, each over all tasks: every task would otherwise stream its strip of
 * A for the whole reduction once per panel group, while block by block each block of A is read
 * from memory once and the group tasks find it in cache. */
enum { PACKED_LONG_P = 512 };

/* A packed-A product (a weight gradient: M the layer's units, known) copies A once per panel
 * group and B once per row chunk, per kc block: of the splits into chunks of tc tiles and groups
 * of pg panels that give at least PACKED_A_TASKS tasks (where there are that many tiles x
 * panels), the one that copies the fewest elements. The old split (one chunk of every row, a
 * group per panel) copied nothing but read dy^T in place; the text GPT's first MLP dW ran at
 * 88-96 GFLOP/s on 2 cores, then 175-200. 4 tasks (two per thread on the 2-core machines we
 * measure on) rather than 8: each task copies its own panels of B, and with 8 the text GPT's
 * weight gradients took 10.7-15.6 ms per step against 9.7-10.2 with 4 (interleaved runs on the
 * Zen 5; the split changes no bit: each element is one chain either way). */
enum { PACKED_A_TASKS = 4 };
static void packed_a_split(PackedGemm *k, int64_t M) {
    int64_t tiles = (M + k->mr - 1) / k->mr, best = -1;
    int64_t want = tiles * k->panels < PACKED_A_TASKS ? tiles * k->panels : PACKED_A_TASKS;
    for (int64_t tc = 1; tc <= tiles; tc++)
        for (int64_t pg = 1; pg <= k->panels; pg++) {
            int64_t chunks = (tiles + tc - 1) / tc, groups = (k->panels + pg - 1) / pg;
            if (chunks * groups < want) continue;
            /* A: M rows per group; B: J columns per chunk (per reduction row) */
            int64_t traffic = groups * M + chunks * k->panels * k->W;
            if (best < 0 || traffic < best) best = traffic, k->mc = tc * k->mr, k->per_group = pg;
        }
}

static void packed_gemm(Cg *cg, const CgGemm *g, int64_t work) {
    PackedGemm k = {.g = g, .lanes = (unsigned)cg->vector_bytes / (cg->f64 ? 8u : 4u), .mr = packed_mr(cg), .W = packed_width(cg)};
    k.kc = PACKED_PANEL_BYTES / (k.W * packed_elem_bytes(cg));
    /* a known reduction in equal blocks (288 = 2 x 144, not 256 + 32: a short block pays the
     * panel copy and C's round trip for little work) */
    if (LLVMIsAConstantInt(g->P) && LLVMConstIntGetSExtValue(g->P) > k.kc) {
        int64_t P = LLVMConstIntGetSExtValue(g->P), n = (P + k.kc - 1) / k.kc;
        k.kc = (P + n - 1) / n;
    }
    int64_t depth = cg_const_or(g->P, k.kc);
    if (depth > k.kc) depth = k.kc;
    /* C += A B starts from C (the blocks' partial sums go through C anyway) */
    CgGemm eff = *g;
    if (g->accumulate) eff.accumulate = false, k.fold_accumulate = true;
    k.g = &eff;
    k.mc = PACKED_CHUNK_BYTES / (depth * packed_elem_bytes(cg)) / k.mr * k.mr;
    if (k.mc < k.mr) k.mc = k.mr;
    k.panels = (g->J + k.W - 1) / k.W;
    bool serial = g->serial || work < GEMM_PARALLEL_MIN_FMAS;
    k.pack_a = !serial && g->a_rs == 1 && g->a_cs != 1 && cg_const_or(g->P, PACKED_LONG_P + 1) > PACKED_LONG_P;
    if (k.pack_a && LLVMIsAConstantInt(g->M)) packed_a_split(&k, LLVMConstIntGetSExtValue(g->M));
    k.spread = !serial && !k.per_group;
    LLVMValueRef chunks = ceil_div(cg, g->M, packed_chunk_rows(cg, &k, g->M));
    LLVMValueRef tasks = cg_mul(cg, chunks, packed_groups(cg, &k, packed_per_group(cg, &k, chunks)));
    LLVMValueRef blocks = packed_blocks(cg, &k, g->P);
    bool by_block = g->a_cs != 1 && !serial && cg_const_or(g->P, PACKED_LONG_P + 1) > PACKED_LONG_P;
    LLVMValueRef values[8] = {g->c, g->a, g->b, g->bias ? g->bias : LLVMConstNull(cg->ptr), g->M, g->P, cg_i64(cg, 0), blocks};
    if (!by_block) {
        cg_parallel_for(cg, tasks, values, 8, serial, packed_task, &k);
        return;
    }
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), blocks, "kblocks");
    values[6] = b.iv;
    values[7] = cg_add(cg, b.iv, cg_i64(cg, 1));
    cg_parallel_for(cg, tasks, values, 8, false, packed_task, &k);
    b.no_unroll = true;
    cg_loop_end(cg, &b);
}

/* The direct path: row blocks of GEMM_MR rows over the pool, B read where it lies. */
static void direct_gemm(Cg *cg, const CgGemm *g, int64_t work) {
    unsigned lanes = (unsigned)cg->vector_bytes / (cg->f64 ? 8u : 4u);
    LLVMValueRef blocks = LLVMBuildSDiv(cg->b, cg_add(cg, g->M, cg_i64(cg, GEMM_MR - 1)), cg_i64(cg, GEMM_MR), "");
    LLVMValueRef values[6] = {g->c, g->a, g->b, g->bias ? g->bias : LLVMConstNull(cg->ptr), g->M, g->P};
    GemmTask task = {g, lanes};
    cg_parallel_for(cg, blocks, values, 6, g->serial || work < GEMM_PARALLEL_MIN_FMAS, cg_gemm_task, &task);
}

/* The packed path where B is read by enough row tiles to repay its copy (at least two tiles of
 * rows), the direct path otherwise. A runtime M (the batch) decides at run time: both paths are
 * emitted. */
void cg_gemm(Cg *cg, const CgGemm *g) {
    /* A runtime M is the batch (times positions): assume 64 rows when estimating the work. */
    int64_t work = cg_const_or(g->M, 64) * cg_const_or(g->P, 64) * g->J;
    int64_t min_rows = 2 * packed_mr(cg);
    bool packed = packed_fits(cg, g) && !g->b_in_place;
    LLVMValueRef when = NULL; /* the runtime condition for the packed path, NULL: always */
    if (packed && LLVMIsAConstantInt(g->M)) packed = LLVMConstIntGetSExtValue(g->M) >= min_rows;
    else if (packed) when = LLVMBuildICmp(cg->b, LLVMIntSGE, g->M, cg_i64(cg, min_rows), "");
    if (!packed) {
        direct_gemm(cg, g, work);
        return;
    }
    if (!when) {
        packed_gemm(cg, g, work);
        return;
    }
    LLVMBasicBlockRef packed_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "gemm_packed");
    LLVMBasicBlockRef direct_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "gemm_direct");
    LLVMBasicBlockRef done_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "gemm_done");
    LLVMBuildCondBr(cg->b, when, packed_bb, direct_bb);
    LLVMPositionBuilderAtEnd(cg->b, packed_bb);
    packed_gemm(cg, g, work);
    LLVMBuildBr(cg->b, done_bb);
    LLVMPositionBuilderAtEnd(cg->b, direct_bb);
    direct_gemm(cg, g, work);
    LLVMBuildBr(cg->b, done_bb);
    LLVMPositionBuilderAtEnd(cg->b, done_bb);
}
