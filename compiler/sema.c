/* sema.c — semantic analysis.
 *
 * Walks the statements in order with an environment of bindings (constants and tensors). `def`
 * blocks are collected first and inlined at each call with a fresh scope, so layer names get the
 * instance prefix (conv_block0.conv2d0). Each op call is bound against a declarative signature
 * (positional, keyword, defaults), so every op validates its keyword arguments the same way and
 * misspellings get a "did you mean". A failed expression yields VAL_ERROR, which later checks
 * accept silently: one mistake gives one message, and independent mistakes are all reported.
 * An error inside a block instance is followed by "in block 'b' instantiated here" notes, and
 * blocks that are never called are still checked for what needs no shapes. Names are looked up
 * in hash maps and the SEMA_MAX_* limits bound time, memory and recursion depth, so a hostile
 * source gets a message, not a hang or a crash (tests/lit/hostile, tests/fuzz). */
#include "sema.h"

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"
#include "ops.h"
#include "settings_check.h"
#include "warnings.h"

/* Limits that keep hostile or mistaken sources from hanging the compiler or overflowing sizes.
 * Each is far beyond any real model of this language version. */
enum {
    SEMA_MAX_NODES = 20000,       /* graph nodes (operations) in the forward pass */
    SEMA_MAX_INSTANCES = 10000,   /* block instantiations in the whole model */
    SEMA_MAX_BLOCK_DEPTH = 64,    /* blocks instantiating blocks */
    SEMA_MAX_EVAL_DEPTH = 2000,   /* nested expressions, through block instances (C stack) */
};
#define SEMA_MAX_ELEMENTS 2147483648.0    /* per-example elements of one tensor (2^31) */
#define SEMA_MAX_PARAMETERS 4294967296.0  /* parameters of the whole model (2^32) */
#define SEMA_MAX_MACS 1099511627776.0     /* multiply-adds per example of one layer (2^40) */

/* A string-keyed hash map (chained, in the arena): names are looked up once per use, and a
 * model may bind tens of thousands of names, so lists would make sema quadratic. */
typedef struct NameEntry {
    const char *name;
    void *value;
    struct NameEntry *next;
} NameEntry;

typedef struct NameMap {
    NameEntry **buckets;
    int cap, count;
} NameMap;

int define_parse(const char *text, Define *defines, int *count, int cap) {
    const char *eq = text ? strchr(text, '=') : NULL;
    if (!eq || eq == text) {
        fprintf(stderr, "nnc: error: -D needs NAME=VALUE, e.g. -D width=256\n");
        return -1;
    }
    if (*count == cap) {
        fprintf(stderr, "nnc: error: too many -D options (at most %d)\n", cap);
        return -1;
    }
    Define *d = &defines[(*count)++];
    *d = (Define){.name = strndup(text, (size_t)(eq - text)), .value_text = eq + 1};
    for (int j = 0; j < *count - 1; j++)
        if (strcmp(defines[j].name, d->name) == 0) {
            fprintf(stderr, "nnc: error: -D %s is given twice\n", d->name);
            return -1;
        }
    return 0;
}

static unsigned name_hash(const char *name) {
    unsigned h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) h = (h ^ *c) * 16777619u;
    return h;
}

static NameEntry *map_entry(const NameMap *m, const char *name) {
    if (!m->cap) return NULL;
    for (NameEntry *e = m->buckets[name_hash(name) & (unsigned)(m->cap - 1)]; e; e = e->next)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}

static void *map_get(const NameMap *m, const char *name) {
    NameEntry *e = map_entry(m, name);
    return e ? e->value : NULL;
}

/* Sets name -> value, replacing an earlier value. */
static void map_put(Arena *arena, NameMap *m, const char *name, void *value) {
    NameEntry *e = map_entry(m, name);
    if (e) {
        e->value = value;
        return;
    }
    if (2 * (m->count + 1) > m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        NameEntry **buckets = ARENA_ARRAY(arena, NameEntry *, cap);
        for (int i = 0; i < m->cap; i++) {
            for (NameEntry *x = m->buckets[i], *next; x; x = next) {
                next = x->next;
                unsigned b = name_hash(x->name) & (unsigned)(cap - 1);
                x->next = buckets[b];
                buckets[b] = x;
            }
        }
        m->buckets = buckets;
        m->cap = cap;
    }
    e = ARENA_NEW(arena, NameEntry);
    e->name = name;
    e->value = value;
    unsigned b = name_hash(name) & (unsigned)(m->cap - 1);
    e->next = m->buckets[b];
    m->buckets[b] = e;
    m->count++;
}

typedef struct Binding {
    const char *name;
    Value value;
    Span span;
    Span value_span;       /* VAL_OP and params: the expression that chose the value */
    const Define *define;  /* params: the -D that replaced the file's value, or NULL */
    struct Binding *next;
} Binding;

typedef struct Counter {
    const char *name;
    int count;
} Counter;

typedef struct Scope {
    Binding *bindings;     /* newest first */
    NameMap names;         /* name -> its newest Binding */
    struct Scope *parent;
    const char *prefix;    /* "" at top level, "conv_block0." inside an instance */
    NameMap counters;      /* op / block name -> Counter, for default layer names */
    const Stmt *def;       /* the block being instantiated, NULL at top level */
    struct Scope *caller;  /* the instantiating scope, for the recursion check */
    Span call_span;        /* where this instance was called */
    int depth;             /* instances enclosing this one */
    const Binding *chosen; /* the op-valued name that chose this block, or (a frame with no def)
                              this op: its errors get a note on where the choice was made */
} Scope;

typedef struct LayerName {
    Span span;             /* the call that named it */
    const Scope *instance; /* the block instance it belongs to, NULL at top level */
} LayerName;

typedef struct Sema {
    Arena *arena;
    Diag *diag;
    Graph *graph;
    Model *model;
    Scope *global;
    PtrVec defs;           /* Stmt*, in source order */
    NameMap defs_by_name;  /* name -> Stmt* */
    NameMap instantiated;  /* name -> Stmt* of the blocks that were called */
    NameMap def_infos;     /* name -> DefInfo* of those blocks */
    NameMap layer_names;   /* name -> LayerName*, to reject duplicates */
    Define *defines;
    int define_count;
    const Ast *ast;
    const Stmt *output_stmt;
    int instances;         /* block instantiations so far */
    int eval_depth;        /* sema_expr recursion */
    bool too_big;          /* a size limit was hit: later statements are not analyzed */
    bool in_loss_or_metric;
    bool in_param;         /* evaluating a param's value */
    bool padded_text;      /* the train data is a csv text column: token id 0 is padding */
    TensorBinding *tensor_bindings; /* assignments of tensors, for the unused-value warning */
    int tensor_binding_count, tensor_binding_cap;
    SemaObserver *observer;         /* the language server's view of each expression; NULL: none */
    void *observer_data;
} Sema;

static Value value_number(double x) { return (Value){.kind = VAL_NUMBER, .number = x}; }

static const char *value_kind_name(ValueKind kind) {
    switch (kind) {
    case VAL_NUMBER: return "a number";
    case VAL_STRING: return "a string";
    case VAL_BOOL: return "a boolean";
    case VAL_TENSOR: return "a tensor";
    case VAL_TARGET: return "the target";
    case VAL_OP: return "an operation";
    default: return "an invalid value";
    }
}

/* ---------------------------------------------------------------- scopes and names */

static Binding *sema_lookup(Scope *scope, const char *name) {
    for (; scope; scope = scope->parent) {
        Binding *b = map_get(&scope->names, name);
        if (b) return b;
    }
    return NULL;
}

static Binding *sema_bind(Sema *s, Scope *scope, const char *name, Span span, Value value) {
    Binding *b = ARENA_NEW(s->arena, Binding);
    b->name = name;
    b->span = span;
    b->value = value;
    b->next = scope->bindings; /* newest first: re-binding shadows */
    scope->bindings = b;
    map_put(s->arena, &scope->names, name, b);
    return b;
}

static int sema_next_count(Sema *s, Scope *scope, const char *name) {
    Counter *c = map_get(&scope->counters, name);
    if (c) return c->count++;
    c = ARENA_NEW(s->arena, Counter);
    c->name = name;
    c->count = 1;
    map_put(s->arena, &scope->counters, name, c);
    return 0;
}

static const Stmt *sema_find_def(Sema *s, const char *name) { return map_get(&s->defs_by_name, name); }

/* diag_closest, skipped once errors are no longer printed (a hostile file can have millions). */
static const char *sema_closest(Sema *s, const char *word, const char *const *candidates, int count) {
    return diag_muted(s->diag) ? NULL : diag_closest(word, candidates, count);
}

/* ---------------------------------------------------------------- op signatures */

static int spec_count(const ArgSpec *spec) {
    int n = 0;
    while (spec[n].name) n++;
    return n;
}

/* "dense(n, bias=true)" for messages; the piped tensor input is left out when piped. */
static const char *spec_signature(Sema *s, const char *op, const ArgSpec *spec, bool skip_first) {
    return ops_spec_signature(s->arena, op, spec, skip_first);
}

static Value sema_expr(Sema *s, Scope *scope, const Expr *e);

