/* recurrent.c — lstm and gru: shape rule, backward rule (through time), kernels, costs.
 *
 * lstm(hidden, return="sequence"|"last") and gru(hidden, return=...): [t, d] -> [t, h] (the
 * state after every step) or [h] (after the last step; with padded text input, after the last
 * real token). PyTorch's nn.LSTM / nn.GRU (batch_first, one layer, zero initial state) with its
 * gate order and checkpoint names. One call becomes three nodes:
 *
 *   xp    = dense(x)          [t, G]   NAME.weight_ih_l0 [G, d], NAME.bias_ih_l0 [G]
 *   steps = lstm | gru (xp)   [t+1, S] NAME.weight_hh_l0 [G, h], NAME.bias_hh_l0 [G]
 *   y     = rnn_output(steps) [t, h] or [h]  (and the token ids when they are padded text)
 *
 * with G = 4h (LSTM gates i, f, g, o) or 3h (GRU gates r, z, n) and S = G + 3h. The input
 * projection of all steps is one ordinary dense node (one matrix product, dense.c's gradients);
 * the recurrence keeps everything the backward pass needs in its own planned buffer, one row of
 * S per step and a spare row, [t + 1, S] per example (so the saved gates are counted in the
 * workspace like any activation; the spare row, zero where read, keeps the rows of consecutive
 * examples off the same cache sets when t S is a multiple of 1024, as in t = 64, h = 128):
 *
 *   columns [0, G)        the activated gates          LSTM i f g o;  GRU r z n
 *           [G, G+h)      LSTM: the cell c;            GRU: W_hn h_prev + b_hn
 *           [G+h, G+2h)   h_prev (zero at step 0)
 *           [G+2h, G+3h)  h
 *
 * Step s of a block of examples is one matrix product with W_hh (the recurrent product, on
 * cg_gemm) followed by an elementwise pass:
 *   LSTM  c = f c_prev + i g,  h = o tanh(c)
 *   GRU   n = tanh(xp_n + r (W_hn h_prev + b_hn)),  h = (1 - z) n + z h_prev
 *
 * Backward: rnn_output_grad turns dy into d(steps) (zero but for the h columns); the recurrent
 * gradient node walks the steps backwards over that buffer, which is its own (only it and the
 * weight-gradient nodes read it): in column block [0, G) it leaves dg, the gradient of the
 * recurrent pre-activations W_hh h_prev + b_hh; in [G, G+h) the LSTM's cell gradient carried
 * to the step before; into [G+2h, G+3h) of step s-1 it adds dg_s W_hh (and the GRU's z dh).
 * Its output is dxp, the gradient of the input projection (dense.c takes it from there):
 *   lstm_grad / gru_grad (dxp[t,G], dsteps, steps, W_hh)
 *   rnn_dw (dW_hh[G,h], dsteps, steps)   dW_hh = sum over rows of dg^T h_prev (one product)
 *   rnn_db (db_hh[G], dsteps)            db_hh = sum of dg
 * Examples are split into 8 fixed blocks (one task each, the whole sequence), so results do not
 * depend on the thread count. */
#include <math.h>
#include <string.h>

#include "cg.h"
#include "nnrt.h"
#include "nnrt_settings.h"
#include "ops.h"

/* ---------------------------------------------------------------- shape rule */

static const ArgSpec recurrent_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"hidden", ARG_INT, true, 0, NULL},
                                         {"return", ARG_STRING, false, 0, "sequence"}, SPEC_END};

