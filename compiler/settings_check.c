/* settings_check.c — the train block: data specs, optimizer, schedule and the scalar keys, checked
 * against the settings table the runtime uses too (runtime/settings.c), then stored in the model
 * as canonical strings written by the table's own formatter. So a train block and the command
 * line of the executable accept, reject and print the same settings (tests/settings). */
#include "settings_check.h"

#include <math.h>
#include <string.h>

#include "nnrt.h"
#include "nnrt_settings.h"

/* The table's arguments as a signature for sema's binder, which gives settings the same
 * positional/keyword checks and "did you mean" as ops. Integers bind as numbers: their range is
 * the table's (warmup=0 is fine, an op's ARG_INT would not be). */
static const ArgSpec *settings_arg_spec(Arena *arena, const NnrtSettingForm *f) {
    ArgSpec *spec = ARENA_ARRAY(arena, ArgSpec, f->nargs + 1);
    for (int i = 0; i < f->nargs; i++) {
        const NnrtSettingArg *a = &f->args[i];
        spec[i] = (ArgSpec){a->name, a->kind == NNRT_ARG_STR ? ARG_STRING : a->kind == NNRT_ARG_BOOL ? ARG_BOOL : ARG_NUMBER,
                            a->required != 0, a->default_number, a->default_string};
    }
    spec[f->nargs] = (ArgSpec)SPEC_END;
    return spec;
}

static const char *settings_quote(Arena *arena, const char *str) {
    size_t n = strlen(str);
    char *out = arena_alloc(arena, 2 * n + 3);
    char *p = out;
    *p++ = '"';
    for (const char *c = str; *c; c++) {
        if (*c == '"' || *c == '\\') *p++ = '\\';
        *p++ = *c;
    }
    *p++ = '"';
    *p = 0;
    return out;
}

static const char *settings_group_noun(unsigned group) {
    switch (group) {
    case NNRT_GROUP_DATA: return "data source";
    case NNRT_GROUP_VALIDATE: return "validation source";
    case NNRT_GROUP_OPTIMIZER: return "optimizer";
    default: return "schedule";
    }
}

/* A train value that must be one of the forms of `group`: checked, defaults filled, canonical
 * text returned (NULL after reporting). */
