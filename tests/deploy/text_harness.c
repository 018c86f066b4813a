/* text_harness.c — drives the raw-text entry point of a library written by `nnc --emit=lib` for a
 * csv(text=...) model, for tests/deploy/deploy.py.
 * Built per library: cc -DLIB=NAME -include NAME.h text_harness.c NAME.a -lm
 *
 *   text_harness TEXTS.bin OUT.bin [BATCH]
 * TEXTS.bin holds the texts, each followed by one NUL byte; writes one NAME_OUTPUT_SIZE row of
 * floats per text, calling NAME_predict_text on BATCH texts at a time (default all). It checks
 * what the header promises on the way: n < 0 and NULL pointers are EINVAL and write nothing, n = 0
 * is OK, text_workspace_size is 0 for n < 0 and grows with n, an odd workspace address works.
 * Exit 0, or 1 with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define SYM(s) CAT(LIB, s)

enum { OUT = SYM(_OUTPUT_SIZE) };

static int fail(const char *what) {
    fprintf(stderr, "text_harness: %s\n", what);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) return fail("usage: text_harness TEXTS.bin OUT.bin [BATCH]");
    FILE *f = fopen(argv[1], "rb");
    if (!f) return fail("cannot open the texts");
    size_t cap = 1 << 20, size = 0;
    char *data = malloc(cap);
    for (size_t got; data && (got = fread(data + size, 1, cap - size, f)) > 0;) {
        size += got;
        if (size == cap) data = realloc(data, cap *= 2);
    }
    fclose(f);
    if (!data) return fail("out of memory");
    int n = 0;
    for (size_t i = 0; i < size; i++) n += data[i] == 0;
    const char **texts = malloc(sizeof *texts * (size_t)(n + 1));
    float *output = malloc(sizeof *output * (size_t)(n + 1) * OUT);
    if (!texts || !output) return fail("out of memory");
    for (size_t i = 0, k = 0; k < (size_t)n; k++) {
        texts[k] = data + i;
        i += strlen(data + i) + 1;
    }
    int batch = argc > 3 ? atoi(argv[3]) : n;
    if (n <= 0 || batch <= 0) return fail("no texts, or BATCH is not positive");
    size_t ws_bytes = SYM(_text_workspace_size)(batch);
    if (SYM(_text_workspace_size)(-1) != 0 || SYM(_text_workspace_size)(batch + 1) <= SYM(_text_workspace_size)(0) ||
        ws_bytes < SYM(_workspace_size)(batch))
        return fail("text_workspace_size does not grow with n");
    char *ws = malloc(ws_bytes + 1);
    if (!ws) return fail("out of memory");
    /* bad arguments: EINVAL and the output untouched */
    output[0] = -7.0f;
    const char *with_null[2] = {texts[0], NULL};
    if (SYM(_predict_text)(texts, -1, output, ws + 1) != SYM(_EINVAL) || SYM(_predict_text)(NULL, 1, output, ws + 1) != SYM(_EINVAL) ||
        SYM(_predict_text)(texts, 1, NULL, ws + 1) != SYM(_EINVAL) || SYM(_predict_text)(texts, 1, output, NULL) != SYM(_EINVAL) ||
        SYM(_predict_text)(with_null, 2, output, ws + 1) != SYM(_EINVAL) || SYM(_predict_text)(NULL, 0, NULL, NULL) != SYM(_OK))
        return fail("bad arguments are not answered as the header says");
    if (output[0] != -7.0f) return fail("a call answered EINVAL wrote output");
    for (int start = 0; start < n; start += batch) {
        int nb = n - start < batch ? n - start : batch;
        int rc = SYM(_predict_text)(texts + start, nb, output + (size_t)start * OUT, ws + 1);
        if (rc != SYM(_OK)) {
            fprintf(stderr, "text_harness: predict_text returned %d\n", rc);
            return 1;
        }
    }
    f = fopen(argv[2], "wb");
    if (!f || fwrite(output, sizeof *output, (size_t)n * OUT, f) != (size_t)n * OUT || fclose(f) != 0)
        return fail("cannot write the output");
    printf("text_harness: %d texts, batch %d, text workspace %zu bytes\n", n, batch, ws_bytes);
    free(ws);
    free(texts);
    free(output);
    free(data);
    return 0;
}
