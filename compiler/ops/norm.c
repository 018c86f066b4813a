/* norm.c — batch and layer normalization: shape rules, backward rules, kernels, costs.
 *
 * batchnorm(momentum=0.1, eps=1e-5): per channel of [c,h,w]/[c,t], per feature of [k]; weight,
 *   bias and the running mean and variance (buffers) of size c. Batch statistics in training,
 *   running statistics in evaluation and inference.
 * layernorm(eps=1e-5): normalizes the last axis; weight (ones) and bias (zeros) of its size.
 *
 * Batchnorm kernels. Legend: the input is [n, C, HW] (channels first; a [k] input is C = k, HW = 1), N = n * HW
 * values per channel, xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps), var biased.
 *   batchnorm (training)  (y, x, w, b, running_mean, running_var)
 *              batch statistics; y = xhat w + b; running = (1-m) running + m stat (unbiased var)
 *   batchnorm (inference) (y, x, w, b, running_mean, running_var)  with the running statistics
 *   batchnorm_dx (dx, dy, x, w)   dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w
 *   batchnorm_dw (dw, dy, x)      dw[c] = scale * sum dy xhat
 *   batchnorm_db (db, dy)         db[c] = scale * sum dy
 * Layernorm kernels, over rows of L (the last axis; xhat = (x - mean) * rstd):
 *   layernorm               (y, x, w, b)   y = xhat w + b
 *   layernorm_dx            (dx, dy, x, w) dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w
 *   layernorm_dw            (dw, dy, x)    dw = scale * sum_rows dy xhat
 *   layernorm_db            (db, dy)       db = scale * sum_rows dy
 * Statistics are recomputed from x in the backward rules rather than stored. Batchnorm's training
 * statistics are those of the global batch (NnrtShard): N counts every rank's examples, and the
 * per-channel sums (sum x, sum (x - mean)^2, and dx's sum g and sum g xhat) are summed over the
 * ranks before use. Layernorm's are per example and need nothing of the kind. */

#include "cg.h"
#include "nnrt.h"
#include "onnx.h"
#include "ops.h"

/* ---------------------------------------------------------------- shape rules */

static const ArgSpec layernorm_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"eps", ARG_NUMBER, false, 1e-5, NULL}, SPEC_END};
static Value layernorm_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    if (!(b->values[1].number > 0)) {
        diag_error(s->diag, b->spans[1], "eps of layernorm must be positive, got %g", b->values[1].number);
        return value_error();
    }
    const char *layer = sema_layer_name(s, "layernorm", b);
    if (!layer) return value_error();
    int64_t d = x->shape.dims[x->shape.rank - 1];
    Node *n = graph_add(s->graph, OP_LAYERNORM, call->span, &x->id, 1, x->shape);
    n->layer = layer;
    n->eps = b->values[1].number;
    n->weight = graph_add_param(s->graph, arena_printf(s->arena, "%s.weight", layer), shape_make(1, &d), NNRT_INIT_ONES, d, d, n->id);
    n->bias = graph_add_param(s->graph, arena_printf(s->arena, "%s.bias", layer), shape_make(1, &d), NNRT_INIT_ZEROS, d, d, n->id);
    return tensor_value(n);
}

static const ArgSpec batchnorm_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"momentum", ARG_NUMBER, false, 0.1, NULL},
                                         {"eps", ARG_NUMBER, false, 1e-5, NULL}, SPEC_END};
