/* Replay: reads an event log (Avro container file or CSV through the import mapping), runs
 * it through the engine in micro-batches exactly as `run` does (validation, engine, model),
 * and keeps each snapshot's prequential score until its label arrives, so the backtest is
 * measured on exactly the snapshots the protocol defines. */
#include "replay_internal.h"
#include "replay_business.h"
#include "replay_future.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "engine.h"
#include "grow.h"
#include "log.h"
#include "predictor.h"
#include "outfile.h"
#include "pool.h"
#include "replay_metrics.h"
#include "report.h"

#define DAY_MS 86400000LL
/* A tick's sweep is scored on at most this many threads (the online CPUs), the read-ahead
 * decoder (replay_prefetch.h) on one more. */
#define RP_SWEEP_THREADS 4

/* ---- labelled rows: into the streaming metrics (replay_metrics.h), and kept until the end
 * only for the HTML report, which draws every row ---- */

typedef struct replay_s {
    const cfg_t *cfg;
    const rp_opts_t *opts;
    rp_summary_t *sum;
    model_t *model;
    pending_map_t pending;
    rp_metrics_t *metrics;
    rp_row_t *rows; /* every labelled row, only with --report */
    size_t nrows, caprows;
    size_t late_labels; /* labels of ticks already closed: a bug, reported */
    FILE *scores;
    FILE *snapshots;
    const alert_sink_t *alerts; /* --alerts-out's JSON lines; a zeroed sink when not asked */
    /* every alert's (user, event time), for the lead time at the end; uid owned */
    struct rp_alerted_s {
        char *uid;
        int64_t t_ms;
    } * alerted;
    size_t nalerted, capalerted;
    int oom;         /* set by callbacks that could not allocate; checked after each batch */
    cs_pool_t *team; /* scores the tick sweeps (pipeline.h) */
} replay_t;

static void on_scored(void *opaque, const eng_snapshot_t *s, float p, int seg,
                      const ex_scores_t *ex)
{
    replay_t *rp = opaque;
    int64_t last = feat_last_activity_ms(&s->rec->feat);
    float recency = (float)((double)(s->tick_ms - last) / (double)DAY_MS);
    rp->sum->scored++;
    if (rp->scores)
        fprintf(rp->scores, "%s,%lld,%.6f\n", s->user_id, (long long)s->tick_ms, p);
    if (rp_pending_put(&rp->pending, s->user_id, s->rec, s->tick_ms, p, recency, seg, ex, s->x) !=
        0)
        rp->oom = 1;
}

static void on_labelled(void *opaque, const eng_snapshot_t *s)
{
    replay_t *rp = opaque;
    pending_t p;
    float x[FEAT_DIM];
    if (!rp_pending_take(&rp->pending, s->user_id, s->rec, s->tick_ms, &p, x)) {
        /* The engine scores before it labels (tests/unit/test_engine.c); a miss here is a
         * bug, reported rather than hidden. */
        log_error("replay", "label without a score: user=%s tick_ms=%lld", s->user_id,
                  (long long)s->tick_ms);
        return;
    }
    rp_row_t row = {.tick_ms = s->tick_ms,
                    .score = p.score,
                    .recency_days = p.recency_days,
                    .expert = {p.expert[0], p.expert[1], p.expert[2]},
                    .seg = (int16_t)p.seg,
                    .y = (int8_t)s->y,
                    .in_window = 1};
    int added = rpm_add(rp->metrics, &row);
    if (added < 0)
        rp->oom = 1;
    if (added == 1 && rp->late_labels++ == 0)
        log_error("replay",
                  "label after its tick closed: user=%s tick_ms=%lld (left out of the "
                  "metrics)",
                  s->user_id, (long long)s->tick_ms);
    if (rp->opts->report) {
        if (CS_GROW(rp->rows, rp->caprows, rp->nrows + 1, 65536) != 0)
            rp->oom = 1;
        else
            rp->rows[rp->nrows++] = row;
    }
    if (rp->snapshots) { /* x(T) as scored: s->x is recomputed now (replay_internal.h) */
        fprintf(rp->snapshots, "%s,%lld,%d,%.6f", s->user_id, (long long)s->tick_ms, s->y, p.score);
        for (int i = 0; i < FEAT_DIM; i++)
            fprintf(rp->snapshots, ",%.6g", x[i]);
        fputc('\n', rp->snapshots);
    }
}

