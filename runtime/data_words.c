/* data_words.c — csv(..., text="COLUMN", tokenize="words", vocab=N): words and vocabularies.
 *
 * A word is a maximal run of ASCII letters and digits, lower-cased; bytes >= 0x80 count as
 * letters, so a UTF-8 word is never cut inside a character (and "café" stays one word). Every
 * other byte separates words. The vocabulary is built from the *training* examples (after
 * split): the N - 2 most frequent words, ties broken by the word's bytes in ascending order, so it
 * depends on nothing but the training data. Word k of the vocabulary (0-based, most frequent
 * first) has id k + 2; 0 is padding and 1 an unknown word. It is stored in the checkpoint as one
 * metadata string, the words joined by '\n' (a word never holds a newline), and eval and predict
 * encode their data with it.
 *
 * While loading, a data set's words are interned in its own dictionary (an open-addressing hash
 * table) and each example keeps the ids of all its words, so the counts cover whole texts, not
 * only the first T words.
 */
#include "nnrt_internal.h"

#include <stdlib.h>
#include <string.h>

struct NnrtWords {
    char **word;      /* distinct words, in order of first appearance */
    int64_t nwords, wcap;
    int64_t *slot;    /* hash table of word indices + 1 (0: empty), size scap (a power of two) */
    int64_t scap;
    int32_t *ids;     /* every example's words, concatenated */
    int64_t nids, icap;
};

NnrtWords *nnrt_words_new(void) { return nnrt_zalloc(1, sizeof(NnrtWords), "the words"); }

void nnrt_words_free(NnrtWords *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->nwords; i++) free(w->word[i]);
    free(w->word);
    free(w->slot);
    free(w->ids);
    free(w);
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int grow_table(NnrtWords *w) {
    int64_t ncap = w->scap ? w->scap * 2 : 1024;
    int64_t *slot = calloc((size_t)ncap, sizeof *slot);
    if (!slot) return -1;
    for (int64_t i = 0; i < w->nwords; i++) {
        uint64_t h = hash_bytes(w->word[i], strlen(w->word[i])) & (uint64_t)(ncap - 1);
        while (slot[h]) h = (h + 1) & (uint64_t)(ncap - 1);
        slot[h] = i + 1;
    }
    free(w->slot);
    w->slot = slot;
    w->scap = ncap;
    return 0;
}

/* The index of word s[0..n) in w, added when `add` (else -1 when absent); -2: out of memory. */
static int64_t intern(NnrtWords *w, const char *s, size_t n, int add) {
    if (add && 2 * (w->nwords + 1) > w->scap && grow_table(w) != 0) return -2;
    if (!w->scap) return -1;
    uint64_t h = hash_bytes(s, n) & (uint64_t)(w->scap - 1);
    for (; w->slot[h]; h = (h + 1) & (uint64_t)(w->scap - 1)) {
        const char *t = w->word[w->slot[h] - 1];
        if (strncmp(t, s, n) == 0 && t[n] == 0) return w->slot[h] - 1;
    }
    if (!add) return -1;
    if (w->nwords == w->wcap) {
        int64_t ncap = w->wcap ? w->wcap * 2 : 1024;
        char **nw = realloc(w->word, (size_t)ncap * sizeof *nw);
        if (!nw) return -2;
        w->word = nw;
        w->wcap = ncap;
    }
    char *copy = malloc(n + 1);
    if (!copy) return -2;
    memcpy(copy, s, n);
    copy[n] = 0;
    w->word[w->nwords] = copy;
    w->slot[h] = ++w->nwords;
    return w->nwords - 1;
}

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

