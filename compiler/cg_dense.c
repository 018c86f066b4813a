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
 * All three products run on the register-blocked micro-kernel of cg_gemm.c. */

#include "cg.h"

/* y = act(x W^T + b): rows of x and of W are both contiguous in k, so the product runs on the
 * dot-product tiles (b_transposed) and reads W where it is stored: no per-step packing. */
static void cg_dense_forward(Cg *cg, const Node *node, int64_t K) {
    int64_t N = node->units;
    bool has_bias = node->bias >= 0;
    LLVMValueRef y = LLVMGetParam(cg->fn, 0), x = LLVMGetParam(cg->fn, 1), w = LLVMGetParam(cg->fn, 2);
    LLVMValueRef bias = has_bias ? LLVMGetParam(cg->fn, 3) : NULL;
    LLVMValueRef n = LLVMGetParam(cg->fn, has_bias ? 4 : 3);
    LLVMValueRef rows = cg_mul(cg, n, cg_i64(cg, node->positions));
    /* tanh has no vector form here: it runs as a separate pass after the product */
    bool act_in_gemm = node->fused_act == OP_RELU || node->fused_act == OP_SIGMOID;
    CgGemm g = {.c = y, .a = x, .b = w, .bias = bias, .M = rows, .P = cg_i64(cg, K), .J = N,
                .a_rs = K, .a_cs = 1, .b_rs = K, .c_rs = N, .scale = 1.0, .act = act_in_gemm ? node->fused_act : OP_INPUT,
                .b_transposed = true};
    cg_gemm(cg, &g);
    if (node->fused_act != OP_INPUT && !act_in_gemm) {
        CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, rows, cg_i64(cg, N)), "i");
        cg_store(cg, cg_activation(cg, node->fused_act, cg_load(cg, y, i.iv)), y, i.iv);
        cg_loop_end(cg, &i);
    }
}

/* dx = dy W:  dx[r,k] = sum_o dy[r,o] W[o,k] */
static void cg_dense_dx(Cg *cg, const Node *node, int64_t K) {
    int64_t N = node->units;
    LLVMValueRef n = LLVMGetParam(cg->fn, 3);
    CgGemm g = {.c = LLVMGetParam(cg->fn, 0), .a = LLVMGetParam(cg->fn, 1), .b = LLVMGetParam(cg->fn, 2),
                .M = cg_mul(cg, n, cg_i64(cg, node->positions)), .P = cg_i64(cg, N), .J = K,
                .a_rs = N, .a_cs = 1, .b_rs = K, .c_rs = K, .scale = 1.0, .act = OP_INPUT};
    cg_gemm(cg, &g);
}

/* dW = scale * dy^T x:  dW[o,k] = sum_r dy[r,o] x[r,k]   (scale is 1 except in fault-injection builds) */
static void cg_dense_dw(Cg *cg, const Node *node, int64_t K) {
    int64_t N = node->units;
    LLVMValueRef n = LLVMGetParam(cg->fn, 3);
    CgGemm g = {.c = LLVMGetParam(cg->fn, 0), .a = LLVMGetParam(cg->fn, 1), .b = LLVMGetParam(cg->fn, 2),
                .M = cg_i64(cg, N), .P = cg_mul(cg, n, cg_i64(cg, node->positions)), .J = K,
                .a_rs = 1, .a_cs = N, .b_rs = K, .c_rs = K, .scale = node->scale, .act = OP_INPUT};
    cg_gemm(cg, &g);
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
    /* K, the input features, is the last dimension of the forward input. */
    const Graph *g = cg->g;
    int64_t K;
    switch (node->op) {
    case OP_DENSE: {
        const Node *x = graph_node(g, node->inputs[0]);
        K = x->shape.dims[x->shape.rank - 1];
        LLVMValueRef fn = cg_kernel_begin(cg, node, node->bias >= 0 ? 4 : 3);
        cg_dense_forward(cg, node, K);
        cg_kernel_end(cg);
        return fn;
    }
    case OP_DENSE_DX: {
        K = node->shape.dims[node->shape.rank - 1];
        LLVMValueRef fn = cg_kernel_begin(cg, node, 3);
        cg_dense_dx(cg, node, K);
        cg_kernel_end(cg);
        return fn;
    }
    case OP_DENSE_DW: {
        const Node *x = graph_node(g, node->inputs[1]);
        K = x->shape.dims[x->shape.rank - 1];
        LLVMValueRef fn = cg_kernel_begin(cg, node, 3);
        cg_dense_dw(cg, node, K);
        cg_kernel_end(cg);
        return fn;
    }
    default: {
        LLVMValueRef fn = cg_kernel_begin(cg, node, 2);
        cg_dense_db(cg, node);
        cg_kernel_end(cg);
        return fn;
    }
    }
}
