/* `churnstream gen`: synthetic events (planted churners, or a BG/NBD or Pareto/NBD process),
 * written to an Avro container file (or a CSV) or produced to a Kafka topic (key = user_id,
 * chosen wire framing, idempotent producer, optional pacing), plus the ground-truth CSV. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "commands.h"
#include "config.h"
#include "gen.h"
#include "kafka.h"
#include "outfile.h"
#include "log.h"

#define GEN_METADATA_TIMEOUT_MS 10000
#define GEN_PROGRESS_EVERY_NS   250000000LL

static volatile sig_atomic_t gen_stop;

static void gen_on_signal(int sig)
{
    (void)sig;
    gen_stop = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void gen_usage(FILE *out)
{
    fputs("usage: churnstream gen --users N --days D --seed S [--start YYYY-MM-DD]\n"
          "                       (--out FILE.avro|FILE.csv | --topic T | --kafka) [--rate EPS]\n"
          "                       [--wire confluent|single-object|plain] [--schema-id N]\n"
          "                       [--truth FILE.csv] [--churn-rate R] [--quiet]\n"
          "                       [--process planted|bgnbd|paretonbd] [--r R] [--alpha A]\n"
          "                       [--a A] [--b B] [--s S] [--beta B] [--cohort-days N]\n"
          "\n"
          "Generates synthetic user-behaviour events in event-time order, deterministic by\n"
          "seed. The default process (planted): sessions with a browse/search/cart/purchase\n"
          "funnel, coupons, refunds, support tickets, weekly seasonality, users joining over\n"
          "time, and planted churners whose activity fades over a few weeks before they go\n"
          "silent (some cancel first).\n"
          "\n"
          "Buy-till-you-die processes (purchase events only, time unit days): each user makes\n"
          "a first purchase at a time uniform over the first --cohort-days, then purchases as\n"
          "a Poisson process of rate lambda ~ Gamma(shape r, rate alpha) while alive.\n"
          "  bgnbd      (Fader, Hardie & Lee 2005) after each repeat purchase (not the first)\n"
          "             the user drops out with probability p ~ Beta(a, b)\n"
          "  paretonbd  (Schmittlein, Morrison & Colombo 1987) the user drops out at the first\n"
          "             purchase + a lifetime ~ Exp(mu), mu ~ Gamma(shape s, rate beta)\n"
          "Amounts are lognormal: per user median exp(N(ln 20, 0.5^2)), per purchase that\n"
          "times exp(N(0, 0.4^2)), in cents. Defaults: the published CDNOW fits in days,\n"
          "bgnbd r 0.243 alpha 30.898 a 0.793 b 2.426 (FHL 2005: alpha 4.414 weeks),\n"
          "paretonbd r 0.553 alpha 74.046 s 0.606 beta 81.683 (10.578 and 11.669 weeks).\n"
          "\n"
          "  --users N         users u000001..uN (default 1000)\n"
          "  --days D          days of events (default 90)\n"
          "  --seed S          random seed (default 1)\n"
          "  --start DATE      first day, UTC (default 2024-01-01)\n"
          "  --churn-rate R    planted: fraction of users planted as churners (default 0.3)\n"
          "  --process P       planted (default), bgnbd or paretonbd\n"
          "  --r R, --alpha A  BTYD: purchase rate shape and rate (alpha in days; mean\n"
          "                    rate r/alpha at most 100 per day)\n"
          "  --a A, --b B      bgnbd: drop-out probability Beta(a, b)\n"
          "  --s S, --beta B   paretonbd: drop-out rate shape and rate (beta in days)\n"
          "  --cohort-days N   BTYD: first purchases spread uniformly over the first N days\n"
          "                    (default: a quarter of --days, at least 1)\n"
          "  --out FILE        write an Avro container file (deflate); - = stdout; FILE.csv\n"
          "                    writes CSV user_id,ts_ms,event_type,amount instead (the\n"
          "                    events format of backtest_score.py; replay reads it with --map)\n"
          "  --topic T         produce to topic T (kafka.* config keys apply)\n"
          "  --kafka           produce to the configured topic.events\n"
          "  --rate EPS        events per second to the topic, 0 = as fast as possible (default)\n"
          "  --wire W          framing on the topic: confluent (default), single-object, plain\n"
          "  --event-timestamps  stamp each message with its event time (for `replay\n"
          "                    kafka:T --from/--to`); the topic then needs retention.ms=-1 or\n"
          "                    a retention longer than the events' age, or the broker deletes\n"
          "                    closed segments as soon as they roll (default: produce time)\n"
          "  --schema-id N     schema id in Confluent framing (default 1)\n"
          "  --truth FILE      ground truth CSV (default with --out: FILE.truth.csv next to\n"
          "                    it; with a topic: none unless given), one line per user:\n"
          "                    planted: user_id,churn_time_ms (empty: does not churn; a\n"
          "                    churner has no event at or after it)\n"
          "                    BTYD: user_id,churn_time_ms,first_purchase_ms,lambda_per_day,\n"
          "                    p,mu_per_day: churn_time_ms is the true drop-out time (the\n"
          "                    user is alive at t iff t < churn_time_ms; empty: alive at the\n"
          "                    end; bgnbd: 1 ms after the purchase it follows), p empty for\n"
          "                    paretonbd, mu_per_day empty for bgnbd; times in epoch ms\n"
          "  --quiet           no progress line on a terminal\n"
          "\n"
          "To a topic: a new topic on a broker that auto-creates topics is waited for (10 s\n"
          "at most). A broker outage is ridden out: librdkafka retries every message with\n"
          "backoff for kafka.message.timeout.ms (gen's default 120000, 2 minutes); a message\n"
          "still undelivered then fails the run with exit status 1 and the count of messages\n"
          "not delivered (never a silent loss).\n",
          out);
}

/* ---- option parsing ---------------------------------------------------------------- */

