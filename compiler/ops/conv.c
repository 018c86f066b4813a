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
 *   conv2d     (y[n,F,OHW], x[n,C,H,W], Wt[F,CKK], b[F]?, scratch[Wt packed | xp])
 *              y_b = act(Wt im2col(x_b) + b), im2col never formed   (implicit GEMM: M=OHW, N=F, P=CKK)
 *   conv2d_dw  (dW[F,CKK], dy, x, scratch[xp | dy_b^T | partial dW^T])
 *              dW = sum_b (im2col(x_b) dy_b^T)^T                     (implicit GEMM: M=CKK, N=F, P=OHW)
 *   conv2d_db  (db[F], dy, scratch[F*16 + F])   db[f] = sum_b,j dy[b,f,j]: per chunk, then chunk order
 *   conv2d_dx  (dx, dy, Wt, scratch[flipped Wt packed | padded dy])
 *              stride 1: the forward kernel on dy padded by K-1-P with flipped weights;
 *              stride > 1: dcol = Wt^T dy_b; dx_b = col2im(dcol)     (GEMM: M=CKK, P=F, J=OHW)
 *   maxpool    (y, x)       max over each window; [c,t] inputs are [c,1,t] with a 1 x K window
 *   maxpool_grad (dx, dy, x, y)   dy goes to the first position of the window equal to the max
 *   avgpool    (y, x)       mean over each window (global_avgpool: one window of H x W)
 *   avgpool_grad (dx, dy)   dy / (KH*KW) to every position of the window
 * Layers with few input channels (C <= 4: first layers) run conv2d and conv2d_dw as a direct
 * convolution instead (see "direct convolution" below; scratch: the padded image, and for dW
 * the vector accumulators and partial dW).
 * The other layers run the implicit-GEMM kernels below (operands read from a padded copy of
 * the image; "implicit-GEMM convolution"); only dx at stride > 1 uses cg_gemm.c and col2im.
 * Inference (predict, validation, a library) runs 3x3 stride-1 layers over whole vectors of
 * channels and filters as Winograd F(2x2, 3x3) instead ("Winograd" below; scratch: U, the
 * channels-last image, the transformed tiles, the products, the output tiles).
 * Threads: conv kernels cut the batch into CONV_CHUNKS fixed chunks, each with its own scratch
 * slot (the scratch above is per slot), run by the pool (copies, products, col2im in the task);
 * conv2d_dw and conv2d_db sum the chunks' partials in chunk order afterwards. Pools split
 * examples. No result depends on the thread count. */
#include <math.h>
#include <stdio.h>

#include "cg.h"
#include "nnrt.h"
#include "onnx.h"
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

/* The loop nest of col2im: over (ci, ky, kx) — the column-matrix row p — and the
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

/* for (ox = lo; ox < hi; ox += lanes): the vector loop of a stride-1 window row, whose lanes
 * below `count` (= hi - ox) are inside the image. Close with cg_loop_end. */
static CgLoop conv_row_vectors(Cg *cg, LLVMValueRef lo, LLVMValueRef hi, unsigned lanes, LLVMValueRef *ox, LLVMValueRef *mask) {
    LLVMValueRef width = cg_i64(cg, lanes);
    LLVMValueRef steps = LLVMBuildSDiv(cg->b, cg_add(cg, LLVMBuildSub(cg->b, hi, lo, ""), cg_i64(cg, lanes - 1)), width, "");
    CgLoop k = cg_loop_begin(cg, cg_i64(cg, 0), steps, "ov");
    *ox = cg_add(cg, lo, cg_mul(cg, k.iv, width));
    *mask = cg_lanes_below(cg, LLVMBuildSub(cg->b, hi, *ox, ""), lanes);
    return k;
}

/* dx_b = col2im(dcol): each column entry is added back to the pixel it was read from. */
static void emit_col2im(Cg *cg, const ConvGeometry *q, LLVMValueRef dcol, LLVMValueRef dx_b) {
    int64_t ohw = q->OH * q->OW;
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->C * q->H * q->W), "z");
    cg_store(cg, cg_const(cg, 0), dx_b, z.iv);
    cg_loop_end(cg, &z);
    ConvRows r = conv_rows_begin(cg, q);
    LLVMValueRef src_row = cg_add(cg, cg_mul(cg, r.p, cg_i64(cg, ohw)), cg_mul(cg, r.oy.iv, cg_i64(cg, q->OW)));
    if (q->S == 1) { /* distinct lanes, distinct pixels: the same additions as the scalar loop */
        unsigned lanes = cg->f64 ? 8 : 16;
        LLVMValueRef ox, mask;
        CgLoop k = conv_row_vectors(cg, r.lo, r.hi, lanes, &ox, &mask);
        LLVMValueRef dst = cg_add(cg, r.x_row, ox);
        LLVMValueRef sum = cg_fadd(cg, cg_vload_masked(cg, dx_b, dst, lanes, mask), cg_vload_masked(cg, dcol, cg_add(cg, src_row, ox), lanes, mask));
        cg_vstore_masked(cg, sum, dx_b, dst, mask);
        cg_loop_end(cg, &k);
    } else {
        CgLoop ox = cg_loop_begin(cg, r.lo, r.hi, "ox");
        LLVMValueRef dst = cg_add(cg, r.x_row, cg_mul(cg, ox.iv, cg_i64(cg, q->S)));
        cg_store(cg, cg_fadd(cg, cg_load(cg, dx_b, dst), cg_load(cg, dcol, cg_add(cg, src_row, ox.iv))), dx_b, dst);
        cg_loop_end(cg, &ox);
    }
    conv_rows_end(cg, &r);
}

static LLVMValueRef example_ptr(Cg *cg, LLVMValueRef base, LLVMValueRef b, int64_t size) {
    return cg_gep(cg, base, cg_mul(cg, b, cg_i64(cg, size)));
}

/* ---------------------------------------------------------------- direct convolution
 * A layer with few input channels (a first layer: 1-3 of them) has a product whose reduction
 * is only C*KH*KW long: im2col copies every pixel KH*KW times and the GEMM tiles load and store
 * more than they multiply. Such layers run a direct convolution instead: per example the input
 * is copied once into a zero-padded image split into S column phases (padded column pc = col*S
 * + phase), so the window row of any tap (ci, ky, kx) for output row oy is contiguous over the
 * output columns:
 *     xp[((ci*Hp + oy*S + ky)*S + kx%S)*Wq + kx/S + ox]     (ox = 0, 1, ...)
 * and a row of output columns sits in vector lanes with whole (unmasked) loads. Each row is
 * wide enough (Wq) that the lanes past OW read zeros; only the stores are masked.
 *   forward: a tile of FB filters x NVT vectors of one output row stays in registers over the
 *            taps (each tap: NVT loads of xp, FB weight broadcasts, FB*NVT multiply-adds).
 *   dW:      dW[f,t] = sum over (b, oy, ox) of dy[b,f,oy,ox] xp(t; oy, ox): FB filters x TB taps
 *            of vector accumulators, kept per chunk in its slot across the chunk's examples,
 *            summed across lanes at the chunk's end into the chunk's partial dW (then the
 *            chunk-order sum of conv_dw_reduce).
 * dx runs the implicit-GEMM kernel (a first layer's input needs none). */
enum { DIRECT_MAX_CHANNELS = 4, DIRECT_LANES_MAX = 16 }; /* slots are sized for 16-lane vectors */

static bool conv_direct(const ConvGeometry *q) { return q->C <= DIRECT_MAX_CHANNELS; }

typedef struct DirectLayout {
    int64_t Hp, Wq; /* padded rows; columns of one phase row */
    int64_t size;   /* elements of xp: C*Hp*S*Wq */
} DirectLayout;

static DirectLayout direct_layout(const ConvGeometry *q) {
    DirectLayout d;
    d.Hp = q->H + 2 * q->PH;
    int64_t phase_width = (q->W + 2 * q->P + q->S - 1) / q->S;
    int64_t reach = (q->OW + DIRECT_LANES_MAX - 1) / DIRECT_LANES_MAX * DIRECT_LANES_MAX + (q->KW - 1) / q->S;
    d.Wq = phase_width > reach ? phase_width : reach;
    d.size = q->C * d.Hp * q->S * d.Wq;
    return d;
}

/* The dW slot: xp, then F*CKK vector accumulators of DIRECT_LANES_MAX elements, then the
 * chunk's partial dW[F, CKK]. */
static int64_t direct_dw_partial_at(const ConvGeometry *q) {
    return direct_layout(q).size + q->F * q->C * q->KH * q->KW * DIRECT_LANES_MAX;
}

/* The bias gradient's slot: F vector accumulators of DIRECT_LANES_MAX elements, then the chunk's
 * partial db[F]. */
static int64_t conv_db_slot_elements(const Graph *g, const Node *node) {
    int64_t F = graph_forward_of(g, node)->units;
    return F * DIRECT_LANES_MAX + F;
}

/* Sizes in the implicit-GEMM kernels' scratch slots ("implicit-GEMM convolution" below). */
/* Rows of a panel-padded dimension: F rounded up to the widest panel (2 vectors of 16). */
static int64_t implicit_fp_bound(int64_t F) { return (F + 31) / 32 * 32; }
/* bpack: the packed weights of `outputs` filters over a reduction of `reduction` taps */
static int64_t implicit_bpack_bound(int64_t outputs, int64_t reduction) { return implicit_fp_bound(outputs) * reduction; }
static int64_t implicit_xp_size(const ConvGeometry *q) { return q->C * (q->H + 2 * q->PH) * (q->W + 2 * q->P); }
/* dx as a convolution of dy padded by K-1-P (stride 1; the padding at most K-1). */
static bool implicit_dx(const ConvGeometry *q) { return q->S == 1 && q->P <= q->KW - 1 && q->PH <= q->KH - 1; }
static int64_t implicit_dyp_size(const ConvGeometry *q) {
    return q->F * (q->OH + 2 * (q->KH - 1 - q->PH)) * (q->OW + 2 * (q->KW - 1 - q->P));
}
/* The dW slot: xp, dyT [OHW, Fp], then the chunk's partial dW^T [CKK, Fp]. */
static int64_t implicit_dw_partial_at(const ConvGeometry *q) {
    return implicit_xp_size(q) + q->OH * q->OW * implicit_fp_bound(q->F);
}

/* Winograd F(2x2, 3x3) for inference ("Winograd" below): 3x3 windows at stride 1 over more
 * channels than the direct kernels take, channels and filters in whole 16-lane vectors. */
enum { WINOGRAD_CHANNELS = 16 };
static bool winograd_geometry(const ConvGeometry *q) {
    return q->KH == 3 && q->KW == 3 && q->S == 1 && q->PH == q->P && q->C > DIRECT_MAX_CHANNELS && q->C % WINOGRAD_CHANNELS == 0 &&
           q->F % WINOGRAD_CHANNELS == 0;
}

/* A chunk's slot for Winograd: U [16][C][F], xq [Hq][Wq][C], V [16][T][C], M [16][T][F],
 * yt [2TH][2TW][F] (element offsets; all multiples of 16). */
typedef struct WinogradLayout {
    int64_t TH, TW, T;  /* 2x2 output tiles per column, per row, in all */
    int64_t Hq, Wq;     /* the channels-last padded image: rows, columns */
    int64_t u, xq, v, m, yt, size;
} WinogradLayout;

static WinogradLayout winograd_layout(const ConvGeometry *q) {
    WinogradLayout w;
    w.TH = (q->OH + 1) / 2;
    w.TW = (q->OW + 1) / 2;
    w.T = w.TH * w.TW;
    w.Hq = 2 * w.TH + 2; /* tile ty reads rows 2ty .. 2ty+3 */
    w.Wq = 2 * w.TW + 2;
    w.u = 0;
    w.xq = w.u + 16 * q->C * q->F;
    w.v = w.xq + w.Hq * w.Wq * q->C;
    w.m = w.v + 16 * w.T * q->C;
    w.yt = w.m + 16 * w.T * q->F;
    w.size = w.yt + 4 * w.T * q->F;
    return w;
}

/* Conv kernels cut the batch into this many fixed chunks (example ranges that depend only on n),
 * run by the thread pool; each chunk has its own scratch slot, and the weight gradient sums the
 * chunks' partial sums in chunk order, so no result depends on the thread count. */
enum { CONV_CHUNKS = 8 };

/* Elements of one chunk's scratch slot: the padded copies, packed weights and partial sums of
 * the direct and implicit kernels, or dx's column matrix at stride > 1. */
