/* Binary search in an array of structs sorted ascending by one field. */
#ifndef CS_UPPER_BOUND_H
#define CS_UPPER_BOUND_H

#include <stddef.h>

/* out = the number of rows of a[0..n) whose FIELD is <= key, a sorted ascending by FIELD:
 * where a row with that key goes after its equals; a[out - 1] is the key's row when out > 0
 * and a[out - 1].FIELD == key. O(log n) compares. */
#define CS_UPPER_BOUND(a, n, FIELD, key, out)                                                      \
    do {                                                                                           \
        size_t lo_ = 0, hi_ = (n);                                                                 \
        while (lo_ < hi_) {                                                                        \
            size_t mid_ = lo_ + (hi_ - lo_) / 2;                                                   \
            if ((a)[mid_].FIELD <= (key))                                                          \
                lo_ = mid_ + 1;                                                                    \
            else                                                                                   \
                hi_ = mid_;                                                                        \
        }                                                                                          \
        (out) = lo_;                                                                               \
    } while (0)

#endif
