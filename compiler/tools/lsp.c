/* lsp.c — the protocol side of `nnc lsp` (lsp.h): messages framed by Content-Length headers on
 * stdin/stdout, JSON through cJSON, the open documents, and the answers built from each
 * document's analysis (lsp_index.c). Nothing is ever written to a file; stderr gets only the
 * server's own trouble (a malformed message), which editors show in their log. */
#include "lsp.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "lsp_index.h"

enum {
    LSP_MAX_MESSAGE_BYTES = 64 << 20, /* a 4 MiB document, escaped, fits many times over */
    LSP_MAX_HEADER_BYTES = 4096,
};

/* JSON-RPC error codes */
enum { RPC_PARSE_ERROR = -32700, RPC_INVALID_REQUEST = -32600, RPC_METHOD_NOT_FOUND = -32601, RPC_INVALID_PARAMS = -32602,
       RPC_NOT_INITIALIZED = -32002 };

typedef struct Document {
    char *uri, *path;
    int version;
    LspIndex *index;
} Document;

typedef struct Server {
    FILE *in, *out;
    Document *docs;
    int doc_count, doc_cap;
    bool initialized, shutdown;
} Server;

/* ---------------------------------------------------------------- framing */

/* Reads one message body (malloc'ed, NUL-terminated); NULL at the end of the input. A header
 * without a usable Content-Length is skipped with a complaint on stderr. */
static char *read_message(Server *s, size_t *length) {
    for (;;) {
        char line[LSP_MAX_HEADER_BYTES];
        long content_length = -1;
        bool any = false;
        for (;;) {
            if (!fgets(line, sizeof line, s->in)) return NULL;
            any = true;
            if (strcmp(line, "\r\n") == 0 || strcmp(line, "\n") == 0) break;
            if (strncasecmp(line, "Content-Length:", 15) == 0) {
                char *end;
                content_length = strtol(line + 15, &end, 10);
                if (end == line + 15) content_length = -1;
            }
        }
        if (!any) return NULL;
        if (content_length < 0) {
            fprintf(stderr, "nnc lsp: a message without a Content-Length header; skipped\n");
            continue;
        }
        if (content_length > LSP_MAX_MESSAGE_BYTES) {
            fprintf(stderr, "nnc lsp: a message of %ld bytes (more than %d MiB); skipped\n", content_length, LSP_MAX_MESSAGE_BYTES >> 20);
            for (long i = 0; i < content_length; i++)
                if (fgetc(s->in) == EOF) return NULL;
            continue;
        }
        char *body = malloc((size_t)content_length + 1);
        if (!body) return NULL;
        if (fread(body, 1, (size_t)content_length, s->in) != (size_t)content_length) {
            free(body);
            return NULL;
        }
        body[content_length] = '\0';
        *length = (size_t)content_length;
        return body;
    }
}

static void send_json(Server *s, cJSON *message) {
    char *text = cJSON_PrintUnformatted(message);
    if (text) {
        fprintf(s->out, "Content-Length: %zu\r\n\r\n%s", strlen(text), text);
        fflush(s->out);
        free(text);
    }
    cJSON_Delete(message);
}

static void respond(Server *s, const cJSON *id, cJSON *result) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "jsonrpc", "2.0");
    cJSON_AddItemToObject(m, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
    cJSON_AddItemToObject(m, "result", result ? result : cJSON_CreateNull());
    send_json(s, m);
}

static void respond_error(Server *s, const cJSON *id, int code, const char *message) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "jsonrpc", "2.0");
    cJSON_AddItemToObject(m, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
    cJSON *e = cJSON_AddObjectToObject(m, "error");
    cJSON_AddNumberToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    send_json(s, m);
}

static void notify(Server *s, const char *method, cJSON *params) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "jsonrpc", "2.0");
    cJSON_AddStringToObject(m, "method", method);
    cJSON_AddItemToObject(m, "params", params);
    send_json(s, m);
}

/* ---------------------------------------------------------------- documents */

/* "file:///a/b%20c.nn" -> "/a/b c.nn"; other schemes are kept as they are (the path only names
 * the document in messages and gives the model its default name). */
