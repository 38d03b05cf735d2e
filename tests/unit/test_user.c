/* Unit tests for the packed per-user record (processor/features/user.h): exact bytes, lossless
 * round trips of random and extreme records, the size bound, hostile input (every truncation,
 * trailing bytes, bad versions, corrupt varints, mutations), and engine/feature runs whose
 * records go through encode/decode at every step and must end identical. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "gen.h"
#include "rng.h"
#include "store_mem.h"
#include "user.h"

#define DAY  FEAT_DAY_MS
#define HOUR 3600000LL
/* 2023-12-09 00:00:00 UTC, a midnight. */
#define T0           (19700LL * DAY)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint32_t f32_bits(float f)
{
    uint32_t v;
    memcpy(&v, &f, sizeof v);
    return v;
}

static float bits_f32(uint32_t v)
{
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

/* Field by field, floats by their bits: "lossless" means exactly this. */
static void assert_recs_identical(const user_rec_t *a, const user_rec_t *b)
{
    const feat_state_t *x = &a->feat, *y = &b->feat;
    assert_int_equal(x->first_activity_ms, y->first_activity_ms);
    assert_int_equal(x->last_activity_ms, y->last_activity_ms);
    assert_int_equal(x->last_purchase_ms, y->last_purchase_ms);
    assert_int_equal(x->t_ref_ms, y->t_ref_ms);
    for (int c = 0; c < FEAT_C_COUNT; c++)
        assert_int_equal(f32_bits(x->counter[c]), f32_bits(y->counter[c]));
    assert_int_equal(f32_bits(x->gap_sum_days), f32_bits(y->gap_sum_days));
    assert_int_equal(x->active_day_bits, y->active_day_bits);
    assert_int_equal(x->purchase_day_bits, y->purchase_day_bits);
    assert_int_equal(x->lifetime_active_days, y->lifetime_active_days);
    assert_int_equal(x->cooldown_until_ms, y->cooldown_until_ms);
    assert_int_equal(a->scored_tick_ms, b->scored_tick_ms);
    assert_int_equal(a->resolved_tick_ms, b->resolved_tick_ms);
    assert_int_equal(a->outcome_alert_ms, b->outcome_alert_ms);
    assert_int_equal(a->outcome_arm, b->outcome_arm);
    assert_int_equal(a->outcome_kind, b->outcome_kind);
    assert_int_equal(a->outcome_bucket, b->outcome_bucket);
    assert_int_equal(a->outcome_arch, b->outcome_arch);
    assert_int_equal(a->outcome_seg, b->outcome_seg);
    assert_int_equal(a->pending_positive_ms, b->pending_positive_ms);
}

/* Decodes exactly len bytes from a heap copy, so ASan flags any read past len. */
static int decode_exact(user_rec_t *rec, const uint8_t *buf, size_t len, char *err, size_t n)
{
    uint8_t *heap = malloc(len ? len : 1);
    assert_non_null(heap);
    memcpy(heap, buf, len);
    int rc = user_rec_decode(rec, heap, len, err, n);
    free(heap);
    return rc;
}

/* encode -> decode -> identical -> re-encode gives the same bytes. Returns the size. */
static size_t round_trip(const user_rec_t *rec)
{
    uint8_t buf[USER_REC_MAX_BYTES], again[USER_REC_MAX_BYTES];
    size_t n = user_rec_encode(rec, buf, sizeof buf);
    assert_true(n >= 2 && n <= USER_REC_MAX_BYTES);
    user_rec_t back;
    char err[256] = "";
    if (decode_exact(&back, buf, n, err, sizeof err) != 0)
        fail_msg("decode of a fresh encoding failed: %s", err);
    assert_recs_identical(rec, &back);
    assert_int_equal(user_rec_encode(&back, again, sizeof again), n);
    assert_memory_equal(buf, again, n);
    return n;
}

/* ---- random valid records, biased towards the edges ---- */

/* Uniform in [lo, hi] (hi - lo < 2^63), or one of the ends 1 time in 8 each. */
static int64_t pick(rng_t *r, int64_t lo, int64_t hi)
{
    uint64_t k = rng_below(r, 8);
    if (k == 0)
        return lo;
    if (k == 1)
        return hi;
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* A time in [lo, hi] at one of several scales: ms, round units, or anywhere. */
static int64_t pick_time(rng_t *r, int64_t lo, int64_t hi)
{
    static const int64_t round_ms[] = {1, 1000, 60000, HOUR, DAY};
    int64_t t = pick(r, lo, hi);
    int64_t u = round_ms[rng_below(r, ARRAY_LEN(round_ms))];
    int64_t q = t / u * u; /* toward zero: stays within [lo, hi] when lo <= 0 <= hi or ... */
    return q >= lo && q <= hi ? q : t;
}

static float pick_counter(rng_t *r)
{
    switch (rng_below(r, 8)) {
    case 0:
    case 1:
        return 0.0f;
    case 2:
        return 1e30f; /* the clamp */
    case 3:
        return bits_f32(1); /* smallest denormal */
    case 4:
        return -0.0f; /* never produced, still lossless */
    case 5:
        return (float)rng_below(r, 1000);
    default:
        return bits_f32((uint32_t)rng_below(r, f32_bits(1e30f)) + 1);
    }
}

static int64_t pick_derived(rng_t *r, int64_t t_ref)
{
    const int64_t L = FEAT_DERIVED_TIME_LIMIT_MS;
    switch (rng_below(r, 5)) {
    case 0:
        return INT64_MIN;
    case 1:
        return pick_time(r, -L, L);
    default: { /* a tick near t_ref, as the engine makes them */
        int64_t c = t_ref == FEAT_NEVER ? T0 : t_ref;
        return pick_time(r, c - 400 * DAY, c + 400 * DAY);
    }
    }
}

static void random_rec(rng_t *r, user_rec_t *rec)
{
    const int64_t L = FEAT_TIME_LIMIT_MS;
    user_rec_init(rec);
    feat_state_t *s = &rec->feat;
    int kind = (int)rng_below(r, 6); /* 0 empty, 1 events but no activity, 2.. active */
    if (kind >= 1) {
        s->t_ref_ms = rng_below(r, 2) ? pick_time(r, -L, L) : pick_time(r, T0, T0 + 400 * DAY);
        for (int c = 0; c < FEAT_C_COUNT; c++)
            s->counter[c] = pick_counter(r);
        s->gap_sum_days = pick_counter(r);
    }
    if (kind >= 2) {
        s->last_activity_ms = rng_below(r, 3) ? s->t_ref_ms : pick_time(r, -L, s->t_ref_ms);
        s->first_activity_ms =
            rng_below(r, 4) ? pick_time(r, -L, s->last_activity_ms) : s->last_activity_ms;
        s->active_day_bits = rng_next(r) >> rng_below(r, 64) | 1;
        s->lifetime_active_days = (uint16_t)pick(r, 1, UINT16_MAX);
    }
    if (kind >= 2 && rng_below(r, 2)) {
        s->last_purchase_ms = pick_time(r, -L, s->t_ref_ms);
        s->purchase_day_bits = (uint32_t)(rng_next(r) >> rng_below(r, 64)) | 1;
    }
    s->cooldown_until_ms = pick_derived(r, s->t_ref_ms);
    rec->scored_tick_ms = pick_derived(r, s->t_ref_ms);
    rec->resolved_tick_ms = pick_derived(r, s->t_ref_ms);
    rec->pending_positive_ms = pick_derived(r, s->t_ref_ms);
    rec->outcome_alert_ms = pick_derived(r, s->t_ref_ms);
    if (rec->outcome_alert_ms != INT64_MIN) {
        rec->outcome_arm = (uint8_t)rng_below(r, 2);
        rec->outcome_kind = (uint8_t)rng_below(r, 2);
        rec->outcome_bucket = (uint8_t)rng_below(r, 3);
        rec->outcome_arch = (uint8_t)rng_below(r, 16);
        rec->outcome_seg = (int16_t)((int)rng_below(r, 256) - 1);
    }
}

static void test_round_trip_random(void **unused)
{
    rng_t r;
    rng_seed(&r, 7);
    size_t max_seen = 0;
    for (int i = 0; i < 200000; i++) {
        user_rec_t rec;
        random_rec(&r, &rec);
        size_t n = round_trip(&rec);
        if (n > max_seen)
            max_seen = n;
    }
    /* Random extremes reach well past the typical sizes but never past the bound. */
    assert_true(max_seen > 124 && max_seen <= USER_REC_MAX_BYTES);
}

/* ---- exact bytes, extremes and the size bound ---- */

/* The test_features.c layout state plus three ticks; bytes from an independent model. */
static void layout_rec(user_rec_t *rec)
{
    user_rec_init(rec);
    feat_state_t *st = &rec->feat;
    st->t_ref_ms = T0 + 13 * HOUR;
    st->last_activity_ms = st->t_ref_ms;
    st->first_activity_ms = st->last_activity_ms - 5 * DAY - 123;
    st->last_purchase_ms = st->t_ref_ms - 2 * HOUR;
    st->counter[FEAT_C_ACTIVE_DAYS_7D] = 1.0f;
    st->counter[FEAT_C_REVENUE_30D] = 2.5f;
    st->gap_sum_days = 0.5f;
    st->active_day_bits = 0xb;
    st->purchase_day_bits = 1;
    st->lifetime_active_days = 300;
    st->cooldown_until_ms = T0 + 14 * DAY;
    rec->scored_tick_ms = T0 + DAY;
    rec->resolved_tick_ms = T0 - 3 * DAY + 30 * 60000;
    rec->pending_positive_ms = INT64_MIN;
}

/* clang-format off */
static const uint8_t layout_bytes[] = {
    0x03,                                           /* version */
    0x81, 0x84, 0x3c, 0x80, 0xb2, 0xce, 0xea, 0x89, 0x63, 0x00, 0xfb, 0x98, 0xff, 0xcd,
    0x01, 0x80, 0xba, 0xb7, 0x03, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0x40, 0x00,
    0x00, 0x00, 0x3f, 0x05, 0xab, 0x02, 0x00, 0x74, /* feature state (test_features.c) */
    0x0c,                                           /* scored: +1 day */
    0x8f, 0x8c, 0x02,                               /* resolved: -4290 min */
    0x00,                                           /* pending: none */
    0x00};                                          /* outcome: none */
/* clang-format on */

static void test_layout(void **unused)
{
    user_rec_t rec;
    layout_rec(&rec);
    uint8_t buf[USER_REC_MAX_BYTES];
    assert_int_equal(user_rec_encode(&rec, buf, sizeof buf), sizeof layout_bytes);
    assert_memory_equal(buf, layout_bytes, sizeof layout_bytes);
    round_trip(&rec);

    user_rec_init(&rec);
    static const uint8_t empty[] = {0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(user_rec_encode(&rec, buf, sizeof buf), sizeof empty);
    assert_memory_equal(buf, empty, sizeof empty);
    /* Every cap below the size fails, the size itself works. */
    layout_rec(&rec);
    for (size_t cap = 0; cap < sizeof layout_bytes; cap++)
        assert_int_equal(user_rec_encode(&rec, buf, cap), 0);
    assert_int_equal(user_rec_encode(&rec, buf, sizeof layout_bytes), sizeof layout_bytes);

    /* A pending outcome: its time code, then arm | kind << 1 | bucket << 2 | arch << 4 and
     * seg + 1. */
    rec.outcome_alert_ms = T0 + DAY;
    rec.outcome_arm = 1;    /* holdout */
    rec.outcome_kind = 1;   /* lapsed */
    rec.outcome_bucket = 2; /* high */
    rec.outcome_arch = 4;   /* champions */
    rec.outcome_seg = 3;
    uint8_t want[sizeof layout_bytes + 2];
    memcpy(want, layout_bytes, sizeof layout_bytes - 1);
    want[sizeof layout_bytes - 1] = 0x0c; /* +1 day */
    want[sizeof layout_bytes] = 0x4b;
    want[sizeof layout_bytes + 1] = 0x04;
    assert_int_equal(user_rec_encode(&rec, buf, sizeof buf), sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    round_trip(&rec);
}

/* A version-2 record (no outcome field) reads as version 3 with no pending outcome and is
 * written back as version 3. */
static void test_reads_version_2(void **unused)
{
    uint8_t v2[sizeof layout_bytes - 1];
    memcpy(v2, layout_bytes, sizeof v2);
    v2[0] = 0x02;
    user_rec_t rec, want;
    layout_rec(&want);
    char err[256] = "";
    if (decode_exact(&rec, v2, sizeof v2, err, sizeof err) != 0)
        fail_msg("version 2: %s", err);
    assert_recs_identical(&rec, &want);
    assert_int_equal(rec.outcome_alert_ms, INT64_MIN);
    uint8_t buf[USER_REC_MAX_BYTES];
    assert_int_equal(user_rec_encode(&rec, buf, sizeof buf), sizeof layout_bytes);
    assert_memory_equal(buf, layout_bytes, sizeof layout_bytes);
    /* A version-2 record with the version-3 outcome byte has a trailing byte. */
    uint8_t v2_long[sizeof layout_bytes];
    memcpy(v2_long, layout_bytes, sizeof v2_long);
    v2_long[0] = 0x02;
    assert_int_equal(decode_exact(&rec, v2_long, sizeof v2_long, err, sizeof err), -1);
    assert_non_null(strstr(err, "1 trailing bytes"));
}

/* Every field at the value that costs the most bytes: the bound is reached exactly. */
static void worst_rec(user_rec_t *rec)
{
    user_rec_init(rec);
    feat_state_t *s = &rec->feat;
    const int64_t L = FEAT_TIME_LIMIT_MS, D = FEAT_DERIVED_TIME_LIMIT_MS;
    s->t_ref_ms = L;           /* zigzag 2^51: 8 bytes */
    s->last_activity_ms = 0;   /* 2^50 back: 8 bytes */
    s->first_activity_ms = -L; /* 2^50 back: 8 bytes */
    s->last_purchase_ms = -L;  /* 2^51 back: 8 bytes */
    for (int c = 0; c < FEAT_C_COUNT; c++)
        s->counter[c] = 1e30f;
    s->gap_sum_days = 1e30f;
    s->active_day_bits = UINT64_MAX;      /* 63 bits: 9 bytes */
    s->purchase_day_bits = UINT32_MAX;    /* 31 bits: 5 bytes */
    s->lifetime_active_days = UINT16_MAX; /* 65534: 3 bytes */
    s->cooldown_until_ms = -D + 1;        /* odd ms, 2^52 + 2^50 back: 8 bytes */
    rec->scored_tick_ms = -D + 3;
    rec->resolved_tick_ms = -D + 5;
    rec->pending_positive_ms = -D + 7;
    rec->outcome_alert_ms = -D + 9;
    rec->outcome_seg = 254;
}

static void test_extremes_and_bound(void **unused)
{
    assert_int_equal(USER_REC_MAX_BYTES, 163);
    user_rec_t rec;
    worst_rec(&rec);
    assert_int_equal(round_trip(&rec), USER_REC_MAX_BYTES);

    /* Table of extremes: each a valid record that must survive, with its exact size (from
     * the independent model of the layout). */
    static const struct {
        const char *name;
        int64_t t_ref, last, first, purchase, cooldown, tick;
        int counters; /* how many counters are set (to 3.0f) */
        size_t size;
    } cases[] = {
        /* empty: version + flags + 5 NEVER codes */
        {"empty", FEAT_NEVER, FEAT_NEVER, FEAT_NEVER, FEAT_NEVER, FEAT_NEVER, INT64_MIN, 0, 7},
        /* events but no activity: flags 3, t_ref 6, 2 counters */
        {"no activity", T0, FEAT_NEVER, FEAT_NEVER, FEAT_NEVER, FEAT_NEVER, INT64_MIN, 2, 23},
        /* one activity now, counters all zero: flags 3, t_ref 6, 1+1, bits 1, life 1 */
        {"zero counters", T0 + 5, T0 + 5, T0 + 5, FEAT_NEVER, FEAT_NEVER, INT64_MIN, 0, 19},
        /* negative times (1969), all counters */
        {"negative", -DAY - 7, -DAY - 7, -9 * DAY, -2 * DAY, -DAY + 14 * DAY, 0, 16, 90},
        {"t_ref -2^50", -FEAT_TIME_LIMIT_MS, -FEAT_TIME_LIMIT_MS, -FEAT_TIME_LIMIT_MS, FEAT_NEVER,
         FEAT_DERIVED_TIME_LIMIT_MS, -FEAT_DERIVED_TIME_LIMIT_MS, 1, 46},
        {"epoch", 0, 0, 0, 0, 0, 0, 16, 80},
    };
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        user_rec_init(&rec);
        feat_state_t *s = &rec.feat;
        s->t_ref_ms = cases[k].t_ref;
        s->last_activity_ms = cases[k].last;
        s->first_activity_ms = cases[k].first;
        if (cases[k].last != FEAT_NEVER) {
            s->active_day_bits = 1;
            s->lifetime_active_days = 1;
        }
        s->last_purchase_ms = cases[k].purchase;
        if (cases[k].purchase != FEAT_NEVER)
            s->purchase_day_bits = 1;
        for (int c = 0; c < cases[k].counters; c++)
            s->counter[c] = 3.0f;
        s->cooldown_until_ms = cases[k].cooldown;
        rec.scored_tick_ms = rec.resolved_tick_ms = cases[k].tick;
        size_t n = round_trip(&rec);
        if (n != cases[k].size)
            fail_msg("%s: %zu bytes, expected %zu", cases[k].name, n, cases[k].size);
    }
}

/* A heavy but realistic user: all 16 counters and the gap sum, 64 active days in a row, 10
 * years of tenure, a purchase 60 days ago, a cooldown and three ticks: still in the 128-byte
 * jemalloc class (<= 124 bytes; size from the independent model). */
static void test_heavy_user_fits(void **unused)
{
    user_rec_t rec;
    user_rec_init(&rec);
    feat_state_t *s = &rec.feat;
    s->t_ref_ms = T0 + 200 * DAY + 18 * HOUR + 42 * 60000 + 17123;
    s->last_activity_ms = s->t_ref_ms - 3 * HOUR;
    s->first_activity_ms = s->last_activity_ms - 3650 * DAY - 5;
    s->last_purchase_ms = s->t_ref_ms - 60 * DAY - 7;
    for (int c = 0; c < FEAT_C_COUNT; c++)
        s->counter[c] = 123.456f + (float)c;
    s->gap_sum_days = 7.5f;
    s->active_day_bits = UINT64_MAX;
    s->purchase_day_bits = 0x80000001u;
    s->lifetime_active_days = 3000;
    s->cooldown_until_ms = T0 + 215 * DAY;
    rec.scored_tick_ms = T0 + 201 * DAY;
    rec.resolved_tick_ms = T0 + 110 * DAY;
    rec.pending_positive_ms = T0 + 120 * DAY;
    assert_int_equal(round_trip(&rec), 116);
}

/* ---- hostile input ---- */

static void test_truncation_every_length(void **unused)
{
    rng_t r;
    rng_seed(&r, 11);
    for (int i = 0; i < 3000; i++) {
        user_rec_t rec, out;
        if (i == 0)
            worst_rec(&rec);
        else if (i == 1)
            layout_rec(&rec);
        else
            random_rec(&r, &rec);
        uint8_t buf[USER_REC_MAX_BYTES + 1];
        size_t n = user_rec_encode(&rec, buf, sizeof buf);
        assert_true(n > 0);
        char err[256];
        for (size_t len = 0; len < n; len++) {
            user_rec_init(&out);
            out.scored_tick_ms = 42;
            if (decode_exact(&out, buf, len, err, sizeof err) == 0)
                fail_msg("record %d: prefix of %zu of %zu bytes accepted", i, len, n);
            assert_int_equal(out.scored_tick_ms, 42); /* untouched on error */
            assert_non_null(strstr(err, "user record: "));
        }
        assert_int_equal(decode_exact(&out, buf, n, err, sizeof err), 0);
        buf[n] = (uint8_t)rng_next(&r);
        assert_int_equal(decode_exact(&out, buf, n + 1, err, sizeof err), -1);
        assert_non_null(strstr(err, "1 trailing bytes after a"));
    }
}

static void test_decode_rejects(void **unused)
{
    /* Each case replaces bytes [at, at + n_old) of layout_bytes by repl (n_new bytes). */
    /* clang-format off */
    static const struct {
        size_t at, n_old;
        uint8_t repl[12];
        size_t n_new;
        const char *expect;
    } cases[] = {
        {0, 43, {0}, 0, "user record: empty value"},
        {0, 1, {0x01}, 1, "unsupported version 1 (this build reads versions 2 and 3: version 1 came"},
        {0, 1, {0x00}, 1, "unsupported version 0 (this build reads versions 2 and 3)"},
        {0, 1, {0x04}, 1, "unsupported version 4"},
        {0, 1, {0xff}, 1, "unsupported version 255"},
        {1, 42, {0}, 0, "user record: feature state: corrupt value: flags: truncated"},
        {37, 1, {0x8c, 0x00}, 2, "scored_tick_ms: overlong varint"},
        {37, 6, {0x8c}, 1, "scored_tick_ms: truncated"},
        {38, 5, {0x8f, 0x8c}, 2, "resolved_tick_ms: truncated"},
        {38, 3, {0x8f, 0x8c}, 2, "resolved_tick_ms: overlong varint"}, /* 8f 8c 00 */
        {41, 2, {0}, 0, "pending_positive_ms: truncated"},
        {41, 1, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, 10,
         "pending_positive_ms: varint overflows 64 bits"},
        {41, 1, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10,
         "pending_positive_ms: time outside +-2^52 ms"},
        {37, 1, {0x01}, 1, "scored_tick_ms: non-canonical time unit"}, /* 0 in ms */
        {37, 1, {0x83, 0x5a}, 2, "scored_tick_ms: non-canonical time unit"}, /* 1440 min */
        {43, 0, {0x00}, 1, "1 trailing bytes after a 43-byte record"},
        {43, 0, {0x00, 0x00, 0x00}, 3, "3 trailing bytes"},
        {42, 1, {0}, 0, "outcome_alert_ms: truncated"},
        {42, 1, {0x0c}, 1, "outcome: truncated"},
        {42, 1, {0x0c, 0x00}, 2, "outcome: truncated"},
        {42, 1, {0x0c, 0x0c, 0x00}, 3, "outcome: bad bucket"},
    };
    /* clang-format on */
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        uint8_t buf[64];
        size_t len = cases[k].at;
        memcpy(buf, layout_bytes, len);
        memcpy(buf + len, cases[k].repl, cases[k].n_new);
        len += cases[k].n_new;
        size_t rest = sizeof layout_bytes - cases[k].at - cases[k].n_old;
        memcpy(buf + len, layout_bytes + cases[k].at + cases[k].n_old, rest);
        len += rest;
        user_rec_t out;
        user_rec_init(&out);
        char err[256] = "";
        assert_int_equal(decode_exact(&out, buf, len, err, sizeof err), -1);
        if (!strstr(err, cases[k].expect))
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", k, err, cases[k].expect);
        assert_int_equal(out.scored_tick_ms, INT64_MIN);
        assert_int_equal(out.feat.t_ref_ms, FEAT_NEVER);
    }
}

/* Random byte edits of valid records: the decoder must never crash or over-read, and any
 * byte string it accepts must be the canonical encoding of what it decoded to (so two
 * different byte strings never mean the same record). */
static void test_mutations_canonical(void **unused)
{
    rng_t r;
    rng_seed(&r, 13);
    long accepted = 0, rejected = 0;
    for (int i = 0; i < 100000; i++) {
        user_rec_t rec, out;
        random_rec(&r, &rec);
        uint8_t buf[USER_REC_MAX_BYTES + 4], again[USER_REC_MAX_BYTES];
        size_t n = user_rec_encode(&rec, buf, USER_REC_MAX_BYTES);
        assert_true(n > 0);
        size_t at = rng_below(&r, n);
        switch (rng_below(&r, 4)) {
        case 0:
            buf[at] ^= (uint8_t)(1u << rng_below(&r, 8));
            break;
        case 1:
            buf[at] = (uint8_t)rng_next(&r);
            break;
        case 2: /* delete a byte */
            memmove(buf + at, buf + at + 1, n - at - 1);
            n--;
            break;
        default: /* insert a byte */
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = (uint8_t)rng_next(&r);
            n++;
            break;
        }
        char err[256];
        if (decode_exact(&out, buf, n, err, sizeof err) != 0) {
            rejected++;
            continue;
        }
        accepted++;
        size_t m = user_rec_encode(&out, again, sizeof again);
        if (m != n || memcmp(again, buf, n) != 0)
            fail_msg("mutation %d accepted but not canonical (%zu vs %zu bytes)", i, m, n);
    }
    /* Flipping a float bit or a small varint usually yields another valid record; a
     * removed or inserted byte almost never does. Both outcomes must occur. */
    assert_true(accepted > 1000 && rejected > 1000);
}

/* Records outside the encodable domain are refused, never written as something else. */
static void test_encode_refuses_invalid(void **unused)
{
    static const int n_cases = 9;
    for (int k = 0; k < n_cases; k++) {
        user_rec_t rec;
        layout_rec(&rec);
        feat_state_t *s = &rec.feat;
        switch (k) {
        case 0:
            rec.scored_tick_ms = INT64_MAX;
            break;
        case 1:
            rec.pending_positive_ms = FEAT_DERIVED_TIME_LIMIT_MS + 1;
            break;
        case 2:
            rec.resolved_tick_ms = -FEAT_DERIVED_TIME_LIMIT_MS - 1;
            break;
        case 3:
            s->cooldown_until_ms = INT64_MAX;
            break;
        case 4:
            s->counter[3] = NAN;
            break;
        case 5:
            s->active_day_bits &= ~UINT64_C(1);
            break;
        case 6:
            s->last_activity_ms = s->t_ref_ms + 1;
            break;
        case 7:
            s->t_ref_ms = FEAT_TIME_LIMIT_MS + 1;
            break;
        default:
            s->lifetime_active_days = 0;
            break;
        }
        uint8_t buf[USER_REC_MAX_BYTES];
        if (user_rec_encode(&rec, buf, sizeof buf) != 0)
            fail_msg("invalid record %d was encoded", k);
    }
}

static void test_event_part_equal(void **unused)
{
    user_rec_t a, b;
    layout_rec(&a);
    b = a;
    feat_set_cooldown_until_ms(&b.feat, T0 + 30 * DAY);
    assert_true(user_rec_event_part_equal(&a, &b));
    for (int k = 0; k < 4; k++) {
        b = a;
        switch (k) {
        case 0:
            b.scored_tick_ms += DAY;
            break;
        case 1:
            b.resolved_tick_ms = INT64_MIN;
            break;
        case 2:
            b.pending_positive_ms = T0;
            break;
        default:
            b.feat.counter[FEAT_C_REVENUE_30D] = 2.5000002f;
            break;
        }
        assert_false(user_rec_event_part_equal(&a, &b));
    }
}

/* ---- runs through the encoding ---- */

/* Packs and unpacks rec in place, as a Redis store would between two batches. */
static void through_encoding(user_rec_t *rec)
{
    uint8_t buf[USER_REC_MAX_BYTES];
    size_t n = user_rec_encode(rec, buf, sizeof buf);
    assert_true(n > 0);
    char err[256];
    if (user_rec_decode(rec, buf, n, err, sizeof err) != 0)
        fail_msg("%s", err);
}

/* 1,000 random events (out of order, every type, odd amounts) with engine-like tick updates:
 * one record is round-tripped after every step, the other never; they must end (and stay at
 * every step) identical. */
static void test_apply_through_encoding(void **unused)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        rng_t r;
        rng_seed(&r, seed);
        user_rec_t plain, packed;
        user_rec_init(&plain);
        user_rec_init(&packed);
        for (int i = 0; i < 1000; i++) {
            ev_event_t ev;
            memset(&ev, 0, sizeof ev);
            strcpy(ev.user_id, "u");
            ev.user_id_len = 1;
            ev.type = (ev_type_t)rng_below(&r, EV_TYPE_COUNT);
            ev.event_time_ms = T0 + (int64_t)rng_below(&r, 200 * (uint64_t)DAY) - 20 * DAY;
            static const double amounts[] = {0, 12.5, -3, 1e300, NAN, 0.1};
            ev.amount = amounts[rng_below(&r, ARRAY_LEN(amounts))];
            feat_apply(&plain.feat, &ev);
            feat_apply(&packed.feat, &ev);
            if (rng_below(&r, 4) == 0) {
                int64_t tick = (ev.event_time_ms / DAY + 1) * DAY;
                plain.scored_tick_ms = packed.scored_tick_ms = tick;
                plain.resolved_tick_ms = packed.resolved_tick_ms = tick - 90 * DAY;
                plain.pending_positive_ms = packed.pending_positive_ms =
                    rng_below(&r, 2) ? INT64_MIN : tick - 91 * DAY;
                int64_t cd = rng_below(&r, 3) ? FEAT_NEVER : tick + 14 * DAY;
                feat_set_cooldown_until_ms(&plain.feat, cd);
                feat_set_cooldown_until_ms(&packed.feat, cd);
            }
            through_encoding(&packed);
            assert_recs_identical(&plain, &packed);
        }
        assert_true(feat_lifetime_active_days(&plain.feat) > 50);
    }
}

