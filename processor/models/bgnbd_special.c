/* Digamma and trigamma for the BG/NBD fitter's gradient and Hessian (bgnbd.h): recurrence up
 * to x >= 10, then the asymptotic series. libm only. */
#include "bgnbd.h"

#include <math.h>

double bgnbd_digamma(double x)
{
    if (!(x > 0))
        return NAN; /* outside the domain the fitter uses; never reached from it */
    double s = 0;
    while (x < 10) {
        s -= 1 / x;
        x += 1;
    }
    double z = 1 / (x * x);
    /* ln x - 1/(2x) - sum B_2k / (2k x^2k), k = 1..7: error < 1e-16 at x = 10 */
    double tail =
        z * (1.0 / 12 -
             z * (1.0 / 120 -
                  z * (1.0 / 252 -
                       z * (1.0 / 240 - z * (1.0 / 132 - z * (691.0 / 32760 - z * (1.0 / 12)))))));
    return s + log(x) - 0.5 / x - tail;
}

double bgnbd_trigamma(double x)
{
    if (!(x > 0))
        return NAN;
    double s = 0;
    while (x < 10) {
        s += 1 / (x * x);
        x += 1;
    }
    double z = 1 / (x * x);
    /* 1/x + 1/(2x^2) + sum B_2k / x^(2k+1), k = 1..7 */
    double tail =
        z * (1.0 / 6 -
             z * (1.0 / 30 -
                  z * (1.0 / 42 -
                       z * (1.0 / 30 - z * (5.0 / 66 - z * (691.0 / 2730 - z * (7.0 / 6)))))));
    return s + 1 / x + 0.5 * z + tail / x;
}
