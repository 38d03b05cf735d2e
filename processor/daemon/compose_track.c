/* The alert ids and pending offsets of `churnstream compose` (compose_track.h). The pending
 * list is short (the alerts in flight plus those read behind a slow one), so a scan per
 * commit is cheap and obviously right. */
#include "compose_track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int ct_seen_add(ct_seen_t *s, const char *id)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        char(*ni)[ALERT_ID_LEN + 1] = calloc(nc, sizeof *ni);
        if (!ni)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->ids[i][0]) {
                size_t j = fnv1a(s->ids[i]) & (nc - 1);
                while (ni[j][0])
                    j = (j + 1) & (nc - 1);
                memcpy(ni[j], s->ids[i], sizeof ni[j]);
            }
        free(s->ids);
        s->ids = ni;
        s->cap = nc;
    }
    size_t j = fnv1a(id) & (s->cap - 1);
    while (s->ids[j][0]) {
        if (strcmp(s->ids[j], id) == 0)
            return 1;
        j = (j + 1) & (s->cap - 1);
    }
    snprintf(s->ids[j], sizeof s->ids[j], "%s", id);
    s->n++;
    return 0;
}

void ct_seen_free(ct_seen_t *s)
{
    free(s->ids);
    memset(s, 0, sizeof *s);
}

typedef struct {
    int64_t h; /* handles grow with the read order */
    int64_t offset;
    int32_t partition;
    int done;
} entry_t;

struct ct_pending_s {
    entry_t *e; /* read order */
    size_t n, cap;
    int64_t next_h;
};

ct_pending_t *ct_pending_new(void)
{
    ct_pending_t *p = calloc(1, sizeof *p);
    if (p)
        p->next_h = 1;
    return p;
}

void ct_pending_destroy(ct_pending_t *p)
{
    if (!p)
        return;
    free(p->e);
    free(p);
}

int64_t ct_pending_add(ct_pending_t *p, int32_t partition, int64_t offset)
{
    if (CS_GROW(p->e, p->cap, p->n + 1, 64) != 0)
        return -1;
    p->e[p->n] = (entry_t){.h = p->next_h, .offset = offset, .partition = partition};
    p->n++;
    return p->next_h++;
}

void ct_pending_done(ct_pending_t *p, int64_t h)
{
    /* handles are sorted (added in order, removed without reordering) */
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->e[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < p->n && p->e[lo].h == h)
        p->e[lo].done = 1;
}

size_t ct_pending_count(const ct_pending_t *p)
{
    return p->n;
}

/* The slot of partition in out[0..*n), added when new and room is left; NULL when full. */
static ct_commit_t *commit_slot(ct_commit_t *out, size_t *n, size_t cap, int32_t partition)
{
    for (size_t i = 0; i < *n; i++)
        if (out[i].partition == partition)
            return &out[i];
    if (*n == cap)
        return NULL;
    out[*n] = (ct_commit_t){.partition = partition, .offset = -1};
    return &out[(*n)++];
}

size_t ct_pending_commits(ct_pending_t *p, ct_commit_t *out, size_t cap)
{
    /* blocked: partitions that met an entry not released in this scan; when more partitions
     * than this holds are blocked, the rest of the list waits for the next call */
    int32_t blocked[256];
    size_t nblocked = 0, n = 0, kept = 0;
    int stop = 0;
    for (size_t i = 0; i < p->n; i++) {
        entry_t *e = &p->e[i];
        if (!stop) {
            int is_blocked = 0;
            for (size_t b = 0; b < nblocked && !is_blocked; b++)
                is_blocked = blocked[b] == e->partition;
            ct_commit_t *c = NULL;
            if (!is_blocked && e->done)
                c = commit_slot(out, &n, cap, e->partition);
            if (c) {
                c->offset = e->offset + 1; /* released */
                continue;
            }
            if (!is_blocked && nblocked < sizeof blocked / sizeof blocked[0])
                blocked[nblocked++] = e->partition;
            else if (!is_blocked)
                stop = 1;
        }
        p->e[kept++] = *e;
    }
    p->n = kept;
    return n;
}
