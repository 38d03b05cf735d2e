/* Redis user store (DESIGN.md sections 3 and 7). Key layout, with prefix P (state.prefix,
 * default "cs:"):
 *   P u:<user_id>        STRING  packed user record (user_rec_encode), PX state.ttl
 *   P seen:<partition>   ZSET    user_id -> last activity time (ms), the sweep's range index
 *   P offsets            HASH    partition -> next offset to consume
 *   P progress           HASH    partition -> engine progress (eng_progress_t, packed)
 *   P model              STRING  model snapshot (model_encode)
 *   P outbox             HASH    alert_id -> encoded alert, until the producer delivers it
 * A batch works on a cache: st_redis_prefetch() loads the batch's users in one pipelined
 * round (MGET in chunks), the engine reads and writes records in the cache, and
 * st_redis_commit() writes every dirty record, the last-seen updates, offsets, progress,
 * model and outbox in ONE MULTI/EXEC, so state and offsets always move together. */
#ifndef CS_STORE_REDIS_H
#define CS_STORE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "engine.h"
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
 * -1 with errstr on a connection or protocol error (the cache is then left unchanged). */
int st_redis_prefetch(st_redis_t *st, int32_t partition, const char *const *user_ids,
                      size_t n, char *errstr, size_t errstr_size);

/* Fills *ops so an engine uses this store for one partition's users: get reads the cache
 * (a miss falls back to one GET), range queries P seen:<partition> and prefetches what it
 * finds, touched marks records dirty. Errors inside these callbacks are latched and returned
 * by the next st_redis_commit (the batch is then not committed). */
void st_redis_engine_ops(st_redis_t *st, int32_t partition, eng_store_t *ops);

/* What a batch commits besides the dirty records. Arrays may be empty. */
typedef struct st_commit_s {
    size_t n_offsets;
    const int32_t *offset_partitions;
    const int64_t *next_offsets;
    size_t n_progress;
    const int32_t *progress_partitions;
    const eng_progress_t *progress;
    const uint8_t *model; /* NULL = model unchanged */
    size_t model_len;
    size_t n_outbox;
    const char *const *outbox_ids;
    const uint8_t *const *outbox_values;
    const size_t *outbox_lens;
} st_commit_t;

/* Writes every dirty record (SET PX ttl), last-seen updates (ZADD), and c in one
 * MULTI/EXEC; on success clears the cache. -1 with errstr when the transaction failed: then
 * nothing was applied and the caller must reload and redo the batch. */
int st_redis_commit(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size);

/* Drops the cache without writing (after a failed commit). */
void st_redis_discard(st_redis_t *st);

/* Reads back what commits wrote. *found = 0 when absent. */
int st_redis_load_offset(st_redis_t *st, int32_t partition, int64_t *next_offset, int *found,
                         char *errstr, size_t errstr_size);
int st_redis_load_progress(st_redis_t *st, int32_t partition, eng_progress_t *out, int *found,
                           char *errstr, size_t errstr_size);
/* *buf is malloc'd (caller frees); *buf = NULL when no model is stored. */
int st_redis_load_model(st_redis_t *st, uint8_t **buf, size_t *len, char *errstr,
                        size_t errstr_size);

/* Outbox: every pending alert (ids and values malloc'd, freed by st_redis_outbox_free), and
 * removal of delivered ones (HDEL, outside any batch transaction). */
typedef struct st_outbox_s {
    size_t n;
    char **ids;
    uint8_t **values;
    size_t *lens;
} st_outbox_t;
int st_redis_outbox_load(st_redis_t *st, st_outbox_t *out, char *errstr, size_t errstr_size);
void st_redis_outbox_free(st_outbox_t *ob);
int st_redis_outbox_remove(st_redis_t *st, const char *const *ids, size_t n, char *errstr,
                           size_t errstr_size);

/* Reads one user's record without touching the cache. *found = 0 when absent. */
int st_redis_get_user(st_redis_t *st, const char *user_id, user_rec_t *rec, int *found,
                      char *errstr, size_t errstr_size);
/* Deletes a user everywhere: the record, every P seen:* entry, pending outbox alerts of the
 * user. Returns 1 when something was removed, 0 when nothing was, -1 on error. */
int st_redis_forget(st_redis_t *st, const char *user_id, char *errstr, size_t errstr_size);

#endif
