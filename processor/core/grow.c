/* Growable arrays (grow.h). The pointer variables are read and written with memcpy: they
 * are T * objects seen through a void *, and memcpy is the aliasing-safe way to copy their
 * representation (the same for every object pointer type on the targets we build for). */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int cs_grow_arrays(size_t *cap, size_t want, size_t min_cap, const cs_array_t *arrays, int n)
{
    if (want <= *cap)
        return 0;
    size_t c = *cap ? *cap : (min_cap ? min_cap : 1);
    while (c < want) {
        if (c > SIZE_MAX / 2)
            return -1;
        c *= 2;
    }
    int ok = 1;
    for (int i = 0; i < n; i++) {
        void *old, *np;
        if (arrays[i].elem && c > SIZE_MAX / arrays[i].elem) {
            ok = 0;
            continue;
        }
        memcpy(&old, arrays[i].ptr_addr, sizeof old);
        if (!(np = realloc(old, c * arrays[i].elem))) {
            ok = 0; /* the others may have grown: harmless, *cap stays the old one */
            continue;
        }
        memcpy(arrays[i].ptr_addr, &np, sizeof np);
    }
    if (!ok)
        return -1;
    *cap = c;
    return 0;
}
