/* test_unit.c — unit tests of the runtime's internals: optimizers, spec parser, schedules,
 * JSON reader, RNG and initialization, csv(text=...) tokenization and vocabularies. `test_unit GROUP` runs one group; exit 1 on any failure.
 *
 * The optimizer expectations come from tests/runtime/optim_reference.py, an independent numpy
 * (float64) implementation of the update rules as PyTorch documents them; the runtime computes in
 * float32, hence the tolerance.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_internal.h"

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol) * (1 + fabs(b_)))) {                                          \
            fprintf(stderr, "%s:%d: %s = %.17g, expected %.17g\n", __FILE__, __LINE__, #a, a_, b_); \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* A two-tensor model: `p` [4] trainable, `buf` [2] a buffer the optimizer must not touch. */
static const NnrtParam optim_params[] = {
    {"p", 1, {4}, 0, 4, NNRT_INIT_ZEROS, 4, 4, 1},
    {"buf", 1, {2}, 4, 2, NNRT_INIT_ONES, 0, 0, 0},
};
static NnrtModel optim_model(void) {
    NnrtModel m;
    memset(&m, 0, sizeof m);
    m.param_count = 6;
    m.param_tensor_count = 2;
    m.params = optim_params;
    return m;
}

static void test_optim(void) {
    static const struct {
        const char *spec;
        double expect[4];
    } cases[] = {
        /* three steps from p0 with the gradients below; values from optim_reference.py */
        {"sgd(lr=0.1, momentum=0.9, weight_decay=0.01)",
         {0.44963038950000001, -1.2173544787499999, 1.8701285679999999, -0.10165195999999997}},
        {"sgd(lr=0.1, momentum=0.9, nesterov=true)",
         {0.42215999999999998, -1.22187, 1.8480799999999999, -0.17144000000000004}},
        {"sgd(0.1)", {0.46499999999999997, -1.2449999999999999, 1.9550000000000001, -0.080000000000000002}},
        {"adam(lr=0.01, weight_decay=0.1)",
         {0.47544937554104005, -1.227252359835131, 1.9715032410963891, 0.0010426799415456916}},
        {"adamw(lr=0.01, weight_decay=0.1)",
         {0.47915577851930657, -1.2346908976271977, 1.968288115782115, 0.0010345108739747439}},
        {"adam(lr=0.1, beta1=0.3, beta2=0.5, eps=1e-3)",
         {0.33145384459030058, -1.2088527003046741, 1.8022498280406027, -0.037815079864017269}},
        {"rmsprop(lr=0.01, alpha=0.9)",
         {0.45317379024374027, -1.2379888393480316, 1.9559849474154667, -0.0040581661994224831}},
        {"rmsprop(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.1)",
         {0.41626276869892836, -1.1869684082744392, 1.9074265649359312, 0.0048223545300944311}},
    };
    static const float grads[3][6] = {{0.1f, -0.2f, 0.3f, -0.4f, 9, 9},
                                      {-0.05f, 0.15f, 0.25f, 1.0f, 9, 9},
                                      {0.3f, 0.0f, -0.1f, 0.2f, 9, 9}};
    NnrtModel m = optim_model();
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        NnrtOptConfig cfg;
        NnrtOptState st;
        CHECK(nnrt_optim_parse(cases[c].spec, "test", &cfg) == 0);
        CHECK(nnrt_optim_state_init(&cfg, m.param_count, &st) == 0);
        float p[6] = {0.5f, -1.25f, 2.0f, 0.0f, 7.0f, 8.0f};
        for (int s = 0; s < 3; s++) nnrt_optim_step(&cfg, &st, &m, p, grads[s], cfg.lr);
        for (int i = 0; i < 4; i++) {
            if (!(fabs(p[i] - cases[c].expect[i]) <= 2e-6 * (1 + fabs(cases[c].expect[i])))) {
                fprintf(stderr, "%s: p[%d] = %.9g, expected %.9g\n", cases[c].spec, i, p[i],
                        cases[c].expect[i]);
                failures++;
            }
        }
        CHECK(p[4] == 7.0f && p[5] == 8.0f); /* the buffer is not trainable */
        CHECK(st.step == 3);
        nnrt_optim_state_free(&st);
    }

    char text[256];
    NnrtOptConfig cfg;
    CHECK(nnrt_optim_parse("adam()", "test", &cfg) == 0);
    nnrt_optim_format(&cfg, text, sizeof text);
    CHECK(strcmp(text, "adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0)") == 0);
    CHECK(nnrt_optim_parse("adamw(lr=1e-3)", "test", &cfg) == 0 && cfg.weight_decay == 0.01);
    CHECK(nnrt_optim_parse("sgd(lr=0.1, momentum=0.9)", "test", &cfg) == 0);
    nnrt_optim_format(&cfg, text, sizeof text);
    CHECK(strcmp(text, "sgd(lr=0.1, momentum=0.9, nesterov=false, weight_decay=0)") == 0);
    CHECK(nnrt_optim_buffer_count(&cfg) == 1);
    /* a bare rmsprop: the settings table's lr=0.01, as in a train block */
    CHECK(nnrt_optim_parse("rmsprop", "test", &cfg) == 0 && cfg.lr == 0.01);
    nnrt_optim_format(&cfg, text, sizeof text);
    CHECK(strcmp(text, "rmsprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0, momentum=0)") == 0);
    CHECK(nnrt_optim_buffer_count(&cfg) == 1);
    CHECK(nnrt_optim_parse("rmsprop(momentum=0.9)", "test", &cfg) == 0 && nnrt_optim_buffer_count(&cfg) == 2);
    CHECK(nnrt_optim_parse("sgd(1)", "test", &cfg) == 0 && nnrt_optim_buffer_count(&cfg) == 0);
    /* errors */
    fprintf(stderr, "--- expected errors follow ---\n");
    CHECK(nnrt_optim_parse("sgd(momentum=0.9)", "test", &cfg) != 0);
    CHECK(nnrt_optim_parse("sgd(lr=0.1, nesterov=true)", "test", &cfg) != 0);
    CHECK(nnrt_optim_parse("adan(lr=0.1)", "test", &cfg) != 0);
    CHECK(nnrt_optim_parse("adam(lrr=0.1)", "test", &cfg) != 0);
    CHECK(nnrt_optim_parse("adam(lr=-1)", "test", &cfg) != 0);
    CHECK(nnrt_optim_parse("adam(beta1=1)", "test", &cfg) != 0);
    CHECK(nnrt_optim_parse("rmsprop(lr=\"fast\")", "test", &cfg) != 0);
    CHECK(nnrt_optim_parse("rmsprop(momentum=1)", "test", &cfg) != 0); /* [0, 1) */
    CHECK(nnrt_optim_parse("adam(eps=0)", "test", &cfg) != 0);        /* positive */

    /* clipping: |g| = 5 -> scaled to norm 1 (torch's 1e-6 guard included) */
    float g[6] = {3, 0, 4, 0, 100, 100};
    double norm = nnrt_clip_grads(&m, g, 1.0);
    CHECK_NEAR(norm, 5.0, 1e-12);
    CHECK_NEAR(g[0], 3.0 / (5.0 + 1e-6), 1e-6);
    CHECK_NEAR(g[2], 4.0 / (5.0 + 1e-6), 1e-6);
    CHECK(g[4] == 100 && g[5] == 100);
    float h[6] = {0.3f, 0, 0.4f, 0, 0, 0};
    nnrt_clip_grads(&m, h, 1.0);
    CHECK(h[0] == 0.3f && h[2] == 0.4f); /* below the threshold: untouched */
}

