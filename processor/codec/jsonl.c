/* JSON lines events: a small strict parser for flat objects (RFC 8259 strings with escapes
 * and surrogate pairs, numbers, true/false/null), enough for event logs and no more. */
#include "jsonl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define JL_STR_MAX 1024 /* bytes of one decoded string value; longer ones are rejected */

typedef struct cur_s {
    const char *p, *end;
} cur_t;

static void skip_ws(cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = s[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned)(ch - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes a string at c->p (on the opening quote) into out (JL_STR_MAX + 1 bytes, NUL-
 * terminated); *len excludes the NUL. Embedded NULs (\u0000) are rejected: ids become keys. */
static int parse_string(cur_t *c, char *out, size_t *len, const char **err)
{
    size_t n = 0;
    c->p++;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20) {
            *err = "control character in a string";
            return -1;
        }
        char tmp[4];
        size_t k = 1;
        if (ch != '\\') {
            tmp[0] = (char)ch;
            c->p++;
        } else {
            if (c->end - c->p < 2) {
                *err = "unterminated escape";
                return -1;
            }
            char e = c->p[1];
            c->p += 2;
            switch (e) {
            case '"':
                tmp[0] = '"';
                break;
            case '\\':
                tmp[0] = '\\';
                break;
            case '/':
                tmp[0] = '/';
                break;
            case 'b':
                tmp[0] = '\b';
                break;
            case 'f':
                tmp[0] = '\f';
                break;
            case 'n':
                tmp[0] = '\n';
                break;
            case 'r':
                tmp[0] = '\r';
                break;
            case 't':
                tmp[0] = '\t';
                break;
            case 'u': {
                unsigned cp, lo;
                if (c->end - c->p < 4 || hex4(c->p, &cp) != 0) {
                    *err = "bad \\u escape";
                    return -1;
                }
                c->p += 4;
                if (cp >= 0xD800 && cp < 0xDC00) {
                    if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' ||
                        hex4(c->p + 2, &lo) != 0 || lo < 0xDC00 || lo >= 0xE000) {
                        *err = "unpaired surrogate in a \\u escape";
                        return -1;
                    }
                    c->p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp < 0xE000) {
                    *err = "unpaired surrogate in a \\u escape";
                    return -1;
                }
                if (cp == 0) {
                    *err = "\\u0000 in a string";
                    return -1;
                }
                k = put_utf8(tmp, cp);
                break;
            }
            default:
                *err = "bad escape";
                return -1;
            }
        }
        if (n + k > JL_STR_MAX) {
            *err = "string longer than 1024 bytes";
            return -1;
        }
        memcpy(out + n, tmp, k);
        n += k;
    }
    if (c->p >= c->end) {
        *err = "unterminated string";
        return -1;
    }
    c->p++;
    out[n] = '\0';
    *len = n;
    return 0;
}

/* A number token (JSON grammar) copied into tok; returns its length, 0 when not a number. */
static size_t number_token(cur_t *c, char *tok, size_t cap)
{
    const char *s = c->p;
    while (c->p < c->end && strchr("+-0123456789.eE", *c->p))
        c->p++;
    size_t n = (size_t)(c->p - s);
    if (n == 0 || n >= cap)
        return 0;
    memcpy(tok, s, n);
    tok[n] = '\0';
    return n;
}

enum { K_OTHER, K_USER, K_TIME, K_TYPE, K_AMOUNT, K_ITEM, K_CATEGORY, K_CHANNEL };

static int key_of(const char *k)
{
    static const char *const names[] = {"",       "user_id", "event_time", "event_type",
                                        "amount", "item_id", "category",   "channel"};
    for (int i = 1; i < 8; i++)
        if (strcmp(k, names[i]) == 0)
            return i;
    return K_OTHER;
}

