/* Mini-batch k-means (kmeans.h). Centres are kept in double (the master copy: repeated
 * 1/count updates would drift in float) with a float mirror and its squared norms for the
 * sgemm distance kernel. Batches are processed in chunks of KM_CHUNK rows so the B x k
 * distance matrix stays small whatever the caller's batch size. */
#include "kmeans.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_wire.h"
#include "rng.h"

#define KM_CHUNK       1024
#define KM_DIRECT_ROWS 4 /* batches up to this size skip the BLAS kernel */
#define KM_MAX_K       4096
#define KM_MAX_DIM     65536
#define KM_LABEL_MIN   0.5 /* |z| below this is not worth naming */

struct km_s {
    int k;
    int dim;
    uint64_t seed;
    double half_life;      /* events; 0 = no forgetting */
    double reassign_ratio; /* 0 = never reassign */
    int seeded;
    uint64_t segment_version;
    uint64_t since_reassign; /* events since the last reassignment check */
    rng_t rng;
    double *centre;  /* [k*dim] master copy */
    double *count;   /* [k] decayed weights */
    float *centre_f; /* [k*dim] mirror of centre for BLAS */
    float *norm_f;   /* [k] |centre_f|^2 */
    /* centre_f transposed in blocks of KM_LANES centres: block b holds coordinate t of
     * centres b*KM_LANES.. at [(b*dim + t)*KM_LANES], zero past k; assign_direct's layout */
    float *centre_t;
};

/* assign_direct's vectors: KM_LANES floats (GCC and clang vector extension; the compiler
 * lowers it to what the target has, e.g. two SSE registers on baseline x86-64). */
#define KM_LANES 8
typedef float km_vec_t __attribute__((vector_size(KM_LANES * sizeof(float))));

static size_t km_blocks(int k)
{
    return ((size_t)k + KM_LANES - 1) / KM_LANES;
}

km_t *km_new(int k, int dim, uint64_t seed, double half_life_events, double reassign_ratio)
{
    if (k < 1 || k > KM_MAX_K || dim < 1 || dim > KM_MAX_DIM || !(half_life_events >= 0) ||
        !isfinite(half_life_events) || !(reassign_ratio >= 0) || !(reassign_ratio < 1))
        return NULL;
    km_t *km = calloc(1, sizeof(*km));
    if (!km)
        return NULL;
    km->k = k;
    km->dim = dim;
    km->seed = seed;
    km->half_life = half_life_events;
    km->reassign_ratio = reassign_ratio;
    rng_seed(&km->rng, seed);
    size_t kd = (size_t)k * (size_t)dim;
    km->centre = calloc(kd, sizeof(double));
    km->count = calloc((size_t)k, sizeof(double));
    km->centre_f = calloc(kd, sizeof(float));
    km->norm_f = calloc((size_t)k, sizeof(float));
    km->centre_t = calloc(km_blocks(k) * (size_t)dim * KM_LANES, sizeof(float));
    if (!km->centre || !km->count || !km->centre_f || !km->norm_f || !km->centre_t) {
        km_destroy(km);
        return NULL;
    }
    return km;
}

void km_destroy(km_t *km)
{
    if (!km)
        return;
    free(km->centre);
    free(km->count);
    free(km->centre_f);
    free(km->norm_f);
    free(km->centre_t);
    free(km);
}

static void refresh_mirror(km_t *km)
{
    for (int j = 0; j < km->k; j++) {
        const double *c = km->centre + (size_t)j * km->dim;
        float *cf = km->centre_f + (size_t)j * km->dim;
        float nrm = 0;
        for (int i = 0; i < km->dim; i++) {
            cf[i] = (float)c[i];
            nrm += cf[i] * cf[i];
            km->centre_t[((size_t)(j / KM_LANES) * km->dim + i) * KM_LANES + j % KM_LANES] = cf[i];
        }
        km->norm_f[j] = nrm;
    }
}

static double sqdist_row(const float *x, const float *y, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++) {
        double d = (double)x[i] - (double)y[i];
        s += d * d;
    }
    return s;
}

/* Index i with cumulative weight first exceeding u * total; rounding can leave u*total at
 * the very end, so the last positive-weight row is the fallback. */
