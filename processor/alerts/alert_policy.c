/* The alert policy (DESIGN.md section 6): the segment x bucket action table over the
 * built-in defaults, the gates (min examples, cooldown, threshold or medium bucket), the
 * building of an alert from a scored snapshot (segment names cached per segment version,
 * informative top factors), and the top-percent selection of a tick's snapshots. */
#include "alert_policy_internal.h"
#include "grow.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- life cycle ---- */

alert_policy_t *alert_policy_new(const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    alert_policy_t *ap = calloc(1, sizeof *ap);
    if (!ap) {
        snprintf(errstr, errstr_size, "alert policy: out of memory");
        return NULL;
    }
    ap->threshold = cfg->alert_threshold;
    ap->top_percent = cfg->alert_top_percent;
    ap->cooldown_ms = cfg->alert_cooldown_ms;
    ap->holdout_percent = cfg->alert_holdout_percent;
    ap->min_examples = cfg->model_min_examples > 0 ? (uint64_t)cfg->model_min_examples : 0;
    ap->alert_medium = cfg->alert_medium;
    if (alert_buckets_parse(cfg->alert_buckets, &ap->cut_medium, &ap->cut_high, errstr,
                            errstr_size) != 0) {
        char err[256];
        snprintf(err, sizeof err, "alert.buckets: %s", errstr);
        snprintf(errstr, errstr_size, "%s", err);
        alert_policy_destroy(ap);
        return NULL;
    }
    const char *salt = cfg->alert_holdout_salt ? cfg->alert_holdout_salt : "";
    if (strlen(salt) > SALT_MAX_BYTES) {
        snprintf(errstr, errstr_size, "alert.holdout_salt: at most %d bytes", SALT_MAX_BYTES);
        alert_policy_destroy(ap);
        return NULL;
    }
    snprintf(ap->salt, sizeof ap->salt, "%s", salt);
    for (int i = 0; i < FEAT_DIM; i++)
        ap->names[i] = feat_info[i].name;
    if (alert_parse_actions(ap, cfg->alert_actions, cfg->model_k, errstr, errstr_size) != 0) {
        alert_policy_destroy(ap);
        return NULL;
    }
    return ap;
}

void alert_policy_destroy(alert_policy_t *ap)
{
    if (!ap)
        return;
    for (int i = 0; i < ap->n_pools; i++) {
        free(ap->pools[i].entries);
        free(ap->pools[i].cands);
        free(ap->pools[i].arena);
    }
    free(ap->pools);
    free(ap->rules);
    free(ap->out);
    free(ap);
}

/* ---- building an alert ---- */

/* 1 when feature i says something about this user: its value does not round to 0 (a user
 * whose only event was a cancel has tenure 0 and no active days: those explain nothing),
 * and it is not a "never" placeholder (days since a purchase that never happened). */
static int informative(int i, const double *hv, const feat_state_t *st)
{
    if (fabs(hv[i]) < 0.005)
        return 0;
    int never_active = feat_first_activity_ms(st) == FEAT_NEVER;
    switch (i) {
    case FEAT_DAYS_SINCE_ACTIVITY:
    case FEAT_MEAN_GAP_DAYS:
    case FEAT_RECENCY_GAP_RATIO:
    case FEAT_TENURE_DAYS:
    case FEAT_ACTIVE_DAYS_PER_30D:
        return !never_active;
    case FEAT_DAYS_SINCE_PURCHASE:
        return feat_last_purchase_ms(st) != FEAT_NEVER;
    default:
        return 1;
    }
}

static const char *direction_word(int i, int low)
{
    int trend = strstr(feat_info[i].name, "trend") != NULL;
    return low ? (trend ? "falling" : "low") : (trend ? "rising" : "high");
}

/* Top factors: the ALERT_TOP_FACTORS largest parts of the score's logit (model_explain: the
 * regression's and, for the recency, frequency and tenure features, the BTYD and recency
 * experts', each by its pool weight) among the informative features, largest first (ties:
 * lower index), each with the user's value at t_ms (hv, human units) and the direction of
 * z_i (against the population's typical user). Positive ones push toward churn; with fewer
 * positives than slots the largest negative ones fill the rest. A part of exactly 0 (a
 * feature no expert of the pool uses now: every feature but the three BTYD ones while the
 * regression's weight is 0) explains nothing and is listed only when the user has no other
 * informative feature (then the first such, by index). A user with fewer informative features
 * gets fewer factors (possibly none). */