static Value recurrent_rule(OpSema *s, const Expr *call, Bound *b, OpKind kind, const char *op, int gates) {
    const Node *x = value_node(s, b->values[0]);
    int64_t h = (int64_t)b->values[1].number;
    const char *ret = b->values[2].string;
    if (x->shape.rank != 2) {
        diag_error(s->diag, b->spans[0], "%s expects a sequence [t, d] (t positions of d features), got %s", op,
                   sema_shape(s, &x->shape));
        if (x->shape.rank == 1)
            diag_note(s->diag, SPAN_NONE, "a sequence comes from embedding (tokens -> embedding(vocab, d) -> %s(%lld)) or reshape(t, d)",
                      op, (long long)h);
        else
            diag_note(s->diag, SPAN_NONE, "reshape it to [t, d] first, e.g. reshape(%lld, %lld)",
                      (long long)(x->size / x->shape.dims[x->shape.rank - 1]), (long long)x->shape.dims[x->shape.rank - 1]);
        return value_error();
    }
    static const char *const returns[] = {"sequence", "last"};
    if (strcmp(ret, "sequence") != 0 && strcmp(ret, "last") != 0) {
        const char *guess = nnrt_closest(ret, returns, 2);
        if (guess)
            diag_error(s->diag, b->spans[2], "return of %s must be \"sequence\" or \"last\", got \"%s\"; did you mean \"%s\"?", op, ret,
                       guess);
        else
            diag_error(s->diag, b->spans[2], "return of %s must be \"sequence\" or \"last\", got \"%s\"", op, ret);
        diag_note(s->diag, SPAN_NONE, "\"sequence\" gives the state after every position [%lld,%lld]; \"last\" the state after the last one [%lld]",
                  (long long)x->shape.dims[0], (long long)h, (long long)h);
        return value_error();
    }
    int64_t t = x->shape.dims[0], d = x->shape.dims[1], G = gates * h;
    double weights = (double)G * (double)(d + h + 2);
    if (!sema_layer_fits(s, call, (double)t * (double)(G + 3 * h), weights, (double)t * (double)G * (double)(d + h)))
        return value_error();
    const char *layer = sema_layer_name(s, op, b);
    if (!layer) return value_error();
    /* PyTorch's U(-1/sqrt(h), 1/sqrt(h)) for all four tensors: He-uniform's bound sqrt(6/fan_in)
     * with fan_in = 6h, so the runtime needs no init kind of its own */
    Node *xp = ops_dense_node(s, call->span, x, G, layer, arena_printf(s->arena, "%s.weight_ih_l0", layer),
                              arena_printf(s->arena, "%s.bias_ih_l0", layer));
    ParamTensor *params[4];
    params[0] = graph_param(s->graph, xp->weight);
    params[1] = graph_param(s->graph, xp->bias);
    Node *steps = graph_add(s->graph, kind, call->span, &xp->id, 1, shape_make(2, (int64_t[]){t + 1, G + 3 * h}));
    steps->layer = layer;
    steps->units = h;
    steps->positions = t;
    steps->weight = graph_add_param(s->graph, arena_printf(s->arena, "%s.weight_hh_l0", layer), shape_make(2, (int64_t[]){G, h}),
                                    NNRT_INIT_HE_UNIFORM, 6 * h, G, steps->id);
    steps->bias = graph_add_param(s->graph, arena_printf(s->arena, "%s.bias_hh_l0", layer), shape_make(1, &G), NNRT_INIT_HE_UNIFORM,
                                  6 * h, G, steps->id);
    params[2] = graph_param(s->graph, steps->weight);
    params[3] = graph_param(s->graph, steps->bias);
    for (int i = 0; i < 4; i++) {
        params[i]->init = NNRT_INIT_HE_UNIFORM;
        params[i]->fan_in = 6 * h;
    }
    bool last = strcmp(ret, "last") == 0;
    int inputs[2] = {steps->id, s->graph->input};
    /* padded text: "last" is the state after the last real token, so the output reads the ids */
    bool padded = last && sema_input_is_padded(s);
    Node *out = graph_add(s->graph, OP_RNN_OUTPUT, call->span, inputs, padded ? 2 : 1,
                          last ? shape_make(1, &h) : shape_make(2, (int64_t[]){t, h}));
    out->layer = layer;
    out->units = h;
    out->positions = t;
    out->heads = gates; /* for its label */
    return tensor_value(out);
}

static Value lstm_rule(OpSema *s, const Expr *call, Bound *b) { return recurrent_rule(s, call, b, OP_LSTM, "lstm", 4); }
static Value gru_rule(OpSema *s, const Expr *call, Bound *b) { return recurrent_rule(s, call, b, OP_GRU, "gru", 3); }

/* ---------------------------------------------------------------- geometry */

typedef struct RnnGeometry {
    int64_t t, h, G, S;
    int64_t E;   /* elements per example: t rows of S and a spare one (see steps_row_spare) */
    bool lstm;
    bool last;   /* the output is the state after the last (real) step */
    bool padded; /* the output reads the token ids (input 1 of rnn_output) */
} RnnGeometry;

/* Column offsets within a step's row. */
static int64_t col_extra(const RnnGeometry *q) { return q->G; }
static int64_t col_hprev(const RnnGeometry *q) { return q->G + q->h; }
static int64_t col_h(const RnnGeometry *q) { return q->G + 2 * q->h; }

static RnnGeometry rnn_geometry(const Graph *g, const Node *node) {
    const Node *fwd = graph_forward_of(g, node);
    const Node *output = fwd->op == OP_RNN_OUTPUT ? fwd : NULL;
    const Node *steps = output ? graph_node(g, output->inputs[0]) : fwd;
    RnnGeometry q = {.t = steps->positions, .h = steps->units, .lstm = steps->op == OP_LSTM};
    q.G = (q.lstm ? 4 : 3) * q.h;
    q.S = q.G + 3 * q.h;
    q.E = (q.t + 1) * q.S;
    if (output) {
        q.last = output->shape.rank == 1;
        q.padded = output->input_count == 2;
    }
    return q;
}

/* ---------------------------------------------------------------- backward rule */

