/* Writer-schema resolution for ChurnAlert (alert_resolve.h). Each writer schema gets the
 * codec's bounds-checking walk (hostile input never reaches Avro-C unchecked) and an Avro-C
 * resolved writer into a value of the built-in schema; the resolved value is re-encoded in
 * the built-in schema and decoded by alert_decode(), so the field checks live in one place.
 * Avro-C copies enum indexes without looking at names, so a writer whose RiskBucket or Arm
 * symbols differ from the built-in ones is refused when it is added. */
#include "alert_resolve.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "log.h"

extern const char cs_alert_avsc_json[];

#define AR_REENCODE_MAX (64 * 1024) /* a re-encoded alert is a few hundred bytes */

typedef struct {
    char name[256]; /* file name, for messages */
    int32_t id;     /* Confluent id, -1 = none */
    uint64_t fingerprint;
    avro_schema_t writer;
    cs_walk_t *walk;
    avro_value_iface_t *resolver;
    avro_value_t resolved;
    int have_resolved;
} ar_writer_t;

struct ar_s {
    alert_decoder_t *dec;
    avro_schema_t reader;
    avro_value_iface_t *reader_iface;
    avro_value_t reader_value;
    int have_reader_value;
    avro_reader_t mem;
    ar_writer_t *w;
    size_t nw;
    char *scratch; /* re-encoded datum */
};

static void writer_free(ar_writer_t *w)
{
    if (w->have_resolved)
        avro_value_decref(&w->resolved);
    if (w->resolver)
        avro_value_iface_decref(w->resolver);
    cs_walk_destroy(w->walk);
    if (w->writer)
        avro_schema_decref(w->writer);
}

void ar_destroy(ar_t *ar)
{
    if (!ar)
        return;
    for (size_t i = 0; i < ar->nw; i++)
        writer_free(&ar->w[i]);
    free(ar->w);
    if (ar->have_reader_value)
        avro_value_decref(&ar->reader_value);
    if (ar->reader_iface)
        avro_value_iface_decref(ar->reader_iface);
    if (ar->reader)
        avro_schema_decref(ar->reader);
    if (ar->mem)
        avro_reader_free(ar->mem);
    alert_decoder_destroy(ar->dec);
    free(ar->scratch);
    free(ar);
}

size_t ar_writer_count(const ar_t *ar)
{
    return ar->nw;
}

/* The enum schema of a record field (NULL when it is not an enum). */
static avro_schema_t field_enum(avro_schema_t rec, const char *field)
{
    avro_schema_t s = avro_schema_record_field_get(rec, field);
    return s && is_avro_enum(s) ? s : NULL;
}

static int same_symbols(avro_schema_t a, avro_schema_t b)
{
    int n = avro_schema_enum_number_of_symbols(a);
    if (n != avro_schema_enum_number_of_symbols(b))
        return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(avro_schema_enum_get(a, i), avro_schema_enum_get(b, i)) != 0)
            return 0;
    return 1;
}