static int top_factors(const model_t *m, const float *z, const double *hv, const feat_state_t *st,
                       int64_t t_ms, alert_factor_t *out, uint8_t *idx_out, uint8_t *low_out)
{
    float c[FEAT_DIM];
    ex_summary_t sum;
    ex_summary_of(model_experts(m), st, t_ms, &sum);
    model_explain(m, z, &sum, c);
    int idx[ALERT_TOP_FACTORS], n = 0, first_zero = -1;
    for (int i = 0; i < FEAT_DIM; i++) {
        if (!informative(i, hv, st))
            continue;
        if (c[i] == 0) {
            if (first_zero < 0)
                first_zero = i;
            continue;
        }
        double v = isfinite(c[i]) ? c[i] : -INFINITY;
        int pos = n;
        while (pos > 0) {
            double u = isfinite(c[idx[pos - 1]]) ? c[idx[pos - 1]] : -INFINITY;
            if (u >= v)
                break;
            pos--;
        }
        if (pos >= ALERT_TOP_FACTORS)
            continue;
        int last = n < ALERT_TOP_FACTORS ? n : ALERT_TOP_FACTORS - 1;
        for (int j = last; j > pos; j--)
            idx[j] = idx[j - 1];
        idx[pos] = i;
        if (n < ALERT_TOP_FACTORS)
            n++;
    }
    if (n == 0 && first_zero >= 0)
        idx[n++] = first_zero;
    for (int j = 0; j < n; j++) {
        int low = z[idx[j]] < 0;
        out[j].feature = feat_info[idx[j]].name;
        out[j].contribution = isfinite(c[idx[j]]) ? (double)c[idx[j]] : 0.0;
        out[j].value = hv[idx[j]];
        out[j].direction = direction_word(idx[j], low);
        if (idx_out)
            idx_out[j] = (uint8_t)idx[j];
        if (low_out)
            low_out[j] = (uint8_t)low;
    }
    return n;
}

/* The segment's name and archetype for this segment version, into *si: the model's frozen
 * name when it has one, else computed from the centre now and frozen in the model (which the
 * batch commits, so a restart names the segment the same). NULL for an unsegmented user. */
static const seg_info_t *segment_info(const alert_policy_t *ap, model_t *m, int seg, seg_info_t *si,
                                      int freeze)
{
    if (seg < 0 || seg >= model_k(m))
        return NULL;
    int arch;
    if (model_segment_name(m, seg, &arch, si->label, sizeof si->label)) {
        si->arch = (alert_archetype_t)arch;
        si->valid = 1;
        return si;
    }
    double centre[FEAT_DIM];
    char expl[sizeof si->label];
    if (model_segment_centre(m, seg, centre) != 0 ||
        model_segment_label(m, seg, ap->names, expl, sizeof expl) != 0)
        return NULL;
    si->arch = alert_archetype_of(centre);
    snprintf(si->label, sizeof si->label, "%s (%.120s)", alert_archetype_name(si->arch), expl);
    si->valid = 1;
    if (freeze)
        (void)model_set_segment_name(m, seg, (int)si->arch, si->label);
    return si;
}

/* freeze = 0: the segment's name is computed but not recorded in the model (describe). */
/* The read-only part of an alert (alert_prep_t). */
static void describe(const alert_input_t *in, alert_prep_t *out)
{
    out->valid = 1;
    feat_human_values(in->state, in->event_time_ms, out->features);
    for (int i = 0; i < FEAT_DIM; i++)
        assert(isfinite(out->features[i])); /* feat_human_values guarantees it */
    out->kind = alert_kind_of(out->features);
    out->n_factors = top_factors(in->model, in->z, out->features, in->state, in->event_time_ms,
                                 out->top_factors, out->factor_idx, out->factor_low);
}