static Value batchnorm_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    if (!(b->values[1].number >= 0 && b->values[1].number <= 1)) {
        diag_error(s->diag, b->spans[1], "momentum of batchnorm must be in [0, 1], got %g", b->values[1].number);
        return value_error();
    }
    if (!(b->values[2].number > 0)) {
        diag_error(s->diag, b->spans[2], "eps of batchnorm must be positive, got %g", b->values[2].number);
        return value_error();
    }
    const char *layer = sema_layer_name(s, "batchnorm", b);
    if (!layer) return value_error();
    int64_t c = x->shape.dims[0];
    Shape per_channel = shape_make(1, &c);
    Node *n = graph_add(s->graph, OP_BATCHNORM, call->span, &x->id, 1, x->shape);
    n->layer = layer;
    n->momentum = b->values[1].number;
    n->eps = b->values[2].number;
    n->weight = graph_add_param(s->graph, arena_printf(s->arena, "%s.weight", layer), per_channel, NNRT_INIT_ONES, c, c, n->id);
    n->bias = graph_add_param(s->graph, arena_printf(s->arena, "%s.bias", layer), per_channel, NNRT_INIT_ZEROS, c, c, n->id);
    n->running_mean = graph_add_param(s->graph, arena_printf(s->arena, "%s.running_mean", layer), per_channel, NNRT_INIT_ZEROS, c, c, n->id);
    n->running_var = graph_add_param(s->graph, arena_printf(s->arena, "%s.running_var", layer), per_channel, NNRT_INIT_ONES, c, c, n->id);
    graph_param(s->graph, n->running_mean)->trainable = false;
    graph_param(s->graph, n->running_var)->trainable = false;
    return tensor_value(n);
}

/* ---------------------------------------------------------------- backward rule */

/* Both norms: dw = sum dy xhat, db = sum dy, dx through the statistics. Every rule recomputes
 * the statistics from x instead of storing them (batchnorm: training-mode rules). */
static void norm_backward(Ad *ad, const Node *n, int dy) {
    const Node *x = graph_node(ad_graph(ad), n->inputs[0]);
    bool batch = n->op == OP_BATCHNORM;
    Node *dw = ad_node(ad, batch ? OP_BATCHNORM_DW : OP_LAYERNORM_DW, dy, x->id, (Shape){0}, n);
    dw->grad_param = n->weight;
    Node *db = ad_node(ad, batch ? OP_BATCHNORM_DB : OP_LAYERNORM_DB, dy, -1, (Shape){0}, n);
    db->grad_param = n->bias;
    if (x->needs_grad) {
        Node *dx = ad_node(ad, batch ? OP_BATCHNORM_DX : OP_LAYERNORM_DX, dy, x->id, x->shape, n);
        dx->weight = n->weight;
        ad_accumulate(ad, x->id, dx->id);
    }
}

/* ---------------------------------------------------------------- kernels */

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

static void add_to(Cg *cg, LLVMValueRef var, LLVMValueRef v) { LLVMBuildStore(cg->b, cg_fadd(cg, cg_load_var(cg, var), v), var); }

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
    sums_store(cg, sum, c.iv, cg_load_var(cg, acc));
    cg_loop_end(cg, &c);
    cg_allreduce_sum(cg, sum, C);
    CgLoop c2 = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
    LLVMValueRef mean = cg_fmul(cg, sums_load(cg, sum, c2.iv), inv_count);
    LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
    ChannelLoop v = channel_begin(cg, c2.iv, n, C, HW);
    LLVMValueRef d = cg_fsub(cg, cg_load(cg, x, v.index), mean);
    add_to(cg, acc, cg_fmul(cg, d, d));
    channel_end(cg, &v);
    sums_store(cg, sq, c2.iv, cg_load_var(cg, acc));
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

