/* The one place librdkafka handles are created (tests/tools/layering.py enforces it): every
 * consumer and producer of every command gets its configuration from the same kafka.* keys,
 * logs through log.h, and fails with the same words. Callers set their own callbacks and
 * forced properties on the conf between kf_conf() and kf_new(). */
#ifndef CS_KAFKA_H
#define CS_KAFKA_H

#include <signal.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

/* The configuration of one handle: for a consumer the prefetch defaults (queued.min.messages
 * 1000000, queued.max.messages.kbytes 16384: kafka.c says why), then `extra` name/value
 * pairs (NULL-terminated; may be NULL), then the user's kafka.* keys, which win; for a
 * producer the consumer-only keys are left out. NULL with errstr set on a bad property. */
rd_kafka_conf_t *kf_conf(const cfg_t *cfg, rd_kafka_type_t type, const char *const *extra,
                         char *errstr, size_t errstr_size);

/* Creates the handle. conf is consumed in every case (owned by the handle, or destroyed on
 * failure). Sets the log bridge. NULL with errstr "cannot create the Kafka consumer: ...". */
rd_kafka_t *kf_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

/* A consumer that only reads (tail, respond): nothing committed or stored, no end-of-partition
 * events, and a group id of its own, "churnstream-CMD-PID", which keeps even the coordinator
 * lookups away from the daemon's group; used with kf_assign_all, never subscribed. Its
 * queue is the consumer's (rd_kafka_poll_set_consumer). NULL with errstr as kf_new. */
rd_kafka_t *kf_reader(const cfg_t *cfg, const char *cmd, char *errstr, size_t errstr_size);

/* Assigns every partition of topic to consumer rk, each at its beginning or its end: reading
 * without joining a group or committing (tail, respond). The topic may not exist yet:
 * metadata is retried every 200 ms until deadline_s (CLOCK_MONOTONIC seconds; 0 = no
 * deadline) or until *stop becomes non-zero. Returns the partition count, 0 when the
 * deadline passed or stop was set, -1 on a Kafka error (errstr set). */
int kf_assign_all(rd_kafka_t *rk, const char *topic, int from_beginning, double deadline_s,
                  volatile const sig_atomic_t *stop, char *errstr, size_t errstr_size);
/* CLOCK_MONOTONIC in seconds. */
double kf_mono_s(void);

/* librdkafka's log lines through log.h (syslog levels: 0-3 error, 4 warn, 5-6 info). */
void kf_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif
