/* `churnstream replay`: backtest an event log through the engine (see replay.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_args.h"
#include "commands.h"
#include "config_load.h"
#include "kafka_source.h"
#include "replay.h"

static void usage(FILE *out)
{
    fputs("usage: churnstream replay [options] INPUT\n"
          "\n"
          "Replays an event log through the same engine, features and models as `run`,\n"
          "with in-memory (or Redis) state: every eligible snapshot is scored once before\n"
          "its label is known (prequential), and the labelled ones are measured beside the\n"
          "recency baseline (days since last activity) on exactly the same snapshots.\n"
          "\n"
          "INPUT is an Avro container file of Event records (churnstream gen/import), JSON\n"
          "lines (.jsonl, .jsonl.gz, .ndjson, .json: one object per line with the Event\n"
          "fields; event_time in epoch ms or ISO-8601 UTC), or a CSV (.csv, .csv.gz, or any\n"
          "file with --preset/--map), mapped as in `import` (a header user_id,ts_ms or\n"
          "event_time,event_type[,amount] maps itself); or kafka:TOPIC, read between\n"
          "--from and --to (message timestamps; no consumer group is joined, nothing is\n"
          "committed; kafka.* keys configure the client).\n"
          "\n"
          "options:\n"
          "  --preset NAME        CSV mapping preset (online-retail: UCI Online Retail and\n"
          "                       Online Retail II; see churnstream import --help)\n"
          "  --map SPEC           CSV column mapping (see churnstream import --help)\n"
          "  --delimiter C        CSV delimiter: one character, or ws (default ,)\n"
          "  --no-header          the CSV has no header line\n"
          "  --scores-out FILE    write user_id,tick_ms,score for every scored snapshot\n"
          "  --rejects-out FILE   write rejected events: reason,user_id,event_time_ms,detail\n"
          "  --alerts-out FILE    write the alerts the policy fired, one JSON object per line\n"
          "                       (the ChurnAlert fields of schemas/alert.avsc)\n"
          "  --snapshots-out FILE write labelled snapshots: user_id,tick_ms,y,score and the\n"
          "                       features as scored (events before the tick only), in\n"
          "                       label order (for analysis and baselines)\n"
          "  --model-in FILE      start from this model snapshot (warm start)\n"
          "  --model-out FILE     write the final model snapshot (for run --model-in)\n"
          "  --report FILE        write a self-contained HTML report (ROC, calibration, AUC\n"
          "                       and log-loss per tick, segments, weights; no network)\n"
          "                       Outputs: - is stdout; a regular file is replaced\n"
          "                       atomically, a device, FIFO or symlink written through\n"
          "  --from TIME          kafka: first message time (2011-06-01, ISO-8601 UTC, or\n"
          "                       epoch ms; default: the beginning)\n"
          "  --to TIME            kafka: end time, exclusive (default: the current end)\n"
          "  --state memory|redis where user state lives (default memory); redis runs the\n"
          "                       live path (prefetch, engine, one MULTI/EXEC per batch)\n"
          "                       under state.prefix, which must hold no state yet:\n"
          "                       use a scratch prefix, e.g. --state.prefix=bt:\n"
          "  --json               print the summary as one JSON object\n"
          "  --quiet              no progress on stderr\n"
          "  --help               this text\n"
          "\n"
          "Config keys that matter here (as --key=value): tick.interval, label.horizon,\n"
          "label.lookback, events.allowed_lateness, events.max_past, events.max_future,\n"
          "batch.max_messages, model.*. Example (the shared Online Retail data):\n"
          "  churnstream replay --preset online-retail --tick.interval=7d \\\n"
          "      online_retail.csv.gz --scores-out s.csv\n",
          out);
}

/* Parses argv into *o (input included), *json and *quiet: 0 to run, 1 after --help, -1 on a
 * usage error (message printed). */
enum {
    O_PRESET = 1,
    O_MAP,
    O_DELIM,
    O_NOHDR,
    O_SCORES,
    O_REJECTS,
    O_MIN,
    O_MOUT,
    O_SNAP,
    O_REPORT,
    O_ALERTS,
    O_FROM,
    O_TO,
    O_JSON,
    O_QUIET,
    O_HELP,
    O_STATE
};

/* Applies option c with argument a: 0, 1 after --help, -1 on a bad value (message printed),
 * -2 for an unknown option. */
