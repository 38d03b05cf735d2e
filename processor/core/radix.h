/* LSD radix sort by multi-word unsigned keys (one definition for the sorts of the replay's
 * metrics and AUCs, the BG/NBD population and the memory store's sweep order), and the key
 * that orders doubles as unsigned numbers.
 *
 * CS_RADIX_SORT(T, rows, tmp, n, words, count, KEY): sorts rows[n] (type T) by the key
 * words KEY(&row, 0) (least significant) .. KEY(&row, words - 1) (most significant), 8 bits
 * a pass, each pass stable, so rows with equal keys keep their input order; a pass whose
 * digit is the same in every row is skipped. tmp holds n rows of scratch; count is
 * calloc'ed scratch of 8 * words histograms (size_t[256] each), all zero on entry. The
 * result is in rows. KEY must be cheap and pure: it is called 2 + (passes) times per row. */
#ifndef CS_RADIX_H
#define CS_RADIX_H

#include <stdint.h>
#include <string.h>

/* A double's bits mapped so that unsigned order is numeric order (negatives flipped whole,
 * positives with the sign bit set); -0.0 and +0.0 map alike, as == says. Not for NaN. */
static inline uint64_t cs_double_key(double v)
{
    if (v == 0)
        v = 0; /* -0.0 -> +0.0 */
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return (u >> 63) ? ~u : u | (1ULL << 63);
}

/* The same for a float, in 32 bits. */
static inline uint32_t cs_float_key(float v)
{
    if (v == 0)
        v = 0; /* -0.0f -> +0.0f */
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    return (u >> 31) ? ~u : u | (1u << 31);
}

#define CS_RADIX_SORT(T, rows, tmp, n, words, count, KEY)                                          \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < (n); i_++)                                                        \
            for (int w_ = 0; w_ < (words); w_++) {                                                 \
                uint64_t k_ = KEY(&(rows)[i_], w_);                                                \
                for (int d_ = 0; d_ < 8; d_++)                                                     \
                    (count)[8 * w_ + d_][(k_ >> (8 * d_)) & 0xff]++;                               \
            }                                                                                      \
        T *a_ = (rows), *b_ = (tmp);                                                               \
        for (int d_ = 0; d_ < 8 * (words); d_++) {                                                 \
            int w_ = d_ / 8, s_ = 8 * (d_ % 8);                                                    \
            (void)w_; /* a KEY that ignores its word */                                            \
            if ((count)[d_][(KEY(&a_[0], w_) >> s_) & 0xff] == (n))                                \
                continue; /* one bucket: the pass would not move anything */                       \
            size_t pos_ = 0;                                                                       \
            for (int v_ = 0; v_ < 256; v_++) {                                                     \
                size_t c_ = (count)[d_][v_];                                                       \
                (count)[d_][v_] = pos_;                                                            \
                pos_ += c_;                                                                        \
            }                                                                                      \
            for (size_t i_ = 0; i_ < (n); i_++)                                                    \
                b_[(count)[d_][(KEY(&a_[i_], w_) >> s_) & 0xff]++] = a_[i_];                       \
            T *t_ = a_;                                                                            \
            a_ = b_;                                                                               \
            b_ = t_;                                                                               \
        }                                                                                          \
        if (a_ != (rows))                                                                          \
            memcpy((rows), a_, (n) * sizeof(T));                                                   \
    } while (0)

#endif
