/* The record kept per user: the feature state (processor/features.h) plus the engine's
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
} user_rec_t;

#define USER_REC_MAX_BYTES (FEAT_ENCODED_BYTES + 26)

void user_rec_init(user_rec_t *rec);
/* Packs rec (version byte, then little-endian fields); returns bytes written, 0 when cap is
 * too small. */
size_t user_rec_encode(const user_rec_t *rec, uint8_t *buf, size_t cap);
/* Unpacks; -1 with errstr set on a wrong version or length. */
int user_rec_decode(user_rec_t *rec, const uint8_t *buf, size_t len, char *errstr,
                    size_t errstr_size);

#endif