static void fill(alert_policy_t *ap, const alert_input_t *in, size_t uid_len, alert_t *a,
                 uint8_t *factor_idx, uint8_t *factor_low, alert_archetype_t *arch_out, int freeze)
{
    memcpy(a->user_id, in->user_id, uid_len);
    a->user_id[uid_len] = '\0';
    alert_make_id(&in->trigger, in->user_id, uid_len, a->alert_id);
    a->event_time_ms = in->event_time_ms;
    a->churn_probability = in->p;
    a->risk_bucket = alert_bucket_of(in->p, ap->cut_medium, ap->cut_high);
    a->segment_id = in->seg;
    seg_info_t scratch;
    const seg_info_t *si = segment_info(ap, in->model, in->seg, &scratch, freeze);
    alert_archetype_t arch = si ? si->arch : ALERT_ARCH_NONE;
    snprintf(a->segment_label, sizeof a->segment_label, "%s", si ? si->label : UNSEGMENTED);
    alert_prep_t own;
    const alert_prep_t *pr = in->prep && in->prep->valid ? in->prep : NULL;
    if (!pr) {
        describe(in, &own);
        pr = &own;
    }
    memcpy(a->features, pr->features, sizeof a->features);
    a->kind = pr->kind;
    snprintf(a->recommended_action, sizeof a->recommended_action, "%s",
             alert_policy_action(ap, in->seg, a->risk_bucket, a->kind, arch));
    a->n_factors = pr->n_factors;
    for (int j = 0; j < pr->n_factors; j++) {
        a->top_factors[j] = pr->top_factors[j];
        if (factor_idx)
            factor_idx[j] = pr->factor_idx[j];
        if (factor_low)
            factor_low[j] = pr->factor_low[j];
    }
    a->model_version = (int64_t)model_version(in->model);
    a->arm = alert_arm_of(ap->salt, in->user_id, uid_len, ap->holdout_percent);
    if (in->trigger.is_event) {
        int64_t clock = feat_t_ref_ms(in->state);
        a->trigger = ALERT_BY_EVENT;
        a->created_at_ms =
            clock != FEAT_NEVER && clock > in->event_time_ms ? clock : in->event_time_ms;
    } else {
        a->trigger = ALERT_BY_TICK;
        a->created_at_ms = in->trigger.tick_ms;
    }
    if (arch_out)
        *arch_out = arch;
}

alert_bucket_t alert_policy_bucket(const alert_policy_t *ap, double p)
{
    return alert_bucket_of(p, ap->cut_medium, ap->cut_high);
}

alert_archetype_t alert_segment_archetype(const model_t *m, int seg)
{
    int arch;
    double centre[FEAT_DIM];
    if (seg < 0 || seg >= model_k(m) || model_dim(m) != FEAT_DIM)
        return ALERT_ARCH_NONE;
    if (model_segment_name(m, seg, &arch, NULL, 0))
        return arch >= 0 && arch < ALERT_ARCH_COUNT ? (alert_archetype_t)arch : ALERT_ARCH_NONE;
    if (model_segment_centre(m, seg, centre) != 0)
        return ALERT_ARCH_NONE;
    return alert_archetype_of(centre);
}

int alert_policy_describe(alert_policy_t *ap, const alert_input_t *in, alert_t *out)
{
    if (!ap || !in || !out || !in->user_id || !in->z || !in->state || !in->model)
        return -1;
    size_t uid_len = strnlen(in->user_id, EV_USER_ID_MAX + 1);
    if (uid_len == 0 || uid_len > EV_USER_ID_MAX || !(in->p >= 0.0 && in->p <= 1.0) ||
        model_dim(in->model) != FEAT_DIM)
        return -1;
    memset(out, 0, sizeof *out);
    fill(ap, in, uid_len, out, NULL, NULL, NULL, 0);
    return 0;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    return a + b;
}

/* ---- top-percent pools ---- */

static pool_t *pool_for(alert_policy_t *ap, int64_t tick_ms)
{
    pool_t *free_slot = NULL;
    for (int i = 0; i < ap->n_pools; i++) {
        if (ap->pools[i].active && ap->pools[i].tick_ms == tick_ms)
            return &ap->pools[i];
        if (!ap->pools[i].active && !free_slot)
            free_slot = &ap->pools[i];
    }
    if (!free_slot) {
        pool_t *np = realloc(ap->pools, (size_t)(ap->n_pools + 1) * sizeof *np);
        if (!np)
            return NULL;
        ap->pools = np;
        free_slot = &ap->pools[ap->n_pools++];
        memset(free_slot, 0, sizeof *free_slot);
    }
    free_slot->active = 1;
    free_slot->tick_ms = tick_ms;
    free_slot->n_entries = free_slot->n_cands = free_slot->arena_len = 0;
    return free_slot;
}

static int arena_put(pool_t *pl, const char *s, uint32_t *off)
{
    size_t n = strlen(s) + 1;
    if (pl->arena_len + n > UINT32_MAX)
        return -1;
    if (CS_GROW(pl->arena, pl->arena_cap, pl->arena_len + n, 64) != 0)
        return -1;
    memcpy(pl->arena + pl->arena_len, s, n);
    *off = (uint32_t)pl->arena_len;
    pl->arena_len += n;
    return 0;
}

static uint64_t uid_hash(const char *uid, size_t len)
{
    static const uint8_t key[16] = "cs-top-tiebreak0";
    return alert_siphash24(key, uid, len);
}

