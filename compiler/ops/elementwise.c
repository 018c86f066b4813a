/* elementwise.c — the element-wise and row-wise ops: activations, dropout, softmax and the
 * tensor arithmetic of expressions (+ - * with tensors and scalars). Shape rules (the output
 * has the input's shape), backward rules, kernels, costs.
 *
 * Kernels, over n * size elements:
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
 *   gelu_tanh               (y, x)         y = x (1 + t) / 2, t = tanh(c (x + 0.044715 x^3)), c = sqrt(2/pi)
 *   gelu_tanh_grad          (dx, dy, x)    dx = dy ((1 + t) / 2 + x (1 - t^2) c (1 + 3 0.044715 x^2) / 2)
 *   silu                    (y, x)         y = x s, s = sigmoid(x)
 *   silu_grad               (dx, dy, x)    dx = dy s (1 + x (1 - s))
 * Row-wise over the last axis (L elements per row):
 *   softmax                 (y, x)         y = exp(x - max) / sum
 *   log_softmax             (y, x)         y = x - max - log(sum exp(x - max))
 *   softmax_grad            (dx, dy, y)    dx = y (dy - sum(dy y))
 *   log_softmax_grad        (dx, dy, y)    dx = dy - exp(y) sum(dy)
 * The dropout mask is a counter-based hash of (step seed, layer, element index in the global
 * batch, i.e. counted from the shard's first example): nothing is
 * stored between forward and backward, and the mask is the same in float32 and float64. */
#include <math.h>
#include <string.h>

#include "cg.h"
#include "onnx.h"
#include "ops.h"

/* ---------------------------------------------------------------- shape rules */

static const ArgSpec unary_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, SPEC_END};

static Value same_shape(OpSema *s, OpKind op, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    return tensor_value(graph_add(s->graph, op, call->span, &x->id, 1, x->shape));
}
static Value relu_rule(OpSema *s, const Expr *call, Bound *b) { return same_shape(s, OP_RELU, call, b); }
static Value tanh_rule(OpSema *s, const Expr *call, Bound *b) { return same_shape(s, OP_TANH, call, b); }
static Value sigmoid_rule(OpSema *s, const Expr *call, Bound *b) { return same_shape(s, OP_SIGMOID, call, b); }
static Value silu_rule(OpSema *s, const Expr *call, Bound *b) { return same_shape(s, OP_SILU, call, b); }

/* gelu(approximate="none"): the exact (erf) form; "tanh" is GPT-2's approximation. */
static const ArgSpec gelu_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"approximate", ARG_STRING, false, 0, "none"}, SPEC_END};
static Value gelu_rule(OpSema *s, const Expr *call, Bound *b) {
    const char *form = b->values[1].string;
    if (strcmp(form, "none") != 0 && strcmp(form, "tanh") != 0) {
        diag_error(s->diag, b->spans[1], "approximate of gelu must be \"none\" or \"tanh\", got \"%s\"", form);
        diag_note(s->diag, SPAN_NONE, "gelu(approximate=\"tanh\") is GPT-2's form; the default is the exact one");
        return value_error();
    }
    return same_shape(s, strcmp(form, "tanh") == 0 ? OP_GELU_TANH : OP_GELU, call, b);
}
/* softmax and log_softmax normalize the last axis */
static Value softmax_rule(OpSema *s, const Expr *call, Bound *b) { return same_shape(s, OP_SOFTMAX, call, b); }
static Value log_softmax_rule(OpSema *s, const Expr *call, Bound *b) { return same_shape(s, OP_LOG_SOFTMAX, call, b); }

static const ArgSpec leaky_relu_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"alpha", ARG_NUMBER, false, 0.01, NULL}, SPEC_END};
static Value leaky_relu_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    if (!(b->values[1].number >= 0)) {
        diag_error(s->diag, b->spans[1], "alpha of leaky_relu must be zero or positive, got %g", b->values[1].number);
        return value_error();
    }
    Node *n = graph_add(s->graph, OP_LEAKY_RELU, call->span, &x->id, 1, x->shape);
    n->slope = b->values[1].number;
    return tensor_value(n);
}

static const ArgSpec dropout_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"p", ARG_NUMBER, true, 0, NULL}, SPEC_END};
static Value dropout_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    double p = b->values[1].number;
    if (!(p >= 0 && p < 1)) {
        diag_error(s->diag, b->spans[1], "dropout probability must be in [0, 1), got %g", p);
        return value_error();
    }
    Node *n = graph_add(s->graph, OP_DROPOUT, call->span, &x->id, 1, x->shape);
    n->drop_probability = p;
    return tensor_value(n);
}