/* The engine on generated events over two in-memory stores, one of which packs and unpacks
 * every record whenever the engine fetches or visits it: the snapshots (user, tick, label,
 * feature bits) and the final records must be identical. */
typedef struct {
    st_mem_t *mem;
    store_ops_t inner;
    void (*visit)(void *ctx, const char *user_id, user_rec_t *rec);
    void *ctx;
} packing_store_t;

static user_rec_t *pk_get(void *opaque, const char *uid, size_t len)
{
    packing_store_t *p = opaque;
    user_rec_t *rec = p->inner.get(p->inner.opaque, uid, len);
    through_encoding(rec);
    return rec;
}

static void pk_visit(void *ctx, const char *uid, user_rec_t *rec)
{
    packing_store_t *p = ctx;
    through_encoding(rec);
    p->visit(p->ctx, uid, rec);
}

static void pk_range(void *opaque, int64_t lo, int64_t hi,
                     void (*visit)(void *ctx, const char *user_id, user_rec_t *rec), void *ctx)
{
    packing_store_t *p = opaque;
    p->visit = visit;
    p->ctx = ctx;
    p->inner.range(p->inner.opaque, lo, hi, pk_visit, p);
}

static void pk_touched(void *opaque, const char *uid, user_rec_t *rec)
{
    packing_store_t *p = opaque;
    if (p->inner.touched)
        p->inner.touched(p->inner.opaque, uid, rec);
}

