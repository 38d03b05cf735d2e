/* Cross-key configuration rules (config.h: cfg_check, cfg_adopt_model_k): checked once every
 * source is applied, for every command, so a configuration that can never work stops the
 * process at start with exit 2 instead of failing later (or retrying forever). Kept apart
 * from config.c, whose parser links against nothing but librdkafka (the fuzz target). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alert.h"
#include "codec.h"
#include "config.h"
#include "feat.h"
#include "model.h"

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
