/* JSON lines events for replay: one flat object per line with the Event fields
 *   {"user_id": "u1", "event_time": 1704189600000, "event_type": "purchase", "amount": 10,
 *    "item_id": null, "category": "toys", "channel": "web"}
 * event_time is epoch milliseconds or an ISO-8601 UTC string ("2024-01-02T10:00:00Z",
 * fractional seconds allowed); user_id may also be a JSON integer; unknown event types become
 * "other"; unknown keys are ignored; nested values are rejected. */
#ifndef CS_JSONL_H
#define CS_JSONL_H

#include <stddef.h>

#include "codec.h"
#include "event.h"

/* Parses one line (not NUL-terminated: len bytes) into *ev. Returns EV_OK or the reject
 * reason with a detail in why (EV_ERR_UNDECODABLE for malformed JSON). */
ev_reason_t jl_parse_event(const char *line, size_t len, ev_event_t *ev, char *why,
                           size_t why_size);

typedef struct jl_reader_s jl_reader_t;
/* Opens a JSON lines file (gzip read transparently). NULL with errstr on failure. */
jl_reader_t *jl_reader_open(const char *path, char *errstr, size_t errstr_size);
/* 1 with *ev and *reason (rejects are returned, not skipped, with why), 0 at the end, -1 on
 * a read error. Blank lines are skipped. *line_no is the 1-based line of the event. */
int jl_reader_next(jl_reader_t *r, ev_event_t *ev, ev_reason_t *reason, char *why, size_t why_size,
                   long *line_no);
void jl_reader_close(jl_reader_t *r);

#endif
