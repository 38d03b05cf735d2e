/* BG/NBD: per-customer formulas (eq. 6, 10, 11 of Fader, Hardie & Lee 2005), the collapsed
 * summary table (three small open-addressing hashes: rows, distinct x, distinct times); the
 * damped-Newton fit on log-parameters with an analytic gradient and Hessian is in
 * bgnbd_fit.c.
 *
 * Why the table indexes distinct x and distinct times: every lgamma/digamma/trigamma term
 * depends on x only, and every ln(alpha + t) on one time value only, so a pass over the rows
 * needs one exp and one log1p per row; the special functions run once per distinct x
 * (<= a few hundred with integer days). */
#include "bgnbd_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void bgnbd_params_default(bgnbd_params_t *p)
{
    p->r = 0.5;
    p->alpha = 30;
    p->a = 0.5;
    p->b = 5;
}

/* Digamma and trigamma: bgnbd_special.c. */

/* ---- per-customer formulas ---- */

void bg_sanitize(double *x, double *t_x, double *T)
{
    if (!(*T >= 0) || !isfinite(*T))
        *T = 0;
    if (!(*x >= 0) || !isfinite(*x))
        *x = 0;
    else if (*x > 0 && *x < 1)
        *x = 1;
    if (!(*t_x >= 0))
        *t_x = 0;
    if (*t_x > *T)
        *t_x = *T;
    if (*x == 0)
        *t_x = 0;
}

/* ln of the drop-out branch relative to the alive branch of eq. 6 (x > 0):
 * ln[a/(b+x-1)] + (r+x) ln((alpha+T)/(alpha+t_x)); log1p keeps t_x ~ T exact. */
static double dropout_log_ratio(const bgnbd_params_t *p, double x, double t_x, double T)
{
    return log(p->a) - log(p->b + x - 1) + (p->r + x) * log1p((T - t_x) / (p->alpha + t_x));
}

double bgnbd_loglik(const bgnbd_params_t *p, double x, double t_x, double T)
{
    bg_sanitize(&x, &t_x, &T);
    double r = p->r, al = p->alpha, a = p->a, b = p->b;
    double ll = lgamma(r + x) - lgamma(r) + r * log(al);
    double alive = -(r + x) * log(al + T);
    if (x == 0)
        return ll + alive;
    ll += lgamma(b + x) - lgamma(a + b + x) - lgamma(b) + lgamma(a + b);
    double d = dropout_log_ratio(p, x, t_x, T); /* ln(dropout branch / alive branch) */
    return ll + alive + (d > 0 ? d + log1p(exp(-d)) : log1p(exp(d)));
}

double bgnbd_p_alive(const bgnbd_params_t *p, double x, double t_x, double T)
{
    bg_sanitize(&x, &t_x, &T);
    if (x == 0)
        return 1;
    double d = dropout_log_ratio(p, x, t_x, T);
    return d > 0 ? exp(-d) / (1 + exp(-d)) : 1 / (1 + exp(d));
}

double bgnbd_p_none(const bgnbd_params_t *p, double x, double t_x, double T, double h)
{
    bg_sanitize(&x, &t_x, &T);
    if (!(h > 0))
        return 1;
    double pa = bgnbd_p_alive(p, x, t_x, T);
    /* 1 - pa (1 - ((alpha+T)/(alpha+T+h))^(r+x)), the power by expm1/log1p */
    double some = -expm1(-(p->r + x) * log1p(h / (p->alpha + T)));
    return 1 - pa * some;
}

/* expm1(y) / y, 1 at y = 0. */
static double expm1_ratio(double y)
{
    return fabs(y) < 1e-300 ? 1 : expm1(y) / y;
}

