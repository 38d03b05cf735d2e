/* Model snapshot (model.h): owns the four parts, runs the train/score pipeline over them and
 * frames their sections into one checksummed, versioned byte string. */
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "model_wire.h"
#include "outfile.h"

#define MODEL_HEADER_BYTES 48 /* magic .. examples_seen */
#define MODEL_MAX_BYTES    ((uint64_t)1 << 32)

struct model_s {
    int dim;
    int k;
    uint64_t seed;
    uint64_t version;
    uint64_t examples_seen;
    sc_t *sc;
    km_t *km;
    lr_t *lr;
    pm_t *pm;
    cal_t *cal;
    ex_t *ex;
    /* Balanced class weights for the regression, from the churn rate of complete ticks
     * (ex_base_rate), not from the running label counts: those lack the positives of the
     * last H (they arrive at T + H), so early on they weighed the few positives by the
     * thousand and AdaGrad's accumulators never recovered (completejourney2, daily ticks:
     * the regression's second-half AUC 0.54; 0.87 with complete-tick weights). Set by
     * model_new from params and by model_set_class_balance; not in the snapshot. */
    int balanced;
    /* Segment names (model_segment_name) of segment version names_version; k entries. */
    uint64_t names_version;
    struct seg_name_s {
        uint8_t valid, arch;
        char label[MODEL_SEG_NAME_MAX];
    } * names;
};

void model_params_default(model_params_t *p)
{
    p->scaler_half_life = 0;
    p->kmeans_half_life = 100000;
    p->reassign_ratio = 0.01;
    lr_params_default(&p->lr);
    p->metrics_bins_log2 = 14;
    p->calibration_half_life_ms = 28LL * 86400000;
    p->horizon_days = 90;
}

model_t *model_new(int dim, int k, uint64_t seed, const model_params_t *params, char *errstr,
                   size_t errstr_size)
{
    model_params_t def;
    if (!params) {
        model_params_default(&def);
        params = &def;
    }
    model_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(errstr, errstr_size, "model: out of memory");
        return NULL;
    }
    m->dim = dim;
    m->k = k;
    m->seed = seed;
    if (!(m->sc = sc_new(dim, params->scaler_half_life))) {
        snprintf(errstr, errstr_size, "model: bad scaler parameters (dim %d, half-life %g)", dim,
                 params->scaler_half_life);
        goto fail;
    }
    if (!(m->km = km_new(k, dim, seed, params->kmeans_half_life, params->reassign_ratio))) {
        snprintf(errstr, errstr_size,
                 "model: bad k-means parameters (k %d in 1..4096, half-life %g >= 0, "
                 "reassign ratio %g in [0, 1))",
                 k, params->kmeans_half_life, params->reassign_ratio);
        goto fail;
    }
    lr_params_t lp = params->lr;
    m->balanced = lp.class_weight_balanced;
    lp.class_weight_balanced = 0; /* the model weighs the classes (model_train) */
    if (!(m->lr = lr_new(dim, &lp))) {
        snprintf(errstr, errstr_size,
                 "model: bad logistic regression parameters (learning rate %g > 0, l2 %g >= 0, "
                 "minibatch %d >= 1)",
                 params->lr.learning_rate, params->lr.l2, params->lr.minibatch_rows);
        goto fail;
    }
    if (!(m->pm = pm_new(params->metrics_bins_log2))) {
        snprintf(errstr, errstr_size, "model: bad metrics bins 2^%d (want 4..20)",
                 params->metrics_bins_log2);
        goto fail;
    }
    if (!(m->cal = cal_new(params->calibration_half_life_ms))) {
        snprintf(errstr, errstr_size, "model: bad calibration half-life %lld ms (want > 0)",
                 (long long)params->calibration_half_life_ms);
        goto fail;
    }
    if (!(m->names = calloc((size_t)k, sizeof(*m->names)))) {
        snprintf(errstr, errstr_size, "model: out of memory");
        goto fail;
    }
    if (!(m->ex = ex_new(params->horizon_days))) {
        snprintf(errstr, errstr_size, "model: bad label horizon %g days (want > 0)",
                 params->horizon_days);
        goto fail;
    }
    return m;
