/* `churnstream migrate`: copies a single-node store into the cluster layout through the
 * store's own batch path (range on the source's P seen:N, prefetch/get/touched/commit on the
 * destination), so the destination's keys, index and transactions are exactly what a
 * cluster-mode daemon writes. A user's partition is the one whose last-seen index holds
 * them (store_redis.h's invariant: exactly one entry per record with an activity). */
#include "redis_migrate.h"

#include "redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIG_CHUNK 1000

typedef struct mig_user_s {
    char *id;
    user_rec_t rec;
} mig_user_t;

typedef struct mig_users_s {
    mig_user_t *v;
    const char **ids; /* v[i].id, once sorted (for prefetch) */
    size_t n, cap;
    int oom;
} mig_users_t;

static void collect(void *ctx, const char *user_id, user_rec_t *rec)
{
    mig_users_t *u = ctx;
    if (u->oom)
        return;
    if (u->n == u->cap) {
        size_t cap = u->cap ? 2 * u->cap : 1024;
        mig_user_t *v = realloc(u->v, cap * sizeof(*v));
        if (!v) {
            u->oom = 1;
            return;
        }
        u->v = v;
        u->cap = cap;
    }
    if (!(u->v[u->n].id = strdup(user_id))) {
        u->oom = 1;
        return;
    }
    u->v[u->n++].rec = *rec;
}

static void users_free(mig_users_t *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i].id);
    free(u->v);
    free(u->ids);
    memset(u, 0, sizeof(*u));
}

static int cmp_user(const void *a, const void *b)
{
    return strcmp(((const mig_user_t *)a)->id, ((const mig_user_t *)b)->id);
}

static int cmp_id(const void *key, const void *elem)
{
    return strcmp(*(const char *const *)key, *(const char *const *)elem);
}