double bgnbd_expected(const bgnbd_params_t *p, double x, double t_x, double T, double h)
{
    bg_sanitize(&x, &t_x, &T);
    if (!(h > 0))
        return 0;
    double r = p->r, al = p->alpha, a = p->a, b = p->b;
    double A = r + x, C = a + b + x - 1; /* 2F1(A, B; C; z) with B = b + x, C - B = a - 1 */
    double L = -log1p(h / (al + T));     /* ln(1 - z), z = h / (alpha + T + h) */
    double z = h / (al + T + h);
    /* Euler: (1-z)^A 2F1(A, B; C; z) = (1-z)^(a-1) 2F1(C-A, a-1; C; z). With
     * (1-z)^(a-1) = 1 + (a-1) E and 2F1(C-A, a-1; C; z) = 1 + (a-1) S,
     * E = L expm1((a-1) L) / ((a-1) L),  S = sum_{n>=1} (C-A)_n (a)_{n-1} z^n / ((C)_n n!),
     * eq. 10's C/(a-1) [1 - (1-z)^A 2F1] = -C [E + S + (a-1) E S]: no 0/0 at a = 1. C S is
     * summed directly (its terms divide by (C+1)_{n-1} > 0, since C > -1), which also
     * removes the pole of 2F1 at C = 0 (x = 0, a + b = 1). */
    double E = L * expm1_ratio((a - 1) * L);
    double term = (C - A) * z, cs = term; /* n = 1 term of C S */
    for (int n = 1; n < BGNBD_2F1_MAX_TERMS && term != 0; n++) {
        term *= (C - A + n) * (a + n - 1) * z / ((C + n) * (n + 1));
        cs += term;
        if (fabs(term) <= 1e-17 * fabs(cs) && n > 2)
            break;
    }
    double ey = -(C * E + cs + (a - 1) * E * cs) * bgnbd_p_alive(p, x, t_x, T);
    return ey > 0 ? ey : 0; /* rounding only can make it negative */
}

/* ---- collapsed table ---- */

