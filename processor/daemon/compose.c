/* The composer (compose.h): prompts, the guardrail decision, the circuit breaker, the
 * alerts in flight (llm.concurrency jobs, each asking for its message, then its explanation)
 * and the run's counts; the RetentionMessage wire and JSON forms are compose_wire.c's. What
 * leaves the process for the endpoint is only this alert's risk bucket, segment label, recommended
 * action, kind and (llm.facts=user) the names of its top factors: no user id, no probability, no
 * raw feature value, no event. */
#include "compose.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_client.h"
#include "log.h"

/* One alert being answered. Its requests carry the job as their llm tag. */
typedef enum { JOB_FREE = 0, JOB_MESSAGE, JOB_EXPLANATION, JOB_DONE } job_state_t;
typedef struct cm_job_s {
    job_state_t state;
    int probe; /* its first request is the half-open breaker's single probe */
    alert_t a; /* a copy: top_factors point into names */
    char names[ALERT_TOP_FACTORS][65];
    char msg[CG_EXPLANATION_MAX * 2]; /* the model's customer wording, once it passed */
    int64_t asked_ms;                 /* endpoint time of its requests so far */
    int asked;                        /* 1 once the endpoint was asked (breaker not open) */
    void *tag;
    cm_result_t r;
} cm_job_t;

