/* BG/NBD: per-customer formulas (eq. 6, 10, 11 of Fader, Hardie & Lee 2005), the collapsed
 * summary table (three small open-addressing hashes: rows, distinct x, distinct times) and
 * the damped-Newton fit on log-parameters with an analytic gradient and Hessian.
 *
 * Why the table indexes distinct x and distinct times: every lgamma/digamma/trigamma term
 * depends on x only, and every ln(alpha + t) on one time value only, so a pass over the rows
 * needs one exp and one log1p per row; the special functions run once per distinct x
 * (<= a few hundred with integer days). */
#include "bgnbd.h"

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

/* Clamps a summary into the model's domain (see the header): no finite input gives NaN. */
static void sanitize(double *x, double *t_x, double *T)
{
    if (!(*x > 0))
        *x = 0;
    else if (*x < 1)
        *x = 1;
    if (!(*T > 0))
        *T = 0;
    if (!(*t_x > 0) || *x == 0)
        *t_x = 0;
    if (*t_x > *T)
        *t_x = *T;
}

/* ln of the drop-out branch relative to the alive branch of eq. 6 (x > 0):
 * ln[a/(b+x-1)] + (r+x) ln((alpha+T)/(alpha+t_x)); log1p keeps t_x ~ T exact. */
static double dropout_log_ratio(const bgnbd_params_t *p, double x, double t_x, double T)
{
    return log(p->a) - log(p->b + x - 1) + (p->r + x) * log1p((T - t_x) / (p->alpha + t_x));
}

double bgnbd_loglik(const bgnbd_params_t *p, double x, double t_x, double T)
{
    sanitize(&x, &t_x, &T);
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
    sanitize(&x, &t_x, &T);
    if (x == 0)
        return 1;
    double d = dropout_log_ratio(p, x, t_x, T);
    return d > 0 ? exp(-d) / (1 + exp(-d)) : 1 / (1 + exp(d));
}

