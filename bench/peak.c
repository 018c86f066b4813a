/* peak.c — the fp32 FMA throughput one core really delivers: independent multiply-add chains in
 * the widest vectors the CPU has (24 chains of 16 floats with AVX-512, 12 of 8 with AVX2: enough
 * to cover the FMA latency, few enough to stay in the 32 or 16 registers), timed by the thread's
 * CPU clock. bench/kernels.py compiles it with `cc -O2 -march=native` and prints the kernels'
 * GFLOP/s against it too: the nominal peak assumes full-rate 512-bit FMAs, which not every core
 * (or virtual machine) delivers. Prints GFLOP/s on one line. */
#include <stdio.h>
#include <time.h>

#ifdef __AVX512F__
enum { LANES = 16, CHAIN_COUNT = 24 };
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) \
    X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
#else
enum { LANES = 8, CHAIN_COUNT = 12 };
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#endif
typedef float v16 __attribute__((vector_size(LANES * 4)));

int main(void) {
    v16 x, y;
    for (int i = 0; i < LANES; i++) x[i] = 0.999f, y[i] = 1e-4f;
#define DECLARE(c) v16 a##c = x * (float)(c);
    CHAINS(DECLARE)
    const long rounds = 50000000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (long r = 0; r < rounds; r++) {
#define STEP(c) a##c = a##c * x + y;
        CHAINS(STEP)
        __asm__ volatile("" : "+v"(x)); /* x is unknown each round: nothing folds */
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    v16 sum = y;
#define SUM(c) sum += a##c;
    CHAINS(SUM)
    printf("%.1f\n", (double)rounds * CHAIN_COUNT * LANES * 2 / seconds / 1e9 + 0 * (double)sum[0]);
    return 0;
}
