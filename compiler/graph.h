/* graph.h — the graph IR: a list of nodes in execution order, each producing one tensor of a
 * static per-example shape (the batch dimension is implicit), plus the parameter table.
 *
 * Sema builds the forward graph; autodiff appends the backward nodes to the same graph; plan
 * assigns buffers; codegen lowers every node with the same code, forward or backward. */
#ifndef NNC_GRAPH_H
#define NNC_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "diag.h"

#define GRAPH_MAX_RANK 8
#define GRAPH_MAX_INPUTS 4

typedef struct Shape {
    int rank;
    int64_t dims[GRAPH_MAX_RANK];
} Shape;

/* X(KIND, "name"): every node kind. Forward ops first, then the backward-only ones. */
#define GRAPH_OPS(X)                                                                              \
    X(INPUT, "input")                                                                             \
    X(TARGET, "target")                                                                           \
    X(DENSE, "dense")            /* y = x W^T + b, [k] -> [n], or per position on [t,k] */          \
    X(FLATTEN, "flatten")        /* view: any -> [product] */                                     \
    X(RELU, "relu")                                                                               \
    X(TANH, "tanh")                                                                               \
    X(SIGMOID, "sigmoid")                                                                         \
    X(ADD, "add")                /* a + b, same shape */                                          \
    X(SUB, "sub")                                                                                 \
    X(MUL, "mul")                                                                                 \
    X(AFFINE, "affine")          /* a * scale + shift, scalar constants */                        \
    X(CROSS_ENTROPY, "cross_entropy")                                                             \
    X(MSE, "mse")                                                                                 \
    X(ACCURACY, "accuracy")                                                                       \
    X(MAE, "mae")                                                                                 \
    X(RMSE, "rmse")                                                                               \
    X(CROSS_ENTROPY_GRAD, "cross_entropy_grad")                                                   \
    X(MSE_GRAD, "mse_grad")                                                                       \
    X(DENSE_DX, "dense_dx")      /* dx = dy W */                                                  \
    X(DENSE_DW, "dense_dw")      /* dW = dy^T x (summed over the batch), into the grad buffer */   \
    X(DENSE_DB, "dense_db")      /* db = sum over the batch of dy */                              \
    X(RELU_GRAD, "relu_grad")    /* dx = dy * (y > 0) */                                          \
    X(TANH_GRAD, "tanh_grad")    /* dx = dy * (1 - y^2) */                                        \
    X(SIGMOID_GRAD, "sigmoid_grad") /* dx = dy * y * (1 - y) */                                  \
    X(CONV2D, "conv2d")          /* [c,h,w] -> [f,oh,ow], weight [f,c,k,k] */                     \
    X(CONV2D_DX, "conv2d_dx")                                                                     \
    X(CONV2D_DW, "conv2d_dw")    /* into the grad buffer */                                       \
    X(CONV2D_DB, "conv2d_db")    /* into the grad buffer */                                       \
    X(MAXPOOL, "maxpool")        /* [c,h,w] -> [c,oh,ow]; also [c,t] */                           \
    X(MAXPOOL_GRAD, "maxpool_grad") /* dx at the first maximum of each window */                  \
    X(AVGPOOL, "avgpool")                                                                         \
    X(AVGPOOL_GRAD, "avgpool_grad")                                                               \
    X(LEAKY_RELU, "leaky_relu")                                                                   \
    X(LEAKY_RELU_GRAD, "leaky_relu_grad") /* dx = dy * (x > 0 ? 1 : alpha) */                     \
    X(DROPOUT, "dropout")        /* training: x * mask / (1-p); otherwise a copy */               \
    X(DROPOUT_GRAD, "dropout_grad") /* the same mask, recomputed from the step seed */            \
    X(RESHAPE, "reshape")        /* view */                                                       \
    X(GELU, "gelu")              /* x * Phi(x), the exact (erf) form */                           \
    X(GELU_GRAD, "gelu_grad")    /* dx = dy * (Phi(x) + x phi(x)) */                              \
    X(SOFTMAX, "softmax")        /* over the last axis */                                         \
    X(SOFTMAX_GRAD, "softmax_grad") /* dx = y * (dy - sum(dy * y)) */                             \
    X(LOG_SOFTMAX, "log_softmax")                                                                 \
    X(LOG_SOFTMAX_GRAD, "log_softmax_grad") /* dx = dy - exp(y) * sum(dy) */                      \
    X(BCE, "bce")                /* sigmoid fused: mean of max(x,0) - x t + log(1 + exp(-|x|)) */ \
    X(BCE_GRAD, "bce_grad")      /* d = (sigmoid(x) - t) / (T n) */                               \
    X(REDUCE, "reduce")          /* sum over one axis, times scale (1/A for mean) */              \
    X(REDUCE_GRAD, "reduce_grad") /* dx = dy * scale, broadcast along the axis */                 \
    X(LAYERNORM, "layernorm")    /* over the last axis: (x - mean) / sqrt(var + eps) * w + b */   \
    X(LAYERNORM_DX, "layernorm_dx")                                                               \
    X(LAYERNORM_DW, "layernorm_dw") /* into the grad buffer: sum over rows of dy * xhat */        \
    X(LAYERNORM_DB, "layernorm_db") /* into the grad buffer: sum over rows of dy */                \
    X(BATCHNORM, "batchnorm")    /* per channel; batch statistics in training, running in eval */ \
    X(BATCHNORM_DX, "batchnorm_dx")                                                               \
    X(BATCHNORM_DW, "batchnorm_dw") /* into the grad buffer */                                    \
    X(BATCHNORM_DB, "batchnorm_db") /* into the grad buffer */                                    \
    X(EMBEDDING, "embedding")    /* int[t] ids -> [t,dim] rows of the weight */                   \
    X(EMBEDDING_DW, "embedding_dw") /* into the grad buffer: rows scatter-added */                \
    X(CONCAT, "concat")          /* inputs joined along `axis` */                                 \
    X(CONCAT_SLICE, "concat_slice") /* the part of dy one input contributed (at slice_offset) */ \
    X(GELU_TANH, "gelu_tanh")    /* gelu(approximate="tanh"): x (1 + tanh(c (x + 0.044715 x^3))) / 2 */ \
    X(GELU_TANH_GRAD, "gelu_tanh_grad")                                                          \
    X(SILU, "silu")              /* x sigmoid(x) */                                               \
    X(SILU_GRAD, "silu_grad")    /* dx = dy s (1 + x (1 - s)), s = sigmoid(x) */ \
    X(TRANSPOSE, "transpose")    /* the last two axes swapped: [.., a, b] -> [.., b, a] */        \
    X(POSITION_EMBEDDING, "position_embedding") /* [t,d] + weight[t,d] */                         \
    X(POSITION_EMBEDDING_DW, "position_embedding_dw") /* into the grad buffer: sum over the batch of dy */ \
    X(ATTENTION_SCORES, "attention_scores") /* qkv [t,3d] -> P [heads,t,t] = softmax(q k^T / sqrt(d/heads)) */ \
    X(ATTENTION_MIX, "attention_mix") /* (P, qkv) -> [t,d]: every head's P v */                     \
    X(ATTENTION_GRAD, "attention_grad") /* (dy, P, qkv) -> dqkv [t,3d], through the mix and the scores */ \
    X(BINARY_ACCURACY, "binary_accuracy") /* accuracy on a float target in [0,1]: right when (x > 0) == (t > 0.5) */ \
    X(LSTM, "lstm")              /* xp [t,4h] (x W_ih^T + b_ih) -> saved steps [t+1,7h]: gates, c, h_prev, h */ \
    X(GRU, "gru")                /* xp [t,3h] -> saved steps [t+1,6h]: gates r z n, W_hn h + b_hn, h_prev, h */ \
    X(RNN_OUTPUT, "rnn_output")  /* saved steps -> h at every step [t,h] or after the last (real) one [h] */ \
    X(RNN_OUTPUT_GRAD, "rnn_output_grad") /* dy -> d(saved steps), zero but for the h columns */ \
    X(LSTM_GRAD, "lstm_grad")    /* (dsteps, steps) -> dxp [t,4h], backward through time */ \
    X(GRU_GRAD, "gru_grad")      /* (dsteps, steps) -> dxp [t,3h] */ \
    X(RNN_DW, "rnn_dw")          /* into the grad buffer: dW_hh = sum over steps of dg^T h_prev */ \
    X(RNN_DB, "rnn_db")          /* into the grad buffer: db_hh = sum over steps of dg */

