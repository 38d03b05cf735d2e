/* ChurnAlert from the wire back into an alert_t (for `churnstream tail` and tests): framing
 * auto-detected like the event decoder, the bytes walked by the codec's bounds checker
 * before Avro-C reads them into a generic value, and every length checked again on copy. */
#include "alert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

/* The built-in schemas/alert.avsc; the generated header that defines it is included once,
 * by alert_codec.c. */
extern const char cs_alert_avsc_json[];

/* Longest factor name kept: the encoder refuses longer names (ALERT_NAME_MAX there). */
#define ALERT_DECODE_NAME_MAX 64

struct alert_decoder_s {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    int have_value;
    avro_reader_t mem; /* one memory reader, re-pointed at each message */
    cs_walk_t *walk;
    uint64_t fingerprint;
    /* top_factors[i].feature of the last decoded alert points here */
    char names[ALERT_TOP_FACTORS][ALERT_DECODE_NAME_MAX + 1];
    char dirs[ALERT_TOP_FACTORS][17]; /* and .direction here (the encoder writes <= 16) */
};

alert_decoder_t *alert_decoder_new(char *errstr, size_t errstr_size)
{
    static const char dummy[1];
    alert_decoder_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (avro_schema_from_json_length(cs_alert_avsc_json, strlen(cs_alert_avsc_json), &d->schema) !=
        0) {
        snprintf(errstr, errstr_size, "built-in schemas/alert.avsc: %s", avro_strerror());
        goto fail;
    }
    if (cs_schema_fingerprint(d->schema, &d->fingerprint) != 0) {
        snprintf(errstr, errstr_size, "cannot fingerprint the built-in schemas/alert.avsc");
        goto fail;
    }
    d->walk = cs_walk_new(d->schema, errstr, errstr_size);
    if (!d->walk)
        goto fail;
    d->iface = avro_generic_class_from_schema(d->schema);
    if (!d->iface || avro_generic_value_new(d->iface, &d->value) != 0) {
        snprintf(errstr, errstr_size, "avro generic value: %s", avro_strerror());
        goto fail;
    }
    d->have_value = 1;
    d->mem = avro_reader_memory(dummy, 0);
    if (!d->mem) {
        snprintf(errstr, errstr_size, "avro_reader_memory: %s", avro_strerror());
        goto fail;
    }
    return d;
fail:
    alert_decoder_destroy(d);
    return NULL;
}

void alert_decoder_destroy(alert_decoder_t *d)
{
    if (!d)
        return;
    if (d->have_value)
        avro_value_decref(&d->value);
    if (d->iface)
        avro_value_iface_decref(d->iface);
    if (d->mem)
        avro_reader_free(d->mem);
    cs_walk_destroy(d->walk);
    if (d->schema)
        avro_schema_decref(d->schema);
    free(d);
}

/* Copies a string field into dst (cap bytes with the NUL). Avro-C's size counts the NUL it
 * appends; a string with an embedded NUL or longer than the destination is refused rather
 * than silently cut, so what tail prints is what was sent. */
