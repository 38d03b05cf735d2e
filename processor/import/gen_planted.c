/* The planted-churner process of the generator: users with a gamma-distributed visit rate,
 * a weekend preference and natural breaks; sessions with a browse/search/cart/purchase
 * funnel; planted churners whose activity fades over a few weeks before they go silent
 * (some cancel first). Each user draws from its own stream (gen_user_t.rng). */
#include "gen_internal.h"

#include <math.h>
#include <string.h>

/* Visit-rate model: sessions/day ~ Gamma(shape, mean/shape). Shape 1.3 gives a long tail of
 * heavy users and many light ones (some naturally idle for weeks). */
#define RATE_SHAPE        1.3
#define RATE_MEAN_PER_DAY 0.45
#define SESSION_MAX_MS    (60 * MIN_MS)
/* Sessions of a churner start at least this long before the churn time, so they end an hour
 * before it; the cancel falls in that last hour, after every other event of the user, and
 * "silent from churn_ms on" holds for every event type. */
#define CHURN_QUIET_MS (2 * HOUR_MS)

void gen_planted_user_init(gen_t *g, int64_t idx, gen_user_t *u)
{
    const gen_params_t *p = &g->p;
    int64_t end_ms = p->start_ms + (int64_t)p->days * DAY_MS;
    gen_user_reset(g, idx, u);
    rng_t *r = &u->rng;

    int churner = rng_uniform(r) < p->churn_rate;
    u->rate_per_day = (float)gen_gamma(r, RATE_SHAPE, RATE_MEAN_PER_DAY / RATE_SHAPE);
    /* Most users visit more at weekends, a minority less: exp(N(0.1, 0.35)). */
    u->weekend_factor = (float)exp(0.1 + 0.35 * rng_normal(r));
    u->buy_propensity = (float)gen_gamma(r, 4.0, 0.25); /* mean 1 */
    u->coupon_propensity = (float)(rng_uniform(r) < 0.3 ? 0.35 : 0.05);
    u->amount_mu = (float)(2.8 + 0.5 * rng_normal(r)); /* median item ~16 currency units */
    u->channel = (uint8_t)rng_below(r, GEN_CHANNELS);
    u->churn_ms = INT64_MAX;

    /* Half the users exist before the window opens; the rest join over its first 80%
     * (churners early enough to leave room for a tenure and a fade). */
    int64_t span_ms = (int64_t)p->days * DAY_MS;
    if (rng_uniform(r) < 0.5) {
        u->join_ms = p->start_ms;
    } else {
        int64_t window = churner ? span_ms - 35 * DAY_MS : span_ms * 4 / 5;
        if (window < DAY_MS)
            window = span_ms / 2 > 0 ? span_ms / 2 : 1;
        u->join_ms = p->start_ms + (int64_t)(rng_uniform(r) * (double)window);
        u->first_session_pending = 1;
    }

    if (churner) {
        int64_t lo = u->join_ms + 14 * DAY_MS, hi = end_ms - DAY_MS;
        if (lo >= hi)
            lo = u->join_ms + (end_ms - u->join_ms) / 2;
        if (lo + HOUR_MS < hi) {
            u->churn_ms = lo + (int64_t)(rng_uniform(r) * (double)(hi - lo));
            int64_t fade = (int64_t)(gen_uniform_in(r, 14.0, 35.0) * DAY_MS);
            u->fade_start_ms = u->churn_ms - fade;
            if (u->fade_start_ms < u->join_ms)
                u->fade_start_ms = u->join_ms;
            if (rng_uniform(r) < 0.5)
                u->cancel_ms = u->churn_ms - (int64_t)gen_uniform_in(r, MIN_MS, 59 * MIN_MS);
            if (u->cancel_ms != 0 && u->cancel_ms < u->join_ms)
                u->cancel_ms = 0;
            if (u->join_ms > u->churn_ms - CHURN_QUIET_MS) {
                /* No room for even the first session: the user never shows up, which the
                 * truth file still records as a churner. */
                u->first_session_pending = 0;
            }
        }
    }
}

