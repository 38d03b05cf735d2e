/* The churn handler's insides, shared by churn_handler.c (lifecycle, partitions, model,
 * daemon callbacks) and churn_batch.c (one batch: decode, prefetch, pipelines, one
 * commit). Not for use outside daemon/. */
#ifndef CS_CHURN_INTERNAL_H
#define CS_CHURN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "batch.h"
#include "churn_handler.h"
#include "codec.h"
#include "daemon.h"
#include "kafka_sink.h"
#include "model.h"
#include "pipeline.h"
#include "predictor.h"
#include "score_batch.h"
#include "store_redis.h"
#include "user_api.h"

/* A tick's sweep is scored on at most this many threads (the online CPUs). */
#define CHN_SWEEP_THREADS 4

typedef struct chn_part_s {
    int32_t partition;
    pl_t *pl;
    int64_t max_event_ms;     /* INT64_MIN before the first event seen by this instance */
    int64_t last_msg_wall_ms; /* wall time of the last message (idle detection) */
    int64_t next_offset;      /* the stored next offset; messages below it were applied */
    int in_batch;             /* the current batch holds messages of this partition */
    /* Reopened after a rollback with a stored offset behind what this instance had stored:
     * Redis lost acknowledged commits (restarted from an AOF missing its last second, a
     * failover to a lagging replica) while the consumer kept its position. The next batch
     * holding the partition is refused as DM_BATCH_STALE so the daemon seeks back to the
     * stored offset (dm_consumer_resync -> on_assign, which clears this). */
    int reseek;
    uint64_t jseq; /* shared model: the sequence of this partition's next journal entry */
} chn_part_t;

struct chn_s {
    const cfg_t *cfg;
    char *model_in;
    st_redis_t *st;
    ev_decoder_t *dec;
    alert_policy_t *policy;
    /* The Kafka sink (kafka_sink.h): the batch's alerts, staged for the outbox in the commit,
     * then handed to the producer. */
    alert_sink_t alerts;
    model_t *model;
    uint8_t *model_bytes; /* the snapshot last committed (or loaded): the rollback point */
    size_t model_len;
    uint64_t model_version_committed;
    chn_part_t *parts; /* open pipelines */
    cs_pool_t *team;   /* scores their tick sweeps (one partition's at a time) */
    size_t nparts, capparts;
    int32_t *assigned; /* the daemon's assignment (reopened after a rollback) */
    /* Per assigned partition: the next offset it had in Redis as this instance last knew it
     * (loaded at assignment, then written by its commits); -1 when none. Survives a
     * rollback, so a reload can tell that Redis went back in time. */
    int64_t *assigned_next;
    size_t nassigned, capassigned;
    int64_t watermark_ms; /* global, INT64_MIN before the first */
    /* batch scratch, reused across batches (churn_batch.c) */
    batch_t batch; /* the accepted events, through the batch driver (engine/batch.h) */
    int32_t *c_offset_parts, *c_progress_parts; /* the commit's per-partition arrays */
    int64_t *c_next_offsets;
    store_progress_t *c_progress;
    size_t cap_c;
    dm_alert_t *dm_alerts; /* the outbox re-sent at start (pending_alerts) */
    size_t cap_dm;
    int alert_oom; /* an alert or a latest score could not be kept: the batch is retried */
    /* The batch whose commit is in flight (chn_settle): what its success sets, the offsets
     * in c_offset_parts / c_next_offsets[0 .. inflight_noff), the model snapshot it
     * carries (owned; NULL: unchanged), and its figures so far. Set for every batch sent,
     * also when the store had nothing to wait for (no write, or a cluster store that commits
     * synchronously): st_redis's own in-flight flag only covers a transaction on the wire. */
    int inflight;
    size_t inflight_noff;
    uint8_t *inflight_model;
    size_t inflight_model_len;
    int64_t inflight_now;
    st_redis_counters_t inflight_k0;
    uint64_t inflight_phase_us[DM_PHASES];
    /* outcomes decided in the batch (reported once it is committed) */
    dm_outcome_t *outcomes;
    size_t noutcomes, capoutcomes;
    sb_t *scores; /* the batch's latest scoring per user (P score:<id>) */
    ua_t *api;    /* GET /v1/users/{id}: its own connection, used by the HTTP threads */
    /* outbox re-send at start */
    st_outbox_t outbox;
    /* Shared model (model.sync_interval > 0; churn_model.c): each batch commits its
     * partitions' journals instead of the model; merges every sync interval. */
    int shared;
    int64_t last_sync_ms; /* wall time of the last merge attempt */
    int32_t *c_jparts;    /* the commit's journal entries (churn_model.c) */
    uint64_t *c_jseqs;
    uint8_t **c_jbufs; /* owned until the commit returns */
    size_t *c_jlens;
    size_t n_j, cap_j;
    /* Partitions this instance committed journal entries to since its last merge: merged
     * even when no longer assigned (a merge at stop runs after the revocation). */
    int32_t *j_known, *merge_parts;
    size_t n_j_known, cap_j_known, cap_merge_parts;
    uint64_t merges_ok, merges_failed, merged_entries, merges_held_back; /* for /metrics */
};

/* churn_handler.c */
int64_t chn_wall_ms(void);
void chn_alerts_clear(chn_t *ch);
chn_part_t *chn_part_find(chn_t *ch, int32_t partition);
/* The partition's pipeline, opened from what Redis holds on first use. NULL with err. */
chn_part_t *chn_part_open(chn_t *ch, int32_t partition, char *err, size_t errsz);
/* Drops everything uncommitted: pipelines, model, cache (chn_reopen rebuilds from Redis). */
void chn_rollback(chn_t *ch);
int chn_reopen(chn_t *ch, char *err, size_t errsz);
/* 1 when Redis no longer holds what this instance committed, 0 when it does, -1 on error. */
int chn_lost_commits(chn_t *ch, char *err, size_t errsz);
void chn_note_stored(chn_t *ch, int32_t partition, int64_t next_offset);
/* The global watermark: min over open partitions of (max event time - lateness); with
 * idle, a partition without messages for tick.idle_advance of wall time follows the wall
 * clock (now - idle_advance) instead, so silence still moves ticks forward. INT64_MIN
 * while unknown. */
int64_t chn_watermark(const chn_t *ch, int64_t now, int idle);

/* churn_model.c. Loads the model once (ch->model NULL): in shared mode pending journals are
 * merged first; then Redis's model, else --model-in, else a new one. 0, -1 with err. */
int chn_model_load(chn_t *ch, char *err, size_t errsz);
void chn_model_drop(chn_t *ch);
/* Shared mode: every open partition's journal with something in it becomes an entry of c
 * (0, -1 on out of memory); chn_journals_done after the commit (ok = 1: committed, the
 * journals are emptied and their sequences advance). */
int chn_journals_stage(chn_t *ch, st_commit_t *c);
void chn_journals_done(chn_t *ch, int ok);
/* Shared mode, after a committed batch: every model.sync_interval, merges every pending
 * journal into Redis's model and takes the merged model in place (pipelines keep their
 * pointer). A failure is logged and tried again at the next interval. */
void chn_model_sync(chn_t *ch, int64_t now, int force);

/* churn_batch.c: dm_handler_t.process_batch and .settle. */
int chn_process_batch(void *opaque, const dm_msg_t *msgs, size_t n, dm_batch_result_t *res,
                      char *err, size_t errsz);
int chn_settle(void *opaque, int wait, dm_batch_result_t *res, char *err, size_t errsz);
/* Frees the batch scratch arrays. */
void chn_batch_free(chn_t *ch);

#endif
