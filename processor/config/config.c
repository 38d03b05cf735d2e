/* Configuration: one static table of keys drives defaults, parsing, validation, `--help`
 * and the README reference. Sources apply in order defaults -> file -> environment -> flags;
 * kafka.* properties are validated by librdkafka itself and kept verbatim. This file owns
 * the table, key lookup and suggestions, and a configuration's lifecycle; the other parts
 * are listed in config_internal.h. */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MS_S   1000.0
#define MS_MIN (60.0 * MS_S)
#define MS_H   (60.0 * MS_MIN)
#define MS_D   (24.0 * MS_H)

/* clang-format off */
#define OFF(field) offsetof(cfg_t, field)
#define K_STR(n, d, fl, f, h)         {n, CFG_T_STRING, d, 0, 0, NULL, fl, OFF(f), h}
#define K_INT(n, d, lo, hi, f, h)     {n, CFG_T_INT, d, lo, hi, NULL, 0, OFF(f), h}
#define K_INT64(n, d, lo, hi, f, h)   {n, CFG_T_INT64, d, lo, hi, NULL, 0, OFF(f), h}
#define K_UINT64(n, d, f, h)          {n, CFG_T_UINT64, d, 0, 0, NULL, 0, OFF(f), h}
#define K_DOUBLE(n, d, lo, hi, f, h)  {n, CFG_T_DOUBLE, d, lo, hi, NULL, 0, OFF(f), h}
#define K_BOOL(n, d, f, h)            {n, CFG_T_BOOL, d, 0, 1, NULL, 0, OFF(f), h}
#define K_DUR(n, d, lo, hi, f, h)     {n, CFG_T_DURATION, d, lo, hi, NULL, 0, OFF(f), h}
#define K_ENUM(n, d, ch, f, h)        {n, CFG_T_ENUM, d, 0, 0, ch, 0, OFF(f), h}
/* clang-format on */

/* Enum choice order must match the C enums they are stored as (log_level_t, cfg_framing_t,
 * cfg_llm_facts_t). */
