/* OpenAI-compatible chat completions over libcurl, bodies built and parsed with jansson
 * (llm_client.h). The response body is capped so a misbehaving endpoint cannot make us
 * buffer without bound. */
#include "llm_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#define LLM_BODY_MAX (1 << 20) /* bytes of response kept; more is an endpoint error */

struct llm_s {
    CURL *curl;
    struct curl_slist *headers; /* holds the Authorization header: never print it */
    char *url;
    char *model;
    int64_t timeout_ms;
    int max_tokens;
    char *body;
    size_t body_len;
    int body_overflow;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    llm_t *l = userdata;
    size_t n = size * nmemb;
    if (l->body_len + n > LLM_BODY_MAX) {
        l->body_overflow = 1;
        return 0; /* aborts the transfer */
    }
    char *nb = realloc(l->body, l->body_len + n + 1);
    if (!nb)
        return 0;
    l->body = nb;
    memcpy(l->body + l->body_len, ptr, n);
    l->body_len += n;
    l->body[l->body_len] = '\0';
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
        !(l->curl = curl_easy_init())) {
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

void llm_destroy(llm_t *l)
{
    if (!l)
        return;
    if (l->curl)
        curl_easy_cleanup(l->curl);
    curl_slist_free_all(l->headers);
    free(l->url);
    free(l->model);
    free(l->body);
    free(l);
}

llm_status_t llm_chat(llm_t *l, const char *system, const char *user, char *out, size_t cap,
                      int64_t *latency_ms, char *why, size_t why_size)
{
    int64_t t0 = now_ms();
    llm_status_t st = LLM_ERR_ENDPOINT;
    char *req = NULL;
    json_t *ans = NULL;
    why[0] = '\0';
    if (cap)
        out[0] = '\0';
    json_t *body =
        json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i, s:f, s:b}", "model", l->model, "messages",
                  "role", "system", "content", system, "role", "user", "content", user,
                  "max_tokens", l->max_tokens, "temperature", 0.0, "stream", 0);
    if (!body || !(req = json_dumps(body, JSON_COMPACT))) {
        snprintf(why, why_size, "cannot build the request JSON (invalid UTF-8 in the alert?)");
        goto done;
    }
    l->body_len = 0;
    l->body_overflow = 0;
    if (l->body)
        l->body[0] = '\0';
    CURL *c = l->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, l->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, l->headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, l);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)l->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)l->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* timeouts without SIGALRM */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        st = LLM_ERR_TIMEOUT;
        snprintf(why, why_size, "no answer within llm.timeout (%lld ms)", (long long)l->timeout_ms);
        goto done;
    }
    if (cc != CURLE_OK) {
        snprintf(why, why_size, "%s",
                 l->body_overflow ? "answer larger than 1 MiB" : curl_easy_strerror(cc));
        goto done;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
        snprintf(why, why_size, "HTTP %ld", code);
        goto done;
    }
    json_error_t jerr;
    ans = json_loadb(l->body ? l->body : "", l->body_len, 0, &jerr);
    if (!ans) {
        snprintf(why, why_size, "answer is not JSON: %s", jerr.text);
        goto done;
    }
    const char *content = NULL;
    json_t *choices = json_object_get(ans, "choices");
    json_t *msg = json_object_get(json_array_get(choices, 0), "message");
    content = json_string_value(json_object_get(msg, "content"));
    if (!content) {
        snprintf(why, why_size, "answer has no choices[0].message.content");
        goto done;
    }
    snprintf(out, cap, "%s", content);
    st = LLM_OK;
done:
    *latency_ms = now_ms() - t0;
    json_decref(ans);
    json_decref(body);
    free(req);
    return st;
}
