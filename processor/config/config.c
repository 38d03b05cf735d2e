/* Configuration: one static table of keys drives defaults, parsing, validation, `--help`
 * and the README reference. Sources apply in order defaults -> file -> environment -> flags;
 * kafka.* properties are validated by librdkafka itself and kept verbatim. */
#include "config.h"
#include "numfmt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    CFG_T_STRING = 0,
    CFG_T_INT,      /* int (and int32_t, which is int on every target we build for) */
    CFG_T_INT64,    /* int64_t */
    CFG_T_UINT64,   /* uint64_t, full range, bounds ignored */
    CFG_T_DOUBLE,   /* finite double */
    CFG_T_BOOL,     /* int 0/1 */
    CFG_T_DURATION, /* int64_t milliseconds */
    CFG_T_ENUM      /* int index into choices */
} cfg_type_t;

#define CFG_F_NONEMPTY   0x1 /* "" is rejected */
#define CFG_F_EMPTY_NULL 0x2 /* "" stores NULL, meaning "not set" */
#define CFG_F_SECRET     0x4 /* the value is never printed */

typedef struct {
    const char *name;
    cfg_type_t type;
    const char *def; /* parsed by the same code as user input, so it cannot drift */
    double min, max; /* inclusive; milliseconds for durations; every bound is exact in a double */
    const char *choices; /* enum: "a|b|c"; the stored value is the index */
    int flags;
    size_t offset;
    const char *help;
} cfg_key_t;

_Static_assert(sizeof(int32_t) == sizeof(int), "alerts.schema_id is stored through an int");
_Static_assert(sizeof(cfg_framing_t) == sizeof(int), "enums are stored through an int");

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

/* Enum choice order must match the C enums they are stored as (log_level_t, cfg_framing_t). */
static const cfg_key_t cfg_keys[] = {
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

    K_INT("batch.max_messages", "1000", 1, 1000000, batch_max_messages,
          "Most messages processed (and committed) as one batch."),
    K_DUR("batch.max_wait", "100ms", 0, MS_H, batch_max_wait_ms,
          "Longest wait for a batch to fill before it is processed."),

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
    K_INT("llm.concurrency", "1", 1, 1, llm_concurrency,
          "compose: requests in flight; this version sends one at a time (only 1 is "
          "accepted)."),
    K_INT("llm.breaker_failures", "3", 1, 1000, llm_breaker_failures,
          "compose: consecutive endpoint failures (errors, timeouts) that open the circuit "
          "breaker: template-only until llm.breaker_cooldown has passed."),
    K_DUR("llm.breaker_cooldown", "30s", 0, MS_H, llm_breaker_cooldown_ms,
          "compose: how long the open breaker keeps the endpoint unasked."),

    K_INT("metrics.port", "9464", 0, 65535, metrics_port,
          "Port of /metrics and /healthz; 0 = disabled."),
    K_STR("metrics.bind", "127.0.0.1", CFG_F_NONEMPTY, metrics_bind,
          "Address the metrics server listens on."),
};

#define CFG_NKEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))
_Static_assert(CFG_NKEYS <= CFG_KEYS_MAX, "raise CFG_KEYS_MAX in config.h");

/* kafka.* defaults live here rather than in cfg_t: cfg_kafka_conf() applies them before the
 * command's `extra` pairs (e.g. the mock cluster's address), which come before the user's. */
/* clang-format off */
static const char *const kafka_defaults[] = {
    "bootstrap.servers", "127.0.0.1:9092",
    "group.id",          "churnstream",
    NULL,
};
/* clang-format on */

#define KAFKA_PREFIX     "kafka."
#define KAFKA_PREFIX_LEN 6
#define ENV_PREFIX       "CHURNSTREAM_"
#define ENV_PREFIX_LEN   12
#define NAME_MAX_LEN     128 /* longer keys or variable names cannot match anything */

/* ---- small helpers --------------------------------------------------------------------- */

