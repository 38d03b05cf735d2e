/* The replay summary (replay.h): freeing what it owns and printing it for people (text)
 * and machines (one JSON object). Separate from replay.c, which runs the replay and fills
 * the summary. */
#include "replay.h"
#include "replay_outcomes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "alert.h"

void rp_summary_free(rp_summary_t *sum)
{
    free(sum->alert_tick_ms);
    free(sum->alert_tick_count);
    oc_stats_destroy(sum->outcomes);
    free(sum->contacts);
    sum->contacts = NULL;
    sum->ncontacts = sum->capcontacts = 0;
    sum->outcomes = NULL;
    sum->alert_tick_ms = NULL;
    sum->alert_tick_count = NULL;
    sum->alert_ticks = 0;
}

static void print_metrics_text(FILE *out, const char *name, const bt_metrics_t *m)
{
    fprintf(out,
            "  %-10s auc %.4f  auc(2nd half) %.4f  logloss %.4f  logloss(2nd half) %.4f  "
            "brier %.4f  top10%% precision %.4f  lift %.2f\n",
            name, m->auc, m->auc_second_half, m->logloss, m->logloss_second_half, m->brier,
            m->top10_precision, m->top10_lift);
}

static void print_metrics_json(FILE *out, const bt_metrics_t *m)
{
    fprintf(out, "{\"snapshots\":%zu,\"positives\":%zu,\"ticks\":%zu,", m->snapshots, m->positives,
            m->ticks);
    rp_json_num(out, "positive_rate", m->positive_rate, 1);
    rp_json_num(out, "auc", m->auc, 1);
    rp_json_num(out, "auc_second_half", m->auc_second_half, 1);
    rp_json_num(out, "logloss", m->logloss, 1);
    rp_json_num(out, "logloss_second_half", m->logloss_second_half, 1);
    rp_json_num(out, "brier", m->brier, 1);
    rp_json_num(out, "top10_precision", m->top10_precision, 1);
    rp_json_num(out, "top10_lift", m->top10_lift, 0);
    fputc('}', out);
}

