/* The generator's random draws (gen.h): Gamma (Marsaglia & Tsang), Poisson and Beta (as a
 * ratio of Gamma draws kept in logs, so a tiny shape such as Online Retail's a = 0.000485
 * never underflows to 0). Pure functions of the rng state. */
#include "gen.h"

#include <math.h>

double gen_gamma(rng_t *r, double shape, double scale)
{
    if (shape < 1.0) {
        /* Boost: Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia & Tsang, section 6). */
        double u = rng_uniform(r);
        return gen_gamma(r, shape + 1.0, scale) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x)
            return d * v * scale;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v * scale;
    }
}

int gen_poisson(rng_t *r, double mean)
{
    if (mean <= 0.0)
        return 0;
    if (mean > 30.0) {
        double v = floor(mean + sqrt(mean) * rng_normal(r) + 0.5);
        return v < 0.0 ? 0 : (int)v;
    }
    double limit = exp(-mean), prod = rng_uniform(r);
    int k = 0;
    while (prod > limit) {
        k++;
        prod *= rng_uniform(r);
    }
    return k;
}

/* log of a Gamma(shape, 1) draw; for shape < 1 the boost's U^(1/shape) stays in logs, where
 * it cannot underflow to 0. */
static double log_gamma_draw(rng_t *r, double shape)
{
    if (shape < 1.0) {
        double u = rng_uniform(r);
        return log(gen_gamma(r, shape + 1.0, 1.0)) + log(1.0 - u) / shape;
    }
    return log(gen_gamma(r, shape, 1.0));
}

double gen_beta(rng_t *r, double a, double b)
{
    double lx = log_gamma_draw(r, a), ly = log_gamma_draw(r, b);
    return 1.0 / (1.0 + exp(ly - lx));
}
