/* warnings.c — the warning passes over the forward graph (see warnings.h). */
#include "warnings.h"

#include <stdio.h>
#include <string.h>

#include "ops.h"

/* How many forward nodes read each node's output. */
static int *warn_reader_counts(Arena *arena, const Graph *g) {
    int *readers = ARENA_ARRAY(arena, int, g->nodes.len + 1);
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = graph_node(g, i);
        for (int j = 0; j < n->input_count; j++) readers[n->inputs[j]]++;
    }
    return readers;
}

/* A layer's bias that the node right after it cancels (dense/conv -> batchnorm): useless, and
 * harmful with Adam, which normalizes its zero-mean rounding noise into full-size steps. */
static void warn_cancelled_bias(Diag *diag, const Graph *g, const int *readers) {
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *norm = graph_node(g, i);
        if (!(ops_kind_flags(norm->op) & OPK_CANCELS_CHANNEL_BIAS) || norm->input_count < 1) continue;
        const Node *layer = graph_node(g, norm->inputs[0]);
        unsigned flags = ops_kind_flags(layer->op);
        bool per_channel = (flags & OPK_BIAS_PER_CHANNEL) || ((flags & OPK_BIAS_PER_LAST_AXIS) && layer->shape.rank == 1);
        /* Another reader would see the bias, so it would matter there. */
        if (layer->bias < 0 || !per_channel || readers[layer->id] != 1) continue;
        const char *op = ops_node_label(layer), *norm_op = ops_node_label(norm);
        /* No layer name in the message: the same line in two block instances is said once. */
        diag_warning(diag, layer->span, "this %s's bias has no effect: the %s after it subtracts each channel's mean", op, norm_op);
        diag_note(diag, norm->span, "normalized here");
        diag_note(diag, SPAN_NONE, "its gradient is zero, and Adam turns the rounding noise in it into full-size random steps; "
                                   "%s has a bias of its own", norm_op);
        diag_note(diag, SPAN_NONE, "leave it out: %s(..., bias=false)", op);
    }
}

/* softmax -> cross_entropy, sigmoid -> bce: the loss applies the activation again. */
static void warn_activation_applied_twice(Diag *diag, const Graph *g) {
    static const struct { unsigned applies, activation; } pairs[] = {
        {OPK_APPLIES_SOFTMAX, OPK_SOFTMAX},
        {OPK_APPLIES_SIGMOID, OPK_SIGMOID},
    };
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *loss = graph_node(g, i);
        unsigned flags = ops_kind_flags(loss->op);
        if (loss->input_count < 1) continue;
        const Node *act = graph_node(g, loss->inputs[0]);
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
            if (!(flags & pairs[p].applies) || !(ops_kind_flags(act->op) & pairs[p].activation)) continue;
            const char *name = ops_node_label(act), *loss_name = ops_node_label(loss);
            diag_warning(diag, act->span, "%s applies %s to its input itself; this '%s' makes it apply it twice", loss_name,
                         name, name);
            diag_note(diag, loss->span, "%s is here", loss_name);
            diag_note(diag, SPAN_NONE, "it then reads squashed values as logits: its gradients shrink and training stalls");
            if (flags & OPK_OUTPUT_PROBABILITIES)
                diag_note(diag, SPAN_NONE, "pass the logits (remove '-> %s'); predict still prints probabilities", name);
            else
                diag_note(diag, SPAN_NONE, "pass the logits (remove '-> %s')", name);
        }
    }
}

/* conv1d or a pool over a [t, d] sequence (embedding's output): they read [c, t], so positions
 * would be channels and the window would slide over the features. */
static void warn_sequence_as_channels(Arena *arena, Diag *diag, const Graph *g) {
    int *origin = ARENA_ARRAY(arena, int, g->nodes.len + 1); /* the node that made it a sequence, or -1 */
    char buf[64], t_by_d[64];
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = graph_node(g, i);
        unsigned flags = ops_kind_flags(n->op);
        origin[i] = -1;
        int seq = -1; /* a [t, d] input whose positions this node keeps on axis 0 */
        for (int j = 0; j < n->input_count && seq < 0; j++) {
            const Node *x = graph_node(g, n->inputs[j]);
            if (origin[x->id] >= 0 && x->shape.rank == 2) seq = x->id;
        }
        if (seq >= 0 && (flags & OPK_CHANNELS_FIRST)) {
            const Node *x = graph_node(g, seq), *from = graph_node(g, origin[seq]);
            const char *op = ops_node_label(n);
            snprintf(t_by_d, sizeof t_by_d, "[%lld,%lld]", (long long)x->shape.dims[1], (long long)x->shape.dims[0]);
            diag_warning(diag, n->span, "%s reads its input as [channels, t], but %s is a sequence [t, d] from %s", op,
                         shape_str(&x->shape, buf, sizeof buf), ops_node_label(from));
            diag_note(diag, SPAN_NONE, "it would take the %lld positions as channels and slide along the %lld features",
                      (long long)x->shape.dims[0], (long long)x->shape.dims[1]);
            diag_note(diag, SPAN_NONE, "transpose it first to make it %s: x -> embedding(v, d) -> transpose -> %s(...)", t_by_d, op);
            continue;
        }
        if (flags & OPK_SEQUENCE_OUTPUT) origin[i] = i;
        else if (seq >= 0 && !(flags & OPK_PERMUTES_AXES) && n->shape.rank == 2 &&
                 n->shape.dims[0] == graph_node(g, seq)->shape.dims[0])
            origin[i] = origin[seq]; /* element-wise ops, dense, layernorm, ... keep the positions first */
    }
}

