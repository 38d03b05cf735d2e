/* Alert outcomes of a replay (rp_summary_t.outcomes) in the summary text, its JSON and the
 * HTML report. Each writes nothing of its own when the summary has no outcome counts. */
#ifndef CS_REPLAY_OUTCOMES_H
#define CS_REPLAY_OUTCOMES_H

#include <stdio.h>

#include "replay.h"

/* "outcomes" lines: retained shares per arm and the uplift with its interval, overall, by
 * kind, by action and by segment. */
void rp_print_outcomes_text(FILE *out, const rp_summary_t *s);
/* "outcomes":{...} (no leading or trailing comma): window_days, interval, by_all, by_kind,
 * by_action, by_segment (rows: key, treatment/holdout {alerted, retained, censored,
 * repeats, retained_share}, uplift, uplift_lo, uplift_hi; null when not defined). */
void rp_print_outcomes_json(FILE *out, const rp_summary_t *s);
/* The report's "Did the alerts work?" section (h2, explanation, tables). */
void rp_report_outcomes_html(FILE *out, const rp_summary_t *s);
/* "KEY":V with %.6g, null when V is not finite (JSON has no NaN), and a comma after when
 * `comma`: every number of replay's --json goes through it. */
void rp_json_num(FILE *out, const char *key, double v, int comma);

#endif
