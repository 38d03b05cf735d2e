/* Open days: the calendar of UTC days on which the shop showed any activity, and the
 * "business time" the BG/NBD expert counts in (issue 12).
 *
 * Why: BG/NBD assumes a customer may buy on every day of the calendar. A shop that is
 * closed on Saturdays, over Christmas or during a data outage breaks that: every customer
 * is silent at once, and the fit reads the shared silence as drop-out. Measured on Online
 * Retail (no Saturdays, closed 2010-12-23 .. 2011-01-03): at the two weekly ticks of the
 * holiday the maximum-likelihood fit jumps from a = 0.03, b = 32 to a = 2.3, b = 2.3, the
 * expert ranks users by recency alone and its AUC falls from 0.68 to 0.50-0.55 there.
 * Counting time in open days removes the shared silence from every customer's recency and
 * age alike.
 *
 * Which days are open: a day with activity is open. A day without any is closed only when
 * silence is implausible for this shop: when the active user-days of its last
 * OD_MEAN_DAYS active days before it average at least OD_MIN_EXPECTED (a Poisson day with
 * that mean is empty with probability e^-3 = 5%). A small shop, where empty days happen by
 * chance, keeps calendar time: measured on a simulated 300-user sparse BG/NBD log (30% of
 * the days empty by chance), treating every empty day as closed cost 0.044 AUC in the
 * second half; with the rule its days stay open.
 *
 * The calendar: days before the first recorded day (base) count as open (history seen
 * before the calendar existed, e.g. a model snapshot of format 4, stays in calendar time);
 * from base on a count of active user-days per day (od_mark: an activity event that is its
 * user's first of that day); days after the last recorded one are closed or open as an empty
 * day after it would be. The same marks in the same order give the same bits.
 *
 * Lulls (od_set_lull, config model.lull_days, on by default): an open day also counts for
 * less than a whole day when the shop as a whole is quieter than usual: its weight is
 * min(1, S / L), at least OD_LULL_FLOOR, with S the mean active user-days per open day of
 * the week around it (the open days of [d - 3, d + 3] recorded so far, the last recorded day
 * left out: it is usually still filling) and L the same mean
 * over the open days of the OD_LULL_BASE_DAYS before it. Why: the weeks after Christmas, a
 * summer break or a slow season are silent for most customers at once, and BG/NBD reads
 * that shared silence as drop-out, as it did the closed days. Measured on Online Retail
 * (its log starts with the December rush and the January lull): first-quarter AUC 0.653 ->
 * 0.662 at daily ticks, 0.660 -> 0.670 weekly, its 1,500-user subsamples +0.000..+0.025
 * there (bench/generalization.py); a simulated seasonal shop (bench/seasonal_gen.py:
 * BG/NBD, 1.5x in a 3-week rush, 0.3x in the 4-week lull after it) 0.719 -> 0.730 and
 * 0.860 -> 0.895 pooled with the two shared logs' fits (a 2x rush and a 2-week lull at
 * 0.15: +0.013; a 6-week lull at 0.6 without a rush: +0.001); the logs of bench/shapes.py
 * and btyd_sim.py without a lull within 0.003 (their activity falls as customers drop out,
 * and a week below the 8 before counts a little less). Only ever slower, never faster:
 * a busier week may be new customers arriving (a young shop's log, the start of any log)
 * rather than customers buying more, and speeding time up there cost 0.005 pooled AUC on
 * the simulated BG/NBD frequent-buyer log (also with a dead band reading weights within
 * [0.67, 1.5] as 1). The 8-week baseline: with weights up to 4, a 4-week one gave Online
 * Retail's weekly 1,500-user subsamples (seeds 1, 2) +0.016 / +0.008 in the first quarter
 * against +0.020 / +0.024, a 16-week one +0.020 / +0.027 (8 weeks kept, chosen before these
 * figures, not on them). A day counts 1 while the baseline has
 * fewer than OD_LULL_MIN_OPEN open days (the log's first weeks) or L is below OD_LULL_MIN_MEAN (a
 * small shop, whose quiet weeks are chance). A day's weight depends on the days up to 3 after it,
 * so it settles 3 days later; every read uses the days recorded so far, deterministically.
 *
 * Units: days since the Unix epoch (feat_day_of). Memory: 2 bytes per day from base in the
 * snapshot (730 bytes a year), 22 in memory; at most OD_MAX_DAYS days (marks beyond are
 * ignored; those days read as open). */
#ifndef CS_OPEN_DAYS_H
#define CS_OPEN_DAYS_H

#include <stddef.h>
#include <stdint.h>

#include "model_wire.h"

#define OD_MAX_DAYS     (1u << 16) /* 179 years from base */
#define OD_MEAN_DAYS    28
#define OD_MIN_EXPECTED 3.0
/* Lull weights (above): the baseline window and its minimum, the floor of a weight. */
#define OD_LULL_BASE_DAYS 56
#define OD_LULL_MIN_OPEN  14
#define OD_LULL_MIN_MEAN  5.0
#define OD_LULL_FLOOR     0.25

typedef struct od_s {
    int64_t base;    /* first recorded day; meaningless while ndays == 0 */
    uint32_t ndays;  /* days [base, base + ndays) have a count; 0 = empty calendar */
    uint32_t cap;    /* allocated days of count and cum (cum has cap + 1) */
    uint16_t *count; /* active user-days per day, saturating; owned */
    uint32_t *cum;   /* cum[i] = open days in [base, base + i), i <= ndays; owned */
    double *ccum;    /* ccum[i] = active user-days in [base, base + i); owned */
    double *wcum;    /* wcum[i] = sum of the day weights in [base, base + i) (lulls); owned */
    int tail_open;   /* an empty day after the last recorded one reads as open */
    int lull;        /* open days weighted by lulls (od_set_lull) */
} od_t;

/* An empty calendar (every day reads as open), lull weights off. od_free() releases what
 * od_mark allocated and keeps the lull setting. */
void od_init(od_t *od);
void od_free(od_t *od);

/* 1: open days weighted by lulls (above); 0: each open day counts 1. Not part of the
 * snapshot (the configuration decides). */
void od_set_lull(od_t *od, int on);

/* Records one active user-day on `day` (an activity event that is its user's first on that
 * day). The first mark sets base. A day before base, or OD_MAX_DAYS or more after it, is
 * ignored. Cost: O(1) for the latest day, O(OD_MEAN_DAYS) per day re-decided for an earlier
 * one (late events) or across a gap. Returns 0, or -1 when out of memory (unchanged). */
int od_mark(od_t *od, int64_t day);

/* B(day): a count of open days such that B(d2) - B(d1) = open days in [d1, d2) for d1 <= d2
 * (with lulls: the sum of their weights). Equal to day itself up to base (days before base
 * are open); a day after the last recorded one counts 1 when open. */
double od_before(const od_t *od, int64_t day);

/* Share of open days among the `window` days before `day` (days before base count as
 * open; with lulls, each open day its weight), in (0, 1]; 1 for an empty calendar. A window with no
 * open day gives 1 / window. */
double od_share(const od_t *od, int64_t day, int window);

/* Snapshot section: u32 ndays | when ndays > 0: u64 base, ndays x u16 counts. od_decode
 * replaces the calendar; -1 when corrupt (ndays over OD_MAX_DAYS, first or last day with a
 * zero count, truncated) or out of memory, the calendar then empty. */
void od_encode(const od_t *od, mw_buf_t *b);
int od_decode(od_t *od, mw_reader_t *r);

#endif
