/* BG/CNBD-k (bgnbd.h): BG/NBD with Erlang-k gaps between activities.
 *
 * A customer with x repeat activities, the last at t_x, observed until T, with n = k x:
 *   L = C [ B(a, b+x)/B(a, b) sum_{j<k} s^j / j! G(n+j, T)
 *           + [x > 0] B(a+1, b+x-1)/B(a, b) G(n, t_x) ],
 *   G(m, tau) = Gamma(r+m)/Gamma(r) alpha^r / (alpha+tau)^(r+m),  s = T - t_x,
 * the first term alive at T (the k-th Erlang phase after t_x not reached: Erlang survival
 * sum_{j<k} e^(-lambda s) (lambda s)^j / j!), the second dropped out right after t_x; C (the
 * gaps' own density, prod g^(k-1) / ((k-1)!)^x) does not depend on the parameters and is
 * left out, so the log-likelihoods of different k are not comparable (k is chosen by
 * labels, experts.h). k = 1 is BG/NBD term for term. Factoring
 *   F = lnG(r+n) - lnG(r) + r ln alpha + lnB(a, b+x) - lnB(a, b)
 * out of both terms leaves, in logs,
 *   alive(tau) = -(r+n) ln(alpha+tau) + ln S(tau),  S = sum_{j<k} rho_j,
 *   rho_0 = 1, rho_j = rho_{j-1} (r+n+j-1) (tau - t_x) / (j (alpha+tau)),
 *   dropped = ln a - ln(b+x-1) - (r+n) ln(alpha+t_x),
 * so P(alive) and P(none in h) need no Gamma function at all:
 *   P(alive) = e^alive(T) / (e^alive(T) + e^dropped),
 *   P(none in (T, T+h]) = (e^alive(T+h) + e^dropped) / (e^alive(T) + e^dropped)
 * (alive and silent through T+h: the Erlang phase not reached by T+h, the same sum with
 * s = T + h - t_x and alpha + T + h). With k <= BGCNBD_K_MAX and n < 2^20 the ratios
 * stay below 1e50: plain doubles. */
#include "bgnbd_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int k_ok(int k)
{
    return k >= 1 && k <= BGCNBD_K_MAX;
}

/* S(tau) of the header: the Erlang phases' sum, rho_j by the recurrence (no logarithm). */
static double phase_sum(double r, double al, int k, double n, double t_x, double tau)
{
    double S = 1, rho = 1, s = tau - t_x;
    for (int j = 1; j < k && s > 0; j++) {
        rho *= (r + n + j - 1) * s / (j * (al + tau));
        S += rho;
    }
    return S;
}

/* ln of the alive term at tau (header). */
static double log_alive(double r, double al, int k, double n, double t_x, double tau)
{
    return -(r + n) * log(al + tau) + log(phase_sum(r, al, k, n, t_x, tau));
}

static double log_dropped(const bgnbd_params_t *p, double x, double n, double t_x)
{
    return log(p->a) - log(p->b + x - 1) - (p->r + n) * log(p->alpha + t_x);
}

static double logaddexp(double u, double v)
{
    if (u == -INFINITY)
        return v;
    if (v == -INFINITY)
        return u;
    return u > v ? u + log1p(exp(v - u)) : v + log1p(exp(u - v));
}

double bgcnbd_p_alive(const bgnbd_params_t *p, int k, double x, double t_x, double T)
{
    if (!k_ok(k))
        return NAN;
    bg_sanitize(&x, &t_x, &T);
    if (x == 0)
        return 1;
    double n = k * x;
    double la = log_alive(p->r, p->alpha, k, n, t_x, T);
    double d = log_dropped(p, x, n, t_x) - la;
    return d > 0 ? exp(-d) / (1 + exp(-d)) : 1 / (1 + exp(d));
}

/* Divided through by (alpha+T)^-(r+n), the header's ratio needs two powers and no Gamma:
 *   P(none) = (S(T+h) R + B) / (S(T) + B),  R = ((alpha+T)/(alpha+T+h))^(r+n),
 *   B = a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+n) (0 when x = 0),
 * B taken as e^lB, or the ratio divided by it when lB > 0 (B may overflow). Five
 * transcendental calls a score: every labelled row grades every shape (experts.h). */
double bgcnbd_p_none(const bgnbd_params_t *p, int k, double x, double t_x, double T, double h)
{
    if (!k_ok(k))
        return NAN;
    bg_sanitize(&x, &t_x, &T);
    if (!(h > 0))
        return 1;
    double r = p->r, al = p->alpha, n = k * x;
    double S = phase_sum(r, al, k, n, t_x, T), Sh = phase_sum(r, al, k, n, t_x, T + h);
    double R = exp(-(r + n) * log1p(h / (al + T)));
    double v;
    if (x == 0) {
        v = Sh * R / S;
    } else {
        double lB = log(p->a / (p->b + x - 1)) + (r + n) * log1p((T - t_x) / (al + t_x));
        if (lB > 0) {
            double e = exp(-lB);
            v = (Sh * R * e + 1) / (S * e + 1);
        } else {
            double B = exp(lB);
            v = (Sh * R + B) / (S + B);
        }
    }
    return v > 1 ? 1 : v;
}

