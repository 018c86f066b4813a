/* summary.c — building the summary table text (printed by `nnc summary` and `./model summary`).
 * FLOPs count a multiply-add as 2; activations count 1 per element. */
#include "summary.h"

#include "ops.h"

#include <stdio.h>
#include <string.h>

typedef struct Text {
    Arena *arena;
    char *buf;
    size_t len, cap;
} Text;

static void text_printf(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void text_printf(Text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char line[512];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)n + 1) cap *= 2;
        char *buf = arena_alloc(t->arena, cap);
        if (t->len) memcpy(buf, t->buf, t->len);
        t->buf = buf;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, line, (size_t)n + 1);
    t->len += (size_t)n;
}

/* Forward FLOPs per example of one node; *backward gets the backward pass's. */
static int64_t summary_flops(const Graph *g, const Node *n, int64_t *backward) {
    const OpFamily *family = ops_family(n->op);
    *backward = 0;
    return family && family->flops ? family->flops(g, n, backward) : 0;
}


static void human(char *buf, size_t size, double v, const char *unit) {
    if (v >= 1e9) snprintf(buf, size, "%.2f G%s", v / 1e9, unit);
    else if (v >= 1e6) snprintf(buf, size, "%.2f M%s", v / 1e6, unit);
    else if (v >= 1e3) snprintf(buf, size, "%.2f k%s", v / 1e3, unit);
    else snprintf(buf, size, "%.0f %s", v, unit);
}

SummaryLayers summary_layers(Arena *arena, const Model *m) {
    const Graph *g = m->graph;
    SummaryLayers out = {.items = arena_alloc(arena, sizeof(SummaryLayer) * (size_t)(g->forward_count + 1))};
    char shape[128];
    for (int i = 0; i < g->forward_count; i++) {
        const Node *n = graph_node(g, i);
        if (i == g->target) continue;
        bool is_metric = false; /* metrics are not part of the network */
        for (int j = 0; j < g->metrics.len; j++)
            if (g->metrics.items[j] == n) is_metric = true;
        if (is_metric) continue;
        SummaryLayer *row = &out.items[out.count++];
        if (n->weight >= 0) row->params += graph_param(g, n->weight)->size;
        if (n->bias >= 0) row->params += graph_param(g, n->bias)->size;
        row->flops = summary_flops(g, n, &row->backward_flops);
        out.params += row->params;
        out.forward_flops += row->flops;
        out.backward_flops += row->backward_flops;
        row->op = ops_node_label(n);
        row->shape = arena_strdup(arena, n->shape.rank ? shape_str(&n->shape, shape, sizeof shape) : "scalar");
        row->name = n->layer ? n->layer : "-";
    }
    return out;
}

const char *summary_table(Arena *arena, const Model *m, const Plan *plan) {
    Text t = {.arena = arena};
    text_printf(&t, "model %s\n", m->name);
    text_printf(&t, "%-28s %-14s %-16s %12s %14s\n", "layer", "op", "output", "params", "FLOPs");
    SummaryLayers layers = summary_layers(arena, m);
    for (int i = 0; i < layers.count; i++) {
        const SummaryLayer *r = &layers.items[i];
        text_printf(&t, "%-28s %-14s %-16s %12lld %14lld\n", r->name, r->op, r->shape, (long long)r->params, (long long)r->flops);
    }
    int64_t total_params = layers.params, forward = layers.forward_flops, backward = layers.backward_flops;
    char a[64], b[64], c[64];
    text_printf(&t, "\n");
    human(a, sizeof a, (double)total_params * 4, "B");
    text_printf(&t, "parameters:            %lld (%s as float32)\n", (long long)total_params, a);
    human(a, sizeof a, (double)forward, "FLOP");
    human(b, sizeof b, (double)backward, "FLOP");
    text_printf(&t, "FLOPs per example:     %s forward, %s backward\n", a, b);
    const char *opt = m->optimizer;
    int state = m->optimizer_state_tensors;
    human(a, sizeof a, (double)total_params * 4 * state, "B");
    text_printf(&t, "optimizer state:       %s (%.*s)\n", a, (int)strcspn(opt, "("), opt);
    human(c, sizeof c, (double)plan->activation_bytes_per_example, "B");
    text_printf(&t, "activations:           %s per example (planned workspace, float32)\n", c);
    return t.buf;
}
