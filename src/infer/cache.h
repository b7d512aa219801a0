/* cache.h - the models nnreg-inferd keeps loaded: least recently used
 * first out, under a cap in bytes.
 *
 * Entries are keyed by network id (ids are never reused, and a network's
 * deployment never changes once made, so an entry never goes stale; a
 * deleted network's entry is dropped by cache_remove).  The cache owns the
 * values it holds and frees them with the free function given at creation.
 * Process lifetime; one thread. */
#ifndef NNREG_INFER_CACHE_H
#define NNREG_INFER_CACHE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct infer_cache infer_cache_t;

/* cap_bytes 0 keeps nothing beyond the entry in use. */
infer_cache_t *cache_create(size_t cap_bytes, void (*free_value)(void *value));
void cache_destroy(infer_cache_t *cache);

/* The value for key (and marks it most recently used), NULL when absent. */
void *cache_get(infer_cache_t *cache, long long key);

/* Adds value (bytes large) as the most recently used entry, then evicts
 * least recently used entries until the total fits the cap.  The entry
 * just added is never evicted by its own put, even when it alone is larger
 * than the cap (the caller is about to use it); the next put evicts it.
 * false when out of memory (value is then freed). */
bool cache_put(infer_cache_t *cache, long long key, void *value, size_t bytes);

/* Drops key's entry (freeing its value); false when absent. */
bool cache_remove(infer_cache_t *cache, long long key);

size_t cache_count(const infer_cache_t *cache);
size_t cache_bytes(const infer_cache_t *cache);

#endif
