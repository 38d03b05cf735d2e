/* Synthetic user-behaviour events with planted churners: a deterministic (by seed) stream
 * in non-decreasing event-time order, generated day by day, with its ground truth
 * (user_id, churn_time_ms). Memory is O(users + one day of events). */
#ifndef CS_GEN_H
#define CS_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "rng.h"

typedef struct gen_params_s {
    int64_t users; /* 1 .. 100,000,000 */
    int days;      /* 1 .. 3650 */
    uint64_t seed;
    int64_t start_ms;  /* first day, a UTC midnight; default 2024-01-01 */
    double churn_rate; /* fraction of users planted as churners, 0..1; default 0.3 */
} gen_params_t;

/* Defaults: 1000 users, 90 days, seed 1, start 2024-01-01, churn rate 0.3. */
void gen_params_default(gen_params_t *p);

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
    int64_t join_ms;
    int64_t churn_ms;        /* -1 when the user does not churn */
    double sessions_per_day; /* baseline visit rate, before weekly/fade factors */
    int sends_cancel;        /* churner who sends subscription_cancel before leaving */
} gen_user_info_t;

/* Returns 0, or -1 when idx is out of range. Available right after gen_new(). */
int gen_user_info(const gen_t *g, int64_t idx, gen_user_info_t *out);

/* Writes the ground truth CSV: header "user_id,churn_time_ms", one line per user in id order,
 * churn_time_ms empty for users who do not churn. A churner emits no event at or after
 * churn_time_ms. Returns 0, or -1 with errstr set. */
int gen_truth_write(const gen_t *g, const char *path, char *errstr, size_t errstr_size);

/* Frees the generator; NULL is a no-op. */
void gen_destroy(gen_t *g);

/* Samplers (exposed for tests). Gamma by Marsaglia-Tsang (shape > 0, scale > 0); Poisson by
 * Knuth's product method for small means, a rounded normal beyond 30. */
double gen_gamma(rng_t *r, double shape, double scale);
int gen_poisson(rng_t *r, double mean);

#endif
