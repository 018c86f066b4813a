/* main.c — the nnc driver: command line, reading the source, running the stages in order and
 * stopping between stages when one reported errors.
 *
 *   nnc FILE.nn [-o OUT] [-O0|-O1|-O2|-O3] [-D NAME=VALUE]... [--emit=exe|obj|asm|llvm] [--mpi] [-w|-Werror]
 *   nnc FILE.nn --emit=lib --weights CKPT [-o NAME] [--target=TRIPLE] [--target-cpu=CPU]   (emit_lib.c)
 *   nnc FILE.nn --emit=onnx --weights CKPT [-o NAME.onnx]                                  (onnx.c)
 *   nnc check FILE.nn          diagnostics only
 *   nnc summary FILE.nn        the layer table
 *   nnc compare A.nn B.nn ...  train several designs alike; table and plots (tools/compare.c)
 *   nnc diff A.nn B.nn         layer-by-layer changes (tools/diff.c)
 *   nnc lsp                    a language server on stdin/stdout (tools/lsp.c)
 *   nnc fmt FILE.nn [--check]  the canonical layout (tools/fmt.c)
 *   nnc draw FILE.nn -o F.svg  the network as a diagram (tools/draw.c)
 * Exit status: 0 success, 1 errors in the user's input, 2 internal failures. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <llvm-c/Core.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "arena.h"
#include "autodiff.h"
#include "codegen.h"
#include "tools/compare.h"
#include "tools/diff.h"
#include "tools/draw.h"
#include "tools/fmt.h"
#include "tools/lsp.h"
#include "diag.h"
#include "emit_lib.h"
#include "onnx.h"
#include "file.h"
#include "graph.h"
#include "parse.h"
#include "plan.h"
#include "sema.h"
#include "source.h"
#include "summary.h"
#include "target.h"

enum { MAX_DEFINES = 64 };

typedef enum Command { CMD_BUILD, CMD_CHECK, CMD_SUMMARY } Command;

typedef struct Options {
    Command command;
    const char *input;
    const char *output;
    int opt_level;
    EmitKind emit;
    const char *cpu;
    const char *weights;      /* --weights: the checkpoint --emit=lib embeds */
    const char *triple;       /* --target: NULL for the host */
    Define defines[MAX_DEFINES];
    int define_count;
    bool dump_tokens, dump_ast, dump_graph, timing, verbose, mpi;
    DiagWarnings warnings;
    const char *inject_grad_bug;
    int vector_bytes;         /* --vector-bytes=32|64 (tests): lay kernels out for that width, not the target's */
} Options;

