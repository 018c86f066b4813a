/* autodiff.c — reverse-mode AD over the forward graph.
 *
 * Walks the forward nodes from the loss backwards. Each node kind has one backward rule below
 * that turns the gradient of its output (dy) into gradients of its inputs, as new graph nodes;
 * a tensor used several times gets its gradients summed with ADD nodes. Parameter gradients are
 * nodes that write the gradient buffer directly (DENSE_DW, DENSE_DB). */
#include "autodiff.h"

#include <string.h>

typedef struct Ad {
    Graph *g;
    int *grad_of;      /* forward node id -> node id holding its gradient, or -1 */
    OpKind buggy_op;   /* OP_COUNT when no bug is injected */
    bool corrupt;      /* the rule running now is the buggy one: scale what it contributes */
    bool corrupted;    /* it contributed an input gradient (so it was scaled) */
} Ad;

static Node *ad_node(Ad *ad, OpKind op, int a, int b, Shape shape, const Node *origin) {
    int inputs[2] = {a, b};
    Node *n = graph_add(ad->g, op, origin->span, inputs, b < 0 ? 1 : 2, shape);
    n->backward = true;
    n->forward = origin->id;
    n->layer = origin->layer;
    return n;
}

/* grad(x) += g */
static void ad_accumulate(Ad *ad, int x, int g) {
    const Node *xn = graph_node(ad->g, x);
    if (!xn->needs_grad) return;
    if (ad->corrupt) { /* fault injection (tests): this rule's contribution is 1% off */
        Node *bad = ad_node(ad, OP_AFFINE, g, -1, xn->shape, graph_node(ad->g, g));
        bad->scale = 1.01;
        g = bad->id;
        ad->corrupted = true;
    }
    if (ad->grad_of[x] < 0) {
        ad->grad_of[x] = g;
        return;
    }
    ad->grad_of[x] = ad_node(ad, OP_ADD, ad->grad_of[x], g, xn->shape, xn)->id;
}

static void ad_backward_rule(Ad *ad, const Node *n, int dy) {
    Graph *g = ad->g;
    const Node *x = graph_node(g, n->inputs[0]);
    switch (n->op) {
    case OP_DENSE: {
        /* y = x W^T + b:  dW = dy^T x,  db = sum dy,  dx = dy W */
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
        break;
    }
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
    case OP_LEAKY_RELU:
        ad_accumulate(ad, x->id, ad_node(ad, OP_LEAKY_RELU_GRAD, dy, x->id, x->shape, n)->id);
        break;
    case OP_DROPOUT:
        ad_accumulate(ad, x->id, ad_node(ad, OP_DROPOUT_GRAD, dy, -1, x->shape, n)->id);
        break;
    case OP_CONCAT: {
        int64_t offset = 0;
        for (int k = 0; k < n->input_count; k++) {
            const Node *in = graph_node(g, n->inputs[k]);
            if (in->needs_grad) {
                Node *slice = ad_node(ad, OP_CONCAT_SLICE, dy, -1, in->shape, n);
                slice->axis = n->axis;
                slice->stride = offset;
                ad_accumulate(ad, in->id, slice->id);
            }
            offset += in->shape.dims[n->axis];
        }
        break;
    }
    case OP_EMBEDDING: { /* token ids have no gradient; only the looked-up rows do */
        Node *dw = ad_node(ad, OP_EMBEDDING_DW, dy, x->id, (Shape){0}, n);
        dw->grad_param = n->weight;
        break;
    }
    case OP_BATCHNORM: {
        /* training-mode rules; batch statistics are recomputed from x */
        Node *dw = ad_node(ad, OP_BATCHNORM_DW, dy, x->id, (Shape){0}, n);
        dw->grad_param = n->weight;
        Node *db = ad_node(ad, OP_BATCHNORM_DB, dy, -1, (Shape){0}, n);
        db->grad_param = n->bias;
        if (x->needs_grad) {
            Node *dx = ad_node(ad, OP_BATCHNORM_DX, dy, x->id, x->shape, n);
            dx->weight = n->weight;
            ad_accumulate(ad, x->id, dx->id);
        }
        break;
    }
    case OP_LAYERNORM: {
        /* every rule recomputes the row statistics from x instead of storing them */
        Node *dw = ad_node(ad, OP_LAYERNORM_DW, dy, x->id, (Shape){0}, n);
        dw->grad_param = n->weight;
        Node *db = ad_node(ad, OP_LAYERNORM_DB, dy, -1, (Shape){0}, n);
        db->grad_param = n->bias;
        if (x->needs_grad) {
            Node *dx = ad_node(ad, OP_LAYERNORM_DX, dy, x->id, x->shape, n);
            dx->weight = n->weight;
            ad_accumulate(ad, x->id, dx->id);
        }
        break;
    }
    case OP_REDUCE: {
        Node *dx = ad_node(ad, OP_REDUCE_GRAD, dy, -1, x->shape, n);
        dx->scale = n->scale;
        ad_accumulate(ad, x->id, dx->id);
        break;
    }
    case OP_GELU:
        ad_accumulate(ad, x->id, ad_node(ad, OP_GELU_GRAD, dy, x->id, x->shape, n)->id);
        break;
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX: {
        /* both rules need only the forward output y */
        OpKind rule = n->op == OP_SOFTMAX ? OP_SOFTMAX_GRAD : OP_LOG_SOFTMAX_GRAD;
        ad_accumulate(ad, x->id, ad_node(ad, rule, dy, n->id, x->shape, n)->id);
        break;
    }
    case OP_RESHAPE:
    case OP_FLATTEN: {
        Node *v = ad_node(ad, n->op, dy, -1, x->shape, n);
        v->view_of = dy;
        ad_accumulate(ad, x->id, v->id);
        break;
    }
    case OP_RELU:
    case OP_TANH:
    case OP_SIGMOID: {
        /* each rule needs only the forward output y */
        OpKind rule = n->op == OP_RELU ? OP_RELU_GRAD : n->op == OP_TANH ? OP_TANH_GRAD : OP_SIGMOID_GRAD;
        ad_accumulate(ad, x->id, ad_node(ad, rule, dy, n->id, x->shape, n)->id);
        break;
    }
    case OP_ADD:
    case OP_SUB: {
        ad_accumulate(ad, n->inputs[0], dy);
        if (n->op == OP_ADD) {
            ad_accumulate(ad, n->inputs[1], dy);
        } else if (graph_node(g, n->inputs[1])->needs_grad) {
            Node *neg = ad_node(ad, OP_AFFINE, dy, -1, n->shape, n);
            neg->scale = -1;
            ad_accumulate(ad, n->inputs[1], neg->id);
        }
        break;
    }
    case OP_MUL: {
        /* d(a*b) = dy*b, dy*a */
        if (graph_node(g, n->inputs[0])->needs_grad)
            ad_accumulate(ad, n->inputs[0], ad_node(ad, OP_MUL, dy, n->inputs[1], n->shape, n)->id);
        if (graph_node(g, n->inputs[1])->needs_grad)
            ad_accumulate(ad, n->inputs[1], ad_node(ad, OP_MUL, dy, n->inputs[0], n->shape, n)->id);
        break;
    }
    case OP_AFFINE: {
        Node *d = ad_node(ad, OP_AFFINE, dy, -1, n->shape, n);
        d->scale = n->scale;
        ad_accumulate(ad, x->id, d->id);
        break;
    }
    default:
        break; /* inputs, targets, losses and metrics have no backward rule here */
    }
}

