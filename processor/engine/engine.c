/* Ticks, eligibility, delayed labels and exactly-once prequential scoring (DESIGN.md
 * section 4). Nothing per snapshot is stored: a snapshot's features are recomputed from the
 * user's decayed state whenever it is scored or labelled, and two numbers per user
 * (scored, resolved and pending-positive ticks, see user.h) plus the engine's progress
 * decide who owns each one. */
#include "engine.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The operation in progress (eng_progress_t.op_kind). */
enum { OP_NONE = 0, OP_SWEEP = 1, OP_POSITIVES = 2 };

/* A threaded sweep's chunk: users visited, prepared together, then called in order. */
#define ENG_CHUNK 2048
/* Fewer snapshots than this per thread are prepared on the caller's thread alone. */
#define ENG_MIN_PER_THREAD 64

typedef struct eng_visit_s {
    const char *uid;
    user_rec_t *rec;
    int prepared; /* its snapshot was prepared (it had to be scored at visit time) */
} eng_visit_t;

struct eng_s {
    eng_params_t p;
    store_ops_t store;
    eng_sink_t sink;
    eng_progress_t prog;
    long budget_left; /* visits left of this batch's budget (max_visits > 0) */
    /* Threaded sweeps (a team of two or more and sink.prepare), else all NULL. */
    cs_pool_t *pool;    /* borrowed */
    eng_visit_t *chunk; /* ENG_CHUNK visits */
    size_t nchunk;
    float *xs;           /* ENG_CHUNK x FEAT_DIM feature rows */
    unsigned char *prep; /* ENG_CHUNK x sink.prep_bytes */
};

int64_t eng_tick_floor(int64_t t_ms, int64_t tick_ms)
{
    int64_t q = t_ms / tick_ms;
    if (t_ms % tick_ms != 0 && t_ms < 0)
        q--;
    return q * tick_ms;
}

int64_t eng_tick_after(int64_t t_ms, int64_t tick_ms)
{
    return eng_tick_floor(t_ms, tick_ms) + tick_ms;
}

eng_t *eng_new(const eng_params_t *params, const store_ops_t *store, const eng_sink_t *sink,
               char *errstr, size_t errstr_size)
{
    if (params->tick_ms <= 0 || params->horizon_ms <= 0 || params->lookback_ms <= 0 ||
        params->sweep_slice_ms < 0 || params->max_visits < 0) {
        snprintf(errstr, errstr_size,
                 "tick interval, horizon and lookback must be > 0, sweep slices >= 0");
        return NULL;
    }
    /* With W < tick and W < H at most one tick per user can wait for certainty (see
     * pending_positive_ms), which keeps the record small and the proof simple. */
    if (params->lateness_ms < 0 || params->lateness_ms >= params->tick_ms ||
        params->lateness_ms >= params->horizon_ms) {
        snprintf(errstr, errstr_size,
                 "allowed lateness must be >= 0 and below both the tick interval and the "
                 "horizon");
        return NULL;
    }
    eng_t *eng = calloc(1, sizeof(*eng));
    if (!eng) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    eng->p = *params;
    if (cs_pool_threads(params->pool) > 1 && sink->prepare && sink->prep_bytes > 0) {
        eng->pool = params->pool;
        eng->chunk = malloc(ENG_CHUNK * sizeof(*eng->chunk));
        eng->xs = malloc(ENG_CHUNK * FEAT_DIM * sizeof(*eng->xs));
        eng->prep = malloc(ENG_CHUNK * sink->prep_bytes);
        if (!eng->chunk || !eng->xs || !eng->prep) {
            eng_destroy(eng);
            snprintf(errstr, errstr_size, "out of memory");
            return NULL;
        }
    }
    eng->budget_left = params->max_visits;
    eng->store = *store;
    eng->sink = *sink;
    eng->prog.first_tick_ms = ENG_NO_TIME;
    eng->prog.swept_through_ms = ENG_NO_TIME;
    eng->prog.positives_next_ms = ENG_NO_TIME;
    eng->prog.watermark_ms = ENG_NO_TIME;
    eng->prog.op_kind = OP_NONE;
    eng->prog.op_tick_ms = ENG_NO_TIME;
    eng->prog.op_cursor_ms = ENG_NO_TIME;
    return eng;
}

void eng_destroy(eng_t *eng)
{
    if (!eng)
        return;
    free(eng->chunk);
    free(eng->xs);
    free(eng->prep);
    free(eng);
}

void eng_get_progress(const eng_t *eng, eng_progress_t *out)
{
    *out = eng->prog;
}

