/* data_csv.c — CSV data sets: a header row, then one row per example.
 *
 *   file  = [ BOM ] [ header ] { row }    blank lines are skipped
 *   row   = cell { "," cell } newline     newline = LF or CRLF (a CR alone is an error)
 *   cell  = spaces ( '"' { char | '""' } '"' | { char - ',' - newline } ) spaces
 *
 * The target column(s) are chosen by name (`target="label"`, or `target="a,b,c"` for a float
 * target with several values), by 0-based number (`target_column=N`), or default to the model's
 * target name (header) / the last column(s) (no header). Every other column is a feature, in file
 * order, and their count must equal the model's input size. Header names must be non-empty and
 * distinct. Empty cells and NA/NaN/N/A/null/? are "missing": an error, or with missing="skip"
 * the row is dropped. Numbers are strict decimals (no hex, inf, nan) within float32's range; class
 * labels are integers in range, or names (v2: "class labels" below). A NUL byte anywhere is an error (a binary file). Errors are
 * reported as `file:line:column: error: message`, line and column 1-based (the column counts
 * bytes, after a BOM on line 1); gzip-level errors as `error: file: byte offset N: ...`.
 *
 * Text data (`text="COLUMN"`, v2): the named column's cell becomes the int[T] input instead of
 * numeric features (every other non-target column is ignored): bytes as ids byte + 1 at once,
 * words kept per example until the training part's vocabulary is known (data_words.c).
 *
 * The file is streamed (gzip is recognized by content and decompressed on the fly): a buffer holds
 * the current row, whose cells are parsed in place, and values go straight into float arrays that
 * grow as rows arrive. Memory is the parsed data plus one row of text, never the whole file; the
 * parsed data may not exceed 16 GiB and one row 256 MiB.
 */
#include "nnrt_internal.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX_BYTES (16ull << 30)   /* parsed values */
#define CSV_MAX_ROW (256u << 20)      /* text of one row */
#define CSV_CHUNK (1u << 16)

typedef struct Cell {
    size_t off;    /* in the reader's buffer while the row is being read */
    char *s;       /* NUL-terminated in place once the row is complete */
    size_t len;
    int64_t line, col;
} Cell;

typedef struct Reader {
    const char *path;
    NnrtStream *in;
    char *buf;          /* buf[0..size) holds the current row (and what follows it) */
    size_t cap, size, pos;
    size_t line_start;  /* index of the current line's first byte: columns count from it */
    size_t row_start;   /* index of the current row's first byte: what must stay buffered */
    int64_t line;
    int eof, failed;
    Cell *cells;
    int ncells, ccap;
} Reader;

/* Reads more of the file after buf[size]. Returns 1 if bytes arrived, 0 at the end or after an
 * error (r->failed, reported). */
static int row_too_long(Reader *r) {
    nnrt_error_at(r->path, r->line, 1, "this row is longer than the %u MiB limit (not a "
                  "CSV file, or a quoted cell that never ends?)", CSV_MAX_ROW >> 20);
    r->failed = 1;
    return 0;
}

static int fill(Reader *r) {
    if (r->eof || r->failed) return 0;
    /* The parser wants more of this row: what is buffered is all row, but for at most a CR of its
     * line ending, so past CSV_MAX_ROW + 1 bytes the row is certainly too long. The exact check
     * is next_row's, when the row ends. */
    if (r->size - r->row_start > CSV_MAX_ROW + 1) return row_too_long(r);
    if (r->size == r->cap) {
        /* grow by doubling, but never past what the longest row needs after the bytes before it */
        size_t most = r->row_start + CSV_MAX_ROW + CSV_CHUNK;
        size_t ncap = r->cap ? r->cap * 2 : CSV_CHUNK;
        if (ncap > most) ncap = most;
        char *nb = realloc(r->buf, ncap + 1); /* + 1: room to terminate the last cell */
        if (!nb) {
            nnrt_error("out of memory reading '%s'", r->path);
            r->failed = 1;
            return 0;
        }
        r->buf = nb;
        r->cap = ncap;
    }
    size_t k = nnrt_stream_read(r->in, r->buf + r->size, r->cap - r->size);
    r->size += k;
    if (k < 1) {
        r->eof = 1;
        r->failed = nnrt_stream_failed(r->in);
    }
    return k > 0;
}

/* Between rows: drops the bytes already parsed once they are more than half the buffer, so the
 * copying costs O(1) per byte read. */
static void compact(Reader *r) {
    size_t keep = r->pos; /* == line_start: rows end with their newline */
    if (keep <= r->cap / 2) return;
    memmove(r->buf, r->buf + keep, r->size - keep);
    r->size -= keep;
    r->pos -= keep;
    r->line_start -= keep;
}

static int push_cell(Reader *r, size_t off, size_t len, int64_t line, int64_t col) {
    if (r->ncells == r->ccap) {
        if (r->ccap >= (1 << 28)) {
            nnrt_error_at(r->path, line, col, "too many columns");
            return -1;
        }
        int ncap = r->ccap ? r->ccap * 2 : 64;
        Cell *nc = realloc(r->cells, sizeof(Cell) * (size_t)ncap);
        if (!nc) {
            nnrt_error("out of memory reading '%s'", r->path);
            return -1;
        }
        r->cells = nc;
        r->ccap = ncap;
    }
    r->cells[r->ncells++] = (Cell){off, NULL, len, line, col};
    return 0;
}

/* The byte at pos + ahead, or -1 at the end of the data. */
static int peek(Reader *r, size_t ahead) {
    while (r->pos + ahead >= r->size)
        if (!fill(r)) return -1;
    return (unsigned char)r->buf[r->pos + ahead];
}
static int cur(Reader *r) { return peek(r, 0); }
static int64_t column(const Reader *r) { return (int64_t)(r->pos - r->line_start) + 1; }
static void newline(Reader *r) {
    r->pos++;
    r->line++;
    r->line_start = r->pos;
}

