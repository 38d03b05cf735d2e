/* Experts and their Hedge weighting (experts.h). */
#include "experts_internal.h"

#include "calibrator.h"
#include "grow.h"
#include "upper_bound.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EX_WEEK_MS (7 * FEAT_DAY_MS)

static void weights_now(const ex_t *ex, double w[EX_N]);

void ex_refresh_weights(ex_t *ex)
{
    weights_now(ex, ex->w);
}

static const char *const names[EX_N] = {"recency", "bgnbd", "logreg"};

const int ex_shape_k[EX_SHAPES] = {1, 2, 4, 8};

const bgnbd_params_t *ex_shape_params(const ex_t *ex, int s)
{
    return s == 0 ? &ex->bg : &ex->shape_bg[s];
}

/* P(none in h) of shape s under p: BG/NBD's own function for k = 1 (the same bits as before
 * shapes existed). */
static double shape_p_none(int s, const bgnbd_params_t *p, const ex_summary_t *sm)
{
    if (s == 0)
        return bgnbd_p_none(p, sm->rep, sm->t_x, sm->age, sm->h);
    return bgcnbd_p_none(p, ex_shape_k[s], sm->rep, sm->t_x, sm->age, sm->h);
}

/* The shape of the least discounted loss once EX_SHAPE_MIN_H x H of complete ticks are
 * graded, else 0 (k = 1); ties go to the smaller k. */
static int shape_leader(const ex_t *ex)
{
    if (!ex->shapes_on || ex->shape_weeks < EX_SHAPE_MIN_H * ex->horizon_days / 7.0)
        return 0;
    int best = 0;
    for (int s = 1; s < EX_SHAPES; s++)
        if (ex->shape_loss[s] < ex->shape_loss[best])
            best = s;
    return best;
}

const char *ex_name(ex_expert_t e)
{
    return (unsigned)e < EX_N ? names[e] : "?";
}

/* Days counted from the first activity: open days or calendar days (ex->open_days_on). */
static double days_before(const ex_t *ex, int64_t day)
{
    return ex->open_days_on ? od_before(&ex->days, day) : (double)day;
}

void ex_summary_of(const ex_t *ex, const feat_state_t *st, int64_t t_ms, ex_summary_t *out)
{
    out->rep = out->t_x = out->age = 0;
    out->h = ex->horizon_days;
    if (st->first_activity_ms == FEAT_NEVER || st->last_activity_ms == FEAT_NEVER)
        return;
    int64_t first_day = feat_day_of(st->first_activity_ms);
    int64_t last_day = feat_day_of(st->last_activity_ms);
    if (t_ms < st->last_activity_ms)
        t_ms = st->last_activity_ms;
    int64_t t_day = feat_day_of(t_ms);
    double first = days_before(ex, first_day);
    unsigned days = feat_lifetime_active_days(st);
    out->rep = days > 1 ? (double)(days - 1) : 0.0;
    out->t_x = out->rep > 0 ? days_before(ex, last_day) - first : 0.0;
    if (ex->open_days_on)
        out->age = days_before(ex, t_day) - first +
                   (double)(t_ms - t_day * FEAT_DAY_MS) / (double)FEAT_DAY_MS;
    else /* the calendar-day expression of format 4, bit for bit */
        out->age = (double)(t_ms - first_day * FEAT_DAY_MS) / (double)FEAT_DAY_MS;
    if (out->age < out->t_x)
        out->age = out->t_x;
    if (ex->open_days_on)
        out->h *= od_share(&ex->days, t_day, 365);
}

int ex_mark_day(ex_t *ex, int64_t day)
{
    return od_mark(&ex->days, day);
}

void ex_set_open_days(ex_t *ex, int on)
{
    ex->open_days_on = on != 0;
}

void ex_set_shapes(ex_t *ex, int on)
{
    ex->shapes_on = on != 0;
    ex->shape = shape_leader(ex);
}

void ex_set_lull_days(ex_t *ex, int on)
{
    od_set_lull(&ex->days, on);
}

