/* nnrt_internal.h — what the runtime's files share with each other (never with generated code).
 *
 * Conventions inside the runtime:
 *   - Every symbol that leaves a file is prefixed nnrt_/Nnrt/NNRT_: the library is linked into
 *     users' executables, so unprefixed names could collide with theirs.
 *   - Errors are values. A function that can fail prints one complete diagnostic to stderr (through
 *     nnrt_error and friends) and returns -1 (or NULL); callers only propagate. Nothing but
 *     nnrt_main decides the exit status, and nothing calls exit().
 *   - No mutable globals: all state lives in structs owned by the command being run.
 */
#ifndef NNRT_INTERNAL_H
#define NNRT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "comm.h"
#include "nnrt.h"
#include "nnrt_settings.h"

#if defined(__GNUC__)
#define NNRT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NNRT_PRINTF(f, a)
#endif

/* ---- log.c: diagnostics and memory ------------------------------------------------------------ */
void nnrt_error(const char *fmt, ...) NNRT_PRINTF(1, 2);        /* "error: ..." */
void nnrt_error_at(const char *file, int64_t line, int64_t col, const char *fmt, ...)
    NNRT_PRINTF(4, 5);                                          /* "file:line:col: error: ..." */
void nnrt_warning(const char *fmt, ...) NNRT_PRINTF(1, 2);      /* "warning: ..." */
void nnrt_note(const char *fmt, ...) NNRT_PRINTF(1, 2);         /* "note: ..." */
void nnrt_hint(const char *fmt, ...) NNRT_PRINTF(1, 2);         /* "hint: ..." */
/* In a job of several ranks every diagnostic above starts with `rank R: `; set once at start. */
void nnrt_log_set_rank(int rank);
/* malloc/calloc that report "out of memory" naming `what` and return NULL on failure. */
void *nnrt_alloc(size_t count, size_t elem, const char *what);
void *nnrt_zalloc(size_t count, size_t elem, const char *what);
void *nnrt_alloc_aligned(size_t bytes, const char *what); /* 64-byte aligned, zeroed */
char *nnrt_strdup(const char *s);
/* Shortest "%.Ng" that reads back as the same double (like Python's repr). */
void nnrt_fmt_double(char out[static 40], double v);
double nnrt_now(void); /* monotonic seconds */
/* `s` for a message: control bytes escaped as \xNN, cut with "..." to fit cap (>= 16). Text from
 * data files goes through this so a corrupt file cannot garble the terminal. */
const char *nnrt_printable(const char *s, char *buf, size_t cap);

/* ---- spec.c: `name(positional, key=value)` ---------------------------------------------------- */
#define NNRT_SPEC_MAX_ARGS 16
typedef enum NnrtValueKind { NNRT_VAL_NUM, NNRT_VAL_STR, NNRT_VAL_BOOL } NnrtValueKind;
typedef struct NnrtSpecArg {
    char *key;   /* NULL for a positional argument */
    int at;      /* offset of the argument in the spec text, for carets */
    NnrtValueKind kind;
    double num;
    char *str;
    int boolean;
} NnrtSpecArg;
typedef struct NnrtSpec {
    const char *text; /* the string parsed (not owned) */
    const char *what; /* where it came from, for messages: "--data", "train block: optimizer" */
    char *name;
    int has_parens;
    int nargs;
    NnrtSpecArg args[NNRT_SPEC_MAX_ARGS];
} NnrtSpec;
int nnrt_spec_parse(const char *text, const char *what, NnrtSpec *out);
void nnrt_spec_free(NnrtSpec *s);

/* Binds a parsed call to its form in the settings table (nnrt_settings.h): positional arguments
 * in order, keywords by name, kinds, ranges, allowed strings and the rules between arguments
 * checked, defaults filled in for what was not given. Reports (naming s->what, with a caret) and
 * returns -1 on the first problem. NNRT_BIND_PARTIAL: required arguments may be left out
 * (predict's idx(images) needs no labels). */
enum { NNRT_BIND_PARTIAL = 1 };
int nnrt_spec_bind(const NnrtSpec *s, const NnrtSettingForm *f, unsigned flags, NnrtArgVal *vals);
/* A spec's form in `group`; reports an unknown name (with a suggestion) and returns NULL. `noun`
 * names the group in the message: "optimizer", "schedule", "data set kind". */
