/* Unit tests for the composer of `churnstream compose` (processor/daemon/compose.h) against an
 * in-process fake OpenAI-compatible endpoint (libmicrohttpd on a free loopback port): the
 * model's wording passes or is replaced by the template with the right reason, the offer and
 * facts are churnstream's, the API key is sent but never in an error, the circuit breaker
 * opens, cools down and closes, and the RetentionMessage wire form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "compose.h"
#include "config.h"
#include "log.h"

/* ---- the fake endpoint: answers every POST with the configured status and content ---- */

static struct {
    pthread_mutex_t mu;
    unsigned status;
    char content[2048]; /* message content of the answer */
    int raw;            /* 1: send content as the whole body (not JSON) */
    int delay_ms;
    int requests;
    char auth[256];  /* last Authorization header seen */
    char body[8192]; /* last request body */
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct MHD_Daemon *daemon_;
static int port_;

static void fake_set(unsigned status, const char *content)
{
    pthread_mutex_lock(&fake.mu);
    fake.status = status;
    fake.raw = 0;
    snprintf(fake.content, sizeof fake.content, "%s", content);
    pthread_mutex_unlock(&fake.mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version;
    if (*con_cls == NULL) { /* first call: headers only */
        *con_cls = c;
        pthread_mutex_lock(&fake.mu);
        fake.body[0] = '\0';
        const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        snprintf(fake.auth, sizeof fake.auth, "%s", a ? a : "");
        pthread_mutex_unlock(&fake.mu);
        return MHD_YES;
    }
    if (*upload_size) {
        pthread_mutex_lock(&fake.mu);
        strncat(fake.body, upload_data,
                *upload_size < sizeof fake.body - strlen(fake.body) - 1
                    ? *upload_size
                    : sizeof fake.body - strlen(fake.body) - 1);
        pthread_mutex_unlock(&fake.mu);
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&fake.mu);
    fake.requests++;
    unsigned status = fake.status;
    int delay_ms = fake.delay_ms;
    char *body = malloc(4096);
    if (fake.raw)
        snprintf(body, 4096, "%s", fake.content);
    else
        snprintf(body, 4096,
                 "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
                 "\"message\":{\"role\":\"assistant\",\"content\":\"%s\"},\"finish_reason\":"
                 "\"stop\"}]}",
                 fake.content);
    pthread_mutex_unlock(&fake.mu);
    if (delay_ms)
        usleep((useconds_t)delay_ms * 1000);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int setup_server(void **state)
{
    (void)state;
    log_set_level(LOG_ERROR);
    daemon_ =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
    if (!daemon_)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port_ = info ? info->port : 0;
    return port_ > 0 ? 0 : -1;
}

static int teardown_server(void **state)
{
    (void)state;
    MHD_stop_daemon(daemon_);
    return 0;
}

/* ---- helpers ---- */

static int64_t fake_now;
static int64_t test_clock(void)
{
    return fake_now;
}

static cfg_t *make_cfg(const char *api_key, const char *timeout)
{
    cfg_t *cfg = cfg_new();
    char url[128], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port_);
    assert_int_equal(cfg_set(cfg, "llm.url", url, "test", err, sizeof err), 0);
    if (api_key)
        assert_int_equal(cfg_set(cfg, "llm.api_key", api_key, "test", err, sizeof err), 0);
    assert_int_equal(cfg_set(cfg, "llm.timeout", timeout, "test", err, sizeof err), 0);
    assert_int_equal(cfg_set(cfg, "llm.breaker_failures", "2", "test", err, sizeof err), 0);
    assert_int_equal(cfg_set(cfg, "llm.breaker_cooldown", "10s", "test", err, sizeof err), 0);
    return cfg;
}

static alert_t sample_alert(void)
{
    alert_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.alert_id, sizeof a.alert_id, "%s", "0123456789abcdef0123456789abcdef");
    snprintf(a.user_id, sizeof a.user_id, "%s", "u42");
    a.churn_probability = 0.91;
    a.risk_bucket = ALERT_HIGH;
    a.segment_id = 2;
    snprintf(a.segment_label, sizeof a.segment_label, "%s", "falling sessions_7d");
    snprintf(a.recommended_action, sizeof a.recommended_action, "%s", "win-back coupon");
    a.top_factors[0].feature = "days_since_activity";
    a.top_factors[0].contribution = 1.5;
    a.n_factors = 1;
    a.arm = ALERT_TREATMENT;
    return a;
}

static const char good[] = "We have missed you lately and would be delighted to welcome you "
                           "back whenever you are ready.";

/* ---- tests ---- */

static void test_llm_wording_with_churnstream_offer(void **state)
{
    (void)state;
    cfg_t *cfg = make_cfg("sk-TESTKEY", "5s");
    char err[256];
    cm_composer_t *cm = cm_new(cfg, test_clock, err, sizeof err);
    assert_non_null(cm);
    fake_set(200, good);
    alert_t a = sample_alert();
    cm_result_t r;
    cm_compose(cm, &a, &r);
    assert_int_equal(r.from_llm, 1);
    assert_int_equal(r.reason, CG_OK);
    assert_string_equal(r.fallback_reason, "");
    /* the model's words, then churnstream's offer and facts */
    assert_non_null(strstr(r.message, good));
    assert_non_null(strstr(r.message, "Our suggestion for you: win-back coupon."));
    assert_non_null(strstr(r.explanation, "churn probability 91% (high risk)"));
    assert_string_equal(fake.auth, "Bearer sk-TESTKEY");
    /* privacy: the probability and the raw numbers never leave the process */
    assert_null(strstr(fake.body, "0.91"));
    assert_null(strstr(fake.body, "u42")); /* nor the user id */
    assert_non_null(strstr(fake.body, "segment \\\"falling sessions\\\""));
    assert_null(strstr(fake.body, "sessions_7d")); /* names as words, no digit to echo */
    assert_non_null(strstr(fake.body, "\"temperature\""));
    cm_counts_t c;
    cm_counts(cm, &c);
    assert_int_equal(c.total, 1);
    assert_int_equal(c.llm, 1);
    assert_true(cm_latency_percentile(cm, 50) >= 0);
    cm_destroy(cm);
    cfg_destroy(cfg);
}

/* A composer on a make_cfg(NULL, "5s") configuration with one more key set. */
static cm_composer_t *composer_with(cfg_t **cfg, const char *key, const char *value)
{
    char err[256];
    *cfg = make_cfg(NULL, "5s");
    assert_int_equal(cfg_set(*cfg, key, value, "test", err, sizeof err), 0);
    cm_composer_t *cm = cm_new(*cfg, test_clock, err, sizeof err);
    assert_non_null(cm);
    return cm;
}

/* llm.facts=segment: the prompts carry the segment's facts only, never this customer's. */
static void test_segment_facts_only(void **state)
{
    (void)state;
    cfg_t *cfg;
    cm_composer_t *cm = composer_with(&cfg, "llm.facts", "segment");
    char err[256];
    fake_set(200, good);
    alert_t a = sample_alert();
    a.kind = ALERT_LAPSED;
    a.top_factors[0].value = 37.5;
    cm_result_t r;
    cm_compose(cm, &a, &r); /* the body kept is the last request's: the explanation */
    assert_int_equal(r.from_llm, 1);
    assert_string_equal(r.prompt_version, CM_PROMPT_VERSION_SEGMENT);
    assert_non_null(strstr(fake.body, "segment \\\"falling sessions\\\""));
    assert_non_null(strstr(fake.body, "high churn risk, no recent visit"));
    assert_non_null(strstr(fake.body, "win back coupon"));
    assert_null(strstr(fake.body, "u42"));
    assert_null(strstr(fake.body, "0.91"));
    assert_null(strstr(fake.body, "91"));
    assert_null(strstr(fake.body, "37"));
    assert_null(strstr(fake.body, "days since activity")); /* no factor of this user */
    assert_null(strstr(fake.body, "days_since_activity"));
    /* the facts line churnstream appends still has them: only the prompt is reduced */
    assert_non_null(strstr(r.explanation, "churn probability 91% (high risk)"));
    assert_int_equal(cfg_set(cfg, "llm.facts", "user,segment", "test", err, sizeof err), -1);
    cm_destroy(cm);
    cfg_destroy(cfg);
}

static void test_guardrail_rejections_fall_back(void **state)
{
    (void)state;
    static const struct {
        const char *content;
        const char *want;
    } cases[] = {
        {"Come back and save 30 on your next order, we miss you a lot!", "digit:message"},
        {"Come back now and visit www.example.com for a lovely surprise!", "url:message"},
        {"Come back now and claim a gift worth many $ just for you!", "currency:message"},
        {"   ", "empty:message"},
        {"Hi!", "too_short:message"},
    };
    cfg_t *cfg = make_cfg(NULL, "5s");
    char err[256];
    cm_composer_t *cm = cm_new(cfg, test_clock, err, sizeof err);
    assert_non_null(cm);
    alert_t a = sample_alert();
    cm_result_t r, t;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_set(200, cases[i].content);
        cm_compose(cm, &a, &r);
        assert_int_equal(r.from_llm, 0);
        assert_string_equal(r.fallback_reason, cases[i].want);
        /* the template, byte for byte, whatever the model said */
        cg_template_message(&a, t.message, sizeof t.message);
        assert_string_equal(r.message, t.message);
        assert_null(strstr(r.message, "30"));
    }
    assert_string_equal(fake.auth, ""); /* no key, no header */
    cm_counts_t c;
    cm_counts(cm, &c);
    assert_int_equal(c.templ, 5);
    assert_int_equal(c.by_reason[CG_DIGIT], 1);
    assert_int_equal(c.by_reason[CG_URL], 1);
    assert_int_equal(c.by_reason[CG_CURRENCY], 1);
    assert_int_equal(c.by_reason[CG_EMPTY], 1);
    assert_int_equal(c.by_reason[CG_TOO_SHORT], 1);
    assert_int_equal(c.breaker_trips, 0); /* the endpoint answered: no breaker */
    cm_destroy(cm);
    cfg_destroy(cfg);
}

