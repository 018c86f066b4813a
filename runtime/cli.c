/* cli.c — nnrt_main: the command line of every model executable.
 *
 *   ./model train     [--epochs N] [--batch B] [--lr X] [--seed S] [--threads T] [--data SPEC]
 *                     [--validate SPEC] [--optimizer SPEC] [--schedule SPEC] [--clip X]
 *                     [--early-stop N] [--save FILE] [--save-best FILE] [--load FILE] [--log FILE]
 *                     [--no-shuffle] [--quiet]
 *   ./model eval      --load FILE [--data SPEC] [--batch B] [--threads T] [--confusion]
 *   ./model predict   --load FILE INPUT [--batch B] [--threads T]
 *   ./model generate  --load FILE [--prompt TEXT] [--tokens N] [--temperature X] [--top-k K]
 *                     [--seed S]
 *   ./model gradcheck [--seed S]
 *   ./model summary
 *   ./model bench     [--batch B] [--threads T] [--steps N] [--seed S]
 *   ./model --help
 *
 * Options take their value as the next argument or after '='. Defaults come from the model's
 * train block; --optimizer/--schedule/--clip/--early-stop extend the v1 list so that every train
 * block key can be overridden, as the language promises. Unknown commands and options get a "did
 * you mean" suggestion. Exit status: 0 success, 1 bad input (options, data, checkpoints), 2 a
 * malformed model descriptor (a compiler bug).
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "nnrt_internal.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    CMD_TRAIN = 1, CMD_EVAL = 2, CMD_PREDICT = 4, CMD_GRADCHECK = 8, CMD_SUMMARY = 16, CMD_BENCH = 32,
    CMD_GENERATE = 64,
};

typedef enum OptId {
    OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_SEED, OPT_THREADS, OPT_DATA, OPT_VALIDATE, OPT_OPTIMIZER,
    OPT_SCHEDULE, OPT_CLIP, OPT_EARLY_STOP, OPT_SAVE, OPT_SAVE_BEST, OPT_LOAD, OPT_LOG, OPT_NO_SHUFFLE,
    OPT_QUIET, OPT_STEPS, OPT_PROMPT, OPT_TOKENS, OPT_TEMPERATURE, OPT_TOP_K, OPT_CONFUSION, OPT_COUNT
} OptId;

/* V_SETTING: a train-block scalar (the settings table's range, nnrt_settings.h); the key is the
 * option's name without "--", '-' read as '_'. V_NON_NEGATIVE: a finite number >= 0. */
typedef enum ValKind { V_FLAG, V_COUNT, V_SETTING, V_STR, V_NON_NEGATIVE } ValKind;

typedef struct Opt {
    const char *name;
    ValKind kind;
    unsigned cmds;
    const char *arg, *help;
} Opt;

