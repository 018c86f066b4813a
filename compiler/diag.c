/* diag.c — diagnostics with the source line and a caret under the offending span, kept with their
 * notes and printed in source order (diag.h). */
#include "diag.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_settings.h"

/* One diagnostic and its notes, as the text to print, and where it sorts. */
typedef struct DiagRecord {
    int rank;     /* 0: the command line, 1: a place in the file, 2: the file as a whole */
    int offset;   /* rank 1: the span's first byte */
    int sequence; /* the order of reporting, among equals */
    char *text;
    size_t length;
} DiagRecord;

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
static void diag_show_source(const Diag *diag, FILE *out, Span span) {
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
    if (from > line_start) fputs("...", out);
    for (int i = from, n; i < to; i += n) {
        n = diag_unit(diag, i, to, &shown);
        if (shown) fputs(shown, out);
        else fwrite(text + i, 1, (size_t)n, out);
    }
    if (to < line_end) fputs("...", out);
    fputc('\n', out);
    if (from > line_start) fputs("   ", out);
    bool caret = false;
    for (int i = from, n; i < to || !caret; i += n) {
        n = i < to ? diag_unit(diag, i, to, &shown) : 1;
        if (i + n <= begin) {
            fputc(text[i] == '\t' ? '\t' : ' ', out);
        } else if (!caret) {
            fputc('^', out);
            caret = true;
        } else if (i < end) {
            fputc('~', out);
        } else {
            break;
        }
    }
    fputc('\n', out);
}

static void diag_emit(Diag *diag, FILE *out, Span span, const char *kind, const char *suffix, const char *fmt, va_list ap) {
    if (span.begin >= 0) {
        int line, col;
        diag_line_col(diag, span.begin, &line, &col);
        fprintf(out, "%s:%d:%d: %s: ", diag->path, line, col, kind);
    } else {
        fprintf(out, "%s: %s: ", diag->path, kind);
    }
    vfprintf(out, fmt, ap);
    fputs(suffix, out);
    fputc('\n', out);
    if (span.begin >= 0) diag_show_source(diag, out, span);
}

/* Hands one diagnostic to the sink, its message formatted. */
static void diag_to_sink(Diag *diag, DiagKind kind, Span span, const char *fmt, va_list ap) {
    char message[1024];
    va_list copy;
    va_copy(copy, ap);
    vsnprintf(message, sizeof message, fmt, copy);
    va_end(copy);
    diag->sink(diag->sink_data, kind, span, message);
}

static void diag_close_record(Diag *diag) {
    if (!diag->record) return;
    fclose(diag->record); /* sets the record's text and length */
    diag->record = NULL;
}

/* Starts the record of a new diagnostic; its notes go into the same record. */
static FILE *diag_open_record(Diag *diag, int rank, int offset) {
    diag_close_record(diag);
    if (diag->record_count == diag->record_cap) {
        int cap = diag->record_cap ? 2 * diag->record_cap : 16;
        DiagRecord *grown = realloc(diag->records, sizeof *grown * (size_t)cap);
        if (!grown) return NULL;
        diag->records = grown;
        diag->record_cap = cap;
    }
    DiagRecord *r = &diag->records[diag->record_count];
    *r = (DiagRecord){.rank = rank, .offset = offset, .sequence = diag->record_count};
    diag->record = open_memstream(&r->text, &r->length);
    if (!diag->record) return NULL;
    diag->record_count++;
    return diag->record;
}

/* Where a note goes: the open record, or (a note with nothing before it) a record of its own. */
static FILE *diag_note_stream(Diag *diag) {
    if (diag->record) return diag->record;
    FILE *f = diag_open_record(diag, 2, 0);
    return f ? f : diag->out;
}

