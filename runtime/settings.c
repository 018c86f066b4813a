/* settings.c — the one table of the training settings (see nnrt_settings.h), its checks and its
 * canonical text, and the "did you mean" helper. Compiled into libnnrt and into nnc, so the
 * compiler's train-block checks and the executable's command line cannot drift apart.
 *
 * Decisions recorded here and in grammar/REFERENCE.md ("The train block"):
 *   - rmsprop takes weight_decay and momentum (the runtime implements both), lr defaults to 0.01
 *     (PyTorch's default), so a bare `rmsprop` is the same everywhere.
 *   - momentum, alpha, beta1, beta2 are in [0, 1); eps, lr, scale, gamma are positive;
 *     weight_decay is zero or positive.
 *   - schedules run per step with the epoch counted fractionally: cosine's warmup (>= 0) and
 *     step's every (> 0) are numbers of epochs that may be fractions; onecycle(max_lr, pct=0.3,
 *     div_factor=25, final_div_factor=10000) takes PyTorch OneCycleLR's defaults and its
 *     pct_start range [0, 1].
 *   - csv takes target_column (0-based, for header=false files) in both places; it is left out of
 *     the canonical text when not given, so existing canonical strings do not change.
 *   - clip and early_stop are "0: off" in a train block as on the command line.
 *   - text(path, context, stride) and tokens(...) fill in context (the model's T) and stride (the
 *     context) in the canonical text, as csv's target is filled in with the model's target name.
 *   - split's shuffle is written out (split(0.2, shuffle=true)): the held-out set changed from the
 *     file's tail to a fixed permutation, and the canonical text says which one a model uses.
 */
#include "nnrt_settings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ranges, as min, max, min_open, max_open. */
#define ANY 0, 0, 0, 0
#define POSITIVE 0, INFINITY, 1, 0
#define NON_NEGATIVE 0, INFINITY, 0, 0
#define FRACTION_BELOW_ONE 0, 1, 0, 1 /* [0, 1): momentum and decay rates */
#define OPEN_UNIT 0, 1, 1, 1          /* (0, 1): split's held-out fraction */
#define UNIT_INTERVAL 0, 1, 0, 0      /* [0, 1]: onecycle's pct */
#define COUNT_FROM(lo) lo, NNRT_SETTING_INT_MAX, 0, 0

#define NUM(name, dflt, range) {name, NNRT_ARG_NUM, 0, 0, dflt, NULL, range, NULL}
#define NUM_REQUIRED(name, range) {name, NNRT_ARG_NUM, 1, 0, 0, NULL, range, NULL}
#define INT(name, dflt, lo) {name, NNRT_ARG_INT, 0, 0, dflt, NULL, COUNT_FROM(lo), NULL}
#define BOOL(name, dflt) {name, NNRT_ARG_BOOL, 0, 0, dflt, NULL, ANY, NULL}
#define STR_REQUIRED(name) {name, NNRT_ARG_STR, 1, 0, 0, NULL, ANY, NULL}

static const char *const missing_choices[] = {"error", "skip", NULL};
static const char *const tokenize_choices[] = {"bytes", "words", NULL};

static const NnrtSettingArg idx_args[] = {
    STR_REQUIRED("images"), STR_REQUIRED("labels"), NUM("scale", 1, POSITIVE)};
static const NnrtSettingArg csv_args[] = {
    STR_REQUIRED("path"),
    {"target", NNRT_ARG_STR, 0, 0, 0, "", ANY, NULL}, /* "": the model's target (sema fills it in) */
    BOOL("header", 1),
    BOOL("standardize", 0),
    {"missing", NNRT_ARG_STR, 0, 0, 0, "error", ANY, missing_choices},
    {"target_column", NNRT_ARG_INT, 0, 1, 0, NULL, COUNT_FROM(0), NULL},
    /* text classification (v2): the text column becomes the int[T] input, T = length (default:
     * the model's input length), token id 0 is padding */
    {"text", NNRT_ARG_STR, 0, 1, 0, NULL, ANY, NULL},
    {"length", NNRT_ARG_INT, 0, 1, 0, NULL, COUNT_FROM(1), NULL},
    {"tokenize", NNRT_ARG_STR, 0, 1, 0, "bytes", ANY, tokenize_choices},
    {"vocab", NNRT_ARG_INT, 0, 1, 0, NULL, COUNT_FROM(3), NULL}};