const od_t *ex_open_days(const ex_t *ex)
{
    return &ex->days;
}

ex_t *ex_new(double horizon_days)
{
    if (!(horizon_days > 0) || !isfinite(horizon_days))
        return NULL;
    ex_t *ex = calloc(1, sizeof(*ex));
    if (!ex)
        return NULL;
    ex->horizon_days = horizon_days;
    ex->open_days_on = 1;
    od_init(&ex->days);
    od_set_lull(&ex->days, 1);
    bgnbd_params_default(&ex->bg);
    for (int s = 1; s < EX_SHAPES; s++) {
        ex->shape_bg[s] = ex->bg;
        ex->shape_bg[s].alpha /= ex_shape_k[s]; /* the same mean gap */
    }
    ex->shape_fit_tick_ms = INT64_MIN;
    ex->shapes_on = 1;
    ex->fit_tick_ms = INT64_MIN;
    ex->last_folded_ms = INT64_MIN;
    ex_refresh_weights(ex);
    return ex;
}

void ex_destroy(ex_t *ex)
{
    if (!ex)
        return;
    free(ex->pending);
    for (size_t i = 0; i < ex->nfrozen; i++)
        free(ex->frozen[i].coef);
    free(ex->frozen);
    bgnbd_table_destroy(ex->shape_table);
    od_free(&ex->days);
    free(ex);
}

double ex_horizon_days(const ex_t *ex)
{
    return ex->horizon_days;
}

void ex_set_horizon_days(ex_t *ex, double horizon_days)
{
    if (horizon_days > 0 && isfinite(horizon_days))
        ex->horizon_days = horizon_days;
}

double ex_recency_prior(double d)
{
    if (!(d > 0))
        d = 0;
    double l = log1p(d);
    return 0.02 + 0.96 * l / (l + 2.0);
}

static double clip(double p)
{
    return p < EX_P_MIN ? EX_P_MIN : p > 1 - EX_P_MIN ? 1 - EX_P_MIN : p;
}

static double logit(double p)
{
    p = clip(p);
    return log(p / (1 - p));
}

void ex_set_mode(ex_t *ex, ex_mode_t mode)
{
    ex->mode = mode;
    ex_refresh_weights(ex);
}

void ex_weights(const ex_t *ex, double w[EX_N])
{
    memcpy(w, ex->w, sizeof(ex->w));
}

static void weights_now(const ex_t *ex, double w[EX_N])
{
    if (ex->mode != EX_MODE_HEDGE) {
        for (int i = 0; i < EX_N; i++)
            w[i] = ex->mode == EX_MODE_EQUAL ? 1.0 / EX_N : 0;
        if (ex->mode == EX_MODE_BGNBD)
            w[EX_BGNBD] = 1;
        else if (ex->mode == EX_MODE_LOGREG)
            w[EX_LOGREG] = 1;
        else if (ex->mode == EX_MODE_RECENCY)
            w[EX_RECENCY] = 1;
        return;
    }
    double prior[EX_N] = {EX_PRIOR_RECENCY, 1 - EX_PRIOR_RECENCY, 0};
    if (ex->ticks_folded > 0) {
        double share = ex_logreg_share(ex);
        prior[EX_LOGREG] = (1 - EX_PRIOR_RECENCY) * share / 2;
        prior[EX_BGNBD] = (1 - EX_PRIOR_RECENCY) - prior[EX_LOGREG];
    }
    double lmin = INFINITY;
    for (int i = 0; i < EX_N; i++)
        if (prior[i] > 0 && ex->loss[i] < lmin)
            lmin = ex->loss[i];
    double sum = 0;
    for (int i = 0; i < EX_N; i++) {
        w[i] = prior[i] > 0 ? prior[i] * exp(-EX_HEDGE_ETA * (ex->loss[i] - lmin)) : 0;
        sum += w[i];
    }
    for (int i = 0; i < EX_N; i++)
        w[i] /= sum;
}

