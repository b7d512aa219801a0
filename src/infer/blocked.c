#include "infer/blocked.h"

#include <stdint.h>
#include <string.h>

/* Node names -> index, open addressing (FNV-1a), built per call. */
typedef struct name_index {
    size_t *slots; /* index + 1, 0 empty */
    size_t mask;
} name_index_t;

static uint64_t hash_name(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static bool index_build(arena_t *arena, const graph_summary_t *g, name_index_t *ix)
{
    size_t cap = 16;
    while (cap < g->nnodes * 2 + 1)
        cap <<= 1;
    ix->slots = arena_calloc(arena, cap, sizeof(*ix->slots));
    if (!ix->slots)
        return false;
    ix->mask = cap - 1;
    for (size_t i = 0; i < g->nnodes; i++) {
        const char *name = g->nodes[i].name;
        size_t s = (size_t)hash_name(name, strlen(name)) & ix->mask;
        while (ix->slots[s])
            s = (s + 1) & ix->mask;
        ix->slots[s] = i + 1;
    }
    return true;
}

/* The node an input refers to: "x", "x:1" (node x), "^x" is a control
 * input (none).  SIZE_MAX when unknown. */
static size_t index_find_input(const graph_summary_t *g, const name_index_t *ix, const char *input)
{
    if (input[0] == '^')
        return SIZE_MAX;
    size_t len = strlen(input);
    const char *colon = strrchr(input, ':');
    if (colon && colon[1]) {
        bool digits = true;
        for (const char *p = colon + 1; *p && digits; p++)
            digits = *p >= '0' && *p <= '9';
        if (digits)
            len = (size_t)(colon - input);
    }
    size_t s = (size_t)hash_name(input, len) & ix->mask;
    while (ix->slots[s]) {
        const char *name = g->nodes[ix->slots[s] - 1].name;
        if (strncmp(name, input, len) == 0 && name[len] == '\0')
            return ix->slots[s] - 1;
        s = (s + 1) & ix->mask;
    }
    return SIZE_MAX;
}

bool blocked_compute(arena_t *arena, const graph_summary_t *g, bool (*supported)(const char *op),
                     const char *const *fed, size_t nfed, const graph_node_t ***out,
                     nn_error_t *err)
{
    const graph_node_t **blocked = arena_calloc(arena, g->nnodes + 1, sizeof(*blocked));
    unsigned char *state = arena_calloc(arena, g->nnodes + 1, 1); /* 0 new, 1 open, 2 done */
    size_t *stack = arena_calloc(arena, g->nnodes + 1, sizeof(*stack));
    size_t *next_input = arena_calloc(arena, g->nnodes + 1, sizeof(*next_input));
    name_index_t ix;
    if (!blocked || !state || !stack || !next_input || !index_build(arena, g, &ix))
        return nn_error_oom(err);

    /* Fed nodes are done before the walk starts: never blocked, never
     * entered. */
    for (size_t i = 0; i < nfed; i++) {
        size_t v = index_find_input(g, &ix, fed[i]);
        if (v != SIZE_MAX)
            state[v] = 2;
    }

    /* Iterative depth-first walk: a deep chain (a long unrolled network)
     * must not exhaust the C stack. */
    for (size_t root = 0; root < g->nnodes; root++) {
        if (state[root])
            continue;
        size_t depth = 0;
        stack[depth++] = root;
        state[root] = 1;
        next_input[root] = 0;
        while (depth > 0) {
            size_t v = stack[depth - 1];
            const graph_node_t *node = &g->nodes[v];
            if (next_input[v] == 0 && !blocked[v]) {
                if (!supported(node->op))
                    blocked[v] = node;
            }
            if (!blocked[v] && next_input[v] < node->ninputs) {
                size_t u = index_find_input(g, &ix, node->inputs[next_input[v]++]);
                if (u == SIZE_MAX || state[u] == 1)
                    continue; /* unknown input, or a cycle closing */
                if (state[u] == 2) {
                    if (blocked[u])
                        blocked[v] = blocked[u];
                    continue;
                }
                state[u] = 1;
                next_input[u] = 0;
                stack[depth++] = u;
                continue;
            }
            state[v] = 2;
            depth--;
            if (depth > 0 && blocked[v] && !blocked[stack[depth - 1]])
                blocked[stack[depth - 1]] = blocked[v];
        }
    }
    *out = blocked;
    return true;
}
