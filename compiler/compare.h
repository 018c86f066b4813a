/* compare.h — the driver commands that look at several designs:
 *   nnc compare A.nn B.nn ... [-D NAME=V1,V2,...]... [--seeds N] [--epochs E] [--out DIR] ...
 *   nnc diff A.nn B.nn
 * compare.c plans the sweep and writes the table and plots, compare_run.c runs the compiler and the
 * training executables as subprocesses and reads their JSONL logs, plot.c draws, diff.c diffs. */
#ifndef NNC_COMPARE_H
#define NNC_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/* argv[1] is "compare" / "diff". Exit status 0, or 1 (bad usage, a design that failed, a failed run). */
int compare_main(int argc, char **argv);
int diff_main(int argc, char **argv);

/* ---- compare_run.c ---- */

/* One subprocess: argv[0] is a path; stdout and stderr both go to output_path (truncated). */
typedef struct Job {
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
} Job;

/* Called as each job ends, in the order they end (the job is no longer `running`). */
typedef void JobDoneFn(void *context, Job *job);

/* Starts the jobs in order, at most `parallel` at a time, and waits for all. Jobs whose argv is NULL
 * are skipped (not started, not reported). A job that cannot be started gets exit status 127 and
 * "nnc: cannot run ..." in its output file. Returns 0, or -1 when waiting failed. */
int jobs_run(Job *jobs, int count, int parallel, JobDoneFn *done, void *context);

/* The last line of a file that starts with "error: " or contains ": error: ", without that prefix
 * (trimmed to one line); NULL when there is none. */
const char *job_error_line(Arena *arena, const char *output_path);

/* A JSONL file of flat objects whose values are numbers or null: one row per line, one column per
 * key seen anywhere in the file (absent and null values are NaN). */
typedef struct RunLog {
    int rows, columns;
    const char **keys;
    double *values; /* rows * columns */
} RunLog;

/* Returns true, or false with "PATH:LINE: reason" in *error. */
bool runlog_read(Arena *arena, const char *path, RunLog *log, const char **error);
/* The value in row `row` under `key`, NaN when absent. */
double runlog_value(const RunLog *log, int row, const char *key);

/* Writes `text` to `path` through a temporary file and a rename; false after an error message. */
bool write_file_atomic(const char *path, const char *text, size_t length);

#endif
