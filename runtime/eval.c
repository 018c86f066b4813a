/* eval.c — the `eval` and `predict` commands: inference with the weights of a checkpoint.
 *
 * eval    --load FILE [--data SPEC] [--batch B] [--confusion]
 *         Loss and metrics over a data set; the default is the train block's `validate` (for
 *         `split(f)`, the held-out part of `data`, exactly as training saw it), else `data`.
 *         --confusion adds the confusion matrix and per-class precision, recall and F1 (class
 *         targets; label names when the checkpoint has them).
 * predict --load FILE INPUT [--batch B]
 *         INPUT: a .csv, an IDX images file (scaled like the train block's idx() data), or an
 *         idx(...)/csv(...) spec. A bare .csv path (here and for eval --data) is read with the
 *         train block's csv() options (header, missing, target, standardize); target columns are
 *         ignored. Prints CSV on stdout: `p0,...,p{C-1},class` for class probabilities, `y0,...`
 *         otherwise, numbers as %.9g (enough to read back the same float32); when rows of the
 *         input were skipped (missing="skip"), a last column `line` gives each output's line in
 *         the input file.
 * Standardization statistics stored in the checkpoint are applied to the data in both commands.
 * Under mpirun (libnnrt_mpi.a) eval splits the examples over the ranks and rank 0 prints the
 * result; predict runs on rank 0 alone (nnrt_main).
 */
#include "nnrt_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_METRICS 64

typedef struct Infer {
    float *params, *mean, *std, *x, *out;
    void *y, *ws;
    NnrtData data, held_out;
    NnrtLabels *labels; /* the checkpoint's class names, or NULL */
} Infer;

static void infer_free(Infer *s) {
    free(s->params);
    free(s->mean);
    free(s->std);
    free(s->x);
    free(s->out);
    free(s->y);
    free(s->ws);
    free(s->labels);
    nnrt_data_free(&s->held_out);
    nnrt_data_free(&s->data);
}

static int load_weights(const NnrtModel *m, const NnrtRunConfig *cfg, const char *cmd, Infer *s) {
    if (!cfg->load) {
        nnrt_error("%s needs the weights: --load FILE (a checkpoint written by train --save)", cmd);
        return -1;
    }
    s->params = nnrt_alloc((size_t)m->param_count, sizeof(float), "the parameters");
    if (!s->params) return -1;
    NnrtCkpt c;
    if (nnrt_ckpt_read(cfg->load, &c) != 0) return -1;
    int rc = nnrt_load_inference_ckpt(m, &c, s->params, &s->mean, &s->std, &s->labels);
    nnrt_ckpt_free(&c);
    return rc;
}

/* The data's class ids become the checkpoint's: string labels by name (an unseen one is an
 * error), integer ids as they are unless the checkpoint names its classes. */
static int map_labels(const NnrtRunConfig *cfg, Infer *s) {
    if (!s->labels && !s->data.labels) return 0;
    char whose[400];
    snprintf(whose, sizeof whose, "checkpoint '%s'", cfg->load);
    return nnrt_labels_map(&s->data, s->labels, whose);
}

/* csv(tokenize="words") data: encoded with the checkpoint's vocabulary (before a split, so
 * both parts have it). */
static int encode_words(const NnrtRunConfig *cfg, NnrtData *d) {
    if (!d->words_pending) return 0;
    char *vocab;
    if (nnrt_load_vocab(cfg->load, &vocab) != 0) return -1;
    if (!vocab) {
        nnrt_error("%s: the data is csv(..., tokenize=\"words\"), but checkpoint '%s' holds no "
                   "vocabulary (it was not trained on such data)", d->label ? d->label : "data",
                   cfg->load);
        return -1;
    }
    int rc = nnrt_text_encode(d, vocab);
    free(vocab);
    return rc;
}

/* Applies the checkpoint's standardization, or the data's own statistics when it asks for them
 * and the checkpoint has none. */
