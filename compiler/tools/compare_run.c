/* compare_run.c — running subprocesses for `nnc compare` (compiles and training runs), reading
 * their JSONL logs. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compare.h"

extern char **environ;

static double monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* posix_spawn, not system(): the arguments reach the program as they are, with no shell to quote
 * them for (paths with spaces or quotes in them are fine). */
static pid_t job_start(CompareJob *job) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, job->output_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addclose(&actions, STDIN_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, job->argv[0], &actions, NULL, job->argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        FILE *f = fopen(job->output_path, "w");
        if (f) {
            fprintf(f, "error: cannot run '%s': %s\n", job->argv[0], strerror(rc));
            fclose(f);
        }
        return -1;
    }
    return pid;
}

int compare_jobs_run(CompareJob *jobs, int count, int parallel, CompareJobDoneFn *done, void *context) {
    if (parallel < 1) parallel = 1;
    pid_t *pids = calloc((size_t)parallel, sizeof *pids);
    int *slot_job = calloc((size_t)parallel, sizeof *slot_job);
    double *started = calloc((size_t)parallel, sizeof *started);
    if (!pids || !slot_job || !started) {
        free(pids), free(slot_job), free(started);
        fprintf(stderr, "nnc: error: out of memory\n");
        return -1;
    }
    int next = 0, running = 0, status = 0;
    for (;;) {
        /* Fill the free slots. */
        for (int s = 0; s < parallel && next < count; s++) {
            if (pids[s] > 0) continue;
            while (next < count && !jobs[next].argv) next++;
            if (next == count) break;
            CompareJob *job = &jobs[next];
            slot_job[s] = next++;
            started[s] = monotonic_seconds();
            pid_t pid = job_start(job);
            if (pid < 0) {
                job->exit_status = 127;
                job->seconds = 0;
                done(context, job);
                s--; /* the slot is still free */
                continue;
            }
            pids[s] = pid;
            job->started_at = started[s];
            job->running = true;
            running++;
        }
        if (running == 0) break;
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "nnc: error: waiting for a subprocess: %s\n", strerror(errno));
            status = -1;
            break;
        }
        for (int s = 0; s < parallel; s++) {
            if (pids[s] != pid) continue;
            CompareJob *job = &jobs[slot_job[s]];
            job->seconds = monotonic_seconds() - started[s];
            job->running = false;
            job->exit_status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
            pids[s] = 0;
            running--;
            done(context, job);
        }
    }
    free(pids), free(slot_job), free(started);
    return status;
}

const char *compare_job_error_line(Arena *arena, const char *output_path) {
    FILE *f = fopen(output_path, "r");
    if (!f) return NULL;
    char line[1024];
    const char *found = NULL;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        const char *msg = strncmp(line, "error: ", 7) == 0 ? line + 7 : NULL;
        const char *mid = strstr(line, ": error: ");
        if (!msg && mid) msg = line; /* file:line:col: error: ... keeps its location */
        if (msg) found = arena_strdup(arena, msg);
    }
    fclose(f);
    return found;
}

/* ---- JSONL ---- */

typedef struct Cursor {
    const char *p;
} Cursor;

static void skip_space(Cursor *c) {
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\r') c->p++;
}

/* A JSON string without escapes other than \" and \\ (the runtime's keys are plain identifiers). */
static const char *read_key(Arena *arena, Cursor *c) {
    if (*c->p != '"') return NULL;
    const char *start = ++c->p;
    while (*c->p && *c->p != '"' && *c->p != '\n') {
        if (*c->p == '\\') return NULL;
        c->p++;
    }
    if (*c->p != '"') return NULL;
    const char *key = arena_strndup(arena, start, (size_t)(c->p - start));
    c->p++;
    return key;
}

static int key_column(Arena *arena, CompareLog *log, const char *key, int *capacity) {
    for (int k = 0; k < log->columns; k++)
        if (strcmp(log->keys[k], key) == 0) return k;
    if (log->columns == *capacity) {
        *capacity = *capacity ? *capacity * 2 : 16;
        const char **keys = ARENA_ARRAY(arena, const char *, *capacity);
        if (log->columns) memcpy(keys, log->keys, sizeof *keys * (size_t)log->columns);
        log->keys = keys;
    }
    log->keys[log->columns] = key;
    return log->columns++;
}

bool compare_log_read(Arena *arena, const char *path, CompareLog *log, const char **error) {
    memset(log, 0, sizeof *log);
    FILE *f = fopen(path, "r");
    if (!f) {
        *error = arena_printf(arena, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    /* First pass collects (row, key, value) triples; the dense table is built at the end, when
     * the number of columns is known. */
    typedef struct Cell { int row, column; double value; } Cell;
    Cell *cells = NULL;
    size_t cell_count = 0, cell_capacity = 0;
    int key_capacity = 0, line_number = 0;
    char *line = NULL;
    size_t line_capacity = 0;
    bool ok = true;
    while (ok && getline(&line, &line_capacity, f) >= 0) {
        line_number++;
        Cursor c = {line};
        skip_space(&c);
        if (*c.p == '\n' || !*c.p) continue;
        const char *why = NULL;
        if (*c.p++ != '{') why = "expected '{'";
        skip_space(&c);
        while (!why && *c.p != '}') {
            const char *key = read_key(arena, &c);
            if (!key) { why = "expected a key in double quotes"; break; }
            skip_space(&c);
            if (*c.p++ != ':') { why = "expected ':'"; break; }
            skip_space(&c);
            double value;
            if (strncmp(c.p, "null", 4) == 0) {
                value = NAN;
                c.p += 4;
            } else {
                char *end;
                errno = 0;
                value = strtod(c.p, &end);
                if (end == c.p || !isfinite(value) || (*c.p != '-' && (*c.p < '0' || *c.p > '9'))) {
                    why = "expected a number or null";
                    break;
                }
                c.p = end;
            }
            if (cell_count == cell_capacity) {
                cell_capacity = cell_capacity ? cell_capacity * 2 : 256;
                Cell *grown = realloc(cells, cell_capacity * sizeof *cells);
                if (!grown) { why = "out of memory"; break; }
                cells = grown;
            }
            cells[cell_count++] = (Cell){log->rows, key_column(arena, log, key, &key_capacity), value};
            skip_space(&c);
            if (*c.p == ',') {
                c.p++;
                skip_space(&c);
            } else if (*c.p != '}') why = "expected ',' or '}'";
        }
        if (!why) {
            c.p++;
            skip_space(&c);
            if (*c.p != '\n' && *c.p) why = "text after the object";
        }
        if (why) {
            *error = arena_printf(arena, "%s:%d: not a flat JSON object of numbers: %s", path, line_number, why);
            ok = false;
        }
        log->rows++;
    }
    free(line);
    fclose(f);
    if (ok) {
        log->values = ARENA_ARRAY(arena, double, (size_t)log->rows * (size_t)log->columns + 1);
        for (size_t i = 0; i < (size_t)log->rows * (size_t)log->columns; i++) log->values[i] = NAN;
        for (size_t i = 0; i < cell_count; i++)
            log->values[(size_t)cells[i].row * (size_t)log->columns + (size_t)cells[i].column] = cells[i].value;
    }
    free(cells);
    return ok;
}

double compare_log_value(const CompareLog *log, int row, const char *key) {
    for (int k = 0; k < log->columns; k++)
        if (strcmp(log->keys[k], key) == 0) return log->values[(size_t)row * (size_t)log->columns + (size_t)k];
    return NAN;
}
