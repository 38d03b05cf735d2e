/* Model journals (issue 15, several instances sharing one model): a model's learning
 * recorded as the calls that made it, so that another copy of the model can replay it.
 *
 * Why calls and not differences of parameters: most of the model does not add up. AdaGrad's
 * steps depend on its accumulators, k-means reseeds and decays, the calibrator and Hedge fold
 * decayed per-tick statistics, BG/NBD is refitted. Replaying the labelled rows and the tick
 * events through the same code gives the merged model exactly what one instance would have
 * learnt from the same calls in the same order, with no approximation to argue about.
 *
 * What is recorded (model.h's learning calls, while a journal is attached with
 * model_record_to): model_learn's rows, model_mark_day, model_prequential,
 * model_tick_start, the outcome of model_refit_bgnbd (its parameters and, when refitted,
 * the shapes' parameters, not its table),
 * model_ticks_complete and model_set_segment_name.
 *
 * Replay (model_replay) is idempotent where several copies report the same population-level
 * event: a fit is applied only for a tick after the model's last fit, a tick start only once
 * (ex_tick_start), ticks complete only once (a later `through` folds what is left), a segment
 * name only under the segment version it was given for and only when that segment has none.
 * Rows, day marks and prequential pairs are applied every time: the caller applies each
 * journal once (the store keys them by partition and sequence). Replaying one copy's journal
 * in its order onto the model it started from gives the same bytes (tests/unit). Replay
 * refuses what no engine records (fuzzed: tests/fuzz/fuzz_journal.c): an unknown op, a row
 * of another dimension, a label other than 0 or 1, a feature beyond 1e15, a summary that
 * breaks experts.h's invariants, a tick beyond +-2^52 ms, a day beyond +-2^36.
 *
 * Bytes: a sequence of ops, each a u8 code then its fields, little-endian (model_wire.h):
 *   1 DAY      u64 day (days since the epoch, two's complement)
 *   2 FIT      u64 tick_ms | u8 ok | when ok: f64 r, alpha, a, b, f64 users, loglik,
 *              u32 iterations
 *   3 TICK     u64 tick_ms
 *   4 PM       f64 p | u8 y
 *   5 LEARN    u32 dim | u32 n | n x (u64 tick_ms | f32 y | f64 rep, t_x, age, h |
 *              dim x f32 x)
 *   6 COMPLETE u64 through_ms
 *   7 NAME     u64 segment version | u32 seg | u8 arch | u32 len | len bytes of label
 *   8 SHAPES   u64 tick_ms | (EX_SHAPES - 1) x f64 r, alpha, a, b (experts.h: the BTYD
 *              shapes k > 1, after a refit of them; applied for a later tick only)
 * Memory: a journal owns its buffer; it grows with the batch and is emptied by mj_clear. */
#ifndef CS_MODEL_JOURNAL_H
#define CS_MODEL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model_wire.h"

typedef struct mj_s {
    mw_buf_t b;
    uint64_t rows; /* labelled rows recorded (LEARN's n, summed) */
    uint64_t ops;
} mj_t;

void mj_init(mj_t *j);
/* Empties the journal (keeps its memory). */
void mj_clear(mj_t *j);
void mj_free(mj_t *j);
/* 1 when an append failed for lack of memory: the journal is incomplete, the batch that
 * recorded it must not be committed. */
int mj_failed(const mj_t *j);

#endif
