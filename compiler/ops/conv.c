/* conv.c — convolution and pooling: shape rules, backward rules, kernels, costs.
 *
 * conv2d(f, k, stride=1, pad=0|"same", bias=true): [c,h,w] -> [f,(h+2p-k)/s+1,(w+2p-k)/s+1]
 * conv1d(same arguments):                           [c,t] -> [f,(t+2p-k)/s+1], weight [f,c,k]
 * maxpool/avgpool(k, stride=k): [c,h,w] -> [c,(h-k)/s+1,(w-k)/s+1]; [c,t] -> [c,(t-k)/s+1]
 * global_avgpool: [c,h,w] or [c,t] -> [c], one window over everything but the channels
 *
 * conv1d is conv2d on [c,1,t] with a 1 x K window, padded along t only.
 * Legend: C input channels, H x W input size, F filters, K kernel, S stride, P padding,
 *         OH x OW output size, CKK = C*K*K, OHW = OH*OW. Per-example loops over b < n.
 *
 *   conv2d     (y[n,F,OHW], x[n,C,H,W], Wt[F,CKK], b[F]?, scratch[CKK,OHW])
 *              col = im2col(x_b);  y_b = act(Wt col + b)              (GEMM: M=F, P=CKK, J=OHW)
 *   conv2d_dw  (dW[F,CKK], dy, x, scratch[CKK,OHW | OHW,F | CKK,F])
 *              dW^T = sum_b col_b dy_b^T, then transposed             (GEMM: M=CKK, P=OHW, J=F)
 *   conv2d_db  (db[F], dy)                db[f] = sum_b,j dy[b,f,j]
 *   conv2d_dx  (dx, dy, Wt, scratch[CKK,OHW])
 *              dcol = Wt^T dy_b; dx_b = col2im(dcol)                   (GEMM: M=CKK, P=F, J=OHW)
 *   maxpool    (y, x)       max over each window; [c,t] inputs are [c,1,t] with a 1 x K window
 *   maxpool_grad (dx, dy, x, y)   dy goes to the first position of the window equal to the max
 *   avgpool    (y, x)       mean over each window (global_avgpool: one window of H x W)
 *   avgpool_grad (dx, dy)   dy / (KH*KW) to every position of the window
 * The convolution products run on the register-blocked micro-kernel of cg_gemm.c. */
#include <math.h>

#include "cg.h"
#include "nnrt.h"
#include "ops.h"

/* ---------------------------------------------------------------- shape rules */

/* The padding (argument 4): a number, or "same" = (k-1)/2, which keeps the size only at
 * stride 1 with an odd kernel. Returns -1 after reporting. */
static int64_t conv_pad(OpSema *s, const Bound *b, int64_t stride, int64_t k) {
    if (b->values[4].kind != VAL_STRING) return (int64_t)b->values[4].number;
    if (stride != 1 || k % 2 == 0) {
        diag_error(s->diag, b->spans[4], "pad=\"same\" needs stride 1 and an odd kernel size (got stride %lld, k %lld)",
                   (long long)stride, (long long)k);
        return -1;
    }
    return (k - 1) / 2;
}

static const ArgSpec conv_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"f", ARG_INT, true, 0, NULL},
                                    {"k", ARG_INT, true, 0, NULL}, {"stride", ARG_INT, false, 1, NULL},
                                    {"pad", ARG_PAD, false, 0, NULL}, {"bias", ARG_BOOL, false, 1, NULL}, SPEC_END};

/* The conv node with its weight [f, c, k...] (weight_rank 4 or 3) and bias; fan-in c*kh*kw. */
static Value conv_node(OpSema *s, const Expr *call, Bound *b, const char *op, Shape out, int64_t kh, int64_t kw,
                       int64_t stride, int64_t pad) {
    const Node *x = value_node(s, b->values[0]);
    int64_t f = out.dims[0], c = x->shape.dims[0];
    const char *layer = sema_layer_name(s, op, b);
    if (!layer) return value_error();
    Node *n = graph_add(s->graph, OP_CONV2D, call->span, &x->id, 1, out);
    n->layer = layer;
    n->units = f;
    n->kernel_h = kh;
    n->kernel_w = kw;
    n->stride = stride;
    n->pad = pad;
    Shape weight = kh == 1 && x->shape.rank == 2 ? shape_make(3, (int64_t[]){f, c, kw}) : shape_make(4, (int64_t[]){f, c, kh, kw});
    n->weight = graph_add_param(s->graph, arena_printf(s->arena, "%s.weight", layer), weight, NNRT_INIT_GLOROT_UNIFORM,
                                c * kh * kw, f * kh * kw, n->id);
    if (b->values[5].boolean)
        n->bias = graph_add_param(s->graph, arena_printf(s->arena, "%s.bias", layer), shape_make(1, &f), NNRT_INIT_ZEROS,
                                  c * kh * kw, f * kh * kw, n->id);
    return tensor_value(n);
}

