/* JSON lines events: a table of accepted lines with exact fields, and of rejected lines with
 * their reason and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>

#include <cmocka.h>

#include "jsonl.h"

static void test_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        const char *user;
        int64_t t;
        ev_type_t type;
        double amount;
        const char *category; /* NULL = absent/null */
    } cases[] = {
        {"{\"user_id\":\"u1\",\"event_time\":1704189600000,\"event_type\":\"purchase\","
         "\"amount\":10.5}",
         "u1", 1704189600000LL, EV_PURCHASE, 10.5, NULL},
        {" { \"event_time\" : \"2024-01-02T10:00:00Z\" , \"user_id\" : 17850 } ", "17850",
         1704189600000LL, EV_OTHER, 0, NULL},
        {"{\"user_id\":\"a b:c\",\"event_time\":\"2024-01-02 10:00:00.250\","
         "\"event_type\":\"wishlist\",\"category\":\"toys\",\"x\":[1]}",
         NULL, 0, 0, 0, NULL}, /* nested value: rejected below, placeholder skipped */
        {"{\"user_id\":\"\\u00e9\\ud83d\\ude00\\\"q\\\\\",\"event_time\":0,\"channel\":null,"
         "\"category\":\"t\\u00f6ys\",\"flag\":true,\"n\":null}",
         "\xc3\xa9\xf0\x9f\x98\x80\"q\\", 0, EV_OTHER, 0, "t\xc3\xb6ys"},
        {"{\"user_id\":\"u\",\"event_time\":\"2024-01-02T10:00:00.5+00:00\",\"amount\":-3e2,"
         "\"event_type\":\"refund\"}",
         "u", 1704189600500LL, EV_REFUND, -300, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!cases[i].user)
            continue;
        ev_event_t ev;
        char why[128] = "";
        ev_reason_t r = jl_parse_event(cases[i].line, strlen(cases[i].line), &ev, why, sizeof(why));
        if (r != EV_OK)
            fail_msg("case %zu rejected: %s", i, why);
        assert_string_equal(ev.user_id, cases[i].user);
        assert_int_equal(ev.user_id_len, strlen(cases[i].user));
        assert_int_equal(ev.event_time_ms, cases[i].t);
        assert_int_equal(ev.type, cases[i].type);
        assert_float_equal(ev.amount, cases[i].amount, 0);
        if (cases[i].category) {
            assert_int_equal(ev.has_category, 1);
            assert_string_equal(ev.category, cases[i].category);
        } else {
            assert_int_equal(ev.has_category, 0);
        }
        assert_int_equal(ev.has_channel, 0);
    }
}