void ex_score(const ex_t *ex, const ex_summary_t *s, double p_logreg, ex_scores_t *out)
{
    out->p[EX_RECENCY] = ex_recency_prior(s->age - s->t_x);
    out->p[EX_BGNBD] = shape_p_none(ex->shape, ex_shape_params(ex, ex->shape), s);
    out->p[EX_LOGREG] = p_logreg;
    out->shapes = 0;
    double z = 0;
    for (int i = 0; i < EX_N; i++) {
        out->p[i] = clip(out->p[i]);
        if (ex->w[i] > 0)
            z += ex->w[i] * logit(out->p[i]);
    }
    out->blend = 1.0 / (1.0 + exp(-z));
}

/* A summary whose quiet days (age - t_x), repeat days and active span (t_x) are the user's
 * (bit set in `from_user`: 1 quiet days, 2 repeat days, 4 span) or the reference's; age is
 * span + quiet days, so every mix is a summary that can happen (no repeat: span 0). */
static ex_summary_t mixed_summary(const ex_summary_t *u, const ex_summary_t *ref,
                                  unsigned from_user)
{
    const ex_summary_t *q = from_user & 1 ? u : ref, *sp = from_user & 4 ? u : ref;
    ex_summary_t m = *u;
    m.rep = (from_user & 2 ? u : ref)->rep;
    m.t_x = m.rep > 0 ? sp->t_x : 0;
    m.age = m.t_x + (q->age - q->t_x);
    return m;
}

void ex_explain(const ex_t *ex, const ex_summary_t *s, const ex_summary_t *ref,
                double out[EX_EXPLAIN_N])
{
    /* v[S]: the BTYD expert's logit with the players in S (bits as in mixed_summary) at the
     * user's values, the others at the reference's. */
    double v[8];
    for (unsigned S = 0; S < 8; S++) {
        ex_summary_t m = mixed_summary(s, ref, S);
        v[S] = logit(shape_p_none(ex->shape, ex_shape_params(ex, ex->shape), &m));
    }
    /* Shapley weights for 3 players: |S| = 0 or 2 of the others: 1/3, |S| = 1: 1/6. */
    for (int i = 0; i < EX_EXPLAIN_N; i++) {
        unsigned bit = 1u << i;
        double phi = 0;
        for (unsigned S = 0; S < 8; S++) {
            if (S & bit)
                continue;
            int others = (S & 1) + ((S >> 1) & 1) + ((S >> 2) & 1);
            phi += (others == 1 ? 1.0 / 6.0 : 1.0 / 3.0) * (v[S | bit] - v[S]);
        }
        out[i] = ex->w[EX_BGNBD] * phi;
    }
    out[EX_EXPLAIN_QUIET] += ex->w[EX_RECENCY] * (logit(ex_recency_prior(s->age - s->t_x)) -
                                                  logit(ex_recency_prior(ref->age - ref->t_x)));
}

int ex_refit(ex_t *ex, const bgnbd_table_t *table, int64_t tick_ms)
{
    ex->fit_tick_ms = tick_ms;
    bgnbd_fit_info_t info;
    bgnbd_params_t p = ex->bg;
    if (bgnbd_fit(table, &p, EX_FIT_MAX_ITER, &info) != 0)
        return -1;
    ex->bg = p;
    ex->fit_users = bgnbd_table_weight(table);
    ex->fit_loglik = info.loglik;
    ex->fit_iterations = info.iterations;
    if (ex->shapes_on &&
        (ex->shape_fit_tick_ms == INT64_MIN ||
         (double)(tick_ms - ex->shape_fit_tick_ms) >= EX_SHAPE_REFIT_DAYS * (double)FEAT_DAY_MS)) {
        const bgnbd_table_t *fit_on = table;
        if (bgnbd_table_rows(table) > EX_SHAPE_MAX_ROWS) {
            if (!ex->shape_table && !(ex->shape_table = bgnbd_table_new()))
                return 0; /* out of memory: the shapes wait for the next refit */
            if (bgnbd_table_thin(table, EX_SHAPE_MAX_ROWS, ex->shape_table) != 0)
                return 0;
            fit_on = ex->shape_table;
        }
        for (int s = 1; s < EX_SHAPES; s++) {
            bgnbd_params_t q = ex->shape_bg[s];
            if (bgcnbd_fit(fit_on, ex_shape_k[s], &q, EX_FIT_MAX_ITER, NULL) == 0)
                ex->shape_bg[s] = q; /* else the previous parameters stay */
        }
        ex->shape_fit_tick_ms = tick_ms;
    }
    return 0;
}

