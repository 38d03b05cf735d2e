/* `churnstream gen` inside: its options (gen_args.c) and its Kafka sink (gen_kafka.c). */
#ifndef CS_CMD_GEN_H
#define CS_CMD_GEN_H

#include <stdint.h>
#include <stdio.h>

#include <signal.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "config.h"
#include "gen.h"

typedef struct gen_opts_s {
    gen_params_t params;
    const char *out_path, *topic, *truth_path;
    double rate_eps;
    ev_wire_t wire;
    int32_t schema_id;
    int quiet;
    int event_timestamps;      /* message timestamp = event time (else: produce time) */
    int wall_clock;            /* event time = the wall clock at produce (topics only) */
    int csv_out;               /* --out FILE.csv: CSV events instead of Avro */
    int btyd_flags;            /* a BTYD parameter was given (an error with --process planted) */
    int ab_flags, sbeta_flags; /* --a/--b (bgnbd only), --s/--beta (paretonbd only) */
    int churn_flag;            /* --churn-rate was given (an error with a BTYD process) */
} gen_opts_t;

/* Prints the usage text to out. */
void gen_usage(FILE *out);
/* Parses argv into *o; 0 to run, 1 when --help was printed, -1 on a usage error (message
 * printed). */
int gen_parse_args(cfg_t *cfg, int argc, char **argv, gen_opts_t *o);

/* Producing generated events to a topic: idempotent, bounded retries (kafka's message
 * timeout), the first delivery error kept for the message. */
typedef struct gen_kafka_s {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int64_t delivered, failed;
    char first_error[256];
    char brokers[256];
    int64_t timeout_ms;
    int event_timestamps;
} gen_kafka_t;

/* Opens the producer and waits (10 s at most) until the topic has a leader for every
 * partition. -1 with errstr. */
int gen_kafka_open(cfg_t *cfg, const char *topic, gen_kafka_t *k, char *errstr, size_t errstr_size);
/* Produces one encoded event (key = user id), waiting while the local queue is full. */
int gen_kafka_produce(gen_kafka_t *k, const ev_event_t *ev, const void *buf, size_t len,
                      char *errstr, size_t errstr_size);
/* Waits for every outstanding delivery (bounded by the message timeout). */
int gen_kafka_finish(gen_kafka_t *k, char *errstr, size_t errstr_size);
void gen_kafka_close(gen_kafka_t *k);
/* Sleeps until event n is due at rate_eps, serving delivery reports meanwhile; returns early
 * when *stop becomes non-zero. */
void gen_kafka_pace(gen_kafka_t *k, double rate_eps, int64_t t0_ns, int64_t n,
                    volatile const sig_atomic_t *stop);
/* CLOCK_MONOTONIC in ns. */
int64_t gen_now_ns(void);
/* The wall clock (CLOCK_REALTIME) in epoch milliseconds (--wall-clock). */
int64_t gen_now_wall_ms(void);

#endif
