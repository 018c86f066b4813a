/* deploy_bench.c — times one nnc inference library (deploy_bench.py builds it per model):
 *   cc -O2 -DLIB=NAME -include NAME.h deploy_bench.c NAME.a -lm
 *   deploy_bench IMAGES.bin COUNT CALLS
 * Batch 1: CALLS calls, one image each (cycling through COUNT images), each timed; batch 256:
 * 30 timed calls after 3 warm-up calls, all in CPU time of the calling thread. Prints one JSON line: median and p99 latency of batch 1
 * in microseconds, median time of batch 256 and its throughput in images per second. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define SYM(s) CAT(LIB, s)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine is shared, wall time would measure the other jobs */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int count = atoi(argv[2]), calls = atoi(argv[3]);
    enum { IN = SYM(_INPUT_SIZE), OUT = SYM(_OUTPUT_SIZE), BIG = 256 };
    float *images = malloc(sizeof(float) * (size_t)count * IN);
    float *out = malloc(sizeof(float) * BIG * OUT);
    double *t = malloc(sizeof(double) * (size_t)calls);
    FILE *f = fopen(argv[1], "rb");
    if (!images || !out || !t || !f || fread(images, sizeof(float) * IN, (size_t)count, f) != (size_t)count || count < BIG) return 1;
    fclose(f);
    void *ws = malloc(SYM(_workspace_size)(BIG));
    if (!ws) return 1;
    for (int i = 0; i < 100; i++) SYM(_predict)(images + (size_t)(i % count) * IN, 1, out, ws);
    for (int i = 0; i < calls; i++) {
        double t0 = now();
        SYM(_predict)(images + (size_t)(i % count) * IN, 1, out, ws);
        t[i] = now() - t0;
    }
    qsort(t, (size_t)calls, sizeof *t, cmp);
    double median1 = t[calls / 2], p99 = t[(int)(calls * 0.99)];
    double big[30];
    for (int i = 0; i < 3; i++) SYM(_predict)(images, BIG, out, ws);
    for (int i = 0; i < 30; i++) {
        double t0 = now();
        SYM(_predict)(images, BIG, out, ws);
        big[i] = now() - t0;
    }
    qsort(big, 30, sizeof *big, cmp);
    printf("{\"median_us\": %.3f, \"p99_us\": %.3f, \"batch256_ms\": %.3f, \"images_per_s\": %.1f}\n", median1 * 1e6, p99 * 1e6,
           big[15] * 1e3, BIG / big[15]);
    return 0;
}
