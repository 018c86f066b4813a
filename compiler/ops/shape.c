/* shape.c — ops that move or reduce elements without arithmetic of their own: flatten,
 * reshape, concat, mean and sum. Shape rules, backward rules, kernels, costs.
 *
 * flatten: any -> [product] (a view);  reshape(d1, ..., d7): same element count (a view)
 * concat(a, b, c?, d?, axis=0): shapes equal except on the axis, which adds up
 * mean/sum(axis=0): drops the axis (negative counts from the end); reducing a [k] input leaves
 *   [1], so every tensor keeps at least one dimension.
 * transpose: the last two axes swapped, [.., a, b] -> [.., b, a] ([t,d] <-> [d,t] for conv1d).
 *
 * Kernels (views are never lowered). The reduced input is seen as [outer, A, inner] per
 * example, A the reduced axis:
 *   reduce       (y[outer,inner], x)     y = scale * sum_a x[outer, a, inner]   (scale 1/A: mean)
 *   reduce_grad  (dx[outer,A,inner], dy) dx = scale * dy, broadcast over a
 *   concat       (y, x0, ..., xk)        y viewed as [n*outer, A, inner], input i fills A_i rows
 *   concat_slice (dx, dy)                the part of dy one input contributed
 *   transpose    (y[outer,b,a], x[outer,a,b])  y[o,j,i] = x[o,i,j]; its gradient is a transpose too */
#include <math.h>

#include "cg.h"
#include "ops.h"

/* ---------------------------------------------------------------- shape rules */

static const ArgSpec flatten_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, SPEC_END};
static Value flatten_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    Node *n = graph_add(s->graph, OP_FLATTEN, call->span, &x->id, 1, shape_make(1, &x->size));
    n->view_of = x->id;
    return tensor_value(n);
}

static const ArgSpec reshape_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"d1", ARG_INT, true, 0, NULL},
                                       {"d2", ARG_INT, false, 0, NULL}, {"d3", ARG_INT, false, 0, NULL},
                                       {"d4", ARG_INT, false, 0, NULL}, {"d5", ARG_INT, false, 0, NULL},
                                       {"d6", ARG_INT, false, 0, NULL}, {"d7", ARG_INT, false, 0, NULL}, SPEC_END};
static Value reshape_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    Shape out = {0};
    double product = 1;
    for (int i = 1; i < OPS_MAX_ARGS && b->given[i]; i++) {
        out.dims[out.rank++] = (int64_t)b->values[i].number;
        product *= b->values[i].number;
    }
    if (product != (double)x->size) {
        diag_error(s->diag, call->span, "reshape to %s needs %.0f elements, but the input %s has %lld", sema_shape(s, &out), product,
                   sema_shape(s, &x->shape), (long long)x->size);
        return value_error();
    }
    Node *n = graph_add(s->graph, OP_RESHAPE, call->span, &x->id, 1, out);
    n->view_of = x->id;
    return tensor_value(n);
}

/* An axis argument in [-rank, rank) as a non-negative axis; -1 after reporting. */
static int shape_axis(OpSema *s, const Bound *b, int arg, const Shape *shape, const char *inputs) {
    double axis_value = b->values[arg].number;
    int rank = shape->rank;
    if (axis_value != floor(axis_value) || axis_value < -rank || axis_value >= rank) {
        diag_error(s->diag, b->spans[arg], "axis %g is out of range for %s of shape %s (valid: %d to %d)", axis_value, inputs,
                   sema_shape(s, shape), -rank, rank - 1);
        return -1;
    }
    return (int)axis_value < 0 ? (int)axis_value + rank : (int)axis_value;
}

static const ArgSpec concat_spec[] = {{"a", ARG_TENSOR, true, 0, NULL}, {"b", ARG_TENSOR, true, 0, NULL},
                                      {"c", ARG_TENSOR, false, 0, NULL}, {"d", ARG_TENSOR, false, 0, NULL},
                                      {"axis", ARG_NUMBER, false, 0, NULL}, SPEC_END};
static Value concat_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *first = value_node(s, b->values[0]);
    int rank = first->shape.rank;
    int axis = shape_axis(s, b, 4, &first->shape, "inputs");
    if (axis < 0) return value_error();
    int inputs[4], count = 0;
    Shape out = first->shape;
    out.dims[axis] = 0;
    for (int i = 0; i < 4; i++) {
        if (!b->given[i]) continue;
        const Node *x = value_node(s, b->values[i]);
        bool same = x->shape.rank == rank;
        for (int d = 0; same && d < rank; d++)
            if (d != axis && x->shape.dims[d] != first->shape.dims[d]) same = false;
        if (!same) {
            diag_error(s->diag, b->spans[i], "concat along axis %d needs shapes equal except on that axis: %s and %s", axis,
                       sema_shape(s, &first->shape), sema_shape(s, &x->shape));
            return value_error();
        }
        out.dims[axis] += x->shape.dims[axis];
        inputs[count++] = x->id;
    }
    Node *n = graph_add(s->graph, OP_CONCAT, call->span, inputs, count, out);
    n->axis = axis;
    return tensor_value(n);
}

