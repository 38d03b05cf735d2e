/* Unit tests of the user view (user_view.h): the JSON of `inspect user --json` and
 * GET /v1/users/{id} (key order, features by name, score and segment as the model says, the
 * same bucket, label, action and factors as an alert on that scoring, the stored hash typed,
 * no model, hostile strings), the %-decoding of the request's id at its bounds, the time
 * parser and the error body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "user_view.h"

#define T0  1700006400000LL /* a midnight, UTC */
#define DAY 86400000LL

static alert_policy_t *mkpolicy(void)
{
    cfg_t *c = cfg_new();
    assert_non_null(c);
    char err[256] = "";
    c->model_min_examples = 0;
    alert_policy_t *ap = alert_policy_new(c, err, sizeof err);
    cfg_destroy(c);
    if (!ap)
        fail_msg("alert_policy_new: %s", err);
    return ap;
}

/* A model with non-zero weights and seeded k-means (k = 4). */
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
    return m;
}

/* A user with purchases and sessions, last active 2 days before T0. */
static void mkrec(user_rec_t *rec)
{
    user_rec_init(rec);
    ev_event_t ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.user_id, sizeof ev.user_id, "u");
    ev.user_id_len = 1;
    for (int i = 0; i < 5; i++) {
        ev.type = i % 2 ? EV_PURCHASE : EV_SESSION_START;
        ev.amount = i % 2 ? 20.0 : 0.0;
        ev.event_time_ms = T0 - (10 - 2 * i) * DAY;
        feat_apply(&rec->feat, &ev);
    }
    rec->scored_tick_ms = T0 - DAY;
}

static json_t *build(const char *uid, const user_rec_t *rec, model_t *m, alert_policy_t *ap,
                     const st_fields_t *last, int64_t at)
{
    uv_input_t in = {
        .user_id = uid, .rec = rec, .model = m, .policy = ap, .last_score = last, .at_ms = at};
    return uv_user_json(&in);
}

/* Score and segment as the model says; bucket, label, action, kind, arm and factors as an
 * alert on the same scoring says (alert_policy_describe: one way to build them). */
static void check_model_fields(json_t *j, user_rec_t *rec, model_t *m, alert_policy_t *ap)
{
    float x[FEAT_DIM], z[FEAT_DIM], p;
    int seg;
    ex_summary_t sum;
    feat_vector(&rec->feat, T0, x);
    ex_summary_of(model_experts(m), &rec->feat, T0, &sum);
    model_score(m, x, &sum, 1, z, &p, &seg, NULL);
    assert_float_equal(json_real_value(json_object_get(j, "score")), (double)p, 1e-9);
    alert_t a;
    alert_input_t ai = {.user_id = "u-1",
                        .trigger = {.tick_ms = T0},
                        .event_time_ms = T0,
                        .p = p,
                        .seg = seg,
                        .z = z,
                        .state = &rec->feat,
                        .model = m};
    assert_int_equal(alert_policy_describe(ap, &ai, &a), 0);
    assert_string_equal(json_string_value(json_object_get(j, "bucket")),
                        alert_bucket_name(a.risk_bucket));
    json_t *sg = json_object_get(j, "segment");
    assert_int_equal(json_integer_value(json_object_get(sg, "id")), seg);
    assert_true(seg >= 0);
    assert_string_equal(json_string_value(json_object_get(sg, "label")), a.segment_label);
    const char *name = json_string_value(json_object_get(sg, "name"));
    assert_non_null(name);
    assert_int_equal(strncmp(a.segment_label, name, strlen(name)), 0); /* "name (...)" */
    assert_string_equal(json_string_value(json_object_get(j, "recommended_action")),
                        a.recommended_action);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), alert_kind_name(a.kind));
    assert_string_equal(json_string_value(json_object_get(j, "arm")), alert_arm_name(a.arm));
    json_t *tf = json_object_get(j, "top_factors");
    assert_int_equal(json_array_size(tf), a.n_factors);
    assert_true(a.n_factors >= 1);
    for (int i = 0; i < a.n_factors; i++) {
        json_t *o = json_array_get(tf, (size_t)i);
        assert_int_equal(json_object_size(o), 4);
        assert_string_equal(json_string_value(json_object_get(o, "feature")),
                            a.top_factors[i].feature);
        assert_string_equal(json_string_value(json_object_get(o, "direction")),
                            a.top_factors[i].direction);
        assert_float_equal(json_real_value(json_object_get(o, "value")), a.top_factors[i].value,
                           1e-12);
        assert_float_equal(json_real_value(json_object_get(o, "contribution")),
                           a.top_factors[i].contribution, 1e-12);
    }
    assert_int_equal(json_object_size(json_object_get(j, "experts")), EX_N);
    assert_int_equal(json_integer_value(json_object_get(j, "model_version")), model_version(m));
}