static int64_t conv_slot_elements(const Graph *g, const Node *node) {
    if (node->op == OP_CONV2D_DB) return conv_db_slot_elements(g, node);
    if (node->op != OP_CONV2D && node->op != OP_CONV2D_DW && node->op != OP_CONV2D_DX) return 0;
    ConvGeometry q = conv_geometry(g, node);
    if (node->op == OP_CONV2D && conv_direct(&q)) return direct_layout(&q).size;
    if (node->op == OP_CONV2D_DW && conv_direct(&q)) return direct_dw_partial_at(&q) + q.F * q.C * q.KH * q.KW;
    int64_t ckk = q.C * q.KH * q.KW, ohw = q.OH * q.OW;
    if (node->op == OP_CONV2D) { /* the training kernel's, or the inference kernel's when that is Winograd's */
        int64_t implicit = implicit_bpack_bound(q.F, ckk) + implicit_xp_size(&q);
        int64_t winograd = winograd_geometry(&q) ? winograd_layout(&q).size : 0;
        return implicit > winograd ? implicit : winograd;
    }
    if (node->op == OP_CONV2D_DW) return implicit_dw_partial_at(&q) + ckk * implicit_fp_bound(q.F);
    if (implicit_dx(&q)) return implicit_bpack_bound(q.C, q.F * q.KH * q.KW) + implicit_dyp_size(&q);
    return ckk * ohw; /* dx at stride > 1: the column matrix for col2im */
}

/* What a task body needs besides its values: the node and its geometry. */
typedef struct ConvTask {
    const Node *node;
    const ConvGeometry *q;
    int64_t slot;      /* elements of one chunk's scratch slot */
    LLVMValueRef winograd_u; /* a library's transformed weights (winograd_weights_table), or NULL */
} ConvTask;

/* Loop over the chunks [begin, end) of the batch: examples [c*n/CHUNKS, (c+1)*n/CHUNKS), each
 * chunk with its scratch slot. Leaves the builder in the per-example loop; close both loops with
 * conv_chunks_end. */
typedef struct ConvChunks {
    CgLoop chunk, b;
    LLVMValueRef slot;  /* this chunk's scratch */
    LLVMBasicBlockRef next; /* conv_chunks_skip_empty's way to the next chunk, or NULL */
} ConvChunks;

/* The chunks the forward-shaped kernels cut a batch into: CONV_CHUNKS, or one in a library,
 * which runs on its caller's thread (each chunk packs the weights again; a library is only the
 * inference graph, with no weight gradient to sum over chunks). */
static int64_t conv_chunk_count(const Cg *cg) { return cg->single_thread ? 1 : CONV_CHUNKS; }

/* The chunk's examples [lo, hi) of a batch of n. */
static void conv_chunk_range(Cg *cg, const ConvChunks *k, LLVMValueRef n, LLVMValueRef *lo, LLVMValueRef *hi) {
    cg_chunk_bounds(cg, k->chunk.iv, n, conv_chunk_count(cg), lo, hi);
}

static void conv_chunk_examples_begin(Cg *cg, ConvChunks *k, LLVMValueRef n) {
    LLVMValueRef lo, hi;
    conv_chunk_range(cg, k, n, &lo, &hi);
    k->b = cg_loop_begin(cg, lo, hi, "b");
}

static ConvChunks conv_chunks_begin(Cg *cg, LLVMValueRef begin, LLVMValueRef end, LLVMValueRef n, LLVMValueRef scratch,
                                    int64_t slot, bool with_examples) {
    ConvChunks k = {0};
    k.chunk = cg_loop_begin(cg, begin, end, "chunk");
    k.chunk.no_unroll = true;
    k.slot = cg_gep(cg, scratch, cg_mul(cg, k.chunk.iv, cg_i64(cg, slot)));
    if (with_examples) conv_chunk_examples_begin(cg, &k, n);
    return k;
}

/* A chunk without examples (7 of the 8 at batch 1: a library's one-image call) skips its
 * per-chunk work, the weights' packing and the padded copy's zeroing — for kernels whose chunks
 * write only their examples' outputs (not the weight gradients' partial sums, which every
 * chunk must write). Call right after conv_chunks_begin. */
static void conv_chunks_skip_empty(Cg *cg, ConvChunks *k, LLVMValueRef n) {
    LLVMValueRef lo, hi;
    conv_chunk_range(cg, k, n, &lo, &hi);
    LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "chunk_work");
    k->next = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "chunk_next");
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, lo, hi, ""), work, k->next);
    LLVMPositionBuilderAtEnd(cg->b, work);
}

static void conv_chunks_end(Cg *cg, ConvChunks *k) {
    cg_loop_end(cg, &k->b);
    if (k->next) {
        LLVMBuildBr(cg->b, k->next);
        LLVMPositionBuilderAtEnd(cg->b, k->next);
    }
    cg_loop_end(cg, &k->chunk);
}

static void conv_run_chunks(Cg *cg, LLVMValueRef *values, int count, CgParallelBody body, const ConvTask *t) {
    cg_parallel_for(cg, cg_i64(cg, conv_chunk_count(cg)), values, count, false, body, (void *)t);
}

/* ---------------------------------------------------------------- direct convolution kernels */

/* The target's vector lanes (16 floats or 8 doubles with AVX-512, 8 or 4 with AVX2) and vector
 * registers (32 with AVX-512; 16 with AVX2 and with NEON's pairs of 16-byte registers). */
static unsigned direct_lanes(const Cg *cg) { return (unsigned)cg->vector_bytes / (cg->f64 ? 8u : 4u); }
static int direct_registers(const Cg *cg) { return cg->vector_bytes >= 64 ? 32 : 16; }

/* xp index of output column 0 of tap (ci, ky, kx)'s window row for output row oy. */
static LLVMValueRef direct_row(Cg *cg, const ConvGeometry *q, const DirectLayout *d, LLVMValueRef ci, LLVMValueRef ky,
                               int64_t kx, LLVMValueRef oy) {
    LLVMValueRef image_row = cg_add(cg, cg_mul(cg, ci, cg_i64(cg, d->Hp)), cg_add(cg, cg_mul(cg, oy, cg_i64(cg, q->S)), ky));
    LLVMValueRef phase_row = cg_add(cg, cg_mul(cg, image_row, cg_i64(cg, q->S)), cg_i64(cg, kx % q->S));
    return cg_add(cg, cg_mul(cg, phase_row, cg_i64(cg, d->Wq)), cg_i64(cg, kx / q->S));
}

/* base[0 .. count) = 0 (a chunk's scratch, once per chunk) */
static void conv_zero(Cg *cg, LLVMValueRef base, int64_t count) {
    CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, count), "z");
    cg_store(cg, cg_const(cg, 0), base, z.iv);
    cg_loop_end(cg, &z);
}

/* The forward kernels' fused activation: relu and sigmoid are applied to the tiles' vectors
 * (conv_tile_activation returns the node, else NULL); any other runs as a pass over the example's
 * output after them (conv_activation_after). */
static const Node *conv_tile_activation(const Cg *cg, const Node *node) {
    const Node *fused = graph_fused(cg->g, node);
    return fused && (fused->op == OP_RELU || fused->op == OP_SIGMOID) ? fused : NULL;
}

static void conv_activation_after(Cg *cg, const Node *node, LLVMValueRef y_b, int64_t count) {
    const Node *fused = graph_fused(cg->g, node);
    if (!fused || conv_tile_activation(cg, node)) return;
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, count), "i");
    cg_store(cg, cg_activation(cg, fused->op, cg_load(cg, y_b, i.iv)), y_b, i.iv);
    cg_loop_end(cg, &i);
}

/* The inside of xp from one example x_b [C, H, W]; the padding was zeroed once per chunk and no
 * example writes it. */
static void direct_fill(Cg *cg, const ConvGeometry *q, const DirectLayout *d, LLVMValueRef x_b, LLVMValueRef xp) {
    CgLoop ci = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->C), "ci");
    CgLoop iy = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->H), "iy");
    LLVMValueRef src_row = cg_mul(cg, cg_add(cg, cg_mul(cg, ci.iv, cg_i64(cg, q->H)), iy.iv), cg_i64(cg, q->W));
    LLVMValueRef image_row = cg_add(cg, cg_mul(cg, ci.iv, cg_i64(cg, d->Hp)), cg_add(cg, iy.iv, cg_i64(cg, q->PH)));
    CgLoop ix = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->W), "ix");
    LLVMValueRef pc = cg_add(cg, ix.iv, cg_i64(cg, q->P)), phase = cg_i64(cg, 0), col = pc;
    if (q->S > 1) {
        phase = LLVMBuildURem(cg->b, pc, cg_i64(cg, q->S), "");
        col = LLVMBuildUDiv(cg->b, pc, cg_i64(cg, q->S), "");
    }
    LLVMValueRef at = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, image_row, cg_i64(cg, q->S)), phase), cg_i64(cg, d->Wq)), col);
    cg_store(cg, cg_load(cg, x_b, cg_add(cg, src_row, ix.iv)), xp, at);
    cg_loop_end(cg, &ix);
    cg_loop_end(cg, &iy);
    cg_loop_end(cg, &ci);
}

/* Stores `value` at base[at..] when `used` of its lanes are real outputs. */
static void direct_store(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef at, int64_t used, unsigned lanes) {
    if (used >= (int64_t)lanes) cg_vstore_full(cg, value, base, at);
    else cg_vstore_masked(cg, value, base, at, cg_lanes_below(cg, cg_i64(cg, used), lanes));
}

/* The operands of a forward tile. */
typedef struct DirectForward {
    const ConvGeometry *q;
    DirectLayout d;
    LLVMValueRef xp, w, bias, y_b; /* bias may be NULL */
    const Node *act;               /* a fused relu/sigmoid applied to the vectors, or NULL */
} DirectForward;

/* Output row oy, filters [f0, f0+fb), vectors [v0, v0+nvt) of the row: the accumulators stay
 * in registers over all taps. A vector that runs past the row's end is stored whole (its extra
 * lanes land on the following rows of the plane, written after it), since masked stores are
 * slow (AVX2), except in the last rows (`masked`), where they would reach the next plane. */
static void direct_forward_tile(Cg *cg, const DirectForward *o, LLVMValueRef oy, bool masked, LLVMValueRef f0, int fb, int v0,
                                int nvt) {
    const ConvGeometry *q = o->q;
    unsigned lanes = direct_lanes(cg);
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    int64_t ckk = q->C * q->KH * q->KW, ohw = q->OH * q->OW;
    LLVMValueRef acc[32][4];
    for (int f = 0; f < fb; f++) {
        LLVMValueRef init = o->bias ? cg_splat(cg, cg_load(cg, o->bias, cg_add(cg, f0, cg_i64(cg, f))), lanes) : LLVMConstNull(vec);
        for (int j = 0; j < nvt; j++) {
            acc[f][j] = cg_var(cg, vec, "acc");
            LLVMBuildStore(cg->b, init, acc[f][j]);
        }
    }
    LLVMValueRef w_row[32];
    for (int f = 0; f < fb; f++) w_row[f] = cg_mul(cg, cg_add(cg, f0, cg_i64(cg, f)), cg_i64(cg, ckk));
    CgLoop ci = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->C), "ci");
    CgLoop ky = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->KH), "ky");
    LLVMValueRef tap0 = cg_mul(cg, cg_add(cg, cg_mul(cg, ci.iv, cg_i64(cg, q->KH)), ky.iv), cg_i64(cg, q->KW));
    for (int64_t kx = 0; kx < q->KW; kx++) {
        LLVMValueRef row = cg_add(cg, direct_row(cg, q, &o->d, ci.iv, ky.iv, kx, oy), cg_i64(cg, v0 * (int64_t)lanes));
        LLVMValueRef xv[4];
        for (int j = 0; j < nvt; j++) xv[j] = cg_vload_full(cg, o->xp, cg_add(cg, row, cg_i64(cg, j * (int64_t)lanes)), lanes);
        LLVMValueRef tap = cg_add(cg, tap0, cg_i64(cg, kx));
        for (int f = 0; f < fb; f++) {
            LLVMValueRef w = cg_splat(cg, cg_load(cg, o->w, cg_add(cg, w_row[f], tap)), lanes);
            for (int j = 0; j < nvt; j++) {
                LLVMValueRef old = LLVMBuildLoad2(cg->b, vec, acc[f][j], "");
                LLVMBuildStore(cg->b, cg_fadd(cg, old, cg_fmul(cg, w, xv[j])), acc[f][j]);
            }
        }
    }
    cg_loop_end(cg, &ky);
    cg_loop_end(cg, &ci);
    for (int f = 0; f < fb; f++)
        for (int j = 0; j < nvt; j++) {
            int64_t col = (v0 + j) * (int64_t)lanes;
            LLVMValueRef value = LLVMBuildLoad2(cg->b, vec, acc[f][j], "");
            if (o->act) value = cg_activation(cg, o->act->op, value);
            LLVMValueRef at = cg_add(cg, cg_mul(cg, cg_add(cg, f0, cg_i64(cg, f)), cg_i64(cg, ohw)),
                                     cg_add(cg, cg_mul(cg, oy, cg_i64(cg, q->OW)), cg_i64(cg, col)));
            direct_store(cg, value, o->y_b, at, masked ? q->OW - col : lanes, lanes);
        }
}

