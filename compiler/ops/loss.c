/* loss.c — losses and metrics: shape rules, the losses' gradients (the root of the backward
 * pass), kernels, costs.
 *
 * cross_entropy / accuracy (logits [C], class target with C classes; logits [t, C] with a
 *                           class[t, C] target: per position, the mean over positions)
 * mse / mae / rmse / bce   (prediction and float target of the same shape; bce takes logits:
 *                           the sigmoid is fused, targets in [0, 1])
 * Each produces a per-batch sum; the runtime divides by the examples seen.
 *
 * Kernels. Legend: C = classes (logits per example), T = target elements per example.
 *   cross_entropy       (sum: f64*, logits[n,C], y: i32[n])  sum += logsumexp(l) - l[y]
 *   accuracy            (sum, logits, y)                     sum += argmax(l) == y
 *   mse / rmse          (sum, p[n,T], t[n,T])                sum += mean_T (p - t)^2
 *   mae                 (sum, p, t)                          sum += mean_T |p - t|
 *   cross_entropy_grad  (d[n,C], logits, y)                  d = (softmax(l) - onehot(y)) / N
 *   mse_grad            (d[n,T], p, t)                       d = 2 (p - t) / (T N)
 *   bce                 (sum, x[n,T], t[n,T])                sum += mean_T max(x,0) - x t + log(1 + exp(-|x|))
 *   bce_grad            (d[n,T], x, t)                       d = (sigmoid(x) - t) / (T N)
 * N is the global batch (NnrtShard.total): n in a single process.
 * Per-batch sums accumulate in double, in example order, so they are deterministic. */

#include "cg.h"
#include "nnrt.h"
#include "ops.h"

/* ---------------------------------------------------------------- shape rules */

static const ArgSpec pred_target_spec[] = {{"prediction", ARG_TENSOR, true, 0, NULL}, {"target", ARG_TARGET, true, 0, NULL}, SPEC_END};

static Value class_loss_rule(OpSema *s, OpKind op, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    const Node *t = value_node(s, b->values[1]);
    Model *m = s->model;
    if (m->target_kind != NNRT_TARGET_CLASS) {
        diag_error(s->diag, b->spans[1], "%s needs a class target, but '%s' is float%s", call->text, m->target_name,
                   sema_shape(s, &m->target_shape));
        diag_note(s->diag, SPAN_NONE, "for real-valued targets use mse (loss) and mae or rmse (metrics)");
        return value_error();
    }
    /* class[N]: logits [N]; class[t, N]: logits [t, N], one row per position */
    if (!shape_equal(&x->shape, &m->target_shape)) {
        diag_error(s->diag, b->spans[0], "%s: the logits have shape %s but the target '%s' is class%s", call->text,
                   sema_shape(s, &x->shape), m->target_name, sema_shape(s, &m->target_shape));
        sema_note_origin(s, x, b->spans[0], "the logits are");
        if (m->target_shape.rank == 2)
            diag_note(s->diag, SPAN_NONE, "the logits need one row of %lld per position: end the sequence with dense(%lld)",
                      (long long)m->target_classes, (long long)m->target_classes);
        else if (x->shape.rank == 1)
            diag_note(s->diag, SPAN_NONE, "the last layer should produce %lld values, e.g. dense(%lld)",
                      (long long)m->target_classes, (long long)m->target_classes);
        else
            diag_note(s->diag, SPAN_NONE, "flatten the logits and end with dense(%lld)", (long long)m->target_classes);
        return value_error();
    }
    int inputs[2] = {x->id, t->id};
    Node *n = graph_add(s->graph, op, call->span, inputs, 2, (Shape){0});
    return tensor_value(n);
}
static Value cross_entropy_rule(OpSema *s, const Expr *call, Bound *b) { return class_loss_rule(s, OP_CROSS_ENTROPY, call, b); }
static Value real_loss_rule(OpSema *s, OpKind op, const Expr *call, Bound *b);
/* accuracy: of the arg-max for class targets; for a float target in [0, 1] (a bce model) the
 * binary accuracy at probability 0.5, the prediction read as a logit (x > 0). */
