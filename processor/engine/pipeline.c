/* Pipeline: engine sink -> predictor, and the caller's hooks. */
#include "pipeline.h"

#include "msort.h"
#include "grow.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct pl_s {
    eng_t *eng;
    pred_t *pred; /* owned; its model is borrowed */
    mj_t journal; /* pl_set_journaling */
    int journaling;
    alert_policy_t *policy; /* borrowed, NULL = no alerts */
    store_ops_t store;
    pl_hooks_t hooks;
    int64_t horizon_ms, lookback_ms;
    int64_t outcome_window_ms;   /* outcome.window */
    int64_t lateness_ms;         /* events.allowed_lateness */
    int64_t pop_tick_ms;         /* the tick being refitted (pop_visit's reference time) */
    int pop_recent;              /* model.bgnbd_population = recent */
    bgnbd_table_t *pop;          /* the BG/NBD refit's population table, reused every tick */
    ex_summary_t *rows;          /* its rows before sorting */
    const feat_state_t **pop_st; /* the users visited, whose rows they are */
    size_t nrows, cap;
    ex_summary_t *sort_tmp; /* sort_summaries' scratch, reused every tick */
    size_t sort_cap;
    int oom;
};

int pl_is_strong_signal(ev_type_t t)
{
    return t == EV_SUBSCRIPTION_CANCEL || t == EV_REFUND || t == EV_SUPPORT_TICKET;
}

/* Hands a decided outcome (or a repeat) to the hook, named by the policy's action. */
static void outcome_out(pl_t *pl, const char *uid, oc_result_t *r)
{
    r->action = alert_policy_action(pl->policy, r->seg, r->bucket, r->kind, r->arch);
    if (pl->hooks.outcome)
        pl->hooks.outcome(pl->hooks.opaque, uid, r);
}

/* An alert fired: its outcome opens in the user's record (or it is a repeat). An event has
 * been seen at created_at or later (the tick swept, the event that scored it), so no event
 * before created_at - lateness can still come: an open window that closed before that is
 * decided first (not retained), and the new alert is no repeat of it. */
static void outcome_open(pl_t *pl, const char *uid, user_rec_t *rec, const alert_t *a)
{
    int arch = ALERT_ARCH_NONE;
    char label[8];
    oc_result_t old;
    if (oc_settle(rec, a->created_at_ms - pl->lateness_ms, pl->outcome_window_ms, &old))
        outcome_out(pl, uid, &old);
    if (a->segment_id < 0 ||
        !model_segment_name(pred_model(pl->pred), a->segment_id, &arch, label, sizeof label))
        arch = ALERT_ARCH_NONE;
    oc_result_t r;
    if (oc_start(rec, a, (alert_archetype_t)arch, &r) == 0)
        outcome_out(pl, uid, &r);
    else if (pl->store.touched)
        pl->store.touched(pl->store.opaque, uid, rec);
}

static alert_input_t policy_input(const pl_t *pl, const char *uid, user_rec_t *rec,
                                  const alert_trigger_t *trig, int64_t t_ms, float p, int seg,
                                  const float *z, const alert_prep_t *prep)
{
    return (alert_input_t){.user_id = uid,
                           .trigger = *trig,
                           .event_time_ms = t_ms,
                           .p = p,
                           .seg = seg,
                           .z = z,
                           .state = &rec->feat,
                           .model = pred_model(pl->pred),
                           .prep = prep};
}

/* Runs the policy on one scoring (prep: alert_policy_prepare's for it, or NULL); an alert
 * marks the record dirty (its cooldown moved). */
static void consider(pl_t *pl, const char *uid, user_rec_t *rec, const alert_trigger_t *trig,
                     int64_t t_ms, float p, int seg, const float *z, const alert_prep_t *prep)
{
    if (!pl->policy)
        return;
    alert_t a;
    alert_input_t in = policy_input(pl, uid, rec, trig, t_ms, p, seg, z, prep);
    int rc = alert_policy_consider(pl->policy, &in, &a);
    if (rc < 0) {
        pl->oom = 1;
        return;
    }
    if (rc == 1) {
        if (pl->store.touched)
            pl->store.touched(pl->store.opaque, uid, rec);
        outcome_open(pl, uid, rec, &a);
        if (pl->hooks.alert)
            pl->hooks.alert(pl->hooks.opaque, &a);
    }
}

