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
 *   flatten, reshape        views: never lowered
 * The dropout mask is a counter-based hash of (step seed, layer, element index): nothing is
 * stored between forward and backward, and the mask is the same in float32 and float64. */
#include <math.h>
#include <stdio.h>

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
    char name[96];
    bool seeded = node->op == OP_DROPOUT_GRAD || (node->op == OP_DROPOUT && cg->training);
    snprintf(name, sizeof name, "k%d_%s%s_%s", node->id, graph_op_names[node->op],
             node->op == OP_DROPOUT && !cg->training ? "_eval" : "", cg->f64 ? "f64" : "f32");
    int inputs = node->input_count;
    LLVMValueRef fn = seeded ? cg_kernel_begin_seeded(cg, name, 1 + inputs) : cg_kernel_begin(cg, name, 1 + inputs);
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
        LLVMValueRef keep = cg_dropout_keep(cg, seed, layer->id, i.iv, layer->alpha);
        v = LLVMBuildSelect(cg->b, keep, cg_fmul(cg, x, cg_const(cg, 1.0 / (1.0 - layer->alpha))), cg_const(cg, 0), "");
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
