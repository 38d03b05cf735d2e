/* Internals shared by the codec files (codec_*.c), not part of the public API: the built-in
 * reader schema, canonical form and fingerprints, the bounds-checking walk that guards
 * Avro-C against hostile input, and the per-writer-schema decode plan. */
#ifndef CS_CODEC_INTERNAL_H
#define CS_CODEC_INTERNAL_H

#include <avro.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* Deepest nesting of a writer schema the walk follows (recursive schemas); deeper data is
 * undecodable rather than a stack overflow. */
#define CS_WALK_MAX_DEPTH 64
/* Items of zero encoded size (null, empty records) per array/map block: such a block costs
 * no input bytes, so a hostile count would make Avro-C allocate without bound. */
#define CS_WALK_MAX_EMPTY_ITEMS 4096

/* ---- codec_schema.c ---- */

/* The reader schema (schemas/event.avsc embedded at build time), NUL-terminated JSON. */
extern const char cs_event_avsc_json[];

/* Caps every Avro-C allocation (once per process; called by cs_reader_schema_new, which every
 * codec entry point goes through): a hostile length fails cleanly instead of allocating. */
void cs_avro_cap_allocations(void);

/* Parses the built-in reader schema; returns a new reference (caller decrefs) or NULL. */
avro_schema_t cs_reader_schema_new(char *errstr, size_t errstr_size);

/* Parses a schema file; returns a new reference or NULL with errstr naming the file. */
avro_schema_t cs_schema_load_file(const char *path, char *errstr, size_t errstr_size);

/* Writes the Parsing Canonical Form of schema into a malloc'd NUL-terminated string (caller
 * frees) or returns NULL on allocation failure / unsupported schema. */
char *cs_schema_canonical_form(avro_schema_t schema);

/* The schema a link (a named type used again) stands for; s itself when not a link. */
avro_schema_t cs_schema_unlink(avro_schema_t s);

/* CRC-64-AVRO (Rabin) fingerprint of len bytes. */
uint64_t cs_rabin64(const void *buf, size_t len);

/* Fingerprint of the schema's Parsing Canonical Form; returns -1 when it cannot be built. */
int cs_schema_fingerprint(avro_schema_t schema, uint64_t *out);

/* ---- codec_walk.c ---- */

/* A cursor over one datum's bytes; why (may be NULL) gets "<what> at byte N" on a failure. */
typedef struct cs_cursor_s {
    const uint8_t *start, *p, *end;
    char *why;
    size_t why_size;
} cs_cursor_t;

static inline int cs_cursor_fail(cs_cursor_t *c, const char *what)
{
    if (c->why && c->why_size)
        snprintf(c->why, c->why_size, "%s at byte %zu", what, (size_t)(c->p - c->start));
    return -1;
}

/* Reads a zig-zag varint of at most max_bytes; the last byte may only carry the bits that
 * fit (int: 5 bytes, 32 bits; long: 10 bytes, 64 bits). 0, or -1 with why. */
static inline int cs_read_varint(cs_cursor_t *c, int max_bytes, int64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (c->p >= c->end)
            return cs_cursor_fail(c, "truncated varint");
        uint8_t b = *c->p++;
        if (i == max_bytes - 1 && (b & 0x80 || b > (max_bytes == 5 ? 0x0f : 0x01)))
            return cs_cursor_fail(c, "varint out of range");
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return cs_cursor_fail(c, "varint too long");
}

typedef struct cs_walk_s cs_walk_t;
/* Compiles a writer schema into a flat program for cs_walk_check (one-off, at load time). */
cs_walk_t *cs_walk_new(avro_schema_t writer, char *errstr, size_t errstr_size);
void cs_walk_destroy(cs_walk_t *w);
/* Walks one datum of the writer schema in buf without allocating: every length, count,
 * union branch and enum index is checked against the schema and the bytes left. Returns the
 * number of bytes the datum occupies, or -1 with why set. */
int64_t cs_walk_check(const cs_walk_t *w, const uint8_t *buf, size_t len, char *why,
                      size_t why_size);
/* Walks field i of the writer record (the walk's root) from c, as cs_walk_check does. */
int cs_walk_field(const cs_walk_t *w, size_t i, cs_cursor_t *c);
/* The writer record's number of fields. */
size_t cs_walk_fields(const cs_walk_t *w);

/* ---- codec_plan.c ---- */

/* Everything needed to turn bytes written with one writer schema into an ev_event_t:
 * prepared once per writer schema, then reused for every message (no allocation by us). */
typedef struct cs_plan_s cs_plan_t;

/* Resolves writer against the reader schema. Takes no ownership (increfs what it keeps).
 * Returns NULL with errstr set when the writer cannot be read as an Event (missing field
 * without default, incompatible types). */
cs_plan_t *cs_plan_new(avro_schema_t writer, avro_schema_t reader, char *errstr,
                       size_t errstr_size);
void cs_plan_destroy(cs_plan_t *p);
uint64_t cs_plan_fingerprint(const cs_plan_t *p);
/* 1 when the plan decodes through the direct decoder (codec_direct.c). */
int cs_plan_is_direct(const cs_plan_t *p);
/* Decodes one datum (no framing) through the plan: the direct decoder when the plan has one
 * and it reads the datum exactly, else the general path (walk, Avro-C read, extract); then
 * validate. reader is a memory reader the caller owns; its source may be replaced. */