static void recurrent_backward(Ad *ad, const Node *n, int dy) {
    const Graph *g = ad_graph(ad);
    if (n->op == OP_RNN_OUTPUT) {
        const Node *steps = graph_node(g, n->inputs[0]);
        Node *dsteps = ad_node(ad, OP_RNN_OUTPUT_GRAD, dy, n->input_count == 2 ? n->inputs[1] : -1, steps->shape, n);
        ad_accumulate(ad, steps->id, dsteps->id);
        return;
    }
    /* lstm / gru: dy is d(steps), which this node's gradient nodes own (see the header) */
    const Node *xp = graph_node(g, n->inputs[0]);
    Node *dxp = ad_node(ad, n->op == OP_LSTM ? OP_LSTM_GRAD : OP_GRU_GRAD, dy, n->id, xp->shape, n);
    dxp->weight = n->weight;
    Node *dw = ad_node(ad, OP_RNN_DW, dy, n->id, (Shape){0}, n);
    dw->grad_param = n->weight;
    Node *db = ad_node(ad, OP_RNN_DB, dy, -1, (Shape){0}, n);
    db->grad_param = n->bias;
    ad_accumulate(ad, xp->id, dxp->id);
}

/* ---------------------------------------------------------------- kernels */

enum { RNN_BLOCKS = 8 };

typedef struct RnnTask {
    const Node *node;
    RnnGeometry q;
} RnnTask;

/* Examples [first, last) of block c of n: c n / 8 .. (c+1) n / 8. */
static void block_range(Cg *cg, LLVMValueRef c, LLVMValueRef n, LLVMValueRef *first, LLVMValueRef *count) {
    LLVMValueRef lo = LLVMBuildSDiv(cg->b, cg_mul(cg, c, n), cg_i64(cg, RNN_BLOCKS), "");
    LLVMValueRef hi = LLVMBuildSDiv(cg->b, cg_mul(cg, cg_add(cg, c, cg_i64(cg, 1)), n), cg_i64(cg, RNN_BLOCKS), "");
    *first = lo;
    *count = LLVMBuildSub(cg->b, hi, lo, "");
}

static LLVMValueRef one_minus(Cg *cg, LLVMValueRef x) { return cg_fsub(cg, cg_const(cg, 1), x); }

/* The per-step products read W_hh packed into panels of PW columns (one register tile of the
 * micro-kernel): the panel's rows are contiguous, so a block's row tiles reuse it from L1. (Read
 * in place, W_hh's rows of 512 B or 2 KB would fall into a few cache sets and be evicted between
 * row tiles.) */
static int64_t panel_width(const Cg *cg) {
    int64_t lanes = cg->vector_bytes / (cg->f64 ? 8 : 4);
    return (cg->vector_bytes >= 64 ? 4 : 2) * lanes;
}

/* packed <- B(p, j) = w[p ps + j js] for p < P, j < J: panel k holds columns [k PW, k PW + width)
 * at packed[k P PW + p width + c] (width PW, the last one J % PW). */
static void pack_panels(Cg *cg, LLVMValueRef packed, LLVMValueRef w, int64_t P, int64_t J, int64_t ps, int64_t js) {
    int64_t PW = panel_width(cg), full = J / PW, rest = J % PW;
    for (int part = 0; part < 2; part++) {
        int64_t width = part ? rest : PW;
        if (width == 0 || (!part && full == 0)) continue;
        CgLoop k = cg_loop_begin(cg, cg_i64(cg, part ? full : 0), cg_i64(cg, part ? full + 1 : full), "panel");
        LLVMValueRef dst = cg_gep(cg, packed, cg_mul(cg, k.iv, cg_i64(cg, P * PW)));
        LLVMValueRef col0 = cg_mul(cg, k.iv, cg_i64(cg, PW));
        CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, P), "p");
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, width), "c");
        LLVMValueRef from = cg_add(cg, cg_mul(cg, p.iv, cg_i64(cg, ps)), cg_mul(cg, cg_add(cg, col0, c.iv), cg_i64(cg, js)));
        cg_store(cg, cg_load(cg, w, from), dst, cg_add(cg, cg_mul(cg, p.iv, cg_i64(cg, width)), c.iv));
        cg_loop_end(cg, &c);
        cg_loop_end(cg, &p);
        cg_loop_end(cg, &k);
    }
}

/* The product g (its a, c, bias, M, P, strides, accumulate) with B = the packed panels of J
 * columns: one micro-kernel call per panel. */