void eng_set_progress(eng_t *eng, const eng_progress_t *in)
{
    eng->prog = *in;
}

/* x(T) from the stored state. Exact when scoring (before any event after T is applied).
 * For a label it is recomputed later, and the state may hold a refund or cancel that came
 * after T (not activity, so the label stands): the learnt row then carries it, its reads
 * taken at that event's time (feat.h: reads before t_ref clamp). Measured small and left
 * (README, Backtest); replay's --snapshots-out writes the scored rows instead. */
static void emit_row(eng_t *eng, const char *uid, user_rec_t *rec, int64_t tick_ms, int y,
                     const float *x, const void *prep)
{
    eng_snapshot_t s = {
        .user_id = uid, .tick_ms = tick_ms, .x = x, .rec = rec, .y = y, .prep = prep};
    if (y < 0) {
        if (eng->sink.score)
            eng->sink.score(eng->sink.opaque, &s);
    } else if (eng->sink.label) {
        eng->sink.label(eng->sink.opaque, &s);
    }
}

static void emit(eng_t *eng, const char *uid, user_rec_t *rec, int64_t tick_ms, int y)
{
    float x[FEAT_DIM];
    feat_vector(&rec->feat, tick_ms, x);
    emit_row(eng, uid, rec, tick_ms, y, x, NULL);
}

static void scored(eng_t *eng, const char *uid, user_rec_t *rec, int64_t tick_ms)
{
    rec->scored_tick_ms = tick_ms;
    if (eng->store.touched)
        eng->store.touched(eng->store.opaque, uid, rec);
}

static void score(eng_t *eng, const char *uid, user_rec_t *rec, int64_t tick_ms)
{
    emit(eng, uid, rec, tick_ms, -1);
    scored(eng, uid, rec, tick_ms);
}

/* First tick in (after_ms, ...) that is also >= the engine's first tick. */
static int64_t first_tick_above(const eng_t *eng, int64_t after_ms)
{
    int64_t t = after_ms == ENG_NO_TIME ? eng->prog.first_tick_ms
                                        : eng_tick_after(after_ms, eng->p.tick_ms);
    return t < eng->prog.first_tick_ms ? eng->prog.first_tick_ms : t;
}

int eng_event(eng_t *eng, const ev_event_t *ev, user_rec_t **rec_out)
{
    const int64_t t = ev->event_time_ms, I = eng->p.tick_ms, L = eng->p.lookback_ms;
    if (eng->prog.swept_through_ms == ENG_NO_TIME) {
        /* Before the first sweep an earlier event (out of order) may still move the first
         * tick down; after it the tick grid is fixed. */
        int64_t first = eng_tick_after(t, I);
        if (eng->prog.first_tick_ms == ENG_NO_TIME || first < eng->prog.first_tick_ms)
            eng->prog.first_tick_ms = first;
    }
    user_rec_t *rec = eng->store.get(eng->store.opaque, ev->user_id, ev->user_id_len);
    const int64_t last_act = feat_last_activity_ms(&rec->feat);

    /* 1. Score the snapshots this event is the first to reach: eligible ticks up to t not
     * scored yet and after the last sweep (which scored every user eligible then; no
     * accepted event can land before a swept tick, so its eligibility cannot change). */
    if (last_act != ENG_NO_TIME) {
        int64_t from = last_act; /* eligibility needs an activity strictly before T */
        if (rec->scored_tick_ms > from)
            from = rec->scored_tick_ms;
        if (eng->prog.swept_through_ms != ENG_NO_TIME && eng->prog.swept_through_ms > from)
            from = eng->prog.swept_through_ms;
        int64_t hi = last_act + L < t ? last_act + L : t;
        for (int64_t T = first_tick_above(eng, from); T <= hi; T += I)
            score(eng, ev->user_id, rec, T);
    }

    /* 2. A pending positive (see user.h) is settled by any later-arriving event: an
     * activity inside [U, U+H) makes it a negative; an event far enough past U+H that no
     * event inside the window can still arrive confirms it. */
    const int64_t U = rec->pending_positive_ms, W = eng->p.lateness_ms;
    if (U != ENG_NO_TIME) {
        if (ev_is_activity(ev->type) && t >= U && t < U + eng->p.horizon_ms) {
            emit(eng, ev->user_id, rec, U, 0);
            rec->pending_positive_ms = ENG_NO_TIME;
        } else if (t - W >= U + eng->p.horizon_ms) {
            emit(eng, ev->user_id, rec, U, 1);
            rec->pending_positive_ms = ENG_NO_TIME;
        }
    }

    /* 3. An activity resolves as negative every tick it makes eligible-and-active: with
     * lo/hi the older/newer of (t, last activity), ticks T in (lo, lo + L] up to hi. A late
     * event (t < last activity) can make ticks eligible that were not before; those were
     * never scored (no sweep has reached them, t being within the lateness), so they are
     * scored here too. resolved_tick_ms keeps every tick from being labelled twice. */
    if (ev_is_activity(ev->type) && last_act != ENG_NO_TIME) {
        int64_t lo = t < last_act ? t : last_act, newest = t < last_act ? last_act : t;
        int64_t hi = lo + L < newest ? lo + L : newest;
        int64_t from = lo;
        if (rec->resolved_tick_ms != ENG_NO_TIME && rec->resolved_tick_ms > from)
            from = rec->resolved_tick_ms;
        int late = t < last_act;
        for (int64_t T = first_tick_above(eng, from); T <= hi; T += I) {
            int y = newest >= T + eng->p.horizon_ms;
            /* y = 1: no activity seen in [T, T+H). Normally the resolution sweep at T + H
             * emits it; when this batch brought events past T + H before that sweep ran, the
             * user's last activity has moved and the sweep would miss it, so it is emitted
             * here: at once when no event inside the window can still arrive, else parked
             * as the user's pending positive. */
            if (y && eng->prog.positives_next_ms != ENG_NO_TIME && T < eng->prog.positives_next_ms)
                continue; /* the sweep already emitted it */
            if (y && newest - W < T + eng->p.horizon_ms) {
                rec->pending_positive_ms = T;
                continue;
            }
            if (late && T > rec->scored_tick_ms)
                score(eng, ev->user_id, rec, T);
            emit(eng, ev->user_id, rec, T, y);
            rec->resolved_tick_ms = T;
        }
    }

    const unsigned days = feat_lifetime_active_days(&rec->feat);
    feat_apply(&rec->feat, ev);
    if (eng->store.touched)
        eng->store.touched(eng->store.opaque, ev->user_id, rec);
    if (rec_out)
        *rec_out = rec;
    return feat_lifetime_active_days(&rec->feat) > days;
}

