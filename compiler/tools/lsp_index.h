/* lsp_index.h — what the language server knows about one open document: the front end's result
 * (parse + sema, diagnostics collected in memory, every expression's value as sema computed it)
 * and the queries the protocol asks of it (hover, definition, completion, symbols). No JSON here:
 * lsp.c speaks the protocol. Offsets are bytes into the document; positions are LSP's
 * (line, UTF-16 code unit). */
#ifndef NNC_LSP_INDEX_H
#define NNC_LSP_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"
#include "sema.h"

typedef struct LspNote {
    Span span; /* begin < 0: no place (then it is part of the message) */
    const char *message;
} LspNote;

typedef struct LspDiagnostic {
    DiagKind kind; /* error or warning */
    Span span;     /* begin < 0: the file as a whole (shown at its start) */
    const char *message;
    LspNote *notes;
    int note_count, note_cap;
} LspDiagnostic;

/* One expression's value in one block instance (or at top level). */
typedef struct LspValue {
    const Expr *expr;
    const char *instance;  /* "" or "stage0." */
    bool is_tensor, is_number;
    double number;
    Shape shape;
    const char *layer;     /* the output node's layer name, or NULL */
    int64_t params, flops; /* of the nodes the expression itself added (not its arguments') */
    int node_first, node_end; /* the nodes added while evaluating it */
} LspValue;

typedef struct LspIndex {
    Arena *arena;
    const char *text;
    int length;
    int *line_starts;
    int line_count;
    Ast *ast;              /* NULL only for an oversized document */
    Model *model;          /* NULL when there were errors */
    LspDiagnostic *diagnostics;
    int diagnostic_count, diagnostic_cap;
    LspValue *values;
    int value_count, value_cap;
} LspIndex;

/* Analyzes TEXT (copied); never fails, whatever the text. */
LspIndex *lsp_index_build(const char *path, const char *text, int length);
void lsp_index_free(LspIndex *index);

void lsp_position(const LspIndex *ix, int offset, int *line, int *character);
int lsp_offset(const LspIndex *ix, int line, int character);

/* Markdown for the thing at OFFSET and its span; NULL when there is nothing to say. */
const char *lsp_hover(LspIndex *ix, int offset, Span *span);
/* Where the name at OFFSET is defined; false when it is not a name with a definition. */
bool lsp_definition(LspIndex *ix, int offset, Span *target);

typedef enum LspItemKind { LSP_ITEM_OP, LSP_ITEM_BLOCK, LSP_ITEM_NAME, LSP_ITEM_KEYWORD_ARG } LspItemKind;
typedef struct LspItem {
    const char *label, *detail, *doc, *insert;
    LspItemKind kind;
} LspItem;
/* Completion candidates at OFFSET (keyword arguments first when inside a call's parentheses). */
int lsp_completion(LspIndex *ix, int offset, LspItem **items);

typedef enum LspSymbolKind { LSP_SYM_MODEL, LSP_SYM_PARAM, LSP_SYM_INPUT, LSP_SYM_BINDING, LSP_SYM_BLOCK, LSP_SYM_LAYER, LSP_SYM_TRAIN } LspSymbolKind;
typedef struct LspSymbol {
    const char *name, *detail;
    LspSymbolKind kind;
    Span span, name_span;
    int parent; /* index of the enclosing symbol, or -1 */
} LspSymbol;
int lsp_symbols(LspIndex *ix, LspSymbol **symbols);

#endif