/* Fade progress in [0, 1] at t: 0 before the fade, 1 at the churn time. */
static double fade_at(const gen_user_t *u, int64_t t_ms)
{
    if (u->churn_ms == INT64_MAX || t_ms <= u->fade_start_ms)
        return 0.0;
    double span = (double)(u->churn_ms - u->fade_start_ms);
    double f = span > 0 ? (double)(t_ms - u->fade_start_ms) / span : 1.0;
    return f > 1.0 ? 1.0 : f;
}

/* One visit: session_start, page views, maybe a search, the cart, a purchase (with a coupon
 * sometimes), a support ticket. Events stay within SESSION_MAX_MS of t0. */
static int gen_session(gen_t *g, uint32_t uidx, int64_t t0)
{
    gen_user_t *u = &g->users[uidx];
    rng_t *r = &u->rng;
    double fade = fade_at(u, t0);
    int ch = 1 + (rng_uniform(r) < 0.7 ? u->channel : (int)rng_below(r, GEN_CHANNELS));
    int64_t t = t0, t_end = t0 + SESSION_MAX_MS;
#define STEP()                                                                                     \
    do {                                                                                           \
        t += 2000 + (int64_t)fmin(gen_exp_ms(r, 40000.0), 300000.0);                               \
        if (t >= t_end)                                                                            \
            return 0;                                                                              \
    } while (0)

    if (gen_emit(g, uidx, EV_SESSION_START, t, 0.0, 0, 0, ch) < 0)
        return -1;
    int views = 1;
    while (views < 15 && rng_uniform(r) < 0.7)
        views++;
    int search_at = rng_uniform(r) < 0.5 ? (int)rng_below(r, (uint64_t)views) : -1;
    uint32_t item = 0;
    for (int v = 0; v < views; v++) {
        if (v == search_at) {
            STEP();
            int cat = 1 + (int)rng_below(r, GEN_CATEGORIES);
            if (gen_emit(g, uidx, EV_SEARCH, t, 0.0, 0, cat, ch) < 0)
                return -1;
        }
        STEP();
        item = gen_pick_item(r);
        if (gen_emit(g, uidx, EV_PAGE_VIEW, t, 0.0, item, gen_item_category(item), ch) < 0)
            return -1;
    }

    double active = 1.0 - fade;
    double p_ticket = 0.015 + 0.25 * fade;
    if (rng_uniform(r) < 0.35 * u->buy_propensity * (0.3 + 0.7 * active)) {
        uint32_t cart[2] = {item, 0};
        int n_cart = 1;
        STEP();
        if (gen_emit(g, uidx, EV_ADD_TO_CART, t, 0.0, item, gen_item_category(item), ch) < 0)
            return -1;
        if (rng_uniform(r) < 0.3) {
            cart[1] = gen_pick_item(r);
            n_cart = 2;
            STEP();
            if (gen_emit(g, uidx, EV_ADD_TO_CART, t, 0.0, cart[1], gen_item_category(cart[1]), ch) <
                0)
                return -1;
        }
        if (rng_uniform(r) < 0.15 + 0.2 * fade) {
            STEP();
            uint32_t gone = cart[--n_cart];
            if (gen_emit(g, uidx, EV_REMOVE_FROM_CART, t, 0.0, gone, gen_item_category(gone), ch) <
                0)
                return -1;
        }
        if (n_cart > 0 && rng_uniform(r) < 0.6 * active) {
            double amount = 0.0;
            for (int i = 0; i < n_cart; i++)
                amount += exp(u->amount_mu + 0.6 * rng_normal(r)) * (1 + (int)rng_below(r, 3));
            amount = gen_cents(amount);
            if (rng_uniform(r) < u->coupon_propensity) {
                STEP();
                double discount = gen_cents(amount * (rng_uniform(r) < 0.5 ? 0.1 : 0.2));
                if (gen_emit(g, uidx, EV_COUPON_REDEEM, t, discount, 0, 0, ch) < 0)
                    return -1;
                amount = gen_cents(amount - discount);
            }
            STEP();
            if (gen_emit(g, uidx, EV_PURCHASE, t, amount, cart[0], gen_item_category(cart[0]), ch) <
                0)
                return -1;
            if (u->refund_ms == 0 && rng_uniform(r) < 0.03 + 0.3 * fade) {
                int64_t when = t + (int64_t)(gen_uniform_in(r, 1.0, 14.0) * DAY_MS);
                if (u->churn_ms != INT64_MAX && when >= u->churn_ms - CHURN_QUIET_MS)
                    when = u->churn_ms - CHURN_QUIET_MS; /* refunds too stop before churn */
                if (when <= t)
                    when = t + 1000;
                u->refund_ms = when;
                u->refund_amount = amount;
                u->refund_item = cart[0];
            }
        }
    }
    if (rng_uniform(r) < p_ticket) {
        STEP();
        if (gen_emit(g, uidx, EV_SUPPORT_TICKET, t, 0.0, 0, 0, ch) < 0)
            return -1;
    }
#undef STEP
    return 0;
}

