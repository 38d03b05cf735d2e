/* `churnstream respond`: a simulated customer base for closed-loop tests and the demo. It
 * reads topic.alerts and, for each treatment-arm alert of a user whom `gen` planted as a
 * churner (--truth), makes the user come back with probability --effect (the planted
 * treatment effect): a session_start and a purchase on topic.events, a few days after the
 * alert in event time. Holdout alerts never get a response, so the daemon's measured uplift
 * should recover the effect. Deterministic: the coin and the delay are hashes of --seed and
 * the alert id. Reads by partition assignment (no consumer group), like `tail`. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cli_args.h"
#include "alert.h"
#include "codec.h"
#include "event.h"
#include "commands.h"
#include "kafka.h"
#include "log.h"

#define DAY_MS 86400000LL

static void usage(FILE *out)
{
    fputs("usage: churnstream respond [--truth FILE.csv] [--effect P] [--seed S]\n"
          "                           [--delay-days D] [--from-beginning] [--timeout S]\n"
          "                           [--advance-to DATE]\n"
          "\n"
          "Simulated customers for closed-loop tests: reads topic.alerts and, for every\n"
          "treatment-arm alert of a planted churner, produces with probability P a return\n"
          "visit (session_start, then a purchase) of the user to topic.events, at the\n"
          "alert's created_at plus 1 hour to D days (event time). Holdout alerts get no\n"
          "response, so the measured uplift recovers P (README: Alerts, Outcomes).\n"
          "\n"
          "  --truth FILE      gen's ground truth (user_id,churn_time_ms): only users with a\n"
          "                    churn time respond; without it every treatment alert may\n"
          "  --effect P        probability a treated user returns (default 0.2)\n"
          "  --seed S          seed of the coins and delays (default 1)\n"
          "  --delay-days D    returns come within D days of the alert (default 3; keep it\n"
          "                    below outcome.window)\n"
          "  --from-beginning  read the alerts from the start of the topic (default: the end)\n"
          "  --timeout S       exit when no alert arrived for S seconds (default: never)\n"
          "  --advance-to DATE at exit, one `other` event at DATE (YYYY-MM-DD or ISO-8601,\n"
          "                    UTC) on every partition of topic.events, each by a user of\n"
          "                    its own (respond-clock-<partition>): the daemon's watermark\n"
          "                    (a minimum over partitions) reaches DATE, so every outcome\n"
          "                    window that ends before it closes\n"
          "\n"
          "A summary line goes to stderr at exit. Exit status: 0, 1 Kafka failure, 2 usage.\n",
          out);
}

/* ---- planted churners ---- */

typedef struct truth_s {
    char **ids; /* sorted */
    size_t n;
} truth_t;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads the users with a churn time from gen's truth CSV. 0, or -1 with errstr. */
static int truth_load(truth_t *t, const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    size_t cap = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        char *comma = strchr(line, ',');
        if (lineno == 1 && strncmp(line, "user_id,", 8) == 0)
            continue;
        if (!comma) {
            snprintf(errstr, errstr_size, "%s:%zu: expected user_id,churn_time_ms", path, lineno);
            fclose(f);
            return -1;
        }
        *comma = '\0';
        if (comma[1] == '\0')
            continue; /* not a planted churner */
        if (t->n == cap) {
            cap = cap ? cap * 2 : 1024;
            char **p = realloc(t->ids, cap * sizeof(*p));
            if (!p)
                break;
            t->ids = p;
        }
        if (!(t->ids[t->n] = strdup(line)))
            break;
        t->n++;
    }
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        snprintf(errstr, errstr_size, "%s: read failed or out of memory", path);
        return -1;
    }
    qsort(t->ids, t->n, sizeof(*t->ids), cmp_str);
    return 0;
}

static int truth_has(const truth_t *t, const char *uid)
{
    return bsearch(&uid, t->ids, t->n, sizeof(*t->ids), cmp_str) != NULL;
}

static void truth_free(truth_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->ids[i]);
    free(t->ids);
}

/* ---- options ---- */

typedef struct resp_opts_s {
    const char *truth;
    double effect;
    uint64_t seed;
    double delay_days;
    int from_beginning;
    double timeout_s;
    int64_t advance_to_ms; /* INT64_MIN = none */
} resp_opts_t;

