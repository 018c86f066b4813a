/* state.c — what a checkpoint holds, and how it maps back onto a model.
 *
 * Tensors, in this order:
 *     <param name>                         every model tensor (buffers too), PyTorch layout
 *     __standardize.mean, __standardize.std    [input_size], when the data was standardized
 *     __best.<param name>                  every model tensor as of the best validation epoch, when
 *                                          early stopping tracks one and it is not the last epoch
 *                                          (so a resumed run can still restore it)
 *     optimizer.<state>.<param name>       per trainable tensor: momentum | adam_m, adam_v |
 *                                          rmsprop_square_avg (+ momentum)
 * Metadata (strings): format "nnc-1", model, source_hash, epoch (completed), step (optimizer
 * steps), seed, batch, optimizer (canonical spec), schedule, clip, best_val_loss / best_epoch (the
 * lowest validation loss so far, with any validation data) and early stopping's
 * epochs_without_improvement; labels (a JSON array of the class names, id order) when the
 * targets were string labels; vocab, the words of csv(tokenize="words") data, most frequent
 * first, joined by '\n' (word k has id k + 2), when the model was trained on such data.
 *
 * Everything written is a pure function of the state (no time stamps), so the same state always
 * gives the same bytes: same seed ⇒ identical files, and save → load → save is the identity.
 * Loading is strict the way load_state_dict(strict=True) is: every model tensor present with its
 * exact shape, nothing unexpected.
 */
#include "nnrt_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void format_shape(int32_t rank, const int64_t *dims, char *out, size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int32_t i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

int nnrt_state_save(const NnrtTrainState *s, const char *path) {
    const NnrtModel *m = s->model;
    int nbuf = nnrt_optim_buffer_count(&s->opt);
    int cap = m->param_tensor_count * (2 + nbuf) + 2;
    NnrtTensorOut *t = nnrt_zalloc((size_t)cap, sizeof *t, "the checkpoint");
    char **names = nnrt_zalloc((size_t)cap, sizeof *names, "the checkpoint");
    int nt = 0, rc = -1;
    if (!t || !names) goto done;
    for (int32_t i = 0; i < m->param_tensor_count; i++) {
        const NnrtParam *p = &m->params[i];
        t[nt++] = (NnrtTensorOut){p->name, p->rank, p->dims, s->params + p->offset, p->size};
    }
    if (s->std_mean) {
        t[nt++] = (NnrtTensorOut){"__standardize.mean", 1, &m->input_size, s->std_mean, m->input_size};
        t[nt++] = (NnrtTensorOut){"__standardize.std", 1, &m->input_size, s->std_std, m->input_size};
    }
    if (s->best_params && s->wait > 0)
        for (int32_t i = 0; i < m->param_tensor_count; i++) {
            const NnrtParam *p = &m->params[i];
            size_t len = strlen(p->name) + 8;
            char *name = nnrt_alloc(len, 1, "the checkpoint");
            if (!name) goto done;
            names[nt] = name;
            snprintf(name, len, "__best.%s", p->name);
            t[nt++] = (NnrtTensorOut){name, p->rank, p->dims, s->best_params + p->offset, p->size};
        }
    for (int b = 0; b < nbuf; b++) {
        for (int32_t i = 0; i < m->param_tensor_count; i++) {
            const NnrtParam *p = &m->params[i];
            if (!p->trainable) continue;
            size_t len = strlen(p->name) + 40;
            char *name = nnrt_alloc(len, 1, "the checkpoint");
            if (!name) goto done;
            names[nt] = name;
            snprintf(name, len, "optimizer.%s.%s", nnrt_optim_buffer_name(&s->opt, b), p->name);
            t[nt++] = (NnrtTensorOut){name, p->rank, p->dims, s->ost.buf[b] + p->offset, p->size};
        }
    }
    char epoch[24], step[24], seed[24], batch[24], clip[40], best[40], best_epoch[24], wait[24];
    snprintf(epoch, sizeof epoch, "%lld", (long long)s->epoch);
    snprintf(step, sizeof step, "%lld", (long long)s->ost.step);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    snprintf(batch, sizeof batch, "%lld", (long long)s->batch);
    nnrt_fmt_double(clip, s->clip);
    if (isfinite(s->best_val)) nnrt_fmt_double(best, s->best_val);
    else snprintf(best, sizeof best, "none");
    snprintf(best_epoch, sizeof best_epoch, "%lld", (long long)s->best_epoch);
    snprintf(wait, sizeof wait, "%lld", (long long)s->wait);
    char *labels = s->labels ? nnrt_labels_to_json(s->labels) : NULL;
    if (s->labels && !labels) goto done;
    const char *meta[] = {
        "format", "nnc-1", "model", m->name ? m->name : "", "source_hash",
        m->source_hash ? m->source_hash : "", "epoch", epoch, "step", step, "seed", seed,
        "batch", batch, "optimizer", s->opt_text, "schedule", s->sched_text, "clip", clip,
        "best_val_loss", best, "best_epoch", best_epoch, "epochs_without_improvement", wait,
        "labels", labels, "vocab", s->vocab, /* the last two: left out when there are none */
    };
    int nmeta = (int)(sizeof meta / sizeof *meta / 2) - 2;
    /* the optional entries that are present move up to the end of the fixed ones */
    if (labels) meta[2 * nmeta] = "labels", meta[2 * nmeta + 1] = labels, nmeta++;
    if (s->vocab) meta[2 * nmeta] = "vocab", meta[2 * nmeta + 1] = s->vocab, nmeta++;
    rc = nnrt_ckpt_write(path, t, nt, meta, nmeta);
    free(labels);
done:
    if (names)
        for (int i = 0; i < cap; i++) free(names[i]);
    free(names);
    free(t);
    return rc;
}