/* A sweep visit: no event before now_ms can still come, so a window closed before it is
 * decided (not retained). */
static void on_visited(void *opaque, const char *uid, user_rec_t *rec, int64_t now_ms)
{
    pl_t *pl = opaque;
    oc_result_t r;
    if (!pl->policy || !oc_settle(rec, now_ms, pl->outcome_window_ms, &r))
        return;
    if (pl->store.touched)
        pl->store.touched(pl->store.opaque, uid, rec);
    outcome_out(pl, uid, &r);
}

/* A snapshot's scores: the engine's sink.prepare (read-only, run concurrently by threaded
 * sweeps), or on_score's own call. */
typedef struct scored_s {
    float p;
    int seg;
    float z[FEAT_DIM];
    ex_scores_t ex;
    alert_prep_t alert; /* the policy's read-only part (valid only on the team's path) */
} scored_t;

static const alert_trigger_t *tick_trigger(int64_t tick_ms, alert_trigger_t *t)
{
    *t = (alert_trigger_t){.is_event = 0, .tick_ms = tick_ms};
    return t;
}

static void score_snapshot(const pl_t *pl, const eng_snapshot_t *s, scored_t *r)
{
    ex_summary_t sum;
    ex_summary_of(model_experts(pred_model(pl->pred)), &s->rec->feat, s->tick_ms, &sum);
    r->p = pred_score(pl->pred, s->x, &sum, &r->seg, r->z, &r->ex);
    r->alert.valid = 0;
}

/* The engine's sink.prepare: the scores and, with a policy, its read-only part. */
static void on_prepare(void *opaque, const eng_snapshot_t *s, void *out)
{
    const pl_t *pl = opaque;
    scored_t *r = out;
    score_snapshot(pl, s, r);
    if (pl->policy) {
        alert_trigger_t trig;
        alert_input_t in = policy_input(pl, s->user_id, s->rec, tick_trigger(s->tick_ms, &trig),
                                        s->tick_ms, r->p, r->seg, r->z, NULL);
        alert_policy_prepare(pl->policy, &in, &r->alert);
    }
}

static void on_score(void *opaque, const eng_snapshot_t *s)
{
    pl_t *pl = opaque;
    scored_t own;
    const scored_t *r = s->prep;
    if (!r) {
        score_snapshot(pl, s, &own);
        r = &own;
    }
    if (pl->hooks.scored)
        pl->hooks.scored(pl->hooks.opaque, s, r->p, r->seg, &r->ex);
    alert_trigger_t trig;
    consider(pl, s->user_id, s->rec, tick_trigger(s->tick_ms, &trig), s->tick_ms, r->p, r->seg,
             r->z, &r->alert);
}

/* The policy reaches user state through the store (top-percent cooldowns at tick_done). */
static feat_state_t *acc_state(void *opaque, const char *uid)
{
    pl_t *pl = opaque;
    user_rec_t *rec = pl->store.get(pl->store.opaque, uid, strlen(uid));
    return rec ? &rec->feat : NULL;
}

_Static_assert(offsetof(user_rec_t, feat) == 0, "acc_touched maps a state to its record");

static void acc_touched(void *opaque, const char *uid, feat_state_t *st)
{
    pl_t *pl = opaque;
    if (pl->store.touched) /* feat is the record's first member */
        pl->store.touched(pl->store.opaque, uid, (user_rec_t *)(void *)st);
}

