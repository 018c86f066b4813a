/* gradcheck.c — the `gradcheck` command: analytic gradients against central differences.
 *
 * A synthetic batch of 3 examples is drawn from the seed (float inputs U(-1,1), token ids below
 * the vocabulary, class targets in range, float targets U(0,1) so bce is valid), the parameters
 * are initialized from the seed in double precision, and train_step_f64 gives the analytic
 * gradient of the mean loss. For each trainable tensor, up to 24 elements (all when fewer; else
 * chosen by the RNG) are checked against
 *     numeric = (L(p + eps) - L(p - eps)) / (2 eps),   eps = 1e-6,  L = sums[0] / n
 * with the same step seed on both sides (dropout masks agree), and pass when
 *     |analytic - numeric| <= 1e-5 + 1e-3 |numeric|          (torch.autograd.gradcheck's atol/rtol)
 * An element whose [p - eps, p + eps] straddles a kink (a relu/leaky_relu input of exactly 0, as
 * at the all-padding border of a padded conv, or a maxpool tie) has no single derivative there:
 * it is told apart from a wrong gradient by its one-sided differences (see probe) and checked
 * again, with the same tolerances, 1e-4 to each side of p. The tensor line and the last line say
 * how many elements that concerned (or were skipped, when both sides were kinks too).
 * Non-trainable buffers (running statistics) are restored before every evaluation.
 */
#include "nnrt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GC_BATCH 3
#define GC_MAX_CHECKED 24
#define GC_EPS 1e-6
#define GC_ATOL 1e-5
#define GC_RTOL 1e-3
#define GC_KINK_FACTOR 10 /* one-sided differences this many tolerances apart: a kink */
#define GC_SHIFT 1e-4     /* how far a kink element is moved to be checked where it is smooth */
#define GC_SHIFT_TEXT "1e-4"

typedef struct GC {
    const NnrtModel *m;
    double *p0, *p, *g, *ga, *x, *sums;
    void *y, *ws;
    uint64_t step_seed;
    double base; /* the mean loss at the initial parameters */
} GC;

void nnrt_synthetic_batch(const NnrtModel *m, NnrtRng *rng, int64_t n, double *x, void *y) {
    for (int64_t i = 0; i < n * m->input_size; i++) {
        if (m->input_kind == NNRT_INPUT_INT) {
            uint64_t vocab = m->input_vocab > 0 ? (uint64_t)m->input_vocab : 16;
            x[i] = (double)nnrt_rng_below(rng, vocab);
        } else {
            x[i] = 2.0 * nnrt_rng_uniform(rng) - 1.0;
        }
    }
    int64_t tsz = m->target_size; /* class targets: one id per example or per position */
    for (int64_t i = 0; i < n * tsz; i++) {
        if (m->target_kind == NNRT_TARGET_CLASS)
            ((int32_t *)y)[i] = (int32_t)nnrt_rng_below(rng, (uint64_t)m->target_classes);
        else
            ((double *)y)[i] = nnrt_rng_uniform(rng);
    }
}

static double mean_loss(GC *c) {
    const NnrtModel *m = c->m;
    for (int32_t t = 0; t < m->param_tensor_count; t++) {
        const NnrtParam *pp = &m->params[t];
        if (!pp->trainable)
            memcpy(c->p + pp->offset, c->p0 + pp->offset, sizeof(double) * (size_t)pp->size);
    }
    memset(c->sums, 0, sizeof(double) * (size_t)(1 + m->metric_count));
    const NnrtComm alone = {.rank = 0, .size = 1};
    NnrtShard shard = nnrt_shard(&alone, GC_BATCH, 0);
    m->train_step_f64(c->p, c->g, c->x, c->y, c->ws, GC_BATCH, c->step_seed, c->sums, &shard);
    return c->sums[0] / GC_BATCH;
}

