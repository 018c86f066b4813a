/* nnrt_settings.h — the one table of the training settings, compiled into both libnnrt and nnc.
 *
 * Every setting a `train { }` block or a model executable's command line accepts is described
 * here once: the spec forms (data sets, optimizers, schedules) with their arguments (kind,
 * required, default, allowed range or strings), and the scalar keys (epochs, batch, seed, clip,
 * early_stop, and --lr) with their ranges. nnc's sema checks train blocks against it and writes
 * canonical spec strings with nnrt_setting_format_call; the runtime binds `--optimizer` & co. to
 * the same forms and formats them with the same function, so both accept, reject and print alike
 * (tests/settings checks this). The "did you mean" helper of both lives here too.
 *
 * Plain C11 and libc only: no runtime internals, no compiler internals. Not part of the ABI
 * between generated code and the runtime (that is nnrt.h).
 */
#ifndef NNRT_SETTINGS_H
#define NNRT_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

typedef enum NnrtArgKind { NNRT_ARG_NUM, NNRT_ARG_INT, NNRT_ARG_STR, NNRT_ARG_BOOL } NnrtArgKind;

/* The largest integer setting: every integer up to it is exact in a double (a .nn number). */
#define NNRT_SETTING_INT_MAX 9007199254740991.0
/* The most arguments a form takes (csv has ten): callers size their NnrtArgVal arrays with it. */
#define NNRT_SETTING_MAX_ARGS 16

typedef struct NnrtSettingArg {
    const char *name;
    NnrtArgKind kind;
    int required;               /* must be given; canonical text passes it by position */
    int optional;               /* no default: left out of the canonical text when not given */
    double default_number;      /* NUM, INT; BOOL: 0 or 1 */
    const char *default_string; /* STR */
    double min, max;            /* NUM, INT: the allowed range (NUM values must also be finite) */
    int min_open, max_open;     /* the bound itself is not allowed */
    const char *const *choices; /* STR: the allowed strings, NULL-terminated (NULL: any) */
} NnrtSettingArg;

/* Where a form may appear. */
enum {
    NNRT_GROUP_DATA = 1u << 0,      /* data = ..., --data, eval --data, predict INPUT */
    NNRT_GROUP_VALIDATE = 1u << 1,  /* validate = ..., --validate */
    NNRT_GROUP_OPTIMIZER = 1u << 2, /* optimizer = ..., --optimizer */
    NNRT_GROUP_SCHEDULE = 1u << 3,  /* schedule = ..., --schedule */
};

typedef struct NnrtSettingForm {
    const char *name;
    unsigned groups;            /* NNRT_GROUP_* bits */
    const NnrtSettingArg *args;
    int nargs;
    int keywords_only;          /* canonical text names every argument */
    int state_tensors;          /* optimizers: state tensors per parameter ... */
    const char *state_if;       /* ... plus one when this argument is nonzero (a momentum buffer) */
} NnrtSettingForm;

/* One argument's value after binding: given or filled from the default. */
typedef struct NnrtArgVal {
    int set;         /* given explicitly */
    double num;      /* NUM, INT */
    int64_t i;       /* INT */
    const char *str; /* STR (not owned) */
    int boolean;     /* BOOL */
} NnrtArgVal;

/* The form called `name` that may appear in `group`, or NULL. */
const NnrtSettingForm *nnrt_setting_form(unsigned group, const char *name);
/* The names of the forms of `group` in table order; returns their number (at most cap). */
int nnrt_setting_form_names(unsigned group, const char **names, int cap);
/* "sgd, adam, adamw or rmsprop" into out. */
void nnrt_setting_form_list(unsigned group, char *out, size_t cap);
/* Index of argument `name` of f, or -1. */
int nnrt_setting_arg_index(const NnrtSettingForm *f, const char *name);
/* "sgd(lr, momentum=0, nesterov=false, weight_decay=0)" into out. */
void nnrt_setting_signature(const NnrtSettingForm *f, char *out, size_t cap);

/* The train-block keys in order, and the scalar ones among them (plus "lr", the command line's
 * --lr) with their ranges. */
