/* ast.c — --dump-ast: an indented S-expression-like dump used as a test oracle. */
#include "ast.h"

static void ast_dump_expr(FILE *out, const Expr *e);

static void ast_dump_args(FILE *out, const Arg *a) {
    for (; a; a = a->next) {
        fputc(' ', out);
        if (a->keyword) fprintf(out, "%s=", a->keyword);
        ast_dump_expr(out, a->value);
    }
}

static void ast_dump_expr(FILE *out, const Expr *e) {
    if (!e) {
        fprintf(out, "<null>");
        return;
    }
    switch (e->kind) {
    case EXPR_NUMBER: fprintf(out, "%.17g", e->number); break;
    case EXPR_STRING: fprintf(out, "\"%s\"", e->text); break;
    case EXPR_NAME: fprintf(out, "%s", e->text); break;
    case EXPR_CALL:
        fprintf(out, "(%s%s", e->piped ? "->" : "call ", e->text);
        ast_dump_args(out, e->args);
        fputc(')', out);
        break;
    case EXPR_BINARY:
        fprintf(out, "(%c ", e->op);
        ast_dump_expr(out, e->lhs);
        fputc(' ', out);
        ast_dump_expr(out, e->rhs);
        fputc(')', out);
        break;
    case EXPR_NEGATE:
        fprintf(out, "(neg ");
        ast_dump_expr(out, e->lhs);
        fputc(')', out);
        break;
    case EXPR_ERROR: fprintf(out, "<error>"); break;
    case EXPR_VALUE: fprintf(out, "<value>"); break;
    }
}

static const char *const ast_stmt_names[] = {
    [STMT_MODEL] = "model", [STMT_PARAM] = "param", [STMT_INPUT] = "input",
    [STMT_TARGET] = "target", [STMT_ASSIGN] = "assign", [STMT_DEF] = "def",
    [STMT_RETURN] = "return", [STMT_LOSS] = "loss", [STMT_METRIC] = "metric",
    [STMT_OUTPUT] = "output", [STMT_TRAIN] = "train",
};

static void ast_dump_stmts(FILE *out, const Stmt *s, const Diag *diag, int indent) {
    for (; s; s = s->next) {
        int line, col;
        diag_line_col(diag, s->span.begin, &line, &col);
        fprintf(out, "%*s%d:%d %s", indent, "", line, col, ast_stmt_names[s->kind]);
        if (s->name) fprintf(out, " %s", s->name);
        if (s->type) {
            fprintf(out, " : %s[", s->type->elem);
            for (const Arg *a = s->type->dims; a; a = a->next) {
                ast_dump_expr(out, a->value);
                if (a->next) fputc(',', out);
            }
            fputc(']', out);
        }
        if (s->kind == STMT_DEF) {
            fputc('(', out);
            for (const DefParam *p = s->params; p; p = p->next) {
                fprintf(out, "%s", p->name);
                if (p->default_value) {
                    fputc('=', out);
                    ast_dump_expr(out, p->default_value);
                }
                if (p->next) fputc(',', out);
            }
            fputc(')', out);
        }
        if (s->value) {
            fputc(' ', out);
            ast_dump_expr(out, s->value);
        }
        fputc('\n', out);
        if (s->body) ast_dump_stmts(out, s->body, diag, indent + 2);
    }
}

void ast_dump(FILE *out, const Ast *ast, const Diag *diag) { ast_dump_stmts(out, ast->stmts, diag, 0); }