typedef struct sweep_ctx_s {
    eng_t *eng;
    int64_t tick_ms;
    int positive;
    long visits; /* users visited (the bounded sweeps' budget) */
} sweep_ctx_t;

static void pending_visit(void *opaque, const char *uid, user_rec_t *rec)
{
    sweep_ctx_t *c = opaque;
    c->visits++;
    if (c->eng->sink.visited)
        c->eng->sink.visited(c->eng->sink.opaque, uid, rec, c->tick_ms + c->eng->p.horizon_ms);
    if (rec->pending_positive_ms != c->tick_ms)
        return;
    emit(c->eng, uid, rec, c->tick_ms, 1);
    rec->pending_positive_ms = ENG_NO_TIME;
    if (c->eng->store.touched)
        c->eng->store.touched(c->eng->store.opaque, uid, rec);
}

static void sweep_visit(void *opaque, const char *uid, user_rec_t *rec)
{
    sweep_ctx_t *c = opaque;
    c->visits++;
    if (c->eng->sink.visited)
        c->eng->sink.visited(c->eng->sink.opaque, uid, rec,
                             c->positive ? c->tick_ms + c->eng->p.horizon_ms : c->tick_ms);
    if (c->positive) {
        if (rec->resolved_tick_ms >= c->tick_ms)
            return; /* an event of this batch already resolved it */
        emit(c->eng, uid, rec, c->tick_ms, 1);
        rec->resolved_tick_ms = c->tick_ms;
        if (c->eng->store.touched)
            c->eng->store.touched(c->eng->store.opaque, uid, rec);
    } else if (rec->scored_tick_ms < c->tick_ms) {
        score(c->eng, uid, rec, c->tick_ms); /* else an event already scored it */
    }
}

/* ---- Threaded sweeps: a chunk of visits is prepared on the team, then called in order.
 * Equivalent to sweep_visit one by one: a visit's calls change only its own user's record
 * and the sink's bookkeeping, never what a later visit's prepare reads (engine.h: the
 * pipeline's reads the record's features, the model, which a sweep does not train, and
 * the alert policy's gates), so whether a user is to be scored, its x(T) and the prepared
 * part are the same before the chunk's calls as at its own visit. */
static void prepare_rows(void *ctx, size_t lo, size_t hi)
{
    const sweep_ctx_t *c = ctx;
    eng_t *eng = c->eng;
    for (size_t i = lo; i < hi; i++) {
        const eng_visit_t *v = &eng->chunk[i];
        if (!v->prepared)
            continue;
        float *x = eng->xs + i * FEAT_DIM;
        feat_vector(&v->rec->feat, c->tick_ms, x);
        eng_snapshot_t s = {
            .user_id = v->uid, .tick_ms = c->tick_ms, .x = x, .rec = v->rec, .y = -1};
        eng->sink.prepare(eng->sink.opaque, &s, eng->prep + i * eng->sink.prep_bytes);
    }
}

