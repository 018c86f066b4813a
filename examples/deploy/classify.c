/* classify.c — two nnc models in one C program: fashion_mlp's and fashion_cnn's inference
 * libraries (nnc --emit=lib) classify Fashion-MNIST test images, each with its own workspace.
 * Nothing but the two libraries, libc and libm is linked (see Makefile).
 *
 *   classify IMAGES LABELS      uncompressed IDX files (t10k-images-idx3-ubyte, ...)
 * prints each model's accuracy and how often the two agree. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fashion_cnn.h"
#include "fashion_mlp.h"

enum { BATCH = 64 };

/* An IDX file's payload after its header (magic, then one big-endian u32 per dimension). */
static unsigned char *read_idx(const char *path, int dims, int64_t *count) {
    FILE *f = fopen(path, "rb");
    unsigned char head[16];
    if (!f || fread(head, 1, 4 + 4 * (size_t)dims, f) != 4 + 4 * (size_t)dims || head[3] != dims) {
        fprintf(stderr, "classify: %s is not an uncompressed IDX file with %d dimensions\n", path, dims);
        if (f) fclose(f);
        return NULL;
    }
    int64_t total = 1;
    for (int d = 0; d < dims; d++) {
        int64_t n = (int64_t)head[4 + 4 * d] << 24 | head[5 + 4 * d] << 16 | head[6 + 4 * d] << 8 | head[7 + 4 * d];
        if (d == 0) *count = n;
        total *= n;
    }
    unsigned char *data = malloc((size_t)total);
    if (!data || fread(data, 1, (size_t)total, f) != (size_t)total) {
        fprintf(stderr, "classify: %s is truncated\n", path);
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

static int argmax(const float *p, int k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (p[j] > p[best]) best = j;
    return best;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: classify IMAGES LABELS (uncompressed IDX files)\n");
        return 2;
    }
    int64_t n = 0, nl = 0;
    unsigned char *images = read_idx(argv[1], 3, &n), *labels = read_idx(argv[2], 1, &nl);
    if (!images || !labels) return 1;
    if (n != nl) {
        fprintf(stderr, "classify: %lld images but %lld labels\n", (long long)n, (long long)nl);
        return 1;
    }
    /* the libraries take raw pixel values and scale them as training did */
    static float input[BATCH * fashion_mlp_INPUT_SIZE];
    static float out_mlp[BATCH * fashion_mlp_OUTPUT_SIZE], out_cnn[BATCH * fashion_cnn_OUTPUT_SIZE];
    void *ws_mlp = malloc(fashion_mlp_workspace_size(BATCH)), *ws_cnn = malloc(fashion_cnn_workspace_size(BATCH));
    if (!ws_mlp || !ws_cnn) return 1;
    int64_t right_mlp = 0, right_cnn = 0, agree = 0;
    for (int64_t start = 0; start < n; start += BATCH) {
        int nb = (int)(n - start < BATCH ? n - start : BATCH);
        for (int64_t i = 0; i < (int64_t)nb * fashion_mlp_INPUT_SIZE; i++) input[i] = images[start * fashion_mlp_INPUT_SIZE + i];
        if (fashion_mlp_predict(input, nb, out_mlp, ws_mlp) != fashion_mlp_OK ||
            fashion_cnn_predict(input, nb, out_cnn, ws_cnn) != fashion_cnn_OK) {
            fprintf(stderr, "classify: predict failed\n");
            return 1;
        }
        for (int e = 0; e < nb; e++) {
            int a = argmax(out_mlp + e * fashion_mlp_CLASSES, fashion_mlp_CLASSES);
            int b = argmax(out_cnn + e * fashion_cnn_CLASSES, fashion_cnn_CLASSES);
            right_mlp += a == labels[start + e];
            right_cnn += b == labels[start + e];
            agree += a == b;
        }
    }
    printf("%lld images\n", (long long)n);
    printf("fashion_mlp: accuracy %.4f\n", (double)right_mlp / (double)n);
    printf("fashion_cnn: accuracy %.4f\n", (double)right_cnn / (double)n);
    printf("the models agree on %.4f of the images\n", (double)agree / (double)n);
    free(ws_mlp);
    free(ws_cnn);
    free(images);
    free(labels);
    return 0;
}