static Value conv2d_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    int64_t f = (int64_t)b->values[1].number, k = (int64_t)b->values[2].number, stride = (int64_t)b->values[3].number;
    if (x->shape.rank != 3) {
        diag_error(s->diag, call->span, "conv2d expects an input of shape [c,h,w], got %s", sema_shape(s, &x->shape));
        int64_t side = (int64_t)floor(sqrt((double)x->size) + 0.5);
        if (x->shape.rank == 1 && side * side == x->size)
            diag_note(s->diag, SPAN_NONE, "reshape it first: x -> reshape(1, %lld, %lld) -> conv2d(...)", (long long)side, (long long)side);
        return value_error();
    }
    int64_t pad = conv_pad(s, b, stride, k);
    if (pad < 0) return value_error();
    int64_t h = x->shape.dims[1], w = x->shape.dims[2];
    if (h + 2 * pad < k || w + 2 * pad < k) {
        diag_error(s->diag, call->span, "conv2d kernel %lldx%lld does not fit the input %s with pad %lld", (long long)k,
                   (long long)k, sema_shape(s, &x->shape), (long long)pad);
        if (k % 2 == 1) diag_note(s->diag, SPAN_NONE, "pad=%lld (or pad=\"same\") keeps the size at stride 1", (long long)(k - 1) / 2);
        return value_error();
    }
    int64_t c = x->shape.dims[0];
    /* In doubles: k*k*c can overflow int64 before any limit applies. */
    double out_h = (double)((h + 2 * pad - k) / stride + 1), out_w = (double)((w + 2 * pad - k) / stride + 1);
    double weights = (double)f * (double)c * (double)k * (double)k;
    if (!sema_layer_fits(s, call, (double)f * out_h * out_w, weights, weights * out_h * out_w)) return value_error();
    Shape out = shape_make(3, (int64_t[]){f, (h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1});
    return conv_node(s, call, b, "conv2d", out, k, k, stride, pad);
}

/* conv1d is lowered as conv2d over [c,1,t] */
static Value conv1d_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    int64_t f = (int64_t)b->values[1].number, k = (int64_t)b->values[2].number, stride = (int64_t)b->values[3].number;
    if (x->shape.rank != 2) {
        diag_error(s->diag, call->span, "conv1d expects an input of shape [c,t], got %s", sema_shape(s, &x->shape));
        if (x->shape.rank == 1) diag_note(s->diag, SPAN_NONE, "reshape it first: x -> reshape(1, %lld) -> conv1d(...)", (long long)x->size);
        return value_error();
    }
    int64_t pad = conv_pad(s, b, stride, k);
    if (pad < 0) return value_error();
    int64_t c = x->shape.dims[0], t = x->shape.dims[1];
    if (t + 2 * pad < k) {
        diag_error(s->diag, call->span, "conv1d kernel %lld does not fit the input %s with pad %lld", (long long)k,
                   sema_shape(s, &x->shape), (long long)pad);
        return value_error();
    }
    if ((double)c * (double)k * (double)f * (double)t > 1099511627776.0) {
        diag_error(s->diag, call->span, "conv1d needs more than 2^40 multiply-adds per example");
        return value_error();
    }
    return conv_node(s, call, b, "conv1d", shape_make(2, (int64_t[]){f, (t + 2 * pad - k) / stride + 1}), 1, k, stride, pad);
}

static const ArgSpec pool_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"k", ARG_INT, true, 0, NULL},
                                    {"stride", ARG_INT, false, 0, NULL}, SPEC_END};