static Value accuracy_rule(OpSema *s, const Expr *call, Bound *b) {
    if (s->model->target_kind == NNRT_TARGET_FLOAT) return real_loss_rule(s, OP_BINARY_ACCURACY, call, b);
    return class_loss_rule(s, OP_ACCURACY, call, b);
}

static Value real_loss_rule(OpSema *s, OpKind op, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    const Node *t = value_node(s, b->values[1]);
    Model *m = s->model;
    if (m->target_kind != NNRT_TARGET_FLOAT) {
        diag_error(s->diag, b->spans[1], "%s needs a float target, but '%s' is class[%lld]", call->text, m->target_name,
                   (long long)m->target_classes);
        diag_note(s->diag, SPAN_NONE, "for class targets use cross_entropy (loss) and accuracy (metric)");
        return value_error();
    }
    if (!shape_equal(&x->shape, &m->target_shape)) {
        diag_error(s->diag, b->spans[0], "%s: the prediction has shape %s but the target '%s' has shape %s", call->text,
                   sema_shape(s, &x->shape), m->target_name, sema_shape(s, &m->target_shape));
        sema_note_origin(s, x, b->spans[0], "the prediction is");
        if (m->target_shape.rank == 1)
            diag_note(s->diag, SPAN_NONE, "end the model with dense(%lld) to predict %lld value%s",
                      (long long)m->target_shape.dims[0], (long long)m->target_shape.dims[0],
                      m->target_shape.dims[0] == 1 ? "" : "s");
        return value_error();
    }
    int inputs[2] = {x->id, t->id};
    Node *n = graph_add(s->graph, op, call->span, inputs, 2, (Shape){0});
    return tensor_value(n);
}
static Value mse_rule(OpSema *s, const Expr *call, Bound *b) { return real_loss_rule(s, OP_MSE, call, b); }
static Value mae_rule(OpSema *s, const Expr *call, Bound *b) { return real_loss_rule(s, OP_MAE, call, b); }
static Value rmse_rule(OpSema *s, const Expr *call, Bound *b) { return real_loss_rule(s, OP_RMSE, call, b); }
static Value bce_rule(OpSema *s, const Expr *call, Bound *b) { return real_loss_rule(s, OP_BCE, call, b); }

/* ---------------------------------------------------------------- backward rule */

/* The loss is the root (dy = -1): its gradient for the mean over the batch, fused with
 * log-softmax (cross_entropy), the sigmoid (bce) or the square (mse). Metrics have none. */
static void loss_backward(Ad *ad, const Node *loss, int dy) {
    (void)dy;
    OpKind rule = loss->op == OP_CROSS_ENTROPY ? OP_CROSS_ENTROPY_GRAD : loss->op == OP_BCE ? OP_BCE_GRAD
                  : loss->op == OP_MSE         ? OP_MSE_GRAD
                                               : OP_COUNT;
    const Node *pred = graph_node(ad_graph(ad), loss->inputs[0]);
    if (rule == OP_COUNT || !pred->needs_grad) return;
    ad_accumulate(ad, pred->id, ad_node(ad, rule, pred->id, loss->inputs[1], pred->shape, loss)->id);
}

/* ---------------------------------------------------------------- kernels */

static LLVMValueRef cg_class_of(Cg *cg, LLVMValueRef y, LLVMValueRef r) {
    LLVMValueRef at = LLVMBuildInBoundsGEP2(cg->b, cg->i32, y, &r, 1, "");
    return LLVMBuildSExt(cg->b, LLVMBuildLoad2(cg->b, cg->i32, at, ""), cg->i64, "");
}

static void cg_add_to_total(Cg *cg, LLVMValueRef total, LLVMValueRef value_f64) {
    LLVMValueRef old = LLVMBuildLoad2(cg->b, cg->f64_type, total, "");
    /* plain (not reassociable) double add: the batch sum has one fixed order */
    LLVMBuildStore(cg->b, LLVMBuildFAdd(cg->b, old, value_f64, ""), total);
}