/* A comma-separated list of up to 8 names for messages. */
static void add_name(char *list, size_t cap, int *count, const char *name) {
    size_t n = strlen(list);
    char clean[64];
    if (*count < 8)
        snprintf(list + n, cap - n, "%s'%s'", *count ? ", " : "", nnrt_printable(name, clean, sizeof clean));
    else if (*count == 8) snprintf(list + n, cap - n, ", ...");
    (*count)++;
}

/* Non-finite weights would pass eval and predict silently and make train blame the gradient. */
static int check_finite(const NnrtCkpt *c, const char *name, const float *data, int64_t count) {
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(data[i])) {
            char clean[200];
            nnrt_error("checkpoint '%s': tensor '%s' holds %s at element %lld; a checkpoint holds finite "
                       "values only", c->path, nnrt_printable(name, clean, sizeof clean),
                       isnan(data[i]) ? "NaN" : data[i] > 0 ? "+Inf" : "-Inf", (long long)i);
            return -1;
        }
    return 0;
}

/* Copies a tensor out of the checkpoint and rejects non-finite values, naming the tensor. */
static int copy_finite(const NnrtCkpt *c, const NnrtTensorIn *t, float *dst) {
    nnrt_ckpt_copy_f32(t, dst);
    return check_finite(c, t->name, dst, t->count);
}

static int is_model_param(const NnrtModel *m, const char *name) {
    for (int32_t i = 0; i < m->param_tensor_count; i++)
        if (strcmp(m->params[i].name, name) == 0) return 1;
    return 0;
}

