/* Unit tests of the config loader: every rejection message is asserted verbatim, defaults are
 * checked against the documented values, and file -> env -> flag precedence is exercised
 * through cfg_load_all like main() does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "config_load.h"
#include "log.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static char *capture_values(const cfg_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg_print_values(f, cfg);
    fclose(f);
    return buf;
}

static char *capture_reference(int markdown)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg_print_reference(f, markdown);
    fclose(f);
    return buf;
}

/* Writes text to a fresh temporary file; the caller unlinks and frees the path. */
static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/test_config_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* The "key = value" line of cfg_print_values for key, without the newline. */
static void value_line(const cfg_t *cfg, const char *key, char *out, size_t size)
{
    char *all = capture_values(cfg);
    size_t lk = strlen(key);
    out[0] = '\0';
    for (char *line = all; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        if (ll > lk + 2 && strncmp(line, key, lk) == 0 && line[lk] == ' ') {
            snprintf(out, size, "%.*s", (int)ll, line);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(all);
}

/* ---- documented keys and defaults -------------------------------------------------------- */

/* The README's promises, written out independently of config.c's table. */
static const struct {
    const char *key, *type, *def;
} documented[] = {
    {"log.level", "enum", "info"},
    {"log.format", "enum", "logfmt"},
    {"topic.events", "string", "events"},
    {"topic.dlq", "string", "events.dlq"},
    {"topic.alerts", "string", "churn-alerts"},
    {"alerts.enabled", "bool", "true"},
    {"alerts.framing", "enum", "confluent"},
    {"alerts.schema_id", "integer", "3"},
    {"schemas.dir", "string", ""},
    {"redis.host", "string", "127.0.0.1"},
    {"redis.port", "integer", "6379"},
    {"redis.user", "string", ""},
    {"redis.password", "string", ""},
    {"redis.db", "integer", "0"},
    {"redis.connect_timeout", "duration", "2s"},
    {"redis.command_timeout", "duration", "5s"},
    {"redis.cluster", "bool", "false"},
    {"state.prefix", "string", "cs:"},
    {"state.ttl", "duration", "400d"},
    {"state.scores", "bool", "true"},
    {"batch.max_messages", "integer", "1000"},
    {"batch.max_wait", "duration", "100ms"},
    {"batch.catchup_factor", "integer", "16"},
    {"batch.overlap_commit", "bool", "true"},
    {"tick.interval", "duration", "1d"},
    {"tick.idle_advance", "duration", "5m"},
    {"tick.sweep_slice", "duration", "30d"},
    {"tick.sweep_max_users", "integer", "100000"},
    {"label.horizon", "duration", "90d"},
    {"label.lookback", "duration", "90d"},
    {"events.allowed_lateness", "duration", "1h"},
    {"events.max_past", "duration", "30d"},
    {"events.max_future", "duration", "1d"},
    {"model.k", "integer", "8"},
    {"model.seed", "integer", "42"},
    {"model.min_examples", "integer", "500"},
    {"model.learning_rate", "number", "0.05"},
    {"model.l2", "number", "1e-4"},
    {"model.kmeans_half_life", "number", "100000"},
    {"model.scaler_half_life", "number", "0"},
    {"model.class_weight", "enum", "balanced"},
    {"model.experts", "enum", "hedge"},
    {"model.bgnbd_population", "enum", "all"},
    {"model.open_days", "bool", "true"},
    {"model.btyd_shapes", "bool", "true"},
    {"model.lull_days", "bool", "true"},
    {"model.sync_interval", "duration", "0"},
    {"alert.threshold", "number", "0.7"},
    {"alert.top_percent", "number", "0"},
    {"alert.cooldown", "duration", "14d"},
    {"alert.holdout_percent", "number", "10"},
    {"alert.holdout_salt", "string", "churnstream"},
    {"alert.actions", "string", ""},
    {"alert.buckets", "string", "0.5,0.85"},
    {"alert.medium", "bool", "false"},
    {"outcome.window", "duration", "30d"},
    {"topic.messages", "string", "retention-messages"},
    {"compose.group_id", "string", "churnstream-compose"},
    {"alerts.schemas_dir", "string", ""},
    {"llm.url", "string", "http://127.0.0.1:8080/v1/chat/completions"},
    {"llm.model", "string", "smollm2-135m-instruct"},
    {"llm.api_key", "string", ""},
    {"llm.timeout", "duration", "10s"},
    {"llm.max_tokens", "integer", "96"},
    {"llm.concurrency", "integer", "1"},
    {"llm.facts", "enum", "user"},
    {"llm.breaker_failures", "integer", "3"},
    {"llm.breaker_cooldown", "duration", "30s"},
    {"metrics.port", "integer", "9464"},
    {"metrics.bind", "string", "127.0.0.1"},
};
#define NDOCUMENTED (sizeof documented / sizeof documented[0])

static void test_defaults(void **state)
{
    (void)state;
    cfg_t *c = cfg_new();
    assert_non_null(c);
    assert_int_equal(c->log_level, LOG_INFO);
    assert_int_equal(c->log_json, 0);
    assert_string_equal(c->topic_events, "events");
    assert_string_equal(c->topic_dlq, "events.dlq");
    assert_string_equal(c->topic_alerts, "churn-alerts");
    assert_int_equal(c->alerts_enabled, 1);
    assert_int_equal(c->alerts_framing, CFG_FRAMING_CONFLUENT);
    assert_int_equal(c->alerts_schema_id, 3);
    assert_string_equal(c->schemas_dir, "");
    assert_string_equal(c->redis_host, "127.0.0.1");
    assert_int_equal(c->redis_port, 6379);
    assert_null(c->redis_user);
    assert_null(c->redis_password);
    assert_int_equal(c->redis_db, 0);
    assert_int_equal(c->redis_connect_timeout_ms, 2000);
    assert_int_equal(c->redis_command_timeout_ms, 5000);
    assert_int_equal(c->redis_cluster, 0);
    assert_string_equal(c->state_prefix, "cs:");
    assert_int_equal(c->state_ttl_ms, 400LL * 86400000);
    assert_int_equal(c->batch_max_messages, 1000);
    assert_int_equal(c->batch_max_wait_ms, 100);
    assert_int_equal(c->batch_catchup_factor, 16);
    assert_int_equal(c->batch_overlap_commit, 1);
    assert_int_equal(c->tick_interval_ms, 86400000);
    assert_int_equal(c->tick_idle_advance_ms, 300000);
    assert_int_equal(c->label_horizon_ms, 90LL * 86400000);
    assert_int_equal(c->label_lookback_ms, 90LL * 86400000);
    assert_int_equal(c->events_allowed_lateness_ms, 3600000);
    assert_int_equal(c->events_max_past_ms, 30LL * 86400000);
    assert_int_equal(c->events_max_future_ms, 86400000);
    assert_int_equal(c->model_k, 8);
    assert_true(c->model_seed == 42);
    assert_int_equal(c->model_min_examples, 500);
    assert_true(c->model_learning_rate == 0.05);
    assert_true(c->model_l2 == 1e-4);
    assert_true(c->model_kmeans_half_life == 100000.0);
    assert_true(c->model_scaler_half_life == 0.0);
    assert_int_equal(c->model_class_weight, 1);
    assert_int_equal(c->model_sync_interval_ms, 0);
    assert_int_equal(c->model_lull_days, 1);
    assert_int_equal(c->model_btyd_shapes, 1);
    assert_int_equal(c->model_open_days, 1);
    assert_int_equal(c->model_bgnbd_population, 0);
    assert_true(c->alert_threshold == 0.7);
    assert_true(c->alert_top_percent == 0.0);
    assert_int_equal(c->alert_cooldown_ms, 14LL * 86400000);
    assert_true(c->alert_holdout_percent == 10.0);
    assert_string_equal(c->alert_holdout_salt, "churnstream");
    assert_string_equal(c->alert_actions, "");
    assert_int_equal(c->metrics_port, 9464);
    assert_string_equal(c->metrics_bind, "127.0.0.1");
    assert_int_equal(c->kafka_count, 0);
    cfg_destroy(c);
    cfg_destroy(NULL); /* no-op */
}

/* Every documented key is in the Markdown reference with its type and default, and the
 * table has no row the documentation lacks. */
static void test_reference_markdown(void **state)
{
    (void)state;
    char *md = capture_reference(1);
    assert_non_null(strstr(md, "| key | type | default | range | description |\n|---|"));
    assert_ptr_equal(strstr(md, "| key |"), md);
    for (size_t i = 0; i < NDOCUMENTED; i++) {
        char row[160];
        if (*documented[i].def)
            snprintf(row, sizeof row, "| `%s` | %s | `%s` | ", documented[i].key,
                     documented[i].type, documented[i].def);
        else
            snprintf(row, sizeof row, "| `%s` | %s | (empty) | ", documented[i].key,
                     documented[i].type);
        if (!strstr(md, row))
            fail_msg("missing Markdown row: %s", row);
    }
    assert_non_null(strstr(md, "| `kafka.bootstrap.servers` | string | `127.0.0.1:9092` |"));
    assert_non_null(strstr(md, "| `kafka.group.id` | string | `churnstream` |"));
    assert_non_null(strstr(md, "| `kafka.*` | string |"));
    assert_non_null(strstr(md, "| `redis.port` | integer | `6379` | `1..65535` | "));
    assert_non_null(strstr(md, "| `log.format` | enum | `logfmt` | `logfmt\\|json` | "));
    assert_non_null(strstr(md, "| `tick.interval` | duration | `1d` | `1s..365d` | "));
    size_t rows = 0;
    for (const char *p = md; (p = strstr(p, "\n| `")) != NULL; p++)
        rows++;
    assert_int_equal(rows, NDOCUMENTED + 3); /* + 2 kafka defaults + kafka.* */
    free(md);

    char *text = capture_reference(0);
    for (size_t i = 0; i < NDOCUMENTED; i++)
        assert_non_null(strstr(text, documented[i].key));
    assert_null(strstr(text, " \n")); /* no trailing blanks */
    free(text);
}

/* ---- cfg_set rejections ------------------------------------------------------------------ */

static const struct {
    const char *key, *value, *err;
} bad_sets[] = {
    /* unknown keys */
    {"nothing.here", "1", "src: nothing.here: unknown key (see churnstream --help)"},
    {"redis.prot", "1", "src: redis.prot: unknown key; did you mean \"redis.port\"?"},
    {"Redis.Port", "1", "src: Redis.Port: unknown key; did you mean \"redis.port\"?"},
    {"alert.holdout_precent", "1",
     "src: alert.holdout_precent: unknown key; did you mean \"alert.holdout_percent\"?"},
    {"threshold", "1", "src: threshold: unknown key; did you mean \"alert.threshold\"?"},
    {"port", "1", "src: port: unknown key (see churnstream --help)"}, /* two candidates */
    {"", "1", "src: : unknown key (see churnstream --help)"},
    /* integers: both bounds, garbage, overflow */
    {"redis.port", "abc", "src: redis.port: expected 1..65535, got \"abc\""},
    {"redis.port", "0", "src: redis.port: expected 1..65535, got \"0\""},
    {"redis.port", "65536", "src: redis.port: expected 1..65535, got \"65536\""},
    {"redis.port", "6379x", "src: redis.port: expected 1..65535, got \"6379x\""},
    {"redis.port", " 6379", "src: redis.port: expected 1..65535, got \" 6379\""},
    {"redis.port", "", "src: redis.port: expected 1..65535, got \"\""},
    {"redis.port", "0x10", "src: redis.port: expected 1..65535, got \"0x10\""},
    {"redis.port", "99999999999999999999",
     "src: redis.port: expected 1..65535, got \"99999999999999999999\""},
    {"redis.db", "-1", "src: redis.db: expected 0..1023, got \"-1\""},
    {"redis.db", "1024", "src: redis.db: expected 0..1023, got \"1024\""},
    {"model.k", "0", "src: model.k: expected 1..64, got \"0\""},
    {"model.k", "65", "src: model.k: expected 1..64, got \"65\""},
    {"batch.max_messages", "1000001",
     "src: batch.max_messages: expected 1..1000000, got \"1000001\""},
    {"batch.catchup_factor", "0", "src: batch.catchup_factor: expected 1..1000, got \"0\""},
    {"alerts.schema_id", "2147483648",
     "src: alerts.schema_id: expected 0..2147483647, got \"2147483648\""},
    {"metrics.port", "-1", "src: metrics.port: expected 0..65535, got \"-1\""},
    {"model.min_examples", "1000000000001",
     "src: model.min_examples: expected 0..1000000000000, got \"1000000000001\""},
    {"model.seed", "-1", "src: model.seed: expected 0..18446744073709551615, got \"-1\""},
    {"model.seed", "18446744073709551616",
     "src: model.seed: expected 0..18446744073709551615, got \"18446744073709551616\""},
    /* doubles */
    {"alert.threshold", "1.5", "src: alert.threshold: expected a number in 0..1, got \"1.5\""},
    {"alert.threshold", "-0.1", "src: alert.threshold: expected a number in 0..1, got \"-0.1\""},
    {"alert.threshold", "nan", "src: alert.threshold: expected a number in 0..1, got \"nan\""},
    {"alert.threshold", "0.5x", "src: alert.threshold: expected a number in 0..1, got \"0.5x\""},
    {"alert.threshold", "", "src: alert.threshold: expected a number in 0..1, got \"\""},
    {"model.l2", "1e400", "src: model.l2: expected a number in 0..10, got \"1e400\""},
    {"model.l2", "inf", "src: model.l2: expected a number in 0..10, got \"inf\""},
    {"model.learning_rate", "0",
     "src: model.learning_rate: expected a number in 1e-06..10, got \"0\""},
    {"alert.holdout_percent", "100.5",
     "src: alert.holdout_percent: expected a number in 0..100, got \"100.5\""},
    /* booleans */
    {"alerts.enabled", "maybe", "src: alerts.enabled: expected true/false, got \"maybe\""},
    {"alerts.enabled", "", "src: alerts.enabled: expected true/false, got \"\""},
    {"alerts.enabled", "2", "src: alerts.enabled: expected true/false, got \"2\""},
    /* durations: malformed, then out of range (incl. int64 overflow) */
    {"tick.interval", "7x",
     "src: tick.interval: expected a duration with a unit (ms, s, m, h, d) like 250ms, 30s, 5m, "
     "12h, 7d, got \"7x\""},
    {"tick.interval", "1.5h",
     "src: tick.interval: expected a duration with a unit (ms, s, m, h, d) like 250ms, 30s, 5m, "
     "12h, 7d, got \"1.5h\""},
    {"tick.interval", "-1d",
     "src: tick.interval: expected a duration with a unit (ms, s, m, h, d) like 250ms, 30s, 5m, "
     "12h, 7d, got \"-1d\""},
    {"tick.interval", "",
     "src: tick.interval: expected a duration with a unit (ms, s, m, h, d) like 250ms, 30s, 5m, "
     "12h, 7d, got \"\""},
    {"tick.interval", "999ms",
     "src: tick.interval: expected a duration in 1s..365d, got \"999ms\""},
    {"tick.interval", "366d", "src: tick.interval: expected a duration in 1s..365d, got \"366d\""},
    {"state.ttl", "106751991168d",
     "src: state.ttl: expected a duration in 0..3650d, got \"106751991168d\""},
    {"state.ttl", "99999999999999999999ms",
     "src: state.ttl: expected a duration in 0..3650d, got \"99999999999999999999ms\""},
    {"redis.connect_timeout", "0",
     "src: redis.connect_timeout: expected a duration in 1ms..1h, got \"0\""},
    /* enums are case-sensitive */
    {"log.format", "xml", "src: log.format: expected one of logfmt|json, got \"xml\""},
    {"log.format", "JSON", "src: log.format: expected one of logfmt|json, got \"JSON\""},
    {"log.level", "trace", "src: log.level: expected one of debug|info|warn|error, got \"trace\""},
    {"alerts.framing", "avro",
     "src: alerts.framing: expected one of confluent|single-object|plain, got \"avro\""},
    {"model.class_weight", "", "src: model.class_weight: expected one of none|balanced, got \"\""},
    /* strings */
    {"topic.events", "", "src: topic.events: expected a non-empty value"},
    {"redis.host", "", "src: redis.host: expected a non-empty value"},
    /* kafka.* pass-through: librdkafka's own text */
    {"kafka.", "x",
     "src: kafka.: expected a librdkafka property after \"kafka.\", e.g. kafka.client.id"},
    {"kafka.no.such.property", "1",
     "src: kafka.no.such.property: No such configuration property: \"no.such.property\""},
    {"kafka.security.protocol", "carrier-pigeon",
     "src: kafka.security.protocol: Invalid value \"carrier-pigeon\" for configuration property "
     "\"security.protocol\""},
};

static void test_set_rejects(void **state)
{
    (void)state;
    cfg_t *c = cfg_new();
    assert_non_null(c);
    char *before = capture_values(c);
    for (size_t i = 0; i < sizeof bad_sets / sizeof bad_sets[0]; i++) {
        char err[512] = "";
        int rc = cfg_set(c, bad_sets[i].key, bad_sets[i].value, "src", err, sizeof err);
        if (rc != -1 || strcmp(err, bad_sets[i].err) != 0)
            fail_msg("case %zu (%s=%s): rc %d, got '%s', want '%s'", i, bad_sets[i].key,
                     bad_sets[i].value, rc, err, bad_sets[i].err);
    }
    /* A rejected value leaves the config untouched. */
    char *after = capture_values(c);
    assert_string_equal(before, after);
    free(before);
    free(after);
    cfg_destroy(c);
}

/* ---- cfg_set acceptances, checked through the printed value ----------------------------- */

static const struct {
    const char *key, *value, *line;
} good_sets[] = {
    {"redis.port", "1", "redis.port = 1"},
    {"redis.port", "65535", "redis.port = 65535"},
    {"redis.port", "+80", "redis.port = 80"},
    {"model.seed", "18446744073709551615", "model.seed = 18446744073709551615"},
    {"model.min_examples", "1000000000000", "model.min_examples = 1000000000000"},
    {"alert.threshold", "1", "alert.threshold = 1"},
    {"alert.threshold", "0", "alert.threshold = 0"},
    {"alert.threshold", "0.25", "alert.threshold = 0.25"},
    {"model.l2", "1e-3", "model.l2 = 0.001"},
    {"alerts.enabled", "false", "alerts.enabled = false"},
    {"alerts.enabled", "TRUE", "alerts.enabled = true"},
    {"alerts.enabled", "no", "alerts.enabled = false"},
    {"alerts.enabled", "1", "alerts.enabled = true"},
    {"tick.interval", "1s", "tick.interval = 1s"},
    {"tick.interval", "365d", "tick.interval = 365d"},
    {"tick.interval", "7d", "tick.interval = 7d"},
    {"tick.interval", "1500ms", "tick.interval = 1500ms"},
    {"tick.interval", "90m", "tick.interval = 90m"},
    {"tick.interval", "24h", "tick.interval = 1d"},
    {"state.ttl", "0", "state.ttl = 0"},
    {"log.format", "json", "log.format = json"},
    {"log.level", "error", "log.level = error"},
    {"alerts.framing", "single-object", "alerts.framing = single-object"},
    {"model.class_weight", "balanced", "model.class_weight = balanced"},
    {"topic.events", "clicks", "topic.events = \"clicks\""},
    {"state.prefix", "", "state.prefix = \"\""},
    {"redis.user", "app", "redis.user = \"app\""},
    {"redis.user", "", "redis.user = \"\""},
    {"kafka.client.id", "svc", "kafka.client.id = \"svc\""},
    {"kafka.bootstrap.servers", "k1:9092,k2:9092", "kafka.bootstrap.servers = \"k1:9092,k2:9092\""},
};

static void test_set_accepts(void **state)
{
    (void)state;
    cfg_t *c = cfg_new();
    assert_non_null(c);
    for (size_t i = 0; i < sizeof good_sets / sizeof good_sets[0]; i++) {
        char err[512] = "", line[256];
        if (cfg_set(c, good_sets[i].key, good_sets[i].value, "src", err, sizeof err) != 0)
            fail_msg("case %zu (%s=%s) rejected: %s", i, good_sets[i].key, good_sets[i].value, err);
        value_line(c, good_sets[i].key, line, sizeof line);
        assert_string_equal(line, good_sets[i].line);
    }
    /* Typed fields, not only their printed form. */
    assert_int_equal(c->tick_interval_ms, 86400000);
    assert_int_equal(c->log_json, 1);
    assert_int_equal(c->log_level, LOG_ERROR);
    assert_int_equal(c->alerts_framing, CFG_FRAMING_SINGLE_OBJECT);
    assert_null(c->redis_user); /* "" means "not set" */
    assert_string_equal(c->state_prefix, "");
    assert_true(c->model_seed == UINT64_MAX);
    cfg_destroy(c);
}

/* ---- durations --------------------------------------------------------------------------- */

static const struct {
    const char *text;
    int rc;
    int64_t ms;
} durations[] = {
    {"0", 0, 0},
    {"250", -1, 0}, /* a unit is required (was: bare milliseconds); "0" needs none */
    {"250ms", 0, 250},
    {"30s", 0, 30000},
    {"5m", 0, 300000},
    {"12h", 0, 43200000},
    {"7d", 0, 604800000},
    {"0d", 0, 0},
    {"007s", 0, 7000},
    {"9223372036854775807", -1, 0},
    {"9223372036854775807ms", 0, INT64_MAX},
    {"9223372036854775s", 0, 9223372036854775000LL},
    {"106751991167d", 0, 106751991167LL * 86400000},
    /* overflow */
    {"9223372036854775808ms", -1, 0},
    {"9223372036854776s", -1, 0},
    {"106751991168d", -1, 0},
    {"99999999999999999999999d", -1, 0},
    /* malformed */
    {"", -1, 0},
    {"7x", -1, 0},
    {"-1s", -1, 0},
    {"+1s", -1, 0},
    {" 1s", -1, 0},
    {"1s ", -1, 0},
    {"1 s", -1, 0},
    {"1.5s", -1, 0},
    {"1S", -1, 0},
    {"s", -1, 0},
    {"ms", -1, 0},
    {"1ss", -1, 0},
    {"1msx", -1, 0},
    {"1w", -1, 0},
};

static void test_durations(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        int64_t ms = -12345;
        int rc = cfg_parse_duration_ms(durations[i].text, &ms);
        if (rc != durations[i].rc)
            fail_msg("\"%s\": rc %d, want %d", durations[i].text, rc, durations[i].rc);
        if (rc == 0 && ms != durations[i].ms)
            fail_msg("\"%s\": %lld ms, want %lld", durations[i].text, (long long)ms,
                     (long long)durations[i].ms);
        if (rc != 0 && ms != -12345)
            fail_msg("\"%s\": output written on error", durations[i].text);
    }
}

/* ---- file -------------------------------------------------------------------------------- */

static void test_file(void **state)
{
    (void)state;
    char *path = write_temp("# churnstream test config\n"
                            "\n"
                            "   # indented comment\n"
                            "redis.port=7001\n"
                            "  redis.host   =   cache.local  \n"
                            "topic.events = clicks\r\n"
                            "\t\n"
                            "redis.password = p#ss=word\n"
                            "alert.actions = \"  spaced  \"\n"
                            "state.prefix = \"\"\n"
                            "kafka.client.id = from-file\n"
                            "tick.interval = 7d\n"
                            "redis.port = 7002\n");
    cfg_t *c = cfg_new();
    char err[512] = "";
    if (cfg_load_file(c, path, err, sizeof err) != 0)
        fail_msg("load failed: %s", err);
    assert_int_equal(c->redis_port, 7002); /* later line wins */
    assert_string_equal(c->redis_host, "cache.local");
    assert_string_equal(c->topic_events, "clicks");
    assert_string_equal(c->redis_password, "p#ss=word"); /* no inline comments */
    assert_string_equal(c->alert_actions, "  spaced  ");
    assert_string_equal(c->state_prefix, "");
    assert_int_equal(c->tick_interval_ms, 7 * 86400000LL);
    assert_int_equal(c->kafka_count, 1);
    assert_string_equal(c->kafka_keys[0], "client.id");
    assert_string_equal(c->kafka_values[0], "from-file");
    cfg_destroy(c);
    unlink(path);
    free(path);
}

static const struct {
    const char *text;
    const char *err_after_path; /* expected error with the path prefix removed */
} bad_files[] = {
    {"# ok\n\nredis.host = h\nredis.port = abc\n",
     ":4: redis.port: expected 1..65535, got \"abc\""},
    {"redis.host = h\n\njust some words\n",
     ":3: just: expected key = value (the line is not shown: it may hold a secret)"},
    {"= 5\n", ":1: expected key = value (the line is not shown: it may hold a secret)"},
    /* issue 11: a colon for '=' must not echo the secret */
    {"redis.password: S3cretPW\n",
     ":1: redis.password: expected key = value (the line is not shown: it may hold a secret)"},
    {"kafka.sasl.password S3cretPW\n",
     ":1: kafka.sasl.password: expected key = value (the line is not shown: it may hold a "
     "secret)"},
    /* stray and unbalanced quotes are errors that do not show the value */
    {"redis.password = S3cret\"PW\n",
     ":1: redis.password: unbalanced quote: wrap the whole value in \"...\" (no escapes; the "
     "value is not shown)"},
    {"redis.password = \"S3cretPW\n",
     ":1: redis.password: unbalanced quote: wrap the whole value in \"...\" (no escapes; the "
     "value is not shown)"},
    {"topic.events = \"a\" b\n",
     ":1: topic.events: unbalanced quote: wrap the whole value in \"...\" (no escapes; the "
     "value is not shown)"},
    {"\n\nredis.prot = 1\n", ":3: redis.prot: unknown key; did you mean \"redis.port\"?"},
    {"log.format = xml\n", ":1: log.format: expected one of logfmt|json, got \"xml\""},
    {"kafka.nope = 1\n", ":1: kafka.nope: No such configuration property: \"nope\""},
};

static void test_file_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        char *path = write_temp(bad_files[i].text);
        cfg_t *c = cfg_new();
        char err[512] = "", want[512];
        snprintf(want, sizeof want, "%s%s", path, bad_files[i].err_after_path);
        assert_int_equal(cfg_load_file(c, path, err, sizeof err), -1);
        assert_string_equal(err, want);
        cfg_destroy(c);
        unlink(path);
        free(path);
    }
    cfg_t *c = cfg_new();
    char err[512] = "";
    assert_int_equal(cfg_load_file(c, "/nonexistent/churnstream.conf", err, sizeof err), -1);
    assert_string_equal(err,
                        "/nonexistent/churnstream.conf: cannot open config file: No such file or "
                        "directory");
    cfg_destroy(c);
}

