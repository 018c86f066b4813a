/* schedule_dump.c — the learning rate of every optimizer step of a run, one per line (%.17g), as
 * the training loop asks schedule.c for it: schedule_torch.py compares them with PyTorch's
 * schedulers and with the `lr` of a training log.
 *
 *   nnrt_schedule_dump SPEC BASE_LR STEPS_PER_EPOCH EPOCHS
 */
#include <stdio.h>
#include <stdlib.h>

#include "nnrt_internal.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s SPEC BASE_LR STEPS_PER_EPOCH EPOCHS\n", argv[0]);
        return 2;
    }
    NnrtSchedule s;
    if (nnrt_schedule_parse(argv[1], "schedule", &s) != 0) return 1;
    double base = strtod(argv[2], NULL);
    long long steps = atoll(argv[3]), epochs = atoll(argv[4]);
    if (steps < 1 || epochs < 1) return 2;
    for (long long k = 0; k < steps * epochs; k++)
        printf("%.17g\n", nnrt_schedule_lr(&s, base, k, steps, epochs));
    return 0;
}