static Value pool_rule(OpSema *s, OpKind op, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    int64_t k = (int64_t)b->values[1].number;
    int64_t stride = b->given[2] ? (int64_t)b->values[2].number : k;
    if (x->shape.rank != 3 && x->shape.rank != 2) {
        diag_error(s->diag, call->span, "%s expects an input of shape [c,h,w] or [c,t], got %s", call->text, sema_shape(s, &x->shape));
        return value_error();
    }
    int64_t h = x->shape.rank == 3 ? x->shape.dims[1] : 1, w = x->shape.dims[x->shape.rank - 1];
    int64_t kh = x->shape.rank == 3 ? k : 1;
    if (h < kh || w < k) {
        diag_error(s->diag, call->span, "%s window %lld is larger than the input %s", call->text, (long long)k, sema_shape(s, &x->shape));
        return value_error();
    }
    Shape out = x->shape;
    if (x->shape.rank == 3) out.dims[1] = (h - kh) / stride + 1;
    out.dims[out.rank - 1] = (w - k) / stride + 1;
    Node *n = graph_add(s->graph, op, call->span, &x->id, 1, out);
    n->kernel_h = kh;
    n->kernel_w = k;
    n->stride = stride;
    return tensor_value(n);
}
static Value maxpool_rule(OpSema *s, const Expr *call, Bound *b) { return pool_rule(s, OP_MAXPOOL, call, b); }
static Value avgpool_rule(OpSema *s, const Expr *call, Bound *b) { return pool_rule(s, OP_AVGPOOL, call, b); }

static const ArgSpec global_avgpool_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, SPEC_END};
static Value global_avgpool_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    if (x->shape.rank != 3 && x->shape.rank != 2) {
        diag_error(s->diag, call->span, "global_avgpool expects an input of shape [c,h,w] or [c,t], got %s", sema_shape(s, &x->shape));
        return value_error();
    }
    Node *n = graph_add(s->graph, OP_AVGPOOL, call->span, &x->id, 1, shape_make(1, &x->shape.dims[0]));
    n->kernel_h = x->shape.rank == 3 ? x->shape.dims[1] : 1;
    n->kernel_w = x->shape.dims[x->shape.rank - 1];
    n->stride = 1;
    return tensor_value(n);
}

/* ---------------------------------------------------------------- backward rules */

static void conv_backward(Ad *ad, const Node *n, int dy) {
    Graph *g = ad_graph(ad);
    const Node *x = graph_node(g, n->inputs[0]);
    switch (n->op) {
    case OP_CONV2D: {
        /* dW = sum_b dy_b colT_b,  db = sum dy,  dx = col2im(W^T dy) */
        Node *dw = ad_node(ad, OP_CONV2D_DW, dy, x->id, (Shape){0}, n);
        dw->grad_param = n->weight;
        if (n->bias >= 0) {
            Node *db = ad_node(ad, OP_CONV2D_DB, dy, -1, (Shape){0}, n);
            db->grad_param = n->bias;
        }
        if (x->needs_grad) {
            Node *dx = ad_node(ad, OP_CONV2D_DX, dy, -1, x->shape, n);
            dx->weight = n->weight;
            ad_accumulate(ad, x->id, dx->id);
        }
        break;
    }
    case OP_MAXPOOL: {
        /* the gradient goes to the first maximum of each window: needs x and y */
        int inputs[3] = {dy, x->id, n->id};
        Node *dx = graph_add(g, OP_MAXPOOL_GRAD, n->span, inputs, 3, x->shape);
        dx->backward = true;
        dx->forward = n->id;
        ad_accumulate(ad, x->id, dx->id);
        break;
    }
    case OP_AVGPOOL:
        ad_accumulate(ad, x->id, ad_node(ad, OP_AVGPOOL_GRAD, dy, -1, x->shape, n)->id);
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------- kernels */

typedef struct ConvGeometry {
    int64_t C, H, W, F, KH, KW, S, P, PH, OH, OW; /* P pads the width, PH the height (0 for [c,t]) */
} ConvGeometry;

/* Geometry from the forward node (backward nodes link to theirs) and its input's shape. */
static ConvGeometry conv_geometry(const Graph *g, const Node *node) {
    const Node *fwd = graph_forward_of(g, node);
    const Shape *s = &graph_node(g, fwd->inputs[0])->shape;
    ConvGeometry q;
    q.C = s->dims[0];
    q.H = s->rank == 3 ? s->dims[1] : 1;
    q.W = s->dims[s->rank - 1];
    q.F = fwd->units;
    q.KH = fwd->kernel_h;
    q.KW = fwd->kernel_w;
    q.S = fwd->stride;
    q.P = fwd->pad;
    q.PH = s->rank == 3 ? fwd->pad : 0; /* conv1d: a [c,1,t] image, padded along t only */
    q.OH = (q.H + 2 * q.PH - q.KH) / q.S + 1;
    q.OW = (q.W + 2 * q.P - q.KW) / q.S + 1;
    return q;
}

/* For kernel offset (ky, kx) and output row oy: the output columns [lo, hi) that read inside
 * the image (ix = ox*S - P + kx in [0, W)); none when the input row iy is outside. Computing
 * the range once per row keeps the copy loops contiguous and branch-free. */
static void conv_valid_columns(Cg *cg, const ConvGeometry *q, LLVMValueRef kx, LLVMValueRef y_ok, LLVMValueRef *lo,
                               LLVMValueRef *hi) {
    LLVMValueRef zero = cg_i64(cg, 0), S = cg_i64(cg, q->S);
    LLVMValueRef before = LLVMBuildSub(cg->b, cg_i64(cg, q->P), kx, "");             /* first valid ox >= ceil(before/S) */
    LLVMValueRef first = LLVMBuildSDiv(cg->b, cg_add(cg, before, cg_i64(cg, q->S - 1)), S, "");
    first = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, before, zero, ""), first, zero, "");
    LLVMValueRef last = LLVMBuildSub(cg->b, cg_i64(cg, q->W - 1 + q->P), kx, "");    /* last valid ox <= last/S */
    LLVMValueRef end = cg_add(cg, LLVMBuildSDiv(cg->b, last, S, ""), cg_i64(cg, 1));
    end = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, last, zero, ""), zero, end, "");
    end = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, end, cg_i64(cg, q->OW), ""), end, cg_i64(cg, q->OW), "");
    end = LLVMBuildSelect(cg->b, y_ok, end, zero, "");
    first = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, first, end, ""), first, end, "");
    *lo = first;
    *hi = end;
}