typedef struct {
    uint64_t hash;
    long n;
} snap_log_t;

static void hash_bytes(uint64_t *h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ p[i]) * 0x100000001b3ULL; /* FNV-1a */
}

static void log_snapshot(void *opaque, const eng_snapshot_t *s)
{
    snap_log_t *l = opaque;
    hash_bytes(&l->hash, s->user_id, strlen(s->user_id));
    hash_bytes(&l->hash, &s->tick_ms, sizeof s->tick_ms);
    hash_bytes(&l->hash, &s->y, sizeof s->y);
    hash_bytes(&l->hash, s->x, FEAT_DIM * sizeof s->x[0]);
    l->n++;
}

static void run_engine(int packed, st_mem_t **out_mem, snap_log_t *log)
{
    st_mem_t *mem = st_mem_new();
    assert_non_null(mem);
    packing_store_t pk = {.mem = mem};
    st_mem_engine_ops(mem, &pk.inner);
    store_ops_t ops = pk.inner;
    if (packed)
        ops = (store_ops_t){.opaque = &pk, .get = pk_get, .range = pk_range, .touched = pk_touched};
    eng_sink_t sink = {.opaque = log, .score = log_snapshot, .label = log_snapshot};
    eng_params_t p = {
        .tick_ms = DAY, .horizon_ms = 14 * DAY, .lookback_ms = 14 * DAY, .lateness_ms = HOUR};
    char err[256];
    eng_t *eng = eng_new(&p, &ops, &sink, err, sizeof err);
    assert_non_null(eng);
    gen_params_t gp;
    gen_params_default(&gp);
    gp.users = 300;
    gp.days = 60;
    gp.seed = 5;
    gen_t *g = gen_new(&gp, err, sizeof err);
    assert_non_null(g);
    ev_event_t ev;
    int64_t max_t = INT64_MIN;
    long i = 0;
    while (gen_next(g, &ev) == 1) {
        eng_event(eng, &ev, NULL);
        if (ev.event_time_ms > max_t)
            max_t = ev.event_time_ms;
        if (++i % 50 == 0)
            eng_advance(eng, max_t - p.lateness_ms);
    }
    eng_finish(eng, (feat_day_of(max_t) + 1) * DAY);
    gen_destroy(g);
    eng_destroy(eng);
    *out_mem = mem;
}

