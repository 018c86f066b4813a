/* lsp_index.c — one document's analysis for the language server (lsp_index.h). The front end is
 * the compiler's own: parse_source and sema_analyze_observed, with diagnostics collected through
 * a Diag sink instead of printed, and sema's observer recording each expression's value (its
 * shape, and the parameters and FLOPs of the nodes it added) so that hover can show them. */
#include "lsp_index.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_settings.h"
#include "ops.h"
#include "parse.h"
#include "source.h"

enum { LSP_MAX_DOCUMENT_BYTES = 4 << 20 }; /* as source_read: a .nn file is a model, not data */

#define GROW(ix, array, count, cap)                                                  \
    do {                                                                             \
        if ((count) == (cap)) {                                                      \
            int grown_cap = (cap) ? 2 * (cap) : 16;                                  \
            void *grown = arena_alloc((ix)->arena, sizeof *(array) * (size_t)grown_cap); \
            if (count) memcpy(grown, (array), sizeof *(array) * (size_t)(count));    \
            (array) = grown;                                                         \
            (cap) = grown_cap;                                                       \
        }                                                                            \
    } while (0)

/* ---------------------------------------------------------------- building */

typedef struct Builder {
    LspIndex *ix;
    /* expression -> index of its latest value (open addressing; keys are Expr pointers) */
    const Expr **keys;
    int *slots;
    int table_cap, table_used;
} Builder;

static unsigned ptr_hash(const void *p) {
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0xed5ad4bbu;
    x ^= x >> 11;
    return (unsigned)x;
}

static void table_put(Builder *b, const Expr *e, int value) {
    if (2 * (b->table_used + 1) > b->table_cap) {
        int cap = b->table_cap ? 2 * b->table_cap : 256;
        const Expr **keys = calloc((size_t)cap, sizeof *keys);
        int *slots = calloc((size_t)cap, sizeof *slots);
        if (!keys || !slots) { free(keys); free(slots); return; }
        for (int i = 0; i < b->table_cap; i++) {
            if (!b->keys[i]) continue;
            unsigned h = ptr_hash(b->keys[i]) & (unsigned)(cap - 1);
            while (keys[h]) h = (h + 1) & (unsigned)(cap - 1);
            keys[h] = b->keys[i];
            slots[h] = b->slots[i];
        }
        free(b->keys);
        free(b->slots);
        b->keys = keys;
        b->slots = slots;
        b->table_cap = cap;
    }
    unsigned h = ptr_hash(e) & (unsigned)(b->table_cap - 1);
    while (b->keys[h] && b->keys[h] != e) h = (h + 1) & (unsigned)(b->table_cap - 1);
    if (!b->keys[h]) b->table_used++;
    b->keys[h] = e;
    b->slots[h] = value;
}

static int table_get(const Builder *b, const Expr *e) {
    if (!b->table_cap) return -1;
    unsigned h = ptr_hash(e) & (unsigned)(b->table_cap - 1);
    while (b->keys[h]) {
        if (b->keys[h] == e) return b->slots[h];
        h = (h + 1) & (unsigned)(b->table_cap - 1);
    }
    return -1;
}

/* The nodes an expression added itself start after its operands' nodes: those were added while
 * evaluating the operands, which sema does first. */
static int own_first_node(const Builder *b, const Expr *e, int first) {
    const Expr *operands[OPS_MAX_ARGS + 2];
    int count = 0;
    if (e->kind == EXPR_CALL) {
        for (const Arg *a = e->args; a && count < OPS_MAX_ARGS; a = a->next) operands[count++] = a->value;
    } else if (e->kind == EXPR_BINARY || e->kind == EXPR_NEGATE) {
        if (e->lhs) operands[count++] = e->lhs;
        if (e->rhs) operands[count++] = e->rhs;
    }
    for (int i = 0; i < count; i++) {
        int v = table_get(b, operands[i]);
        if (v >= 0 && b->ix->values[v].node_end > first) first = b->ix->values[v].node_end;
    }
    return first;
}

