/* The composer (compose.h): prompts, the guardrail decision, the circuit breaker, the
 * run's counts, and the RetentionMessage wire and JSON forms. What leaves the process for
 * the endpoint is only this alert's risk bucket, segment label, recommended action, kind and
 * (llm.facts=user) the names of its top factors: no user id, no probability, no raw feature
 * value, no event. */
#include "compose.h"

#include <avro.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec_internal.h"
#include "llm_client.h"
#include "log.h"

/* The built-in schemas/retention_message.avsc (generated header, included once here). */
#include "retention_message_avsc.h"

struct cm_composer_s {
    llm_t *llm;
    char *model;
    cfg_llm_facts_t facts; /* llm.facts: user or segment-level prompts */
    int breaker_failures;
    int64_t breaker_cooldown_ms;
    int consecutive_failures;
    int64_t open_until_ms; /* breaker open while now < this */
    int breaker_is_open;
    int64_t (*now_ms)(void);
    cm_counts_t counts;
    int64_t *lat; /* latencies of asked alerts */
    size_t nlat, caplat;
};

/* Sentences of the model's answer kept (cg_first_sentences): the prompts ask for two. */
#define CM_MESSAGE_SENTENCES     2
#define CM_EXPLANATION_SENTENCES 3

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cm_composer_t *cm_new(const cfg_t *cfg, int64_t (*now_ms)(void), char *errstr, size_t errstr_size)
{
    cm_composer_t *cm = calloc(1, sizeof *cm);
    if (!cm || !(cm->model = strdup(cfg->llm_model))) {
        snprintf(errstr, errstr_size, "out of memory");
        cm_destroy(cm);
        return NULL;
    }
    cm->llm = llm_new(cfg->llm_url, cfg->llm_model, cfg->llm_api_key, cfg->llm_timeout_ms,
                      cfg->llm_max_tokens, errstr, errstr_size);
    if (!cm->llm) {
        cm_destroy(cm);
        return NULL;
    }
    cm->facts = cfg->llm_facts;
    cm->breaker_failures = cfg->llm_breaker_failures;
    cm->breaker_cooldown_ms = cfg->llm_breaker_cooldown_ms;
    cm->now_ms = now_ms ? now_ms : mono_ms;
    return cm;
}

void cm_destroy(cm_composer_t *cm)
{
    if (!cm)
        return;
    llm_destroy(cm->llm);
    free(cm->model);
    free(cm->lat);
    free(cm);
}

int cm_breaker_open(const cm_composer_t *cm)
{
    return cm->breaker_is_open && cm->now_ms() < cm->open_until_ms;
}

/* Prompts, tuned on SmolLM2-135M (the test model): instructions it can follow in the system
 * message, facts in the user message. It still invents details; the guardrails judge. */
static const char message_system[] =
    "You are a friendly customer care writer. Reply with one or two short warm sentences to "
    "the customer, in plain words, with no numbers, prices, links or names.";
static const char explanation_system[] = "You are a helpful assistant.";

/* The user prompts carry the alert's categorical facts only (see the file comment), names
 * as words without digits (cg_words_of), so the model has no digit to echo. */
static void message_prompt(const alert_t *a, char *out, size_t cap)
{
    char action[sizeof a->recommended_action];
    cg_words_of(a->recommended_action, action, sizeof action);
    snprintf(out, cap,
             "A customer has not visited us for a while (%s churn risk). Invite them back "
             "warmly. We plan a %s.",
             alert_bucket_name(a->risk_bucket), action);
}

/* What the kind adds to a prompt: words only, nothing when unknown (an older alert). */
static const char *kind_words(alert_kind_t k)
{
    return k == ALERT_LAPSED ? ", no recent visit" : k == ALERT_AT_RISK ? ", still active" : "";
}

/* llm.facts=user: the segment and the names of this alert's top factors. */
static void explanation_prompt_user(const alert_t *a, char *out, size_t cap)
{
    char label[sizeof a->segment_label], word[96];
    cg_words_of(a->segment_label, label, sizeof label);
    size_t len = 0;
    int n = snprintf(out, cap,
                     "A customer from the segment \"%s\" may leave; the churn model "
                     "points at",
                     a->segment_id >= 0 && label[0] ? label : "not segmented yet");
    len = n > 0 && (size_t)n < cap ? (size_t)n : cap - 1;
    for (int i = 0; i < a->n_factors && len + 1 < cap; i++) {
        cg_words_of(a->top_factors[i].feature, word, sizeof word);
        n = snprintf(out + len, cap - len, "%s %s", i ? "," : "", word);
        len = n > 0 && (size_t)n < cap - len ? len + (size_t)n : cap - 1;
    }
    if (len + 1 < cap)
        snprintf(out + len, cap - len, "%s. In two sentences, explain why they might leave.",
                 a->n_factors ? "" : " nothing in particular");
}

