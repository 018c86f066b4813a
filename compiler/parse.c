/* parse.c — drives the generated scanner (grammar/nn.l) and parser (grammar/nn.y). */
#include "parse.h"

#include "nn.tab.h"
#define YYSTYPE NNSTYPE
#define YYLTYPE NNLTYPE
#include "nn.lex.h"

Ast *parse_source(Arena *arena, Diag *diag) {
    Ast *ast = ARENA_NEW(arena, Ast);
    ScanState scan = {.arena = arena, .offset = 0, .invalid_message = ""};
    ParseState ps = {.arena = arena, .diag = diag, .ast = ast, .scan = &scan};
    yyscan_t scanner;
    if (nnlex_init_extra(&scan, &scanner) != 0) {
        diag_cmdline_error(diag, "cannot initialize the scanner");
        diag_print(diag);
        return ast;
    }
    YY_BUFFER_STATE buffer = nn_scan_bytes(diag->text, diag->length, scanner);
    nnparse(scanner, &ps);
    nn_delete_buffer(buffer, scanner);
    nnlex_destroy(scanner);
    diag_print(diag);
    return ast;
}

static const char *parse_token_kind(int token) {
    switch (token) {
    case KW_MODEL: case KW_PARAM: case KW_INPUT: case KW_TARGET: case KW_DEF: case KW_RETURN:
    case KW_LOSS: case KW_METRIC: case KW_TRAIN: case KW_OUTPUT: return "KEYWORD";
    case IDENT: return "IDENT";
    case NUMBER: return "NUMBER";
    case STRING: return "STRING";
    case ARROW: return "ARROW";
    case INVALID: return "INVALID";
    default: return "PUNCT";
    }
}

int parse_dump_tokens(Diag *diag, FILE *out) {
    Arena *arena = arena_new();
    ScanState scan = {.arena = arena, .offset = 0, .invalid_message = ""};
    yyscan_t scanner;
    if (nnlex_init_extra(&scan, &scanner) != 0) {
        arena_free(arena);
        return 1;
    }
    YY_BUFFER_STATE buffer = nn_scan_bytes(diag->text, diag->length, scanner);
    int status = 0;
    for (;;) {
        NNSTYPE value;
        Span loc;
        int token = nnlex(&value, &loc, scanner);
        if (token == 0) break;
        int line, col;
        diag_line_col(diag, loc.begin, &line, &col);
        fprintf(out, "%d:%d %s '%.*s'", line, col, parse_token_kind(token), loc.end - loc.begin,
                diag->text + loc.begin);
        if (token == NUMBER) fprintf(out, " = %.17g", value.number);
        if (token == INVALID) {
            fprintf(out, " (%s)", value.text);
            status = 1;
        }
        fputc('\n', out);
    }
    fprintf(out, "EOF\n");
    nn_delete_buffer(buffer, scanner);
    nnlex_destroy(scanner);
    arena_free(arena);
    return status;
}
