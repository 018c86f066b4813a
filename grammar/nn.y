/* nn.y — the grammar of .nn files (pure bison parser with byte-offset locations).
 *
 * file      = stmt*
 * stmt      = "model" IDENT | "param" IDENT "=" expr | "input" IDENT ":" type
 *           | "target" IDENT ":" type | IDENT "=" expr | "return" expr
 *           | "def" IDENT "(" def_params? ")" "{" stmt* "}" | "loss" expr | "metric" expr
 *           | "output" IDENT | "train" "{" stmt* "}" | ";"
 * type      = IDENT "[" args "]"
 * expr      = expr "->" callee | sum            ("->" binds loosest, left-associative)
 * callee    = IDENT | IDENT "(" args? ")"
 * sum       = sum ("+"|"-") product | product
 * product   = product ("*"|"/") unary | unary
 * unary     = "-" unary | primary
 * primary   = NUMBER | STRING | IDENT | IDENT "(" args? ")" | "(" expr ")"
 * args      = arg ("," arg)* ","?    arg = expr | IDENT "=" expr
 *
 * Statements need no terminator: a statement ends where the next token cannot continue it.
 * Error recovery resynchronizes at statements, closing braces and closing parentheses, so
 * several independent errors are reported in one run. LAC (lookahead correction) keeps the
 * "expected ..." lists of syntax errors exact.
 */
%define api.pure full
%define api.prefix {nn}
%define api.location.type {Span}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%param {void *scanner}
%parse-param {ParseState *ps}

%code requires {
#include "nn_parse_internal.h"
typedef struct StmtList { Stmt *head, *tail; } StmtList;
typedef struct ArgList { Arg *head, *tail; } ArgList;
typedef struct ParamList { DefParam *head, *tail; } ParamList;
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                   \
    do {                                                              \
        if (N) { (Cur).begin = YYRHSLOC(Rhs, 1).begin; (Cur).end = YYRHSLOC(Rhs, N).end; } \
        else { (Cur).begin = (Cur).end = YYRHSLOC(Rhs, 0).end; }      \
    } while (0)
}

%code provides {
int nnlex(NNSTYPE *yylval, NNLTYPE *yylloc, void *scanner);
}

%code {
#include <string.h>
static void nnerror(NNLTYPE *loc, void *scanner, ParseState *ps, const char *msg);

static Expr *new_expr(ParseState *ps, ExprKind kind, Span span) {
    Expr *e = ARENA_NEW(ps->arena, Expr);
    e->kind = kind;
    e->span = span;
    e->depth = 1;
    return e;
}

static const char nn_too_deep[] = "expression nested too deeply (more than %d levels); split it into several statements";

/* Bounds the depth of expression trees: sema and the dumps walk them recursively. Left-recursive
 * rules (a long pipeline, a long sum) do not grow the parser stack, so this is checked here. */
static Expr *nest(ParseState *ps, Expr *e, int depth) {
    e->depth = depth;
    if (depth <= EXPR_MAX_DEPTH) return e;
    if (!ps->too_deep_reported) diag_error(ps->diag, e->span, nn_too_deep, EXPR_MAX_DEPTH);
    ps->too_deep_reported = true;
    return new_expr(ps, EXPR_ERROR, e->span);
}

static int max_depth(int a, int b) { return a > b ? a : b; }

static int args_depth(const Arg *a) {
    int d = 0;
    for (; a; a = a->next) d = max_depth(d, a->value->depth);
    return d;
}

static Stmt *new_stmt(ParseState *ps, StmtKind kind, Span span) {
    Stmt *s = ARENA_NEW(ps->arena, Stmt);
    s->kind = kind;
    s->span = span;
    return s;
}

static Arg *new_arg(ParseState *ps, const char *keyword, Span keyword_span, Expr *value) {
    Arg *a = ARENA_NEW(ps->arena, Arg);
    a->keyword = keyword;
    a->keyword_span = keyword_span;
    a->value = value;
    return a;
}

static Expr *new_call(ParseState *ps, const char *name, Span name_span, Span span, Arg *args, bool parens) {
    Expr *e = new_expr(ps, EXPR_CALL, span);
    e->text = name;
    e->name_span = name_span;
    e->args = args;
    e->has_parens = parens;
    return nest(ps, e, 1 + args_depth(args));
}

static Expr *new_binary(ParseState *ps, char op, Expr *lhs, Expr *rhs, Span span) {
    Expr *e = new_expr(ps, EXPR_BINARY, span);
    e->op = op;
    e->lhs = lhs;
    e->rhs = rhs;
    return nest(ps, e, 1 + max_depth(lhs->depth, rhs->depth));
}
}

