/* progress.c — the per-epoch progress bar drawn on stderr when it is a terminal.
 *
 *   epoch 2/5 [##########..............]  25600/60000  18691 samples/s  loss 0.5123  0:02 left
 *
 * Redrawn in place (carriage return + erase-line) at most 10 times a second, so drawing costs
 * nothing measurable; erased before the epoch line is printed on stdout. Timing never feeds back
 * into training, so it cannot affect determinism.
 */
#include "nnrt_internal.h"

#define BAR_WIDTH 24

void nnrt_progress_begin(NnrtProgress *p, int enabled, int64_t epoch, int64_t epochs,
                         int64_t total) {
    p->enabled = enabled;
    p->start = nnrt_now();
    p->last_draw = 0;
    p->total = total;
    p->epoch = epoch;
    p->epochs = epochs;
}

void nnrt_progress_update(NnrtProgress *p, int64_t done, double running_loss) {
    if (!p->enabled) return;
    double t = nnrt_now();
    if (t - p->last_draw < 0.1) return;
    p->last_draw = t;
    double elapsed = t - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    double left = rate > 0 ? (double)(p->total - done) / rate : 0;
    int filled = p->total > 0 ? (int)((double)BAR_WIDTH * (double)done / (double)p->total) : 0;
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = 0;
    long secs = (long)(left + 0.5);
    fprintf(stderr, "\repoch %lld/%lld [%s]  %lld/%lld  %.0f samples/s  loss %.4f  %ld:%02ld left\033[K",
            (long long)p->epoch, (long long)p->epochs, bar, (long long)done, (long long)p->total,
            rate, running_loss, secs / 60, secs % 60);
    fflush(stderr);
}

void nnrt_progress_end(NnrtProgress *p) {
    if (!p->enabled) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
}
