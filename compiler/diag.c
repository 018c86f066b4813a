/* diag.c — printing diagnostics with the source line and a caret under the offending span. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diag_init(Diag *diag, const char *path, const char *text, int length, FILE *out) {
    diag->path = path;
    diag->text = text;
    diag->length = length;
    diag->error_count = 0;
    diag->max_errors = 20;
    diag->out = out;
}

void diag_line_col(const Diag *diag, int offset, int *line, int *col) {
    int l = 1, c = 1;
    if (offset > diag->length) offset = diag->length;
    for (int i = 0; i < offset; i++) {
        if (diag->text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

Span span_join(Span a, Span b) {
    if (a.begin < 0) return b;
    if (b.begin < 0) return a;
    return (Span){a.begin < b.begin ? a.begin : b.begin, a.end > b.end ? a.end : b.end};
}

/* The source line under the span, then a caret at its start and '~' under the rest (on that line). */
static void diag_show_source(const Diag *diag, Span span) {
    int begin = span.begin, end = span.end;
    if (begin > diag->length) begin = diag->length;
    if (end < begin) end = begin;
    int line_start = begin;
    while (line_start > 0 && diag->text[line_start - 1] != '\n') line_start--;
    int line_end = begin;
    while (line_end < diag->length && diag->text[line_end] != '\n') line_end++;
    if (end > line_end) end = line_end;
    /* Binary garbage would wreck the terminal: print non-printable bytes as '?'. */
    for (int i = line_start; i < line_end; i++) {
        unsigned char ch = (unsigned char)diag->text[i];
        fputc(ch == '\t' || (ch >= 32 && ch != 127) ? ch : '?', diag->out);
    }
    fputc('\n', diag->out);
    for (int i = line_start; i < begin; i++) fputc(diag->text[i] == '\t' ? '\t' : ' ', diag->out);
    fputc('^', diag->out);
    for (int i = begin + 1; i < end; i++) fputc('~', diag->out);
    fputc('\n', diag->out);
}

static void diag_emit(Diag *diag, Span span, const char *kind, const char *fmt, va_list ap) {
    if (span.begin >= 0) {
        int line, col;
        diag_line_col(diag, span.begin, &line, &col);
        fprintf(diag->out, "%s:%d:%d: %s: ", diag->path, line, col, kind);
    } else {
        fprintf(diag->out, "%s: %s: ", diag->path, kind);
    }
    vfprintf(diag->out, fmt, ap);
    fputc('\n', diag->out);
    if (span.begin >= 0) diag_show_source(diag, span);
}

void diag_error(Diag *diag, Span span, const char *fmt, ...) {
    diag->error_count++;
    if (diag->max_errors && diag->error_count > diag->max_errors) {
        if (diag->error_count == diag->max_errors + 1)
            fprintf(diag->out, "%s: note: too many errors, stopping here\n", diag->path);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    diag_emit(diag, span, "error", fmt, ap);
    va_end(ap);
}

void diag_note(Diag *diag, Span span, const char *fmt, ...) {
    if (diag->max_errors && diag->error_count > diag->max_errors) return;
    va_list ap;
    va_start(ap, fmt);
    if (span.begin < 0) {
        fprintf(diag->out, "note: ");
        vfprintf(diag->out, fmt, ap);
        fputc('\n', diag->out);
    } else {
        diag_emit(diag, span, "note", fmt, ap);
    }
    va_end(ap);
}

void diag_cmdline_error(Diag *diag, const char *fmt, ...) {
    diag->error_count++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(diag->out, "nnc: error: ");
    vfprintf(diag->out, fmt, ap);
    fputc('\n', diag->out);
    va_end(ap);
}

static int diag_edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 64 || lb > 64) return 1000;
    int row[65];
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag_prev = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = diag_prev + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag_prev = up;
        }
    }
    return row[lb];
}

const char *diag_closest(const char *word, const char *const *candidates, int count) {
    const char *best = NULL;
    int best_distance = 1000;
    int len = (int)strlen(word);
    /* Allow about one edit per three characters, at least one. */
    int limit = len < 3 ? 1 : (len + 2) / 3;
    for (int i = 0; i < count; i++) {
        int d = diag_edit_distance(word, candidates[i]);
        if (d < best_distance && d <= limit) {
            best = candidates[i];
            best_distance = d;
        }
    }
    return best;
}
