/* The per-user state's versioned little-endian encoding, stored in Redis.
 * Layout and rationale in feat.h. Everything is built from two primitives, LEB128 varints
 * and raw little-endian float32 bits, read through a bounds-checked reader that never looks
 * past the end of the buffer. Encodings are canonical (one byte string per state: minimal
 * varints, no explicit zero counters, the largest time unit), so equal states have equal
 * bytes and the decoder can reject everything else. */
#include "feat.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The flags word gives one bit to each counter below bit 16. */
_Static_assert(FEAT_C_COUNT == 16, "FL_COUNTERS and FL_GAP_SUM assume 16 counters");

enum {
    FL_COUNTERS = 0xffff,  /* bit c: counter[c] != 0, its f32 follows */
    FL_GAP_SUM = 1u << 16, /* gap_sum_days != 0 */
    FL_REF = 1u << 17,     /* t_ref_ms is set */
    FL_ACTIVE = 1u << 18,  /* first/last activity, active days and lifetime days follow */
    FL_PURCHASED = 1u << 19,
    FL_KNOWN = (1u << 20) - 1
};

/* Units of an engine/policy time code, smallest first; each divides the next. Ticks are
 * multiples of the tick interval and cooldowns ticks plus a duration, so against a UTC
 * midnight they are usually whole days (or hours, minutes) and take 1-3 bytes. */
static const int64_t time_unit_ms[4] = {1, 1000, 60000, FEAT_DAY_MS};

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

static uint64_t zigzag(int64_t v)
{
    return v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
}

static int64_t unzigzag(uint64_t u)
{
    return (u & 1) ? -(int64_t)(u >> 1) - 1 : (int64_t)(u >> 1);
}

static uint8_t *put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_f32(uint8_t *p, float f)
{
    uint32_t v = f32_bits(f);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

/* Bounds-checked reader: every get fails instead of reading past `end`, and the first
 * failure is kept (with the field's name) for the error message. */
typedef struct rd_s {
    const uint8_t *p, *end;
    const char *field; /* field being read when an error happened */
    const char *why;
} rd_t;

static int rd_fail(rd_t *r, const char *field, const char *why)
{
    if (!r->why) {
        r->field = field;
        r->why = why;
    }
    return -1;
}

/* Minimal LEB128 of a uint64: at most 10 bytes, the 10th <= 1, no trailing zero byte. */
static int rd_uvarint(rd_t *r, const char *field, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0;; i++) {
        if (r->p >= r->end)
            return rd_fail(r, field, "truncated");
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return rd_fail(r, field, "varint overflows 64 bits");
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                return rd_fail(r, field, "overlong varint");
            *out = v;
            return 0;
        }
    }
}

static int rd_f32(rd_t *r, const char *field, float *out)
{
    if (r->end - r->p < 4)
        return rd_fail(r, field, "truncated");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)r->p[i] << (8 * i);
    r->p += 4;
    *out = bits_f32(v);
    return 0;
}

/* Base of engine/policy time codes: the UTC midnight of t_ref (0 for an empty state). */
static int64_t time_base_ms(const feat_state_t *st)
{
    return st->t_ref_ms == FEAT_NEVER ? 0 : feat_day_of(st->t_ref_ms) * FEAT_DAY_MS;
}

static int derived_time_ok(int64_t t)
{
    return t == FEAT_NEVER || (t >= -FEAT_DERIVED_TIME_LIMIT_MS && t <= FEAT_DERIVED_TIME_LIMIT_MS);
}

/* Code 0 = FEAT_NEVER; else 1 + (zigzag(q) << 2 | unit) with t = base + q * unit, unit the
 * largest of time_unit_ms dividing t - base. */
static uint8_t *put_time_code(uint8_t *p, int64_t t, int64_t base)
{
    if (t == FEAT_NEVER)
        return put_uvarint(p, 0);
    int64_t d = t - base; /* |d| <= 2^52 + 2^50 + 1 day: both are in range */
    unsigned u = 3;
    while (u > 0 && d % time_unit_ms[u] != 0)
        u--;
    return put_uvarint(p, 1 + ((zigzag(d / time_unit_ms[u]) << 2) | u));
}