static int bad_byte(Reader *r, int c) {
    if (c == 0) {
        nnrt_error_at(r->path, r->line, column(r), "NUL byte in the text (is this a binary file?)");
        return 1;
    }
    if (c == '\r' && peek(r, 1) != '\n' && !r->failed) {
        nnrt_error_at(r->path, r->line, column(r), "carriage return without a line feed (only "
                      "LF and CRLF line endings are supported)");
        return 1;
    }
    return 0;
}

/* Next non-blank row into r->cells. Returns 1, 0 at end of file, -1 on error (reported). */
static int next_row(Reader *r) {
    for (;;) { /* skip blank lines */
        compact(r);
        r->row_start = r->pos;
        int c;
        while ((c = cur(r)) == ' ' || c == '\t' || (c == '\r' && peek(r, 1) == '\n')) r->pos++;
        if (r->failed) return -1;
        if (c < 0) return 0;
        if (c != '\n') break;
        newline(r);
    }
    r->ncells = 0;
    for (;;) {
        int c;
        while ((c = cur(r)) == ' ' || c == '\t') r->pos++;
        int64_t line = r->line, col = column(r);
        size_t start, w;
        if (c == '"') {
            r->pos++;
            start = w = r->pos;
            for (;;) {
                c = cur(r);
                if (c < 0) {
                    if (!r->failed) nnrt_error_at(r->path, line, col, "unterminated quoted cell");
                    return -1;
                }
                if (c == '"') {
                    if (peek(r, 1) == '"') {
                        r->buf[w++] = '"';
                        r->pos += 2;
                        continue;
                    }
                    r->pos++;
                    break;
                }
                if (c == 0 || (c == '\r' && bad_byte(r, c))) {
                    if (c == 0) bad_byte(r, c);
                    return -1;
                }
                r->buf[w++] = (char)c;
                if (c == '\n') newline(r);
                else r->pos++;
            }
            while ((c = cur(r)) == ' ' || c == '\t' || (c == '\r' && peek(r, 1) == '\n')) r->pos++;
            if (c >= 0 && c != ',' && c != '\n') {
                if (c == 0 || c == '\r') bad_byte(r, c);
                else if (isprint(c))
                    nnrt_error_at(r->path, r->line, column(r),
                                  "unexpected character '%c' after a closing quote", c);
                else
                    nnrt_error_at(r->path, r->line, column(r),
                                  "unexpected byte 0x%02x after a closing quote", (unsigned)c);
                return -1;
            }
        } else {
            start = r->pos;
            for (;;) { /* the hot loop: scan what is buffered, refill only at its end */
                const char *p = r->buf + r->pos, *e = r->buf + r->size;
                while (p < e && *p != ',' && *p != '\n' && *p != '\r' && *p != 0) p++;
                r->pos = (size_t)(p - r->buf);
                if (p == e) {
                    if (!fill(r)) {
                        c = -1;
                        break;
                    }
                    continue;
                }
                c = (unsigned char)*p;
                if (c == ',' || c == '\n') break;
                if (bad_byte(r, c)) return -1;
                r->pos++; /* a CR before LF: trimmed below */
            }
            w = r->pos;
            while (w > start && (r->buf[w - 1] == ' ' || r->buf[w - 1] == '\t' || r->buf[w - 1] == '\r'))
                w--;
        }
        if (r->failed) return -1;
        if (push_cell(r, start, w - start, line, col) != 0) return -1;
        if (c == ',') {
            r->pos++;
            continue;
        }
        /* the row's text, without its line ending, is at most CSV_MAX_ROW bytes: exactly */
        size_t end = r->pos;
        if (c == '\n' && end > r->row_start && r->buf[end - 1] == '\r') end--;
        if (end - r->row_start > CSV_MAX_ROW) return row_too_long(r), -1;
        if (c == '\n') newline(r);
        break;
    }
    /* every terminator position has been consumed (or is the spare byte after the data), so
     * terminating in place is safe; the buffer does not move until the next call */
    for (int i = 0; i < r->ncells; i++) {
        Cell *cell = &r->cells[i];
        cell->s = r->buf + cell->off;
        cell->s[cell->len] = 0;
    }
    return 1;
}

static int is_missing(const char *s) {
    static const char *const tokens[] = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "?"};
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++)
        if (strcmp(s, tokens[i]) == 0) return 1;
    return 0;
}

/* Strict decimal number: digits, sign, point, exponent; nothing else (no hex, inf, nan).
 * Returns 0, -1 when it is not a number, -2 when it overflows a double (*v is then +-HUGE_VAL). */
static int parse_number(const char *s, double *v) {
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || *end) return -1;
    return isfinite(*v) ? 0 : -2;
}

typedef struct LabelSet LabelSet;
typedef struct Layout {
    int ncols;
    int *role;    /* per column: -1 ignored, 0 feature, 1 + k target value k, ROLE_TEXT */
    char **names; /* per column (owned copies: the header's text, or the column number) */
    LabelSet *labels; /* class[N] targets: the label column's distinct values (below), else NULL */
} Layout;

#define ROLE_TEXT (-2) /* csv(text=...): the column whose text becomes the input's ids */

static void list_columns(const Layout *L) {
    char buf[1024] = "";
    for (int i = 0; i < L->ncols; i++) {
        size_t n = strlen(buf);
        if (n > sizeof buf - 80) {
            snprintf(buf + n, sizeof buf - n, ", ... (%d columns)", L->ncols);
            break;
        }
        char clean[64];
        snprintf(buf + n, sizeof buf - n, "%s'%s'", i ? ", " : "",
                 nnrt_printable(L->names[i], clean, sizeof clean));
    }
    nnrt_note("the header has columns %s", buf);
}

