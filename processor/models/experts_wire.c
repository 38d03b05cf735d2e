/* The experts' snapshot section (experts.h: ex_encode, ex_decode). */
#include "experts_internal.h"

#include <math.h>
#include <stdio.h>

/* ---- snapshot section ----
 * f64 horizon_days | f64 r, alpha, a, b | u64 fit_tick_ms | f64 fit_users, fit_loglik |
 * u32 fit_iterations | f64 loss[EX_N] | f64 loss_weight, labels, positives | u64 ticks_folded | u64
 * last_folded_ms | f64 graded_weeks (format 4) | u32 npending | npending x (u64 tick_ms, f64 n, f64
 * pos, f64 loss[EX_N]) | u32 dim | u32 nfrozen | nfrozen x (u64 tick_ms, f64 r, alpha, a, b, f64
 * cal_a, cal_b, f64 coef[dim + 1]) | the open days (open_days.h; format 5) */
void ex_encode(const ex_t *ex, mw_buf_t *b)
{
    mw_put_f64(b, ex->horizon_days);
    mw_put_f64(b, ex->bg.r);
    mw_put_f64(b, ex->bg.alpha);
    mw_put_f64(b, ex->bg.a);
    mw_put_f64(b, ex->bg.b);
    mw_put_u64(b, (uint64_t)ex->fit_tick_ms);
    mw_put_f64(b, ex->fit_users);
    mw_put_f64(b, ex->fit_loglik);
    mw_put_u32(b, (uint32_t)ex->fit_iterations);
    for (int i = 0; i < EX_N; i++)
        mw_put_f64(b, ex->loss[i]);
    mw_put_f64(b, ex->loss_weight);
    mw_put_f64(b, ex->labels);
    mw_put_f64(b, ex->positives);
    mw_put_u64(b, ex->ticks_folded);
    mw_put_u64(b, (uint64_t)ex->last_folded_ms);
    mw_put_f64(b, ex->graded_weeks);
    mw_put_u32(b, (uint32_t)ex->npending);
    for (size_t i = 0; i < ex->npending; i++) {
        mw_put_u64(b, (uint64_t)ex->pending[i].tick_ms);
        mw_put_f64(b, ex->pending[i].n);
        mw_put_f64(b, ex->pending[i].pos);
        for (int j = 0; j < EX_N; j++)
            mw_put_f64(b, ex->pending[i].loss[j]);
    }
    mw_put_u32(b, (uint32_t)ex->dim);
    mw_put_u32(b, (uint32_t)ex->nfrozen);
    for (size_t i = 0; i < ex->nfrozen; i++) {
        const ex_frozen_t *f = &ex->frozen[i];
        mw_put_u64(b, (uint64_t)f->tick_ms);
        mw_put_f64(b, f->bg.r);
        mw_put_f64(b, f->bg.alpha);
        mw_put_f64(b, f->bg.a);
        mw_put_f64(b, f->bg.b);
        mw_put_f64(b, f->cal_a);
        mw_put_f64(b, f->cal_b);
        for (int j = 0; j <= ex->dim; j++)
            mw_put_f64(b, f->coef[j]);
    }
    od_encode(&ex->days, b);
}

static int positive(double v)
{
    return isfinite(v) && v > 0;
}

