/* The record kept per user: the feature state (processor/feat.h) plus the engine's
 * label bookkeeping. This is what the user stores keep and what `cs:u:<id>` holds, packed. */
#ifndef CS_USER_H
#define CS_USER_H

#include <stddef.h>
#include <stdint.h>

#include "feat.h"

typedef struct user_rec_s {
    feat_state_t feat;
    /* Latest tick whose snapshot was scored (INT64_MIN when none). Every eligible tick not
     * yet scored is after it (needs lateness < tick, see engine.h), so one number replaces a
     * per-snapshot flag. */
    int64_t scored_tick_ms;
    /* Latest tick whose snapshot was resolved as a negative (INT64_MIN when none): a late
     * event only resolves ticks after it, so no snapshot is labelled twice. */
    int64_t resolved_tick_ms;
    /* A tick T whose positive label is likely but not yet certain (INT64_MIN when none): an
     * activity at t >= T+H arrived while an event within the lateness could still land in
     * [T, T+H). Settled by the next event of the user or by the sweep at T+H. */
    int64_t pending_positive_ms;
    /* The alert whose outcome is pending (processor/alerts/outcome.h): its created_at
     * (INT64_MIN when none) and what the outcome is counted by. Set by the pipeline when an
     * alert fires, cleared when the outcome is decided; not part of what events derive. */
    int64_t outcome_alert_ms;
    uint8_t outcome_arm;    /* alert_arm_t */
    uint8_t outcome_kind;   /* alert_kind_t: at_risk or lapsed */
    uint8_t outcome_bucket; /* alert_bucket_t */
    uint8_t outcome_arch;   /* alert_archetype_t of the segment (0..15) */
    int16_t outcome_seg;    /* segment id, -1 unsegmented (model.k <= 64) */
    /* Not stored: a handle the record's in-process consumer may keep to find its own entry
     * for this user without hashing the id again (replay's pending scores: handle + 1), 0
     * when none. A hint only: the consumer checks it against the id. 0 after user_rec_init
     * and user_rec_decode. */
    uint32_t memo;
} user_rec_t;

/* The Redis value, version 3 (DESIGN.md section 3 budgets MEMORY USAGE of a user's key at
 * 200 bytes; a value of <= 124 bytes lands in jemalloc's 128-byte class and costs 184 bytes
 * for "cs:u:12345678", 125..131 bytes cost 216):
 *   u8 version = 3 | feature state (feat_encode, feat.h) | time code scored_tick_ms |
 *   time code resolved_tick_ms | time code pending_positive_ms | time code outcome_alert_ms
 *   [ u8 arm | kind << 1 | bucket << 2 | arch << 4, u8 seg + 1: only when outcome_alert_ms
 *   is set ]
 * Time codes are feat.h's (INT64_MIN -> 0, 1 byte; round ticks near t_ref 1-3 bytes). Every
 * field is required and the record must end exactly after the last one, so no proper prefix
 * of a record is valid. A user with no pending outcome costs 1 byte more than version 2; one
 * with a pending outcome 3-10 bytes. Version 2 (no outcome) is read as version 3 with no
 * pending outcome and written back as version 3; version 1 (fixed 149 bytes) is rejected:
 * nothing was deployed. */
#define USER_REC_VERSION 3
/* True maximum: 1 + FEAT_ENCODED_MAX_BYTES + 4 time codes + 2 = 163 bytes. */
#define USER_REC_MAX_BYTES (1 + FEAT_ENCODED_MAX_BYTES + 4 * FEAT_TIME_CODE_MAX_BYTES + 2)

void user_rec_init(user_rec_t *rec);
/* Packs rec into buf (caller-owned); returns the bytes written (2..USER_REC_MAX_BYTES), or 0
 * when cap is too small or rec is outside the encodable domain: a feature state breaking its
 * invariants, or a tick field neither INT64_MIN nor within +-FEAT_DERIVED_TIME_LIMIT_MS
 * (unreachable from the engine). decode(encode(rec)) equals rec field by field. */
size_t user_rec_encode(const user_rec_t *rec, uint8_t *buf, size_t cap);
/* Unpacks exactly len bytes; never reads past them. Returns 0, or -1 with a message in
 * errstr ("user record: ...": wrong version, truncated, trailing bytes, corrupt field);
 * *rec is then unchanged. */
int user_rec_decode(user_rec_t *rec, const uint8_t *buf, size_t len, char *errstr,
                    size_t errstr_size);
/* 1 when a and b agree on everything but the alert cooldown and pending outcome
 * (feat_event_part_equal plus the three tick fields): what a replay must reproduce whatever the
 * model did. Byte-prefix comparison of encodings no longer applies (variable length). */
int user_rec_event_part_equal(const user_rec_t *a, const user_rec_t *b);

#endif
