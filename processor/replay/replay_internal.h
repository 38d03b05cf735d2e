/* Replay's insides shared by its files: the event sources (replay_source.c: Avro, CSV,
 * JSON lines, a Kafka time range) and the user state (replay_store.c: memory or Redis).
 * Not for use outside replay/. */
#ifndef CS_REPLAY_INTERNAL_H
#define CS_REPLAY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "codec.h"
#include "csv_import.h"
#include "jsonl.h"
#include "kafka_source.h"
#include "model.h"
#include "outfile.h"
#include "pipeline.h"
#include "replay.h"
#include "replay_prefetch.h"
#include "sink.h"
#include "store_mem.h"
#include "store_redis.h"
#include "uid_index.h"

typedef struct source_s {
    ev_file_reader_t *avro;
    jl_reader_t *jsonl;
    ks_t *kafka;
    size_t kafka_next;
    imp_result_t csv;
    int is_csv;
    size_t csv_next;
    rpp_t *ahead; /* the Avro and JSON lines decoders run on a read-ahead thread */
} source_t;

/* Opens o->input (by its name: kafka:TOPIC, .jsonl, .csv/--map/--preset, else Avro). */
int rp_source_open(source_t *src, const cfg_t *cfg, const rp_opts_t *o, char *errstr,
                   size_t errstr_size);
/* rpf_next's source callback: 1 with an event (or a reject reason), 0 at the end, -1. */
int rp_source_next_cb(void *src, ev_event_t *ev, ev_reason_t *reason, char *why, size_t why_size,
                      char *errstr, size_t errstr_size);
/* Events in the input when known up front (CSV, Kafka), else 0. */
size_t rp_source_total(const source_t *src);
void rp_source_close(source_t *src);

/* ---- state: memory or Redis (--state) ----
 * Memory applies each event at once. Redis runs the live path: a batch's events are held
 * until its end, its distinct users prefetched in one round, the events applied, and the
 * batch committed in one MULTI/EXEC (partition 0; offset = events read so far). The engine
 * sees the same calls in the same order either way. */
typedef struct rp_store_s {
    st_mem_t *mem;
    st_redis_t *redis;
    uint64_t committed_model_version;
    int has_committed_model;
} rp_store_t;

int rp_store_open(rp_store_t *s, const cfg_t *cfg, int redis, store_ops_t *ops, char *errstr,
                  size_t errstr_size);
void rp_store_close(rp_store_t *s);
/* Applies the batch's events through the batch driver (engine/batch.h): on Redis one
 * prefetch of its users first. 0 / -1 with errstr. */
int rp_store_apply(rp_store_t *s, batch_t *b, pl_t *pl, char *errstr, size_t errstr_size);
/* Redis: commits the batch (records, index, offset, progress, model when it changed). */
int rp_store_commit(rp_store_t *s, pl_t *pl, const model_t *model, int64_t events_read,
                    char *errstr, size_t errstr_size);
size_t rp_store_users(const rp_store_t *s);

/* Pending scores: (user, tick) -> what was scored, kept until the snapshot's label arrives
 * (replay_pending.c). No allocation per snapshot: each user id is interned once into the
 * map's id table (one arena of id bytes, a dense array of offsets, a uid_index over them),
 * and each user's pending snapshots are plain values in one array of its own, in the order
 * scored. The engine scores a user's ticks in order and labels them mostly oldest first, so
 * a take nearly always finds its entry at the head, and the heads and tails of all users'
 * arrays are what stays in cache (a hash table keyed by (user, tick) missed on every call).
 *
 * Memory: the map owns everything (rp_pending_free). The id table only grows (one copy of
 * each id ever scored, at most the store's users); a user's array grows by doubling, and is
 * compacted (live entries moved to its front) instead when at most half of it is live.
 *
 * Feature rows (only for --snapshots-out, rp_pending_keep_features): each entry also keeps
 * the snapshot's x(T) as scored, in a parallel per-user array indexed like e, because the
 * engine's label callback recomputes x(T) from the stored state, which by then may hold a
 * refund or cancel that came after T (not activity, so the label stands; see engine.c). */
typedef struct pending_s {
    int64_t tick_ms;
    float score, recency_days;
    float expert[EX_N]; /* each expert's probability (experts.h) */
    int32_t seg;
} pending_t;

typedef struct pending_user_s {
    pending_t *e; /* owned; e[head .. head + n) are live, in the order put */
    float *x;     /* owned; xdim floats per entry of e, NULL when the map keeps none */
    uint32_t head, n, cap;
} pending_user_t;

typedef struct pending_map_s {
    /* id table: handle h's id is ids[id_off[h] .. id_off[h] + id_len[h]) */
    char *ids;
    size_t ids_len, ids_cap;
    size_t *id_off;
    uint16_t *id_len;
    pending_user_t *users; /* handle h's pending snapshots */
    size_t nids, cap_ids;
    uid_index_t id_index; /* nslots >= 2 x nids */
    size_t count;         /* live entries over all users */
    int xdim;             /* floats of x kept per entry; 0 = none */
    uint32_t bound;       /* the most entries one user holds at once; 0 = unknown */
} pending_map_t;

/* Keep each entry's feature row (dim floats) from now on; call on an empty map. */
void rp_pending_keep_features(pending_map_t *m, int dim);
/* The most entries one user can hold at once (label.lookback / tick.interval + 2 in replay:
 * a user has a pending snapshot for each tick since their last activity, up to L); a user's
 * array grows to it, not past it, unless it is exceeded. 0 (the default): no bound. Memory
 * only: what is put and taken is the same either way. */
void rp_pending_set_bound(pending_map_t *m, uint32_t entries);

/* Adds a scored snapshot (the id is copied into the id table the first time it is seen).
 * rec, the user's record or NULL, caches the user's handle in rec->memo (user.h) for the
 * next call. 0, or -1 on out of memory (the map unchanged but for a possibly interned id). */
int rp_pending_put(pending_map_t *m, const char *uid, user_rec_t *rec, int64_t tick_ms, float score,
                   float recency_days, int seg, const ex_scores_t *ex, const float *x);
/* Removes the snapshot's entry (the oldest, were a key put twice) into *out, and its feature
 * row into x_out when the map keeps them and x_out is not NULL: 1, or 0 when absent. x (at
 * put) is read only when the map keeps feature rows. */
int rp_pending_take(pending_map_t *m, const char *uid, user_rec_t *rec, int64_t tick_ms,
                    pending_t *out, float *x_out);
/* Frees what the map holds; the map is empty and reusable after. */
void rp_pending_free(pending_map_t *m);

/* The output files (replay_outputs.c), published at the end (see of_open). */
typedef struct outputs_s {
    of_t *scores, *alerts, *snapshots, *rejects;
    FILE *scores_f, *snapshots_f, *rejects_f; /* theirs, NULL when not asked */
    alert_sink_t alerts_sink; /* JSON lines into `alerts`; zeroed (a no-op) when not asked */
} outputs_t;

/* Opens the files o asks for (scores, alerts, snapshots, rejects) and writes their headers.
 * 0, or -1 with errstr (those opened are left for rp_close_outputs). */
int rp_open_outputs(const rp_opts_t *o, outputs_t *out, char *errstr, size_t errstr_size);
/* Publishes the outputs when rc is 0 (else drops them); the rejects either way. Returns rc,
 * or -1 when publishing failed. */
int rp_close_outputs(outputs_t *out, int rc, char *errstr, size_t errstr_size);

#endif
