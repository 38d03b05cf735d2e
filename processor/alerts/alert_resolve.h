/* Alerts written with another ChurnAlert schema than the built-in schemas/alert.avsc (a newer
 * producer that added fields with defaults, e.g. kind, trigger, created_at): read through
 * Avro schema resolution against writer schemas given in a directory, then handed to the
 * built-in decoder, so every consumer sees the fields it knows and ignores the rest. Used by
 * `churnstream compose`. */
#ifndef CS_ALERT_RESOLVE_H
#define CS_ALERT_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"

typedef struct ar_s ar_t;

/* Creates a reader. dir (NULL or "" = none) holds writer schemas as *.avsc files; a file
 * named <N>.avsc also answers Confluent schema id N. Files whose record is not
 * io.churnstream.ChurnAlert are skipped. A ChurnAlert schema that does not resolve against
 * the built-in one (a field removed without default, a changed type, RiskBucket or Arm
 * symbols renamed or reordered) is an error naming the file. Returns NULL with errstr set.
 * Free with ar_destroy(). */
ar_t *ar_new(const char *dir, char *errstr, size_t errstr_size);

/* Adds one writer schema from JSON text; id is its Confluent schema id or -1; name labels
 * errors. Returns 0, or -1 with errstr set (as ar_new). */
int ar_add_writer(ar_t *ar, const char *json, int32_t id, const char *name, char *errstr,
                  size_t errstr_size);

/* Number of writer schemas added. */
size_t ar_writer_count(const ar_t *ar);

/* Decodes one alert, framing auto-detected (as alert_decode): first as the built-in schema;
 * when that fails, through the writer schema the framing names (Confluent id, single-object
 * fingerprint) or, when it names none known, each writer schema in turn. Fills *out (its
 * factor names point into ar, valid until the next call). Returns 0, or -1 with why set (the
 * built-in decoder's reason when no writer schema read it either). */
int ar_decode(ar_t *ar, const void *buf, size_t len, alert_t *out, char *why, size_t why_size);

/* Frees; NULL is a no-op. */
void ar_destroy(ar_t *ar);

#endif