/* The loop nest im2col and col2im share: over (ci, ky, kx) — the column-matrix row p — and the
 * output rows oy, with the valid output columns [lo, hi) of each and the input-row offset. */
typedef struct ConvRows {
    CgLoop ci, ky, kx, oy;
    LLVMValueRef p;       /* (ci*KH + ky)*KW + kx */
    LLVMValueRef lo, hi;  /* output columns that read inside the image */
    LLVMValueRef x_row;   /* index of input pixel (ci, iy, -P + kx): add ox*S */
} ConvRows;

static ConvRows conv_rows_begin(Cg *cg, const ConvGeometry *q) {
    ConvRows r;
    r.ci = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->C), "ci");
    r.ky = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->KH), "ky");
    r.kx = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->KW), "kx");
    r.p = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, r.ci.iv, cg_i64(cg, q->KH)), r.ky.iv), cg_i64(cg, q->KW)), r.kx.iv);
    r.oy = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->OH), "oy");
    LLVMValueRef iy = cg_add(cg, cg_mul(cg, r.oy.iv, cg_i64(cg, q->S)), LLVMBuildSub(cg->b, r.ky.iv, cg_i64(cg, q->PH), ""));
    LLVMValueRef y_ok = LLVMBuildICmp(cg->b, LLVMIntULT, iy, cg_i64(cg, q->H), ""); /* 0 <= iy < H */
    conv_valid_columns(cg, q, r.kx.iv, y_ok, &r.lo, &r.hi);
    r.x_row = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, r.ci.iv, cg_i64(cg, q->H)), iy), cg_i64(cg, q->W)),
                     LLVMBuildSub(cg->b, r.kx.iv, cg_i64(cg, q->P), ""));
    return r;
}

static void conv_rows_end(Cg *cg, ConvRows *r) {
    cg_loop_end(cg, &r->oy);
    cg_loop_end(cg, &r->kx);
    cg_loop_end(cg, &r->ky);
    cg_loop_end(cg, &r->ci);
}

/* im2col of one example: col[(ci*KH+ky)*KW+kx, oy*OW+ox] (or col^T when `transposed`), zeros
 * where the window reads outside the image. */
