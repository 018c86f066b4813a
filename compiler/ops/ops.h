/* ops.h — the op families. Everything nnc knows about an operation lives in one file,
 * compiler/ops/<family>.c: its surface in the language (name, signature, shape rule), its
 * backward rule, its kernels, its scratch space and its cost. The stages find an op's rules
 * through this table instead of switching over op kinds themselves:
 *
 *   sema      ops_find_surface(name)->rule    checks a call and adds its forward node(s)
 *   autodiff  ops_family(kind)->backward      adds the nodes of the input/parameter gradients
 *   plan      ops_family(kind)->scratch       workspace beyond the node's output
 *             ops_kind_flags(kind)            which activations fuse into which producers
 *   summary   ops_family(kind)->flops         FLOPs per example, forward and backward
 *   codegen   ops_family(kind)->kernel        the LLVM function of one node
 *
 * Adding an op = a graph.h kind (or several: forward and its gradients), one family entry, and
 * nothing else. Internal to the compiler; not a stage interface. */
#ifndef NNC_OPS_H
#define NNC_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"
#include "graph.h"
#include "sema.h"

/* ---------------------------------------------------------------- shape rules (sema) */

typedef enum ValueKind { VAL_ERROR, VAL_NUMBER, VAL_STRING, VAL_BOOL, VAL_TENSOR, VAL_TARGET } ValueKind;

/* What an expression evaluates to during analysis. */
typedef struct Value {
    ValueKind kind;
    double number;
    const char *string;
    bool boolean;
    int node;           /* VAL_TENSOR, VAL_TARGET: the graph node */
} Value;

static inline Value value_error(void) { return (Value){.kind = VAL_ERROR}; }
static inline Value tensor_value(const Node *n) { return (Value){.kind = VAL_TENSOR, .node = n->id}; }

typedef enum ArgKind { ARG_TENSOR, ARG_TARGET, ARG_NUMBER, ARG_INT, ARG_BOOL, ARG_STRING, ARG_PAD } ArgKind;

/* One parameter of an op's signature; the binder checks kinds, defaults and keywords. */
typedef struct ArgSpec {
    const char *name;
    ArgKind kind;
    bool required;
    double default_number; /* numbers, ints, bools */
    const char *default_string;
} ArgSpec;

#define SPEC_END {NULL, 0, false, 0, NULL}
#define OPS_MAX_ARGS 8

/* A call's arguments bound to the signature, in signature order. */
typedef struct Bound {
    Value values[OPS_MAX_ARGS];
    Span spans[OPS_MAX_ARGS];
    bool given[OPS_MAX_ARGS];
    const char *layer_name; /* name="..." */
    Span layer_name_span;
    Span call_span;
} Bound;

/* What a shape rule sees of semantic analysis. */
typedef struct OpSema {
    Arena *arena;
    Diag *diag;
    Graph *graph;
    Model *model;
    struct Sema *sema;   /* for the helpers below */
    struct Scope *scope; /* the block instance the call is in (layer-name prefix) */
} OpSema;

/* Checks a call, reports what is wrong (returning value_error()) or adds the forward node. */
typedef Value (*ShapeRule)(OpSema *s, const Expr *call, Bound *b);

typedef struct OpSurface {
    const char *name;
    const ArgSpec *spec;
    ShapeRule rule;
    bool loss_or_metric; /* only in loss/metric statements; the target may be passed */
} OpSurface;

/* Helpers for shape rules (sema.c). */
const char *sema_layer_name(OpSema *s, const char *op, const Bound *b); /* NULL after reporting */
/* Per-example output elements, weights and multiply-adds of a layer within nnc's limits?
 * Reports and returns false otherwise. */
bool sema_layer_fits(OpSema *s, const Expr *call, double output_elements, double weights, double macs);
const char *sema_shape(OpSema *s, const Shape *shape); /* "[1,28,28]" in the arena */
void sema_note_origin(OpSema *s, const Node *x, Span used, const char *what);
static inline const Node *value_node(OpSema *s, Value v) { return graph_node(s->graph, v.node); }

/* The tensor arithmetic of expressions (`a + b`, `x * 0.5`): a and b are tensors or numbers,
 * at least one a tensor (ops/elementwise.c). */
Value ops_arithmetic_rule(OpSema *s, const Expr *e, Value a, Value b);

/* ---------------------------------------------------------------- backward rules (autodiff) */

typedef struct Ad Ad;
Graph *ad_graph(Ad *ad);
/* A backward node differentiating `origin`, with inputs a and b (b < 0: one input). */
Node *ad_node(Ad *ad, OpKind op, int a, int b, Shape shape, const Node *origin);
/* grad(x) += the tensor of node g (summed with an add node when x has several uses). */
void ad_accumulate(Ad *ad, int x, int g);

/* Turns the gradient of n's output (node dy) into gradients of its inputs and parameters.
 * For the loss node dy is -1: the loss is the root and its rule seeds the pass. */
typedef void (*BackwardRule)(Ad *ad, const Node *n, int dy);

/* ---------------------------------------------------------------- kinds, kernels, costs */

enum {
    OPK_INFERENCE_VARIANT = 1 << 0, /* its kernel differs between training and inference */
    OPK_SEEDED = 1 << 1,            /* its training kernel takes the step seed (random masks) */
    OPK_FUSABLE_ACTIVATION = 1 << 2,/* a producer may compute it in its own kernel */
    OPK_FUSES_ACTIVATION = 1 << 3,  /* computes a following fusable activation itself */
    OPK_GLOBAL_BATCH = 1 << 4,      /* its training kernel depends on the whole (global) batch and
                                       takes the step's NnrtShard (data-parallel training) */
};

typedef struct OpKindFlags {
    OpKind kind;
    unsigned flags;
} OpKindFlags;

struct Cg;
struct LLVMOpaqueValue;

typedef struct OpFamily {
    const char *name;
    const OpSurface *surface;     /* calls of the language; ends with {NULL} */
    const OpKind *kinds;          /* graph node kinds it lowers; ends with OP_COUNT */
    BackwardRule backward;        /* for its forward kinds; NULL: nothing to differentiate */
    /* The internal LLVM function computing one node (see each family for its arguments). */
    struct LLVMOpaqueValue *(*kernel)(struct Cg *cg, const Node *n);
    /* Forward FLOPs per example (a multiply-add counts 2); *backward gets the backward pass's.
     * NULL: free (views, metrics). */
    int64_t (*flops)(const Graph *g, const Node *n, int64_t *backward);
    /* Elements of batch-independent scratch workspace the node's kernel needs; NULL: none. */
    int64_t (*scratch)(const Graph *g, const Node *n);
    /* The op's name in the summary table when it differs from its kind's (conv1d, mean). */
    const char *(*label)(const Node *n);
    const OpKindFlags *flags;     /* kinds with flags; ends with {OP_COUNT, 0}; may be NULL */
} OpFamily;

/* The op named `name` in the language, or NULL. */
const OpSurface *ops_find_surface(const char *name);
/* Every op name of the language, in table order, into names[0..max); returns the count. */
int ops_surface_names(const char **names, int max);
/* The family that lowers node kind `kind`; NULL for inputs and targets. */
const OpFamily *ops_family(OpKind kind);
unsigned ops_kind_flags(OpKind kind);

/* The families (ops/<family>.c). */
extern const OpFamily ops_dense, ops_conv, ops_elementwise, ops_norm, ops_loss, ops_shape, ops_embedding;

#endif
