/* The buy-till-you-die processes of the generator (purchases only, time unit days): a
 * Poisson purchase process per user with a gamma-distributed rate, and a hidden drop-out:
 * BG/NBD (a coin after each repeat purchase) or Pareto/NBD (an exponential lifetime). */
#include "gen_internal.h"

#include <math.h>
#include <string.h>

/* The purchase at u->next_purchase_ms (emitted when do_emit), then, BG/NBD and a repeat
 * purchase, the drop-out coin, then the next purchase time. It draws the same numbers
 * whether or not it emits, so btyd_user_init's dry run finds the drop-out the stream shows. */
static int btyd_purchase(gen_t *g, uint32_t uidx, gen_user_t *u, int do_emit)
{
    rng_t *r = &u->rng;
    int64_t t = u->next_purchase_ms;
    double amount = gen_cents(exp(u->amount_mu + 0.4 * rng_normal(r)));
    if (amount < 0.01)
        amount = 0.01;
    uint32_t item = gen_pick_item(r);
    if (do_emit && gen_emit(g, uidx, EV_PURCHASE, t, amount, item, gen_item_category(item),
                            1 + u->channel) < 0)
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
        u->lambda_per_day > 0.0 ? gen_exp_ms(r, (double)DAY_MS / u->lambda_per_day) : INFINITY;
    u->next_purchase_ms = gap_ms < (double)(limit - t) ? t + (int64_t)gap_ms : INT64_MAX;
    return 0;
}

void gen_btyd_user_init(gen_t *g, int64_t idx, gen_user_t *u)
{
    const gen_params_t *p = &g->p;
    int64_t end_ms = p->start_ms + (int64_t)p->days * DAY_MS;
    gen_user_reset(g, idx, u);
    rng_t *r = &u->rng;
    u->join_ms = p->start_ms + (int64_t)(rng_uniform(r) * (double)p->cohort_days * DAY_MS);
    u->lambda_per_day = gen_gamma(r, p->r, 1.0 / p->alpha_days);
    u->churn_ms = INT64_MAX;
    if (p->process == GEN_BGNBD) {
        u->p = gen_beta(r, p->a, p->b);
    } else {
        u->mu_per_day = gen_gamma(r, p->s, 1.0 / p->beta_days);
        /* Lifetime from the first purchase; the first purchase itself always happens. */
        double life_ms =
            u->mu_per_day > 0.0 ? gen_exp_ms(r, (double)DAY_MS / u->mu_per_day) : INFINITY;
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

int gen_btyd_user_day(gen_t *g, uint32_t uidx, int64_t day_end)
{
    gen_user_t *u = &g->users[uidx];
    while (u->next_purchase_ms < day_end) {
        if (btyd_purchase(g, uidx, u, 1) < 0)
            return -1;
    }
    return 0;
}
