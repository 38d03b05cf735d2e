/* Replay's user state (replay_internal.h): memory, or Redis through the live path's store.
 * Memory applies each event at once; Redis holds a batch's events until its end, prefetches
 * its distinct users in one round, applies them, and commits the batch in one MULTI/EXEC
 * (partition 0; offset = events read so far). The engine sees the same calls in the same
 * order either way. */
#include "replay_internal.h"
#include "grow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rp_store_open(rp_store_t *s, const cfg_t *cfg, int redis, store_ops_t *ops, char *errstr,
                  size_t errstr_size)
{
    memset(s, 0, sizeof(*s));
    if (!redis) {
        if (!(s->mem = st_mem_new())) {
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        st_mem_engine_ops(s->mem, ops);
        return 0;
    }
    if (!(s->redis = st_redis_new(cfg, errstr, errstr_size)))
        return -1;
    /* A replay starts from empty state: refuse a prefix that already holds some. */
    store_progress_t pr;
    int64_t off;
    int found_off = 0, found_pr = 0;
    if (st_redis_load_offset(s->redis, 0, &off, &found_off, errstr, errstr_size) != 0 ||
        st_redis_load_progress(s->redis, 0, &pr, &found_pr, errstr, errstr_size) != 0)
        return -1;
    if (found_off || found_pr) {
        snprintf(errstr, errstr_size,
                 "redis %s: prefix \"%s\" already holds state: replay "
                 "into an unused --state.prefix (e.g. --state.prefix=bt:) or delete its keys",
                 st_redis_address(s->redis), cfg->state_prefix);
        return -1;
    }
    if (st_redis_engine_ops(s->redis, 0, ops) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    return 0;
}

void rp_store_close(rp_store_t *s)
{
    st_mem_destroy(s->mem);
    st_redis_destroy(s->redis);
}

/* An accepted event: applied now (memory) or at the batch's end (Redis). */
/* The batch driver's view of replay: one pipeline, and the Redis store's prefetch. */
typedef struct apply_ctx_s {
    rp_store_t *s;
    pl_t *pl;
} apply_ctx_t;

static pl_t *only_pipeline(void *opaque, int32_t partition)
{
    (void)partition;
    return ((apply_ctx_t *)opaque)->pl;
}

static int redis_prefetch(void *opaque, int32_t partition, const char *const *ids, size_t n,
                          char *err, size_t errsz)
{
    return st_redis_prefetch(((apply_ctx_t *)opaque)->s->redis, partition, ids, n, err, errsz);
}

int rp_store_apply(rp_store_t *s, batch_t *b, pl_t *pl, char *errstr, size_t errstr_size)
{
    apply_ctx_t ctx = {s, pl};
    batch_ops_t ops = {
        .opaque = &ctx, .pipeline = only_pipeline, .prefetch = s->redis ? redis_prefetch : NULL};
    return batch_apply(b, &ops, errstr, errstr_size);
}

/* Redis: commits the batch (records, index, offset, progress, model when it changed). */
int rp_store_commit(rp_store_t *s, pl_t *pl, const model_t *model, int64_t events_read,
                    char *errstr, size_t errstr_size)
{
    if (!s->redis)
        return 0;
    int32_t part = 0;
    eng_progress_t prog;
    store_progress_t pr;
    eng_get_progress(pl_engine(pl), &prog);
    eng_progress_pack(&prog, &pr);
    st_commit_t c = {.n_offsets = 1,
                     .offset_partitions = &part,
                     .next_offsets = &events_read,
                     .n_progress = 1,
                     .progress_partitions = &part,
                     .progress = &pr};
    uint8_t *mbuf = NULL;
    size_t mlen = 0;
    uint64_t version = model_version(model);
    if (!s->has_committed_model || version != s->committed_model_version) {
        if (model_encode(model, &mbuf, &mlen) != 0) {
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        c.model = mbuf;
        c.model_len = mlen;
    }
    int rc = st_redis_commit(s->redis, &c, errstr, errstr_size);
    free(mbuf);
    if (rc != 0)
        return -1;
    s->committed_model_version = version;
    s->has_committed_model = 1;
    return 0;
}

size_t rp_store_users(const rp_store_t *s)
{
    if (s->mem)
        return st_mem_count(s->mem);
    st_redis_counters_t k;
    st_redis_counters(s->redis, &k);
    return (size_t)k.users_created;
}
