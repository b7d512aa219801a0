/* failinj.c - allocation-failure injection for the unit tests (test builds
 * only: scripts/allocfail).
 *
 * scripts/allocfail renames, in copies of the library's objects, every call
 * to malloc, calloc, realloc, strdup, strndup and to the arena's allocating
 * entry points (arena_create, arena_alloc, arena_calloc, arena_realloc,
 * arena_strndup, arena_strdup, arena_vprintf, arena_printf,
 * arena_cleanup_add) to fi_<name>, defined here.  Each of those calls is
 * one allocation; with NNREG_FAILINJ_AT=N the Nth one fails (returns NULL
 * or false, as the real one does when memory runs out), once.  The
 * nn_error_* calls of the library are counted too, so the report says
 * whether the failure was turned into a recorded error.
 *
 * The unit tests' own objects are renamed as well, to fi_test_<name>: what
 * a test allocates (its arenas, its buffers) is never failed but is
 * remembered, and whatever a test left behind because one of its
 * assertions stopped it (cmocka longjmps out of the test) is released at
 * exit, before LeakSanitizer looks.  So a leak LeakSanitizer reports is the
 * library's.
 *
 * At exit, one line goes to the file NNREG_FAILINJ_REPORT (when set):
 *   "<allocations> <fired 0|1> <errors recorded after firing> <site>"
 * where site is the call site of the failed allocation (offsets "at:from"). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "util/error.h"

static unsigned long fail_at;   /* 0: never fail by number */
static bool fail_site;          /* NNREG_FAILINJ_SITE is set */
static unsigned long count;     /* allocations seen */
static bool fired;
static unsigned long errors_after; /* nn_error_* calls after firing */
static bool getenv_sites_wanted;   /* NNREG_FAILINJ_SITES is set */
/* Nonzero while a test's own fixture is being made: not code under test,
 * so its allocations are neither counted nor failed. */
static int in_fixture;

/* ---- what the tests own ------------------------------------------------------ */

/* An open-addressing set of pointers (never shrinks: tests are small). */
typedef struct ptrset {
    void **slots;
    size_t cap, n;
} ptrset_t;

static ptrset_t test_blocks, test_arenas;
#define TOMBSTONE ((void *)1)

static size_t slot_of(const ptrset_t *s, void *p)
{
    return ((uintptr_t)p >> 4) * 11400714819323198485ull % s->cap;
}

static void set_add(ptrset_t *s, void *p);

static void set_grow(ptrset_t *s)
{
    ptrset_t old = *s;
    s->cap = old.cap ? old.cap * 2 : 1024;
    s->slots = calloc(s->cap, sizeof(void *));
    s->n = 0;
    if (!s->slots)
        abort(); /* the injector itself must never fail */
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i] && old.slots[i] != TOMBSTONE)
            set_add(s, old.slots[i]);
    free(old.slots);
}

static void set_add(ptrset_t *s, void *p)
{
    if (!p)
        return;
    if ((s->n + 1) * 2 > s->cap)
        set_grow(s);
    size_t i = slot_of(s, p);
    while (s->slots[i] && s->slots[i] != TOMBSTONE)
        i = (i + 1) % s->cap;
    s->slots[i] = p;
    s->n++;
}

static bool set_has(const ptrset_t *s, void *p)
{
    if (!p || !s->cap)
        return false;
    for (size_t i = slot_of(s, p); s->slots[i]; i = (i + 1) % s->cap)
        if (s->slots[i] == p)
            return true;
    return false;
}

static bool set_remove(ptrset_t *s, void *p)
{
    if (!p || !s->cap)
        return false;
    size_t i = slot_of(s, p);
    while (s->slots[i]) {
        if (s->slots[i] == p) {
            s->slots[i] = TOMBSTONE;
            return true; /* n counts tombstones too: growth stays bounded */
        }
        i = (i + 1) % s->cap;
    }
    return false;
}

