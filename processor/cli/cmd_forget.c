/* `churnstream forget ID`: deletes a user's state everywhere in Redis (the record, the
 * latest-score hash, every seen index entry, pending alerts) for privacy requests, and says what it
 * removed. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli_args.h"
#include "commands.h"
#include "store_redis.h"

static void usage(FILE *out)
{
    fputs("usage: churnstream forget [options] ID\n"
          "\n"
          "Deletes user ID's state everywhere (privacy requests): the record\n"
          "<state.prefix>u:<ID>, the latest score <state.prefix>score:<ID>, its entry in\n"
          "every <state.prefix>seen:<partition> index and its pending alerts in\n"
          "<state.prefix>outbox, in one transaction, and prints what was removed. Exit status 0 "
          "also when nothing was stored (it says so).\n"
          "A running daemon that holds the user in its current batch writes it back: forget\n"
          "users whose events have stopped, or run forget again. A running daemon checks\n"
          "the outbox before it hands an alert to Kafka (at most 100 at a time), so removed\n"
          "alerts are never sent; those it had already handed over are counted apart.\n"
          "\n"
          "options:\n"
          "  --help   this text\n"
          "\n"
          "Config keys that matter here: redis.*, state.prefix.\n",
          out);
}

int cmd_forget(cfg_t *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        return cli_help_or_bad_option("forget", c, argv[optind - 1], usage);
    }
    if (optind != argc - 1 || argv[optind][0] == '\0') {
        fprintf(stderr, "churnstream forget: expected exactly one user ID\n");
        usage(stderr);
        return 2;
    }
    const char *uid = argv[optind];
    char err[512];
    st_redis_t *st = st_redis_new(cfg, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "churnstream forget: %s\n", err);
        return 1;
    }
    st_forget_t res;
    int rc = st_redis_forget(st, uid, &res, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "churnstream forget: %s\n", err);
        st_redis_destroy(st);
        return 1;
    }
    if (rc == 0)
        printf("user \"%s\": nothing stored under prefix %s on redis %s: nothing to forget\n", uid,
               cfg->state_prefix, st_redis_address(st));
    else
        printf("user \"%s\" forgotten: record %s, latest score %s, %zu seen index entr%s, "
               "%zu pending alert%s removed (never sent)\n",
               uid, res.record ? "deleted" : "absent", res.score ? "deleted" : "absent",
               res.seen_entries, res.seen_entries == 1 ? "y" : "ies", res.outbox_alerts,
               res.outbox_alerts == 1 ? "" : "s");
    if (rc > 0 && res.outbox_in_flight)
        printf("note: %zu alert%s of \"%s\" had already been handed to Kafka by a running "
               "daemon: they cannot be recalled and may still reach %s\n",
               res.outbox_in_flight, res.outbox_in_flight == 1 ? "" : "s", uid, cfg->topic_alerts);
    st_redis_destroy(st);
    return 0;
}
