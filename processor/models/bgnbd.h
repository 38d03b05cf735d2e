/* BG/NBD buy-till-you-die model (Fader, Hardie & Lee 2005, "Counting your customers the easy
 * way"): per-customer log-likelihood, P(alive), P(no activity in a horizon), the conditional
 * expected number of repeat activities, and a maximum-likelihood fit of the four population
 * parameters on a collapsed table of customer summaries (x, t_x, T).
 *
 * Summaries are measured from the customer's first activity: x = repeat activities (here:
 * repeat active days), t_x = age at the last one, T = age at the tick, in one time unit
 * chosen by the caller (days in churnstream). The unit only rescales alpha: alpha_days =
 * 7 alpha_weeks for the same data, P(alive) and P(none in h) do not change once h is in
 * the same unit, and a customer's LL in days is the LL in weeks minus x ln 7.
 *
 * Pure numeric core: libm only, no globals except libm's lgamma (which writes signgam),
 * no logging. Everything is deterministic: the same calls in the same order give the same
 * bits. */
#ifndef CS_BGNBD_H
#define CS_BGNBD_H

#include <stddef.h>

/* Population parameters: purchase rate ~ Gamma(shape r, rate alpha), drop-out probability
 * after each repeat activity ~ Beta(a, b). All four must be positive and finite; alpha is
 * in the caller's time unit (days). */
typedef struct bgnbd_params_s {
    double r, alpha, a, b;
} bgnbd_params_t;

/* A generic cold start in days (r = 0.5, alpha = 30, a = 0.5, b = 5): the fitter converges
 * from it on sparse and frequent buyers alike; a previous fit is a better start. */
void bgnbd_params_default(bgnbd_params_t *p);

/* Per-customer functions. Preconditions: x = 0 or x >= 1 (a count of repeat activities;
 * non-integers >= 1 are accepted, the formulas are continuous), 0 <= t_x <= T, T >= 0, p
 * valid. Out-of-range inputs are clamped into that domain (x or T negative, NaN or infinite
 * -> 0, 0 < x < 1 -> 1, t_x into [0, T]) so no input gives NaN; t_x is ignored when x = 0. */

/* ln L_i (FHL eq. 6), with the bracket computed by log-sum-exp. */
double bgnbd_loglik(const bgnbd_params_t *p, double x, double t_x, double T);
/* P(alive at T | x, t_x, T) (eq. 11); 1 when x = 0 (drop-out only follows a repeat). */
double bgnbd_p_alive(const bgnbd_params_t *p, double x, double t_x, double T);
/* P(no activity in (T, T + h]) = 1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+h))^(r+x);
 * h >= 0 in the same unit (h <= 0 gives 1). */
double bgnbd_p_none(const bgnbd_params_t *p, double x, double t_x, double T, double h);
/* Conditional expected number of repeat activities in (T, T + h] (eq. 10). The Gauss
 * hypergeometric function is summed as a series after Euler's transformation, with the
 * 1 / (a - 1) factor cancelled analytically, so a = 1 and a near 1 or tiny are exact cases,
 * not 0/0. The series converges like z^n with z = h / (alpha + T + h); it is cut after
 * BGNBD_2F1_MAX_TERMS terms, which bounds the cost and only limits accuracy when z is
 * within ~1e-3 of 1 (h > 1000 (alpha + T)). Returns >= 0, 0 when h <= 0. */
double bgnbd_expected(const bgnbd_params_t *p, double x, double t_x, double T, double h);
#define BGNBD_2F1_MAX_TERMS 20000

/* Special functions used by the fitter (x > 0, NaN otherwise; exposed for the unit tests).
 * Recurrence up to x >= 10, then the asymptotic series to x^-14: within 1e-14 relative
 * (digamma) and 1e-13 (trigamma) of mpmath on [1e-8, 1e12]. */
double bgnbd_digamma(double x);
double bgnbd_trigamma(double x);

/* A collapsed table of customer summaries: identical (x, t_x, T) rows are merged with
 * their weights added (t_x is stored as 0 when x = 0). Rows keep the order of their first
 * insertion, and the fit sums them in that order, so the same sequence of adds gives the
 * same fit bit for bit. The table owns its memory; it grows by doubling up to
 * BGNBD_TABLE_MAX_ROWS distinct rows (with integer days there are at most as many rows as
 * users, usually far fewer); bgnbd_table_clear() keeps the capacity for the next tick. */
typedef struct bgnbd_table_s bgnbd_table_t;
#define BGNBD_TABLE_MAX_ROWS (1u << 24)

/* NULL on out of memory. Free with bgnbd_table_destroy(); destroy(NULL) is a no-op. */
bgnbd_table_t *bgnbd_table_new(void);
void bgnbd_table_destroy(bgnbd_table_t *t);
/* Empties the table, keeping its allocations. */
void bgnbd_table_clear(bgnbd_table_t *t);
/* Adds weight w (> 0, e.g. 1 per user) to row (x, t_x, T). Returns 0, or -1 (table
 * unchanged) on an invalid row (not finite, x < 0, 0 < x < 1, t_x outside [0, T], T <= 0,
 * w <= 0), out of memory or BGNBD_TABLE_MAX_ROWS distinct rows reached. */
