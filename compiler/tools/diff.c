/* diff.c — `nnc diff A.nn B.nn`: what changed between two designs, layer by layer.
 *
 * Both files go through the front end (parse + sema, no code generation) and their summary rows
 * (summary_layers, the rows `nnc summary` prints) are aligned like `diff` aligns lines: a weighted
 * longest common subsequence in which two layers may pair only when their op is the same, and a
 * pair scores higher when the output shape and then the name agree too. So an inserted layer shows
 * up as one '+' row even when it renumbers the automatic names after it (dense1 -> dense2), and a
 * widened layer is one '~' row rather than a removal and an addition. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "source.h"
#include "summary.h"

/* Beyond this many DP cells (two 4000-layer models) the alignment falls back to pairing rows by
 * position: the answer is still correct, only less tidy, and memory stays bounded. */
enum { DIFF_MAX_CELLS = 16 << 20 };

typedef struct DiffRow {
    const SummaryLayer *a, *b; /* either may be NULL (added / removed) */
} DiffRow;

static int pair_score(const SummaryLayer *a, const SummaryLayer *b) {
    if (strcmp(a->op, b->op) != 0) return 0;
    /* Shapes weigh more than names: inserting a layer renumbers the automatic names after it
     * (dense1 -> dense2) but leaves their shapes alone. "-" (unnamed steps) says nothing. */
    bool same_name = strcmp(a->name, b->name) == 0 && strcmp(a->name, "-") != 0;
    return 1 + 2 * (strcmp(a->shape, b->shape) == 0) + same_name;
}

static int align(Arena *arena, const SummaryLayers *la, const SummaryLayers *lb, DiffRow *rows) {
    int n = la->count, m = lb->count, count = 0;
    if ((int64_t)(n + 1) * (m + 1) > DIFF_MAX_CELLS) {
        for (int i = 0; i < n || i < m; i++)
            rows[count++] = (DiffRow){i < n ? &la->items[i] : NULL, i < m ? &lb->items[i] : NULL};
        return count;
    }
    /* best[i][j]: the best score aligning the suffixes a[i..], b[j..]. */
    int *best = ARENA_ARRAY(arena, int, (size_t)(n + 1) * (size_t)(m + 1));
#define BEST(i, j) best[(size_t)(i) * (size_t)(m + 1) + (size_t)(j)]
    for (int i = n - 1; i >= 0; i--)
        for (int j = m - 1; j >= 0; j--) {
            int s = pair_score(&la->items[i], &lb->items[j]);
            int v = BEST(i + 1, j) > BEST(i, j + 1) ? BEST(i + 1, j) : BEST(i, j + 1);
            if (s && s + BEST(i + 1, j + 1) > v) v = s + BEST(i + 1, j + 1);
            BEST(i, j) = v;
        }
    int i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m) {
            int s = pair_score(&la->items[i], &lb->items[j]);
            if (s && BEST(i, j) == s + BEST(i + 1, j + 1)) {
                rows[count++] = (DiffRow){&la->items[i++], &lb->items[j++]};
                continue;
            }
        }
        if (i < n && (j == m || BEST(i, j) == BEST(i + 1, j))) rows[count++] = (DiffRow){&la->items[i++], NULL};
        else rows[count++] = (DiffRow){NULL, &lb->items[j++]};
    }
#undef BEST
    return count;
}

/* "200960 -> 401920 (+200960)", or just "200960" when both sides agree. */
static const char *change(Arena *arena, const SummaryLayer *a, const SummaryLayer *b, int64_t va, int64_t vb) {
    if (!a) return arena_printf(arena, "%" PRId64, vb);
    if (!b || va == vb) return arena_printf(arena, "%" PRId64, va);
    return arena_printf(arena, "%" PRId64 " -> %" PRId64 " (%+" PRId64 ")", va, vb, vb - va);
}

static const char *total_change(Arena *arena, int64_t va, int64_t vb) {
    if (va == vb) return arena_printf(arena, "%" PRId64 " (unchanged)", va);
    if (va == 0) return arena_printf(arena, "%" PRId64 " -> %" PRId64 " (%+" PRId64 ")", va, vb, vb - va);
    return arena_printf(arena, "%" PRId64 " -> %" PRId64 " (%+" PRId64 ", %+.1f%%)", va, vb, vb - va,
                        100.0 * (double)(vb - va) / (double)va);
}

static void diff_usage(FILE *out) {
    fprintf(out, "usage: nnc diff A.nn B.nn [-w|-Werror]\n"
                 "  prints each layer of A and B aligned: ' ' same, '~' changed (output shape, parameters\n"
                 "  or FLOPs per example), '-' only in A, '+' only in B; then the totals and their deltas\n");
}