static void on_label(void *opaque, const eng_snapshot_t *s)
{
    pl_t *pl = opaque;
    /* Prequential metrics kept with the model: the label is scored before it is learnt. */
    ex_summary_t sum;
    ex_summary_of(model_experts(pred_model(pl->pred)), &s->rec->feat, s->tick_ms, &sum);
    if (pl->hooks.prequential_metrics)
        model_prequential(pred_model(pl->pred),
                          (double)pred_score(pl->pred, s->x, &sum, NULL, NULL, NULL), s->y);
    if (pl->hooks.labelled)
        pl->hooks.labelled(pl->hooks.opaque, s);
    if (pred_label(pl->pred, s->tick_ms, s->x, &sum, s->y) != 0)
        pl->oom = 1;
}

/* ---- BG/NBD population refit ----
 * At the start of tick T's sweep the population is every user of this pipeline's store with
 * an activity before T (model.bgnbd_population = all, the default), or only those whose last
 * activity is in [T - H - L, T) (= recent: the users this tick's sweep and the positive
 * resolution of T - H visit anyway, so the cost stays O(recently active users) per tick).
 * BG/NBD's likelihood is that of the whole cohort: leaving out the users quiet for longer
 * keeps exactly those who dropped out away from the fit, and its drop-out estimate falls
 * toward 0. Measured (`bench/btyd_sim.py`, weekly ticks, 5,000 users, 546 days): on the
 * sparse CDNOW-fit population `recent` fitted r 1.51, alpha 140 d, a 12.1, b 8676 against the
 * true 0.243, 30.9, 0.793, 2.426 and its score sat 0.009 / 0.011 (pooled / second half) below
 * the true-parameter oracle; `all` fits r 0.253, alpha 33.2, a 0.801, b 2.282 and sits within
 * 0.001. On the shared logs and their cuts the two differ by at most 0.004 (README). Rows are
 * sorted before they enter the table, so the fit does not depend on the store's visiting
 * order (memory and Redis replays give the same bits). */
static void pop_visit(void *ctx, const char *uid, user_rec_t *rec)
{
    pl_t *pl = ctx;
    (void)uid;
    if (pl->oom)
        return;
    if (CS_GROW2(pl->rows, pl->pop_st, pl->cap, pl->nrows + 1, 1024) != 0) {
        pl->oom = 1;
        return;
    }
    pl->pop_st[pl->nrows++] = &rec->feat;
}

/* The visited users' summaries, on the team (ex_summary_of only reads). */
static void pop_summaries(void *ctx, size_t lo, size_t hi)
{
    pl_t *pl = ctx;
    const ex_t *ex = model_experts(pred_model(pl->pred));
    for (size_t i = lo; i < hi; i++)
        ex_summary_of(ex, pl->pop_st[i], pl->pop_tick_ms, &pl->rows[i]);
}

static int cmp_summary(const void *a, const void *b)
{
    const ex_summary_t *x = a, *y = b;
    if (x->rep != y->rep)
        return x->rep < y->rep ? -1 : 1;
    if (x->t_x != y->t_x)
        return x->t_x < y->t_x ? -1 : 1;
    if (x->age != y->age)
        return x->age < y->age ? -1 : 1;
    return 0;
}

/* cmp_summary's order for the merge sort (a strict weak order without NaN, which
 * sort_summaries checks); the call is inlined. */
#define SUMMARY_LESS(x, y) (cmp_summary((x), (y)) < 0)

/* Sorts the population rows into cmp_summary's order. Only (rep, t_x, age) go on into the
 * table, and rows tied on all three are alike there, so any correct sort feeds it the same
 * values: a merge sort with the comparison inlined (msort.h). It replaced an LSD radix sort
 * over the three doubles' bytes (up to 24 passes; ~480 instructions per row on Online
 * Retail at daily ticks, 3.3% of the replay's) and, before that, qsort's comparator calls.
 * A NaN (no strict weak order), or no scratch: qsort. */
static void sort_summaries(pl_t *pl, ex_summary_t *rows, size_t n)
{
    int has_nan = 0;
    for (size_t i = 0; i < n && !has_nan; i++)
        has_nan = isnan(rows[i].rep) || isnan(rows[i].t_x) || isnan(rows[i].age);
    if (!has_nan && CS_GROW(pl->sort_tmp, pl->sort_cap, n, 1024) == 0) {
        CS_MERGE_SORT(ex_summary_t, rows, pl->sort_tmp, n, SUMMARY_LESS);
        return;
    }
    if (n > 1) /* rows is NULL until a first visit: qsort(NULL, 0) is UB (UBSan) */
        qsort(rows, n, sizeof(*rows), cmp_summary);
}

