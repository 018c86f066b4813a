/* ops.h — the op families. Everything nnc knows about an operation lives in one file,
 * compiler/ops/<family>.c: its surface in the language (name, signature, shape rule), its
 * backward rule, its kernels, its scratch space and its cost. The stages find an op's rules
 * through this table instead of switching over op kinds themselves:
 *
 *   sema      ops_find_surface(name)->rule    checks a call and adds its forward node(s)
 *             ...->role                       layer, loss or metric (and a metric's direction)
 *             ops_kind_flags(kind)            output kind, metric reduction, initialization
 *   autodiff  ops_family(kind)->backward      adds the nodes of the input/parameter gradients
 *   plan      ops_family(kind)->scratch       workspace beyond the node's output
 *             ops_family(kind)->fuses         which consumers a node computes in its own kernel
 *   summary   ops_family(kind)->flops         FLOPs per example, forward and backward
 *   codegen   ops_family(kind)->kernel        the LLVM function of one node (arguments: cg.h)
 *             ops_family(kind)->kernel_flops  the profile's FLOPs of one kernel
 *   tools     ops_metric_higher_is_better     which way a metric improves (nnc compare)
 *   onnx      ops_family(kind)->onnx          the node as ONNX operators (--emit=onnx, onnx.h)
 *
 * Adding an op = a graph.h kind (or several: forward and its gradients), one family entry, and
 * nothing else (compiler/DESIGN.md, "Adding an op"). Internal to the compiler; not a stage
 * interface. */
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

/* VAL_OP: the name of an op or block, the value of an op-valued param (`param act = relu`). */
typedef enum ValueKind { VAL_ERROR, VAL_NUMBER, VAL_STRING, VAL_BOOL, VAL_TENSOR, VAL_TARGET, VAL_OP } ValueKind;

/* What an expression evaluates to during analysis. */
typedef struct Value {
    ValueKind kind;
    double number;
    const char *string; /* VAL_STRING; VAL_OP: the op or block name */
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
#define OPS_MAX_ARGS 12 /* csv() has ten */

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

/* What a call of the language may be used as (OpSurface.role). */
enum {
    OPS_LAYER = 0,                 /* an operation of the network (the default) */
    OPS_LOSS = 1 << 0,             /* may be the 'loss'; only in loss/metric statements, takes the target */
    OPS_METRIC = 1 << 1,           /* may be a 'metric'; likewise */
    OPS_HIGHER_IS_BETTER = 1 << 2, /* a metric that improves upwards (accuracy); others improve downwards */
    OPS_TAKES_TOKEN_IDS = 1 << 3,  /* may read an int[t] input directly (embedding); other ops may not */
};

typedef struct OpSurface {
    const char *name;
    const ArgSpec *spec;
    ShapeRule rule;
    unsigned role;       /* OPS_* */
    const char *doc;     /* one line for users: what it computes (the language server's hover) */
} OpSurface;

/* Helpers for shape rules (sema.c). */
const char *sema_layer_name(OpSema *s, const char *op, const Bound *b); /* NULL after reporting */
/* Per-example output elements, weights and multiply-adds of a layer within nnc's limits?
 * Reports and returns false otherwise. */
bool sema_layer_fits(OpSema *s, const Expr *call, double output_elements, double weights, double macs);
const char *sema_shape(OpSema *s, const Shape *shape); /* "[1,28,28]" in the arena */
void sema_note_origin(OpSema *s, const Node *x, Span used, const char *what);
/* Is the model's input token ids whose 0 is padding (the train data is a csv text column)? The
 * ops that honour padding (lstm/gru return="last") then read the ids. */
bool sema_input_is_padded(OpSema *s);
static inline const Node *value_node(OpSema *s, Value v) { return graph_node(s->graph, v.node); }

/* The tensor arithmetic of expressions (`a + b`, `x * 0.5`): a and b are tensors or numbers,
 * at least one a tensor (ops/elementwise.c). */
Value ops_arithmetic_rule(OpSema *s, const Expr *e, Value a, Value b);
/* `-x` of a tensor (ops/elementwise.c). */
Value ops_negate_rule(OpSema *s, const Expr *e, Value x);
/* A dense node over x ([k] or [t,k]) with `units` outputs, weight `weight_name` [units, k]
 * (Glorot-uniform) and a zero bias `bias_name` (NULL: none), for families whose layers contain
 * projections (attention). Checks nothing: the caller has (ops/dense.c). */
Node *ops_dense_node(OpSema *s, Span span, const Node *x, int64_t units, const char *layer, const char *weight_name,
                     const char *bias_name);

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
    OPK_FUSABLE_ACTIVATION = 1 << 2,/* an activation a producer may compute in its kernel (cg_activation) */
    OPK_GLOBAL_BATCH = 1 << 4,      /* its training kernel depends on the whole (global) batch and
                                       takes the step's NnrtShard (data-parallel training) */
    OPK_OUTPUT_PROBABILITIES = 1 << 5, /* a loss whose prediction `predict` prints as softmax
                                          probabilities (cross_entropy); others print values */
    OPK_METRIC_ROOT_MEAN = 1 << 6,  /* a metric reported as the square root of its mean (rmse) */
    OPK_HE_INIT = 1 << 7,           /* an activation whose producer's weights get He initialization */
    OPK_INIT_BY_ACTIVATION = 1 << 8,/* a layer whose weight initialization follows its activation */
    /* For the warnings (warnings.c): patterns that compile but are probably not what was meant. */
    OPK_BIAS_PER_CHANNEL = 1 << 9,  /* its bias adds one constant per channel, axis 0 of the output (conv) */
    OPK_BIAS_PER_LAST_AXIS = 1 << 10, /* its bias adds one constant per feature of the last axis (dense):
                                         per channel when the output is [n] */
    OPK_CANCELS_CHANNEL_BIAS = 1 << 11, /* subtracts each channel's batch mean (batchnorm), so a constant
                                           per channel added just before it has no effect */
    OPK_SOFTMAX = 1 << 12,          /* computes softmax over the last axis */
    OPK_APPLIES_SOFTMAX = 1 << 13,  /* a loss or metric that applies (log-)softmax to its prediction itself */
    OPK_SIGMOID = 1 << 14,          /* computes the logistic sigmoid */
    OPK_APPLIES_SIGMOID = 1 << 15,  /* a loss or metric that applies the sigmoid to its prediction itself */
    OPK_SEQUENCE_OUTPUT = 1 << 16,  /* its output is a sequence [t, d], positions first (embedding) */
    OPK_CHANNELS_FIRST = 1 << 17,   /* reads a rank-2 input as [channels, t] (conv1d, the pools) */
    OPK_PERMUTES_AXES = 1 << 18,    /* reorders axes, so its output's layout differs even when the shape
                                       is the same (transpose of a square [t, t]) */
};