int diff_main(int argc, char **argv) {
    const char *paths[2] = {NULL, NULL};
    int path_count = 0;
    DiagWarnings warnings = DIAG_WARNINGS_ON;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            diff_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "-w") == 0 || strcmp(argv[i], "-Werror") == 0) { /* as for nnc FILE.nn */
            warnings = argv[i][2] ? DIAG_WARNINGS_AS_ERRORS : DIAG_WARNINGS_OFF;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "nnc diff: error: unknown option '%s'\n", argv[i]);
            diff_usage(stderr);
            return 1;
        }
        if (path_count == 2) {
            fprintf(stderr, "nnc diff: error: more than two designs ('%s'); diff compares exactly two\n", argv[i]);
            return 1;
        }
        paths[path_count++] = argv[i];
    }
    if (path_count != 2) {
        fprintf(stderr, "nnc diff: error: needs two .nn files, e.g. nnc diff a.nn b.nn\n");
        diff_usage(stderr);
        return 1;
    }
    Arena *arena = arena_new();
    Model *models[2];
    for (int k = 0; k < 2; k++) {
        models[k] = source_analyze(arena, paths[k], NULL, 0, stderr, warnings, NULL);
        if (!models[k]) {
            arena_free(arena);
            return 1;
        }
    }
    SummaryLayers la = summary_layers(arena, models[0]), lb = summary_layers(arena, models[1]);
    DiffRow *rows = ARENA_ARRAY(arena, DiffRow, la.count + lb.count + 1);
    int count = align(arena, &la, &lb, rows);

    /* Cells first, so the columns can be as wide as their widest cell. */
    enum { COLS = 5 };
    const char *header[COLS] = {"layer", "op", "output", "params", "FLOPs"};
    const char **cells = ARENA_ARRAY(arena, const char *, (size_t)count * COLS);
    char *marks = arena_alloc(arena, (size_t)count + 1);
    int width[COLS];
    for (int c = 0; c < COLS; c++) width[c] = (int)strlen(header[c]);
    int changed = 0, added = 0, removed = 0;
    for (int r = 0; r < count; r++) {
        const SummaryLayer *a = rows[r].a, *b = rows[r].b, *any = a ? a : b;
        const char **cell = &cells[(size_t)r * COLS];
        bool same_shape = a && b && strcmp(a->shape, b->shape) == 0;
        cell[0] = a && b && strcmp(a->name, b->name) != 0 ? arena_printf(arena, "%s -> %s", a->name, b->name) : any->name;
        cell[1] = any->op;
        cell[2] = !a || !b || same_shape ? any->shape : arena_printf(arena, "%s -> %s", a->shape, b->shape);
        cell[3] = change(arena, a, b, a ? a->params : 0, b ? b->params : 0);
        cell[4] = change(arena, a, b, a ? a->flops : 0, b ? b->flops : 0);
        if (!b) marks[r] = '-', removed++;
        else if (!a) marks[r] = '+', added++;
        else if (!same_shape || a->params != b->params || a->flops != b->flops || strcmp(a->name, b->name) != 0)
            marks[r] = '~', changed++;
        else marks[r] = ' ';
        for (int c = 0; c < COLS; c++)
            if ((int)strlen(cell[c]) > width[c]) width[c] = (int)strlen(cell[c]);
    }
    printf("--- %s (model %s)\n+++ %s (model %s)\n", paths[0], models[0]->name, paths[1], models[1]->name);
    printf("  %-*s  %-*s  %-*s  %-*s  %s\n", width[0], header[0], width[1], header[1], width[2], header[2],
           width[3], header[3], header[4]);
    for (int r = 0; r < count; r++) {
        const char **cell = &cells[(size_t)r * COLS];
        printf("%c %-*s  %-*s  %-*s  %-*s  %s\n", marks[r], width[0], cell[0], width[1], cell[1], width[2], cell[2],
               width[3], cell[3], cell[4]);
    }
    printf("\nlayers:              %d -> %d (%d changed, %d added, %d removed)\n", la.count, lb.count, changed, added,
           removed);
    printf("parameters:          %s\n", total_change(arena, la.params, lb.params));
    printf("FLOPs per example:   %s forward\n", total_change(arena, la.forward_flops, lb.forward_flops));
    printf("                     %s backward\n", total_change(arena, la.backward_flops, lb.backward_flops));
    arena_free(arena);
    return 0;
}
