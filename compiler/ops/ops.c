/* ops.c — the table of op families and the lookups the stages use (see ops.h). */
#include "ops.h"

#include <stdio.h>
#include <string.h>

/* The order is the language's op list as `did you mean` and the docs see it. */
static const OpFamily *const ops_families[] = {
    &ops_dense, &ops_conv, &ops_elementwise, &ops_shape, &ops_norm, &ops_embedding, &ops_attention, &ops_recurrent, &ops_loss,
};
enum { OPS_FAMILY_COUNT = sizeof ops_families / sizeof ops_families[0] };

const OpSurface *ops_find_surface(const char *name) {
    for (int f = 0; f < OPS_FAMILY_COUNT; f++)
        for (const OpSurface *op = ops_families[f]->surface; op && op->name; op++)
            if (strcmp(op->name, name) == 0) return op;
    return NULL;
}

int ops_surface_names(unsigned role, const char **names, int max) {
    int count = 0;
    for (int f = 0; f < OPS_FAMILY_COUNT; f++)
        for (const OpSurface *op = ops_families[f]->surface; op && op->name && count < max; op++)
            if ((op->role & role) == role) names[count++] = op->name;
    return count;
}

const char *ops_spec_signature(Arena *arena, const char *op, const ArgSpec *spec, bool skip_first) {
    char buf[256];
    int len = snprintf(buf, sizeof buf, "%s(", op);
    bool first = true;
    for (int i = skip_first ? 1 : 0; spec[i].name && len < (int)sizeof buf - 1; i++) {
        len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s", first ? "" : ", ", spec[i].name);
        first = false;
        if (!spec[i].required && len < (int)sizeof buf - 1) {
            if (spec[i].kind == ARG_BOOL)
                len += snprintf(buf + len, sizeof buf - (size_t)len, "=%s", spec[i].default_number ? "true" : "false");
            else if (spec[i].kind == ARG_STRING)
                len += snprintf(buf + len, sizeof buf - (size_t)len, "=\"%s\"", spec[i].default_string ? spec[i].default_string : "");
            else
                len += snprintf(buf + len, sizeof buf - (size_t)len, "=%g", spec[i].default_number);
        }
    }
    if (len < (int)sizeof buf - 1) snprintf(buf + len, sizeof buf - (size_t)len, ")");
    return arena_strdup(arena, buf);
}

/* Ops that LANGUAGE v2 announces and a later version adds; a call gets "planned extension"
 * instead of "unknown operation". Remove a name here when its family adds it. */
static const char *const ops_planned[] = {NULL};

bool ops_is_planned(const char *name) {
    for (size_t i = 0; ops_planned[i]; i++)
        if (strcmp(ops_planned[i], name) == 0) return true;
    return false;
}

bool ops_metric_higher_is_better(const char *name) {
    const OpSurface *op = ops_find_surface(name);
    return op && (op->role & OPS_METRIC) && (op->role & OPS_HIGHER_IS_BETTER);
}

const OpFamily *ops_family(OpKind kind) {
    for (int f = 0; f < OPS_FAMILY_COUNT; f++)
        for (const OpKind *k = ops_families[f]->kinds; *k != OP_COUNT; k++)
            if (*k == kind) return ops_families[f];
    return NULL;
}

unsigned ops_kind_flags(OpKind kind) {
    const OpFamily *family = ops_family(kind);
    if (!family || !family->flags) return 0;
    for (const OpKindFlags *f = family->flags; f->kind != OP_COUNT; f++)
        if (f->kind == kind) return f->flags;
    return 0;
}

bool ops_inference_variant(const Graph *g, const Node *n) {
    const OpFamily *f = ops_family(n->op);
    if (f && f->inference_variant) return f->inference_variant(g, n);
    return (ops_kind_flags(n->op) & OPK_INFERENCE_VARIANT) != 0;
}

const char *ops_node_label(const Node *n) {
    const OpFamily *family = ops_family(n->op);
    const char *label = family && family->label ? family->label(n) : NULL;
    return label ? label : graph_op_names[n->op];
}
