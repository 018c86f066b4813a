/* compare.c — `nnc compare`: compile several designs (and every combination of swept -D values),
 * train each with the same seeds, data and settings, and write a table, learning-curve plots and
 * every run's log and checkpoint into one directory.
 *
 * Fairness by construction: every run is the design's own training executable, started with the
 * same --seed (1..N), and the same --epochs/--batch/--data/--validate when they are given, so two
 * designs see the same split and the same example order (the runtime's shuffle depends only on the
 * seed and the number of examples). Compiles are `nnc` itself as a subprocess (the same path as a
 * user's build; an LLVM failure in one design cannot take the comparison down), and training runs
 * are subprocesses too (a NaN or a crash is one failed row).
 *
 * With --mpi, `mpirun -np N nnc compare --mpi ...` starts one nnc per rank (nnc itself needs no
 * MPI library: it reads the rank and size mpirun gives every process). Run k belongs to rank
 * k mod N; each rank compiles the designs its runs need for its own host's CPU and trains them
 * with its own cores, writing into DIR, which must be one shared directory (a cluster's shared
 * file system). Each rank then writes a status file per run and a marker naming the job; rank 0
 * waits for every marker, reads the statuses and writes the table and plots. A rank that dies
 * ends the whole job (mpirun's rule), so rank 0 never waits forever. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compare.h"
#include "draw.h"
#include "file.h"
#include "ops.h"
#include "plot.h"
#include "source.h"
#include "summary.h"

enum { MAX_SWEEPS = 16, MAX_CONFIGS = 1024, MAX_SEEDS = 1000, MAX_SLUG = 200 };

typedef struct Sweep {
    const char *name;
    int count;
    const char **values;
    bool used; /* some design declares it */
} Sweep;

typedef struct CompareOptions {
    const char **designs;
    int design_count;
    Sweep sweeps[MAX_SWEEPS];
    int sweep_count;
    int seeds;
    long long epochs, batch; /* 0 = each design's train block */
    const char *data, *validate, *out;
    int jobs, threads; /* 0 = the measured default (see compare_defaults) */
    bool mpi;          /* spread the runs over mpirun's ranks */
    DiagWarnings warnings; /* -w, -Werror: for the front end here and every compile */
    const char *opt_level; /* -O0..-O3 for every compile, NULL: nnc's default */
} CompareOptions;

/* This process's place in an `mpirun` job: rank 0 of 1 without --mpi. */
typedef struct Ranks {
    int rank, size;
    const char *job; /* an id of the mpirun job ("" when mpirun gives none) */
} Ranks;

/* A design with one combination of overrides: one row of the table. */
typedef struct Config {
    const char *path, *label, *slug, *overrides;
    Define defines[MAX_SWEEPS];
    int define_count;
    const char *error; /* why it did not compile, NULL when it did */
    int64_t params, forward_flops, backward_flops;
    int metric_count;
    const char **metric_names;
    const char *data_spec; /* the train block's data, for the fairness warning */
    const char *train[COMPARE_TRAIN_SETTINGS]; /* the train settings as text (NULL: did not compile) */
    const char *dir, *exe;
    double compile_seconds;
} Config;

typedef struct Run {
    Config *config;
    int seed;
    const char *dir, *log_path, *checkpoint_path, *output_path;
    const char *error; /* NULL when it trained */
    double seconds;
    CompareLog log;
} Run;

typedef struct Progress {
    Arena *arena;
    Config *configs;
    Run *runs;
    int total, done, jobs;
    double start, busy_seconds;
    const CompareJob *train_jobs; /* for the runs still going */
    int train_job_count;
    const char *who;       /* "nnc compare", or "nnc compare (rank R)" */
} Progress;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void compare_usage(FILE *out) {
    fprintf(out,
            "usage: nnc compare A.nn [B.nn ...] [-D NAME=V1,V2,...]... [options]\n"
            "  compiles every design (and every combination of the -D values), trains each with the same\n"
            "  seeds and settings, and writes a table, learning curves and every run into DIR\n"
            "options:\n"
            "  -D NAME=V1,V2,...   sweep `param NAME` over these values (designs without NAME keep theirs)\n"
            "  --seeds N           seeds 1..N for every design (default 3)\n"
            "  --epochs E          epochs for every run (default: each design's train block)\n"
            "  --batch B           batch size for every run (default: each design's train block)\n"
            "  --data SPEC         training data for every run (default: each design's train block)\n"
            "  --validate SPEC     validation data for every run, e.g. split(0.1)\n"
            "  --out DIR           where results go (default compare-out)\n"
            "  --jobs J            training runs at a time (default: one per core)\n"
            "  --threads T         threads per training run (default: cores / jobs, so 1)\n"
            "  -w, -Werror         no warnings, or warnings as errors (as for nnc FILE.nn)\n"
            "  -O0 ... -O3         optimization level of every compile (as for nnc FILE.nn); -O0 compiles\n"
            "                      in a fraction of the time, for sweeps of short runs\n"
            "  --mpi               spread the runs over the ranks of mpirun (DIR must be shared):\n"
            "                      mpirun -np N nnc compare --mpi A.nn B.nn ...\n"
            "exit status: 0 when every run trained, 1 otherwise (bad usage, a design that does not\n"
            "compile, a run that failed); failed runs are rows of the table, the others still run\n");
}

/* A whole positive number within [1, max]; -1 after an error message. */
static long long positive(const char *option, const char *text, long long max) {
    char *end;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || !*text || *end || errno || v < 1 || v > max) {
        fprintf(stderr, "nnc compare: error: %s needs a whole number from 1 to %lld, not '%s'\n", option, max,
                text ? text : "(nothing)");
        return -1;
    }
    return v;
}

static int parse_sweep(Arena *arena, CompareOptions *o, const char *def) {
    const char *eq = def ? strchr(def, '=') : NULL;
    if (!def || !eq || eq == def || !eq[1]) {
        fprintf(stderr, "nnc compare: error: -D needs NAME=VALUE or NAME=V1,V2,..., e.g. -D width=64,128, not '%s'\n",
                def ? def : "");
        return 1;
    }
    if (o->sweep_count == MAX_SWEEPS) {
        fprintf(stderr, "nnc compare: error: too many -D options (at most %d)\n", MAX_SWEEPS);
        return 1;
    }
    Sweep *s = &o->sweeps[o->sweep_count];
    s->name = arena_strndup(arena, def, (size_t)(eq - def));
    for (int j = 0; j < o->sweep_count; j++)
        if (strcmp(o->sweeps[j].name, s->name) == 0) {
            fprintf(stderr, "nnc compare: error: -D %s is given twice; list the values once: -D %s=V1,V2,...\n", s->name,
                    s->name);
            return 1;
        }
    int count = 1;
    for (const char *c = eq + 1; *c; c++) count += *c == ',';
    s->values = ARENA_ARRAY(arena, const char *, count);
    const char *p = eq + 1;
    for (int k = 0; k < count; k++) {
        size_t len = strcspn(p, ",");
        if (len == 0) {
            fprintf(stderr, "nnc compare: error: -D %s: empty value in '%s' (write -D %s=V1,V2,...)\n", s->name, eq + 1,
                    s->name);
            return 1;
        }
        s->values[k] = arena_strndup(arena, p, len);
        for (int j = 0; j < k; j++)
            if (strcmp(s->values[j], s->values[k]) == 0) {
                fprintf(stderr, "nnc compare: error: -D %s: the value '%s' is listed twice\n", s->name, s->values[k]);
                return 1;
            }
        p += len + 1;
    }
    s->count = count;
    o->sweep_count++;
    return 0;
}

