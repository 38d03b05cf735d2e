/* Replay: an event log through the same engine, features and models as `run`, with
 * in-memory state, producing the backtest of DESIGN.md section 4 (scores of every eligible
 * snapshot, exact metrics beside the recency baseline on the same snapshots, a model). */
#ifndef CS_REPLAY_H
#define CS_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backtest.h"
#include "codec.h"
#include "config.h"
#include "experts.h"
#include "outcome.h"

typedef struct rp_opts_s {
    const char *input;         /* .avro container file, JSON lines (.jsonl[.gz], .ndjson,
                                  .json), CSV (.csv / .csv.gz / any with preset or map), or
                                  kafka:TOPIC (between from_ms and to_ms) */
    int64_t from_ms, to_ms;    /* kafka: message-timestamp range; INT64_MIN/MAX = all */
    const char *preset;        /* CSV import preset (e.g. "online-retail"), NULL = none */
    const char *map;           /* CSV --map spec, NULL = none */
    const char *delimiter;     /* CSV delimiter ("," default, "ws") */
    int no_header;             /* CSV has no header line */
    const char *scores_out;    /* CSV user_id,tick_ms,score; NULL = not written */
    const char *rejects_out;   /* CSV of rejected events; NULL = not written */
    const char *snapshots_out; /* CSV of labelled snapshots with features; NULL = none */
    const char *model_in;      /* warm start from this snapshot file; NULL = new model */
    const char *model_out;     /* write the final model here; NULL = not written */
    const char *report;        /* self-contained HTML report; NULL = not written */
    const char *alerts_out;    /* alerts as JSON lines; NULL = not written */
    int progress;              /* progress lines on stderr */
    int state_redis;           /* 1: --state redis (live commit path, state.prefix), 0: memory */
} rp_opts_t;

#define RP_MAX_SEGMENTS 64
#define RP_EARLY_DAYS   14

/* One labelled snapshot as the backtest keeps it: the prequential score given at tick_ms,
 * the recency baseline (days since last activity at tick_ms), the segment at scoring time
 * and the label. in_window = 0 for labels of ticks whose window passes the end (learnt,
 * but left out of the metrics). */
typedef struct rp_row_s {
    int64_t tick_ms;
    float score, recency_days;
    float expert[EX_N]; /* each expert's probability (experts.h) */
    int16_t seg;
    int8_t y;
    int8_t in_window;
} rp_row_t;

typedef struct rp_summary_s {
    int64_t events_read, events_applied;
    int64_t rejects[EV_ERR_COUNT];
    int64_t future_rejects; /* of rejects[time_out_of_window]: beyond the log's own future */
    size_t users;
    int64_t first_event_ms, last_event_ms, end_ms;
    int64_t horizon_ms; /* label.horizon: a tick's label is known H after it */
    size_t ticks;
    size_t scored;                /* snapshots scored (= rows of --scores-out) */
    size_t labelled;              /* snapshots with a label known before the end */
    size_t censored;              /* scored, label unknown at the end (window past the end) */
    bt_metrics_t model;           /* the model's prequential scores on the labelled snapshots */
    bt_metrics_t recency;         /* baseline: days since last activity, same snapshots */
    bt_metrics_t experts[EX_N];   /* each expert's own scores, same snapshots */
    double auc_early;             /* model AUC on users active in the last RP_EARLY_DAYS days */
    double auc_early_second_half; /* the same on the second half of the ticks */
    double auc_first_quarter;     /* model AUC over the first quarter of the ticks' span */
    double weights[EX_N];         /* the experts' final weights */
    double bgnbd[4];              /* final BG/NBD r, alpha (days), a, b */
    int shape_k;                  /* the BTYD expert's final Erlang shape (experts.h) */
    double shape_loss[EX_SHAPES]; /* each shape's discounted mean log-loss (NaN: none yet) */
    uint64_t model_version, model_examples;
    int k;
    size_t alerts, alerts_by_bucket[3], alerts_by_arm[2]; /* alert_bucket_t, alert_arm_t */
    size_t alerts_by_kind[2], alerts_by_trigger[2];       /* at_risk/lapsed, tick/event */
    /* Lead time: of the alerted users silent (no activity) for a full label horizon at the
     * end, how many got their first alert before their last activity (the silence had not
     * started), and the median of (last activity - first alert) in days (NAN when none). */
    size_t lead_silent, lead_before;
    double lead_median_days;
    size_t alert_ticks;       /* entries of alert_tick_ms / alert_tick_count */
    int64_t *alert_tick_ms;   /* per tick (alert time floored to the tick), ascending; owned */
    size_t *alert_tick_count; /* by the summary: rp_summary_free() */
    /* Alert outcomes (outcome.h): retained or not within outcome.window, censored at the
     * end, repeats; owned (rp_summary_free). NULL when the run failed. */
    oc_stats_t *outcomes;
    int64_t outcome_window_ms;
    /* For the report's business section (replay_business.c): alerts and the sum of the
     * alerted users' revenue_90d by segment ([0] unsegmented, [s + 1] segment s), and
     * treatment-arm alerts (contacts) by action and week; owned (rp_summary_free). */
    size_t seg_alerts[RP_MAX_SEGMENTS + 1];
    double seg_alert_revenue[RP_MAX_SEGMENTS + 1];
    struct rp_contacts_s *contacts;
    size_t ncontacts, capcontacts;
    size_t seg_size[RP_MAX_SEGMENTS]; /* labelled snapshots per segment at scoring */
    size_t seg_positives[RP_MAX_SEGMENTS];
    double seconds;
} rp_summary_t;

/* Checks the options that can be judged before any work (the CSV mapping of a CSV input):
 * 0, or -1 with errstr set (a usage error: the command exits with status 2). */
int rp_check_opts(const rp_opts_t *o, char *errstr, size_t errstr_size);

/* Runs the replay. Returns 0, or -1 with errstr set (unreadable input, bad options, I/O). */
int rp_run(const cfg_t *cfg, const rp_opts_t *opts, rp_summary_t *sum, char *errstr,
           size_t errstr_size);

/* Frees what the summary owns (per-tick alert counts); the struct itself is the caller's. */
void rp_summary_free(rp_summary_t *sum);

/* Prints the summary for people (text) or machines (one JSON object). */
void rp_print_summary(FILE *out, const rp_summary_t *sum, int json);

#endif
