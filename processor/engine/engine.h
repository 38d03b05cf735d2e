/* The event-time engine of DESIGN.md section 4: ticks, eligibility, delayed labels and the
 * exactly-once scoring of every eligible snapshot. It owns no user storage: records come
 * from a user store (features/store.h) and snapshots go out through a sink (scoring, training,
 * outputs). Live `run` and `replay` drive the same engine.
 *
 * Invariants (proved by tests/unit/test_engine.c against a brute-force oracle):
 *  - each snapshot (user, T) with an activity in [T-L, T) is passed to sink->score exactly
 *    once, with x(T) from the events applied so far, all of them before T when events
 *    arrive no later than the allowed lateness;
 *  - each such snapshot whose label is known is passed to sink->label exactly once:
 *    y = 0 at the user's first activity in [T, T+H), y = 1 when the watermark passes T+H;
 *  - at the end of a replay, eng_finish() scores the remaining ticks before the end; their
 *    labels stay unknown (censored): a sink tells them apart as scored but never labelled. */
#ifndef CS_ENGINE_H
#define CS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "pool.h"
#include "store.h"
#include "user.h"

#define ENG_NO_TIME INT64_MIN

typedef struct eng_params_s {
    int64_t tick_ms;     /* tick interval; ticks are multiples of it since the epoch */
    int64_t horizon_ms;  /* H: label horizon */
    int64_t lookback_ms; /* L: eligibility lookback */
    int64_t lateness_ms; /* W: an event is never older than (max event time seen - W);
                            0 <= W < tick and W < H */
    /* Bounded sweeps: a tick's sweep (and positive resolution) visits its users by slices of
     * last-activity time sweep_slice_ms wide (0 = the whole range at once), and an
     * eng_advance stops starting new slices once its slices cost max_visits (users visited
     * plus 50 a slice; 0 = no limit), so event batches never wait behind a sweep of
     * millions of users; the rest goes on at the next advance. */
    int64_t sweep_slice_ms;
    int max_visits;
    /* The team that prepares a sweep's snapshots (sink.prepare), borrowed: it must outlive
     * the engine, and engines sharing one must not sweep at the same time. NULL, or a team
     * of one: every snapshot is prepared in its score call, on the caller's thread. */
    cs_pool_t *pool;
} eng_params_t;

/* One snapshot handed to the sink. Pointers are valid during the callback only. */
typedef struct eng_snapshot_s {
    const char *user_id;
    int64_t tick_ms;
    const float *x;  /* FEAT_DIM features at tick_ms */
    user_rec_t *rec; /* the user's record (the sink may update alert fields) */
    int y;           /* label callbacks: 0 or 1; score callbacks: -1 */
    /* Score callbacks of a sweep prepared on the team (eng_params_t.pool): what
     * sink.prepare wrote for this snapshot (sink.prep_bytes). NULL otherwise. */
    const void *prep;
} eng_snapshot_t;

/* Where snapshots go. Callbacks may be NULL. */
typedef struct eng_sink_s {
    void *opaque;
    /* An eligible snapshot, scored exactly once (prequential: before its label is known). */
    void (*score)(void *opaque, const eng_snapshot_t *s);
    /* A snapshot with its label, exactly once. */
    void (*label)(void *opaque, const eng_snapshot_t *s);
    /* Tick T's sweep is about to start (outside any store visit, so the sink may read the
     * store: the BG/NBD refit reads the population here). Once per tick and engine; a
     * bounded sweep resumed after a restart does not start again. */
    void (*tick_start)(void *opaque, int64_t tick_ms);
    /* Tick T's sweep is complete (every snapshot of T that the sweep owns was scored). */
    void (*tick_done)(void *opaque, int64_t tick_ms);
    /* A sweep or positive resolution visited the user, at a moment when no event before
     * now_ms can still arrive (the sweep's tick, or the resolved tick + H). Every user whose
     * last activity is in (now - H - L, now) is visited at some tick, so this is where
     * bookkeeping that waits on the watermark (pending alert outcomes) is settled. The sink
     * calls store->touched itself when it changes the record. */
    void (*visited)(void *opaque, const char *user_id, user_rec_t *rec, int64_t now_ms);
    /* Optional: the part of scoring that only reads (the snapshot, its record, the model) and
     * writes prep_bytes of result to prep. With a team of threads (eng_params_t.pool) a sweep
     * visits its users in chunks: it prepares every snapshot of the chunk to score, concurrently on
     * the team, then makes the chunk's calls (visited, score with s->prep set) in the order a
     * one-thread sweep makes them. So prepare must be safe to run concurrently with itself
     * and must not depend on what the chunk's calls change; in return the sink's results do
     * not depend on the number of threads. The records of a chunk must stay valid until its
     * calls are made: the store contract (store.h) keeps them until the next get. */
    void (*prepare)(void *opaque, const eng_snapshot_t *s, void *prep);
    size_t prep_bytes;
} eng_sink_t;

