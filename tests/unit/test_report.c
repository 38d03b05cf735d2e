/* The HTML report: content, exact figures (ROC AUC against bt_auc, calibration and segment
 * tables by hand), self-containment, escaping, edge cases, determinism and write errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "backtest.h"
#include "feat.h"
#include "report.h"

/* A backtest row: tick, score, recency days, segment, label, in_window. */
#define ROW(t, sc, rec, sg, yy, win)                                                               \
    ((rp_row_t){.tick_ms = (t),                                                                    \
                .score = (sc),                                                                     \
                .recency_days = (rec),                                                             \
                .seg = (int16_t)(sg),                                                              \
                .y = (int8_t)(yy),                                                                 \
                .in_window = (int8_t)(win)})

#define N(a)     (sizeof(a) / sizeof((a)[0]))
#define T0_MS    (19726LL * 86400000LL) /* 2024-01-04, a multiple of 7 days */
#define WEEK_MS  (7LL * 86400000LL)
#define MAX_ROWS 4096

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_report.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    return rmdir(tmpdir);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    size_t got = fread(s, 1, (size_t)len, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* A model with non-zero weights and seeded k-means: trained on FEAT_DIM-wide rows where
 * feature 0 drives the label and feature 1 splits two clusters. */
static model_t *trained_model(void)
{
    char err[256];
    model_t *m = model_new(FEAT_DIM, 2, 7, NULL, err, sizeof(err));
    assert_non_null(m);
    enum { ROWS = 400 };
    static float x[ROWS * FEAT_DIM], y[ROWS];
    uint32_t s = 12345;
    for (int i = 0; i < ROWS; i++) {
        for (int j = 0; j < FEAT_DIM; j++) {
            s = s * 1664525u + 1013904223u;
            x[i * FEAT_DIM + j] = (float)(s >> 8) / (float)(1u << 24);
        }
        x[i * FEAT_DIM + 1] += (i % 2) * 5.0f;
        y[i] = x[i * FEAT_DIM] > 0.5f ? 1.0f : 0.0f;
    }
    assert_int_equal(model_train(m, x, y, ROWS, NULL), 0);
    assert_true(fabs(lr_weight(model_logreg(m), 0)) > 0);
    return m;
}

/* ticks x per_tick rows, segments alternating 0/1, y from an LCG, score and recency
 * informative but noisy; the last tick is out of the window (censored). */
static size_t make_rows(rp_row_t *rows, int ticks, int per_tick)
{
    uint32_t s = 99;
    size_t n = 0;
    for (int t = 0; t < ticks; t++)
        for (int i = 0; i < per_tick; i++) {
            s = s * 1664525u + 1013904223u;
            int y = (s >> 20) % 3 == 0;
            double noise = (double)((s >> 4) & 0xffff) / 65536.0;
            rows[n++] =
                (rp_row_t){.tick_ms = T0_MS + t * WEEK_MS,
                           /* on a 1/20 grid: ties across classes, counted 1/2 */
                           .score = (float)(floor((0.05 + 0.5 * noise + 0.4 * y) * 20) / 20),
                           .recency_days = (float)floor(10 * noise + 5 * y),
                           .seg = (int16_t)(i % 2),
                           .y = (int8_t)y,
                           .in_window = t < ticks - 1};
        }
    return n;
}

/* The summary as replay fills it, metrics from bt_compute on the same in-window rows. */
static void make_summary(rp_summary_t *sum, const rp_row_t *rows, size_t n, const model_t *m)
{
    memset(sum, 0, sizeof(*sum));
    sum->events_read = 1000;
    sum->events_applied = 990;
    sum->rejects[EV_ERR_NON_FINITE_AMOUNT] = 10;
    sum->users = 40;
    sum->first_event_ms = T0_MS - 30 * 86400000LL;
    sum->last_event_ms = T0_MS + 100 * 86400000LL;
    sum->end_ms = T0_MS + 101 * 86400000LL;
    static bt_row_t bm[MAX_ROWS], br[MAX_ROWS];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].in_window) {
            bm[k] = (bt_row_t){rows[i].tick_ms, rows[i].score, rows[i].y};
            br[k++] = (bt_row_t){rows[i].tick_ms, rows[i].recency_days, rows[i].y};
        }
    sum->scored = n;
    sum->labelled = k;
    sum->censored = n - k;
    assert_int_equal(bt_compute(bm, k, &sum->model), 0);
    assert_int_equal(bt_compute(br, k, &sum->recency), 0);
    sum->model_version = m ? model_version(m) : 0;
    sum->k = m ? model_k(m) : 2;
}

