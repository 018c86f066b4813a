/* cg_norm.c — batch normalization and embedding kernels.
 *
 * Legend: the input is [n, C, HW] (channels first; a [k] input is C = k, HW = 1), N = n * HW
 * values per channel, xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps), var biased.
 *   batchnorm (training)  (y, x, w, b, running_mean, running_var)
 *              batch statistics; y = xhat w + b; running = (1-m) running + m stat (unbiased var)
 *   batchnorm (inference) (y, x, w, b, running_mean, running_var)  with the running statistics
 *   batchnorm_dx (dx, dy, x, w)   dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w
 *   batchnorm_dw (dw, dy, x)      dw[c] = scale * sum dy xhat
 *   batchnorm_db (db, dy)         db[c] = scale * sum dy
 * Statistics are recomputed from x in the backward rules rather than stored. In training they are
 * those of the global batch (NnrtShard): N counts every rank's examples, and the per-channel sums
 * (sum x, sum (x - mean)^2, and dx's sum g and sum g xhat) are summed over the ranks before use. */

#include "cg.h"

typedef struct ChannelLoop {
    CgLoop b, j;
    LLVMValueRef index; /* of element (b, c, j) */
} ChannelLoop;

/* for b < n, j < HW: the elements of channel c */
static ChannelLoop channel_begin(Cg *cg, LLVMValueRef c, LLVMValueRef n, int64_t C, int64_t HW) {
    ChannelLoop l;
    l.b = cg_loop_begin(cg, cg_i64(cg, 0), n, "b");
    LLVMValueRef row = cg_add(cg, cg_mul(cg, l.b.iv, cg_i64(cg, C * HW)), cg_mul(cg, c, cg_i64(cg, HW)));
    l.j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, HW), "j");
    l.index = cg_add(cg, row, l.j.iv);
    return l;
}

static void channel_end(Cg *cg, ChannelLoop *l) {
    cg_loop_end(cg, &l->j);
    cg_loop_end(cg, &l->b);
}

static LLVMValueRef load_var(Cg *cg, LLVMValueRef var) { return LLVMBuildLoad2(cg->b, cg->elem, var, ""); }
static void add_to(Cg *cg, LLVMValueRef var, LLVMValueRef v) { LLVMBuildStore(cg->b, cg_fadd(cg, load_var(cg, var), v), var); }

/* Per-channel sums live in double arrays [C] so that they can be summed over the ranks
 * (cg_allreduce_sum) before use; in a single process the round trip through double is exact. */
static LLVMValueRef sums_array(Cg *cg, int64_t count, const char *name) { return cg_var(cg, LLVMArrayType2(cg->f64_type, (uint64_t)count), name); }
static LLVMValueRef sums_at(Cg *cg, LLVMValueRef arr, LLVMValueRef i) { return LLVMBuildInBoundsGEP2(cg->b, cg->f64_type, arr, &i, 1, ""); }
static void sums_store(Cg *cg, LLVMValueRef arr, LLVMValueRef i, LLVMValueRef v) { LLVMBuildStore(cg->b, cg_to_double(cg, v), sums_at(cg, arr, i)); }
static LLVMValueRef sums_load(Cg *cg, LLVMValueRef arr, LLVMValueRef i) {
    LLVMValueRef d = LLVMBuildLoad2(cg->b, cg->f64_type, sums_at(cg, arr, i), "");
    return cg->f64 ? d : LLVMBuildFPTrunc(cg->b, d, cg->elem, "");
}

/* Batch statistics of every channel over the global batch, two passes: sum[c] = sum x, then
 * sq[c] = sum (x - mean)^2, each summed over the ranks before use (see channel_stats). */
static void batch_sums(Cg *cg, LLVMValueRef x, LLVMValueRef n, int64_t C, int64_t HW, LLVMValueRef acc, LLVMValueRef inv_count,
                       LLVMValueRef sum, LLVMValueRef sq) {
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
    LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
    ChannelLoop l = channel_begin(cg, c.iv, n, C, HW);
    add_to(cg, acc, cg_load(cg, x, l.index));
    channel_end(cg, &l);
    sums_store(cg, sum, c.iv, load_var(cg, acc));
    cg_loop_end(cg, &c);
    cg_allreduce_sum(cg, sum, C);
    CgLoop c2 = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
    LLVMValueRef mean = cg_fmul(cg, sums_load(cg, sum, c2.iv), inv_count);
    LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
    ChannelLoop v = channel_begin(cg, c2.iv, n, C, HW);
    LLVMValueRef d = cg_fsub(cg, cg_load(cg, x, v.index), mean);
    add_to(cg, acc, cg_fmul(cg, d, d));
    channel_end(cg, &v);
    sums_store(cg, sq, c2.iv, load_var(cg, acc));
    cg_loop_end(cg, &c2);
    cg_allreduce_sum(cg, sq, C);
}

