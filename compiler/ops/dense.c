/* dense.c — the dense (fully connected) layer: shape rule, backward rule, kernels, cost.
 *
 * dense(n, bias=true): [k] -> [n]; [t,k] -> [t,n] with the same weights at every position.
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
#include "nnrt.h"
#include "onnx.h"
#include "ops.h"

/* ---------------------------------------------------------------- shape rule */

static const ArgSpec dense_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"n", ARG_INT, true, 0, NULL},
                                     {"bias", ARG_BOOL, false, 1, NULL}, SPEC_END};

static Value dense_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    int64_t units = (int64_t)b->values[1].number;
    if (x->shape.rank != 1 && x->shape.rank != 2) {
        diag_error(s->diag, call->span, "dense expects an input of shape [k] or [t,k], got %s", sema_shape(s, &x->shape));
        diag_note(s->diag, SPAN_NONE, "insert 'flatten' first to make it [%lld]: x -> flatten -> %s(...)",
                  (long long)x->size, call->text);
        return value_error();
    }
    int64_t k = x->shape.dims[x->shape.rank - 1];
    if (!sema_layer_fits(s, call, (double)units * (double)(x->size / k), (double)units * (double)k, (double)x->size * (double)units))
        return value_error();
    const char *layer = sema_layer_name(s, "dense", b);
    if (!layer) return value_error();
    const char *bias = b->values[2].boolean ? arena_printf(s->arena, "%s.bias", layer) : NULL;
    return tensor_value(ops_dense_node(s, call->span, x, units, layer, arena_printf(s->arena, "%s.weight", layer), bias));
}

Node *ops_dense_node(OpSema *s, Span span, const Node *x, int64_t units, const char *layer, const char *weight_name,
                     const char *bias_name) {
    int64_t k = x->shape.dims[x->shape.rank - 1];
    Shape out = x->shape;
    out.dims[out.rank - 1] = units;
    Node *n = graph_add(s->graph, OP_DENSE, span, &x->id, 1, out);
    n->layer = layer;
    n->units = units;
    n->positions = x->shape.rank == 2 ? x->shape.dims[0] : 1;
    n->weight = graph_add_param(s->graph, weight_name, shape_make(2, (int64_t[]){units, k}), NNRT_INIT_GLOROT_UNIFORM, k,
                                units, n->id);
    if (bias_name) n->bias = graph_add_param(s->graph, bias_name, shape_make(1, &units), NNRT_INIT_ZEROS, k, units, n->id);
    return n;
}

/* ---------------------------------------------------------------- backward rule */

/* y = x W^T + b:  dW = dy^T x,  db = sum dy,  dx = dy W */
static void dense_backward(Ad *ad, const Node *n, int dy) {
    const Node *x = graph_node(ad_graph(ad), n->inputs[0]);
    Node *dw = ad_node(ad, OP_DENSE_DW, dy, x->id, (Shape){0}, n);
    dw->grad_param = n->weight;
    dw->units = n->units;
    dw->positions = n->positions;
    if (n->bias >= 0) {
        Node *db = ad_node(ad, OP_DENSE_DB, dy, -1, (Shape){0}, n);
        db->grad_param = n->bias;
        db->units = n->units;
        db->positions = n->positions;
    }
    if (x->needs_grad) {
        Node *dx = ad_node(ad, OP_DENSE_DX, dy, -1, x->shape, n);
        dx->weight = n->weight;
        dx->units = n->units;
        dx->positions = n->positions;
        ad_accumulate(ad, x->id, dx->id);
    }
}

/* ---------------------------------------------------------------- kernels */

/* y = act(x W^T + b): rows of x and of W are both contiguous in k. Inference runs the product on
 * the dot-product tiles (b_transposed), which read W where it is stored and give every example
 * the same bits whatever the batch (a library called on 1 example = predict on 10,000); the
 * training step lets the packed path copy W^T into panels (faster from two tiles of rows). */