Value ops_arithmetic_rule(OpSema *s, const Expr *e, Value a, Value b) {
    if (a.kind == VAL_TENSOR && b.kind == VAL_TENSOR) {
        const Node *x = value_node(s, a), *y = value_node(s, b);
        if (e->op == '/') {
            diag_error(s->diag, e->span, "'/' between two tensors is not supported; divide by a constant instead");
            return value_error();
        }
        if (!shape_equal(&x->shape, &y->shape)) {
            diag_error(s->diag, e->span, "'%c' needs tensors of the same shape, got %s and %s", e->op,
                       sema_shape(s, &x->shape), sema_shape(s, &y->shape));
            return value_error();
        }
        int inputs[2] = {x->id, y->id};
        OpKind op = e->op == '+' ? OP_ADD : e->op == '-' ? OP_SUB : OP_MUL;
        return tensor_value(graph_add(s->graph, op, e->span, inputs, 2, x->shape));
    }
    /* tensor with scalar: one affine node x*scale + shift */
    bool tensor_left = a.kind == VAL_TENSOR;
    const Node *x = value_node(s, tensor_left ? a : b);
    double c = tensor_left ? b.number : a.number;
    double scale = 1, shift = 0;
    switch (e->op) {
    case '+': shift = c; break;
    case '-': if (tensor_left) shift = -c; else { scale = -1; shift = c; } break;
    case '*': scale = c; break;
    default:
        if (!tensor_left) {
            diag_error(s->diag, e->span, "dividing a constant by a tensor is not supported");
            return value_error();
        }
        if (c == 0) {
            diag_error(s->diag, e->rhs->span, "division of a tensor by zero");
            return value_error();
        }
        scale = 1 / c;
        break;
    }
    Node *n = graph_add(s->graph, OP_AFFINE, e->span, &x->id, 1, x->shape);
    n->scale = scale;
    n->shift = shift;
    return tensor_value(n);
}

Value ops_negate_rule(OpSema *s, const Expr *e, Value x) {
    Node *n = graph_add(s->graph, OP_AFFINE, e->span, &x.node, 1, value_node(s, x)->shape);
    n->scale = -1;
    return tensor_value(n);
}

/* ---------------------------------------------------------------- backward rules */

static void elementwise_backward(Ad *ad, const Node *n, int dy) {
    const Graph *g = ad_graph(ad);
    const Node *x = graph_node(g, n->inputs[0]);
    switch (n->op) {
    case OP_LEAKY_RELU: /* the sign of x decides */
        ad_accumulate(ad, x->id, ad_node(ad, OP_LEAKY_RELU_GRAD, dy, x->id, x->shape, n)->id);
        break;
    case OP_DROPOUT: /* the same mask, recomputed from the step seed */
        ad_accumulate(ad, x->id, ad_node(ad, OP_DROPOUT_GRAD, dy, -1, x->shape, n)->id);
        break;
    case OP_GELU:
    case OP_GELU_TANH:
    case OP_SILU: { /* each rule needs the forward input x */
        OpKind rule = n->op == OP_GELU ? OP_GELU_GRAD : n->op == OP_GELU_TANH ? OP_GELU_TANH_GRAD : OP_SILU_GRAD;
        ad_accumulate(ad, x->id, ad_node(ad, rule, dy, x->id, x->shape, n)->id);
        break;
    }
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX: {
        /* both rules need only the forward output y */
        OpKind rule = n->op == OP_SOFTMAX ? OP_SOFTMAX_GRAD : OP_LOG_SOFTMAX_GRAD;
        ad_accumulate(ad, x->id, ad_node(ad, rule, dy, n->id, x->shape, n)->id);
        break;
    }
    case OP_RELU:
    case OP_TANH:
    case OP_SIGMOID: {
        /* each rule needs only the forward output y */
        OpKind rule = n->op == OP_RELU ? OP_RELU_GRAD : n->op == OP_TANH ? OP_TANH_GRAD : OP_SIGMOID_GRAD;
        ad_accumulate(ad, x->id, ad_node(ad, rule, dy, n->id, x->shape, n)->id);
        break;
    }
    case OP_ADD:
    case OP_SUB:
        ad_accumulate(ad, n->inputs[0], dy);
        if (n->op == OP_ADD) {
            ad_accumulate(ad, n->inputs[1], dy);
        } else if (graph_node(g, n->inputs[1])->needs_grad) {
            Node *neg = ad_node(ad, OP_AFFINE, dy, -1, n->shape, n);
            neg->scale = -1;
            ad_accumulate(ad, n->inputs[1], neg->id);
        }
        break;
    case OP_MUL: /* d(a*b) = dy*b, dy*a */
        if (graph_node(g, n->inputs[0])->needs_grad)
            ad_accumulate(ad, n->inputs[0], ad_node(ad, OP_MUL, dy, n->inputs[1], n->shape, n)->id);
        if (graph_node(g, n->inputs[1])->needs_grad)
            ad_accumulate(ad, n->inputs[1], ad_node(ad, OP_MUL, dy, n->inputs[0], n->shape, n)->id);
        break;
    case OP_AFFINE: {
        Node *d = ad_node(ad, OP_AFFINE, dy, -1, n->shape, n);
        d->scale = n->scale;
        ad_accumulate(ad, x->id, d->id);
        break;
    }
    default:
        break;
    }
}

/* ---------------------------------------------------------------- kernels */

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

/* A constant shaped like x: the scalar, or a vector of it when x is a vector. */
static LLVMValueRef cg_const_like(Cg *cg, LLVMValueRef x, double v) {
    LLVMTypeRef type = LLVMTypeOf(x);
    if (LLVMGetTypeKind(type) != LLVMVectorTypeKind) return cg_const(cg, v);
    return cg_splat(cg, cg_const(cg, v), LLVMGetVectorSize(type)); /* folds to a constant */
}