/* split(f, shuffle=true): shuffle=false holds out the file's tail (time series) */
static const NnrtSettingArg split_args[] = {NUM_REQUIRED("fraction", OPEN_UNIT), BOOL("shuffle", 1)};
/* text()/tokens(): context and stride have no fixed default: they are the model's T (the input
 * length) and the context; nnrt_setting_sequence_bind fills them in for the canonical text. */
#define SEQUENCE_ARGS                                                                               \
    {STR_REQUIRED("path"),                                                                         \
     {"context", NNRT_ARG_INT, 0, 1, 0, NULL, COUNT_FROM(1), NULL},                                \
     {"stride", NNRT_ARG_INT, 0, 1, 0, NULL, COUNT_FROM(1), NULL}}
static const NnrtSettingArg text_args[] = SEQUENCE_ARGS;
static const NnrtSettingArg tokens_args[] = SEQUENCE_ARGS;
static const NnrtSettingArg sgd_args[] = {
    NUM_REQUIRED("lr", POSITIVE), NUM("momentum", 0, FRACTION_BELOW_ONE), BOOL("nesterov", 0),
    NUM("weight_decay", 0, NON_NEGATIVE)};
static const NnrtSettingArg adam_args[] = {
    NUM("lr", 1e-3, POSITIVE), NUM("beta1", 0.9, FRACTION_BELOW_ONE),
    NUM("beta2", 0.999, FRACTION_BELOW_ONE), NUM("eps", 1e-8, POSITIVE),
    NUM("weight_decay", 0, NON_NEGATIVE)};
static const NnrtSettingArg adamw_args[] = {
    NUM("lr", 1e-3, POSITIVE), NUM("beta1", 0.9, FRACTION_BELOW_ONE),
    NUM("beta2", 0.999, FRACTION_BELOW_ONE), NUM("eps", 1e-8, POSITIVE),
    NUM("weight_decay", 0.01, NON_NEGATIVE)};
static const NnrtSettingArg rmsprop_args[] = {
    NUM("lr", 0.01, POSITIVE), NUM("alpha", 0.99, FRACTION_BELOW_ONE), NUM("eps", 1e-8, POSITIVE),
    NUM("weight_decay", 0, NON_NEGATIVE), NUM("momentum", 0, FRACTION_BELOW_ONE)};
/* schedules count epochs fractionally (evaluated at every step): every=0.5, warmup=0.5 */
static const NnrtSettingArg step_args[] = {NUM_REQUIRED("every", POSITIVE), NUM("gamma", 0.1, POSITIVE)};
static const NnrtSettingArg cosine_args[] = {NUM("warmup", 0, NON_NEGATIVE)};
/* PyTorch's OneCycleLR: pct_start in [0, 1], its div_factor and final_div_factor defaults */
static const NnrtSettingArg onecycle_args[] = {
    NUM_REQUIRED("max_lr", POSITIVE), NUM("pct", 0.3, UNIT_INTERVAL), NUM("div_factor", 25, POSITIVE),
    NUM("final_div_factor", 1e4, POSITIVE)};

#define ARGS(a) a, (int)(sizeof a / sizeof *a)
#define DATA_GROUPS (NNRT_GROUP_DATA | NNRT_GROUP_VALIDATE)

static const NnrtSettingForm forms[] = {
    {"idx", DATA_GROUPS, ARGS(idx_args), 0, 0, NULL},
    {"csv", DATA_GROUPS, ARGS(csv_args), 0, 0, NULL},
    {"text", DATA_GROUPS, ARGS(text_args), 0, 0, NULL},
    {"tokens", DATA_GROUPS, ARGS(tokens_args), 0, 0, NULL},
    {"split", NNRT_GROUP_VALIDATE, ARGS(split_args), 0, 0, NULL},
    {"sgd", NNRT_GROUP_OPTIMIZER, ARGS(sgd_args), 1, 0, "momentum"},
    {"adam", NNRT_GROUP_OPTIMIZER, ARGS(adam_args), 1, 2, NULL},
    {"adamw", NNRT_GROUP_OPTIMIZER, ARGS(adamw_args), 1, 2, NULL},
    {"rmsprop", NNRT_GROUP_OPTIMIZER, ARGS(rmsprop_args), 1, 1, "momentum"},
    {"constant", NNRT_GROUP_SCHEDULE, NULL, 0, 0, 0, NULL},
    {"step", NNRT_GROUP_SCHEDULE, ARGS(step_args), 1, 0, NULL},
    {"cosine", NNRT_GROUP_SCHEDULE, ARGS(cosine_args), 1, 0, NULL},
    {"onecycle", NNRT_GROUP_SCHEDULE, ARGS(onecycle_args), 1, 0, NULL},
};
#define NFORMS ((int)(sizeof forms / sizeof *forms))

