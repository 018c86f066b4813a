/* data_csv.c — CSV data sets: a header row, then one row per example.
 *
 *   file  = [ header ] { row }           blank lines are skipped; CRLF and a UTF-8 BOM are accepted
 *   row   = cell { "," cell } newline
 *   cell  = spaces ( '"' { char | '""' } '"' | { char - ',' - newline } ) spaces
 *
 * The target column(s) are chosen by name (`target="label"`, or `target="a,b,c"` for a float
 * target with several values), by 0-based number (`target_column=N`), or default to the model's
 * target name (header) / the last column(s) (no header). Every other column is a feature, in file
 * order, and their count must equal the model's input size. Empty cells and NA/NaN/N/A/null/? are
 * "missing": an error, or with missing="skip" the row is dropped. Errors are reported as
 * `file:line:column: error: message`, line and column 1-based (column counts bytes).
 *
 * The whole file is read into memory (gzip is decompressed transparently by zlib); cells are
 * parsed in place.
 */
#include "nnrt_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CSV_MAX_BYTES (16ull << 30)

typedef struct Cell {
    char *s; /* NUL-terminated in place once the row is complete */
    size_t len;
    int64_t line, col;
} Cell;

typedef struct Reader {
    const char *path;
    char *buf;
    size_t size, pos, line_start;
    int64_t line;
    Cell *cells;
    int ncells, cap;
} Reader;

static int read_all(const char *path, char **out, size_t *size) {
    gzFile f = gzopen(path, "rb");
    if (!f) {
        nnrt_error("cannot open data file '%s': %s", path, errno ? strerror(errno) : "out of memory");
        return -1;
    }
    size_t cap = 1u << 16, n = 0;
    char *b = nnrt_alloc(cap + 1, 1, "the CSV file");
    for (;;) {
        if (!b) {
            gzclose(f);
            return -1;
        }
        if (n == cap) {
            if (cap >= CSV_MAX_BYTES) {
                nnrt_error("%s: the file is larger than the 16 GiB limit", path);
                free(b);
                gzclose(f);
                return -1;
            }
            cap *= 2;
            char *nb = realloc(b, cap + 1);
            if (!nb) nnrt_error("out of memory reading '%s'", path);
            else b = nb;
            if (!nb) {
                free(b);
                b = NULL;
                continue;
            }
        }
        size_t want = cap - n > (1u << 30) ? (1u << 30) : cap - n;
        int k = gzread(f, b + n, (unsigned)want);
        if (k <= 0) break;
        n += (size_t)k;
    }
    int err = Z_OK;
    const char *msg = gzerror(f, &err);
    size_t plen = strlen(path);
    if (strncmp(msg, path, plen) == 0 && msg[plen] == ':') msg += plen + 1; /* zlib adds the path */
    if (err != Z_OK) {
        nnrt_error("%s: byte offset %zu: %s (%s)", path, n,
                   err == Z_BUF_ERROR ? "truncated gzip stream" : "corrupt gzip data", msg + (*msg == ' '));
        free(b);
        gzclose(f);
        return -1;
    }
    gzclose(f);
    b[n] = 0;
    *out = b;
    *size = n;
    return 0;
}

static int push_cell(Reader *r, char *s, size_t len, int64_t line, int64_t col) {
    if (r->ncells == r->cap) {
        int ncap = r->cap ? r->cap * 2 : 64;
        Cell *nc = realloc(r->cells, sizeof(Cell) * (size_t)ncap);
        if (!nc) {
            nnrt_error("out of memory reading '%s'", r->path);
            return -1;
        }
        r->cells = nc;
        r->cap = ncap;
    }
    r->cells[r->ncells++] = (Cell){s, len, line, col};
    return 0;
}

static int at_end(const Reader *r) { return r->pos >= r->size; }
static char cur(const Reader *r) { return at_end(r) ? 0 : r->buf[r->pos]; }
static int64_t column(const Reader *r) { return (int64_t)(r->pos - r->line_start) + 1; }
static void newline(Reader *r) {
    r->pos++;
    r->line++;
    r->line_start = r->pos;
}

