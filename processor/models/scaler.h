/* Online standardizer: per-dimension running mean and variance (Welford/West, in double),
 * optionally exponentially weighted with a half-life counted in examples, so both models see
 * z = (x - mean) / sd on a scale that follows slow drift. */
#ifndef CS_SCALER_H
#define CS_SCALER_H

#include <stddef.h>

struct mw_buf_s;
struct mw_reader_s;

typedef struct sc_s sc_t;

#define SC_SD_FLOOR 1e-6 /* sd below this (a constant feature) is taken as this */

/* New standardizer for `dim` (>= 1) dimensions. `half_life_examples` = 0 keeps plain
 * (unweighted) moments; > 0 weights the example seen j examples ago by 2^(-j/half_life).
 * Returns NULL on a bad argument or out of memory. Free with sc_destroy(). */
sc_t *sc_new(int dim, double half_life_examples);
/* Frees; sc_destroy(NULL) is a no-op. */
void sc_destroy(sc_t *sc);

/* Adds n rows (row-major x[n*dim]) in order. Non-finite values must be filtered upstream:
 * one NaN would poison the moments for good. */
void sc_update(sc_t *sc, const float *x, size_t n);
/* z[i] = (x[i] - mean) / max(sd, SC_SD_FLOOR) for n rows; z may alias x. Before any data
 * (total weight 0) this is the identity. */
void sc_transform(const sc_t *sc, const float *x, float *z, size_t n);

int sc_dim(const sc_t *sc);
/* Total weight of the data seen: the example count without decay, the decayed count with. */
double sc_weight(const sc_t *sc);
/* Running mean of dimension i (0 before any data). */
double sc_mean(const sc_t *sc, int i);
/* Population (biased, like sklearn's StandardScaler) standard deviation of dimension i,
 * unfloored (0 before any data). */
double sc_sd(const sc_t *sc, int i);

/* Snapshot section (model.c). Encode appends to `b`; decode reads one section and returns a
 * new standardizer or NULL with a message in errstr. */
void sc_encode(const sc_t *sc, struct mw_buf_s *b);
sc_t *sc_decode(struct mw_reader_s *r, char *errstr, size_t errstr_size);

#endif