static const ArgSpec reduce_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, {"axis", ARG_NUMBER, false, 0, NULL}, SPEC_END};
static Value reduce_rule(OpSema *s, const Expr *call, Bound *b, bool mean) {
    const Node *x = value_node(s, b->values[0]);
    int axis = shape_axis(s, b, 1, &x->shape, "an input");
    if (axis < 0) return value_error();
    Shape out = {0};
    for (int d = 0; d < x->shape.rank; d++)
        if (d != axis) out.dims[out.rank++] = x->shape.dims[d];
    if (out.rank == 0) out = shape_make(1, (int64_t[]){1});
    /* padded text: the mean over the positions of the input counts the real tokens only, so the
     * node reads the ids too (input 1) */
    bool padded = mean && axis == 0 && x->shape.rank == 2 && sema_input_is_padded(s) &&
                  x->shape.dims[0] == graph_node(s->graph, s->graph->input)->size;
    int inputs[2] = {x->id, s->graph->input};
    Node *n = graph_add(s->graph, OP_REDUCE, call->span, inputs, padded ? 2 : 1, out);
    n->axis = axis;
    n->scale = mean ? 1.0 / (double)x->shape.dims[axis] : 1.0;
    return tensor_value(n);
}
static Value mean_rule(OpSema *s, const Expr *call, Bound *b) { return reduce_rule(s, call, b, true); }

static const ArgSpec transpose_spec[] = {{"x", ARG_TENSOR, true, 0, NULL}, SPEC_END};
static Value transpose_rule(OpSema *s, const Expr *call, Bound *b) {
    const Node *x = value_node(s, b->values[0]);
    if (x->shape.rank < 2) {
        diag_error(s->diag, b->spans[0], "transpose swaps the last two axes, but its input has shape %s", sema_shape(s, &x->shape));
        diag_note(s->diag, SPAN_NONE, "it takes a sequence [t, d] (giving [d, t]) or any tensor of rank 2 or more");
        return value_error();
    }
    Shape out = x->shape;
    out.dims[out.rank - 2] = x->shape.dims[x->shape.rank - 1];
    out.dims[out.rank - 1] = x->shape.dims[x->shape.rank - 2];
    return tensor_value(graph_add(s->graph, OP_TRANSPOSE, call->span, &x->id, 1, out));
}
static Value sum_rule(OpSema *s, const Expr *call, Bound *b) { return reduce_rule(s, call, b, false); }

/* ---------------------------------------------------------------- backward rules */

