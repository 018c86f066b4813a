/* schedule.c — learning-rate schedules, evaluated before every optimizer step.
 *
 * Step s (0-based, counted over the whole run) of an epoch of S steps happens at the fractional
 * epoch t = s / S (epoch e's step k: t = e + k/S); E = --epochs, N = E * S the run's steps.
 *
 *   constant                   lr
 *   step(every, gamma=0.1)     lr * gamma^floor(t / every)     (torch StepLR, every in epochs,
 *                                                                may be a fraction: 0.5)
 *   cosine(warmup=0)           t < W: lr * min(1, (s + 1) / (W S))   (linear warm-up over W epochs,
 *                                                                     W may be a fraction)
 *                              else:  lr * (1 + cos(pi (t - W) / (E - W))) / 2
 *                                                              (torch CosineAnnealingLR, T_max = E - W)
 *   onecycle(max_lr, pct=0.3, div_factor=25, final_div_factor=1e4)
 *                              torch OneCycleLR(max_lr, total_steps=N, pct_start=pct,
 *                              anneal_strategy="cos", three_phase=False): the optimizer's lr is
 *                              not used; from max_lr/div_factor up to max_lr over the first
 *                              pct N - 1 steps, then down to max_lr/div_factor/final_div_factor at
 *                              step N - 1, both halves cosine. Momentum is not cycled
 *                              (cycle_momentum=False).
 * With one step per epoch (S = 1) step and cosine give v1's per-epoch rates. The rate depends
 * only on (s, S, E), so a resumed run uses the same rates as an uninterrupted one.
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
        out->every = v[0].num;
        out->gamma = v[1].num;
    } else if (strcmp(f->name, "cosine") == 0) {
        out->kind = NNRT_SCHED_COSINE;
        out->warmup = v[0].num;
    } else if (strcmp(f->name, "onecycle") == 0) {
        out->kind = NNRT_SCHED_ONECYCLE;
        out->max_lr = v[0].num;
        out->pct = v[1].num;
        out->div_factor = v[2].num;
        out->final_div_factor = v[3].num;
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
    static const char *const names[] = {"constant", "step", "cosine", "onecycle"};
    const NnrtSettingForm *f = nnrt_setting_form(NNRT_GROUP_SCHEDULE, names[s->kind]);
    NnrtArgVal v[NNRT_SETTING_MAX_ARGS] = {{0}};
    if (s->kind == NNRT_SCHED_STEP) {
        v[0] = (NnrtArgVal){.set = 1, .num = s->every};
        v[1] = (NnrtArgVal){.set = 1, .num = s->gamma};
    } else if (s->kind == NNRT_SCHED_COSINE) {
        v[0] = (NnrtArgVal){.set = 1, .num = s->warmup};
    } else if (s->kind == NNRT_SCHED_ONECYCLE) {
        v[0] = (NnrtArgVal){.set = 1, .num = s->max_lr};
        v[1] = (NnrtArgVal){.set = 1, .num = s->pct};
        v[2] = (NnrtArgVal){.set = 1, .num = s->div_factor};
        v[3] = (NnrtArgVal){.set = 1, .num = s->final_div_factor};
    }
    nnrt_setting_format_call(f, v, out, cap);
}

static const double pi = 3.14159265358979323846;

/* torch's _annealing_cos: from `start` (pct 0) to `end` (pct 1) along half a cosine. */
static double anneal_cos(double start, double end, double pct) {
    double cos_out = cos(pi * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

/* OneCycleLR.get_lr for step_num s of n, phase by phase as torch walks them. */
static double onecycle_lr(const NnrtSchedule *c, int64_t s, int64_t n) {
    double initial = c->max_lr / c->div_factor, min_lr = initial / c->final_div_factor;
    const double end_step[2] = {c->pct * (double)n - 1, (double)n - 1};
    const double start_lr[2] = {initial, c->max_lr}, end_lr[2] = {c->max_lr, min_lr};
    double start_step = 0;
    for (int i = 0; i < 2; i++) {
        if ((double)s <= end_step[i] || i == 1) {
            double span = end_step[i] - start_step;
            /* torch divides by zero here (pct * N == 1): the phase is then complete */
            double pct = span != 0 ? ((double)s - start_step) / span : 1.0;
            return anneal_cos(start_lr[i], end_lr[i], pct);
        }
        start_step = end_step[i];
    }
    return min_lr;
}

double nnrt_schedule_lr(const NnrtSchedule *s, double base_lr, int64_t step, int64_t steps,
                        int64_t epochs) {
    if (steps < 1) steps = 1;
    double t = (double)step / (double)steps; /* the fractional epoch */
    switch (s->kind) {
    case NNRT_SCHED_CONSTANT: return base_lr;
    case NNRT_SCHED_STEP:
        /* floor(s / (every S)): exact for integer `every`, where t's rounding could cross a
         * boundary one step early */
        return base_lr * pow(s->gamma, floor((double)step / (s->every * (double)steps)));
    case NNRT_SCHED_COSINE: {
        if (t < s->warmup) {
            double f = (double)(step + 1) / (s->warmup * (double)steps);
            return base_lr * (f < 1 ? f : 1);
        }
        double span = (double)epochs - s->warmup;
        if (span <= 0) return base_lr;
        return base_lr * 0.5 * (1.0 + cos(pi * (t - s->warmup) / span));
    }
    case NNRT_SCHED_ONECYCLE: return onecycle_lr(s, step, epochs * steps);
    }
    return base_lr;
}
