/* log.c — diagnostics, checked allocation and small text helpers shared by the runtime.
 *
 * Every user-facing failure goes through nnrt_error/nnrt_error_at so the format is uniform:
 * `error: ...` or `file:line:col: error: ...` on stderr, followed by optional `note:`/`hint:`
 * lines. Allocation helpers report which buffer could not be allocated, so "out of memory" is a
 * message and exit status 1 rather than a crash.
 */
#include "nnrt_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The rank of this process in a data-parallel job of several ranks, else -1. Set once by
 * nnrt_main before any command runs and only read afterwards: every diagnostic then says which
 * rank it comes from, without threading the rank through every function that can fail. */
static int nnrt_log_rank = -1;

void nnrt_log_set_rank(int rank) { nnrt_log_rank = rank; }

static void rank_prefix(void) {
    if (nnrt_log_rank >= 0) fprintf(stderr, "rank %d: ", nnrt_log_rank);
}

static void vreport(const char *prefix, const char *fmt, va_list ap) {
    fflush(stdout); /* keep stdout and stderr in order when both go to one terminal */
    rank_prefix();
    fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void nnrt_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("error: ", fmt, ap);
    va_end(ap);
}

void nnrt_error_at(const char *file, int64_t line, int64_t col, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    rank_prefix();
    fprintf(stderr, "%s:%lld:%lld: error: ", file, (long long)line, (long long)col);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void nnrt_warning(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("warning: ", fmt, ap);
    va_end(ap);
}

void nnrt_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("note: ", fmt, ap);
    va_end(ap);
}

void nnrt_hint(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("hint: ", fmt, ap);
    va_end(ap);
}

static void oom(size_t count, size_t elem, const char *what) {
    double bytes = (double)count * (double)elem;
    nnrt_error("out of memory: cannot allocate %.0f bytes (%.1f MiB) for %s", bytes,
               bytes / (1024.0 * 1024.0), what);
}

void *nnrt_alloc(size_t count, size_t elem, const char *what) {
    if (count == 0) count = 1;
    if (elem != 0 && count > SIZE_MAX / elem) {
        oom(count, elem, what);
        return NULL;
    }
    void *p = malloc(count * elem);
    if (!p) oom(count, elem, what);
    return p;
}

void *nnrt_zalloc(size_t count, size_t elem, const char *what) {
    if (count == 0) count = 1;
    void *p = calloc(count, elem ? elem : 1);
    if (!p) oom(count, elem, what);
    return p;
}

void *nnrt_alloc_aligned(size_t bytes, const char *what) {
    /* aligned_alloc wants a multiple of the alignment */
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    if (rounded < bytes) {
        oom(bytes, 1, what);
        return NULL;
    }
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        oom(rounded, 1, what);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

char *nnrt_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = nnrt_alloc(n, 1, "a string");
    if (p) memcpy(p, s, n);
    return p;
}

/* The shortest of %.15g..%.17g that reads back as v. (Formatted into a local buffer: gcc 12
 * with UBSan warns about a "null destination" when snprintf writes through a parameter.) */
void nnrt_fmt_double(char out[static 40], double v) {
    char text[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, v);
        if (prec == 17 || strtod(text, NULL) == v) break;
    }
    memcpy(out, text, sizeof text);
}

const char *nnrt_printable(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    for (; *s && n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
        else buf[n++] = (char)c;
    }
    if (*s) n += (size_t)snprintf(buf + n, cap - n, "...");
    buf[n < cap ? n : cap - 1] = 0;
    return buf;
}

double nnrt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
