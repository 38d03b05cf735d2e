/* Packing of the per-user record: [version=1][feature state length][feature state]
 * [scored_tick_ms][resolved_tick_ms][pending_positive_ms] (int64 LE each). */
#include "user.h"

#include <stdio.h>
#include <string.h>

#define USER_REC_VERSION 1

void user_rec_init(user_rec_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    feat_state_init(&rec->feat);
    rec->scored_tick_ms = INT64_MIN;
    rec->resolved_tick_ms = INT64_MIN;
    rec->pending_positive_ms = INT64_MIN;
}

static void put_i64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

static int64_t get_i64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    return (int64_t)u;
}

size_t user_rec_encode(const user_rec_t *rec, uint8_t *buf, size_t cap)
{
    if (cap < 2 + 24)
        return 0;
    size_t n = feat_encode(&rec->feat, buf + 2, cap - 2 - 24);
    if (n == 0 || n > 255)
        return 0;
    buf[0] = USER_REC_VERSION;
    buf[1] = (uint8_t)n;
    put_i64(buf + 2 + n, rec->scored_tick_ms);
    put_i64(buf + 2 + n + 8, rec->resolved_tick_ms);
    put_i64(buf + 2 + n + 16, rec->pending_positive_ms);
    return 2 + n + 24;
}

int user_rec_decode(user_rec_t *rec, const uint8_t *buf, size_t len, char *errstr,
                    size_t errstr_size)
{
    if (len < 2 || buf[0] != USER_REC_VERSION) {
        snprintf(errstr, errstr_size, "user record: unsupported version %d (expected %d)",
                 len ? buf[0] : -1, USER_REC_VERSION);
        return -1;
    }
    size_t n = buf[1];
    if (len != 2 + n + 24) {
        snprintf(errstr, errstr_size, "user record: length %zu, expected %zu", len, 2 + n + 24);
        return -1;
    }
    if (feat_decode(&rec->feat, buf + 2, n, errstr, errstr_size) != 0)
        return -1;
    rec->scored_tick_ms = get_i64(buf + 2 + n);
    rec->resolved_tick_ms = get_i64(buf + 2 + n + 8);
    rec->pending_positive_ms = get_i64(buf + 2 + n + 16);
    return 0;
}