%union {
    double number;
    const char *text;
    Expr *expr;
    Stmt *stmt;
    StmtList stmts;
    Arg *arg;
    ArgList args;
    DefParam *param;
    ParamList params;
    TypeSpec *type;
}

%token KW_MODEL "'model'" KW_PARAM "'param'" KW_INPUT "'input'" KW_TARGET "'target'"
%token KW_DEF "'def'" KW_RETURN "'return'" KW_LOSS "'loss'" KW_METRIC "'metric'"
%token KW_TRAIN "'train'" KW_OUTPUT "'output'"
%token <text> IDENT "name"
%token <number> NUMBER "number"
%token <text> STRING "string"
%token <text> INVALID "invalid token"
%token ARROW "'->'"

%type <stmts> stmt_list
%type <stmt> stmt
%type <expr> expr callee sum product unary primary
%type <args> args args_opt
%type <arg> arg
%type <text> keyword
%type <params> def_params def_params_opt
%type <param> def_param
%type <type> type

%%

file:
    stmt_list                         { ps->ast->stmts = $1.head; }
  ;

stmt_list:
    %empty                            { $$.head = $$.tail = NULL; }
  | stmt_list stmt                    {
                                        $$ = $1;
                                        if ($2) {
                                          if ($$.tail) $$.tail->next = $2; else $$.head = $2;
                                          $$.tail = $2;
                                        }
                                      }
  ;

stmt:
    KW_MODEL IDENT                    { $$ = new_stmt(ps, STMT_MODEL, @$); $$->name = $2; $$->name_span = @2; }
  | KW_PARAM IDENT '=' expr           { $$ = new_stmt(ps, STMT_PARAM, @$); $$->name = $2; $$->name_span = @2; $$->value = $4; }
  | KW_INPUT IDENT ':' type           { $$ = new_stmt(ps, STMT_INPUT, @$); $$->name = $2; $$->name_span = @2; $$->type = $4; }
  | KW_TARGET IDENT ':' type          { $$ = new_stmt(ps, STMT_TARGET, @$); $$->name = $2; $$->name_span = @2; $$->type = $4; }
  | IDENT '=' expr                    { $$ = new_stmt(ps, STMT_ASSIGN, @$); $$->name = $1; $$->name_span = @1; $$->value = $3; }
  | KW_DEF IDENT '(' def_params_opt ')' '{' stmt_list '}' {
                                        $$ = new_stmt(ps, STMT_DEF, @$); $$->name = $2; $$->name_span = @2;
                                        $$->params = $4.head; $$->body = $7.head; $$->close_span = @8;
                                      }
  | KW_RETURN expr                    { $$ = new_stmt(ps, STMT_RETURN, @$); $$->value = $2; }
  | KW_LOSS expr                      { $$ = new_stmt(ps, STMT_LOSS, @$); $$->value = $2; }
  | KW_METRIC expr                    { $$ = new_stmt(ps, STMT_METRIC, @$); $$->value = $2; }
  | KW_OUTPUT IDENT                   { $$ = new_stmt(ps, STMT_OUTPUT, @$); $$->name = $2; $$->name_span = @2; }
  | KW_TRAIN '{' stmt_list '}'        { $$ = new_stmt(ps, STMT_TRAIN, @$); $$->body = $3.head; $$->close_span = @4; }
  | ';'                               { $$ = NULL; }
  | error                             { $$ = NULL; }
  | KW_DEF IDENT '(' error ')' '{' stmt_list '}' { $$ = NULL; }
  | KW_DEF IDENT '(' error '{' stmt_list '}' { $$ = NULL; } /* the ')' is missing */
  ;

def_params_opt:
    %empty                            { $$.head = $$.tail = NULL; }
  | def_params                        { $$ = $1; }
  ;

def_params:
    def_param                         { $$.head = $$.tail = $1; }
  | def_params ',' def_param          { $$ = $1; $$.tail->next = $3; $$.tail = $3; }
  ;

def_param:
    IDENT                             { $$ = ARENA_NEW(ps->arena, DefParam); $$->name = $1; $$->span = @1; }
  | IDENT '=' expr                    { $$ = ARENA_NEW(ps->arena, DefParam); $$->name = $1; $$->span = @1; $$->default_value = $3; }
  ;

