/* Replay's future bound by the log's own event time: a ring of read-ahead events, and the
 * confirmation rule for an event beyond watermark + events.max_future (replay_future.h). */
#include "replay_future.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rpf_item_s {
    ev_event_t ev;
    ev_reason_t reason;
    char why[256];
} rpf_item_t;

struct rpf_s {
    int64_t max_future_ms;
    rpf_item_t *ring; /* RPF_WINDOW + 1 slots */
    size_t head, n;
    int eof;
};

rpf_t *rpf_new(int64_t max_future_ms)
{
    rpf_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->max_future_ms = max_future_ms;
    if (max_future_ms > 0 && !(g->ring = calloc(RPF_WINDOW + 1, sizeof(*g->ring)))) {
        free(g);
        return NULL;
    }
    return g;
}

void rpf_destroy(rpf_t *g)
{
    if (!g)
        return;
    free(g->ring);
    free(g);
}

static rpf_item_t *at(rpf_t *g, size_t i)
{
    return &g->ring[(g->head + i) % (RPF_WINDOW + 1)];
}

/* Reads one more event into the ring; 1, 0 at the end, -1 on error. */
static int read_ahead(rpf_t *g, rpf_next_fn next, void *src, char *errstr, size_t errstr_size)
{
    if (g->eof)
        return 0;
    rpf_item_t *it = at(g, g->n);
    it->why[0] = '\0';
    int rc = next(src, &it->ev, &it->reason, it->why, sizeof(it->why), errstr, errstr_size);
    if (rc == 0)
        g->eof = 1;
    if (rc == 1)
        g->n++;
    return rc;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

int rpf_next(rpf_t *g, rpf_next_fn next, void *src, int64_t watermark_ms, ev_event_t *ev,
             ev_reason_t *reason, int *future, char *why, size_t why_size, char *errstr,
             size_t errstr_size)
{
    *future = 0;
    if (g->max_future_ms <= 0)
        return next(src, ev, reason, why, why_size, errstr, errstr_size);
    int64_t bound = add_sat(watermark_ms, g->max_future_ms);
    if (g->n == 0) {
        /* Fast path: nothing held, read straight into the caller's event. */
        if (g->eof)
            return 0;
        if (why_size > 0) /* a source says why only for a reject; the copy below reads it */
            why[0] = '\0';
        int rc = next(src, ev, reason, why, why_size, errstr, errstr_size);
        if (rc <= 0) {
            g->eof = rc == 0;
            return rc;
        }
        if (*reason != EV_OK || watermark_ms == INT64_MIN || ev->event_time_ms <= bound)
            return 1;
        rpf_item_t *first = at(g, 0);
        first->ev = *ev;
        first->reason = *reason;
        snprintf(first->why, sizeof(first->why), "%s", why);
        g->n = 1;
    }
    rpf_item_t *it = at(g, 0);
    if (it->reason == EV_OK && watermark_ms != INT64_MIN && it->ev.event_time_ms > bound) {
        /* A suspect: do the events after it live in its time (the log moved on: near it)
         * or still before it (a lone timestamp from the future)? Those already held count;
         * read on until RPF_CONFIRM of them are judged, the window is full or the log ends. */
        int64_t near_ms = add_sat(it->ev.event_time_ms, -g->max_future_ms);
        size_t near = 0, before = 0, i = 1;
        for (;;) {
            for (; i < g->n && near + before < RPF_CONFIRM; i++) {
                const rpf_item_t *o = at(g, i);
                if (o->reason != EV_OK)
                    continue;
                if (o->ev.event_time_ms >= near_ms)
                    near++;
                else
                    before++;
            }
            if (near + before >= RPF_CONFIRM || g->n > RPF_WINDOW)
                break;
            int rc = read_ahead(g, next, src, errstr, errstr_size);
            if (rc < 0)
                return -1;
            if (rc == 0)
                break;
        }
        /* Nothing after it (the log's last event) is no evidence against it. */
        if (before > near) {
            it->reason = EV_ERR_TIME_OUT_OF_WINDOW;
            snprintf(it->why, sizeof(it->why),
                     "event_time %lld is more than events.max_future (%lld ms) after the log's "
                     "watermark %lld and %zu of the %zu events after it are still before it "
                     "(replay bounds the future by the log's own event time)",
                     (long long)it->ev.event_time_ms, (long long)g->max_future_ms,
                     (long long)watermark_ms, before, near + before);
            *future = 1;
        }
    }
    *ev = it->ev;
    *reason = it->reason;
    snprintf(why, why_size, "%s", it->why);
    g->head = (g->head + 1) % (RPF_WINDOW + 1);
    g->n--;
    return 1;
}