typedef struct OpKindFlags {
    OpKind kind;
    unsigned flags;
} OpKindFlags;

struct Cg;
struct LLVMOpaqueValue;
struct OnnxBuilder;

typedef struct OpFamily {
    const char *name;
    const OpSurface *surface;     /* calls of the language; ends with {NULL} */
    const OpKind *kinds;          /* graph node kinds it lowers; ends with OP_COUNT */
    BackwardRule backward;        /* for its forward kinds; NULL: nothing to differentiate */
    /* The internal LLVM function computing one node (see each family for its arguments). */
    struct LLVMOpaqueValue *(*kernel)(struct Cg *cg, const Node *n);
    /* Forward FLOPs per example (a multiply-add counts 2); *backward gets the backward pass's.
     * NULL: free (views, metrics). Used by summary. */
    int64_t (*flops)(const Graph *g, const Node *n, int64_t *backward);
    /* FLOPs per example of one node's own kernel, forward or backward, for the profile of
     * `./model bench` (GFLOP/s); NULL: not counted there (only the matrix products are). */
    int64_t (*kernel_flops)(const Graph *g, const Node *n);
    /* May `producer` (of this family), whose only reader is `consumer` reading it as its first
     * input, compute `consumer` in its own kernel? Plan then makes consumer a view of producer's
     * buffer and sets producer->fused = consumer->id. NULL: it fuses nothing. */
    bool (*fuses)(const Graph *g, const Node *producer, const Node *consumer);
    /* Elements of batch-independent scratch workspace the node's kernel needs; NULL: none. */
    int64_t (*scratch)(const Graph *g, const Node *n);
    /* The op's name in the summary table when it differs from its kind's (conv1d, mean). */
    const char *(*label)(const Node *n);
    const OpKindFlags *flags;     /* kinds with flags; ends with {OP_COUNT, 0}; may be NULL */
    /* Adds the ONNX operators computing forward node n (onnx.h's builder: read the inputs as
     * onnx_value(b, n->inputs[i]), write onnx_value(b, n->id)); false when the op has no ONNX
     * equivalent (--emit=onnx then reports it at the op's call). NULL: none of its kinds has. */
    bool (*onnx)(struct OnnxBuilder *b, const Graph *g, const Node *n);
    /* Does node n's inference kernel differ from its training kernel (so both are built)? For
     * families where that depends on the node (conv2d: Winograd only for some geometries);
     * NULL: the kind's OPK_INFERENCE_VARIANT flag decides. */
    bool (*inference_variant)(const Graph *g, const Node *n);
} OpFamily;

/* The op named `name` in the language, or NULL. */
const OpSurface *ops_find_surface(const char *name);
/* The op names of the language whose role has all bits of `role` (0: every op), in table
 * order, into names[0..max); returns the count. */
int ops_surface_names(unsigned role, const char **names, int max);
/* "dense(n, bias=true)": a signature with its defaults, for messages and the language server;
 * skip_first leaves out the tensor input (the call was piped). In the arena. */
const char *ops_spec_signature(Arena *arena, const char *op, const ArgSpec *spec, bool skip_first);
/* Is `name` an op that LANGUAGE v2 announces but this nnc does not implement yet? */
bool ops_is_planned(const char *name);
/* Does metric `name` improve upwards (accuracy)? Unknown names: false (losses improve downwards). */
bool ops_metric_higher_is_better(const char *name);
/* A node's op as users name it: its family's label (conv1d, mean, accuracy, ...) or its kind's. */
const char *ops_node_label(const Node *n);
/* The family that lowers node kind `kind`; NULL for inputs and targets. */
const OpFamily *ops_family(OpKind kind);
unsigned ops_kind_flags(OpKind kind);
/* Is node n's inference kernel another than its training kernel (the family's inference_variant,
 * else its kind's OPK_INFERENCE_VARIANT)? */
bool ops_inference_variant(const Graph *g, const Node *n);

/* The families (ops/<family>.c). */
extern const OpFamily ops_dense, ops_conv, ops_elementwise, ops_norm, ops_loss, ops_shape, ops_embedding, ops_attention,
    ops_recurrent;

#endif
