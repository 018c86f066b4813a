/* diag.h — diagnostics with source spans, in gcc/clang style:
 *
 *     FILE:LINE:COL: error: MESSAGE
 *       source line
 *       ^~~~~~
 *     FILE:LINE:COL: note: MESSAGE
 *
 *     FILE:LINE:COL: warning: MESSAGE      (the same layout; -w drops them, -Werror makes them errors)
 *
 * Spans are byte offsets into the source text; line and column (in bytes, like clang) are
 * computed only when printing. Every stage reports through one Diag and returns a status;
 * nothing here exits.
 *
 * Diagnostics are kept, each with its notes, until diag_print, which writes them in source order
 * (stably: command-line errors first, then by position, then those without a place): stages
 * discover mistakes in evaluation order (a call's name before its piped input, warnings after the
 * whole model), which is not the order a reader scans a line. The stages that report (parse_source,
 * sema_analyze) print before they return.
 *
 * An error identical to one already reported (same span, same message: a mistake inside a block
 * that is instantiated twice) is counted but not printed again, nor are its notes; so is a repeated
 * warning. After `max_errors` errors (and as many warnings) the rest are only counted. */
#ifndef NNC_DIAG_H
#define NNC_DIAG_H

#include <stdbool.h>
#include <stdio.h>

typedef struct Span {
    int begin, end; /* [begin, end) byte offsets; begin < 0 means "no location" */
} Span;

#define SPAN_NONE ((Span){-1, -1})

struct Diag;
/* Prints context notes for an error (e.g. "in block 'b' instantiated here"); `data` is what
 * Diag.context_data was when the error was reported. Called after the error's own notes. */
typedef void DiagContextFn(struct Diag *diag, const void *data);

enum { DIAG_REMEMBERED = 64 };

typedef enum DiagKind { DIAG_KIND_ERROR, DIAG_KIND_WARNING, DIAG_KIND_NOTE } DiagKind;

/* Collecting instead of printing (the language server): a sink sees every diagnostic that would
 * be printed (errors, warnings, then their notes, in reporting order) with its span and message
 * as formatted text (no "FILE:LINE:COL:", no source line). With a sink and `out` NULL nothing is
 * printed. */
typedef void DiagSink(void *data, DiagKind kind, Span span, const char *message);

/* What happens to warnings (-w, -Werror). */
typedef enum DiagWarnings { DIAG_WARNINGS_ON, DIAG_WARNINGS_OFF, DIAG_WARNINGS_AS_ERRORS } DiagWarnings;

struct DiagRecord;

typedef struct Diag {
    const char *path;  /* as given on the command line */
    const char *text;  /* the whole source, NUL-terminated */
    int length;
    int error_count;   /* every error, printed or not (warnings under -Werror included) */
    int warning_count; /* every warning reported as a warning */
    int max_errors;    /* stop printing after this many errors, and as many warnings (0 = unlimited) */
    DiagWarnings warnings;
    FILE *out;         /* NULL: print nothing (a sink collects them) */
    DiagSink *sink;    /* NULL: none */
    void *sink_data;
    /* Context notes: set by the stage that knows the context (sema: the block instance). */
    DiagContextFn *context_fn;
    const void *context_data;
    /* private */
    int printed_errors, printed_warnings;
    bool skip_notes;           /* the last error was not printed: drop its notes */
    bool too_many_errors, too_many_warnings;
    struct DiagRecord *records; /* kept until diag_print (malloc'd) */
    int record_count, record_cap;
    FILE *record;              /* the open record's text (open_memstream), or NULL */
    const void *pending_context;
    unsigned remembered[DIAG_REMEMBERED]; /* hashes of printed errors, for de-duplication */
    int remembered_count;
    int cursor_offset, cursor_line, cursor_line_start; /* line/column lookups scan on from here */
} Diag;

void diag_init(Diag *diag, const char *path, const char *text, int length, FILE *out);
void diag_error(Diag *diag, Span span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *diag, Span span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A model that compiles but is probably not what was meant. An error under -Werror, nothing
 * under -w (its notes are dropped with it). */
void diag_warning(Diag *diag, Span span, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Errors about the command line (no source location): "nnc: error: ..." */
void diag_cmdline_error(Diag *diag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the context notes still owed to the last error; stages that set context_fn call this
 * before they return. */
void diag_flush(Diag *diag);
/* Writes every diagnostic kept so far to `out`, in source order, and forgets them. Stages call it
 * before they return; calling it again prints only what came since. */
void diag_print(Diag *diag);
/* True once further errors would not be printed: callers may skip costly suggestions. */
bool diag_muted(const Diag *diag);
/* Line and column of a byte offset. The cost is the distance from the previous lookup, so a
 * token dump is linear in the file's length. */
void diag_line_col(const Diag *diag, int offset, int *line, int *col);
Span span_join(Span a, Span b);

/* "Did you mean": the candidate closest to `word` by edit distance, or NULL when none is close. */
const char *diag_closest(const char *word, const char *const *candidates, int count);

#endif
