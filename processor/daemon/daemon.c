/* The daemon's main loop: collect a micro-batch, hand it to the handler (one store
 * transaction), then produce its DLQ messages and alerts and commit its offsets to Kafka.
 * A failed batch is kept and retried with capped backoff while the assignment is paused, so
 * nothing is skipped; signals only set a flag and the shutdown runs in a fixed order. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dm_internal.h"
#include "log.h"

#define DM_BACKOFF_MIN_MS 100
#define DM_BACKOFF_MAX_MS 10000

volatile sig_atomic_t dm_stop_flag;
static volatile sig_atomic_t dm_signalled;
/* CLOCK_MONOTONIC time of the first stop request (signal or fatal error), 0 = none yet: the
 * logged stop time counts from there, not from when the loop noticed. */
static volatile int64_t dm_stop_asked_ms;

int64_t dm_now_ms(void)
{
    return cs_mono_us() / 1000;
}

int dm_sleep_ms(int64_t ms)
{
    while (ms > 0 && !dm_stop_flag) {
        int64_t slice = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
    return dm_stop_flag ? 1 : 0;
}

/* Async-signal-safe (clock_gettime and alarm are): the watchdog starts with the request, so
 * the whole stop, including the store call in progress when the signal came, is bounded. */
static void stop_asked(void)
{
    if (dm_stop_asked_ms == 0) {
        dm_stop_asked_ms = dm_now_ms();
        alarm(DM_SHUTDOWN_MAX_S);
    }
    dm_stop_flag = 1;
}

void dm_request_stop(void)
{
    stop_asked();
}

/* A second signal means "now": the batch in hand is not committed, and the stored offsets
 * bring it back on restart, so exiting here loses nothing. */
static void on_signal(int sig)
{
    if (dm_signalled)
        _exit(128 + sig);
    dm_signalled = 1;
    stop_asked();
}

static void on_shutdown_timeout(int sig)
{
    static const char msg[] = "level=error module=daemon msg=\"shutdown took longer than "
                              "the watchdog allows: exiting now\"\n";
    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* nothing else to do */
    }
    _exit(1);
}

void dm_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_shutdown_timeout);
}

int64_t dm_stop_elapsed_ms(void)
{
    return dm_stop_asked_ms ? dm_now_ms() - dm_stop_asked_ms : 0;
}

void dm_shutdown_done(int status)
{
    alarm(0);
    log_info("daemon", "stopped in %" PRId64 " ms after the stop request, exit status %d",
             dm_stop_elapsed_ms(), status);
}

void dm_handler_state(dm_t *dm, int ok, const char *what, const char *err)
{
    if (ok) {
        if (dm->handler_failing)
            log_info("daemon", "handler recovered (%s): processing resumes", what);
        dm->handler_failing = 0;
        if (!atomic_load(&dm->metrics.handler_healthy))
            dm_metrics_set_health(&dm->metrics, 1, NULL);
        return;
    }
    char detail[256];
    snprintf(detail, sizeof(detail), "%s: %s", what, err && *err ? err : "failed");
    if (err && strstr(err, "NOPERM")) {
        /* An ACL that forbids the keys or commands never heals by retrying (issue 11): say
         * what it is and stop (exit 1), so the operator fixes the ACL instead of watching a
         * daemon retry forever. Nothing is lost: the batch stays uncommitted. */
        log_error("daemon",
                  "Redis permission error (NOPERM) while %s: %s; the ACL of redis.user%s%s must "
                  "allow reading and writing keys %s* (and MULTI/EXEC, EVAL); stopping",
                  what, err, dm->cfg->redis_user ? " " : "",
                  dm->cfg->redis_user ? dm->cfg->redis_user : " (default)",
                  dm->cfg->state_prefix ? dm->cfg->state_prefix : "");
        dm_metrics_set_health(&dm->metrics, 0, detail);
        dm->fatal = 1;
        dm_stop_flag = 1;
        return;
    }
    if (!dm->handler_failing)
        log_error("daemon",
                  "handler failing (%s); retrying with backoff %d ms .. %d s, nothing "
                  "is skipped",
                  detail, DM_BACKOFF_MIN_MS, DM_BACKOFF_MAX_MS / 1000);
    else
        log_debug("daemon", "still failing: %s", detail);
    dm->handler_failing = 1;
    dm_metrics_set_health(&dm->metrics, 0, detail);
}