static void emit_im2col(Cg *cg, const ConvGeometry *q, LLVMValueRef x_b, LLVMValueRef col, bool transposed) {
    int64_t ckk = q->C * q->KH * q->KW, ohw = q->OH * q->OW;
    ConvRows r = conv_rows_begin(cg, q);
    LLVMValueRef row = cg_mul(cg, r.oy.iv, cg_i64(cg, q->OW));
    LLVMValueRef bounds[4] = {cg_i64(cg, 0), r.lo, r.hi, cg_i64(cg, q->OW)};
    for (int part = 0; part < 3; part++) {
        CgLoop ox = cg_loop_begin(cg, bounds[part], bounds[part + 1], "ox");
        LLVMValueRef v = part == 1 ? cg_load(cg, x_b, cg_add(cg, r.x_row, cg_mul(cg, ox.iv, cg_i64(cg, q->S)))) : cg_const(cg, 0);
        LLVMValueRef j = cg_add(cg, row, ox.iv);
        cg_store(cg, v, col, transposed ? cg_add(cg, cg_mul(cg, j, cg_i64(cg, ckk)), r.p) : cg_add(cg, cg_mul(cg, r.p, cg_i64(cg, ohw)), j));
        cg_loop_end(cg, &ox);
    }
    conv_rows_end(cg, &r);
}

/* dx_b = col2im(dcol): each column entry is added back to the pixel it was read from. */
static void emit_col2im(Cg *cg, const ConvGeometry *q, LLVMValueRef dcol, LLVMValueRef dx_b) {
    int64_t ohw = q->OH * q->OW;
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->C * q->H * q->W), "z");
    cg_store(cg, cg_const(cg, 0), dx_b, z.iv);
    cg_loop_end(cg, &z);
    ConvRows r = conv_rows_begin(cg, q);
    LLVMValueRef src_row = cg_add(cg, cg_mul(cg, r.p, cg_i64(cg, ohw)), cg_mul(cg, r.oy.iv, cg_i64(cg, q->OW)));
    CgLoop ox = cg_loop_begin(cg, r.lo, r.hi, "ox");
    LLVMValueRef dst = cg_add(cg, r.x_row, cg_mul(cg, ox.iv, cg_i64(cg, q->S)));
    cg_store(cg, cg_fadd(cg, cg_load(cg, dx_b, dst), cg_load(cg, dcol, cg_add(cg, src_row, ox.iv))), dx_b, dst);
    cg_loop_end(cg, &ox);
    conv_rows_end(cg, &r);
}

static LLVMValueRef example_ptr(Cg *cg, LLVMValueRef base, LLVMValueRef b, int64_t size) {
    return cg_gep(cg, base, cg_mul(cg, b, cg_i64(cg, size)));
}

static void emit_conv_forward(Cg *cg, const Node *node, const ConvGeometry *q) {
    bool has_bias = node->bias >= 0;
    LLVMValueRef y = LLVMGetParam(cg->fn, 0), x = LLVMGetParam(cg->fn, 1), w = LLVMGetParam(cg->fn, 2);
    LLVMValueRef bias = has_bias ? LLVMGetParam(cg->fn, 3) : NULL;
    LLVMValueRef col = LLVMGetParam(cg->fn, has_bias ? 4 : 3), n = LLVMGetParam(cg->fn, has_bias ? 5 : 4);
    int64_t ckk = q->C * q->KH * q->KW, ohw = q->OH * q->OW;
    bool act_in_gemm = node->fused_act == OP_RELU || node->fused_act == OP_SIGMOID;
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), n, "b");
    emit_im2col(cg, q, example_ptr(cg, x, b.iv, q->C * q->H * q->W), col, false);
    LLVMValueRef y_b = example_ptr(cg, y, b.iv, q->F * ohw);
    CgGemm g = {.c = y_b, .a = w, .b = col, .bias = bias, .row_bias = true, .M = cg_i64(cg, q->F), .P = cg_i64(cg, ckk),
                .J = ohw, .a_rs = ckk, .a_cs = 1, .b_rs = ohw, .c_rs = ohw, .scale = 1.0,
                .act = act_in_gemm ? node->fused_act : OP_INPUT};
    cg_gemm(cg, &g);
    if (node->fused_act != OP_INPUT && !act_in_gemm) {
        CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F * ohw), "i");
        cg_store(cg, cg_activation(cg, node->fused_act, cg_load(cg, y_b, i.iv)), y_b, i.iv);
        cg_loop_end(cg, &i);
    }
    cg_loop_end(cg, &b);
}

/* dW^T[CKK,F] accumulates col_b dy_b^T over the batch (contiguous im2col, and only the small
 * dy_b is transposed); one transpose at the end writes dW[F,CKK] in PyTorch's layout. */