/* Every output row of filters [f0, f0+fb): first the rows whose whole vectors end inside the
 * plane (row oy with oy*OW + NV*lanes <= OH*OW), then the rest with masked stores. */
static void direct_forward_rows(Cg *cg, const DirectForward *o, LLVMValueRef f0, int fb, int nv, int nvt) {
    int64_t OH = o->q->OH, OW = o->q->OW, reach = nv * (int64_t)direct_lanes(cg);
    int64_t masked = (reach + OW - 1) / OW - 1;
    if (masked > OH) masked = OH;
    for (int part = 0; part < 2; part++) {
        int64_t lo = part ? OH - masked : 0, hi = part ? OH : OH - masked;
        if (lo >= hi) continue;
        CgLoop oy = cg_loop_begin(cg, cg_i64(cg, lo), cg_i64(cg, hi), "oy");
        for (int v0 = 0; v0 < nv; v0 += nvt) direct_forward_tile(cg, o, oy.iv, part == 1, f0, fb, v0, nv - v0 < nvt ? nv - v0 : nvt);
        oy.no_unroll = true;
        cg_loop_end(cg, &oy);
    }
}

/* values: y, x, Wt, bias (or null), scratch, n. Per example: fill xp, then every output row in
 * tiles of FB filters x NVT vectors (FB*NVT accumulators, NVT input vectors and one broadcast
 * fit the registers). */
static void direct_forward_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const ConvGeometry *q = t->q;
    int64_t ohw = q->OH * q->OW;
    DirectForward o = {q, direct_layout(q), NULL, v[2], t->node->bias >= 0 ? v[3] : NULL, NULL, conv_tile_activation(cg, t->node)};
    ConvChunks k = conv_chunks_begin(cg, begin, end, v[5], v[4], t->slot, false);
    conv_chunks_skip_empty(cg, &k, v[5]);
    o.xp = k.slot;
    conv_zero(cg, o.xp, o.d.size);
    conv_chunk_examples_begin(cg, &k, v[5]);
    direct_fill(cg, q, &o.d, example_ptr(cg, v[1], k.b.iv, q->C * q->H * q->W), o.xp);
    o.y_b = example_ptr(cg, v[0], k.b.iv, q->F * ohw);
    unsigned lanes = direct_lanes(cg);
    int nv = (int)((q->OW + lanes - 1) / lanes), nvt = nv < 2 ? nv : 2;
    int fb = (direct_registers(cg) - nvt - 2) / nvt;
    if (fb > q->F) fb = (int)q->F;
    int64_t blocks = q->F / fb, rest = q->F % fb;
    /* filter blocks outside, rows inside: each block writes FB planes front to back */
    if (blocks > 0) {
        CgLoop f = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, blocks), "fb");
        direct_forward_rows(cg, &o, cg_mul(cg, f.iv, cg_i64(cg, fb)), fb, nv, nvt);
        f.no_unroll = true;
        cg_loop_end(cg, &f);
    }
    if (rest > 0) direct_forward_rows(cg, &o, cg_i64(cg, blocks * fb), (int)rest, nv, nvt);
    conv_activation_after(cg, t->node, o.y_b, q->F * ohw);
    conv_chunks_end(cg, &k);
}

/* The operands of a weight-gradient block. */
typedef struct DirectGrad {
    const ConvGeometry *q;
    DirectLayout d;
    LLVMValueRef xp, accv, dy_b; /* accv: the chunk's vector accumulators [F*CKK][DIRECT_LANES_MAX] */
} DirectGrad;

/* One vector of output columns [col, col+lanes) of row oy (lanes below `mask`'s, or all when
 * mask is NULL): acc[f][t] += dy[f0+f, oy, col..] * xp(tap t0+t; oy, col..). */
static void direct_dw_step(Cg *cg, const DirectGrad *o, LLVMValueRef oy, LLVMValueRef col, LLVMValueRef mask, LLVMValueRef f0,
                           int fb, int64_t t0, int tb, LLVMValueRef acc[8][8]) {
    const ConvGeometry *q = o->q;
    unsigned lanes = direct_lanes(cg);
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    int64_t ohw = q->OH * q->OW;
    LLVMValueRef at = cg_add(cg, cg_mul(cg, oy, cg_i64(cg, q->OW)), col), dyv[8];
    for (int f = 0; f < fb; f++) {
        LLVMValueRef row = cg_add(cg, cg_mul(cg, cg_add(cg, f0, cg_i64(cg, f)), cg_i64(cg, ohw)), at);
        dyv[f] = mask ? cg_vload_masked(cg, o->dy_b, row, lanes, mask) : cg_vload_full(cg, o->dy_b, row, lanes);
    }
    for (int t = 0; t < tb; t++) {
        int64_t tap = t0 + t, ci = tap / (q->KH * q->KW), ky = tap / q->KW % q->KH, kx = tap % q->KW;
        LLVMValueRef row = direct_row(cg, q, &o->d, cg_i64(cg, ci), cg_i64(cg, ky), kx, oy);
        LLVMValueRef xv = cg_vload_full(cg, o->xp, cg_add(cg, row, col), lanes);
        for (int f = 0; f < fb; f++) {
            LLVMValueRef old = LLVMBuildLoad2(cg->b, vec, acc[f][t], "");
            LLVMBuildStore(cg->b, cg_fadd(cg, old, cg_fmul(cg, dyv[f], xv)), acc[f][t]);
        }
    }
}

/* Filters [f0, f0+fb) x taps [t0, t0+tb) of one example: the accumulators come from the
 * chunk's slot, stay in registers over every output position, and go back. */
static void direct_dw_block(Cg *cg, const DirectGrad *o, LLVMValueRef f0, int fb, int64_t t0, int tb) {
    const ConvGeometry *q = o->q;
    unsigned lanes = direct_lanes(cg);
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    int64_t ckk = q->C * q->KH * q->KW;
    LLVMValueRef acc[8][8], slot[8][8];
    for (int f = 0; f < fb; f++)
        for (int t = 0; t < tb; t++) {
            slot[f][t] = cg_mul(cg, cg_add(cg, cg_mul(cg, cg_add(cg, f0, cg_i64(cg, f)), cg_i64(cg, ckk)), cg_i64(cg, t0 + t)),
                                cg_i64(cg, DIRECT_LANES_MAX));
            acc[f][t] = cg_var(cg, vec, "acc");
            LLVMBuildStore(cg->b, cg_vload_full(cg, o->accv, slot[f][t], lanes), acc[f][t]);
        }
    int64_t full = q->OW / lanes, tail = q->OW % lanes;
    CgLoop oy = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->OH), "oy");
    if (full > 0) {
        CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, full), "ov");
        direct_dw_step(cg, o, oy.iv, cg_mul(cg, c.iv, cg_i64(cg, lanes)), NULL, f0, fb, t0, tb, acc);
        c.no_unroll = true;
        cg_loop_end(cg, &c);
    }
    if (tail > 0)
        direct_dw_step(cg, o, oy.iv, cg_i64(cg, full * (int64_t)lanes), cg_lanes_below(cg, cg_i64(cg, tail), lanes), f0, fb, t0, tb, acc);
    oy.no_unroll = true;
    cg_loop_end(cg, &oy);
    for (int f = 0; f < fb; f++)
        for (int t = 0; t < tb; t++) cg_vstore_full(cg, LLVMBuildLoad2(cg->b, vec, acc[f][t], ""), o->accv, slot[f][t]);
}

/* The sum of a vector's lanes, in lane order. */
static LLVMValueRef direct_lane_sum(Cg *cg, LLVMValueRef v, unsigned lanes) {
    LLVMValueRef sum = LLVMBuildExtractElement(cg->b, v, LLVMConstInt(cg->i32, 0, 0), "");
    for (unsigned i = 1; i < lanes; i++) sum = cg_fadd(cg, sum, LLVMBuildExtractElement(cg->b, v, LLVMConstInt(cg->i32, i, 0), ""));
    return sum;
}

/* values: dW, dy, x, scratch, n. Each chunk: zero xp and the accumulators; per example fill xp
 * and run every block of FB filters x TB taps; then the lane sums into the chunk's partial dW,
 * which conv_dw_reduce sums in chunk order. */
static void direct_dw_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const ConvGeometry *q = t->q;
    int64_t ckk = q->C * q->KH * q->KW, ohw = q->OH * q->OW;
    unsigned lanes = direct_lanes(cg);
    DirectGrad o = {q, direct_layout(q), NULL, NULL, NULL};
    ConvChunks k = conv_chunks_begin(cg, begin, end, v[4], v[3], t->slot, false);
    o.xp = k.slot;
    o.accv = cg_gep(cg, k.slot, cg_i64(cg, o.d.size));
    conv_zero(cg, o.xp, o.d.size + q->F * ckk * DIRECT_LANES_MAX);
    conv_chunk_examples_begin(cg, &k, v[4]);
    direct_fill(cg, q, &o.d, example_ptr(cg, v[2], k.b.iv, q->C * q->H * q->W), o.xp);
    o.dy_b = example_ptr(cg, v[1], k.b.iv, q->F * ohw);
    /* FB*TB accumulators, FB dy vectors and one xp vector fit the registers */
    int fb = direct_registers(cg) >= 32 ? 4 : 3, tb = direct_registers(cg) >= 32 ? 6 : 3;
    if (fb > q->F) fb = (int)q->F;
    if (tb > ckk) tb = (int)ckk;
    int64_t blocks = q->F / fb, rest = q->F % fb;
    if (blocks > 0) {
        CgLoop f = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, blocks), "fb");
        for (int64_t t0 = 0; t0 < ckk; t0 += tb)
            direct_dw_block(cg, &o, cg_mul(cg, f.iv, cg_i64(cg, fb)), fb, t0, ckk - t0 < tb ? (int)(ckk - t0) : tb);
        f.no_unroll = true;
        cg_loop_end(cg, &f);
    }
    if (rest > 0)
        for (int64_t t0 = 0; t0 < ckk; t0 += tb)
            direct_dw_block(cg, &o, cg_i64(cg, blocks * fb), (int)rest, t0, ckk - t0 < tb ? (int)(ckk - t0) : tb);
    cg_loop_end(cg, &k.b);
    LLVMValueRef partial = cg_gep(cg, k.slot, cg_i64(cg, direct_dw_partial_at(q)));
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F * ckk), "i");
    LLVMValueRef sums = cg_vload_full(cg, o.accv, cg_mul(cg, i.iv, cg_i64(cg, DIRECT_LANES_MAX)), lanes);
    cg_store(cg, direct_lane_sum(cg, sums, lanes), partial, i.iv);
    cg_loop_end(cg, &i);
    cg_loop_end(cg, &k.chunk);
}

/* ---------------------------------------------------------------- implicit-GEMM convolution
 * Layers with more input channels run as matrix products whose operands come straight from a
 * zero-padded copy of the example's image (xp [C, Hp, Wp]), without an im2col matrix:
 *     y[f, j] = sum over taps t = (ci, ky, kx), in that order, of Wt[f, t] xp[ci, oy*S + ky, ox*S + kx]
 * for the output position j = oy*OW + ox. A tile of MR positions x NV vectors of filters (6 x
 * 16 with AVX2, 12 x 32 with AVX-512: the packed GEMM's shape) keeps its accumulators in
 * registers over the whole reduction: per tap one broadcast of each position's pixel (any
 * stride: the position's offset in xp plus the tap's) and NV vector loads of the filters'
 * weights from a panel of Wt packed tap-major (bpack [F/(NV*lanes)][CKK][NV*lanes], in L1).
 * The tile is then transposed in registers (positions become lanes) and stored into y's
 * [F, OHW] rows; a vector that runs past the tile's positions is stored whole (the next tile
 * rewrites those lanes), except in the last tile.
 *   conv2d_dx at stride 1 is the same kernel on dy padded by K-1-P (dyp) with the weights
 *     flipped and transposed (filters <-> channels):
 *         dx[c, iy, ix] = sum over (f, ky, kx) of W[f, c, KH-1-ky, KW-1-kx] dyp[f, iy + ky, ix + kx]
 *   conv2d_dw is a tile of MR taps x NV vectors of filters whose reduction runs over the
 *     positions: dW^T[t, f] += xp(t; j) dyT[j, f], with dy transposed per example (blocks of
 *     lanes x lanes in registers). The chunk's partial dW^T [CKK, Fp] carries over its
 *     examples in order; conv_dw_reduce sums the chunks.
 * Each output is one chain of multiply-adds in a fixed order, whatever the thread count. */

typedef struct Implicit {
    int64_t C, Hp, Wp, KH, KW, S, OH, OW; /* the padded input planes, window, stride, output */
    int64_t F;                            /* the outputs per position (filters) */
    unsigned lanes;
    int nv, mr;                           /* vectors of filters and positions (or taps) per tile */
    int64_t Wd, panels, Fp;               /* filters per panel, panels, panels * Wd */
} Implicit;