static void on_outcome(void *opaque, const char *user_id, const oc_result_t *r)
{
    replay_t *rp = opaque;
    if (oc_stats_add(rp->sum->outcomes, r) != 0)
        rp->oom = 1;
}

static void on_alert(void *opaque, const alert_t *a)
{
    replay_t *rp = opaque;
    rp_summary_t *sum = rp->sum;
    sum->alerts++;
    if (rp_business_add_alert(sum, a) != 0)
        rp->oom = 1;
    sum->alerts_by_bucket[a->risk_bucket]++;
    sum->alerts_by_arm[a->arm]++;
    if (CS_GROW(rp->alerted, rp->capalerted, rp->nalerted + 1, 1024) != 0) {
        rp->oom = 1;
        return;
    }
    char *uid = strdup(a->user_id);
    if (!uid) {
        rp->oom = 1;
        return;
    }
    rp->alerted[rp->nalerted++] = (struct rp_alerted_s){uid, a->event_time_ms};
    if (a->kind == ALERT_AT_RISK || a->kind == ALERT_LAPSED)
        sum->alerts_by_kind[a->kind]++;
    if (a->trigger == ALERT_BY_TICK || a->trigger == ALERT_BY_EVENT)
        sum->alerts_by_trigger[a->trigger]++;
    int64_t tick = eng_tick_floor(a->event_time_ms, rp->cfg->tick_interval_ms);
    /* Alerts come in time order except around late events: search from the end, insert in
     * order when the tick is new. */
    size_t i = sum->alert_ticks;
    while (i > 0 && sum->alert_tick_ms[i - 1] > tick)
        i--;
    if (i == 0 || sum->alert_tick_ms[i - 1] != tick) {
        int64_t *t = realloc(sum->alert_tick_ms, (sum->alert_ticks + 1) * sizeof(*t));
        if (t)
            sum->alert_tick_ms = t;
        size_t *n = realloc(sum->alert_tick_count, (sum->alert_ticks + 1) * sizeof(*n));
        if (n)
            sum->alert_tick_count = n;
        if (!t || !n) {
            rp->oom = 1;
            return;
        }
        memmove(t + i + 1, t + i, (sum->alert_ticks - i) * sizeof(*t));
        memmove(n + i + 1, n + i, (sum->alert_ticks - i) * sizeof(*n));
        t[i] = tick;
        n[i] = 0;
        sum->alert_ticks++;
        i++;
    }
    sum->alert_tick_count[i - 1]++;
    alert_sink_emit(rp->alerts, a); /* a failure is kept and reported by the sink's flush */
}

static void on_tick_done(void *opaque, int64_t tick_ms)
{
    replay_t *rp = opaque;
    (void)tick_ms;
    rp->sum->ticks++;
}

/* ---- the run ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_reject(FILE *f, ev_reason_t r, const ev_event_t *ev, const char *why)
{
    if (!f)
        return;
    /* Quote the detail: it may hold commas. */
    fprintf(f, "%s,%s,%lld,\"", ev_reason_code(r), ev->user_id_len ? ev->user_id : "",
            (long long)ev->event_time_ms);
    for (const char *c = why; *c; c++)
        fputs(*c == '"' ? "\"\"" : (char[]){*c, 0}, f);
    fputs("\"\n", f);
}

