/* settings_probe.c — the runtime's answer for one train setting, for settings_agree.sh, which
 * compares it with nnc's answer for the same text in a train block.
 *
 *   settings_probe KEY VALUE     KEY: data, validate, optimizer, schedule, epochs, batch, seed,
 *                                clip or early_stop; VALUE: what follows --KEY on the command line
 *
 * Prints the canonical value (what the executable's --help shows for a train-block default) and
 * exits 0, or reports the runtime's error and exits 1. Specs go through the parsers the command
 * line uses (no data file is opened); scalars through the command line's own check.
 */
#include <stdio.h>
#include <string.h>

#include "nnrt_internal.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: settings_probe KEY VALUE\n");
        return 2;
    }
    const char *key = argv[1], *value = argv[2];
    char flag[32], text[1024];
    snprintf(flag, sizeof flag, "--%s", key);
    for (char *c = flag + 2; *c; c++)
        if (*c == '_') *c = '-';
    NnrtModel m;
    memset(&m, 0, sizeof m);
    m.target_name = "y"; /* settings_agree.sh's model: target y : class[3] */
    if (!strcmp(key, "data") || !strcmp(key, "validate")) {
        unsigned group = key[0] == 'd' ? NNRT_GROUP_DATA : NNRT_GROUP_VALIDATE;
        if (nnrt_data_spec_format(&m, value, flag, group, text, sizeof text) != 0) return 1;
    } else if (!strcmp(key, "optimizer")) {
        NnrtOptConfig c;
        if (nnrt_optim_parse(value, flag, &c) != 0) return 1;
        nnrt_optim_format(&c, text, sizeof text);
    } else if (!strcmp(key, "schedule")) {
        NnrtSchedule s;
        if (nnrt_schedule_parse(value, flag, &s) != 0) return 1;
        nnrt_schedule_format(&s, text, sizeof text);
    } else {
        double v;
        if (nnrt_cli_setting(flag, value, &v) != 0) return 1;
        /* as --help prints the model's defaults */
        if (nnrt_setting_scalar(key)->kind == NNRT_ARG_INT) snprintf(text, sizeof text, "%lld", (long long)v);
        else snprintf(text, sizeof text, "%g", v);
    }
    printf("%s\n", text);
    return 0;
}