static void usage(FILE *out) {
    fprintf(out,
            "usage: nnc FILE.nn [-o OUT] [-O0|-O1|-O2|-O3] [-D NAME=VALUE]... [--emit=exe|obj|asm|llvm]\n"
            "       nnc check FILE.nn      report diagnostics only (exit 0 when clean)\n"
            "       nnc summary FILE.nn    print every layer's shape, parameters and FLOPs\n"
            "       nnc compare A.nn B.nn ... [-D NAME=V1,V2]... [--seeds N] [--epochs E] [--out DIR]\n"
            "                              train designs alike; table, plots, logs (nnc compare --help)\n"
            "       nnc diff A.nn B.nn     what changed between two designs, layer by layer\n"
            "       nnc diff A.nn -D NAME=V1,V2   the same between two values of a param\n"
            "       nnc fmt FILE.nn [--check]  rewrite in the canonical layout (--check: diff, exit 1)\n"
            "       nnc draw FILE.nn [-o OUT.svg] [--emit=svg|dot]  the network as a diagram (Graphviz)\n"
            "       nnc lsp                a language server for editors (LSP on stdin/stdout)\n"
            "options:\n"
            "  -o OUT                output path (default: the file's stem; '-' = stdout for asm/llvm)\n"
            "  -O0..-O3              optimization level (default -O2)\n"
            "  -D NAME=VALUE         override `param NAME`\n"
            "  --emit=KIND           exe (default), obj, asm, llvm, or lib (NAME.a + NAME.h: inference with\n"
            "                        the weights of --weights, libc/libm only)\n"
            "                        or onnx (an ONNX model of the inference graph, opset 17)\n"
            "  --weights CKPT        the checkpoint (train --save) that --emit=lib/onnx embeds\n"
            "  --target=TRIPLE       cross-compile for aarch64-linux-gnu (default: the host): executables,\n"
            "                        obj/asm/llvm/lib\n"
            "  --target-cpu=CPU      native (default), generic, x86-64, x86-64-v2, x86-64-v3, x86-64-v4;\n"
            "                        for aarch64: generic (default), cortex-a53, cortex-a72, neoverse-n1, ...\n"
            "  --dump-tokens, --dump-ast, --dump-graph   print a stage's result and stop\n"
            "  --time                print the time each stage took\n"
            "  --mpi                 link the MPI runtime: the executable trains data-parallel under mpirun\n"
            "  -w                    no warnings\n"
            "  -Werror               warnings are errors (exit status 1)\n"
            "  -v                    print the link command\n"
            "  --version, --help\n");
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Returns 0, or 1 after printing a usage error. */
static int parse_options(int argc, char **argv, Options *o) {
    memset(o, 0, sizeof *o);
    o->opt_level = 2;
    int i = 1;
    if (argc > 1 && strcmp(argv[1], "check") == 0) { o->command = CMD_CHECK; i = 2; }
    else if (argc > 1 && strcmp(argv[1], "summary") == 0) { o->command = CMD_SUMMARY; i = 2; }
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-o") == 0) {
            if (++i == argc) { fprintf(stderr, "nnc: error: -o needs a path\n"); return 1; }
            o->output = argv[i];
        } else if (strncmp(a, "-O", 2) == 0 && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            o->opt_level = a[2] - '0';
        } else if (strncmp(a, "-D", 2) == 0) {
            if (define_parse(a[2] ? a + 2 : (++i < argc ? argv[i] : NULL), o->defines, &o->define_count, MAX_DEFINES) != 0)
                return 1;
        } else if (strncmp(a, "--emit=", 7) == 0) {
            const char *k = a + 7;
            if (strcmp(k, "exe") == 0) o->emit = EMIT_EXE;
            else if (strcmp(k, "obj") == 0) o->emit = EMIT_OBJ;
            else if (strcmp(k, "asm") == 0) o->emit = EMIT_ASM;
            else if (strcmp(k, "llvm") == 0) o->emit = EMIT_LLVM;
            else if (strcmp(k, "lib") == 0) o->emit = EMIT_LIB;
            else if (strcmp(k, "onnx") == 0) o->emit = EMIT_ONNX;
            else { fprintf(stderr, "nnc: error: unknown --emit kind '%s' (exe, obj, asm, llvm, lib or onnx)\n", k); return 1; }
        } else if (strcmp(a, "--weights") == 0 || strncmp(a, "--weights=", 10) == 0) {
            o->weights = a[9] == '=' ? a + 10 : (++i < argc ? argv[i] : NULL);
            if (!o->weights || !*o->weights) { fprintf(stderr, "nnc: error: --weights needs a checkpoint path (written by ./model train --save FILE)\n"); return 1; }
        } else if (strcmp(a, "--target") == 0 || strncmp(a, "--target=", 9) == 0) {
            o->triple = a[8] == '=' ? a + 9 : (++i < argc ? argv[i] : NULL);
            if (!o->triple || !target_known_triple(o->triple)) {
                fprintf(stderr, "nnc: error: unknown --target '%s' (aarch64-linux-gnu or x86_64-linux-gnu)\n", o->triple ? o->triple : "");
                return 1;
            }
        } else if (strncmp(a, "--target-cpu=", 13) == 0) {
            o->cpu = a + 13; /* checked below, against the --target's CPUs (target_known_cpu) */
        } else if (strcmp(a, "--dump-tokens") == 0) o->dump_tokens = true;
        else if (strcmp(a, "--dump-ast") == 0) o->dump_ast = true;
        else if (strcmp(a, "--dump-graph") == 0) o->dump_graph = true;
        else if (strcmp(a, "--time") == 0) o->timing = true;
        else if (strcmp(a, "-v") == 0) o->verbose = true;
        else if (strcmp(a, "-w") == 0) o->warnings = DIAG_WARNINGS_OFF;
        else if (strcmp(a, "-Werror") == 0) o->warnings = DIAG_WARNINGS_AS_ERRORS;
        else if (strcmp(a, "--mpi") == 0) o->mpi = true;
        else if (strncmp(a, "--inject-grad-bug=", 18) == 0) o->inject_grad_bug = a + 18;
        else if (strncmp(a, "--vector-bytes=", 15) == 0) {
            /* for tests: 64 on an AVX2 machine runs the AVX-512 tile shapes (LLVM splits each vector) */
            o->vector_bytes = strcmp(a + 15, "32") == 0 ? 32 : strcmp(a + 15, "64") == 0 ? 64 : -1;
            if (o->vector_bytes < 0) {
                fprintf(stderr, "nnc: error: --vector-bytes takes 32 or 64, not '%s'\n", a + 15);
                return 1;
            }
        }
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { usage(stdout); exit(0); }
        else if (strcmp(a, "--version") == 0) { printf("nnc %s (LLVM 19)\n", NNC_VERSION); exit(0); }
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nnc: error: unknown option '%s'\n", a);
            usage(stderr);
            return 1;
        } else if (o->input) {
            fprintf(stderr, "nnc: error: more than one input file ('%s' and '%s')\n", o->input, a);
            return 1;
        } else {
            o->input = a;
        }
    }
    if (!o->input) {
        fprintf(stderr, "nnc: error: no input file\n");
        usage(stderr);
        return 1;
    }
    const char *cpus = NULL;
    if (o->cpu && !target_known_cpu(o->triple, o->cpu, &cpus)) {
        fprintf(stderr, "nnc: error: unknown --target-cpu '%s' (use %s)\n", o->cpu, cpus);
        return 1;
    }
    bool embeds_weights = o->emit == EMIT_LIB || o->emit == EMIT_ONNX;
    if (embeds_weights && !o->weights) {
        fprintf(stderr, "nnc: error: --emit=%s needs the trained weights: --weights CKPT.safetensors (written by ./model train --save FILE)\n",
                o->emit == EMIT_LIB ? "lib" : "onnx");
        return 1;
    }
    if (o->weights && !embeds_weights) {
        fprintf(stderr, "nnc: error: --weights is for --emit=lib and --emit=onnx (the executable loads weights at run time: ./model predict --load FILE)\n");
        return 1;
    }
    if (o->triple && o->emit == EMIT_ONNX) {
        fprintf(stderr, "nnc: error: --target does not apply to --emit=onnx (an ONNX model runs on any CPU its runtime supports)\n");
        return 1;
    }
    if (o->triple && o->emit == EMIT_EXE && !target_cross_exe_ok(o->triple, o->mpi)) return 1;
    if (o->mpi && !target_have_mpi()) {
        fprintf(stderr, "nnc: error: --mpi: this nnc was built without MPI (CMake found no MPI C library)\n"
                        "hint: install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev) and rebuild nnc\n");
        return 1;
    }
    return 0;
}