static void shape_backward(Ad *ad, const Node *n, int dy) {
    const Graph *g = ad_graph(ad);
    const Node *x = graph_node(g, n->inputs[0]);
    switch (n->op) {
    case OP_RESHAPE:
    case OP_FLATTEN: { /* the gradient is dy seen in x's shape */
        Node *v = ad_node(ad, n->op, dy, -1, x->shape, n);
        v->view_of = dy;
        ad_accumulate(ad, x->id, v->id);
        break;
    }
    case OP_CONCAT: {
        int64_t offset = 0;
        for (int k = 0; k < n->input_count; k++) {
            const Node *in = graph_node(g, n->inputs[k]);
            if (in->needs_grad) {
                Node *slice = ad_node(ad, OP_CONCAT_SLICE, dy, -1, in->shape, n);
                slice->axis = n->axis;
                slice->slice_offset = offset;
                ad_accumulate(ad, in->id, slice->id);
            }
            offset += in->shape.dims[n->axis];
        }
        break;
    }
    case OP_REDUCE: {
        Node *dx = ad_node(ad, OP_REDUCE_GRAD, dy, n->input_count == 2 ? n->inputs[1] : -1, x->shape, n);
        dx->scale = n->scale;
        ad_accumulate(ad, x->id, dx->id);
        break;
    }
    case OP_TRANSPOSE: /* dy transposed back */
        ad_accumulate(ad, x->id, ad_node(ad, OP_TRANSPOSE, dy, -1, x->shape, n)->id);
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------- kernels */

static LLVMValueRef reduce_kernel(Cg *cg, const Node *node) {
    const Node *fwd = graph_forward_of(cg->g, node);
    const Shape *in = &graph_node(cg->g, fwd->inputs[0])->shape;
    int64_t outer = 1, inner = 1, A = in->dims[fwd->axis];
    for (int d = 0; d < fwd->axis; d++) outer *= in->dims[d];
    for (int d = fwd->axis + 1; d < in->rank; d++) inner *= in->dims[d];
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    LLVMValueRef out = cg_arg_out(cg), src = cg_arg_in(cg, 0), n = cg_arg_n(cg);
    LLVMValueRef scale = cg_const(cg, node->scale);
    /* the mean over padded positions (input 1: the ids; axis 0, so o is the example): position a
     * weighs 1/(real tokens) when its id is not 0, else 0; nothing real: 0 */
    LLVMValueRef ids = fwd->input_count == 2 ? cg_arg_in(cg, 1) : NULL;
    LLVMValueRef count_var = ids ? cg_var(cg, cg->elem, "real") : NULL;
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, n, cg_i64(cg, outer)), "o"); /* example and outer index */
    LLVMValueRef small = cg_mul(cg, o.iv, cg_i64(cg, inner)), big = cg_mul(cg, o.iv, cg_i64(cg, A * inner));
    LLVMValueRef inv_real = NULL;
    if (ids) {
        LLVMBuildStore(cg->b, cg_const(cg, 0), count_var);
        CgLoop p = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, A), "p");
        LLVMValueRef real = LLVMBuildFCmp(cg->b, LLVMRealUNE, cg_load(cg, ids, cg_add(cg, cg_mul(cg, o.iv, cg_i64(cg, A)), p.iv)),
                                          cg_const(cg, 0), "");
        LLVMBuildStore(cg->b, cg_fadd(cg, cg_load_var(cg, count_var), LLVMBuildSelect(cg->b, real, cg_const(cg, 1), cg_const(cg, 0), "")),
                       count_var);
        cg_loop_end(cg, &p);
        inv_real = cg_fdiv(cg, cg_const(cg, 1), cg_max(cg, cg_load_var(cg, count_var), cg_const(cg, 1)));
    }
    if (node->op == OP_REDUCE) {
        CgLoop z = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, inner), "z");
        cg_store(cg, cg_const(cg, 0), out, cg_add(cg, small, z.iv));
        cg_loop_end(cg, &z);
    }
    CgLoop a = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, A), "a");
    if (ids) {
        LLVMValueRef real = LLVMBuildFCmp(cg->b, LLVMRealUNE, cg_load(cg, ids, cg_add(cg, cg_mul(cg, o.iv, cg_i64(cg, A)), a.iv)),
                                          cg_const(cg, 0), "");
        scale = LLVMBuildSelect(cg->b, real, inv_real, cg_const(cg, 0), "");
    }
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, inner), "i");
    LLVMValueRef at_small = cg_add(cg, small, i.iv);
    LLVMValueRef at_big = cg_add(cg, big, cg_add(cg, cg_mul(cg, a.iv, cg_i64(cg, inner)), i.iv));
    if (node->op == OP_REDUCE)
        cg_store(cg, cg_fadd(cg, cg_load(cg, out, at_small), cg_fmul(cg, cg_load(cg, src, at_big), scale)), out, at_small);
    else
        cg_store(cg, cg_fmul(cg, cg_load(cg, src, at_small), scale), out, at_big);
    cg_loop_end(cg, &i);
    cg_loop_end(cg, &a);
    cg_loop_end(cg, &o);
    cg_kernel_end(cg);
    return fn;
}

/* concat (y, x0, ..., xk): y viewed as [n*outer, A, inner], input i fills A_i rows from its offset
 * concat_slice (dx, dy): the inverse copy for one input (from slice_offset along the axis) */
