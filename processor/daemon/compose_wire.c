/* The RetentionMessage record of `churnstream compose` in its two forms, Avro single-object
 * wire (schemas/retention_message.avsc) and one JSON line, and the reader of replay's
 * --alerts-out JSON lines that compose --dry-run answers (compose.h). */
#include "compose.h"

#include <avro.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

/* The built-in schemas/retention_message.avsc (generated header, included once here). */
#include "retention_message_avsc.h"

static const char *result_prompt_version(const cm_result_t *r)
{
    return r->prompt_version ? r->prompt_version : CM_PROMPT_VERSION;
}

char *cm_result_to_json(const cm_result_t *r, const char *model)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "alert_id", r->alert_id,
                          "user_id", r->user_id, "message", r->message, "explanation",
                          r->explanation, "source", r->from_llm ? "llm" : "template", "model",
                          model, "latency_ms", (json_int_t)r->latency_ms, "prompt_version",
                          result_prompt_version(r), "fallback_reason", r->fallback_reason);
    if (!o)
        return NULL; /* invalid UTF-8 in a string */
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

uint64_t cm_schema_fingerprint(void)
{
    static uint64_t fp;
    static int done;
    if (!done) {
        avro_schema_t schema = NULL;
        if (avro_schema_from_json_length(cs_retention_message_avsc_json,
                                         strlen(cs_retention_message_avsc_json), &schema) == 0) {
            if (cs_schema_fingerprint(schema, &fp) != 0)
                fp = 0;
            avro_schema_decref(schema);
        }
        done = 1;
    }
    return fp;
}

int64_t cm_encode(const cm_result_t *r, const char *model, uint8_t *buf, size_t cap)
{
    const char *strs[] = {r->alert_id, r->user_id, r->message, r->explanation};
    const char *pv = result_prompt_version(r);
    size_t need = CS_WIRE_HEADER_MAX + 5 * 10 + 10 + 10 + strlen(model) + strlen(pv) +
                  strlen(r->fallback_reason) + 4 * 10;
    for (int i = 0; i < 4; i++)
        need += strlen(strs[i]);
    if (need > cap)
        return -1;
    uint8_t hdr[CS_WIRE_HEADER_MAX];
    size_t hl = cs_wire_header(EV_WIRE_SINGLE_OBJECT, 0, cm_schema_fingerprint(), hdr);
    memcpy(buf, hdr, hl);
    uint8_t *p = buf + hl;
    for (int i = 0; i < 4; i++)
        p = cs_put_string(p, strs[i], strlen(strs[i]));
    p = cs_put_long(p, r->from_llm ? 0 : 1); /* MessageSource: llm, template */
    p = cs_put_string(p, model, strlen(model));
    p = cs_put_long(p, r->latency_ms);
    p = cs_put_string(p, pv, strlen(pv));
    p = cs_put_string(p, r->fallback_reason, strlen(r->fallback_reason));
    return (int64_t)(p - buf);
}

static int json_str(json_t *o, const char *k, char *dst, size_t cap, char *why, size_t why_size)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (!s) {
        snprintf(why, why_size, "%s: missing or not a string", k);
        return -1;
    }
    if (strlen(s) >= cap) {
        snprintf(why, why_size, "%s: longer than %zu bytes", k, cap - 1);
        return -1;
    }
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

int cm_alert_from_json(const char *line, alert_t *a, char names[][65], char *why, size_t why_size)
{
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    int rc = -1;
    memset(a, 0, sizeof *a);
    if (!o || !json_is_object(o)) {
        snprintf(why, why_size, "not a JSON object: %s", o ? "another value" : jerr.text);
        goto done;
    }
    if (json_str(o, "alert_id", a->alert_id, sizeof a->alert_id, why, why_size) ||
        json_str(o, "user_id", a->user_id, sizeof a->user_id, why, why_size) ||
        json_str(o, "segment_label", a->segment_label, sizeof a->segment_label, why, why_size) ||
        json_str(o, "recommended_action", a->recommended_action, sizeof a->recommended_action, why,
                 why_size))
        goto done;
    if (!a->user_id[0] || !a->alert_id[0]) {
        snprintf(why, why_size, "alert_id and user_id must not be empty");
        goto done;
    }
    json_t *p = json_object_get(o, "churn_probability");
    if (!json_is_number(p) || !(json_number_value(p) >= 0 && json_number_value(p) <= 1)) {
        snprintf(why, why_size, "churn_probability: expected a number in [0, 1]");
        goto done;
    }
    a->churn_probability = json_number_value(p);
    const char *b = json_string_value(json_object_get(o, "risk_bucket"));
    if (b && !strcmp(b, "low"))
        a->risk_bucket = ALERT_LOW;
    else if (b && !strcmp(b, "medium"))
        a->risk_bucket = ALERT_MEDIUM;
    else if (b && !strcmp(b, "high"))
        a->risk_bucket = ALERT_HIGH;
    else {
        snprintf(why, why_size, "risk_bucket: expected low, medium or high");
        goto done;
    }
    const char *arm = json_string_value(json_object_get(o, "arm"));
    if (arm && !strcmp(arm, "treatment"))
        a->arm = ALERT_TREATMENT;
    else if (arm && !strcmp(arm, "holdout"))
        a->arm = ALERT_HOLDOUT;
    else {
        snprintf(why, why_size, "arm: expected treatment or holdout");
        goto done;
    }
    json_t *seg = json_object_get(o, "segment_id");
    if (!json_is_integer(seg) || json_integer_value(seg) < -1 ||
        json_integer_value(seg) > 1000000) {
        snprintf(why, why_size, "segment_id: expected an integer >= -1");
        goto done;
    }
    a->segment_id = (int)json_integer_value(seg);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    a->kind = kind && !strcmp(kind, "at_risk")  ? ALERT_AT_RISK
              : kind && !strcmp(kind, "lapsed") ? ALERT_LAPSED
                                                : ALERT_KIND_UNKNOWN; /* older replays */
    json_t *et = json_object_get(o, "event_time");
    if (json_is_integer(et))
        a->event_time_ms = json_integer_value(et);
    json_t *f = json_object_get(o, "top_factors");
    if (!json_is_array(f) || json_array_size(f) > ALERT_TOP_FACTORS) {
        snprintf(why, why_size, "top_factors: expected an array of at most %d", ALERT_TOP_FACTORS);
        goto done;
    }
    for (size_t i = 0; i < json_array_size(f); i++) {
        json_t *fi = json_array_get(f, i);
        json_t *c = json_object_get(fi, "contribution");
        if (json_str(fi, "feature", names[i], 65, why, why_size) != 0 || !json_is_number(c)) {
            if (json_is_string(json_object_get(fi, "feature")))
                snprintf(why, why_size, "top_factors[%zu]: contribution missing", i);
            goto done;
        }
        a->top_factors[i].feature = names[i];
        a->top_factors[i].contribution = json_number_value(c);
        a->n_factors = (int)i + 1;
    }
    rc = 0;
done:
    json_decref(o);
    return rc;
}
