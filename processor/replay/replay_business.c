/* The business section of the replay report: what a marketer asks of a backtest (how many
 * churners do we reach for how many contacts, how much revenue is at risk where, how many
 * contacts a week each action needs). Collects per alert, draws at the end. */
#include "replay_business.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "feat.h"
#include "report_svg.h"

#define WEEK_MS      (7 * 86400000LL)
#define GAINS_POINTS 200

int rp_business_add_alert(rp_summary_t *s, const alert_t *a)
{
    int seg = a->segment_id >= 0 && a->segment_id < RP_MAX_SEGMENTS ? a->segment_id + 1 : 0;
    s->seg_alerts[seg]++;
    double rev = a->features[FEAT_REVENUE_90D];
    if (isfinite(rev))
        s->seg_alert_revenue[seg] += rev;
    if (a->arm != ALERT_TREATMENT)
        return 0;
    int64_t t = a->event_time_ms;
    int64_t week = t >= 0 ? t / WEEK_MS : -((-t + WEEK_MS - 1) / WEEK_MS);
    for (size_t i = 0; i < s->ncontacts; i++) {
        struct rp_contacts_s *c = &s->contacts[i];
        if (c->week == week && strcmp(c->action, a->recommended_action) == 0) {
            c->n++;
            return 0;
        }
    }
    if (s->ncontacts == s->capcontacts) {
        size_t cap = s->capcontacts ? s->capcontacts * 2 : 64;
        struct rp_contacts_s *p = realloc(s->contacts, cap * sizeof(*p));
        if (!p)
            return -1;
        s->contacts = p;
        s->capcontacts = cap;
    }
    struct rp_contacts_s *c = &s->contacts[s->ncontacts++];
    snprintf(c->action, sizeof c->action, "%s", a->recommended_action);
    c->week = week;
    c->n = 1;
    return 0;
}

static int cmp_score_desc(const void *pa, const void *pb)
{
    const bt_row_t *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->y - b->y; /* ties: negatives first, so the curve is not flattered */
}

static void gains(FILE *f, const bt_row_t *m, size_t n)
{
    fputs("<h3>Gains: churners reached for the contacts made</h3>\n", f);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += m[i].y == 1;
    if (n == 0 || pos == 0) {
        fputs("<p class=\"note\">No labelled churner: no gains chart.</p>\n", f);
        return;
    }
    bt_row_t *r = malloc(n * sizeof(*r));
    if (!r)
        return;
    memcpy(r, m, n * sizeof(*r));
    qsort(r, n, sizeof(*r), cmp_score_desc);
    double x[GAINS_POINTS + 1], y[GAINS_POINTS + 1];
    size_t k = 0, caught = 0, at10 = 0;
    x[k] = y[k] = 0;
    k++;
    for (size_t i = 0; i < n; i++) {
        caught += r[i].y == 1;
        if ((i + 1) * 10 <= n)
            at10 = caught;
        if ((i + 1) * GAINS_POINTS / n != i * GAINS_POINTS / n || i + 1 == n) {
            x[k] = (double)(i + 1) / (double)n;
            y[k] = (double)caught / (double)pos;
            if (k < GAINS_POINTS)
                k++;
        }
    }
    free(r);
    rs_chart_t c;
    rs_chart_init(&c, 0, 1, 0, "share of scored users contacted (highest scores first)", 0, 1,
                  "share of churners reached");
    c.width = 420;
    c.height = 400;
    rs_begin(f, &c, "Gains chart");
    static const double diag[2] = {0, 1};
    rs_line(f, &c, diag, diag, 2, "#9a9a9a", 1);
    rs_line(f, &c, x, y, k, rs_color(0), 0);
    rs_end(f);
    fprintf(f,
            "<p>Contacting the 10%% of labelled snapshots (a user at a tick) with the highest "
            "churn probability reaches %.0f%% of the churners (random contacts: 10%%); the "
            "same rows as the ROC curve.</p>\n",
            100.0 * (double)at10 / (double)pos);
}

static void revenue(FILE *f, const rp_summary_t *s)
{
    fputs("<h3>Revenue at risk by segment</h3>\n<table><tr><th>segment</th><th>alerts</th>"
          "<th>revenue in the 90 days before the alert (sum)</th><th>per alert</th></tr>\n",
          f);
    for (int i = 0; i <= RP_MAX_SEGMENTS; i++) {
        if (!s->seg_alerts[i])
            continue;
        fputs("<tr><td>", f);
        if (i == 0)
            fputs("unsegmented", f);
        else
            fprintf(f, "%d", i - 1);
        fprintf(f, "</td><td>%zu</td><td>", s->seg_alerts[i]);
        rs_num(f, s->seg_alert_revenue[i], 0);
        fputs("</td><td>", f);
        rs_num(f, s->seg_alert_revenue[i] / (double)s->seg_alerts[i], 2);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n<p class=\"note\">revenue_90d is the time-decayed revenue feature (half-life "
          "90 days) at the alert; a user alerted twice counts twice. Segment names are in the "
          "Segments section.</p>\n",
          f);
}

static void contacts(FILE *f, const rp_summary_t *s)
{
    fputs("<h3>Contacts per week by action</h3>\n", f);
    if (s->ncontacts == 0) {
        fputs("<p class=\"note\">No treatment-arm alert: no contact.</p>\n", f);
        return;
    }
    int64_t w0 = s->contacts[0].week, w1 = w0;
    for (size_t i = 0; i < s->ncontacts; i++) {
        w0 = s->contacts[i].week < w0 ? s->contacts[i].week : w0;
        w1 = s->contacts[i].week > w1 ? s->contacts[i].week : w1;
    }
    const double weeks = (double)(w1 - w0 + 1);
    fprintf(f,
            "<table><tr><th>action</th><th>contacts</th><th>per week (mean over %.0f weeks)"
            "</th><th>busiest week</th></tr>\n",
            weeks);
    for (size_t i = 0; i < s->ncontacts; i++) {
        size_t j = 0;
        while (j < i && strcmp(s->contacts[j].action, s->contacts[i].action) != 0)
            j++;
        if (j < i)
            continue; /* action listed at its first cell */
        size_t total = 0, peak = 0;
        int64_t peak_week = s->contacts[i].week;
        for (size_t k = i; k < s->ncontacts; k++) {
            const struct rp_contacts_s *c = &s->contacts[k];
            if (strcmp(c->action, s->contacts[i].action) != 0)
                continue;
            total += c->n;
            if (c->n > peak || (c->n == peak && c->week < peak_week)) {
                peak = c->n;
                peak_week = c->week;
            }
        }
        char d[24];
        rs_date(peak_week * WEEK_MS, d, sizeof d);
        fputs("<tr><td>", f);
        rs_text(f, s->contacts[i].action);
        fprintf(f, "</td><td>%zu</td><td>", total);
        rs_num(f, (double)total / weeks, 1);
        fprintf(f, "</td><td>%zu (week of %s)</td></tr>\n", peak, d);
    }
    fputs("</table>\n<p class=\"note\">Contacts are treatment-arm alerts (the holdout is not "
          "contacted); weeks are 7-day blocks of event time.</p>\n",
          f);
}

void rp_report_business_html(FILE *f, const rp_summary_t *s, const bt_row_t *m, size_t n)
{
    fputs("<h2 id=\"business\">For the people who act on it</h2>\n", f);
    gains(f, m, n);
    revenue(f, s);
    contacts(f, s);
    fputs("<p>Whether the contacts worked: <a href=\"#outcomes\">Did the alerts work?</a> "
          "(uplift by arm, kind, action and segment).</p>\n",
          f);
}