fail:
    model_destroy(m);
    return NULL;
}

void model_destroy(model_t *m)
{
    if (!m)
        return;
    sc_destroy(m->sc);
    km_destroy(m->km);
    lr_destroy(m->lr);
    pm_destroy(m->pm);
    cal_destroy(m->cal);
    ex_destroy(m->ex);
    free(m->names);
    free(m);
}

sc_t *model_scaler(const model_t *m)
{
    return m->sc;
}

km_t *model_kmeans(const model_t *m)
{
    return m->km;
}

lr_t *model_logreg(const model_t *m)
{
    return m->lr;
}

pm_t *model_metrics(const model_t *m)
{
    return m->pm;
}

int model_dim(const model_t *m)
{
    return m->dim;
}

int model_k(const model_t *m)
{
    return m->k;
}

uint64_t model_seed(const model_t *m)
{
    return m->seed;
}

uint64_t model_version(const model_t *m)
{
    return m->version;
}

uint64_t model_examples_seen(const model_t *m)
{
    return m->examples_seen;
}

void model_touch(model_t *m, uint64_t n)
{
    m->version++;
    m->examples_seen += n;
}

/* The calibrated regression's probability of a raw logit, clamped: a probability of
 * exactly 0 or 1 would make log-loss infinite and claims a certainty no churn model has. */
static double lr_prob(const model_t *m, double raw_logit)
{
    double q = cal_apply(m->cal, raw_logit);
    return q < 1e-6 ? 1e-6 : q > 1 - 1e-6 ? 1 - 1e-6 : q;
}

void model_score(const model_t *m, const float *x, const ex_summary_t *s, size_t n, float *z,
                 float *p, int *seg, ex_scores_t *experts)
{
    sc_transform(m->sc, x, z, n);
    lr_logit(m->lr, z, n, p);
    for (size_t i = 0; i < n; i++) {
        double q = lr_prob(m, (double)p[i]);
        if (s) {
            ex_scores_t sc;
            ex_score(m->ex, &s[i], q, &sc);
            q = sc.blend < 1e-6 ? 1e-6 : sc.blend > 1 - 1e-6 ? 1 - 1e-6 : sc.blend;
            if (experts)
                experts[i] = sc;
        }
        p[i] = (float)q;
    }
    if (seg && km_assign(m->km, z, n, seg, NULL) < 0)
        for (size_t i = 0; i < n; i++)
            seg[i] = -1;
}

int model_observe_labels(model_t *m, const float *x, const ex_summary_t *s, const int64_t *tick_ms,
                         const float *y, size_t n)
{
    float z[256], logit[1];
    if (m->dim > 256)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * (size_t)m->dim;
        sc_transform(m->sc, xi, z, 1);
        lr_logit(m->lr, z, 1, logit);
        int yi = y[i] >= 0.5f;
        /* The calibration maps the current regression's logits, so it learns from them
         * (label time), not from the frozen ones: tried, the frozen logits of a young
         * regression taught the map a flat or inverted slope (completejourney2's second-half
         * AUC of the regression fell from 0.877 to 0.672). */
        if (cal_add(m->cal, tick_ms[i], (double)logit[0], yi) != 0)
            return -1;
        ex_scores_t now;
        if (!ex_frozen_covers(m->ex, tick_ms[i]))
            ex_score(m->ex, &s[i], lr_prob(m, (double)logit[0]), &now);
        if (ex_observe(m->ex, tick_ms[i], xi, &s[i], yi, &now) != 0)
            return -1;
    }
    return 0;
}

void model_ticks_complete(model_t *m, int64_t through_ms)
{
    if (cal_complete_through(m->cal, through_ms) > 0)
        m->version++;
    if (ex_complete_through(m->ex, through_ms) > 0)
        m->version++;
}

int model_segment_name(const model_t *m, int seg, int *arch, char *label, size_t cap)
{
    if (seg < 0 || seg >= m->k || m->names_version != km_segment_version(m->km) ||
        !m->names[seg].valid)
        return 0;
    *arch = m->names[seg].arch;
    snprintf(label, cap, "%s", m->names[seg].label);
    return 1;
}

