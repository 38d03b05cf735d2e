/* Redis Cluster support of the Redis store (hiredis 0.14 has none): key -> slot (CRC16,
 * hash tags), redirection replies, the slot map (CLUSTER SLOTS) with one connection per
 * node, and the routing of the store's operations. Internal to state/, not a public API.
 *
 * Layout in cluster mode (redis.cluster = true), prefix P: every key of partition N carries
 * the hash tag {pN}, so a batch's writes for one partition live in one slot and stay one
 * MULTI/EXEC:
 *   P{pN}:u:<id>  P{pN}:seen:N  P{pN}:offsets  P{pN}:progress  P{pN}:outbox
 *   P{pN}:outbox:sending        and the model alone: P{model}:model
 * The store does this by switching its key prefix to "P{pN}:" (or "P{model}:") and its
 * active connection to the slot's master before each operation (rcl_route). */
#ifndef CS_REDIS_CLUSTER_H
#define CS_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#define RCL_SLOTS           16384
#define RCL_MODEL_PARTITION (-2) /* rcl_route target of the model key */

/* ---- pure functions (redis_slot.c), unit tested ---- */

/* CRC16-CCITT (XMODEM: poly 0x1021, init 0), as in the Redis Cluster specification;
 * crc16("123456789") = 0x31C3. */
uint16_t rcl_crc16(const void *buf, size_t len);
/* The part of a key that is hashed: the bytes between the first '{' and the first '}' after
 * it when that is not empty, else the whole key. */
void rcl_hash_part(const char *key, size_t len, const char **part, size_t *part_len);
/* HASH_SLOT = CRC16(hash part) mod 16384. */
int rcl_keyslot(const char *key, size_t len);

typedef enum {
    RCL_REDIR_NONE = 0,
    RCL_REDIR_MOVED,       /* "MOVED <slot> <host>:<port>": the slot lives there now */
    RCL_REDIR_ASK,         /* "ASK <slot> <host>:<port>": this key only, ASKING first */
    RCL_REDIR_TRYAGAIN,    /* multi-key command during a slot migration: retry later */
    RCL_REDIR_CLUSTERDOWN, /* the cluster cannot serve: retry later, refresh the map */
} rcl_redir_kind_t;

typedef struct rcl_redir_s {
    rcl_redir_kind_t kind;
    int slot;       /* MOVED/ASK; -1 otherwise */
    char host[256]; /* MOVED/ASK; IPv6 without brackets */
    int port;
} rcl_redir_t;

/* Parses an error reply's text. Returns the kind (RCL_REDIR_NONE for any other error, and
 * for a malformed MOVED/ASK) and fills *out. */
rcl_redir_kind_t rcl_parse_redirect(const char *err, size_t len, rcl_redir_t *out);

/* ---- the cluster (redis_cluster.c) ---- */

struct st_redis_s;
struct store_ops_s;
struct cfg_s;

typedef struct rcl_counters_s {
    uint64_t moved, ask, tryagain, clusterdown; /* redirections followed */
    uint64_t map_refreshes;                     /* CLUSTER SLOTS reads */
} rcl_counters_t;

typedef struct rcl_s rcl_t;

/* Called by st_redis_new after the seed connection is up (st->conn): checks the layout
 * rules (redis.db 0, no brace in state.prefix), reads the slot map. -1 with errstr. */
int rcl_init(struct st_redis_s *st, const struct cfg_s *cfg, char *errstr, size_t errstr_size);
/* Closes every node connection except the active one (st->conn, closed by the store). */
void rcl_destroy(struct st_redis_s *st);
/* Reconnects to a node that answers and rereads the slot map. */
int rcl_reconnect(struct st_redis_s *st, char *errstr, size_t errstr_size);
/* Counters since rcl_init (zeros when st is not in cluster mode). */
void rcl_counters(const struct st_redis_s *st, rcl_counters_t *out);

/* Points st's key prefix at partition's tag (RCL_MODEL_PARTITION: the model's) and its
 * active connection at the master of that slot, connecting it when needed. */
int rcl_route(struct st_redis_s *st, int32_t partition, char *errstr, size_t errstr_size);
/* After a failed attempt on the routed connection: follows a redirection the replies held
 * (MOVED: map update; ASK: the next attempt goes to the target with ASKING; TRYAGAIN and
 * CLUSTERDOWN: backoff, and a map refresh for the latter). 1 = try again, 0 = give up
 * (no redirection, or attempt limit reached: errstr then says so). */
int rcl_retry(struct st_redis_s *st, int attempt, char *errstr, size_t errstr_size);
/* Marks st as inside a routed call (the store's public functions then run as in single
 * mode) and returns the previous state; rcl_leave restores it. */
int rcl_enter(struct st_redis_s *st);
void rcl_leave(struct st_redis_s *st, int was);

/* 1 when the store must take its cluster path: cluster mode and not already routed. */
int rcl_wrap(const struct st_redis_s *st);

/* Runs `call` (an expression: a store function returning -1 on error) routed to
 * partition's slot, following redirections; rc gets its value. The store's public
 * functions open with `if (rcl_wrap(st)) { RCL_CALL(...); return rc; }`. */
#define RCL_CALL(st, partition, rc, call, errstr, errstr_size)                                     \
    do {                                                                                           \
        int was_ = rcl_enter(st);                                                                  \
        for (int a_ = 0;; a_++) {                                                                  \
            if (rcl_route((st), (partition), (errstr), (errstr_size)) != 0) {                      \
                (rc) = -1;                                                                         \
                break;                                                                             \
            }                                                                                      \
            (rc) = (call);                                                                         \
            if ((rc) != -1 || !rcl_retry((st), a_, (errstr), (errstr_size)))                       \
                break;                                                                             \
        }                                                                                          \
        rcl_leave((st), was_);                                                                     \
    } while (0)

/* The cluster paths of the store's public functions (redis_cluster_ops.c). */
int rcl_commit(struct st_redis_s *st, const void *commit, char *errstr, size_t errstr_size);
int rcl_prefetch(struct st_redis_s *st, int32_t partition, const char *const *user_ids, size_t n,
                 char *errstr, size_t errstr_size);
void rcl_wrap_ops(struct st_redis_s *st, struct store_ops_s *ops);
/* redis_cluster_reads.c; types from store_redis.h. */
struct st_outbox_s;
struct st_forget_s;
struct user_rec_s;
int rcl_outbox_load(struct st_redis_s *st, struct st_outbox_s *out, char *errstr,
                    size_t errstr_size);
int rcl_outbox_remove(struct st_redis_s *st, const char *const *ids, size_t n, char *errstr,
                      size_t errstr_size);
int rcl_outbox_claim(struct st_redis_s *st, const char *const *ids, size_t n, uint8_t *claimed,
                     char *errstr, size_t errstr_size);
int rcl_outbox_unclaim_all(struct st_redis_s *st, char *errstr, size_t errstr_size);
int rcl_get_user(struct st_redis_s *st, const char *user_id, struct user_rec_s *rec, int *found,
                 char *errstr, size_t errstr_size);
int rcl_forget(struct st_redis_s *st, const char *user_id, struct st_forget_s *out, char *errstr,
               size_t errstr_size);
struct st_fields_s;
/* st_redis_read_user in cluster mode: the record and the latest-score hash from the
 * partition that holds the user (both keys carry that partition's tag). */
int rcl_read_user(struct st_redis_s *st, const char *user_id, size_t len, struct user_rec_s *rec,
                  int *found, struct st_fields_s *score, char *errstr, size_t errstr_size);

#endif