struct cm_composer_s {
    llm_t *llm;
    cm_job_t *jobs; /* llm.concurrency slots */
    int njobs, pending;
    int probe_in_flight; /* half-open: the probe is out, no other alert is taken */
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
    cm->njobs = cfg->llm_concurrency > 0 ? cfg->llm_concurrency : 1;
    if (!(cm->jobs = calloc((size_t)cm->njobs, sizeof *cm->jobs))) {
        snprintf(errstr, errstr_size, "out of memory");
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
    free(cm->jobs);
    free(cm->model);
    free(cm->lat);
    free(cm);
}

const char *cm_model(const cm_composer_t *cm)
{
    return cm->model;
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

/* An endpoint outcome drives the breaker; guardrail rejections do not (it answered). */
static void endpoint_outcome(cm_composer_t *cm, cm_job_t *j, llm_status_t st, int64_t ms,
                             const char *why)
{
    if (j->probe) {
        j->probe = 0;
        cm->probe_in_flight = 0;
    }
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
        return;
    }
    if (cm->breaker_is_open)
        log_info("compose", "endpoint answered again: circuit breaker closed");
    cm->consecutive_failures = 0;
    cm->breaker_is_open = 0;
}

static void fill_template(const alert_t *a, cm_result_t *r)
{
    if (cg_template_message(a, r->message, sizeof r->message) < 0)
        snprintf(r->message, sizeof r->message, "We would love to see you back.");
    if (cg_template_explanation(a, r->explanation, sizeof r->explanation) < 0)
        snprintf(r->explanation, sizeof r->explanation, "The churn model flags this customer.");
}

/* Ends job j: the model's wording (j->msg, expl) with churnstream's lines when why is CG_OK,
 * else the template; counts it. The job waits in JOB_DONE for cm_next(). */
static void finish(cm_composer_t *cm, cm_job_t *j, cg_reason_t why, const char *expl)
{
    const alert_t *a = &j->a;
    cm_result_t *r = &j->r;
    char line[1024];
    j->state = JOB_DONE;
    r->latency_ms = j->asked_ms;
    if (j->asked)
        note_latency(cm, j->asked_ms);
    cm->counts.total++;
    if (why == CG_OK) {
        int n1 = cg_offer_line(a, line, sizeof line);
        int ok = n1 >= 0 && snprintf(r->message, sizeof r->message, "%s %s", j->msg, line) <
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

/* Asks the endpoint for job j's next part (its state says which). A request that cannot even
 * start counts as an endpoint failure and ends the job. */
static void start_part(cm_composer_t *cm, cm_job_t *j)
{
    char prompt[2048], why[256];
    const char *system = message_system;
    if (j->state == JOB_MESSAGE) {
        message_prompt(&j->a, prompt, sizeof prompt);
        j->r.part = "message";
    } else {
        if (cm->facts == CFG_LLM_FACTS_SEGMENT)
            explanation_prompt_segment(&j->a, prompt, sizeof prompt);
        else
            explanation_prompt_user(&j->a, prompt, sizeof prompt);
        system = explanation_system;
        j->r.part = "explanation";
    }
    if (llm_start(cm->llm, system, prompt, j, why, sizeof why) != 0) {
        endpoint_outcome(cm, j, LLM_ERR_ENDPOINT, 0, why);
        finish(cm, j, CG_ENDPOINT, NULL);
    }
}

/* Judges one answer of job j's current part, then asks for the next part or ends the job. */
static void on_answer(cm_composer_t *cm, cm_job_t *j, const llm_answer_t *ans, const char *raw)
{
    char text[CG_EXPLANATION_MAX * 2];
    j->asked_ms += ans->latency_ms;
    endpoint_outcome(cm, j, ans->status, ans->latency_ms, ans->why);
    if (ans->status != LLM_OK) {
        finish(cm, j, ans->status == LLM_ERR_TIMEOUT ? CG_TIMEOUT : CG_ENDPOINT, NULL);
        return;
    }
    int is_msg = j->state == JOB_MESSAGE;
    cg_normalize(raw, text, sizeof text);
    cg_first_sentences(text, is_msg ? CM_MESSAGE_SENTENCES : CM_EXPLANATION_SENTENCES);
    cg_reason_t why =
        cg_check(text, is_msg ? CG_MESSAGE_MIN : CG_EXPLANATION_MIN,
                 is_msg ? CG_MESSAGE_MAX : CG_EXPLANATION_MAX, j->a.recommended_action);
    if (why != CG_OK || !is_msg) {
        finish(cm, j, why, text);
        return;
    }
    snprintf(j->msg, sizeof j->msg, "%s", text);
    j->state = JOB_EXPLANATION;
    start_part(cm, j);
}

int cm_capacity(const cm_composer_t *cm)
{
    return cm->njobs;
}

int cm_pending(const cm_composer_t *cm)
{
    return cm->pending;
}

int cm_ready(const cm_composer_t *cm)
{
    /* half-open: the probe decides before any other alert asks (or gets a template) */
    return cm->pending < cm->njobs && !(cm->breaker_is_open && cm->probe_in_flight);
}

int cm_submit(cm_composer_t *cm, const alert_t *a, void *tag)
{
    if (!cm_ready(cm))
        return -1;
    cm_job_t *j = NULL;
    for (int i = 0; i < cm->njobs && !j; i++)
        if (cm->jobs[i].state == JOB_FREE)
            j = &cm->jobs[i];
    if (!j)
        return -1;
    memset(j, 0, sizeof *j);
    j->a = *a;
    for (int i = 0; i < a->n_factors && i < ALERT_TOP_FACTORS; i++) {
        snprintf(j->names[i], sizeof j->names[i], "%s",
                 a->top_factors[i].feature ? a->top_factors[i].feature : "");
        j->a.top_factors[i].feature = j->names[i];
    }
    j->tag = tag;
    cm_result_t *r = &j->r;
    snprintf(r->alert_id, sizeof r->alert_id, "%s", a->alert_id);
    snprintf(r->user_id, sizeof r->user_id, "%s", a->user_id);
    r->part = "";
    r->prompt_version =
        cm->facts == CFG_LLM_FACTS_SEGMENT ? CM_PROMPT_VERSION_SEGMENT : CM_PROMPT_VERSION;
    cm->pending++;
    if (cm_breaker_open(cm)) {
        finish(cm, j, CG_BREAKER_OPEN, NULL);
        return 0;
    }
    if (cm->breaker_is_open) {
        /* half-open after the cool-down: this request decides (one failure re-opens), and
         * until it has, cm_ready() takes no other alert */
        cm->consecutive_failures = cm->breaker_failures - 1;
        cm->probe_in_flight = j->probe = 1;
    }
    j->asked = 1;
    j->state = JOB_MESSAGE;
    start_part(cm, j);
    return 0;
}

static int take_done(cm_composer_t *cm, cm_result_t *r, void **tag)
{
    for (int i = 0; i < cm->njobs; i++) {
        cm_job_t *j = &cm->jobs[i];
        if (j->state == JOB_DONE) {
            *r = j->r;
            if (tag)
                *tag = j->tag;
            j->state = JOB_FREE;
            cm->pending--;
            return 1;
        }
    }
    return 0;
}

int cm_next(cm_composer_t *cm, int timeout_ms, cm_result_t *r, void **tag)
{
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    char raw[4096];
    llm_answer_t ans;
    for (;;) {
        if (take_done(cm, r, tag))
            return 1;
        int64_t left = deadline - mono_ms();
        if (llm_in_flight(cm->llm) == 0 ||
            llm_next_done(cm->llm, left > 0 ? (int)left : 0, &ans, raw, sizeof raw) == 0)
            return take_done(cm, r, tag);
        on_answer(cm, ans.tag, &ans, raw);
    }
}

void cm_compose(cm_composer_t *cm, const alert_t *a, cm_result_t *r)
{
    if (cm->pending != 0 || cm_submit(cm, a, NULL) != 0)
        abort(); /* a caller bug: cm_compose never shares the composer with cm_submit */
    while (cm_next(cm, 1000, r, NULL) == 0)
        ;
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