/* The summary as one JSON object (replay --json). */
static void print_json(FILE *out, const rp_summary_t *s)
{
    fprintf(out, "{\"events_read\":%lld,\"events_applied\":%lld,\"rejected\":{",
            (long long)s->events_read, (long long)s->events_applied);
    for (int r = 1; r < EV_ERR_COUNT; r++)
        fprintf(out, "\"%s\":%lld%s", ev_reason_code((ev_reason_t)r), (long long)s->rejects[r],
                r + 1 < EV_ERR_COUNT ? "," : "");
    fprintf(out, "},\"future_rejected\":%lld", (long long)s->future_rejects);
    fprintf(out,
            ",\"users\":%zu,\"first_event_ms\":%lld,\"last_event_ms\":%lld,"
            "\"end_ms\":%lld,\"ticks\":%zu,\"scored\":%zu,\"labelled\":%zu,"
            "\"censored\":%zu,\"model_version\":%llu,\"model_examples\":%llu,",
            s->users, (long long)s->first_event_ms, (long long)s->last_event_ms,
            (long long)s->end_ms, s->ticks, s->scored, s->labelled, s->censored,
            (unsigned long long)s->model_version, (unsigned long long)s->model_examples);
    fprintf(out,
            "\"alerts\":{\"total\":%zu,\"low\":%zu,\"medium\":%zu,\"high\":%zu,"
            "\"treatment\":%zu,\"holdout\":%zu,\"at_risk\":%zu,\"lapsed\":%zu,"
            "\"tick\":%zu,\"event\":%zu,\"lead_silent\":%zu,\"lead_before\":%zu,",
            s->alerts, s->alerts_by_bucket[ALERT_LOW], s->alerts_by_bucket[ALERT_MEDIUM],
            s->alerts_by_bucket[ALERT_HIGH], s->alerts_by_arm[ALERT_TREATMENT],
            s->alerts_by_arm[ALERT_HOLDOUT], s->alerts_by_kind[ALERT_AT_RISK],
            s->alerts_by_kind[ALERT_LAPSED], s->alerts_by_trigger[ALERT_BY_TICK],
            s->alerts_by_trigger[ALERT_BY_EVENT], s->lead_silent, s->lead_before);
    rp_json_num(out, "lead_median_days", s->lead_median_days, 0);
    fputs("},", out);
    rp_print_outcomes_json(out, s);
    fputs(",\"model\":", out);
    print_metrics_json(out, &s->model);
    fputs(",\"recency_baseline\":", out);
    print_metrics_json(out, &s->recency);
    fputs(",\"experts\":{", out);
    for (int x = 0; x < EX_N; x++) {
        fprintf(out, "%s\"%s\":", x ? "," : "", ex_name((ex_expert_t)x));
        print_metrics_json(out, &s->experts[x]);
    }
    /* The experts' final weights (the text summary's "experts" line). */
    fputs("},\"expert_weights\":{", out);
    for (int x = 0; x < EX_N; x++)
        rp_json_num(out, ex_name((ex_expert_t)x), s->weights[x], x + 1 < EX_N);
    /* The BG/NBD parameters of the last refit (alpha in days; the text summary's too). */
    fputs("},\"bgnbd_params\":{", out);
    rp_json_num(out, "r", s->bgnbd[0], 1);
    rp_json_num(out, "alpha_days", s->bgnbd[1], 1);
    rp_json_num(out, "a", s->bgnbd[2], 1);
    rp_json_num(out, "b", s->bgnbd[3], 0);
    /* The BTYD expert's shape and every shape's mean log-loss over complete ticks. */
    fprintf(out, "},\"bgnbd_shape\":{\"k\":%d,\"mean_logloss\":{", s->shape_k);
    for (int i = 0; i < EX_SHAPES; i++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", ex_shape_k[i]);
        rp_json_num(out, name, s->shape_loss[i], i + 1 < EX_SHAPES);
    }
    fputs("}},", out);
    rp_json_num(out, "auc_early_warning", s->auc_early, 1);
    rp_json_num(out, "auc_early_warning_second_half", s->auc_early_second_half, 0);
    fputc(',', out);
    rp_json_num(out, "auc_first_quarter", s->auc_first_quarter, 0);
    fputs(",\"segments\":[", out);
    for (int k = 0, first = 1; k < s->k && k < RP_MAX_SEGMENTS; k++) {
        fprintf(out, "%s{\"segment\":%d,\"snapshots\":%zu,", first ? "" : ",", k, s->seg_size[k]);
        rp_json_num(out, "churn_rate",
                    s->seg_size[k] ? (double)s->seg_positives[k] / (double)s->seg_size[k] : NAN, 0);
        fputc('}', out);
        first = 0;
    }
    fprintf(out, "],\"seconds\":%.3f}\n", s->seconds);
}

