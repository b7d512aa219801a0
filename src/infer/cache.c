#include "infer/cache.h"

#include <stdlib.h>

/* A doubly linked list, most recent first.  Lookups are linear: a process
 * holds a handful of models (each takes megabytes), and a lookup is
 * nothing beside an inference. */
typedef struct entry {
    long long key;
    void *value;
    size_t bytes;
    struct entry *prev, *next;
} entry_t;

struct infer_cache {
    size_t cap;
    size_t bytes;
    size_t count;
    entry_t *head, *tail;
    void (*free_value)(void *value);
};

infer_cache_t *cache_create(size_t cap_bytes, void (*free_value)(void *value))
{
    infer_cache_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cap = cap_bytes;
    c->free_value = free_value;
    return c;
}

static void unlink_entry(infer_cache_t *c, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(infer_cache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void drop(infer_cache_t *c, entry_t *e)
{
    unlink_entry(c, e);
    c->bytes -= e->bytes;
    c->count--;
    if (c->free_value)
        c->free_value(e->value);
    free(e);
}

void cache_destroy(infer_cache_t *c)
{
    if (!c)
        return;
    while (c->head)
        drop(c, c->head);
    free(c);
}

static entry_t *find(const infer_cache_t *c, long long key)
{
    for (entry_t *e = c->head; e; e = e->next)
        if (e->key == key)
            return e;
    return NULL;
}

void *cache_get(infer_cache_t *c, long long key)
{
    entry_t *e = find(c, key);
    if (!e)
        return NULL;
    if (e != c->head) {
        unlink_entry(c, e);
        push_front(c, e);
    }
    return e->value;
}

bool cache_put(infer_cache_t *c, long long key, void *value, size_t bytes)
{
    entry_t *old = find(c, key);
    if (old)
        drop(c, old);
    entry_t *e = calloc(1, sizeof(*e));
    if (!e) {
        if (c->free_value)
            c->free_value(value);
        return false;
    }
    e->key = key;
    e->value = value;
    e->bytes = bytes;
    push_front(c, e);
    c->bytes += bytes;
    c->count++;
    while (c->bytes > c->cap && c->tail && c->tail != e)
        drop(c, c->tail);
    return true;
}

bool cache_remove(infer_cache_t *c, long long key)
{
    entry_t *e = find(c, key);
    if (!e)
        return false;
    drop(c, e);
    return true;
}

size_t cache_count(const infer_cache_t *c)
{
    return c->count;
}

size_t cache_bytes(const infer_cache_t *c)
{
    return c->bytes;
}
