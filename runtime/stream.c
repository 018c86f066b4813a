/* stream.c — reading a data file that may be gzip-compressed, with exact error positions.
 *
 * The IDX and CSV loaders read through this instead of zlib's gzFile for three reasons:
 *   - gzread silently ignores anything after the end of a gzip stream; here, bytes after the
 *     last member that are not another gzip member are an error ("garbage after the end");
 *   - the number of compressed bytes left is known, which bounds the data the rest of the file
 *     can hold, so a header that lies about its size is refused before anything is allocated;
 *   - every error names the position in the decompressed stream ("byte offset N").
 *
 * gzip is recognized by its magic bytes (1f 8b), never by the name: a file named .gz that is
 * not compressed (a browser may have decompressed it already) is read as it is. Concatenated
 * gzip members (`cat a.gz b.gz`) are one stream, as for gzip -d.
 *
 * Errors are reported once, when they happen; the read that meets one, and every later read,
 * returns 0 bytes (data decompressed just before a checksum error is not to be trusted), and the
 * caller checks nnrt_stream_failed() to tell a reported error from the end of the data.
 */
#include "nnrt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef NNRT_NO_ZLIB
/* A runtime built without zlib (the cross-compiled aarch64 one, runtime/CMakeLists.txt): plain
 * files only, gzip is refused when opened. The input buffer keeps zlib's field names. */
typedef unsigned uInt;
typedef struct z_stream {
    unsigned char *next_in, *next_out;
    uInt avail_in, avail_out;
    const char *msg;
} z_stream;
enum { Z_OK, Z_STREAM_END, Z_NO_FLUSH = 0, Z_BUF_ERROR = -5, Z_MEM_ERROR = -4, Z_STREAM_ERROR = -2 };
static int inflate(z_stream *z, int flush) { (void)z, (void)flush; return Z_STREAM_ERROR; }
static int inflateReset(z_stream *z) { (void)z; return Z_STREAM_ERROR; }
static int inflateEnd(z_stream *z) { (void)z; return Z_OK; }
#else
#include <zlib.h>
#endif

#define IN_CHUNK (1u << 17)
/* deflate's largest possible expansion is 1032:1 (258-byte matches coded in 2 bits); the
 * bound below is deliberately looser so a valid file can never be refused */
#define GZIP_MAX_RATIO 1100u

struct NnrtStream {
    const char *path;
    FILE *f;
    int gz;            /* the content is gzip */
    int zinit;         /* z is initialized */
    int ended;         /* no more data */
    int failed;        /* an error was reported */
    uint64_t out;      /* decompressed bytes delivered */
    uint64_t in_read;  /* bytes read from the file */
    uint64_t file_size;
    int size_known;    /* a regular file: file_size is its size */
    z_stream z;
    unsigned char in[IN_CHUNK];
};

NnrtStream *nnrt_stream_open(const char *path) {
    NnrtStream *s = nnrt_zalloc(1, sizeof *s, "a file buffer");
    if (!s) return NULL;
    s->path = path;
    s->f = fopen(path, "rb");
    if (!s->f) {
        nnrt_error("cannot open data file '%s': %s", path, strerror(errno));
        free(s);
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(s->f), &st) == 0 && S_ISREG(st.st_mode)) {
        s->file_size = (uint64_t)st.st_size;
        s->size_known = 1;
    }
    /* look at the first bytes: the input buffer holds them for whichever reader follows */
    size_t k = fread(s->in, 1, IN_CHUNK, s->f);
    if (ferror(s->f)) {
        nnrt_error("%s: byte offset 0: read error: %s", path, strerror(errno));
        nnrt_stream_close(s);
        return NULL;
    }
    s->in_read = k;
    s->z.next_in = s->in;
    s->z.avail_in = (uInt)k;
    if (k >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b) {
        s->gz = 1;
#ifdef NNRT_NO_ZLIB
        nnrt_error("%s: the file is gzip-compressed, but this executable was built without zlib (a "
                   "cross-compiled runtime); gunzip the file and give the uncompressed one", path);
        nnrt_stream_close(s);
        return NULL;
#else
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) {
            nnrt_error("out of memory: cannot start decompressing '%s'", path);
            nnrt_stream_close(s);
            return NULL;
        }
        s->zinit = 1;
#endif
    }
    return s;
}

void nnrt_stream_close(NnrtStream *s) {
    if (!s) return;
    if (s->zinit) inflateEnd(&s->z);
    if (s->f) fclose(s->f);
    free(s);
}