ev_reason_t cs_plan_decode(cs_plan_t *p, avro_reader_t reader, const uint8_t *buf, size_t len,
                           ev_event_t *out, char *why, size_t why_size);
/* Bytes the datum at buf occupies (walked against the writer schema, nothing allocated), or
 * -1 with why set. */
int64_t cs_plan_datum_len(const cs_plan_t *p, const uint8_t *buf, size_t len, char *why,
                          size_t why_size);
/* The resolved value Avro-C reads into (for container files with a codec Avro-C reads). */
avro_value_t *cs_plan_resolved_value(cs_plan_t *p);
/* Extracts and validates the event after a successful avro_value_read into the plan. */
ev_reason_t cs_plan_extract(cs_plan_t *p, ev_event_t *out, char *why, size_t why_size);
/* Decodes one datum with the general path (walk, Avro-C's resolver, extract), never the
 * direct one: for the tests that compare the two. */
ev_reason_t cs_plan_decode_general(cs_plan_t *p, avro_reader_t reader, const uint8_t *buf,
                                   size_t len, ev_event_t *out, char *why, size_t why_size);
/* The datum at the start of buf[0..len) (a container block's next record): decoded, its
 * length in *used. Returns EV_ERR_UNDECODABLE with *used = -1 when the datum itself cannot
 * be walked (a corrupt block), else the event's reason with *used set. */
ev_reason_t cs_plan_decode_next(cs_plan_t *p, avro_reader_t reader, const uint8_t *buf, size_t len,
                                int64_t *used, ev_event_t *out, char *why, size_t why_size);

/* A string as read from a datum: borrowed bytes (not NUL-terminated), absent when !has. */
typedef struct cs_raw_str_s {
    const char *s;
    size_t len;
    uint8_t has;
} cs_raw_str_t;

/* One datum's reader fields as read, before validation (fields the writer lacks hold the
 * reader's defaults: amount 0, optional strings absent). Borrows the datum's bytes. */
typedef struct cs_raw_event_s {
    cs_raw_str_t user_id;
    int64_t event_time_ms;
    int type_index; /* the writer's enum index */
    double amount;
    cs_raw_str_t item_id, category, channel;
} cs_raw_event_t;

/* Checks and copies a datum's fields into out (user id rules, the enum by symbol name,
 * optional strings cut to EV_STR_MAX, a finite amount): the one validation both decode
 * paths share. */
ev_reason_t cs_plan_validate(const cs_plan_t *p, const cs_raw_event_t *raw, ev_event_t *out,
                             char *why, size_t why_size);

/* ---- codec_direct.c ---- */

/* The direct decoder: for a writer whose fields the reader uses have the reader's own types
 * (string user_id, long event_time, an enum event_type, double amount, optional strings as
 * ["null","string"] in either order, a plain string or null), one pass over the bytes reads
 * them straight into a cs_raw_event_t, walking the other fields as cs_walk_check does; no
 * Avro-C call, no allocation. Other writers (type promotions, unions elsewhere) keep the
 * general path. The result equals the general path's for every input the direct pass
 * accepts (tests/unit/test_codec_direct.c compares them on evolved schemas and mutated
 * bytes); anything it refuses is handed to the general path, so errors read the same. */
typedef struct cs_direct_s cs_direct_t;

/* NULL when writer is not eligible or on out of memory (the general path then serves). */
cs_direct_t *cs_direct_new(avro_schema_t writer, const cs_walk_t *walk);
void cs_direct_destroy(cs_direct_t *d);
/* Reads the datum at buf[0..len): 0 with *raw and *used (bytes read), or -1 (anything
 * wrong: the caller takes the general path). */
int cs_direct_read(const cs_direct_t *d, const uint8_t *buf, size_t len, cs_raw_event_t *raw,
                   size_t *used);

/* ---- codec_encode.c ---- */

/* Worst-case encoded size of one Event body (without framing). */
#define CS_EVENT_BODY_MAX (10 + EV_USER_ID_MAX + 10 + 10 + 8 + 3 * (10 + 10 + EV_STR_MAX))

/* Writes the Avro binary body of ev (reader schema) into buf (at least CS_EVENT_BODY_MAX
 * bytes); returns the length or -1 when ev is not encodable (bad type, user_id_len). */
int cs_encode_body(const ev_event_t *ev, uint8_t *buf);

/* Avro binary primitives, shared with the alert encoder (alert_codec.c). Each writes at p
 * (the caller guarantees room: 10 bytes for a long, 8 for a double, 10 + n for a string)
 * and returns the byte after what it wrote. */
uint8_t *cs_put_long(uint8_t *p, int64_t v);  /* zig-zag varint: int, long, enum, counts */
uint8_t *cs_put_double(uint8_t *p, double v); /* IEEE 754, little-endian */
uint8_t *cs_put_string(uint8_t *p, const char *s, size_t n);

/* Longest framing header (single-object: C3 01 + 8-byte fingerprint). */
#define CS_WIRE_HEADER_MAX 10
/* Writes the framing header of wire into out: Confluent 00 + big-endian schema_id,
 * single-object C3 01 + little-endian fingerprint, plain nothing. Returns its length. */
size_t cs_wire_header(ev_wire_t wire, int32_t schema_id, uint64_t fingerprint,
                      uint8_t out[CS_WIRE_HEADER_MAX]);

#endif