static const Opt opts[OPT_COUNT] = {
    [OPT_EPOCHS] = {"--epochs", V_SETTING, CMD_TRAIN, "N", "total number of epochs"},
    [OPT_BATCH] = {"--batch", V_SETTING, CMD_TRAIN | CMD_EVAL | CMD_PREDICT | CMD_BENCH, "B", "mini-batch size"},
    [OPT_LR] = {"--lr", V_SETTING, CMD_TRAIN, "X", "learning rate (overrides the optimizer's)"},
    [OPT_SEED] = {"--seed", V_SETTING, CMD_TRAIN | CMD_GRADCHECK | CMD_BENCH | CMD_GENERATE, "S", "seed for init, shuffling, dropout"},
    [OPT_THREADS] = {"--threads", V_COUNT, CMD_TRAIN | CMD_EVAL | CMD_PREDICT | CMD_BENCH, "T", "worker threads (default: the usable cores)"},
    [OPT_DATA] = {"--data", V_STR, CMD_TRAIN | CMD_EVAL, "SPEC", "training data (eval: data to evaluate)"},
    [OPT_VALIDATE] = {"--validate", V_STR, CMD_TRAIN, "SPEC", "validation data, split(F), or none"},
    [OPT_OPTIMIZER] = {"--optimizer", V_STR, CMD_TRAIN, "SPEC", "e.g. sgd(lr=0.1, momentum=0.9)"},
    [OPT_SCHEDULE] = {"--schedule", V_STR, CMD_TRAIN, "SPEC", "constant | step(every, gamma) | cosine(warmup) | onecycle(max_lr, pct)"},
    [OPT_CLIP] = {"--clip", V_SETTING, CMD_TRAIN, "X", "clip the global gradient norm (0: off)"},
    [OPT_EARLY_STOP] = {"--early-stop", V_SETTING, CMD_TRAIN, "N", "stop after N epochs without a better val_loss (0: off)"},
    [OPT_SAVE] = {"--save", V_STR, CMD_TRAIN, "FILE", "checkpoint (safetensors), written every epoch"},
    [OPT_LOAD] = {"--load", V_STR, CMD_TRAIN | CMD_EVAL | CMD_PREDICT | CMD_GENERATE, "FILE", "checkpoint to start from / to use"},
    [OPT_LOG] = {"--log", V_STR, CMD_TRAIN, "FILE", "append one JSON object per epoch"},
    [OPT_NO_SHUFFLE] = {"--no-shuffle", V_FLAG, CMD_TRAIN, NULL, "visit examples in file order"},
    [OPT_QUIET] = {"--quiet", V_FLAG, CMD_TRAIN | CMD_EVAL | CMD_PREDICT, NULL, "no banner or progress bar"},
    [OPT_STEPS] = {"--steps", V_COUNT, CMD_BENCH, "N", "timed steps (default 100)"},
    [OPT_PROMPT] = {"--prompt", V_STR, CMD_GENERATE, "TEXT", "text to continue (default: none, from a newline)"},
    [OPT_TOKENS] = {"--tokens", V_COUNT, CMD_GENERATE, "N", "bytes to generate (default 200)"},
    [OPT_TEMPERATURE] = {"--temperature", V_NON_NEGATIVE, CMD_GENERATE, "X", "sampling temperature (default 1; 0: greedy)"},
    [OPT_TOP_K] = {"--top-k", V_COUNT, CMD_GENERATE, "K", "sample from the K most probable bytes only"},
    [OPT_SAVE_BEST] = {"--save-best", V_STR, CMD_TRAIN, "FILE", "checkpoint of the epoch with the best val_loss"},
    [OPT_CONFUSION] = {"--confusion", V_FLAG, CMD_EVAL, NULL, "confusion matrix, per-class precision/recall/F1"},
};

static const struct {
    const char *name;
    unsigned bit;
    const char *help;
} commands[] = {
    {"train", CMD_TRAIN, "train the model (checkpoints with --save, resume with --load)"},
    {"eval", CMD_EVAL, "loss and metrics of a checkpoint on a data set"},
    {"predict", CMD_PREDICT, "print one CSV row of outputs per example of INPUT"},
    {"generate", CMD_GENERATE, "continue a prompt with a model trained on text(...) data"},
    {"gradcheck", CMD_GRADCHECK, "compare analytic gradients with finite differences"},
    {"summary", CMD_SUMMARY, "print the layer table (as `nnc summary`)"},
    {"bench", CMD_BENCH, "time a training step kernel by kernel (synthetic batch)"},
};
#define NCOMMANDS ((int)(sizeof commands / sizeof *commands))

/* The cores this process may run on (its affinity mask: taskset, cgroups' cpusets, mpirun's
 * binding), else the online ones, else 1: --threads' default. The results do not depend on it. */