/* Mean, biased variance and rstd of channel c from batch_sums' arrays. */
static void channel_stats(Cg *cg, LLVMValueRef sum, LLVMValueRef sq, LLVMValueRef c, double eps, LLVMValueRef inv_count,
                          LLVMValueRef *mean, LLVMValueRef *var, LLVMValueRef *rstd) {
    *mean = cg_fmul(cg, sums_load(cg, sum, c), inv_count);
    *var = cg_fmul(cg, sums_load(cg, sq, c), inv_count);
    *rstd = cg_fdiv(cg, cg_const(cg, 1), cg_math(cg, "llvm.sqrt", cg_fadd(cg, *var, cg_const(cg, eps))));
}

LLVMValueRef cg_batchnorm_kernel(Cg *cg, const Node *node) {
    const Node *fwd = graph_forward_of(cg->g, node);
    bool inference = node->op == OP_BATCHNORM && !cg->training;
    const Shape *shape = &graph_node(cg->g, fwd->inputs[0])->shape;
    int64_t C = shape->dims[0], HW = shape_size(shape) / C;
    double eps = fwd->alpha, m = fwd->momentum;
    int ptrs = node->op == OP_BATCHNORM ? 6 : node->op == OP_BATCHNORM_DX ? 4 : node->op == OP_BATCHNORM_DW ? 3 : 2;
    LLVMValueRef fn = cg_kernel_begin(cg, node, ptrs);
    LLVMValueRef p[6];
    for (int i = 0; i < ptrs; i++) p[i] = LLVMGetParam(fn, (unsigned)i);
    LLVMValueRef n = LLVMGetParam(fn, (unsigned)ptrs);
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc"), acc2 = cg_var(cg, cg->elem, "acc2");
    /* statistics are over the global batch: total examples times HW values per channel */
    LLVMValueRef count = cg_mul(cg, cg_batch_total(cg, n), cg_i64(cg, HW));
    LLVMValueRef inv_count = cg_fdiv(cg, cg_const(cg, 1), cg_n_as_elem(cg, count));
    LLVMValueRef sum = NULL, sq = NULL;
    if (!inference && node->op != OP_BATCHNORM_DB) {
        sum = sums_array(cg, C, "sum");
        sq = sums_array(cg, C, "sq");
        batch_sums(cg, node->op == OP_BATCHNORM ? p[1] : p[2], n, C, HW, acc, inv_count, sum, sq);
    }
    LLVMValueRef g_sums = NULL; /* batchnorm_dx: sum g and sum g xhat per channel, [2C] */
    if (node->op == OP_BATCHNORM_DX) {
        g_sums = sums_array(cg, 2 * C, "g_sums");
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
        LLVMValueRef mean, var, rstd;
        channel_stats(cg, sum, sq, c.iv, eps, inv_count, &mean, &var, &rstd);
        LLVMValueRef w = cg_load(cg, p[3], c.iv);
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc2);
        ChannelLoop s = channel_begin(cg, c.iv, n, C, HW);
        LLVMValueRef g = cg_fmul(cg, cg_load(cg, p[1], s.index), w);
        add_to(cg, acc, g);
        add_to(cg, acc2, cg_fmul(cg, g, cg_fmul(cg, cg_fsub(cg, cg_load(cg, p[2], s.index), mean), rstd)));
        channel_end(cg, &s);
        sums_store(cg, g_sums, c.iv, load_var(cg, acc));
        sums_store(cg, g_sums, cg_add(cg, c.iv, cg_i64(cg, C)), load_var(cg, acc2));
        cg_loop_end(cg, &c);
        cg_allreduce_sum(cg, g_sums, 2 * C);
    }
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
    LLVMValueRef mean = NULL, var = NULL, rstd = NULL;
    if (sum) channel_stats(cg, sum, sq, c.iv, eps, inv_count, &mean, &var, &rstd);
    switch (node->op) {
    case OP_BATCHNORM: { /* (y, x, w, b, running_mean, running_var) */
        if (inference) {
            mean = cg_load(cg, p[4], c.iv);
            rstd = cg_fdiv(cg, cg_const(cg, 1), cg_math(cg, "llvm.sqrt", cg_fadd(cg, cg_load(cg, p[5], c.iv), cg_const(cg, eps))));
        } else {
            /* running statistics, PyTorch's convention: the unbiased variance (N/(N-1)) */
            LLVMValueRef nf = cg_n_as_elem(cg, count);
            LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSGT, count, cg_i64(cg, 1), "");
            LLVMValueRef unbiased = LLVMBuildSelect(cg->b, more, cg_fdiv(cg, cg_fmul(cg, var, nf), cg_fsub(cg, nf, cg_const(cg, 1))), var, "");
            LLVMValueRef keep = cg_const(cg, 1 - m), take = cg_const(cg, m);
            cg_store(cg, cg_fadd(cg, cg_fmul(cg, keep, cg_load(cg, p[4], c.iv)), cg_fmul(cg, take, mean)), p[4], c.iv);
            cg_store(cg, cg_fadd(cg, cg_fmul(cg, keep, cg_load(cg, p[5], c.iv)), cg_fmul(cg, take, unbiased)), p[5], c.iv);
        }
        LLVMValueRef w = cg_load(cg, p[2], c.iv), b = cg_load(cg, p[3], c.iv);
        ChannelLoop l = channel_begin(cg, c.iv, n, C, HW);
        LLVMValueRef xhat = cg_fmul(cg, cg_fsub(cg, cg_load(cg, p[1], l.index), mean), rstd);
        cg_store(cg, cg_fadd(cg, cg_fmul(cg, xhat, w), b), p[0], l.index);
        channel_end(cg, &l);
        break;
    }
    case OP_BATCHNORM_DX: { /* (dx, dy, x, w) */
        LLVMValueRef w = cg_load(cg, p[3], c.iv);
        LLVMValueRef mean_g = cg_fmul(cg, sums_load(cg, g_sums, c.iv), inv_count);
        LLVMValueRef mean_gx = cg_fmul(cg, sums_load(cg, g_sums, cg_add(cg, c.iv, cg_i64(cg, C))), inv_count);
        ChannelLoop l = channel_begin(cg, c.iv, n, C, HW);
        LLVMValueRef g2 = cg_fmul(cg, cg_load(cg, p[1], l.index), w);
        LLVMValueRef xhat = cg_fmul(cg, cg_fsub(cg, cg_load(cg, p[2], l.index), mean), rstd);
        cg_store(cg, cg_fmul(cg, rstd, cg_fsub(cg, cg_fsub(cg, g2, mean_g), cg_fmul(cg, xhat, mean_gx))), p[0], l.index);
        channel_end(cg, &l);
        break;
    }
    case OP_BATCHNORM_DW: { /* (dw, dy, x): this rank's share; the ranks' shares are summed with the gradients */
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc2);
        ChannelLoop l = channel_begin(cg, c.iv, n, C, HW);
        add_to(cg, acc2, cg_fmul(cg, cg_load(cg, p[1], l.index), cg_fmul(cg, cg_fsub(cg, cg_load(cg, p[2], l.index), mean), rstd)));
        channel_end(cg, &l);
        cg_store(cg, cg_fmul(cg, load_var(cg, acc2), cg_const(cg, node->scale)), p[0], c.iv);
        break;
    }
    default: { /* batchnorm_db (db, dy) */
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
        ChannelLoop l = channel_begin(cg, c.iv, n, C, HW);
        add_to(cg, acc, cg_load(cg, p[1], l.index));
        channel_end(cg, &l);
        cg_store(cg, cg_fmul(cg, load_var(cg, acc), cg_const(cg, node->scale)), p[0], c.iv);
        break;
    }
    }
    cg_loop_end(cg, &c);
    cg_kernel_end(cg);
    return fn;
}

