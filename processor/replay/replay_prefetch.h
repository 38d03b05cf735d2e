/* Replay's read-ahead: a second thread runs a source's decoder (gunzip or inflate, Avro or
 * JSON parsing) ahead of the engine, so decoding the next events overlaps the work on the
 * current ones. The consumer sees exactly the sequence the source gives, in order, with
 * the same reasons, `why` texts, end and error (an error found ahead is returned when the
 * consumer reaches it, after every event before it).
 *
 * Ownership and threads: the source (src) belongs to the read-ahead thread from the first
 * rpp_next until rpp_destroy, which stops and joins the thread; nobody else may call into
 * the source meanwhile. The decoded events wait in RPP_BLOCKS blocks of RPP_BLOCK events
 * (about 3 MiB), so the thread is never more than that far ahead. */
#ifndef CS_REPLAY_PREFETCH_H
#define CS_REPLAY_PREFETCH_H

#include <stddef.h>

#include "replay_future.h"

#define RPP_BLOCK  512
#define RPP_BLOCKS 6

typedef struct rpp_s rpp_t;

/* Wraps next(src); the thread starts at the first rpp_next. NULL on out of memory. */
rpp_t *rpp_new(rpf_next_fn next, void *src);
/* Stops the thread (it finishes the block it is decoding) and frees the blocks; NULL is a
 * no-op. The source is the caller's again afterwards. */
void rpp_destroy(rpp_t *p);

/* The next event, as next(src) would give it: 1 with *ev (and *reason, why), 0 at the end,
 * -1 with errstr on an input error or when the thread cannot start. After 0 or -1 it keeps
 * returning the same. An rpf_next_fn with rpp as its source. */
int rpp_next(void *rpp, ev_event_t *ev, ev_reason_t *reason, char *why, size_t why_size,
             char *errstr, size_t errstr_size);

#endif
