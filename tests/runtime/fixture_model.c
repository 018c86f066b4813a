/* fixture_model.c — hand-written model descriptors standing in for nnc's generated code.
 *
 * Linked with libnnrt.a exactly as nnc links a model (the archive supplies main), this gives
 * real model executables for the runtime tests without the compiler. One source, three builds:
 *
 *   default               multinomial logistic regression: input float[2,2] (4 values) ->
 *                         dense(3) -> cross_entropy with target class[3]; metric accuracy;
 *                         predict prints probabilities. Also a non-trainable buffer
 *                         `stats.seen` [1] that counts training examples (like running stats).
 *   FIXTURE_BAD_GRAD      the same, but the double-precision backward scales the bias gradient
 *                         by 1.5 — gradcheck must catch it.
 *   FIXTURE_REGRESSION    linear regression: input float[3] -> dense(2) -> mse with target
 *                         float[2]; metrics mae, rmse; predict prints values.
 *
 * Forward and backward are written by hand once, as a macro over the element type, so the float
 * and double twins are the same code. Legend: n examples, K inputs, C outputs.
 */
#include <math.h>
#include <string.h>

#include "nnrt.h"

#ifndef FIXTURE_DATA_DIR
#define FIXTURE_DATA_DIR "."
#endif

#ifdef FIXTURE_REGRESSION
#define K 3
#define C 2
#else
#define K 4
#define C 3
#endif

#ifdef FIXTURE_BAD_GRAD
#define BIAS_GRAD_FACTOR_F64 1.5
#else
#define BIAS_GRAD_FACTOR_F64 1.0
#endif

/* parameter layout: weight [C,K] at 0, bias [C] at C*K, (classifier) seen [1] after */
#define W_OFF 0
#define B_OFF (C * K)
#define SEEN_OFF (C * K + C)

/* z [n,C] = x [n,K] W^T + b; the workspace holds z */
#define FORWARD(T, params, x, n, z)                                                                \
    for (int64_t e = 0; e < (n); e++)                                                              \
        for (int c = 0; c < C; c++) {                                                              \
            T acc = (params)[B_OFF + c];                                                           \
            for (int k = 0; k < K; k++) acc += (params)[W_OFF + c * K + k] * (x)[e * K + k];       \
            (z)[e * C + c] = acc;                                                                  \
        }

#ifndef FIXTURE_REGRESSION
/* cross_entropy: loss_e = logsumexp(z_e) - z_e[y_e]; dz = (softmax(z) - onehot(y)) / N */
#define CLASSIFIER_STEP(T, EXP, LOG, name, bias_factor)                                            \
    static void name(T *params, T *grads, const T *x, const void *yv, void *ws, int64_t n,         \
                     uint64_t seed, double *sums, const NnrtShard *shard) {                        \
        (void)seed;                                                                                \
        const int64_t N = shard->total; /* the mean is over the global batch */                   \
        const int32_t *y = yv;                                                                     \
        T *z = ws;                                                                                 \
        FORWARD(T, params, x, n, z)                                                                \
        memset(grads, 0, sizeof(T) * (C * K + C + 1));                                             \
        double loss = 0, correct = 0;                                                              \
        for (int64_t e = 0; e < n; e++) {                                                          \
            T *ze = z + e * C, mx = ze[0];                                                         \
            int arg = 0;                                                                           \
            for (int c = 1; c < C; c++)                                                            \
                if (ze[c] > mx) mx = ze[c], arg = c;                                               \
            T s = 0;                                                                               \
            for (int c = 0; c < C; c++) s += EXP(ze[c] - mx);                                      \
            loss += (double)(LOG(s) + mx - ze[y[e]]);                                              \
            correct += arg == y[e];                                                                \
            for (int c = 0; c < C; c++) {                                                          \
                T dz = (EXP(ze[c] - mx) / s - (c == y[e] ? 1 : 0)) / (T)N;                         \
                grads[B_OFF + c] += (T)(bias_factor) * dz;                                         \
                for (int k = 0; k < K; k++) grads[W_OFF + c * K + k] += dz * x[e * K + k];         \
            }                                                                                      \
        }                                                                                          \
        params[SEEN_OFF] += (T)n; /* a buffer the step updates, as batchnorm would */              \
        sums[0] = loss;                                                                            \
        sums[1] = correct;                                                                         \
    }