static int rd_time_code(rd_t *r, const char *field, int64_t base, int64_t *out)
{
    uint64_t code;
    if (rd_uvarint(r, field, &code) != 0)
        return -1;
    if (code == 0) {
        *out = FEAT_NEVER;
        return 0;
    }
    unsigned u = (unsigned)((code - 1) & 3);
    uint64_t zq = (code - 1) >> 2;
    /* Bound q before multiplying: |t - base| <= 2^53 keeps everything exact in int64. */
    if (zq >> 1 > (UINT64_C(1) << 53) / (uint64_t)time_unit_ms[u])
        return rd_fail(r, field, "time outside +-2^52 ms");
    int64_t d = unzigzag(zq) * time_unit_ms[u];
    int64_t t = base + d;
    if (!derived_time_ok(t))
        return rd_fail(r, field, "time outside +-2^52 ms");
    if (u < 3 && d % time_unit_ms[u + 1] == 0)
        return rd_fail(r, field, "non-canonical time unit");
    *out = t;
    return 0;
}

/* Backward distance from `from` (uvarint, >= 0 by the state's ordering invariants). */
static int rd_back(rd_t *r, const char *field, int64_t from, int64_t *out)
{
    uint64_t d;
    if (rd_uvarint(r, field, &d) != 0)
        return -1;
    if (d > (uint64_t)(from + FEAT_TIME_LIMIT_MS)) /* from >= -2^50, so no overflow */
        return rd_fail(r, field, "time outside +-2^50 ms");
    *out = from - (int64_t)d;
    return 0;
}

static int time_ok(int64_t t)
{
    return t == FEAT_NEVER || (t >= -FEAT_TIME_LIMIT_MS && t <= FEAT_TIME_LIMIT_MS);
}

/* The invariants of feat_state_t (feat.h) that the apply path relies on, e.g. bit 0 set
 * whenever there is a last active day. Returns NULL when they hold. A value that breaks
 * them is corrupt, not a state to limp along with; the encoder refuses such a state too, so
 * whatever it writes decodes. */
static const char *state_invalid(const feat_state_t *s)
{
    if (!time_ok(s->first_activity_ms) || !time_ok(s->last_activity_ms) ||
        !time_ok(s->last_purchase_ms) || !time_ok(s->t_ref_ms))
        return "a time is outside +-2^50 ms";
    if (!derived_time_ok(s->cooldown_until_ms))
        return "cooldown time outside +-2^52 ms";
    if ((s->first_activity_ms == FEAT_NEVER) != (s->last_activity_ms == FEAT_NEVER))
        return "first and last activity disagree on whether the user was ever active";
    if (s->first_activity_ms != FEAT_NEVER &&
        (s->first_activity_ms > s->last_activity_ms || !(s->active_day_bits & 1) ||
         s->lifetime_active_days == 0))
        return "inconsistent activity fields";
    if (s->first_activity_ms == FEAT_NEVER &&
        (s->active_day_bits != 0 || s->lifetime_active_days != 0))
        return "active days without activity";
    if ((s->last_purchase_ms == FEAT_NEVER) != (s->purchase_day_bits == 0) ||
        (s->last_purchase_ms != FEAT_NEVER && !(s->purchase_day_bits & 1)))
        return "inconsistent purchase fields";
    if (s->t_ref_ms == FEAT_NEVER
            ? (s->last_activity_ms != FEAT_NEVER || s->last_purchase_ms != FEAT_NEVER)
            : (s->t_ref_ms < s->last_activity_ms || s->t_ref_ms < s->last_purchase_ms))
        return "reference time before the last event";
    for (int c = 0; c <= FEAT_C_COUNT; c++) {
        float v = c < FEAT_C_COUNT ? s->counter[c] : s->gap_sum_days;
        if (!isfinite(v) || v < 0 || v > (float)FEAT_COUNTER_MAX ||
            (s->t_ref_ms == FEAT_NEVER && f32_bits(v) != 0))
            return "a counter is negative, non-finite, above 1e30 or set without events";
    }
    return NULL;
}

