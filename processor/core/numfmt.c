/* Shortest round-trip formatting of doubles (numfmt.h). A loop over precisions is simple
 * and obviously correct; at most 17 snprintf/strtod pairs, on paths that print a value,
 * never per event. */
#include "numfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nf_shortest(char *buf, size_t size, double v)
{
    if (!isfinite(v))
        return snprintf(buf, size, "%g", v);
    char tmp[40];
    for (int prec = 1; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) {
            /* %g switches to an exponent once it exceeds the precision: 10 would print as
             * 1e+01. Below 1e17 write the integer digits out, as %.17g (and JSON) would. */
            const char *e = strchr(tmp, 'e');
            int x = e ? atoi(e + 1) : -1;
            if (x >= prec && x < 17)
                return snprintf(buf, size, "%.*g", x + 1, v);
            return snprintf(buf, size, "%s", tmp);
        }
    }
    return snprintf(buf, size, "%.17g", v); /* 17 significant digits always round-trip */
}
