/* cg_loss.c — losses, metrics and the losses' gradients.
 *
 * Legend: C = classes (logits per example), T = target elements per example.
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

static LLVMValueRef cg_class_of(Cg *cg, LLVMValueRef y, LLVMValueRef r) {
    LLVMValueRef at = LLVMBuildInBoundsGEP2(cg->b, cg->i32, y, &r, 1, "");
    return LLVMBuildSExt(cg->b, LLVMBuildLoad2(cg->b, cg->i32, at, ""), cg->i64, "");
}

/* max over l[base .. base+C) */
static LLVMValueRef cg_row_max(Cg *cg, LLVMValueRef l, LLVMValueRef base, int64_t C, LLVMValueRef var) {
    LLVMBuildStore(cg->b, cg_load(cg, l, base), var);
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 1), cg_i64(cg, C), "c");
    LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, cg->elem, var, ""), cg_load(cg, l, cg_add(cg, base, c.iv))), var);
    cg_loop_end(cg, &c);
    return LLVMBuildLoad2(cg->b, cg->elem, var, "");
}

/* sum of exp(l - max) over the row */
static LLVMValueRef cg_row_sumexp(Cg *cg, LLVMValueRef l, LLVMValueRef base, int64_t C, LLVMValueRef max, LLVMValueRef var) {
    LLVMBuildStore(cg->b, cg_const(cg, 0), var);
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
    LLVMValueRef e = cg_math(cg, "llvm.exp", cg_fsub(cg, cg_load(cg, l, cg_add(cg, base, c.iv)), max));
    LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, var, ""), e), var);
    cg_loop_end(cg, &c);
    return LLVMBuildLoad2(cg->b, cg->elem, var, "");
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
    LLVMValueRef diff = cg_fsub(cg, x, t);
    return op == OP_MAE ? cg_math(cg, "llvm.fabs", diff) : cg_fmul(cg, diff, diff);
}

LLVMValueRef cg_loss_kernel(Cg *cg, const Node *node) {
    const Node *pred = graph_node(cg->g, node->inputs[0]);
    int64_t C = pred->size;
    LLVMValueRef fn = cg_kernel_begin(cg, node, 3);
    LLVMValueRef out = LLVMGetParam(fn, 0), l = LLVMGetParam(fn, 1), y = LLVMGetParam(fn, 2);
    LLVMValueRef n = LLVMGetParam(fn, 3);
    LLVMValueRef total = cg_var(cg, cg->f64_type, "total");
    LLVMValueRef max_var = cg_var(cg, cg->elem, "max");
    LLVMValueRef sum_var = cg_var(cg, cg->elem, "sum");
    LLVMValueRef best_var = cg_var(cg, cg->i64, "best");
    LLVMBuildStore(cg->b, LLVMConstReal(cg->f64_type, 0), total);
    /* the gradients are of the mean over the global batch (n itself outside data-parallel runs) */
    LLVMValueRef inv_n = cg_fdiv(cg, cg_const(cg, 1), cg_n_as_elem(cg, cg_batch_total(cg, n)));

    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), n, "r");
    LLVMValueRef base = cg_mul(cg, r.iv, cg_i64(cg, C));
    switch (node->op) {
    case OP_CROSS_ENTROPY: {
        LLVMValueRef max = cg_row_max(cg, l, base, C, max_var);
        LLVMValueRef s = cg_row_sumexp(cg, l, base, C, max, sum_var);
        LLVMValueRef lse = cg_fadd(cg, max, cg_math(cg, "llvm.log", s));
        LLVMValueRef picked = cg_load(cg, l, cg_add(cg, base, cg_class_of(cg, y, r.iv)));
        cg_add_to_total(cg, total, cg_to_double(cg, cg_fsub(cg, lse, picked)));
        break;
    }
    case OP_ACCURACY: {
        /* arg-max, the first on ties */
        LLVMBuildStore(cg->b, cg_load(cg, l, base), max_var);
        LLVMBuildStore(cg->b, cg_i64(cg, 0), best_var);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 1), cg_i64(cg, C), "c");
        LLVMValueRef v = cg_load(cg, l, cg_add(cg, base, c.iv));
        LLVMValueRef better = LLVMBuildFCmp(cg->b, LLVMRealOGT, v, LLVMBuildLoad2(cg->b, cg->elem, max_var, ""), "");
        LLVMBuildStore(cg->b, LLVMBuildSelect(cg->b, better, v, LLVMBuildLoad2(cg->b, cg->elem, max_var, ""), ""), max_var);
        LLVMBuildStore(cg->b, LLVMBuildSelect(cg->b, better, c.iv, LLVMBuildLoad2(cg->b, cg->i64, best_var, ""), ""), best_var);
        cg_loop_end(cg, &c);
        LLVMValueRef hit = LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildLoad2(cg->b, cg->i64, best_var, ""), cg_class_of(cg, y, r.iv), "");
        cg_add_to_total(cg, total, LLVMBuildUIToFP(cg->b, hit, cg->f64_type, ""));
        break;
    }
    case OP_MSE: case OP_RMSE: case OP_MAE: case OP_BCE: {
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
    case OP_CROSS_ENTROPY_GRAD: {
        LLVMValueRef max = cg_row_max(cg, l, base, C, max_var);
        LLVMValueRef inv_s = cg_fdiv(cg, cg_const(cg, 1), cg_row_sumexp(cg, l, base, C, max, sum_var));
        LLVMValueRef label = cg_class_of(cg, y, r.iv);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C), "c");
        LLVMValueRef at = cg_add(cg, base, c.iv);
        LLVMValueRef p = cg_fmul(cg, cg_math(cg, "llvm.exp", cg_fsub(cg, cg_load(cg, l, at), max)), inv_s);
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
    if (node->op != OP_CROSS_ENTROPY_GRAD && node->op != OP_MSE_GRAD && node->op != OP_BCE_GRAD)
        LLVMBuildStore(cg->b, LLVMBuildLoad2(cg->b, cg->f64_type, total, ""), out);
    cg_kernel_end(cg);
    return fn;
}