static void panel_gemm(Cg *cg, const CgGemm *g, LLVMValueRef packed, int64_t P, int64_t J) {
    int64_t PW = panel_width(cg), full = J / PW, rest = J % PW;
    for (int part = 0; part < 2; part++) {
        int64_t width = part ? rest : PW;
        if (width == 0 || (!part && full == 0)) continue;
        CgLoop k = cg_loop_begin(cg, cg_i64(cg, part ? full : 0), cg_i64(cg, part ? full + 1 : full), "panel");
        LLVMValueRef col0 = cg_mul(cg, k.iv, cg_i64(cg, PW));
        CgGemm panel = *g;
        panel.b = cg_gep(cg, packed, cg_mul(cg, k.iv, cg_i64(cg, P * PW)));
        panel.b_rs = width;
        panel.J = width;
        panel.c = cg_gep(cg, g->c, col0);
        panel.bias = g->bias ? cg_gep(cg, g->bias, col0) : NULL;
        cg_gemm(cg, &panel);
        k.no_unroll = true;
        cg_loop_end(cg, &k);
    }
}

/* Forward step s (an i64 value; first: it is step 0, whose h_prev and c_prev are zero) for the
 * block's `rows` examples at st (steps) and xp. Step 0 is emitted apart so that no index or
 * value depends on a runtime test of s: the elementwise loops stay plain vector loops. */
static void forward_step(Cg *cg, const RnnGeometry *q, LLVMValueRef st, LLVMValueRef xp, LLVMValueRef wt, LLVMValueRef bias,
                         LLVMValueRef rows, LLVMValueRef s, bool first) {
    int64_t t = q->t, h = q->h, G = q->G, S = q->S, E = q->E;
    LLVMValueRef row = cg_mul(cg, s, cg_i64(cg, S));
    /* h_prev of this step: h of the step before, zero at step 0 */
    CgLoop b0 = cg_loop_begin(cg, cg_i64(cg, 0), rows, "b");
    LLVMValueRef base0 = cg_add(cg, cg_mul(cg, b0.iv, cg_i64(cg, E)), row);
    CgLoop j0 = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, h), "j");
    LLVMValueRef prev = first ? cg_const(cg, 0) : cg_load(cg, st, cg_add(cg, base0, cg_add(cg, cg_i64(cg, col_h(q) - S), j0.iv)));
    cg_store(cg, prev, st, cg_add(cg, base0, cg_add(cg, cg_i64(cg, col_hprev(q)), j0.iv)));
    cg_loop_end(cg, &j0);
    cg_loop_end(cg, &b0);
    /* the gates' recurrent part W_hh h_prev + b_hh into columns [0, G) */
    CgGemm g = {.c = cg_gep(cg, st, row), .a = cg_gep(cg, st, cg_add(cg, row, cg_i64(cg, col_hprev(q)))), .bias = bias,
                .M = rows, .P = cg_i64(cg, h), .a_rs = E, .a_cs = 1, .c_rs = E, .scale = 1.0, .serial = true};
    panel_gemm(cg, &g, wt, h, G);
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), rows, "b");
    LLVMValueRef gates = cg_gep(cg, st, cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, E)), row));
    LLVMValueRef x = cg_gep(cg, xp, cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, t * G)), cg_mul(cg, s, cg_i64(cg, G))));
    CgLoop j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, h), "j");
    LLVMValueRef at[4];
    for (int k = 0; k < 4; k++) at[k] = cg_add(cg, cg_i64(cg, k * h), j.iv);
    LLVMValueRef extra = cg_add(cg, cg_i64(cg, col_extra(q)), j.iv), h_at = cg_add(cg, cg_i64(cg, col_h(q)), j.iv);
#define PRE(k) cg_fadd(cg, cg_load(cg, gates, at[k]), cg_load(cg, x, at[k]))
    if (q->lstm) {
        LLVMValueRef gi = cg_sigmoid_fast(cg, PRE(0)), gf = cg_sigmoid_fast(cg, PRE(1));
        LLVMValueRef gg = cg_tanh_fast(cg, PRE(2)), go = cg_sigmoid_fast(cg, PRE(3));
        LLVMValueRef cell = cg_fmul(cg, gi, gg);
        if (!first) cell = cg_fadd(cg, cell, cg_fmul(cg, gf, cg_load(cg, gates, cg_add(cg, extra, cg_i64(cg, -S)))));
        cg_store(cg, gi, gates, at[0]);
        cg_store(cg, gf, gates, at[1]);
        cg_store(cg, gg, gates, at[2]);
        cg_store(cg, go, gates, at[3]);
        cg_store(cg, cell, gates, extra);
        cg_store(cg, cg_fmul(cg, go, cg_tanh_fast(cg, cell)), gates, h_at);
    } else {
        LLVMValueRef gr = cg_sigmoid_fast(cg, PRE(0)), gz = cg_sigmoid_fast(cg, PRE(1));
        LLVMValueRef hn = cg_load(cg, gates, at[2]);
        LLVMValueRef gn = cg_tanh_fast(cg, cg_fadd(cg, cg_load(cg, x, at[2]), cg_fmul(cg, gr, hn)));
        LLVMValueRef out = cg_fmul(cg, one_minus(cg, gz), gn);
        if (!first) out = cg_fadd(cg, out, cg_fmul(cg, gz, cg_load(cg, gates, cg_add(cg, cg_i64(cg, col_hprev(q)), j.iv))));
        cg_store(cg, gr, gates, at[0]);
        cg_store(cg, gz, gates, at[1]);
        cg_store(cg, gn, gates, at[2]);
        cg_store(cg, hn, gates, extra);
        cg_store(cg, out, gates, h_at);
    }