void *fi_test_malloc(size_t n);
void *fi_test_calloc(size_t n, size_t size);
void *fi_test_realloc(void *p, size_t n);
char *fi_test_strdup(const char *s);
void fi_test_free(void *p);
arena_t *fi_test_arena_create(size_t block_size);
void fi_test_arena_destroy(arena_t *a);

void *fi_test_malloc(size_t n)
{
    void *p = malloc(n);
    set_add(&test_blocks, p);
    return p;
}

void *fi_test_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    set_add(&test_blocks, p);
    return p;
}

void *fi_test_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q) {
        set_remove(&test_blocks, p);
        set_add(&test_blocks, q);
    }
    return q;
}

char *fi_test_strdup(const char *s)
{
    char *p = strdup(s);
    set_add(&test_blocks, p);
    return p;
}

void fi_test_free(void *p)
{
    set_remove(&test_blocks, p);
    free(p);
}

arena_t *fi_test_arena_create(size_t block_size)
{
    in_fixture++;
    arena_t *a = arena_create(block_size);
    in_fixture--;
    set_add(&test_arenas, a);
    return a;
}

void fi_test_arena_destroy(arena_t *a)
{
    set_remove(&test_arenas, a);
    arena_destroy(a);
}

/* ---- the library's allocations -------------------------------------------------- */

/* A call site is the library code that called the wrapper together with
 * its own caller (two return addresses: arena_alloc called by jv_set
 * called by the JSON parser is not the same site as jv_set called by the
 * form-key code).  Both are kept as offsets from a function of this
 * program, which stay the same from run to run whatever the load address. */
typedef struct site {
    uintptr_t at, from;
} site_t;

extern char __executable_start, etext; /* GNU ld: this program's text */

static uintptr_t site_offset(void *addr)
{
    return (uintptr_t)addr - (uintptr_t)&site_offset;
}

/* The distinct sites met, in order of first call (for NNREG_FAILINJ_SITES). */
static site_t *sites;
static size_t nsites, sites_cap;
static ptrset_t sites_seen;
static site_t fail_site_pair; /* NNREG_FAILINJ_SITE="at:from" */
static site_t fired_pair;

static bool fail_now(void *at, void *from)
{
    if (in_fixture)
        return false;
    count++;
    /* A caller outside this program (a yajl callback's caller is inside
     * libyajl, built without frame pointers) is not a usable address. */
    uintptr_t f = (uintptr_t)from;
    bool from_here = f >= (uintptr_t)&__executable_start && f < (uintptr_t)&etext;
    site_t here = {site_offset(at), from_here ? site_offset(from) : 0};
    /* The key may be neither NULL nor TOMBSTONE. */
    void *key = (void *)((here.at * 0x9e3779b97f4a7c15ull ^ here.from) | 2);
    if (getenv_sites_wanted && !set_has(&sites_seen, key)) {
        if (nsites == sites_cap) {
            sites_cap = sites_cap ? 2 * sites_cap : 256;
            sites = realloc(sites, sites_cap * sizeof(*sites));
            if (!sites)
                abort();
        }
        sites[nsites++] = here;
        set_add(&sites_seen, key);
    }
    if (fired)
        return false;
    if ((fail_at && count == fail_at) ||
        (fail_site && here.at == fail_site_pair.at && here.from == fail_site_pair.from)) {
        fired = true;
        fired_pair = here;
        return true;
    }
    return false;
}

/* The site is the library code that called the wrapper. */
#define FAIL_HERE() fail_now(__builtin_return_address(0), __builtin_return_address(1))

void *fi_malloc(size_t n)
{
    if (FAIL_HERE())
        return NULL;
    return malloc(n);
}

void *fi_calloc(size_t n, size_t size)
{
    if (FAIL_HERE())
        return NULL;
    return calloc(n, size);
}

void *fi_realloc(void *p, size_t n)
{
    if (FAIL_HERE())
        return NULL;
    return realloc(p, n);
}

char *fi_strdup(const char *s)
{
    if (FAIL_HERE())
        return NULL;
    return strdup(s);
}

