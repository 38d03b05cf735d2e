/* The composer of `churnstream compose`: one alert in, one retention message out, always.
 * Asks the endpoint for the wording of the customer message and of the account manager's
 * explanation, checks both (compose_guard.h), appends churnstream's own offer and facts, and
 * falls back to the deterministic template on any rejection, endpoint error, timeout or open
 * circuit breaker. Also encodes the RetentionMessage record (schemas/retention_message.avsc)
 * and keeps the run's counts and latencies for the summary. */
#ifndef CS_COMPOSE_H
#define CS_COMPOSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "alert.h"
#include "compose_guard.h"
#include "config.h"

/* Version of the prompts and templates, written in every message: change it with them. */
#define CM_PROMPT_VERSION         "compose-v1"
#define CM_PROMPT_VERSION_SEGMENT "compose-v1-segment" /* llm.facts=segment */

#define CM_MESSAGE_MAX     1024
#define CM_EXPLANATION_MAX 2048

typedef struct cm_result_s {
    char alert_id[ALERT_ID_LEN + 1];
    char user_id[EV_USER_ID_MAX + 1];
    char message[CM_MESSAGE_MAX];
    char explanation[CM_EXPLANATION_MAX];
    int from_llm;       /* 1: source=llm, 0: source=template */
    cg_reason_t reason; /* CG_OK when from_llm */
    const char *part;   /* "message" / "explanation" for a rejection, else "" */
    int64_t latency_ms; /* time spent asking the endpoint (0 when not asked) */
    char fallback_reason[48];
    const char *prompt_version; /* static string; NULL reads as CM_PROMPT_VERSION */
} cm_result_t;

typedef struct cm_composer_s cm_composer_t;

/* Creates a composer from the llm.* keys of cfg (copied). now_ms may be NULL (monotonic
 * clock) or a test clock. Returns NULL with errstr set (never containing llm.api_key).
 * Free with cm_destroy(). */
cm_composer_t *cm_new(const cfg_t *cfg, int64_t (*now_ms)(void), char *errstr, size_t errstr_size);
/* Frees; NULL is a no-op. Requests still in flight are aborted. */
void cm_destroy(cm_composer_t *cm);

/* llm.model, as written in each message (owned by the composer). */
const char *cm_model(const cm_composer_t *cm);

/* Alerts the composer answers at once: llm.concurrency (each has at most one request in
 * flight: its message, then its explanation). */
int cm_capacity(const cm_composer_t *cm);
/* Alerts taken by cm_submit() and not yet returned by cm_next(). */
int cm_pending(const cm_composer_t *cm);

/* 1 when cm_submit() takes an alert now: a slot is free and the breaker is not half-open
 * with its probe out (one alert's request decides whether the endpoint is back; the others
 * wait for it, at most llm.timeout, as they would one at a time). 0: call cm_next() first. */
int cm_ready(const cm_composer_t *cm);

/* Takes alert a (copied, its factor names too) to answer; tag comes back with its message
 * from cm_next(). Returns 0, or -1 when !cm_ready() (nothing taken). With the breaker open
 * the message is the template, ready at once. */
int cm_submit(cm_composer_t *cm, const alert_t *a, void *tag);

/* Drives the requests in flight for at most timeout_ms (0: no wait) until an alert is
 * answered: returns 1 with its message in *r and its tag in *tag (tag may be NULL), 0 when
 * none is ready. Every submitted alert comes back exactly once, in the order they are
 * answered (not the order submitted). Never fails: every path that is not the model's ends
 * in the template. Counts the outcome for cm_print_summary(). */
int cm_next(cm_composer_t *cm, int timeout_ms, cm_result_t *r, void **tag);

/* Writes the message for alert a into *r (overwritten): cm_submit() then cm_next() until it
 * is answered. Only for a composer with nothing pending (it aborts otherwise). */
void cm_compose(cm_composer_t *cm, const alert_t *a, cm_result_t *r);

/* 1 while the circuit breaker is open (the endpoint is not asked). */
int cm_breaker_open(const cm_composer_t *cm);

/* Counts of the run so far. */
typedef struct cm_counts_s {
    long long total, llm, templ;
    long long by_reason[CG_REASON_COUNT]; /* template messages by first reason */
    long long breaker_trips;
} cm_counts_t;
void cm_counts(const cm_composer_t *cm, cm_counts_t *out);

/* Latency percentile (0..100) of the alerts where the endpoint was asked, in ms; -1 when
 * none was. Nearest-rank. */
int64_t cm_latency_percentile(const cm_composer_t *cm, double pct);

/* Prints the summary: totals, LLM vs template, rejections by reason, latency p50/p99. */
void cm_print_summary(const cm_composer_t *cm, FILE *out);

/* The record as one JSON object on one line (no newline), keys the Avro field names;
 * returns a malloc'd string (caller frees) or NULL on out of memory. */
char *cm_result_to_json(const cm_result_t *r, const char *model);

/* Encodes r as a RetentionMessage in single-object framing (C3 01 + fingerprint of
 * schemas/retention_message.avsc) into buf (cap bytes). Returns the length, -1 when cap is
 * too small. */
int64_t cm_encode(const cm_result_t *r, const char *model, uint8_t *buf, size_t cap);

/* Fingerprint (CRC-64-AVRO) of the built-in retention_message.avsc; 0 when it cannot be
 * computed (never with the committed schema). */
uint64_t cm_schema_fingerprint(void);

/* Fills *a from one line of replay's --alerts-out (alert_to_json's format). Returns 0, or
 * -1 with why set (not JSON, a missing or mistyped field, a string too long). top_factors
 * names point into names (ALERT_TOP_FACTORS x 65 bytes), which the caller keeps. */
int cm_alert_from_json(const char *line, alert_t *a, char names[][65], char *why, size_t why_size);

#endif