static Implicit implicit_shape(const Cg *cg, int64_t C, int64_t Hp, int64_t Wp, int64_t KH, int64_t KW, int64_t S,
                               int64_t OH, int64_t OW, int64_t F) {
    Implicit m = {C, Hp, Wp, KH, KW, S, OH, OW, F, direct_lanes(cg), 2, 0, 0, 0, 0};
    if (F <= (int64_t)m.lanes) m.nv = 1;
    /* NV*MR accumulators + NV weight vectors + one broadcast fit the registers; a transposed
     * block holds at most `lanes` positions */
    m.mr = m.nv == 1 ? (int)m.lanes : direct_registers(cg) >= 32 ? 12 : 6;
    if (m.mr > (int)m.lanes) m.mr = (int)m.lanes;
    m.Wd = m.nv * (int64_t)m.lanes;
    m.panels = (F + m.Wd - 1) / m.Wd;
    m.Fp = m.panels * m.Wd;
    return m;
}

/* The inside of a padded copy: dst[c, PH + iy, PW + ix] = src[c, iy, ix] (the border was zeroed
 * once per chunk and no example writes it). */
static void implicit_fill(Cg *cg, LLVMValueRef src, int64_t C, int64_t H, int64_t W, int64_t PH, int64_t PW, LLVMValueRef dst,
                          int64_t Hp, int64_t Wp) {
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, C * H), "row");
    LLVMValueRef plane = LLVMBuildUDiv(cg->b, c.iv, cg_i64(cg, H), ""), iy = LLVMBuildURem(cg->b, c.iv, cg_i64(cg, H), "");
    LLVMValueRef from = cg_mul(cg, c.iv, cg_i64(cg, W));
    LLVMValueRef to = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, plane, cg_i64(cg, Hp)), cg_add(cg, iy, cg_i64(cg, PH))), cg_i64(cg, Wp)),
                             cg_i64(cg, PW));
    CgLoop x = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, W), "ix");
    cg_store(cg, cg_load(cg, src, cg_add(cg, from, x.iv)), dst, cg_add(cg, to, x.iv));
    cg_loop_end(cg, &x);
    cg_loop_end(cg, &c);
}

/* The operands of the forward-shaped kernel (conv2d; conv2d_dx at stride 1). */
typedef struct ImplicitForward {
    Implicit m;
    LLVMValueRef xp, bpack, out, bias; /* bias (per output row) may be NULL */
    const Node *act;                   /* a fused relu/sigmoid applied to the vectors, or NULL */
} ImplicitForward;

/* Stores one tile of `rows` positions from j0, transposed: output rows f = p*Wd + v*lanes + l
 * (those below F), a vector of positions [j0, j0 + lanes) each; masked: only the tile's rows. */
static void implicit_store_rows(Cg *cg, const ImplicitForward *o, LLVMValueRef *acc, LLVMValueRef p, LLVMValueRef j0, int rows,
                                bool masked) {
    const Implicit *m = &o->m;
    LLVMTypeRef vec = LLVMVectorType(cg->elem, m->lanes);
    int64_t ohw = m->OH * m->OW;
    LLVMValueRef mask = masked ? cg_lanes_below(cg, cg_i64(cg, rows), m->lanes) : NULL;
    for (int v = 0; v < m->nv; v++) {
        LLVMValueRef block[64];
        for (unsigned r = 0; r < m->lanes; r++)
            block[r] = (int)r < rows ? LLVMBuildLoad2(cg->b, vec, acc[r * m->nv + v], "") : LLVMConstNull(vec);
        cg_transpose(cg, block, m->lanes);
        for (unsigned l = 0; l < m->lanes; l++) {
            LLVMValueRef f = cg_add(cg, cg_mul(cg, p, cg_i64(cg, m->Wd)), cg_i64(cg, v * (int64_t)m->lanes + l));
            LLVMBasicBlockRef next = NULL;
            if (m->F % m->Wd != 0) { /* the last panel's filters past F are not stored */
                LLVMBasicBlockRef store = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "row");
                next = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "row_next");
                LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, f, cg_i64(cg, m->F), ""), store, next);
                LLVMPositionBuilderAtEnd(cg->b, store);
            }
            LLVMValueRef value = block[l];
            if (o->bias) value = cg_fadd(cg, value, cg_splat(cg, cg_load(cg, o->bias, f), m->lanes));
            if (o->act) value = cg_activation(cg, o->act->op, value);
            LLVMValueRef at = cg_add(cg, cg_mul(cg, f, cg_i64(cg, ohw)), j0);
            if (mask) cg_vstore_masked(cg, value, o->out, at, mask);
            else cg_vstore_full(cg, value, o->out, at);
            if (next) {
                LLVMBuildBr(cg->b, next);
                LLVMPositionBuilderAtEnd(cg->b, next);
            }
        }
    }
}

/* The tile of `rows` positions from j0 (compile-time rows) in panel p. */
static void implicit_forward_tile(Cg *cg, const ImplicitForward *o, LLVMValueRef p, LLVMValueRef j0, int rows, bool last) {
    const Implicit *m = &o->m;
    unsigned lanes = m->lanes;
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    int64_t taps = m->KH * m->KW, ckk = m->C * taps, ohw = m->OH * m->OW;
    LLVMValueRef acc[64], base[16];
    for (int i = 0; i < rows * m->nv; i++) {
        acc[i] = cg_var(cg, vec, "acc");
        LLVMBuildStore(cg->b, LLVMConstNull(vec), acc[i]);
    }
    for (int r = 0; r < rows; r++) {
        LLVMValueRef j = cg_add(cg, j0, cg_i64(cg, r));
        LLVMValueRef oy = LLVMBuildUDiv(cg->b, j, cg_i64(cg, m->OW), ""), ox = LLVMBuildURem(cg->b, j, cg_i64(cg, m->OW), "");
        base[r] = cg_mul(cg, cg_add(cg, cg_mul(cg, oy, cg_i64(cg, m->Wp)), ox), cg_i64(cg, m->S));
    }
    LLVMValueRef panel = cg_mul(cg, p, cg_i64(cg, ckk * m->Wd));
    CgLoop ci = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, m->C), "ci");
    LLVMValueRef plane = cg_mul(cg, ci.iv, cg_i64(cg, m->Hp * m->Wp));
    LLVMValueRef b_row = cg_add(cg, panel, cg_mul(cg, ci.iv, cg_i64(cg, taps * m->Wd)));
    for (int64_t ky = 0; ky < m->KH; ky++)
        for (int64_t kx = 0; kx < m->KW; kx++) {
            LLVMValueRef bv[2];
            for (int v = 0; v < m->nv; v++)
                bv[v] = cg_vload_full(cg, o->bpack, cg_add(cg, b_row, cg_i64(cg, (ky * m->KW + kx) * m->Wd + v * (int64_t)lanes)), lanes);
            LLVMValueRef tap = cg_add(cg, plane, cg_i64(cg, ky * m->Wp + kx));
            for (int r = 0; r < rows; r++) {
                LLVMValueRef a = cg_splat(cg, cg_load(cg, o->xp, cg_add(cg, base[r], tap)), lanes);
                for (int v = 0; v < m->nv; v++) {
                    LLVMValueRef old = LLVMBuildLoad2(cg->b, vec, acc[r * m->nv + v], "");
                    LLVMBuildStore(cg->b, cg_fadd(cg, old, cg_fmul(cg, a, bv[v])), acc[r * m->nv + v]);
                }
            }
        }
    ci.no_unroll = true;
    cg_loop_end(cg, &ci);
    if (last) { /* the last tile: lanes past the plane's end are not stored */
        implicit_store_rows(cg, o, acc, p, j0, rows, rows < (int)lanes);
        return;
    }
    if ((ohw / m->mr - 1) * m->mr + (int64_t)lanes <= ohw) { /* every full tile's vectors end inside the plane */
        implicit_store_rows(cg, o, acc, p, j0, rows, false);
        return;
    }
    LLVMBasicBlockRef whole = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "whole");
    LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "part");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "stored");
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLE, cg_add(cg, j0, cg_i64(cg, lanes)), cg_i64(cg, ohw), ""), whole, part);
    LLVMPositionBuilderAtEnd(cg->b, whole);
    implicit_store_rows(cg, o, acc, p, j0, rows, false);
    LLVMBuildBr(cg->b, done);
    LLVMPositionBuilderAtEnd(cg->b, part);
    implicit_store_rows(cg, o, acc, p, j0, rows, true);
    LLVMBuildBr(cg->b, done);
    LLVMPositionBuilderAtEnd(cg->b, done);
}

/* Every tile of one example: panels outside (the panel stays in L1), positions inside. */
static void implicit_forward(Cg *cg, const ImplicitForward *o) {
    const Implicit *m = &o->m;
    int64_t ohw = m->OH * m->OW, full = ohw / m->mr;
    int tail = (int)(ohw % m->mr);
    CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, m->panels), "panel");
    if (full > 0) {
        CgLoop t = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, full), "tile");
        implicit_forward_tile(cg, o, p.iv, cg_mul(cg, t.iv, cg_i64(cg, m->mr)), m->mr, false);
        t.no_unroll = true;
        cg_loop_end(cg, &t);
    }
    if (tail > 0) implicit_forward_tile(cg, o, p.iv, cg_i64(cg, full * m->mr), tail, true);
    p.no_unroll = true;
    cg_loop_end(cg, &p);
}

/* The weight-gradient tile: taps [t0, t0 + rows) x panel p of dW^T, over one example's positions.
 * The accumulators come from the chunk's partial dW^T and go back to it. */
static void implicit_dw_tile(Cg *cg, const Implicit *m, LLVMValueRef xp, LLVMValueRef dyt, LLVMValueRef partial, LLVMValueRef t0,
                             int rows, LLVMValueRef p) {
    unsigned lanes = m->lanes;
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    int64_t taps = m->KH * m->KW;
    LLVMValueRef acc[64], off[16], at[64];
    LLVMValueRef col = cg_mul(cg, p, cg_i64(cg, m->Wd));
    for (int r = 0; r < rows; r++) {
        LLVMValueRef t = cg_add(cg, t0, cg_i64(cg, r));
        LLVMValueRef ci = LLVMBuildUDiv(cg->b, t, cg_i64(cg, taps), ""), k = LLVMBuildURem(cg->b, t, cg_i64(cg, taps), "");
        LLVMValueRef ky = LLVMBuildUDiv(cg->b, k, cg_i64(cg, m->KW), ""), kx = LLVMBuildURem(cg->b, k, cg_i64(cg, m->KW), "");
        off[r] = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, ci, cg_i64(cg, m->Hp)), ky), cg_i64(cg, m->Wp)), kx);
        for (int v = 0; v < m->nv; v++) {
            int i = r * m->nv + v;
            at[i] = cg_add(cg, cg_mul(cg, t, cg_i64(cg, m->Fp)), cg_add(cg, col, cg_i64(cg, v * (int64_t)lanes)));
            acc[i] = cg_var(cg, vec, "acc");
            LLVMBuildStore(cg->b, cg_vload_full(cg, partial, at[i], lanes), acc[i]);
        }
    }
    CgLoop oy = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, m->OH), "oy");
    LLVMValueRef row = cg_mul(cg, oy.iv, cg_i64(cg, m->S * m->Wp)), j_row = cg_mul(cg, oy.iv, cg_i64(cg, m->OW));
    CgLoop ox = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, m->OW), "ox");
    LLVMValueRef pixel = cg_add(cg, row, cg_mul(cg, ox.iv, cg_i64(cg, m->S)));
    LLVMValueRef dy_at = cg_add(cg, cg_mul(cg, cg_add(cg, j_row, ox.iv), cg_i64(cg, m->Fp)), col);
    LLVMValueRef bv[2];
    for (int v = 0; v < m->nv; v++) bv[v] = cg_vload_full(cg, dyt, cg_add(cg, dy_at, cg_i64(cg, v * (int64_t)lanes)), lanes);
    for (int r = 0; r < rows; r++) {
        LLVMValueRef a = cg_splat(cg, cg_load(cg, xp, cg_add(cg, off[r], pixel)), lanes);
        for (int v = 0; v < m->nv; v++) {
            LLVMValueRef old = LLVMBuildLoad2(cg->b, vec, acc[r * m->nv + v], "");
            LLVMBuildStore(cg->b, cg_fadd(cg, old, cg_fmul(cg, a, bv[v])), acc[r * m->nv + v]);
        }
    }
    cg_loop_end(cg, &ox);
    oy.no_unroll = true;
    cg_loop_end(cg, &oy);
    for (int i = 0; i < rows * m->nv; i++) cg_vstore_full(cg, LLVMBuildLoad2(cg->b, vec, acc[i], ""), partial, at[i]);
}

