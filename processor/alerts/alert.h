/* Alert policy and the ChurnAlert record (DESIGN.md section 6; schemas/alert.avsc): which
 * scored users alert (threshold or top percent of the tick, cooldown, min examples), what
 * the alert says (risk bucket, segment and its label, recommended action, top factors,
 * holdout arm, features) and its deterministic id. Shared by `run` and `replay`. */
#ifndef CS_ALERT_H
#define CS_ALERT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "codec.h"
#include "config.h"
#include "event.h"
#include "feat.h"
#include "model.h"

#define ALERT_TOP_FACTORS 3
#define ALERT_ID_LEN      32 /* hex characters */

typedef enum { ALERT_LOW = 0, ALERT_MEDIUM, ALERT_HIGH } alert_bucket_t;
typedef enum { ALERT_TREATMENT = 0, ALERT_HOLDOUT } alert_arm_t;
/* Kind of alert (Avro enum AlertKind). at_risk: the user is still within their own rhythm
 * and the score says they are slipping (early warning: retention offers); lapsed: quiet
 * past their own rhythm (win-back). unknown is never produced: it is what a reader with
 * this schema sees in alerts written before the field existed. */
typedef enum { ALERT_AT_RISK = 0, ALERT_LAPSED, ALERT_KIND_UNKNOWN } alert_kind_t;
/* What made the alert (Avro enum AlertTrigger): a tick sweep or a strong-signal event;
 * unknown as for the kind. */
typedef enum { ALERT_BY_TICK = 0, ALERT_BY_EVENT, ALERT_TRIGGER_UNKNOWN } alert_trigger_kind_t;

/* The kind rule (alert_kind_of): a user active in the last ALERT_RECENT_DAYS days, or with
 * at least 2 active days and quiet for at most ALERT_RHYTHM_FACTOR times their mean gap
 * between active days, is at_risk; a user quiet for longer is lapsed. A user with one
 * active day has no rhythm yet: lapsed after ALERT_RECENT_DAYS days. A user with no
 * activity at all (only non-activity events such as subscription_cancel) is at_risk: there
 * is nothing to win back, the signal is an intent. */
#define ALERT_RECENT_DAYS   14.0
#define ALERT_RHYTHM_FACTOR 1.5

typedef struct alert_factor_s {
    const char *feature;   /* feat_info[i].name (static) */
    double contribution;   /* w_i * z_i */
    double value;          /* the user's value of the feature, human units (feat_human_value) */
    const char *direction; /* "high"/"low" ("rising"/"falling" for a trend): the sign of z_i,
                              i.e. the value against the population's; static */
} alert_factor_t;

/* Segment archetypes: a short business name derived from a k-means centre (RFM-style), the
 * second key of the default action table. The rules, on the centre's z-scores (T tenure_days,
 * L active_days_lifetime, C coupons_90d, R days_since_activity, TR activity_trend_7d_30d,
 * F active_days_90d, M revenue_90d), first match wins:
 *   new                T <= -0.75 and L <= 0
 *   discount seekers   C >= 0.75
 *   slipping regulars  L >= 0.25 and (R >= 0.5 or TR <= -0.5)
 *   champions          R <= 0 and F >= 0.5 and M >= 0.5
 *   loyal              R <= 0.25 and F >= 0.25
 *   one-time buyers    L <= -0.5 and R >= 0.5
 *   hibernating        R >= 0.75
 *   occasional         anything else */
typedef enum {
    ALERT_ARCH_NONE = 0, /* unsegmented (k-means not seeded) */
    ALERT_ARCH_NEW,
    ALERT_ARCH_DISCOUNT,
    ALERT_ARCH_SLIPPING,
    ALERT_ARCH_CHAMPIONS,
    ALERT_ARCH_LOYAL,
    ALERT_ARCH_ONE_TIME,
    ALERT_ARCH_HIBERNATING,
    ALERT_ARCH_OCCASIONAL,
    ALERT_ARCH_COUNT
} alert_archetype_t;