const NnrtSettingForm *nnrt_spec_form(const NnrtSpec *s, unsigned group, const char *noun);

/* ---- rng.c ------------------------------------------------------------------------------------- */
typedef struct NnrtRng {
    uint64_t s[4];
} NnrtRng;
enum {
    NNRT_STREAM_INIT = 1, NNRT_STREAM_SHUFFLE = 2, NNRT_STREAM_STEP = 3, NNRT_STREAM_GRADCHECK = 4,
    NNRT_STREAM_SPLIT = 5,    /* split(shuffle=true): seeded by the example count, never the seed */
    NNRT_STREAM_GENERATE = 6, /* generate: sampling */
};
void nnrt_rng_seed(NnrtRng *r, uint64_t seed, uint64_t domain, uint64_t index);
uint64_t nnrt_rng_next(NnrtRng *r);
double nnrt_rng_uniform(NnrtRng *r);                   /* [0,1) from the top 24 bits */
uint64_t nnrt_rng_below(NnrtRng *r, uint64_t bound);   /* unbiased, bound >= 1 */
uint64_t nnrt_mix_seed(uint64_t seed, uint64_t domain, uint64_t index);
/* Initial parameter values per the model's NnrtInit kinds; exactly one of f32/f64 non-NULL. */
void nnrt_init_params(const NnrtModel *m, uint64_t seed, float *f32, double *f64);
void nnrt_shuffle(int64_t *order, int64_t n, uint64_t seed, int64_t epoch);

/* ---- stream.c: data files, plain or gzip (recognized by content, not name) --------------------- */
typedef struct NnrtStream NnrtStream;
NnrtStream *nnrt_stream_open(const char *path);     /* NULL after reporting */
/* Up to n bytes; fewer only at the end of the data, and 0 from the read that meets an error on
 * (reported once, with the byte offset; nnrt_stream_failed tells which). Bytes after the end of a
 * gzip stream that do not start another member are an error. */
size_t nnrt_stream_read(NnrtStream *s, void *buf, size_t n);
int nnrt_stream_failed(const NnrtStream *s);
int nnrt_stream_is_gzip(const NnrtStream *s);
uint64_t nnrt_stream_offset(const NnrtStream *s);   /* decompressed bytes delivered so far */
/* The most bytes the rest of the file can still deliver (exact for plain files, deflate's
 * largest expansion of the compressed bytes left for gzip); UINT64_MAX when unknown. */
uint64_t nnrt_stream_bound(const NnrtStream *s);
void nnrt_stream_close(NnrtStream *s);

/* ---- dataset.c, data_idx.c, data_csv.c --------------------------------------------------------- */
/* String class labels (a CSV target column of names): the distinct names in id order (sorted by
 * strcmp), with the line and column where each first appears in its file (for messages). One
 * allocation: free() releases it all. */
typedef struct NnrtLabels {
    int64_t count;
    char **names;
    int64_t *line, *col; /* NULL when not read from a file (a checkpoint's labels) */
    const char *file;    /* the file of line and col, or NULL */
} NnrtLabels;

typedef struct NnrtData {
    char *label;          /* the spec text or path, for messages */
    int64_t count;
    int64_t input_size;
    const uint8_t *x_u8;  /* IDX images, kept as bytes; converted per batch through lut */
    float *x_f32;         /* CSV features */
    float lut[256];
    int has_targets;
    int32_t *y_class;     /* class targets */
    float *y_f32;         /* float targets [count, target_size] */
    int64_t target_size;
    int standardize;      /* the spec asked for standardize=true */
    int64_t *lines;       /* predict's CSV input: the file line of each example (1-based; the
                           * header is line 1), so outputs can be matched to rows; else NULL */
    int64_t skipped;      /* CSV rows dropped by missing="skip" */
    /* text()/tokens() (data_text.c): one stream of ids, windowed when gathered: example e is
     * ids [s, s + T) with targets [s + 1, s + T + 1), s = e * seq_stride */
    const uint8_t *seq_u8;   /* text: the bytes */
    const uint16_t *seq_u16; /* tokens: the ids */
    int64_t seq_length;      /* ids this set's windows may read */
    int64_t seq_stride;
    /* csv(text=..., tokenize="words") before the vocabulary is known (data_words.c): each
     * example's words as ids into `words`, [word_span[2e], +word_span[2e+1]); x_f32 is filled by
     * nnrt_text_encode, which clears words_pending */
    struct NnrtWords *words;
    int64_t *word_span;
    int words_pending;
    int64_t words_vocab;  /* its csv(vocab=N) */
    int owns_words;       /* words and word_span (a split view shares its parent's) */
    void *own[3];         /* allocations this set owns (a split view owns none) */
    const NnrtLabels *labels; /* CSV class targets given as names: y_class ids index these (held
                               * in own[2], which only predict's `lines` use otherwise); NULL
                               * when the labels were integer ids */
} NnrtData;