static int parse_opts(int argc, char **argv, resp_opts_t *o)
{
    static const struct option longopts[] = {{"truth", required_argument, 0, 't'},
                                             {"effect", required_argument, 0, 'e'},
                                             {"seed", required_argument, 0, 's'},
                                             {"delay-days", required_argument, 0, 'd'},
                                             {"from-beginning", no_argument, 0, 'b'},
                                             {"timeout", required_argument, 0, 'T'},
                                             {"advance-to", required_argument, 0, 'a'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    *o = (resp_opts_t){.effect = 0.2, .seed = 1, .delay_days = 3, .advance_to_ms = INT64_MIN};
    int c;
    char *end;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        double v = 0;
        if (c == 'e' || c == 'd' || c == 'T') {
            v = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(v >= 0) || v > 1e6 || (c == 'e' && v > 1) ||
                (c != 'e' && v <= 0)) {
                fprintf(stderr, "churnstream respond: --%s: bad value \"%s\"\n",
                        c == 'e'   ? "effect"
                        : c == 'd' ? "delay-days"
                                   : "timeout",
                        optarg);
                return 2;
            }
        }
        switch (c) {
        case 't':
            o->truth = optarg;
            break;
        case 'e':
            o->effect = v;
            break;
        case 'd':
            o->delay_days = v;
            break;
        case 'T':
            o->timeout_s = v;
            break;
        case 'b':
            o->from_beginning = 1;
            break;
        case 'a':
            if (ev_parse_iso_ms(optarg, &o->advance_to_ms) != 0) {
                fprintf(stderr,
                        "churnstream respond: --advance-to: expected a UTC date, got "
                        "\"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        case 's':
            o->seed = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0') {
                fprintf(stderr, "churnstream respond: --seed: expected an integer\n");
                return 2;
            }
            break;
        default:
            return cli_help_or_bad_option("respond", c, argv[optind - 1], usage);
        }
    }
    if (cli_no_operands("respond", argc, argv, 0) != 0)
        return 2;
    return -1;
}

/* ---- Kafka ---- */

/* The outcome events' producer (the reader of alerts is kf_reader). */
static rd_kafka_t *make_producer(cfg_t *cfg, char *err, size_t errsz)
{
    static const char *const extra[] = {"enable.idempotence", "true", "linger.ms", "5", NULL};
    rd_kafka_conf_t *conf = kf_conf(cfg, RD_KAFKA_PRODUCER, extra, err, errsz);
    return conf ? kf_new(RD_KAFKA_PRODUCER, conf, err, errsz) : NULL;
}

/* ---- the response ---- */

typedef struct resp_s {
    resp_opts_t o;
    truth_t truth;
    ev_encoder_t *enc;
    rd_kafka_t *prod;
    const char *events_topic;
    long long alerts, treatment, eligible, returned, produced, failed;
} resp_t;

/* A uniform draw in [0, 1) from the seed, a salt and the alert id. */
static double draw(const resp_t *r, uint8_t salt, const char *alert_id)
{
    uint8_t key[16] = {0};
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(r->o.seed >> (8 * i));
    key[8] = salt;
    return (double)(alert_siphash24(key, alert_id, strlen(alert_id)) >> 11) / 9007199254740992.0;
}

static void produce_event(resp_t *r, const char *uid, ev_type_t type, int64_t t_ms, double amount,
                          int32_t partition)
{
    ev_event_t ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.user_id, sizeof ev.user_id, "%s", uid);
    ev.user_id_len = (uint16_t)strlen(ev.user_id);
    ev.type = type;
    ev.event_time_ms = t_ms;
    ev.amount = amount;
    const void *buf;
    size_t len;
    if (ev_encode(r->enc, &ev, &buf, &len) != 0) {
        r->failed++;
        return;
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        r->prod, RD_KAFKA_V_TOPIC(r->events_topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(uid, ev.user_id_len), RD_KAFKA_V_VALUE((void *)buf, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err) {
        log_warn("respond", "produce to %s: %s", r->events_topic, rd_kafka_err2str(err));
        r->failed++;
    } else {
        r->produced++;
    }
}

static void on_alert(resp_t *r, const alert_t *a)
{
    r->alerts++;
    if (a->arm != ALERT_TREATMENT)
        return;
    r->treatment++;
    if (r->o.truth && !truth_has(&r->truth, a->user_id))
        return;
    r->eligible++;
    if (!(draw(r, 1, a->alert_id) < r->o.effect))
        return;
    r->returned++;
    const int64_t span = (int64_t)(r->o.delay_days * (double)DAY_MS) - 3600000;
    int64_t t = a->created_at_ms + 3600000 +
                (span > 0 ? (int64_t)(draw(r, 2, a->alert_id) * (double)span) : 0);
    produce_event(r, a->user_id, EV_SESSION_START, t, 0, RD_KAFKA_PARTITION_UA);
    produce_event(r, a->user_id, EV_PURCHASE, t + 600000, 25.0, RD_KAFKA_PARTITION_UA);
}

static int consume(resp_t *r, rd_kafka_t *rk, const char *topic)
{
    char err[256];
    alert_decoder_t *dec = alert_decoder_new(err, sizeof err);
    if (!dec)
        return 1;
    double last_s = kf_mono_s();
    int n = kf_assign_all(rk, topic, r->o.from_beginning,
                          r->o.timeout_s > 0 ? last_s + r->o.timeout_s : 0, &cli_stop_requested,
                          err, sizeof err);
    int rc = n < 0 ? 1 : 0;
    if (n < 0)
        fprintf(stderr, "churnstream respond: %s\n", err);
    if (n == 0 && !cli_stop_requested)
        fprintf(stderr, "churnstream respond: topic %s: no partitions found\n", topic);
    while (n > 0 && !cli_stop_requested) {
        rd_kafka_poll(r->prod, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if (r->o.timeout_s > 0 && kf_mono_s() - last_s > r->o.timeout_s)
                break;
            continue;
        }
        alert_t a;
        char why[256];
        if (!m->err) {
            last_s = kf_mono_s();
            if (alert_decode(dec, m->payload, m->len, &a, why, sizeof why) == 0)
                on_alert(r, &a);
            else
                log_warn("respond", "%s [%d] offset %lld: undecodable alert: %s", topic,
                         m->partition, (long long)m->offset, why);
        } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            rc = 1;
        }
        rd_kafka_message_destroy(m);
        if (rc)
            break;
    }
    alert_decoder_destroy(dec);
    return rc;
}

/* --advance-to: one event per partition of topic.events (after every return, which were
 * produced before: per partition, Kafka keeps the order). 0, or -1 when the topic's
 * partitions are unknown. */
static int advance(resp_t *r)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->prod, r->events_topic, NULL);
    int n = 0;
    if (rkt && !rd_kafka_metadata(r->prod, 0, rkt, &md, 10000) && md->topic_cnt == 1 &&
        !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    for (int p = 0; p < n; p++) {
        char uid[48];
        snprintf(uid, sizeof uid, "respond-clock-%d", p);
        produce_event(r, uid, EV_OTHER, r->o.advance_to_ms, 0, p);
    }
    return n > 0 ? 0 : -1;
}

