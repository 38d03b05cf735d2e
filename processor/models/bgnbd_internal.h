/* The BG/NBD collapsed table's layout, shared by bgnbd.c (building it) and bgnbd_fit.c
 * (the fit's passes over it). Not for use outside models/. */
#ifndef CS_BGNBD_INTERNAL_H
#define CS_BGNBD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bgnbd.h"

typedef struct bg_row_s {
    double x, t_x, T, w;
    uint32_t ix, itx, iT; /* indices into the distinct x and time arrays */
} bg_row_t;

/* Open-addressing index: slot holds (array index + 1), 0 = empty; load kept <= 1/2. */
typedef struct bg_slots_s {
    uint32_t *slot;
    size_t mask; /* capacity - 1 (power of two), 0 before the first allocation */
} bg_slots_t;

struct bgnbd_table_s {
    bg_row_t *rows;
    size_t nrows, rows_cap;
    bg_slots_t row_idx;
    double *xv, *xw; /* distinct x values, their total weight */
    size_t nx, x_cap;
    bg_slots_t x_idx;
    double *tv; /* distinct time values (T and t_x alike) */
    size_t nt, t_cap;
    bg_slots_t t_idx;
    double weight;
};

/* Clamps a customer's summary into the models' domain (bgnbd.c and bgcnbd.c alike), so no
 * input gives NaN: a negative, NaN or infinite x or T reads as 0 (no repeat activity, no time
 * observed), 0 < x < 1 as 1, t_x into [0, T], and t_x = 0 when x = 0. */
void bg_sanitize(double *x, double *t_x, double *T);

/* BG/CNBD-k: the table's log-likelihood (without the gaps' constant, bgcnbd.c) and its
 * gradient in the log-parameters q = ln(r, alpha, a, b), k in 2..BGCNBD_K_MAX. */
void bgcnbd_eval(const bgnbd_table_t *t, int k, const double q[4], double *f, double g[4]);

#endif