typedef enum NnrtDataRole { NNRT_ROLE_TRAIN, NNRT_ROLE_VALIDATE, NNRT_ROLE_EVAL, NNRT_ROLE_PREDICT } NnrtDataRole;
/* Parses SPEC (or a bare path) and loads it. `what` names the option for messages. */
int nnrt_data_open(const NnrtModel *m, const char *spec, const char *what, NnrtDataRole role,
                   NnrtData *out);
/* The canonical text of a data spec of `group` (NNRT_GROUP_DATA or _VALIDATE) as nnc writes it
 * (csv's default target filled in), without opening any file; -1 after reporting. */
int nnrt_data_spec_format(const NnrtModel *m, const char *spec, const char *what, unsigned group,
                          char *out, size_t cap);
/* `split(f, shuffle)` as a validate spec: returns 1 and fills *out when it is one, 0 if not, -1
 * on error. */
typedef struct NnrtSplit {
    double fraction;
    int shuffle;
} NnrtSplit;
int nnrt_data_is_split(const char *spec, const char *what, NnrtSplit *out);
/* Holds out max(1, floor(f N)) examples of `train` into `val` (a view of train's tail after a
 * stable partition in place; train keeps ownership): shuffle=false the last ones in file order;
 * shuffle=true the first of a permutation seeded by N alone, stratified by class for class[N]
 * targets; text()/tokens() always the stream's tail (nnrt_sequence_split). */
int nnrt_data_split(const NnrtModel *m, NnrtData *train, const NnrtSplit *how, NnrtData *val);
/* A class (class[N] targets) that the training part has and the held-out part lacks, or -1. */
int64_t nnrt_data_missing_class(const NnrtModel *m, const NnrtData *train, const NnrtData *val);
void nnrt_data_free(NnrtData *d);
/* Copies examples idx[0..n) (or start..start+n when idx is NULL) into x [n,input_size] and y. */
void nnrt_data_gather(const NnrtData *d, const int64_t *idx, int64_t start, int64_t n, float *x,
                      void *y);
/* Per-feature mean/std (population) of the training set; std 0 becomes 1. */
int nnrt_standardize_compute(const NnrtData *d, float *mean, float *std);
/* x = (x - mean) / std in place; refuses IDX (byte) data. */
int nnrt_standardize_apply(NnrtData *d, const float *mean, const float *std);
/* Looks a data file up in ., the model's source dir and /usr/share/datasets; NULL (reported) if
 * none exists. The result is malloc'd. */
char *nnrt_resolve_path(const NnrtModel *m, const char *path, const char *what);

/* data_text.c: text(path) (tokens = 0) or tokens(path) (1) with windows of the model's input
 * length every `stride` ids; the tail split of such a set; one window into x [T] and y [T]. */
int nnrt_sequence_load(const NnrtModel *m, const char *path, int tokens, int64_t stride,
                       NnrtData *out);
int nnrt_sequence_split(NnrtData *train, double fraction, NnrtData *val);
void nnrt_sequence_gather(const NnrtData *d, int64_t e, float *x, int32_t *y);

/* images may be paired with labels (NULL for predict). */
int nnrt_idx_load(const NnrtModel *m, const char *images, const char *labels, double scale,
                  NnrtData *out);