double bgcnbd_loglik(const bgnbd_params_t *p, int k, double x, double t_x, double T)
{
    if (!k_ok(k))
        return NAN;
    bg_sanitize(&x, &t_x, &T);
    double r = p->r, a = p->a, b = p->b, n = k * x;
    double F = lgamma(r + n) - lgamma(r) + r * log(p->alpha) + lgamma(b + x) - lgamma(a + b + x) -
               lgamma(b) + lgamma(a + b);
    double la = log_alive(r, p->alpha, k, n, t_x, T);
    double lb = x > 0 ? log_dropped(p, x, n, t_x) : -INFINITY;
    return F + logaddexp(la, lb);
}

/* The table's log-likelihood and its gradient in the log-parameters q (k > 1; bgnbd_fit.c
 * differentiates the gradient for the Hessian). ln(alpha + t) and alpha / (alpha + t) once
 * per distinct time, ln a - ln(b + x - 1) once per distinct x, so a row costs the phase sum,
 * one ln S and the bracket's exp and log1p. *f is NaN when out of memory (the fit stops). */
void bgcnbd_eval(const bgnbd_table_t *t, int k, const double q[4], double *f, double g[4])
{
    double r = exp(q[0]), al = exp(q[1]), a = exp(q[2]), b = exp(q[3]);
    double *mem = malloc((2 * t->nt + t->nx + 1) * sizeof(double));
    if (!mem) {
        *f = NAN;
        return;
    }
    double *lt = mem, *ra = mem + t->nt, *lq = mem + 2 * t->nt;
    for (size_t i = 0; i < t->nt; i++) {
        lt[i] = log(al + t->tv[i]);
        ra[i] = al / (al + t->tv[i]);
    }
    double lg_r = lgamma(r), ps_r = bgnbd_digamma(r);
    double lg_b = lgamma(b), lg_ab = lgamma(a + b), ps_b = bgnbd_digamma(b),
           ps_ab = bgnbd_digamma(a + b);
    double F = 0, G[4] = {0};
    F += t->weight * r * q[1]; /* r ln alpha, every customer */
    G[0] += t->weight * r * q[1];
    G[1] += t->weight * r;
    /* Terms of x only (F above without r ln alpha), once per distinct x. */
    for (size_t i = 0; i < t->nx; i++) {
        double x = t->xv[i], w = t->xw[i], n = k * x;
        lq[i] = x > 0 ? q[2] - log(b + x - 1) : 0;
        if (x == 0)
            continue; /* lnB(a, b) - lnB(a, b) and lnG(r) - lnG(r) */
        double ps_abx = bgnbd_digamma(a + b + x);
        F += w * (lgamma(r + n) - lg_r + lgamma(b + x) - lgamma(a + b + x) - lg_b + lg_ab);
        G[0] += w * r * (bgnbd_digamma(r + n) - ps_r);
        G[2] += w * a * (ps_ab - ps_abx);
        G[3] += w * b * (bgnbd_digamma(b + x) - ps_abx - ps_b + ps_ab);
    }
    for (size_t i = 0; i < t->nrows; i++) {
        const bg_row_t *row = &t->rows[i];
        double x = row->x, w = row->w, n = k * x, LT = lt[row->iT], rT = ra[row->iT];
        /* alive: -(r+n) ln(alpha+T) + ln S, S = sum rho_j (header), with the sums that give
         * its derivatives: Sr = sum rho_j sum_{i<j} 1/(r+n+i), Sal = sum rho_j j */
        double S = 1, Sr = 0, Sal = 0, rho = 1, hsum = 0, s = row->T - row->t_x;
        for (int j = 1; j < k && s > 0; j++) {
            double m = r + n + j - 1;
            rho *= m * s / (j * (al + row->T));
            hsum += 1 / m;
            S += rho;
            Sr += rho * hsum;
            Sal += rho * j;
        }
        double u = -(r + n) * LT + (S > 1 ? log(S) : 0);
        double dr_u = r * (-LT + Sr / S), dal_u = -(r + n + Sal / S) * rT;
        if (x == 0) {
            F += w * u;
            G[0] += w * dr_u;
            G[1] += w * dal_u;
            continue;
        }
        double Lt = lt[row->itx];
        double v = lq[row->ix] - (r + n) * Lt; /* dropped right after t_x */
        double dr_v = -r * Lt, dal_v = -(r + n) * ra[row->itx], db_v = -b / (b + x - 1);
        double d = v - u, ed = exp(-fabs(d));
        double pi = d > 0 ? 1 / (1 + ed) : ed / (1 + ed), pu = 1 - pi; /* share of dropped */
        F += w * ((d > 0 ? v : u) + log1p(ed));
        G[0] += w * (pu * dr_u + pi * dr_v);
        G[1] += w * (pu * dal_u + pi * dal_v);
        G[2] += w * pi;
        G[3] += w * pi * db_v;
    }
    free(mem);
    *f = F;
    memcpy(g, G, sizeof(G));
}
