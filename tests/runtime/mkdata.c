/* mkdata.c — writes the binary and byte-exact fixtures for the loader tests (generated rather
 * than committed so every byte is explained here, and no tool can rewrite line endings).
 *
 *   mkdata DIR                 DIR/idx: the IDX files; DIR/csv: CSV files with BOMs, CRs, NULs,
 *                              very long lines, gzip variants. Valid set: 12 images of 2x2 pixels
 *                              whose brightest pixel is the class (0..2), plain and gzip. Broken
 *                              variants each carry exactly one defect; corpus.txt says which.
 *                              DIR/seq: text and llm.c token files for text() and tokens() (the
 *                              fixture_lm model: context 4, 256 classes).
 *   mkdata --csv N FILE [W]    N rows of a 4-feature, 3-class blob data set for the fixture model
 *                              (deterministic); W > 0 pads every value to W characters.
 *   mkdata --idx N IMG LBL     N 2x2 images (the brightest pixel, mostly, is the class) and labels
 */
#include <stdint.h>
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

/* level "0" writes stored blocks: the compressed layout, and so the offsets in the messages about
 * cut streams, do not depend on the zlib version */
static void write_gz_level(const char *dir, const char *name, const unsigned char *b, size_t n,
                           const char *mode) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile f = gzopen(path, mode);
    if (!f || gzwrite(f, b, (unsigned)n) != (int)n || gzclose(f) != Z_OK) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void write_gz(const char *dir, const char *name, const unsigned char *b, size_t n) {
    write_gz_level(dir, name, b, n, "wb9");
}

static void write_str(const char *dir, const char *name, const char *text) {
    write_file(dir, name, (const unsigned char *)text, strlen(text));
}

static void remove_file(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    remove(path);
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

/* Park-Miller: exact in any arithmetic, so the data never depends on the platform */
static uint32_t lcg(uint32_t *x) {
    *x = (uint32_t)((uint64_t)*x * 16807u % 2147483647u);
    return *x;
}

/* N examples of three Gaussian-ish blobs in 4 dimensions: class c is centred at +2 on feature c. */
static int big_csv(long n, const char *path, int width) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    uint32_t x = 12345;
    fprintf(f, "f0,f1,f2,f3,label\n");
    for (long i = 0; i < n; i++) {
        int c = (int)(lcg(&x) % 3);
        for (int k = 0; k < 4; k++) {
            double u = 0;
            for (int j = 0; j < 4; j++) u += (double)lcg(&x) / 2147483647.0;
            double v = (u - 2.0) * 1.2 + (k == c ? 2.0 : 0.0);
            fprintf(f, "%.*f,", width > 0 ? width - 3 : 3, v);
        }
        fprintf(f, "%d\n", c);
    }
    return fclose(f) == 0 ? 0 : 1;
}

/* N noisy 2x2 images in IDX form: pixel c of class c is bright, 1 in 10 labels is wrong. */
static int big_idx(long n, const char *img_path, const char *lbl_path) {
    FILE *fi = fopen(img_path, "wb"), *fl = fopen(lbl_path, "wb");
    if (!fi || !fl) {
        perror("mkdata --idx");
        return 1;
    }
    unsigned char h[16];
    memcpy(h, "\0\0\x08\x03", 4);
    put_u32(h + 4, (unsigned)n);
    put_u32(h + 8, 2);
    put_u32(h + 12, 2);
    fwrite(h, 1, 16, fi);
    memcpy(h, "\0\0\x08\x01", 4);
    fwrite(h, 1, 8, fl);
    uint32_t x = 777;
    for (long i = 0; i < n; i++) {
        int c = (int)(lcg(&x) % 3);
        unsigned char px[4];
        for (int p = 0; p < 4; p++) px[p] = (unsigned char)(lcg(&x) % 160 + (p == c ? 90 : 0));
        unsigned char lb = (unsigned char)(lcg(&x) % 10 == 0 ? lcg(&x) % 3 : (uint32_t)c);
        fwrite(px, 1, 4, fi);
        fwrite(&lb, 1, 1, fl);
    }
    return (fclose(fi) == 0) & (fclose(fl) == 0) ? 0 : 1;
}

static void make_csv(const char *dir);
static void make_seq(const char *dir);
static void make_idx_more(const char *dir, const unsigned char *img, size_t img_n,
                          const unsigned char *lbl, size_t lbl_n);

