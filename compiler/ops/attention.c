/* attention.c — multi-head self-attention: shape rule, backward rule, kernels, costs.
 *
 * attention(heads, causal=false, bias=true): [t, d] -> [t, d], the function of PyTorch's
 * nn.MultiheadAttention(d, heads, batch_first=True)(x, x, x, need_weights=False), with its
 * checkpoint names. One call becomes four nodes:
 *
 *   qkv = dense(x)            [t, 3d]     NAME.in_proj_weight [3d, d], NAME.in_proj_bias [3d]
 *   P   = attention_scores    [h, t, t]   P_h = softmax(q_h k_h^T / sqrt(d/h)) (causal: j <= i)
 *   o   = attention_mix(P, qkv) [t, d]    o[:, head h] = P_h v_h
 *   y   = dense(o)            [t, d]      NAME.out_proj.weight [d, d], NAME.out_proj.bias [d]
 *
 * q, k, v are the column blocks [0, d), [d, 2d), [2d, 3d) of qkv, head h the columns
 * [h dh, (h+1) dh) of each (dh = d / h). The projections are ordinary dense nodes (their kernels,
 * gradients and fusion are dense.c's); P is an ordinary planned buffer, so the scores of every
 * layer are counted in the workspace. The backward rule of attention_mix differentiates the mix
 * and the scores at once (attention_grad: dqkv from dy, P and qkv); attention_scores has no rule
 * of its own, since P's only reader is its mix.
 *
 * Kernels, per example b and head h (all products on cg_gemm, one (b, h) pair per task):
 *   attention_scores (P, qkv)         S = q k^T / sqrt(dh); P = row softmax of S over j (<= i)
 *   attention_mix    (o, P, qkv)      o_h = P_h v_h
 *   attention_grad   (dqkv, dy, P, qkv, scratch)
 *       dP = dy_h v_h^T;  dS = P (dP - rowsum(dP P)) / sqrt(dh)
 *       dq_h = dS k_h;  dk_h = dS^T q_h;  dv_h = P_h^T dy_h
 *     with dP/dS in one [t, t] scratch slot per chunk of the batch's (b, h) pairs (8 fixed
 *     chunks, so results do not depend on the thread count). */
#include <math.h>
#include <stdlib.h>

#include "cg.h"
#include "nnrt.h"
#include "onnx.h"
#include "ops.h"

/* ---------------------------------------------------------------- shape rule */

static const ArgSpec attention_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"heads", ARG_INT, true, 0, NULL},
                                         {"causal", ARG_BOOL, false, 0, NULL}, {"bias", ARG_BOOL, false, 1, NULL}, SPEC_END};

/* The divisor of d nearest to `heads` (the smaller one on a tie). */
static int64_t nearest_divisor(int64_t d, int64_t heads) {
    int64_t best = 1;
    for (int64_t k = 1; k <= d; k++)
        if (d % k == 0 && llabs(k - heads) < llabs(best - heads)) best = k;
    return best;
}

