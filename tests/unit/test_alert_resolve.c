/* Unit tests for writer-schema resolution of alerts (processor/alerts/alert_resolve.h): alerts of
 * the built-in schema still decode; alerts of the newer schema (tests/fixtures/alert-schemas/
 * 3.avsc, the retention branch's: kind, trigger, created_at and the factors' value and
 * direction added with defaults) decode through the schema
 * directory in every framing, and only through it; incompatible writer schemas are refused
 * when loaded. Run from the repository root (the Makefile does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert.h"
#include "alert_resolve.h"
#include "codec_internal.h"

#define DIR_V3 "tests/fixtures/alert-schemas"

static void mkalert(alert_t *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->alert_id, sizeof a->alert_id, "0123456789abcdef0123456789abcdef");
    snprintf(a->user_id, sizeof a->user_id, "u000123");
    a->event_time_ms = 1714694400000LL;
    a->churn_probability = 0.87;
    a->risk_bucket = ALERT_HIGH;
    a->segment_id = 3;
    snprintf(a->segment_label, sizeof a->segment_label, "low active_days_30d");
    snprintf(a->recommended_action, sizeof a->recommended_action, "win-back coupon");
    a->n_factors = 2;
    for (int i = 0; i < a->n_factors; i++)
        a->top_factors[i] = (alert_factor_t){.feature = feat_info[i + 2].name,
                                             .contribution = 1.25 - i,
                                             .value = 2.0 + i,
                                             .direction = "high"};
    a->model_version = 42;
    a->arm = ALERT_HOLDOUT;
    for (int i = 0; i < FEAT_DIM; i++)
        a->features[i] = (double)i * 0.5;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *s = NULL;
    size_t cap = 0;
    assert_true(getdelim(&s, &cap, '\0', f) > 0);
    fclose(f);
    return s;
}

/* A v3 datum, written by Avro-C's generic writer with the newer schema: every v1 field, the
 * factors' new value and direction, kind=lapsed, trigger=event, created_at. */
static void set_str(avro_value_t *rec, const char *name, const char *v)
{
    avro_value_t f;
    assert_int_equal(avro_value_get_by_name(rec, name, &f, NULL), 0);
    assert_int_equal(avro_value_set_string(&f, v), 0);
}

static size_t v3_body(const alert_t *a, uint8_t *out)
{
    char *json = slurp(DIR_V3 "/3.avsc");
    avro_schema_t sch;
    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &sch), 0);
    free(json);
    avro_value_iface_t *iface = avro_generic_class_from_schema(sch);
    avro_value_t v, f, item, g;
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    set_str(&v, "alert_id", a->alert_id);
    set_str(&v, "user_id", a->user_id);
    set_str(&v, "segment_label", a->segment_label);
    set_str(&v, "recommended_action", a->recommended_action);
    avro_value_get_by_name(&v, "event_time", &f, NULL);
    avro_value_set_long(&f, a->event_time_ms);
    avro_value_get_by_name(&v, "churn_probability", &f, NULL);
    avro_value_set_double(&f, a->churn_probability);
    avro_value_get_by_name(&v, "risk_bucket", &f, NULL);
    avro_value_set_enum(&f, (int)a->risk_bucket);
    avro_value_get_by_name(&v, "segment_id", &f, NULL);
    avro_value_set_int(&f, a->segment_id);
    avro_value_get_by_name(&v, "model_version", &f, NULL);
    avro_value_set_long(&f, a->model_version);
    avro_value_get_by_name(&v, "arm", &f, NULL);
    avro_value_set_enum(&f, (int)a->arm);
    avro_value_get_by_name(&v, "top_factors", &f, NULL);
    for (int i = 0; i < a->n_factors; i++) {
        assert_int_equal(avro_value_append(&f, &item, NULL), 0);
        set_str(&item, "feature", a->top_factors[i].feature);
        set_str(&item, "direction", "high");
        avro_value_get_by_name(&item, "contribution", &g, NULL);
        avro_value_set_double(&g, a->top_factors[i].contribution);
        avro_value_get_by_name(&item, "value", &g, NULL);
        avro_value_set_double(&g, 7.5);
    }
    avro_value_get_by_name(&v, "features", &f, NULL);
    for (int i = 0; i < FEAT_DIM; i++) {
        assert_int_equal(avro_value_add(&f, feat_info[i].name, &g, NULL, NULL), 0);
        avro_value_set_double(&g, a->features[i]);
    }
    avro_value_get_by_name(&v, "kind", &f, NULL);
    avro_value_set_enum(&f, 1);
    avro_value_get_by_name(&v, "trigger", &f, NULL);
    avro_value_set_enum(&f, 1);
    avro_value_get_by_name(&v, "created_at", &f, NULL);
    avro_value_set_long(&f, 1714694400123LL);
    avro_writer_t w = avro_writer_memory((char *)out, 8192);
    assert_int_equal(avro_value_write(w, &v), 0);
    size_t n = (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(sch);
    return n;
}