/* Business name of an archetype ("champions", "slipping regulars", ...; "unsegmented").
 * Static string. */
const char *alert_archetype_name(alert_archetype_t a);
/* Archetype of a centre (z[FEAT_DIM], model_segment_centre) by the rules above. */
alert_archetype_t alert_archetype_of(const double z[FEAT_DIM]);

/* Cut points of risk_bucket from alert.buckets, "MEDIUM,HIGH" (spaces allowed): low below
 * MEDIUM, medium from MEDIUM, high from HIGH, 0 <= MEDIUM <= HIGH <= 1. NULL or "" gives the
 * defaults 0.5, 0.85. Returns 0, or -1 with e.g. "expected MEDIUM,HIGH with 0 <= MEDIUM <=
 * HIGH <= 1, got \"0.9,0.4\"" in errstr. */
int alert_buckets_parse(const char *text, double *medium, double *high, char *errstr,
                        size_t errstr_size);

/* One alert, a plain value (no heap). */
typedef struct alert_s {
    char alert_id[ALERT_ID_LEN + 1];
    char user_id[EV_USER_ID_MAX + 1];
    int64_t event_time_ms; /* the tick, or the triggering event's time */
    double churn_probability;
    alert_bucket_t risk_bucket;
    int segment_id; /* -1 while k-means is not seeded */
    char segment_label[160];
    char recommended_action[96];
    alert_factor_t top_factors[ALERT_TOP_FACTORS];
    int n_factors;
    int64_t model_version;
    alert_arm_t arm;
    double features[FEAT_DIM]; /* human units (feat_human_value) */
    alert_kind_t kind;
    alert_trigger_kind_t trigger;
    /* Event-time instant the alert was created: the tick for a tick sweep; for an event,
     * the user's event-time clock when it was processed (their latest event time, so a
     * late event's alert is created after the event it reacts to). Not the Kafka
     * timestamp, which is the produce time (wall clock: years later in a backfill). */
    int64_t created_at_ms;
} alert_t;

/* What triggered a scoring: a tick sweep (user, tick), or a strong-signal event (its
 * partition and offset), which makes the alert id stable across re-sends and recomputation
 * after a crash. */
typedef struct alert_trigger_s {
    int is_event;
    int64_t tick_ms;   /* !is_event */
    int32_t partition; /* is_event */
    int64_t offset;    /* is_event */
} alert_trigger_t;

/* ---- names and the deterministic parts (alert_id.c) ---- */

/* Avro symbol of a bucket ("low", "medium", "high") and of an arm ("treatment", "holdout"). */
const char *alert_bucket_name(alert_bucket_t b);
const char *alert_arm_name(alert_arm_t a);
/* Avro symbol of a kind ("at_risk", "lapsed", "unknown") and of a trigger ("tick", "event",
 * "unknown"); out-of-range values give "unknown". Static strings. */
const char *alert_kind_name(alert_kind_t k);
const char *alert_trigger_name(alert_trigger_kind_t t);

/* Kind of an alert from the user's human feature values (feat_human_values) at the alert's
 * event time, by the rule above ALERT_RECENT_DAYS. */
alert_kind_t alert_kind_of(const double features[FEAT_DIM]);
/* The same rule from the three values it reads (feat_rhythm gives them). */
alert_kind_t alert_kind_from(double quiet_days, double active_days, double gap_days);

/* Risk bucket of a probability by the cut points of alert.buckets: high when p >= high,
 * medium when medium <= p < high, low below medium. medium == high leaves medium empty. */
alert_bucket_t alert_bucket_of(double p, double medium, double high);

/* SipHash-2-4 (Aumasson & Bernstein) of len bytes under a 16-byte key: the one hash behind
 * alert ids, holdout arms and the top-percent tie break. */
uint64_t alert_siphash24(const uint8_t key[16], const void *buf, size_t len);