static void emit_conv_dw(Cg *cg, const Node *node, const ConvGeometry *q) {
    LLVMValueRef dw = LLVMGetParam(cg->fn, 0), dy = LLVMGetParam(cg->fn, 1), x = LLVMGetParam(cg->fn, 2);
    LLVMValueRef scratch = LLVMGetParam(cg->fn, 3), n = LLVMGetParam(cg->fn, 4);
    int64_t ckk = q->C * q->KH * q->KW, ohw = q->OH * q->OW;
    LLVMValueRef col = scratch;                                   /* [CKK, OHW] */
    LLVMValueRef dyt = cg_gep(cg, scratch, cg_i64(cg, ckk * ohw)); /* [OHW, F] */
    LLVMValueRef dwt = cg_gep(cg, scratch, cg_i64(cg, ckk * ohw + ohw * q->F)); /* [CKK, F] */
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, ckk * q->F), "z");
    cg_store(cg, cg_const(cg, 0), dwt, z.iv);
    cg_loop_end(cg, &z);
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), n, "b");
    emit_im2col(cg, q, example_ptr(cg, x, b.iv, q->C * q->H * q->W), col, false);
    LLVMValueRef dy_b = example_ptr(cg, dy, b.iv, q->F * ohw);
    CgLoop f = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F), "f");
    CgLoop j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, ohw), "j");
    cg_store(cg, cg_load(cg, dy_b, cg_add(cg, cg_mul(cg, f.iv, cg_i64(cg, ohw)), j.iv)), dyt,
             cg_add(cg, cg_mul(cg, j.iv, cg_i64(cg, q->F)), f.iv));
    cg_loop_end(cg, &j);
    cg_loop_end(cg, &f);
    CgGemm g = {.c = dwt, .a = col, .b = dyt, .M = cg_i64(cg, ckk), .P = cg_i64(cg, ohw), .J = q->F,
                .a_rs = ohw, .a_cs = 1, .b_rs = q->F, .c_rs = q->F, .scale = 1.0, .act = OP_INPUT, .accumulate = true};
    cg_gemm(cg, &g);
    cg_loop_end(cg, &b);
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F), "o");
    CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, ckk), "p");
    LLVMValueRef v = cg_load(cg, dwt, cg_add(cg, cg_mul(cg, p.iv, cg_i64(cg, q->F)), o.iv));
    if (node->scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, node->scale));
    cg_store(cg, v, dw, cg_add(cg, cg_mul(cg, o.iv, cg_i64(cg, ckk)), p.iv));
    cg_loop_end(cg, &p);
    cg_loop_end(cg, &o);
}

static void emit_conv_db(Cg *cg, const Node *node, const ConvGeometry *q) {
    LLVMValueRef db = LLVMGetParam(cg->fn, 0), dy = LLVMGetParam(cg->fn, 1), n = LLVMGetParam(cg->fn, 2);
    int64_t ohw = q->OH * q->OW;
    LLVMValueRef sum = cg_var(cg, cg->elem, "sum");
    CgLoop f = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F), "f");
    LLVMBuildStore(cg->b, cg_const(cg, 0), sum);
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), n, "b");
    LLVMValueRef row = cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, q->F * ohw)), cg_mul(cg, f.iv, cg_i64(cg, ohw)));
    CgLoop j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, ohw), "j");
    LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, sum, ""), cg_load(cg, dy, cg_add(cg, row, j.iv))), sum);
    cg_loop_end(cg, &j);
    cg_loop_end(cg, &b);
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->elem, sum, "");
    if (node->scale != 1.0) v = cg_fmul(cg, v, cg_const(cg, node->scale));
    cg_store(cg, v, db, f.iv);
    cg_loop_end(cg, &f);
}

static void emit_conv_dx(Cg *cg, const ConvGeometry *q) {
    LLVMValueRef dx = LLVMGetParam(cg->fn, 0), dy = LLVMGetParam(cg->fn, 1), w = LLVMGetParam(cg->fn, 2);
    LLVMValueRef dcol = LLVMGetParam(cg->fn, 3), n = LLVMGetParam(cg->fn, 4);
    int64_t ckk = q->C * q->KH * q->KW, ohw = q->OH * q->OW;
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), n, "b");
    CgGemm g = {.c = dcol, .a = w, .b = example_ptr(cg, dy, b.iv, q->F * ohw), .M = cg_i64(cg, ckk), .P = cg_i64(cg, q->F),
                .J = ohw, .a_rs = 1, .a_cs = ckk, .b_rs = ohw, .c_rs = ohw, .scale = 1.0, .act = OP_INPUT};
    cg_gemm(cg, &g);
    emit_col2im(cg, q, dcol, example_ptr(cg, dx, b.iv, q->C * q->H * q->W));
    cg_loop_end(cg, &b);
}

