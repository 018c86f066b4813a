/* settings_probe.c — the runtime's answer for one train setting, for settings_agree.sh, which
 * compares it with nnc's answer for the same text in a train block.
 *
 *   settings_probe KEY VALUE [INPUT TARGET]
 *                                KEY: data, validate, optimizer, schedule, epochs, batch, seed,
 *                                clip or early_stop; VALUE: what follows --KEY on the command line;
 *                                INPUT and TARGET: the model's types as declared (default float[4]
 *                                and class[3], settings_agree.sh's first model), e.g. int[8] and
 *                                class[8, 256]
 *
 * Prints the canonical value (what the executable's --help shows for a train-block default) and
 * exits 0, or reports the runtime's error and exits 1. Specs go through the parsers the command
 * line uses (no data file is opened); scalars through the command line's own check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_internal.h"

/* "int[8]" or "class[8, 256]": the element type, and dims into m's input or target. */
static int parse_type(const char *text, int target, NnrtModel *m) {
    char elem[16];
    int at = 0;
    if (sscanf(text, " %15[a-z] [%n", elem, &at) != 1 || at == 0) return -1;
    int64_t dims[NNRT_MAX_RANK];
    int rank = 0;
    const char *p = text + at;
    for (;;) {
        char *end;
        long long d = strtoll(p, &end, 10);
        if (end == p || rank == NNRT_MAX_RANK) return -1;
        dims[rank++] = d;
        p = end + strspn(end, " ");
        if (*p == ']') break;
        if (*p++ != ',') return -1;
    }
    if (!target) {
        m->input_kind = strcmp(elem, "int") == 0 ? NNRT_INPUT_INT : NNRT_INPUT_FLOAT;
        m->input_rank = rank;
        m->input_size = 1;
        for (int i = 0; i < rank; i++) m->input_size *= m->input_dims[i] = dims[i];
        return 0;
    }
    /* the descriptor's form: a class target's last dimension is its class count */
    int is_class = strcmp(elem, "class") == 0;
    m->target_kind = is_class ? NNRT_TARGET_CLASS : NNRT_TARGET_FLOAT;
    m->target_rank = is_class ? rank - 1 : rank;
    m->target_classes = is_class ? dims[rank - 1] : 0;
    m->target_size = 1;
    for (int i = 0; i < m->target_rank; i++) m->target_size *= m->target_dims[i] = dims[i];
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: settings_probe KEY VALUE [INPUT TARGET]\n");
        return 2;
    }
    const char *key = argv[1], *value = argv[2];
    char flag[32], text[1024];
    snprintf(flag, sizeof flag, "--%s", key);
    for (char *c = flag + 2; *c; c++)
        if (*c == '_') *c = '-';
    NnrtModel m;
    memset(&m, 0, sizeof m);
    m.input_name = "x";
    m.target_name = "y"; /* settings_agree.sh's models: input x, target y */
    if (parse_type(argc == 5 ? argv[3] : "float[4]", 0, &m) != 0 ||
        parse_type(argc == 5 ? argv[4] : "class[3]", 1, &m) != 0) {
        fprintf(stderr, "settings_probe: cannot read the types '%s' and '%s'\n", argv[3], argv[4]);
        return 2;
    }
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