static void lsp_observe(void *data, const SemaObservation *o) {
    Builder *b = data;
    LspIndex *ix = b->ix;
    GROW(ix, ix->values, ix->value_count, ix->value_cap);
    LspValue *v = &ix->values[ix->value_count];
    *v = (LspValue){.expr = o->expr, .instance = o->instance ? o->instance : "", .is_number = o->is_number,
                    .number = o->number, .node_first = o->first_node, .node_end = o->graph->nodes.len};
    if (o->node) {
        v->is_tensor = true;
        v->shape = o->node->shape;
        v->layer = o->node->layer;
    }
    for (int id = own_first_node(b, o->expr, o->first_node); id < v->node_end; id++) {
        const Node *n = graph_node(o->graph, id);
        if (n->weight >= 0) v->params += graph_param(o->graph, n->weight)->size;
        if (n->bias >= 0) v->params += graph_param(o->graph, n->bias)->size;
        const OpFamily *family = ops_family(n->op);
        int64_t backward = 0;
        if (family && family->flops) v->flops += family->flops(o->graph, n, &backward);
    }
    table_put(b, o->expr, ix->value_count);
    ix->value_count++;
}

static void lsp_sink(void *data, DiagKind kind, Span span, const char *message) {
    LspIndex *ix = data;
    if (kind == DIAG_KIND_NOTE) {
        if (!ix->diagnostic_count) return; /* a note always follows its diagnostic */
        LspDiagnostic *d = &ix->diagnostics[ix->diagnostic_count - 1];
        GROW(ix, d->notes, d->note_count, d->note_cap);
        d->notes[d->note_count++] = (LspNote){span, arena_strdup(ix->arena, message)};
        return;
    }
    GROW(ix, ix->diagnostics, ix->diagnostic_count, ix->diagnostic_cap);
    ix->diagnostics[ix->diagnostic_count++] = (LspDiagnostic){.kind = kind, .span = span, .message = arena_strdup(ix->arena, message)};
}

LspIndex *lsp_index_build(const char *path, const char *text, int length) {
    Arena *arena = arena_new();
    LspIndex *ix = ARENA_NEW(arena, LspIndex);
    ix->arena = arena;
    char *copy = arena_alloc(arena, (size_t)length + 1);
    memcpy(copy, text, (size_t)length);
    ix->text = copy;
    ix->length = length;
    int lines = 1;
    for (int i = 0; i < length; i++) lines += copy[i] == '\n';
    ix->line_starts = ARENA_ARRAY(arena, int, lines);
    ix->line_count = 0;
    ix->line_starts[ix->line_count++] = 0;
    for (int i = 0; i < length; i++)
        if (copy[i] == '\n') ix->line_starts[ix->line_count++] = i + 1;
    if (length > LSP_MAX_DOCUMENT_BYTES) {
        lsp_sink(ix, DIAG_KIND_ERROR, SPAN_NONE, "the document is larger than 4 MiB; nnc reads .nn files up to 4 MiB");
        return ix;
    }
    Diag diag;
    diag_init(&diag, path, copy, length, NULL);
    diag.sink = lsp_sink;
    diag.sink_data = ix;
    ix->ast = parse_source(arena, &diag);
    if (!diag.error_count && ix->ast) {
        Builder b = {.ix = ix};
        ix->model = sema_analyze_observed(arena, &diag, ix->ast, NULL, 0, source_model_name(arena, path), lsp_observe, &b);
        free(b.keys);
        free(b.slots);
    }
    diag_print(&diag); /* frees the printed records (nothing is written: out is NULL) */
    return ix;
}

void lsp_index_free(LspIndex *ix) {
    if (ix) arena_free(ix->arena);
}

/* ---------------------------------------------------------------- positions */

/* UTF-16 code units of the UTF-8 text [from, to) (LSP's default position encoding). */
static int utf16_units(const char *s, int from, int to) {
    int units = 0;
    for (int i = from; i < to; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte */
        units += c >= 0xF0 ? 2 : 1;       /* beyond the BMP: a surrogate pair */
    }
    return units;
}