int64_t ex_shapes_fit_tick_ms(const ex_t *ex)
{
    return ex->shape_fit_tick_ms;
}

void ex_shapes_set(ex_t *ex, int64_t tick_ms, const bgnbd_params_t p[EX_SHAPES - 1])
{
    ex->shape_fit_tick_ms = tick_ms;
    for (int s = 1; s < EX_SHAPES; s++)
        ex->shape_bg[s] = p[s - 1];
}

int ex_shape(const ex_t *ex)
{
    return ex->shape;
}

void ex_shape_losses(const ex_t *ex, double mean[EX_SHAPES])
{
    for (int s = 0; s < EX_SHAPES; s++)
        mean[s] =
            ex->loss_weight > 0 && ex->shape_weeks > 0 ? ex->shape_loss[s] / ex->loss_weight : NAN;
}

void ex_fit_set(ex_t *ex, int64_t tick_ms, const bgnbd_params_t *p, double users, double loglik,
                int iterations)
{
    ex->fit_tick_ms = tick_ms;
    if (!p)
        return;
    ex->bg = *p;
    ex->fit_users = users;
    ex->fit_loglik = loglik;
    ex->fit_iterations = iterations;
}

int64_t ex_fit_tick_ms(const ex_t *ex)
{
    return ex->fit_tick_ms;
}

const bgnbd_params_t *ex_bgnbd_params(const ex_t *ex)
{
    return &ex->bg;
}

void ex_fit_stats(const ex_t *ex, double *users, double *loglik, int *iterations)
{
    if (users)
        *users = ex->fit_users;
    if (loglik)
        *loglik = ex->fit_loglik;
    if (iterations)
        *iterations = ex->fit_iterations;
}

ex_tick_t *ex_pending_slot(ex_t *ex, int64_t tick_ms)
{
    size_t i; /* pending is sorted by tick_ms */
    CS_UPPER_BOUND(ex->pending, ex->npending, tick_ms, tick_ms, i);
    if (i > 0 && ex->pending[i - 1].tick_ms == tick_ms)
        return &ex->pending[i - 1];
    if (ex->npending == EX_MAX_PENDING)
        return NULL;
    if (CS_GROW(ex->pending, ex->cap, ex->npending + 1, 32) != 0)
        return NULL;
    memmove(&ex->pending[i + 1], &ex->pending[i], (ex->npending - i) * sizeof(*ex->pending));
    ex->npending++;
    memset(&ex->pending[i], 0, sizeof(*ex->pending));
    ex->pending[i].tick_ms = tick_ms;
    return &ex->pending[i];
}

ex_frozen_t *ex_frozen_push(ex_t *ex, int64_t tick_ms)
{
    if (ex->nfrozen > 0 && ex->frozen[ex->nfrozen - 1].tick_ms >= tick_ms)
        return NULL;
    if (ex->nfrozen == EX_MAX_PENDING)
        return NULL;
    if (ex->nfrozen == ex->capfrozen) {
        size_t cap = ex->capfrozen ? ex->capfrozen * 2 : 16;
        ex_frozen_t *nf = realloc(ex->frozen, cap * sizeof(*nf));
        if (!nf)
            return NULL;
        ex->frozen = nf;
        ex->capfrozen = cap;
    }
    ex_frozen_t *f = &ex->frozen[ex->nfrozen];
    memset(f, 0, sizeof(*f));
    if (!(f->coef = calloc((size_t)ex->dim + 1, sizeof(double))))
        return NULL;
    f->tick_ms = tick_ms;
    ex->nfrozen++;
    return f;
}

