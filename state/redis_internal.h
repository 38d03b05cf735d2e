/* Internals shared by the Redis store's files, not a public API: the connection
 * (redis_conn.c), binary-safe command arguments and reply helpers (redis_args.c), the batch
 * cache (redis_cache.c) and the store itself (store_redis.c, redis_reads.c, redis_scores.c). */
#ifndef CS_REDIS_INTERNAL_H
#define CS_REDIS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "config.h"
#include "redis_cluster.h"
#include "store_redis.h"
#include "uid_index.h"
#include "user.h"

/* ---- connection (redis_conn.c) ---- */

/* What a (re)connect needs, copied from the config, and the live context. */
typedef struct rc_conn_s {
    redisContext *ctx; /* NULL when not connected (never connected, or dropped after an I/O
                          error: hiredis contexts are unusable after one) */
    char *host;
    int port;
    char *user;     /* NULL = default user */
    char *password; /* NULL = no AUTH */
    int db;
    int64_t connect_timeout_ms, command_timeout_ms;
    char addr[300];                 /* "host:port", for messages */
    uint64_t commands, round_trips; /* counters for st_redis_counters */
    uint64_t wait_us;               /* time rc_read blocked for a reply not yet received */
    /* Cluster mode (redis_cluster.c): the first redirection error read since the last
     * rcl_route, and ASK handling: when `asking`, every command goes out after an ASKING,
     * whose +OK (or +QUEUED inside MULTI) rc_read skips. */
    rcl_redir_t redirect;
    int asking;
    int in_multi; /* between MULTI and EXEC as appended */
    size_t asking_unread;
    /* A commit in flight (st_redis_commit_send): its replies come before any other. The
     * next rc_read (and rc_connect) first calls drain(drain_opaque), which reads them;
     * drain is cleared before the call. NULL when nothing is in flight. */
    void (*drain)(void *opaque);
    void *drain_opaque;
} rc_conn_t;

/* Copies what it needs from cfg. -1 on out of memory. */
int rc_init(rc_conn_t *rc, const cfg_t *cfg, char *errstr, size_t errstr_size);
/* Closes and frees the copies; safe on a zeroed struct. */
void rc_fini(rc_conn_t *rc);
/* (Re)connects: drops any old context, connects within the connect timeout, sets the
 * command timeout, then AUTH, SELECT, CLIENT SETNAME and PING in one round trip. Errors
 * read "redis HOST:PORT: <cause>". */
int rc_connect(rc_conn_t *rc, char *errstr, size_t errstr_size);
/* Calls and clears the drain hook if one is set (a commit in flight): rc_read and rc_connect
 * call it first, so a commit's replies are read before any other. */
void rc_drain(rc_conn_t *rc);
/* Formats "redis HOST:PORT: <what>: <cause of the context error>" and drops the context
 * (after an I/O or protocol error its stream is out of step). Returns -1. */
int rc_io_error(rc_conn_t *rc, const char *what, char *errstr, size_t errstr_size);
/* -1 with "redis HOST:PORT: not connected" when the context was dropped, else 0. */
int rc_check(rc_conn_t *rc, char *errstr, size_t errstr_size);

/* ---- arguments of one command (redis_args.c) ---- */

/* Arguments with explicit lengths, so user ids and values may hold any byte: nothing
 * user-supplied ever goes through a format string. Arguments are either copied into an owned
 * buffer or borrowed (valid until rc_append). rc_append writes the command's RESP into resp
 * (reused across commands: no allocation per command once it is large enough) and hands it to
 * hiredis as an already formatted command. */
typedef struct rc_args_s {
    size_t n, cap;
    const char **ptr; /* borrowed pointer, or NULL: the bytes are at buf + off */
    size_t *off, *len;
    char *buf;
    size_t buf_len, buf_cap;
    char *resp; /* the formatted command (rc_args_resp) */
    size_t resp_cap;
    int oom; /* an allocation failed: rc_append refuses the command */
} rc_args_t;

void rc_args_reset(rc_args_t *a);
void rc_args_free(rc_args_t *a);
/* Copies len bytes as one argument. */
void rc_args_add(rc_args_t *a, const void *p, size_t len);
/* Borrows p (must stay valid until the command is appended). */
void rc_args_ref(rc_args_t *a, const void *p, size_t len);
void rc_args_str(rc_args_t *a, const char *s);
/* One argument made of parts: a + b + c (any may be NULL/0), e.g. prefix, "u:", user id. */
void rc_args_cat(rc_args_t *a, const char *p1, size_t l1, const char *p2, size_t l2, const void *p3,
                 size_t l3);
