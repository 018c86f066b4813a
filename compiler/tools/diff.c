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

#include "compare.h"
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

/* The train settings (canonical, every default filled in) that differ between the designs. */
static void print_train_changes(Arena *arena, const Model *a, const Model *b) {
    const char *va[COMPARE_TRAIN_SETTINGS], *vb[COMPARE_TRAIN_SETTINGS];
    compare_train_values(arena, a, va);
    compare_train_values(arena, b, vb);
    bool header = false;
    for (int k = 0; k < COMPARE_TRAIN_SETTINGS; k++) {
        if (strcmp(va[k], vb[k]) == 0) continue;
        if (!header) printf("\ntrain settings that differ:\n"), header = true;
        printf("  %-10s %s -> %s\n", compare_train_keys[k], va[k], vb[k]);
    }
}

static void diff_usage(FILE *out) {
    fprintf(out, "usage: nnc diff A.nn B.nn [-D NAME=VALUE]... [-w|-Werror]\n"
                 "       nnc diff A.nn -D NAME=V1,V2 [-D NAME=VALUE]...\n"
                 "  prints each layer of A and B aligned: ' ' same, '~' changed (output shape, parameters\n"
                 "  or FLOPs per example), '-' only in A, '+' only in B; then the totals and their deltas,\n"
                 "  and the train settings that differ. -D NAME=VALUE applies to each design that declares\n"
                 "  the param; -D NAME=V1,V2 gives V1 to the first design and V2 to the second, so one file\n"
                 "  with such a -D is diffed against itself (as nnc compare -D sweeps it)\n");
}

int diff_main(int argc, char **argv) {
    const char *paths[2] = {NULL, NULL};
    int path_count = 0;
    enum { MAX_DIFF_DEFINES = 64 };
    Define defines[MAX_DIFF_DEFINES];
    char define_names[MAX_DIFF_DEFINES][128];
    char first_values[MAX_DIFF_DEFINES][256];    /* -D NAME=V1,V2: V1 */
    const char *second_values[MAX_DIFF_DEFINES]; /* -D NAME=V1,V2: V2 (NULL for one value) */
    int define_count = 0;
    bool paired = false; /* some -D has a value for each side */
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
        if (strncmp(argv[i], "-D", 2) == 0) { /* -D NAME=VALUE or -DNAME=VALUE, as for nnc FILE.nn */
            const char *spec = argv[i][2] ? argv[i] + 2 : (i + 1 < argc ? argv[++i] : NULL);
            const char *eq = spec ? strchr(spec, '=') : NULL;
            if (!eq || eq == spec || eq - spec >= 128 || define_count == MAX_DIFF_DEFINES) {
                fprintf(stderr, "nnc diff: error: -D needs NAME=VALUE, e.g. -D width=256 (at most %d)\n", MAX_DIFF_DEFINES);
                return 1;
            }
            snprintf(define_names[define_count], sizeof define_names[0], "%.*s", (int)(eq - spec), spec);
            for (int d = 0; d < define_count; d++)
                if (strcmp(defines[d].name, define_names[define_count]) == 0) {
                    fprintf(stderr, "nnc diff: error: -D %s is given twice\n", defines[d].name);
                    return 1;
                }
            /* As for nnc compare: V1,V2 are two values, one for each design. */
            const char *values = eq + 1, *comma = strchr(values, ',');
            second_values[define_count] = NULL;
            if (comma) {
                if (strchr(comma + 1, ',') || comma == values || !comma[1] || comma - values >= 256) {
                    fprintf(stderr, "nnc diff: error: -D %s=%s: diff compares two designs, so -D takes one value (both) or "
                                    "two (V1 for the first, V2 for the second)\n", define_names[define_count], values);
                    return 1;
                }
                snprintf(first_values[define_count], sizeof first_values[0], "%.*s", (int)(comma - values), values);
                second_values[define_count] = comma + 1;
                values = first_values[define_count];
                paired = true;
            }
            defines[define_count] = (Define){.name = define_names[define_count], .value_text = values};
            define_count++;
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
    if (path_count == 1 && paired) paths[path_count++] = paths[0]; /* one file, two values: itself */
    if (path_count != 2) {
        fprintf(stderr, "nnc diff: error: needs two .nn files, e.g. nnc diff a.nn b.nn\n"
                        "nnc diff: note: or one file and a -D with a value for each side, e.g. nnc diff a.nn -D depth=2,4\n");
        diff_usage(stderr);
        return 1;
    }
    Arena *arena = arena_new();
    const char *labels[2] = {paths[0], paths[1]};
    Model *models[2];
    bool define_used[MAX_DIFF_DEFINES] = {false};
    enum { MAX_PARAM_NAMES = 256 };
    const char *param_names[MAX_PARAM_NAMES]; /* for "did you mean" */
    int param_name_count = 0;
    for (int k = 0; k < 2; k++) {
        /* the -D options of the params this design declares (an unknown one would be an error) */
        FILE *quiet = fopen("/dev/null", "w");
        const Ast *ast = NULL;
        source_analyze(arena, paths[k], NULL, 0, quiet ? quiet : stderr, DIAG_WARNINGS_OFF, &ast);
        if (quiet) fclose(quiet);
        Define *mine = ARENA_ARRAY(arena, Define, define_count + 1);
        int mine_count = 0;
        for (int d = 0; d < define_count; d++)
            for (const Stmt *st = ast ? ast->stmts : NULL; st; st = st->next) {
                if (st->kind == STMT_PARAM && param_name_count < MAX_PARAM_NAMES) param_names[param_name_count++] = st->name;
                if (st->kind == STMT_PARAM && strcmp(st->name, defines[d].name) == 0) {
                    mine[mine_count] = defines[d];
                    if (k == 1 && second_values[d]) mine[mine_count].value_text = second_values[d];
                    if (second_values[d] || paths[0] == paths[1])
                        labels[k] = arena_printf(arena, "%s -D %s=%s", labels[k], defines[d].name, mine[mine_count].value_text);
                    mine_count++;
                    define_used[d] = true;
                    break;
                }
            }
        models[k] = source_analyze(arena, paths[k], mine, mine_count, stderr, warnings, NULL);
        if (!models[k]) {
            arena_free(arena);
            return 1;
        }
    }
    for (int d = 0; d < define_count; d++)
        if (!define_used[d]) {
            const char *guess = diag_closest(defines[d].name, param_names, param_name_count);
            const char *who = paths[0] == paths[1] ? "the design declares no" : "neither design declares";
            if (guess)
                fprintf(stderr, "nnc diff: error: -D %s: %s `param %s`; did you mean '%s'?\n", defines[d].name, who,
                        defines[d].name, guess);
            else
                fprintf(stderr, "nnc diff: error: -D %s: %s `param %s`\n", defines[d].name, who, defines[d].name);
            arena_free(arena);
            return 1;
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
    printf("--- %s (model %s)\n+++ %s (model %s)\n", labels[0], models[0]->name, labels[1], models[1]->name);
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
    print_train_changes(arena, models[0], models[1]);
    arena_free(arena);
    return 0;
}
