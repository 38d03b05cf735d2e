/* Replay's pending scores (replay_internal.h): each scored snapshot's score and experts'
 * probabilities until its label arrives, in a chained hash map keyed by (user, tick). */
#include "replay_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t pending_hash(const char *uid, int64_t tick_ms)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)tick_ms;
    for (; *uid; uid++) {
        h ^= (unsigned char)*uid;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static int pending_grow(pending_map_t *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 4096;
    pending_t **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (pending_t *p = m->buckets[i], *next; p; p = next) {
            next = p->next;
            size_t k = pending_hash(p->user_id, p->tick_ms) & (n - 1);
            p->next = b[k];
            b[k] = p;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

int rp_pending_put(pending_map_t *m, const char *uid, int64_t tick_ms, float score,
                   float recency_days, int seg, const ex_scores_t *ex)
{
    if (m->count >= m->nbuckets && pending_grow(m) != 0)
        return -1;
    pending_t *p = malloc(sizeof(*p));
    if (!p || !(p->user_id = strdup(uid))) {
        free(p);
        return -1;
    }
    p->tick_ms = tick_ms;
    p->score = score;
    p->recency_days = recency_days;
    for (int i = 0; i < EX_N; i++)
        p->expert[i] = (float)ex->p[i];
    p->seg = seg;
    size_t k = pending_hash(uid, tick_ms) & (m->nbuckets - 1);
    p->next = m->buckets[k];
    m->buckets[k] = p;
    m->count++;
    return 0;
}

/* Unlinks and returns the entry (caller frees it and its id), NULL when absent. */
pending_t *rp_pending_take(pending_map_t *m, const char *uid, int64_t tick_ms)
{
    if (!m->nbuckets)
        return NULL;
    pending_t **pp = &m->buckets[pending_hash(uid, tick_ms) & (m->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        pending_t *p = *pp;
        if (p->tick_ms == tick_ms && strcmp(p->user_id, uid) == 0) {
            *pp = p->next;
            m->count--;
            return p;
        }
    }
    return NULL;
}

void rp_pending_free(pending_map_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (pending_t *p = m->buckets[i], *next; p; p = next) {
            next = p->next;
            free(p->user_id);
            free(p);
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof(*m));
}
