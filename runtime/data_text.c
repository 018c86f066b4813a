/* data_text.c — sequence data for language models: text(path) and tokens(path).
 *
 *   text(path, context=T, stride=T)     the file's bytes, one token per byte (256 classes)
 *   tokens(path, context=T, stride=T)   llm.c's token files: a header of 256 little-endian int32
 *                                       (magic 20240520, version 1, token count, then unused),
 *                                       then count uint16 token ids, little-endian
 *
 * Example k is the window of ids [s, s + T) as input and [s + 1, s + T + 1) as targets, with
 * s = k * stride, for every window that fits: N = (L - T - 1) / stride + 1 of a stream of L ids.
 * The stream is kept once (1 or 2 bytes per id) and windows are built when a batch is gathered
 * (nnrt_data_gather), so memory stays the file's size however small the stride. Files go through
 * stream.c like every data file (gzip is decompressed), with the byte offset of every error.
 */
#include "nnrt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_MAX_BYTES (16ull << 30) /* the IDX loader's limit */
#define TOKENS_HEADER_BYTES 1024     /* 256 int32 */
#define TOKENS_MAGIC 20240520
#define TOKENS_VERSION 1

/* Windows of context t and stride in a stream of length ids. */
static int64_t window_count(int64_t length, int64_t t, int64_t stride) {
    return length < t + 1 ? 0 : (length - t - 1) / stride + 1;
}

/* Reads the rest of the stream into a buffer that grows as data arrives (at most `limit`
 * bytes); *n is what was read. NULL after reporting. */
