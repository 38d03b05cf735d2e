/* The backtest's HTML report: exact ROC curves, calibration bins, per-tick AUC / log-loss /
 * positive rate and per-segment series computed from the labelled rows, written as one
 * self-contained file (inline CSS and SVG, see report_svg.c) through a temp file + rename. */
#include "report.h"

#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "feat.h"
#include "outfile.h"
#include "report_data.h"
#include "report_svg.h"
#include "replay_business.h"
#include "replay_outcomes.h"

#define GREY "#9a9a9a"

/* ---- sections ---- */

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;color:#222;"
    "max-width:980px;margin:24px auto;padding:0 16px}\n"
    "h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-bottom:1px solid #ddd}\n"
    "table{border-collapse:collapse;margin:8px 0}"
    "th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}"
    "th:first-child,td:first-child{text-align:left}td.l{text-align:left}\n"
    "svg{max-width:100%;height:auto;display:block}svg text{font-size:11px;fill:#333}\n"
    ".grid{stroke:#ebebeb}.frame{fill:none;stroke:#999}.axis{stroke:#777}\n"
    ".legend{margin:4px 0 12px}.key{margin-right:16px;white-space:nowrap}"
    ".sw{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px}\n"
    ".note{color:#666}\n";

static void no_data(FILE *f, const char *what)
{
    fputs("<p class=\"note\">", f);
    rs_text(f, what);
    fputs("</p>\n", f);
}

static void metric_row(FILE *f, const char *name, double a, double b, int decimals)
{
    fprintf(f, "<tr><td>%s</td><td>", name);
    rs_num(f, a, decimals);
    fputs("</td><td>", f);
    rs_num(f, b, decimals);
    fputs("</td></tr>\n", f);
}

static void write_summary(FILE *f, const rep_t *rp)
{
    const rp_summary_t *s = rp->sum;
    char d0[24], d1[24], d2[24];
    rs_date(s->first_event_ms, d0, sizeof(d0));
    rs_date(s->last_event_ms, d1, sizeof(d1));
    rs_date(s->end_ms, d2, sizeof(d2));
    fputs("<h2 id=\"input\">Input</h2>\n<table>\n", f);
    fprintf(f, "<tr><td>events read / applied</td><td>%lld / %lld</td></tr>\n",
            (long long)s->events_read, (long long)s->events_applied);
    for (int r = 1; r < EV_ERR_COUNT; r++) {
        fputs("<tr><td>rejected: ", f);
        rs_text(f, ev_reason_code((ev_reason_t)r));
        fprintf(f, "</td><td>%lld</td></tr>\n", (long long)s->rejects[r]);
    }
    fprintf(f, "<tr><td>users</td><td>%zu</td></tr>\n", s->users);
    fprintf(f, "<tr><td>first / last event (UTC)</td><td>%s / %s</td></tr>\n", d0, d1);
    fprintf(f, "<tr><td>end of input (UTC)</td><td>%s</td></tr>\n", d2);
    fprintf(f, "<tr><td>ticks swept</td><td>%zu</td></tr>\n", s->ticks);
    fprintf(f,
            "<tr><td>snapshots scored / labelled / censored</td><td>%zu / %zu / %zu</td>"
            "</tr>\n",
            s->scored, s->labelled, s->censored);
    fprintf(f, "<tr><td>model version / examples learnt</td><td>%llu / %llu</td></tr>\n",
            (unsigned long long)s->model_version, (unsigned long long)s->model_examples);
    fputs("</table>\n", f);

    fputs("<h2 id=\"metrics\">Metrics</h2>\n<table>\n<tr><th>metric</th><th>model</th>"
          "<th>recency baseline</th></tr>\n",
          f);
    const bt_metrics_t *m = &s->model, *b = &s->recency;
    fprintf(f, "<tr><td>labelled snapshots</td><td>%zu</td><td>%zu</td></tr>\n", m->snapshots,
            b->snapshots);
    fprintf(f, "<tr><td>positives (churned)</td><td>%zu</td><td>%zu</td></tr>\n", m->positives,
            b->positives);
    fprintf(f, "<tr><td>ticks with labels</td><td>%zu</td><td>%zu</td></tr>\n", m->ticks, b->ticks);
    metric_row(f, "positive rate", m->positive_rate, b->positive_rate, 4);
    metric_row(f, "AUC (pooled)", m->auc, b->auc, 4);
    metric_row(f, "AUC (second half of ticks)", m->auc_second_half, b->auc_second_half, 4);
    metric_row(f, "log-loss", m->logloss, b->logloss, 4);
    metric_row(f, "Brier score", m->brier, b->brier, 4);
    metric_row(f, "top-10% precision", m->top10_precision, b->top10_precision, 4);
    metric_row(f, "top-10% lift", m->top10_lift, b->top10_lift, 2);
    fputs("</table>\n", f);
    fputs("<p>How to read this: the replay is <em>prequential</em>. At every tick each "
          "eligible user was scored once with the model as it stood, before that "
          "snapshot's label (no activity in the horizon) was known; the model learnt from a "
          "label only once it was resolved. So every figure here is out of sample. The "
          "<em>second half</em> AUC uses only the later half of the ticks: out of time as "
          "well. The recency baseline ranks users by days since their last activity on "
          "exactly the same snapshots; it is not a probability, so its log-loss and Brier "
          "score are n/a. Snapshots whose horizon reaches past the end of the input are "
          "censored: scored, but left out of every figure.</p>\n",
          f);
}

