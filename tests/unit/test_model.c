/* Unit tests of the model snapshot: the train/score pipeline, bit-identical determinism,
 * encode -> decode -> encode identity, and rejection of truncated, corrupted, re-versioned
 * and inconsistent snapshots at every length (run under ASan in CI). */
#include <cblas.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "experts.h"
#include "feat.h"
#include "logreg.h"
#include "model.h"
#include "rng.h"

#define DIM 6
#define K   4

/* Raw-scale features (means far from 0, mixed scales) with churn driven by two of them. */
static void make_data(size_t n, uint64_t seed, float *x, float *y)
{
    rng_t r;
    rng_seed(&r, seed);
    const double mean[DIM] = {100, -5, 0.5, 2000, 3, 0};
    const double sd[DIM] = {20, 2, 0.1, 500, 1, 1};
    for (size_t i = 0; i < n; i++) {
        int blob = (int)rng_below(&r, 3);
        for (int j = 0; j < DIM; j++)
            x[i * DIM + j] = (float)(mean[j] + sd[j] * (rng_normal(&r) + (j == blob ? 3 : 0)));
        double logit = 2 * (x[i * DIM] - 100) / 20 - 1.5 * (x[i * DIM + 1] + 5) / 2 - 1;
        y[i] = rng_uniform(&r) < 1 / (1 + exp(-logit)) ? 1.0f : 0.0f;
    }
}

/* Prequential loop: score each batch, record metrics, then learn from it. */
static model_t *trained_model(uint64_t seed, size_t n, const size_t *batches, size_t n_batches)
{
    char err[256];
    model_t *m = model_new(DIM, K, seed, NULL, err, sizeof(err));
    assert_non_null(m);
    float *x = malloc(n * DIM * sizeof(float)), *y = malloc(n * sizeof(float));
    float *z = malloc(n * DIM * sizeof(float)), *p = malloc(n * sizeof(float));
    int *seg = malloc(n * sizeof(int));
    make_data(n, 1234, x, y);
    size_t off = 0;
    for (size_t b = 0; off < n; b = (b + 1) % n_batches) {
        size_t len = batches[b] < n - off ? batches[b] : n - off;
        model_score(m, x + off * DIM, NULL, len, z, p, seg, NULL);
        pm_add(model_metrics(m), p, y + off, len);
        assert_int_equal(model_train(m, x + off * DIM, y + off, len, NULL), 0);
        off += len;
    }
    free(x);
    free(y);
    free(z);
    free(p);
    free(seg);
    return m;
}

static const size_t batches[] = {50, 7, 300, 128, 1, 64};

static void test_pipeline_learns(void **state)
{
    (void)state;
    model_t *m = trained_model(9, 10000, batches, 6);
    assert_int_equal(model_examples_seen(m), 10000);
    assert_true(model_version(m) > 10);
    assert_int_equal(model_dim(m), DIM);
    assert_int_equal(model_k(m), K);
    assert_int_equal(model_seed(m), 9);
    pm_t *pm = model_metrics(m);
    assert_int_equal(pm_count(pm), 10000);
    if (!(pm_auc(pm) > 0.85))
        fail_msg("prequential AUC %.4f", pm_auc(pm));
    assert_true(km_is_seeded(model_kmeans(m)));
    /* standardizer learnt the raw scale */
    assert_true(fabs(sc_mean(model_scaler(m), 3) - 2000) < 300);
    /* churn rises with feature 0, falls with feature 1 */
    assert_true(lr_weight(model_logreg(m), 0) > 0);
    assert_true(lr_weight(model_logreg(m), 1) < 0);
    /* segments: scoring assigns valid ids */
    float x[2 * DIM], y[2], z[2 * DIM], p[2];
    int seg[2];
    make_data(2, 77, x, y);
    model_score(m, x, NULL, 2, z, p, seg, NULL);
    assert_true(seg[0] >= 0 && seg[0] < K && seg[1] >= 0 && seg[1] < K);
    assert_true(p[0] > 0 && p[0] < 1);
    model_destroy(m);
    model_destroy(NULL);
}

