/* dataset.c — from a data spec to examples in memory, and from examples to batches.
 *
 * A data set is whatever `--data`/`--validate`/`eval --data`/`predict INPUT` names:
 *     idx("images", "labels", scale=1)       IDX files, plain or gzip (see data_idx.c)
 *     csv("file", target="col", header=true, standardize=false, missing="error", target_column=N)
 *                                            (data_csv.c); signatures: the settings table (settings.c)
 *     text(path, context=T, stride=T)        a file's bytes, windows of T (data_text.c)
 *     tokens(path, context=T, stride=T)      llm.c's uint16 token files, the same windows
 *     split(f, shuffle=true)                 validate only: max(1, floor(f N)) examples held out
 *                                            (nnrt_data_split says which)
 *     a bare path                            "*.csv" (or .csv.gz) means csv(path), with the target
 *                                            columns of the train block's csv(target=...) if it
 *                                            has one, else the model's target name; "*.txt" (or
 *                                            .txt.gz) means text(path); predict also
 *                                            takes a bare IDX images path, scaled like the train
 *                                            block's idx(scale=...)
 * Relative paths are looked up in ., beside the .nn file, then under /usr/share/datasets.
 *
 * Images stay uint8 in memory (4x smaller than float) and are converted through a 256-entry
 * table when a batch is gathered; CSV features are stored as float. split() makes a *view*: the
 * validation set points into the tail of the training arrays, which keep ownership (a shuffled
 * split first moves the held-out examples there, in place).
 */
#include "nnrt_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

static char *join(const char *dir, const char *path) {
    size_t n = strlen(dir) + strlen(path) + 2;
    char *s = nnrt_alloc(n, 1, "a path");
    if (s) snprintf(s, n, "%s/%s", dir, path);
    return s;
}

char *nnrt_resolve_path(const NnrtModel *m, const char *path, const char *what) {
    if (path[0] == '/') {
        if (is_file(path)) return nnrt_strdup(path);
        nnrt_error("cannot open data file '%s' (%s): no such file", path, what);
    } else {
        const char *dirs[3] = {NULL, m->source_dir, "/usr/share/datasets"};
        char tried[3][1024];
        int ntried = 0;
        for (int i = 0; i < 3; i++) {
            if (i > 0 && (!dirs[i] || !dirs[i][0])) continue;
            char *cand = i == 0 ? nnrt_strdup(path) : join(dirs[i], path);
            if (!cand) return NULL;
            if (is_file(cand)) return cand;
            snprintf(tried[ntried++], sizeof tried[0], "%s%s", i == 0 ? "./" : "", cand);
            free(cand);
        }
        char list[3200] = "";
        for (int i = 0; i < ntried; i++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", tried[i]);
        }
        nnrt_error("cannot open data file '%s' (looked in %s)", path, list);
    }
    if (strstr(path, "fashion-mnist") || strstr(path, "fashion_mnist"))
        nnrt_hint("Fashion-MNIST is packaged by Debian: apt-get install dataset-fashion-mnist "
                  "(installs /usr/share/datasets/fashion-mnist/)");
    else if (strncmp(what, "--", 2) == 0)
        nnrt_hint("check the path, or pass another data set with %s SPEC", what);
    else if (strncmp(what, "train block", 11) == 0)
        nnrt_hint("check the path in the model's train block, or override it with --data / "
                  "--validate SPEC");
    else
        nnrt_hint("check the path");
    return NULL;
}