/* The engine's own progress, persisted with the model and the offsets so a restart resumes
 * exactly where the last commit left (plain values, copied by the caller). */
typedef struct eng_progress_s {
    int64_t first_tick_ms;     /* ENG_NO_TIME until the first event */
    int64_t swept_through_ms;  /* last tick whose scoring sweep ran; ENG_NO_TIME if none */
    int64_t positives_next_ms; /* next tick whose positives are resolved at tick + H */
    int64_t watermark_ms;      /* ENG_NO_TIME until the first advance */
    /* The sweep or positive resolution in progress (bounded sweeps): kind 0 none, 1 sweep,
     * 2 positives; its tick; the lower bound of its next slice. */
    int64_t op_kind, op_tick_ms, op_cursor_ms;
} eng_progress_t;

/* Packs / unpacks the progress (7 little-endian int64, in the order above) for stores.
 * Unpack: -1 on an unknown kind. */
void eng_progress_pack(const eng_progress_t *pr, store_progress_t *out);
int eng_progress_unpack(eng_progress_t *pr, const store_progress_t *in);

typedef struct eng_s eng_t;

/* Creates an engine. Copies params; store and sink are borrowed and must outlive it.
 * Returns NULL with errstr set on invalid params (non-positive durations). */
eng_t *eng_new(const eng_params_t *params, const store_ops_t *store, const eng_sink_t *sink,
               char *errstr, size_t errstr_size);
void eng_destroy(eng_t *eng);

/* Applies one validated event: scores the user's pending snapshots, resolves negatives,
 * then updates the user's features. Does not move the watermark. */
/* Returns 1 when the event is an activity on a UTC day its user had no activity on yet (an
 * active user-day: what the calendar of open days counts), else 0. *rec_out (when not NULL)
 * gets the user's record, valid until the store's next get (store.h). */
int eng_event(eng_t *eng, const ev_event_t *ev, user_rec_t **rec_out);

/* Moves the watermark forward (never back) to watermark_ms and runs, in time order, the
 * tick sweeps at T <= watermark and the positive resolutions at T + H <= watermark, within
 * the batch's visit budget (params.max_visits); what is left of the work goes on at the next
 * call. This is a batch's end: the budget is full again after it. */
void eng_advance(eng_t *eng, int64_t watermark_ms);
/* The same at a tick mark within a batch (run, batch.h): on what is left of the batch's
 * budget, which the batch's end (eng_advance) then shares, so ending a batch at every tick
 * it crosses does not multiply the sweep work one batch may do. */
void eng_advance_mark(eng_t *eng, int64_t watermark_ms);

/* End of a replay: the input ends at end_ms (exclusive; the end of the last event's UTC day).
 * Sweeps every tick T < end_ms and resolves every positive with T + H <= end_ms. */
void eng_finish(eng_t *eng, int64_t end_ms);

void eng_get_progress(const eng_t *eng, eng_progress_t *out);
void eng_set_progress(eng_t *eng, const eng_progress_t *in);

/* Tick arithmetic. Largest multiple of tick_ms <= t_ms (floor, also for negative times). */
int64_t eng_tick_floor(int64_t t_ms, int64_t tick_ms);
/* The first tick strictly after t_ms. */
int64_t eng_tick_after(int64_t t_ms, int64_t tick_ms);

#endif
