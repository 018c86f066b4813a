/* emit_lib.c — the inference library: NAME.a and NAME.h (see emit_lib.h).
 *
 * The object comes from cg_build_library (codegen.c) and target_emit_object (target.c). The
 * archive is written here rather than by `ar`: LLVM's C API has no archive writer, and the host's
 * binutils need not know a --target's object format. The format is the System V / GNU one that
 * ld and lld read: "!<arch>\n", a symbol index member "/" (big-endian count, member offsets,
 * NUL-terminated names) listing the two exported functions, then the object member. Both files
 * are written atomically (file_write_atomic), the archive first, so a failure leaves neither a
 * half-written file nor a header without its library. */
#include "emit_lib.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "file.h"
#include "nnrt.h"

double emit_input_scale(const Model *model) {
    const char *spec = model->data;
    if (!spec || strncmp(spec, "idx(", 4) != 0) return 1;
    bool quoted = false;
    for (const char *p = spec; *p; p++) {
        if (*p == '\\' && quoted && p[1]) { p++; continue; }
        if (*p == '"') quoted = !quoted;
        if (!quoted && strncmp(p, "scale=", 6) == 0) return strtod(p + 6, NULL);
    }
    return 1;
}

/* The C prefix of the library at `stem` (its last path component), or NULL when it is not a C
 * identifier. */
static const char *lib_prefix(const char *stem) {
    const char *slash = strrchr(stem, '/');
    const char *name = slash ? slash + 1 : stem;
    if (!*name || !(isalpha((unsigned char)name[0]) || name[0] == '_')) return NULL;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return NULL;
    return name;
}

static void buf_put_be32(char *at, uint32_t v) {
    at[0] = (char)(v >> 24);
    at[1] = (char)(v >> 16);
    at[2] = (char)(v >> 8);
    at[3] = (char)v;
}

/* A 60-byte member header: name (with its '/' terminator), zero date/uid/gid, mode, size. */
static void ar_member_header(char *at, const char *name, size_t size) {
    char header[61];
    snprintf(header, sizeof header, "%-16s%-12s%-6s%-6s%-8s%-10zu`\n", name, "0", "0", "0", "644", size);
    memcpy(at, header, 60);
}

/* The archive: index of `symbols` (all defined in the one object member `member`). */
static char *ar_build(Arena *arena, const char *member, const char *object, size_t object_size, const char *const *symbols,
                      int symbol_count, size_t *size) {
    size_t names = 0;
    for (int i = 0; i < symbol_count; i++) names += strlen(symbols[i]) + 1;
    size_t index_size = 4 + 4 * (size_t)symbol_count + names;
    size_t index_padded = index_size + (index_size & 1);
    size_t object_at = 8 + 60 + index_padded;
    size_t total = object_at + 60 + object_size + (object_size & 1);
    char *ar = arena_alloc(arena, total);
    memcpy(ar, "!<arch>\n", 8);
    ar_member_header(ar + 8, "/", index_size);
    char *p = ar + 68;
    buf_put_be32(p, (uint32_t)symbol_count);
    p += 4;
    for (int i = 0; i < symbol_count; i++, p += 4) buf_put_be32(p, (uint32_t)object_at);
    for (int i = 0; i < symbol_count; i++) {
        size_t len = strlen(symbols[i]) + 1;
        memcpy(p, symbols[i], len);
        p += len;
    }
    if (index_size & 1) *p++ = '\n';
    ar_member_header(p, arena_printf(arena, "%s/", member), object_size);
    memcpy(p + 60, object, object_size);
    if (object_size & 1) p[60 + object_size] = '\n';
    *size = total;
    return ar;
}

static const char *shape_text(Arena *arena, const Shape *s) {
    char *out = arena_strdup(arena, "[");
    for (int i = 0; i < s->rank; i++) out = arena_printf(arena, "%s%s%lld", out, i ? ", " : "", (long long)s->dims[i]);
    return arena_printf(arena, "%s]", out);
}

/* The header: sizes, the input type, the two functions, and comments saying what the model is,
 * what its input and output hold and how the library treats them. */