/* exp(x) in arithmetic LLVM can vectorize (a call to expf, tanhf or erff stays one element at
 * a time): Cephes' expf — x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, 2^n
 * put into the exponent bits — within 2 ulp for float32. The float64 twin (gradcheck) keeps
 * libm's exp, so its forward and backward stay exact. Without reassociation flags: the
 * two-part ln2 reduction must run as written. */
LLVMValueRef cg_exp_fast(Cg *cg, LLVMValueRef x) {
    if (cg->f64) return cg_math(cg, "llvm.exp", x);
    LLVMBuilderRef b = cg->b;
    LLVMTypeRef type = LLVMTypeOf(x);
    unsigned lanes = LLVMGetTypeKind(type) == LLVMVectorTypeKind ? LLVMGetVectorSize(type) : 0;
#define K(v) cg_const_like(cg, x, v)
    LLVMValueRef hi = K(88.3762626647949), lo = K(-87.3365478515625);
    x = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, hi, ""), hi, x, "");
    x = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, lo, ""), lo, x, "");
    LLVMValueRef n = cg_math(cg, "llvm.floor", LLVMBuildFAdd(b, LLVMBuildFMul(b, x, K(1.44269504088896341), ""), K(0.5), ""));
    LLVMValueRef r = LLVMBuildFSub(b, x, LLVMBuildFMul(b, n, K(0.693359375), ""), "");
    r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, n, K(-2.12194440e-4), ""), "");
    static const double coef[] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
                                  5.0000001201e-1};
    LLVMValueRef p = K(coef[0]);
    for (int i = 1; i < 6; i++) p = LLVMBuildFAdd(b, LLVMBuildFMul(b, p, r, ""), K(coef[i]), "");
    p = LLVMBuildFAdd(b, LLVMBuildFAdd(b, LLVMBuildFMul(b, p, LLVMBuildFMul(b, r, r, ""), ""), r, ""), K(1), "");
#undef K
    LLVMTypeRef int_type = lanes ? LLVMVectorType(cg->i32, lanes) : cg->i32;
    LLVMValueRef c127 = LLVMConstInt(cg->i32, 127, 0), c23 = LLVMConstInt(cg->i32, 23, 0);
    if (lanes) {
        c127 = cg_splat(cg, c127, lanes);
        c23 = cg_splat(cg, c23, lanes);
    }
    LLVMValueRef bits = LLVMBuildShl(b, LLVMBuildAdd(b, LLVMBuildFPToSI(b, n, int_type, ""), c127, ""), c23, "");
    return LLVMBuildFMul(b, p, LLVMBuildBitCast(b, bits, type, ""), "");
}

/* tanh(u) = 1 - 2 / (exp(2u) + 1): vectorizable, accurate to ~1e-7 absolute (what gelu needs);
 * libm's tanh in the float64 twin. */
LLVMValueRef cg_tanh_fast(Cg *cg, LLVMValueRef u) {
    if (cg->f64) return cg_libm(cg, "tanh", u);
    LLVMValueRef e = cg_exp_fast(cg, cg_fmul(cg, cg_const(cg, 2), u));
    return cg_fsub(cg, cg_const(cg, 1), cg_fdiv(cg, cg_const(cg, 2), cg_fadd(cg, e, cg_const(cg, 1))));
}

