/* The churnstream binary: global --help/--version, then one subcommand. Loads the config
 * (defaults -> file -> environment -> flags) before dispatching, so every command sees the
 * same validated cfg_t; configuration and usage errors exit with status 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>

#include "alert.h"
#include "commands.h"
#include "config_load.h"
#include "config.h"
#include "feat.h"
#include "log.h"

extern char **environ;

typedef struct {
    const char *name;
    int (*fn)(cfg_t *cfg, int argc, char **argv);
    const char *summary; /* NULL: hidden from --help's list */
} command_t;

static const command_t commands[] = {
    {"run", cmd_run, "consume events from Kafka, keep state in Redis, score users, emit alerts"},
    {"replay", cmd_replay, "replay a file or a Kafka time range: backtest metrics, scores, model"},
    {"gen", cmd_gen, "generate synthetic events with planted churners, to a file or a topic"},
    {"import", cmd_import, "convert Online Retail or any mapped CSV to an Avro container file"},
    {"inspect", cmd_inspect, "show a user's features, score and segment, or the model's segments"},
    {"forget", cmd_forget, "delete a user's state everywhere (privacy requests)"},
    {"migrate", cmd_migrate, "copy a single-node Redis store into the Redis Cluster layout"},
    {"tail", cmd_tail, "print the alerts on topic.alerts as they arrive, one line each"},
    {"respond", cmd_respond,
     "simulated customers: treated planted churners return (closed-loop uplift tests)"},
    {"compose", cmd_compose, "write a retention message per alert with a language model"},
    /* Hidden from the list (a demo and test aid, not for production); documented in its own
     * --help and the README's demo section. */
    {"mock-kafka", cmd_mock_kafka, NULL},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const command_t *command_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_usage(FILE *out)
{
    fputs("usage: churnstream [--help|-h] [--version] <command> [options]\n"
          "       churnstream help <command>\n"
          "       churnstream help config [--markdown]\n"
          "       churnstream help config --values [-c FILE] [--key=VALUE ...]\n"
          "       churnstream help features [--markdown]\n"
          "       churnstream help actions     (alert.actions, buckets and the default table)\n",
          out);
}

static void print_help(FILE *out)
{
    print_usage(out);
    fputs("\nCommands:\n", out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].summary)
            fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs("\nOptions of every command:\n"
          "  -c FILE, --config=FILE  load a key = value file (default: $CHURNSTREAM_CONFIG);\n"
          "                          repeatable: later files override earlier ones key by key\n"
          "  --KEY=VALUE             set a config key below (also --KEY VALUE)\n"
          "  --kafka.PROP=VALUE      set a librdkafka property\n"
          "  --help, -h              describe the command\n"
          "  -                       as an output FILE: standard output\n"
          "\nExit status: 0 ok, 1 runtime failure, 2 usage or configuration error (also a\n"
          "configuration that can never work, checked at start for every command).\n\n",
          out);
    cfg_print_reference(out, 0);
}

