/* onnx.c — the ONNX exporter and the builder the families' hooks use (see onnx.h).
 *
 * The protobuf messages are protobuf-c's, generated at build time from Debian's onnx.proto
 * (libonnx-dev) by protoc-c (protobuf-c-compiler); every message, array and string lives in the
 * compiler's arena, and protobuf-c packs the model into one buffer written by file_write_atomic. */
#include "onnx.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "diag.h"
#include "emit_lib.h"
#include "file.h"
#include "nnrt.h"
#include "onnx.pb-c.h"
#include "ops.h"

struct OnnxBuilder {
    Arena *arena;
    const Model *model;
    const Graph *g;
    const Checkpoint *ckpt;
    const char **values;      /* per graph node: its output value, once lowered */
    const char **params;      /* per parameter tensor: its initializer, once added */
    PtrVec names;             /* every value name given out (uniqueness) */
    PtrVec nodes, initializers;
};

static char *onnx_strdup(OnnxBuilder *b, const char *s) { return arena_strdup(b->arena, s); }

static bool onnx_name_taken(OnnxBuilder *b, const char *name) {
    for (int i = 0; i < b->names.len; i++)
        if (strcmp(b->names.items[i], name) == 0) return true;
    return false;
}

/* `base`, or base_2, base_3, ... when taken; recorded as taken. */
static const char *onnx_unique(OnnxBuilder *b, const char *base) {
    const char *name = base;
    for (int k = 2; onnx_name_taken(b, name); k++) name = arena_printf(b->arena, "%s_%d", base, k);
    ptrvec_push(b->arena, &b->names, (void *)name);
    return name;
}

const char *onnx_value(OnnxBuilder *b, int id) { return b->values[id]; }

Arena *onnx_arena(OnnxBuilder *b) { return b->arena; }

const char *onnx_temp(OnnxBuilder *b, const Node *n, const char *what) {
    return onnx_unique(b, arena_printf(b->arena, "%s/%s", n->layer ? n->layer : ops_node_label(n), what));
}

static Onnx__TensorProto *onnx_tensor(OnnxBuilder *b, const char *name, int32_t type, const int64_t *dims, int rank) {
    Onnx__TensorProto *t = ARENA_NEW(b->arena, Onnx__TensorProto);
    onnx__tensor_proto__init(t);
    t->name = onnx_strdup(b, name);
    t->has_data_type = true;
    t->data_type = type;
    t->n_dims = (size_t)rank;
    t->dims = ARENA_ARRAY(b->arena, int64_t, rank > 0 ? rank : 1);
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    ptrvec_push(b->arena, &b->initializers, t);
    return t;
}

/* Floats as raw little-endian bytes (the checkpoint's own; both are little-endian). */
static void onnx_tensor_floats(OnnxBuilder *b, Onnx__TensorProto *t, const float *values, int64_t count) {
    t->has_raw_data = true;
    t->raw_data.len = (size_t)count * 4;
    t->raw_data.data = arena_alloc(b->arena, t->raw_data.len ? t->raw_data.len : 1);
    memcpy(t->raw_data.data, values, t->raw_data.len);
}

const char *onnx_param(OnnxBuilder *b, int param) {
    if (b->params[param]) return b->params[param];
    const ParamTensor *p = graph_param(b->g, param);
    const char *name = onnx_unique(b, p->name);
    Onnx__TensorProto *t = onnx_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, p->shape.dims, p->shape.rank);
    onnx_tensor_floats(b, t, b->ckpt->params + p->offset, p->size);
    return b->params[param] = name;
}

const char *onnx_const_i64(OnnxBuilder *b, const char *hint, const int64_t *values, int count) {
    const char *name = onnx_unique(b, hint);
    int64_t dims[1] = {count};
    Onnx__TensorProto *t = onnx_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims, 1);
    t->n_int64_data = (size_t)count;
    t->int64_data = ARENA_ARRAY(b->arena, int64_t, count > 0 ? count : 1);
    memcpy(t->int64_data, values, sizeof(int64_t) * (size_t)count);
    return name;
}

const char *onnx_const_f32(OnnxBuilder *b, const char *hint, const float *values, const int64_t *dims, int rank) {
    const char *name = onnx_unique(b, hint);
    int64_t count = 1;
    for (int i = 0; i < rank; i++) count *= dims[i];
    onnx_tensor_floats(b, onnx_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, rank), values, count);
    return name;
}

const char *onnx_scalar(OnnxBuilder *b, const char *hint, double value) {
    float v = (float)value;
    return onnx_const_f32(b, hint, &v, NULL, 0);
}