/* Every expert beside the published score, on the same labelled snapshots (experts.h). */
static void write_experts(FILE *f, const rep_t *rp)
{
    const rp_summary_t *s = rp->sum;
    fputs("<h2 id=\"experts\">Experts</h2>\n<table>\n<tr><th>metric</th><th>score "
          "(pool)</th><th>recency prior</th><th>BG/NBD</th><th>logistic regression</th></tr>\n",
          f);
    const bt_metrics_t *e = s->experts, *m = &s->model;
    static const struct {
        const char *name;
        size_t off;
    } rows[] = {{"AUC (pooled)", offsetof(bt_metrics_t, auc)},
                {"AUC (second half of ticks)", offsetof(bt_metrics_t, auc_second_half)},
                {"log-loss", offsetof(bt_metrics_t, logloss)},
                {"Brier score", offsetof(bt_metrics_t, brier)},
                {"top-10% precision", offsetof(bt_metrics_t, top10_precision)}};
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        fprintf(f, "<tr><td>%s</td>", rows[r].name);
        const double *v = (const double *)(const void *)((const char *)m + rows[r].off);
        fprintf(f, isfinite(*v) ? "<td>%.4f</td>" : "<td>n/a</td>", *v);
        for (int x = 0; x < EX_N; x++) {
            v = (const double *)(const void *)((const char *)&e[x] + rows[r].off);
            fprintf(f, isfinite(*v) ? "<td>%.4f</td>" : "<td>n/a</td>", *v);
        }
        fputs("</tr>\n", f);
    }
    fprintf(f,
            "<tr><td>weight at the end</td><td></td><td>%.3f</td><td>%.3f</td><td>%.3f</td>"
            "</tr>\n</table>\n",
            s->weights[0], s->weights[1], s->weights[2]);
    fprintf(f,
            "<p>Early-warning AUC (snapshots of users active in the last %d days): %.4f "
            "(second half of the ticks: %.4f). "
            "First-quarter AUC (cold start): %.4f. BG/NBD population at the end: r %.4g, "
            "alpha %.4g days, a %.4g, b %.4g.</p>\n",
            RP_EARLY_DAYS, s->auc_early, s->auc_early_second_half, s->auc_first_quarter,
            s->bgnbd[0], s->bgnbd[1], s->bgnbd[2], s->bgnbd[3]);
    fputs("<p>How the score is made: three experts score every snapshot: the recency prior "
          "(days since the last activity), BG/NBD (probability of no activity in the "
          "horizon, from the user's repeat active days, last and current age and the "
          "population's parameters refitted every tick; it needs no labels) and the "
          "calibrated logistic regression on the features. The score pools their logits "
          "with weights learnt online (Hedge) from each expert's log-loss on complete ticks, "
          "graded by what the expert said at the tick.</p>\n",
          f);
}

