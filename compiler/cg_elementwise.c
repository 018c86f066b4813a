/* cg_elementwise.c — element-wise kernels over n * size elements.
 *
 *   relu/tanh/sigmoid       (y, x)         y = act(x)
 *   relu_grad               (dx, dy, y)    dx = y > 0 ? dy : 0
 *   tanh_grad               (dx, dy, y)    dx = dy (1 - y^2)
 *   sigmoid_grad            (dx, dy, y)    dx = dy y (1 - y)
 *   add/sub/mul             (y, a, b)
 *   affine                  (y, x)         y = x * scale + shift
 *   leaky_relu              (y, x)         y = x > 0 ? x : alpha x
 *   leaky_relu_grad         (dx, dy, x)    dx = x > 0 ? dy : alpha dy
 *   dropout                 (y, x, seed)   training: y = keep ? x / (1-p) : 0; otherwise y = x
 *   dropout_grad            (dx, dy, seed) dx = keep ? dy / (1-p) : 0, the same mask
 *   gelu                    (y, x)         y = x Phi(x)
 *   gelu_grad               (dx, dy, x)    dx = dy (Phi(x) + x phi(x))
 *   flatten, reshape        views: never lowered
 * Reductions (the input seen as [outer, A, inner] per example, A the reduced axis):
 *   reduce                  (y[outer,inner], x)   y = scale * sum_a x[outer, a, inner]
 *   reduce_grad             (dx[outer,A,inner], dy) dx = scale * dy, broadcast over a
 * Layer normalization over the last axis (rows of L; xhat = (x - mean) * rstd, rstd = 1/sqrt(var + eps)):
 *   layernorm               (y, x, w, b)   y = xhat w + b
 *   layernorm_dx            (dx, dy, x, w) dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w
 *   layernorm_dw            (dw, dy, x)    dw = scale * sum_rows dy xhat
 *   layernorm_db            (db, dy)       db = scale * sum_rows dy
 * Row-wise over the last axis (L elements per row):
 *   softmax                 (y, x)         y = exp(x - max) / sum
 *   log_softmax             (y, x)         y = x - max - log(sum exp(x - max))
 *   softmax_grad            (dx, dy, y)    dx = y (dy - sum(dy y))
 *   log_softmax_grad        (dx, dy, y)    dx = dy - exp(y) sum(dy)
 * The dropout mask is a counter-based hash of (step seed, layer, element index in the global
 * batch, i.e. counted from the shard's first example): nothing is
 * stored between forward and backward, and the mask is the same in float32 and float64. */
#include <math.h>

#include "cg.h"

/* x may be a scalar or a vector (relu and sigmoid); tanh is scalar only (a libm call). */
LLVMValueRef cg_activation(Cg *cg, OpKind act, LLVMValueRef x) {
    LLVMTypeRef type = LLVMTypeOf(x);
    LLVMValueRef zero = LLVMConstNull(type);
    LLVMValueRef one = cg_const(cg, 1);
    if (LLVMGetTypeKind(type) == LLVMVectorTypeKind) {
        unsigned lanes = LLVMGetVectorSize(type);
        LLVMValueRef ones[64];
        for (unsigned i = 0; i < lanes; i++) ones[i] = one;
        one = LLVMConstVector(ones, lanes);
    }
    switch (act) {
    case OP_RELU: {
        LLVMValueRef positive = LLVMBuildFCmp(cg->b, LLVMRealOGT, x, zero, "");
        return LLVMBuildSelect(cg->b, positive, x, zero, "");
    }
    case OP_TANH: return cg_libm(cg, "tanh", x);
    case OP_SIGMOID: {
        /* 1 / (1 + exp(-x)) */
        LLVMValueRef e = cg_math(cg, "llvm.exp", LLVMBuildFNeg(cg->b, x, ""));
        return cg_fdiv(cg, one, cg_fadd(cg, one, e));
    }
    default: return x;
    }
}

/* keep element i of dropout layer `salt`? splitmix64 finalizer over (seed, salt, i), compared
 * as an integer against p * 2^24 so both element types draw the same mask. */