/* sigmoid(x) = 1 / (1 + exp(-x)) on cg_exp_fast (libm's exp in the float64 twin). */
LLVMValueRef cg_sigmoid_fast(Cg *cg, LLVMValueRef x) {
    return cg_fdiv(cg, cg_const(cg, 1), cg_fadd(cg, cg_const(cg, 1), cg_exp_fast(cg, LLVMBuildFNeg(cg->b, x, ""))));
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

typedef struct ElementwiseTask {
    const Node *node;
    bool seeded;
} ElementwiseTask;

/* values: out, a, b (or a), seed (or 0). Examples [begin, end): element i of the batch's
 * flattened buffers. */
static void elementwise_examples(Cg *cg, LLVMValueRef *values, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ElementwiseTask *t = user;
    const Node *node = t->node;
    bool seeded = t->seeded;
    LLVMValueRef out = values[0], a = values[1], b = node->input_count > 1 ? values[2] : NULL;
    LLVMValueRef size = cg_i64(cg, node->size);
    CgLoop i = cg_loop_begin(cg, cg_mul(cg, begin, size), cg_mul(cg, end, size), "i");
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
        double slope = graph_forward_of(cg->g, node)->slope;
        v = LLVMBuildSelect(cg->b, positive, x, cg_fmul(cg, x, cg_const(cg, slope)), "");
        break;
    }
    case OP_DROPOUT:
    case OP_DROPOUT_GRAD: {
        if (!seeded) { v = x; break; } /* inference: identity */
        const Node *layer = node->op == OP_DROPOUT ? node : graph_node(cg->g, node->forward);
        LLVMValueRef seed = values[3];
        /* the element's index in the global batch: masks do not depend on how it is split */
        LLVMValueRef global = cg_add(cg, i.iv, cg_mul(cg, cg_batch_first(cg), cg_i64(cg, node->size)));
        LLVMValueRef keep = cg_dropout_keep(cg, seed, layer->id, global, layer->drop_probability);
        v = LLVMBuildSelect(cg->b, keep, cg_fmul(cg, x, cg_const(cg, 1.0 / (1.0 - layer->drop_probability))), cg_const(cg, 0), "");
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
    case OP_GELU_TANH:
    case OP_GELU_TANH_GRAD: {
        LLVMValueRef in = node->op == OP_GELU_TANH ? x : y;
        const double c = 0.7978845608028654, k = 0.044715; /* c = sqrt(2/pi) */
        LLVMValueRef in2 = cg_fmul(cg, in, in);
        LLVMValueRef u = cg_fmul(cg, cg_const(cg, c), cg_fadd(cg, in, cg_fmul(cg, cg_const(cg, k), cg_fmul(cg, in2, in))));
        LLVMValueRef th = cg_tanh_fast(cg, u);
        LLVMValueRef half_1pt = cg_fmul(cg, cg_const(cg, 0.5), cg_fadd(cg, cg_const(cg, 1), th));
        if (node->op == OP_GELU_TANH) {
            v = cg_fmul(cg, in, half_1pt);
        } else {
            LLVMValueRef du = cg_fmul(cg, cg_const(cg, c), cg_fadd(cg, cg_const(cg, 1), cg_fmul(cg, cg_const(cg, 3 * k), in2)));
            LLVMValueRef dt = cg_fmul(cg, cg_fsub(cg, cg_const(cg, 1), cg_fmul(cg, th, th)), du);
            v = cg_fmul(cg, x, cg_fadd(cg, half_1pt, cg_fmul(cg, cg_fmul(cg, cg_const(cg, 0.5), in), dt)));
        }
        break;
    }
    case OP_SILU:
    case OP_SILU_GRAD: {
        LLVMValueRef in = node->op == OP_SILU ? x : y;
        LLVMValueRef sig = cg_sigmoid_fast(cg, in);
        if (node->op == OP_SILU)
            v = cg_fmul(cg, in, sig);
        else
            v = cg_fmul(cg, x, cg_fmul(cg, sig, cg_fadd(cg, cg_const(cg, 1), cg_fmul(cg, in, cg_fsub(cg, cg_const(cg, 1), sig)))));
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
}

static LLVMValueRef elementwise_kernel(Cg *cg, const Node *node) {
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    LLVMValueRef seed = cg_arg_seed(cg);
    LLVMValueRef values[4] = {cg_arg_out(cg), cg_arg_in(cg, 0), cg_arg_in(cg, node->input_count > 1 ? 1 : 0),
                              seed ? seed : cg_i64(cg, 0)};
    ElementwiseTask task = {node, seed != NULL};
    cg_parallel_for(cg, cg_arg_n(cg), values, 4, node->size < CG_EXAMPLE_PARALLEL_MIN, elementwise_examples, &task);
    cg_kernel_end(cg);
    return fn;
}

/* The one softmax of the compiler: softmax/log_softmax here, cross_entropy and its gradient
 * (loss.c) and the probabilities `predict` prints (codegen.c) are built from these. */
/* Rows run a target vector at a time (a masked last one). The row's max does not depend on the
 * order; its sum is lane-wise partial sums added in a fixed tree, the same for every row length
 * and thread count. The float64 twin (gradcheck) keeps one element at a time and libm's exp. */
static unsigned cg_row_lanes(const Cg *cg) { return (unsigned)cg->vector_bytes / 4u; }

/* Lane k of v combined with lane k + half, halving until one lane is left. */
static LLVMValueRef cg_lanes_fold(Cg *cg, LLVMValueRef v, unsigned lanes, bool max) {
    for (unsigned half = lanes / 2; half >= 1; half /= 2) {
        LLVMValueRef idx[64];
        for (unsigned i = 0; i < lanes; i++) idx[i] = LLVMConstInt(cg->i32, i + half < lanes ? i + half : i, 0);
        LLVMValueRef hi = LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(idx, lanes), "");
        v = max ? cg_max(cg, v, hi) : cg_fadd(cg, v, hi);
    }
    return LLVMBuildExtractElement(cg->b, v, LLVMConstInt(cg->i32, 0, 0), "");
}

/* The vector loop of a row: full vectors over [0, len - len % lanes), then one masked vector. */
typedef struct RowVectors {
    LLVMValueRef full_end; /* elements covered by whole vectors */
    LLVMValueRef tail;     /* lanes in the last, masked vector (0: none) */
} RowVectors;

static RowVectors cg_row_vectors(Cg *cg, LLVMValueRef len, unsigned lanes) {
    LLVMValueRef full = LLVMBuildAnd(cg->b, len, cg_i64(cg, -(int64_t)lanes), "");
    return (RowVectors){full, LLVMBuildNSWSub(cg->b, len, full, "")};
}

LLVMValueRef cg_row_max(Cg *cg, LLVMValueRef x, LLVMValueRef base, LLVMValueRef len, LLVMValueRef var) {
    if (cg->f64) {
        LLVMBuildStore(cg->b, cg_load(cg, x, base), var);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 1), len, "c");
        LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, cg->elem, var, ""), cg_load(cg, x, cg_add(cg, base, c.iv))), var);
        cg_loop_end(cg, &c);
        return LLVMBuildLoad2(cg->b, cg->elem, var, "");
    }
    unsigned lanes = cg_row_lanes(cg);
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    LLVMValueRef acc = cg_var(cg, vec, "max");
    /* every lane starts at the row's first element, so masked-off lanes never win */
    LLVMBuildStore(cg->b, cg_splat(cg, cg_load(cg, x, base), lanes), acc);
    RowVectors rv = cg_row_vectors(cg, len, lanes);
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), LLVMBuildSDiv(cg->b, rv.full_end, cg_i64(cg, lanes), ""), "c");
    LLVMValueRef v = cg_vload_full(cg, x, cg_add(cg, base, cg_mul(cg, c.iv, cg_i64(cg, lanes))), lanes);
    LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, vec, acc, ""), v), acc);
    c.no_unroll = true;
    cg_loop_end(cg, &c);
    LLVMValueRef mask = cg_lanes_below(cg, rv.tail, lanes);
    LLVMValueRef t = cg_vload_masked(cg, x, cg_add(cg, base, rv.full_end), lanes, mask);
    LLVMValueRef old = LLVMBuildLoad2(cg->b, vec, acc, "");
    LLVMValueRef m = LLVMBuildSelect(cg->b, mask, cg_max(cg, old, t), old, "");
    (void)var;
    return cg_lanes_fold(cg, m, lanes, true);
}