static void write_roc(FILE *f, const rep_t *rp)
{
    fputs("<h2 id=\"roc\">ROC curve</h2>\n", f);
    if (rp->n == 0) {
        no_data(f, "No labelled snapshots: no ROC curve.");
        return;
    }
    if (rp->roc_m.n == 0) {
        no_data(f, "n/a: the labelled snapshots hold one class only, so there is no ROC curve.");
        return;
    }
    rs_chart_t c;
    rs_chart_init(&c, 0, 1, 0, "false positive rate", 0, 1, "true positive rate");
    c.width = 420;
    c.height = 400;
    rs_begin(f, &c, "ROC curve: model and recency baseline");
    static const double diag[2] = {0, 1};
    rs_line(f, &c, diag, diag, 2, GREY, 1);
    rs_line(f, &c, rp->roc_r.fpr, rp->roc_r.tpr, rp->roc_r.n, rs_color(1), 0);
    rs_line(f, &c, rp->roc_m.fpr, rp->roc_m.tpr, rp->roc_m.n, rs_color(0), 0);
    rs_end(f);
    char a[64], b[64];
    snprintf(a, sizeof(a), "model (AUC %.4f)", rp->roc_m.auc);
    snprintf(b, sizeof(b), "recency baseline (AUC %.4f)", rp->roc_r.auc);
    const char *names[] = {a, b, "chance"}, *colors[] = {rs_color(0), rs_color(1), GREY};
    rs_legend(f, names, colors, 3);
}

