/* generate.c — `./model generate`: text from a byte-level language model trained on text(...).
 *
 *   generate --load FILE [--prompt TEXT] [--tokens N] [--temperature X] [--top-k K] [--seed S]
 *
 * The model must be input int[T], target class[T, 256] with probabilities out of infer (a
 * cross_entropy loss): one softmax over the 256 byte values per position. Each step puts the
 * context, the last T bytes of prompt + generated text, at the start of the T input positions
 * (the rest are 0) and samples the next byte from the distribution at the context's last
 * position. That is the training distribution for a causal model, whose position i sees
 * positions 0..i only, so the padding is never read; for a model that is not causal the padding
 * would leak in (nothing here can tell). An empty prompt starts the context from "\n" (a line
 * start), which is not printed. Output: the prompt, then N bytes, nothing else (no newline).
 *
 * Sampling: --temperature 0 takes the most probable byte (the lowest on ties); otherwise the
 * weights are p^(1/X) (softmax of the logits over X), restricted by --top-k K to the K most
 * probable bytes (ties: lower byte first), and one draw of xoshiro256** seeded by (seed,
 * GENERATE, 0) per byte picks among them, so a seed gives the same text every time.
 */
#include "nnrt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BYTE_VALUES 256

typedef struct Candidate {
    double p;
    int byte;
} Candidate;

static int by_probability(const void *a, const void *b) {
    const Candidate *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->byte - y->byte;
}

/* Is m a byte-level language model? Reports what it is otherwise. */
static int check_language_model(const NnrtModel *m) {
    int64_t t = m->input_size;
    int ok = m->input_kind == NNRT_INPUT_INT && m->input_rank == 1 &&
             m->target_kind == NNRT_TARGET_CLASS && m->target_rank == 1 && m->target_dims[0] == t &&
             m->target_classes == BYTE_VALUES && m->infer &&
             m->output_kind == NNRT_OUTPUT_PROBABILITIES && m->output_size == t * BYTE_VALUES &&
             (m->input_vocab == 0 || m->input_vocab >= BYTE_VALUES);
    if (ok) return 0;
    char input[160], target[160];
    int64_t dims[NNRT_MAX_RANK + 1];
    int rank = m->target_rank < 0 || m->target_rank > NNRT_MAX_RANK ? 0 : m->target_rank;
    for (int i = 0; i < rank; i++) dims[i] = m->target_dims[i];
    if (m->target_kind == NNRT_TARGET_CLASS) dims[rank++] = m->target_classes;
    nnrt_setting_declaration(m->input_name ? m->input_name : "x",
                             m->input_kind == NNRT_INPUT_INT ? "int" : "float", m->input_rank,
                             m->input_dims, input, sizeof input);
    nnrt_setting_declaration(m->target_name ? m->target_name : "y",
                             m->target_kind == NNRT_TARGET_CLASS ? "class" : "float", rank, dims,
                             target, sizeof target);
    nnrt_error("generate needs a byte-level language model, as text(...) data trains: input "
               "int[T], target class[T, 256], a cross_entropy loss; model '%s' declares input %s "
               "and target %s%s", m->name ? m->name : "?", input, target,
               m->output_kind == NNRT_OUTPUT_PROBABILITIES ? "" : " and no probabilities");
    if (m->input_kind == NNRT_INPUT_INT && m->input_vocab > 0 && m->input_vocab < BYTE_VALUES)
        nnrt_note("its embedding's vocabulary (%lld) does not cover the 256 byte values",
                  (long long)m->input_vocab);
    return -1;
}

/* The next byte from the distribution p[256] (see the header comment). */
static int sample(const float *p, const NnrtRunConfig *cfg, NnrtRng *rng) {
    Candidate c[BYTE_VALUES];
    for (int b = 0; b < BYTE_VALUES; b++) c[b] = (Candidate){p[b] > 0 ? p[b] : 0, b};
    qsort(c, BYTE_VALUES, sizeof *c, by_probability);
    if (cfg->temperature == 0) return c[0].byte;
    int k = cfg->top_k > 0 && cfg->top_k < BYTE_VALUES ? (int)cfg->top_k : BYTE_VALUES;
    double w[BYTE_VALUES], total = 0, top = log(c[0].p);
    for (int i = 0; i < k; i++) total += w[i] = c[i].p > 0 ? exp((log(c[i].p) - top) / cfg->temperature) : 0;
    double u = (double)(nnrt_rng_next(rng) >> 11) * 0x1p-53 * total;
    for (int i = 0; i < k; i++) {
        if (u < w[i]) return c[i].byte;
        u -= w[i];
    }
    return c[0].byte; /* u fell past the last weight by rounding */
}

int nnrt_cmd_generate(const NnrtModel *m, const NnrtRunConfig *cfg) {
    if (check_language_model(m) != 0) return 1;
    if (cfg->top_k > BYTE_VALUES) {
        nnrt_error("--top-k: must be at most 256 (the model's byte values), got '%lld'",
                   (long long)cfg->top_k);
        return 1;
    }
    if (!cfg->load) {
        nnrt_error("generate needs the weights: --load FILE (a checkpoint written by train --save)");
        return 1;
    }
    const int64_t t = m->input_size, n = cfg->gen_tokens;
    const char *prompt = cfg->prompt ? cfg->prompt : "";
    size_t plen = strlen(prompt);
    int rc = 1;
    float *params = nnrt_alloc((size_t)m->param_count, sizeof(float), "the parameters");
    float *x = nnrt_zalloc((size_t)t, sizeof(float), "the input");
    float *out = nnrt_alloc((size_t)m->output_size, sizeof(float), "the output");
    void *ws = nnrt_alloc_aligned(nnrt_workspace_bytes(m, 1, sizeof(float)), "the workspace");
    /* the whole text so far: "\n" for an empty prompt, then the prompt, then what is generated */
    unsigned char *text = nnrt_alloc(plen + (size_t)n + 1, 1, "the text");
    float *mean = NULL, *std = NULL;
    if (!params || !x || !out || !ws || !text) goto done;
    if (nnrt_load_for_inference(m, cfg->load, params, &mean, &std) != 0) goto done;
    size_t len = plen ? plen : 1;
    if (plen) memcpy(text, prompt, plen);
    else text[0] = '\n';
    NnrtRng rng;
    nnrt_rng_seed(&rng, cfg->seed, NNRT_STREAM_GENERATE, 0);
    fwrite(prompt, 1, plen, stdout);
    for (int64_t k = 0; k < n; k++) {
        size_t ctx = len < (size_t)t ? len : (size_t)t;
        const unsigned char *from = text + len - ctx;
        for (int64_t i = 0; i < t; i++) x[i] = (size_t)i < ctx ? (float)from[i] : 0.0f;
        m->infer(params, x, ws, 1, out);
        int byte = sample(out + (ctx - 1) * BYTE_VALUES, cfg, &rng);
        text[len++] = (unsigned char)byte;
        putchar(byte);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        nnrt_error("generate: cannot write the output");
        goto done;
    }
    rc = 0;
done:
    free(params);
    free(x);
    free(out);
    free(ws);
    free(text);
    free(mean);
    free(std);
    return rc;
}