static const char *settings_spec(struct Sema *s, Model *m, const Stmt *item, unsigned group) {
    Arena *arena = sema_arena(s);
    Diag *diag = sema_diag(s);
    const Expr *e = item->value;
    if (e->kind == EXPR_ERROR) return NULL;
    const char *name = e->kind == EXPR_CALL || e->kind == EXPR_NAME ? e->text : NULL;
    const NnrtSettingForm *form = name ? nnrt_setting_form(group, name) : NULL;
    if (!form || (e->kind == EXPR_CALL && e->piped)) {
        const char *names[16];
        int count = nnrt_setting_form_names(group, names, 16);
        const char *guess = name ? sema_suggest(s, name, names, count) : NULL;
        Span at = e->kind == EXPR_CALL ? e->name_span : e->span;
        if (e->kind == EXPR_STRING && (group == NNRT_GROUP_DATA || group == NNRT_GROUP_VALIDATE)) {
            /* A bare path: say which call takes it. */
            size_t len = strlen(e->text);
            bool csv = len >= 4 && strcmp(e->text + len - 4, ".csv") == 0;
            bool txt = len >= 4 && strcmp(e->text + len - 4, ".txt") == 0;
            diag_error(diag, at, "'%s' takes a data source such as csv(...) or idx(...), not a bare path", item->name);
            if (csv || txt)
                diag_note(diag, SPAN_NONE, "write %s = %s(%s)", item->name, csv ? "csv" : "text",
                          settings_quote(arena, e->text));
            else
                diag_note(diag, SPAN_NONE, "IDX data has an images and a labels file: %s = idx(\"IMAGES\", \"LABELS\")",
                          item->name);
            return NULL;
        }
        if (guess) {
            diag_error(diag, at, "unknown %s '%s'; did you mean '%s'?", settings_group_noun(group), name, guess);
        } else {
            char list[128] = "";
            for (int i = 0; i < count; i++) {
                strncat(list, names[i], sizeof list - strlen(list) - 1);
                strncat(list, i + 1 < count ? ", " : "", sizeof list - strlen(list) - 1);
            }
            diag_error(diag, at, "'%s' must be one of: %s", item->name, list);
        }
        return NULL;
    }
    Bound b;
    Expr call = *e;
    if (e->kind == EXPR_NAME) { /* a bare name means the call with every default */
        call.kind = EXPR_CALL;
        call.args = NULL;
        call.name_span = e->span;
    }
    if (!sema_bind_global(s, &call, settings_arg_spec(arena, form), &b)) return NULL;
    NnrtArgVal v[NNRT_SETTING_MAX_ARGS] = {{0}};
    bool ok = true;
    for (int i = 0; i < form->nargs; i++) {
        const NnrtSettingArg *a = &form->args[i];
        const Value *x = &b.values[i];
        v[i] = (NnrtArgVal){.set = b.given[i], .num = x->number, .i = (int64_t)x->number, .str = x->string,
                            .boolean = x->boolean};
        char rule[160];
        if (a->optional && !b.given[i]) continue; /* no default to check: filled in below or left out */
        if (x->kind == VAL_NUMBER && !nnrt_setting_number_ok(a, x->number)) {
            nnrt_setting_rule(a, x->number, rule, sizeof rule);
            diag_error(diag, b.spans[i], "'%s' of %s must be %s, got %g", a->name, form->name, rule, x->number);
            if (strcmp(form->name, "csv") == 0 && strcmp(a->name, "vocab") == 0)
                diag_note(diag, SPAN_NONE, "ids 0 and 1 are padding and unknown words, so vocab=3 (one word) is the smallest");
            ok = false;
        } else if (x->kind == VAL_STRING && !nnrt_setting_string_ok(a, x->string)) {
            nnrt_setting_rule(a, 0, rule, sizeof rule);
            diag_error(diag, b.spans[i], "'%s' of %s must be %s, got \"%s\"", a->name, form->name, rule, x->string);
            int nchoices = 0;
            while (a->choices && a->choices[nchoices]) nchoices++;
            const char *guess = nchoices ? nnrt_closest(x->string, a->choices, nchoices) : NULL;
            if (guess) diag_note(diag, SPAN_NONE, "did you mean \"%s\"?", guess);
            ok = false;
        }
    }
    if (!ok) return NULL;
    int bad_arg;
    const char *why = nnrt_setting_form_check(form, v, &bad_arg);
    if (why) {
        diag_error(diag, b.spans[bad_arg], "%s", why);
        return NULL;
    }
    if (nnrt_setting_is_sequence(form)) {
        /* text()/tokens() windows fit one model shape: input int[T], target class[T, V] */
        NnrtSettingModel sm = {m->input_name, m->input_kind == NNRT_INPUT_INT, m->input_shape.rank,
                               m->input_shape.dims, m->target_name, m->target_kind == NNRT_TARGET_CLASS,
                               m->target_shape.rank, m->target_shape.dims, m->input_vocab};
        char msg[512];
        if (nnrt_setting_sequence_bind(form, &sm, v, &bad_arg, msg, sizeof msg)) {
            diag_error(diag, bad_arg >= 0 ? b.spans[bad_arg] : call.name_span, "%s", msg);
            return NULL;
        }
    }
    if (strcmp(form->name, "csv") == 0 && v[6].set) {
        /* csv(text=...): the text becomes the int[T] input's ids; the embedding must cover them */
        NnrtSettingModel sm = {m->input_name, m->input_kind == NNRT_INPUT_INT, m->input_shape.rank,
                               m->input_shape.dims, m->target_name, m->target_kind == NNRT_TARGET_CLASS,
                               m->target_shape.rank, m->target_shape.dims, m->input_vocab};
        char msg[512];
        if (nnrt_setting_csv_text_bind(form, &sm, v, &bad_arg, msg, sizeof msg)) {
            diag_error(diag, bad_arg >= 0 && b.given[bad_arg] ? b.spans[bad_arg] : call.name_span, "%s", msg);
            return NULL;
        }
    }
    if (strcmp(form->name, "csv") == 0 && !v[1].set && !v[5].set && v[2].boolean)
        v[1].str = m->target_name ? m->target_name : ""; /* the column named like the target */
    if (group == NNRT_GROUP_OPTIMIZER) m->optimizer_state_tensors = nnrt_setting_state_tensors(form, v);
    size_t len = nnrt_setting_format_call(form, v, NULL, 0);
    char *text = arena_alloc(arena, len + 1);
    nnrt_setting_format_call(form, v, text, len + 1);
    return text;
}

/* A scalar key (epochs, batch, seed, clip, early_stop) in the table's range. */
static bool settings_scalar(struct Sema *s, const Stmt *item, double *out) {
    Diag *diag = sema_diag(s);
    const NnrtSettingArg *a = nnrt_setting_scalar(item->name);
    Value v = sema_eval_global(s, item->value);
    if (v.kind == VAL_ERROR) return false;
    const char *kind = a->kind == NNRT_ARG_INT ? "an integer" : "a number";
    if (v.kind != VAL_NUMBER) {
        diag_error(diag, item->value->span, "'%s' must be %s, got %s", item->name, kind, sema_value_kind(v.kind));
        return false;
    }
    if (!nnrt_setting_number_ok(a, v.number)) {
        char rule[96];
        nnrt_setting_rule(a, v.number, rule, sizeof rule);
        diag_error(diag, item->value->span, "'%s' must be %s, got %g", item->name, rule, v.number);
        if (strcmp(item->name, "clip") == 0 || strcmp(item->name, "early_stop") == 0)
            diag_note(diag, SPAN_NONE, "%s = 0 turns it off", item->name);
        return false;
    }
    *out = v.number;
    return true;
}