static LLVMValueRef cg_dropout_keep(Cg *cg, LLVMValueRef seed, int salt, LLVMValueRef i, double p) {
    LLVMValueRef z = LLVMBuildXor(cg->b, seed, LLVMConstInt(cg->i64, (unsigned long long)(salt + 1) * 0xD1B54A32D192ED03ull, 0), "");
    z = LLVMBuildAdd(cg->b, z, LLVMBuildMul(cg->b, i, LLVMConstInt(cg->i64, 0x9E3779B97F4A7C15ull, 0), ""), "");
    z = LLVMBuildMul(cg->b, LLVMBuildXor(cg->b, z, LLVMBuildLShr(cg->b, z, cg_i64(cg, 30), ""), ""), LLVMConstInt(cg->i64, 0xBF58476D1CE4E5B9ull, 0), "");
    z = LLVMBuildMul(cg->b, LLVMBuildXor(cg->b, z, LLVMBuildLShr(cg->b, z, cg_i64(cg, 27), ""), ""), LLVMConstInt(cg->i64, 0x94D049BB133111EBull, 0), "");
    z = LLVMBuildXor(cg->b, z, LLVMBuildLShr(cg->b, z, cg_i64(cg, 31), ""), "");
    LLVMValueRef top24 = LLVMBuildLShr(cg->b, z, cg_i64(cg, 40), "");
    return LLVMBuildICmp(cg->b, LLVMIntUGE, top24, cg_i64(cg, (int64_t)ceil(p * 16777216.0)), "");
}

LLVMValueRef cg_elementwise_kernel(Cg *cg, const Node *node) {
    bool seeded = node->op == OP_DROPOUT_GRAD || (node->op == OP_DROPOUT && cg->training);
    int inputs = node->input_count;
    LLVMValueRef fn = seeded ? cg_kernel_begin_seeded(cg, node, 1 + inputs) : cg_kernel_begin(cg, node, 1 + inputs);
    LLVMValueRef out = LLVMGetParam(fn, 0);
    LLVMValueRef a = LLVMGetParam(fn, 1);
    LLVMValueRef b = inputs > 1 ? LLVMGetParam(fn, 2) : NULL;
    LLVMValueRef n = LLVMGetParam(fn, (unsigned)(1 + inputs));
    LLVMValueRef total = cg_mul(cg, n, cg_i64(cg, node->size));
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), total, "i");
    LLVMValueRef x = cg_load(cg, a, i.iv);
    LLVMValueRef y = b ? cg_load(cg, b, i.iv) : NULL;
    LLVMValueRef v = NULL;
    switch (node->op) {
    case OP_RELU: case OP_TANH: case OP_SIGMOID: v = cg_activation(cg, node->op, x); break;
    case OP_RELU_GRAD: {
        LLVMValueRef positive = LLVMBuildFCmp(cg->b, LLVMRealOGT, y, cg_const(cg, 0), "");
        v = LLVMBuildSelect(cg->b, positive, x, cg_const(cg, 0), "");
        break;
    }
    case OP_TANH_GRAD: v = cg_fmul(cg, x, cg_fsub(cg, cg_const(cg, 1), cg_fmul(cg, y, y))); break;
    case OP_SIGMOID_GRAD: v = cg_fmul(cg, cg_fmul(cg, x, y), cg_fsub(cg, cg_const(cg, 1), y)); break;
    case OP_ADD: v = cg_fadd(cg, x, y); break;
    case OP_SUB: v = cg_fsub(cg, x, y); break;
    case OP_MUL: v = cg_fmul(cg, x, y); break;
    case OP_LEAKY_RELU:
    case OP_LEAKY_RELU_GRAD: {
        LLVMValueRef sign_of = node->op == OP_LEAKY_RELU ? x : y; /* the forward input decides */
        LLVMValueRef positive = LLVMBuildFCmp(cg->b, LLVMRealOGT, sign_of, cg_const(cg, 0), "");
        double alpha = node->op == OP_LEAKY_RELU ? node->alpha : graph_node(cg->g, node->forward)->alpha;
        v = LLVMBuildSelect(cg->b, positive, x, cg_fmul(cg, x, cg_const(cg, alpha)), "");
        break;
    }
    case OP_DROPOUT:
    case OP_DROPOUT_GRAD: {
        if (!seeded) { v = x; break; } /* inference: identity */
        const Node *layer = node->op == OP_DROPOUT ? node : graph_node(cg->g, node->forward);
        LLVMValueRef seed = LLVMGetParam(fn, (unsigned)(2 + inputs));
        /* the element's index in the global batch: masks do not depend on how it is split */
        LLVMValueRef global = cg_add(cg, i.iv, cg_mul(cg, cg_batch_first(cg), cg_i64(cg, node->size)));
        LLVMValueRef keep = cg_dropout_keep(cg, seed, layer->id, global, layer->alpha);
        v = LLVMBuildSelect(cg->b, keep, cg_fmul(cg, x, cg_const(cg, 1.0 / (1.0 - layer->alpha))), cg_const(cg, 0), "");
        break;
    }
    case OP_GELU:
    case OP_GELU_GRAD: {
        /* Phi(x) = (1 + erf(x / sqrt 2)) / 2; gelu = x Phi(x); gelu' = Phi(x) + x phi(x) */
        LLVMValueRef in = node->op == OP_GELU ? x : y;
        LLVMValueRef cdf = cg_fmul(cg, cg_const(cg, 0.5), cg_fadd(cg, cg_const(cg, 1), cg_libm(cg, "erf", cg_fmul(cg, in, cg_const(cg, M_SQRT1_2)))));
        if (node->op == OP_GELU) {
            v = cg_fmul(cg, in, cdf);
        } else {
            LLVMValueRef pdf = cg_fmul(cg, cg_const(cg, 0.3989422804014327),
                                       cg_math(cg, "llvm.exp", cg_fmul(cg, cg_const(cg, -0.5), cg_fmul(cg, in, in))));
            v = cg_fmul(cg, x, cg_fadd(cg, cdf, cg_fmul(cg, in, pdf)));
        }
        break;
    }
    case OP_AFFINE:
        v = x;
        if (node->scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, node->scale));
        if (node->shift != 0.0) v = cg_fadd(cg, v, cg_const(cg, node->shift));
        break;
    default: v = x; break;
    }
    cg_store(cg, v, out, i.iv);
    cg_loop_end(cg, &i);
    cg_kernel_end(cg);
    return fn;
}

