/* Model journals (model_journal.h): the recorder's appends and the replay. */
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mj_init(mj_t *j)
{
    memset(j, 0, sizeof(*j));
}

void mj_clear(mj_t *j)
{
    j->b.len = 0;
    j->b.failed = 0;
    j->rows = 0;
    j->ops = 0;
}

void mj_free(mj_t *j)
{
    free(j->b.data);
    mj_init(j);
}

int mj_failed(const mj_t *j)
{
    return j->b.failed;
}

static void put_f32(mw_buf_t *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    mw_put_u32(b, u);
}

static float get_f32(mw_reader_t *r)
{
    uint32_t u = mw_get_u32(r);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

void mj_put_day(mj_t *j, int64_t day)
{
    mw_put_u8(&j->b, MJ_DAY);
    mw_put_u64(&j->b, (uint64_t)day);
    j->ops++;
}

void mj_put_fit(mj_t *j, const ex_t *ex, int ok)
{
    mw_put_u8(&j->b, MJ_FIT);
    mw_put_u64(&j->b, (uint64_t)ex_fit_tick_ms(ex));
    mw_put_u8(&j->b, ok ? 1 : 0);
    if (ok) {
        const bgnbd_params_t *p = ex_bgnbd_params(ex);
        double users, loglik;
        int it;
        ex_fit_stats(ex, &users, &loglik, &it);
        mw_put_f64(&j->b, p->r);
        mw_put_f64(&j->b, p->alpha);
        mw_put_f64(&j->b, p->a);
        mw_put_f64(&j->b, p->b);
        mw_put_f64(&j->b, users);
        mw_put_f64(&j->b, loglik);
        mw_put_u32(&j->b, (uint32_t)it);
    }
    j->ops++;
}

void mj_put_shapes(mj_t *j, const ex_t *ex)
{
    mw_put_u8(&j->b, MJ_SHAPES);
    mw_put_u64(&j->b, (uint64_t)ex_shapes_fit_tick_ms(ex));
    for (int s = 1; s < EX_SHAPES; s++) {
        const bgnbd_params_t *p = ex_shape_params(ex, s);
        mw_put_f64(&j->b, p->r);
        mw_put_f64(&j->b, p->alpha);
        mw_put_f64(&j->b, p->a);
        mw_put_f64(&j->b, p->b);
    }
    j->ops++;
}

void mj_put_tick(mj_t *j, uint8_t code, int64_t tick_ms)
{
    mw_put_u8(&j->b, code);
    mw_put_u64(&j->b, (uint64_t)tick_ms);
    j->ops++;
}

void mj_put_pm(mj_t *j, double p, int y)
{
    mw_put_u8(&j->b, MJ_PM);
    mw_put_f64(&j->b, p);
    mw_put_u8(&j->b, y ? 1 : 0);
    j->ops++;
}

void mj_put_learn(mj_t *j, int dim, const float *x, const ex_summary_t *s, const int64_t *tick_ms,
                  const float *y, size_t n)
{
    mw_buf_t *b = &j->b;
    if (n > UINT32_MAX || mw_reserve(b, 9 + n * (44 + 4 * (size_t)dim)) != 0) {
        b->failed = 1;
        return;
    }
    mw_put_u8(b, MJ_LEARN);
    mw_put_u32(b, (uint32_t)dim);
    mw_put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        mw_put_u64(b, (uint64_t)tick_ms[i]);
        put_f32(b, y[i]);
        mw_put_f64(b, s[i].rep);
        mw_put_f64(b, s[i].t_x);
        mw_put_f64(b, s[i].age);
        mw_put_f64(b, s[i].h);
        for (int k = 0; k < dim; k++)
            put_f32(b, x[i * (size_t)dim + (size_t)k]);
    }
    j->rows += n;
    j->ops++;
}

void mj_put_name(mj_t *j, uint64_t segment_version, int seg, int arch, const char *label)
{
    size_t len = strlen(label);
    mw_put_u8(&j->b, MJ_NAME);
    mw_put_u64(&j->b, segment_version);
    mw_put_u32(&j->b, (uint32_t)seg);
    mw_put_u8(&j->b, (uint8_t)arch);
    mw_put_u32(&j->b, (uint32_t)len);
    mw_put_bytes(&j->b, label, len);
    j->ops++;
}