/* Checks a value against the kind an argument needs; reports and returns false on mismatch. */
static bool sema_check_arg_kind(Sema *s, const char *op, const ArgSpec *spec, Value *v, Span span) {
    if (v->kind == VAL_ERROR) return false;
    switch (spec->kind) {
    case ARG_TENSOR:
        if (v->kind == VAL_TENSOR && s->model->input_kind == NNRT_INPUT_INT && v->node == s->graph->input &&
            !(ops_find_surface(op) && (ops_find_surface(op)->role & OPS_TAKES_TOKEN_IDS))) {
            diag_error(s->diag, span, "%s cannot take token ids; an int[t] input feeds 'embedding' first", op);
            diag_note(s->diag, SPAN_NONE, "e.g. %s -> embedding(vocab, 32) -> ...", s->model->input_name);
            return false;
        }
        if (v->kind == VAL_TENSOR) return true;
        if (v->kind == VAL_TARGET && s->in_loss_or_metric) {
            diag_error(s->diag, span, "%s expects a tensor computed by the model for '%s', got the target", op, spec->name);
            return false;
        }
        if (v->kind == VAL_TARGET) {
            diag_error(s->diag, span, "the target can only be used in 'loss' and 'metric' statements");
            return false;
        }
        diag_error(s->diag, span, "%s expects a tensor for '%s', got %s", op, spec->name, value_kind_name(v->kind));
        return false;
    case ARG_TARGET:
        if (v->kind == VAL_TARGET) return true;
        diag_error(s->diag, span, "%s expects the target for '%s', got %s", op, spec->name, value_kind_name(v->kind));
        if (v->kind == VAL_TENSOR) diag_note(s->diag, SPAN_NONE, "targets are declared with 'target NAME : class[N]' or 'target NAME : float[...]'");
        return false;
    case ARG_NUMBER:
        if (v->kind == VAL_NUMBER) return true;
        diag_error(s->diag, span, "argument '%s' of %s must be a number, got %s", spec->name, op, value_kind_name(v->kind));
        return false;
    case ARG_INT:
        if (v->kind == VAL_NUMBER && v->number == floor(v->number) && v->number >= 1 && v->number <= 2147483647.0)
            return true;
        if (v->kind == VAL_NUMBER && v->number == floor(v->number) && v->number > 2147483647.0)
            /* The limit, and the value in digits: 2.14748e+09 would read as if it were within it. */
            diag_error(s->diag, span, "argument '%s' of %s must be at most 2147483647, got %.*g", spec->name, op,
                       v->number < 1e17 ? 17 : 6, v->number);
        else if (v->kind == VAL_NUMBER)
            diag_error(s->diag, span, "argument '%s' of %s must be a positive integer, got %g", spec->name, op, v->number);
        else
            diag_error(s->diag, span, "argument '%s' of %s must be a positive integer, got %s", spec->name, op, value_kind_name(v->kind));
        return false;
    case ARG_BOOL:
        if (v->kind == VAL_BOOL) return true;
        diag_error(s->diag, span, "argument '%s' of %s must be true or false, got %s", spec->name, op, value_kind_name(v->kind));
        return false;
    case ARG_PAD: /* a non-negative integer or "same" */
        if (v->kind == VAL_NUMBER && v->number == floor(v->number) && v->number >= 0 && v->number <= 65536) return true;
        if (v->kind == VAL_STRING && strcmp(v->string, "same") == 0) return true;
        if (v->kind == VAL_STRING)
            diag_error(s->diag, span, "pad of %s must be a number or \"same\", got \"%s\"", op, v->string);
        else if (v->kind == VAL_NUMBER)
            diag_error(s->diag, span, "pad of %s must be a non-negative integer or \"same\", got %g", op, v->number);
        else
            diag_error(s->diag, span, "pad of %s must be a number or \"same\", got %s", op, value_kind_name(v->kind));
        return false;
    case ARG_STRING:
        if (v->kind == VAL_STRING) return true;
        diag_error(s->diag, span, "argument '%s' of %s must be a string, got %s", spec->name, op, value_kind_name(v->kind));
        return false;
    }
    return false;
}

/* Binds a call's arguments to a signature. `allow_name` accepts name="..." (every layer op). */
static bool sema_bind_args(Sema *s, Scope *scope, const Expr *call, const ArgSpec *spec, bool allow_name, Bound *out) {
    memset(out, 0, sizeof *out);
    out->call_span = call->span;
    int count = spec_count(spec);
    bool ok = true, unknown_keyword = false;
    /* The one required argument the call leaves out, if exactly one: what a keyword that is no
     * argument's name most likely meant (dense(units=10) -> 'n'). */
    const char *only_missing = NULL;
    int positional = 0, missing = 0;
    for (const Arg *a = call->args; a; a = a->next) positional += !a->keyword;
    for (int i = positional; i < count; i++) {
        if (!spec[i].required) continue;
        bool named = false;
        for (const Arg *a = call->args; a && !named; a = a->next) named = a->keyword && strcmp(a->keyword, spec[i].name) == 0;
        if (!named && missing++ == 0) only_missing = spec[i].name;
    }
    if (missing != 1) only_missing = NULL;
    int position = 0;
    for (const Arg *a = call->args; a; a = a->next) {
        Value v = sema_expr(s, scope, a->value);
        Span vspan = a->value->span;
        if (!a->keyword) {
            if (position >= count) {
                int expected = count - (call->piped ? 1 : 0);
                diag_error(s->diag, vspan, "too many arguments to %s: it takes %d positional argument%s",
                           call->text, expected, expected == 1 ? "" : "s");
                diag_note(s->diag, SPAN_NONE, "the signature is %s%s", spec_signature(s, call->text, spec, call->piped),
                          call->piped ? " (its input comes from '->')" : "");
                return false;
            }
            if (!sema_check_arg_kind(s, call->text, &spec[position], &v, vspan)) ok = false;
            out->values[position] = v;
            out->spans[position] = vspan;
            out->given[position] = true;
            position++;
            continue;
        }
        if (allow_name && strcmp(a->keyword, "name") == 0) {
            if (v.kind != VAL_STRING) {
                if (v.kind != VAL_ERROR) diag_error(s->diag, vspan, "name= must be a string, got %s", value_kind_name(v.kind));
                ok = false;
            } else {
                out->layer_name = v.string;
                out->layer_name_span = vspan;
            }
            continue;
        }
        int index = -1;
        for (int i = 0; i < count; i++)
            if (strcmp(spec[i].name, a->keyword) == 0) index = i;
        if (index < 0) {
            /* The op's own arguments first, then the one required argument left out, and
             * name= last: dropout(rate=0.5) means 'p', although 'rate' is closer to 'name'. */
            const char *names[OPS_MAX_ARGS];
            int n = 0;
            for (int i = 0; i < count && n < OPS_MAX_ARGS; i++) names[n++] = spec[i].name;
            const char *guess = sema_closest(s, a->keyword, names, n);
            if (!guess) guess = only_missing;
            if (!guess && allow_name) guess = sema_closest(s, a->keyword, (const char *const[]){"name"}, 1);
            if (guess)
                diag_error(s->diag, a->keyword_span, "%s has no argument '%s'; did you mean '%s'?", call->text, a->keyword, guess);
            else
                diag_error(s->diag, a->keyword_span, "%s has no argument '%s'", call->text, a->keyword);
            diag_note(s->diag, SPAN_NONE, "the signature is %s", spec_signature(s, call->text, spec, call->piped));
            ok = false;
            unknown_keyword = true;
            continue;
        }
        if (out->given[index]) {
            diag_error(s->diag, a->keyword_span, "argument '%s' of %s is given twice", a->keyword, call->text);
            diag_note(s->diag, out->spans[index], "first given here");
            ok = false;
            continue;
        }
        if (!sema_check_arg_kind(s, call->text, &spec[index], &v, vspan)) ok = false;
        out->values[index] = v;
        out->spans[index] = vspan;
        out->given[index] = true;
    }
    for (int i = 0; i < count; i++) {
        if (out->given[i]) continue;
        if (spec[i].required) {
            /* A misspelt keyword was reported already; it is most likely this argument. */
            if (unknown_keyword) return false;
            diag_error(s->diag, call->span, "%s is missing its argument '%s'", call->text, spec[i].name);
            diag_note(s->diag, SPAN_NONE, "the signature is %s", spec_signature(s, call->text, spec, call->piped));
            return false;
        }
        out->spans[i] = call->span;
        switch (spec[i].kind) {
        case ARG_BOOL: out->values[i] = (Value){.kind = VAL_BOOL, .boolean = spec[i].default_number != 0}; break;
        case ARG_STRING: out->values[i] = (Value){.kind = VAL_STRING, .string = spec[i].default_string}; break;
        default: out->values[i] = value_number(spec[i].default_number); break;
        }
    }
    return ok;
}

/* ---------------------------------------------------------------- layers */

/* Layer names end up in checkpoint headers (JSON) and messages. */
static bool sema_valid_layer_name(const char *name) {
    if (!name[0]) return false;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c < 32 || *c == 127 || *c == '"' || *c == '\\') return false;
    return true;
}

static const char *sema_name_layer(Sema *s, Scope *scope, const char *op, const Bound *b) {
    const char *name;
    if (b->layer_name) {
        if (!sema_valid_layer_name(b->layer_name)) {
            diag_error(s->diag, b->layer_name_span, "a layer name must be non-empty and contain no quotes, backslashes or control characters");
            return NULL;
        }
        name = arena_printf(s->arena, "%s%s", scope->prefix, b->layer_name);
        (void)sema_next_count(s, scope, op); /* named layers still count, like PyTorch modules */
    } else {
        name = arena_printf(s->arena, "%s%s%d", scope->prefix, op, sema_next_count(s, scope, op));
    }
    Span here = b->layer_name ? b->layer_name_span : b->call_span;
    const LayerName *first = map_get(&s->layer_names, name);
    if (first && first->instance && scope->def && first->instance->def == scope->def && first->span.begin == here.begin) {
        /* The same layer of two instances: the instances were given the same name=. */
        const void *context = s->diag->context_data;
        s->diag->context_data = scope->caller && scope->caller->def ? scope->caller : NULL;
        diag_error(s->diag, scope->call_span, "two instances of block '%s' give their layers the same names ('%s')",
                   scope->def->name, name);
        diag_note(s->diag, first->instance->call_span, "the first instance is here");
        diag_note(s->diag, SPAN_NONE, "layer names become checkpoint tensor names, so they must be unique");
        s->diag->context_data = context;
        return NULL;
    }
    if (first) {
        diag_error(s->diag, here, "two layers are named '%s'", name);
        diag_note(s->diag, first->span, "the first layer named '%s' is here", name);
        diag_note(s->diag, SPAN_NONE, "layer names become checkpoint tensor names, so they must be unique");
        return NULL;
    }
    LayerName *entry = ARENA_NEW(s->arena, LayerName);
    entry->span = here;
    entry->instance = scope->def ? scope : NULL;
    map_put(s->arena, &s->layer_names, name, entry);
    return name;
}

const char *sema_layer_name(OpSema *os, const char *op, const Bound *b) { return sema_name_layer(os->sema, os->scope, op, b); }

const char *sema_shape(OpSema *s, const Shape *shape) {
    char buf[160];
    return arena_strdup(s->arena, shape_str(shape, buf, sizeof buf));
}

/* Size limits of one layer, checked before it is built: per-example output elements, weights
 * (added to the model's total) and multiply-adds per example. Reports and returns false. */