/* Returns 0, or 1 after printing a usage error. */
static int parse_compare_options(Arena *arena, int argc, char **argv, CompareOptions *o) {
    memset(o, 0, sizeof *o);
    o->seeds = 3;
    o->out = "compare-out";
    o->designs = ARENA_ARRAY(arena, const char *, argc);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        /* --opt value and --opt=value */
        const char *value = NULL;
        char name[32] = "";
        if (strncmp(a, "--", 2) == 0 && strchr(a, '=')) {
            snprintf(name, sizeof name, "%.*s", (int)(strchr(a, '=') - a), a);
            value = strchr(a, '=') + 1;
        } else if (strncmp(a, "--", 2) == 0) {
            snprintf(name, sizeof name, "%s", a);
        }
        bool takes_value = strcmp(name, "--seeds") == 0 || strcmp(name, "--epochs") == 0 || strcmp(name, "--batch") == 0 ||
                           strcmp(name, "--data") == 0 || strcmp(name, "--validate") == 0 || strcmp(name, "--out") == 0 ||
                           strcmp(name, "--jobs") == 0 || strcmp(name, "--threads") == 0;
        if (takes_value && !value) {
            if (i + 1 == argc) {
                fprintf(stderr, "nnc compare: error: %s needs a value\n", name);
                return 1;
            }
            value = argv[++i];
        }
        long long v = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            compare_usage(stdout);
            exit(0);
        } else if (strncmp(a, "-D", 2) == 0) {
            if (parse_sweep(arena, o, a[2] ? a + 2 : (++i < argc ? argv[i] : NULL))) return 1;
        } else if (strcmp(name, "--seeds") == 0) {
            if ((v = positive(name, value, MAX_SEEDS)) < 0) return 1;
            o->seeds = (int)v;
        } else if (strcmp(name, "--epochs") == 0) {
            if ((o->epochs = positive(name, value, 1000000)) < 0) return 1;
        } else if (strcmp(name, "--batch") == 0) {
            if ((o->batch = positive(name, value, 1 << 20)) < 0) return 1;
        } else if (strcmp(name, "--jobs") == 0) {
            if ((v = positive(name, value, 256)) < 0) return 1;
            o->jobs = (int)v;
        } else if (strcmp(name, "--threads") == 0) {
            if ((v = positive(name, value, 256)) < 0) return 1;
            o->threads = (int)v;
        } else if (strcmp(a, "--mpi") == 0) {
            o->mpi = true;
        } else if (strcmp(a, "-w") == 0) {
            o->warnings = DIAG_WARNINGS_OFF;
        } else if (strcmp(a, "-Werror") == 0) {
            o->warnings = DIAG_WARNINGS_AS_ERRORS;
        } else if (strncmp(a, "-O", 2) == 0 && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            o->opt_level = a;
        } else if (strcmp(name, "--data") == 0 || strcmp(name, "--validate") == 0) {
            if (!*value) { /* else every run would fail with the same runtime error */
                fprintf(stderr, "nnc compare: error: %s needs a data spec, e.g. %s\n", name,
                        strcmp(name, "--data") == 0 ? "--data 'csv(\"train.csv\", target=\"y\")'" : "--validate 'split(0.1)'");
                return 1;
            }
            *(strcmp(name, "--data") == 0 ? &o->data : &o->validate) = value;
        } else if (strcmp(name, "--out") == 0) {
            if (!*value) {
                fprintf(stderr, "nnc compare: error: --out needs a directory\n");
                return 1;
            }
            o->out = value;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nnc compare: error: unknown option '%s'\n", a);
            compare_usage(stderr);
            return 1;
        } else {
            o->designs[o->design_count++] = a;
        }
    }
    if (o->design_count == 0) {
        fprintf(stderr, "nnc compare: error: no designs; give one or more .nn files\n");
        compare_usage(stderr);
        return 1;
    }
    return 0;
}

/* Training runs go in parallel, one thread each, one per core; fewer runs than cores share the
 * spare cores as threads. Measured on the 2-core machine (README, "Comparing designs"): two runs
 * side by side with one thread each finished a comparison in a median 16.9 s against 30.5 s for
 * one run at a time with two threads (faster in 4 of 5 alternating pairs, even in the fifth). */
static void compare_defaults(CompareOptions *o, int runs) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (runs < 1) runs = 1;
    if (!o->jobs && o->threads) o->jobs = cores / o->threads > 0 ? (int)(cores / o->threads) : 1;
    if (!o->jobs) o->jobs = runs < cores ? runs : (int)cores;
    if (!o->threads) o->threads = cores / o->jobs > 0 ? (int)(cores / o->jobs) : 1;
}

/* The first "error" line of a diagnostic text (for the table), without a trailing newline. */
static const char *first_error(Arena *arena, const char *text) {
    const char *e = strstr(text, "error: ");
    if (!e) return arena_strdup(arena, "does not compile");
    const char *line = e;
    while (line > text && line[-1] != '\n') line--;
    return arena_strndup(arena, line, strcspn(line, "\n"));
}

static bool design_declares(const Ast *ast, const char *param) {
    for (const Stmt *s = ast ? ast->stmts : NULL; s; s = s->next)
        if (s->kind == STMT_PARAM && strcmp(s->name, param) == 0) return true;
    return false;
}

/* Makes a directory and its parents; false after an error message. */
static bool make_dirs(const char *path) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        fprintf(stderr, "nnc compare: error: the path '%s' is too long\n", path);
        return false;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "nnc compare: error: cannot create the directory '%s': %s\n", buf, strerror(errno));
            return false;
        }
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "nnc compare: error: '%s' exists and is not a directory; choose another --out\n", buf);
            return false;
        }
        if (!c) return true;
        *p = c;
    }
}

/* The rows: each design times every combination of the sweeps it declares. Returns the count,
 * or -1 after an error message. */
