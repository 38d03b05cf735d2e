/* Number formatting shared by every text output of doubles (config values, alert JSON,
 * metrics): the shortest text that reads back as the same double, so 0.05 prints as 0.05,
 * not 0.050000000000000003 (%.17g), and nothing is lost (%g would round). */
#ifndef CS_NUMFMT_H
#define CS_NUMFMT_H

#include <stddef.h>

/* Writes the shortest %.{1..17}g form of v that strtod() reads back as v (non-finite
 * values print as %g does: inf, -inf, nan). Returns what snprintf returns for that form. */
int nf_shortest(char *buf, size_t size, double v);

#endif