int ex_tick_start(ex_t *ex, int64_t tick_ms, const double *coef, int dim, double cal_a,
                  double cal_b)
{
    if (dim <= 0 || (ex->dim != 0 && dim != ex->dim))
        return -1;
    ex->dim = dim;
    if (ex->nfrozen > 0 && ex->frozen[ex->nfrozen - 1].tick_ms >= tick_ms)
        return 0; /* frozen already (another partition's pipeline started this tick) */
    ex_frozen_t *f = ex_frozen_push(ex, tick_ms);
    if (!f)
        return -1;
    memcpy(f->coef, coef, ((size_t)dim + 1) * sizeof(double));
    f->bg = ex->bg;
    f->cal_a = cal_a;
    f->cal_b = cal_b;
    for (int s = 0; s < EX_SHAPES; s++)
        f->shape_bg[s] = *ex_shape_params(ex, s);
    f->shape = ex->shape;
    f->shapes_known = 1;
    return 0;
}

/* The frozen tick grading labels of tick_ms: the latest at or before it; NULL if none. */
static const ex_frozen_t *frozen_for(const ex_t *ex, int64_t tick_ms)
{
    for (size_t i = ex->nfrozen; i > 0; i--)
        if (ex->frozen[i - 1].tick_ms <= tick_ms)
            return &ex->frozen[i - 1];
    return NULL;
}

static double frozen_raw_logit(const ex_t *ex, const ex_frozen_t *f, const float *x)
{
    double l = f->coef[ex->dim];
    for (int j = 0; j < ex->dim; j++)
        l += f->coef[j] * (double)x[j];
    return l;
}

/* The scores tick f's frozen scorers give row x: what each expert said at that tick. */
static void frozen_score(const ex_t *ex, const ex_frozen_t *f, const float *x,
                         const ex_summary_t *s, ex_scores_t *out)
{
    double l = frozen_raw_logit(ex, f, x);
    l = l > CAL_LOGIT_MAX ? CAL_LOGIT_MAX : l < -CAL_LOGIT_MAX ? -CAL_LOGIT_MAX : l;
    out->p[EX_RECENCY] = clip(ex_recency_prior(s->age - s->t_x));
    out->p[EX_LOGREG] = clip(1.0 / (1.0 + exp(-(f->cal_a * l + f->cal_b))));
    out->blend = NAN; /* not needed for grading */
    out->shapes = f->shapes_known && ex->shapes_on;
    if (!out->shapes) {
        out->p[EX_BGNBD] = clip(bgnbd_p_none(&f->bg, s->rep, s->t_x, s->age, s->h));
        return;
    }
    for (int k = 0; k < EX_SHAPES; k++)
        out->shape_p[k] = clip(shape_p_none(k, &f->shape_bg[k], s));
    out->p[EX_BGNBD] = out->shape_p[f->shape];
}

int ex_frozen_covers(const ex_t *ex, int64_t tick_ms)
{
    return ex->nfrozen > 0 && ex->frozen[0].tick_ms <= tick_ms;
}

int ex_grade(const ex_t *ex, int64_t tick_ms, const float *x, const ex_summary_t *s,
             ex_scores_t *out)
{
    const ex_frozen_t *f = frozen_for(ex, tick_ms);
    if (!f)
        return 0;
    frozen_score(ex, f, x, s, out);
    return 1;
}

int ex_observe_graded(ex_t *ex, int64_t tick_ms, int y, const ex_scores_t *sc)
{
    if (ex->last_folded_ms != INT64_MIN && tick_ms <= ex->last_folded_ms)
        return 0; /* a tick already complete (cannot happen in order; never measured twice) */
    ex_tick_t *t = ex_pending_slot(ex, tick_ms);
    if (!t)
        return -1;
    t->n += 1;
    t->pos += y ? 1 : 0;
    for (int i = 0; i < EX_N; i++) {
        double p = clip(sc->p[i]);
        t->loss[i] -= y ? log(p) : log1p(-p);
    }
    if (sc->shapes) {
        t->shape_n += 1;
        for (int k = 0; k < EX_SHAPES; k++)
            t->shape_loss[k] -= y ? log(sc->shape_p[k]) : log1p(-sc->shape_p[k]);
    }
    return 0;
}