static void on_tick_start(void *opaque, int64_t tick_ms)
{
    pl_t *pl = opaque;
    model_t *m = pred_model(pl->pred);
    if (ex_fit_tick_ms(model_experts(m)) >= tick_ms)
        return; /* another partition's pipeline refitted for this tick already */
    if (!pl->pop && !(pl->pop = bgnbd_table_new())) {
        pl->oom = 1;
        return;
    }
    pl->nrows = 0;
    pl->pop_tick_ms = tick_ms;
    /* all: from the earliest time, past FEAT_NEVER (a user never active is in no index) */
    int64_t from = pl->pop_recent ? tick_ms - pl->horizon_ms - pl->lookback_ms : FEAT_NEVER + 1;
    (pl->store.each ? pl->store.each : pl->store.range)(pl->store.opaque, from, tick_ms, pop_visit,
                                                        pl);
    cs_pool_for(pl->hooks.pool, pl->nrows, 256, pop_summaries, pl);
    size_t n = 0; /* the users active before the tick (age > 0), in visiting order */
    for (size_t i = 0; i < pl->nrows; i++)
        if (pl->rows[i].age > 0)
            pl->rows[n++] = pl->rows[i];
    pl->nrows = n;
    sort_summaries(pl, pl->rows, pl->nrows);
    bgnbd_table_clear(pl->pop);
    for (size_t i = 0; i < pl->nrows; i++)
        if (bgnbd_table_add(pl->pop, pl->rows[i].rep, pl->rows[i].t_x, pl->rows[i].age, 1) != 0)
            break; /* BGNBD_TABLE_MAX_ROWS distinct rows: fit on what fits */
    (void)model_refit_bgnbd(m, pl->pop, tick_ms);
    if (model_tick_start(m, tick_ms) != 0)
        pl->oom = 1;
}

static void on_tick_done(void *opaque, int64_t tick_ms)
{
    pl_t *pl = opaque;
    if (pl->policy) {
        alert_state_access_t acc = {.opaque = pl, .state = acc_state, .touched = acc_touched};
        const alert_t *alerts;
        size_t n = 0;
        if (alert_policy_tick_done(pl->policy, tick_ms, &acc, &alerts, &n) != 0)
            pl->oom = 1;
        for (size_t i = 0; i < n; i++) {
            const alert_t *a = &alerts[i];
            user_rec_t *rec = pl->store.get(pl->store.opaque, a->user_id, strlen(a->user_id));
            if (rec)
                outcome_open(pl, a->user_id, rec, a);
            if (pl->hooks.alert)
                pl->hooks.alert(pl->hooks.opaque, a);
        }
    }
    if (pl->hooks.tick_done)
        pl->hooks.tick_done(pl->hooks.opaque, tick_ms);
}

void pl_configure_model(const cfg_t *cfg, model_t *model)
{
    /* A --model-in snapshot may come from another horizon: the configured H decides. */
    ex_set_horizon_days(model_experts(model), (double)cfg->label_horizon_ms / (double)FEAT_DAY_MS);
    ex_set_mode(model_experts(model), (ex_mode_t)cfg->model_experts);
    ex_set_open_days(model_experts(model), cfg->model_open_days);
    ex_set_lull_days(model_experts(model), cfg->model_lull_days);
    ex_set_shapes(model_experts(model), cfg->model_btyd_shapes);
    model_set_class_balance(model, cfg->model_class_weight);
}