static const char *source_hash(Arena *arena, const char *text, int length) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < length; i++) {
        h ^= (unsigned char)text[i];
        h *= 1099511628211ull;
    }
    return arena_printf(arena, "%016llx", (unsigned long long)h);
}

static int compile(const Options *o, Arena *arena) {
    double t0 = now_seconds();
    static const char *const suffix[] = {"", ".o", ".s", ".ll", "", ".onnx"};
    const char *output = o->output ? o->output : arena_printf(arena, "%s%s", source_model_name(arena, o->input), suffix[o->emit]);
    /* Writing the output over the source (any spelling, a hard link) would destroy the design. */
    bool writes = o->command == CMD_BUILD && !o->dump_tokens && !o->dump_ast && !o->dump_graph;
    if (writes && file_same(output, o->input)) {
        fprintf(stderr, "nnc: error: the output '%s' is the source file '%s'; choose another -o path\n", output, o->input);
        return 1;
    }
    int length = 0;
    char *text = source_read(o->input, &length);
    if (!text) return 1;
    Diag diag;
    diag_init(&diag, o->input, text, length, stderr);
    diag.warnings = o->warnings;
    int status = 1;
    if (o->dump_tokens) {
        status = parse_dump_tokens(&diag, stdout);
        goto done;
    }
    Ast *ast = parse_source(arena, &diag);
    if (diag.error_count) goto done;
    if (o->dump_ast) {
        ast_dump(stdout, ast, &diag);
        status = 0;
        goto done;
    }
    Model *model = sema_analyze(arena, &diag, ast, (Define *)o->defines, o->define_count, source_model_name(arena, o->input));
    if (!model) goto done;
    double t_front = now_seconds();
    if (!ad_append_backward(model->graph, o->inject_grad_bug)) {
        fprintf(stderr, "nnc: error: --inject-grad-bug: no op named '%s'\n", o->inject_grad_bug);
        goto done;
    }
    Plan *plan = plan_build(arena, model->graph);
    if (o->command == CMD_CHECK) {
        status = 0;
        goto done;
    }
    const char *summary = summary_table(arena, model, plan);
    if (o->command == CMD_SUMMARY) {
        fputs(summary, stdout);
        status = 0;
        goto done;
    }
    if (o->dump_graph) {
        graph_dump(stdout, model->graph);
        status = 0;
        goto done;
    }
    char absolute[PATH_MAX];
    if (!realpath(o->input, absolute)) snprintf(absolute, sizeof absolute, "%s", o->input);
    char *dir = arena_strdup(arena, absolute);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
    TargetOptions target = {.opt_level = o->opt_level, .triple = o->triple, .cpu = o->cpu, .emit = o->emit, .verbose = o->verbose};
    CodegenInfo info = {.source_path = absolute, .source_dir = dir, .source_hash = source_hash(arena, text, length), .summary = summary,
                        .vector_bytes = o->vector_bytes ? o->vector_bytes : target_vector_bytes(&target)};
    if (o->emit == EMIT_ONNX) {
        OnnxOptions onnx = {.output = output, .weights = o->weights, .source = absolute, .version = NNC_VERSION, .diag = &diag};
        status = onnx_emit(arena, model, &onnx);
        goto done;
    }
    if (o->emit == EMIT_LIB) {
        EmitLibOptions lib = {.output = output, .source = absolute, .weights = o->weights, .version = NNC_VERSION, .target = target};
        status = emit_lib(arena, model, plan, &info, &lib);
        goto done;
    }

    LLVMContextRef context = LLVMContextCreate();
    LLVMModuleRef module = cg_build_module(context, model, plan, &info);
    double t_codegen = now_seconds();
    if (!module) {
        LLVMContextDispose(context);
        status = 2;
        goto done;
    }
    target.output = output;
    target.mpi = o->mpi;
    if (o->emit == EMIT_EXE) target.runtime_lib = target_find_runtime_for(o->triple, o->mpi);
    status = target_emit(module, &target);
    LLVMDisposeModule(module);
    LLVMContextDispose(context);
    if (o->timing) {
        double t_end = now_seconds();
        fprintf(stderr, "nnc: front end %.3fs, IR %.3fs, optimize+emit+link %.3fs, total %.3fs\n", t_front - t0,
                t_codegen - t_front, t_end - t_codegen, t_end - t0);
    }
done:
    diag_print(&diag); /* the stages print their own; nothing is left unless one returned early */
    free(text);
    return status;
}

int main(int argc, char **argv) {
    /* Past a file size limit (ulimit -f) a write then fails with EFBIG, which is reported with the
     * path, instead of killing nnc (and the linker, which inherits this) with SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "compare") == 0) return compare_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "diff") == 0) return diff_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "lsp") == 0) return lsp_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "fmt") == 0) return fmt_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "draw") == 0) return draw_main(argc, argv);
    Options options;
    if (parse_options(argc, argv, &options) != 0) return 1;
    Arena *arena = arena_new();
    int status = compile(&options, arena);
    arena_free(arena);
    for (int i = 0; i < options.define_count; i++) free((char *)options.defines[i].name);
    return status;
}