void lsp_position(const LspIndex *ix, int offset, int *line, int *character) {
    if (offset < 0) offset = 0;
    if (offset > ix->length) offset = ix->length;
    int lo = 0, hi = ix->line_count - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (ix->line_starts[mid] <= offset) lo = mid;
        else hi = mid - 1;
    }
    *line = lo;
    *character = utf16_units(ix->text, ix->line_starts[lo], offset);
}

int lsp_offset(const LspIndex *ix, int line, int character) {
    if (line < 0) return 0;
    if (line >= ix->line_count) return ix->length;
    int i = ix->line_starts[line];
    int units = 0;
    while (i < ix->length && ix->text[i] != '\n' && units < character) {
        unsigned char c = (unsigned char)ix->text[i];
        int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        units += n == 4 ? 2 : 1;
        i += n;
        if (i > ix->length) i = ix->length;
    }
    return i;
}

/* ---------------------------------------------------------------- what is at an offset */

typedef enum HitKind { HIT_NONE, HIT_NAME, HIT_CALL, HIT_KEYWORD, HIT_STMT_NAME, HIT_DEF_PARAM } HitKind;

typedef struct Hit {
    HitKind kind;
    const Expr *expr;       /* NAME, CALL, KEYWORD (the call) */
    const Arg *arg;         /* KEYWORD */
    const Stmt *stmt;       /* STMT_NAME */
    const DefParam *param;  /* DEF_PARAM */
    const Stmt *def;        /* the enclosing block, or NULL */
    Span span;
} Hit;

static bool within(Span s, int offset) { return s.begin >= 0 && offset >= s.begin && offset <= s.end; }

static bool find_in_expr(const Expr *e, int offset, const Stmt *def, Hit *hit, int depth) {
    /* a piped call's span may start at its name, after its first argument: no pruning by span */
    if (!e || depth > 10000) return false;
    if (e->kind == EXPR_CALL) {
        for (const Arg *a = e->args; a; a = a->next) {
            if (a->keyword && within(a->keyword_span, offset)) {
                *hit = (Hit){.kind = HIT_KEYWORD, .expr = e, .arg = a, .def = def, .span = a->keyword_span};
                return true;
            }
            if (find_in_expr(a->value, offset, def, hit, depth + 1)) return true;
        }
        /* the name, or the `->` before it */
        int from = e->name_span.begin;
        if (e->piped && e->args && e->args->value) from = e->args->value->span.end;
        if (within((Span){from, e->name_span.end}, offset)) {
            *hit = (Hit){.kind = HIT_CALL, .expr = e, .def = def, .span = e->name_span};
            return true;
        }
        return false;
    }
    if (e->kind == EXPR_BINARY || e->kind == EXPR_NEGATE)
        return find_in_expr(e->lhs, offset, def, hit, depth + 1) || find_in_expr(e->rhs, offset, def, hit, depth + 1);
    if (e->kind == EXPR_NAME && within(e->span, offset)) {
        *hit = (Hit){.kind = HIT_NAME, .expr = e, .def = def, .span = e->span};
        return true;
    }
    return false;
}

static bool find_in_stmts(const Stmt *stmts, int offset, const Stmt *def, Hit *hit) {
    for (const Stmt *st = stmts; st; st = st->next) {
        if (st->name && within(st->name_span, offset) && st->kind != STMT_OUTPUT) {
            *hit = (Hit){.kind = HIT_STMT_NAME, .stmt = st, .def = def, .span = st->name_span};
            return true;
        }
        if (st->kind == STMT_OUTPUT && within(st->name_span, offset)) {
            /* `output NAME` names a binding: treat it like a use of the name */
            *hit = (Hit){.kind = HIT_STMT_NAME, .stmt = st, .def = def, .span = st->name_span};
            return true;
        }
        if (st->kind == STMT_DEF) {
            for (const DefParam *p = st->params; p; p = p->next) {
                if (within(p->span, offset)) {
                    *hit = (Hit){.kind = HIT_DEF_PARAM, .param = p, .def = st, .span = p->span};
                    return true;
                }
                if (find_in_expr(p->default_value, offset, st, hit, 0)) return true;
            }
            if (find_in_stmts(st->body, offset, st, hit)) return true;
            continue;
        }
        if (st->kind == STMT_TRAIN) {
            if (find_in_stmts(st->body, offset, def, hit)) return true;
            continue;
        }
        if (find_in_expr(st->value, offset, def, hit, 0)) return true;
        if (st->type)
            for (const Arg *a = st->type->dims; a; a = a->next)
                if (find_in_expr(a->value, offset, def, hit, 0)) return true;
    }
    return false;
}

