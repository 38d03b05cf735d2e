/* Parsing what a GET /v1/users/{id} request brings (user_view.h): the %-encoded id of the
 * path, bounds-checked byte by byte (tests/fuzz/fuzz_user_id.c), and the `at` time. No
 * allocation, no library beyond core/. */
#include "user_view.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "event.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int uv_decode_id(const char *raw, char *out, size_t cap, size_t *len, char *why, size_t why_size)
{
    size_t n = 0, bad;
    *len = 0;
    if (cap == 0) {
        snprintf(why, why_size, "no room for the id");
        return -1;
    }
    out[0] = '\0';
    for (const char *p = raw; *p; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int hi = hexval((unsigned char)p[1]), lo = hi < 0 ? -1 : hexval((unsigned char)p[2]);
            if (hi < 0 || lo < 0) {
                snprintf(why, why_size, "bad %%-escape at byte %zu of the path", (size_t)(p - raw));
                return -1;
            }
            c = hi * 16 + lo;
            p += 2;
        }
        if (c == 0) {
            snprintf(why, why_size, "user id holds a NUL byte");
            return -1;
        }
        if (n >= EV_USER_ID_MAX || n + 1 >= cap) {
            snprintf(why, why_size, "user id longer than %d bytes", EV_USER_ID_MAX);
            return -1;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (n == 0) {
        snprintf(why, why_size, "empty user id: GET /v1/users/{id}");
        return -1;
    }
    if (!ev_utf8_valid(out, n, &bad)) {
        snprintf(why, why_size, "user id is not UTF-8 (byte %zu)", bad);
        out[0] = '\0';
        return -1;
    }
    *len = n;
    return 0;
}

int uv_parse_time(const char *text, int64_t *out_ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end != text && *end == '\0' && errno == 0) {
        *out_ms = v;
        return 0;
    }
    return ev_parse_iso_ms(text, out_ms);
}
