/* cg_dense.c — dense (fully connected) kernels, forward and backward.
 *
 * Legend: R = rows = n * positions (dense over [t,k] treats every position as a row),
 *         K = input features, N = output units. Weight W is [N,K] (PyTorch's layout).
 *
 *   dense     (y[R,N], x[R,K], W[N,K], b[N]?)   y = act(x W^T + b)
 *   dense_dx  (dx[R,K], dy[R,N], W[N,K])        dx = dy W
 *   dense_dw  (dW[N,K], dy[R,N], x[R,K])        dW = dy^T x
 *   dense_db  (db[N], dy[R,N])                  db = sum_r dy[r]
 *
 * Loop orders keep the innermost loop contiguous in memory so LLVM vectorizes it: a dot
 * product over K for the forward pass, axpy updates over K for both backward products. */
#include <stdio.h>

#include "cg.h"

/* y[r,o] = act(b[o] + sum_k x[r,k] W[o,k]) */
static void cg_dense_forward(Cg *cg, const Node *node, int64_t K) {
    int64_t N = node->units;
    LLVMValueRef y = LLVMGetParam(cg->fn, 0), x = LLVMGetParam(cg->fn, 1), w = LLVMGetParam(cg->fn, 2);
    bool has_bias = node->bias >= 0;
    LLVMValueRef bias = has_bias ? LLVMGetParam(cg->fn, 3) : NULL;
    LLVMValueRef n = LLVMGetParam(cg->fn, has_bias ? 4 : 3);
    LLVMValueRef rows = cg_mul(cg, n, cg_i64(cg, node->positions));
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc");
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), rows, "r");
    LLVMValueRef x_row = cg_mul(cg, r.iv, cg_i64(cg, K));
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, N), "o");
    LLVMValueRef w_row = cg_mul(cg, o.iv, cg_i64(cg, K));
    LLVMBuildStore(cg->b, has_bias ? cg_load(cg, bias, o.iv) : cg_const(cg, 0), acc);
    CgLoop k = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, K), "k");
    LLVMValueRef prod = cg_fmul(cg, cg_load(cg, x, cg_add(cg, x_row, k.iv)), cg_load(cg, w, cg_add(cg, w_row, k.iv)));
    LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), prod), acc);
    cg_loop_end(cg, &k);
    LLVMValueRef value = LLVMBuildLoad2(cg->b, cg->elem, acc, "");
    if (node->fused_act != OP_INPUT) value = cg_activation(cg, node->fused_act, value);
    cg_store(cg, value, y, cg_add(cg, cg_mul(cg, r.iv, cg_i64(cg, N)), o.iv));
    cg_loop_end(cg, &o);
    cg_loop_end(cg, &r);
}

/* dx[r,:] = sum_o dy[r,o] W[o,:] */
static void cg_dense_dx(Cg *cg, const Node *node, int64_t K) {
    int64_t N = node->units;
    LLVMValueRef dx = LLVMGetParam(cg->fn, 0), dy = LLVMGetParam(cg->fn, 1), w = LLVMGetParam(cg->fn, 2);
    LLVMValueRef n = LLVMGetParam(cg->fn, 3);
    LLVMValueRef rows = cg_mul(cg, n, cg_i64(cg, node->positions));
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), rows, "r");
    LLVMValueRef dx_row = cg_mul(cg, r.iv, cg_i64(cg, K));
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, K), "z");
    cg_store(cg, cg_const(cg, 0), dx, cg_add(cg, dx_row, z.iv));
    cg_loop_end(cg, &z);
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, N), "o");
    LLVMValueRef a = cg_load(cg, dy, cg_add(cg, cg_mul(cg, r.iv, cg_i64(cg, N)), o.iv));
    LLVMValueRef w_row = cg_mul(cg, o.iv, cg_i64(cg, K));
    CgLoop k = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, K), "k");
    LLVMValueRef at = cg_add(cg, dx_row, k.iv);
    cg_store(cg, cg_fadd(cg, cg_load(cg, dx, at), cg_fmul(cg, a, cg_load(cg, w, cg_add(cg, w_row, k.iv)))), dx, at);
    cg_loop_end(cg, &k);
    cg_loop_end(cg, &o);
    cg_loop_end(cg, &r);
}