CLASSIFIER_STEP(float, expf, logf, step_f32, 1.0)
CLASSIFIER_STEP(double, exp, log, step_f64, BIAS_GRAD_FACTOR_F64)

static void eval_f32(const float *params, const float *x, const void *yv, void *ws, int64_t n,
                     double *sums) {
    const int32_t *y = yv;
    float *z = ws;
    FORWARD(float, params, x, n, z)
    double loss = 0, correct = 0;
    for (int64_t e = 0; e < n; e++) {
        float *ze = z + e * C, mx = ze[0], s = 0;
        int arg = 0;
        for (int c = 1; c < C; c++)
            if (ze[c] > mx) mx = ze[c], arg = c;
        for (int c = 0; c < C; c++) s += expf(ze[c] - mx);
        loss += (double)(logf(s) + mx - ze[y[e]]);
        correct += arg == y[e];
    }
    sums[0] = loss;
    sums[1] = correct;
}

static void infer_f32(const float *params, const float *x, void *ws, int64_t n, float *out) {
    float *z = ws;
    FORWARD(float, params, x, n, z)
    for (int64_t e = 0; e < n; e++) {
        float *ze = z + e * C, mx = ze[0], s = 0;
        for (int c = 1; c < C; c++) mx = ze[c] > mx ? ze[c] : mx;
        for (int c = 0; c < C; c++) s += expf(ze[c] - mx);
        for (int c = 0; c < C; c++) out[e * C + c] = expf(ze[c] - mx) / s;
    }
}

static const NnrtParam params[] = {
    {"linear.weight", 2, {C, K}, W_OFF, C * K, NNRT_INIT_GLOROT_UNIFORM, K, C, 1},
    {"linear.bias", 1, {C}, B_OFF, C, NNRT_INIT_ZEROS, K, C, 1},
    {"stats.seen", 1, {1}, SEEN_OFF, 1, NNRT_INIT_ZEROS, 0, 0, 0},
};
static const char *const metric_names[] = {"accuracy"};
static const int32_t metric_reduce[] = {NNRT_METRIC_MEAN};

const NnrtModel nnrt_model = {
    .abi_version = NNRT_ABI_VERSION,
    .name = "fixture",
    .source_path = FIXTURE_DATA_DIR "/fixture.nn",
    .source_dir = FIXTURE_DATA_DIR,
    .source_hash = "0123456789abcdef",
    .summary = "layer   op     output  params\nlinear  dense  [3]     15\n",
    .param_count = C * K + C + 1,
    .param_tensor_count = 3,
    .params = params,
    .input_kind = NNRT_INPUT_FLOAT,
    .input_name = "x",
    .input_rank = 2,
    .input_dims = {2, 2},
    .input_size = K,
    .target_kind = NNRT_TARGET_CLASS,
    .target_name = "label",
    .target_classes = C,
    .target_rank = 0,
    .target_size = 1,
    .loss_name = "cross_entropy",
    .metric_count = 1,
    .metric_names = metric_names,
    .metric_reduce = metric_reduce,
    .output_kind = NNRT_OUTPUT_PROBABILITIES,
    .output_size = C,
    .workspace_fixed = 0,
    .workspace_per_example = C,
    .defaults = {.data = "csv(\"train.csv\", target=\"label\")",
                 .validate = "csv(\"valid.csv\", target=\"label\")",
                 .optimizer = "sgd(lr=0.5, momentum=0.9, nesterov=false, weight_decay=0)",
                 .schedule = NULL, .epochs = 3, .batch = 8, .seed = 42},
    .train_step = step_f32,
    .eval_step = eval_f32,
    .infer = infer_f32,
    .train_step_f64 = step_f64,
};

#else /* FIXTURE_REGRESSION */

