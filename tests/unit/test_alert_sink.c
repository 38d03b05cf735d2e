/* Unit tests of the alert sink interface (sink.h): a zeroed sink is a no-op; the JSON-lines
 * sink writes exactly alert_to_json plus a newline per alert, in emission order, keeps going
 * after an alert with no JSON form and reports the first failure at flush (naming the file
 * and the alert), and reports a write error (/dev/full) at flush. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"

static void mkalert(alert_t *a, const char *uid, double p)
{
    memset(a, 0, sizeof *a);
    snprintf(a->alert_id, sizeof a->alert_id, "%032x", (unsigned)(p * 1000));
    snprintf(a->user_id, sizeof a->user_id, "%s", uid);
    a->event_time_ms = 1700006400000LL;
    a->churn_probability = p;
    a->risk_bucket = ALERT_HIGH;
    a->segment_id = -1;
    a->model_version = 7;
    a->created_at_ms = a->event_time_ms;
}

/* The whole of a stream written so far, NUL-terminated (caller frees). */
static char *slurp(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    assert_true(n >= 0);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    return buf;
}

static void test_zeroed_sink_is_a_noop(void **s)
{
    (void)s;
    alert_sink_t none = {0};
    alert_t a;
    mkalert(&a, "u", 0.5);
    char err[64] = "";
    assert_int_equal(alert_sink_emit(&none, &a), 0);
    assert_int_equal(alert_sink_flush(&none, err, sizeof err), 0);
    assert_string_equal(err, "");
    alert_sink_close(&none);
    alert_sink_close(NULL);
    assert_int_equal(alert_sink_emit(NULL, &a), 0);
}

static void test_jsonl_lines_in_order(void **s)
{
    (void)s;
    FILE *f = tmpfile();
    assert_non_null(f);
    alert_sink_t sink;
    char err[256] = "";
    assert_int_equal(alert_sink_jsonl(&sink, f, "alerts.jsonl", err, sizeof err), 0);
    const char *uids[] = {"u-2", "u-1", "we\"ird\n"};
    char want[3 * 4096] = "";
    size_t w = 0;
    for (size_t i = 0; i < 3; i++) {
        alert_t a;
        mkalert(&a, uids[i], 0.9 - 0.1 * (double)i);
        assert_int_equal(alert_sink_emit(&sink, &a), 0);
        int n = alert_to_json(&a, want + w, sizeof want - w);
        assert_true(n > 0);
        w += (size_t)n;
        want[w++] = '\n';
        want[w] = 0;
    }
    assert_int_equal(alert_sink_flush(&sink, err, sizeof err), 0);
    alert_sink_close(&sink);
    assert_null(sink.self);
    assert_null(sink.emit);
    char *got = slurp(f);
    assert_string_equal(got, want);
    free(got);
    fclose(f);
}

static void test_jsonl_no_json_form(void **s)
{
    (void)s;
    FILE *f = tmpfile();
    assert_non_null(f);
    alert_sink_t sink;
    char err[256] = "";
    assert_int_equal(alert_sink_jsonl(&sink, f, "out/a.jsonl", err, sizeof err), 0);
    alert_t bad, good;
    mkalert(&bad, "u-nan", 0.5);
    bad.features[2] = NAN;
    mkalert(&good, "u-ok", 0.75);
    assert_int_equal(alert_sink_emit(&sink, &bad), -1);
    assert_int_equal(alert_sink_emit(&sink, &good), 0); /* later alerts still go out */
    assert_int_equal(alert_sink_flush(&sink, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want,
             "out/a.jsonl: alert %s has no JSON form (a number that is not "
             "finite)",
             bad.alert_id);
    assert_string_equal(err, want);
    alert_sink_close(&sink);
    char *got = slurp(f);
    assert_non_null(strstr(got, "\"user_id\":\"u-ok\""));
    assert_null(strstr(got, "u-nan"));
    free(got);
    fclose(f);
}

static void test_jsonl_write_error(void **s)
{
    (void)s;
    FILE *f = fopen("/dev/full", "w");
    if (!f)
        skip();
    alert_sink_t sink;
    char err[256] = "";
    assert_int_equal(alert_sink_jsonl(&sink, f, "full.jsonl", err, sizeof err), 0);
    alert_t a;
    mkalert(&a, "u", 0.5);
    alert_sink_emit(&sink, &a); /* buffered: the error may only show at the flush */
    assert_int_equal(alert_sink_flush(&sink, err, sizeof err), -1);
    assert_non_null(strstr(err, "full.jsonl: write failed: "));
    alert_sink_close(&sink);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroed_sink_is_a_noop),
        cmocka_unit_test(test_jsonl_lines_in_order),
        cmocka_unit_test(test_jsonl_no_json_form),
        cmocka_unit_test(test_jsonl_write_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
