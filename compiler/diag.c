/* diag.c — printing diagnostics with the source line and a caret under the offending span. */
#include "diag.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_settings.h"

void diag_init(Diag *diag, const char *path, const char *text, int length, FILE *out) {
    memset(diag, 0, sizeof *diag);
    diag->path = path;
    diag->text = text;
    diag->length = length;
    diag->max_errors = 20;
    diag->out = out;
    diag->cursor_line = 1;
}

void diag_line_col(const Diag *diag, int offset, int *line, int *col) {
    /* The cursor is only a cache, so it is updated even through a const pointer (no Diag is
     * defined const). Token dumps ask in increasing order, which keeps them linear in the size. */
    Diag *d = (Diag *)diag;
    if (offset > d->length) offset = d->length;
    if (offset < 0) offset = 0;
    if (offset < d->cursor_offset) {
        /* Step back: uncount the newlines passed, then find the start of the line. */
        for (int i = offset; i < d->cursor_offset; i++) d->cursor_line -= d->text[i] == '\n';
        int start = offset;
        while (start > 0 && d->text[start - 1] != '\n') start--;
        d->cursor_offset = offset;
        d->cursor_line_start = start;
    }
    const char *p = d->text + d->cursor_offset, *stop = d->text + offset;
    while ((p = memchr(p, '\n', (size_t)(stop - p))) != NULL) {
        d->cursor_line++;
        d->cursor_line_start = (int)(++p - d->text);
    }
    d->cursor_offset = offset;
    *line = d->cursor_line;
    *col = offset - d->cursor_line_start + 1;
}

Span span_join(Span a, Span b) {
    if (a.begin < 0) return b;
    if (b.begin < 0) return a;
    return (Span){a.begin < b.begin ? a.begin : b.begin, a.end > b.end ? a.end : b.end};
}

/* Length of the well-formed, printable UTF-8 sequence at s (2 to 4 bytes), or 0 when the bytes
 * are not one (then each byte is shown as '?'). */
static int diag_utf8_length(const unsigned char *s, int avail) {
    unsigned c = s[0];
    int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || n > avail) return 0;
    uint32_t cp = c & (0x7Fu >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return cp < 0xA0 ? 0 : n; /* C1 control characters would upset the terminal */
}

/* One display unit at text[i]: a printable byte, a UTF-8 character or an unprintable byte.
 * Returns its length in bytes; *shown is what to print for it (NULL: print the bytes as they are). */
static int diag_unit(const Diag *diag, int i, int limit, const char **shown) {
    unsigned char ch = (unsigned char)diag->text[i];
    *shown = NULL;
    if (ch == '\t' || (ch >= 32 && ch < 127)) return 1;
    int n = ch >= 0x80 ? diag_utf8_length((const unsigned char *)diag->text + i, limit - i) : 0;
    if (n) return n;
    /* Binary garbage would wreck the terminal: non-printable bytes show as '?'. */
    *shown = "?";
    return 1;
}

enum { SHOW_MAX_BYTES = 160, SHOW_BEFORE_BYTES = 60 };

/* The source line under the span, then a caret at its start and '~' under the rest (on that line).
 * A very long line is shown as a window around the span, with "..." where it was cut. */
static void diag_show_source(const Diag *diag, Span span) {
    const char *text = diag->text;
    int begin = span.begin, end = span.end;
    if (begin > diag->length) begin = diag->length;
    if (end < begin) end = begin;
    int line_start = begin;
    while (line_start > 0 && text[line_start - 1] != '\n') line_start--;
    const char *nl = memchr(text + begin, '\n', (size_t)(diag->length - begin));
    int line_end = nl ? (int)(nl - text) : diag->length;
    if (line_end > begin && text[line_end - 1] == '\r') line_end--; /* CRLF line ends */
    if (end > line_end) end = line_end;
    int from = line_start, to = line_end;
    if (line_end - line_start > SHOW_MAX_BYTES) {
        if (begin - SHOW_BEFORE_BYTES > line_start) from = begin - SHOW_BEFORE_BYTES;
        if (from + SHOW_MAX_BYTES < line_end) to = from + SHOW_MAX_BYTES;
        /* Cut between characters, not inside a UTF-8 sequence. */
        while (from > line_start && from < begin && ((unsigned char)text[from] & 0xC0) == 0x80) from++;
        while (to < line_end && ((unsigned char)text[to] & 0xC0) == 0x80) to++;
    }
    const char *shown;
    if (from > line_start) fputs("...", diag->out);
    for (int i = from, n; i < to; i += n) {
        n = diag_unit(diag, i, to, &shown);
        if (shown) fputs(shown, diag->out);
        else fwrite(text + i, 1, (size_t)n, diag->out);
    }
    if (to < line_end) fputs("...", diag->out);
    fputc('\n', diag->out);
    if (from > line_start) fputs("   ", diag->out);
    bool caret = false;
    for (int i = from, n; i < to || !caret; i += n) {
        n = i < to ? diag_unit(diag, i, to, &shown) : 1;
        if (i + n <= begin) {
            fputc(text[i] == '\t' ? '\t' : ' ', diag->out);
        } else if (!caret) {
            fputc('^', diag->out);
            caret = true;
        } else if (i < end) {
            fputc('~', diag->out);
        } else {
            break;
        }
    }
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

void diag_flush(Diag *diag) {
    const void *pending = diag->pending_context;
    diag->pending_context = NULL;
    if (pending && diag->context_fn) diag->context_fn(diag, pending);
}

bool diag_muted(const Diag *diag) { return diag->max_errors && diag->printed_errors >= diag->max_errors; }

/* FNV-1a over the span and the message's first bytes: enough to recognize a repeated error. */
static unsigned diag_hash(Span span, const char *fmt, va_list ap) {
    char buf[512];
    va_list copy;
    va_copy(copy, ap);
    vsnprintf(buf, sizeof buf, fmt, copy);
    va_end(copy);
    unsigned h = 2166136261u;
    h = (h ^ (unsigned)span.begin) * 16777619u;
    h = (h ^ (unsigned)span.end) * 16777619u;
    for (const char *c = buf; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    return h;
}

void diag_error(Diag *diag, Span span, const char *fmt, ...) {
    diag->error_count++;
    diag_flush(diag);
    diag->skip_notes = true;
    if (diag_muted(diag)) {
        if (diag->printed_errors == diag->max_errors) {
            fprintf(diag->out, "%s: note: too many errors, stopping here\n", diag->path);
            diag->printed_errors++;
        }
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    unsigned h = diag_hash(span, fmt, ap);
    for (int i = 0; i < diag->remembered_count; i++) {
        if (diag->remembered[i] == h) {
            va_end(ap);
            return;
        }
    }
    if (diag->remembered_count < DIAG_REMEMBERED) diag->remembered[diag->remembered_count++] = h;
    diag->printed_errors++;
    diag->skip_notes = false;
    diag_emit(diag, span, "error", fmt, ap);
    va_end(ap);
    diag->pending_context = diag->context_data;
}

void diag_note(Diag *diag, Span span, const char *fmt, ...) {
    if (diag->skip_notes) return;
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
    diag_flush(diag);
    diag->skip_notes = false;
    va_list ap;
    va_start(ap, fmt);
    fprintf(diag->out, "nnc: error: ");
    vfprintf(diag->out, fmt, ap);
    fputc('\n', diag->out);
    va_end(ap);
}

/* The one "did you mean" rule, shared with the runtime (runtime/settings.c). */
const char *diag_closest(const char *word, const char *const *candidates, int count) {
    return nnrt_closest(word, candidates, count);
}