static const char *lib_header(Arena *arena, const Model *model, const Plan *plan, const EmitLibOptions *o, const char *prefix,
                              const Checkpoint *ckpt, double scale) {
    const Graph *g = model->graph;
    const Node *out = graph_node(g, g->output);
    bool tokens = model->input_kind == NNRT_INPUT_INT;
    bool probs = model->output_kind == NNRT_OUTPUT_PROBABILITIES;
    int64_t in_size = shape_size(&model->input_shape);
    char upper[256];
    size_t k = 0;
    for (; prefix[k] && k < sizeof upper - 1; k++) upper[k] = (char)toupper((unsigned char)prefix[k]);
    upper[k] = '\0';
    const char *input_note =
        tokens ? arena_printf(arena, "token ids as in the data file, each in [0, %lld) (int32_t)", (long long)model->input_vocab)
        : ckpt->mean ? "the raw feature values as in the data file's columns, in the model's column order; the library standardizes "
                       "them with the\n *   training set's mean and standard deviation stored in the checkpoint, (x - mean) / std"
        : scale != 1 ? arena_printf(arena, "the raw values as in the data file (e.g. pixel bytes 0..255 as floats); the library\n"
                                           " *   multiplies them by the data spec's scale=%.17g, as training did", scale)
                     : "the values as in the data file (no preprocessing)";
    const char *output_note =
        probs ? arena_printf(arena, "softmax probabilities over the %lld classes of target `%s`%s (the arg-max is the predicted class)",
                             (long long)out->shape.dims[out->shape.rank - 1], model->target_name,
                             out->shape.rank > 1 ? ", one distribution per position" : "")
              : arena_printf(arena, "the predicted values of target `%s` (loss %s), in the target's units", model->target_name,
                             model->loss_name);
    return arena_printf(arena,
        "/* %s.h — inference library for the nnc model `%s`, generated by nnc %s. Do not edit.\n"
        " *\n"
        " *   source:      %s\n"
        " *   weights:     %s (%lld parameters, embedded read-only in %s.a)\n"
        " *   target:      %s%s%s\n"
        " *\n"
        " * Input  `%s` : %s%s, %lld values per example (%s_INPUT_SIZE), row-major (C order),\n"
        " *   examples one after another: input[e * %s_INPUT_SIZE + i]. Values: %s.\n"
        " * Output %s, %lld values per example (%s_OUTPUT_SIZE): %s.\n"
        " *   These are the numbers `./%s predict` prints for the same input.\n"
        " *\n"
        " * Use: allocate %s_workspace_size(n) bytes (any alignment) once per thread, then call\n"
        " * %s_predict(input, n, output, workspace) for up to n examples at a time. The library allocates\n"
        " * nothing, keeps no state between calls and depends on libc and libm only (link with -lm); any\n"
        " * number of threads may call it at once, each with its own workspace. Each call runs on the\n"
        " * calling thread. Every symbol it exports starts with %s_.\n"
        " * Returns %s_OK (0), %s_EINVAL (n < 0, or a NULL pointer with n > 0)%s. */\n"
        "#ifndef %s_H\n"
        "#define %s_H\n"
        "\n"
        "#include <stddef.h>\n"
        "#include <stdint.h>\n"
        "\n"
        "#ifdef __cplusplus\n"
        "extern \"C\" {\n"
        "#endif\n"
        "\n"
        "#define %s_INPUT_SIZE  %lld   /* elements per example: `%s` %s */\n"
        "#define %s_OUTPUT_SIZE %lld   /* elements per example of the output %s */\n"
        "%s"
        "#define %s_OK      0\n"
        "#define %s_EINVAL  1\n"
        "%s"
        "\n"
        "typedef %s %s_input_t;\n"
        "\n"
        "/* Bytes of scratch memory %s_predict needs for a batch of n examples (0 for n < 0). */\n"
        "size_t %s_workspace_size(int n);\n"
        "\n"
        "/* output [n, %s_OUTPUT_SIZE] from input [n, %s_INPUT_SIZE]; workspace: %s_workspace_size(n) bytes. */\n"
        "int %s_predict(const %s_input_t *input, int n, float *output, void *workspace);\n"
        "\n"
        "#ifdef __cplusplus\n"
        "}\n"
        "#endif\n"
        "#endif\n",
        prefix, model->name, o->version, o->source, o->weights, (long long)g->param_count, prefix,
        o->target.triple ? o->target.triple : "the host", o->target.cpu ? ", CPU " : "", o->target.cpu ? o->target.cpu : "",
        model->input_name, tokens ? "int" : "float", shape_text(arena, &model->input_shape), (long long)in_size, prefix, prefix,
        input_note, shape_text(arena, &out->shape), (long long)out->size, prefix, output_note, model->name, prefix, prefix, prefix,
        prefix, prefix, tokens ? arena_printf(arena, " or %s_ETOKEN (a token id outside the vocabulary)", prefix) : "",
        upper, upper,
        prefix, (long long)in_size, model->input_name, shape_text(arena, &model->input_shape), prefix, (long long)out->size,
        shape_text(arena, &out->shape),
        probs ? arena_printf(arena, "#define %s_CLASSES     %lld   /* classes of target `%s` */\n", prefix,
                             (long long)out->shape.dims[out->shape.rank - 1], model->target_name)
              : "",
        prefix, prefix, tokens ? arena_printf(arena, "#define %s_ETOKEN  2\n", prefix) : "",
        tokens ? "int32_t" : "float", prefix, prefix, prefix, prefix, prefix, prefix, prefix, prefix);
    (void)plan;
}

