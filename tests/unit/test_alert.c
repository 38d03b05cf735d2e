/* Unit tests of the alert policy and record: SipHash vectors, buckets and top-percent counts
 * at their boundaries, holdout arms (share and stability), alert ids, the actions table
 * (valid, invalid with exact messages, specificity), the gates, top factors, the top-percent
 * selection of a tick, exact JSON (hostile user ids) and Avro bytes read back by Avro-C. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <avro.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "codec_internal.h"
#include "rng.h"

#define T0  1700006400000LL /* a midnight, UTC */
#define DAY 86400000LL
/* Pinned outputs of the hashes (changing a key or the message layout moves every user to
 * another arm and every alert id); tests/python/test_alert_avro.py recomputes them from the
 * definitions with its own SipHash. */
#define ARMS_PINNED     "1101000111100001001110001011010100000100000001001100110111110111"
#define ID_PINNED_TICK  "01f97fee437b5702d1ef839feb61b6f7" /* tick|u-1|1700006400000 */
#define ID_PINNED_EVENT "2670dee1d6f8d343236b32cb33c57362" /* event|0|5 */
#define NOFS            (sizeof(((alert_t *)0)->features) / sizeof(double))

static cfg_t *mkcfg(double thr, double top, int64_t cooldown_ms, double holdout,
                    const char *actions, int64_t min_examples)
{
    cfg_t *c = cfg_new();
    assert_non_null(c);
    char err[256];
    c->alert_threshold = thr;
    c->alert_top_percent = top;
    c->alert_cooldown_ms = cooldown_ms;
    c->alert_holdout_percent = holdout;
    c->model_min_examples = min_examples;
    c->model_k = 16; /* the tables below name segments up to 12 */
    if (actions)
        assert_int_equal(cfg_set(c, "alert.actions", actions, "test", err, sizeof err), 0);
    return c;
}

static alert_policy_t *mkpolicy(double thr, double top, int64_t cooldown_ms, double holdout,
                                const char *actions, int64_t min_examples)
{
    cfg_t *c = mkcfg(thr, top, cooldown_ms, holdout, actions, min_examples);
    char err[256] = "";
    alert_policy_t *ap = alert_policy_new(c, err, sizeof err);
    cfg_destroy(c);
    if (!ap)
        fail_msg("alert_policy_new: %s", err);
    return ap;
}

/* A model with non-zero weights, seeded k-means (k = 4) and 1000 examples seen. */
static model_t *mkmodel(void)
{
    char err[128];
    model_t *m = model_new(FEAT_DIM, 4, 7, NULL, err, sizeof err);
    assert_non_null(m);
    enum { N = 256 };
    static float z[N * FEAT_DIM], y[N];
    rng_t r;
    rng_seed(&r, 42);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < FEAT_DIM; j++)
            z[i * FEAT_DIM + j] = (float)rng_normal(&r);
        y[i] = z[i * FEAT_DIM] + 0.5f * z[i * FEAT_DIM + 1] > 0 ? 1.0f : 0.0f;
    }
    assert_int_equal(lr_update(model_logreg(m), z, y, N, NULL), 0);
    assert_int_equal(km_partial_fit(model_kmeans(m), z, N), 0);
    model_touch(m, 1000);
    for (int j = 0; j < FEAT_DIM; j++)
        assert_true(lr_weight(model_logreg(m), j) != 0);
    /* The regression alone in the pool (identity calibration): a factor's part is w_i z_i, and
     * every feature has one (by default its weight is 0 until a tick is complete) */
    ex_set_mode(model_experts(m), EX_MODE_LOGREG);
    return m;
}

/* A user with some history, last active a day before T0. */
static void mkstate(feat_state_t *st)
{
    feat_state_init(st);
    ev_event_t ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.user_id, sizeof ev.user_id, "u");
    ev.user_id_len = 1;
    for (int i = 0; i < 5; i++) {
        ev.type = i % 2 ? EV_PURCHASE : EV_SESSION_START;
        ev.amount = i % 2 ? 20.0 : 0.0;
        ev.event_time_ms = T0 - (10 - 2 * i) * DAY;
        feat_apply(st, &ev);
    }
}

static const float *zeros(void)
{
    static float z[FEAT_DIM];
    return z;
}

static alert_input_t tick_input(const char *uid, int64_t tick, double p, int seg, feat_state_t *st,
                                model_t *m)
{
    alert_input_t in = {.user_id = uid,
                        .trigger = {.is_event = 0, .tick_ms = tick},
                        .event_time_ms = tick,
                        .p = p,
                        .seg = seg,
                        .z = zeros(),
                        .state = st,
                        .model = m};
    return in;
}

/* ---- SipHash-2-4: the reference vectors (key 00..0f, message 00..len-1) ---------------- */

static void test_siphash_vectors(void **s)
{
    (void)s;
    static const uint64_t want[17] = {
        0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
        0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
        0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
        0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
        0x3f2acc7f57c29bdbULL};
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    for (size_t len = 0; len < 17; len++)
        assert_true(alert_siphash24(key, msg, len) == want[len]);
    assert_true(alert_siphash24(key, msg, 63) == 0x958a324ceb064572ULL);
}

/* ---- buckets, top-percent counts ------------------------------------------------------- */

