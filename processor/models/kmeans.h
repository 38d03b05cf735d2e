/* Online mini-batch k-means (Sculley 2010) on standardized vectors: k-means++ seeding on the
 * first batch, per-centre rate 1/count, forgetting by a half-life in events, reassignment of
 * starved centres. Segment ids are centre indices: they stay stable while centres move, and
 * `segment_version` changes whenever a centre is reseeded (its id now means something else). */
#ifndef CS_KMEANS_H
#define CS_KMEANS_H

#include <stddef.h>
#include <stdint.h>

struct mw_buf_s;
struct mw_reader_s;

typedef struct km_s km_t;

/* New model with k (1..4096) centres of `dim` dimensions. `half_life_events` > 0 makes
 * centre counts decay by 2^(-n/half_life) before each batch of n (Spark's halfLife in
 * points); 0 = no forgetting. `reassign_ratio` in [0, 1): a centre whose count falls below
 * ratio * (largest count) is moved onto a batch point (sklearn's reassignment_ratio, checked
 * at most every 10*k events); 0 = never. All randomness comes from `seed`.
 * Returns NULL on a bad argument or out of memory. Free with km_destroy(). */
km_t *km_new(int k, int dim, uint64_t seed, double half_life_events, double reassign_ratio);
/* Frees; km_destroy(NULL) is a no-op. */
void km_destroy(km_t *km);

/* One mini-batch step on z[n*dim] (row-major). Until the model is seeded, a batch with fewer
 * than k rows is ignored (returns 0, km_is_seeded() stays 0); the first batch with >= k rows
 * seeds by greedy k-means++ and is then learned from. Deterministic for a given seed and
 * sequence of batches. Returns 0, or -1 when out of memory (nothing was learned from the batch). */
int km_partial_fit(km_t *km, const float *z, size_t n);

/* Nearest centre of each row: seg[n] (ties -> lowest index) and, if dist2 is not NULL, the
 * squared distance (>= 0). Uses |x|^2 - 2 x.c + |c|^2 with cblas_sgemm over the batch.
 * Returns 0, or -1 if not seeded yet (seg set to -1) or out of memory. */
int km_assign(const km_t *km, const float *z, size_t n, int *seg, float *dist2);
/* Same contract with plain loops and direct (x - c)^2 sums: the bench baseline. Segments
 * match km_assign except on near-exact ties; distances agree to float rounding. */
int km_assign_scalar(const km_t *km, const float *z, size_t n, int *seg, float *dist2);
/* Sum over rows of the squared distance to the nearest centre; NAN if not seeded or on
 * allocation failure. */
double km_inertia(const km_t *km, const float *z, size_t n);

/* Human label of segment `seg` from the centre's strongest coordinates (centres live in
 * z-space, so a coordinate is a z-score): up to two features with |z| >= 0.5, strongest
 * first, as "high revenue_90d, low active_days_30d" ("rising"/"falling" for names that
 * contain "trend"); "average" when none stands out. names[dim] may be NULL (then "f<i>").
 * Writes a NUL-terminated string (truncated to cap). Returns 0, -1 on a bad segment. */
int km_label(const km_t *km, int seg, const char *const *names, char *buf, size_t cap);

int km_k(const km_t *km);
int km_dim(const km_t *km);
int km_is_seeded(const km_t *km);
/* 0 before seeding, 1 after it, +1 for every batch that reseeded at least one centre. */
uint64_t km_segment_version(const km_t *km);
/* Current (decayed) weight of centre j. */
double km_count(const km_t *km, int j);
/* Centre j as dim doubles, owned by the model, valid until the next partial_fit. */
const double *km_centre(const km_t *km, int j);

/* Snapshot section (model.c); see sc_encode. */
void km_encode(const km_t *km, struct mw_buf_s *b);
km_t *km_decode(struct mw_reader_s *r, char *errstr, size_t errstr_size);

#endif