int cmd_respond(cfg_t *cfg, int argc, char **argv)
{
    resp_t r;
    memset(&r, 0, sizeof r);
    int prc = parse_opts(argc, argv, &r.o);
    if (prc >= 0)
        return prc;
    char err[512];
    if (r.o.truth && truth_load(&r.truth, r.o.truth, err, sizeof err) != 0) {
        fprintf(stderr, "churnstream respond: %s\n", err);
        return 2;
    }
    r.events_topic = cfg->topic_events;
    int rc = 1;
    rd_kafka_t *cons = NULL;
    if (!(r.enc = ev_encoder_new(EV_WIRE_CONFLUENT, 1, err, sizeof err)) ||
        !(r.prod = make_producer(cfg, err, sizeof err)) ||
        !(cons = kf_reader(cfg, "respond", err, sizeof err))) {
        fprintf(stderr, "churnstream respond: %s\n", err);
        goto out;
    }
    cli_catch_stop_signals();
    rc = consume(&r, cons, cfg->topic_alerts);
    if (rc == 0 && r.o.advance_to_ms != INT64_MIN && advance(&r) != 0) {
        fprintf(stderr, "churnstream respond: --advance-to: no partitions of %s\n", r.events_topic);
        rc = 1;
    }
    if (rd_kafka_flush(r.prod, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "churnstream respond: %d events not delivered in 30 s\n",
                rd_kafka_outq_len(r.prod));
        rc = 1;
    }
    fprintf(stderr,
            "respond: %lld alerts, %lld treatment, %lld eligible, %lld returned (effect %g), "
            "%lld events produced, %lld failed\n",
            r.alerts, r.treatment, r.eligible, r.returned, r.o.effect, r.produced, r.failed);
    rd_kafka_consumer_close(cons);
out:
    if (cons)
        rd_kafka_destroy(cons);
    if (r.prod)
        rd_kafka_destroy(r.prod);
    ev_encoder_destroy(r.enc);
    truth_free(&r.truth);
    return rc;
}