static int plan_configs(Arena *arena, CompareOptions *o, Config *configs) {
    int count = 0;
    /* The first analysis only finds the params each design declares; its diagnostics are
     * reported per row below, with the overrides applied. */
    char *discard = NULL;
    size_t discard_len = 0;
    FILE *null_out = open_memstream(&discard, &discard_len);
    if (!null_out) {
        fprintf(stderr, "nnc compare: error: out of memory\n");
        return -1;
    }
    const char *unparsed = NULL;
    enum { MAX_PARAM_NAMES = 256 };
    const char *param_names[MAX_PARAM_NAMES];
    int param_count = 0;
    for (int d = 0; d < o->design_count; d++) {
        const char *path = o->designs[d];
        /* Each design is read several times (here, per row, by each compile): a pipe such as
         * <(...) would be empty from the second read on, and a FIFO would block. */
        struct stat st;
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "nnc compare: error: '%s' is not a regular file; nnc compare reads each design several "
                            "times, so save it to a .nn file first\n", path);
            fclose(null_out);
            free(discard);
            return -1;
        }
        int length;
        char *text = source_read(path, &length); /* a missing file is a usage error, not a row */
        if (!text) {
            fclose(null_out);
            free(discard);
            return -1;
        }
        free(text);
        const Ast *ast = NULL;
        source_analyze(arena, path, NULL, 0, null_out, DIAG_WARNINGS_OFF, &ast);
        if (!ast) unparsed = path; /* a syntax error hides the params it declares */
        for (const Stmt *decl = ast ? ast->stmts : NULL; decl && param_count < MAX_PARAM_NAMES; decl = decl->next)
            if (decl->kind == STMT_PARAM) param_names[param_count++] = decl->name; /* for "did you mean" */
        int applies[MAX_SWEEPS], n_applies = 0;
        for (int s = 0; s < o->sweep_count; s++)
            if (design_declares(ast, o->sweeps[s].name)) {
                applies[n_applies++] = s;
                o->sweeps[s].used = true;
            }
        int combos = 1;
        for (int k = 0; k < n_applies; k++) {
            if (combos > MAX_CONFIGS / o->sweeps[applies[k]].count) combos = MAX_CONFIGS + 1;
            else combos *= o->sweeps[applies[k]].count;
        }
        if (count + combos > MAX_CONFIGS) {
            fprintf(stderr, "nnc compare: error: more than %d designs and combinations; sweep fewer values\n", MAX_CONFIGS);
            fclose(null_out);
            free(discard);
            return -1;
        }
        const char *stem = source_model_name(arena, path);
        for (int c = 0; c < combos; c++) {
            Config *cfg = &configs[count++];
            cfg->path = path;
            int rest = c;
            for (int k = n_applies - 1; k >= 0; k--) { /* the last -D varies fastest */
                const Sweep *s = &o->sweeps[applies[k]];
                cfg->defines[k] = (Define){.name = s->name, .value_text = s->values[rest % s->count]};
                rest /= s->count;
            }
            cfg->define_count = n_applies;
            /* Built in the arena, not fixed buffers: long -D values must reach the table whole. */
            const char *overrides = "";
            for (int k = 0; k < n_applies; k++)
                overrides = arena_printf(arena, "%s%s%s=%s", overrides, k ? " " : "", cfg->defines[k].name,
                                         cfg->defines[k].value_text);
            cfg->overrides = overrides;
            cfg->label = n_applies ? arena_printf(arena, "%s %s", stem, overrides) : stem;
            char *slug = n_applies ? arena_printf(arena, "%s-%s", stem, overrides) : arena_strdup(arena, stem);
            for (char *p = slug; *p; p++) /* a directory name: no '/', no spaces */
                if (!(*p == '_' || *p == '-' || *p == '.' || *p == '=' || (*p >= '0' && *p <= '9') ||
                      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
                    *p = *p == ' ' ? '-' : '_';
            /* One path component (NAME_MAX is 255 bytes), with room for the "-N" below. */
            if (strlen(slug) > MAX_SLUG) slug[MAX_SLUG] = '\0';
            /* Two designs may share a file name (a/x.nn, b/x.nn): number the later ones. */
            const char *unique = slug;
            for (int n = 2;; n++) {
                bool taken = false;
                for (int j = 0; j < count - 1; j++) taken |= strcmp(configs[j].slug, unique) == 0;
                if (!taken) break;
                unique = arena_printf(arena, "%s-%d", slug, n);
            }
            cfg->slug = unique;
            cfg->dir = arena_printf(arena, "%s/runs/%s", o->out, cfg->slug);
            /* The executable sits beside the seed<N> directories: a design named seed1.nn must
             * not take the name of its own first run's directory. */
            bool seed_name = strncmp(stem, "seed", 4) == 0 && stem[4] && strspn(stem + 4, "0123456789") == strlen(stem + 4);
            cfg->exe = arena_printf(arena, "%s/%s%s", cfg->dir, stem, seed_name ? ".exe" : "");
            /* The front end here gives parameters and FLOPs (and the reason when it fails); the
             * compile itself runs as a subprocess, timed. */
            char *diag_text = NULL;
            size_t diag_len = 0;
            FILE *diag_out = open_memstream(&diag_text, &diag_len);
            Model *model = source_analyze(arena, path, cfg->defines, cfg->define_count, diag_out, o->warnings, NULL);
            fclose(diag_out);
            if (model) {
                SummaryLayers layers = summary_layers(arena, model);
                cfg->params = layers.params;
                cfg->forward_flops = layers.forward_flops;
                cfg->backward_flops = layers.backward_flops;
                cfg->metric_count = model->metric_count;
                cfg->metric_names = model->metric_names;
                cfg->data_spec = model->data;
                compare_train_values(arena, model, cfg->train);
            } else {
                cfg->error = first_error(arena, diag_text ? diag_text : "");
                /* A -D value the param cannot take (gleu for an activation, x for a width) is bad
                 * usage, refused before anything runs, not a row that fails after hours. */
                if (strncmp(cfg->error, "nnc: error: -D ", 15) == 0) {
                    fprintf(stderr, "nnc compare: error: %s: %s\n", path, cfg->error + 12);
                    free(diag_text);
                    fclose(null_out);
                    free(discard);
                    return -1;
                }
                fprintf(stderr, "nnc compare: %s does not compile: %s\n", cfg->label, cfg->error);
            }
            free(diag_text);
        }
    }
    fclose(null_out);
    free(discard);
    for (int s = 0; s < o->sweep_count; s++)
        if (!o->sweeps[s].used) {
            fprintf(stderr, "nnc compare: error: -D %s: no design declares `param %s`", o->sweeps[s].name,
                    o->sweeps[s].name);
            const char *guess = diag_closest(o->sweeps[s].name, param_names, param_count);
            if (guess) fprintf(stderr, "; did you mean '%s'?", guess);
            if (unparsed) fprintf(stderr, " (%s does not parse, so its params are unknown; fix it first)", unparsed);
            fputc('\n', stderr);
            return -1;
        }
    return count;
}

