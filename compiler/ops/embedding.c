/* embedding.c — learned vectors looked up or added: token-id embedding and position embedding.
 * Shape rules, backward rules, kernels.
 *
 * embedding(vocab, dim): the model's int[t] token ids -> [t, dim]; weight [vocab, dim]. The
 * runtime refuses ids outside the smallest vocabulary of the model, naming the example.
 * position_embedding: [t, d] -> [t, d], adds a learned vector per position; weight [t, d]
 * (GPT-2's wpe, added to the token embedding). */
#include "cg.h"
#include "nnrt.h"
#include "onnx.h"
#include "ops.h"

/* ---------------------------------------------------------------- shape rule */

static const ArgSpec embedding_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"vocab", ARG_INT, true, 0, NULL},
                                         {"dim", ARG_INT, true, 0, NULL}, SPEC_END};
static Value embedding_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    if (s->model->input_kind != NNRT_INPUT_INT || x->id != s->graph->input) {
        diag_error(s->diag, b->spans[0], "embedding takes token ids: the model's int[t] input, got a tensor of shape %s",
                   sema_shape(s, &x->shape));
        diag_note(s->diag, SPAN_NONE, "declare the input as 'input tokens : int[t]'");
        return value_error();
    }
    int64_t vocab = (int64_t)b->values[1].number, dim = (int64_t)b->values[2].number;
    if ((double)vocab * (double)dim > 4294967296.0) {
        diag_error(s->diag, call->span, "embedding(%lld, %lld) has more than 2^32 parameters", (long long)vocab, (long long)dim);
        return value_error();
    }
    const char *layer = sema_layer_name(s, "embedding", b);
    if (!layer) return value_error();
    Node *n = graph_add(s->graph, OP_EMBEDDING, call->span, &x->id, 1, shape_make(2, (int64_t[]){x->size, dim}));
    n->layer = layer;
    n->units = vocab;
    /* PyTorch initializes embeddings N(0,1); uniform Glorot keeps nnc's init kinds few */
    n->weight = graph_add_param(s->graph, arena_printf(s->arena, "%s.weight", layer), shape_make(2, (int64_t[]){vocab, dim}),
                                NNRT_INIT_GLOROT_UNIFORM, dim, dim, n->id);
    if (!s->model->input_vocab || vocab < s->model->input_vocab) s->model->input_vocab = vocab;
    return tensor_value(n);
}

static const ArgSpec position_embedding_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, SPEC_END};
static Value position_embedding_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    if (x->shape.rank != 2) {
        diag_error(s->diag, b->spans[0], "position_embedding adds a vector per position of a sequence [t, d], got %s",
                   sema_shape(s, &x->shape));
        diag_note(s->diag, SPAN_NONE, "a sequence comes from embedding: tokens -> embedding(vocab, d) -> position_embedding");
        return value_error();
    }
    if (!sema_layer_fits(s, call, (double)x->size, (double)x->size, 0)) return value_error();
    const char *layer = sema_layer_name(s, "position_embedding", b);
    if (!layer) return value_error();
    int64_t d = x->shape.dims[1];
    Node *n = graph_add(s->graph, OP_POSITION_EMBEDDING, call->span, &x->id, 1, x->shape);
    n->layer = layer;
    /* initialized like embedding's table */
    n->weight = graph_add_param(s->graph, arena_printf(s->arena, "%s.weight", layer), x->shape, NNRT_INIT_GLOROT_UNIFORM, d, d,
                                n->id);
    return tensor_value(n);
}

/* ---------------------------------------------------------------- backward rule */

/* token ids have no gradient; only the looked-up rows do */
static void embedding_backward(Ad *ad, const Node *n, int dy) {
    if (n->op == OP_POSITION_EMBEDDING) { /* y = x + W: dx = dy, dW = sum over the batch of dy */
        Node *dw = ad_node(ad, OP_POSITION_EMBEDDING_DW, dy, -1, (Shape){0}, n);
        dw->grad_param = n->weight;
        ad_accumulate(ad, n->inputs[0], dy);
        return;
    }
    Node *dw = ad_node(ad, OP_EMBEDDING_DW, dy, n->inputs[0], (Shape){0}, n);
    dw->grad_param = n->weight;
}

/* ---------------------------------------------------------------- kernels */

/* embedding (y[n,T,D], ids[n,T], W[V,D]):  y[b,i,:] = W[id,:]
 * embedding_dw (dW[V,D], dy[n,T,D], ids):   dW[id,:] += scale * dy[b,i,:]  (zeroed first)
 * Ids arrive as exactly-representable floats (the ABI) and were range-checked by the runtime;
 * they are clamped anyway so a bad id can never address outside the table. */
