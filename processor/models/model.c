/* The model (model.h): owns the parts, runs the train/score pipeline over them. Its
 * checksummed, versioned byte string (encode, decode, files): model_snapshot.c. */
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void model_params_default(model_params_t *p)
{
    p->scaler_half_life = 0;
    p->kmeans_half_life = 100000;
    p->reassign_ratio = 0.01;
    lr_params_default(&p->lr);
    p->metrics_bins_log2 = 14;
    p->calibration_half_life_ms = 28LL * 86400000;
    p->horizon_days = 90;
}

model_t *model_new(int dim, int k, uint64_t seed, const model_params_t *params, char *errstr,
                   size_t errstr_size)
{
    model_params_t def;
    if (!params) {
        model_params_default(&def);
        params = &def;
    }
    model_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(errstr, errstr_size, "model: out of memory");
        return NULL;
    }
    m->dim = dim;
    m->k = k;
    m->seed = seed;
    if (!(m->sc = sc_new(dim, params->scaler_half_life))) {
        snprintf(errstr, errstr_size, "model: bad scaler parameters (dim %d, half-life %g)", dim,
                 params->scaler_half_life);
        goto fail;
    }
    if (!(m->km = km_new(k, dim, seed, params->kmeans_half_life, params->reassign_ratio))) {
        snprintf(errstr, errstr_size,
                 "model: bad k-means parameters (k %d in 1..4096, half-life %g >= 0, "
                 "reassign ratio %g in [0, 1))",
                 k, params->kmeans_half_life, params->reassign_ratio);
        goto fail;
    }
    lr_params_t lp = params->lr;
    m->balanced = lp.class_weight_balanced;
    lp.class_weight_balanced = 0; /* the model weighs the classes (model_train) */
    if (!(m->lr = lr_new(dim, &lp))) {
        snprintf(errstr, errstr_size,
                 "model: bad logistic regression parameters (learning rate %g > 0, l2 %g >= 0, "
                 "minibatch %d >= 1)",
                 params->lr.learning_rate, params->lr.l2, params->lr.minibatch_rows);
        goto fail;
    }
    if (!(m->pm = pm_new(params->metrics_bins_log2))) {
        snprintf(errstr, errstr_size, "model: bad metrics bins 2^%d (want 4..20)",
                 params->metrics_bins_log2);
        goto fail;
    }
    if (!(m->cal = cal_new(params->calibration_half_life_ms))) {
        snprintf(errstr, errstr_size, "model: bad calibration half-life %lld ms (want > 0)",
                 (long long)params->calibration_half_life_ms);
        goto fail;
    }
    if (!(m->names = calloc((size_t)k, sizeof(*m->names)))) {
        snprintf(errstr, errstr_size, "model: out of memory");
        goto fail;
    }
    if (!(m->ex = ex_new(params->horizon_days))) {
        snprintf(errstr, errstr_size, "model: bad label horizon %g days (want > 0)",
                 params->horizon_days);
        goto fail;
    }
    return m;
fail:
    model_destroy(m);
    return NULL;
}

void model_destroy(model_t *m)
{
    if (!m)
        return;
    sc_destroy(m->sc);
    km_destroy(m->km);
    lr_destroy(m->lr);
    pm_destroy(m->pm);
    cal_destroy(m->cal);
    ex_destroy(m->ex);
    free(m->names);
    free(m);
}

sc_t *model_scaler(const model_t *m)
{
    return m->sc;
}

km_t *model_kmeans(const model_t *m)
{
    return m->km;
}

lr_t *model_logreg(const model_t *m)
{
    return m->lr;
}

pm_t *model_metrics(const model_t *m)
{
    return m->pm;
}

int model_dim(const model_t *m)
{
    return m->dim;
}

int model_k(const model_t *m)
{
    return m->k;
}

uint64_t model_seed(const model_t *m)
{
    return m->seed;
}

uint64_t model_version(const model_t *m)
{
    return m->version;
}

