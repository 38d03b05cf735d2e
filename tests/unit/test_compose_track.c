/* Unit tests for compose's tracking of read alerts (processor/daemon/compose_track.h): the
 * alert id set, and the offsets committed per partition only up to the first alert whose
 * message is not done, whatever order the messages finish in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "compose_track.h"

static void test_seen(void **state)
{
    (void)state;
    ct_seen_t s = {0};
    char id[ALERT_ID_LEN + 1];
    for (int i = 0; i < 5000; i++) { /* through several growths */
        snprintf(id, sizeof id, "%032x", i);
        assert_int_equal(ct_seen_add(&s, id), 0);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(id, sizeof id, "%032x", i);
        assert_int_equal(ct_seen_add(&s, id), 1);
    }
    assert_int_equal(s.n, 5000);
    ct_seen_free(&s);
    ct_seen_free(&s); /* a freed set is an empty one */
}

/* The commit of partition p in c[0..n), -1 when absent. */
static int64_t commit_of(const ct_commit_t *c, size_t n, int32_t p)
{
    for (size_t i = 0; i < n; i++)
        if (c[i].partition == p)
            return c[i].offset;
    return -1;
}

static void test_pending_out_of_order(void **state)
{
    (void)state;
    ct_pending_t *p = ct_pending_new();
    assert_non_null(p);
    ct_commit_t c[8];
    /* partition 0: offsets 10..13; partition 1: offsets 5..6, interleaved as read */
    int64_t a10 = ct_pending_add(p, 0, 10), b5 = ct_pending_add(p, 1, 5);
    int64_t a11 = ct_pending_add(p, 0, 11), a12 = ct_pending_add(p, 0, 12);
    int64_t b6 = ct_pending_add(p, 1, 6), a13 = ct_pending_add(p, 0, 13);
    assert_true(a10 > 0 && b5 > a10 && a13 > b6);
    assert_int_equal(ct_pending_count(p), 6);
    assert_int_equal(ct_pending_commits(p, c, 8), 0); /* nothing done */

    /* later messages finish first: nothing of partition 0 may move past offset 10 */
    ct_pending_done(p, a12);
    ct_pending_done(p, a11);
    ct_pending_done(p, b6);
    assert_int_equal(ct_pending_commits(p, c, 8), 0);
    ct_pending_done(p, 999); /* unknown: ignored */

    ct_pending_done(p, a10); /* 10, 11, 12 done: commit 13 */
    size_t n = ct_pending_commits(p, c, 8);
    assert_int_equal(n, 1);
    assert_int_equal(commit_of(c, n, 0), 13);
    assert_int_equal(ct_pending_count(p), 3);         /* b5, b6 (blocked by b5), a13 */
    assert_int_equal(ct_pending_commits(p, c, 8), 0); /* nothing new */

    ct_pending_done(p, b5);
    ct_pending_done(p, a13);
    n = ct_pending_commits(p, c, 8);
    assert_int_equal(n, 2);
    assert_int_equal(commit_of(c, n, 1), 7);
    assert_int_equal(commit_of(c, n, 0), 14);
    assert_int_equal(ct_pending_count(p), 0);
    ct_pending_destroy(p);
    ct_pending_destroy(NULL);
}

/* More partitions with done messages than the caller's array: the rest wait, none is lost. */
static void test_pending_commits_in_rounds(void **state)
{
    (void)state;
    ct_pending_t *p = ct_pending_new();
    ct_commit_t c[2];
    for (int32_t part = 0; part < 5; part++)
        for (int64_t off = 0; off < 3; off++)
            ct_pending_done(p, ct_pending_add(p, part, off));
    int64_t last[5] = {-1, -1, -1, -1, -1};
    size_t n, rounds = 0;
    while ((n = ct_pending_commits(p, c, 2)) > 0) {
        for (size_t i = 0; i < n; i++)
            last[c[i].partition] = c[i].offset;
        rounds++;
    }
    assert_int_equal(rounds, 3);
    for (int i = 0; i < 5; i++)
        assert_int_equal(last[i], 3);
    assert_int_equal(ct_pending_count(p), 0);
    ct_pending_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seen),
        cmocka_unit_test(test_pending_out_of_order),
        cmocka_unit_test(test_pending_commits_in_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
