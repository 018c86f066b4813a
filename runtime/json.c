/* json.c — a strict JSON reader (for safetensors headers) and a growable text buffer (for writing
 * headers and log lines).
 *
 *   value  = object | array | string | number | "true" | "false" | "null"
 *   object = "{" [ string ":" value { "," string ":" value } ] "}"
 *   array  = "[" [ value { "," value } ] "]"
 *
 * The input is untrusted (a checkpoint file), so nesting depth is bounded, every error carries the
 * byte offset, and numbers follow the JSON grammar exactly. The tree is heap-allocated and freed
 * with nnrt_json_free.
 */
#include "nnrt_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32

typedef struct JP {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errcap;
    int failed;
} JP;

static void jfail(JP *p, const char *msg) {
    if (p->failed) return;
    p->failed = 1;
    snprintf(p->err, p->errcap, "byte %zu of the JSON header: %s", p->pos, msg);
}

static void jws(JP *p) {
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos]) p->pos++;
}

static int jpeek(JP *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

static int hex4(JP *p, unsigned *out) {
    if (p->len - p->pos < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p->s[p->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static char *jstring(JP *p) {
    p->pos++; /* the opening quote */
    /* size the buffer by the raw span up to the closing quote: escapes only shrink */
    size_t end = p->pos;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    char *out = malloc((end < p->len ? end : p->len) - p->pos + 1);
    size_t n = 0;
    if (!out) {
        jfail(p, "out of memory");
        return NULL;
    }
    for (;;) {
        if (p->pos >= p->len) {
            jfail(p, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (c == '"') {
            out[n] = 0;
            return out;
        }
        if (c < 0x20) {
            p->pos--;
            jfail(p, "control character in string");
            break;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        int e = jpeek(p);
        p->pos++;
        const char *simple = strchr("\"\\/bfnrt", e > 0 ? e : 'x');
        if (e > 0 && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            out[n++] = map[simple - "\"\\/bfnrt"];
            continue;
        }
        if (e != 'u') {
            jfail(p, "bad escape in string");
            break;
        }
        unsigned u, lo;
        if (hex4(p, &u) != 0) {
            jfail(p, "bad \\u escape");
            break;
        }
        if (u >= 0xD800 && u < 0xDC00) { /* a surrogate pair */
            if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                (p->pos += 2, hex4(p, &lo) != 0) || lo < 0xDC00 || lo >= 0xE000) {
                jfail(p, "unpaired surrogate in \\u escape");
                break;
            }
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        } else if (u >= 0xDC80 && u < 0xDD00) { /* a byte that is not UTF-8 (nnrt_buf_json_str) */
            out[n++] = (char)(u & 0xFF);
            continue;
        } else if (u >= 0xDC00 && u < 0xE000) {
            jfail(p, "unpaired surrogate in \\u escape");
            break;
        }
        /* UTF-8 never takes more bytes than the 6-byte escape it replaces */
        if (u < 0x80) out[n++] = (char)u;
        else if (u < 0x800) {
            out[n++] = (char)(0xC0 | (u >> 6));
            out[n++] = (char)(0x80 | (u & 0x3F));
        } else if (u < 0x10000) {
            out[n++] = (char)(0xE0 | (u >> 12));
            out[n++] = (char)(0x80 | ((u >> 6) & 0x3F));
            out[n++] = (char)(0x80 | (u & 0x3F));
        } else {
            out[n++] = (char)(0xF0 | (u >> 18));
            out[n++] = (char)(0x80 | ((u >> 12) & 0x3F));
            out[n++] = (char)(0x80 | ((u >> 6) & 0x3F));
            out[n++] = (char)(0x80 | (u & 0x3F));
        }
    }
    free(out);
    return NULL;
}

/* number = [ "-" ] int [ frac ] [ exp ] */
static void jnumber(JP *p, NnrtJson *j) {
    size_t start = p->pos;
    int is_int = 1;
    if (jpeek(p) == '-') p->pos++;
    if (jpeek(p) == '0') p->pos++;
    else if (jpeek(p) >= '1' && jpeek(p) <= '9')
        while (isdigit(jpeek(p))) p->pos++;
    else {
        jfail(p, "malformed number");
        return;
    }
    if (jpeek(p) == '.') {
        is_int = 0;
        p->pos++;
        if (!isdigit(jpeek(p))) {
            jfail(p, "malformed number");
            return;
        }
        while (isdigit(jpeek(p))) p->pos++;
    }
    if (jpeek(p) == 'e' || jpeek(p) == 'E') {
        is_int = 0;
        p->pos++;
        if (jpeek(p) == '+' || jpeek(p) == '-') p->pos++;
        if (!isdigit(jpeek(p))) {
            jfail(p, "malformed number");
            return;
        }
        while (isdigit(jpeek(p))) p->pos++;
    }
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf) {
        jfail(p, "number too long");
        return;
    }
    memcpy(buf, p->s + start, n);
    buf[n] = 0;
    j->kind = NNRT_JSON_NUM;
    j->num = strtod(buf, NULL);
    if (is_int) {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        j->is_int = errno == 0;
        j->i = v;
    }
}

static void jvalue(JP *p, NnrtJson *j, int depth);

static int jpush(JP *p, NnrtJson *j, int *cap) {
    if (j->nkids == *cap) {
        int ncap = *cap ? *cap * 2 : 8;
        NnrtJson *k = realloc(j->kids, sizeof(NnrtJson) * (size_t)ncap);
        if (!k) {
            jfail(p, "out of memory");
            return -1;
        }
        j->kids = k;
        *cap = ncap;
    }
    memset(&j->kids[j->nkids++], 0, sizeof(NnrtJson));
    return 0;
}

static void jcontainer(JP *p, NnrtJson *j, int depth, int is_obj) {
    char close = is_obj ? '}' : ']';
    int cap = 0;
    j->kind = is_obj ? NNRT_JSON_OBJ : NNRT_JSON_ARR;
    p->pos++;
    jws(p);
    if (jpeek(p) == close) {
        p->pos++;
        return;
    }
    for (;;) {
        if (jpush(p, j, &cap) != 0) return;
        NnrtJson *kid = &j->kids[j->nkids - 1];
        char *key = NULL;
        if (is_obj) {
            jws(p);
            if (jpeek(p) != '"') {
                jfail(p, "expected a string key");
                return;
            }
            key = jstring(p);
            if (!key) return;
            jws(p);
            if (jpeek(p) != ':') {
                free(key);
                jfail(p, "expected ':'");
                return;
            }
            p->pos++;
        }
        kid->key = key;
        jvalue(p, kid, depth + 1);
        if (p->failed) return;
        jws(p);
        if (jpeek(p) == ',') {
            p->pos++;
            jws(p);
            continue;
        }
        if (jpeek(p) == close) {
            p->pos++;
            return;
        }
        jfail(p, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        return;
    }
}

static void jvalue(JP *p, NnrtJson *j, int depth) {
    if (depth > JSON_MAX_DEPTH) {
        jfail(p, "nested too deeply");
        return;
    }
    jws(p);
    int c = jpeek(p);
    if (c == '{' || c == '[') jcontainer(p, j, depth, c == '{');
    else if (c == '"') {
        j->kind = NNRT_JSON_STR;
        j->str = jstring(p);
    } else if (c == '-' || isdigit(c)) jnumber(p, j);
    else if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "true", 4) == 0) {
        j->kind = NNRT_JSON_BOOL;
        j->num = 1;
        p->pos += 4;
    } else if (p->len - p->pos >= 5 && memcmp(p->s + p->pos, "false", 5) == 0) {
        j->kind = NNRT_JSON_BOOL;
        p->pos += 5;
    } else if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "null", 4) == 0) {
        j->kind = NNRT_JSON_NULL;
        p->pos += 4;
    } else jfail(p, c < 0 ? "unexpected end" : "expected a value");
}

int nnrt_json_parse(const char *text, size_t len, NnrtJson *out, char *err, size_t errcap) {
    JP p = {text, len, 0, err, errcap, 0};
    memset(out, 0, sizeof *out);
    jvalue(&p, out, 0);
    jws(&p);
    if (!p.failed && p.pos != len) jfail(&p, "unexpected text after the JSON value");
    if (p.failed) {
        nnrt_json_free(out);
        return -1;
    }
    return 0;
}

void nnrt_json_free(NnrtJson *j) {
    for (int i = 0; i < j->nkids; i++) nnrt_json_free(&j->kids[i]);
    free(j->kids);
    free(j->str);
    free(j->key);
    memset(j, 0, sizeof *j);
}

const NnrtJson *nnrt_json_get(const NnrtJson *obj, const char *key) {
    if (obj->kind != NNRT_JSON_OBJ) return NULL;
    for (int i = 0; i < obj->nkids; i++)
        if (obj->kids[i].key && strcmp(obj->kids[i].key, key) == 0) return &obj->kids[i];
    return NULL;
}

/* ---- NnrtBuf ---------------------------------------------------------------------------------- */

static int buf_reserve(NnrtBuf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void nnrt_buf_puts(NnrtBuf *b, const char *s) {
    size_t n = strlen(s);
    if (buf_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

void nnrt_buf_printf(NnrtBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* The length (1-4) of the well-formed UTF-8 sequence that starts at c, or 0 where none does
 * (a stray continuation byte, an overlong form, a surrogate, past U+10FFFF, cut short). */
static int utf8_sequence(const unsigned char *c) {
    if (c[0] < 0x80) return 1;
    int n = c[0] >= 0xF5 ? 0 : c[0] >= 0xF0 ? 4 : c[0] >= 0xE0 ? 3 : c[0] >= 0xC2 ? 2 : 0;
    for (int i = 1; i < n; i++) /* a NUL fails the test, so nothing past the string is read */
        if ((c[i] & 0xC0) != 0x80) return 0;
    if ((c[0] == 0xE0 && c[1] < 0xA0) || (c[0] == 0xED && c[1] >= 0xA0) || (c[0] == 0xF0 && c[1] < 0x90) ||
        (c[0] == 0xF4 && c[1] >= 0x90))
        return 0;
    return n;
}

/* Strings are bytes (CSV labels and words need not be UTF-8) but a JSON text must be UTF-8: a byte
 * that starts no well-formed sequence is written as the lone surrogate escape \udcXX (PEP 383's
 * surrogateescape, so Python reads it back with errors="surrogateescape"), which jstring turns
 * back into the byte. */
void nnrt_buf_json_str(NnrtBuf *b, const char *s) {
    nnrt_buf_puts(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        int n = utf8_sequence(c);
        if (*c == '"' || *c == '\\') nnrt_buf_printf(b, "\\%c", *c);
        else if (*c < 0x20) nnrt_buf_printf(b, "\\u%04x", *c);
        else if (n == 0) nnrt_buf_printf(b, "\\udc%02x", *c);
        else {
            char seq[5] = {0};
            memcpy(seq, c, (size_t)n);
            nnrt_buf_puts(b, seq);
        }
        c += n ? n : 1;
    }
    nnrt_buf_puts(b, "\"");
}

void nnrt_buf_free(NnrtBuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
