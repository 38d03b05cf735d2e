/* Growable arrays: the one way churnstream grows a heap array (or several parallel arrays
 * that share one capacity). Capacity doubles from min_cap until it holds `want` items, so n
 * appends cost O(n) copies in total.
 *
 *     size_t n = 0, cap = 0; int64_t *t = NULL; char **ids = NULL;
 *     if (CS_GROW2(t, ids, cap, n + 1, 64) != 0) return -1;   // both arrays, one capacity
 *     t[n] = ...; ids[n] = ...; n++;
 *
 * All or nothing: on failure (out of memory, size overflow) -1 is returned, cap is unchanged
 * and every array still holds its old items at its old capacity (some may have moved: the
 * pointer variables are updated whenever realloc succeeded), so the caller frees as usual. */
#ifndef CS_GROW_H
#define CS_GROW_H

#include <stddef.h>

typedef struct cs_array_s {
    void *ptr_addr; /* address of the array's pointer variable (a T **, as void *) */
    size_t elem;    /* sizeof(T) */
} cs_array_t;

#define CS_ARRAY(p) ((cs_array_t){(void *)&(p), sizeof(*(p))})

/* Grows the n arrays to a capacity of at least want items (*cap is shared by all of them). */
int cs_grow_arrays(size_t *cap, size_t want, size_t min_cap, const cs_array_t *arrays, int n);

/* The macros' entry: the common case (room already) without a call, each argument evaluated
 * once (appends in hot loops: 4% of a replay's samples were calls that returned at once). */
static inline int cs_grow(size_t *cap, size_t want, size_t min_cap, const cs_array_t *arrays, int n)
{
    return want <= *cap ? 0 : cs_grow_arrays(cap, want, min_cap, arrays, n);
}

#define CS_GROW(p, cap, want, min_cap)                                                             \
    cs_grow(&(cap), (want), (min_cap), (cs_array_t[]){CS_ARRAY(p)}, 1)
#define CS_GROW2(p, q, cap, want, min_cap)                                                         \
    cs_grow(&(cap), (want), (min_cap), (cs_array_t[]){CS_ARRAY(p), CS_ARRAY(q)}, 2)
#define CS_GROW3(p, q, r, cap, want, min_cap)                                                      \
    cs_grow(&(cap), (want), (min_cap), (cs_array_t[]){CS_ARRAY(p), CS_ARRAY(q), CS_ARRAY(r)}, 3)
#define CS_GROW4(p, q, r, s, cap, want, min_cap)                                                   \
    cs_grow(&(cap), (want), (min_cap),                                                             \
            (cs_array_t[]){CS_ARRAY(p), CS_ARRAY(q), CS_ARRAY(r), CS_ARRAY(s)}, 4)

#endif
