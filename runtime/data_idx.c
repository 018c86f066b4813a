/* data_idx.c — IDX files (the MNIST/Fashion-MNIST format), plain or gzip-compressed.
 *
 *   file   = magic dims data
 *   magic  = 0x00 0x00 type ndims          type 0x08: unsigned byte (the only one accepted)
 *   dims   = ndims x uint32, big-endian    dims[0] is the example count
 *   data   = product(dims) bytes           exactly: a short file or trailing bytes is an error
 *
 * stream.c reads plain and gzip files alike (by content, not name). Every error names the file and
 * the byte offset (in the decompressed stream) where the problem is. Sizes are checked before
 * allocating: against the 16 GiB limit, then against what the rest of the file can hold (its
 * size, or for gzip deflate's largest expansion of it), so a corrupt header never makes the loader
 * ask for memory the file cannot fill. Images stay uint8; a 256-entry table maps each byte
 * to byte * scale (computed in double, rounded once) when batches are gathered.
 */
#include "nnrt_internal.h"

#include <stdlib.h>
#include <string.h>

#define IDX_MAX_BYTES (16ull << 30) /* refuse data sets larger than 16 GiB */

typedef struct IdxReader {
    NnrtStream *s;
    const char *path;
    uint64_t offset; /* bytes consumed so far (decompressed) */
} IdxReader;

static const char *type_name(int t) {
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return "unknown";
}