/* Marks the target columns; names is "a" or "a,b,c". Returns the number marked or -1. */
static int mark_targets_by_name(const NnrtCsvOpts *o, const NnrtModel *m, Layout *L,
                                const char *path, int required) {
    const char *names = o->target ? o->target : m->target_name;
    if (!names) names = "";
    char *copy = nnrt_strdup(names);
    if (!copy) return -1;
    int k = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        size_t n = strlen(tok);
        while (n && tok[n - 1] == ' ') tok[--n] = 0;
        int found = -1;
        for (int c = 0; c < L->ncols; c++)
            if (strcmp(L->names[c], tok) == 0 && L->role[c] == 0) {
                found = c;
                break;
            }
        if (found < 0) {
            if (!required) continue;
            const char *sug = nnrt_closest(tok, (const char *const *)L->names, L->ncols);
            char c1[80], c2[80];
            if (sug)
                nnrt_error_at(path, 1, 1, "no column named '%s' (the target); did you mean '%s'?",
                              nnrt_printable(tok, c1, sizeof c1), nnrt_printable(sug, c2, sizeof c2));
            else
                nnrt_error_at(path, 1, 1, "no column named '%s' (the target)",
                              nnrt_printable(tok, c1, sizeof c1));
            list_columns(L);
            if (!o->target)
                nnrt_hint("name the target column with csv(\"%s\", target=\"COLUMN\")", path);
            free(copy);
            return -1;
        }
        L->role[found] = 1 + k++;
    }
    free(copy);
    return k;
}

/* Every value of the model's target has its column (when the file must have a target). */
static int check_target_count(const NnrtModel *m, const NnrtCsvOpts *o, const char *path, int want, int marked) {
    if (!o->need_target || marked == want) return 0;
    nnrt_error_at(path, 1, 1, "target '%s' of the model has %d values per example, but %d "
                  "target column%s selected; list them all: target=\"a,b,...\"",
                  m->target_name ? m->target_name : "y", want, marked, marked == 1 ? " is" : "s are");
    return -1;
}

/* csv(text="COLUMN"): the target column(s) as for numbers, the text column by name (with
 * header=false the columns are named by their 0-based numbers), every other column ignored. */
static int plan_text_layout(const NnrtModel *m, const NnrtCsvOpts *o, Layout *L, const char *path,
                            int header) {
    int want = (int)m->target_size, marked = 0;
    if (o->target_index >= 0) {
        if (o->target_index >= L->ncols && o->need_target) {
            nnrt_error_at(path, 1, 1, "target_column=%lld is out of range: the file has %d columns",
                          (long long)o->target_index, L->ncols);
            return -1;
        }
        if (o->target_index < L->ncols) L->role[o->target_index] = 1, marked = 1;
    } else if (header) {
        marked = mark_targets_by_name(o, m, L, path, o->need_target);
        if (marked < 0) return -1;
    } else if (o->need_target) {
        for (int k = 0; k < want && k < L->ncols; k++) L->role[L->ncols - want + k] = 1 + k;
        marked = want < L->ncols ? want : L->ncols;
    }
    if (check_target_count(m, o, path, want, marked) != 0) return -1;
    int text = -1;
    for (int c = 0; c < L->ncols && text < 0; c++)
        if (strcmp(L->names[c], o->text) == 0) text = c;
    char c1[80], c2[80];
    if (text < 0) {
        const char *sug = nnrt_closest(o->text, (const char *const *)L->names, L->ncols);
        if (sug)
            nnrt_error_at(path, 1, 1, "no column named '%s' (the text); did you mean '%s'?",
                          nnrt_printable(o->text, c1, sizeof c1), nnrt_printable(sug, c2, sizeof c2));
        else
            nnrt_error_at(path, 1, 1, "no column named '%s' (the text)",
                          nnrt_printable(o->text, c1, sizeof c1));
        if (header) list_columns(L);
        else nnrt_note("csv(header=false) names the columns by number: text=\"0\" .. text=\"%d\"",
                       L->ncols - 1);
        return -1;
    }
    if (L->role[text] > 0) {
        nnrt_error_at(path, 1, 1, "column '%s' is both the target and the text",
                      nnrt_printable(L->names[text], c1, sizeof c1));
        return -1;
    }
    for (int c = 0; c < L->ncols; c++)
        if (L->role[c] == 0 || (L->role[c] > 0 && !o->need_target)) L->role[c] = -1;
    L->role[text] = ROLE_TEXT;
    return 0;
}

static int plan_layout(const NnrtModel *m, const NnrtCsvOpts *o, Layout *L, const char *path,
                       int header) {
    if (o->text) return plan_text_layout(m, o, L, path, header);
    int want = (int)m->target_size; /* class ids per example (1 for class[N]) or float values */
    int marked = 0;
    if (o->target_index >= 0 && !o->need_target && L->ncols == m->input_size) {
        /* predict on a file of features only: the training data's target column is absent */
    } else if (o->target_index >= 0) {
        if (want != 1) {
            nnrt_error_at(path, 1, 1, "target_column selects one column, but target '%s' has %d "
                          "values per example; name them with target=\"a,b,...\"",
                          m->target_name ? m->target_name : "y", want);
            return -1;
        }
        if (o->target_index >= L->ncols) {
            nnrt_error_at(path, 1, 1, "target_column=%lld is out of range: the file has %d columns",
                          (long long)o->target_index, L->ncols);
            return -1;
        }
        L->role[o->target_index] = 1;
        marked = 1;
    } else if (header) {
        marked = mark_targets_by_name(o, m, L, path, o->need_target);
        if (marked < 0) return -1;
    } else if (o->need_target || L->ncols == m->input_size + want) {
        /* no header: the target is the last column(s) */
        for (int k = 0; k < want && k < L->ncols; k++) L->role[L->ncols - want + k] = 1 + k;
        marked = want < L->ncols ? want : L->ncols;
    }
    if (check_target_count(m, o, path, want, marked) != 0) return -1;
    if (!o->need_target)
        for (int c = 0; c < L->ncols; c++)
            if (L->role[c] > 0) L->role[c] = -1; /* predict ignores targets */
    int features = 0;
    for (int c = 0; c < L->ncols; c++) features += L->role[c] == 0;
    if (features != m->input_size) {
        nnrt_error_at(path, 1, 1, "%d feature column%s (every column except the target), but "
                      "input '%s' of the model has %lld values per example", features,
                      features == 1 ? "" : "s", m->input_name ? m->input_name : "x",
                      (long long)m->input_size);
        if (header) list_columns(L);
        return -1;
    }
    return 0;
}