#undef PRE
    cg_loop_end(cg, &j);
    cg_loop_end(cg, &b);
}

/* values: steps, xp, packed W_hh^T (the scratch), b_hh, n. */
static void forward_blocks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const RnnGeometry *q = &((const RnnTask *)user)->q;
    int64_t t = q->t, G = q->G, S = q->S, E = q->E;
    CgLoop c = cg_loop_begin(cg, begin, end, "block");
    LLVMValueRef first, rows;
    block_range(cg, c.iv, v[4], &first, &rows);
    LLVMValueRef st = cg_gep(cg, v[0], cg_mul(cg, first, cg_i64(cg, E)));
    LLVMValueRef xp = cg_gep(cg, v[1], cg_mul(cg, first, cg_i64(cg, t * G)));
    /* the spare row's h_prev takes part in rnn_dw's product (times a zero gradient): zero it */
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), rows, "b");
    LLVMValueRef spare = cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, E)), cg_i64(cg, t * S + col_hprev(q)));
    CgLoop j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->h), "j");
    cg_store(cg, cg_const(cg, 0), st, cg_add(cg, spare, j.iv));
    cg_loop_end(cg, &j);
    cg_loop_end(cg, &b);
    forward_step(cg, q, st, xp, v[2], v[3], rows, cg_i64(cg, 0), true);
    CgLoop s = cg_loop_begin(cg, cg_i64(cg, 1), cg_i64(cg, t), "step");
    forward_step(cg, q, st, xp, v[2], v[3], rows, s.iv, false);
    cg_loop_end(cg, &s);
    cg_loop_end(cg, &c);
}

/* The elementwise part of backward step s (first: step 0) for the block's examples: dg into
 * dsteps [0, G) and dxp; what flows to step s-1 directly (the LSTM's cell gradient, the GRU's
 * z dh) into its row. */
static void backward_step(Cg *cg, const RnnGeometry *q, LLVMValueRef dx, LLVMValueRef ds, LLVMValueRef st, LLVMValueRef rows,
                          LLVMValueRef s, bool first) {
    int64_t t = q->t, h = q->h, G = q->G, S = q->S, E = q->E;
    LLVMValueRef row = cg_mul(cg, s, cg_i64(cg, S));
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), rows, "b");
    LLVMValueRef rs = cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, E)), row);
    LLVMValueRef gates = cg_gep(cg, st, rs), d = cg_gep(cg, ds, rs);
    LLVMValueRef x = cg_gep(cg, dx, cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, t * G)), cg_mul(cg, s, cg_i64(cg, G))));
    CgLoop j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, h), "j");
    LLVMValueRef at[4];
    for (int k = 0; k < 4; k++) at[k] = cg_add(cg, cg_i64(cg, k * h), j.iv);
    LLVMValueRef extra = cg_add(cg, cg_i64(cg, col_extra(q)), j.iv), h_at = cg_add(cg, cg_i64(cg, col_h(q)), j.iv);
    LLVMValueRef hprev = cg_add(cg, cg_i64(cg, col_hprev(q)), j.iv);
    LLVMValueRef dh = cg_load(cg, d, h_at);
    if (q->lstm) {
        LLVMValueRef gi = cg_load(cg, gates, at[0]), gf = cg_load(cg, gates, at[1]), gg = cg_load(cg, gates, at[2]);
        LLVMValueRef go = cg_load(cg, gates, at[3]), cell = cg_load(cg, gates, extra);
        LLVMValueRef prev_extra = cg_add(cg, extra, cg_i64(cg, -S));
        LLVMValueRef c_prev = first ? cg_const(cg, 0) : cg_load(cg, gates, prev_extra);
        LLVMValueRef tc = cg_tanh_fast(cg, cell);
        LLVMValueRef d_o = cg_fmul(cg, dh, tc);
        LLVMValueRef dc = cg_fadd(cg, cg_load(cg, d, extra), cg_fmul(cg, cg_fmul(cg, dh, go), one_minus(cg, cg_fmul(cg, tc, tc))));
        LLVMValueRef a[4] = {cg_fmul(cg, cg_fmul(cg, dc, gg), cg_fmul(cg, gi, one_minus(cg, gi))),
                             cg_fmul(cg, cg_fmul(cg, dc, c_prev), cg_fmul(cg, gf, one_minus(cg, gf))),
                             cg_fmul(cg, cg_fmul(cg, dc, gi), one_minus(cg, cg_fmul(cg, gg, gg))),
                             cg_fmul(cg, d_o, cg_fmul(cg, go, one_minus(cg, go)))};
        for (int k = 0; k < 4; k++) {
            cg_store(cg, a[k], x, at[k]);
            cg_store(cg, a[k], d, at[k]);
        }
        if (!first) cg_store(cg, cg_fmul(cg, dc, gf), d, prev_extra); /* the cell gradient carried to step s-1 */
    } else {
        LLVMValueRef gr = cg_load(cg, gates, at[0]), gz = cg_load(cg, gates, at[1]), gn = cg_load(cg, gates, at[2]);
        LLVMValueRef hn = cg_load(cg, gates, extra), hp = cg_load(cg, gates, hprev);
        LLVMValueRef an = cg_fmul(cg, cg_fmul(cg, dh, one_minus(cg, gz)), one_minus(cg, cg_fmul(cg, gn, gn)));
        LLVMValueRef ar = cg_fmul(cg, cg_fmul(cg, an, hn), cg_fmul(cg, gr, one_minus(cg, gr)));
        LLVMValueRef az = cg_fmul(cg, cg_fmul(cg, dh, cg_fsub(cg, hp, gn)), cg_fmul(cg, gz, one_minus(cg, gz)));
        cg_store(cg, ar, x, at[0]);
        cg_store(cg, az, x, at[1]);
        cg_store(cg, an, x, at[2]);
        cg_store(cg, ar, d, at[0]);
        cg_store(cg, az, d, at[1]);
        cg_store(cg, cg_fmul(cg, an, gr), d, at[2]);
        if (!first) { /* dh_prev += z dh */
            LLVMValueRef to = cg_add(cg, h_at, cg_i64(cg, -S));
            cg_store(cg, cg_fadd(cg, cg_load(cg, d, to), cg_fmul(cg, gz, dh)), d, to);
        }
    }
    cg_loop_end(cg, &j);
    cg_loop_end(cg, &b);
}