/* The partitions of src's P offsets (HKEYS). *parts malloc'd. */
static int source_partitions(st_redis_t *src, int32_t **parts, size_t *n, char *errstr,
                             size_t errstr_size)
{
    rc_args_str(&src->args, "HKEYS");
    st_redis_key(src, "offsets", NULL, 0);
    redisReply *r = rc_command(&src->conn, &src->args, "HKEYS offsets", errstr, errstr_size);
    if (!r)
        return -1;
    *n = 0;
    *parts = malloc((r->elements + 1) * sizeof(**parts));
    if (!*parts) {
        freeReplyObject(r);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            (*parts)[(*n)++] = (int32_t)strtol(r->element[i]->str, NULL, 10);
    freeReplyObject(r);
    return 0;
}

/* P u:* keys of src, by SCAN. */
static int count_records(st_redis_t *src, size_t *n, char *errstr, size_t errstr_size)
{
    char cursor[32] = "0", pat[300];
    snprintf(pat, sizeof(pat), "%.*su:*", (int)src->prefix_len, src->prefix);
    *n = 0;
    do {
        rc_args_str(&src->args, "SCAN");
        rc_args_str(&src->args, cursor);
        rc_args_str(&src->args, "MATCH");
        rc_args_str(&src->args, pat);
        rc_args_str(&src->args, "COUNT");
        rc_args_str(&src->args, "1000");
        redisReply *r = rc_command(&src->conn, &src->args, "SCAN", errstr, errstr_size);
        if (!r)
            return -1;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->len >= sizeof(cursor)) {
            freeReplyObject(r);
            snprintf(errstr, errstr_size, "redis %s: SCAN: unexpected reply", src->conn.addr);
            return -1;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        *n += r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* One destination batch: users [lo, hi) of u, plus (last) the offset, progress and alerts. */
static int put_chunk(st_redis_t *dst, int32_t p, const mig_users_t *u, size_t lo, size_t hi,
                     const st_commit_t *last, char *errstr, size_t errstr_size)
{
    store_ops_t ops;
    if (st_redis_engine_ops(dst, p, &ops) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (hi > lo && st_redis_prefetch(dst, p, u->ids + lo, hi - lo, errstr, errstr_size) != 0)
        return -1;
    /* The alerts' users must be in the batch: the cluster commit files each alert under its
     * user's partition. */
    if (last && last->n_outbox &&
        st_redis_prefetch(dst, p, last->outbox_user_ids, last->n_outbox, errstr, errstr_size) != 0)
        return -1;
    for (size_t i = lo; i < hi; i++) {
        user_rec_t *rec = ops.get(ops.opaque, u->ids[i], strlen(u->ids[i]));
        *rec = u->v[i].rec;
        ops.touched(ops.opaque, u->ids[i], rec);
    }
    if (st_redis_commit(dst, last, errstr, errstr_size) != 0) {
        st_redis_discard(dst);
        return -1;
    }
    return 0;
}

/* The pending alerts of src whose user is in u (sorted ids): their indexes into ob. */
static size_t alerts_of(const st_outbox_t *ob, const mig_users_t *u, size_t *idx, uint8_t *placed)
{
    size_t k = 0;
    for (size_t i = 0; i < ob->n; i++) {
        const char *key = ob->user_ids[i];
        if (u->n && bsearch(&key, u->ids, u->n, sizeof(*u->ids), cmp_id)) {
            idx[k++] = i;
            placed[i] = 1;
        }
    }
    return k;
}

static int migrate_partition(st_redis_t *src, st_redis_t *dst, int32_t p, const st_outbox_t *ob,
                             uint8_t *placed, st_migrate_stats_t *out, char *errstr,
                             size_t errstr_size)
{
    int64_t off;
    int found_off, found_pr;
    store_progress_t pr;
    if (st_redis_load_offset(src, p, &off, &found_off, errstr, errstr_size) != 0 ||
        st_redis_load_progress(src, p, &pr, &found_pr, errstr, errstr_size) != 0)
        return -1;
    mig_users_t u = {0};
    store_ops_t ops;
    char latched[512];
    if (st_redis_engine_ops(src, p, &ops) != 0)
        return -1;
    ops.range(ops.opaque, INT64_MIN, INT64_MAX, collect, &u);
    /* A failed range query latches its error; the source is only read (discard, never
     * commit: the range may have marked stale index members for removal). */
    snprintf(latched, sizeof(latched), "%s", src->latched);
    st_redis_discard(src);
    if (latched[0] || u.oom) {
        snprintf(errstr, errstr_size, "partition %d: %s", (int)p,
                 u.oom ? "out of memory" : latched);
        users_free(&u);
        return -1;
    }
    /* Sorted by id: bsearch for the alerts, and a deterministic order of writes. */
    if (u.n)
        qsort(u.v, u.n, sizeof(*u.v), cmp_user);
    if (!(u.ids = malloc((u.n + 1) * sizeof(*u.ids)))) {
        users_free(&u);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < u.n; i++)
        u.ids[i] = u.v[i].id;
    int rc;
    size_t *idx = malloc((ob->n + 1) * sizeof(*idx));
    const char **ids = malloc((ob->n + 1) * sizeof(*ids)),
               **uids = malloc((ob->n + 1) * sizeof(*uids));
    const uint8_t **vals = malloc((ob->n + 1) * sizeof(*vals));
    size_t *lens = malloc((ob->n + 1) * sizeof(*lens));
    rc = -1;
    if (!idx || !ids || !uids || !vals || !lens) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    size_t na = alerts_of(ob, &u, idx, placed);
    for (size_t i = 0; i < na; i++) {
        ids[i] = ob->ids[idx[i]];
        uids[i] = ob->user_ids[idx[i]];
        vals[i] = ob->values[idx[i]];
        lens[i] = ob->lens[idx[i]];
    }
    st_commit_t last = {.n_offsets = found_off ? 1 : 0,
                        .offset_partitions = &p,
                        .next_offsets = &off,
                        .n_progress = found_pr ? 1 : 0,
                        .progress_partitions = &p,
                        .progress = &pr,
                        .n_outbox = na,
                        .outbox_ids = ids,
                        .outbox_user_ids = uids,
                        .outbox_values = vals,
                        .outbox_lens = lens};
    size_t lo = 0;
    do {
        size_t hi = u.n - lo > MIG_CHUNK ? lo + MIG_CHUNK : u.n;
        if (put_chunk(dst, p, &u, lo, hi, hi == u.n ? &last : NULL, errstr, errstr_size) != 0)
            goto out;
        lo = hi;
    } while (lo < u.n);
    out->users += u.n;
    out->alerts += na;
    out->partitions++;
    rc = 0;
out:
    free(idx);
    free(ids);
    free(uids);
    free(vals);
    free(lens);
    users_free(&u);
    return rc;
}

int st_redis_migrate(st_redis_t *src, st_redis_t *dst, st_migrate_stats_t *out, char *errstr,
                     size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    if (src->cl || !dst->cl) {
        snprintf(errstr, errstr_size,
                 "migrate copies a single-node store into a cluster (redis.cluster=true)");
        return -1;
    }
    int32_t *parts = NULL;
    size_t np = 0;
    st_outbox_t ob = {0};
    uint8_t *placed = NULL;
    int rc = -1;
    if (count_records(src, &out->records_in_source, errstr, errstr_size) != 0 ||
        source_partitions(src, &parts, &np, errstr, errstr_size) != 0 ||
        st_redis_outbox_load(src, &ob, errstr, errstr_size) != 0)
        goto done;
    if (!(placed = calloc(ob.n + 1, 1))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < np; i++)
        if (migrate_partition(src, dst, parts[i], &ob, placed, out, errstr, errstr_size) != 0)
            goto done;
    for (size_t i = 0; i < ob.n; i++)
        out->alerts_unplaced += !placed[i];
    uint8_t *model = NULL;
    size_t model_len = 0;
    if (st_redis_load_model(src, &model, &model_len, errstr, errstr_size) != 0)
        goto done;
    if (model) {
        st_commit_t mc = {.model = model, .model_len = model_len};
        rc = st_redis_commit(dst, &mc, errstr, errstr_size);
        free(model);
        if (rc != 0)
            goto done;
        out->model = 1;
    }
    rc = 0;
done:
    free(parts);
    free(placed);
    st_redis_outbox_free(&ob);
    return rc;
}