size_t feat_encode(const feat_state_t *st, uint8_t *buf, size_t cap)
{
    if (state_invalid(st))
        return 0;
    uint8_t tmp[FEAT_ENCODED_MAX_BYTES];
    uint32_t flags = 0;
    for (int c = 0; c < FEAT_C_COUNT; c++)
        if (f32_bits(st->counter[c]) != 0)
            flags |= 1u << c;
    if (f32_bits(st->gap_sum_days) != 0)
        flags |= FL_GAP_SUM;
    if (st->t_ref_ms != FEAT_NEVER)
        flags |= FL_REF;
    if (st->last_activity_ms != FEAT_NEVER)
        flags |= FL_ACTIVE;
    if (st->last_purchase_ms != FEAT_NEVER)
        flags |= FL_PURCHASED;

    uint8_t *p = put_uvarint(tmp, flags);
    if (flags & FL_REF)
        p = put_uvarint(p, zigzag(st->t_ref_ms));
    /* Backward distances: t_ref >= last >= first, t_ref >= last purchase (invariants). */
    if (flags & FL_ACTIVE) {
        p = put_uvarint(p, (uint64_t)(st->t_ref_ms - st->last_activity_ms));
        p = put_uvarint(p, (uint64_t)(st->last_activity_ms - st->first_activity_ms));
    }
    if (flags & FL_PURCHASED)
        p = put_uvarint(p, (uint64_t)(st->t_ref_ms - st->last_purchase_ms));
    for (int c = 0; c < FEAT_C_COUNT; c++)
        if (flags & (1u << c))
            p = put_f32(p, st->counter[c]);
    if (flags & FL_GAP_SUM)
        p = put_f32(p, st->gap_sum_days);
    /* Bit 0 of both bitmaps is set by invariant and not stored; old days are the high bits,
     * so a user with only recent activity has a short varint. */
    if (flags & FL_ACTIVE) {
        p = put_uvarint(p, st->active_day_bits >> 1);
        p = put_uvarint(p, (uint64_t)st->lifetime_active_days - 1);
    }
    if (flags & FL_PURCHASED)
        p = put_uvarint(p, st->purchase_day_bits >> 1);
    p = put_time_code(p, st->cooldown_until_ms, time_base_ms(st));

    size_t n = (size_t)(p - tmp);
    if (n > cap)
        return 0;
    memcpy(buf, tmp, n);
    return n;
}

static void decode_error(rd_t *r, char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size, "feature state: corrupt value: %s: %s", r->field, r->why);
}