uint64_t model_examples_seen(const model_t *m)
{
    return m->examples_seen;
}

void model_touch(model_t *m, uint64_t n)
{
    m->version++;
    m->examples_seen += n;
}

/* The calibrated regression's probability of a raw logit, clamped: a probability of
 * exactly 0 or 1 would make log-loss infinite and claims a certainty no churn model has. */
static double lr_prob(const model_t *m, double raw_logit)
{
    double q = cal_apply(m->cal, raw_logit);
    return q < 1e-6 ? 1e-6 : q > 1 - 1e-6 ? 1 - 1e-6 : q;
}

void model_score(const model_t *m, const float *x, const ex_summary_t *s, size_t n, float *z,
                 float *p, int *seg, ex_scores_t *experts)
{
    sc_transform(m->sc, x, z, n);
    lr_logit(m->lr, z, n, p);
    for (size_t i = 0; i < n; i++) {
        double q = lr_prob(m, (double)p[i]);
        if (s) {
            ex_scores_t sc;
            ex_score(m->ex, &s[i], q, &sc);
            q = sc.blend < 1e-6 ? 1e-6 : sc.blend > 1 - 1e-6 ? 1 - 1e-6 : sc.blend;
            if (experts)
                experts[i] = sc;
        }
        p[i] = (float)q;
    }
    if (seg && km_assign(m->km, z, n, seg, NULL) < 0)
        for (size_t i = 0; i < n; i++)
            seg[i] = -1;
}

/* The read-only half of observing labelled rows, on the team: each row's current raw logit
 * and its frozen grades. */
typedef struct grade_job_s {
    const model_t *m;
    const float *x;
    const ex_summary_t *s;
    const int64_t *tick_ms;
    float *logit;
    ex_scores_t *sc;
    unsigned char *graded;
} grade_job_t;

static void grade_rows(void *opaque, size_t lo, size_t hi)
{
    const grade_job_t *j = opaque;
    float z[256];
    for (size_t i = lo; i < hi; i++) {
        const float *xi = j->x + i * (size_t)j->m->dim;
        sc_transform(j->m->sc, xi, z, 1);
        lr_logit(j->m->lr, z, 1, &j->logit[i]);
        j->graded[i] = (unsigned char)ex_grade(j->m->ex, j->tick_ms[i], xi, &j->s[i], &j->sc[i]);
    }
}

int model_observe_labels(model_t *m, const float *x, const ex_summary_t *s, const int64_t *tick_ms,
                         const float *y, size_t n, cs_pool_t *team)
{
    if (m->dim > 256)
        return -1;
    if (n == 0)
        return 0;
    grade_job_t j = {.m = m,
                     .x = x,
                     .s = s,
                     .tick_ms = tick_ms,
                     .logit = malloc(n * sizeof(float)),
                     .sc = malloc(n * sizeof(ex_scores_t)),
                     .graded = malloc(n)};
    int rc = -1;
    if (!j.logit || !j.sc || !j.graded)
        goto out;
    cs_pool_for(team, n, 64, grade_rows, &j);
    for (size_t i = 0; i < n; i++) {
        int yi = y[i] >= 0.5f;
        /* The calibration maps the current regression's logits, so it learns from them
         * (label time), not from the frozen ones: tried, the frozen logits of a young
         * regression taught the map a flat or inverted slope (completejourney2's second-half
         * AUC of the regression fell from 0.877 to 0.672). */
        if (cal_add(m->cal, tick_ms[i], (double)j.logit[i], yi) != 0)
            goto out;
        ex_scores_t now; /* no frozen tick: the current model's scores grade the row */
        if (!j.graded[i])
            ex_score(m->ex, &s[i], lr_prob(m, (double)j.logit[i]), &now);
        if (ex_observe_graded(m->ex, tick_ms[i], yi, j.graded[i] ? &j.sc[i] : &now) != 0)
            goto out;
    }
    rc = 0;
out:
    free(j.logit);
    free(j.sc);
    free(j.graded);
    return rc;
}