static void format_clock(char *buf, size_t size, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

/* NULL when the job succeeded, else its last error line, or how it ended. */
static const char *job_failure(Arena *arena, const CompareJob *job) {
    if (job->exit_status == 0) return NULL;
    const char *line = compare_job_error_line(arena, job->output_path);
    if (line) return line;
    if (job->exit_status > 128) return arena_printf(arena, "killed by signal %d (see %s)", job->exit_status - 128, job->output_path);
    return arena_printf(arena, "exit status %d (see %s)", job->exit_status, job->output_path);
}

static void compile_done(void *context, CompareJob *job) {
    Progress *p = context;
    Config *cfg = &p->configs[job->index];
    cfg->compile_seconds = job->seconds;
    cfg->error = job_failure(p->arena, job);
    p->done++;
    fprintf(stderr, "%s: compiled %d of %d: %s (%s, %.2fs)\n", p->who, p->done, p->total, cfg->label,
            cfg->error ? "failed" : "ok", job->seconds);
}

static void train_done(void *context, CompareJob *job) {
    Progress *p = context;
    Run *run = &p->runs[job->index];
    run->seconds = job->seconds;
    run->error = job_failure(p->arena, job);
    p->done++;
    p->busy_seconds += job->seconds;
    double elapsed = now() - p->start;
    /* Time left: each run still going needs about the average minus what it has had, each run
     * not started yet the average; `jobs` of them proceed at once. */
    double average = p->busy_seconds / p->done, left = 0;
    int going = 0;
    for (int j = 0; j < p->train_job_count; j++)
        if (p->train_jobs[j].running) {
            going++;
            left += fmax(0, average - (now() - p->train_jobs[j].started_at));
        }
    left = (left + average * (p->total - p->done - going)) / p->jobs;
    char e[32], l[32];
    format_clock(e, sizeof e, elapsed);
    format_clock(l, sizeof l, left);
    fprintf(stderr, "%s: run %d of %d: %s seed %d %s (%.1fs); elapsed %s, about %s left\n", p->who, p->done,
            p->total, run->config->label, run->seed, run->error ? "FAILED" : "ok", job->seconds, e, l);
    if (run->error) fprintf(stderr, "%s:   %s (output: %s)\n", p->who, run->error, job->output_path);
}

/* ---- statistics and the table ---- */

typedef struct Stat {
    int n;
    double mean, std; /* std: the sample standard deviation (n - 1), 0 for one value */
} Stat;

static Stat stat_of(const double *v, int count) {
    Stat s = {0, NAN, NAN};
    double sum = 0;
    for (int i = 0; i < count; i++)
        if (isfinite(v[i])) sum += v[i], s.n++;
    if (!s.n) return s;
    s.mean = sum / s.n;
    double sq = 0;
    for (int i = 0; i < count; i++)
        if (isfinite(v[i])) sq += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = s.n > 1 ? sqrt(sq / (s.n - 1)) : 0;
    return s;
}

/* Accuracy-like metrics are better when higher; losses and errors (mae, rmse) when lower. */

enum { Q_SECONDS, Q_FINAL_TRAIN_LOSS, Q_FINAL_VAL_LOSS, Q_BEST_VAL_LOSS, Q_FIXED };

/* One number per run for column q (metric columns after Q_FIXED: final, best for each metric). */
static double run_quantity(const Run *run, int q, const char *const *metrics) {
    const CompareLog *log = &run->log;
    if (run->error || log->rows == 0) return NAN;
    if (q == Q_SECONDS) {
        double sum = 0;
        for (int r = 0; r < log->rows; r++) sum += compare_log_value(log, r, "seconds");
        return sum / log->rows;
    }
    if (q == Q_FINAL_TRAIN_LOSS) return compare_log_value(log, log->rows - 1, "train_loss");
    char key[128];
    bool best, higher = false;
    if (q == Q_FINAL_VAL_LOSS || q == Q_BEST_VAL_LOSS) {
        snprintf(key, sizeof key, "val_loss");
        best = q == Q_BEST_VAL_LOSS;
    } else {
        const char *m = metrics[(q - Q_FIXED) / 2];
        snprintf(key, sizeof key, "val_%s", m);
        best = (q - Q_FIXED) % 2 == 1;
        higher = ops_metric_higher_is_better(m); /* the op table says which way a metric improves */
    }
    if (!best) return compare_log_value(log, log->rows - 1, key);
    double v = NAN;
    for (int r = 0; r < log->rows; r++) {
        double x = compare_log_value(log, r, key);
        if (isfinite(x) && (!isfinite(v) || (higher ? x > v : x < v))) v = x;
    }
    return v;
}

typedef struct Table {
    int rows, cols;
    int text_cols;          /* the leading columns, left-aligned (the others but status are numbers) */
    const char **header;    /* for the text and Markdown tables */
    const char **csv_header;
    const char **cells;     /* rows * cols, human-readable */
    const char **csv_cells; /* rows * csv_cols */
    int csv_cols;
} Table;

static const char *csv_quote(Arena *arena, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) return s;
    size_t n = strlen(s), k = 0;
    char *q = arena_alloc(arena, 2 * n + 3);
    q[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') q[k++] = '"';
        q[k++] = s[i];
    }
    q[k++] = '"';
    return q;
}

static const char *num17(Arena *arena, double v) { return isfinite(v) ? arena_printf(arena, "%.17g", v) : ""; }

/* The train settings that differ between the designs that compiled, except those the command
 * line sets for every run (--epochs, --batch, --data, --validate; the seeds are always given). */
static int differing_train_settings(const CompareOptions *o, const Config *configs, int config_count, bool *differs) {
    int count = 0;
    for (int k = 0; k < COMPARE_TRAIN_SETTINGS; k++) {
        const char *key = compare_train_keys[k], *first = NULL;
        differs[k] = false;
        bool overridden = strcmp(key, "seed") == 0 || (o->epochs && strcmp(key, "epochs") == 0) ||
                          (o->batch && strcmp(key, "batch") == 0) || (o->data && strcmp(key, "data") == 0) ||
                          (o->validate && strcmp(key, "validate") == 0);
        for (int c = 0; c < config_count && !overridden; c++) {
            if (!configs[c].train[k]) continue;
            if (!first) first = configs[c].train[k];
            else if (strcmp(first, configs[c].train[k]) != 0) differs[k] = true;
        }
        count += differs[k];
    }
    return count;
}

