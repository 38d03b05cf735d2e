/* Synthetic event generator. Each user has its own xoshiro stream (seeded from the seed and
 * the user index, so user u000042 behaves the same whatever --users is), a gamma-distributed
 * visit rate, a weekend preference, and, for planted churners, a churn time preceded by a
 * few weeks of fading activity, more tickets and refunds. The BTYD processes (BG/NBD,
 * Pareto/NBD) instead give each user a Poisson purchase process with a gamma-distributed
 * rate and a hidden drop-out, nothing but purchase events. Days are generated one at a time
 * into a buffer of compact records, sorted, and handed out in time order; events that spill
 * past midnight wait in the buffer for the next day. */
#include "gen.h"
#include "gen_internal.h"
#include "grow.h"
#include "outfile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- samplers ---------------------------------------------------------------------- */

/* gen_gamma, gen_poisson, gen_beta: gen_sample.c; the processes: gen_planted.c, gen_btyd.c. */

double gen_exp_ms(rng_t *r, double mean_ms)
{
    return -mean_ms * log(1.0 - rng_uniform(r));
}

double gen_uniform_in(rng_t *r, double lo, double hi)
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

void gen_user_reset(const gen_t *g, int64_t idx, gen_user_t *u)
{
    memset(u, 0, sizeof(*u));
    rng_seed(&u->rng, g->p.seed ^ ((uint64_t)(idx + 1) * 0xD1B54A32D192ED03ULL));
}

int gen_emit(gen_t *g, uint32_t user, ev_type_t type, int64_t t_ms, double amount, uint32_t item,
             int category, int channel)
{
    if (CS_GROW(g->buf, g->cap, g->n + 1, 4096) != 0)
        return -1;
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
uint32_t gen_pick_item(rng_t *r)
{
    return (uint32_t)(GEN_ITEMS * pow(rng_uniform(r), 2.5)) % GEN_ITEMS + 1;
}

int gen_item_category(uint32_t item)
{
    return (int)((item * 2654435761u) % GEN_CATEGORIES) + 1;
}

double gen_cents(double v)
{
    return round(v * 100.0) / 100.0;
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
        if ((btyd ? gen_btyd_user_day(g, (uint32_t)i, day_ms + DAY_MS)
                  : gen_planted_user_day(g, (uint32_t)i, day_ms)) < 0)
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
            gen_planted_user_init(g, i, &g->users[i]);
        else
            gen_btyd_user_init(g, i, &g->users[i]);
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
