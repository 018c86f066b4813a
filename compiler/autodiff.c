/* autodiff.c — reverse-mode AD over the forward graph.
 *
 * Walks the forward nodes from the loss backwards. Each op family (compiler/ops/) has the backward
 * rule of its ops, which turns the gradient of a node's output (dy) into gradients of its inputs,
 * as new graph nodes; a tensor used several times gets its gradients summed with ADD nodes.
 * Parameter gradients are nodes that write the gradient buffer directly (DENSE_DW, DENSE_DB). */
#include "autodiff.h"

#include <string.h>

#include "ops.h"

struct Ad {
    Graph *g;
    int *grad_of;      /* forward node id -> node id holding its gradient, or -1 */
    bool inject;       /* a wrong rule is injected (tests) */
    OpKind buggy_op;   /* whose */
    bool corrupt;      /* the rule running now is the buggy one: scale what it contributes */
    bool corrupted;    /* it contributed an input gradient (so it was scaled) */
};

Graph *ad_graph(Ad *ad) { return ad->g; }

Node *ad_node(Ad *ad, OpKind op, int a, int b, Shape shape, const Node *origin) {
    int inputs[2] = {a, b};
    Node *n = graph_add(ad->g, op, origin->span, inputs, b < 0 ? 1 : 2, shape);
    n->backward = true;
    n->forward = origin->id;
    n->layer = origin->layer;
    return n;
}

/* grad(x) += g */
void ad_accumulate(Ad *ad, int x, int g) {
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

/* Runs n's backward rule; one whose op is the injected bug has its contribution scaled. */
static void ad_backward_rule(Ad *ad, const Node *n, int dy) {
    const OpFamily *family = ops_family(n->op);
    if (!family || !family->backward) return; /* inputs and targets */
    Graph *g = ad->g;
    int first_new = g->nodes.len;
    bool buggy = ad->inject && n->op == ad->buggy_op;
    ad->corrupt = buggy;
    ad->corrupted = false;
    family->backward(ad, n, dy);
    ad->corrupt = false;
    /* A rule that produced only parameter gradients (a first layer): corrupt one of those;
     * the parameter-gradient kernels honour scale. */
    if (buggy && !ad->corrupted)
        for (int k = g->nodes.len - 1; k >= first_new; k--)
            if (graph_node(g, k)->grad_param >= 0) {
                graph_node(g, k)->scale = 1.01;
                break;
            }
}

bool ad_append_backward(Graph *g, const char *inject_bug) {
    Ad ad = {.g = g};
    if (inject_bug) {
        for (int op = 0; op < OP_COUNT; op++)
            if (strcmp(graph_op_names[op], inject_bug) == 0) ad.buggy_op = (OpKind)op, ad.inject = true;
        if (!ad.inject) return false;
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

    /* The loss is the root: its rule seeds the pass (a loss is not an injectable bug). */
    const Node *loss = graph_node(g, g->loss);
    ops_family(loss->op)->backward(&ad, loss, -1);
    for (int i = forward - 1; i >= 0; i--) {
        const Node *n = graph_node(g, i);
        if (ad.grad_of[i] < 0 || !n->needs_grad) continue;
        ad_backward_rule(&ad, n, ad.grad_of[i]);
    }
    return true;
}
