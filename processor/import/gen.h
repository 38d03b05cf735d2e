/* Synthetic user-behaviour events: a deterministic (by seed) stream in non-decreasing
 * event-time order, generated day by day, with its ground truth. Either planted churners
 * (sessions, funnels, fading activity) or a buy-till-you-die process (BG/NBD, Pareto/NBD:
 * purchases only, with each user's true parameters). Memory is O(users + one day of events). */
#ifndef CS_GEN_H
#define CS_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "rng.h"

typedef enum gen_process_e {
    GEN_PLANTED = 0, /* sessions and funnels, planted churners who fade before leaving */
    GEN_BGNBD,       /* Fader, Hardie & Lee 2005: drop out after a repeat purchase */
    GEN_PARETONBD,   /* Schmittlein, Morrison & Colombo 1987: exponential lifetime */
} gen_process_t;

typedef struct gen_params_s {
    int64_t users; /* 1 .. 100,000,000 */
    int days;      /* 1 .. 3650 */
    uint64_t seed;
    int64_t start_ms;  /* first day, a UTC midnight; default 2024-01-01 */
    double churn_rate; /* planted: fraction of users planted as churners, 0..1; default 0.3 */
    gen_process_t process;
    /* BTYD processes, time unit days. Purchase rate lambda ~ Gamma(shape r, rate alpha);
     * BG/NBD: drop-out probability p ~ Beta(a, b) after each repeat purchase; Pareto/NBD:
     * lifetime ~ Exp(mu), mu ~ Gamma(shape s, rate beta). 0 = the published CDNOW fit of
     * the process, in days (BG/NBD r 0.243, alpha 30.898, a 0.793, b 2.426; Pareto/NBD
     * r 0.553, alpha 74.046, s 0.606, beta 81.683). */
    double r, alpha_days, a, b, s, beta_days;
    /* BTYD: first purchases are uniform over [start, start + cohort_days); 0 = a quarter
     * of the period (at least one day). */
    int cohort_days;
} gen_params_t;

/* Defaults: 1000 users, 90 days, seed 1, start 2024-01-01, planted process with churn rate
 * 0.3; BTYD parameters and cohort 0 (see above). */
void gen_params_default(gen_params_t *p);

/* Parses "planted", "bgnbd" or "paretonbd". Returns 0, or -1 when unknown. */
int gen_process_parse(const char *text, gen_process_t *out);

/* Parses "YYYY-MM-DD" as a UTC midnight. Returns 0, or -1 when malformed or impossible. */
int gen_parse_date(const char *text, int64_t *out_ms);

typedef struct gen_s gen_t;

/* Creates a generator; checks the parameters (errstr names the bad one). The caller frees it
 * with gen_destroy(). */
gen_t *gen_new(const gen_params_t *p, char *errstr, size_t errstr_size);

/* Writes the next event into *ev (fully overwritten) and returns 1, or returns 0 when the
 * last day is done. Returns -1 only on out of memory. */
int gen_next(gen_t *g, ev_event_t *ev);

/* Days generated so far (0..days) and events returned by gen_next, for progress output. */
void gen_progress(const gen_t *g, int *days_done, int64_t *events);

/* What was planted for one user (index 0..users-1): for tests and reports. */
typedef struct gen_user_info_s {
    char user_id[32];
    int64_t join_ms;         /* BTYD: the first purchase */
    int64_t churn_ms;        /* -1 when the user does not churn within the period; BTYD: the
                              * true drop-out time (alive at t iff t < churn_ms) */
    double sessions_per_day; /* planted: baseline visit rate, before weekly/fade factors */
    int sends_cancel;        /* planted: churner who sends subscription_cancel before leaving */
    double lambda_per_day;   /* BTYD: purchase rate while alive; else 0 */
    double p;                /* BG/NBD: drop-out probability after a repeat purchase; else -1 */
    double mu_per_day;       /* Pareto/NBD: drop-out rate; else -1 */
} gen_user_info_t;

/* Returns 0, or -1 when idx is out of range. Available right after gen_new(). */
int gen_user_info(const gen_t *g, int64_t idx, gen_user_info_t *out);

/* Writes the ground truth CSV, one line per user in id order. Planted: header
 * "user_id,churn_time_ms", churn_time_ms empty for users who do not churn. BTYD: header
 * "user_id,churn_time_ms,first_purchase_ms,lambda_per_day,p,mu_per_day" where churn_time_ms
 * is the true drop-out time (empty: alive at the end of the period; BG/NBD: 1 ms after the
 * purchase the user dropped out after), p is empty for Pareto/NBD and mu_per_day for
 * BG/NBD. No event is at or after churn_time_ms. Returns 0, or -1 with errstr set. */
int gen_truth_write(const gen_t *g, const char *path, char *errstr, size_t errstr_size);

/* Frees the generator; NULL is a no-op. */
void gen_destroy(gen_t *g);

/* Samplers (exposed for tests). Gamma by Marsaglia-Tsang (shape > 0, scale > 0); Poisson by
 * Knuth's product method for small means, a rounded normal beyond 30; Beta from two gammas
 * drawn in logs, so shapes far below 1 (Online Retail's a = 0.0005) give tiny p, not 0/0. */
double gen_gamma(rng_t *r, double shape, double scale);
double gen_beta(rng_t *r, double a, double b);
int gen_poisson(rng_t *r, double mean);

#endif