/* llm.facts=segment: what every customer of the segment shares (label, bucket, action,
 * kind), nothing of this customer's own (no factor, no number, no id). */
static void explanation_prompt_segment(const alert_t *a, char *out, size_t cap)
{
    char label[sizeof a->segment_label], action[sizeof a->recommended_action];
    cg_words_of(a->segment_label, label, sizeof label);
    cg_words_of(a->recommended_action, action, sizeof action);
    snprintf(out, cap,
             "A customer from the segment \"%s\" (%s churn risk%s) may leave; we plan a %s. In "
             "two sentences, explain why customers like this might leave.",
             a->segment_id >= 0 && label[0] ? label : "not segmented yet",
             alert_bucket_name(a->risk_bucket), kind_words(a->kind), action);
}

static void note_latency(cm_composer_t *cm, int64_t ms)
{
    if (cm->nlat == cm->caplat) {
        size_t nc = cm->caplat ? cm->caplat * 2 : 256;
        int64_t *nl = realloc(cm->lat, nc * sizeof *nl);
        if (!nl)
            return; /* a lost sample only skews the summary */
        cm->lat = nl;
        cm->caplat = nc;
    }
    cm->lat[cm->nlat++] = ms;
}

/* Asks for one part; returns CG_OK with the normalized text in out, or the reason. Endpoint
 * outcomes drive the breaker; guardrail rejections do not (the endpoint answered). */
static cg_reason_t ask(cm_composer_t *cm, const char *system, const char *user, int max_sentences,
                       size_t min_len, size_t max_len, const char *approved, char *out, size_t cap,
                       int64_t *latency_ms)
{
    char raw[4096], why[256];
    int64_t ms = 0;
    llm_status_t st = llm_chat(cm->llm, system, user, raw, sizeof raw, &ms, why, sizeof why);
    *latency_ms += ms;
    if (st != LLM_OK) {
        cm->consecutive_failures++;
        log_warn("compose", "endpoint %s after %lld ms: %s (%d consecutive)",
                 st == LLM_ERR_TIMEOUT ? "timeout" : "error", (long long)ms, why,
                 cm->consecutive_failures);
        if (cm->consecutive_failures >= cm->breaker_failures) {
            if (!cm->breaker_is_open)
                cm->counts.breaker_trips++;
            cm->breaker_is_open = 1;
            cm->open_until_ms = cm->now_ms() + cm->breaker_cooldown_ms;
            log_warn("compose", "circuit breaker open for %lld ms: template messages only",
                     (long long)cm->breaker_cooldown_ms);
        }
        return st == LLM_ERR_TIMEOUT ? CG_TIMEOUT : CG_ENDPOINT;
    }
    if (cm->breaker_is_open)
        log_info("compose", "endpoint answered again: circuit breaker closed");
    cm->consecutive_failures = 0;
    cm->breaker_is_open = 0;
    cg_normalize(raw, out, cap);
    cg_first_sentences(out, max_sentences);
    return cg_check(out, min_len, max_len, approved);
}

static void fill_template(const alert_t *a, cm_result_t *r)
{
    if (cg_template_message(a, r->message, sizeof r->message) < 0)
        snprintf(r->message, sizeof r->message, "We would love to see you back.");
    if (cg_template_explanation(a, r->explanation, sizeof r->explanation) < 0)
        snprintf(r->explanation, sizeof r->explanation, "The churn model flags this customer.");
}