typedef struct NnrtCsvOpts {
    const char *target;     /* column name(s), comma separated; NULL: the model's target name */
    int64_t target_index;   /* >= 0 when given as a column number; -1 otherwise */
    int header;
    int skip_missing;
    int need_target;        /* 0 for predict: target columns are optional and ignored */
    /* text classification: the column `text` becomes the int[T] input (T = the model's input
     * length), every other non-target column is ignored */
    const char *text;       /* NULL: numeric feature columns */
    int words;              /* tokenize="words" (else "bytes": id = byte + 1) */
    int64_t vocab;          /* words: csv(vocab=N) */
} NnrtCsvOpts;
int nnrt_csv_load(const NnrtModel *m, const char *path, const NnrtCsvOpts *o, NnrtData *out);
/* Re-numbers d's class ids as the ids of `known` (the training data's or a checkpoint's labels):
 * a label of d that `known` lacks is an error naming it and where it first appears (d's integer
 * ids are matched by their decimal text). known NULL: d must not have names either. `whose` says
 * where known came from, for messages ("the training data", "checkpoint 'm.st'"). */
int nnrt_labels_map(NnrtData *d, const NnrtLabels *known, const char *whose);
NnrtLabels *nnrt_labels_copy(const NnrtLabels *l);
/* The training data's names are at most the target's classes (else an error naming the first
 * one too many, where it appears). */
int nnrt_labels_fit(const NnrtData *d, const NnrtModel *m);
/* The labels as a JSON array of strings (a checkpoint's "labels" metadata), and back (NULL after
 * reporting a malformed value, naming `what`). */
char *nnrt_labels_to_json(const NnrtLabels *l);
NnrtLabels *nnrt_labels_from_json(const char *text, const char *what);

/* data_words.c: tokenize="words" — lower-cased runs of ASCII letters and digits (bytes >= 0x80
 * count as letters, so UTF-8 words stay whole). A vocabulary is its words, most frequent first,
 * joined by '\n' (the checkpoint's metadata "vocab"): word k has id k + 2 (0 padding, 1 unknown). */
typedef struct NnrtWords NnrtWords;
NnrtWords *nnrt_words_new(void);
void nnrt_words_free(NnrtWords *w);
/* Appends the words of text[0..len) to w; span = {first, count} of their ids. -1: out of memory. */
int nnrt_words_add_text(NnrtWords *w, const char *text, size_t len, int64_t span[2]);
/* The vocabulary of the `size - 2` most frequent words of d's examples (ties: the word's bytes in
 * ascending order), malloc'd; NULL after reporting. */
char *nnrt_vocab_build(const NnrtData *d, int64_t size);
/* Fills d's x_f32 with the ids of each example's first T words under `vocab`, 0-padded. */
int nnrt_text_encode(NnrtData *d, const char *vocab);
/* Words data of training (train and val, val may be NULL): builds the vocabulary from train's
 * examples (or takes *vocab, from a checkpoint being resumed), encodes both; *vocab then holds
 * the vocabulary (malloc'd). No-op for other data. */
int nnrt_text_prepare(NnrtData *train, NnrtData *val, char **vocab);

/* ---- optim.c, schedule.c ----------------------------------------------------------------------- */
typedef enum NnrtOptKind { NNRT_OPT_SGD, NNRT_OPT_ADAM, NNRT_OPT_ADAMW, NNRT_OPT_RMSPROP } NnrtOptKind;
typedef struct NnrtOptConfig {
    NnrtOptKind kind;
    double lr, momentum, weight_decay, beta1, beta2, eps, alpha;
    int nesterov;
} NnrtOptConfig;
/* State buffers cover the whole flat parameter buffer; only trainable ranges are used/saved. */
typedef struct NnrtOptState {
    float *buf[2];  /* sgd: momentum; adam: m, v; rmsprop: square_avg, momentum */
    int64_t step;   /* optimizer steps taken so far */
} NnrtOptState;
int nnrt_optim_parse(const char *spec, const char *what, NnrtOptConfig *out);
/* Canonical text of the config, e.g. "adam(lr=0.001, beta1=0.9, ...)". */
void nnrt_optim_format(const NnrtOptConfig *c, char *out, size_t cap);
const char *nnrt_optim_kind_name(NnrtOptKind k);
int nnrt_optim_buffer_count(const NnrtOptConfig *c);   /* state buffers in use: 0..2 */
const char *nnrt_optim_buffer_name(const NnrtOptConfig *c, int i); /* "momentum", "adam_m", ... */
int nnrt_optim_state_init(const NnrtOptConfig *c, int64_t param_count, NnrtOptState *st);
void nnrt_optim_state_free(NnrtOptState *st);
/* One update of every trainable tensor with learning rate lr (PyTorch's single-tensor formulas). */
void nnrt_optim_step(const NnrtOptConfig *c, NnrtOptState *st, const NnrtModel *m, float *params,
                     const float *grads, double lr);
