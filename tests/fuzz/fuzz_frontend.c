/* fuzz_frontend.c — libFuzzer target for nnc's front end: arbitrary bytes through the scanner,
 * parser, sema, autodiff, memory plan and summary (everything before LLVM).
 *
 * Each input is compiled as `nnc check` would, with its own arena and Diag, so a crash, leak,
 * out-of-bounds access, undefined behaviour, hang or memory blow-up anywhere in those stages is a
 * finding. Diagnostics are printed (that code is under test too) to /dev/null.
 *
 * An input whose first line is "#D NAME=VALUE" also gets that -D override, so the -D paths are
 * fuzzed as well (the line is an ordinary comment to the scanner).
 *
 * Build (tests/fuzz/CMakeLists.txt does this): clang -fsanitize=fuzzer,address,undefined ...
 * Run:   ./fuzz_frontend CORPUS_DIR SEED_DIRS... -dict=tests/fuzz/nn.dict */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "ast.h"
#include "autodiff.h"
#include "diag.h"
#include "graph.h"
#include "parse.h"
#include "plan.h"
#include "sema.h"
#include "summary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *sink;
    if (!sink) sink = fopen("/dev/null", "w");
    if (!sink) abort();
    /* nnc reads at most 4 MiB; the fuzzer's inputs are far smaller, but keep the same contract. */
    if (size > (4u << 20)) return 0;

    char *text = malloc(size + 1);
    if (!text) abort();
    if (size) memcpy(text, data, size);
    text[size] = '\0';

    Define defines[1];
    int define_count = 0;
    char define_name[64];
    if (size > 3 && memcmp(text, "#D ", 3) == 0) {
        const char *line_end = memchr(text, '\n', size);
        const char *eq = memchr(text + 3, '=', (size_t)((line_end ? line_end : text + size) - (text + 3)));
        size_t name_len = eq ? (size_t)(eq - (text + 3)) : 0;
        if (eq && name_len > 0 && name_len < sizeof define_name) {
            memcpy(define_name, text + 3, name_len);
            define_name[name_len] = '\0';
            /* The value runs to the end of the line; NUL-terminate it in a copy of the line. */
            static char value[256];
            size_t value_len = (size_t)((line_end ? line_end : text + size) - (eq + 1));
            if (value_len >= sizeof value) value_len = sizeof value - 1;
            memcpy(value, eq + 1, value_len);
            value[value_len] = '\0';
            defines[0] = (Define){.name = define_name, .value_text = value, .used = false};
            define_count = 1;
        }
    }

    Diag diag;
    diag_init(&diag, "fuzz.nn", text, (int)size, sink);
    (void)parse_dump_tokens(&diag, sink);

    diag_init(&diag, "fuzz.nn", text, (int)size, sink);
    Arena *arena = arena_new();
    Ast *ast = parse_source(arena, &diag);
    if (!diag.error_count) {
        ast_dump(sink, ast, &diag);
        Model *model = sema_analyze(arena, &diag, ast, defines, define_count, "fuzz");
        if (model) {
            (void)ad_append_backward(model->graph, NULL);
            Plan *plan = plan_build(arena, model->graph);
            fputs(summary_table(arena, model, plan), sink);
            graph_dump(sink, model->graph);
        }
    }
    arena_free(arena);
    free(text);
    return 0;
}
