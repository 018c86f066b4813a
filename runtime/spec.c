/* spec.c — the one parser for every spec string the executable accepts: data sets
 * (`idx(...)`, `csv(...)`, `split(0.1)`), optimizers and schedules. They share the .nn call syntax,
 * so the command line accepts exactly what a `train { }` block does (nnc emits canonical specs).
 *
 *   spec  = ident [ "(" [ arg { "," arg } [ "," ] ] ")" ]
 *   arg   = [ ident "=" ] value
 *   value = string | "true" | "false" | expr
 *   expr  = term { ("+" | "-") term }          constant arithmetic: scale=1/255
 *   term  = unary { ("*" | "/") unary }
 *   unary = ("+" | "-") unary | number | "(" expr ")"
 *   string: "..." with \" and \\ escapes
 *
 * Parsing only builds the argument list; nnrt_spec_bind then checks it against a signature
 * (unknown keywords with a suggestion, duplicates, types) so every spec reports errors alike.
 */
#include "nnrt_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Parser {
    const char *text, *p, *what;
    int failed;
} Parser;

/* Reports an error at the parser's position with the spec and a caret under the column. */
static void fail_at(Parser *ps, const char *at, const char *msg) {
    if (ps->failed) return;
    ps->failed = 1;
    size_t col = (size_t)(at - ps->text);
    nnrt_error("%s: %s at column %zu of the spec", ps->what, msg, col + 1);
    fprintf(stderr, "    %s\n    %*s^\n", ps->text, (int)col, "");
}