static int cmp_alerted(const void *pa, const void *pb)
{
    const struct rp_alerted_s *a = pa, *b = pb;
    int c = strcmp(a->uid, b->uid);
    if (c)
        return c;
    return a->t_ms < b->t_ms ? -1 : a->t_ms > b->t_ms;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

/* Lead time from the users' final states (issue 14): an alerted user silent for a full
 * horizon at the end went silent at their last activity; the first alert came before the
 * silence when it precedes that activity. The median is the lower middle value. */
static int finish_lead(replay_t *rp, const store_ops_t *store, int64_t end_ms)
{
    rp_summary_t *sum = rp->sum;
    sum->lead_median_days = NAN;
    if (rp->nalerted == 0)
        return 0;
    qsort(rp->alerted, rp->nalerted, sizeof(*rp->alerted), cmp_alerted);
    double *lead = malloc(rp->nalerted * sizeof(*lead));
    if (!lead)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < rp->nalerted; i++) {
        if (i > 0 && strcmp(rp->alerted[i].uid, rp->alerted[i - 1].uid) == 0)
            continue; /* the user's first alert came first in the sort */
        const char *uid = rp->alerted[i].uid;
        user_rec_t *rec = store->get(store->opaque, uid, strlen(uid));
        int64_t last = rec ? feat_last_activity_ms(&rec->feat) : FEAT_NEVER;
        if (last == FEAT_NEVER || end_ms - last < rp->cfg->label_horizon_ms)
            continue;
        lead[n] = (double)(last - rp->alerted[i].t_ms) / (double)DAY_MS;
        sum->lead_before += lead[n] > 0;
        n++;
    }
    sum->lead_silent = n;
    if (n) {
        qsort(lead, n, sizeof(*lead), cmp_double);
        sum->lead_median_days = lead[(n - 1) / 2];
    }
    free(lead);
    return 0;
}

/* Decides every outcome still pending at the end: not retained, or censored when the window
 * reaches past the end. rp->alerted is sorted by user (finish_lead). */
static int finish_outcomes(replay_t *rp, pl_t *pl)
{
    for (size_t i = 0; i < rp->nalerted; i++)
        if (i == 0 || strcmp(rp->alerted[i].uid, rp->alerted[i - 1].uid) != 0)
            pl_finish_outcome(pl, rp->alerted[i].uid, rp->sum->end_ms);
    return rp->oom ? -1 : 0;
}

/* Closes the ticks whose every label is in: those before the next positive resolution. */
static int close_complete_ticks(replay_t *rp, pl_t *pl)
{
    eng_progress_t pr;
    eng_get_progress(pl_engine(pl), &pr);
    return pr.positives_next_ms == ENG_NO_TIME
               ? 0
               : rpm_close_before(rp->metrics, pr.positives_next_ms);
}

/* The metrics of the ticks whose window [T, T+H) lies before the end: the model score, the
 * recency baseline and each expert on the same snapshots. The report's rows (when kept) get
 * their in_window. */
static int finish_metrics(replay_t *rp, int64_t end_ms, char *errstr, size_t errstr_size)
{
    int64_t H = rp->cfg->label_horizon_ms;
    for (size_t i = 0; i < rp->nrows; i++)
        rp->rows[i].in_window = rp->rows[i].tick_ms + H <= end_ms;
    if (rpm_finish(rp->metrics, H, end_ms, rp->sum) != 0) {
        snprintf(errstr, errstr_size, "backtest metrics: %s", rpm_error(rp->metrics));
        return -1;
    }
    if (rp->late_labels > 0) {
        snprintf(errstr, errstr_size,
                 "backtest metrics: %zu labels came after their tick closed (a bug; please "
                 "report it)",
                 rp->late_labels);
        return -1;
    }
    return 0;
}

/* The model (--model-in or a new one) and its predictor. */
static int open_model(replay_t *rp, const cfg_t *cfg, const rp_opts_t *o, char *errstr,
                      size_t errstr_size)
{
    if (o->model_in)
        rp->model = model_load_file(o->model_in, errstr, errstr_size);
    else
        rp->model = pl_model_new(cfg, errstr, errstr_size);
    if (!rp->model)
        return -1;
    if (model_dim(rp->model) != FEAT_DIM) {
        snprintf(errstr, errstr_size, "%s: model has %d features, this build has %d", o->model_in,
                 model_dim(rp->model), FEAT_DIM);
        return -1;
    }
    return 0;
}