static int apply_option(rp_opts_t *o, int *json, int *quiet, int c, const char *a)
{
    switch (c) {
    case O_PRESET:
        o->preset = a;
        break;
    case O_MAP:
        o->map = a;
        break;
    case O_DELIM:
        o->delimiter = a;
        break;
    case O_NOHDR:
        o->no_header = 1;
        break;
    case O_SCORES:
        o->scores_out = a;
        break;
    case O_REJECTS:
        o->rejects_out = a;
        break;
    case O_SNAP:
        o->snapshots_out = a;
        break;
    case O_ALERTS:
        o->alerts_out = a;
        break;
    case O_FROM:
    case O_TO:
        if (ks_parse_time(a, c == O_FROM ? &o->from_ms : &o->to_ms) != 0) {
            fprintf(stderr,
                    "churnstream replay: --%s: expected 2011-06-01, "
                    "2011-06-01T12:00:00Z or epoch ms, got \"%s\"\n",
                    c == O_FROM ? "from" : "to", a);
            return -1;
        }
        break;
    case O_REPORT:
        o->report = a;
        break;
    case O_MIN:
        o->model_in = a;
        break;
    case O_MOUT:
        o->model_out = a;
        break;
    case O_JSON:
        *json = 1;
        break;
    case O_QUIET:
        *quiet = 1;
        break;
    case O_STATE:
        if (strcmp(a, "memory") != 0 && strcmp(a, "redis") != 0) {
            fprintf(stderr,
                    "churnstream replay: --state: expected memory or redis, got "
                    "\"%s\"\n",
                    a);
            return -1;
        }
        o->state_redis = strcmp(a, "redis") == 0;
        break;
    case 'h':
    case O_HELP:
        usage(stdout);
        return 1;
    default:
        return -2;
    }
    return 0;
}

static int parse_args(int argc, char **argv, rp_opts_t *o, int *json, int *quiet)
{
    static const struct option longopts[] = {{"preset", required_argument, 0, O_PRESET},
                                             {"map", required_argument, 0, O_MAP},
                                             {"delimiter", required_argument, 0, O_DELIM},
                                             {"no-header", no_argument, 0, O_NOHDR},
                                             {"scores-out", required_argument, 0, O_SCORES},
                                             {"rejects-out", required_argument, 0, O_REJECTS},
                                             {"snapshots-out", required_argument, 0, O_SNAP},
                                             {"alerts-out", required_argument, 0, O_ALERTS},
                                             {"from", required_argument, 0, O_FROM},
                                             {"to", required_argument, 0, O_TO},
                                             {"report", required_argument, 0, O_REPORT},
                                             {"model-in", required_argument, 0, O_MIN},
                                             {"model-out", required_argument, 0, O_MOUT},
                                             {"json", no_argument, 0, O_JSON},
                                             {"quiet", no_argument, 0, O_QUIET},
                                             {"help", no_argument, 0, O_HELP},
                                             {"state", required_argument, 0, O_STATE},
                                             {0, 0, 0, 0}};
    *o = (rp_opts_t){.from_ms = INT64_MIN, .to_ms = INT64_MAX};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int rc = apply_option(o, json, quiet, c, optarg);
        if (rc == -2) {
            cli_bad_option("replay", argv[optind - 1], usage);
            return -1;
        }
        if (rc != 0)
            return rc;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "churnstream replay: expected exactly one INPUT, got %d\n", argc - optind);
        usage(stderr);
        return -1;
    }
    o->input = argv[optind];
    return 0;
}

int cmd_replay(cfg_t *cfg, int argc, char **argv)
{
    rp_opts_t o;
    int json = 0, quiet = 0;
    int prc = parse_args(argc, argv, &o, &json, &quiet);
    if (prc != 0)
        return prc > 0 ? 0 : 2;
    if ((o.from_ms != INT64_MIN || o.to_ms != INT64_MAX) && strncmp(o.input, "kafka:", 6) != 0) {
        fprintf(stderr, "churnstream replay: --from/--to apply to kafka:TOPIC inputs only\n");
        return 2;
    }
    char cerr[1024];
    if (rp_check_opts(&o, cerr, sizeof cerr) != 0) {
        fprintf(stderr, "churnstream replay: %s\n", cerr);
        return 2;
    }
    if (o.model_in && cfg_check_model_in(cfg, o.model_in, cerr, sizeof cerr) != 0) {
        fprintf(stderr, "churnstream replay: %s\n", cerr);
        return 2;
    }
    o.progress = !quiet && !json && isatty(STDERR_FILENO);
    rp_summary_t sum;
    char err[512];
    if (rp_run(cfg, &o, &sum, err, sizeof(err)) != 0) {
        fprintf(stderr, "churnstream replay: %s\n", err);
        return 1;
    }
    rp_print_summary(stdout, &sum, json);
    rp_summary_free(&sum);
    return 0;
}