static int64_t usable_cores(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

static void print_help(const NnrtModel *m, const char *prog) {
    const NnrtTrainDefaults *d = &m->defaults;
    printf("usage: %s COMMAND [OPTIONS]\n\n", prog);
    printf("model %s", m->name ? m->name : "?");
    if (m->source_path) printf(" (compiled by nnc from %s)", m->source_path);
    printf("\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++) printf("  %-10s %s\n", commands[i].name, commands[i].help);
    printf("\ntrain options:\n");
    for (int i = 0; i < OPT_COUNT; i++) {
        if (!(opts[i].cmds & CMD_TRAIN)) continue;
        char left[40];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].arg ? " " : "",
                 opts[i].arg ? opts[i].arg : "");
        char dflt[48] = "";
        if (i == OPT_EPOCHS || i == OPT_BATCH || i == OPT_SEED)
            snprintf(dflt, sizeof dflt, " (default %lld)",
                     (long long)(i == OPT_EPOCHS ? d->epochs : i == OPT_BATCH ? d->batch : d->seed));
        printf("  %-20s %s%s\n", left, opts[i].help, dflt);
    }
    printf("\n  eval      --load FILE [--data SPEC] [--batch B] [--confusion]   (default data: validate, else data)\n"
           "            --confusion: confusion matrix and per-class precision, recall, F1 (class targets)\n"
           "  predict   --load FILE INPUT [--batch B]   INPUT: file.csv, an IDX images file, or a spec\n"
           "  generate  --load FILE [--prompt TEXT] [--tokens N] [--temperature X] [--top-k K] [--seed S]\n"
           "            prints the prompt, then N bytes sampled one by one (temperature 0: greedy)\n"
           "  gradcheck [--seed S]\n"
           "  bench     [--batch B] [--threads T] [--steps N] [--seed S]\n");
    printf("\ndata specs:\n"
           "  idx(\"images.gz\", \"labels.gz\", scale=1)     IDX files, plain or gzip\n"
           "  csv(\"f.csv\", target=\"col\", header=true, standardize=false, missing=\"error\"|\"skip\")\n"
           "                  header=false: target_column=N (0-based; default: the last column)\n"
           "  text(\"f.txt\", context=T, stride=T)   bytes; example k: bytes [s, s+T) -> [s+1, s+T+1), s = k*stride\n"
           "  tokens(\"f.bin\", context=T, stride=T) the same over an llm.c token file (uint16 ids)\n"
           "  split(0.1, shuffle=true)   --validate only: 10%% of the data, the same for every seed\n"
           "                  (stratified by class); shuffle=false: the last 10%%; text/tokens: the tail\n"
           "  file.csv        same as csv(\"file.csv\") with the model's target column\n"
           "  file.txt        same as text(\"file.txt\")\n"
           "  relative paths are looked up in ., beside the .nn file, then in /usr/share/datasets\n");
    printf("\ndefaults of this model:\n");
    printf("  data       %s\n", d->data ? d->data : "(none: pass --data)");
    printf("  validate   %s\n", d->validate ? d->validate : "(none)");
    printf("  optimizer  %s\n", d->optimizer ? d->optimizer : "adam()");
    printf("  schedule   %s\n", d->schedule ? d->schedule : "constant");
    printf("  epochs %lld, batch %lld, seed %lld", (long long)d->epochs, (long long)d->batch,
           (long long)d->seed);
    if (d->clip > 0) printf(", clip %g", d->clip);
    if (d->early_stop > 0) printf(", early_stop %lld", (long long)d->early_stop);
    printf(", threads %lld (the usable cores)\n", (long long)usable_cores());
    if (strcmp(nnrt_comm_name(), "none") != 0)
        printf("\ndata-parallel (%s): mpirun -np N %s train ...  splits each batch over N ranks;\n"
               "  results do not depend on N; rank 0 prints, logs and saves\n", nnrt_comm_name(), prog);
}