/* Model tensors (strict) and standardization statistics. */
static int load_model_tensors(const NnrtModel *m, const NnrtCkpt *c, float *params, float **mean,
                              float **std) {
    char missing[600] = "", unexpected[600] = "";
    int nmissing = 0, nunexpected = 0, bad = 0;
    for (int32_t i = 0; i < m->param_tensor_count; i++) {
        const NnrtParam *p = &m->params[i];
        const NnrtTensorIn *t = nnrt_ckpt_find(c, p->name);
        if (!t) {
            add_name(missing, sizeof missing, &nmissing, p->name);
            continue;
        }
        int same = t->rank == p->rank;
        for (int32_t d = 0; same && d < p->rank; d++) same = t->dims[d] == p->dims[d];
        if (!same) {
            char a[200], b[200];
            format_shape(t->rank, t->dims, a, sizeof a);
            format_shape(p->rank, p->dims, b, sizeof b);
            nnrt_error("checkpoint '%s': tensor '%s' has shape %s, the model expects %s", c->path,
                       p->name, a, b);
            bad = 1;
        }
    }
    for (int i = 0; i < c->nt; i++) {
        const char *n = c->t[i].name;
        if (!is_model_param(m, n) && strncmp(n, "optimizer.", 10) != 0 &&
            strcmp(n, "__standardize.mean") != 0 && strcmp(n, "__standardize.std") != 0 &&
            !(strncmp(n, "__best.", 7) == 0 && is_model_param(m, n + 7)))
            add_name(unexpected, sizeof unexpected, &nunexpected, n);
    }
    if (nmissing) {
        nnrt_error("checkpoint '%s': %d tensor%s of model '%s' %s missing: %s", c->path, nmissing,
                   nmissing == 1 ? "" : "s", m->name ? m->name : "?", nmissing == 1 ? "is" : "are",
                   missing);
        bad = 1;
    }
    if (nunexpected) {
        nnrt_error("checkpoint '%s': %d unexpected tensor%s not in model '%s': %s", c->path,
                   nunexpected, nunexpected == 1 ? "" : "s", m->name ? m->name : "?", unexpected);
        bad = 1;
    }
    if (bad) {
        nnrt_note("was the checkpoint written by another model, or before the model changed?");
        return -1;
    }
    for (int32_t i = 0; i < m->param_tensor_count; i++)
        if (copy_finite(c, nnrt_ckpt_find(c, m->params[i].name), params + m->params[i].offset) != 0) return -1;
    const NnrtTensorIn *tm = nnrt_ckpt_find(c, "__standardize.mean");
    const NnrtTensorIn *ts = nnrt_ckpt_find(c, "__standardize.std");
    if (tm || ts) {
        if (!tm || !ts || tm->rank != 1 || ts->rank != 1 || tm->dims[0] != m->input_size ||
            ts->dims[0] != m->input_size) {
            nnrt_error("checkpoint '%s': __standardize.mean/std must both be present with shape "
                       "[%lld]", c->path, (long long)m->input_size);
            return -1;
        }
        *mean = nnrt_alloc((size_t)m->input_size, sizeof(float), "standardization statistics");
        *std = nnrt_alloc((size_t)m->input_size, sizeof(float), "standardization statistics");
        if (!*mean || !*std) return -1;
        if (copy_finite(c, tm, *mean) != 0 || copy_finite(c, ts, *std) != 0) return -1;
    }
    const char *hash = nnrt_ckpt_meta(c, "source_hash");
    char clean[64];
    if (hash && m->source_hash && strcmp(hash, m->source_hash) != 0)
        nnrt_warning("checkpoint '%s' was written by a different version of the model source "
                     "(hash %s, this model %s); the tensor shapes match, continuing", c->path,
                     nnrt_printable(hash, clean, sizeof clean), m->source_hash);
    return 0;
}

/* Loaded counts stay far from overflow: the optimizer adds 1 to `step` every batch (and uses it
 * as a double, exact to 2^53), the training loop adds 1 to `epoch`. */
#define MAX_CKPT_STEP (1ll << 53)
#define MAX_CKPT_EPOCH 2147483647ll

static int meta_int(const NnrtCkpt *c, const char *key, long long max, int64_t *out) {
    const char *v = nnrt_ckpt_meta(c, key);
    char *end;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    char clean[64];
    if (!v || end == v || *end || errno == EINVAL || x < 0 || (errno == ERANGE && x != LLONG_MAX)) {
        nnrt_error("checkpoint '%s': metadata '%s' is %s%s%s, expected a non-negative integer",
                   c->path, key, v ? "'" : "missing", v ? nnrt_printable(v, clean, sizeof clean) : "",
                   v ? "'" : "");
        return -1;
    }
    if (x > max) {
        nnrt_error("checkpoint '%s': metadata '%s' is %s, more than %lld (corrupt checkpoint)", c->path, key,
                   nnrt_printable(v, clean, sizeof clean), max);
        return -1;
    }
    *out = x;
    return 0;
}