static Table build_table(Arena *arena, const CompareOptions *o, Config *configs, int config_count, Run *runs,
                         const char *const *metrics, int metric_count) {
    Table t = {.rows = config_count};
    int quantities = Q_FIXED + 2 * metric_count;
    bool train_differs[COMPARE_TRAIN_SETTINGS];
    int train_columns = differing_train_settings(o, configs, config_count, train_differs);
    t.cols = 6 + quantities - 1 + 1 + train_columns; /* design overrides params flops compile status + (quantities) */
    t.text_cols = 2 + train_columns;
    t.header = ARENA_ARRAY(arena, const char *, t.cols);
    int c = 0;
    t.header[c++] = "design";
    t.header[c++] = "overrides";
    for (int k = 0; k < COMPARE_TRAIN_SETTINGS; k++)
        if (train_differs[k]) t.header[c++] = compare_train_keys[k];
    t.header[c++] = "params";
    t.header[c++] = "FLOPs/example";
    t.header[c++] = "compile s";
    t.header[c++] = "s/epoch";
    t.header[c++] = "final train loss";
    t.header[c++] = "final val loss";
    t.header[c++] = "best val loss";
    for (int m = 0; m < metric_count; m++) {
        t.header[c++] = arena_printf(arena, "final val %s", metrics[m]);
        t.header[c++] = arena_printf(arena, "best val %s", metrics[m]);
    }
    t.header[c++] = "status";
    t.cols = c;
    t.csv_cols = 10 + 2 * quantities + 1 + train_columns;
    t.csv_header = ARENA_ARRAY(arena, const char *, t.csv_cols);
    static const char *const qnames[Q_FIXED] = {"seconds_per_epoch", "final_train_loss", "final_val_loss", "best_val_loss"};
    const char *fixed[9] = {"design", "path", "overrides", "status", "seeds_ok", "seeds", "parameters",
                            "flops_forward_per_example", "flops_backward_per_example"};
    int k = 0;
    for (int i = 0; i < 3; i++) t.csv_header[k++] = fixed[i];
    for (int s = 0; s < COMPARE_TRAIN_SETTINGS; s++)
        if (train_differs[s]) t.csv_header[k++] = arena_printf(arena, "train_%s", compare_train_keys[s]);
    for (int i = 3; i < 9; i++) t.csv_header[k++] = fixed[i];
    t.csv_header[k++] = "compile_seconds";
    for (int q = 0; q < quantities; q++) {
        const char *name = q < Q_FIXED ? qnames[q]
                                       : arena_printf(arena, "%s_val_%s", (q - Q_FIXED) % 2 ? "best" : "final",
                                                      metrics[(q - Q_FIXED) / 2]);
        t.csv_header[k++] = arena_printf(arena, "%s_mean", name);
        t.csv_header[k++] = arena_printf(arena, "%s_std", name);
    }
    t.csv_header[k++] = "error";
    t.csv_cols = k;
    t.cells = ARENA_ARRAY(arena, const char *, (size_t)t.rows * (size_t)t.cols);
    t.csv_cells = ARENA_ARRAY(arena, const char *, (size_t)t.rows * (size_t)t.csv_cols);
    double *values = ARENA_ARRAY(arena, double, o->seeds);
    for (int r = 0; r < config_count; r++) {
        Config *cfg = &configs[r];
        Run *cruns = &runs[(size_t)r * (size_t)o->seeds];
        int ok = 0;
        const char *error = cfg->error;
        for (int s = 0; s < o->seeds; s++) {
            if (!cruns[s].error) ok++;
            else if (!error) error = arena_printf(arena, "seed %d: %s", cruns[s].seed, cruns[s].error);
        }
        const char *status = cfg->error          ? arena_printf(arena, "failed: %s", cfg->error)
                             : ok == o->seeds    ? "ok"
                             : ok == 0           ? arena_printf(arena, "failed: %s", error)
                                                 : arena_printf(arena, "%d of %d seeds failed: %s", o->seeds - ok, o->seeds, error);
        const char **cell = &t.cells[(size_t)r * (size_t)t.cols];
        const char **csv = &t.csv_cells[(size_t)r * (size_t)t.csv_cols];
        bool compiled = !cfg->error;
        int h = 0, v = 0;
        cell[h++] = source_model_name(arena, cfg->path);
        cell[h++] = cfg->overrides[0] ? cfg->overrides : "-";
        for (int s = 0; s < COMPARE_TRAIN_SETTINGS; s++)
            if (train_differs[s]) cell[h++] = compiled && cfg->train[s] ? cfg->train[s] : "-";
        cell[h++] = compiled ? arena_printf(arena, "%lld", (long long)cfg->params) : "-";
        cell[h++] = compiled ? arena_printf(arena, "%lld", (long long)cfg->forward_flops) : "-";
        cell[h++] = compiled ? arena_printf(arena, "%.2f", cfg->compile_seconds) : "-";
        csv[v++] = csv_quote(arena, cell[0]);
        csv[v++] = csv_quote(arena, cfg->path);
        csv[v++] = csv_quote(arena, cfg->overrides);
        for (int s = 0; s < COMPARE_TRAIN_SETTINGS; s++)
            if (train_differs[s]) csv[v++] = compiled && cfg->train[s] ? csv_quote(arena, cfg->train[s]) : "";
        csv[v++] = ok == o->seeds && compiled ? "ok" : "failed";
        csv[v++] = arena_printf(arena, "%d", compiled ? ok : 0);
        csv[v++] = arena_printf(arena, "%d", o->seeds);
        csv[v++] = compiled ? arena_printf(arena, "%lld", (long long)cfg->params) : "";
        csv[v++] = compiled ? arena_printf(arena, "%lld", (long long)cfg->forward_flops) : "";
        csv[v++] = compiled ? arena_printf(arena, "%lld", (long long)cfg->backward_flops) : "";
        csv[v++] = compiled ? num17(arena, cfg->compile_seconds) : "";
        for (int q = 0; q < quantities; q++) {
            /* A metric this design does not report stays empty. */
            bool has = q < Q_FIXED;
            for (int m = 0; !has && m < cfg->metric_count; m++) has = strcmp(cfg->metric_names[m], metrics[(q - Q_FIXED) / 2]) == 0;
            for (int s = 0; s < o->seeds; s++) values[s] = has && compiled ? run_quantity(&cruns[s], q, metrics) : NAN;
            Stat st = stat_of(values, o->seeds);
            const char *fmt = "%.4f ± %.4f";
            cell[h++] = st.n ? arena_printf(arena, fmt, st.mean, st.std) : "-";
            csv[v++] = st.n ? num17(arena, st.mean) : "";
            csv[v++] = st.n ? num17(arena, st.std) : "";
        }
        cell[h++] = status;
        csv[v++] = csv_quote(arena, error ? error : "");
    }
    return t;
}

/* Display width: '±' is two bytes in UTF-8 but one column. */
static int columns_of(const char *s) {
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void print_padded(FILE *f, const char *s, int width, bool right) {
    int pad = width - columns_of(s);
    if (right) fprintf(f, "%*s%s", pad > 0 ? pad : 0, "", s);
    else fprintf(f, "%s%*s", s, pad > 0 ? pad : 0, "");
}

static void write_text_table(FILE *f, const Table *t) {
    int *width = calloc((size_t)t->cols, sizeof *width);
    for (int c = 0; c < t->cols; c++) {
        width[c] = columns_of(t->header[c]);
        for (int r = 0; r < t->rows; r++) {
            int w = columns_of(t->cells[(size_t)r * (size_t)t->cols + (size_t)c]);
            if (w > width[c]) width[c] = w;
        }
    }
    for (int c = 0; c < t->cols; c++) {
        print_padded(f, t->header[c], c + 1 < t->cols ? width[c] : 0, c >= t->text_cols && c < t->cols - 1);
        fputs(c + 1 < t->cols ? "  " : "\n", f);
    }
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) {
            print_padded(f, t->cells[(size_t)r * (size_t)t->cols + (size_t)c], c + 1 < t->cols ? width[c] : 0,
                         c >= t->text_cols && c < t->cols - 1);
            fputs(c + 1 < t->cols ? "  " : "\n", f);
        }
    free(width);
}

static void write_markdown_table(FILE *f, const Table *t) {
    for (int c = 0; c < t->cols; c++) fprintf(f, "| %s ", t->header[c]);
    fputs("|\n", f);
    for (int c = 0; c < t->cols; c++) fputs(c >= t->text_cols && c < t->cols - 1 ? "|---:" : "|---", f);
    fputs("|\n", f);
    for (int r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->cols; c++) {
            fputs("| ", f);
            for (const char *p = t->cells[(size_t)r * (size_t)t->cols + (size_t)c]; *p; p++) {
                if (*p == '|') fputc('\\', f);
                fputc(*p == '\n' ? ' ' : *p, f);
            }
            fputc(' ', f);
        }
        fputs("|\n", f);
    }
}

static void write_csv(FILE *f, const Table *t) {
    for (int c = 0; c < t->csv_cols; c++) fprintf(f, "%s%s", t->csv_header[c], c + 1 < t->csv_cols ? "," : "\n");
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->csv_cols; c++)
            fprintf(f, "%s%s", t->csv_cells[(size_t)r * (size_t)t->csv_cols + (size_t)c], c + 1 < t->csv_cols ? "," : "\n");
}