int nnrt_words_add_text(NnrtWords *w, const char *text, size_t len, int64_t span[2]) {
    span[0] = w->nids;
    span[1] = 0;
    char word[256];
    for (size_t i = 0; i < len;) {
        if (!is_word_byte((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t n = 0;
        /* a word longer than the buffer is kept as its first 255 bytes */
        for (; i < len && is_word_byte((unsigned char)text[i]); i++)
            if (n < sizeof word - 1) {
                unsigned char c = (unsigned char)text[i];
                word[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            }
        int64_t id = intern(w, word, n, 1);
        if (id < 0 || id > INT32_MAX) return -1;
        if (w->nids == w->icap) {
            int64_t ncap = w->icap ? w->icap * 2 : 4096;
            int32_t *ni = realloc(w->ids, (size_t)ncap * sizeof *ni);
            if (!ni) return -1;
            w->ids = ni;
            w->icap = ncap;
        }
        w->ids[w->nids++] = (int32_t)id;
        span[1]++;
    }
    return 0;
}

typedef struct Ranked {
    int64_t count;
    const char *word;
} Ranked;

static int by_count_then_word(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word);
}

char *nnrt_vocab_build(const NnrtData *d, int64_t size) {
    const NnrtWords *w = d->words;
    Ranked *r = nnrt_zalloc((size_t)w->nwords + 1, sizeof *r, "the vocabulary");
    if (!r) return NULL;
    for (int64_t i = 0; i < w->nwords; i++) r[i].word = w->word[i];
    for (int64_t e = 0; e < d->count; e++) {
        const int64_t *span = d->word_span + 2 * e;
        for (int64_t k = 0; k < span[1]; k++) r[w->ids[span[0] + k]].count++;
    }
    qsort(r, (size_t)w->nwords, sizeof *r, by_count_then_word);
    int64_t keep = 0;
    while (keep < size - 2 && keep < w->nwords && r[keep].count > 0) keep++;
    size_t bytes = 1;
    for (int64_t i = 0; i < keep; i++) bytes += strlen(r[i].word) + 1;
    char *out = nnrt_alloc(bytes, 1, "the vocabulary");
    if (out) {
        char *p = out;
        for (int64_t i = 0; i < keep; i++) {
            size_t n = strlen(r[i].word);
            if (i) *p++ = '\n';
            memcpy(p, r[i].word, n);
            p += n;
        }
        *p = 0;
    }
    free(r);
    return out;
}

int nnrt_text_encode(NnrtData *d, const char *vocab) {
    if (!d->words_pending) return 0;
    NnrtWords *v = nnrt_words_new();
    int32_t *map = v ? nnrt_alloc((size_t)d->words->nwords + 1, sizeof *map, "the vocabulary") : NULL;
    int rc = -1;
    if (!map) goto done;
    /* the vocabulary's words interned in order: index k is id k + 2 */
    for (const char *p = vocab; *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (intern(v, p, n, 1) < -1) goto oom;
        p += n + (end != NULL);
    }
    if (v->nwords + 2 > d->words_vocab) {
        nnrt_error("%s: the vocabulary has %lld words, but csv(vocab=%lld) has room for %lld (ids "
                   "0 and 1 are padding and unknown); was the checkpoint trained with another vocab?",
                   d->label ? d->label : "data", (long long)v->nwords, (long long)d->words_vocab,
                   (long long)d->words_vocab - 2);
        goto done;
    }
    for (int64_t i = 0; i < d->words->nwords; i++) {
        const char *s = d->words->word[i];
        int64_t k = intern(v, s, strlen(s), 0);
        map[i] = k >= 0 ? (int32_t)(k + 2) : 1;
    }
    int64_t t = d->input_size;
    for (int64_t e = 0; e < d->count; e++) {
        const int64_t *span = d->word_span + 2 * e;
        float *x = d->x_f32 + e * t;
        for (int64_t i = 0; i < t; i++) x[i] = i < span[1] ? (float)map[d->words->ids[span[0] + i]] : 0.0f;
    }
    d->words_pending = 0;
    rc = 0;
    goto done;
oom:
    nnrt_error("out of memory: cannot hold the vocabulary");
done:
    free(map);
    nnrt_words_free(v);
    return rc;
}

int nnrt_text_prepare(NnrtData *train, NnrtData *val, char **vocab) {
    if (!train->words_pending) {
        if (val && val->words_pending) {
            nnrt_error("the validation data is csv(..., tokenize=\"words\") but the training data "
                       "is not: the vocabulary comes from the training data");
            return -1;
        }
        free(*vocab); /* a vocabulary of earlier words data does not describe this data */
        *vocab = NULL;
        return 0;
    }
    if (!*vocab && !(*vocab = nnrt_vocab_build(train, train->words_vocab))) return -1;
    if (nnrt_text_encode(train, *vocab) != 0) return -1;
    if (val && val->words_pending && nnrt_text_encode(val, *vocab) != 0) return -1;
    return 0;
}