static uint64_t key_bits(double v)
{
    v += 0.0; /* -0.0 -> +0.0: equal keys must hash equally */
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash1(double v)
{
    return mix64(key_bits(v));
}

static uint64_t hash3(double x, double t_x, double T)
{
    return mix64(key_bits(x) ^ mix64(key_bits(t_x) ^ mix64(key_bits(T) + 0x9e3779b97f4a7c15ULL)));
}

static uint64_t row_hash(const bgnbd_table_t *t, size_t i)
{
    return hash3(t->rows[i].x, t->rows[i].t_x, t->rows[i].T);
}

static uint64_t x_hash(const bgnbd_table_t *t, size_t i)
{
    return hash1(t->xv[i]);
}

static uint64_t t_hash(const bgnbd_table_t *t, size_t i)
{
    return hash1(t->tv[i]);
}

/* Makes room for n entries at load <= 1/2, rehashing the first `count` entries. */
static int slots_reserve(bg_slots_t *s, size_t n, size_t count, const bgnbd_table_t *t,
                         uint64_t (*hash_of)(const bgnbd_table_t *, size_t))
{
    if (s->mask && 2 * n <= s->mask + 1)
        return 0;
    size_t cap = s->mask ? s->mask + 1 : 64;
    while (2 * n > cap)
        cap *= 2;
    uint32_t *slot = calloc(cap, sizeof(*slot));
    if (!slot)
        return -1;
    for (size_t i = 0; i < count; i++) {
        size_t j = (size_t)hash_of(t, i) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = (uint32_t)(i + 1);
    }
    free(s->slot);
    s->slot = slot;
    s->mask = cap - 1;
    return 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *p = realloc(*arr, c * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

bgnbd_table_t *bgnbd_table_new(void)
{
    return calloc(1, sizeof(bgnbd_table_t));
}

void bgnbd_table_destroy(bgnbd_table_t *t)
{
    if (!t)
        return;
    free(t->rows);
    free(t->row_idx.slot);
    free(t->xv);
    free(t->xw);
    free(t->x_idx.slot);
    free(t->tv);
    free(t->t_idx.slot);
    free(t);
}

void bgnbd_table_clear(bgnbd_table_t *t)
{
    if (t->row_idx.slot)
        memset(t->row_idx.slot, 0, (t->row_idx.mask + 1) * sizeof(uint32_t));
    if (t->x_idx.slot)
        memset(t->x_idx.slot, 0, (t->x_idx.mask + 1) * sizeof(uint32_t));
    if (t->t_idx.slot)
        memset(t->t_idx.slot, 0, (t->t_idx.mask + 1) * sizeof(uint32_t));
    t->nrows = t->nx = t->nt = 0;
    t->weight = 0;
}

size_t bgnbd_table_rows(const bgnbd_table_t *t)
{
    return t->nrows;
}

double bgnbd_table_weight(const bgnbd_table_t *t)
{
    return t->weight;
}

/* Slot of value v in a 1-double index over arr (found or the empty slot to fill). */
static size_t find1(const bg_slots_t *s, const double *arr, double v)
{
    size_t j = (size_t)hash1(v) & s->mask;
    while (s->slot[j] && arr[s->slot[j] - 1] != v)
        j = (j + 1) & s->mask;
    return j;
}

static uint32_t intern1(bg_slots_t *s, double *arr, size_t *n, double v)
{
    size_t j = find1(s, arr, v);
    if (!s->slot[j]) {
        arr[*n] = v;
        s->slot[j] = (uint32_t)++ * n;
    }
    return s->slot[j] - 1;
}

/* Room for one more distinct x in xv and xw (same capacity). */
static int grow_x(bgnbd_table_t *t)
{
    if (t->nx + 1 <= t->x_cap)
        return 0;
    size_t c = t->x_cap ? 2 * t->x_cap : 64;
    double *xv = realloc(t->xv, c * sizeof(double));
    if (!xv)
        return -1;
    t->xv = xv;
    double *xw = realloc(t->xw, c * sizeof(double));
    if (!xw)
        return -1; /* xv is larger than x_cap says: harmless, retried next time */
    t->xw = xw;
    t->x_cap = c;
    return 0;
}

int bgnbd_table_add(bgnbd_table_t *t, double x, double t_x, double T, double w)
{
    if (!isfinite(x) || !isfinite(t_x) || !isfinite(T) || !isfinite(w) || x < 0 ||
        (x > 0 && x < 1) || !(T > 0) || t_x < 0 || t_x > T || !(w > 0))
        return -1;
    x += 0.0;
    T += 0.0;
    t_x = x == 0 ? 0.0 : t_x + 0.0;
    if (t->nrows > 0) { /* the newest row again: sorted input (the refit's) adds runs of one */
        bg_row_t *last = &t->rows[t->nrows - 1];
        if (last->x == x && last->t_x == t_x && last->T == T) {
            last->w += w;
            t->xw[last->ix] += w;
            t->weight += w;
            return 0;
        }
    }
    /* Reserve everything first, so a failure leaves the table unchanged. */
    if (t->nrows >= BGNBD_TABLE_MAX_ROWS ||
        grow((void **)&t->rows, &t->rows_cap, t->nrows + 1, sizeof(bg_row_t)) ||
        slots_reserve(&t->row_idx, t->nrows + 1, t->nrows, t, row_hash) || grow_x(t) ||
        slots_reserve(&t->x_idx, t->nx + 1, t->nx, t, x_hash) ||
        grow((void **)&t->tv, &t->t_cap, t->nt + 2, sizeof(double)) ||
        slots_reserve(&t->t_idx, t->nt + 2, t->nt, t, t_hash))
        return -1;

    size_t j = (size_t)hash3(x, t_x, T) & t->row_idx.mask;
    while (t->row_idx.slot[j]) {
        bg_row_t *row = &t->rows[t->row_idx.slot[j] - 1];
        if (row->x == x && row->t_x == t_x && row->T == T) {
            row->w += w;
            t->xw[row->ix] += w;
            t->weight += w;
            return 0;
        }
        j = (j + 1) & t->row_idx.mask;
    }
    size_t nx0 = t->nx;
    uint32_t ix = intern1(&t->x_idx, t->xv, &t->nx, x);
    if (t->nx != nx0)
        t->xw[ix] = 0;
    bg_row_t *row = &t->rows[t->nrows];
    row->x = x;
    row->t_x = t_x;
    row->T = T;
    row->w = w;
    row->ix = ix;
    row->itx = intern1(&t->t_idx, t->tv, &t->nt, t_x);
    row->iT = intern1(&t->t_idx, t->tv, &t->nt, T);
    t->row_idx.slot[j] = (uint32_t)++t->nrows;
    t->xw[ix] += w;
    t->weight += w;
    return 0;
}

int bgnbd_table_thin(const bgnbd_table_t *t, size_t max_rows, bgnbd_table_t *out)
{
    bgnbd_table_clear(out);
    size_t stride = max_rows > 0 && t->nrows > max_rows ? (t->nrows + max_rows - 1) / max_rows : 1;
    for (size_t i = 0; i < t->nrows; i += stride) {
        const bg_row_t *row = &t->rows[i];
        if (bgnbd_table_add(out, row->x, row->t_x, row->T, row->w * (double)stride) != 0)
            return -1;
    }
    return 0;
}