static LLVMValueRef batchnorm_kernel(Cg *cg, const Node *node) {
    const Node *fwd = graph_forward_of(cg->g, node);
    bool inference = node->op == OP_BATCHNORM && !cg->training;
    const Shape *shape = &graph_node(cg->g, fwd->inputs[0])->shape;
    int64_t C = shape->dims[0], HW = shape_size(shape) / C;
    double eps = fwd->eps, m = fwd->momentum;
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    /* batchnorm (y, x, w, b, running_mean, running_var); batchnorm_dx (dx, dy, x, w);
     * batchnorm_dw (dw, dy, x); batchnorm_db (db, dy) */
    LLVMValueRef out = cg_arg_out(cg), in0 = cg_arg_in(cg, 0), in1 = cg_arg_in(cg, 1), w_arg = cg_arg_weight(cg);
    LLVMValueRef x_arg = node->op == OP_BATCHNORM ? in0 : in1, dy_arg = in0;
    LLVMValueRef n = cg_arg_n(cg);
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc"), acc2 = cg_var(cg, cg->elem, "acc2");
    /* statistics are over the global batch: total examples times HW values per channel */
    LLVMValueRef count = cg_mul(cg, cg_batch_total(cg, n), cg_i64(cg, HW));
    LLVMValueRef inv_count = cg_fdiv(cg, cg_const(cg, 1), cg_n_as_elem(cg, count));
    LLVMValueRef sum = NULL, sq = NULL;
    if (!inference && node->op != OP_BATCHNORM_DB) {
        sum = sums_array(cg, C, "sum");
        sq = sums_array(cg, C, "sq");
        batch_sums(cg, x_arg, n, C, HW, acc, inv_count, sum, sq);
    }
    LLVMValueRef g_sums = NULL; /* batchnorm_dx: sum g and sum g xhat per channel, [2C] */
    if (node->op == OP_BATCHNORM_DX) {
        g_sums = sums_array(cg, 2 * C, "g_sums");
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
        LLVMValueRef mean, var, rstd;
        channel_stats(cg, sum, sq, c.iv, eps, inv_count, &mean, &var, &rstd);
        LLVMValueRef w = cg_load(cg, w_arg, c.iv);
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc2);
        ChannelLoop s = channel_begin(cg, c.iv, n, C, HW);
        LLVMValueRef g = cg_fmul(cg, cg_load(cg, dy_arg, s.index), w);
        add_to(cg, acc, g);
        add_to(cg, acc2, cg_fmul(cg, g, cg_fmul(cg, cg_fsub(cg, cg_load(cg, x_arg, s.index), mean), rstd)));
        channel_end(cg, &s);
        sums_store(cg, g_sums, c.iv, cg_load_var(cg, acc));
        sums_store(cg, g_sums, cg_add(cg, c.iv, cg_i64(cg, C)), cg_load_var(cg, acc2));
        cg_loop_end(cg, &c);
        cg_allreduce_sum(cg, g_sums, 2 * C);
    }
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
    LLVMValueRef mean = NULL, var = NULL, rstd = NULL;
    if (sum) channel_stats(cg, sum, sq, c.iv, eps, inv_count, &mean, &var, &rstd);
    switch (node->op) {
    case OP_BATCHNORM: { /* (y, x, w, b, running_mean, running_var) */
        if (inference) {
            mean = cg_load(cg, cg_arg(cg, CG_ARG_RUNNING_MEAN, 0), c.iv);
            rstd = cg_fdiv(cg, cg_const(cg, 1), cg_math(cg, "llvm.sqrt", cg_fadd(cg, cg_load(cg, cg_arg(cg, CG_ARG_RUNNING_VAR, 0), c.iv), cg_const(cg, eps))));
        } else {
            /* running statistics, PyTorch's convention: the unbiased variance (N/(N-1)) */
            LLVMValueRef nf = cg_n_as_elem(cg, count);
            LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSGT, count, cg_i64(cg, 1), "");
            LLVMValueRef unbiased = LLVMBuildSelect(cg->b, more, cg_fdiv(cg, cg_fmul(cg, var, nf), cg_fsub(cg, nf, cg_const(cg, 1))), var, "");
            LLVMValueRef keep = cg_const(cg, 1 - m), take = cg_const(cg, m);
            cg_store(cg, cg_fadd(cg, cg_fmul(cg, keep, cg_load(cg, cg_arg(cg, CG_ARG_RUNNING_MEAN, 0), c.iv)), cg_fmul(cg, take, mean)), cg_arg(cg, CG_ARG_RUNNING_MEAN, 0), c.iv);
            cg_store(cg, cg_fadd(cg, cg_fmul(cg, keep, cg_load(cg, cg_arg(cg, CG_ARG_RUNNING_VAR, 0), c.iv)), cg_fmul(cg, take, unbiased)), cg_arg(cg, CG_ARG_RUNNING_VAR, 0), c.iv);
        }
        LLVMValueRef w = cg_load(cg, w_arg, c.iv), b = cg_load(cg, cg_arg_bias(cg), c.iv);
        ChannelLoop l = channel_begin(cg, c.iv, n, C, HW);
        LLVMValueRef xhat = cg_fmul(cg, cg_fsub(cg, cg_load(cg, x_arg, l.index), mean), rstd);
        cg_store(cg, cg_fadd(cg, cg_fmul(cg, xhat, w), b), out, l.index);
        channel_end(cg, &l);
        break;
    }
    case OP_BATCHNORM_DX: { /* (dx, dy, x, w) */
        LLVMValueRef w = cg_load(cg, w_arg, c.iv);
        LLVMValueRef mean_g = cg_fmul(cg, sums_load(cg, g_sums, c.iv), inv_count);
        LLVMValueRef mean_gx = cg_fmul(cg, sums_load(cg, g_sums, cg_add(cg, c.iv, cg_i64(cg, C))), inv_count);
        ChannelLoop l = channel_begin(cg, c.iv, n, C, HW);
        LLVMValueRef g2 = cg_fmul(cg, cg_load(cg, dy_arg, l.index), w);
        LLVMValueRef xhat = cg_fmul(cg, cg_fsub(cg, cg_load(cg, x_arg, l.index), mean), rstd);
        cg_store(cg, cg_fmul(cg, rstd, cg_fsub(cg, cg_fsub(cg, g2, mean_g), cg_fmul(cg, xhat, mean_gx))), out, l.index);
        channel_end(cg, &l);
        break;
    }
    case OP_BATCHNORM_DW: { /* (dw, dy, x): this rank's share; the ranks' shares are summed with the gradients */
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc2);
        ChannelLoop l = channel_begin(cg, c.iv, n, C, HW);
        add_to(cg, acc2, cg_fmul(cg, cg_load(cg, dy_arg, l.index), cg_fmul(cg, cg_fsub(cg, cg_load(cg, x_arg, l.index), mean), rstd)));
        channel_end(cg, &l);
        cg_store(cg, cg_fmul(cg, cg_load_var(cg, acc2), cg_const(cg, node->scale)), out, c.iv);
        break;
    }
    default: { /* batchnorm_db (db, dy) */
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
        ChannelLoop l = channel_begin(cg, c.iv, n, C, HW);
        add_to(cg, acc, cg_load(cg, dy_arg, l.index));
        channel_end(cg, &l);
        cg_store(cg, cg_fmul(cg, cg_load_var(cg, acc), cg_const(cg, node->scale)), out, c.iv);
        break;
    }
    }
    cg_loop_end(cg, &c);
    cg_kernel_end(cg);
    return fn;
}