/* The fused update (train_step_update, nnrt.h): whether the model's generated code covers this
 * optimizer (Adam, AdamW), and the NnrtUpdate of the next step (counts the step, as
 * nnrt_optim_step does). */
int nnrt_optim_fusable(const NnrtOptConfig *c, const NnrtModel *m);
void nnrt_optim_fused_args(const NnrtOptConfig *c, NnrtOptState *st, double lr, NnrtUpdate *u);
/* Global L2 norm of the trainable gradients; scales them like torch's clip_grad_norm_. */
double nnrt_clip_grads(const NnrtModel *m, float *grads, double max_norm);

typedef enum NnrtSchedKind {
    NNRT_SCHED_CONSTANT, NNRT_SCHED_STEP, NNRT_SCHED_COSINE, NNRT_SCHED_ONECYCLE
} NnrtSchedKind;
typedef struct NnrtSchedule {
    NnrtSchedKind kind;
    double every, gamma;                        /* step: in epochs (may be a fraction) */
    double warmup;                              /* cosine: in epochs (may be a fraction) */
    double max_lr, pct, div_factor, final_div_factor; /* onecycle */
} NnrtSchedule;
int nnrt_schedule_parse(const char *spec, const char *what, NnrtSchedule *out);
void nnrt_schedule_format(const NnrtSchedule *s, char *out, size_t cap);
/* Learning rate of optimizer step `step` (0-based over the whole run) with `steps` steps per
 * epoch and `epochs` epochs in all: the epoch counts fractionally, step / steps. */
double nnrt_schedule_lr(const NnrtSchedule *s, double base_lr, int64_t step, int64_t steps,
                        int64_t epochs);

/* ---- json.c: the small JSON subset safetensors headers use ------------------------------------ */
typedef enum NnrtJsonKind { NNRT_JSON_NULL, NNRT_JSON_BOOL, NNRT_JSON_NUM, NNRT_JSON_STR, NNRT_JSON_ARR, NNRT_JSON_OBJ } NnrtJsonKind;
typedef struct NnrtJson {
    NnrtJsonKind kind;
    double num;
    int is_int;            /* NUM written as an integer without fraction or exponent */
    int64_t i;             /* its value when is_int (and it fits) */
    char *str;             /* STR */
    char *key;             /* the member's key, for the members of an object */
    struct NnrtJson *kids; /* ARR elements / OBJ members */
    int nkids;
} NnrtJson;
/* Parses len bytes; on error writes a message (with byte offset) into err and returns -1. */
int nnrt_json_parse(const char *text, size_t len, NnrtJson *out, char *err, size_t errcap);
void nnrt_json_free(NnrtJson *j);
const NnrtJson *nnrt_json_get(const NnrtJson *obj, const char *key);
/* Appends `s` as a JSON string literal. */
typedef struct NnrtBuf {
    char *p;
    size_t len, cap;
    int oom;
} NnrtBuf;
void nnrt_buf_puts(NnrtBuf *b, const char *s);
void nnrt_buf_printf(NnrtBuf *b, const char *fmt, ...) NNRT_PRINTF(2, 3);
void nnrt_buf_json_str(NnrtBuf *b, const char *s);
void nnrt_buf_free(NnrtBuf *b);