/* dW[o,:] = scale * sum_r dy[r,o] x[r,:]   (scale is 1 except in fault-injection builds) */
static void cg_dense_dw(Cg *cg, const Node *node, int64_t K) {
    int64_t N = node->units;
    LLVMValueRef dw = LLVMGetParam(cg->fn, 0), dy = LLVMGetParam(cg->fn, 1), x = LLVMGetParam(cg->fn, 2);
    LLVMValueRef n = LLVMGetParam(cg->fn, 3);
    LLVMValueRef rows = cg_mul(cg, n, cg_i64(cg, node->positions));
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, N), "o");
    LLVMValueRef w_row = cg_mul(cg, o.iv, cg_i64(cg, K));
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, K), "z");
    cg_store(cg, cg_const(cg, 0), dw, cg_add(cg, w_row, z.iv));
    cg_loop_end(cg, &z);
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), rows, "r");
    LLVMValueRef a = cg_load(cg, dy, cg_add(cg, cg_mul(cg, r.iv, cg_i64(cg, N)), o.iv));
    if (node->scale != 1.0) a = cg_fmul(cg, a, cg_const(cg, node->scale));
    LLVMValueRef x_row = cg_mul(cg, r.iv, cg_i64(cg, K));
    CgLoop k = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, K), "k");
    LLVMValueRef at = cg_add(cg, w_row, k.iv);
    cg_store(cg, cg_fadd(cg, cg_load(cg, dw, at), cg_fmul(cg, a, cg_load(cg, x, cg_add(cg, x_row, k.iv)))), dw, at);
    cg_loop_end(cg, &k);
    cg_loop_end(cg, &r);
    cg_loop_end(cg, &o);
}

/* db[:] = scale * sum_r dy[r,:] */
static void cg_dense_db(Cg *cg, const Node *node) {
    int64_t N = node->units;
    LLVMValueRef db = LLVMGetParam(cg->fn, 0), dy = LLVMGetParam(cg->fn, 1);
    LLVMValueRef n = LLVMGetParam(cg->fn, 2);
    LLVMValueRef rows = cg_mul(cg, n, cg_i64(cg, node->positions));
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, N), "z");
    cg_store(cg, cg_const(cg, 0), db, z.iv);
    cg_loop_end(cg, &z);
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), rows, "r");
    LLVMValueRef dy_row = cg_mul(cg, r.iv, cg_i64(cg, N));
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, N), "o");
    LLVMValueRef v = cg_load(cg, dy, cg_add(cg, dy_row, o.iv));
    if (node->scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, node->scale));
    cg_store(cg, cg_fadd(cg, cg_load(cg, db, o.iv), v), db, o.iv);
    cg_loop_end(cg, &o);
    cg_loop_end(cg, &r);
}

LLVMValueRef cg_dense_kernel(Cg *cg, const Node *node) {
    char name[96];
    snprintf(name, sizeof name, "k%d_%s_%s", node->id, graph_op_names[node->op], cg->f64 ? "f64" : "f32");
    /* K, the input features, is the last dimension of the forward input. */
    const Graph *g = cg->g;
    int64_t K;
    switch (node->op) {
    case OP_DENSE: {
        const Node *x = graph_node(g, node->inputs[0]);
        K = x->shape.dims[x->shape.rank - 1];
        LLVMValueRef fn = cg_kernel_begin(cg, name, node->bias >= 0 ? 4 : 3);
        cg_dense_forward(cg, node, K);
        cg_kernel_end(cg);
        return fn;
    }
    case OP_DENSE_DX: {
        K = node->shape.dims[node->shape.rank - 1];
        LLVMValueRef fn = cg_kernel_begin(cg, name, 3);
        cg_dense_dx(cg, node, K);
        cg_kernel_end(cg);
        return fn;
    }
    case OP_DENSE_DW: {
        const Node *x = graph_node(g, node->inputs[1]);
        K = x->shape.dims[x->shape.rank - 1];
        LLVMValueRef fn = cg_kernel_begin(cg, name, 3);
        cg_dense_dw(cg, node, K);
        cg_kernel_end(cg);
        return fn;
    }
    default: {
        LLVMValueRef fn = cg_kernel_begin(cg, name, 2);
        cg_dense_db(cg, node);
        cg_kernel_end(cg);
        return fn;
    }
    }
}
