/* fmt.c — `nnc fmt` (fmt.h). The text is cut into tokens that keep their exact bytes (comments
 * too), grouped by the author's lines, and each line is rebuilt with canonical spacing and
 * indentation. The scanner of the compiler (grammar/nn.l) drops comments and whitespace, which
 * a formatter must keep, so this file has its own small tokenizer for the same token rules; the
 * result is checked by tokenizing it again (same tokens, same order) and the file must parse
 * (parse_source) before it is formatted. */
#include "fmt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "file.h"
#include "parse.h"
#include "source.h"

typedef enum TokKind { TOK_IDENT, TOK_NUMBER, TOK_STRING, TOK_COMMENT, TOK_ARROW, TOK_PUNCT, TOK_OTHER } TokKind;

typedef struct Tok {
    TokKind kind;
    const char *text;
    int length;
    int line; /* the author's line, from 0 */
} Tok;

typedef struct Toks {
    Tok *items;
    int count, cap;
    int lines;
} Toks;

static void push(Arena *arena, Toks *t, Tok tok) {
    if (t->count == t->cap) {
        int cap = t->cap ? 2 * t->cap : 256;
        Tok *grown = arena_alloc(arena, sizeof *grown * (size_t)cap);
        if (t->count) memcpy(grown, t->items, sizeof *grown * (size_t)t->count);
        t->items = grown;
        t->cap = cap;
    }
    t->items[t->count++] = tok;
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* The tokens of nn.l: names, numbers ({DIGITS}("."[0-9]*)?|"."{DIGITS}){EXPONENT}?, strings with
 * \" and \\ escapes, comments to the end of the line, '->' and single punctuation. */
static bool tokenize(Arena *arena, const char *s, int n, Toks *out) {
    *out = (Toks){0};
    int line = 0;
    for (int i = 0; i < n;) {
        char c = s[i];
        int start = i;
        if (c == '\n') { line++; i++; continue; }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') { i++; continue; }
        TokKind kind;
        if (c == '#') {
            while (i < n && s[i] != '\n') i++;
            while (i > start && (s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '\r')) i--; /* trailing blanks */
            kind = TOK_COMMENT;
            push(arena, out, (Tok){kind, s + start, i - start, line});
            while (i < n && s[i] != '\n') i++;
            continue;
        } else if (is_alpha(c)) {
            while (i < n && (is_alpha(s[i]) || is_digit(s[i]))) i++;
            kind = TOK_IDENT;
        } else if (is_digit(c) || (c == '.' && i + 1 < n && is_digit(s[i + 1]))) {
            while (i < n && is_digit(s[i])) i++;
            if (i < n && s[i] == '.' && start < i) { i++; while (i < n && is_digit(s[i])) i++; }
            else if (i < n && s[i] == '.') { i++; while (i < n && is_digit(s[i])) i++; }
            if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                int j = i + 1;
                if (j < n && (s[j] == '+' || s[j] == '-')) j++;
                if (j < n && is_digit(s[j])) {
                    i = j;
                    while (i < n && is_digit(s[i])) i++;
                }
            }
            kind = TOK_NUMBER;
        } else if (c == '"') {
            i++;
            while (i < n && s[i] != '"' && s[i] != '\n') i += s[i] == '\\' && i + 1 < n && s[i + 1] != '\n' ? 2 : 1;
            if (i >= n || s[i] != '"') return false; /* unterminated */
            i++;
            kind = TOK_STRING;
        } else if (c == '-' && i + 1 < n && s[i + 1] == '>') {
            i += 2;
            kind = TOK_ARROW;
        } else if (strchr("()[]{},=:+-*/;", c)) {
            i++;
            kind = TOK_PUNCT;
        } else {
            /* anything else (a byte order mark) stays as it is, up to the next blank */
            while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && !strchr("()[]{},=:+-*/;#\"", s[i]) &&
                   !is_alpha(s[i]) && !is_digit(s[i]))
                i++;
            kind = TOK_OTHER;
        }
        push(arena, out, (Tok){kind, s + start, i - start, line});
    }
    out->lines = line + 1;
    return true;
}