type:
    IDENT '[' args_opt ']'            { $$ = ARENA_NEW(ps->arena, TypeSpec); $$->elem = $1; $$->elem_span = @1; $$->dims = $3.head; $$->span = @$; }
  ;

expr:
    expr ARROW callee                 {
                                        /* a -> f(args) is f(a, args) */
                                        $$ = $3;
                                        if ($$->kind == EXPR_CALL) {
                                          Arg *input = new_arg(ps, NULL, SPAN_NONE, $1);
                                          input->next = $$->args;
                                          $$->args = input;
                                          $$->piped = true;
                                          $$ = nest(ps, $$, max_depth($$->depth, 1 + $1->depth));
                                        }
                                      }
  | sum                               { $$ = $1; }
  ;

callee:
    IDENT                             { $$ = new_call(ps, $1, @1, @1, NULL, false); }
  | IDENT '(' args_opt ')'            { $$ = new_call(ps, $1, @1, @$, $3.head, true); }
  | IDENT '(' error ')'               { $$ = new_expr(ps, EXPR_ERROR, @$); }
  ;

sum:
    sum '+' product                   { $$ = new_binary(ps, '+', $1, $3, @$); }
  | sum '-' product                   { $$ = new_binary(ps, '-', $1, $3, @$); }
  | product                           { $$ = $1; }
  ;

product:
    product '*' unary                 { $$ = new_binary(ps, '*', $1, $3, @$); }
  | product '/' unary                 { $$ = new_binary(ps, '/', $1, $3, @$); }
  | unary                             { $$ = $1; }
  ;

unary:
    '-' unary                         { $$ = new_expr(ps, EXPR_NEGATE, @$); $$->lhs = $2; $$ = nest(ps, $$, 1 + $2->depth); }
  | primary                           { $$ = $1; }
  ;

primary:
    NUMBER                            { $$ = new_expr(ps, EXPR_NUMBER, @$); $$->number = $1; }
  | STRING                            { $$ = new_expr(ps, EXPR_STRING, @$); $$->text = $1; }
  | IDENT                             { $$ = new_expr(ps, EXPR_NAME, @$); $$->text = $1; }
  | IDENT '(' args_opt ')'            { $$ = new_call(ps, $1, @1, @$, $3.head, true); }
  | IDENT '(' error ')'               { $$ = new_expr(ps, EXPR_ERROR, @$); }
  | '(' expr ')'                      { $$ = nest(ps, $2, 1 + $2->depth); }
  | '(' error ')'                     { $$ = new_expr(ps, EXPR_ERROR, @$); }
  ;

args_opt:
    %empty                            { $$.head = $$.tail = NULL; }
  | args                              { $$ = $1; }
  | args ','                          { $$ = $1; }
  ;

args:
    arg                               { $$.head = $$.tail = $1; }
  | args ',' arg                      { $$ = $1; $$.tail->next = $3; $$.tail = $3; }
  ;

arg:
    expr                              { $$ = new_arg(ps, NULL, SPAN_NONE, $1); }
  | IDENT '=' expr                    { $$ = new_arg(ps, $1, @1, $3); }
  | keyword '=' expr                  { $$ = new_arg(ps, $1, @1, $3); }
  ;

/* Keywords may name keyword arguments: csv(path, target="label") is the contract's own form.
 * No expression starts with a keyword, so this adds no ambiguity. */
keyword:
    KW_MODEL    { $$ = "model"; }   | KW_PARAM  { $$ = "param"; }  | KW_INPUT  { $$ = "input"; }
  | KW_TARGET   { $$ = "target"; }  | KW_DEF    { $$ = "def"; }    | KW_RETURN { $$ = "return"; }
  | KW_LOSS     { $$ = "loss"; }    | KW_METRIC { $$ = "metric"; } | KW_TRAIN  { $$ = "train"; }
  | KW_OUTPUT   { $$ = "output"; }
  ;

%%

static void nnerror(NNLTYPE *loc, void *scanner, ParseState *ps, const char *msg) {
    (void)scanner;
    /* Bison calls this only for stack exhaustion with parse.error custom: only deeply nested
     * parentheses or signs get there (YYMAXDEPTH states). */
    if (!ps->too_deep_reported) {
        if (strstr(msg, "exhausted"))
            diag_error(ps->diag, *loc, nn_too_deep, EXPR_MAX_DEPTH);
        else
            diag_error(ps->diag, *loc, "%s", msg);
    }
    ps->too_deep_reported = true;
}

