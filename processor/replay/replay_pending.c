/* Replay's pending scores (replay_internal.h): each scored snapshot's score and experts'
 * probabilities until its label arrives, keyed by (interned user, tick) in an open-addressing
 * table of plain values, so scoring and labelling a snapshot allocate nothing. */
#include "replay_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

/* ---- the id table: user id -> dense handle ---- */

static void id_key(const void *owner, size_t i, const char **id, size_t *len)
{
    const pending_map_t *m = owner;
    *id = m->ids + m->id_off[i];
    *len = m->id_len[i];
}

/* The handle of uid (interned when absent and `add`): 0 with *h, 1 when absent and not
 * added, -1 on out of memory (or more ids than a handle holds). */
static int id_handle(pending_map_t *m, const char *uid, int add, uint32_t *h)
{
    size_t len = strlen(uid);
    if (m->id_index.nslots) {
        size_t s = uid_index_slot(&m->id_index, uid, len, id_key, m);
        if (m->id_index.slots[s]) {
            *h = m->id_index.slots[s] - 1;
            return 0;
        }
    }
    if (!add)
        return 1;
    /* uid_index keeps 0 for an empty slot: handles + 1 must fit in a uint32_t. Ids are at
     * most EV_USER_ID_MAX bytes (the decoder rejects longer ones), so id_len fits. */
    if (m->nids >= UINT32_MAX - 1 || len > UINT16_MAX)
        return -1;
    if (CS_GROW2(m->id_off, m->id_len, m->cap_ids, m->nids + 1, 1024) != 0 ||
        CS_GROW(m->ids, m->ids_cap, m->ids_len + len, 16384) != 0)
        return -1;
    if (2 * (m->nids + 1) > m->id_index.nslots) {
        size_t n = m->id_index.nslots ? m->id_index.nslots * 2 : 2048;
        if (uid_index_rebuild(&m->id_index, n, m->nids, id_key, m) != 0)
            return -1;
    }
    memcpy(m->ids + m->ids_len, uid, len);
    m->id_off[m->nids] = m->ids_len;
    m->id_len[m->nids] = (uint16_t)len;
    m->ids_len += len;
    m->id_index.slots[uid_index_slot(&m->id_index, uid, len, id_key, m)] = (uint32_t)(m->nids + 1);
    *h = (uint32_t)m->nids++;
    return 0;
}

/* ---- the entries: (handle, tick) -> pending_t ---- */

static size_t entry_home(const pending_map_t *m, uint32_t user1, int64_t tick_ms)
{
    /* splitmix64's finalizer: ticks are multiples of the interval, handles are dense; both
     * need mixing before the low bits pick a slot. */
    uint64_t z = (uint64_t)tick_ms * 0x9e3779b97f4a7c15ULL ^ user1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(z ^ (z >> 31)) & (m->nslots - 1);
}

/* The slot holding (user1, tick_ms), or the empty slot where it would go. nslots > 0. */
static size_t entry_slot(const pending_map_t *m, uint32_t user1, int64_t tick_ms)
{
    size_t mask = m->nslots - 1;
    for (size_t s = entry_home(m, user1, tick_ms);; s = (s + 1) & mask) {
        const pending_t *p = &m->slots[s];
        if (p->user1 == 0 || (p->user1 == user1 && p->tick_ms == tick_ms))
            return s;
    }
}

static int entries_grow(pending_map_t *m)
{
    size_t n = m->nslots ? m->nslots * 2 : 4096;
    pending_t *old = m->slots;
    size_t nold = m->nslots;
    if (!(m->slots = calloc(n, sizeof(*m->slots)))) {
        m->slots = old;
        return -1;
    }
    m->nslots = n;
    for (size_t i = 0; i < nold; i++)
        if (old[i].user1)
            m->slots[entry_slot(m, old[i].user1, old[i].tick_ms)] = old[i];
    free(old);
    return 0;
}

int rp_pending_put(pending_map_t *m, const char *uid, int64_t tick_ms, float score,
                   float recency_days, int seg, const ex_scores_t *ex)
{
    uint32_t h;
    if (id_handle(m, uid, 1, &h) != 0)
        return -1;
    if (2 * (m->count + 1) > m->nslots && entries_grow(m) != 0)
        return -1;
    pending_t *p = &m->slots[entry_slot(m, h + 1, tick_ms)];
    /* The engine scores each snapshot once (engine.h); a repeated key would overwrite. */
    m->count += p->user1 == 0;
    *p = (pending_t){.user1 = h + 1,
                     .seg = seg,
                     .tick_ms = tick_ms,
                     .score = score,
                     .recency_days = recency_days};
    for (int i = 0; i < EX_N; i++)
        p->expert[i] = (float)ex->p[i];
    return 0;
}

int rp_pending_take(pending_map_t *m, const char *uid, int64_t tick_ms, pending_t *out)
{
    uint32_t h;
    if (m->count == 0 || id_handle(m, uid, 0, &h) != 0)
        return 0;
    size_t mask = m->nslots - 1, hole = entry_slot(m, h + 1, tick_ms);
    if (m->slots[hole].user1 == 0)
        return 0;
    *out = m->slots[hole];
    /* Backward-shift removal: pull each later entry of the run back into the hole when its
     * home slot is not cyclically in (hole, j], so every entry stays reachable from its
     * home without tombstones. */
    for (size_t j = (hole + 1) & mask; m->slots[j].user1; j = (j + 1) & mask) {
        size_t home = entry_home(m, m->slots[j].user1, m->slots[j].tick_ms);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].user1 = 0;
    m->count--;
    return 1;
}

void rp_pending_free(pending_map_t *m)
{
    free(m->ids);
    free(m->id_off);
    free(m->id_len);
    uid_index_free(&m->id_index);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}