/* The strict-greater scan itself: the float64 twin's, and the float32 rows with a NaN. */
static LLVMValueRef cg_row_argmax_scan(Cg *cg, LLVMValueRef x, LLVMValueRef base, LLVMValueRef len, LLVMValueRef max_var,
                                       LLVMValueRef best_var) {
    LLVMBuildStore(cg->b, cg_load(cg, x, base), max_var);
    LLVMBuildStore(cg->b, cg_i64(cg, 0), best_var);
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 1), len, "c");
    LLVMValueRef v = cg_load(cg, x, cg_add(cg, base, c.iv));
    LLVMValueRef better = LLVMBuildFCmp(cg->b, LLVMRealOGT, v, LLVMBuildLoad2(cg->b, cg->elem, max_var, ""), "");
    LLVMBuildStore(cg->b, LLVMBuildSelect(cg->b, better, v, LLVMBuildLoad2(cg->b, cg->elem, max_var, ""), ""), max_var);
    LLVMBuildStore(cg->b, LLVMBuildSelect(cg->b, better, c.iv, LLVMBuildLoad2(cg->b, cg->i64, best_var, ""), ""), best_var);
    cg_loop_end(cg, &c);
    return LLVMBuildLoad2(cg->b, cg->i64, best_var, "");
}

/* float32: the row's max (cg_row_max), then per vector the first lane equal to it (cttz of the
 * comparison's bits), the least of those; a chain of dependent compare-selects per element
 * before (the text GPT's accuracy over 2048 rows of 256 took 0.59 ms). The same index: the
 * first of the greatest. A row holding a NaN takes the scan. */
LLVMValueRef cg_row_argmax(Cg *cg, LLVMValueRef x, LLVMValueRef base, LLVMValueRef len, LLVMValueRef max_var, LLVMValueRef best_var) {
    if (cg->f64) return cg_row_argmax_scan(cg, x, base, len, max_var, best_var);
    unsigned lanes = cg_row_lanes(cg);
    LLVMTypeRef bits_type = LLVMIntTypeInContext(cg->ctx, lanes);
    LLVMValueRef max = cg_row_max(cg, x, base, len, max_var), m = cg_splat(cg, max, lanes);
    LLVMBuildStore(cg->b, len, best_var);
    LLVMValueRef nan_var = cg_var(cg, cg->i1, "nan");
    LLVMBuildStore(cg->b, LLVMConstInt(cg->i1, 0, 0), nan_var);
    RowVectors rv = cg_row_vectors(cg, len, lanes);
    /* the first lane of v equal to the max, as an index of the row, or len */
    LLVMTypeRef cttz_types[1] = {bits_type};
    unsigned cttz_id = LLVMLookupIntrinsicID("llvm.cttz", 9);
    LLVMValueRef cttz = LLVMGetIntrinsicDeclaration(cg->mod, cttz_id, cttz_types, 1);
    LLVMTypeRef cttz_type = LLVMIntrinsicGetType(cg->ctx, cttz_id, cttz_types, 1);
    for (int part = 0; part < 2; part++) {
        LLVMValueRef first, v, mask = NULL;
        CgLoop c = {0};
        if (part == 0) {
            c = cg_loop_begin(cg, cg_i64(cg, 0), LLVMBuildSDiv(cg->b, rv.full_end, cg_i64(cg, lanes), ""), "c");
            first = cg_mul(cg, c.iv, cg_i64(cg, lanes));
            v = cg_vload_full(cg, x, cg_add(cg, base, first), lanes);
        } else {
            first = rv.full_end;
            mask = cg_lanes_below(cg, rv.tail, lanes);
            v = cg_vload_masked(cg, x, cg_add(cg, base, first), lanes, mask);
        }
        LLVMValueRef equal = LLVMBuildFCmp(cg->b, LLVMRealOEQ, v, m, "");
        LLVMValueRef nans = LLVMBuildFCmp(cg->b, LLVMRealUNO, v, v, "");
        if (mask) equal = LLVMBuildAnd(cg->b, equal, mask, ""), nans = LLVMBuildAnd(cg->b, nans, mask, "");
        LLVMValueRef any_nan = LLVMBuildICmp(cg->b, LLVMIntNE, LLVMBuildBitCast(cg->b, nans, bits_type, ""), LLVMConstNull(bits_type), "");
        LLVMBuildStore(cg->b, LLVMBuildOr(cg->b, LLVMBuildLoad2(cg->b, cg->i1, nan_var, ""), any_nan, ""), nan_var);
        LLVMValueRef bits = LLVMBuildBitCast(cg->b, equal, bits_type, "");
        LLVMValueRef args[2] = {bits, LLVMConstInt(cg->i1, 0, 0)};
        LLVMValueRef lane = LLVMBuildZExt(cg->b, LLVMBuildCall2(cg->b, cttz_type, cttz, args, 2, ""), cg->i64, "");
        LLVMValueRef found = LLVMBuildICmp(cg->b, LLVMIntNE, bits, LLVMConstNull(bits_type), "");
        LLVMValueRef at = LLVMBuildSelect(cg->b, found, cg_add(cg, first, lane), len, "");
        LLVMValueRef best = LLVMBuildLoad2(cg->b, cg->i64, best_var, "");
        LLVMBuildStore(cg->b, cg_min_i64(cg, best, at), best_var);
        if (part == 0) cg_loop_end(cg, &c);
    }
    /* a row with a NaN: the vector max depends on where it stands; the scan decides */
    LLVMValueRef scan = LLVMBuildLoad2(cg->b, cg->i1, nan_var, "");
    LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "argmax_scan");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "argmax_done");
    LLVMBuildCondBr(cg->b, scan, slow, done);
    LLVMPositionBuilderAtEnd(cg->b, slow);
    cg_row_argmax_scan(cg, x, base, len, max_var, best_var);
    LLVMBuildBr(cg->b, done);
    LLVMPositionBuilderAtEnd(cg->b, done);
    return LLVMBuildLoad2(cg->b, cg->i64, best_var, "");
}