static void cg_dense_forward(Cg *cg, const Node *node, int64_t K) {
    int64_t N = node->units;
    LLVMValueRef y = cg_arg_out(cg), x = cg_arg_in(cg, 0), w = cg_arg_weight(cg);
    LLVMValueRef bias = cg_arg_bias(cg);
    LLVMValueRef n = cg_arg_n(cg);
    LLVMValueRef rows = cg_mul(cg, n, cg_i64(cg, node->positions));
    /* tanh has no vector form here: it runs as a separate pass after the product */
    const Node *fused = graph_fused(cg->g, node);
    bool act_in_gemm = fused && (fused->op == OP_RELU || fused->op == OP_SIGMOID);
    CgGemm g = {.c = y, .a = x, .b = w, .bias = bias, .M = rows, .P = cg_i64(cg, K), .J = N,
                .a_rs = K, .a_cs = 1, .b_rs = K, .c_rs = N, .scale = 1.0, .act = act_in_gemm ? fused : NULL,
                .b_transposed = true, .pack_transposed = cg->training};
    cg_gemm(cg, &g);
    if (fused && !act_in_gemm) {
        CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, rows, cg_i64(cg, N)), "i");
        cg_store(cg, cg_activation(cg, fused->op, cg_load(cg, y, i.iv)), y, i.iv);
        cg_loop_end(cg, &i);
    }
}

/* dx = dy W:  dx[r,k] = sum_o dy[r,o] W[o,k] */
static void cg_dense_dx(Cg *cg, const Node *node, int64_t K) {
    int64_t N = node->units;
    LLVMValueRef n = cg_arg_n(cg);
    CgGemm g = {.c = cg_arg_out(cg), .a = cg_arg_in(cg, 0), .b = cg_arg_weight(cg),
                .M = cg_mul(cg, n, cg_i64(cg, node->positions)), .P = cg_i64(cg, N), .J = K,
                .a_rs = N, .a_cs = 1, .b_rs = K, .c_rs = K, .scale = 1.0};
    cg_gemm(cg, &g);
}

/* dW = scale * dy^T x:  dW[o,k] = sum_r dy[r,o] x[r,k]   (scale is 1 except in fault-injection builds) */
static void cg_dense_dw(Cg *cg, const Node *node, int64_t K) {
    int64_t N = node->units;
    LLVMValueRef n = cg_arg_n(cg);
    CgGemm g = {.c = cg_arg_out(cg), .a = cg_arg_in(cg, 0), .b = cg_arg_in(cg, 1),
                .M = cg_i64(cg, N), .P = cg_mul(cg, n, cg_i64(cg, node->positions)), .J = K,
                .a_rs = 1, .a_cs = N, .b_rs = K, .c_rs = K, .scale = node->scale};
    if (!cg_optim_gemm(cg, node, &g)) cg_gemm(cg, &g); /* train_step_update: rows updated as done */
}

/* db[:] = scale * sum_r dy[r,:] */
static void cg_dense_db(Cg *cg, const Node *node) {
    LLVMValueRef rows = cg_mul(cg, cg_arg_n(cg), cg_i64(cg, node->positions));
    cg_column_sums(cg, cg_arg_out(cg), cg_arg_in(cg, 0), rows, node->units, node->scale);
}

void cg_column_sums(Cg *cg, LLVMValueRef out, LLVMValueRef src, LLVMValueRef rows, int64_t width, double scale) {
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, width), "z");
    cg_store(cg, cg_const(cg, 0), out, z.iv);
    cg_loop_end(cg, &z);
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), rows, "r");
    LLVMValueRef row = cg_mul(cg, r.iv, cg_i64(cg, width));
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, width), "o");
    LLVMValueRef v = cg_load(cg, src, cg_add(cg, row, o.iv));
    if (scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, scale));
    cg_store(cg, cg_fadd(cg, cg_load(cg, out, o.iv), v), out, o.iv);
    cg_loop_end(cg, &o);
    cg_loop_end(cg, &r);
}

static LLVMValueRef dense_kernel(Cg *cg, const Node *node) {
    /* K, the input features, is the last dimension of the forward input. */
    const Graph *g = cg->g;
    int64_t K;
    switch (node->op) {
    case OP_DENSE: {
        const Node *x = graph_node(g, node->inputs[0]);
        K = x->shape.dims[x->shape.rank - 1];
        LLVMValueRef fn = cg_kernel_begin(cg, node);
        cg_dense_forward(cg, node, K);
        cg_kernel_end(cg);
        return fn;
    }
    case OP_DENSE_DX: {
        K = node->shape.dims[node->shape.rank - 1];
        LLVMValueRef fn = cg_kernel_begin(cg, node);
        cg_dense_dx(cg, node, K);
        cg_kernel_end(cg);
        return fn;
    }
    case OP_DENSE_DW: {
        const Node *x = graph_node(g, node->inputs[1]);
        K = x->shape.dims[x->shape.rank - 1];
        LLVMValueRef fn = cg_kernel_begin(cg, node);
        cg_dense_dw(cg, node, K);
        cg_kernel_end(cg);
        return fn;
    }
    default: {
        LLVMValueRef fn = cg_kernel_begin(cg, node);
        cg_dense_db(cg, node);
        cg_kernel_end(cg);
        return fn;
    }
    }
}