/* Every weight-gradient tile of one example: tap tiles outside, panels inside. */
static void implicit_dw(Cg *cg, const Implicit *m, LLVMValueRef xp, LLVMValueRef dyt, LLVMValueRef partial) {
    int64_t ckk = m->C * m->KH * m->KW, full = ckk / m->mr;
    int tail = (int)(ckk % m->mr);
    for (int part = 0; part < 2; part++) {
        if (part ? tail == 0 : full == 0) continue;
        CgLoop t = cg_loop_begin(cg, cg_i64(cg, part ? full : 0), cg_i64(cg, part ? full + 1 : full), "taps");
        CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, m->panels), "panel");
        implicit_dw_tile(cg, m, xp, dyt, partial, cg_mul(cg, t.iv, cg_i64(cg, m->mr)), part ? tail : m->mr, p.iv);
        p.no_unroll = true;
        cg_loop_end(cg, &p);
        t.no_unroll = true;
        cg_loop_end(cg, &t);
    }
}

/* The forward's shape over x padded by (PH, P), and its slot: bpack, then xp. */
static Implicit implicit_forward_shape(const Cg *cg, const ConvGeometry *q) {
    return implicit_shape(cg, q->C, q->H + 2 * q->PH, q->W + 2 * q->P, q->KH, q->KW, q->S, q->OH, q->OW, q->F);
}

static Implicit implicit_dx_shape(const Cg *cg, const ConvGeometry *q) {
    return implicit_shape(cg, q->F, q->OH + 2 * (q->KH - 1 - q->PH), q->OW + 2 * (q->KW - 1 - q->P), q->KH, q->KW, 1, q->H, q->W, q->C);
}

/* bpack for the forward: panel p holds Wt[p*Wd + l, t] at [(p*CKK + t)*Wd + l] (past F: copies of
 * the last filter up to a whole vector, then zeros; those lanes are never stored). */
static void implicit_pack_forward(Cg *cg, const Implicit *m, LLVMValueRef w, LLVMValueRef bpack) {
    int64_t ckk = m->C * m->KH * m->KW;
    for (int64_t p = 0; p < m->panels; p++) {
        int64_t f0 = p * m->Wd, rows = m->F - f0 < m->Wd ? m->F - f0 : m->Wd;
        cg_transpose_copy(cg, cg_gep(cg, w, cg_i64(cg, f0 * ckk)), ckk, cg_i64(cg, rows), ckk, cg_gep(cg, bpack, cg_i64(cg, p * ckk * m->Wd)),
                          m->Wd, false);
        for (int64_t l = (rows + m->lanes - 1) / m->lanes * m->lanes; l < m->Wd; l++) { /* a zero vector per tap */
            CgLoop t = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, ckk), "t");
            cg_store(cg, cg_const(cg, 0), bpack, cg_add(cg, cg_i64(cg, p * ckk * m->Wd + l), cg_mul(cg, t.iv, cg_i64(cg, m->Wd))));
            cg_loop_end(cg, &t);
        }
    }
}

/* bpack for dx: panel p holds W[f, c, KH-1-ky, KW-1-kx] (c = p*Wd + l) at [(p*K + (f*KH + ky)*KW
 * + kx)*Wd + l], K = F*KH*KW (zeros past C). */
static void implicit_pack_dx(Cg *cg, const Implicit *m, const ConvGeometry *q, LLVMValueRef w, LLVMValueRef bpack) {
    int64_t taps = q->KH * q->KW, K = q->F * taps;
    CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, m->panels * K), "pk");
    LLVMValueRef panel = LLVMBuildUDiv(cg->b, p.iv, cg_i64(cg, K), ""), k = LLVMBuildURem(cg->b, p.iv, cg_i64(cg, K), "");
    LLVMValueRef f = LLVMBuildUDiv(cg->b, k, cg_i64(cg, taps), ""), tap = LLVMBuildURem(cg->b, k, cg_i64(cg, taps), "");
    LLVMValueRef flipped = LLVMBuildSub(cg->b, cg_i64(cg, taps - 1), tap, ""); /* (KH-1-ky)*KW + KW-1-kx */
    for (int64_t l = 0; l < m->Wd; l++) {
        LLVMValueRef c = cg_add(cg, cg_mul(cg, panel, cg_i64(cg, m->Wd)), cg_i64(cg, l));
        LLVMValueRef inside = LLVMBuildICmp(cg->b, LLVMIntSLT, c, cg_i64(cg, q->C), "");
        LLVMValueRef c_safe = cg_min_i64(cg, c, cg_i64(cg, q->C - 1));
        LLVMValueRef from = cg_add(cg, cg_mul(cg, cg_add(cg, cg_mul(cg, f, cg_i64(cg, q->C)), c_safe), cg_i64(cg, taps)), flipped);
        LLVMValueRef value = LLVMBuildSelect(cg->b, inside, cg_load(cg, w, from), cg_const(cg, 0), "");
        cg_store(cg, value, bpack, cg_add(cg, cg_mul(cg, p.iv, cg_i64(cg, m->Wd)), cg_i64(cg, l)));
    }
    cg_loop_end(cg, &p);
}

/* values: y, x, Wt, bias (or null), scratch, n. Per chunk: pack Wt, zero xp's border; per example
 * fill xp and run every tile. */
static void implicit_forward_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const ConvGeometry *q = t->q;
    int64_t ohw = q->OH * q->OW, ckk = q->C * q->KH * q->KW;
    ImplicitForward o = {implicit_forward_shape(cg, q), NULL, NULL, NULL, t->node->bias >= 0 ? v[3] : NULL, conv_tile_activation(cg, t->node)};
    ConvChunks k = conv_chunks_begin(cg, begin, end, v[5], v[4], t->slot, false);
    conv_chunks_skip_empty(cg, &k, v[5]);
    o.bpack = k.slot;
    o.xp = cg_gep(cg, k.slot, cg_i64(cg, implicit_bpack_bound(q->F, ckk)));
    implicit_pack_forward(cg, &o.m, v[2], o.bpack);
    conv_zero(cg, o.xp, implicit_xp_size(q));
    conv_chunk_examples_begin(cg, &k, v[5]);
    implicit_fill(cg, example_ptr(cg, v[1], k.b.iv, q->C * q->H * q->W), q->C, q->H, q->W, q->PH, q->P, o.xp, o.m.Hp, o.m.Wp);
    o.out = example_ptr(cg, v[0], k.b.iv, q->F * ohw);
    implicit_forward(cg, &o);
    conv_activation_after(cg, t->node, o.out, q->F * ohw);
    conv_chunks_end(cg, &k);
}

/* values: dW, dy, x, scratch, n. Per chunk: zero xp's border, dyT's padding and the partial;
 * per example fill xp, transpose dy, run every tile. */
static void implicit_dw_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const ConvGeometry *q = t->q;
    int64_t ohw = q->OH * q->OW;
    Implicit m = implicit_forward_shape(cg, q);
    ConvChunks k = conv_chunks_begin(cg, begin, end, v[4], v[3], t->slot, false);
    LLVMValueRef xp = k.slot, dyt = cg_gep(cg, k.slot, cg_i64(cg, implicit_xp_size(q)));
    LLVMValueRef partial = cg_gep(cg, k.slot, cg_i64(cg, implicit_dw_partial_at(q)));
    conv_zero(cg, xp, implicit_dw_partial_at(q) + q->C * q->KH * q->KW * m.Fp);
    conv_chunk_examples_begin(cg, &k, v[4]);
    implicit_fill(cg, example_ptr(cg, v[2], k.b.iv, q->C * q->H * q->W), q->C, q->H, q->W, q->PH, q->P, xp, m.Hp, m.Wp);
    cg_transpose_copy(cg, example_ptr(cg, v[1], k.b.iv, q->F * ohw), ohw, cg_i64(cg, q->F), ohw, dyt, m.Fp, false);
    implicit_dw(cg, &m, xp, dyt, partial);
    conv_chunks_end(cg, &k);
}

/* values: dx, dy, Wt, scratch, n. Per chunk: pack the flipped weights, zero dyp's border; per
 * example fill dyp and run every tile. */
static void implicit_dx_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const ConvGeometry *q = t->q;
    int64_t ohw = q->OH * q->OW;
    ImplicitForward o = {implicit_dx_shape(cg, q), NULL, NULL, NULL, NULL, NULL};
    ConvChunks k = conv_chunks_begin(cg, begin, end, v[4], v[3], t->slot, false);
    conv_chunks_skip_empty(cg, &k, v[4]);
    o.bpack = k.slot;
    o.xp = cg_gep(cg, k.slot, cg_i64(cg, implicit_bpack_bound(q->C, q->F * q->KH * q->KW)));
    implicit_pack_dx(cg, &o.m, q, v[2], o.bpack);
    conv_zero(cg, o.xp, implicit_dyp_size(q));
    conv_chunk_examples_begin(cg, &k, v[4]);
    implicit_fill(cg, example_ptr(cg, v[1], k.b.iv, q->F * ohw), q->F, q->OH, q->OW, q->KH - 1 - q->PH, q->KW - 1 - q->P, o.xp, o.m.Hp,
                  o.m.Wp);
    o.out = example_ptr(cg, v[0], k.b.iv, q->C * q->H * q->W);
    implicit_forward(cg, &o);
    conv_chunks_end(cg, &k);
}

/* ---------------------------------------------------------------- Winograd F(2x2, 3x3)
 * Inference (predict, validation, the library) of a 3x3 convolution at stride 1: each 2x2 block
 * of outputs comes from the 4x4 block of the padded input under it with 16 products per
 * (channel, filter) instead of 36 (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2016):
 *     Y = A^T [ sum over c of (G g G^T) .* (B^T d B) ] A
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *     A^T = [1 1 1 0; 0 1 -1 -1]
 * Per chunk the weights are transformed once, U[xi][c][f] = (G g G^T)[xi] for the 16 elements xi
 * of a 4x4 block (scalar code; a library embeds U, computed by the compiler with the same
 * arithmetic). Per example: the padded image channels-last, xq[y][x][c]; V[xi][t][c] = B^T d B of
 * every tile t (vectors of channels); the 16 products M[xi] = V[xi] U[xi] ([T x C][C x F],
 * cg_gemm); Y = A^T M A (vectors of filters) + bias, activation, into yt[y][x][f]; yt transposed
 * into y[f][y][x]. Its sums run in another order than the implicit GEMM's and round differently
 * (a few units in the last place of the outputs); training keeps the implicit GEMM, whose
 * backward rules are its exact derivative. */

/* U of one (filter, channel) from its 3x3 window g (row-major): the order of the additions is
 * the IR's in winograd_weights, whose ops are cg_*_ordered so that LLVM keeps it (x/2 is exact,
 * so a fused multiply-add cannot round differently). The transforms of the tiles use the
 * ordered ops too: the library's kernel and predict's must not be optimized into other sums. */
static void winograd_transform_window(const float g[9], float u[16]) {
    float h[3][4];
    for (int r = 0; r < 3; r++) {
        float s = g[3 * r] + g[3 * r + 2];
        h[r][0] = g[3 * r];
        h[r][1] = (s + g[3 * r + 1]) * 0.5f;
        h[r][2] = (s - g[3 * r + 1]) * 0.5f;
        h[r][3] = g[3 * r + 2];
    }
    for (int j = 0; j < 4; j++) {
        float s = h[0][j] + h[2][j];
        u[j] = h[0][j];
        u[4 + j] = (s + h[1][j]) * 0.5f;
        u[8 + j] = (s - h[1][j]) * 0.5f;
        u[12 + j] = h[2][j];
    }
}

/* A library's U for the node's weights, as a read-only table. */
static LLVMValueRef winograd_weights_table(Cg *cg, const Node *node, const ConvGeometry *q) {
    const float *w = cg->lib_params + graph_param(cg->g, node->weight)->offset;
    float *u = ARENA_ARRAY(cg->g->arena, float, 16 * q->C * q->F);
    for (int64_t f = 0; f < q->F; f++)
        for (int64_t c = 0; c < q->C; c++) {
            float e[16];
            winograd_transform_window(w + (f * q->C + c) * 9, e);
            for (int xi = 0; xi < 16; xi++) u[(xi * q->C + c) * q->F + f] = e[xi];
        }
    char name[64];
    snprintf(name, sizeof name, "nnc.lib.winograd%d", node->id);
    return cg_float_table(cg, u, 16 * q->C * q->F, name);
}

