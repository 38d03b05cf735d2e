/* Open days (open_days.h): a count per day from the first recorded one, and the prefix counts
 * of open days, active user-days and day weights, kept current by every mark so reads are
 * O(1). Invariants: ndays == 0 <=> count == NULL; count[0] > 0 and count[ndays - 1] > 0;
 * cum[0] = 0 and cum[i + 1] = cum[i] + open(i), ccum[0] = 0 and ccum[i + 1] = ccum[i] +
 * count[i], wcum[0] = 0 and wcum[i + 1] = wcum[i] + weight(i) for i < ndays; tail_open =
 * the rule applied to a day after the last. */
#include "open_days.h"

#include <stdlib.h>
#include <string.h>

void od_init(od_t *od)
{
    memset(od, 0, sizeof(*od));
    od->tail_open = 1;
}

void od_free(od_t *od)
{
    int lull = od->lull;
    free(od->count);
    free(od->cum);
    free(od->ccum);
    free(od->wcum);
    od_init(od);
    od->lull = lull;
}

static int grow(od_t *od, uint32_t days)
{
    if (days <= od->cap)
        return 0;
    uint32_t cap = od->cap ? od->cap : 64;
    while (cap < days)
        cap *= 2;
    uint16_t *count = realloc(od->count, cap * sizeof(*count));
    if (!count)
        return -1;
    od->count = count;
    uint32_t *cum = realloc(od->cum, (cap + 1) * sizeof(*cum));
    if (!cum)
        return -1; /* count is larger but cap is not: still consistent */
    od->cum = cum;
    double *ccum = realloc(od->ccum, (cap + 1) * sizeof(*ccum));
    if (!ccum)
        return -1;
    od->ccum = ccum;
    double *wcum = realloc(od->wcum, (cap + 1) * sizeof(*wcum));
    if (!wcum)
        return -1;
    od->wcum = wcum;
    memset(od->count + od->cap, 0, (cap - od->cap) * sizeof(*count));
    od->cap = cap;
    return 0;
}

/* The rule for an empty day at index i: open unless the last OD_MEAN_DAYS active days
 * before it average at least OD_MIN_EXPECTED active user-days. */
static int empty_day_open(const od_t *od, uint32_t i)
{
    double sum = 0;
    int n = 0;
    for (uint32_t k = i; k > 0 && n < OD_MEAN_DAYS; k--)
        if (od->count[k - 1]) {
            sum += od->count[k - 1];
            n++;
        }
    return n == 0 || sum < OD_MIN_EXPECTED * n;
}

/* The weight of open day i (open_days.h, lulls): min(1, S / L), at least OD_LULL_FLOOR, or 1
 * while the baseline is too short or too small. The last recorded day is left out of S: it
 * is usually still filling (a live day, or the first hour of a tick's day within the
 * allowed lateness), and its partial count would read as a lull of the days before it.
 * Reads cum and ccum up to i + 4. */
static double lull_weight(const od_t *od, uint32_t i)
{
    uint32_t last = od->ndays - 1;
    uint32_t lo = i > 3 ? i - 3 : 0, hi = i + 4 < last ? i + 4 : last;
    uint32_t blo = i > OD_LULL_BASE_DAYS ? i - OD_LULL_BASE_DAYS : 0;
    double open_week = (double)(od->cum[hi] - od->cum[lo]);
    double open_base = (double)(od->cum[i] - od->cum[blo]);
    if (open_week <= 0 || open_base < OD_LULL_MIN_OPEN)
        return 1;
    double base_mean = (od->ccum[i] - od->ccum[blo]) / open_base;
    if (base_mean < OD_LULL_MIN_MEAN)
        return 1;
    double w = (od->ccum[hi] - od->ccum[lo]) / open_week / base_mean;
    return w >= 1 ? 1 : w < OD_LULL_FLOOR ? OD_LULL_FLOOR : w;
}

/* Re-decides days from index `from` on (their open flags, the prefix counts, the tail), and
 * the weights from 4 days before it (their week reaches `from`, or the day before it, which
 * a new last day makes part of the weeks around it). */