int main(int argc, char **argv) {
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "--csv") == 0)
        return big_csv(atol(argv[2]), argv[3], argc == 5 ? atoi(argv[4]) : 0);
    if (argc == 5 && strcmp(argv[1], "--idx") == 0) return big_idx(atol(argv[2]), argv[3], argv[4]);
    if (argc != 2) {
        fprintf(stderr, "usage: mkdata DIR | mkdata --csv N FILE [WIDTH] | mkdata --idx N IMG LBL\n");
        return 2;
    }
    char dirbuf[4096], csvbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s/idx", argv[1]);
    snprintf(csvbuf, sizeof csvbuf, "%s/csv", argv[1]);
    const char *dir = dirbuf;
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
    make_idx_more(dir, img, img_n, lbl, lbl_n);
    make_csv(csvbuf);
    char seqbuf[4096];
    snprintf(seqbuf, sizeof seqbuf, "%s/seq", argv[1]);
    make_seq(seqbuf);
    return 0;
}

static void put_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* An llm.c token file: the 1024-byte header (magic, version, count, zeros), then `n` uint16 ids
 * i * 37 % 251 (little-endian), whatever `count` says. */
static size_t token_file(unsigned char *b, uint32_t magic, uint32_t version, uint32_t count, size_t n) {
    memset(b, 0, 1024);
    put_le32(b, magic);
    put_le32(b + 4, version);
    put_le32(b + 8, count);
    for (size_t i = 0; i < n; i++) {
        unsigned id = (unsigned)(i * 37 % 251);
        b[1024 + 2 * i] = (unsigned char)id;
        b[1024 + 2 * i + 1] = (unsigned char)(id >> 8);
    }
    return 1024 + 2 * n;
}

/* Sequence data: one defect per broken file (corpus.txt says which). */
static void make_seq(const char *dir) {
    static unsigned char b[4096];
    size_t n = token_file(b, 20240520, 1, 64, 64);
    write_file(dir, "tok.bin", b, n);
    write_gz(dir, "tok.bin.gz", b, n);
    write_file(dir, "tok_empty.bin", b, 0);
    write_file(dir, "tok_short_header.bin", b, 100);
    n = token_file(b, 20240521, 1, 64, 64);
    write_file(dir, "tok_bad_magic.bin", b, n);
    n = token_file(b, 20240520, 2, 64, 64);
    write_file(dir, "tok_bad_version.bin", b, n);
    n = token_file(b, 20240520, 1, 0, 64);
    write_file(dir, "tok_zero_count.bin", b, n);
    n = token_file(b, 20240520, 1, 0xFFFFFFFFu, 64); /* -1 as an int32 */
    write_file(dir, "tok_negative_count.bin", b, n);
    n = token_file(b, 20240520, 1, 64, 50);
    write_file(dir, "tok_truncated.bin", b, n);
    write_file(dir, "tok_odd.bin", b, token_file(b, 20240520, 1, 64, 64) - 1);
    n = token_file(b, 20240520, 1, 64, 66);
    write_file(dir, "tok_trailing.bin", b, n);
    n = token_file(b, 20240520, 1, 64, 64);
    b[1024 + 2 * 10] = 300 & 0xFF, b[1024 + 2 * 10 + 1] = 300 >> 8; /* id 300 at index 10 */
    write_file(dir, "tok_range.bin", b, n);
    n = token_file(b, 20240520, 1, 3, 3);
    write_file(dir, "tok_few.bin", b, n);
    /* 2^31 - 1 tokens promised by a small gzip file: refused before allocating 4 GiB */
    n = token_file(b, 20240520, 1, 0x7FFFFFFFu, 64);
    write_gz_level(dir, "tok_lie.bin.gz", b, n, "wb0");
    /* text: any bytes; 5 are the least for one example of context 4 */
    char t[2048] = "";
    for (int i = 0; i < 40; i++) strcat(t, "the cat sat. ");
    write_str(dir, "text.txt", t);
    write_gz(dir, "text.txt.gz", (const unsigned char *)t, strlen(t));
    write_str(dir, "text_empty.txt", "");
    write_str(dir, "text_few.txt", "abcd");
    write_gz(dir, "text_empty.txt.gz", (const unsigned char *)t, 0);
}

