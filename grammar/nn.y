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
 * several independent errors are reported in one run.
 */
%define api.pure full
%define api.prefix {nn}
%define api.location.type {Span}
%define parse.error custom
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
    return e;
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
    return e;
}

static Expr *new_binary(ParseState *ps, char op, Expr *lhs, Expr *rhs, Span span) {
    Expr *e = new_expr(ps, EXPR_BINARY, span);
    e->op = op;
    e->lhs = lhs;
    e->rhs = rhs;
    return e;
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
                                        Arg *input = new_arg(ps, NULL, SPAN_NONE, $1);
                                        input->next = $$->args;
                                        $$->args = input;
                                        $$->piped = true;
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
    '-' unary                         { $$ = new_expr(ps, EXPR_NEGATE, @$); $$->lhs = $2; }
  | primary                           { $$ = $1; }
  ;

primary:
    NUMBER                            { $$ = new_expr(ps, EXPR_NUMBER, @$); $$->number = $1; }
  | STRING                            { $$ = new_expr(ps, EXPR_STRING, @$); $$->text = $1; }
  | IDENT                             { $$ = new_expr(ps, EXPR_NAME, @$); $$->text = $1; }
  | IDENT '(' args_opt ')'            { $$ = new_call(ps, $1, @1, @$, $3.head, true); }
  | IDENT '(' error ')'               { $$ = new_expr(ps, EXPR_ERROR, @$); }
  | '(' expr ')'                      { $$ = $2; }
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
  ;

%%

static void nnerror(NNLTYPE *loc, void *scanner, ParseState *ps, const char *msg) {
    (void)scanner;
    /* Bison calls this only for stack exhaustion with parse.error custom. */
    if (strstr(msg, "exhausted"))
        diag_error(ps->diag, *loc, "expression nested too deeply (more than %d levels)", YYMAXDEPTH / 4);
    else
        diag_error(ps->diag, *loc, "%s", msg);
}

/* Token names as users would write them: quotes around punctuation and keywords. */
static const char *nn_token_name(yysymbol_kind_t sym) {
    switch (sym) {
    case YYSYMBOL_YYEOF: return "end of file";
    case YYSYMBOL_IDENT: return "a name";
    case YYSYMBOL_NUMBER: return "a number";
    case YYSYMBOL_STRING: return "a string";
    default: {
        const char *name = yysymbol_name(sym);
        return name;
    }
    }
}

static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, ParseState *ps) {
    (void)scanner;
    yysymbol_kind_t found = yypcontext_token(ctx);
    Span at = *yypcontext_location(ctx);
    if (found == YYSYMBOL_INVALID) {
        /* The scanner's own message for a character or string it could not take. */
        diag_error(ps->diag, at, "%s", ps->scan->invalid_message);
        return 0;
    }
    enum { MAX_EXPECTED = 6 };
    yysymbol_kind_t expected[MAX_EXPECTED];
    int n = yypcontext_expected_tokens(ctx, expected, MAX_EXPECTED);
    char buf[512];
    int len = 0;
    buf[0] = '\0';
    if (n > 0 && n <= 4) {
        len += snprintf(buf + len, sizeof buf - (size_t)len, "expected ");
        for (int i = 0; i < n; i++) {
            const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s", sep, nn_token_name(expected[i]));
        }
        len += snprintf(buf + len, sizeof buf - (size_t)len, ", found ");
    } else {
        len += snprintf(buf + len, sizeof buf - (size_t)len, "unexpected ");
    }
    snprintf(buf + len, sizeof buf - (size_t)len, "%s", nn_token_name(found));
    diag_error(ps->diag, at, "%s", buf);
    return 0;
}