void model_ticks_complete(model_t *m, int64_t through_ms)
{
    if (m->rec)
        mj_put_tick(m->rec, MJ_COMPLETE, through_ms);
    if (cal_complete_through(m->cal, through_ms) > 0)
        m->version++;
    if (ex_complete_through(m->ex, through_ms) > 0)
        m->version++;
}

int model_segment_name(const model_t *m, int seg, int *arch, char *label, size_t cap)
{
    if (seg < 0 || seg >= m->k || m->names_version != km_segment_version(m->km) ||
        !m->names[seg].valid)
        return 0;
    *arch = m->names[seg].arch;
    if (label && cap > 0)
        snprintf(label, cap, "%s", m->names[seg].label);
    return 1;
}

int model_set_segment_name(model_t *m, int seg, int arch, const char *label)
{
    if (seg < 0 || seg >= m->k || arch < 0 || arch > 255)
        return -1;
    uint64_t v = km_segment_version(m->km);
    if (m->rec)
        mj_put_name(m->rec, v, seg, arch, label);
    if (m->names_version != v) {
        memset(m->names, 0, (size_t)m->k * sizeof(*m->names));
        m->names_version = v;
    }
    m->names[seg].valid = 1;
    m->names[seg].arch = (uint8_t)arch;
    snprintf(m->names[seg].label, sizeof(m->names[seg].label), "%s", label);
    m->version++;
    return 0;
}

void model_explain(const model_t *m, const float *z, const ex_summary_t *s, float *out)
{
    double w[EX_N], a, b, weight;
    ex_weights(m->ex, w);
    cal_params(m->cal, &a, &b, &weight);
    lr_contributions(m->lr, z, out);
    for (int i = 0; i < m->dim; i++)
        out[i] = (float)(w[EX_LOGREG] * a * (double)out[i]) + 0.0f; /* no -0 */
    if (!s || m->dim != FEAT_DIM || !(sc_weight(m->sc) > 0))
        return;
    /* The typical user in the summary's unit: calendar days times the share of open days
     * (s->h / H, ex_summary_t). */
    double unit = s->h / ex_horizon_days(m->ex);
    double quiet = expm1(sc_mean(m->sc, FEAT_DAYS_SINCE_ACTIVITY)) * unit;
    double active = expm1(sc_mean(m->sc, FEAT_ACTIVE_DAYS_LIFETIME));
    ex_summary_t ref = *s;
    ref.rep = active > 1 ? floor(active - 1 + 0.5) : 0;
    ref.age = expm1(sc_mean(m->sc, FEAT_TENURE_DAYS)) * unit;
    if (ref.age < quiet)
        ref.age = quiet;
    ref.t_x = ref.rep > 0 ? ref.age - quiet : 0;
    double parts[EX_EXPLAIN_N];
    ex_explain(m->ex, s, &ref, parts);
    out[FEAT_DAYS_SINCE_ACTIVITY] += (float)parts[EX_EXPLAIN_QUIET];
    out[FEAT_ACTIVE_DAYS_LIFETIME] += (float)parts[EX_EXPLAIN_REPEAT];
    out[FEAT_TENURE_DAYS] += (float)parts[EX_EXPLAIN_SPAN]; /* the span: tenure less quiet days */
}

int model_segment_label(const model_t *m, int seg, const char *const *names, char *buf, size_t cap)
{
    return seg < 0 ? -1 : km_label(m->km, seg, names, buf, cap);
}

int model_segment_centre(const model_t *m, int seg, double *out)
{
    if (seg < 0 || seg >= km_k(m->km) || !km_is_seeded(m->km))
        return -1;
    memcpy(out, km_centre(m->km, seg), (size_t)m->dim * sizeof *out);
    return 0;
}

uint64_t model_segment_version(const model_t *m)
{
    return km_segment_version(m->km);
}