static void write_calibration(FILE *f, const rep_t *rp)
{
    fputs("<h2 id=\"calibration\">Calibration</h2>\n", f);
    if (rp->n == 0) {
        no_data(f, "No labelled snapshots: no calibration.");
        return;
    }
    double x[RD_CAL_BINS], y[RD_CAL_BINS];
    for (int b = 0; b < RD_CAL_BINS; b++) {
        x[b] = rp->cal_n[b] ? rp->cal_p[b] / (double)rp->cal_n[b] : NAN;
        y[b] = rp->cal_n[b] ? (double)rp->cal_pos[b] / (double)rp->cal_n[b] : NAN;
    }
    rs_chart_t c;
    rs_chart_init(&c, 0, 1, 0, "mean predicted probability", 0, 1, "observed churn rate");
    c.width = 420;
    c.height = 400;
    rs_begin(f, &c, "Calibration: mean predicted probability against observed churn rate");
    static const double diag[2] = {0, 1};
    rs_line(f, &c, diag, diag, 2, GREY, 1);
    /* Only non-empty bins are joined: an empty bin must not break the line. */
    double cx[RD_CAL_BINS], cy[RD_CAL_BINS];
    size_t k = 0;
    for (int b = 0; b < RD_CAL_BINS; b++)
        if (rp->cal_n[b]) {
            cx[k] = x[b];
            cy[k++] = y[b];
        }
    rs_line(f, &c, cx, cy, k, rs_color(0), 0);
    rs_dots(f, &c, cx, cy, k, rs_color(0), 3.5);
    rs_end(f);
    const char *names[] = {"model", "perfect calibration"}, *colors[] = {rs_color(0), GREY};
    rs_legend(f, names, colors, 2);
    fputs("<table>\n<tr><th>predicted</th><th>snapshots</th><th>mean predicted</th>"
          "<th>observed churn rate</th></tr>\n",
          f);
    for (int b = 0; b < RD_CAL_BINS; b++) {
        fprintf(f, "<tr><td>%.1f &ndash; %.1f</td><td>%zu</td><td>", b / 10.0, (b + 1) / 10.0,
                rp->cal_n[b]);
        rs_num(f, x[b], 4);
        fputs("</td><td>", f);
        rs_num(f, y[b], 4);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* A chart over ticks: x = tick times, one line per series. */
static void tick_chart(FILE *f, const rep_t *rp, const char *title, const char *ytitle, double ylo,
                       double yhi, const double *const *ys, const char *const *colors,
                       const int *dashed, size_t nseries, double *xs)
{
    rs_chart_t c;
    rs_chart_init(&c, xs[0], xs[rp->nticks - 1], 1, "tick (UTC)", ylo, yhi, ytitle);
    rs_begin(f, &c, title);
    for (size_t s = 0; s < nseries; s++)
        rs_line(f, &c, xs, ys[s], rp->nticks, colors[s], dashed[s]);
    rs_end(f);
}

static double max_finite(const double *v, size_t n, double floor_value)
{
    double m = floor_value;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > m)
            m = v[i];
    return m;
}

static int write_over_time(FILE *f, const rep_t *rp)
{
    fputs("<h2 id=\"time\">AUC and log-loss over time</h2>\n", f);
    if (rp->nticks == 0) {
        no_data(f, "No labelled snapshots: no per-tick figures.");
        return 0;
    }
    size_t n = rp->nticks;
    double *buf = malloc(6 * n * sizeof(double));
    if (!buf)
        return -1;
    double *xs = buf, *am = buf + n, *ar = buf + 2 * n, *ll = buf + 3 * n, *pr = buf + 4 * n,
           *half = buf + 5 * n;
    size_t one_class = 0, no_ll = 0;
    for (size_t t = 0; t < n; t++) {
        xs[t] = (double)rp->ticks[t].tick_ms;
        am[t] = rp->ticks[t].auc_model;
        ar[t] = rp->ticks[t].auc_recency;
        ll[t] = rp->ticks[t].logloss;
        pr[t] = (double)rp->ticks[t].pos / (double)rp->ticks[t].n;
        half[t] = 0.5;
        one_class += isnan(am[t]);
        no_ll += isnan(ll[t]);
    }
    fprintf(f,
            "<p>AUC of each tick's snapshots on their own (ticks with one class only are "
            "skipped: %zu of %zu).</p>\n",
            one_class, n);
    const double *auc_ys[] = {half, ar, am};
    const char *auc_colors[] = {GREY, rs_color(1), rs_color(0)};
    const int auc_dash[] = {1, 0, 0};
    tick_chart(f, rp, "AUC per tick: model and recency baseline", "AUC", 0, 1, auc_ys, auc_colors,
               auc_dash, 3, xs);
    const char *names[] = {"model", "recency baseline", "chance (0.5)"};
    const char *colors[] = {rs_color(0), rs_color(1), GREY};
    rs_legend(f, names, colors, 3);

    fprintf(f,
            "<p>Log-loss of each tick's snapshots (n/a, a gap, for a tick where a score is "
            "exactly 0 or 1: %zu of %zu).</p>\n",
            no_ll, n);
    const double *ll_ys[] = {ll};
    const char *ll_colors[] = {rs_color(0)};
    const int no_dash[] = {0};
    tick_chart(f, rp, "Log-loss per tick (model)", "log-loss", 0, max_finite(ll, n, 0.1) * 1.1,
               ll_ys, ll_colors, no_dash, 1, xs);
    rs_legend(f, names, colors, 1);

    fputs("<h3>Positive rate per tick</h3>\n", f);
    const double *pr_ys[] = {pr};
    const char *pr_colors[] = {rs_color(3)};
    double top = max_finite(pr, n, 0.01) * 1.15;
    tick_chart(f, rp, "Positive (churn) rate per tick", "churn rate", 0, top < 1 ? top : 1, pr_ys,
               pr_colors, no_dash, 1, xs);
    free(buf);
    return 0;
}

static int write_segments(FILE *f, const rep_t *rp, const char *const *names)
{
    fputs("<h2 id=\"segments\">Segments over time</h2>\n", f);
    if (rp->nticks == 0) {
        no_data(f, "No labelled snapshots: no segment figures.");
        return 0;
    }
    size_t n = rp->nticks, series = (size_t)rp->k + 1, shown = 0;
    double *buf = malloc((1 + 2 * series) * n * sizeof(double));
    const double **ys = malloc(2 * series * sizeof(*ys));
    const char **colors = malloc(series * sizeof(*colors));
    const char **lnames = malloc(series * sizeof(*lnames));
    int *dash = malloc(series * sizeof(int));
    char(*lbuf)[32] = malloc(series * sizeof(*lbuf));
    if (!buf || !ys || !colors || !lnames || !dash || !lbuf) {
        free(buf), free(ys), free(colors), free(lnames), free(dash), free(lbuf);
        return -1;
    }
    double *xs = buf;
    for (size_t t = 0; t < n; t++)
        xs[t] = (double)rp->ticks[t].tick_ms;
    for (size_t s = 0; s < series; s++) {
        if (rp->seg_tot_n[s] == 0)
            continue;
        double *share = buf + (1 + 2 * shown) * n, *rate = share + n;
        for (size_t t = 0; t < n; t++) {
            size_t sn = rp->seg_n[t * series + s];
            share[t] = (double)sn / (double)rp->ticks[t].n;
            rate[t] = sn ? (double)rp->seg_pos[t * series + s] / (double)sn : NAN;
        }
        ys[shown] = share;
        ys[series + shown] = rate;
        /* The unassigned series is grey; past 10 segments colours repeat, dashed. */
        colors[shown] = s == (size_t)rp->k ? GREY : rs_color(s);
        dash[shown] = s != (size_t)rp->k && s >= 10 && (s / 10) % 2 == 1;
        if (s == (size_t)rp->k)
            snprintf(lbuf[shown], sizeof(lbuf[0]), "unassigned");
        else
            snprintf(lbuf[shown], sizeof(lbuf[0]), "segment %zu", s);
        lnames[shown] = lbuf[shown];
        shown++;
    }
    fputs("<p>Share of each tick's labelled snapshots per segment (segment at scoring time), "
          "then each segment's churn rate per tick.</p>\n",
          f);
    tick_chart(f, rp, "Segment sizes per tick (share of labelled snapshots)", "share", 0, 1, ys,
               colors, dash, shown, xs);
    rs_legend(f, lnames, colors, shown);
    tick_chart(f, rp, "Churn rate per segment per tick", "churn rate", 0, 1, ys + series, colors,
               dash, shown, xs);
    rs_legend(f, lnames, colors, shown);

    fputs("<table>\n<tr><th>segment</th><th>snapshots</th><th>share</th><th>positives</th>"
          "<th>churn rate</th><th>label (centre's strongest z-scores)</th></tr>\n",
          f);
    const km_t *km = rp->model ? model_kmeans(rp->model) : NULL;
    for (size_t s = 0; s < series; s++) {
        if (rp->seg_tot_n[s] == 0)
            continue;
        char label[160] = "";
        if (s == (size_t)rp->k)
            snprintf(label, sizeof(label), "no segment (scored before k-means was seeded)");
        else if (!km || km_label(km, (int)s, names, label, sizeof(label)) != 0)
            snprintf(label, sizeof(label), "n/a");
        if (s == (size_t)rp->k)
            fputs("<tr><td>unassigned</td>", f);
        else
            fprintf(f, "<tr><td>%zu</td>", s);
        fprintf(f, "<td>%zu</td><td>", rp->seg_tot_n[s]);
        rs_num(f, (double)rp->seg_tot_n[s] / (double)rp->n, 4);
        fprintf(f, "</td><td>%zu</td><td>", rp->seg_tot_pos[s]);
        rs_num(f, (double)rp->seg_tot_pos[s] / (double)rp->seg_tot_n[s], 4);
        fputs("</td><td class=\"l\">", f);
        rs_text(f, label);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    free(buf), free(ys), free(colors), free(lnames), free(dash), free(lbuf);
    return 0;
}

/* Alerts per tick (alert time floored to the tick) as bars, with the totals by bucket and
 * arm. */
static int report_alerts_chart(FILE *f, const rp_summary_t *s)
{
    const int64_t *ticks = s->alert_tick_ms;
    const size_t *counts = s->alert_tick_count;
    size_t n = s->alert_ticks;
    fputs("<h2 id=\"alerts\">Alerts per tick</h2>\n", f);
    fprintf(f, "<p>%zu alerts: high %zu, medium %zu, low %zu; treatment %zu, holdout %zu.</p>\n",
            s->alerts, s->alerts_by_bucket[2], s->alerts_by_bucket[1], s->alerts_by_bucket[0],
            s->alerts_by_arm[0], s->alerts_by_arm[1]);
    if (n == 0) {
        no_data(f, "No alert fired (see alert.threshold, alert.top_percent and "
                   "model.min_examples).");
        return 0;
    }
    double *x = malloc(2 * n * sizeof(double)), *y = x ? x + n : NULL, top = 1;
    if (!x)
        return -1;
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)ticks[i];
        y[i] = (double)counts[i];
        top = y[i] > top ? y[i] : top;
    }
    rs_chart_t c;
    rs_chart_init(&c, x[0], x[n - 1], 1, "tick (UTC)", 0, top * 1.1, "alerts");
    double w = (c.width - c.ml - c.mr) / (double)n * 0.7;
    rs_begin(f, &c, "Alerts per tick");
    rs_vbars(f, &c, x, y, n, rs_color(3), w < 1 ? 1 : w > 24 ? 24 : w);
    rs_end(f);
    free(x);
    return 0;
}