static char *uri_path(const char *uri) {
    const char *p = strncmp(uri, "file://", 7) == 0 ? uri + 7 : uri;
    char *out = malloc(strlen(p) + 1), *o = out;
    if (!out) return NULL;
    for (; *p; p++) {
        if (*p == '%' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end == '\0' && v > 0) { *o++ = (char)v; p += 2; continue; }
        }
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

static Document *find_document(Server *s, const char *uri) {
    for (int i = 0; i < s->doc_count; i++)
        if (strcmp(s->docs[i].uri, uri) == 0) return &s->docs[i];
    return NULL;
}

static cJSON *range_json(const LspIndex *ix, Span span) {
    int begin = span.begin < 0 ? 0 : span.begin, end = span.begin < 0 ? 0 : span.end;
    int l0, c0, l1, c1;
    lsp_position(ix, begin, &l0, &c0);
    lsp_position(ix, end < begin ? begin : end, &l1, &c1);
    cJSON *r = cJSON_CreateObject();
    cJSON *a = cJSON_AddObjectToObject(r, "start");
    cJSON_AddNumberToObject(a, "line", l0);
    cJSON_AddNumberToObject(a, "character", c0);
    cJSON *b = cJSON_AddObjectToObject(r, "end");
    cJSON_AddNumberToObject(b, "line", l1);
    cJSON_AddNumberToObject(b, "character", c1);
    return r;
}

static void publish_diagnostics(Server *s, const Document *d) {
    const LspIndex *ix = d->index;
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "uri", d->uri);
    cJSON_AddNumberToObject(params, "version", d->version);
    cJSON *list = cJSON_AddArrayToObject(params, "diagnostics");
    for (int i = 0; i < ix->diagnostic_count; i++) {
        const LspDiagnostic *g = &ix->diagnostics[i];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddItemToObject(item, "range", range_json(ix, g->span));
        cJSON_AddNumberToObject(item, "severity", g->kind == DIAG_KIND_WARNING ? 2 : 1);
        cJSON_AddStringToObject(item, "source", "nnc");
        /* notes without a place belong to the message; the others are related information */
        char *message = NULL;
        size_t length = 0;
        FILE *f = open_memstream(&message, &length);
        if (f) {
            fputs(g->message, f);
            for (int n = 0; n < g->note_count; n++)
                if (g->notes[n].span.begin < 0) fprintf(f, "\nnote: %s", g->notes[n].message);
            fclose(f);
        }
        cJSON_AddStringToObject(item, "message", message ? message : g->message);
        free(message);
        cJSON *related = NULL;
        for (int n = 0; n < g->note_count; n++) {
            if (g->notes[n].span.begin < 0) continue;
            if (!related) related = cJSON_AddArrayToObject(item, "relatedInformation");
            cJSON *r = cJSON_CreateObject();
            cJSON *loc = cJSON_AddObjectToObject(r, "location");
            cJSON_AddStringToObject(loc, "uri", d->uri);
            cJSON_AddItemToObject(loc, "range", range_json(ix, g->notes[n].span));
            cJSON_AddStringToObject(r, "message", g->notes[n].message);
            cJSON_AddItemToArray(related, r);
        }
        cJSON_AddItemToArray(list, item);
    }
    notify(s, "textDocument/publishDiagnostics", params);
}

static void analyze(Server *s, Document *d, const char *text) {
    lsp_index_free(d->index);
    d->index = lsp_index_build(d->path, text, (int)strlen(text));
    publish_diagnostics(s, d);
}

static const char *text_document_uri(const cJSON *params) {
    const cJSON *td = cJSON_GetObjectItemCaseSensitive(params, "textDocument");
    const cJSON *uri = cJSON_GetObjectItemCaseSensitive(td, "uri");
    return cJSON_IsString(uri) ? uri->valuestring : NULL;
}

