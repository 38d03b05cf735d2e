/* Owns the batch's latest scorings (score_batch.h): user ids copied into the entries, an
 * id -> entry index (uid_index.h), and the st_score_t views handed to the commit. */
#include "score_batch.h"

#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "grow.h"
#include "uid_index.h"

typedef struct sb_entry_s {
    char *user_id; /* owned */
    size_t user_id_len;
    double p;
    const char *bucket, *segment_name, *kind, *trigger; /* static */
    int segment_id;
    int64_t time_ms;
    char alert_id[ALERT_ID_LEN + 1]; /* "" = none */
} sb_entry_t;

struct sb_s {
    sb_entry_t *e;
    size_t n, cap;
    uid_index_t ix;
    st_score_t *views; /* rebuilt by sb_scores */
    size_t cap_views;
};

static void key_of(const void *owner, size_t i, const char **id, size_t *len)
{
    const sb_t *sb = owner;
    *id = sb->e[i].user_id;
    *len = sb->e[i].user_id_len;
}

sb_t *sb_new(void)
{
    sb_t *sb = calloc(1, sizeof(*sb));
    if (sb && uid_index_rebuild(&sb->ix, 64, 0, key_of, sb) != 0) {
        free(sb);
        return NULL;
    }
    return sb;
}

void sb_clear(sb_t *sb)
{
    if (!sb)
        return;
    for (size_t i = 0; i < sb->n; i++)
        free(sb->e[i].user_id);
    sb->n = 0;
    memset(sb->ix.slots, 0, sb->ix.nslots * sizeof(*sb->ix.slots));
}

void sb_destroy(sb_t *sb)
{
    if (!sb)
        return;
    sb_clear(sb);
    free(sb->e);
    free(sb->views);
    uid_index_free(&sb->ix);
    free(sb);
}

/* The entry of user_id, or NULL; *slot gets where it is or would go. */
static sb_entry_t *find(sb_t *sb, const char *user_id, size_t len, size_t *slot)
{
    *slot = uid_index_slot(&sb->ix, user_id, len, key_of, sb);
    uint32_t v = sb->ix.slots[*slot];
    return v ? &sb->e[v - 1] : NULL;
}

int sb_put(sb_t *sb, const char *user_id, double p, const char *bucket, int segment_id,
           const char *segment_name, const char *kind, const char *trigger, int64_t time_ms)
{
    size_t len = strlen(user_id), slot;
    sb_entry_t *x = find(sb, user_id, len, &slot);
    if (!x) {
        if (CS_GROW(sb->e, sb->cap, sb->n + 1, 64) != 0)
            return -1;
        /* The index stays at least twice the entries (linear probing). */
        if (2 * (sb->n + 1) > sb->ix.nslots) {
            if (uid_index_rebuild(&sb->ix, 2 * sb->ix.nslots, sb->n, key_of, sb) != 0)
                return -1;
            slot = uid_index_slot(&sb->ix, user_id, len, key_of, sb);
        }
        char *copy = malloc(len + 1);
        if (!copy)
            return -1;
        memcpy(copy, user_id, len + 1);
        x = &sb->e[sb->n];
        x->user_id = copy;
        x->user_id_len = len;
        sb->ix.slots[slot] = (uint32_t)(++sb->n);
    }
    x->p = p;
    x->bucket = bucket;
    x->segment_id = segment_id;
    x->segment_name = segment_name;
    x->kind = kind;
    x->trigger = trigger;
    x->time_ms = time_ms;
    x->alert_id[0] = '\0';
    return 0;
}

int sb_put_scoring(sb_t *sb, const alert_policy_t *policy, const model_t *model,
                   const char *user_id, const feat_state_t *st, int64_t t_ms, float p, int seg,
                   alert_trigger_kind_t trigger)
{
    double quiet, active_days, gap;
    feat_rhythm(st, t_ms, &quiet, &active_days, &gap);
    return sb_put(sb, user_id, (double)p, alert_bucket_name(alert_policy_bucket(policy, (double)p)),
                  seg, alert_archetype_name(alert_segment_archetype(model, seg)),
                  alert_kind_name(alert_kind_from(quiet, active_days, gap)),
                  alert_trigger_name(trigger), t_ms);
}

void sb_alerted(sb_t *sb, const char *user_id, int64_t time_ms, const char *alert_id)
{
    size_t slot;
    sb_entry_t *x = find(sb, user_id, strlen(user_id), &slot);
    if (x && x->time_ms == time_ms) {
        strncpy(x->alert_id, alert_id, ALERT_ID_LEN);
        x->alert_id[ALERT_ID_LEN] = '\0';
    }
}

int sb_scores(sb_t *sb, const st_score_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (CS_GROW(sb->views, sb->cap_views, sb->n, 64) != 0)
        return -1;
    for (size_t i = 0; i < sb->n; i++) {
        const sb_entry_t *x = &sb->e[i];
        sb->views[i] = (st_score_t){.user_id = x->user_id,
                                    .score = x->p,
                                    .bucket = x->bucket,
                                    .segment_id = x->segment_id,
                                    .segment_name = x->segment_name,
                                    .kind = x->kind,
                                    .trigger = x->trigger,
                                    .time_ms = x->time_ms,
                                    .alert_id = x->alert_id};
    }
    *out = sb->views;
    *n = sb->n;
    return 0;
}