/* One element's term of the losses and metrics that average over the target's elements. */
static LLVMValueRef cg_elementwise_loss(Cg *cg, OpKind op, LLVMValueRef x, LLVMValueRef t) {
    if (op == OP_BCE) {
        /* the stable form of -t log(sigmoid(x)) - (1-t) log(1 - sigmoid(x)) */
        LLVMValueRef softplus = cg_math(cg, "llvm.log", cg_fadd(cg, cg_const(cg, 1),
                                        cg_math(cg, "llvm.exp", LLVMBuildFNeg(cg->b, cg_math(cg, "llvm.fabs", x), ""))));
        return cg_fadd(cg, cg_fsub(cg, cg_max(cg, x, cg_const(cg, 0)), cg_fmul(cg, x, t)), softplus);
    }
    if (op == OP_BINARY_ACCURACY) {
        LLVMValueRef said = LLVMBuildFCmp(cg->b, LLVMRealOGT, x, cg_const(cg, 0), "");
        LLVMValueRef truth = LLVMBuildFCmp(cg->b, LLVMRealOGT, t, cg_const(cg, 0.5), "");
        return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, said, truth, ""), cg_const(cg, 1), cg_const(cg, 0), "");
    }
    LLVMValueRef diff = cg_fsub(cg, x, t);
    return op == OP_MAE ? cg_math(cg, "llvm.fabs", diff) : cg_fmul(cg, diff, diff);
}

/* The gradients: rows of independent outputs, over the pool by examples (same bytes for any
 * thread count). values: out, logits/predictions, targets, 1 / rows of the global batch. */
typedef struct LossGradTask {
    const Node *node;
    int64_t C, T;
} LossGradTask;

static void loss_grad_rows(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const LossGradTask *t = user;
    const Node *node = t->node;
    int64_t C = t->C;
    LLVMValueRef out = v[0], l = v[1], y = v[2], inv_n = v[3];
    LLVMValueRef max_var = cg_var(cg, cg->elem, "max");
    LLVMValueRef sum_var = cg_var(cg, cg->elem, "sum");
    CgLoop r = cg_loop_begin(cg, cg_mul(cg, begin, cg_i64(cg, t->T)), cg_mul(cg, end, cg_i64(cg, t->T)), "r");
    LLVMValueRef base = cg_mul(cg, r.iv, cg_i64(cg, C));
    switch (node->op) {
    case OP_CROSS_ENTROPY_GRAD: {
        LLVMValueRef max = cg_row_max(cg, l, base, cg_i64(cg, C), max_var);
        /* the row's exps are kept in the gradient and scaled there: one exp per element */
        LLVMValueRef inv_s = cg_fdiv(cg, cg_const(cg, 1), cg_row_sumexp(cg, l, base, cg_i64(cg, C), max, sum_var, out));
        LLVMValueRef label = cg_class_of(cg, y, r.iv);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
        LLVMValueRef at = cg_add(cg, base, c.iv);
        LLVMValueRef p = cg_fmul(cg, cg_load(cg, out, at), inv_s);
        LLVMValueRef is_label = LLVMBuildICmp(cg->b, LLVMIntEQ, c.iv, label, "");
        LLVMValueRef onehot = LLVMBuildSelect(cg->b, is_label, cg_const(cg, 1), cg_const(cg, 0), "");
        cg_store(cg, cg_fmul(cg, cg_fsub(cg, p, onehot), inv_n), out, at);
        cg_loop_end(cg, &c);
        break;
    }
    case OP_MSE_GRAD:
    case OP_BCE_GRAD: {
        /* mse: 2 (p - t) / (T n);  bce: (sigmoid(x) - t) / (T n) */
        LLVMValueRef factor = cg_fmul(cg, cg_const(cg, (node->op == OP_MSE_GRAD ? 2.0 : 1.0) / (double)C), inv_n);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
        LLVMValueRef at = cg_add(cg, base, c.iv);
        LLVMValueRef p = cg_load(cg, l, at);
        if (node->op == OP_BCE_GRAD) p = cg_activation(cg, OP_SIGMOID, p);
        cg_store(cg, cg_fmul(cg, cg_fsub(cg, p, cg_load(cg, y, at)), factor), out, at);
        cg_loop_end(cg, &c);
        break;
    }
    default: break;
    }
    cg_loop_end(cg, &r);
}

