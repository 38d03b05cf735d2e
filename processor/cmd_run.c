/* `churnstream run`: the daemon (processor/daemon.h) with its batch handler. Until
 * processor/pipeline lands, the handler is the event-count handler (count_handler.h), and
 * the daemon says so at startup rather than pretending to score anyone. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "count_handler.h"
#include "daemon.h"
#include "log.h"

static void run_usage(FILE *out)
{
    fputs("usage: churnstream run [--model-in FILE] [config options]\n"
          "\n"
          "Consumes topic.events as consumer group kafka.group.id, processes micro-batches\n"
          "(batch.max_messages / batch.max_wait) and commits each batch's state and partition\n"
          "offsets to Redis in one transaction; on (re)assignment it resumes from the offsets\n"
          "stored in Redis, so a crash neither loses nor double-counts an event. Rejected\n"
          "messages go to topic.dlq with an `error` header and source.topic/partition/offset.\n"
          "Metrics: /metrics and /healthz on metrics.bind:metrics.port (0 = off).\n"
          "\n"
          "This build processes with the event-count handler: per-user event counts in\n"
          "<state.prefix>count:users and offsets in <state.prefix>count:offsets. The churn\n"
          "pipeline (features, models, alerts) is wired in by processor/pipeline.\n"
          "\n"
          "  --model-in FILE   warm-start model snapshot (from replay --model-out); checked for\n"
          "                    readability, not used by the event-count handler\n"
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
    const char *model_in = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            run_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--model-in") == 0 && i + 1 < argc) {
            model_in = argv[++i];
        } else if (strncmp(argv[i], "--model-in=", 11) == 0) {
            model_in = argv[i] + 11;
        } else {
            fprintf(stderr,
                    "churnstream run: unknown argument \"%s\" (see churnstream run "
                    "--help)\n",
                    argv[i]);
            return 2;
        }
    }
    if (model_in && access(model_in, R_OK) != 0) {
        fprintf(stderr, "churnstream run: --model-in %s: cannot read the file\n", model_in);
        return 2;
    }
    log_warn("run", "run: processing with the event-count handler; the churn pipeline is wired "
                    "in by processor/pipeline");
    if (model_in)
        log_warn("run", "--model-in %s is not used by the event-count handler", model_in);

    char err[1024];
    ch_t *ch = ch_new(cfg, err, sizeof(err));
    if (!ch) {
        log_error("run", "%s", err);
        return 1;
    }
    dm_handler_t handler;
    ch_handler(ch, &handler);
    dm_install_signals();
    dm_t *dm = dm_new(cfg, &handler, err, sizeof(err));
    if (!dm) {
        log_error("run", "%s", err);
        ch_destroy(ch);
        return 1;
    }
    int rc = dm_run(dm);
    dm_destroy(dm);
    ch_destroy(ch);
    return rc;
}