/* values: dxp, dsteps, steps, packed W_hh (the scratch), n. */
static void backward_blocks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const RnnGeometry *q = &((const RnnTask *)user)->q;
    int64_t t = q->t, h = q->h, G = q->G, S = q->S, E = q->E;
    CgLoop c = cg_loop_begin(cg, begin, end, "block");
    LLVMValueRef first, rows;
    block_range(cg, c.iv, v[4], &first, &rows);
    LLVMValueRef dx = cg_gep(cg, v[0], cg_mul(cg, first, cg_i64(cg, t * G)));
    LLVMValueRef ds = cg_gep(cg, v[1], cg_mul(cg, first, cg_i64(cg, E)));
    LLVMValueRef st = cg_gep(cg, v[2], cg_mul(cg, first, cg_i64(cg, E)));
    /* steps t-1 .. 1, each passing dg_s W_hh to dh of step s-1; then step 0 */
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, t - 1), "back");
    LLVMValueRef s = LLVMBuildSub(cg->b, cg_i64(cg, t - 1), r.iv, "");
    backward_step(cg, q, dx, ds, st, rows, s, false);
    LLVMValueRef row = cg_mul(cg, s, cg_i64(cg, S));
    CgGemm g = {.c = cg_gep(cg, ds, cg_add(cg, row, cg_i64(cg, col_h(q) - S))), .a = cg_gep(cg, ds, row), .M = rows,
                .P = cg_i64(cg, G), .a_rs = E, .a_cs = 1, .c_rs = E, .scale = 1.0, .accumulate = true, .serial = true};
    panel_gemm(cg, &g, v[3], G, h);
    cg_loop_end(cg, &r);
    backward_step(cg, q, dx, ds, st, rows, cg_i64(cg, 0), true);
    cg_loop_end(cg, &c);
}

/* The step whose state rnn_output returns for example b ("last"): t-1, or with padded ids the
 * last position holding a real token (-1 when there is none: the zero initial state). */
static LLVMValueRef last_step(Cg *cg, const RnnGeometry *q, LLVMValueRef ids, LLVMValueRef b, LLVMValueRef var) {
    if (!ids) return cg_i64(cg, q->t - 1);
    LLVMBuildStore(cg->b, cg_i64(cg, -1), var);
    CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->t), "p");
    LLVMValueRef id = cg_load(cg, ids, cg_add(cg, cg_mul(cg, b, cg_i64(cg, q->t)), p.iv));
    LLVMValueRef real = LLVMBuildFCmp(cg->b, LLVMRealUNE, id, cg_const(cg, 0), "");
    LLVMValueRef old = LLVMBuildLoad2(cg->b, cg->i64, var, "");
    LLVMBuildStore(cg->b, LLVMBuildSelect(cg->b, real, p.iv, old, ""), var);
    cg_loop_end(cg, &p);
    return LLVMBuildLoad2(cg->b, cg->i64, var, "");
}

