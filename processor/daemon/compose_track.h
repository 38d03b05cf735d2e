/* What `churnstream compose` keeps about the alerts it has read: the alert ids answered in
 * the run (ct_seen_*: a duplicate is skipped) and the read alerts whose offsets wait for
 * their message (ct_pending_*: with several alerts in flight, messages finish out of order,
 * and a partition's offset may only move past an alert once it and every earlier alert of
 * that partition is done). */
#ifndef CS_COMPOSE_TRACK_H
#define CS_COMPOSE_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"

/* ---- alert ids answered in this run: an open-addressing set of ids ---- */

typedef struct ct_seen_s {
    char (*ids)[ALERT_ID_LEN + 1];
    size_t cap, n;
} ct_seen_t;

/* Returns 1 when id was already in the set, 0 after adding it, -1 when out of memory. A
 * zeroed ct_seen_t is an empty set; ct_seen_free() releases it. */
int ct_seen_add(ct_seen_t *s, const char *id);
void ct_seen_free(ct_seen_t *s);

/* ---- offsets waiting to be committed ---- */

typedef struct ct_pending_s ct_pending_t;

/* An empty tracker, or NULL when out of memory. Free with ct_pending_destroy(). */
ct_pending_t *ct_pending_new(void);
/* Frees; NULL is a no-op. */
void ct_pending_destroy(ct_pending_t *p);

/* Records a message read at (partition, offset), in the order the consumer returned it (the
 * consumer's order within a partition is the offsets' order). Returns its handle (> 0), -1
 * when out of memory. */
int64_t ct_pending_add(ct_pending_t *p, int32_t partition, int64_t offset);

/* Marks the message of handle h done (its message produced, or nothing to answer). An
 * unknown handle is ignored. */
void ct_pending_done(ct_pending_t *p, int64_t h);

/* Messages recorded and not yet released by ct_pending_commits(). */
size_t ct_pending_count(const ct_pending_t *p);

/* One offset to commit: the partition's next offset to read. */
typedef struct ct_commit_s {
    int32_t partition;
    int64_t offset;
} ct_commit_t;

/* Releases, for every partition, its done messages that no undone message of the partition
 * precedes, and writes (partition, last released offset + 1) into out for each partition that
 * released some (at most cap; the others stay for the next call). Returns how many. */
size_t ct_pending_commits(ct_pending_t *p, ct_commit_t *out, size_t cap);

#endif
