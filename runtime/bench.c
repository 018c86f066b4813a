/* bench.c — the `bench` command: where a training step's time goes, kernel by kernel.
 *
 *   ./model bench [--batch B] [--threads T] [--steps N] [--seed S]
 *
 * Runs train_step + the optimizer on one synthetic batch (as gradcheck draws it) for N timed
 * steps after N/5 warm-up steps, then N steps of train_step_profiled, which calls
 * nnrt_profile_mark after every kernel. Prints per kernel: milliseconds per step (the median
 * over the N steps), its share of the (median) profiled step, and for the matrix products
 * (dense, conv2d and their dx/dw) the MFLOP per step (from the operation counts nnc puts in the
 * descriptor) and GFLOP/s. The profiled step is a little slower than the plain
 * one (one clock read per kernel); the totals show both. Nothing is written.
 *
 * When the model's generated code applies the optimizer itself (train_step_update: Adam/AdamW,
 * what `train` runs in one process without clipping), the `step` line times that fused step, a
 * second line times the unfused pair (train_step, then the runtime's update pass) in the same
 * run (the two alternate step by step; all three are medians over the steps, robust to the
 * stalls of a shared machine), and the table profiles train_step_update_profiled: a
 * tensor updated in a pass of its own has its row ("update dense1.weight") where it runs; one
 * updated inside its gradient kernel shows in that kernel's row ("dense_dw dense0+update", whose
 * GFLOP/s then include the update). The optimizer row is the fused step's time less
 * train_step's, from the timed steps. */
#include "nnrt_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Written only by the thread that runs train_step_profiled (the marks sit between kernels). */
static struct {
    double *seconds;
    int32_t count;
    double last;
} nnrt_profile;

void nnrt_profile_mark(int32_t kernel) {
    double now = nnrt_now();
    if (kernel >= 0 && kernel < nnrt_profile.count) nnrt_profile.seconds[kernel] += now - nnrt_profile.last;
    nnrt_profile.last = now;
}

typedef struct Bench {
    const NnrtModel *m;
    NnrtOptConfig opt;
    NnrtOptState ost;
    float *params, *grads, *x;
    void *y, *ws;
    double sums[64];
    int64_t n;
} Bench;

/* Seconds for `steps` optimizer steps and train steps (with `step`), separately. */
static void run_steps(Bench *b, NnrtTrainStepF32 step, int64_t steps, double *train_s, double *optim_s) {
    *train_s = *optim_s = 0;
    for (int64_t k = 0; k < steps; k++) {
        double t0 = nnrt_now();
        const NnrtComm alone = {.rank = 0, .size = 1};
        NnrtShard shard = nnrt_shard(&alone, b->n, 0);
        step(b->params, b->grads, b->x, b->y, b->ws, b->n, (uint64_t)k, b->sums, &shard);
        double t1 = nnrt_now();
        nnrt_optim_step(&b->opt, &b->ost, b->m, b->params, b->grads, b->opt.lr);
        *train_s += t1 - t0;
        *optim_s += nnrt_now() - t1;
    }
}

/* Seconds for `steps` fused steps (train_step_update or its profiled twin). */
static double run_fused_steps(Bench *b, NnrtTrainStepUpdateF32 step, int64_t steps) {
    double t0 = nnrt_now();
    for (int64_t k = 0; k < steps; k++) {
        const NnrtComm alone = {.rank = 0, .size = 1};
        NnrtShard shard = nnrt_shard(&alone, b->n, 0);
        NnrtUpdate update;
        nnrt_optim_fused_args(&b->opt, &b->ost, b->opt.lr, &update);
        step(b->params, b->grads, b->x, b->y, b->ws, b->n, (uint64_t)k, b->sums, &shard, &update);
    }
    return nnrt_now() - t0;
}

/* `steps` rounds of one unfused step (train_step, then the runtime's update) and one
 * train_step_update, alternating so that a busy machine slows both alike; the medians over the
 * rounds of train_step, the runtime's update and the fused step go to med[0..2] (a descheduled
 * step or two would swamp a difference of means). times: 3 * steps scratch doubles. */
