/* The Redis store's batch cache: user id -> entry (record, dirty flag, partition, last
 * activity as loaded and now), FNV-1a with linear probing over an insertion-ordered array of
 * individually allocated entries (record pointers stay put while the cache grows). */
#include "redis_internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_id(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Slot holding the user, or the empty slot where it would go. nslots > 0. */
static size_t find_slot(const rc_cache_t *c, const char *uid, size_t len)
{
    size_t mask = c->nslots - 1, s = (size_t)hash_id(uid, len) & mask;
    for (;; s = (s + 1) & mask) {
        uint32_t v = c->slots[s];
        if (v == 0)
            return s;
        const rc_entry_t *e = c->items[v - 1];
        if (e->uid_len == len && memcmp(e->uid, uid, len) == 0)
            return s;
    }
}

static int rehash(rc_cache_t *c, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return -1;
    free(c->slots);
    c->slots = slots;
    c->nslots = nslots;
    for (size_t i = 0; i < c->n; i++)
        c->slots[find_slot(c, c->items[i]->uid, c->items[i]->uid_len)] = (uint32_t)(i + 1);
    return 0;
}

rc_entry_t *rc_cache_find(const rc_cache_t *c, const char *uid, size_t len)
{
    if (c->n == 0)
        return NULL;
    uint32_t v = c->slots[find_slot(c, uid, len)];
    return v ? c->items[v - 1] : NULL;
}

rc_entry_t *rc_cache_add(rc_cache_t *c, const char *uid, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        if (cap > UINT32_MAX - 1)
            return NULL;
        rc_entry_t **items = realloc(c->items, cap * sizeof(*items));
        if (!items)
            return NULL;
        c->items = items;
        c->cap = cap;
        if (rehash(c, cap * 2) != 0)
            return NULL;
    }
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
    size_t s = find_slot(c, uid, len);
    c->items[c->n++] = e;
    c->slots[s] = (uint32_t)c->n;
    return e;
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
    memset(c->slots, 0, c->nslots * sizeof(*c->slots));
    for (size_t i = 0; i < c->n; i++)
        c->slots[find_slot(c, c->items[i]->uid, c->items[i]->uid_len)] = (uint32_t)(i + 1);
}

void rc_cache_clear(rc_cache_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->items[i]);
    c->n = 0;
    if (c->nslots)
        memset(c->slots, 0, c->nslots * sizeof(*c->slots));
}

void rc_cache_free(rc_cache_t *c)
{
    rc_cache_clear(c);
    free(c->items);
    free(c->slots);
    memset(c, 0, sizeof(*c));
}