extern const char *const nnrt_setting_keys[];
extern const int nnrt_setting_key_count;
const NnrtSettingArg *nnrt_setting_scalar(const char *name);

/* Is a number allowed for arg a (kind, integrality, finiteness, range)? */
int nnrt_setting_number_ok(const NnrtSettingArg *a, double v);
/* Is a string allowed (its choices)? */
int nnrt_setting_string_ok(const NnrtSettingArg *a, const char *s);
/* What a may be, for "must be ..." messages: "positive", "in [0, 1)", "an integer of at least
 * 1", "\"error\" or \"skip\"". `v` picks the bound an integer broke (at least / at most). */
void nnrt_setting_rule(const NnrtSettingArg *a, double v, char *out, size_t cap);
/* A rule that involves several arguments of f, checked after each value is in range: returns the
 * message (static text) and sets *arg to the argument it is about, or NULL when all is well. */
const char *nnrt_setting_form_check(const NnrtSettingForm *f, const NnrtArgVal *v, int *arg);
/* Optimizer state tensors per parameter for these values. */
int nnrt_setting_state_tensors(const NnrtSettingForm *f, const NnrtArgVal *v);

/* The canonical text of a bound call: "name(req1, req2, opt1=v, ...)" (every argument by keyword
 * when keywords_only; optional arguments that were not given left out; a form without arguments
 * is its bare name), integers in digits, other numbers as the shortest of %.6g..%.17g that reads
 * back exactly, strings in double quotes with \" and \\. Writes at most
 * cap bytes (always terminated when cap > 0) and returns the full length, like snprintf. */
size_t nnrt_setting_format_call(const NnrtSettingForm *f, const NnrtArgVal *v, char *out, size_t cap);
void nnrt_setting_format_number(double x, char out[40]);

/* The model a data spec is checked against, as declared in the .nn file: a class target has its
 * class count last (class[t, V]: rank 2, dims {t, V}; class[N]: rank 1, dims {N}). A NULL name
 * means not declared: there is nothing to check against (nnc reports the missing declaration). */
typedef struct NnrtSettingModel {
    const char *input_name;
    int input_is_int;
    int input_rank;
    const int64_t *input_dims;
    const char *target_name;
    int target_is_class;
    int target_rank;
    const int64_t *target_dims;
    int64_t input_vocab; /* the embedding's vocabulary for an int input; 0: unknown */
} NnrtSettingModel;

/* "x : int[64]" into out. */
void nnrt_setting_declaration(const char *name, const char *elem, int rank, const int64_t *dims,
                              char *out, size_t cap);
/* Is f a sequence data form, text() or tokens()? */
int nnrt_setting_is_sequence(const NnrtSettingForm *f);
/* text()/tokens() need input int[T] and target class[T, V] (V = 256 for text, one class per
 * byte). Checks that against m and fills in what was not given: context = T, stride = context
 * (marked set, so the canonical text names them). Returns NULL, or the message (written into msg)
 * with *arg the argument it is about (-1: the call as a whole). */
const char *nnrt_setting_sequence_bind(const NnrtSettingForm *f, const NnrtSettingModel *m,
                                       NnrtArgVal *v, int *arg, char *msg, size_t cap);

/* csv(..., text="COLUMN") needs input int[T]; checks length (filled in: T), tokenize (filled in:
 * "bytes") and, against the embedding's vocabulary (m->input_vocab, when known), bytes' 257 ids or
 * words' vocab (filled in: the embedding's vocabulary). NULL for other forms and csv without text;
 * else the message, with *arg the argument it is about. */
const char *nnrt_setting_csv_text_bind(const NnrtSettingForm *f, const NnrtSettingModel *m,
                                       NnrtArgVal *v, int *arg, char *msg, size_t cap);

/* "Did you mean": the candidate closest to `word` by edit distance, or NULL when none is close
 * (about one edit per three characters, at least one; words over 64 bytes match nothing). */
const char *nnrt_closest(const char *word, const char *const *candidates, int count);

#endif /* NNRT_SETTINGS_H */
