/* checkpoint.c — the compiler's safetensors reader (see checkpoint.h).
 *
 *   file = u64 little-endian N, N bytes of JSON header, data
 *   header = { "__metadata__": {...}, NAME: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ... }
 *
 * The runtime's reader (runtime/ckpt.c) is built on the runtime's JSON parser, allocator and
 * logging (nnrt_error, nnrt_alloc, json.c), which nnc_core does not link; this reader parses the
 * header with Debian's cJSON instead and checks what the compiler relies on: the header inside the
 * file, each used tensor F32 with its data inside the data region, the model's shapes, finite
 * values. */
#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "graph.h"

static int ckpt_error(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ckpt_error(const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nnc: error: checkpoint '%s': ", path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static void ckpt_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ckpt_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("nnc: note: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static unsigned char *ckpt_read_file(const char *path, size_t *size) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "nnc: error: cannot open checkpoint '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "nnc: error: checkpoint '%s' is not a regular file\n", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nnc: error: cannot open checkpoint '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    unsigned char *data = malloc((size_t)st.st_size + 1);
    size_t got = data ? fread(data, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!data || got != (size_t)st.st_size) {
        fprintf(stderr, "nnc: error: cannot read checkpoint '%s'\n", path);
        free(data);
        return NULL;
    }
    *size = got;
    return data;
}

static void ckpt_shape_text(char *out, size_t cap, int rank, const int64_t *dims) {
    size_t at = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < rank && at < cap; i++) at += (size_t)snprintf(out + at, cap - at, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (at < cap) snprintf(out + at, cap - at, "]");
}

typedef struct CkptTensor {
    int rank;
    int64_t dims[GRAPH_MAX_RANK];
    const unsigned char *bytes;
    int64_t count;
} CkptTensor;

/* The tensor NAME of the header, checked: F32, a shape, data inside the data region. 0: found;
 * -1: absent; 1: malformed (reported). */
static int ckpt_tensor(const char *path, const cJSON *header, const char *name, const unsigned char *data, size_t data_size,
                       CkptTensor *t) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(header, name);
    if (!e) return -1;
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return ckpt_error(path, "tensor '%s' has no valid dtype, shape and data_offsets (corrupt header)", name);
    if (strcmp(dtype->valuestring, "F32") != 0)
        return ckpt_error(path, "tensor '%s' has dtype %s; nnc reads F32 checkpoints only", name, dtype->valuestring);
    t->rank = cJSON_GetArraySize(shape);
    if (t->rank > GRAPH_MAX_RANK) return ckpt_error(path, "tensor '%s' has rank %d (at most %d)", name, t->rank, GRAPH_MAX_RANK);
    t->count = 1;
    for (int i = 0; i < t->rank; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12 || d->valuedouble != floor(d->valuedouble))
            return ckpt_error(path, "tensor '%s' has an invalid shape (corrupt header)", name);
        t->dims[i] = (int64_t)d->valuedouble;
        t->count *= t->dims[i];
    }
    double begin = cJSON_GetArrayItem(offsets, 0)->valuedouble, end = cJSON_GetArrayItem(offsets, 1)->valuedouble;
    if (!(begin >= 0 && end >= begin && end <= (double)data_size && end - begin == 4.0 * (double)t->count))
        return ckpt_error(path, "tensor '%s' has data_offsets [%.0f, %.0f] that do not fit its shape or the file of %zu data bytes "
                          "(truncated or corrupt)", name, begin, end, data_size);
    t->bytes = data + (size_t)begin;
    return 0;
}

/* Little-endian F32 bytes into floats; 1 (reported) when one is not finite. */
static int ckpt_copy(const char *path, const char *name, const CkptTensor *t, float *dst) {
    for (int64_t i = 0; i < t->count; i++) {
        const unsigned char *b = t->bytes + 4 * i;
        uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&dst[i], &bits, 4);
        if (!isfinite(dst[i]))
            return ckpt_error(path, "tensor '%s' holds a non-finite value at element %lld (training diverged?)", name, (long long)i);
    }
    return 0;
}

static bool ckpt_known_name(const Graph *g, const char *name) {
    if (strcmp(name, "__metadata__") == 0 || strncmp(name, "optimizer.", 10) == 0 || strcmp(name, "__standardize.mean") == 0 ||
        strcmp(name, "__standardize.std") == 0)
        return true;
    if (strncmp(name, "__best.", 7) == 0) name += 7;
    for (int i = 0; i < g->params.len; i++)
        if (strcmp(graph_param(g, i)->name, name) == 0) return true;
    return false;
}

/* The runtime writes a string byte that is not UTF-8 as the lone surrogate escape \udcXX
 * (runtime/json.c, nnrt_buf_json_str); cJSON rejects lone surrogates, so those escapes become the
 * bytes again, in place, before it parses (cJSON keeps raw bytes >= 0x80 in strings as they are).
 * The second half of a surrogate pair is left alone. Returns the header's new length. */