void settings_check_train(struct Sema *s, Model *m, const Stmt *train) {
    Diag *diag = sema_diag(s);
    enum { MAX_KEYS = 16 };
    const Stmt *seen[MAX_KEYS] = {0};
    int nkeys = nnrt_setting_key_count;
    for (const Stmt *item = train->body; item; item = item->next) {
        if (item->kind != STMT_ASSIGN) {
            diag_error(diag, item->span, "a train block holds only 'KEY = VALUE' settings");
            continue;
        }
        int key = -1;
        for (int i = 0; i < nkeys; i++)
            if (strcmp(nnrt_setting_keys[i], item->name) == 0) key = i;
        if (key < 0) {
            const char *guess = sema_suggest(s, item->name, nnrt_setting_keys, nkeys);
            if (guess)
                diag_error(diag, item->name_span, "unknown train setting '%s'; did you mean '%s'?", item->name, guess);
            else
                diag_error(diag, item->name_span, "unknown train setting '%s'", item->name);
            char list[256] = "";
            for (int i = 0; i < nkeys; i++) {
                strncat(list, nnrt_setting_keys[i], sizeof list - strlen(list) - 1);
                strncat(list, i + 1 < nkeys ? ", " : "", sizeof list - strlen(list) - 1);
            }
            diag_note(diag, SPAN_NONE, "the settings are %s", list);
            continue;
        }
        if (seen[key]) {
            diag_error(diag, item->name_span, "'%s' is set twice in the train block", item->name);
            diag_note(diag, seen[key]->name_span, "first set here");
            continue;
        }
        seen[key] = item;
        const char *k = item->name;
        double x;
        if (strcmp(k, "data") == 0) m->data = settings_spec(s, m, item, NNRT_GROUP_DATA);
        else if (strcmp(k, "validate") == 0) m->validate = settings_spec(s, m, item, NNRT_GROUP_VALIDATE);
        else if (strcmp(k, "optimizer") == 0) m->optimizer = settings_spec(s, m, item, NNRT_GROUP_OPTIMIZER);
        else if (strcmp(k, "schedule") == 0) m->schedule = settings_spec(s, m, item, NNRT_GROUP_SCHEDULE);
        else if (settings_scalar(s, item, &x)) {
            if (strcmp(k, "epochs") == 0) m->epochs = (int64_t)x;
            else if (strcmp(k, "batch") == 0) m->batch = (int64_t)x;
            else if (strcmp(k, "seed") == 0) m->seed = (int64_t)x;
            else if (strcmp(k, "early_stop") == 0) m->early_stop = (int64_t)x;
            else m->clip = x;
        }
    }
    const Stmt *validate = NULL;
    for (int i = 0; i < nkeys; i++)
        if (strcmp(nnrt_setting_keys[i], "validate") == 0) validate = seen[i];
    if (m->validate && strncmp(m->validate, "split(", 6) == 0 && !m->data && validate)
        diag_error(diag, validate->value->span, "validate = split(...) holds out part of 'data', but the train block sets no data");
}

void settings_defaults(Model *m) {
    m->epochs = (int64_t)nnrt_setting_scalar("epochs")->default_number;
    m->batch = (int64_t)nnrt_setting_scalar("batch")->default_number;
    m->seed = (int64_t)nnrt_setting_scalar("seed")->default_number;
}

/* adam() with every default, as the runtime would read a missing optimizer. */
void settings_default_optimizer(Arena *arena, Model *m) {
    const NnrtSettingForm *adam = nnrt_setting_form(NNRT_GROUP_OPTIMIZER, "adam");
    NnrtArgVal v[NNRT_SETTING_MAX_ARGS] = {{0}};
    for (int i = 0; i < adam->nargs; i++) v[i] = (NnrtArgVal){.num = adam->args[i].default_number};
    size_t len = nnrt_setting_format_call(adam, v, NULL, 0);
    char *text = arena_alloc(arena, len + 1);
    nnrt_setting_format_call(adam, v, text, len + 1);
    m->optimizer = text;
    m->optimizer_state_tensors = nnrt_setting_state_tensors(adam, v);
}