/* ---------------------------------------------------------------- cost and the table entry */

/* One of the three products (forward, dW, dx) of dense node `fwd`: 2 K N per row. */
static int64_t dense_product_flops(const Graph *g, const Node *fwd) {
    const Node *x = graph_node(g, fwd->inputs[0]);
    return 2 * fwd->positions * x->shape.dims[x->shape.rank - 1] * fwd->units;
}

static int64_t dense_flops(const Graph *g, const Node *n, int64_t *backward) {
    *backward = 0;
    if (n->op != OP_DENSE) return 0;
    int64_t mac = dense_product_flops(g, n);
    int64_t bias = n->bias >= 0 ? n->units * n->positions : 0;
    *backward = 2 * mac + bias; /* dW and dx, plus db */
    return mac + bias;
}


static const OpSurface dense_surface[] = {{"dense", dense_spec, dense_rule, OPS_LAYER, "Fully connected layer: [k] -> [n] (or per position on [t, k]), y = x W^T + b."}, {NULL, NULL, NULL, 0, NULL}};
static const OpKind dense_kinds[] = {OP_DENSE, OP_DENSE_DX, OP_DENSE_DW, OP_DENSE_DB, OP_COUNT};
static int64_t dense_kernel_flops(const Graph *g, const Node *n) {
    return n->op == OP_DENSE_DB ? 0 : dense_product_flops(g, graph_forward_of(g, n));
}

/* The forward kernel applies a following relu/tanh/sigmoid to its output (see cg_dense_forward). */
static bool dense_fuses(const Graph *g, const Node *producer, const Node *consumer) {
    (void)g;
    return producer->op == OP_DENSE && (ops_kind_flags(consumer->op) & OPK_FUSABLE_ACTIVATION);
}

/* OPK_INFERENCE_VARIANT: the training forward may take the packed path (cg_dense_forward) */
static const OpKindFlags dense_flags[] = {{OP_DENSE, OPK_INFERENCE_VARIANT | OPK_INIT_BY_ACTIVATION | OPK_BIAS_PER_LAST_AXIS},
                                          {OP_COUNT, 0}};

/* ---------------------------------------------------------------- ONNX */

/* Gemm with the weight transposed (transB) on a vector [N, k]; per position ([N, t, k]) MatMul
 * with the transposed weight, then the bias. */
static bool dense_onnx(struct OnnxBuilder *b, const Graph *g, const Node *n) {
    const Node *x = graph_node(g, n->inputs[0]);
    const char *w = onnx_param(b, n->weight), *bias = n->bias >= 0 ? onnx_param(b, n->bias) : NULL;
    if (x->shape.rank == 1) {
        const char *in[3] = {onnx_value(b, x->id), w, bias};
        onnx_attr_int(b, onnx_op(b, "Gemm", onnx_value(b, n->id), bias ? 3 : 2, in), "transB", 1);
        return true;
    }
    const char *wt = onnx_temp(b, n, "weight_t");
    onnx_attr_ints(b, onnx_op1(b, "Transpose", wt, w), "perm", (int64_t[]){1, 0}, 2);
    const char *y = bias ? onnx_temp(b, n, "matmul") : onnx_value(b, n->id);
    onnx_op2(b, "MatMul", y, onnx_value(b, x->id), wt);
    if (bias) onnx_op2(b, "Add", onnx_value(b, n->id), y, bias);
    return true;
}

const OpFamily ops_dense = {
    .name = "dense",
    .surface = dense_surface,
    .kinds = dense_kinds,
    .backward = dense_backward,
    .kernel = dense_kernel,
    .flops = dense_flops,
    .kernel_flops = dense_kernel_flops,
    .fuses = dense_fuses,
    .flags = dense_flags,
    .onnx = dense_onnx,
};