const char *const nnrt_setting_keys[] = {"data",  "validate", "optimizer", "schedule",  "epochs",
                                         "batch", "seed",     "clip",      "early_stop"};
const int nnrt_setting_key_count = (int)(sizeof nnrt_setting_keys / sizeof *nnrt_setting_keys);

/* The scalar keys; defaults are the compiler's when a train block leaves them out. clip and
 * early_stop: 0 is off. lr is the command line's --lr, the same range as every optimizer's lr. */
static const NnrtSettingArg scalars[] = {
    INT("epochs", 10, 1), INT("batch", 32, 1), INT("seed", 0, 0), NUM("clip", 0, NON_NEGATIVE),
    INT("early_stop", 0, 0), NUM("lr", 0, POSITIVE)};

const NnrtSettingForm *nnrt_setting_form(unsigned group, const char *name) {
    for (int i = 0; i < NFORMS; i++)
        if ((forms[i].groups & group) && strcmp(forms[i].name, name) == 0) return &forms[i];
    return NULL;
}

int nnrt_setting_form_names(unsigned group, const char **names, int cap) {
    int n = 0;
    for (int i = 0; i < NFORMS && n < cap; i++)
        if (forms[i].groups & group) names[n++] = forms[i].name;
    return n;
}

/* "a, b or c" */
static void append_list(const char *const *items, int n, const char *quote, char *out, size_t cap) {
    size_t len = strlen(out);
    for (int i = 0; i < n && len < cap; i++) {
        snprintf(out + len, cap - len, "%s%s%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", quote,
                 items[i], quote);
        len += strlen(out + len);
    }
}

void nnrt_setting_form_list(unsigned group, char *out, size_t cap) {
    const char *names[16];
    int n = nnrt_setting_form_names(group, names, 16);
    if (cap) out[0] = 0;
    append_list(names, n, "", out, cap);
}

int nnrt_setting_arg_index(const NnrtSettingForm *f, const char *name) {
    for (int i = 0; i < f->nargs; i++)
        if (strcmp(f->args[i].name, name) == 0) return i;
    return -1;
}

const NnrtSettingArg *nnrt_setting_scalar(const char *name) {
    for (size_t i = 0; i < sizeof scalars / sizeof *scalars; i++)
        if (strcmp(scalars[i].name, name) == 0) return &scalars[i];
    return NULL;
}

int nnrt_setting_number_ok(const NnrtSettingArg *a, double v) {
    if (a->kind != NNRT_ARG_NUM && a->kind != NNRT_ARG_INT) return 0;
    if (!isfinite(v) || (a->kind == NNRT_ARG_INT && v != floor(v))) return 0;
    if (a->min_open ? !(v > a->min) : !(v >= a->min)) return 0;
    if (a->max_open ? !(v < a->max) : !(v <= a->max)) return 0;
    return 1;
}

int nnrt_setting_string_ok(const NnrtSettingArg *a, const char *s) {
    if (!a->choices) return 1;
    for (const char *const *c = a->choices; *c; c++)
        if (strcmp(*c, s) == 0) return 1;
    return 0;
}