/* alert_id: 32 lowercase hex digits, two SipHash-2-4 halves (two fixed keys) of
 * "tick|<user_id>|<tick_ms>" or "event|<partition>|<offset>" (decimal). Same trigger and
 * user, same id: on every host, in every run. out receives ALERT_ID_LEN + 1 bytes. */
void alert_make_id(const alert_trigger_t *trigger, const char *user_id, size_t user_id_len,
                   char out[ALERT_ID_LEN + 1]);

/* Experiment arm: holdout when SipHash(salt, 0x00, user_id) % 10000 < holdout_percent * 100
 * (rounded to the basis point). A pure function of (salt, user_id, percent): a user is in
 * the same arm in every run and on every instance. */
alert_arm_t alert_arm_of(const char *salt, const char *user_id, size_t user_id_len,
                         double holdout_percent);

/* Alerts of a tick in top-percent mode: floor(n * top_percent / 100), the percent resolved
 * to 1e-6 (so 0.29% of 10,000 is exactly 29, whatever the double rounding). */
size_t alert_top_count(size_t n, double top_percent);

/* ---- the policy (alert_policy.c) ---- */

typedef struct alert_policy_s alert_policy_t;

/* Writes the grammar of alert.actions and the built-in defaults (for --help). */
void alert_print_actions_help(FILE *out);

/* Checks an alert.actions table without building a policy (the config loader calls it at
 * load time, so a bad table stops every command with exit 2). k > 0 also rejects segment
 * ids >= k. Returns 0, or -1 with "alert.actions: entry N: ..." in errstr. */
int alert_actions_check(const char *text, int k, char *errstr, size_t errstr_size);

/* Creates a policy from the alert.* keys and model.min_examples of cfg (copied; cfg may be
 * freed afterwards). Parses alert.actions; a bad table returns NULL with e.g.
 * "alert.actions: entry 3: bucket \"huge\": expected low, medium, high or *" in errstr.
 * Free with alert_policy_destroy(). */
alert_policy_t *alert_policy_new(const cfg_t *cfg, char *errstr, size_t errstr_size);
/* Frees the policy, its pending candidates and its output buffer; NULL is a no-op. */
void alert_policy_destroy(alert_policy_t *ap);

/* Recommended action for a segment (-1 = unsegmented), bucket, kind and the segment's
 * archetype: the most specific entry of alert.actions (SEG:BUCKET, then SEG:*, then
 * *:BUCKET, then *:*), else the built-in default (alert_default_action). Static storage
 * owned by the policy. */
const char *alert_policy_action(const alert_policy_t *ap, int segment_id, alert_bucket_t b,
                                alert_kind_t kind, alert_archetype_t arch);
/* The built-in default action table (static strings): low -> monitor; lapsed -> a win-back
 * campaign (a personal win-back offer for the high-value archetypes); at_risk by archetype:
 * new -> onboarding nudge, discount seekers -> coupon, champions/loyal/slipping regulars ->
 * personal outreach (high) or a loyalty reward (medium), one-time buyers -> second-purchase
 * incentive, the rest -> re-engagement email. */
const char *alert_default_action(alert_bucket_t b, alert_kind_t kind, alert_archetype_t arch);

/* One scored snapshot or event rescoring. Everything is borrowed for the call only. */
typedef struct alert_input_s {
    const char *user_id; /* NUL-terminated, 1..EV_USER_ID_MAX bytes */
    alert_trigger_t trigger;
    int64_t event_time_ms; /* the tick, or the triggering event's time */
    double p;              /* churn probability, finite, in [0, 1] */
    int seg;               /* segment id, -1 while k-means is not seeded */
    const float *z;        /* FEAT_DIM standardized features (the top factors' z_i) */
    /* The user's state: cooldown is read and, on an alert, written; `features` are its human
     * values at event_time_ms (not the model's log1p-transformed row). */
    feat_state_t *state;
    model_t *model; /* version, examples seen, weights, segment names (written once per
                       segment version: model_set_segment_name) */
    /* What alert_policy_prepare computed for this input ahead of the call, or NULL (then
     * consider computes it). */
    const struct alert_prep_s *prep;
} alert_input_t;

