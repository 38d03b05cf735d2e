/* `churnstream inspect`: one user's stored state read back from Redis (features with names,
 * units and values at a time, activity times, churn probability and segment under the
 * stored model), or the model itself (segments with labels and z-centres, weights). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "cli_args.h"
#include "commands.h"
#include "config_load.h"
#include "feat.h"
#include "model.h"
#include "pipeline.h"
#include "store_redis.h"
#include "user_view.h"

static void usage(FILE *out)
{
    fputs("usage: churnstream inspect user ID [--at TIME] [--model FILE] [--json]\n"
          "       churnstream inspect model [--model FILE]\n"
          "\n"
          "user: reads the user's record from Redis (key <state.prefix>u:<ID>) and prints\n"
          "first/last activity, every feature (name, unit, value, model input) at TIME\n"
          "(default now) and, when a model is stored (or given), the churn probability and\n"
          "the segment with its label, then the latest score the daemon stored\n"
          "(<state.prefix>score:<ID>). Exit status 1 when the user is unknown.\n"
          "--json: one JSON object instead (the body of the daemon's GET /v1/users/{id}):\n"
          "features by name, score, bucket, segment {id, name, label}, kind, action, arm,\n"
          "top factors {feature, value, direction, contribution}, experts, last_score.\n"
          "model: the stored model (or FILE): version, the experts (weights, graded log-loss,\n"
          "BG/NBD's fit), segments (size, label, centres as z-scores of each feature) and\n"
          "the logistic regression's weights by |weight|; with a shared model\n"
          "(model.sync_interval > 0), per partition the journal entries merged and\n"
          "committed, and the event time its labels reach.\n"
          "\n"
          "options:\n"
          "  --at TIME      epoch milliseconds, or UTC 2024-05-01, 2024-05-01T12:00:00[Z]\n"
          "  --model FILE   a model snapshot file (replay --model-out) instead of Redis's\n"
          "  --json         user: one JSON object on one line\n"
          "  --help         this text\n"
          "\n"
          "Config keys that matter here: redis.*, state.prefix, alert.* (bucket cut points,\n"
          "actions and holdout arm of the JSON).\n",
          out);
}

static void format_time(int64_t t_ms, char *buf, size_t cap)
{
    if (t_ms == FEAT_NEVER) {
        snprintf(buf, cap, "never");
        return;
    }
    time_t secs = (time_t)(t_ms >= 0 ? t_ms / 1000 : -((-t_ms + 999) / 1000));
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(buf, cap, "%lld ms", (long long)t_ms);
        return;
    }
    char b[32];
    if (strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        b[0] = '\0';
    snprintf(buf, cap, "%s.%03dZ (%lld)", b, (int)(t_ms - (int64_t)secs * 1000), (long long)t_ms);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The model from FILE, else from Redis; *m = NULL when Redis holds none. Configured as the
 * daemon configures it (horizon, experts, open and lull days: pl_configure_model), so its
 * scores are the daemon's. */
static int load_model(const cfg_t *cfg, st_redis_t *st, const char *file, model_t **m, char *err,
                      size_t errsz)
{
    *m = NULL;
    if (file) {
        *m = model_load_file(file, err, errsz);
        if (*m)
            pl_configure_model(cfg, *m);
        return *m ? 0 : -1;
    }
    uint8_t *buf;
    size_t len;
    if (st_redis_load_model(st, &buf, &len, err, errsz) != 0)
        return -1;
    if (!buf)
        return 0;
    char why[400];
    *m = model_decode(buf, len, why, sizeof(why));
    free(buf);
    if (!*m) {
        snprintf(err, errsz, "redis %s: stored model: %s", st_redis_address(st), why);
        return -1;
    }
    pl_configure_model(cfg, *m);
    return 0;
}

static const char *const *feature_names(void)
{
    static const char *names[FEAT_DIM];
    for (int i = 0; i < FEAT_DIM; i++)
        names[i] = feat_info[i].name;
    return names;
}

