/* A fixed team of threads for data-parallel loops: cs_pool_for splits [0, n) into
 * ranges that the threads (the caller among them) take as they go, and returns when all
 * are done. Meant for loops whose iterations only read shared state and write their own
 * slots, so the result does not depend on the number of threads.
 *
 * Threads: the team's threads sleep on a condition variable between loops (no spinning);
 * one loop runs at a time, and cs_pool_for is called from one thread only (the owner's). */
#ifndef CS_POOL_H
#define CS_POOL_H

#include <stddef.h>

typedef struct cs_pool_s cs_pool_t;

/* A team of `threads` (the caller included; 1 = no thread started, loops run inline).
 * NULL when a thread cannot be started or out of memory. */
cs_pool_t *cs_pool_new(int threads);
/* Stops and joins the threads; NULL is a no-op. */
void cs_pool_destroy(cs_pool_t *p);
int cs_pool_threads(const cs_pool_t *p);

/* Calls fn(ctx, lo, hi) on disjoint ranges covering [0, n), concurrently: the threads take
 * ranges of at least min_per_thread iterations as they go (which thread runs which range
 * varies). A NULL pool, or n below min_per_thread x 2, runs fn(ctx, 0, n) in the caller
 * alone. */
void cs_pool_for(cs_pool_t *p, size_t n, size_t min_per_thread,
                 void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx);

/* The number of threads a data-parallel stage should use on this machine by default: the
 * online processors, at most `cap`, at least 1. */
int cs_pool_default_threads(int cap);

#endif