static void test_explanation_checked_too(void **state)
{
    (void)state;
    cfg_t *cfg = make_cfg(NULL, "5s");
    char err[256];
    cm_composer_t *cm = cm_new(cfg, test_clock, err, sizeof err);
    assert_non_null(cm);
    /* good enough as a message (>= min), too short as an explanation */
    fake_set(200, "We would love to see you again.");
    alert_t a = sample_alert();
    cm_result_t r;
    cm_compose(cm, &a, &r);
    assert_int_equal(r.from_llm, 0);
    assert_string_equal(r.fallback_reason, "too_short:explanation");
    cm_destroy(cm);
    cfg_destroy(cfg);
}

static void test_endpoint_errors_and_breaker(void **state)
{
    (void)state;
    cfg_t *cfg = make_cfg("sk-SECRET-NEVER-SHOWN", "300ms");
    char err[256];
    fake_now = 1000;
    cm_composer_t *cm = cm_new(cfg, test_clock, err, sizeof err);
    assert_non_null(cm);
    alert_t a = sample_alert();
    cm_result_t r;
    int before;

    fake_set(500, "boom");
    cm_compose(cm, &a, &r);
    assert_int_equal(r.from_llm, 0);
    assert_string_equal(r.fallback_reason, "endpoint_error");
    assert_int_equal(cm_breaker_open(cm), 0);

    /* not JSON: an endpoint error too */
    fake_set(200, "");
    pthread_mutex_lock(&fake.mu);
    fake.raw = 1;
    snprintf(fake.content, sizeof fake.content, "%s", "<html>not json</html>");
    pthread_mutex_unlock(&fake.mu);
    cm_compose(cm, &a, &r);
    assert_string_equal(r.fallback_reason, "endpoint_error");
    assert_int_equal(cm_breaker_open(cm), 1); /* 2 consecutive failures */

    pthread_mutex_lock(&fake.mu);
    before = fake.requests;
    pthread_mutex_unlock(&fake.mu);
    fake_set(200, good);
    cm_compose(cm, &a, &r);
    assert_string_equal(r.fallback_reason, "breaker_open");
    assert_int_equal(r.latency_ms, 0);
    assert_int_equal(fake.requests, before); /* not asked while open */

    /* cool-down passed: half-open, one success closes it */
    fake_now += 10001;
    cm_compose(cm, &a, &r);
    assert_int_equal(r.from_llm, 1);
    assert_int_equal(cm_breaker_open(cm), 0);

    /* a timeout counts as a failure; in half-open one failure re-opens */
    pthread_mutex_lock(&fake.mu);
    fake.delay_ms = 800;
    pthread_mutex_unlock(&fake.mu);
    cm_compose(cm, &a, &r);
    assert_string_equal(r.fallback_reason, "timeout");
    assert_true(r.latency_ms >= 250 && r.latency_ms < 800);
    cm_compose(cm, &a, &r);
    assert_string_equal(r.fallback_reason, "timeout");
    assert_int_equal(cm_breaker_open(cm), 1);
    fake_now += 10001;
    cm_compose(cm, &a, &r); /* half-open, still slow: open again at once */
    assert_string_equal(r.fallback_reason, "timeout");
    assert_int_equal(cm_breaker_open(cm), 1);
    pthread_mutex_lock(&fake.mu);
    fake.delay_ms = 0;
    pthread_mutex_unlock(&fake.mu);

    cm_counts_t c;
    cm_counts(cm, &c);
    assert_int_equal(c.breaker_trips, 2);
    assert_int_equal(c.by_reason[CG_TIMEOUT], 3);
    assert_int_equal(c.by_reason[CG_ENDPOINT], 2);
    assert_int_equal(c.by_reason[CG_BREAKER_OPEN], 1);

    /* the summary never names the key */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cm_print_summary(cm, f);
    fclose(f);
    assert_null(strstr(buf, "SECRET"));
    assert_non_null(strstr(buf, "timeout=3"));
    assert_non_null(strstr(buf, "p50"));
    free(buf);
    cm_destroy(cm);
    cfg_destroy(cfg);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_delay(int ms)
{
    pthread_mutex_lock(&fake.mu);
    fake.delay_ms = ms;
    pthread_mutex_unlock(&fake.mu);
}

/* llm.concurrency 4: 8 alerts with 2 slow requests each take about 2 x 2 request times, not
 * 8 x 2, and each comes back exactly once with its own tag and alert id. */
static void test_concurrent_alerts_each_answered_once(void **state)
{
    (void)state;
    cfg_t *cfg;
    cm_composer_t *cm = composer_with(&cfg, "llm.concurrency", "4");
    assert_int_equal(cm_capacity(cm), 4);
    fake_set(200, good);
    set_delay(200);
    alert_t a = sample_alert();
    int seen[8] = {0}, submitted = 0, answered = 0;
    int64_t t0 = wall_ms();
    cm_result_t r;
    void *tag;
    while (answered < 8) {
        while (submitted < 8 && cm_pending(cm) < cm_capacity(cm)) {
            snprintf(a.alert_id, sizeof a.alert_id, "%032d", submitted);
            assert_int_equal(cm_submit(cm, &a, (void *)(intptr_t)(submitted + 1)), 0);
            submitted++;
        }
        if (cm_pending(cm) == cm_capacity(cm)) {
            assert_int_equal(cm_ready(cm), 0);
            assert_int_equal(cm_submit(cm, &a, NULL), -1); /* full: nothing taken */
        }
        if (cm_next(cm, 1000, &r, &tag) == 1) {
            int i = (int)(intptr_t)tag - 1;
            assert_true(i >= 0 && i < 8);
            char want[ALERT_ID_LEN + 1];
            snprintf(want, sizeof want, "%032d", i);
            assert_string_equal(r.alert_id, want);
            assert_int_equal(r.from_llm, 1);
            seen[i]++;
            answered++;
        }
    }
    int64_t took = wall_ms() - t0;
    for (int i = 0; i < 8; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(cm_pending(cm), 0);
    assert_int_equal(cm_next(cm, 0, &r, &tag), 0);
    /* one at a time: 8 x 2 x 200 ms = 3.2 s; four at a time: about 0.8 s */
    assert_true(took >= 700 && took < 2000);
    cm_counts_t c;
    cm_counts(cm, &c);
    assert_int_equal(c.total, 8);
    assert_int_equal(c.llm, 8);
    set_delay(0);
    cm_destroy(cm);
    cfg_destroy(cfg);
}

/* The breaker with several requests in flight: failures that finish together open it once,
 * alerts submitted while it is open get the template at once, and in half-open only one
 * alert asks (the probe) while the others wait until it has answered. */
static void test_breaker_with_requests_in_flight(void **state)
{
    (void)state;
    fake_now = 50000;
    cfg_t *cfg; /* breaker_failures 2, cool-down 10 s */
    cm_composer_t *cm = composer_with(&cfg, "llm.concurrency", "4");
    alert_t a = sample_alert();
    cm_result_t r;
    fake_set(500, "boom");
    set_delay(100);
    for (int i = 0; i < 4; i++)
        assert_int_equal(cm_submit(cm, &a, NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cm_next(cm, 2000, &r, NULL), 1);
        assert_string_equal(r.fallback_reason, "endpoint_error");
    }
    assert_int_equal(cm_breaker_open(cm), 1);
    cm_counts_t c;
    cm_counts(cm, &c);
    assert_int_equal(c.breaker_trips, 1);
    pthread_mutex_lock(&fake.mu);
    int before = fake.requests;
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(cm_submit(cm, &a, NULL), 0);
    assert_int_equal(cm_next(cm, 0, &r, NULL), 1); /* ready at once */
    assert_string_equal(r.fallback_reason, "breaker_open");

    fake_now += 10001; /* half-open */
    fake_set(200, good);
    assert_int_equal(cm_ready(cm), 1);
    assert_int_equal(cm_submit(cm, &a, (void *)(intptr_t)1), 0); /* the probe */
    assert_int_equal(cm_ready(cm), 0); /* the others wait for its answer */
    assert_int_equal(cm_submit(cm, &a, NULL), -1);
    void *tag;
    assert_int_equal(cm_next(cm, 2000, &r, &tag), 1);
    assert_int_equal(r.from_llm, 1);
    assert_int_equal((int)(intptr_t)tag, 1);
    pthread_mutex_lock(&fake.mu);
    assert_int_equal(fake.requests - before, 2); /* the probe's message and explanation */
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(cm_ready(cm), 1); /* closed: all slots again */
    for (int i = 0; i < 4; i++)
        assert_int_equal(cm_submit(cm, &a, NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cm_next(cm, 2000, &r, NULL), 1);
        assert_int_equal(r.from_llm, 1);
    }
    assert_int_equal(cm_breaker_open(cm), 0);
    set_delay(0);
    cm_destroy(cm);
    cfg_destroy(cfg);
}

static void test_bad_url_error_hides_it(void **state)
{
    (void)state;
    cfg_t *cfg = cfg_new();
    char err[256];
    assert_int_equal(cfg_set(cfg, "llm.url", "ftp://host/?key=sk-HIDDEN", "t", err, sizeof err), 0);
    assert_null(cm_new(cfg, NULL, err, sizeof err));
    assert_non_null(strstr(err, "llm.url"));
    assert_null(strstr(err, "HIDDEN"));
    cfg_destroy(cfg);
}

/* Decodes the plain Avro long at *p (zig-zag varint). */
static int64_t get_long(const uint8_t **p)
{
    uint64_t v = 0;
    int shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void test_encode_wire(void **state)
{
    (void)state;
    cm_result_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.alert_id, sizeof r.alert_id, "%s", "a1");
    snprintf(r.user_id, sizeof r.user_id, "%s", "u1");
    snprintf(r.message, sizeof r.message, "%s", "hello");
    snprintf(r.explanation, sizeof r.explanation, "%s", "why");
    snprintf(r.fallback_reason, sizeof r.fallback_reason, "%s", "digit:message");
    r.latency_ms = 1234;
    uint8_t buf[512];
    int64_t n = cm_encode(&r, "m", buf, sizeof buf);
    assert_true(n > 10);
    assert_int_equal(buf[0], 0xC3);
    assert_int_equal(buf[1], 0x01);
    uint64_t fp = 0;
    for (int i = 7; i >= 0; i--)
        fp = fp << 8 | buf[2 + i];
    assert_true(fp != 0);
    assert_true(fp == cm_schema_fingerprint());
    const uint8_t *p = buf + 10;
    const char *want[] = {"a1", "u1", "hello", "why"};
    for (int i = 0; i < 4; i++) {
        int64_t l = get_long(&p);
        assert_int_equal(l, (int64_t)strlen(want[i]));
        assert_memory_equal(p, want[i], (size_t)l);
        p += l;
    }
    assert_int_equal(get_long(&p), 1); /* template */
    int64_t l = get_long(&p);
    assert_int_equal(l, 1);
    p += l;
    assert_int_equal(get_long(&p), 1234);
    l = get_long(&p);
    assert_memory_equal(p, CM_PROMPT_VERSION, (size_t)l);
    p += l;
    l = get_long(&p);
    assert_memory_equal(p, "digit:message", (size_t)l);
    p += l;
    assert_int_equal(p - buf, n);
    assert_int_equal(cm_encode(&r, "m", buf, 20), -1);
}

static void test_alert_from_json(void **state)
{
    (void)state;
    alert_t a;
    char names[ALERT_TOP_FACTORS][65], why[256];
    const char *line =
        "{\"alert_id\":\"b2148a615e261f2dba0ddcd6b1a3f6b9\",\"user_id\":\"14047\",\"event_time\":"
        "1294392060000,\"churn_probability\":0.75,\"risk_bucket\":\"medium\",\"segment_id\":6,"
        "\"segment_label\":\"hibernating\",\"recommended_action\":\"win-back campaign\","
        "\"top_factors\":[{\"feature\":\"revenue_90d\",\"contribution\":0.5,\"value\":2,"
        "\"direction\":\"low\"}],\"model_version\":40,\"arm\":\"holdout\",\"kind\":\"at_risk\","
        "\"features\":{}}";
    assert_int_equal(cm_alert_from_json(line, &a, names, why, sizeof why), 0);
    assert_string_equal(a.user_id, "14047");
    assert_int_equal(a.risk_bucket, ALERT_MEDIUM);
    assert_int_equal(a.arm, ALERT_HOLDOUT);
    assert_int_equal(a.n_factors, 1);
    assert_string_equal(a.top_factors[0].feature, "revenue_90d");
    assert_int_equal(a.segment_id, 6);
    assert_int_equal(cm_alert_from_json("{\"user_id\":\"u\"}", &a, names, why, sizeof why), -1);
    assert_non_null(strstr(why, "alert_id"));
    assert_int_equal(cm_alert_from_json("not json", &a, names, why, sizeof why), -1);
    assert_int_equal(cm_alert_from_json("{\"alert_id\":\"x\",\"user_id\":\"u\",\"segment_label\":"
                                        "\"s\",\"recommended_action\":\"a\",\"churn_probability\":"
                                        "1.5}",
                                        &a, names, why, sizeof why),
                     -1);
    assert_non_null(strstr(why, "churn_probability"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_wording_with_churnstream_offer),
        cmocka_unit_test(test_segment_facts_only),
        cmocka_unit_test(test_guardrail_rejections_fall_back),
        cmocka_unit_test(test_explanation_checked_too),
        cmocka_unit_test(test_endpoint_errors_and_breaker),
        cmocka_unit_test(test_concurrent_alerts_each_answered_once),
        cmocka_unit_test(test_breaker_with_requests_in_flight),
        cmocka_unit_test(test_bad_url_error_hides_it),
        cmocka_unit_test(test_encode_wire),
        cmocka_unit_test(test_alert_from_json),
    };
    return cmocka_run_group_tests(tests, setup_server, teardown_server);
}