/* Pools: one loop nest over (b, c, oy, ox) and the window (ky, kx). */
static void emit_pool(Cg *cg, const Node *node, const ConvGeometry *q) {
    bool grad = node->op == OP_MAXPOOL_GRAD || node->op == OP_AVGPOOL_GRAD;
    bool max = node->op == OP_MAXPOOL || node->op == OP_MAXPOOL_GRAD;
    LLVMValueRef out = LLVMGetParam(cg->fn, 0), in = LLVMGetParam(cg->fn, 1);
    LLVMValueRef x = node->op == OP_MAXPOOL_GRAD ? LLVMGetParam(cg->fn, 2) : NULL;
    LLVMValueRef y = node->op == OP_MAXPOOL_GRAD ? LLVMGetParam(cg->fn, 3) : NULL;
    LLVMValueRef n = LLVMGetParam(cg->fn, node->op == OP_MAXPOOL_GRAD ? 4 : 2);
    int64_t in_size = q->C * q->H * q->W, out_size = q->C * q->OH * q->OW;
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc");
    LLVMValueRef found = cg_var(cg, cg->i1, "found");
    LLVMValueRef inv = cg_const(cg, 1.0 / (double)(q->KH * q->KW));
    if (grad) { /* dx starts at zero; windows may overlap when stride < kernel */
        CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, n, cg_i64(cg, in_size)), "z");
        cg_store(cg, cg_const(cg, 0), out, z.iv);
        cg_loop_end(cg, &z);
    }
    CgLoop b = cg_loop_begin(cg, cg_i64(cg, 0), n, "b");
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->C), "c");
    LLVMValueRef in_base = cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, in_size)), cg_mul(cg, c.iv, cg_i64(cg, q->H * q->W)));
    LLVMValueRef out_base = cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, out_size)), cg_mul(cg, c.iv, cg_i64(cg, q->OH * q->OW)));
    CgLoop oy = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->OH), "oy");
    CgLoop ox = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->OW), "ox");
    LLVMValueRef o = cg_add(cg, out_base, cg_add(cg, cg_mul(cg, oy.iv, cg_i64(cg, q->OW)), ox.iv));
    LLVMValueRef target = NULL, dy = NULL;
    if (!grad) LLVMBuildStore(cg->b, max ? cg_const(cg, -HUGE_VAL) : cg_const(cg, 0), acc);
    if (grad) dy = cg_load(cg, in, o);
    if (node->op == OP_MAXPOOL_GRAD) {
        target = cg_load(cg, y, o);
        LLVMBuildStore(cg->b, LLVMConstInt(cg->i1, 0, 0), found);
    }
    CgLoop ky = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->KH), "ky");
    CgLoop kx = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->KW), "kx");
    LLVMValueRef iy = cg_add(cg, cg_mul(cg, oy.iv, cg_i64(cg, q->S)), ky.iv);
    LLVMValueRef ix = cg_add(cg, cg_mul(cg, ox.iv, cg_i64(cg, q->S)), kx.iv);
    LLVMValueRef at = cg_add(cg, in_base, cg_add(cg, cg_mul(cg, iy, cg_i64(cg, q->W)), ix));
    switch (node->op) {
    case OP_MAXPOOL:
        LLVMBuildStore(cg->b, cg_max(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), cg_load(cg, in, at)), acc);
        break;
    case OP_AVGPOOL:
        LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), cg_load(cg, in, at)), acc);
        break;
    case OP_MAXPOOL_GRAD: {
        LLVMValueRef seen = LLVMBuildLoad2(cg->b, cg->i1, found, "");
        LLVMValueRef equal = LLVMBuildFCmp(cg->b, LLVMRealOEQ, cg_load(cg, x, at), target, "");
        LLVMValueRef hit = LLVMBuildAnd(cg->b, equal, LLVMBuildNot(cg->b, seen, ""), "");
        LLVMBuildStore(cg->b, LLVMBuildOr(cg->b, seen, hit, ""), found);
        LLVMValueRef add = LLVMBuildSelect(cg->b, hit, dy, cg_const(cg, 0), "");
        cg_store(cg, cg_fadd(cg, cg_load(cg, out, at), add), out, at);
        break;
    }
    default: /* avgpool_grad */
        cg_store(cg, cg_fadd(cg, cg_load(cg, out, at), cg_fmul(cg, dy, inv)), out, at);
        break;
    }
    cg_loop_end(cg, &kx);
    cg_loop_end(cg, &ky);
    if (node->op == OP_MAXPOOL) cg_store(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), out, o);
    if (node->op == OP_AVGPOOL) cg_store(cg, cg_fmul(cg, LLVMBuildLoad2(cg->b, cg->elem, acc, ""), inv), out, o);
    cg_loop_end(cg, &ox);
    cg_loop_end(cg, &oy);
    cg_loop_end(cg, &c);
    cg_loop_end(cg, &b);
}