static char *write_and_read(const char *name, const rp_row_t *rows, size_t n, const model_t *m)
{
    rp_summary_t sum;
    make_summary(&sum, rows, n, m);
    char path[256], err[512] = "";
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    int rc = report_write(path, &sum, rows, n, m, err, sizeof(err));
    if (rc != 0)
        fail_msg("report_write: %s", err);
    char *s = slurp(path);
    assert_non_null(s);
    return s;
}

/* Every file: a complete document, nothing fetched from anywhere, no printf NaN/Inf. */
static void assert_well_formed(const char *s)
{
    assert_true(strncmp(s, "<!DOCTYPE html>\n<html", 21) == 0);
    size_t len = strlen(s);
    assert_true(len > 16 && strcmp(s + len - 8, "</html>\n") == 0);
    static const char *const banned[] = {"http://", "https://", "src=", "<script", "@import",
                                         "url(",    ">nan",     "nan<", "-nan",    ">inf",
                                         "inf<",    "\"nan",    "nan,", "\"inf"};
    for (size_t i = 0; i < N(banned); i++)
        if (strstr(s, banned[i]))
            fail_msg("found \"%s\" in the report", banned[i]);
    assert_int_equal(count(s, "<svg"), count(s, "</svg>"));
    assert_int_equal(count(s, "<table>"), count(s, "</table>"));
}

static void test_full_report(void **state)
{
    (void)state;
    model_t *m = trained_model();
    static rp_row_t rows[MAX_ROWS];
    size_t n = make_rows(rows, 6, 40);
    char *s = write_and_read("full.html", rows, n, m);
    assert_well_formed(s);
    assert_true(count(s, "<svg") >= 5);
    static const char *const sections[] = {
        "<h2 id=\"input\">Input</h2>",
        "<h2 id=\"metrics\">Metrics</h2>",
        "How to read this",
        "<h2 id=\"roc\">ROC curve</h2>",
        "<h2 id=\"calibration\">Calibration</h2>",
        "<h2 id=\"time\">AUC and log-loss over time</h2>",
        "Positive rate per tick",
        "<h2 id=\"segments\">Segments over time</h2>",
        "<h2 id=\"alerts\">Alerts per tick</h2>",
        /* the synthetic summary has no alerts: the section says so, no made-up bars */
        "<p>0 alerts: high 0, medium 0, low 0; treatment 0, holdout 0.</p>",
        "No alert fired (see alert.threshold, alert.top_percent and model.min_examples).",
        "<h2 id=\"weights\">Weights by feature</h2>",
        /* 5 labelled ticks of 40 (the 6th is censored), dates in UTC */
        "200 labelled snapshots",
        "over 5 ticks, 2024-01-04 to 2024-02-01.",
        "<tr><td>rejected: non_finite_amount</td><td>10</td></tr>",
        "<tr><td>snapshots scored / labelled / censored</td><td>240 / 200 / 40</td></tr>",
        "ticks with one class only are skipped: 0 of 5",
        "exactly 0 or 1: 0 of 5",
    };
    for (size_t i = 0; i < N(sections); i++)
        if (!strstr(s, sections[i]))
            fail_msg("missing \"%s\"", sections[i]);
    for (int i = 0; i < FEAT_DIM; i++)
        if (!strstr(s, feat_info[i].name))
            fail_msg("feature %s missing", feat_info[i].name);

    /* The legend's AUCs come from the exact curve: equal to bt_auc on the in-window rows. */
    static bt_row_t bm[MAX_ROWS], br[MAX_ROWS];
    size_t k = 0, pos = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].in_window) {
            bm[k] = (bt_row_t){rows[i].tick_ms, rows[i].score, rows[i].y};
            br[k++] = (bt_row_t){rows[i].tick_ms, rows[i].recency_days, rows[i].y};
            pos += (size_t)rows[i].y;
        }
    char want[128];
    snprintf(want, sizeof(want), "model (AUC %.4f)", bt_auc(bm, k));
    assert_non_null(strstr(s, want));
    snprintf(want, sizeof(want), "recency baseline (AUC %.4f)", bt_auc(br, k));
    assert_non_null(strstr(s, want));
    snprintf(want, sizeof(want), "labelled snapshots (%zu churned)", pos);
    assert_non_null(strstr(s, want));

    /* Segment table rows by hand: segment s holds rows with i % 2 == s, in window. */
    for (int seg = 0; seg < 2; seg++) {
        size_t sn = 0, sp = 0;
        for (size_t i = 0; i < n; i++)
            if (rows[i].in_window && rows[i].seg == seg) {
                sn++;
                sp += (size_t)rows[i].y;
            }
        snprintf(want, sizeof(want),
                 "<tr><td>%d</td><td>%zu</td><td>%.4f</td><td>%zu</td>"
                 "<td>%.4f</td>",
                 seg, sn, (double)sn / (double)k, sp, (double)sp / (double)sn);
        if (!strstr(s, want))
            fail_msg("missing segment row %s", want);
    }
    /* Nothing but the report left in the directory (the temp file was renamed). */
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s/full.html.tmp.%ld", tmpdir, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1);
    free(s);
    model_destroy(m);
}