LLVMValueRef cg_rowwise_kernel(Cg *cg, const Node *node) {
    int64_t L = node->shape.dims[node->shape.rank - 1];
    bool grad = node->op == OP_SOFTMAX_GRAD || node->op == OP_LOG_SOFTMAX_GRAD;
    LLVMValueRef fn = cg_kernel_begin(cg, node, grad ? 3 : 2);
    LLVMValueRef out = LLVMGetParam(fn, 0), a = LLVMGetParam(fn, 1), y = grad ? LLVMGetParam(fn, 2) : NULL;
    LLVMValueRef n = LLVMGetParam(fn, grad ? 3 : 2);
    LLVMValueRef rows = cg_mul(cg, n, cg_i64(cg, node->size / L));
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc"), max_var = cg_var(cg, cg->elem, "max");
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), rows, "r");
    LLVMValueRef base = cg_mul(cg, r.iv, cg_i64(cg, L));
    LLVMValueRef shift = NULL;
    if (!grad) {
        LLVMBuildStore(cg->b, cg_load(cg, a, base), max_var);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 1), cg_i64(cg, L), "c");
        LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, cg->elem, max_var, ""), cg_load(cg, a, cg_add(cg, base, c.iv))), max_var);
        cg_loop_end(cg, &c);
        shift = LLVMBuildLoad2(cg->b, cg->elem, max_var, "");
    }
    /* the row's reduction: sum exp(x - max), sum(dy y) or sum(dy) */
    LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
    CgLoop c1 = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
    LLVMValueRef at1 = cg_add(cg, base, c1.iv);
    LLVMValueRef term = node->op == OP_SOFTMAX_GRAD       ? cg_fmul(cg, cg_load(cg, a, at1), cg_load(cg, y, at1))
                        : node->op == OP_LOG_SOFTMAX_GRAD ? cg_load(cg, a, at1)
                                                          : cg_math(cg, "llvm.exp", cg_fsub(cg, cg_load(cg, a, at1), shift));
    LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), term), acc);
    cg_loop_end(cg, &c1);
    LLVMValueRef sum = LLVMBuildLoad2(cg->b, cg->elem, acc, "");
    LLVMValueRef log_sum = node->op == OP_LOG_SOFTMAX ? cg_math(cg, "llvm.log", sum) : NULL;
    LLVMValueRef inv_sum = node->op == OP_SOFTMAX ? cg_fdiv(cg, cg_const(cg, 1), sum) : NULL;
    CgLoop c2 = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
    LLVMValueRef at = cg_add(cg, base, c2.iv);
    LLVMValueRef v;
    switch (node->op) {
    case OP_SOFTMAX: v = cg_fmul(cg, cg_math(cg, "llvm.exp", cg_fsub(cg, cg_load(cg, a, at), shift)), inv_sum); break;
    case OP_LOG_SOFTMAX: v = cg_fsub(cg, cg_fsub(cg, cg_load(cg, a, at), shift), log_sum); break;
    case OP_SOFTMAX_GRAD: v = cg_fmul(cg, cg_load(cg, y, at), cg_fsub(cg, cg_load(cg, a, at), sum)); break;
    default: v = cg_fsub(cg, cg_load(cg, a, at), cg_fmul(cg, cg_math(cg, "llvm.exp", cg_load(cg, y, at)), sum)); break;
    }
    cg_store(cg, v, out, at);
    cg_loop_end(cg, &c2);
    cg_loop_end(cg, &r);
    cg_kernel_end(cg);
    return fn;
}