dm_t *dm_new(const cfg_t *cfg, const dm_handler_t *handler, char *errstr, size_t errstr_size)
{
    dm_t *dm = calloc(1, sizeof(*dm));
    if (!dm) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    dm->cfg = cfg;
    dm->h = handler;
    dm_metrics_init(&dm->metrics);
    dm->batch_target = (size_t)cfg->batch_max_messages;
    atomic_store(&dm->metrics.batch_target, cfg->batch_max_messages);
    if (dm_http_start(dm, errstr, errstr_size) != 0 ||
        dm_producer_open(dm, errstr, errstr_size) != 0 ||
        dm_consumer_open(dm, errstr, errstr_size) != 0) {
        dm_destroy(dm);
        return NULL;
    }
    return dm;
}

void dm_destroy(dm_t *dm)
{
    if (!dm)
        return;
    dm_consumer_close(dm);
    dm_batch_drop_front(dm, dm->n_batch);
    dm_producer_close(dm);
    dm_alerts_queued(dm, 1);
    free(dm->aq);
    dm_http_stop(dm);
    dm_metrics_destroy(&dm->metrics);
    free(dm->batch);
    free(dm->msgs);
    free(dm->rejects);
    free(dm->parts);
    free(dm);
}

/* Each partition's next offset after the first nmsg messages of the batch, in first-seen
 * order. Returns the count. */
static size_t batch_next_offsets(dm_t *dm, size_t nmsg, int32_t *parts, int64_t *next)
{
    size_t n = 0;
    for (size_t i = 0; i < nmsg && i < dm->n_batch; i++) {
        const rd_kafka_message_t *m = dm->batch[i];
        size_t j = 0;
        while (j < n && parts[j] != m->partition)
            j++;
        if (j == n) {
            parts[n] = m->partition;
            next[n++] = m->offset + 1;
        } else if (m->offset + 1 > next[j]) {
            next[j] = m->offset + 1;
        }
    }
    return n;
}

_Static_assert(DM_PHASES + 1 == DM_METRICS_PHASES, "dm_metrics.h: the handler's phases, collect");

static void account(dm_t *dm, size_t n, const dm_batch_result_t *res, double seconds)
{
    dm_metrics_t *mt = &dm->metrics;
    atomic_fetch_add(&mt->batches, 1);
    for (int i = 0; i < DM_PHASES; i++)
        atomic_fetch_add(&mt->phase_us[i], res->phase_us[i]);
    atomic_fetch_add(&mt->redis_wait_us, res->redis_wait_us);
    dm_metrics_observe_batch(mt, seconds);
    atomic_fetch_add(&mt->events_in, n - res->n_rejects);
    atomic_fetch_add(&mt->redis_round_trips, res->redis_round_trips);
    if (res->watermark_ms != INT64_MIN)
        atomic_store(&mt->watermark_ms, res->watermark_ms);
    if (res->model_labels > 0)
        dm_metrics_set_model(mt, res->model_labels, res->model_version, res->model_auc,
                             res->model_logloss);
    if (res->experts_known)
        dm_metrics_set_experts(mt, res->expert_weight, res->expert_logloss, res->btyd_shape_k);
    atomic_store(&mt->merges_ok, res->merges_ok);
    atomic_store(&mt->merges_failed, res->merges_failed);
    atomic_store(&mt->merged_entries, res->merged_entries);
    atomic_store(&mt->merges_held_back, res->merges_held_back);
    for (size_t i = 0; i < res->n_rejects; i++) {
        const dm_reject_t *r = &res->rejects[i];
        int reason = r->reason > 0 && r->reason < EV_ERR_COUNT ? r->reason : EV_ERR_UNDECODABLE;
        atomic_fetch_add(&mt->events_rejected[reason], 1);
        if (r->index < n)
            dm_produce_dlq(dm, &dm->msgs[r->index], r);
    }
    for (size_t i = 0; i < res->n_outcomes; i++) {
        const dm_outcome_t *o = &res->outcomes[i];
        dm_metrics_add_outcome(mt, o->arm, o->kind, o->action, o->outcome, 1);
    }
    for (size_t i = 0; i < res->n_alerts; i++)
        dm_queue_alert(dm, &res->alerts[i]);
    dm_alerts_pump(dm);
}