static void skip_ws(Parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

static int is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static int is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static char *parse_ident(Parser *ps) {
    const char *s = ps->p;
    while (is_ident_char(*ps->p)) ps->p++;
    size_t n = (size_t)(ps->p - s);
    char *id = nnrt_alloc(n + 1, 1, "a spec");
    if (!id) {
        ps->failed = 1;
        return NULL;
    }
    memcpy(id, s, n);
    id[n] = 0;
    return id;
}

static double parse_expr(Parser *ps);

/* unary = ("+" | "-") unary | number | "(" expr ")" */
static double parse_unary(Parser *ps) {
    skip_ws(ps);
    if (*ps->p == '-' || *ps->p == '+') {
        int neg = *ps->p == '-';
        ps->p++;
        double v = parse_unary(ps);
        return neg ? -v : v;
    }
    if (*ps->p == '(') {
        ps->p++;
        double v = parse_expr(ps);
        skip_ws(ps);
        if (*ps->p != ')') fail_at(ps, ps->p, "expected ')' to close '('");
        else ps->p++;
        return v;
    }
    if (isdigit((unsigned char)*ps->p) || (*ps->p == '.' && isdigit((unsigned char)ps->p[1]))) {
        char *end;
        double v = strtod(ps->p, &end);
        /* strtod also takes hex and "inf"; the .nn syntax does not */
        if (end == ps->p || (ps->p[0] == '0' && (ps->p[1] == 'x' || ps->p[1] == 'X'))) {
            fail_at(ps, ps->p, "malformed number");
            return 0;
        }
        ps->p = end;
        if (is_ident_char(*ps->p)) fail_at(ps, ps->p, "unexpected character after number");
        return v;
    }
    fail_at(ps, ps->p, *ps->p ? "expected a value (number, string, true or false)"
                              : "unexpected end of the spec; expected a value");
    return 0;
}

/* term = unary { ("*" | "/") unary } */
static double parse_term(Parser *ps) {
    double v = parse_unary(ps);
    for (;;) {
        skip_ws(ps);
        char op = *ps->p;
        if (op != '*' && op != '/') return v;
        const char *at = ps->p++;
        double r = parse_unary(ps);
        if (op == '*') v *= r;
        else if (r == 0) fail_at(ps, at, "division by zero");
        else v /= r;
    }
}

/* expr = term { ("+" | "-") term } */
static double parse_expr(Parser *ps) {
    double v = parse_term(ps);
    for (;;) {
        skip_ws(ps);
        char op = *ps->p;
        if (op != '+' && op != '-') return v;
        ps->p++;
        double r = parse_term(ps);
        v = op == '+' ? v + r : v - r;
    }
}

/* string: '"' { char | '\"' | '\\' } '"' */
static char *parse_string(Parser *ps) {
    const char *start = ps->p++;
    size_t cap = strlen(ps->p) + 1, n = 0;
    char *s = nnrt_alloc(cap, 1, "a spec string");
    if (!s) {
        ps->failed = 1;
        return NULL;
    }
    for (;;) {
        char c = *ps->p;
        if (c == 0) {
            fail_at(ps, start, "unterminated string");
            free(s);
            return NULL;
        }
        ps->p++;
        if (c == '"') break;
        if (c == '\\') {
            char e = *ps->p;
            if (e != '"' && e != '\\') {
                fail_at(ps, ps->p - 1, "unknown escape in string (only \\\" and \\\\ are allowed)");
                free(s);
                return NULL;
            }
            ps->p++;
            c = e;
        }
        s[n++] = c;
    }
    s[n] = 0;
    return s;
}

/* value = string | "true" | "false" | expr */
static void parse_value(Parser *ps, NnrtSpecArg *a) {
    skip_ws(ps);
    if (*ps->p == '"') {
        a->kind = NNRT_VAL_STR;
        a->str = parse_string(ps);
        return;
    }
    if (is_ident_start(*ps->p)) {
        const char *at = ps->p;
        char *id = parse_ident(ps);
        if (!id) return;
        if (strcmp(id, "true") == 0 || strcmp(id, "false") == 0) {
            a->kind = NNRT_VAL_BOOL;
            a->boolean = id[0] == 't';
        } else {
            fail_at(ps, at, "expected a value; strings need double quotes");
        }
        free(id);
        return;
    }
    a->kind = NNRT_VAL_NUM;
    a->num = parse_expr(ps);
}

/* arg = [ ident "=" ] value */
static void parse_arg(Parser *ps, NnrtSpec *s) {
    if (s->nargs == NNRT_SPEC_MAX_ARGS) {
        fail_at(ps, ps->p, "too many arguments");
        return;
    }
    NnrtSpecArg *a = &s->args[s->nargs++];
    skip_ws(ps);
    a->at = (int)(ps->p - ps->text);
    if (is_ident_start(*ps->p)) {
        const char *save = ps->p;
        char *id = parse_ident(ps);
        if (!id) return;
        skip_ws(ps);
        if (*ps->p == '=') {
            ps->p++;
            for (int i = 0; i < s->nargs - 1; i++) {
                if (s->args[i].key && strcmp(s->args[i].key, id) == 0) {
                    fail_at(ps, save, "argument given twice");
                    free(id);
                    return;
                }
            }
            a->key = id;
        } else {
            free(id);
            ps->p = save; /* a bare true/false: parse it as a value */
        }
    }
    if (!a->key) {
        for (int i = 0; i < s->nargs - 1; i++)
            if (s->args[i].key) {
                fail_at(ps, ps->p, "positional argument after a keyword argument");
                return;
            }
    }
    parse_value(ps, a);
}

int nnrt_spec_parse(const char *text, const char *what, NnrtSpec *out) {
    memset(out, 0, sizeof *out);
    out->text = text;
    out->what = what;
    Parser ps = {text, text, what, 0};
    skip_ws(&ps);
    if (!is_ident_start(*ps.p)) {
        fail_at(&ps, ps.p, *ps.p ? "expected a name such as idx(...), csv(...) or adam(...)"
                                 : "empty spec");
        return -1;
    }
    out->name = parse_ident(&ps);
    skip_ws(&ps);
    if (!ps.failed && *ps.p == '(') {
        out->has_parens = 1;
        ps.p++;
        skip_ws(&ps);
        while (!ps.failed && *ps.p != ')') {
            parse_arg(&ps, out);
            skip_ws(&ps);
            if (ps.failed) break;
            if (*ps.p == ',') {
                ps.p++;
                skip_ws(&ps);
            } else if (*ps.p != ')') {
                fail_at(&ps, ps.p, *ps.p ? "expected ',' or ')'" : "expected ')' at the end");
            }
        }
        if (!ps.failed) ps.p++;
        skip_ws(&ps);
    }
    if (!ps.failed && *ps.p) fail_at(&ps, ps.p, "unexpected text after the spec");
    if (ps.failed) {
        nnrt_spec_free(out);
        return -1;
    }
    return 0;
}

void nnrt_spec_free(NnrtSpec *s) {
    free(s->name);
    s->name = NULL;
    for (int i = 0; i < s->nargs; i++) {
        free(s->args[i].key);
        free(s->args[i].str);
    }
    s->nargs = 0;
}

/* A binding error: the message naming the spec's origin, then the spec with a caret under the
 * argument at byte offset `at` (spec.c's parse errors look the same). */
static void bind_error(const NnrtSpec *s, int at, const char *fmt, ...) NNRT_PRINTF(3, 4);
static void bind_error(const NnrtSpec *s, int at, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nnrt_error("%s: %s", s->what, msg);
    fprintf(stderr, "    %s\n    %*s^\n", s->text, at, "");
}

static const char *kind_word(NnrtArgKind k) {
    switch (k) {
    case NNRT_ARG_NUM: return "a number";
    case NNRT_ARG_INT: return "an integer";
    case NNRT_ARG_STR: return "a string in double quotes";
    case NNRT_ARG_BOOL: return "true or false";
    }
    return "?";
}

/* Where the spec's name ends: the caret for messages about the whole call. */
static int name_end(const NnrtSpec *s) {
    const char *p = s->text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    while (is_ident_char(*p)) p++;
    return (int)(p - s->text);
}

const NnrtSettingForm *nnrt_spec_form(const NnrtSpec *s, unsigned group, const char *noun) {
    const NnrtSettingForm *f = nnrt_setting_form(group, s->name);
    if (f) return f;
    const char *names[16];
    int n = nnrt_setting_form_names(group, names, 16);
    const char *sug = nnrt_closest(s->name, names, n);
    char list[160];
    nnrt_setting_form_list(group, list, sizeof list);
    if (sug) nnrt_error("%s: unknown %s '%s'; did you mean '%s'?", s->what, noun, s->name, sug);
    else nnrt_error("%s: unknown %s '%s' (expected %s)", s->what, noun, s->name, list);
    return NULL;
}

int nnrt_spec_bind(const NnrtSpec *s, const NnrtSettingForm *f, unsigned flags, NnrtArgVal *vals) {
    char sig[256];
    nnrt_setting_signature(f, sig, sizeof sig);
    memset(vals, 0, sizeof *vals * (size_t)f->nargs);
    int positional = 0;
    int at[NNRT_SPEC_MAX_ARGS];
    for (int i = 0; i < s->nargs; i++) {
        const NnrtSpecArg *a = &s->args[i];
        int d = -1;
        if (!a->key) {
            if (positional >= f->nargs) {
                bind_error(s, a->at, "too many arguments to %s() (the signature is %s)", s->name, sig);
                return -1;
            }
            d = positional++;
        } else {
            d = nnrt_setting_arg_index(f, a->key);
            if (d < 0) {
                const char *names[NNRT_SPEC_MAX_ARGS];
                int nn = f->nargs < NNRT_SPEC_MAX_ARGS ? f->nargs : NNRT_SPEC_MAX_ARGS;
                for (int k = 0; k < nn; k++) names[k] = f->args[k].name;
                const char *sug = nnrt_closest(a->key, names, nn);
                if (sug)
                    bind_error(s, a->at, "%s() has no argument '%s'; did you mean '%s'?", s->name, a->key, sug);
                else
                    bind_error(s, a->at, "%s() has no argument '%s' (the signature is %s)", s->name, a->key, sig);
                return -1;
            }
        }
        const NnrtSettingArg *def = &f->args[d];
        if (vals[d].set) {
            bind_error(s, a->at, "argument '%s' of %s() given twice", def->name, s->name);
            return -1;
        }
        int value_at = a->at;
        if (a->key) { /* point at the value, after "key =" */
            const char *p = strchr(s->text + a->at, '=');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t') p++;
                value_at = (int)(p - s->text);
            }
        }
        at[d] = value_at;
        NnrtArgKind want = def->kind;
        int ok = (want == NNRT_ARG_STR && a->kind == NNRT_VAL_STR) ||
                 (want == NNRT_ARG_BOOL && a->kind == NNRT_VAL_BOOL) ||
                 ((want == NNRT_ARG_NUM || want == NNRT_ARG_INT) && a->kind == NNRT_VAL_NUM);
        if (!ok) {
            bind_error(s, value_at, "argument '%s' of %s() must be %s", def->name, s->name, kind_word(want));
            return -1;
        }
        char rule[160], got[40];
        if (a->kind == NNRT_VAL_NUM && !nnrt_setting_number_ok(def, a->num)) {
            nnrt_setting_rule(def, a->num, rule, sizeof rule);
            snprintf(got, sizeof got, "%g", a->num);
            bind_error(s, value_at, "'%s' of %s must be %s, got %s", def->name, s->name, rule, got);
            return -1;
        }
        if (a->kind == NNRT_VAL_STR && !nnrt_setting_string_ok(def, a->str)) {
            nnrt_setting_rule(def, 0, rule, sizeof rule);
            bind_error(s, value_at, "'%s' of %s must be %s, got \"%s\"", def->name, s->name, rule, a->str);
            return -1;
        }
        vals[d].set = 1;
        vals[d].num = a->num;
        vals[d].i = want == NNRT_ARG_INT ? (int64_t)a->num : 0;
        vals[d].str = a->str;
        vals[d].boolean = a->boolean;
    }
    for (int d = 0; d < f->nargs; d++) {
        const NnrtSettingArg *def = &f->args[d];
        if (vals[d].set) continue;
        if (def->required && !(flags & NNRT_BIND_PARTIAL)) {
            bind_error(s, name_end(s), "%s() is missing its argument '%s' (the signature is %s)", s->name,
                       def->name, sig);
            return -1;
        }
        at[d] = name_end(s);
        vals[d].num = def->default_number;
        vals[d].i = (int64_t)def->default_number;
        vals[d].boolean = def->default_number != 0;
        vals[d].str = def->default_string;
    }
    int arg;
    const char *why = nnrt_setting_form_check(f, vals, &arg);
    if (why) {
        bind_error(s, at[arg], "%s", why);
        return -1;
    }
    return 0;
}