bool ad_append_backward(Graph *g, const char *inject_bug) {
    Ad ad = {.g = g, .buggy_op = OP_COUNT};
    if (inject_bug) {
        for (int op = 0; op < OP_COUNT; op++)
            if (strcmp(graph_op_names[op], inject_bug) == 0) ad.buggy_op = (OpKind)op;
        if (ad.buggy_op == OP_COUNT) return false;
    }
    int forward = g->forward_count;
    for (int i = 0; i < forward; i++) {
        Node *n = graph_node(g, i);
        n->needs_grad = n->weight >= 0 || n->bias >= 0;
        for (int j = 0; j < n->input_count; j++)
            if (graph_node(g, n->inputs[j])->needs_grad) n->needs_grad = true;
    }
    ad.grad_of = ARENA_ARRAY(g->arena, int, forward);
    for (int i = 0; i < forward; i++) ad.grad_of[i] = -1;

    /* The loss's own gradient, for the mean over the batch, fused with log-softmax or the square. */
    const Node *loss = graph_node(g, g->loss);
    const Node *pred = graph_node(g, loss->inputs[0]);
    if (pred->needs_grad) {
        OpKind rule = loss->op == OP_CROSS_ENTROPY ? OP_CROSS_ENTROPY_GRAD : loss->op == OP_BCE ? OP_BCE_GRAD : OP_MSE_GRAD;
        Node *d = ad_node(&ad, rule, pred->id, loss->inputs[1], pred->shape, loss);
        ad.grad_of[pred->id] = d->id;
    }
    for (int i = forward - 1; i >= 0; i--) {
        const Node *n = graph_node(g, i);
        if (ad.grad_of[i] < 0 || !n->needs_grad) continue;
        int first_new = g->nodes.len;
        ad.corrupt = n->op == ad.buggy_op;
        ad.corrupted = false;
        ad_backward_rule(&ad, n, ad.grad_of[i]);
        ad.corrupt = false;
        /* A rule that produced only parameter gradients (a first layer): corrupt one of those;
         * the parameter-gradient kernels honour scale. */
        if (n->op == ad.buggy_op && !ad.corrupted)
            for (int k = g->nodes.len - 1; k >= first_new; k--)
                if (graph_node(g, k)->grad_param >= 0) {
                    graph_node(g, k)->scale = 1.01;
                    break;
                }
    }
    return true;
}