void nnrt_setting_rule(const NnrtSettingArg *a, double v, char *out, size_t cap) {
    if (!cap) return;
    out[0] = 0;
    switch (a->kind) {
    case NNRT_ARG_BOOL: snprintf(out, cap, "true or false"); return;
    case NNRT_ARG_STR:
        if (!a->choices) {
            snprintf(out, cap, "a string in double quotes");
            return;
        }
        int n = 0;
        while (a->choices[n]) n++;
        append_list(a->choices, n, "\"", out, cap);
        return;
    case NNRT_ARG_INT:
        if (isfinite(v) && v == floor(v) && v > a->max)
            snprintf(out, cap, "an integer of at most %.0f", a->max);
        else
            snprintf(out, cap, "an integer of at least %.0f", a->min);
        return;
    case NNRT_ARG_NUM:
        if (isinf(a->max)) {
            if (a->min == 0) snprintf(out, cap, a->min_open ? "positive" : "zero or positive");
            else snprintf(out, cap, "%s %g", a->min_open ? "greater than" : "at least", a->min);
        } else if (a->min_open && a->max_open) {
            snprintf(out, cap, "between %g and %g (exclusive)", a->min, a->max);
        } else {
            snprintf(out, cap, "in %c%g, %g%c", a->min_open ? '(' : '[', a->min, a->max,
                     a->max_open ? ')' : ']');
        }
        return;
    }
}

const char *nnrt_setting_form_check(const NnrtSettingForm *f, const NnrtArgVal *v, int *arg) {
    if (strcmp(f->name, "sgd") == 0 && v[2].boolean && v[1].num == 0) {
        *arg = 2;
        return "sgd(nesterov=true) needs momentum > 0 (as in PyTorch)";
    }
    if (strcmp(f->name, "csv") == 0) {
        int has_target = v[1].str && v[1].str[0];
        if (has_target && v[5].set) {
            *arg = 5;
            return "csv() takes either target or target_column, not both";
        }
        if (has_target && v[1].set && !v[2].boolean) {
            *arg = 1;
            return "csv(header=false) has no column names; name the target column by its 0-based "
                   "number with target_column=N (default: the last column)";
        }
        /* text classification (v2): length, tokenize and vocab describe the text column */
        if (!v[6].set) {
            for (int k = 7; k <= 9; k++)
                if (v[k].set) {
                    *arg = k;
                    return k == 7 ? "csv(length=...) is the length of a text column: name it with text=\"COLUMN\""
                         : k == 8 ? "csv(tokenize=...) splits a text column: name it with text=\"COLUMN\""
                                  : "csv(vocab=...) sizes the words of a text column: name it with text=\"COLUMN\"";
                }
        } else {
            if (!v[6].str || !v[6].str[0]) {
                *arg = 6;
                return "csv(text=\"\") names no column; give the name of the column that holds the text";
            }
            if (v[3].boolean) {
                *arg = 3;
                return "csv(standardize=true) scales numeric features; a text column has none (its "
                       "token ids feed an embedding)";
            }
            if (v[9].set && !(v[8].set && v[8].str && strcmp(v[8].str, "words") == 0)) {
                *arg = 9;
                return "csv(tokenize=\"bytes\") always has 257 ids (0 padding, byte + 1); vocab= "
                       "sizes the vocabulary of tokenize=\"words\"";
            }
        }
    }
    return NULL;
}

int nnrt_setting_state_tensors(const NnrtSettingForm *f, const NnrtArgVal *v) {
    int k = f->state_if ? nnrt_setting_arg_index(f, f->state_if) : -1;
    return f->state_tensors + (k >= 0 && v[k].num != 0);
}

void nnrt_setting_format_number(double x, char out[40]) {
    char text[40];
    for (int precision = 6; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, x);
        if (strtod(text, NULL) == x) break;
    }
    memcpy(out, text, sizeof text);
}

/* Appends to out[*len..cap) like snprintf would, counting what does not fit. */
static void put(char *out, size_t cap, size_t *len, const char *text) {
    size_t n = strlen(text);
    if (*len < cap) {
        size_t room = cap - *len - 1;
        memcpy(out + *len, text, n < room ? n : room);
        out[*len + (n < room ? n : room)] = 0;
    }
    *len += n;
}

static void put_string(char *out, size_t cap, size_t *len, const char *s) {
    put(out, cap, len, "\"");
    for (const char *c = s; *c; c++) {
        char one[3] = {'\\', *c, 0};
        put(out, cap, len, *c == '"' || *c == '\\' ? one : one + 1);
    }
    put(out, cap, len, "\"");
}

