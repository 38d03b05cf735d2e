/* The alert policy's action table (alert.actions over the built-in defaults by segment
 * archetype and bucket): parsing, checking, lookup and the help text. */
#include "alert_policy_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void alert_print_actions_help(FILE *out)
{
    fprintf(out,
            "alert.actions: the recommended_action of an alert, by segment and risk bucket.\n"
            "  A comma-separated list of entries SEGMENT:BUCKET=ACTION, where\n"
            "    SEGMENT  a k-means segment id (0..%d) or * (any segment, also unsegmented\n"
            "             users)\n"
            "    BUCKET   low, medium, high or * (any bucket)\n"
            "    ACTION   free text up to %zu bytes, no comma and no control character;\n"
            "             spaces around it are trimmed\n"
            "  The most specific entry wins: SEGMENT:BUCKET, then SEGMENT:*, then *:BUCKET,\n"
            "  then *:*. Each SEGMENT:BUCKET may appear once.\n"
            "  Example: alert.actions = 3:high=win-back coupon,3:*=loyalty points,*:low=none\n"
            "\n"
            "With no entry for the alert, the built-in default by bucket, kind and the\n"
            "segment's archetype (the name before the segment label's parenthesis):\n"
            "    low bucket                                  -> %s\n"
            "    lapsed, champions/loyal/slipping regulars   -> %s\n"
            "    lapsed, any other archetype                 -> %s\n"
            "    at_risk, new                                -> %s\n"
            "    at_risk, discount seekers                   -> %s\n"
            "    at_risk, champions/loyal/slipping, high     -> %s\n"
            "    at_risk, champions/loyal/slipping, medium   -> %s\n"
            "    at_risk, one-time buyers                    -> %s\n"
            "    at_risk, hibernating/occasional/unsegmented -> %s\n"
            "Buckets (alert.buckets = MEDIUM,HIGH): high when p >= HIGH, medium when\n"
            "MEDIUM <= p < HIGH, low below MEDIUM. Alerts fire at p >= alert.threshold, and\n"
            "with alert.medium = true also in the medium bucket.\n",
            ACTION_SEG_MAX, ACTION_MAX,
            alert_default_action(ALERT_LOW, ALERT_AT_RISK, ALERT_ARCH_NONE),
            alert_default_action(ALERT_HIGH, ALERT_LAPSED, ALERT_ARCH_LOYAL),
            alert_default_action(ALERT_HIGH, ALERT_LAPSED, ALERT_ARCH_OCCASIONAL),
            alert_default_action(ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_NEW),
            alert_default_action(ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_DISCOUNT),
            alert_default_action(ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_LOYAL),
            alert_default_action(ALERT_MEDIUM, ALERT_AT_RISK, ALERT_ARCH_LOYAL),
            alert_default_action(ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_ONE_TIME),
            alert_default_action(ALERT_HIGH, ALERT_AT_RISK, ALERT_ARCH_OCCASIONAL));
}

static void trim(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b))
        (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* Parses one entry [b, e) into *r; on error writes "entry N: ..." into err. */
static int parse_rule(const char *b, const char *e, int idx, action_rule_t *r, char *err,
                      size_t err_size)
{
    trim(&b, &e);
    int len = (int)(e - b);
    if (len == 0) {
        snprintf(err, err_size, "entry %d: empty entry (expected SEGMENT:BUCKET=ACTION)", idx);
        return -1;
    }
    const char *eq = memchr(b, '=', (size_t)(e - b));
    const char *colon = eq ? memchr(b, ':', (size_t)(eq - b)) : NULL;
    if (!eq || !colon) {
        snprintf(err, err_size, "entry %d: expected SEGMENT:BUCKET=ACTION, got \"%.*s\"", idx,
                 len > 60 ? 60 : len, b);
        return -1;
    }
    const char *sb = b, *se = colon, *bb = colon + 1, *be = eq, *ab = eq + 1, *ae = e;
    trim(&sb, &se);
    trim(&bb, &be);
    trim(&ab, &ae);
    int slen = (int)(se - sb), blen = (int)(be - bb);
    if (slen == 1 && *sb == '*') {
        r->seg = ACTION_ANY;
    } else {
        long v = 0;
        int ok = slen > 0 && slen <= 4;
        for (const char *p = sb; ok && p < se; p++) {
            ok = isdigit((unsigned char)*p);
            v = v * 10 + (*p - '0');
        }
        if (!ok || v > ACTION_SEG_MAX) {
            snprintf(err, err_size, "entry %d: segment \"%.*s\": expected an id 0..%d or *", idx,
                     slen > 40 ? 40 : slen, sb, ACTION_SEG_MAX);
            return -1;
        }
        r->seg = (int)v;
    }
    static const char *const bnames[] = {"low", "medium", "high"};
    r->bucket = -2;
    if (blen == 1 && *bb == '*')
        r->bucket = ACTION_ANY;
    for (int i = 0; i < 3; i++)
        if ((size_t)blen == strlen(bnames[i]) && memcmp(bb, bnames[i], (size_t)blen) == 0)
            r->bucket = i;
    if (r->bucket == -2) {
        snprintf(err, err_size, "entry %d: bucket \"%.*s\": expected low, medium, high or *", idx,
                 blen > 40 ? 40 : blen, bb);
        return -1;
    }
    size_t alen = (size_t)(ae - ab);
    if (alen == 0) {
        snprintf(err, err_size, "entry %d: empty action", idx);
        return -1;
    }
    if (alen > ACTION_MAX) {
        snprintf(err, err_size, "entry %d: action is %zu bytes, at most %zu", idx, alen,
                 ACTION_MAX);
        return -1;
    }
    for (const char *p = ab; p < ae; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            snprintf(err, err_size, "entry %d: action contains a control character", idx);
            return -1;
        }
    }
    memcpy(r->text, ab, alen);
    r->text[alen] = '\0';
    return 0;
}