/* ---- environment ------------------------------------------------------------------------- */

static void test_env(void **state)
{
    (void)state;
    char *envp[] = {
        "HOME=/root",
        "CHURNSTREAM_CONFIG=/does/not/matter",
        "CHURNSTREAM_REDIS_PORT=7000",
        "CHURNSTREAM_ALERT_HOLDOUT_PERCENT=25",
        "CHURNSTREAM_MODEL_CLASS_WEIGHT=none",
        "CHURNSTREAM_KAFKA_BOOTSTRAP_SERVERS=broker:9093",
        "CHURNSTREAM_KAFKA_SASL_PASSWORD=hunter2",
        "CHURNSTREAM_REDIS_PASSWORD=s3cret",
        NULL,
    };
    cfg_t *c = cfg_new();
    char err[512] = "";
    if (cfg_load_env(c, envp, err, sizeof err) != 0)
        fail_msg("env rejected: %s", err);
    assert_int_equal(c->redis_port, 7000);
    assert_true(c->alert_holdout_percent == 25.0);
    assert_int_equal(c->model_class_weight, 0);
    assert_string_equal(c->redis_password, "s3cret");
    assert_int_equal(c->kafka_count, 2);
    assert_string_equal(c->kafka_keys[0], "bootstrap.servers");
    assert_string_equal(c->kafka_values[0], "broker:9093");
    assert_string_equal(c->kafka_keys[1], "sasl.password");
    cfg_destroy(c);
}