static uint8_t *read_rest(NnrtStream *s, const char *path, uint64_t start, uint64_t *n) {
    uint64_t bound = nnrt_stream_bound(s);
    uint64_t cap = bound < (64u << 20) ? bound + 1 : (64u << 20), got = 0;
    uint8_t *buf = nnrt_alloc((size_t)cap, 1, "the text");
    while (buf) {
        size_t k = nnrt_stream_read(s, buf + got, (size_t)(cap - got));
        got += k;
        if (nnrt_stream_failed(s)) break;
        if (got < cap) {
            *n = got;
            return buf;
        }
        if (cap >= SEQ_MAX_BYTES) {
            nnrt_error("%s: byte offset %llu: the file holds more than the 16 GiB limit", path,
                       (unsigned long long)(start + got));
            break;
        }
        cap = cap * 2 < SEQ_MAX_BYTES ? cap * 2 : SEQ_MAX_BYTES;
        uint8_t *grown = realloc(buf, (size_t)cap);
        if (!grown) {
            nnrt_error("out of memory reading '%s' (%llu bytes so far)", path, (unsigned long long)got);
            break;
        }
        buf = grown;
    }
    free(buf);
    return NULL;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The ids must be classes of the target and, when the input's embedding says so, below its
 * vocabulary. `offset(i)` of id i is header + width * i. */
static int check_ids(const NnrtModel *m, const char *path, const uint8_t *u8, const uint16_t *u16,
                     int64_t n, uint64_t header, int width) {
    const char *what = u8 ? "byte" : "token id";
    for (int64_t i = 0; i < n; i++) {
        int64_t id = u8 ? u8[i] : u16[i];
        unsigned long long at = (unsigned long long)(header + (uint64_t)width * (uint64_t)i);
        if (id >= m->target_classes) {
            nnrt_error("%s: byte offset %llu: %s %lld is out of range for target '%s' (class[%lld, "
                       "%lld] takes 0..%lld)", path, at, what, (long long)id,
                       m->target_name ? m->target_name : "y", (long long)m->target_dims[0],
                       (long long)m->target_classes, (long long)m->target_classes - 1);
            return -1;
        }
        if (m->input_vocab > 0 && id >= m->input_vocab) {
            nnrt_error("%s: byte offset %llu: %s %lld is out of range for input '%s' (vocabulary of "
                       "%lld)", path, at, what, (long long)id, m->input_name ? m->input_name : "x",
                       (long long)m->input_vocab);
            return -1;
        }
    }
    return 0;
}

static int load_text(NnrtStream *s, const char *path, NnrtData *out, int64_t *length) {
    uint64_t n;
    uint8_t *bytes = read_rest(s, path, 0, &n);
    if (!bytes) return -1;
    out->own[0] = bytes;
    if (n == 0) {
        nnrt_error("%s: byte offset 0: the file is empty%s", path,
                   nnrt_stream_is_gzip(s) ? " (gzip data that decompresses to 0 bytes)" : "");
        return -1;
    }
    out->seq_u8 = bytes;
    *length = (int64_t)n;
    return 0;
}

static int load_tokens(NnrtStream *s, const char *path, NnrtData *out, int64_t *length) {
    uint8_t h[TOKENS_HEADER_BYTES];
    size_t got = nnrt_stream_read(s, h, sizeof h);
    if (nnrt_stream_failed(s)) return -1;
    if (got == 0) {
        nnrt_error("%s: byte offset 0: the file is empty", path);
        return -1;
    }
    /* the magic and version first: a short file of another kind is not "a truncated header" */
    memset(h + got, 0, sizeof h - got);
    int32_t magic = (int32_t)le32(h), version = (int32_t)le32(h + 4), count = (int32_t)le32(h + 8);
    if (got < sizeof h && (got < 4 || magic == TOKENS_MAGIC) && (got < 8 || version == TOKENS_VERSION)) {
        nnrt_error("%s: byte offset %zu: unexpected end of file: expected %d bytes of header (256 "
                   "int32), the file has only %zu", path, got, TOKENS_HEADER_BYTES, got);
        return -1;
    }
    if (magic != TOKENS_MAGIC) {
        nnrt_error("%s: byte offset 0: bad magic number %ld: not a token file (llm.c's token files "
                   "start with the int32 %d)", path, (long)magic, TOKENS_MAGIC);
        return -1;
    }
    if (version != TOKENS_VERSION) {
        nnrt_error("%s: byte offset 4: version %ld is not supported (expected %d: uint16 token "
                   "ids)", path, (long)version, TOKENS_VERSION);
        return -1;
    }
    if (count < 1) {
        nnrt_error("%s: byte offset 8: the header counts %ld tokens; expected at least 1", path,
                   (long)count);
        return -1;
    }
    uint64_t want = 2 * (uint64_t)count;
    uint64_t room = nnrt_stream_bound(s);
    if (want > room && nnrt_stream_is_gzip(s)) {
        nnrt_error("%s: byte offset %d: the header counts %ld tokens (%llu bytes), more than the "
                   "rest of this gzip file can hold (a wrong count?)", path, TOKENS_HEADER_BYTES,
                   (long)count, (unsigned long long)want);
        return -1;
    }
    uint8_t *raw = nnrt_alloc((size_t)(want < room ? want : room) + 1, 1, "the token ids");
    if (!raw) return -1;
    out->own[0] = raw;
    uint64_t have = nnrt_stream_read(s, raw, (size_t)(want < room ? want : room) + 1);
    if (nnrt_stream_failed(s)) return -1;
    if (have < want) {
        nnrt_error("%s: byte offset %llu: unexpected end of file: expected %llu bytes of token ids "
                   "(the header's %ld tokens), the file has only %llu", path,
                   (unsigned long long)(TOKENS_HEADER_BYTES + have), (unsigned long long)want,
                   (long)count, (unsigned long long)have);
        return -1;
    }
    if (have > want || nnrt_stream_read(s, raw + want, 1) == 1) {
        nnrt_error("%s: byte offset %llu: the header counts %ld tokens, but the file goes on after "
                   "them (a wrong count?)", path, (unsigned long long)(TOKENS_HEADER_BYTES + want),
                   (long)count);
        return -1;
    }
    if (nnrt_stream_failed(s)) return -1;
    /* little-endian on disk; converted in place, each id to the host's uint16 */
    uint16_t *ids = (uint16_t *)(void *)raw;
    for (int64_t i = 0; i < count; i++) {
        uint16_t v = (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8);
        memcpy(ids + i, &v, sizeof v);
    }
    out->seq_u16 = ids;
    *length = count;
    return 0;
}

int nnrt_sequence_load(const NnrtModel *m, const char *path, int tokens, int64_t stride,
                       NnrtData *out) {
    NnrtStream *s = nnrt_stream_open(path);
    if (!s) return -1;
    int64_t length = 0;
    int rc = tokens ? load_tokens(s, path, out, &length) : load_text(s, path, out, &length);
    nnrt_stream_close(s);
    if (rc != 0) return -1;
    uint64_t header = tokens ? TOKENS_HEADER_BYTES : 0;
    if (check_ids(m, path, out->seq_u8, out->seq_u16, length, header, tokens ? 2 : 1) != 0) return -1;
    int64_t t = m->input_size;
    int64_t count = window_count(length, t, stride);
    if (count < 1) {
        nnrt_error("%s: %lld %s are too few for one example: context %lld needs %lld (the inputs and "
                   "the %s after them)", path, (long long)length, tokens ? "tokens" : "bytes",
                   (long long)t, (long long)t + 1, tokens ? "token" : "byte");
        return -1;
    }
    out->seq_length = length;
    out->seq_stride = stride;
    out->count = count;
    out->input_size = t;
    out->target_size = t;
    out->has_targets = 1;
    return 0;
}

int nnrt_sequence_split(NnrtData *train, double fraction, NnrtData *val) {
    int64_t n = train->count, t = train->input_size, stride = train->seq_stride;
    int64_t nval = (int64_t)floor(fraction * (double)n);
    if (nval < 1) nval = 1;
    /* the held-out windows are the stream's tail; training windows end before it starts */
    int64_t tail = (nval - 1) * stride + t + 1;
    int64_t boundary = train->seq_length - tail;
    int64_t ntrain = boundary > 0 ? window_count(boundary, t, stride) : 0;
    if (nval >= n || ntrain < 1) {
        nnrt_error("validate: split(%g) of %lld examples leaves no training or no validation data",
                   fraction, (long long)n);
        return -1;
    }
    *val = *train;
    memset(val->own, 0, sizeof val->own);
    val->label = NULL;
    val->count = nval;
    val->seq_length = tail;
    if (train->seq_u8) val->seq_u8 = train->seq_u8 + boundary;
    if (train->seq_u16) val->seq_u16 = train->seq_u16 + boundary;
    train->count = ntrain;
    train->seq_length = boundary;
    return 0;
}

void nnrt_sequence_gather(const NnrtData *d, int64_t e, float *x, int32_t *y) {
    int64_t t = d->input_size, s = e * d->seq_stride;
    if (d->seq_u8) {
        const uint8_t *ids = d->seq_u8 + s;
        for (int64_t i = 0; i < t; i++) x[i] = (float)ids[i];
        if (y)
            for (int64_t i = 0; i < t; i++) y[i] = ids[i + 1];
    } else {
        const uint16_t *ids = d->seq_u16 + s;
        for (int64_t i = 0; i < t; i++) x[i] = (float)ids[i];
        if (y)
            for (int64_t i = 0; i < t; i++) y[i] = ids[i + 1];
    }
}
