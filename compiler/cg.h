/* cg.h — internals shared by the code generator's files: codegen.c (module, entry points),
 * cg_gemm.c (the matrix-product micro-kernel) and the kernels of the op families in
 * compiler/ops/. Not a stage interface.
 *
 * Every node becomes one internal kernel function per element type (arguments: CgKernelArgs)
 * with its shapes baked in as constants, so LLVM unrolls and vectorizes for the exact sizes. */
#ifndef NNC_CG_H
#define NNC_CG_H

#include <llvm-c/Core.h>
#include <stdbool.h>

#include "graph.h"
#include "plan.h"
#include "sema.h"

/* ---------------------------------------------------------------- a kernel's arguments
 * One description of every kernel's argument list, used by the caller (codegen.c builds the
 * call from it) and by the kernel (cg_kernel_begin declares the parameters from it; the family
 * reads them by role), so no one counts argument positions by hand. The order is fixed:
 *   output, inputs..., weight, bias, running_mean, running_var, scratch, n, seed, shard,
 *   updated, update
 * each present only when the node has it (weight/bias/running statistics: the node's parameter
 * indices; scratch: the family's scratch hook; seed: cg_seeded; shard: OPK_GLOBAL_BATCH;
 * updated/update: the variant of a gradient kernel that also applies the optimizer update,
 * cg_optim.c). */
typedef enum CgArgRole {
    CG_ARG_OUTPUT,       /* ptr: the node's buffer, its gradient buffer or its f64 sum slot */
    CG_ARG_INPUT,        /* ptr: input `index` of the node */
    CG_ARG_WEIGHT,       /* ptr: parameters */
    CG_ARG_BIAS,
    CG_ARG_RUNNING_MEAN, /* ptr: saved state (non-trainable parameters) */
    CG_ARG_RUNNING_VAR,
    CG_ARG_SCRATCH,      /* ptr: the batch-independent scratch workspace */
    CG_ARG_BATCH,        /* i64: the examples of this call (n) */
    CG_ARG_SEED,         /* i64: the step seed */
    CG_ARG_SHARD,        /* ptr: the train step's const NnrtShard * */
    CG_ARG_UPDATED,      /* ptr: the values of the parameter whose gradient the kernel writes */
    CG_ARG_UPDATE,       /* ptr: train_step_update's const NnrtUpdate * */
} CgArgRole;

typedef struct CgArg {
    CgArgRole role;
    int index;           /* CG_ARG_INPUT: which input */
} CgArg;

typedef struct CgKernelArgs {
    int count;
    CgArg items[GRAPH_MAX_INPUTS + 9];
} CgKernelArgs;

typedef struct Cg {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    const Model *model;
    const Graph *g;
    const Plan *plan;
    bool f64;              /* element type of the function being built */
    bool training;         /* the kernel is for train_step (dropout active) */
    bool single_thread;    /* a library (--emit=lib): no runtime thread pool, cg_parallel_for runs inline */
    const float *lib_params; /* a library's embedded weights (the kernels may precompute from them), else NULL */
    int vector_bytes;      /* the target's vector registers: 64 (AVX-512, 32 of them) or 32 (AVX2, 16) */
    LLVMTypeRef elem, i1, i32, i64, f64_type, ptr, void_type;
    LLVMValueRef fn;       /* function being built */
    LLVMValueRef shard;    /* its `const NnrtShard *` argument, or NULL (see cg_batch_total) */
    CgKernelArgs args;     /* the argument list of the kernel being built (cg_kernel_begin) */
    bool update_variant;   /* the gradient kernel being built may apply its parameter's update */
    bool update_applied;   /* ... and did (cg_optim_gemm): the entry point skips the separate pass */
    LLVMBasicBlockRef entry_block;
} Cg;

/* Building another function in the middle of one: the builder's place and the function's
 * context (function, entry block, shard, kernel arguments) saved, and given back by
 * cg_function_leave. cg_function_enter starts `fn`'s entry block, with no shard or arguments. */
typedef struct CgFunctionScope {
    LLVMValueRef fn, shard;
    LLVMBasicBlockRef entry_block, block;
    CgKernelArgs args;
} CgFunctionScope;
CgFunctionScope cg_function_save(Cg *cg);
CgFunctionScope cg_function_enter(Cg *cg, LLVMValueRef fn);
void cg_function_leave(Cg *cg, const CgFunctionScope *saved);

