/* The replay's streaming exact metrics (see replay_metrics.h). */
#include "replay_metrics.h"

#include "auc_spill.h"
#include "backtest.h"
#include "grow.h"
#include "upper_bound.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The score columns of a row: the model, the recency baseline, each expert. */
enum { COL_MODEL, COL_RECENCY, COL_EXPERT0, COLS = COL_EXPERT0 + EX_N };

/* The AUC subsets (auc_acc_t sets) and a key's payload: bit 0 the label, bit 1 "active in the
 * last RP_EARLY_DAYS days", bits 2.. the closed tick's index. */
enum { SET_ALL, SET_SECOND_HALF, SET_EARLY, SET_FIRST_QUARTER, SET_EARLY_SECOND_HALF, SETS };
#define PAYLOAD_EARLY      2u
#define PAYLOAD_TICK_SHIFT 2
#define MAX_CLOSED_TICKS   (UINT32_MAX >> PAYLOAD_TICK_SHIFT)

typedef struct open_tick_s {
    int64_t tick_ms;
    rp_row_t *rows; /* owned; in the order labelled */
    size_t n, cap;
} open_tick_t;

/* What a closed tick leaves behind: its time and, per column, its log-loss sum and rows (for
 * the second half's log-loss, whose first tick is known only at the end). */
typedef struct closed_tick_s {
    int64_t tick_ms;
    size_t n;
    double ll[COLS];
} closed_tick_t;

struct rp_metrics_s {
    open_tick_t *open; /* ascending tick_ms */
    size_t nopen, capopen;
    closed_tick_t *closed; /* in closing order = ascending tick_ms */
    size_t nclosed, capclosed;
    int has_closed;
    int64_t closed_through_ms; /* the last closed tick's time */
    bt_acc_t acc[COLS];
    auc_spill_t *auc[COLS];
    bt_row_t *scratch[COLS]; /* one tick's rows of each column */
    size_t capscratch;       /* of every scratch[c] */
    cs_pool_t *team;         /* borrowed */
    size_t seg_size[RP_MAX_SEGMENTS], seg_positives[RP_MAX_SEGMENTS];
    char err[256];
};

rp_metrics_t *rpm_new(size_t spill_keys, cs_pool_t *team)
{
    rp_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->team = team;
    for (int c = 0; c < COLS; c++) {
        bt_acc_init(&m->acc[c]);
        m->auc[c] = as_new(spill_keys ? spill_keys : RPM_SPILL_KEYS);
        if (!m->auc[c]) {
            rpm_free(m);
            return NULL;
        }
    }
    return m;
}

void rpm_free(rp_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nopen; i++)
        free(m->open[i].rows);
    free(m->open);
    free(m->closed);
    for (int c = 0; c < COLS; c++) {
        as_free(m->auc[c]);
        free(m->scratch[c]);
    }
    free(m);
}

const char *rpm_error(const rp_metrics_t *m)
{
    return m->err;
}

size_t rpm_spilled_runs(const rp_metrics_t *m)
{
    size_t n = 0;
    for (int c = 0; c < COLS; c++)
        n += as_runs(m->auc[c]);
    return n;
}

/* The open tick of tick_ms, created in its place when new; NULL on out of memory. open is
 * sorted by tick_ms; labels come for any of the last H of ticks (a positive at T + H). */
static open_tick_t *open_tick(rp_metrics_t *m, int64_t tick_ms)
{
    size_t i;
    CS_UPPER_BOUND(m->open, m->nopen, tick_ms, tick_ms, i);
    if (i > 0 && m->open[i - 1].tick_ms == tick_ms)
        return &m->open[i - 1];
    if (CS_GROW(m->open, m->capopen, m->nopen + 1, 16) != 0)
        return NULL;
    memmove(&m->open[i + 1], &m->open[i], (m->nopen - i) * sizeof(*m->open));
    m->open[i] = (open_tick_t){.tick_ms = tick_ms};
    m->nopen++;
    return &m->open[i];
}

int rpm_add(rp_metrics_t *m, const rp_row_t *row)
{
    if (m->has_closed && row->tick_ms <= m->closed_through_ms)
        return 1;
    open_tick_t *t = open_tick(m, row->tick_ms);
    if (!t || CS_GROW(t->rows, t->cap, t->n + 1, 64) != 0) {
        snprintf(m->err, sizeof m->err, "out of memory");
        return -1;
    }
    t->rows[t->n++] = *row;
    return 0;
}