static int standardize(Infer *s) {
    if (s->mean) return nnrt_standardize_apply(&s->data, s->mean, s->std);
    if (!s->data.standardize) return 0;
    nnrt_warning("the checkpoint holds no standardization statistics; standardizing with the "
                 "statistics of this data set");
    int64_t n = s->data.input_size;
    s->mean = nnrt_alloc((size_t)n, sizeof(float), "standardization");
    s->std = nnrt_alloc((size_t)n, sizeof(float), "standardization");
    if (!s->mean || !s->std) return -1;
    if (nnrt_standardize_compute(&s->data, s->mean, s->std) != 0) return -1;
    return nnrt_standardize_apply(&s->data, s->mean, s->std);
}

/* A path ending in .csv, .CSV or .csv.gz, not a `name(...)` spec (dataset.c's rule). */
static int is_bare_csv_path(const char *s) {
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    if (isalpha((unsigned char)*p) || *p == '_') {
        while (isalnum((unsigned char)*p) || *p == '_') p++;
        while (isspace((unsigned char)*p)) p++;
        if (*p == '(') return 0;
    }
    size_t n = strlen(s);
    return (n >= 4 && (!strcmp(s + n - 4, ".csv") || !strcmp(s + n - 4, ".CSV"))) ||
           (n >= 7 && !strcmp(s + n - 7, ".csv.gz"));
}

static void buf_spec_string(NnrtBuf *b, const char *s) {
    nnrt_buf_puts(b, "\"");
    for (; *s; s++) nnrt_buf_printf(b, "%s%c", *s == '"' || *s == '\\' ? "\\" : "", *s);
    nnrt_buf_puts(b, "\"");
}

/* Opens a data set for eval --data or predict. A bare CSV path is read with the options of the
 * train block's csv(...) data (target or target_column, header, missing, standardize), as if
 * the path had been put into that spec, so a file like the training data is read like it. */
static int open_like_training(const NnrtModel *m, const char *spec, const char *what,
                              NnrtDataRole role, NnrtData *out) {
    const char *train = m->defaults.data;
    NnrtSpec ts;
    if (!is_bare_csv_path(spec) || !train || is_bare_csv_path(train) || !strchr(train, '(') ||
        nnrt_spec_parse(train, "train block: data", &ts) != 0)
        return nnrt_data_open(m, spec, what, role, out);
    NnrtBuf b = {0};
    if (strcmp(ts.name, "csv") == 0) {
        nnrt_buf_puts(&b, "csv(");
        buf_spec_string(&b, spec);
        for (int i = 0; i < ts.nargs; i++) {
            const NnrtSpecArg *a = &ts.args[i];
            if (!a->key || !strcmp(a->key, "path")) continue; /* the training file itself */
            nnrt_buf_printf(&b, ", %s=", a->key);
            if (a->kind == NNRT_VAL_STR) buf_spec_string(&b, a->str);
            else if (a->kind == NNRT_VAL_BOOL) nnrt_buf_puts(&b, a->boolean ? "true" : "false");
            else nnrt_buf_printf(&b, "%.17g", a->num);
        }
        nnrt_buf_puts(&b, ")");
    }
    nnrt_spec_free(&ts);
    if (b.oom) {
        nnrt_buf_free(&b);
        nnrt_error("out of memory: cannot read '%s'", spec);
        return -1;
    }
    int rc = nnrt_data_open(m, b.p ? b.p : spec, what, role, out);
    if (rc == 0 && b.p) { /* messages name the file as given */
        free(out->label);
        if (!(out->label = nnrt_strdup(spec))) rc = -1;
    }
    nnrt_buf_free(&b);
    if (rc != 0) nnrt_data_free(out);
    return rc;
}

static int alloc_batch(const NnrtModel *m, int64_t batch, int with_out, Infer *s) {
    int64_t tsz = m->target_size; /* class targets: one id per example or per position */
    s->x = nnrt_alloc((size_t)(batch * m->input_size), sizeof(float), "the input batch");
    s->y = nnrt_alloc((size_t)(batch * tsz), 4, "the target batch");
    s->ws = nnrt_alloc_aligned(nnrt_workspace_bytes(m, batch, sizeof(float)), "the workspace");
    if (with_out) s->out = nnrt_alloc((size_t)(batch * m->output_size), sizeof(float), "the outputs");
    return s->x && s->y && s->ws && (!with_out || s->out) ? 0 : -1;
}