/* The summary as text. */
static void print_text(FILE *out, const rp_summary_t *s)
{
    int64_t rejected = 0;
    for (int r = 1; r < EV_ERR_COUNT; r++)
        rejected += s->rejects[r];
    fprintf(out, "events     %lld read, %lld applied, %lld rejected", (long long)s->events_read,
            (long long)s->events_applied, (long long)rejected);
    for (int r = 1; r < EV_ERR_COUNT; r++)
        if (s->rejects[r])
            fprintf(out, " (%s %lld)", ev_reason_code((ev_reason_t)r), (long long)s->rejects[r]);
    if (s->future_rejects)
        fprintf(out,
                "\nfuture     %lld events more than events.max_future after the log's "
                "watermark, not followed by events of their time: rejected (time_out_of_window)",
                (long long)s->future_rejects);
    fprintf(out, "\nusers      %zu\n", s->users);
    fprintf(out, "ticks      %zu swept; snapshots %zu scored, %zu labelled, %zu censored\n",
            s->ticks, s->scored, s->labelled, s->censored);
    fprintf(out, "labels     positive rate %.4f over %zu ticks\n", s->model.positive_rate,
            s->model.ticks);
    if (s->labelled == 0 && s->scored > 0 && s->first_event_ms <= s->last_event_ms &&
        s->last_event_ms - s->first_event_ms < s->horizon_ms + FEAT_DAY_MS)
        fprintf(out,
                "note       no snapshot could be measured: a tick's label needs label.horizon "
                "(%.0f days) of events after it, and this log spans %.1f days; give a longer "
                "log or a shorter --label.horizon\n",
                (double)s->horizon_ms / (double)FEAT_DAY_MS,
                (double)(s->last_event_ms - s->first_event_ms) / (double)FEAT_DAY_MS);
    print_metrics_text(out, "model", &s->model);
    print_metrics_text(out, "recency", &s->recency);
    /* The recency expert ranks like the baseline above; its row is in --json. */
    print_metrics_text(out, "bgnbd", &s->experts[EX_BGNBD]);
    print_metrics_text(out, "logreg", &s->experts[EX_LOGREG]);
    fprintf(out,
            "  early-warning auc %.4f (2nd half %.4f; users active in the last %d days), "
            "first-quarter auc %.4f\n",
            s->auc_early, s->auc_early_second_half, RP_EARLY_DAYS, s->auc_first_quarter);
    fprintf(out,
            "experts    weights recency %.3f, bgnbd %.3f, logreg %.3f; BG/NBD r %.4g alpha "
            "%.4g d a %.4g b %.4g\n",
            s->weights[0], s->weights[1], s->weights[2], s->bgnbd[0], s->bgnbd[1], s->bgnbd[2],
            s->bgnbd[3]);
    fprintf(out, "           BTYD shape k %d (mean log-loss", s->shape_k);
    for (int i = 0; i < EX_SHAPES; i++)
        fprintf(out, "%s k%d %.4f", i ? "," : "", ex_shape_k[i], s->shape_loss[i]);
    fputs(")\n", out);
    fprintf(out,
            "alerts     %zu (high %zu, medium %zu, low %zu; treatment %zu, holdout %zu; at_risk "
            "%zu, lapsed %zu; tick %zu, event %zu)\n",
            s->alerts, s->alerts_by_bucket[ALERT_HIGH], s->alerts_by_bucket[ALERT_MEDIUM],
            s->alerts_by_bucket[ALERT_LOW], s->alerts_by_arm[ALERT_TREATMENT],
            s->alerts_by_arm[ALERT_HOLDOUT], s->alerts_by_kind[ALERT_AT_RISK],
            s->alerts_by_kind[ALERT_LAPSED], s->alerts_by_trigger[ALERT_BY_TICK],
            s->alerts_by_trigger[ALERT_BY_EVENT]);
    if (s->lead_silent)
        fprintf(out,
                "lead time  %zu alerted users silent for a full horizon at the end: first alert "
                "before the silence for %zu (%.0f%%), median %.1f days %s it\n",
                s->lead_silent, s->lead_before,
                100.0 * (double)s->lead_before / (double)s->lead_silent, fabs(s->lead_median_days),
                s->lead_median_days >= 0 ? "before" : "after");
    rp_print_outcomes_text(out, s);
    fprintf(out, "model      version %llu, %llu examples learnt\n",
            (unsigned long long)s->model_version, (unsigned long long)s->model_examples);
    fprintf(out, "segments  ");
    for (int k = 0; k < s->k && k < RP_MAX_SEGMENTS; k++)
        if (s->seg_size[k])
            fprintf(out, " [%d] %zu (churn %.2f)", k, s->seg_size[k],
                    (double)s->seg_positives[k] / (double)s->seg_size[k]);
    fprintf(out, "\ntime       %.2f s (%.0f events/s)\n", s->seconds,
            s->seconds > 0 ? (double)s->events_read / s->seconds : 0.0);
}

void rp_print_summary(FILE *out, const rp_summary_t *s, int json)
{
    if (json)
        print_json(out, s);
    else
        print_text(out, s);
}
