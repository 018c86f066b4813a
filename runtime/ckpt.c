/* ckpt.c — safetensors files: reading them robustly, writing them atomically.
 *
 *   file   = u64 little-endian N, header (N bytes of JSON, space-padded so 8 + N is a multiple of
 *            8), data
 *   header = { "__metadata__": { str: str, ... },
 *              NAME: { "dtype": "F32", "shape": [d, ...], "data_offsets": [begin, end] }, ... }
 *
 * Writing: the whole file goes to FILE.tmp.<pid> in the same directory, is flushed and fsynced,
 * renamed over FILE, and the directory is fsynced — a crash leaves either the old file or the new
 * one, never a mix. Any failure removes the temporary file; a process killed mid-save leaves its
 * FILE.tmp.<pid> beside FILE, and the next successful save of FILE removes it (its pid is dead).
 *
 * Reading treats the file as untrusted, with the same checks as the reference implementation:
 * bounded header (100 MB), valid JSON, F32 dtype, shape x 4 == end - begin, tensors tiling the
 * data region exactly (no gaps, overlaps or trailing bytes). Beyond it, memory and time stay in
 * proportion to the header: its text is checked before parsing (header_bounded), duplicate keys
 * are found by sorting, and a FIFO or device is refused before it is read. Every message names
 * the file.
 */
#include "nnrt_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define HEADER_MAX 100000000ull /* the reference implementation's limit */
#define JSON_DEPTH_CAP 64      /* beyond json.c's nesting limit: deeper is its error to report */

static int host_is_little_endian(void) {
    uint16_t x = 1;
    unsigned char c;
    memcpy(&c, &x, 1);
    return c == 1;
}

/* Writes floats as little-endian bytes (a byte swap on big-endian hosts). */
static int write_f32_le(FILE *f, const float *data, int64_t count) {
    if (host_is_little_endian())
        return fwrite(data, sizeof(float), (size_t)count, f) == (size_t)count ? 0 : -1;
    for (int64_t i = 0; i < count; i++) {
        unsigned char b[4], o[4];
        memcpy(b, &data[i], 4);
        for (int k = 0; k < 4; k++) o[k] = b[3 - k];
        if (fwrite(o, 1, 4, f) != 4) return -1;
    }
    return 0;
}

static void build_header(NnrtBuf *h, const NnrtTensorOut *t, int nt, const char *const *meta,
                         int nmeta) {
    nnrt_buf_puts(h, "{");
    if (nmeta > 0) {
        nnrt_buf_puts(h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) nnrt_buf_puts(h, ",");
            nnrt_buf_json_str(h, meta[2 * i]);
            nnrt_buf_puts(h, ":");
            nnrt_buf_json_str(h, meta[2 * i + 1]);
        }
        nnrt_buf_puts(h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        if (i || nmeta > 0) nnrt_buf_puts(h, ",");
        nnrt_buf_json_str(h, t[i].name);
        nnrt_buf_puts(h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].rank; d++)
            nnrt_buf_printf(h, "%s%lld", d ? "," : "", (long long)t[i].dims[d]);
        uint64_t end = off + 4 * (uint64_t)t[i].count;
        nnrt_buf_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                        (unsigned long long)end);
        off = end;
    }
    nnrt_buf_puts(h, "}");
    while ((h->len % 8) != 0) nnrt_buf_puts(h, " ");
}

static void fsync_dir_of(const char *path) {
    char *dir = nnrt_strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse fsync on directories */
        close(fd);
    }
    free(dir);
}

/* A save killed between creating FILE.tmp.<pid> and the rename (SIGKILL, a crash) leaves that
 * file beside FILE — never in its place. The next successful save of FILE removes those whose
 * process no longer exists; a live process's file (another run saving to the same name) is left
 * alone. Best effort: nothing here can fail the save. */
static void remove_stale_temps(const char *path) {
    char *dir = nnrt_strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *base = slash ? path + (slash - dir) + 1 : path;
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0) continue;
        const char *digits = n + blen + 5;
        size_t nd = strspn(digits, "0123456789");
        if (nd == 0 || nd > 9 || digits[nd] != 0) continue;
        long pid = strtol(digits, NULL, 10);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to ask) */
        size_t len = strlen(dir) + strlen(n) + 2;
        char *full = nnrt_alloc(len, 1, "a path");
        if (!full) break;
        snprintf(full, len, "%s/%s", dir, n);
        remove(full);
        free(full);
    }
    if (d) closedir(d);
    free(dir);
}