static size_t sample_by_weight(const double *w, size_t n, double total, rng_t *rng)
{
    if (!(total > 0))
        return (size_t)rng_below(rng, n);
    double target = rng_uniform(rng) * total, acc = 0;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] <= 0)
            continue;
        acc += w[i];
        last = i;
        if (acc > target)
            return i;
    }
    return last;
}

/* Greedy k-means++ (Arthur & Vassilvitskii 2007, with sklearn's 2 + ln k local trials): each
 * new centre is the best of a few D^2-sampled candidates by the potential it leaves. */
static int seed_kmeanspp(km_t *km, const float *z, size_t n)
{
    const int dim = km->dim;
    double *closest = malloc(n * sizeof(double));
    double *trial = malloc(n * sizeof(double));
    if (!closest || !trial) {
        free(closest);
        free(trial);
        return -1;
    }
    int n_trials = 2 + (int)log((double)km->k);
    size_t first = (size_t)rng_below(&km->rng, n);
    double pot = 0;
    for (size_t i = 0; i < n; i++) {
        closest[i] = sqdist_row(z + i * dim, z + first * dim, dim);
        pot += closest[i];
    }
    for (int i = 0; i < dim; i++)
        km->centre[i] = z[first * dim + i];
    for (int c = 1; c < km->k; c++) {
        size_t best = 0;
        double best_pot = INFINITY;
        for (int t = 0; t < n_trials; t++) {
            size_t cand = sample_by_weight(closest, n, pot, &km->rng);
            double p = 0;
            for (size_t i = 0; i < n; i++) {
                double d = sqdist_row(z + i * dim, z + cand * dim, dim);
                p += d < closest[i] ? d : closest[i];
            }
            if (p < best_pot) {
                best_pot = p;
                best = cand;
            }
        }
        pot = 0;
        for (size_t i = 0; i < n; i++) {
            trial[i] = sqdist_row(z + i * dim, z + best * dim, dim);
            if (trial[i] < closest[i])
                closest[i] = trial[i];
            pot += closest[i];
        }
        for (int i = 0; i < dim; i++)
            km->centre[(size_t)c * dim + i] = z[best * dim + i];
    }
    free(closest);
    free(trial);
    return 0;
}

/* Each of m rows' nearest centre from d[m*k] = -2 x.c_j: |x|^2 + d_ij + |c_j|^2, the
 * smallest j; dist2[i] (if not NULL) that squared distance. */
static void nearest(const km_t *km, const float *z, size_t m, const float *d, int *seg,
                    float *dist2)
{
    const int k = km->k, dim = km->dim;
    for (size_t i = 0; i < m; i++) {
        const float *x = z + i * dim;
        float xx = 0;
        for (int t = 0; t < dim; t++)
            xx += x[t] * x[t];
        const float *row = d + i * k;
        int best = 0;
        float best_d = INFINITY;
        for (int j = 0; j < k; j++) {
            float v = xx + row[j] + km->norm_f[j];
            if (v < best_d) {
                best_d = v;
                best = j;
            }
        }
        seg[i] = best;
        if (dist2) /* cancellation can leave a tiny negative for a point on its centre */
            dist2[i] = best_d > 0 ? best_d : 0;
    }
}

/* The BLAS kernel on one chunk of m <= KM_CHUNK rows; d is scratch of m*k floats. */
static void assign_chunk(const km_t *km, const float *z, size_t m, float *d, int *seg, float *dist2)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, km->k, km->dim, -2.0f, z, km->dim,
                km->centre_f, km->dim, 0.0f, d, km->k);
    nearest(km, z, m, d, seg, dist2);
}

/* The same with plain dot products, row by row, for a few rows (a snapshot is scored
 * alone): a BLAS call, its scratch buffer and its threads cost more than the 8 x 22
 * multiply-adds. Every centre's dot product is summed in coordinate order, one centre per
 * vector lane (centre_t: a multiply, then an add, each rounded to float), so the sums are
 * those of a plain loop per centre, bit for bit. They round differently from the BLAS
 * kernel's, so a row whose two nearest centres are equidistant within float rounding may go
 * to the other one. */
