/* Generator tests: the samplers' moments, parameter checks, determinism by seed, global time
 * order, planted churn (silence after churn_ms, fading before it, cancels last), activity of
 * non-churners, the event-type mix, weekly seasonality and the truth file; the BTYD processes
 * (BG/NBD, Pareto/NBD): determinism, purchase rates and drop-outs against their parameters
 * within sampling error, and their truth file against the stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen.h"

#define DAY_MS 86400000LL

static gen_t *make_gen(int64_t users, int days, uint64_t seed, double churn_rate)
{
    gen_params_t p;
    char err[256];
    gen_params_default(&p);
    p.users = users;
    p.days = days;
    p.seed = seed;
    p.churn_rate = churn_rate;
    gen_t *g = gen_new(&p, err, sizeof(err));
    if (!g)
        fail_msg("gen_new: %s", err);
    return g;
}

static int64_t user_index(const ev_event_t *ev)
{
    assert_int_equal(ev->user_id[0], 'u');
    assert_true(ev->user_id_len >= 7);
    return strtoll(ev->user_id + 1, NULL, 10) - 1;
}

/* ---- samplers ---------------------------------------------------------------------- */

static void test_gamma_moments(void **state)
{
    static const struct {
        double shape, scale;
    } cases[] = {{0.5, 2.0}, {1.0, 1.0}, {1.3, 0.35}, {2.0, 1.0}, {9.0, 0.5}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        rng_t r;
        rng_seed(&r, 7 + c);
        const int n = 200000;
        double sum = 0, sum2 = 0;
        for (int i = 0; i < n; i++) {
            double x = gen_gamma(&r, cases[c].shape, cases[c].scale);
            assert_true(x >= 0.0 && isfinite(x));
            sum += x;
            sum2 += x * x;
        }
        double mean = sum / n, var = sum2 / n - mean * mean;
        double want_mean = cases[c].shape * cases[c].scale;
        double want_var = cases[c].shape * cases[c].scale * cases[c].scale;
        if (fabs(mean / want_mean - 1.0) > 0.015 || fabs(var / want_var - 1.0) > 0.05)
            fail_msg("gamma(%g, %g): mean %g (want %g), var %g (want %g)", cases[c].shape,
                     cases[c].scale, mean, want_mean, var, want_var);
    }
}

static void test_poisson_moments(void **state)
{
    static const double means[] = {0.05, 0.45, 3.0, 12.0, 50.0};
    for (size_t c = 0; c < sizeof(means) / sizeof(means[0]); c++) {
        rng_t r;
        rng_seed(&r, 99 + c);
        const int n = 200000;
        double sum = 0, sum2 = 0;
        for (int i = 0; i < n; i++) {
            int k = gen_poisson(&r, means[c]);
            assert_true(k >= 0);
            sum += k;
            sum2 += (double)k * k;
        }
        double mean = sum / n, var = sum2 / n - mean * mean;
        if (fabs(mean / means[c] - 1.0) > 0.03 || fabs(var / means[c] - 1.0) > 0.06)
            fail_msg("poisson(%g): mean %g var %g", means[c], mean, var);
    }
    rng_t r;
    rng_seed(&r, 1);
    assert_int_equal(gen_poisson(&r, 0.0), 0);
    assert_int_equal(gen_poisson(&r, -1.0), 0);
}

/* ---- parameters -------------------------------------------------------------------- */

