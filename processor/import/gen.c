/* Synthetic event generator. Each user has its own xoshiro stream (seeded from the seed and
 * the user index, so user u000042 behaves the same whatever --users is), a gamma-distributed
 * visit rate, a weekend preference, and, for planted churners, a churn time preceded by a
 * few weeks of fading activity, more tickets and refunds. The BTYD processes (BG/NBD,
 * Pareto/NBD) instead give each user a Poisson purchase process with a gamma-distributed
 * rate and a hidden drop-out, nothing but purchase events. Days are generated one at a time
 * into a buffer of compact records, sorted, and handed out in time order; events that spill
 * past midnight wait in the buffer for the next day. */
#include "gen.h"
#include "outfile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS  86400000LL
#define HOUR_MS 3600000LL
#define MIN_MS  60000LL

#define GEN_ITEMS      5000
#define GEN_CATEGORIES 12
#define GEN_CHANNELS   4

/* Visit-rate model: sessions/day ~ Gamma(shape, mean/shape). Shape 1.3 gives a long tail of
 * heavy users and many light ones (some naturally idle for weeks). */
#define RATE_SHAPE        1.3
#define RATE_MEAN_PER_DAY 0.45
#define SESSION_MAX_MS    (60 * MIN_MS)
/* Sessions of a churner start at least this long before the churn time, so they end an hour
 * before it; the cancel falls in that last hour, after every other event of the user, and
 * "silent from churn_ms on" holds for every event type. */
#define CHURN_QUIET_MS (2 * HOUR_MS)

static const char *const gen_categories[GEN_CATEGORIES] = {
    "books",  "electronics", "fashion", "home",   "garden", "toys",
    "sports", "beauty",      "grocery", "health", "music",  "games",
};
static const char *const gen_channels[GEN_CHANNELS] = {"web", "ios", "android", "email"};

/* Relative share of session starts per UTC hour: quiet nights, an evening peak. */
static const double gen_hour_weights[24] = {
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 3.5, 3.5, 3.5,
    4.0, 3.5, 3.5, 3.5, 4.0, 4.5, 5.0, 6.0, 6.5, 6.0, 4.0, 2.0,
};

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

/* ---- samplers ---------------------------------------------------------------------- */

/* gen_gamma, gen_poisson, gen_beta: gen_sample.c. */

static double exp_ms(rng_t *r, double mean_ms)
{
    return -mean_ms * log(1.0 - rng_uniform(r));
}

static double uniform_in(rng_t *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_uniform(r);
}

/* ---- parameters -------------------------------------------------------------------- */

void gen_params_default(gen_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->users = 1000;
    p->days = 90;
    p->seed = 1;
    p->start_ms = 1704067200000LL; /* 2024-01-01T00:00:00Z */
    p->churn_rate = 0.3;
    p->process = GEN_PLANTED;
}

/* Published fits on the CDNOW sample (weeks x 7): BG/NBD by Fader, Hardie & Lee (2005,
 * "Counting your customers the easy way"), Pareto/NBD by Fader, Hardie & Lee (2005, "RFM
 * and CLV"). A parameter left at 0 takes its process's value. */
static void btyd_fill_defaults(gen_params_t *p)
{
    int bg = p->process == GEN_BGNBD;
    if (p->r == 0.0)
        p->r = bg ? 0.243 : 0.553;
    if (p->alpha_days == 0.0)
        p->alpha_days = bg ? 30.898 : 74.046;
    if (p->a == 0.0)
        p->a = 0.793;
    if (p->b == 0.0)
        p->b = 2.426;
    if (p->s == 0.0)
        p->s = 0.606;
    if (p->beta_days == 0.0)
        p->beta_days = 81.683;
    if (p->cohort_days == 0)
        p->cohort_days = p->days / 4 > 0 ? p->days / 4 : 1;
}

int gen_process_parse(const char *text, gen_process_t *out)
{
    static const struct {
        const char *name;
        gen_process_t process;
    } names[] = {{"planted", GEN_PLANTED}, {"bgnbd", GEN_BGNBD}, {"paretonbd", GEN_PARETONBD}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i].name) == 0) {
            *out = names[i].process;
            return 0;
        }
    }
    return -1;
}

int gen_parse_date(const char *text, int64_t *out_ms)
{
    /* A date only (no time of day), from 1970 on. */
    if (strlen(text) != 10 || ev_parse_iso_ms(text, out_ms) != 0 || *out_ms < 0)
        return -1;
    return 0;
}

/* ---- users ------------------------------------------------------------------------- */