bool sema_layer_fits(OpSema *s, const Expr *call, double output_elements, double weights, double macs) {
    if (output_elements > SEMA_MAX_ELEMENTS) {
        diag_error(s->diag, call->span, "the output of %s would have %.4g elements per example; nnc supports at most 2^31",
                   call->text, output_elements);
        return false;
    }
    if (weights + (double)s->graph->param_count > SEMA_MAX_PARAMETERS) {
        diag_error(s->diag, call->span, "%s would bring the model to %.4g parameters; nnc supports at most 2^32",
                   call->text, weights + (double)s->graph->param_count);
        return false;
    }
    if (macs > SEMA_MAX_MACS) {
        diag_error(s->diag, call->span, "%s would need %.4g multiply-adds per example; nnc supports at most 2^40 per layer",
                   call->text, macs);
        return false;
    }
    return true;
}

/* Where a tensor passed by name was computed, when that is not where it is passed. */
void sema_note_origin(OpSema *s, const Node *x, Span used, const char *what) {
    if (x->span.begin < 0 || (x->span.begin == used.begin && x->span.end == used.end)) return;
    if (x->id == s->graph->input)
        diag_note(s->diag, x->span, "'%s' is the model's input, declared here", x->layer);
    else
        diag_note(s->diag, x->span, "%s computed here", what);
}

static OpSema sema_for_ops(Sema *s, Scope *scope) {
    return (OpSema){.arena = s->arena, .diag = s->diag, .graph = s->graph, .model = s->model, .sema = s, .scope = scope};
}

/* Names a misspelt callee could have meant: ops and blocks. */
static const char *sema_guess_callee(Sema *s, const char *name) {
    enum { MAX_NAMES = 128 };
    const char *names[MAX_NAMES];
    int n = ops_surface_names(0, names, MAX_NAMES - 65);
    names[n++] = "repeat";
    for (int i = 0; i < s->defs.len && n < MAX_NAMES; i++) names[n++] = ((const Stmt *)s->defs.items[i])->name;
    return sema_closest(s, name, names, n);
}

/* Names a misspelt name could have meant: every name bound in the scopes (once each, however
 * often it was re-bound). */
static const char *sema_guess_name(Sema *s, Scope *scope, const char *name) {
    enum { MAX_NAMES = 1024 };
    const char *names[MAX_NAMES];
    int n = 0;
    if (diag_muted(s->diag)) return NULL;
    for (; scope; scope = scope->parent)
        for (int i = 0; i < scope->names.cap && n < MAX_NAMES; i++)
            for (const NameEntry *e = scope->names.buckets[i]; e && n < MAX_NAMES; e = e->next) names[n++] = e->name;
    return diag_closest(name, names, n);
}

/* ---------------------------------------------------------------- blocks */

static void sema_stmts(Sema *s, Scope *scope, const Stmt *stmts, Value *returned);

/* A block's parameters as an array and by name, built once per block: calls bind their
 * arguments in time proportional to the arguments, however many parameters there are. */
typedef struct DefInfo {
    const Stmt *def;
    int count;
    const DefParam **params;
    NameMap index; /* name -> 1 + position */
} DefInfo;

static DefInfo *sema_def_info(Sema *s, const Stmt *def) {
    DefInfo *info = map_get(&s->def_infos, def->name);
    if (info && info->def == def) return info;
    info = ARENA_NEW(s->arena, DefInfo);
    info->def = def;
    for (const DefParam *p = def->params; p; p = p->next) info->count++;
    info->params = ARENA_ARRAY(s->arena, const DefParam *, info->count + 1);
    int i = 0;
    for (const DefParam *p = def->params; p; p = p->next, i++) {
        info->params[i] = p;
        if (!map_get(&info->index, p->name)) map_put(s->arena, &info->index, p->name, (void *)(intptr_t)(i + 1));
    }
    map_put(s->arena, &s->def_infos, def->name, info);
    return info;
}

/* Where a param (or an op-valued block argument) got its value: the -D that replaced the file's
 * value, or the expression in the file. `shown` is the value as the user would write it. */
static void sema_note_choice(Diag *diag, const Binding *b, const char *shown) {
    if (b->define)
        diag_note(diag, b->value_span, "'%s' is %s here, chosen by -D %s=%s (in place of this value)", b->name, shown,
                  b->define->name, b->define->value_text);
    else
        diag_note(diag, b->value_span, "'%s' is %s, chosen here", b->name, shown);
}

static const char *sema_op_shown(Arena *arena, const Binding *b) { return arena_printf(arena, "'%s'", b->value.string); }

/* Context notes for an error inside a block instance: the chain of calls that led there, and for
 * a block or op reached through an op-valued name, where that name got its value. */
static void sema_instance_context(Diag *diag, const void *data) {
    int shown = 0;
    for (const Scope *sc = data; sc && (sc->def || sc->chosen); sc = sc->caller) {
        if (shown++ == 8) {
            diag_note(diag, SPAN_NONE, "(and %d more enclosing block instances)", sc->depth);
            break;
        }
        if (sc->def) diag_note(diag, sc->call_span, "in block '%s' instantiated here", sc->def->name);
        if (sc->chosen) {
            char shown_op[160];
            snprintf(shown_op, sizeof shown_op, "'%.150s'", sc->chosen->value.string);
            sema_note_choice(diag, sc->chosen, shown_op);
        }
    }
}

/* A block argument or param value that names an op or block is that op or block (VAL_OP); one
 * that names an op-valued binding carries that binding's value and origin along. */
static Value sema_value_or_op(Sema *s, Scope *scope, const Expr *e, const Binding **origin) {
    *origin = NULL;
    if (e->kind == EXPR_NAME) {
        const Binding *b = sema_lookup(scope, e->text);
        if (b && b->value.kind == VAL_OP) {
            *origin = b;
            return b->value;
        }
        if (!b && (ops_find_surface(e->text) || sema_find_def(s, e->text))) return (Value){.kind = VAL_OP, .string = e->text};
        /* An unknown name here may be a misspelt op (act=tahn): suggest ops when no name is close. */
        if (!b && strcmp(e->text, "true") != 0 && strcmp(e->text, "false") != 0 && !sema_guess_name(s, scope, e->text)) {
            const char *guess = sema_guess_callee(s, e->text);
            if (guess && strcmp(guess, "repeat") != 0) {
                diag_error(s->diag, e->span, "unknown name '%s'; did you mean '%s'?", e->text, guess);
                return value_error();
            }
        }
    }
    return sema_expr(s, scope, e);
}

/* An argument whose value sema already has (EXPR_VALUE), before `next`. */
static Arg *sema_value_arg(Sema *s, Value v, Span span, Arg *next) {
    Value *stored = ARENA_NEW(s->arena, Value);
    *stored = v;
    Expr *e = ARENA_NEW(s->arena, Expr);
    e->kind = EXPR_VALUE;
    e->span = span;
    e->value = stored;
    e->depth = 1;
    Arg *a = ARENA_NEW(s->arena, Arg);
    a->value = e;
    a->next = next;
    return a;
}

/* Makes the errors reported from here on carry the note on where `chosen` got its value (a frame
 * of the context chain without a block); returns the context to restore. */
static const void *sema_enter_choice(Sema *s, const Binding *chosen) {
    const void *outer = s->diag->context_data;
    Scope *frame = ARENA_NEW(s->arena, Scope); /* for the diagnostics only */
    frame->caller = (Scope *)outer;
    frame->chosen = chosen;
    frame->depth = outer ? ((const Scope *)outer)->depth : 0;
    s->diag->context_data = frame;
    return outer;
}

static Value sema_instantiate_body(Sema *s, Scope *scope, const Expr *call, const Stmt *def, const Binding *chosen);

/* A call of block `def`; `chosen` is the op-valued name it was reached through, or NULL. */
static Value sema_instantiate(Sema *s, Scope *scope, const Expr *call, const Stmt *def, const Binding *chosen) {
    if (!chosen) return sema_instantiate_body(s, scope, call, def, NULL);
    /* The arguments' errors get the note (the instance's body gets it from its own scope). */
    const void *outer = sema_enter_choice(s, chosen);
    Value v = sema_instantiate_body(s, scope, call, def, chosen);
    s->diag->context_data = outer;
    return v;
}