typedef struct wsort_s {
    double w;
    int i;
} wsort_t;

static int cmp_abs_desc(const void *pa, const void *pb)
{
    const wsort_t *a = pa, *b = pb;
    if (fabs(a->w) != fabs(b->w))
        return fabs(a->w) > fabs(b->w) ? -1 : 1;
    return a->i - b->i;
}

static int write_weights(FILE *f, const rep_t *rp, const char *const *names)
{
    fputs("<h2 id=\"weights\">Weights by feature</h2>\n", f);
    const lr_t *lr = rp->model ? model_logreg(rp->model) : NULL;
    if (!lr) {
        no_data(f, "No model: no weights.");
        return 0;
    }
    int dim = lr_dim(lr);
    wsort_t *ws = malloc((size_t)dim * sizeof(*ws));
    const char **labels = malloc((size_t)dim * sizeof(*labels));
    double *vals = malloc((size_t)dim * sizeof(*vals));
    char(*fallback)[16] = malloc((size_t)dim * sizeof(*fallback));
    if (!ws || !labels || !vals || !fallback) {
        free(ws), free(labels), free(vals), free(fallback);
        return -1;
    }
    for (int i = 0; i < dim; i++)
        ws[i] = (wsort_t){lr_weight(lr, i), i};
    qsort(ws, (size_t)dim, sizeof(*ws), cmp_abs_desc);
    for (int i = 0; i < dim; i++) {
        snprintf(fallback[i], sizeof(fallback[0]), "f%d", ws[i].i);
        labels[i] = names && names[ws[i].i] ? names[ws[i].i] : fallback[i];
        vals[i] = ws[i].w;
    }
    fputs("<p>Logistic-regression weights on standardized features (z-scores), largest "
          "|w| first: a positive weight raises the churn probability as the feature grows. "
          "Bias (intercept): ",
          f);
    rs_num(f, lr_bias(lr), 4);
    fputs(".</p>\n", f);
    rs_hbars(f, "Weights by feature, sorted by absolute value", labels, vals, (size_t)dim, 4,
             rs_color(3), rs_color(0));
    const char *ln[] = {"raises churn probability", "lowers churn probability"};
    const char *lc[] = {rs_color(3), rs_color(0)};
    rs_legend(f, ln, lc, 2);
    free(ws), free(labels), free(vals), free(fallback);
    return 0;
}