static void test_parse_date_table(void **state)
{
    static const struct {
        const char *text;
        int ok;
        int64_t want_ms;
    } cases[] = {
        {"2024-01-01", 1, 1704067200000LL},
        {"1970-01-01", 1, 0},
        {"2024-02-29", 1, 1709164800000LL},
        {"2023-02-29", 0, 0},
        {"2024-13-01", 0, 0},
        {"2024-1-01", 0, 0},
        {"2024-01-01x", 0, 0},
        {"", 0, 0},
        {"1969-12-31", 0, 0},
        {"2024-04-31", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        int rc = gen_parse_date(cases[i].text, &ms);
        if (rc != (cases[i].ok ? 0 : -1) || (cases[i].ok && ms != cases[i].want_ms))
            fail_msg("\"%s\": rc %d ms %lld", cases[i].text, rc, (long long)ms);
    }
}

static void test_params_rejected(void **state)
{
    static const struct {
        int64_t users;
        int days;
        double churn_rate;
        int64_t start_ms;
        const char *want;
    } cases[] = {
        {0, 10, 0.3, 0, "--users"},       {-5, 10, 0.3, 0, "--users"},
        {10, 0, 0.3, 0, "--days"},        {10, 4000, 0.3, 0, "--days"},
        {10, 10, 1.5, 0, "--churn-rate"}, {10, 10, -0.1, 0, "--churn-rate"},
        {10, 10, NAN, 0, "--churn-rate"}, {10, 10, 0.3, 1000, "--start"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gen_params_t p;
        gen_params_default(&p);
        p.users = cases[i].users;
        p.days = cases[i].days;
        p.churn_rate = cases[i].churn_rate;
        p.start_ms += cases[i].start_ms;
        char err[256] = "";
        gen_t *g = gen_new(&p, err, sizeof(err));
        if (g || strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: err [%s]", i, err);
    }
    gen_destroy(NULL);
}

/* ---- determinism ------------------------------------------------------------------- */

static void test_same_seed_same_events(void **state)
{
    gen_t *a = make_gen(300, 60, 42, 0.3), *b = make_gen(300, 60, 42, 0.3);
    gen_t *c = make_gen(300, 60, 43, 0.3);
    ev_event_t ea, eb, ec;
    int differ = 0;
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(gen_next(a, &ea), 1);
        assert_int_equal(gen_next(b, &eb), 1);
        assert_int_equal(gen_next(c, &ec), 1);
        if (memcmp(&ea, &eb, sizeof(ea)) != 0)
            fail_msg("event %d differs for the same seed", i);
        if (memcmp(&ea, &ec, sizeof(ea)) != 0)
            differ++;
    }
    /* Another seed gives another stream (not merely a shifted copy). */
    assert_true(differ > 9900);
    gen_destroy(a);
    gen_destroy(b);
    gen_destroy(c);
}

static void test_user_independent_of_population(void **state)
{
    /* User u000042's events depend on the seed and its index only, not on --users. */
    gen_t *small = make_gen(100, 45, 5, 0.3), *big = make_gen(400, 45, 5, 0.3);
    ev_event_t e1, e2;
    int n1 = 0, n2 = 0;
    ev_event_t *mine = calloc(4096, sizeof(*mine));
    assert_non_null(mine);
    while (gen_next(small, &e1) == 1) {
        if (strcmp(e1.user_id, "u000042") == 0) {
            assert_true(n1 < 4096);
            mine[n1++] = e1;
        }
    }
    while (gen_next(big, &e2) == 1) {
        if (strcmp(e2.user_id, "u000042") == 0) {
            assert_true(n2 < n1);
            assert_memory_equal(&mine[n2], &e2, sizeof(e2));
            n2++;
        }
    }
    assert_true(n1 > 0);
    assert_int_equal(n1, n2);
    free(mine);
    gen_destroy(small);
    gen_destroy(big);
}

/* ---- the stream as a whole --------------------------------------------------------- */

typedef struct stream_stats_s {
    int64_t n, by_type[EV_TYPE_COUNT];
    int64_t weekend_events, weekday_events, weekend_days, weekday_days;
    int64_t late_joiners; /* users whose first event is after day 30 */
} stream_stats_t;

/* Per-user facts collected in one pass over the stream. */
typedef struct user_obs_s {
    int64_t first_ms, last_ms, last_activity_ms;
    int64_t n_events, cancels, last_cancel_ms;
    int64_t act_early, act_late; /* activity in [churn-63d, churn-35d) and [churn-14d, churn) */
    int64_t sessions_fade, tickets_fade, sessions_calm, tickets_calm;
} user_obs_t;

static void check_event_shape(const ev_event_t *ev)
{
    assert_true(ev->type >= 0 && ev->type < EV_OTHER);
    assert_true(isfinite(ev->amount) && ev->amount >= 0.0);
    assert_int_equal(strlen(ev->user_id), ev->user_id_len);
    switch (ev->type) {
    case EV_PURCHASE:
    case EV_REFUND:
        assert_true(ev->amount > 0.0);
        assert_int_equal(ev->has_item_id, 1);
        assert_int_equal(ev->has_category, 1);
        assert_int_equal(strncmp(ev->item_id, "sku", 3), 0);
        break;
    case EV_PAGE_VIEW:
    case EV_ADD_TO_CART:
    case EV_REMOVE_FROM_CART:
        assert_true(ev->amount == 0.0);
        assert_int_equal(ev->has_item_id, 1);
        assert_int_equal(ev->has_category, 1);
        assert_int_equal(ev->has_channel, 1);
        break;
    case EV_SEARCH:
        assert_int_equal(ev->has_item_id, 0);
        assert_int_equal(ev->has_category, 1);
        break;
    case EV_COUPON_REDEEM:
        assert_true(ev->amount > 0.0);
        break;
    case EV_SESSION_START:
    case EV_SUPPORT_TICKET:
        assert_int_equal(ev->has_item_id, 0);
        assert_int_equal(ev->has_channel, 1);
        break;
    case EV_SUBSCRIPTION_CANCEL:
        assert_int_equal(ev->has_item_id, 0);
        assert_int_equal(ev->has_channel, 0);
        break;
    default:
        break;
    }
}

static void test_stream_properties(void **state)
{
    const int64_t users = 1500;
    const int days = 120;
    gen_t *g = make_gen(users, days, 2024, 0.3);
    gen_params_t p;
    gen_params_default(&p);
    const int64_t start = p.start_ms, end = start + days * DAY_MS;

    gen_user_info_t *info = calloc((size_t)users, sizeof(*info));
    user_obs_t *obs = calloc((size_t)users, sizeof(*obs));
    assert_non_null(info);
    assert_non_null(obs);
    for (int64_t i = 0; i < users; i++) {
        assert_int_equal(gen_user_info(g, i, &info[i]), 0);
        char want[16];
        snprintf(want, sizeof(want), "u%06lld", (long long)i + 1);
        assert_string_equal(info[i].user_id, want);
        obs[i].first_ms = -1;
    }
    gen_user_info_t tmp;
    assert_int_equal(gen_user_info(g, users, &tmp), -1);
    assert_int_equal(gen_user_info(g, -1, &tmp), -1);

    stream_stats_t st;
    memset(&st, 0, sizeof(st));
    int64_t day_events[120] = {0};
    ev_event_t ev;
    int64_t prev_ms = INT64_MIN, after_churn = 0, before_join = 0;
    int rc;
    while ((rc = gen_next(g, &ev)) == 1) {
        check_event_shape(&ev);
        assert_true(ev.event_time_ms >= prev_ms); /* global event-time order */
        prev_ms = ev.event_time_ms;
        assert_true(ev.event_time_ms >= start && ev.event_time_ms < end + DAY_MS);
        int64_t u = user_index(&ev);
        assert_true(u >= 0 && u < users);
        user_obs_t *o = &obs[u];
        const gen_user_info_t *in = &info[u];
        st.n++;
        st.by_type[ev.type]++;
        if (ev.event_time_ms < end)
            day_events[(ev.event_time_ms - start) / DAY_MS]++;
        if (o->first_ms < 0)
            o->first_ms = ev.event_time_ms;
        o->last_ms = ev.event_time_ms;
        o->n_events++;
        if (ev.event_time_ms < in->join_ms)
            before_join++;
        if (in->churn_ms >= 0 && ev.event_time_ms >= in->churn_ms)
            after_churn++;
        if (ev.type == EV_SUBSCRIPTION_CANCEL) {
            o->cancels++;
            o->last_cancel_ms = ev.event_time_ms;
        }
        if (ev_is_activity(ev.type))
            o->last_activity_ms = ev.event_time_ms;
        if (in->churn_ms >= 0 && ev_is_activity(ev.type)) {
            int64_t before = in->churn_ms - ev.event_time_ms;
            if (before > 35 * DAY_MS && before <= 63 * DAY_MS)
                o->act_early++;
            if (before > 0 && before <= 14 * DAY_MS)
                o->act_late++;
        }
        int fading = in->churn_ms >= 0 && in->churn_ms - ev.event_time_ms <= 14 * DAY_MS;
        if (ev.type == EV_SESSION_START)
            fading ? o->sessions_fade++ : o->sessions_calm++;
        if (ev.type == EV_SUPPORT_TICKET)
            fading ? o->tickets_fade++ : o->tickets_calm++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(gen_next(g, &ev), 0); /* stays done */
    int days_done;
    int64_t emitted;
    gen_progress(g, &days_done, &emitted);
    assert_int_equal(days_done, days);
    assert_int_equal(emitted, st.n);

    assert_int_equal(after_churn, 0); /* churners are silent from churn_ms on, every type */
    assert_int_equal(before_join, 0);

    /* Planted churn fraction and churn times inside the window. */
    int64_t churners = 0, cancel_users = 0, nonchurn_eligible = 0, nonchurn_active = 0;
    int64_t act_early = 0, act_late = 0, s_fade = 0, t_fade = 0, s_calm = 0, t_calm = 0;
    for (int64_t i = 0; i < users; i++) {
        const gen_user_info_t *in = &info[i];
        const user_obs_t *o = &obs[i];
        if (o->first_ms > start + 30 * DAY_MS)
            st.late_joiners++;
        s_calm += o->sessions_calm;
        t_calm += o->tickets_calm;
        if (in->churn_ms >= 0) {
            churners++;
            assert_true(in->churn_ms > in->join_ms && in->churn_ms < end);
            s_fade += o->sessions_fade;
            t_fade += o->tickets_fade;
            if (in->churn_ms - in->join_ms > 63 * DAY_MS) {
                act_early += o->act_early;
                act_late += o->act_late;
            }
            if (in->sends_cancel) {
                cancel_users++;
                /* The cancel is sent once, in the hour before churn, after everything else. */
                assert_int_equal(o->cancels, 1);
                assert_true(o->last_cancel_ms == o->last_ms);
                assert_true(o->last_cancel_ms < in->churn_ms &&
                            o->last_cancel_ms >= in->churn_ms - 3600000);
            } else {
                assert_int_equal(o->cancels, 0);
            }
        } else {
            assert_int_equal(o->cancels, 0);
            if (in->join_ms < end - 60 * DAY_MS && in->sessions_per_day >= 0.2) {
                nonchurn_eligible++;
                if (o->last_activity_ms >= end - 28 * DAY_MS)
                    nonchurn_active++;
            }
        }
    }
    double churn_frac = (double)churners / users;
    double active_frac = (double)nonchurn_active / nonchurn_eligible;
    double fade_ratio = (double)act_late / (act_early + 1) * (28.0 / 14.0);
    double ticket_fade = (double)t_fade / s_fade, ticket_calm = (double)t_calm / s_calm;
    print_message("events %lld, churners %.3f, cancels %lld, non-churners active in the last 28d "
                  "%.3f (%lld), churner activity late/early per day %.3f, tickets/session "
                  "fading %.3f calm %.3f, late joiners %lld\n",
                  (long long)st.n, churn_frac, (long long)cancel_users, active_frac,
                  (long long)nonchurn_eligible, fade_ratio, ticket_fade, ticket_calm,
                  (long long)st.late_joiners);
    assert_true(churn_frac > 0.25 && churn_frac < 0.35);
    assert_true(cancel_users > churners / 3 && cancel_users < churners * 2 / 3);
    assert_true(nonchurn_eligible > 300);
    assert_true(active_frac > 0.9);
    assert_true(fade_ratio < 0.5); /* activity fades over the weeks before churn */
    assert_true(ticket_fade > 3.0 * ticket_calm);
    assert_true(st.late_joiners > users / 10); /* users join over time */

    /* Event-type mix: a funnel narrows from views to carts to purchases. */
    for (int t = 0; t < EV_OTHER; t++)
        assert_true(st.by_type[t] > 0);
    assert_int_equal(st.by_type[EV_OTHER], 0);
    assert_true(st.by_type[EV_PAGE_VIEW] > 2 * st.by_type[EV_SESSION_START]);
    assert_true(st.by_type[EV_SESSION_START] > st.by_type[EV_ADD_TO_CART]);
    assert_true(st.by_type[EV_ADD_TO_CART] > st.by_type[EV_PURCHASE]);
    assert_true(st.by_type[EV_PURCHASE] > st.by_type[EV_REMOVE_FROM_CART] / 2);
    assert_true(st.by_type[EV_PURCHASE] > st.by_type[EV_REFUND] * 10);
    assert_true(st.by_type[EV_PURCHASE] > st.by_type[EV_COUPON_REDEEM]);
    double purchase_share = (double)st.by_type[EV_PURCHASE] / st.n;
    assert_true(purchase_share > 0.01 && purchase_share < 0.1);

    /* Weekly seasonality: weekends are busier on average (2024-01-06 is a Saturday). */
    for (int d = 0; d < days; d++) {
        int dow = (d + 1) % 7; /* day 0 = Monday 2024-01-01 -> 1 */
        if (dow == 0 || dow == 6) {
            st.weekend_events += day_events[d];
            st.weekend_days++;
        } else {
            st.weekday_events += day_events[d];
            st.weekday_days++;
        }
    }
    double wk_ratio = ((double)st.weekend_events / st.weekend_days) /
                      ((double)st.weekday_events / st.weekday_days);
    print_message("weekend/weekday events per day %.3f\n", wk_ratio);
    assert_true(wk_ratio > 1.05 && wk_ratio < 1.5);

    free(info);
    free(obs);
    gen_destroy(g);
}

static void test_truth_file(void **state)
{
    gen_t *g = make_gen(50, 60, 9, 0.4);
    char path[] = "/tmp/cs_test_truth_XXXXXX", err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gen_truth_write(g, path, err, sizeof(err)), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[128];
    assert_non_null(fgets(line, sizeof(line), f));
    assert_string_equal(line, "user_id,churn_time_ms\n");
    int64_t i = 0, churners = 0;
    while (fgets(line, sizeof(line), f)) {
        gen_user_info_t in;
        assert_int_equal(gen_user_info(g, i, &in), 0);
        char want[96];
        if (in.churn_ms >= 0) {
            snprintf(want, sizeof(want), "%s,%lld\n", in.user_id, (long long)in.churn_ms);
            churners++;
        } else {
            snprintf(want, sizeof(want), "%s,\n", in.user_id);
        }
        assert_string_equal(line, want);
        i++;
    }
    fclose(f);
    assert_int_equal(i, 50);
    assert_true(churners > 5 && churners < 35);
    unlink(path);
    assert_int_equal(gen_truth_write(g, "/nonexistent/dir/t.csv", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/dir/t.csv: cannot create"));
    gen_destroy(g);
}

/* ---- buy-till-you-die processes ---------------------------------------------------- */

static void test_beta_moments(void **state)
{
    /* Includes Online Retail's fit (a = 0.000485), where most draws are below the smallest
     * double (P(p < 1e-300) is about 0.7) and round to 0: never NaN, and the mean, carried by
     * the rare large draws, still matches. */
    static const struct {
        double a, b;
    } cases[] = {{0.793, 2.426}, {1.0, 1.0}, {2.0, 18.0}, {0.02395, 18.95}, {0.000485, 124.45}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        rng_t r;
        rng_seed(&r, 31 + c);
        const int n = 200000;
        double a = cases[c].a, b = cases[c].b, sum = 0, sum2 = 0;
        for (int i = 0; i < n; i++) {
            double x = gen_beta(&r, a, b);
            assert_true(x >= 0.0 && x <= 1.0);
            sum += x;
            sum2 += x * x;
        }
        double mean = sum / n, var = sum2 / n - mean * mean;
        double want_mean = a / (a + b), want_var = a * b / ((a + b) * (a + b) * (a + b + 1));
        double se = sqrt(want_var / n);
        if (fabs(mean - want_mean) > 5 * se || fabs(var / want_var - 1.0) > 0.25)
            fail_msg("beta(%g, %g): mean %g (want %g, se %g), var %g (want %g)", a, b, mean,
                     want_mean, se, var, want_var);
    }
}

static gen_t *make_btyd(gen_process_t process, int64_t users, int days, uint64_t seed, double r,
                        double alpha, double a_or_s, double b_or_beta)
{
    gen_params_t p;
    char err[256];
    gen_params_default(&p);
    p.users = users;
    p.days = days;
    p.seed = seed;
    p.process = process;
    p.r = r;
    p.alpha_days = alpha;
    if (process == GEN_BGNBD) {
        p.a = a_or_s;
        p.b = b_or_beta;
    } else {
        p.s = a_or_s;
        p.beta_days = b_or_beta;
    }
    gen_t *g = gen_new(&p, err, sizeof(err));
    if (!g)
        fail_msg("gen_new: %s", err);
    return g;
}

static void test_btyd_params(void **state)
{
    static const char *const names[] = {"planted", "bgnbd", "paretonbd"};
    for (int i = 0; i < 3; i++) {
        gen_process_t pr = GEN_PLANTED;
        assert_int_equal(gen_process_parse(names[i], &pr), 0);
        assert_int_equal((int)pr, i);
    }
    gen_process_t pr;
    assert_int_equal(gen_process_parse("bg-nbd", &pr), -1);
    assert_int_equal(gen_process_parse("", &pr), -1);

    static const struct {
        gen_process_t process;
        double r, alpha, a, b, s, beta;
        int cohort_days;
        const char *want;
    } cases[] = {
        {GEN_BGNBD, -1, 0, 0, 0, 0, 0, 0, "--r"},
        {GEN_BGNBD, 0, 1e7, 0, 0, 0, 0, 0, "--alpha"},
        {GEN_BGNBD, 0, 0, NAN, 0, 0, 0, 0, "--a"},
        {GEN_BGNBD, 0, 0, 0, -2, 0, 0, 0, "--b"},
        {GEN_PARETONBD, 0, 0, 0, 0, -0.5, 0, 0, "--s"},
        {GEN_PARETONBD, 0, 0, 0, 0, 0, INFINITY, 0, "--beta"},
        {GEN_BGNBD, 0, 0, 0, 0, 0, 0, 61, "--cohort-days"},
        {GEN_PARETONBD, 1000, 1, 0, 0, 0, 0, 0, "--r/--alpha"},
        {GEN_PARETONBD, 0, 0, 0, 0, 0, 0, -1, "--cohort-days"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gen_params_t p;
        gen_params_default(&p);
        p.days = 60;
        p.process = cases[i].process;
        p.r = cases[i].r;
        p.alpha_days = cases[i].alpha;
        p.a = cases[i].a;
        p.b = cases[i].b;
        p.s = cases[i].s;
        p.beta_days = cases[i].beta;
        p.cohort_days = cases[i].cohort_days;
        char err[256] = "";
        gen_t *g = gen_new(&p, err, sizeof(err));
        if (g || strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: err [%s]", i, err);
    }
    /* Zeros take the published fits; the default cohort is a quarter of the period. */
    gen_t *g = make_btyd(GEN_BGNBD, 4000, 100, 1, 0, 0, 0, 0);
    int64_t start = 1704067200000LL, last_join = 0;
    double lam = 0, pp = 0;
    for (int64_t i = 0; i < 4000; i++) {
        gen_user_info_t in;
        assert_int_equal(gen_user_info(g, i, &in), 0);
        assert_true(in.join_ms >= start && in.join_ms < start + 25 * DAY_MS);
        assert_true(in.mu_per_day == -1.0);
        last_join = in.join_ms > last_join ? in.join_ms : last_join;
        lam += in.lambda_per_day;
        pp += in.p;
    }
    assert_true(last_join > start + 24 * DAY_MS);
    /* Means r/alpha = 0.00786 and a/(a+b) = 0.246 (FHL 2005 in days); 4 standard errors. */
    assert_true(fabs(lam / 4000 - 0.243 / 30.898) < 4 * sqrt(0.243) / 30.898 / sqrt(4000.0));
    assert_true(fabs(pp / 4000 - 0.793 / 3.219) < 4 * 0.2097 / sqrt(4000.0));
    gen_destroy(g);
}

static void test_btyd_deterministic(void **state)
{
    for (int pr = GEN_BGNBD; pr <= GEN_PARETONBD; pr++) {
        double b_or_beta = pr == GEN_BGNBD ? 4.0 : 100.0;
        gen_t *a = make_btyd((gen_process_t)pr, 500, 200, 7, 1.0, 10.0, 1.0, b_or_beta);
        gen_t *b = make_btyd((gen_process_t)pr, 500, 200, 7, 1.0, 10.0, 1.0, b_or_beta);
        gen_t *c = make_btyd((gen_process_t)pr, 500, 200, 8, 1.0, 10.0, 1.0, b_or_beta);
        ev_event_t ea, eb, ec;
        int64_t n = 0, differ = 0, prev = INT64_MIN;
        int ra, rc = 1;
        while ((ra = gen_next(a, &ea)) == 1) {
            assert_int_equal(gen_next(b, &eb), 1);
            assert_memory_equal(&ea, &eb, sizeof(ea));
            assert_int_equal(ea.type, EV_PURCHASE);
            check_event_shape(&ea);
            assert_true(ea.event_time_ms >= prev);
            prev = ea.event_time_ms;
            if (rc == 1 && (rc = gen_next(c, &ec)) == 1 && memcmp(&ea, &ec, sizeof(ea)) != 0)
                differ++;
            n++;
        }
        assert_int_equal(ra, 0);
        assert_int_equal(gen_next(b, &eb), 0);
        assert_true(n > 2000);
        assert_true(differ > n * 9 / 10);
        gen_destroy(a);
        gen_destroy(b);
        gen_destroy(c);
    }
    /* A user's purchases depend on the seed, its index and the period, not on --users. */
    gen_t *small = make_btyd(GEN_BGNBD, 50, 120, 3, 1.0, 10.0, 1.0, 4.0);
    gen_t *big = make_btyd(GEN_BGNBD, 300, 120, 3, 1.0, 10.0, 1.0, 4.0);
    ev_event_t e1, e2;
    int64_t n1 = 0, n2 = 0;
    uint64_t h1 = 1469598103934665603ULL, h2 = h1;
    while (gen_next(small, &e1) == 1) {
        if (strcmp(e1.user_id, "u000042") == 0) {
            h1 = (h1 ^ (uint64_t)e1.event_time_ms) * 1099511628211ULL;
            n1++;
        }
    }
    while (gen_next(big, &e2) == 1) {
        if (strcmp(e2.user_id, "u000042") == 0) {
            h2 = (h2 ^ (uint64_t)e2.event_time_ms) * 1099511628211ULL;
            n2++;
        }
    }
    assert_true(n1 > 0);
    assert_int_equal(n1, n2);
    assert_true(h1 == h2);
    gen_destroy(small);
    gen_destroy(big);
}

/* Per-user facts of a BTYD stream, checked against gen_user_info. */
typedef struct btyd_obs_s {
    int64_t n, first_ms, second_ms, last_ms;
} btyd_obs_t;

static btyd_obs_t *btyd_observe(gen_t *g, int64_t users)
{
    btyd_obs_t *obs = calloc((size_t)users, sizeof(*obs));
    assert_non_null(obs);
    ev_event_t ev;
    int64_t prev = INT64_MIN;
    while (gen_next(g, &ev) == 1) {
        assert_int_equal(ev.type, EV_PURCHASE);
        assert_true(ev.event_time_ms >= prev);
        prev = ev.event_time_ms;
        int64_t u = user_index(&ev);
        assert_true(u >= 0 && u < users);
        if (obs[u].n == 0)
            obs[u].first_ms = ev.event_time_ms;
        if (obs[u].n++ == 1)
            obs[u].second_ms = ev.event_time_ms;
        obs[u].last_ms = ev.event_time_ms;
    }
    return obs;
}

/* Optional stopping makes both checks exact in expectation whatever stops the user: repeat
 * purchases = sum of lambda x time alive, and (BG/NBD) drop-outs = sum of p x repeat
 * purchases. The z-scores use the Poisson and Bernoulli variances of those sums. */
static void test_bgnbd_matches_parameters(void **state)
{
    const int64_t users = 20000;
    const int days = 365;
    const double r = 2.0, alpha = 20.0, a = 1.0, b = 9.0; /* mean lambda 0.1/day, p 0.1 */
    gen_t *g = make_btyd(GEN_BGNBD, users, days, 11, r, alpha, a, b);
    gen_params_t dp;
    gen_params_default(&dp);
    const int64_t end = dp.start_ms + days * DAY_MS;
    gen_user_info_t *info = calloc((size_t)users, sizeof(*info));
    assert_non_null(info);
    for (int64_t i = 0; i < users; i++)
        assert_int_equal(gen_user_info(g, i, &info[i]), 0);
    btyd_obs_t *obs = btyd_observe(g, users);

    double repeats = 0, want_repeats = 0, drops = 0, want_drops = 0, var_drops = 0;
    double sum_lam = 0, sum_p = 0, zero90 = 0, n90 = 0;
    for (int64_t i = 0; i < users; i++) {
        const gen_user_info_t *in = &info[i];
        const btyd_obs_t *o = &obs[i];
        assert_true(in->p >= 0.0 && in->p <= 1.0 && in->mu_per_day == -1.0);
        assert_int_equal(o->first_ms, in->join_ms); /* every user shows up at once */
        int64_t until = in->churn_ms >= 0 ? in->churn_ms : end;
        double x = (double)(o->n - 1);
        repeats += x;
        want_repeats += in->lambda_per_day * (double)(until - in->join_ms) / DAY_MS;
        drops += in->churn_ms >= 0;
        want_drops += in->p * x;
        var_drops += in->p * (1 - in->p) * x;
        sum_lam += in->lambda_per_day;
        sum_p += in->p;
        if (in->join_ms + 90 * DAY_MS <= end) {
            /* P(no repeat purchase within t of the first) = (alpha / (alpha + t))^r (FHL eq. 6
             * at x = 0): the gamma mixture of rates, population-wide. */
            n90++;
            zero90 += o->n < 2 || o->second_ms >= in->join_ms + 90 * DAY_MS;
        }
    }
    double z_rep = (repeats - want_repeats) / sqrt(want_repeats);
    double z_drop = (drops - want_drops) / sqrt(var_drops);
    double p0 = pow(alpha / (alpha + 90.0), r), f0 = zero90 / n90;
    double z_zero = (f0 - p0) / sqrt(p0 * (1 - p0) / n90);
    double z_lam = (sum_lam / users - r / alpha) / (sqrt(r) / alpha / sqrt((double)users));
    double sd_p = sqrt(a * b / ((a + b) * (a + b) * (a + b + 1)));
    double z_p = (sum_p / users - a / (a + b)) / (sd_p / sqrt((double)users));
    print_message("bgnbd: repeats %.0f (want %.0f, z %.2f), drop-outs %.0f (want %.1f, z %.2f), "
                  "no repeat in 90 d %.4f (want %.4f, z %.2f), z lambda %.2f, z p %.2f\n",
                  repeats, want_repeats, z_rep, drops, want_drops, z_drop, f0, p0, z_zero, z_lam,
                  z_p);
    assert_true(repeats > 100000);
    assert_true(fabs(z_rep) < 4 && fabs(z_drop) < 4 && fabs(z_zero) < 4);
    assert_true(fabs(z_lam) < 4 && fabs(z_p) < 4);
    free(info);
    free(obs);
    gen_destroy(g);
}

static void test_paretonbd_matches_parameters(void **state)
{
    const int64_t users = 20000;
    const int days = 365;
    const double r = 2.0, alpha = 20.0, s = 2.0, beta = 400.0; /* mean lifetime ~400 days */
    gen_t *g = make_btyd(GEN_PARETONBD, users, days, 12, r, alpha, s, beta);
    gen_params_t dp;
    gen_params_default(&dp);
    const int64_t end = dp.start_ms + days * DAY_MS;
    gen_user_info_t *info = calloc((size_t)users, sizeof(*info));
    assert_non_null(info);
    for (int64_t i = 0; i < users; i++)
        assert_int_equal(gen_user_info(g, i, &info[i]), 0);
    btyd_obs_t *obs = btyd_observe(g, users);
    double repeats = 0, want_repeats = 0, drops = 0, want_drops = 0, var_drops = 0, sum_mu = 0;
    for (int64_t i = 0; i < users; i++) {
        const gen_user_info_t *in = &info[i];
        const btyd_obs_t *o = &obs[i];
        assert_true(in->p == -1.0 && in->mu_per_day > 0.0);
        assert_int_equal(o->first_ms, in->join_ms);
        int64_t until = in->churn_ms >= 0 ? in->churn_ms : end;
        repeats += (double)(o->n - 1);
        want_repeats += in->lambda_per_day * (double)(until - in->join_ms) / DAY_MS;
        /* Drop-out within the period given mu: 1 - exp(-mu w), w = time left after joining. */
        double q = 1.0 - exp(-in->mu_per_day * (double)(end - in->join_ms) / DAY_MS);
        drops += in->churn_ms >= 0;
        want_drops += q;
        var_drops += q * (1 - q);
        sum_mu += in->mu_per_day;
    }
    double z_rep = (repeats - want_repeats) / sqrt(want_repeats);
    double z_drop = (drops - want_drops) / sqrt(var_drops);
    double z_mu = (sum_mu / users - s / beta) / (sqrt(s) / beta / sqrt((double)users));
    print_message("paretonbd: repeats %.0f (want %.0f, z %.2f), drop-outs %.0f (want %.1f, "
                  "z %.2f), z mu %.2f\n",
                  repeats, want_repeats, z_rep, drops, want_drops, z_drop, z_mu);
    assert_true(drops > 2000 && drops < users - 2000);
    assert_true(fabs(z_rep) < 4 && fabs(z_drop) < 4 && fabs(z_mu) < 4);
    free(info);
    free(obs);
    gen_destroy(g);
}

/* Splits a CSV line in place; returns the number of fields. */
static int split_csv(char *line, char **fields, int max)
{
    int n = 0;
    line[strcspn(line, "\n")] = '\0';
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

static void test_btyd_truth_file(void **state)
{
    for (int pr = GEN_BGNBD; pr <= GEN_PARETONBD; pr++) {
        const int64_t users = 400;
        const int days = 300;
        /* Frequent buyers who leave fast, so most users drop out inside the period. */
        gen_t *g = make_btyd((gen_process_t)pr, users, days, 5, 3.0, 10.0, 2.0,
                             pr == GEN_BGNBD ? 8.0 : 60.0);
        char path[] = "/tmp/cs_test_btyd_truth_XXXXXX", err[256];
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(gen_truth_write(g, path, err, sizeof(err)), 0);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char line[256];
        assert_non_null(fgets(line, sizeof(line), f));
        assert_string_equal(line, "user_id,churn_time_ms,first_purchase_ms,lambda_per_day,p,"
                                  "mu_per_day\n");
        int64_t *churn = calloc((size_t)users, sizeof(*churn));
        assert_non_null(churn);
        int64_t i = 0, dropped = 0;
        while (fgets(line, sizeof(line), f)) {
            char *fl[8];
            assert_true(i < users);
            assert_int_equal(split_csv(line, fl, 8), 6);
            gen_user_info_t in;
            assert_int_equal(gen_user_info(g, i, &in), 0);
            assert_string_equal(fl[0], in.user_id);
            churn[i] = *fl[1] ? strtoll(fl[1], NULL, 10) : -1;
            assert_true(churn[i] == in.churn_ms);
            assert_true(strtoll(fl[2], NULL, 10) == in.join_ms);
            assert_true(strtod(fl[3], NULL) == in.lambda_per_day); /* %.17g round-trips */
            if (pr == GEN_BGNBD) {
                assert_true(*fl[4] && strtod(fl[4], NULL) == in.p);
                assert_string_equal(fl[5], "");
            } else {
                assert_string_equal(fl[4], "");
                assert_true(*fl[5] && strtod(fl[5], NULL) == in.mu_per_day);
            }
            dropped += churn[i] >= 0;
            i++;
        }
        fclose(f);
        unlink(path);
        assert_int_equal(i, users);
        assert_true(dropped > users / 2 && dropped < users);

        /* The stream never shows a purchase at or after the drop-out time; a BG/NBD user's
         * last purchase is the one right before it. */
        btyd_obs_t *obs = btyd_observe(g, users);
        for (int64_t u = 0; u < users; u++) {
            gen_user_info_t in;
            assert_int_equal(gen_user_info(g, u, &in), 0);
            assert_true(obs[u].n >= 1 && obs[u].first_ms == in.join_ms);
            if (churn[u] < 0)
                continue;
            assert_true(obs[u].last_ms < churn[u]);
            if (pr == GEN_BGNBD)
                assert_true(obs[u].last_ms == churn[u] - 1 && obs[u].n >= 2);
        }
        free(obs);
        free(churn);
        gen_destroy(g);
    }
}

static void test_tiny_and_no_churn(void **state)
{
    /* One user, one day, no churners, and a short window where churners cannot fit a
     * tenure: the generator still runs to completion in order. */
    static const struct {
        int64_t users;
        int days;
        double churn;
    } cases[] = {{1, 1, 0.0}, {20, 2, 1.0}, {200, 10, 0.0}, {200, 10, 1.0}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        gen_t *g = make_gen(cases[c].users, cases[c].days, 3, cases[c].churn);
        ev_event_t ev;
        int64_t prev = INT64_MIN, n = 0;
        while (gen_next(g, &ev) == 1) {
            assert_true(ev.event_time_ms >= prev);
            prev = ev.event_time_ms;
            n++;
        }
        for (int64_t i = 0; i < cases[c].users; i++) {
            gen_user_info_t in;
            assert_int_equal(gen_user_info(g, i, &in), 0);
            if (cases[c].churn == 0.0)
                assert_int_equal(in.churn_ms, -1);
        }
        if (cases[c].users == 200)
            assert_true(n > 0);
        gen_destroy(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gamma_moments),
        cmocka_unit_test(test_poisson_moments),
        cmocka_unit_test(test_parse_date_table),
        cmocka_unit_test(test_params_rejected),
        cmocka_unit_test(test_same_seed_same_events),
        cmocka_unit_test(test_user_independent_of_population),
        cmocka_unit_test(test_stream_properties),
        cmocka_unit_test(test_truth_file),
        cmocka_unit_test(test_tiny_and_no_churn),
        cmocka_unit_test(test_beta_moments),
        cmocka_unit_test(test_btyd_params),
        cmocka_unit_test(test_btyd_deterministic),
        cmocka_unit_test(test_bgnbd_matches_parameters),
        cmocka_unit_test(test_paretonbd_matches_parameters),
        cmocka_unit_test(test_btyd_truth_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
