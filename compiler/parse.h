/* parse.h — scanner + parser: source text to AST, reporting syntax errors through diag.
 * Returns the AST (possibly partial) and leaves diag->error_count > 0 on errors. */
#ifndef NNC_PARSE_H
#define NNC_PARSE_H

#include <stdio.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"

Ast *parse_source(Arena *arena, Diag *diag);
/* --dump-tokens: one token per line, "LINE:COL KIND 'text'". Returns 0, or 1 on invalid tokens. */
int parse_dump_tokens(Diag *diag, FILE *out);

#endif
