/* Replay's pending scores (replay_internal.h): each scored snapshot's score and experts'
 * probabilities until its label arrives, in a per-user array of plain values reached through
 * the user's interned handle, so scoring and labelling a snapshot allocate nothing. */
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
 * added, -1 on out of memory (or more ids than a handle holds). rec->memo, when it holds a
 * handle + 1 whose id is uid, saves the hashing; it is set to the handle found. */
static int id_handle(pending_map_t *m, const char *uid, user_rec_t *rec, int add, uint32_t *h)
{
    if (rec && rec->memo && rec->memo <= m->nids) {
        uint32_t c = rec->memo - 1;
        size_t n = m->id_len[c];
        if (memcmp(m->ids + m->id_off[c], uid, n) == 0 && uid[n] == '\0') {
            *h = c;
            return 0;
        }
    }
    size_t len = strlen(uid);
    if (m->id_index.nslots) {
        size_t s = uid_index_slot(&m->id_index, uid, len, id_key, m);
        if (m->id_index.slots[s]) {
            *h = m->id_index.slots[s] - 1;
            if (rec)
                rec->memo = *h + 1;
            return 0;
        }
    }
    if (!add)
        return 1;
    /* uid_index keeps 0 for an empty slot: handles + 1 must fit in a uint32_t. Ids are at
     * most EV_USER_ID_MAX bytes (the decoder rejects longer ones), so id_len fits. */
    if (m->nids >= UINT32_MAX - 1 || len > UINT16_MAX)
        return -1;
    if (CS_GROW3(m->id_off, m->id_len, m->users, m->cap_ids, m->nids + 1, 1024) != 0 ||
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
    m->users[m->nids] = (pending_user_t){0};
    m->ids_len += len;
    m->id_index.slots[uid_index_slot(&m->id_index, uid, len, id_key, m)] = (uint32_t)(m->nids + 1);
    *h = (uint32_t)m->nids++;
    if (rec)
        rec->memo = *h + 1;
    return 0;
}

/* ---- each user's entries ---- */

/* The capacity an emptied array keeps (user_make_room starts at 8 and doubles). */
#define PENDING_KEEP_CAP 8

/* Room for one more entry at the tail of u's array: compacts when at most half of it is
 * live (each compaction frees at least half: amortized O(1) a put), or when the array
 * already has room for `bound` entries (the most one user holds at once; 0 = no bound),
 * else doubles it, to at most the bound while below it. So a user gone quiet, who holds an
 * entry per tick of the lookback until their labels arrive, keeps bound entries of room
 * rather than the next power of two (daily ticks: 92 rather than 128). A compaction at the
 * bound moves at most bound entries; it only happens when labels leave from the head while
 * ticks still add at the tail (H < L). */
static int user_make_room(pending_user_t *u, int xdim, uint32_t bound)
{
    size_t row = (size_t)xdim * sizeof(float);
    if (u->head + u->n < u->cap)
        return 0;
    if (u->head > 0 && (u->n <= u->cap / 2 || (bound && u->cap >= bound))) {
        memmove(u->e, u->e + u->head, u->n * sizeof(*u->e));
        if (xdim)
            memmove(u->x, u->x + (size_t)u->head * (size_t)xdim, u->n * row);
        u->head = 0;
        return 0;
    }
    if (u->cap > UINT32_MAX / 2)
        return -1;
    uint32_t cap = u->cap ? u->cap * 2 : 8;
    if (bound && u->cap < bound && cap > bound)
        cap = bound;
    if (xdim) { /* the rows first: a failure leaves e and cap as they were */
        float *x = realloc(u->x, cap * row);
        if (!x)
            return -1;
        u->x = x;
    }
    pending_t *e = realloc(u->e, cap * sizeof(*e));
    if (!e)
        return -1;
    u->e = e;
    u->cap = cap;
    return 0;
}

void rp_pending_keep_features(pending_map_t *m, int dim)
{
    m->xdim = dim > 0 ? dim : 0;
}

void rp_pending_set_bound(pending_map_t *m, uint32_t entries)
{
    m->bound = entries;
}

int rp_pending_put(pending_map_t *m, const char *uid, user_rec_t *rec, int64_t tick_ms, float score,
                   float recency_days, int seg, const ex_scores_t *ex, const float *x)
{
    uint32_t h;
    if (id_handle(m, uid, rec, 1, &h) != 0)
        return -1;
    pending_user_t *u = &m->users[h];
    if (user_make_room(u, m->xdim, m->bound) != 0)
        return -1;
    if (m->xdim)
        memcpy(u->x + (size_t)(u->head + u->n) * (size_t)m->xdim, x,
               (size_t)m->xdim * sizeof(float));
    pending_t *p = &u->e[u->head + u->n++];
    *p = (pending_t){.tick_ms = tick_ms, .score = score, .recency_days = recency_days, .seg = seg};
    for (int i = 0; i < EX_N; i++)
        p->expert[i] = (float)ex->p[i];
    m->count++;
    return 0;
}

int rp_pending_take(pending_map_t *m, const char *uid, user_rec_t *rec, int64_t tick_ms,
                    pending_t *out, float *x_out)
{
    const size_t d = (size_t)m->xdim;
    uint32_t h;
    if (m->count == 0 || id_handle(m, uid, rec, 0, &h) != 0)
        return 0;
    pending_user_t *u = &m->users[h];
    for (uint32_t i = u->head, end = u->head + u->n; i < end; i++) {
        if (u->e[i].tick_ms != tick_ms)
            continue;
        *out = u->e[i];
        if (d && x_out)
            memcpy(x_out, u->x + i * d, d * sizeof(float));
        if (i == u->head) { /* the usual case: labels come oldest first */
            u->head++;
        } else {
            memmove(&u->e[i], &u->e[i + 1], (end - i - 1) * sizeof(*u->e));
            if (d)
                memmove(u->x + i * d, u->x + (i + 1) * d, (end - i - 1) * d * sizeof(float));
        }
        if (--u->n == 0) {
            u->head = 0;
            if (u->cap > PENDING_KEEP_CAP) {
                /* A user gone quiet held up to H / tick entries; most never come back, and
                 * keeping the room of every user ever seen made a log of one-time buyers
                 * grow by kilobytes per user. Small arrays stay (no churn for regulars). */
                free(u->e);
                free(u->x);
                u->e = NULL;
                u->x = NULL;
                u->cap = 0;
            }
        }
        m->count--;
        return 1;
    }
    return 0;
}

void rp_pending_free(pending_map_t *m)
{
    for (size_t i = 0; i < m->nids; i++) {
        free(m->users[i].e);
        free(m->users[i].x);
    }
    free(m->ids);
    free(m->id_off);
    free(m->id_len);
    free(m->users);
    uid_index_free(&m->id_index);
    memset(m, 0, sizeof(*m));
}
