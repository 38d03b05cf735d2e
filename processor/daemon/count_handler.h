/* The event-count handler: a real dm_handler_t that decodes and validates each message
 * with the codec, rejects bad ones to the DLQ, and keeps per-user event counts and
 * per-partition next offsets in Redis, written in one MULTI/EXEC per batch. A diagnostic
 * (`churnstream run --handler count`), outside the churn path: it proves the daemon's
 * exactly-once plumbing (consumer, DLQ, commits, rebalances) with no model in the way, and
 * tests/integration/test_daemon.c checks its counts against the events produced.
 * Keys, with P = state.prefix (disjoint from the pipeline's keys, so switching handlers on
 * one prefix never pairs counted offsets with missing user state):
 *   P count:users    HASH  user_id -> accepted events
 *   P count:offsets  HASH  partition -> next offset to consume
 * Validation: everything ev_decode checks, plus the future side of the event-time window
 * (events.max_future past the wall clock). The past side needs the pipeline's watermark
 * and is not applied here. */
#ifndef CS_COUNT_HANDLER_H
#define CS_COUNT_HANDLER_H

#include <stddef.h>

#include "config.h"
#include "daemon.h"

typedef struct ch_s ch_t;

/* Creates the decoder (schemas.dir) and connects to Redis (redis.*), checking it answers.
 * Copies what it needs from cfg. Returns NULL with errstr naming the cause. */
ch_t *ch_new(const cfg_t *cfg, char *errstr, size_t errstr_size);

/* Closes the connection and frees everything; NULL is a no-op. */
void ch_destroy(ch_t *ch);

/* Fills *out with callbacks on ch (ch must outlive the daemon using them). Transactions:
 * each batch is WATCH + HMGET of its partitions' stored offsets, then MULTI, HINCRBY per
 * user, HSET per partition, EXEC: 2 round trips. A batch the store is already past in every
 * partition (its EXEC went through but the reply was lost) counts as done, not again; one
 * the store is past in some partitions is DM_BATCH_STALE; a connection error or a
 * concurrent write is DM_BATCH_RETRY (the connection is re-made on the next call). */
void ch_handler(ch_t *ch, dm_handler_t *out);

#endif