pl_t *pl_new(const cfg_t *cfg, model_t *model, alert_policy_t *policy, const store_ops_t *store,
             const pl_hooks_t *hooks, char *errstr, size_t errstr_size)
{
    pl_t *pl = calloc(1, sizeof(*pl));
    if (!pl || !(pl->pred = pred_new(model, hooks->pool))) {
        free(pl);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    mj_init(&pl->journal);
    pl->policy = policy;
    pl->store = *store;
    pl->hooks = *hooks;
    eng_sink_t sink = {.opaque = pl,
                       .score = on_score,
                       .label = on_label,
                       .tick_start = on_tick_start,
                       .tick_done = on_tick_done,
                       .visited = on_visited,
                       .prepare = on_prepare,
                       .prep_bytes = sizeof(scored_t)};
    pl->horizon_ms = cfg->label_horizon_ms;
    pl->lookback_ms = cfg->label_lookback_ms;
    pl->outcome_window_ms = cfg->outcome_window_ms > 0 ? cfg->outcome_window_ms : 30 * FEAT_DAY_MS;
    pl->lateness_ms = cfg->events_allowed_lateness_ms;
    pl->pop_recent = cfg->model_bgnbd_population == 1;
    pl_configure_model(cfg, model);
    eng_params_t ep = {.tick_ms = cfg->tick_interval_ms,
                       .horizon_ms = cfg->label_horizon_ms,
                       .lookback_ms = cfg->label_lookback_ms,
                       .lateness_ms = cfg->events_allowed_lateness_ms,
                       .sweep_slice_ms = hooks->bounded_sweeps ? cfg->tick_sweep_slice_ms : 0,
                       .max_visits = hooks->bounded_sweeps ? cfg->tick_sweep_max_users : 0,
                       .pool = hooks->pool};
    if (!(pl->eng = eng_new(&ep, store, &sink, errstr, errstr_size))) {
        pred_destroy(pl->pred);
        free(pl);
        return NULL;
    }
    return pl;
}

void pl_set_journaling(pl_t *pl, int on)
{
    pl->journaling = on != 0;
    mj_clear(&pl->journal);
}

mj_t *pl_journal(pl_t *pl)
{
    return pl->journaling ? &pl->journal : NULL;
}

/* The model learns on this pipeline's behalf between rec_on and rec_off (journaling). */
static void rec_on(pl_t *pl)
{
    if (pl->journaling)
        model_record_to(pred_model(pl->pred), &pl->journal);
}

static void rec_off(pl_t *pl)
{
    if (pl->journaling) {
        if (mj_failed(&pl->journal))
            pl->oom = 1;
        model_record_to(pred_model(pl->pred), NULL);
    }
}

void pl_destroy(pl_t *pl)
{
    if (!pl)
        return;
    eng_destroy(pl->eng);
    pred_destroy(pl->pred);
    mj_free(&pl->journal);
    bgnbd_table_destroy(pl->pop);
    free(pl->rows);
    free(pl->sort_tmp);
    free(pl->pop_st);
    free(pl);
}

/* An activity event was applied: it may decide the user's pending outcome. */
static void outcome_activity(pl_t *pl, const ev_event_t *ev, user_rec_t *rec)
{
    eng_progress_t pr;
    oc_result_t r;
    if (rec->outcome_alert_ms == INT64_MIN)
        return;
    eng_get_progress(pl->eng, &pr);
    /* No event before this one's time - lateness can still come, whatever the watermark. */
    int64_t closed = ev->event_time_ms - pl->lateness_ms;
    if (pr.watermark_ms != INT64_MIN && pr.watermark_ms > closed)
        closed = pr.watermark_ms;
    if (!oc_activity(rec, ev->event_time_ms, pl->outcome_window_ms, closed, &r))
        return;
    if (pl->store.touched)
        pl->store.touched(pl->store.opaque, ev->user_id, rec);
    outcome_out(pl, ev->user_id, &r);
}

static void event_in(pl_t *pl, const ev_event_t *ev, int32_t partition, int64_t offset);

void pl_event(pl_t *pl, const ev_event_t *ev, int32_t partition, int64_t offset)
{
    rec_on(pl);
    event_in(pl, ev, partition, offset);
    rec_off(pl);
}

static void event_in(pl_t *pl, const ev_event_t *ev, int32_t partition, int64_t offset)
{
    user_rec_t *rec;
    const int new_day = eng_event(pl->eng, ev, &rec);
    if (new_day && model_mark_day(pred_model(pl->pred), feat_day_of(ev->event_time_ms)) != 0)
        pl->oom = 1;
    const int activity = ev_is_activity(ev->type);
    if (!pl->policy)
        return;
    if (!activity && !pl_is_strong_signal(ev->type))
        return;
    if (activity)
        outcome_activity(pl, ev, rec);
    if (!pl_is_strong_signal(ev->type))
        return;
    float x[FEAT_DIM], z[FEAT_DIM];
    feat_vector(&rec->feat, ev->event_time_ms, x);
    ex_summary_t sum;
    ex_summary_of(model_experts(pred_model(pl->pred)), &rec->feat, ev->event_time_ms, &sum);
    int seg;
    float p = pred_score(pl->pred, x, &sum, &seg, z, NULL);
    if (pl->hooks.rescored)
        pl->hooks.rescored(pl->hooks.opaque, ev->user_id, rec, ev->event_time_ms, p, seg);
    alert_trigger_t trig = {.is_event = 1, .partition = partition, .offset = offset};
    consider(pl, ev->user_id, rec, &trig, ev->event_time_ms, p, seg, z, NULL);
}

/* Ticks before the next positive resolution have every label: calibration may use them. */
static void complete_ticks(pl_t *pl)
{
    eng_progress_t pr;
    eng_get_progress(pl->eng, &pr);
    if (pr.positives_next_ms != ENG_NO_TIME)
        pred_ticks_complete(pl->pred, pr.positives_next_ms - 1);
}

/* Learn what is known, then move the watermark; the sweeps' positives are learnt too, so
 * what comes next is scored by a model that has seen every label known so far. */
static int end_at(pl_t *pl, int64_t watermark_ms, int is_mark)
{
    rec_on(pl);
    if (pred_flush(pl->pred) != 0)
        pl->oom = 1;
    (is_mark ? eng_advance_mark : eng_advance)(pl->eng, watermark_ms);
    if (pred_flush(pl->pred) != 0)
        pl->oom = 1;
    complete_ticks(pl);
    rec_off(pl);
    return pl->oom ? -1 : 0;
}

int pl_tick_mark(pl_t *pl, int64_t watermark_ms)
{
    return end_at(pl, watermark_ms, 1);
}

int pl_batch_end(pl_t *pl, int64_t watermark_ms)
{
    return end_at(pl, watermark_ms, 0);
}

int pl_finish(pl_t *pl, int64_t end_ms)
{
    rec_on(pl);
    if (pred_flush(pl->pred) != 0)
        pl->oom = 1;
    eng_finish(pl->eng, end_ms);
    if (pred_flush(pl->pred) != 0)
        pl->oom = 1;
    complete_ticks(pl);
    rec_off(pl);
    return pl->oom ? -1 : 0;
}

void pl_finish_outcome(pl_t *pl, const char *user_id, int64_t end_ms)
{
    oc_result_t r;
    if (!pl->policy)
        return;
    user_rec_t *rec = pl->store.get(pl->store.opaque, user_id, strlen(user_id));
    if (!rec || !oc_finish(rec, end_ms, pl->outcome_window_ms, &r))
        return;
    if (pl->store.touched)
        pl->store.touched(pl->store.opaque, user_id, rec);
    outcome_out(pl, user_id, &r);
}

eng_t *pl_engine(pl_t *pl)
{
    return pl->eng;
}

model_t *pl_model_new(const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    model_params_t mp;
    model_params_default(&mp);
    mp.lr.learning_rate = cfg->model_learning_rate;
    mp.lr.l2 = cfg->model_l2;
    mp.lr.class_weight_balanced = cfg->model_class_weight;
    mp.kmeans_half_life = cfg->model_kmeans_half_life;
    mp.scaler_half_life = cfg->model_scaler_half_life;
    mp.horizon_days = (double)cfg->label_horizon_ms / (double)FEAT_DAY_MS;
    return model_new(FEAT_DIM, cfg->model_k, cfg->model_seed, &mp, errstr, errstr_size);
}