static void make_idx_more(const char *dir, const unsigned char *img, size_t img_n,
                          const unsigned char *lbl, size_t lbl_n) {
    unsigned char b[256];
    /* header shapes */
    write_file(dir, "rank0.idx", (const unsigned char *)"\0\0\x08\x00", 4);
    write_file(dir, "rank9.idx", (const unsigned char *)"\0\0\x08\x09", 4);
    memcpy(b, img, 10);
    write_file(dir, "short_dims.idx", b, 10); /* rank 3, then 6 of the 12 dimension bytes */
    memcpy(b, img, 16);
    put_u32(b + 4, 0);
    write_file(dir, "zero_count.idx", b, 16);
    memcpy(b, img, img_n);
    put_u32(b + 12, 0); /* 12 examples of 2x0 */
    write_file(dir, "zero_dim.idx", b, 16);
    /* 10^6 examples of 1000x1000 bytes: 10^12 bytes advertised by a 32-byte file */
    memcpy(b, img, 16);
    put_u32(b + 4, 1000000);
    put_u32(b + 8, 1000);
    put_u32(b + 12, 1000);
    memset(b + 16, 7, 16);
    write_file(dir, "tera.idx", b, 32);
    /* 2^31 examples of 2x2 = 8 GiB (under the 16 GiB limit) in a 16-byte file, plain and gzip */
    memcpy(b, img, 16);
    put_u32(b + 4, 0x80000000u);
    write_file(dir, "eight_gib.idx", b, 16);
    write_gz_level(dir, "eight_gib.idx.gz", b, 16, "wb0");

    /* labels */
    memcpy(b, "\0\0\x08\x02", 4);
    put_u32(b + 4, N);
    put_u32(b + 8, 1);
    memcpy(b + 12, lbl + 8, N);
    write_file(dir, "lbl_rank2.idx", b, 12 + N);
    memcpy(b, lbl, lbl_n);
    b[lbl_n] = 1;
    write_file(dir, "lbl_trailing.idx", b, lbl_n + 1);
    memcpy(b, lbl, lbl_n);
    b[2] = 0x0C;
    write_file(dir, "lbl_int32.idx", b, lbl_n);
    write_file(dir, "lbl_truncated.idx", lbl, 8 + 5);
    memcpy(b, lbl, lbl_n);
    b[8] = 255;
    write_file(dir, "lbl_255.idx", b, lbl_n);

    /* gzip: empty, not gzip at all, valid content under a .gz name, garbage or zeros after the
     * end, two members, a bad header, a cut header, a stored stream cut in the middle */
    write_gz(dir, "empty.idx.gz", img, 0);
    write_str(dir, "not_gzip.idx.gz", "this is not gzip\n");
    write_file(dir, "plain_named.idx.gz", img, img_n);
    size_t gz_n;
    write_gz_level(dir, "stored.tmp.gz", img, img_n, "wb0");
    unsigned char *gz = read_back(dir, "stored.tmp.gz", &gz_n);
    memcpy(gz + gz_n, "GARBAGE!", 8);
    write_file(dir, "garbage_after.idx.gz", gz, gz_n + 8);
    memset(gz + gz_n, 0, 8);
    write_file(dir, "zeros_after.idx.gz", gz, gz_n + 8);
    write_gz(dir, "part1.tmp.gz", img, 30);
    write_gz(dir, "part2.tmp.gz", img + 30, img_n - 30);
    size_t n1, n2;
    unsigned char both[1 << 12];
    unsigned char *part = read_back(dir, "part1.tmp.gz", &n1);
    memcpy(both, part, n1);
    part = read_back(dir, "part2.tmp.gz", &n2);
    memcpy(both + n1, part, n2);
    write_file(dir, "two_members.idx.gz", both, n1 + n2);
    remove_file(dir, "part1.tmp.gz");
    remove_file(dir, "part2.tmp.gz");
    write_file(dir, "bad_method.idx.gz", (const unsigned char *)"\x1f\x8b\x09\0\0\0\0\0\0\x03xx", 12);
    write_file(dir, "cut_header.idx.gz", (const unsigned char *)"\x1f\x8b\x08", 3);
    gz = read_back(dir, "stored.tmp.gz", &gz_n);
    write_file(dir, "stored_cut.idx.gz", gz, 10 + 5 + 40); /* gzip header, block header, 40 bytes */
    remove_file(dir, "stored.tmp.gz");
}

