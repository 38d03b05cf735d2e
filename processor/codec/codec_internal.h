/* Internals shared by the codec files (codec_*.c), not part of the public API: the built-in
 * reader schema, canonical form and fingerprints, the bounds-checking walk that guards
 * Avro-C against hostile input, and the per-writer-schema decode plan. */
#ifndef CS_CODEC_INTERNAL_H
#define CS_CODEC_INTERNAL_H

#include <avro.h>
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

/* CRC-64-AVRO (Rabin) fingerprint of len bytes. */
uint64_t cs_rabin64(const void *buf, size_t len);

/* Fingerprint of the schema's Parsing Canonical Form; returns -1 when it cannot be built. */
int cs_schema_fingerprint(avro_schema_t schema, uint64_t *out);

/* ---- codec_walk.c ---- */

typedef struct cs_walk_s cs_walk_t;
/* Compiles a writer schema into a flat program for cs_walk_check (one-off, at load time). */
cs_walk_t *cs_walk_new(avro_schema_t writer, char *errstr, size_t errstr_size);
void cs_walk_destroy(cs_walk_t *w);
/* Walks one datum of the writer schema in buf without allocating: every length, count,
 * union branch and enum index is checked against the schema and the bytes left. Returns the
 * number of bytes the datum occupies, or -1 with why set. */
int64_t cs_walk_check(const cs_walk_t *w, const uint8_t *buf, size_t len, char *why,
                      size_t why_size);

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
/* Decodes one datum (no framing) through the plan: walk, Avro-C read, extract, validate.
 * reader is a memory reader the caller owns; its source is replaced. */
ev_reason_t cs_plan_decode(cs_plan_t *p, avro_reader_t reader, const uint8_t *buf, size_t len,
                           ev_event_t *out, char *why, size_t why_size);
/* Bytes the datum at buf occupies (walked against the writer schema, nothing allocated), or
 * -1 with why set: how container blocks, whose records carry no length, are split. */
int64_t cs_plan_datum_len(const cs_plan_t *p, const uint8_t *buf, size_t len, char *why,
                          size_t why_size);
/* The resolved value Avro-C reads into (for container files with a codec Avro-C reads). */
avro_value_t *cs_plan_resolved_value(cs_plan_t *p);
/* Extracts and validates the event after a successful avro_value_read into the plan. */
ev_reason_t cs_plan_extract(cs_plan_t *p, ev_event_t *out, char *why, size_t why_size);

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