/* Writes "<where>: <key>: <reason>" (parts that are NULL are left out); returns -1. */
__attribute__((format(printf, 5, 6))) static int
fail(char *errstr, size_t errstr_size, const char *where, const char *key, const char *fmt, ...)
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

static const cfg_key_t *key_find(const char *name)
{
    for (size_t i = 0; i < CFG_NKEYS; i++)
        if (strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

/* CHURNSTREAM_ + key in upper case with '.' -> '_'. Built from the key (never reversed from
 * the variable) because keys such as alert.holdout_percent contain '_' themselves. */
static void env_name_of(const char *key, char *buf, size_t size)
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
static const cfg_key_t *key_suggest(const char *name, int as_env)
{
    const cfg_key_t *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t limit = strlen(name) >= 12 ? 3 : 2;
    char cand[NAME_MAX_LEN + ENV_PREFIX_LEN + 1];
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        if (as_env)
            env_name_of(cfg_keys[i].name, cand, sizeof cand);
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
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const char *dot = strrchr(cfg_keys[i].name, '.');
        if (dot && strlen(dot + 1) == ln && strcasecmp(dot + 1, name) == 0) {
            if (only)
                return NULL; /* "port": redis.port or metrics.port, no guess */
            only = &cfg_keys[i];
        }
    }
    return only;
}

/* 0 ok, -1 malformed, -2 out of int64 range. Only plain decimal, whole string. */
static int parse_duration(const char *s, int64_t *out_ms)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    long long n = strtoll(s, &end, 10);
    int overflow = errno == ERANGE;
    int64_t mult;
    if (*end == '\0' && n == 0)
        mult = 1; /* "0" needs no unit; any other bare number is ambiguous (ms? s?) */
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mult = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        mult = 86400 * 1000;
    else
        return -1;
    if (overflow || n > INT64_MAX / mult)
        return -2;
    *out_ms = (int64_t)n * mult;
    return 0;
}

int cfg_parse_duration_ms(const char *text, int64_t *out_ms)
{
    int64_t v;
    if (!text || !out_ms || parse_duration(text, &v) != 0)
        return -1;
    *out_ms = v;
    return 0;
}

/* The largest unit that divides exactly, so 86400000 prints as 1d and 1500 as 1500ms. */
static void format_duration(char *buf, size_t size, int64_t ms)
{
    static const struct {
        int64_t ms;
        const char *suffix;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    if (ms == 0) {
        snprintf(buf, size, "0");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, size, "%" PRId64 "%s", ms / units[i].ms, units[i].suffix);
            return;
        }
    }
    snprintf(buf, size, "%" PRId64 "ms", ms);
}

