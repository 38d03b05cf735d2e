/* Replay's future bound (issue 11, item 10): a log's own event time bounds its future, not
 * the wall clock. An event more than events.max_future after the watermark is held while
 * the events after it are read ahead: when most of the next RPF_CONFIRM events are near
 * its time too (the log really moved on: a quiet spell, the Christmas pause of Online
 * Retail, or just a sparse log) it is applied; when most are still before it, it is a lone
 * timestamp from the future and is rejected (time_out_of_window), so one row dated 2026
 * in a 2024 log cannot move every tick. The log's last event has nothing after it to be
 * judged by and is applied. */
#ifndef CS_REPLAY_FUTURE_H
#define CS_REPLAY_FUTURE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* Events read ahead at most to judge one suspect, and how many valid ones are judged
 * ("near": at most events.max_future before the suspect; else "before"). */
#define RPF_WINDOW  1000
#define RPF_CONFIRM 10

/* The wrapped source: 1 with *ev, 0 at the end, -1 on a corrupt input (errstr set). */
typedef int (*rpf_next_fn)(void *src, ev_event_t *ev, ev_reason_t *reason, char *why,
                           size_t why_size, char *errstr, size_t errstr_size);

typedef struct rpf_s rpf_t;

/* max_future_ms <= 0 disables the bound (every event passes through unchanged). NULL on
 * out of memory. */
rpf_t *rpf_new(int64_t max_future_ms);
/* Frees the guard and the events it holds; NULL is a no-op. */
void rpf_destroy(rpf_t *g);

/* The next event of next(src), in input order. watermark_ms is the replay's watermark now
 * (INT64_MIN before the first event: nothing is "future" then). An unconfirmed future event
 * comes back with *reason = EV_ERR_TIME_OUT_OF_WINDOW, why saying so, and *future = 1.
 * Returns like next(). */
int rpf_next(rpf_t *g, rpf_next_fn next, void *src, int64_t watermark_ms, ev_event_t *ev,
             ev_reason_t *reason, int *future, char *why, size_t why_size, char *errstr,
             size_t errstr_size);

#endif
