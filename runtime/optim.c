/* optim.c — optimizers as plain loops over the flat parameter/gradient buffers: sgd, adam, adamw,
 * rmsprop. Their arguments, defaults, ranges and state counts are the settings table's
 * (runtime/settings.c), which nnc checks train blocks against too.
 *
 * The update rules are PyTorch's single-tensor implementations (torch.optim.SGD/Adam/AdamW/RMSprop),
 * with the same order of float32 operations and the same double-precision scalars (bias
 * corrections, step size), so results agree with PyTorch to rounding: PyTorch's vectorized
 * kernels may fuse a multiply-add where this code rounds twice. One exception, for speed: Adam
 * applies the second bias correction to the step size and eps instead of dividing sqrt(v) by it
 * (below), which moves the last bits of an update. Only tensors marked trainable are
 * touched. State buffers are allocated once; nothing is allocated per step.
 */
#include "nnrt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"sgd", "adam", "adamw", "rmsprop"};

const char *nnrt_optim_kind_name(NnrtOptKind k) { return kind_names[k]; }

/* The value of argument `name` (given or default), 0 when the form has no such argument. */
static double arg_num(const NnrtSettingForm *f, const NnrtArgVal *v, const char *name) {
    int i = nnrt_setting_arg_index(f, name);
    return i < 0 ? 0 : f->args[i].kind == NNRT_ARG_BOOL ? v[i].boolean : v[i].num;
}

/* Signatures, defaults and ranges are the settings table's (nnrt_settings.h). */
int nnrt_optim_parse(const char *text, const char *what, NnrtOptConfig *c) {
    NnrtSpec s;
    if (nnrt_spec_parse(text, what, &s) != 0) return -1;
    memset(c, 0, sizeof *c);
    int rc = -1;
    NnrtArgVal v[NNRT_SPEC_MAX_ARGS];
    const NnrtSettingForm *f = nnrt_spec_form(&s, NNRT_GROUP_OPTIMIZER, "optimizer");
    if (!f || nnrt_spec_bind(&s, f, 0, v) != 0) goto done;
    for (int k = 0; k < 4; k++)
        if (strcmp(kind_names[k], f->name) == 0) c->kind = (NnrtOptKind)k;
    c->lr = arg_num(f, v, "lr");
    c->momentum = arg_num(f, v, "momentum");
    c->nesterov = arg_num(f, v, "nesterov") != 0;
    c->weight_decay = arg_num(f, v, "weight_decay");
    c->beta1 = arg_num(f, v, "beta1");
    c->beta2 = arg_num(f, v, "beta2");
    c->eps = arg_num(f, v, "eps");
    c->alpha = arg_num(f, v, "alpha");
    rc = 0;
done:
    nnrt_spec_free(&s);
    return rc;
}

/* The config's values in its form's argument order (for the formatter and the state count). */
static const NnrtSettingForm *config_values(const NnrtOptConfig *c, NnrtArgVal *v) {
    const NnrtSettingForm *f = nnrt_setting_form(NNRT_GROUP_OPTIMIZER, kind_names[c->kind]);
    for (int i = 0; i < f->nargs; i++) {
        const char *n = f->args[i].name;
        double x = !strcmp(n, "lr") ? c->lr : !strcmp(n, "momentum") ? c->momentum
                 : !strcmp(n, "weight_decay") ? c->weight_decay : !strcmp(n, "beta1") ? c->beta1
                 : !strcmp(n, "beta2") ? c->beta2 : !strcmp(n, "eps") ? c->eps
                 : !strcmp(n, "alpha") ? c->alpha : 0;
        v[i] = (NnrtArgVal){.set = 1, .num = x, .boolean = !strcmp(n, "nesterov") && c->nesterov};
    }
    return f;
}

/* The same canonical text nnc writes for a train block's optimizer. */
void nnrt_optim_format(const NnrtOptConfig *c, char *out, size_t cap) {
    NnrtArgVal v[NNRT_SPEC_MAX_ARGS];
    nnrt_setting_format_call(config_values(c, v), v, out, cap);
}