static void did_open(Server *s, const cJSON *params) {
    const cJSON *td = cJSON_GetObjectItemCaseSensitive(params, "textDocument");
    const char *uri = text_document_uri(params);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(td, "text");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(td, "version");
    if (!uri || !cJSON_IsString(text)) return;
    Document *d = find_document(s, uri);
    if (!d) {
        if (s->doc_count == s->doc_cap) {
            int cap = s->doc_cap ? 2 * s->doc_cap : 8;
            Document *grown = realloc(s->docs, sizeof *grown * (size_t)cap);
            if (!grown) return;
            s->docs = grown;
            s->doc_cap = cap;
        }
        d = &s->docs[s->doc_count++];
        *d = (Document){.uri = strdup(uri), .path = uri_path(uri)};
        if (!d->uri || !d->path) { free(d->uri); free(d->path); s->doc_count--; return; }
    }
    d->version = cJSON_IsNumber(version) ? version->valueint : 0;
    analyze(s, d, text->valuestring);
}

/* Full synchronization (textDocumentSync.change = 1): every change carries the whole text. */
static void did_change(Server *s, const cJSON *params) {
    Document *d = find_document(s, text_document_uri(params) ? text_document_uri(params) : "");
    const cJSON *changes = cJSON_GetObjectItemCaseSensitive(params, "contentChanges");
    if (!d || !cJSON_IsArray(changes)) return;
    const cJSON *last = NULL, *c;
    cJSON_ArrayForEach(c, changes) last = c;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(last, "text");
    if (!cJSON_IsString(text)) return;
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(params, "textDocument"), "version");
    if (cJSON_IsNumber(version)) d->version = version->valueint;
    analyze(s, d, text->valuestring);
}

static void did_close(Server *s, const cJSON *params) {
    Document *d = find_document(s, text_document_uri(params) ? text_document_uri(params) : "");
    if (!d) return;
    /* the editor clears what we published for it */
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "uri", d->uri);
    cJSON_AddArrayToObject(p, "diagnostics");
    notify(s, "textDocument/publishDiagnostics", p);
    lsp_index_free(d->index);
    free(d->uri);
    free(d->path);
    *d = s->docs[--s->doc_count];
}

/* The document and byte offset a position request is about; NULL when there is none. */
static Document *position_of(Server *s, const cJSON *params, int *offset) {
    Document *d = find_document(s, text_document_uri(params) ? text_document_uri(params) : "");
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(params, "position");
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(pos, "line"), *character = cJSON_GetObjectItemCaseSensitive(pos, "character");
    if (!d || !cJSON_IsNumber(line) || !cJSON_IsNumber(character)) return NULL;
    *offset = lsp_offset(d->index, line->valueint, character->valueint);
    return d;
}

/* ---------------------------------------------------------------- requests */

static cJSON *initialize_result(void) {
    cJSON *r = cJSON_CreateObject();
    cJSON *caps = cJSON_AddObjectToObject(r, "capabilities");
    cJSON_AddStringToObject(caps, "positionEncoding", "utf-16");
    cJSON *sync = cJSON_AddObjectToObject(caps, "textDocumentSync");
    cJSON_AddBoolToObject(sync, "openClose", true);
    cJSON_AddNumberToObject(sync, "change", 1);
    cJSON_AddBoolToObject(caps, "hoverProvider", true);
    cJSON_AddBoolToObject(caps, "definitionProvider", true);
    cJSON *completion = cJSON_AddObjectToObject(caps, "completionProvider");
    const char *triggers[] = {">", "(", ","};
    cJSON_AddItemToObject(completion, "triggerCharacters", cJSON_CreateStringArray(triggers, 3));
    cJSON_AddBoolToObject(caps, "documentSymbolProvider", true);
    cJSON_AddBoolToObject(caps, "documentFormattingProvider", true);
    cJSON *info = cJSON_AddObjectToObject(r, "serverInfo");
    cJSON_AddStringToObject(info, "name", "nnc");
    return r;
}

static cJSON *hover(Server *s, const cJSON *params) {
    int offset;
    Document *d = position_of(s, params, &offset);
    if (!d) return NULL;
    Span span;
    const char *text = lsp_hover(d->index, offset, &span);
    if (!text) return NULL;
    cJSON *r = cJSON_CreateObject();
    cJSON *contents = cJSON_AddObjectToObject(r, "contents");
    cJSON_AddStringToObject(contents, "kind", "markdown");
    cJSON_AddStringToObject(contents, "value", text);
    cJSON_AddItemToObject(r, "range", range_json(d->index, span));
    return r;
}