ex_t *ex_decode(mw_reader_t *r, int format, char *errstr, size_t errstr_size)
{
    double h = mw_get_f64(r);
    ex_t *ex = ex_new(positive(h) ? h : 1);
    if (!ex) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    ex->bg.r = mw_get_f64(r);
    ex->bg.alpha = mw_get_f64(r);
    ex->bg.a = mw_get_f64(r);
    ex->bg.b = mw_get_f64(r);
    ex->fit_tick_ms = (int64_t)mw_get_u64(r);
    ex->fit_users = mw_get_f64(r);
    ex->fit_loglik = mw_get_f64(r);
    ex->fit_iterations = (int)mw_get_u32(r);
    int bad = !positive(h) || !positive(ex->bg.r) || !positive(ex->bg.alpha) ||
              !positive(ex->bg.a) || !positive(ex->bg.b) || !isfinite(ex->fit_users) ||
              !isfinite(ex->fit_loglik) || ex->fit_iterations < 0;
    for (int i = 0; i < EX_N; i++) {
        ex->loss[i] = mw_get_f64(r);
        bad |= !isfinite(ex->loss[i]) || ex->loss[i] < 0;
    }
    ex->loss_weight = mw_get_f64(r);
    bad |= !isfinite(ex->loss_weight) || ex->loss_weight < 0;
    ex->labels = mw_get_f64(r);
    ex->positives = mw_get_f64(r);
    bad |= !isfinite(ex->labels) || !isfinite(ex->positives) || ex->positives < 0 ||
           ex->positives > ex->labels;
    ex->ticks_folded = mw_get_u64(r);
    ex->last_folded_ms = (int64_t)mw_get_u64(r);
    ex->graded_weeks = mw_get_f64(r);
    bad |= !isfinite(ex->graded_weeks) || ex->graded_weeks < 0 ||
           (ex->graded_weeks > 0) != (ex->ticks_folded > 0);
    uint32_t n = mw_get_u32(r);
    /* Each pending tick takes 24 + 8 EX_N bytes: refuse counts the input cannot hold. */
    if (!bad && !r->failed && (n > EX_MAX_PENDING || n > (r->len - r->off) / (24 + 8 * EX_N)))
        bad = 1;
    for (uint32_t i = 0; !bad && !r->failed && i < n; i++) {
        int64_t tick = (int64_t)mw_get_u64(r);
        if (i > 0 && tick <= ex->pending[i - 1].tick_ms) {
            bad = 1;
            break;
        }
        ex_tick_t *t = ex_pending_slot(ex, tick);
        if (!t) {
            bad = 1;
            break;
        }
        t->n = mw_get_f64(r);
        t->pos = mw_get_f64(r);
        bad |= !isfinite(t->n) || t->n < 0 || !isfinite(t->pos) || t->pos < 0 || t->pos > t->n;
        for (int j = 0; j < EX_N; j++) {
            t->loss[j] = mw_get_f64(r);
            bad |= !isfinite(t->loss[j]) || t->loss[j] < 0;
        }
    }
    uint32_t dim = mw_get_u32(r), nf = mw_get_u32(r);
    if (!bad && !r->failed &&
        (dim > 4096 || nf > EX_MAX_PENDING || (nf > 0 && dim == 0) ||
         nf > (r->len - r->off) / EX_FROZEN_BYTES(dim)))
        bad = 1;
    ex->dim = (int)dim;
    for (uint32_t i = 0; !bad && !r->failed && i < nf; i++) {
        int64_t tick = (int64_t)mw_get_u64(r);
        ex_frozen_t *f = ex_frozen_push(ex, tick);
        if (!f) {
            bad = 1;
            break;
        }
        f->bg.r = mw_get_f64(r);
        f->bg.alpha = mw_get_f64(r);
        f->bg.a = mw_get_f64(r);
        f->bg.b = mw_get_f64(r);
        f->cal_a = mw_get_f64(r);
        f->cal_b = mw_get_f64(r);
        bad |= !positive(f->bg.r) || !positive(f->bg.alpha) || !positive(f->bg.a) ||
               !positive(f->bg.b) || !isfinite(f->cal_a) || !isfinite(f->cal_b);
        for (uint32_t j = 0; j <= dim; j++) {
            f->coef[j] = mw_get_f64(r);
            bad |= !isfinite(f->coef[j]);
        }
    }
    if (!bad && !r->failed && format >= 5 && od_decode(&ex->days, r) != 0)
        bad = 1;
    if (bad || r->failed) {
        snprintf(errstr, errstr_size, "experts section corrupt or truncated");
        ex_destroy(ex);
        return NULL;
    }
    ex_refresh_weights(ex);
    return ex;
}

/* ---- shapes section (format 6; after the segment names) ----
 * u32 shape | u64 shape_fit_tick_ms | f64 shape_weeks | f64 shape_loss[EX_SHAPES] |
 * (EX_SHAPES - 1) x f64 r, alpha, a, b | u32 npending | npending x (f64 shape_n, f64
 * shape_loss[EX_SHAPES]) | u32 nfrozen | nfrozen x (u32 shape | (EX_SHAPES - 1) x f64 r,
 * alpha, a, b). The pending and frozen ticks are the experts section's, in its order. */