LLVMValueRef cg_reduce_kernel(Cg *cg, const Node *node) {
    const Node *fwd = graph_forward_of(cg->g, node);
    const Shape *in = &graph_node(cg->g, fwd->inputs[0])->shape;
    int64_t outer = 1, inner = 1, A = in->dims[fwd->axis];
    for (int d = 0; d < fwd->axis; d++) outer *= in->dims[d];
    for (int d = fwd->axis + 1; d < in->rank; d++) inner *= in->dims[d];
    LLVMValueRef fn = cg_kernel_begin(cg, node, 2);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1), n = LLVMGetParam(fn, 2);
    LLVMValueRef scale = cg_const(cg, node->scale);
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, n, cg_i64(cg, outer)), "o"); /* example and outer index */
    LLVMValueRef small = cg_mul(cg, o.iv, cg_i64(cg, inner)), big = cg_mul(cg, o.iv, cg_i64(cg, A * inner));
    if (node->op == OP_REDUCE) {
        CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, inner), "z");
        cg_store(cg, cg_const(cg, 0), out, cg_add(cg, small, z.iv));
        cg_loop_end(cg, &z);
    }
    CgLoop a = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, A), "a");
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, inner), "i");
    LLVMValueRef at_small = cg_add(cg, small, i.iv);
    LLVMValueRef at_big = cg_add(cg, big, cg_add(cg, cg_mul(cg, a.iv, cg_i64(cg, inner)), i.iv));
    if (node->op == OP_REDUCE)
        cg_store(cg, cg_fadd(cg, cg_load(cg, out, at_small), cg_fmul(cg, cg_load(cg, src, at_big), scale)), out, at_small);
    else
        cg_store(cg, cg_fmul(cg, cg_load(cg, src, at_small), scale), out, at_big);
    cg_loop_end(cg, &i);
    cg_loop_end(cg, &a);
    cg_loop_end(cg, &o);
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

