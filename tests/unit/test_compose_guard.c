/* Unit tests for the guardrails of `churnstream compose` (processor/daemon/compose_guard.h): the
 * checker's table of accepted and rejected model texts, normalization, and the templates
 * whose slots churnstream fills from the alert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "alert.h"
#include "compose_guard.h"

static void test_check_table(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        cg_reason_t want;
    } cases[] = {
        {"We miss you and would love to welcome you back soon.", CG_OK},
        {"  \n\t ", CG_EMPTY},
        {"", CG_EMPTY},
        {"Hi there", CG_TOO_SHORT},
        {"Come back and get 20 off your next order!", CG_DIGIT},
        {"Enjoy a discount of ten percent, that is 10% off.", CG_DIGIT},
        {"Call us any time at our friendly help line, open 24/7.", CG_DIGIT},
        {"Come back for a special gift worth $ ten dollars.", CG_CURRENCY},
        {"Come back for a special gift worth ten \xe2\x82\xac today.", CG_CURRENCY},
        {"Come back for a special gift worth ten \xc2\xa3 today.", CG_CURRENCY},
        {"Come back for a special gift worth ten EUR today.", CG_CURRENCY},
        {"Come back and enjoy free shipping on your next order.", CG_OFFER},
        {"We have a little gift waiting for you when you return.", CG_OFFER},
        {"Use your personal coupon and come back to us soon.", CG_OFFER},
        {"Get a discount on anything you like, just for you.", CG_OFFER},
        {"Your loyalty points are waiting, come back and use them.", CG_OFFER},
        {"Visit https://example.org/deal to see what is new.", CG_URL},
        {"Visit www.example.org to see what is new for you.", CG_URL},
        {"Visit shop.example.com to see what is new for you.", CG_URL},
        {"Write to help@example.org and tell us what you think.", CG_URL},
        {"Dear {name}, we would love to see you back soon.", CG_SLOT},
        {"We would love to see you back soon.<|im_end|>", CG_SLOT},
        {"Hello, I am Sarah from the team and we miss you.", CG_NAME},
        {"Chatbot: we miss you, and the Acme team does too.", CG_NAME},
        {"We will follow up with you soon. Do not use numbers or names.", CG_ECHO},
        {"Customer segment: hibernating and quiet. Churn risk: medium.", CG_ECHO},
        {"customer segment: hibernating and quiet for some weeks now.", CG_ECHO},
        {"Write to us any time, we are always glad to hear from you.", CG_ECHO},
        {"As a customer care writer, I can offer you a nice surprise.", CG_ECHO},
        /* not false positives: sentence starts, "I" and its contractions */
        {"Hi! I'm glad. I miss you. We would love to see you. \"Come back\", we say.", CG_OK},
        /* not false positives: a sentence-ending period, words that contain codes */
        {"We would love to see you back. Come. See what is new.", CG_OK},
        {"EURopean friends are always welcome back here.", CG_OK},
        /* not false positives: "free" alone, offer words inside other words */
        {"Feel free to write to us, we would love to hear from you.", CG_OK},
        {"We are thankful for the gifted people who shop with us.", CG_OK},
        {"Two little gifts are waiting for you, come and see.", CG_OFFER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cg_reason_t got = cg_check(cases[i].text, CG_MESSAGE_MIN, CG_MESSAGE_MAX, NULL);
        if (got != cases[i].want)
            fail_msg("case %zu \"%s\": got %s, want %s", i, cases[i].text, cg_reason_name(got),
                     cg_reason_name(cases[i].want));
    }
    assert_int_equal(cg_check(NULL, 1, 10, NULL), CG_EMPTY);
    /* the approved action's own offer words are its repetition, not an invention */
    assert_int_equal(cg_check("Use your coupon and come back to us soon.", CG_MESSAGE_MIN,
                              CG_MESSAGE_MAX, "coupon for the next order"),
                     CG_OK);
    assert_int_equal(cg_check("Use your coupon and enjoy free shipping soon.", CG_MESSAGE_MIN,
                              CG_MESSAGE_MAX, "coupon for the next order"),
                     CG_OFFER);
}

