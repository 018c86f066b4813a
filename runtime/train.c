/* train.c — the `train` command: settings, data, the epoch loop, checkpoints and logs.
 *
 * One epoch:
 *   order  = Fisher–Yates shuffle of 0..N-1 seeded by (seed, epoch)   (identity with --no-shuffle)
 *   for each mini-batch of B examples (the last one may be partial):
 *       gather -> train_step (mean-loss gradient, loss/metric sums) -> NaN check -> clip ->
 *       optimizer step with the step's scheduled learning rate (schedule.c)
 *   evaluate the validation set, print/log the epoch, save the checkpoint atomically.
 * With Adam/AdamW in one process without clipping, train_step_update does train_step and the
 * optimizer step in one: the generated code updates each tensor right after its gradient is
 * complete (nnrt.h, NnrtUpdate), with the same bytes. A NaN loss then ends the run after an
 * update, which changes nothing kept: the run saves nothing after it.
 *
 * Data-parallel training (libnnrt_mpi.a under mpirun, `size` ranks): every rank loads the data,
 * shuffles it identically (same seed) and walks the same global batches; rank r computes the
 * contiguous slice [nb r / size, nb (r+1) / size) of each batch of nb examples. train_step gives
 * each rank its share of the global mean-loss gradient (NnrtShard), so summing the shares over the
 * ranks (MPI_Allreduce in buckets of whole parameter tensors, NNRT_BUCKET_BYTES each) yields the
 * single-process gradient; every rank then applies the same update to the same parameters.
 * Validation is split the same way and its sums added. Rank 0 alone prints, logs and saves.
 *
 * Settings come from the command line, else (when resuming) the checkpoint's metadata, else the
 * model's train block. Everything that influences the weights is a function of (seed, epoch,
 * step) and the data, so a run resumed from epoch k's checkpoint is bit-identical to an
 * uninterrupted one. All buffers are allocated before the first step; the loop allocates nothing.
 */
#include "nnrt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_METRICS 64

/* Gradient buckets: consecutive parameter tensors are summed over the ranks in one MPI_Allreduce
 * of at least this many bytes (a larger tensor is a bucket of its own). 1 MiB is far above the
 * size where the latency of a call stops mattering on common networks (~64 KiB) and still splits
 * big models into several messages. Overlapping them with the backward pass would need the
 * generated step to hand over each tensor's gradient as it completes; the ABI's step is one call,
 * so the buckets are reduced after it returns. */
enum { NNRT_BUCKET_BYTES = 1 << 20 };

typedef struct Run {
    const NnrtModel *m;
    const NnrtRunConfig *cfg;
    NnrtTrainState st;
    NnrtSchedule sched;
    NnrtData train, val;
    int have_val;
    float *grads, *x;
    void *y, *ws;
    int64_t *order;
    int64_t bcap;        /* examples the batch buffers hold: min(batch, largest data set) */
    int64_t saved_epoch; /* epoch of the state in the --save file, -1 if none of ours */
    int64_t best_saved;  /* epoch of the state this run wrote to --save-best, 0 if none */
    FILE *log;
    const NnrtComm *comm;
    int leader;          /* rank 0: prints, logs and saves */
    int64_t *bucket_end; /* gradient bucket k is [bucket_end[k-1], bucket_end[k]) of the flat buffer */
    int buckets;
} Run;

static void shard_allreduce(const NnrtShard *shard, double *buf, int64_t count) {
    nnrt_comm_sum_f64(shard->comm, buf, count);
}

