/* The deterministic parts of an alert: SipHash-2-4, the alert id (a 128-bit hash of the
 * trigger), the holdout arm (a salted hash of the user id), the risk bucket and the
 * top-percent count. Pure functions: same inputs, same answer on every host and run. */
#include "alert.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Fixed keys. Changing one changes every alert id or every user's arm: never do it. */
static const uint8_t ID_KEY_HI[16] = "cs-alert-id-hi-0";
static const uint8_t ID_KEY_LO[16] = "cs-alert-id-lo-0";
static const uint8_t ARM_KEY[16] = "cs-holdout-arm-0";

const char *alert_bucket_name(alert_bucket_t b)
{
    switch (b) {
    case ALERT_LOW:
        return "low";
    case ALERT_MEDIUM:
        return "medium";
    case ALERT_HIGH:
        return "high";
    }
    return "low";
}

const char *alert_arm_name(alert_arm_t a)
{
    return a == ALERT_HOLDOUT ? "holdout" : "treatment";
}

const char *alert_kind_name(alert_kind_t k)
{
    return k == ALERT_AT_RISK ? "at_risk" : k == ALERT_LAPSED ? "lapsed" : "unknown";
}

const char *alert_trigger_name(alert_trigger_kind_t t)
{
    return t == ALERT_BY_TICK ? "tick" : t == ALERT_BY_EVENT ? "event" : "unknown";
}

alert_kind_t alert_kind_from(double quiet_days, double active_days, double gap_days)
{
    if (active_days < 1.0 || quiet_days <= ALERT_RECENT_DAYS)
        return ALERT_AT_RISK;
    /* With one active day mean_gap_days is the open gap (= quiet): no rhythm to compare. */
    if (active_days >= 2.0 && quiet_days <= ALERT_RHYTHM_FACTOR * gap_days)
        return ALERT_AT_RISK;
    return ALERT_LAPSED;
}

alert_kind_t alert_kind_of(const double features[FEAT_DIM])
{
    return alert_kind_from(features[FEAT_DAYS_SINCE_ACTIVITY], features[FEAT_ACTIVE_DAYS_LIFETIME],
                           features[FEAT_MEAN_GAP_DAYS]);
}

alert_bucket_t alert_bucket_of(double p, double medium, double high)
{
    if (p >= high)
        return ALERT_HIGH;
    return p >= medium ? ALERT_MEDIUM : ALERT_LOW;
}

/* ---- SipHash-2-4, after the reference implementation (github.com/veorq/SipHash) ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

uint64_t alert_siphash24(const uint8_t key[16], const void *buf, size_t len)
{
    const uint8_t *in = buf;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load_le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)in[full + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void alert_make_id(const alert_trigger_t *trigger, const char *user_id, size_t user_id_len,
                   char out[ALERT_ID_LEN + 1])
{
    /* "tick|<user_id>|<tick_ms>": the user id cannot be confused with the tick, which is the
     * text after the LAST '|' and holds no '|' itself. */
    char msg[16 + EV_USER_ID_MAX + 48];
    size_t n;
    if (trigger->is_event) {
        n = (size_t)snprintf(msg, sizeof msg, "event|%" PRId32 "|%" PRId64, trigger->partition,
                             trigger->offset);
    } else {
        if (user_id_len > EV_USER_ID_MAX)
            user_id_len = EV_USER_ID_MAX;
        memcpy(msg, "tick|", 5);
        memcpy(msg + 5, user_id, user_id_len);
        n = 5 + user_id_len;
        n += (size_t)snprintf(msg + n, sizeof msg - n, "|%" PRId64, trigger->tick_ms);
    }
    uint64_t hi = alert_siphash24(ID_KEY_HI, msg, n);
    uint64_t lo = alert_siphash24(ID_KEY_LO, msg, n);
    snprintf(out, ALERT_ID_LEN + 1, "%016" PRIx64 "%016" PRIx64, hi, lo);
}

alert_arm_t alert_arm_of(const char *salt, const char *user_id, size_t user_id_len,
                         double holdout_percent)
{
    /* salt, a 0 byte, the user id: the separator keeps ("ab", "c") and ("a", "bc") apart. */
    char msg[256 + 1 + EV_USER_ID_MAX];
    size_t salt_len = salt ? strnlen(salt, 256) : 0;
    if (user_id_len > EV_USER_ID_MAX)
        user_id_len = EV_USER_ID_MAX;
    if (salt_len)
        memcpy(msg, salt, salt_len);
    msg[salt_len] = '\0';
    memcpy(msg + salt_len + 1, user_id, user_id_len);
    uint64_t h = alert_siphash24(ARM_KEY, msg, salt_len + 1 + user_id_len);
    long long bp = llround(holdout_percent * 100.0); /* basis points, 0..10000 */
    return (long long)(h % 10000) < bp ? ALERT_HOLDOUT : ALERT_TREATMENT;
}

size_t alert_top_count(size_t n, double top_percent)
{
    if (!(top_percent > 0))
        return 0;
    if (top_percent >= 100)
        return n;
    /* Percent in millionths (<= 1e8): n * micro stays exact in 64 bits for n < 1.8e11. */
    uint64_t micro = (uint64_t)llround(top_percent * 1e6);
    return (size_t)((uint64_t)n * micro / 100000000ULL);
}