static int write_doc(FILE *f, const rep_t *rp)
{
    const char *names[FEAT_DIM];
    int named = rp->model && model_dim(rp->model) == FEAT_DIM;
    for (int i = 0; i < FEAT_DIM; i++)
        names[i] = feat_info[i].name;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>churnstream backtest report</title>\n<style>\n",
          f);
    fputs(css, f);
    fputs("</style>\n</head>\n<body>\n<h1>churnstream backtest report</h1>\n", f);
    if (rp->n == 0) {
        fputs("<p><strong>There were no labelled snapshots in the window</strong>: no metric "
              "or chart below can be computed (the input may be shorter than the label "
              "horizon).</p>\n",
              f);
    } else {
        char d0[24], d1[24];
        rs_date(rp->ticks[0].tick_ms, d0, sizeof(d0));
        rs_date(rp->ticks[rp->nticks - 1].tick_ms, d1, sizeof(d1));
        fprintf(f, "<p>%zu labelled snapshots (%zu churned) over %zu tick%s, %s to %s.</p>\n",
                rp->n, rp->pos, rp->nticks, rp->nticks == 1 ? "" : "s", d0, d1);
    }
    fputs("<nav><a href=\"#business\">for marketing</a> &middot; <a href=\"#outcomes\">did the "
          "alerts work?</a> &middot; <a href=\"#input\">input</a> &middot; "
          "<a href=\"#metrics\">metrics</a> &middot; "
          "<a href=\"#roc\">ROC</a> &middot; <a href=\"#calibration\">calibration</a> &middot; "
          "<a href=\"#time\">over time</a> &middot; <a href=\"#segments\">segments</a> &middot; "
          "<a href=\"#alerts\">alerts</a> &middot; <a href=\"#weights\">weights</a></nav>\n",
          f);
    /* For the people who act on the alerts first; the data science figures follow. */
    rp_report_business_html(f, rp->sum, rp->m, rp->n);
    rp_report_outcomes_html(f, rp->sum);
    fputs("<h2 id=\"data-science\">Data science</h2>\n<p class=\"note\">How well the model "
          "ranks and calibrates, against the recency baseline, per tick and segment.</p>\n",
          f);
    write_summary(f, rp);
    write_experts(f, rp);
    write_roc(f, rp);
    write_calibration(f, rp);
    if (write_over_time(f, rp) != 0 || write_segments(f, rp, named ? names : NULL) != 0 ||
        report_alerts_chart(f, rp->sum) != 0 || write_weights(f, rp, named ? names : NULL) != 0)
        return -1;
    fputs("</body>\n</html>\n", f);
    return 0;
}