static void format_index(const NnrtParam *p, int64_t flat, char *out, size_t cap) {
    int64_t idx[NNRT_MAX_RANK];
    for (int32_t d = p->rank - 1; d >= 0; d--) {
        idx[d] = p->dims[d] ? flat % p->dims[d] : 0;
        flat = p->dims[d] ? flat / p->dims[d] : 0;
    }
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int32_t d = 0; d < p->rank && n < cap; d++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", d ? "," : "", (long long)idx[d]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Up to 24 distinct element indices of tensor t, ascending. */
static int pick_elements(const NnrtParam *p, uint64_t seed, int32_t t, int64_t *out) {
    if (p->size <= GC_MAX_CHECKED) {
        for (int64_t i = 0; i < p->size; i++) out[i] = i;
        return (int)p->size;
    }
    NnrtRng rng;
    nnrt_rng_seed(&rng, seed, NNRT_STREAM_GRADCHECK, 1 + (uint64_t)t);
    int k = 0;
    while (k < GC_MAX_CHECKED) {
        int64_t c = (int64_t)nnrt_rng_below(&rng, (uint64_t)p->size), dup = 0;
        for (int i = 0; i < k; i++) dup |= out[i] == c;
        if (!dup) out[k++] = c;
    }
    qsort(out, (size_t)k, sizeof *out, cmp_i64);
    return k;
}

typedef enum Verdict { GC_PASS, GC_FAIL, GC_KINK } Verdict;

typedef struct Probe {
    double ana, num, err; /* analytic, central difference, |ana - num| */
} Probe;

/* Compares element i's analytic gradient `ana` at the current parameters (loss l0 there) with
 * the central difference. A failure is called a kink when the two one-sided differences disagree
 * far beyond the tolerance and the analytic value agrees with one of them: then [p-eps, p+eps]
 * straddles a point where the loss is not differentiable (a relu input at exactly 0, a maxpool
 * tie), and no single derivative is right; the caller re-checks away from it. */
static Verdict probe(GC *c, int64_t i, double ana, double l0, Probe *r) {
    double orig = c->p[i];
    c->p[i] = orig + GC_EPS;
    double lp = mean_loss(c);
    c->p[i] = orig - GC_EPS;
    double lm = mean_loss(c);
    c->p[i] = orig;
    r->ana = ana;
    r->num = (lp - lm) / (2 * GC_EPS);
    r->err = fabs(ana - r->num);
    if (r->err <= GC_ATOL + GC_RTOL * fabs(r->num)) return GC_PASS;
    double fwd = (lp - l0) / GC_EPS, bwd = (l0 - lm) / GC_EPS;
    double side_tol = GC_ATOL + GC_RTOL * fmax(fabs(fwd), fabs(bwd));
    int sides_disagree = fabs(fwd - bwd) > GC_KINK_FACTOR * side_tol;
    int matches_side = fabs(ana - fwd) <= GC_ATOL + GC_RTOL * fabs(fwd) ||
                       fabs(ana - bwd) <= GC_ATOL + GC_RTOL * fabs(bwd);
    return sides_disagree && matches_side ? GC_KINK : GC_FAIL;
}

/* An element at a kink is checked again with its value moved GC_SHIFT to each side, where the
 * loss is smooth around it: analytic gradient and central difference both at the moved point. It
 * passes when no side fails and at least one side passes; when both sides are kinks again it is
 * skipped (counted and reported). *r gets the failing side, else the passing side with the larger error. */
static Verdict recheck_off_kink(GC *c, int64_t i, Probe *r, double *shift) {
    double orig = c->p[i];
    Verdict out = GC_KINK;
    for (int side = 0; side < 2; side++) {
        double d = side ? -GC_SHIFT : GC_SHIFT;
        c->p[i] = orig + d;
        double l0 = mean_loss(c); /* also the analytic gradient at the moved point, in c->g */
        Probe q;
        Verdict v = probe(c, i, c->g[i], l0, &q);
        if (v == GC_FAIL) {
            *r = q;
            *shift = d;
            out = GC_FAIL;
            break;
        }
        if (v == GC_PASS && (out != GC_PASS || q.err > r->err)) {
            *r = q;
            *shift = d;
            out = GC_PASS;
        }
    }
    c->p[i] = orig;
    return out;
}

typedef struct TensorResult {
    int checked, kinks, skipped;
} TensorResult;

/* Checks one tensor and prints its line; returns 1 when it passes. */
static int check_tensor(GC *c, int32_t t, uint64_t seed, int width, TensorResult *res) {
    const NnrtParam *p = &c->m->params[t];
    int64_t idx[GC_MAX_CHECKED];
    int k = pick_elements(p, seed, t, idx);
    double max_err = 0, worst = 0, bad_shift = 0;
    int ok = 1;
    int64_t bad = -1;
    Probe bad_probe = {0};
    memset(res, 0, sizeof *res);
    for (int j = 0; j < k; j++) {
        int64_t i = p->offset + idx[j];
        Probe r;
        double shift = 0;
        Verdict v = probe(c, i, c->ga[i], c->base, &r);
        if (v == GC_KINK) {
            res->kinks++;
            v = recheck_off_kink(c, i, &r, &shift);
            if (v == GC_KINK) { /* both sides sit on kinks too: nothing to compare */
                res->skipped++;
                continue;
            }
        }
        if (r.err > max_err || isnan(r.err)) max_err = r.err;
        if (v == GC_FAIL) {
            double tol = GC_ATOL + GC_RTOL * fabs(r.num);
            double excess = isnan(r.err) ? INFINITY : r.err / tol;
            if (ok || excess > worst) {
                worst = excess;
                bad = idx[j];
                bad_probe = r;
                bad_shift = shift;
            }
            ok = 0;
        }
    }
    res->checked = k - res->skipped;
    printf("%-*s  %d checked  max abs err %.1e  ", width, p->name, res->checked, max_err);
    if (ok) {
        printf("ok");
    } else {
        char where[160];
        format_index(p, bad, where, sizeof where);
        printf("FAIL (element %s", where);
        if (bad_shift != 0)
            printf(" moved %s" GC_SHIFT_TEXT " off a kink", bad_shift > 0 ? "+" : "-");
        printf(": analytic %.6g, numeric %.6g)", bad_probe.ana, bad_probe.num);
    }
    if (res->kinks > res->skipped)
        printf("  (%d at a kink, checked " GC_SHIFT_TEXT " to each side)",
               res->kinks - res->skipped);
    if (res->skipped) printf("  (%d skipped: kinks on both sides)", res->skipped);
    printf("\n");
    return ok;
}

int nnrt_cmd_gradcheck(const NnrtModel *m, uint64_t seed) {
    if (!m->train_step_f64) {
        nnrt_error("this model has no double-precision step (train_step_f64), so it cannot be "
                   "gradient-checked");
        return 1;
    }
    GC c;
    memset(&c, 0, sizeof c);
    c.m = m;
    int rc = 1;
    size_t P = (size_t)m->param_count;
    int64_t tsz = m->target_size; /* class targets: one id per example or per position */
    c.p0 = nnrt_alloc(P, sizeof(double), "the parameters");
    c.p = nnrt_alloc(P, sizeof(double), "the parameters");
    c.g = nnrt_zalloc(P, sizeof(double), "the gradients");
    c.ga = nnrt_zalloc(P, sizeof(double), "the gradients");
    c.x = nnrt_alloc((size_t)(GC_BATCH * m->input_size), sizeof(double), "the inputs");
    c.y = nnrt_alloc((size_t)(GC_BATCH * tsz), sizeof(double), "the targets");
    c.sums = nnrt_zalloc((size_t)m->metric_count + 1, sizeof(double), "the sums");
    c.ws = nnrt_alloc_aligned(nnrt_workspace_bytes(m, GC_BATCH, sizeof(double)), "the workspace");
    if (!c.p0 || !c.p || !c.g || !c.ga || !c.x || !c.y || !c.sums || !c.ws) goto done;

    nnrt_init_params(m, seed, NULL, c.p0);
    memcpy(c.p, c.p0, sizeof(double) * P);
    NnrtRng rng;
    nnrt_rng_seed(&rng, seed, NNRT_STREAM_GRADCHECK, 0);
    nnrt_synthetic_batch(m, &rng, GC_BATCH, c.x, c.y);
    c.step_seed = nnrt_mix_seed(seed, NNRT_STREAM_STEP, 0);

    c.base = mean_loss(&c);
    memcpy(c.ga, c.g, sizeof(double) * P);
    if (!isfinite(c.base)) {
        nnrt_error("gradcheck: the loss of the synthetic batch is %g", c.base);
        goto done;
    }
    int width = 0, tensors = 0, failed = 0;
    int64_t checked = 0, kinks = 0, skipped = 0;
    for (int32_t t = 0; t < m->param_tensor_count; t++)
        if (m->params[t].trainable && (int)strlen(m->params[t].name) > width)
            width = (int)strlen(m->params[t].name);
    for (int32_t t = 0; t < m->param_tensor_count; t++) {
        if (!m->params[t].trainable || m->params[t].size == 0) continue;
        tensors++;
        TensorResult r;
        failed += !check_tensor(&c, t, seed, width, &r);
        checked += r.checked;
        kinks += r.kinks - r.skipped;
        skipped += r.skipped;
    }
    if (tensors == 0) printf("gradcheck: the model has no trainable parameters\n");
    else if (failed == 0)
        printf("gradcheck: ok (%d tensors, %lld elements, loss %.6g, seed %llu)\n", tensors,
               (long long)checked, c.base, (unsigned long long)seed);
    else
        printf("gradcheck: FAILED for %d of %d tensors (seed %llu)\n", failed, tensors,
               (unsigned long long)seed);
    if (kinks)
        printf("gradcheck: %lld element%s sat on a kink (e.g. a relu input of exactly 0) and "
               "%s checked " GC_SHIFT_TEXT " to each side instead\n", (long long)kinks,
               kinks == 1 ? "" : "s", kinks == 1 ? "was" : "were");
    if (skipped)
        printf("gradcheck: %lld element%s skipped: %s on a kink, and " GC_SHIFT_TEXT
               " to both sides too\n", (long long)skipped, skipped == 1 ? "" : "s",
               skipped == 1 ? "it sat" : "they sat");
    rc = failed ? 1 : 0;
done:
    free(c.p0);
    free(c.p);
    free(c.g);
    free(c.ga);
    free(c.x);
    free(c.y);
    free(c.sums);
    free(c.ws);
    return rc;
}
