/* cg_elementwise.c — element-wise kernels over n * size elements.
 *
 *   relu/tanh/sigmoid       (y, x)         y = act(x)
 *   relu_grad               (dx, dy, y)    dx = y > 0 ? dy : 0
 *   tanh_grad               (dx, dy, y)    dx = dy (1 - y^2)
 *   sigmoid_grad            (dx, dy, y)    dx = dy y (1 - y)
 *   add/sub/mul             (y, a, b)
 *   affine                  (y, x)         y = x * scale + shift
 *   flatten                 a view: never lowered */
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

LLVMValueRef cg_elementwise_kernel(Cg *cg, const Node *node) {
    char name[96];
    snprintf(name, sizeof name, "k%d_%s_%s", node->id, graph_op_names[node->op], cg->f64 ? "f64" : "f32");
    int inputs = node->input_count;
    LLVMValueRef fn = cg_kernel_begin(cg, name, 1 + inputs);
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
