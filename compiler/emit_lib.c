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
#include "graph.h"
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

/* ---------------------------------------------------------------- the raw-text entry point
 *
 * For a model trained on csv(..., text="COLUMN") data, NAME_predict_text takes each example's text
 * as it stands in the data file and tokenizes it exactly as the runtime's CSV reader does
 * (runtime/data_csv.c store_text for tokenize="bytes", runtime/data_words.c for "words"). The
 * tokenizer is generated here as LLVM IR rather than compiled from the runtime's C: nnc writes the
 * library's object itself, for any --target, with no C compiler at hand (compiler/DESIGN.md,
 * "Deployment"). The vocabulary is embedded as a constant open-addressing table built here with the
 * runtime's hash (FNV-1a over the word's bytes). */

/* Examples tokenized per NAME_predict call: bounds the workspace whatever n is. */
#define TEXT_CHUNK 256
/* The runtime keeps a word's first 255 bytes (data_words.c). */
#define TEXT_WORD_MAX 255

typedef struct TextSpec {
    bool words;         /* tokenize="words" (else "bytes") */
    int64_t length;     /* T: ids per example, the input's length */
    int64_t vocab_size; /* csv(vocab=N), words only */
} TextSpec;

/* The value of top-level argument `key` of the canonical data spec (a string unquoted, else the
 * text up to the next ',' or ')'), or NULL when the call has no such argument. */
static const char *spec_arg(Arena *arena, const char *spec, const char *key) {
    size_t klen = strlen(key);
    bool quoted = false;
    int depth = 0;
    for (const char *p = spec; *p; p++) {
        if (quoted) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == '"') quoted = false;
            continue;
        }
        if (*p == '"') quoted = true;
        else if (*p == '(') depth++;
        else if (*p == ')') depth--;
        else if (depth == 1 && (*p == ',' || *p == '(' || p[-1] == '(')) {
            const char *k = *p == ',' ? p + 1 : p;
            while (*k == ' ') k++;
            if (strncmp(k, key, klen) != 0 || k[klen] != '=') continue;
            const char *v = k + klen + 1;
            char *out = arena_alloc(arena, strlen(v) + 1), *w = out;
            if (*v == '"') {
                for (v++; *v && *v != '"'; v++) *w++ = *v == '\\' && v[1] ? *++v : *v;
            } else {
                while (*v && *v != ',' && *v != ')') *w++ = *v++;
            }
            *w = '\0';
            return out;
        }
    }
    return NULL;
}

/* Does the model's data spec have a text column? Fills *t. */
static bool text_spec(Arena *arena, const Model *model, TextSpec *t) {
    const char *spec = model->data;
    if (!spec || strncmp(spec, "csv(", 4) != 0 || model->input_kind != NNRT_INPUT_INT || !spec_arg(arena, spec, "text")) return false;
    const char *tokenize = spec_arg(arena, spec, "tokenize");
    const char *vocab = spec_arg(arena, spec, "vocab");
    t->words = tokenize && strcmp(tokenize, "words") == 0;
    t->length = shape_size(&model->input_shape);
    t->vocab_size = vocab ? strtoll(vocab, NULL, 10) : model->input_vocab;
    return true;
}