static void test_spec(void) {
    NnrtSpec s;
    CHECK(nnrt_spec_parse("idx(\"a.gz\", \"b\\\"c\\\\d\", scale=1/255)", "test", &s) == 0);
    CHECK(strcmp(s.name, "idx") == 0 && s.nargs == 3 && s.has_parens);
    CHECK(s.args[0].kind == NNRT_VAL_STR && strcmp(s.args[0].str, "a.gz") == 0 && !s.args[0].key);
    CHECK(strcmp(s.args[1].str, "b\"c\\d") == 0);
    CHECK(strcmp(s.args[2].key, "scale") == 0 && s.args[2].num == 1.0 / 255);
    nnrt_spec_free(&s);
    CHECK(nnrt_spec_parse("  constant ", "test", &s) == 0);
    CHECK(strcmp(s.name, "constant") == 0 && !s.has_parens && s.nargs == 0);
    nnrt_spec_free(&s);
    CHECK(nnrt_spec_parse("f(-(2*3)+1, .5e1, 2 - -1, x=true, y=false,)", "test", &s) == 0);
    CHECK(s.nargs == 5 && s.args[0].num == -5 && s.args[1].num == 5 && s.args[2].num == 3);
    CHECK(s.args[3].kind == NNRT_VAL_BOOL && s.args[3].boolean == 1 && s.args[4].boolean == 0);
    nnrt_spec_free(&s);

    const NnrtSettingForm *step = nnrt_setting_form(NNRT_GROUP_SCHEDULE, "step");
    NnrtArgVal v[2];
    CHECK(nnrt_spec_parse("step(10, gamma=0.5)", "test", &s) == 0);
    CHECK(nnrt_spec_bind(&s, step, 0, v) == 0 && v[0].set && v[0].num == 10 && v[1].num == 0.5);
    nnrt_spec_free(&s);
    CHECK(nnrt_spec_parse("step(3)", "test", &s) == 0);
    CHECK(nnrt_spec_bind(&s, step, 0, v) == 0 && !v[1].set && v[1].num == 0.1); /* the default */
    nnrt_spec_free(&s);

    fprintf(stderr, "--- expected errors follow ---\n");
    static const char *const bad[] = {
        "adam(lr=)", "adam(lr=0.1", "idx(\"a)", "adam(lr=abc)", "foo bar", "adam(lr=1, 2)",
        "adam(lr=1, lr=2)", "", "(1)", "x(1/0)", "x(\"\\n\")", "x(0x10)", "x(1e)",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = nnrt_spec_parse(bad[i], "test", &s);
        if (rc == 0) {
            fprintf(stderr, "spec '%s' parsed but should not\n", bad[i]);
            failures++;
            nnrt_spec_free(&s);
        }
    }
    /* binding errors: unknown key, duplicate through position, wrong type, out of range */
    static const char *const badbind[] = {"step(evry=2)", "step(2, every=3)", "step(\"2\")",
                                          "step(-0.5)", "step(1, 2, 3)", "step(0)", "step()",
                                          "step(1, gamma=0)"};
    for (size_t i = 0; i < sizeof badbind / sizeof *badbind; i++) {
        CHECK(nnrt_spec_parse(badbind[i], "test", &s) == 0);
        CHECK(nnrt_spec_bind(&s, step, 0, v) != 0);
        nnrt_spec_free(&s);
    }

    char buf[40];
    nnrt_fmt_double(buf, 1.0 / 255);
    CHECK(strcmp(buf, "0.00392156862745098") == 0);
    nnrt_fmt_double(buf, 0.1);
    CHECK(strcmp(buf, "0.1") == 0);
    nnrt_fmt_double(buf, 1e-8);
    CHECK(strcmp(buf, "1e-08") == 0);
    static const char *const opts[] = {"--epochs", "--batch", "--lr"};
    CHECK(nnrt_closest("--epoch", opts, 3) == opts[0]);
    CHECK(nnrt_closest("--bacth", opts, 3) == opts[1]);
    CHECK(nnrt_closest("--frobnicate", opts, 3) == NULL);
    CHECK(nnrt_closest("--lr", opts, 3) == NULL); /* an exact match is no suggestion */
}

