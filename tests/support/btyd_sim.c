#include "btyd_sim.h"

void btyd_customer(rng_t *rg, double lambda, double drop, double T, btyd_gap_fn gap, void *opaque,
                   double *x, double *t_x)
{
    double now = 0;
    *x = *t_x = 0;
    for (;;) {
        now += gap(rg, lambda, opaque);
        if (!(now <= T))
            return;
        *x += 1;
        *t_x = now;
        if (rng_uniform(rg) < drop)
            return;
    }
}