/* What follows a batch's outcome rc (0, DM_BATCH_RETRY or DM_BATCH_STALE) for its n
 * messages, the first of the batch in hand: on success they are accounted (DLQ, metrics,
 * alerts) and dropped; stale, dropped and every partition resumed from the stored offsets;
 * on a retry they stay. Returns rc (DM_BATCH_RETRY for any other failure). */
static int finish_batch(dm_t *dm, size_t n, int rc, const dm_batch_result_t *res, const char *err,
                        double seconds)
{
    int32_t *parts = malloc((n ? n : 1) * sizeof(*parts));
    int64_t *next = malloc((n ? n : 1) * sizeof(*next));
    if (!parts || !next) {
        free(parts);
        free(next);
        log_error("daemon", "out of memory after a batch: stopping (the restart is exact)");
        dm->fatal = 1;
        dm_stop_flag = 1;
        return DM_BATCH_RETRY;
    }
    size_t np = batch_next_offsets(dm, n, parts, next);
    if (rc == 0) {
        dm_handler_state(dm, 1, "processing a batch", NULL);
        account(dm, n, res, seconds);
        dm_consumer_commit(dm, parts, next, np, 0);
        dm_batch_drop_front(dm, n);
    } else if (rc == DM_BATCH_STALE) {
        atomic_fetch_add(&dm->metrics.batches_stale, 1);
        if (n)
            log_warn("daemon", "dropped a batch of %zu messages: %s", n, err);
        else
            log_warn("daemon", "%s", err);
        dm_batch_drop_front(dm, n);
        /* Every assigned partition, not only the batch's: the store may have lost the
         * commits of an idle one, which no message would ever bring back. Seeking a
         * partition to the offset it is at anyway costs one refetch. */
        int32_t *all = malloc((dm->n_parts ? dm->n_parts : 1) * sizeof(*all));
        if (all) {
            for (size_t i = 0; i < dm->n_parts; i++)
                all[i] = dm->parts[i].partition;
            dm_consumer_resync(dm, all, dm->n_parts);
            free(all);
        } else {
            dm_consumer_resync(dm, parts, np);
        }
    } else {
        atomic_fetch_add(&dm->metrics.batch_failures, 1);
        atomic_fetch_add(&dm->metrics.redis_round_trips, res->redis_round_trips);
        dm_handler_state(dm, 0, "processing a batch", err);
        rc = DM_BATCH_RETRY;
    }
    free(parts);
    free(next);
    return rc;
}

static double seconds_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* One attempt at the batch in hand. On success (and on a stale batch) the batch is gone
 * afterwards; on DM_BATCH_RETRY it is kept as it was; on DM_BATCH_IN_FLIGHT its commit is
 * on its way (dm_settle). */
static int process_once(dm_t *dm)
{
    size_t n = dm->n_batch;
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = dm->batch[i];
        rd_kafka_timestamp_type_t tstype;
        dm->msgs[i] = (dm_msg_t){m->partition,
                                 m->offset,
                                 m->key,
                                 m->key_len,
                                 m->payload,
                                 m->len,
                                 rd_kafka_message_timestamp(m, &tstype)};
    }
    dm_batch_result_t res = {
        .rejects = dm->rejects, .rejects_cap = dm->cap_batch, .watermark_ms = INT64_MIN};
    char err[512] = "";
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = dm->h->process_batch(dm->h->opaque, dm->msgs, n, &res, err, sizeof(err));
    if (rc == DM_BATCH_IN_FLIGHT) {
        dm->inflight = 1;
        dm->inflight_n = n;
        dm->inflight_t0 = a;
        return rc;
    }
    return finish_batch(dm, n, rc, &res, err, seconds_since(&a));
}