/* mean and rstd of row `base` of x (L elements), into the variables given */
static void cg_row_stats(Cg *cg, LLVMValueRef x, LLVMValueRef base, int64_t L, double eps, LLVMValueRef acc,
                         LLVMValueRef *mean, LLVMValueRef *rstd) {
    LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
    LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), cg_load(cg, x, cg_add(cg, base, c.iv))), acc);
    cg_loop_end(cg, &c);
    *mean = cg_fmul(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), cg_const(cg, 1.0 / (double)L));
    LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
    CgLoop v = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
    LLVMValueRef d = cg_fsub(cg, cg_load(cg, x, cg_add(cg, base, v.iv)), *mean);
    LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), cg_fmul(cg, d, d)), acc);
    cg_loop_end(cg, &v);
    LLVMValueRef var = cg_fmul(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), cg_const(cg, 1.0 / (double)L));
    *rstd = cg_fdiv(cg, cg_const(cg, 1), cg_math(cg, "llvm.sqrt", cg_fadd(cg, var, cg_const(cg, eps))));
}

/* layernorm and layernorm_dx: rows are independent, so examples [begin, end) are a task's.
 * values: out, x, dy (x for the forward), w, bias (w without one). */
typedef struct LayernormTask {
    const Node *node;
    int64_t L, per_example;
    double eps;
} LayernormTask;