int model_set_segment_name(model_t *m, int seg, int arch, const char *label)
{
    if (seg < 0 || seg >= m->k || arch < 0 || arch > 255)
        return -1;
    uint64_t v = km_segment_version(m->km);
    if (m->names_version != v) {
        memset(m->names, 0, (size_t)m->k * sizeof(*m->names));
        m->names_version = v;
    }
    m->names[seg].valid = 1;
    m->names[seg].arch = (uint8_t)arch;
    snprintf(m->names[seg].label, sizeof(m->names[seg].label), "%s", label);
    m->version++;
    return 0;
}

void model_explain(const model_t *m, const float *z, float *out)
{
    lr_contributions(m->lr, z, out);
}

int model_segment_label(const model_t *m, int seg, const char *const *names, char *buf, size_t cap)
{
    return seg < 0 ? -1 : km_label(m->km, seg, names, buf, cap);
}

int model_segment_centre(const model_t *m, int seg, double *out)
{
    if (seg < 0 || seg >= km_k(m->km) || !km_is_seeded(m->km))
        return -1;
    memcpy(out, km_centre(m->km, seg), (size_t)m->dim * sizeof *out);
    return 0;
}

uint64_t model_segment_version(const model_t *m)
{
    return km_segment_version(m->km);
}

int model_tick_start(model_t *m, int64_t tick_ms)
{
    /* The regression folded with the standardizer: w . (x - mean) / sd + b
     * = sum (w_i / sd_i) x_i + (b - sum w_i mean_i / sd_i), as sc_transform computes z. */
    double coef[257];
    if (m->dim > 256)
        return -1;
    double bias = lr_bias(m->lr);
    for (int i = 0; i < m->dim; i++) {
        double w = lr_weight(m->lr, i);
        if (sc_weight(m->sc) <= 0) {
            coef[i] = w;
            continue;
        }
        double sd = sc_sd(m->sc, i);
        coef[i] = w / (sd > SC_SD_FLOOR ? sd : SC_SD_FLOOR);
        bias -= coef[i] * sc_mean(m->sc, i);
    }
    coef[m->dim] = bias;
    double a, b, weight;
    cal_params(m->cal, &a, &b, &weight);
    m->version++;
    return ex_tick_start(m->ex, tick_ms, coef, m->dim, a, b);
}

int model_refit_bgnbd(model_t *m, const bgnbd_table_t *table, int64_t tick_ms)
{
    m->version++;
    return ex_refit(m->ex, table, tick_ms);
}

ex_t *model_experts(const model_t *m)
{
    return m->ex;
}

void model_set_class_balance(model_t *m, int balanced)
{
    m->balanced = balanced != 0;
}