typedef enum OpKind {
#define GRAPH_OP_ENUM(kind, name) OP_##kind,
    GRAPH_OPS(GRAPH_OP_ENUM)
#undef GRAPH_OP_ENUM
    OP_COUNT
} OpKind;

extern const char *const graph_op_names[OP_COUNT];

typedef struct Node {
    int id;
    OpKind op;
    Span span;          /* the source call this node came from */
    const char *layer;  /* layer name (dense0, conv_block0.dense1); NULL for unnamed ops */
    int input_count;
    int inputs[GRAPH_MAX_INPUTS];
    Shape shape;        /* per example; rank 0 = scalar (losses, metrics) */
    int64_t size;       /* elements per example */
    int weight, bias;   /* parameter indices, -1 when absent */
    int running_mean, running_var; /* batchnorm's buffers (non-trainable parameters); else -1 */
    int grad_param;     /* DENSE_DW, DENSE_DB: the parameter whose gradient this node writes; else -1 */
    int sum_slot;       /* losses and metrics: index into the step's sums; else -1 */
    int64_t units;      /* dense: output features */
    int64_t positions;  /* dense over [t,k]: t (1 otherwise) */
    double scale, shift;/* AFFINE */
    int fused;          /* the consumer node this node computes in its own kernel (plan's fusion); else -1 */
    int64_t kernel_h, kernel_w, stride, pad; /* conv2d and pools ([c,t] pools: kernel_h = 1) */
    int64_t slice_offset; /* CONCAT_SLICE: where its input's part starts within a row of dy */
    int64_t heads;      /* attention: heads; d/heads features each. rnn_output: 4 (lstm) or 3 (gru) gates */
    bool causal;        /* attention: position i attends to positions <= i only */
    double slope;       /* leaky_relu: the slope for x < 0 */
    double drop_probability; /* dropout */
    double eps;         /* layernorm, batchnorm: added to the variance */
    double momentum;    /* batchnorm running-statistics momentum */
    int axis;           /* REDUCE: the axis of the forward input that is summed */
    int view_of;        /* views (flatten, fused activations): the node whose buffer this is; else -1 */
    bool backward;      /* appended by autodiff */
    int forward;        /* backward nodes: the forward node they differentiate; else -1 */
    bool needs_grad;    /* depends on a trainable parameter */
} Node;

