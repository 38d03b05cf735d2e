/* Alert outcomes: the pending outcome in a user's record (open, decide, censor) and the
 * counts behind the retained shares and the uplift interval (outcome.h). */
#include "outcome.h"
#include "grow.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OC_NONE INT64_MIN

const char *oc_outcome_name(oc_outcome_t o)
{
    switch (o) {
    case OC_RETAINED:
        return "retained";
    case OC_NOT_RETAINED:
        return "not_retained";
    case OC_CENSORED:
        return "censored";
    case OC_REPEAT:
        return "repeat";
    }
    return "unknown";
}

/* Adds saturating: windows are config-bounded, but a hostile record's time must not wrap. */
static int64_t window_end(int64_t a, int64_t w)
{
    return a > INT64_MAX - w ? INT64_MAX : a + w;
}

static void fill_from_rec(const user_rec_t *rec, oc_outcome_t o, oc_result_t *out)
{
    *out = (oc_result_t){.outcome = o,
                         .alert_ms = rec->outcome_alert_ms,
                         .arm = (alert_arm_t)rec->outcome_arm,
                         .kind = (alert_kind_t)rec->outcome_kind,
                         .bucket = (alert_bucket_t)rec->outcome_bucket,
                         .arch = (alert_archetype_t)rec->outcome_arch,
                         .seg = rec->outcome_seg};
}

static int decide(user_rec_t *rec, oc_outcome_t o, oc_result_t *out)
{
    fill_from_rec(rec, o, out);
    rec->outcome_alert_ms = OC_NONE;
    rec->outcome_arm = rec->outcome_kind = rec->outcome_bucket = rec->outcome_arch = 0;
    rec->outcome_seg = -1;
    return 1;
}

int oc_start(user_rec_t *rec, const alert_t *a, alert_archetype_t arch, oc_result_t *out)
{
    /* Only at_risk and lapsed are produced; the record holds one bit of kind. */
    int kind = a->kind == ALERT_LAPSED ? 1 : 0;
    int seg = a->segment_id >= -1 && a->segment_id <= 254 ? a->segment_id : -1;
    if (rec->outcome_alert_ms != OC_NONE) {
        *out = (oc_result_t){.outcome = OC_REPEAT,
                             .alert_ms = a->created_at_ms,
                             .arm = a->arm,
                             .kind = (alert_kind_t)kind,
                             .bucket = a->risk_bucket,
                             .arch = arch,
                             .seg = seg};
        return 0;
    }
    rec->outcome_alert_ms = a->created_at_ms;
    rec->outcome_arm = (uint8_t)(a->arm == ALERT_HOLDOUT);
    rec->outcome_kind = (uint8_t)kind;
    rec->outcome_bucket = (uint8_t)a->risk_bucket;
    rec->outcome_arch = (uint8_t)(arch < 16 ? arch : 0);
    rec->outcome_seg = (int16_t)seg;
    return 1;
}

int oc_activity(user_rec_t *rec, int64_t t_ms, int64_t window_ms, int64_t watermark_ms,
                oc_result_t *out)
{
    const int64_t a = rec->outcome_alert_ms;
    if (a == OC_NONE || t_ms <= a)
        return 0; /* nothing pending, or activity from before the alert (a late event) */
    const int64_t end = window_end(a, window_ms);
    if (t_ms <= end)
        return decide(rec, OC_RETAINED, out);
    /* Past the window: not retained, unless an event inside it may still come late. */
    if (watermark_ms != OC_NONE && end < watermark_ms)
        return decide(rec, OC_NOT_RETAINED, out);
    return 0;
}

int oc_settle(user_rec_t *rec, int64_t now_ms, int64_t window_ms, oc_result_t *out)
{
    const int64_t a = rec->outcome_alert_ms;
    if (a == OC_NONE || window_end(a, window_ms) >= now_ms)
        return 0;
    return decide(rec, OC_NOT_RETAINED, out);
}

int oc_finish(user_rec_t *rec, int64_t end_ms, int64_t window_ms, oc_result_t *out)
{
    const int64_t a = rec->outcome_alert_ms;
    if (a == OC_NONE)
        return 0;
    return decide(rec, window_end(a, window_ms) < end_ms ? OC_NOT_RETAINED : OC_CENSORED, out);
}

void oc_uplift(uint64_t n_t, uint64_t r_t, uint64_t n_h, uint64_t r_h, double *uplift, double *lo,
               double *hi)
{
    if (n_t == 0 || n_h == 0) {
        *uplift = *lo = *hi = NAN;
        return;
    }
    const double p1 = (double)r_t / (double)n_t, p0 = (double)r_h / (double)n_h;
    const double se = sqrt(p1 * (1 - p1) / (double)n_t + p0 * (1 - p0) / (double)n_h);
    *uplift = p1 - p0;
    *lo = *uplift - 1.959964 * se;
    *hi = *uplift + 1.959964 * se;
}