static bool nn_sym_is(yysymbol_kind_t sym, const char *name) { return strcmp(yysymbol_name(sym), name) == 0; }

static bool nn_is_keyword(yysymbol_kind_t sym) {
    switch (sym) {
    case YYSYMBOL_KW_MODEL: case YYSYMBOL_KW_PARAM: case YYSYMBOL_KW_INPUT: case YYSYMBOL_KW_TARGET:
    case YYSYMBOL_KW_DEF: case YYSYMBOL_KW_RETURN: case YYSYMBOL_KW_LOSS: case YYSYMBOL_KW_METRIC:
    case YYSYMBOL_KW_TRAIN: case YYSYMBOL_KW_OUTPUT: return true;
    default: return false;
    }
}

static bool nn_token_is_keyword(int token) {
    switch (token) {
    case KW_MODEL: case KW_PARAM: case KW_INPUT: case KW_TARGET: case KW_DEF: case KW_RETURN:
    case KW_LOSS: case KW_METRIC: case KW_TRAIN: case KW_OUTPUT: return true;
    default: return false;
    }
}

/* The token as users would name it in "found X" (`article`) or "unexpected X". */
static const char *nn_found_text(ParseState *ps, yysymbol_kind_t sym, Span at, bool article) {
    switch (sym) {
    case YYSYMBOL_YYEOF: return "end of file";
    case YYSYMBOL_STRING: return article ? "a string" : "string";
    case YYSYMBOL_IDENT:
    case YYSYMBOL_NUMBER: {
        int len = at.end - at.begin;
        if (len > 40) return arena_printf(ps->arena, "'%.40s...'", ps->diag->text + at.begin);
        return arena_printf(ps->arena, "'%.*s'", len, ps->diag->text + at.begin);
    }
    default: return yysymbol_name(sym); /* punctuation and keywords, already quoted */
    }
}

static int nn_line_of(ParseState *ps, int offset) {
    int line, col;
    diag_line_col(ps->diag, offset, &line, &col);
    return line;
}