int ar_add_writer(ar_t *ar, const char *json, int32_t id, const char *name, char *errstr,
                  size_t errstr_size)
{
    ar_writer_t w;
    memset(&w, 0, sizeof w);
    snprintf(w.name, sizeof w.name, "%s", name);
    w.id = id;
    if (avro_schema_from_json_length(json, strlen(json), &w.writer) != 0) {
        snprintf(errstr, errstr_size, "%s: not an Avro schema: %s", name, avro_strerror());
        return -1;
    }
    if (!is_avro_record(w.writer) || strcmp(avro_schema_name(w.writer), "ChurnAlert") != 0) {
        snprintf(errstr, errstr_size, "%s: not a ChurnAlert record schema", name);
        goto fail;
    }
    static const char *const enums[] = {"risk_bucket", "arm"};
    for (int i = 0; i < 2; i++) {
        avro_schema_t we = field_enum(w.writer, enums[i]), re = field_enum(ar->reader, enums[i]);
        if (!we || !re || !same_symbols(we, re)) {
            snprintf(errstr, errstr_size,
                     "%s: field %s: the enum symbols must be those of schemas/alert.avsc, in "
                     "the same order",
                     name, enums[i]);
            goto fail;
        }
    }
    if (cs_schema_fingerprint(w.writer, &w.fingerprint) != 0) {
        snprintf(errstr, errstr_size, "%s: cannot fingerprint the schema", name);
        goto fail;
    }
    w.walk = cs_walk_new(w.writer, errstr, errstr_size);
    if (!w.walk)
        goto fail;
    w.resolver = avro_resolved_writer_new(w.writer, ar->reader);
    if (!w.resolver) {
        snprintf(errstr, errstr_size, "%s: does not resolve against schemas/alert.avsc: %s", name,
                 avro_strerror());
        goto fail;
    }
    if (avro_resolved_writer_new_value(w.resolver, &w.resolved) != 0) {
        snprintf(errstr, errstr_size, "%s: resolved value: %s", name, avro_strerror());
        goto fail;
    }
    w.have_resolved = 1;
    avro_resolved_writer_set_dest(&w.resolved, &ar->reader_value);
    ar_writer_t *nw = realloc(ar->w, (ar->nw + 1) * sizeof *nw);
    if (!nw) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    ar->w = nw;
    /* the resolved value holds a pointer to reader_value, not to w: moving w is safe */
    ar->w[ar->nw++] = w;
    return 0;
fail:
    writer_free(&w);
    return -1;
}

static int load_dir(ar_t *ar, const char *dir, char *errstr, size_t errstr_size)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(errstr, errstr_size, "alerts.schemas_dir %s: cannot open the directory", dir);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".avsc") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) {
            snprintf(errstr, errstr_size, "%s: cannot open", path);
            rc = -1;
            break;
        }
        char *json = NULL;
        size_t cap = 0;
        ssize_t got = getdelim(&json, &cap, '\0', f);
        fclose(f);
        if (got <= 0) {
            free(json);
            snprintf(errstr, errstr_size, "%s: empty or unreadable", path);
            rc = -1;
            break;
        }
        char *end;
        long id = strtol(e->d_name, &end, 10);
        int32_t sid = (end != e->d_name && strcmp(end, ".avsc") == 0 && id >= 0 && id <= INT32_MAX)
                          ? (int32_t)id
                          : -1;
        /* Another record (an Event schema kept beside) is not ours: skipped, not an error. */
        avro_schema_t probe = NULL;
        if (avro_schema_from_json_length(json, strlen(json), &probe) == 0 &&
            is_avro_record(probe) && strcmp(avro_schema_name(probe), "ChurnAlert") != 0) {
            log_debug("compose", "%s: not a ChurnAlert schema, skipped", path);
        } else {
            rc = ar_add_writer(ar, json, sid, path, errstr, errstr_size);
        }
        if (probe)
            avro_schema_decref(probe);
        free(json);
    }
    closedir(d);
    return rc;
}

ar_t *ar_new(const char *dir, char *errstr, size_t errstr_size)
{
    static const char dummy[1];
    ar_t *ar = calloc(1, sizeof *ar);
    if (!ar || !(ar->scratch = malloc(AR_REENCODE_MAX))) {
        snprintf(errstr, errstr_size, "out of memory");
        ar_destroy(ar);
        return NULL;
    }
    if (!(ar->dec = alert_decoder_new(errstr, errstr_size)))
        goto fail;
    if (avro_schema_from_json_length(cs_alert_avsc_json, strlen(cs_alert_avsc_json), &ar->reader) !=
        0) {
        snprintf(errstr, errstr_size, "built-in schemas/alert.avsc: %s", avro_strerror());
        goto fail;
    }
    ar->reader_iface = avro_generic_class_from_schema(ar->reader);
    if (!ar->reader_iface || avro_generic_value_new(ar->reader_iface, &ar->reader_value) != 0) {
        snprintf(errstr, errstr_size, "avro generic value: %s", avro_strerror());
        goto fail;
    }
    ar->have_reader_value = 1;
    if (!(ar->mem = avro_reader_memory(dummy, 0))) {
        snprintf(errstr, errstr_size, "avro_reader_memory: %s", avro_strerror());
        goto fail;
    }
    if (dir && *dir && load_dir(ar, dir, errstr, errstr_size) != 0)
        goto fail;
    return ar;
fail:
    ar_destroy(ar);
    return NULL;
}

