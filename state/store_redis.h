/* Redis user store (DESIGN.md sections 3 and 7). Key layout, with prefix P (state.prefix,
 * default "cs:"):
 *   P u:<user_id>        STRING  packed user record (user_rec_encode), PX state.ttl
 *   P seen:<partition>   ZSET    user_id -> last activity time (ms), the sweep's range index
 *   P offsets            HASH    partition (decimal) -> next offset to consume (decimal)
 *   P progress           HASH    partition (decimal) -> engine progress (store_progress_t:
 *                                7 little-endian int64, engine.h)
 *   P model              STRING  model snapshot (model_encode)
 *   P journal:<partition> HASH   shared model: the partition's model journal entries
 *   P mapplied           HASH    shared model: partition -> first entry not merged (below)
 *   P outbox             HASH    alert_id -> u16 LE length of the user id, the user id, then
 *                                the encoded alert (so forget can find a user's alerts)
 *   P outbox:sending     SET     alert ids a running daemon handed to Kafka (claimed), not
 *                                yet trimmed: what forget can no longer stop
 *   P score:<user_id>    HASH    the user's latest scoring, readable by other services
 *                                (HGETALL), PX state.ttl like the record; fields, all
 *                                decimal or text: score (churn probability, 6 decimals),
 *                                bucket (low|medium|high), segment (id, -1 unsegmented),
 *                                segment_name (archetype, e.g. "champions"), kind
 *                                (at_risk|lapsed), trigger (tick|event), time_ms (event time
 *                                the score describes: the tick or the event's time, epoch
 *                                ms), alert_id (the alert this scoring raised, "" if none).
 *                                Written by the same MULTI/EXEC as the batch's records
 *                                (redis_scores.c), deleted by forget.
 * A batch works on a cache: st_redis_prefetch() loads the batch's users in one pipelined
 * round (MGET in chunks), the engine reads and writes records in the cache, and
 * st_redis_commit() writes every dirty record, the last-seen updates, offsets, progress,
 * model, outbox and latest scores in ONE MULTI/EXEC, so state and offsets always move together.
 *
 * Invariant: a stored record with an activity has exactly one seen entry, in the ZSET of
 * the partition that last moved its activity, scored with its last activity. Members whose
 * record expired (TTL) or whose score no longer matches the record (the user moved to
 * another partition: only when a topic is repartitioned) are skipped by range queries and
 * removed by the next commit.
 * User ids are NUL-terminated C strings but otherwise any bytes (spaces, colons, UTF-8):
 * every command is sent with explicit argument lengths.
 *
 * Redis Cluster (redis.cluster = true; redis_cluster.h): every key of partition N carries the
 * hash tag {pN} right after the prefix, so all of them share one slot:
 *   P{pN}:u:<user_id>  P{pN}:seen:N  P{pN}:offsets  P{pN}:progress  P{pN}:outbox
 *   P{pN}:outbox:sending  P{pN}:journal:N
 *   and the model alone in its slot: P{model}:model, P{model}:mapplied
 * (the hashes keep the partition as field name, as above, so the code is the same). A
 * commit is then one MULTI/EXEC per partition the batch touched (its records, index entries,
 * offset, progress and the alerts of its users), in partition order, then one for the model.
 * Exactly-once holds per partition: N's offset moves in the same transaction as N's state,
 * and a user's events all come from one partition (Kafka key = user id), so a crash between
 * two partitions' transactions makes only the uncommitted partitions read their messages
 * again, against state that never saw them. Not exact with one model owner: the model,
 * committed last, loses the learning of such a batch; a shared model's journal entries
 * (below) commit in each partition's own transaction and lose nothing.
 * A record is looked up in its partition's slot: after a repartitioning of the topic a user
 * starts afresh in the new partition (re-import by replay; see README, Redis Cluster). */
#ifndef CS_STORE_REDIS_H
#define CS_STORE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"
#include "user.h"

typedef struct st_redis_s st_redis_t;

/* Connects (redis.host/port/user/password/db, connect timeout) and checks the server
 * answers. Returns NULL with errstr naming the address and the cause. Keeps a pointer to
 * nothing in cfg: what it needs is copied. */
st_redis_t *st_redis_new(const cfg_t *cfg, char *errstr, size_t errstr_size);
/* Closes the connection and frees the cache; NULL is a no-op. */
void st_redis_destroy(st_redis_t *st);

/* Re-establishes a lost connection (AUTH, SELECT again). 0 when connected. */
int st_redis_reconnect(st_redis_t *st, char *errstr, size_t errstr_size);