static void test_json_with_model(void **state)
{
    (void)state;
    alert_policy_t *ap = mkpolicy();
    model_t *m = mkmodel();
    user_rec_t rec;
    mkrec(&rec);
    char *names[] = {"score", "bucket",  "segment", "segment_name",
                     "kind",  "trigger", "time_ms", "alert_id"};
    char *values[] = {"0.912345",
                      "high",
                      "2",
                      "loyal",
                      "at_risk",
                      "tick",
                      "1699920000000",
                      "01f97fee437b5702d1ef839feb61b6f7"};
    st_fields_t last = {.n = 8, .names = names, .values = values};
    uint64_t version = model_version(m);
    json_t *j = build("u-1", &rec, m, ap, &last, T0);
    assert_non_null(j);
    /* Read only: no segment name frozen, no version bump (a served copy stays the stored). */
    assert_int_equal(model_version(m), version);
    for (int k = 0; k < model_k(m); k++)
        assert_int_equal(model_segment_name(m, k, &(int){0}, (char[8]){0}, 8), 0);

    /* Key order is part of the contract (a diff of two answers is readable). */
    static const char *const keys[] = {
        "user_id",     "at_ms",   "activity",      "features",           "score",
        "bucket",      "segment", "kind",          "recommended_action", "arm",
        "top_factors", "experts", "model_version", "last_score"};
    char *text = uv_dump(j);
    assert_non_null(text);
    const char *prev = text;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\":", keys[i]);
        const char *at = strstr(prev, quoted);
        if (!at)
            fail_msg("key %s missing or out of order in %s", keys[i], text);
        prev = at;
    }
    assert_int_equal(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
    assert_string_equal(json_string_value(json_object_get(j, "user_id")), "u-1");
    assert_int_equal(json_integer_value(json_object_get(j, "at_ms")), T0);

    /* Features: every one by name, the human value at T0. */
    json_t *f = json_object_get(j, "features");
    assert_int_equal(json_object_size(f), FEAT_DIM);
    double hv[FEAT_DIM];
    feat_human_values(&rec.feat, T0, hv);
    for (int i = 0; i < FEAT_DIM; i++)
        assert_float_equal(json_real_value(json_object_get(f, feat_info[i].name)), hv[i], 1e-12);
    json_t *act = json_object_get(j, "activity");
    assert_int_equal(json_integer_value(json_object_get(act, "last_ms")), T0 - 2 * DAY);
    assert_true(json_is_null(json_object_get(act, "cooldown_until_ms")));

    check_model_fields(j, &rec, m, ap);

    /* The stored hash: numbers typed, text as stored, Redis's field order kept. */
    json_t *ls = json_object_get(j, "last_score");
    assert_int_equal(json_object_size(ls), 8);
    assert_true(json_is_real(json_object_get(ls, "score")));
    assert_float_equal(json_real_value(json_object_get(ls, "score")), 0.912345, 1e-12);
    assert_int_equal(json_integer_value(json_object_get(ls, "segment")), 2);
    assert_int_equal(json_integer_value(json_object_get(ls, "time_ms")), 1699920000000LL);
    assert_string_equal(json_string_value(json_object_get(ls, "alert_id")), values[7]);
    assert_string_equal(json_string_value(json_object_get(ls, "segment_name")), "loyal");

    /* The text parses back, and building twice gives the same bytes. */
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    assert_non_null(back);
    json_t *j2 = build("u-1", &rec, m, ap, &last, T0);
    char *text2 = uv_dump(j2);
    assert_string_equal(text, text2);
    free(text);
    free(text2);
    json_decref(back);
    json_decref(j);
    json_decref(j2);
    model_destroy(m);
    alert_policy_destroy(ap);
}