/* embedding (y[n,T,D], ids[n,T], W[V,D]):  y[b,i,:] = W[id,:]
 * embedding_dw (dW[V,D], dy[n,T,D], ids):   dW[id,:] += scale * dy[b,i,:]  (zeroed first)
 * Ids arrive as exactly-representable floats (the ABI) and were range-checked by the runtime;
 * they are clamped anyway so a bad id can never address outside the table. */
LLVMValueRef cg_embedding_kernel(Cg *cg, const Node *node) {
    const Node *fwd = graph_forward_of(cg->g, node);
    int64_t T = graph_node(cg->g, fwd->inputs[0])->size, V = fwd->units, D = fwd->shape.dims[1];
    LLVMValueRef fn = cg_kernel_begin(cg, node, 3);
    LLVMValueRef out = LLVMGetParam(fn, 0), a = LLVMGetParam(fn, 1), b = LLVMGetParam(fn, 2), n = LLVMGetParam(fn, 3);
    LLVMValueRef ids = node->op == OP_EMBEDDING ? a : b, rows = node->op == OP_EMBEDDING ? b : a;
    if (node->op == OP_EMBEDDING_DW) {
        CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, V * D), "z");
        cg_store(cg, cg_const(cg, 0), out, z.iv);
        cg_loop_end(cg, &z);
    }
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, n, cg_i64(cg, T)), "i");
    LLVMValueRef id = LLVMBuildFPToSI(cg->b, cg_load(cg, ids, i.iv), cg->i64, "");
    id = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, id, cg_i64(cg, 0), ""), cg_i64(cg, 0), id, "");
    id = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, id, cg_i64(cg, V), ""), cg_i64(cg, V - 1), id, "");
    LLVMValueRef table_row = cg_mul(cg, id, cg_i64(cg, D)), seq_row = cg_mul(cg, i.iv, cg_i64(cg, D));
    CgLoop d = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, D), "d");
    if (node->op == OP_EMBEDDING) {
        cg_store(cg, cg_load(cg, rows, cg_add(cg, table_row, d.iv)), out, cg_add(cg, seq_row, d.iv));
    } else {
        LLVMValueRef at = cg_add(cg, table_row, d.iv);
        LLVMValueRef v = cg_load(cg, rows, cg_add(cg, seq_row, d.iv));
        if (node->scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, node->scale));
        cg_store(cg, cg_fadd(cg, cg_load(cg, out, at), v), out, at);
    }
    cg_loop_end(cg, &d);
    cg_loop_end(cg, &i);
    cg_kernel_end(cg);
    return fn;
}

