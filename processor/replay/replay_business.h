/* The report's section for the people who act on the alerts (issue 14, part 6): a gains
 * chart, revenue at risk by segment and contacts per week by action, from what a replay
 * collected (rp_business_add_alert) and its labelled rows. The data science figures stay
 * in their own sections of the report. */
#ifndef CS_REPLAY_BUSINESS_H
#define CS_REPLAY_BUSINESS_H

#include <stddef.h>
#include <stdio.h>

#include "alert.h"
#include "backtest.h"
#include "replay.h"

/* Treatment-arm alerts of one action in one week (floor of event time / 7 days). */
struct rp_contacts_s {
    char action[96];
    int64_t week;
    size_t n;
};

/* Counts one alert: its segment's alerts and revenue_90d, and (treatment arm) a contact of
 * its action in its week. 0, or -1 when out of memory. */
int rp_business_add_alert(rp_summary_t *s, const alert_t *a);

/* Writes the section (h2 "For the people who act on it"): the gains chart from the model's
 * labelled rows m[0..n) (share of churners caught against share of snapshots contacted, in
 * score order), revenue at risk by segment, contacts per week by action. */
void rp_report_business_html(FILE *f, const rp_summary_t *s, const bt_row_t *m, size_t n);

#endif