static void test_json_without_model_or_score(void **state)
{
    (void)state;
    alert_policy_t *ap = mkpolicy();
    user_rec_t rec;
    user_rec_init(&rec); /* never active: every time null */
    json_t *j = build("nobody", &rec, NULL, ap, NULL, T0);
    assert_non_null(j);
    static const char *const nulls[] = {
        "score", "bucket",      "segment", "kind",          "recommended_action",
        "arm",   "top_factors", "experts", "model_version", "last_score"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        assert_true(json_is_null(json_object_get(j, nulls[i])));
    json_t *act = json_object_get(j, "activity");
    assert_true(json_is_null(json_object_get(act, "first_ms")));
    assert_true(json_is_null(json_object_get(act, "scored_tick_ms")));
    assert_int_equal(json_object_size(json_object_get(j, "features")), FEAT_DIM);
    json_decref(j);
    st_fields_t empty = {0};
    j = build("nobody", &rec, NULL, ap, &empty, T0);
    assert_true(json_is_null(json_object_get(j, "last_score")));
    json_decref(j);
    alert_policy_destroy(ap);
}

static void test_json_hostile_strings(void **state)
{
    (void)state;
    alert_policy_t *ap = mkpolicy();
    user_rec_t rec;
    mkrec(&rec);
    /* Quotes, backslash, control characters and UTF-8 in the id: escaped, parse back. */
    const char *uid = "a\"b\\c\n\x01 \xe2\x82\xac";
    json_t *j = build(uid, &rec, NULL, ap, NULL, T0);
    char *text = uv_dump(j);
    assert_non_null(text);
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    assert_non_null(back);
    assert_string_equal(json_string_value(json_object_get(back, "user_id")), uid);
    free(text);
    json_decref(back);
    json_decref(j);
    /* An id that is not UTF-8 cannot be a JSON string: refused, not mangled. */
    assert_null(build("bad\xff", &rec, NULL, ap, NULL, T0));
    /* A hash written by something else: a non-number score stays text, non-UTF-8 is null. */
    char *names[] = {"score", "note", "time_ms"};
    char *values[] = {"n/a", "\xc3\x28", "12x"};
    st_fields_t odd = {.n = 3, .names = names, .values = values};
    j = build("u", &rec, NULL, ap, &odd, T0);
    json_t *ls = json_object_get(j, "last_score");
    assert_string_equal(json_string_value(json_object_get(ls, "score")), "n/a");
    assert_true(json_is_null(json_object_get(ls, "note")));
    assert_string_equal(json_string_value(json_object_get(ls, "time_ms")), "12x");
    json_decref(j);
    alert_policy_destroy(ap);
}

typedef struct id_case_s {
    const char *raw;
    int ok;
    const char *want; /* decoded, when ok */
} id_case_t;

static void test_decode_id(void **state)
{
    (void)state;
    static const id_case_t cases[] = {
        {"u000287", 1, "u000287"},
        {"a%20b", 1, "a b"},
        {"a%2Fb/c", 1, "a/b/c"},
        {"%E2%82%AC", 1, "\xe2\x82\xac"},
        {"%e2%82%ac", 1, "\xe2\x82\xac"},
        {"\xe2\x82\xac", 1, "\xe2\x82\xac"},
        {"+", 1, "+"},
        {"", 0, NULL},
        {"%", 0, NULL},
        {"a%4", 0, NULL},
        {"%zz", 0, NULL},
        {"%4g", 0, NULL},
        {"a%00b", 0, NULL},
        {"%ff", 0, NULL},
        {"%C0%AF", 0, NULL},    /* overlong '/' */
        {"%ED%A0%80", 0, NULL}, /* a surrogate */
        {"%E2%82", 0, NULL},    /* truncated sequence */
        {"\xe2\x82", 0, NULL},
    };
    char out[EV_USER_ID_MAX + 1], why[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = 99;
        why[0] = '\0';
        int rc = uv_decode_id(cases[i].raw, out, sizeof out, &len, why, sizeof why);
        if ((rc == 0) != cases[i].ok)
            fail_msg("case %zu \"%s\": rc %d (%s)", i, cases[i].raw, rc, why);
        if (cases[i].ok) {
            assert_string_equal(out, cases[i].want);
            assert_int_equal(len, strlen(cases[i].want));
        } else {
            assert_int_equal(len, 0);
            assert_true(why[0] != '\0');
        }
    }
    /* Length bound: EV_USER_ID_MAX decoded bytes pass, one more fails, raw or escaped. */
    char raw[3 * (EV_USER_ID_MAX + 1) + 1];
    size_t len;
    memset(raw, 'x', EV_USER_ID_MAX);
    raw[EV_USER_ID_MAX] = '\0';
    assert_int_equal(uv_decode_id(raw, out, sizeof out, &len, why, sizeof why), 0);
    assert_int_equal(len, EV_USER_ID_MAX);
    raw[EV_USER_ID_MAX] = 'x';
    raw[EV_USER_ID_MAX + 1] = '\0';
    assert_int_equal(uv_decode_id(raw, out, sizeof out, &len, why, sizeof why), -1);
    assert_non_null(strstr(why, "longer than 256"));
    for (int i = 0; i < EV_USER_ID_MAX; i++)
        memcpy(raw + 3 * i, "%41", 3);
    raw[3 * EV_USER_ID_MAX] = '\0';
    assert_int_equal(uv_decode_id(raw, out, sizeof out, &len, why, sizeof why), 0);
    assert_int_equal(len, EV_USER_ID_MAX);
    memcpy(raw + 3 * EV_USER_ID_MAX, "%41", 4);
    assert_int_equal(uv_decode_id(raw, out, sizeof out, &len, why, sizeof why), -1);
    /* A buffer smaller than the id: refused, and nothing written past it. */
    char small[5] = {'#', '#', '#', '#', '#'};
    char guard = small[4];
    assert_int_equal(uv_decode_id("abcd", small, 4, &len, why, sizeof why), -1);
    assert_int_equal(small[4], guard);
    assert_int_equal(uv_decode_id("abc", small, 4, &len, why, sizeof why), 0);
    assert_string_equal(small, "abc");
    /* Random bytes: never a crash, and every accepted id is valid UTF-8 without NUL. */
    rng_t r;
    rng_seed(&r, 7);
    for (int k = 0; k < 20000; k++) {
        char in[64];
        size_t n = rng_next(&r) % (sizeof in - 1);
        for (size_t i = 0; i < n; i++) {
            uint64_t v = rng_next(&r);
            in[i] = v % 4 == 0 ? '%' : (char)(1 + v % 255);
        }
        in[n] = '\0';
        if (uv_decode_id(in, out, sizeof out, &len, why, sizeof why) == 0) {
            assert_true(len > 0 && len <= EV_USER_ID_MAX && strlen(out) == len);
            assert_true(ev_utf8_valid(out, len, NULL));
        }
    }
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_int_equal(uv_parse_time("1700006400000", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(uv_parse_time("-1000", &t), 0);
    assert_int_equal(t, -1000);
    assert_int_equal(uv_parse_time("2023-11-15", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(uv_parse_time("2023-11-15T00:00:00Z", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(uv_parse_time("", &t), -1);
    assert_int_equal(uv_parse_time("12x", &t), -1);
    assert_int_equal(uv_parse_time("99999999999999999999999", &t), -1);
    assert_int_equal(uv_parse_time("yesterday", &t), -1);
}

static void test_error_json(void **state)
{
    (void)state;
    char *s = uv_error_json("unknown user", "a\"b");
    assert_string_equal(s, "{\"error\":\"unknown user\",\"user_id\":\"a\\\"b\"}");
    free(s);
    s = uv_error_json("bad", NULL);
    assert_string_equal(s, "{\"error\":\"bad\"}");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_with_model),
        cmocka_unit_test(test_json_without_model_or_score),
        cmocka_unit_test(test_json_hostile_strings),
        cmocka_unit_test(test_decode_id),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_error_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
