/* In-memory user store: a uid_index over dense arrays of ids, records and last-activity
 * times. Removal swaps the last user into the hole, so the
 * arrays stay dense and the range scan touches no tombstones. */
#include "store_mem.h"
#include "grow.h"

#include "log.h"
#include "radix.h"
#include "uid_index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct st_mem_s {
    size_t count, cap; /* users, allocated slots of the dense arrays */
    char **ids;        /* owned, NUL-terminated */
    uint32_t *id_lens;
    user_rec_t *recs;
    int64_t *last_act_ms; /* copy of feat_last_activity_ms() for the range scan */
    uid_index_t index;    /* user id -> dense position */
    uint32_t *visit;      /* range scratch: indices to visit, sorted */
    uint32_t *visit_tmp;  /* range scratch: the radix sort's other buffer */
    size_t visit_cap;     /* entries of visit and visit_tmp */
    size_t radix_count[8][256];
};

static void mem_key(const void *owner, size_t i, const char **id, size_t *len)
{
    const st_mem_t *st = owner;
    *id = st->ids[i];
    *len = st->id_lens[i];
}

st_mem_t *st_mem_new(void)
{
    return calloc(1, sizeof(st_mem_t));
}

void st_mem_destroy(st_mem_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->count; i++)
        free(st->ids[i]);
    free(st->ids);
    free(st->id_lens);
    free(st->recs);
    free(st->last_act_ms);
    uid_index_free(&st->index);
    free(st->visit);
    free(st->visit_tmp);
    free(st);
}

static size_t find_slot(const st_mem_t *st, const char *id, size_t len)
{
    return uid_index_slot(&st->index, id, len, mem_key, st);
}

static int grow(st_mem_t *st)
{
    if (st->cap >= UINT32_MAX / 2 ||
        CS_GROW4(st->ids, st->id_lens, st->recs, st->last_act_ms, st->cap, st->cap + 1, 1024) != 0)
        return -1;
    return uid_index_rebuild(&st->index, st->cap * 2, st->count, mem_key, st);
}

user_rec_t *st_mem_get(st_mem_t *st, const char *user_id, size_t len)
{
    if (st->count == st->cap && grow(st) != 0)
        return NULL;
    size_t s = find_slot(st, user_id, len);
    if (st->index.slots[s])
        return &st->recs[st->index.slots[s] - 1];
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, user_id, len);
    copy[len] = '\0';
    size_t i = st->count++;
    st->ids[i] = copy;
    st->id_lens[i] = (uint32_t)len;
    user_rec_init(&st->recs[i]);
    st->last_act_ms[i] = INT64_MIN;
    st->index.slots[s] = (uint32_t)(i + 1);
    return &st->recs[i];
}

size_t st_mem_count(const st_mem_t *st)
{
    return st->count;
}

const char *st_mem_user_id(const st_mem_t *st, size_t i)
{
    return st->ids[i];
}

user_rec_t *st_mem_at(st_mem_t *st, size_t i)
{
    return &st->recs[i];
}

static user_rec_t *ops_get(void *opaque, const char *user_id, size_t len)
{
    user_rec_t *rec = st_mem_get(opaque, user_id, len);
    if (!rec) {
        /* The engine cannot go on without the record; losing the event silently is worse. */
        log_error("state", "out of memory holding %zu users", st_mem_count(opaque));
        abort();
    }
    return rec;
}

/* The Redis store's order (ZRANGEBYSCORE: score, then member bytes, the shorter first on a
 * tie), so both stores visit users, and the model learns, in the same order. */
static int cmp_visit(const void *a, const void *b, void *arg)
{
    const st_mem_t *st = arg;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (st->last_act_ms[i] != st->last_act_ms[j])
        return st->last_act_ms[i] < st->last_act_ms[j] ? -1 : 1;
    uint32_t li = st->id_lens[i], lj = st->id_lens[j];
    int c = memcmp(st->ids[i], st->ids[j], li < lj ? li : lj);
    if (c != 0)
        return c;
    return li < lj ? -1 : li > lj;
}