int emit_lib(Arena *arena, const Model *model, const Plan *plan, const CodegenInfo *info, const EmitLibOptions *o) {
    char *stem = arena_strdup(arena, o->output ? o->output : model->name);
    size_t len = strlen(stem);
    if (len > 2 && (strcmp(stem + len - 2, ".a") == 0 || strcmp(stem + len - 2, ".h") == 0)) stem[len - 2] = '\0';
    const char *prefix = lib_prefix(stem);
    if (!prefix) {
        const char *slash = strrchr(stem, '/');
        fprintf(stderr, "nnc: error: --emit=lib: the library name '%s' is not a C identifier, and it prefixes every symbol of the "
                        "library\nhint: choose -o NAME with letters, digits and '_' (not starting with a digit), e.g. -o %s\n",
                slash ? slash + 1 : stem, model->name);
        return 1;
    }
    if (strlen(prefix) > 200) {
        fprintf(stderr, "nnc: error: --emit=lib: the library name '%s' is too long (at most 200 characters)\n", prefix);
        return 1;
    }
    Checkpoint ckpt;
    if (checkpoint_load(arena, o->weights, model, &ckpt)) return 1;
    double scale = emit_input_scale(model);
    CgLibrary lib = {.prefix = prefix, .params = ckpt.params, .mean = ckpt.mean, .std = ckpt.std, .scale = scale};

    LLVMContextRef context = LLVMContextCreate();
    LLVMModuleRef module = cg_build_library(context, model, plan, info, &lib);
    LLVMMemoryBufferRef object = NULL;
    int status = module ? target_emit_object(module, &o->target, &object) : 2;
    if (module) LLVMDisposeModule(module);
    LLVMContextDispose(context);
    if (status) return status;

    const char *symbols[] = {arena_printf(arena, "%s_predict", prefix), arena_printf(arena, "%s_workspace_size", prefix)};
    size_t ar_size = 0;
    const char *ar = ar_build(arena, "lib.o", LLVMGetBufferStart(object), LLVMGetBufferSize(object), symbols, 2, &ar_size);
    LLVMDisposeMemoryBuffer(object);
    const char *header = lib_header(arena, model, plan, o, prefix, &ckpt, scale);
    const char *paths[2] = {arena_printf(arena, "%s.a", stem), arena_printf(arena, "%s.h", stem)};
    const char *data[2] = {ar, header};
    size_t sizes[2] = {ar_size, strlen(header)};
    for (int i = 0; i < 2; i++) {
        int error = file_write_atomic(paths[i], data[i], sizes[i]);
        if (error) {
            fprintf(stderr, "nnc: error: cannot write '%s': %s\n", paths[i], strerror(error));
            return 1;
        }
    }
    return 0;
}