static float column(const rp_row_t *r, int c)
{
    return c == COL_MODEL     ? r->score
           : c == COL_RECENCY ? r->recency_days
                              : r->expert[c - COL_EXPERT0];
}

/* One tick's columns, summed concurrently (column c touches only its own spill, accumulator,
 * scratch and log-loss slot). */
typedef struct tick_job_s {
    rp_metrics_t *m;
    const open_tick_t *t;
    closed_tick_t *ct;
    uint32_t idx;
    int failed[COLS];
} tick_job_t;

static void close_columns(void *opaque, size_t lo, size_t hi)
{
    tick_job_t *j = opaque;
    rp_metrics_t *m = j->m;
    const open_tick_t *t = j->t;
    for (size_t c = lo; c < hi; c++) {
        bt_row_t *scratch = m->scratch[c];
        for (size_t i = 0; i < t->n; i++) {
            const rp_row_t *r = &t->rows[i];
            uint32_t payload = j->idx << PAYLOAD_TICK_SHIFT | (r->y != 0) |
                               (r->recency_days < RP_EARLY_DAYS ? PAYLOAD_EARLY : 0);
            if (as_add(m->auc[c], column(r, (int)c), payload) != 0) {
                j->failed[c] = 1;
                break;
            }
            scratch[i] = (bt_row_t){t->tick_ms, column(r, (int)c), r->y};
        }
        if (!j->failed[c])
            j->ct->ll[c] = bt_acc_tick(&m->acc[c], scratch, t->n);
    }
}

/* Sums one tick (the oldest open one) into the metrics and frees its rows. */
static int close_tick(rp_metrics_t *m, open_tick_t *t)
{
    cs_array_t scratch[COLS];
    for (int c = 0; c < COLS; c++)
        scratch[c] = CS_ARRAY(m->scratch[c]);
    if (m->nclosed >= MAX_CLOSED_TICKS ||
        CS_GROW(m->closed, m->capclosed, m->nclosed + 1, 64) != 0 ||
        cs_grow(&m->capscratch, t->n, 1024, scratch, COLS) != 0) {
        snprintf(m->err, sizeof m->err, "out of memory");
        return -1;
    }
    tick_job_t job = {.m = m, .t = t, .idx = (uint32_t)m->nclosed};
    job.ct = &m->closed[m->nclosed++];
    *job.ct = (closed_tick_t){.tick_ms = t->tick_ms, .n = t->n};
    cs_pool_for(m->team, COLS, 1, close_columns, &job);
    for (int c = 0; c < COLS; c++)
        if (job.failed[c]) {
            snprintf(m->err, sizeof m->err, "%s", as_error(m->auc[c]));
            return -1;
        }
    for (size_t i = 0; i < t->n; i++) {
        int seg = t->rows[i].seg;
        if (seg >= 0 && seg < RP_MAX_SEGMENTS) {
            m->seg_size[seg]++;
            m->seg_positives[seg] += (size_t)t->rows[i].y;
        }
    }
    m->has_closed = 1;
    m->closed_through_ms = t->tick_ms;
    free(t->rows);
    return 0;
}

/* Closes (keep = 1) or drops (keep = 0) the open ticks before tick_ms. */
static int close_open(rp_metrics_t *m, int64_t tick_ms, int keep)
{
    size_t k = 0;
    while (k < m->nopen && m->open[k].tick_ms < tick_ms) {
        if (keep && close_tick(m, &m->open[k]) != 0) {
            /* the ticks closed so far leave the array; the failed one stays for rpm_free */
            memmove(m->open, &m->open[k], (m->nopen - k) * sizeof(*m->open));
            m->nopen -= k;
            return -1;
        }
        if (!keep)
            free(m->open[k].rows);
        k++;
    }
    memmove(m->open, &m->open[k], (m->nopen - k) * sizeof(*m->open));
    m->nopen -= k;
    return 0;
}

int rpm_close_before(rp_metrics_t *m, int64_t tick_ms)
{
    return close_open(m, tick_ms, 1);
}

/* The subsets a key is in (auc_acc_t's members). */
typedef struct member_ctx_s {
    const rp_metrics_t *m;
    size_t half_tick;    /* closed ticks from this index on: the second half */
    int64_t quarter_end; /* ticks up to this time: the first quarter */
} member_ctx_t;