static int diag_record_order(const void *a, const void *b) {
    const DiagRecord *x = a, *y = b;
    if (x->rank != y->rank) return x->rank - y->rank;
    if (x->rank == 1 && x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->sequence - y->sequence;
}

void diag_print(Diag *diag) {
    diag_flush(diag);
    diag_close_record(diag);
    if (diag->record_count) qsort(diag->records, (size_t)diag->record_count, sizeof *diag->records, diag_record_order);
    for (int i = 0; i < diag->record_count; i++) {
        if (diag->out) fwrite(diag->records[i].text, 1, diag->records[i].length, diag->out);
        free(diag->records[i].text);
    }
    free(diag->records);
    diag->records = NULL;
    diag->record_count = diag->record_cap = 0;
    if (diag->out && diag->too_many_errors) fprintf(diag->out, "%s: note: too many errors, stopping here\n", diag->path);
    if (diag->out && diag->too_many_warnings) fprintf(diag->out, "%s: note: too many warnings, the rest are not shown\n", diag->path);
    diag->too_many_errors = diag->too_many_warnings = false;
    if (diag->out) fflush(diag->out);
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

/* An error, or a warning (printed as an error under -Werror). */
static void diag_report(Diag *diag, bool warning, Span span, const char *fmt, va_list ap) {
    bool as_error = !warning || diag->warnings == DIAG_WARNINGS_AS_ERRORS;
    diag_flush(diag);
    diag->skip_notes = true;
    if (warning && diag->warnings == DIAG_WARNINGS_OFF) return;
    if (as_error) diag->error_count++;
    else diag->warning_count++;
    int *printed = as_error ? &diag->printed_errors : &diag->printed_warnings;
    if (diag->max_errors && *printed >= diag->max_errors) {
        if (as_error && *printed == diag->max_errors) {
            diag->too_many_errors = true; /* said once, after the printed ones */
            (*printed)++;
        } else if (!as_error) {
            diag->too_many_warnings = true;
        }
        return;
    }
    unsigned h = diag_hash(span, fmt, ap);
    for (int i = 0; i < diag->remembered_count; i++)
        if (diag->remembered[i] == h) return;
    if (diag->remembered_count < DIAG_REMEMBERED) diag->remembered[diag->remembered_count++] = h;
    (*printed)++;
    if (diag->sink) diag_to_sink(diag, as_error ? DIAG_KIND_ERROR : DIAG_KIND_WARNING, span, fmt, ap);
    FILE *out = diag_open_record(diag, span.begin >= 0 ? 1 : 2, span.begin);
    if (!out) return;
    diag->skip_notes = false;
    diag_emit(diag, out, span, as_error ? "error" : "warning", warning && as_error ? " [-Werror]" : "", fmt, ap);
    diag->pending_context = diag->context_data;
}

void diag_error(Diag *diag, Span span, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_report(diag, false, span, fmt, ap);
    va_end(ap);
}

void diag_warning(Diag *diag, Span span, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_report(diag, true, span, fmt, ap);
    va_end(ap);
}

void diag_note(Diag *diag, Span span, const char *fmt, ...) {
    if (diag->skip_notes) return;
    va_list ap;
    if (diag->sink) {
        va_start(ap, fmt);
        diag_to_sink(diag, DIAG_KIND_NOTE, span, fmt, ap);
        va_end(ap);
    }
    FILE *out = diag_note_stream(diag);
    if (!out) return;
    va_start(ap, fmt);
    if (span.begin < 0) {
        fprintf(out, "note: ");
        vfprintf(out, fmt, ap);
        fputc('\n', out);
    } else {
        diag_emit(diag, out, span, "note", "", fmt, ap);
    }
    va_end(ap);
}

void diag_cmdline_error(Diag *diag, const char *fmt, ...) {
    diag->error_count++;
    diag_flush(diag);
    diag->skip_notes = false;
    va_list ap;
    if (diag->sink) {
        va_start(ap, fmt);
        diag_to_sink(diag, DIAG_KIND_ERROR, SPAN_NONE, fmt, ap);
        va_end(ap);
    }
    FILE *out = diag_open_record(diag, 0, 0);
    if (!out) out = diag->out;
    if (!out) return;
    va_start(ap, fmt);
    fprintf(out, "nnc: error: ");
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    va_end(ap);
}

/* The one "did you mean" rule, shared with the runtime (runtime/settings.c). */
const char *diag_closest(const char *word, const char *const *candidates, int count) {
    return nnrt_closest(word, candidates, count);
}