static uint64_t v3_fingerprint(void)
{
    char *json = slurp(DIR_V3 "/3.avsc");
    avro_schema_t s;
    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &s), 0);
    uint64_t fp = 0;
    assert_int_equal(cs_schema_fingerprint(s, &fp), 0);
    avro_schema_decref(s);
    free(json);
    return fp;
}

static void check_same(const alert_t *a, const alert_t *b)
{
    assert_string_equal(a->alert_id, b->alert_id);
    assert_string_equal(a->user_id, b->user_id);
    assert_true(a->churn_probability == b->churn_probability);
    assert_int_equal(a->risk_bucket, b->risk_bucket);
    assert_int_equal(a->segment_id, b->segment_id);
    assert_string_equal(a->segment_label, b->segment_label);
    assert_string_equal(a->recommended_action, b->recommended_action);
    assert_int_equal(a->n_factors, b->n_factors);
    for (int i = 0; i < a->n_factors; i++) {
        assert_string_equal(a->top_factors[i].feature, b->top_factors[i].feature);
        assert_true(a->top_factors[i].contribution == b->top_factors[i].contribution);
    }
    assert_int_equal(a->arm, b->arm);
}

static void test_old_alerts_without_dir(void **s)
{
    (void)s;
    char err[256], why[256];
    ar_t *ar = ar_new(NULL, err, sizeof err);
    assert_non_null(ar);
    assert_int_equal(ar_writer_count(ar), 0);
    alert_t a, got;
    mkalert(&a);
    alert_encoder_t *enc = alert_encoder_new(EV_WIRE_CONFLUENT, 2, err, sizeof err);
    const void *buf;
    size_t len;
    assert_int_equal(alert_encode(enc, &a, &buf, &len), 0);
    assert_int_equal(ar_decode(ar, buf, len, &got, why, sizeof why), 0);
    check_same(&a, &got);
    alert_encoder_destroy(enc);

    /* fixture 3.avsc is the built-in schema now (alert.avsc version 2): read without a dir */
    uint8_t body[8192];
    size_t n = v3_body(&a, body);
    assert_int_equal(ar_decode(ar, body, n, &got, why, sizeof why), 0);
    check_same(&a, &got);
    /* a newer writer (one more field at the end, here a long) cannot be read without its
     * writer schema: a clear error, no guess */
    body[n++] = 0x02;
    assert_int_equal(ar_decode(ar, body, n, &got, why, sizeof why), -1);
    assert_true(why[0] != '\0');
    ar_destroy(ar);
}

