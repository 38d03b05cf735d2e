/* The Redis store's batch cache: user id -> entry (record, dirty flag, partition, last
 * activity as loaded and now), a uid_index over an insertion-ordered array of individually
 * allocated entries (record pointers stay put while the cache grows). */
#include "redis_internal.h"

#include <stdlib.h>
#include <string.h>

static void cache_key(const void *owner, size_t i, const char **id, size_t *len)
{
    const rc_entry_t *e = ((const rc_cache_t *)owner)->items[i];
    *id = e->uid;
    *len = e->uid_len;
}

static size_t find_slot(const rc_cache_t *c, const char *uid, size_t len)
{
    return uid_index_slot(&c->index, uid, len, cache_key, c);
}

rc_entry_t *rc_cache_find(const rc_cache_t *c, const char *uid, size_t len)
{
    if (c->n == 0)
        return NULL;
    uint32_t v = c->index.slots[find_slot(c, uid, len)];
    return v ? c->items[v - 1] : NULL;
}

rc_entry_t *rc_cache_add(rc_cache_t *c, const char *uid, size_t len)
{
    rc_entry_t *e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    user_rec_init(&e->rec);
    e->last_before_ms = FEAT_NEVER;
    e->last_now_ms = FEAT_NEVER;
    e->partition = -1;
    e->unindex_partition = -1;
    e->dirty = 0;
    e->stored = 0;
    e->uid_len = (uint32_t)len;
    memcpy(e->uid, uid, len);
    e->uid[len] = '\0';
    if (rc_cache_adopt(c, e) != 0) {
        free(e);
        return NULL;
    }
    return e;
}

int rc_cache_adopt(rc_cache_t *c, rc_entry_t *e)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        if (cap > UINT32_MAX - 1)
            return -1;
        rc_entry_t **items = realloc(c->items, cap * sizeof(*items));
        if (!items)
            return -1;
        c->items = items;
        c->cap = cap;
        if (uid_index_rebuild(&c->index, cap * 2, c->n, cache_key, c) != 0)
            return -1;
    }
    size_t s = find_slot(c, e->uid, e->uid_len);
    c->items[c->n++] = e;
    c->index.slots[s] = (uint32_t)c->n;
    return 0;
}

void rc_cache_truncate(rc_cache_t *c, size_t n)
{
    if (n >= c->n)
        return;
    for (size_t i = n; i < c->n; i++)
        free(c->items[i]);
    c->n = n;
    /* Rare (a failed load): rebuilding the slots in place is simpler than deleting under
     * linear probing, and cannot fail. */
    uid_index_rebuild(&c->index, 0, c->n, cache_key, c);
}

void rc_cache_clear(rc_cache_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->items[i]);
    c->n = 0;
    uid_index_rebuild(&c->index, 0, 0, cache_key, c);
}

void rc_cache_free(rc_cache_t *c)
{
    rc_cache_clear(c);
    free(c->items);
    uid_index_free(&c->index);
    memset(c, 0, sizeof(*c));
}