/* Reads body (no framing) with writer w into the reader value, re-encodes it in the built-in
 * schema and decodes that. Returns 0 or -1 with why set. */
static int via_writer(ar_t *ar, ar_writer_t *w, const uint8_t *body, size_t len, alert_t *out,
                      char *why, size_t why_size)
{
    int64_t used = cs_walk_check(w->walk, body, len, why, why_size);
    if (used < 0)
        return -1;
    if ((size_t)used != len) {
        snprintf(why, why_size, "%s: %zu trailing bytes after the record", w->name,
                 len - (size_t)used);
        return -1;
    }
    avro_reader_memory_set_source(ar->mem, (const char *)body, (int64_t)len);
    avro_value_reset(&ar->reader_value);
    if (avro_value_read(ar->mem, &w->resolved) != 0) {
        snprintf(why, why_size, "%s: avro: %s", w->name, avro_strerror());
        return -1;
    }
    avro_writer_t mw = avro_writer_memory(ar->scratch, AR_REENCODE_MAX);
    if (!mw) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    int rc = avro_value_write(mw, &ar->reader_value);
    int64_t n = avro_writer_tell(mw);
    avro_writer_free(mw);
    if (rc != 0) {
        snprintf(why, why_size, "%s: re-encoding: %s", w->name, avro_strerror());
        return -1;
    }
    return alert_decode(ar->dec, ar->scratch, (size_t)n, out, why, why_size);
}

int ar_decode(ar_t *ar, const void *buf, size_t len, alert_t *out, char *why, size_t why_size)
{
    if (alert_decode(ar->dec, buf, len, out, why, why_size) == 0)
        return 0;
    if (ar->nw == 0 || !buf || len == 0)
        return -1;
    char first[256];
    snprintf(first, sizeof first, "%s", why);
    const uint8_t *b = buf;
    ar_writer_t *named = NULL;
    int has_name = 0;
    if (b[0] == 0x00 && len >= 5) {
        uint32_t id = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
        for (size_t i = 0; i < ar->nw && !named; i++)
            if (ar->w[i].id >= 0 && (uint32_t)ar->w[i].id == id)
                named = &ar->w[i];
        b += 5;
        len -= 5;
    } else if (len >= 10 && b[0] == 0xC3 && b[1] == 0x01) {
        uint64_t fp = 0;
        for (int i = 7; i >= 0; i--)
            fp = fp << 8 | b[2 + i];
        for (size_t i = 0; i < ar->nw && !named; i++)
            if (ar->w[i].fingerprint == fp)
                named = &ar->w[i];
        has_name = 1; /* a fingerprint is exact: no guessing */
        b += 10;
        len -= 10;
    }
    if (named)
        return via_writer(ar, named, b, len, out, why, why_size);
    if (has_name) {
        snprintf(why, why_size, "%s; no schema in alerts.schemas_dir has that fingerprint", first);
        return -1;
    }
    /* plain, or a Confluent id no file names: the walk's exact length check picks the one */
    for (size_t i = 0; i < ar->nw; i++) {
        if (via_writer(ar, &ar->w[i], b, len, out, why, why_size) == 0)
            return 0;
        log_debug("compose", "alert not read with %s: %s", ar->w[i].name, why);
    }
    snprintf(why, why_size, "%s; none of the %zu schemas in alerts.schemas_dir reads it either",
             first, ar->nw);
    return -1;
}