int bgnbd_table_add(bgnbd_table_t *t, double x, double t_x, double T, double w);
/* Copies into out (cleared first) every stride-th row of t in its order, with its weight
 * multiplied by the stride, the stride the smallest that keeps at most max_rows rows (1: a
 * copy): a systematic sample for a fit whose cost must not grow with the population (the
 * shapes', experts.h). 0, or -1 out of memory. */
int bgnbd_table_thin(const bgnbd_table_t *t, size_t max_rows, bgnbd_table_t *out);
/* Distinct rows, and the total weight (users) behind them. */
size_t bgnbd_table_rows(const bgnbd_table_t *t);
double bgnbd_table_weight(const bgnbd_table_t *t);

typedef struct bgnbd_fit_info_s {
    int iterations; /* Newton steps taken (<= max_iter) */
    int converged;  /* 1: Newton decrement below tolerance (or projected gradient ~0) */
    double loglik;  /* total weighted log-likelihood at the returned parameters (no prior) */
    /* Standard errors of r, alpha, a, b: delta method (se = theta * sd(ln theta)) from the
     * inverse Hessian of the penalized objective in log-parameters. For a parameter the
     * data do not identify (a, b when drop-out is rare) the prior dominates and the SE is
     * of the order of the parameter itself or larger: read it as "not identified".
     * INFINITY if the Hessian is not positive definite (never NaN). */
    double se[4];
} bgnbd_fit_info_t;

/* Log-parameter box and prior of the fit. The objective is
 *   -sum_i w_i LL_i + BGNBD_PRIOR_PRECISION / 2 * sum_k (ln theta_k)^2,
 * i.e. MAP with an independent N(0, 31.6^2) prior on each log-parameter, over the box
 * ln theta_k in [-BGNBD_LOG_MAX, BGNBD_LOG_MAX] (theta in [6.1e-6, 1.6e5]). Why: when
 * drop-out is rare the likelihood is flat along a -> 0, b -> infinity, and an unguarded
 * fit wanders to the box corner (slowly, and to a different corner from tick to tick). The
 * prior only matters along such flat directions. Online Retail at 2011-09-08 (day-level
 * summaries): the unpenalized MLE runs to a = 6.1e-6 (the box), b = 4.4e4; this fit stops
 * at a = 0.0021, b = 324 and gives up 0.006 of the total LL (3e-7 relative); r and alpha
 * move by < 0.01%, P(alive) and P(none in 91 d) by at most 0.002 (one heavy buyer of
 * 3,357). An identified fit (completejourney2) moves by < 0.03% in every parameter. */
#define BGNBD_PRIOR_PRECISION 0.001
#define BGNBD_LOG_MAX         12.0

/* Fits the parameters by damped Newton on the log-parameters (analytic gradient and
 * Hessian, Levenberg-Marquardt damping, steps capped at 2 in log units, box by active
 * set), warm-started from *p (a previous fit, or bgnbd_params_default(); an invalid *p
 * starts from the default). Stops after max_iter Newton steps (>= 1; each costs at most
 * 1 + 20 passes over the rows, usually 1), so the cost is bounded. Deterministic.
 * Returns 0 and overwrites *p (always finite and inside the box, even when not converged);
 * -1 when the table is empty or degenerate (no row with x > 0: repeat behaviour
 * unidentified) or on out of memory, with *p left unchanged. info may be NULL. */
int bgnbd_fit(const bgnbd_table_t *t, bgnbd_params_t *p, int max_iter, bgnbd_fit_info_t *info);

/* Total weighted log-likelihood of the table at p (no prior). NaN-free for valid p. */
double bgnbd_table_loglik(const bgnbd_table_t *t, const bgnbd_params_t *p);

/* BG/CNBD-k (Platzer & Reutterer 2016, "Ticking away the moments"; Reutterer, Platzer &
 * Schroeder 2021): BG/NBD with Erlang-k gaps between activities while alive (k = 1: BG/NBD),
 * the same four parameters (lambda the Erlang rate: a gap's mean is k / lambda), the same
 * summaries and preconditions; derivations in bgcnbd.c. Regular buyers (k > 1) are seldom
 * silent long while alive, so a long silence says more about drop-out. The log-likelihood
 * leaves out the gaps' own density (it needs every gap, not the summary, and does not
 * depend on the parameters), so it compares parameters for one k, never k with k: k is
 * chosen by the labels (experts.h). NaN for k outside 1..BGCNBD_K_MAX. */
#define BGCNBD_K_MAX 8
double bgcnbd_loglik(const bgnbd_params_t *p, int k, double x, double t_x, double T);
double bgcnbd_p_alive(const bgnbd_params_t *p, int k, double x, double t_x, double T);
/* P(no activity in (T, T + h]): dropped, or alive with the next Erlang phase beyond T + h. */
double bgcnbd_p_none(const bgnbd_params_t *p, int k, double x, double t_x, double T, double h);
/* bgnbd_fit for shape k (same prior, box, warm start and bounded cost). For k > 1 the Hessian
 * is forward differences of the analytic gradient (four passes over the rows), computed at
 * the start and kept for chord steps of one pass each (again at the end when info is
 * asked for, for the standard errors). -1 also for k outside 1..BGCNBD_K_MAX. k = 1 is
 * bgnbd_fit. */
int bgcnbd_fit(const bgnbd_table_t *t, int k, bgnbd_params_t *p, int max_iter,
               bgnbd_fit_info_t *info);

#endif
