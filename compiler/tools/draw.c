/* draw.c — `nnc draw` (draw.h): the analyzed model's forward graph as a Graphviz graph (libcgraph),
 * laid out and rendered by libgvc. Which block instance made each node (for the clusters) comes
 * from sema's observer: the nodes an expression added belong to the instance it was evaluated in,
 * the innermost expression first. */
#include "draw.h"

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "file.h"
#include "ops.h"
#include "parse.h"
#include "source.h"

enum { DRAW_MAX_NODES = 2000 }; /* beyond this, dot takes minutes and the picture says nothing */

/* ---------------------------------------------------------------- block instance of each node */

typedef struct Instances {
    Arena *arena;
    Node **node;            /* by id as created (before pruning renumbers them) */
    const char **instance;  /* the instance prefix that created it, "" at top level */
    int *next_free;         /* skips ids already given an instance (path-compressed) */
    int cap;
} Instances;

static int next_free(Instances *in, int id) {
    int root = id;
    while (root < in->cap && in->next_free[root] != root) root = in->next_free[root];
    while (id < in->cap && in->next_free[id] != id) {
        int next = in->next_free[id];
        in->next_free[id] = root;
        id = next;
    }
    return root;
}

static void draw_observe(void *data, const SemaObservation *o) {
    Instances *in = data;
    int end = o->graph->nodes.len;
    if (end > in->cap) {
        int cap = in->cap ? 2 * in->cap : 256;
        while (cap < end) cap *= 2;
        Node **node = ARENA_ARRAY(in->arena, Node *, cap + 1);
        const char **instance = ARENA_ARRAY(in->arena, const char *, cap + 1);
        int *free_ids = ARENA_ARRAY(in->arena, int, cap + 1);
        if (in->cap) {
            memcpy(node, in->node, sizeof *node * (size_t)in->cap);
            memcpy(instance, in->instance, sizeof *instance * (size_t)in->cap);
            memcpy(free_ids, in->next_free, sizeof *free_ids * (size_t)in->cap);
        }
        for (int i = in->cap; i <= cap; i++) free_ids[i] = i;
        in->node = node;
        in->instance = instance;
        in->next_free = free_ids;
        in->cap = cap;
    }
    for (int id = next_free(in, o->first_node); id < end; id = next_free(in, id)) {
        in->node[id] = graph_node(o->graph, id);
        in->instance[id] = o->instance ? o->instance : "";
        in->next_free[id] = id + 1;
    }
}

/* ---------------------------------------------------------------- the graph */

typedef struct Drawing {
    Arena *arena;
    Agraph_t *root;
    /* clusters by instance prefix */
    const char **prefixes;
    Agraph_t **clusters;
    int cluster_count, cluster_cap;
} Drawing;

static Agraph_t *cluster_for(Drawing *d, const char *prefix) {
    if (!prefix || !prefix[0]) return d->root;
    for (int i = 0; i < d->cluster_count; i++)
        if (strcmp(d->prefixes[i], prefix) == 0) return d->clusters[i];
    /* "stage0.res_block0." sits inside "stage0." */
    size_t len = strlen(prefix);
    size_t cut = len - 1;
    while (cut > 0 && prefix[cut - 1] != '.') cut--;
    Agraph_t *parent = cluster_for(d, arena_strndup(d->arena, prefix, cut));
    Agraph_t *c = agsubg(parent, arena_printf(d->arena, "cluster_%.*s", (int)len - 1, prefix), 1);
    agsafeset(c, "label", arena_printf(d->arena, "%.*s", (int)(len - 1 - cut), prefix + cut), "");
    agsafeset(c, "style", "rounded,dashed", "");
    agsafeset(c, "color", "#888888", "");
    agsafeset(c, "fontname", "Helvetica", "");
    agsafeset(c, "fontsize", "11", "");
    if (d->cluster_count == d->cluster_cap) {
        int cap = d->cluster_cap ? 2 * d->cluster_cap : 16;
        const char **p = ARENA_ARRAY(d->arena, const char *, cap);
        Agraph_t **g = ARENA_ARRAY(d->arena, Agraph_t *, cap);
        if (d->cluster_count) {
            memcpy(p, d->prefixes, sizeof *p * (size_t)d->cluster_count);
            memcpy(g, d->clusters, sizeof *g * (size_t)d->cluster_count);
        }
        d->prefixes = p;
        d->clusters = g;
        d->cluster_cap = cap;
    }
    d->prefixes[d->cluster_count] = arena_strdup(d->arena, prefix);
    d->clusters[d->cluster_count++] = c;
    return c;
}

