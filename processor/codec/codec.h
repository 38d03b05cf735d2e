/* Avro codec for events: wire decoding (Confluent framing, single-object encoding, plain
 * binary) with writer->reader schema resolution, wire encoding, and object container files.
 * Schemas are parsed once when a decoder/encoder is created; decode/encode allocate nothing
 * per message on the hot path. */
#ifndef CS_CODEC_H
#define CS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

typedef enum {
    EV_WIRE_AUTO = 0,      /* decode only: detect from the first bytes */
    EV_WIRE_CONFLUENT,     /* 0x00 + 4-byte big-endian schema id + Avro binary */
    EV_WIRE_SINGLE_OBJECT, /* 0xC3 0x01 + 8-byte little-endian CRC-64-AVRO fingerprint + binary */
    EV_WIRE_PLAIN          /* Avro binary of the reader schema, nothing else */
} ev_wire_t;

/* Why a message was rejected. Codes are stable (DLQ header `error`, metrics labels). */
typedef enum {
    EV_OK = 0,
    EV_ERR_UNDECODABLE,
    EV_ERR_UNKNOWN_SCHEMA,
    EV_ERR_MISSING_USER_ID,
    EV_ERR_USER_ID_TOO_LONG,
    EV_ERR_NON_FINITE_AMOUNT,
    EV_ERR_TIME_OUT_OF_WINDOW,
    EV_ERR_INVALID_UTF8, /* user_id is not UTF-8 (Avro strings must be) */
    EV_ERR_COUNT
} ev_reason_t;

/* Stable snake_case code of a reason ("undecodable", "unknown_schema", ...). */
const char *ev_reason_code(ev_reason_t r);
/* Parse a wire name: "auto", "confluent", "single-object", "plain"; -1 when unknown. */
int ev_wire_parse(const char *name, ev_wire_t *out);
const char *ev_wire_name(ev_wire_t w);

/* Event-time window check: EV_OK or EV_ERR_TIME_OUT_OF_WINDOW. The window is
 * [watermark - max_past, max(watermark, now) + max_future]: the future side also follows the
 * wall clock, so a replayed log's quiet spell of weeks is not "future" while a timestamp far
 * ahead of both is. A bound <= 0 disables its side; INT64_MIN as watermark (no watermark
 * yet) disables the past side, INT64_MIN as now_ms leaves the future side to the
 * watermark. Arithmetic saturates. */
ev_reason_t ev_check_time(const ev_event_t *ev, int64_t watermark_ms, int64_t now_ms,
                          int64_t max_past_ms, int64_t max_future_ms);
/* Writes why ev_check_time() rejected ev with the same arguments: which side, the bound
 * and what it was measured from ("no watermark yet" instead of a sentinel number). */
void ev_time_window_why(const ev_event_t *ev, int64_t watermark_ms, int64_t now_ms,
                        int64_t max_past_ms, int64_t max_future_ms, char *why, size_t why_size);

typedef struct ev_decoder_s ev_decoder_t;
/* Creates a decoder whose reader schema is the built-in schemas/event.avsc. Writer schemas
 * for Confluent ids and single-object fingerprints come from schemas_dir (NULL = built-in
 * only). Returns NULL with errstr set when a schema cannot be read or parsed. */
ev_decoder_t *ev_decoder_new(const char *schemas_dir, char *errstr, size_t errstr_size);
/* Decodes one message into *out (overwritten). On rejection returns the reason and writes a
 * human-readable detail into why. Never reads past buf+len. */
ev_reason_t ev_decode(ev_decoder_t *dec, ev_wire_t wire, const void *buf, size_t len,
                      ev_event_t *out, char *why, size_t why_size);
/* Frees the decoder and every schema it holds; NULL is a no-op. */
void ev_decoder_destroy(ev_decoder_t *dec);

typedef struct ev_encoder_s ev_encoder_t;
/* Creates an encoder writing the reader schema in the given framing (not AUTO); schema_id is
 * used by Confluent framing only. */
ev_encoder_t *ev_encoder_new(ev_wire_t wire, int32_t schema_id, char *errstr, size_t errstr_size);
/* Encodes ev; on success *buf points into the encoder's buffer, valid until the next call. */
int ev_encode(ev_encoder_t *enc, const ev_event_t *ev, const void **buf, size_t *len);
void ev_encoder_destroy(ev_encoder_t *enc);

typedef struct ev_file_writer_s ev_file_writer_t;
/* Creates an Avro object container file of Event records (deflate codec) through of_open():
 * a regular file is replaced atomically at close, a device or FIFO is written through, "-"
 * is stdout. The caller ends it with ev_file_writer_close() or ev_file_writer_abort(). */
ev_file_writer_t *ev_file_writer_open(const char *path, char *errstr, size_t errstr_size);
int ev_file_writer_append(ev_file_writer_t *w, const ev_event_t *ev, char *errstr,
                          size_t errstr_size);
/* Flushes, closes and publishes the file; returns -1 if the final flush, the close or the
 * rename failed (nothing is published then). Frees w; NULL is a no-op returning 0. */
int ev_file_writer_close(ev_file_writer_t *w, char *errstr, size_t errstr_size);
/* Closes without publishing (an error path): the previous file at the path stays. Frees w;
 * NULL is a no-op. */
void ev_file_writer_abort(ev_file_writer_t *w);

typedef struct ev_file_reader_s ev_file_reader_t;
/* Opens a container file; its writer schema is resolved against the reader schema. */
ev_file_reader_t *ev_file_reader_open(const char *path, char *errstr, size_t errstr_size);
/* Returns 1 with *ev filled, 0 at end of file, -1 on a corrupt file (errstr set). Records that
 * decode but fail validation (empty user_id, ...) are returned with *reason set. */
int ev_file_reader_next(ev_file_reader_t *r, ev_event_t *ev, ev_reason_t *reason, char *errstr,
                        size_t errstr_size);
void ev_file_reader_close(ev_file_reader_t *r);

#endif