static void test_new_rejects_bad_params(void **state)
{
    (void)state;
    char err[256];
    model_params_t p;
    model_params_default(&p);
    assert_null(model_new(0, K, 1, &p, err, sizeof(err)));
    assert_non_null(strstr(err, "scaler"));
    assert_null(model_new(DIM, 0, 1, &p, err, sizeof(err)));
    assert_non_null(strstr(err, "k-means"));
    p.lr.learning_rate = -1;
    assert_null(model_new(DIM, K, 1, &p, err, sizeof(err)));
    assert_non_null(strstr(err, "learning rate"));
    model_params_default(&p);
    p.metrics_bins_log2 = 30;
    assert_null(model_new(DIM, K, 1, &p, err, sizeof(err)));
    assert_non_null(strstr(err, "metrics"));
    /* untrained model: scores 0.5, no segments yet */
    model_t *m = model_new(DIM, K, 1, NULL, err, sizeof(err));
    float x[DIM] = {1, 2, 3, 4, 5, 6}, z[DIM], pr;
    int seg;
    model_score(m, x, NULL, 1, z, &pr, &seg, NULL);
    assert_float_equal(pr, 0.5f, 0);
    assert_int_equal(seg, -1);
    model_destroy(m);
}

static void encode_ok(const model_t *m, uint8_t **buf, size_t *len)
{
    assert_int_equal(model_encode(m, buf, len), 0);
    assert_non_null(*buf);
}

static void test_deterministic_bytes(void **state)
{
    (void)state;
    uint8_t *a, *b, *c, *d;
    size_t la, lb, lc, ld;
    model_t *m1 = trained_model(5, 4000, batches, 6);
    model_t *m2 = trained_model(5, 4000, batches, 6);
    encode_ok(m1, &a, &la);
    encode_ok(m2, &b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    /* a different seed or different batch boundaries give a different model */
    model_t *m3 = trained_model(6, 4000, batches, 6);
    const size_t other[] = {100};
    model_t *m4 = trained_model(5, 4000, other, 1);
    encode_ok(m3, &c, &lc);
    encode_ok(m4, &d, &ld);
    assert_true(lc != la || memcmp(a, c, la) != 0);
    assert_true(ld != la || memcmp(a, d, la) != 0);
    free(a);
    free(b);
    free(c);
    free(d);
    model_destroy(m1);
    model_destroy(m2);
    model_destroy(m3);
    model_destroy(m4);
}

static void test_roundtrip_identical(void **state)
{
    (void)state;
    model_t *m = trained_model(3, 3000, batches, 6);
    uint8_t *buf, *again;
    size_t len, len2;
    encode_ok(m, &buf, &len);
    assert_memory_equal(buf, MODEL_MAGIC, 4);
    char err[256] = "";
    model_t *back = model_decode(buf, len, err, sizeof(err));
    if (!back)
        fail_msg("decode: %s", err);
    encode_ok(back, &again, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, again, len);
    assert_int_equal(model_version(back), model_version(m));
    assert_int_equal(model_examples_seen(back), model_examples_seen(m));
    /* the decoded model scores and learns exactly like the original */
    float x[200 * DIM], y[200], z[200 * DIM], p1[200], p2[200];
    int s1[200], s2[200];
    make_data(200, 55, x, y);
    assert_int_equal(model_train(m, x, y, 200, NULL), 0);
    assert_int_equal(model_train(back, x, y, 200, NULL), 0);
    model_score(m, x, NULL, 200, z, p1, s1, NULL);
    model_score(back, x, NULL, 200, z, p2, s2, NULL);
    assert_memory_equal(p1, p2, sizeof(p1));
    assert_memory_equal(s1, s2, sizeof(s1));
    free(buf);
    free(again);
    model_destroy(m);
    model_destroy(back);
}

static void resign(uint8_t *buf, size_t len)
{
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(len - 4));
    for (int i = 0; i < 4; i++)
        buf[len - 4 + i] = (uint8_t)(crc >> (8 * i));
}

