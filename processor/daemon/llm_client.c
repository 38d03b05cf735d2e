/* OpenAI-compatible chat completions over libcurl's multi interface, bodies built and parsed
 * with jansson (llm_client.h). One easy handle per request, all driven by one multi handle,
 * which also keeps the connections for reuse. The response body is capped so a misbehaving
 * endpoint cannot make us buffer without bound. */
#include "llm_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#define LLM_BODY_MAX (1 << 20) /* bytes of response kept; more is an endpoint error */

struct llm_s {
    CURLM *multi;
    struct curl_slist *headers; /* holds the Authorization header: never print it */
    char *url;
    char *model;
    int64_t timeout_ms;
    int max_tokens;
    int in_flight;
    struct llm_req_s *reqs; /* the requests in flight, a doubly linked list */
};

/* One request in flight: its easy handle points back here (CURLOPT_PRIVATE). */
typedef struct llm_req_s {
    CURL *easy;
    char *json; /* the request body: libcurl reads it until the transfer ends */
    char *body; /* the answer so far */
    size_t body_len;
    int body_overflow;
    int64_t t0_ms;
    void *tag;
    struct llm_req_s *prev, *next;
} llm_req_t;

static void req_link(llm_t *l, llm_req_t *q)
{
    q->prev = NULL;
    q->next = l->reqs;
    if (l->reqs)
        l->reqs->prev = q;
    l->reqs = q;
    l->in_flight++;
}

static void req_unlink(llm_t *l, llm_req_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        l->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    l->in_flight--;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    llm_req_t *q = userdata;
    size_t n = size * nmemb;
    if (q->body_len + n > LLM_BODY_MAX) {
        q->body_overflow = 1;
        return 0; /* aborts the transfer */
    }
    char *nb = realloc(q->body, q->body_len + n + 1);
    if (!nb)
        return 0;
    q->body = nb;
    memcpy(q->body + q->body_len, ptr, n);
    q->body_len += n;
    q->body[q->body_len] = '\0';
    return n;
}

llm_t *llm_new(const char *url, const char *model, const char *api_key, int64_t timeout_ms,
               int max_tokens, char *errstr, size_t errstr_size)
{
    static int global_done;
    if (!global_done) {
        /* Not thread-safe by libcurl's contract: compose calls this from main only. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(errstr, errstr_size, "curl_global_init failed");
            return NULL;
        }
        global_done = 1;
    }
    if (!url || strncmp(url, "http://", 7) != 0) {
        if (!url || strncmp(url, "https://", 8) != 0) {
            /* the URL is not echoed: a hosted API may carry a key in its query string */
            snprintf(errstr, errstr_size, "llm.url: expected an http:// or https:// URL");
            return NULL;
        }
    }
    llm_t *l = calloc(1, sizeof *l);
    if (!l || !(l->url = strdup(url)) || !(l->model = strdup(model ? model : "")) ||
        !(l->multi = curl_multi_init())) {
        snprintf(errstr, errstr_size, "out of memory (llm client)");
        llm_destroy(l);
        return NULL;
    }
    l->timeout_ms = timeout_ms;
    l->max_tokens = max_tokens;
    l->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (l->headers && api_key && *api_key) {
        size_t n = strlen(api_key) + 32;
        char *h = malloc(n);
        if (h) {
            snprintf(h, n, "Authorization: Bearer %s", api_key);
            struct curl_slist *nh = curl_slist_append(l->headers, h);
            explicit_bzero(h, n);
            free(h);
            l->headers = nh;
        } else {
            curl_slist_free_all(l->headers);
            l->headers = NULL;
        }
    }
    if (!l->headers) {
        snprintf(errstr, errstr_size, "out of memory (llm client headers)");
        llm_destroy(l);
        return NULL;
    }
    return l;
}

static void req_free(llm_req_t *q)
{
    if (!q)
        return;
    if (q->easy)
        curl_easy_cleanup(q->easy);
    free(q->json);
    free(q->body);
    free(q);
}