NnrtShard nnrt_shard(const NnrtComm *comm, int64_t total, int64_t first) {
    NnrtShard s = {.total = total, .first = first, .allreduce_sum = shard_allreduce, .comm = (void *)comm};
    return s;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* This rank's contiguous share [*lo, *hi) of count items. */
static void rank_slice(const NnrtComm *c, int64_t count, int64_t *lo, int64_t *hi) {
    *lo = count * c->rank / c->size;
    *hi = count * (c->rank + 1) / c->size;
}

size_t nnrt_workspace_bytes(const NnrtModel *m, int64_t n, size_t elem) {
    if (m->workspace_fixed < 0 || m->workspace_per_example < 0) return SIZE_MAX;
    double d = ((double)m->workspace_fixed + (double)m->workspace_per_example * (double)n) * (double)elem;
    if (d > (double)(SIZE_MAX / 2)) return SIZE_MAX;
    return (size_t)(m->workspace_fixed + m->workspace_per_example * n) * elem;
}

double nnrt_metric_value(const NnrtModel *m, int i, const double *sums, int64_t count) {
    double v = sums[1 + i] / (double)count;
    return m->metric_reduce && m->metric_reduce[i] == NNRT_METRIC_ROOT_MEAN ? sqrt(v) : v;
}

int nnrt_evaluate(const NnrtModel *m, const float *params, const NnrtData *d, int64_t batch,
                  void *ws, float *x, void *y, double *sums, const NnrtComm *comm) {
    int nm = m->metric_count;
    for (int i = 0; i <= nm; i++) sums[i] = 0;
    int64_t lo, hi;
    rank_slice(comm, d->count, &lo, &hi);
    for (int64_t start = lo; start < hi; start += batch) {
        int64_t nb = hi - start < batch ? hi - start : batch;
        double s[1 + MAX_METRICS] = {0};
        nnrt_data_gather(d, NULL, start, nb, x, y);
        m->eval_step(params, x, y, ws, nb, s);
        for (int i = 0; i <= nm; i++) sums[i] += s[i];
    }
    nnrt_comm_sum_f64(comm, sums, 1 + nm);
    return 0;
}

/* A metadata value of the checkpoint being resumed, unless the command line gave the setting. */
static const char *from_ckpt(const NnrtCkpt *c, int usable, unsigned given, unsigned bit,
                             const char *key) {
    if (!usable || (given & bit)) return NULL;
    return nnrt_ckpt_meta(c, key);
}

/* Resolves optimizer, schedule, seed, batch and clip. */
static int settings(Run *r, const NnrtCkpt *c, int usable) {
    const NnrtRunConfig *cfg = r->cfg;
    const char *text = cfg->optimizer, *what = "--optimizer";
    const char *ck = from_ckpt(c, usable, cfg->given, NNRT_GIVEN_OPTIMIZER, "optimizer");
    if (ck) text = ck, what = "checkpoint metadata 'optimizer'";
    else if (!(cfg->given & NNRT_GIVEN_OPTIMIZER)) what = "train block: optimizer";
    if (!text) text = "adam()";
    if (nnrt_optim_parse(text, what, &r->st.opt) != 0) return -1;
    if (cfg->given & NNRT_GIVEN_LR) r->st.opt.lr = cfg->lr;
    nnrt_optim_format(&r->st.opt, r->st.opt_text, sizeof r->st.opt_text);

    text = cfg->schedule;
    what = cfg->given & NNRT_GIVEN_SCHEDULE ? "--schedule" : "train block: schedule";
    ck = from_ckpt(c, usable, cfg->given, NNRT_GIVEN_SCHEDULE, "schedule");
    if (ck) text = ck, what = "checkpoint metadata 'schedule'";
    if (nnrt_schedule_parse(text ? text : "constant", what, &r->sched) != 0) return -1;
    if (r->sched.kind == NNRT_SCHED_ONECYCLE && (cfg->given & NNRT_GIVEN_LR) && r->leader)
        nnrt_warning("--lr has no effect with the schedule onecycle(...): its max_lr sets the rate "
                     "of every step");
    nnrt_schedule_format(&r->sched, r->st.sched_text, sizeof r->st.sched_text);

    r->st.seed = cfg->seed;
    r->st.batch = cfg->batch;
    r->st.clip = cfg->clip;
    if ((ck = from_ckpt(c, usable, cfg->given, NNRT_GIVEN_SEED, "seed")))
        r->st.seed = strtoull(ck, NULL, 10);
    if ((ck = from_ckpt(c, usable, cfg->given, NNRT_GIVEN_BATCH, "batch")) && atoll(ck) > 0)
        r->st.batch = atoll(ck);
    if ((ck = from_ckpt(c, usable, cfg->given, NNRT_GIVEN_CLIP, "clip")) && strtod(ck, NULL) >= 0)
        r->st.clip = strtod(ck, NULL);
    return 0;
}

static int load_data(Run *r) {
    const NnrtRunConfig *cfg = r->cfg;
    const NnrtModel *m = r->m;
    if (!cfg->data) {
        nnrt_error("no training data: model '%s' has no `data = ...` in its train block",
                   m->name ? m->name : "?");
        nnrt_hint("pass one with --data 'idx(\"images.gz\", \"labels.gz\")' or --data file.csv");
        return -1;
    }
    const char *what = cfg->given & NNRT_GIVEN_DATA ? "--data" : "train block: data";
    if (nnrt_data_open(m, cfg->data, what, NNRT_ROLE_TRAIN, &r->train) != 0) return -1;
    /* string class labels: the ids are the checkpoint's when it names its classes (resuming or
     * fine-tuning keeps their meaning), else the training data's (sorted names); a held-out
     * split shares them, a validation file is mapped onto them */
    char whose[400];
    snprintf(whose, sizeof whose, "checkpoint '%s'", cfg->load ? cfg->load : "?");
    const char *label_source = r->st.labels ? whose : "the training data";
    if (r->st.labels && nnrt_labels_map(&r->train, r->st.labels, whose) != 0) return -1;
    if (!r->st.labels && r->train.labels &&
        (nnrt_labels_fit(&r->train, m) != 0 || !(r->st.labels = nnrt_labels_copy(r->train.labels))))
        return -1;
    if (cfg->validate) {
        const char *vwhat = cfg->given & NNRT_GIVEN_VALIDATE ? "--validate" : "train block: validate";
        NnrtSplit how;
        int split = nnrt_data_is_split(cfg->validate, vwhat, &how);
        if (split < 0) return -1;
        if (split) {
            if (nnrt_data_split(m, &r->train, &how, &r->val) != 0) return -1;
            int64_t missing = nnrt_data_missing_class(m, &r->train, &r->val);
            char named[120] = ""; /* string labels: the class's name too */
            if (missing >= 0 && r->st.labels && missing < r->st.labels->count) {
                char clean[96];
                snprintf(named, sizeof named, " ('%s')",
                         nnrt_printable(r->st.labels->names[missing], clean, sizeof clean));
            }
            if (missing >= 0 && r->leader)
                nnrt_warning("the held-out part of split(%g%s) has no example of class %lld%s, which "
                             "the training part has; validation says nothing about it",
                             how.fraction, how.shuffle ? "" : ", shuffle=false", (long long)missing,
                             named);
        } else if (nnrt_data_open(m, cfg->validate, vwhat, NNRT_ROLE_VALIDATE, &r->val) != 0 ||
                   nnrt_labels_map(&r->val, r->st.labels, label_source) != 0) {
            return -1;
        }
        r->have_val = 1;
    }
    NnrtTrainState *st = &r->st;
    /* csv(tokenize="words"): the vocabulary of the training part (or of the weights resumed) */
    if (nnrt_text_prepare(&r->train, r->have_val ? &r->val : NULL, &st->vocab) != 0) return -1;
    if (r->train.standardize) {
        /* statistics of the training part only; applied to both sets */
        if (!st->std_mean) {
            st->std_mean = nnrt_alloc((size_t)m->input_size, sizeof(float), "standardization");
            st->std_std = nnrt_alloc((size_t)m->input_size, sizeof(float), "standardization");
            if (!st->std_mean || !st->std_std) return -1;
        }
        if (nnrt_standardize_compute(&r->train, st->std_mean, st->std_std) != 0 ||
            nnrt_standardize_apply(&r->train, st->std_mean, st->std_std) != 0 ||
            (r->have_val && nnrt_standardize_apply(&r->val, st->std_mean, st->std_std) != 0))
            return -1;
    } else {
        if (st->std_mean)
            nnrt_warning("the checkpoint holds standardization statistics but the training data "
                         "is not standardized; dropping them");
        free(st->std_mean);
        free(st->std_std);
        st->std_mean = st->std_std = NULL;
        if (r->have_val && r->val.standardize)
            nnrt_warning("standardize=true on the validation set is ignored: statistics come "
                         "from the training data, which is not standardized");
    }
    return 0;
}

static int alloc_buffers(Run *r) {
    const NnrtModel *m = r->m;
    int64_t largest = r->train.count;
    if (r->have_val && r->val.count > largest) largest = r->val.count;
    r->bcap = r->st.batch < largest ? r->st.batch : largest;
    int64_t tsz = m->target_size; /* class targets: one id per example or per position */
    r->grads = nnrt_zalloc((size_t)m->param_count, sizeof(float), "the gradients");
    r->x = nnrt_alloc((size_t)(r->bcap * m->input_size), sizeof(float), "the input batch");
    r->y = nnrt_alloc((size_t)(r->bcap * tsz), 4, "the target batch");
    r->ws = nnrt_alloc_aligned(nnrt_workspace_bytes(m, r->bcap, sizeof(float)), "the workspace");
    r->order = nnrt_alloc((size_t)r->train.count, sizeof(int64_t), "the example order");
    r->bucket_end = nnrt_alloc((size_t)m->param_tensor_count + 1, sizeof(int64_t), "the gradient buckets");
    if (!r->grads || !r->x || !r->y || !r->ws || !r->order || !r->bucket_end) return -1;
    /* tensors tile the flat buffer; a bucket closes at the first tensor end NNRT_BUCKET_BYTES past
     * its start */
    int64_t *ends = r->bucket_end;
    for (int32_t i = 0; i < m->param_tensor_count; i++) ends[i] = m->params[i].offset + m->params[i].size;
    qsort(ends, (size_t)m->param_tensor_count, sizeof *ends, cmp_i64);
    int64_t begin = 0;
    r->buckets = 0;
    for (int32_t i = 0; i < m->param_tensor_count; i++) {
        int last = i + 1 == m->param_tensor_count;
        if (last || (ends[i] - begin) * (int64_t)sizeof(float) >= NNRT_BUCKET_BYTES)
            begin = ends[r->buckets++] = last ? m->param_count : ends[i];
    }
    return 0;
}

/* Sums the ranks' shares of the gradient, bucket by bucket. */
static void reduce_grads(Run *r) {
    if (r->comm->size < 2) return;
    for (int k = 0; k < r->buckets; k++) {
        int64_t from = k ? r->bucket_end[k - 1] : 0;
        nnrt_comm_sum_f32(r->comm, r->grads + from, r->bucket_end[k] - from);
    }
}

/* The terminal's width when stdout is one, else 0 (lines are never broken for pipes and files). */
static int stdout_columns(void) {
    return isatty(STDOUT_FILENO) ? nnrt_terminal_columns(STDOUT_FILENO) : 0;
}

static void banner(const Run *r) {
    const NnrtModel *m = r->m;
    int64_t trainable = 0, buffers = 0, ntrain = 0;
    for (int32_t i = 0; i < m->param_tensor_count; i++) {
        if (m->params[i].trainable) trainable += m->params[i].size, ntrain++;
        else buffers += m->params[i].size;
    }
    /* On a terminal each line is broken (after a colon or commas) to fit its width: a full
     * optimizer spec alone is about 100 characters. Two lines for the settings. */
    const int cols = stdout_columns();
    char text[1024];
    int n = snprintf(text, sizeof text, "model %s: %lld parameters in %lld tensors",
                     m->name ? m->name : "?", (long long)trainable, (long long)ntrain);
    if (buffers && n > 0 && (size_t)n < sizeof text)
        snprintf(text + n, sizeof text - (size_t)n, " (+%lld buffer values)", (long long)buffers);
    nnrt_print_fitted(stdout, text, ": ", cols, 2);
    n = snprintf(text, sizeof text, "data: %lld training examples", (long long)r->train.count);
    if (r->have_val && n > 0 && (size_t)n < sizeof text)
        snprintf(text + n, sizeof text - (size_t)n, ", %lld validation examples", (long long)r->val.count);
    nnrt_print_fitted(stdout, text, ", ", cols, (int)strlen("data: "));
    n = snprintf(text, sizeof text, "training: %lld epoch%s, batch %lld, seed %llu, threads %lld",
                     (long long)r->cfg->epochs, r->cfg->epochs == 1 ? "" : "s",
                     (long long)r->st.batch, (unsigned long long)r->st.seed,
                     (long long)r->cfg->threads);
    if (r->comm->size > 1 && n > 0 && (size_t)n < sizeof text)
        snprintf(text + n, sizeof text - (size_t)n, ", %d ranks (%s; %lld gradient bucket%s)",
                 r->comm->size, nnrt_comm_name(), (long long)r->buckets, r->buckets == 1 ? "" : "s");
    nnrt_print_fitted(stdout, text, ", ", cols, (int)strlen("training: "));
    n = snprintf(text, sizeof text, "optimizer: %s, schedule %s", r->st.opt_text, r->st.sched_text);
    if (r->st.clip > 0 && n > 0 && (size_t)n < sizeof text)
        snprintf(text + n, sizeof text - (size_t)n, ", clip %g", r->st.clip);
    nnrt_print_fitted(stdout, text, ", ", cols, (int)strlen("optimizer: "));
    fflush(stdout);
}

static int params_finite(const NnrtModel *m, const float *p) {
    for (int64_t i = 0; i < m->param_count; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

static void diverged(const Run *r, const char *what, int64_t epoch, int64_t step, int64_t n) {
    nnrt_error("%s at epoch %lld, step %lld (batch of %lld examples)", what, (long long)epoch,
               (long long)step, (long long)n);
    nnrt_hint("lower the learning rate (--lr), or clip the gradient norm (--clip 1, or "
              "clip = 1 in the train block); extreme values in the data can do this too");
    if (r->cfg->save && r->saved_epoch >= 0)
        nnrt_note("the checkpoint '%s' from epoch %lld is untouched", r->cfg->save,
                  (long long)r->saved_epoch);
    else if (r->cfg->save)
        nnrt_note("nothing was saved to '%s'", r->cfg->save);
}

/* The epoch line on stdout and the JSON line in --log. */
static int report_epoch(Run *r, int64_t e, const double *ts, const double *vs, double secs,
                        double lr) {
    const NnrtModel *m = r->m;
    int64_t n = r->train.count;
    double rate = secs > 0 ? (double)n / secs : 0;
    if (!r->leader) return 0;
    NnrtBuf line = {0};
    nnrt_buf_printf(&line, "epoch %lld/%lld", (long long)e + 1, (long long)r->cfg->epochs);
    int indent = (int)line.len + 2; /* continuation lines start under the first value */
    nnrt_buf_printf(&line, "  train_loss %.4f", ts[0] / (double)n);
    for (int i = 0; i < m->metric_count; i++)
        nnrt_buf_printf(&line, "  train_%s %.4f", m->metric_names[i], nnrt_metric_value(m, i, ts, n));
    if (r->have_val) {
        nnrt_buf_printf(&line, "  val_loss %.4f", vs[0] / (double)r->val.count);
        for (int i = 0; i < m->metric_count; i++)
            nnrt_buf_printf(&line, "  val_%s %.4f", m->metric_names[i],
                            nnrt_metric_value(m, i, vs, r->val.count));
    }
    if (r->sched.kind != NNRT_SCHED_CONSTANT) nnrt_buf_printf(&line, "  lr %.4g", lr);
    nnrt_buf_printf(&line, "  %.2fs  %.0f samples/s", secs, rate);
    if (line.oom) {
        nnrt_buf_free(&line);
        nnrt_error("out of memory: cannot format the epoch line");
        return -1;
    }
    /* one line for pipes and files (scripts read them); fitted to a terminal's width */
    nnrt_print_fitted(stdout, line.p, "  ", stdout_columns(), indent);
    nnrt_buf_free(&line);
    fflush(stdout);
    if (!r->log) return 0;
    NnrtBuf b = {0};
    char v[40];
    nnrt_buf_printf(&b, "{\"epoch\":%lld", (long long)e + 1);
#define FIELD(key, value)                                                                          \
    do {                                                                                           \
        double f_ = (value);                                                                       \
        nnrt_buf_printf(&b, ",\"%s\":", key);                                                      \
        if (isfinite(f_)) { /* the shortest text that reads back as the same double */          \
            char t_[40];                                                                           \
            nnrt_fmt_double(t_, f_);                                                               \
            nnrt_buf_puts(&b, t_);                                                                 \
            if (!strpbrk(t_, ".e")) nnrt_buf_puts(&b, ".0"); /* stays a float for readers */       \
        }                                                                                          \
        else nnrt_buf_puts(&b, "null");                                                            \
    } while (0)
    FIELD("train_loss", ts[0] / (double)n);
    FIELD("val_loss", r->have_val ? vs[0] / (double)r->val.count : NAN);
    for (int i = 0; i < m->metric_count; i++) {
        snprintf(v, sizeof v, "train_%s", m->metric_names[i]);
        FIELD(v, nnrt_metric_value(m, i, ts, n));
        snprintf(v, sizeof v, "val_%s", m->metric_names[i]);
        FIELD(v, r->have_val ? nnrt_metric_value(m, i, vs, r->val.count) : NAN);
    }
    FIELD("seconds", secs);
    FIELD("samples_per_sec", rate);
    FIELD("lr", lr);
#undef FIELD
    nnrt_buf_puts(&b, "}\n");
    int ok = !b.oom && fputs(b.p, r->log) >= 0 && fflush(r->log) == 0;
    nnrt_buf_free(&b);
    if (!ok) nnrt_error("cannot write the log file '%s'", r->cfg->log);
    return ok ? 0 : -1;
}

static int64_t params_hash(const NnrtModel *m, const float *p) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 over the bytes */
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < sizeof(float) * (size_t)m->param_count; i++) h = (h ^ b[i]) * 1099511628211ull;
    return (int64_t)(h >> 1);
}

/* Do all ranks hold what rank 0 holds: the same data sizes and settings before training (epoch 0
 * here means "at the start"), the same parameters after each epoch? A rank that differs names the
 * first difference; then every rank returns -1 and the job stops. */
static int same_on_all_ranks(Run *r, int64_t epoch) {
    enum { N_CHECKS = 8 };
    static const char *const what[N_CHECKS] = {
        "the number of training examples", "the number of validation examples", "the batch size",
        "the seed", "the completed epochs", "the optimizer steps", "the example size",
        "the parameters (hash)"};
    int64_t mine[N_CHECKS] = {r->train.count, r->have_val ? r->val.count : -1, r->st.batch,
                              (int64_t)r->st.seed, r->st.epoch, r->st.ost.step,
                              r->m->input_size, params_hash(r->m, r->st.params)};
    int64_t root[N_CHECKS];
    memcpy(root, mine, sizeof root);
    nnrt_comm_broadcast(r->comm, root, sizeof root);
    int64_t differs = 0;
    for (int i = 0; i < N_CHECKS && !differs; i++) {
        if (mine[i] == root[i]) continue;
        differs = 1;
        if (epoch == 0 && i == 3) /* the seed is unsigned: all 64 bits, printed as given */
            nnrt_error("%s differs from rank 0's (%llu here, %llu on rank 0)", what[i],
                       (unsigned long long)mine[i], (unsigned long long)root[i]);
        else if (epoch == 0)
            nnrt_error("%s differs from rank 0's (%lld here, %lld on rank 0)", what[i],
                       (long long)mine[i], (long long)root[i]);
        else
            nnrt_error("after epoch %lld %s differ from rank 0's (the MPI reductions did not give "
                       "every rank the same result)", (long long)epoch, what[i]);
        if (epoch == 0)
            nnrt_hint("every rank must see the same data files, checkpoint and options (on several "
                      "hosts: a shared file system, or identical copies)");
    }
    nnrt_comm_max_i64(r->comm, &differs, 1);
    return differs ? -1 : 0;
}

/* Runs epochs st.epoch .. epochs-1. Returns 0, or -1 after reporting. */
static int epochs_loop(Run *r) {
    const NnrtModel *m = r->m;
    const NnrtRunConfig *cfg = r->cfg;
    NnrtTrainState *st = &r->st;
    const int nm = m->metric_count;
    const int64_t n = r->train.count, B = r->bcap;
    const int64_t steps = (n + B - 1) / B;
    const int progress = !cfg->quiet && isatty(STDERR_FILENO);
    /* the generated step applies the update itself where nothing must see the gradients first:
     * one process (no sum over ranks), no clipping (no global norm) */
    const int fused = nnrt_optim_fusable(&st->opt, m) && r->comm->size == 1 && st->clip <= 0;
    int warned_early = 0;
    for (int64_t e = st->epoch; e < cfg->epochs; e++) {
        double lr = st->opt.lr; /* the rate of the epoch's last step, for the log */
        if (cfg->shuffle) nnrt_shuffle(r->order, n, st->seed, e);
        else
            for (int64_t i = 0; i < n; i++) r->order[i] = i;
        double ts[1 + MAX_METRICS] = {0}, vs[1 + MAX_METRICS] = {0};
        NnrtProgress bar;
        nnrt_progress_begin(&bar, progress, e + 1, cfg->epochs, n);
        double t0 = nnrt_now();
        for (int64_t k = 0; k < steps; k++) {
            int64_t start = k * B, nb = n - start < B ? n - start : B;
            double s[1 + MAX_METRICS] = {0};
            int64_t lo, hi; /* this rank's slice of the global batch */
            rank_slice(r->comm, nb, &lo, &hi);
            nnrt_data_gather(&r->train, r->order + start + lo, 0, hi - lo, r->x, r->y);
            uint64_t step_seed = nnrt_mix_seed(st->seed, NNRT_STREAM_STEP, (uint64_t)st->ost.step);
            NnrtShard shard = nnrt_shard(r->comm, nb, lo);
            lr = nnrt_schedule_lr(&r->sched, st->opt.lr, e * steps + k, steps, cfg->epochs);
            if (fused) {
                NnrtUpdate update;
                nnrt_optim_fused_args(&st->opt, &st->ost, lr, &update);
                m->train_step_update(st->params, r->grads, r->x, r->y, r->ws, hi - lo, step_seed, s, &shard, &update);
            } else {
                m->train_step(st->params, r->grads, r->x, r->y, r->ws, hi - lo, step_seed, s, &shard);
            }
            nnrt_comm_sum_f64(r->comm, s, 1 + nm);
            if (!isfinite(s[0])) {
                nnrt_progress_end(&bar);
                diverged(r, isnan(s[0]) ? "loss became NaN" : "loss became infinite", e + 1, k + 1, nb);
                return -1;
            }
            for (int i = 0; i <= nm; i++) ts[i] += s[i];
            if (!fused) {
                reduce_grads(r);
                if (st->clip > 0) nnrt_clip_grads(m, r->grads, st->clip);
                nnrt_optim_step(&st->opt, &st->ost, m, st->params, r->grads, lr);
            }
            nnrt_progress_update(&bar, start + nb, ts[0] / (double)(start + nb),
                                 r->sched.kind == NNRT_SCHED_CONSTANT ? NAN : lr);
        }
        double secs = nnrt_now() - t0;
        nnrt_progress_end(&bar);
        if (!params_finite(m, st->params)) {
            diverged(r, "the parameters became NaN or infinite (the gradient overflowed)", e + 1,
                     steps, B);
            return -1;
        }
        if (r->comm->size > 1 && same_on_all_ranks(r, e + 1) != 0) return -1;
        if (r->have_val) nnrt_evaluate(m, st->params, &r->val, B, r->ws, r->x, r->y, vs, r->comm);
        if (report_epoch(r, e, ts, vs, secs, lr) != 0) return -1;
        st->epoch = e + 1;
        int stop = 0, improved = 0;
        /* the best validation loss is recorded with any validation data (checkpoint metadata);
         * only early stopping counts epochs without improvement and keeps the best weights */
        if (r->have_val) {
            double vl = vs[0] / (double)r->val.count;
            improved = vl < st->best_val;
            if (improved) {
                st->best_val = vl;
                st->best_epoch = e + 1;
            }
        }
        if (cfg->early_stop > 0 && !r->have_val) {
            if (!warned_early)
                nnrt_warning("early stopping needs a validation set (--validate); ignoring it");
            warned_early = 1;
        } else if (cfg->early_stop > 0) {
            if (improved) {
                st->wait = 0;
                if (!st->best_params &&
                    !(st->best_params = nnrt_alloc((size_t)m->param_count, sizeof(float),
                                                   "the best parameters")))
                    return -1;
                memcpy(st->best_params, st->params, sizeof(float) * (size_t)m->param_count);
            } else if (++st->wait >= cfg->early_stop) {
                stop = 1;
                /* like Keras' restore_best_weights: the run ends with the best epoch's weights
                 * (the optimizer state and counters stay those of the last epoch) */
                if (st->best_params) {
                    memcpy(st->params, st->best_params, sizeof(float) * (size_t)m->param_count);
                    free(st->best_params);
                    st->best_params = NULL;
                }
            }
        }
        if (cfg->save) {
            if (nnrt_state_save(st, cfg->save) != 0) return -1;
            r->saved_epoch = st->epoch;
        }
        /* the whole state of the best epoch, written as it happens (a crash later keeps it) */
        if (cfg->save_best && improved) {
            if (nnrt_state_save(st, cfg->save_best) != 0) return -1;
            r->best_saved = st->epoch;
        }
        if (stop) {
            if (!cfg->quiet)
                printf("early stop: the validation loss has not improved for %lld epochs (best "
                       "%.4f at epoch %lld); keeping the weights of epoch %lld\n",
                       (long long)st->wait, st->best_val, (long long)st->best_epoch,
                       (long long)st->best_epoch);
            break;
        }
    }
    return 0;
}

/* --save is written after the first epoch, which may be hours away: find out now that its
 * directory takes the temporary file the save writes (FILE.tmp.<pid>, ckpt.c). */
static int check_save_path(const char *flag, const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        nnrt_error("%s '%s' is a directory; give a file name, e.g. %s %s/model.safetensors", flag, path,
                   flag, path);
        return -1;
    }
    size_t n = strlen(path) + 32;
    char *probe = malloc(n);
    if (!probe) return -1;
    snprintf(probe, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        int err = errno;
        const char *slash = strrchr(path, '/');
        int dir_len = slash ? (slash == path ? 1 : (int)(slash - path)) : 1;
        nnrt_error("%s '%s': cannot create a file in '%.*s' (%s); choose a writable path", flag, path,
                   dir_len, slash ? path : ".", strerror(err));
        free(probe);
        return -1;
    }
    close(fd);
    unlink(probe);
    free(probe);
    return 0;
}

