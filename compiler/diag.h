/* diag.h — diagnostics with source spans, in gcc/clang style:
 *
 *     FILE:LINE:COL: error: MESSAGE
 *       source line
 *       ^~~~~~
 *     FILE:LINE:COL: note: MESSAGE
 *
 * Spans are byte offsets into the source text; line and column are computed only when printing.
 * Every stage reports through one Diag and returns a status; nothing here exits. */
#ifndef NNC_DIAG_H
#define NNC_DIAG_H

#include <stdio.h>

typedef struct Span {
    int begin, end; /* [begin, end) byte offsets; begin < 0 means "no location" */
} Span;

#define SPAN_NONE ((Span){-1, -1})

typedef struct Diag {
    const char *path;  /* as given on the command line */
    const char *text;  /* the whole source, NUL-terminated */
    int length;
    int error_count;
    int max_errors;    /* stop printing after this many (0 = unlimited) */
    FILE *out;
} Diag;

void diag_init(Diag *diag, const char *path, const char *text, int length, FILE *out);
void diag_error(Diag *diag, Span span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *diag, Span span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Errors about the command line (no source location): "nnc: error: ..." */
void diag_cmdline_error(Diag *diag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_line_col(const Diag *diag, int offset, int *line, int *col);
Span span_join(Span a, Span b);

/* "Did you mean": the candidate closest to `word` by edit distance, or NULL when none is close. */
const char *diag_closest(const char *word, const char *const *candidates, int count);

#endif