/* Rates by hand: step s of S per epoch is at epoch t = s / S (schedule.c). */
static void test_schedule(void) {
    NnrtSchedule s;
    const double pi = 3.14159265358979323846, r3 = sqrt(3.0);
    CHECK(nnrt_schedule_parse("constant", "test", &s) == 0);
    CHECK(nnrt_schedule_lr(&s, 0.1, 7, 3, 10) == 0.1);
    CHECK(nnrt_schedule_parse("step(every=2, gamma=0.5)", "test", &s) == 0);
    static const double want[] = {1, 1, 0.5, 0.5, 0.25};
    for (int e = 0; e < 5; e++) CHECK_NEAR(nnrt_schedule_lr(&s, 1.0, e, 1, 5), want[e], 1e-15);
    /* 4 steps per epoch: steps 0..7 are epochs 0 and 1 */
    CHECK(nnrt_schedule_lr(&s, 1.0, 7, 4, 5) == 1.0 && nnrt_schedule_lr(&s, 1.0, 8, 4, 5) == 0.5);
    CHECK(nnrt_schedule_parse("step(0.5, gamma=0.5)", "test", &s) == 0);
    static const double half[] = {1, 1, 0.5, 0.5, 0.25, 0.25, 0.125};
    for (int k = 0; k < 7; k++) CHECK(nnrt_schedule_lr(&s, 1.0, k, 4, 2) == half[k]);
    CHECK(nnrt_schedule_parse("step(3)", "test", &s) == 0 && s.gamma == 0.1 && s.every == 3);
    /* one step per epoch: v1's per-epoch rates */
    CHECK(nnrt_schedule_parse("cosine(warmup=1)", "test", &s) == 0);
    CHECK_NEAR(nnrt_schedule_lr(&s, 2.0, 0, 1, 5), 2.0, 1e-15);
    CHECK_NEAR(nnrt_schedule_lr(&s, 2.0, 1, 1, 5), 2.0, 1e-15);
    CHECK_NEAR(nnrt_schedule_lr(&s, 2.0, 2, 1, 5), 1.0 + cos(pi / 4), 1e-15);
    CHECK_NEAR(nnrt_schedule_lr(&s, 2.0, 4, 1, 5), 1.0 + cos(3 * pi / 4), 1e-15);
    CHECK(nnrt_schedule_parse("cosine", "test", &s) == 0 && s.warmup == 0);
    CHECK(nnrt_schedule_parse("cosine(warmup=2)", "test", &s) == 0);
    CHECK_NEAR(nnrt_schedule_lr(&s, 1.0, 0, 1, 10), 0.5, 1e-15);
    /* warm-up over half an epoch of 4 steps (2 steps), then cosine over the other 1.5 epochs */
    CHECK(nnrt_schedule_parse("cosine(warmup=0.5)", "test", &s) == 0 && s.warmup == 0.5);
    static const double wc[8] = {0.5, 1, 1, (1 + r3 / 2) / 2, (1 + 0.5) / 2, 0.5, (1 - 0.5) / 2,
                                 (1 - r3 / 2) / 2};
    for (int k = 0; k < 8; k++) CHECK_NEAR(nnrt_schedule_lr(&s, 1.0, k, 4, 2), wc[k], 1e-15);
    /* warm-up of 1.2 steps: 1/1.2, then capped at the full rate */
    CHECK(nnrt_schedule_parse("cosine(warmup=0.3)", "test", &s) == 0);
    CHECK_NEAR(nnrt_schedule_lr(&s, 1.0, 0, 4, 2), 1 / 1.2, 1e-15);
    CHECK(nnrt_schedule_lr(&s, 1.0, 1, 4, 2) == 1.0);
    /* onecycle over 8 steps, pct 0.25: phase 1 ends at step 0.25 * 8 - 1 = 1; from 1/25 to 1,
     * then down to 1/25/1e4 at step 7; the optimizer's rate (123) plays no part */
    CHECK(nnrt_schedule_parse("onecycle(1, pct=0.25)", "test", &s) == 0);
    const double lo = 0.04 / 1e4;
    static const double oc_pct[8] = {0, 0, 1.0 / 6, 2.0 / 6, 3.0 / 6, 4.0 / 6, 5.0 / 6, 1};
    CHECK_NEAR(nnrt_schedule_lr(&s, 123, 0, 4, 2), 0.04, 1e-15);
    CHECK_NEAR(nnrt_schedule_lr(&s, 123, 1, 4, 2), 1.0, 1e-15);
    for (int k = 2; k < 8; k++)
        CHECK_NEAR(nnrt_schedule_lr(&s, 123, k, 4, 2), lo + (1 - lo) / 2 * (cos(pi * oc_pct[k]) + 1), 1e-15);
    CHECK_NEAR(nnrt_schedule_lr(&s, 123, 4, 4, 2), lo + (1 - lo) / 2, 1e-15);
    CHECK_NEAR(nnrt_schedule_lr(&s, 123, 7, 4, 2), 4e-6, 1e-18);
    char text[160];
    nnrt_schedule_format(&s, text, sizeof text);
    CHECK(strcmp(text, "onecycle(max_lr=1, pct=0.25, div_factor=25, final_div_factor=10000)") == 0);
    CHECK(nnrt_schedule_parse("step(4, 0.3)", "test", &s) == 0);
    nnrt_schedule_format(&s, text, sizeof text);
    CHECK(strcmp(text, "step(every=4, gamma=0.3)") == 0);
    CHECK(nnrt_schedule_parse("cosine(warmup=0.5)", "test", &s) == 0);
    nnrt_schedule_format(&s, text, sizeof text);
    CHECK(strcmp(text, "cosine(warmup=0.5)") == 0);
    fprintf(stderr, "--- expected errors follow ---\n");
    CHECK(nnrt_schedule_parse("cosin", "test", &s) != 0);
    CHECK(nnrt_schedule_parse("step(gamma=0.5)", "test", &s) != 0);
    CHECK(nnrt_schedule_parse("step(0)", "test", &s) != 0);
    CHECK(nnrt_schedule_parse("onecycle", "test", &s) != 0);
    CHECK(nnrt_schedule_parse("onecycle(0.1, pct=1.5)", "test", &s) != 0);
}