int nnrt_cmd_train(const NnrtModel *m, const NnrtRunConfig *cfg) {
    Run r;
    memset(&r, 0, sizeof r);
    NnrtRunConfig follower; /* ranks other than 0 print nothing and write no file */
    const int want_best = cfg->save_best != NULL; /* every rank refuses it alike */
    if (cfg->comm->rank != 0) {
        follower = *cfg;
        follower.quiet = 1;
        follower.save = follower.log = follower.save_best = NULL;
        cfg = &follower;
    }
    r.comm = cfg->comm;
    r.leader = cfg->comm->rank == 0;
    r.m = m;
    r.cfg = cfg;
    r.st.model = m;
    r.st.best_val = INFINITY;
    r.saved_epoch = -1;
    if (cfg->save && check_save_path("--save", cfg->save) != 0) return 1;
    if (cfg->save_best && check_save_path("--save-best", cfg->save_best) != 0) return 1;
    if (cfg->save_best && ((cfg->save && strcmp(cfg->save, cfg->save_best) == 0) ||
                           (cfg->load && strcmp(cfg->load, cfg->save_best) == 0))) {
        nnrt_error("--save-best '%s' is also the %s file; the best epoch's checkpoint needs a file "
                   "of its own", cfg->save_best, cfg->save && !strcmp(cfg->save, cfg->save_best) ? "--save" : "--load");
        return 1;
    }
    /* Said once, before the work: a run without --save ends with its weights gone. Short enough
     * for a 50-column terminal, like the progress lines (e2e.progress_widths). */
    if (!cfg->save && !cfg->quiet) nnrt_note("weights will not be saved; add --save FILE");
    int rc = 1;
    NnrtCkpt ck;
    memset(&ck, 0, sizeof ck);
    int have_ck = cfg->load && nnrt_ckpt_read(cfg->load, &ck) == 0;
    if (cfg->load && !have_ck) return 1;
    const char *format = have_ck ? nnrt_ckpt_meta(&ck, "format") : NULL;
    int usable = format && strcmp(format, "nnc-1") == 0;
    if (settings(&r, &ck, usable) != 0) goto done;
    /* zeroed: the alignment padding between tensors is never initialized otherwise, and the
     * finiteness check and the ranks' parameter hash read the whole buffer */
    r.st.params = nnrt_zalloc((size_t)m->param_count, sizeof(float), "the parameters");
    if (!r.st.params || nnrt_optim_state_init(&r.st.opt, m->param_count, &r.st.ost) != 0) goto done;
    nnrt_init_params(m, r.st.seed, r.st.params, NULL);
    if (have_ck) {
        int resumed;
        if (nnrt_state_load(&r.st, &ck, 1, &resumed) != 0) goto done;
        nnrt_ckpt_free(&ck);
        have_ck = 0;
        if (resumed && cfg->save && strcmp(cfg->save, cfg->load) == 0) r.saved_epoch = r.st.epoch;
        if (resumed && r.st.epoch >= cfg->epochs) {
            nnrt_note("checkpoint '%s' has already completed %lld epoch%s and --epochs %lld is the "
                      "total; nothing to train", cfg->load, (long long)r.st.epoch,
                      r.st.epoch == 1 ? "" : "s", (long long)cfg->epochs);
            /* the loaded state is written unchanged, which also makes save(load(f)) testable */
            rc = cfg->save && strcmp(cfg->save, cfg->load) != 0 && nnrt_state_save(&r.st, cfg->save) != 0;
            goto done;
        }
        if (resumed && cfg->early_stop > 0 && r.st.wait >= cfg->early_stop) {
            nnrt_note("checkpoint '%s' stopped early after epoch %lld (no better validation loss "
                      "for %lld epochs); nothing to train (pass --early-stop 0 to continue)",
                      cfg->load, (long long)r.st.epoch, (long long)r.st.wait);
            rc = cfg->save && strcmp(cfg->save, cfg->load) != 0 && nnrt_state_save(&r.st, cfg->save) != 0;
            goto done;
        }
        if (resumed && !cfg->quiet)
            printf("resuming from '%s' after epoch %lld (step %lld)\n", cfg->load,
                   (long long)r.st.epoch, (long long)r.st.ost.step);
        /* a run trained without early stopping records its best validation loss but not that
         * epoch's weights (then best_epoch + wait != epoch): early stopping, which must be able to
         * restore them, starts its own record from the loaded weights */
        if (resumed && cfg->early_stop > 0 && r.st.best_epoch + r.st.wait != r.st.epoch) {
            nnrt_note("checkpoint '%s' was trained without early stopping (best validation loss "
                      "at epoch %lld, whose weights it does not hold); early stopping counts from "
                      "epoch %lld", cfg->load, (long long)r.st.best_epoch,
                      (long long)r.st.epoch + 1);
            r.st.best_val = INFINITY;
            r.st.best_epoch = r.st.wait = 0;
        }
        /* a run that stopped early ended with its best weights, which it does not save twice */
        if (resumed && cfg->early_stop > 0 && r.st.wait > 0 && !r.st.best_params) {
            r.st.best_params = nnrt_alloc((size_t)m->param_count, sizeof(float), "the best parameters");
            if (!r.st.best_params) goto done;
            memcpy(r.st.best_params, r.st.params, sizeof(float) * (size_t)m->param_count);
        }
    }
    if (load_data(&r) != 0 || alloc_buffers(&r) != 0) goto done;
    if (want_best && !r.have_val) {
        if (r.leader) {
            nnrt_error("--save-best keeps the epoch with the best validation loss, but there is no "
                       "validation set");
            nnrt_hint("give one with --validate SPEC, e.g. --validate 'split(0.1)'");
        }
        goto done;
    }
    if (r.comm->size > 1 && same_on_all_ranks(&r, 0) != 0) goto done;
    if (cfg->log && !(r.log = fopen(cfg->log, "a"))) {
        nnrt_error("cannot open the log file '%s' for appending", cfg->log);
        goto done;
    }
    if (!cfg->quiet) banner(&r);
    if (epochs_loop(&r) != 0) goto done;
    if (!cfg->quiet && cfg->save) printf("saved '%s' (epoch %lld)\n", cfg->save, (long long)r.st.epoch);
    if (cfg->save_best && r.best_saved > 0 && !cfg->quiet)
        printf("saved '%s' (epoch %lld, the best val_loss %.4f)\n", cfg->save_best,
               (long long)r.best_saved, r.st.best_val);
    else if (cfg->save_best && r.best_saved == 0 && r.leader)
        nnrt_note("no epoch of this run improved on the best validation loss of the checkpoint "
                  "'%s' (%.4f, epoch %lld); '%s' was not written", cfg->load ? cfg->load : "?",
                  r.st.best_val, (long long)r.st.best_epoch, cfg->save_best);
    rc = 0;
done:
    if (have_ck) nnrt_ckpt_free(&ck);
    if (r.log) fclose(r.log);
    nnrt_data_free(&r.val);
    nnrt_data_free(&r.train);
    free(r.grads);
    free(r.x);
    free(r.y);
    free(r.ws);
    free(r.order);
    free(r.bucket_end);
    nnrt_state_free(&r.st);
    return rc;
}
