/* Wire encoding of events with the reader schema (schemas/event.avsc) in the three framings.
 * The Event record is flat, so its Avro binary is written directly (zig-zag varints, IEEE
 * doubles little-endian) into a fixed buffer: no allocation per event. The tests check the
 * bytes against Avro-C and fastavro. */
#include "codec_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ev_encoder_s {
    ev_wire_t wire;
    size_t header_len;
    uint8_t buf[CS_WIRE_HEADER_MAX + CS_EVENT_BODY_MAX]; /* framing header, then the body */
};

uint8_t *cs_put_long(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        *p++ = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    *p++ = (uint8_t)z;
    return p;
}

uint8_t *cs_put_string(uint8_t *p, const char *s, size_t n)
{
    p = cs_put_long(p, (int64_t)n);
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *put_optional(uint8_t *p, uint8_t has, const char *s)
{
    if (!has)
        return cs_put_long(p, 0); /* union branch 0: null */
    p = cs_put_long(p, 1);
    return cs_put_string(p, s, strnlen(s, EV_STR_MAX));
}

uint8_t *cs_put_double(uint8_t *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(bits >> (8 * i));
    return p;
}

size_t cs_wire_header(ev_wire_t wire, int32_t schema_id, uint64_t fingerprint,
                      uint8_t out[CS_WIRE_HEADER_MAX])
{
    if (wire == EV_WIRE_CONFLUENT) {
        uint32_t id = (uint32_t)schema_id;
        out[0] = 0;
        for (int i = 0; i < 4; i++)
            out[1 + i] = (uint8_t)(id >> (24 - 8 * i));
        return 5;
    }
    if (wire == EV_WIRE_SINGLE_OBJECT) {
        out[0] = 0xC3;
        out[1] = 0x01;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(fingerprint >> (8 * i));
        return 10;
    }
    return 0;
}

int cs_encode_body(const ev_event_t *ev, uint8_t *buf)
{
    if (ev->type < 0 || ev->type >= EV_TYPE_COUNT || ev->user_id_len > EV_USER_ID_MAX)
        return -1;
    /* user_id_len is authoritative; 0 with a non-empty string means "not filled in" */
    size_t uid_len = ev->user_id_len ? ev->user_id_len : strnlen(ev->user_id, EV_USER_ID_MAX);
    uint8_t *p = cs_put_string(buf, ev->user_id, uid_len);
    p = cs_put_long(p, ev->event_time_ms);
    p = cs_put_long(p, (int64_t)ev->type); /* symbol order = ev_type_t order */
    p = cs_put_double(p, ev->amount);
    p = put_optional(p, ev->has_item_id, ev->item_id);
    p = put_optional(p, ev->has_category, ev->category);
    p = put_optional(p, ev->has_channel, ev->channel);
    return (int)(p - buf);
}

ev_encoder_t *ev_encoder_new(ev_wire_t wire, int32_t schema_id, char *errstr, size_t errstr_size)
{
    if (wire != EV_WIRE_CONFLUENT && wire != EV_WIRE_SINGLE_OBJECT && wire != EV_WIRE_PLAIN) {
        snprintf(errstr, errstr_size, "encoder needs confluent, single-object or plain framing");
        return NULL;
    }
    ev_encoder_t *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    e->wire = wire;
    uint64_t fp = 0;
    if (wire == EV_WIRE_SINGLE_OBJECT) {
        avro_schema_t reader = cs_reader_schema_new(errstr, errstr_size);
        int rc = reader ? cs_schema_fingerprint(reader, &fp) : -1;
        if (reader)
            avro_schema_decref(reader);
        if (rc != 0) {
            if (reader)
                snprintf(errstr, errstr_size, "cannot fingerprint the reader schema");
            free(e);
            return NULL;
        }
    }
    e->header_len = cs_wire_header(wire, schema_id, fp, e->buf);
    return e;
}

int ev_encode(ev_encoder_t *enc, const ev_event_t *ev, const void **buf, size_t *len)
{
    int n = cs_encode_body(ev, enc->buf + enc->header_len);
    if (n < 0)
        return -1;
    *buf = enc->buf;
    *len = enc->header_len + (size_t)n;
    return 0;
}

void ev_encoder_destroy(ev_encoder_t *enc)
{
    free(enc);
}