static void test_json(void) {
    const char *text = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                       " \"__metadata__\" : {\"k\":\"v\\u00e9\\n\"}, \"n\": -1.5e3, \"t\": [true, false, null]}";
    NnrtJson j;
    char err[200];
    CHECK(nnrt_json_parse(text, strlen(text), &j, err, sizeof err) == 0);
    const NnrtJson *a = nnrt_json_get(&j, "a");
    CHECK(a && a->kind == NNRT_JSON_OBJ);
    const NnrtJson *shape = a ? nnrt_json_get(a, "shape") : NULL;
    CHECK(shape && shape->nkids == 2 && shape->kids[1].is_int && shape->kids[1].i == 3);
    const NnrtJson *meta = nnrt_json_get(&j, "__metadata__");
    const NnrtJson *k = meta ? nnrt_json_get(meta, "k") : NULL;
    CHECK(k && strcmp(k->str, "v\xc3\xa9\n") == 0);
    const NnrtJson *n = nnrt_json_get(&j, "n");
    CHECK(n && !n->is_int && n->num == -1500);
    nnrt_json_free(&j);

    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    static const char *const bad[] = {"{\"a\":1,}", "[1,2", "{\"a\" 1}", "01", "{\"a\":\"\\ud800\"}",
                                      "\"abc", "{} x", "[1.]", "tru", "{\"a\":\"\x01\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (nnrt_json_parse(bad[i], strlen(bad[i]), &j, err, sizeof err) == 0) {
            fprintf(stderr, "json '%s' parsed but should not\n", bad[i]);
            failures++;
            nnrt_json_free(&j);
        }
    }
    CHECK(nnrt_json_parse(deep, sizeof deep, &j, err, sizeof err) != 0);
    CHECK(strstr(err, "nested too deeply") != NULL);
}

