/* harness.c — drives one library written by `nnc --emit=lib` for tests/deploy/deploy.py.
 * Built per library: cc -DLIB=NAME -include NAME.h harness.c NAME.a -lm -lpthread
 *
 *   harness IN.bin N OUT.bin [BATCH [REPEATS]]
 * reads N examples of NAME_INPUT_SIZE NAME_input_t values, writes N x NAME_OUTPUT_SIZE floats,
 * calling NAME_predict on BATCH examples at a time (default N). It then checks what the library
 * promises: two threads with their own workspaces, running the same calls on the first 256
 * examples at the same time (REPEATS times over, default 10), write the same bytes as the single thread; n < 0, NULL pointers and n = 0 are
 * answered without touching memory; workspace_size grows with n. Exit 0, or 1 with a message. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define SYM(s) CAT(LIB, s)

typedef SYM(_input_t) input_t;
enum { IN = SYM(_INPUT_SIZE), OUT = SYM(_OUTPUT_SIZE) };

typedef struct Job {
    const input_t *input;
    int n, batch, repeats;
    float *output;
    void *workspace;
    int status;
} Job;

static int run(const input_t *input, int n, int batch, float *output, void *workspace) {
    for (int start = 0; start < n; start += batch) {
        int nb = n - start < batch ? n - start : batch;
        int rc = SYM(_predict)(input + (size_t)start * IN, nb, output + (size_t)start * OUT, workspace);
        if (rc != 0) return rc;
    }
    return 0;
}

static void *thread_main(void *arg) {
    Job *job = arg;
    for (int r = 0; r < job->repeats && job->status == 0; r++) job->status = run(job->input, job->n, job->batch, job->output, job->workspace);
    return NULL;
}

static int fail(const char *what) {
    fprintf(stderr, "harness: %s\n", what);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) return fail("usage: harness IN.bin N OUT.bin [BATCH [REPEATS]]");
    int n = atoi(argv[2]);
    int batch = argc > 4 ? atoi(argv[4]) : n;
    int repeats = argc > 5 ? atoi(argv[5]) : 10;
    if (n <= 0 || batch <= 0) return fail("N and BATCH must be positive");
    input_t *input = malloc(sizeof *input * (size_t)n * IN);
    float *output = malloc(sizeof *output * (size_t)n * OUT);
    FILE *f = fopen(argv[1], "rb");
    if (!input || !output || !f || fread(input, sizeof *input, (size_t)n * IN, f) != (size_t)n * IN) return fail("cannot read the input");
    fclose(f);
    size_t ws_bytes = SYM(_workspace_size)(batch);
    if (SYM(_workspace_size)(-1) != 0 || SYM(_workspace_size)(batch + 1) <= SYM(_workspace_size)(0))
        return fail("workspace_size does not grow with n");
    /* an odd address: the library aligns the workspace itself */
    char *ws = malloc(ws_bytes + 1);
    if (!ws) return fail("out of memory");
    if (SYM(_predict)(input, -1, output, ws + 1) != 1 || SYM(_predict)(NULL, 1, output, ws + 1) != 1 ||
        SYM(_predict)(input, 1, NULL, ws + 1) != 1 || SYM(_predict)(input, 1, output, NULL) != 1 ||
        SYM(_predict)(NULL, 0, NULL, NULL) != 0)
        return fail("bad arguments are not answered as the header says");
    int rc = run(input, n, batch, output, ws + 1);
    if (rc != 0) {
        fprintf(stderr, "harness: predict returned %d\n", rc);
        return 1;
    }
    f = fopen(argv[3], "wb");
    if (!f || fwrite(output, sizeof *output, (size_t)n * OUT, f) != (size_t)n * OUT || fclose(f) != 0) return fail("cannot write the output");

    int tn = n < 256 ? n : 256;
    Job jobs[2];
    pthread_t threads[2];
    for (int t = 0; t < 2; t++) {
        jobs[t] = (Job){input, tn, batch, repeats, malloc(sizeof *output * (size_t)n * OUT), malloc(ws_bytes), 0};
        if (!jobs[t].output || !jobs[t].workspace) return fail("out of memory");
        if (pthread_create(&threads[t], NULL, thread_main, &jobs[t]) != 0) return fail("cannot start a thread");
    }
    for (int t = 0; t < 2; t++) {
        pthread_join(threads[t], NULL);
        if (jobs[t].status != 0) return fail("predict failed in a thread");
        if (memcmp(jobs[t].output, output, sizeof *output * (size_t)tn * OUT) != 0)
            return fail("two threads with their own workspaces gave other outputs than one thread");
        free(jobs[t].output);
        free(jobs[t].workspace);
    }
    printf("harness: %d examples, batch %d, workspace %zu bytes, threads agree\n", n, batch, ws_bytes);
    free(ws);
    free(input);
    free(output);
    return 0;
}