void rc_args_i64(rc_args_t *a, int64_t v);
/* The command as RESP (an array of bulk strings, as redisFormatCommandArgv writes it) in
 * a->resp; returns its length, 0 when there is no argument or out of memory. The arguments
 * stay (rc_append resets them). */
size_t rc_args_resp(rc_args_t *a);
/* Appends the command to the context's output buffer (sent at the next read) and resets a.
 * -1 on out of memory. */
int rc_append(rc_conn_t *rc, rc_args_t *a, char *errstr, size_t errstr_size);
/* Reads the next reply of the pipeline. -1 with errstr (and the context dropped) on an I/O
 * or protocol error. */
int rc_read(rc_conn_t *rc, redisReply **reply, const char *what, char *errstr, size_t errstr_size);
/* The next reply if it has arrived, without blocking: 1 with *reply, 0 when none is complete
 * yet, -1 with errstr (the context dropped) on an I/O or protocol error. Sends nothing and
 * never calls drain: for reading a commit in flight (redis_commit.c). */
int rc_try_read(rc_conn_t *rc, redisReply **reply, const char *what, char *errstr,
                size_t errstr_size);
/* Writes the whole output buffer (blocking, within the command timeout) and counts one
 * round trip begun. 0, or -1 with errstr (the context dropped). */
int rc_flush(rc_conn_t *rc, const char *what, char *errstr, size_t errstr_size);
/* rc_append + rc_read: one command, one round trip. */
redisReply *rc_command(rc_conn_t *rc, rc_args_t *a, const char *what, char *errstr,
                       size_t errstr_size);

/* Writes a printable form of a binary key into buf: bytes below 0x20, 0x7f and '"', '\\'
 * escaped (\xNN), UTF-8 kept as is; truncated with "..." to fit. */
void rc_printable(const void *p, size_t len, char *buf, size_t cap);

/* ---- batch cache (redis_cache.c) ---- */

/* One cached user. Entries are allocated one by one, so record pointers handed to the
 * engine stay valid while the cache grows. */
typedef struct rc_entry_s {
    user_rec_t rec;         /* first member: the engine's record pointer maps back to its entry */
    int64_t last_before_ms; /* last activity as stored in Redis (FEAT_NEVER when absent) */
    int64_t last_now_ms;    /* last activity now (updated by `touched`) */
    int32_t partition;      /* the partition whose sweep owns the user; -1 = none yet */
    int32_t unindex_partition; /* >= 0: ZREM the user from that seen index at commit */
    uint8_t dirty;             /* write the record at commit */
    uint8_t stored;            /* the record existed in Redis when loaded */
    uint32_t uid_len;
    char uid[]; /* NUL-terminated */
} rc_entry_t;

typedef struct rc_cache_s {
    rc_entry_t **items; /* in insertion order */
    size_t n, cap;
    uid_index_t index; /* user id -> position in items */
} rc_cache_t;

rc_entry_t *rc_cache_find(const rc_cache_t *c, const char *uid, size_t len);
/* Adds an absent user with an empty record (user_rec_init), partition -1. NULL on OOM. */
rc_entry_t *rc_cache_add(rc_cache_t *c, const char *uid, size_t len);
/* Adds an entry allocated elsewhere (the cluster commit splits a cache by partition); the
 * cache frees it from then on. -1 on OOM (e is then not added). */
int rc_cache_adopt(rc_cache_t *c, rc_entry_t *e);
/* Removes the entries added after the first n (undo of a failed load). */
void rc_cache_truncate(rc_cache_t *c, size_t n);
void rc_cache_clear(rc_cache_t *c);
void rc_cache_free(rc_cache_t *c);

/* ---- the store ---- */

typedef struct rc_part_s {
    st_redis_t *st;
    int32_t partition;
    struct rc_part_s *next;
} rc_part_t;

/* The commit in flight (st_redis_commit_send .. st_redis_commit_finish): its replies in
 * order, MULTI's +OK, one +QUEUED per command, then EXEC's array (redis_commit.c). */
typedef struct rc_inflight_s {
    int active;          /* sent; its outcome not yet collected by _finish */
    int left;            /* replies still to read; 0 once the outcome is known */
    int q;               /* commands inside MULTI/EXEC */
    int rc;              /* once left == 0: 0 applied, -1 failed (err) */
    char first_err[400]; /* the first error among MULTI's and the +QUEUED replies */
    char err[1024];
} rc_inflight_t;