/* Printable copies of a cell and its column name, for messages only. */
#define CELL_TEXT(cell, c)                                                                         \
    char txt[80], col[80];                                                                         \
    nnrt_printable((cell)->s, txt, sizeof txt);                                                    \
    nnrt_printable(L->names[c], col, sizeof col)

static int label_add(LabelSet *ls, const NnrtModel *m, const char *path, const Cell *cell,
                     int32_t *id);
/* The text cell of example `row`: bytes become ids byte + 1 at once, cut or padded with 0 to T;
 * words are kept (ids of the file's own dictionary) until the vocabulary is known. A text cell is
 * never "missing": an empty one is all padding. */
static int store_text(const NnrtCsvOpts *o, const Cell *cell, int64_t row, NnrtData *d) {
    int64_t t = d->input_size;
    if (o->words) {
        if (nnrt_words_add_text(d->words, cell->s, cell->len, d->word_span + 2 * row) != 0) {
            nnrt_error("out of memory: cannot hold the words of row %lld", (long long)row + 1);
            return -1;
        }
        return 0;
    }
    float *x = d->x_f32 + row * t;
    const unsigned char *s = (const unsigned char *)cell->s;
    for (int64_t i = 0; i < t; i++) x[i] = (size_t)i < cell->len ? (float)s[i] + 1.0f : 0.0f;
    return 0;
}

/* Parses one data row into slot `row`; returns 1 stored, 0 skipped (missing), -1 error. */
static int store_row(const NnrtModel *m, const NnrtCsvOpts *o, const Layout *L, Reader *r,
                     int64_t row, NnrtData *d) {
    int64_t line = r->cells[0].line;
    if (r->ncells != L->ncols) {
        const Cell *last = &r->cells[r->ncells - 1];
        int64_t col = r->ncells > L->ncols ? r->cells[L->ncols].col : last->col + (int64_t)last->len;
        nnrt_error_at(r->path, line, col, "this row has %d columns, expected %d%s", r->ncells,
                      L->ncols, o->header ? " (as in the header)" : " (as in the first row)");
        return -1;
    }
    int64_t f = 0;
    const Cell *label = NULL; /* a class[N] label: a name or an id, decided at the end (label_add) */
    for (int c = 0; c < L->ncols; c++) {
        if (L->role[c] == ROLE_TEXT && store_text(o, &r->cells[c], row, d) != 0) return -1;
        if (L->role[c] < 0) continue;
        const Cell *cell = &r->cells[c];
        double v;
        if (is_missing(cell->s)) {
            if (o->skip_missing) return 0;
            CELL_TEXT(cell, c);
            nnrt_error_at(r->path, cell->line, cell->col, "missing value%s%s%s in column '%s'; use "
                          "csv(..., missing=\"skip\") to drop such rows", cell->len ? " '" : "",
                          txt, cell->len ? "'" : "", col);
            return -1;
        }
        if (L->role[c] > 0 && L->labels && strncmp(cell->s, "\xEF\xBB\xBF", 3) != 0) {
            label = cell;
            continue;
        }
        int num = parse_number(cell->s, &v);
        if (num == -1 && strncmp(cell->s, "\xEF\xBB\xBF", 3) == 0) {
            nnrt_error_at(r->path, cell->line, cell->col, "a byte order mark (bytes EF BB BF) in "
                          "the middle of the file; one may only start it (were files "
                          "concatenated?)");
            return -1;
        }
        if (num == -1) {
            CELL_TEXT(cell, c);
            nnrt_error_at(r->path, cell->line, cell->col, "cannot read '%s' as a number (column '%s')",
                          txt, col);
            return -1;
        }
        int is_class = L->role[c] > 0 && m->target_kind == NNRT_TARGET_CLASS;
        if (!is_class && !(fabs(v) <= FLT_MAX)) {
            /* stored as float32: a larger value would silently become infinity */
            CELL_TEXT(cell, c);
            nnrt_error_at(r->path, cell->line, cell->col, "'%s' is out of the float32 range "
                          "(column '%s'; the largest magnitude is about 3.4e38)", txt, col);
            return -1;
        }
        if (L->role[c] == 0) {
            if (m->input_kind == NNRT_INPUT_INT &&
                (v != floor(v) || v < 0 || (m->input_vocab > 0 && v >= (double)m->input_vocab))) {
                CELL_TEXT(cell, c);
                if (m->input_vocab > 0)
                    nnrt_error_at(r->path, cell->line, cell->col, "token id '%s' in column '%s' "
                                  "must be an integer in 0..%lld", txt, col,
                                  (long long)m->input_vocab - 1);
                else
                    nnrt_error_at(r->path, cell->line, cell->col, "token id '%s' in column '%s' "
                                  "must be a non-negative integer", txt, col);
                return -1;
            }
            d->x_f32[row * d->input_size + f++] = (float)v;
        } else if (m->target_kind == NNRT_TARGET_CLASS) {
            if (v != floor(v)) {
                CELL_TEXT(cell, c);
                nnrt_error_at(r->path, cell->line, cell->col, "class label '%s' is not an integer",
                              txt);
                return -1;
            }
            if (v < 0 || v >= (double)m->target_classes) {
                CELL_TEXT(cell, c);
                nnrt_error_at(r->path, cell->line, cell->col, "label %s is out of range for target "
                              "'%s' (class[%lld] takes 0..%lld)", txt,
                              m->target_name ? m->target_name : "y", (long long)m->target_classes,
                              (long long)m->target_classes - 1);
                return -1;
            }
            d->y_class[row * d->target_size + (L->role[c] - 1)] = (int32_t)v;
        } else {
            d->y_f32[row * d->target_size + (L->role[c] - 1)] = (float)v;
        }
    }
    /* only a row that is kept counts its label (missing="skip" may still drop it above) */
    if (label && label_add(L->labels, m, r->path, label, &d->y_class[row]) != 0) return -1;
    return 1;
}

