/* target.c — target machine, optimization pipeline, emission and linking. Every LLVM step is
 * checked and every message disposed. */
#include "target.h"

#include "file.h"
#include "nnc_mpi.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The runtime archive `lib` (a path relative to nnc's runtime folder): $ENV, beside nnc (the
 * build tree), ../lib/nnc/ from nnc (an install), or under the install path. */
static const char *target_find_archive(const char *lib, const char *env_name) {
    static char path[PATH_MAX];
    const char *env = getenv(env_name);
    if (env && *env) return env;
    char exe[PATH_MAX - 64];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof path, "%s/%s", exe, lib);
            if (access(path, R_OK) == 0) return path;
            snprintf(path, sizeof path, "%s/../lib/nnc/%s", exe, lib);
            if (access(path, R_OK) == 0) return path;
        }
    }
#ifdef NNC_INSTALL_RUNTIME
    snprintf(path, sizeof path, "%s/%s", NNC_INSTALL_RUNTIME, lib);
    if (access(path, R_OK) == 0) return path;
#endif
    return NULL;
}

const char *target_find_runtime(bool mpi) {
    return mpi ? target_find_archive("libnnrt_mpi.a", "NNC_RUNTIME_MPI") : target_find_archive("libnnrt.a", "NNC_RUNTIME");
}

bool target_have_mpi(void) { return NNC_HAVE_MPI; }

static bool target_is_aarch64(const char *triple);

/* The aarch64 runtime (runtime/CMakeLists.txt builds it when the cross compiler is there). */
static const char *target_find_aarch64_runtime(void) { return target_find_archive("aarch64/libnnrt.a", "NNC_RUNTIME_AARCH64"); }

const char *target_find_runtime_for(const char *triple, bool mpi) {
    return target_is_aarch64(triple) ? target_find_aarch64_runtime() : target_find_runtime(mpi);
}

bool target_cross_exe_ok(const char *triple, bool mpi) {
    if (!target_is_aarch64(triple)) return true;
    if (mpi) {
        fprintf(stderr, "nnc: error: --mpi links the host's MPI runtime; it does not combine with --target=%s\n", triple);
        return false;
    }
    const char *lib = target_find_aarch64_runtime();
    if (!lib) {
        fprintf(stderr, "nnc: error: --target=%s: no aarch64 runtime library (aarch64/libnnrt.a beside nnc) to link a "
                        "training executable with\n"
                        "hint: this nnc was built without the cross compiler: install gcc-aarch64-linux-gnu and "
                        "libc6-dev-arm64-cross and rebuild nnc; --emit=lib, --emit=obj and --emit=asm need neither\n", triple);
        return false;
    }
    if (access(lib, R_OK) != 0) {
        fprintf(stderr, "nnc: error: --target=%s: cannot read the aarch64 runtime library '%s' (NNC_RUNTIME_AARCH64): %s\n", triple,
                lib, strerror(errno));
        return false;
    }
    return true;
}

/* The CPUs --target-cpu takes per target: LLVM aborts on CPU names it does not know, so only
 * these are passed on. */