static void assign_direct(const km_t *km, const float *z, size_t m, int *seg, float *dist2)
{
    const int k = km->k, dim = km->dim;
    float d[KM_MAX_K + KM_LANES];
    for (size_t i = 0; i < m; i++) {
        const float *x = z + i * dim;
        for (size_t b = 0; b < km_blocks(k); b++) {
            const float *ct = km->centre_t + b * (size_t)dim * KM_LANES;
            km_vec_t acc = {0};
            for (int t = 0; t < dim; t++) {
                km_vec_t c;
                memcpy(&c, ct + (size_t)t * KM_LANES, sizeof c);
                acc += x[t] * c;
            }
            acc *= -2.0f;
            memcpy(d + b * KM_LANES, &acc, sizeof acc);
        }
        nearest(km, x, 1, d, seg + i, dist2 ? dist2 + i : NULL);
    }
}

int km_assign(const km_t *km, const float *z, size_t n, int *seg, float *dist2)
{
    if (!km->seeded) {
        for (size_t i = 0; i < n; i++)
            seg[i] = -1;
        return -1;
    }
    if (n <= KM_DIRECT_ROWS) {
        assign_direct(km, z, n, seg, dist2);
        return 0;
    }
    size_t chunk = n < KM_CHUNK ? n : KM_CHUNK;
    float *d = malloc((chunk ? chunk : 1) * (size_t)km->k * sizeof(float));
    if (!d)
        return -1;
    for (size_t off = 0; off < n; off += KM_CHUNK) {
        size_t m = n - off < KM_CHUNK ? n - off : KM_CHUNK;
        assign_chunk(km, z + off * km->dim, m, d, seg + off, dist2 ? dist2 + off : NULL);
    }
    free(d);
    return 0;
}

int km_assign_scalar(const km_t *km, const float *z, size_t n, int *seg, float *dist2)
{
    if (!km->seeded) {
        for (size_t i = 0; i < n; i++)
            seg[i] = -1;
        return -1;
    }
    const int dim = km->dim;
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        double best_d = INFINITY;
        for (int j = 0; j < km->k; j++) {
            double s = sqdist_row(z + i * dim, km->centre_f + (size_t)j * dim, dim);
            if (s < best_d) {
                best_d = s;
                best = j;
            }
        }
        seg[i] = best;
        if (dist2)
            dist2[i] = (float)best_d;
    }
    return 0;
}

double km_inertia(const km_t *km, const float *z, size_t n)
{
    int *seg = malloc((n ? n : 1) * sizeof(int));
    float *d = malloc((n ? n : 1) * sizeof(float));
    double total = NAN;
    if (seg && d && km_assign(km, z, n, seg, d) == 0) {
        total = 0;
        for (size_t i = 0; i < n; i++)
            total += d[i];
    }
    free(seg);
    free(d);
    return total;
}

/* sklearn's rule: starved centres (count < ratio * max) move onto distinct random batch
 * points and inherit the smallest surviving count, so they are not starved again at once;
 * at most half the batch is used. Returns 1 if any centre moved. */
static int reassign_starved(km_t *km, const float *z, size_t n, size_t *picked)
{
    const int k = km->k, dim = km->dim;
    double max_count = 0;
    for (int j = 0; j < k; j++)
        if (km->count[j] > max_count)
            max_count = km->count[j];
    double limit = km->reassign_ratio * max_count;
    double min_kept = INFINITY;
    size_t n_starved = 0;
    for (int j = 0; j < k; j++) {
        if (km->count[j] < limit)
            n_starved++;
        else if (km->count[j] < min_kept)
            min_kept = km->count[j];
    }
    if (n_starved == 0)
        return 0;
    size_t budget = n / 2;
    size_t moved = 0;
    /* Most starved first, so the budget goes where it matters; ties by index. */
    while (moved < budget) {
        int worst = -1;
        for (int j = 0; j < k; j++)
            if (km->count[j] < limit && (worst < 0 || km->count[j] < km->count[worst]))
                worst = j;
        if (worst < 0)
            break;
        size_t idx;
        for (;;) { /* distinct points; budget <= n/2 keeps the expected draws below 2 */
            idx = (size_t)rng_below(&km->rng, n);
            size_t t = 0;
            while (t < moved && picked[t] != idx)
                t++;
            if (t == moved)
                break;
        }
        picked[moved++] = idx;
        for (int i = 0; i < dim; i++)
            km->centre[(size_t)worst * dim + i] = z[idx * dim + i];
        km->count[worst] = isfinite(min_kept) ? min_kept : limit;
    }
    /* Reassigned centres now sit at >= limit unless every centre was starved (max = 0);
     * none left below the limit can loop forever because the budget bounds the loop. */
    return moved > 0;
}