static void test_engine_through_encoding(void **unused)
{
    st_mem_t *a, *b;
    snap_log_t la = {0xcbf29ce484222325ULL, 0}, lb = {0xcbf29ce484222325ULL, 0};
    run_engine(0, &a, &la);
    run_engine(1, &b, &lb);
    assert_true(la.n > 1000);
    assert_int_equal(la.n, lb.n);
    assert_int_equal(la.hash, lb.hash);
    assert_int_equal(st_mem_count(a), st_mem_count(b));
    int with_ticks = 0;
    for (size_t i = 0; i < st_mem_count(a); i++) {
        assert_string_equal(st_mem_user_id(a, i), st_mem_user_id(b, i));
        assert_recs_identical(st_mem_at(a, i), st_mem_at(b, i));
        with_ticks += st_mem_at(a, i)->scored_tick_ms != INT64_MIN &&
                      st_mem_at(a, i)->resolved_tick_ms != INT64_MIN;
    }
    assert_true(with_ticks > 100); /* the tick fields really went through the encoding */
    st_mem_destroy(a);
    st_mem_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_reads_version_2),
        cmocka_unit_test(test_extremes_and_bound),
        cmocka_unit_test(test_heavy_user_fits),
        cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_truncation_every_length),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_mutations_canonical),
        cmocka_unit_test(test_encode_refuses_invalid),
        cmocka_unit_test(test_event_part_equal),
        cmocka_unit_test(test_apply_through_encoding),
        cmocka_unit_test(test_engine_through_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