static void user_init(gen_t *g, int64_t idx, gen_user_t *u)
{
    const gen_params_t *p = &g->p;
    int64_t end_ms = p->start_ms + (int64_t)p->days * DAY_MS;
    memset(u, 0, sizeof(*u));
    rng_seed(&u->rng, p->seed ^ ((uint64_t)(idx + 1) * 0xD1B54A32D192ED03ULL));
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
            int64_t fade = (int64_t)(uniform_in(r, 14.0, 35.0) * DAY_MS);
            u->fade_start_ms = u->churn_ms - fade;
            if (u->fade_start_ms < u->join_ms)
                u->fade_start_ms = u->join_ms;
            if (rng_uniform(r) < 0.5)
                u->cancel_ms = u->churn_ms - (int64_t)uniform_in(r, MIN_MS, 59 * MIN_MS);
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

int gen_user_info(const gen_t *g, int64_t idx, gen_user_info_t *out)
{
    if (idx < 0 || idx >= g->p.users)
        return -1;
    const gen_user_t *u = &g->users[idx];
    snprintf(out->user_id, sizeof(out->user_id), "u%06lld", (long long)(idx + 1));
    out->join_ms = u->join_ms;
    out->churn_ms = u->churn_ms == INT64_MAX ? -1 : u->churn_ms;
    out->sessions_per_day = u->rate_per_day;
    out->sends_cancel = u->cancel_ms != 0;
    out->lambda_per_day = u->lambda_per_day;
    out->p = g->p.process == GEN_BGNBD ? u->p : -1.0;
    out->mu_per_day = g->p.process == GEN_PARETONBD ? u->mu_per_day : -1.0;
    return 0;
}

/* ---- event buffer ------------------------------------------------------------------ */

static int emit(gen_t *g, uint32_t user, ev_type_t type, int64_t t_ms, double amount, uint32_t item,
                int category, int channel)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4096;
        gen_rec_t *nb = realloc(g->buf, cap * sizeof(*nb));
        if (!nb)
            return -1;
        g->buf = nb;
        g->cap = cap;
    }
    gen_rec_t *e = &g->buf[g->n++];
    e->t_ms = t_ms;
    e->amount = amount;
    e->seq = g->seq++;
    e->user = user;
    e->item = item;
    e->type = (uint8_t)type;
    e->category = (uint8_t)category;
    e->channel = (uint8_t)channel;
    return 0;
}

/* Popular items are much more popular: index = N * U^2.5. */
static uint32_t pick_item(rng_t *r)
{
    return (uint32_t)(GEN_ITEMS * pow(rng_uniform(r), 2.5)) % GEN_ITEMS + 1;
}

static int item_category(uint32_t item)
{
    return (int)((item * 2654435761u) % GEN_CATEGORIES) + 1;
}