int nnrt_optim_buffer_count(const NnrtOptConfig *c) {
    NnrtArgVal v[NNRT_SPEC_MAX_ARGS];
    const NnrtSettingForm *f = config_values(c, v);
    return nnrt_setting_state_tensors(f, v);
}

const char *nnrt_optim_buffer_name(const NnrtOptConfig *c, int i) {
    switch (c->kind) {
    case NNRT_OPT_SGD: return "momentum";
    case NNRT_OPT_ADAM:
    case NNRT_OPT_ADAMW: return i == 0 ? "adam_m" : "adam_v";
    case NNRT_OPT_RMSPROP: return i == 0 ? "rmsprop_square_avg" : "momentum";
    }
    return "?";
}

int nnrt_optim_state_init(const NnrtOptConfig *c, int64_t param_count, NnrtOptState *st) {
    memset(st, 0, sizeof *st);
    for (int i = 0; i < nnrt_optim_buffer_count(c); i++) {
        st->buf[i] = nnrt_zalloc((size_t)param_count, sizeof(float), "the optimizer state");
        if (!st->buf[i]) {
            nnrt_optim_state_free(st);
            return -1;
        }
    }
    return 0;
}

void nnrt_optim_state_free(NnrtOptState *st) {
    free(st->buf[0]);
    free(st->buf[1]);
    memset(st, 0, sizeof *st);
}

/* torch.optim.SGD: d = g + wd*p; buf = d (first step) or mu*buf + d; d = nesterov ? d + mu*buf
 * : buf; p -= lr*d */
static inline __attribute__((always_inline)) void sgd_range(const NnrtOptConfig *c, NnrtOptState *st, float *p, const float *g,
                      int64_t lo, int64_t hi, double lr) {
    const float wd = (float)c->weight_decay, mu = (float)c->momentum, neg_lr = (float)-lr;
    float *buf = st->buf[0];
    for (int64_t i = lo; i < hi; i++) {
        float d = g[i];
        if (c->weight_decay != 0) d = d + wd * p[i];
        if (c->momentum != 0) {
            float b = st->step == 1 ? d : buf[i] * mu + d;
            buf[i] = b;
            d = c->nesterov ? d + mu * b : b;
        }
        p[i] = p[i] + neg_lr * d;
    }
}

/* torch.optim.Adam / AdamW:
 *   adam: g += wd*p           adamw: p *= 1 - lr*wd
 *   m = lerp(m, g, 1-beta1);  v = v*beta2 + (1-beta2)*g*g
 *   PyTorch:  p += -(lr / (1-beta1^t)) * m / (sqrt(v) / sqrt(1-beta2^t) + eps)
 *   here:     p += -(lr sqrt(1-beta2^t) / (1-beta1^t)) * m / (sqrt(v) + eps sqrt(1-beta2^t))
 * The same value (the Adam paper's own "more efficient" order, Kingma & Ba, section 2) with one
 * division per element instead of two: the update is bound by the divider (two divisions and a
 * square root per vector), and this takes a fifth off its time. It rounds differently in the last
 * bits of an update; tests/runtime/optim_reference.py (3 steps, 2e-6) and e2e.gpt_parity (20 AdamW
 * steps against torch.optim.AdamW, 1e-5) hold it to PyTorch. The generated update
 * (compiler/cg_optim.c) computes exactly this, with these scalars (adam_scalars).              */
/* One specialization per flag combination (the flags are constants at every call), so each
 * instance is a straight loop the C compiler vectorizes. */
static inline __attribute__((always_inline)) void adam_loop(
    float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t lo,
    int64_t hi, float neg_step, float w1, float b2, float c2, float eps, float wd,
    float decay, const int adamw, const int l2, const int small) {
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        if (adamw) p[i] = p[i] * decay;
        if (l2) gi = gi + wd * p[i];
        /* ATen's lerp picks the formulation by the weight's size */
        m[i] = small ? m[i] + w1 * (gi - m[i]) : gi - (gi - m[i]) * (1.0f - w1);
        v[i] = v[i] * b2;
        v[i] = v[i] + c2 * gi * gi;
        float denom = sqrtf(v[i]) + eps;
        p[i] = p[i] + neg_step * m[i] / denom;
    }
}

