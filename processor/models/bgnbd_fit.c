/* BG/NBD maximum likelihood (bgnbd.h): the log-likelihood with its analytic gradient and
 * Hessian in log-parameters over the collapsed table, and the damped-Newton fit within the
 * box |ln theta| <= BGNBD_LOG_MAX, with a weak prior on the log-parameters. */
#include "bgnbd_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Log-likelihood with gradient and Hessian in q = (ln r, ln alpha, ln a, ln b). */
typedef struct bg_eval_s {
    double f, g[4], h[4][4];
} bg_eval_t;

typedef struct bg_work_s {
    double *rx, *lnab, *qb; /* per distinct x: r + x, ln a - ln(b+x-1), b/(b+x-1) */
    double *lt, *rho;       /* per distinct time: ln(alpha + t), alpha/(alpha + t) */
    int k;                  /* Erlang shape: 1 BG/NBD, > 1 BG/CNBD-k (bgcnbd.c) */
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
/* Chord steps (k > 1) before the Hessian is computed again. */
#define FIT_CHORD_STEPS 4
/* Step of the forward differences of the BG/CNBD-k gradient (log-parameters). */
#define FIT_FD_STEP 1e-6

/* The table's LL at q with its gradient, and its Hessian when need_h: analytic for k = 1,
 * forward differences of bgcnbd_eval's analytic gradient for k > 1 (four more passes, so
 * for k > 1 the fit computes it once, at the start, and takes chord steps with it: warm
 * starts converge in 2-3 steps, at one pass each). */
static void evaluate(const bgnbd_table_t *t, const double q[4], bg_work_t *wk, bg_eval_t *e,
                     int need_h)
{
    if (wk->k == 1) {
        eval_ll(t, q, wk, e);
        return;
    }
    bgcnbd_eval(t, wk->k, q, &e->f, e->g);
    if (!need_h)
        return;
    for (int i = 0; i < 4; i++) {
        double qi[4] = {q[0], q[1], q[2], q[3]}, fi, gi[4];
        qi[i] += FIT_FD_STEP;
        bgcnbd_eval(t, wk->k, qi, &fi, gi);
        for (int j = 0; j < 4; j++)
            e->h[i][j] = (gi[j] - e->g[j]) / FIT_FD_STEP;
    }
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            e->h[i][j] = e->h[j][i] = 0.5 * (e->h[i][j] + e->h[j][i]);
}

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

/* One Newton step from q, damped (mu) until the objective F decreases enough (Armijo) within
 * FIT_MAX_TRIALS solves; on success q, e, F, G, H move to the new point. Returns 1 when a
 * step was accepted, 0 when none decreases F. */
static int damped_step(const bgnbd_table_t *t, bg_work_t *wk, double q[4], double G[4],
                       double H[4][4], double *F, const int free_[4], double scale, double dec,
                       double *mu, bg_eval_t *e)
{
    bg_eval_t en;
    double d[4];
    if (solve_free(H, G, free_, 0, d, NULL) != 0)
        d[0] = d[1] = d[2] = d[3] = 0;
    for (int trial = 0; trial < FIT_MAX_TRIALS; trial++) {
        if (trial > 0 || *mu > 0 || !isfinite(dec)) {
            /* Damp until positive definite; mu grows 8x a round, so 40 rounds cover any
             * finite Hessian. A non-finite one (unreachable inside the box) ends the fit
             * here rather than looping. */
            int tries = 0;
            while (solve_free(H, G, free_, *mu, d, NULL) != 0 && ++tries < 40)
                *mu = *mu > 0 ? *mu * 8 : 1e-6 * scale;
            if (tries >= 40)
                return 0;
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
        evaluate(t, qn, wk, &en, 0);
        double Fn = objective(&en, qn, NULL, NULL);
        if (isfinite(Fn) && Fn < *F && Fn <= *F + 1e-4 * slope) {
            memcpy(q, qn, 4 * sizeof(*q));
            if (wk->k > 1) /* chord steps: the Hessian of the start point is kept */
                memcpy(en.h, e->h, sizeof(en.h));
            *e = en;
            *F = objective(e, q, G, H);
            *mu = *mu > 1e-9 * scale ? *mu / 8 : 0;
            return 1;
        }
        *mu = *mu > 0 ? *mu * 8 : 1e-4 * scale;
    }
    return 0;
}

static int fit_k(const bgnbd_table_t *t, int k, bgnbd_params_t *p, int max_iter,
                 bgnbd_fit_info_t *info)
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
    wk.k = k;

    bgnbd_params_t start = *p;
    if (!params_valid(&start))
        bgnbd_params_default(&start);
    double q[4] = {clamp_log(log(start.r)), clamp_log(log(start.alpha)), clamp_log(log(start.a)),
                   clamp_log(log(start.b))};
    bg_eval_t e;
    evaluate(t, q, &wk, &e, 1);
    double G[4], H[4][4];
    double F = objective(&e, q, G, H);
    int iter = 0, converged = 0, stale = 0; /* stale: chord steps since the Hessian (k > 1) */
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
        int accepted = damped_step(t, &wk, q, G, H, &F, free_, scale, dec, &mu, &e);
        if (!accepted && stale > 0) { /* a chord step found no decrease: a fresh Hessian */
            evaluate(t, q, &wk, &e, 1);
            F = objective(&e, q, G, H);
            stale = 0;
            continue;
        }
        if (!accepted) {
            /* No decrease possible: at the optimum to within rounding, or stuck. */
            converged = dec < 1e-7 * (1 + fabs(F));
            break;
        }
        iter++;
        if (k > 1 && ++stale >= FIT_CHORD_STEPS) {
            evaluate(t, q, &wk, &e, 1);
            F = objective(&e, q, G, H);
            stale = 0;
        }
    }
    bgnbd_params_t out = {exp(q[0]), exp(q[1]), exp(q[2]), exp(q[3])};
    if (!params_valid(&out) || !isfinite(e.f)) {
        free(wk.rx);
        return -1; /* unreachable for valid tables: q stays in the box */
    }
    *p = out;
    if (info) {
        if (k > 1) { /* the standard errors need the Hessian at the fit, not the start's */
            evaluate(t, q, &wk, &e, 1);
            objective(&e, q, G, H);
        }
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

int bgnbd_fit(const bgnbd_table_t *t, bgnbd_params_t *p, int max_iter, bgnbd_fit_info_t *info)
{
    return fit_k(t, 1, p, max_iter, info);
}

int bgcnbd_fit(const bgnbd_table_t *t, int k, bgnbd_params_t *p, int max_iter,
               bgnbd_fit_info_t *info)
{
    if (k < 1 || k > BGCNBD_K_MAX)
        return -1;
    return fit_k(t, k, p, max_iter, info);
}