static void print_version(FILE *out)
{
    fprintf(out, "churnstream %s (%s)\n", CS_VERSION, CS_GIT_REV);
    fprintf(out, "librdkafka %s\n", rd_kafka_version_str());
    fprintf(out, "hiredis %d.%d.%d\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    fprintf(out, "libmicrohttpd %s\n", MHD_get_version());
    const char *blas = openblas_get_config();
    fprintf(out, "%s\n", blas ? blas : "OpenBLAS (unknown)");
}

/* True when argv asks for help before any "--". Help must work even when the config file
 * or environment is broken, so it bypasses loading. */
static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

static int load_config(cfg_t *cfg, int argc, char **argv, int *rest_argc, char **rest_argv)
{
    char err[1024];
    if (cfg_load_all(cfg, argc, argv, environ, rest_argc, rest_argv, err, sizeof err) != 0) {
        fprintf(stderr, "churnstream: %s\n", err);
        return -1;
    }
    return 0;
}

/* churnstream help [config [--markdown|--values ...] | features [--markdown] | actions |
 * <command>] */
static int help_command(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(argv[1], "features") == 0) {
        if (argc > 3 || (argc == 3 && strcmp(argv[2], "--markdown") != 0)) {
            fprintf(stderr, "churnstream: help features: unknown option \"%s\"\n", argv[2]);
            return 2;
        }
        feat_print_reference(stdout, argc == 3);
        return 0;
    }
    if (strcmp(argv[1], "actions") == 0) {
        if (argc > 2) {
            fprintf(stderr, "churnstream: help actions: unexpected argument \"%s\"\n", argv[2]);
            return 2;
        }
        alert_print_actions_help(stdout);
        return 0;
    }
    if (strcmp(argv[1], "config") != 0) {
        const command_t *cmd = command_find(argv[1]);
        if (!cmd) {
            fprintf(stderr, "churnstream: help: unknown topic \"%s\" (see churnstream --help)\n",
                    argv[1]);
            return 2;
        }
        char *sub_argv[] = {argv[1], "--help", NULL};
        cfg_t *cfg = cfg_new();
        if (!cfg)
            return 1;
        int rc = cmd->fn(cfg, 2, sub_argv);
        cfg_destroy(cfg);
        return rc;
    }
    if (argc == 2 || (argc == 3 && strcmp(argv[2], "--markdown") == 0)) {
        cfg_print_reference(stdout, argc == 3);
        return 0;
    }
    if (strcmp(argv[2], "--values") != 0) {
        fprintf(stderr, "churnstream: help config: unknown option \"%s\"\n", argv[2]);
        return 2;
    }
    /* Effective values after file, environment and flags; secrets print as ***. */
    cfg_t *cfg = cfg_new();
    if (!cfg)
        return 1;
    int rest_argc = 0;
    char **rest_argv = calloc((size_t)argc, sizeof *rest_argv);
    int rc = 0;
    if (!rest_argv) {
        rc = 1;
    } else if (load_config(cfg, argc - 2, argv + 2, &rest_argc, rest_argv) != 0) {
        rc = 2;
    } else if (rest_argc > 1) {
        fprintf(stderr, "churnstream: help config: unknown option \"%s\"\n", rest_argv[1]);
        rc = 2;
    } else {
        cfg_print_values(stdout, cfg);
    }
    free(rest_argv);
    cfg_destroy(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        fputs("Run 'churnstream --help' for the commands and config keys.\n", stderr);
        return 2;
    }
    const char *first = argv[1];
    if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(first, "--version") == 0) {
        print_version(stdout);
        return 0;
    }
    if (strcmp(first, "help") == 0)
        return help_command(argc - 1, argv + 1);

    const command_t *cmd = command_find(first);
    if (!cmd) {
        if (first[0] == '-')
            fprintf(stderr,
                    "churnstream: unknown option \"%s\" before the command "
                    "(see churnstream --help)\n",
                    first);
        else
            fprintf(stderr, "churnstream: unknown command \"%s\" (see churnstream --help)\n",
                    first);
        return 2;
    }

    cfg_t *cfg = cfg_new();
    if (!cfg) {
        fputs("churnstream: out of memory\n", stderr);
        return 1;
    }
    int sub_argc = argc - 1;
    char **sub_argv = argv + 1;
    if (wants_help(sub_argc, sub_argv)) {
        int rc = cmd->fn(cfg, sub_argc, sub_argv);
        cfg_destroy(cfg);
        return rc;
    }

    /* rest_argv aliases argv's strings; it holds at most sub_argc of them. */
    char **rest_argv = calloc((size_t)sub_argc + 1, sizeof *rest_argv);
    int rest_argc = 0;
    if (!rest_argv) {
        fputs("churnstream: out of memory\n", stderr);
        cfg_destroy(cfg);
        return 1;
    }
    if (load_config(cfg, sub_argc, sub_argv, &rest_argc, rest_argv) != 0) {
        free(rest_argv);
        cfg_destroy(cfg);
        return 2;
    }
    log_set_level((log_level_t)cfg->log_level);
    log_set_json(cfg->log_json);
    /* One BLAS thread: threaded reductions may sum in a different order from run to run,
     * and models must be bit-identical for the same input (DESIGN.md section 5). */
    openblas_set_num_threads(1);

    int rc = cmd->fn(cfg, rest_argc, rest_argv);
    free(rest_argv);
    cfg_destroy(cfg);
    return rc;
}