/* Does node `from` reach node `to` through the forward graph (inputs before consumers)? */
static bool reaches(const Graph *g, int from, int to, unsigned char *seen, int *stack) {
    if (from == to) return true;
    memset(seen, 0, (size_t)g->forward_count);
    int top = 0;
    stack[top++] = to;
    seen[to] = 1;
    while (top) {
        const Node *n = graph_node(g, stack[--top]);
        for (int j = 0; j < n->input_count; j++) {
            int in = n->inputs[j];
            if (in == from) return true;
            if (in >= 0 && in < g->forward_count && !seen[in] && in > from) { /* ids follow execution order */
                seen[in] = 1;
                stack[top++] = in;
            }
        }
    }
    return false;
}

static char *fmt_count(Arena *arena, int64_t v) {
    if (v >= 1000000) return arena_printf(arena, "%.2fM", (double)v / 1e6);
    if (v >= 10000) return arena_printf(arena, "%.1fk", (double)v / 1e3);
    return arena_printf(arena, "%lld", (long long)v);
}

static bool is_metric(const Graph *g, const Node *n) {
    for (int j = 0; j < g->metrics.len; j++)
        if (g->metrics.items[j] == n) return true;
    return false;
}

/* Renders the model; *data is malloc'ed. */
/* The type of the input or target as written ("class[10]"), or its shape. */
static const char *declared_type(Arena *arena, const Ast *ast, const char *text, StmtKind kind, const Shape *shape) {
    for (const Stmt *st = ast->stmts; st; st = st->next)
        if (st->kind == kind && st->type && st->type->span.begin >= 0)
            return arena_strndup(arena, text + st->type->span.begin, (size_t)(st->type->span.end - st->type->span.begin));
    char buf[160];
    return arena_strdup(arena, shape->rank ? shape_str(shape, buf, sizeof buf) : "scalar");
}

