/* `churnstream run`: the daemon (processor/daemon.h) with its batch handler: the churn
 * pipeline (churn_handler.h) by default, or the event-count handler (count_handler.h), a
 * diagnostic that proves the Kafka/Redis plumbing (offsets, DLQ, exactly-once) on its own. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "churn_handler.h"
#include "commands.h"
#include "config_load.h"
#include "count_handler.h"
#include "daemon.h"
#include "log.h"

static void run_usage(FILE *out)
{
    fputs("usage: churnstream run [--model-in FILE] [--handler churn|count] [config options]\n"
          "\n"
          "Consumes topic.events as consumer group kafka.group.id in micro-batches\n"
          "(batch.max_messages / batch.max_wait). Each batch goes through the churn\n"
          "pipeline: per-user features in Redis, ticks and delayed labels, the model\n"
          "(standardizer, k-means segments, logistic regression, calibration), the alert\n"
          "policy; then ONE Redis transaction commits the user records, the last-seen index,\n"
          "each partition's next offset and engine progress, the model snapshot and the alert\n"
          "outbox. On (re)assignment it resumes from the offsets stored in Redis, so a crash\n"
          "neither loses nor double-counts an event. Alerts are produced to topic.alerts\n"
          "(Avro ChurnAlert, alerts.framing) after the commit and trimmed from the outbox on\n"
          "delivery; the outbox is re-sent at start (same alert ids). Rejected messages go to\n"
          "topic.dlq with an `error` header and source.topic/partition/offset.\n"
          "HTTP: /metrics, /healthz and GET /v1/users/{id} (the user as inspect user --json\n"
          "shows it) on metrics.bind:metrics.port (0 = off).\n"
          "\n"
          "  --model-in FILE   warm start (a replay --model-out snapshot) when Redis holds no\n"
          "                    model yet; a model in Redis always wins (it is newer)\n"
          "  --handler NAME    churn (default) or count: the event-count diagnostic, which\n"
          "                    keeps per-user event counts in <state.prefix>count:users and\n"
          "                    offsets in <state.prefix>count:offsets, no models\n"
          "\n"
          "Several instances in one group share the partitions (each sweeps only the users of\n"
          "its partitions). They share one model key: last writer wins, so run one instance\n"
          "per model until model merging lands.\n"
          "\n"
          "SIGTERM/SIGINT: finish the batch, commit, flush the producer (at most 10 s), leave\n"
          "the group, exit 0. A second signal exits at once (128 + signal number); the\n"
          "uncommitted batch is re-read on restart.\n"
          "Exit status: 0 stopped cleanly, 1 runtime failure (Redis unreachable at start, fatal\n"
          "Kafka error), 2 usage or configuration error.\n",
          out);
}

int cmd_run(cfg_t *cfg, int argc, char **argv)
{
    const char *model_in = NULL, *handler_name = "churn";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            run_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--model-in") == 0 && i + 1 < argc) {
            model_in = argv[++i];
        } else if (strncmp(argv[i], "--model-in=", 11) == 0) {
            model_in = argv[i] + 11;
        } else if (strcmp(argv[i], "--handler") == 0 && i + 1 < argc) {
            handler_name = argv[++i];
        } else if (strncmp(argv[i], "--handler=", 10) == 0) {
            handler_name = argv[i] + 10;
        } else {
            fprintf(stderr,
                    "churnstream run: unknown argument \"%s\" (see churnstream run "
                    "--help)\n",
                    argv[i]);
            return 2;
        }
    }
    int count = strcmp(handler_name, "count") == 0;
    if (!count && strcmp(handler_name, "churn") != 0) {
        fprintf(stderr, "churnstream run: --handler: expected churn or count, got \"%s\"\n",
                handler_name);
        return 2;
    }
    char cerr[1024];
    if (model_in && cfg_check_model_in(cfg, model_in, cerr, sizeof cerr) != 0) {
        fprintf(stderr, "churnstream run: %s\n", cerr);
        return 2;
    }
    if (count && model_in)
        log_warn("run", "--model-in %s is not used by the event-count handler", model_in);

    char err[1024];
    ch_t *cnt = NULL;
    chn_t *churn = NULL;
    dm_handler_t handler;
    if (count) {
        log_info("run", "handler: event counts (diagnostic; no models, no alerts)");
        if ((cnt = ch_new(cfg, err, sizeof(err))))
            ch_handler(cnt, &handler);
    } else if ((churn = chn_new(cfg, model_in, err, sizeof(err)))) {
        chn_handler(churn, &handler);
    }
    if (!cnt && !churn) {
        log_error("run", "%s", err);
        return 1;
    }
    dm_install_signals();
    dm_t *dm = dm_new(cfg, &handler, err, sizeof(err));
    int rc = 1;
    if (!dm)
        log_error("run", "%s", err);
    else
        rc = dm_run(dm);
    dm_destroy(dm);
    ch_destroy(cnt);
    chn_destroy(churn);
    if (dm)
        dm_shutdown_done(rc);
    return rc;
}