const cfg_key_t cfg_keys[] = {
    K_ENUM("log.level", "info", "debug|info|warn|error", log_level,
           "Lowest level of log lines written to stderr."),
    K_ENUM("log.format", "logfmt", "logfmt|json", log_json, "Log line format."),

    K_STR("topic.events", "events", CFG_F_NONEMPTY, topic_events,
          "Topic the events are consumed from."),
    K_STR("topic.dlq", "events.dlq", CFG_F_NONEMPTY, topic_dlq,
          "Dead-letter topic for undecodable or out-of-window events (with an error header)."),
    K_STR("topic.alerts", "churn-alerts", CFG_F_NONEMPTY, topic_alerts,
          "Topic churn alerts are produced to."),
    K_BOOL("alerts.enabled", "true", alerts_enabled,
           "Produce alerts to topic.alerts; false scores and logs them only (dry run)."),
    K_ENUM("alerts.framing", "confluent", "confluent|single-object|plain", alerts_framing,
           "Wire framing of produced alerts."),
    K_INT("alerts.schema_id", "3", 0, 2147483647.0, alerts_schema_id,
          "Schema id written in the Confluent framing of alerts; 3 = alert.avsc version 2 "
          "(kind, trigger, created_at), 2 was version 1."),
    K_STR("schemas.dir", "", 0, schemas_dir,
          "Directory of writer schemas (<id>.avsc); empty = built-in schemas only."),

    K_STR("redis.host", "127.0.0.1", CFG_F_NONEMPTY, redis_host, "Redis host name or address."),
    K_INT("redis.port", "6379", 1, 65535, redis_port, "Redis TCP port."),
    K_STR("redis.user", "", CFG_F_EMPTY_NULL, redis_user,
          "Redis ACL user; empty = the default user."),
    K_STR("redis.password", "", CFG_F_EMPTY_NULL | CFG_F_SECRET, redis_password,
          "Redis password (AUTH); empty = no AUTH. Never printed."),
    K_INT("redis.db", "0", 0, 1023, redis_db, "Redis database number (SELECT)."),
    K_DUR("redis.connect_timeout", "2s", 1, MS_H, redis_connect_timeout_ms,
          "Timeout of one connection attempt to Redis."),
    K_DUR("redis.command_timeout", "5s", 1, MS_H, redis_command_timeout_ms,
          "Timeout of one Redis command or transaction."),
    K_BOOL("redis.cluster", "false", redis_cluster,
           "Redis Cluster mode: redis.host/port is a seed node, keys carry a hash tag per Kafka "
           "partition ({p<N>}), a batch commits one transaction per partition (README, Scaling "
           "out). redis.db must be 0."),

    K_STR("state.prefix", "cs:", 0, state_prefix, "Prefix of every Redis key written."),
    K_DUR("state.ttl", "400d", 0, 3650 * MS_D, state_ttl_ms,
          "A user's state expires after this long without events; 0 = never."),
    K_BOOL("state.scores", "true", state_scores,
           "run: keep each user's latest score in the hash <state.prefix>score:<id> (about 270 "
           "bytes per user; read by GET /v1/users/{id} and inspect); false = none written."),

    K_INT("batch.max_messages", "1000", 1, 1000000, batch_max_messages,
          "Most messages processed (and committed) as one batch."),
    K_DUR("batch.max_wait", "100ms", 0, MS_H, batch_max_wait_ms,
          "Longest wait for a batch to fill before it is processed."),
    K_INT("batch.catchup_factor", "16", 1, 1000, batch_catchup_factor,
          "run: while 2 or more full batches wait on the broker, each batch may hold "
          "twice as many messages as the last, up to this many times batch.max_messages; "
          "batch.max_messages again once caught up. Bigger batches spread the per-batch "
          "commit (the model is in every transaction) over more events. 1 = fixed batches."),
    K_BOOL("batch.overlap_commit", "true", batch_overlap_commit,
           "run: collect the next batch's messages while Redis executes a batch's transaction "
           "(its alerts, DLQ messages and Kafka offsets still leave only once it is "
           "committed); false = wait for Redis's answer before polling again."),

    K_DUR("tick.interval", "1d", MS_S, 365 * MS_D, tick_interval_ms,
          "Ticks fall at every multiple of this since the Unix epoch (UTC)."),
    K_DUR("tick.idle_advance", "5m", MS_S, 365 * MS_D, tick_idle_advance_ms,
          "Live mode: an idle partition's watermark follows the wall clock after this long."),
    K_DUR("tick.sweep_slice", "30d", 0, 3650 * MS_D, tick_sweep_slice_ms,
          "Live mode: a tick's sweep visits users by slices of last-activity time this wide "
          "(0 = all at once)."),
    K_INT("tick.sweep_max_users", "100000", 0, 100000000, tick_sweep_max_users,
          "Live mode: users a batch's sweeps visit at most, each slice counting 50 more "
          "(0 = no limit; a slice is never cut), so events never wait behind a sweep of "
          "millions of users."),
    K_DUR("label.horizon", "90d", MS_S, 3650 * MS_D, label_horizon_ms,
          "Churn horizon H: a user with no activity in [T, T+H) churned at tick T."),
    K_DUR("label.lookback", "90d", MS_S, 3650 * MS_D, label_lookback_ms,
          "Lookback L: a user is eligible at tick T after activity in [T-L, T)."),
    K_DUR("events.allowed_lateness", "1h", 0, 365 * MS_D, events_allowed_lateness_ms,
          "Watermark = max event time - this; must be below tick.interval and label.horizon."),
    K_DUR("events.max_past", "30d", 0, 3650 * MS_D, events_max_past_ms,
          "Events older than watermark - this go to the DLQ."),
    K_DUR("events.max_future", "1d", 0, 3650 * MS_D, events_max_future_ms,
          "Events newer than max(watermark, wall clock) + this go to the DLQ: a far-future "
          "timestamp must not jump the watermark, while a replayed log may have quiet "
          "spells of weeks."),

    K_INT("model.k", "8", 1, 64, model_k, "Number of k-means segments."),
    K_UINT64("model.seed", "42", model_seed, "Seed of every random choice (k-means++ seeding)."),
    K_INT64("model.min_examples", "500", 0, 1e12, model_min_examples,
            "Labelled snapshots the model must have seen before alerts fire."),
    K_DOUBLE("model.learning_rate", "0.05", 1e-6, 10, model_learning_rate,
             "Base learning rate of the logistic regression (AdaGrad)."),
    K_DOUBLE("model.l2", "1e-4", 0, 10, model_l2, "L2 penalty of the logistic regression."),
    K_DOUBLE("model.kmeans_half_life", "100000", 0, 1e12, model_kmeans_half_life,
             "k-means forgetting half-life, in events; 0 = no forgetting."),
    K_DOUBLE("model.scaler_half_life", "0", 0, 1e12, model_scaler_half_life,
             "Standardizer decay half-life, in events; 0 = no decay."),
    K_ENUM("model.class_weight", "balanced", "none|balanced", model_class_weight,
           "Class weighting of the logistic regression loss (its output is recalibrated)."),
    K_ENUM("model.experts", "hedge", "hedge|equal|bgnbd|logreg|recency", model_experts,
           "How the experts make the score: hedge = online weights from each expert's "
           "log-loss on complete ticks; equal = fixed equal weights; or one expert alone "
           "(diagnostics, ablations)."),
    K_ENUM("model.bgnbd_population", "all", "all|recent", model_bgnbd_population,
           "Users BG/NBD is refitted on at each tick: all = every user with an activity (the "
           "cohort the model's likelihood is written for); recent = only those active in the "
           "last label.horizon + label.lookback (cost per tick bounded by the recently active "
           "users, but the fit no longer sees who dropped out: its drop-out estimate falls "
           "toward 0 on logs with many dormant customers)."),
    K_BOOL("model.open_days", "true", model_open_days,
           "BG/NBD counts time in open days (days with any activity in the log), so a "
           "closed day, a holiday or a data outage is nobody's silence; false = calendar "
           "days."),
    K_BOOL("model.btyd_shapes", "true", model_btyd_shapes,
           "The BTYD expert may speak with an Erlang shape k of 2, 4 or 8 (BG/CNBD-k: regular "
           "buyers) instead of BG/NBD's k = 1, chosen by the labels' log-loss once "
           "label.horizon of complete ticks is graded; false = BG/NBD always (no shape fits "
           "or grading)."),
    K_BOOL("model.lull_days", "true", model_lull_days,
           "With model.open_days: an open day on which the whole shop is quieter than "
           "usual (its week's active users per day against the 8 weeks before) counts as "
           "that fraction of a day (at least 0.25), so a lull shared by every customer, like "
           "the weeks after Christmas, is not read as their drop-out; false = every open day "
           "counts 1."),
    K_DUR("model.sync_interval", "0", 0, MS_H, model_sync_interval_ms,
          "run: 0 = one instance owns the model (committed with every batch). Above 0, "
          "several instances in one consumer group share it: each batch commits its "
          "partitions' model journals instead, and every instance merges all pending "
          "journals into the stored model and takes the merged model this often "
          "(README, Scaling out)."),

    K_DOUBLE("alert.threshold", "0.7", 0, 1, alert_threshold,
             "An alert fires when the churn probability is at least this."),
    K_DOUBLE("alert.top_percent", "0", 0, 100, alert_top_percent,
             "Also alert on the top N% of scores of each tick; 0 = off."),
    K_DUR("alert.cooldown", "14d", 0, 3650 * MS_D, alert_cooldown_ms,
          "No second alert for a user within this time."),
    K_DOUBLE("alert.holdout_percent", "10", 0, 100, alert_holdout_percent,
             "Share of users in the holdout arm (alerts marked arm=holdout)."),
    K_STR("alert.holdout_salt", "churnstream", 0, alert_holdout_salt,
          "Salt of the user_id hash that picks the arm."),
    K_STR("alert.actions", "", 0, alert_actions,
          "Action table segment:bucket=action,...; segments below model.k; entries win over the "
          "built-in defaults by kind and segment archetype (see `churnstream help actions`)."),
    K_STR("alert.buckets", "0.5,0.85", 0, alert_buckets,
          "Cut points MEDIUM,HIGH of risk_bucket: low below MEDIUM, medium from MEDIUM, high "
          "from HIGH; 0 <= MEDIUM <= HIGH <= 1."),
    K_BOOL("alert.medium", "false", alert_medium,
           "Also alert on users in the medium bucket (p >= the MEDIUM cut of alert.buckets), not "
           "only at p >= alert.threshold."),
    K_DUR("outcome.window", "30d", MS_S, 3650 * MS_D, outcome_window_ms,
          "An alert's user is retained when active again (any event but refund and "
          "subscription_cancel) within this event time after the alert; the uplift compares "
          "the treatment and holdout arms' retained shares."),

    K_STR("topic.messages", "retention-messages", CFG_F_NONEMPTY, topic_messages,
          "compose: topic RetentionMessage records are produced to (key = user_id)."),
    K_STR("compose.group_id", "churnstream-compose", CFG_F_NONEMPTY, compose_group_id,
          "compose: consumer group that reads topic.alerts (offsets committed after each "
          "message or its fallback is produced)."),
    K_STR("alerts.schemas_dir", "", 0, alerts_schemas_dir,
          "compose: directory of ChurnAlert writer schemas (*.avsc; <id>.avsc also answers "
          "Confluent id <id>) to read alerts a newer producer wrote; empty = built-in only."),
    K_STR("llm.url", "http://127.0.0.1:8080/v1/chat/completions", CFG_F_NONEMPTY, llm_url,
          "compose: OpenAI-compatible chat completions endpoint (full URL)."),
    K_STR("llm.model", "smollm2-135m-instruct", CFG_F_NONEMPTY, llm_model,
          "compose: model name sent to the endpoint and written in each message."),
    K_STR("llm.api_key", "", CFG_F_EMPTY_NULL | CFG_F_SECRET, llm_api_key,
          "compose: bearer token for the endpoint; empty = no Authorization header. Never "
          "printed."),
    K_DUR("llm.timeout", "10s", 1, 10 * MS_MIN, llm_timeout_ms,
          "compose: whole-request timeout of one completion; past it the template is used."),
    K_INT("llm.max_tokens", "96", 1, 4096, llm_max_tokens,
          "compose: max_tokens of each completion."),
    K_INT("llm.concurrency", "1", 1, 64, llm_concurrency,
          "compose: alerts answered at once (one request each in flight); 1 suits a local "
          "server that runs one request at a time, match the server's parallel slots (vLLM, "
          "llama-server -np N, a hosted API's rate limit) otherwise. Messages are produced in "
          "the order answered."),
    K_ENUM("llm.facts", "user", "user|segment", llm_facts,
           "compose: what the prompts tell the endpoint: user = bucket, segment label, action "
           "and the names of the alert's top factors; segment = the segment-level facts only "
           "(segment label, action, bucket, kind). Never the user id, the probability or a "
           "feature value."),
    K_INT("llm.breaker_failures", "3", 1, 1000, llm_breaker_failures,
          "compose: consecutive endpoint failures (errors, timeouts) that open the circuit "
          "breaker: template-only until llm.breaker_cooldown has passed."),
    K_DUR("llm.breaker_cooldown", "30s", 0, MS_H, llm_breaker_cooldown_ms,
          "compose: how long the open breaker keeps the endpoint unasked."),

    K_INT("metrics.port", "9464", 0, 65535, metrics_port,
          "Port of /metrics, /healthz and /v1/users/{id}; 0 = disabled."),
    K_STR("metrics.bind", "127.0.0.1", CFG_F_NONEMPTY, metrics_bind,
          "Address the metrics server listens on."),
};

