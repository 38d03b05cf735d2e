/* `churnstream compose`: turns churn alerts into retention messages written by a language
 * model behind guardrails (compose.h). Live mode consumes topic.alerts in its own consumer
 * group and produces one RetentionMessage per alert to topic.messages, committing an alert's
 * offset only after its message (or the template fallback) is acknowledged; --dry-run reads
 * replay's --alerts-out JSON lines and writes JSON lines, with no broker. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "alert.h"
#include "alert_resolve.h"
#include "cli_args.h"
#include "commands.h"
#include "compose.h"
#include "kafka.h"
#include "log.h"
#include "outfile.h"

static void usage(FILE *out)
{
    fputs("usage: churnstream compose [--max N] [--timeout S] [--print] [config options]\n"
          "       churnstream compose --dry-run --alerts-in FILE.jsonl --out FILE.jsonl\n"
          "\n"
          "Writes one retention message per churn alert: a short text for the customer and a\n"
          "paragraph for the account manager. An OpenAI-compatible endpoint (llm.url) writes\n"
          "the wording only; the offer (the alert's recommended action), the numbers and the\n"
          "names are churnstream's. Each part is checked (non-empty, length bounds, no digit,\n"
          "currency or link, no template token); a failed check, an endpoint error or timeout,\n"
          "or an open circuit breaker (llm.breaker_failures, llm.breaker_cooldown) gives the\n"
          "deterministic template instead, marked source=template with its fallback_reason.\n"
          "\n"
          "Live mode reads topic.alerts in consumer group compose.group_id and produces\n"
          "RetentionMessage records (schemas/retention_message.avsc, single-object framing)\n"
          "to topic.messages, key = user_id, idempotent producer. An alert's offset is\n"
          "committed only after its message is acknowledged, so a crash re-sends, never\n"
          "loses; an alert_id already answered in this run is skipped.\n"
          "\n"
          "  --dry-run          no Kafka: read --alerts-in, write --out\n"
          "  --alerts-in FILE   JSON lines from `churnstream replay --alerts-out`\n"
          "  --out FILE         JSON lines, one message per alert (\"-\" = stdout)\n"
          "  --max N            live mode: exit after N messages produced\n"
          "  --timeout S        live mode: exit when no alert arrived for S seconds\n"
          "  --print            live mode: also print each message produced as one JSON line\n"
          "  --help             this text\n"
          "\n"
          "Prints a summary at the end: LLM vs template counts, fallbacks by reason,\n"
          "latency p50/p99 of the endpoint per alert.\n"
          "Exit status: 0 ok, 1 runtime failure (Kafka, unreadable input line, output file),\n"
          "2 usage or config error.\n"
          "Config keys that matter here: llm.*, topic.alerts, topic.messages,\n"
          "compose.group_id, alerts.schemas_dir (alerts from a newer schema), kafka.*\n"
          "(kafka.group.id is replaced by compose.group_id).\n",
          out);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- alert ids answered in this run: an open-addressing set of 32-hex-digit ids ---- */

typedef struct {
    char (*ids)[ALERT_ID_LEN + 1];
    size_t cap, n;
} seen_t;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Returns 1 when id was already in the set, 0 after adding it, -1 when out of memory. */
static int seen_add(seen_t *s, const char *id)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        char(*ni)[ALERT_ID_LEN + 1] = calloc(nc, sizeof *ni);
        if (!ni)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->ids[i][0]) {
                size_t j = fnv1a(s->ids[i]) & (nc - 1);
                while (ni[j][0])
                    j = (j + 1) & (nc - 1);
                memcpy(ni[j], s->ids[i], sizeof ni[j]);
            }
        free(s->ids);
        s->ids = ni;
        s->cap = nc;
    }
    size_t j = fnv1a(id) & (s->cap - 1);
    while (s->ids[j][0]) {
        if (strcmp(s->ids[j], id) == 0)
            return 1;
        j = (j + 1) & (s->cap - 1);
    }
    snprintf(s->ids[j], sizeof s->ids[j], "%s", id);
    s->n++;
    return 0;
}

/* ---- dry run ------------------------------------------------------------------------- */

