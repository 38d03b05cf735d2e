/* Replay's read-ahead thread (replay_prefetch.h) against a scripted source: the consumer
 * gets exactly the source's sequence (events, reasons, `why` texts), then its end or its
 * error with the source's message, every time it asks again; stopping early (the thread
 * blocked on a full ring, or mid-way) neither hangs nor leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "replay_prefetch.h"

typedef struct script_s {
    int n;        /* events before the end */
    int fail;     /* 1: -1 with an error after them, 0: the end */
    int produced; /* events handed out so far */
} script_t;

static int scripted(void *src, ev_event_t *ev, ev_reason_t *reason, char *why, size_t why_size,
                    char *errstr, size_t errstr_size)
{
    script_t *s = src;
    if (s->produced == s->n) {
        if (s->fail) {
            snprintf(errstr, errstr_size, "corrupt block after %d events", s->n);
            return -1;
        }
        return 0;
    }
    int i = s->produced++;
    memset(ev, 0, sizeof(*ev));
    ev->user_id_len = (uint16_t)snprintf(ev->user_id, sizeof(ev->user_id), "user-%d", i);
    ev->event_time_ms = 1700000000000LL + i;
    ev->amount = i * 0.5;
    ev->type = (ev_type_t)(i % EV_TYPE_COUNT);
    if (i % 3 == 0) {
        ev->has_item_id = 1;
        snprintf(ev->item_id, sizeof(ev->item_id), "item-%d", i);
    }
    *reason = i % 7 == 0 ? EV_ERR_MISSING_USER_ID : EV_OK;
    if (*reason != EV_OK)
        snprintf(why, why_size, "bad row %d", i);
    return 1;
}

static void expect_sequence(int n, int fail)
{
    script_t s = {.n = n, .fail = fail};
    rpp_t *p = rpp_new(scripted, &s);
    assert_non_null(p);
    for (int i = 0; i < n; i++) {
        ev_event_t ev;
        ev_reason_t reason;
        char why[256] = "stale", err[256] = "";
        assert_int_equal(rpp_next(p, &ev, &reason, why, sizeof why, err, sizeof err), 1);
        char want[32];
        snprintf(want, sizeof want, "user-%d", i);
        assert_string_equal(ev.user_id, want);
        assert_int_equal(ev.user_id_len, strlen(want));
        assert_true(ev.event_time_ms == 1700000000000LL + i);
        assert_true(ev.amount == i * 0.5);
        assert_int_equal(ev.type, i % EV_TYPE_COUNT);
        assert_int_equal(ev.has_item_id, i % 3 == 0);
        if (i % 3 == 0) {
            snprintf(want, sizeof want, "item-%d", i);
            assert_string_equal(ev.item_id, want);
        }
        assert_string_equal(ev.category, "");
        if (i % 7 == 0) {
            assert_int_equal(reason, EV_ERR_MISSING_USER_ID);
            snprintf(want, sizeof want, "bad row %d", i);
            assert_string_equal(why, want);
        } else {
            assert_int_equal(reason, EV_OK);
            assert_string_equal(why, ""); /* never the previous event's text */
        }
    }
    for (int again = 0; again < 3; again++) {
        ev_event_t ev;
        ev_reason_t reason;
        char why[256], err[256] = "";
        int rc = rpp_next(p, &ev, &reason, why, sizeof why, err, sizeof err);
        if (fail) {
            assert_int_equal(rc, -1);
            char want[64];
            snprintf(want, sizeof want, "corrupt block after %d events", n);
            assert_string_equal(err, want);
        } else {
            assert_int_equal(rc, 0);
        }
    }
    rpp_destroy(p);
    assert_int_equal(s.produced, n); /* read once, never past the end */
}

static void test_sequences(void **state)
{
    (void)state;
    /* across block boundaries and a ring's worth */
    const int lens[] = {0,
                        1,
                        RPP_BLOCK - 1,
                        RPP_BLOCK,
                        RPP_BLOCK + 1,
                        RPP_BLOCK * RPP_BLOCKS,
                        RPP_BLOCK * RPP_BLOCKS * 3 + 17};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        expect_sequence(lens[k], 0);
        expect_sequence(lens[k], 1);
    }
}

static void test_stop_early(void **state)
{
    (void)state;
    /* never started */
    script_t s0 = {.n = 100};
    rpp_destroy(rpp_new(scripted, &s0));
    assert_int_equal(s0.produced, 0);
    rpp_destroy(NULL);
    /* the thread ahead by a full ring (blocked), the consumer gone after a few events */
    for (int taken = 1; taken < 2000; taken *= 7) {
        script_t s = {.n = 1000000};
        rpp_t *p = rpp_new(scripted, &s);
        assert_non_null(p);
        for (int i = 0; i < taken; i++) {
            ev_event_t ev;
            ev_reason_t reason;
            char why[256], err[256];
            assert_int_equal(rpp_next(p, &ev, &reason, why, sizeof why, err, sizeof err), 1);
        }
        rpp_destroy(p);
        /* it stopped within a ring (plus the block it was filling) of the consumer */
        assert_true(s.produced <= taken + RPP_BLOCK * (RPP_BLOCKS + 2));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_stop_early),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
