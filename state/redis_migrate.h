/* One-time copy of a single-node Redis store into the Redis Cluster layout (`churnstream
 * migrate`): each partition's users (found through its last-seen index), offset, progress
 * and pending alerts, then the model. Both stores must be quiet (no daemon running). */
#ifndef CS_REDIS_MIGRATE_H
#define CS_REDIS_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "store_redis.h"

typedef struct st_migrate_stats_s {
    size_t partitions;        /* partitions with a stored offset, copied */
    size_t users;             /* records copied (each into its partition's slot) */
    size_t records_in_source; /* P u:* keys of the source (SCAN) */
    size_t alerts;            /* pending alerts copied */
    size_t alerts_unplaced;   /* pending alerts whose user has no copied record: not copied */
    int model;                /* 1 when a model was copied */
} st_migrate_stats_t;

/* Copies src (single node) into dst (cluster mode): for every partition N in src's
 * P offsets, the users of P seen:N with their records, N's offset and progress and the
 * alerts of those users, in transactions of up to 1,000 users, the offset and progress in
 * the last (so a partition counts as migrated once its offset is in dst; running it again
 * rewrites the same values); then the model. Records with no activity (users whose only
 * events were refunds or cancellations) have no seen entry, so no known partition: they are
 * counted (records_in_source - users), not copied. 0, or -1 with errstr. */
int st_redis_migrate(st_redis_t *src, st_redis_t *dst, st_migrate_stats_t *out, char *errstr,
                     size_t errstr_size);

#endif