/* U from the weights w [F][C][3][3] at run time: winograd_transform_window in IR. */
static void winograd_weights(Cg *cg, const ConvGeometry *q, LLVMValueRef w, LLVMValueRef u) {
    LLVMValueRef half = cg_const(cg, 0.5);
    CgLoop fc = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F * q->C), "fc");
    LLVMValueRef f = LLVMBuildUDiv(cg->b, fc.iv, cg_i64(cg, q->C), ""), c = LLVMBuildURem(cg->b, fc.iv, cg_i64(cg, q->C), "");
    LLVMValueRef g[9], h[3][4], e[16];
    for (int k = 0; k < 9; k++) g[k] = cg_load(cg, w, cg_add(cg, cg_mul(cg, fc.iv, cg_i64(cg, 9)), cg_i64(cg, k)));
    for (int r = 0; r < 3; r++) {
        LLVMValueRef s = cg_fadd_ordered(cg, g[3 * r], g[3 * r + 2]);
        h[r][0] = g[3 * r];
        h[r][1] = cg_fmul_ordered(cg, cg_fadd_ordered(cg, s, g[3 * r + 1]), half);
        h[r][2] = cg_fmul_ordered(cg, cg_fsub_ordered(cg, s, g[3 * r + 1]), half);
        h[r][3] = g[3 * r + 2];
    }
    for (int j = 0; j < 4; j++) {
        LLVMValueRef s = cg_fadd_ordered(cg, h[0][j], h[2][j]);
        e[j] = h[0][j];
        e[4 + j] = cg_fmul_ordered(cg, cg_fadd_ordered(cg, s, h[1][j]), half);
        e[8 + j] = cg_fmul_ordered(cg, cg_fsub_ordered(cg, s, h[1][j]), half);
        e[12 + j] = h[2][j];
    }
    for (int xi = 0; xi < 16; xi++)
        cg_store(cg, e[xi], u, cg_add(cg, cg_mul(cg, cg_add(cg, cg_i64(cg, xi * q->C), c), cg_i64(cg, q->F)), f));
    cg_loop_end(cg, &fc);
}

/* V[xi][t][c..] = (B^T d B)[xi] of every tile t, a vector of channels at a time. */
static void winograd_input(Cg *cg, const ConvGeometry *q, const WinogradLayout *w, LLVMValueRef xq, LLVMValueRef v, unsigned lanes) {
    CgLoop t = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, w->T), "tile");
    LLVMValueRef ty = LLVMBuildUDiv(cg->b, t.iv, cg_i64(cg, w->TW), ""), tx = LLVMBuildURem(cg->b, t.iv, cg_i64(cg, w->TW), "");
    LLVMValueRef corner = cg_mul(cg, cg_add(cg, cg_mul(cg, cg_mul(cg, ty, cg_i64(cg, 2)), cg_i64(cg, w->Wq)), cg_mul(cg, tx, cg_i64(cg, 2))),
                                 cg_i64(cg, q->C));
    CgLoop cb = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->C / lanes), "cvec");
    LLVMValueRef c0 = cg_mul(cg, cb.iv, cg_i64(cg, lanes));
    LLVMValueRef d[4][4], e[4][4], out[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            d[i][j] = cg_vload_full(cg, xq, cg_add(cg, cg_add(cg, corner, c0), cg_i64(cg, (i * w->Wq + j) * q->C)), lanes);
    for (int j = 0; j < 4; j++) { /* B^T d */
        e[0][j] = cg_fsub_ordered(cg, d[0][j], d[2][j]);
        e[1][j] = cg_fadd_ordered(cg, d[1][j], d[2][j]);
        e[2][j] = cg_fsub_ordered(cg, d[2][j], d[1][j]);
        e[3][j] = cg_fsub_ordered(cg, d[1][j], d[3][j]);
    }
    for (int i = 0; i < 4; i++) { /* (B^T d) B */
        out[i][0] = cg_fsub_ordered(cg, e[i][0], e[i][2]);
        out[i][1] = cg_fadd_ordered(cg, e[i][1], e[i][2]);
        out[i][2] = cg_fsub_ordered(cg, e[i][2], e[i][1]);
        out[i][3] = cg_fsub_ordered(cg, e[i][1], e[i][3]);
    }
    for (int xi = 0; xi < 16; xi++)
        cg_vstore_full(cg, out[xi / 4][xi % 4], v, cg_add(cg, cg_mul(cg, cg_add(cg, cg_i64(cg, xi * w->T), t.iv), cg_i64(cg, q->C)), c0));
    cb.no_unroll = true;
    cg_loop_end(cg, &cb);
    t.no_unroll = true;
    cg_loop_end(cg, &t);
}

/* yt's 2x2 block of every tile = A^T M A (+ bias, activation), a vector of filters at a time. */
static void winograd_output(Cg *cg, const ConvGeometry *q, const WinogradLayout *w, LLVMValueRef m, LLVMValueRef bias, const Node *act,
                            LLVMValueRef yt, unsigned lanes) {
    CgLoop t = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, w->T), "tile");
    LLVMValueRef ty = LLVMBuildUDiv(cg->b, t.iv, cg_i64(cg, w->TW), ""), tx = LLVMBuildURem(cg->b, t.iv, cg_i64(cg, w->TW), "");
    LLVMValueRef corner = cg_mul(cg, cg_add(cg, cg_mul(cg, cg_mul(cg, ty, cg_i64(cg, 2)), cg_i64(cg, 2 * w->TW)), cg_mul(cg, tx, cg_i64(cg, 2))),
                                 cg_i64(cg, q->F));
    CgLoop fb = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F / lanes), "fvec");
    LLVMValueRef f0 = cg_mul(cg, fb.iv, cg_i64(cg, lanes));
    LLVMValueRef x[4][4], a[2][4];
    for (int xi = 0; xi < 16; xi++)
        x[xi / 4][xi % 4] = cg_vload_full(cg, m, cg_add(cg, cg_mul(cg, cg_add(cg, cg_i64(cg, xi * w->T), t.iv), cg_i64(cg, q->F)), f0), lanes);
    for (int j = 0; j < 4; j++) { /* A^T M */
        a[0][j] = cg_fadd_ordered(cg, cg_fadd_ordered(cg, x[0][j], x[1][j]), x[2][j]);
        a[1][j] = cg_fsub_ordered(cg, cg_fsub_ordered(cg, x[1][j], x[2][j]), x[3][j]);
    }
    LLVMValueRef b = bias ? cg_vload_full(cg, bias, f0, lanes) : NULL;
    for (int i = 0; i < 2; i++) { /* (A^T M) A */
        LLVMValueRef y[2] = {cg_fadd_ordered(cg, cg_fadd_ordered(cg, a[i][0], a[i][1]), a[i][2]), cg_fsub_ordered(cg, cg_fsub_ordered(cg, a[i][1], a[i][2]), a[i][3])};
        for (int j = 0; j < 2; j++) {
            LLVMValueRef value = b ? cg_fadd_ordered(cg, y[j], b) : y[j];
            if (act) value = cg_activation(cg, act->op, value);
            cg_vstore_full(cg, value, yt, cg_add(cg, cg_add(cg, corner, f0), cg_i64(cg, (i * 2 * w->TW + j) * q->F)));
        }
    }
    fb.no_unroll = true;
    cg_loop_end(cg, &fb);
    t.no_unroll = true;
    cg_loop_end(cg, &t);
}

/* values: y, x, Wt, bias (or null), scratch, n. Per chunk: U (unless the library embeds it),
 * xq's border zeroed; per example the steps of "Winograd" above. */
static void winograd_forward_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const ConvGeometry *q = t->q;
    WinogradLayout w = winograd_layout(q);
    unsigned lanes = direct_lanes(cg);
    int64_t ohw = q->OH * q->OW;
    ConvChunks k = conv_chunks_begin(cg, begin, end, v[5], v[4], t->slot, false);
    conv_chunks_skip_empty(cg, &k, v[5]);
    LLVMValueRef u = t->winograd_u ? t->winograd_u : cg_gep(cg, k.slot, cg_i64(cg, w.u));
    if (!t->winograd_u) winograd_weights(cg, q, v[2], u);
    LLVMValueRef xq = cg_gep(cg, k.slot, cg_i64(cg, w.xq)), vt = cg_gep(cg, k.slot, cg_i64(cg, w.v));
    LLVMValueRef m = cg_gep(cg, k.slot, cg_i64(cg, w.m)), yt = cg_gep(cg, k.slot, cg_i64(cg, w.yt));
    conv_zero(cg, xq, w.Hq * w.Wq * q->C);
    conv_chunk_examples_begin(cg, &k, v[5]);
    LLVMValueRef x_b = example_ptr(cg, v[1], k.b.iv, q->C * q->H * q->W), y_b = example_ptr(cg, v[0], k.b.iv, q->F * ohw);
    CgLoop iy = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->H), "iy"); /* xq[PH + iy][P + ix][c] = x[c][iy][ix] */
    cg_transpose_copy(cg, cg_gep(cg, x_b, cg_mul(cg, iy.iv, cg_i64(cg, q->W))), q->H * q->W, cg_i64(cg, q->C), q->W,
                      cg_gep(cg, xq, cg_mul(cg, cg_add(cg, cg_mul(cg, cg_add(cg, iy.iv, cg_i64(cg, q->PH)), cg_i64(cg, w.Wq)), cg_i64(cg, q->P)),
                                         cg_i64(cg, q->C))),
                      q->C, true);
    iy.no_unroll = true;
    cg_loop_end(cg, &iy);
    winograd_input(cg, q, &w, xq, vt, lanes);
    CgLoop xi = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, 16), "xi");
    CgGemm g = {.c = cg_gep(cg, m, cg_mul(cg, xi.iv, cg_i64(cg, w.T * q->F))),
                .a = cg_gep(cg, vt, cg_mul(cg, xi.iv, cg_i64(cg, w.T * q->C))),
                .b = cg_gep(cg, u, cg_mul(cg, xi.iv, cg_i64(cg, q->C * q->F))),
                .M = cg_i64(cg, w.T), .P = cg_i64(cg, q->C), .J = q->F,
                .a_rs = q->C, .a_cs = 1, .b_rs = q->F, .c_rs = q->F, .scale = 1.0, .serial = true, .b_in_place = true};
    cg_gemm(cg, &g);
    xi.no_unroll = true;
    cg_loop_end(cg, &xi);
    winograd_output(cg, q, &w, m, t->node->bias >= 0 ? v[3] : NULL, conv_tile_activation(cg, t->node), yt, lanes);
    CgLoop oy = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->OH), "oy"); /* y[f][oy][ox] = yt[oy][ox][f] */
    cg_transpose_copy(cg, cg_gep(cg, yt, cg_mul(cg, oy.iv, cg_i64(cg, 2 * w.TW * q->F))), q->F, cg_i64(cg, q->OW), q->F,
                      cg_gep(cg, y_b, cg_mul(cg, oy.iv, cg_i64(cg, q->OW))), ohw, true);
    oy.no_unroll = true;
    cg_loop_end(cg, &oy);
    conv_activation_after(cg, t->node, y_b, q->F * ohw);
    conv_chunks_end(cg, &k);
}

/* Winograd in the inference kernels (float32), the implicit GEMM (or the direct kernel) otherwise. */
static bool winograd_used(const Cg *cg, const ConvGeometry *q) { return !cg->training && !cg->f64 && winograd_geometry(q); }

static void emit_conv_forward(Cg *cg, const Node *node, const ConvGeometry *q) {
    LLVMValueRef bias = cg_arg_bias(cg);
    LLVMValueRef v[6] = {cg_arg_out(cg), cg_arg_in(cg, 0), cg_arg_weight(cg), bias ? bias : LLVMConstNull(cg->ptr),
                         cg_arg_scratch(cg), cg_arg_n(cg)};
    ConvTask t = {node, q, conv_slot_elements(cg->g, node), NULL};
    if (winograd_used(cg, q)) {
        if (cg->lib_params) t.winograd_u = winograd_weights_table(cg, node, q);
        conv_run_chunks(cg, v, 6, winograd_forward_chunks, &t);
        return;
    }
    conv_run_chunks(cg, v, 6, conv_direct(q) ? direct_forward_chunks : implicit_forward_chunks, &t);
}

/* values: dW, scratch (and in train_step_update, cg_optim_task_values'). Filters [begin, end):
 * dW[o,p] = scale * sum over chunks, in chunk order, of their partial dW[o,p]; then those filters'
 * optimizer update, when the kernel applies it. */
