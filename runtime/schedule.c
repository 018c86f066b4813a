/* schedule.c — learning-rate schedules, evaluated once per epoch (e is 0-based, E = --epochs).
 *
 *   constant                  lr
 *   step(every, gamma=0.1)    lr * gamma^floor(e / every)                 (torch StepLR)
 *   cosine(warmup=0)          e < W: lr * (e + 1) / W                      (linear warm-up)
 *                             else:  lr * (1 + cos(pi * (e - W) / (E - W))) / 2
 *                                                              (torch CosineAnnealingLR, T_max = E - W)
 * The rate depends only on (e, E), so a resumed run uses the same rates as an uninterrupted one.
 */
#include "nnrt_internal.h"

#include <math.h>
#include <string.h>

int nnrt_schedule_parse(const char *text, const char *what, NnrtSchedule *out) {
    NnrtSpec s;
    if (nnrt_spec_parse(text, what, &s) != 0) return -1;
    memset(out, 0, sizeof *out);
    int rc = -1;
    NnrtArgVal v[2];
    if (strcmp(s.name, "constant") == 0) {
        if (nnrt_spec_bind(&s, NULL, 0, v) != 0) goto done;
        out->kind = NNRT_SCHED_CONSTANT;
    } else if (strcmp(s.name, "step") == 0) {
        static const NnrtArgDef d[] = {{"every", NNRT_ARG_INT}, {"gamma", NNRT_ARG_NUM}};
        if (nnrt_spec_bind(&s, d, 2, v) != 0) goto done;
        if (!v[0].set || v[0].i < 1) {
            nnrt_error("%s: step() needs every=N with N >= 1 epochs, e.g. step(every=10, gamma=0.1)",
                       what);
            goto done;
        }
        out->kind = NNRT_SCHED_STEP;
        out->every = v[0].i;
        out->gamma = v[1].set ? v[1].num : 0.1;
        if (!(out->gamma > 0)) {
            nnrt_error("%s: step(gamma=%g): gamma must be positive", what, out->gamma);
            goto done;
        }
    } else if (strcmp(s.name, "cosine") == 0) {
        static const NnrtArgDef d[] = {{"warmup", NNRT_ARG_INT}};
        if (nnrt_spec_bind(&s, d, 1, v) != 0) goto done;
        out->kind = NNRT_SCHED_COSINE;
        out->warmup = v[0].set ? v[0].i : 0;
        if (out->warmup < 0) {
            nnrt_error("%s: cosine(warmup=%lld): warmup must not be negative", what,
                       (long long)out->warmup);
            goto done;
        }
    } else {
        static const char *const names[] = {"constant", "step", "cosine"};
        const char *sug = nnrt_suggest(s.name, names, 3);
        if (sug) nnrt_error("%s: unknown schedule '%s'; did you mean '%s'?", what, s.name, sug);
        else nnrt_error("%s: unknown schedule '%s' (expected constant, step(every, gamma) or "
                        "cosine(warmup))", what, s.name);
        goto done;
    }
    rc = 0;
done:
    nnrt_spec_free(&s);
    return rc;
}

void nnrt_schedule_format(const NnrtSchedule *s, char *out, size_t cap) {
    char g[40];
    switch (s->kind) {
    case NNRT_SCHED_CONSTANT: snprintf(out, cap, "constant"); break;
    case NNRT_SCHED_STEP:
        nnrt_fmt_double(g, s->gamma);
        snprintf(out, cap, "step(every=%lld, gamma=%s)", (long long)s->every, g);
        break;
    case NNRT_SCHED_COSINE: snprintf(out, cap, "cosine(warmup=%lld)", (long long)s->warmup); break;
    }
}

double nnrt_schedule_lr(const NnrtSchedule *s, double base_lr, int64_t e, int64_t total) {
    switch (s->kind) {
    case NNRT_SCHED_CONSTANT: return base_lr;
    case NNRT_SCHED_STEP: return base_lr * pow(s->gamma, (double)(e / s->every));
    case NNRT_SCHED_COSINE: {
        const double pi = 3.14159265358979323846;
        if (e < s->warmup) return base_lr * (double)(e + 1) / (double)s->warmup;
        int64_t span = total - s->warmup;
        if (span <= 0) return base_lr;
        return base_lr * 0.5 * (1.0 + cos(pi * (double)(e - s->warmup) / (double)span));
    }
    }
    return base_lr;
}