static int64_t session_time_in_day(gen_t *g, rng_t *r, int64_t day_ms)
{
    double x = rng_uniform(r);
    int h = 0;
    while (h < 23 && x >= g->hour_cdf[h])
        h++;
    return day_ms + h * HOUR_MS + (int64_t)(rng_uniform(r) * (double)HOUR_MS);
}

/* 1970-01-01 was a Thursday; returns 1 for Saturday and Sunday (UTC). */
static int is_weekend(int64_t day_ms)
{
    int64_t dow = ((day_ms / DAY_MS) % 7 + 4) % 7; /* 0 = Sunday */
    return dow == 0 || dow == 6;
}

int gen_planted_user_day(gen_t *g, uint32_t uidx, int64_t day_ms)
{
    gen_user_t *u = &g->users[uidx];
    rng_t *r = &u->rng;
    int64_t day_end = day_ms + DAY_MS;
    if (u->join_ms >= day_end || u->churn_ms <= day_ms)
        return 0;

    /* Natural breaks: anyone not fading may go quiet for one to four weeks. */
    int64_t mid = day_ms + DAY_MS / 2;
    if (u->break_until_ms <= day_ms && fade_at(u, mid) == 0.0 && rng_uniform(r) < 1.0 / 150.0)
        u->break_until_ms = day_ms + (int64_t)gen_uniform_in(r, 7.0, 28.0) * DAY_MS;

    double rate = u->rate_per_day;
    if (is_weekend(day_ms))
        rate *= u->weekend_factor;
    if (u->break_until_ms > day_ms)
        rate *= 0.05;
    rate *= pow(1.0 - fade_at(u, mid), 1.5);
    int64_t latest_start = u->churn_ms == INT64_MAX ? INT64_MAX : u->churn_ms - CHURN_QUIET_MS;

    if (u->first_session_pending && u->join_ms < day_end) {
        u->first_session_pending = 0;
        if (u->join_ms < latest_start && gen_session(g, uidx, u->join_ms) < 0)
            return -1;
    }
    int sessions = gen_poisson(r, rate);
    for (int s = 0; s < sessions; s++) {
        int64_t t0 = session_time_in_day(g, r, day_ms);
        if (t0 < u->join_ms)
            t0 = u->join_ms + (int64_t)(rng_uniform(r) * (double)(day_end - u->join_ms));
        if (t0 >= latest_start)
            continue;
        if (gen_session(g, uidx, t0) < 0)
            return -1;
    }
    if (u->refund_ms && u->refund_ms < day_end) {
        uint32_t it = u->refund_item;
        if (gen_emit(g, uidx, EV_REFUND, u->refund_ms, u->refund_amount, it, gen_item_category(it),
                     0) < 0)
            return -1;
        u->refund_ms = 0;
    }
    if (u->cancel_ms >= day_ms && u->cancel_ms < day_end) {
        if (gen_emit(g, uidx, EV_SUBSCRIPTION_CANCEL, u->cancel_ms, 0.0, 0, 0, 0) < 0)
            return -1;
    }
    return 0;
}
