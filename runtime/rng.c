/* rng.c — the runtime's only source of randomness: xoshiro256** seeded through splitmix64.
 *
 * Every random stream is derived from (seed, domain, index) alone — parameter init uses
 * (seed, INIT, tensor index), shuffling (seed, SHUFFLE, epoch), dropout (seed, STEP, global step),
 * gradcheck (seed, GRADCHECK, k) — never from time, addresses or a shared generator whose position
 * depends on what ran before. That is what makes runs bit-reproducible and lets a resumed run
 * shuffle epoch k exactly as an uninterrupted one would.
 */
#include "nnrt_internal.h"

#include <math.h>

/* splitmix64's output function: a strong 64-bit mixer */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x) {
    *x += 0x9E3779B97F4A7C15ull;
    return mix64(*x);
}

uint64_t nnrt_mix_seed(uint64_t seed, uint64_t domain, uint64_t index) {
    uint64_t z = mix64(seed + 0x9E3779B97F4A7C15ull * (domain + 1));
    return mix64(z ^ mix64(index + 0x632BE59BD9B4E019ull));
}

void nnrt_rng_seed(NnrtRng *r, uint64_t seed, uint64_t domain, uint64_t index) {
    uint64_t x = nnrt_mix_seed(seed, domain, index);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nnrt_rng_next(NnrtRng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nnrt_rng_uniform(NnrtRng *r) {
    /* 24 bits: every value is exactly representable in float32 as well */
    return (double)(nnrt_rng_next(r) >> 40) * 0x1p-24;
}

uint64_t nnrt_rng_below(NnrtRng *r, uint64_t bound) {
    /* rejection of the short first interval keeps r % bound unbiased */
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t x = nnrt_rng_next(r);
        if (x >= threshold) return x % bound;
    }
}

/* Bound b of U(-b, b) for a tensor, per NnrtInit. */
static double init_bound(const NnrtParam *p) {
    double fan_in = (double)p->fan_in, fan_out = (double)p->fan_out;
    if (p->init == NNRT_INIT_HE_UNIFORM) return fan_in > 0 ? sqrt(6.0 / fan_in) : 0.0;
    if (p->init == NNRT_INIT_GLOROT_UNIFORM)
        return fan_in + fan_out > 0 ? sqrt(6.0 / (fan_in + fan_out)) : 0.0;
    return 0.0;
}

void nnrt_init_params(const NnrtModel *m, uint64_t seed, float *f32, double *f64) {
    for (int32_t t = 0; t < m->param_tensor_count; t++) {
        const NnrtParam *p = &m->params[t];
        NnrtRng rng;
        nnrt_rng_seed(&rng, seed, NNRT_STREAM_INIT, (uint64_t)t);
        double b = init_bound(p);
        for (int64_t i = 0; i < p->size; i++) {
            double v;
            switch (p->init) {
            case NNRT_INIT_ONES: v = 1.0; break;
            case NNRT_INIT_HE_UNIFORM:
            case NNRT_INIT_GLOROT_UNIFORM: v = b * (2.0 * nnrt_rng_uniform(&rng) - 1.0); break;
            default: v = 0.0; break;
            }
            if (f32) f32[p->offset + i] = (float)v;
            else f64[p->offset + i] = v;
        }
    }
}

void nnrt_shuffle(int64_t *order, int64_t n, uint64_t seed, int64_t epoch) {
    /* always from the identity: the order depends on (seed, epoch) only */
    for (int64_t i = 0; i < n; i++) order[i] = i;
    NnrtRng rng;
    nnrt_rng_seed(&rng, seed, NNRT_STREAM_SHUFFLE, (uint64_t)epoch);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)nnrt_rng_below(&rng, (uint64_t)i + 1);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}
