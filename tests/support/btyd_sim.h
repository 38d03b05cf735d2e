/* One simulated buy-till-you-die customer, shared by the BG/NBD and BG/CNBD-k unit tests. */
#ifndef CS_BTYD_SIM_H
#define CS_BTYD_SIM_H

#include "rng.h"

/* A gap between two activities of a customer of rate lambda (> 0), in the unit of T. */
typedef double (*btyd_gap_fn)(rng_t *rg, double lambda, void *opaque);

/* Activities from time 0 with gaps drawn by gap(rg, lambda, opaque), until the next one would
 * fall after T, or drop-out, drawn after each repeat with probability drop. Writes the repeat
 * count x and the last repeat's time t_x (0 when x = 0). Draws from rg in a fixed order, so a
 * seeded rg gives the same customer every time. */
void btyd_customer(rng_t *rg, double lambda, double drop, double T, btyd_gap_fn gap, void *opaque,
                   double *x, double *t_x);

#endif