static LLVMValueRef concat_kernel(Cg *cg, const Node *node) {
    const Node *whole = node->op == OP_CONCAT ? node : graph_node(cg->g, node->forward);
    int axis = whole->axis;
    int64_t outer = 1, inner = 1, A = whole->shape.dims[axis];
    for (int d = 0; d < axis; d++) outer *= whole->shape.dims[d];
    for (int d = axis + 1; d < whole->shape.rank; d++) inner *= whole->shape.dims[d];
    int parts = node->op == OP_CONCAT ? node->input_count : 1;
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    LLVMValueRef out = cg_arg_out(cg), n = cg_arg_n(cg);
    int64_t offset = node->op == OP_CONCAT ? 0 : node->slice_offset;
    for (int k = 0; k < parts; k++) {
        const Node *part = node->op == OP_CONCAT ? graph_node(cg->g, node->inputs[k]) : node;
        int64_t a = part->shape.dims[axis], block = a * inner;
        LLVMValueRef src = cg_arg_in(cg, k);
        CgLoop r = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, n, cg_i64(cg, outer)), "r");
        LLVMValueRef whole_at = cg_add(cg, cg_mul(cg, r.iv, cg_i64(cg, A * inner)), cg_i64(cg, offset * inner));
        LLVMValueRef part_at = cg_mul(cg, r.iv, cg_i64(cg, block));
        CgLoop e = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, block), "e");
        if (node->op == OP_CONCAT)
            cg_store(cg, cg_load(cg, src, cg_add(cg, part_at, e.iv)), out, cg_add(cg, whole_at, e.iv));
        else
            cg_store(cg, cg_load(cg, src, cg_add(cg, whole_at, e.iv)), out, cg_add(cg, part_at, e.iv));
        cg_loop_end(cg, &e);
        cg_loop_end(cg, &r);
        offset += a;
    }
    cg_kernel_end(cg);
    return fn;
}

/* y[o, j, i] = x[o, i, j] over the n * outer matrices [A, B] of x */
static LLVMValueRef transpose_kernel(Cg *cg, const Node *node) {
    const Shape *in = &graph_node(cg->g, node->inputs[0])->shape;
    int64_t A = in->dims[in->rank - 2], B = in->dims[in->rank - 1], outer = node->size / (A * B);
    LLVMValueRef fn = cg_kernel_begin(cg, node);
    LLVMValueRef out = cg_arg_out(cg), src = cg_arg_in(cg, 0), n = cg_arg_n(cg);
    CgLoop o = cg_loop_begin(cg, cg_i64(cg, 0), cg_mul(cg, n, cg_i64(cg, outer)), "o");
    LLVMValueRef base = cg_mul(cg, o.iv, cg_i64(cg, A * B));
    CgLoop i = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, A), "i");
    CgLoop j = cg_loop_begin(cg, cg_i64(cg, 0), cg_i64(cg, B), "j");
    LLVMValueRef from = cg_add(cg, base, cg_add(cg, cg_mul(cg, i.iv, cg_i64(cg, B)), j.iv));
    LLVMValueRef to = cg_add(cg, base, cg_add(cg, cg_mul(cg, j.iv, cg_i64(cg, A)), i.iv));
    cg_store(cg, cg_load(cg, src, from), out, to);
    cg_loop_end(cg, &j);
    cg_loop_end(cg, &i);
    cg_loop_end(cg, &o);
    cg_kernel_end(cg);
    return fn;
}

static LLVMValueRef shape_kernel(Cg *cg, const Node *node) {
    if (node->op == OP_TRANSPOSE) return transpose_kernel(cg, node);
    return node->op == OP_REDUCE || node->op == OP_REDUCE_GRAD ? reduce_kernel(cg, node) : concat_kernel(cg, node);
}

/* ---------------------------------------------------------------- costs and the table entry */

/* views and copies are free; a reduction adds every input element */
static int64_t shape_flops(const Graph *g, const Node *n, int64_t *backward) {
    *backward = n->op == OP_REDUCE ? graph_node(g, n->inputs[0])->size : 0;
    return *backward;
}

static const char *shape_label(const Node *n) { return n->op == OP_REDUCE ? (n->scale == 1.0 ? "sum" : "mean") : NULL; }

static const OpSurface shape_surface[] = {
    {"flatten", flatten_spec, flatten_rule, OPS_LAYER},
    {"reshape", reshape_spec, reshape_rule, OPS_LAYER},
    {"concat", concat_spec, concat_rule, OPS_LAYER},
    {"mean", reduce_spec, mean_rule, OPS_LAYER},
    {"sum", reduce_spec, sum_rule, OPS_LAYER},
    {"transpose", transpose_spec, transpose_rule, OPS_LAYER},
    {NULL, NULL, NULL, 0},
};
static const OpKind shape_kinds[] = {OP_FLATTEN, OP_RESHAPE, OP_CONCAT, OP_CONCAT_SLICE, OP_REDUCE, OP_REDUCE_GRAD, OP_TRANSPOSE,
                                     OP_COUNT};
static const OpKindFlags shape_flags[] = {{OP_TRANSPOSE, OPK_PERMUTES_AXES}, {OP_COUNT, 0}};

const OpFamily ops_shape = {
    .name = "shape",
    .surface = shape_surface,
    .kinds = shape_kinds,
    .backward = shape_backward,
    .kernel = shape_kernel,
    .flops = shape_flops,
    .label = shape_label,
    .flags = shape_flags,
};