OnnxNode *onnx_op(OnnxBuilder *b, const char *op_type, const char *output, int count, const char *const *inputs) {
    Onnx__NodeProto *node = ARENA_NEW(b->arena, Onnx__NodeProto);
    onnx__node_proto__init(node);
    node->op_type = onnx_strdup(b, op_type);
    node->name = onnx_strdup(b, output);
    node->n_input = (size_t)count;
    node->input = ARENA_ARRAY(b->arena, char *, count > 0 ? count : 1);
    for (int i = 0; i < count; i++) node->input[i] = onnx_strdup(b, inputs[i] ? inputs[i] : "");
    node->n_output = 1;
    node->output = ARENA_ARRAY(b->arena, char *, 1);
    node->output[0] = onnx_strdup(b, output);
    ptrvec_push(b->arena, &b->nodes, node);
    return node;
}

OnnxNode *onnx_op1(OnnxBuilder *b, const char *op_type, const char *output, const char *x) { return onnx_op(b, op_type, output, 1, &x); }

OnnxNode *onnx_op2(OnnxBuilder *b, const char *op_type, const char *output, const char *x, const char *y) {
    const char *in[2] = {x, y};
    return onnx_op(b, op_type, output, 2, in);
}

static Onnx__AttributeProto *onnx_attr(OnnxBuilder *b, OnnxNode *node, const char *name, Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = ARENA_NEW(b->arena, Onnx__AttributeProto);
    onnx__attribute_proto__init(a);
    a->name = onnx_strdup(b, name);
    a->has_type = true;
    a->type = type;
    Onnx__AttributeProto **grown = ARENA_ARRAY(b->arena, Onnx__AttributeProto *, node->n_attribute + 1);
    for (size_t i = 0; i < node->n_attribute; i++) grown[i] = node->attribute[i];
    grown[node->n_attribute++] = a;
    node->attribute = grown;
    return a;
}

