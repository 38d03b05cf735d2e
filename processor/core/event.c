/* Event type names, shared by the decoder, the CSV importer, the generator and reports. */
#include "event.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const ev_type_names[EV_TYPE_COUNT] = {
    "session_start", "page_view", "search",         "add_to_cart",   "remove_from_cart",
    "purchase",      "refund",    "support_ticket", "coupon_redeem", "subscription_cancel",
    "other",
};

const char *ev_type_name(ev_type_t t)
{
    return (t >= 0 && t < EV_TYPE_COUNT) ? ev_type_names[t] : "other";
}

int ev_type_parse(const char *name, ev_type_t *out)
{
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        if (strcmp(name, ev_type_names[i]) == 0) {
            *out = (ev_type_t)i;
            return 0;
        }
    }
    return -1;
}

int ev_parse_iso_ms(const char *text, int64_t *out_ms)
{
    struct tm tm = {0};
    int used = 0;
    if (sscanf(text, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &used) != 3 ||
        used != 10)
        return -1;
    const char *p = text + used;
    int64_t ms = 0;
    if (*p == 'T' || *p == ' ') {
        int more = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &more) != 3 ||
            more != 8)
            return -1;
        p += 1 + more;
        if (*p == '.') {
            int64_t scale = 100;
            for (p++; *p >= '0' && *p <= '9'; p++) {
                ms += (*p - '0') * scale;
                scale /= 10;
            }
        }
    }
    if (!(*p == '\0' || strcmp(p, "Z") == 0 || strcmp(p, "+00:00") == 0))
        return -1;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = tm.tm_year, leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > mdays[tm.tm_mon - 1] + (tm.tm_mon == 2 && leap) || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out_ms = (int64_t)timegm(&tm) * 1000 + ms;
    return 0;
}

size_t ev_utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Every byte of w in 0x01..0x7F, i.e. 8 valid one-byte sequences: no top bit set, and no
 * zero byte (the classic has-zero-byte test). */
static int ascii_nonzero8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, tops = 0x8080808080808080ULL;
    return (w & tops) == 0 && ((w - ones) & ~w & tops) == 0;
}

int ev_utf8_valid(const char *s, size_t n, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (n - i >= 8) { /* user ids are mostly ASCII: 8 bytes at a time while they are */
            uint64_t w;
            memcpy(&w, u + i, 8);
            if (ascii_nonzero8(w)) {
                i += 8;
                continue;
            }
        }
        if (u[i] >= 0x01 && u[i] <= 0x7F) { /* one ASCII byte, without the call */
            i++;
            continue;
        }
        size_t len = u[i] ? ev_utf8_seq_len(u + i, n - i) : 0;
        if (len == 0) {
            if (bad_at)
                *bad_at = i;
            return 0;
        }
        i += len;
    }
    return 1;
}

void ev_lens(const ev_event_t *ev, ev_lens_t *out)
{
    /* user_id_len bytes, also when a rejected id holds a NUL */
    size_t n = strnlen(ev->user_id, sizeof(ev->user_id) - 1);
    if (ev->user_id_len > n)
        n = ev->user_id_len < sizeof(ev->user_id) - 1 ? ev->user_id_len : sizeof(ev->user_id) - 1;
    out->user_id = (uint16_t)n;
    out->item_id = (uint16_t)strnlen(ev->item_id, sizeof(ev->item_id) - 1);
    out->category = (uint16_t)strnlen(ev->category, sizeof(ev->category) - 1);
    out->channel = (uint16_t)strnlen(ev->channel, sizeof(ev->channel) - 1);
}

static void copy_n(char *dst, const char *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void ev_copy_sized(ev_event_t *dst, const ev_event_t *src, const ev_lens_t *lens)
{
    copy_n(dst->user_id, src->user_id, lens->user_id);
    dst->user_id_len = src->user_id_len;
    dst->type = src->type;
    dst->event_time_ms = src->event_time_ms;
    dst->amount = src->amount;
    dst->has_item_id = src->has_item_id;
    dst->has_category = src->has_category;
    dst->has_channel = src->has_channel;
    copy_n(dst->item_id, src->item_id, lens->item_id);
    copy_n(dst->category, src->category, lens->category);
    copy_n(dst->channel, src->channel, lens->channel);
}
