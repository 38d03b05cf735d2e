/* The user-store interface: what the engine needs from wherever user records live (state/:
 * in memory for replays, Redis for the daemon). It sits in features/ so that state/ depends
 * only on features/ and core/, never on the engine above it.
 *
 * Ownership: records belong to the store; a pointer returned by `get` stays valid until the
 * next `get` on the same store, and so do the records and ids a `range` visits (after the
 * range returns too: the engine's threaded sweeps make their calls then). Progress is the engine's,
 * persisted by stores as an opaque blob of STORE_PROGRESS_BYTES (the engine packs and unpacks it:
 * eng_progress_pack). */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "user.h"

/* `get` returns the record of a user, creating an empty one (user_rec_init) when absent.
 * `range` calls visit for every user whose last activity time is in [lo_ms, hi_ms), in
 * ascending order of that time, ties by id (a sweep's order: alerts and scores come out in
 * it). `each`, when not NULL, visits the same users in whatever order is cheapest to the
 * store (the BG/NBD refit's population scan, which sorts the rows it builds); NULL: use
 * `range`.
 * `touched` tells the store a record changed (dirty for the next commit; its last activity
 * may have moved). */
typedef struct store_ops_s {
    void *opaque;
    user_rec_t *(*get)(void *opaque, const char *user_id, size_t len);
    void (*range)(void *opaque, int64_t lo_ms, int64_t hi_ms,
                  void (*visit)(void *ctx, const char *user_id, user_rec_t *rec), void *ctx);
    void (*touched)(void *opaque, const char *user_id, user_rec_t *rec);
    void (*each)(void *opaque, int64_t lo_ms, int64_t hi_ms,
                 void (*visit)(void *ctx, const char *user_id, user_rec_t *rec), void *ctx);
} store_ops_t;

/* The engine's progress as stores keep it: 7 little-endian int64 (engine.h says which). */
#define STORE_PROGRESS_BYTES 56
typedef struct store_progress_s {
    uint8_t b[STORE_PROGRESS_BYTES];
} store_progress_t;

#endif