/* The part of an alert that only reads the user's state, the row and the model: the human
 * feature values at event_time_ms, the kind and the top factors (the costly part: a full
 * feature recomputation and the model's explanation). */
typedef struct alert_prep_s {
    int valid; /* 0: consider would not build an alert from this input (gated, or below the
                  threshold in threshold mode), nothing computed */
    double features[FEAT_DIM];
    alert_kind_t kind;
    int n_factors;
    alert_factor_t top_factors[ALERT_TOP_FACTORS];
    uint8_t factor_idx[ALERT_TOP_FACTORS], factor_low[ALERT_TOP_FACTORS];
} alert_prep_t;

/* Computes *out for in (its prep is ignored), reading only: safe to run concurrently with
 * itself (a sweep team prepares a chunk of snapshots at once) as long as nobody writes the
 * user's state or the model meanwhile. consider's result with in->prep = out is the same,
 * byte for byte, as without. */
void alert_policy_prepare(const alert_policy_t *ap, const alert_input_t *in, alert_prep_t *out);

/* Decides on one scoring. Gates, in order: model_examples_seen >= model.min_examples; not
 * in cooldown (in cooldown while event_time < cooldown_until); p >= alert.threshold (or,
 * with alert.medium, p >= the medium cut of alert.buckets). When
 * all pass, fills *out, sets the state's cooldown_until to event_time + alert.cooldown and
 * returns 1. Otherwise returns 0 (*out untouched), or -1 on a bad input (NULL pointers,
 * user id length, p not in [0, 1], a model not of FEAT_DIM features) or out of memory.
 * Top-percent mode (alert.top_percent > 0), tick triggers only: every snapshot considered
 * for tick T counts in T's ranking, alert or not; one that passes the first two gates but
 * not the threshold is kept as a candidate (about 300 bytes plus its user id and segment
 * label, until alert_policy_tick_done(T): memory grows with the tick's eligible users, so
 * size the host for the largest tick) and may alert at tick_done. Snapshots of a tick that
 * was already done are judged by the threshold only. Event triggers never rank. */
int alert_policy_consider(alert_policy_t *ap, const alert_input_t *in, alert_t *out);

/* What an alert on this input would say, without deciding or changing anything: *out is
 * filled as alert_policy_consider fills an alert (bucket, segment label, action, kind, top
 * factors, arm, features, an id from in->trigger); the gates are not applied, no cooldown or
 * ranking changes, and a segment without a frozen name is named from its centre without
 * recording it in in->model (which is not modified). Returns 0, or -1 on a bad input (as
 * alert_policy_consider). For `inspect user` and GET /v1/users/{id}. */
int alert_policy_describe(alert_policy_t *ap, const alert_input_t *in, alert_t *out);
/* Risk bucket of p by this policy's alert.buckets. */
alert_bucket_t alert_policy_bucket(const alert_policy_t *ap, double p);
/* Archetype of segment seg: from its frozen name when it has one under the current segment
 * version, else from its centre now, without freezing it (only alerts name segments).
 * ALERT_ARCH_NONE for -1 or a segment that does not exist (yet). */
alert_archetype_t alert_segment_archetype(const model_t *m, int seg);

/* How tick_done reaches user state to check and set cooldowns. `state` returns the user's
 * state (valid until the next call) or NULL when the user is gone (the candidate is then
 * dropped); `touched` (may be NULL) is told after the policy set a user's cooldown, so the
 * store commits the record. */
typedef struct alert_state_access_s {
    void *opaque;
    feat_state_t *(*state)(void *opaque, const char *user_id);
    void (*touched)(void *opaque, const char *user_id, feat_state_t *st);
} alert_state_access_t;