static bool tok_is(const Tok *t, const char *text) { return t && t->length == (int)strlen(text) && memcmp(t->text, text, (size_t)t->length) == 0; }

static bool is_keyword(const Tok *t) {
    static const char *const kw[] = {"model", "param", "input", "target", "def", "return", "loss", "metric", "train", "output"};
    if (!t || t->kind != TOK_IDENT) return false;
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (tok_is(t, kw[i])) return true;
    return false;
}

static bool is_binary_op(const Tok *t) { return t && t->kind == TOK_PUNCT && t->length == 1 && strchr("+-*/", t->text[0]); }

/* Can this token end an operand (so that a following '-' is binary)? */
static bool ends_operand(const Tok *t) {
    if (!t) return false;
    if (t->kind == TOK_NUMBER || t->kind == TOK_STRING) return true;
    if (t->kind == TOK_IDENT) return !is_keyword(t);
    return tok_is(t, ")") || tok_is(t, "]");
}

/* One author's line: its tokens [first, end) without the trailing comment. */
typedef struct Line {
    int first, end;
    const Tok *comment;
    bool continuation;
    int depth;          /* braces open before it (one less when it starts with '}') */
    int align_kind;     /* 0: none; 1: NAME = ...; 2: param NAME = ...; 3: input/target; 4: loss/metric */
    int key_width;      /* the width the aligned part is padded to */
} Line;

typedef struct Out {
    Arena *arena;
    char *buf;
    size_t len, cap;
    int column;
} Out;

static void out_write(Out *o, const char *s, int n) {
    if (o->len + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 4096;
        while (cap < o->len + (size_t)n + 1) cap *= 2;
        char *grown = arena_alloc(o->arena, cap);
        if (o->len) memcpy(grown, o->buf, o->len);
        o->buf = grown;
        o->cap = cap;
    }
    if (n > 0) memcpy(o->buf + o->len, s, (size_t)n); /* s may be NULL when n is 0 */
    o->len += (size_t)n;
    o->buf[o->len] = '\0';
    for (int i = 0; i < n; i++) o->column = s[i] == '\n' ? 0 : o->column + 1;
}

static void out_spaces(Out *o, int n) {
    for (int i = 0; i < n; i++) out_write(o, " ", 1);
}

/* Is a space written between tokens a and b? `paren` is the bracket depth at b; `keyword_value`
 * says b is in a keyword argument's value (scale=1/255), where arithmetic is written tight. */
static bool space_between(const Tok *prevprev, const Tok *a, const Tok *b, int paren, bool keyword_value) {
    if (tok_is(a, "(") || tok_is(a, "[")) return false;
    if (tok_is(b, ")") || tok_is(b, "]") || tok_is(b, ",") || tok_is(b, ";")) return false;
    if (tok_is(a, "-") && !ends_operand(prevprev)) return false; /* unary minus */
    if (tok_is(b, "(") || tok_is(b, "[")) return !(a->kind == TOK_IDENT && !is_keyword(a));
    if (tok_is(a, "=") || tok_is(b, "=")) return paren == 0;
    if (keyword_value && (is_binary_op(a) || is_binary_op(b))) return false;
    return true;
}

/* The width of tokens [first, end) of one line with canonical spacing, starting at bracket
 * depth `paren` (the aligned part of a statement, outside any keyword argument). */
static int line_width(const Toks *t, int first, int end, int paren) {
    int width = 0;
    for (int i = first; i < end; i++) {
        const Tok *prev = i > first ? &t->items[i - 1] : NULL;
        if (prev && space_between(i - 1 > first ? &t->items[i - 2] : NULL, prev, &t->items[i], paren, false)) width++;
        width += t->items[i].length;
        if (tok_is(&t->items[i], "(") || tok_is(&t->items[i], "[")) paren++;
        if ((tok_is(&t->items[i], ")") || tok_is(&t->items[i], "]")) && paren > 0) paren--;
    }
    return width;
}

/* Where the aligned part of a statement ends: the '=' of an assignment or param, the name of a
 * declaration, the keyword of loss/metric. Returns the token index the padding goes before. */