/* __best.<name> for every model tensor with its exact shape, or none at all. */
static int load_best(NnrtTrainState *s, const NnrtCkpt *c) {
    const NnrtModel *m = s->model;
    int found = 0;
    for (int32_t i = 0; i < m->param_tensor_count; i++) {
        char name[512];
        snprintf(name, sizeof name, "__best.%s", m->params[i].name);
        const NnrtTensorIn *t = nnrt_ckpt_find(c, name);
        if (!t) continue;
        int same = t->rank == m->params[i].rank;
        for (int32_t d = 0; same && d < t->rank; d++) same = t->dims[d] == m->params[i].dims[d];
        if (!same) {
            nnrt_error("checkpoint '%s': tensor '%s' does not have the shape of '%s'", c->path,
                       name, m->params[i].name);
            return -1;
        }
        found++;
    }
    if (found == 0) return 0;
    if (found != m->param_tensor_count) {
        nnrt_error("checkpoint '%s': it holds __best.* tensors for %d of the %d model tensors",
                   c->path, found, (int)m->param_tensor_count);
        return -1;
    }
    s->best_params = nnrt_alloc((size_t)m->param_count, sizeof(float), "the best parameters");
    if (!s->best_params) return -1;
    for (int32_t i = 0; i < m->param_tensor_count; i++) {
        char name[512];
        snprintf(name, sizeof name, "__best.%s", m->params[i].name);
        if (copy_finite(c, nnrt_ckpt_find(c, name), s->best_params + m->params[i].offset) != 0) return -1;
    }
    return 0;
}

/* The class names of metadata "labels", if any: one per class of the target at most. */
static int load_labels(const NnrtModel *m, const NnrtCkpt *c, NnrtLabels **out) {
    const char *text = nnrt_ckpt_meta(c, "labels");
    *out = NULL;
    if (!text) return 0;
    char what[300];
    snprintf(what, sizeof what, "checkpoint '%s': metadata 'labels'", c->path);
    NnrtLabels *l = nnrt_labels_from_json(text, what);
    if (!l) return -1;
    if (m->target_kind != NNRT_TARGET_CLASS || l->count > m->target_classes) {
        nnrt_error("%s names %lld classes, but target '%s' of model '%s' %s", what, (long long)l->count,
                   m->target_name ? m->target_name : "y", m->name ? m->name : "?",
                   m->target_kind != NNRT_TARGET_CLASS ? "is real-valued" : "has fewer");
        free(l);
        return -1;
    }
    *out = l;
    return 0;
}