LLVMValueRef cg_row_sumexp(Cg *cg, LLVMValueRef x, LLVMValueRef base, LLVMValueRef len, LLVMValueRef max, LLVMValueRef var,
                           LLVMValueRef keep) {
    if (cg->f64) {
        LLVMBuildStore(cg->b, cg_const(cg, 0), var);
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), len, "c");
        LLVMValueRef e = cg_math(cg, "llvm.exp", cg_fsub(cg, cg_load(cg, x, cg_add(cg, base, c.iv)), max));
        if (keep) cg_store(cg, e, keep, cg_add(cg, base, c.iv));
        LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, var, ""), e), var);
        cg_loop_end(cg, &c);
        return LLVMBuildLoad2(cg->b, cg->elem, var, "");
    }
    unsigned lanes = cg_row_lanes(cg);
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    LLVMValueRef acc = cg_var(cg, vec, "sum");
    LLVMBuildStore(cg->b, LLVMConstNull(vec), acc);
    LLVMValueRef maxv = cg_splat(cg, max, lanes);
    RowVectors rv = cg_row_vectors(cg, len, lanes);
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), LLVMBuildSDiv(cg->b, rv.full_end, cg_i64(cg, lanes), ""), "c");
    LLVMValueRef at = cg_add(cg, base, cg_mul(cg, c.iv, cg_i64(cg, lanes)));
    LLVMValueRef e = cg_exp_fast(cg, cg_fsub(cg, cg_vload_full(cg, x, at, lanes), maxv));
    if (keep) cg_vstore_full(cg, e, keep, at);
    LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, vec, acc, ""), e), acc);
    c.no_unroll = true;
    cg_loop_end(cg, &c);
    LLVMValueRef mask = cg_lanes_below(cg, rv.tail, lanes);
    LLVMValueRef at_tail = cg_add(cg, base, rv.full_end);
    LLVMValueRef et = cg_exp_fast(cg, cg_fsub(cg, cg_vload_masked(cg, x, at_tail, lanes, mask), maxv));
    et = LLVMBuildSelect(cg->b, mask, et, LLVMConstNull(vec), "");
    if (keep) cg_vstore_masked(cg, et, keep, at_tail, mask);
    LLVMValueRef sum = cg_fadd(cg, LLVMBuildLoad2(cg->b, vec, acc, ""), et);
    (void)var;
    return cg_lanes_fold(cg, sum, lanes, false);
}

void cg_row_softmax(Cg *cg, LLVMValueRef y, LLVMValueRef x, LLVMValueRef base, LLVMValueRef len, LLVMValueRef max_var,
                    LLVMValueRef sum_var) {
    LLVMValueRef max = cg_row_max(cg, x, base, len, max_var);
    /* the exps are kept in y and scaled there: one exp per element */
    LLVMValueRef inv_sum = cg_fdiv(cg, cg_const(cg, 1), cg_row_sumexp(cg, x, base, len, max, sum_var, y));
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), len, "c");
    LLVMValueRef at = cg_add(cg, base, c.iv);
    cg_store(cg, cg_fmul(cg, cg_load(cg, y, at), inv_sum), y, at);
    cg_loop_end(cg, &c);
}