/* Every documented key can be set through its environment name, built here independently
 * (so a key whose own name holds '_' still maps: alert.holdout_percent). */
static void test_env_every_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < NDOCUMENTED; i++) {
        char var[160];
        size_t n = (size_t)snprintf(var, sizeof var, "CHURNSTREAM_");
        for (const char *p = documented[i].key; *p; p++)
            var[n++] = *p == '.' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        snprintf(var + n, sizeof var - n, "=%s", documented[i].def);
        char *envp[] = {var, NULL};
        cfg_t *c = cfg_new();
        char err[512] = "";
        if (cfg_load_env(c, envp, err, sizeof err) != 0)
            fail_msg("%s rejected: %s", var, err);
        cfg_destroy(c);
    }
}

static const struct {
    const char *var, *err;
} bad_env[] = {
    {"CHURNSTREAM_REDIS_PROT=1",
     "CHURNSTREAM_REDIS_PROT: unknown variable; did you mean CHURNSTREAM_REDIS_PORT?"},
    {"CHURNSTREAM_ALERT_HOLDOUT_PRECENT=1",
     "CHURNSTREAM_ALERT_HOLDOUT_PRECENT: unknown variable; did you mean "
     "CHURNSTREAM_ALERT_HOLDOUT_PERCENT?"},
    {"CHURNSTREAM_NOTHING=1", "CHURNSTREAM_NOTHING: unknown variable (see churnstream --help)"},
    {"CHURNSTREAM_REDIS_PORT=abc",
     "CHURNSTREAM_REDIS_PORT: redis.port: expected 1..65535, got \"abc\""},
    {"CHURNSTREAM_TICK_INTERVAL=7x",
     "CHURNSTREAM_TICK_INTERVAL: tick.interval: expected a duration with a unit (ms, s, m, h, "
     "d) like 250ms, 30s, 5m, 12h, 7d, got \"7x\""},
    {"CHURNSTREAM_KAFKA_NO_SUCH=1",
     "CHURNSTREAM_KAFKA_NO_SUCH: kafka.no.such: No such configuration property: \"no.such\""},
};