static void copy_opt(char *dst, uint8_t *has, const char *s, size_t n)
{
    /* Truncate on a UTF-8 boundary to EV_STR_MAX bytes. */
    if (n > EV_STR_MAX) {
        n = EV_STR_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    *has = 1;
}

/* One parse: the event being filled, what was seen, and the failure. A field setter returns
 * EV_OK to go on, or a reason: with p->err set, the message is "JSON: <err> at byte N";
 * without, the setter wrote why itself. */
typedef struct parse_s {
    ev_event_t *ev;
    int have_user, have_time;
    const char *err;
    char *why;
    size_t why_size;
} parse_t;

static ev_reason_t bad(parse_t *p, const char *err)
{
    p->err = err;
    return EV_ERR_UNDECODABLE;
}

/* A string value of n bytes for key k (name: key, for messages). */
static ev_reason_t set_string(parse_t *p, int k, const char *key, const char *str, size_t n)
{
    ev_event_t *ev = p->ev;
    size_t bad_at;
    switch (k) {
    case K_USER:
        if (n == 0) {
            snprintf(p->why, p->why_size, "user_id is empty");
            return EV_ERR_MISSING_USER_ID;
        }
        if (n > EV_USER_ID_MAX) {
            snprintf(p->why, p->why_size, "user_id is %zu bytes, more than %d", n, EV_USER_ID_MAX);
            return EV_ERR_USER_ID_TOO_LONG;
        }
        if (!ev_utf8_valid(str, n, &bad_at)) {
            /* as the Avro decoder: a raw byte (or a \u0000) in an id never becomes a user; a
             * NUL would also cut the id short and merge users */
            snprintf(p->why, p->why_size, "user_id is not valid UTF-8 or holds a NUL (byte %zu)",
                     bad_at);
            return EV_ERR_INVALID_UTF8;
        }
        memcpy(ev->user_id, str, n + 1);
        ev->user_id_len = (uint16_t)n;
        p->have_user = 1;
        return EV_OK;
    case K_TIME:
        if (ev_parse_iso_ms(str, &ev->event_time_ms) != 0)
            return bad(p, "event_time: expected epoch ms or ISO-8601 UTC");
        p->have_time = 1;
        return EV_OK;
    case K_TYPE:
        if (ev_type_parse(str, &ev->type) != 0)
            ev->type = EV_OTHER;
        return EV_OK;
    case K_AMOUNT:
        return bad(p, "amount: expected a number");
    case K_ITEM:
        copy_opt(ev->item_id, &ev->has_item_id, str, n);
        return EV_OK;
    case K_CATEGORY:
        copy_opt(ev->category, &ev->has_category, str, n);
        return EV_OK;
    case K_CHANNEL:
        copy_opt(ev->channel, &ev->has_channel, str, n);
        return EV_OK;
    default:
        (void)key;
        return EV_OK;
    }
}

/* A number value at the cursor for key k. */
static ev_reason_t set_number(parse_t *p, cur_t *c, int k, const char *key)
{
    char tok[64], *endp;
    if (!number_token(c, tok, sizeof(tok)))
        return bad(p, "malformed number");
    errno = 0;
    double d = strtod(tok, &endp);
    if (*endp != '\0')
        return bad(p, "malformed number");
    int integral = !strpbrk(tok, ".eE");
    switch (k) {
    case K_USER:
        if (!integral || tok[0] == '-')
            return bad(p, "user_id: expected a string or a non-negative integer");
        memcpy(p->ev->user_id, tok, strlen(tok) + 1);
        p->ev->user_id_len = (uint16_t)strlen(tok);
        p->have_user = 1;
        return EV_OK;
    case K_TIME: {
        long long v = strtoll(tok, &endp, 10);
        if (!integral || errno == ERANGE || *endp != '\0')
            return bad(p, "event_time: expected integer epoch milliseconds");
        p->ev->event_time_ms = v;
        p->have_time = 1;
        return EV_OK;
    }
    case K_AMOUNT:
        if (!isfinite(d)) {
            snprintf(p->why, p->why_size, "amount is not finite");
            return EV_ERR_NON_FINITE_AMOUNT;
        }
        p->ev->amount = d;
        return EV_OK;
    case K_OTHER:
        return EV_OK;
    default:
        snprintf(p->why, p->why_size, "%s: expected a string, got a number", key);
        return EV_ERR_UNDECODABLE;
    }
}

/* The value at the cursor for key k (name: key). */
static ev_reason_t set_value(parse_t *p, cur_t *c, int k, const char *key)
{
    char str[JL_STR_MAX + 1];
    size_t n;
    char ch = *c->p;
    if (ch == '"') {
        if (parse_string(c, str, &n, &p->err) != 0)
            return EV_ERR_UNDECODABLE;
        return set_string(p, k, key, str, n);
    }
    if (ch == '-' || (ch >= '0' && ch <= '9'))
        return set_number(p, c, k, key);
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        if (k == K_USER || k == K_TIME) {
            snprintf(p->why, p->why_size, "%s is null", key);
            return k == K_USER ? EV_ERR_MISSING_USER_ID : EV_ERR_UNDECODABLE;
        }
        return EV_OK;
    }
    if (c->end - c->p >= 4 && memcmp(c->p, "true", 4) == 0 && k == K_OTHER) {
        c->p += 4;
        return EV_OK;
    }
    if (c->end - c->p >= 5 && memcmp(c->p, "false", 5) == 0 && k == K_OTHER) {
        c->p += 5;
        return EV_OK;
    }
    return bad(p,
               (ch == '{' || ch == '[') ? "nested values are not supported" : "unexpected value");
}