static void conv_dw_reduce(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const ConvGeometry *q = t->q;
    int64_t ckk = q->C * q->KH * q->KW;
    bool direct = conv_direct(q);
    LLVMValueRef dwp0 = cg_gep(cg, v[1], cg_i64(cg, direct ? direct_dw_partial_at(q) : implicit_dw_partial_at(q)));
    CgLoop i = cg_loop_begin(cg, cg_mul(cg, begin, cg_i64(cg, ckk)), cg_mul(cg, end, cg_i64(cg, ckk)), "i");
    LLVMValueRef at = i.iv; /* the direct partial is dW [F, CKK], the implicit one dW^T [CKK, Fp] */
    if (!direct) {
        LLVMValueRef f = LLVMBuildUDiv(cg->b, i.iv, cg_i64(cg, ckk), ""), p = LLVMBuildURem(cg->b, i.iv, cg_i64(cg, ckk), "");
        at = cg_add(cg, cg_mul(cg, p, cg_i64(cg, implicit_forward_shape(cg, q).Fp)), f);
    }
    LLVMValueRef sum = cg_load(cg, dwp0, at);
    for (int c = 1; c < CONV_CHUNKS; c++) sum = cg_fadd(cg, sum, cg_load(cg, dwp0, cg_add(cg, at, cg_i64(cg, c * t->slot))));
    if (t->node->scale != 1.0) sum = cg_fmul(cg, sum, cg_const(cg, t->node->scale));
    cg_store(cg, sum, v[0], i.iv);
    cg_loop_end(cg, &i);
    cg_optim_rows(cg, t->node, v[0], v + 2, cg_mul(cg, begin, cg_i64(cg, ckk)), cg_mul(cg, end, cg_i64(cg, ckk)));
}

static void emit_conv_dw(Cg *cg, const Node *node, const ConvGeometry *q) {
    LLVMValueRef v[5] = {cg_arg_out(cg), cg_arg_in(cg, 0), cg_arg_in(cg, 1), cg_arg_scratch(cg), cg_arg_n(cg)};
    ConvTask t = {node, q, conv_slot_elements(cg->g, node), NULL};
    conv_run_chunks(cg, v, 5, conv_direct(q) ? direct_dw_chunks : implicit_dw_chunks, &t);
    LLVMValueRef r[4] = {v[0], v[3]};
    cg_parallel_for(cg, cg_i64(cg, q->F), r, 2 + cg_optim_task_values(cg, node, r + 2), false, conv_dw_reduce, &t);
}

/* values: db, dy, scratch, n. db[f] = sum_b,j dy[b,f,j] in one sequential pass over each chunk's
 * dy: per example and filter four vector accumulators over the row (a masked last vector), added
 * to the filter's vector in the chunk's slot; at the chunk's end the lane sums give the chunk's
 * partial db, summed in chunk order by emit_conv_db. */
static void conv_db_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const ConvGeometry *q = t->q;
    int64_t ohw = q->OH * q->OW;
    unsigned lanes = direct_lanes(cg);
    LLVMTypeRef vec = LLVMVectorType(cg->elem, lanes);
    ConvChunks k = conv_chunks_begin(cg, begin, end, v[3], v[2], t->slot, false);
    LLVMValueRef accv = k.slot, partial = cg_gep(cg, k.slot, cg_i64(cg, q->F * DIRECT_LANES_MAX));
    conv_zero(cg, accv, q->F * DIRECT_LANES_MAX);
    conv_chunk_examples_begin(cg, &k, v[3]);
    LLVMValueRef acc[4];
    for (int u = 0; u < 4; u++) acc[u] = cg_var(cg, vec, "acc");
    CgLoop f = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F), "f");
    LLVMValueRef row = cg_add(cg, cg_mul(cg, k.b.iv, cg_i64(cg, q->F * ohw)), cg_mul(cg, f.iv, cg_i64(cg, ohw)));
    for (int u = 0; u < 4; u++) LLVMBuildStore(cg->b, LLVMConstNull(vec), acc[u]);
    int64_t full = ohw / lanes, groups = full / 4, tail = ohw % lanes;
    if (groups > 0) {
        CgLoop g = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, groups), "g");
        LLVMValueRef at = cg_add(cg, row, cg_mul(cg, g.iv, cg_i64(cg, 4 * (int64_t)lanes)));
        for (int u = 0; u < 4; u++) {
            LLVMValueRef x = cg_vload_full(cg, v[1], cg_add(cg, at, cg_i64(cg, u * (int64_t)lanes)), lanes);
            LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, vec, acc[u], ""), x), acc[u]);
        }
        g.no_unroll = true;
        cg_loop_end(cg, &g);
    }
    for (int64_t u = groups * 4; u <= full; u++) { /* the leftover whole vectors, then the masked last */
        if (u == full && tail == 0) break;
        LLVMValueRef at = cg_add(cg, row, cg_i64(cg, u * (int64_t)lanes));
        LLVMValueRef x = u < full ? cg_vload_full(cg, v[1], at, lanes)
                                  : cg_vload_masked(cg, v[1], at, lanes, cg_lanes_below(cg, cg_i64(cg, tail), lanes));
        LLVMValueRef a = acc[u % 4];
        LLVMBuildStore(cg->b, cg_fadd(cg, LLVMBuildLoad2(cg->b, vec, a, ""), x), a);
    }
    LLVMValueRef sum = cg_fadd(cg, cg_fadd(cg, LLVMBuildLoad2(cg->b, vec, acc[0], ""), LLVMBuildLoad2(cg->b, vec, acc[1], "")),
                               cg_fadd(cg, LLVMBuildLoad2(cg->b, vec, acc[2], ""), LLVMBuildLoad2(cg->b, vec, acc[3], "")));
    LLVMValueRef at = cg_mul(cg, f.iv, cg_i64(cg, DIRECT_LANES_MAX));
    cg_vstore_full(cg, cg_fadd(cg, cg_vload_full(cg, accv, at, lanes), sum), accv, at);
    cg_loop_end(cg, &f);
    cg_loop_end(cg, &k.b);
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F), "i");
    cg_store(cg, direct_lane_sum(cg, cg_vload_full(cg, accv, cg_mul(cg, i.iv, cg_i64(cg, DIRECT_LANES_MAX)), lanes), lanes),
             partial, i.iv);
    cg_loop_end(cg, &i);
    cg_loop_end(cg, &k.chunk);
}

static void emit_conv_db(Cg *cg, const Node *node, const ConvGeometry *q) {
    LLVMValueRef v[4] = {cg_arg_out(cg), cg_arg_in(cg, 0), cg_arg_scratch(cg), cg_arg_n(cg)};
    ConvTask t = {node, q, conv_slot_elements(cg->g, node), NULL};
    conv_run_chunks(cg, v, 4, conv_db_chunks, &t);
    /* db[f] = scale * the chunks' partial sums in chunk order */
    LLVMValueRef partial0 = cg_gep(cg, v[2], cg_i64(cg, q->F * DIRECT_LANES_MAX));
    CgLoop f = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->F), "f");
    LLVMValueRef sum = cg_load(cg, partial0, f.iv);
    for (int c = 1; c < CONV_CHUNKS; c++) sum = cg_fadd(cg, sum, cg_load(cg, partial0, cg_add(cg, f.iv, cg_i64(cg, c * t.slot))));
    if (node->scale != 1.0) sum = cg_fmul(cg, sum, cg_const(cg, node->scale));
    cg_store(cg, sum, v[0], f.iv);
    cg_loop_end(cg, &f);
}

/* values: dx, dy, Wt, scratch, n.  Per example: dcol = Wt^T dy_b, then col2im. */
static void conv_dx_chunks(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const ConvGeometry *q = t->q;
    int64_t ckk = q->C * q->KH * q->KW, ohw = q->OH * q->OW;
    ConvChunks k = conv_chunks_begin(cg, begin, end, v[4], v[3], t->slot, true);
    CgGemm g = {.c = k.slot, .a = v[2], .b = example_ptr(cg, v[1], k.b.iv, q->F * ohw), .M = cg_i64(cg, ckk),
                .P = cg_i64(cg, q->F), .J = ohw, .a_rs = 1, .a_cs = ckk, .b_rs = ohw, .c_rs = ohw, .scale = 1.0,
                .serial = true};
    cg_gemm(cg, &g);
    emit_col2im(cg, q, k.slot, example_ptr(cg, v[0], k.b.iv, q->C * q->H * q->W));
    conv_chunks_end(cg, &k);
}

static void emit_conv_dx(Cg *cg, const Node *node, const ConvGeometry *q) {
    LLVMValueRef v[5] = {cg_arg_out(cg), cg_arg_in(cg, 0), cg_arg_weight(cg), cg_arg_scratch(cg), cg_arg_n(cg)};
    ConvTask t = {node, q, conv_slot_elements(cg->g, node), NULL};
    conv_run_chunks(cg, v, 5, implicit_dx(q) ? implicit_dx_chunks : conv_dx_chunks, &t);
}

/* maxpool_grad over 2x2 windows of stride 2 that tile the input exactly (every CNN's pool): one
 * row of OW windows at a time as vectors. The two input rows are loaded whole (2*OW lanes) and
 * split into the windows' four positions; the gradient goes to the first position, in the
 * scalar loop's (ky, kx) order, equal to the window's max, and the rows are interleaved back.
 * The same comparisons and selects as the scalar nest, so the same result, several times faster
 * (the scalar nest's first-match chain kept LLVM from vectorizing it). The float64 twin takes the
 * same path, so gradcheck covers it. */
static bool pool_by_rows(const Node *node, const ConvGeometry *q, bool tiles) {
    return (node->op == OP_MAXPOOL_GRAD || node->op == OP_MAXPOOL) && tiles && q->KH == 2 && q->KW == 2 && q->OW >= 4 &&
           q->OW <= 64;
}

/* lanes first, first + step, ... (count of them) of the concatenation of a and b */
static LLVMValueRef pool_shuffle(Cg *cg, LLVMValueRef a, LLVMValueRef b, int count, int first, int step, bool interleave) {
    LLVMValueRef idx[128];
    for (int i = 0; i < count; i++) {
        int lane = interleave ? (i % 2 ? count / 2 : 0) + i / 2 : first + step * i;
        idx[i] = LLVMConstInt(LLVMInt32TypeInContext(cg->ctx), (unsigned long long)lane, 0);
    }
    return LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(idx, (unsigned)count), "");
}

/* Output row oy's windows, 2x2 of stride 2 over the plane at in_base of x: their four positions
 * in (ky, kx) order as vectors of OW (the two input rows loaded whole and split); *top: the
 * index of the upper input row. */
static void pool_window_rows(Cg *cg, const ConvGeometry *q, LLVMValueRef x, LLVMValueRef in_base, LLVMValueRef oy,
                             LLVMValueRef pos[4], LLVMValueRef *top) {
    int ow = (int)q->OW;
    *top = cg_add(cg, in_base, cg_mul(cg, oy, cg_i64(cg, 2 * q->W)));
    LLVMValueRef r0 = cg_vload_full(cg, x, *top, (unsigned)(2 * ow));
    LLVMValueRef r1 = cg_vload_full(cg, x, cg_add(cg, *top, cg_i64(cg, q->W)), (unsigned)(2 * ow));
    pos[0] = pool_shuffle(cg, r0, r0, ow, 0, 2, false);
    pos[1] = pool_shuffle(cg, r0, r0, ow, 1, 2, false);
    pos[2] = pool_shuffle(cg, r1, r1, ow, 0, 2, false);
    pos[3] = pool_shuffle(cg, r1, r1, ow, 1, 2, false);
}

/* maxpool by rows, as maxpool_grad: the scalar nest's max chain (-inf, then the window's four
 * positions in (ky, kx) order, cg_max each) on vectors of OW windows — the same result; the
 * scalar nest ran at a tenth of the memory's speed (a library's CNN spent 4 of its 24 ms at
 * batch 256 in its first pool). */
static void pool_rows(Cg *cg, const ConvGeometry *q, LLVMValueRef *v, LLVMValueRef in_base, LLVMValueRef out_base) {
    CgLoop oy = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->OH), "oy");
    LLVMValueRef pos[4], top;
    pool_window_rows(cg, q, v[1], in_base, oy.iv, pos, &top);
    LLVMValueRef acc = cg_splat(cg, cg_const(cg, -HUGE_VAL), (unsigned)q->OW);
    for (int k = 0; k < 4; k++) acc = cg_max(cg, acc, pos[k]);
    cg_vstore_full(cg, acc, v[0], cg_add(cg, out_base, cg_mul(cg, oy.iv, cg_i64(cg, q->OW))));
    cg_loop_end(cg, &oy);
}