static Value sema_instantiate_body(Sema *s, Scope *scope, const Expr *call, const Stmt *def, const Binding *chosen) {
    for (Scope *sc = scope; sc; sc = sc->caller) {
        if (sc->def != def) continue;
        /* The cycle, outermost first: a -> b -> a. */
        const char *cycle = def->name;
        for (Scope *c = scope; c != sc->caller; c = c->caller)
            cycle = arena_printf(s->arena, "%s -> %s", c->def->name, cycle);
        if (scope == sc)
            diag_error(s->diag, call->name_span, "block '%s' calls itself", def->name);
        else
            diag_error(s->diag, call->name_span, "block '%s' calls itself through other blocks: %s", def->name, cycle);
        diag_note(s->diag, def->name_span, "blocks are expanded at compile time, so recursion is not allowed");
        return value_error();
    }
    if (scope->depth >= SEMA_MAX_BLOCK_DEPTH) {
        diag_error(s->diag, call->name_span, "blocks nested more than %d deep", SEMA_MAX_BLOCK_DEPTH);
        return value_error();
    }
    map_put(s->arena, &s->instantiated, def->name, (void *)def);
    if (++s->instances > SEMA_MAX_INSTANCES) {
        diag_error(s->diag, call->name_span, "blocks expand to more than %d instances; nnc stops here", SEMA_MAX_INSTANCES);
        diag_note(s->diag, SPAN_NONE, "each call of a block copies its layers; blocks that call blocks several times multiply");
        s->too_big = true;
        return value_error();
    }
    Scope *inner = ARENA_NEW(s->arena, Scope);
    inner->parent = s->global;
    inner->def = def;
    inner->caller = scope;
    inner->call_span = call->span;
    inner->depth = scope->depth + 1;
    inner->chosen = chosen;
    const char *instance_name = NULL;
    const DefInfo *info = sema_def_info(s, def);
    int param_count = info->count;
    bool ok = true, unknown_keyword = false;
    bool *given = ARENA_ARRAY(s->arena, bool, param_count + 1);
    int position = 0;
    for (const Arg *a = call->args; a; a = a->next) {
        const Binding *origin;
        Value v = sema_value_or_op(s, scope, a->value, &origin);
        if (v.kind == VAL_ERROR) ok = false;
        const DefParam *p = NULL;
        int index = 0;
        if (a->keyword) {
            index = (int)(intptr_t)map_get(&info->index, a->keyword) - 1;
            p = index >= 0 ? info->params[index] : NULL;
            if (!p && strcmp(a->keyword, "name") == 0) {
                /* name="..." names the instance: its layers become NAME.dense0, ... */
                if (v.kind == VAL_STRING && sema_valid_layer_name(v.string)) {
                    instance_name = v.string;
                } else if (v.kind != VAL_ERROR) {
                    diag_error(s->diag, a->value->span, "name= must be a non-empty string without quotes, backslashes or control characters");
                    ok = false;
                }
                continue;
            }
            if (!p) {
                const char *names[64];
                int n = 0;
                for (const DefParam *q = def->params; q && n < 64; q = q->next) names[n++] = q->name;
                const char *guess = sema_closest(s, a->keyword, names, n);
                if (guess)
                    diag_error(s->diag, a->keyword_span, "block '%s' has no parameter '%s'; did you mean '%s'?", def->name, a->keyword, guess);
                else
                    diag_error(s->diag, a->keyword_span, "block '%s' has no parameter '%s'", def->name, a->keyword);
                diag_note(s->diag, def->name_span, "'%s' is defined here", def->name);
                ok = false;
                unknown_keyword = true;
                continue;
            }
        } else {
            index = position++;
            p = index < param_count ? info->params[index] : NULL;
            if (!p) {
                if (call->piped)
                    diag_error(s->diag, a->value->span, "too many arguments to block '%s': it takes %d besides its input from '->'",
                               def->name, param_count - 1);
                else
                    diag_error(s->diag, a->value->span, "too many arguments to block '%s': it takes %d", def->name, param_count);
                diag_note(s->diag, def->name_span, "'%s' is defined here", def->name);
                return value_error();
            }
        }
        if (given[index]) {
            diag_error(s->diag, a->keyword ? a->keyword_span : a->value->span, "parameter '%s' of block '%s' is given twice",
                       p->name, def->name);
            ok = false;
            continue;
        }
        given[index] = true;
        if (index == 0 && v.kind != VAL_TENSOR && v.kind != VAL_ERROR) {
            diag_error(s->diag, a->value->span, "the first parameter of block '%s' is its input tensor, got %s", def->name,
                       value_kind_name(v.kind));
            ok = false;
        }
        Binding *bound = sema_bind(s, inner, p->name, p->span, v);
        bound->value_span = origin ? origin->value_span : a->value->span;
        bound->define = origin ? origin->define : NULL;
    }
    for (int index = 0; index < param_count; index++) {
        const DefParam *p = info->params[index];
        if (given[index]) continue;
        if (p->default_value) {
            const Binding *origin;
            Value v = sema_value_or_op(s, s->global, p->default_value, &origin);
            Binding *bound = sema_bind(s, inner, p->name, p->span, v);
            bound->value_span = origin ? origin->value_span : p->default_value->span;
            bound->define = origin ? origin->define : NULL;
        } else if (!unknown_keyword) { /* else the misspelt keyword was most likely this one */
            diag_error(s->diag, call->span, "block '%s' is missing its argument '%s'", def->name, p->name);
            diag_note(s->diag, def->name_span, "'%s' is defined here", def->name);
            ok = false;
        }
    }
    /* Numbered after the arguments, so that in `x -> b -> b` the first instance is b0; a named
     * instance still takes its number, like a named layer. */
    int number = sema_next_count(s, scope, def->name);
    inner->prefix = instance_name ? arena_printf(s->arena, "%s%s.", scope->prefix, instance_name)
                                  : arena_printf(s->arena, "%s%s%d.", scope->prefix, def->name, number);
    if (!ok || unknown_keyword) return value_error();
    Value returned = value_error();
    returned.number = -1; /* marks "no return seen" */
    const void *outer_context = s->diag->context_data;
    s->diag->context_data = inner;
    sema_stmts(s, inner, def->body, &returned);
    s->diag->context_data = outer_context;
    if (returned.kind == VAL_ERROR && returned.number == -1 && !s->too_big) {
        diag_error(s->diag, def->close_span, "block '%s' ends without 'return'", def->name);
        diag_note(s->diag, SPAN_NONE, "a block ends with 'return EXPR', the tensor it produces");
        return value_error();
    }
    return returned;
}

/* ---------------------------------------------------------------- expressions */

static Value sema_call(Sema *s, Scope *scope, const Expr *call);

/* `x -> act` where act names an op or block (an op-valued param or block argument): the call as
 * if written with that name. The piped input is evaluated first, outside the choice's context,
 * so that only the application's own errors get the note on where the choice was made. */
static Value sema_apply_chosen(Sema *s, Scope *scope, const Expr *call, const Binding *b) {
    Expr *applied = ARENA_NEW(s->arena, Expr);
    *applied = *call;
    applied->text = b->value.string;
    if (call->piped && call->args) {
        Value input = sema_expr(s, scope, call->args->value);
        if (input.kind == VAL_ERROR) return value_error();
        applied->args = sema_value_arg(s, input, call->args->value->span, call->args->next);
    }
    const Stmt *def = sema_find_def(s, applied->text);
    if (def) return sema_instantiate(s, scope, applied, def, b);
    const void *outer = sema_enter_choice(s, b);
    Value v = sema_call(s, scope, applied);
    s->diag->context_data = outer;
    return v;
}

/* The note on where a param named in `e` got its value, when `e` is such a name. */
static void sema_note_param_value(Sema *s, Scope *scope, const Expr *e, Value v) {
    if (e->kind != EXPR_NAME) return;
    const Binding *b = sema_lookup(scope, e->text);
    if (!b || !b->value_span.end) return;
    const char *shown = v.kind == VAL_NUMBER ? arena_printf(s->arena, "%g", v.number)
                        : v.kind == VAL_STRING ? arena_printf(s->arena, "\"%s\"", v.string)
                        : v.kind == VAL_OP ? arena_printf(s->arena, "'%s'", v.string) : value_kind_name(v.kind);
    sema_note_choice(s->diag, b, shown);
}

/* The note on wrapping op `op` in a block so that repeat can apply it, with as many parameters as
 * the repeat passes on (named as in the op's signature). */
static void sema_note_wrap_op(Sema *s, const char *op, const Arg *extra) {
    const OpSurface *surface = ops_find_surface(op);
    const char *params = "", *args = "";
    int i = 1; /* spec[0] is the input */
    for (const Arg *a = extra; a && surface && surface->spec[i].name; a = a->next, i++) {
        const char *name = a->keyword ? a->keyword : surface->spec[i].name;
        params = arena_printf(s->arena, "%s, %s", params, name);
        args = arena_printf(s->arena, "%s%s%s", args, *args ? ", " : "", a->keyword ? arena_printf(s->arena, "%s=%s", name, name) : name);
    }
    diag_note(s->diag, SPAN_NONE, "repeat applies blocks; wrap the operation in one: def %s_block(x%s) { return x -> %s%s%s%s }", op,
              params, op, *args ? "(" : "", args, *args ? ")" : "");
}

/* `x -> repeat(n, BLOCK, args...)`: BLOCK applied n times, each instance called as if written out
 * (`x -> BLOCK(args...) -> BLOCK(args...) ...`), so instances are numbered BLOCK0, BLOCK1, ... */
static Value sema_repeat(Sema *s, Scope *scope, const Expr *call) {
    const char *form = "x -> repeat(n, BLOCK, args...)";
    if (!call->piped) {
        diag_error(s->diag, call->name_span, "repeat applies a block in a pipeline: %s", form);
        return value_error();
    }
    const Arg *input = call->args, *count_arg = input->next, *block_arg = count_arg ? count_arg->next : NULL;
    if (!block_arg || count_arg->keyword || block_arg->keyword) {
        const Arg *bad = count_arg && count_arg->keyword ? count_arg : block_arg && block_arg->keyword ? block_arg : NULL;
        diag_error(s->diag, bad ? bad->keyword_span : call->span, "repeat needs a count and a block, in that order: %s", form);
        return value_error();
    }
    Value in = sema_expr(s, scope, input->value);
    Value count = sema_expr(s, scope, count_arg->value);
    bool ok = in.kind != VAL_ERROR;
    /* The block: a def's name, or an op-valued name whose value is one. */
    const Expr *be = block_arg->value;
    const Stmt *def = NULL;
    const Binding *chosen = NULL;
    if (be->kind == EXPR_NAME) {
        const Binding *b = sema_lookup(scope, be->text);
        def = b ? NULL : sema_find_def(s, be->text);
        if (b && b->value.kind == VAL_OP) {
            chosen = b;
            def = sema_find_def(s, b->value.string);
            if (!def) {
                diag_error(s->diag, be->span, "repeat applies a block, but '%s' is the operation '%s'", be->text, b->value.string);
                sema_note_choice(s->diag, b, sema_op_shown(s->arena, b));
                sema_note_wrap_op(s, b->value.string, block_arg->next);
            }
        } else if (b) {
            if (b->value.kind != VAL_ERROR)
                diag_error(s->diag, be->span, "repeat applies a block, but '%s' is %s", be->text, value_kind_name(b->value.kind));
        } else if (!def && ops_find_surface(be->text)) {
            diag_error(s->diag, be->span, "repeat applies a block, but '%s' is an operation", be->text);
            sema_note_wrap_op(s, be->text, block_arg->next);
        } else if (!def) {
            enum { MAX_NAMES = 256 };
            const char *names[MAX_NAMES];
            int n = 0;
            for (int i = 0; i < s->defs.len && n < MAX_NAMES; i++) names[n++] = ((const Stmt *)s->defs.items[i])->name;
            const char *guess = sema_closest(s, be->text, names, n);
            if (guess)
                diag_error(s->diag, be->span, "unknown block '%s'; did you mean '%s'?", be->text, guess);
            else
                diag_error(s->diag, be->span, "unknown block '%s'", be->text);
        }
    } else if (be->kind == EXPR_CALL && (sema_find_def(s, be->text) || ops_find_surface(be->text))) {
        diag_error(s->diag, be->span, "repeat takes the block's name, then its arguments: repeat(n, %s, ...), not repeat(n, %s(...))",
                   be->text, be->text);
    } else {
        Value v = sema_expr(s, scope, be);
        if (v.kind != VAL_ERROR) diag_error(s->diag, be->span, "repeat applies a block, but this is %s", value_kind_name(v.kind));
    }
    ok &= def != NULL;
    if (count.kind != VAL_ERROR && (count.kind != VAL_NUMBER || count.number != floor(count.number) || count.number < 0)) {
        if (count.kind == VAL_NUMBER)
            diag_error(s->diag, count_arg->value->span, "repeat's count must be a whole number, 0 or more, got %g", count.number);
        else
            diag_error(s->diag, count_arg->value->span, "repeat's count must be a whole number, 0 or more, got %s",
                       value_kind_name(count.kind));
        sema_note_param_value(s, scope, count_arg->value, count);
        ok = false;
    } else if (count.kind == VAL_NUMBER && count.number > SEMA_MAX_INSTANCES) {
        diag_error(s->diag, count_arg->value->span, "repeat's count %g is more than the %d block instances nnc allows",
                   count.number, SEMA_MAX_INSTANCES);
        sema_note_param_value(s, scope, count_arg->value, count);
        ok = false;
    }
    ok &= count.kind == VAL_NUMBER;
    for (const Arg *a = block_arg->next; a; a = a->next)
        if (a->keyword && strcmp(a->keyword, "name") == 0) {
            diag_error(s->diag, a->keyword_span, "repeat names its instances %s0, %s1, ... itself; it takes no name=",
                       def ? def->name : "BLOCK", def ? def->name : "BLOCK");
            ok = false;
        }
    if (!ok) return value_error();
    /* Each instance: BLOCK(previous, args...), called from here. */
    Value v = in;
    for (int i = 0; i < (int)count.number && v.kind != VAL_ERROR; i++) {
        Expr *instance = ARENA_NEW(s->arena, Expr);
        *instance = *call;
        instance->text = def->name;
        instance->name_span = be->span;
        instance->args = sema_value_arg(s, v, input->value->span, block_arg->next);
        v = sema_instantiate(s, scope, instance, def, chosen);
    }
    return v;
}