/* Is the descriptor sane? A failure here is a compiler bug, not a user error. */
static int check_model(const NnrtModel *m) {
    const char *why = NULL;
    if (m->abi_version != NNRT_ABI_VERSION) {
        nnrt_error("this model was compiled for runtime ABI version %d, but this runtime is "
                   "version %d; recompile the model with the matching nnc", m->abi_version,
                   NNRT_ABI_VERSION);
        return -1;
    }
    if (m->param_count < 0 || m->param_tensor_count < 0 || (m->param_tensor_count && !m->params))
        why = "bad parameter table";
    for (int32_t i = 0; !why && i < m->param_tensor_count; i++) {
        const NnrtParam *p = &m->params[i];
        int64_t size = 1;
        for (int32_t d = 0; p->rank >= 0 && p->rank <= NNRT_MAX_RANK && d < p->rank; d++)
            size *= p->dims[d];
        if (!p->name || !p->name[0] || p->rank < 0 || p->rank > NNRT_MAX_RANK || size != p->size ||
            p->offset < 0 || p->offset + p->size > m->param_count || p->init < 0 || p->init > 3)
            why = "bad parameter tensor";
    }
    if (!why && (m->input_size < 1 || (m->target_kind == NNRT_TARGET_CLASS && m->target_classes < 1) ||
                 (m->target_kind == NNRT_TARGET_FLOAT && m->target_size < 1) ||
                 (m->target_kind != NNRT_TARGET_CLASS && m->target_kind != NNRT_TARGET_FLOAT)))
        why = "bad input or target description";
    if (!why && (m->metric_count < 0 || m->metric_count > 64 || (m->metric_count && !m->metric_names)))
        why = "bad metric table";
    if (!why && (!m->train_step || !m->eval_step)) why = "missing entry points";
    if (!why && m->infer && m->output_size < 1) why = "bad output size";
    if (why) {
        nnrt_error("the model descriptor is invalid (%s); this is a bug in nnc", why);
        return -1;
    }
    return 0;
}

/* Strict integer: all digits, in range. */
static int parse_int(const char *s, int64_t lo, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo) return -1;
    *out = v;
    return 0;
}

int nnrt_cli_setting(const char *flag, const char *text, double *out) {
    char key[32];
    snprintf(key, sizeof key, "%s", flag + 2);
    for (char *c = key; *c; c++)
        if (*c == '-') *c = '_';
    const NnrtSettingArg *a = nnrt_setting_scalar(key);
    if (!a) return -1;
    char *end;
    double v = strtod(text, &end);
    /* strtod also reads hex; the .nn syntax does not */
    int numeric = *text && !*end && !strchr(text, 'x') && !strchr(text, 'X');
    if (numeric && nnrt_setting_number_ok(a, v)) {
        *out = v;
        return 0;
    }
    char rule[96];
    nnrt_setting_rule(a, numeric ? v : 0, rule, sizeof rule);
    if (numeric || a->kind == NNRT_ARG_INT) nnrt_error("%s: must be %s, got '%s'", flag, rule, text);
    else nnrt_error("%s: must be a number (%s), got '%s'", flag, rule, text);
    if (!strcmp(key, "clip") || !strcmp(key, "early_stop")) nnrt_hint("%s 0 turns it off", flag);
    return -1;
}

static int set_option(OptId id, const char *val, NnrtRunConfig *cfg) {
    const Opt *o = &opts[id];
    int64_t iv = 0;
    double dv = 0;
    switch (o->kind) {
    case V_COUNT:
        if (parse_int(val, 1, &iv) != 0) {
            nnrt_error("%s: expected an integer >= 1, got '%s'", o->name, val);
            return -1;
        }
        break;
    case V_SETTING:
        if (nnrt_cli_setting(o->name, val, &dv) != 0) return -1;
        iv = (int64_t)dv;
        break;
    case V_NON_NEGATIVE: {
        char *end;
        dv = strtod(val, &end);
        if (!*val || *end || strchr(val, 'x') || strchr(val, 'X') || !isfinite(dv) || dv < 0) {
            nnrt_error("%s: must be a number of at least 0, got '%s'", o->name, val);
            return -1;
        }
        break;
    }
    default: break;
    }
    switch (id) {
    case OPT_EPOCHS: cfg->epochs = iv; break;
    case OPT_SEED: cfg->seed = (uint64_t)iv, cfg->given |= NNRT_GIVEN_SEED; break;
    case OPT_STEPS: cfg->steps = iv; break;
    case OPT_BATCH: cfg->batch = iv, cfg->given |= NNRT_GIVEN_BATCH; break;
    case OPT_LR: cfg->lr = dv, cfg->given |= NNRT_GIVEN_LR; break;
    case OPT_THREADS: cfg->threads = iv; break;
    case OPT_DATA: cfg->data = val, cfg->given |= NNRT_GIVEN_DATA; break;
    case OPT_VALIDATE: /* `--validate none` turns off the train block's validation set */
        cfg->validate = strcmp(val, "none") == 0 ? NULL : val;
        cfg->given |= NNRT_GIVEN_VALIDATE;
        break;
    case OPT_OPTIMIZER: cfg->optimizer = val, cfg->given |= NNRT_GIVEN_OPTIMIZER; break;
    case OPT_SCHEDULE: cfg->schedule = val, cfg->given |= NNRT_GIVEN_SCHEDULE; break;
    case OPT_CLIP: cfg->clip = dv, cfg->given |= NNRT_GIVEN_CLIP; break;
    case OPT_EARLY_STOP: cfg->early_stop = iv, cfg->given |= NNRT_GIVEN_EARLY_STOP; break;
    case OPT_SAVE: cfg->save = val; break;
    case OPT_LOAD: cfg->load = val; break;
    case OPT_LOG: cfg->log = val; break;
    case OPT_SAVE_BEST: cfg->save_best = val; break;
    case OPT_CONFUSION: cfg->confusion = 1; break;
    case OPT_NO_SHUFFLE: cfg->shuffle = 0; break;
    case OPT_QUIET: cfg->quiet = 1; break;
    case OPT_PROMPT: cfg->prompt = val; break;
    case OPT_TOKENS: cfg->gen_tokens = iv; break;
    case OPT_TEMPERATURE: cfg->temperature = dv; break;
    case OPT_TOP_K: cfg->top_k = iv; break;
    default: break;
    }
    return 0;
}