static void test_rng(void) {
    NnrtRng a, b, c;
    nnrt_rng_seed(&a, 42, NNRT_STREAM_INIT, 0);
    nnrt_rng_seed(&b, 42, NNRT_STREAM_INIT, 0);
    nnrt_rng_seed(&c, 42, NNRT_STREAM_INIT, 1);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = nnrt_rng_next(&a), y = nnrt_rng_next(&b), z = nnrt_rng_next(&c);
        same &= x == y;
        differ += x != z;
    }
    CHECK(same && differ > 95);
    double lo = 1, hi = 0;
    for (int i = 0; i < 10000; i++) {
        double u = nnrt_rng_uniform(&a);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        CHECK(nnrt_rng_below(&a, 7) < 7);
    }
    CHECK(lo >= 0 && lo < 0.01 && hi < 1 && hi > 0.99);

    int64_t o1[50], o2[50], o3[50];
    nnrt_shuffle(o1, 50, 5, 0);
    nnrt_shuffle(o2, 50, 5, 0);
    nnrt_shuffle(o3, 50, 5, 1);
    int seen[50] = {0}, moved = 0;
    for (int i = 0; i < 50; i++) {
        CHECK(o1[i] == o2[i]);
        seen[o1[i]]++;
        moved += o1[i] != o3[i];
    }
    for (int i = 0; i < 50; i++) CHECK(seen[i] == 1);
    CHECK(moved > 10); /* another epoch, another order */

    static const NnrtParam ps[] = {
        {"w", 2, {30, 20}, 0, 600, NNRT_INIT_GLOROT_UNIFORM, 20, 30, 1},
        {"h", 1, {50}, 600, 50, NNRT_INIT_HE_UNIFORM, 6, 50, 1},
        {"one", 1, {3}, 650, 3, NNRT_INIT_ONES, 0, 0, 0},
    };
    NnrtModel m;
    memset(&m, 0, sizeof m);
    m.param_count = 653;
    m.param_tensor_count = 3;
    m.params = ps;
    static float f[653], f2[653];
    static double d[653];
    nnrt_init_params(&m, 9, f, NULL);
    nnrt_init_params(&m, 9, f2, NULL);
    nnrt_init_params(&m, 9, NULL, d);
    double bw = sqrt(6.0 / 50), bh = 1.0;
    int in_range = 1, agree = 1;
    double maxabs = 0;
    for (int i = 0; i < 653; i++) {
        agree &= f[i] == f2[i] && f[i] == (float)d[i];
        if (i < 600) in_range &= fabs(d[i]) <= bw, maxabs = fabs(d[i]) > maxabs ? fabs(d[i]) : maxabs;
        else if (i < 650) in_range &= fabs(d[i]) <= bh;
        else in_range &= d[i] == 1.0;
    }
    CHECK(in_range && agree && maxabs > 0.9 * bw);
}