static void expect_reject(const uint8_t *buf, size_t len, const char *needle)
{
    char err[256] = "";
    model_t *m = model_decode(buf, len, err, sizeof(err));
    if (m)
        fail_msg("accepted a bad snapshot (len %zu, expected '%s')", len, needle);
    if (needle && !strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    if (!err[0])
        fail_msg("no error message");
}

static void test_rejects_bad_input(void **state)
{
    (void)state;
    model_t *m = trained_model(4, 1500, batches, 6);
    uint8_t *buf;
    size_t len;
    encode_ok(m, &buf, &len);
    model_destroy(m);

    /* every truncation */
    for (size_t n = 0; n < len; n++)
        expect_reject(buf, n, "truncated");
    /* one byte too many */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    expect_reject(longer, len + 1, "trailing");
    free(longer);

    uint8_t *copy = malloc(len);
    /* every single-byte corruption is refused (magic, version, length or CRC) */
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, buf, len);
        copy[i] ^= 0x5a;
        expect_reject(copy, len, NULL);
    }
    memcpy(copy, buf, len);
    memcpy(copy, "XXXX", 4);
    expect_reject(copy, len, "bad magic");
    memcpy(copy, buf, len);
    copy[4] = MODEL_FORMAT_VERSION + 1; /* a future format */
    char want[64];
    snprintf(want, sizeof(want), "unsupported snapshot format version %d",
             MODEL_FORMAT_VERSION + 1);
    expect_reject(copy, len, want);
    /* a format before the oldest this build migrates (3: no graded weeks) is refused by name */
    memcpy(copy, buf, len);
    copy[4] = MODEL_FORMAT_OLDEST - 1;
    snprintf(want, sizeof(want), "unsupported snapshot format version %d (this build reads %d..%d)",
             MODEL_FORMAT_OLDEST - 1, MODEL_FORMAT_OLDEST, MODEL_FORMAT_VERSION);
    expect_reject(copy, len, want);
    memcpy(copy, buf, len);
    copy[len / 2] ^= 1;
    expect_reject(copy, len, "checksum");
    /* a correctly signed header whose dim disagrees with the sections */
    memcpy(copy, buf, len);
    copy[16] = DIM + 1;
    resign(copy, len);
    expect_reject(copy, len, "disagree");
    /* garbage bodies with a valid checksum: decode never reads out of bounds; whatever it
     * accepts must re-encode to the same bytes */
    for (size_t i = 16; i + 4 < len; i++) {
        uint8_t patterns[] = {0xff, 0x00, 0x80};
        for (size_t t = 0; t < 3; t++) {
            memcpy(copy, buf, len);
            if (copy[i] == patterns[t])
                continue;
            copy[i] = patterns[t];
            resign(copy, len);
            char err[256];
            model_t *g = model_decode(copy, len, err, sizeof(err));
            if (g) {
                uint8_t *re;
                size_t rl;
                encode_ok(g, &re, &rl);
                assert_int_equal(rl, len);
                assert_memory_equal(re, copy, len);
                free(re);
                model_destroy(g);
            }
        }
    }
    free(copy);
    free(buf);
}

