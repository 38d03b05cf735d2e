/* Configuration: one table of keys (name, type, default, bounds, help) drives parsing, the
 * `--help` text and the README's config reference. Load order: defaults -> file (-c FILE)
 * -> environment (CHURNSTREAM_<KEY>, dots as underscores, upper case) -> flags
 * (--key=value). `kafka.*` keys pass straight to librdkafka (validated at load time). */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#define CFG_KAFKA_MAX 64 /* kafka.* pass-through properties kept */
#define CFG_KEYS_MAX  96 /* table keys (config.c asserts the table fits) */

typedef enum {
    CFG_FRAMING_CONFLUENT = 0,
    CFG_FRAMING_SINGLE_OBJECT,
    CFG_FRAMING_PLAIN
} cfg_framing_t;

/* llm.facts: what compose tells the endpoint about an alert. */
typedef enum {
    CFG_LLM_FACTS_USER = 0, /* bucket, segment label, action, the top factors' names */
    CFG_LLM_FACTS_SEGMENT   /* the segment-level facts only: no factor of this user */
} cfg_llm_facts_t;

/* Every field is owned by the cfg_t; strings are heap copies freed by cfg_destroy().
 * Durations are milliseconds (suffixes ms/s/m/h/d accepted in text). */
typedef struct cfg_s {
    /* logging */
    int log_level; /* log_level_t */
    int log_json;  /* log.format: 0 = logfmt, 1 = json */

    /* topics */
    char *topic_events;           /* topic.events */
    char *topic_dlq;              /* topic.dlq */
    char *topic_alerts;           /* topic.alerts */
    cfg_framing_t alerts_framing; /* alerts.framing */
    int32_t alerts_schema_id;     /* alerts.schema_id (Confluent framing) */
    char *schemas_dir;            /* schemas.dir: writer schemas, <id>.avsc or *.avsc */
    int alerts_enabled;           /* alerts.enabled: 0 = score and log alerts, never produce them */

    /* redis */
    char *redis_host;
    int redis_port;
    char *redis_user;     /* NULL = default user */
    char *redis_password; /* NULL = no AUTH */
    int redis_db;
    int64_t redis_connect_timeout_ms;
    int64_t redis_command_timeout_ms;
    int redis_cluster; /* redis.cluster: 1 = Redis Cluster (slot map, per-partition hash tags) */

    /* state */
    char *state_prefix;   /* state.prefix, default "cs:" */
    int64_t state_ttl_ms; /* state.ttl: idle users expire; 0 = never */
    int state_scores;     /* state.scores: run writes the latest-score hashes */

    /* batching */
    int batch_max_messages;
    int batch_catchup_factor; /* 1 = fixed batches */
    int batch_overlap_commit; /* run: collect while a commit is in flight (dm_settle) */
    int64_t batch_max_wait_ms;

    /* event-time validation and ticks (DESIGN.md section 4) */
    int64_t tick_interval_ms;
    int64_t tick_idle_advance_ms;
    int64_t tick_sweep_slice_ms; /* tick.sweep_slice (live bounded sweeps) */
    int tick_sweep_max_users;    /* tick.sweep_max_users, 0 = no limit */
    int64_t label_horizon_ms;
    int64_t label_lookback_ms;
    int64_t events_allowed_lateness_ms; /* watermark = max event time - this */
    int64_t events_max_past_ms;         /* reject events older than watermark - this */
    int64_t events_max_future_ms;       /* reject events newer than max(watermark, now) + this */

    /* models */
    int model_k;
    uint64_t model_seed;
    int64_t model_min_examples;
    double model_learning_rate;
    double model_l2;
    double model_kmeans_half_life;  /* events */
    double model_scaler_half_life;  /* events; 0 = no decay */
    int model_class_weight;         /* 0 = none, 1 = balanced */
    int model_experts;              /* ex_mode_t (experts.h): 0 = hedge */
    int model_open_days;            /* BG/NBD counts open days (open_days.h) */
    int model_lull_days;            /* open days weighted by lulls (open_days.h) */
    int model_btyd_shapes;          /* BG/CNBD-k shapes chosen by labels (experts.h) */
    int model_bgnbd_population;     /* 0 = all users with an activity, 1 = recent (H + L) */
    int64_t model_sync_interval_ms; /* 0 = one model writer; else journals and merges */

    /* alerts */
    double alert_threshold;
    double alert_top_percent; /* 0 = off */
    int64_t alert_cooldown_ms;
    double alert_holdout_percent;
    char *alert_holdout_salt;
    char *alert_actions; /* alert.actions: "segment:bucket=action,..." table, "" = defaults */
    char *alert_buckets; /* alert.buckets: "MEDIUM,HIGH" cut points (alert_buckets_parse) */
    int alert_medium;    /* alert.medium: also alert in the medium bucket below the threshold */
    int64_t outcome_window_ms; /* outcome.window: retained = active again within it */

    /* compose (retention messages written by a language model) */
    char *topic_messages;     /* topic.messages */
    char *compose_group_id;   /* compose.group_id */
    char *alerts_schemas_dir; /* alerts.schemas_dir: ChurnAlert writer schemas, "" = none */
    char *llm_url;
    char *llm_model;
    char *llm_api_key; /* NULL = no Authorization header; secret, never printed */
    int64_t llm_timeout_ms;
    int llm_max_tokens;
    int llm_concurrency;
    cfg_llm_facts_t llm_facts; /* llm.facts */
    int llm_breaker_failures;
    int64_t llm_breaker_cooldown_ms;

    /* metrics */
    int metrics_port; /* 0 = disabled */
    char *metrics_bind;

    /* Where each table key was last set ("s.conf:12", "--model.k", an environment variable
     * name), indexed like the key table; NULL = default. Heap copies owned by the cfg_t, so
     * cross-key errors name the source of the value (cfg_where). */
    char *key_where[CFG_KEYS_MAX];

    /* kafka.* pass-through, in load order (later entries override earlier ones) */
    int kafka_count;
    char *kafka_keys[CFG_KAFKA_MAX];
    char *kafka_values[CFG_KAFKA_MAX];
} cfg_t;