static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of t[0..n) (sorted in place). */
static double median(double *t, int64_t n) {
    qsort(t, (size_t)n, sizeof *t, compare_doubles);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static void run_rounds(Bench *b, int64_t steps, double *times, double med[3]) {
    for (int64_t k = 0; k < steps; k++) {
        run_steps(b, b->m->train_step, 1, &times[k], &times[steps + k]);
        times[2 * steps + k] = run_fused_steps(b, b->m->train_step_update, 1);
    }
    for (int i = 0; i < 3; i++) med[i] = median(times + i * steps, steps);
}

static void print_row(const char *name, double seconds, double step_seconds, double flops) {
    printf("%-36s %9.3f %7.1f%%", name, 1e3 * seconds, 100.0 * seconds / step_seconds);
    if (flops > 0) printf(" %10.3f %9.1f", flops / 1e6, flops / seconds / 1e9);
    printf("\n");
}

/* The median over `steps` rows (of `cols` doubles) of column `col`; scratch: steps doubles. */
static double profile_median(const double *profile, size_t cols, int32_t col, int64_t steps, double *scratch) {
    for (int64_t k = 0; k < steps; k++) scratch[k] = profile[(size_t)k * cols + (size_t)col];
    return median(scratch, steps);
}

int nnrt_cmd_bench(const NnrtModel *m, const NnrtRunConfig *cfg) {
    Bench b = {.m = m, .n = cfg->batch};
    int64_t steps = cfg->steps, warmup = steps / 5 + 1;
    int64_t tsz = m->target_size; /* class targets: one id per example or per position */
    size_t P = (size_t)m->param_count;
    int status = 1;
    double *xd = NULL, *yd = NULL, *times = NULL, *profile = NULL, *scratch = NULL;
    if (m->metric_count + 1 > (int32_t)(sizeof b.sums / sizeof *b.sums)) {
        nnrt_error("bench: the model has more metrics than the bench supports (%d)", m->metric_count);
        return 1;
    }
    if (nnrt_optim_parse(m->defaults.optimizer ? m->defaults.optimizer : "adam()", "optimizer", &b.opt) != 0) return 1;
    if (nnrt_optim_state_init(&b.opt, m->param_count, &b.ost) != 0) return 1;
    /* The batch is synthetic, so nothing bounds --batch but memory: B * (values per example)
     * must not overflow before the allocations can report it. */
    int64_t per_example = m->input_size > tsz ? m->input_size : tsz;
    if (per_example > 0 && b.n > INT64_MAX / (int64_t)sizeof(double) / per_example) {
        nnrt_error("--batch %lld is too large for bench (%lld values per example); choose a smaller --batch",
                   (long long)b.n, (long long)per_example);
        goto done;
    }
    /* One error for the first allocation that fails, not one per buffer. */
    const int fused = nnrt_optim_fusable(&b.opt, m);
    const NnrtKernelInfo *kernels = fused ? m->update_kernels : m->kernels;
    nnrt_profile.count = !fused && m->train_step_profiled ? m->kernel_count
                         : fused && m->train_step_update_profiled ? m->update_kernel_count : 0;
    if (!(b.params = nnrt_alloc(P, sizeof(float), "the parameters")) ||
        !(b.grads = nnrt_zalloc(P, sizeof(float), "the gradients")) ||
        !(b.x = nnrt_alloc((size_t)(b.n * m->input_size), sizeof(float), "the inputs")) ||
        !(b.y = nnrt_alloc((size_t)(b.n * tsz), sizeof(float), "the targets")) ||
        !(xd = nnrt_alloc((size_t)(b.n * m->input_size), sizeof(double), "the inputs")) ||
        !(yd = nnrt_alloc((size_t)(b.n * tsz), sizeof(double), "the targets")) ||
        !(b.ws = nnrt_alloc_aligned(nnrt_workspace_bytes(m, b.n, sizeof(float)), "the workspace")) ||
        !(nnrt_profile.seconds = nnrt_zalloc((size_t)nnrt_profile.count + 1, sizeof(double), "the profile")) ||
        !(times = nnrt_alloc(3 * (size_t)(steps > warmup ? steps : warmup), sizeof(double), "the step times")))
        goto done;

    nnrt_init_params(m, cfg->seed, b.params, NULL);
    NnrtRng rng;
    nnrt_rng_seed(&rng, cfg->seed, NNRT_STREAM_GRADCHECK, 0);
    nnrt_synthetic_batch(m, &rng, b.n, xd, m->target_kind == NNRT_TARGET_CLASS ? b.y : (void *)yd);
    for (int64_t i = 0; i < b.n * m->input_size; i++) b.x[i] = (float)xd[i];
    if (m->target_kind != NNRT_TARGET_CLASS)
        for (int64_t i = 0; i < b.n * tsz; i++) ((float *)b.y)[i] = (float)yd[i];

    double train_s, optim_s, fused_s = 0;
    if (fused) {
        /* medians per step; train_s and optim_s hold them times steps, like the sums below */
        double med[3];
        run_rounds(&b, warmup, times, med);
        run_rounds(&b, steps, times, med);
        train_s = med[0] * (double)steps, optim_s = med[1] * (double)steps, fused_s = med[2];
    } else {
        run_steps(&b, m->train_step, warmup, &train_s, &optim_s);
        run_steps(&b, m->train_step, steps, &train_s, &optim_s);
    }
    double step_s = fused ? fused_s : (train_s + optim_s) / (double)steps;
    /* the fused update's cost: the fused step less train_step alone */
    double fused_update_s = fused_s - train_s / (double)steps;
    int64_t total_flops = 0;
    for (int32_t k = 0; k < nnrt_profile.count; k++) total_flops += kernels[k].flops_per_example;

    const char *kind = nnrt_optim_kind_name(b.opt.kind);
    printf("bench: model %s, batch %lld, %lld steps after %lld warm-up steps\n", m->name ? m->name : "?",
           (long long)b.n, (long long)steps, (long long)warmup);
    printf("step (train_step + optimizer%s): %.3f ms, %.0f samples/s, %.1f GFLOP/s in the products\n",
           fused ? ", fused; medians of the steps" : "", 1e3 * step_s, (double)b.n / step_s,
           (double)(total_flops * b.n) / (train_s / (double)steps) / 1e9);
    if (fused) {
        printf("unfused: train_step %.3f ms + the runtime's %s pass %.3f ms (%.1f%%) = %.3f ms\n",
               1e3 * train_s / (double)steps, kind, 1e3 * optim_s / (double)steps,
               100.0 * optim_s / (train_s + optim_s), 1e3 * (train_s + optim_s) / (double)steps);
        printf("fused: the update costs %.3f ms (%.1f%% of the step): the fused step less train_step\n",
               1e3 * fused_update_s, 100.0 * fused_update_s / fused_s);
    }
    printf("\n");
    if (nnrt_profile.count > 0) {
        /* one profiled step at a time; every kernel's row is its median over the steps (as the
         * step lines above), so a step stalled by a busy neighbour does not inflate one row */
        int32_t count = nnrt_profile.count;
        size_t cols = (size_t)count + 2; /* the kernels, the runtime's optimizer, the step */
        if (!(profile = nnrt_alloc((size_t)steps * cols, sizeof(double), "the profile")) ||
            !(scratch = nnrt_alloc((size_t)steps, sizeof(double), "the profile")))
            goto done;
        for (int64_t k = 0; k < steps; k++) {
            memset(nnrt_profile.seconds, 0, (size_t)count * sizeof(double));
            double one_s, optim_one_s = 0;
            if (fused) one_s = run_fused_steps(&b, m->train_step_update_profiled, 1);
            else run_steps(&b, m->train_step_profiled, 1, &one_s, &optim_one_s);
            double *row = profile + (size_t)k * cols;
            memcpy(row, nnrt_profile.seconds, (size_t)count * sizeof(double));
            row[count] = optim_one_s;
            row[count + 1] = one_s + optim_one_s;
        }
        double per_step = profile_median(profile, cols, count + 1, steps, scratch);
        printf("%-36s %9s %8s %10s %9s\n", "kernel", "ms/step", "share", "MFLOP", "GFLOP/s");
        for (int32_t k = 0; k < count; k++)
            print_row(kernels[k].name, profile_median(profile, cols, k, steps, scratch), per_step,
                      (double)(kernels[k].flops_per_example * b.n));
        /* fused: part of the update runs inside gradient kernels ("+update" rows), so the row is
         * the timed steps' difference, not a sum of rows */
        char name[64];
        snprintf(name, sizeof name, "optimizer (%s)%s", kind, fused ? " fused" : "");
        print_row(name, fused ? fused_update_s : profile_median(profile, cols, count, steps, scratch), per_step, 0);
        print_row("profiled step", per_step, per_step, (double)(total_flops * b.n));
    }
    status = 0;
done:
    free(nnrt_profile.seconds);
    nnrt_profile.seconds = NULL;
    nnrt_profile.count = 0;
    free(b.params);
    free(b.grads);
    free(b.x);
    free(b.y);
    free(xd);
    free(yd);
    free(times);
    free(profile);
    free(scratch);
    free(b.ws);
    nnrt_optim_state_free(&b.ost);
    return status;
}