static const char *const target_x86_cpus[] = {"native", "generic", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", NULL};
static const char *const target_aarch64_cpus[] = {"generic", "cortex-a53", "cortex-a55", "cortex-a72", "cortex-a76", "neoverse-n1",
                                                  "neoverse-n2", "neoverse-v1", "neoverse-v2", "apple-m1", NULL};

static bool target_is_aarch64(const char *triple) { return triple && strncmp(triple, "aarch64", 7) == 0; }

bool target_known_triple(const char *triple) {
    return strcmp(triple, "aarch64-linux-gnu") == 0 || strcmp(triple, "aarch64-unknown-linux-gnu") == 0 ||
           strcmp(triple, "x86_64-linux-gnu") == 0 || strcmp(triple, "x86_64-pc-linux-gnu") == 0;
}

bool target_known_cpu(const char *triple, const char *cpu, const char **list) {
    bool arm = target_is_aarch64(triple);
    *list = arm ? "generic, cortex-a53, cortex-a55, cortex-a72, cortex-a76, neoverse-n1, neoverse-n2, neoverse-v1, neoverse-v2 or apple-m1"
                : "native, generic, x86-64, x86-64-v2, x86-64-v3 or x86-64-v4";
    for (const char *const *c = arm ? target_aarch64_cpus : target_x86_cpus; *c; c++)
        if (strcmp(*c, cpu) == 0) return true;
    return false;
}

static LLVMTargetMachineRef target_machine(const TargetOptions *o, char **triple_out) {
    char *triple;
    bool cross = o->triple != NULL;
    if (cross && target_is_aarch64(o->triple)) {
        LLVMInitializeAArch64TargetInfo();
        LLVMInitializeAArch64Target();
        LLVMInitializeAArch64TargetMC();
        LLVMInitializeAArch64AsmPrinter();
        triple = LLVMCreateMessage("aarch64-unknown-linux-gnu");
    } else {
        LLVMInitializeNativeTarget();
        LLVMInitializeNativeAsmPrinter();
        triple = cross ? LLVMCreateMessage("x86_64-pc-linux-gnu") : LLVMGetDefaultTargetTriple();
    }
    LLVMTargetRef target;
    char *error = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &error)) {
        fprintf(stderr, "nnc: internal error: no LLVM target for %s: %s\n", triple, error);
        LLVMDisposeMessage(error);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    /* a cross target has no host CPU to ask: its "native" is its generic CPU */
    bool host = !cross && (!o->cpu || strcmp(o->cpu, "native") == 0);
    const char *named = o->cpu && strcmp(o->cpu, "native") != 0 ? o->cpu : "generic";
    char *cpu = host ? LLVMGetHostCPUName() : NULL;
    char *features = host ? LLVMGetHostCPUFeatures() : NULL;
    LLVMCodeGenOptLevel level = o->opt_level == 0 ? LLVMCodeGenLevelNone
                                : o->opt_level == 1 ? LLVMCodeGenLevelLess
                                : o->opt_level == 2 ? LLVMCodeGenLevelDefault
                                                    : LLVMCodeGenLevelAggressive;
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, host ? cpu : named, host ? features : "", level,
                                                      LLVMRelocPIC, LLVMCodeModelDefault);
    if (cpu) LLVMDisposeMessage(cpu);
    if (features) LLVMDisposeMessage(features);
    *triple_out = triple;
    return tm;
}