/* The members of the object after its '{', up to and past its '}'. */
static ev_reason_t parse_members(parse_t *p, cur_t *c)
{
    char str[JL_STR_MAX + 1], key[64];
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return EV_OK;
    }
    for (;;) {
        size_t n;
        skip_ws(c);
        if (c->p >= c->end || *c->p != '"')
            return bad(p, "expected a quoted key");
        if (parse_string(c, str, &n, &p->err) != 0)
            return EV_ERR_UNDECODABLE;
        /* Keys longer than any known one are just "other": keep a prefix for messages. */
        memcpy(key, str, n < sizeof(key) - 1 ? n + 1 : sizeof(key) - 1);
        key[sizeof(key) - 1] = '\0';
        int k = key_of(key);
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':')
            return bad(p, "expected ':' after a key");
        c->p++;
        skip_ws(c);
        if (c->p >= c->end)
            return bad(p, "missing value");
        ev_reason_t r = set_value(p, c, k, key);
        if (r != EV_OK)
            return r;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return EV_OK;
        }
        return bad(p, "expected ',' or '}'");
    }
}

ev_reason_t jl_parse_event(const char *line, size_t len, ev_event_t *ev, char *why, size_t why_size)
{
    parse_t p = {.ev = ev, .why = why, .why_size = why_size};
    cur_t c = {line, line + len};
    memset(ev, 0, sizeof(*ev));
    ev->type = EV_OTHER;
    ev_reason_t r;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        r = bad(&p, "expected a JSON object");
    else {
        c.p++;
        r = parse_members(&p, &c);
    }
    if (r == EV_OK) {
        skip_ws(&c);
        if (c.p != c.end)
            r = bad(&p, "trailing characters after the object");
        else if (!p.have_user) {
            snprintf(why, why_size, "user_id missing");
            return EV_ERR_MISSING_USER_ID;
        } else if (!p.have_time)
            r = bad(&p, "event_time missing");
    }
    if (r != EV_OK && p.err)
        snprintf(why, why_size, "JSON: %s at byte %ld", p.err, (long)(c.p - line));
    return r;
}

struct jl_reader_s {
    gzFile f;
    char *buf;
    size_t cap;
    long line_no;
};

jl_reader_t *jl_reader_open(const char *path, char *errstr, size_t errstr_size)
{
    jl_reader_t *r = calloc(1, sizeof(*r));
    if (!r || !(r->buf = malloc(r->cap = 65536))) {
        free(r);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!(r->f = gzopen(path, "rb"))) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno ? errno : ENOENT));
        free(r->buf);
        free(r);
        return NULL;
    }
    return r;
}

int jl_reader_next(jl_reader_t *r, ev_event_t *ev, ev_reason_t *reason, char *why, size_t why_size,
                   long *line_no)
{
    for (;;) {
        size_t n = 0;
        for (;;) { /* one whole line, however long */
            if (!gzgets(r->f, r->buf + n, (int)(r->cap - n))) {
                int errnum;
                const char *msg = gzerror(r->f, &errnum);
                if (errnum != Z_OK && errnum != Z_STREAM_END) {
                    snprintf(why, why_size, "read error: %s", msg);
                    return -1;
                }
                if (n == 0)
                    return 0;
                break;
            }
            n += strlen(r->buf + n);
            if (n > 0 && r->buf[n - 1] == '\n')
                break;
            if (r->cap - n < 2) {
                char *b = realloc(r->buf, r->cap * 2);
                if (!b) {
                    snprintf(why, why_size, "out of memory");
                    return -1;
                }
                r->buf = b;
                r->cap *= 2;
            }
        }
        r->line_no++;
        size_t k = 0;
        while (k < n && strchr(" \t\r\n", r->buf[k]))
            k++;
        if (k == n)
            continue; /* blank line */
        *line_no = r->line_no;
        *reason = jl_parse_event(r->buf, n, ev, why, why_size);
        return 1;
    }
}

void jl_reader_close(jl_reader_t *r)
{
    if (!r)
        return;
    gzclose(r->f);
    free(r->buf);
    free(r);
}
