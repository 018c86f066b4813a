/* nn_parse_internal.h — state shared by the scanner and the parser (not part of any stage's API). */
#ifndef NN_PARSE_INTERNAL_H
#define NN_PARSE_INTERNAL_H

#include "arena.h"
#include "ast.h"
#include "diag.h"

typedef struct ScanState {
    Arena *arena;
    int offset; /* byte offset of the next character */
    const char *invalid_message; /* why the last INVALID token was invalid */
} ScanState;

typedef struct ParseState {
    Arena *arena;
    Diag *diag;
    Ast *ast;
    ScanState *scan;
} ParseState;

#endif
