/* The full configuration load of a command (cfg_load_all: files -> environment -> flags) and
 * the cross-key rules checked once every source is applied (cfg_check, cfg_check_model_in),
 * so a configuration that can never work stops every command at start with exit 2 instead
 * of failing later (or retrying forever). Kept apart from config.c, whose parsers link
 * against nothing but librdkafka (tests/fuzz/fuzz_config.c). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alert.h"
#include "codec.h"
#include "config_load.h"
#include "config.h"
#include "feat.h"
#include "model.h"

#define ENV_PREFIX   "CHURNSTREAM_"
#define NAME_MAX_LEN 128 /* longer keys cannot match anything (as in config.c) */

/* Writes "<where>: <key>: <reason>" (parts that are NULL are left out); returns -1. */
__attribute__((format(printf, 5, 6))) static int load_fail(char *errstr, size_t errstr_size,
                                                           const char *where, const char *key,
                                                           const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(errstr, errstr_size, "%s%s%s%s%s", where ? where : "", where ? ": " : "",
             key ? key : "", key ? ": " : "", msg);
    return -1;
}

/* "<where of key>: <key>: " prefix into buf; "--key" style when the key holds its default
 * (the rule still names the key). */
static void where_of(const cfg_t *cfg, const char *key, char *buf, size_t size)
{
    const char *w = cfg_where(cfg, key);
    snprintf(buf, size, "%s%s", w ? w : "", w ? ": " : "");
}

static void fmt_ms(int64_t ms, char *buf, size_t size)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, size, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
            return;
        }
    }
    snprintf(buf, size, "%" PRId64 "ms", ms);
}

/* The rules that depend on model.k (also re-run by cfg_adopt_model_k). */
static int check_k_rules(const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    char err[512], w[300];
    if (alert_actions_check(cfg->alert_actions, cfg->model_k, err, sizeof err) != 0) {
        where_of(cfg, "alert.actions", w, sizeof w);
        snprintf(errstr, errstr_size, "%s%s", w, err);
        return -1;
    }
    return 0;
}

int cfg_check(const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    char w[300], a[32], b[32];
    /* DESIGN.md section 4: with lateness below the tick interval at most one tick per user
     * waits for a late event; at or above it the engine's three-number bookkeeping breaks. */
    if (cfg->events_allowed_lateness_ms >= cfg->tick_interval_ms ||
        cfg->events_allowed_lateness_ms >= cfg->label_horizon_ms) {
        int tick = cfg->events_allowed_lateness_ms >= cfg->tick_interval_ms;
        where_of(cfg, "events.allowed_lateness", w, sizeof w);
        fmt_ms(cfg->events_allowed_lateness_ms, a, sizeof a);
        fmt_ms(tick ? cfg->tick_interval_ms : cfg->label_horizon_ms, b, sizeof b);
        snprintf(errstr, errstr_size, "%sevents.allowed_lateness: %s must be below %s (%s)", w, a,
                 tick ? "tick.interval" : "label.horizon", b);
        return -1;
    }
    if (check_k_rules(cfg, errstr, errstr_size) != 0)
        return -1;
    double medium, high;
    char berr[200];
    if (alert_buckets_parse(cfg->alert_buckets, &medium, &high, berr, sizeof berr) != 0) {
        where_of(cfg, "alert.buckets", w, sizeof w);
        snprintf(errstr, errstr_size, "%salert.buckets: %s", w, berr);
        return -1;
    }
    if (cfg->schemas_dir && *cfg->schemas_dir) {
        char err[512];
        ev_decoder_t *dec = ev_decoder_new(cfg->schemas_dir, err, sizeof err);
        if (!dec) {
            where_of(cfg, "schemas.dir", w, sizeof w);
            snprintf(errstr, errstr_size, "%sschemas.dir: %s", w, err);
            return -1;
        }
        ev_decoder_destroy(dec);
    }
    return 0;
}

