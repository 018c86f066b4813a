/* ast.h — the syntax tree built by the parser (grammar/nn.y). Every node carries its source span.
 * `a -> f(args)` is desugared by the parser into the call f(a, args) with `piped` set. */
#ifndef NNC_AST_H
#define NNC_AST_H

#include <stdbool.h>
#include <stdio.h>

#include "arena.h"
#include "diag.h"

typedef enum ExprKind {
    EXPR_NUMBER,
    EXPR_STRING,
    EXPR_NAME,
    EXPR_CALL,   /* name(args) or a bare name on the right of -> */
    EXPR_BINARY, /* + - * / */
    EXPR_NEGATE,
    EXPR_ERROR,  /* placeholder after a syntax error */
    EXPR_VALUE,  /* never parsed: a value sema already evaluated, the input of a call it synthesizes
                    (each instance of repeat(), an op-valued param applied with '->') */
} ExprKind;

typedef struct Arg Arg;
struct Value; /* ops.h */

typedef struct Expr {
    ExprKind kind;
    Span span;
    double number;     /* EXPR_NUMBER */
    const char *text;  /* EXPR_STRING value, EXPR_NAME / EXPR_CALL name */
    Span name_span;    /* EXPR_CALL: the callee's name */
    Arg *args;         /* EXPR_CALL: positional then keyword arguments */
    bool piped;        /* EXPR_CALL: the first argument came from `->` */
    bool has_parens;   /* EXPR_CALL: written with (...) */
    char op;           /* EXPR_BINARY: '+', '-', '*', '/' */
    struct Expr *lhs, *rhs; /* EXPR_BINARY; EXPR_NEGATE uses lhs */
    const struct Value *value; /* EXPR_VALUE */
    int depth;         /* nesting depth of the subtree: the parser bounds it (EXPR_MAX_DEPTH) so
                          that the recursive walks after it cannot exhaust the stack */
} Expr;

struct Arg {
    const char *keyword; /* NULL for positional */
    Span keyword_span;
    Expr *value;
    Arg *next;
};

typedef enum StmtKind {
    STMT_MODEL,
    STMT_PARAM,
    STMT_INPUT,
    STMT_TARGET,
    STMT_ASSIGN,
    STMT_DEF,
    STMT_RETURN,
    STMT_LOSS,
    STMT_METRIC,
    STMT_OUTPUT,
    STMT_TRAIN,
} StmtKind;

typedef struct TypeSpec {
    const char *elem; /* float, int, class */
    Span elem_span;
    Arg *dims;        /* expressions (positional args) */
    Span span;
} TypeSpec;

typedef struct DefParam {
    const char *name;
    Span span;
    Expr *default_value; /* NULL when required */
    struct DefParam *next;
} DefParam;

typedef struct Stmt {
    StmtKind kind;
    Span span;        /* the whole statement */
    const char *name; /* model/param/input/target/assign/def/output name; train key */
    Span name_span;
    Expr *value;      /* param, assign, return, loss, metric, train item */
    TypeSpec *type;   /* input, target */
    DefParam *params; /* def */
    struct Stmt *body; /* def body; train items (STMT_ASSIGN each) */
    Span close_span;  /* def / train: the closing brace */
    struct Stmt *next;
} Stmt;

typedef struct Ast {
    Stmt *stmts;
} Ast;

void ast_dump(FILE *out, const Ast *ast, const Diag *diag);

#endif