int model_train(model_t *m, const float *x, const float *y, size_t n, const float *sample_weight)
{
    if (n == 0)
        return 0;
    float *z = malloc(n * (size_t)m->dim * sizeof(float));
    float *w = NULL;
    double pi = ex_base_rate(m->ex);
    if (!z)
        return -1;
    if (m->balanced && pi > 0 && pi < 1) {
        /* Each class carries half the weight at the complete ticks' churn rate pi. */
        if (!(w = malloc(n * sizeof(float)))) {
            free(z);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            w[i] = (float)((y[i] >= 0.5f ? 0.5 / pi : 0.5 / (1 - pi)) *
                           (sample_weight ? (double)sample_weight[i] : 1.0));
        sample_weight = w;
    }
    sc_update(m->sc, x, n);
    sc_transform(m->sc, x, z, n);
    int rc = km_partial_fit(m->km, z, n);
    if (rc == 0)
        rc = lr_update(m->lr, z, y, n, sample_weight);
    free(z);
    free(w);
    model_touch(m, n);
    return rc;
}

/* Section layout: u64 names_version, then per segment u8 valid and, when valid, u8 arch,
 * u16 label length, the label's bytes (no NUL). */
static void names_encode(const model_t *m, mw_buf_t *b)
{
    mw_put_u64(b, m->names_version);
    for (int i = 0; i < m->k; i++) {
        mw_put_u8(b, m->names[i].valid);
        if (!m->names[i].valid)
            continue;
        size_t n = strlen(m->names[i].label);
        mw_put_u8(b, m->names[i].arch);
        uint8_t len[2] = {(uint8_t)n, (uint8_t)(n >> 8)};
        mw_put_bytes(b, len, 2);
        mw_put_bytes(b, m->names[i].label, n);
    }
}

static int names_decode(model_t *m, mw_reader_t *r)
{
    if (m->k != km_k(m->km)) /* the header's k is checked against k-means below, too */
        return -1;
    if (!(m->names = calloc((size_t)(m->k > 0 ? m->k : 1), sizeof(*m->names))))
        return -1;
    m->names_version = mw_get_u64(r);
    for (int i = 0; i < m->k && !r->failed; i++) {
        uint8_t valid = mw_get_u8(r);
        if (valid > 1)
            return -1;
        if (!valid)
            continue;
        m->names[i].valid = 1;
        m->names[i].arch = mw_get_u8(r);
        size_t n = (size_t)mw_get_u8(r);
        n |= (size_t)mw_get_u8(r) << 8;
        if (r->failed || n >= MODEL_SEG_NAME_MAX || n > r->len - r->off)
            return -1;
        memcpy(m->names[i].label, r->p + r->off, n);
        r->off += n;
        if (memchr(m->names[i].label, 0, n))
            return -1; /* the label has no NUL inside */
    }
    return r->failed ? -1 : 0;
}

int model_encode(const model_t *m, uint8_t **buf, size_t *len)
{
    mw_buf_t b = {0};
    mw_put_bytes(&b, MODEL_MAGIC, 4);
    mw_put_u32(&b, MODEL_FORMAT_VERSION);
    mw_put_u64(&b, 0); /* total length, patched below */
    mw_put_u32(&b, (uint32_t)m->dim);
    mw_put_u32(&b, (uint32_t)m->k);
    mw_put_u64(&b, m->seed);
    mw_put_u64(&b, m->version);
    mw_put_u64(&b, m->examples_seen);
    sc_encode(m->sc, &b);
    km_encode(m->km, &b);
    lr_encode(m->lr, &b);
    pm_encode(m->pm, &b);
    cal_encode(m->cal, &b);
    ex_encode(m->ex, &b);
    names_encode(m, &b);
    if (mw_reserve(&b, 4) < 0) {
        free(b.data);
        return -1;
    }
    uint64_t total = b.len + 4;
    for (int i = 0; i < 8; i++)
        b.data[8 + i] = (uint8_t)(total >> (8 * i));
    uint32_t crc = (uint32_t)crc32_z(0L, b.data, b.len);
    mw_put_u32(&b, crc);
    *buf = b.data;
    *len = b.len;
    return 0;
}

model_t *model_decode(const uint8_t *buf, size_t len, char *errstr, size_t errstr_size)
{
    char part_err[200] = "";
    if (len < 8) {
        snprintf(errstr, errstr_size, "model: truncated: %zu bytes, a snapshot starts with 8", len);
        return NULL;
    }
    if (memcmp(buf, MODEL_MAGIC, 4) != 0) {
        snprintf(errstr, errstr_size, "model: not a churnstream model (bad magic bytes)");
        return NULL;
    }
    mw_reader_t r = {.p = buf, .len = len, .off = 4};
    uint32_t format = mw_get_u32(&r);
    if (format != MODEL_FORMAT_VERSION) {
        snprintf(errstr, errstr_size,
                 "model: unsupported snapshot format version %u (this build reads %d); "
                 "retrain or convert the model",
                 format, MODEL_FORMAT_VERSION);
        return NULL;
    }
    if (len < MODEL_HEADER_BYTES + 4) {
        snprintf(errstr, errstr_size, "model: truncated: %zu bytes, the header alone is %d", len,
                 MODEL_HEADER_BYTES + 4);
        return NULL;
    }
    uint64_t total = mw_get_u64(&r);
    if (total > len) {
        snprintf(errstr, errstr_size, "model: truncated: %zu of %llu bytes", len,
                 (unsigned long long)total);
        return NULL;
    }
    if (total < len) {
        snprintf(errstr, errstr_size, "model: %zu trailing bytes after a %llu-byte snapshot",
                 len - (size_t)total, (unsigned long long)total);
        return NULL;
    }
    uint32_t stored_crc = (uint32_t)buf[len - 4] | (uint32_t)buf[len - 3] << 8 |
                          (uint32_t)buf[len - 2] << 16 | (uint32_t)buf[len - 1] << 24;
    if ((uint32_t)crc32_z(0L, buf, len - 4) != stored_crc) {
        snprintf(errstr, errstr_size, "model: checksum mismatch (corrupted snapshot)");
        return NULL;
    }
    r.len = len - 4; /* sections must end exactly at the checksum */
    model_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(errstr, errstr_size, "model: out of memory");
        return NULL;
    }
    uint32_t dim = mw_get_u32(&r), k = mw_get_u32(&r);
    m->dim = (int)(dim & 0x7fffffff);
    m->k = (int)(k & 0x7fffffff);
    m->seed = mw_get_u64(&r);
    m->version = mw_get_u64(&r);
    m->examples_seen = mw_get_u64(&r);
    const char *part = NULL;
    if (!(m->sc = sc_decode(&r, part_err, sizeof(part_err))))
        part = "scaler";
    else if (!(m->km = km_decode(&r, part_err, sizeof(part_err))))
        part = "kmeans";
    else if (!(m->lr = lr_decode(&r, part_err, sizeof(part_err))))
        part = "logreg";
    else if (!(m->pm = pm_decode(&r, part_err, sizeof(part_err))))
        part = "metrics";
    else if (!(m->cal = cal_decode(&r, part_err, sizeof(part_err))))
        part = "calibration";
    else if (!(m->ex = ex_decode(&r, part_err, sizeof(part_err))))
        part = "experts";
    else if (names_decode(m, &r) != 0) {
        snprintf(part_err, sizeof(part_err), "corrupt or truncated");
        part = "segment names";
    }
    if (part) {
        snprintf(errstr, errstr_size, "model: bad %s section: %s", part, part_err);
        goto fail;
    }
    if (sc_dim(m->sc) != m->dim || km_dim(m->km) != m->dim || km_k(m->km) != m->k ||
        lr_dim(m->lr) != m->dim || (uint32_t)m->dim != dim || (uint32_t)m->k != k) {
        snprintf(errstr, errstr_size,
                 "model: section shapes disagree with the header (dim %u, k %u)", dim, k);
        goto fail;
    }
    if (r.off != r.len) {
        snprintf(errstr, errstr_size, "model: %zu unparsed bytes before the checksum",
                 r.len - r.off);
        goto fail;
    }
    return m;
fail:
    model_destroy(m);
    return NULL;
}

