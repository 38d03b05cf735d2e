/* The Kafka alert sink (sink.h) of `run`: alerts for topic.alerts. It does not produce by
 * itself; the path stays as the design card has it (DESIGN.md section 7: the outbox in the
 * batch's transaction, produced after it, re-sent at a restart: at-least-once delivery with
 * stable alert ids):
 *   emit   encodes the alert in alerts.framing and stages it for the batch's transaction;
 *   (the handler's commit writes the staged alerts to the Redis outbox, ks_outbox, in the
 *   same MULTI/EXEC as the records and offsets: a batch retried after a crash stages the
 *   same alerts with the same ids again)
 *   flush  after that commit, hands the batch's alerts to the producer (ks_handed: the
 *          daemon queues, claims and produces them with the idempotent producer, and trims
 *          the outbox on delivery);
 *   close  frees the encoder and the staged alerts.
 * One batch at a time, main thread only. */
#ifndef CS_KAFKA_SINK_H
#define CS_KAFKA_SINK_H

#include <stddef.h>

#include "config.h"
#include "daemon.h"
#include "sink.h"
#include "store_redis.h"

/* Opens the sink with an encoder of alerts.framing / alerts.schema_id. An alert the encoder
 * refuses is logged and dropped (emit returns -1); one that cannot be staged for lack of
 * memory makes emit return -1 and ks_out_of_memory 1 (the batch must be retried). Returns 0,
 * or -1 with errstr (*out zeroed). Close with alert_sink_close(). */
int ks_open(alert_sink_t *out, const cfg_t *cfg, char *errstr, size_t errstr_size);

/* Drops the staged alerts (a new batch, or a rollback). */
void ks_clear(alert_sink_t *s);
/* 1 when an alert of the batch could not be staged for lack of memory, else 0. */
int ks_out_of_memory(const alert_sink_t *s);
/* Fills c's outbox fields with the staged alerts (views into the sink, valid until the next
 * emit or ks_clear). 0, or -1 on out of memory. */
int ks_outbox(alert_sink_t *s, st_commit_t *c);
/* The alerts the last flush handed over (views into the sink, valid until the next emit or
 * ks_clear); *n = 0 when that flush failed (they stay in the outbox and are re-sent at the
 * next start). */
const dm_alert_t *ks_handed(const alert_sink_t *s, size_t *n);

#endif
