/* fixture_lm.c — a hand-written byte-level language model descriptor for the runtime tests of
 * text() and tokens() data (and generate): input int[4] token ids, target class[4, 256], a
 * bigram table: the logits at position t are row x[t] of `bigram.weight` [256, 256]. So
 * position t sees only its own token: causal, as generate assumes. cross_entropy is the mean
 * over the 4 positions per example, accuracy likewise. Linked with libnnrt.a like nnc's output.
 */
#include <math.h>
#include <string.h>

#include "nnrt.h"

#ifndef FIXTURE_DATA_DIR
#define FIXTURE_DATA_DIR "."
#endif

#define T 4
#define V 256

/* z [n, T, V] = W[x[e, t]] */
#define LM_FORWARD(TY, params, x, n, z)                                                            \
    for (int64_t p = 0; p < (n) * T; p++) memcpy((z) + p * V, (params) + (int64_t)(x)[p] * V, sizeof(TY) * V);

/* loss of one position: logsumexp(z) - z[y]; dz = (softmax(z) - onehot(y)) / (T N) */
#define LM_STEP(TY, EXP, LOG, name)                                                                \
    static void name(TY *params, TY *grads, const TY *x, const void *yv, void *ws, int64_t n,      \
                     uint64_t seed, double *sums, const NnrtShard *shard) {                        \
        (void)seed;                                                                                \
        const int32_t *y = yv;                                                                     \
        TY *z = ws;                                                                                \
        LM_FORWARD(TY, params, x, n, z)                                                            \
        memset(grads, 0, sizeof(TY) * V * V);                                                      \
        double loss = 0, correct = 0;                                                              \
        for (int64_t p = 0; p < n * T; p++) {                                                      \
            TY *zp = z + p * V, mx = zp[0], s = 0;                                                 \
            int arg = 0;                                                                           \
            for (int c = 1; c < V; c++)                                                            \
                if (zp[c] > mx) mx = zp[c], arg = c;                                               \
            for (int c = 0; c < V; c++) s += EXP(zp[c] - mx);                                      \
            loss += (double)(LOG(s) + mx - zp[y[p]]) / T;                                          \
            correct += (double)(arg == y[p]) / T;                                                  \
            TY *g = grads + (int64_t)x[p] * V;                                                     \
            for (int c = 0; c < V; c++)                                                            \
                g[c] += (EXP(zp[c] - mx) / s - (c == y[p] ? 1 : 0)) / (TY)(T * shard->total);      \
        }                                                                                          \
        sums[0] = loss;                                                                            \
        sums[1] = correct;                                                                         \
    }
LM_STEP(float, expf, logf, step_f32)
LM_STEP(double, exp, log, step_f64)

static void eval_f32(const float *params, const float *x, const void *yv, void *ws, int64_t n,
                     double *sums) {
    const int32_t *y = yv;
    float *z = ws;
    LM_FORWARD(float, params, x, n, z)
    double loss = 0, correct = 0;
    for (int64_t p = 0; p < n * T; p++) {
        float *zp = z + p * V, mx = zp[0], s = 0;
        int arg = 0;
        for (int c = 1; c < V; c++)
            if (zp[c] > mx) mx = zp[c], arg = c;
        for (int c = 0; c < V; c++) s += expf(zp[c] - mx);
        loss += (double)(logf(s) + mx - zp[y[p]]) / T;
        correct += (double)(arg == y[p]) / T;
    }
    sums[0] = loss;
    sums[1] = correct;
}

/* one softmax per position: [n, T, V] */
static void infer_f32(const float *params, const float *x, void *ws, int64_t n, float *out) {
    (void)ws;
    LM_FORWARD(float, params, x, n, out)
    for (int64_t p = 0; p < n * T; p++) {
        float *o = out + p * V, mx = o[0], s = 0;
        for (int c = 1; c < V; c++) mx = o[c] > mx ? o[c] : mx;
        for (int c = 0; c < V; c++) s += o[c] = expf(o[c] - mx);
        for (int c = 0; c < V; c++) o[c] /= s;
    }
}

static const NnrtParam params[] = {
    {"bigram.weight", 2, {V, V}, 0, V * V, NNRT_INIT_GLOROT_UNIFORM, V, V, 1},
};
static const char *const metric_names[] = {"accuracy"};
static const int32_t metric_reduce[] = {NNRT_METRIC_MEAN};

const NnrtModel nnrt_model = {
    .abi_version = NNRT_ABI_VERSION,
    .name = "fixture_lm",
    .source_path = FIXTURE_DATA_DIR "/fixture_lm.nn",
    .source_dir = FIXTURE_DATA_DIR,
    .source_hash = "00112233445566ff",
    .summary = NULL,
    .param_count = V * V,
    .param_tensor_count = 1,
    .params = params,
    .input_kind = NNRT_INPUT_INT,
    .input_name = "x",
    .input_rank = 1,
    .input_dims = {T},
    .input_size = T,
    .input_vocab = V,
    .target_kind = NNRT_TARGET_CLASS,
    .target_name = "y",
    .target_classes = V,
    .target_rank = 1,
    .target_dims = {T},
    .target_size = T,
    .loss_name = "cross_entropy",
    .metric_count = 1,
    .metric_names = metric_names,
    .metric_reduce = metric_reduce,
    .output_kind = NNRT_OUTPUT_PROBABILITIES,
    .output_size = T * V,
    .workspace_fixed = 0,
    .workspace_per_example = T * V,
    .defaults = {.data = "text(\"lm.txt\", context=4, stride=4)",
                 .validate = "split(0.25, shuffle=true)",
                 .optimizer = "adam(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0)",
                 .schedule = NULL, .epochs = 3, .batch = 8, .seed = 1},
    .train_step = step_f32,
    .eval_step = eval_f32,
    .infer = infer_f32,
    .train_step_f64 = step_f64,
};
