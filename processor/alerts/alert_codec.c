/* Alerts on the wire: one-line JSON (replay's alerts file, logs) and Avro binary of
 * schemas/alert.avsc in the codec's three framings. The record is written by hand into a
 * fixed buffer (the same primitives as the event encoder): no allocation per alert.
 * tests/python/test_alert_avro.py checks the bytes against fastavro. */
#include "alert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alert_avsc.h" /* defines cs_alert_avsc_json[] */
#include "codec_internal.h"
#include "numfmt.h"

/* ---- JSON ---- */

typedef struct jbuf_s {
    char *p;
    size_t len, cap;
    int full;
} jbuf_t;

static void jput(jbuf_t *b, const char *s, size_t n)
{
    if (b->full || b->len + n >= b->cap) {
        b->full = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void jputs(jbuf_t *b, const char *s)
{
    jput(b, s, strlen(s));
}

static void jstr(jbuf_t *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    jput(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jput(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            jput(b, esc, 6);
            i++;
        } else {
            size_t len = ev_utf8_seq_len(u + i, n - i);
            if (len == 0) {
                jput(b, "\\ufffd", 6); /* one invalid byte: the replacement character */
                i++;
            } else {
                jput(b, s + i, len);
                i += len;
            }
        }
    }
    jput(b, "\"", 1);
}

static int jnum(jbuf_t *b, double v)
{
    if (!isfinite(v))
        return -1;
    char num[32];
    int n = nf_shortest(num, sizeof num, v);
    jput(b, num, (size_t)n);
    return 0;
}

static int jlong(jbuf_t *b, int64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);
    jput(b, num, (size_t)n);
    return 0;
}

int alert_to_json(const alert_t *a, char *buf, size_t cap)
{
    if (cap == 0 || a->n_factors < 0 || a->n_factors > ALERT_TOP_FACTORS)
        return -1;
    jbuf_t b = {buf, 0, cap, 0};
    int bad = 0;
    jputs(&b, "{\"alert_id\":");
    jstr(&b, a->alert_id);
    jputs(&b, ",\"user_id\":");
    jstr(&b, a->user_id);
    jputs(&b, ",\"event_time\":");
    jlong(&b, a->event_time_ms);
    jputs(&b, ",\"churn_probability\":");
    bad |= jnum(&b, a->churn_probability);
    jputs(&b, ",\"risk_bucket\":");
    jstr(&b, alert_bucket_name(a->risk_bucket));
    jputs(&b, ",\"segment_id\":");
    jlong(&b, a->segment_id);
    jputs(&b, ",\"segment_label\":");
    jstr(&b, a->segment_label);
    jputs(&b, ",\"recommended_action\":");
    jstr(&b, a->recommended_action);
    jputs(&b, ",\"top_factors\":[");
    for (int i = 0; i < a->n_factors; i++) {
        jputs(&b, i ? ",{\"feature\":" : "{\"feature\":");
        jstr(&b, a->top_factors[i].feature ? a->top_factors[i].feature : "");
        jputs(&b, ",\"contribution\":");
        bad |= jnum(&b, a->top_factors[i].contribution);
        jputs(&b, ",\"value\":");
        bad |= jnum(&b, a->top_factors[i].value);
        jputs(&b, ",\"direction\":");
        jstr(&b, a->top_factors[i].direction ? a->top_factors[i].direction : "");
        jputs(&b, "}");
    }
    jputs(&b, "],\"model_version\":");
    jlong(&b, a->model_version);
    jputs(&b, ",\"arm\":");
    jstr(&b, alert_arm_name(a->arm));
    jputs(&b, ",\"features\":{");
    for (int i = 0; i < FEAT_DIM; i++) {
        if (i)
            jputs(&b, ",");
        jstr(&b, feat_info[i].name);
        jputs(&b, ":");
        bad |= jnum(&b, a->features[i]);
    }
    jputs(&b, "},\"kind\":");
    jstr(&b, alert_kind_name(a->kind));
    jputs(&b, ",\"trigger\":");
    jstr(&b, alert_trigger_name(a->trigger));
    jputs(&b, ",\"created_at\":");
    jlong(&b, a->created_at_ms);
    jputs(&b, "}");
    if (bad || b.full)
        return -1;
    buf[b.len] = '\0';
    return (int)b.len;
}

/* ---- Avro ---- */

/* Bound on one body: fixed-size strings at their capacity, every varint at 10 bytes, and
 * feature names measured in alert_encoder_new (at most ALERT_NAME_MAX bytes each). */
#define ALERT_NAME_MAX      64
#define ALERT_DIRECTION_MAX 16 /* "falling" is the longest word the policy writes */
#define ALERT_BODY_MAX                                                                             \
    ((10 + ALERT_ID_LEN) + (10 + EV_USER_ID_MAX) + 10 + 8 + 10 + 10 +                              \
     (10 + sizeof(((alert_t *)0)->segment_label)) +                                                \
     (10 + sizeof(((alert_t *)0)->recommended_action)) +                                           \
     (10 + ALERT_TOP_FACTORS * (10 + ALERT_NAME_MAX + 8 + 8 + 10 + ALERT_DIRECTION_MAX) + 10) +    \
     10 + 10 + (10 + FEAT_DIM * (10 + ALERT_NAME_MAX + 8) + 10) + 10 + 10 + 10)

struct alert_encoder_s {
    ev_wire_t wire;
    size_t header_len;
    uint64_t fingerprint;
    uint8_t buf[CS_WIRE_HEADER_MAX + ALERT_BODY_MAX];
};

alert_encoder_t *alert_encoder_new(ev_wire_t framing, int32_t schema_id, char *errstr,
                                   size_t errstr_size)
{
    if (framing != EV_WIRE_CONFLUENT && framing != EV_WIRE_SINGLE_OBJECT &&
        framing != EV_WIRE_PLAIN) {
        snprintf(errstr, errstr_size,
                 "alert encoder needs confluent, single-object or plain "
                 "framing");
        return NULL;
    }
    for (int i = 0; i < FEAT_DIM; i++) {
        if (strlen(feat_info[i].name) > ALERT_NAME_MAX) {
            snprintf(errstr, errstr_size, "feature name %s is over %d bytes", feat_info[i].name,
                     ALERT_NAME_MAX);
            return NULL;
        }
    }
    /* The schema is parsed once, for its fingerprint; plain and Confluent framing do not
     * need it, but parsing it always proves the built-in schema sound at start-up. */
    avro_schema_t schema = NULL;
    if (avro_schema_from_json_length(cs_alert_avsc_json, strlen(cs_alert_avsc_json), &schema) !=
        0) {
        snprintf(errstr, errstr_size, "built-in schemas/alert.avsc: %s", avro_strerror());
        return NULL;
    }
    uint64_t fp = 0;
    int rc = cs_schema_fingerprint(schema, &fp);
    avro_schema_decref(schema);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "cannot fingerprint the built-in schemas/alert.avsc");
        return NULL;
    }
    alert_encoder_t *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    e->wire = framing;
    e->fingerprint = fp;
    e->header_len = cs_wire_header(framing, schema_id, fp, e->buf);
    return e;
}