double bgnbd_p_none(const bgnbd_params_t *p, double x, double t_x, double T, double h)
{
    sanitize(&x, &t_x, &T);
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
    sanitize(&x, &t_x, &T);
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

typedef struct bg_row_s {
    double x, t_x, T, w;
    uint32_t ix, itx, iT; /* indices into the distinct x and time arrays */
} bg_row_t;

/* Open-addressing index: slot holds (array index + 1), 0 = empty; load kept <= 1/2. */
typedef struct bg_slots_s {
    uint32_t *slot;
    size_t mask; /* capacity - 1 (power of two), 0 before the first allocation */
} bg_slots_t;

struct bgnbd_table_s {
    bg_row_t *rows;
    size_t nrows, rows_cap;
    bg_slots_t row_idx;
    double *xv, *xw; /* distinct x values, their total weight */
    size_t nx, x_cap;
    bg_slots_t x_idx;
    double *tv; /* distinct time values (T and t_x alike) */
    size_t nt, t_cap;
    bg_slots_t t_idx;
    double weight;
};

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

/* ---- fit ---- */

/* Log-likelihood with gradient and Hessian in q = (ln r, ln alpha, ln a, ln b). */
typedef struct bg_eval_s {
    double f, g[4], h[4][4];
} bg_eval_t;

typedef struct bg_work_s {
    double *rx, *lnab, *qb; /* per distinct x: r + x, ln a - ln(b+x-1), b/(b+x-1) */
    double *lt, *rho;       /* per distinct time: ln(alpha + t), alpha/(alpha + t) */
} bg_work_t;

static void eval_ll(const bgnbd_table_t *t, const double q[4], bg_work_t *wk, bg_eval_t *e)
{
    double r = exp(q[0]), al = exp(q[1]), a = exp(q[2]), b = exp(q[3]);
    double f = 0, g[4] = {0}, h[4][4] = {{0}};

    /* Terms of x only: lnG(r+x) - lnG(r) + lnB(a, b+x) - lnB(a, b), once per distinct x. */
    double lg_r = lgamma(r), lg_b = lgamma(b), lg_ab = lgamma(a + b);
    double ps_r = bgnbd_digamma(r), ps_b = bgnbd_digamma(b), ps_ab = bgnbd_digamma(a + b);
    double tr_r = bgnbd_trigamma(r), tr_b = bgnbd_trigamma(b), tr_ab = bgnbd_trigamma(a + b);
    for (size_t i = 0; i < t->nx; i++) {
        double x = t->xv[i], w = t->xw[i];
        wk->rx[i] = r + x;
        if (x == 0) {
            wk->lnab[i] = 0;
            wk->qb[i] = 0;
            continue;
        }
        wk->lnab[i] = q[2] - log(b + x - 1);
        wk->qb[i] = b / (b + x - 1);
        f += w * (lgamma(r + x) - lg_r + lgamma(b + x) - lgamma(a + b + x) - lg_b + lg_ab);
        double ps_abx = bgnbd_digamma(a + b + x), tr_abx = bgnbd_trigamma(a + b + x);
        double dr = r * (bgnbd_digamma(r + x) - ps_r);
        double da = a * (ps_ab - ps_abx);
        double db = b * (bgnbd_digamma(b + x) - ps_abx - ps_b + ps_ab);
        g[0] += w * dr;
        g[2] += w * da;
        g[3] += w * db;
        h[0][0] += w * (dr + r * r * (bgnbd_trigamma(r + x) - tr_r));
        h[2][2] += w * (da + a * a * (tr_ab - tr_abx));
        h[2][3] += w * (a * b * (tr_ab - tr_abx));
        h[3][3] += w * (db + b * b * (bgnbd_trigamma(b + x) - tr_abx - tr_b + tr_ab));
    }
    /* r ln alpha, every customer */
    double W = t->weight, lna = q[1];
    f += W * r * lna;
    g[0] += W * r * lna;
    g[1] += W * r;
    h[0][0] += W * r * lna;
    h[0][1] += W * r;

    for (size_t i = 0; i < t->nt; i++) {
        wk->lt[i] = log(al + t->tv[i]);
        wk->rho[i] = al / (al + t->tv[i]);
    }

    /* The bracket: ln(e^u + e^v), u = -(r+x) ln(alpha+T) (alive), v = ln a - ln(b+x-1)
     * - (r+x) ln(alpha+t_x) (dropped out after t_x; only x > 0). With pi = e^v/(e^u+e^v):
     * grad = (1-pi) du + pi dv, hess = (1-pi) d2u + pi d2v + pi (1-pi) (du-dv)(du-dv)'. */
    for (size_t k = 0; k < t->nrows; k++) {
        const bg_row_t *row = &t->rows[k];
        double w = row->w, rx = wk->rx[row->ix];
        double LT = wk->lt[row->iT], rT = wk->rho[row->iT];
        double u = -rx * LT;
        double du0 = -r * LT, du1 = -rx * rT, uaa = -rx * rT * (1 - rT);
        if (row->x == 0) {
            f += w * u;
            g[0] += w * du0;
            g[1] += w * du1;
            h[0][0] += w * du0;
            h[0][1] += w * -r * rT;
            h[1][1] += w * uaa;
            continue;
        }
        double Lt = wk->lt[row->itx], rt = wk->rho[row->itx], qb = wk->qb[row->ix];
        double v = wk->lnab[row->ix] - rx * Lt;
        double d = v - u, ed = exp(-fabs(d));
        double pi = d > 0 ? 1 / (1 + ed) : ed / (1 + ed), pu = 1 - pi;
        f += w * ((d > 0 ? v : u) + log1p(ed));
        double dv0 = -r * Lt, dv1 = -rx * rt, dv3 = -qb;
        g[0] += w * (pu * du0 + pi * dv0);
        g[1] += w * (pu * du1 + pi * dv1);
        g[2] += w * pi;
        g[3] += w * pi * dv3;
        double c = w * pi * pu;
        double e0 = du0 - dv0, e1 = du1 - dv1, e2 = -1, e3 = -dv3; /* du - dv */
        h[0][0] += w * (pu * du0 + pi * dv0) + c * e0 * e0;
        h[0][1] += w * (pu * -r * rT + pi * -r * rt) + c * e0 * e1;
        h[0][2] += c * e0 * e2;
        h[0][3] += c * e0 * e3;
        h[1][1] += w * (pu * uaa + pi * -rx * rt * (1 - rt)) + c * e1 * e1;
        h[1][2] += c * e1 * e2;
        h[1][3] += c * e1 * e3;
        h[2][2] += c;
        h[2][3] += c * e2 * e3;
        h[3][3] += w * pi * -qb * (1 - qb) + c * e3 * e3;
    }
    e->f = f;
    for (int i = 0; i < 4; i++) {
        e->g[i] = g[i];
        for (int j = i; j < 4; j++)
            e->h[i][j] = e->h[j][i] = h[i][j];
    }
}

/* Cholesky solve of (A + mu I) d = -g on the coordinates with free[i]; fixed ones get
 * d = 0. Returns -1 when not positive definite. inv_diag (optional) receives the diagonal
 * of the inverse on the free coordinates. */
static int solve_free(const double A[4][4], const double g[4], const int free_[4], double mu,
                      double d[4], double inv_diag[4])
{
    int idx[4], n = 0;
    for (int i = 0; i < 4; i++)
        if (free_[i])
            idx[n++] = i;
    double L[4][4] = {{0}}, y[4], z[4];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= i; j++) {
            double s = A[idx[i]][idx[j]] + (i == j ? mu : 0);
            for (int k = 0; k < j; k++)
                s -= L[i][k] * L[j][k];
            if (i == j) {
                if (!(s > 0) || !isfinite(s))
                    return -1;
                L[i][i] = sqrt(s);
            } else {
                L[i][j] = s / L[j][j];
            }
        }
    }
    for (int i = 0; i < n; i++) {
        double s = -g[idx[i]];
        for (int k = 0; k < i; k++)
            s -= L[i][k] * y[k];
        y[i] = s / L[i][i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = y[i];
        for (int k = i + 1; k < n; k++)
            s -= L[k][i] * z[k];
        z[i] = s / L[i][i];
    }
    for (int i = 0; i < 4; i++)
        d[i] = 0;
    for (int i = 0; i < n; i++)
        d[idx[i]] = z[i];
    if (inv_diag) {
        /* column j of L^-1, then (A^-1)_jj = sum_k (L^-1)_kj^2 */
        for (int j = 0; j < n; j++) {
            double col[4] = {0};
            for (int i = j; i < n; i++) {
                double s = i == j ? 1 : 0;
                for (int k = j; k < i; k++)
                    s -= L[i][k] * col[k];
                col[i] = s / L[i][i];
            }
            double v = 0;
            for (int i = j; i < n; i++)
                v += col[i] * col[i];
            inv_diag[idx[j]] = v;
        }
    }
    return 0;
}