static void put_params(mw_buf_t *b, const bgnbd_params_t *p)
{
    mw_put_f64(b, p->r);
    mw_put_f64(b, p->alpha);
    mw_put_f64(b, p->a);
    mw_put_f64(b, p->b);
}

static int get_params(mw_reader_t *r, bgnbd_params_t *p)
{
    p->r = mw_get_f64(r);
    p->alpha = mw_get_f64(r);
    p->a = mw_get_f64(r);
    p->b = mw_get_f64(r);
    return positive(p->r) && positive(p->alpha) && positive(p->a) && positive(p->b) ? 0 : -1;
}

void ex_encode_shapes(const ex_t *ex, mw_buf_t *b)
{
    mw_put_u32(b, (uint32_t)ex->shape);
    mw_put_u64(b, (uint64_t)ex->shape_fit_tick_ms);
    mw_put_f64(b, ex->shape_weeks);
    for (int s = 0; s < EX_SHAPES; s++)
        mw_put_f64(b, ex->shape_loss[s]);
    for (int s = 1; s < EX_SHAPES; s++)
        put_params(b, &ex->shape_bg[s]);
    mw_put_u32(b, (uint32_t)ex->npending);
    for (size_t i = 0; i < ex->npending; i++) {
        mw_put_f64(b, ex->pending[i].shape_n);
        for (int s = 0; s < EX_SHAPES; s++)
            mw_put_f64(b, ex->pending[i].shape_loss[s]);
    }
    mw_put_u32(b, (uint32_t)ex->nfrozen);
    for (size_t i = 0; i < ex->nfrozen; i++) {
        mw_put_u32(b, (uint32_t)ex->frozen[i].shape);
        for (int s = 1; s < EX_SHAPES; s++)
            put_params(b, &ex->frozen[i].shape_bg[s]);
    }
}

int ex_decode_shapes(ex_t *ex, mw_reader_t *r)
{
    uint32_t shape = mw_get_u32(r);
    ex->shape_fit_tick_ms = (int64_t)mw_get_u64(r);
    ex->shape_weeks = mw_get_f64(r);
    int bad = shape >= EX_SHAPES || !isfinite(ex->shape_weeks) || ex->shape_weeks < 0;
    for (int s = 0; s < EX_SHAPES; s++) {
        ex->shape_loss[s] = mw_get_f64(r);
        bad |= !isfinite(ex->shape_loss[s]) || ex->shape_loss[s] < 0;
    }
    for (int s = 1; s < EX_SHAPES; s++)
        bad |= get_params(r, &ex->shape_bg[s]);
    if (bad || r->failed || mw_get_u32(r) != ex->npending)
        return -1;
    for (size_t i = 0; i < ex->npending && !r->failed; i++) {
        ex_tick_t *t = &ex->pending[i];
        t->shape_n = mw_get_f64(r);
        bad |= !isfinite(t->shape_n) || t->shape_n < 0 || t->shape_n > t->n;
        for (int s = 0; s < EX_SHAPES; s++) {
            t->shape_loss[s] = mw_get_f64(r);
            bad |= !isfinite(t->shape_loss[s]) || t->shape_loss[s] < 0;
        }
    }
    if (bad || r->failed || mw_get_u32(r) != ex->nfrozen)
        return -1;
    for (size_t i = 0; i < ex->nfrozen && !r->failed && !bad; i++) {
        ex_frozen_t *f = &ex->frozen[i];
        uint32_t fs = mw_get_u32(r);
        bad |= fs >= EX_SHAPES;
        f->shape = (int)(fs % EX_SHAPES);
        f->shape_bg[0] = f->bg;
        for (int s = 1; s < EX_SHAPES; s++)
            bad |= get_params(r, &f->shape_bg[s]);
        f->shapes_known = 1;
    }
    if (bad || r->failed)
        return -1;
    ex->shape = (int)shape;
    return 0;
}