/* Adds the snapshot to the tick's ranking; a candidate (a = the alert it would be) is kept. */
static int pool_add(pool_t *pl, const alert_input_t *in, size_t uid_len, const alert_t *a,
                    const uint8_t *factor_idx, const uint8_t *factor_low, alert_archetype_t arch)
{
    if (pl->n_entries >= UINT32_MAX - 1 ||
        CS_GROW(pl->entries, pl->cap_entries, pl->n_entries + 1, 64))
        return -1;
    rank_entry_t *e = &pl->entries[pl->n_entries];
    e->p = in->p;
    e->uid_hash = uid_hash(in->user_id, uid_len);
    e->seq = (uint32_t)pl->n_entries;
    e->cand = CAND_NONE;
    if (a) {
        if (CS_GROW(pl->cands, pl->cap_cands, pl->n_cands + 1, 64) != 0)
            return -1;
        cand_t *c = &pl->cands[pl->n_cands];
        if (arena_put(pl, a->user_id, &c->uid_off) != 0 ||
            arena_put(pl, a->segment_label, &c->label_off) != 0)
            return -1;
        c->event_time_ms = a->event_time_ms;
        c->model_version = a->model_version;
        c->p = a->churn_probability;
        c->seg = a->segment_id;
        c->n_factors = (uint8_t)a->n_factors;
        for (int j = 0; j < a->n_factors; j++) {
            c->factor[j] = factor_idx[j];
            c->factor_low[j] = factor_low[j];
            c->contribution[j] = a->top_factors[j].contribution;
        }
        memcpy(c->features, a->features, sizeof c->features);
        c->bucket = (uint8_t)a->risk_bucket;
        c->arm = (uint8_t)a->arm;
        c->kind = (uint8_t)a->kind;
        c->arch = (uint8_t)arch;
        e->cand = (uint32_t)pl->n_cands++;
    }
    pl->n_entries++;
    return 0;
}

/* The alert a candidate stands for; byte for byte what consider would have built. */
static void cand_unpack(const alert_policy_t *ap, const pool_t *pl, const cand_t *c, alert_t *a)
{
    memset(a, 0, sizeof *a);
    const char *uid = pl->arena + c->uid_off;
    size_t uid_len = strlen(uid);
    memcpy(a->user_id, uid, uid_len + 1);
    alert_trigger_t t = {.is_event = 0, .tick_ms = pl->tick_ms};
    alert_make_id(&t, uid, uid_len, a->alert_id);
    a->event_time_ms = c->event_time_ms;
    a->churn_probability = c->p;
    a->risk_bucket = (alert_bucket_t)c->bucket;
    a->segment_id = c->seg;
    snprintf(a->segment_label, sizeof a->segment_label, "%s", pl->arena + c->label_off);
    snprintf(a->recommended_action, sizeof a->recommended_action, "%s",
             alert_policy_action(ap, c->seg, a->risk_bucket, (alert_kind_t)c->kind,
                                 (alert_archetype_t)c->arch));
    a->n_factors = c->n_factors;
    for (int j = 0; j < c->n_factors; j++) {
        a->top_factors[j].feature = feat_info[c->factor[j]].name;
        a->top_factors[j].contribution = c->contribution[j];
        a->top_factors[j].value = c->features[c->factor[j]];
        a->top_factors[j].direction = direction_word(c->factor[j], c->factor_low[j]);
    }
    a->model_version = c->model_version;
    a->arm = (alert_arm_t)c->arm;
    memcpy(a->features, c->features, sizeof a->features);
    a->kind = (alert_kind_t)c->kind;
    a->trigger = ALERT_BY_TICK; /* candidates are tick snapshots only */
    a->created_at_ms = pl->tick_ms;
}

