/* compare_settings.c — a design's train settings as text, for the tools that show which of them
 * differ between designs (`nnc compare`'s table, `nnc diff`'s list). */
#include <string.h>

#include "compare.h"

const char *const compare_train_keys[COMPARE_TRAIN_SETTINGS] = {
    "data", "validate", "optimizer", "schedule", "epochs", "batch", "seed", "early_stop", "clip",
};

void compare_train_values(Arena *arena, const Model *m, const char **values) {
    const char *none = "(none)";
    int k = 0;
    values[k++] = m->data ? m->data : none;
    values[k++] = m->validate ? m->validate : none;
    values[k++] = m->optimizer ? m->optimizer : none;
    values[k++] = m->schedule ? m->schedule : none;
    values[k++] = arena_printf(arena, "%lld", (long long)m->epochs);
    values[k++] = arena_printf(arena, "%lld", (long long)m->batch);
    values[k++] = arena_printf(arena, "%lld", (long long)m->seed);
    values[k++] = arena_printf(arena, "%lld", (long long)m->early_stop);
    values[k++] = arena_printf(arena, "%g", m->clip);
}