/* Step st->step's scalars, in double and rounded once to float: shared by the loops below and
 * the generated update (NnrtUpdate, nnrt.h), so both compute with the same numbers. decay is
 * exactly 1 without decoupled weight decay. */
static void adam_scalars(const NnrtOptConfig *c, const NnrtOptState *st, double lr, NnrtUpdate *u) {
    const double t = (double)st->step;
    const double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    const int decoupled = c->kind == NNRT_OPT_ADAMW && c->weight_decay != 0;
    u->m = st->buf[0];
    u->v = st->buf[1];
    u->neg_step = (float)(-(lr / bc1) * sqrt(bc2));
    u->w1 = (float)(1.0 - c->beta1);
    u->w1_complement = 1.0f - u->w1;
    u->b2 = (float)c->beta2;
    u->c2 = (float)(1.0 - c->beta2);
    u->eps = (float)(c->eps * sqrt(bc2));
    u->wd = (float)c->weight_decay;
    u->decay = decoupled ? (float)(1.0 - lr * c->weight_decay) : 1.0f;
    u->l2 = c->kind != NNRT_OPT_ADAMW && c->weight_decay != 0;
    u->small_lerp = fabs(1.0 - c->beta1) < 0.5;
}

static inline __attribute__((always_inline)) void adam_range(const NnrtOptConfig *c, NnrtOptState *st, float *p, const float *g,
                       int64_t lo, int64_t hi, double lr) {
    NnrtUpdate u;
    adam_scalars(c, st, lr, &u);
    const float neg_step = u.neg_step, w1 = u.w1, b2 = u.b2, c2 = u.c2;
    const float eps = u.eps, wd = u.wd, decay = u.decay;
    const int decoupled = c->kind == NNRT_OPT_ADAMW && c->weight_decay != 0;
    const int l2 = u.l2, small = u.small_lerp;
    float *m = st->buf[0], *v = st->buf[1];
#define ADAM_CASE(A, L, S) \
    adam_loop(p, g, m, v, lo, hi, neg_step, w1, b2, c2, eps, wd, decay, A, L, S)
    if (small) {
        if (decoupled) ADAM_CASE(1, 0, 1);
        else if (l2) ADAM_CASE(0, 1, 1);
        else ADAM_CASE(0, 0, 1);
    } else {
        if (decoupled) ADAM_CASE(1, 0, 0);
        else if (l2) ADAM_CASE(0, 1, 0);
        else ADAM_CASE(0, 0, 0);
    }
#undef ADAM_CASE
}

/* torch.optim.RMSprop (centered=False):
 *   g += wd*p; sq = alpha*sq + (1-alpha)*g*g; avg = sqrt(sq) + eps
 *   momentum: buf = mu*buf + g/avg; p -= lr*buf      else: p -= lr * g/avg                   */
static inline __attribute__((always_inline)) void rmsprop_range(const NnrtOptConfig *c, NnrtOptState *st, float *p, const float *g,
                          int64_t lo, int64_t hi, double lr) {
    const float alpha = (float)c->alpha, c1 = (float)(1.0 - c->alpha), eps = (float)c->eps;
    const float wd = (float)c->weight_decay, mu = (float)c->momentum, neg_lr = (float)-lr;
    float *sq = st->buf[0], *buf = st->buf[1];
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        if (c->weight_decay != 0) gi = gi + wd * p[i];
        sq[i] = sq[i] * alpha;
        sq[i] = sq[i] + c1 * gi * gi;
        float avg = sqrtf(sq[i]) + eps;
        if (c->momentum != 0) {
            buf[i] = buf[i] * mu;
            buf[i] = buf[i] + gi / avg;
            p[i] = p[i] + neg_lr * buf[i];
        } else {
            p[i] = p[i] + neg_lr * gi / avg;
        }
    }
}