/* Column names from the header: none may be empty or repeat (names select the target). */
static int check_header(const Reader *r, const Layout *L) {
    for (int c = 0; c < L->ncols; c++)
        if (strstr(L->names[c], "\xEF\xBB\xBF")) {
            /* a second BOM (after the first, or before a later name): never part of a name */
            nnrt_error_at(r->path, r->cells[c].line, r->cells[c].col, "a byte order mark (bytes EF BB "
                          "BF) in the name of column %d of the header; one may only start the file "
                          "(was it written twice, or were files concatenated?)", c + 1);
            return -1;
        }
    for (int c = 0; c < L->ncols; c++)
        if (!L->names[c][0]) {
            nnrt_error_at(r->path, r->cells[c].line, r->cells[c].col, "column %d of the header has "
                          "no name", c + 1);
            if (c == L->ncols - 1 && c > 0)
                nnrt_hint("a comma at the end of the header line makes an unnamed last column");
            else if (c == 0)
                nnrt_hint("pandas writes its index as an unnamed first column: save with "
                          "to_csv(..., index=False)");
            return -1;
        }
    int *ix = nnrt_alloc((size_t)L->ncols, sizeof(int), "CSV columns");
    if (!ix) return -1;
    for (int c = 0; c < L->ncols; c++) ix[c] = c;
    /* sort column numbers by name (then number): duplicates end up next to each other */
    for (int gap = L->ncols / 2; gap > 0; gap /= 2) /* shell sort: no comparator context in qsort */
        for (int i = gap; i < L->ncols; i++)
            for (int j = i - gap; j >= 0; j -= gap) {
                int a = ix[j], b = ix[j + gap];
                int cmp = strcmp(L->names[a], L->names[b]);
                if (cmp < 0 || (cmp == 0 && a < b)) break;
                ix[j] = b;
                ix[j + gap] = a;
            }
    int dup = -1, first = -1;
    for (int i = 1; i < L->ncols; i++)
        if (strcmp(L->names[ix[i - 1]], L->names[ix[i]]) == 0 && (dup < 0 || ix[i] < dup)) {
            dup = ix[i];
            first = ix[i - 1];
        }
    free(ix);
    if (dup < 0) return 0;
    char clean[80];
    nnrt_error_at(r->path, r->cells[dup].line, r->cells[dup].col, "duplicate column name '%s' "
                  "(columns %d and %d)", nnrt_printable(L->names[dup], clean, sizeof clean),
                  first + 1, dup + 1);
    return -1;
}

/* Room for one more row in the growing value arrays. */
static int reserve_row(const NnrtModel *m, const NnrtCsvOpts *o, Reader *r, int64_t rows,
                       int64_t *cap, NnrtData *d) {
    if (rows < *cap) return 0;
    size_t yb = (m->target_kind == NNRT_TARGET_CLASS ? sizeof(int32_t) : sizeof(float)) * (size_t)d->target_size;
    uint64_t per = sizeof(float) * (uint64_t)d->input_size + (o->need_target ? yb : sizeof(int64_t));
    int64_t ncap = *cap ? *cap * 2 : 1024;
    if ((uint64_t)ncap > CSV_MAX_BYTES / per) ncap = (int64_t)(CSV_MAX_BYTES / per);
    if (ncap <= rows) {
        nnrt_error_at(r->path, r->cells[0].line, 1, "the data set is larger than the 16 GiB "
                      "limit (%lld rows of %llu bytes)", (long long)rows, (unsigned long long)per);
        return -1;
    }
    float *x = realloc(d->x_f32, (size_t)ncap * sizeof(float) * (size_t)d->input_size);
    if (!x) goto oom;
    d->x_f32 = x;
    d->own[0] = x;
    if (o->text && o->words) {
        int64_t *span = realloc(d->word_span, (size_t)ncap * 2 * sizeof(int64_t));
        if (!span) goto oom;
        d->word_span = span;
    }
    if (o->need_target) {
        void *y = realloc(d->own[1], (size_t)ncap * yb);
        if (!y) goto oom;
        d->own[1] = y;
        if (m->target_kind == NNRT_TARGET_CLASS) d->y_class = y;
        else d->y_f32 = y;
    } else { /* predict: each example's line, to name the input row of each output */
        int64_t *lines = realloc(d->own[2], (size_t)ncap * sizeof(int64_t));
        if (!lines) goto oom;
        d->own[2] = d->lines = lines;
    }
    *cap = ncap;
    return 0;
oom:
    nnrt_error("out of memory: cannot hold %lld rows of '%s'", (long long)ncap, r->path);
    return -1;
}

/* ---------------------------------------------------------------- class labels
 *
 * A class[N] target column may hold integer ids (v1) or names. Which one is known only at the end
 * of the file, so every distinct value is collected (in order of first appearance, each row's
 * y_class holding its value's index) and decided on then (labels_finish): all numbers: they are
 * ids, checked as v1 checked them, at the first appearance of the first bad one; otherwise they
 * are names (numbers among them too), numbered in sorted (strcmp) order. At most V + 1 distinct
 * values are kept: one more than the target's classes is already an error either way. */
struct LabelSet {
    const char *column;
    int64_t count, cap;
    char **text;           /* distinct values, in order of first appearance */
    int64_t *line, *col;   /* ... and where each first appears */
    int64_t *slot, nslots; /* open addressing over text: index + 1, 0 empty */
    int64_t first_name;    /* the first value that is not a number, or -1 */
};

static uint64_t label_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void labels_free(LabelSet *ls) {
    for (int64_t i = 0; i < ls->count; i++) free(ls->text[i]);
    free(ls->text);
    free(ls->line);
    free(ls->col);
    free(ls->slot);
}

static int label_is_number(const char *s) {
    double v;
    return parse_number(s, &v) != -1;
}

/* v1's checks of an integer id: returns 0 and the id, or -1 after reporting at the label's first
 * appearance. */
static int label_id(const LabelSet *ls, const NnrtModel *m, const char *path, int64_t i, int32_t *id) {
    double v;
    parse_number(ls->text[i], &v);
    char txt[80];
    nnrt_printable(ls->text[i], txt, sizeof txt);
    if (v != floor(v)) {
        nnrt_error_at(path, ls->line[i], ls->col[i], "class label '%s' is not an integer", txt);
        return -1;
    }
    if (v < 0 || v >= (double)m->target_classes) {
        nnrt_error_at(path, ls->line[i], ls->col[i], "label %s is out of range for target '%s' "
                      "(class[%lld] takes 0..%lld)", txt, m->target_name ? m->target_name : "y",
                      (long long)m->target_classes, (long long)m->target_classes - 1);
        return -1;
    }
    *id = (int32_t)v;
    return 0;
}