int nnrt_ckpt_write(const char *path, const NnrtTensorOut *t, int nt, const char *const *meta,
                    int nmeta) {
    NnrtBuf h = {0};
    build_header(&h, t, nt, meta, nmeta);
    if (h.oom) {
        nnrt_error("out of memory writing checkpoint '%s'", path);
        nnrt_buf_free(&h);
        return -1;
    }
    size_t tn = strlen(path) + 32;
    char *tmp = nnrt_alloc(tn, 1, "a path");
    if (!tmp) {
        nnrt_buf_free(&h);
        return -1;
    }
    snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    const char *step = "create";
    int ok = f != NULL;
    if (ok) {
        unsigned char len[8];
        for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
        step = "write";
        ok = fwrite(len, 1, 8, f) == 8 && fwrite(h.p, 1, h.len, f) == h.len;
        for (int i = 0; ok && i < nt; i++) ok = write_f32_le(f, t[i].data, t[i].count) == 0;
        if (ok) ok = fflush(f) == 0;
        if (ok) {
            step = "sync";
            ok = fsync(fileno(f)) == 0;
        }
        int saved = errno;
        if (fclose(f) != 0 && ok) {
            ok = 0;
            step = "close";
            saved = errno;
        }
        errno = saved;
    }
    if (ok) {
        step = "rename";
        ok = rename(tmp, path) == 0;
    }
    if (!ok) {
        int saved = errno;
        nnrt_error("cannot %s checkpoint '%s' (temporary file '%s'): %s", step, path, tmp,
                   strerror(saved));
        remove(tmp);
        nnrt_note("nothing was written to '%s'; a previous checkpoint there is intact", path);
    } else {
        remove_stale_temps(path);
        fsync_dir_of(path);
    }
    free(tmp);
    nnrt_buf_free(&h);
    return ok ? 0 : -1;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static int fail(const char *path, const char *fmt, ...) NNRT_PRINTF(2, 3);
static int fail(const char *path, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char clean[600]; /* names and strings in the message come from the file */
    nnrt_error("checkpoint '%s': %s", path, nnrt_printable(msg, clean, sizeof clean));
    return -1;
}

/* Opened without blocking and checked with fstat before anything is read, so a FIFO or a device
 * given to --load is an error instead of a wait for a writer that never comes. */
static int read_whole(const char *path, NnrtCkpt *c) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        nnrt_error("cannot open checkpoint '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        nnrt_error("checkpoint '%s' is not a regular file", path);
        close(fd);
        return -1;
    }
    char what[300];
    snprintf(what, sizeof what, "checkpoint '%s'", path);
    c->size = (size_t)st.st_size;
    c->file = nnrt_alloc(c->size, 1, what);
    size_t got = 0;
    while (c->file && got < c->size) {
        ssize_t r = read(fd, c->file + got, c->size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            nnrt_error("cannot read checkpoint '%s': %s", path, r < 0 ? strerror(errno) : "the file shrank while reading");
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    return c->file && got == c->size ? 0 : -1;
}

/* A safetensors header is an object of small objects whose arrays (a shape, data_offsets) have
 * at most NNRT_MAX_RANK elements, and where every value takes several bytes of text. Checked on the
 * text before parsing, so the parse tree (64 bytes a value) stays within 16x the header's size
 * however the header is made: one array of 49 million zeros would otherwise take 3 GB. */
static int header_bounded(const char *path, const char *text, size_t n) {
    int depth = 0;
    int in_array[JSON_DEPTH_CAP + 1] = {0}, elements[JSON_DEPTH_CAP + 1] = {0};
    size_t values = 1;
    for (size_t i = 0; i < n; i++) {
        char ch = text[i];
        if (ch == '"') {
            for (i++; i < n && text[i] != '"'; i++)
                if (text[i] == '\\') i++;
        } else if (ch == '[' || ch == '{') {
            values++;
            if (depth == JSON_DEPTH_CAP) return 0; /* the parser reports the depth */
            depth++;
            in_array[depth] = ch == '[';
            elements[depth] = 1;
        } else if (ch == ']' || ch == '}') {
            if (depth > 0) depth--;
        } else if (ch == ',') {
            values++;
            if (depth > 0 && in_array[depth] && ++elements[depth] > NNRT_MAX_RANK)
                return fail(path, "an array in the header at byte %zu has more than %d elements; a "
                            "shape has at most %d (corrupt header)", i + 8, NNRT_MAX_RANK, NNRT_MAX_RANK);
        }
    }
    if (values > n / 4 + 16)
        return fail(path, "the header holds %zu JSON values in %zu bytes, more than one per 4 "
                    "bytes (corrupt header)", values, n);
    return 0;
}

static int cmp_key(const void *a, const void *b) {
    return strcmp((*(const NnrtJson *const *)a)->key, (*(const NnrtJson *const *)b)->key);
}

/* Sorting the keys finds a duplicate in n log n (200,000 keys: milliseconds, not a minute). */
static int check_unique_keys(const char *path, const NnrtJson *root) {
    if (root->nkids < 2) return 0;
    const NnrtJson **keys = nnrt_alloc((size_t)root->nkids, sizeof *keys, "checkpoint tensors");
    if (!keys) return -1;
    for (int i = 0; i < root->nkids; i++) keys[i] = &root->kids[i];
    qsort(keys, (size_t)root->nkids, sizeof *keys, cmp_key);
    int rc = 0;
    for (int i = 1; i < root->nkids && rc == 0; i++)
        if (strcmp(keys[i - 1]->key, keys[i]->key) == 0) rc = fail(path, "'%s' appears twice in the header", keys[i]->key);
    free(keys);
    return rc;
}

static int parse_tensor(const char *path, const NnrtJson *e, NnrtTensorIn *t) {
    const NnrtJson *dt = nnrt_json_get(e, "dtype"), *sh = nnrt_json_get(e, "shape"),
                   *of = nnrt_json_get(e, "data_offsets");
    if (e->kind != NNRT_JSON_OBJ || !dt || !sh || !of || dt->kind != NNRT_JSON_STR ||
        sh->kind != NNRT_JSON_ARR || of->kind != NNRT_JSON_ARR || of->nkids != 2)
        return fail(path, "tensor '%s' needs \"dtype\", \"shape\" and \"data_offsets\" entries "
                    "(corrupt header)", e->key);
    if (strcmp(dt->str, "F32") != 0)
        return fail(path, "tensor '%s' has dtype %s; nnc checkpoints hold F32 tensors only",
                    e->key, dt->str);
    if (sh->nkids > NNRT_MAX_RANK)
        return fail(path, "tensor '%s' has rank %d, more than %d", e->key, sh->nkids,
                    NNRT_MAX_RANK);
    uint64_t count = 1;
    t->rank = sh->nkids;
    for (int i = 0; i < sh->nkids; i++) {
        const NnrtJson *d = &sh->kids[i];
        if (d->kind != NNRT_JSON_NUM || !d->is_int || d->i < 0 || d->i > (1ll << 40))
            return fail(path, "tensor '%s' has a malformed shape", e->key);
        t->dims[i] = d->i;
        if (d->i != 0 && count > (1ull << 40) / (uint64_t)d->i)
            return fail(path, "tensor '%s' has an absurd shape", e->key);
        count *= (uint64_t)d->i;
    }
    t->count = (int64_t)count;
    for (int i = 0; i < 2; i++)
        if (of->kids[i].kind != NNRT_JSON_NUM || !of->kids[i].is_int || of->kids[i].i < 0)
            return fail(path, "tensor '%s' has malformed data_offsets", e->key);
    uint64_t b = (uint64_t)of->kids[0].i, en = (uint64_t)of->kids[1].i;
    if (en < b || en - b != 4 * count)
        return fail(path, "tensor '%s' has data_offsets [%llu, %llu] that do not match its shape",
                    e->key, (unsigned long long)b, (unsigned long long)en);
    t->bytes = (const unsigned char *)(uintptr_t)b; /* an offset until the data region is known */
    t->name = e->key;
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const NnrtTensorIn *const *)a)[0]->bytes;
    uintptr_t y = (uintptr_t)((const NnrtTensorIn *const *)b)[0]->bytes;
    return x < y ? -1 : x > y;
}