char *fi_strndup(const char *s, size_t n)
{
    if (FAIL_HERE())
        return NULL;
    return strndup(s, n);
}

void fi_free(void *p)
{
    set_remove(&test_blocks, p); /* a test's buffer handed to the library */
    free(p);
}

arena_t *fi_arena_create(size_t block_size);
void *fi_arena_alloc(arena_t *a, size_t size);
void *fi_arena_calloc(arena_t *a, size_t n, size_t size);
void *fi_arena_realloc(arena_t *a, void *old, size_t old_size, size_t new_size);
char *fi_arena_strndup(arena_t *a, const char *s, size_t len);
char *fi_arena_strdup(arena_t *a, const char *s);
char *fi_arena_vprintf(arena_t *a, const char *fmt, va_list ap);
char *fi_arena_printf(arena_t *a, const char *fmt, ...);
bool fi_arena_cleanup_add(arena_t *a, arena_cleanup_fn fn, void *data);
void fi_arena_destroy(arena_t *a);

arena_t *fi_arena_create(size_t block_size)
{
    if (FAIL_HERE())
        return NULL;
    return arena_create(block_size);
}

void fi_arena_destroy(arena_t *a)
{
    set_remove(&test_arenas, a); /* a test's arena destroyed by the library */
    arena_destroy(a);
}

void *fi_arena_alloc(arena_t *a, size_t size)
{
    if (FAIL_HERE())
        return NULL;
    return arena_alloc(a, size);
}

void *fi_arena_calloc(arena_t *a, size_t n, size_t size)
{
    if (FAIL_HERE())
        return NULL;
    return arena_calloc(a, n, size);
}

void *fi_arena_realloc(arena_t *a, void *old, size_t old_size, size_t new_size)
{
    if (FAIL_HERE())
        return NULL;
    return arena_realloc(a, old, old_size, new_size);
}

char *fi_arena_strndup(arena_t *a, const char *s, size_t len)
{
    if (FAIL_HERE())
        return NULL;
    return arena_strndup(a, s, len);
}

char *fi_arena_strdup(arena_t *a, const char *s)
{
    if (FAIL_HERE())
        return NULL;
    return arena_strdup(a, s);
}

char *fi_arena_vprintf(arena_t *a, const char *fmt, va_list ap)
{
    if (FAIL_HERE())
        return NULL;
    return arena_vprintf(a, fmt, ap);
}

char *fi_arena_printf(arena_t *a, const char *fmt, ...)
{
    if (FAIL_HERE())
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    char *s = arena_vprintf(a, fmt, ap);
    va_end(ap);
    return s;
}

bool fi_arena_cleanup_add(arena_t *a, arena_cleanup_fn fn, void *data)
{
    if (FAIL_HERE())
        return false;
    return arena_cleanup_add(a, fn, data);
}

/* ---- errors recorded ----------------------------------------------------------- */

bool fi_nn_error_set(nn_error_t *err, int status, const char *code, const char *fmt, ...);
bool fi_nn_error_field(nn_error_t *err, const char *path, const char *fmt, ...);
bool fi_nn_error_oom(nn_error_t *err);
bool fi_nn_error_internal(nn_error_t *err, const char *what);

