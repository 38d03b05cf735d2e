/* Client of an OpenAI-compatible `/v1/chat/completions` endpoint (llama.cpp server, vLLM,
 * Ollama, a hosted API) for `churnstream compose`: libcurl's multi interface for HTTP (many
 * requests in flight on one thread), jansson for JSON. The API key goes into the
 * Authorization header only: it is never logged and never part of an error message. */
#ifndef CS_LLM_CLIENT_H
#define CS_LLM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct llm_s llm_t;

typedef enum { LLM_OK = 0, LLM_ERR_ENDPOINT, LLM_ERR_TIMEOUT } llm_status_t;

/* Creates a client. url is the full endpoint URL, model the "model" field sent, api_key
 * NULL or "" for none; all copied. timeout_ms bounds each whole request. Returns NULL with
 * errstr set (never containing the key). Free with llm_destroy(), which aborts the requests
 * still in flight. */
llm_t *llm_new(const char *url, const char *model, const char *api_key, int64_t timeout_ms,
               int max_tokens, char *errstr, size_t errstr_size);

/* Frees the client; NULL is a no-op. */
void llm_destroy(llm_t *llm);

/* Starts one chat completion (a system and a user message, temperature 0) without waiting;
 * tag comes back with its answer from llm_next_done(). Returns 0, or -1 with why set (the
 * request JSON cannot be built, out of memory): nothing was started then. */
int llm_start(llm_t *llm, const char *system, const char *user, void *tag, char *why,
              size_t why_size);

/* Requests started and not yet returned by llm_next_done(). */
int llm_in_flight(const llm_t *llm);

/* One finished request, as llm_next_done() returns it. */
typedef struct llm_answer_s {
    void *tag; /* llm_start's */
    llm_status_t status;
    int64_t latency_ms; /* the request's wall time, start to end, either way */
    char why[256];      /* the failure ("HTTP 500", "no answer within llm.timeout ...") */
} llm_answer_t;

/* Drives the transfers for at most timeout_ms (0: no wait) until one request finishes. Returns
 * 1 with *ans filled and the first choice's message content copied into out (cap bytes,
 * NUL-terminated, truncated; "" on failure), 0 when none finished in time or none is in
 * flight. */
int llm_next_done(llm_t *llm, int timeout_ms, llm_answer_t *ans, char *out, size_t cap);

#endif