int dm_settle(dm_t *dm, int wait)
{
    if (!dm->inflight)
        return 0;
    int64_t t0 = cs_mono_us();
    dm_batch_result_t res = {
        .rejects = dm->rejects, .rejects_cap = dm->cap_batch, .watermark_ms = INT64_MIN};
    char err[512] = "";
    int rc = dm->h->settle(dm->h->opaque, wait, &res, err, sizeof(err));
    if (rc != DM_BATCH_IN_FLIGHT) {
        dm->inflight = 0;
        finish_batch(dm, dm->inflight_n, rc, &res, err, seconds_since(&dm->inflight_t0));
    }
    dm->settle_us += (uint64_t)(cs_mono_us() - t0);
    return dm->inflight;
}

/* Processes the batch in hand until it is committed (or dropped as stale, or revoked away),
 * or until stop is requested. While retrying, the assignment is paused and the consumer is
 * still served: rebalances run (and drop revoked partitions' messages from the batch), and
 * max.poll.interval.ms is never exceeded, however long the store is down. */
static void process_batch_retrying(dm_t *dm)
{
    int64_t backoff_ms = DM_BACKOFF_MIN_MS;
    while (dm->n_batch > 0) {
        if (process_once(dm) != DM_BATCH_RETRY)
            break;
        if (dm_stop_flag)
            return;
        if (!dm->paused)
            dm_consumer_pause(dm, 1);
        dm_consumer_serve(dm, (int)backoff_ms);
        backoff_ms = backoff_ms * 2 > DM_BACKOFF_MAX_MS ? DM_BACKOFF_MAX_MS : backoff_ms * 2;
    }
    if (dm->paused)
        dm_consumer_pause(dm, 0);
}

static void resend_outbox(dm_t *dm)
{
    if (!dm->h->pending_alerts)
        return;
    const dm_alert_t *alerts = NULL;
    size_t n = 0;
    char err[512] = "";
    if (dm->h->pending_alerts(dm->h->opaque, &alerts, &n, err, sizeof(err)) != 0) {
        log_warn("daemon", "cannot read the alert outbox: %s (re-sent at the next start)", err);
        return;
    }
    if (n)
        log_info("daemon", "re-sending %zu alerts left in the outbox", n);
    for (size_t i = 0; i < n; i++)
        dm_queue_alert(dm, &alerts[i]);
    dm_alerts_pump(dm);
}

/* Shutdown order (DESIGN.md section 7, STYLE.md 5): (1) stop polling; (2) finish the batch
 * in hand: one more attempt, and if the store is still down it stays uncommitted and is
 * re-read from the stored offsets at the next start; (3) commit the processed offsets to
 * Kafka (async; consumer_close waits for it); (4) flush the producer, bounded by
 * DM_FLUSH_TIMEOUT_MS (what is left is purged, logged and counted); (5) rd_kafka_consumer_close,
 * which leaves the group and revokes (the handler's on_revoke); (6) destroy, in dm_destroy. */
