/* libFuzzer target for the ChurnAlert decoder (alert_decode: the alerts `respond` and `tail`
 * read from a topic anyone may write to, and the daemon's outbox read back from Redis): any
 * bytes as one message, framing auto-detected. A decode either fails with a reason or yields
 * an alert whose strings end within their buffers, whose user id is valid UTF-8, whose enums
 * and factor count are in range; that alert encodes again (plain framing) and decodes to the
 * same fields, and its JSON line is written or refused (non-finite numbers), never overrun. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static alert_decoder_t *dec;
static alert_encoder_t *enc;

static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void check_valid(const alert_t *a)
{
    if (!terminated(a->alert_id, sizeof a->alert_id) ||
        !terminated(a->user_id, sizeof a->user_id) ||
        !terminated(a->segment_label, sizeof a->segment_label) ||
        !terminated(a->recommended_action, sizeof a->recommended_action))
        abort();
    if (!ev_utf8_valid(a->user_id, strlen(a->user_id), NULL))
        abort();
    if (a->n_factors < 0 || a->n_factors > ALERT_TOP_FACTORS)
        abort();
    for (int i = 0; i < a->n_factors; i++)
        if (!a->top_factors[i].feature || !a->top_factors[i].direction)
            abort();
    if (a->risk_bucket > ALERT_HIGH || a->arm > ALERT_HOLDOUT || a->kind > ALERT_KIND_UNKNOWN ||
        a->trigger > ALERT_TRIGGER_UNKNOWN)
        abort();
}

/* Field by field; doubles bit for bit (a NaN read is written back as the same NaN). */
static void check_same(const alert_t *a, const alert_t *b)
{
    if (strcmp(a->alert_id, b->alert_id) || strcmp(a->user_id, b->user_id) ||
        strcmp(a->segment_label, b->segment_label) ||
        strcmp(a->recommended_action, b->recommended_action) ||
        a->event_time_ms != b->event_time_ms ||
        !same_double(a->churn_probability, b->churn_probability) ||
        a->risk_bucket != b->risk_bucket || a->segment_id != b->segment_id ||
        a->n_factors != b->n_factors || a->model_version != b->model_version || a->arm != b->arm ||
        a->kind != b->kind || a->trigger != b->trigger || a->created_at_ms != b->created_at_ms)
        abort();
    for (int i = 0; i < a->n_factors; i++)
        if (strcmp(a->top_factors[i].feature, b->top_factors[i].feature) ||
            strcmp(a->top_factors[i].direction, b->top_factors[i].direction) ||
            !same_double(a->top_factors[i].contribution, b->top_factors[i].contribution) ||
            !same_double(a->top_factors[i].value, b->top_factors[i].value))
            abort();
    for (int i = 0; i < FEAT_DIM; i++)
        if (!same_double(a->features[i], b->features[i]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], why[256];
    if (!dec && !(dec = alert_decoder_new(err, sizeof err)))
        abort();
    if (!enc && !(enc = alert_encoder_new(EV_WIRE_PLAIN, 1, err, sizeof err)))
        abort();
    alert_t a, b;
    why[0] = '\0';
    if (alert_decode(dec, data, size, &a, why, sizeof why) != 0) {
        if (why[0] == '\0')
            abort();
        return 0;
    }
    check_valid(&a);
    /* The factor names point into the decoder: keep copies before decoding again. */
    /* As large as the decoder's own (alert_decode.c: names of 64 bytes, directions of 16). */
    char feature[ALERT_TOP_FACTORS][65], direction[ALERT_TOP_FACTORS][17];
    for (int i = 0; i < a.n_factors; i++) {
        if (strlen(a.top_factors[i].feature) >= sizeof feature[i] ||
            strlen(a.top_factors[i].direction) >= sizeof direction[i])
            abort();
        strcpy(feature[i], a.top_factors[i].feature);
        strcpy(direction[i], a.top_factors[i].direction);
        a.top_factors[i].feature = feature[i];
        a.top_factors[i].direction = direction[i];
    }
    const void *buf;
    size_t len;
    if (alert_encode(enc, &a, &buf, &len) != 0)
        abort();
    if (alert_decode(dec, buf, len, &b, why, sizeof why) != 0)
        abort();
    check_same(&a, &b);
    char json[16384];
    int n = alert_to_json(&a, json, sizeof json);
    if (n >= (int)sizeof json || (n >= 0 && json[n] != '\0'))
        abort();
    int finite = isfinite(a.churn_probability);
    for (int i = 0; i < FEAT_DIM; i++)
        finite &= isfinite(a.features[i]);
    for (int i = 0; i < a.n_factors; i++)
        finite &= isfinite(a.top_factors[i].contribution) && isfinite(a.top_factors[i].value);
    if (finite && n < 0)
        abort(); /* the JSON buffer above holds any alert of finite numbers */
    return 0;
}