static int rank_cmp(const void *pa, const void *pb)
{
    const rank_entry_t *a = pa, *b = pb;
    if (a->p != b->p)
        return a->p > b->p ? -1 : 1;
    if (a->uid_hash != b->uid_hash)
        return a->uid_hash < b->uid_hash ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* ---- decisions ---- */

/* consider's gates: whether the input ranks in its tick's pool, is gated (too few examples
 * learnt, or in cooldown), and is over the threshold. -1 on a bad input, else 0 and
 * *uid_len. */
static int gates(const alert_policy_t *ap, const alert_input_t *in, size_t *uid_len, int *ranked,
                 int *gated, int *over)
{
    if (!ap || !in || !in->user_id || !in->z || !in->state || !in->model)
        return -1;
    *uid_len = strnlen(in->user_id, EV_USER_ID_MAX + 1);
    if (*uid_len == 0 || *uid_len > EV_USER_ID_MAX || !(in->p >= 0.0 && in->p <= 1.0) ||
        model_dim(in->model) != FEAT_DIM) /* z and the contributions are FEAT_DIM long */
        return -1;
    *ranked = ap->top_percent > 0 && !in->trigger.is_event &&
              !(ap->has_done && in->trigger.tick_ms <= ap->done_through_ms);
    *gated = model_examples_seen(in->model) < ap->min_examples ||
             in->event_time_ms < feat_cooldown_until_ms(in->state);
    *over = in->p >= ap->threshold || (ap->alert_medium && in->p >= ap->cut_medium);
    return 0;
}

void alert_policy_prepare(const alert_policy_t *ap, const alert_input_t *in, alert_prep_t *out)
{
    size_t uid_len;
    int ranked, gated, over;
    out->valid = 0;
    if (gates(ap, in, &uid_len, &ranked, &gated, &over) == 0 && !gated && (over || ranked))
        describe(in, out);
}

int alert_policy_consider(alert_policy_t *ap, const alert_input_t *in, alert_t *out)
{
    size_t uid_len;
    int ranked, gated, over;
    if (!out || gates(ap, in, &uid_len, &ranked, &gated, &over) != 0)
        return -1;
    pool_t *pl = NULL;
    if (ranked && !(pl = pool_for(ap, in->trigger.tick_ms)))
        return -1;
    if (!gated && over) {
        if (pl && pool_add(pl, in, uid_len, NULL, NULL, NULL, ALERT_ARCH_NONE) != 0)
            return -1;
        memset(out, 0, sizeof *out);
        fill(ap, in, uid_len, out, NULL, NULL, NULL, 1);
        feat_set_cooldown_until_ms(in->state, add_sat(in->event_time_ms, ap->cooldown_ms));
        return 1;
    }
    if (!pl)
        return 0;
    if (gated)
        return pool_add(pl, in, uid_len, NULL, NULL, NULL, ALERT_ARCH_NONE);
    alert_t a;
    uint8_t factor_idx[ALERT_TOP_FACTORS], factor_low[ALERT_TOP_FACTORS];
    alert_archetype_t arch;
    memset(&a, 0, sizeof a);
    fill(ap, in, uid_len, &a, factor_idx, factor_low, &arch, 1);
    return pool_add(pl, in, uid_len, &a, factor_idx, factor_low, arch);
}

static int select_pool(alert_policy_t *ap, pool_t *pl, const alert_state_access_t *acc)
{
    size_t k = alert_top_count(pl->n_entries, ap->top_percent);
    if (k == 0)
        return 0;
    qsort(pl->entries, pl->n_entries, sizeof *pl->entries, rank_cmp);
    for (size_t i = 0; i < k; i++) {
        const rank_entry_t *e = &pl->entries[i];
        if (e->cand == CAND_NONE)
            continue;
        const cand_t *c = &pl->cands[e->cand];
        const char *uid = pl->arena + c->uid_off;
        feat_state_t *st = acc && acc->state ? acc->state(acc->opaque, uid) : NULL;
        if (!st || c->event_time_ms < feat_cooldown_until_ms(st))
            continue; /* gone, or alerted since it was considered */
        if (CS_GROW(ap->out, ap->cap_out, ap->n_out + 1, 64) != 0)
            return -1;
        cand_unpack(ap, pl, c, &ap->out[ap->n_out++]);
        feat_set_cooldown_until_ms(st, add_sat(c->event_time_ms, ap->cooldown_ms));
        if (acc->touched)
            acc->touched(acc->opaque, uid, st);
    }
    return 0;
}

int alert_policy_tick_done(alert_policy_t *ap, int64_t tick_ms, const alert_state_access_t *acc,
                           const alert_t **alerts, size_t *n)
{
    ap->n_out = 0;
    if (!ap->has_done || tick_ms > ap->done_through_ms) {
        ap->has_done = 1;
        ap->done_through_ms = tick_ms;
    }
    int rc = 0;
    for (;;) {
        /* oldest pending tick first: its alerts set cooldowns the later ticks must see */
        pool_t *next = NULL;
        for (int i = 0; i < ap->n_pools; i++) {
            pool_t *pl = &ap->pools[i];
            if (pl->active && pl->tick_ms <= tick_ms && (!next || pl->tick_ms < next->tick_ms))
                next = pl;
        }
        if (!next)
            break;
        if (rc == 0 && select_pool(ap, next, acc) != 0)
            rc = -1;
        next->active = 0;
    }
    *alerts = ap->out;
    *n = rc == 0 ? ap->n_out : 0;
    return rc;
}