/* The update is element-wise, so any split of the parameters gives the same bytes. Each large
 * tensor is split across the thread pool in blocks of 4 rows (dims[0]) — the row blocks in which
 * the generated weight-gradient kernels split dW — so each thread mostly updates the rows whose
 * gradient it has just written, while they are in its own cache. The chunk loops are compiled for
 * AVX-512 / AVX2 / baseline with the best picked at load time (-ffp-contract=off keeps every
 * clone rounding each operation the same way). */
enum { OPTIM_ROWS = 4, OPTIM_PARALLEL_MIN = 1 << 14 };

typedef struct OptimJob {
    const NnrtOptConfig *c;
    NnrtOptState *st;
    float *params;
    const float *grads;
    double lr;
    int64_t offset, size, block; /* the tensor, and elements per block of rows */
} OptimJob;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define OPTIM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OPTIM_CLONES
#endif

/* Blocks [begin, end) of one tensor. */
OPTIM_CLONES static void optim_blocks(void *ctx, int64_t begin, int64_t end) {
    const OptimJob *j = ctx;
    int64_t lo = j->offset + begin * j->block, hi = j->offset + end * j->block;
    if (hi > j->offset + j->size) hi = j->offset + j->size;
    switch (j->c->kind) {
    case NNRT_OPT_SGD: sgd_range(j->c, j->st, j->params, j->grads, lo, hi, j->lr); break;
    case NNRT_OPT_ADAM:
    case NNRT_OPT_ADAMW: adam_range(j->c, j->st, j->params, j->grads, lo, hi, j->lr); break;
    case NNRT_OPT_RMSPROP: rmsprop_range(j->c, j->st, j->params, j->grads, lo, hi, j->lr); break;
    }
}

void nnrt_optim_step(const NnrtOptConfig *c, NnrtOptState *st, const NnrtModel *m, float *params,
                     const float *grads, double lr) {
    st->step++;
    for (int32_t t = 0; t < m->param_tensor_count; t++) {
        const NnrtParam *pp = &m->params[t];
        if (!pp->trainable || pp->size == 0) continue;
        int64_t rows = pp->rank > 0 && pp->dims[0] > 0 ? pp->dims[0] : 1;
        OptimJob job = {c, st, params, grads, lr, pp->offset, pp->size, pp->size / rows * OPTIM_ROWS};
        int64_t blocks = (rows + OPTIM_ROWS - 1) / OPTIM_ROWS;
        if (pp->size < OPTIM_PARALLEL_MIN) optim_blocks(&job, 0, blocks);
        else nnrt_parallel_for(blocks, optim_blocks, &job);
    }
}

int nnrt_optim_fusable(const NnrtOptConfig *c, const NnrtModel *m) {
    return m->train_step_update && (c->kind == NNRT_OPT_ADAM || c->kind == NNRT_OPT_ADAMW);
}

void nnrt_optim_fused_args(const NnrtOptConfig *c, NnrtOptState *st, double lr, NnrtUpdate *u) {
    st->step++;
    adam_scalars(c, st, lr, u);
}

double nnrt_clip_grads(const NnrtModel *m, float *grads, double max_norm) {
    double sum = 0;
    for (int32_t t = 0; t < m->param_tensor_count; t++) {
        const NnrtParam *pp = &m->params[t];
        if (!pp->trainable) continue;
        for (int64_t i = pp->offset; i < pp->offset + pp->size; i++)
            sum += (double)grads[i] * (double)grads[i];
    }
    double norm = sqrt(sum);
    /* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied when < 1 */
    double coef = max_norm / (norm + 1e-6);
    if (max_norm > 0 && coef < 1.0) {
        float f = (float)coef;
        for (int32_t t = 0; t < m->param_tensor_count; t++) {
            const NnrtParam *pp = &m->params[t];
            if (!pp->trainable) continue;
            for (int64_t i = pp->offset; i < pp->offset + pp->size; i++) grads[i] *= f;
        }
    }
    return norm;
}