static bool find_hit(const LspIndex *ix, int offset, Hit *hit) {
    *hit = (Hit){0};
    return ix->ast && find_in_stmts(ix->ast->stmts, offset, NULL, hit);
}

static const Stmt *find_def(const LspIndex *ix, const char *name) {
    if (!ix->ast) return NULL;
    for (const Stmt *st = ix->ast->stmts; st; st = st->next)
        if (st->kind == STMT_DEF && st->name && strcmp(st->name, name) == 0) return st;
    return NULL;
}

static bool binds(const Stmt *st, const char *name) {
    return st->name && strcmp(st->name, name) == 0 &&
           (st->kind == STMT_ASSIGN || st->kind == STMT_PARAM || st->kind == STMT_INPUT || st->kind == STMT_TARGET);
}

/* The definition of NAME used at OFFSET: a block's parameter or earlier assignment, else the
 * latest top-level binding before the use (or, for a use inside a block, anywhere). */
static bool find_binding(const LspIndex *ix, const char *name, int offset, const Stmt *def, Span *out, const Stmt **stmt) {
    *stmt = NULL;
    if (def) {
        const Stmt *found = NULL;
        for (const Stmt *st = def->body; st; st = st->next)
            if (st->kind == STMT_ASSIGN && binds(st, name) && st->span.begin < offset) found = st;
        if (found) { *out = found->name_span; *stmt = found; return true; }
        for (const DefParam *p = def->params; p; p = p->next)
            if (strcmp(p->name, name) == 0) { *out = p->span; return true; }
    }
    if (!ix->ast) return false;
    const Stmt *found = NULL, *later = NULL;
    for (const Stmt *st = ix->ast->stmts; st; st = st->next) {
        if (!binds(st, name)) continue;
        if (st->span.begin < offset) found = st;
        else if (!later) later = st;
    }
    if (!found) found = later; /* used before it is bound: sema says so; point at it anyway */
    if (!found) return false;
    *out = found->name_span;
    *stmt = found;
    return true;
}

/* ---------------------------------------------------------------- hover */

/* The settings form (idx, csv, adam, cosine...) called NAME, from the settings table. */
static const NnrtSettingForm *setting_form(const char *name) {
    static const unsigned groups[] = {NNRT_GROUP_DATA, NNRT_GROUP_VALIDATE, NNRT_GROUP_OPTIMIZER, NNRT_GROUP_SCHEDULE};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        const NnrtSettingForm *f = nnrt_setting_form(groups[g], name);
        if (f) return f;
    }
    return NULL;
}


typedef struct Text {
    char *buf;
    size_t len;
    FILE *f;
} Text;

static const char *shape_text(Arena *arena, const Shape *s) {
    char buf[160];
    return s->rank ? arena_strdup(arena, shape_str(s, buf, sizeof buf)) : "scalar";
}