static int too_many_labels(const LabelSet *ls, const NnrtModel *m, const char *path) {
    if (ls->first_name < 0) { /* all numbers: one of them is a bad id; report the first */
        int32_t id;
        for (int64_t i = 0; i < ls->count; i++)
            if (label_id(ls, m, path, i, &id) != 0) return -1;
    }
    char col[80];
    nnrt_error_at(path, 1, 1, "column '%s' has more than %lld distinct labels, but target '%s' has "
                  "%lld classes (class[%lld])", nnrt_printable(ls->column, col, sizeof col),
                  (long long)(ls->count - 1), m->target_name ? m->target_name : "y",
                  (long long)m->target_classes, (long long)m->target_classes);
    nnrt_hint("declare as many classes as the data has labels, or pick the right target column");
    return -1;
}

static int label_add(LabelSet *ls, const NnrtModel *m, const char *path, const Cell *cell,
                     int32_t *id) {
    if (ls->nslots < 2 * (ls->count + 1)) { /* grow the table (and rehash) before it fills */
        int64_t n = ls->nslots ? ls->nslots * 2 : 64;
        int64_t *slot = calloc((size_t)n, sizeof *slot);
        if (!slot) goto oom;
        for (int64_t i = 0; i < ls->count; i++) {
            uint64_t h = label_hash(ls->text[i]) & (uint64_t)(n - 1);
            while (slot[h]) h = (h + 1) & (uint64_t)(n - 1);
            slot[h] = i + 1;
        }
        free(ls->slot);
        ls->slot = slot;
        ls->nslots = n;
    }
    uint64_t h = label_hash(cell->s) & (uint64_t)(ls->nslots - 1);
    for (; ls->slot[h]; h = (h + 1) & (uint64_t)(ls->nslots - 1))
        if (strcmp(ls->text[ls->slot[h] - 1], cell->s) == 0) {
            *id = (int32_t)(ls->slot[h] - 1);
            return 0;
        }
    if (ls->count == ls->cap) {
        int64_t n = ls->cap ? ls->cap * 2 : 16;
        char **text = realloc(ls->text, sizeof *text * (size_t)n);
        if (text) ls->text = text;
        int64_t *line = realloc(ls->line, sizeof *line * (size_t)n);
        if (line) ls->line = line;
        int64_t *col = realloc(ls->col, sizeof *col * (size_t)n);
        if (col) ls->col = col;
        if (!text || !line || !col) goto oom;
        ls->cap = n;
    }
    int64_t i = ls->count;
    if (!(ls->text[i] = nnrt_strdup(cell->s))) goto oom;
    ls->line[i] = cell->line;
    ls->col[i] = cell->col;
    ls->count++;
    ls->slot[h] = i + 1;
    if (ls->first_name < 0 && !label_is_number(cell->s)) ls->first_name = i;
    /* more ids than classes: one is bad (v1's error, right away); names may be more than the
     * classes in a validation file (its unseen ones are reported by nnrt_labels_map) and are
     * checked against the classes by nnrt_labels_fit, up to a bound on memory */
    if (ls->count > m->target_classes && (ls->first_name < 0 || ls->count > m->target_classes + 4096))
        return too_many_labels(ls, m, path);
    *id = (int32_t)i;
    return 0;
oom:
    nnrt_error("out of memory reading the labels of '%s'", path);
    return -1;
}

/* Sorting label indices by their text (qsort has no context: the text travels with the index). */
typedef struct LabelRef {
    const char *text;
    int64_t index;
} LabelRef;
static int cmp_label(const void *a, const void *b) {
    return strcmp(((const LabelRef *)a)->text, ((const LabelRef *)b)->text);
}

/* One block: the NnrtLabels, then names, lines, columns, then the text. */
static NnrtLabels *labels_pack(int64_t count, const char *const *names, const int64_t *line,
                               const int64_t *col, const char *file) {
    size_t bytes = sizeof(NnrtLabels) + (size_t)count * (sizeof(char *) + 2 * sizeof(int64_t));
    if (file) bytes += strlen(file) + 1;
    for (int64_t i = 0; i < count; i++) bytes += strlen(names[i]) + 1;
    NnrtLabels *l = nnrt_alloc(1, bytes, "the class labels");
    if (!l) return NULL;
    l->count = count;
    l->names = (char **)(l + 1);
    int64_t *at = (int64_t *)(l->names + count);
    l->line = line ? at : NULL;
    l->col = col ? at + count : NULL;
    char *text = (char *)(at + 2 * count);
    for (int64_t i = 0; i < count; i++) {
        size_t n = strlen(names[i]) + 1;
        memcpy(text, names[i], n);
        l->names[i] = text;
        text += n;
        if (line) l->line[i] = line[i];
        if (col) l->col[i] = col[i];
    }
    l->file = file ? memcpy(text, file, strlen(file) + 1) : NULL;
    return l;
}