static int align_point(const Toks *t, const Line *l) {
    switch (l->align_kind) {
    case 1: return l->first + 1;
    case 2: return l->first + 2;
    case 3: return l->first + 1; /* the keyword; the name's ':' is aligned separately */
    case 4: return l->first + 1;
    }
    (void)t;
    return l->first;
}

const char *fmt_source(Arena *arena, const char *text, int length) {
    Toks t;
    if (!tokenize(arena, text, length, &t)) return NULL;
    Line *lines = arena_alloc(arena, sizeof *lines * (size_t)(t.lines + 1));
    int line_count = t.lines;
    for (int i = 0; i < line_count; i++) lines[i] = (Line){.first = -1, .end = -1};
    for (int i = 0; i < t.count; i++) {
        Line *l = &lines[t.items[i].line];
        if (t.items[i].kind == TOK_COMMENT) { l->comment = &t.items[i]; continue; }
        if (l->first < 0) l->first = i;
        l->end = i + 1;
    }
    /* continuation, depth and alignment kind of each line */
    int braces = 0, paren = 0;
    const Tok *last = NULL; /* the previous code token */
    int *paren_at = arena_alloc(arena, sizeof(int) * (size_t)(line_count + 1));
    for (int i = 0; i < line_count; i++) {
        Line *l = &lines[i];
        paren_at[i] = paren;
        if (l->first < 0) { l->depth = braces; continue; }
        const Tok *first = &t.items[l->first];
        l->continuation = paren > 0 || first->kind == TOK_ARROW || (is_binary_op(first) && !tok_is(first, "-")) ||
                          (tok_is(first, "-") && last && !tok_is(last, "{") && !tok_is(last, "}") && !ends_operand(last)) ||
                          (last && (last->kind == TOK_ARROW || is_binary_op(last) || tok_is(last, "=") || tok_is(last, ",") ||
                                    tok_is(last, ":")));
        l->depth = braces - (tok_is(first, "}") ? 1 : 0);
        if (l->depth < 0) l->depth = 0;
        const Tok *second = l->first + 1 < l->end ? &t.items[l->first + 1] : NULL;
        const Tok *third = l->first + 2 < l->end ? &t.items[l->first + 2] : NULL;
        if (!l->continuation) {
            if (first->kind == TOK_IDENT && !is_keyword(first) && tok_is(second, "=")) l->align_kind = 1;
            else if (tok_is(first, "param") && second && tok_is(third, "=")) l->align_kind = 2;
            else if ((tok_is(first, "input") || tok_is(first, "target")) && second && tok_is(third, ":")) l->align_kind = 3;
            else if (tok_is(first, "loss") || tok_is(first, "metric")) l->align_kind = 4;
        }
        for (int k = l->first; k < l->end; k++) {
            const Tok *tok = &t.items[k];
            if (tok_is(tok, "{")) braces++;
            else if (tok_is(tok, "}") && braces > 0) braces--;
            else if (tok_is(tok, "(") || tok_is(tok, "[")) paren++;
            else if ((tok_is(tok, ")") || tok_is(tok, "]")) && paren > 0) paren--;
            last = tok;
        }
    }
    /* alignment runs: consecutive statements of one kind at one depth; their continuation
     * lines and comment lines do not break a run, blank lines and other statements do */
    int *name_width = arena_alloc(arena, sizeof(int) * (size_t)(line_count + 1)); /* kind 3: the name */
    for (int i = 0; i < line_count;) {
        if (lines[i].align_kind == 0) { i++; continue; }
        int kind = lines[i].align_kind, depth = lines[i].depth, width = 0, names = 0, j = i;
        for (; j < line_count; j++) {
            const Line *l = &lines[j];
            if (l->first < 0 && !l->comment) break;
            if (l->first < 0 || l->continuation) continue;
            if (l->align_kind != kind || l->depth != depth) break;
            int at = align_point(&t, l);
            int w = line_width(&t, l->first, at, 0);
            if (w > width) width = w;
            if (kind == 3) {
                int nw = t.items[l->first + 1].length;
                if (nw > names) names = nw;
            }
        }
        for (int k = i; k < j; k++)
            if (!lines[k].continuation) {
                lines[k].key_width = width;
                name_width[k] = names;
            }
        i = j;
    }
    /* emit the code of each line; comments are placed after, aligned within runs */
    Out o = {.arena = arena};
    size_t *code_begin = arena_alloc(arena, sizeof(size_t) * (size_t)(line_count + 1));
    size_t *code_end = arena_alloc(arena, sizeof(size_t) * (size_t)(line_count + 1));
    int bracket_columns[256];
    int keyword_depth = -1; /* the bracket depth of the keyword argument being written, or -1 */
    int bracket_depth = 0;
    int arrow_column = -1, statement_indent = 0;
    for (int i = 0; i < line_count; i++) {
        const Line *l = &lines[i];
        code_begin[i] = o.len;
        o.column = 0;
        int indent = 2 * l->depth;
        if (l->first >= 0 && l->continuation) {
            const Tok *first = &t.items[l->first];
            if (bracket_depth > 0 && bracket_depth <= 256) {
                indent = bracket_columns[bracket_depth - 1];
                if (tok_is(first, ")") || tok_is(first, "]")) indent = indent > 0 ? indent - 1 : 0;
            } else if (first->kind == TOK_ARROW && arrow_column >= 0) {
                indent = arrow_column;
            } else {
                indent = statement_indent + 4;
            }
        } else if (l->first < 0 && bracket_depth > 0 && bracket_depth <= 256) {
            indent = bracket_columns[bracket_depth - 1]; /* a comment among a call's arguments */
        }
        if (l->first >= 0 || l->comment) out_spaces(&o, indent);
        if (l->first >= 0 && !l->continuation) {
            statement_indent = indent;
            arrow_column = -1;
        }
        int at = l->align_kind && !l->continuation ? align_point(&t, l) : -1;
        int line_start_column = o.column;
        int p = paren_at[i];
        for (int k = l->first; k >= 0 && k < l->end; k++) {
            const Tok *tok = &t.items[k];
            if ((tok_is(tok, ",") || tok_is(tok, ")") || tok_is(tok, "]")) && keyword_depth == bracket_depth) keyword_depth = -1;
            if (k > l->first) {
                const Tok *prev = &t.items[k - 1];
                if (space_between(k - 1 > l->first ? &t.items[k - 2] : NULL, prev, tok, p, keyword_depth >= 0)) out_write(&o, " ", 1);
            }
            if (k == at) {
                /* pad the aligned part (the space before it is already written) */
                int written = o.column - line_start_column - 1;
                out_spaces(&o, l->key_width - written);
            }
            if (l->align_kind == 3 && k == l->first + 2 && !l->continuation) out_spaces(&o, name_width[i] - t.items[l->first + 1].length);
            if (tok->kind == TOK_ARROW && arrow_column < 0) arrow_column = o.column;
            out_write(&o, tok->text, tok->length);
            if (tok_is(tok, "=") && p > 0) keyword_depth = bracket_depth;
            if (tok_is(tok, "(") || tok_is(tok, "[")) {
                if (bracket_depth < 256) bracket_columns[bracket_depth] = o.column;
                bracket_depth++;
                p++;
            } else if ((tok_is(tok, ")") || tok_is(tok, "]")) && bracket_depth > 0) {
                bracket_depth--;
                if (p > 0) p--;
            }
        }
        code_end[i] = o.len;
    }
    /* trailing comments: two spaces after the longest code of a run of consecutive lines that
     * all have one (a lone comment: two spaces after its code) */
    int *comment_column = arena_alloc(arena, sizeof(int) * (size_t)(line_count + 1));
    for (int i = 0; i < line_count;) {
        if (!(lines[i].comment && lines[i].first >= 0)) { i++; continue; }
        int j = i, widest = 0;
        for (; j < line_count && lines[j].comment && lines[j].first >= 0; j++) {
            int w = (int)(code_end[j] - code_begin[j]);
            if (w > widest) widest = w;
        }
        for (int k = i; k < j; k++) comment_column[k] = widest + 2;
        i = j;
    }
    Out final = {.arena = arena};
    bool pending_blank = false, wrote_any = false;
    for (int i = 0; i < line_count; i++) {
        const Line *l = &lines[i];
        if (l->first < 0 && !l->comment) {
            pending_blank = wrote_any;
            continue;
        }
        if (pending_blank) out_write(&final, "\n", 1);
        pending_blank = false;
        wrote_any = true;
        final.column = 0;
        out_write(&final, o.buf + code_begin[i], (int)(code_end[i] - code_begin[i]));
        if (l->comment) {
            if (l->first >= 0) out_spaces(&final, comment_column[i] - final.column);
            out_write(&final, l->comment->text, l->comment->length);
        }
        out_write(&final, "\n", 1);
    }
    const char *result = final.buf ? final.buf : "";
    /* the layout may change only whitespace: the same tokens, in the same order */
    Toks again;
    if (!tokenize(arena, result, (int)strlen(result), &again) || again.count != t.count) return NULL;
    for (int i = 0; i < t.count; i++)
        if (again.items[i].length != t.items[i].length || memcmp(again.items[i].text, t.items[i].text, (size_t)t.items[i].length) != 0)
            return NULL;
    return result;
}