static int target_spawn(char *const argv[], int verbose) {
    if (verbose) {
        for (int i = 0; argv[i]; i++) fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
        fputc('\n', stderr);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "nnc: error: cannot run '%s': %s (install a C compiler driver: apt-get install %s)\n", argv[0], strerror(rc),
                strcmp(argv[0], "cc") == 0 ? "gcc" : "gcc-aarch64-linux-gnu libc6-dev-arm64-cross");
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Writes an output through file_write_atomic; 0, or 1 after "cannot write 'SHOWN': reason". */
static int write_output(const char *path, const char *shown, const char *data, size_t length) {
    int error = file_write_atomic(path, data, length);
    if (!error) return 0;
    fprintf(stderr, "nnc: error: cannot write '%s': %s\n", shown, strerror(error));
    return 1;
}

/* After a failed link: was it the destination's lack of room? The executable holds the object and
 * at most the whole runtime archive, so a file size limit (ulimit -f) or free space in the output's
 * directory below their sum is taken as the cause: EFBIG or ENOSPC, else 0 (a genuine link failure). */
static int output_space_error(const char *output, off_t object_size, const char *runtime_lib) {
    struct stat st;
    off_t needed = object_size + (stat(runtime_lib, &st) == 0 ? st.st_size : 0);
    struct rlimit limit;
    if (getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && (off_t)limit.rlim_cur < needed)
        return EFBIG;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", output);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else slash[slash == dir] = '\0';
    struct statvfs fs;
    if (statvfs(dir, &fs) == 0 && (off_t)fs.f_bavail * (off_t)fs.f_frsize < needed) return ENOSPC;
    return 0;
}

/* Verifies `module` and sets its target triple and data layout; *tm_out is the target machine
 * (the caller disposes it). 0, or 2 after printing an internal error. */
static int target_configure(LLVMModuleRef module, const TargetOptions *o, LLVMTargetMachineRef *tm_out) {
    char *error = NULL;
    if (LLVMVerifyModule(module, LLVMReturnStatusAction, &error)) {
        fprintf(stderr, "nnc: internal error: generated IR does not verify:\n%s\n", error);
        LLVMDisposeMessage(error);
        return 2;
    }
    LLVMDisposeMessage(error);
    char *triple = NULL;
    LLVMTargetMachineRef tm = target_machine(o, &triple);
    if (!tm) return 2;
    LLVMSetTarget(module, triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    char *layout_str = LLVMCopyStringRepOfTargetData(layout);
    LLVMSetDataLayout(module, layout_str);
    LLVMDisposeMessage(layout_str);
    LLVMDisposeTargetData(layout);
    LLVMDisposeMessage(triple);
    *tm_out = tm;
    return 0;
}

/* Runs `passes` (a new-pass-manager pipeline) on `module`: 0, or 2 after printing the error. */
static int target_run_passes(LLVMModuleRef module, const char *passes, const TargetOptions *o, LLVMTargetMachineRef tm) {
    LLVMPassBuilderOptionsRef pass_options = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(pass_options, o->opt_level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(pass_options, o->opt_level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(pass_options, o->opt_level >= 2);
    LLVMErrorRef pass_error = LLVMRunPasses(module, passes, tm, pass_options);
    LLVMDisposePassBuilderOptions(pass_options);
    if (!pass_error) return 0;
    char *msg = LLVMGetErrorMessage(pass_error);
    fprintf(stderr, "nnc: internal error: optimization failed: %s\n", msg);
    LLVMDisposeErrorMessage(msg);
    return 2;
}

/* The module's code as `kind` (object or assembly) in *out: 0, or 2 after printing the error. */
static int target_emit_buffer(LLVMTargetMachineRef tm, LLVMModuleRef module, LLVMCodeGenFileType kind, LLVMMemoryBufferRef *out) {
    char *error = NULL;
    if (!LLVMTargetMachineEmitToMemoryBuffer(tm, module, kind, &error, out)) return 0;
    fprintf(stderr, "nnc: internal error: cannot emit %s: %s\n", kind == LLVMAssemblyFile ? "assembly" : "the object", error);
    LLVMDisposeMessage(error);
    *out = NULL;
    return 2;
}

/* The kernels of layers of the same shape (a transformer's blocks, a ResNet's stages) are
 * generated identical; MergeFunctions keeps one copy of each before the expensive passes
 * (text_gpt: 547 functions -> 407, half the IR and of the compile time). No generated function's
 * address is compared, so identical ones may share one (unnamed_addr): callers are redirected
 * instead of left a thunk, and their callers can merge in turn. */
static int target_merge_functions(LLVMModuleRef module, const TargetOptions *o, LLVMTargetMachineRef tm) {
    /* LLVM vectorizes loops in 256-bit vectors on AVX-512 Intel cores unless told otherwise (the
     * products are written in 512-bit vectors; the elementwise kernels, gelu's tanh among them,
     * ran at half width) */
    bool wide = !target_is_aarch64(o->triple) && target_vector_bytes(o) == 64;
    for (LLVMValueRef fn = LLVMGetFirstFunction(module); fn; fn = LLVMGetNextFunction(fn)) {
        if (wide && !LLVMIsDeclaration(fn))
            LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateStringAttribute(LLVMGetModuleContext(module), "prefer-vector-width", 19, "512", 3));
        LLVMLinkage linkage = LLVMGetLinkage(fn);
        if (!LLVMIsDeclaration(fn) && (linkage == LLVMInternalLinkage || linkage == LLVMPrivateLinkage))
            LLVMSetUnnamedAddress(fn, LLVMGlobalUnnamedAddr);
    }
    return o->opt_level > 0 ? target_run_passes(module, "mergefunc", o, tm) : 0;
}

static const char *target_pipeline(const TargetOptions *o) {
    static const char *const levels[] = {"default<O0>", "default<O1>", "default<O2>", "default<O3>"};
    return levels[o->opt_level < 0 ? 0 : o->opt_level > 3 ? 3 : o->opt_level];
}

/* Verifies and optimizes `module` for the target; *tm_out is its target machine (the caller
 * disposes it). 0, or 2 after printing an internal error. */
static int target_prepare(LLVMModuleRef module, const TargetOptions *o, LLVMTargetMachineRef *tm_out) {
    LLVMTargetMachineRef tm = NULL;
    int status = target_configure(module, o, &tm);
    if (!status) status = target_merge_functions(module, o, tm);
    if (!status) status = target_run_passes(module, target_pipeline(o), o, tm);
    if (status) {
        if (tm) LLVMDisposeTargetMachine(tm);
        return status;
    }
    *tm_out = tm;
    return 0;
}

/* ---------------------------------------------------------------- parallel code generation
 *
 * An executable's module is optimized and compiled in TARGET_PARTS parts on up to as many
 * threads: LLVM's passes and instruction selection are per function, and most of an nnc
 * module's time is spent in a few dozen large kernels. Each function goes to one part (the
 * largest first, each to the part with the fewest instructions so far); the module is written
 * once as bitcode and every part reads it into a context of its own, keeps its functions'
 * bodies and declares the rest. Cross-part references need symbols, so internal functions
 * become hidden globals (prefixed "nnc." so that no runtime symbol can clash) — visible to the
 * executable's other objects only. The part count is fixed, not the core count, so the
 * executable is the same on every machine; a one-core machine runs the parts one after another.
 * Each function's code is what a one-part build would give it: the kernels are noinline and
 * take everything they use as arguments, so no pass looks across them (checkpoints and
 * predictions are byte-identical; the tests compare against references either way). */
enum { TARGET_PARTS = 4, TARGET_PART_MIN_INSTRUCTIONS = 4000 };
static const char target_part_attr[] = "nnc-part";

typedef struct TargetPartJob {
    const TargetOptions *o;
    const char *bitcode;
    size_t bitcode_size;
    atomic_int next;                            /* the next part to take */
    LLVMMemoryBufferRef objects[TARGET_PARTS];  /* NULL until a part succeeds */
    atomic_int status;                          /* the worst part's status */
} TargetPartJob;

static int64_t target_instructions(LLVMValueRef fn) {
    int64_t count = 0;
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(fn); b; b = LLVMGetNextBasicBlock(b))
        for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) count++;
    return count;
}

/* Replaces the definition `g` (a function or a global variable) by an external declaration of
 * the same name, type and visibility: 0, or 2 when out of memory. */
static int target_declare_instead(LLVMModuleRef module, LLVMValueRef g) {
    size_t len;
    const char *name = LLVMGetValueName2(g, &len);
    char *saved = strndup(name, len);
    if (!saved) {
        fprintf(stderr, "nnc: internal error: out of memory splitting the module\n");
        return 2;
    }
    LLVMSetValueName2(g, "", 0);
    bool fn = LLVMIsAFunction(g) != NULL;
    LLVMValueRef decl = fn ? LLVMAddFunction(module, saved, LLVMGlobalGetValueType(g)) : LLVMAddGlobal(module, LLVMGlobalGetValueType(g), saved);
    LLVMSetVisibility(decl, LLVMGetVisibility(g));
    LLVMReplaceAllUsesWith(g, decl);
    if (fn) LLVMDeleteFunction(g);
    else LLVMDeleteGlobal(g);
    free(saved);
    return 0;
}

/* The part a function was assigned (its nnc-part attribute; an attribute's value carries a
 * length, not a terminating NUL). */
static int target_part_of(LLVMValueRef fn) {
    LLVMAttributeRef a = LLVMGetStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, target_part_attr, sizeof target_part_attr - 1);
    unsigned len = 0;
    const char *value = a ? LLVMGetStringAttributeValue(a, &len) : NULL;
    int part = 0;
    for (unsigned i = 0; i < len && value[i] >= '0' && value[i] <= '9'; i++) part = 10 * part + (value[i] - '0');
    return part;
}