int ex_observe(ex_t *ex, int64_t tick_ms, const float *x, const ex_summary_t *s, int y,
               const ex_scores_t *now)
{
    ex_scores_t sc;
    return ex_observe_graded(ex, tick_ms, y, ex_grade(ex, tick_ms, x, s, &sc) ? &sc : now);
}

int ex_complete_through(ex_t *ex, int64_t through_ms)
{
    size_t k = 0;
    while (k < ex->npending && ex->pending[k].tick_ms <= through_ms) {
        const ex_tick_t *t = &ex->pending[k++];
        double gap_ms = ex->last_folded_ms == INT64_MIN ? (double)EX_WEEK_MS
                                                        : (double)(t->tick_ms - ex->last_folded_ms);
        double decay = exp2(-gap_ms / (EX_HEDGE_HALF_LIFE_DAYS * (double)FEAT_DAY_MS));
        double scale = gap_ms >= (double)EX_WEEK_MS ? 1.0 : gap_ms / (double)EX_WEEK_MS;
        for (int i = 0; i < EX_N; i++)
            ex->loss[i] = decay * ex->loss[i] + (t->n > 0 ? scale * t->loss[i] / t->n : 0);
        for (int i = 0; i < EX_SHAPES; i++)
            ex->shape_loss[i] = decay * ex->shape_loss[i] +
                                (t->shape_n > 0 ? scale * t->shape_loss[i] / t->shape_n : 0);
        ex->shape_weeks += t->shape_n > 0 ? scale : 0;
        ex->labels = decay * ex->labels + scale * t->n;
        ex->positives = decay * ex->positives + scale * t->pos;
        ex->loss_weight = decay * ex->loss_weight + (t->n > 0 ? scale : 0);
        ex->graded_weeks += t->n > 0 ? scale : 0;
        ex->last_folded_ms = t->tick_ms;
        if (t->n > 0)
            ex->ticks_folded++;
    }
    if (k > 0) {
        memmove(ex->pending, ex->pending + k, (ex->npending - k) * sizeof(*ex->pending));
        ex->npending -= k;
        ex->shape = shape_leader(ex);
        ex_refresh_weights(ex);
    }
    /* Frozen ticks <= through_ms grade nothing more (their labels are all in), except the
     * latest of them, which still grades labels of later ticks that were never frozen. */
    size_t drop = 0;
    while (drop + 1 < ex->nfrozen && ex->frozen[drop + 1].tick_ms <= through_ms)
        drop++;
    for (size_t i = 0; i < drop; i++)
        free(ex->frozen[i].coef);
    if (drop > 0) {
        memmove(ex->frozen, ex->frozen + drop, (ex->nfrozen - drop) * sizeof(*ex->frozen));
        ex->nfrozen -= drop;
    }
    return (int)k;
}

double ex_logreg_share(const ex_t *ex)
{
    if (ex->ticks_folded == 0)
        return 0;
    double full = EX_LOGREG_RAMP_H * ex->horizon_days / 7.0; /* in weeks */
    return ex->graded_weeks >= full ? 1.0 : ex->graded_weeks / full;
}

double ex_base_rate(const ex_t *ex)
{
    return ex->labels > 0 ? ex->positives / ex->labels : NAN;
}

void ex_mean_losses(const ex_t *ex, double mean[EX_N])
{
    for (int i = 0; i < EX_N; i++)
        mean[i] = ex->loss_weight > 0 ? ex->loss[i] / ex->loss_weight : NAN;
}

void ex_losses(const ex_t *ex, double loss[EX_N], uint64_t *ticks_folded)
{
    for (int i = 0; i < EX_N; i++)
        loss[i] = ex->loss[i];
    if (ticks_folded)
        *ticks_folded = ex->ticks_folded;
}