static int labels_finish(LabelSet *ls, const NnrtModel *m, const char *path, int64_t rows,
                         NnrtData *d) {
    int32_t *map = nnrt_alloc((size_t)ls->count, sizeof *map, "the class labels");
    if (!map) return -1;
    int rc = -1;
    if (ls->first_name < 0) { /* integer ids, as in v1 */
        for (int64_t i = 0; i < ls->count; i++)
            if (label_id(ls, m, path, i, &map[i]) != 0) goto done;
        for (int64_t e = 0; e < rows; e++) d->y_class[e] = map[d->y_class[e]];
        rc = 0;
        goto done;
    }
    LabelRef *refs = nnrt_alloc((size_t)ls->count, sizeof *refs, "the class labels");
    const char **names = nnrt_alloc((size_t)ls->count, sizeof *names, "the class labels");
    int64_t *line = nnrt_alloc((size_t)ls->count, sizeof *line, "the class labels");
    int64_t *col = nnrt_alloc((size_t)ls->count, sizeof *col, "the class labels");
    if (refs && names && line && col) {
        for (int64_t i = 0; i < ls->count; i++) refs[i] = (LabelRef){ls->text[i], i};
        qsort(refs, (size_t)ls->count, sizeof *refs, cmp_label);
        for (int64_t k = 0; k < ls->count; k++) {
            map[refs[k].index] = (int32_t)k;
            names[k] = refs[k].text;
            line[k] = ls->line[refs[k].index];
            col[k] = ls->col[refs[k].index];
        }
        NnrtLabels *l = labels_pack(ls->count, names, line, col, path);
        if (l) {
            for (int64_t e = 0; e < rows; e++) d->y_class[e] = map[d->y_class[e]];
            d->own[2] = l;
            d->labels = l;
            rc = 0;
        }
    }
    if (rc == 0) {
        char c1[80], c2[80], c3[80];
        int64_t number = -1;
        for (int64_t i = 0; i < ls->count && number < 0; i++)
            if (label_is_number(ls->text[i])) number = i;
        if (number >= 0) /* "1", "2", "many": numbers among names are names */
            nnrt_note("%s: the labels of column '%s' are names ('%s' on line %lld is not a "
                      "number), so numbers among them such as '%s' are names too, ordered as text",
                      path, nnrt_printable(ls->column, c1, sizeof c1),
                      nnrt_printable(ls->text[ls->first_name], c2, sizeof c2),
                      (long long)ls->line[ls->first_name], nnrt_printable(ls->text[number], c3, sizeof c3));
    }
    free(refs);
    free(names);
    free(line);
    free(col);
done:
    free(map);
    return rc;
}

/* The labels' names in a message: "'a', 'b', 'c'" (at most 8, then "..."). */
static void list_labels(const NnrtLabels *l, char *out, size_t cap) {
    out[0] = 0;
    for (int64_t i = 0; i < l->count; i++) {
        size_t n = strlen(out);
        char clean[48];
        if (i == 8) {
            snprintf(out + n, cap - n, ", ...");
            break;
        }
        snprintf(out + n, cap - n, "%s'%s'", i ? ", " : "", nnrt_printable(l->names[i], clean, sizeof clean));
    }
}

static int64_t labels_find(const NnrtLabels *l, const char *name) {
    for (int64_t i = 0; i < l->count; i++)
        if (strcmp(l->names[i], name) == 0) return i;
    return -1;
}

int nnrt_labels_map(NnrtData *d, const NnrtLabels *known, const char *whose) {
    const NnrtLabels *mine = d->labels;
    char list[600];
    if (!mine && !known) return 0;
    if (!known) {
        char clean[80];
        nnrt_error_at(mine->file, mine->line[0], mine->col[0],
                      "the class labels here are names ('%s', ...), but those of %s are integer "
                      "ids", nnrt_printable(mine->names[0], clean, sizeof clean), whose);
        nnrt_hint("label both data sets the same way");
        return -1;
    }
    list_labels(known, list, sizeof list);
    if (!mine) { /* integer ids: matched by their text ("3" is the label named 3) */
        int32_t *map = nnrt_alloc((size_t)known->count, sizeof *map, "the class labels");
        if (!map) return -1;
        for (int64_t c = 0; c < known->count; c++) map[c] = -1;
        for (int64_t e = 0; e < d->count * d->target_size; e++) {
            int32_t id = d->y_class[e];
            char text[24];
            snprintf(text, sizeof text, "%d", (int)id);
            int64_t k = id < known->count ? map[id] : -1;
            if (k < 0) k = labels_find(known, text);
            if (k < 0) {
                nnrt_error("%s: label '%s' is not one of the %lld labels of %s (%s)", d->label, text,
                           (long long)known->count, whose, list);
                free(map);
                return -1;
            }
            if (id < known->count) map[id] = (int32_t)k;
            d->y_class[e] = (int32_t)k;
        }
        free(map);
        return 0;
    }
    int32_t *map = nnrt_alloc((size_t)mine->count, sizeof *map, "the class labels");
    if (!map) return -1;
    for (int64_t i = 0; i < mine->count; i++) {
        int64_t k = labels_find(known, mine->names[i]);
        if (k < 0) {
            char clean[80], sug_clean[80];
            const char *sug = nnrt_closest(mine->names[i], (const char *const *)known->names,
                                           (int)(known->count < 1000 ? known->count : 1000));
            nnrt_error_at(mine->file, mine->line[i], mine->col[i],
                          "label '%s' is not one of the %lld labels of %s (%s)%s%s%s",
                          nnrt_printable(mine->names[i], clean, sizeof clean), (long long)known->count,
                          whose, list, sug ? "; did you mean '" : "",
                          sug ? nnrt_printable(sug, sug_clean, sizeof sug_clean) : "", sug ? "'?" : "");
            free(map);
            return -1;
        }
        map[i] = (int32_t)k;
    }
    for (int64_t e = 0; e < d->count; e++) d->y_class[e] = map[d->y_class[e]];
    free(map);
    /* the set's names are now known's: ids index those */
    NnrtLabels *copy = nnrt_labels_copy(known);
    if (!copy) return -1;
    free(d->own[2]);
    d->own[2] = copy;
    d->labels = copy;
    return 0;
}

int nnrt_labels_fit(const NnrtData *d, const NnrtModel *m) {
    const NnrtLabels *l = d->labels;
    if (!l || l->count <= m->target_classes) return 0;
    /* name the label that made one too many: the (V+1)-th to appear */
    int64_t *order = nnrt_alloc((size_t)l->count, sizeof *order, "the class labels");
    if (!order) return -1;
    for (int64_t i = 0; i < l->count; i++) order[i] = i;
    for (int64_t i = 1; i < l->count; i++) /* insertion sort by (line, col): few labels */
        for (int64_t j = i; j > 0; j--) {
            int64_t a = order[j - 1], b = order[j];
            if (l->line[a] < l->line[b] || (l->line[a] == l->line[b] && l->col[a] < l->col[b])) break;
            order[j - 1] = b;
            order[j] = a;
        }
    int64_t k = order[m->target_classes];
    free(order);
    char clean[80], list[600];
    list_labels(l, list, sizeof list);
    nnrt_error_at(l->file, l->line[k], l->col[k], "label '%s' makes %lld distinct class labels, "
                  "but target '%s' has %lld classes (class[%lld])",
                  nnrt_printable(l->names[k], clean, sizeof clean), (long long)m->target_classes + 1,
                  m->target_name ? m->target_name : "y", (long long)m->target_classes,
                  (long long)m->target_classes);
    nnrt_note("the training data has %lld labels: %s", (long long)l->count, list);
    return -1;
}