static void test_save_and_load_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/cs_model_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], tmpname[160];
    snprintf(path, sizeof(path), "%s/model.bin", dir);
    model_t *m = trained_model(8, 2000, batches, 6);
    char err[512];
    assert_int_equal(model_save_file(m, path, err, sizeof(err)), 0);
    /* no temp file left behind */
    snprintf(tmpname, sizeof(tmpname), "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(access(tmpname, F_OK), -1);
    model_t *back = model_load_file(path, err, sizeof(err));
    if (!back)
        fail_msg("load: %s", err);
    uint8_t *a, *b;
    size_t la, lb;
    encode_ok(m, &a, &la);
    encode_ok(back, &b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    /* overwrite in place works (rename over an existing file) */
    assert_int_equal(model_save_file(back, path, err, sizeof(err)), 0);

    /* a truncated file: the error names the file and the problem */
    FILE *f = fopen(path, "wb");
    fwrite(a, 1, la / 2, f);
    fclose(f);
    assert_null(model_load_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "truncated"));
    unlink(path);
    assert_null(model_load_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
    snprintf(tmpname, sizeof(tmpname), "%s/no/such/dir/model.bin", dir);
    assert_int_equal(model_save_file(m, tmpname, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot create"));
    rmdir(dir);
    free(a);
    free(b);
    model_destroy(m);
    model_destroy(back);
}

/* Balanced class weights come from the churn rate of complete ticks: none before the first
 * (the regression's bias follows the raw 5% rate), half the weight per class after it (the
 * bias moves to about 0 on the same featureless rows). */
static void test_balance_from_complete_ticks(void **state)
{
    (void)state;
    model_params_t mp;
    model_params_default(&mp);
    mp.lr.class_weight_balanced = 1;
    char err[128];
    model_t *m = model_new(DIM, 2, 1, &mp, err, sizeof(err));
    assert_non_null(m);
    enum { N = 4000 };
    static float x[N * DIM], y[N];
    static ex_summary_t s[N];
    static int64_t tick[N];
    rng_t r;
    rng_seed(&r, 3);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < DIM; j++)
            x[i * DIM + j] = (float)rng_normal(&r);
        y[i] = (float)(rng_uniform(&r) < 0.05);
        s[i] = (ex_summary_t){.rep = 1, .t_x = 1, .age = 10, .h = 90};
        tick[i] = 0;
    }
    for (int k = 0; k < 5; k++)
        assert_int_equal(model_train(m, x, y, N, NULL), 0);
    double before = lr_bias(model_logreg(m));
    assert_true(before < -1.5); /* log(0.05 / 0.95) = -2.9: no weighting yet */
    assert_int_equal(model_observe_labels(m, x, s, tick, y, N, NULL), 0);
    model_ticks_complete(m, 0);
    assert_true(fabs(ex_base_rate(model_experts(m)) - 0.05) < 0.02);
    for (int k = 0; k < 20; k++)
        assert_int_equal(model_train(m, x, y, N, NULL), 0);
    double after = lr_bias(model_logreg(m));
    assert_true(after > before + 1.0);
    model_set_class_balance(m, 0);
    model_destroy(m);
}

/* Learning on a team grades the rows concurrently; the model after it is the same, byte
 * for byte, as learning alone (frozen ticks included, so the frozen grades are exercised). */
static void test_learn_team_same(void **state)
{
    (void)state;
    enum { N = 6000 };
    static float x[N * DIM], y[N];
    static ex_summary_t s[N];
    static int64_t tick[N];
    make_data(N, 77, x, y);
    rng_t r;
    rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        s[i] = (ex_summary_t){.rep = (double)rng_below(&r, 9),
                              .t_x = (double)rng_below(&r, 60),
                              .age = 60 + (double)rng_below(&r, 90),
                              .h = 90};
        tick[i] = (int64_t)(i / 1000) * 86400000LL;
    }
    cs_pool_t *team = cs_pool_new(2);
    assert_non_null(team);
    uint8_t *bytes[2];
    size_t len[2];
    for (int k = 0; k < 2; k++) {
        char err[128];
        model_t *m = model_new(DIM, K, 3, NULL, err, sizeof(err));
        assert_non_null(m);
        for (int b = 0; b < N / 1000; b++) {
            assert_int_equal(model_tick_start(m, (int64_t)b * 86400000LL), 0);
            assert_int_equal(model_learn(m, x + (size_t)b * 1000 * DIM, s + b * 1000,
                                         tick + b * 1000, y + b * 1000, 1000, k ? team : NULL),
                             0);
            model_ticks_complete(m, (int64_t)(b - 1) * 86400000LL);
        }
        encode_ok(m, &bytes[k], &len[k]);
        model_destroy(m);
    }
    assert_int_equal(len[0], len[1]);
    assert_memory_equal(bytes[0], bytes[1], len[0]);
    free(bytes[0]);
    free(bytes[1]);
    cs_pool_destroy(team);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The shapes section of m (the snapshot's tail before the checksum, format 6): its length. */
static size_t shapes_bytes(const model_t *m)
{
    mw_buf_t b = {0};
    ex_encode_shapes(model_experts(m), &b);
    size_t n = b.len;
    free(b.data);
    return n;
}

/* Formats 4 (no calendar of open days, no shapes) and 5 (no shapes) still load: the same
 * snapshot written without those bytes, under the old format number, decodes to a model with
 * an empty calendar (4) and shapes with no history, which re-encodes as format 6 with the
 * same bytes up to the shapes section. */
static void test_loads_formats_4_and_5(void **state)
{
    (void)state;
    model_t *m = trained_model(4, 1500, batches, 6);
    uint8_t *a, *b;
    size_t alen, blen;
    encode_ok(m, &a, &alen); /* empty calendar: its section is one u32 0 */
    size_t shapes = shapes_bytes(m);
    assert_int_equal(ex_mark_day(model_experts(m), 15000), 0);
    encode_ok(m, &b, &blen);
    assert_int_equal(blen, alen + 10); /* base and one day */
    size_t at = 16;                    /* after magic, format and total length */
    while (at < alen && a[at] == b[at])
        at++;
    assert_true(at + 4 <= alen - 4 - shapes);
    assert_true(a[at] == 0 && a[at + 1] == 0 && a[at + 2] == 0 && a[at + 3] == 0);
    for (int format = 4; format <= 5; format++) {
        size_t cut = format == 4 ? 4 : 0; /* the empty calendar's u32 */
        size_t len = alen - shapes - cut;
        uint8_t *v = malloc(len);
        memcpy(v, a, at);
        memcpy(v + at, a + at + cut, alen - shapes - 4 - at - cut); /* up to the shapes */
        put_le(v + 4, (uint64_t)format, 4);
        put_le(v + 8, len, 8);
        resign(v, len);
        char err[256] = "";
        model_t *old = model_decode(v, len, err, sizeof(err));
        if (!old)
            fail_msg("format %d refused: %s", format, err);
        assert_int_equal(ex_open_days(model_experts(old))->ndays, 0);
        assert_int_equal(ex_shape(model_experts(old)), 0);
        uint8_t *c;
        size_t clen;
        encode_ok(old, &c, &clen);
        assert_int_equal(clen, alen);
        assert_memory_equal(c + 16, a + 16, alen - shapes - 4 - 16);
        free(c);
        free(v);
        model_destroy(old);
    }
    free(a);
    free(b);
    model_destroy(m);
}

/* model_explain: the regression's parts w_i z_i times its pool weight (the calibration is the
 * identity before a tick completes), plus the BTYD and recency experts' parts on days since
 * activity, lifetime active days and tenure, against the typical user of the standardizer. */
static void test_explain_blend(void **state)
{
    (void)state;
    char err[256];
    model_t *m = model_new(FEAT_DIM, 2, 3, NULL, err, sizeof(err));
    assert_non_null(m);
    enum { N = 300 };
    float *x = calloc((size_t)N * FEAT_DIM, sizeof(float)), y[N];
    rng_t r;
    rng_seed(&r, 17);
    for (int i = 0; i < N; i++) {
        float *xi = x + (size_t)i * FEAT_DIM;
        for (int j = 0; j < FEAT_DIM; j++)
            xi[j] = (float)(1 + rng_uniform(&r));
        xi[FEAT_DAYS_SINCE_ACTIVITY] = (float)log1p(1 + 60 * rng_uniform(&r));
        xi[FEAT_ACTIVE_DAYS_LIFETIME] = (float)log1p(1 + rng_below(&r, 12));
        xi[FEAT_TENURE_DAYS] = (float)log1p(100 + 200 * rng_uniform(&r));
        y[i] = rng_uniform(&r) < 0.3 ? 1.0f : 0.0f;
    }
    assert_int_equal(model_train(m, x, y, N, NULL), 0);
    float z[FEAT_DIM], p, out[FEAT_DIM], lr_c[FEAT_DIM];
    const ex_summary_t quiet = {.rep = 3, .t_x = 100, .age = 300, .h = 90};
    const ex_summary_t busy = {.rep = 40, .t_x = 299, .age = 300, .h = 90};
    model_score(m, x, NULL, 1, z, &p, NULL, NULL);
    lr_contributions(model_logreg(m), z, lr_c);

    ex_set_mode(model_experts(m), EX_MODE_LOGREG);
    model_explain(m, z, &quiet, out);
    for (int j = 0; j < FEAT_DIM; j++)
        assert_true(out[j] == lr_c[j]);

    ex_set_mode(model_experts(m), EX_MODE_BGNBD);
    model_explain(m, z, &quiet, out);
    for (int j = 0; j < FEAT_DIM; j++)
        if (j != FEAT_DAYS_SINCE_ACTIVITY && j != FEAT_ACTIVE_DAYS_LIFETIME &&
            j != FEAT_TENURE_DAYS)
            assert_true(out[j] == 0);
    assert_true(out[FEAT_DAYS_SINCE_ACTIVITY] > 0.5f); /* 200 quiet days: churn-ward */
    model_explain(m, z, &busy, out);
    assert_true(out[FEAT_DAYS_SINCE_ACTIVITY] < 0);  /* active yesterday */
    assert_true(out[FEAT_ACTIVE_DAYS_LIFETIME] < 0); /* 41 active days */
    /* no summary: the regression's parts only (here none: its pool weight is 0) */
    model_explain(m, z, NULL, out);
    for (int j = 0; j < FEAT_DIM; j++)
        assert_true(out[j] == 0);
    free(x);
    model_destroy(m);
}

int main(void)
{
    openblas_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_explain_blend),
        cmocka_unit_test(test_pipeline_learns),
        cmocka_unit_test(test_new_rejects_bad_params),
        cmocka_unit_test(test_deterministic_bytes),
        cmocka_unit_test(test_roundtrip_identical),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_loads_formats_4_and_5),
        cmocka_unit_test(test_save_and_load_file),
        cmocka_unit_test(test_balance_from_complete_ticks),
        cmocka_unit_test(test_learn_team_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
