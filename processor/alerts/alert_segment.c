/* What marketing reads off a segment: the risk-bucket cut points (alert.buckets), the
 * archetype of a k-means centre (a short RFM-style business name) and the built-in action
 * table by bucket, kind and archetype. Pure functions of their inputs. */
#include "alert.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKET_MEDIUM_DEFAULT 0.5
#define BUCKET_HIGH_DEFAULT   0.85

int alert_buckets_parse(const char *text, double *medium, double *high, char *errstr,
                        size_t errstr_size)
{
    *medium = BUCKET_MEDIUM_DEFAULT;
    *high = BUCKET_HIGH_DEFAULT;
    if (!text)
        return 0;
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return 0;
    char *end = NULL;
    double m = strtod(p, &end);
    int ok = end != p;
    double h = NAN;
    if (ok) {
        p = end;
        while (isspace((unsigned char)*p))
            p++;
        ok = *p == ',';
    }
    if (ok) {
        p++;
        h = strtod(p, &end);
        ok = end != p;
        p = end;
        while (ok && isspace((unsigned char)*p))
            p++;
        ok = ok && !*p;
    }
    /* the comparisons are false for NaN, so "nan,1" is refused too */
    if (!ok || !(m >= 0.0 && m <= h && h <= 1.0)) {
        snprintf(errstr, errstr_size,
                 "expected MEDIUM,HIGH with 0 <= MEDIUM <= HIGH <= 1 (e.g. 0.5,0.85), got "
                 "\"%.60s\"",
                 text);
        return -1;
    }
    *medium = m;
    *high = h;
    return 0;
}

static const char *const ARCH_NAME[ALERT_ARCH_COUNT] = {
    [ALERT_ARCH_NONE] = "unsegmented",          [ALERT_ARCH_NEW] = "new",
    [ALERT_ARCH_DISCOUNT] = "discount seekers", [ALERT_ARCH_SLIPPING] = "slipping regulars",
    [ALERT_ARCH_CHAMPIONS] = "champions",       [ALERT_ARCH_LOYAL] = "loyal",
    [ALERT_ARCH_ONE_TIME] = "one-time buyers",  [ALERT_ARCH_HIBERNATING] = "hibernating",
    [ALERT_ARCH_OCCASIONAL] = "occasional",
};

const char *alert_archetype_name(alert_archetype_t a)
{
    return a >= 0 && a < ALERT_ARCH_COUNT ? ARCH_NAME[a] : ARCH_NAME[ALERT_ARCH_NONE];
}

alert_archetype_t alert_archetype_of(const double z[FEAT_DIM])
{
    /* Centre coordinates are z-scores of the model's inputs (log1p of counts and days), so
     * the thresholds read "this segment is 0.5 sd above the population" whatever the log. */
    double tenure = z[FEAT_TENURE_DAYS], life = z[FEAT_ACTIVE_DAYS_LIFETIME];
    double coupons = z[FEAT_COUPONS_90D], quiet = z[FEAT_DAYS_SINCE_ACTIVITY];
    double trend = z[FEAT_ACTIVITY_TREND], freq = z[FEAT_ACTIVE_DAYS_90D];
    double money = z[FEAT_REVENUE_90D];
    if (tenure <= -0.75 && life <= 0.0)
        return ALERT_ARCH_NEW;
    if (coupons >= 0.75)
        return ALERT_ARCH_DISCOUNT;
    if (life >= 0.25 && (quiet >= 0.5 || trend <= -0.5))
        return ALERT_ARCH_SLIPPING;
    if (quiet <= 0.0 && freq >= 0.5 && money >= 0.5)
        return ALERT_ARCH_CHAMPIONS;
    if (quiet <= 0.25 && freq >= 0.25)
        return ALERT_ARCH_LOYAL;
    if (life <= -0.5 && quiet >= 0.5)
        return ALERT_ARCH_ONE_TIME;
    if (quiet >= 0.75)
        return ALERT_ARCH_HIBERNATING;
    return ALERT_ARCH_OCCASIONAL;
}

static int high_value(alert_archetype_t a)
{
    return a == ALERT_ARCH_CHAMPIONS || a == ALERT_ARCH_LOYAL || a == ALERT_ARCH_SLIPPING;
}

const char *alert_default_action(alert_bucket_t b, alert_kind_t kind, alert_archetype_t arch)
{
    if (b == ALERT_LOW)
        return "no action (monitor)";
    if (kind == ALERT_LAPSED)
        return high_value(arch) ? "win-back call with a personal offer" : "win-back campaign";
    switch (arch) {
    case ALERT_ARCH_NEW:
        return "onboarding nudge";
    case ALERT_ARCH_DISCOUNT:
        return "coupon";
    case ALERT_ARCH_CHAMPIONS:
    case ALERT_ARCH_LOYAL:
    case ALERT_ARCH_SLIPPING:
        return b == ALERT_HIGH ? "personal outreach with a retention offer" : "loyalty reward";
    case ALERT_ARCH_ONE_TIME:
        return "second-purchase incentive";
    default:
        return "re-engagement email with a recommendation";
    }
}