struct st_redis_s {
    rc_conn_t conn; /* in cluster mode: the connection of the node routed to last */
    char *prefix;   /* in cluster mode: base prefix + the routed partition's tag "{pN}:" */
    size_t prefix_len;
    rcl_t *cl; /* NULL = single node */
    int64_t ttl_ms;
    rc_cache_t cache;
    rc_args_t args;
    rc_part_t *parts;    /* engine ops contexts, one per partition */
    rc_entry_t *scratch; /* handed to the engine when a get fails (error latched) */
    char latched[512];   /* first error inside an engine callback; "" = none */
    uint64_t users_created, commits;
    rc_inflight_t inflight;
};

/* Latches the first error of a callback; returned by the next commit. */
void st_redis_latch(st_redis_t *st, const char *msg);
/* Loads the records of ids[0..n) not cached yet into the cache in one pipelined round of
 * MGETs. New entries get `partition` (-1 = unowned, as for range loads). On error the
 * cache is unchanged. */
int st_redis_load(st_redis_t *st, int32_t partition, const char *const *ids, const size_t *lens,
                  size_t n, char *errstr, size_t errstr_size);
/* Queues the HSET (and PEXPIRE or PERSIST) of every latest score of c inside the commit's
 * MULTI (redis_scores.c). Returns commands queued, -1 on error. */
int st_redis_queue_scores(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size);
/* Queues an HSET per journal entry of c (redis_journal.c). Commands queued, -1 on error. */
int st_redis_queue_journals(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size);
/* Adds one key argument: prefix + mid + id. */
void st_redis_key(st_redis_t *st, const char *mid, const char *id, size_t len);

/* ---- cluster mode (redis_cluster.c; redis_cluster.h has the key layout) ---- */

#define RCL_NO_NODE 0xFFFF

typedef struct rcl_node_s {
    rc_conn_t conn; /* stale while the node is the active one (see the invariants) */
} rcl_node_t;

struct rcl_s {
    rcl_node_t *nodes;
    size_t n_nodes, cap_nodes;
    uint16_t slot_node[RCL_SLOTS]; /* node index, RCL_NO_NODE when unknown */
    int active;                    /* node whose connection is in st->conn, -1 = none */
    int ask_node;                  /* >= 0: the next rcl_route goes there, with ASKING */
    int routed;                    /* inside a routed call (rcl_enter) */
    char *base;                    /* state.prefix */
    size_t base_len;
    rc_conn_t tmpl; /* credentials and timeouts copied from the config, never connected */
    rcl_counters_t k;
    int32_t *ob_parts; /* partitions known to hold an outbox (scan at load, commits since) */
    size_t n_ob_parts, cap_ob_parts;
    int32_t *known_parts; /* partitions with stored offsets, as last scanned (get_user) */
    size_t n_known_parts;
    int known_scanned;
    /* The progress this store last committed per partition (index = partition), so a batch
     * does not spend a transaction on a partition whose only write would rewrite the same
     * bytes. Dropped after any failed commit (what Redis holds is then unknown). */
    store_progress_t *last_prog;
    uint8_t *last_prog_ok;
    size_t n_last_prog;
};

/* Makes node i's connection st->conn (redis_cluster.c). */
void rcl_node_select(st_redis_t *st, int i);
/* The partitions N with a key "<state.prefix>{pN}:<suffix_glob>" on any master, by SCAN
 * (never KEYS), sorted and distinct; *parts malloc'd (caller frees). suffix_glob is a
 * Redis glob whose special characters the caller escaped (redis_cluster_ops.c). */
int rcl_scan_partitions(st_redis_t *st, const char *suffix_glob, int32_t **parts, size_t *n,
                        char *errstr, size_t errstr_size);
/* Appends p to the list (*v, *n, capacity *cap) unless it is there already. -1 on out of
 * memory (the list is unchanged). */
int rcl_parts_add(int32_t **v, size_t *n, size_t *cap, int32_t p);

#define RC_MGET_CHUNK 512 /* keys per MGET, pairs per MSET/ZADD */

/* redis_reads.c: appends s to a Redis glob pattern with a backslash before each of * ? [ ]
 * and \ (out holds 2 * len bytes). Returns the bytes written. */
size_t st_redis_glob_escape(char *out, const char *s, size_t len);
/* redis_reads.c: SCANs the node st->conn is connected to (never KEYS: it would block a large
 * server) for the keys matching the glob pat (pat_len bytes), of `type` (NULL = any), and
 * calls visit on each key that is a string; visit returns 0, or -1 on out of memory, which
 * ends the scan. The one SCAN loop and reply check of the store and the cluster router.
 * 0, or -1 with errstr. */
int st_redis_scan(st_redis_t *st, const char *pat, size_t pat_len, const char *type,
                  int (*visit)(void *ctx, const char *key, size_t len), void *ctx, char *errstr,
                  size_t errstr_size);

#endif