static int dry_run(cfg_t *cfg, const char *in_path, const char *out_path)
{
    char err[512];
    if (of_same_file(out_path, in_path)) {
        fprintf(stderr, "churnstream compose: --out %s is the --alerts-in file\n", out_path);
        return 2;
    }
    FILE *in = fopen(in_path, "r");
    if (!in) {
        fprintf(stderr, "churnstream compose: --alerts-in %s: %s\n", in_path, strerror(errno));
        return 1;
    }
    cm_composer_t *cm = cm_new(cfg, NULL, err, sizeof err);
    if (!cm) {
        fprintf(stderr, "churnstream compose: %s\n", err);
        fclose(in);
        return 2;
    }
    of_t *of = of_open(out_path, err, sizeof err);
    if (!of) {
        fprintf(stderr, "churnstream compose: --out %s\n", err);
        cm_destroy(cm);
        fclose(in);
        return 1;
    }
    cli_catch_stop_signals();
    char *line = NULL;
    size_t line_cap = 0;
    long long lineno = 0, bad = 0, dup = 0;
    int rc = 0;
    seen_t seen = {0};
    cm_result_t *r = malloc(sizeof *r);
    if (!r) {
        fprintf(stderr, "churnstream compose: out of memory\n");
        rc = 1;
    }
    while (!rc && !cli_stop_requested && getline(&line, &line_cap, in) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        alert_t a;
        char names[ALERT_TOP_FACTORS][65];
        char why[256];
        if (cm_alert_from_json(line, &a, names, why, sizeof why) != 0) {
            fprintf(stderr, "churnstream compose: %s:%lld: skipped: %s\n", in_path, lineno, why);
            bad++;
            continue;
        }
        int s = seen_add(&seen, a.alert_id);
        if (s != 0) {
            if (s < 0) {
                fprintf(stderr, "churnstream compose: out of memory\n");
                rc = 1;
                break;
            }
            dup++;
            continue;
        }
        cm_compose(cm, &a, r);
        char *js = cm_result_to_json(r, cfg->llm_model);
        if (!js) {
            fprintf(stderr, "churnstream compose: %s:%lld: message not representable as JSON\n",
                    in_path, lineno);
            rc = 1;
            break;
        }
        fprintf(of_file(of), "%s\n", js);
        free(js);
    }
    if (ferror(in)) {
        fprintf(stderr, "churnstream compose: --alerts-in %s: read error\n", in_path);
        rc = 1;
    }
    if (cli_stop_requested && !rc) {
        fprintf(stderr, "churnstream compose: interrupted: %s not written\n", out_path);
        of_abort(of);
        rc = 1;
    } else if (rc) {
        of_abort(of);
    } else if (of_commit(of, err, sizeof err) != 0) {
        fprintf(stderr, "churnstream compose: --out %s\n", err);
        rc = 1;
    }
    cm_print_summary(cm, stdout);
    printf("compose: input: %lld lines, %lld unreadable, %lld duplicate alert ids skipped\n",
           lineno, bad, dup);
    if (bad && !rc)
        rc = 1;
    free(r);
    free(line);
    free(seen.ids);
    cm_destroy(cm);
    fclose(in);
    return rc;
}

/* ---- live mode ----------------------------------------------------------------------- */