static void sweep_flush(sweep_ctx_t *c)
{
    eng_t *eng = c->eng;
    const int64_t T = c->tick_ms;
    for (size_t i = 0; i < eng->nchunk; i++)
        eng->chunk[i].prepared = eng->chunk[i].rec->scored_tick_ms < T;
    cs_pool_for(eng->pool, eng->nchunk, ENG_MIN_PER_THREAD, prepare_rows, c);
    for (size_t i = 0; i < eng->nchunk; i++) {
        const eng_visit_t *v = &eng->chunk[i];
        if (eng->sink.visited)
            eng->sink.visited(eng->sink.opaque, v->uid, v->rec, T);
        if (!v->prepared)
            continue; /* an event already scored it (a visit's calls never unscore one) */
        emit_row(eng, v->uid, v->rec, T, -1, eng->xs + i * FEAT_DIM,
                 eng->prep + i * eng->sink.prep_bytes);
        scored(eng, v->uid, v->rec, T);
    }
    eng->nchunk = 0;
}

static void sweep_collect(void *opaque, const char *uid, user_rec_t *rec)
{
    sweep_ctx_t *c = opaque;
    eng_t *eng = c->eng;
    c->visits++;
    eng->chunk[eng->nchunk++] = (eng_visit_t){.uid = uid, .rec = rec};
    if (eng->nchunk == ENG_CHUNK)
        sweep_flush(c);
}

/* Completes the current operation's bookkeeping. */
static void op_done(eng_t *eng)
{
    int64_t T = eng->prog.op_tick_ms;
    if (eng->prog.op_kind == OP_SWEEP) {
        eng->prog.swept_through_ms = T;
        if (eng->prog.positives_next_ms == ENG_NO_TIME)
            eng->prog.positives_next_ms = T;
        eng->prog.op_kind = OP_NONE;
        if (eng->sink.tick_done)
            eng->sink.tick_done(eng->sink.opaque, T);
    } else {
        eng->prog.positives_next_ms = T + eng->p.tick_ms;
        eng->prog.op_kind = OP_NONE;
    }
}

/* Runs slices of the current operation while the budget of user visits lasts (budget < 0:
 * no limit; a slice is never cut, so one slice may overdraw it).
 * A sweep at T visits [T-L, T) by slices of last-activity time; a positive resolution of T
 * visits the same range (a user whose last activity is still in [T-L, T) at T + H had none
 * in [T, T+H)) and then, as one last slice, the parked positives of T: users whose activity
 * at t >= T+H came within the lateness of T+H, so their last activity is in [T+H, T+H+W).
 * Slices partition the range by last activity, so visiting them in order is the same walk
 * as one whole range; users an event moves meanwhile are guarded by their record (scored /
 * resolved tick), so nothing is scored or labelled twice. */
/* A slice costs its users plus ENG_SLICE_COST: an empty slice still is one store round
 * trip, so a catch-up over many empty slices stays bounded per advance too. */
#define ENG_SLICE_COST 50

static void spend(long *budget, const sweep_ctx_t *c, long before)
{
    long cost = c->visits - before + ENG_SLICE_COST;
    if (*budget > 0)
        *budget = cost >= *budget ? 0 : *budget - cost;
}

static void op_step(eng_t *eng, long *budget)
{
    const int64_t T = eng->prog.op_tick_ms, hi = T;
    const int positive = eng->prog.op_kind == OP_POSITIVES;
    sweep_ctx_t c = {.eng = eng, .tick_ms = T, .positive = positive};
    while (*budget != 0 && eng->prog.op_cursor_ms < hi) {
        int64_t lo = eng->prog.op_cursor_ms, to = hi;
        if (eng->p.sweep_slice_ms > 0 && hi - lo > eng->p.sweep_slice_ms)
            to = lo + eng->p.sweep_slice_ms;
        long before = c.visits;
        if (eng->pool && !positive) {
            eng->store.range(eng->store.opaque, lo, to, sweep_collect, &c);
            sweep_flush(&c);
        } else {
            eng->store.range(eng->store.opaque, lo, to, sweep_visit, &c);
        }
        eng->prog.op_cursor_ms = to;
        spend(budget, &c, before);
    }
    if (eng->prog.op_cursor_ms < hi)
        return;
    if (positive && eng->p.lateness_ms > 0) {
        if (*budget == 0)
            return;
        const int64_t end = T + eng->p.horizon_ms;
        long before = c.visits;
        eng->store.range(eng->store.opaque, end, end + eng->p.lateness_ms, pending_visit, &c);
        spend(budget, &c, before);
    }
    op_done(eng);
}