static void pool_grad_rows(Cg *cg, const Node *node, const ConvGeometry *q, LLVMValueRef *v, LLVMValueRef in_base,
                           LLVMValueRef out_base) {
    int ow = (int)q->OW;
    LLVMValueRef dx = v[0], dy = v[1], x = v[2], y = v[3];
    LLVMValueRef zero = LLVMConstNull(LLVMVectorType(cg->elem, (unsigned)ow));
    CgLoop oy = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->OH), "oy");
    LLVMValueRef pos[4], top;
    pool_window_rows(cg, q, x, in_base, oy.iv, pos, &top);
    LLVMValueRef bottom = cg_add(cg, top, cg_i64(cg, q->W));
    LLVMValueRef o = cg_add(cg, out_base, cg_mul(cg, oy.iv, cg_i64(cg, q->OW)));
    LLVMValueRef max = cg_vload_full(cg, y, o, (unsigned)ow), g = cg_vload_full(cg, dy, o, (unsigned)ow);
    LLVMValueRef seen = NULL, out[4];
    LLVMValueRef flows = graph_fused(cg->g, node) ? LLVMBuildFCmp(cg->b, LLVMRealOGT, max, zero, "") : NULL;
    for (int k = 0; k < 4; k++) {
        LLVMValueRef hit = LLVMBuildFCmp(cg->b, LLVMRealOEQ, pos[k], max, "");
        if (seen) hit = LLVMBuildAnd(cg->b, hit, LLVMBuildNot(cg->b, seen, ""), "");
        seen = seen ? LLVMBuildOr(cg->b, seen, hit, "") : hit;
        if (flows) hit = LLVMBuildAnd(cg->b, hit, flows, ""); /* fused relu_grad: nothing flows where the max is <= 0 */
        out[k] = LLVMBuildSelect(cg->b, hit, g, zero, "");
    }
    cg_vstore_full(cg, pool_shuffle(cg, out[0], out[1], 2 * ow, 0, 0, true), dx, top);
    cg_vstore_full(cg, pool_shuffle(cg, out[2], out[3], 2 * ow, 0, 0, true), dx, bottom);
    cg_loop_end(cg, &oy);
}

/* Pools: examples [begin, end) (each writes only its own output), then a loop nest over (c, oy,
 * ox) and the window (ky, kx). values: out, in, then x, y (maxpool_grad), then n. */
static void pool_examples(Cg *cg, LLVMValueRef *v, LLVMValueRef begin, LLVMValueRef end, void *user) {
    const ConvTask *t = user;
    const Node *node = t->node;
    const ConvGeometry *q = t->q;
    bool grad = node->op == OP_MAXPOOL_GRAD || node->op == OP_AVGPOOL_GRAD;
    bool max = node->op == OP_MAXPOOL || node->op == OP_MAXPOOL_GRAD;
    LLVMValueRef out = v[0], in = v[1];
    LLVMValueRef x = node->op == OP_MAXPOOL_GRAD ? v[2] : NULL;
    LLVMValueRef y = node->op == OP_MAXPOOL_GRAD ? v[3] : NULL;
    int64_t in_size = q->C * q->H * q->W, out_size = q->C * q->OH * q->OW;
    LLVMValueRef acc = cg_var(cg, cg->elem, "acc");
    LLVMValueRef found = cg_var(cg, cg->i1, "found");
    LLVMValueRef inv = cg_const(cg, 1.0 / (double)(q->KH * q->KW));
    CgLoop b = cg_loop_begin(cg, begin, end, "b");
    /* Windows that tile the input exactly (stride = kernel, no leftover rows or columns) write
     * every dx element once: no zeroing, no read-modify-write. Otherwise dx starts at zero and
     * overlapping windows (stride < kernel) add up. */
    bool tiles = q->S == q->KH && q->S == q->KW && q->OH * q->S == q->H && q->OW * q->S == q->W;
    if (grad && !tiles) {
        LLVMValueRef base = cg_mul(cg, b.iv, cg_i64(cg, in_size));
        CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, in_size), "z");
        cg_store(cg, cg_const(cg, 0), out, cg_add(cg, base, z.iv));
        cg_loop_end(cg, &z);
    }
    CgLoop c = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, q->C), "c");
    LLVMValueRef in_base = cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, in_size)), cg_mul(cg, c.iv, cg_i64(cg, q->H * q->W)));
    LLVMValueRef out_base = cg_add(cg, cg_mul(cg, b.iv, cg_i64(cg, out_size)), cg_mul(cg, c.iv, cg_i64(cg, q->OH * q->OW)));
    if (pool_by_rows(node, q, tiles)) {
        if (node->op == OP_MAXPOOL) pool_rows(cg, q, v, in_base, out_base);
        else pool_grad_rows(cg, node, q, v, in_base, out_base);
        cg_loop_end(cg, &c);
        cg_loop_end(cg, &b);
        return;
    }
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
        if (graph_fused(cg->g, node)) /* fused relu_grad (the only consumer pool_grad fuses): nothing flows where the max is <= 0 */
            hit = LLVMBuildAnd(cg->b, hit, LLVMBuildFCmp(cg->b, LLVMRealOGT, target, cg_const(cg, 0), ""), "");
        LLVMValueRef add = LLVMBuildSelect(cg->b, hit, dy, cg_const(cg, 0), "");
        cg_store(cg, tiles ? add : cg_fadd(cg, cg_load(cg, out, at), add), out, at);
        break;
    }
    default: /* avgpool_grad */
        cg_store(cg, tiles ? cg_fmul(cg, dy, inv) : cg_fadd(cg, cg_load(cg, out, at), cg_fmul(cg, dy, inv)), out, at);
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

static void emit_pool(Cg *cg, const Node *node, const ConvGeometry *q) {
    /* values: out, the node's inputs (maxpool_grad: dy, x, y), n */
    LLVMValueRef v[GRAPH_MAX_INPUTS + 2];
    int count = 0;
    v[count++] = cg_arg_out(cg);
    for (int j = 0; j < node->input_count; j++) v[count++] = cg_arg_in(cg, j);
    v[count++] = cg_arg_n(cg);
    ConvTask t = {node, q, 0, NULL};
    cg_parallel_for(cg, v[count - 1], v, count, false, pool_examples, &t);
}

static LLVMValueRef conv_kernel(Cg *cg, const Node *node) {
    ConvGeometry q = conv_geometry(cg->g, node);
    LLVMValueRef fn;
    switch (node->op) {
    case OP_CONV2D:
        fn = cg_kernel_begin(cg, node);
        emit_conv_forward(cg, node, &q);
        break;
    case OP_CONV2D_DW: fn = cg_kernel_begin(cg, node); emit_conv_dw(cg, node, &q); break;
    case OP_CONV2D_DB: fn = cg_kernel_begin(cg, node); emit_conv_db(cg, node, &q); break;
    case OP_CONV2D_DX: fn = cg_kernel_begin(cg, node); emit_conv_dx(cg, node, &q); break;
    case OP_MAXPOOL_GRAD: fn = cg_kernel_begin(cg, node); emit_pool(cg, node, &q); break;
    default: fn = cg_kernel_begin(cg, node); emit_pool(cg, node, &q); break;
    }
    cg_kernel_end(cg);
    return fn;
}

/* ---------------------------------------------------------------- costs and the table entry */

/* One of the three products (forward, dW, dx) of conv node `fwd`: 2 C KH KW per output element. */
static int64_t conv_product_flops(const Graph *g, const Node *fwd) {
    const Node *x = graph_node(g, fwd->inputs[0]);
    return 2 * fwd->size * x->shape.dims[0] * fwd->kernel_h * fwd->kernel_w;
}

static int64_t conv_flops(const Graph *g, const Node *n, int64_t *backward) {
    *backward = 0;
    if (n->op == OP_CONV2D) {
        int64_t mac = conv_product_flops(g, n);
        int64_t bias = n->bias >= 0 ? n->size : 0;
        *backward = 2 * mac + bias;
        return mac + bias;
    }
    if (n->op == OP_MAXPOOL || n->op == OP_AVGPOOL) {
        *backward = n->size * n->kernel_h * n->kernel_w;
        return *backward;
    }
    return 0;
}

static int64_t conv_kernel_flops(const Graph *g, const Node *n) {
    bool product = n->op == OP_CONV2D || n->op == OP_CONV2D_DX || n->op == OP_CONV2D_DW;
    return product ? conv_product_flops(g, graph_forward_of(g, n)) : 0;
}

/* A conv2d computes a following relu/tanh/sigmoid in its kernel. relu_grad(maxpool_grad(dy, r, y), r):
 * the pool's gradient lands only where r is its window's maximum, so masking by r > 0 equals
 * masking by max > 0; the pool kernel applies the mask (one pass less over the largest
 * activations). */
static bool conv_fuses(const Graph *g, const Node *producer, const Node *consumer) {
    (void)g;
    if (producer->op == OP_CONV2D) return (ops_kind_flags(consumer->op) & OPK_FUSABLE_ACTIVATION) != 0;
    return producer->op == OP_MAXPOOL_GRAD && consumer->op == OP_RELU_GRAD && producer->inputs[1] == consumer->inputs[1];
}

static int64_t conv_scratch(const Graph *g, const Node *node) { return CONV_CHUNKS * conv_slot_elements(g, node); }

/* conv1d is a conv2d node over [c,t] */
static const char *conv_label(const Node *n) { return n->op == OP_CONV2D && n->shape.rank == 2 ? "conv1d" : NULL; }

static const OpSurface conv_surface[] = {
    {"conv2d", conv_spec, conv2d_rule, OPS_LAYER, "2-D convolution: [c, h, w] -> [filters, oh, ow] with a k x k kernel, stride and padding."},
    {"conv1d", conv_spec, conv1d_rule, OPS_LAYER, "1-D convolution over a sequence [c, t] -> [filters, ot]."},
    {"maxpool", pool_spec, maxpool_rule, OPS_LAYER, "Max pooling over k x k windows (k windows on [c, t]); stride defaults to k."},
    {"avgpool", pool_spec, avgpool_rule, OPS_LAYER, "Average pooling over k x k windows (k windows on [c, t]); stride defaults to k."},
    {"global_avgpool", global_avgpool_spec, global_avgpool_rule, OPS_LAYER, "The mean of each channel: [c, h, w] -> [c]."},
    {NULL, NULL, NULL, 0, NULL},
};
static const OpKind conv_kinds[] = {OP_CONV2D, OP_CONV2D_DX, OP_CONV2D_DW, OP_CONV2D_DB, OP_MAXPOOL,
                                    OP_MAXPOOL_GRAD, OP_AVGPOOL, OP_AVGPOOL_GRAD, OP_COUNT};
/* conv1d and the pools read [c,t]: a [t,d] sequence gets a warning (warnings.c) */
static const OpKindFlags conv_flags[] = {
    {OP_CONV2D, OPK_INIT_BY_ACTIVATION | OPK_BIAS_PER_CHANNEL | OPK_CHANNELS_FIRST},
    {OP_MAXPOOL, OPK_CHANNELS_FIRST}, {OP_AVGPOOL, OPK_CHANNELS_FIRST}, {OP_COUNT, 0},
};

/* ---------------------------------------------------------------- ONNX */

/* Conv / MaxPool / AveragePool with the node's window; a [c,t] input is ONNX's 1-D form.
 * global_avgpool (an avgpool whose output is [c]) is GlobalAveragePool, then Flatten. */
static bool conv_onnx(struct OnnxBuilder *b, const Graph *g, const Node *n) {
    const Node *x = graph_node(g, n->inputs[0]);
    const char *y = onnx_value(b, n->id), *xv = onnx_value(b, x->id);
    bool one_d = x->shape.rank == 2;
    int spatial = one_d ? 1 : 2;
    int64_t kernel[2] = {one_d ? n->kernel_w : n->kernel_h, n->kernel_w}, strides[2] = {n->stride, n->stride};
    int64_t pads[4] = {n->pad, n->pad, n->pad, n->pad};
    OnnxNode *node;
    if (n->op == OP_CONV2D) {
        const char *in[3] = {xv, onnx_param(b, n->weight), n->bias >= 0 ? onnx_param(b, n->bias) : NULL};
        node = onnx_op(b, "Conv", y, n->bias >= 0 ? 3 : 2, in);
        onnx_attr_ints(b, node, "pads", pads, 2 * spatial);
    } else if (n->op == OP_AVGPOOL && n->shape.rank < x->shape.rank) {
        const char *pooled = onnx_temp(b, n, "pooled");
        onnx_op1(b, "GlobalAveragePool", pooled, xv);
        onnx_attr_int(b, onnx_op1(b, "Flatten", y, pooled), "axis", 1);
        return true;
    } else if (n->op == OP_MAXPOOL || n->op == OP_AVGPOOL) {
        node = onnx_op1(b, n->op == OP_MAXPOOL ? "MaxPool" : "AveragePool", y, xv);
    } else {
        return false;
    }
    onnx_attr_ints(b, node, "kernel_shape", kernel, spatial);
    onnx_attr_ints(b, node, "strides", strides, spatial);
    return true;
}

/* A conv2d whose inference runs Winograd has an inference kernel of its own. */
static bool conv_inference_variant(const Graph *g, const Node *n) {
    if (n->op != OP_CONV2D) return false;
    ConvGeometry q = conv_geometry(g, n);
    return winograd_geometry(&q);
}

const OpFamily ops_conv = {
    .name = "conv",
    .inference_variant = conv_inference_variant,
    .surface = conv_surface,
    .kinds = conv_kinds,
    .backward = conv_backward,
    .kernel = conv_kernel,
    .flops = conv_flops,
    .kernel_flops = conv_kernel_flops,
    .fuses = conv_fuses,
    .scratch = conv_scratch,
    .label = conv_label,
    .flags = conv_flags,
    .onnx = conv_onnx,
};