static bool draw_render(Arena *arena, const Model *m, const Ast *ast, const char *text, const char **instance_of, bool dot,
                        char **data, size_t *length) {
    const Graph *g = m->graph;
    Drawing d = {.arena = arena};
    d.root = agopen(arena_strdup(arena, m->name), Agdirected, NULL);
    agsafeset(d.root, "rankdir", "TB", "");
    agsafeset(d.root, "fontname", "Helvetica", "");
    agsafeset(d.root, "label", arena_printf(arena, "model %s: %s parameters", m->name, fmt_count(arena, g->param_count)), "");
    agsafeset(d.root, "labelloc", "t", "");
    agattr(d.root, AGNODE, "shape", "box");
    agattr(d.root, AGNODE, "style", "rounded,filled");
    agattr(d.root, AGNODE, "fillcolor", "#eef3fb");
    agattr(d.root, AGNODE, "fontname", "Helvetica");
    agattr(d.root, AGNODE, "fontsize", "11");
    agattr(d.root, AGEDGE, "fontname", "Helvetica");
    agattr(d.root, AGEDGE, "fontsize", "9");
    agattr(d.root, AGEDGE, "style", "solid");
    agattr(d.root, AGEDGE, "color", "#444444");
    Agnode_t **made = ARENA_ARRAY(arena, Agnode_t *, g->forward_count + 1);
    char shape[160];
    for (int i = 0; i < g->forward_count; i++) {
        const Node *n = graph_node(g, i);
        if (is_metric(g, n)) continue; /* metrics watch the network; they are not part of it */
        const char *shape_text = n->shape.rank ? shape_str(&n->shape, shape, sizeof shape) : "scalar";
        int64_t params = (n->weight >= 0 ? graph_param(g, n->weight)->size : 0) + (n->bias >= 0 ? graph_param(g, n->bias)->size : 0);
        const char *label;
        Agraph_t *where = cluster_for(&d, instance_of ? instance_of[i] : "");
        Agnode_t *v = agnode(where, arena_printf(arena, "n%d", i), 1);
        if (i == g->input) {
            label = arena_printf(arena, "%s\ninput %s", m->input_name ? m->input_name : "input",
                                 declared_type(arena, ast, text, STMT_INPUT, &n->shape));
            agsafeset(v, "shape", "ellipse", "");
            agsafeset(v, "fillcolor", "#e6f4e6", "");
        } else if (i == g->target) {
            label = arena_printf(arena, "%s\ntarget %s", m->target_name ? m->target_name : "target",
                                 declared_type(arena, ast, text, STMT_TARGET, &n->shape));
            agsafeset(v, "shape", "ellipse", "");
            agsafeset(v, "fillcolor", "#fdf0e0", "");
        } else if (i == g->loss) {
            label = arena_printf(arena, "loss\n%s", ops_node_label(n));
            agsafeset(v, "shape", "octagon", "");
            agsafeset(v, "fillcolor", "#fbe3e3", "");
        } else if (n->layer) {
            label = params ? arena_printf(arena, "%s\n%s %s\n%s params", n->layer, ops_node_label(n), shape_text, fmt_count(arena, params))
                           : arena_printf(arena, "%s\n%s %s", n->layer, ops_node_label(n), shape_text);
        } else {
            label = arena_printf(arena, "%s %s", ops_node_label(n), shape_text);
            agsafeset(v, "fillcolor", "#f4f4f4", "");
        }
        agsafeset(v, "label", (char *)label, "");
        if (n->layer) agsafeset(v, "tooltip", (char *)n->layer, "");
        made[i] = v;
    }
    unsigned char *seen = arena_alloc(arena, (size_t)g->forward_count + 1);
    int *stack = ARENA_ARRAY(arena, int, g->forward_count + 1);
    for (int i = 0; i < g->forward_count; i++) {
        const Node *n = graph_node(g, i);
        if (!made[i]) continue;
        for (int j = 0; j < n->input_count; j++) {
            int from = n->inputs[j];
            if (from < 0 || from >= g->forward_count || !made[from]) continue;
            Agedge_t *e = agedge(d.root, made[from], made[i], NULL, 1);
            /* a residual (skip) edge: its source also reaches this node through another input */
            bool skip = false;
            for (int k = 0; k < n->input_count && !skip; k++)
                if (k != j && n->inputs[k] != from && n->inputs[k] >= 0 && n->inputs[k] < g->forward_count)
                    skip = reaches(g, from, n->inputs[k], seen, stack);
            if (skip) {
                agsafeset(e, "style", "dashed", "");
                agsafeset(e, "color", "#1f6fb4", "");
                agsafeset(e, "label", "residual", "");
            }
        }
    }
    bool ok;
    if (dot) {
        FILE *f = open_memstream(data, length);
        ok = f && agwrite(d.root, f) == 0;
        if (f) fclose(f);
    } else {
        GVC_t *gvc = gvContext();
        ok = gvLayout(gvc, d.root, "dot") == 0;
        char *svg = NULL;
        unsigned int svg_length = 0;
        if (ok) ok = gvRenderData(gvc, d.root, "svg", &svg, &svg_length) == 0;
        if (ok) {
            *data = malloc(svg_length + 1);
            ok = *data != NULL;
            if (ok) { memcpy(*data, svg, svg_length); (*data)[svg_length] = '\0'; *length = svg_length; }
        }
        if (svg) gvFreeRenderData(svg);
        gvFreeLayout(gvc, d.root);
        gvFreeContext(gvc);
    }
    agclose(d.root);
    return ok;
}