static void test_env_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_env / sizeof bad_env[0]; i++) {
        char var[256];
        snprintf(var, sizeof var, "%s", bad_env[i].var);
        char *envp[] = {"CHURNSTREAM_REDIS_HOST=ok", var, NULL};
        cfg_t *c = cfg_new();
        char err[512] = "";
        assert_int_equal(cfg_load_env(c, envp, err, sizeof err), -1);
        assert_string_equal(err, bad_env[i].err);
        cfg_destroy(c);
    }
}

/* ---- cfg_load_all: precedence and argument splitting ------------------------------------ */

/* Issue 11: inline comments are stripped, a quoted value keeps its '#' and inner quotes. */
static void test_file_comments_and_quotes(void **state)
{
    (void)state;
    char *path = write_temp("topic.events = abc # the events topic\n"
                            "topic.dlq = dlq#1\n"
                            "alert.holdout_salt = \"x # y\" # kept inside the quotes\n"
                            "redis.password = \"pa\"ss\"\n"
                            "state.prefix = \"\"   # explicit empty\n");
    cfg_t *c = cfg_new();
    char err[512] = "";
    if (cfg_load_file(c, path, err, sizeof err) != 0)
        fail_msg("load failed: %s", err);
    assert_string_equal(c->topic_events, "abc");
    assert_string_equal(c->topic_dlq, "dlq#1"); /* no blank before '#': part of the value */
    assert_string_equal(c->alert_holdout_salt, "x # y");
    assert_string_equal(c->redis_password, "pa\"ss");
    assert_string_equal(c->state_prefix, "");
    cfg_destroy(c);
    unlink(path);
    free(path);
}