typedef struct ParamTensor {
    const char *name;   /* "dense0.weight" */
    Shape shape;
    int64_t size, offset;
    int init;           /* NnrtInit */
    int64_t fan_in, fan_out;
    bool trainable;
    int owner;          /* node id */
} ParamTensor;

typedef struct Graph {
    Arena *arena;
    PtrVec nodes;       /* Node*, in execution order; id == index */
    PtrVec params;      /* ParamTensor* */
    int64_t param_count;
    int forward_count;  /* nodes [0, forward_count) are the forward pass */
    int input;          /* node ids; -1 when absent */
    int target;
    int loss;
    int output;         /* what infer returns */
    PtrVec metrics;     /* Node* of metric nodes, in declaration order */
} Graph;

Graph *graph_new(Arena *arena);
Node *graph_node(const Graph *g, int id);
Node *graph_add(Graph *g, OpKind op, Span span, const int *inputs, int input_count, Shape shape);
int graph_add_param(Graph *g, const char *name, Shape shape, int init, int64_t fan_in, int64_t fan_out,
                    int owner);
ParamTensor *graph_param(const Graph *g, int index);
int64_t shape_size(const Shape *s);
/* "[1,28,28]" into buf; returns buf. */
char *shape_str(const Shape *s, char *buf, int buf_size);
Shape shape_make(int rank, const int64_t *dims);
bool shape_equal(const Shape *a, const Shape *b);
/* Removes the forward nodes with keep[id] false, and the parameters they own: ids are renumbered
 * in order and parameter offsets recomputed. Only for the forward graph sema built (no views or
 * backward nodes yet); `keep` must hold every input of a kept node. */
void graph_prune(Graph *g, const bool *keep);
/* The node that owns the buffer a node reads or writes (follows views). */
int graph_storage(const Graph *g, int id);
/* The consumer node n computes in its own kernel (plan's fusion: an activation, relu_grad), or NULL. */
const Node *graph_fused(const Graph *g, const Node *n);
/* The forward node a backward node differentiates (its geometry and attributes); else itself. */
const Node *graph_forward_of(const Graph *g, const Node *node);
void graph_dump(FILE *out, const Graph *g);

#endif