static void layernorm_rows(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const LayernormTask *t = user;
    const Node *node = t->node;
    int64_t L = t->L;
    double eps = t->eps;
    LLVMValueRef out = v[0], x = v[1], dy = v[2], w = v[3];
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc"), acc2 = cg_var(cg, cg->elem, "acc2");
    CgLoop r = cg_loop_begin(cg, cg_mul(cg, begin, cg_i64(cg, t->per_example)), cg_mul(cg, end, cg_i64(cg, t->per_example)), "r");
    LLVMValueRef base = cg_mul(cg, r.iv, cg_i64(cg, L));
    LLVMValueRef mean = NULL, rstd = NULL;
    switch (node->op) {
    case OP_LAYERNORM: { /* (y, x, w, b) */
        cg_row_stats(cg, x, base, L, eps, acc, &mean, &rstd);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
        LLVMValueRef xhat = cg_fmul(cg, cg_fsub(cg, cg_load(cg, x, cg_add(cg, base, c.iv)), mean), rstd);
        cg_store(cg, cg_fadd(cg, cg_fmul(cg, xhat, cg_load(cg, w, c.iv)), cg_load(cg, v[4], c.iv)), out, cg_add(cg, base, c.iv));
        cg_loop_end(cg, &c);
        break;
    }
    case OP_LAYERNORM_DX: { /* (dx, dy, x, w) */
        cg_row_stats(cg, x, base, L, eps, acc, &mean, &rstd);
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc2);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
        LLVMValueRef at = cg_add(cg, base, c.iv);
        LLVMValueRef g = cg_fmul(cg, cg_load(cg, dy, at), cg_load(cg, w, c.iv));
        LLVMValueRef xhat = cg_fmul(cg, cg_fsub(cg, cg_load(cg, x, at), mean), rstd);
        LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), g), acc);
        LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc2, ""), cg_fmul(cg, g, xhat)), acc2);
        cg_loop_end(cg, &c);
        LLVMValueRef mean_g = cg_fmul(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), cg_const(cg, 1.0 / (double)L));
        LLVMValueRef mean_gx = cg_fmul(cg, LLVMBuildLoad2(cg->b, cg->elem, acc2, ""), cg_const(cg, 1.0 / (double)L));
        CgLoop c2 = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
        LLVMValueRef at2 = cg_add(cg, base, c2.iv);
        LLVMValueRef g2 = cg_fmul(cg, cg_load(cg, dy, at2), cg_load(cg, w, c2.iv));
        LLVMValueRef xhat2 = cg_fmul(cg, cg_fsub(cg, cg_load(cg, x, at2), mean), rstd);
        LLVMValueRef dx = cg_fmul(cg, rstd, cg_fsub(cg, cg_fsub(cg, g2, mean_g), cg_fmul(cg, xhat2, mean_gx)));
        cg_store(cg, dx, out, at2);
        cg_loop_end(cg, &c2);
        break;
    }
    default:
        break;
    }
    cg_loop_end(cg, &r);
}

/* layernorm_dw and layernorm_db: the batch's rows cut into this many fixed chunks (ranges that
 * depend only on n); each sums its rows in order into its own L partial sums, and the partials
 * are added in chunk order, so the bits do not depend on the thread count. */
enum { LAYERNORM_CHUNKS = 8 };