void llm_destroy(llm_t *l)
{
    if (!l)
        return;
    if (l->multi) {
        /* requests still in flight are aborted: their answers are never asked for */
        while (l->reqs) {
            llm_req_t *q = l->reqs;
            curl_multi_remove_handle(l->multi, q->easy);
            req_unlink(l, q);
            req_free(q);
        }
        curl_multi_cleanup(l->multi);
    }
    curl_slist_free_all(l->headers);
    free(l->url);
    free(l->model);
    free(l);
}

int llm_start(llm_t *l, const char *system, const char *user, void *tag, char *why, size_t why_size)
{
    llm_req_t *q = calloc(1, sizeof *q);
    json_t *body =
        json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:f, s:b}", "model", l->model, "messages",
                  "role", "system", "content", system, "role", "user", "content", user,
                  "max_tokens", l->max_tokens, "temperature", 0.0, "stream", 0);
    if (!q || !body || !(q->json = json_dumps(body, JSON_COMPACT))) {
        snprintf(why, why_size, "cannot build the request JSON (invalid UTF-8 in the alert?)");
        json_decref(body);
        req_free(q);
        return -1;
    }
    json_decref(body);
    q->tag = tag;
    q->t0_ms = now_ms();
    CURL *c = q->easy = curl_easy_init();
    if (!c) {
        snprintf(why, why_size, "out of memory (curl handle)");
        req_free(q);
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, l->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, l->headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->json);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(c, CURLOPT_PRIVATE, q);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)l->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)l->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* timeouts without SIGALRM */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (curl_multi_add_handle(l->multi, c) != CURLM_OK) {
        snprintf(why, why_size, "cannot start the request (curl_multi_add_handle)");
        req_free(q);
        return -1;
    }
    req_link(l, q);
    return 0;
}

int llm_in_flight(const llm_t *l)
{
    return l->in_flight;
}

/* The outcome of a finished transfer: status and why in *a, the content in out. */
static void read_answer(const llm_t *l, llm_req_t *q, CURLcode cc, llm_answer_t *a, char *out,
                        size_t cap)
{
    a->status = LLM_ERR_ENDPOINT;
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        a->status = LLM_ERR_TIMEOUT;
        snprintf(a->why, sizeof a->why, "no answer within llm.timeout (%lld ms)",
                 (long long)l->timeout_ms);
        return;
    }
    if (cc != CURLE_OK) {
        snprintf(a->why, sizeof a->why, "%s",
                 q->body_overflow ? "answer larger than 1 MiB" : curl_easy_strerror(cc));
        return;
    }
    long code = 0;
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
        snprintf(a->why, sizeof a->why, "HTTP %ld", code);
        return;
    }
    json_error_t jerr;
    json_t *ans = json_loadb(q->body ? q->body : "", q->body_len, 0, &jerr);
    if (!ans) {
        snprintf(a->why, sizeof a->why, "answer is not JSON: %s", jerr.text);
        return;
    }
    json_t *choices = json_object_get(ans, "choices");
    json_t *msg = json_object_get(json_array_get(choices, 0), "message");
    const char *content = json_string_value(json_object_get(msg, "content"));
    if (content) {
        snprintf(out, cap, "%s", content);
        a->status = LLM_OK;
    } else {
        snprintf(a->why, sizeof a->why, "answer has no choices[0].message.content");
    }
    json_decref(ans);
}

int llm_next_done(llm_t *l, int timeout_ms, llm_answer_t *a, char *out, size_t cap)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int running = 0, queued = 0;
        curl_multi_perform(l->multi, &running);
        CURLMsg *m;
        while ((m = curl_multi_info_read(l->multi, &queued)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *easy = m->easy_handle;
            CURLcode cc = m->data.result;
            llm_req_t *q = NULL;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&q);
            curl_multi_remove_handle(l->multi, easy); /* m is invalid from here */
            req_unlink(l, q);
            memset(a, 0, sizeof *a);
            if (cap)
                out[0] = '\0';
            a->tag = q->tag;
            read_answer(l, q, cc, a, out, cap);
            a->latency_ms = now_ms() - q->t0_ms;
            req_free(q);
            return 1;
        }
        int64_t left = deadline - now_ms();
        if (l->in_flight == 0 || left <= 0)
            return 0;
        curl_multi_poll(l->multi, NULL, 0, (int)(left < 1000 ? left : 1000), NULL);
    }
}