/* Objective to minimize: -LL + prior, its gradient G and Hessian H. */
static double objective(const bg_eval_t *e, const double q[4], double G[4], double H[4][4])
{
    double F = -e->f;
    for (int i = 0; i < 4; i++) {
        F += 0.5 * BGNBD_PRIOR_PRECISION * q[i] * q[i];
        if (G)
            G[i] = -e->g[i] + BGNBD_PRIOR_PRECISION * q[i];
        if (H)
            for (int j = 0; j < 4; j++)
                H[i][j] = -e->h[i][j] + (i == j ? BGNBD_PRIOR_PRECISION : 0);
    }
    return F;
}

static int params_valid(const bgnbd_params_t *p)
{
    return isfinite(p->r) && isfinite(p->alpha) && isfinite(p->a) && isfinite(p->b) && p->r > 0 &&
           p->alpha > 0 && p->a > 0 && p->b > 0;
}

static double clamp_log(double v)
{
    return v < -BGNBD_LOG_MAX ? -BGNBD_LOG_MAX : v > BGNBD_LOG_MAX ? BGNBD_LOG_MAX : v;
}

static int work_alloc(const bgnbd_table_t *t, bg_work_t *wk)
{
    size_t nx = t->nx ? t->nx : 1, nt = t->nt ? t->nt : 1;
    double *mem = malloc((3 * nx + 2 * nt) * sizeof(double));
    if (!mem)
        return -1;
    wk->rx = mem;
    wk->lnab = mem + nx;
    wk->qb = mem + 2 * nx;
    wk->lt = mem + 3 * nx;
    wk->rho = mem + 3 * nx + nt;
    return 0;
}

double bgnbd_table_loglik(const bgnbd_table_t *t, const bgnbd_params_t *p)
{
    bg_work_t wk;
    if (work_alloc(t, &wk))
        return NAN;
    double q[4] = {log(p->r), log(p->alpha), log(p->a), log(p->b)};
    bg_eval_t e;
    eval_ll(t, q, &wk, &e);
    free(wk.rx);
    return e.f;
}

#define FIT_MAX_TRIALS 20  /* damped solves per Newton step before giving up */
#define FIT_MAX_STEP   2.0 /* largest change of one log-parameter per step */
/* Converged when the Newton decrement g' H^-1 g (twice the predicted remaining gain) is
 * below FIT_TOL (1 + |F|): about 1e-7 in LL units for 10^4 users. */
#define FIT_TOL 1e-11