static void test_calibration_table(void **state)
{
    (void)state;
    /* Bin [0.1, 0.2): scores .125 (y 0), .175 (y 1) -> mean .15, rate .5; bin [0.9, 1]:
     * .95 (y 1) and 1.0 is not possible from a sigmoid, but must land in the top bin. */
    rp_row_t rows[] = {ROW(T0_MS, .125f, 1, 0, 0, 1), ROW(T0_MS, .175f, 2, 0, 1, 1),
                       ROW(T0_MS, .95f, 3, 1, 1, 1), ROW(T0_MS, 1.0f, 3, 1, 1, 1),
                       ROW(T0_MS, .55f, 4, 1, 0, 1)};
    model_t *m = trained_model();
    char *s = write_and_read("cal.html", rows, N(rows), m);
    assert_well_formed(s);
    static const char *const want[] = {
        "<tr><td>0.1 &ndash; 0.2</td><td>2</td><td>0.1500</td><td>0.5000</td></tr>",
        "<tr><td>0.9 &ndash; 1.0</td><td>2</td><td>0.9750</td><td>1.0000</td></tr>",
        "<tr><td>0.5 &ndash; 0.6</td><td>1</td><td>0.5500</td><td>0.0000</td></tr>",
        "<tr><td>0.0 &ndash; 0.1</td><td>0</td><td>n/a</td><td>n/a</td></tr>",
        /* one tick with both classes; scores include 1.0 so log-loss is n/a */
        "ticks with one class only are skipped: 0 of 1",
        "<tr><td>log-loss</td><td>n/a</td><td>n/a</td></tr>",
        "exactly 0 or 1: 1 of 1",
        "over 1 tick, 2024-01-04 to 2024-01-04.",
    };
    for (size_t i = 0; i < N(want); i++)
        if (!strstr(s, want[i]))
            fail_msg("missing \"%s\"", want[i]);
    free(s);
    model_destroy(m);
}

static void test_roc_downsampled(void **state)
{
    (void)state;
    /* 3000 distinct scores: the exact curve has 3001 vertices, the SVG at most 500. */
    static rp_row_t rows[3000];
    for (int i = 0; i < 3000; i++)
        rows[i] = ROW(T0_MS + (i % 3) * WEEK_MS, (float)(i + 1) / 3001.0f, (float)(i % 97),
                      (int16_t)(i % 2), (int8_t)((i * 7919) % 5 < 2), 1);
    char *s = write_and_read("roc.html", rows, N(rows), NULL);
    assert_well_formed(s);
    const char *roc = strstr(s, "<title>ROC curve");
    assert_non_null(roc);
    const char *end = strstr(roc, "</svg>");
    size_t max_pts = 0;
    for (const char *p = roc; (p = strstr(p, "points=\"")) && p < end; p++) {
        size_t pts = 1;
        for (const char *q = p + 8; *q != '"'; q++)
            pts += *q == ' ';
        max_pts = pts > max_pts ? pts : max_pts;
    }
    assert_int_equal(max_pts, 500);
    assert_non_null(strstr(s, "No model: no weights."));
    free(s);
}

static void fill_one_class(rp_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rows[i] = ROW(T0_MS + (int64_t)(i % 3) * WEEK_MS, 0.3f, 2, 0, 1, 1);
}

