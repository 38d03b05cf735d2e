/* libFuzzer target for the guardrails of `churnstream compose` (compose_guard.h) on what a
 * language model may answer: any bytes as the answer's text. The first byte picks how many
 * sentences are kept and which part's bounds apply; the text goes through the path of
 * compose.c (cg_normalize, cg_first_sentences, cg_check) and through cg_words_of. Checked:
 * outputs end within their buffers at the length returned, normalized text has no white
 * space at either end and no run or new line, a kept prefix is a prefix, a verdict is a
 * guardrail reason (never an endpoint one) and the same twice, and a text passed as CG_OK
 * has no digit, '%', brace or chat token and respects the part's length bounds. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compose_guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    const int sentences = 1 + data[0] % 4;
    const int explanation = (data[0] >> 2) & 1;
    const char *approved = (data[0] >> 3) & 1 ? "win-back coupon" : NULL;
    char *text = malloc(size); /* the answer as jansson hands it: NUL-terminated */
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    char out[1024];
    size_t caps[] = {sizeof out, 7, 1};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        memset(out, 'X', sizeof out);
        size_t n = cg_normalize(text, out, caps[c]);
        if (n >= caps[c] || out[n] != '\0' || strlen(out) != n)
            abort();
        if (caps[c] == sizeof out && n > 0 &&
            (isspace((unsigned char)out[0]) || isspace((unsigned char)out[n - 1]) ||
             strchr(out, '\n') || strstr(out, "  ")))
            abort();
    }
    size_t n = cg_normalize(text, out, sizeof out);
    char before[sizeof out];
    memcpy(before, out, n + 1);
    size_t kept = cg_first_sentences(out, sentences);
    if (kept > n || out[kept] != '\0' || strlen(out) != kept || memcmp(out, before, kept) != 0)
        abort();

    size_t lo = explanation ? CG_EXPLANATION_MIN : CG_MESSAGE_MIN;
    size_t hi = explanation ? CG_EXPLANATION_MAX : CG_MESSAGE_MAX;
    cg_reason_t r = cg_check(out, lo, hi, approved);
    if (r < CG_OK || r >= CG_ENDPOINT || cg_check(out, lo, hi, approved) != r)
        abort();
    if (r == CG_OK) {
        if (kept < lo || kept > hi || strpbrk(out, "0123456789%{}") || strstr(out, "<|") ||
            strstr(out, "|>"))
            abort();
    }
    (void)cg_check(text, lo, hi, approved); /* the raw text too: any bytes, no crash */

    char words[64];
    size_t w = cg_words_of(text, words, sizeof words);
    if (w >= sizeof words || words[w] != '\0' || strlen(words) != w || strpbrk(words, "0123456789"))
        abort();
    free(text);
    return 0;
}