int model_tick_start(model_t *m, int64_t tick_ms)
{
    /* The regression folded with the standardizer: w . (x - mean) / sd + b
     * = sum (w_i / sd_i) x_i + (b - sum w_i mean_i / sd_i), as sc_transform computes z. */
    double coef[257];
    if (m->dim > 256)
        return -1;
    double bias = lr_bias(m->lr);
    for (int i = 0; i < m->dim; i++) {
        double w = lr_weight(m->lr, i);
        if (sc_weight(m->sc) <= 0) {
            coef[i] = w;
            continue;
        }
        double sd = sc_sd(m->sc, i);
        coef[i] = w / (sd > SC_SD_FLOOR ? sd : SC_SD_FLOOR);
        bias -= coef[i] * sc_mean(m->sc, i);
    }
    coef[m->dim] = bias;
    double a, b, weight;
    cal_params(m->cal, &a, &b, &weight);
    m->version++;
    if (m->rec)
        mj_put_tick(m->rec, MJ_TICK, tick_ms);
    return ex_tick_start(m->ex, tick_ms, coef, m->dim, a, b);
}

int model_refit_bgnbd(model_t *m, const bgnbd_table_t *table, int64_t tick_ms)
{
    m->version++;
    int64_t shapes_before = ex_shapes_fit_tick_ms(m->ex);
    int rc = ex_refit(m->ex, table, tick_ms);
    if (m->rec) {
        mj_put_fit(m->rec, m->ex, rc == 0);
        if (ex_shapes_fit_tick_ms(m->ex) != shapes_before)
            mj_put_shapes(m->rec, m->ex);
    }
    return rc;
}

int model_learn(model_t *m, const float *x, const ex_summary_t *s, const int64_t *tick_ms,
                const float *y, size_t n, cs_pool_t *team)
{
    if (m->rec)
        mj_put_learn(m->rec, m->dim, x, s, tick_ms, y, n);
    /* Calibration sees each row's raw logit before the model learns from it. */
    int rc = model_observe_labels(m, x, s, tick_ms, y, n, team);
    return rc == 0 ? model_train(m, x, y, n, NULL) : rc;
}

int model_mark_day(model_t *m, int64_t day)
{
    if (m->rec)
        mj_put_day(m->rec, day);
    return ex_mark_day(m->ex, day);
}

void model_prequential(model_t *m, double p, int y)
{
    if (m->rec)
        mj_put_pm(m->rec, p, y);
    pm_add_one(m->pm, p, y);
}

void model_record_to(model_t *m, mj_t *j)
{
    m->rec = j;
}

void model_swap(model_t *a, model_t *b)
{
    model_t t = *a;
    *a = *b;
    *b = t;
    b->rec = a->rec; /* each keeps its recorder */
    a->rec = t.rec;
}

void model_calibration(const model_t *m, double *a, double *b, double *weight)
{
    cal_params(m->cal, a, b, weight);
}

ex_t *model_experts(const model_t *m)
{
    return m->ex;
}

void model_set_class_balance(model_t *m, int balanced)
{
    m->balanced = balanced != 0;
}

int model_train(model_t *m, const float *x, const float *y, size_t n, const float *sample_weight)
{
    if (n == 0)
        return 0;
    float *z = malloc(n * (size_t)m->dim * sizeof(float));
    float *w = NULL;
    double pi = ex_base_rate(m->ex);
    if (!z)
        return -1;
    if (m->balanced && pi > 0 && pi < 1) {
        /* Each class carries half the weight at the complete ticks' churn rate pi. */
        if (!(w = malloc(n * sizeof(float)))) {
            free(z);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            w[i] = (float)((y[i] >= 0.5f ? 0.5 / pi : 0.5 / (1 - pi)) *
                           (sample_weight ? (double)sample_weight[i] : 1.0));
        sample_weight = w;
    }
    sc_update(m->sc, x, n);
    sc_transform(m->sc, x, z, n);
    int rc = km_partial_fit(m->km, z, n);
    if (rc == 0)
        rc = lr_update(m->lr, z, y, n, sample_weight);
    free(z);
    free(w);
    model_touch(m, n);
    return rc;
}