/* The alert policy and the pipeline on the store's ops, with replay's hooks. */
static int open_pipeline(replay_t *rp, const cfg_t *cfg, const store_ops_t *ops,
                         alert_policy_t **policy, pl_t **pl, char *errstr, size_t errstr_size)
{
    pl_hooks_t hooks = {.opaque = rp,
                        .scored = on_scored,
                        .labelled = on_labelled,
                        .tick_done = on_tick_done,
                        .alert = on_alert,
                        .outcome = on_outcome,
                        .pool = rp->team};
    rp->sum->outcome_window_ms = cfg->outcome_window_ms;
    if (!(rp->sum->outcomes = oc_stats_new())) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (!(*policy = alert_policy_new(cfg, errstr, errstr_size)) ||
        !(*pl = pl_new(cfg, rp->model, *policy, ops, &hooks, errstr, errstr_size)))
        return -1;
    return 0;
}

/* The progress line on stderr (at most once a second). */
static void show_progress(const rp_summary_t *sum, const source_t *src, const rp_store_t *st,
                          double t_loop, double *last)
{
    double t = now_s();
    if (t - *last < 1.0)
        return;
    *last = t;
    double rate = (double)sum->events_read / (t - t_loop);
    size_t total = rp_source_total(src);
    fprintf(stderr, "\rreplay: %lld events, %.0f events/s, %zu users", (long long)sum->events_read,
            rate, rp_store_users(st));
    if (total > 0 && rate > 0)
        fprintf(stderr, ", %.0f%%, ETA %.0f s", 100.0 * (double)sum->events_read / (double)total,
                (double)(total - (size_t)sum->events_read) / rate);
    fputs("   ", stderr);
}

/* A batch boundary: applies the batch, learns what it made known, moves the watermark to wm
 * (sweeps and positive labels up to it), closes complete ticks and commits the store, which
 * then holds the first `applied` events of the input. 0, or -1 with errstr. */
static int end_batch(replay_t *rp, batch_t *batch, rp_store_t *st, pl_t *pl, int64_t wm,
                     int64_t applied, char *errstr, size_t errstr_size)
{
    if (rp_store_apply(st, batch, pl, errstr, errstr_size) != 0)
        return -1;
    if (pl_batch_end(pl, wm) != 0 || rp->oom) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (close_complete_ticks(rp, pl) != 0) {
        snprintf(errstr, errstr_size, "backtest metrics: %s", rpm_error(rp->metrics));
        return -1;
    }
    return rp_store_commit(st, pl, rp->model, applied, errstr, errstr_size);
}

/* Reads the whole input through the engine in micro-batches, as `run` does: validation
 * (rejects written and counted), the store, and at every batch.max_messages the batch
 * boundary (learn what is known, then move the watermark) and the store's commit.
 *
 * A batch also ends before an event that moves the watermark past a tick: the event is held,
 * the batch so far is applied and ended with the watermark the held event sets, and the
 * event opens the next batch. So a tick's sweep scores its quiet users with a model that has
 * learnt only labels known from events up to the tick (and its allowed lateness), as a live
 * run keeping up does. Without it, one batch of a sparse log spans weeks of event time, the
 * model learns every label its events resolve, and the batch-end sweeps then score the
 * earlier ticks with that later model (a look-ahead: on a 280-event test log a quiet user's
 * score at its first tick was the model's of 190 days later). The latest event time in
 * *max_t. 0, or -1 with errstr. */