static void test_edge_cases(void **state)
{
    (void)state;
    model_t *m = trained_model();
    static rp_row_t rows[128];
    static const struct {
        const char *name;
        int kind; /* 0 no rows, 1 all censored, 2 one class, 3 one tick */
        size_t n;
        const char *expect[3];
    } cases[] = {
        {"empty.html",
         0,
         0,
         {"There were no labelled snapshots", "No labelled snapshots: no ROC",
          "Weights by feature"}},
        {"censored.html",
         1,
         10,
         {"There were no labelled snapshots", "0 / 10",
          "No labelled snapshots: no segment figures."}},
        {"oneclass.html",
         2,
         30,
         {"n/a: the labelled snapshots hold one class only",
          "ticks with one class only are skipped: 3 of 3",
          "<tr><td>AUC (pooled)</td><td>n/a</td><td>n/a</td></tr>"}},
        {"onetick.html",
         3,
         40,
         {"over 1 tick, 2024-01-04 to 2024-01-04.", "2024-01-04</text>", "<h2 id=\"segments\">"}},
    };
    for (size_t c = 0; c < N(cases); c++) {
        size_t n = cases[c].n;
        if (cases[c].kind == 1) {
            make_rows(rows, 2, 5);
            for (size_t i = 0; i < n; i++)
                rows[i].in_window = 0;
        } else if (cases[c].kind == 2) {
            fill_one_class(rows, n);
        } else if (cases[c].kind == 3) {
            make_rows(rows, 2, 40); /* first tick in window, second censored: drop it */
        }
        char *s = write_and_read(cases[c].name, rows, n, m);
        assert_well_formed(s);
        for (size_t i = 0; i < N(cases[c].expect); i++)
            if (!strstr(s, cases[c].expect[i]))
                fail_msg("%s: missing \"%s\"", cases[c].name, cases[c].expect[i]);
        free(s);
    }
    model_destroy(m);
}

static void test_deterministic(void **state)
{
    (void)state;
    model_t *m = trained_model();
    static rp_row_t rows[MAX_ROWS];
    size_t n = make_rows(rows, 8, 30);
    char *a = write_and_read("a.html", rows, n, m);
    char *b = write_and_read("b.html", rows, n, m);
    /* Row order must not matter either: the same rows reversed. */
    for (size_t i = 0; i < n / 2; i++) {
        rp_row_t t = rows[i];
        rows[i] = rows[n - 1 - i];
        rows[n - 1 - i] = t;
    }
    char *c = write_and_read("c.html", rows, n, m);
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    free(a), free(b), free(c);
    model_destroy(m);
}

static void test_unwritable(void **state)
{
    (void)state;
    rp_summary_t sum;
    memset(&sum, 0, sizeof(sum));
    char err[512] = "";
    const char *path = "/nonexistent-dir-for-test_report/sub/r.html";
    assert_int_equal(report_write(path, &sum, NULL, 0, NULL, err, sizeof(err)), -1);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_non_null(strstr(err, "No such file or directory"));
    /* A directory as the target: the temp file is written, the rename fails and the temp
     * file is removed. */
    assert_int_equal(report_write(tmpdir, &sum, NULL, 0, NULL, err, sizeof(err)), -1);
    assert_true(strncmp(err, tmpdir, strlen(tmpdir)) == 0);
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", tmpdir, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1);
}

static void test_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t cap;
        const char *out;
        size_t ret;
    } cases[] = {
        {"plain_name", 64, "plain_name", 10},
        {"<b>", 64, "&lt;b&gt;", 9},
        {"a&b", 64, "a&amp;b", 7},
        {"\"'", 64, "&quot;&#39;", 11},
        {"", 64, "", 0},
        {NULL, 64, "", 0},
        /* truncation never cuts an entity: "a" then "&lt;" does not fit in 4 */
        {"a<b", 4, "a", 6},
        {"a<b", 6, "a&lt;", 6},
        {"a<b", 7, "a&lt;b", 6},
        {"abc", 1, "", 3},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char out[64];
        memset(out, 'x', sizeof(out));
        assert_int_equal(report_html_escape(cases[i].in, out, cases[i].cap), cases[i].ret);
        assert_string_equal(out, cases[i].out);
    }
    char untouched = 'z';
    assert_int_equal(report_html_escape("<", &untouched, 0), 4);
    assert_int_equal(untouched, 'z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_report),     cmocka_unit_test(test_calibration_table),
        cmocka_unit_test(test_roc_downsampled), cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_deterministic),   cmocka_unit_test(test_unwritable),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
