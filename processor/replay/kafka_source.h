/* Replay input from a Kafka topic between two event-log timestamps: offsets for the times
 * (rd_kafka_offsets_for_times on the message timestamps), every partition read from the
 * start offset up to the end offset, each message decoded like `run` decodes it, and the
 * events handed back in event-time order (ties by partition, then offset) so the replay is
 * deterministic whatever the partition interleaving. No consumer group is joined and no
 * offset is committed: a backtest never moves a live consumer. */
#ifndef CS_KAFKA_SOURCE_H
#define CS_KAFKA_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"

typedef struct ks_s ks_t;

/* Reads topic [from_ms, to_ms) (message timestamps; INT64_MIN / INT64_MAX = from the
 * beginning / to the current end). Rejected messages are kept with their reason. Gives up
 * with an error when the broker is unreachable for timeout_ms. NULL with errstr. */
ks_t *ks_load(const cfg_t *cfg, const char *topic, int64_t from_ms, int64_t to_ms, int timeout_ms,
              char *errstr, size_t errstr_size);
void ks_destroy(ks_t *ks);

/* Messages read (accepted + rejected). */
size_t ks_count(const ks_t *ks);
/* The i-th message in event-time order (rejects first, in partition/offset order): fills *ev
 * and returns its reason; why gets the reject detail with partition and offset. */
ev_reason_t ks_get(const ks_t *ks, size_t i, ev_event_t *ev, char *why, size_t why_size);

/* Parses "2011-06-01", "2011-06-01T12:00:00Z" or epoch milliseconds. */
int ks_parse_time(const char *text, int64_t *out_ms);

#endif