static LLVMValueRef rowwise_kernel(Cg *cg, const Node *node) {
    int64_t L = node->shape.dims[node->shape.rank - 1];
    bool grad = node->op == OP_SOFTMAX_GRAD || node->op == OP_LOG_SOFTMAX_GRAD;
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    LLVMValueRef out = cg_arg_out(cg), a = cg_arg_in(cg, 0), y = cg_arg_in(cg, 1); /* y: the gradients' forward output */
    LLVMValueRef n = cg_arg_n(cg);
    LLVMValueRef rows = cg_mul(cg, n, cg_i64(cg, node->size / L));
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc"), max_var = cg_var(cg, cg->elem, "max");
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), rows, "r");
    LLVMValueRef base = cg_mul(cg, r.iv, cg_i64(cg, L));
    LLVMValueRef shift = NULL, sum;
    if (!grad) {
        shift = cg_row_max(cg, a, base, cg_i64(cg, L), max_var);
        sum = cg_row_sumexp(cg, a, base, cg_i64(cg, L), shift, acc, NULL);
    } else {
        /* the row's reduction: sum(dy y) or sum(dy) */
        LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
        CgLoop c1 = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, L), "c");
        LLVMValueRef at1 = cg_add(cg, base, c1.iv);
        LLVMValueRef term = node->op == OP_SOFTMAX_GRAD ? cg_fmul(cg, cg_load(cg, a, at1), cg_load(cg, y, at1)) : cg_load(cg, a, at1);
        LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), term), acc);
        cg_loop_end(cg, &c1);
        sum = LLVMBuildLoad2(cg->b, cg->elem, acc, "");
    }
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


static LLVMValueRef elementwise_family_kernel(Cg *cg, const Node *node) {
    switch (node->op) {
    case OP_SOFTMAX: case OP_SOFTMAX_GRAD: case OP_LOG_SOFTMAX: case OP_LOG_SOFTMAX_GRAD: return rowwise_kernel(cg, node);
    default: return elementwise_kernel(cg, node);
    }
}

/* ---------------------------------------------------------------- costs and the table entry */

/* one FLOP per element each way (exp, erf and tanh count as one) */
static int64_t elementwise_flops(const Graph *g, const Node *n, int64_t *backward) {
    (void)g;
    *backward = n->size;
    return n->size;
}

static const char *elementwise_label(const Node *n) {
    return n->op == OP_AFFINE ? "scale/shift" : n->op == OP_GELU_TANH ? "gelu(tanh)" : NULL;
}

static const OpSurface elementwise_surface[] = {
    {"leaky_relu", leaky_relu_spec, leaky_relu_rule, OPS_LAYER, "max(x, slope * x), elementwise."},
    {"dropout", dropout_spec, dropout_rule, OPS_LAYER, "Zeroes each element with probability p while training (scaled by 1/(1-p)); identity otherwise."},
    {"gelu", gelu_spec, gelu_rule, OPS_LAYER, "Gaussian error linear unit, x * Phi(x); approximate=\"tanh\" for the tanh form."},
    {"silu", unary_spec, silu_rule, OPS_LAYER, "x * sigmoid(x), elementwise (swish)."},
    {"softmax", unary_spec, softmax_rule, OPS_LAYER, "Softmax over the last axis."},
    {"log_softmax", unary_spec, log_softmax_rule, OPS_LAYER, "Log of the softmax over the last axis."},
    {"relu", unary_spec, relu_rule, OPS_LAYER, "max(x, 0), elementwise."},
    {"tanh", unary_spec, tanh_rule, OPS_LAYER, "Hyperbolic tangent, elementwise."},
    {"sigmoid", unary_spec, sigmoid_rule, OPS_LAYER, "Logistic sigmoid 1 / (1 + exp(-x)), elementwise."},
    {NULL, NULL, NULL, 0, NULL},
};
static const OpKind elementwise_kinds[] = {
    OP_RELU, OP_TANH, OP_SIGMOID, OP_ADD, OP_SUB, OP_MUL, OP_AFFINE, OP_RELU_GRAD, OP_TANH_GRAD, OP_SIGMOID_GRAD,
    OP_LEAKY_RELU, OP_LEAKY_RELU_GRAD, OP_DROPOUT, OP_DROPOUT_GRAD, OP_GELU, OP_GELU_GRAD,
    OP_SOFTMAX, OP_SOFTMAX_GRAD, OP_LOG_SOFTMAX, OP_LOG_SOFTMAX_GRAD, OP_GELU_TANH, OP_GELU_TANH_GRAD, OP_SILU, OP_SILU_GRAD,
    OP_COUNT,
};
/* relu and sigmoid have vector forms inside the GEMM; tanh runs as a pass over the output.
 * He initialization for the weights feeding relu, leaky_relu and gelu (the language's rule). */
