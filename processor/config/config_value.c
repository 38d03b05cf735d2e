/* Configuration values: parsing and formatting of each key type (durations, integers,
 * doubles, booleans, enums), storing a value into cfg_t, and the kafka.* properties kept
 * verbatim (secrets redacted in every message). */
#include "config_internal.h"
#include "numfmt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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
void cfg_format_duration(char *buf, size_t size, int64_t ms)
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
void cfg_enum_name(const char *choices, int idx, char *buf, size_t size)
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
void cfg_format_range(const cfg_key_t *k, char *buf, size_t size)
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
        cfg_format_duration(lo, sizeof lo, (int64_t)k->min);
        cfg_format_duration(hi, sizeof hi, (int64_t)k->max);
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

const char *cfg_type_name(cfg_type_t t)
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

static int key_set_value(cfg_t *cfg, const cfg_key_t *k, const char *value, const char *where,
                         char *errstr, size_t errstr_size);

/* Parses value for key k and stores it, remembering where it came from (unless where is
 * NULL: a default); -1 with errstr on a bad value, SET_OOM on out of memory (errstr set
 * too). Nothing is stored on error. */
int cfg_key_set(cfg_t *cfg, const cfg_key_t *k, const char *value, const char *where, char *errstr,
                size_t errstr_size)
{
    int rc = key_set_value(cfg, k, value, where ? where : "default", errstr, errstr_size);
    if (rc != 0 || !where)
        return rc;
    size_t i = (size_t)(k - cfg_keys);
    char *w = strdup(where);
    if (!w) {
        cfg_fail(errstr, errstr_size, where, k->name, "out of memory");
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
            return cfg_fail(errstr, errstr_size, where, k->name, "expected a non-empty value");
        char *copy = NULL;
        if (*value || !(k->flags & CFG_F_EMPTY_NULL)) {
            copy = strdup(value);
            if (!copy) {
                cfg_fail(errstr, errstr_size, where, k->name, "out of memory");
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
            cfg_format_range(k, range, sizeof range);
            return cfg_fail(errstr, errstr_size, where, k->name, "expected %s, got \"%s\"", range,
                            value);
        }
        if (k->type == CFG_T_INT)
            *(int *)field = (int)i64;
        else
            *(int64_t *)field = i64;
        return 0;
    case CFG_T_UINT64:
        if (parse_uint64(value, &u64) != 0) {
            cfg_format_range(k, range, sizeof range);
            return cfg_fail(errstr, errstr_size, where, k->name, "expected %s, got \"%s\"", range,
                            value);
        }
        *(uint64_t *)field = u64;
        return 0;
    case CFG_T_DOUBLE:
        if (parse_double(value, &d) != 0 || d < k->min || d > k->max) {
            cfg_format_range(k, range, sizeof range);
            return cfg_fail(errstr, errstr_size, where, k->name,
                            "expected a number in %s, got \"%s\"", range, value);
        }
        *(double *)field = d;
        return 0;
    case CFG_T_BOOL:
        if (parse_bool(value, &b) != 0)
            return cfg_fail(errstr, errstr_size, where, k->name, "expected true/false, got \"%s\"",
                            value);
        *(int *)field = b;
        return 0;
    case CFG_T_DURATION: {
        int rc = parse_duration(value, &i64);
        if (rc == -1)
            return cfg_fail(errstr, errstr_size, where, k->name,
                            "expected a duration with a unit (ms, s, m, h, d) like 250ms, 30s, "
                            "5m, 12h, 7d, got \"%s\"",
                            value);
        if (rc == -2 || (double)i64 < k->min || (double)i64 > k->max) {
            cfg_format_range(k, range, sizeof range);
            return cfg_fail(errstr, errstr_size, where, k->name,
                            "expected a duration in %s, got \"%s\"", range, value);
        }
        *(int64_t *)field = i64;
        return 0;
    }
    case CFG_T_ENUM:
        idx = parse_enum(k->choices, value);
        if (idx < 0)
            return cfg_fail(errstr, errstr_size, where, k->name, "expected one of %s, got \"%s\"",
                            k->choices, value);
        *(int *)field = idx;
        return 0;
    }
    return cfg_fail(errstr, errstr_size, where, k->name, "unsupported key type");
}

/* Property names whose values are credentials (sasl.password, ssl.key.password,
 * sasl.oauthbearer.client.secret, inline private keys, ...). */
int cfg_kafka_prop_is_secret(const char *prop)
{
    return strstr(prop, "password") || strstr(prop, "secret") || strstr(prop, "key.pem") ||
           strcmp(prop, "sasl.oauthbearer.config") == 0;
}

/* Masks every occurrence of secret in buf (librdkafka may quote the value in its error).
 * The text only shrinks, so buf stays within its size. */
void cfg_redact(char *buf, const char *secret)
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

int cfg_kafka_find(const cfg_t *cfg, const char *prop)
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
        return cfg_fail(errstr, errstr_size, where, key,
                        "expected a librdkafka property after \"kafka.\", e.g. kafka.client.id");

    /* A scratch conf makes librdkafka judge the name and value now, at load time, instead of
     * when a command builds its client long after the file was read. */
    char rderr[512];
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    if (!scratch)
        return cfg_fail(errstr, errstr_size, where, key, "out of memory");
    rd_kafka_conf_res_t res = rd_kafka_conf_set(scratch, prop, value, rderr, sizeof rderr);
    rd_kafka_conf_destroy(scratch);
    if (res != RD_KAFKA_CONF_OK) {
        if (cfg_kafka_prop_is_secret(prop))
            cfg_redact(rderr, value);
        return cfg_fail(errstr, errstr_size, where, key, "%s", rderr);
    }

    char *v = strdup(value);
    if (!v)
        return cfg_fail(errstr, errstr_size, where, key, "out of memory");
    int i = cfg_kafka_find(cfg, prop);
    if (i >= 0) {
        free(cfg->kafka_values[i]);
        cfg->kafka_values[i] = v;
        return 0;
    }
    if (cfg->kafka_count >= CFG_KAFKA_MAX) {
        free(v);
        return cfg_fail(errstr, errstr_size, where, key, "too many kafka.* properties (at most %d)",
                        CFG_KAFKA_MAX);
    }
    char *k = strdup(prop);
    if (!k) {
        free(v);
        return cfg_fail(errstr, errstr_size, where, key, "out of memory");
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
        return cfg_fail(errstr, errstr_size, where, key, "missing key or value");
    if (strncmp(key, KAFKA_PREFIX, KAFKA_PREFIX_LEN) == 0)
        return kafka_set(cfg, key, value, where, errstr, errstr_size);
    const cfg_key_t *k = cfg_key_find(key);
    if (!k) {
        const cfg_key_t *near = cfg_key_suggest(key, 0);
        if (near)
            return cfg_fail(errstr, errstr_size, where, key, "unknown key; did you mean \"%s\"?",
                            near->name);
        return cfg_fail(errstr, errstr_size, where, key, "unknown key (see churnstream --help)");
    }
    return cfg_key_set(cfg, k, value, where, errstr, errstr_size) == 0 ? 0 : -1;
}