/* rnn_output (y, steps[, ids]): h of every step, or of the last (real) one.
 * rnn_output_grad (dsteps, dy[, ids]): zero, but dy in the h columns of those steps. */
static void output_kernel(Cg *cg, const Node *node, const RnnGeometry *q) {
    int64_t t = q->t, h = q->h, S = q->S;
    bool grad = node->op == OP_RNN_OUTPUT_GRAD;
    LLVMValueRef out = cg_arg_out(cg), src = cg_arg_in(cg, 0), n = cg_arg_n(cg);
    LLVMValueRef ids = q->padded ? cg_arg_in(cg, 1) : NULL;
    LLVMValueRef steps = grad ? out : src, y = grad ? src : out;
    if (grad) {
        CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, n, cg_i64(cg, q->E)), "z");
        cg_store(cg, cg_const(cg, 0), out, z.iv);
        cg_loop_end(cg, &z);
    }
    LLVMValueRef var = cg_var(cg, cg->i64, "last");
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), n, "b");
    LLVMValueRef first = q->last ? last_step(cg, q, ids, b.iv, var) : cg_i64(cg, 0);
    LLVMValueRef end = q->last ? cg_add(cg, first, cg_i64(cg, 1)) : cg_i64(cg, t);
    if (q->last) first = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, first, cg_i64(cg, 0), ""), cg_i64(cg, 0), first, "");
    if (q->last && !grad) { /* no real token: the zero initial state */
        CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, h), "z");
        cg_store(cg, cg_const(cg, 0), y, cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, h)), z.iv));
        cg_loop_end(cg, &z);
    }
    CgLoop s = cg_loop_begin(cg, first, end, "s");
    LLVMValueRef y_row = q->last ? cg_mul(cg, b.iv, cg_i64(cg, h)) : cg_mul(cg, cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, t)), s.iv), cg_i64(cg, h));
    LLVMValueRef s_row = cg_add(cg, cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, q->E)), cg_mul(cg, s.iv, cg_i64(cg, S))), cg_i64(cg, col_h(q)));
    CgLoop j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, h), "j");
    if (grad) cg_store(cg, cg_load(cg, y, cg_add(cg, y_row, j.iv)), steps, cg_add(cg, s_row, j.iv));
    else cg_store(cg, cg_load(cg, steps, cg_add(cg, s_row, j.iv)), y, cg_add(cg, y_row, j.iv));
    cg_loop_end(cg, &j);
    cg_loop_end(cg, &s);
    cg_loop_end(cg, &b);
}

/* rnn_dw: dW_hh[G, h] = scale * sum over rows (example, step) of dg^T h_prev (one product). */
static void dw_kernel(Cg *cg, const Node *node, const RnnGeometry *q) {
    CgGemm g = {.c = cg_arg_out(cg), .a = cg_arg_in(cg, 0), .b = cg_gep(cg, cg_arg_in(cg, 1), cg_i64(cg, col_hprev(q))),
                .M = cg_i64(cg, q->G), .P = cg_mul(cg, cg_arg_n(cg), cg_i64(cg, q->t + 1)), .J = q->h, .a_rs = 1, .a_cs = q->S,
                .b_rs = q->S, .c_rs = q->h, .scale = node->scale};
    cg_gemm(cg, &g);
}

/* rnn_db: db_hh[G] = scale * sum of dg (columns [0, G) of rows of S). */
static void db_kernel(Cg *cg, const Node *node, const RnnGeometry *q) {
    LLVMValueRef out = cg_arg_out(cg), ds = cg_arg_in(cg, 0);
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->G), "z");
    cg_store(cg, cg_const(cg, 0), out, z.iv);
    cg_loop_end(cg, &z);
    CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, cg_arg_n(cg), cg_i64(cg, q->t + 1)), "r");
    LLVMValueRef row = cg_mul(cg, r.iv, cg_i64(cg, q->S));
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->G), "o");
    LLVMValueRef v = cg_load(cg, ds, cg_add(cg, row, o.iv));
    if (node->scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, node->scale));
    cg_store(cg, cg_fadd(cg, cg_load(cg, out, o.iv), v), out, o.iv);
    cg_loop_end(cg, &o);
    cg_loop_end(cg, &r);
}