int feat_decode(feat_state_t *st, const uint8_t *buf, size_t len, size_t *used, char *errstr,
                size_t errstr_size)
{
    rd_t r = {.p = buf, .end = buf + len, .field = NULL, .why = NULL};
    feat_state_t s;
    feat_state_init(&s);
    uint64_t flags;
    if (rd_uvarint(&r, "flags", &flags) != 0)
        goto fail;
    if (flags & ~(uint64_t)FL_KNOWN) {
        rd_fail(&r, "flags", "unknown flag bits (written by a newer churnstream?)");
        goto fail;
    }
    if (!(flags & FL_REF) && flags != 0) {
        rd_fail(&r, "flags", "counters or activity set without events");
        goto fail;
    }
    if (flags & FL_REF) {
        uint64_t z;
        if (rd_uvarint(&r, "t_ref_ms", &z) != 0)
            goto fail;
        if (z > (UINT64_C(1) << 51)) {
            rd_fail(&r, "t_ref_ms", "time outside +-2^50 ms");
            goto fail;
        }
        s.t_ref_ms = unzigzag(z);
    }
    if (flags & FL_ACTIVE) {
        if (rd_back(&r, "last_activity_ms", s.t_ref_ms, &s.last_activity_ms) != 0 ||
            rd_back(&r, "first_activity_ms", s.last_activity_ms, &s.first_activity_ms) != 0)
            goto fail;
    }
    if ((flags & FL_PURCHASED) &&
        rd_back(&r, "last_purchase_ms", s.t_ref_ms, &s.last_purchase_ms) != 0)
        goto fail;
    for (int c = 0; c < FEAT_C_COUNT; c++)
        if ((flags & (1u << c)) && rd_f32(&r, "counter", &s.counter[c]) != 0)
            goto fail;
    if ((flags & FL_GAP_SUM) && rd_f32(&r, "gap_sum_days", &s.gap_sum_days) != 0)
        goto fail;
    for (int c = 0; c <= FEAT_C_COUNT; c++) {
        float v = c < FEAT_C_COUNT ? s.counter[c] : s.gap_sum_days;
        uint32_t bit = c < FEAT_C_COUNT ? 1u << c : FL_GAP_SUM;
        if ((flags & bit) && f32_bits(v) == 0) { /* canonical: zero is never stored */
            rd_fail(&r, c < FEAT_C_COUNT ? "counter" : "gap_sum_days", "explicit zero");
            goto fail;
        }
    }
    if (flags & FL_ACTIVE) {
        uint64_t bits, days;
        if (rd_uvarint(&r, "active_day_bits", &bits) != 0 ||
            rd_uvarint(&r, "lifetime_active_days", &days) != 0)
            goto fail;
        if (bits >> 63) {
            rd_fail(&r, "active_day_bits", "more than 64 days");
            goto fail;
        }
        if (days >= UINT16_MAX) {
            rd_fail(&r, "lifetime_active_days", "above 65535");
            goto fail;
        }
        s.active_day_bits = bits << 1 | 1;
        s.lifetime_active_days = (uint16_t)(days + 1);
    }
    if (flags & FL_PURCHASED) {
        uint64_t bits;
        if (rd_uvarint(&r, "purchase_day_bits", &bits) != 0)
            goto fail;
        if (bits >> 31) {
            rd_fail(&r, "purchase_day_bits", "more than 32 days");
            goto fail;
        }
        s.purchase_day_bits = (uint32_t)(bits << 1 | 1);
    }
    if (rd_time_code(&r, "cooldown_until_ms", time_base_ms(&s), &s.cooldown_until_ms) != 0)
        goto fail;
    if (!used && r.p != r.end) {
        rd_fail(&r, "end", "trailing bytes");
        goto fail;
    }
    const char *bad = state_invalid(&s);
    if (bad) {
        snprintf(errstr, errstr_size, "feature state: corrupt value: %s", bad);
        return -1;
    }
    if (used)
        *used = (size_t)(r.p - buf);
    *st = s;
    return 0;
fail:
    decode_error(&r, errstr, errstr_size);
    return -1;
}

size_t feat_encode_time(const feat_state_t *st, int64_t t_ms, uint8_t *buf, size_t cap)
{
    if (!derived_time_ok(t_ms))
        return 0;
    uint8_t tmp[FEAT_TIME_CODE_MAX_BYTES];
    size_t n = (size_t)(put_time_code(tmp, t_ms, time_base_ms(st)) - tmp);
    if (n > cap)
        return 0;
    memcpy(buf, tmp, n);
    return n;
}

int feat_decode_time(const feat_state_t *st, const uint8_t *buf, size_t len, size_t *used,
                     int64_t *t_ms, char *errstr, size_t errstr_size)
{
    rd_t r = {.p = buf, .end = buf + len, .field = NULL, .why = NULL};
    int64_t t;
    if (rd_time_code(&r, "time", time_base_ms(st), &t) != 0) {
        snprintf(errstr, errstr_size, "%s", r.why);
        return -1;
    }
    *used = (size_t)(r.p - buf);
    *t_ms = t;
    return 0;
}

int feat_event_part_equal(const feat_state_t *a, const feat_state_t *b)
{
    /* Field by field, floats by their bits (as the bytes of the encoding would compare):
     * the encoding is variable-length, so no byte prefix holds "the event part". */
    if (a->first_activity_ms != b->first_activity_ms ||
        a->last_activity_ms != b->last_activity_ms || a->last_purchase_ms != b->last_purchase_ms ||
        a->t_ref_ms != b->t_ref_ms || a->active_day_bits != b->active_day_bits ||
        a->purchase_day_bits != b->purchase_day_bits ||
        a->lifetime_active_days != b->lifetime_active_days ||
        f32_bits(a->gap_sum_days) != f32_bits(b->gap_sum_days))
        return 0;
    for (int c = 0; c < FEAT_C_COUNT; c++)
        if (f32_bits(a->counter[c]) != f32_bits(b->counter[c]))
            return 0;
    return 1;
}
