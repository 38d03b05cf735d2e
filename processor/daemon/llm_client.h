/* Client of an OpenAI-compatible `/v1/chat/completions` endpoint (llama.cpp server, vLLM,
 * Ollama, a hosted API) for `churnstream compose`: libcurl for HTTP, jansson for JSON. One
 * request at a time per client. The API key goes into the Authorization header only: it is
 * never logged and never part of an error message. */
#ifndef CS_LLM_CLIENT_H
#define CS_LLM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct llm_s llm_t;

typedef enum { LLM_OK = 0, LLM_ERR_ENDPOINT, LLM_ERR_TIMEOUT } llm_status_t;

/* Creates a client. url is the full endpoint URL, model the "model" field sent, api_key
 * NULL or "" for none; all copied. timeout_ms bounds each whole request. Returns NULL with
 * errstr set (never containing the key). Free with llm_destroy(). */
llm_t *llm_new(const char *url, const char *model, const char *api_key, int64_t timeout_ms,
               int max_tokens, char *errstr, size_t errstr_size);

/* Frees the client; NULL is a no-op. */
void llm_destroy(llm_t *llm);

/* Sends one chat completion (a system and a user message, temperature 0) and copies the
 * first choice's message content into out (cap bytes, NUL-terminated, truncated). Returns
 * LLM_OK, or LLM_ERR_TIMEOUT / LLM_ERR_ENDPOINT with why set ("HTTP 500", "connect: ...",
 * "answer has no choices[0].message.content"). *latency_ms receives the request's wall time
 * either way. */
llm_status_t llm_chat(llm_t *llm, const char *system, const char *user, char *out, size_t cap,
                      int64_t *latency_ms, char *why, size_t why_size);

#endif