static Value attention_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    int64_t heads = (int64_t)b->values[1].number;
    if (x->shape.rank != 2) {
        diag_error(s->diag, b->spans[0], "attention expects a sequence [t, d] (t positions of d features), got %s",
                   sema_shape(s, &x->shape));
        if (x->shape.rank == 1)
            diag_note(s->diag, SPAN_NONE, "a sequence comes from embedding (tokens -> embedding(vocab, d)) or reshape(t, d)");
        else
            diag_note(s->diag, SPAN_NONE, "reshape it to [t, d] first, e.g. reshape(%lld, %lld)",
                      (long long)(x->size / x->shape.dims[x->shape.rank - 1]), (long long)x->shape.dims[x->shape.rank - 1]);
        return value_error();
    }
    int64_t t = x->shape.dims[0], d = x->shape.dims[1];
    if (d % heads != 0) {
        int64_t near = nearest_divisor(d, heads);
        diag_error(s->diag, b->spans[1], "attention: d = %lld features do not split into %lld heads (%lld %% %lld = %lld)",
                   (long long)d, (long long)heads, (long long)d, (long long)heads, (long long)(d % heads));
        diag_note(s->diag, SPAN_NONE, "use a number of heads that divides %lld, e.g. attention(%lld)", (long long)d, (long long)near);
        return value_error();
    }
    /* the projections' weights and multiply-adds, and the scores: t*t per head */
    if (!sema_layer_fits(s, call, (double)heads * (double)t * (double)t, 4.0 * (double)d * (double)d,
                         4.0 * (double)t * (double)d * (double)d + 2.0 * (double)t * (double)t * (double)d))
        return value_error();
    const char *layer = sema_layer_name(s, "attention", b);
    if (!layer) return value_error();
    bool bias = b->values[3].boolean;
    Node *qkv = ops_dense_node(s, call->span, x, 3 * d, arena_printf(s->arena, "%s.in_proj", layer),
                               arena_printf(s->arena, "%s.in_proj_weight", layer),
                               bias ? arena_printf(s->arena, "%s.in_proj_bias", layer) : NULL);
    /* padded text: positions holding id 0 are no keys, so the scores read the ids (input 1) */
    bool padded = sema_input_is_padded(s) && t == graph_node(s->graph, s->graph->input)->size;
    int scores_inputs[2] = {qkv->id, s->graph->input};
    Node *scores = graph_add(s->graph, OP_ATTENTION_SCORES, call->span, scores_inputs, padded ? 2 : 1,
                             shape_make(3, (int64_t[]){heads, t, t}));
    scores->layer = layer;
    scores->heads = heads;
    scores->causal = b->values[2].boolean;
    int mix_inputs[2] = {scores->id, qkv->id};
    Node *mix = graph_add(s->graph, OP_ATTENTION_MIX, call->span, mix_inputs, 2, x->shape);
    mix->layer = layer;
    mix->heads = heads;
    mix->causal = scores->causal;
    Node *out = ops_dense_node(s, call->span, mix, d, arena_printf(s->arena, "%s.out_proj", layer),
                               arena_printf(s->arena, "%s.out_proj.weight", layer),
                               bias ? arena_printf(s->arena, "%s.out_proj.bias", layer) : NULL);
    return tensor_value(out);
}

/* ---------------------------------------------------------------- backward rule */

/* The mix's rule differentiates scores and mix together (the scores' only reader is the mix). */
static void attention_backward(Ad *ad, const Node *n, int dy) {
    if (n->op != OP_ATTENTION_MIX) return;
    const Graph *g = ad_graph(ad);
    const Node *qkv = graph_node(g, n->inputs[1]);
    Node *grad = ad_node(ad, OP_ATTENTION_GRAD, dy, n->inputs[0], qkv->shape, n);
    /* (dy, P, qkv): the third input */
    grad->inputs[grad->input_count++] = qkv->id;
    grad->heads = n->heads;
    grad->causal = n->causal;
    ad_accumulate(ad, qkv->id, grad->id);
}

/* ---------------------------------------------------------------- kernels */

typedef struct AttentionGeometry {
    int64_t t, d, heads, dh;
    bool causal;
} AttentionGeometry;

static AttentionGeometry attention_geometry(const Graph *g, const Node *node) {
    const Node *fwd = graph_forward_of(g, node);
    const Node *mix = fwd->op == OP_ATTENTION_MIX ? fwd : NULL;
    const Node *scores = mix ? graph_node(g, mix->inputs[0]) : fwd;
    AttentionGeometry q = {.t = scores->shape.dims[1], .heads = scores->heads, .causal = scores->causal};
    q.d = graph_node(g, scores->inputs[0])->shape.dims[1] / 3;
    q.dh = q.d / q.heads;
    return q;
}

typedef struct AttentionTask {
    const Node *node;
    AttentionGeometry q;
} AttentionTask;

/* Pointers of example b, head h: q_h, k_h, v_h in qkv; its [t, t] block of P; its columns of a
 * [t, d] tensor. */
static LLVMValueRef qkv_part(Cg *cg, const AttentionGeometry *q, LLVMValueRef qkv, LLVMValueRef b, LLVMValueRef h, int part) {
    LLVMValueRef row0 = cg_mul(cg, b, cg_i64(cg, q->t * 3 * q->d));
    return cg_gep(cg, qkv, cg_add(cg, row0, cg_add(cg, cg_i64(cg, part * q->d), cg_mul(cg, h, cg_i64(cg, q->dh)))));
}
static LLVMValueRef scores_block(Cg *cg, const AttentionGeometry *q, LLVMValueRef p, LLVMValueRef pair) {
    return cg_gep(cg, p, cg_mul(cg, pair, cg_i64(cg, q->t * q->t)));
}
static LLVMValueRef head_columns(Cg *cg, const AttentionGeometry *q, LLVMValueRef y, LLVMValueRef b, LLVMValueRef h) {
    return cg_gep(cg, y, cg_add(cg, cg_mul(cg, b, cg_i64(cg, q->t * q->d)), cg_mul(cg, h, cg_i64(cg, q->dh))));
}