static void op_start(eng_t *eng, int kind, int64_t T)
{
    eng->prog.op_kind = kind;
    eng->prog.op_tick_ms = T;
    eng->prog.op_cursor_ms = T - eng->p.lookback_ms;
    if (kind == OP_SWEEP && eng->sink.tick_start)
        eng->sink.tick_start(eng->sink.opaque, T);
}

/* Runs sweeps of ticks <= limit_ms and positive resolutions with T + H <= pos_limit_ms,
 * interleaved in time order (a resolution at T+H before a sweep at the same instant, so the
 * model has learnt what was known by then), within a budget of user visits (< 0: none). */
static void catch_up(eng_t *eng, int64_t limit_ms, int64_t pos_limit_ms, long *budget)
{
    if (eng->prog.first_tick_ms == ENG_NO_TIME)
        return;
    for (;;) {
        if (eng->prog.op_kind != OP_NONE) {
            op_step(eng, budget);
            if (eng->prog.op_kind != OP_NONE)
                return; /* out of budget: the next batch goes on from the cursor */
            continue;
        }
        int64_t next_sweep = eng->prog.swept_through_ms == ENG_NO_TIME
                                 ? eng->prog.first_tick_ms
                                 : eng->prog.swept_through_ms + eng->p.tick_ms;
        int64_t P = eng->prog.positives_next_ms;
        int pos_ready = P != ENG_NO_TIME && P <= eng->prog.swept_through_ms &&
                        P + eng->p.horizon_ms <= pos_limit_ms;
        int sweep_ready = next_sweep <= limit_ms;
        if (pos_ready && (!sweep_ready || P + eng->p.horizon_ms <= next_sweep))
            op_start(eng, OP_POSITIVES, P);
        else if (sweep_ready)
            op_start(eng, OP_SWEEP, next_sweep);
        else
            return;
    }
}

static void advance(eng_t *eng, int64_t watermark_ms)
{
    /* The watermark never moves back; work left over from earlier batches goes on even
     * when it does not move. */
    if (eng->prog.watermark_ms == ENG_NO_TIME || watermark_ms > eng->prog.watermark_ms)
        eng->prog.watermark_ms = watermark_ms;
    long budget = eng->p.max_visits > 0 ? eng->budget_left : -1;
    catch_up(eng, eng->prog.watermark_ms, eng->prog.watermark_ms, &budget);
    if (eng->p.max_visits > 0)
        eng->budget_left = budget > 0 ? budget : 0;
}

void eng_advance_mark(eng_t *eng, int64_t watermark_ms)
{
    advance(eng, watermark_ms);
}

void eng_advance(eng_t *eng, int64_t watermark_ms)
{
    advance(eng, watermark_ms);
    eng->budget_left = eng->p.max_visits; /* the next batch's */
}

void eng_finish(eng_t *eng, int64_t end_ms)
{
    long unlimited = -1;
    catch_up(eng, end_ms - 1, end_ms, &unlimited);
    if (eng->prog.watermark_ms == ENG_NO_TIME || eng->prog.watermark_ms < end_ms)
        eng->prog.watermark_ms = end_ms;
}

_Static_assert(sizeof(((store_progress_t *)0)->b) == 7 * 8, "progress: 7 int64");

void eng_progress_pack(const eng_progress_t *pr, store_progress_t *out)
{
    const int64_t v[7] = {pr->first_tick_ms, pr->swept_through_ms, pr->positives_next_ms,
                          pr->watermark_ms,  pr->op_kind,          pr->op_tick_ms,
                          pr->op_cursor_ms};
    for (int i = 0; i < 7; i++)
        for (int b = 0; b < 8; b++)
            out->b[8 * i + b] = (uint8_t)((uint64_t)v[i] >> (8 * b));
}

int eng_progress_unpack(eng_progress_t *pr, const store_progress_t *in)
{
    int64_t v[7];
    for (int i = 0; i < 7; i++) {
        uint64_t u = 0;
        for (int b = 0; b < 8; b++)
            u |= (uint64_t)in->b[8 * i + b] << (8 * b);
        v[i] = (int64_t)u;
    }
    if (v[4] < OP_NONE || v[4] > OP_POSITIVES)
        return -1;
    *pr = (eng_progress_t){v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    return 0;
}
