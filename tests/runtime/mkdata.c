/* mkdata.c — writes the IDX fixtures for the loader tests into DIR (binary files are generated
 * rather than committed so every byte is explained here).
 *
 * Valid set: 12 images of 2x2 pixels whose brightest pixel is the class (0..2), in plain and gzip
 * form. Broken variants each carry exactly one defect; the test names say which.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define N 12

static void put_u32(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void write_file(const char *dir, const char *name, const unsigned char *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void write_gz(const char *dir, const char *name, const unsigned char *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile f = gzopen(path, "wb9");
    if (!f || gzwrite(f, b, (unsigned)n) != (int)n || gzclose(f) != Z_OK) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static unsigned char *read_back(const char *dir, const char *name, size_t *n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    static unsigned char buf[1 << 16];
    *n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: mkdata DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    /* images: 00 00 08 03, N, 2, 2, then N*4 pixels */
    unsigned char img[16 + N * 4 + 8], lbl[8 + N];
    memcpy(img, "\0\0\x08\x03", 4);
    put_u32(img + 4, N);
    put_u32(img + 8, 2);
    put_u32(img + 12, 2);
    memcpy(lbl, "\0\0\x08\x01", 4);
    put_u32(lbl + 4, N);
    for (int i = 0; i < N; i++) {
        int cls = i % 3;
        for (int p = 0; p < 4; p++) img[16 + 4 * i + p] = (unsigned char)(p == cls ? 200 + i : 10 + 3 * p + i);
        lbl[8 + i] = (unsigned char)cls;
    }
    const size_t img_n = 16 + N * 4, lbl_n = 8 + N;
    write_file(dir, "img.idx", img, img_n);
    write_file(dir, "lbl.idx", lbl, lbl_n);
    write_gz(dir, "img.idx.gz", img, img_n);
    write_gz(dir, "lbl.idx.gz", lbl, lbl_n);

    unsigned char b[sizeof img];
    memcpy(b, img, img_n);
    b[0] = 0x12, b[1] = 0x34;
    write_file(dir, "bad_magic.idx", b, img_n);
    memcpy(b, img, img_n);
    b[2] = 0x0D; /* float32 */
    write_file(dir, "bad_type.idx", b, img_n);
    write_file(dir, "truncated.idx", img, img_n - 6);
    memcpy(b, img, img_n);
    memset(b + img_n, 0xAB, 8);
    write_file(dir, "trailing.idx", b, img_n + 8);
    write_file(dir, "header_only.idx", img, 3);
    write_file(dir, "empty.idx", img, 0);

    /* a gzip stream cut in the middle */
    size_t gz_n;
    unsigned char *gz = read_back(dir, "img.idx.gz", &gz_n);
    write_file(dir, "truncated.idx.gz", gz, gz_n / 2);
    /* a gzip stream whose checksum is wrong */
    gz = read_back(dir, "img.idx.gz", &gz_n);
    if (gz_n > 8) gz[gz_n - 8] ^= 0xFF;
    write_file(dir, "badcrc.idx.gz", gz, gz_n);

    /* labels: one short, one out of range (index 5 = byte offset 13) */
    memcpy(b, lbl, lbl_n);
    put_u32(b + 4, N - 1);
    write_file(dir, "lbl_short.idx", b, lbl_n - 1);
    memcpy(b, lbl, lbl_n);
    b[8 + 5] = 7;
    write_file(dir, "lbl_range.idx", b, lbl_n);

    /* 3x3 images: the wrong size for the fixture's input float[2,2] */
    unsigned char img3[16 + N * 9];
    memcpy(img3, "\0\0\x08\x03", 4);
    put_u32(img3 + 4, N);
    put_u32(img3 + 8, 3);
    put_u32(img3 + 12, 3);
    memset(img3 + 16, 1, N * 9);
    write_file(dir, "img3x3.idx", img3, sizeof img3);

    /* a header promising 4 billion 2x2 images in a 16-byte file: the loader must not allocate
     * the advertised 16 GiB up front */
    memcpy(b, img, 16);
    put_u32(b + 4, 0xFFFFFFFFu);
    write_file(dir, "huge.idx", b, 16);
    /* dimensions whose product overflows 64 bits: refused before any allocation */
    unsigned char ov[20];
    memcpy(ov, "\0\0\x08\x04", 4);
    put_u32(ov + 4, N);
    for (int i = 0; i < 3; i++) put_u32(ov + 8 + 4 * i, 0x80000000u);
    write_file(dir, "overflow.idx", ov, sizeof ov);
    return 0;
}