/* ---- ckpt.c: safetensors files ----------------------------------------------------------------- */
typedef struct NnrtTensorOut {
    const char *name;
    int32_t rank;
    const int64_t *dims;
    const float *data;
    int64_t count;
} NnrtTensorOut;
typedef struct NnrtTensorIn {
    char *name;
    int32_t rank;
    int64_t dims[NNRT_MAX_RANK];
    int64_t count;
    const unsigned char *bytes; /* little-endian F32, inside the file buffer */
} NnrtTensorIn;
typedef struct NnrtCkpt {
    const char *path;
    unsigned char *file;
    size_t size;
    NnrtTensorIn *t;
    int nt;
    char **meta;  /* key, value, key, value, ... */
    int nmeta;
} NnrtCkpt;
/* Atomic write: FILE.tmp.<pid>, fsync, rename, fsync the directory. meta is key/value pairs. */
int nnrt_ckpt_write(const char *path, const NnrtTensorOut *t, int nt, const char *const *meta,
                    int nmeta);
int nnrt_ckpt_read(const char *path, NnrtCkpt *out);
const NnrtTensorIn *nnrt_ckpt_find(const NnrtCkpt *c, const char *name);
const char *nnrt_ckpt_meta(const NnrtCkpt *c, const char *key);
void nnrt_ckpt_copy_f32(const NnrtTensorIn *t, float *dst);
void nnrt_ckpt_free(NnrtCkpt *c);

/* ---- state.c: the model's whole training state <-> a checkpoint ------------------------------- */
typedef struct NnrtRunConfig {
    int64_t epochs, batch, threads, early_stop;
    int64_t steps;         /* bench: timed steps */
    uint64_t seed;
    double lr;             /* NAN: the optimizer spec's own lr */
    double clip;
    const char *data, *validate, *optimizer, *schedule;
    const char *save, *load, *log;
    const char *save_best; /* train --save-best: the checkpoint of the best validation loss */
    int confusion;         /* eval --confusion */
    int shuffle, quiet;
    const char *prompt;    /* generate: --prompt, --tokens, --temperature, --top-k (0: all) */
    int64_t gen_tokens, top_k;
    double temperature;
    unsigned given;        /* NNRT_GIVEN_* bits: what the command line set explicitly */
    const NnrtComm *comm;  /* this process's place among the ranks (rank 0 of 1 without MPI) */
} NnrtRunConfig;
enum {
    NNRT_GIVEN_SEED = 1u << 0, NNRT_GIVEN_BATCH = 1u << 1, NNRT_GIVEN_OPTIMIZER = 1u << 2,
    NNRT_GIVEN_LR = 1u << 3, NNRT_GIVEN_SCHEDULE = 1u << 4, NNRT_GIVEN_CLIP = 1u << 5,
    NNRT_GIVEN_EARLY_STOP = 1u << 6, NNRT_GIVEN_DATA = 1u << 7, NNRT_GIVEN_VALIDATE = 1u << 8,
};
typedef struct NnrtTrainState {
    const NnrtModel *model;
    float *params;
    NnrtOptConfig opt;
    NnrtOptState ost;
    char opt_text[512];
    char sched_text[128];
    int64_t epoch;          /* completed epochs */
    uint64_t seed;
    int64_t batch;
    double clip;
    float *std_mean, *std_std; /* standardization statistics, or NULL */
    char *vocab;            /* csv(tokenize="words"): the vocabulary (data_words.c), or NULL */
    double best_val;        /* early stopping: best validation loss so far (INFINITY: none) */
    int64_t best_epoch, wait;
    float *best_params;     /* early stopping: the parameters of best_epoch, or NULL; saved as
                             * __best.<name> while they differ from params (wait > 0) */
    NnrtLabels *labels;     /* class names of string labels (metadata "labels"), or NULL */
} NnrtTrainState;
int nnrt_state_save(const NnrtTrainState *s, const char *path);
/* Loads model tensors (required, exact shapes), standardization stats (if any), and — when
 * `resume` is set and the checkpoint holds state for the same optimizer kind — optimizer state,
 * epoch and step. Sets *resumed accordingly. */
int nnrt_state_load(NnrtTrainState *s, const NnrtCkpt *c, int resume, int *resumed);
void nnrt_state_free(NnrtTrainState *s);