int km_partial_fit(km_t *km, const float *z, size_t n)
{
    const int k = km->k, dim = km->dim;
    if (n == 0 || (!km->seeded && n < (size_t)k))
        return 0;
    int *seg = malloc(n * sizeof(int));
    double *sum = calloc((size_t)k * dim, sizeof(double));
    double *m = calloc((size_t)k, sizeof(double));
    size_t *picked = malloc((n / 2 + 1) * sizeof(size_t));
    /* Seeding writes the centres; keep a copy so an allocation failure leaves no trace. */
    rng_t rng_before = km->rng;
    int rc = -1;
    if (!seg || !sum || !m || !picked)
        goto out;
    int fresh = !km->seeded;
    if (fresh) {
        if (seed_kmeanspp(km, z, n) < 0)
            goto out;
        refresh_mirror(km);
        km->seeded = 1;
    }
    if (km_assign(km, z, n, seg, NULL) < 0) {
        if (fresh) {
            km->seeded = 0;
            km->rng = rng_before;
        }
        goto out;
    }
    if (fresh)
        km->segment_version = 1;
    if (km->half_life > 0) {
        double f = exp2(-(double)n / km->half_life);
        for (int j = 0; j < k; j++)
            km->count[j] *= f;
    }
    for (size_t i = 0; i < n; i++) {
        double *s = sum + (size_t)seg[i] * dim;
        const float *x = z + i * dim;
        for (int t = 0; t < dim; t++)
            s[t] += x[t];
        m[seg[i]] += 1;
    }
    /* Applying Sculley's per-point step c += (x - c)/count to each of the m points in turn
     * lands exactly on the weighted mean below; doing it per centre is order-free. */
    for (int j = 0; j < k; j++) {
        if (m[j] == 0)
            continue;
        double w = km->count[j], total = w + m[j];
        double *c = km->centre + (size_t)j * dim;
        for (int t = 0; t < dim; t++)
            c[t] = (c[t] * w + sum[(size_t)j * dim + t]) / total;
        km->count[j] = total;
    }
    if (km->reassign_ratio > 0) {
        km->since_reassign += n;
        int any_empty = 0;
        for (int j = 0; j < k; j++)
            any_empty |= km->count[j] == 0;
        if (any_empty || km->since_reassign >= 10 * (uint64_t)k) {
            km->since_reassign = 0;
            if (reassign_starved(km, z, n, picked))
                km->segment_version++;
        }
    }
    refresh_mirror(km);
    rc = 0;
out:
    free(seg);
    free(sum);
    free(m);
    free(picked);
    return rc;
}

int km_label(const km_t *km, int seg, const char *const *names, char *buf, size_t cap)
{
    if (cap == 0)
        return -1;
    buf[0] = '\0';
    if (seg < 0 || seg >= km->k || !km->seeded)
        return -1;
    const double *c = km->centre + (size_t)seg * km->dim;
    int top[2] = {-1, -1};
    for (int i = 0; i < km->dim; i++) {
        double a = fabs(c[i]);
        if (a < KM_LABEL_MIN)
            continue;
        if (top[0] < 0 || a > fabs(c[top[0]])) {
            top[1] = top[0];
            top[0] = i;
        } else if (top[1] < 0 || a > fabs(c[top[1]])) {
            top[1] = i;
        }
    }
    if (top[0] < 0) {
        snprintf(buf, cap, "average");
        return 0;
    }
    size_t len = 0;
    for (int t = 0; t < 2 && top[t] >= 0; t++) {
        int i = top[t];
        char fallback[24];
        const char *name = names && names[i] ? names[i] : NULL;
        if (!name) {
            snprintf(fallback, sizeof(fallback), "f%d", i);
            name = fallback;
        }
        int trend = strstr(name, "trend") != NULL;
        const char *word = c[i] > 0 ? (trend ? "rising" : "high") : (trend ? "falling" : "low");
        int w = snprintf(buf + len, cap - len, "%s%s %s", t ? ", " : "", word, name);
        if (w < 0 || (size_t)w >= cap - len)
            break; /* truncated; snprintf already terminated */
        len += (size_t)w;
    }
    return 0;
}

