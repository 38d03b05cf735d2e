/* Guardrails of `churnstream compose`: the model only writes wording; every number, offer and
 * name comes from churnstream's templates with slots filled from the alert. cg_check() judges
 * the model's text before any slot is filled (so a digit the template put there is never
 * held against it), and cg_template_*() write the deterministic fallback. */
#ifndef CS_COMPOSE_GUARD_H
#define CS_COMPOSE_GUARD_H

#include <stddef.h>

#include "alert.h"

/* Why a message is not the model's: guardrail rejections, then endpoint failures. */
typedef enum {
    CG_OK = 0,
    CG_EMPTY,        /* nothing but white space */
    CG_TOO_SHORT,    /* fewer than the part's minimum bytes */
    CG_TOO_LONG,     /* more than the part's maximum bytes */
    CG_DIGIT,        /* a digit: numbers are churnstream's, never the model's */
    CG_CURRENCY,     /* a currency sign or code ($, EUR, ...): offers are churnstream's */
    CG_OFFER,        /* an offer in words ("gift card", "free shipping", "coupon"): the
                        model invented it; only the template's offer line makes one */
    CG_URL,          /* a link (scheme, www., a domain ending) or an e-mail address */
    CG_SLOT,         /* template braces or a chat-template token left in the text */
    CG_NAME,         /* a capitalized word inside a sentence: a name the model made up */
    CG_ECHO,         /* the prompt's scaffolding repeated ("Do not ...", "Signals:") */
    CG_ENDPOINT,     /* HTTP error, refused connection, unparsable answer */
    CG_TIMEOUT,      /* llm.timeout passed */
    CG_BREAKER_OPEN, /* circuit breaker open: the endpoint was not asked */
    CG_REASON_COUNT
} cg_reason_t;

/* Stable snake_case name of a reason ("ok", "digit", "breaker_open", ...), for the summary,
 * the fallback_reason field and logs. Static storage. */
const char *cg_reason_name(cg_reason_t r);

/* Length bounds of the model's parts, in bytes after trimming. */
#define CG_MESSAGE_MIN     20
#define CG_MESSAGE_MAX     400
#define CG_EXPLANATION_MIN 40
#define CG_EXPLANATION_MAX 900

/* Checks one part of the model's answer (text, NUL-terminated) against [min_len, max_len]
 * after trimming white space. approved (NULL: none) is what churnstream itself will state
 * (the recommended action): an offer phrase that also occurs there is the approved offer
 * repeated, not an invented one. Returns CG_OK or the first failed check, in the order empty,
 * slot, url, currency, digit, offer, name, echo, length. The name check is a heuristic on purpose:
 * any word that starts with a capital letter and does not start a sentence (other than "I" and its
 * contractions) is taken for a name; a false alarm costs a template message. Pure: no state, no
 * allocation. */
cg_reason_t cg_check(const char *text, size_t min_len, size_t max_len, const char *approved);

/* Copies text into out (cap bytes, NUL-terminated), trimming surrounding white space and
 * quotes and folding runs of white space (new lines included) into one space. Returns the
 * length written (truncated at cap - 1, never right after a space). */
size_t cg_normalize(const char *text, char *out, size_t cap);

/* Cuts text (in place) after its first max_sentences sentences (a sentence ends with '.',
 * '!' or '?' followed by a space or the end). A small model rambles; its first sentences are
 * its own words all the same. Returns the new length. */
size_t cg_first_sentences(char *text, int max_sentences);

/* Writes a feature or segment name as words for a prompt: '_' and '-' become spaces and
 * every token holding a digit is dropped ("activity_trend_7d_30d" -> "activity trend"), so
 * the prompt hands the model no digit to echo. Returns the length (truncated at cap - 1). */
size_t cg_words_of(const char *name, char *out, size_t cap);

/* The churnstream-owned sentence appended to the model's wording of the customer message:
 * the recommended action as the offer, e.g. "Our suggestion for you: win-back coupon." (the
 * only place an offer or a number may appear). Returns the length, -1 when cap is too
 * small. */
int cg_offer_line(const alert_t *a, char *out, size_t cap);

/* The churnstream-owned facts appended to the model's explanation: probability as a
 * percentage, bucket, segment and label, action, top factors with their contributions, arm.
 * Returns the length, -1 when cap is too small. */
int cg_facts_line(const alert_t *a, char *out, size_t cap);

/* Deterministic fallback message (source=template): a greeting chosen by risk bucket and
 * the offer line. Same alert, same text. Returns the length, -1 when cap is too small. */
int cg_template_message(const alert_t *a, char *out, size_t cap);

/* Deterministic fallback explanation: a fixed sentence and the facts line. Returns the
 * length, -1 when cap is too small. */
int cg_template_explanation(const alert_t *a, char *out, size_t cap);

#endif