/* ---- cli.c: a train-block scalar given on the command line ("--batch", "64"), checked against
 * the settings table's range (the compiler checks `batch = 64` against the same); -1 after
 * reporting "--batch: expected an integer of at least 1, got '0'". */
int nnrt_cli_setting(const char *flag, const char *text, double *out);

/* ---- train.c, eval.c, gradcheck.c, progress.c ------------------------------------------------- */
int nnrt_cmd_train(const NnrtModel *m, const NnrtRunConfig *cfg);
int nnrt_cmd_eval(const NnrtModel *m, const NnrtRunConfig *cfg);
int nnrt_cmd_predict(const NnrtModel *m, const NnrtRunConfig *cfg, const char *input);
int nnrt_cmd_gradcheck(const NnrtModel *m, uint64_t seed);
/* A synthetic batch of n examples from rng: float inputs U(-1,1), token ids below the vocabulary,
 * class targets in range (int32 y), float targets U(0,1) (double y). */
void nnrt_synthetic_batch(const NnrtModel *m, NnrtRng *rng, int64_t n, double *x, void *y);
/* generate.c: `./model generate`, bytes sampled from a model trained on text(...) data. */
int nnrt_cmd_generate(const NnrtModel *m, const NnrtRunConfig *cfg);
/* bench.c: `./model bench`, per-kernel time and GFLOP/s of train_step. */
int nnrt_cmd_bench(const NnrtModel *m, const NnrtRunConfig *cfg);
/* Evaluates `d` in batches with eval_step; sums has 1 + metric_count entries. With several ranks
 * each evaluates a contiguous share of the examples and the sums are added over the ranks. */
int nnrt_evaluate(const NnrtModel *m, const float *params, const NnrtData *d, int64_t batch,
                  void *ws, float *x, void *y, double *sums, const NnrtComm *comm);
/* The shard of a train_step call: examples [first, first + n) of a global batch of `total`,
 * batchnorm's sums going through nnrt_comm_sum_f64 on comm. */
NnrtShard nnrt_shard(const NnrtComm *comm, int64_t total, int64_t first);
/* Reduced metric i from sums over count examples (mean or root-mean). */
double nnrt_metric_value(const NnrtModel *m, int i, const double *sums, int64_t count);
size_t nnrt_workspace_bytes(const NnrtModel *m, int64_t n, size_t elem);
/* Loads a checkpoint for eval/predict: model tensors and standardization statistics. */
int nnrt_load_for_inference(const NnrtModel *m, const char *path, float *params, float **mean,
                            float **std);
/* The same from a checkpoint already read, plus its class names (NULL when it has none). */
int nnrt_load_inference_ckpt(const NnrtModel *m, const NnrtCkpt *c, float *params, float **mean,
                             float **std, NnrtLabels **labels);
/* The checkpoint's vocabulary (metadata "vocab", malloc'd into *vocab; NULL when it has none). */
int nnrt_load_vocab(const char *path, char **vocab);

typedef struct NnrtProgress {
    int enabled;       /* drawing a bar on stderr */
    double start, last_draw;
    int64_t total, epoch, epochs;
} NnrtProgress;
void nnrt_progress_begin(NnrtProgress *p, int enabled, int64_t epoch, int64_t epochs, int64_t total);
/* lr: the current learning rate, shown when finite (a schedule that moves it); NAN: not shown */
void nnrt_progress_update(NnrtProgress *p, int64_t done, double running_loss, double lr);
void nnrt_progress_end(NnrtProgress *p);
/* The width of the terminal on fd: TIOCGWINSZ, else $COLUMNS, else 80. */
int nnrt_terminal_columns(int fd);
/* Prints line and a newline; when columns > 0 and the line would reach the last column, it is
 * broken where sep separates it ("  " between fields, ", " between items; a comma stays at the
 * end of its line), continuation lines indented by `indent` spaces. */
void nnrt_print_fitted(FILE *out, const char *line, const char *sep, int columns, int indent);

/* threads.c: the pool behind nnrt_parallel_for; started once by nnrt_main with --threads. */
int nnrt_threads_start(int64_t threads);
void nnrt_threads_stop(void);

#endif /* NNRT_INTERNAL_H */
