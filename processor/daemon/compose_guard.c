/* Guardrail checks and deterministic templates of `churnstream compose` (compose_guard.h).
 * Checks are byte-level and conservative: a false rejection costs a template message, a
 * false acceptance could promise a customer an offer nobody approved. */
#include "compose_guard.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const reason_names[CG_REASON_COUNT] = {
    [CG_OK] = "ok",
    [CG_EMPTY] = "empty",
    [CG_TOO_SHORT] = "too_short",
    [CG_TOO_LONG] = "too_long",
    [CG_DIGIT] = "digit",
    [CG_CURRENCY] = "currency",
    [CG_OFFER] = "offer",
    [CG_URL] = "url",
    [CG_SLOT] = "slot",
    [CG_NAME] = "name",
    [CG_ECHO] = "echo",
    [CG_ENDPOINT] = "endpoint_error",
    [CG_TIMEOUT] = "timeout",
    [CG_BREAKER_OPEN] = "breaker_open",
};

const char *cg_reason_name(cg_reason_t r)
{
    return (unsigned)r < CG_REASON_COUNT ? reason_names[r] : "unknown";
}

size_t cg_normalize(const char *text, char *out, size_t cap)
{
    size_t n = 0;
    int pending_space = 0;
    if (cap == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
        if (isspace(*p)) {
            pending_space = n > 0;
            continue;
        }
        /* Full: stop, and never on a space (a space written with no room for the byte after
         * it ended the text with it; found by fuzz_guard). */
        if (pending_space && n + 2 >= cap)
            break;
        if (pending_space)
            out[n++] = ' ';
        pending_space = 0;
        if (n + 1 >= cap)
            break;
        out[n++] = (char)*p;
    }
    out[n] = '\0';
    /* A small model often wraps its answer in quotes: drop one matching pair. */
    if (n >= 2 &&
        ((out[0] == '"' && out[n - 1] == '"') || (out[0] == '\'' && out[n - 1] == '\''))) {
        memmove(out, out + 1, n - 2);
        n -= 2;
        out[n] = '\0';
        /* '" Hello "' leaves the spaces inside the quotes at the ends (found by fuzz_guard) */
        size_t lead = out[0] == ' ';
        if (n > lead && out[n - 1] == ' ')
            n--;
        memmove(out, out + lead, n - lead);
        n -= lead;
        out[n] = '\0';
    }
    return n;
}

/* Case-insensitive search of needle in [s, s+len). */
static int contains_ci(const char *s, const char *needle)
{
    size_t ln = strlen(needle);
    for (; *s; s++)
        if (strncasecmp(s, needle, ln) == 0)
            return 1;
    return 0;
}

/* True when the word at s (ending before a non-alphanumeric byte) equals w, case-sensitive,
 * and s starts a word. */
static int word_at(const char *start, const char *s, const char *w)
{
    size_t lw = strlen(w);
    if (s > start && isalnum((unsigned char)s[-1]))
        return 0;
    return strncmp(s, w, lw) == 0 && !isalnum((unsigned char)s[lw]);
}

static int has_url(const char *t)
{
    static const char *const marks[] = {"://", "www.", "http:", "https:", "mailto:", NULL};
    static const char *const tlds[] = {".com", ".net", ".org", ".io", ".co", ".ly", ".html", NULL};
    for (int i = 0; marks[i]; i++)
        if (contains_ci(t, marks[i]))
            return 1;
    for (const char *p = t; *p; p++) {
        /* a domain ending: ".com" right after a letter, not followed by a letter */
        if (*p == '.' && p > t && isalnum((unsigned char)p[-1])) {
            for (int i = 0; tlds[i]; i++) {
                size_t l = strlen(tlds[i]);
                if (strncasecmp(p, tlds[i], l) == 0 && !isalpha((unsigned char)p[l]))
                    return 1;
            }
        }
        /* an e-mail address: word@word */
        if (*p == '@' && p > t && isalnum((unsigned char)p[-1]) && isalnum((unsigned char)p[1]))
            return 1;
    }
    return 0;
}