LLVMValueRef cg_layernorm_kernel(Cg *cg, const Node *node) {
    const Node *fwd = graph_forward_of(cg->g, node);
    const Shape *shape = &graph_node(cg->g, fwd->inputs[0])->shape;
    int64_t L = shape->dims[shape->rank - 1], per_example = shape_size(shape) / L;
    double eps = fwd->alpha;
    int ptrs = node->op == OP_LAYERNORM ? 4 : node->op == OP_LAYERNORM_DX ? 4 : node->op == OP_LAYERNORM_DW ? 3 : 2;
    LLVMValueRef fn = cg_kernel_begin(cg, node, ptrs);
    LLVMValueRef out = LLVMGetParam(fn, 0), p1 = LLVMGetParam(fn, 1);
    LLVMValueRef p2 = ptrs > 2 ? LLVMGetParam(fn, 2) : NULL, p3 = ptrs > 3 ? LLVMGetParam(fn, 3) : NULL;
    LLVMValueRef n = LLVMGetParam(fn, (unsigned)ptrs);
    LLVMValueRef rows = cg_mul(cg, n, cg_i64(cg, per_example));
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc"), acc2 = cg_var(cg, cg->elem, "acc2");
    if (node->op == OP_LAYERNORM_DW || node->op == OP_LAYERNORM_DB) {
        CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "z");
        cg_store(cg, cg_const(cg, 0), out, z.iv);
        cg_loop_end(cg, &z);
    }
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), rows, "r");
    LLVMValueRef base = cg_mul(cg, r.iv, cg_i64(cg, L));
    LLVMValueRef mean = NULL, rstd = NULL;
    switch (node->op) {
    case OP_LAYERNORM: { /* (y, x, w, b) */
        cg_row_stats(cg, p1, base, L, eps, acc, &mean, &rstd);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
        LLVMValueRef xhat = cg_fmul(cg, cg_fsub(cg, cg_load(cg, p1, cg_add(cg, base, c.iv)), mean), rstd);
        cg_store(cg, cg_fadd(cg, cg_fmul(cg, xhat, cg_load(cg, p2, c.iv)), cg_load(cg, p3, c.iv)), out, cg_add(cg, base, c.iv));
        cg_loop_end(cg, &c);
        break;
    }
    case OP_LAYERNORM_DX: { /* (dx, dy, x, w) */
        cg_row_stats(cg, p2, base, L, eps, acc, &mean, &rstd);
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc2);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
        LLVMValueRef at = cg_add(cg, base, c.iv);
        LLVMValueRef g = cg_fmul(cg, cg_load(cg, p1, at), cg_load(cg, p3, c.iv));
        LLVMValueRef xhat = cg_fmul(cg, cg_fsub(cg, cg_load(cg, p2, at), mean), rstd);
        LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), g), acc);
        LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc2, ""), cg_fmul(cg, g, xhat)), acc2);
        cg_loop_end(cg, &c);
        LLVMValueRef mean_g = cg_fmul(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), cg_const(cg, 1.0 / (double)L));
        LLVMValueRef mean_gx = cg_fmul(cg, LLVMBuildLoad2(cg->b, cg->elem, acc2, ""), cg_const(cg, 1.0 / (double)L));
        CgLoop c2 = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
        LLVMValueRef at2 = cg_add(cg, base, c2.iv);
        LLVMValueRef g2 = cg_fmul(cg, cg_load(cg, p1, at2), cg_load(cg, p3, c2.iv));
        LLVMValueRef xhat2 = cg_fmul(cg, cg_fsub(cg, cg_load(cg, p2, at2), mean), rstd);
        LLVMValueRef dx = cg_fmul(cg, rstd, cg_fsub(cg, cg_fsub(cg, g2, mean_g), cg_fmul(cg, xhat2, mean_gx)));
        cg_store(cg, dx, out, at2);
        cg_loop_end(cg, &c2);
        break;
    }
    case OP_LAYERNORM_DW: { /* (dw, dy, x) */
        cg_row_stats(cg, p2, base, L, eps, acc, &mean, &rstd);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
        LLVMValueRef at = cg_add(cg, base, c.iv);
        LLVMValueRef xhat = cg_fmul(cg, cg_fsub(cg, cg_load(cg, p2, at), mean), rstd);
        LLVMValueRef v = cg_fmul(cg, cg_load(cg, p1, at), xhat);
        if (node->scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, node->scale));
        cg_store(cg, cg_fadd(cg, cg_load(cg, out, c.iv), v), out, c.iv);
        cg_loop_end(cg, &c);
        break;
    }
    default: { /* layernorm_db (db, dy) */
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
        LLVMValueRef v = cg_load(cg, p1, cg_add(cg, base, c.iv));
        if (node->scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, node->scale));
        cg_store(cg, cg_fadd(cg, cg_load(cg, out, c.iv), v), out, c.iv);
        cg_loop_end(cg, &c);
        break;
    }
    }
    cg_loop_end(cg, &r);
    cg_kernel_end(cg);
    return fn;
}
