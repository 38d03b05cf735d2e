/* Codec names and checks shared by every framing: stable reason codes (DLQ `error` header,
 * metrics labels), wire-format names (config), and the event-time window check. */
#include "codec.h"

#include <stdio.h>
#include <string.h>

static const char *const reason_codes[EV_ERR_COUNT] = {
    "ok",
    "undecodable",
    "unknown_schema",
    "missing_user_id",
    "user_id_too_long",
    "non_finite_amount",
    "time_out_of_window",
    "invalid_utf8",
};

const char *ev_reason_code(ev_reason_t r)
{
    return (r >= 0 && r < EV_ERR_COUNT) ? reason_codes[r] : "unknown";
}

static const char *const wire_names[] = {"auto", "confluent", "single-object", "plain"};

int ev_wire_parse(const char *name, ev_wire_t *out)
{
    for (int i = 0; i < (int)(sizeof wire_names / sizeof wire_names[0]); i++) {
        if (strcmp(name, wire_names[i]) == 0) {
            *out = (ev_wire_t)i;
            return 0;
        }
    }
    return -1;
}

const char *ev_wire_name(ev_wire_t w)
{
    return (w >= EV_WIRE_AUTO && w <= EV_WIRE_PLAIN) ? wire_names[w] : "unknown";
}

/* Saturating a + b for the window bounds: a far-off watermark or a huge configured window
 * must clamp, not wrap around and reject (or accept) everything. */
static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* A bound <= 0 disables its side (0 would reject every event that moves the watermark
 * forward, so it cannot mean "strict"). */
ev_reason_t ev_check_time(const ev_event_t *ev, int64_t watermark_ms, int64_t now_ms,
                          int64_t max_past_ms, int64_t max_future_ms)
{
    if (watermark_ms != INT64_MIN && max_past_ms > 0 &&
        ev->event_time_ms < add_sat(watermark_ms, -max_past_ms))
        return EV_ERR_TIME_OUT_OF_WINDOW;
    int64_t ref = watermark_ms > now_ms ? watermark_ms : now_ms;
    if (ref != INT64_MIN && max_future_ms > 0 && ev->event_time_ms > add_sat(ref, max_future_ms))
        return EV_ERR_TIME_OUT_OF_WINDOW;
    return EV_OK;
}

void ev_time_window_why(const ev_event_t *ev, int64_t watermark_ms, int64_t now_ms,
                        int64_t max_past_ms, int64_t max_future_ms, char *why, size_t why_size)
{
    long long t = (long long)ev->event_time_ms;
    if (watermark_ms != INT64_MIN && max_past_ms > 0 &&
        ev->event_time_ms < add_sat(watermark_ms, -max_past_ms)) {
        snprintf(why, why_size,
                 "event_time %lld is more than events.max_past (%lld ms) before the watermark "
                 "%lld",
                 t, (long long)max_past_ms, (long long)watermark_ms);
        return;
    }
    char ref[96];
    if (watermark_ms == INT64_MIN && now_ms == INT64_MIN)
        snprintf(ref, sizeof(ref), "no watermark yet");
    else if (watermark_ms == INT64_MIN)
        snprintf(ref, sizeof(ref), "the wall clock %lld (no watermark yet)", (long long)now_ms);
    else if (now_ms == INT64_MIN || watermark_ms >= now_ms)
        snprintf(ref, sizeof(ref), "the watermark %lld", (long long)watermark_ms);
    else
        snprintf(ref, sizeof(ref), "the wall clock %lld (ahead of the watermark %lld)",
                 (long long)now_ms, (long long)watermark_ms);
    snprintf(why, why_size, "event_time %lld is more than events.max_future (%lld ms) after %s", t,
             (long long)max_future_ms, ref);
}