int bgnbd_fit(const bgnbd_table_t *t, bgnbd_params_t *p, int max_iter, bgnbd_fit_info_t *info)
{
    if (info) {
        memset(info, 0, sizeof(*info));
        for (int i = 0; i < 4; i++)
            info->se[i] = INFINITY;
        info->loglik = NAN;
    }
    double wpos = 0;
    for (size_t i = 0; i < t->nx; i++)
        if (t->xv[i] > 0)
            wpos += t->xw[i];
    if (t->nrows == 0 || !(wpos > 0))
        return -1;
    bg_work_t wk;
    if (work_alloc(t, &wk))
        return -1;

    bgnbd_params_t start = *p;
    if (!params_valid(&start))
        bgnbd_params_default(&start);
    double q[4] = {clamp_log(log(start.r)), clamp_log(log(start.alpha)), clamp_log(log(start.a)),
                   clamp_log(log(start.b))};
    bg_eval_t e, en;
    eval_ll(t, q, &wk, &e);
    double G[4], H[4][4];
    double F = objective(&e, q, G, H);
    int iter = 0, converged = 0;
    double mu = 0;
    if (max_iter < 1)
        max_iter = 1;
    while (isfinite(F)) {
        /* Coordinates held at the box when the descent direction points outside it. */
        int free_[4];
        double scale = 1;
        for (int i = 0; i < 4; i++) {
            free_[i] =
                !((q[i] <= -BGNBD_LOG_MAX && G[i] > 0) || (q[i] >= BGNBD_LOG_MAX && G[i] < 0));
            if (fabs(H[i][i]) > scale)
                scale = fabs(H[i][i]);
        }
        double d[4], dec = INFINITY;
        if (solve_free(H, G, free_, 0, d, NULL) == 0) {
            dec = 0;
            for (int i = 0; i < 4; i++)
                dec -= G[i] * d[i];
        }
        if (dec < FIT_TOL * (1 + fabs(F))) {
            converged = 1;
            break;
        }
        if (iter >= max_iter)
            break;
        int accepted = 0;
        for (int trial = 0; trial < FIT_MAX_TRIALS && !accepted; trial++) {
            if (trial > 0 || mu > 0 || !isfinite(dec)) {
                /* Damp until positive definite; mu grows 8x a round, so 40 rounds cover
                 * any finite Hessian. A non-finite one (unreachable inside the box) ends
                 * the fit here rather than looping. */
                int tries = 0;
                while (solve_free(H, G, free_, mu, d, NULL) != 0 && ++tries < 40)
                    mu = mu > 0 ? mu * 8 : 1e-6 * scale;
                if (tries >= 40)
                    break;
            }
            double big = 0;
            for (int i = 0; i < 4; i++)
                big = fmax(big, fabs(d[i]));
            double shrink = big > FIT_MAX_STEP ? FIT_MAX_STEP / big : 1;
            double qn[4], slope = 0;
            for (int i = 0; i < 4; i++) {
                qn[i] = clamp_log(q[i] + shrink * d[i]);
                slope += G[i] * (qn[i] - q[i]);
            }
            eval_ll(t, qn, &wk, &en);
            double Fn = objective(&en, qn, NULL, NULL);
            if (isfinite(Fn) && Fn < F && Fn <= F + 1e-4 * slope) {
                accepted = 1;
                memcpy(q, qn, sizeof(q));
                e = en;
                F = objective(&e, q, G, H);
                mu = mu > 1e-9 * scale ? mu / 8 : 0;
            } else {
                mu = mu > 0 ? mu * 8 : 1e-4 * scale;
            }
        }
        if (!accepted) {
            /* No decrease possible: at the optimum to within rounding, or stuck. */
            converged = dec < 1e-7 * (1 + fabs(F));
            break;
        }
        iter++;
    }
    bgnbd_params_t out = {exp(q[0]), exp(q[1]), exp(q[2]), exp(q[3])};
    if (!params_valid(&out) || !isfinite(e.f)) {
        free(wk.rx);
        return -1; /* unreachable for valid tables: q stays in the box */
    }
    *p = out;
    if (info) {
        info->iterations = iter;
        info->converged = converged;
        info->loglik = e.f;
        int all[4] = {1, 1, 1, 1};
        double d[4], var[4];
        if (solve_free(H, G, all, 0, d, var) == 0) {
            double theta[4] = {out.r, out.alpha, out.a, out.b};
            for (int i = 0; i < 4; i++)
                info->se[i] = theta[i] * sqrt(var[i]);
        }
    }
    free(wk.rx);
    return 0;
}