int report_write(const char *path, const rp_summary_t *sum, const rp_row_t *rows, size_t n,
                 const model_t *model, char *errstr, size_t errstr_size)
{
    if (!path || !sum || (n > 0 && !rows)) {
        snprintf(errstr, errstr_size, "%s: report: bad argument", path ? path : "(null)");
        return -1;
    }
    rep_t rp = {.sum = sum, .model = model};
    int k = model ? model_k(model) : sum->k;
    rp.k = k < 0 ? 0 : k > RP_MAX_SEGMENTS ? RP_MAX_SEGMENTS : k;
    int rc = -1;
    if (rep_compute(&rp, rows, n) != 0) {
        snprintf(errstr, errstr_size, "%s: out of memory", path);
        goto out;
    }
    /* of_open: a reader never sees half a report and a failed run leaves the previous one
     * in place; a device or FIFO is written through, never replaced. */
    of_t *of = of_open(path, errstr, errstr_size);
    if (!of)
        goto out;
    if (write_doc(of_file(of), &rp) != 0) {
        snprintf(errstr, errstr_size, "%s: out of memory", path);
        of_abort(of);
        goto out;
    }
    if (of_commit(of, errstr, errstr_size) != 0)
        goto out;
    rc = 0;
out:
    rep_free(&rp);
    return rc;
}