int nnrt_ckpt_read(const char *path, NnrtCkpt *c) {
    memset(c, 0, sizeof *c);
    c->path = path;
    if (read_whole(path, c) != 0) goto fail;
    if (c->size < 8) {
        fail(path, "the file is %zu bytes long; a safetensors file starts with an 8-byte "
             "header length (truncated?)", c->size);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | c->file[i];
    if (n > HEADER_MAX || n > c->size - 8) {
        fail(path, "header length %llu does not fit in the file of %zu bytes (truncated, or "
             "not a safetensors file)", (unsigned long long)n, c->size);
        goto fail;
    }
    if (n == 0 || c->file[8] != '{') {
        fail(path, "the header does not start with '{' (not a safetensors file)");
        goto fail;
    }
    if (header_bounded(path, (const char *)c->file + 8, (size_t)n) != 0) goto fail;
    NnrtJson root;
    char err[200];
    if (nnrt_json_parse((const char *)c->file + 8, (size_t)n, &root, err, sizeof err) != 0) {
        fail(path, "corrupt header: %s", err);
        goto fail;
    }
    int rc = -1;
    c->t = nnrt_zalloc((size_t)root.nkids, sizeof(NnrtTensorIn), "checkpoint tensors");
    NnrtTensorIn **sorted = nnrt_zalloc((size_t)root.nkids, sizeof(NnrtTensorIn *), "checkpoint tensors");
    if (root.kind != NNRT_JSON_OBJ) fail(path, "the header is not a JSON object");
    else if (c->t && sorted) {
        rc = check_unique_keys(path, &root);
        for (int i = 0; i < root.nkids && rc == 0; i++) {
            NnrtJson *e = &root.kids[i];
            if (strcmp(e->key, "__metadata__") == 0) {
                if (e->kind != NNRT_JSON_OBJ) {
                    rc = fail(path, "__metadata__ is not an object");
                    break;
                }
                c->meta = nnrt_zalloc(2 * (size_t)e->nkids + 1, sizeof(char *), "checkpoint metadata");
                if (!c->meta) rc = -1;
                for (int k = 0; rc == 0 && k < e->nkids; k++) {
                    if (e->kids[k].kind != NNRT_JSON_STR) {
                        rc = fail(path, "metadata '%s' is not a string", e->kids[k].key);
                        break;
                    }
                    c->meta[2 * k] = e->kids[k].key;       /* steal the strings from the tree */
                    c->meta[2 * k + 1] = e->kids[k].str;
                    e->kids[k].key = e->kids[k].str = NULL;
                    c->nmeta++;
                }
                continue;
            }
            NnrtTensorIn *t = &c->t[c->nt];
            rc = parse_tensor(path, e, t);
            if (rc == 0) {
                e->key = NULL; /* t->name owns it now */
                sorted[c->nt++] = t;
            }
        }
    }
    nnrt_json_free(&root);
    if (rc == 0) {
        /* the tensors must tile the data region exactly, as the reference loader demands */
        const uint64_t data_size = c->size - 8 - n;
        qsort(sorted, (size_t)c->nt, sizeof *sorted, cmp_offset);
        uint64_t expect = 0;
        for (int i = 0; i < c->nt && rc == 0; i++) {
            uint64_t b = (uint64_t)(uintptr_t)sorted[i]->bytes;
            if (b != expect)
                rc = fail(path, "tensor '%s' starts at data offset %llu, expected %llu (gap or "
                          "overlap: corrupt header)", sorted[i]->name, (unsigned long long)b,
                          (unsigned long long)expect);
            expect = b + 4 * (uint64_t)sorted[i]->count;
        }
        if (rc == 0 && expect > data_size)
            rc = fail(path, "the tensors need %llu bytes of data but the file has only %llu "
                      "(truncated)", (unsigned long long)expect, (unsigned long long)data_size);
        else if (rc == 0 && expect < data_size)
            rc = fail(path, "%llu unexpected bytes after the last tensor (data region of %llu "
                      "bytes)", (unsigned long long)(data_size - expect),
                      (unsigned long long)data_size);
        for (int i = 0; rc == 0 && i < c->nt; i++)
            c->t[i].bytes = c->file + 8 + n + (uintptr_t)c->t[i].bytes;
    }
    free(sorted);
    if (rc == 0) return 0;
fail:
    nnrt_ckpt_free(c);
    return -1;
}

const NnrtTensorIn *nnrt_ckpt_find(const NnrtCkpt *c, const char *name) {
    for (int i = 0; i < c->nt; i++)
        if (strcmp(c->t[i].name, name) == 0) return &c->t[i];
    return NULL;
}

const char *nnrt_ckpt_meta(const NnrtCkpt *c, const char *key) {
    for (int i = 0; i < c->nmeta; i++)
        if (strcmp(c->meta[2 * i], key) == 0) return c->meta[2 * i + 1];
    return NULL;
}

void nnrt_ckpt_copy_f32(const NnrtTensorIn *t, float *dst) {
    memcpy(dst, t->bytes, 4 * (size_t)t->count);
    if (!host_is_little_endian()) {
        unsigned char *p = (unsigned char *)dst;
        for (int64_t i = 0; i < t->count; i++, p += 4) {
            unsigned char a = p[0], b = p[1];
            p[0] = p[3];
            p[1] = p[2];
            p[2] = b;
            p[3] = a;
        }
    }
}

void nnrt_ckpt_free(NnrtCkpt *c) {
    for (int i = 0; i < c->nt; i++) free(c->t[i].name);
    free(c->t);
    for (int i = 0; i < 2 * c->nmeta; i++) free(c->meta[i]);
    free(c->meta);
    free(c->file);
    memset(c, 0, sizeof *c);
}