/* CSV files whose exact bytes matter. Row "0.1,0.2,0.3,0.4,0" is valid for the fixture. */
static void make_csv(const char *dir) {
    static const char hdr[] = "f0,f1,f2,f3,label";
    char t[4096];
    snprintf(t, sizeof t, "\xEF\xBB\xBF%s\n0.1,0.2,0.3,0.4,0\n0.5,0.6,0.7,0.8,1\n", hdr);
    write_str(dir, "bom.csv", t);
    snprintf(t, sizeof t, "\xEF\xBB\xBF%s\r\n0.1,0.2,0.3,0.4,0\r\n0.5,0.6,x7,0.8,1\r\n", hdr);
    write_str(dir, "bom_crlf_bad.csv", t);
    snprintf(t, sizeof t, "\xEF\xBB\xBF%s\n\xEF\xBB\xBF" "0.1,0.2,0.3,0.4,0\n", hdr);
    write_str(dir, "bom_twice.csv", t);
    /* a BOM written twice, and one before a later column's name (files pasted together) */
    snprintf(t, sizeof t, "\xEF\xBB\xBF\xEF\xBB\xBF%s\n0.1,0.2,0.3,0.4,0\n", hdr);
    write_str(dir, "bom_bom.csv", t);
    snprintf(t, sizeof t, "f0,f1,\xEF\xBB\xBF" "f2,f3,label\n0.1,0.2,0.3,0.4,0\n");
    write_str(dir, "bom_column.csv", t);
    snprintf(t, sizeof t, "%s\r\n0.1,0.2,0.3,0.4,0\r\n\r\n0.5,0.6,0.7,0.8,1\r\n", hdr);
    write_str(dir, "crlf.csv", t);
    snprintf(t, sizeof t, "%s\r\n0.1,0.2,0.3,0.4,0\r\n0.5,0.6,0.7,1\r\n", hdr);
    write_str(dir, "crlf_short_row.csv", t);
    snprintf(t, sizeof t, "%s\r0.1,0.2,0.3,0.4,0\r0.5,0.6,0.7,0.8,1\r", hdr);
    write_str(dir, "cr_only.csv", t);
    snprintf(t, sizeof t, "%s\n0.1,0.2,0.3,0.4,0\n0.5,0.6\r,0.7,0.8,1\n", hdr);
    write_str(dir, "stray_cr.csv", t);
    /* a NUL byte inside a number, and one inside a quoted cell */
    int k = snprintf(t, sizeof t, "%s\n0.1,0.2,0.3,0.4,0\n0.5,0", hdr);
    memcpy(t + k, "\0.6,0.7,0.8,1\n", 15);
    write_file(dir, "nul.csv", (unsigned char *)t, (size_t)k + 15);
    k = snprintf(t, sizeof t, "%s\n\"0.1", hdr);
    memcpy(t + k, "\0\",0.2,0.3,0.4,0\n", 18);
    write_file(dir, "nul_quoted.csv", (unsigned char *)t, (size_t)k + 18);
    write_str(dir, "only_blank.csv", "\n   \n\t\r\n\n");
    /* an IDX file given as CSV */
    size_t n;
    char idxdir[4096];
    snprintf(idxdir, sizeof idxdir, "%.4000s/../idx", dir);
    unsigned char *img = read_back(idxdir, "img.idx", &n);
    write_file(dir, "binary.csv", img, n);

    /* a 1 MB number, and a row of 100000 columns */
    size_t big = 1u << 20;
    char *b = malloc(big + 256);
    if (!b) exit(1);
    k = snprintf(b, 256, "%s\n0.1,", hdr);
    memset(b + k, '1', big);
    k += (int)big;
    k += snprintf(b + k, 64, ",0.3,0.4,0\n");
    write_file(dir, "long_cell.csv", (unsigned char *)b, (size_t)k);
    free(b);
    size_t cols = 100000;
    b = malloc(cols * 2 + 256);
    if (!b) exit(1);
    k = snprintf(b, 256, "%s\n", hdr);
    for (size_t i = 0; i < cols; i++) {
        b[k++] = '1';
        b[k++] = i + 1 < cols ? ',' : '\n';
    }
    write_file(dir, "many_columns.csv", (unsigned char *)b, (size_t)k);
    free(b);

    /* gzip: valid, cut (stored blocks: exact offsets), garbage after the end */
    snprintf(t, sizeof t, "%s\n0.1,0.2,0.3,0.4,0\n0.5,0.6,0.7,0.8,1\n0.9,1.0,1.1,1.2,2\n", hdr);
    write_gz(dir, "ok.csv.gz", (unsigned char *)t, strlen(t));
    /* 30 rows sorted by class, 10 of each: split()'s tail would hold class 2 only */
    char sorted[4096];
    snprintf(sorted, sizeof sorted, "%.4000s/sorted.csv", dir);
    FILE *f = fopen(sorted, "w");
    if (!f) exit(1);
    fprintf(f, "%s\n", hdr);
    for (int i = 0; i < 30; i++)
        fprintf(f, "%d.5,0.%d,0.25,0.75,%d\n", i / 10, i % 10, i / 10);
    if (fclose(f) != 0) exit(1);
    write_gz_level(dir, "stored.tmp.gz", (unsigned char *)t, strlen(t), "wb0");
    size_t gz_n;
    unsigned char *gz = read_back(dir, "stored.tmp.gz", &gz_n);
    write_file(dir, "cut.csv.gz", gz, 10 + 5 + 30);
    gz = read_back(dir, "stored.tmp.gz", &gz_n);
    memcpy(gz + gz_n, "\n1,2,3,4,0\n", 12);
    write_file(dir, "garbage_after.csv.gz", gz, gz_n + 12);
    remove_file(dir, "stored.tmp.gz");
}