typedef struct gen_opts_s {
    gen_params_t params;
    const char *out_path, *topic, *truth_path;
    double rate_eps;
    ev_wire_t wire;
    int32_t schema_id;
    int quiet;
    int event_timestamps;      /* message timestamp = event time (else: produce time) */
    int csv_out;               /* --out FILE.csv: CSV events instead of Avro */
    int btyd_flags;            /* a BTYD parameter was given (an error with --process planted) */
    int ab_flags, sbeta_flags; /* --a/--b (bgnbd only), --s/--beta (paretonbd only) */
    int churn_flag;            /* --churn-rate was given (an error with a BTYD process) */
} gen_opts_t;

static int parse_i64(const char *flag, const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "churnstream gen: %s: expected an integer in %lld..%lld, got \"%s\"\n",
                flag, (long long)lo, (long long)hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_f64(const char *flag, const char *text, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "churnstream gen: %s: expected a number in %g..%g, got \"%s\"\n", flag, lo,
                hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0 to run, 1 when --help was printed, -1 on a usage error (message printed). */
static int gen_parse_args(cfg_t *cfg, int argc, char **argv, gen_opts_t *o)
{
    enum {
        O_USERS = 256,
        O_DAYS,
        O_SEED,
        O_START,
        O_OUT,
        O_TOPIC,
        O_KAFKA,
        O_RATE,
        O_WIRE,
        O_SCHEMA_ID,
        O_TRUTH,
        O_CHURN,
        O_QUIET,
        O_EVTS,
        O_PROCESS,
        O_R,
        O_ALPHA,
        O_A,
        O_B,
        O_S,
        O_BETA,
        O_COHORT,
        O_HELP
    };
    static const struct option longopts[] = {
        {"users", required_argument, NULL, O_USERS},
        {"days", required_argument, NULL, O_DAYS},
        {"seed", required_argument, NULL, O_SEED},
        {"start", required_argument, NULL, O_START},
        {"out", required_argument, NULL, O_OUT},
        {"topic", required_argument, NULL, O_TOPIC},
        {"kafka", no_argument, NULL, O_KAFKA},
        {"rate", required_argument, NULL, O_RATE},
        {"wire", required_argument, NULL, O_WIRE},
        {"schema-id", required_argument, NULL, O_SCHEMA_ID},
        {"truth", required_argument, NULL, O_TRUTH},
        {"churn-rate", required_argument, NULL, O_CHURN},
        {"event-timestamps", no_argument, NULL, O_EVTS},
        {"quiet", no_argument, NULL, O_QUIET},
        {"process", required_argument, NULL, O_PROCESS},
        {"r", required_argument, NULL, O_R},
        {"alpha", required_argument, NULL, O_ALPHA},
        {"a", required_argument, NULL, O_A},
        {"b", required_argument, NULL, O_B},
        {"s", required_argument, NULL, O_S},
        {"beta", required_argument, NULL, O_BETA},
        {"cohort-days", required_argument, NULL, O_COHORT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    gen_params_default(&o->params);
    o->wire = EV_WIRE_CONFLUENT;
    o->schema_id = 1;
    int64_t v;
    int c;
    optind = 0; /* glibc: full re-initialization, commands may run more than once */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case O_USERS:
            if (parse_i64("--users", a, 1, 100000000, &v) < 0)
                return -1;
            o->params.users = v;
            break;
        case O_DAYS:
            if (parse_i64("--days", a, 1, 3650, &v) < 0)
                return -1;
            o->params.days = (int)v;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(a, &end, 10);
            if (end == a || *end || errno || *a == '-') {
                fprintf(stderr,
                        "churnstream gen: --seed: expected an unsigned integer, got "
                        "\"%s\"\n",
                        a);
                return -1;
            }
            o->params.seed = s;
            break;
        }
        case O_START:
            if (gen_parse_date(a, &o->params.start_ms) < 0) {
                fprintf(stderr,
                        "churnstream gen: --start: expected a date YYYY-MM-DD (UTC), "
                        "got \"%s\"\n",
                        a);
                return -1;
            }
            break;
        case O_OUT:
            o->out_path = a;
            break;
        case O_TOPIC:
            o->topic = a;
            break;
        case O_KAFKA:
            o->topic = cfg->topic_events;
            break;
        case O_EVTS:
            o->event_timestamps = 1;
            break;
        case O_RATE:
            if (parse_f64("--rate", a, 0.0, 1e9, &o->rate_eps) < 0)
                return -1;
            break;
        case O_WIRE:
            if (ev_wire_parse(a, &o->wire) < 0 || o->wire == EV_WIRE_AUTO) {
                fprintf(stderr,
                        "churnstream gen: --wire: expected confluent, single-object "
                        "or plain, got \"%s\"\n",
                        a);
                return -1;
            }
            break;
        case O_SCHEMA_ID:
            if (parse_i64("--schema-id", a, 0, INT32_MAX, &v) < 0)
                return -1;
            o->schema_id = (int32_t)v;
            break;
        case O_TRUTH:
            o->truth_path = a;
            break;
        case O_CHURN:
            if (parse_f64("--churn-rate", a, 0.0, 1.0, &o->params.churn_rate) < 0)
                return -1;
            o->churn_flag = 1;
            break;
        case O_PROCESS:
            if (gen_process_parse(a, &o->params.process) < 0) {
                fprintf(stderr,
                        "churnstream gen: --process: expected planted, bgnbd or paretonbd, "
                        "got \"%s\"\n",
                        a);
                return -1;
            }
            break;
        case O_R:
        case O_ALPHA:
        case O_A:
        case O_B:
        case O_S:
        case O_BETA: {
            static const char *const flags[] = {"--r", "--alpha", "--a", "--b", "--s", "--beta"};
            double *dst[] = {&o->params.r, &o->params.alpha_days, &o->params.a,
                             &o->params.b, &o->params.s,          &o->params.beta_days};
            if (parse_f64(flags[c - O_R], a, 1e-6, 1e6, dst[c - O_R]) < 0)
                return -1;
            o->btyd_flags = 1;
            o->ab_flags |= c == O_A || c == O_B;
            o->sbeta_flags |= c == O_S || c == O_BETA;
            break;
        }
        case O_COHORT:
            if (parse_i64("--cohort-days", a, 1, 3650, &v) < 0)
                return -1;
            o->params.cohort_days = (int)v;
            o->btyd_flags = 1;
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_HELP:
        case 'h':
            gen_usage(stdout);
            return 1;
        default:
            fprintf(stderr, "churnstream gen: unknown or incomplete option \"%s\" (see --help)\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "churnstream gen: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return -1;
    }
    if (!o->out_path == !o->topic) {
        fprintf(stderr, "churnstream gen: give exactly one of --out FILE.avro, --topic T or "
                        "--kafka\n");
        return -1;
    }
    if (o->topic && !*o->topic) {
        fprintf(stderr, "churnstream gen: the topic name is empty (set topic.events or give "
                        "--topic T)\n");
        return -1;
    }
    if (o->out_path && o->rate_eps > 0)
        log_warn("gen", "--rate applies to topics only; ignored with --out");
    if (o->params.process == GEN_PLANTED && o->btyd_flags) {
        fprintf(stderr, "churnstream gen: --r, --alpha, --a, --b, --s, --beta and "
                        "--cohort-days need --process bgnbd or paretonbd\n");
        return -1;
    }
    if ((o->params.process == GEN_PARETONBD && o->ab_flags) ||
        (o->params.process == GEN_BGNBD && o->sbeta_flags)) {
        fprintf(stderr, "churnstream gen: --a and --b apply to --process bgnbd, --s and --beta "
                        "to --process paretonbd\n");
        return -1;
    }
    if (o->params.process != GEN_PLANTED && o->churn_flag) {
        fprintf(stderr, "churnstream gen: --churn-rate applies to --process planted only\n");
        return -1;
    }
    if (o->out_path) {
        size_t n = strlen(o->out_path);
        o->csv_out = n >= 4 && strcmp(o->out_path + n - 4, ".csv") == 0;
    }
    return 0;
}

/* FILE.avro or FILE.csv -> FILE.truth.csv (or FILE + ".truth.csv" without the extension). */
static char *default_truth_path(const char *out_path)
{
    size_t n = strlen(out_path);
    const char *dot = strrchr(out_path, '.');
    const char *slash = strrchr(out_path, '/');
    if (dot && (!slash || dot > slash) && (strcmp(dot, ".avro") == 0 || strcmp(dot, ".csv") == 0))
        n = (size_t)(dot - out_path);
    char *p = malloc(n + sizeof(".truth.csv"));
    if (p) {
        memcpy(p, out_path, n);
        memcpy(p + n, ".truth.csv", sizeof(".truth.csv"));
    }
    return p;
}

/* ---- CSV sink ---------------------------------------------------------------------- */

/* The events format of ../shared/tools/backtest_score.py (--events); generated ids hold no
 * comma or quote and amounts are whole cents, so %.15g prints them exactly. */
static of_t *csv_open(const char *path, char *errstr, size_t errstr_size)
{
    of_t *of = of_open(path, errstr, errstr_size);
    if (of)
        fputs("user_id,ts_ms,event_type,amount\n", of_file(of));
    return of;
}

static int csv_append(of_t *of, const ev_event_t *ev, char *errstr, size_t errstr_size)
{
    if (fprintf(of_file(of), "%s,%lld,%s,%.15g\n", ev->user_id, (long long)ev->event_time_ms,
                ev_type_name(ev->type), ev->amount) < 0) {
        snprintf(errstr, errstr_size, "%s: write failed: %s", of_path(of), strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- progress ---------------------------------------------------------------------- */

typedef struct gen_progress_s {
    int enabled;
    int64_t t0_ns, last_ns;
} gen_progress_t;

static void progress_tick(gen_progress_t *pr, const gen_t *g, int days, int force)
{
    if (!pr->enabled)
        return;
    int64_t t = now_ns();
    if (!force && t - pr->last_ns < GEN_PROGRESS_EVERY_NS)
        return;
    pr->last_ns = t;
    int done;
    int64_t events;
    gen_progress(g, &done, &events);
    double secs = (double)(t - pr->t0_ns) / 1e9;
    fprintf(stderr, "\rgen: %lld events, %.0f events/s, day %d/%d (%.0f%%)   ", (long long)events,
            secs > 0 ? (double)events / secs : 0.0, done, days, 100.0 * done / days);
    if (force)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- Kafka sink -------------------------------------------------------------------- */

typedef struct gen_kafka_s {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int64_t delivered, failed;
    char first_error[256];
    char brokers[256];
    int64_t timeout_ms;
    int event_timestamps;
} gen_kafka_t;

static void gen_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    gen_kafka_t *k = opaque;
    (void)rk;
    if (m->err) {
        if (k->failed++ == 0)
            snprintf(k->first_error, sizeof(k->first_error), "%s", rd_kafka_err2str(m->err));
    } else {
        k->delivered++;
    }
}

static int kafka_open(cfg_t *cfg, const char *topic, gen_kafka_t *k, char *errstr,
                      size_t errstr_size)
{
    /* Applied before the user's kafka.* keys, so those win. The message timeout bounds how
     * long librdkafka retries (with backoff) through a broker outage: 2 minutes, then a clear
     * failure with the count of undelivered messages instead of an endless retry. */
    static const char *const extra[] = {
        "enable.idempotence",
        "true",
        "message.timeout.ms",
        "120000",
        "linger.ms",
        "20",
        "queue.buffering.max.messages",
        "500000",
        NULL,
    };
    memset(k, 0, sizeof(*k));
    rd_kafka_conf_t *conf = kf_conf(cfg, RD_KAFKA_PRODUCER, extra, errstr, errstr_size);
    if (!conf)
        return -1;
    size_t sz = sizeof(k->brokers);
    if (rd_kafka_conf_get(conf, "bootstrap.servers", k->brokers, &sz) != RD_KAFKA_CONF_OK ||
        !k->brokers[0])
        snprintf(k->brokers, sizeof(k->brokers), "(kafka.bootstrap.servers not set)");
    char tbuf[32];
    sz = sizeof(tbuf);
    k->timeout_ms = 120000;
    if (rd_kafka_conf_get(conf, "message.timeout.ms", tbuf, &sz) == RD_KAFKA_CONF_OK)
        k->timeout_ms = atoll(tbuf);
    rd_kafka_conf_set_dr_msg_cb(conf, gen_dr_cb);
    rd_kafka_conf_set_opaque(conf, k);
    if (!(k->rk = kf_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size)))
        return -1;
    k->rkt = rd_kafka_topic_new(k->rk, topic, NULL);
    if (!k->rkt) {
        snprintf(errstr, errstr_size, "topic \"%s\": %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    /* Fail fast (and in bounded time) when no broker answers. A broker that auto-creates
     * topics answers the first request for a new one with "unknown topic" or "leader not
     * available" while it creates it: ask again until every partition has a leader, for
     * GEN_METADATA_TIMEOUT_MS at most. */
    int64_t t0 = now_ns();
    for (int attempt = 1;; attempt++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(k->rk, 0, k->rkt, &md, GEN_METADATA_TIMEOUT_MS);
        if (err) {
            snprintf(errstr, errstr_size,
                     "cannot reach Kafka at %s within %d ms: %s (check kafka.bootstrap.servers)",
                     k->brokers, GEN_METADATA_TIMEOUT_MS, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_resp_err_t terr =
            md->topic_cnt > 0 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        int ready = terr == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0;
        for (int p = 0; ready && p < md->topics[0].partition_cnt; p++)
            ready = md->topics[0].partitions[p].leader >= 0 && !md->topics[0].partitions[p].err;
        rd_kafka_metadata_destroy(md);
        if (ready)
            return 0;
        int64_t waited_ms = (now_ns() - t0) / 1000000;
        if (waited_ms >= GEN_METADATA_TIMEOUT_MS) {
            if (terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                snprintf(errstr, errstr_size,
                         "topic \"%s\" does not exist on %s and was not created within %lld ms "
                         "(%d metadata requests): create it, or enable "
                         "auto.create.topics.enable on the broker",
                         topic, k->brokers, (long long)waited_ms, attempt);
            else
                snprintf(errstr, errstr_size,
                         "topic \"%s\" on %s has no leader for every partition after %lld ms: "
                         "%s",
                         topic, k->brokers, (long long)waited_ms,
                         rd_kafka_err2str(terr ? terr : RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE));
            return -1;
        }
        if (attempt == 1)
            log_info("gen", "topic \"%s\" not ready on %s (%s): waiting up to %d ms for it", topic,
                     k->brokers, rd_kafka_err2str(terr), GEN_METADATA_TIMEOUT_MS);
        rd_kafka_poll(k->rk, 250);
    }
}

static int kafka_produce(gen_kafka_t *k, const ev_event_t *ev, const void *buf, size_t len,
                         char *errstr, size_t errstr_size)
{
    for (;;) {
        /* With --event-timestamps the message timestamp is the event time, so `replay
         * kafka:TOPIC --from/--to` (offsets for times) selects event-time ranges. 0 lets
         * librdkafka stamp the produce time. */
        rd_kafka_resp_err_t err = rd_kafka_producev(
            k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)buf, len),
            RD_KAFKA_V_KEY(ev->user_id, ev->user_id_len),
            RD_KAFKA_V_TIMESTAMP(k->event_timestamps ? ev->event_time_ms : 0), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(errstr, errstr_size, "produce failed: %s", rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(k->rk, 100); /* the local queue is full: let deliveries drain it */
        if (k->failed)
            break;
    }
    rd_kafka_poll(k->rk, 0);
    if (k->failed) {
        snprintf(errstr, errstr_size,
                 "delivery to %s failed after retrying for kafka.message.timeout.ms (%lld ms): "
                 "%s; %lld messages delivered, %lld not (the run stops here)",
                 k->brokers, (long long)k->timeout_ms, k->first_error, (long long)k->delivered,
                 (long long)k->failed);
        return -1;
    }
    char fatal[256];
    if (rd_kafka_fatal_error(k->rk, fatal, sizeof(fatal))) {
        snprintf(errstr, errstr_size, "producer fatal error: %s", fatal);
        return -1;
    }
    return 0;
}

/* Waits for every outstanding delivery (bounded by the message timeout). */
static int kafka_finish(gen_kafka_t *k, char *errstr, size_t errstr_size)
{
    rd_kafka_flush(k->rk, (int)(k->timeout_ms + 5000));
    int left = rd_kafka_outq_len(k->rk);
    if (k->failed) {
        snprintf(errstr, errstr_size, "%lld messages not delivered to %s: %s",
                 (long long)k->failed + left, k->brokers, k->first_error);
        return -1;
    }
    if (left > 0) {
        snprintf(errstr, errstr_size, "%d messages still undelivered after %lld ms (broker %s)",
                 left, (long long)k->timeout_ms + 5000, k->brokers);
        return -1;
    }
    return 0;
}

static void kafka_close(gen_kafka_t *k)
{
    if (k->rkt)
        rd_kafka_topic_destroy(k->rkt);
    if (k->rk)
        rd_kafka_destroy(k->rk);
    k->rkt = NULL;
    k->rk = NULL;
}

/* Sleeps until event n is due at rate_eps, serving delivery reports meanwhile. */
static void pace(gen_kafka_t *k, double rate_eps, int64_t t0_ns, int64_t n)
{
    int64_t due_ns = t0_ns + (int64_t)((double)n / rate_eps * 1e9);
    for (;;) {
        int64_t ahead_ns = due_ns - now_ns();
        if (ahead_ns <= 0 || gen_stop)
            return;
        if (ahead_ns >= 1000000) {
            rd_kafka_poll(k->rk, (int)(ahead_ns / 1000000));
        } else {
            struct timespec ts = {0, (long)ahead_ns};
            nanosleep(&ts, NULL);
        }
    }
}

/* ---- the command ------------------------------------------------------------------- */

int cmd_gen(cfg_t *cfg, int argc, char **argv)
{
    gen_opts_t o;
    int prc = gen_parse_args(cfg, argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? 0 : 2;

    char err[1024] = "";
    gen_t *g = gen_new(&o.params, err, sizeof(err));
    if (!g) {
        fprintf(stderr, "churnstream gen: %s\n", err);
        return 2;
    }
    int status = 1;
    char *truth_owned = NULL;
    const char *truth = o.truth_path;
    /* With --out - (stdout) there is no "next to it": the truth only goes where --truth says,
     * and never to stdout as well, where it would interleave with the Avro bytes. */
    if (!truth && o.out_path && strcmp(o.out_path, "-") != 0)
        truth = truth_owned = default_truth_path(o.out_path);
    if (truth && o.out_path && strcmp(truth, "-") == 0 && strcmp(o.out_path, "-") == 0) {
        fprintf(stderr, "churnstream gen: --out - and --truth - would both write to stdout\n");
        gen_destroy(g);
        return 2;
    }
    ev_file_writer_t *fw = NULL;
    of_t *csv = NULL; /* --out FILE.csv */
    ev_encoder_t *enc = NULL;
    gen_kafka_t kafka;
    memset(&kafka, 0, sizeof(kafka));
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = gen_on_signal;
    sigemptyset(&sa.sa_mask);
    gen_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    /* The truth is known before the first event, so it is written first: a failed run
     * still leaves it, and an unwritable path fails before any work. */
    if (truth && gen_truth_write(g, truth, err, sizeof(err)) < 0)
        goto done;

    if (o.csv_out) {
        csv = csv_open(o.out_path, err, sizeof(err));
        if (!csv)
            goto done;
    } else if (o.out_path) {
        fw = ev_file_writer_open(o.out_path, err, sizeof(err));
        if (!fw)
            goto done;
    } else {
        enc = ev_encoder_new(o.wire, o.schema_id, err, sizeof(err));
        if (!enc || kafka_open(cfg, o.topic, &kafka, err, sizeof(err)) < 0)
            goto done;
        kafka.event_timestamps = o.event_timestamps; /* kafka_open zeroed it */
    }

    gen_progress_t pr = {.enabled = !o.quiet && isatty(STDERR_FILENO)};
    pr.t0_ns = pr.last_ns = now_ns();
    ev_event_t ev;
    int64_t n = 0;
    int rc = 0;
    while (!gen_stop && (rc = gen_next(g, &ev)) == 1) {
        if (csv) {
            if (csv_append(csv, &ev, err, sizeof(err)) < 0)
                goto done;
        } else if (fw) {
            if (ev_file_writer_append(fw, &ev, err, sizeof(err)) < 0)
                goto done;
        } else {
            const void *buf;
            size_t len;
            if (ev_encode(enc, &ev, &buf, &len) < 0) {
                snprintf(err, sizeof(err), "cannot encode event %lld (user %s)", (long long)n,
                         ev.user_id);
                goto done;
            }
            if (kafka_produce(&kafka, &ev, buf, len, err, sizeof(err)) < 0)
                goto done;
            if (o.rate_eps > 0)
                pace(&kafka, o.rate_eps, pr.t0_ns, n + 1);
        }
        n++;
        if ((n & 1023) == 0)
            progress_tick(&pr, g, o.params.days, 0);
    }
    if (!gen_stop && rc < 0) {
        snprintf(err, sizeof(err), "out of memory generating events");
        goto done;
    }
    progress_tick(&pr, g, o.params.days, 1);

    if (csv) {
        int crc = of_commit(csv, err, sizeof(err));
        csv = NULL;
        if (crc < 0)
            goto done;
    } else if (fw) {
        int crc = ev_file_writer_close(fw, err, sizeof(err));
        fw = NULL;
        if (crc < 0)
            goto done;
    } else if (kafka_finish(&kafka, err, sizeof(err)) < 0) {
        goto done;
    }
    double secs = (double)(now_ns() - pr.t0_ns) / 1e9;
    static const char *const process_names[] = {"planted", "bgnbd", "paretonbd"};
    log_info("gen",
             "%s: %lld events, %lld users, %d days, seed %llu, process %s -> %s %s, truth %s, "
             "%.2f s",
             gen_stop ? "interrupted (what was generated is delivered)" : "done", (long long)n,
             (long long)o.params.users, o.params.days, (unsigned long long)o.params.seed,
             process_names[o.params.process], o.out_path ? "file" : "topic",
             o.out_path ? o.out_path : o.topic, truth ? truth : "(none)", secs);
    status = gen_stop ? 1 : 0;
    err[0] = '\0';

done:
    if (status != 0 && err[0])
        fprintf(stderr, "churnstream gen: %s\n", err);
    if (fw) {
        ev_file_writer_abort(fw);
    }
    if (csv)
        of_abort(csv);
    ev_encoder_destroy(enc);
    kafka_close(&kafka);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(truth_owned);
    gen_destroy(g);
    return status;
}
