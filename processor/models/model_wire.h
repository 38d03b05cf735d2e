/* Little-endian byte writer/reader for the model snapshot (model.c and the sections written
 * by scaler.c, kmeans.c, logreg.c, pmetrics.c). Explicit byte order, never memcpy of structs,
 * so a snapshot written on one host loads on any other. Errors are sticky: after the first
 * failure every call is a no-op and `failed` stays set, so callers check once at the end. */
#ifndef CS_MODEL_WIRE_H
#define CS_MODEL_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct mw_buf_s {
    uint8_t *data; /* malloc'd; owned by whoever holds the buffer */
    size_t len;
    size_t cap;
    int failed; /* allocation failure */
} mw_buf_t;

typedef struct mw_reader_s {
    const uint8_t *p; /* borrowed */
    size_t len;
    size_t off;
    int failed; /* read past the end */
} mw_reader_t;

static inline int mw_reserve(mw_buf_t *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->failed = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

static inline void mw_put_bytes(mw_buf_t *b, const void *src, size_t n)
{
    if (mw_reserve(b, n) == 0) {
        memcpy(b->data + b->len, src, n);
        b->len += n;
    }
}

static inline void mw_put_u8(mw_buf_t *b, uint8_t v)
{
    mw_put_bytes(b, &v, 1);
}

static inline void mw_put_u32(mw_buf_t *b, uint32_t v)
{
    uint8_t t[4];
    for (int i = 0; i < 4; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    mw_put_bytes(b, t, 4);
}

static inline void mw_put_u64(mw_buf_t *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    mw_put_bytes(b, t, 8);
}

/* Doubles travel as their IEEE-754 bit pattern, so decode->encode is byte-identical
 * (including -0.0 and any NaN payload). */
static inline void mw_put_f64(mw_buf_t *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    mw_put_u64(b, u);
}

/* LEB128 unsigned varint: the metrics histogram is mostly small counts. */
static inline void mw_put_varint(mw_buf_t *b, uint64_t v)
{
    while (v >= 0x80) {
        mw_put_u8(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    mw_put_u8(b, (uint8_t)v);
}

static inline const uint8_t *mw_take(mw_reader_t *r, size_t n)
{
    if (r->failed || r->len - r->off < n) {
        r->failed = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static inline uint8_t mw_get_u8(mw_reader_t *r)
{
    const uint8_t *p = mw_take(r, 1);
    return p ? p[0] : 0;
}

static inline uint32_t mw_get_u32(mw_reader_t *r)
{
    const uint8_t *p = mw_take(r, 4);
    uint32_t v = 0;
    if (p)
        for (int i = 0; i < 4; i++)
            v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t mw_get_u64(mw_reader_t *r)
{
    const uint8_t *p = mw_take(r, 8);
    uint64_t v = 0;
    if (p)
        for (int i = 0; i < 8; i++)
            v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline double mw_get_f64(mw_reader_t *r)
{
    uint64_t u = mw_get_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/* Rejects encodings longer than 10 bytes or overflowing 64 bits; a non-minimal encoding
 * (trailing 0x80 0x00) is also refused so every value has exactly one byte form. */
static inline uint64_t mw_get_varint(mw_reader_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t byte = mw_get_u8(r);
        if (r->failed)
            return 0;
        if (shift == 63 && byte > 1)
            break;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            if (byte == 0 && shift > 0)
                break;
            return v;
        }
    }
    r->failed = 1;
    return 0;
}

#endif
