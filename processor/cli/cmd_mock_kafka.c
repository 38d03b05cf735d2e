/* `churnstream mock-kafka`: librdkafka's in-process mock cluster in a process of its own, so
 * gen, run and tail (separate processes) reach it over loopback TCP. For `make demo` and
 * quick trials only: no persistence, one broker, nothing is retained after it exits. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli_args.h"
#include "commands.h"
#include "kafka.h"
#include "outfile.h"
#include "log.h"

static void usage(FILE *out)
{
    fputs("usage: churnstream mock-kafka [--topics NAME:PARTS,...] [--port-file FILE]\n"
          "\n"
          "Starts librdkafka's built-in mock Kafka cluster (one broker on 127.0.0.1, a\n"
          "random port), creates the topics, prints the bootstrap address on stdout (and\n"
          "writes it to FILE, replaced atomically once the topics exist) and runs until\n"
          "SIGTERM or SIGINT. Other churnstream processes reach it with\n"
          "--kafka.bootstrap.servers=ADDRESS. Used by `make demo`: no broker to install.\n"
          "The mock keeps everything in memory, supports consumer groups (the first join\n"
          "takes ~3 s) and idempotent producers; it is not for production.\n"
          "\n"
          "  --topics LIST     topics to create (default: topic.events:4, topic.alerts:4,\n"
          "                    topic.dlq:1 from the config)\n"
          "  --port-file FILE  also write the bootstrap address to FILE\n"
          "  --help            this text\n",
          out);
}

/* Creates every NAME:PARTS of list. Returns 0, or -1 with errstr set. */
static int create_topics(rd_kafka_mock_cluster_t *mc, const char *list, char *errstr,
                         size_t errstr_size)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    int rc = 0, n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':'), *end = NULL;
        long parts = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == tok || !end || *end != '\0' || parts < 1 || parts > 1000) {
            snprintf(errstr, errstr_size,
                     "--topics: \"%s\": expected NAME:PARTITIONS with 1..1000 partitions", tok);
            rc = -1;
            break;
        }
        *colon = '\0';
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, tok, (int)parts, 1);
        if (err) {
            snprintf(errstr, errstr_size, "topic %s: %s", tok, rd_kafka_err2str(err));
            rc = -1;
            break;
        }
        n++;
    }
    if (rc == 0 && n == 0) {
        snprintf(errstr, errstr_size, "--topics: no topic given");
        rc = -1;
    }
    free(copy);
    return rc;
}

/* Through of_open like every output: readers poll for the file, so it must appear whole. */
static int write_port_file(const char *path, const char *bootstraps, char *errstr,
                           size_t errstr_size)
{
    of_t *of = of_open(path, errstr, errstr_size);
    if (!of)
        return -1;
    fprintf(of_file(of), "%s\n", bootstraps);
    return of_commit(of, errstr, errstr_size);
}

int cmd_mock_kafka(cfg_t *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {{"topics", required_argument, 0, 't'},
                                             {"port-file", required_argument, 0, 'p'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *topics = NULL, *port_file = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            topics = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        default:
            return cli_help_or_bad_option("mock-kafka", c, argv[optind - 1], usage);
        }
    }
    if (cli_no_operands("mock-kafka", argc, argv, 0) != 0)
        return 2;
    char defaults[1024];
    if (!topics) {
        snprintf(defaults, sizeof defaults, "%s:4,%s:4,%s:1", cfg->topic_events, cfg->topic_alerts,
                 cfg->topic_dlq);
        topics = defaults;
    }

    char err[512];
    /* The mock cluster lives inside an rd_kafka_t; a producer that never produces is the
     * lightest host. Its own bootstrap is irrelevant: it never connects anywhere. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", log_get_level() <= LOG_DEBUG ? "7" : "3", NULL, 0);
    rd_kafka_t *rk = kf_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "churnstream mock-kafka: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) {
        fprintf(stderr, "churnstream mock-kafka: cannot start the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    const char *boot = rd_kafka_mock_cluster_bootstraps(mc);
    if (create_topics(mc, topics, err, sizeof err) != 0 ||
        (port_file && write_port_file(port_file, boot, err, sizeof err) != 0)) {
        fprintf(stderr, "churnstream mock-kafka: %s\n", err);
        rc = 2;
    } else {
        cli_catch_stop_signals();
        printf("%s\n", boot);
        fflush(stdout);
        log_info("mock-kafka", "mock cluster up: bootstrap %s, topics %s", boot, topics);
        while (!cli_stop_requested)
            usleep(100 * 1000);
        log_info("mock-kafka", "stopping");
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    if (port_file)
        unlink(port_file);
    return rc;
}
