/* arena.h — bump allocation for everything one compilation creates.
 * Nodes, strings and tables are never freed one by one: the whole arena goes at exit. */
#ifndef NNC_ARENA_H
#define NNC_ARENA_H

#include <stddef.h>

typedef struct Arena Arena;

Arena *arena_new(void);
void arena_free(Arena *arena);
/* Zeroed, 16-byte aligned memory; never returns NULL (aborts with a message when out of memory). */
void *arena_alloc(Arena *arena, size_t size);
char *arena_strdup(Arena *arena, const char *s);
char *arena_strndup(Arena *arena, const char *s, size_t n);
char *arena_printf(Arena *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable array of pointers living in the arena (old storage is simply abandoned on growth). */
typedef struct PtrVec {
    void **items;
    int len, cap;
} PtrVec;
void ptrvec_push(Arena *arena, PtrVec *vec, void *item);

#define ARENA_NEW(arena, type) ((type *)arena_alloc((arena), sizeof(type)))
#define ARENA_ARRAY(arena, type, count) ((type *)arena_alloc((arena), sizeof(type) * (size_t)(count)))

#endif