static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, ParseState *ps) {
    (void)scanner;
    ScanState *scan = ps->scan;
    const TokenRecord *prev = &scan->recent[1], *before = &scan->recent[2];
    yysymbol_kind_t found = yypcontext_token(ctx);
    Span at = *yypcontext_location(ctx);
    if (found == YYSYMBOL_INVALID) {
        /* The scanner's own message for a character or string it could not take. */
        diag_error(ps->diag, at, "%s", scan->invalid_message);
        return 0;
    }
    /* At the end of the file, point just after the last token rather than at an empty line. */
    if (found == YYSYMBOL_YYEOF && prev->kind) at = (Span){prev->span.end, prev->span.end};
    /* Past the error limit the error is only counted: skip the work of wording it. */
    if (diag_muted(ps->diag)) {
        diag_error(ps->diag, at, "syntax error");
        return 0;
    }

    yysymbol_kind_t expected[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, expected, YYNTOKENS);
    bool ident_expected = false, arrow_expected = false, found_expected = false;
    int expression_starts = 0;
    for (int i = 0; i < n; i++) {
        yysymbol_kind_t e = expected[i];
        ident_expected |= e == YYSYMBOL_IDENT;
        arrow_expected |= e == YYSYMBOL_ARROW;
        found_expected |= e == found;
        expression_starts += e == YYSYMBOL_IDENT || e == YYSYMBOL_NUMBER || e == YYSYMBOL_STRING ||
                             nn_sym_is(e, "'('") || nn_sym_is(e, "'-'");
    }

    /* Keywords are reserved: `loss = ...`, `input model : ...`, `x -> train`. */
    /* ...unless a bracket is open and the keyword begins a line: then the closer is missing. */
    int found_line = nn_line_of(ps, at.begin), prev_line = nn_line_of(ps, prev->span.begin);
    if (nn_is_keyword(found) && ident_expected && (scan->bracket_depth == 0 || found_line == prev_line)) {
        diag_error(ps->diag, at, "%s is a keyword and cannot be used as a name", yysymbol_name(found));
        return 0;
    }
    if (nn_sym_is(found, "'='") && nn_token_is_keyword(prev->kind)) {
        diag_error(ps->diag, prev->span, "'%.*s' is a keyword and cannot be used as a name",
                   prev->span.end - prev->span.begin, ps->diag->text + prev->span.begin);
        return 0;
    }
    if (scan->recent[0].unmatched && scan->recent[0].span.begin == at.begin) {
        diag_error(ps->diag, at, "unmatched %s", yysymbol_name(found));
        return 0;
    }

    /* "expected A, B or C": the tokens that begin an expression are named together, and the
     * operators that could continue one are left out (they are always possible after it). */
    bool whole_expression = expression_starts == 5;
    const char *items[YYNTOKENS];
    int count = 0;
    const char *closer = NULL;
    if (whole_expression) items[count++] = "an expression";
    for (int i = 0; i < n; i++) {
        yysymbol_kind_t e = expected[i];
        if (whole_expression && (e == YYSYMBOL_IDENT || e == YYSYMBOL_NUMBER || e == YYSYMBOL_STRING ||
                                 nn_sym_is(e, "'('") || nn_sym_is(e, "'-'")))
            continue;
        if (e == YYSYMBOL_ARROW || nn_sym_is(e, "'+'") || nn_sym_is(e, "'-'") || nn_sym_is(e, "'*'") ||
            nn_sym_is(e, "'/'"))
            continue;
        if (nn_sym_is(e, "')'") || nn_sym_is(e, "']'") || nn_sym_is(e, "'}'")) closer = yysymbol_name(e);
        items[count++] = e == YYSYMBOL_YYEOF ? "end of file" : e == YYSYMBOL_IDENT ? "a name"
                         : e == YYSYMBOL_NUMBER ? "a number" : e == YYSYMBOL_STRING ? "a string"
                                                              : yysymbol_name(e);
    }
    char buf[512];
    int len = 0;
    if (count > 0 && count <= 4) {
        len += snprintf(buf + len, sizeof buf - (size_t)len, "expected ");
        for (int i = 0; i < count; i++) {
            const char *sep = i == 0 ? "" : i == count - 1 ? " or " : ", ";
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s", sep, items[i]);
        }
        snprintf(buf + len, sizeof buf - (size_t)len, ", found %s", nn_found_text(ps, found, at, true));
    } else {
        /* At the end of the file, an open bracket is the likely culprit: name its closer alone. */
        const char *open_closer = NULL;
        if (found == YYSYMBOL_YYEOF && scan->bracket_depth > 0 && scan->bracket_depth <= SCAN_BRACKETS) {
            char open = scan->brackets[scan->bracket_depth - 1].ch;
            const char *want = open == '(' ? "')'" : open == '[' ? "']'" : "'}'";
            for (int i = 0; i < n; i++)
                if (nn_sym_is(expected[i], want)) open_closer = want;
        }
        closer = open_closer;
        if (open_closer)
            snprintf(buf, sizeof buf, "expected %s, found end of file", open_closer);
        else
            snprintf(buf, sizeof buf, "unexpected %s", nn_found_text(ps, found, at, false));
    }
    diag_error(ps->diag, at, "%s", buf);

    /* The bracket a missing closer would close, when it is on another line. */
    int depth = scan->bracket_depth;
    if (nn_sym_is(found, "'('") || nn_sym_is(found, "'['") || nn_sym_is(found, "'{'")) depth--;
    if (closer && depth > 0 && depth <= SCAN_BRACKETS) {
        const OpenBracket *open = &scan->brackets[depth - 1];
        char want = closer[1] == ')' ? '(' : closer[1] == ']' ? '[' : '{';
        if (open->ch == want && nn_line_of(ps, open->offset) != found_line)
            diag_note(ps->diag, (Span){open->offset, open->offset + 1}, "to match this '%c'", want);
    }
    /* `x -> f + y`: '->' binds loosest, so the sum would be the callee. */
    if (arrow_expected && !found_expected &&
        (nn_sym_is(found, "'+'") || nn_sym_is(found, "'-'") || nn_sym_is(found, "'*'") || nn_sym_is(found, "'/'")))
        diag_note(ps->diag, SPAN_NONE, "'->' binds loosest: to combine the result of a pipeline, write (x -> f) %c y",
                  yysymbol_name(found)[1]);
    /* `h = x dense(2)`: a name after a complete expression starts a new statement. */
    if (count == 1 && n == 1 && nn_sym_is(expected[0], "'='") && prev->kind == IDENT &&
        (before->kind == IDENT || before->kind == NUMBER || before->kind == STRING || before->kind == ')')) {
        if (prev_line == nn_line_of(ps, before->span.begin))
            diag_note(ps->diag, prev->span, "is '->' missing before '%.*s'?", prev->span.end - prev->span.begin,
                      ps->diag->text + prev->span.begin);
    }
    return 0;
}