/* Issue 11: every -c is loaded in order (a later file wins key by key); cross-key rules
 * are checked once everything is applied and name where the value came from. */
static void test_load_all_files_and_rules(void **state)
{
    (void)state;
    char *a = write_temp("topic.events = from-a\ntopic.dlq = dlq-a\n");
    char *b = write_temp("topic.dlq = dlq-b\nevents.allowed_lateness = 2d\n");
    char *argv[] = {"replay", "-c", a, "--config", b, "--tick.interval=7d", "in.avro"};
    char *rest[8];
    int rest_argc = 0;
    char err[512] = "";
    char *envp[] = {NULL};
    cfg_t *c = cfg_new();
    if (cfg_load_all(c, 7, argv, envp, &rest_argc, rest, err, sizeof err) != 0)
        fail_msg("load_all failed: %s", err);
    assert_string_equal(c->topic_events, "from-a");
    assert_string_equal(c->topic_dlq, "dlq-b");
    assert_int_equal(rest_argc, 2);
    char want_where[512];
    snprintf(want_where, sizeof want_where, "%s:2", b);
    assert_string_equal(cfg_where(c, "events.allowed_lateness"), want_where);
    assert_string_equal(cfg_where(c, "tick.interval"), "--tick.interval");
    assert_null(cfg_where(c, "redis.port"));
    cfg_destroy(c);

    /* lateness >= tick interval: the file and line of the lateness, both keys named */
    char *argv2[] = {"run", "-c", b};
    c = cfg_new();
    assert_int_equal(cfg_load_all(c, 3, argv2, envp, &rest_argc, rest, err, sizeof err), -1);
    char want[512];
    snprintf(want, sizeof want,
             "%s:2: events.allowed_lateness: 2d must be below tick.interval (1d)", b);
    assert_string_equal(err, want);
    cfg_destroy(c);

    /* lateness >= horizon */
    char *argv3[] = {"run", "--tick.interval=365d", "--events.allowed_lateness=100d"};
    c = cfg_new();
    assert_int_equal(cfg_load_all(c, 3, argv3, envp, &rest_argc, rest, err, sizeof err), -1);
    assert_string_equal(err, "--events.allowed_lateness: events.allowed_lateness: 100d must be "
                             "below label.horizon (90d)");
    cfg_destroy(c);

    /* alert.actions naming a segment >= model.k, from the environment */
    char *envp4[] = {"CHURNSTREAM_ALERT_ACTIONS=9:high=x", NULL};
    char *argv4[] = {"run"};
    c = cfg_new();
    assert_int_equal(cfg_load_all(c, 1, argv4, envp4, &rest_argc, rest, err, sizeof err), -1);
    assert_string_equal(err, "CHURNSTREAM_ALERT_ACTIONS: alert.actions: entry 1: segment 9 does "
                             "not exist: model.k is 8, segments are 0..7");
    cfg_destroy(c);
    char *argv5[] = {"run", "--model.k=10"};
    c = cfg_new();
    if (cfg_load_all(c, 2, argv5, envp4, &rest_argc, rest, err, sizeof err) != 0)
        fail_msg("k = 10 has segment 9: %s", err);
    cfg_destroy(c);

    /* alert.buckets out of order: a configuration error at load, with its origin */
    char *argv6[] = {"run", "--alert.buckets=0.9,0.4"};
    c = cfg_new();
    assert_int_equal(cfg_load_all(c, 2, argv6, envp, &rest_argc, rest, err, sizeof err), -1);
    assert_string_equal(err, "--alert.buckets: alert.buckets: expected MEDIUM,HIGH with 0 <= "
                             "MEDIUM <= HIGH <= 1 (e.g. 0.5,0.85), got \"0.9,0.4\"");
    cfg_destroy(c);
    char *argv7[] = {"run", "--alert.buckets= 0.6 ,0.9", "--alert.medium=true"};
    c = cfg_new();
    if (cfg_load_all(c, 3, argv7, envp, &rest_argc, rest, err, sizeof err) != 0)
        fail_msg("valid alert.buckets refused: %s", err);
    assert_int_equal(c->alert_medium, 1);
    cfg_destroy(c);

    unlink(a);
    unlink(b);
    free(a);
    free(b);
}

