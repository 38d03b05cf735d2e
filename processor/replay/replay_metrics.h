/* The replay's exact backtest metrics in memory that does not grow with the log: a labelled
 * snapshot is held only until its tick closes (every label of the tick is in: the engine
 * resolved the tick's positives at T + H), then the tick's per-tick metrics are summed and
 * its scores go to the AUC spills (auc_spill.h), which keep at most a fixed number of keys
 * in memory and sort the rest on disk.
 *
 * Memory: the open ticks' rows (those of the last H, as the engine's pending scores), one
 * small record per closed tick, and the spills' buffers. The figures are those of
 * bt_compute over all in-window rows at once, bit for bit, but for the second half's
 * log-loss: a sum of per-tick sums instead of one running sum (a difference in the last
 * bits of a double, below the printed digits). */
#ifndef CS_REPLAY_METRICS_H
#define CS_REPLAY_METRICS_H

#include <stdint.h>

#include "pool.h"
#include "replay.h"

typedef struct rp_metrics_s rp_metrics_t;

/* spill_keys: keys of each score column kept in memory before a sorted run goes to disk
 * (0: the default, RPM_SPILL_KEYS). team (borrowed, may be NULL): the score columns are
 * summed concurrently on it (each column's figures are its own, so they do not depend on
 * the team). NULL on out of memory. */
#define RPM_SPILL_KEYS (1u << 18)
rp_metrics_t *rpm_new(size_t spill_keys, cs_pool_t *team);
/* A labelled snapshot (its in_window is ignored). 0; 1 when its tick has closed already (the
 * row is left out: a label after its tick's positives is a bug the caller reports); -1 on
 * out of memory. */
int rpm_add(rp_metrics_t *m, const rp_row_t *row);
/* Closes the open ticks before tick_ms, in tick order. 0, or -1 with rpm_error. */
int rpm_close_before(rp_metrics_t *m, int64_t tick_ms);
/* The end: closes the ticks whose window [T, T+H) ends by end_ms, drops the others (censored:
 * their labels came from a window cut by the end), and fills sum's metrics (model, recency,
 * experts, early-warning and first-quarter AUCs), labelled, seg_size and seg_positives.
 * 0, or -1 with rpm_error. */
int rpm_finish(rp_metrics_t *m, int64_t horizon_ms, int64_t end_ms, rp_summary_t *sum);
/* Sorted runs written to disk (0 when every score fitted in memory). */
size_t rpm_spilled_runs(const rp_metrics_t *m);
const char *rpm_error(const rp_metrics_t *m);
void rpm_free(rp_metrics_t *m);

#endif