/* Next non-blank row into r->cells. Returns 1, 0 at end of file, -1 on error (reported). */
static int next_row(Reader *r) {
    for (;;) { /* skip blank lines */
        size_t p = r->pos;
        while (p < r->size && (r->buf[p] == ' ' || r->buf[p] == '\t' || r->buf[p] == '\r')) p++;
        if (p >= r->size) {
            r->pos = r->size;
            return 0;
        }
        if (r->buf[p] != '\n') break;
        r->pos = p;
        newline(r);
    }
    r->ncells = 0;
    for (;;) {
        while (cur(r) == ' ' || cur(r) == '\t') r->pos++;
        int64_t line = r->line, col = column(r);
        char *start = r->buf + r->pos, *w = start;
        if (cur(r) == '"') {
            r->pos++;
            start = w = r->buf + r->pos;
            for (;;) {
                if (at_end(r)) {
                    nnrt_error_at(r->path, line, col, "unterminated quoted cell");
                    return -1;
                }
                char c = r->buf[r->pos];
                if (c == '"') {
                    if (r->pos + 1 < r->size && r->buf[r->pos + 1] == '"') {
                        *w++ = '"';
                        r->pos += 2;
                        continue;
                    }
                    r->pos++;
                    break;
                }
                if (c == '\n') {
                    *w++ = c;
                    newline(r);
                    continue;
                }
                *w++ = c;
                r->pos++;
            }
            while (cur(r) == ' ' || cur(r) == '\t' || cur(r) == '\r') r->pos++;
            if (!at_end(r) && cur(r) != ',' && cur(r) != '\n') {
                nnrt_error_at(r->path, r->line, column(r),
                              "unexpected character '%c' after a closing quote", cur(r));
                return -1;
            }
        } else {
            while (!at_end(r) && cur(r) != ',' && cur(r) != '\n') r->pos++;
            w = r->buf + r->pos;
            while (w > start && (w[-1] == ' ' || w[-1] == '\t' || w[-1] == '\r')) w--;
        }
        if (push_cell(r, start, (size_t)(w - start), line, col) != 0) return -1;
        if (cur(r) == ',') {
            r->pos++;
            continue;
        }
        if (cur(r) == '\n') newline(r);
        break;
    }
    /* every terminator position has been consumed, so terminating in place is safe */
    for (int i = 0; i < r->ncells; i++) r->cells[i].s[r->cells[i].len] = 0;
    return 1;
}

static int is_missing(const char *s) {
    static const char *const tokens[] = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "?"};
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++)
        if (strcmp(s, tokens[i]) == 0) return 1;
    return 0;
}

/* Strict decimal number: digits, sign, point, exponent; nothing else (no hex, inf, nan). */
static int parse_number(const char *s, double *v) {
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || *end || !isfinite(*v)) return -1;
    return 0;
}

typedef struct Layout {
    int ncols;
    int *role;    /* per column: -1 ignored, 0 feature, 1 + k target value k */
    char **names; /* per column, for messages */
    char (*generated)[24];
} Layout;

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
            const char *sug = nnrt_suggest(tok, (const char *const *)L->names, L->ncols);
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