static int unknown_option(const char *arg, const char *cmd, unsigned bit, const char *prog) {
    const char *names[OPT_COUNT + 1];
    int n = 0;
    for (int i = 0; i < OPT_COUNT; i++)
        if (opts[i].cmds & bit) names[n++] = opts[i].name;
    names[n++] = "--help";
    for (int i = 0; i < OPT_COUNT; i++)
        if (strcmp(opts[i].name, arg) == 0) {
            nnrt_error("option '%s' does not apply to '%s'", arg, cmd);
            nnrt_hint("run '%s --help' for the options of each command", prog);
            return -1;
        }
    const char *sug = nnrt_closest(arg, names, n);
    if (sug) nnrt_error("unknown option '%s' for '%s'; did you mean '%s'?", arg, cmd, sug);
    else nnrt_error("unknown option '%s' for '%s'", arg, cmd);
    nnrt_hint("run '%s --help' for the options of each command", prog);
    return -1;
}

static void defaults_from_model(const NnrtModel *m, NnrtRunConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    const NnrtTrainDefaults *d = &m->defaults;
    cfg->epochs = d->epochs > 0 ? d->epochs : 1;
    cfg->batch = d->batch > 0 ? d->batch : 32;
    cfg->steps = 100;
    cfg->seed = d->seed >= 0 ? (uint64_t)d->seed : 0;
    cfg->threads = usable_cores();
    cfg->lr = NAN;
    cfg->clip = d->clip > 0 ? d->clip : 0;
    cfg->early_stop = d->early_stop > 0 ? d->early_stop : 0;
    cfg->data = d->data;
    cfg->validate = d->validate;
    cfg->optimizer = d->optimizer;
    cfg->schedule = d->schedule;
    cfg->shuffle = 1;
    cfg->gen_tokens = 200;
    cfg->temperature = 1;
}

static void print_summary(const NnrtModel *m) {
    if (m->summary) {
        fputs(m->summary, stdout);
        size_t n = strlen(m->summary);
        if (n && m->summary[n - 1] != '\n') putchar('\n');
        return;
    }
    /* no table from the compiler: list the parameter tensors */
    int64_t total = 0;
    printf("%-32s %-20s %12s\n", "tensor", "shape", "elements");
    for (int32_t i = 0; i < m->param_tensor_count; i++) {
        const NnrtParam *p = &m->params[i];
        char shape[160] = "[";
        for (int32_t d = 0; d < p->rank; d++) {
            size_t k = strlen(shape);
            snprintf(shape + k, sizeof shape - k, "%s%lld", d ? "," : "", (long long)p->dims[d]);
        }
        strcat(shape, "]");
        printf("%-32s %-20s %12lld%s\n", p->name, shape, (long long)p->size,
               p->trainable ? "" : "  (buffer)");
        total += p->size;
    }
    printf("%-32s %-20s %12lld\n", "total", "", (long long)total);
}