/* Loads the records of the given users (of one partition) into the batch cache in one
 * pipelined round trip; absent users get an empty record. Users already cached are skipped.
 * -1 with errstr on a connection or protocol error, or when a stored record does not decode
 * (the message names the key; the record is left as is, never reset). The cache is then
 * left unchanged. user_ids are NUL-terminated; duplicates are asked once. */
int st_redis_prefetch(st_redis_t *st, int32_t partition, const char *const *user_ids, size_t n,
                      char *errstr, size_t errstr_size);

/* Fills *ops so an engine uses this store for one partition's users: get reads the cache
 * (a miss falls back to one GET), range queries P seen:<partition>, prefetches what it finds
 * and visits, in (last activity, user id bytes) order, every user of the partition whose
 * last activity as of the cache is in [lo, hi); touched marks records dirty. Errors inside
 * these callbacks are latched and returned by the next st_redis_commit (the batch is then
 * not committed). 0, or -1 on out of memory. The store must outlive the engine. */
int st_redis_engine_ops(st_redis_t *st, int32_t partition, store_ops_t *ops);

/* One user's latest scoring, for P score:<user_id> (fields in the key layout above). Every
 * pointer is borrowed for the st_redis_commit call. */
typedef struct st_score_s {
    const char *user_id;      /* NUL-terminated */
    double score;             /* churn probability in [0, 1] */
    const char *bucket;       /* "low", "medium", "high" */
    int segment_id;           /* -1 while k-means is not seeded */
    const char *segment_name; /* the segment's archetype name, "unsegmented" */
    const char *kind;         /* "at_risk", "lapsed" */
    const char *trigger;      /* "tick", "event" */
    int64_t time_ms;          /* event time the score describes */
    const char *alert_id;     /* the alert this scoring raised; "" when none */
} st_score_t;

/* What a batch commits besides the dirty records. Arrays may be empty. */
typedef struct st_commit_s {
    size_t n_offsets;
    const int32_t *offset_partitions;
    const int64_t *next_offsets;
    size_t n_progress;
    const int32_t *progress_partitions;
    const store_progress_t *progress;
    const uint8_t *model; /* NULL = model unchanged */
    size_t model_len;
    size_t n_outbox;
    const char *const *outbox_ids;
    const char *const *outbox_user_ids; /* the user each alert is about (for forget) */
    const uint8_t *const *outbox_values;
    const size_t *outbox_lens;
    size_t n_scores; /* at most one per user: a later entry of a user overwrites fields */
    const st_score_t *scores;
    /* Model journal entries (below, "Model journals"), at most one per partition: written
     * by that partition's transaction. */
    size_t n_journals;
    const int32_t *journal_partitions;
    const uint64_t *journal_seqs; /* st_redis_journal_next at the partition's last commit */
    const uint8_t *const *journal_bytes;
    const size_t *journal_lens;
} st_commit_t;

/* Writes every dirty record (SET PX ttl, or MSET when state.ttl = 0), last-seen updates
 * (ZADD; ZREM of stale members first), and c in one MULTI/EXEC; on success clears the cache.
 * -1 with errstr when the transaction failed or a callback error was latched: the cache is
 * kept (st_redis_discard drops it). When Redis refused the transaction (EXECABORT) nothing
 * was applied; when the connection was lost the outcome is unknown: the caller reconnects,
 * reloads the offsets (they moved only if the batch was applied) and redoes the batch. */
int st_redis_commit(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size);
/* st_redis_commit in two steps, so the caller can work while Redis executes the
 * transaction: _send queues and writes it all (0; or -1 with errstr, nothing in flight);
 * _finish collects the outcome: 0 applied (the cache cleared; also when nothing was in
 * flight: a batch without writes, or cluster mode, where _send commits synchronously), -1
 * failed as st_redis_commit, 1 not known yet (wait = 0 only: nothing blocks). Between the
 * two the store may be used: the first read of anything else (and st_redis_discard) reads
 * the commit's replies first, and _finish then returns that outcome. A second _send before
 * _finish is refused. */
int st_redis_commit_send(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size);
int st_redis_commit_finish(st_redis_t *st, int wait, char *errstr, size_t errstr_size);

/* Drops the cache without writing (after a failed commit). */
void st_redis_discard(st_redis_t *st);

/* Reads back what commits wrote. *found = 0 when absent. */
int st_redis_load_offset(st_redis_t *st, int32_t partition, int64_t *next_offset, int *found,
                         char *errstr, size_t errstr_size);
int st_redis_load_progress(st_redis_t *st, int32_t partition, store_progress_t *out, int *found,
                           char *errstr, size_t errstr_size);