static void redecide(od_t *od, uint32_t from)
{
    int run = -1; /* the decision of the current run of empty days (the same for all) */
    for (uint32_t i = from; i < od->ndays; i++) {
        if (od->count[i]) {
            run = -1;
            od->cum[i + 1] = od->cum[i] + 1;
            continue;
        }
        if (run < 0)
            run = empty_day_open(od, i);
        od->cum[i + 1] = od->cum[i] + (uint32_t)run;
    }
    od->tail_open = empty_day_open(od, od->ndays);
    for (uint32_t i = from; i < od->ndays; i++)
        od->ccum[i + 1] = od->ccum[i] + od->count[i];
    for (uint32_t i = from > 4 ? from - 4 : 0; i < od->ndays; i++) {
        uint32_t open = od->cum[i + 1] - od->cum[i];
        od->wcum[i + 1] = od->wcum[i] + (open && od->lull ? lull_weight(od, i) : (double)open);
    }
}

void od_set_lull(od_t *od, int on)
{
    od->lull = on != 0;
    if (od->ndays > 0)
        redecide(od, 0);
}

int od_mark(od_t *od, int64_t day)
{
    if (od->ndays == 0) {
        if (grow(od, 1) != 0)
            return -1;
        od->base = day;
        od->ndays = 1;
        od->count[0] = 1;
        od->cum[0] = 0;
        od->ccum[0] = 0;
        od->wcum[0] = 0;
        redecide(od, 0);
        return 0;
    }
    if (day < od->base || day - od->base >= (int64_t)OD_MAX_DAYS)
        return 0;
    uint32_t i = (uint32_t)(day - od->base);
    uint32_t from = i; /* the first day whose decision may change */
    if (i >= od->ndays) {
        if (grow(od, i + 1) != 0)
            return -1;
        from = od->ndays;
        od->ndays = i + 1;
    }
    if (od->count[i] < UINT16_MAX)
        od->count[i]++;
    redecide(od, from);
    return 0;
}

double od_before(const od_t *od, int64_t day)
{
    if (od->ndays == 0 || day <= od->base)
        return (double)day;
    int64_t i = day - od->base; /* days [base, day) */
    if (i <= (int64_t)od->ndays)
        return (double)od->base + od->wcum[i];
    double n = od->wcum[od->ndays];
    int64_t reach = i < (int64_t)OD_MAX_DAYS ? i : (int64_t)OD_MAX_DAYS;
    if (od->tail_open)
        n += (double)(reach - (int64_t)od->ndays);
    return (double)od->base + n + (double)(i - reach); /* past the reach: open */
}

double od_share(const od_t *od, int64_t day, int window)
{
    if (window < 1)
        window = 1;
    double open = od_before(od, day) - od_before(od, day - window);
    if (open < 1)
        open = 1;
    return open / (double)window;
}

void od_encode(const od_t *od, mw_buf_t *b)
{
    mw_put_u32(b, od->ndays);
    if (od->ndays == 0)
        return;
    mw_put_u64(b, (uint64_t)od->base);
    for (uint32_t i = 0; i < od->ndays; i++) {
        mw_put_u8(b, (uint8_t)od->count[i]);
        mw_put_u8(b, (uint8_t)(od->count[i] >> 8));
    }
}

int od_decode(od_t *od, mw_reader_t *r)
{
    od_free(od);
    uint32_t ndays = mw_get_u32(r);
    if (r->failed || ndays == 0)
        return r->failed ? -1 : 0;
    if (ndays > OD_MAX_DAYS || r->len - r->off < 8 || (r->len - r->off - 8) / 2 < ndays)
        return -1;
    int64_t base = (int64_t)mw_get_u64(r);
    /* |days| of times the features accept are < 2^36: keep base + OD_MAX_DAYS far from overflow */
    if (base < -((int64_t)1 << 40) || base > ((int64_t)1 << 40) || grow(od, ndays) != 0) {
        od_free(od);
        return -1;
    }
    for (uint32_t i = 0; i < ndays; i++) {
        uint16_t lo = mw_get_u8(r);
        od->count[i] = (uint16_t)(lo | (uint16_t)mw_get_u8(r) << 8);
    }
    if (r->failed || od->count[0] == 0 || od->count[ndays - 1] == 0) {
        od_free(od);
        return -1;
    }
    od->base = base;
    od->ndays = ndays;
    od->cum[0] = 0;
    od->ccum[0] = 0;
    od->wcum[0] = 0;
    redecide(od, 0);
    return 0;
}