bool fi_nn_error_set(nn_error_t *err, int status, const char *code, const char *fmt, ...)
{
    if (fired)
        errors_after++;
    if (err->status != 0)
        return false;
    char msg[NN_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return nn_error_set(err, status, code, "%s", msg);
}

bool fi_nn_error_field(nn_error_t *err, const char *path, const char *fmt, ...)
{
    if (fired)
        errors_after++;
    char msg[NN_ERROR_FIELD_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return nn_error_field(err, path, "%s", msg);
}

bool fi_nn_error_oom(nn_error_t *err)
{
    if (fired)
        errors_after++;
    return nn_error_oom(err);
}

bool fi_nn_error_internal(nn_error_t *err, const char *what)
{
    if (fired)
        errors_after++;
    return nn_error_internal(err, what);
}

/* ---- start and end ------------------------------------------------------------- */

static void at_exit(void)
{
    /* What the tests left behind when an assertion cut them short. */
    for (size_t i = 0; i < test_arenas.cap; i++)
        if (test_arenas.slots[i] && test_arenas.slots[i] != TOMBSTONE)
            arena_destroy(test_arenas.slots[i]);
    for (size_t i = 0; i < test_blocks.cap; i++)
        if (test_blocks.slots[i] && test_blocks.slots[i] != TOMBSTONE)
            free(test_blocks.slots[i]);
    free(test_arenas.slots);
    free(test_blocks.slots);
    memset(&test_arenas, 0, sizeof(test_arenas));
    memset(&test_blocks, 0, sizeof(test_blocks));
    const char *report = getenv("NNREG_FAILINJ_REPORT");
    if (report) {
        FILE *f = fopen(report, "w");
        if (f) {
            fprintf(f, "%lu %d %lu %lx:%lx\n", count, fired ? 1 : 0, errors_after,
                    (unsigned long)fired_pair.at, (unsigned long)fired_pair.from);
            fclose(f);
        }
    }
    const char *list = getenv("NNREG_FAILINJ_SITES");
    if (list) {
        FILE *f = fopen(list, "w");
        if (f) {
            for (size_t i = 0; i < nsites; i++)
                fprintf(f, "%lx:%lx\n", (unsigned long)sites[i].at, (unsigned long)sites[i].from);
            fclose(f);
        }
    }
    free(sites);
    free(sites_seen.slots);
}

__attribute__((constructor)) static void failinj_init(void)
{
    const char *at = getenv("NNREG_FAILINJ_AT");
    fail_at = at ? strtoul(at, NULL, 10) : 0;
    const char *site = getenv("NNREG_FAILINJ_SITE");
    if (site) {
        char *colon;
        fail_site_pair.at = (uintptr_t)strtoull(site, &colon, 16);
        fail_site_pair.from = *colon == ':' ? (uintptr_t)strtoull(colon + 1, NULL, 16) : 0;
        fail_site = true;
    }
    getenv_sites_wanted = getenv("NNREG_FAILINJ_SITES") != NULL;
    /* Registered after the sanitizer runtime's own exit hook, so it runs
     * before the leak check. */
    atexit(at_exit);
}

/* ---- cmocka's string and memory assertions, NULL-safe -------------------------- */

/* A test that checks a result with assert_string_equal gets NULL when the
 * code under test failed cleanly; cmocka's own strcmp would crash on it.
 * A failed assertion is the right outcome there, not a SEGV. */
void _assert_string_equal(const char *a, const char *b, const char *file, int line);
void _assert_string_not_equal(const char *a, const char *b, const char *file, int line);
void _assert_memory_equal(const void *a, const void *b, size_t size, const char *file, int line);
void _assert_true(const uintmax_t result, const char *const expression, const char *const file,
                  const int line);
void fi_test__assert_string_equal(const char *a, const char *b, const char *file, int line);
void fi_test__assert_string_not_equal(const char *a, const char *b, const char *file, int line);
void fi_test__assert_memory_equal(const void *a, const void *b, size_t size, const char *file,
                                  int line);

void fi_test__assert_string_equal(const char *a, const char *b, const char *file, int line)
{
    if (!a || !b)
        _assert_true(0, "a string to compare is NULL", file, line);
    _assert_string_equal(a, b, file, line);
}

void fi_test__assert_string_not_equal(const char *a, const char *b, const char *file, int line)
{
    if (!a || !b)
        _assert_true(0, "a string to compare is NULL", file, line);
    _assert_string_not_equal(a, b, file, line);
}

void fi_test__assert_memory_equal(const void *a, const void *b, size_t size, const char *file,
                                  int line)
{
    if (size && (!a || !b))
        _assert_true(0, "memory to compare is NULL", file, line);
    _assert_memory_equal(a, b, size, file, line);
}