static LLVMValueRef recurrent_kernel(Cg *cg, const Node *node) {
    RnnTask task = {node, rnn_geometry(cg->g, node)};
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    if (node->op == OP_LSTM || node->op == OP_GRU) {
        /* B = W_hh^T [h, G] packed once per call: B(p, j) = W_hh[j h + p] */
        LLVMValueRef wt = cg_arg_scratch(cg);
        pack_panels(cg, wt, cg_arg_weight(cg), task.q.h, task.q.G, 1, task.q.h);
        LLVMValueRef v[5] = {cg_arg_out(cg), cg_arg_in(cg, 0), wt, cg_arg_bias(cg), cg_arg_n(cg)};
        cg_parallel_for(cg, cg_i64(cg, RNN_BLOCKS), v, 5, false, forward_blocks, &task);
    } else if (node->op == OP_LSTM_GRAD || node->op == OP_GRU_GRAD) {
        /* B = W_hh [G, h] packed: B(k, j) = W_hh[k h + j] */
        LLVMValueRef wp = cg_arg_scratch(cg);
        pack_panels(cg, wp, cg_arg_weight(cg), task.q.G, task.q.h, task.q.h, 1);
        LLVMValueRef v[5] = {cg_arg_out(cg), cg_arg_in(cg, 0), cg_arg_in(cg, 1), wp, cg_arg_n(cg)};
        cg_parallel_for(cg, cg_i64(cg, RNN_BLOCKS), v, 5, false, backward_blocks, &task);
    } else if (node->op == OP_RNN_DW) {
        dw_kernel(cg, node, &task.q);
    } else if (node->op == OP_RNN_DB) {
        db_kernel(cg, node, &task.q);
    } else {
        output_kernel(cg, node, &task.q);
    }
    cg_kernel_end(cg);
    return fn;
}

/* ---------------------------------------------------------------- costs and the table entry */

/* The recurrent products of one pass: t steps of W_hh [G, h] times h_prev. */
static int64_t recurrent_product_flops(const RnnGeometry *q) { return 2 * q->t * q->G * q->h; }

/* Forward: the recurrent products and the gates (about 10 per hidden unit and step with the
 * activations counted 1 each). Backward: dh_prev and dW_hh products, and the gate gradients
 * (about 20). The input projection is its dense node's. */
static int64_t recurrent_flops(const Graph *g, const Node *n, int64_t *backward) {
    *backward = 0;
    if (n->op != OP_LSTM && n->op != OP_GRU) return 0;
    RnnGeometry q = rnn_geometry(g, n);
    *backward = 2 * recurrent_product_flops(&q) + 20 * q.t * q.h + q.t * q.G;
    return recurrent_product_flops(&q) + 10 * q.t * q.h;
}

/* The forward and the recurrent gradient kernels keep W_hh packed (pack_panels). */
static int64_t recurrent_scratch(const Graph *g, const Node *n) {
    if (n->op != OP_LSTM && n->op != OP_GRU && n->op != OP_LSTM_GRAD && n->op != OP_GRU_GRAD) return 0;
    RnnGeometry q = rnn_geometry(g, n);
    return q.G * q.h;
}

static int64_t recurrent_kernel_flops(const Graph *g, const Node *n) {
    if (n->op == OP_RNN_OUTPUT || n->op == OP_RNN_OUTPUT_GRAD || n->op == OP_RNN_DB) return 0;
    RnnGeometry q = rnn_geometry(g, n);
    return recurrent_product_flops(&q);
}

/* The output node carries the user's name of the op (lstm, gru); the step node is the saved state. */
static const char *recurrent_label(const Node *n) {
    switch (n->op) {
    case OP_LSTM: return "lstm_steps";
    case OP_GRU: return "gru_steps";
    case OP_RNN_OUTPUT: return n->heads == 4 ? "lstm" : "gru";
    default: return NULL;
    }
}

static const OpSurface recurrent_surface[] = {
    {"lstm", recurrent_spec, lstm_rule, OPS_LAYER},
    {"gru", recurrent_spec, gru_rule, OPS_LAYER},
    {NULL, NULL, NULL, 0},
};
static const OpKind recurrent_kinds[] = {OP_LSTM, OP_GRU, OP_RNN_OUTPUT, OP_RNN_OUTPUT_GRAD, OP_LSTM_GRAD, OP_GRU_GRAD,
                                         OP_RNN_DW, OP_RNN_DB, OP_COUNT};
/* a sequence output when return="sequence" (rank 2); the flag only feeds warnings on [t, d] */
static const OpKindFlags recurrent_flags[] = {{OP_RNN_OUTPUT, OPK_SEQUENCE_OUTPUT}, {OP_COUNT, 0}};

const OpFamily ops_recurrent = {
    .name = "recurrent",
    .surface = recurrent_surface,
    .kinds = recurrent_kinds,
    .backward = recurrent_backward,
    .kernel = recurrent_kernel,
    .flops = recurrent_flops,
    .kernel_flops = recurrent_kernel_flops,
    .scratch = recurrent_scratch,
    .label = recurrent_label,
    .flags = recurrent_flags,
};