static Value sema_call(Sema *s, Scope *scope, const Expr *call) {
    const Stmt *def = sema_find_def(s, call->text);
    if (def) return sema_instantiate(s, scope, call, def, NULL);
    /* repeat is a form of the language, not an op: it applies a block (and no block may be named so) */
    if (strcmp(call->text, "repeat") == 0) return sema_repeat(s, scope, call);
    const OpSurface *op = ops_find_surface(call->text);
    if (!op) {
        Binding *b = sema_lookup(scope, call->text);
        if (b && b->value.kind == VAL_OP) return sema_apply_chosen(s, scope, call, b);
        if (b && b->value.kind == VAL_ERROR) { /* reported where it failed; the arguments' own mistakes still count */
            for (const Arg *a = call->args; a; a = a->next) (void)sema_expr(s, scope, a->value);
            return value_error();
        }
        if (b) {
            diag_error(s->diag, call->name_span, "'%s' is %s, not an operation", call->text, value_kind_name(b->value.kind));
            if (b->value.kind == VAL_STRING && (ops_find_surface(b->value.string) || sema_find_def(s, b->value.string)))
                diag_note(s->diag, b->value_span.end ? b->value_span : b->span,
                          "a quoted name is a string; to name the %s, write it without quotes: %s",
                          sema_find_def(s, b->value.string) ? "block" : "operation", b->value.string);
            return value_error();
        }
        bool extension = ops_is_planned(call->text);
        const char *guess = extension ? NULL : sema_guess_callee(s, call->text);
        if (extension)
            diag_error(s->diag, call->name_span, "operation '%s' is a planned extension that this version of nnc does not support", call->text);
        else if (guess)
            diag_error(s->diag, call->name_span, "unknown operation '%s'; did you mean '%s'?", call->text, guess);
        else
            diag_error(s->diag, call->name_span, "unknown operation '%s'", call->text);
        /* Still evaluate the arguments: their own mistakes are independent. */
        for (const Arg *a = call->args; a; a = a->next) (void)sema_expr(s, scope, a->value);
        return value_error();
    }
    bool objective = (op->role & (OPS_LOSS | OPS_METRIC)) != 0;
    if (objective && !s->in_loss_or_metric) {
        diag_error(s->diag, call->name_span, "%s can only be used in a 'loss' or 'metric' statement", call->text);
        return value_error();
    }
    Bound bound;
    if (!sema_bind_args(s, scope, call, op->spec, !objective, &bound)) return value_error();
    OpSema os = sema_for_ops(s, scope);
    return op->rule(&os, call, &bound);
}

static Value sema_binary(Sema *s, Scope *scope, const Expr *e) {
    Value a = sema_expr(s, scope, e->lhs);
    Value b = sema_expr(s, scope, e->rhs);
    if (a.kind == VAL_ERROR || b.kind == VAL_ERROR) return value_error();
    if (a.kind == VAL_NUMBER && b.kind == VAL_NUMBER) {
        double x;
        switch (e->op) {
        case '+': x = a.number + b.number; break;
        case '-': x = a.number - b.number; break;
        case '*': x = a.number * b.number; break;
        default:
            if (b.number == 0) {
                diag_error(s->diag, e->rhs->span, "division by zero in a constant expression");
                return value_error();
            }
            x = a.number / b.number;
            break;
        }
        if (!isfinite(x)) {
            diag_error(s->diag, e->span, "this constant expression overflows (its magnitude exceeds 1.8e308)");
            return value_error();
        }
        return value_number(x);
    }
    if ((a.kind != VAL_TENSOR && a.kind != VAL_NUMBER) || (b.kind != VAL_TENSOR && b.kind != VAL_NUMBER)) {
        const Value *bad = (a.kind != VAL_TENSOR && a.kind != VAL_NUMBER) ? &a : &b;
        const Expr *bad_expr = bad == &a ? e->lhs : e->rhs;
        if (bad->kind == VAL_TARGET)
            diag_error(s->diag, bad_expr->span, "the target can only be used in 'loss' and 'metric' statements");
        else
            diag_error(s->diag, bad_expr->span, "'%c' needs numbers or tensors, got %s", e->op, value_kind_name(bad->kind));
        return value_error();
    }
    OpSema os = sema_for_ops(s, scope);
    return ops_arithmetic_rule(&os, e, a, b);
}

/* A name that is not bound where a param's value uses it: declared later, or a tensor. */
static bool sema_param_name_error(Sema *s, const Expr *e) {
    for (const Stmt *st = s->ast->stmts; st; st = st->next) {
        if (!st->name || strcmp(st->name, e->text) != 0) continue;
        if (st->kind == STMT_PARAM) {
            diag_error(s->diag, e->span, "param '%s' is used before it is declared", e->text);
            diag_note(s->diag, st->name_span, "'%s' is declared here; params are evaluated in order", e->text);
            return true;
        }
        if (st->kind == STMT_INPUT || st->kind == STMT_TARGET || st->kind == STMT_ASSIGN) {
            diag_error(s->diag, e->span, "a param must be a compile-time constant, but '%s' is a tensor", e->text);
            diag_note(s->diag, st->name_span, "'%s' is declared here", e->text);
            return true;
        }
    }
    return false;
}

static Value sema_expr_inner(Sema *s, Scope *scope, const Expr *e);

/* Every expression goes through here: the limits that keep a hostile file from exhausting the
 * stack or the time are checked once, and after one was hit nothing more is analyzed. */
static Value sema_expr(Sema *s, Scope *scope, const Expr *e) {
    if (s->too_big) return value_error();
    if (s->graph->nodes.len >= SEMA_MAX_NODES) {
        diag_error(s->diag, e->span, "the model has more than %d operations; nnc stops here", SEMA_MAX_NODES);
        s->too_big = true;
        return value_error();
    }
    if (s->eval_depth >= SEMA_MAX_EVAL_DEPTH) {
        diag_error(s->diag, e->span, "blocks and expressions nested too deeply (more than %d levels)", SEMA_MAX_EVAL_DEPTH);
        s->too_big = true;
        return value_error();
    }
    s->eval_depth++;
    int first_node = s->graph->nodes.len;
    Value v = sema_expr_inner(s, scope, e);
    s->eval_depth--;
    if (s->observer && v.kind != VAL_ERROR) {
        SemaObservation o = {.expr = e, .instance = scope->prefix, .graph = s->graph, .first_node = first_node,
                             .node = v.kind == VAL_TENSOR || v.kind == VAL_TARGET ? graph_node(s->graph, v.node) : NULL,
                             .is_number = v.kind == VAL_NUMBER, .number = v.number};
        s->observer(s->observer_data, &o);
    }
    return v;
}

static Value sema_expr_inner(Sema *s, Scope *scope, const Expr *e) {
    switch (e->kind) {
    case EXPR_NUMBER:
        if (!isfinite(e->number)) {
            diag_error(s->diag, e->span, "number out of range (the largest is about 1.8e308)");
            return value_error();
        }
        return value_number(e->number);
    case EXPR_STRING: return (Value){.kind = VAL_STRING, .string = e->text};
    case EXPR_NAME: {
        Binding *b = sema_lookup(scope, e->text);
        if (b) return b->value;
        if (strcmp(e->text, "true") == 0) return (Value){.kind = VAL_BOOL, .boolean = true};
        if (strcmp(e->text, "false") == 0) return (Value){.kind = VAL_BOOL, .boolean = false};
        if (s->in_param && (ops_find_surface(e->text) || sema_find_def(s, e->text)))
            return (Value){.kind = VAL_OP, .string = e->text}; /* an op-valued param */
        if (ops_find_surface(e->text) || sema_find_def(s, e->text)) {
            diag_error(s->diag, e->span, "'%s' is %s; apply it with '->' or call it: x -> %s(...)", e->text,
                       ops_find_surface(e->text) ? "an operation" : "a block", e->text);
            return value_error();
        }
        if (s->in_param && !diag_muted(s->diag) && sema_param_name_error(s, e)) return value_error();
        if (s->in_param && !diag_muted(s->diag)) {
            /* A param's value may name an op or block: suggest those as well as the earlier params. */
            const char *guess = sema_guess_callee(s, e->text), *name_guess = sema_guess_name(s, scope, e->text);
            if (guess && strcmp(guess, "repeat") != 0)
                diag_error(s->diag, e->span, "unknown name '%s'; did you mean the %s '%s'?", e->text,
                           sema_find_def(s, guess) ? "block" : "operation", guess);
            else if (name_guess)
                diag_error(s->diag, e->span, "unknown name '%s'; did you mean '%s'?", e->text, name_guess);
            else
                diag_error(s->diag, e->span, "unknown name '%s'", e->text);
            diag_note(s->diag, SPAN_NONE, "a param's value is a number, a string, true or false, or the name of an operation or block");
            return value_error();
        }
        const char *guess = sema_guess_name(s, scope, e->text);
        if (guess)
            diag_error(s->diag, e->span, "unknown name '%s'; did you mean '%s'?", e->text, guess);
        else
            diag_error(s->diag, e->span, "unknown name '%s'", e->text);
        if (s->in_loss_or_metric && s->graph->target < 0)
            diag_note(s->diag, SPAN_NONE, "the model declares no target; declare one, e.g. 'target %s : class[10]'", e->text);
        return value_error();
    }
    case EXPR_CALL: return sema_call(s, scope, e);
    case EXPR_BINARY: return sema_binary(s, scope, e);
    case EXPR_NEGATE: {
        Value v = sema_expr(s, scope, e->lhs);
        if (v.kind == VAL_NUMBER) return value_number(-v.number);
        if (v.kind == VAL_TENSOR) {
            OpSema os = sema_for_ops(s, scope);
            return ops_negate_rule(&os, e, v);
        }
        if (v.kind != VAL_ERROR) diag_error(s->diag, e->span, "cannot negate %s", value_kind_name(v.kind));
        return value_error();
    }
    case EXPR_ERROR: return value_error();
    case EXPR_VALUE: return *e->value;
    }
    return value_error();
}

