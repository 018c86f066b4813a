/* ops.c — the table of op families and the lookups the stages use (see ops.h). */
#include "ops.h"

#include <string.h>

/* The order is the language's op list as `did you mean` and the docs see it. */
static const OpFamily *const ops_families[] = {
    &ops_dense, &ops_conv, &ops_elementwise, &ops_shape, &ops_norm, &ops_embedding, &ops_loss,
};
enum { OPS_FAMILY_COUNT = sizeof ops_families / sizeof ops_families[0] };

const OpSurface *ops_find_surface(const char *name) {
    for (int f = 0; f < OPS_FAMILY_COUNT; f++)
        for (const OpSurface *op = ops_families[f]->surface; op && op->name; op++)
            if (strcmp(op->name, name) == 0) return op;
    return NULL;
}

int ops_surface_names(const char **names, int max) {
    int count = 0;
    for (int f = 0; f < OPS_FAMILY_COUNT; f++)
        for (const OpSurface *op = ops_families[f]->surface; op && op->name && count < max; op++) names[count++] = op->name;
    return count;
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