static void rule_key(const action_rule_t *r, char *buf, size_t cap)
{
    static const char *const bnames[] = {"low", "medium", "high"};
    char seg[16];
    if (r->seg == ACTION_ANY)
        snprintf(seg, sizeof seg, "*");
    else
        snprintf(seg, sizeof seg, "%d", r->seg);
    snprintf(buf, cap, "%s:%s", seg, r->bucket == ACTION_ANY ? "*" : bnames[r->bucket]);
}

/* k > 0 bounds the segment ids (0..k-1): a rule for a segment the model never has would
 * silently never fire. */
int alert_parse_actions(alert_policy_t *ap, const char *text, int k, char *errstr,
                        size_t errstr_size)
{
    if (!text)
        return 0;
    const char *b = text, *e = text + strlen(text);
    trim(&b, &e);
    if (b == e)
        return 0; /* "" = defaults only */
    int n = 1;
    for (const char *p = b; p < e; p++)
        n += *p == ',';
    ap->rules = calloc((size_t)n, sizeof *ap->rules);
    if (!ap->rules) {
        snprintf(errstr, errstr_size, "alert.actions: out of memory");
        return -1;
    }
    char err[200];
    for (int idx = 1; b <= e; idx++) {
        const char *comma = memchr(b, ',', (size_t)(e - b));
        const char *end = comma ? comma : e;
        action_rule_t *r = &ap->rules[ap->n_rules];
        if (parse_rule(b, end, idx, r, err, sizeof err) != 0) {
            snprintf(errstr, errstr_size, "alert.actions: %s", err);
            return -1;
        }
        if (k > 0 && r->seg != ACTION_ANY && r->seg >= k) {
            snprintf(errstr, errstr_size,
                     "alert.actions: entry %d: segment %d does not exist: model.k is %d, "
                     "segments are 0..%d",
                     idx, r->seg, k, k - 1);
            return -1;
        }
        for (int j = 0; j < ap->n_rules; j++) {
            if (ap->rules[j].seg == r->seg && ap->rules[j].bucket == r->bucket) {
                char key[32];
                rule_key(r, key, sizeof key);
                snprintf(errstr, errstr_size,
                         "alert.actions: entry %d: %s is already set by entry %d", idx, key, j + 1);
                return -1;
            }
        }
        ap->n_rules++;
        if (!comma)
            break;
        b = comma + 1;
    }
    return 0;
}

const char *alert_policy_action(const alert_policy_t *ap, int segment_id, alert_bucket_t b,
                                alert_kind_t kind, alert_archetype_t arch)
{
    const char *best = alert_default_action(b, kind, arch);
    int best_rank = -1;
    for (int i = 0; i < ap->n_rules; i++) {
        const action_rule_t *r = &ap->rules[i];
        if (r->seg != ACTION_ANY && r->seg != segment_id)
            continue;
        if (r->bucket != ACTION_ANY && r->bucket != (int)b)
            continue;
        int rank = (r->seg != ACTION_ANY) * 2 + (r->bucket != ACTION_ANY);
        if (rank > best_rank) {
            best_rank = rank;
            best = r->text;
        }
    }
    return best;
}

int alert_actions_check(const char *text, int k, char *errstr, size_t errstr_size)
{
    alert_policy_t tmp;
    memset(&tmp, 0, sizeof tmp);
    int rc = alert_parse_actions(&tmp, text, k, errstr, errstr_size);
    free(tmp.rules);
    return rc;
}