/* `optim-dump`: the runtime's parameters after three steps of each optimizer in
 * optim_reference.py's list, one line per case, for its --check mode. */
static int optim_dump(void) {
    static const char *const specs[] = {
        "sgd(lr=0.1, momentum=0.9, weight_decay=0.01)", "sgd(lr=0.1, momentum=0.9, nesterov=true)",
        "sgd(0.1)", "adam(lr=0.01, weight_decay=0.1)", "adamw(lr=0.01, weight_decay=0.1)",
        "adam(lr=0.1, beta1=0.3, beta2=0.5, eps=1e-3)", "rmsprop(lr=0.01, alpha=0.9)",
        "rmsprop(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.1)"};
    static const float grads[3][6] = {{0.1f, -0.2f, 0.3f, -0.4f, 9, 9},
                                      {-0.05f, 0.15f, 0.25f, 1.0f, 9, 9},
                                      {0.3f, 0.0f, -0.1f, 0.2f, 9, 9}};
    NnrtModel m = optim_model();
    for (size_t c = 0; c < sizeof specs / sizeof *specs; c++) {
        NnrtOptConfig cfg;
        NnrtOptState st;
        if (nnrt_optim_parse(specs[c], "test", &cfg) != 0 ||
            nnrt_optim_state_init(&cfg, m.param_count, &st) != 0)
            return 1;
        float p[6] = {0.5f, -1.25f, 2.0f, 0.0f, 7.0f, 8.0f};
        for (int s = 0; s < 3; s++) nnrt_optim_step(&cfg, &st, &m, p, grads[s], cfg.lr);
        printf("%s|%.9g %.9g %.9g %.9g\n", specs[c], p[0], p[1], p[2], p[3]);
        nnrt_optim_state_free(&st);
    }
    return 0;
}