static double cents(double v)
{
    return round(v * 100.0) / 100.0;
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
        t += 2000 + (int64_t)fmin(exp_ms(r, 40000.0), 300000.0);                                   \
        if (t >= t_end)                                                                            \
            return 0;                                                                              \
    } while (0)

    if (emit(g, uidx, EV_SESSION_START, t, 0.0, 0, 0, ch) < 0)
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
            if (emit(g, uidx, EV_SEARCH, t, 0.0, 0, cat, ch) < 0)
                return -1;
        }
        STEP();
        item = pick_item(r);
        if (emit(g, uidx, EV_PAGE_VIEW, t, 0.0, item, item_category(item), ch) < 0)
            return -1;
    }

    double active = 1.0 - fade;
    double p_ticket = 0.015 + 0.25 * fade;
    if (rng_uniform(r) < 0.35 * u->buy_propensity * (0.3 + 0.7 * active)) {
        uint32_t cart[2] = {item, 0};
        int n_cart = 1;
        STEP();
        if (emit(g, uidx, EV_ADD_TO_CART, t, 0.0, item, item_category(item), ch) < 0)
            return -1;
        if (rng_uniform(r) < 0.3) {
            cart[1] = pick_item(r);
            n_cart = 2;
            STEP();
            if (emit(g, uidx, EV_ADD_TO_CART, t, 0.0, cart[1], item_category(cart[1]), ch) < 0)
                return -1;
        }
        if (rng_uniform(r) < 0.15 + 0.2 * fade) {
            STEP();
            uint32_t gone = cart[--n_cart];
            if (emit(g, uidx, EV_REMOVE_FROM_CART, t, 0.0, gone, item_category(gone), ch) < 0)
                return -1;
        }
        if (n_cart > 0 && rng_uniform(r) < 0.6 * active) {
            double amount = 0.0;
            for (int i = 0; i < n_cart; i++)
                amount += exp(u->amount_mu + 0.6 * rng_normal(r)) * (1 + (int)rng_below(r, 3));
            amount = cents(amount);
            if (rng_uniform(r) < u->coupon_propensity) {
                STEP();
                double discount = cents(amount * (rng_uniform(r) < 0.5 ? 0.1 : 0.2));
                if (emit(g, uidx, EV_COUPON_REDEEM, t, discount, 0, 0, ch) < 0)
                    return -1;
                amount = cents(amount - discount);
            }
            STEP();
            if (emit(g, uidx, EV_PURCHASE, t, amount, cart[0], item_category(cart[0]), ch) < 0)
                return -1;
            if (u->refund_ms == 0 && rng_uniform(r) < 0.03 + 0.3 * fade) {
                int64_t when = t + (int64_t)(uniform_in(r, 1.0, 14.0) * DAY_MS);
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
        if (emit(g, uidx, EV_SUPPORT_TICKET, t, 0.0, 0, 0, ch) < 0)
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

static int gen_user_day(gen_t *g, uint32_t uidx, int64_t day_ms)
{
    gen_user_t *u = &g->users[uidx];
    rng_t *r = &u->rng;
    int64_t day_end = day_ms + DAY_MS;
    if (u->join_ms >= day_end || u->churn_ms <= day_ms)
        return 0;

    /* Natural breaks: anyone not fading may go quiet for one to four weeks. */
    int64_t mid = day_ms + DAY_MS / 2;
    if (u->break_until_ms <= day_ms && fade_at(u, mid) == 0.0 && rng_uniform(r) < 1.0 / 150.0)
        u->break_until_ms = day_ms + (int64_t)uniform_in(r, 7.0, 28.0) * DAY_MS;

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
        if (emit(g, uidx, EV_REFUND, u->refund_ms, u->refund_amount, it, item_category(it), 0) < 0)
            return -1;
        u->refund_ms = 0;
    }
    if (u->cancel_ms >= day_ms && u->cancel_ms < day_end) {
        if (emit(g, uidx, EV_SUBSCRIPTION_CANCEL, u->cancel_ms, 0.0, 0, 0, 0) < 0)
            return -1;
    }
    return 0;
}

/* ---- buy-till-you-die processes --------------------------------------------------- */

/* The purchase at u->next_purchase_ms (emitted when do_emit), then, BG/NBD and a repeat
 * purchase, the drop-out coin, then the next purchase time. It draws the same numbers
 * whether or not it emits, so btyd_user_init's dry run finds the drop-out the stream shows. */
static int btyd_purchase(gen_t *g, uint32_t uidx, gen_user_t *u, int do_emit)
{
    rng_t *r = &u->rng;
    int64_t t = u->next_purchase_ms;
    double amount = cents(exp(u->amount_mu + 0.4 * rng_normal(r)));
    if (amount < 0.01)
        amount = 0.01;
    uint32_t item = pick_item(r);
    if (do_emit &&
        emit(g, uidx, EV_PURCHASE, t, amount, item, item_category(item), 1 + u->channel) < 0)
        return -1;
    int trial = u->trial_pending;
    u->trial_pending = 0;
    if (g->p.process == GEN_BGNBD && !trial && rng_uniform(r) < u->p) {
        u->churn_ms = t + 1; /* gone right after this purchase */
        u->next_purchase_ms = INT64_MAX;
        return 0;
    }
    /* Pareto/NBD: purchases stop at the drop-out time; both stop at the end of the period. */
    int64_t limit = g->p.start_ms + (int64_t)g->p.days * DAY_MS;
    if (g->p.process == GEN_PARETONBD && u->churn_ms < limit)
        limit = u->churn_ms;
    double gap_ms =
        u->lambda_per_day > 0.0 ? exp_ms(r, (double)DAY_MS / u->lambda_per_day) : INFINITY;
    u->next_purchase_ms = gap_ms < (double)(limit - t) ? t + (int64_t)gap_ms : INT64_MAX;
    return 0;
}

static void btyd_user_init(gen_t *g, int64_t idx, gen_user_t *u)
{
    const gen_params_t *p = &g->p;
    int64_t end_ms = p->start_ms + (int64_t)p->days * DAY_MS;
    memset(u, 0, sizeof(*u));
    rng_seed(&u->rng, p->seed ^ ((uint64_t)(idx + 1) * 0xD1B54A32D192ED03ULL));
    rng_t *r = &u->rng;
    u->join_ms = p->start_ms + (int64_t)(rng_uniform(r) * (double)p->cohort_days * DAY_MS);
    u->lambda_per_day = gen_gamma(r, p->r, 1.0 / p->alpha_days);
    u->churn_ms = INT64_MAX;
    if (p->process == GEN_BGNBD) {
        u->p = gen_beta(r, p->a, p->b);
    } else {
        u->mu_per_day = gen_gamma(r, p->s, 1.0 / p->beta_days);
        /* Lifetime from the first purchase; the first purchase itself always happens. */
        double life_ms = u->mu_per_day > 0.0 ? exp_ms(r, (double)DAY_MS / u->mu_per_day) : INFINITY;
        if (life_ms < (double)(end_ms - u->join_ms))
            u->churn_ms = u->join_ms + 1 + (int64_t)life_ms;
    }
    u->amount_mu = (float)(log(20.0) + 0.5 * rng_normal(r)); /* median purchase ~20 */
    u->channel = (uint8_t)rng_below(r, GEN_CHANNELS);
    u->next_purchase_ms = u->join_ms;
    u->trial_pending = 1;
    if (p->process == GEN_BGNBD) {
        /* The drop-out time is known only by playing the purchases: a dry run on a copy
         * (the truth file is written before the first event). */
        gen_user_t dry = *u;
        while (dry.next_purchase_ms != INT64_MAX)
            btyd_purchase(g, 0, &dry, 0);
        u->churn_ms = dry.churn_ms;
    }
}

static int btyd_user_day(gen_t *g, uint32_t uidx, int64_t day_end)
{
    gen_user_t *u = &g->users[uidx];
    while (u->next_purchase_ms < day_end) {
        if (btyd_purchase(g, uidx, u, 1) < 0)
            return -1;
    }
    return 0;
}

static int rec_cmp(const void *a, const void *b)
{
    const gen_rec_t *x = a, *y = b;
    if (x->t_ms != y->t_ms)
        return x->t_ms < y->t_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Generates the next day into the buffer (after the spill kept from the previous one). */
static int gen_day(gen_t *g)
{
    if (g->pos > 0) {
        memmove(g->buf, g->buf + g->pos, (g->n - g->pos) * sizeof(*g->buf));
        g->n -= g->pos;
        g->pos = 0;
    }
    int64_t day_ms = g->p.start_ms + (int64_t)g->day * DAY_MS;
    int btyd = g->p.process != GEN_PLANTED;
    for (int64_t i = 0; i < g->p.users; i++) {
        if ((btyd ? btyd_user_day(g, (uint32_t)i, day_ms + DAY_MS)
                  : gen_user_day(g, (uint32_t)i, day_ms)) < 0)
            return -1;
    }
    qsort(g->buf, g->n, sizeof(*g->buf), rec_cmp);
    g->day++;
    /* After the last day everything left (sessions running past the end) goes out. */
    g->emit_before_ms = g->day == g->p.days ? INT64_MAX : day_ms + DAY_MS;
    return 0;
}

gen_t *gen_new(const gen_params_t *p, char *errstr, size_t errstr_size)
{
    if (p->users < 1 || p->users > 100000000) {
        snprintf(errstr, errstr_size, "--users: expected 1..100000000, got %lld",
                 (long long)p->users);
        return NULL;
    }
    if (p->days < 1 || p->days > 3650) {
        snprintf(errstr, errstr_size, "--days: expected 1..3650, got %d", p->days);
        return NULL;
    }
    if (!(p->churn_rate >= 0.0 && p->churn_rate <= 1.0)) {
        snprintf(errstr, errstr_size, "--churn-rate: expected 0..1, got %g", p->churn_rate);
        return NULL;
    }
    if (p->start_ms % DAY_MS != 0) {
        snprintf(errstr, errstr_size, "--start: must be a UTC midnight");
        return NULL;
    }
    gen_params_t full = *p;
    if (p->process != GEN_PLANTED) {
        btyd_fill_defaults(&full);
        const struct {
            const char *flag;
            double v;
        } pos[] = {{"--r", full.r}, {"--alpha", full.alpha_days}, {"--a", full.a}, {"--b", full.b},
                   {"--s", full.s}, {"--beta", full.beta_days}};
        for (size_t i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
            /* Bounds keep every draw finite: rates below 1e-6 or shapes above 1e6 are not
             * customers anyone models. */
            if (!(pos[i].v >= 1e-6 && pos[i].v <= 1e6)) {
                snprintf(errstr, errstr_size, "%s: expected a number in 1e-06..1e+06, got %g",
                         pos[i].flag, pos[i].v);
                return NULL;
            }
        }
        if (full.r / full.alpha_days > 100.0) {
            /* Events are buffered a day at a time: keep a day's purchases bounded. */
            snprintf(errstr, errstr_size,
                     "--r/--alpha: the mean purchase rate r/alpha is %g per day; at most 100",
                     full.r / full.alpha_days);
            return NULL;
        }
        if (full.cohort_days < 1 || full.cohort_days > full.days) {
            snprintf(errstr, errstr_size, "--cohort-days: expected 1..%d (--days), got %d",
                     full.days, full.cohort_days);
            return NULL;
        }
    }
    gen_t *g = calloc(1, sizeof(*g));
    if (g)
        g->users = calloc((size_t)p->users, sizeof(*g->users));
    if (!g || !g->users) {
        snprintf(errstr, errstr_size, "out of memory for %lld users", (long long)p->users);
        gen_destroy(g);
        return NULL;
    }
    g->p = full;
    double total = 0.0, acc = 0.0;
    for (int h = 0; h < 24; h++)
        total += gen_hour_weights[h];
    for (int h = 0; h < 24; h++) {
        acc += gen_hour_weights[h];
        g->hour_cdf[h] = acc / total;
    }
    for (int64_t i = 0; i < p->users; i++) {
        if (p->process == GEN_PLANTED)
            user_init(g, i, &g->users[i]);
        else
            btyd_user_init(g, i, &g->users[i]);
    }
    return g;
}

int gen_next(gen_t *g, ev_event_t *ev)
{
    while (g->pos >= g->n || g->buf[g->pos].t_ms >= g->emit_before_ms) {
        if (g->day >= g->p.days)
            return 0;
        if (gen_day(g) < 0)
            return -1;
    }
    const gen_rec_t *e = &g->buf[g->pos++];
    memset(ev, 0, sizeof(*ev));
    int n = snprintf(ev->user_id, sizeof(ev->user_id), "u%06lld", (long long)e->user + 1);
    ev->user_id_len = (uint16_t)n;
    ev->type = (ev_type_t)e->type;
    ev->event_time_ms = e->t_ms;
    ev->amount = e->amount;
    if (e->item) {
        ev->has_item_id = 1;
        snprintf(ev->item_id, sizeof(ev->item_id), "sku%05u", e->item - 1);
    }
    if (e->category) {
        ev->has_category = 1;
        snprintf(ev->category, sizeof(ev->category), "%s", gen_categories[e->category - 1]);
    }
    if (e->channel) {
        ev->has_channel = 1;
        snprintf(ev->channel, sizeof(ev->channel), "%s", gen_channels[e->channel - 1]);
    }
    g->emitted++;
    return 1;
}

void gen_progress(const gen_t *g, int *days_done, int64_t *events)
{
    if (days_done)
        *days_done = g->day;
    if (events)
        *events = g->emitted;
}

int gen_truth_write(const gen_t *g, const char *path, char *errstr, size_t errstr_size)
{
    of_t *of = of_open(path, errstr, errstr_size);
    if (!of)
        return -1;
    FILE *f = of_file(of);
    int btyd = g->p.process != GEN_PLANTED;
    fputs(btyd ? "user_id,churn_time_ms,first_purchase_ms,lambda_per_day,p,mu_per_day\n"
               : "user_id,churn_time_ms\n",
          f);
    for (int64_t i = 0; i < g->p.users; i++) {
        const gen_user_t *u = &g->users[i];
        if (btyd) {
            /* %.17g: the exact doubles the generator drew, for oracles that recompute. */
            char churn[24] = "", p_text[32] = "", mu_text[32] = "";
            if (u->churn_ms != INT64_MAX)
                snprintf(churn, sizeof(churn), "%lld", (long long)u->churn_ms);
            if (g->p.process == GEN_BGNBD)
                snprintf(p_text, sizeof(p_text), "%.17g", u->p);
            else
                snprintf(mu_text, sizeof(mu_text), "%.17g", u->mu_per_day);
            fprintf(f, "u%06lld,%s,%lld,%.17g,%s,%s\n", (long long)i + 1, churn,
                    (long long)u->join_ms, u->lambda_per_day, p_text, mu_text);
        } else if (u->churn_ms == INT64_MAX)
            fprintf(f, "u%06lld,\n", (long long)i + 1);
        else
            fprintf(f, "u%06lld,%lld\n", (long long)i + 1, (long long)u->churn_ms);
    }
    return of_commit(of, errstr, errstr_size);
}

void gen_destroy(gen_t *g)
{
    if (!g)
        return;
    free(g->users);
    free(g->buf);
    free(g);
}