typedef struct CgLoop {
    LLVMBasicBlockRef header, body, exit;
    LLVMValueRef iv;
    bool no_unroll;   /* set before cg_loop_end: the body is already wide (GEMM reductions) */
} CgLoop;

/* for (iv = lo; iv < hi; iv++) — leaves the builder in the body. */
CgLoop cg_loop_begin(Cg *cg, LLVMValueRef lo, LLVMValueRef hi, const char *name);
void cg_loop_end(Cg *cg, CgLoop *loop);

LLVMValueRef cg_i64(Cg *cg, int64_t v);
LLVMValueRef cg_const(Cg *cg, double v);             /* constant of the element type */
LLVMValueRef cg_var(Cg *cg, LLVMTypeRef type, const char *name); /* alloca in the entry block */
/* A private read-only global of `count` floats (64-byte aligned): a library's embedded tables. */
LLVMValueRef cg_float_table(Cg *cg, const float *values, int64_t count, const char *name);
LLVMValueRef cg_load(Cg *cg, LLVMValueRef base, LLVMValueRef index);  /* base[index], elements */
void cg_store(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index);
LLVMValueRef cg_gep(Cg *cg, LLVMValueRef base, LLVMValueRef index);
LLVMValueRef cg_min_i64(Cg *cg, LLVMValueRef a, LLVMValueRef b);  /* the smaller of two i64 values */
/* Chunk `chunk` of `chunks` fixed pieces of [0, total): [chunk*total/chunks, (chunk+1)*total/chunks),
 * bounds that depend only on total, so kernels that sum chunk partials in chunk order give the
 * same bits for any thread count. */
void cg_chunk_bounds(Cg *cg, LLVMValueRef chunk, LLVMValueRef total, int64_t chunks, LLVMValueRef *lo, LLVMValueRef *hi);
/* Floating-point arithmetic with reassociation and contraction allowed: LLVM may vectorize
 * reductions and form FMAs. Results stay deterministic for a given executable. */