/* concat (y, x0, ..., xk): y viewed as [n*outer, A, inner], input i fills A_i rows from its offset
 * concat_slice (dx, dy): the inverse copy for one input (offset along the axis in `stride`) */
LLVMValueRef cg_concat_kernel(Cg *cg, const Node *node) {
    const Node *whole = node->op == OP_CONCAT ? node : graph_node(cg->g, node->forward);
    int axis = whole->axis;
    int64_t outer = 1, inner = 1, A = whole->shape.dims[axis];
    for (int d = 0; d < axis; d++) outer *= whole->shape.dims[d];
    for (int d = axis + 1; d < whole->shape.rank; d++) inner *= whole->shape.dims[d];
    int parts = node->op == OP_CONCAT ? node->input_count : 1;
    LLVMValueRef fn = cg_kernel_begin(cg, node, 1 + parts);
    LLVMValueRef out = LLVMGetParam(fn, 0), n = LLVMGetParam(fn, (unsigned)(1 + parts));
    int64_t offset = node->op == OP_CONCAT ? 0 : node->stride;
    for (int k = 0; k < parts; k++) {
        const Node *part = node->op == OP_CONCAT ? graph_node(cg->g, node->inputs[k]) : node;
        int64_t a = part->shape.dims[axis], block = a * inner;
        LLVMValueRef src = LLVMGetParam(fn, (unsigned)(1 + k));
        CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, n, cg_i64(cg, outer)), "r");
        LLVMValueRef whole_at = cg_add(cg, cg_mul(cg, r.iv, cg_i64(cg, A * inner)), cg_i64(cg, offset * inner));
        LLVMValueRef part_at = cg_mul(cg, r.iv, cg_i64(cg, block));
        CgLoop e = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, block), "e");
        if (node->op == OP_CONCAT)
            cg_store(cg, cg_load(cg, src, cg_add(cg, part_at, e.iv)), out, cg_add(cg, whole_at, e.iv));
        else
            cg_store(cg, cg_load(cg, src, cg_add(cg, whole_at, e.iv)), out, cg_add(cg, part_at, e.iv));
        cg_loop_end(cg, &e);
        cg_loop_end(cg, &r);
        offset += a;
    }
    cg_kernel_end(cg);
    return fn;
}