NnrtLabels *nnrt_labels_copy(const NnrtLabels *l) {
    return labels_pack(l->count, (const char *const *)l->names, l->line, l->col, l->file);
}

char *nnrt_labels_to_json(const NnrtLabels *l) {
    NnrtBuf b = {0};
    nnrt_buf_puts(&b, "[");
    for (int64_t i = 0; i < l->count; i++) {
        if (i) nnrt_buf_puts(&b, ",");
        nnrt_buf_json_str(&b, l->names[i]);
    }
    nnrt_buf_puts(&b, "]");
    if (b.oom) {
        nnrt_buf_free(&b);
        nnrt_error("out of memory: cannot write the class labels");
        return NULL;
    }
    return b.p;
}

NnrtLabels *nnrt_labels_from_json(const char *text, const char *what) {
    NnrtJson j;
    char err[200];
    if (nnrt_json_parse(text, strlen(text), &j, err, sizeof err) != 0) {
        nnrt_error("%s: not a JSON array of label names (%s)", what, err);
        return NULL;
    }
    NnrtLabels *l = NULL;
    const char **names = NULL;
    int ok = j.kind == NNRT_JSON_ARR && j.nkids > 0;
    for (int i = 0; ok && i < j.nkids; i++) ok = j.kids[i].kind == NNRT_JSON_STR;
    for (int i = 0; ok && i < j.nkids; i++)
        for (int k = 0; ok && k < i; k++) ok = strcmp(j.kids[i].str, j.kids[k].str) != 0;
    if (!ok) {
        nnrt_error("%s: expected a non-empty JSON array of distinct strings (the class names)", what);
    } else if ((names = nnrt_alloc((size_t)j.nkids, sizeof *names, "the class labels"))) {
        for (int i = 0; i < j.nkids; i++) names[i] = j.kids[i].str;
        l = labels_pack(j.nkids, names, NULL, NULL, NULL);
    }
    free(names);
    nnrt_json_free(&j);
    return l;
}

int nnrt_csv_load(const NnrtModel *m, const char *path, const NnrtCsvOpts *o, NnrtData *d) {
    Reader r = {0};
    r.path = path;
    r.line = 1;
    r.in = nnrt_stream_open(path);
    if (!r.in) return -1;
    Layout L = {0};
    LabelSet labels = {.first_name = -1};
    int rc = -1;
    if (cur(&r) == 0xEF && peek(&r, 1) == 0xBB && peek(&r, 2) == 0xBF) r.pos = r.line_start = 3;
    int got = next_row(&r);
    if (got <= 0) {
        if (got == 0)
            nnrt_error_at(path, 1, 1, "empty file (expected %s)",
                          o->header ? "a header row, then one row per example" : "one row per example");
        goto done;
    }
    L.ncols = r.ncells;
    L.role = nnrt_zalloc((size_t)L.ncols, sizeof(int), "CSV columns");
    L.names = nnrt_zalloc((size_t)L.ncols, sizeof(char *), "CSV columns");
    if (!L.role || !L.names) goto done;
    for (int c = 0; c < L.ncols; c++) {
        char number[24];
        snprintf(number, sizeof number, "%d", c);
        if (!(L.names[c] = nnrt_strdup(o->header ? r.cells[c].s : number))) goto done;
    }
    if (o->header && check_header(&r, &L) != 0) goto done;
    if (plan_layout(m, o, &L, path, o->header) != 0) goto done;
    if (o->need_target && m->target_kind == NNRT_TARGET_CLASS && m->target_size == 1) {
        L.labels = &labels;
        for (int c = 0; c < L.ncols; c++)
            if (L.role[c] > 0) labels.column = L.names[c];
    }

    d->input_size = m->input_size;
    d->target_size = m->target_size;
    d->has_targets = o->need_target;
    if (o->text && o->words) {
        if (!(d->words = nnrt_words_new())) goto done;
        d->owns_words = d->words_pending = 1;
        d->words_vocab = o->vocab;
    }
    int64_t rows = 0, skipped = 0, cap = 0;
    if (o->header) got = next_row(&r);
    while (got == 1) {
        if (reserve_row(m, o, &r, rows, &cap, d) != 0) goto done;
        int s = store_row(m, o, &L, &r, rows, d);
        if (s < 0) goto done;
        if (s == 1 && d->lines) d->lines[rows] = r.cells[0].line;
        if (s == 1) rows++;
        else skipped++;
        got = next_row(&r);
    }
    if (got < 0) goto done;
    if (L.labels && rows > 0 && labels_finish(&labels, m, path, rows, d) != 0) goto done;
    if (rows == 0) {
        nnrt_error_at(path, r.line, 1, "no data rows%s", skipped ? " (every row has missing values)" : "");
        goto done;
    }
    if (skipped)
        nnrt_note("%s: skipped %lld row%s with missing values (missing=\"skip\")", path,
                  (long long)skipped, skipped == 1 ? "" : "s");
    if (rows < cap) { /* give back the unused tail (a failure just keeps it) */
        float *x = realloc(d->x_f32, (size_t)rows * sizeof(float) * (size_t)d->input_size);
        if (x) d->x_f32 = d->own[0] = x;
    }
    d->count = rows;
    d->skipped = skipped;
    rc = 0;
done:
    if (L.labels) labels_free(L.labels);
    for (int c = 0; L.names && c < L.ncols; c++) free(L.names[c]);
    free(L.role);
    free(L.names);
    free(r.cells);
    free(r.buf);
    nnrt_stream_close(r.in);
    return rc;
}