size_t nnrt_setting_format_call(const NnrtSettingForm *f, const NnrtArgVal *v, char *out, size_t cap) {
    size_t len = 0;
    if (cap) out[0] = 0;
    put(out, cap, &len, f->name);
    if (f->nargs == 0) return len; /* "constant", as written */
    put(out, cap, &len, "(");
    int shown = 0;
    for (int i = 0; i < f->nargs; i++) {
        const NnrtSettingArg *a = &f->args[i];
        if (a->optional && !v[i].set) continue;
        if (shown++) put(out, cap, &len, ", ");
        if (!a->required || f->keywords_only) {
            put(out, cap, &len, a->name);
            put(out, cap, &len, "=");
        }
        char number[40];
        switch (a->kind) {
        case NNRT_ARG_STR: put_string(out, cap, &len, v[i].str ? v[i].str : ""); break;
        case NNRT_ARG_BOOL: put(out, cap, &len, v[i].boolean ? "true" : "false"); break;
        case NNRT_ARG_INT: /* all digits: 1000000, not 1e+06 */
            snprintf(number, sizeof number, "%.0f", v[i].num);
            put(out, cap, &len, number);
            break;
        default:
            nnrt_setting_format_number(v[i].num, number);
            put(out, cap, &len, number);
            break;
        }
    }
    put(out, cap, &len, ")");
    return len;
}

void nnrt_setting_signature(const NnrtSettingForm *f, char *out, size_t cap) {
    size_t len = 0;
    if (cap) out[0] = 0;
    put(out, cap, &len, f->name);
    put(out, cap, &len, "(");
    for (int i = 0; i < f->nargs; i++) {
        const NnrtSettingArg *a = &f->args[i];
        if (i) put(out, cap, &len, ", ");
        put(out, cap, &len, a->name);
        if (a->required || a->optional) continue;
        char number[40];
        put(out, cap, &len, "=");
        if (a->kind == NNRT_ARG_STR) put_string(out, cap, &len, a->default_string);
        else if (a->kind == NNRT_ARG_BOOL) put(out, cap, &len, a->default_number ? "true" : "false");
        else {
            nnrt_setting_format_number(a->default_number, number);
            put(out, cap, &len, number);
        }
    }
    put(out, cap, &len, ")");
}

/* ---------------------------------------------------------------- sequence data */

void nnrt_setting_declaration(const char *name, const char *elem, int rank, const int64_t *dims,
                              char *out, size_t cap) {
    size_t len = 0;
    char number[32];
    if (cap) out[0] = 0;
    put(out, cap, &len, name);
    put(out, cap, &len, " : ");
    put(out, cap, &len, elem);
    put(out, cap, &len, "[");
    for (int i = 0; i < rank; i++) {
        snprintf(number, sizeof number, "%s%lld", i ? ", " : "", (long long)dims[i]);
        put(out, cap, &len, number);
    }
    put(out, cap, &len, "]");
}

int nnrt_setting_is_sequence(const NnrtSettingForm *f) {
    return f && (strcmp(f->name, "text") == 0 || strcmp(f->name, "tokens") == 0);
}

const char *nnrt_setting_sequence_bind(const NnrtSettingForm *f, const NnrtSettingModel *m,
                                       NnrtArgVal *v, int *arg, char *msg, size_t cap) {
    int text = strcmp(f->name, "text") == 0;
    if (!m->input_name || !m->target_name) return NULL;
    int64_t t = m->input_rank == 1 ? m->input_dims[0] : -1;
    int fits = m->input_is_int && m->input_rank == 1 && m->target_is_class && m->target_rank == 2 &&
               m->target_dims[0] == t && (!text || m->target_dims[1] == 256);
    if (!fits) {
        char input[160], target[160];
        nnrt_setting_declaration(m->input_name, m->input_is_int ? "int" : "float", m->input_rank,
                                 m->input_dims, input, sizeof input);
        nnrt_setting_declaration(m->target_name, m->target_is_class ? "class" : "float",
                                 m->target_rank, m->target_dims, target, sizeof target);
        snprintf(msg, cap,
                 "%s() data needs the model's input to be int[T] and its target class[T, %s] (%s), "
                 "but the model declares input %s and target %s",
                 f->name, text ? "256" : "V",
                 text ? "T positions, one class per byte value" : "T positions, token ids below V",
                 input, target);
        *arg = -1;
        return msg;
    }
    if (v[1].set && v[1].i != t) {
        char input[160];
        nnrt_setting_declaration(m->input_name, "int", 1, m->input_dims, input, sizeof input);
        snprintf(msg, cap, "'context' of %s must equal the model's T, %lld (input %s), got %lld",
                 f->name, (long long)t, input, (long long)v[1].i);
        *arg = 1;
        return msg;
    }
    v[1] = (NnrtArgVal){.set = 1, .num = (double)t, .i = t};
    if (!v[2].set) v[2] = (NnrtArgVal){.set = 1, .num = (double)t, .i = t};
    return NULL;
}