static LLVMValueRef embedding_kernel(Cg *cg, const Node *node) {
    const Node *fwd = graph_forward_of(cg->g, node);
    int64_t T = graph_node(cg->g, fwd->inputs[0])->size, V = fwd->units, D = fwd->shape.dims[1];
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    /* embedding (y, ids, W); embedding_dw (dW, dy, ids) */
    LLVMValueRef out = cg_arg_out(cg), n = cg_arg_n(cg);
    LLVMValueRef ids = node->op == OP_EMBEDDING ? cg_arg_in(cg, 0) : cg_arg_in(cg, 1);
    LLVMValueRef rows = node->op == OP_EMBEDDING ? cg_arg_weight(cg) : cg_arg_in(cg, 0);
    if (node->op == OP_EMBEDDING_DW) {
        CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, V * D), "z");
        cg_store(cg, cg_const(cg, 0), out, z.iv);
        cg_loop_end(cg, &z);
    }
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, n, cg_i64(cg, T)), "i");
    LLVMValueRef id = LLVMBuildFPToSI(cg->b, cg_load(cg, ids, i.iv), cg->i64, "");
    id = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, id, cg_i64(cg, 0), ""), cg_i64(cg, 0), id, "");
    id = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, id, cg_i64(cg, V), ""), cg_i64(cg, V - 1), id, "");
    LLVMValueRef table_row = cg_mul(cg, id, cg_i64(cg, D)), seq_row = cg_mul(cg, i.iv, cg_i64(cg, D));
    CgLoop d = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, D), "d");
    if (node->op == OP_EMBEDDING) {
        cg_store(cg, cg_load(cg, rows, cg_add(cg, table_row, d.iv)), out, cg_add(cg, seq_row, d.iv));
    } else {
        LLVMValueRef at = cg_add(cg, table_row, d.iv);
        LLVMValueRef v = cg_load(cg, rows, cg_add(cg, seq_row, d.iv));
        if (node->scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, node->scale));
        cg_store(cg, cg_fadd(cg, cg_load(cg, out, at), v), out, at);
    }
    cg_loop_end(cg, &d);
    cg_loop_end(cg, &i);
    cg_kernel_end(cg);
    return fn;
}

/* position_embedding (y[n,T,D], x, W[T,D]):  y[b] = x[b] + W
 * position_embedding_dw (dW[T,D], dy):       dW = scale * sum_b dy[b] */
static LLVMValueRef position_embedding_kernel(Cg *cg, const Node *node) {
    int64_t size = graph_forward_of(cg->g, node)->size;
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    LLVMValueRef out = cg_arg_out(cg), src = cg_arg_in(cg, 0), n = cg_arg_n(cg);
    if (node->op == OP_POSITION_EMBEDDING_DW) { /* the same sum over the batch as a bias gradient */
        cg_column_sums(cg, out, src, n, size, node->scale);
        cg_kernel_end(cg);
        return fn;
    }
    LLVMValueRef w = cg_arg_weight(cg);
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), n, "b");
    LLVMValueRef row = cg_mul(cg, b.iv, cg_i64(cg, size));
    CgLoop e = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, size), "e");
    LLVMValueRef at = cg_add(cg, row, e.iv);
    cg_store(cg, cg_fadd(cg, cg_load(cg, src, at), cg_load(cg, w, e.iv)), out, at);
    cg_loop_end(cg, &e);
    cg_loop_end(cg, &b);
    cg_kernel_end(cg);
    return fn;
}

static LLVMValueRef embedding_family_kernel(Cg *cg, const Node *node) {
    bool position = node->op == OP_POSITION_EMBEDDING || node->op == OP_POSITION_EMBEDDING_DW;
    return position ? position_embedding_kernel(cg, node) : embedding_kernel(cg, node);
}

/* one addition per element each way (the lookup itself is free) */
static int64_t embedding_flops(const Graph *g, const Node *n, int64_t *backward) {
    (void)g;
    *backward = n->op == OP_POSITION_EMBEDDING ? n->size : 0;
    return *backward;
}

/* ---------------------------------------------------------------- the table entry */

static const OpSurface embedding_surface[] = {
    {"embedding", embedding_spec, embedding_rule, OPS_TAKES_TOKEN_IDS, "Token ids int[t] -> [t, dim]: one learned row of a [vocab, dim] table per id."},
    {"position_embedding", position_embedding_spec, position_embedding_rule, OPS_LAYER, "Adds a learned [t, d] table to a sequence [t, d] (one vector per position)."},
    {NULL, NULL, NULL, 0, NULL},
};
static const OpKind embedding_kinds[] = {OP_EMBEDDING, OP_EMBEDDING_DW, OP_POSITION_EMBEDDING, OP_POSITION_EMBEDDING_DW, OP_COUNT};
/* [t, d], positions first: conv1d and the pools read [c, t] (a warning, warnings.c) */
static const OpKindFlags embedding_flags[] = {{OP_EMBEDDING, OPK_SEQUENCE_OUTPUT}, {OP_POSITION_EMBEDDING, OPK_SEQUENCE_OUTPUT}, {OP_COUNT, 0}};

/* ---------------------------------------------------------------- ONNX */

/* Gather of the weight's rows by the int32 ids; the position table added with broadcasting. */
static bool embedding_onnx(struct OnnxBuilder *b, const Graph *g, const Node *n) {
    (void)g;
    const char *y = onnx_value(b, n->id), *x = onnx_value(b, n->inputs[0]);
    if (n->op == OP_EMBEDDING) {
        onnx_attr_int(b, onnx_op2(b, "Gather", y, onnx_param(b, n->weight), x), "axis", 0);
        return true;
    }
    if (n->op == OP_POSITION_EMBEDDING) {
        onnx_op2(b, "Add", y, x, onnx_param(b, n->weight));
        return true;
    }
    return false;
}

const OpFamily ops_embedding = {
    .name = "embedding",
    .surface = embedding_surface,
    .kinds = embedding_kinds,
    .backward = embedding_backward,
    .kernel = embedding_family_kernel,
    .flops = embedding_flops,
    .flags = embedding_flags,
    .onnx = embedding_onnx,
};
