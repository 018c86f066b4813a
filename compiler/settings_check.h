/* settings_check.h — the train block's checks (settings_check.c) and what they use of sema.c.
 * Internal to sema: the checks follow the settings table (runtime/include/nnrt_settings.h) that
 * the runtime binds --optimizer & co. with, so both accept and print the same settings. */
#ifndef NNC_SETTINGS_CHECK_H
#define NNC_SETTINGS_CHECK_H

#include "ops.h"

struct Sema;

/* Checks `train { ... }` and stores canonical settings in the model. */
void settings_check_train(struct Sema *s, Model *m, const Stmt *train);
/* The defaults of a model without those settings (epochs, batch, seed; the optimizer). */
void settings_defaults(Model *m);
void settings_default_optimizer(Arena *arena, Model *m);

/* From sema.c: evaluation and binding in the file's scope, and sema's "did you mean". */
Arena *sema_arena(struct Sema *s);
Diag *sema_diag(struct Sema *s);
Value sema_eval_global(struct Sema *s, const Expr *e);
bool sema_bind_global(struct Sema *s, const Expr *call, const ArgSpec *spec, Bound *out);
const char *sema_suggest(struct Sema *s, const char *word, const char *const *candidates, int count);
const char *sema_value_kind(ValueKind kind);

#endif
