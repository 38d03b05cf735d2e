/* The batch driver of run and replay (batch.h). */
#include "batch.h"
#include "grow.h"

#include <stdio.h>
#include <stdlib.h>

int batch_reserve(batch_t *b, size_t want)
{
    return CS_GROW4(b->evs, b->part, b->off, b->ids, b->cap, want, 64);
}

int batch_add(batch_t *b, const ev_event_t *ev, int32_t partition, int64_t offset)
{
    if (batch_reserve(b, b->n + 1) != 0)
        return -1;
    b->evs[b->n] = *ev;
    b->part[b->n] = partition;
    b->off[b->n] = offset;
    b->n++;
    return 0;
}

ev_event_t *batch_slot(batch_t *b)
{
    if (b->n >= b->cap && batch_reserve(b, b->n + 1) != 0)
        return NULL;
    return &b->evs[b->n];
}

void batch_push(batch_t *b, int32_t partition, int64_t offset)
{
    b->part[b->n] = partition;
    b->off[b->n] = offset;
    b->n++;
}

/* The distinct partitions of the batch into b->parts, in order of first appearance (a
 * batch holds few: the search is over them, not over the events). */
static int distinct_partitions(batch_t *b)
{
    b->n_parts = 0;
    for (size_t i = 0; i < b->n; i++) {
        size_t j = 0;
        while (j < b->n_parts && b->parts[j] != b->part[i])
            j++;
        if (j < b->n_parts)
            continue;
        if (CS_GROW(b->parts, b->cap_parts, b->n_parts + 1, 16) != 0)
            return -1;
        b->parts[b->n_parts++] = b->part[i];
    }
    return 0;
}

int batch_apply(batch_t *b, const batch_ops_t *ops, char *err, size_t errsz)
{
    if (ops->prefetch) {
        if (distinct_partitions(b) != 0) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        for (size_t q = 0; q < b->n_parts; q++) {
            size_t k = 0;
            for (size_t j = 0; j < b->n; j++)
                if (b->part[j] == b->parts[q])
                    b->ids[k++] = b->evs[j].user_id;
            if (ops->prefetch(ops->opaque, b->parts[q], b->ids, k, err, errsz) != 0)
                return -1;
        }
    }
    size_t c = 0;
    for (size_t i = 0; i < b->n; i++) {
        for (; c < b->n_cuts && b->cut_at[c] == i; c++)
            if (ops->tick_mark && ops->tick_mark(ops->opaque, b->cut_wm[c], err, errsz) != 0)
                return -1;
        pl_event(ops->pipeline(ops->opaque, b->part[i]), &b->evs[i], b->part[i], b->off[i]);
    }
    b->n = 0;
    b->n_cuts = 0;
    return 0;
}

int batch_mark_tick(batch_t *b, int64_t wm)
{
    if (CS_GROW2(b->cut_at, b->cut_wm, b->cap_cuts, b->n_cuts + 1, 16) != 0)
        return -1;
    b->cut_at[b->n_cuts] = b->n;
    b->cut_wm[b->n_cuts++] = wm;
    return 0;
}

void batch_clear(batch_t *b)
{
    b->n = 0;
    b->n_cuts = 0;
}

void batch_free(batch_t *b)
{
    free(b->evs);
    free(b->part);
    free(b->off);
    free(b->ids);
    free(b->parts);
    free(b->cut_at);
    free(b->cut_wm);
    *b = (batch_t){0};
}
