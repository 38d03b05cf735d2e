/* Packing of the per-user record (layout in user.h): one version byte, the feature state's
 * compact encoding (features.c), then the engine's three tick fields and the pending
 * outcome's alert time as time codes against the state's reference day, and the outcome's
 * two bytes when one is pending. Reads version 2 (no outcome field) too. */
#include "user.h"

#include <stdio.h>
#include <string.h>

void user_rec_init(user_rec_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    feat_state_init(&rec->feat);
    rec->scored_tick_ms = INT64_MIN;
    rec->resolved_tick_ms = INT64_MIN;
    rec->pending_positive_ms = INT64_MIN;
    rec->outcome_alert_ms = INT64_MIN;
    rec->outcome_seg = -1;
}

static const char *const tick_names[4] = {"scored_tick_ms", "resolved_tick_ms",
                                          "pending_positive_ms", "outcome_alert_ms"};

/* The outcome's two bytes; 0 when a field is outside what they hold. */
static int outcome_pack(const user_rec_t *rec, uint8_t out[2])
{
    if (rec->outcome_arm > 1 || rec->outcome_kind > 1 || rec->outcome_bucket > 2 ||
        rec->outcome_arch > 15 || rec->outcome_seg < -1 || rec->outcome_seg > 254)
        return 0;
    out[0] = (uint8_t)(rec->outcome_arm | rec->outcome_kind << 1 | rec->outcome_bucket << 2 |
                       rec->outcome_arch << 4);
    out[1] = (uint8_t)(rec->outcome_seg + 1);
    return 1;
}

size_t user_rec_encode(const user_rec_t *rec, uint8_t *buf, size_t cap)
{
    uint8_t tmp[USER_REC_MAX_BYTES];
    const int64_t ticks[4] = {rec->scored_tick_ms, rec->resolved_tick_ms, rec->pending_positive_ms,
                              rec->outcome_alert_ms};
    tmp[0] = USER_REC_VERSION;
    size_t n = feat_encode(&rec->feat, tmp + 1, FEAT_ENCODED_MAX_BYTES);
    if (n == 0)
        return 0;
    n++;
    for (int i = 0; i < 4; i++) {
        size_t k = feat_encode_time(&rec->feat, ticks[i], tmp + n, sizeof tmp - n);
        if (k == 0)
            return 0;
        n += k;
    }
    if (rec->outcome_alert_ms != INT64_MIN) {
        if (!outcome_pack(rec, tmp + n))
            return 0;
        n += 2;
    }
    if (n > cap)
        return 0;
    memcpy(buf, tmp, n);
    return n;
}

int user_rec_decode(user_rec_t *rec, const uint8_t *buf, size_t len, char *errstr,
                    size_t errstr_size)
{
    if (len == 0) {
        snprintf(errstr, errstr_size, "user record: empty value");
        return -1;
    }
    if (buf[0] != USER_REC_VERSION && buf[0] != 2) {
        snprintf(errstr, errstr_size,
                 "user record: unsupported version %u (this build reads versions 2 and %d%s); "
                 "delete the user's key or replay to rebuild it",
                 buf[0], USER_REC_VERSION,
                 buf[0] == 1 ? ": version 1 came from a pre-release build" : "");
        return -1;
    }
    user_rec_t r;
    size_t pos = 1, used = 0;
    char why[192];
    if (feat_decode(&r.feat, buf + pos, len - pos, &used, why, sizeof why) != 0) {
        snprintf(errstr, errstr_size, "user record: %s", why);
        return -1;
    }
    pos += used;
    const int nticks = buf[0] == 2 ? 3 : 4;
    int64_t ticks[4] = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN};
    for (int i = 0; i < nticks; i++) {
        if (feat_decode_time(&r.feat, buf + pos, len - pos, &used, &ticks[i], why, sizeof why) !=
            0) {
            snprintf(errstr, errstr_size, "user record: corrupt value: %s: %s", tick_names[i], why);
            return -1;
        }
        pos += used;
    }
    r.outcome_arm = r.outcome_kind = r.outcome_bucket = r.outcome_arch = 0;
    r.outcome_seg = -1;
    r.memo = 0;
    if (ticks[3] != INT64_MIN) {
        if (len - pos < 2) {
            snprintf(errstr, errstr_size, "user record: corrupt value: outcome: truncated");
            return -1;
        }
        uint8_t f = buf[pos], seg = buf[pos + 1];
        if (((f >> 2) & 3) > 2) {
            snprintf(errstr, errstr_size, "user record: corrupt value: outcome: bad bucket");
            return -1;
        }
        r.outcome_arm = f & 1;
        r.outcome_kind = (f >> 1) & 1;
        r.outcome_bucket = (f >> 2) & 3;
        r.outcome_arch = f >> 4;
        r.outcome_seg = (int16_t)((int)seg - 1);
        pos += 2;
    }
    if (pos != len) {
        snprintf(errstr, errstr_size,
                 "user record: %zu trailing bytes after a %zu-byte record (corrupt value)",
                 len - pos, pos);
        return -1;
    }
    r.scored_tick_ms = ticks[0];
    r.resolved_tick_ms = ticks[1];
    r.pending_positive_ms = ticks[2];
    r.outcome_alert_ms = ticks[3];
    *rec = r;
    return 0;
}

int user_rec_event_part_equal(const user_rec_t *a, const user_rec_t *b)
{
    return feat_event_part_equal(&a->feat, &b->feat) && a->scored_tick_ms == b->scored_tick_ms &&
           a->resolved_tick_ms == b->resolved_tick_ms &&
           a->pending_positive_ms == b->pending_positive_ms;
}