int km_k(const km_t *km)
{
    return km->k;
}

int km_dim(const km_t *km)
{
    return km->dim;
}

int km_is_seeded(const km_t *km)
{
    return km->seeded;
}

uint64_t km_segment_version(const km_t *km)
{
    return km->segment_version;
}

double km_count(const km_t *km, int j)
{
    return (j >= 0 && j < km->k) ? km->count[j] : 0;
}

const double *km_centre(const km_t *km, int j)
{
    return (j >= 0 && j < km->k) ? km->centre + (size_t)j * km->dim : NULL;
}

/* Section layout: u32 k, u32 dim, u64 seed, f64 half_life, f64 reassign_ratio, u8 seeded,
 * u64 segment_version, u64 since_reassign, u64 rng[4], f64 count[k], f64 centre[k*dim].
 * The rng state is part of the model: a restarted instance must draw what the original
 * would have drawn. */
void km_encode(const km_t *km, mw_buf_t *b)
{
    mw_put_u32(b, (uint32_t)km->k);
    mw_put_u32(b, (uint32_t)km->dim);
    mw_put_u64(b, km->seed);
    mw_put_f64(b, km->half_life);
    mw_put_f64(b, km->reassign_ratio);
    mw_put_u8(b, (uint8_t)km->seeded);
    mw_put_u64(b, km->segment_version);
    mw_put_u64(b, km->since_reassign);
    for (int i = 0; i < 4; i++)
        mw_put_u64(b, km->rng.s[i]);
    for (int j = 0; j < km->k; j++)
        mw_put_f64(b, km->count[j]);
    for (size_t i = 0; i < (size_t)km->k * km->dim; i++)
        mw_put_f64(b, km->centre[i]);
}

km_t *km_decode(mw_reader_t *r, char *errstr, size_t errstr_size)
{
    uint32_t k = mw_get_u32(r), dim = mw_get_u32(r);
    uint64_t seed = mw_get_u64(r);
    double half_life = mw_get_f64(r), ratio = mw_get_f64(r);
    uint8_t seeded = mw_get_u8(r);
    uint64_t version = mw_get_u64(r), since = mw_get_u64(r);
    rng_t rng;
    for (int i = 0; i < 4; i++)
        rng.s[i] = mw_get_u64(r);
    if (r->failed) {
        snprintf(errstr, errstr_size, "kmeans: truncated header");
        return NULL;
    }
    if (seeded > 1) {
        snprintf(errstr, errstr_size, "kmeans: invalid seeded flag %u", seeded);
        return NULL;
    }
    if (k < 1 || k > KM_MAX_K || dim < 1 || dim > KM_MAX_DIM) {
        snprintf(errstr, errstr_size, "kmeans: invalid shape k=%u dim=%u", k, dim);
        return NULL;
    }
    size_t need = ((size_t)k + (size_t)k * dim) * 8;
    if (r->len - r->off < need) {
        snprintf(errstr, errstr_size, "kmeans: truncated centres (need %zu bytes, have %zu)", need,
                 r->len - r->off);
        return NULL;
    }
    km_t *km = km_new((int)k, (int)dim, seed, half_life, ratio);
    if (!km) {
        snprintf(errstr, errstr_size, "kmeans: invalid half_life %g or reassign_ratio %g",
                 half_life, ratio);
        return NULL;
    }
    km->seeded = seeded;
    km->segment_version = version;
    km->since_reassign = since;
    km->rng = rng;
    for (uint32_t j = 0; j < k; j++) {
        km->count[j] = mw_get_f64(r);
        if (!(km->count[j] >= 0) || !isfinite(km->count[j])) {
            snprintf(errstr, errstr_size, "kmeans: invalid count of centre %u", j);
            km_destroy(km);
            return NULL;
        }
    }
    for (size_t i = 0; i < (size_t)k * dim; i++) {
        km->centre[i] = mw_get_f64(r);
        if (!isfinite(km->centre[i])) {
            snprintf(errstr, errstr_size, "kmeans: non-finite centre coordinate");
            km_destroy(km);
            return NULL;
        }
    }
    refresh_mirror(km);
    return km;
}