static unsigned member(uint32_t payload, void *opaque)
{
    const member_ctx_t *x = opaque;
    size_t idx = payload >> PAYLOAD_TICK_SHIFT;
    int second = idx >= x->half_tick, early = (payload & PAYLOAD_EARLY) != 0;
    return 1u << SET_ALL | (second ? 1u << SET_SECOND_HALF : 0) | (early ? 1u << SET_EARLY : 0) |
           (x->m->closed[idx].tick_ms <= x->quarter_end ? 1u << SET_FIRST_QUARTER : 0) |
           (early && second ? 1u << SET_EARLY_SECOND_HALF : 0);
}

/* Column c's metrics into out; every subset's AUC into aucs[SETS]. 0, or -1 (its spill's
 * as_error). */
static int column_metrics(rp_metrics_t *m, int c, const member_ctx_t *ctx, bt_metrics_t *out,
                          double *aucs)
{
    bt_acc_metrics(&m->acc[c], out);
    if (m->acc[c].probs_open) {
        double ll = 0;
        size_t n = 0;
        for (size_t i = ctx->half_tick; i < m->nclosed; i++) {
            ll += m->closed[i].ll[c];
            n += m->closed[i].n;
        }
        if (n > 0)
            out->logloss_second_half = ll / (double)n;
    }
    if (as_result(m->auc[c], SETS, member, (void *)ctx, aucs) != 0)
        return -1;
    out->auc = aucs[SET_ALL];
    out->auc_second_half = aucs[SET_SECOND_HALF];
    return 0;
}

/* Every column's metrics, concurrently (the merges of their spills are independent). */
typedef struct finish_job_s {
    rp_metrics_t *m;
    const member_ctx_t *ctx;
    bt_metrics_t out[COLS];
    double aucs[COLS][SETS];
    int failed[COLS];
} finish_job_t;

static void finish_columns(void *opaque, size_t lo, size_t hi)
{
    finish_job_t *j = opaque;
    for (size_t c = lo; c < hi; c++)
        j->failed[c] = column_metrics(j->m, (int)c, j->ctx, &j->out[c], j->aucs[c]) != 0;
}

int rpm_finish(rp_metrics_t *m, int64_t horizon_ms, int64_t end_ms, rp_summary_t *sum)
{
    /* A tick is in the metrics when its window ends by the end: T + H <= end_ms. */
    size_t k = 0;
    while (k < m->nopen && m->open[k].tick_ms + horizon_ms <= end_ms)
        k++;
    if (k > 0 && close_open(m, m->open[k - 1].tick_ms + 1, 1) != 0)
        return -1;
    close_open(m, INT64_MAX, 0);

    member_ctx_t ctx = {.m = m, .half_tick = m->nclosed / 2, .quarter_end = INT64_MIN};
    if (m->nclosed > 0) {
        int64_t first = m->closed[0].tick_ms, last = m->closed[m->nclosed - 1].tick_ms;
        ctx.quarter_end = first + (last - first) / 4;
    }
    finish_job_t *job = calloc(1, sizeof(*job));
    if (!job) {
        snprintf(m->err, sizeof m->err, "out of memory");
        return -1;
    }
    job->m = m;
    job->ctx = &ctx;
    cs_pool_for(m->team, COLS, 1, finish_columns, job);
    for (int c = 0; c < COLS; c++)
        if (job->failed[c]) {
            snprintf(m->err, sizeof m->err, "%s", as_error(m->auc[c]));
            free(job);
            return -1;
        }
    sum->recency = job->out[COL_RECENCY];
    for (int x = 0; x < EX_N; x++)
        sum->experts[x] = job->out[COL_EXPERT0 + x];
    sum->model = job->out[COL_MODEL];
    sum->auc_early = job->aucs[COL_MODEL][SET_EARLY];
    sum->auc_early_second_half = job->aucs[COL_MODEL][SET_EARLY_SECOND_HALF];
    sum->auc_first_quarter = job->aucs[COL_MODEL][SET_FIRST_QUARTER];
    free(job);
    sum->labelled = m->acc[COL_MODEL].snapshots;
    sum->censored = sum->scored - sum->labelled;
    memcpy(sum->seg_size, m->seg_size, sizeof(m->seg_size));
    memcpy(sum->seg_positives, m->seg_positives, sizeof(m->seg_positives));
    return 0;
}