/* The --json form: uv_user_json, the same object GET /v1/users/{id} answers. */
static int inspect_user_json(const cfg_t *cfg, const char *uid, const user_rec_t *rec, model_t *m,
                             const st_fields_t *last, int64_t at_ms)
{
    char err[512];
    alert_policy_t *ap = alert_policy_new(cfg, err, sizeof(err));
    if (!ap) {
        fprintf(stderr, "churnstream inspect: %s\n", err);
        return 1;
    }
    uv_input_t in = {
        .user_id = uid, .rec = rec, .model = m, .policy = ap, .last_score = last, .at_ms = at_ms};
    json_t *j = uv_user_json(&in);
    char *text = j ? uv_dump(j) : NULL;
    json_decref(j);
    alert_policy_destroy(ap);
    if (!text) {
        fprintf(stderr,
                "churnstream inspect: user \"%s\": cannot build the JSON (not UTF-8, or "
                "out of memory)\n",
                uid);
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static void print_last_score(const st_fields_t *last)
{
    if (last->n == 0) {
        printf("latest score      none stored (the daemon writes it at each scoring)\n");
        return;
    }
    printf("latest score     ");
    for (size_t i = 0; i < last->n; i++)
        printf(" %s=%s", last->names[i], last->values[i]);
    putchar('\n');
}

static int inspect_user(const cfg_t *cfg, st_redis_t *st, const char *uid, int64_t at_ms,
                        int at_given, const char *model_file, int json)
{
    char err[512], t[96];
    user_rec_t rec;
    int found;
    st_fields_t last;
    if (st_redis_read_user(st, uid, strlen(uid), &rec, &found, &last, err, sizeof(err)) != 0) {
        fprintf(stderr, "churnstream inspect: %s\n", err);
        return 1;
    }
    if (!found) {
        st_fields_free(&last);
        fprintf(stderr, "churnstream inspect: unknown user \"%s\": no key %su:%s on redis %s\n",
                uid, cfg->state_prefix, uid, st_redis_address(st));
        return 1;
    }
    model_t *m = NULL;
    if (load_model(cfg, st, model_file, &m, err, sizeof(err)) != 0) {
        st_fields_free(&last);
        fprintf(stderr, "churnstream inspect: %s\n", err);
        return 1;
    }
    if (json) {
        int rc = inspect_user_json(cfg, uid, &rec, m, &last, at_ms);
        model_destroy(m);
        st_fields_free(&last);
        return rc;
    }
    printf("user            %s\n", uid);
    format_time(feat_first_activity_ms(&rec.feat), t, sizeof(t));
    printf("first activity  %s\n", t);
    format_time(feat_last_activity_ms(&rec.feat), t, sizeof(t));
    printf("last activity   %s\n", t);
    format_time(feat_last_purchase_ms(&rec.feat), t, sizeof(t));
    printf("last purchase   %s\n", t);
    format_time(feat_cooldown_until_ms(&rec.feat), t, sizeof(t));
    printf("alert cooldown  until %s\n", t);
    format_time(rec.scored_tick_ms, t, sizeof(t));
    printf("last scored     tick %s\n", t);
    format_time(at_ms, t, sizeof(t));
    printf("features at     %s%s\n\n", t, at_given ? "" : " (now; --at TIME for another time)");
    feat_print_user(stdout, &rec.feat, at_ms);
    if (!m) {
        printf("\nno model stored under %smodel: no score\n", cfg->state_prefix);
        print_last_score(&last);
        st_fields_free(&last);
        return 0;
    }
    float x[FEAT_DIM], z[FEAT_DIM], p;
    int seg;
    feat_vector(&rec.feat, at_ms, x);
    ex_summary_t sum;
    ex_scores_t ex;
    ex_summary_of(model_experts(m), &rec.feat, at_ms, &sum);
    model_score(m, x, &sum, 1, z, &p, &seg, &ex);
    printf("\nchurn probability %.4f (model version %llu, %llu examples)\n", (double)p,
           (unsigned long long)model_version(m), (unsigned long long)model_examples_seen(m));
    double w[EX_N];
    ex_weights(model_experts(m), w);
    printf("experts           ");
    for (int i = 0; i < EX_N; i++)
        printf("%s%s %.4f (weight %.3f)", i ? ", " : "", ex_name((ex_expert_t)i), ex.p[i], w[i]);
    printf("\nBTYD summary      %.0f repeat active days, last %.0f and now %.1f days after the "
           "first\n",
           sum.rep, sum.t_x, sum.age);
    if (seg >= 0) {
        char label[256];
        model_segment_label(m, seg, feature_names(), label, sizeof(label));
        printf("segment           %d: %s\n", seg, label);
    } else {
        printf("segment           none yet (k-means not seeded)\n");
    }
    print_last_score(&last);
    st_fields_free(&last);
    model_destroy(m);
    return 0;
}

typedef struct weight_s {
    int i;
    double w;
} weight_t;

static int cmp_abs_desc(const void *a, const void *b)
{
    double x = fabs(((const weight_t *)a)->w), y = fabs(((const weight_t *)b)->w);
    if (x != y)
        return x > y ? -1 : 1;
    return ((const weight_t *)a)->i - ((const weight_t *)b)->i;
}

/* The experts behind the score: weights, graded log-loss, BG/NBD's population fit. */
/* A day number (days since 1970-01-01) as YYYY-MM-DD. */
static void day_text(int64_t day, char *out, size_t cap)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%d", &tm))
        snprintf(out, cap, "day %lld", (long long)day);
}

static void print_experts(const ex_t *ex)
{
    double w[EX_N], loss[EX_N], users, ll;
    uint64_t ticks;
    int iters;
    ex_weights(ex, w);
    ex_mean_losses(ex, loss);
    ex_losses(ex, (double[EX_N]){0}, &ticks);
    ex_fit_stats(ex, &users, &ll, &iters);
    const bgnbd_params_t *bg = ex_bgnbd_params(ex);
    printf("\nexperts  (score = sigmoid(sum of weight x logit); %llu complete ticks graded; "
           "regression's prior at %.0f%% of its share)\n",
           (unsigned long long)ticks, 100 * ex_logreg_share(ex));
    for (int i = 0; i < EX_N; i++)
        printf("  %-8s weight %.3f  graded log-loss %.4f\n", ex_name((ex_expert_t)i), w[i],
               loss[i]);
    printf("  BG/NBD   r %.4g, alpha %.4g days, a %.4g, b %.4g (fit on %.0f users, LL %.1f, %d "
           "Newton steps); horizon %.0f days; churn rate of complete ticks %.4f\n",
           bg->r, bg->alpha, bg->a, bg->b, users, ll, iters, ex_horizon_days(ex), ex_base_rate(ex));
    double sloss[EX_SHAPES];
    ex_shape_losses(ex, sloss);
    printf("  shape    BG/CNBD-k, k %d speaks (graded log-loss", ex_shape_k[ex_shape(ex)]);
    for (int s = 0; s < EX_SHAPES; s++)
        printf("%s k%d %.4f", s ? "," : "", ex_shape_k[s], sloss[s]);
    printf(")\n");
    for (int s = 1; s < EX_SHAPES; s++) {
        const bgnbd_params_t *q = ex_shape_params(ex, s);
        printf("  k %d      r %.4g, alpha %.4g days, a %.4g, b %.4g\n", ex_shape_k[s], q->r,
               q->alpha, q->a, q->b);
    }
    const od_t *od = ex_open_days(ex);
    if (od->ndays > 0) { /* alpha's days are open days (open_days.h) */
        int64_t end = od->base + od->ndays;
        char from[16], to[16];
        day_text(od->base, from, sizeof(from));
        day_text(end - 1, to, sizeof(to));
        printf("  open days %u of the %u days %s .. %s", (unsigned)od->cum[od->ndays], od->ndays,
               from, to);
        if (od->lull) /* model.lull_days */
            printf(", %.1f with lulls as part days", od_before(od, end) - od_before(od, od->base));
        printf("; %.1f%% of the last 365\n", 100 * od_share(od, end, 365));
    }
}

/* A shared model's merge state (model.sync_interval > 0): what is merged, what waits. */
static void print_shared(st_redis_t *st)
{
    char err[512];
    st_journal_status_t js;
    if (st_redis_journal_status(st, &js, err, sizeof err) != 0) {
        fprintf(stderr, "churnstream inspect: shared model state: %s\n", err);
        return;
    }
    if (js.n > 0) {
        uint64_t waiting = 0;
        for (size_t i = 0; i < js.n; i++)
            waiting += js.committed[i] > js.merged[i] ? js.committed[i] - js.merged[i] : 0;
        char when[64] = "never";
        if (js.mark != INT64_MIN)
            format_time(js.mark, when, sizeof when);
        printf("shared   journals of %zu partitions merged, %llu entries waiting; labels merged "
               "through event time %s\n        ",
               js.n, (unsigned long long)waiting, when);
        for (size_t i = 0; i < js.n; i++)
            printf(" p%d %llu/%llu", (int)js.parts[i], (unsigned long long)js.merged[i],
                   (unsigned long long)js.committed[i]);
        printf("  (merged/committed)\n");
    }
    st_journal_status_free(&js);
}

static int inspect_model(const cfg_t *cfg, st_redis_t *st, const char *model_file)
{
    char err[512];
    model_t *m = NULL;
    if (load_model(cfg, st, model_file, &m, err, sizeof(err)) != 0) {
        fprintf(stderr, "churnstream inspect: %s\n", err);
        return 1;
    }
    if (!m) {
        fprintf(stderr, "churnstream inspect: no model stored under %smodel on redis %s\n",
                cfg->state_prefix, st_redis_address(st));
        return 1;
    }
    km_t *km = model_kmeans(m);
    lr_t *lr = model_logreg(m);
    int k = model_k(m), dim = model_dim(m);
    printf("model    version %llu, %llu examples, %d features, k = %d, segment version %llu\n",
           (unsigned long long)model_version(m), (unsigned long long)model_examples_seen(m), dim, k,
           (unsigned long long)km_segment_version(km));
    if (!model_file)
        print_shared(st);
    print_experts(model_experts(m));
    double ca, cb, cw;
    model_calibration(m, &ca, &cb, &cw);
    printf("  regression calibration p = sigmoid(%.4f logit %+.4f) (%.0f labels' decayed weight)\n",
           ca, cb, cw);
    const char *const *names = dim == FEAT_DIM ? feature_names() : NULL;
    if (!km_is_seeded(km)) {
        printf("segments none yet (k-means not seeded)\n");
    } else {
        printf("\nsegments\n");
        for (int j = 0; j < k; j++) {
            char label[256];
            km_label(km, j, names, label, sizeof(label));
            printf("  [%d] size %10.1f  %s\n", j, km_count(km, j), label);
        }
        printf("\ncentres (z-scores)\n  %-24s", "feature");
        for (int j = 0; j < k; j++) {
            char h[16];
            snprintf(h, sizeof(h), "seg %d", j);
            printf(" %9s", h);
        }
        putchar('\n');
        for (int i = 0; i < dim; i++) {
            printf("  %-24s", names ? names[i] : "");
            for (int j = 0; j < k; j++)
                printf(" %9.2f", km_centre(km, j)[i]);
            putchar('\n');
        }
    }
    weight_t *w = malloc((size_t)dim * sizeof(*w));
    if (!w) {
        model_destroy(m);
        fprintf(stderr, "churnstream inspect: out of memory\n");
        return 1;
    }
    for (int i = 0; i < dim; i++)
        w[i] = (weight_t){i, lr_weight(lr, i)};
    qsort(w, (size_t)dim, sizeof(*w), cmp_abs_desc);
    printf("\nweights (logistic regression on z-scores, by |weight|; bias %.4f)\n", lr_bias(lr));
    for (int i = 0; i < dim; i++)
        printf("  %-24s %+9.4f\n", names ? names[w[i].i] : "", w[i].w);
    free(w);
    model_destroy(m);
    return 0;
}

int cmd_inspect(cfg_t *cfg, int argc, char **argv)
{
    enum { O_AT = 1, O_MODEL, O_JSON, O_HELP };
    static const struct option longopts[] = {{"at", required_argument, 0, O_AT},
                                             {"model", required_argument, 0, O_MODEL},
                                             {"json", no_argument, 0, O_JSON},
                                             {"help", no_argument, 0, O_HELP},
                                             {0, 0, 0, 0}};
    const char *model_file = NULL;
    int64_t at_ms = 0;
    int at_given = 0, json = 0, c;
    optind = 1;
    opterr = 0;
    /* GNU getopt permutes: options may follow the operands ("inspect user ID --at T"); an
     * id starting with '-' goes after "--". */
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_AT:
            if (uv_parse_time(optarg, &at_ms) != 0) {
                fprintf(stderr,
                        "churnstream inspect: --at: expected epoch ms or a UTC time "
                        "like 2024-05-01T12:00:00Z, got \"%s\"\n",
                        optarg);
                return 2;
            }
            at_given = 1;
            break;
        case O_MODEL:
            model_file = optarg;
            break;
        case O_JSON:
            json = 1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            cli_bad_option("inspect", argv[optind - 1], usage);
            return 2;
        }
    }
    const char *what = optind < argc ? argv[optind++] : NULL;
    const char *uid = NULL;
    if (what && strcmp(what, "user") == 0 && optind < argc)
        uid = argv[optind++];
    int ok_user = what && strcmp(what, "user") == 0 && uid;
    int ok_model = what && strcmp(what, "model") == 0;
    if ((!ok_user && !ok_model) || optind != argc) {
        fprintf(stderr, "churnstream inspect: expected \"user ID\" or \"model\"\n");
        usage(stderr);
        return 2;
    }
    if (json && !ok_user) {
        fprintf(stderr, "churnstream inspect: --json is for \"inspect user ID\"\n");
        return 2;
    }
    if (!at_given)
        at_ms = now_ms();

    char err[512];
    st_redis_t *st = NULL;
    if (model_file && cfg_check_model_in(cfg, model_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "churnstream inspect: %s\n", err);
        return 2;
    }
    /* A model file alone needs no Redis. */
    if (!(ok_model && model_file) && !(st = st_redis_new(cfg, err, sizeof(err)))) {
        fprintf(stderr, "churnstream inspect: %s\n", err);
        return 1;
    }
    int rc = ok_user ? inspect_user(cfg, st, uid, at_ms, at_given, model_file, json)
                     : inspect_model(cfg, st, model_file);
    st_redis_destroy(st);
    return rc;
}