static const OpKindFlags elementwise_flags[] = {
    {OP_RELU, OPK_FUSABLE_ACTIVATION | OPK_HE_INIT}, {OP_TANH, OPK_FUSABLE_ACTIVATION},
    {OP_SIGMOID, OPK_FUSABLE_ACTIVATION | OPK_SIGMOID}, {OP_SOFTMAX, OPK_SOFTMAX},
    {OP_LEAKY_RELU, OPK_HE_INIT}, {OP_GELU, OPK_HE_INIT}, {OP_GELU_TANH, OPK_HE_INIT},
    {OP_DROPOUT, OPK_INFERENCE_VARIANT | OPK_SEEDED | OPK_GLOBAL_BATCH}, {OP_DROPOUT_GRAD, OPK_SEEDED | OPK_GLOBAL_BATCH},
    {OP_COUNT, 0},
};

/* ---------------------------------------------------------------- ONNX */

/* y = scale * x, or x itself when scale is 1 (a new value named after n's `what`). */
static const char *elementwise_onnx_mul(struct OnnxBuilder *b, const Node *n, const char *x, double scale, const char *what) {
    const char *y = onnx_temp(b, n, what);
    onnx_op2(b, "Mul", y, x, onnx_scalar(b, onnx_temp(b, n, "c"), scale));
    return y;
}

/* Opset 17 has no Gelu: both forms are spelled out with Erf / Tanh, as the kernels compute them. */
static bool elementwise_onnx(struct OnnxBuilder *b, const Graph *g, const Node *n) {
    (void)g;
    const char *y = onnx_value(b, n->id), *x = onnx_value(b, n->inputs[0]);
    const char *one = NULL;
    switch (n->op) {
    case OP_RELU: onnx_op1(b, "Relu", y, x); return true;
    case OP_TANH: onnx_op1(b, "Tanh", y, x); return true;
    case OP_SIGMOID: onnx_op1(b, "Sigmoid", y, x); return true;
    case OP_ADD: onnx_op2(b, "Add", y, x, onnx_value(b, n->inputs[1])); return true;
    case OP_SUB: onnx_op2(b, "Sub", y, x, onnx_value(b, n->inputs[1])); return true;
    case OP_MUL: onnx_op2(b, "Mul", y, x, onnx_value(b, n->inputs[1])); return true;
    case OP_DROPOUT: onnx_op1(b, "Identity", y, x); return true; /* inference: a copy */
    case OP_LEAKY_RELU: onnx_attr_float(b, onnx_op1(b, "LeakyRelu", y, x), "alpha", n->slope); return true;
    case OP_SOFTMAX: onnx_attr_int(b, onnx_op1(b, "Softmax", y, x), "axis", -1); return true;
    case OP_LOG_SOFTMAX: onnx_attr_int(b, onnx_op1(b, "LogSoftmax", y, x), "axis", -1); return true;
    case OP_SILU: {
        const char *s = onnx_temp(b, n, "sigmoid");
        onnx_op1(b, "Sigmoid", s, x);
        onnx_op2(b, "Mul", y, x, s);
        return true;
    }
    case OP_AFFINE: {
        const char *scaled = n->scale != 1 ? elementwise_onnx_mul(b, n, x, n->scale, "scaled") : x;
        if (n->shift != 0) onnx_op2(b, "Add", y, scaled, onnx_scalar(b, onnx_temp(b, n, "shift"), n->shift));
        else onnx_op1(b, "Identity", y, scaled);
        return true;
    }
    case OP_GELU: { /* x * (1 + erf(x / sqrt 2)) / 2 */
        const char *e = onnx_temp(b, n, "erf");
        onnx_op1(b, "Erf", e, elementwise_onnx_mul(b, n, x, M_SQRT1_2, "x_over_sqrt2"));
        one = onnx_temp(b, n, "one_plus_erf");
        onnx_op2(b, "Add", one, e, onnx_scalar(b, onnx_temp(b, n, "one"), 1.0));
        break;
    }
    case OP_GELU_TANH: { /* x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2 */
        const char *x2 = onnx_temp(b, n, "x2"), *x3 = onnx_temp(b, n, "x3"), *inner = onnx_temp(b, n, "inner");
        onnx_op2(b, "Mul", x2, x, x);
        onnx_op2(b, "Mul", x3, x2, x);
        onnx_op2(b, "Add", inner, x, elementwise_onnx_mul(b, n, x3, 0.044715, "cubic"));
        const char *t = onnx_temp(b, n, "tanh");
        onnx_op1(b, "Tanh", t, elementwise_onnx_mul(b, n, inner, sqrt(2.0 / M_PI), "arg"));
        one = onnx_temp(b, n, "one_plus_tanh");
        onnx_op2(b, "Add", one, t, onnx_scalar(b, onnx_temp(b, n, "one"), 1.0));
        break;
    }
    default: return false;
    }
    const char *half = onnx_temp(b, n, "half_x");
    onnx_op2(b, "Mul", half, x, onnx_scalar(b, onnx_temp(b, n, "half"), 0.5));
    onnx_op2(b, "Mul", y, half, one);
    return true;
}

const OpFamily ops_elementwise = {
    .name = "elementwise",
    .surface = elementwise_surface,
    .kinds = elementwise_kinds,
    .backward = elementwise_backward,
    .kernel = elementwise_family_kernel,
    .flops = elementwise_flops,
    .label = elementwise_label,
    .flags = elementwise_flags,
    .onnx = elementwise_onnx,
};
