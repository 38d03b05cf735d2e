/* What the configuration's files share and nothing else sees: the key table's row type, the
 * table itself (config.c) and the helpers each part uses. config.c owns the table and the
 * lifecycle, config_value.c parses and stores one value, config_source.c reads files and
 * the environment and builds librdkafka configurations, config_print.c prints the
 * reference and the effective values. */
#ifndef CS_CONFIG_INTERNAL_H
#define CS_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

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
_Static_assert(sizeof(cfg_llm_facts_t) == sizeof(int), "enums are stored through an int");

#define KAFKA_PREFIX     "kafka."
#define KAFKA_PREFIX_LEN 6
#define ENV_PREFIX       "CHURNSTREAM_"
#define ENV_PREFIX_LEN   12
#define NAME_MAX_LEN     128  /* longer keys or variable names cannot match anything */
#define SET_OOM          (-2) /* cfg_key_set: out of memory (errstr set too) */

extern const cfg_key_t cfg_keys[];
extern const size_t cfg_nkeys;
/* kafka.* defaults, NULL-terminated name/value pairs. */
extern const char *const cfg_kafka_defaults[];

/* config.c */
/* Writes "<where>: <key>: <reason>" (parts that are NULL are left out); returns -1. */
__attribute__((format(printf, 5, 6))) int cfg_fail(char *errstr, size_t errstr_size,
                                                   const char *where, const char *key,
                                                   const char *fmt, ...);
const cfg_key_t *cfg_key_find(const char *name);
/* CHURNSTREAM_ + key in upper case with '.' -> '_'. */
void cfg_env_name(const char *key, char *buf, size_t size);
/* The table key nearest to name (a likely typo), or NULL; as_env compares variable names. */
const cfg_key_t *cfg_key_suggest(const char *name, int as_env);

/* config_value.c */
/* Parses value for key k and stores it, remembering where it came from (NULL: a default);
 * -1 with errstr on a bad value, SET_OOM on out of memory. Nothing is stored on error. */
int cfg_key_set(cfg_t *cfg, const cfg_key_t *k, const char *value, const char *where, char *errstr,
                size_t errstr_size);
void cfg_format_duration(char *buf, size_t size, int64_t ms);
void cfg_enum_name(const char *choices, int idx, char *buf, size_t size);
void cfg_format_range(const cfg_key_t *k, char *buf, size_t size);
const char *cfg_type_name(cfg_type_t t);
int cfg_kafka_prop_is_secret(const char *prop);
void cfg_redact(char *buf, const char *secret);
/* Index of kafka property prop in cfg's kafka list, or -1. */
int cfg_kafka_find(const cfg_t *cfg, const char *prop);

#endif