int nnrt_state_load(NnrtTrainState *s, const NnrtCkpt *c, int resume, int *resumed) {
    const NnrtModel *m = s->model;
    *resumed = 0;
    free(s->std_mean);
    free(s->std_std);
    s->std_mean = s->std_std = NULL;
    if (load_model_tensors(m, c, s->params, &s->std_mean, &s->std_std) != 0) return -1;
    free(s->labels);
    s->labels = NULL;
    if (load_labels(m, c, &s->labels) != 0) return -1;
    /* the weights' vocabulary: the embedding rows mean these words, so training goes on with it */
    free(s->vocab);
    s->vocab = NULL;
    const char *vocab = nnrt_ckpt_meta(c, "vocab");
    if (vocab && !(s->vocab = nnrt_strdup(vocab))) return -1;
    const char *format = nnrt_ckpt_meta(c, "format");
    const char *opt = nnrt_ckpt_meta(c, "optimizer");
    if (!resume || !format || strcmp(format, "nnc-1") != 0 || !opt || !nnrt_ckpt_meta(c, "epoch")) {
        if (resume) nnrt_note("checkpoint '%s' holds weights only: training starts at epoch 1 "
                              "with a fresh optimizer", c->path);
        return 0;
    }
    NnrtOptConfig saved;
    char what[300];
    snprintf(what, sizeof what, "checkpoint '%s': metadata 'optimizer'", c->path);
    if (nnrt_optim_parse(opt, what, &saved) != 0) return -1;
    if (saved.kind != s->opt.kind) {
        nnrt_note("checkpoint '%s' was trained with %s, this run uses %s: loading the weights only "
                  "and starting at epoch 1 with a fresh optimizer", c->path,
                  nnrt_optim_kind_name(saved.kind), nnrt_optim_kind_name(s->opt.kind));
        return 0;
    }
    int64_t epoch, step;
    if (meta_int(c, "epoch", MAX_CKPT_EPOCH, &epoch) != 0 || meta_int(c, "step", MAX_CKPT_STEP, &step) != 0) return -1;
    /* every state tensor the optimizer needs, with the exact shape */
    int nbuf = nnrt_optim_buffer_count(&s->opt);
    for (int b = 0; b < nbuf; b++)
        for (int32_t i = 0; i < m->param_tensor_count; i++) {
            const NnrtParam *p = &m->params[i];
            if (!p->trainable) continue;
            char name[512];
            snprintf(name, sizeof name, "optimizer.%s.%s", nnrt_optim_buffer_name(&s->opt, b), p->name);
            const NnrtTensorIn *t = nnrt_ckpt_find(c, name);
            if (!t || t->count != p->size) {
                nnrt_note("checkpoint '%s' has no usable '%s' (different optimizer settings?): "
                          "loading the weights only and starting at epoch 1", c->path, name);
                for (int k = 0; k < nbuf; k++)
                    memset(s->ost.buf[k], 0, sizeof(float) * (size_t)m->param_count);
                return 0;
            }
            if (copy_finite(c, t, s->ost.buf[b] + p->offset) != 0) return -1;
        }
    s->ost.step = step;
    s->epoch = epoch;
    /* the early-stopping record: absent in older checkpoints, an error when present and wrong */
    const char *best = nnrt_ckpt_meta(c, "best_val_loss");
    s->best_val = INFINITY;
    if (best && strcmp(best, "none") != 0) {
        char *end;
        double v = strtod(best, &end);
        char clean[64];
        if (end == best || *end || !isfinite(v)) {
            nnrt_error("checkpoint '%s': metadata 'best_val_loss' is '%s', expected 'none' or a finite "
                       "number", c->path, nnrt_printable(best, clean, sizeof clean));
            return -1;
        }
        s->best_val = v;
    }
    int64_t v;
    if (nnrt_ckpt_meta(c, "best_epoch")) {
        if (meta_int(c, "best_epoch", epoch, &v) != 0) return -1;
        s->best_epoch = v;
    }
    if (nnrt_ckpt_meta(c, "epochs_without_improvement")) {
        if (meta_int(c, "epochs_without_improvement", epoch, &v) != 0) return -1;
        s->wait = v;
    }
    free(s->best_params);
    s->best_params = NULL;
    if (load_best(s, c) != 0) return -1;
    *resumed = 1;
    return 0;
}

void nnrt_state_free(NnrtTrainState *s) {
    free(s->params);
    free(s->best_params);
    s->best_params = NULL;
    free(s->std_mean);
    free(s->std_std);
    free(s->labels);
    s->labels = NULL;
    free(s->vocab);
    s->vocab = NULL;
    nnrt_optim_state_free(&s->ost);
    s->params = s->std_mean = s->std_std = NULL;
}

int nnrt_load_inference_ckpt(const NnrtModel *m, const NnrtCkpt *c, float *params, float **mean,
                             float **std, NnrtLabels **labels) {
    *mean = *std = NULL;
    *labels = NULL;
    return load_model_tensors(m, c, params, mean, std) != 0 || load_labels(m, c, labels) != 0 ? -1 : 0;
}

int nnrt_load_for_inference(const NnrtModel *m, const char *path, float *params, float **mean,
                            float **std) {
    NnrtCkpt c;
    if (nnrt_ckpt_read(path, &c) != 0) return -1;
    *mean = *std = NULL;
    int rc = load_model_tensors(m, &c, params, mean, std);
    nnrt_ckpt_free(&c);
    return rc;
}

int nnrt_load_vocab(const char *path, char **vocab) {
    NnrtCkpt c;
    *vocab = NULL;
    if (nnrt_ckpt_read(path, &c) != 0) return -1;
    const char *v = nnrt_ckpt_meta(&c, "vocab");
    int rc = v && !(*vocab = nnrt_strdup(v)) ? -1 : 0;
    nnrt_ckpt_free(&c);
    return rc;
}