/* ---------------------------------------------------------------- eval --confusion */

#define CONFUSION_MAX_CLASSES 1024 /* a matrix wider than this is no table to read */

/* Class c's name: the checkpoint's label, else its id. */
static const char *class_name(const NnrtLabels *l, int64_t c, char buf[24]) {
    if (l && c < l->count) return l->names[c];
    snprintf(buf, 24, "%lld", (long long)c);
    return buf;
}

/* Counts arg-max predictions against the targets over d (every position of class[t, V]
 * targets), then prints the matrix and per-class precision, recall and F1. A class never
 * predicted has precision 0, one never present recall 0 (scikit-learn's zero_division=0). */
static int print_confusion(const NnrtModel *m, Infer *s, const NnrtData *d, int64_t batch) {
    const int64_t V = m->target_classes, P = m->target_size; /* positions per example */
    int64_t *count = nnrt_zalloc((size_t)(V * V), sizeof *count, "the confusion matrix");
    if (!count) return -1;
    for (int64_t start = 0; start < d->count; start += batch) {
        int64_t nb = d->count - start < batch ? d->count - start : batch;
        nnrt_data_gather(d, NULL, start, nb, s->x, s->y);
        m->infer(s->params, s->x, s->ws, nb, s->out);
        const int32_t *y = s->y;
        for (int64_t e = 0; e < nb * P; e++) {
            const float *o = s->out + e * V;
            int64_t best = 0;
            for (int64_t j = 1; j < V; j++)
                if (o[j] > o[best]) best = j; /* ties: the lowest id, as predict's class */
            count[(int64_t)y[e] * V + best]++;
        }
    }
    /* widths: names, and the largest count */
    char buf[24];
    int name_w = 5, num_w = 1; /* "class" */
    int64_t total = 0, right = 0, largest = 0;
    for (int64_t c = 0; c < V; c++) {
        int n = (int)strlen(class_name(s->labels, c, buf));
        if (n > name_w) name_w = n;
        right += count[c * V + c];
        for (int64_t j = 0; j < V; j++) {
            total += count[c * V + j];
            if (count[c * V + j] > largest) largest = count[c * V + j];
        }
    }
    while (largest >= 10) num_w++, largest /= 10;
    if (name_w > 40) name_w = 40;
    if (name_w < 12) name_w = 12; /* "weighted avg" */
    printf("\nconfusion matrix (rows: true class, columns: predicted class; %lld %s)\n",
           (long long)total, P > 1 ? "positions" : "examples");
    printf("%-*s", name_w, "");
    for (int64_t j = 0; j < V; j++) {
        const char *n = class_name(s->labels, j, buf);
        int w = (int)strlen(n) > num_w ? (int)strlen(n) : num_w;
        printf("  %*s", w, n);
    }
    printf("\n");
    for (int64_t c = 0; c < V; c++) {
        printf("%-*s", name_w, class_name(s->labels, c, buf));
        for (int64_t j = 0; j < V; j++) {
            int w = (int)strlen(class_name(s->labels, j, buf));
            printf("  %*lld", w > num_w ? w : num_w, (long long)count[c * V + j]);
        }
        printf("\n");
    }
    printf("\n%-*s  precision  recall     f1         support\n", name_w, "class");
    double macro[3] = {0}, weighted[3] = {0};
    for (int64_t c = 0; c < V; c++) {
        int64_t tp = count[c * V + c], predicted = 0, actual = 0;
        for (int64_t j = 0; j < V; j++) predicted += count[j * V + c], actual += count[c * V + j];
        double p = predicted ? (double)tp / (double)predicted : 0;
        double r = actual ? (double)tp / (double)actual : 0;
        double f = p + r > 0 ? 2 * p * r / (p + r) : 0;
        printf("%-*s  %-9.4f  %-9.4f  %-9.4f  %lld\n", name_w, class_name(s->labels, c, buf), p, r,
               f, (long long)actual);
        const double v[3] = {p, r, f};
        for (int k = 0; k < 3; k++) {
            macro[k] += v[k] / (double)V;
            weighted[k] += total ? v[k] * (double)actual / (double)total : 0;
        }
    }
    printf("%-*s  %-9.4f  %-9.4f  %-9.4f  %lld\n", name_w, "macro avg", macro[0], macro[1], macro[2],
           (long long)total);
    printf("%-*s  %-9.4f  %-9.4f  %-9.4f  %lld\n", name_w, "weighted avg", weighted[0], weighted[1],
           weighted[2], (long long)total);
    printf("accuracy %.4f (%lld of %lld)\n", total ? (double)right / (double)total : 0,
           (long long)right, (long long)total);
    free(count);
    return 0;
}