/* Keeps part `part`'s function bodies (and the module's non-local globals in part 0 only),
 * declaring everything else: 0, or 2 when out of memory. */
static int target_keep_part(LLVMModuleRef module, int part) {
    size_t count = 0, cap = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(module); fn; fn = LLVMGetNextFunction(fn)) cap++;
    for (LLVMValueRef g = LLVMGetFirstGlobal(module); g; g = LLVMGetNextGlobal(g)) cap++;
    LLVMValueRef *drop = malloc((cap + 1) * sizeof *drop);
    if (!drop) {
        fprintf(stderr, "nnc: internal error: out of memory splitting the module\n");
        return 2;
    }
    for (LLVMValueRef fn = LLVMGetFirstFunction(module); fn; fn = LLVMGetNextFunction(fn))
        if (!LLVMIsDeclaration(fn) && target_part_of(fn) != part) drop[count++] = fn;
    for (LLVMValueRef g = LLVMGetFirstGlobal(module); g; g = LLVMGetNextGlobal(g)) {
        LLVMLinkage linkage = LLVMGetLinkage(g);
        if (part != 0 && !LLVMIsDeclaration(g) && linkage != LLVMPrivateLinkage && linkage != LLVMInternalLinkage) drop[count++] = g;
    }
    int status = 0;
    for (size_t i = 0; i < count && !status; i++) status = target_declare_instead(module, drop[i]);
    free(drop);
    return status;
}