static int read_all(replay_t *rp, source_t *src, rp_store_t *st, pl_t *pl, FILE *rejects,
                    int64_t *max_t_out, char *errstr, size_t errstr_size)
{
    batch_t batch = {0};
    const cfg_t *cfg = rp->cfg;
    rp_summary_t *sum = rp->sum;
    ev_reason_t reason;
    char why[256];
    int64_t max_t = INT64_MIN;
    int in_batch = 0, rc = -1;
    /* Rates count from here: loading a CSV or a topic is not replay time. */
    const double t_loop = now_s();
    double last_progress = t_loop;
    /* The future side is bounded by the log's own event time, not the wall clock (a 2024 log
     * replayed in 2026 would let a row dated 2026 through): replay_future.h. */
    rpf_t *future = rpf_new(cfg->events_max_future_ms);
    if (!future) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    sum->first_event_ms = INT64_MAX;
    for (;;) {
        /* Decoded straight into the batch's next slot, counted only once accepted. */
        ev_event_t *ev = batch_slot(&batch);
        if (!ev) {
            snprintf(errstr, errstr_size, "out of memory");
            goto out;
        }
        why[0] = '\0';
        int64_t wm = max_t == INT64_MIN ? INT64_MIN : max_t - cfg->events_allowed_lateness_ms;
        int is_future = 0;
        int got = rpf_next(future, rp_source_next_cb, src, wm, ev, &reason, &is_future, why,
                           sizeof(why), errstr, errstr_size);
        if (got < 0)
            goto out;
        if (got == 0)
            break;
        sum->events_read++;
        sum->future_rejects += is_future;
        if (reason == EV_OK) {
            reason = ev_check_time(ev, wm, INT64_MIN, cfg->events_max_past_ms, 0);
            if (reason != EV_OK)
                ev_time_window_why(ev, wm, INT64_MIN, cfg->events_max_past_ms, 0, why, sizeof(why));
        }
        if (reason != EV_OK) {
            sum->rejects[reason]++;
            write_reject(rejects, reason, ev, why[0] ? why : ev_reason_code(reason));
            continue;
        }
        int64_t wm_next = (ev->event_time_ms > max_t ? ev->event_time_ms : max_t) -
                          cfg->events_allowed_lateness_ms;
        /* Also when the batch is empty (the event follows a batch.max_messages end): the
         * tick is swept before the event, not after the next batch's events. */
        if (wm != INT64_MIN && eng_tick_floor(wm_next, cfg->tick_interval_ms) > wm) {
            ev_event_t held = *ev; /* the batch's arrays may move: batch_slot below */
            in_batch = 0;
            if (end_batch(rp, &batch, st, pl, wm_next, sum->events_read - 1, errstr, errstr_size) !=
                0)
                goto out;
            if (!(ev = batch_slot(&batch))) {
                snprintf(errstr, errstr_size, "out of memory");
                goto out;
            }
            *ev = held;
        }
        batch_push(&batch, 0, sum->events_read - 1);
        sum->events_applied++;
        if (ev->event_time_ms > max_t)
            max_t = ev->event_time_ms;
        if (ev->event_time_ms < sum->first_event_ms)
            sum->first_event_ms = ev->event_time_ms;
        if (++in_batch < cfg->batch_max_messages)
            continue;
        in_batch = 0;
        if (end_batch(rp, &batch, st, pl, max_t - cfg->events_allowed_lateness_ms, sum->events_read,
                      errstr, errstr_size) != 0)
            goto out;
        if (rp->opts->progress)
            show_progress(sum, src, st, t_loop, &last_progress);
    }
    if (rp->opts->progress)
        fputc('\n', stderr);
    *max_t_out = max_t;
    rc = rp_store_apply(st, &batch, pl, errstr, errstr_size);
out:
    rpf_destroy(future);
    batch_free(&batch);
    return rc;
}

/* The model's figures for the summary. */
static void summarize_model(const replay_t *rp, rp_summary_t *sum)
{
    const ex_t *ex = model_experts(rp->model);
    const bgnbd_params_t *bg = ex_bgnbd_params(ex);
    sum->model_version = model_version(rp->model);
    sum->model_examples = model_examples_seen(rp->model);
    ex_weights(ex, sum->weights);
    sum->bgnbd[0] = bg->r;
    sum->bgnbd[1] = bg->alpha;
    sum->bgnbd[2] = bg->a;
    sum->bgnbd[3] = bg->b;
    sum->shape_k = ex_shape_k[ex_shape(ex)];
    ex_shape_losses(ex, sum->shape_loss);
    sum->k = model_k(rp->model);
}