/* C = scale * A B on cg_gemm, inside a task (serial). A transposed B (K^T, V^T) may be packed:
 * the row count is t, a constant, so every batch size takes the same path (the same bits).
 * lower: only C's lower triangle is read afterwards (see CgGemm). */
static void attention_gemm(Cg *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b, int64_t M, int64_t P, int64_t J,
                           int64_t a_rs, int64_t a_cs, int64_t b_rs, int64_t c_rs, double scale, bool b_transposed, bool lower) {
    CgGemm g = {.c = c, .a = a, .b = b, .M = cg_i64(cg, M), .P = cg_i64(cg, P), .J = J, .a_rs = a_rs, .a_cs = a_cs,
                .b_rs = b_rs, .c_rs = c_rs, .scale = scale, .serial = true, .b_transposed = b_transposed,
                .pack_transposed = true, .lower = lower};
    cg_gemm(cg, &g);
}

/* Row i of a [t, t] block: the softmax over its first `len` entries (all t, or i + 1 when causal);
 * the rest are 0. */
static void masked_row_softmax(Cg *cg, LLVMValueRef row, LLVMValueRef len, int64_t t, LLVMValueRef max_var, LLVMValueRef sum_var) {
    cg_row_softmax(cg, row, row, cg_i64(cg, 0), len, max_var, sum_var);
    CgLoop z = cg_loop_begin(cg, len, cg_i64(cg, t), "z");
    cg_store(cg, cg_const(cg, 0), row, z.iv);
    cg_loop_end(cg, &z);
}

/* Padded text (ids, the example's t token ids): keys at id 0 get the score -1e30 before the
 * softmax (probability exactly 0 when the row has a real key) and probability 0 after it (a row
 * with no real key at all mixes nothing). */
static void mask_padded_keys(Cg *cg, LLVMValueRef row, LLVMValueRef ids, int64_t t, double value) {
    CgLoop j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, t), "j");
    LLVMValueRef real = LLVMBuildFCmp(cg->b, LLVMRealUNE, cg_load(cg, ids, j.iv), cg_const(cg, 0), "");
    cg_store(cg, LLVMBuildSelect(cg->b, real, cg_load(cg, row, j.iv), cg_const(cg, value), ""), row, j.iv);
    cg_loop_end(cg, &j);
}

/* values: P, qkv[, ids]. Pairs [begin, end) of (example, head). */
static void scores_pairs(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const AttentionGeometry *q = &((const AttentionTask *)user)->q;
    bool padded = ((const AttentionTask *)user)->node->input_count == 2;
    LLVMValueRef max_var = cg_var(cg, cg->elem, "max"), sum_var = cg_var(cg, cg->elem, "sum");
    CgLoop pair = cg_loop_begin(cg, begin, end, "pair");
    LLVMValueRef b = LLVMBuildSDiv(cg->b, pair.iv, cg_i64(cg, q->heads), "");
    LLVMValueRef h = LLVMBuildSRem(cg->b, pair.iv, cg_i64(cg, q->heads), "");
    LLVMValueRef block = scores_block(cg, q, v[0], pair.iv);
    /* S[i, j] = q_i . k_j / sqrt(dh): rows of q and k are both contiguous over the head's features.
     * Causal: the softmax below reads only j <= i (and writes the rest), so the tiles above the
     * diagonal are not computed (a third of them at t = 64). */
    attention_gemm(cg, block, qkv_part(cg, q, v[1], b, h, 0), qkv_part(cg, q, v[1], b, h, 1), q->t, q->dh, q->t, 3 * q->d, 1,
                   3 * q->d, q->t, 1.0 / sqrt((double)q->dh), true, q->causal);
    LLVMValueRef ids = padded ? cg_gep(cg, v[2], cg_mul(cg, b, cg_i64(cg, q->t))) : NULL;
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->t), "i");
    LLVMValueRef len = q->causal ? cg_add(cg, i.iv, cg_i64(cg, 1)) : cg_i64(cg, q->t);
    LLVMValueRef row = cg_gep(cg, block, cg_mul(cg, i.iv, cg_i64(cg, q->t)));
    if (padded) mask_padded_keys(cg, row, ids, q->t, -1e30);
    masked_row_softmax(cg, row, len, q->t, max_var, sum_var);
    if (padded) mask_padded_keys(cg, row, ids, q->t, 0);
    cg_loop_end(cg, &i);
    cg_loop_end(cg, &pair);
}

