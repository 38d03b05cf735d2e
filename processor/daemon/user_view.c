/* Owns the one JSON shape of a user (user_view.h) shared by `inspect user --json` and
 * GET /v1/users/{id}, built with jansson from the record, the model and the stored latest
 * score. The request parsing in front of it is user_request.c. */
#include "user_view.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "feat.h"

/* json_real refuses NaN and infinities (JSON has neither): null instead. */
static json_t *real_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *time_or_null(int64_t t_ms)
{
    return t_ms == FEAT_NEVER ? json_null() : json_integer((json_int_t)t_ms);
}

/* Sets key to v, taking the reference; 0, -1 when v is NULL (out of memory upstream). */
static int put(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *activity_json(const user_rec_t *rec)
{
    json_t *a = json_object();
    const feat_state_t *st = &rec->feat;
    if (!a || put(a, "first_ms", time_or_null(feat_first_activity_ms(st))) ||
        put(a, "last_ms", time_or_null(feat_last_activity_ms(st))) ||
        put(a, "last_purchase_ms", time_or_null(feat_last_purchase_ms(st))) ||
        put(a, "cooldown_until_ms", time_or_null(feat_cooldown_until_ms(st))) ||
        put(a, "scored_tick_ms", time_or_null(rec->scored_tick_ms))) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *features_json(const double hv[FEAT_DIM])
{
    json_t *f = json_object();
    for (int i = 0; f && i < FEAT_DIM; i++)
        if (put(f, feat_info[i].name, real_or_null(hv[i])) != 0) {
            json_decref(f);
            return NULL;
        }
    return f;
}

/* The stored hash, typed: score a number, segment and time_ms integers, the rest strings
 * (a field this build does not know stays a string). null when there is none. */
static json_t *last_score_json(const st_fields_t *fs)
{
    if (!fs || fs->n == 0)
        return json_null();
    json_t *o = json_object();
    for (size_t i = 0; o && i < fs->n; i++) {
        const char *k = fs->names[i], *v = fs->values[i];
        char *end;
        json_t *val = NULL;
        errno = 0;
        if (strcmp(k, "score") == 0) {
            double d = strtod(v, &end);
            if (end != v && *end == '\0')
                val = real_or_null(d);
        } else if (strcmp(k, "segment") == 0 || strcmp(k, "time_ms") == 0) {
            long long n = strtoll(v, &end, 10);
            if (end != v && *end == '\0' && errno == 0)
                val = json_integer((json_int_t)n);
        }
        if (!val) /* text, or a number field that does not parse: shown as stored */
            val = json_string(v);
        if (!val) /* not UTF-8 (written by something else): JSON cannot carry it */
            val = json_null();
        if (put(o, k, val) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *factors_json(const alert_t *a)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < a->n_factors; i++) {
        const alert_factor_t *f = &a->top_factors[i];
        json_t *o = json_object();
        if (!o || put(o, "feature", json_string(f->feature)) ||
            put(o, "value", real_or_null(f->value)) ||
            put(o, "direction", json_string(f->direction)) ||
            put(o, "contribution", real_or_null(f->contribution)) ||
            json_array_append_new(arr, o) != 0) {
            json_decref(o);
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* The model's part: score, bucket, segment, kind, action, arm, factors, experts, version. */
static int model_part(json_t *o, const uv_input_t *in, user_rec_t *rec)
{
    float x[FEAT_DIM], z[FEAT_DIM], p;
    int seg;
    ex_summary_t sum;
    ex_scores_t ex;
    feat_vector(&rec->feat, in->at_ms, x);
    ex_summary_of(model_experts(in->model), &rec->feat, in->at_ms, &sum);
    model_score(in->model, x, &sum, 1, z, &p, &seg, &ex);
    alert_t a;
    alert_input_t ai = {.user_id = in->user_id,
                        .trigger = {.is_event = 0, .tick_ms = in->at_ms},
                        .event_time_ms = in->at_ms,
                        .p = p,
                        .seg = seg,
                        .z = z,
                        .state = &rec->feat,
                        .model = in->model};
    if (alert_policy_describe(in->policy, &ai, &a) != 0)
        return -1;
    json_t *segment = json_object(), *experts = json_object();
    if (!segment || !experts || put(segment, "id", json_integer(seg)) ||
        put(segment, "name",
            json_string(alert_archetype_name(alert_segment_archetype(in->model, seg)))) ||
        put(segment, "label", json_string(a.segment_label))) {
        json_decref(segment);
        json_decref(experts);
        return -1;
    }
    for (int i = 0; i < EX_N; i++)
        if (put(experts, ex_name((ex_expert_t)i), real_or_null(ex.p[i])) != 0) {
            json_decref(segment);
            json_decref(experts);
            return -1;
        }
    if (put(o, "score", real_or_null((double)p)) ||
        put(o, "bucket", json_string(alert_bucket_name(a.risk_bucket))) ||
        put(o, "segment", segment) || put(o, "kind", json_string(alert_kind_name(a.kind))) ||
        put(o, "recommended_action", json_string(a.recommended_action)) ||
        put(o, "arm", json_string(alert_arm_name(a.arm))) ||
        put(o, "top_factors", factors_json(&a)) || put(o, "experts", experts) ||
        put(o, "model_version", json_integer((json_int_t)model_version(in->model))))
        return -1;
    return 0;
}

json_t *uv_user_json(const uv_input_t *in)
{
    if (!in || !in->user_id || !in->rec || !in->policy)
        return NULL;
    user_rec_t rec = *in->rec; /* alert_input_t wants a mutable state; describe writes none */
    double hv[FEAT_DIM];
    feat_human_values(&rec.feat, in->at_ms, hv);
    json_t *o = json_object();
    if (!o || put(o, "user_id", json_string(in->user_id)) ||
        put(o, "at_ms", json_integer((json_int_t)in->at_ms)) ||
        put(o, "activity", activity_json(&rec)) || put(o, "features", features_json(hv)))
        goto fail;
    if (in->model) {
        if (model_part(o, in, &rec) != 0)
            goto fail;
    } else {
        static const char *const none[] = {
            "score", "bucket",      "segment", "kind",         "recommended_action",
            "arm",   "top_factors", "experts", "model_version"};
        for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
            if (put(o, none[i], json_null()) != 0)
                goto fail;
    }
    if (put(o, "last_score", last_score_json(in->last_score)) != 0)
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

char *uv_dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
}

char *uv_error_json(const char *what, const char *user_id)
{
    json_t *o = json_object();
    char *s = NULL;
    if (o && put(o, "error", json_string(what)) == 0 &&
        (!user_id || put(o, "user_id", json_string(user_id)) == 0))
        s = uv_dump(o);
    json_decref(o);
    return s;
}