/* The latest last-activity time in partition's seen index (ms; *found = 0 when empty): the
 * latest activity event the partition has committed, which bounds its event times from below
 * when it is reopened (a restart, a rebalance) without a new message. */
int st_redis_last_activity_max(st_redis_t *st, int32_t partition, int64_t *max_ms, int *found,
                               char *errstr, size_t errstr_size);
/* *buf is malloc'd (caller frees); *buf = NULL when no model is stored. */
int st_redis_load_model(st_redis_t *st, uint8_t **buf, size_t *len, char *errstr,
                        size_t errstr_size);

/* Outbox: every pending alert (ids and values malloc'd, freed by st_redis_outbox_free), and
 * removal of delivered ones (HDEL outbox and SREM outbox:sending, pipelined: one round trip;
 * outside any batch transaction). */
typedef struct st_outbox_s {
    size_t n;
    char **ids;
    char **user_ids; /* the user each alert is about (the Kafka message key) */
    uint8_t **values;
    size_t *lens;
} st_outbox_t;
int st_redis_outbox_load(st_redis_t *st, st_outbox_t *out, char *errstr, size_t errstr_size);
void st_redis_outbox_free(st_outbox_t *ob);
int st_redis_outbox_remove(st_redis_t *st, const char *const *ids, size_t n, char *errstr,
                           size_t errstr_size);
/* P outbox:sending (SET) holds the ids a daemon handed to Kafka and not yet trimmed. Claim
 * before producing: claimed[i] = 1 when ids[i] is still in the outbox (now marked as being
 * sent), 0 when it is gone (forgotten, or already trimmed): do not send it. One atomic script
 * (EVAL), so forget and the daemon always agree on which alerts were on their way. */
int st_redis_outbox_claim(st_redis_t *st, const char *const *ids, size_t n, uint8_t *claimed,
                          char *errstr, size_t errstr_size);
/* Clears every claim (a starting daemon has nothing in flight). */
int st_redis_outbox_unclaim_all(st_redis_t *st, char *errstr, size_t errstr_size);

/* Reads one user's record without touching the cache. *found = 0 when absent. */
int st_redis_get_user(st_redis_t *st, const char *user_id, user_rec_t *rec, int *found,
                      char *errstr, size_t errstr_size);
/* One user's record and latest-score hash (P score:<id>) in one round trip and one
 * MULTI/EXEC (so both come from the same batch commit), without touching the cache: the
 * reads of `inspect user` and GET /v1/users/{id}. *found = 0 when
 * the record is absent. *score gets the hash's fields in Redis's order (n = 0 when there is
 * none); free it with st_fields_free, also after an error. */
typedef struct st_fields_s {
    size_t n;
    char **names, **values; /* NUL-terminated copies */
} st_fields_t;
void st_fields_free(st_fields_t *f);
int st_redis_read_user(st_redis_t *st, const char *user_id, size_t len, user_rec_t *rec, int *found,
                       st_fields_t *score, char *errstr, size_t errstr_size);
/* The first bytes of the stored model (model_encode: magic, format, length, dim, k, seed,
 * version: ST_MODEL_STAMP_BYTES), which change whenever the model does: a reader that
 * caches the model checks them instead of fetching 100+ KB. *len = 0 when no model. */
#define ST_MODEL_STAMP_BYTES 40
int st_redis_model_stamp(st_redis_t *st, uint8_t stamp[ST_MODEL_STAMP_BYTES], size_t *len,
                         char *errstr, size_t errstr_size);

/* ---- Model journals (model.sync_interval > 0: several instances share one model) ----
 * Key layout (cluster mode: P{pN}:journal:N and P{model}:mapplied):
 *   P journal:<partition>  HASH  "next" -> the partition's next sequence number; <seq> ->
 *                                the journal entry of one committed batch (bytes of the
 *                                caller's format), written with "next" by the commit
 *   P mapplied             HASH  partition -> the first sequence not merged into P model;
 *                                "wm" -> the merge callback's mark of P model
 * Invariant: an entry with seq < P mapplied[partition] is in P model; the model and the
 * marks change only together (one MULTI/EXEC under WATCH), so whoever merges, however often,
 * and after any crash, each entry is merged exactly once. */
typedef struct st_journal_entry_s {
    int32_t partition;
    uint64_t seq;
    const uint8_t *bytes; /* borrowed for the merge callback */
    size_t len;
} st_journal_entry_t;
/* The next sequence number of the partition's journal (0 when it has none). */
int st_redis_journal_next(st_redis_t *st, int32_t partition, uint64_t *next, char *errstr,
                          size_t errstr_size);