/* The layers among the unreported dead ancestors of `node` (it included), marked reported; their
 * names, comma-separated, into buf. */
static int warn_collect_layers(const Graph *g, int node, const bool *live, bool *reported, char *buf, size_t size) {
    int count = 0;
    size_t len = strlen(buf);
    /* Ancestors have smaller ids: one backward sweep from node. */
    bool *reach = reported + g->nodes.len; /* scratch half of the same array */
    memset(reach, 0, sizeof *reach * (size_t)g->nodes.len);
    reach[node] = true;
    for (int i = node; i >= 0; i--) {
        if (!reach[i] || live[i]) continue;
        const Node *n = graph_node(g, i);
        for (int j = 0; j < n->input_count; j++) reach[n->inputs[j]] = true;
    }
    for (int i = 0; i <= node; i++) { /* named in source order */
        const Node *n = graph_node(g, i);
        if (!reach[i] || live[i] || reported[i]) continue;
        reported[i] = true;
        if (!n->layer || (n->weight < 0 && n->bias < 0)) continue;
        if (count < 6 && len + strlen(n->layer) + 8 < size)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", count ? ", " : "", n->layer);
        else if (count == 6 && len + 8 < size)
            len += (size_t)snprintf(buf + len, size - len, ", ...");
        count++;
    }
    return count;
}

/* Values that reach neither the loss, a metric nor the output: reported at the binding that holds
 * them (the last one, when several hold the same value), else at the layer. */
static bool *warn_unused(Arena *arena, Diag *diag, const Graph *g, const int *readers, const TensorBinding *bindings,
                         int binding_count) {
    bool *live = ARENA_ARRAY(arena, bool, g->nodes.len + 1);
    bool *reported = ARENA_ARRAY(arena, bool, 2 * g->nodes.len + 1);
    int roots[] = {g->input, g->target, g->loss, g->output};
    for (size_t r = 0; r < sizeof roots / sizeof roots[0]; r++)
        if (roots[r] >= 0) live[roots[r]] = true;
    for (int i = 0; i < g->metrics.len; i++) live[((const Node *)g->metrics.items[i])->id] = true;
    for (int i = g->nodes.len - 1; i >= 0; i--) {
        if (!live[i]) continue;
        const Node *n = graph_node(g, i);
        for (int j = 0; j < n->input_count; j++) live[n->inputs[j]] = true;
    }
    char layers[256];
    int *last_binding = ARENA_ARRAY(arena, int, g->nodes.len + 1); /* of each node: 1 + its index */
    for (int b = 0; b < binding_count; b++)
        if (bindings[b].node >= 0) last_binding[bindings[b].node] = b + 1;
    for (int b = 0; b < binding_count; b++) {
        const TensorBinding *tb = &bindings[b];
        /* Only where the unused part ends (what feeds it is covered by the same message), at the
         * last name given to the value. */
        if (tb->node < 0 || live[tb->node] || readers[tb->node] || last_binding[tb->node] != b + 1) continue;
        layers[0] = '\0';
        int count = warn_collect_layers(g, tb->node, live, reported, layers, sizeof layers);
        diag_warning(diag, tb->span, "'%s' is never used: its value reaches neither the loss, a metric nor the output", tb->name);
        if (count)
            diag_note(diag, SPAN_NONE, "so the layer%s computing it %s left out of the model (not trained, saved or counted): %s",
                      count == 1 ? "" : "s", count == 1 ? "is" : "are", layers);
        diag_note(diag, SPAN_NONE, "use it, or remove it");
    }
    for (int i = g->nodes.len - 1; i >= 0; i--) {
        const Node *n = graph_node(g, i);
        if (live[i] || reported[i] || !n->layer || (n->weight < 0 && n->bias < 0)) continue;
        layers[0] = '\0';
        (void)warn_collect_layers(g, i, live, reported, layers, sizeof layers);
        diag_warning(diag, n->span, "layer '%s' is never used: its output reaches neither the loss, a metric nor the output", n->layer);
        diag_note(diag, SPAN_NONE, "so it is left out of the model (not trained, saved or counted): %s", layers);
    }
    return live;
}

bool *warnings_check(Arena *arena, Diag *diag, const Graph *g, const TensorBinding *bindings, int binding_count,
                     bool complete) {
    int *readers = warn_reader_counts(arena, g);
    warn_cancelled_bias(diag, g, readers);
    warn_activation_applied_twice(diag, g);
    warn_sequence_as_channels(arena, diag, g);
    if (!complete || g->loss < 0) return NULL;
    return warn_unused(arena, diag, g, readers, bindings, binding_count);
}