/* "1,234,567": parameter and FLOP counts are read at a glance. */
static const char *grouped(Arena *arena, int64_t v) {
    char digits[32], out[48];
    snprintf(digits, sizeof digits, "%lld", (long long)v);
    int n = (int)strlen(digits), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && digits[i - 1] != '-' && (n - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return arena_strdup(arena, out);
}

/* The values of one expression, one line per block instance. */
static void describe_values(LspIndex *ix, FILE *f, const Expr *e, bool with_costs) {
    int shown = 0;
    for (int i = 0; i < ix->value_count; i++) {
        const LspValue *v = &ix->values[i];
        if (v->expr != e) continue;
        if (shown == 8) { fputs("- ...\n", f); break; }
        const char *where = v->instance[0] ? arena_printf(ix->arena, "in `%.*s`: ", (int)strlen(v->instance) - 1, v->instance) : "";
        if (v->is_tensor) {
            fprintf(f, "%s%s`%s`", ix->value_count > 0 && where[0] ? "- " : "", where, shape_text(ix->arena, &v->shape));
            if (with_costs) {
                if (v->layer) fprintf(f, " · layer `%s`", v->layer);
                fprintf(f, " · %s parameters · %s FLOPs", grouped(ix->arena, v->params), grouped(ix->arena, v->flops));
            }
            fputc('\n', f);
        } else if (v->is_number) {
            fprintf(f, "%s%s= %g\n", where[0] ? "- " : "", where, v->number);
        }
        shown++;
    }
}

static const char *signature_of_def(Arena *arena, const Stmt *def) {
    char *buf;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return "";
    fprintf(f, "%s(", def->name);
    for (const DefParam *p = def->params; p; p = p->next) fprintf(f, "%s%s", p == def->params ? "" : ", ", p->name);
    fputc(')', f);
    fclose(f);
    const char *out = arena_strdup(arena, buf);
    free(buf);
    return out;
}

static int line_of(const LspIndex *ix, int offset) {
    int line, character;
    lsp_position(ix, offset, &line, &character);
    return line + 1;
}

const char *lsp_hover(LspIndex *ix, int offset, Span *span) {
    Hit hit;
    if (!find_hit(ix, offset, &hit)) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    *span = hit.span;
    switch (hit.kind) {
    case HIT_CALL: {
        const Expr *e = hit.expr;
        const OpSurface *op = ops_find_surface(e->text);
        const Stmt *def = op ? NULL : find_def(ix, e->text);
        if (op) {
            fprintf(f, "```nn\n%s\n```\n%s\n\n", ops_spec_signature(ix->arena, op->name, op->spec, e->piped), op->doc ? op->doc : "");
        } else if (def) {
            fprintf(f, "```nn\ndef %s\n```\nblock defined on line %d\n\n", signature_of_def(ix->arena, def), line_of(ix, def->span.begin));
        } else if (setting_form(e->text)) {
            char signature[256];
            nnrt_setting_signature(setting_form(e->text), signature, sizeof signature);
            fprintf(f, "```nn\n%s\n```\ntrain setting\n", signature);
        } else {
            fprintf(f, "`%s`: not an operation or block\n", e->text);
        }
        describe_values(ix, f, e, true);
        break;
    }
    case HIT_KEYWORD: {
        const OpSurface *op = ops_find_surface(hit.expr->text);
        const char *kw = hit.arg->keyword;
        bool found = false;
        if (op)
            for (const ArgSpec *a = op->spec; a->name; a++)
                if (strcmp(a->name, kw) == 0) {
                    fprintf(f, "`%s` argument of `%s`", kw, ops_spec_signature(ix->arena, op->name, op->spec, hit.expr->piped));
                    found = true;
                }
        if (!found && strcmp(kw, "name") == 0) fprintf(f, "`name`: the layer's name (default: the op and a counter, e.g. dense0)");
        else if (!found) fprintf(f, "`%s`", kw);
        fputc('\n', f);
        break;
    }
    case HIT_NAME: {
        const Expr *e = hit.expr;
        Span where;
        const Stmt *st;
        fprintf(f, "`%s`", e->text);
        if (find_binding(ix, e->text, e->span.begin, hit.def, &where, &st))
            fprintf(f, " — %s on line %d", st ? (st->kind == STMT_PARAM ? "param" : st->kind == STMT_INPUT ? "input" : st->kind == STMT_TARGET ? "target" : "bound")
                                                 : "block parameter",
                    line_of(ix, where.begin));
        fputs("\n\n", f);
        describe_values(ix, f, e, false);
        break;
    }
    case HIT_STMT_NAME: {
        const Stmt *st = hit.stmt;
        if (st->kind == STMT_DEF) {
            fprintf(f, "```nn\ndef %s\n```\n", signature_of_def(ix->arena, st));
        } else if (st->kind == STMT_MODEL) {
            fprintf(f, "model `%s`", st->name);
            if (ix->model) {
                const Graph *g = ix->model->graph;
                fprintf(f, " · %s parameters", grouped(ix->arena, g->param_count));
            }
            fputc('\n', f);
        } else if (st->kind == STMT_INPUT || st->kind == STMT_TARGET) {
            fprintf(f, "%s `%s`", st->kind == STMT_INPUT ? "input" : "target", st->name);
            if (st->type && st->type->span.begin >= 0)
                fprintf(f, " : `%.*s`", st->type->span.end - st->type->span.begin, ix->text + st->type->span.begin);
            fputc('\n', f);
        } else if (st->value) {
            fprintf(f, "`%s`%s\n\n", st->name, st->kind == STMT_PARAM ? " (param)" : "");
            describe_values(ix, f, st->value, st->value->kind == EXPR_CALL);
        } else {
            fprintf(f, "`%s`\n", st->name);
        }
        break;
    }
    case HIT_DEF_PARAM:
        fprintf(f, "parameter `%s` of block `%s`\n", hit.param->name, signature_of_def(ix->arena, hit.def));
        break;
    case HIT_NONE: break;
    }
    fclose(f);
    const char *out = NULL;
    if (buf && len) {
        while (len && buf[len - 1] == '\n') buf[--len] = '\0';
        out = arena_strdup(ix->arena, buf);
    }
    free(buf);
    return out;
}

/* ---------------------------------------------------------------- definition */

bool lsp_definition(LspIndex *ix, int offset, Span *target) {
    Hit hit;
    if (!find_hit(ix, offset, &hit)) return false;
    const Stmt *st;
    switch (hit.kind) {
    case HIT_NAME: return find_binding(ix, hit.expr->text, hit.expr->span.begin, hit.def, target, &st);
    case HIT_CALL: {
        const Stmt *def = find_def(ix, hit.expr->text);
        if (def) *target = def->name_span;
        return def != NULL;
    }
    case HIT_KEYWORD: {
        const Stmt *def = find_def(ix, hit.expr->text);
        for (const DefParam *p = def ? def->params : NULL; p; p = p->next)
            if (strcmp(p->name, hit.arg->keyword) == 0) { *target = p->span; return true; }
        return false;
    }
    case HIT_STMT_NAME:
        if (hit.stmt->kind == STMT_OUTPUT) return find_binding(ix, hit.stmt->name, hit.stmt->span.begin, hit.def, target, &st);
        *target = hit.stmt->name_span;
        return true;
    case HIT_DEF_PARAM: *target = hit.param->span; return true;
    case HIT_NONE: break;
    }
    return false;
}

/* ---------------------------------------------------------------- completion */

static bool is_ident_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

/* The name before the innermost '(' still open at OFFSET on the text (so it works while the
 * document does not parse), and whether a '->' comes right before that name. */
static const char *open_call(LspIndex *ix, int offset, bool *piped) {
    const char *t = ix->text;
    int depth = 0;
    /* scan back at most a few lines' worth: calls are short */
    for (int i = offset - 1; i >= 0 && offset - i < 4000; i--) {
        char c = t[i];
        if (c == ')') depth++;
        else if (c == '(' && depth > 0) depth--;
        else if (c == '(') {
            int end = i;
            while (end > 0 && (t[end - 1] == ' ' || t[end - 1] == '\t')) end--;
            int begin = end;
            while (begin > 0 && is_ident_char(t[begin - 1])) begin--;
            if (begin == end) return NULL;
            int before = begin;
            while (before > 0 && (t[before - 1] == ' ' || t[before - 1] == '\t' || t[before - 1] == '\n')) before--;
            *piped = before >= 2 && t[before - 1] == '>' && t[before - 2] == '-';
            return arena_strndup(ix->arena, t + begin, (size_t)(end - begin));
        } else if (c == '{' || c == '}') {
            return NULL;
        }
    }
    return NULL;
}

static const char *spec_default(Arena *arena, const ArgSpec *a) {
    if (a->required) return "required";
    if (a->kind == ARG_BOOL) return a->default_number ? "default true" : "default false";
    if (a->kind == ARG_STRING) return arena_printf(arena, "default \"%s\"", a->default_string ? a->default_string : "");
    return arena_printf(arena, "default %g", a->default_number);
}

static const char *setting_default(Arena *arena, const NnrtSettingArg *a) {
    if (a->required) return "required";
    if (a->optional) return "optional";
    if (a->kind == NNRT_ARG_BOOL) return a->default_number ? "default true" : "default false";
    if (a->kind == NNRT_ARG_STR) return arena_printf(arena, "default \"%s\"", a->default_string ? a->default_string : "");
    char number[40];
    nnrt_setting_format_number(a->default_number, number);
    return arena_printf(arena, "default %s", number);
}

static void add_item(LspIndex *ix, LspItem **items, int *count, int *cap, LspItem item) {
    GROW(ix, *items, *count, *cap);
    (*items)[(*count)++] = item;
}

static void add_names(LspIndex *ix, const Stmt *stmts, int offset, LspItem **items, int *count, int *cap) {
    for (const Stmt *st = stmts; st; st = st->next) {
        if (!st->name || !binds(st, st->name) || st->span.begin >= offset) continue;
        bool seen = false;
        for (int i = 0; i < *count; i++) seen |= (*items)[i].kind == LSP_ITEM_NAME && strcmp((*items)[i].label, st->name) == 0;
        if (seen) continue;
        const char *detail = st->kind == STMT_PARAM ? "param" : st->kind == STMT_INPUT ? "input" : st->kind == STMT_TARGET ? "target" : "tensor";
        add_item(ix, items, count, cap, (LspItem){.label = st->name, .detail = detail, .kind = LSP_ITEM_NAME});
    }
}

int lsp_completion(LspIndex *ix, int offset, LspItem **items) {
    int count = 0, cap = 0;
    *items = NULL;
    bool piped = false;
    const char *callee = open_call(ix, offset, &piped);
    const OpSurface *op = callee ? ops_find_surface(callee) : NULL;
    if (op) {
        for (int i = 0; op->spec[i].name; i++) {
            if (op->spec[i].kind == ARG_TENSOR || op->spec[i].kind == ARG_TARGET) continue;
            const ArgSpec *a = &op->spec[i];
            add_item(ix, items, &count, &cap,
                     (LspItem){.label = arena_printf(ix->arena, "%s=", a->name), .insert = arena_printf(ix->arena, "%s=", a->name),
                               .detail = spec_default(ix->arena, a), .doc = ops_spec_signature(ix->arena, op->name, op->spec, piped),
                               .kind = LSP_ITEM_KEYWORD_ARG});
        }
        add_item(ix, items, &count, &cap, (LspItem){.label = "name=", .insert = "name=", .detail = "the layer's name", .kind = LSP_ITEM_KEYWORD_ARG});
    } else if (callee && setting_form(callee)) {
        const NnrtSettingForm *form = setting_form(callee);
        char signature[256];
        nnrt_setting_signature(form, signature, sizeof signature);
        for (int i = 0; i < form->nargs; i++)
            add_item(ix, items, &count, &cap,
                     (LspItem){.label = arena_printf(ix->arena, "%s=", form->args[i].name), .insert = arena_printf(ix->arena, "%s=", form->args[i].name),
                               .detail = setting_default(ix->arena, &form->args[i]), .doc = arena_strdup(ix->arena, signature),
                               .kind = LSP_ITEM_KEYWORD_ARG});
    } else if (callee) {
        const Stmt *def = find_def(ix, callee);
        for (const DefParam *p = def ? def->params : NULL; p; p = p->next) {
            if (p == def->params) continue; /* the input tensor */
            add_item(ix, items, &count, &cap, (LspItem){.label = arena_printf(ix->arena, "%s=", p->name), .insert = arena_printf(ix->arena, "%s=", p->name),
                                                        .detail = p->default_value ? "optional" : "required", .kind = LSP_ITEM_KEYWORD_ARG});
        }
    }
    /* names in scope: the enclosing block's parameters and assignments, then the top level */
    const Stmt *enclosing = NULL;
    for (const Stmt *st = ix->ast ? ix->ast->stmts : NULL; st; st = st->next)
        if (st->kind == STMT_DEF && offset > st->span.begin && offset <= st->span.end) enclosing = st;
    if (enclosing) {
        for (const DefParam *p = enclosing->params; p; p = p->next)
            add_item(ix, items, &count, &cap, (LspItem){.label = p->name, .detail = "block parameter", .kind = LSP_ITEM_NAME});
        add_names(ix, enclosing->body, offset, items, &count, &cap);
    }
    if (ix->ast) add_names(ix, ix->ast->stmts, enclosing ? enclosing->span.begin : offset, items, &count, &cap);
    const char *names[128];
    int n = ops_surface_names(0, names, 128);
    for (int i = 0; i < n; i++) {
        const OpSurface *s = ops_find_surface(names[i]);
        add_item(ix, items, &count, &cap, (LspItem){.label = s->name, .detail = ops_spec_signature(ix->arena, s->name, s->spec, false),
                                                    .doc = s->doc, .kind = LSP_ITEM_OP});
    }
    for (const Stmt *st = ix->ast ? ix->ast->stmts : NULL; st; st = st->next)
        if (st->kind == STMT_DEF && st->name)
            add_item(ix, items, &count, &cap, (LspItem){.label = st->name, .detail = arena_printf(ix->arena, "block %s", signature_of_def(ix->arena, st)),
                                                        .kind = LSP_ITEM_BLOCK});
    return count;
}

/* ---------------------------------------------------------------- symbols */

static void add_symbol(LspIndex *ix, LspSymbol **out, int *count, int *cap, LspSymbol s) {
    GROW(ix, *out, *count, *cap);
    (*out)[(*count)++] = s;
}

int lsp_symbols(LspIndex *ix, LspSymbol **out) {
    int count = 0, cap = 0;
    *out = NULL;
    for (const Stmt *st = ix->ast ? ix->ast->stmts : NULL; st; st = st->next) {
        LspSymbol s = {.name = st->name, .span = st->span, .name_span = st->name_span, .parent = -1};
        switch (st->kind) {
        case STMT_MODEL: s.kind = LSP_SYM_MODEL; break;
        case STMT_PARAM: s.kind = LSP_SYM_PARAM; s.detail = "param"; break;
        case STMT_INPUT: s.kind = LSP_SYM_INPUT; s.detail = "input"; break;
        case STMT_TARGET: s.kind = LSP_SYM_INPUT; s.detail = "target"; break;
        case STMT_ASSIGN: s.kind = LSP_SYM_BINDING; break;
        case STMT_DEF: s.kind = LSP_SYM_BLOCK; s.detail = signature_of_def(ix->arena, st); break;
        case STMT_TRAIN: s.kind = LSP_SYM_TRAIN; s.name = "train"; s.name_span = (Span){st->span.begin, st->span.begin + 5}; break;
        default: continue;
        }
        if (!s.name) continue;
        if (st->kind == STMT_ASSIGN || st->kind == STMT_PARAM) {
            /* its shape (or value) at top level */
            for (int i = ix->value_count - 1; i >= 0; i--)
                if (ix->values[i].expr == st->value) {
                    const LspValue *v = &ix->values[i];
                    s.detail = v->is_tensor ? shape_text(ix->arena, &v->shape) : v->is_number ? arena_printf(ix->arena, "%g", v->number) : s.detail;
                    break;
                }
        }
        add_symbol(ix, out, &count, &cap, s);
    }
    /* the layers: every named node of the model, under the top-level statement holding its call */
    const Graph *g = ix->model ? ix->model->graph : NULL;
    int statements = count; /* in source order: the parent is found by bisection */
    for (int i = 0; g && i < g->forward_count; i++) {
        const Node *n = graph_node(g, i);
        if (!n->layer || n->span.begin < 0 || i == g->input || i == g->target) continue;
        int lo = 0, hi = statements - 1, parent = -1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            if ((*out)[mid].span.begin <= n->span.begin) { parent = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        if (parent >= 0 && n->span.end > (*out)[parent].span.end) parent = -1;
        add_symbol(ix, out, &count, &cap,
                   (LspSymbol){.name = n->layer, .detail = arena_printf(ix->arena, "%s %s", ops_node_label(n), shape_text(ix->arena, &n->shape)),
                               .kind = LSP_SYM_LAYER, .span = n->span, .name_span = n->span, .parent = parent});
    }
    return count;
}