static uint64_t text_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a, as data_words.c */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The vocabulary as constant tables: blob (the words' bytes), offset and length per word index,
 * and slot[cap] (index + 1, 0 empty) probed linearly from hash & (cap - 1). Word k is id k + 2.
 * Interned as nnrt_text_encode does: a word given twice keeps its first index. */
typedef struct TextVocab {
    char *blob;
    int32_t *offset, *length, *slot;
    int64_t words, cap, bytes;
} TextVocab;

static void text_vocab_build(Arena *arena, const char *vocab, TextVocab *v) {
    int64_t lines = 1, bytes = (int64_t)strlen(vocab);
    for (const char *p = vocab; *p; p++) lines += *p == '\n';
    v->cap = 2;
    while (v->cap < 2 * lines) v->cap *= 2;
    v->blob = arena_alloc(arena, (size_t)bytes + 1);
    v->offset = ARENA_ARRAY(arena, int32_t, lines);
    v->length = ARENA_ARRAY(arena, int32_t, lines);
    v->slot = ARENA_ARRAY(arena, int32_t, v->cap);
    memset(v->slot, 0, sizeof *v->slot * (size_t)v->cap);
    v->words = v->bytes = 0;
    for (const char *p = vocab; *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        uint64_t h = text_hash(p, n) & (uint64_t)(v->cap - 1);
        bool seen = false;
        for (; v->slot[h]; h = (h + 1) & (uint64_t)(v->cap - 1)) {
            int32_t k = v->slot[h] - 1;
            if ((size_t)v->length[k] == n && memcmp(v->blob + v->offset[k], p, n) == 0) { seen = true; break; }
        }
        if (!seen) {
            memcpy(v->blob + v->bytes, p, n);
            v->offset[v->words] = (int32_t)v->bytes;
            v->length[v->words] = (int32_t)n;
            v->bytes += (int64_t)n;
            v->slot[h] = (int32_t)++v->words;
        }
        p += n + (end != NULL);
    }
}

/* An IR builder with the types the text functions use. */
typedef struct TextIr {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMValueRef fn;
    LLVMTypeRef i8, i32, i64, ptr;
} TextIr;

static LLVMValueRef ti_i64(TextIr *t, int64_t v) { return LLVMConstInt(t->i64, (unsigned long long)v, true); }
static LLVMValueRef ti_i32(TextIr *t, int64_t v) { return LLVMConstInt(t->i32, (unsigned long long)v, true); }
static LLVMValueRef ti_i8(TextIr *t, int v) { return LLVMConstInt(t->i8, (unsigned long long)v, false); }
static LLVMBasicBlockRef ti_block(TextIr *t, const char *name) { return LLVMAppendBasicBlockInContext(t->ctx, t->fn, name); }
static void ti_at(TextIr *t, LLVMBasicBlockRef block) { LLVMPositionBuilderAtEnd(t->b, block); }
static LLVMValueRef ti_gep(TextIr *t, LLVMTypeRef type, LLVMValueRef base, LLVMValueRef index) {
    return LLVMBuildInBoundsGEP2(t->b, type, base, &index, 1, "");
}
static LLVMValueRef ti_load(TextIr *t, LLVMTypeRef type, LLVMValueRef base, LLVMValueRef index) {
    return LLVMBuildLoad2(t->b, type, ti_gep(t, type, base, index), "");
}
/* x - lo <u count: lo <= x < lo + count for an i8 x */
static LLVMValueRef ti_in_range(TextIr *t, LLVMValueRef c, int lo, int count) {
    return LLVMBuildICmp(t->b, LLVMIntULT, LLVMBuildSub(t->b, c, ti_i8(t, lo), ""), ti_i8(t, count), "");
}

static LLVMValueRef ti_table(TextIr *t, const char *name, const void *bytes, size_t size, unsigned align) {
    LLVMValueRef init = LLVMConstStringInContext2(t->ctx, bytes, size, true);
    LLVMValueRef global = LLVMAddGlobal(t->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(global, init);
    LLVMSetGlobalConstant(global, true);
    LLVMSetLinkage(global, LLVMPrivateLinkage);
    LLVMSetAlignment(global, align);
    return global;
}

/* Little-endian bytes of int32 values (both targets are little-endian). */
static const char *le32_bytes(Arena *arena, const int32_t *v, int64_t count) {
    unsigned char *out = arena_alloc(arena, (size_t)(count > 0 ? count : 1) * 4);
    for (int64_t i = 0; i < count; i++)
        for (int k = 0; k < 4; k++) out[4 * i + k] = (unsigned char)((uint32_t)v[i] >> (8 * k));
    return (const char *)out;
}

/* void tokenize(const char *text, int32_t *ids): ids[0..T) of one text, as the runtime's CSV
 * reader makes them. Private. */
static LLVMValueRef text_tokenizer(TextIr *t, Arena *arena, const char *prefix, const TextSpec *spec, const TextVocab *v) {
    LLVMTypeRef params[] = {t->ptr, t->ptr};
    t->fn = LLVMAddFunction(t->mod, arena_printf(arena, "%s.tokenize", prefix), LLVMFunctionType(LLVMVoidTypeInContext(t->ctx), params, 2, false));
    LLVMSetLinkage(t->fn, LLVMPrivateLinkage);
    LLVMValueRef text = LLVMGetParam(t->fn, 0), ids = LLVMGetParam(t->fn, 1);
    LLVMValueRef T = ti_i64(t, spec->length);
    LLVMBasicBlockRef entry = ti_block(t, "entry");
    ti_at(t, entry);
    LLVMValueRef pos = LLVMBuildAlloca(t->b, t->i64, "pos");     /* next byte of text */
    LLVMValueRef count = LLVMBuildAlloca(t->b, t->i64, "count"); /* ids written */
    LLVMBuildStore(t->b, ti_i64(t, 0), pos);
    LLVMBuildStore(t->b, ti_i64(t, 0), count);
    LLVMBasicBlockRef pad = ti_block(t, "pad"), pad_loop = ti_block(t, "pad_loop"), pad_body = ti_block(t, "pad_body"),
                      done = ti_block(t, "done");
    if (!spec->words) {
        /* id = byte + 1 for the first T bytes */
        LLVMBasicBlockRef loop = ti_block(t, "byte"), body = ti_block(t, "byte_body"), store = ti_block(t, "byte_store");
        LLVMBuildBr(t->b, loop);
        ti_at(t, loop);
        LLVMValueRef i = LLVMBuildLoad2(t->b, t->i64, count, "i");
        LLVMBuildCondBr(t->b, LLVMBuildICmp(t->b, LLVMIntEQ, i, T, ""), done, body);
        ti_at(t, body);
        LLVMValueRef c = ti_load(t, t->i8, text, i);
        LLVMBuildCondBr(t->b, LLVMBuildICmp(t->b, LLVMIntEQ, c, ti_i8(t, 0), ""), pad, store);
        ti_at(t, store);
        LLVMBuildStore(t->b, LLVMBuildAdd(t->b, LLVMBuildZExt(t->b, c, t->i32, ""), ti_i32(t, 1), ""), ti_gep(t, t->i32, ids, i));
        LLVMBuildStore(t->b, LLVMBuildAdd(t->b, i, ti_i64(t, 1), ""), count);
        LLVMBuildBr(t->b, loop);
    } else {
        /* words: maximal runs of [A-Za-z0-9] and bytes >= 0x80, ASCII lower-cased, the first 255
         * bytes kept; looked up in the vocabulary (1: unknown); the first T words */
        LLVMValueRef word = LLVMBuildAlloca(t->b, LLVMArrayType2(t->i8, TEXT_WORD_MAX + 1), "word");
        LLVMValueRef n = LLVMBuildAlloca(t->b, t->i64, "n");
        LLVMValueRef hash = LLVMBuildAlloca(t->b, t->i64, "hash");
        LLVMValueRef probe = LLVMBuildAlloca(t->b, t->i64, "probe");
        LLVMValueRef id = LLVMBuildAlloca(t->b, t->i32, "id");
        LLVMValueRef blob = ti_table(t, arena_printf(arena, "%s.vocab.bytes", prefix), v->blob, (size_t)v->bytes, 1);
        LLVMValueRef offset = ti_table(t, arena_printf(arena, "%s.vocab.offset", prefix), le32_bytes(arena, v->offset, v->words),
                                       (size_t)v->words * 4, 4);
        LLVMValueRef length = ti_table(t, arena_printf(arena, "%s.vocab.length", prefix), le32_bytes(arena, v->length, v->words),
                                       (size_t)v->words * 4, 4);
        LLVMValueRef slot = ti_table(t, arena_printf(arena, "%s.vocab.slot", prefix), le32_bytes(arena, v->slot, v->cap),
                                     (size_t)v->cap * 4, 4);
        LLVMTypeRef memcmp_params[] = {t->ptr, t->ptr, t->i64};
        LLVMTypeRef memcmp_type = LLVMFunctionType(t->i32, memcmp_params, 3, false);
        LLVMValueRef memcmp_fn = LLVMGetNamedFunction(t->mod, "memcmp");
        if (!memcmp_fn) memcmp_fn = LLVMAddFunction(t->mod, "memcmp", memcmp_type);

        LLVMBasicBlockRef scan = ti_block(t, "scan"), skip = ti_block(t, "skip"), start = ti_block(t, "word_start"),
                          wloop = ti_block(t, "word_byte"), wbody = ti_block(t, "word_body"), keep = ti_block(t, "word_keep"),
                          next = ti_block(t, "word_next"), wend = ti_block(t, "word_end"), look = ti_block(t, "probe"),
                          cand = ti_block(t, "candidate"), compare = ti_block(t, "compare"), miss = ti_block(t, "probe_next"),
                          found = ti_block(t, "found"), unknown = ti_block(t, "unknown"), emit = ti_block(t, "emit");
        LLVMBuildBr(t->b, scan);
        ti_at(t, scan); /* between words */
        LLVMValueRef p = LLVMBuildLoad2(t->b, t->i64, pos, "");
        LLVMValueRef c = ti_load(t, t->i8, text, p);
        LLVMValueRef is_word = LLVMBuildOr(t->b, LLVMBuildOr(t->b, ti_in_range(t, c, 'a', 26), ti_in_range(t, c, 'A', 26), ""),
                                           LLVMBuildOr(t->b, ti_in_range(t, c, '0', 10), LLVMBuildICmp(t->b, LLVMIntUGE, c, ti_i8(t, 0x80), ""), ""), "");
        LLVMBasicBlockRef not_word = ti_block(t, "not_word");
        LLVMBuildCondBr(t->b, is_word, start, not_word);
        ti_at(t, not_word);
        LLVMBuildCondBr(t->b, LLVMBuildICmp(t->b, LLVMIntEQ, c, ti_i8(t, 0), ""), pad, skip);
        ti_at(t, skip);
        LLVMBuildStore(t->b, LLVMBuildAdd(t->b, p, ti_i64(t, 1), ""), pos);
        LLVMBuildBr(t->b, scan);

        ti_at(t, start);
        LLVMBuildStore(t->b, ti_i64(t, 0), n);
        LLVMBuildStore(t->b, ti_i64(t, (int64_t)1469598103934665603ull), hash);
        LLVMBuildBr(t->b, wloop);
        ti_at(t, wloop); /* inside a word: its next byte */
        p = LLVMBuildLoad2(t->b, t->i64, pos, "");
        c = ti_load(t, t->i8, text, p);
        is_word = LLVMBuildOr(t->b, LLVMBuildOr(t->b, ti_in_range(t, c, 'a', 26), ti_in_range(t, c, 'A', 26), ""),
                              LLVMBuildOr(t->b, ti_in_range(t, c, '0', 10), LLVMBuildICmp(t->b, LLVMIntUGE, c, ti_i8(t, 0x80), ""), ""), "");
        LLVMBuildCondBr(t->b, is_word, wbody, wend);
        ti_at(t, wbody);
        LLVMValueRef have = LLVMBuildLoad2(t->b, t->i64, n, "");
        LLVMBuildCondBr(t->b, LLVMBuildICmp(t->b, LLVMIntULT, have, ti_i64(t, TEXT_WORD_MAX), ""), keep, next);
        ti_at(t, keep);
        LLVMValueRef lower = LLVMBuildSelect(t->b, ti_in_range(t, c, 'A', 26), LLVMBuildAdd(t->b, c, ti_i8(t, 'a' - 'A'), ""), c, "");
        LLVMBuildStore(t->b, lower, ti_gep(t, t->i8, word, have));
        LLVMBuildStore(t->b, LLVMBuildAdd(t->b, have, ti_i64(t, 1), ""), n);
        LLVMValueRef h = LLVMBuildLoad2(t->b, t->i64, hash, "");
        h = LLVMBuildMul(t->b, LLVMBuildXor(t->b, h, LLVMBuildZExt(t->b, lower, t->i64, ""), ""), ti_i64(t, (int64_t)1099511628211ull), "");
        LLVMBuildStore(t->b, h, hash);
        LLVMBuildBr(t->b, next);
        ti_at(t, next);
        LLVMBuildStore(t->b, LLVMBuildAdd(t->b, p, ti_i64(t, 1), ""), pos);
        LLVMBuildBr(t->b, wloop);

        ti_at(t, wend); /* the word is complete: probe the table */
        LLVMValueRef mask = ti_i64(t, v->cap - 1);
        LLVMBuildStore(t->b, LLVMBuildAnd(t->b, LLVMBuildLoad2(t->b, t->i64, hash, ""), mask, ""), probe);
        LLVMBuildBr(t->b, look);
        ti_at(t, look);
        LLVMValueRef j = LLVMBuildLoad2(t->b, t->i64, probe, "");
        LLVMValueRef s = ti_load(t, t->i32, slot, j);
        LLVMBuildCondBr(t->b, LLVMBuildICmp(t->b, LLVMIntEQ, s, ti_i32(t, 0), ""), unknown, cand);
        ti_at(t, cand);
        LLVMValueRef k = LLVMBuildZExt(t->b, LLVMBuildSub(t->b, s, ti_i32(t, 1), ""), t->i64, "");
        LLVMValueRef wlen = LLVMBuildZExt(t->b, ti_load(t, t->i32, length, k), t->i64, "");
        LLVMValueRef wn = LLVMBuildLoad2(t->b, t->i64, n, "");
        LLVMBuildCondBr(t->b, LLVMBuildICmp(t->b, LLVMIntEQ, wlen, wn, ""), compare, miss);
        ti_at(t, compare);
        LLVMValueRef at = ti_gep(t, t->i8, blob, LLVMBuildZExt(t->b, ti_load(t, t->i32, offset, k), t->i64, ""));
        LLVMValueRef args[] = {at, word, wn};
        LLVMValueRef diff = LLVMBuildCall2(t->b, memcmp_type, memcmp_fn, args, 3, "");
        LLVMBuildCondBr(t->b, LLVMBuildICmp(t->b, LLVMIntEQ, diff, ti_i32(t, 0), ""), found, miss);
        ti_at(t, miss);
        LLVMBuildStore(t->b, LLVMBuildAnd(t->b, LLVMBuildAdd(t->b, j, ti_i64(t, 1), ""), mask, ""), probe);
        LLVMBuildBr(t->b, look);
        ti_at(t, found);
        LLVMBuildStore(t->b, LLVMBuildAdd(t->b, s, ti_i32(t, 1), ""), id); /* index k + 1 is id k + 2 */
        LLVMBuildBr(t->b, emit);
        ti_at(t, unknown);
        LLVMBuildStore(t->b, ti_i32(t, 1), id);
        LLVMBuildBr(t->b, emit);
        ti_at(t, emit);
        LLVMValueRef i = LLVMBuildLoad2(t->b, t->i64, count, "");
        LLVMBuildStore(t->b, LLVMBuildLoad2(t->b, t->i32, id, ""), ti_gep(t, t->i32, ids, i));
        LLVMValueRef i1 = LLVMBuildAdd(t->b, i, ti_i64(t, 1), "");
        LLVMBuildStore(t->b, i1, count);
        /* T words are all the input holds: the rest of the text does not matter */
        LLVMBuildCondBr(t->b, LLVMBuildICmp(t->b, LLVMIntEQ, i1, T, ""), done, scan);
    }
    ti_at(t, pad); /* ids[count..T) = 0 */
    LLVMBuildBr(t->b, pad_loop);
    ti_at(t, pad_loop);
    LLVMValueRef i = LLVMBuildLoad2(t->b, t->i64, count, "");
    LLVMBuildCondBr(t->b, LLVMBuildICmp(t->b, LLVMIntEQ, i, T, ""), done, pad_body);
    ti_at(t, pad_body);
    LLVMBuildStore(t->b, ti_i32(t, 0), ti_gep(t, t->i32, ids, i));
    LLVMBuildStore(t->b, LLVMBuildAdd(t->b, i, ti_i64(t, 1), ""), count);
    LLVMBuildBr(t->b, pad_loop);
    ti_at(t, done);
    LLVMBuildRetVoid(t->b);
    return t->fn;
}

/* Bytes of the ids of min(n, TEXT_CHUNK) examples (n >= 0), a multiple of 64. */
static LLVMValueRef text_ids_bytes(TextIr *t, LLVMValueRef chunk64, const TextSpec *spec) {
    LLVMValueRef bytes = LLVMBuildMul(t->b, chunk64, ti_i64(t, spec->length * 4), "");
    return LLVMBuildAnd(t->b, LLVMBuildAdd(t->b, bytes, ti_i64(t, 63), ""), ti_i64(t, ~(int64_t)63), "");
}

static LLVMValueRef text_min(TextIr *t, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(t->b, LLVMBuildICmp(t->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static void text_ret_if(TextIr *t, LLVMValueRef condition, int code) {
    LLVMBasicBlockRef fail = ti_block(t, "fail"), ok = ti_block(t, "ok");
    LLVMBuildCondBr(t->b, condition, fail, ok);
    ti_at(t, fail);
    LLVMBuildRet(t->b, ti_i32(t, code));
    ti_at(t, ok);
}

/* Adds PREFIX_text_workspace_size and PREFIX_predict_text to the library's module. */
static void text_entry_points(LLVMModuleRef module, Arena *arena, const char *prefix, const TextSpec *spec, const TextVocab *v,
                              int64_t output_size) {
    TextIr t = {.ctx = LLVMGetModuleContext(module), .mod = module};
    t.b = LLVMCreateBuilderInContext(t.ctx);
    t.i8 = LLVMInt8TypeInContext(t.ctx);
    t.i32 = LLVMInt32TypeInContext(t.ctx);
    t.i64 = LLVMInt64TypeInContext(t.ctx);
    t.ptr = LLVMPointerTypeInContext(t.ctx, 0);
    LLVMValueRef tokenize = text_tokenizer(&t, arena, prefix, spec, v);
    LLVMValueRef ws_size = LLVMGetNamedFunction(module, arena_printf(arena, "%s_workspace_size", prefix));
    LLVMValueRef predict = LLVMGetNamedFunction(module, arena_printf(arena, "%s_predict", prefix));

    /* size_t PREFIX_text_workspace_size(int n): 64 bytes of alignment slack, the ids of
     * min(n, TEXT_CHUNK) examples, PREFIX_predict's workspace for as many. 0 for n < 0. */
    t.fn = LLVMAddFunction(module, arena_printf(arena, "%s_text_workspace_size", prefix), LLVMFunctionType(t.i64, &t.i32, 1, false));
    ti_at(&t, ti_block(&t, "entry"));
    LLVMValueRef n = LLVMGetParam(t.fn, 0);
    LLVMValueRef negative = LLVMBuildICmp(t.b, LLVMIntSLT, n, ti_i32(&t, 0), "");
    LLVMValueRef chunk = text_min(&t, LLVMBuildSelect(t.b, negative, ti_i32(&t, 0), n, ""), ti_i32(&t, TEXT_CHUNK));
    LLVMValueRef inner = LLVMBuildCall2(t.b, LLVMGlobalGetValueType(ws_size), ws_size, &chunk, 1, "");
    LLVMValueRef total = LLVMBuildAdd(t.b, LLVMBuildAdd(t.b, inner, text_ids_bytes(&t, LLVMBuildSExt(t.b, chunk, t.i64, ""), spec), ""),
                                      ti_i64(&t, 64), "");
    LLVMBuildRet(t.b, LLVMBuildSelect(t.b, negative, ti_i64(&t, 0), total, ""));

    /* int PREFIX_predict_text(const char *const *texts, int n, float *output, void *workspace) */
    LLVMTypeRef params[] = {t.ptr, t.i32, t.ptr, t.ptr};
    t.fn = LLVMAddFunction(module, arena_printf(arena, "%s_predict_text", prefix), LLVMFunctionType(t.i32, params, 4, false));
    ti_at(&t, ti_block(&t, "entry"));
    LLVMValueRef texts = LLVMGetParam(t.fn, 0), output = LLVMGetParam(t.fn, 2), ws = LLVMGetParam(t.fn, 3);
    n = LLVMGetParam(t.fn, 1);
    LLVMValueRef e = LLVMBuildAlloca(t.b, t.i64, "e");
    LLVMValueRef start = LLVMBuildAlloca(t.b, t.i64, "start");
    text_ret_if(&t, LLVMBuildICmp(t.b, LLVMIntSLT, n, ti_i32(&t, 0), ""), 1);
    text_ret_if(&t, LLVMBuildICmp(t.b, LLVMIntEQ, n, ti_i32(&t, 0), ""), 0);
    text_ret_if(&t, LLVMBuildOr(t.b, LLVMBuildIsNull(t.b, texts, ""), LLVMBuildOr(t.b, LLVMBuildIsNull(t.b, output, ""),
                                                                                  LLVMBuildIsNull(t.b, ws, ""), ""), ""), 1);
    LLVMValueRef n64 = LLVMBuildSExt(t.b, n, t.i64, "");
    /* every text present before any output is written */
    LLVMBuildStore(t.b, ti_i64(&t, 0), e);
    LLVMBasicBlockRef check = ti_block(&t, "check"), check_body = ti_block(&t, "check_body"), checked = ti_block(&t, "checked");
    LLVMBuildBr(t.b, check);
    ti_at(&t, check);
    LLVMValueRef ei = LLVMBuildLoad2(t.b, t.i64, e, "");
    LLVMBuildCondBr(t.b, LLVMBuildICmp(t.b, LLVMIntEQ, ei, n64, ""), checked, check_body);
    ti_at(&t, check_body);
    text_ret_if(&t, LLVMBuildIsNull(t.b, ti_load(&t, t.ptr, texts, ei), ""), 1);
    LLVMBuildStore(t.b, LLVMBuildAdd(t.b, ei, ti_i64(&t, 1), ""), e);
    LLVMBuildBr(t.b, check);
    ti_at(&t, checked);
    /* the workspace rounded up to 64 bytes: [ids of a chunk | PREFIX_predict's workspace] */
    LLVMValueRef address = LLVMBuildPtrToInt(t.b, ws, t.i64, "");
    LLVMValueRef aligned = LLVMBuildAnd(t.b, LLVMBuildAdd(t.b, address, ti_i64(&t, 63), ""), ti_i64(&t, ~(int64_t)63), "");
    LLVMValueRef ids = ti_gep(&t, t.i8, ws, LLVMBuildSub(t.b, aligned, address, ""));
    LLVMValueRef rest = ti_gep(&t, t.i8, ids, text_ids_bytes(&t, text_min(&t, n64, ti_i64(&t, TEXT_CHUNK)), spec));
    LLVMBuildStore(t.b, ti_i64(&t, 0), start);
    LLVMBasicBlockRef piece = ti_block(&t, "chunk"), piece_body = ti_block(&t, "chunk_body"), tok = ti_block(&t, "text"),
                      tok_body = ti_block(&t, "text_body"), run = ti_block(&t, "predict"), finish = ti_block(&t, "finish");
    LLVMBuildBr(t.b, piece);
    ti_at(&t, piece);
    LLVMValueRef s0 = LLVMBuildLoad2(t.b, t.i64, start, "");
    LLVMBuildCondBr(t.b, LLVMBuildICmp(t.b, LLVMIntSGE, s0, n64, ""), finish, piece_body);
    ti_at(&t, piece_body);
    LLVMBuildStore(t.b, ti_i64(&t, 0), e);
    LLVMBuildBr(t.b, tok);
    ti_at(&t, tok);
    LLVMValueRef nb = text_min(&t, ti_i64(&t, TEXT_CHUNK), LLVMBuildSub(t.b, n64, s0, ""));
    ei = LLVMBuildLoad2(t.b, t.i64, e, "");
    LLVMBuildCondBr(t.b, LLVMBuildICmp(t.b, LLVMIntEQ, ei, nb, ""), run, tok_body);
    ti_at(&t, tok_body);
    LLVMValueRef targs[] = {ti_load(&t, t.ptr, texts, LLVMBuildAdd(t.b, s0, ei, "")),
                            ti_gep(&t, t.i32, ids, LLVMBuildMul(t.b, ei, ti_i64(&t, spec->length), ""))};
    LLVMBuildCall2(t.b, LLVMGlobalGetValueType(tokenize), tokenize, targs, 2, "");
    LLVMBuildStore(t.b, LLVMBuildAdd(t.b, ei, ti_i64(&t, 1), ""), e);
    LLVMBuildBr(t.b, tok);
    ti_at(&t, run);
    LLVMValueRef pargs[] = {ids, LLVMBuildTrunc(t.b, nb, t.i32, ""),
                            ti_gep(&t, LLVMFloatTypeInContext(t.ctx), output, LLVMBuildMul(t.b, s0, ti_i64(&t, output_size), "")), rest};
    LLVMValueRef rc = LLVMBuildCall2(t.b, LLVMGlobalGetValueType(predict), predict, pargs, 4, "");
    text_ret_if(&t, LLVMBuildICmp(t.b, LLVMIntNE, rc, ti_i32(&t, 0), ""), 2); /* cannot happen: every id is in range */
    LLVMBuildStore(t.b, LLVMBuildAdd(t.b, s0, nb, ""), start);
    LLVMBuildBr(t.b, piece);
    ti_at(&t, finish);
    LLVMBuildRet(t.b, ti_i32(&t, 0));
    LLVMDisposeBuilder(t.b);
}

static const char *shape_text(Arena *arena, const Shape *s) {
    char *out = arena_strdup(arena, "[");
    for (int i = 0; i < s->rank; i++) out = arena_printf(arena, "%s%s%lld", out, i ? ", " : "", (long long)s->dims[i]);
    return arena_printf(arena, "%s]", out);
}

/* The header: sizes, the input type, the two functions, and comments saying what the model is,
 * what its input and output hold and how the library treats them. */
static const char *lib_header(Arena *arena, const Model *model, const Plan *plan, const EmitLibOptions *o, const char *prefix,
                              const Checkpoint *ckpt, double scale, const char *text_part) {
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
        "%s"
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
        tokens ? "int32_t" : "float", prefix, prefix, prefix, prefix, prefix, prefix, prefix, prefix, text_part);
    (void)plan;
}

/* The header's declarations of the raw-text entry point, with how it tokenizes. */
static const char *text_header(Arena *arena, const Model *model, const char *prefix, const TextSpec *spec, const TextVocab *v) {
    const char *column = spec_arg(arena, model->data, "text");
    const char *how =
        spec->words
            ? arena_printf(arena,
                  " * tokenize=\"words\": a word is a maximal run of ASCII letters, ASCII digits and bytes >= 0x80 (a UTF-8\n"
                  " * word, valid or not, stays one word), ASCII letters lower-cased, cut to its first\n"
                  " * %d bytes; every other byte separates words. Word k of the training vocabulary (%lld words,\n"
                  " * most frequent first, stored in the checkpoint and embedded read-only here) has id k + 2, a\n"
                  " * word not in it id 1; the first %lld words are the input, padded with id 0.\n",
                  TEXT_WORD_MAX, (long long)v->words, (long long)spec->length)
            : arena_printf(arena,
                  " * tokenize=\"bytes\": byte b of the text is id b + 1, the first %lld bytes, padded with id 0.\n",
                  (long long)spec->length);
    return arena_printf(arena,
        "\n"
        "/* Raw text, as training read it: csv(..., text=\"%s\", tokenize=\"%s\"%s). texts[e] is example e's\n"
        " * text, NUL-terminated, as it stands in the data file's column `%s` (the cell after CSV unquoting:\n"
        " * these are the outputs `./%s predict` prints for a CSV holding these texts). The library\n"
        " * turns each into %s_INPUT_SIZE token ids exactly as the training runtime does and runs\n"
        " * %s_predict on them:\n"
        "%s"
        " * workspace: %s_text_workspace_size(n) bytes (any alignment; it holds the token ids of up to %d\n"
        " * texts at a time and %s_predict's workspace). Returns %s_OK, or %s_EINVAL (n < 0, or a NULL\n"
        " * texts, texts[e], output or workspace with n > 0; then nothing is written). Same threading and\n"
        " * allocation rules as %s_predict. */\n"
        "size_t %s_text_workspace_size(int n);\n"
        "int %s_predict_text(const char *const *texts, int n, float *output, void *workspace);\n",
        column, spec->words ? "words" : "bytes",
        spec->words ? arena_printf(arena, ", vocab=%lld", (long long)spec->vocab_size) : "", column, model->name, prefix, prefix,
        how, prefix, TEXT_CHUNK, prefix, prefix, prefix, prefix, prefix, prefix);
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
    TextSpec text;
    TextVocab vocab = {0};
    bool has_text = text_spec(arena, model, &text);
    if (has_text && text.words) {
        /* as eval and predict: the words data needs the training vocabulary */
        if (!ckpt.vocab) {
            fprintf(stderr, "nnc: error: checkpoint '%s' holds no vocabulary, but model '%s' reads csv(..., tokenize=\"words\") "
                            "text\nnc: note: the library's text entry point needs the words training saw: save the checkpoint "
                            "with ./%s train --save FILE\n", o->weights, model->name, model->name);
            return 1;
        }
        text_vocab_build(arena, ckpt.vocab, &vocab);
        if (vocab.words + 2 > text.vocab_size) {
            fprintf(stderr, "nnc: error: checkpoint '%s': the vocabulary has %lld words, but csv(vocab=%lld) has room for %lld "
                            "(ids 0 and 1 are padding and unknown); was the checkpoint trained with another vocab?\n",
                    o->weights, (long long)vocab.words, (long long)text.vocab_size, (long long)text.vocab_size - 2);
            return 1;
        }
    }
    CgLibrary lib = {.prefix = prefix, .params = ckpt.params, .mean = ckpt.mean, .std = ckpt.std, .scale = scale};

    LLVMContextRef context = LLVMContextCreate();
    LLVMModuleRef module = cg_build_library(context, model, plan, info, &lib);
    if (module && has_text) text_entry_points(module, arena, prefix, &text, &vocab, graph_node(model->graph, model->graph->output)->size);
    LLVMMemoryBufferRef object = NULL;
    int status = module ? target_emit_object(module, &o->target, &object) : 2;
    if (module) LLVMDisposeModule(module);
    LLVMContextDispose(context);
    if (status) return status;

    const char *symbols[] = {arena_printf(arena, "%s_predict", prefix), arena_printf(arena, "%s_workspace_size", prefix),
                             arena_printf(arena, "%s_predict_text", prefix), arena_printf(arena, "%s_text_workspace_size", prefix)};
    size_t ar_size = 0;
    const char *ar = ar_build(arena, "lib.o", LLVMGetBufferStart(object), LLVMGetBufferSize(object), symbols, has_text ? 4 : 2,
                              &ar_size);
    LLVMDisposeMemoryBuffer(object);
    const char *header =
        lib_header(arena, model, plan, o, prefix, &ckpt, scale, has_text ? text_header(arena, model, prefix, &text, &vocab) : "");
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