/* Delivery report: the opaque is the int the produce loop waits on (1 ok, -1 failed). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    int *status = m->_private;
    if (m->err)
        log_warn("compose", "message for %.*s not delivered: %s", (int)m->key_len,
                 (const char *)m->key, rd_kafka_err2str(m->err));
    if (status)
        *status = m->err ? -1 : 1;
}

static rd_kafka_t *open_consumer(cfg_t *cfg, char *err, size_t errsz)
{
    static const char *const extra[] = {
        "enable.auto.commit", "false", "enable.auto.offset.store", "false", "auto.offset.reset",
        "earliest",           NULL};
    rd_kafka_conf_t *conf = kf_conf(cfg, RD_KAFKA_CONSUMER, extra, err, errsz);
    if (!conf)
        return NULL;
    /* the daemon's group (kafka.group.id) must never be shared: it commits other offsets */
    if (rd_kafka_conf_set(conf, "group.id", cfg->compose_group_id, err, errsz) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = kf_new(RD_KAFKA_CONSUMER, conf, err, errsz);
    if (!rk)
        return NULL;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, cfg->topic_alerts, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (e) {
        snprintf(err, errsz, "subscribe %s: %s", cfg->topic_alerts, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

static rd_kafka_t *open_producer(cfg_t *cfg, char *err, size_t errsz)
{
    static const char *const extra[] = {"enable.idempotence", "true", "acks", "all", NULL};
    rd_kafka_conf_t *conf = kf_conf(cfg, RD_KAFKA_PRODUCER, extra, err, errsz);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    return kf_new(RD_KAFKA_PRODUCER, conf, err, errsz);
}

/* Produces one record and waits for its acknowledgement (the idempotent producer retries
 * by itself; a failure here is final: librdkafka gave up). Returns 0 or -1. */
static int produce_acked(rd_kafka_t *pk, const char *topic, const cm_result_t *r,
                         const uint8_t *buf, size_t len)
{
    int status = 0;
    rd_kafka_resp_err_t e;
    for (;;) {
        e = rd_kafka_producev(pk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(r->user_id, strlen(r->user_id)),
                              RD_KAFKA_V_VALUE((void *)buf, len), RD_KAFKA_V_OPAQUE(&status),
                              RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(pk, 100);
    }
    if (e) {
        log_error("compose", "produce to %s: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    /* Bounded by message.timeout.ms inside librdkafka: the report always comes. A signal
     * does not cut the wait, or the message could be delivered with its offset uncommitted
     * (harmless: at-least-once) or, worse, reported nowhere. */
    while (status == 0)
        rd_kafka_poll(pk, 100);
    return status == 1 ? 0 : -1;
}

/* The live loop's state: what it reads and writes with, and what it counted. */
typedef struct live_s {
    cfg_t *cfg;
    ar_t *dec;
    cm_composer_t *cm;
    rd_kafka_t *ck, *pk; /* consumer of the alerts, producer of the messages */
    seen_t seen;         /* alert ids answered in this run */
    uint8_t *buf;        /* encoded message, bufcap bytes */
    size_t bufcap;
    cm_result_t *r;
    int print; /* --print: each message as JSON on stdout */
    long long produced, undecodable, dup;
} live_t;

/* Answers one alert message. 1 when it is done with (answered, a duplicate or undecodable:
 * its offset may be committed), 0 when it must be read again, -1 on a fatal error. */
static int handle(live_t *l, const rd_kafka_message_t *m)
{
    alert_t a;
    char why[256];
    if (ar_decode(l->dec, m->payload, m->len, &a, why, sizeof why) != 0) {
        /* Nothing to answer: logged and committed past, like tail skips it. */
        log_warn("compose", "%s [%d] offset %lld: undecodable alert skipped: %s",
                 l->cfg->topic_alerts, m->partition, (long long)m->offset, why);
        l->undecodable++;
        return 1;
    }
    int s = seen_add(&l->seen, a.alert_id);
    if (s < 0) {
        fprintf(stderr, "churnstream compose: out of memory\n");
        return -1;
    }
    if (s == 1) {
        log_info("compose", "alert %s already answered in this run: skipped", a.alert_id);
        l->dup++;
        return 1;
    }
    cm_result_t *r = l->r;
    cm_compose(l->cm, &a, r);
    int64_t len = cm_encode(r, l->cfg->llm_model, l->buf, l->bufcap);
    if (len < 0 || produce_acked(l->pk, l->cfg->topic_messages, r, l->buf, (size_t)len) != 0) {
        fprintf(stderr,
                "churnstream compose: alert %s (%s [%d] offset %lld): message not produced to "
                "%s; offset not committed, it will be read again\n",
                a.alert_id, l->cfg->topic_alerts, m->partition, (long long)m->offset,
                l->cfg->topic_messages);
        return -1;
    }
    l->produced++;
    char *js = l->print ? cm_result_to_json(r, l->cfg->llm_model) : NULL;
    if (js) {
        printf("%s\n", js);
        fflush(stdout);
        free(js);
    }
    log_debug("compose", "alert %s -> %s%s%s in %lld ms", a.alert_id,
              r->from_llm ? "llm" : "template", r->from_llm ? "" : " ", r->fallback_reason,
              (long long)r->latency_ms);
    return 1;
}

/* Commits the group's offset past m (synchronously). */
static void commit_past(live_t *l, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *o = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(o, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset + 1;
    rd_kafka_resp_err_t ce = rd_kafka_commit(l->ck, o, 0 /* sync */);
    rd_kafka_topic_partition_list_destroy(o);
    if (ce) {
        /* a rebalance moved the partition: the new owner re-reads; not an error */
        log_warn("compose", "commit %s [%d] offset %lld: %s", l->cfg->topic_alerts, m->partition,
                 (long long)m->offset + 1, rd_kafka_err2str(ce));
    }
}

/* Reads alerts until a signal, max_messages produced or timeout_s without an alert. 0, or 1
 * on a failure (a message not produced, a fatal Kafka error). */
static int live_loop(live_t *l, long long max_messages, double timeout_s)
{
    double last_s = mono_s();
    while (!cli_stop_requested) {
        rd_kafka_poll(l->pk, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(l->ck, 200);
        if (!m) {
            if (timeout_s > 0 && mono_s() - last_s > timeout_s)
                break;
            continue;
        }
        if (m->err) {
            int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("compose", "%s: %s", l->cfg->topic_alerts, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (fatal)
                return 1;
            continue;
        }
        last_s = mono_s();
        int h = handle(l, m);
        if (h == 1)
            commit_past(l, m);
        rd_kafka_message_destroy(m);
        if (h < 0)
            return 1;
        if (max_messages > 0 && l->produced >= max_messages)
            break;
    }
    return 0;
}

static int live(cfg_t *cfg, long long max_messages, double timeout_s, int print)
{
    char err[512];
    live_t l = {.cfg = cfg, .print = print, .bufcap = 16384};
    if (!(l.dec = ar_new(cfg->alerts_schemas_dir, err, sizeof err)) ||
        !(l.cm = cm_new(cfg, NULL, err, sizeof err)) ||
        !(l.ck = open_consumer(cfg, err, sizeof err)) ||
        !(l.pk = open_producer(cfg, err, sizeof err))) {
        fprintf(stderr, "churnstream compose: %s\n", err);
        if (l.ck)
            rd_kafka_destroy(l.ck);
        cm_destroy(l.cm);
        ar_destroy(l.dec);
        return 2;
    }
    cli_catch_stop_signals();
    log_info("compose", "reading %s in group %s, writing %s; endpoint model %s", cfg->topic_alerts,
             cfg->compose_group_id, cfg->topic_messages, cfg->llm_model);
    int rc = 0;
    l.buf = malloc(l.bufcap);
    l.r = malloc(sizeof *l.r);
    if (!l.buf || !l.r) {
        fprintf(stderr, "churnstream compose: out of memory\n");
        rc = 1;
    } else {
        rc = live_loop(&l, max_messages, timeout_s);
    }
    cm_print_summary(l.cm, stdout);
    printf("compose: kafka: %lld produced to %s, %lld undecodable alerts skipped, %lld duplicate "
           "alert ids skipped\n",
           l.produced, cfg->topic_messages, l.undecodable, l.dup);
    fflush(stdout);
    rd_kafka_consumer_close(l.ck);
    rd_kafka_destroy(l.ck);
    if (rd_kafka_flush(l.pk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "churnstream compose: producer flush timed out\n");
        rc = 1;
    }
    rd_kafka_destroy(l.pk);
    free(l.buf);
    free(l.r);
    free(l.seen.ids);
    cm_destroy(l.cm);
    ar_destroy(l.dec);
    return rc;
}

int cmd_compose(cfg_t *cfg, int argc, char **argv)
{
    enum { O_DRY = 1000, O_IN, O_OUT, O_PRINT };
    static const struct option longopts[] = {
        {"dry-run", no_argument, 0, O_DRY},   {"alerts-in", required_argument, 0, O_IN},
        {"out", required_argument, 0, O_OUT}, {"print", no_argument, 0, O_PRINT},
        {"max", required_argument, 0, 'm'},   {"timeout", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int dry = 0, print = 0, c;
    const char *in_path = NULL, *out_path = NULL;
    long long max_messages = 0;
    double timeout_s = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_DRY:
            dry = 1;
            break;
        case O_IN:
            in_path = optarg;
            break;
        case O_OUT:
            out_path = optarg;
            break;
        case O_PRINT:
            print = 1;
            break;
        case 'm':
            if (cli_int("compose", "--max", optarg, 1, LLONG_MAX, &max_messages) != 0)
                return 2;
            break;
        case 'T':
            if (cli_double("compose", "--timeout", optarg, 1e-3, 1e6, &timeout_s) != 0)
                return 2;
            break;
        default:
            return cli_help_or_bad_option("compose", c, argv[optind - 1], usage);
        }
    }
    if (cli_no_operands("compose", argc, argv, 0) != 0)
        return 2;
    if (dry) {
        if (!in_path || !out_path) {
            fprintf(stderr,
                    "churnstream compose: --dry-run needs --alerts-in FILE and --out FILE\n");
            return 2;
        }
        if (max_messages || timeout_s > 0 || print) {
            fprintf(stderr,
                    "churnstream compose: --max, --timeout and --print apply to live mode only\n");
            return 2;
        }
        return dry_run(cfg, in_path, out_path);
    }
    if (in_path || out_path) {
        fprintf(stderr, "churnstream compose: --alerts-in and --out need --dry-run\n");
        return 2;
    }
    return live(cfg, max_messages, timeout_s, print);
}