/* Sorts st->visit[0..n) into cmp_visit's order. Ids are unique, so that order is total and
 * any correct sort gives the same one: an LSD radix sort by last activity (8-bit digits,
 * those equal in every entry skipped), then each run of equal times by id (cmp_visit; such
 * ties are few). A sweep sorts ~every user of the window each tick, which qsort_r's
 * comparator calls made a top cost of replay. */
static void sort_visit(st_mem_t *st, size_t n)
{
    if (n < 64) {
        if (n > 1) /* visit is NULL before the first range: qsort_r(NULL, 0) is UB */
            qsort_r(st->visit, n, sizeof(*st->visit), cmp_visit, st);
        return;
    }
    const int64_t *t = st->last_act_ms;
    memset(st->radix_count, 0, sizeof(st->radix_count));
    /* The key of an index: its user's last activity, in unsigned order = signed order. */
#define VISIT_KEY(p, word) ((uint64_t)t[*(p)] ^ (1ULL << 63))
    CS_RADIX_SORT(uint32_t, st->visit, st->visit_tmp, n, 1, st->radix_count, VISIT_KEY);
#undef VISIT_KEY
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && t[st->visit[j]] == t[st->visit[i]]; j++)
            ;
        if (j - i > 1)
            qsort_r(st->visit + i, j - i, sizeof(*st->visit), cmp_visit, st);
    }
}

/* The users whose last activity is in [lo_ms, hi_ms), in table order, into st->visit;
 * returns how many. */
static size_t collect_visit(st_mem_t *st, int64_t lo_ms, int64_t hi_ms)
{
    if (st->visit_cap < st->count &&
        CS_GROW2(st->visit, st->visit_tmp, st->visit_cap, st->count, 1024) != 0) {
        log_error("state", "out of memory sweeping %zu users", st->count);
        abort();
    }
    size_t n = 0;
    for (size_t i = 0; i < st->count; i++) {
        int64_t t = st->last_act_ms[i];
        if (t >= lo_ms && t < hi_ms)
            st->visit[n++] = (uint32_t)i;
    }
    return n;
}

/* Visits st->visit[0..n). Visiting never inserts, so the arrays cannot move under the loop. */
static void visit_collected(st_mem_t *st, size_t n,
                            void (*visit)(void *ctx, const char *user_id, user_rec_t *rec),
                            void *ctx)
{
    for (size_t k = 0; k < n; k++)
        visit(ctx, st->ids[st->visit[k]], &st->recs[st->visit[k]]);
}

static void ops_range(void *opaque, int64_t lo_ms, int64_t hi_ms,
                      void (*visit)(void *ctx, const char *user_id, user_rec_t *rec), void *ctx)
{
    st_mem_t *st = opaque;
    size_t n = collect_visit(st, lo_ms, hi_ms);
    sort_visit(st, n);
    visit_collected(st, n, visit, ctx);
}

/* ops_range without the sort: the same users in table order. */
static void ops_each(void *opaque, int64_t lo_ms, int64_t hi_ms,
                     void (*visit)(void *ctx, const char *user_id, user_rec_t *rec), void *ctx)
{
    st_mem_t *st = opaque;
    visit_collected(st, collect_visit(st, lo_ms, hi_ms), visit, ctx);
}

static void ops_touched(void *opaque, const char *user_id, user_rec_t *rec)
{
    st_mem_t *st = opaque;
    (void)user_id;
    st->last_act_ms[rec - st->recs] = feat_last_activity_ms(&rec->feat);
}

void st_mem_engine_ops(st_mem_t *st, store_ops_t *ops)
{
    ops->opaque = st;
    ops->get = ops_get;
    ops->range = ops_range;
    ops->touched = ops_touched;
    ops->each = ops_each;
}
