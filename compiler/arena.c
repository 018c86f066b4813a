/* arena.c — a chain of large blocks; allocation is a pointer bump. */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Block {
    struct Block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} Block;

struct Arena {
    Block *head;
};

enum { ARENA_BLOCK_SIZE = 1 << 20 };

static void *arena_checked_malloc(size_t size) {
    void *p = malloc(size);
    if (!p) {
        /* Out of memory inside the compiler is an internal failure (exit status 2). */
        fprintf(stderr, "nnc: internal error: out of memory (asked for %zu bytes)\n", size);
        exit(2);
    }
    return p;
}

Arena *arena_new(void) {
    Arena *arena = arena_checked_malloc(sizeof *arena);
    arena->head = NULL;
    return arena;
}

void arena_free(Arena *arena) {
    if (!arena) return;
    for (Block *b = arena->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(arena);
}

void *arena_alloc(Arena *arena, size_t size) {
    size = (size + 15) & ~(size_t)15;
    Block *b = arena->head;
    if (!b || b->size - b->used < size) {
        size_t block_size = size > ARENA_BLOCK_SIZE ? size : ARENA_BLOCK_SIZE;
        b = arena_checked_malloc(sizeof(Block) + block_size);
        b->size = block_size;
        b->used = 0;
        b->next = arena->head;
        arena->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(Arena *arena, const char *s, size_t n) {
    char *p = arena_alloc(arena, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(Arena *arena, const char *s) { return arena_strndup(arena, s, strlen(s)); }

char *arena_printf(Arena *arena, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(arena, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void ptrvec_push(Arena *arena, PtrVec *vec, void *item) {
    if (vec->len == vec->cap) {
        int cap = vec->cap ? vec->cap * 2 : 8;
        void **items = ARENA_ARRAY(arena, void *, cap);
        if (vec->len) memcpy(items, vec->items, sizeof(void *) * (size_t)vec->len);
        vec->items = items;
        vec->cap = cap;
    }
    vec->items[vec->len++] = item;
}