static cJSON *definition(Server *s, const cJSON *params) {
    int offset;
    Document *d = position_of(s, params, &offset);
    Span target;
    if (!d || !lsp_definition(d->index, offset, &target)) return NULL;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "uri", d->uri);
    cJSON_AddItemToObject(r, "range", range_json(d->index, target));
    return r;
}

static cJSON *completion(Server *s, const cJSON *params) {
    int offset;
    Document *d = position_of(s, params, &offset);
    if (!d) return NULL;
    LspItem *items;
    int count = lsp_completion(d->index, offset, &items);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "isIncomplete", false);
    cJSON *list = cJSON_AddArrayToObject(r, "items");
    /* CompletionItemKind: Function 3, Module 9, Variable 6, Property 10 */
    static const int kinds[] = {[LSP_ITEM_OP] = 3, [LSP_ITEM_BLOCK] = 9, [LSP_ITEM_NAME] = 6, [LSP_ITEM_KEYWORD_ARG] = 10};
    for (int i = 0; i < count; i++) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "label", items[i].label);
        cJSON_AddNumberToObject(item, "kind", kinds[items[i].kind]);
        if (items[i].detail) cJSON_AddStringToObject(item, "detail", items[i].detail);
        if (items[i].doc) cJSON_AddStringToObject(item, "documentation", items[i].doc);
        if (items[i].insert) cJSON_AddStringToObject(item, "insertText", items[i].insert);
        char sort[16];
        snprintf(sort, sizeof sort, "%04d", i); /* our order: keyword arguments, names, ops, blocks */
        cJSON_AddStringToObject(item, "sortText", sort);
        cJSON_AddItemToArray(list, item);
    }
    return r;
}

static cJSON *document_symbols(Server *s, const cJSON *params) {
    Document *d = find_document(s, text_document_uri(params) ? text_document_uri(params) : "");
    if (!d) return NULL;
    LspSymbol *symbols;
    int count = lsp_symbols(d->index, &symbols);
    /* SymbolKind: Module 2, Constant 14, Variable 13, Function 12, Field 8, Object 19 */
    static const int kinds[] = {[LSP_SYM_MODEL] = 2, [LSP_SYM_PARAM] = 14, [LSP_SYM_INPUT] = 13, [LSP_SYM_BINDING] = 13,
                                [LSP_SYM_BLOCK] = 12, [LSP_SYM_LAYER] = 8, [LSP_SYM_TRAIN] = 19};
    cJSON **made = calloc((size_t)(count ? count : 1), sizeof *made);
    cJSON *list = cJSON_CreateArray();
    if (!made) return list;
    for (int i = 0; i < count; i++) {
        const LspSymbol *y = &symbols[i];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", y->name);
        if (y->detail) cJSON_AddStringToObject(item, "detail", y->detail);
        cJSON_AddNumberToObject(item, "kind", kinds[y->kind]);
        cJSON_AddItemToObject(item, "range", range_json(d->index, y->span));
        Span selection = y->name_span.begin >= y->span.begin && y->name_span.end <= y->span.end ? y->name_span : y->span;
        cJSON_AddItemToObject(item, "selectionRange", range_json(d->index, selection));
        made[i] = item;
        if (y->parent >= 0 && made[y->parent]) {
            cJSON *children = cJSON_GetObjectItemCaseSensitive(made[y->parent], "children");
            if (!children) children = cJSON_AddArrayToObject(made[y->parent], "children");
            cJSON_AddItemToArray(children, item);
        } else {
            cJSON_AddItemToArray(list, item);
        }
    }
    free(made);
    return list;
}

/* One edit replacing the whole document with its canonical layout (nnc fmt); none when it is
 * already formatted or does not parse (formatting never guesses at broken code). */
