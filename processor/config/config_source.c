/* Configuration sources (a file, the environment) and the librdkafka configurations built
 * from a loaded configuration. */
#include "config_internal.h"

#include <librdkafka/rdkafka.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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
        return cfg_fail(errstr, errstr_size, path, NULL, "cannot open config file: %s",
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
                rc = cfg_fail(errstr, errstr_size, where, NULL,
                              "%.*s: expected key = value (the line is not shown: it may hold a "
                              "secret)",
                              (int)kl, s);
            else
                rc = cfg_fail(errstr, errstr_size, where, NULL,
                              "expected key = value (the line is not shown: it may hold a secret)");
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        if (parse_file_value(&value) != 0) {
            rc =
                cfg_fail(errstr, errstr_size, where, key,
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
        rc = cfg_fail(errstr, errstr_size, path, NULL, "read error: %s", strerror(errno));
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
            return cfg_fail(errstr, errstr_size, NULL, NULL,
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
        for (size_t i = 0; i < cfg_nkeys && !k; i++) {
            cfg_env_name(cfg_keys[i].name, cand, sizeof cand);
            if (strcmp(cand, name) == 0)
                k = &cfg_keys[i];
        }
        if (!k) {
            const cfg_key_t *near = cfg_key_suggest(name, 1);
            if (near) {
                cfg_env_name(near->name, cand, sizeof cand);
                return cfg_fail(errstr, errstr_size, name, NULL,
                                "unknown variable; did you mean %s?", cand);
            }
            return cfg_fail(errstr, errstr_size, name, NULL,
                            "unknown variable (see churnstream --help)");
        }
        if (cfg_key_set(cfg, k, value, name, errstr, errstr_size) != 0)
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
    if (cfg_kafka_prop_is_secret(prop))
        cfg_redact(rderr, value);
    return cfg_fail(errstr, errstr_size, NULL, NULL, "kafka.%s: %s", prop, rderr);
}

/* Producers skip group.id (a consumer property librdkafka warns about on a producer). */
static rd_kafka_conf_t *kafka_conf(const cfg_t *cfg, const char *const *extra, int producer,
                                   char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        cfg_fail(errstr, errstr_size, NULL, NULL, "out of memory");
        return NULL;
    }
    for (const char *const *p = cfg_kafka_defaults; *p; p += 2)
        if (!(producer && strcmp(p[0], "group.id") == 0) &&
            conf_apply(conf, p[0], p[1], errstr, errstr_size) != 0)
            goto err;
    for (const char *const *p = extra; p && p[0]; p += 2) {
        if (!p[1]) {
            cfg_fail(errstr, errstr_size, NULL, NULL, "kafka.%s: missing value", p[0]);
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