static void test_rejected(void **state)
{
    (void)state;
    char long_id[400];
    snprintf(long_id, sizeof(long_id), "{\"user_id\":\"%0300d\",\"event_time\":1}", 7);
    static const struct {
        const char *line;
        ev_reason_t reason;
        const char *why; /* substring */
    } cases[] = {
        {"", EV_ERR_UNDECODABLE, "expected a JSON object"},
        {"[1,2]", EV_ERR_UNDECODABLE, "expected a JSON object"},
        {"{\"user_id\":\"u\"", EV_ERR_UNDECODABLE, "expected ',' or '}'"},
        {"{\"user_id\":\"u\",\"event_time\":1} x", EV_ERR_UNDECODABLE, "trailing characters"},
        {"{\"user_id\":\"u\"}", EV_ERR_UNDECODABLE, "event_time missing"},
        {"{\"event_time\":1}", EV_ERR_MISSING_USER_ID, "user_id missing"},
        {"{\"user_id\":\"\",\"event_time\":1}", EV_ERR_MISSING_USER_ID, "empty"},
        {"{\"user_id\":null,\"event_time\":1}", EV_ERR_MISSING_USER_ID, "null"},
        {"{\"user_id\":\"u\",\"event_time\":1,\"amount\":1e999}", EV_ERR_NON_FINITE_AMOUNT,
         "not finite"},
        {"{\"user_id\":\"u\",\"event_time\":1,\"amount\":\"3\"}", EV_ERR_UNDECODABLE,
         "amount: expected a number"},
        {"{\"user_id\":\"u\",\"event_time\":1.5}", EV_ERR_UNDECODABLE, "integer epoch"},
        {"{\"user_id\":\"u\",\"event_time\":\"yesterday\"}", EV_ERR_UNDECODABLE, "ISO-8601"},
        {"{\"user_id\":\"u\",\"event_time\":99999999999999999999999}", EV_ERR_UNDECODABLE,
         "integer epoch"},
        {"{\"user_id\":\"u\\u0000v\",\"event_time\":1}", EV_ERR_UNDECODABLE, "\\u0000"},
        {"{\"user_id\":\"\\ud800\",\"event_time\":1}", EV_ERR_UNDECODABLE, "surrogate"},
        /* issue 11: raw bytes that are not UTF-8 in an id */
        {"{\"user_id\":\"u\xff\",\"event_time\":1}", EV_ERR_INVALID_UTF8, "not valid UTF-8"},
        {"{\"user_id\":\"\xc3\",\"event_time\":1}", EV_ERR_INVALID_UTF8, "not valid UTF-8"},
        {"{\"user_id\":\"u\\q\",\"event_time\":1}", EV_ERR_UNDECODABLE, "bad escape"},
        {"{\"user_id\":\"u\tv\",\"event_time\":1}", EV_ERR_UNDECODABLE, "control character"},
        {"{\"user_id\":\"u\",\"event_time\":1,\"x\":{\"y\":1}}", EV_ERR_UNDECODABLE, "nested"},
        {"{\"user_id\":-5,\"event_time\":1}", EV_ERR_UNDECODABLE, "non-negative integer"},
        {"{\"user_id\":\"u\",\"event_time\":1,\"category\":7}", EV_ERR_UNDECODABLE,
         "category: expected a string"},
        {"{user_id:\"u\"}", EV_ERR_UNDECODABLE, "expected a quoted key"},
        {"{\"user_id\" \"u\"}", EV_ERR_UNDECODABLE, "expected ':'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) + 1; i++) {
        const char *line = i < sizeof(cases) / sizeof(cases[0]) ? cases[i].line : long_id;
        ev_reason_t want =
            i < sizeof(cases) / sizeof(cases[0]) ? cases[i].reason : EV_ERR_USER_ID_TOO_LONG;
        const char *sub = i < sizeof(cases) / sizeof(cases[0]) ? cases[i].why : "more than 256";
        ev_event_t ev;
        char why[160] = "";
        ev_reason_t r = jl_parse_event(line, strlen(line), &ev, why, sizeof(why));
        if (r != want || !strstr(why, sub))
            fail_msg("case %zu (%s): got %s \"%s\", want %s \"%s\"", i, line, ev_reason_code(r),
                     why, ev_reason_code(want), sub);
    }
}

static void test_reader_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/test_jsonl_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    /* a long line (> the reader's first buffer), a blank line, a bad line */
    fprintf(f, "{\"user_id\":\"a\",\"event_time\":1,\"pad\":\"");
    for (int i = 0; i < 100000; i++)
        fputc('x', f);
    fprintf(f, "\"}\n\n  \n{oops}\n{\"user_id\":\"b\",\"event_time\":2}");
    fclose(f);
    char err[256];
    jl_reader_t *r = jl_reader_open(path, err, sizeof(err));
    assert_non_null(r);
    ev_event_t ev;
    ev_reason_t reason;
    char why[160];
    long line;
    /* the 100,000-byte string is over the value limit: rejected, but the reader goes on */
    assert_int_equal(jl_reader_next(r, &ev, &reason, why, sizeof(why), &line), 1);
    assert_int_equal(reason, EV_ERR_UNDECODABLE);
    assert_int_equal(line, 1);
    assert_int_equal(jl_reader_next(r, &ev, &reason, why, sizeof(why), &line), 1);
    assert_int_equal(reason, EV_ERR_UNDECODABLE);
    assert_int_equal(line, 4);
    assert_int_equal(jl_reader_next(r, &ev, &reason, why, sizeof(why), &line), 1);
    assert_int_equal(reason, EV_OK);
    assert_string_equal(ev.user_id, "b");
    assert_int_equal(line, 5);
    assert_int_equal(jl_reader_next(r, &ev, &reason, why, sizeof(why), &line), 0);
    jl_reader_close(r);
    unlink(path);
    assert_null(jl_reader_open("/nonexistent/x.jsonl", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/x.jsonl"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_reader_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
