/* The batch driver shared by `run` (daemon/churn_batch.c) and `replay` (replay/replay.c), so
 * live == backtest holds by construction: both hand it the accepted events of a batch in the
 * order they were read, each with its partition and offset, and it applies them the one way
 * there is: for every partition in the batch one prefetch of its users into the store's
 * cache (one round trip on Redis; nothing in memory), then every event in order through its
 * partition's pipeline (engine, models, alerts into the caller's alert sink, sink.h).
 *
 * Where the driver stops, and why. Three steps stay with the callers:
 *   before, decoding and admission (batch_add is handed only accepted events): `run` decodes
 *     Kafka messages (ev_decode, framing auto-detected), skips offsets below the partition's
 *     stored next offset (a redone batch) and rejects to the DLQ (churn_batch.c decode());
 *     `replay` reads a file or topic through replay_source.c and the future-row buffer
 *     (replay_future.h) and writes rejects to --rejects-out (replay.c read_all()). The time
 *     checks are the same function (ev_check_time); what differs is the source, the reject
 *     sink and the redo rule, which only the live path has.
 *   after, the batch boundary (pl_batch_end: learn, move the watermark, sweep ticks): `run`
 *     ends every open partition's pipeline at one global watermark (chn_watermark: the min
 *     over partitions of max event time - lateness, and the wall clock for idle partitions),
 *     `replay` its one pipeline at max event time - lateness. The call is the same; the
 *     watermark is each caller's, as its partitions are.
 *   after that, the commit: `run` writes records, index, offsets, progress, model, alert
 *     outbox and latest scores in one Redis MULTI/EXEC (churn_batch.c commit()), then flushes
 *     its Kafka alert sink (the producer sends what the outbox holds); `replay` commits only
 *     with --state redis (replay_store.c rp_store_commit: offset = events read, no outbox),
 *     and its JSON-lines alert sink writes as it goes, published with the other outputs at
 *     the end. A failure before the commit is rolled back by the daemon (chn_rollback,
 *     retry) and ends a replay: moving the commit in here would make the driver know both
 *     failure policies and the daemon's outbox and offsets, which are not the engine's.
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
    /* Tick marks (batch_mark_tick): before event cut_at[k] the batch ends at cut_wm[k]. */
    size_t *cut_at;
    int64_t *cut_wm;
    size_t n_cuts, cap_cuts;
} batch_t;

typedef struct batch_ops_s {
    void *opaque;
    /* The pipeline events of `partition` go through (replay: its only one). */
    pl_t *(*pipeline)(void *opaque, int32_t partition);
    /* Loads the users ids[0..n) of `partition` into the store's batch cache in one round; NULL
     * when the store needs none (memory). 0, or -1 with err. */
    int (*prefetch)(void *opaque, int32_t partition, const char *const *ids, size_t n, char *err,
                    size_t errsz);
    /* A tick mark reached (batch_mark_tick): ends the batch so far at watermark wm (learn,
     * move the watermark, sweep) without leaving the caller's transaction; NULL when the
     * caller marks none. 0, or -1 with err. */
    int (*tick_mark)(void *opaque, int64_t wm, char *err, size_t errsz);
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
/* Marks a tick before the next event pushed: when the batch is applied, the events before
 * it are followed by ops->tick_mark(wm), wm being the watermark that event sets. `run`
 * marks each event that moves the watermark past a tick (churn_batch.c decode), so a
 * catch-up batch spanning days sweeps each tick with what was known then, in one
 * transaction; `replay` ends its batch there instead (its commits cost nothing). 0, or -1
 * on out of memory. */
int batch_mark_tick(batch_t *b, int64_t wm);
/* Applies the batch (prefetch per partition, then the events in order, with the tick marks
 * between them) and empties it. 0, or -1 with err when a prefetch failed (then no event was
 * applied and the batch is kept: the caller rolls back its store and retries, or gives up)
 * or a tick mark failed (then events were applied: the caller must roll back). */
int batch_apply(batch_t *b, const batch_ops_t *ops, char *err, size_t errsz);
/* Empties the batch, keeping its arrays. */
void batch_clear(batch_t *b);
void batch_free(batch_t *b);

#endif