/* csv(text=...): ids computed by hand from the file below. A model with input int[6] and
 * target class[2], an embedding of 300 ids. */
static NnrtModel text_model(void) {
    NnrtModel m;
    memset(&m, 0, sizeof m);
    m.input_kind = NNRT_INPUT_INT;
    m.input_name = "text";
    m.input_rank = 1;
    m.input_dims[0] = 6;
    m.input_size = 6;
    m.input_vocab = 300;
    m.target_kind = NNRT_TARGET_CLASS;
    m.target_name = "label";
    m.target_classes = 2;
    m.target_rank = 0;
    m.target_size = 1;
    return m;
}

static void check_ids(const NnrtData *d, int64_t e, const float *want, const char *what) {
    for (int64_t t = 0; t < d->input_size; t++)
        if (d->x_f32[e * d->input_size + t] != want[t]) {
            fprintf(stderr, "%s: example %lld position %lld: id %g, expected %g\n", what, (long long)e,
                    (long long)t, d->x_f32[e * d->input_size + t], want[t]);
            failures++;
            return;
        }
}

static void test_text(void) {
    const char *path = "text_unit.csv";
    FILE *f = fopen(path, "w");
    if (!f) {
        CHECK(!"cannot write text_unit.csv");
        return;
    }
    /* quoted cells with a comma, a doubled quote and a newline inside; an empty text; an extra
     * column (id) that text data ignores */
    fputs("id,label,body\n"
          "7,1,\"Ab, c\"\n"
          "8,0,\"the THE cat\nsat\"\"\"\n"
          "9,1,\n"
          "10,0,cat cat dog-the\n", f);
    fclose(f);
    NnrtModel m = text_model();
    NnrtData d;
    /* bytes: id = byte + 1, cut or padded with 0 to T = 6 */
    CHECK(nnrt_data_open(&m, "csv(\"text_unit.csv\", target=\"label\", text=\"body\")", "test",
                         NNRT_ROLE_TRAIN, &d) == 0);
    CHECK(d.count == 4 && !d.words_pending);
    if (d.count == 4) {
        const float b0[6] = {'A' + 1, 'b' + 1, ',' + 1, ' ' + 1, 'c' + 1, 0};
        const float b1[6] = {'t' + 1, 'h' + 1, 'e' + 1, ' ' + 1, 'T' + 1, 'H' + 1};
        const float b2[6] = {0, 0, 0, 0, 0, 0};
        check_ids(&d, 0, b0, "bytes");
        check_ids(&d, 1, b1, "bytes");
        check_ids(&d, 2, b2, "bytes");
        CHECK(d.y_class[0] == 1 && d.y_class[1] == 0 && d.y_class[3] == 0);
    }
    nnrt_data_free(&d);
    /* words: counts over all four texts: the 3, cat 3, dog 1, sat 1, ab 1, c 1. vocab=5 keeps
     * 3 words: ties by bytes, so "cat" (3) before "the" (3), then "ab" (1) first of the ones:
     * ids cat 2, the 3, ab 4; every other word 1 (unknown) */
    CHECK(nnrt_data_open(&m, "csv(\"text_unit.csv\", target=\"label\", text=\"body\", "
                             "tokenize=\"words\", vocab=5)", "test", NNRT_ROLE_TRAIN, &d) == 0);
    CHECK(d.words_pending);
    char *vocab = NULL;
    CHECK(nnrt_text_prepare(&d, NULL, &vocab) == 0);
    CHECK(vocab && strcmp(vocab, "cat\nthe\nab") == 0);
    if (vocab && d.count == 4 && !d.words_pending) {
        const float w0[6] = {4, 1, 0, 0, 0, 0};     /* ab c */
        const float w1[6] = {3, 3, 2, 1, 0, 0};     /* the the cat sat */
        const float w2[6] = {0, 0, 0, 0, 0, 0};     /* (empty) */
        const float w3[6] = {2, 2, 1, 3, 0, 0};     /* cat cat dog the */
        check_ids(&d, 0, w0, "words");
        check_ids(&d, 1, w1, "words");
        check_ids(&d, 2, w2, "words");
        check_ids(&d, 3, w3, "words");
    }
    nnrt_data_free(&d);
    /* the vocabulary of the training part only: split(0.5, shuffle=false) holds out rows 3 and 4,
     * so "dog" and the counts of rows 3-4 do not count: the 2, ab 1, c 1, cat 1, sat 1 */
    CHECK(nnrt_data_open(&m, "csv(\"text_unit.csv\", target=\"label\", text=\"body\", "
                             "tokenize=\"words\", vocab=4)", "test", NNRT_ROLE_TRAIN, &d) == 0);
    NnrtData val;
    NnrtSplit how = {0.5, 0};
    CHECK(nnrt_data_split(&m, &d, &how, &val) == 0);
    free(vocab);
    vocab = NULL;
    CHECK(nnrt_text_prepare(&d, &val, &vocab) == 0);
    CHECK(vocab && strcmp(vocab, "the\nab") == 0);
    if (vocab && val.count == 2) {
        const float v1[6] = {1, 1, 1, 2, 0, 0};     /* cat cat dog the */
        check_ids(&val, 1, v1, "split words");
    }
    /* a stored vocabulary is reused as it is (resume, eval, predict) */
    NnrtData again;
    CHECK(nnrt_data_open(&m, "csv(\"text_unit.csv\", target=\"label\", text=\"body\", "
                             "tokenize=\"words\", vocab=4)", "test", NNRT_ROLE_PREDICT, &again) == 0);
    CHECK(nnrt_text_encode(&again, "dog\ncat") == 0);
    if (again.count == 4) {
        const float a3[6] = {3, 3, 2, 1, 0, 0};
        check_ids(&again, 3, a3, "stored vocabulary");
    }
    /* one that does not fit vocab=N is refused, not read past the embedding */
    nnrt_data_free(&again);
    CHECK(nnrt_data_open(&m, "csv(\"text_unit.csv\", target=\"label\", text=\"body\", "
                             "tokenize=\"words\", vocab=4)", "test", NNRT_ROLE_PREDICT, &again) == 0);
    CHECK(nnrt_text_encode(&again, "a\nb\nc") != 0);
    nnrt_data_free(&again);
    free(vocab);
    nnrt_data_free(&val);
    nnrt_data_free(&d);
    remove(path);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "optim-dump") == 0) return optim_dump();
    static const struct {
        const char *name;
        void (*fn)(void);
    } groups[] = {{"optim", test_optim}, {"spec", test_spec}, {"schedule", test_schedule},
                  {"json", test_json},   {"rng", test_rng},           {"text", test_text}};
    int ran = 0;
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (argc < 2 || strcmp(argv[1], groups[i].name) == 0) {
            groups[i].fn();
            ran++;
        }
    if (!ran) {
        fprintf(stderr, "unknown test group '%s'\n", argv[1]);
        return 2;
    }
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("ok\n");
    return failures ? 1 : 0;
}
