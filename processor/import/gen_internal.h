/* What the generator's files share (gen.c: the buffer, parameters and output;
 * gen_planted.c: the planted-churner process; gen_btyd.c: the BTYD processes; gen_sample.c:
 * the random draws). Not for use outside import/. */
#ifndef CS_GEN_INTERNAL_H
#define CS_GEN_INTERNAL_H

#include <stdint.h>

#include "gen.h"

#define DAY_MS  86400000LL
#define HOUR_MS 3600000LL
#define MIN_MS  60000LL

#define GEN_ITEMS      5000
#define GEN_CATEGORIES 12
#define GEN_CHANNELS   4

typedef struct gen_user_s {
    rng_t rng;
    int64_t join_ms;
    int64_t churn_ms;       /* INT64_MAX: never */
    int64_t fade_start_ms;  /* churners: activity fades from here to churn_ms */
    int64_t cancel_ms;      /* 0: no subscription_cancel */
    int64_t break_until_ms; /* natural break (holiday): activity nearly stops until then */
    int64_t refund_ms;      /* pending refund, 0: none */
    double refund_amount;
    float rate_per_day;
    float weekend_factor;
    float buy_propensity;
    float coupon_propensity;
    float amount_mu; /* log of the typical item price */
    uint32_t refund_item;
    uint8_t channel; /* preferred channel */
    uint8_t first_session_pending;
    /* BTYD processes; churn_ms is the true drop-out time there. */
    uint8_t trial_pending;    /* the first purchase: BG/NBD tosses no drop-out coin after it */
    int64_t next_purchase_ms; /* INT64_MAX: no more purchases in the period */
    double lambda_per_day, p, mu_per_day;
} gen_user_t;

/* One event before materialization: 40 bytes instead of ev_event_t's ~660. */
typedef struct gen_rec_s {
    int64_t t_ms;
    double amount;
    uint64_t seq; /* generation order: a total tie-break, so the sort is deterministic */
    uint32_t user;
    uint32_t item; /* 0 = none, else item index + 1 */
    uint8_t type;
    uint8_t category; /* 0 = none, else index + 1 */
    uint8_t channel;  /* 0 = none, else index + 1 */
} gen_rec_t;

struct gen_s {
    gen_params_t p;
    gen_user_t *users;
    double hour_cdf[24];
    gen_rec_t *buf;
    size_t n, cap, pos;
    int64_t emit_before_ms; /* records with t < this may be returned */
    int day;                /* next day to generate */
    uint64_t seq;
    int64_t emitted;
};

/* Zeroes *u and seeds its stream from the seed and the user index (so user u000042 behaves
 * the same whatever --users is). */
void gen_user_reset(const gen_t *g, int64_t idx, gen_user_t *u);
/* Appends one record to the day's buffer. -1 on out of memory. */
int gen_emit(gen_t *g, uint32_t user, ev_type_t type, int64_t t_ms, double amount, uint32_t item,
             int category, int channel);
/* An exponential draw with mean mean_ms; a uniform draw in [lo, hi). */
double gen_exp_ms(rng_t *r, double mean_ms);
double gen_uniform_in(rng_t *r, double lo, double hi);
/* An item (1..GEN_ITEMS, popular ones much more often), its category (1..GEN_CATEGORIES). */
uint32_t gen_pick_item(rng_t *r);
int gen_item_category(uint32_t item);
/* v rounded to cents. */
double gen_cents(double v);

/* The planted process: user idx's parameters; user uidx's events of the day at day_ms. */
void gen_planted_user_init(gen_t *g, int64_t idx, gen_user_t *u);
int gen_planted_user_day(gen_t *g, uint32_t uidx, int64_t day_ms);
/* The BTYD processes: the same, for purchases before day_end. */
void gen_btyd_user_init(gen_t *g, int64_t idx, gen_user_t *u);
int gen_btyd_user_day(gen_t *g, uint32_t uidx, int64_t day_end);

#endif
