/* graph.c — building and printing the graph IR. */
#include "graph.h"

#include <string.h>

const char *const graph_op_names[OP_COUNT] = {
#define GRAPH_OP_NAME(kind, name) [OP_##kind] = name,
    GRAPH_OPS(GRAPH_OP_NAME)
#undef GRAPH_OP_NAME
};

Graph *graph_new(Arena *arena) {
    Graph *g = ARENA_NEW(arena, Graph);
    g->arena = arena;
    g->input = g->target = g->loss = g->output = -1;
    return g;
}

Node *graph_node(const Graph *g, int id) { return g->nodes.items[id]; }
ParamTensor *graph_param(const Graph *g, int index) { return g->params.items[index]; }

int64_t shape_size(const Shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dims[i];
    return n;
}

Shape shape_make(int rank, const int64_t *dims) {
    Shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) s.dims[i] = dims[i];
    return s;
}

bool shape_equal(const Shape *a, const Shape *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

char *shape_str(const Shape *s, char *buf, int buf_size) {
    int len = snprintf(buf, (size_t)buf_size, "[");
    for (int i = 0; i < s->rank && len < buf_size; i++)
        len += snprintf(buf + len, (size_t)(buf_size - len), "%s%lld", i ? "," : "", (long long)s->dims[i]);
    if (len < buf_size) snprintf(buf + len, (size_t)(buf_size - len), "]");
    return buf;
}

Node *graph_add(Graph *g, OpKind op, Span span, const int *inputs, int input_count, Shape shape) {
    Node *n = ARENA_NEW(g->arena, Node);
    n->id = g->nodes.len;
    n->op = op;
    n->span = span;
    n->input_count = input_count;
    for (int i = 0; i < input_count; i++) n->inputs[i] = inputs[i];
    n->shape = shape;
    n->size = shape_size(&shape);
    n->weight = n->bias = n->grad_param = n->sum_slot = n->view_of = n->forward = -1;
    n->running_mean = n->running_var = -1;
    n->positions = 1;
    n->scale = 1.0;
    n->fused = -1;
    ptrvec_push(g->arena, &g->nodes, n);
    return n;
}

int graph_add_param(Graph *g, const char *name, Shape shape, int init, int64_t fan_in, int64_t fan_out,
                    int owner) {
    ParamTensor *p = ARENA_NEW(g->arena, ParamTensor);
    p->name = name;
    p->shape = shape;
    p->size = shape_size(&shape);
    /* Every tensor starts on a 64-byte boundary so kernels can use aligned vector loads. */
    p->offset = (g->param_count + 15) & ~(int64_t)15;
    g->param_count = p->offset + p->size;
    p->init = init;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    p->trainable = true;
    p->owner = owner;
    ptrvec_push(g->arena, &g->params, p);
    return g->params.len - 1;
}

void graph_prune(Graph *g, const bool *keep) {
    int *new_id = ARENA_ARRAY(g->arena, int, g->nodes.len + 1);
    int kept = 0;
    for (int i = 0; i < g->nodes.len; i++) new_id[i] = keep[i] ? kept++ : -1;
    if (kept == g->nodes.len) return;
    int *new_param = ARENA_ARRAY(g->arena, int, g->params.len + 1);
    PtrVec params = {0};
    int64_t param_count = 0;
    for (int i = 0; i < g->params.len; i++) {
        ParamTensor *p = graph_param(g, i);
        new_param[i] = -1;
        if (!keep[p->owner]) continue;
        p->owner = new_id[p->owner];
        p->offset = (param_count + 15) & ~(int64_t)15; /* as graph_add_param places them */
        param_count = p->offset + p->size;
        new_param[i] = params.len;
        ptrvec_push(g->arena, &params, p);
    }
    PtrVec nodes = {0};
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = graph_node(g, i);
        if (!keep[i]) continue;
        n->id = new_id[i];
        for (int j = 0; j < n->input_count; j++) n->inputs[j] = new_id[n->inputs[j]];
        int *refs[] = {&n->weight, &n->bias, &n->running_mean, &n->running_var, &n->grad_param};
        for (size_t r = 0; r < sizeof refs / sizeof refs[0]; r++)
            if (*refs[r] >= 0) *refs[r] = new_param[*refs[r]];
        ptrvec_push(g->arena, &nodes, n);
    }
    int *roots[] = {&g->input, &g->target, &g->loss, &g->output};
    for (size_t r = 0; r < sizeof roots / sizeof roots[0]; r++)
        if (*roots[r] >= 0) *roots[r] = new_id[*roots[r]];
    g->nodes = nodes;
    g->params = params;
    g->param_count = param_count;
}

int graph_storage(const Graph *g, int id) {
    while (graph_node(g, id)->view_of >= 0) id = graph_node(g, id)->view_of;
    return id;
}

const Node *graph_fused(const Graph *g, const Node *n) { return n->fused >= 0 ? graph_node(g, n->fused) : NULL; }

const Node *graph_forward_of(const Graph *g, const Node *node) {
    return node->forward >= 0 ? graph_node(g, node->forward) : node;
}

void graph_dump(FILE *out, const Graph *g) {
    char buf[128];
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = graph_node(g, i);
        if (i == g->forward_count && g->forward_count < g->nodes.len) fprintf(out, "# backward\n");
        fprintf(out, "%%%d = %s(", n->id, graph_op_names[n->op]);
        for (int j = 0; j < n->input_count; j++) fprintf(out, "%s%%%d", j ? ", " : "", n->inputs[j]);
        fprintf(out, ") %s", shape_str(&n->shape, buf, sizeof buf));
        if (n->layer) fprintf(out, " layer=%s", n->layer);
        if (n->weight >= 0) fprintf(out, " weight=%s", graph_param(g, n->weight)->name);
        if (n->bias >= 0) fprintf(out, " bias=%s", graph_param(g, n->bias)->name);
        if (n->grad_param >= 0) fprintf(out, " grad=%s", graph_param(g, n->grad_param)->name);
        if (n->scale != 1.0 || n->shift != 0.0) fprintf(out, " scale=%.17g shift=%.17g", n->scale, n->shift);
        if (n->fused >= 0) fprintf(out, " fused=%s", graph_op_names[graph_node(g, n->fused)->op]);
        if (n->view_of >= 0) fprintf(out, " view_of=%%%d", n->view_of);
        if (n->sum_slot >= 0) fprintf(out, " sum=%d", n->sum_slot);
        fputc('\n', out);
    }
    for (int i = 0; i < g->params.len; i++) {
        const ParamTensor *p = graph_param(g, i);
        fprintf(out, "param %s %s offset=%lld init=%d\n", p->name, shape_str(&p->shape, buf, sizeof buf),
                (long long)p->offset, p->init);
    }
}