/* values: partials (scratch, LAYERNORM_CHUNKS x L), x, dy, n. Chunks [begin, end). */
static void layernorm_sum_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const LayernormTask *t = user;
    const Node *node = t->node;
    int64_t L = t->L;
    LLVMValueRef x = v[1], dy = v[2], rows = cg_mul(cg, v[3], cg_i64(cg, t->per_example));
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc");
    CgLoop k = cg_loop_begin(cg, begin, end, "chunk");
    LLVMValueRef partial = cg_gep(cg, v[0], cg_mul(cg, k.iv, cg_i64(cg, L)));
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "z");
    cg_store(cg, cg_const(cg, 0), partial, z.iv);
    cg_loop_end(cg, &z);
    LLVMValueRef lo, hi;
    cg_chunk_bounds(cg, k.iv, rows, LAYERNORM_CHUNKS, &lo, &hi);
    CgLoop r = cg_loop_begin(cg, lo, hi, "r");
    LLVMValueRef base = cg_mul(cg, r.iv, cg_i64(cg, L));
    LLVMValueRef mean = NULL, rstd = NULL;
    if (node->op == OP_LAYERNORM_DW) cg_row_stats(cg, x, base, L, t->eps, acc, &mean, &rstd);
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
    LLVMValueRef at = cg_add(cg, base, c.iv);
    LLVMValueRef value = cg_load(cg, dy, at);
    if (node->op == OP_LAYERNORM_DW) /* dw += dy xhat;  db += dy */
        value = cg_fmul(cg, value, cg_fmul(cg, cg_fsub(cg, cg_load(cg, x, at), mean), rstd));
    if (node->scale != 1.0) value = cg_fmul(cg, value, cg_const(cg, node->scale));
    cg_store(cg, cg_fadd(cg, cg_load(cg, partial, c.iv), value), partial, c.iv);
    cg_loop_end(cg, &c);
    cg_loop_end(cg, &r);
    cg_loop_end(cg, &k);
}

static LLVMValueRef layernorm_kernel(Cg *cg, const Node *node) {
    const Node *fwd = graph_forward_of(cg->g, node);
    const Shape *shape = &graph_node(cg->g, fwd->inputs[0])->shape;
    int64_t L = shape->dims[shape->rank - 1], per_example = shape_size(shape) / L;
    double eps = fwd->eps;
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    LLVMValueRef out = cg_arg_out(cg), n = cg_arg_n(cg), w = cg_arg_weight(cg);
    bool forward = node->op == OP_LAYERNORM;
    LLVMValueRef x = forward ? cg_arg_in(cg, 0) : cg_arg_in(cg, 1), dy = forward ? NULL : cg_arg_in(cg, 0);
    if (forward || node->op == OP_LAYERNORM_DX) {
        LLVMValueRef bias = cg_arg_bias(cg);
        LLVMValueRef values[5] = {out, x, forward ? x : dy, w, bias ? bias : w};
        LayernormTask task = {node, L, per_example, eps};
        cg_parallel_for(cg, n, values, 5, fwd->size < CG_EXAMPLE_PARALLEL_MIN, layernorm_rows, &task);
        cg_kernel_end(cg);
        return fn;
    }
    /* layernorm_dw and layernorm_db sum over every row: LAYERNORM_CHUNKS fixed chunks of rows
     * over the pool, each into its own partial sums (scratch), then the partials in chunk order */
    LLVMValueRef values[4] = {cg_arg_scratch(cg), x ? x : dy, dy, n}; /* layernorm_db reads no x */
    LayernormTask task = {node, L, per_example, eps};
    /* db's pass is too light to repay a launch (0.11 -> 0.15 ms over the text GPT's 9 layers):
     * its chunks run here, in the same order */
    bool serial = node->op == OP_LAYERNORM_DB || fwd->size < CG_EXAMPLE_PARALLEL_MIN;
    cg_parallel_for(cg, cg_i64(cg, LAYERNORM_CHUNKS), values, 4, serial, layernorm_sum_chunks, &task);
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
    LLVMValueRef sum = cg_load(cg, values[0], c.iv);
    for (int k = 1; k < LAYERNORM_CHUNKS; k++) sum = cg_fadd(cg, sum, cg_load(cg, values[0], cg_add(cg, c.iv, cg_i64(cg, k * L))));
    cg_store(cg, sum, out, c.iv);
    cg_loop_end(cg, &c);
    cg_kernel_end(cg);
    return fn;
}