static LLVMValueRef loss_kernel(Cg *cg, const Node *node) {
    const Node *pred = graph_node(cg->g, node->inputs[0]);
    /* Class losses: one row of C logits per position (T = 1 for class[N]), each example's value
     * the mean over its positions. The others: one row of C = all elements per example. */
    bool per_class = node->op == OP_CROSS_ENTROPY || node->op == OP_ACCURACY || node->op == OP_CROSS_ENTROPY_GRAD;
    int64_t C = per_class ? pred->shape.dims[pred->shape.rank - 1] : pred->size, T = pred->size / C;
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    LLVMValueRef out = cg_arg_out(cg), l = cg_arg_in(cg, 0), y = cg_arg_in(cg, 1);
    LLVMValueRef n = cg_arg_n(cg);
    if (node->op == OP_CROSS_ENTROPY_GRAD || node->op == OP_MSE_GRAD || node->op == OP_BCE_GRAD) {
        /* the gradients are of the mean over the global batch (n itself outside data-parallel runs) */
        LLVMValueRef total_rows = cg_batch_total(cg, n);
        if (T > 1) total_rows = cg_mul(cg, total_rows, cg_i64(cg, T));
        LLVMValueRef values[4] = {out, l, y, cg_fdiv(cg, cg_const(cg, 1), cg_n_as_elem(cg, total_rows))};
        LossGradTask task = {node, C, T};
        cg_parallel_for(cg, n, values, 4, pred->size < CG_EXAMPLE_PARALLEL_MIN, loss_grad_rows, &task);
        cg_kernel_end(cg);
        return fn;
    }
    /* the losses and metrics: the mean over the batch's rows, summed in row order */
    LLVMValueRef total = cg_var(cg, cg->f64_type, "total");
    LLVMValueRef max_var = cg_var(cg, cg->elem, "max");
    LLVMValueRef sum_var = cg_var(cg, cg->elem, "sum");
    LLVMValueRef best_var = cg_var(cg, cg->i64, "best");
    LLVMBuildStore(cg->b, LLVMConstReal(cg->f64_type, 0), total);

    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), T > 1 ? cg_mul(cg, n, cg_i64(cg, T)) : n, "r");
    LLVMValueRef base = cg_mul(cg, r.iv, cg_i64(cg, C));
    switch (node->op) {
    case OP_CROSS_ENTROPY: {
        LLVMValueRef max = cg_row_max(cg, l, base, cg_i64(cg, C), max_var);
        LLVMValueRef s = cg_row_sumexp(cg, l, base, cg_i64(cg, C), max, sum_var, NULL);
        LLVMValueRef lse = cg_fadd(cg, max, cg_math(cg, "llvm.log", s));
        LLVMValueRef picked = cg_load(cg, l, cg_add(cg, base, cg_class_of(cg, y, r.iv)));
        cg_add_to_total(cg, total, cg_to_double(cg, cg_fsub(cg, lse, picked)));
        break;
    }
    case OP_ACCURACY: {
        /* arg-max, the first on ties */
        cg_row_argmax(cg, l, base, cg_i64(cg, C), max_var, best_var);
        LLVMValueRef hit = LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildLoad2(cg->b, cg->i64, best_var, ""), cg_class_of(cg, y, r.iv), "");
        cg_add_to_total(cg, total, LLVMBuildUIToFP(cg->b, hit, cg->f64_type, ""));
        break;
    }
    case OP_MSE: case OP_RMSE: case OP_MAE: case OP_BCE: case OP_BINARY_ACCURACY: {
        LLVMBuildStore(cg->b, cg_const(cg, 0), sum_var);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
        LLVMValueRef at = cg_add(cg, base, c.iv);
        LLVMValueRef term = cg_elementwise_loss(cg, node->op, cg_load(cg, l, at), cg_load(cg, y, at));
        LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, sum_var, ""), term), sum_var);
        cg_loop_end(cg, &c);
        LLVMValueRef mean = cg_fdiv(cg, LLVMBuildLoad2(cg->b, cg->elem, sum_var, ""), cg_const(cg, (double)C));
        cg_add_to_total(cg, total, cg_to_double(cg, mean));
        break;
    }
    default: break;
    }
    cg_loop_end(cg, &r);
    LLVMValueRef sum = LLVMBuildLoad2(cg->b, cg->f64_type, total, "");
    if (T > 1) sum = LLVMBuildFMul(cg->b, sum, LLVMConstReal(cg->f64_type, 1.0 / (double)T), ""); /* mean over positions */
    LLVMBuildStore(cg->b, sum, out);
    cg_kernel_end(cg);
    return fn;
}