/* values: o, P, qkv. o_h = P_h v_h. */
static void mix_pairs(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const AttentionGeometry *q = &((const AttentionTask *)user)->q;
    CgLoop pair = cg_loop_begin(cg, begin, end, "pair");
    LLVMValueRef b = LLVMBuildSDiv(cg->b, pair.iv, cg_i64(cg, q->heads), "");
    LLVMValueRef h = LLVMBuildSRem(cg->b, pair.iv, cg_i64(cg, q->heads), "");
    attention_gemm(cg, head_columns(cg, q, v[0], b, h), scores_block(cg, q, v[1], pair.iv), qkv_part(cg, q, v[2], b, h, 2),
                   q->t, q->t, q->dh, q->t, 1, 3 * q->d, q->d, 1.0, false, false);
    cg_loop_end(cg, &pair);
}

enum { ATTENTION_CHUNKS = 8 };

/* values: dqkv, dy, P, qkv, scratch, n. Chunk c handles the pairs [c N / 8, (c+1) N / 8) of
 * the N = n heads (example, head) pairs with its own [t, t] slot. */
static void grad_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const AttentionTask *task = user;
    const AttentionGeometry *q = &task->q;
    int64_t t = q->t, d = q->d, dh = q->dh;
    LLVMValueRef dqkv = v[0], dy = v[1], P = v[2], qkv = v[3];
    LLVMValueRef pairs = cg_mul(cg, v[5], cg_i64(cg, q->heads));
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc");
    CgLoop c = cg_loop_begin(cg, begin, end, "chunk");
    LLVMValueRef slot = cg_gep(cg, v[4], cg_mul(cg, c.iv, cg_i64(cg, t * t)));
    LLVMValueRef first, last;
    cg_chunk_bounds(cg, c.iv, pairs, ATTENTION_CHUNKS, &first, &last);
    CgLoop pair = cg_loop_begin(cg, first, last, "pair");
    LLVMValueRef b = LLVMBuildSDiv(cg->b, pair.iv, cg_i64(cg, q->heads), "");
    LLVMValueRef h = LLVMBuildSRem(cg->b, pair.iv, cg_i64(cg, q->heads), "");
    LLVMValueRef p = scores_block(cg, q, P, pair.iv), dy_h = head_columns(cg, q, dy, b, h);
    LLVMValueRef q_h = qkv_part(cg, q, qkv, b, h, 0), k_h = qkv_part(cg, q, qkv, b, h, 1), v_h = qkv_part(cg, q, qkv, b, h, 2);
    /* dP = dy_h v_h^T */
    attention_gemm(cg, slot, dy_h, v_h, t, dh, t, d, 1, 3 * d, t, 1.0, true, false);
    /* dS = P (dP - sum_j dP P) / sqrt(dh), in place; masked entries have P = 0 */
    double scale = 1.0 / sqrt((double)dh);
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, t), "i");
    LLVMValueRef row = cg_mul(cg, i.iv, cg_i64(cg, t));
    LLVMBuildStore(cg->b, cg_const(cg, 0), acc);
    CgLoop j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, t), "j");
    LLVMValueRef at = cg_add(cg, row, j.iv);
    LLVMBuildStore(cg->b, cg_fadd(cg, cg_load_var(cg, acc), cg_fmul(cg, cg_load(cg, slot, at), cg_load(cg, p, at))), acc);
    cg_loop_end(cg, &j);
    LLVMValueRef dot = cg_load_var(cg, acc);
    CgLoop j2 = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, t), "j");
    LLVMValueRef at2 = cg_add(cg, row, j2.iv);
    LLVMValueRef ds = cg_fmul(cg, cg_fmul(cg, cg_load(cg, p, at2), cg_fsub(cg, cg_load(cg, slot, at2), dot)), cg_const(cg, scale));
    cg_store(cg, ds, slot, at2);
    cg_loop_end(cg, &j2);
    cg_loop_end(cg, &i);
    /* dq_h = dS k_h;  dk_h = dS^T q_h;  dv_h = P^T dy_h */
    attention_gemm(cg, qkv_part(cg, q, dqkv, b, h, 0), slot, k_h, t, t, dh, t, 1, 3 * d, 3 * d, 1.0, false, false);
    attention_gemm(cg, qkv_part(cg, q, dqkv, b, h, 1), slot, q_h, t, t, dh, 1, t, 3 * d, 3 * d, 1.0, false, false);
    attention_gemm(cg, qkv_part(cg, q, dqkv, b, h, 2), p, dy_h, t, t, dh, 1, t, d, 3 * d, 1.0, false, false);
    cg_loop_end(cg, &pair);
    cg_loop_end(cg, &c);
}

