/* A stable merge sort with the comparison inlined, for rows whose order is a comparison of
 * several fields (no integer key covers it cheaply) and whose count is small enough that
 * n log n compares beat a radix sort's passes over every byte of every field.
 *
 * CS_MERGE_SORT(T, rows, tmp, n, LESS): sorts rows[n] (type T) so that LESS(&a, &b) never
 * holds for a row a after a row b; rows LESS orders neither way keep their input order.
 * LESS must be a strict weak order (so no NaN compared with <). tmp holds n rows of scratch;
 * the result is in rows. Runs of CS_MERGE_RUN rows are sorted by insertion, then merged
 * bottom-up, ping-ponging between rows and tmp. */
#ifndef CS_MSORT_H
#define CS_MSORT_H

#include <stddef.h>
#include <string.h>

#define CS_MERGE_RUN 16

#define CS_MERGE_SORT(T, rows, tmp, n, LESS)                                                       \
    do {                                                                                           \
        T *a_ = (rows), *b_ = (tmp);                                                               \
        size_t n_ = (n);                                                                           \
        for (size_t lo_ = 0; lo_ < n_; lo_ += CS_MERGE_RUN) {                                      \
            size_t hi_ = n_ - lo_ < CS_MERGE_RUN ? n_ : lo_ + CS_MERGE_RUN;                        \
            for (size_t i_ = lo_ + 1; i_ < hi_; i_++) {                                            \
                T v_ = a_[i_];                                                                     \
                size_t j_ = i_;                                                                    \
                while (j_ > lo_ && LESS(&v_, &a_[j_ - 1])) {                                       \
                    a_[j_] = a_[j_ - 1];                                                           \
                    j_--;                                                                          \
                }                                                                                  \
                a_[j_] = v_;                                                                       \
            }                                                                                      \
        }                                                                                          \
        for (size_t w_ = CS_MERGE_RUN; w_ < n_; w_ *= 2) {                                         \
            for (size_t lo_ = 0; lo_ < n_; lo_ += 2 * w_) {                                        \
                size_t mid_ = n_ - lo_ < w_ ? n_ : lo_ + w_;                                       \
                size_t hi_ = n_ - mid_ < w_ ? n_ : mid_ + w_;                                      \
                size_t i_ = lo_, j_ = mid_, k_ = lo_;                                              \
                while (i_ < mid_ && j_ < hi_)                                                      \
                    b_[k_++] = LESS(&a_[j_], &a_[i_]) ? a_[j_++] : a_[i_++];                       \
                while (i_ < mid_)                                                                  \
                    b_[k_++] = a_[i_++];                                                           \
                while (j_ < hi_)                                                                   \
                    b_[k_++] = a_[j_++];                                                           \
            }                                                                                      \
            T *t_ = a_;                                                                            \
            a_ = b_;                                                                               \
            b_ = t_;                                                                               \
        }                                                                                          \
        if (a_ != (rows))                                                                          \
            memcpy((rows), a_, n_ * sizeof(T));                                                    \
    } while (0)

#endif
