/* Options of `churnstream gen`: the usage text, parsing each option, and the rules across
 * options (cmd_gen.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "cmd_gen.h"
#include "log.h"

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
    O_WALL,
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

void gen_usage(FILE *out)
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
          "  --wall-clock      topics: each event's time is the wall clock when it is\n"
          "                    produced (never earlier than the one before), the process\n"
          "                    still choosing who does what: with --rate, event time runs\n"
          "                    at the real pace (a live shop; bench/live.py's latency)\n"
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

static int parse_i64(const char *flag, const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    long long v;
    if (cli_int("gen", flag, text, lo, hi, &v) != 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_f64(const char *flag, const char *text, double lo, double hi, double *out)
{
    return cli_double("gen", flag, text, lo, hi, out);
}

/* The options of the process that generates the events (--process, --churn-rate and the
 * BTYD parameters); -1 on a bad value (message printed). */
static int apply_process_option(gen_opts_t *o, int c, const char *a)
{
    int64_t v;
    switch (c) {
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
    }
    return 0;
}

/* Applies option c with argument a; 1 when --help was printed, -1 on a usage error. */
static int apply_option(cfg_t *cfg, gen_opts_t *o, int c, const char *a)
{
    int64_t v;
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
    case O_WALL:
        o->wall_clock = 1;
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
    case O_QUIET:
        o->quiet = 1;
        break;
    case O_HELP:
    case 'h':
        gen_usage(stdout);
        return 1;
    default:
        return apply_process_option(o, c, a);
    }
    return 0;
}

/* The rules across options; -1 (message printed) when they do not hold. */
static int check_options(gen_opts_t *o)
{
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
    if (o->wall_clock && (o->out_path || o->truth_path)) {
        fprintf(stderr, "churnstream gen: --wall-clock applies to topics, without --truth (the "
                        "truth's times are the process's, not the wall clock's)\n");
        return -1;
    }
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

int gen_parse_args(cfg_t *cfg, int argc, char **argv, gen_opts_t *o)
{
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
        {"wall-clock", no_argument, NULL, O_WALL},
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
    int c;
    optind = 0; /* glibc: full re-initialization, commands may run more than once */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        if (c == '?' || c == ':' || (c != 'h' && (c < O_USERS || c > O_HELP))) {
            cli_bad_option("gen", argv[optind - 1], NULL);
            return -1;
        }
        int rc = apply_option(cfg, o, c, optarg);
        if (rc != 0)
            return rc;
    }
    if (cli_no_operands("gen", argc, argv, 1) != 0)
        return -1;
    return check_options(o);
}