static int has_currency(const char *t)
{
    /* UTF-8 signs: euro, pound, yen, rupee, cent, generic currency sign */
    static const char *const signs[] = {
        "$", "\xe2\x82\xac", "\xc2\xa3", "\xc2\xa5", "\xe2\x82\xb9", "\xc2\xa2", "\xc2\xa4", NULL};
    static const char *const codes[] = {"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", NULL};
    for (int i = 0; signs[i]; i++)
        if (strstr(t, signs[i]))
            return 1;
    for (const char *p = t; *p; p++)
        for (int i = 0; codes[i]; i++)
            if (word_at(t, p, codes[i]))
                return 1;
    return 0;
}

/* An offer in words, case-insensitive, a whole word or its plural: what a customer would take for a
 * promise (a gift, a discount, something free). Only clear offer phrases are listed ("free"
 * alone is not: "feel free to write to us" is no offer); a miss is what the currency and
 * digit checks do not catch either, a false alarm costs a template message. */
static int has_offer(const char *t, const char *approved)
{
    static const char *const phrases[] = {
        "gift",          "voucher",        "coupon",       "discount",      "promo code",
        "promotion",     "cashback",       "cash back",    "rebate",        "complimentary",
        "free shipping", "free delivery",  "free trial",   "free month",    "free gift",
        "for free",      "percent off",    "half price",   "half-price",    "bonus points",
        "reward points", "loyalty points", "store credit", "special price", NULL};
    for (const char *p = t; *p; p++) {
        if (p > t && isalnum((unsigned char)p[-1]))
            continue;
        for (int i = 0; phrases[i]; i++) {
            size_t n = strlen(phrases[i]);
            if (strncasecmp(p, phrases[i], n) != 0)
                continue;
            const char *e = p + n; /* a whole word, or its plural */
            if ((*e == 's' || *e == 'S') && !isalnum((unsigned char)e[1]))
                e++;
            if (!isalnum((unsigned char)*e) && !(approved && contains_ci(approved, phrases[i])))
                return 1;
        }
    }
    return 0;
}

/* A capitalized word that does not start a sentence. */
static int has_name(const char *t)
{
    int sentence_start = 1;
    for (const char *p = t; *p;) {
        while (*p && !isalpha((unsigned char)*p)) {
            if (strchr(".!?:;\n\"(", *p))
                sentence_start = 1;
            p++;
        }
        if (!*p)
            break;
        const char *w = p;
        while (*p && (isalpha((unsigned char)*p) || *p == '\''))
            p++;
        if (isupper((unsigned char)*w) && !sentence_start) {
            int is_i = w[0] == 'I' && (p - w == 1 || w[1] == '\'');
            if (!is_i)
                return 1;
        }
        sentence_start = 0;
    }
    return 0;
}

/* The scaffolding of compose's prompts (compose.c): a small model often repeats its
 * instructions or the fact labels instead of writing; such text says nothing to a customer. */
static int has_echo(const char *t)
{
    static const char *const marks[] = {"Do not ",
                                        "Churn risk",
                                        "churn risk:",
                                        "Signals:",
                                        "segment:",
                                        "Suggested action",
                                        "follow up with:",
                                        "Write ",
                                        "account manager",
                                        "sentences",
                                        "Invite them",
                                        "points at",
                                        "customer care writer",
                                        NULL};
    for (int i = 0; marks[i]; i++)
        if (strstr(t, marks[i]))
            return 1;
    return 0;
}

size_t cg_first_sentences(char *text, int max_sentences)
{
    int n = 0;
    for (char *p = text; *p; p++) {
        if ((*p == '.' || *p == '!' || *p == '?') &&
            (p[1] == '\0' || isspace((unsigned char)p[1])) && ++n == max_sentences) {
            p[1] = '\0';
            return (size_t)(p + 1 - text);
        }
    }
    return strlen(text);
}