/* ---------------------------------------------------------------- declarations */

/* Evaluates a dimension list; every dimension a positive integer, the product bounded. */
static bool sema_dims(Sema *s, Scope *scope, const TypeSpec *type, Shape *out) {
    out->rank = 0;
    bool ok = true;
    double product = 1;
    for (const Arg *a = type->dims; a; a = a->next) {
        if (a->keyword) {
            diag_error(s->diag, a->keyword_span, "a shape takes dimensions only, not '%s='", a->keyword);
            ok = false;
            continue;
        }
        Value v = sema_expr(s, scope, a->value);
        if (v.kind == VAL_ERROR) {
            ok = false;
            continue;
        }
        if (v.kind != VAL_NUMBER || v.number != floor(v.number) || v.number < 1) {
            if (v.kind == VAL_NUMBER)
                diag_error(s->diag, a->value->span, "a dimension must be a positive integer, got %g", v.number);
            else
                diag_error(s->diag, a->value->span, "a dimension must be a positive integer, got %s", value_kind_name(v.kind));
            ok = false;
            continue;
        }
        if (out->rank == GRAPH_MAX_RANK) {
            diag_error(s->diag, a->value->span, "at most %d dimensions are supported", GRAPH_MAX_RANK);
            return false;
        }
        product *= v.number;
        out->dims[out->rank++] = (int64_t)fmin(v.number, 9e18);
    }
    if (ok && out->rank == 0) {
        diag_error(s->diag, type->span, "a shape needs at least one dimension, e.g. %s[10]", type->elem);
        return false;
    }
    /* Per-example tensors over 2^31 elements (8 GiB) are surely a typo; refusing them also keeps
     * every offset computation far from overflow. */
    if (ok && product > SEMA_MAX_ELEMENTS) {
        if (isfinite(product))
            diag_error(s->diag, type->span, "this shape has %.4g elements per example; nnc supports at most 2^31", product);
        else
            diag_error(s->diag, type->span, "this shape has more than 1e308 elements per example; nnc supports at most 2^31");
        return false;
    }
    return ok;
}

static bool sema_input(Sema *s, const Stmt *st) {
    Model *m = s->model;
    if (s->graph->input >= 0) {
        diag_error(s->diag, st->span, "a second 'input' declaration; nnc v1 models have exactly one input");
        diag_note(s->diag, graph_node(s->graph, s->graph->input)->span, "the first input is declared here");
        return false;
    }
    const char *elem = st->type->elem;
    Shape shape;
    if (strcmp(elem, "float") != 0 && strcmp(elem, "int") != 0) {
        const char *kinds[] = {"float", "int"};
        const char *guess = sema_closest(s, elem, kinds, 2);
        if (strcmp(elem, "class") == 0)
            diag_error(s->diag, st->type->elem_span, "an input cannot be 'class'; class ids are targets: 'target %s : class[N]'", st->name);
        else if (guess)
            diag_error(s->diag, st->type->elem_span, "unknown input type '%s'; did you mean '%s'?", elem, guess);
        else
            diag_error(s->diag, st->type->elem_span, "unknown input type '%s' (inputs are float[...] or int[t])", elem);
        return false;
    }
    if (!sema_dims(s, s->global, st->type, &shape)) return false;
    bool ids = strcmp(elem, "int") == 0;
    if (ids && shape.rank != 1) {
        diag_error(s->diag, st->type->span, "an int input is a sequence of token ids: int[t], one dimension");
        return false;
    }
    Node *n = graph_add(s->graph, OP_INPUT, st->span, NULL, 0, shape);
    n->layer = st->name;
    s->graph->input = n->id;
    m->input_name = st->name;
    m->input_kind = ids ? NNRT_INPUT_INT : NNRT_INPUT_FLOAT;
    m->input_shape = shape;
    sema_bind(s, s->global, st->name, st->name_span, tensor_value(n));
    return true;
}

static bool sema_target(Sema *s, const Stmt *st) {
    Model *m = s->model;
    if (s->graph->target >= 0) {
        diag_error(s->diag, st->span, "a second 'target' declaration; a model has one target");
        diag_note(s->diag, graph_node(s->graph, s->graph->target)->span, "the first target is declared here");
        return false;
    }
    const char *elem = st->type->elem;
    Shape shape;
    if (strcmp(elem, "class") != 0 && strcmp(elem, "float") != 0) {
        const char *kinds[] = {"class", "float"};
        const char *guess = sema_closest(s, elem, kinds, 2);
        if (guess)
            diag_error(s->diag, st->type->elem_span, "unknown target type '%s'; did you mean '%s'?", elem, guess);
        else
            diag_error(s->diag, st->type->elem_span, "unknown target type '%s' (targets are class[N] or float[...])", elem);
        return false;
    }
    if (!sema_dims(s, s->global, st->type, &shape)) return false;
    if (strcmp(elem, "class") == 0) {
        /* class[N]: one class id per example; class[t, N]: one per position (language models) */
        if (shape.rank != 1 && shape.rank != 2) {
            diag_error(s->diag, st->type->span, "class targets are class[N] (one id per example) or class[t, N] (one per position)");
            return false;
        }
        int64_t classes = shape.dims[shape.rank - 1];
        if (classes < 2) {
            diag_error(s->diag, st->type->span, "a class target needs at least 2 classes, got %lld", (long long)classes);
            return false;
        }
        m->target_kind = NNRT_TARGET_CLASS;
        m->target_classes = classes;
    } else {
        m->target_kind = NNRT_TARGET_FLOAT;
    }
    m->target_shape = shape;
    m->target_name = st->name;
    /* class targets hold ids: none per class, one per position for class[t, N] */
    Shape stored = shape;
    if (m->target_kind == NNRT_TARGET_CLASS) stored.rank--;
    Node *n = graph_add(s->graph, OP_TARGET, st->span, NULL, 0, stored);
    n->layer = st->name;
    s->graph->target = n->id;
    sema_bind(s, s->global, st->name, st->name_span, (Value){.kind = VAL_TARGET, .node = n->id});
    return true;
}

/* A loss or metric statement: the call must be one of `allowed`. */
static const Node *sema_objective(Sema *s, Scope *scope, const Stmt *st, const char *const *allowed, int allowed_count,
                                  const char *what) {
    const Expr *e = st->value;
    if (e->kind == EXPR_ERROR) return NULL;
    bool found = false;
    /* `loss l(h, y)` with `param l = mse`: the op the param names. */
    const Binding *chosen = e->kind == EXPR_CALL ? sema_lookup(scope, e->text) : NULL;
    if (chosen && chosen->value.kind != VAL_OP) chosen = NULL;
    const char *callee = chosen ? chosen->value.string : e->kind == EXPR_CALL ? e->text : NULL;
    if (e->kind == EXPR_CALL)
        for (int i = 0; i < allowed_count; i++)
            if (strcmp(callee, allowed[i]) == 0) found = true;
    if (!found) {
        const char *guess = e->kind == EXPR_CALL ? sema_closest(s, e->text, allowed, allowed_count) : NULL;
        char list[160] = "";
        for (int i = 0; i < allowed_count; i++) {
            strncat(list, allowed[i], sizeof list - strlen(list) - 1);
            if (i + 1 < allowed_count) strncat(list, ", ", sizeof list - strlen(list) - 1);
        }
        if (chosen) {
            diag_error(s->diag, e->name_span, "a '%s' statement needs one of: %s; '%s' is '%s'", what, list, e->text, callee);
            sema_note_choice(s->diag, chosen, sema_op_shown(s->arena, chosen));
        } else if (guess)
            diag_error(s->diag, e->kind == EXPR_CALL ? e->name_span : e->span, "unknown %s '%s'; did you mean '%s'?", what, e->text, guess);
        else
            diag_error(s->diag, e->kind == EXPR_CALL ? e->name_span : e->span, "a '%s' statement needs one of: %s", what, list);
        return NULL;
    }
    /* loss cross_entropy(y, h): the target and the prediction swapped, said once. */
    const Arg *first = e->args, *second = first ? first->next : NULL;
    if (first && second && !second->next && !first->keyword && !second->keyword && first->value->kind == EXPR_NAME &&
        second->value->kind == EXPR_NAME) {
        const Binding *a = sema_lookup(scope, first->value->text), *b = sema_lookup(scope, second->value->text);
        if (a && b && a->value.kind == VAL_TARGET && b->value.kind == VAL_TENSOR) {
            diag_error(s->diag, span_join(first->value->span, second->value->span),
                       "the arguments of %s are swapped: the prediction comes first, then the target", e->text);
            diag_note(s->diag, SPAN_NONE, "write %s(%s, %s)", e->text, second->value->text, first->value->text);
            return NULL;
        }
    }
    s->in_loss_or_metric = true;
    Value v = sema_call(s, scope, e);
    s->in_loss_or_metric = false;
    if (v.kind != VAL_TENSOR) return NULL;
    return graph_node(s->graph, v.node);
}

static const char *const sema_stmt_keywords[] = {
    [STMT_MODEL] = "model", [STMT_PARAM] = "param", [STMT_INPUT] = "input", [STMT_TARGET] = "target",
    [STMT_DEF] = "def", [STMT_RETURN] = "return", [STMT_LOSS] = "loss", [STMT_METRIC] = "metric",
    [STMT_OUTPUT] = "output", [STMT_TRAIN] = "train", [STMT_ASSIGN] = "",
};