/* ---------------------------------------------------------------- nnc fmt */

typedef struct Lines {
    const char **items;
    int *lengths;
    int count;
} Lines;

static Lines split_lines(Arena *arena, const char *s) {
    Lines out = {0};
    int n = 0;
    for (const char *p = s; *p; p++) n += *p == '\n';
    out.items = arena_alloc(arena, sizeof(char *) * (size_t)(n + 2));
    out.lengths = arena_alloc(arena, sizeof(int) * (size_t)(n + 2));
    const char *p = s;
    while (*p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        out.items[out.count] = p;
        out.lengths[out.count++] = len;
        p += len + (nl ? 1 : 0);
    }
    return out;
}

static bool same_line(const Lines *a, int i, const Lines *b, int j) {
    return a->lengths[i] == b->lengths[j] && memcmp(a->items[i], b->items[j], (size_t)a->lengths[i]) == 0;
}

/* A unified diff (3 lines of context) from the longest common subsequence of the lines. */
static void print_diff(Arena *arena, FILE *out, const char *path, const char *before, const char *after) {
    Lines a = split_lines(arena, before), b = split_lines(arena, after);
    fprintf(out, "--- %s\n+++ %s (formatted)\n", path, path);
    if ((double)a.count * (double)b.count > 4e7) { /* too big for the table: one hunk */
        fprintf(out, "@@ -1,%d +1,%d @@\n", a.count, b.count);
        for (int i = 0; i < a.count; i++) fprintf(out, "-%.*s\n", a.lengths[i], a.items[i]);
        for (int j = 0; j < b.count; j++) fprintf(out, "+%.*s\n", b.lengths[j], b.items[j]);
        return;
    }
    int rows = a.count + 1, cols = b.count + 1;
    int *lcs = calloc((size_t)rows * (size_t)cols, sizeof *lcs);
    if (!lcs) return;
    for (int i = a.count - 1; i >= 0; i--)
        for (int j = b.count - 1; j >= 0; j--)
            lcs[i * cols + j] = same_line(&a, i, &b, j) ? lcs[(i + 1) * cols + j + 1] + 1
                                : lcs[(i + 1) * cols + j] > lcs[i * cols + j + 1] ? lcs[(i + 1) * cols + j] : lcs[i * cols + j + 1];
    /* the edit script: ' ' keep, '-' drop a[i], '+' add b[j] */
    int total = a.count + b.count;
    char *op = arena_alloc(arena, (size_t)total + 1);
    int *ai = arena_alloc(arena, sizeof(int) * (size_t)(total + 1)), *bj = arena_alloc(arena, sizeof(int) * (size_t)(total + 1));
    int n = 0, i = 0, j = 0;
    while (i < a.count || j < b.count) {
        if (i < a.count && j < b.count && same_line(&a, i, &b, j)) { op[n] = ' '; ai[n] = i++; bj[n++] = j++; }
        else if (i < a.count && (j == b.count || lcs[(i + 1) * cols + j] >= lcs[i * cols + j + 1])) { op[n] = '-'; ai[n] = i++; bj[n++] = j; }
        else { op[n] = '+'; ai[n] = i; bj[n++] = j++; }
    }
    free(lcs);
    enum { CONTEXT = 3 };
    for (int k = 0; k < n;) {
        if (op[k] == ' ') { k++; continue; }
        int start = k - CONTEXT < 0 ? 0 : k - CONTEXT;
        while (start < k && op[start] != ' ') start++;
        int end = k;
        for (int q = k; q < n; q++) {
            if (op[q] != ' ') end = q + 1;
            else if (q - end >= 2 * CONTEXT) break;
        }
        int stop = end + CONTEXT > n ? n : end + CONTEXT;
        int a_count = 0, b_count = 0;
        for (int q = start; q < stop; q++) { a_count += op[q] != '+'; b_count += op[q] != '-'; }
        fprintf(out, "@@ -%d,%d +%d,%d @@\n", ai[start] + 1, a_count, bj[start] + 1, b_count);
        for (int q = start; q < stop; q++) {
            if (op[q] == '+') fprintf(out, "+%.*s\n", b.lengths[bj[q]], b.items[bj[q]]);
            else fprintf(out, "%c%.*s\n", op[q], a.lengths[ai[q]], a.items[ai[q]]);
        }
        k = stop;
    }
}

