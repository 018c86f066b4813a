/* source.h — reading a .nn file, naming its model after the file, and running the front end
 * (parse + sema) on it for the commands that need a model but no code: `diff` and `compare`. */
#ifndef NNC_SOURCE_H
#define NNC_SOURCE_H

#include <stdio.h>

#include "arena.h"
#include "ast.h"
#include "sema.h"

/* Reads the whole file (at most 4 MiB) into a malloc'ed, NUL-terminated buffer; NULL after an
 * "nnc: error:" message on stderr. */
char *source_read(const char *path, int *length);

/* "dir/fashion_mlp.nn" -> "fashion_mlp" (characters other than [A-Za-z0-9_-] become '_'). */
char *source_model_name(Arena *arena, const char *path);

/* Reads and analyzes PATH with the -D overrides; diagnostics go to DIAG_OUT, warnings as
 * WARNINGS says (-w, -Werror). The AST is stored in *ast when AST is not NULL (also when sema
 * fails, if parsing succeeded). NULL on any error. */
Model *source_analyze(Arena *arena, const char *path, Define *defines, int define_count, FILE *diag_out,
                      DiagWarnings warnings, const Ast **ast);

#endif
