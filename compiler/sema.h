/* sema.h — semantic analysis: AST to the forward graph plus the model description.
 * Resolves names and params (with -D overrides), folds constants, inlines `def` blocks, checks
 * every call's arguments and every shape, names layers, and canonicalizes the `train` block. */
#ifndef NNC_SEMA_H
#define NNC_SEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"
#include "graph.h"

typedef struct Define {
    const char *name;
    const char *value_text; /* as written after '=' */
    bool used;
} Define;

/* One -D argument, NAME=VALUE (text NULL: the option had no argument), appended to defines:
 * name malloc'd (the caller frees it), value_text pointing into text. A malformed one, a full list
 * (cap) or a name given twice prints nnc's error and returns -1. */
int define_parse(const char *text, Define *defines, int *count, int cap);

typedef struct Model {
    Graph *graph;
    const char *name;
    const char *input_name;
    int input_kind;          /* NnrtInputKind */
    Shape input_shape;
    int64_t input_vocab;
    const char *target_name;
    int target_kind;         /* NnrtTargetKind */
    int64_t target_classes;
    Shape target_shape;
    const char *loss_name;
    int metric_count;
    const char **metric_names;
    int *metric_reduce;      /* NnrtMetricReduce */
    int output_kind;         /* NnrtOutputKind */
    /* train { } defaults, canonical spec strings (NULL when absent) */
    const char *data, *validate, *optimizer, *schedule;
    int64_t epochs, batch, seed, early_stop;
    double clip;
    int optimizer_state_tensors; /* per parameter, from the settings table (summary's memory line) */
} Model;

/* Returns NULL when there were errors (all reported through diag). */
Model *sema_analyze(Arena *arena, Diag *diag, const Ast *ast, Define *defines, int define_count,
                    const char *default_name);

/* What the language server sees of analysis: each expression's value as it is computed (an
 * expression inside a block once per instance of the block). */
typedef struct SemaObservation {
    const Expr *expr;
    const char *instance; /* the block instance's layer prefix: "" at top level, "stage0." inside */
    const Graph *graph;   /* as it is at that moment (before pruning: node ids are then stale) */
    const Node *node;     /* the tensor's node; NULL when the value is not a tensor */
    int first_node;       /* nodes [first_node, graph->nodes.len) were added while evaluating it */
    bool is_number;
    double number;
} SemaObservation;
typedef void SemaObserver(void *data, const SemaObservation *observation);

/* sema_analyze, calling `observer` after every expression (NULL: none). */
Model *sema_analyze_observed(Arena *arena, Diag *diag, const Ast *ast, Define *defines, int define_count,
                             const char *default_name, SemaObserver *observer, void *observer_data);

#endif