LLVMValueRef cg_fadd(Cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fsub(Cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fmul(Cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fdiv(Cg *cg, LLVMValueRef a, LLVMValueRef b);
/* The same with only the `contract` flag: LLVM may fuse a multiply-add but reorders no sum —
 * for arithmetic whose order must not depend on the code around it (the products' chains, the
 * Winograd transforms, which the compiler also computes in C for a library). */
LLVMValueRef cg_fadd_ordered(Cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fsub_ordered(Cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fmul_ordered(Cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_mul(Cg *cg, LLVMValueRef a, LLVMValueRef b); /* i64 */
LLVMValueRef cg_add(Cg *cg, LLVMValueRef a, LLVMValueRef b); /* i64 */
LLVMValueRef cg_math(Cg *cg, const char *intrinsic, LLVMValueRef x); /* "llvm.exp", "llvm.log", ... */
LLVMValueRef cg_libm(Cg *cg, const char *name, LLVMValueRef x);      /* "tanh": tanh or tanhf */
LLVMValueRef cg_max(Cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_to_double(Cg *cg, LLVMValueRef x);
LLVMValueRef cg_n_as_elem(Cg *cg, LLVMValueRef n);

/* The global batch of data-parallel training, for kernels that take the shard (codegen.c decides
 * which): its example count (n itself in kernels without a shard), the global index of the
 * kernel's first example (0 without a shard), and an in-place sum over the ranks of `count`
 * doubles at `buf` (nothing without a shard). */
LLVMValueRef cg_batch_total(Cg *cg, LLVMValueRef n);
LLVMValueRef cg_batch_first(Cg *cg);
void cg_allreduce_sum(Cg *cg, LLVMValueRef buf, int64_t count);

/* The argument list of `node`'s kernel in a training (train_step) or other entry point; update:
 * its variant that applies the update of the parameter whose gradient it writes. */
CgKernelArgs cg_kernel_args(const Graph *g, const Node *node, bool training, bool update);

/* Starts the internal kernel of `node` ("k<id>_<op>[_eval]_<f32|f64>") with the parameters
 * cg_kernel_args gives; returns the function. The builder is left in its body; read the
 * arguments with the accessors below and finish with cg_kernel_end. */
LLVMValueRef cg_kernel_begin(Cg *cg, const Node *node);
/* The current kernel's argument of `role` (input `index` for CG_ARG_INPUT); NULL when the
 * kernel has none (no bias, not seeded, ...). */
LLVMValueRef cg_arg(Cg *cg, CgArgRole role, int index);
static inline LLVMValueRef cg_arg_out(Cg *cg) { return cg_arg(cg, CG_ARG_OUTPUT, 0); }
static inline LLVMValueRef cg_arg_in(Cg *cg, int index) { return cg_arg(cg, CG_ARG_INPUT, index); }
static inline LLVMValueRef cg_arg_weight(Cg *cg) { return cg_arg(cg, CG_ARG_WEIGHT, 0); }
static inline LLVMValueRef cg_arg_bias(Cg *cg) { return cg_arg(cg, CG_ARG_BIAS, 0); }
static inline LLVMValueRef cg_arg_scratch(Cg *cg) { return cg_arg(cg, CG_ARG_SCRATCH, 0); }
static inline LLVMValueRef cg_arg_n(Cg *cg) { return cg_arg(cg, CG_ARG_BATCH, 0); }
static inline LLVMValueRef cg_arg_seed(Cg *cg) { return cg_arg(cg, CG_ARG_SEED, 0); }
void cg_kernel_end(Cg *cg);

/* Vector access of `lanes` elements at base[index] (cg_gemm.c): whole vectors, or masked ones;
 * cg_lanes_below(count) is the mask of the lanes below a runtime count. */
LLVMValueRef cg_vload_full(Cg *cg, LLVMValueRef base, LLVMValueRef index, unsigned lanes);
void cg_vstore_full(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index);
LLVMValueRef cg_vload_masked(Cg *cg, LLVMValueRef base, LLVMValueRef index, unsigned lanes, LLVMValueRef mask);
void cg_vstore_masked(Cg *cg, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index, LLVMValueRef mask);
LLVMValueRef cg_lanes_below(Cg *cg, LLVMValueRef count, unsigned lanes);
/* A vector of `lanes` copies of a runtime scalar. */
LLVMValueRef cg_splat(Cg *cg, LLVMValueRef scalar, unsigned lanes);

/* Emits body(values, begin, end) over [0, count) split across the runtime's threads (see
 * cg_parallel.c); inside the body, `values` are the task's copies of the caller's values (at most
 * 16). serial (or an f64 kernel) emits the body inline on [0, count). */
typedef void (*CgParallelBody)(Cg *cg, LLVMValueRef *values, LLVMValueRef begin, LLVMValueRef end, void *user);
void cg_parallel_for(Cg *cg, LLVMValueRef count, LLVMValueRef *values, int value_count, bool serial,
                     CgParallelBody body, void *user);
/* Elements per example from which a kernel that splits its examples across threads does so
 * (element-wise kernels, layernorm): below, the wake-up costs more than it saves. */
enum { CG_EXAMPLE_PARALLEL_MIN = 4096 };

/* In place: rows[i] lane l <- rows[l] lane i, for `lanes` (a power of two) vectors (cg_gemm.c). */
void cg_transpose(Cg *cg, LLVMValueRef *rows, unsigned lanes);
/* dst[c*dst_rs + r] = src[r*src_rs + c] for r < rows (a runtime count), c < cols, in blocks of
 * the target's lanes x lanes transposed in registers. A last block of rows reads its missing
 * rows as copies of the last one; exact: it stores only the rows that exist (masked), else it
 * writes them too and dst needs room for the rows rounded up to the lanes. */
void cg_transpose_copy(Cg *cg, LLVMValueRef src, int64_t src_rs, LLVMValueRef rows, int64_t cols, LLVMValueRef dst, int64_t dst_rs,
                       bool exact);

/* C = scale * A B (+ bias) (act): see cg_gemm.c for the index conventions. */
typedef struct CgGemm {
    LLVMValueRef c, a, b, bias; /* bias may be NULL */
    LLVMValueRef M, P;          /* rows of C, reduction length (i64 values, may be runtime) */
    int64_t J;                  /* columns of C (compile-time) */
    int64_t a_rs, a_cs, b_rs, c_rs;
    double scale;
    const Node *act;            /* NULL, or the fused relu or sigmoid node applied to C (vector-safe) */
    bool row_bias;              /* bias is per row i (conv) instead of per column j (dense) */
    bool accumulate;            /* C += result instead of C = result */
    bool serial;                /* never split across threads (the caller already is a task) */
    bool b_transposed;          /* B(p,j) = b[j*b_rs + p]: dot-product tiles, unless pack_transposed */
    bool pack_transposed;       /* a transposed B may be copied into panels for the broadcast tiles when
                                   there are enough rows: faster, but the sums run in another order,
                                   so an example's bits then depend on the batch's size */
    bool b_in_place;            /* read B where it lies (the direct path): it is small and in cache
                                   already, and copying it into panels would cost more than it saves */
    bool lower;                 /* only C(i, j) with j <= i is read afterwards (causal scores): the
                                   packed path skips tiles wholly above the diagonal, leaving them as
                                   they were */
} CgGemm;
void cg_gemm(Cg *cg, const CgGemm *g);

LLVMValueRef cg_activation(Cg *cg, OpKind act, LLVMValueRef x);  /* relu/tanh/sigmoid of one value */
/* out[0..width) = scale * the sum over `rows` rows of src [rows, width] (ops/dense.c): the bias
 * gradients, summed over the batch (and positions). */
void cg_column_sums(Cg *cg, LLVMValueRef out, LLVMValueRef src, LLVMValueRef rows, int64_t width, double scale);
/* Over the row x[base, base + len) (ops/elementwise.c): its maximum, the sum of exp(x - max)
 * (var: a scratch variable of the element type; keep: also store each exp there at the same
 * index, or NULL), and y[row] = softmax(x[row]) (y may be x). */
LLVMValueRef cg_row_max(Cg *cg, LLVMValueRef x, LLVMValueRef base, LLVMValueRef len, LLVMValueRef var);
LLVMValueRef cg_row_sumexp(Cg *cg, LLVMValueRef x, LLVMValueRef base, LLVMValueRef len, LLVMValueRef max, LLVMValueRef var,
                           LLVMValueRef keep);
void cg_row_softmax(Cg *cg, LLVMValueRef y, LLVMValueRef x, LLVMValueRef base, LLVMValueRef len, LLVMValueRef max_var,
                    LLVMValueRef sum_var);
/* The index (i64, from 0) of the row's first greatest element — the first one a strict-greater
 * scan from element 0 keeps (elements that are NaN never win unless the first is). max_var:
 * a scratch variable of the element type, best_var one of i64. */
LLVMValueRef cg_row_argmax(Cg *cg, LLVMValueRef x, LLVMValueRef base, LLVMValueRef len, LLVMValueRef max_var, LLVMValueRef best_var);
/* exp, tanh and sigmoid in arithmetic LLVM can vectorize (float32; libm in the float64 twin),
 * ops/elementwise.c. */
LLVMValueRef cg_exp_fast(Cg *cg, LLVMValueRef x);
LLVMValueRef cg_tanh_fast(Cg *cg, LLVMValueRef u);
LLVMValueRef cg_sigmoid_fast(Cg *cg, LLVMValueRef x);
/* The fused optimizer update (cg_optim.c): the internal function update(params, grads, update)
 * that applies the NnrtUpdate (Adam/AdamW, float32) to trainable parameter `param`. */
LLVMValueRef cg_optim_update_kernel(Cg *cg, int param);
/* In a gradient kernel's update variant (cg->update_variant) whose product `g` writes the whole
 * gradient of the node's parameter (rows of C = the tensor's rows): emits the product split across
 * threads by row blocks, each task updating its rows right after computing them, sets
 * cg->update_applied and returns true. Otherwise emits nothing and returns false (call cg_gemm). */
bool cg_optim_gemm(Cg *cg, const Node *node, const CgGemm *g);
/* For a gradient kernel whose own tasks write whole rows of the gradient: in its update variant,
 * the values a task needs to update them (stored at out, appended to the task's values; returns
 * 2), else 0. In the task, after writing elements [lo, hi) of the gradient at `grad` (the
 * kernel's output, the task's copy): cg_optim_rows updates them and sets update_applied (outside
 * the update variant it emits nothing). */
int cg_optim_task_values(Cg *cg, const Node *node, LLVMValueRef *out);
void cg_optim_rows(Cg *cg, const Node *node, LLVMValueRef grad, const LLVMValueRef *values, LLVMValueRef lo, LLVMValueRef hi);
/* The element-type value of an alloca'd scalar variable (cg_var). */
static inline LLVMValueRef cg_load_var(Cg *cg, LLVMValueRef var) { return LLVMBuildLoad2(cg->b, cg->elem, var, ""); }

#endif