/* Writes a result file through a temporary file and a rename; false after an error message. */
static bool compare_write_file(const char *path, const char *text, size_t length) {
    int error = file_write_atomic(path, text, length);
    if (error) fprintf(stderr, "nnc compare: error: cannot write '%s': %s\n", path, strerror(error));
    return !error;
}

typedef void TableWriter(FILE *f, const Table *t);

static bool save_table(const char *path, const Table *t, TableWriter *writer) {
    char *text = NULL;
    size_t length = 0;
    FILE *f = open_memstream(&text, &length);
    writer(f, t);
    fclose(f);
    bool ok = compare_write_file(path, text, length);
    free(text);
    return ok;
}

/* The mean over seeds at each epoch (seeds that stopped early count where they have values), with
 * the seeds' minimum and maximum for the band around it. */
static PlotLine mean_curve(Arena *arena, const Run *runs, int seeds, const char *key, int series) {
    int epochs = 0;
    for (int s = 0; s < seeds; s++)
        if (!runs[s].error && runs[s].log.rows > epochs) epochs = runs[s].log.rows;
    double *x = ARENA_ARRAY(arena, double, epochs + 1), *y = ARENA_ARRAY(arena, double, epochs + 1);
    double *low = ARENA_ARRAY(arena, double, epochs + 1), *high = ARENA_ARRAY(arena, double, epochs + 1);
    for (int e = 0; e < epochs; e++) {
        double sum = 0, lo = INFINITY, hi = -INFINITY;
        int n = 0;
        for (int s = 0; s < seeds; s++) {
            if (runs[s].error || e >= runs[s].log.rows) continue;
            double v = compare_log_value(&runs[s].log, e, key);
            if (isfinite(v)) sum += v, n++, lo = fmin(lo, v), hi = fmax(hi, v);
        }
        x[e] = e + 1;
        y[e] = n ? sum / n : NAN;
        low[e] = n ? lo : NAN;
        high[e] = n ? hi : NAN;
    }
    return (PlotLine){.series = series, .count = epochs, .x = x, .y = y, .low = seeds > 1 ? low : NULL, .high = seeds > 1 ? high : NULL};
}

static bool write_plots(Arena *arena, const CompareOptions *o, const Config *configs, int config_count, const Run *runs,
                        const char *const *metrics, int metric_count) {
    int panel_count = 1 + metric_count;
    PlotPanel *panels = ARENA_ARRAY(arena, PlotPanel, panel_count);
    const char **labels = ARENA_ARRAY(arena, const char *, config_count);
    for (int c = 0; c < config_count; c++) labels[c] = configs[c].error ? arena_printf(arena, "%s (failed)", configs[c].label) : configs[c].label;
    /* Without validation data in any run (validate = none), the training curves are drawn. */
    bool validated = false;
    for (int r = 0; r < config_count * o->seeds; r++)
        for (int e = 0; !runs[r].error && e < runs[r].log.rows; e++) validated |= isfinite(compare_log_value(&runs[r].log, e, "val_loss"));
    const char *prefix = validated ? "val" : "train", *words = validated ? "validation" : "training";
    for (int p = 0; p < panel_count; p++) {
        PlotLine *lines = ARENA_ARRAY(arena, PlotLine, config_count);
        const char *key = arena_printf(arena, "%s_%s", prefix, p == 0 ? "loss" : metrics[p - 1]);
        for (int c = 0; c < config_count; c++)
            lines[c] = mean_curve(arena, &runs[(size_t)c * (size_t)o->seeds], o->seeds, key, c);
        panels[p] = (PlotPanel){.title = arena_printf(arena, "%s %s", words, p == 0 ? "loss" : metrics[p - 1]),
                                .line_count = config_count,
                                .lines = lines};
    }
    PlotFigure figure = {
        .title = o->seeds > 1 ? arena_printf(arena, "learning curves (mean over %d seeds, band: min to max)", o->seeds)
                              : "learning curves (1 seed)",
        .panel_count = panel_count,
        .panels = panels,
        .label_count = config_count,
        .labels = labels,
    };
    return plot_write(&figure, arena_printf(arena, "%s/curves", o->out));
}

static const char *self_path(Arena *arena, const char *argv0) {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) return arena_strndup(arena, buf, (size_t)n);
    return argv0;
}

/* ---- --mpi: the runs spread over the ranks ---- */

/* The rank and size mpirun gave this process: Open MPI's variables, or the PMI ones of MPICH's
 * Hydra. False after an error message when there are none (not started by mpirun). */
static bool mpi_ranks(Ranks *r) {
    const char *rank = getenv("OMPI_COMM_WORLD_RANK"), *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (!rank || !size) rank = getenv("PMI_RANK"), size = getenv("PMI_SIZE");
    char *end1 = NULL, *end2 = NULL;
    long rv = rank ? strtol(rank, &end1, 10) : -1, sv = size ? strtol(size, &end2, 10) : -1;
    if (!rank || !size || *end1 || *end2 || sv < 1 || sv > 100000 || rv < 0 || rv >= sv) {
        fprintf(stderr, "nnc compare: error: --mpi spreads the runs over the ranks of mpirun, but this nnc was not "
                        "started by mpirun; run: mpirun -np N nnc compare --mpi ...\n");
        return false;
    }
    r->rank = (int)rv;
    r->size = (int)sv;
    const char *job = getenv("PMIX_NAMESPACE");
    if (!job) job = getenv("OMPI_MCA_ess_base_jobid");
    if (!job) job = getenv("PMI_KVSNAME");
    r->job = job ? job : "";
    return true;
}

static int run_owner(const Ranks *ranks, int run_index) { return run_index % ranks->size; }
static const char *rank_marker(Arena *arena, const CompareOptions *o, int rank) {
    return arena_printf(arena, "%s/rank%d.done", o->out, rank);
}
static const char *run_status_path(Arena *arena, const Run *run) { return arena_printf(arena, "%s/status", run->dir); }

/* What rank 0 needs of a run another rank trained: how it ended, its time, the compile's time. */
static bool write_run_status(Arena *arena, const Run *run, const Ranks *ranks) {
    const char *text = arena_printf(arena, "rank %d\nseconds %.17g\ncompile_seconds %.17g\nerror %s\n", ranks->rank,
                                    run->seconds, run->config->compile_seconds, run->error ? run->error : "");
    return compare_write_file(run_status_path(arena, run), text, strlen(text));
}

static bool read_run_status(Arena *arena, Run *run, int *rank) {
    const char *path = run_status_path(arena, run);
    FILE *f = fopen(path, "r");
    char line[4096];
    double seconds = 0, compile_seconds = 0;
    bool ok = f && fgets(line, sizeof line, f) && sscanf(line, "rank %d", rank) == 1 && fgets(line, sizeof line, f) &&
              sscanf(line, "seconds %lf", &seconds) == 1 && fgets(line, sizeof line, f) &&
              sscanf(line, "compile_seconds %lf", &compile_seconds) == 1 && fgets(line, sizeof line, f) &&
              strncmp(line, "error ", 6) == 0;
    if (f) fclose(f);
    if (!ok) {
        run->error = arena_printf(arena, "rank %d wrote no readable status (%s)", *rank, path);
        return false;
    }
    line[strcspn(line, "\n")] = '\0';
    run->seconds = seconds;
    run->error = line[6] ? arena_strdup(arena, line + 6) : NULL;
    if (run->config->compile_seconds == 0) run->config->compile_seconds = compile_seconds;
    return true;
}