static void test_bucket_boundaries(void **s)
{
    (void)s;
    static const struct {
        double p, medium, high;
        alert_bucket_t want;
    } cases[] = {
        {0.0, 0.5, 0.85, ALERT_LOW},    {0.49999999, 0.5, 0.85, ALERT_LOW},
        {0.5, 0.5, 0.85, ALERT_MEDIUM}, {0.84999999, 0.5, 0.85, ALERT_MEDIUM},
        {0.85, 0.5, 0.85, ALERT_HIGH},  {1.0, 0.5, 0.85, ALERT_HIGH},
        {0.39, 0.4, 0.4, ALERT_LOW},    {0.4, 0.4, 0.4, ALERT_HIGH}, /* medium empty */
        {0.0, 0.0, 1.0, ALERT_MEDIUM},  {0.99, 0.0, 1.0, ALERT_MEDIUM},
        {1.0, 0.0, 1.0, ALERT_HIGH},    {0.7, 0.7, 0.9, ALERT_MEDIUM},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(alert_bucket_of(cases[i].p, cases[i].medium, cases[i].high),
                         cases[i].want);
    assert_string_equal(alert_bucket_name(ALERT_LOW), "low");
    assert_string_equal(alert_bucket_name(ALERT_MEDIUM), "medium");
    assert_string_equal(alert_bucket_name(ALERT_HIGH), "high");
    assert_string_equal(alert_arm_name(ALERT_TREATMENT), "treatment");
    assert_string_equal(alert_arm_name(ALERT_HOLDOUT), "holdout");
}

static void test_top_count(void **s)
{
    (void)s;
    static const struct {
        size_t n;
        double pct;
        size_t want;
    } cases[] = {
        {10, 5, 0},  {19, 5, 0},     {20, 5, 1},           {10000, 0.29, 29}, {100, 0, 0},
        {7, 100, 7}, {3, 50, 1},     {1000000, 0.001, 10}, {99, 1.01, 0},     {100, 1.01, 1},
        {0, 10, 0},  {1000, 0.7, 7}, {1, 99.9999, 0},      {40, 10, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = alert_top_count(cases[i].n, cases[i].pct);
        if (got != cases[i].want)
            fail_msg("n=%zu pct=%g: got %zu, want %zu", cases[i].n, cases[i].pct, got,
                     cases[i].want);
    }
}

/* ---- arms and ids ---------------------------------------------------------------------- */

static void test_arm_share_and_stability(void **s)
{
    (void)s;
    static const double pcts[] = {10, 2.5, 50};
    for (size_t k = 0; k < 3; k++) {
        int holdout = 0, moved_by_salt = 0;
        for (int i = 0; i < 100000; i++) {
            char uid[32];
            int n = snprintf(uid, sizeof uid, "user-%d", i);
            alert_arm_t a = alert_arm_of("churnstream", uid, (size_t)n, pcts[k]);
            assert_int_equal(a, alert_arm_of("churnstream", uid, (size_t)n, pcts[k]));
            holdout += a == ALERT_HOLDOUT;
            /* a larger holdout only adds users: nobody switches from holdout to treatment */
            if (a == ALERT_HOLDOUT)
                assert_int_equal(alert_arm_of("churnstream", uid, (size_t)n, pcts[k] + 5),
                                 ALERT_HOLDOUT);
            moved_by_salt += a != alert_arm_of("other-salt", uid, (size_t)n, pcts[k]);
        }
        double share = holdout / 1000.0; /* percent */
        if (fabs(share - pcts[k]) > 1.0)
            fail_msg("holdout %g%%: share %g%%", pcts[k], share);
        assert_true(moved_by_salt > 1000); /* the salt re-draws the arms */
    }
    assert_int_equal(alert_arm_of("s", "u", 1, 0), ALERT_TREATMENT);
    assert_int_equal(alert_arm_of("s", "u", 1, 100), ALERT_HOLDOUT);
    /* pinned: user-0..user-63 at 50% (1 = holdout) */
    char arms[65];
    for (int i = 0; i < 64; i++) {
        char uid[32];
        int n = snprintf(uid, sizeof uid, "user-%d", i);
        arms[i] = alert_arm_of("churnstream", uid, (size_t)n, 50) == ALERT_HOLDOUT ? '1' : '0';
    }
    arms[64] = '\0';
    assert_string_equal(arms, ARMS_PINNED);
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[n] == '\0';
}

static void test_alert_id(void **s)
{
    (void)s;
    static const struct {
        alert_trigger_t t;
        const char *uid;
    } cases[] = {
        {{0, T0, 0, 0}, "u-1"},
        {{0, T0 + DAY, 0, 0}, "u-1"},
        {{0, T0, 0, 0}, "u-2"},
        {{0, T0, 0, 0}, "u-1|1"},
        {{0, 1, 0, 0}, "u-1|1700006400000"}, /* "tick|u-1|1700006400000|1" */
        {{1, 0, 0, 5}, "u-1"},
        {{1, 0, 1, 5}, "u-1"},
        {{1, 0, 0, 6}, "u-1"},
        {{1, 0, 0, 5}, "u-2"}, /* same event -> same id, whoever it concerns (index 5) */
        {{0, 5, 0, 0}, ""},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    char ids[N][ALERT_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        alert_make_id(&cases[i].t, cases[i].uid, strlen(cases[i].uid), ids[i]);
        assert_true(is_lower_hex(ids[i], ALERT_ID_LEN));
        char again[ALERT_ID_LEN + 1];
        alert_make_id(&cases[i].t, cases[i].uid, strlen(cases[i].uid), again);
        assert_string_equal(ids[i], again);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (!(i == 5 && j == 8))
                assert_string_not_equal(ids[i], ids[j]);
    assert_string_equal(ids[5], ids[8]);
    /* pinned (also recomputed from the definition in tests/python/test_alert_avro.py) */
    assert_string_equal(ids[0], ID_PINNED_TICK);
    assert_string_equal(ids[5], ID_PINNED_EVENT);
}

/* ---- the actions table ----------------------------------------------------------------- */

static void test_actions_valid(void **s)
{
    (void)s;
    alert_policy_t *ap =
        mkpolicy(0.7, 0, DAY, 10,
                 " 3:high = win-back coupon , 3:*=loyalty points,*:low=none,*:*=generic,"
                 "12:medium=call them",
                 0);
    static const struct {
        int seg;
        alert_bucket_t b;
        const char *want;
    } cases[] = {
        {3, ALERT_HIGH, "win-back coupon"}, {3, ALERT_MEDIUM, "loyalty points"},
        {3, ALERT_LOW, "loyalty points"},   {5, ALERT_LOW, "none"},
        {5, ALERT_MEDIUM, "generic"},       {-1, ALERT_HIGH, "generic"},
        {12, ALERT_MEDIUM, "call them"},    {12, ALERT_LOW, "none"},
    };
    /* an entry wins whatever the kind and archetype */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int kind = 0; kind < 2; kind++)
            for (int arch = 0; arch < ALERT_ARCH_COUNT; arch++)
                assert_string_equal(alert_policy_action(ap, cases[i].seg, cases[i].b,
                                                        (alert_kind_t)kind,
                                                        (alert_archetype_t)arch),
                                    cases[i].want);
    alert_policy_destroy(ap);

    /* no table: the built-in defaults by bucket, kind and archetype; a partial table falls
     * back to them */
    static const char *const tables[] = {"", "   ", "7:high=vip call"};
    for (int t = 0; t < 3; t++) {
        ap = mkpolicy(0.7, 0, DAY, 10, tables[t], 0);
        assert_string_equal(
            alert_policy_action(ap, 1, ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_CHAMPIONS),
            "personal outreach with a retention offer");
        assert_string_equal(
            alert_policy_action(ap, -1, ALERT_MEDIUM, ALERT_AT_RISK, ALERT_ARCH_NONE),
            "re-engagement email with a recommendation");
        assert_string_equal(alert_policy_action(ap, 7, ALERT_LOW, ALERT_LAPSED, ALERT_ARCH_NEW),
                            "no action (monitor)");
        assert_string_equal(alert_policy_action(ap, 7, ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_NEW),
                            t == 2 ? "vip call" : "onboarding nudge");
        alert_policy_destroy(ap);
    }
    alert_policy_destroy(NULL);
}

/* The built-in table: it differs by archetype (value) and kind, as README documents. */
static void test_default_actions(void **s)
{
    (void)s;
    static const struct {
        alert_bucket_t b;
        alert_kind_t kind;
        alert_archetype_t arch;
        const char *want;
    } cases[] = {
        {ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_CHAMPIONS,
         "personal outreach with a retention offer"},
        {ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_SLIPPING,
         "personal outreach with a retention offer"},
        {ALERT_MEDIUM, ALERT_AT_RISK, ALERT_ARCH_LOYAL, "loyalty reward"},
        {ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_DISCOUNT, "coupon"},
        {ALERT_MEDIUM, ALERT_AT_RISK, ALERT_ARCH_NEW, "onboarding nudge"},
        {ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_ONE_TIME, "second-purchase incentive"},
        {ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_HIBERNATING,
         "re-engagement email with a recommendation"},
        {ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_NONE, "re-engagement email with a recommendation"},
        {ALERT_HIGH, ALERT_LAPSED, ALERT_ARCH_CHAMPIONS, "win-back call with a personal offer"},
        {ALERT_HIGH, ALERT_LAPSED, ALERT_ARCH_DISCOUNT, "win-back campaign"},
        {ALERT_MEDIUM, ALERT_LAPSED, ALERT_ARCH_NEW, "win-back campaign"},
        {ALERT_LOW, ALERT_AT_RISK, ALERT_ARCH_CHAMPIONS, "no action (monitor)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(alert_default_action(cases[i].b, cases[i].kind, cases[i].arch),
                            cases[i].want);
}

/* The archetype rules of alert.h, at their boundaries. */
static void test_archetypes(void **s)
{
    (void)s;
    static const struct {
        int f[3];
        double v[3];
        alert_archetype_t want;
    } cases[] = {
        {{-1, -1, -1}, {0, 0, 0}, ALERT_ARCH_OCCASIONAL},
        {{FEAT_TENURE_DAYS, FEAT_ACTIVE_DAYS_LIFETIME, -1}, {-0.75, 0, 0}, ALERT_ARCH_NEW},
        {{FEAT_TENURE_DAYS, FEAT_ACTIVE_DAYS_LIFETIME, -1}, {-0.74, 0, 0}, ALERT_ARCH_OCCASIONAL},
        {{FEAT_TENURE_DAYS, FEAT_ACTIVE_DAYS_LIFETIME, -1}, {-2, 0.1, 0}, ALERT_ARCH_OCCASIONAL},
        {{FEAT_COUPONS_90D, -1, -1}, {0.75, 0, 0}, ALERT_ARCH_DISCOUNT},
        {{FEAT_ACTIVE_DAYS_LIFETIME, FEAT_DAYS_SINCE_ACTIVITY, -1},
         {0.25, 0.5, 0},
         ALERT_ARCH_SLIPPING},
        {{FEAT_ACTIVE_DAYS_LIFETIME, FEAT_ACTIVITY_TREND, -1}, {1, -0.5, 0}, ALERT_ARCH_SLIPPING},
        {{FEAT_DAYS_SINCE_ACTIVITY, FEAT_ACTIVE_DAYS_90D, FEAT_REVENUE_90D},
         {-1, 0.5, 0.5},
         ALERT_ARCH_CHAMPIONS},
        {{FEAT_DAYS_SINCE_ACTIVITY, FEAT_ACTIVE_DAYS_90D, FEAT_REVENUE_90D},
         {-1, 0.5, 0.49},
         ALERT_ARCH_LOYAL},
        {{FEAT_ACTIVE_DAYS_LIFETIME, FEAT_DAYS_SINCE_ACTIVITY, -1},
         {-0.5, 0.5, 0},
         ALERT_ARCH_ONE_TIME},
        {{FEAT_ACTIVE_DAYS_LIFETIME, FEAT_DAYS_SINCE_ACTIVITY, -1},
         {0, 0.75, 0},
         ALERT_ARCH_HIBERNATING},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double z[FEAT_DIM] = {0};
        for (int j = 0; j < 3; j++)
            if (cases[i].f[j] >= 0)
                z[cases[i].f[j]] = cases[i].v[j];
        if (alert_archetype_of(z) != cases[i].want)
            fail_msg("case %zu: %s, want %s", i, alert_archetype_name(alert_archetype_of(z)),
                     alert_archetype_name(cases[i].want));
    }
    assert_string_equal(alert_archetype_name(ALERT_ARCH_SLIPPING), "slipping regulars");
    assert_string_equal(alert_archetype_name(ALERT_ARCH_COUNT), "unsegmented");
}

static void test_buckets_parse(void **s)
{
    (void)s;
    static const struct {
        const char *text;
        double medium, high; /* -1: refused */
    } cases[] = {
        {NULL, 0.5, 0.85}, {"", 0.5, 0.85},      {"0.4,0.8", 0.4, 0.8}, {" 0.6 , 0.6 ", 0.6, 0.6},
        {"0,1", 0, 1},     {"0.9,0.4", -1, -1},  {"0.5", -1, -1},       {"0.5,", -1, -1},
        {",0.5", -1, -1},  {"0.5,0.9x", -1, -1}, {"-0.1,0.5", -1, -1},  {"0.5,1.01", -1, -1},
        {"nan,1", -1, -1}, {"0.2;0.5", -1, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double m = -2, h = -2;
        char err[200] = "";
        int rc = alert_buckets_parse(cases[i].text, &m, &h, err, sizeof err);
        if (cases[i].medium < 0) {
            assert_int_equal(rc, -1);
            char want[200];
            snprintf(want, sizeof want,
                     "expected MEDIUM,HIGH with 0 <= MEDIUM <= HIGH <= 1 (e.g. 0.5,0.85), got "
                     "\"%s\"",
                     cases[i].text);
            assert_string_equal(err, want);
        } else {
            assert_int_equal(rc, 0);
            assert_true(m == cases[i].medium && h == cases[i].high);
        }
    }
    /* a bad table stops the policy, with the key named */
    cfg_t *c = mkcfg(0.7, 0, DAY, 10, NULL, 0);
    char err[256] = "";
    assert_int_equal(cfg_set(c, "alert.buckets", "0.9,0.1", "test", err, sizeof err), 0);
    assert_null(alert_policy_new(c, err, sizeof err));
    assert_non_null(strstr(err, "alert.buckets: expected MEDIUM,HIGH"));
    cfg_destroy(c);
}

static void test_actions_invalid(void **s)
{
    (void)s;
    static const struct {
        const char *table, *want;
    } cases[] = {
        {"1:high=a,2:low=b,oops",
         "alert.actions: entry 3: expected SEGMENT:BUCKET=ACTION, got \"oops\""},
        {"1high=a", "alert.actions: entry 1: expected SEGMENT:BUCKET=ACTION, got \"1high=a\""},
        {"1:high", "alert.actions: entry 1: expected SEGMENT:BUCKET=ACTION, got \"1:high\""},
        {"x:high=a", "alert.actions: entry 1: segment \"x\": expected an id 0..4095 or *"},
        {"4096:high=a", "alert.actions: entry 1: segment \"4096\": expected an id 0..4095 or *"},
        {"-1:high=a", "alert.actions: entry 1: segment \"-1\": expected an id 0..4095 or *"},
        {":high=a", "alert.actions: entry 1: segment \"\": expected an id 0..4095 or *"},
        {"*:huge=a", "alert.actions: entry 1: bucket \"huge\": expected low, medium, high or *"},
        {"1:HIGH=a", "alert.actions: entry 1: bucket \"HIGH\": expected low, medium, high or *"},
        {"1:high=", "alert.actions: entry 1: empty action"},
        {"1:high=a,,2:low=b", "alert.actions: entry 2: empty entry (expected "
                              "SEGMENT:BUCKET=ACTION)"},
        {"1:high=a,", "alert.actions: entry 2: empty entry (expected SEGMENT:BUCKET=ACTION)"},
        {"1:high=a\tb", "alert.actions: entry 1: action contains a control character"},
        /* issue 11: a segment the model (k = 16 here) never has is rejected */
        {"16:high=a", "alert.actions: entry 1: segment 16 does not exist: model.k is 16, "
                      "segments are 0..15"},
        {"1:high=a, 01:high=b", "alert.actions: entry 2: 1:high is already set by entry 1"},
        {"*:*=a,2:low=b, * : * =c", "alert.actions: entry 3: *:* is already set by entry 1"},
        {"1:high=0123456789012345678901234567890123456789012345678901234567890123456789"
         "01234567890123456789012345",
         "alert.actions: entry 1: action is 96 bytes, at most 95"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg_t *c = mkcfg(0.7, 0, DAY, 10, cases[i].table, 0);
        char err[256] = "";
        alert_policy_t *ap = alert_policy_new(c, err, sizeof err);
        cfg_destroy(c);
        if (ap) {
            alert_policy_destroy(ap);
            fail_msg("accepted \"%s\"", cases[i].table);
        }
        assert_string_equal(err, cases[i].want);
    }
    /* 95 bytes is fine */
    alert_policy_t *ap = mkpolicy(0.7, 0, DAY, 10,
                                  "1:high=0123456789012345678901234567890123456789012345678901"
                                  "2345678901234567890123456789012345678901234",
                                  0);
    assert_int_equal(strlen(alert_policy_action(ap, 1, ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_NONE)),
                     95);
    alert_policy_destroy(ap);
}

static void test_actions_help(void **s)
{
    (void)s;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    alert_print_actions_help(f);
    fclose(f);
    assert_non_null(strstr(text, "SEGMENT:BUCKET=ACTION"));
    assert_non_null(strstr(text, "personal outreach with a retention offer"));
    assert_non_null(strstr(text, "onboarding nudge"));
    assert_non_null(strstr(text, "win-back campaign"));
    assert_non_null(strstr(text, "alert.buckets"));
    free(text);
}

/* ---- gates and the built alert ---------------------------------------------------------- */

static void test_gates(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    const double thr = 0.7;
    /* min_examples: the model has seen 1000 */
    static const struct {
        int64_t min_examples;
        double p;
        int want;
    } cases[] = {
        {1000, 0.7, 1}, {1001, 0.7, 0}, {0, 0.7, 1},    {1000, 0.69999999, 0},
        {1000, 1.0, 1}, {1001, 1.0, 0}, {1000, 0.0, 0}, {500, 0.7000001, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alert_policy_t *ap = mkpolicy(thr, 0, 14 * DAY, 10, "", cases[i].min_examples);
        feat_state_t st;
        mkstate(&st);
        alert_t a;
        alert_input_t in = tick_input("u-1", T0, cases[i].p, 1, &st, m);
        assert_int_equal(alert_policy_consider(ap, &in, &a), cases[i].want);
        assert_true(feat_cooldown_until_ms(&st) == (cases[i].want ? T0 + 14 * DAY : FEAT_NEVER));
        alert_policy_destroy(ap);
    }

    /* cooldown: set by an alert, respected until event_time reaches it */
    alert_policy_t *ap = mkpolicy(thr, 0, 14 * DAY, 10, "", 0);
    feat_state_t st;
    mkstate(&st);
    alert_t a;
    static const struct {
        int64_t t;
        int want;
        int64_t until_after;
    } seq[] = {
        {T0, 1, T0 + 14 * DAY},
        {T0 + DAY, 0, T0 + 14 * DAY},
        {T0 + 14 * DAY - 1, 0, T0 + 14 * DAY},
        {T0 + 14 * DAY, 1, T0 + 28 * DAY},
        {T0 + 20 * DAY, 0, T0 + 28 * DAY},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        alert_input_t in = tick_input("u-1", seq[i].t, 0.9, 1, &st, m);
        assert_int_equal(alert_policy_consider(ap, &in, &a), seq[i].want);
        assert_true(feat_cooldown_until_ms(&st) == seq[i].until_after);
    }
    /* an event trigger obeys the same cooldown */
    alert_input_t ev = tick_input("u-1", 0, 0.95, 1, &st, m);
    ev.trigger = (alert_trigger_t){.is_event = 1, .partition = 2, .offset = 77};
    ev.event_time_ms = T0 + 27 * DAY;
    assert_int_equal(alert_policy_consider(ap, &ev, &a), 0);
    ev.event_time_ms = T0 + 28 * DAY;
    assert_int_equal(alert_policy_consider(ap, &ev, &a), 1);
    char id[ALERT_ID_LEN + 1];
    alert_make_id(&ev.trigger, "u-1", 3, id);
    assert_string_equal(a.alert_id, id);

    /* bad inputs */
    alert_input_t bad = tick_input("", T0 + 100 * DAY, 0.9, 1, &st, m);
    assert_int_equal(alert_policy_consider(ap, &bad, &a), -1);
    bad = tick_input("u", T0 + 100 * DAY, NAN, 1, &st, m);
    assert_int_equal(alert_policy_consider(ap, &bad, &a), -1);
    bad = tick_input("u", T0 + 100 * DAY, 1.5, 1, &st, m);
    assert_int_equal(alert_policy_consider(ap, &bad, &a), -1);
    char err[64];
    model_t *small = model_new(3, 2, 1, NULL, err, sizeof err);
    assert_non_null(small);
    bad = tick_input("u", T0 + 100 * DAY, 0.9, 1, &st, small);
    assert_int_equal(alert_policy_consider(ap, &bad, &a), -1);
    model_destroy(small);
    char longid[EV_USER_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    bad = tick_input(longid, T0 + 100 * DAY, 0.9, 1, &st, m);
    assert_int_equal(alert_policy_consider(ap, &bad, &a), -1);
    longid[EV_USER_ID_MAX] = '\0'; /* exactly the maximum is fine */
    bad = tick_input(longid, T0 + 100 * DAY, 0.9, 1, &st, m);
    assert_int_equal(alert_policy_consider(ap, &bad, &a), 1);
    assert_int_equal(strlen(a.user_id), EV_USER_ID_MAX);
    alert_policy_destroy(ap);
    model_destroy(m);
}

static void test_alert_fields(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    alert_policy_t *ap = mkpolicy(0.6, 0, DAY, 30, "2:high=call,*:*=mail", 0);
    static const struct {
        int seg;
        double p;
        const char *action;
    } cases[] = {{2, 0.9, "call"}, {1, 0.99, "mail"}, {-1, 0.6, "mail"}};
    for (size_t i = 0; i < 3; i++) {
        feat_state_t st;
        mkstate(&st);
        alert_t a;
        alert_input_t in =
            tick_input("Zoë", T0 + (int64_t)i * DAY, cases[i].p, cases[i].seg, &st, m);
        assert_int_equal(alert_policy_consider(ap, &in, &a), 1);
        char id[ALERT_ID_LEN + 1];
        alert_make_id(&in.trigger, "Zoë", strlen("Zoë"), id);
        assert_string_equal(a.alert_id, id);
        assert_string_equal(a.user_id, "Zoë");
        assert_true(a.event_time_ms == in.event_time_ms);
        assert_true(a.churn_probability == cases[i].p);
        assert_int_equal(a.risk_bucket, alert_bucket_of(cases[i].p, 0.5, 0.85));
        assert_int_equal(a.segment_id, cases[i].seg);
        char label[160];
        if (cases[i].seg >= 0) {
            const char *names[FEAT_DIM];
            for (int j = 0; j < FEAT_DIM; j++)
                names[j] = feat_info[j].name;
            char expl[160];
            assert_int_equal(km_label(model_kmeans(m), cases[i].seg, names, expl, sizeof expl), 0);
            double centre[FEAT_DIM];
            assert_int_equal(model_segment_centre(m, cases[i].seg, centre), 0);
            snprintf(label, sizeof label, "%s (%.120s)",
                     alert_archetype_name(alert_archetype_of(centre)), expl);
        } else {
            snprintf(label, sizeof label, "unsegmented");
        }
        assert_string_equal(a.segment_label, label);
        assert_string_equal(a.recommended_action, cases[i].action);
        assert_true(a.model_version == (int64_t)model_version(m));
        assert_int_equal(a.arm, alert_arm_of("churnstream", "Zoë", strlen("Zoë"), 30));
        assert_int_equal(a.n_factors, 1); /* z = 0: every part 0, one factor (zero parts test) */
        double hv[FEAT_DIM];
        feat_human_values(&st, in.event_time_ms, hv);
        assert_memory_equal(a.features, hv, sizeof hv);
    }
    alert_policy_destroy(ap);
    model_destroy(m);
}

/* ---- alert.medium, stable labels, informative factors ----------------------------------- */

static void test_medium_and_labels(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    /* alert.medium: p in [MEDIUM, threshold) alerts too, in the medium bucket */
    for (int medium = 0; medium < 2; medium++) {
        cfg_t *c = mkcfg(0.7, 0, 0, 10, NULL, 0);
        char err[256] = "";
        c->alert_medium = medium;
        alert_policy_t *ap = alert_policy_new(c, err, sizeof err);
        cfg_destroy(c);
        assert_non_null(ap);
        static const struct {
            double p;
            int want_plain, want_medium;
            alert_bucket_t bucket;
        } cases[] = {{0.49, 0, 0, ALERT_LOW},
                     {0.5, 0, 1, ALERT_MEDIUM},
                     {0.69, 0, 1, ALERT_MEDIUM},
                     {0.7, 1, 1, ALERT_MEDIUM},
                     {0.85, 1, 1, ALERT_HIGH}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            feat_state_t st;
            mkstate(&st);
            alert_t a;
            alert_input_t in = tick_input("u-1", T0, cases[i].p, 1, &st, m);
            int want = medium ? cases[i].want_medium : cases[i].want_plain;
            assert_int_equal(alert_policy_consider(ap, &in, &a), want);
            if (want)
                assert_int_equal(a.risk_bucket, cases[i].bucket);
        }
        alert_policy_destroy(ap);
    }

    /* The label of a segment is fixed within a segment version, however its centre moves. */
    alert_policy_t *ap = mkpolicy(0.5, 0, 0, 10, "", 0);
    const char *names[FEAT_DIM];
    for (int j = 0; j < FEAT_DIM; j++)
        names[j] = feat_info[j].name;
    feat_state_t st;
    alert_t a;
    char first[4][160], before[4][160], after[160];
    for (int seg = 0; seg < 4; seg++) {
        mkstate(&st);
        alert_input_t in = tick_input("u-1", T0, 0.9, seg, &st, m);
        assert_int_equal(alert_policy_consider(ap, &in, &a), 1);
        snprintf(first[seg], sizeof first[seg], "%s", a.segment_label);
        assert_int_equal(model_segment_label(m, seg, names, before[seg], sizeof before[seg]), 0);
        assert_non_null(strstr(first[seg], before[seg]));
    }
    uint64_t version = model_segment_version(m);
    enum { N = 512 };
    static float z[N * FEAT_DIM];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < FEAT_DIM; j++)
            z[i * FEAT_DIM + j] = j == 5 ? 6.0f + (float)(i % 7) * 0.01f : 0.0f;
    assert_int_equal(km_partial_fit(model_kmeans(m), z, N), 0);
    assert_true(model_segment_version(m) == version); /* moved, not reseeded */
    int moved = -1;
    for (int seg = 0; seg < 4 && moved < 0; seg++) {
        assert_int_equal(model_segment_label(m, seg, names, after, sizeof after), 0);
        if (strcmp(before[seg], after) != 0)
            moved = seg;
    }
    assert_true(moved >= 0); /* some centre's own label did change */
    mkstate(&st);
    alert_input_t in = tick_input("u-1", T0 + DAY, 0.9, moved, &st, m);
    assert_int_equal(alert_policy_consider(ap, &in, &a), 1);
    assert_string_equal(a.segment_label, first[moved]);
    /* The name lives in the model snapshot: a fresh policy (a restarted process) on the model
     * decoded from its bytes names the segment as the uninterrupted one does. */
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(model_encode(m, &buf, &len), 0);
    char err[200];
    model_t *back = model_decode(buf, len, err, sizeof err);
    assert_non_null(back);
    free(buf);
    alert_policy_t *ap2 = mkpolicy(0.5, 0, 0, 10, "", 0);
    mkstate(&st);
    in.model = back;
    assert_int_equal(alert_policy_consider(ap2, &in, &a), 1);
    assert_string_equal(a.segment_label, first[moved]);
    alert_policy_destroy(ap2);
    model_destroy(back);
    alert_policy_destroy(ap);
    model_destroy(m);
}

/* Considers uid's tick scoring at T0 (p 0.9, segment 1) with the standardized row z: it fires. */
static void consider_z(alert_policy_t *ap, const char *uid, feat_state_t *st, model_t *m, float *z,
                       alert_t *a)
{
    alert_input_t in = tick_input(uid, T0, 0.9, 1, st, m);
    in.z = z;
    assert_int_equal(alert_policy_consider(ap, &in, a), 1);
}

/* Top factors carry the user's value and a direction word, and never a feature that is 0 or
 * a never-happened placeholder for the user: issue 14's user whose only event was a cancel. */
static void test_factors_informative(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    alert_policy_t *ap = mkpolicy(0.5, 0, 0, 10, "", 0);
    feat_state_t st;
    feat_state_init(&st);
    ev_event_t ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.user_id, sizeof ev.user_id, "c");
    ev.user_id_len = 1;
    ev.type = EV_SUBSCRIPTION_CANCEL;
    ev.event_time_ms = T0 - DAY;
    feat_apply(&st, &ev);
    /* z pushes every feature toward churn, the zero-valued ones most */
    float z[FEAT_DIM];
    const lr_t *lr = model_logreg(m);
    for (int j = 0; j < FEAT_DIM; j++)
        z[j] = (float)((j == FEAT_CANCEL_INTENT_30D ? 0.5 : 5.0) / lr_weight(lr, j));
    alert_t a;
    consider_z(ap, "c", &st, m, z, &a);
    double hv[FEAT_DIM];
    feat_human_values(&st, T0, hv);
    /* the only informative feature is the cancel itself */
    assert_int_equal(a.n_factors, 1);
    assert_string_equal(a.top_factors[0].feature, "cancel_intent_30d");
    assert_true(a.top_factors[0].value == hv[FEAT_CANCEL_INTENT_30D]);
    assert_true(a.top_factors[0].value > 0.9);
    assert_string_equal(a.top_factors[0].direction,
                        lr_weight(lr, FEAT_CANCEL_INTENT_30D) > 0 ? "high" : "low");
    assert_int_equal(a.kind, ALERT_AT_RISK); /* never active: nothing to win back */

    /* an active user: every factor has value != 0 and the word of its z sign */
    mkstate(&st);
    float z2[FEAT_DIM];
    for (int j = 0; j < FEAT_DIM; j++)
        z2[j] = (float)((j % 3 ? 1.0 : -1.0) / lr_weight(lr, j));
    consider_z(ap, "u", &st, m, z2, &a);
    feat_human_values(&st, T0, hv);
    assert_int_equal(a.n_factors, 3);
    for (int j = 0; j < a.n_factors; j++) {
        int i = feat_index(a.top_factors[j].feature);
        assert_true(i >= 0 && hv[i] != 0.0 && a.top_factors[j].value == hv[i]);
        int trend = i == FEAT_ACTIVITY_TREND;
        const char *want = z2[i] < 0 ? (trend ? "falling" : "low") : (trend ? "rising" : "high");
        assert_string_equal(a.top_factors[j].direction, want);
    }
    alert_policy_destroy(ap);
    model_destroy(m);
}

/* A part of exactly 0 explains nothing: with the regression's pool weight 0 and no typical
 * user yet, every part is 0 and the user gets one factor (the first informative); with some
 * parts nonzero, zeros never fill a slot. */
static void test_factors_zero_parts(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    ex_set_mode(model_experts(m), EX_MODE_BGNBD); /* the regression's parts are 0 */
    alert_policy_t *ap = mkpolicy(0.5, 0, 0, 10, "", 0);
    feat_state_t st;
    mkstate(&st);
    float z[FEAT_DIM];
    for (int j = 0; j < FEAT_DIM; j++)
        z[j] = 1.0f;
    alert_t a;
    consider_z(ap, "u", &st, m, z, &a);
    double hv[FEAT_DIM];
    feat_human_values(&st, T0, hv);
    int first = -1;
    for (int j = 0; j < FEAT_DIM && first < 0; j++)
        if (hv[j] != 0)
            first = j;
    assert_int_equal(a.n_factors, 1);
    assert_string_equal(a.top_factors[0].feature, feat_info[first].name);
    assert_true(a.top_factors[0].contribution == 0);

    /* the regression alone, one part nonzero: that one only */
    ex_set_mode(model_experts(m), EX_MODE_LOGREG);
    const lr_t *lr = model_logreg(m);
    for (int j = 0; j < FEAT_DIM; j++)
        z[j] = 0.0f;
    z[FEAT_ACTIVE_DAYS_90D] = (float)(-0.7 / lr_weight(lr, FEAT_ACTIVE_DAYS_90D));
    mkstate(&st);
    consider_z(ap, "v", &st, m, z, &a);
    assert_int_equal(a.n_factors, 1);
    assert_string_equal(a.top_factors[0].feature, "active_days_90d");
    assert_true(fabs(a.top_factors[0].contribution + 0.7) < 1e-5);
    alert_policy_destroy(ap);
    model_destroy(m);
}

/* ---- kind, trigger, created_at ------------------------------------------------------------ */

static void test_kind_rule(void **s)
{
    (void)s;
    static const struct {
        double quiet, active_days, mean_gap;
        alert_kind_t want;
    } cases[] = {
        {0, 0, 365, ALERT_AT_RISK},        /* never active (only a cancel): nothing to win back */
        {365, 0, 365, ALERT_AT_RISK},      /* same, read long after */
        {14, 1, 14, ALERT_AT_RISK},        /* one active day, within the recent window */
        {14.001, 1, 14.001, ALERT_LAPSED}, /* one active day: no rhythm, lapsed after 14 d */
        {200, 1, 200, ALERT_LAPSED},
        {14, 5, 2, ALERT_AT_RISK},     /* recent beats a fast rhythm */
        {15, 5, 10, ALERT_AT_RISK},    /* 15 <= 1.5 * 10 */
        {15.001, 5, 10, ALERT_LAPSED}, /* just past 1.5 gaps */
        {40, 3, 30, ALERT_AT_RISK},    /* a monthly buyer 40 days quiet is in rhythm */
        {46, 3, 30, ALERT_LAPSED},
        {20, 2, 365, ALERT_AT_RISK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double f[FEAT_DIM] = {0};
        f[FEAT_DAYS_SINCE_ACTIVITY] = cases[i].quiet;
        f[FEAT_ACTIVE_DAYS_LIFETIME] = cases[i].active_days;
        f[FEAT_MEAN_GAP_DAYS] = cases[i].mean_gap;
        if (alert_kind_of(f) != cases[i].want)
            fail_msg("case %zu: kind %s, want %s", i, alert_kind_name(alert_kind_of(f)),
                     alert_kind_name(cases[i].want));
    }
    assert_string_equal(alert_kind_name(ALERT_AT_RISK), "at_risk");
    assert_string_equal(alert_kind_name(ALERT_LAPSED), "lapsed");
    assert_string_equal(alert_kind_name(ALERT_KIND_UNKNOWN), "unknown");
    assert_string_equal(alert_trigger_name(ALERT_BY_TICK), "tick");
    assert_string_equal(alert_trigger_name(ALERT_BY_EVENT), "event");
    assert_string_equal(alert_trigger_name(ALERT_TRIGGER_UNKNOWN), "unknown");
}

/* The policy fills kind, trigger and created_at: a tick alert is created at its tick; an
 * event alert at the user's clock (a late event: the user's latest event, after it). */
static void test_kind_trigger_created_at(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    alert_policy_t *ap = mkpolicy(0.5, 0, 0, 10, "", 0);
    feat_state_t st;
    mkstate(&st); /* active every 2 days, last at T0 - 2 d */
    alert_t a;
    alert_input_t in = tick_input("u-1", T0, 0.9, 1, &st, m);
    assert_int_equal(alert_policy_consider(ap, &in, &a), 1);
    assert_int_equal(a.kind, ALERT_AT_RISK);
    assert_int_equal(a.trigger, ALERT_BY_TICK);
    assert_true(a.created_at_ms == T0);
    in = tick_input("u-1", T0 + 30 * DAY, 0.9, 1, &st, m); /* 32 days quiet, gap 2 */
    assert_int_equal(alert_policy_consider(ap, &in, &a), 1);
    assert_int_equal(a.kind, ALERT_LAPSED);

    /* an on-time event: created at the event; a late one: at the user's latest event */
    mkstate(&st); /* no cooldown */
    alert_input_t ev = tick_input("u-1", 0, 0.9, 1, &st, m);
    ev.trigger = (alert_trigger_t){.is_event = 1, .partition = 0, .offset = 5};
    ev.event_time_ms = feat_t_ref_ms(&st);
    assert_int_equal(alert_policy_consider(ap, &ev, &a), 1);
    assert_int_equal(a.trigger, ALERT_BY_EVENT);
    assert_true(a.created_at_ms == feat_t_ref_ms(&st));
    mkstate(&st);
    ev.event_time_ms = feat_t_ref_ms(&st) - 3 * DAY;
    assert_int_equal(alert_policy_consider(ap, &ev, &a), 1);
    assert_true(a.event_time_ms == feat_t_ref_ms(&st) - 3 * DAY);
    assert_true(a.created_at_ms == feat_t_ref_ms(&st));
    alert_policy_destroy(ap);
    model_destroy(m);
}

/* ---- top factors ------------------------------------------------------------------------ */

static void test_top_factors(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    const lr_t *lr = model_logreg(m);
    /* wanted contributions c_i (z_i = c_i / w_i), and the expected order */
    static const struct {
        double c[5]; /* features 0..4; the rest get -9 */
        int want[3];
    } cases[] = {
        {{0.5, 3.0, -1.0, 2.0, 0.1}, {1, 3, 0}},
        {{-0.5, -3.0, -1.0, -2.0, -0.1}, {4, 0, 2}}, /* no positive one: the largest */
        {{1.0, -1.0, 2.0, -2.0, -3.0}, {2, 0, 1}},   /* two positive, then the largest */
        {{1.0, 1.0, 1.0, 1.0, 2.0}, {4, 0, 1}},      /* ties: lower index first */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float z[FEAT_DIM];
        for (int j = 0; j < FEAT_DIM; j++)
            z[j] = (float)((j < 5 ? cases[k].c[j] : -9.0) / lr_weight(lr, j));
        float want_c[FEAT_DIM];
        lr_contributions(lr, z, want_c);
        alert_policy_t *ap = mkpolicy(0.5, 0, DAY, 0, "", 0);
        feat_state_t st;
        mkstate(&st);
        alert_t a;
        alert_input_t in = tick_input("u", T0, 0.9, 0, &st, m);
        in.z = z;
        assert_int_equal(alert_policy_consider(ap, &in, &a), 1);
        assert_int_equal(a.n_factors, 3);
        for (int j = 0; j < 3; j++) {
            assert_string_equal(a.top_factors[j].feature, feat_info[cases[k].want[j]].name);
            assert_true(a.top_factors[j].contribution == (double)want_c[cases[k].want[j]]);
            assert_true(fabs(a.top_factors[j].contribution - cases[k].c[cases[k].want[j]]) < 1e-5);
        }
        alert_policy_destroy(ap);
    }
    model_destroy(m);
}

/* ---- top percent ------------------------------------------------------------------------ */

#define NUSERS 40

typedef struct fake_store_s {
    feat_state_t st[NUSERS + 1];
    int touched[NUSERS + 1];
} fake_store_t;

static int uid_index(const char *uid)
{
    int i = -1;
    sscanf(uid, "u%d", &i);
    return i;
}

static feat_state_t *fs_state(void *opaque, const char *uid)
{
    fake_store_t *fs = opaque;
    int i = uid_index(uid);
    return i >= 0 && i <= NUSERS ? &fs->st[i] : NULL;
}

static void fs_touched(void *opaque, const char *uid, feat_state_t *st)
{
    fake_store_t *fs = opaque;
    assert_ptr_equal(st, &fs->st[uid_index(uid)]);
    fs->touched[uid_index(uid)]++;
}

/* Considers users 0..NUSERS-1 at tick T with p = i / 100 (i = 0..39), in the order given by
 * `perm`; returns the number of immediate (threshold) alerts. */
static int consider_tick(alert_policy_t *ap, fake_store_t *fs, model_t *m, int64_t tick,
                         const int *perm, double bump_user, double bump_p)
{
    int immediate = 0;
    for (int k = 0; k < NUSERS; k++) {
        int i = perm[k];
        char uid[16];
        snprintf(uid, sizeof uid, "u%d", i);
        double p = i == bump_user ? bump_p : i / 100.0;
        alert_input_t in = tick_input(uid, tick, p, 1, &fs->st[i], m);
        alert_t a;
        int rc = alert_policy_consider(ap, &in, &a);
        assert_true(rc == 0 || rc == 1);
        immediate += rc;
    }
    return immediate;
}

static void test_top_percent(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    int order[NUSERS], shuffled[NUSERS];
    for (int i = 0; i < NUSERS; i++)
        order[i] = shuffled[i] = i;
    rng_t r;
    rng_seed(&r, 3);
    for (int i = NUSERS - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        int t = shuffled[i];
        shuffled[i] = shuffled[j];
        shuffled[j] = t;
    }
    static const struct {
        double pct;
        int use_shuffled;
        int bump_user; /* this user's p becomes bump_p (threshold 0.9) */
        double bump_p;
        int cooldown_user; /* in cooldown at T (or -1) */
        int want_immediate;
        int want[8]; /* chosen users, in rank order, -1 terminated */
    } cases[] = {
        {10, 0, -1, 0, -1, 0, {39, 38, 37, 36, -1}},
        {10, 1, -1, 0, -1, 0, {39, 38, 37, 36, -1}}, /* order of consideration is irrelevant */
        {12.5, 0, -1, 0, -1, 0, {39, 38, 37, 36, 35, -1}},
        {2, 0, -1, 0, -1, 0, {-1}},                      /* floor(40 * 2%) = 0 */
        {10, 0, 5, 0.95, -1, 1, {39, 38, 37, -1}},       /* a threshold alert takes a slot */
        {10, 0, -1, 0, 38, 0, {39, 37, 36, -1}},         /* a user in cooldown takes a slot */
        {10, 1, 20, 0.385, -1, 0, {39, 20, 38, 37, -1}}, /* ranked by p, not by id */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        alert_policy_t *ap = mkpolicy(0.9, cases[c].pct, 7 * DAY, 10, "", 0);
        static fake_store_t fs;
        memset(&fs, 0, sizeof fs);
        for (int i = 0; i <= NUSERS; i++)
            mkstate(&fs.st[i]);
        if (cases[c].cooldown_user >= 0)
            feat_set_cooldown_until_ms(&fs.st[cases[c].cooldown_user], T0 + 1);
        int imm = consider_tick(ap, &fs, m, T0, cases[c].use_shuffled ? shuffled : order,
                                cases[c].bump_user, cases[c].bump_p);
        assert_int_equal(imm, cases[c].want_immediate);
        alert_state_access_t acc = {&fs, fs_state, fs_touched};
        const alert_t *alerts = NULL;
        size_t n = 99;
        assert_int_equal(alert_policy_tick_done(ap, T0, &acc, &alerts, &n), 0);
        size_t want_n = 0;
        while (cases[c].want[want_n] >= 0)
            want_n++;
        if (n != want_n)
            fail_msg("case %zu: %zu alerts, want %zu", c, n, want_n);
        for (size_t k = 0; k < n; k++) {
            int u = cases[c].want[k];
            char uid[16];
            snprintf(uid, sizeof uid, "u%d", u);
            assert_string_equal(alerts[k].user_id, uid);
            assert_true(alerts[k].event_time_ms == T0);
            double p = u == cases[c].bump_user ? cases[c].bump_p : u / 100.0;
            assert_true(alerts[k].churn_probability == p);
            assert_int_equal(alerts[k].risk_bucket, p >= 0.5 ? ALERT_MEDIUM : ALERT_LOW);
            alert_trigger_t t = {.is_event = 0, .tick_ms = T0};
            char id[ALERT_ID_LEN + 1];
            alert_make_id(&t, uid, strlen(uid), id);
            assert_string_equal(alerts[k].alert_id, id);
            assert_true(feat_cooldown_until_ms(&fs.st[u]) == T0 + 7 * DAY);
            assert_int_equal(fs.touched[u], 1);
            double hv[FEAT_DIM];
            feat_human_values(&fs.st[u], T0, hv);
            assert_memory_equal(alerts[k].features, hv, sizeof hv);
        }
        int touched = 0;
        for (int i = 0; i <= NUSERS; i++)
            touched += fs.touched[i];
        assert_int_equal(touched, (int)n);
        /* the tick is done: nothing pending, a second tick_done returns nothing */
        assert_int_equal(alert_policy_tick_done(ap, T0, &acc, &alerts, &n), 0);
        assert_int_equal(n, 0);
        alert_policy_destroy(ap);
    }
    model_destroy(m);
}

/* Two ticks pending at once (late partitions): the older is selected first and its alerts'
 * cooldowns hold back the same users at the newer tick; a threshold alert at the newer tick
 * holds back the user's candidate at the older one. */
static void test_top_percent_interleaved(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    alert_policy_t *ap = mkpolicy(0.9, 50, 7 * DAY, 10, "", 0);
    static fake_store_t fs;
    memset(&fs, 0, sizeof fs);
    for (int i = 0; i <= NUSERS; i++)
        mkstate(&fs.st[i]);
    alert_t a;
    /* tick T: u1 0.30, u2 0.20, u3 0.80 -> top 50% of 4 = 2; tick T+1: u1 0.40, u2 0.10,
     * u3 0.95 (threshold alert now, cooldown to T+1+7d), u4 0.05 */
    static const struct {
        int user;
        int64_t tick;
        double p;
        int want;
    } seq[] = {
        {1, T0, 0.30, 0}, {1, T0 + DAY, 0.40, 0}, {2, T0, 0.20, 0}, {2, T0 + DAY, 0.10, 0},
        {3, T0, 0.80, 0}, {3, T0 + DAY, 0.95, 1}, {4, T0, 0.01, 0}, {4, T0 + DAY, 0.05, 0},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        char uid[16];
        snprintf(uid, sizeof uid, "u%d", seq[i].user);
        alert_input_t in = tick_input(uid, seq[i].tick, seq[i].p, 0, &fs.st[seq[i].user], m);
        assert_int_equal(alert_policy_consider(ap, &in, &a), seq[i].want);
    }
    alert_state_access_t acc = {&fs, fs_state, fs_touched};
    const alert_t *alerts;
    size_t n;
    /* tick_done(T+1) runs T first. Top 2 of T: u3 (in cooldown since its alert at T+1:
     * skipped), u1 (alerts, cooldown to T+7d). Top 2 of T+1: u3 (its threshold alert),
     * u1 (in cooldown from T: skipped). */
    assert_int_equal(alert_policy_tick_done(ap, T0 + DAY, &acc, &alerts, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(alerts[0].user_id, "u1");
    assert_true(alerts[0].event_time_ms == T0);
    assert_true(alerts[0].churn_probability == 0.30);
    assert_true(feat_cooldown_until_ms(&fs.st[1]) == T0 + 7 * DAY);
    assert_true(feat_cooldown_until_ms(&fs.st[3]) == T0 + 8 * DAY);
    assert_true(feat_cooldown_until_ms(&fs.st[2]) == FEAT_NEVER);
    assert_int_equal(fs.touched[1], 1);
    assert_int_equal(fs.touched[3], 0);
    /* a snapshot of a tick already done is judged by the threshold only: nothing pends */
    alert_input_t late = tick_input("u2", T0, 0.6, 0, &fs.st[2], m);
    assert_int_equal(alert_policy_consider(ap, &late, &a), 0);
    late.p = 0.9;
    assert_int_equal(alert_policy_consider(ap, &late, &a), 1);
    assert_int_equal(alert_policy_tick_done(ap, T0 + 2 * DAY, &acc, &alerts, &n), 0);
    assert_int_equal(n, 0);
    /* event triggers never rank */
    alert_input_t ev = tick_input("u4", T0 + 2 * DAY, 0.5, 0, &fs.st[4], m);
    ev.trigger = (alert_trigger_t){.is_event = 1, .partition = 0, .offset = 1};
    assert_int_equal(alert_policy_consider(ap, &ev, &a), 0);
    assert_int_equal(alert_policy_tick_done(ap, T0 + 3 * DAY, &acc, &alerts, &n), 0);
    assert_int_equal(n, 0);
    alert_policy_destroy(ap);
    model_destroy(m);
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* alert_policy_prepare ahead of consider gives the same decisions and alerts, byte for
 * byte, as consider alone: threshold and top-percent modes, gated and ungated users. */
static void test_prepared_same(void **s)
{
    (void)s;
    model_t *m = mkmodel();
    for (int mode = 0; mode < 2; mode++) {
        alert_policy_t *plain = mkpolicy(0.55, mode ? 20 : 0, 3 * DAY, 10, NULL, 0);
        alert_policy_t *prepped = mkpolicy(0.55, mode ? 20 : 0, 3 * DAY, 10, NULL, 0);
        static fake_store_t a_fs, b_fs;
        memset(&a_fs, 0, sizeof a_fs);
        memset(&b_fs, 0, sizeof b_fs);
        for (int i = 0; i < NUSERS; i++) {
            mkstate(&a_fs.st[i]);
            b_fs.st[i] = a_fs.st[i];
        }
        rng_t r;
        rng_seed(&r, 11 + (uint64_t)mode);
        int prepared = 0, alerts = 0;
        for (int t = 0; t < 6; t++) {
            int64_t tick = T0 + (int64_t)t * DAY;
            for (int i = 0; i < NUSERS; i++) {
                char uid[16];
                snprintf(uid, sizeof uid, "u%d", i);
                float z[FEAT_DIM];
                for (int j = 0; j < FEAT_DIM; j++)
                    z[j] = (float)rng_normal(&r);
                double p = rng_uniform(&r);
                int seg = (int)rng_below(&r, 5) - 1;
                alert_input_t in = tick_input(uid, tick, p, seg, &a_fs.st[i], m);
                in.z = z;
                alert_input_t in2 = in;
                in2.state = &b_fs.st[i];
                alert_prep_t prep;
                alert_policy_prepare(prepped, &in2, &prep);
                in2.prep = &prep;
                prepared += prep.valid;
                alert_t a, b;
                memset(&a, 0, sizeof a);
                memset(&b, 0, sizeof b);
                int ra = alert_policy_consider(plain, &in, &a);
                int rb = alert_policy_consider(prepped, &in2, &b);
                assert_int_equal(ra, rb);
                assert_memory_equal(&a, &b, sizeof a);
                alerts += ra == 1;
            }
            alert_state_access_t acc_a = {
                .opaque = &a_fs, .state = fs_state, .touched = fs_touched};
            alert_state_access_t acc_b = {
                .opaque = &b_fs, .state = fs_state, .touched = fs_touched};
            const alert_t *out_a, *out_b;
            size_t na = 0, nb = 0;
            assert_int_equal(alert_policy_tick_done(plain, tick, &acc_a, &out_a, &na), 0);
            assert_int_equal(alert_policy_tick_done(prepped, tick, &acc_b, &out_b, &nb), 0);
            assert_int_equal(na, nb);
            for (size_t k = 0; k < na; k++)
                assert_memory_equal(&out_a[k], &out_b[k], sizeof out_a[k]);
            alerts += (int)na;
        }
        assert_true(prepared > 20);
        assert_true(alerts > 10);
        alert_policy_destroy(plain);
        alert_policy_destroy(prepped);
    }
    model_destroy(m);
}

static void mkalert(alert_t *a, const char *uid)
{
    memset(a, 0, sizeof *a);
    snprintf(a->alert_id, sizeof a->alert_id, "0123456789abcdef0123456789abcdef");
    snprintf(a->user_id, sizeof a->user_id, "%s", uid);
    a->event_time_ms = T0;
    a->churn_probability = 0.75;
    a->risk_bucket = ALERT_HIGH;
    a->segment_id = 3;
    snprintf(a->segment_label, sizeof a->segment_label, "high revenue_90d, falling x");
    snprintf(a->recommended_action, sizeof a->recommended_action, "win-back \"coupon\"");
    a->n_factors = 2;
    a->top_factors[0] = (alert_factor_t){feat_info[1].name, 1.5, 0.5, "high"};
    a->top_factors[1] = (alert_factor_t){feat_info[0].name, -0.25, 0, "low"};
    a->model_version = 42;
    a->arm = ALERT_HOLDOUT;
    for (size_t i = 0; i < NOFS; i++)
        a->features[i] = (double)i * 0.5;
    a->kind = ALERT_LAPSED;
    a->trigger = ALERT_BY_EVENT;
    a->created_at_ms = T0 + 1234;
}

static void test_json_exact(void **s)
{
    (void)s;
    alert_t a;
    mkalert(&a, "u-1");
    char buf[4096];
    int n = alert_to_json(&a, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    char want[4096];
    int w = snprintf(want, sizeof want,
                     "{\"alert_id\":\"0123456789abcdef0123456789abcdef\",\"user_id\":\"u-1\","
                     "\"event_time\":1700006400000,\"churn_probability\":0.75,"
                     "\"risk_bucket\":\"high\",\"segment_id\":3,"
                     "\"segment_label\":\"high revenue_90d, falling x\","
                     "\"recommended_action\":\"win-back \\\"coupon\\\"\",\"top_factors\":["
                     "{\"feature\":\"%s\",\"contribution\":1.5,\"value\":0.5,\"direction\":"
                     "\"high\"},{\"feature\":\"%s\",\"contribution\":-0.25,\"value\":0,"
                     "\"direction\":\"low\"}],\"model_version\":42,"
                     "\"arm\":\"holdout\",\"features\":{",
                     feat_info[1].name, feat_info[0].name);
    for (int i = 0; i < FEAT_DIM; i++)
        w += snprintf(want + w, sizeof want - (size_t)w, "%s\"%s\":%.17g", i ? "," : "",
                      feat_info[i].name, i * 0.5);
    snprintf(want + w, sizeof want - (size_t)w,
             "},\"kind\":\"lapsed\",\"trigger\":\"event\",\"created_at\":1700006401234}");
    assert_string_equal(buf, want);
    assert_null(strchr(buf, '\n'));

    /* every prefix capacity fails cleanly; the exact size fits */
    for (size_t cap = 0; cap <= (size_t)n; cap++)
        assert_int_equal(alert_to_json(&a, buf, cap), -1);
    assert_int_equal(alert_to_json(&a, buf, (size_t)n + 1), n);

    /* non-finite numbers are refused, never written as NaN or null */
    a.features[4] = NAN;
    assert_int_equal(alert_to_json(&a, buf, sizeof buf), -1);
    mkalert(&a, "u");
    a.top_factors[1].contribution = INFINITY;
    assert_int_equal(alert_to_json(&a, buf, sizeof buf), -1);
}

static void test_json_escaping(void **s)
{
    (void)s;
    static const struct {
        const char *uid, *want;
    } cases[] = {
        {"plain", "\"plain\""},
        {"a\"b", "\"a\\\"b\""},
        {"back\\slash", "\"back\\\\slash\""},
        {"ctl\x01\n\t\x1f\x7f", "\"ctl\\u0001\\u000a\\u0009\\u001f\\u007f\""},
        {"Zoë 日本 😀", "\"Zoë 日本 😀\""},
        {"bad\xff", "\"bad\\ufffd\""},
        {"trunc\xe6\x97", "\"trunc\\ufffd\\ufffd\""},
        {"over\xc0\xaf", "\"over\\ufffd\\ufffd\""},          /* overlong '/' */
        {"sur\xed\xa0\x80", "\"sur\\ufffd\\ufffd\\ufffd\""}, /* UTF-16 surrogate */
        {"</script>", "\"</script>\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alert_t a;
        mkalert(&a, cases[i].uid);
        char buf[4096], want[600];
        assert_true(alert_to_json(&a, buf, sizeof buf) > 0);
        snprintf(want, sizeof want, "\"user_id\":%s,", cases[i].want);
        if (!strstr(buf, want))
            fail_msg("case %zu: %s not in %s", i, want, buf);
    }
}

/* ---- Avro ------------------------------------------------------------------------------- */

static void test_avro_framings(void **s)
{
    (void)s;
    char err[256];
    assert_null(alert_encoder_new(EV_WIRE_AUTO, 0, err, sizeof err));
    alert_encoder_t *enc[3];
    static const ev_wire_t wires[3] = {EV_WIRE_PLAIN, EV_WIRE_CONFLUENT, EV_WIRE_SINGLE_OBJECT};
    for (int i = 0; i < 3; i++) {
        enc[i] = alert_encoder_new(wires[i], 0x01020304, err, sizeof err);
        assert_non_null(enc[i]);
    }
    /* the fingerprint of schemas/alert.avsc as read from disk */
    avro_schema_t file = cs_schema_load_file("schemas/alert.avsc", err, sizeof err);
    assert_non_null(file);
    uint64_t fp;
    assert_int_equal(cs_schema_fingerprint(file, &fp), 0);
    assert_true(alert_encoder_fingerprint(enc[2]) == fp);

    alert_t a;
    mkalert(&a, "Zoë");
    const void *b[3];
    size_t len[3];
    uint8_t body[2][4096];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(alert_encode(enc[i], &a, &b[i], &len[i]), 0);
        if (i < 2)
            memcpy(body[i], b[i], len[i]);
    }
    const uint8_t *conf = body[1], *so = b[2];
    assert_int_equal(len[1], len[0] + 5);
    assert_int_equal(len[2], len[0] + 10);
    static const uint8_t conf_hdr[5] = {0, 1, 2, 3, 4};
    assert_memory_equal(conf, conf_hdr, 5);
    assert_memory_equal(conf + 5, body[0], len[0]);
    assert_int_equal(so[0], 0xC3);
    assert_int_equal(so[1], 0x01);
    for (int i = 0; i < 8; i++)
        assert_int_equal(so[2 + i], (uint8_t)(fp >> (8 * i)));
    assert_memory_equal(so + 10, body[0], len[0]);

    /* Avro-C reads the plain body back with the schema file */
    avro_value_iface_t *iface = avro_generic_class_from_schema(file);
    avro_value_t v;
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    avro_reader_t rd = avro_reader_memory((const char *)body[0], (int64_t)len[0]);
    assert_int_equal(avro_value_read(rd, &v), 0);
    avro_value_t f, item, fld;
    const char *str;
    size_t sz;
    assert_int_equal(avro_value_get_by_name(&v, "user_id", &f, NULL), 0);
    assert_int_equal(avro_value_get_string(&f, &str, &sz), 0);
    assert_string_equal(str, "Zoë");
    int32_t i32;
    assert_int_equal(avro_value_get_by_name(&v, "segment_id", &f, NULL), 0);
    assert_int_equal(avro_value_get_int(&f, &i32), 0);
    assert_int_equal(i32, 3);
    int en;
    assert_int_equal(avro_value_get_by_name(&v, "arm", &f, NULL), 0);
    assert_int_equal(avro_value_get_enum(&f, &en), 0);
    assert_int_equal(en, 1);
    assert_int_equal(avro_value_get_by_name(&v, "top_factors", &f, NULL), 0);
    assert_int_equal(avro_value_get_size(&f, &sz), 0);
    assert_int_equal(sz, 2);
    assert_int_equal(avro_value_get_by_index(&f, 1, &item, NULL), 0);
    double d;
    assert_int_equal(avro_value_get_by_name(&item, "contribution", &fld, NULL), 0);
    assert_int_equal(avro_value_get_double(&fld, &d), 0);
    assert_true(d == -0.25);
    assert_int_equal(avro_value_get_by_name(&v, "features", &f, NULL), 0);
    assert_int_equal(avro_value_get_size(&f, &sz), 0);
    assert_int_equal(sz, FEAT_DIM);
    assert_int_equal(avro_value_get_by_name(&f, feat_info[5].name, &item, NULL), 0);
    assert_int_equal(avro_value_get_double(&item, &d), 0);
    assert_true(d == 2.5);
    int64_t i64;
    assert_int_equal(avro_value_get_by_name(&v, "model_version", &f, NULL), 0);
    assert_int_equal(avro_value_get_long(&f, &i64), 0);
    assert_true(i64 == 42);
    avro_reader_free(rd);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(file);

    a.n_factors = 4;
    assert_int_equal(alert_encode(enc[0], &a, &b[0], &len[0]), -1);
    a.n_factors = 0;
    assert_int_equal(alert_encode(enc[0], &a, &b[0], &len[0]), 0);
    a.alert_id[0] = '\0'; /* plain framing would start 0x00: Confluent's magic byte */
    assert_int_equal(alert_encode(enc[0], &a, &b[0], &len[0]), -1);
    for (int i = 0; i < 3; i++)
        alert_encoder_destroy(enc[i]);
    alert_encoder_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_vectors),
        cmocka_unit_test(test_bucket_boundaries),
        cmocka_unit_test(test_top_count),
        cmocka_unit_test(test_arm_share_and_stability),
        cmocka_unit_test(test_alert_id),
        cmocka_unit_test(test_actions_valid),
        cmocka_unit_test(test_actions_invalid),
        cmocka_unit_test(test_actions_help),
        cmocka_unit_test(test_gates),
        cmocka_unit_test(test_alert_fields),
        cmocka_unit_test(test_top_factors),
        cmocka_unit_test(test_top_percent),
        cmocka_unit_test(test_top_percent_interleaved),
        cmocka_unit_test(test_prepared_same),
        cmocka_unit_test(test_default_actions),
        cmocka_unit_test(test_archetypes),
        cmocka_unit_test(test_buckets_parse),
        cmocka_unit_test(test_medium_and_labels),
        cmocka_unit_test(test_factors_informative),
        cmocka_unit_test(test_factors_zero_parts),
        cmocka_unit_test(test_kind_rule),
        cmocka_unit_test(test_kind_trigger_created_at),
        cmocka_unit_test(test_json_exact),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_avro_framings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