int rp_run(const cfg_t *cfg, const rp_opts_t *o, rp_summary_t *sum, char *errstr,
           size_t errstr_size)
{
    memset(sum, 0, sizeof(*sum));
    double t0 = now_s();
    int rc = -1, src_open = 0;
    replay_t rp = {.cfg = cfg, .opts = o, .sum = sum};
    source_t src;
    rp_store_t st = {0};
    pl_t *pl = NULL;
    alert_policy_t *policy = NULL;
    outputs_t outs = {0};
    store_ops_t ops;
    int64_t max_t = INT64_MIN;

    if (!(rp.team = cs_pool_new(cs_pool_default_threads(RP_SWEEP_THREADS))) ||
        !(rp.metrics = rpm_new(0, rp.team))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    if (open_model(&rp, cfg, o, errstr, errstr_size) != 0 ||
        rp_open_outputs(o, &outs, errstr, errstr_size) != 0 ||
        rp_store_open(&st, cfg, o->state_redis, &ops, errstr, errstr_size) != 0 ||
        open_pipeline(&rp, cfg, &ops, &policy, &pl, errstr, errstr_size) != 0 ||
        rp_source_open(&src, cfg, o, errstr, errstr_size) != 0)
        goto out;
    src_open = 1;
    rp.scores = outs.scores_f;
    rp.alerts = &outs.alerts_sink;
    rp.snapshots = outs.snapshots_f;
    if (rp.snapshots)
        rp_pending_keep_features(&rp.pending, FEAT_DIM);
    if (cfg->tick_interval_ms > 0 && cfg->label_lookback_ms / cfg->tick_interval_ms < 1 << 20)
        rp_pending_set_bound(&rp.pending,
                             (uint32_t)(cfg->label_lookback_ms / cfg->tick_interval_ms) + 2);
    if (read_all(&rp, &src, &st, pl, outs.rejects_f, &max_t, errstr, errstr_size) != 0)
        goto out;
    if (sum->events_applied == 0) {
        snprintf(errstr, errstr_size, "%s: no valid events", o->input);
        goto out;
    }
    sum->last_event_ms = max_t;
    /* The input ends with the last event's UTC day, as in the independent scorer. */
    sum->end_ms = (max_t >= 0 ? max_t / DAY_MS : (max_t - DAY_MS + 1) / DAY_MS) * DAY_MS + DAY_MS;
    sum->horizon_ms = rp.cfg->label_horizon_ms;
    if (pl_finish(pl, sum->end_ms) != 0 || rp.oom) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    /* Every label the log can give is in: the scores still pending are censored snapshots,
     * counted (scored - labelled) but never read again. Freed before the metrics' merges. */
    rp_pending_free(&rp.pending);
#ifdef __GLIBC__
    malloc_trim(0); /* the pending scores were many small blocks: give their pages back */
#endif
    if (finish_metrics(&rp, sum->end_ms, errstr, errstr_size) != 0)
        goto out;
    if (finish_lead(&rp, &ops, sum->end_ms) != 0 || finish_outcomes(&rp, pl) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    if (rp_store_commit(&st, pl, rp.model, sum->events_read, errstr, errstr_size) != 0)
        goto out;
    sum->users = rp_store_users(&st);
    summarize_model(&rp, sum);
    if (rp.scores && (fflush(rp.scores) != 0 || ferror(rp.scores))) {
        snprintf(errstr, errstr_size, "%s: write failed: %s", o->scores_out, strerror(errno));
        goto out;
    }
    if ((o->model_out && model_save_file(rp.model, o->model_out, errstr, errstr_size) != 0) ||
        (o->report &&
         report_write(o->report, sum, rp.rows, rp.nrows, rp.model, errstr, errstr_size) != 0))
        goto out;
    rc = 0;
out:
    sum->seconds = now_s() - t0;
    if (rc != 0)
        rp_summary_free(sum);
    if (src_open)
        rp_source_close(&src);
    pl_destroy(pl);
    cs_pool_destroy(rp.team);
    alert_policy_destroy(policy);
    rp_store_close(&st);
    model_destroy(rp.model);
    rp_pending_free(&rp.pending);
    rpm_free(rp.metrics);
    free(rp.rows);
    for (size_t i = 0; i < rp.nalerted; i++)
        free(rp.alerted[i].uid);
    free(rp.alerted);
    return rp_close_outputs(&outs, rc, errstr, errstr_size);
}