static uint8_t *put_cstr(uint8_t *p, const char *s, size_t cap)
{
    return cs_put_string(p, s, strnlen(s, cap));
}

int alert_encode(alert_encoder_t *enc, const alert_t *a, const void **buf, size_t *len)
{
    if (a->n_factors < 0 || a->n_factors > ALERT_TOP_FACTORS || a->risk_bucket < ALERT_LOW ||
        a->risk_bucket > ALERT_HIGH || (a->arm != ALERT_TREATMENT && a->arm != ALERT_HOLDOUT) ||
        a->kind < ALERT_AT_RISK || a->kind > ALERT_KIND_UNKNOWN || a->trigger < ALERT_BY_TICK ||
        a->trigger > ALERT_TRIGGER_UNKNOWN || a->alert_id[0] == '\0')
        return -1;
    uint8_t *p = enc->buf + enc->header_len;
    p = put_cstr(p, a->alert_id, ALERT_ID_LEN);
    p = put_cstr(p, a->user_id, EV_USER_ID_MAX);
    p = cs_put_long(p, a->event_time_ms);
    p = cs_put_double(p, a->churn_probability);
    p = cs_put_long(p, (int64_t)a->risk_bucket); /* symbol order = alert_bucket_t order */
    p = cs_put_long(p, a->segment_id);
    p = put_cstr(p, a->segment_label, sizeof a->segment_label - 1);
    p = put_cstr(p, a->recommended_action, sizeof a->recommended_action - 1);
    if (a->n_factors > 0) { /* one block of n items; an empty array is the end marker alone */
        p = cs_put_long(p, a->n_factors);
        for (int i = 0; i < a->n_factors; i++) {
            const char *name = a->top_factors[i].feature ? a->top_factors[i].feature : "";
            p = put_cstr(p, name, ALERT_NAME_MAX);
            p = cs_put_double(p, a->top_factors[i].contribution);
            p = cs_put_double(p, a->top_factors[i].value);
            const char *dir = a->top_factors[i].direction ? a->top_factors[i].direction : "";
            p = put_cstr(p, dir, ALERT_DIRECTION_MAX);
        }
    }
    p = cs_put_long(p, 0);
    p = cs_put_long(p, a->model_version);
    p = cs_put_long(p, (int64_t)a->arm); /* symbol order = alert_arm_t order */
    p = cs_put_long(p, FEAT_DIM);
    for (int i = 0; i < FEAT_DIM; i++) {
        p = put_cstr(p, feat_info[i].name, ALERT_NAME_MAX);
        p = cs_put_double(p, a->features[i]);
    }
    p = cs_put_long(p, 0);
    p = cs_put_long(p, (int64_t)a->kind);    /* symbol order = alert_kind_t order */
    p = cs_put_long(p, (int64_t)a->trigger); /* symbol order = alert_trigger_kind_t order */
    p = cs_put_long(p, a->created_at_ms);
    *buf = enc->buf;
    *len = (size_t)(p - enc->buf);
    return 0;
}

uint64_t alert_encoder_fingerprint(const alert_encoder_t *enc)
{
    return enc->fingerprint;
}

void alert_encoder_destroy(alert_encoder_t *enc)
{
    free(enc);
}