/* One part: read the bitcode, keep the part, optimize, emit the object. 0 or 2. */
static int target_run_part(TargetPartJob *job, int part) {
    const TargetOptions *o = job->o;
    LLVMContextRef context = LLVMContextCreate();
    LLVMMemoryBufferRef view = LLVMCreateMemoryBufferWithMemoryRange(job->bitcode, job->bitcode_size, "nnc", 0);
    LLVMModuleRef module = NULL;
    int status = 0;
    if (LLVMParseBitcodeInContext2(context, view, &module)) {
        fprintf(stderr, "nnc: internal error: cannot read back the module's bitcode\n");
        status = 2;
    }
    LLVMDisposeMemoryBuffer(view);
    char *triple = NULL;
    LLVMTargetMachineRef tm = status ? NULL : target_machine(o, &triple);
    if (!status && !tm) status = 2;
    if (triple) LLVMDisposeMessage(triple);
    if (!status) status = target_keep_part(module, part);
    if (!status) status = target_run_passes(module, target_pipeline(o), o, tm);
    if (!status) status = target_emit_buffer(tm, module, LLVMObjectFile, &job->objects[part]);
    if (tm) LLVMDisposeTargetMachine(tm);
    if (module) LLVMDisposeModule(module);
    LLVMContextDispose(context);
    return status;
}

static void *target_part_worker(void *arg) {
    TargetPartJob *job = arg;
    for (int part; (part = atomic_fetch_add(&job->next, 1)) < TARGET_PARTS;) {
        int status = target_run_part(job, part);
        if (status) atomic_store(&job->status, status);
    }
    return NULL;
}

/* Assigns every defined function a part (the nnc-part attribute) and makes internal ones hidden
 * globals; the number of parts used (1 for a small module, which is then left as it is; also
 * when there is no memory to split it). */
static int target_assign_parts(LLVMModuleRef module) {
    size_t count = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(module); fn; fn = LLVMGetNextFunction(fn)) count++;
    typedef struct { LLVMValueRef fn; int64_t size; } Sized;
    Sized *fns = malloc((count + 1) * sizeof *fns);
    if (!fns) return 1;
    size_t n = 0;
    int64_t total = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(module); fn; fn = LLVMGetNextFunction(fn))
        if (!LLVMIsDeclaration(fn)) {
            fns[n] = (Sized){fn, target_instructions(fn)};
            total += fns[n++].size;
        }
    if (total < TARGET_PART_MIN_INSTRUCTIONS) {
        free(fns);
        return 1;
    }
    /* largest first, ties in module order (insertion sort: a few hundred functions) */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && fns[j].size > fns[j - 1].size; j--) {
            Sized t = fns[j];
            fns[j] = fns[j - 1];
            fns[j - 1] = t;
        }
    int64_t load[TARGET_PARTS] = {0};
    LLVMContextRef context = LLVMGetModuleContext(module);
    for (size_t i = 0; i < n; i++) {
        int part = 0;
        for (int p = 1; p < TARGET_PARTS; p++)
            if (load[p] < load[part]) part = p;
        load[part] += fns[i].size;
        char value[4];
        snprintf(value, sizeof value, "%d", part);
        LLVMAddAttributeAtIndex(fns[i].fn, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(context, target_part_attr, sizeof target_part_attr - 1, value, (unsigned)strlen(value)));
        LLVMLinkage linkage = LLVMGetLinkage(fns[i].fn);
        if (linkage == LLVMInternalLinkage || linkage == LLVMPrivateLinkage) {
            size_t len;
            const char *name = LLVMGetValueName2(fns[i].fn, &len);
            char *prefixed = malloc(len + 5);
            if (!prefixed) { /* the module as it stands still compiles as one part */
                free(fns);
                return 1;
            }
            memcpy(prefixed, "nnc.", 4);
            memcpy(prefixed + 4, name, len);
            prefixed[len + 4] = '\0';
            LLVMSetValueName2(fns[i].fn, prefixed, len + 4);
            free(prefixed);
            LLVMSetLinkage(fns[i].fn, LLVMExternalLinkage);
            LLVMSetVisibility(fns[i].fn, LLVMHiddenVisibility);
        }
    }
    free(fns);
    return TARGET_PARTS;
}

