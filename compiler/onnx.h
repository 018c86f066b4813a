/* onnx.h — `nnc FILE.nn --emit=onnx --weights CKPT [-o NAME.onnx]`: the inference graph as an
 * ONNX model (opset 17, symbolic batch dimension "N", the checkpoint's tensors as initializers,
 * the input's scale and standardization as graph ops), written with protobuf-c and Debian's
 * onnx.proto (compiler/DESIGN.md, "Deployment").
 *
 * Each op family lowers its own nodes (OpFamily.onnx, in compiler/ops/<family>.c) with the
 * builder below; the exporter walks the nodes the output needs in graph order. Tensors in the
 * ONNX graph carry the batch first: a node of per-example shape [c, h, w] is [N, c, h, w]. */
#ifndef NNC_ONNX_H
#define NNC_ONNX_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "graph.h"
#include "plan.h"
#include "sema.h"

typedef struct OnnxBuilder OnnxBuilder;
typedef struct Onnx__NodeProto OnnxNode;

enum { ONNX_OPSET = 17 };

/* ---------------------------------------------------------------- for the families' hooks */

/* The arena everything of the export lives in. */
Arena *onnx_arena(OnnxBuilder *b);
/* The ONNX value holding node `id`'s output (the input node: after scale and standardization). */
const char *onnx_value(OnnxBuilder *b, int id);
/* The initializer of parameter tensor `param` (its checkpoint name), added on first use. */
const char *onnx_param(OnnxBuilder *b, int param);
/* A new value name for an intermediate of node n's lowering ("<layer>/<what>", unique). */
const char *onnx_temp(OnnxBuilder *b, const Node *n, const char *what);
/* Adds node `op_type` (an ai.onnx operator) writing `output` from `count` inputs (NULL: an
 * omitted optional input); returns it for attributes. */
OnnxNode *onnx_op(OnnxBuilder *b, const char *op_type, const char *output, int count, const char *const *inputs);
/* Shorthands: one and two inputs. */
OnnxNode *onnx_op1(OnnxBuilder *b, const char *op_type, const char *output, const char *x);
OnnxNode *onnx_op2(OnnxBuilder *b, const char *op_type, const char *output, const char *x, const char *y);
void onnx_attr_int(OnnxBuilder *b, OnnxNode *node, const char *name, int64_t value);
void onnx_attr_float(OnnxBuilder *b, OnnxNode *node, const char *name, double value);
void onnx_attr_ints(OnnxBuilder *b, OnnxNode *node, const char *name, const int64_t *values, int count);
/* Constant initializers: an int64 vector, and a float tensor (rank 0: a scalar). */
const char *onnx_const_i64(OnnxBuilder *b, const char *hint, const int64_t *values, int count);
const char *onnx_const_f32(OnnxBuilder *b, const char *hint, const float *values, const int64_t *dims, int rank);
const char *onnx_scalar(OnnxBuilder *b, const char *hint, double value);
/* Reshape x to [N, shape...] (the batch kept by Reshape's 0). */
void onnx_reshape(OnnxBuilder *b, const char *output, const char *x, const Shape *shape);

/* ---------------------------------------------------------------- the driver's entry */

typedef struct OnnxOptions {
    const char *output;   /* the .onnx path */
    const char *weights;  /* the checkpoint */
    const char *source;   /* the .nn file, for the model's doc string */
    const char *version;  /* nnc's */
    struct Diag *diag;    /* an op without an ONNX equivalent is reported at its call */
} OnnxOptions;

/* Writes the ONNX model. Returns 0; 1 after a user-facing error (wrong checkpoint, an op without
 * an ONNX equivalent, an unwritable output); 2 after an internal failure. */
int onnx_emit(Arena *arena, const Model *model, const OnnxOptions *options);

#endif
