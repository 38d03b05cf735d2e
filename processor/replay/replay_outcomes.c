/* The alert outcomes of a replay as people and machines read them: the summary's "outcomes"
 * lines, its --json "outcomes" object and the report's "Did the alerts work?" section. The
 * figures come from the outcome counts (processor/alerts/outcome.h). */
#include "replay_outcomes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define FEAT_DAY_MS_D 86400000.0

static const oc_by_t dims[] = {OC_BY_ALL, OC_BY_KIND, OC_BY_ACTION, OC_BY_SEGMENT};
static const char *const dim_names[] = {"all", "kind", "action", "segment"};

static void pct(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.1f%%", 100.0 * v);
    else
        fputs("n/a", out);
}

static void pts(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%+.1f", 100.0 * v);
    else
        fputs("n/a", out);
}

static void text_row(FILE *out, const oc_row_t *r, const char *indent)
{
    fprintf(out, "%s%-42.42s treatment ", indent, r->key);
    pct(out, r->share[0]);
    fprintf(out, " of %llu, holdout ", (unsigned long long)r->n[0]);
    pct(out, r->share[1]);
    fprintf(out, " of %llu; uplift ", (unsigned long long)r->n[1]);
    pts(out, r->uplift);
    fputs(" pts [", out);
    pts(out, r->lo);
    fputs(", ", out);
    pts(out, r->hi);
    fputs("]\n", out);
}

void rp_print_outcomes_text(FILE *out, const rp_summary_t *s)
{
    if (!s->outcomes)
        return;
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        oc_row_t *rows = NULL;
        size_t n = oc_stats_rows(s->outcomes, dims[d], &rows);
        if (n == (size_t)-1)
            return;
        if (d == 0) {
            uint64_t c = 0, rep = 0;
            for (size_t i = 0; i < n; i++)
                c += rows[i].censored[0] + rows[i].censored[1],
                    rep += rows[i].repeats[0] + rows[i].repeats[1];
            fprintf(out,
                    "outcomes   active again within %.0f days of the alert (95%% Wald interval of "
                    "the difference); %llu censored at the end, %llu repeat alerts not counted\n",
                    (double)s->outcome_window_ms / FEAT_DAY_MS_D, (unsigned long long)c,
                    (unsigned long long)rep);
        }
        for (size_t i = 0; i < n; i++)
            text_row(out, &rows[i], d == 0 ? "  " : "    ");
        free(rows);
    }
}

void rp_json_num(FILE *out, const char *key, double v, int comma)
{
    if (isfinite(v))
        fprintf(out, "\"%s\":%.6g%s", key, v, comma ? "," : "");
    else
        fprintf(out, "\"%s\":null%s", key, comma ? "," : "");
}

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void json_row(FILE *out, const oc_row_t *r)
{
    fputs("{\"key\":", out);
    json_str(out, r->key);
    static const char *const arm[2] = {"treatment", "holdout"};
    for (int a = 0; a < 2; a++) {
        fprintf(out,
                ",\"%s\":{\"alerted\":%llu,\"retained\":%llu,\"censored\":%llu,"
                "\"repeats\":%llu,",
                arm[a], (unsigned long long)r->n[a], (unsigned long long)r->retained[a],
                (unsigned long long)r->censored[a], (unsigned long long)r->repeats[a]);
        rp_json_num(out, "retained_share", r->share[a], 0);
        fputc('}', out);
    }
    fputc(',', out);
    rp_json_num(out, "uplift", r->uplift, 1);
    rp_json_num(out, "uplift_lo", r->lo, 1);
    rp_json_num(out, "uplift_hi", r->hi, 0);
    fputc('}', out);
}

void rp_print_outcomes_json(FILE *out, const rp_summary_t *s)
{
    fprintf(out, "\"outcomes\":{\"window_days\":%.6g,\"interval\":\"wald95\"",
            (double)s->outcome_window_ms / FEAT_DAY_MS_D);
    for (size_t d = 0; s->outcomes && d < sizeof dims / sizeof dims[0]; d++) {
        oc_row_t *rows = NULL;
        size_t n = oc_stats_rows(s->outcomes, dims[d], &rows);
        if (n == (size_t)-1)
            break;
        fprintf(out, ",\"by_%s\":[", dim_names[d]);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputc(',', out);
            json_row(out, &rows[i]);
        }
        fputc(']', out);
        free(rows);
    }
    fputc('}', out);
}

static void html_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

static void html_rows(FILE *out, const oc_stats_t *st, oc_by_t by, const char *title)
{
    oc_row_t *rows = NULL;
    size_t n = oc_stats_rows(st, by, &rows);
    if (n == (size_t)-1 || n == 0) {
        free(rows);
        return;
    }
    fprintf(out,
            "<h3>%s</h3>\n<table><tr><th></th><th>treatment: alerted</th><th>retained</th>"
            "<th>holdout: alerted</th><th>retained</th><th>uplift (pts)</th>"
            "<th>95%% interval</th></tr>\n",
            title);
    for (size_t i = 0; i < n; i++) {
        const oc_row_t *r = &rows[i];
        fputs("<tr><td>", out);
        html_text(out, r->key);
        fprintf(out, "</td><td>%llu</td><td>", (unsigned long long)r->n[0]);
        pct(out, r->share[0]);
        fprintf(out, "</td><td>%llu</td><td>", (unsigned long long)r->n[1]);
        pct(out, r->share[1]);
        fputs("</td><td>", out);
        pts(out, r->uplift);
        fputs("</td><td>", out);
        pts(out, r->lo);
        fputs(" .. ", out);
        pts(out, r->hi);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
    free(rows);
}

void rp_report_outcomes_html(FILE *out, const rp_summary_t *s)
{
    fputs("<h2 id=\"outcomes\">Did the alerts work?</h2>\n", out);
    if (!s->outcomes) {
        fputs("<p>No outcomes.</p>\n", out);
        return;
    }
    fprintf(out,
            "<p>An alerted user is <em>retained</em> when active again (any event but a refund or "
            "a subscription cancel) within %.0f days after the alert, in event time. The "
            "holdout arm gets no treatment and is measured the same way, so the uplift "
            "(treatment minus holdout retained share) is what the treatments added. The "
            "interval is the 95%% normal (Wald) interval of a difference of two proportions. "
            "Alerts whose window reaches past the end of the log are censored (not counted); "
            "an alert while the user's previous one is still open is a repeat (not counted).</p>\n",
            (double)s->outcome_window_ms / FEAT_DAY_MS_D);
    html_rows(out, s->outcomes, OC_BY_ALL, "All alerts");
    html_rows(out, s->outcomes, OC_BY_KIND, "By kind");
    html_rows(out, s->outcomes, OC_BY_ACTION, "By recommended action");
    html_rows(out, s->outcomes, OC_BY_SEGMENT, "By segment");
}