void cm_compose(cm_composer_t *cm, const alert_t *a, cm_result_t *r)
{
    char prompt[2048], msg[CG_MESSAGE_MAX * 2], expl[CG_EXPLANATION_MAX * 2], line[1024];
    memset(r, 0, sizeof *r);
    snprintf(r->alert_id, sizeof r->alert_id, "%s", a->alert_id);
    snprintf(r->user_id, sizeof r->user_id, "%s", a->user_id);
    r->part = "";
    r->prompt_version =
        cm->facts == CFG_LLM_FACTS_SEGMENT ? CM_PROMPT_VERSION_SEGMENT : CM_PROMPT_VERSION;
    cg_reason_t why = CG_OK;
    int64_t asked_ms = 0;
    int asked = 0;
    if (cm_breaker_open(cm)) {
        why = CG_BREAKER_OPEN;
    } else {
        /* half-open after the cool-down: this request decides (one failure re-opens) */
        if (cm->breaker_is_open)
            cm->consecutive_failures = cm->breaker_failures - 1;
        asked = 1;
        message_prompt(a, prompt, sizeof prompt);
        why = ask(cm, message_system, prompt, CM_MESSAGE_SENTENCES, CG_MESSAGE_MIN, CG_MESSAGE_MAX,
                  a->recommended_action, msg, sizeof msg, &asked_ms);
        r->part = "message";
        if (why == CG_OK) {
            if (cm->facts == CFG_LLM_FACTS_SEGMENT)
                explanation_prompt_segment(a, prompt, sizeof prompt);
            else
                explanation_prompt_user(a, prompt, sizeof prompt);
            why = ask(cm, explanation_system, prompt, CM_EXPLANATION_SENTENCES, CG_EXPLANATION_MIN,
                      CG_EXPLANATION_MAX, a->recommended_action, expl, sizeof expl, &asked_ms);
            r->part = "explanation";
        }
    }
    r->latency_ms = asked_ms;
    if (asked)
        note_latency(cm, asked_ms);
    cm->counts.total++;
    if (why == CG_OK) {
        int n1 = cg_offer_line(a, line, sizeof line);
        int ok = n1 >= 0 && snprintf(r->message, sizeof r->message, "%s %s", msg, line) <
                                (int)sizeof r->message;
        int n2 = ok ? cg_facts_line(a, line, sizeof line) : -1;
        ok = ok && n2 >= 0 &&
             snprintf(r->explanation, sizeof r->explanation, "%s %s", expl, line) <
                 (int)sizeof r->explanation;
        if (ok) {
            r->from_llm = 1;
            r->part = "";
            cm->counts.llm++;
            return;
        }
        why = CG_TOO_LONG;
    }
    if (why == CG_BREAKER_OPEN || why == CG_ENDPOINT || why == CG_TIMEOUT)
        r->part = "";
    r->reason = why;
    snprintf(r->fallback_reason, sizeof r->fallback_reason, "%s%s%s", cg_reason_name(why),
             *r->part ? ":" : "", r->part);
    fill_template(a, r);
    cm->counts.templ++;
    cm->counts.by_reason[why]++;
}

void cm_counts(const cm_composer_t *cm, cm_counts_t *out)
{
    *out = cm->counts;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

int64_t cm_latency_percentile(const cm_composer_t *cm, double pct)
{
    if (cm->nlat == 0)
        return -1;
    int64_t *s = malloc(cm->nlat * sizeof *s);
    if (!s)
        return -1;
    memcpy(s, cm->lat, cm->nlat * sizeof *s);
    qsort(s, cm->nlat, sizeof *s, cmp_i64);
    /* nearest rank: the smallest value with at least pct% of samples at or below it */
    size_t rank = (size_t)((pct / 100.0) * (double)cm->nlat + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > cm->nlat)
        rank = cm->nlat;
    int64_t v = s[rank - 1];
    free(s);
    return v;
}

void cm_print_summary(const cm_composer_t *cm, FILE *out)
{
    const cm_counts_t *c = &cm->counts;
    fprintf(out,
            "compose: %lld alerts, %lld llm, %lld template (%.1f%% fallback), %lld breaker trips\n",
            c->total, c->llm, c->templ,
            c->total ? 100.0 * (double)c->templ / (double)c->total : 0.0, c->breaker_trips);
    fputs("compose: fallbacks by reason:", out);
    int any = 0;
    for (int i = 1; i < CG_REASON_COUNT; i++)
        if (c->by_reason[i]) {
            fprintf(out, " %s=%lld", cg_reason_name((cg_reason_t)i), c->by_reason[i]);
            any = 1;
        }
    fputs(any ? "\n" : " none\n", out);
    int64_t p50 = cm_latency_percentile(cm, 50), p99 = cm_latency_percentile(cm, 99);
    if (p50 < 0)
        fputs("compose: latency: endpoint never asked\n", out);
    else
        fprintf(out, "compose: latency per alert (%zu asked): p50 %lld ms, p99 %lld ms\n", cm->nlat,
                (long long)p50, (long long)p99);
}

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