/* Does the file at `path` exist and name this job on its first line? (Markers of the ranks; a
 * file an earlier job left behind names another job.) */
static bool file_names_job(const char *path, const char *job) {
    char seen[512] = "";
    FILE *f = fopen(path, "r");
    if (!f) return false;
    if (!fgets(seen, sizeof seen, f)) seen[0] = '\0';
    fclose(f);
    seen[strcspn(seen, "\n")] = '\0';
    return strcmp(seen, job) == 0;
}

static void pause_polling(void) {
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
}

/* DIR must be one directory that every rank sees. Rank 0 writes the job's id into DIR/rank0.job;
 * every other rank waits for it (up to NNC_COMPARE_SHARE_WAIT seconds, default 60: a shared file
 * system may show a new file late) and otherwise stops with exit status 1, which ends the job;
 * without this check a DIR local to each host left rank 0 waiting forever for markers written
 * elsewhere. */
static bool dir_shared_with_rank0(Arena *arena, const CompareOptions *o, const Ranks *ranks, const char *who) {
    const char *path = arena_printf(arena, "%s/rank0.job", o->out);
    const char *job = arena_printf(arena, "%s\n", ranks->job);
    if (ranks->rank == 0) return compare_write_file(path, job, strlen(job));
    const char *limit_text = getenv("NNC_COMPARE_SHARE_WAIT");
    double limit = limit_text && atof(limit_text) > 0 ? atof(limit_text) : 60;
    for (double start = now(); !file_names_job(path, ranks->job); pause_polling())
        if (now() - start > limit) {
            fprintf(stderr, "%s: error: rank 0 has not written '%s' within %g s, so --out '%s' is not the directory rank 0 "
                            "writes; --mpi needs DIR on a file system that every rank shares\n", who, path, limit, o->out);
            return false;
        }
    return true;
}

/* Rank 0: waits until every other rank has marked this job done (a rank that dies ends the job). */
static void wait_for_ranks(Arena *arena, const CompareOptions *o, const Ranks *ranks) {
    for (int r = 1; r < ranks->size; r++) {
        const char *marker = rank_marker(arena, o, r);
        if (file_names_job(marker, ranks->job)) continue;
        fprintf(stderr, "nnc compare: waiting for rank %d to finish its runs\n", r);
        while (!file_names_job(marker, ranks->job)) pause_polling();
    }
}

/* runs/<design>/network.svg (nnc draw); a diagram that cannot be drawn only costs a message.
 * Each is drawn in a child process: Graphviz's pango plugin keeps a pointer to the last graph's
 * font name, which a second layout in the same process reads after the first graph is closed
 * (a use-after-free ASan reports in Graphviz 2.42). */
