/* compare.h — the tool that trains several designs alike:
 *   nnc compare A.nn B.nn ... [-D NAME=V1,V2,...]... [--seeds N] [--epochs E] [-O0..-O3] [--out DIR] ...
 * compare.c plans the sweep and writes the table and plots, compare_run.c runs the compiler and the
 * training executables as subprocesses and reads their JSONL logs, plot.c draws. */
#ifndef NNC_COMPARE_H
#define NNC_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "sema.h"

/* argv[1] is "compare". Exit status 0, or 1 (bad usage, a design that failed, a failed run). */
int compare_main(int argc, char **argv);

/* ---- compare_settings.c ---- */

/* The train settings a design fixes, every default filled in (Model's canonical texts). */
enum { COMPARE_TRAIN_SETTINGS = 9 };
extern const char *const compare_train_keys[COMPARE_TRAIN_SETTINGS];
/* values[k]: setting compare_train_keys[k] of m as text ("(none)" when absent). */
void compare_train_values(Arena *arena, const Model *m, const char **values);

/* ---- compare_run.c ---- */

/* One subprocess: argv[0] is a path; stdout and stderr both go to output_path (truncated). */
typedef struct CompareJob {
    char **argv;
    const char *output_path;
    /* set while it runs (monotonic clock), for estimates of the time left */
    double started_at;
    bool running;
    /* filled in when it ends */
    int exit_status;  /* 0..255, or 128 + signal */
    double seconds;   /* wall clock */
    /* the caller's */
    int kind;
    int index;
} CompareJob;

/* Called as each job ends, in the order they end (the job is no longer `running`). */
typedef void CompareJobDoneFn(void *context, CompareJob *job);

/* Starts the jobs in order, at most `parallel` at a time, and waits for all. Jobs whose argv is NULL
 * are skipped (not started, not reported). A job that cannot be started gets exit status 127 and
 * "nnc: cannot run ..." in its output file. Returns 0, or -1 when waiting failed. */
int compare_jobs_run(CompareJob *jobs, int count, int parallel, CompareJobDoneFn *done, void *context);

/* The last line of a file that starts with "error: " or contains ": error: ", without that prefix
 * (trimmed to one line); NULL when there is none. */
const char *compare_job_error_line(Arena *arena, const char *output_path);

/* A JSONL file of flat objects whose values are numbers or null: one row per line, one column per
 * key seen anywhere in the file (absent and null values are NaN). */
typedef struct CompareLog {
    int rows, columns;
    const char **keys;
    double *values; /* rows * columns */
} CompareLog;

/* Returns true, or false with "PATH:LINE: reason" in *error. */
bool compare_log_read(Arena *arena, const char *path, CompareLog *log, const char **error);
/* The value in row `row` under `key`, NaN when absent. */
double compare_log_value(const CompareLog *log, int row, const char *key);

#endif
