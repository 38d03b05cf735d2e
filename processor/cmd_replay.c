/* `churnstream replay`: backtest an event log through the engine (see replay.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
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
          "INPUT is an Avro container file of Event records (churnstream gen/import), or a\n"
          "CSV (.csv, .csv.gz, or any file with --preset/--map), mapped as in `import`.\n"
          "\n"
          "options:\n"
          "  --preset NAME        CSV mapping preset (online-retail)\n"
          "  --map SPEC           CSV column mapping (see churnstream import --help)\n"
          "  --delimiter C        CSV delimiter: one character, or ws (default ,)\n"
          "  --no-header          the CSV has no header line\n"
          "  --scores-out FILE    write user_id,tick_ms,score for every scored snapshot\n"
          "  --rejects-out FILE   write rejected events: reason,user_id,event_time_ms,detail\n"
          "  --snapshots-out FILE write labelled snapshots: user_id,tick_ms,y,score and the\n"
          "                       features, in label order (for analysis and baselines)\n"
          "  --model-in FILE      start from this model snapshot (warm start)\n"
          "  --model-out FILE     write the final model snapshot (for run --model-in)\n"
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

int cmd_replay(cfg_t *cfg, int argc, char **argv)
{
    enum { O_PRESET = 1, O_MAP, O_DELIM, O_NOHDR, O_SCORES, O_REJECTS, O_MIN, O_MOUT, O_SNAP, O_JSON,
           O_QUIET, O_HELP, O_STATE };
    static const struct option longopts[] = {
        {"preset", required_argument, 0, O_PRESET},  {"map", required_argument, 0, O_MAP},
        {"delimiter", required_argument, 0, O_DELIM}, {"no-header", no_argument, 0, O_NOHDR},
        {"scores-out", required_argument, 0, O_SCORES},
        {"rejects-out", required_argument, 0, O_REJECTS},
        {"snapshots-out", required_argument, 0, O_SNAP},
        {"model-in", required_argument, 0, O_MIN},    {"model-out", required_argument, 0, O_MOUT},
        {"json", no_argument, 0, O_JSON},              {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},              {"state", required_argument, 0, O_STATE},
        {0, 0, 0, 0}};
    rp_opts_t o = {.delimiter = NULL};
    int json = 0, quiet = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_PRESET: o.preset = optarg; break;
        case O_MAP: o.map = optarg; break;
        case O_DELIM: o.delimiter = optarg; break;
        case O_NOHDR: o.no_header = 1; break;
        case O_SCORES: o.scores_out = optarg; break;
        case O_REJECTS: o.rejects_out = optarg; break;
        case O_SNAP: o.snapshots_out = optarg; break;
        case O_MIN: o.model_in = optarg; break;
        case O_MOUT: o.model_out = optarg; break;
        case O_JSON: json = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_STATE:
            if (strcmp(optarg, "memory") != 0 && strcmp(optarg, "redis") != 0) {
                fprintf(stderr, "churnstream replay: --state: expected memory or redis, got "
                                "\"%s\"\n", optarg);
                return 2;
            }
            o.state_redis = strcmp(optarg, "redis") == 0;
            break;
        case 'h':
        case O_HELP: usage(stdout); return 0;
        default:
            fprintf(stderr, "churnstream replay: unknown or incomplete option \"%s\"\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "churnstream replay: expected exactly one INPUT, got %d\n",
                argc - optind);
        usage(stderr);
        return 2;
    }
    o.input = argv[optind];
    o.progress = !quiet && !json && isatty(STDERR_FILENO);
    rp_summary_t sum;
    char err[512];
    if (rp_run(cfg, &o, &sum, err, sizeof(err)) != 0) {
        fprintf(stderr, "churnstream replay: %s\n", err);
        return 1;
    }
    rp_print_summary(stdout, &sum, json);
    return 0;
}
