/* The alert policy's insides, shared by alert_policy.c (gates, alert building, top-percent
 * selection) and alert_actions.c (the segment x bucket action table). Not for use outside
 * alerts/. */
#ifndef CS_ALERT_POLICY_INTERNAL_H
#define CS_ALERT_POLICY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"

#define ACTION_MAX     (sizeof(((alert_t *)0)->recommended_action) - 1)
#define ACTION_SEG_MAX 4095 /* km_new allows k <= 4096 */
#define ACTION_ANY     (-1)
#define SALT_MAX_BYTES 256
#define CAND_NONE      UINT32_MAX
#define UNSEGMENTED    "unsegmented"

typedef struct action_rule_s {
    int seg;    /* ACTION_ANY or 0..ACTION_SEG_MAX */
    int bucket; /* ACTION_ANY or alert_bucket_t */
    char text[ACTION_MAX + 1];
} action_rule_t;

/* A segment's name and archetype, computed once per segment version: the centres move with
 * every batch, and a label recomputed at each alert changed within a run for the same
 * segment (issue 14). */
typedef struct seg_info_s {
    int valid;
    alert_archetype_t arch;
    char label[sizeof(((alert_t *)0)->segment_label)];
} seg_info_t;

/* One scored snapshot of a tick in the ranking. 24 bytes, whatever the snapshot became. */
typedef struct rank_entry_s {
    double p;
    uint64_t uid_hash; /* tie break independent of the order of consideration */
    uint32_t seq;
    uint32_t cand; /* index into the pool's candidates, or CAND_NONE */
} rank_entry_t;

/* A candidate: the alert as built at consider time, strings moved into the pool's arena. */
typedef struct cand_s {
    int64_t event_time_ms;
    int64_t model_version;
    double p;
    double contribution[ALERT_TOP_FACTORS];
    double features[FEAT_DIM];
    uint32_t uid_off, label_off; /* into the arena, NUL-terminated */
    int32_t seg;
    uint8_t factor[ALERT_TOP_FACTORS];     /* feature index */
    uint8_t factor_low[ALERT_TOP_FACTORS]; /* direction: 1 = below the population */
    uint8_t n_factors, arch;
    uint8_t bucket, arm, kind;
} cand_t;

typedef struct pool_s {
    int active;
    int64_t tick_ms;
    rank_entry_t *entries;
    size_t n_entries, cap_entries;
    cand_t *cands;
    size_t n_cands, cap_cands;
    char *arena;
    size_t arena_len, arena_cap;
} pool_t;

struct alert_policy_s {
    double threshold;
    double cut_medium, cut_high; /* alert.buckets */
    int alert_medium;            /* alert.medium */
    double top_percent;
    int64_t cooldown_ms;
    double holdout_percent;
    char salt[SALT_MAX_BYTES + 1];
    uint64_t min_examples;
    action_rule_t *rules;
    int n_rules;
    const char *names[FEAT_DIM]; /* feat_info names, for km_label */

    pool_t *pools; /* pending ticks in top-percent mode */
    int n_pools;
    int has_done;
    int64_t done_through_ms; /* latest tick_done tick */

    alert_t *out; /* tick_done's result */
    size_t n_out, cap_out;
};

/* alert_actions.c: parses alert.actions (text) into ap->rules for k segments. 0, or -1 with
 * errstr naming the entry. */
int alert_parse_actions(alert_policy_t *ap, const char *text, int k, char *errstr,
                        size_t errstr_size);

#endif