static int plan_layout(const NnrtModel *m, const NnrtCsvOpts *o, Layout *L, const char *path,
                       int header) {
    int want = m->target_kind == NNRT_TARGET_CLASS ? 1 : (int)m->target_size;
    int marked = 0;
    if (o->target_index >= 0) {
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
    if (o->need_target && marked != want) {
        nnrt_error_at(path, 1, 1, "target '%s' of the model has %d values per example, but %d "
                      "target column%s selected; list them all: target=\"a,b,...\"",
                      m->target_name ? m->target_name : "y", want, marked, marked == 1 ? " is" : "s are");
        return -1;
    }
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
    for (int c = 0; c < L->ncols; c++) {
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
        if (parse_number(cell->s, &v) != 0) {
            CELL_TEXT(cell, c);
            nnrt_error_at(r->path, cell->line, cell->col, "cannot read '%s' as a number (column '%s')",
                          txt, col);
            return -1;
        }
        if (L->role[c] == 0) {
            if (m->input_kind == NNRT_INPUT_INT &&
                (v != floor(v) || v < 0 || (m->input_vocab > 0 && v >= (double)m->input_vocab))) {
                CELL_TEXT(cell, c);
                nnrt_error_at(r->path, cell->line, cell->col, "token id '%s' in column '%s' must "
                              "be an integer in 0..%lld", txt, col, (long long)m->input_vocab - 1);
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
            d->y_class[row] = (int32_t)v;
        } else {
            d->y_f32[row * d->target_size + (L->role[c] - 1)] = (float)v;
        }
    }
    return 1;
}

int nnrt_csv_load(const NnrtModel *m, const char *path, const NnrtCsvOpts *o, NnrtData *d) {
    Reader r = {0};
    r.path = path;
    r.line = 1;
    if (read_all(path, &r.buf, &r.size) != 0) return -1;
    d->own[2] = r.buf;
    Layout L = {0};
    int rc = -1;
    if (r.size >= 3 && memcmp(r.buf, "\xEF\xBB\xBF", 3) == 0) r.pos = r.line_start = 3;
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
    L.generated = nnrt_zalloc((size_t)L.ncols, sizeof *L.generated, "CSV columns");
    if (!L.role || !L.names || !L.generated) goto done;
    for (int c = 0; c < L.ncols; c++) {
        snprintf(L.generated[c], sizeof L.generated[c], "%d", c);
        L.names[c] = o->header ? r.cells[c].s : L.generated[c];
    }
    if (plan_layout(m, o, &L, path, o->header) != 0) goto done;

    /* an upper bound on the rows: one per remaining newline, plus a last unterminated one */
    int64_t upper = 1;
    for (size_t p = 0; p < r.size; p++) upper += r.buf[p] == '\n';
    d->input_size = m->input_size;
    d->target_size = m->target_kind == NNRT_TARGET_CLASS ? 1 : m->target_size;
    if ((uint64_t)upper > CSV_MAX_BYTES / 4 / (uint64_t)(m->input_size + d->target_size)) {
        nnrt_error("%s: too many rows for the 16 GiB limit", path);
        goto done;
    }
    d->x_f32 = nnrt_alloc((size_t)(upper * m->input_size), sizeof(float), "the CSV features");
    d->own[0] = d->x_f32;
    if (!d->x_f32) goto done;
    if (o->need_target) {
        size_t tb = m->target_kind == NNRT_TARGET_CLASS ? sizeof(int32_t) : sizeof(float) * (size_t)d->target_size;
        void *y = nnrt_alloc((size_t)upper, tb, "the CSV targets");
        d->own[1] = y;
        if (!y) goto done;
        if (m->target_kind == NNRT_TARGET_CLASS) d->y_class = y;
        else d->y_f32 = y;
        d->has_targets = 1;
    }
    int64_t rows = 0, skipped = 0;
    if (o->header) got = next_row(&r);
    while (got == 1) {
        int s = store_row(m, o, &L, &r, rows, d);
        if (s < 0) goto done;
        if (s == 1) rows++;
        else skipped++;
        got = next_row(&r);
    }
    if (got < 0) goto done;
    if (rows == 0) {
        nnrt_error_at(path, r.line, 1, "no data rows%s", skipped ? " (every row has missing values)" : "");
        goto done;
    }
    if (skipped)
        nnrt_note("%s: skipped %lld row%s with missing values (missing=\"skip\")", path,
                  (long long)skipped, skipped == 1 ? "" : "s");
    d->count = rows;
    rc = 0;
done:
    free(L.role);
    free(L.names);
    free(L.generated);
    free(r.cells);
    if (rc == 0) {
        /* the file text was only needed for parsing (header names point into it) */
        free(d->own[2]);
        d->own[2] = NULL;
    }
    return rc;
}