/* --confusion needs class targets and class probabilities out of infer. */
static int confusion_applies(const NnrtModel *m) {
    if (m->target_kind != NNRT_TARGET_CLASS) {
        nnrt_error("eval --confusion counts predicted against true classes, but target '%s' of "
                   "model '%s' is real-valued", m->target_name ? m->target_name : "y",
                   m->name ? m->name : "?");
        return -1;
    }
    if (!m->infer || m->output_kind != NNRT_OUTPUT_PROBABILITIES ||
        m->output_size != m->target_classes * m->target_size) {
        nnrt_error("eval --confusion needs the model's class probabilities (a cross_entropy "
                   "loss); model '%s' does not output them", m->name ? m->name : "?");
        return -1;
    }
    if (m->target_classes > CONFUSION_MAX_CLASSES) {
        nnrt_error("eval --confusion prints a %lld x %lld matrix; at most %d classes make a "
                   "table", (long long)m->target_classes, (long long)m->target_classes,
                   CONFUSION_MAX_CLASSES);
        return -1;
    }
    return 0;
}

int nnrt_cmd_eval(const NnrtModel *m, const NnrtRunConfig *cfg) {
    Infer s;
    memset(&s, 0, sizeof s);
    int rc = 1;
    if (cfg->confusion && confusion_applies(m) != 0) goto done;
    if (load_weights(m, cfg, "eval", &s) != 0) goto done;
    const NnrtData *d = &s.data;
    if (cfg->given & NNRT_GIVEN_DATA) {
        if (open_like_training(m, cfg->data, "--data", NNRT_ROLE_EVAL, &s.data) != 0 ||
            map_labels(cfg, &s) != 0)
            goto done;
        if (encode_words(cfg, &s.data) != 0) goto done;
    } else {
        NnrtSplit f = {0, 1};
        int split = m->defaults.validate
                        ? nnrt_data_is_split(m->defaults.validate, "train block: validate", &f)
                        : 0;
        if (split < 0) goto done;
        const char *spec = m->defaults.validate && !split ? m->defaults.validate : m->defaults.data;
        if (!spec) {
            nnrt_error("eval: no data set: the model's train block has neither `validate` nor "
                       "`data`; pass --data SPEC");
            goto done;
        }
        const char *what = spec == m->defaults.data ? "train block: data" : "train block: validate";
        if (nnrt_data_open(m, spec, what, NNRT_ROLE_EVAL, &s.data) != 0 || map_labels(cfg, &s) != 0)
            goto done;
        if (encode_words(cfg, &s.data) != 0) goto done;
        if (split) {
            if (nnrt_data_split(m, &s.data, &f, &s.held_out) != 0) goto done;
            d = &s.held_out;
        }
    }
    if (standardize(&s) != 0) goto done;
    if (d == &s.held_out && s.mean && nnrt_standardize_apply(&s.held_out, s.mean, s.std) != 0)
        goto done;
    int64_t batch = cfg->batch < d->count ? cfg->batch : d->count;
    if (!d->has_targets) {
        nnrt_error("eval: the data set has no targets");
        goto done;
    }
    if (alloc_batch(m, batch, cfg->confusion, &s) != 0) goto done;
    double sums[1 + MAX_METRICS];
    nnrt_evaluate(m, s.params, d, batch, s.ws, s.x, s.y, sums, cfg->comm);
    if (cfg->comm->rank == 0) {
        printf("examples %lld  loss %.6f", (long long)d->count, sums[0] / (double)d->count);
        for (int i = 0; i < m->metric_count; i++)
            printf("  %s %.6f", m->metric_names[i], nnrt_metric_value(m, i, sums, d->count));
        printf("\n");
        if (cfg->confusion && print_confusion(m, &s, d, batch) != 0) goto done;
    }
    rc = 0;
done:
    infer_free(&s);
    return rc;
}