static void test_load_all_precedence(void **state)
{
    (void)state;
    char *path = write_temp("redis.port = 1000\n"
                            "redis.host = filehost\n"
                            "log.level = debug\n"
                            "topic.events = file-topic\n");
    char cflag[] = "-c";
    char *argv[] = {
        "replay",        cflag,          path,   "--redis.port=3000", "in.avro",     "--model-out",
        "m.bin",         "--log.format", "json", "--kafka.client.id", "flag-client", "--",
        "--redis.port=9"};
    int argc = (int)(sizeof argv / sizeof argv[0]);
    char *envp[] = {"CHURNSTREAM_REDIS_PORT=2000", "CHURNSTREAM_LOG_LEVEL=warn",
                    "CHURNSTREAM_CONFIG=/nonexistent/ignored-because-of-c.conf",
                    "CHURNSTREAM_KAFKA_CLIENT_ID=env-client", NULL};
    char *rest[16];
    int rest_argc = -1;
    char err[512] = "";
    cfg_t *c = cfg_new();
    if (cfg_load_all(c, argc, argv, envp, &rest_argc, rest, err, sizeof err) != 0)
        fail_msg("load_all failed: %s", err);
    assert_int_equal(c->redis_port, 3000);          /* flag over env over file */
    assert_int_equal(c->log_level, LOG_WARN);       /* env over file */
    assert_string_equal(c->redis_host, "filehost"); /* file over default */
    assert_string_equal(c->topic_events, "file-topic");
    assert_int_equal(c->log_json, 1); /* "--key value" form */
    assert_int_equal(c->kafka_count, 1);
    assert_string_equal(c->kafka_values[0], "flag-client");

    const char *want[] = {"replay", "in.avro", "--model-out", "m.bin", "--", "--redis.port=9"};
    assert_int_equal(rest_argc, 6);
    for (int i = 0; i < rest_argc; i++)
        assert_string_equal(rest[i], want[i]);
    cfg_destroy(c);

    /* Without -c, CHURNSTREAM_CONFIG names the file. */
    char env_config[512];
    snprintf(env_config, sizeof env_config, "CHURNSTREAM_CONFIG=%s", path);
    char *envp2[] = {env_config, NULL};
    char *argv2[] = {"inspect", "user-1"};
    c = cfg_new();
    assert_int_equal(cfg_load_all(c, 2, argv2, envp2, &rest_argc, rest, err, sizeof err), 0);
    assert_int_equal(c->redis_port, 1000);
    assert_int_equal(rest_argc, 2);
    assert_string_equal(rest[1], "user-1");
    cfg_destroy(c);

    /* --config=FILE form */
    char config_eq[512];
    snprintf(config_eq, sizeof config_eq, "--config=%s", path);
    char *argv3[] = {"run", config_eq};
    c = cfg_new();
    assert_int_equal(cfg_load_all(c, 2, argv3, NULL, &rest_argc, rest, err, sizeof err), 0);
    assert_int_equal(c->redis_port, 1000);
    assert_int_equal(rest_argc, 1);
    cfg_destroy(c);

    unlink(path);
    free(path);
}

