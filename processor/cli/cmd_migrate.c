/* `churnstream migrate --from HOST:PORT`: one-time copy of a single-node store (same
 * state.prefix) into the Redis Cluster the config names (redis.cluster=true), in the
 * cluster layout (state/redis_migrate.h). Prints what it copied and what it could not. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "commands.h"
#include "redis_migrate.h"
#include "store_redis.h"

static void usage(FILE *out)
{
    fputs("usage: churnstream migrate --from HOST:PORT [--from-db N] [options]\n"
          "\n"
          "Copies the single-node store at HOST:PORT (database N, default 0; same\n"
          "state.prefix, redis.user and redis.password) into the Redis Cluster of the\n"
          "config (redis.cluster=true, redis.host/redis.port a seed node), in the cluster\n"
          "layout: for every partition with a stored offset, its users (found through its\n"
          "last-seen index), offset, progress and pending alerts, one transaction per 1,000\n"
          "users in the partition's slot, the offset in the last one; then the model.\n"
          "Stop every daemon first (source and destination must be quiet); running it again\n"
          "rewrites the same values. Not copied, and counted: records without any activity\n"
          "(users whose only events were refunds or cancellations have no last-seen entry,\n"
          "so no known partition) and pending alerts of users without a copied record.\n"
          "Records get a fresh state.ttl. The source is only read.\n"
          "\n"
          "options:\n"
          "  --from HOST:PORT   the single-node Redis to copy from\n"
          "  --from-db N        its database (SELECT), default 0\n"
          "  --help             this text\n"
          "\n"
          "Config keys that matter here: redis.* (the destination), state.prefix, state.ttl.\n",
          out);
}

/* The source's config: the destination's with host, port, db and cluster mode replaced. */
static cfg_t *source_cfg(const cfg_t *cfg, const char *from, const char *db, char *err,
                         size_t errsz)
{
    char host[256], port[16];
    const char *colon = strrchr(from, ':');
    if (!colon || colon == from || (size_t)(colon - from) >= sizeof(host) || !colon[1] ||
        strlen(colon + 1) >= sizeof(port)) {
        snprintf(err, errsz, "--from: expected HOST:PORT, got \"%s\"", from);
        return NULL;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - from), from);
    snprintf(port, sizeof(port), "%s", colon + 1);
    cfg_t *s = cfg_new();
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    char tmo[32];
    if (cfg_set(s, "redis.host", host, "--from", err, errsz) != 0 ||
        cfg_set(s, "redis.port", port, "--from", err, errsz) != 0 ||
        cfg_set(s, "redis.db", db, "--from-db", err, errsz) != 0 ||
        cfg_set(s, "state.prefix", cfg->state_prefix, "config", err, errsz) != 0 ||
        (cfg->redis_user && cfg_set(s, "redis.user", cfg->redis_user, "config", err, errsz) != 0) ||
        (cfg->redis_password &&
         cfg_set(s, "redis.password", cfg->redis_password, "config", err, errsz) != 0) ||
        (snprintf(tmo, sizeof(tmo), "%lldms", (long long)cfg->redis_command_timeout_ms),
         cfg_set(s, "redis.command_timeout", tmo, "config", err, errsz) != 0)) {
        cfg_destroy(s);
        return NULL;
    }
    return s;
}

int cmd_migrate(cfg_t *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {{"from", required_argument, 0, 'f'},
                                             {"from-db", required_argument, 0, 'd'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *from = NULL, *db = "0";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'f')
            from = optarg;
        else if (c == 'd')
            db = optarg;
        else
            return cli_help_or_bad_option("migrate", c, argv[optind - 1], usage);
    }
    if (!from || optind != argc) {
        fprintf(stderr, "churnstream migrate: %s\n",
                !from ? "--from HOST:PORT is required" : "unexpected arguments");
        usage(stderr);
        return 2;
    }
    if (!cfg->redis_cluster) {
        fprintf(stderr, "churnstream migrate: the destination must be a Redis Cluster: set "
                        "redis.cluster=true (and redis.host/redis.port to a seed node)\n");
        return 2;
    }
    char err[512];
    cfg_t *scfg = source_cfg(cfg, from, db, err, sizeof(err));
    if (!scfg) {
        fprintf(stderr, "churnstream migrate: %s\n", err);
        return 2;
    }
    st_redis_t *src = st_redis_new(scfg, err, sizeof(err)), *dst = NULL;
    if (!src || !(dst = st_redis_new(cfg, err, sizeof(err)))) {
        fprintf(stderr, "churnstream migrate: %s\n", err);
        st_redis_destroy(src);
        cfg_destroy(scfg);
        return 1;
    }
    st_migrate_stats_t s;
    int rc = st_redis_migrate(src, dst, &s, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "churnstream migrate: %s (what was copied stays; run it again)\n", err);
    else
        printf("migrated %s%s* from %s to the cluster at %s: %zu partitions, %zu users, %zu "
               "pending alerts, model %s\n",
               cfg->state_prefix, "", from, st_redis_address(dst), s.partitions, s.users, s.alerts,
               s.model ? "copied" : "absent");
    if (rc == 0 && (s.records_in_source > s.users || s.alerts_unplaced))
        printf("not copied: %zu records without a last-seen entry (no activity, so no known "
               "partition), %zu pending alerts of users without a copied record\n",
               s.records_in_source > s.users ? s.records_in_source - s.users : 0,
               s.alerts_unplaced);
    st_redis_destroy(src);
    st_redis_destroy(dst);
    cfg_destroy(scfg);
    return rc == 0 ? 0 : 1;
}