static size_t ckpt_unescape_bytes(unsigned char *s, size_t n) {
    size_t r = 0, w = 0;
    bool after_high = false;
    while (r < n) {
        if (s[r] != '\\' || r + 1 >= n) {
            s[w++] = s[r++];
            after_high = false;
            continue;
        }
        unsigned u = 0;
        bool escape_u = s[r + 1] == 'u' && r + 6 <= n;
        for (size_t i = 2; escape_u && i < 6; i++) {
            unsigned char c = s[r + i];
            int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            escape_u = digit >= 0;
            u = u << 4 | (unsigned)(digit & 15);
        }
        if (escape_u && !after_high && u >= 0xDC80 && u < 0xDD00) {
            s[w++] = (unsigned char)(u & 0xFF);
            r += 6;
            continue;
        }
        after_high = escape_u && u >= 0xD800 && u < 0xDC00;
        for (size_t i = 0, len = escape_u ? 6 : 2; i < len; i++) s[w++] = s[r++];
    }
    return w;
}

int checkpoint_load(Arena *arena, const char *path, const Model *model, Checkpoint *out) {
    memset(out, 0, sizeof *out);
    out->path = path;
    size_t size = 0;
    unsigned char *file = ckpt_read_file(path, &size);
    if (!file) return 1;
    int status = 1;
    cJSON *header = NULL;
    uint64_t n = 0;
    for (int i = 7; size >= 8 && i >= 0; i--) n = n << 8 | file[i];
    if (size < 8 || n > size - 8 || n == 0 || file[8] != '{') {
        ckpt_error(path, "not a safetensors file (no header of a plausible length; truncated?)");
        goto done;
    }
    /* the header is one JSON object, padded with spaces as safetensors allows; cJSON would stop
     * at the object's end and ignore what follows, which the runtime's reader rejects */
    const char *text = (const char *)file + 8, *end = NULL;
    size_t text_len = ckpt_unescape_bytes(file + 8, (size_t)n);
    header = cJSON_ParseWithLengthOpts(text, text_len, &end, false);
    while (header && end < text + text_len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    if (!cJSON_IsObject(header) || end != text + text_len) {
        ckpt_error(path, "the header is not valid JSON (corrupt file)");
        goto done;
    }
    const Graph *g = model->graph;
    const unsigned char *data = file + 8 + n;
    size_t data_size = size - 8 - (size_t)n;
    out->params = ARENA_ARRAY(arena, float, g->param_count > 0 ? g->param_count : 1);
    int bad = 0;
    for (const cJSON *e = header->child; e; e = e->next)
        if (!ckpt_known_name(g, e->string)) {
            ckpt_error(path, "tensor '%s' is not a tensor of model '%s'", e->string, model->name);
            bad = 1;
        }
    for (int i = 0; i < g->params.len; i++) {
        const ParamTensor *p = graph_param(g, i);
        CkptTensor t;
        int found = ckpt_tensor(path, header, p->name, data, data_size, &t);
        if (found < 0) {
            ckpt_error(path, "tensor '%s' of model '%s' is missing", p->name, model->name);
            bad = 1;
            continue;
        }
        if (found > 0) { bad = 1; continue; }
        bool same = t.rank == p->shape.rank;
        for (int d = 0; same && d < t.rank; d++) same = t.dims[d] == p->shape.dims[d];
        if (!same) {
            char have[200], want[200];
            ckpt_shape_text(have, sizeof have, t.rank, t.dims);
            ckpt_shape_text(want, sizeof want, p->shape.rank, p->shape.dims);
            ckpt_error(path, "tensor '%s' has shape %s, the model expects %s", p->name, have, want);
            bad = 1;
            continue;
        }
        if (ckpt_copy(path, p->name, &t, out->params + p->offset)) bad = 1;
    }
    if (bad) {
        ckpt_note("was the checkpoint written by another model, or before '%s' changed? Retrain and save it with "
                  "./%s train --save FILE", model->name, model->name);
        goto done;
    }
    CkptTensor mean, std;
    int64_t input_size = shape_size(&model->input_shape);
    int has_mean = ckpt_tensor(path, header, "__standardize.mean", data, data_size, &mean);
    int has_std = ckpt_tensor(path, header, "__standardize.std", data, data_size, &std);
    if (has_mean > 0 || has_std > 0) goto done;
    if (has_mean == 0 || has_std == 0) {
        if (has_mean != 0 || has_std != 0 || mean.rank != 1 || std.rank != 1 || mean.dims[0] != input_size || std.dims[0] != input_size) {
            ckpt_error(path, "tensors '__standardize.mean' and '__standardize.std' must both be present with shape [%lld]",
                       (long long)input_size);
            goto done;
        }
        out->mean = ARENA_ARRAY(arena, float, input_size);
        out->std = ARENA_ARRAY(arena, float, input_size);
        if (ckpt_copy(path, "__standardize.mean", &mean, out->mean) || ckpt_copy(path, "__standardize.std", &std, out->std)) goto done;
    }
    /* csv(tokenize="words"): the vocabulary the runtime stored, for --emit=lib's text entry point */
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(header, "__metadata__");
    const cJSON *vocab = meta ? cJSON_GetObjectItemCaseSensitive(meta, "vocab") : NULL;
    if (cJSON_IsString(vocab)) out->vocab = arena_strdup(arena, vocab->valuestring);
    status = 0;
done:
    cJSON_Delete(header);
    free(file);
    return status;
}