static void test_check_length_bounds(void **state)
{
    (void)state;
    char buf[CG_MESSAGE_MAX + 2];
    memset(buf, 'a', sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    assert_int_equal(cg_check(buf, CG_MESSAGE_MIN, CG_MESSAGE_MAX, NULL),
                     CG_TOO_LONG); /* max + 1 */
    buf[CG_MESSAGE_MAX] = '\0';
    assert_int_equal(cg_check(buf, CG_MESSAGE_MIN, CG_MESSAGE_MAX, NULL), CG_OK); /* exactly max */
    buf[CG_MESSAGE_MIN] = '\0';
    assert_int_equal(cg_check(buf, CG_MESSAGE_MIN, CG_MESSAGE_MAX, NULL), CG_OK); /* exactly min */
    buf[CG_MESSAGE_MIN - 1] = '\0';
    assert_int_equal(cg_check(buf, CG_MESSAGE_MIN, CG_MESSAGE_MAX, NULL), CG_TOO_SHORT);
    /* surrounding white space does not count toward the length */
    assert_int_equal(cg_check("   aaaaaaaaaa   ", 11, 100, NULL), CG_TOO_SHORT);
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(cg_reason_name(CG_OK), "ok");
    assert_string_equal(cg_reason_name(CG_DIGIT), "digit");
    assert_string_equal(cg_reason_name(CG_BREAKER_OPEN), "breaker_open");
    assert_string_equal(cg_reason_name(CG_REASON_COUNT), "unknown");
    for (int i = 0; i < CG_REASON_COUNT; i++)
        assert_non_null(cg_reason_name((cg_reason_t)i));
}

static void test_normalize(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(cg_normalize("  \"Hello\n\n  there,\tfriend.\"  ", out, sizeof out), 20);
    assert_string_equal(out, "Hello there, friend.");
    assert_int_equal(cg_normalize("abcdef", out, 4), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(cg_normalize("", out, sizeof out), 0);
    assert_string_equal(out, "");
    /* white space inside the quotes goes too (fuzz_guard) */
    assert_int_equal(cg_normalize("\" Come back \n\"", out, sizeof out), 9);
    assert_string_equal(out, "Come back");
    assert_int_equal(cg_normalize("' '", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(cg_normalize("\"a \"", out, sizeof out), 1);
    assert_string_equal(out, "a");
    /* truncated at the cap, never on a space (fuzz_guard): "abc" fills 4 bytes, the space
     * after it has no room for a byte after it */
    assert_int_equal(cg_normalize("abc  de", out, 4), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(cg_normalize("ab  de", out, 4), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(cg_normalize("a  de", out, 4), 3);
    assert_string_equal(out, "a d");
}

static void test_first_sentences(void **state)
{
    (void)state;
    char t1[] = "One. Two! Three? Four.";
    assert_int_equal(cg_first_sentences(t1, 2), strlen("One. Two!"));
    assert_string_equal(t1, "One. Two!");
    char t2[] = "No end mark here";
    assert_int_equal(cg_first_sentences(t2, 2), strlen(t2));
    char t3[] = "Version 1.5 is fine. Next.";
    cg_first_sentences(t3, 1); /* "1.5": a period not followed by a space ends nothing */
    assert_string_equal(t3, "Version 1.5 is fine.");
}

static void test_words_of(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(cg_words_of("activity_trend_7d_30d", out, sizeof out), 14);
    assert_string_equal(out, "activity trend");
    cg_words_of("days_since_activity", out, sizeof out);
    assert_string_equal(out, "days since activity");
    cg_words_of("win-back coupon", out, sizeof out);
    assert_string_equal(out, "win back coupon");
    cg_words_of("10% off", out, sizeof out);
    assert_string_equal(out, "off");
    cg_words_of("abcdef", out, 4);
    assert_string_equal(out, "abc");
}

static alert_t sample_alert(void)
{
    alert_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.alert_id, sizeof a.alert_id, "%s", "0123456789abcdef0123456789abcdef");
    snprintf(a.user_id, sizeof a.user_id, "%s", "u42");
    a.churn_probability = 0.873;
    a.risk_bucket = ALERT_HIGH;
    a.segment_id = 3;
    snprintf(a.segment_label, sizeof a.segment_label, "%s", "low active_days_30d");
    snprintf(a.recommended_action, sizeof a.recommended_action, "%s", "10% win-back coupon");
    a.top_factors[0].feature = "days_since_activity";
    a.top_factors[0].contribution = 1.2;
    a.top_factors[1].feature = "active_days_30d";
    a.top_factors[1].contribution = -0.8;
    a.n_factors = 2;
    a.arm = ALERT_TREATMENT;
    return a;
}

static void test_template_slots(void **state)
{
    (void)state;
    alert_t a = sample_alert();
    char out[1024];
    int n = cg_template_message(&a, out, sizeof out);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(out));
    assert_string_equal(out, "We miss you, and we want to make your next visit worth it. Our "
                             "suggestion for you: 10% win-back coupon.");
    /* the template may carry digits (the offer is churnstream's); the model may not */
    assert_int_equal(cg_check(out, CG_MESSAGE_MIN, CG_MESSAGE_MAX, NULL), CG_DIGIT);

    n = cg_template_explanation(&a, out, sizeof out);
    assert_true(n > 0);
    assert_non_null(strstr(out, "churn probability 87% (high risk)"));
    assert_non_null(strstr(out, "segment 3 \"low active_days_30d\""));
    assert_non_null(strstr(out, "recommended action: 10% win-back coupon"));
    assert_non_null(strstr(out, "top factors: days_since_activity +1.20, active_days_30d -0.80"));
    assert_non_null(strstr(out, "arm: treatment."));

    /* deterministic: the same alert gives the same bytes */
    char again[1024];
    cg_template_explanation(&a, again, sizeof again);
    assert_string_equal(out, again);

    a.risk_bucket = ALERT_MEDIUM;
    a.segment_id = -1;
    cg_template_message(&a, out, sizeof out);
    assert_non_null(strstr(out, "we would love to see you back"));
    cg_facts_line(&a, out, sizeof out);
    assert_non_null(strstr(out, "no segment yet"));
}

static void test_template_too_small(void **state)
{
    (void)state;
    alert_t a = sample_alert();
    char out[16];
    assert_int_equal(cg_template_message(&a, out, sizeof out), -1);
    assert_int_equal(cg_template_explanation(&a, out, sizeof out), -1);
    assert_int_equal(cg_offer_line(&a, out, sizeof out), -1);
    char exact[64];
    int n = cg_offer_line(&a, exact, sizeof exact);
    assert_int_equal(n, (int)strlen("Our suggestion for you: 10% win-back coupon."));
    assert_int_equal(cg_offer_line(&a, exact, (size_t)n + 1), n);
    assert_int_equal(cg_offer_line(&a, exact, (size_t)n), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_table),     cmocka_unit_test(test_check_length_bounds),
        cmocka_unit_test(test_reason_names),    cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_template_slots),  cmocka_unit_test(test_template_too_small),
        cmocka_unit_test(test_first_sentences), cmocka_unit_test(test_words_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