static int adopt_model_k(cfg_t *cfg, int k, const char *path, char *errstr, size_t errstr_size)
{
    const char *w = cfg_where(cfg, "model.k");
    if (w && cfg->model_k != k) {
        snprintf(errstr, errstr_size,
                 "%s: model.k: %d conflicts with --model-in %s, which has k = %d (drop model.k or "
                 "set it to %d)",
                 w, cfg->model_k, path, k, k);
        return -1;
    }
    cfg->model_k = k;
    if (check_k_rules(cfg, errstr, errstr_size) != 0)
        return -1;
    return 0;
}

int cfg_check_model_in(cfg_t *cfg, const char *path, char *errstr, size_t errstr_size)
{
    char err[512];
    /* The whole file is decoded and its checksum verified: a truncated or foreign file is
     * a configuration error at start, never a daemon that retries it forever. */
    model_t *m = model_load_file(path, err, sizeof err);
    if (!m) {
        snprintf(errstr, errstr_size, "%s", err); /* names the path already */
        return -1;
    }
    int dim = model_dim(m), k = model_k(m);
    model_destroy(m);
    if (dim != FEAT_DIM) {
        snprintf(errstr, errstr_size, "--model-in %s: the model has %d features, this build has %d",
                 path, dim, FEAT_DIM);
        return -1;
    }
    return adopt_model_k(cfg, k, path, errstr, errstr_size);
}

static const char *env_lookup(char **envp, const char *name)
{
    size_t ln = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, ln) == 0 && (*e)[ln] == '=')
            return *e + ln + 1;
    return NULL;
}

/* A `--name[=value]` argument is a config key when its name holds a dot: command flags use
 * dashes (--model-out), so a mistyped key fails here instead of reaching the command. */
static int is_config_flag(const char *arg)
{
    if (arg[0] != '-' || arg[1] != '-' || arg[2] == '\0')
        return 0;
    const char *eq = strchr(arg, '=');
    const char *dot = strchr(arg, '.');
    return dot && (!eq || dot < eq);
}

int cfg_load_all(cfg_t *cfg, int argc, char **argv, char **envp, int *rest_argc, char **rest_argv,
                 char *errstr, size_t errstr_size)
{
    /* Every -c is loaded, in order: a later file overrides an earlier one key by key (a
     * base file plus a site or secrets file), never silently ignores it. */
    int nfiles = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *path = NULL;
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return load_fail(errstr, errstr_size, a, NULL, "expected a file path");
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        } else {
            continue;
        }
        if (*path == '\0')
            return load_fail(errstr, errstr_size, "config", NULL, "expected a file path, got \"\"");
        if (cfg_load_file(cfg, path, errstr, errstr_size) != 0)
            return -1;
        nfiles++;
    }
    const char *env_path = nfiles ? NULL : env_lookup(envp, ENV_PREFIX "CONFIG");
    if (env_path && *env_path == '\0')
        return load_fail(errstr, errstr_size, "config", NULL, "expected a file path, got \"\"");
    if (env_path && cfg_load_file(cfg, env_path, errstr, errstr_size) != 0)
        return -1;
    if (cfg_load_env(cfg, envp, errstr, errstr_size) != 0)
        return -1;

    int n = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                rest_argv[n++] = argv[i++];
            break;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        if (!is_config_flag(a)) {
            rest_argv[n++] = a;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t key_len = eq ? (size_t)(eq - name) : strlen(name);
        char key[NAME_MAX_LEN + 1], where[NAME_MAX_LEN + 3];
        if (key_len > NAME_MAX_LEN)
            return load_fail(errstr, errstr_size, NULL, NULL, "--%.40s...: unknown key", name);
        memcpy(key, name, key_len);
        key[key_len] = '\0';
        snprintf(where, sizeof where, "--%s", key);
        const char *value;
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return load_fail(errstr, errstr_size, where, key,
                                 "expected a value (--%s=VALUE or --%s VALUE)", key, key);
            value = argv[++i];
        }
        if (cfg_set(cfg, key, value, where, errstr, errstr_size) != 0)
            return -1;
    }
    *rest_argc = n;
    return cfg_check(cfg, errstr, errstr_size);
}