static LLVMValueRef norm_kernel(Cg *cg, const Node *node) {
    switch (node->op) {
    case OP_BATCHNORM: case OP_BATCHNORM_DX: case OP_BATCHNORM_DW: case OP_BATCHNORM_DB: return batchnorm_kernel(cg, node);
    default: return layernorm_kernel(cg, node);
    }
}

/* ---------------------------------------------------------------- costs and the table entry */

static int64_t norm_flops(const Graph *g, const Node *n, int64_t *backward) {
    (void)g;
    *backward = 10 * n->size;
    return 6 * n->size;
}

static const OpSurface norm_surface[] = {
    {"layernorm", layernorm_spec, layernorm_rule, OPS_LAYER, "Normalizes over the last axis, then a learned scale and shift."},
    {"batchnorm", batchnorm_spec, batchnorm_rule, OPS_LAYER, "Normalizes each channel over the batch (running statistics in eval), then a learned scale and shift."},
    {NULL, NULL, NULL, 0, NULL},
};
static const OpKind norm_kinds[] = {OP_LAYERNORM, OP_LAYERNORM_DX, OP_LAYERNORM_DW, OP_LAYERNORM_DB, OP_BATCHNORM,
                                    OP_BATCHNORM_DX, OP_BATCHNORM_DW, OP_BATCHNORM_DB, OP_COUNT};
static const OpKindFlags norm_flags[] = {
    {OP_BATCHNORM, OPK_INFERENCE_VARIANT | OPK_GLOBAL_BATCH | OPK_CANCELS_CHANNEL_BIAS}, {OP_BATCHNORM_DX, OPK_GLOBAL_BATCH},
    {OP_BATCHNORM_DW, OPK_GLOBAL_BATCH}, {OP_COUNT, 0},
};

/* ---------------------------------------------------------------- ONNX */

/* LayerNormalization over the last axis (opset 17); BatchNormalization with the running
 * statistics (inference), channels on axis 1 after the batch. */
static bool norm_onnx(struct OnnxBuilder *b, const Graph *g, const Node *n) {
    (void)g;
    const char *y = onnx_value(b, n->id), *x = onnx_value(b, n->inputs[0]);
    if (n->op == OP_LAYERNORM) {
        const char *in[3] = {x, onnx_param(b, n->weight), onnx_param(b, n->bias)};
        OnnxNode *node = onnx_op(b, "LayerNormalization", y, 3, in);
        onnx_attr_int(b, node, "axis", -1);
        onnx_attr_float(b, node, "epsilon", n->eps);
        return true;
    }
    if (n->op == OP_BATCHNORM) {
        const char *in[5] = {x, onnx_param(b, n->weight), onnx_param(b, n->bias), onnx_param(b, n->running_mean),
                             onnx_param(b, n->running_var)};
        onnx_attr_float(b, onnx_op(b, "BatchNormalization", y, 5, in), "epsilon", n->eps);
        return true;
    }
    return false;
}

/* layernorm_dw and layernorm_db: LAYERNORM_CHUNKS partial sums of the L features */
static int64_t norm_scratch(const Graph *g, const Node *n) {
    if (n->op != OP_LAYERNORM_DW && n->op != OP_LAYERNORM_DB) return 0;
    const Shape *shape = &graph_node(g, graph_forward_of(g, n)->inputs[0])->shape;
    return LAYERNORM_CHUNKS * shape->dims[shape->rank - 1];
}

const OpFamily ops_norm = {
    .name = "norm",
    .surface = norm_surface,
    .kinds = norm_kinds,
    .backward = norm_backward,
    .kernel = norm_kernel,
    .flops = norm_flops,
    .scratch = norm_scratch,
    .flags = norm_flags,
    .onnx = norm_onnx,
};