int nnrt_stream_is_gzip(const NnrtStream *s) { return s->gz; }
int nnrt_stream_failed(const NnrtStream *s) { return s->failed; }
uint64_t nnrt_stream_offset(const NnrtStream *s) { return s->out; }

uint64_t nnrt_stream_bound(const NnrtStream *s) {
    if (!s->size_known || s->failed) return UINT64_MAX;
    uint64_t consumed = s->in_read - s->z.avail_in;
    uint64_t left = s->file_size > consumed ? s->file_size - consumed : 0;
    if (!s->gz) return left;
    /* inflate may also hold up to one pending match of output from input it already took */
    if (left > (UINT64_MAX - 65536) / GZIP_MAX_RATIO) return UINT64_MAX;
    return (left + 64) * GZIP_MAX_RATIO;
}

/* Moves unread input to the front and reads more after it. Returns bytes now buffered. */
static size_t refill(NnrtStream *s) {
    if (s->z.avail_in > 0 && s->z.next_in != s->in) memmove(s->in, s->z.next_in, s->z.avail_in);
    s->z.next_in = s->in;
    size_t k = fread(s->in + s->z.avail_in, 1, IN_CHUNK - s->z.avail_in, s->f);
    s->in_read += k;
    s->z.avail_in += (uInt)k;
    if (k == 0 && ferror(s->f)) {
        nnrt_error("%s: byte offset %llu: read error: %s", s->path, (unsigned long long)s->out,
                   strerror(errno));
        s->failed = 1;
    }
    return s->z.avail_in;
}

/* At the end of a gzip member: the file must end, or another member must start. */
static void after_member(NnrtStream *s, uint64_t offset) {
    if (s->z.avail_in < 2) refill(s);
    if (s->failed) return;
    if (s->z.avail_in == 0) {
        s->ended = 1;
        return;
    }
    if (s->z.avail_in >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b) {
        inflateReset(&s->z);
        return;
    }
    uint64_t at = s->in_read - s->z.avail_in;
    if (s->size_known)
        nnrt_error("%s: byte offset %llu: unexpected data after the end of the gzip stream "
                   "(%llu bytes from compressed byte %llu on)", s->path,
                   (unsigned long long)offset, (unsigned long long)(s->file_size - at),
                   (unsigned long long)at);
    else
        nnrt_error("%s: byte offset %llu: unexpected data after the end of the gzip stream "
                   "(from compressed byte %llu on)", s->path, (unsigned long long)offset,
                   (unsigned long long)at);
    s->failed = 1;
}

size_t nnrt_stream_read(NnrtStream *s, void *buf, size_t n) {
    unsigned char *p = buf;
    size_t got = 0;
    if (!s->gz) {
        /* the bytes fread while sniffing come first */
        while (got < n && s->z.avail_in > 0) {
            size_t k = n - got < s->z.avail_in ? n - got : s->z.avail_in;
            memcpy(p + got, s->z.next_in, k);
            s->z.next_in += k;
            s->z.avail_in -= (uInt)k;
            got += k;
        }
        while (got < n && !s->ended && !s->failed) {
            size_t k = fread(p + got, 1, n - got, s->f);
            s->in_read += k;
            got += k;
            if (k == 0) {
                if (ferror(s->f)) {
                    nnrt_error("%s: byte offset %llu: read error: %s", s->path,
                               (unsigned long long)(s->out + got), strerror(errno));
                    s->failed = 1;
                } else {
                    s->ended = 1;
                }
            }
        }
        s->out += got;
        return s->failed ? 0 : got;
    }
    while (got < n && !s->ended && !s->failed) {
        if (s->z.avail_in == 0 && refill(s) == 0) {
            if (!s->failed) {
                nnrt_error("%s: byte offset %llu: truncated gzip stream: the compressed file "
                           "ends early", s->path, (unsigned long long)(s->out + got));
                s->failed = 1;
            }
            break;
        }
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        s->z.next_out = p + got;
        s->z.avail_out = (uInt)want;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        got += want - s->z.avail_out;
        if (rc == Z_STREAM_END) {
            after_member(s, s->out + got);
            continue;
        }
        if (rc == Z_OK || (rc == Z_BUF_ERROR && s->z.avail_in == 0))
            continue; /* progress, or more input needed */
        nnrt_error("%s: byte offset %llu: corrupt gzip data (%s)", s->path,
                   (unsigned long long)(s->out + got),
                   rc == Z_MEM_ERROR ? "out of memory" : s->z.msg ? s->z.msg : "invalid data");
        s->failed = 1;
    }
    s->out += got;
    return s->failed ? 0 : got; /* what came before an error is not to be trusted either */
}