static LLVMValueRef attention_kernel(Cg *cg, const Node *node) {
    AttentionTask task = {node, attention_geometry(cg->g, node)};
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    LLVMValueRef n = cg_arg_n(cg);
    LLVMValueRef pairs = cg_mul(cg, n, cg_i64(cg, task.q.heads));
    if (node->op == OP_ATTENTION_SCORES) {
        LLVMValueRef v[3] = {cg_arg_out(cg), cg_arg_in(cg, 0), node->input_count == 2 ? cg_arg_in(cg, 1) : NULL};
        cg_parallel_for(cg, pairs, v, node->input_count == 2 ? 3 : 2, false, scores_pairs, &task);
    } else if (node->op == OP_ATTENTION_MIX) {
        LLVMValueRef v[3] = {cg_arg_out(cg), cg_arg_in(cg, 0), cg_arg_in(cg, 1)};
        cg_parallel_for(cg, pairs, v, 3, false, mix_pairs, &task);
    } else {
        LLVMValueRef v[6] = {cg_arg_out(cg), cg_arg_in(cg, 0), cg_arg_in(cg, 1), cg_arg_in(cg, 2), cg_arg_scratch(cg), n};
        cg_parallel_for(cg, cg_i64(cg, ATTENTION_CHUNKS), v, 6, false, grad_chunks, &task);
    }
    cg_kernel_end(cg);
    return fn;
}

/* ---------------------------------------------------------------- scratch, costs, table */

static int64_t attention_scratch(const Graph *g, const Node *node) {
    if (node->op != OP_ATTENTION_GRAD) return 0;
    AttentionGeometry q = attention_geometry(g, node);
    return ATTENTION_CHUNKS * q.t * q.t;
}

/* One t x t x d product: the scores (all heads), or the mix. */
static int64_t attention_product_flops(const Graph *g, const Node *n) {
    AttentionGeometry q = attention_geometry(g, n);
    return 2 * q.t * q.t * q.d;
}

/* scores: q k^T and the softmax (3 per score); mix: P v. Backward, counted on the mix (whose
 * rule covers both): dP, dq, dk, dv and the softmax gradient (3 per score). */
static int64_t attention_flops(const Graph *g, const Node *n, int64_t *backward) {
    int64_t product = attention_product_flops(g, n), scores = n->op == OP_ATTENTION_SCORES ? n->size : 0;
    if (n->op == OP_ATTENTION_MIX) {
        *backward = 4 * product + 3 * graph_node(g, n->inputs[0])->size;
        return product;
    }
    *backward = 0;
    return product + 3 * scores;
}

static int64_t attention_kernel_flops(const Graph *g, const Node *n) {
    return (n->op == OP_ATTENTION_GRAD ? 4 : 1) * attention_product_flops(g, n);
}

static const char *attention_label(const Node *n) { return n->op == OP_ATTENTION_SCORES ? "attn_scores" : "attn_mix"; }

static const OpSurface attention_surface[] = {{"attention", attention_spec, attention_rule, OPS_LAYER, "Multi-head self-attention over a sequence [t, d]: heads of d/heads features, optionally causal; output [t, d]."}, {NULL, NULL, NULL, 0, NULL}};
static const OpKind attention_kinds[] = {OP_ATTENTION_SCORES, OP_ATTENTION_MIX, OP_ATTENTION_GRAD, OP_COUNT};