static void sema_note_tensor_binding(Sema *s, const Stmt *st, int node) {
    if (s->tensor_binding_count == s->tensor_binding_cap) {
        int cap = s->tensor_binding_cap ? 2 * s->tensor_binding_cap : 64;
        TensorBinding *grown = ARENA_ARRAY(s->arena, TensorBinding, cap);
        if (s->tensor_binding_count) memcpy(grown, s->tensor_bindings, sizeof *grown * (size_t)s->tensor_binding_count);
        s->tensor_bindings = grown;
        s->tensor_binding_cap = cap;
    }
    s->tensor_bindings[s->tensor_binding_count++] = (TensorBinding){st->name, st->name_span, node};
}

static void sema_stmts(Sema *s, Scope *scope, const Stmt *stmts, Value *returned) {
    Model *m = s->model;
    bool top = scope == s->global;
    for (const Stmt *st = stmts; st && !s->too_big; st = st->next) {
        if (!top && st->kind == STMT_DEF) continue; /* reported with the definitions */
        if (!top && st->kind != STMT_ASSIGN && st->kind != STMT_RETURN) {
            diag_error(s->diag, st->span, "'%s' cannot appear inside a block; a block holds assignments and 'return'",
                       sema_stmt_keywords[st->kind]);
            continue;
        }
        switch (st->kind) {
        case STMT_MODEL:
        case STMT_PARAM:
        case STMT_DEF:
        case STMT_TRAIN:
            break; /* handled before the walk */
        case STMT_INPUT:
        case STMT_TARGET:
            /* A failed declaration still binds its name, so its uses do not report again. */
            if (!(st->kind == STMT_INPUT ? sema_input(s, st) : sema_target(s, st)) && !sema_lookup(scope, st->name))
                sema_bind(s, scope, st->name, st->name_span, value_error());
            break;
        case STMT_ASSIGN: {
            Value v = sema_expr(s, scope, st->value);
            if (v.kind == VAL_TARGET) {
                diag_error(s->diag, st->value->span, "the target cannot be bound to another name");
                v = value_error();
            }
            sema_bind(s, scope, st->name, st->name_span, v);
            if (v.kind == VAL_TENSOR) sema_note_tensor_binding(s, st, v.node);
            break;
        }
        case STMT_RETURN: {
            if (top) {
                diag_error(s->diag, st->span, "'return' outside a block");
                break;
            }
            Value v = sema_expr(s, scope, st->value);
            if (v.kind != VAL_TENSOR && v.kind != VAL_ERROR) {
                diag_error(s->diag, st->value->span, "a block must return a tensor, got %s", value_kind_name(v.kind));
                v = value_error();
            }
            if (v.kind == VAL_ERROR) v.number = 0; /* a return was seen, even if its value failed */
            *returned = v;
            if (st->next) diag_error(s->diag, st->next->span, "statement after 'return' is never reached");
            return;
        }
        case STMT_LOSS: {
            const char *losses[32];
            int loss_count = ops_surface_names(OPS_LOSS, losses, 32);
            if (s->graph->loss >= 0) {
                diag_error(s->diag, st->span, "a second 'loss' statement; a model has exactly one loss");
                diag_note(s->diag, graph_node(s->graph, s->graph->loss)->span, "the loss is already defined here");
                break;
            }
            const Node *n = sema_objective(s, scope, st, losses, loss_count, "loss");
            if (!n) {
                s->graph->loss = -2; /* seen, but broken: do not report it missing */
                break;
            }
            s->graph->loss = n->id;
            m->loss_name = graph_op_names[n->op];
            break;
        }
        case STMT_METRIC: {
            const char *metrics[32];
            int metric_count = ops_surface_names(OPS_METRIC, metrics, 32);
            const Node *n = sema_objective(s, scope, st, metrics, metric_count, "metric");
            if (!n) break;
            bool twice = false;
            for (int i = 0; i < s->graph->metrics.len && !twice; i++) {
                const Node *other = s->graph->metrics.items[i];
                if (other->op == n->op) {
                    diag_error(s->diag, st->span, "metric '%s' is reported twice", ops_node_label(n));
                    diag_note(s->diag, other->span, "first reported here");
                    twice = true;
                }
            }
            if (!twice) ptrvec_push(s->arena, &s->graph->metrics, (void *)n);
            break;
        }
        case STMT_OUTPUT: {
            if (s->output_stmt) {
                diag_error(s->diag, st->span, "a second 'output' statement; a model has one output");
                diag_note(s->diag, s->output_stmt->span, "the output is already chosen here");
                break;
            }
            s->output_stmt = st;
            Binding *b = sema_lookup(scope, st->name);
            if (!b) {
                const char *guess = sema_guess_name(s, scope, st->name);
                if (guess)
                    diag_error(s->diag, st->name_span, "unknown name '%s'; did you mean '%s'?", st->name, guess);
                else
                    diag_error(s->diag, st->name_span, "unknown name '%s'", st->name);
            } else if (b->value.kind != VAL_TENSOR) {
                if (b->value.kind != VAL_ERROR)
                    diag_error(s->diag, st->name_span, "'output' needs a tensor, but '%s' is %s", st->name, value_kind_name(b->value.kind));
            } else {
                s->graph->output = b->value.node;
            }
            break;
        }
        }
    }
}

/* ---------------------------------------------------------------- blocks never called */

/* Unknown names and operations in an expression of a block that is never called. */
static void sema_check_names(Sema *s, Scope *locals, const Expr *e) {
    switch (e->kind) {
    case EXPR_NAME: {
        if (sema_lookup(locals, e->text) || strcmp(e->text, "true") == 0 || strcmp(e->text, "false") == 0 ||
            ops_find_surface(e->text) || sema_find_def(s, e->text))
            return;
        const char *name_guess = sema_guess_name(s, locals, e->text);
        if (name_guess)
            diag_error(s->diag, e->span, "unknown name '%s'; did you mean '%s'?", e->text, name_guess);
        else
            diag_error(s->diag, e->span, "unknown name '%s'", e->text);
        return;
    }
    case EXPR_CALL: {
        bool known = ops_find_surface(e->text) || sema_find_def(s, e->text) || sema_lookup(locals, e->text) ||
                     ops_is_planned(e->text) || strcmp(e->text, "repeat") == 0;
        if (!known) {
            const char *guess = sema_guess_callee(s, e->text);
            if (guess)
                diag_error(s->diag, e->name_span, "unknown operation '%s'; did you mean '%s'?", e->text, guess);
            else
                diag_error(s->diag, e->name_span, "unknown operation '%s'", e->text);
        }
        for (const Arg *a = e->args; a; a = a->next) sema_check_names(s, locals, a->value);
        return;
    }
    case EXPR_BINARY:
        sema_check_names(s, locals, e->lhs);
        sema_check_names(s, locals, e->rhs);
        return;
    case EXPR_NEGATE: sema_check_names(s, locals, e->lhs); return;
    default: return;
    }
}

/* Blocks are checked when they are expanded; one that is never called would hide its mistakes.
 * Without an input there are no shapes, but names, operations and the block's form can be
 * checked, with the same messages an instance would give. */
static void sema_check_unused_def(Sema *s, const Stmt *def) {
    Scope *locals = ARENA_NEW(s->arena, Scope);
    locals->parent = s->global;
    locals->prefix = "";
    for (const DefParam *p = def->params; p; p = p->next) {
        if (p->default_value) sema_check_names(s, s->global, p->default_value);
        sema_bind(s, locals, p->name, p->span, value_error());
    }
    bool returned = false;
    for (const Stmt *st = def->body; st && !returned; st = st->next) {
        if (st->kind == STMT_DEF) continue; /* reported with the definitions */
        if (st->kind != STMT_ASSIGN && st->kind != STMT_RETURN) {
            diag_error(s->diag, st->span, "'%s' cannot appear inside a block; a block holds assignments and 'return'",
                       sema_stmt_keywords[st->kind]);
            continue;
        }
        sema_check_names(s, locals, st->value);
        if (st->kind == STMT_ASSIGN) sema_bind(s, locals, st->name, st->name_span, value_error());
        if (st->kind == STMT_RETURN) {
            returned = true;
            if (st->next) diag_error(s->diag, st->next->span, "statement after 'return' is never reached");
        }
    }
    if (!returned) {
        diag_error(s->diag, def->close_span, "block '%s' ends without 'return'", def->name);
        diag_note(s->diag, SPAN_NONE, "a block ends with 'return EXPR', the tensor it produces");
    }
}

/* ---------------------------------------------------------------- the train block */

/* settings_check.c checks the train block against the settings table shared with the runtime;
 * these give it sema's evaluation, binding and suggestions in the file's scope. */
Arena *sema_arena(Sema *s) { return s->arena; }
Diag *sema_diag(Sema *s) { return s->diag; }
Value sema_eval_global(Sema *s, const Expr *e) { return sema_expr(s, s->global, e); }
bool sema_bind_global(Sema *s, const Expr *call, const ArgSpec *spec, Bound *out) {
    return sema_bind_args(s, s->global, call, spec, false, out);
}
const char *sema_suggest(Sema *s, const char *word, const char *const *candidates, int count) {
    return sema_closest(s, word, candidates, count);
}
const char *sema_value_kind(ValueKind kind) { return value_kind_name(kind); }

/* ---------------------------------------------------------------- the whole file */