const char *nnrt_setting_csv_text_bind(const NnrtSettingForm *f, const NnrtSettingModel *m,
                                       NnrtArgVal *v, int *arg, char *msg, size_t cap) {
    if (strcmp(f->name, "csv") != 0 || !v[6].set || !m->input_name) return NULL;
    int words = v[8].set && v[8].str && strcmp(v[8].str, "words") == 0;
    char input[160];
    nnrt_setting_declaration(m->input_name, m->input_is_int ? "int" : "float", m->input_rank,
                             m->input_dims, input, sizeof input);
    if (!m->input_is_int || m->input_rank != 1) {
        snprintf(msg, cap, "csv(text=\"%s\") makes each row's text a sequence of token ids, so the "
                 "model's input must be int[T], but it declares %s", v[6].str, input);
        *arg = 6;
        return msg;
    }
    int64_t t = m->input_dims[0];
    if (v[7].set && v[7].i != t) {
        snprintf(msg, cap, "csv(length=%lld) does not match the model's input %s: the text is cut "
                 "or padded to the input's length; drop length or make them equal",
                 (long long)v[7].i, input);
        *arg = 7;
        return msg;
    }
    v[7] = (NnrtArgVal){.set = 1, .num = (double)t, .i = t};
    if (!v[8].set) v[8] = (NnrtArgVal){.set = 1, .str = "bytes"};
    int64_t have = m->input_vocab; /* the embedding's vocabulary: 0 when unknown */
    if (!words) {
        if (have > 0 && have < 257) {
            snprintf(msg, cap, "csv(tokenize=\"bytes\") gives ids 0..256 (0 padding, byte + 1), but "
                     "the embedding of input '%s' has a vocabulary of %lld; use embedding(257, ...)",
                     m->input_name, (long long)have);
            *arg = 8;
            return msg;
        }
        return NULL;
    }
    if (!v[9].set) {
        if (have <= 0) {
            snprintf(msg, cap, "csv(tokenize=\"words\") needs the vocabulary size: vocab=N (ids 0 "
                     "padding, 1 unknown, 2..N-1 the most frequent words)");
            *arg = 8;
            return msg;
        }
        v[9] = (NnrtArgVal){.set = 1, .num = (double)have, .i = have}; /* the embedding's size */
    }
    if (have > 0 && v[9].i > have) {
        snprintf(msg, cap, "csv(vocab=%lld) gives ids up to %lld, but the embedding of input '%s' "
                 "has a vocabulary of %lld; make them equal", (long long)v[9].i,
                 (long long)v[9].i - 1, m->input_name, (long long)have);
        *arg = 9;
        return msg;
    }
    return NULL;
}

/* ---------------------------------------------------------------- did you mean */

static size_t bounded_length(const char *s, size_t limit) {
    size_t n = 0;
    while (n <= limit && s[n]) n++;
    return n;
}

static int edit_distance(const char *a, int la, const char *b, int lb) {
    int row[65];
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diagonal = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diagonal + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diagonal = up;
        }
    }
    return row[lb];
}

const char *nnrt_closest(const char *word, const char *const *candidates, int count) {
    const char *best = NULL;
    int best_distance = 1000;
    /* Bounded: a name can be megabytes long, and nothing that long is a near miss. */
    int len = (int)bounded_length(word, 64);
    if (len > 64) return NULL;
    int limit = len < 3 ? 1 : (len + 2) / 3; /* about one edit per three characters */
    for (int i = 0; i < count; i++) {
        int clen = (int)bounded_length(candidates[i], 64);
        if (clen > 64 || abs(clen - len) > limit || strcmp(word, candidates[i]) == 0) continue;
        int d = edit_distance(word, len, candidates[i], clen);
        if (d < best_distance && d <= limit) {
            best = candidates[i];
            best_distance = d;
        }
    }
    return best;
}