static void draw_designs(Arena *arena, const Config *configs, int config_count) {
    fflush(NULL);
    for (int c = 0; c < config_count; c++) {
        if (configs[c].error || !configs[c].dir) continue;
        const char *out = arena_printf(arena, "%s/network.svg", configs[c].dir);
        pid_t pid = fork();
        if (pid == 0)
            _exit(draw_file(configs[c].path, (Define *)configs[c].defines, configs[c].define_count, DIAG_WARNINGS_OFF, out,
                            false));
        if (pid < 0) {
            fprintf(stderr, "nnc compare: cannot draw %s: %s\n", out, strerror(errno));
            continue;
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

int compare_main(int argc, char **argv) {
    Arena *arena = arena_new();
    CompareOptions o;
    int status = 1;
    if (parse_compare_options(arena, argc, argv, &o) != 0) goto done;
    Config *configs = ARENA_ARRAY(arena, Config, MAX_CONFIGS);
    int config_count = plan_configs(arena, &o, configs);
    if (config_count < 0) goto done;
    Ranks ranks = {.rank = 0, .size = 1, .job = ""};
    if (o.mpi && !mpi_ranks(&ranks)) goto done;
    const char *who = ranks.size > 1 ? arena_printf(arena, "nnc compare (rank %d of %d)", ranks.rank, ranks.size) : "nnc compare";
    /* This rank's share: the runs it owns, and the designs they need (compiled here, for this
     * host's CPU, into a directory of this rank's). */
    bool *needed = ARENA_ARRAY(arena, bool, config_count);
    bool *front_end_failed = ARENA_ARRAY(arena, bool, config_count); /* known alike on every rank */
    int owned_runs = 0;
    for (int c = 0; c < config_count; c++) front_end_failed[c] = configs[c].error != NULL;
    for (int c = 0; c < config_count; c++)
        for (int s = 0; s < o.seeds; s++)
            if (!configs[c].error && run_owner(&ranks, c * o.seeds + s) == ranks.rank) {
                needed[c] = true;
                owned_runs++;
            }
    compare_defaults(&o, owned_runs);
    if (!make_dirs(o.out)) goto done;
    if (ranks.size > 1) remove(rank_marker(arena, &o, ranks.rank));
    if (ranks.size > 1 && !dir_shared_with_rank0(arena, &o, &ranks, who)) goto done;
    for (int c = 0; c < config_count; c++) {
        if (ranks.size > 1)
            configs[c].exe = arena_printf(arena, "%s/rank%d/%s", configs[c].dir, ranks.rank, source_model_name(arena, configs[c].path));
        if (!make_dirs(configs[c].dir) || (ranks.size > 1 && needed[c] && !make_dirs(arena_printf(arena, "%s/rank%d", configs[c].dir, ranks.rank))))
            goto done;
    }
    bool train_differs[COMPARE_TRAIN_SETTINGS];
    if (differing_train_settings(&o, configs, config_count, train_differs)) {
        /* Said before the runs: a comparison of designs that train differently may not be what was meant. */
        fprintf(stderr, "%s: the designs' train settings differ (columns of the table):", who);
        for (int k = 0, shown = 0; k < COMPARE_TRAIN_SETTINGS; k++)
            if (train_differs[k]) fprintf(stderr, "%s %s", shown++ ? "," : "", compare_train_keys[k]);
        fputc('\n', stderr);
    }
    if (!o.data)
        for (int c = 1; c < config_count; c++)
            if (configs[c].data_spec && configs[0].data_spec && strcmp(configs[c].data_spec, configs[0].data_spec) != 0) {
                fprintf(stderr, "nnc compare: warning: '%s' and '%s' train on different data (%s vs %s); give --data "
                                "(and --validate) to train all on the same\n",
                        configs[0].path, configs[c].path, configs[0].data_spec, configs[c].data_spec);
                break;
            }
    double start = now();

    /* Compiles: one per core at a time (the compiler is single-threaded). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *nnc = self_path(arena, argv[0]);
    CompareJob *compiles = ARENA_ARRAY(arena, CompareJob, config_count);
    int to_compile = 0;
    for (int c = 0; c < config_count; c++) {
        Config *cfg = &configs[c];
        if (cfg->error || !needed[c]) continue; /* front end failed (nothing to compile), or not this rank's */
        char **args = ARENA_ARRAY(arena, char *, 7 + 2 * cfg->define_count);
        int a = 0;
        args[a++] = (char *)nnc;
        args[a++] = (char *)cfg->path;
        args[a++] = "-o";
        args[a++] = (char *)cfg->exe;
        for (int d = 0; d < cfg->define_count; d++) {
            args[a++] = "-D";
            args[a++] = arena_printf(arena, "%s=%s", cfg->defines[d].name, cfg->defines[d].value_text);
        }
        if (o.warnings != DIAG_WARNINGS_ON) args[a++] = o.warnings == DIAG_WARNINGS_OFF ? "-w" : "-Werror";
        if (o.opt_level) args[a++] = (char *)o.opt_level;
        args[a] = NULL;
        remove(cfg->exe);
        const char *output = ranks.size > 1 ? arena_printf(arena, "%s/rank%d/compile.txt", cfg->dir, ranks.rank)
                                            : arena_printf(arena, "%s/compile.txt", cfg->dir);
        compiles[c] = (CompareJob){.argv = args, .output_path = output, .index = c};
        to_compile++;
    }
    Progress progress = {.arena = arena, .configs = configs, .total = to_compile, .jobs = o.jobs, .start = start, .who = who};
    if (compare_jobs_run(compiles, config_count, cores > 0 ? (int)cores : 1, compile_done, &progress) != 0) goto done;

    /* Training runs, seeds 1..N for every row. */
    int run_count = config_count * o.seeds;
    Run *runs = ARENA_ARRAY(arena, Run, run_count);
    CompareJob *trains = ARENA_ARRAY(arena, CompareJob, run_count);
    int to_train = 0;
    for (int c = 0; c < config_count; c++)
        for (int s = 0; s < o.seeds; s++) {
            Run *run = &runs[c * o.seeds + s];
            run->config = &configs[c];
            run->seed = s + 1;
            run->dir = arena_printf(arena, "%s/seed%d", configs[c].dir, run->seed);
            run->log_path = arena_printf(arena, "%s/log.jsonl", run->dir);
            run->checkpoint_path = arena_printf(arena, "%s/model.safetensors", run->dir);
            run->output_path = arena_printf(arena, "%s/output.txt", run->dir);
            if (configs[c].error) {
                run->error = configs[c].error;
                continue;
            }
            if (run_owner(&ranks, c * o.seeds + s) != ranks.rank) continue; /* another rank's: never touched here */
            if (!make_dirs(run->dir)) goto done;
            remove(run_status_path(arena, run));
            /* --log appends: a previous comparison's lines must not be read as this one's. */
            remove(run->log_path);
            remove(run->checkpoint_path);
            char **args = ARENA_ARRAY(arena, char *, 32);
            int a = 0;
            args[a++] = (char *)configs[c].exe;
            args[a++] = "train";
            args[a++] = "--seed";
            args[a++] = arena_printf(arena, "%d", run->seed);
            args[a++] = "--log";
            args[a++] = (char *)run->log_path;
            args[a++] = "--save";
            args[a++] = (char *)run->checkpoint_path;
            args[a++] = "--quiet";
            args[a++] = "--threads";
            args[a++] = arena_printf(arena, "%d", o.threads);
            if (o.epochs) args[a++] = "--epochs", args[a++] = arena_printf(arena, "%lld", o.epochs);
            if (o.batch) args[a++] = "--batch", args[a++] = arena_printf(arena, "%lld", o.batch);
            if (o.data) args[a++] = "--data", args[a++] = (char *)o.data;
            if (o.validate) args[a++] = "--validate", args[a++] = (char *)o.validate;
            args[a] = NULL;
            trains[c * o.seeds + s] = (CompareJob){.argv = args, .output_path = run->output_path, .index = c * o.seeds + s};
            to_train++;
        }
    fprintf(stderr, "%s: %d training run%s (%d at a time, %d thread%s each)\n", who, to_train, to_train == 1 ? "" : "s",
            o.jobs, o.threads, o.threads == 1 ? "" : "s");
    progress = (Progress){.arena = arena, .configs = configs, .runs = runs, .total = to_train, .jobs = o.jobs,
                          .start = now(), .train_jobs = trains, .train_job_count = run_count, .who = who};
    if (compare_jobs_run(trains, run_count, o.jobs, train_done, &progress) != 0) goto done;

    if (ranks.size > 1) {
        /* Every run this rank owns, trained or failed (a compile that failed here fails its runs). */
        for (int r = 0; r < run_count; r++)
            if (run_owner(&ranks, r) == ranks.rank && !front_end_failed[r / o.seeds] && !write_run_status(arena, &runs[r], &ranks))
                goto done;
        if (ranks.rank != 0) {
            /* Exit 0 even when runs failed: a nonzero exit would make mpirun end rank 0 before the table. */
            const char *job = arena_printf(arena, "%s\n", ranks.job);
            if (!compare_write_file(rank_marker(arena, &o, ranks.rank), job, strlen(job))) goto done;
            fprintf(stderr, "%s: done; rank 0 writes the table\n", who);
            status = 0;
            goto done;
        }
        wait_for_ranks(arena, &o, &ranks);
        for (int r = 0; r < run_count; r++) {
            int rank = run_owner(&ranks, r);
            if (rank != 0 && !front_end_failed[r / o.seeds]) (void)read_run_status(arena, &runs[r], &rank);
        }
    }

    /* Logs, and the union of the metrics (in the order the designs name them). */
    const char **metrics = ARENA_ARRAY(arena, const char *, 64);
    int metric_count = 0;
    for (int c = 0; c < config_count; c++)
        for (int m = 0; m < configs[c].metric_count && metric_count < 64; m++) {
            bool seen = false;
            for (int k = 0; k < metric_count; k++) seen |= strcmp(metrics[k], configs[c].metric_names[m]) == 0;
            if (!seen) metrics[metric_count++] = configs[c].metric_names[m];
        }
    bool all_ok = true;
    for (int r = 0; r < run_count; r++) {
        Run *run = &runs[r];
        if (!run->error) {
            const char *why = NULL;
            if (!compare_log_read(arena, run->log_path, &run->log, &why)) run->error = why;
            else if (run->log.rows == 0) run->error = arena_printf(arena, "%s: no epochs logged", run->log_path);
        }
        all_ok &= !run->error;
    }
    Table table = build_table(arena, &o, configs, config_count, runs, metrics, metric_count);
    fputc('\n', stdout);
    write_text_table(stdout, &table);
    fflush(stdout);
    const char *csv_path = arena_printf(arena, "%s/results.csv", o.out), *md_path = arena_printf(arena, "%s/results.md", o.out);
    bool written = save_table(csv_path, &table, write_csv) && save_table(md_path, &table, write_markdown_table) &&
                   write_plots(arena, &o, configs, config_count, runs, metrics, metric_count);
    draw_designs(arena, configs, config_count); /* each design's diagram beside its runs */
    char total[32];
    format_clock(total, sizeof total, now() - start);
    if (written)
        fprintf(stderr, "nnc compare: wrote %s, %s, %s/curves.png, %s/curves.svg and %s/runs/ (%s)\n", csv_path, md_path,
                o.out, o.out, o.out, total);
    if (!all_ok) fprintf(stderr, "nnc compare: some runs failed (see the status column); exit status 1\n");
    status = written && all_ok ? 0 : 1;
done:
    arena_free(arena);
    return status;
}