/* The objects of an executable: objects[0..*count) (the caller disposes them). 0 or 2. */
static int target_emit_objects(LLVMModuleRef module, const TargetOptions *o, LLVMMemoryBufferRef *objects, int *count) {
    LLVMTargetMachineRef tm = NULL;
    int status = target_configure(module, o, &tm);
    if (!status) status = target_merge_functions(module, o, tm);
    int parts = status || o->opt_level == 0 ? 1 : target_assign_parts(module);
    if (!status && parts == 1) {
        status = target_run_passes(module, target_pipeline(o), o, tm);
        if (!status) status = target_emit_buffer(tm, module, LLVMObjectFile, &objects[0]);
        *count = status ? 0 : 1;
    }
    if (tm) LLVMDisposeTargetMachine(tm);
    if (status || parts == 1) return status;

    LLVMMemoryBufferRef bitcode = LLVMWriteBitcodeToMemoryBuffer(module);
    TargetPartJob job = {.o = o, .bitcode = LLVMGetBufferStart(bitcode), .bitcode_size = LLVMGetBufferSize(bitcode)};
    atomic_init(&job.next, 0);
    atomic_init(&job.status, 0);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores < 1 ? 1 : cores > TARGET_PARTS ? TARGET_PARTS : (int)cores;
    pthread_t workers[TARGET_PARTS];
    int started = 0;
    for (int t = 1; t < threads; t++)
        if (pthread_create(&workers[started], NULL, target_part_worker, &job) == 0) started++;
    target_part_worker(&job);
    for (int t = 0; t < started; t++) pthread_join(workers[t], NULL);
    LLVMDisposeMemoryBuffer(bitcode);
    status = atomic_load(&job.status);
    *count = 0;
    for (int p = 0; p < TARGET_PARTS; p++) {
        if (status && job.objects[p]) LLVMDisposeMemoryBuffer(job.objects[p]);
        else if (!status) objects[(*count)++] = job.objects[p];
    }
    return status;
}

int target_emit_object(LLVMModuleRef module, const TargetOptions *o, LLVMMemoryBufferRef *object) {
    LLVMTargetMachineRef tm = NULL;
    int status = target_prepare(module, o, &tm);
    if (status) return status;
    status = target_emit_buffer(tm, module, LLVMObjectFile, object);
    LLVMDisposeTargetMachine(tm);
    return status;
}

