/* The batch driver shared by `run` (daemon/churn_batch.c) and `replay` (replay/replay.c), so
 * live == backtest holds by construction: both hand it the accepted events of a batch in the
 * order they were read, each with its partition and offset, and it applies them the one way
 * there is: for every partition in the batch one prefetch of its users into the store's
 * cache (one round trip on Redis; nothing in memory), then every event in order through its
 * partition's pipeline (engine, models, alerts). Decoding before and the batch boundary
 * (pl_batch_end: learn, move the watermark, sweep) and the commit after stay with the callers,
 * whose stores and watermarks differ (many partitions and Redis vs one input).
 *
 * Memory: the batch owns its arrays, reused across batches (batch_clear keeps them);
 * batch_free releases them. Event copies are plain values (ev_event_t holds no pointers). */
#ifndef CS_BATCH_H
#define CS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "pipeline.h"

typedef struct batch_s {
    ev_event_t *evs;  /* accepted events, in the order read */
    int32_t *part;    /* each event's partition */
    int64_t *off;     /* its offset (run) or its position in the input (replay) */
    const char **ids; /* scratch: one partition's user ids for its prefetch */
    size_t n, cap;
    int32_t *parts; /* scratch: the distinct partitions of the batch */
    size_t n_parts, cap_parts;
} batch_t;

typedef struct batch_ops_s {
    void *opaque;
    /* The pipeline events of `partition` go through (replay: its only one). */
    pl_t *(*pipeline)(void *opaque, int32_t partition);
    /* Loads the users ids[0..n) of `partition` into the store's batch cache in one round; NULL
     * when the store needs none (memory). 0, or -1 with err. */
    int (*prefetch)(void *opaque, int32_t partition, const char *const *ids, size_t n, char *err,
                    size_t errsz);
} batch_ops_t;

/* Room for `want` events in all arrays. 0, or -1 on out of memory (the batch unchanged). */
int batch_reserve(batch_t *b, size_t want);
/* Appends a copy of ev. 0, or -1 on out of memory. */
int batch_add(batch_t *b, const ev_event_t *ev, int32_t partition, int64_t offset);
/* The next event's slot, for decoding in place (an event is ~660 bytes: no copy), room
 * reserved; NULL on out of memory. The slot belongs to the batch and is not counted until
 * batch_push; a slot left unpushed (a rejected event) is handed out again. Valid until the
 * next batch_reserve / batch_slot / batch_add. */
ev_event_t *batch_slot(batch_t *b);
/* Counts the event written into batch_slot(b), with its partition and offset. */
void batch_push(batch_t *b, int32_t partition, int64_t offset);
/* Applies the batch (prefetch per partition, then the events in order) and empties it.
 * 0, or -1 with err when a prefetch failed: then no event was applied and the batch is kept
 * (the caller rolls back its store and retries, or gives up). */
int batch_apply(batch_t *b, const batch_ops_t *ops, char *err, size_t errsz);
/* Empties the batch, keeping its arrays. */
void batch_clear(batch_t *b);
void batch_free(batch_t *b);

#endif
