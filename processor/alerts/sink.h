/* Where alerts go: one small interface (the alert sink) between the code that decides alerts
 * (the policy, alert.h, through the pipeline's alert hook, pipeline.h) and the place they
 * end up. Two implementations:
 *   - the JSON-lines file sink (alert_sink.c, below): replay's --alerts-out, one
 *     alert_to_json line per alert, in emission order;
 *   - the Kafka sink (daemon/kafka_sink.h): `run`'s topic.alerts. It lives in daemon/ because
 *     only the daemon holds librdkafka handles, and its emit only stages the encoded alert:
 *     the batch's Redis transaction writes it to the outbox, and flush, after that commit,
 *     hands it to the idempotent producer (the outbox is re-sent at a restart: at-least-once
 *     delivery with stable alert ids, DESIGN.md section 7).
 * The shape follows the user-store interface (store.h): an ops struct with an opaque state
 * pointer, except that the sink owns its state: close frees it. */
#ifndef CS_SINK_H
#define CS_SINK_H

#include <stddef.h>
#include <stdio.h>

#include "alert.h"

/* A zeroed sink (all NULL) is a valid "no sink": emit and flush do nothing and return 0.
 * emit: takes one alert (borrowed for the call: the sink copies what it keeps). 0, or -1
 *       when it could not be kept (out of memory, a write that failed) with the reason kept
 *       for flush.
 * flush: hands on everything emitted since the last flush (written out; for Kafka: to the
 *       producer). 0, or -1 with errstr (the first failure since the sink was opened).
 * close: frees the state; does not flush. */
typedef struct alert_sink_s {
    void *self; /* owned: freed by close */
    int (*emit)(void *self, const alert_t *a);
    int (*flush)(void *self, char *errstr, size_t errstr_size);
    void (*close)(void *self);
} alert_sink_t;

/* The calls through the interface; a zeroed sink is a no-op (0). */
int alert_sink_emit(const alert_sink_t *s, const alert_t *a);
int alert_sink_flush(const alert_sink_t *s, char *errstr, size_t errstr_size);
/* Closes and zeroes *s; a zeroed sink is a no-op. */
void alert_sink_close(alert_sink_t *s);

/* Opens the JSON-lines sink on f (borrowed: the caller owns the stream and closes or
 * publishes it after alert_sink_close; replay writes through an of_t). `name` (copied) names
 * the file in messages. Each emit writes alert_to_json and a newline; flush fflushes and
 * reports the first failure (an alert that has no JSON form, a write error). Returns 0, or
 * -1 with errstr on out of memory (*out is then zeroed). */
int alert_sink_jsonl(alert_sink_t *out, FILE *f, const char *name, char *errstr,
                     size_t errstr_size);

#endif