int draw_file(const char *path, Define *defines, int define_count, DiagWarnings warnings, const char *out, bool dot) {
    int length = 0;
    char *buffer = source_read(path, &length);
    if (!buffer) return 1;
    Arena *arena = arena_new();
    char *text = arena_alloc(arena, (size_t)length + 1);
    memcpy(text, buffer, (size_t)length + 1);
    free(buffer);
    int status = 1;
    Diag diag;
    diag_init(&diag, path, text, length, stderr);
    diag.warnings = warnings;
    Ast *ast = parse_source(arena, &diag);
    if (diag.error_count) goto done;
    Instances in = {.arena = arena};
    Model *m = sema_analyze_observed(arena, &diag, ast, defines, define_count, source_model_name(arena, path), draw_observe, &in);
    if (!m) goto done;
    const Graph *g = m->graph;
    if (g->forward_count > DRAW_MAX_NODES) {
        fprintf(stderr, "nnc: error: %s: the network has %d operations; nnc draw draws up to %d\n", path, g->forward_count, DRAW_MAX_NODES);
        goto done;
    }
    /* pruning renumbered the nodes in place: the instance of each node by its new id */
    const char **instance_of = ARENA_ARRAY(arena, const char *, g->forward_count + 1);
    for (int i = 0; i < g->forward_count; i++) instance_of[i] = "";
    for (int old = 0; old < in.cap; old++) {
        Node *n = in.node[old];
        if (n && n->id >= 0 && n->id < g->forward_count && graph_node(g, n->id) == n) instance_of[n->id] = in.instance[old];
    }
    char *data = NULL;
    size_t size = 0;
    if (!draw_render(arena, m, ast, text, instance_of, dot, &data, &size)) {
        fprintf(stderr, "nnc: error: %s: Graphviz could not lay out the diagram\n", path);
        free(data);
        goto done;
    }
    if (strcmp(out, "-") == 0) {
        fwrite(data, 1, size, stdout);
        status = 0;
    } else {
        int err = file_write_atomic(out, data, size);
        if (err) fprintf(stderr, "nnc: error: cannot write '%s': %s\n", out, strerror(err));
        status = err ? 1 : 0;
    }
    free(data);
done:
    arena_free(arena);
    return status;
}

static void draw_usage(FILE *out) {
    fprintf(out, "usage: nnc draw FILE.nn [-o OUT] [--emit=svg|dot] [-D NAME=VALUE]...\n"
                 "  the network as a diagram laid out by Graphviz: layers with output shapes and\n"
                 "  parameters, blocks as clusters, residual edges dashed, the loss\n"
                 "  -o OUT   the output (default: the file's stem + .svg or .dot; '-': stdout)\n");
}

int draw_main(int argc, char **argv) {
    const char *input = NULL, *out = NULL;
    bool dot = false;
    enum { MAX_DEFINES = 64 };
    Define defines[MAX_DEFINES];
    int define_count = 0;
    int status = 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0) {
            if (++i == argc) { fprintf(stderr, "nnc: error: -o needs a path\n"); goto done; }
            out = argv[i];
        } else if (strcmp(a, "--emit=svg") == 0) dot = false;
        else if (strcmp(a, "--emit=dot") == 0) dot = true;
        else if (strncmp(a, "--emit=", 7) == 0) { fprintf(stderr, "nnc: error: nnc draw --emit is svg or dot, not '%s'\n", a + 7); goto done; }
        else if (strncmp(a, "-D", 2) == 0) {
            if (define_parse(a[2] ? a + 2 : (++i < argc ? argv[i] : NULL), defines, &define_count, MAX_DEFINES) != 0) goto done;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { draw_usage(stdout); status = 0; goto done; }
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "nnc: error: unknown option '%s' for nnc draw\n", a); draw_usage(stderr); goto done; }
        else if (input) { fprintf(stderr, "nnc: error: more than one input file ('%s' and '%s')\n", input, a); goto done; }
        else input = a;
    }
    if (!input) { fprintf(stderr, "nnc: error: no input file\n"); draw_usage(stderr); goto done; }
    Arena *arena = arena_new();
    if (!out) out = arena_printf(arena, "%s.%s", source_model_name(arena, input), dot ? "dot" : "svg");
    if (strcmp(out, "-") != 0 && file_same(out, input)) {
        fprintf(stderr, "nnc: error: the output '%s' is the source file '%s'; choose another -o path\n", out, input);
    } else {
        status = draw_file(input, defines, define_count, DIAG_WARNINGS_ON, out, dot);
    }
    arena_free(arena);
done:
    for (int i = 0; i < define_count; i++) free((char *)defines[i].name);
    return status;
}