static int ends_with_gz(const char *path) {
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* Reports that only `got` of the `n` bytes of `what` starting at r->offset arrived (unless the
 * stream already reported a gzip or read error). */
static void report_short(IdxReader *r, uint64_t got, uint64_t n, const char *what) {
    if (nnrt_stream_failed(r->s)) return;
    unsigned long long at = (unsigned long long)(r->offset + got);
    if (at == 0 && nnrt_stream_is_gzip(r->s))
        nnrt_error("%s: byte offset 0: the file is empty (gzip data that decompresses to 0 bytes)", r->path);
    else if (at == 0)
        nnrt_error("%s: byte offset 0: the file is empty", r->path);
    else
        nnrt_error("%s: byte offset %llu: unexpected end of file: expected %llu bytes of %s, "
                   "the file has only %llu", r->path, at, (unsigned long long)n, what,
                   (unsigned long long)got);
}

static int read_exact(IdxReader *r, void *buf, uint64_t n, const char *what) {
    uint64_t got = nnrt_stream_read(r->s, buf, (size_t)n);
    if (got != n) {
        report_short(r, got, n, what);
        return -1;
    }
    r->offset += n;
    return 0;
}

/* Refuses, before allocating, n bytes of `what` that the rest of the file cannot hold: a plain
 * file's size is exact, a gzip file's compressed size bounds what it can expand to. */
static int check_room(IdxReader *r, uint64_t n, const char *what) {
    uint64_t room = nnrt_stream_bound(r->s);
    if (n <= room) return 0;
    if (!nnrt_stream_is_gzip(r->s))
        report_short(r, room, n, what);
    else
        nnrt_error("%s: byte offset %llu: the header describes %llu bytes of %s, more than the "
                   "rest of this gzip file can hold (a corrupt header?)", r->path,
                   (unsigned long long)r->offset, (unsigned long long)n, what);
    return -1;
}

/* Reads n bytes into a buffer that grows as data arrives, so even where the file size does not
 * bound the data (a pipe), a header that lies costs at most twice the real data. */
static uint8_t *read_growing(IdxReader *r, uint64_t n, const char *what) {
    if (check_room(r, n, what) != 0) return NULL;
    uint64_t cap = n < (64u << 20) ? n : (64u << 20), got = 0;
    uint8_t *buf = nnrt_alloc((size_t)cap, 1, what);
    while (buf) {
        uint64_t k = nnrt_stream_read(r->s, buf + got, (size_t)(cap - got));
        got += k;
        if (got == n) {
            r->offset += n;
            return buf;
        }
        if (got < cap) {
            report_short(r, got, n, what);
            break;
        }
        cap = cap * 2 < n ? cap * 2 : n;
        uint8_t *grown = realloc(buf, (size_t)cap);
        if (!grown) nnrt_error("out of memory reading %llu bytes of %s from '%s'",
                               (unsigned long long)n, what, r->path);
        else {
            buf = grown;
            continue;
        }
        break;
    }
    free(buf);
    return NULL;
}

/* After the data: nothing may follow (a gzip stream's own end is checked by the stream). */
static int expect_end(IdxReader *r) {
    unsigned char extra;
    if (nnrt_stream_read(r->s, &extra, 1) == 1) {
        nnrt_error("%s: byte offset %llu: unexpected trailing data after the %llu bytes the "
                   "header describes", r->path, (unsigned long long)r->offset,
                   (unsigned long long)r->offset);
        return -1;
    }
    return nnrt_stream_failed(r->s) ? -1 : 0;
}

/* magic and dims; checks type 0x08 and the rank range [min_rank, max_rank]. */
static int read_header(IdxReader *r, int min_rank, int max_rank, uint32_t *dims, int *rank) {
    unsigned char magic[4];
    if (read_exact(r, magic, 4, "IDX header") != 0) return -1;
    if (magic[0] != 0 || magic[1] != 0) {
        nnrt_error("%s: byte offset 0: bad magic number 0x%02x%02x%02x%02x: not an IDX file (IDX "
                   "files start with the bytes 00 00 08 <rank>)", r->path, magic[0], magic[1],
                   magic[2], magic[3]);
        if (ends_with_gz(r->path) && !nnrt_stream_is_gzip(r->s))
            nnrt_note("'%s' is named .gz but is not gzip-compressed; it was read as it is",
                      r->path);
        return -1;
    }
    if (magic[2] != 0x08) {
        nnrt_error("%s: byte offset 2: element type 0x%02x (%s) is not supported; only unsigned "
                   "byte (0x08) IDX files are", r->path, magic[2], type_name(magic[2]));
        return -1;
    }
    if (magic[3] < min_rank || magic[3] > max_rank) {
        if (min_rank == max_rank)
            nnrt_error("%s: byte offset 3: %d dimensions; expected %d", r->path, magic[3], min_rank);
        else if (magic[3] < min_rank)
            nnrt_error("%s: byte offset 3: %d dimensions; expected at least %d", r->path, magic[3],
                       min_rank);
        else
            nnrt_error("%s: byte offset 3: %d dimensions; at most %d are supported", r->path,
                       magic[3], max_rank);
        return -1;
    }
    *rank = magic[3];
    unsigned char b[4 * NNRT_MAX_RANK];
    if (read_exact(r, b, 4u * (unsigned)*rank, "dimensions") != 0) return -1;
    for (int i = 0; i < *rank; i++)
        dims[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
                  (uint32_t)b[4 * i + 2] << 8 | (uint32_t)b[4 * i + 3];
    return 0;
}

static void format_dims(const uint32_t *dims, int n, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(out);
        snprintf(out + k, cap - k, "%s%u", i ? "x" : "", dims[i]);
    }
    if (n == 0) snprintf(out, cap, "1");
}

static int load_images(const NnrtModel *m, const char *path, NnrtData *out) {
    IdxReader r = {nnrt_stream_open(path), path, 0};
    if (!r.s) return -1;
    uint32_t dims[NNRT_MAX_RANK];
    int rank, rc = -1;
    if (read_header(&r, 1, NNRT_MAX_RANK, dims, &rank) != 0) goto done;
    uint64_t count = dims[0], per = 1;
    for (int i = 1; i < rank; i++) {
        if (dims[i] != 0 && per > IDX_MAX_BYTES / dims[i]) {
            nnrt_error("%s: byte offset %d: the dimensions describe examples larger than the "
                       "16 GiB limit (a corrupt header?)", path, 4 + 4 * i);
            goto done;
        }
        per *= dims[i];
    }
    if (count == 0) {
        nnrt_error("%s: byte offset 4: the file holds 0 examples", path);
        goto done;
    }
    char shape[128];
    format_dims(dims + 1, rank - 1, shape, sizeof shape);
    /* the size first: a header asking for absurd memory is most likely corrupt */
    if (per != 0 && count > IDX_MAX_BYTES / per) {
        nnrt_error("%s: byte offset 4: %llu examples of %s bytes are %.0f bytes, more than the "
                   "16 GiB limit (a corrupt header?)", path, (unsigned long long)count, shape,
                   (double)count * (double)per);
        goto done;
    }
    if (per != (uint64_t)m->input_size) {
        nnrt_error("%s: byte offset 8: each example has %s = %llu values, but input '%s' of the "
                   "model has %lld", path, shape, (unsigned long long)per,
                   m->input_name ? m->input_name : "x", (long long)m->input_size);
        goto done;
    }
    uint8_t *x = read_growing(&r, count * per, "image data");
    if (!x) goto done;
    out->own[0] = x;
    if (expect_end(&r) != 0) goto done;
    if (m->input_kind == NNRT_INPUT_INT && m->input_vocab > 0) {
        for (uint64_t i = 0; i < count * per; i++)
            if (x[i] >= m->input_vocab) {
                nnrt_error("%s: byte offset %llu: token id %u is out of range for input '%s' "
                           "(vocabulary of %lld)", path, (unsigned long long)(4 + 4 * (uint64_t)rank + i),
                           x[i], m->input_name ? m->input_name : "x", (long long)m->input_vocab);
                goto done;
            }
    }
    out->x_u8 = x;
    out->count = (int64_t)count;
    out->input_size = m->input_size;
    rc = 0;
done:
    nnrt_stream_close(r.s);
    return rc;
}

static int load_labels(const NnrtModel *m, const char *path, NnrtData *out) {
    IdxReader r = {nnrt_stream_open(path), path, 0};
    if (!r.s) return -1;
    uint32_t dims[1];
    int rank, rc = -1;
    if (read_header(&r, 1, 1, dims, &rank) != 0) goto done;
    if ((int64_t)dims[0] != out->count) {
        nnrt_error("%s: byte offset 4: the labels file has %u labels but the images file has "
                   "%lld images", path, dims[0], (long long)out->count);
        goto done;
    }
    uint8_t *raw = read_growing(&r, dims[0], "labels");
    int32_t *y = raw ? nnrt_alloc(dims[0], sizeof(int32_t), "the labels") : NULL;
    out->own[1] = y;
    if (!y || expect_end(&r) != 0) {
        free(raw);
        goto done;
    }
    for (uint32_t i = 0; i < dims[0]; i++) {
        if (raw[i] >= m->target_classes) {
            nnrt_error("%s: byte offset %u: label %u is out of range for target '%s' (class[%lld] "
                       "takes 0..%lld)", path, 8 + i, raw[i],
                       m->target_name ? m->target_name : "y", (long long)m->target_classes,
                       (long long)m->target_classes - 1);
            free(raw);
            goto done;
        }
        y[i] = raw[i];
    }
    free(raw);
    out->y_class = y;
    out->has_targets = 1;
    out->target_size = 1;
    rc = 0;
done:
    nnrt_stream_close(r.s);
    return rc;
}

int nnrt_idx_load(const NnrtModel *m, const char *images, const char *labels, double scale,
                  NnrtData *out) {
    if (labels && m->target_kind != NNRT_TARGET_CLASS) {
        nnrt_error("idx() data sets have class labels, but target '%s' of the model is real-valued;"
                   " use csv(...) data", m->target_name ? m->target_name : "y");
        return -1;
    }
    if (!(scale == scale) || scale == 0) {
        nnrt_error("idx(): scale must be a non-zero number, got %g", scale);
        return -1;
    }
    if (m->input_kind == NNRT_INPUT_INT && scale != 1) {
        nnrt_error("idx(): input '%s' holds token ids, so scale must be 1 (got %g)",
                   m->input_name ? m->input_name : "x", scale);
        return -1;
    }
    if (load_images(m, images, out) != 0) return -1;
    if (labels && load_labels(m, labels, out) != 0) return -1;
    for (int v = 0; v < 256; v++) out->lut[v] = (float)((double)v * scale);
    out->target_size = m->target_kind == NNRT_TARGET_CLASS ? 1 : m->target_size;
    return 0;
}
