/* `churnstream tail`: follows topic.alerts and prints each ChurnAlert as one readable line
 * (or as JSON). Reads by partition assignment, never joins or commits a consumer group, so
 * it cannot disturb the daemon or any real alert consumer. */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "alert.h"
#include "cli_args.h"
#include "commands.h"
#include "kafka.h"
#include "log.h"

static void usage(FILE *out)
{
    fputs("usage: churnstream tail [--topic T] [--from-beginning] [--max N] [--timeout S]\n"
          "                        [--json] [config options]\n"
          "\n"
          "Prints the alerts on topic.alerts as they arrive, one line each:\n"
          "  DATE USER p=PROB BUCKET seg ID \"SEGMENT LABEL\" -> ACTION [ARM] top: FACTORS\n"
          "e.g.\n"
          "  2024-05-03 u000123 p=0.87 high seg 3 \"low active_days_30d\" -> personal\n"
          "  outreach [treatment] top: days_since_activity +1.20, active_days_30d +0.80\n"
          "(DATE is the alert's event time, UTC; factors are log-odds contributions). Reads\n"
          "every partition by assignment: no consumer group is joined and no offset is\n"
          "committed. Framing (confluent, single-object, plain) is detected per message;\n"
          "an undecodable message is reported on stderr and skipped.\n"
          "\n"
          "  --topic T          topic to read (default: topic.alerts)\n"
          "  --from-beginning   start at the oldest alert (default: only new ones)\n"
          "  --max N            exit after N alerts\n"
          "  --timeout S        exit when no alert arrived for S seconds (default: never)\n"
          "  --json             one JSON object per line (the alert's Avro fields)\n"
          "  --help             this text\n"
          "\n"
          "Exit status: 0 (signal, --max or --timeout), 1 Kafka failure, 2 usage error.\n"
          "Config keys that matter here: kafka.*, topic.alerts.\n",
          out);
}

/* Writes the one-line form of a (no newline). */
static void print_line(FILE *out, const alert_t *a)
{
    time_t secs = (time_t)(a->event_time_ms / 1000);
    struct tm tm;
    char date[32] = "?";
    if (gmtime_r(&secs, &tm))
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
    fprintf(out, "%s %s p=%.2f %s %s %s ", date, a->user_id, a->churn_probability,
            alert_bucket_name(a->risk_bucket), alert_kind_name(a->kind),
            alert_trigger_name(a->trigger));
    if (a->segment_id < 0)
        fputs("seg -", out);
    else
        fprintf(out, "seg %d \"%s\"", a->segment_id, a->segment_label);
    fprintf(out, " -> %s [%s]", a->recommended_action, alert_arm_name(a->arm));
    if (a->n_factors > 0) {
        fputs(" top:", out);
        for (int i = 0; i < a->n_factors; i++)
            fprintf(out, "%s %s %s=%.3g %+.2f", i ? "," : "",
                    a->top_factors[i].direction && *a->top_factors[i].direction
                        ? a->top_factors[i].direction
                        : "?",
                    a->top_factors[i].feature, a->top_factors[i].value,
                    a->top_factors[i].contribution);
    }
}

typedef struct tail_opts_s {
    const char *topic;
    int from_beginning, json;
    long long max_alerts; /* 0 = no limit */
    double timeout_s;     /* 0 = never */
} tail_opts_t;

/* 0 to run, 1 after --help, -1 on a usage error (message printed). */
static int parse_args(cfg_t *cfg, int argc, char **argv, tail_opts_t *o)
{
    static const struct option longopts[] = {{"topic", required_argument, 0, 't'},
                                             {"from-beginning", no_argument, 0, 'b'},
                                             {"max", required_argument, 0, 'm'},
                                             {"timeout", required_argument, 0, 'T'},
                                             {"json", no_argument, 0, 'j'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    *o = (tail_opts_t){.topic = cfg->topic_alerts};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            o->topic = optarg;
            break;
        case 'b':
            o->from_beginning = 1;
            break;
        case 'm':
            if (cli_int("tail", "--max", optarg, 1, LLONG_MAX, &o->max_alerts) != 0)
                return -1;
            break;
        case 'T':
            if (cli_double("tail", "--timeout", optarg, 1e-3, 1e6, &o->timeout_s) != 0)
                return -1;
            break;
        case 'j':
            o->json = 1;
            break;
        default:
            return cli_help_or_bad_option("tail", c, argv[optind - 1], usage) == 0 ? 1 : -1;
        }
    }
    if (cli_no_operands("tail", argc, argv, 0) != 0)
        return -1;
    if (o->topic[0] == '\0') {
        fprintf(stderr, "churnstream tail: --topic: empty\n");
        return -1;
    }
    return 0;
}

