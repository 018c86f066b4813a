/* nn_parse_internal.h — state shared by the scanner and the parser (not part of any stage's API). */
#ifndef NN_PARSE_INTERNAL_H
#define NN_PARSE_INTERNAL_H

#include <stdbool.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"

/* A token the parser was given, remembered for syntax error messages. */
typedef struct TokenRecord {
    int kind;          /* token number (0 = none yet) */
    Span span;
    bool unmatched;    /* a closing bracket with no opening one before it */
} TokenRecord;

/* An open bracket, to point at it when its closing one is missing. */
typedef struct OpenBracket {
    char ch;
    int offset;
} OpenBracket;

enum { SCAN_BRACKETS = 256, EXPR_MAX_DEPTH = 1000 };

typedef struct ScanState {
    Arena *arena;
    int offset; /* byte offset of the next character */
    const char *invalid_message; /* why the last INVALID token was invalid */
    TokenRecord recent[3];       /* [0] the latest token (the parser's lookahead), [1] and [2] before it */
    OpenBracket brackets[SCAN_BRACKETS];
    int bracket_depth;           /* may exceed SCAN_BRACKETS; only the outermost are kept */
    int open_count[3];           /* kept brackets open, per kind: ( [ { */
} ScanState;

typedef struct ParseState {
    Arena *arena;
    Diag *diag;
    Ast *ast;
    ScanState *scan;
    bool too_deep_reported; /* "nested too deeply" is said once */
} ParseState;

#endif