static void sema_params(Sema *s, const Ast *ast) {
    for (const Stmt *st = ast->stmts; st; st = st->next) {
        if (st->kind != STMT_PARAM) continue;
        Binding *prev = map_get(&s->global->names, st->name);
        if (prev) {
            diag_error(s->diag, st->name_span, "param '%s' is declared twice", st->name);
            diag_note(s->diag, prev->span, "first declared here");
            continue;
        }
        s->in_param = true;
        Value v = sema_expr(s, s->global, st->value);
        s->in_param = false;
        const Define *define = NULL;
        for (int i = 0; i < s->define_count; i++) {
            Define *d = &s->defines[i];
            if (strcmp(d->name, st->name) != 0) continue;
            d->used = true;
            define = d;
            char *end;
            double x = strtod(d->value_text, &end);
            bool numeric = end != d->value_text && *end == '\0';
            bool boolean = strcmp(d->value_text, "true") == 0 || strcmp(d->value_text, "false") == 0;
            /* The override must be the same kind of constant as the value it replaces. */
            bool list = strchr(d->value_text, ',') != NULL;
            if (numeric && !isfinite(x)) {
                diag_cmdline_error(s->diag, "-D %s=%s: the value is not a finite number", d->name, d->value_text);
                v = value_error();
            } else if (v.kind == VAL_OP) {
                /* Any op or block may replace an op-valued param; its arguments are checked where applied. */
                if (ops_find_surface(d->value_text) || sema_find_def(s, d->value_text)) {
                    v.string = d->value_text;
                } else {
                    const char *guess = list ? NULL : sema_guess_callee(s, d->value_text);
                    if (guess)
                        diag_cmdline_error(s->diag, "-D %s=%s: param '%s' names an operation or block, and '%s' is neither; did you mean '%s'?",
                                           d->name, d->value_text, d->name, d->value_text, guess);
                    else
                        diag_cmdline_error(s->diag, "-D %s=%s: param '%s' names an operation or block, and '%s' is neither",
                                           d->name, d->value_text, d->name, d->value_text);
                    diag_note(s->diag, st->value->span, "'%s' is declared here", d->name);
                    if (list)
                        diag_note(s->diag, SPAN_NONE, "a list of values is a sweep: nnc compare -D %s=%s FILE.nn", d->name, d->value_text);
                    v = value_error();
                }
            } else if (v.kind == VAL_NUMBER && !numeric) {
                diag_cmdline_error(s->diag, "-D %s=%s: param '%s' is a number, but '%s' is not", d->name, d->value_text,
                                   d->name, d->value_text);
                if (list)
                    diag_note(s->diag, SPAN_NONE, "a list of values is a sweep: nnc compare -D %s=%s FILE.nn", d->name, d->value_text);
                v = value_error();
            } else if (v.kind == VAL_BOOL && !boolean) {
                diag_cmdline_error(s->diag, "-D %s=%s: param '%s' is true or false, but the value is '%s'", d->name,
                                   d->value_text, d->name, d->value_text);
                v = value_error();
            } else if (numeric && v.kind != VAL_STRING) {
                v = value_number(x);
            } else if (boolean && v.kind != VAL_STRING) {
                v = (Value){.kind = VAL_BOOL, .boolean = d->value_text[0] == 't'};
            } else if (v.kind != VAL_ERROR) {
                v = (Value){.kind = VAL_STRING, .string = d->value_text};
            }
        }
        if (v.kind == VAL_TENSOR || v.kind == VAL_TARGET) {
            diag_error(s->diag, st->value->span, "a param must be a constant, got %s", value_kind_name(v.kind));
            v = value_error();
        }
        Binding *b = sema_bind(s, s->global, st->name, st->name_span, v);
        b->value_span = st->value->span;
        b->define = define;
    }
    for (int i = 0; i < s->define_count; i++) {
        if (s->defines[i].used) continue;
        const char *names[256];
        int n = 0;
        for (const Stmt *st = ast->stmts; st && n < 256; st = st->next)
            if (st->kind == STMT_PARAM) names[n++] = st->name;
        const char *guess = sema_closest(s, s->defines[i].name, names, n);
        if (guess)
            diag_cmdline_error(s->diag, "-D %s: the model has no param '%s'; did you mean '%s'?", s->defines[i].name,
                               s->defines[i].name, guess);
        else
            diag_cmdline_error(s->diag, "-D %s: the model has no param '%s'", s->defines[i].name, s->defines[i].name);
    }
}

/* Weights of a layer feeding an activation that asks for it get He initialization, the others
 * keep their layer's choice (Glorot): the activations and layers say which (OPK_HE_INIT,
 * OPK_INIT_BY_ACTIVATION). */
static void sema_choose_init(Graph *g) {
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = graph_node(g, i);
        if (!(ops_kind_flags(n->op) & OPK_HE_INIT)) continue;
        const Node *producer = graph_node(g, n->inputs[0]);
        if ((ops_kind_flags(producer->op) & OPK_INIT_BY_ACTIVATION) && producer->weight >= 0)
            graph_param(g, producer->weight)->init = NNRT_INIT_HE_UNIFORM;
    }
}

/* Does the train block read its data from a csv text column (csv(..., text=...))? Then token id
 * 0 is padding, which the ops that honour it learn from sema_input_is_padded. Read from the AST
 * before the network is analyzed (the train block is checked after it). */
static bool sema_data_is_padded_text(const Stmt *train) {
    for (const Stmt *item = train ? train->body : NULL; item; item = item->next) {
        const Expr *v = item->value;
        if (!item->name || strcmp(item->name, "data") != 0 || !v || v->kind != EXPR_CALL || strcmp(v->text, "csv") != 0) continue;
        for (const Arg *a = v->args; a; a = a->next)
            if (a->keyword && strcmp(a->keyword, "text") == 0) return true;
    }
    return false;
}

bool sema_input_is_padded(OpSema *os) { return os->sema->padded_text && os->model->input_kind == NNRT_INPUT_INT; }

Model *sema_analyze(Arena *arena, Diag *diag, const Ast *ast, Define *defines, int define_count, const char *default_name) {
    return sema_analyze_observed(arena, diag, ast, defines, define_count, default_name, NULL, NULL);
}

Model *sema_analyze_observed(Arena *arena, Diag *diag, const Ast *ast, Define *defines, int define_count,
                             const char *default_name, SemaObserver *observer, void *observer_data) {
    Sema sema = {.arena = arena, .diag = diag, .defines = defines, .define_count = define_count,
                 .observer = observer, .observer_data = observer_data};
    Sema *s = &sema;
    s->graph = graph_new(arena);
    s->model = ARENA_NEW(arena, Model);
    Model *m = s->model;
    m->graph = s->graph;
    m->name = default_name;
    settings_defaults(m);
    s->global = ARENA_NEW(arena, Scope);
    s->global->prefix = "";
    s->ast = ast;
    diag->context_fn = sema_instance_context;
    diag->context_data = NULL;

    const Stmt *model_stmt = NULL, *train_stmt = NULL;
    for (const Stmt *st = ast->stmts; st; st = st->next) {
        if (st->kind == STMT_MODEL) {
            if (model_stmt) {
                diag_error(diag, st->span, "a second 'model' declaration");
                diag_note(diag, model_stmt->span, "the model is already named here");
            } else {
                model_stmt = st;
                m->name = st->name;
            }
        } else if (st->kind == STMT_DEF) {
            const Stmt *prev = sema_find_def(s, st->name);
            if (prev) {
                diag_error(diag, st->name_span, "block '%s' is defined twice", st->name);
                diag_note(diag, prev->name_span, "first defined here");
            } else if (ops_find_surface(st->name)) {
                diag_error(diag, st->name_span, "a block cannot be named '%s': that is an operation", st->name);
            } else if (strcmp(st->name, "repeat") == 0) {
                diag_error(diag, st->name_span, "a block cannot be named 'repeat': that is the form repeat(n, BLOCK, args...)");
            } else {
                ptrvec_push(arena, &s->defs, (void *)st);
                map_put(arena, &s->defs_by_name, st->name, (void *)st);
            }
            NameMap params = {0};
            for (const DefParam *p = st->params; p; p = p->next) {
                const DefParam *first = map_get(&params, p->name);
                if (first) {
                    diag_error(diag, p->span, "block '%s' has two parameters named '%s'", st->name, p->name);
                    diag_note(diag, first->span, "the first is here");
                } else {
                    map_put(arena, &params, p->name, (void *)p);
                }
            }
            for (const Stmt *inner = st->body; inner; inner = inner->next)
                if (inner->kind == STMT_DEF) diag_error(diag, inner->span, "blocks cannot be defined inside blocks");
            if (!st->params)
                diag_error(diag, st->name_span, "block '%s' needs at least one parameter, its input tensor", st->name);
        } else if (st->kind == STMT_TRAIN) {
            if (train_stmt) {
                diag_error(diag, st->span, "a second 'train' block");
                diag_note(diag, train_stmt->span, "the first train block is here");
            } else {
                train_stmt = st;
            }
        }
    }
    sema_params(s, ast);
    s->padded_text = sema_data_is_padded_text(train_stmt);
    sema_stmts(s, s->global, ast->stmts, NULL);
    for (int i = 0; i < s->defs.len && !s->too_big; i++) {
        const Stmt *def = s->defs.items[i];
        if (!map_get(&s->instantiated, def->name)) sema_check_unused_def(s, def);
    }
    if (train_stmt) settings_check_train(s, m, train_stmt);

    Graph *g = s->graph;
    bool input_declared = false;
    for (const Stmt *st = ast->stmts; st; st = st->next) input_declared |= st->kind == STMT_INPUT;
    /* Missing declarations have no place to point at: the messages carry the file name only. */
    if (!ast->stmts) {
        diag_error(diag, SPAN_NONE, "the file contains no statements");
        diag_note(diag, SPAN_NONE, "a model needs at least an 'input', a 'target' and a 'loss' statement");
    } else if (!s->too_big) {
        if (!input_declared) {
            diag_error(diag, SPAN_NONE, "the model declares no input");
            diag_note(diag, SPAN_NONE, "declare one, e.g. 'input image : float[1, 28, 28]'");
        }
        if (g->loss == -1) {
            diag_error(diag, SPAN_NONE, "the model has no 'loss' statement");
            diag_note(diag, SPAN_NONE, "add one, e.g. 'loss cross_entropy(logits, label)'");
        }
    }
    diag_flush(diag);
    diag->context_fn = NULL;
    diag->context_data = NULL;
    if (!m->optimizer) settings_default_optimizer(arena, m);
    bool *used = s->too_big ? NULL : warnings_check(arena, diag, g, s->tensor_bindings, s->tensor_binding_count, !diag->error_count);
    diag_print(diag);
    if (diag->error_count) return NULL;
    if (used) graph_prune(g, used); /* what reaches no loss, metric or output is not built */

    g->forward_count = g->nodes.len;
    if (g->output < 0) {
        const Node *loss = graph_node(g, g->loss);
        g->output = loss->inputs[0];
        m->output_kind = ops_kind_flags(loss->op) & OPK_OUTPUT_PROBABILITIES ? NNRT_OUTPUT_PROBABILITIES : NNRT_OUTPUT_VALUES;
    }
    graph_node(g, g->loss)->sum_slot = 0;
    m->metric_count = g->metrics.len;
    m->metric_names = ARENA_ARRAY(arena, const char *, g->metrics.len + 1);
    m->metric_reduce = ARENA_ARRAY(arena, int, g->metrics.len + 1);
    for (int i = 0; i < g->metrics.len; i++) {
        Node *n = g->metrics.items[i];
        n->sum_slot = 1 + i;
        m->metric_names[i] = ops_node_label(n); /* binary accuracy is reported as accuracy */
        m->metric_reduce[i] = ops_kind_flags(n->op) & OPK_METRIC_ROOT_MEAN ? NNRT_METRIC_ROOT_MEAN : NNRT_METRIC_MEAN;
    }
    sema_choose_init(g);
    return m;
}