/* Allocates a config holding every default. Returns NULL only on out of memory. */
cfg_t *cfg_new(void);
/* Frees the config and every string it owns; NULL is a no-op. */
void cfg_destroy(cfg_t *cfg);

/* Sets one key from text. `where` names the source for the error ("churnstream.conf:12",
 * "CHURNSTREAM_REDIS_PORT", "--redis.port"). On error returns -1 and writes
 * "<where>: <key>: <reason>" into errstr, e.g.
 * "churnstream.conf:12: redis.port: expected 1..65535, got \"abc\"". */
int cfg_set(cfg_t *cfg, const char *key, const char *value, const char *where, char *errstr,
            size_t errstr_size);

/* Loads a key=value file: blank lines, '#' comment lines and inline comments (a '#' after a
 * blank, outside quotes), optional spaces around '='. A value may be wrapped in "..." (kept
 * verbatim, '#' included, no escapes); any other quote is an error. A syntax error names
 * the file, line and key, never the value (it may be a secret). */
int cfg_load_file(cfg_t *cfg, const char *path, char *errstr, size_t errstr_size);

/* Applies every CHURNSTREAM_* variable of envp (NULL-terminated, like environ). Variables
 * that name no key are errors, except CHURNSTREAM_CONFIG (the file path). */
int cfg_load_env(cfg_t *cfg, char **envp, char *errstr, size_t errstr_size);

/* Where key was last set (see key_where), or NULL when it holds its default or is unknown. */
const char *cfg_where(const cfg_t *cfg, const char *key);

/* Returns a new librdkafka config holding the kafka.* properties (and `extra` key/value
 * pairs, NULL-terminated, applied first so that user settings win). NULL on error. The
 * caller owns the result (rd_kafka_new takes it). */
rd_kafka_conf_t *cfg_kafka_conf(const cfg_t *cfg, const char *const *extra, char *errstr,
                                size_t errstr_size);

/* The same for a producer: kafka.group.id (a consumer property) is left out. */
rd_kafka_conf_t *cfg_kafka_producer_conf(const cfg_t *cfg, const char *const *extra, char *errstr,
                                         size_t errstr_size);

/* Parses "250ms", "30s", "5m", "12h", "7d" or "0"; any other number needs a unit. */
int cfg_parse_duration_ms(const char *text, int64_t *out_ms);

/* Writes the key reference: plain text for --help, or a Markdown table (README). */
void cfg_print_reference(FILE *out, int markdown);

/* Writes the effective values as `key = value` lines (a valid config file), kafka.* last.
 * Secrets (redis.password, kafka.*password*, *secret*, ...) print as "***". */
void cfg_print_values(FILE *out, const cfg_t *cfg);

#endif