static int parse_int64(const char *s, int64_t *out)
{
    const char *p = (*s == '-' || *s == '+') ? s + 1 : s;
    if (!isdigit((unsigned char)*p))
        return -1; /* strtoll would skip spaces and accept "" */
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int parse_uint64(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -1; /* strtoull would silently wrap "-1" */
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
        return -1; /* no spaces, hex floats, inf or nan */
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || end == s || !isfinite(v))
        return -1; /* ERANGE on underflow is fine: the value is finite */
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Index of s among the '|'-separated choices, or -1. */
static int parse_enum(const char *choices, const char *s)
{
    size_t ls = strlen(s);
    int idx = 0;
    for (const char *p = choices;; idx++) {
        const char *bar = strchr(p, '|');
        size_t lc = bar ? (size_t)(bar - p) : strlen(p);
        if (lc == ls && strncmp(p, s, ls) == 0)
            return idx;
        if (!bar)
            return -1;
        p = bar + 1;
    }
}

/* Copies the choice at idx into buf ("?" when out of range). */
static void enum_name(const char *choices, int idx, char *buf, size_t size)
{
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    if (!p || idx < 0) {
        snprintf(buf, size, "?");
        return;
    }
    const char *bar = strchr(p, '|');
    snprintf(buf, size, "%.*s", (int)(bar ? (size_t)(bar - p) : strlen(p)), p);
}

/* The allowed values of a key, as shown in errors and the reference. */
static void format_range(const cfg_key_t *k, char *buf, size_t size)
{
    char lo[32], hi[32];
    switch (k->type) {
    case CFG_T_INT:
    case CFG_T_INT64:
        snprintf(buf, size, "%.0f..%.0f", k->min, k->max);
        break;
    case CFG_T_UINT64:
        snprintf(buf, size, "0..%" PRIu64, UINT64_MAX);
        break;
    case CFG_T_DOUBLE:
        snprintf(buf, size, "%g..%g", k->min, k->max);
        break;
    case CFG_T_DURATION:
        format_duration(lo, sizeof lo, (int64_t)k->min);
        format_duration(hi, sizeof hi, (int64_t)k->max);
        snprintf(buf, size, "%s..%s", lo, hi);
        break;
    case CFG_T_BOOL:
        snprintf(buf, size, "true|false");
        break;
    case CFG_T_ENUM:
        snprintf(buf, size, "%s", k->choices);
        break;
    case CFG_T_STRING:
        snprintf(buf, size, "%s", (k->flags & CFG_F_NONEMPTY) ? "non-empty" : "");
        break;
    }
}

static const char *type_name(cfg_type_t t)
{
    switch (t) {
    case CFG_T_STRING:
        return "string";
    case CFG_T_INT:
    case CFG_T_INT64:
    case CFG_T_UINT64:
        return "integer";
    case CFG_T_DOUBLE:
        return "number";
    case CFG_T_BOOL:
        return "bool";
    case CFG_T_DURATION:
        return "duration";
    case CFG_T_ENUM:
        return "enum";
    }
    return "?";
}

/* ---- setting values ---------------------------------------------------------------------- */

#define SET_OOM (-2)

static int key_set_value(cfg_t *cfg, const cfg_key_t *k, const char *value, const char *where,
                         char *errstr, size_t errstr_size);

/* Parses value for key k and stores it, remembering where it came from (unless where is
 * NULL: a default); -1 with errstr on a bad value, SET_OOM on out of memory (errstr set
 * too). Nothing is stored on error. */
static int key_set(cfg_t *cfg, const cfg_key_t *k, const char *value, const char *where,
                   char *errstr, size_t errstr_size)
{
    int rc = key_set_value(cfg, k, value, where ? where : "default", errstr, errstr_size);
    if (rc != 0 || !where)
        return rc;
    size_t i = (size_t)(k - cfg_keys);
    char *w = strdup(where);
    if (!w) {
        fail(errstr, errstr_size, where, k->name, "out of memory");
        return SET_OOM;
    }
    free(cfg->key_where[i]);
    cfg->key_where[i] = w;
    return 0;
}

static int key_set_value(cfg_t *cfg, const cfg_key_t *k, const char *value, const char *where,
                         char *errstr, size_t errstr_size)
{
    void *field = (char *)cfg + k->offset;
    char range[96];
    int64_t i64;
    uint64_t u64;
    double d;
    int b, idx;

    switch (k->type) {
    case CFG_T_STRING: {
        if ((k->flags & CFG_F_NONEMPTY) && *value == '\0')
            return fail(errstr, errstr_size, where, k->name, "expected a non-empty value");
        char *copy = NULL;
        if (*value || !(k->flags & CFG_F_EMPTY_NULL)) {
            copy = strdup(value);
            if (!copy) {
                fail(errstr, errstr_size, where, k->name, "out of memory");
                return SET_OOM;
            }
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case CFG_T_INT:
    case CFG_T_INT64:
        if (parse_int64(value, &i64) != 0 || (double)i64 < k->min || (double)i64 > k->max) {
            format_range(k, range, sizeof range);
            return fail(errstr, errstr_size, where, k->name, "expected %s, got \"%s\"", range,
                        value);
        }
        if (k->type == CFG_T_INT)
            *(int *)field = (int)i64;
        else
            *(int64_t *)field = i64;
        return 0;
    case CFG_T_UINT64:
        if (parse_uint64(value, &u64) != 0) {
            format_range(k, range, sizeof range);
            return fail(errstr, errstr_size, where, k->name, "expected %s, got \"%s\"", range,
                        value);
        }
        *(uint64_t *)field = u64;
        return 0;
    case CFG_T_DOUBLE:
        if (parse_double(value, &d) != 0 || d < k->min || d > k->max) {
            format_range(k, range, sizeof range);
            return fail(errstr, errstr_size, where, k->name, "expected a number in %s, got \"%s\"",
                        range, value);
        }
        *(double *)field = d;
        return 0;
    case CFG_T_BOOL:
        if (parse_bool(value, &b) != 0)
            return fail(errstr, errstr_size, where, k->name, "expected true/false, got \"%s\"",
                        value);
        *(int *)field = b;
        return 0;
    case CFG_T_DURATION: {
        int rc = parse_duration(value, &i64);
        if (rc == -1)
            return fail(errstr, errstr_size, where, k->name,
                        "expected a duration with a unit (ms, s, m, h, d) like 250ms, 30s, "
                        "5m, 12h, 7d, got \"%s\"",
                        value);
        if (rc == -2 || (double)i64 < k->min || (double)i64 > k->max) {
            format_range(k, range, sizeof range);
            return fail(errstr, errstr_size, where, k->name,
                        "expected a duration in %s, got \"%s\"", range, value);
        }
        *(int64_t *)field = i64;
        return 0;
    }
    case CFG_T_ENUM:
        idx = parse_enum(k->choices, value);
        if (idx < 0)
            return fail(errstr, errstr_size, where, k->name, "expected one of %s, got \"%s\"",
                        k->choices, value);
        *(int *)field = idx;
        return 0;
    }
    return fail(errstr, errstr_size, where, k->name, "unsupported key type");
}

/* Property names whose values are credentials (sasl.password, ssl.key.password,
 * sasl.oauthbearer.client.secret, inline private keys, ...). */
static int kafka_prop_is_secret(const char *prop)
{
    return strstr(prop, "password") || strstr(prop, "secret") || strstr(prop, "key.pem") ||
           strcmp(prop, "sasl.oauthbearer.config") == 0;
}

/* Masks every occurrence of secret in buf (librdkafka may quote the value in its error).
 * The text only shrinks, so buf stays within its size. */
static void redact(char *buf, const char *secret)
{
    size_t ls = strlen(secret);
    if (ls == 0)
        return;
    for (char *p = buf; (p = strstr(p, secret)) != NULL;) {
        size_t mask = ls < 3 ? ls : 3;
        memset(p, '*', mask);
        memmove(p + mask, p + ls, strlen(p + ls) + 1);
        p += mask;
    }
}

static int kafka_find(const cfg_t *cfg, const char *prop)
{
    for (int i = 0; i < cfg->kafka_count; i++)
        if (strcmp(cfg->kafka_keys[i], prop) == 0)
            return i;
    return -1;
}

static int kafka_set(cfg_t *cfg, const char *key, const char *value, const char *where,
                     char *errstr, size_t errstr_size)
{
    const char *prop = key + KAFKA_PREFIX_LEN;
    if (*prop == '\0')
        return fail(errstr, errstr_size, where, key,
                    "expected a librdkafka property after \"kafka.\", e.g. kafka.client.id");

    /* A scratch conf makes librdkafka judge the name and value now, at load time, instead of
     * when a command builds its client long after the file was read. */
    char rderr[512];
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    if (!scratch)
        return fail(errstr, errstr_size, where, key, "out of memory");
    rd_kafka_conf_res_t res = rd_kafka_conf_set(scratch, prop, value, rderr, sizeof rderr);
    rd_kafka_conf_destroy(scratch);
    if (res != RD_KAFKA_CONF_OK) {
        if (kafka_prop_is_secret(prop))
            redact(rderr, value);
        return fail(errstr, errstr_size, where, key, "%s", rderr);
    }

    char *v = strdup(value);
    if (!v)
        return fail(errstr, errstr_size, where, key, "out of memory");
    int i = kafka_find(cfg, prop);
    if (i >= 0) {
        free(cfg->kafka_values[i]);
        cfg->kafka_values[i] = v;
        return 0;
    }
    if (cfg->kafka_count >= CFG_KAFKA_MAX) {
        free(v);
        return fail(errstr, errstr_size, where, key, "too many kafka.* properties (at most %d)",
                    CFG_KAFKA_MAX);
    }
    char *k = strdup(prop);
    if (!k) {
        free(v);
        return fail(errstr, errstr_size, where, key, "out of memory");
    }
    cfg->kafka_keys[cfg->kafka_count] = k;
    cfg->kafka_values[cfg->kafka_count] = v;
    cfg->kafka_count++;
    return 0;
}

int cfg_set(cfg_t *cfg, const char *key, const char *value, const char *where, char *errstr,
            size_t errstr_size)
{
    if (!cfg || !key || !value)
        return fail(errstr, errstr_size, where, key, "missing key or value");
    if (strncmp(key, KAFKA_PREFIX, KAFKA_PREFIX_LEN) == 0)
        return kafka_set(cfg, key, value, where, errstr, errstr_size);
    const cfg_key_t *k = key_find(key);
    if (!k) {
        const cfg_key_t *near = key_suggest(key, 0);
        if (near)
            return fail(errstr, errstr_size, where, key, "unknown key; did you mean \"%s\"?",
                        near->name);
        return fail(errstr, errstr_size, where, key, "unknown key (see churnstream --help)");
    }
    return key_set(cfg, k, value, where, errstr, errstr_size) == 0 ? 0 : -1;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

const char *cfg_where(const cfg_t *cfg, const char *key)
{
    const cfg_key_t *k = cfg && key ? key_find(key) : NULL;
    return k ? cfg->key_where[k - cfg_keys] : NULL;
}

cfg_t *cfg_new(void)
{
    cfg_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        char err[256];
        int rc = key_set(cfg, &cfg_keys[i], cfg_keys[i].def, NULL, err, sizeof err);
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
    for (size_t i = 0; i < CFG_NKEYS; i++) {
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

/* ---- sources --------------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

/* Turns the text after '=' (trimmed) into the value, in place: "..." is taken verbatim
 * (spaces, '#', inner quotes kept; an explicit empty value is ""), followed by nothing but
 * blanks or a comment; unquoted text ends at a '#' that follows a blank (an inline
 * comment) and may hold no quote at all: a stray quote is almost always a typo, and keeping
 * it would silently change a password or a topic name. 0, or -1 on an unbalanced quote. */
static int parse_file_value(char **value)
{
    char *v = *value;
    if (v[0] == '"') {
        /* The first quote followed by nothing but blanks or a comment closes the value, so
         * both "pa"ss" and "x" # a "quoted" comment read as meant. */
        for (char *close = strchr(v + 1, '"'); close; close = strchr(close + 1, '"')) {
            char *rest = close + 1;
            while (*rest == ' ' || *rest == '\t')
                rest++;
            if (*rest == '\0' || *rest == '#') {
                *close = '\0';
                *value = v + 1;
                return 0;
            }
        }
        return -1;
    }
    for (char *p = v; *p; p++) {
        if (*p == '#' && (p == v || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    if (strchr(v, '"'))
        return -1;
    *value = trim(v);
    return 0;
}

int cfg_load_file(cfg_t *cfg, const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(errstr, errstr_size, path, NULL, "cannot open config file: %s",
                    strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *s = line;
        if (lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
            s += 3; /* UTF-8 byte order mark from Windows editors */
        s = trim(s);
        if (*s == '\0' || *s == '#')
            continue;
        char where[4096 + 16];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        char *eq = strchr(s, '=');
        if (!eq || eq == s) { /* s is trimmed: eq == s means an empty key */
            /* Never echo the line: "redis.password: S3cret" (a colon for '=') would print
             * the secret. Name the key-like start of the line only. */
            size_t kl = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._-");
            if (kl > 0 && kl <= NAME_MAX_LEN)
                rc = fail(errstr, errstr_size, where, NULL,
                          "%.*s: expected key = value (the line is not shown: it may hold a "
                          "secret)",
                          (int)kl, s);
            else
                rc = fail(errstr, errstr_size, where, NULL,
                          "expected key = value (the line is not shown: it may hold a secret)");
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        if (parse_file_value(&value) != 0) {
            rc = fail(errstr, errstr_size, where, key,
                      "unbalanced quote: wrap the whole value in \"...\" (no escapes; the value "
                      "is not shown)");
            break;
        }
        if (cfg_set(cfg, key, value, where, errstr, errstr_size) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = fail(errstr, errstr_size, path, NULL, "read error: %s", strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

int cfg_load_env(cfg_t *cfg, char **envp, char *errstr, size_t errstr_size)
{
    if (!envp)
        return 0;
    for (char **e = envp; *e; e++) {
        if (strncmp(*e, ENV_PREFIX, ENV_PREFIX_LEN) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        size_t name_len = (size_t)(eq - *e);
        const char *value = eq + 1;
        char name[NAME_MAX_LEN + ENV_PREFIX_LEN + 1];
        if (name_len >= sizeof name)
            return fail(errstr, errstr_size, NULL, NULL,
                        "%.*s...: unknown variable (see churnstream --help)", 40, *e);
        memcpy(name, *e, name_len);
        name[name_len] = '\0';
        if (strcmp(name, ENV_PREFIX "CONFIG") == 0)
            continue;

        if (strncmp(name, ENV_PREFIX "KAFKA_", ENV_PREFIX_LEN + 6) == 0 &&
            name[ENV_PREFIX_LEN + 6] != '\0') {
            /* librdkafka property names use dots and never underscores, so mapping back is
             * exact here (unlike the table keys). */
            char key[sizeof name];
            size_t len = (size_t)snprintf(key, sizeof key, "%s", KAFKA_PREFIX);
            for (const char *p = name + ENV_PREFIX_LEN + 6; *p && len + 1 < sizeof key; p++)
                key[len++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
            key[len] = '\0';
            if (cfg_set(cfg, key, value, name, errstr, errstr_size) != 0)
                return -1;
            continue;
        }

        const cfg_key_t *k = NULL;
        char cand[sizeof name];
        for (size_t i = 0; i < CFG_NKEYS && !k; i++) {
            env_name_of(cfg_keys[i].name, cand, sizeof cand);
            if (strcmp(cand, name) == 0)
                k = &cfg_keys[i];
        }
        if (!k) {
            const cfg_key_t *near = key_suggest(name, 1);
            if (near) {
                env_name_of(near->name, cand, sizeof cand);
                return fail(errstr, errstr_size, name, NULL, "unknown variable; did you mean %s?",
                            cand);
            }
            return fail(errstr, errstr_size, name, NULL,
                        "unknown variable (see churnstream --help)");
        }
        if (key_set(cfg, k, value, name, errstr, errstr_size) != 0)
            return -1;
    }
    return 0;
}

/* ---- kafka ------------------------------------------------------------------------------- */

static int conf_apply(rd_kafka_conf_t *conf, const char *prop, const char *value, char *errstr,
                      size_t errstr_size)
{
    char rderr[512];
    if (rd_kafka_conf_set(conf, prop, value, rderr, sizeof rderr) == RD_KAFKA_CONF_OK)
        return 0;
    if (kafka_prop_is_secret(prop))
        redact(rderr, value);
    return fail(errstr, errstr_size, NULL, NULL, "kafka.%s: %s", prop, rderr);
}

/* Producers skip group.id (a consumer property librdkafka warns about on a producer). */
static rd_kafka_conf_t *kafka_conf(const cfg_t *cfg, const char *const *extra, int producer,
                                   char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        fail(errstr, errstr_size, NULL, NULL, "out of memory");
        return NULL;
    }
    for (const char *const *p = kafka_defaults; *p; p += 2)
        if (!(producer && strcmp(p[0], "group.id") == 0) &&
            conf_apply(conf, p[0], p[1], errstr, errstr_size) != 0)
            goto err;
    for (const char *const *p = extra; p && p[0]; p += 2) {
        if (!p[1]) {
            fail(errstr, errstr_size, NULL, NULL, "kafka.%s: missing value", p[0]);
            goto err;
        }
        if (conf_apply(conf, p[0], p[1], errstr, errstr_size) != 0)
            goto err;
    }
    for (int i = 0; cfg && i < cfg->kafka_count; i++)
        if (!(producer && strcmp(cfg->kafka_keys[i], "group.id") == 0) &&
            conf_apply(conf, cfg->kafka_keys[i], cfg->kafka_values[i], errstr, errstr_size) != 0)
            goto err;
    return conf;
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_conf_t *cfg_kafka_conf(const cfg_t *cfg, const char *const *extra, char *errstr,
                                size_t errstr_size)
{
    return kafka_conf(cfg, extra, 0, errstr, errstr_size);
}

rd_kafka_conf_t *cfg_kafka_producer_conf(const cfg_t *cfg, const char *const *extra, char *errstr,
                                         size_t errstr_size)
{
    return kafka_conf(cfg, extra, 1, errstr, errstr_size);
}

/* ---- printing ---------------------------------------------------------------------------- */

/* Writes s as Markdown table cell text: '|' would end the cell, and outside code spans
 * "<id>" would read as an HTML tag. */
static void md_cell(FILE *out, const char *s, int in_code)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (!in_code && *s == '<')
            fputs("&lt;", out);
        else if (!in_code && *s == '>')
            fputs("&gt;", out);
        else
            fputc(*s, out);
    }
}

static void md_code_cell(FILE *out, const char *s, const char *if_empty)
{
    if (*s) {
        fputc('`', out);
        md_cell(out, s, 1);
        fputc('`', out);
    } else {
        fputs(if_empty, out);
    }
}

/* One plain-text reference row, without trailing blanks. */
static void text_row(FILE *out, const char *name, const char *type, const char *def,
                     const char *range, const char *help)
{
    char line[512];
    snprintf(line, sizeof line, "  %-25s %-9s %-16s %s", name, type, def, range);
    size_t len = strlen(line);
    while (len > 0 && line[len - 1] == ' ')
        line[--len] = '\0';
    fprintf(out, "%s\n  %-25s %s\n", line, "", help);
}

static const char *const kafka_default_help[] = {
    "Kafka brokers, host:port[,host:port...].",
    "Consumer group of the processors (instances share the partitions).",
};

void cfg_print_reference(FILE *out, int markdown)
{
    char range[96], name[64];
    if (markdown) {
        fputs("| key | type | default | range | description |\n", out);
        fputs("|---|---|---|---|---|\n", out);
        for (size_t i = 0; i < CFG_NKEYS; i++) {
            const cfg_key_t *k = &cfg_keys[i];
            format_range(k, range, sizeof range);
            fprintf(out, "| `%s` | %s | ", k->name, type_name(k->type));
            md_code_cell(out, k->def, "(empty)");
            fputs(" | ", out);
            md_code_cell(out, range, "");
            fputs(" | ", out);
            md_cell(out, k->help, 0);
            fputs(" |\n", out);
        }
        for (size_t i = 0; kafka_defaults[2 * i]; i++) {
            fprintf(out, "| `kafka.%s` | string | ", kafka_defaults[2 * i]);
            md_code_cell(out, kafka_defaults[2 * i + 1], "(empty)");
            fputs(" |  | ", out);
            md_cell(out, kafka_default_help[i], 0);
            fputs(" |\n", out);
        }
        fputs("| `kafka.*` | string |  |  | Any other librdkafka property (security.protocol, "
              "sasl.\\*, ssl.\\*, ...), checked when loaded; environment "
              "CHURNSTREAM_KAFKA_&lt;PROPERTY&gt; with '.' as '_'. |\n",
              out);
        return;
    }

    fputs("Configuration keys. Set them in the file given by -c FILE (`key = value` lines, '#'\n"
          "comments, also after a value following a blank; \"...\" keeps a value verbatim), as\n"
          "environment variables CHURNSTREAM_<KEY> (upper case, '.' -> '_'), or as flags\n"
          "--key=VALUE; later sources win. Durations need a unit: ms, s, m, h or d (0 alone).\n\n",
          out);
    fprintf(out, "  %-25s %-9s %-16s %s\n", "KEY", "TYPE", "DEFAULT", "RANGE");
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const cfg_key_t *k = &cfg_keys[i];
        format_range(k, range, sizeof range);
        text_row(out, k->name, type_name(k->type), *k->def ? k->def : "(empty)", range, k->help);
    }
    for (size_t i = 0; kafka_defaults[2 * i]; i++) {
        snprintf(name, sizeof name, "kafka.%s", kafka_defaults[2 * i]);
        text_row(out, name, "string", kafka_defaults[2 * i + 1], "", kafka_default_help[i]);
    }
    fprintf(out, "  %-25s %s\n", "kafka.<property>",
            "Any other librdkafka property (security.protocol, sasl.*, ssl.*, ...),");
    fprintf(out, "  %-25s %s\n", "",
            "checked when loaded; environment CHURNSTREAM_KAFKA_<PROPERTY> with '.' as '_'.");
}

void cfg_print_values(FILE *out, const cfg_t *cfg)
{
    char buf[128];
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const cfg_key_t *k = &cfg_keys[i];
        const void *field = (const char *)cfg + k->offset;
        fprintf(out, "%s = ", k->name);
        switch (k->type) {
        case CFG_T_STRING: {
            const char *s = *(char *const *)field;
            if (k->flags & CFG_F_SECRET)
                fputs(s ? "***" : "\"\"", out);
            else
                fprintf(out, "\"%s\"", s ? s : "");
            break;
        }
        case CFG_T_INT:
            fprintf(out, "%d", *(const int *)field);
            break;
        case CFG_T_INT64:
            fprintf(out, "%" PRId64, *(const int64_t *)field);
            break;
        case CFG_T_UINT64:
            fprintf(out, "%" PRIu64, *(const uint64_t *)field);
            break;
        case CFG_T_DOUBLE:
            nf_shortest(buf, sizeof buf, *(const double *)field);
            fputs(buf, out);
            break;
        case CFG_T_BOOL:
            fputs(*(const int *)field ? "true" : "false", out);
            break;
        case CFG_T_DURATION:
            format_duration(buf, sizeof buf, *(const int64_t *)field);
            fputs(buf, out);
            break;
        case CFG_T_ENUM:
            enum_name(k->choices, *(const int *)field, buf, sizeof buf);
            fputs(buf, out);
            break;
        }
        fputc('\n', out);
    }
    for (const char *const *p = kafka_defaults; *p; p += 2)
        if (kafka_find(cfg, p[0]) < 0)
            fprintf(out, "kafka.%s = \"%s\"\n", p[0], p[1]);
    for (int i = 0; i < cfg->kafka_count; i++)
        fprintf(out, "kafka.%s = \"%s\"\n", cfg->kafka_keys[i],
                kafka_prop_is_secret(cfg->kafka_keys[i]) ? "***" : cfg->kafka_values[i]);
}