static LLVMValueRef conv_kernel(Cg *cg, const Node *node) {
    ConvGeometry q = conv_geometry(cg->g, node);
    LLVMValueRef fn;
    switch (node->op) {
    case OP_CONV2D:
        fn = cg_kernel_begin(cg, node, node->bias >= 0 ? 5 : 4);
        emit_conv_forward(cg, node, &q);
        break;
    case OP_CONV2D_DW: fn = cg_kernel_begin(cg, node, 4); emit_conv_dw(cg, node, &q); break;
    case OP_CONV2D_DB: fn = cg_kernel_begin(cg, node, 2); emit_conv_db(cg, node, &q); break;
    case OP_CONV2D_DX: fn = cg_kernel_begin(cg, node, 4); emit_conv_dx(cg, &q); break;
    case OP_MAXPOOL_GRAD: fn = cg_kernel_begin(cg, node, 4); emit_pool(cg, node, &q); break;
    default: fn = cg_kernel_begin(cg, node, 2); emit_pool(cg, node, &q); break;
    }
    cg_kernel_end(cg);
    return fn;
}

/* ---------------------------------------------------------------- costs and the table entry */

static int64_t conv_flops(const Graph *g, const Node *n, int64_t *backward) {
    *backward = 0;
    if (n->op == OP_CONV2D) {
        const Node *x = graph_node(g, n->inputs[0]);
        int64_t pixels = n->size / n->units; /* output positions: oh*ow, or t' for conv1d */
        int64_t mac = 2 * x->shape.dims[0] * n->kernel_h * n->kernel_w * n->units * pixels;
        int64_t bias = n->bias >= 0 ? n->units * pixels : 0;
        *backward = 2 * mac + bias;
        return mac + bias;
    }
    if (n->op == OP_MAXPOOL || n->op == OP_AVGPOOL) {
        *backward = n->size * n->kernel_h * n->kernel_w;
        return *backward;
    }
    return 0;
}

static int64_t conv_scratch(const Graph *g, const Node *node) {
    if (node->op != OP_CONV2D && node->op != OP_CONV2D_DW && node->op != OP_CONV2D_DX) return 0;
    const Node *fwd = graph_forward_of(g, node);
    const Node *x = graph_node(g, fwd->inputs[0]);
    int64_t ckk = x->shape.dims[0] * fwd->kernel_h * fwd->kernel_w, ohw = fwd->size / fwd->units;
    /* im2col; the weight gradient also keeps dy^T of one example and dW^T */
    return ckk * ohw + (node->op == OP_CONV2D_DW ? (ohw + ckk) * fwd->units : 0);
}

/* conv1d is a conv2d node over [c,t] */
static const char *conv_label(const Node *n) { return n->op == OP_CONV2D && n->shape.rank == 2 ? "conv1d" : NULL; }

static const OpSurface conv_surface[] = {
    {"conv2d", conv_spec, conv2d_rule, false},
    {"conv1d", conv_spec, conv1d_rule, false},
    {"maxpool", pool_spec, maxpool_rule, false},
    {"avgpool", pool_spec, avgpool_rule, false},
    {"global_avgpool", global_avgpool_spec, global_avgpool_rule, false},
    {NULL, NULL, NULL, false},
};
static const OpKind conv_kinds[] = {OP_CONV2D, OP_CONV2D_DX, OP_CONV2D_DW, OP_CONV2D_DB, OP_MAXPOOL,
                                    OP_MAXPOOL_GRAD, OP_AVGPOOL, OP_AVGPOOL_GRAD, OP_COUNT};
static const OpKindFlags conv_flags[] = {{OP_CONV2D, OPK_FUSES_ACTIVATION}, {OP_COUNT, 0}};

const OpFamily ops_conv = {
    .name = "conv",
    .surface = conv_surface,
    .kinds = conv_kinds,
    .backward = conv_backward,
    .kernel = conv_kernel,
    .flops = conv_flops,
    .scratch = conv_scratch,
    .label = conv_label,
    .flags = conv_flags,
};