static void test_new_alerts_every_framing(void **s)
{
    (void)s;
    char err[256], why[256];
    ar_t *ar = ar_new(DIR_V3, err, sizeof err);
    if (!ar)
        fail_msg("%s", err);
    assert_int_equal(ar_writer_count(ar), 1);
    alert_t a, got;
    mkalert(&a);
    uint8_t body[8192], msg[8300];
    size_t n = v3_body(&a, body);

    /* plain */
    memset(&got, 0, sizeof got);
    if (ar_decode(ar, body, n, &got, why, sizeof why) != 0)
        fail_msg("plain: %s", why);
    check_same(&a, &got);

    /* Confluent id 3 (named by the file) and an id no file names (each schema tried) */
    for (int id = 3; id <= 4; id++) {
        msg[0] = 0;
        msg[1] = msg[2] = msg[3] = 0;
        msg[4] = (uint8_t)id;
        memcpy(msg + 5, body, n);
        memset(&got, 0, sizeof got);
        if (ar_decode(ar, msg, n + 5, &got, why, sizeof why) != 0)
            fail_msg("confluent id %d: %s", id, why);
        check_same(&a, &got);
    }

    /* single-object with the v3 fingerprint; an unknown fingerprint is refused */
    size_t hl = cs_wire_header(EV_WIRE_SINGLE_OBJECT, 0, v3_fingerprint(), msg);
    memcpy(msg + hl, body, n);
    memset(&got, 0, sizeof got);
    if (ar_decode(ar, msg, hl + n, &got, why, sizeof why) != 0)
        fail_msg("single-object: %s", why);
    check_same(&a, &got);
    msg[5] ^= 0xff;
    assert_int_equal(ar_decode(ar, msg, hl + n, &got, why, sizeof why), -1);
    assert_non_null(strstr(why, "fingerprint"));

    /* old alerts still decode with the directory loaded */
    alert_encoder_t *enc = alert_encoder_new(EV_WIRE_PLAIN, 0, err, sizeof err);
    const void *buf;
    size_t len;
    assert_int_equal(alert_encode(enc, &a, &buf, &len), 0);
    assert_int_equal(ar_decode(ar, buf, len, &got, why, sizeof why), 0);
    alert_encoder_destroy(enc);

    /* truncated v3 datum: refused by the walk, never read past the end */
    assert_int_equal(ar_decode(ar, body, n - 1, &got, why, sizeof why), -1);
    ar_destroy(ar);
}

static void test_incompatible_writers_refused(void **s)
{
    (void)s;
    char err[256];
    ar_t *ar = ar_new(NULL, err, sizeof err);
    assert_non_null(ar);
    char *json = slurp(DIR_V3 "/3.avsc");
    /* Arm symbols swapped: Avro-C would copy indexes and flip every arm */
    char *p = strstr(json, "[\"treatment\", \"holdout\"]");
    assert_non_null(p);
    memcpy(p, "[\"holdout\", \"treatment\"]", strlen("[\"holdout\", \"treatment\"]"));
    assert_int_equal(ar_add_writer(ar, json, 9, "swapped.avsc", err, sizeof err), -1);
    assert_non_null(strstr(err, "swapped.avsc: field arm"));
    free(json);
    /* user_id removed (no default in the reader): does not resolve */
    const char *no_user =
        "{\"type\":\"record\",\"name\":\"ChurnAlert\",\"namespace\":\"io.churnstream\","
        "\"fields\":[{\"name\":\"alert_id\",\"type\":\"string\"},{\"name\":\"risk_bucket\","
        "\"type\":{\"type\":\"enum\",\"name\":\"RiskBucket\",\"symbols\":[\"low\",\"medium\","
        "\"high\"]}},{\"name\":\"arm\",\"type\":{\"type\":\"enum\",\"name\":\"Arm\","
        "\"symbols\":[\"treatment\",\"holdout\"]}}]}";
    assert_int_equal(ar_add_writer(ar, no_user, -1, "partial.avsc", err, sizeof err), -1);
    assert_non_null(strstr(err, "partial.avsc: does not resolve"));
    assert_int_equal(ar_add_writer(ar, "{\"type\":\"record\",\"name\":\"Event\",\"fields\":[]}", -1,
                                   "event.avsc", err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "not a ChurnAlert"));
    assert_int_equal(ar_writer_count(ar), 0);
    ar_destroy(ar);
    assert_null(ar_new("/nonexistent-dir", err, sizeof err));
    assert_non_null(strstr(err, "alerts.schemas_dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_alerts_without_dir),
        cmocka_unit_test(test_new_alerts_every_framing),
        cmocka_unit_test(test_incompatible_writers_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
