/* progress.c — the per-epoch progress bar drawn on stderr when it is a terminal, and fitting
 * lines to the terminal's width.
 *
 *   epoch 2/5 [##########..............]  25600/60000  18691 samples/s  loss 0.5123  0:02 left
 *
 * with `lr 0.000731` before the time left when a schedule moves the rate (the current step's).
 *
 * Redrawn in place (carriage return + erase-line) at most 10 times a second, so drawing costs
 * nothing measurable; erased before the epoch line is printed on stdout. Timing never feeds back
 * into training, so it cannot affect determinism.
 *
 * The bar never reaches the terminal's last column: a line as wide as the terminal (or wider)
 * wraps, the carriage return then goes back only to the start of the last row, and every redraw
 * would leave a row behind. The width is asked for at every redraw (a resized window is
 * followed); fields are dropped, least useful first, until the line fits.
 */
#include "nnrt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BAR_MAX 24 /* '#' cells of a full-size bar */
#define BAR_MIN 8  /* a bar narrower than this says nothing; it is dropped instead */

int nnrt_terminal_columns(int fd) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    /* a terminal that does not know its size (a serial console, some containers) */
    const char *env = getenv("COLUMNS");
    char *end;
    long c = env ? strtol(env, &end, 10) : 0;
    if (env && *env && !*end && c > 0 && c < 100000) return (int)c;
    return 80;
}

/* The fields of a progress line, most useful first: which ones are shown is decided by width. */
enum { F_EPOCH, F_LOSS, F_LEFT, F_BAR, F_LR, F_COUNT, F_RATE, F_N };

/* Appends s to out[0..*n), never past cap - 1. */
static void append(char *out, size_t cap, size_t *n, const char *s) {
    size_t k = strlen(s);
    if (*n + k > cap - 1) k = cap - 1 - *n;
    memcpy(out + *n, s, k);
    *n += k;
    out[*n] = 0;
}

/* Writes the fitted line into out (cap > avail) and returns its length. */
static int fit_progress(char *out, size_t cap, int avail, const char *const text[F_N], int filled) {
    static const int drop_order[] = {F_RATE, F_COUNT, F_LR, F_BAR, F_LEFT, F_LOSS};
    int shown[F_N], bar = BAR_MAX;
    for (int f = 0; f < F_N; f++) shown[f] = 1;
    for (int k = 0;; k++) {
        /* length: "epoch" [" [bar]"] then "  field" for each other shown field */
        int len = (int)strlen(text[F_EPOCH]) + (shown[F_BAR] ? bar + 3 : 0);
        for (int f = F_LOSS; f < F_N; f++)
            if (f != F_BAR && shown[f] && text[f][0]) len += 2 + (int)strlen(text[f]);
        if (len <= avail || k == (int)(sizeof drop_order / sizeof *drop_order)) break;
        int f = drop_order[k];
        if (f == F_BAR && len - avail <= BAR_MAX - BAR_MIN) {
            bar -= len - avail; /* a narrower bar is enough */
            break;
        }
        shown[f] = 0;
    }
    size_t n = 0;
    append(out, cap, &n, text[F_EPOCH]);
    if (shown[F_BAR]) {
        char cells[BAR_MAX + 4] = " [";
        int full = bar * filled / BAR_MAX;
        for (int i = 0; i < bar; i++) cells[2 + i] = i < full ? '#' : '.';
        cells[2 + bar] = ']';
        cells[3 + bar] = 0;
        append(out, cap, &n, cells);
    }
    /* the fields keep their usual order on the line: count, rate, loss, rate, time left (an
     * empty field, lr without a schedule, is not shown) */
    static const int line_order[] = {F_COUNT, F_RATE, F_LOSS, F_LR, F_LEFT};
    for (int k = 0; k < 5; k++)
        if (shown[line_order[k]] && text[line_order[k]][0]) {
            append(out, cap, &n, "  ");
            append(out, cap, &n, text[line_order[k]]);
        }
    if (n > (size_t)avail) n = (size_t)avail; /* narrower than "epoch E/N" itself: cut */
    out[n] = 0;
    return (int)n;
}

void nnrt_progress_begin(NnrtProgress *p, int enabled, int64_t epoch, int64_t epochs,
                         int64_t total) {
    p->enabled = enabled;
    p->start = nnrt_now();
    p->last_draw = 0;
    p->total = total;
    p->epoch = epoch;
    p->epochs = epochs;
}

void nnrt_progress_update(NnrtProgress *p, int64_t done, double running_loss, double lr) {
    if (!p->enabled) return;
    double t = nnrt_now();
    if (t - p->last_draw < 0.1) return;
    p->last_draw = t;
    double elapsed = t - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    double left = rate > 0 ? (double)(p->total - done) / rate : 0;
    int filled = p->total > 0 ? (int)((double)BAR_MAX * (double)done / (double)p->total) : 0;
    long secs = (long)(left + 0.5);
    char epoch[48], count[48], speed[48], loss[48], eta[48], rate_now[48] = "";
    snprintf(epoch, sizeof epoch, "epoch %lld/%lld", (long long)p->epoch, (long long)p->epochs);
    snprintf(count, sizeof count, "%lld/%lld", (long long)done, (long long)p->total);
    snprintf(speed, sizeof speed, "%.0f samples/s", rate);
    snprintf(loss, sizeof loss, "loss %.4f", running_loss);
    snprintf(eta, sizeof eta, "%ld:%02ld left", secs / 60, secs % 60);
    if (isfinite(lr)) snprintf(rate_now, sizeof rate_now, "lr %.4g", lr);
    const char *text[F_N] = {[F_EPOCH] = epoch, [F_LOSS] = loss, [F_LEFT] = eta, [F_LR] = rate_now,
                             [F_BAR] = "", [F_COUNT] = count, [F_RATE] = speed};
    int avail = nnrt_terminal_columns(STDERR_FILENO) - 1;
    if (avail < 1) avail = 1;
    char line[512]; /* the fields are under 48 characters each */
    if (avail > (int)sizeof line - 1) avail = (int)sizeof line - 1;
    fit_progress(line, sizeof line, avail, text, filled);
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
}

void nnrt_progress_end(NnrtProgress *p) {
    if (!p->enabled) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
}

void nnrt_print_fitted(FILE *out, const char *line, const char *sep, int columns, int indent) {
    size_t len = strlen(line), seplen = strlen(sep);
    if (columns <= 0 || (int)len <= columns - 1 || seplen == 0) {
        fprintf(out, "%s\n", line);
        return;
    }
    /* the part of the separator kept at the end of a broken line: its text before the spaces */
    size_t keep = seplen;
    while (keep > 0 && sep[keep - 1] == ' ') keep--;
    int width = columns - 1; /* never the last column, for the reason the bar has */
    if (indent > width / 2) indent = 2;
    int col = 0;
    const char *p = line;
    for (;;) {
        const char *next = strstr(p, sep);
        int piece = (int)(next ? (size_t)(next - p) : strlen(p));
        int tail = next ? (int)keep : 0; /* the separator's text that follows this piece */
        if (p != line) { /* after the text of a separator: a break, or its spaces */
            if (col > indent && col + (int)(seplen - keep) + piece + tail > width) {
                fprintf(out, "\n%*s", indent, "");
                col = indent;
            } else {
                fputs(sep + keep, out);
                col += (int)(seplen - keep);
            }
        }
        fwrite(p, 1, (size_t)piece, out);
        col += piece;
        if (!next) break;
        fwrite(sep, 1, keep, out); /* a comma stays at the end of its line */
        col += (int)keep;
        p = next + seplen;
    }
    fputc('\n', out);
}