/* mse: loss_e = mean_c (z - t)^2; dz = 2 (z - t) / (C N); metrics mae, rmse (per element) */
#define REGRESSION_STEP(T, name)                                                                   \
    static void name(T *params, T *grads, const T *x, const void *yv, void *ws, int64_t n,         \
                     uint64_t seed, double *sums, const NnrtShard *shard) {                        \
        (void)seed;                                                                                \
        const int64_t N = shard->total; /* the mean is over the global batch */                   \
        const T *t = yv;                                                                           \
        T *z = ws;                                                                                 \
        FORWARD(T, params, x, n, z)                                                                \
        memset(grads, 0, sizeof(T) * (C * K + C));                                                 \
        double loss = 0, abs_err = 0;                                                              \
        for (int64_t e = 0; e < n; e++)                                                            \
            for (int c = 0; c < C; c++) {                                                          \
                T d = z[e * C + c] - t[e * C + c];                                                 \
                loss += (double)(d * d) / C;                                                       \
                abs_err += fabs((double)d) / C;                                                    \
                T dz = 2 * d / (T)(C * N);                                                         \
                grads[B_OFF + c] += dz;                                                            \
                for (int k = 0; k < K; k++) grads[W_OFF + c * K + k] += dz * x[e * K + k];         \
            }                                                                                      \
        sums[0] = loss;                                                                            \
        sums[1] = abs_err;                                                                         \
        sums[2] = loss;                                                                            \
    }
REGRESSION_STEP(float, step_f32)
REGRESSION_STEP(double, step_f64)

static void eval_f32(const float *params, const float *x, const void *yv, void *ws, int64_t n,
                     double *sums) {
    const float *t = yv;
    float *z = ws;
    FORWARD(float, params, x, n, z)
    double loss = 0, abs_err = 0;
    for (int64_t e = 0; e < n; e++)
        for (int c = 0; c < C; c++) {
            double d = (double)z[e * C + c] - (double)t[e * C + c];
            loss += d * d / C;
            abs_err += fabs(d) / C;
        }
    sums[0] = loss;
    sums[1] = abs_err;
    sums[2] = loss;
}

static void infer_f32(const float *params, const float *x, void *ws, int64_t n, float *out) {
    (void)ws;
    FORWARD(float, params, x, n, out)
}

static const NnrtParam params[] = {
    {"lin.weight", 2, {C, K}, W_OFF, C * K, NNRT_INIT_GLOROT_UNIFORM, K, C, 1},
    {"lin.bias", 1, {C}, B_OFF, C, NNRT_INIT_ZEROS, K, C, 1},
};
static const char *const metric_names[] = {"mae", "rmse"};
static const int32_t metric_reduce[] = {NNRT_METRIC_MEAN, NNRT_METRIC_ROOT_MEAN};

const NnrtModel nnrt_model = {
    .abi_version = NNRT_ABI_VERSION,
    .name = "fixture_regression",
    .source_path = FIXTURE_DATA_DIR "/fixture_regression.nn",
    .source_dir = FIXTURE_DATA_DIR,
    .source_hash = "fedcba9876543210",
    .summary = NULL,
    .param_count = C * K + C,
    .param_tensor_count = 2,
    .params = params,
    .input_kind = NNRT_INPUT_FLOAT,
    .input_name = "x",
    .input_rank = 1,
    .input_dims = {K},
    .input_size = K,
    .target_kind = NNRT_TARGET_FLOAT,
    .target_name = "y",
    .target_classes = 0,
    .target_rank = 1,
    .target_dims = {C},
    .target_size = C,
    .loss_name = "mse",
    .metric_count = 2,
    .metric_names = metric_names,
    .metric_reduce = metric_reduce,
    .output_kind = NNRT_OUTPUT_VALUES,
    .output_size = C,
    .workspace_fixed = 0,
    .workspace_per_example = C,
    .defaults = {.data = "csv(\"reg_train.csv\", target=\"y0,y1\", standardize=true)",
                 .validate = "split(0.25)",
                 .optimizer = "adam(lr=0.05, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0)",
                 .schedule = "cosine(warmup=1)", .epochs = 4, .batch = 16, .seed = 7},
    .train_step = step_f32,
    .eval_step = eval_f32,
    .infer = infer_f32,
    .train_step_f64 = step_f64,
};
#endif
