/* Alert outcomes (README, Alerts: "Outcomes"): whether an alerted user was active again
 * within outcome.window after the alert, decided in event time and exactly once, and the
 * retained shares and uplift (treatment minus holdout) per arm, kind, action and segment.
 *
 * The rule. An alert at a (its created_at) is *retained* when the user has an activity
 * event (ev_is_activity: every type but refund and subscription_cancel, the churn label's
 * own definition) at t with a < t <= a + W; *not retained* when none, which is known once no
 * event at or before a + W can still arrive (the watermark passed it); *censored* when the
 * input of a replay ends before a + W. One outcome per alert episode: an alert of a user
 * whose outcome is still pending is a *repeat* and gets none of its own.
 *
 * The pending outcome lives in the user's record (user.h: outcome_*), so it is committed
 * with the batch like the rest of the state: `run` decides each outcome exactly once across
 * restarts. The functions below only move that record; the pipeline calls them on alerts,
 * activity events, sweep visits and the end of a replay. */
#ifndef CS_OUTCOME_H
#define CS_OUTCOME_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "user.h"

typedef enum { OC_RETAINED = 0, OC_NOT_RETAINED, OC_CENSORED, OC_REPEAT } oc_outcome_t;

/* One decided outcome (or a repeat alert), a plain value. */
typedef struct oc_result_s {
    oc_outcome_t outcome;
    int64_t alert_ms; /* created_at of the alert whose outcome this is */
    alert_arm_t arm;
    alert_kind_t kind;
    alert_bucket_t bucket;
    alert_archetype_t arch;
    int seg;            /* -1 unsegmented */
    const char *action; /* set by the caller (alert_policy_action); not owned */
} oc_result_t;

/* Name of an outcome: "retained", "not_retained", "censored", "repeat". Static. */
const char *oc_outcome_name(oc_outcome_t o);

/* An alert fired for the user of rec, arch being its segment's archetype. Opens its outcome
 * in rec and returns 1; or, when an outcome is already pending, returns 0 with *out the
 * repeat (rec unchanged). */
int oc_start(user_rec_t *rec, const alert_t *a, alert_archetype_t arch, oc_result_t *out);

/* An activity event at t_ms was applied to the user of rec; no event before watermark_ms
 * can still arrive. Returns 1 with *out and the pending outcome cleared when this decides it
 * (retained: a < t <= a + W; not retained: t > a + W and a + W < watermark), else 0. */
int oc_activity(user_rec_t *rec, int64_t t_ms, int64_t window_ms, int64_t watermark_ms,
                oc_result_t *out);

/* No event before now_ms can still arrive (a sweep visit). Returns 1 with *out (not
 * retained) and the outcome cleared when a + W < now_ms, else 0. */
int oc_settle(user_rec_t *rec, int64_t now_ms, int64_t window_ms, oc_result_t *out);

/* A replay's input ended at end_ms (exclusive). Returns 1 with *out and the outcome cleared
 * when one was pending: not retained when a + W < end_ms, else censored. */
int oc_finish(user_rec_t *rec, int64_t end_ms, int64_t window_ms, oc_result_t *out);

/* 95% interval of a difference of two proportions, treatment minus holdout: the normal
 * approximation with the unpooled (Wald) standard error sqrt(p1 q1 / n1 + p0 q0 / n0),
 * z = 1.959964. NaN in all three when either arm has no outcome. */
void oc_uplift(uint64_t n_t, uint64_t r_t, uint64_t n_h, uint64_t r_h, double *uplift, double *lo,
               double *hi);

/* ---- counts ---- */

typedef struct oc_stats_s oc_stats_t;

/* NULL when out of memory. Free with oc_stats_destroy (NULL is a no-op). */
oc_stats_t *oc_stats_new(void);
void oc_stats_destroy(oc_stats_t *st);
/* Counts one result (copies its action). 0, or -1 when out of memory. */
int oc_stats_add(oc_stats_t *st, const oc_result_t *r);
/* Adds every count of src to dst. 0, or -1 when out of memory. */
int oc_stats_merge(oc_stats_t *dst, const oc_stats_t *src);
void oc_stats_clear(oc_stats_t *st);

typedef enum { OC_BY_ALL = 0, OC_BY_KIND, OC_BY_ACTION, OC_BY_SEGMENT } oc_by_t;

/* One group: [0] treatment, [1] holdout (alert_arm_t order). n = decided outcomes
 * (retained + not retained); censored and repeats are not in n. */
typedef struct oc_row_s {
    char key[128]; /* "all"; the kind; the action; "seg 3 (champions)" */
    uint64_t n[2], retained[2], censored[2], repeats[2];
    double share[2]; /* retained / n, NaN when n = 0 */
    double uplift, lo, hi;
} oc_row_t;

/* The groups of one dimension, by key. *rows is malloc'd (caller frees); returns how many,
 * or (size_t)-1 when out of memory. */
size_t oc_stats_rows(const oc_stats_t *st, oc_by_t by, oc_row_t **rows);

#endif
