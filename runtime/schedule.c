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

/* Signatures, defaults and ranges are the settings table's (nnrt_settings.h). */
int nnrt_schedule_parse(const char *text, const char *what, NnrtSchedule *out) {
    NnrtSpec s;
    if (nnrt_spec_parse(text, what, &s) != 0) return -1;
    memset(out, 0, sizeof *out);
    int rc = -1;
    NnrtArgVal v[NNRT_SPEC_MAX_ARGS];
    const NnrtSettingForm *f = nnrt_spec_form(&s, NNRT_GROUP_SCHEDULE, "schedule");
    if (!f || nnrt_spec_bind(&s, f, 0, v) != 0) goto done;
    if (strcmp(f->name, "step") == 0) {
        out->kind = NNRT_SCHED_STEP;
        out->every = v[0].i;
        out->gamma = v[1].num;
    } else if (strcmp(f->name, "cosine") == 0) {
        out->kind = NNRT_SCHED_COSINE;
        out->warmup = v[0].i;
    } else {
        out->kind = NNRT_SCHED_CONSTANT;
    }
    rc = 0;
done:
    nnrt_spec_free(&s);
    return rc;
}

/* The same canonical text nnc writes for a train block's schedule. */
void nnrt_schedule_format(const NnrtSchedule *s, char *out, size_t cap) {
    static const char *const names[] = {"constant", "step", "cosine"};
    const NnrtSettingForm *f = nnrt_setting_form(NNRT_GROUP_SCHEDULE, names[s->kind]);
    NnrtArgVal v[NNRT_SETTING_MAX_ARGS] = {{0}};
    if (s->kind == NNRT_SCHED_STEP) {
        v[0] = (NnrtArgVal){.set = 1, .num = (double)s->every, .i = s->every};
        v[1] = (NnrtArgVal){.set = 1, .num = s->gamma};
    } else if (s->kind == NNRT_SCHED_COSINE) {
        v[0] = (NnrtArgVal){.set = 1, .num = (double)s->warmup, .i = s->warmup};
    }
    nnrt_setting_format_call(f, v, out, cap);
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