/* Does `s` look like `name(...)` rather than a file path? */
static int looks_like_call(const char *s) {
    while (isspace((unsigned char)*s)) s++;
    if (!isalpha((unsigned char)*s) && *s != '_') return 0;
    while (isalnum((unsigned char)*s) || *s == '_') s++;
    while (isspace((unsigned char)*s)) s++;
    return *s == '(';
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int nnrt_data_is_split(const char *spec, const char *what, NnrtSplit *out) {
    if (!looks_like_call(spec)) return 0;
    NnrtSpec s;
    if (nnrt_spec_parse(spec, what, &s) != 0) return -1;
    if (strcmp(s.name, "split") != 0) {
        nnrt_spec_free(&s);
        return 0;
    }
    NnrtArgVal v[NNRT_SETTING_MAX_ARGS] = {{0}};
    int rc = nnrt_spec_bind(&s, nnrt_setting_form(NNRT_GROUP_VALIDATE, "split"), 0, v);
    nnrt_spec_free(&s);
    if (rc != 0) return -1;
    out->fraction = v[0].num;
    out->shuffle = v[1].boolean;
    return 1;
}

/* An argument of the model's own training data spec (`kind(..., key=...)`), so a bare path
 * is read the way training read its data: predict scales IDX images like idx(..., scale=) did,
 * and a bare .csv uses the csv(..., target=) columns. Returns 0 when absent. */
static int default_data_arg(const NnrtModel *m, const char *kind, const char *key,
                            NnrtSpecArg *out) {
    int found = 0;
    if (m->defaults.data && looks_like_call(m->defaults.data)) {
        NnrtSpec s;
        /* nnc emits canonical specs, so this parses (a failure was reported; the default stays) */
        if (nnrt_spec_parse(m->defaults.data, "train block: data", &s) == 0) {
            for (int i = 0; strcmp(s.name, kind) == 0 && i < s.nargs; i++)
                if (s.args[i].key && strcmp(s.args[i].key, key) == 0) {
                    *out = s.args[i];
                    out->key = NULL;
                    out->str = s.args[i].str ? nnrt_strdup(s.args[i].str) : NULL;
                    found = 1;
                }
            nnrt_spec_free(&s);
        }
    }
    return found;
}

static int open_idx(const NnrtModel *m, const NnrtSpec *s, const char *what, NnrtDataRole role,
                    NnrtData *out) {
    NnrtArgVal v[NNRT_SETTING_MAX_ARGS] = {{0}};
    /* predict reads images only: its labels may be left out */
    if (nnrt_spec_bind(s, nnrt_setting_form(NNRT_GROUP_DATA, "idx"),
                       role == NNRT_ROLE_PREDICT ? NNRT_BIND_PARTIAL : 0, v) != 0)
        return -1;
    if (!v[0].set) {
        nnrt_error("%s: idx() needs the images file: idx(\"images.gz\", \"labels.gz\")", what);
        return -1;
    }
    double scale = v[2].num;
    char *images = nnrt_resolve_path(m, v[0].str, what);
    if (!images) return -1;
    char *labels = NULL;
    if (v[1].set && role != NNRT_ROLE_PREDICT) {
        labels = nnrt_resolve_path(m, v[1].str, what);
        if (!labels) {
            free(images);
            return -1;
        }
    }
    int rc = nnrt_idx_load(m, images, labels, scale, out);
    free(images);
    free(labels);
    return rc;
}

/* The model's declarations as the settings table checks them (class[t, V]: dims {t, V}). */
static NnrtSettingModel setting_model(const NnrtModel *m, int64_t target_dims[NNRT_MAX_RANK + 1]) {
    int class_target = m->target_kind == NNRT_TARGET_CLASS;
    int rank = m->target_rank < 0 || m->target_rank > NNRT_MAX_RANK ? 0 : m->target_rank;
    for (int i = 0; i < rank; i++) target_dims[i] = m->target_dims[i];
    if (class_target) target_dims[rank++] = m->target_classes;
    NnrtSettingModel sm = {m->input_name ? m->input_name : "x", m->input_kind == NNRT_INPUT_INT,
                           m->input_rank, m->input_dims, m->target_name ? m->target_name : "y",
                           class_target, rank, target_dims, m->input_vocab};
    return sm;
}

/* One of the settings table's checks of bound arguments against the model's shapes, the ones
 * the compiler makes of its train block: again here because --data may name any spec. */
typedef const char *(*ModelCheck)(const NnrtSettingForm *f, const NnrtSettingModel *m, NnrtArgVal *v,
                                  int *arg, char *msg, size_t cap);

static int check_with_model(const NnrtModel *m, const NnrtSpec *s, const NnrtSettingForm *f,
                            NnrtArgVal *v, ModelCheck check) {
    int64_t dims[NNRT_MAX_RANK + 1];
    NnrtSettingModel sm = setting_model(m, dims);
    char msg[512];
    int arg;
    if (check(f, &sm, v, &arg, msg, sizeof msg)) {
        nnrt_error("%s: %s", s->what, msg);
        return -1;
    }
    return 0;
}

/* text()/tokens(): binds the arguments and checks the model's shapes (the compiler's check). */
static int bind_sequence(const NnrtModel *m, const NnrtSpec *s, const NnrtSettingForm *f,
                         NnrtArgVal *v) {
    if (nnrt_spec_bind(s, f, 0, v) != 0) return -1;
    return check_with_model(m, s, f, v, nnrt_setting_sequence_bind);
}

static int open_sequence(const NnrtModel *m, const NnrtSpec *s, const char *what, NnrtData *out) {
    const NnrtSettingForm *f = nnrt_setting_form(NNRT_GROUP_DATA, s->name);
    NnrtArgVal v[NNRT_SETTING_MAX_ARGS] = {{0}};
    if (bind_sequence(m, s, f, v) != 0) return -1;
    char *path = nnrt_resolve_path(m, v[0].str, what);
    if (!path) return -1;
    int rc = nnrt_sequence_load(m, path, strcmp(f->name, "tokens") == 0, v[2].i, out);
    free(path);
    return rc;
}

/* csv(text=...): the model's checks of the compiler (input int[T], length, the embedding's
 * vocabulary), again here because --data may name any spec; fills in length and vocab. */
static int bind_csv_text(const NnrtModel *m, const NnrtSpec *s, const NnrtSettingForm *f,
                         NnrtArgVal *v) {
    return check_with_model(m, s, f, v, nnrt_setting_csv_text_bind);
}

static int open_csv(const NnrtModel *m, const NnrtSpec *s, const char *what, NnrtDataRole role,
                    NnrtData *out) {
    NnrtArgVal v[NNRT_SETTING_MAX_ARGS] = {{0}};
    const NnrtSettingForm *f = nnrt_setting_form(NNRT_GROUP_DATA, "csv");
    if (nnrt_spec_bind(s, f, 0, v) != 0 || bind_csv_text(m, s, f, v) != 0) return -1;
    NnrtCsvOpts o = {0};
    if (v[6].set) {
        o.text = v[6].str;
        o.words = strcmp(v[8].str, "words") == 0;
        o.vocab = v[9].set ? v[9].i : 0;
    }
    o.target = v[1].str[0] ? v[1].str : NULL; /* "" (nnc writes it for header=false): the default */
    o.target_index = v[5].set ? v[5].i : -1;
    o.header = v[2].boolean;
    o.need_target = role != NNRT_ROLE_PREDICT;
    o.skip_missing = strcmp(v[4].str, "skip") == 0;
    char *path = nnrt_resolve_path(m, v[0].str, what);
    if (!path) return -1;
    int rc = nnrt_csv_load(m, path, &o, out);
    free(path);
    if (rc == 0) out->standardize = v[3].boolean;
    return rc;
}

int nnrt_data_spec_format(const NnrtModel *m, const char *spec, const char *what, unsigned group,
                          char *out, size_t cap) {
    NnrtSpec s;
    if (nnrt_spec_parse(spec, what, &s) != 0) return -1;
    NnrtArgVal v[NNRT_SPEC_MAX_ARGS];
    const NnrtSettingForm *f = nnrt_spec_form(&s, group, "data set kind");
    int rc = f && (nnrt_setting_is_sequence(f) ? bind_sequence(m, &s, f, v)
                                               : nnrt_spec_bind(&s, f, 0, v)) == 0 ? 0 : -1;
    if (rc == 0 && bind_csv_text(m, &s, f, v) != 0) rc = -1;
    if (rc == 0 && strcmp(f->name, "csv") == 0 && !v[1].set && !v[5].set && v[2].boolean)
        v[1].str = m->target_name ? m->target_name : ""; /* what open_csv reads by default */
    if (rc == 0) nnrt_setting_format_call(f, v, out, cap);
    nnrt_spec_free(&s);
    return rc;
}

int nnrt_data_open(const NnrtModel *m, const char *spec, const char *what, NnrtDataRole role,
                   NnrtData *out) {
    memset(out, 0, sizeof *out);
    int rc;
    if (!looks_like_call(spec)) {
        /* a bare path: the format comes from the extension */
        NnrtSpecArg arg = {0};
        if (ends_with(spec, ".csv") || ends_with(spec, ".csv.gz") || ends_with(spec, ".CSV")) {
            int has = default_data_arg(m, "csv", "target", &arg) && arg.kind == NNRT_VAL_STR &&
                      arg.str && arg.str[0];
            NnrtCsvOpts o = {.target = has ? arg.str : NULL, .target_index = -1, .header = 1,
                             .need_target = role != NNRT_ROLE_PREDICT};
            /* a text model's file has its text column too (nnc writes tokenize and vocab out) */
            NnrtSpecArg text = {0}, tokenize = {0}, vocab = {0};
            if (default_data_arg(m, "csv", "text", &text) && text.kind == NNRT_VAL_STR && text.str) {
                o.text = text.str;
                o.words = default_data_arg(m, "csv", "tokenize", &tokenize) && tokenize.str &&
                          strcmp(tokenize.str, "words") == 0;
                if (default_data_arg(m, "csv", "vocab", &vocab)) o.vocab = (int64_t)vocab.num;
            }
            char *path = nnrt_resolve_path(m, spec, what);
            rc = path ? nnrt_csv_load(m, path, &o, out) : -1;
            free(path);
            free(arg.str);
            free(text.str);
            free(tokenize.str);
            free(vocab.str);
        } else if (ends_with(spec, ".txt") || ends_with(spec, ".txt.gz")) {
            /* a text file: byte-level language modelling, text(path) with its defaults */
            NnrtSpec s = {.text = spec, .what = what, .name = nnrt_strdup("text"), .nargs = 1};
            s.args[0] = (NnrtSpecArg){.kind = NNRT_VAL_STR, .str = nnrt_strdup(spec)};
            rc = s.name && s.args[0].str ? open_sequence(m, &s, what, out) : -1;
            nnrt_spec_free(&s);
        } else if (role == NNRT_ROLE_PREDICT) {
            int has = default_data_arg(m, "idx", "scale", &arg) && arg.kind == NNRT_VAL_NUM;
            char *path = nnrt_resolve_path(m, spec, what);
            rc = path ? nnrt_idx_load(m, path, NULL, has ? arg.num : 1.0, out) : -1;
            free(path);
            free(arg.str);
        } else {
            nnrt_error("%s: cannot tell the format of '%s' from its name; a bare path must end "
                       "in .csv or .txt", what, spec);
            nnrt_hint("for IDX files name both files: %s 'idx(\"images-idx3-ubyte.gz\", "
                      "\"labels-idx1-ubyte.gz\", scale=1/255)'", what);
            return -1;
        }
    } else {
        NnrtSpec s;
        if (nnrt_spec_parse(spec, what, &s) != 0) return -1;
        if (strcmp(s.name, "idx") == 0) rc = open_idx(m, &s, what, role, out);
        else if (strcmp(s.name, "csv") == 0) rc = open_csv(m, &s, what, role, out);
        else if (strcmp(s.name, "text") == 0 || strcmp(s.name, "tokens") == 0)
            rc = open_sequence(m, &s, what, out);
        else if (strcmp(s.name, "split") == 0) {
            nnrt_error("%s: split() holds out part of the training data, so it is only valid "
                       "for --validate", what);
            rc = -1;
        } else {
            (void)nnrt_spec_form(&s, NNRT_GROUP_VALIDATE, "data set kind"); /* reports */
            rc = -1;
        }
        nnrt_spec_free(&s);
    }
    if (rc != 0) {
        nnrt_data_free(out);
        return -1;
    }
    out->label = nnrt_strdup(spec);
    if (!out->label) {
        nnrt_data_free(out);
        return -1;
    }
    return 0;
}

/* Per-class held-out counts for `total` examples: largest remainder (Hamilton) over f * n_c, so
 * they sum to total exactly; a tie goes to the lower class id. */
static void stratum_counts(const int64_t *per_class, int64_t classes, double fraction, int64_t total,
                           int64_t *take) {
    int64_t given = 0;
    for (int64_t c = 0; c < classes; c++) {
        take[c] = (int64_t)floor(fraction * (double)per_class[c]);
        given += take[c];
    }
    while (given < total) { /* at most one more per class: the remainders are below 1 */
        int64_t best = -1;
        double best_rest = -1;
        for (int64_t c = 0; c < classes; c++) {
            double rest = fraction * (double)per_class[c] - (double)take[c];
            if (take[c] < per_class[c] && rest > best_rest) best = c, best_rest = rest;
        }
        if (best < 0) break;
        take[best]++, given++;
    }
}

/* held[e] = 1 for the examples split() holds out. shuffle: the first `total` examples of a
 * permutation seeded by n alone (the same for every design and training seed), per class for
 * class[N] targets (stratified); otherwise the last `total` examples. */
static int choose_held_out(const NnrtData *d, int64_t classes, int shuffle, double fraction,
                           int64_t total, uint8_t *held) {
    int64_t n = d->count;
    if (!shuffle) {
        for (int64_t e = n - total; e < n; e++) held[e] = 1;
        return 0;
    }
    int64_t *order = nnrt_alloc((size_t)n, sizeof *order, "the split");
    if (!order) return -1;
    for (int64_t i = 0; i < n; i++) order[i] = i;
    NnrtRng rng;
    nnrt_rng_seed(&rng, (uint64_t)n, NNRT_STREAM_SPLIT, 0);
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates, as nnrt_shuffle */
        int64_t j = (int64_t)nnrt_rng_below(&rng, (uint64_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int stratify = d->y_class && d->target_size == 1 && classes > 0;
    int64_t *per_class = stratify ? nnrt_zalloc((size_t)classes * 2, sizeof(int64_t), "the split") : NULL;
    if (stratify && !per_class) {
        free(order);
        return -1;
    }
    if (stratify) {
        int64_t *take = per_class + classes;
        for (int64_t e = 0; e < n; e++) per_class[d->y_class[e]]++;
        stratum_counts(per_class, classes, fraction, total, take);
        for (int64_t i = 0; i < n; i++) {
            int64_t e = order[i], c = d->y_class[e];
            if (take[c] > 0) held[e] = 1, take[c]--;
        }
    } else {
        for (int64_t i = 0; i < total; i++) held[order[i]] = 1;
    }
    free(per_class);
    free(order);
    return 0;
}

/* Reorders rows of `size` bytes so that row i becomes old row from[i] (cycle by cycle: one row
 * of scratch, no second copy of the data). */
static void permute_rows(uint8_t *base, size_t size, const int64_t *from, int64_t n, uint8_t *done,
                         uint8_t *scratch) {
    memset(done, 0, (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        if (done[i] || from[i] == i) continue;
        memcpy(scratch, base + (size_t)i * size, size);
        int64_t j = i;
        for (;;) {
            done[j] = 1;
            int64_t k = from[j];
            if (k == i) {
                memcpy(base + (size_t)j * size, scratch, size);
                break;
            }
            memcpy(base + (size_t)j * size, base + (size_t)k * size, size);
            j = k;
        }
    }
}

int nnrt_data_split(const NnrtModel *m, NnrtData *train, const NnrtSplit *how, NnrtData *val) {
    if (train->seq_u8 || train->seq_u16) return nnrt_sequence_split(train, how->fraction, val);
    int64_t n = train->count;
    int64_t nval = (int64_t)floor(how->fraction * (double)n);
    if (nval < 1) nval = 1;
    if (n < 2 || nval >= n) {
        nnrt_error("validate: split(%g) of %lld examples leaves no training or no validation data",
                   how->fraction, (long long)n);
        return -1;
    }
    int64_t ntrain = n - nval, isz = train->input_size, tsz = train->target_size;
    int64_t classes = m->target_kind == NNRT_TARGET_CLASS ? m->target_classes : 0;
    /* a stable partition in place: training examples first, then the held-out ones, each in file
     * order; the validation set is then a view of the tail, as for shuffle=false */
    uint8_t *held = nnrt_zalloc((size_t)n, 1, "the split");
    int64_t *from = held ? nnrt_alloc((size_t)n, sizeof *from, "the split") : NULL;
    size_t row = (size_t)isz * (train->x_u8 ? 1 : sizeof(float));
    if ((size_t)tsz * 4 > row) row = (size_t)tsz * 4;
    if (row < 2 * sizeof(int64_t)) row = 2 * sizeof(int64_t); /* word_span's rows */
    uint8_t *scratch = from ? nnrt_alloc(row, 1, "the split") : NULL;
    int rc = scratch ? choose_held_out(train, classes, how->shuffle, how->fraction, nval, held) : -1;
    if (rc == 0 && how->shuffle) {
        int64_t a = 0, b = ntrain;
        for (int64_t e = 0; e < n; e++) from[held[e] ? b++ : a++] = e;
        if (train->x_u8) permute_rows((uint8_t *)train->x_u8, (size_t)isz, from, n, held, scratch);
        if (train->x_f32) permute_rows((uint8_t *)train->x_f32, (size_t)isz * 4, from, n, held, scratch);
        if (train->y_class) permute_rows((uint8_t *)train->y_class, (size_t)tsz * 4, from, n, held, scratch);
        if (train->y_f32) permute_rows((uint8_t *)train->y_f32, (size_t)tsz * 4, from, n, held, scratch);
        if (train->word_span)
            permute_rows((uint8_t *)train->word_span, 2 * sizeof(int64_t), from, n, held, scratch);
    }
    free(held);
    free(from);
    free(scratch);
    if (rc != 0) return -1;
    *val = *train;
    memset(val->own, 0, sizeof val->own);
    val->owns_words = 0;
    if (train->word_span) val->word_span = train->word_span + 2 * ntrain;
    val->label = NULL;
    val->count = nval;
    if (train->x_u8) val->x_u8 = train->x_u8 + ntrain * isz;
    if (train->x_f32) val->x_f32 = train->x_f32 + ntrain * isz;
    if (train->y_class) val->y_class = train->y_class + ntrain * tsz;
    if (train->y_f32) val->y_f32 = train->y_f32 + ntrain * tsz;
    train->count = ntrain;
    return 0;
}

int64_t nnrt_data_missing_class(const NnrtModel *m, const NnrtData *train, const NnrtData *val) {
    if (m->target_kind != NNRT_TARGET_CLASS || train->target_size != 1 || !train->y_class ||
        !val->y_class || m->target_classes < 1)
        return -1;
    uint8_t *seen = nnrt_zalloc((size_t)m->target_classes, 1, "the class check");
    if (!seen) return -1;
    for (int64_t e = 0; e < val->count; e++) seen[val->y_class[e]] |= 2;
    for (int64_t e = 0; e < train->count; e++) seen[train->y_class[e]] |= 1;
    int64_t missing = -1;
    for (int64_t c = 0; c < m->target_classes && missing < 0; c++)
        if (seen[c] == 1) missing = c;
    free(seen);
    return missing;
}

void nnrt_data_free(NnrtData *d) {
    for (int i = 0; i < 3; i++) free(d->own[i]);
    if (d->owns_words) {
        nnrt_words_free(d->words);
        free(d->word_span);
    }
    free(d->label);
    memset(d, 0, sizeof *d);
}

typedef struct GatherJob {
    const NnrtData *d;
    const int64_t *idx;
    int64_t start;
    float *x;
    void *y;
} GatherJob;

/* Examples [begin, end) of the batch; each writes only its own rows, so the split is free. */
static void gather_examples(void *ctx, int64_t begin, int64_t end) {
    const GatherJob *j = ctx;
    const NnrtData *d = j->d;
    int64_t isz = d->input_size, tsz = d->target_size;
    for (int64_t k = begin; k < end; k++) {
        int64_t e = j->idx ? j->idx[k] : j->start + k;
        float *dst = j->x + k * isz;
        if (d->seq_u8 || d->seq_u16) { /* a window of the stream: inputs and next ids */
            nnrt_sequence_gather(d, e, dst, j->y ? (int32_t *)j->y + k * tsz : NULL);
            continue;
        }
        if (d->x_u8) {
            const uint8_t *src = d->x_u8 + e * isz;
            for (int64_t i = 0; i < isz; i++) dst[i] = d->lut[src[i]];
        } else {
            memcpy(dst, d->x_f32 + e * isz, (size_t)isz * sizeof(float));
        }
        if (!j->y) continue;
        if (d->y_class) memcpy((int32_t *)j->y + k * tsz, d->y_class + e * tsz, (size_t)tsz * sizeof(int32_t));
        else if (d->y_f32)
            memcpy((float *)j->y + k * tsz, d->y_f32 + e * tsz, (size_t)tsz * sizeof(float));
    }
}

void nnrt_data_gather(const NnrtData *d, const int64_t *idx, int64_t start, int64_t n, float *x,
                      void *y) {
    GatherJob job = {d, idx, start, x, y};
    nnrt_parallel_for(n, gather_examples, &job);
}

int nnrt_standardize_compute(const NnrtData *d, float *mean, float *std) {
    if (!d->x_f32) {
        nnrt_error("%s: standardize=true needs csv() data", d->label ? d->label : "data");
        return -1;
    }
    int64_t isz = d->input_size, n = d->count;
    double *acc = nnrt_zalloc((size_t)isz, sizeof(double), "standardization statistics");
    if (!acc) return -1;
    /* two passes in a fixed order: exact enough and deterministic */
    for (int64_t e = 0; e < n; e++)
        for (int64_t j = 0; j < isz; j++) acc[j] += d->x_f32[e * isz + j];
    for (int64_t j = 0; j < isz; j++) {
        mean[j] = (float)(acc[j] / (double)n);
        acc[j] = 0;
    }
    for (int64_t e = 0; e < n; e++)
        for (int64_t j = 0; j < isz; j++) {
            double t = (double)d->x_f32[e * isz + j] - (double)mean[j];
            acc[j] += t * t;
        }
    for (int64_t j = 0; j < isz; j++) {
        double s = sqrt(acc[j] / (double)n);
        /* a constant feature would divide by zero; leave it centred but unscaled */
        std[j] = s > 1e-12 ? (float)s : 1.0f;
    }
    free(acc);
    return 0;
}

int nnrt_standardize_apply(NnrtData *d, const float *mean, const float *std) {
    if (!d->x_f32) {
        nnrt_error("%s: the model was trained on standardized csv() features, but this data set "
                   "is not csv()", d->label ? d->label : "data");
        return -1;
    }
    int64_t isz = d->input_size;
    for (int64_t e = 0; e < d->count; e++)
        for (int64_t j = 0; j < isz; j++) {
            float *v = &d->x_f32[e * isz + j];
            *v = (*v - mean[j]) / std[j];
        }
    return 0;
}