static int run_command(const NnrtModel *m, int argc, char **argv, const NnrtComm *comm) {
    const char *prog = argc > 0 && argv[0] ? argv[0] : "model";
    /* train and eval split their work over the ranks; everything else runs on rank 0 alone */
    if (comm->rank != 0 && !(argc > 1 && (!strcmp(argv[1], "train") || !strcmp(argv[1], "eval"))))
        return 0;
    if (check_model(m) != 0) return 2;
    if (argc < 2) {
        fprintf(stderr, "usage: %s train|eval|predict|generate|gradcheck|summary|bench [OPTIONS]\n", prog);
        fprintf(stderr, "run '%s --help' for details\n", prog);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        print_help(m, prog);
        return 0;
    }
    unsigned bit = 0;
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, cmd) == 0) bit = commands[i].bit;
    if (!bit) {
        const char *names[NCOMMANDS];
        for (int i = 0; i < NCOMMANDS; i++) names[i] = commands[i].name;
        const char *sug = nnrt_closest(cmd, names, NCOMMANDS);
        if (sug) nnrt_error("unknown command '%s'; did you mean '%s'?", cmd, sug);
        else nnrt_error("unknown command '%s' (expected train, eval, predict, generate, gradcheck, summary or bench)", cmd);
        nnrt_hint("run '%s --help' for the commands and options", prog);
        return 1;
    }
    NnrtRunConfig cfg;
    defaults_from_model(m, &cfg);
    cfg.comm = comm;
    const char *input = NULL;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            print_help(m, prog);
            return 0;
        }
        if (arg[0] != '-' || arg[1] == 0) {
            if (bit == CMD_PREDICT && !input) {
                input = arg;
                continue;
            }
            nnrt_error("unexpected argument '%s' for '%s'", arg, cmd);
            return 1;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        int id = -1;
        for (int k = 0; k < OPT_COUNT; k++)
            if ((opts[k].cmds & bit) && strlen(opts[k].name) == len && !strncmp(opts[k].name, arg, len))
                id = k;
        if (id < 0) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), arg);
            unknown_option(name, cmd, bit, prog);
            return 1;
        }
        const char *val = NULL;
        if (opts[id].kind == V_FLAG) {
            if (eq) {
                nnrt_error("option '%s' takes no value", opts[id].name);
                return 1;
            }
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            nnrt_error("option '%s' needs a value (%s %s)", opts[id].name, opts[id].name, opts[id].arg);
            return 1;
        }
        if (set_option((OptId)id, val, &cfg) != 0) return 1;
    }
    /* commands without --threads (gradcheck, generate) keep one thread, as they always had */
    if (!(opts[OPT_THREADS].cmds & bit)) cfg.threads = 1;
    if (nnrt_threads_start(cfg.threads) != 0) return 1;
    int status;
    switch (bit) {
    case CMD_TRAIN: status = nnrt_cmd_train(m, &cfg); break;
    case CMD_EVAL: status = nnrt_cmd_eval(m, &cfg); break;
    case CMD_PREDICT: status = nnrt_cmd_predict(m, &cfg, input); break;
    case CMD_GRADCHECK: status = nnrt_cmd_gradcheck(m, cfg.seed); break;
    case CMD_BENCH: status = nnrt_cmd_bench(m, &cfg); break;
    case CMD_GENERATE: status = nnrt_cmd_generate(m, &cfg); break;
    default: print_summary(m); status = 0; break;
    }
    nnrt_threads_stop();
    return status;
}

int nnrt_main(const NnrtModel *m, int argc, char **argv) {
    NnrtComm comm;
    if (nnrt_comm_start(&comm, &argc, &argv) != 0) return 1;
    if (comm.size > 1) nnrt_log_set_rank(comm.rank);
    int status = run_command(m, argc, argv, &comm);
    nnrt_comm_finish(&comm, status);
    return status;
}
