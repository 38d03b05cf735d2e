/* ev_utf8_valid (core/event.c): its 8-byte ASCII fast path agrees with a byte-by-byte walk
 * of ev_utf8_seq_len, verdict and first bad offset, on random strings mixing ASCII, NUL,
 * stray continuation bytes, overlong forms, surrogates and valid 2-4 byte sequences at every
 * alignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"

static int reference(const char *s, size_t n, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = u[i] ? ev_utf8_seq_len(u + i, n - i) : 0;
        if (len == 0) {
            *bad_at = i;
            return 0;
        }
        i += len;
    }
    return 1;
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static void test_fast_path_agrees(void **state)
{
    (void)state;
    static const char *pieces[] = {"a",
                                   "Z",
                                   "0",
                                   "~",
                                   "\x7f",
                                   "\x01",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80",
                                   "\x80",
                                   "\xc0\xaf",
                                   "\xed\xa0\x80",
                                   "\xf4\x90\x80\x80",
                                   "\xff",
                                   "\xe2\x82"};
    enum { NP = sizeof(pieces) / sizeof(pieces[0]) };
    uint64_t seed = 0x853c49e6748fea9bULL;
    char buf[128];
    for (int round = 0; round < 200000; round++) {
        size_t n = 0;
        size_t ascii_run = next(&seed) % 40; /* long ASCII runs reach the fast path */
        for (size_t i = 0; i < ascii_run; i++)
            buf[n++] = (char)('a' + next(&seed) % 26);
        int pieces_n = (int)(next(&seed) % 4);
        for (int p = 0; p < pieces_n; p++) {
            uint64_t r = next(&seed);
            const char *piece = r % 7 == 0 ? "\0" : pieces[r % NP];
            size_t len = r % 7 == 0 ? 1 : strlen(piece);
            memcpy(buf + n, piece, len);
            n += len;
        }
        size_t tail = next(&seed) % 20;
        for (size_t i = 0; i < tail; i++)
            buf[n++] = (char)('A' + next(&seed) % 26);
        size_t want_at = (size_t)-1, got_at = (size_t)-1;
        int want = reference(buf, n, &want_at);
        int got = ev_utf8_valid(buf, n, &got_at);
        if (got != want || (!want && got_at != want_at))
            fail_msg("round %d, length %zu: %d at %zu, want %d at %zu", round, n, got, got_at, want,
                     want_at);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_path_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
