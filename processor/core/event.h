/* The decoded user-behaviour event (schemas/event.avsc), the unit every other module
 * consumes. Plain value type: no heap pointers, so batches can copy it freely. */
#ifndef CS_EVENT_H
#define CS_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* Symbols in the order of the Avro enum in schemas/event.avsc. A writer symbol unknown to
 * the reader resolves to EV_OTHER (the enum's default). */
typedef enum {
    EV_SESSION_START = 0,
    EV_PAGE_VIEW,
    EV_SEARCH,
    EV_ADD_TO_CART,
    EV_REMOVE_FROM_CART,
    EV_PURCHASE,
    EV_REFUND,
    EV_SUPPORT_TICKET,
    EV_COUPON_REDEEM,
    EV_SUBSCRIPTION_CANCEL,
    EV_OTHER,
    EV_TYPE_COUNT
} ev_type_t;

#define EV_USER_ID_MAX 256 /* bytes; longer ids are rejected to the DLQ */
#define EV_STR_MAX     128 /* bytes kept of item_id/category/channel (truncated beyond) */

typedef struct ev_event_s {
    char user_id[EV_USER_ID_MAX + 1]; /* NUL-terminated, 1..EV_USER_ID_MAX bytes */
    uint16_t user_id_len;
    ev_type_t type;
    int64_t event_time_ms; /* Unix epoch, milliseconds, UTC */
    double amount;         /* currency units; finite */
    /* Optional fields: has_* = 0 when the Avro union holds null. */
    uint8_t has_item_id, has_category, has_channel;
    char item_id[EV_STR_MAX + 1];
    char category[EV_STR_MAX + 1];
    char channel[EV_STR_MAX + 1];
} ev_event_t;

/* *dst = *src for every byte that means something: each string up to its NUL, not the
 * unused rest of its buffer (a few dozen bytes of the struct's 680 in a typical event). In
 * two steps, so that a copy made on another thread than the event's decoding needs no
 * strlen: ev_lens measures the strings (where the event is made), ev_copy_sized copies. */
typedef struct ev_lens_s {
    uint16_t user_id, item_id, category, channel; /* bytes before the NUL */
} ev_lens_t;
void ev_lens(const ev_event_t *ev, ev_lens_t *out);
void ev_copy_sized(ev_event_t *dst, const ev_event_t *src, const ev_lens_t *lens);

/* Symbol name as in the schema ("purchase"); "other" for out-of-range values. */
const char *ev_type_name(ev_type_t t);
/* Parse a symbol name; returns -1 when unknown. */
int ev_type_parse(const char *name, ev_type_t *out);
/* Parses an ISO-8601 UTC time: "2024-01-02", "2024-01-02T10:00:00", with optional
 * fractional seconds and "Z" or "+00:00" (a space may replace the T). 0, or -1 when the text
 * is anything else. */
int ev_parse_iso_ms(const char *text, int64_t *out_ms);

/* Length of the valid UTF-8 sequence at s (at most n bytes, n >= 1), 0 when invalid:
 * overlong forms, surrogates and code points above U+10FFFF are invalid (RFC 3629). */
size_t ev_utf8_seq_len(const unsigned char *s, size_t n);
/* 1 when s[0..n) is valid UTF-8 without a NUL byte (Avro strings must be UTF-8; a user_id
 * becomes a Redis key and a CSV cell, so a NUL would alias users), else 0 with the offset
 * of the first bad byte in *bad_at (when not NULL). */
int ev_utf8_valid(const char *s, size_t n, size_t *bad_at);

/* Activity = every event except refund and subscription_cancel (DESIGN.md section 4). */
static inline int ev_is_activity(ev_type_t t)
{
    return t != EV_REFUND && t != EV_SUBSCRIPTION_CANCEL;
}

#endif