/* prefix + text as one CSV field on stdout, quoted (RFC 4180) when it needs to be. */
static void csv_field_prefixed(const char *prefix, const char *text) {
    int quote = strpbrk(text, ",\"\r\n") != NULL || isspace((unsigned char)text[0]) ||
                (text[0] && isspace((unsigned char)text[strlen(text) - 1]));
    if (!quote) {
        printf("%s%s", prefix, text);
        return;
    }
    printf("\"%s", prefix);
    for (const char *c = text; *c; c++) {
        if (*c == '"') putchar('"');
        putchar(*c);
    }
    putchar('"');
}

int nnrt_cmd_predict(const NnrtModel *m, const NnrtRunConfig *cfg, const char *input) {
    Infer s;
    memset(&s, 0, sizeof s);
    int rc = 1;
    if (!input) {
        nnrt_error("predict needs an input: predict --load FILE INPUT.csv (or an IDX images file, "
                   "or an idx(...)/csv(...) spec)");
        goto done;
    }
    if (!m->infer) {
        nnrt_error("this model has no inference entry point");
        goto done;
    }
    if (load_weights(m, cfg, "predict", &s) != 0) goto done;
    if (open_like_training(m, input, "predict input", NNRT_ROLE_PREDICT, &s.data) != 0) goto done;
    if (encode_words(cfg, &s.data) != 0) goto done;
    if (standardize(&s) != 0) goto done;
    const int64_t batch = cfg->batch < s.data.count ? cfg->batch : s.data.count;
    if (alloc_batch(m, batch, 1, &s) != 0) goto done;
    const int probs = m->output_kind == NNRT_OUTPUT_PROBABILITIES;
    const int64_t k = m->output_size;
    /* rows dropped by missing="skip" would shift every later output: each row then names its
     * input's line in the file (an added last column, so the usual columns keep their places) */
    const int64_t *lines = s.data.skipped > 0 ? s.data.lines : NULL;
    /* with class names (string labels) the columns are p_<name> and the class is the name */
    const NnrtLabels *names = probs ? s.labels : NULL;
    for (int64_t j = 0; j < k; j++) {
        if (j) putchar(',');
        if (names && j < names->count) csv_field_prefixed("p_", names->names[j]);
        else printf("%c%lld", probs ? 'p' : 'y', (long long)j);
    }
    printf("%s%s\n", probs ? ",class" : "", lines ? ",line" : "");
    for (int64_t start = 0; start < s.data.count; start += batch) {
        int64_t nb = s.data.count - start < batch ? s.data.count - start : batch;
        nnrt_data_gather(&s.data, NULL, start, nb, s.x, NULL);
        m->infer(s.params, s.x, s.ws, nb, s.out);
        for (int64_t e = 0; e < nb; e++) {
            const float *o = s.out + e * k;
            int64_t best = 0;
            for (int64_t j = 0; j < k; j++) {
                printf("%s%.9g", j ? "," : "", o[j]);
                if (o[j] > o[best]) best = j;
            }
            if (probs && names && best < names->count) {
                putchar(',');
                csv_field_prefixed("", names->names[best]);
            } else if (probs) {
                printf(",%lld", (long long)best);
            }
            if (lines) printf(",%lld", (long long)lines[start + e]);
            printf("\n");
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        nnrt_error("predict: cannot write the output");
        goto done;
    }
    rc = 0;
done:
    infer_free(&s);
    return rc;
}
