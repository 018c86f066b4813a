/* source.c — reading .nn files and the front end as one call (see source.h). */
#include "source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"

enum { MAX_SOURCE_BYTES = 4 << 20 };

/* Reads the whole file; NULL after an error message. */
char *source_read(const char *path, int *length) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "nnc: error: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        fprintf(stderr, "nnc: error: '%s' is a directory, not a .nn file\n", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nnc: error: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(MAX_SOURCE_BYTES + 1);
    if (!text) { fclose(f); fprintf(stderr, "nnc: error: out of memory\n"); return NULL; }
    size_t n = fread(text, 1, MAX_SOURCE_BYTES + 1, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        fprintf(stderr, "nnc: error: cannot read '%s'\n", path);
        free(text);
        return NULL;
    }
    if (n > MAX_SOURCE_BYTES) {
        fprintf(stderr, "nnc: error: '%s' is larger than %d MiB; a .nn file describes a model, not data\n", path, MAX_SOURCE_BYTES >> 20);
        free(text);
        return NULL;
    }
    text[n] = '\0';
    *length = (int)n;
    return text;
}

/* "dir/fashion_mlp.nn" -> "fashion_mlp" */
char *source_model_name(Arena *arena, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *stem = arena_strndup(arena, base, len);
    /* A model name must be usable as a file name and in messages. */
    for (char *c = stem; *c; c++)
        if (!(*c == '_' || *c == '-' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'))) *c = '_';
    return stem;
}

Model *source_analyze(Arena *arena, const char *path, Define *defines, int define_count, FILE *diag_out,
                      DiagWarnings warnings, const Ast **ast_out) {
    if (ast_out) *ast_out = NULL;
    int length = 0;
    char *buffer = source_read(path, &length);
    if (!buffer) return NULL;
    /* The arena copy outlives this call: names in the AST and the model may point into it. */
    char *text = arena_alloc(arena, (size_t)length + 1);
    memcpy(text, buffer, (size_t)length + 1);
    free(buffer);
    Diag diag;
    diag_init(&diag, path, text, length, diag_out);
    diag.warnings = warnings;
    Ast *ast = parse_source(arena, &diag);
    if (diag.error_count) return NULL;
    if (ast_out) *ast_out = ast;
    for (int i = 0; i < define_count; i++) defines[i].used = false;
    return sema_analyze(arena, &diag, ast, defines, define_count, source_model_name(arena, path));
}