void onnx_attr_int(OnnxBuilder *b, OnnxNode *node, const char *name, int64_t value) {
    Onnx__AttributeProto *a = onnx_attr(b, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = true;
    a->i = value;
}

void onnx_attr_float(OnnxBuilder *b, OnnxNode *node, const char *name, double value) {
    Onnx__AttributeProto *a = onnx_attr(b, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = true;
    a->f = (float)value;
}

void onnx_attr_ints(OnnxBuilder *b, OnnxNode *node, const char *name, const int64_t *values, int count) {
    Onnx__AttributeProto *a = onnx_attr(b, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)count;
    a->ints = ARENA_ARRAY(b->arena, int64_t, count > 0 ? count : 1);
    memcpy(a->ints, values, sizeof(int64_t) * (size_t)count);
}

void onnx_reshape(OnnxBuilder *b, const char *output, const char *x, const Shape *shape) {
    int64_t dims[GRAPH_MAX_RANK + 1] = {0};
    for (int i = 0; i < shape->rank; i++) dims[i + 1] = shape->dims[i];
    onnx_op2(b, "Reshape", output, x, onnx_const_i64(b, arena_printf(b->arena, "%s/shape", output), dims, shape->rank + 1));
}

/* ---------------------------------------------------------------- the model */

/* A graph input or output: elem type, [N, shape...] with N symbolic. */
static Onnx__ValueInfoProto *onnx_value_info(OnnxBuilder *b, const char *name, int32_t type, const Shape *shape, const char *doc) {
    Onnx__TensorShapeProto *ts = ARENA_NEW(b->arena, Onnx__TensorShapeProto);
    onnx__tensor_shape_proto__init(ts);
    ts->n_dim = (size_t)shape->rank + 1;
    ts->dim = ARENA_ARRAY(b->arena, Onnx__TensorShapeProto__Dimension *, shape->rank + 1);
    for (int i = 0; i <= shape->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = ARENA_NEW(b->arena, Onnx__TensorShapeProto__Dimension);
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = onnx_strdup(b, "N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = shape->dims[i - 1];
        }
        ts->dim[i] = d;
    }
    Onnx__TypeProto__Tensor *tt = ARENA_NEW(b->arena, Onnx__TypeProto__Tensor);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = true;
    tt->elem_type = type;
    tt->shape = ts;
    Onnx__TypeProto *tp = ARENA_NEW(b->arena, Onnx__TypeProto);
    onnx__type_proto__init(tp);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    Onnx__ValueInfoProto *v = ARENA_NEW(b->arena, Onnx__ValueInfoProto);
    onnx__value_info_proto__init(v);
    v->name = onnx_strdup(b, name);
    v->type = tp;
    v->doc_string = onnx_strdup(b, doc);
    return v;
}

/* The input's preprocessing, as predict applies it: scale (idx), then standardization. */
static const char *onnx_preprocess(OnnxBuilder *b, const char *input) {
    const Model *m = b->model;
    const char *x = input;
    if (m->input_kind == NNRT_INPUT_INT) return x; /* token ids feed Gather as they are */
    double scale = emit_input_scale(m);
    if (scale != 1) {
        const char *scaled = onnx_unique(b, arena_printf(b->arena, "%s/scaled", input));
        onnx_op2(b, "Mul", scaled, x, onnx_scalar(b, "input_scale", scale));
        x = scaled;
    }
    if (b->ckpt->mean) {
        const Shape *s = &m->input_shape;
        const char *mean = onnx_const_f32(b, "__standardize.mean", b->ckpt->mean, s->dims, s->rank);
        const char *std = onnx_const_f32(b, "__standardize.std", b->ckpt->std, s->dims, s->rank);
        const char *centred = onnx_unique(b, arena_printf(b->arena, "%s/centred", input));
        const char *standard = onnx_unique(b, arena_printf(b->arena, "%s/standardized", input));
        onnx_op2(b, "Sub", centred, x, mean);
        onnx_op2(b, "Div", standard, centred, std);
        x = standard;
    }
    return x;
}

int onnx_emit(Arena *arena, const Model *model, const OnnxOptions *o) {
    Checkpoint ckpt;
    if (checkpoint_load(arena, o->weights, model, &ckpt)) return 1;
    const Graph *g = model->graph;
    OnnxBuilder b = {.arena = arena, .model = model, .g = g, .ckpt = &ckpt};
    b.values = ARENA_ARRAY(arena, const char *, g->nodes.len);
    b.params = ARENA_ARRAY(arena, const char *, g->params.len + 1);
    const char *input = onnx_unique(&b, model->input_name);
    const char *output = onnx_unique(&b, model->target_name);
    b.values[g->input] = onnx_preprocess(&b, input);

    /* the nodes the output depends on, in graph order (forward nodes only) */
    bool *need = ARENA_ARRAY(arena, bool, g->nodes.len);
    need[g->output] = true;
    for (int i = g->output; i >= 0; i--) {
        if (!need[i]) continue;
        const Node *n = graph_node(g, i);
        for (int j = 0; j < n->input_count; j++) need[n->inputs[j]] = true;
    }
    int unsupported = 0;
    for (int i = 0; i <= g->output; i++) {
        const Node *n = graph_node(g, i);
        if (!need[i] || i == g->input) continue;
        const OpFamily *family = ops_family(n->op);
        bool probabilities = i == g->output && model->output_kind == NNRT_OUTPUT_PROBABILITIES;
        b.values[i] = i == g->output && !probabilities ? output : onnx_unique(&b, n->layer ? n->layer : arena_printf(arena, "%s_%d", ops_node_label(n), i));
        if (!family || !family->onnx || !family->onnx(&b, g, n)) {
            diag_error(o->diag, n->span, "%s has no ONNX equivalent, so --emit=onnx cannot export this model", ops_node_label(n));
            unsupported++;
        }
    }
    if (unsupported) {
        diag_note(o->diag, graph_node(g, g->output)->span, "--emit=lib builds a C library of any model (README: \"Deployment\")");
        return 1;
    }
    if (model->output_kind == NNRT_OUTPUT_PROBABILITIES) { /* what predict prints: probabilities */
        OnnxNode *softmax = onnx_op1(&b, "Softmax", output, b.values[g->output]);
        onnx_attr_int(&b, softmax, "axis", -1);
    }

    const Node *out = graph_node(g, g->output);
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = onnx_strdup(&b, model->name);
    graph.n_node = (size_t)b.nodes.len;
    graph.node = (Onnx__NodeProto **)b.nodes.items;
    graph.n_initializer = (size_t)b.initializers.len;
    graph.initializer = (Onnx__TensorProto **)b.initializers.items;
    Onnx__ValueInfoProto *in_info = onnx_value_info(&b, input,
                                                    model->input_kind == NNRT_INPUT_INT ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32
                                                                                        : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                                                    &model->input_shape, "the values as in the data file (scale and standardization are ops of this graph)");
    Onnx__ValueInfoProto *out_info = onnx_value_info(&b, output, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &out->shape,
                                                     model->output_kind == NNRT_OUTPUT_PROBABILITIES
                                                         ? "class probabilities (softmax), as ./model predict prints them"
                                                         : "the predicted values, as ./model predict prints them");
    graph.n_input = 1;
    graph.input = &in_info;
    graph.n_output = 1;
    graph.output = &out_info;

    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    opset.domain = onnx_strdup(&b, "");
    opset.has_version = true;
    opset.version = ONNX_OPSET;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    mp.has_ir_version = true;
    mp.ir_version = 8; /* the IR of opset 17 (ONNX 1.12) */
    mp.n_opset_import = 1;
    mp.opset_import = opsets;
    mp.producer_name = onnx_strdup(&b, "nnc");
    mp.producer_version = onnx_strdup(&b, o->version);
    mp.doc_string = arena_printf(arena, "model %s from %s, weights %s", model->name, o->source, o->weights);
    mp.graph = &graph;
    size_t size = onnx__model_proto__get_packed_size(&mp);
    uint8_t *data = arena_alloc(arena, size ? size : 1);
    onnx__model_proto__pack(&mp, data);
    int error = file_write_atomic(o->output, data, size);
    if (error) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", o->output, strerror(error));
        return 1;
    }
    return 0;
}