static void fmt_usage(FILE *out) {
    fprintf(out, "usage: nnc fmt FILE.nn... [--check] [-o OUT]\n"
                 "  rewrites each file in its canonical layout (only whitespace changes)\n"
                 "  --check   change nothing; exit 1 and print a diff when a file is not formatted\n"
                 "  -o OUT    write the formatted text to OUT instead ('-': stdout; one file only)\n");
}

int fmt_main(int argc, char **argv) {
    bool check = false;
    const char *output = NULL;
    const char *files[256];
    int file_count = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0) check = true;
        else if (strcmp(argv[i], "-o") == 0) {
            if (++i == argc) { fprintf(stderr, "nnc: error: -o needs a path\n"); return 1; }
            output = argv[i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { fmt_usage(stdout); return 0; }
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "nnc: error: unknown option '%s' for nnc fmt\n", argv[i]);
            fmt_usage(stderr);
            return 1;
        } else if (file_count == 256) {
            fprintf(stderr, "nnc: error: nnc fmt takes at most 256 files at once\n");
            return 1;
        } else {
            files[file_count++] = argv[i];
        }
    }
    if (!file_count) { fprintf(stderr, "nnc: error: no input file\n"); fmt_usage(stderr); return 1; }
    if (output && (file_count > 1 || check)) {
        fprintf(stderr, "nnc: error: -o takes one file and no --check\n");
        return 1;
    }
    int status = 0;
    for (int f = 0; f < file_count; f++) {
        const char *path = files[f];
        int length = 0;
        char *text = source_read(path, &length);
        if (!text) { status = 1; continue; }
        Arena *arena = arena_new();
        Diag diag;
        diag_init(&diag, path, text, length, stderr);
        parse_source(arena, &diag);
        if (diag.error_count) {
            fprintf(stderr, "nnc: error: '%s' does not parse; nnc fmt formats only files without syntax errors\n", path);
            status = 1;
        } else {
            const char *formatted = fmt_source(arena, text, length);
            if (!formatted) {
                fprintf(stderr, "nnc: internal error: formatting '%s' would change its tokens; it is left as it is\n", path);
                status = 2;
            } else if (output) {
                if (strcmp(output, "-") == 0) {
                    fputs(formatted, stdout);
                } else {
                    int err = file_write_atomic(output, formatted, strlen(formatted));
                    if (err) { fprintf(stderr, "nnc: error: cannot write '%s': %s\n", output, strerror(err)); status = 1; }
                }
            } else if (strcmp(formatted, text) != 0) {
                if (check) {
                    print_diff(arena, stdout, path, text, formatted);
                    if (status == 0) status = 1;
                } else {
                    int err = file_write_atomic(path, formatted, strlen(formatted));
                    if (err) { fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path, strerror(err)); status = 1; }
                }
            }
        }
        arena_free(arena);
        free(text);
    }
    return status;
}