/* The consumer: no group is joined (assign only) and nothing is committed. NULL with err;
 * the bootstrap servers (for messages) in bootstrap. */
static rd_kafka_t *open_consumer(cfg_t *cfg, char *bootstrap, size_t bootstrap_size, char *err,
                                 size_t errsz)
{
    rd_kafka_t *rk = kf_reader(cfg, "tail", err, errsz);
    snprintf(bootstrap, bootstrap_size, "?");
    if (rk)
        rd_kafka_conf_get(rd_kafka_conf(rk), "bootstrap.servers", bootstrap, &bootstrap_size);
    return rk;
}

/* Prints alerts until a signal, --max or --timeout; counts in *printed and *bad. 0, or 1
 * on a fatal Kafka error. jbuf holds JSON_MAX bytes. */
#define JSON_MAX 16384
static int print_alerts(rd_kafka_t *rk, alert_decoder_t *dec, const tail_opts_t *o, char *jbuf,
                        long long *printed_out, long long *bad_out)
{
    int rc = 0;
    long long printed = 0, bad = 0;
    double last_s = kf_mono_s();
    while (rc == 0 && !cli_stop_requested) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if (o->timeout_s > 0 && kf_mono_s() - last_s > o->timeout_s)
                break;
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                fprintf(stderr, "churnstream tail: %s [%d]: %s\n", o->topic, m->partition,
                        rd_kafka_message_errstr(m));
                if (m->err == RD_KAFKA_RESP_ERR__FATAL)
                    rc = 1;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        last_s = kf_mono_s();
        alert_t a;
        char why[256];
        if (alert_decode(dec, m->payload, m->len, &a, why, sizeof why) != 0) {
            fprintf(stderr, "churnstream tail: %s [%d] offset %lld: undecodable alert: %s\n",
                    o->topic, m->partition, (long long)m->offset, why);
            bad++;
        } else if (o->json) {
            if (alert_to_json(&a, jbuf, JSON_MAX) < 0)
                fprintf(stderr,
                        "churnstream tail: %s [%d] offset %lld: not representable "
                        "as JSON (a non-finite number)\n",
                        o->topic, m->partition, (long long)m->offset);
            else
                printf("%s\n", jbuf);
            printed++;
        } else {
            print_line(stdout, &a);
            putchar('\n');
            printed++;
        }
        fflush(stdout); /* one line at a time, also into a pipe */
        rd_kafka_message_destroy(m);
        if (o->max_alerts > 0 && printed >= o->max_alerts)
            break;
    }
    *printed_out = printed;
    *bad_out = bad;
    return rc;
}

int cmd_tail(cfg_t *cfg, int argc, char **argv)
{
    tail_opts_t o;
    int prc = parse_args(cfg, argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? 0 : 2;
    char err[512], bootstrap[512];
    alert_decoder_t *dec = alert_decoder_new(err, sizeof err);
    if (!dec) {
        fprintf(stderr, "churnstream tail: %s\n", err);
        return 1;
    }
    rd_kafka_t *rk = open_consumer(cfg, bootstrap, sizeof bootstrap, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "churnstream tail: %s\n", err);
        alert_decoder_destroy(dec);
        return 2;
    }
    cli_catch_stop_signals();

    int rc = 0;
    long long printed = 0, bad = 0;
    int nparts = kf_assign_all(rk, o.topic, o.from_beginning,
                               o.timeout_s > 0 ? kf_mono_s() + o.timeout_s : 0, &cli_stop_requested,
                               err, sizeof err);
    char *jbuf = malloc(JSON_MAX);
    if (nparts < 0) {
        fprintf(stderr, "churnstream tail: %s\n", err);
        rc = 1;
    } else if (nparts == 0 && !cli_stop_requested) {
        fprintf(stderr,
                "churnstream tail: topic %s: no partitions found in %g s (is %s reachable, "
                "does the topic exist?)\n",
                o.topic, o.timeout_s, bootstrap);
        rc = 1;
    } else if (!jbuf) {
        fprintf(stderr, "churnstream tail: out of memory\n");
        rc = 1;
    } else if (nparts > 0) {
        log_info("tail", "reading %s: %d partitions from the %s", o.topic, nparts,
                 o.from_beginning ? "beginning" : "end");
        rc = print_alerts(rk, dec, &o, jbuf, &printed, &bad);
    }
    free(jbuf);
    log_info("tail", "done: %lld alerts, %lld undecodable", printed, bad);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    alert_decoder_destroy(dec);
    return rc;
}