/* ---- counts ---- */

typedef struct cell_s {
    alert_arm_t arm;
    alert_kind_t kind;
    int seg;
    alert_archetype_t arch;
    char action[96];
    uint64_t count[4]; /* by oc_outcome_t */
} cell_t;

struct oc_stats_s {
    cell_t *cells;
    size_t n, cap;
};

oc_stats_t *oc_stats_new(void)
{
    return calloc(1, sizeof(oc_stats_t));
}

void oc_stats_destroy(oc_stats_t *st)
{
    if (!st)
        return;
    free(st->cells);
    free(st);
}

void oc_stats_clear(oc_stats_t *st)
{
    st->n = 0;
}

static cell_t *cell_for(oc_stats_t *st, alert_arm_t arm, alert_kind_t kind, int seg,
                        alert_archetype_t arch, const char *action)
{
    for (size_t i = 0; i < st->n; i++) {
        cell_t *c = &st->cells[i];
        if (c->arm == arm && c->kind == kind && c->seg == seg && c->arch == arch &&
            strcmp(c->action, action) == 0)
            return c;
    }
    if (CS_GROW(st->cells, st->cap, st->n + 1, 32) != 0)
        return NULL;
    cell_t *c = &st->cells[st->n++];
    memset(c, 0, sizeof(*c));
    c->arm = arm;
    c->kind = kind;
    c->seg = seg;
    c->arch = arch;
    snprintf(c->action, sizeof c->action, "%s", action);
    return c;
}

int oc_stats_add(oc_stats_t *st, const oc_result_t *r)
{
    cell_t *c = cell_for(st, r->arm, r->kind, r->seg, r->arch, r->action ? r->action : "");
    if (!c)
        return -1;
    c->count[r->outcome & 3]++;
    return 0;
}

int oc_stats_merge(oc_stats_t *dst, const oc_stats_t *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const cell_t *s = &src->cells[i];
        cell_t *c = cell_for(dst, s->arm, s->kind, s->seg, s->arch, s->action);
        if (!c)
            return -1;
        for (int k = 0; k < 4; k++)
            c->count[k] += s->count[k];
    }
    return 0;
}

static void key_of(const cell_t *c, oc_by_t by, char *key, size_t size)
{
    switch (by) {
    case OC_BY_ALL:
        snprintf(key, size, "all");
        break;
    case OC_BY_KIND:
        snprintf(key, size, "%s", alert_kind_name(c->kind));
        break;
    case OC_BY_ACTION:
        snprintf(key, size, "%s", c->action);
        break;
    case OC_BY_SEGMENT:
        snprintf(key, size, "seg %d (%s)", c->seg, alert_archetype_name(c->arch));
        break;
    }
}

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const oc_row_t *)a)->key, ((const oc_row_t *)b)->key);
}

size_t oc_stats_rows(const oc_stats_t *st, oc_by_t by, oc_row_t **rows)
{
    oc_row_t *r = calloc(st->n ? st->n : 1, sizeof(*r));
    if (!r)
        return (size_t)-1;
    size_t n = 0;
    for (size_t i = 0; i < st->n; i++) {
        const cell_t *c = &st->cells[i];
        char key[sizeof r->key];
        key_of(c, by, key, sizeof key);
        size_t j = 0;
        while (j < n && strcmp(r[j].key, key) != 0)
            j++;
        if (j == n)
            snprintf(r[n++].key, sizeof r->key, "%s", key);
        const int arm = c->arm == ALERT_HOLDOUT;
        r[j].n[arm] += c->count[OC_RETAINED] + c->count[OC_NOT_RETAINED];
        r[j].retained[arm] += c->count[OC_RETAINED];
        r[j].censored[arm] += c->count[OC_CENSORED];
        r[j].repeats[arm] += c->count[OC_REPEAT];
    }
    for (size_t j = 0; j < n; j++) {
        for (int arm = 0; arm < 2; arm++)
            r[j].share[arm] = r[j].n[arm] ? (double)r[j].retained[arm] / (double)r[j].n[arm] : NAN;
        oc_uplift(r[j].n[0], r[j].retained[0], r[j].n[1], r[j].retained[1], &r[j].uplift, &r[j].lo,
                  &r[j].hi);
    }
    qsort(r, n, sizeof(*r), cmp_row);
    *rows = r;
    return n;
}