static cJSON *formatting(Server *s, const cJSON *params) {
    Document *d = find_document(s, text_document_uri(params) ? text_document_uri(params) : "");
    if (!d) return NULL;
    const LspIndex *ix = d->index;
    cJSON *edits = cJSON_CreateArray();
    Arena *arena = arena_new();
    const char *formatted = fmt_source(arena, ix->text, ix->length);
    if (formatted && strcmp(formatted, ix->text) != 0) {
        cJSON *edit = cJSON_CreateObject();
        cJSON_AddItemToObject(edit, "range", range_json(ix, (Span){0, ix->length}));
        cJSON_AddStringToObject(edit, "newText", formatted);
        cJSON_AddItemToArray(edits, edit);
    }
    arena_free(arena);
    return edits;
}

/* Handles one message; returns false after `exit`. */
static bool handle(Server *s, const char *body, int *status) {
    cJSON *m = cJSON_Parse(body);
    if (!m) {
        respond_error(s, NULL, RPC_PARSE_ERROR, "the message is not JSON");
        return true;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
    const cJSON *method_item = cJSON_GetObjectItemCaseSensitive(m, "method");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(m, "params");
    const char *method = cJSON_IsString(method_item) ? method_item->valuestring : NULL;
    bool request = id && (cJSON_IsNumber(id) || cJSON_IsString(id));
    bool keep_going = true;
    if (!method) {
        if (request) respond_error(s, id, RPC_INVALID_REQUEST, "a request needs a method");
        /* else: a response to a request we never sent; nothing to do */
    } else if (strcmp(method, "exit") == 0) {
        *status = s->shutdown ? 0 : 1;
        keep_going = false;
    } else if (strcmp(method, "initialize") == 0) {
        s->initialized = true;
        if (request) respond(s, id, initialize_result());
    } else if (!s->initialized) {
        if (request) respond_error(s, id, RPC_NOT_INITIALIZED, "the server is not initialized");
    } else if (strcmp(method, "shutdown") == 0) {
        s->shutdown = true;
        if (request) respond(s, id, NULL);
    } else if (!request) {
        if (strcmp(method, "textDocument/didOpen") == 0) did_open(s, params);
        else if (strcmp(method, "textDocument/didChange") == 0) did_change(s, params);
        else if (strcmp(method, "textDocument/didClose") == 0) did_close(s, params);
        /* initialized, didSave, $/cancelRequest, ...: nothing to do */
    } else if (strcmp(method, "textDocument/hover") == 0) {
        respond(s, id, hover(s, params));
    } else if (strcmp(method, "textDocument/definition") == 0) {
        respond(s, id, definition(s, params));
    } else if (strcmp(method, "textDocument/completion") == 0) {
        respond(s, id, completion(s, params));
    } else if (strcmp(method, "textDocument/documentSymbol") == 0) {
        cJSON *r = document_symbols(s, params);
        if (r) respond(s, id, r);
        else respond_error(s, id, RPC_INVALID_PARAMS, "no such open document");
    } else if (strcmp(method, "textDocument/formatting") == 0) {
        cJSON *r = formatting(s, params);
        if (r) respond(s, id, r);
        else respond_error(s, id, RPC_INVALID_PARAMS, "no such open document");
    } else {
        respond_error(s, id, RPC_METHOD_NOT_FOUND, "nnc lsp does not implement this method");
    }
    cJSON_Delete(m);
    return keep_going;
}

int lsp_main(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--stdio") == 0) continue; /* what VS Code's clients pass */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: nnc lsp    a language server on stdin/stdout (Language Server Protocol)\n"
                   "editor setup: grammar/editors/README.md\n");
            return 0;
        }
        fprintf(stderr, "nnc: error: nnc lsp takes no arguments ('%s'); it speaks LSP on stdin/stdout\n", argv[i]);
        return 1;
    }
    Server server = {.in = stdin, .out = stdout};
    int status = 1; /* the input ended without shutdown + exit */
    size_t length;
    char *body;
    while ((body = read_message(&server, &length)) != NULL) {
        bool keep_going = handle(&server, body, &status);
        free(body);
        if (!keep_going) break;
    }
    for (int i = 0; i < server.doc_count; i++) {
        lsp_index_free(server.docs[i].index);
        free(server.docs[i].uri);
        free(server.docs[i].path);
    }
    free(server.docs);
    return status;
}
