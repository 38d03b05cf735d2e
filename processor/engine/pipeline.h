/* The per-partition processing chain shared by `run` and `replay`: validated events go
 * through the engine (ticks, labels, exactly-once scoring); every snapshot is scored by the
 * model as it stands (predictor), every label is queued for learning at the batch boundary.
 * What happens to scores and labels beyond that (a scores file, backtest rows, alerts) is the
 * caller's, through hooks. One pipeline per Kafka partition; they may share a model. */
#ifndef CS_PIPELINE_H
#define CS_PIPELINE_H

#include <stdint.h>

#include "config.h"
#include "engine.h"
#include "alert.h"
#include "outcome.h"
#include "predictor.h"

typedef struct pl_hooks_s {
    void *opaque;
    /* A snapshot was scored: p is its churn probability, seg its segment (-1 unseeded),
     * experts what each expert said (experts.h). */
    void (*scored)(void *opaque, const eng_snapshot_t *s, float p, int seg,
                   const ex_scores_t *experts);
    /* A strong-signal event rescored its user at the event's time (pl_event; not a tick
     * snapshot: no label follows, replay's scores and metrics never see it). May be NULL. */
    void (*rescored)(void *opaque, const char *user_id, user_rec_t *rec, int64_t t_ms, float p,
                     int seg);
    /* A snapshot's label arrived (it was scored before). */
    void (*labelled)(void *opaque, const eng_snapshot_t *s);
    /* Tick T's sweep is complete (after its top-percent alerts, if any, were emitted). */
    void (*tick_done)(void *opaque, int64_t tick_ms);
    /* An alert fired (the user's cooldown is already set in its record). */
    void (*alert)(void *opaque, const alert_t *a);
    /* An alert's outcome was decided, or an alert was a repeat (outcome.h); r->action is
     * the policy's (static storage). Exactly once per alert, with the user's record. */
    void (*outcome)(void *opaque, const char *user_id, const oc_result_t *r);
    /* 1: keep the model's prequential metrics (model_metrics: each label scored by the model
     * before it is learnt; one more scoring per label). `run` exports them; a replay has its
     * exact backtest metrics and skips the cost. */
    int prequential_metrics;
    /* 1: bounded sweeps (tick.sweep_slice, tick.sweep_max_users per batch), for `run`; a
     * replay sweeps whole ticks at once (same results, no batch to keep responsive). */
    int bounded_sweeps;
    /* The team that scores tick sweeps (engine.h, eng_params_t.pool; borrowed, it must
     * outlive the pipeline): the scores do not depend on it. NULL: the caller's thread. */
    cs_pool_t *pool;
} pl_hooks_t;

typedef struct pl_s pl_t;

/* Creates a pipeline on a user store, with a predictor of its own on model (its labels are
 * learnt at its own batch boundaries, so everything it learns comes from its partition's
 * users). Borrows model (pipelines of one instance share it), policy (NULL = no alerts),
 * store and hooks' opaque; copies the rest; sets the model's configuration-only settings
 * (pl_configure_model). NULL with errstr set on invalid engine parameters or out of memory. */
pl_t *pl_new(const cfg_t *cfg, model_t *model, alert_policy_t *policy, const store_ops_t *store,
             const pl_hooks_t *hooks, char *errstr, size_t errstr_size);
void pl_destroy(pl_t *pl);

/* Applies one validated event; partition and offset identify it (alert ids of strong-signal
 * rescoring: subscription_cancel, refund and support_ticket score the user at once, at the
 * event's time, after it is applied). */
void pl_event(pl_t *pl, const ev_event_t *ev, int32_t partition, int64_t offset);

/* Strong-signal event types: rescored at once. */
int pl_is_strong_signal(ev_type_t t);

/* Batch boundary: learns the queued labels, moves the watermark (sweeps and positives up to
 * it), learns what the sweeps labelled; the engine's visit budget is full again after it.
 * Returns 0, -1 when learning ran out of memory. */
int pl_batch_end(pl_t *pl, int64_t watermark_ms);
/* The same within a batch (run's tick marks, batch.h), on what is left of the batch's visit
 * budget (engine.h). */
int pl_tick_mark(pl_t *pl, int64_t watermark_ms);

/* End of a replay's input (see eng_finish), then learns the last labels. */
int pl_finish(pl_t *pl, int64_t end_ms);

/* After pl_finish: decides the user's outcome if one is still pending (outcome.h:
 * oc_finish: not retained, or censored when its window reaches end_ms), through the outcome
 * hook. A replay calls it once per alerted user, at the very end. */
void pl_finish_outcome(pl_t *pl, const char *user_id, int64_t end_ms);

eng_t *pl_engine(pl_t *pl);

/* Journaling (model_journal.h; several instances sharing a model): on = 1 makes every
 * model learning call this pipeline makes (pl_event, pl_batch_end, pl_finish) go to the
 * pipeline's journal as well, so the learning of its partition can be committed with its
 * state and merged elsewhere. pl_journal is NULL while journaling is off; the caller
 * empties it (mj_clear) once it has been committed. */
void pl_set_journaling(pl_t *pl, int on);
mj_t *pl_journal(pl_t *pl);

/* The model settings that come from the configuration, not from a snapshot (horizon, the
 * experts' mode, open days, class weights): pl_new sets them, and so must whoever puts
 * another model's contents in place (model_swap). */
void pl_configure_model(const cfg_t *cfg, model_t *model);

/* A new model for this build's features from the model.* keys (k, seed, learning rate, L2,
 * class weights, half-lives). The caller owns it (model_destroy). NULL with errstr. */
model_t *pl_model_new(const cfg_t *cfg, char *errstr, size_t errstr_size);

#endif