/* ---- replay ----
 * Times are checked before they reach the parts: a tick beyond +-2^52 ms (142,000 years) or
 * a day beyond +-2^36 (the features' bound, open_days.c) comes from no engine, and their
 * differences could overflow. */
#define MJ_TIME_MAX ((int64_t)1 << 52)
#define MJ_DAY_MAX  ((int64_t)1 << 36)
/* Rows: labels are 0 or 1 (the engine's); a feature beyond 1e15 or a summary beyond 1e9
 * days is no engine's either (features are logs, counts and days). */
#define MJ_VALUE_MAX 1e15f
#define MJ_DAYS_MAX  1e9

static int time_ok(int64_t t)
{
    return t >= -MJ_TIME_MAX && t <= MJ_TIME_MAX;
}

static int replay_fit(model_t *m, mw_reader_t *r)
{
    int64_t tick = (int64_t)mw_get_u64(r);
    int ok = mw_get_u8(r);
    bgnbd_params_t p = {0};
    double users = 0, loglik = 0;
    int it = 0;
    if (ok) {
        p.r = mw_get_f64(r);
        p.alpha = mw_get_f64(r);
        p.a = mw_get_f64(r);
        p.b = mw_get_f64(r);
        users = mw_get_f64(r);
        loglik = mw_get_f64(r);
        it = (int)mw_get_u32(r);
        if (!(p.r > 0) || !(p.alpha > 0) || !(p.a > 0) || !(p.b > 0) || !isfinite(p.r) ||
            !isfinite(p.alpha) || !isfinite(p.a) || !isfinite(p.b) || !isfinite(users) ||
            !isfinite(loglik) || it < 0)
            return -1;
    }
    if (r->failed || ok > 1 || !time_ok(tick))
        return -1;
    /* Several copies fit the same tick on their own users: the first fit merged wins. */
    if (tick > ex_fit_tick_ms(m->ex)) {
        m->version++;
        ex_fit_set(m->ex, tick, ok ? &p : NULL, users, loglik, it);
    }
    return 0;
}

/* Rows of one LEARN op, decoded into malloc'd arrays and learnt. */
static int replay_learn(model_t *m, mw_reader_t *r)
{
    uint32_t dim = mw_get_u32(r), n = mw_get_u32(r);
    const size_t row = 44 + 4 * (size_t)dim;
    if (r->failed || (int)dim != m->dim || n > (r->len - r->off) / row)
        return -1;
    if (n == 0)
        return 0;
    float *x = malloc((size_t)n * dim * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    ex_summary_t *s = malloc((size_t)n * sizeof(*s));
    int64_t *tick = malloc((size_t)n * sizeof(*tick));
    int rc = -1;
    if (!x || !y || !s || !tick)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        tick[i] = (int64_t)mw_get_u64(r);
        y[i] = get_f32(r);
        s[i].rep = mw_get_f64(r);
        s[i].t_x = mw_get_f64(r);
        s[i].age = mw_get_f64(r);
        s[i].h = mw_get_f64(r);
        int bad = 0;
        for (uint32_t k = 0; k < dim; k++) {
            x[(size_t)i * dim + k] = get_f32(r);
            bad |= !(fabsf(x[(size_t)i * dim + k]) <= MJ_VALUE_MAX);
        }
        /* experts.h's invariants of a summary: 0 <= t_x <= age, rep = 0 => t_x = 0, h > 0. */
        const ex_summary_t *q = &s[i];
        bad |= !(q->rep >= 0 && q->age <= MJ_DAYS_MAX && q->h > 0 && q->h <= MJ_DAYS_MAX &&
                 q->rep <= MJ_DAYS_MAX && q->t_x >= 0 && q->t_x <= q->age) ||
               (q->rep == 0 && q->t_x != 0);
        if (bad || (y[i] != 0 && y[i] != 1) || !time_ok(tick[i]))
            goto out;
    }
    rc = r->failed ? -1 : model_learn(m, x, s, tick, y, n, NULL);
out:
    free(x);
    free(y);
    free(s);
    free(tick);
    return rc;
}

