/* Unit tests of the batch's latest scores (score_batch.h): one entry per user with the last
 * scoring winning, the alert id only on the scoring it belongs to, growth past the first
 * index size, the views the commit reads, and clearing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "score_batch.h"

static const st_score_t *find(const st_score_t *v, size_t n, const char *uid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].user_id, uid) == 0)
            return &v[i];
    return NULL;
}

static void test_last_scoring_wins(void **state)
{
    (void)state;
    sb_t *sb = sb_new();
    assert_non_null(sb);
    assert_int_equal(sb_put(sb, "a", 0.2, "low", 1, "loyal", "at_risk", "tick", 100), 0);
    assert_int_equal(sb_put(sb, "b", 0.9, "high", -1, "unsegmented", "lapsed", "tick", 100), 0);
    sb_alerted(sb, "b", 100, "0123456789abcdef0123456789abcdef");
    sb_alerted(sb, "a", 99, "ffffffffffffffffffffffffffffffff");   /* another scoring: ignored */
    sb_alerted(sb, "zz", 100, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"); /* unknown user: ignored */
    assert_int_equal(sb_put(sb, "a", 0.8, "medium", 2, "new", "lapsed", "event", 150), 0);
    const st_score_t *v;
    size_t n;
    assert_int_equal(sb_scores(sb, &v, &n), 0);
    assert_int_equal(n, 2);
    const st_score_t *a = find(v, n, "a"), *b = find(v, n, "b");
    assert_non_null(a);
    assert_non_null(b);
    assert_float_equal(a->score, 0.8, 0);
    assert_string_equal(a->bucket, "medium");
    assert_int_equal(a->segment_id, 2);
    assert_string_equal(a->segment_name, "new");
    assert_string_equal(a->kind, "lapsed");
    assert_string_equal(a->trigger, "event");
    assert_int_equal(a->time_ms, 150);
    assert_string_equal(a->alert_id, "");
    assert_string_equal(b->alert_id, "0123456789abcdef0123456789abcdef");
    /* A new scoring of b clears the alert id of the old one. */
    assert_int_equal(sb_put(sb, "b", 0.5, "medium", 0, "loyal", "at_risk", "tick", 200), 0);
    assert_int_equal(sb_scores(sb, &v, &n), 0);
    assert_string_equal(find(v, n, "b")->alert_id, "");
    sb_clear(sb);
    assert_int_equal(sb_scores(sb, &v, &n), 0);
    assert_int_equal(n, 0);
    sb_destroy(sb);
    sb_destroy(NULL);
    sb_clear(NULL);
}

static void test_many_users(void **state)
{
    (void)state;
    sb_t *sb = sb_new();
    enum { N = 5000 };
    char uid[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(uid, sizeof uid, "user-%d", i);
            assert_int_equal(
                sb_put(sb, uid, i / (double)N, "low", i % 8, "x", "at_risk", "tick", round), 0);
        }
    }
    const st_score_t *v;
    size_t n;
    assert_int_equal(sb_scores(sb, &v, &n), 0);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) {
        snprintf(uid, sizeof uid, "user-%zu", i); /* first-seen order */
        assert_string_equal(v[i].user_id, uid);
        assert_int_equal(v[i].time_ms, 1);
    }
    /* After a clear the index is empty again, and reused. */
    sb_clear(sb);
    assert_int_equal(sb_put(sb, "user-7", 0.5, "low", 0, "x", "at_risk", "tick", 5), 0);
    assert_int_equal(sb_scores(sb, &v, &n), 0);
    assert_int_equal(n, 1);
    sb_destroy(sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_scoring_wins),
        cmocka_unit_test(test_many_users),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