static void test_load_all_errors(void **state)
{
    (void)state;
    static const struct {
        int argc;
        const char *argv[4];
        const char *err;
    } cases[] = {
        {2,
         {"run", "--redis.port=abc"},
         "--redis.port: redis.port: expected 1..65535, got \"abc\""},
        {3, {"run", "--redis.port", "0"}, "--redis.port: redis.port: expected 1..65535, got \"0\""},
        {2,
         {"run", "--redis.port"},
         "--redis.port: redis.port: expected a value (--redis.port=VALUE or --redis.port VALUE)"},
        {2,
         {"run", "--alert.treshold=0.5"},
         "--alert.treshold: alert.treshold: unknown key; did you mean \"alert.threshold\"?"},
        {2,
         {"run", "--kafka.nope=1"},
         "--kafka.nope: kafka.nope: No such configuration property: \"nope\""},
        {2, {"run", "-c"}, "-c: expected a file path"},
        {3,
         {"run", "-c", "/nonexistent/x.conf"},
         "/nonexistent/x.conf: cannot open config file: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[4];
        for (int j = 0; j < cases[i].argc; j++)
            argv[j] = (char *)cases[i].argv[j];
        char *rest[4];
        int rest_argc = 0;
        char err[512] = "";
        cfg_t *c = cfg_new();
        assert_int_equal(
            cfg_load_all(c, cases[i].argc, argv, NULL, &rest_argc, rest, err, sizeof err), -1);
        assert_string_equal(err, cases[i].err);
        cfg_destroy(c);
    }
}

/* ---- kafka ------------------------------------------------------------------------------- */

static void assert_conf(rd_kafka_conf_t *conf, const char *prop, const char *want)
{
    char buf[256];
    size_t size = sizeof buf;
    assert_int_equal(rd_kafka_conf_get(conf, prop, buf, &size), RD_KAFKA_CONF_OK);
    assert_string_equal(buf, want);
}

static void test_kafka_conf(void **state)
{
    (void)state;
    char err[512] = "";
    cfg_t *c = cfg_new();

    /* Built-in defaults only. */
    rd_kafka_conf_t *conf = cfg_kafka_conf(c, NULL, err, sizeof err);
    assert_non_null(conf);
    assert_conf(conf, "bootstrap.servers", "127.0.0.1:9092");
    assert_conf(conf, "group.id", "churnstream");
    rd_kafka_conf_destroy(conf);

    /* A producer gets no group.id, not even the user's (librdkafka would warn). */
    assert_int_equal(cfg_set(c, "kafka.group.id", "mine", "t", err, sizeof err), 0);
    conf = cfg_kafka_producer_conf(c, NULL, err, sizeof err);
    assert_non_null(conf);
    assert_conf(conf, "bootstrap.servers", "127.0.0.1:9092");
    char gid[64];
    size_t gid_size = sizeof(gid);
    rd_kafka_conf_res_t gres = rd_kafka_conf_get(conf, "group.id", gid, &gid_size);
    assert_true(gres != RD_KAFKA_CONF_OK || gid[0] == '\0');
    rd_kafka_conf_destroy(conf);
    cfg_destroy(c);
    c = cfg_new();

    /* extra beats the defaults; the user beats extra. */
    const char *extra[] = {"bootstrap.servers", "mock:1", "client.id", "from-extra", NULL};
    conf = cfg_kafka_conf(c, extra, err, sizeof err);
    assert_non_null(conf);
    assert_conf(conf, "bootstrap.servers", "mock:1");
    assert_conf(conf, "client.id", "from-extra");
    rd_kafka_conf_destroy(conf);

    assert_int_equal(cfg_set(c, "kafka.client.id", "first", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(c, "kafka.client.id", "user", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(c, "kafka.linger.ms", "7", "t", err, sizeof err), 0);
    assert_int_equal(c->kafka_count, 2); /* a repeated property replaces, not appends */
    conf = cfg_kafka_conf(c, extra, err, sizeof err);
    assert_non_null(conf);
    assert_conf(conf, "client.id", "user");
    assert_conf(conf, "linger.ms", "7");
    assert_conf(conf, "bootstrap.servers", "mock:1");
    rd_kafka_conf_destroy(conf);

    const char *bad_extra[] = {"no.such.thing", "1", NULL};
    assert_null(cfg_kafka_conf(c, bad_extra, err, sizeof err));
    assert_string_equal(err, "kafka.no.such.thing: No such configuration property: "
                             "\"no.such.thing\"");
    cfg_destroy(c);
}

static void test_kafka_limit(void **state)
{
    (void)state;
    /* Real librdkafka properties that accept a decimal value. */
    static const char *props[] = {
        "message.max.bytes",
        "receive.message.max.bytes",
        "metadata.max.age.ms",
        "topic.metadata.refresh.interval.ms",
        "socket.timeout.ms",
        "socket.send.buffer.bytes",
        "socket.receive.buffer.bytes",
        "reconnect.backoff.ms",
        "reconnect.backoff.max.ms",
        "statistics.interval.ms",
        "retry.backoff.ms",
        "queue.buffering.max.messages",
        "linger.ms",
        "batch.num.messages",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "fetch.wait.max.ms",
        "fetch.min.bytes",
        "fetch.max.bytes",
        "queued.min.messages",
        "auto.commit.interval.ms",
        "request.timeout.ms",
        "message.timeout.ms",
        "connections.max.idle.ms",
        "socket.connection.setup.timeout.ms",
        "topic.metadata.refresh.fast.interval.ms",
        "api.version.request.timeout.ms",
        "metadata.max.age.ms", /* repeated: replaces, must not count twice */
    };
    cfg_t *c = cfg_new();
    char err[512] = "";
    size_t nprops = sizeof props / sizeof props[0];
    for (size_t i = 0; i < nprops; i++) {
        char key[128];
        snprintf(key, sizeof key, "kafka.%s", props[i]);
        if (cfg_set(c, key, "1000", "t", err, sizeof err) != 0)
            fail_msg("%s rejected: %s", key, err);
    }
    assert_int_equal(c->kafka_count, (int)nprops - 1);
    /* librdkafka has too few numeric properties to reach the limit honestly, so fill the
     * remaining slots directly (cfg_destroy frees them like real entries). */
    for (int i = c->kafka_count; i < CFG_KAFKA_MAX; i++) {
        char name[32];
        snprintf(name, sizeof name, "fake.%d", i);
        c->kafka_keys[i] = strdup(name);
        c->kafka_values[i] = strdup("x");
    }
    c->kafka_count = CFG_KAFKA_MAX;
    assert_int_equal(cfg_set(c, "kafka.client.id", "x", "t", err, sizeof err), -1);
    assert_string_equal(err, "t: kafka.client.id: too many kafka.* properties (at most 64)");
    cfg_destroy(c); /* frees the fake entries too */
}

/* ---- secrets and round trip -------------------------------------------------------------- */

static void test_secrets_never_printed(void **state)
{
    (void)state;
    cfg_t *c = cfg_new();
    char err[512] = "";
    assert_int_equal(cfg_set(c, "redis.password", "hunter2", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(c, "kafka.sasl.password", "s3cr3t-kafka", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(c, "kafka.ssl.key.password", "key-secret", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(c, "llm.api_key", "sk-llm-key", "t", err, sizeof err), 0);
    char *values = capture_values(c);
    assert_null(strstr(values, "sk-llm-key"));
    assert_non_null(strstr(values, "llm.api_key = ***\n"));
    assert_null(strstr(values, "hunter2"));
    assert_null(strstr(values, "s3cr3t-kafka"));
    assert_null(strstr(values, "key-secret"));
    assert_non_null(strstr(values, "redis.password = ***\n"));
    assert_non_null(strstr(values, "kafka.sasl.password = \"***\"\n"));
    free(values);
    char *ref = capture_reference(0);
    assert_null(strstr(ref, "hunter2"));
    assert_null(strstr(ref, "sk-llm-key"));
    free(ref);
    cfg_destroy(c);
}

/* cfg_print_values writes a file cfg_load_file reads back to the same values. */
static void test_values_round_trip(void **state)
{
    (void)state;
    cfg_t *a = cfg_new();
    char err[512] = "";
    assert_int_equal(cfg_set(a, "alert.threshold", "0.1", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(a, "alert.actions", " 0:high=call ", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(a, "tick.interval", "1500ms", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(a, "redis.user", "app", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(a, "kafka.linger.ms", "5", "t", err, sizeof err), 0);
    assert_int_equal(cfg_set(a, "alerts.enabled", "off", "t", err, sizeof err), 0);
    char *first = capture_values(a);
    char *path = write_temp(first);
    cfg_t *b = cfg_new();
    if (cfg_load_file(b, path, err, sizeof err) != 0)
        fail_msg("reload failed: %s", err);
    char *second = capture_values(b);
    assert_string_equal(first, second);
    assert_true(b->alert_threshold == 0.1);
    assert_string_equal(b->alert_actions, " 0:high=call ");
    free(first);
    free(second);
    cfg_destroy(a);
    cfg_destroy(b);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_reference_markdown),
        cmocka_unit_test(test_set_rejects),
        cmocka_unit_test(test_set_accepts),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_every_key),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_load_all_precedence),
        cmocka_unit_test(test_load_all_errors),
        cmocka_unit_test(test_kafka_conf),
        cmocka_unit_test(test_kafka_limit),
        cmocka_unit_test(test_file_comments_and_quotes),
        cmocka_unit_test(test_load_all_files_and_rules),
        cmocka_unit_test(test_secrets_never_printed),
        cmocka_unit_test(test_values_round_trip),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