static int replay_name(model_t *m, mw_reader_t *r)
{
    uint64_t v = mw_get_u64(r);
    uint32_t seg = mw_get_u32(r);
    uint8_t arch = mw_get_u8(r);
    uint32_t len = mw_get_u32(r);
    const uint8_t *p = r->failed ? NULL : mw_take(r, len);
    if (!p || seg >= (uint32_t)m->k)
        return -1;
    char label[MODEL_SEG_NAME_MAX];
    size_t l = len < sizeof label - 1 ? len : sizeof label - 1;
    memcpy(label, p, l);
    label[l] = '\0';
    int have;
    char old[8];
    /* A name given under another segment version names another centre: dropped. */
    if (v == km_segment_version(m->km) && !model_segment_name(m, (int)seg, &have, old, sizeof old))
        return model_set_segment_name(m, (int)seg, arch, label);
    return 0;
}

static int params_ok(const bgnbd_params_t *p)
{
    return p->r > 0 && p->alpha > 0 && p->a > 0 && p->b > 0 && isfinite(p->r) &&
           isfinite(p->alpha) && isfinite(p->a) && isfinite(p->b);
}

/* Shapes refitted by one copy: applied only for a tick after the model's last shapes fit,
 * like FIT (always recorded right after the FIT op of the same refit). */
static int replay_shapes(model_t *m, mw_reader_t *r)
{
    int64_t tick = (int64_t)mw_get_u64(r);
    bgnbd_params_t p[EX_SHAPES - 1];
    for (int s = 0; s < EX_SHAPES - 1; s++) {
        p[s].r = mw_get_f64(r);
        p[s].alpha = mw_get_f64(r);
        p[s].a = mw_get_f64(r);
        p[s].b = mw_get_f64(r);
        if (!params_ok(&p[s]))
            return -1;
    }
    if (r->failed || !time_ok(tick))
        return -1;
    if (tick > ex_shapes_fit_tick_ms(m->ex))
        ex_shapes_set(m->ex, tick, p); /* the version moved with the FIT op before it */
    return 0;
}

static int replay_op(model_t *m, uint8_t code, mw_reader_t *r)
{
    switch (code) {
    case MJ_DAY: {
        int64_t day = (int64_t)mw_get_u64(r);
        return r->failed || day < -MJ_DAY_MAX || day > MJ_DAY_MAX ? -1 : model_mark_day(m, day);
    }
    case MJ_FIT:
        return replay_fit(m, r);
    case MJ_TICK: {
        int64_t t = (int64_t)mw_get_u64(r);
        return r->failed || !time_ok(t) ? -1 : model_tick_start(m, t);
    }
    case MJ_PM: {
        double p = mw_get_f64(r);
        uint8_t y = mw_get_u8(r);
        if (r->failed || y > 1 || (!isnan(p) && !(p >= 0 && p <= 1)))
            return -1;
        model_prequential(m, p, y);
        return 0;
    }
    case MJ_LEARN:
        return replay_learn(m, r);
    case MJ_COMPLETE: {
        int64_t t = (int64_t)mw_get_u64(r);
        if (r->failed || !time_ok(t))
            return -1;
        model_ticks_complete(m, t);
        return 0;
    }
    case MJ_NAME:
        return replay_name(m, r);
    case MJ_SHAPES:
        return replay_shapes(m, r);
    default:
        return -1;
    }
}

int model_replay(model_t *m, const uint8_t *buf, size_t len, char *errstr, size_t errstr_size)
{
    mw_reader_t r = {.p = buf, .len = len};
    mj_t *rec = m->rec;
    m->rec = NULL; /* a replay is not new learning */
    int rc = 0;
    size_t op = 0;
    while (r.off < r.len) {
        size_t at = r.off;
        uint8_t code = mw_get_u8(&r);
        if (replay_op(m, code, &r) != 0 || r.failed) {
            snprintf(errstr, errstr_size,
                     "model journal: op %zu (code %u) at byte %zu of %zu is corrupt, truncated "
                     "or does not fit this model (or out of memory)",
                     op, (unsigned)code, at, len);
            rc = -1;
            break;
        }
        op++;
    }
    m->rec = rec;
    return rc;
}