/* ---------------------------------------------------------------- ONNX */

/* Column block [first, first + d) of qkv [N, t, 3d] as heads [N, h, t, dh] (perm 0 2 1 3), or
 * transposed for k ([N, h, dh, t], perm 0 2 3 1). */
static const char *attention_onnx_heads(struct OnnxBuilder *b, const Node *n, const Node *qkv, int64_t block, bool transposed,
                                        const char *what) {
    int64_t t = qkv->shape.dims[0], d = qkv->shape.dims[1] / 3, dh = d / n->heads;
    int64_t start = block * d, end = start + d, axis = 2;
    const char *in[4] = {onnx_value(b, qkv->id), onnx_const_i64(b, onnx_temp(b, n, "start"), &start, 1),
                         onnx_const_i64(b, onnx_temp(b, n, "end"), &end, 1), onnx_const_i64(b, onnx_temp(b, n, "axis"), &axis, 1)};
    const char *slice = onnx_temp(b, n, what), *split = onnx_temp(b, n, arena_printf(onnx_arena(b), "%s_heads", what));
    onnx_op(b, "Slice", slice, 4, in);
    onnx_reshape(b, split, slice, &(Shape){3, {t, n->heads, dh}});
    const char *out = onnx_temp(b, n, arena_printf(onnx_arena(b), "%s_t", what));
    int64_t perm[4] = {0, 2, transposed ? 3 : 1, transposed ? 1 : 3};
    onnx_attr_ints(b, onnx_op1(b, "Transpose", out, split), "perm", perm, 4);
    return out;
}

/* scores: P = softmax(q k^T / sqrt(dh) (+ -inf above the diagonal when causal)); mix: P v with
 * the heads put back side by side. */
static bool attention_onnx(struct OnnxBuilder *b, const Graph *g, const Node *n) {
    const char *y = onnx_value(b, n->id);
    if (n->op == OP_ATTENTION_SCORES) {
        const Node *qkv = graph_node(g, n->inputs[0]);
        int64_t t = qkv->shape.dims[0], dh = qkv->shape.dims[1] / 3 / n->heads;
        const char *q = attention_onnx_heads(b, n, qkv, 0, false, "q"), *k = attention_onnx_heads(b, n, qkv, 1, true, "k");
        const char *s = onnx_temp(b, n, "qk"), *scaled = onnx_temp(b, n, "scores");
        onnx_op2(b, "MatMul", s, q, k);
        onnx_op2(b, "Mul", scaled, s, onnx_scalar(b, onnx_temp(b, n, "inv_sqrt_dh"), 1.0 / sqrt((double)dh)));
        if (n->causal) {
            float *mask = arena_alloc(onnx_arena(b), sizeof(float) * (size_t)(t * t));
            for (int64_t i = 0; i < t; i++)
                for (int64_t j = 0; j < t; j++) mask[i * t + j] = j <= i ? 0.0f : -INFINITY;
            const char *masked = onnx_temp(b, n, "masked");
            onnx_op2(b, "Add", masked, scaled, onnx_const_f32(b, onnx_temp(b, n, "causal_mask"), mask, (int64_t[]){t, t}, 2));
            scaled = masked;
        }
        onnx_attr_int(b, onnx_op1(b, "Softmax", y, scaled), "axis", -1);
        return true;
    }
    if (n->op == OP_ATTENTION_MIX) {
        const Node *qkv = graph_node(g, n->inputs[1]);
        const char *v = attention_onnx_heads(b, n, qkv, 2, false, "v");
        const char *o = onnx_temp(b, n, "pv"), *ot = onnx_temp(b, n, "pv_t");
        onnx_op2(b, "MatMul", o, onnx_value(b, n->inputs[0]), v);
        onnx_attr_ints(b, onnx_op1(b, "Transpose", ot, o), "perm", (int64_t[]){0, 2, 1, 3}, 4);
        onnx_reshape(b, y, ot, &n->shape);
        return true;
    }
    return false;
}

const OpFamily ops_attention = {
    .name = "attention",
    .surface = attention_surface,
    .kinds = attention_kinds,
    .backward = attention_backward,
    .kernel = attention_kernel,
    .flops = attention_flops,
    .kernel_flops = attention_kernel_flops,
    .scratch = attention_scratch,
    .label = attention_label,
    .onnx = attention_onnx,
};