/* Top-percent selection for every pending tick <= tick_ms, in tick order (a no-op with
 * *n = 0 when top-percent mode is off). Tick T's n snapshots are ranked by p (descending;
 * ties by a hash of the user id, so the order of consideration does not matter) and the
 * first alert_top_count(n) are "in the top percent". Those that already alerted by
 * threshold, or failed a gate, take their place without a second alert; every candidate
 * among them is checked again for cooldown through `acc` (its state may have changed since:
 * an alert at a later tick), and on an alert gets its cooldown set through `acc`. So the
 * caller does not touch cooldowns itself; it only produces *alerts.
 * *alerts points to *n alerts owned by the policy, valid until the next consider, tick_done
 * or destroy. Returns 0, or -1 when out of memory (pending ticks are then dropped). */
int alert_policy_tick_done(alert_policy_t *ap, int64_t tick_ms, const alert_state_access_t *acc,
                           const alert_t **alerts, size_t *n);

/* ---- wire (alert_codec.c) ---- */

/* One JSON object on one line (no newline), keys exactly the Avro field names, event_time
 * in epoch ms, doubles with 17 significant digits (round-trip exact), strings escaped
 * (quotes, backslash, control characters as \uXXXX; invalid UTF-8 bytes become U+FFFD).
 * Returns the length written (NUL-terminated), or -1 when cap is too small or a number is
 * not finite (the policy never builds one: JSON has no NaN and null is not a double). */
int alert_to_json(const alert_t *a, char *buf, size_t cap);

typedef struct alert_encoder_s alert_encoder_t;
/* Creates an encoder of ChurnAlert (schemas/alert.avsc, built in) in the given framing (not
 * EV_WIRE_AUTO); schema_id is written by Confluent framing only. NULL with errstr set on a
 * bad framing or out of memory. Free with alert_encoder_destroy(). */
alert_encoder_t *alert_encoder_new(ev_wire_t framing, int32_t schema_id, char *errstr,
                                   size_t errstr_size);
/* Encodes one alert into the encoder's buffer (no allocation): *buf / *len are valid until
 * the next call. Returns 0, -1 on an unencodable alert (bad enum, n_factors out of range,
 * an empty alert_id: plain framing could not tell it from Confluent). */
int alert_encode(alert_encoder_t *enc, const alert_t *a, const void **buf, size_t *len);
/* Fingerprint (CRC-64-AVRO) of the built-in schema's canonical form, as single-object
 * framing writes it. */
uint64_t alert_encoder_fingerprint(const alert_encoder_t *enc);
/* Frees; NULL is a no-op. */
void alert_encoder_destroy(alert_encoder_t *enc);

typedef struct alert_decoder_s alert_decoder_t;
/* Creates a decoder of ChurnAlert (schemas/alert.avsc, built in). NULL with errstr set on
 * out of memory. Free with alert_decoder_destroy(). (alert_decode.c) */
alert_decoder_t *alert_decoder_new(char *errstr, size_t errstr_size);
/* Decodes one message, framing auto-detected: Confluent (any schema id is taken as
 * alert.avsc: there is no registry), single-object (the fingerprint must be alert.avsc's) or
 * plain. Fills *out (overwritten); its top_factors[].feature and .direction point into the
 * decoder, valid until the next call. Only schemas/alert.avsc as built in (version 2): a
 * version-1 alert (no kind, trigger, created_at, factor value or direction) is refused, and so
 * is a user_id that is not UTF-8 (it goes back into events, which require it). Returns 0,
 * or -1 with why set: a hostile length, count or symbol, trailing bytes, a string longer than
 * alert_t holds, more than ALERT_TOP_FACTORS factors or a missing feature. Never reads past
 * buf+len. */
int alert_decode(alert_decoder_t *dec, const void *buf, size_t len, alert_t *out, char *why,
                 size_t why_size);
/* Frees; NULL is a no-op. */
void alert_decoder_destroy(alert_decoder_t *dec);

#endif