size_t cg_words_of(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    for (const char *p = name; *p;) {
        while (*p && (*p == '_' || *p == '-' || *p == ' '))
            p++;
        const char *w = p;
        int digit = 0;
        while (*p && *p != '_' && *p != '-' && *p != ' ')
            digit |= isdigit((unsigned char)*p++);
        if (p == w || digit)
            continue;
        if (n > 0 && n + 1 < cap)
            out[n++] = ' ';
        for (; w < p && n + 1 < cap; w++)
            out[n++] = *w;
    }
    out[n] = '\0';
    return n;
}

cg_reason_t cg_check(const char *text, size_t min_len, size_t max_len, const char *approved)
{
    if (!text)
        return CG_EMPTY;
    const char *b = text;
    while (*b && isspace((unsigned char)*b))
        b++;
    size_t len = strlen(b);
    while (len > 0 && isspace((unsigned char)b[len - 1]))
        len--;
    if (len == 0)
        return CG_EMPTY;
    if (strpbrk(b, "{}") || strstr(b, "<|") || strstr(b, "|>"))
        return CG_SLOT;
    if (has_url(b))
        return CG_URL;
    if (has_currency(b))
        return CG_CURRENCY;
    for (const char *p = b; *p; p++)
        if (isdigit((unsigned char)*p) || *p == '%')
            return CG_DIGIT;
    if (has_offer(b, approved))
        return CG_OFFER;
    if (has_name(b))
        return CG_NAME;
    if (has_echo(b))
        return CG_ECHO;
    if (len < min_len)
        return CG_TOO_SHORT;
    if (len > max_len)
        return CG_TOO_LONG;
    return CG_OK;
}

/* snprintf into out at *len; returns -1 once anything did not fit. */
__attribute__((format(printf, 4, 5))) static int put(char *out, size_t cap, size_t *len,
                                                     const char *fmt, ...)
{
    if (*len >= cap)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

int cg_offer_line(const alert_t *a, char *out, size_t cap)
{
    size_t len = 0;
    if (put(out, cap, &len, "Our suggestion for you: %s.", a->recommended_action) != 0)
        return -1;
    return (int)len;
}

int cg_facts_line(const alert_t *a, char *out, size_t cap)
{
    size_t len = 0;
    if (put(out, cap, &len, "Facts: churn probability %.0f%% (%s risk)",
            a->churn_probability * 100.0, alert_bucket_name(a->risk_bucket)) != 0)
        return -1;
    if (a->segment_id >= 0) {
        if (put(out, cap, &len, ", segment %d \"%s\"", a->segment_id, a->segment_label) != 0)
            return -1;
    } else if (put(out, cap, &len, ", no segment yet") != 0) {
        return -1;
    }
    if (put(out, cap, &len, "; recommended action: %s", a->recommended_action) != 0)
        return -1;
    for (int i = 0; i < a->n_factors; i++)
        if (put(out, cap, &len, "%s %s %+.2f", i ? "," : "; top factors:",
                a->top_factors[i].feature, a->top_factors[i].contribution) != 0)
            return -1;
    if (put(out, cap, &len, "; arm: %s.", alert_arm_name(a->arm)) != 0)
        return -1;
    return (int)len;
}

int cg_template_message(const alert_t *a, char *out, size_t cap)
{
    static const char *const greeting[] = {
        [ALERT_LOW] = "Thank you for being with us. We are always glad to hear from you.",
        [ALERT_MEDIUM] = "We noticed it has been a while, and we would love to see you back.",
        [ALERT_HIGH] = "We miss you, and we want to make your next visit worth it.",
    };
    size_t len = 0;
    const char *g =
        (unsigned)a->risk_bucket <= ALERT_HIGH ? greeting[a->risk_bucket] : greeting[ALERT_MEDIUM];
    if (put(out, cap, &len, "%s ", g) != 0)
        return -1;
    int n = cg_offer_line(a, out + len, cap - len);
    return n < 0 ? -1 : (int)len + n;
}

int cg_template_explanation(const alert_t *a, char *out, size_t cap)
{
    size_t len = 0;
    if (put(out, cap, &len,
            "The churn model flags this customer as at risk of leaving; the factors below "
            "drove the score most. ") != 0)
        return -1;
    int n = cg_facts_line(a, out + len, cap - len);
    return n < 0 ? -1 : (int)len + n;
}
