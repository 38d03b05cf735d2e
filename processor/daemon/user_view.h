/* One user as other services read it: the JSON object of `churnstream inspect user --json`
 * and of GET /v1/users/{id} (one builder for both), and the bounds-checked parsing of what
 * a request brings (the id from the URL path, the time). Pure functions: the reads are the
 * caller's (st_redis_read_user, the model). */
#ifndef CS_USER_VIEW_H
#define CS_USER_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "alert.h"
#include "model.h"
#include "store_redis.h"
#include "user.h"

/* What the view is built from; everything borrowed for the call. */
typedef struct uv_input_s {
    const char *user_id;   /* NUL-terminated */
    const user_rec_t *rec; /* the stored record */
    /* The scoring model, or NULL when none is stored (score fields are then null). Read
     * only (alert_policy_describe records nothing in it). */
    model_t *model;
    alert_policy_t *policy;        /* bucket cut points, actions, holdout arm */
    const st_fields_t *last_score; /* P score:<id> as stored; NULL or n = 0: none */
    int64_t at_ms;                 /* the time features and score are computed at */
} uv_input_t;

/* The user's JSON object: user_id, at_ms, activity times (null when never), features by
 * name in human units at at_ms, and with a model: score, bucket, segment {id, name, label},
 * kind, recommended_action, arm, top_factors [{feature, value, direction, contribution}],
 * experts {name: p}, model_version; then last_score, the stored hash with its numbers as
 * numbers (null when there is none). Key order is fixed. A new reference (json_decref), or
 * NULL on out of memory or a bad input. */
json_t *uv_user_json(const uv_input_t *in);

/* The text every caller sends: compact, keys in the order built, doubles with 9 significant
 * digits (floats round-trip), no trailing newline. malloc'd (free), NULL on out of memory. */
char *uv_dump(const json_t *j);

/* {"error": what, "user_id": id (omitted when NULL)} dumped as above; malloc'd or NULL. */
char *uv_error_json(const char *what, const char *user_id);

/* Decodes the user id of a request path (the part after "/v1/users/", still %-encoded: the
 * HTTP server is told not to decode it, so a %00 cannot cut the id short). Writes the id,
 * NUL-terminated, into out[cap] and its length into *len. Returns 0, or -1 with a reason in
 * why[why_size] when the id is empty, longer than EV_USER_ID_MAX bytes once decoded, holds a
 * bad %-escape, a NUL, or is not UTF-8. Never reads past the NUL of `raw` nor writes past
 * out[cap - 1]. */
int uv_decode_id(const char *raw, char *out, size_t cap, size_t *len, char *why, size_t why_size);

/* A time: epoch milliseconds ("1704067200000", optionally negative), or ISO-8601 UTC
 * (ev_parse_iso_ms: "2024-05-01", "2024-05-01T12:00:00Z", ...). 0, or -1. */
int uv_parse_time(const char *text, int64_t *out_ms);

#endif