/* Folds pending entries into the model: given the stored model (NULL, 0 when none) and the
 * pending entries sorted by (partition, seq), writes the merged model into *out (malloc'd;
 * the store takes it) and may update *mark, a number the caller keeps with the model
 * (INT64_MIN: none; the daemon's latest event time merged). A lost race calls it again on
 * the new model: it must be a function of its arguments. 0, or -1 with errstr (nothing is
 * written). */
typedef int (*st_merge_fn)(void *ctx, const uint8_t *model, size_t model_len,
                           const st_journal_entry_t *entries, size_t n, uint8_t **out,
                           size_t *out_len, int64_t *mark, char *errstr, size_t errstr_size);
typedef struct st_merge_result_s {
    size_t entries;    /* merged by this call */
    size_t partitions; /* journals looked at */
    size_t conflicts;  /* races lost to other instances' merges (each rerun the callback) */
    size_t trimmed;    /* merged entries deleted from the journals */
    uint8_t *model;    /* the stored model after the merge (malloc'd, the caller frees it;
                          NULL when none is stored), read in the same WATCH as the marks */
    size_t model_len;
    int64_t mark; /* the mark kept with that model (P mapplied "wm"), INT64_MIN if none */
} st_merge_result_t;
/* One merge: the journals of parts[] and of every partition P mapplied names are read; then,
 * where the model lives, WATCH P model and P mapplied, read them, call fn on the entries at
 * or above each partition's mark, and write the model and the new marks in one MULTI/EXEC
 * (a watched key changed: read again and retry, up to 20 times); res->model is then the
 * model stored. Then merged entries are deleted (HDEL, best effort; an entry below its mark
 * is merged, so this is safe whoever runs it). 0 (nothing pending is a success), -1 with
 * errstr (no change to the model, the journals stay for the next merge). */
int st_redis_model_merge(st_redis_t *st, const int32_t *parts, size_t nparts, st_merge_fn fn,
                         void *ctx, st_merge_result_t *res, char *errstr, size_t errstr_size);

/* The shared model's merge state, for `inspect model`: the partitions P mapplied names,
 * each with the entries merged (its mark) and committed (its journal's next sequence), so
 * committed - merged are waiting; mark = P mapplied "wm" (INT64_MIN if none). A partition
 * whose journal was never merged is not listed. n = 0 without a shared model. Arrays
 * malloc'd: st_journal_status_free (also after an error). */
typedef struct st_journal_status_s {
    size_t n;
    int32_t *parts;
    uint64_t *merged, *committed;
    int64_t mark;
} st_journal_status_t;
int st_redis_journal_status(st_redis_t *st, st_journal_status_t *out, char *errstr,
                            size_t errstr_size);
void st_journal_status_free(st_journal_status_t *s);

/* What forget removed. */
typedef struct st_forget_s {
    int record;              /* 1 when P u:<id> existed */
    int score;               /* 1 when P score:<id> existed */
    size_t seen_entries;     /* P seen:* entries removed (one per partition index holding it) */
    size_t outbox_alerts;    /* pending alerts of the user removed before any was sent */
    size_t outbox_in_flight; /* of the user's alerts, those a running daemon had already
                                handed to Kafka (they may still arrive; removed too) */
} st_forget_t;
/* Deletes a user everywhere: the record, the latest-score hash, every P seen:* entry (found
 * by SCAN), pending outbox alerts of the user, in one MULTI/EXEC. Returns 1 when something was
 * removed, 0 when nothing was, -1 on error; *out (may be NULL) gets the details. A daemon batch
 * that holds the user in its cache at that moment writes it back: forget a user whose events have
 * stopped, or run it again. */
int st_redis_forget(st_redis_t *st, const char *user_id, st_forget_t *out, char *errstr,
                    size_t errstr_size);

/* "host:port", for messages. Owned by st. */
const char *st_redis_address(const st_redis_t *st);

/* Counters since st_redis_new, for tests, metrics and the bench. */
typedef struct st_redis_counters_s {
    uint64_t commands;      /* commands sent (inside MULTI/EXEC counted one by one) */
    uint64_t round_trips;   /* pipelines flushed and read */
    uint64_t commits;       /* successful st_redis_commit calls that wrote something */
    uint64_t users_created; /* records written that did not exist when loaded */
    uint64_t wait_us;       /* microseconds blocked waiting for replies (round trip + server) */
} st_redis_counters_t;
void st_redis_counters(const st_redis_t *st, st_redis_counters_t *out);

#endif