static int get_str(avro_value_t *rec, const char *field, char *dst, size_t cap, char *why,
                   size_t why_size)
{
    avro_value_t v;
    const char *s = NULL;
    size_t size = 0;
    if (avro_value_get_by_name(rec, field, &v, NULL) != 0 ||
        avro_value_get_string(&v, &s, &size) != 0 || !s || size == 0) {
        snprintf(why, why_size, "%s: not a string", field);
        return -1;
    }
    size_t n = size - 1;
    if (n >= cap || memchr(s, '\0', n)) {
        snprintf(why, why_size, "%s: %zu bytes or an embedded NUL (at most %zu)", field, n,
                 cap - 1);
        return -1;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int get_long(avro_value_t *rec, const char *field, int64_t *out)
{
    avro_value_t v;
    return avro_value_get_by_name(rec, field, &v, NULL) != 0 || avro_value_get_long(&v, out) != 0
               ? -1
               : 0;
}

static int get_int(avro_value_t *rec, const char *field, int32_t *out)
{
    avro_value_t v;
    return avro_value_get_by_name(rec, field, &v, NULL) != 0 || avro_value_get_int(&v, out) != 0
               ? -1
               : 0;
}

static int get_double(avro_value_t *rec, const char *field, double *out)
{
    avro_value_t v;
    return avro_value_get_by_name(rec, field, &v, NULL) != 0 || avro_value_get_double(&v, out) != 0
               ? -1
               : 0;
}

static int get_enum(avro_value_t *rec, const char *field, int *out)
{
    avro_value_t v;
    return avro_value_get_by_name(rec, field, &v, NULL) != 0 || avro_value_get_enum(&v, out) != 0
               ? -1
               : 0;
}

/* Fills *a from the decoded record. Factor names land in d->names. */
static int extract(alert_decoder_t *d, alert_t *a, char *why, size_t why_size)
{
    avro_value_t *rec = &d->value;
    memset(a, 0, sizeof *a);
    if (get_str(rec, "alert_id", a->alert_id, sizeof a->alert_id, why, why_size) ||
        get_str(rec, "user_id", a->user_id, sizeof a->user_id, why, why_size) ||
        get_str(rec, "segment_label", a->segment_label, sizeof a->segment_label, why, why_size) ||
        get_str(rec, "recommended_action", a->recommended_action, sizeof a->recommended_action, why,
                why_size))
        return -1;
    /* An empty id cannot be told from Confluent framing in a plain record (its length byte
     * would be 0x00, alert_decode below), and the daemon never writes one: refused in every
     * framing, so whatever decodes also encodes and decodes again. */
    if (a->alert_id[0] == '\0') {
        snprintf(why, why_size, "alert_id: empty");
        return -1;
    }
    /* The id goes back into events (`respond`), whose decoder refuses ids that are not UTF-8:
     * refused here too, so a foreign alert fails where it is read, not as a DLQ entry later. */
    size_t bad_at = 0;
    if (!ev_utf8_valid(a->user_id, strlen(a->user_id), &bad_at)) {
        snprintf(why, why_size, "user_id: not UTF-8 (byte %zu)", bad_at);
        return -1;
    }
    int32_t seg = 0;
    int bucket = 0, arm = 0, kind = 0, trigger = 0;
    if (get_long(rec, "event_time", &a->event_time_ms) ||
        get_long(rec, "created_at", &a->created_at_ms) || get_enum(rec, "kind", &kind) ||
        get_enum(rec, "trigger", &trigger) ||
        get_double(rec, "churn_probability", &a->churn_probability) ||
        get_enum(rec, "risk_bucket", &bucket) || get_int(rec, "segment_id", &seg) ||
        get_long(rec, "model_version", &a->model_version) || get_enum(rec, "arm", &arm)) {
        snprintf(why, why_size, "avro: %s", avro_strerror());
        return -1;
    }
    /* The walk already checked symbol indexes against the schema; these casts rely on the
     * symbol order = enum order that the encoder relies on too. */
    a->risk_bucket = (alert_bucket_t)bucket;
    a->arm = (alert_arm_t)arm;
    a->kind = (alert_kind_t)kind;
    a->trigger = (alert_trigger_kind_t)trigger;
    a->segment_id = seg;

    avro_value_t arr, item, f;
    size_t n = 0;
    if (avro_value_get_by_name(rec, "top_factors", &arr, NULL) != 0 ||
        avro_value_get_size(&arr, &n) != 0) {
        snprintf(why, why_size, "top_factors: %s", avro_strerror());
        return -1;
    }
    if (n > ALERT_TOP_FACTORS) {
        snprintf(why, why_size, "top_factors: %zu items (at most %d)", n, ALERT_TOP_FACTORS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (avro_value_get_by_index(&arr, i, &item, NULL) != 0 ||
            get_str(&item, "feature", d->names[i], sizeof d->names[i], why, why_size) ||
            get_double(&item, "contribution", &a->top_factors[i].contribution) ||
            get_double(&item, "value", &a->top_factors[i].value) ||
            get_str(&item, "direction", d->dirs[i], sizeof d->dirs[i], why, why_size)) {
            if (!why[0])
                snprintf(why, why_size, "top_factors[%zu]: %s", i, avro_strerror());
            return -1;
        }
        a->top_factors[i].feature = d->names[i];
        a->top_factors[i].direction = d->dirs[i];
    }
    a->n_factors = (int)n;

    /* Every known feature must be present (the encoder always writes all of them); keys we
     * do not know are skipped, so a newer producer with more features still decodes. */
    avro_value_t map;
    if (avro_value_get_by_name(rec, "features", &map, NULL) != 0) {
        snprintf(why, why_size, "features: %s", avro_strerror());
        return -1;
    }
    for (int i = 0; i < FEAT_DIM; i++) {
        if (avro_value_get_by_name(&map, feat_info[i].name, &f, NULL) != 0 ||
            avro_value_get_double(&f, &a->features[i]) != 0) {
            snprintf(why, why_size, "features: no \"%s\"", feat_info[i].name);
            return -1;
        }
    }
    return 0;
}

/* Framing detection as in the event decoder: a plain ChurnAlert starts with the alert_id
 * length, and 0x00 (an empty id) or 0xC3 0x01 (length -98) never start one we produce. */
int alert_decode(alert_decoder_t *d, const void *buf, size_t len, alert_t *out, char *why,
                 size_t why_size)
{
    const uint8_t *b = buf;
    why[0] = '\0';
    if (!b || len == 0) {
        snprintf(why, why_size, "empty message");
        return -1;
    }
    if (b[0] == 0x00) {
        /* Confluent: any schema id is taken as schemas/alert.avsc (no registry lookup). */
        if (len < 5) {
            snprintf(why, why_size, "Confluent framing shorter than its 5-byte header");
            return -1;
        }
        b += 5;
        len -= 5;
    } else if (len >= 2 && b[0] == 0xC3 && b[1] == 0x01) {
        if (len < 10) {
            snprintf(why, why_size, "single-object framing shorter than its 10-byte header");
            return -1;
        }
        uint64_t fp = 0;
        for (int i = 7; i >= 0; i--)
            fp = fp << 8 | b[2 + i];
        if (fp != d->fingerprint) {
            snprintf(why, why_size, "schema fingerprint %016llx is not schemas/alert.avsc",
                     (unsigned long long)fp);
            return -1;
        }
        b += 10;
        len -= 10;
    }
    int64_t used = cs_walk_check(d->walk, b, len, why, why_size);
    if (used < 0)
        return -1;
    if ((size_t)used != len) {
        snprintf(why, why_size, "%zu trailing bytes after the record", len - (size_t)used);
        return -1;
    }
    avro_reader_memory_set_source(d->mem, (const char *)b, (int64_t)len);
    if (avro_value_read(d->mem, &d->value) != 0) {
        snprintf(why, why_size, "avro: %s", avro_strerror());
        return -1;
    }
    return extract(d, out, why, why_size);
}
