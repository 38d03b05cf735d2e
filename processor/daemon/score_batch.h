/* The latest scoring of each user of one batch, kept until the batch's commit writes them
 * to the readable score hashes (P score:<user_id>, store_redis.h): one entry per user, a
 * later scoring of the same user in the batch replacing the earlier one. */
#ifndef CS_SCORE_BATCH_H
#define CS_SCORE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "store_redis.h"

typedef struct sb_s sb_t;

/* An empty set. NULL on out of memory. Free with sb_destroy (NULL is a no-op). */
sb_t *sb_new(void);
void sb_destroy(sb_t *sb);
/* Forgets every entry (after a commit, or a rollback), keeping the memory; NULL is a no-op. */
void sb_clear(sb_t *sb);

/* Records user_id's scoring (copied); bucket, segment_name, kind and trigger must be static
 * strings (alert_bucket_name and friends). Clears the entry's alert id. 0, -1 on out of
 * memory (the set is then unchanged). */
int sb_put(sb_t *sb, const char *user_id, double p, const char *bucket, int segment_id,
           const char *segment_name, const char *kind, const char *trigger, int64_t time_ms);
/* sb_put of one scoring as the hash shows it: bucket by the policy's alert.buckets, the
 * segment's archetype name (alert_segment_archetype: the model is not modified), the kind
 * from the user's features at t_ms, the trigger's name. 0, -1 on out of memory. */
int sb_put_scoring(sb_t *sb, const alert_policy_t *policy, const model_t *model,
                   const char *user_id, const feat_state_t *st, int64_t t_ms, float p, int seg,
                   alert_trigger_kind_t trigger);
/* An alert fired for user_id at time_ms: when the user's entry describes that scoring (same
 * time), it gets the alert id (copied); otherwise nothing changes. */
void sb_alerted(sb_t *sb, const char *user_id, int64_t time_ms, const char *alert_id);

/* The entries as st_commit_t wants them: *out (owned by sb, valid until the next call) and
 * *n. 0, -1 on out of memory. */
int sb_scores(sb_t *sb, const st_score_t **out, size_t *n);

#endif