const size_t cfg_nkeys = sizeof(cfg_keys) / sizeof(cfg_keys[0]);
_Static_assert(sizeof(cfg_keys) / sizeof(cfg_keys[0]) <= CFG_KEYS_MAX,
               "raise CFG_KEYS_MAX in config.h");

/* kafka.* defaults live here rather than in cfg_t: cfg_kafka_conf() applies them before the
 * command's `extra` pairs (e.g. the mock cluster's address), which come before the user's. */
/* clang-format off */
const char *const cfg_kafka_defaults[] = {
    "bootstrap.servers", "127.0.0.1:9092",
    "group.id",          "churnstream",
    NULL,
};
/* clang-format on */

/* ---- small helpers --------------------------------------------------------------------- */

/* Writes "<where>: <key>: <reason>" (parts that are NULL are left out); returns -1. */
int cfg_fail(char *errstr, size_t errstr_size, const char *where, const char *key, const char *fmt,
             ...)
{
    if (!errstr || errstr_size == 0)
        return -1;
    size_t len = 0;
    int n;
    if (where && *where) {
        n = snprintf(errstr, errstr_size, "%s: ", where);
        len = n < 0 ? 0 : (size_t)n;
    }
    if (key && len < errstr_size) {
        n = snprintf(errstr + len, errstr_size - len, "%s: ", key);
        len += n < 0 ? 0 : (size_t)n;
    }
    if (len < errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr + len, errstr_size - len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const cfg_key_t *cfg_key_find(const char *name)
{
    for (size_t i = 0; i < cfg_nkeys; i++)
        if (strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

/* CHURNSTREAM_ + key in upper case with '.' -> '_'. Built from the key (never reversed from
 * the variable) because keys such as alert.holdout_percent contain '_' themselves. */
void cfg_env_name(const char *key, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "%s", ENV_PREFIX);
    for (; *key && len + 1 < size; key++)
        buf[len++] = *key == '.' ? '_' : (char)toupper((unsigned char)*key);
    buf[len < size ? len : size - 1] = '\0';
}

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions), ignoring
 * case; SIZE_MAX when either string is longer than NAME_MAX_LEN. Three rolling rows. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
        return SIZE_MAX;
    size_t rows[3][NAME_MAX_LEN + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        int ca = tolower((unsigned char)a[i - 1]);
        for (size_t j = 1; j <= lb; j++) {
            int cb = tolower((unsigned char)b[j - 1]);
            size_t best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (prev[j - 1] + (ca != cb) < best)
                best = prev[j - 1] + (ca != cb);
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

/* The table key nearest to `name`, or NULL when none is near enough to be a likely typo.
 * With as_env, candidates are compared in their CHURNSTREAM_ variable form. A bare suffix
 * ("threshold") suggests the one key that ends in it. */
const cfg_key_t *cfg_key_suggest(const char *name, int as_env)
{
    const cfg_key_t *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t limit = strlen(name) >= 12 ? 3 : 2;
    char cand[NAME_MAX_LEN + ENV_PREFIX_LEN + 1];
    for (size_t i = 0; i < cfg_nkeys; i++) {
        if (as_env)
            cfg_env_name(cfg_keys[i].name, cand, sizeof cand);
        else
            snprintf(cand, sizeof cand, "%s", cfg_keys[i].name);
        size_t d = edit_distance(name, cand);
        if (d < best_d) {
            best_d = d;
            best = &cfg_keys[i];
        }
    }
    if (best && best_d <= limit && best_d < strlen(name))
        return best;
    if (as_env || strchr(name, '.') || !*name)
        return NULL;
    const cfg_key_t *only = NULL;
    size_t ln = strlen(name);
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const char *dot = strrchr(cfg_keys[i].name, '.');
        if (dot && strlen(dot + 1) == ln && strcasecmp(dot + 1, name) == 0) {
            if (only)
                return NULL; /* "port": redis.port or metrics.port, no guess */
            only = &cfg_keys[i];
        }
    }
    return only;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

const char *cfg_where(const cfg_t *cfg, const char *key)
{
    const cfg_key_t *k = cfg && key ? cfg_key_find(key) : NULL;
    return k ? cfg->key_where[k - cfg_keys] : NULL;
}

cfg_t *cfg_new(void)
{
    cfg_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < cfg_nkeys; i++) {
        char err[256];
        int rc = cfg_key_set(cfg, &cfg_keys[i], cfg_keys[i].def, NULL, err, sizeof err);
        if (rc != 0) {
            /* A default the parser rejects is a bug in the table above (the unit test
             * catches it); say so rather than pretending memory ran out. */
            if (rc != SET_OOM)
                fprintf(stderr, "churnstream: config table: %s\n", err);
            cfg_destroy(cfg);
            return NULL;
        }
    }
    return cfg;
}

void cfg_destroy(cfg_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg_nkeys; i++) {
        if (cfg_keys[i].type == CFG_T_STRING)
            free(*(char **)((char *)cfg + cfg_keys[i].offset));
        free(cfg->key_where[i]);
    }
    for (int i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka_keys[i]);
        free(cfg->kafka_values[i]);
    }
    free(cfg);
}