/* Links the objects (temporary files) with the runtime into o->output. */
static int target_emit_exe(LLVMModuleRef module, const TargetOptions *o) {
    /* The executable is linked under a temporary name and renamed into place, so a failure never
     * leaves a half-written file where the user expects a good one. Renaming over a device would
     * replace it (as root, /dev/null), so only a regular file or a new name is a destination. */
    struct stat st;
    if (stat(o->output, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", o->output, S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
        return 1;
    }
    if (!o->runtime_lib) {
        fprintf(stderr, "nnc: internal error: cannot find the runtime library %s (set %s to its path)\n",
                o->mpi ? "libnnrt_mpi.a" : "libnnrt.a", o->mpi ? "NNC_RUNTIME_MPI" : "NNC_RUNTIME");
        return 2;
    }
    LLVMMemoryBufferRef buffers[TARGET_PARTS];
    int count = 0;
    int status = target_emit_objects(module, o, buffers, &count);
    if (status) return status;
    char objects[TARGET_PARTS][PATH_MAX];
    int written = 0;
    off_t code_size = 0;
    for (int i = 0; i < count; i++) {
        const char *code = LLVMGetBufferStart(buffers[i]);
        size_t size = LLVMGetBufferSize(buffers[i]);
        code_size += (off_t)size;
        snprintf(objects[i], sizeof objects[i], "%s.%ld.tmp%d.o", o->output, (long)getpid(), i);
        if (!status) status = write_output(objects[i], o->output, code, size);
        if (!status) written++;
        LLVMDisposeMemoryBuffer(buffers[i]);
    }
    char linked[PATH_MAX];
    snprintf(linked, sizeof linked, "%s.%ld.tmp", o->output, (long)getpid());
    /* an aarch64 executable: Debian's cross gcc, the cross runtime, built without zlib */
    bool cross = target_is_aarch64(o->triple);
    char *argv[24 + TARGET_PARTS] = {cross ? "aarch64-linux-gnu-gcc" : "cc", "-o", linked};
    int argc = 3;
    for (int i = 0; i < written; i++) argv[argc++] = objects[i];
    argv[argc++] = (char *)o->runtime_lib;
    if (!cross) argv[argc++] = "-lz";
    argv[argc++] = "-lm";
    argv[argc++] = "-lpthread";
#ifdef NNC_RUNTIME_LINK_FLAG
    if (!cross) argv[argc++] = NNC_RUNTIME_LINK_FLAG;
#endif
#if NNC_HAVE_MPI
    /* the MPI libraries found when nnc was built (CMake's FindMPI), after the runtime using them */
    static const char *const mpi_args[] = {NNC_MPI_LINK_ARGS NULL};
    for (int i = 0; o->mpi && mpi_args[i] && argc < 23 + TARGET_PARTS; i++) argv[argc++] = (char *)mpi_args[i];
#endif
    argv[argc] = NULL;
    int rc = status ? 0 : target_spawn(argv, o->verbose);
    for (int i = 0; i < written; i++) unlink(objects[i]);
    if (status) return status;
    if (rc != 0) {
        unlink(linked);
        int space = output_space_error(o->output, code_size, o->runtime_lib);
        if (space) {
            fprintf(stderr, "nnc: error: cannot write '%s': %s\n", o->output, strerror(space));
            return 1;
        }
        fprintf(stderr, "nnc: internal error: linking '%s' failed\n", o->output);
        return 2;
    }
    if (rename(linked, o->output) != 0) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", o->output, strerror(errno));
        unlink(linked);
        return 1;
    }
    return 0;
}

int target_emit(LLVMModuleRef module, const TargetOptions *o) {
    if (o->emit == EMIT_EXE) return target_emit_exe(module, o);
    LLVMTargetMachineRef tm = NULL;
    int status = target_prepare(module, o, &tm);
    if (status) return status;
    bool to_stdout = strcmp(o->output, "-") == 0;
    if (o->emit == EMIT_LLVM) {
        char *ir = LLVMPrintModuleToString(module);
        LLVMDisposeTargetMachine(tm);
        if (to_stdout) fputs(ir, stdout);
        else status = write_output(o->output, o->output, ir, strlen(ir));
        LLVMDisposeMessage(ir);
        return status;
    }
    /* Assembly and objects are emitted to memory and written by file_write_atomic: a full disk
     * then is an error naming the path and the OS's reason, and no half-written file is left. */
    LLVMMemoryBufferRef buffer;
    status = target_emit_buffer(tm, module, o->emit == EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile, &buffer);
    LLVMDisposeTargetMachine(tm);
    if (status) return status;
    const char *code = LLVMGetBufferStart(buffer);
    size_t code_size = LLVMGetBufferSize(buffer);
    if (to_stdout) fwrite(code, 1, code_size, stdout);
    else status = write_output(o->output, o->output, code, code_size);
    LLVMDisposeMemoryBuffer(buffer);
    return status;
}

int target_vector_bytes(const TargetOptions *o) {
    if (o->triple) return o->cpu && strcmp(o->cpu, "x86-64-v4") == 0 ? 64 : 32; /* NEON: 32 registers of 16 bytes */
    bool host = !o->cpu || strcmp(o->cpu, "native") == 0;
    if (!host) return strcmp(o->cpu, "x86-64-v4") == 0 ? 64 : 32;
    char *features = LLVMGetHostCPUFeatures();
    bool avx512 = features && strstr(features, "+avx512f") != NULL;
    if (features) LLVMDisposeMessage(features);
    return avx512 ? 64 : 32;
}