static void shutdown_in_order(dm_t *dm)
{
    atomic_store(&dm->metrics.stopping, 1);
    /* The watchdog (armed by the stop request) bounds the whole shutdown; exiting early loses
     * nothing: the store holds state and offsets. A stop that did not come through
     * dm_request_stop or a signal (the loop ended on its own) arms it here. */
    if (dm_stop_asked_ms == 0) {
        signal(SIGALRM, on_shutdown_timeout);
        stop_asked();
    }
    log_info(
        "daemon", "stopping %" PRId64 " ms after the request: %s the batch in hand (%zu messages)",
        dm_stop_elapsed_ms(),
        dm->handler_failing ? "not retrying (the store is failing)" : "finishing", dm->n_batch);
    /* A store that just failed would cost another command timeout for nothing: the batch
     * stays uncommitted and is re-read from the stored offsets. */
    dm_settle(dm, 1);
    if (dm->n_batch > 0 && !dm->handler_failing && process_once(dm) == DM_BATCH_IN_FLIGHT)
        dm_settle(dm, 1);
    if (dm->n_batch > 0) {
        log_warn("daemon",
                 "%zu messages left uncommitted: they are re-read from the stored "
                 "offsets at the next start",
                 dm->n_batch);
        dm_batch_drop_front(dm, dm->n_batch);
    }
    int32_t *parts = malloc((dm->n_parts ? dm->n_parts : 1) * sizeof(*parts));
    int64_t *next = malloc((dm->n_parts ? dm->n_parts : 1) * sizeof(*next));
    size_t n = 0;
    for (size_t i = 0; parts && next && i < dm->n_parts; i++)
        if (dm->parts[i].next_offset >= 0) {
            parts[n] = dm->parts[i].partition;
            next[n++] = dm->parts[i].next_offset;
        }
    /* Async: with the broker unreachable a synchronous commit would hold the exit for a
     * socket timeout, and this commit only serves lag tools (the store has the offsets). */
    if (n > 0)
        dm_consumer_commit(dm, parts, next, n, 0);
    free(parts);
    free(next);
    /* The flush also hands over the alerts still waiting for their claim, a window at a
     * time, within the same bound. */
    int64_t flush_end_ms = dm_now_ms() + DM_FLUSH_TIMEOUT_MS;
    int left = 0;
    for (;;) {
        dm_alerts_pump(dm);
        int64_t slice_ms = flush_end_ms - dm_now_ms();
        left = dm_producer_flush(dm, (int)(slice_ms < 100 ? (slice_ms > 0 ? slice_ms : 0) : 100));
        if ((left == 0 && dm_alerts_queued(dm, 0) == 0) || dm_now_ms() >= flush_end_ms)
            break;
    }
    if (left > 0)
        log_error("daemon",
                  "%d DLQ/alert messages undelivered after %d ms: dropped (alerts stay "
                  "in the outbox)",
                  left, DM_FLUSH_TIMEOUT_MS);
    size_t queued = dm_alerts_queued(dm, 1);
    if (queued > 0)
        log_warn("daemon",
                 "%zu alerts not handed to Kafka within %d ms: they stay in the outbox and are "
                 "sent at the next start",
                 queued, DM_FLUSH_TIMEOUT_MS);
    dm_consumer_close_bounded(dm, DM_CLOSE_TIMEOUT_MS);
}

int dm_run(dm_t *dm)
{
    log_info("daemon",
             "running: topic \"%s\" -> handler %s, DLQ \"%s\", batches of up to %d "
             "messages or %" PRId64 " ms",
             dm->cfg->topic_events, dm->h->name ? dm->h->name : "(unnamed)", dm->cfg->topic_dlq,
             dm->cfg->batch_max_messages, dm->cfg->batch_max_wait_ms);
    resend_outbox(dm);
    int64_t last_idle_ms = dm_now_ms();
    while (!dm_stop_flag) {
        int64_t c0 = cs_mono_us();
        uint64_t s0 = dm->settle_us;
        dm_consumer_collect(dm);
        /* the settles inside are the handler's commit phase, not collecting */
        int64_t collect_us = cs_mono_us() - c0 - (int64_t)(dm->settle_us - s0);
        dm_settle(dm, 1); /* the previous batch's commit, if collecting did not see it end */
        if (dm->n_batch > 0) {
            /* the time that brought messages (idle polls are not a batch's) */
            atomic_fetch_add(&dm->metrics.phase_us[DM_PHASES],
                             (uint64_t)(collect_us > 0 ? collect_us : 0));
            process_batch_retrying(dm);
            last_idle_ms = dm_now_ms();
        } else if (dm->h->idle_call_ms > 0 && dm_now_ms() - last_idle_ms >= dm->h->idle_call_ms) {
            /* No message for a while: an empty batch lets the handler move event time by
             * the wall clock (tick.idle_advance). A failure is retried at the next idle call. */
            last_idle_ms = dm_now_ms();
            process_once(dm);
        }
    }
    if (dm->fatal)
        atomic_store(&dm->metrics.consumer_fatal, 1);
    shutdown_in_order(dm);
    return dm->fatal ? 1 : 0;
}