int model_save_file(const model_t *m, const char *path, char *errstr, size_t errstr_size)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (model_encode(m, &buf, &len) < 0) {
        snprintf(errstr, errstr_size, "%s: out of memory encoding the model", path);
        return -1;
    }
    /* of_open: atomic replace of a regular file, write-through for a device or FIFO. */
    int rc = -1;
    of_t *of = of_open(path, errstr, errstr_size);
    if (!of)
        goto out;
    if (fwrite(buf, 1, len, of_file(of)) != len) {
        snprintf(errstr, errstr_size, "%s: write failed: %s", path, strerror(errno));
        of_abort(of);
        goto out;
    }
    if (of_commit(of, errstr, errstr_size) != 0)
        goto out;
    rc = 0;
out:
    free(buf);
    return rc;
}

model_t *model_load_file(const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > MODEL_MAX_BYTES) {
                snprintf(errstr, errstr_size, "%s: larger than %llu bytes, not a model", path,
                         (unsigned long long)MODEL_MAX_BYTES);
                goto fail;
            }
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                snprintf(errstr, errstr_size, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(errstr, errstr_size, "%s: read failed: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    f = NULL;
    char inner[256];
    model_t *m = model_decode(buf, len, inner, sizeof(inner));
    if (!m)
        snprintf(errstr, errstr_size, "%s: %s", path, inner);
    free(buf);
    return m;
fail:
    if (f)
        fclose(f);
    free(buf);
    return NULL;
}