/* ---------------------------------------------------------------- costs and the table entry */

static int64_t loss_flops(const Graph *g, const Node *n, int64_t *backward) {
    *backward = 0;
    if (n->op != OP_CROSS_ENTROPY && n->op != OP_MSE && n->op != OP_BCE) return 0; /* metrics: not part of training */
    const Node *x = graph_node(g, n->inputs[0]);
    *backward = 3 * x->size;
    return 3 * x->size;
}

/* The order is the one messages list them in ("a 'loss' statement needs one of: ..."). */
static const OpSurface loss_surface[] = {
    {"cross_entropy", pred_target_spec, cross_entropy_rule, OPS_LOSS | OPS_METRIC, "Softmax cross-entropy of logits against class labels (applies softmax itself)."},
    {"mse", pred_target_spec, mse_rule, OPS_LOSS | OPS_METRIC, "Mean squared error against a float target."},
    {"bce", pred_target_spec, bce_rule, OPS_LOSS | OPS_METRIC, "Binary cross-entropy of logits against targets in [0, 1] (applies the sigmoid itself)."},
    {"accuracy", pred_target_spec, accuracy_rule, OPS_METRIC | OPS_HIGHER_IS_BETTER, "Fraction of examples (or positions) whose highest logit is the label."},
    {"mae", pred_target_spec, mae_rule, OPS_METRIC, "Mean absolute error against a float target."},
    {"rmse", pred_target_spec, rmse_rule, OPS_METRIC, "Root of the mean squared error against a float target."},
    {NULL, NULL, NULL, 0, NULL},
};
static const OpKind loss_kinds[] = {OP_CROSS_ENTROPY, OP_MSE, OP_ACCURACY, OP_MAE, OP_RMSE, OP_BCE, OP_BINARY_ACCURACY,
                                    OP_CROSS_ENTROPY_GRAD, OP_MSE_GRAD, OP_BCE_GRAD, OP_COUNT};
/* the gradients are of the mean over the global batch */
static const OpKindFlags loss_flags[] = {
    {OP_CROSS_ENTROPY, OPK_OUTPUT_PROBABILITIES | OPK_APPLIES_SOFTMAX}, {OP_BCE, OPK_APPLIES_SIGMOID}, {OP_RMSE, OPK_METRIC_ROOT_MEAN},
    {OP_CROSS_ENTROPY_GRAD, OPK_GLOBAL_BATCH}, {OP_MSE_GRAD, OPK_GLOBAL_BATCH}, {OP_BCE_GRAD, OPK_GLOBAL_BATCH}, {OP_COUNT, 0},
};

/* binary accuracy is the language's `accuracy` on a float target: its name in logs and tables */
static const char *loss_label(const Node *n) { return n->op == OP_BINARY_ACCURACY ? "accuracy" : NULL; }

const OpFamily ops_loss = {
    .name = "loss",
    .surface = loss_surface,
    .kinds = loss_kinds,
    .backward = loss_backward,
    .kernel = loss_kernel,
    .flops = loss_flops,
    .label = loss_label,
    .flags = loss_flags,
};
