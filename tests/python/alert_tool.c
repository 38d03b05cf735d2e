/* Test helper for tests/python/test_alert_avro.py: builds deterministic alerts (through the
 * real policy with a trained model, plus hand-made edge cases), writes them with the alert
 * encoder in one framing to a message file (4-byte big-endian length, then the message) and
 * prints each alert's JSON line (alert_to_json) to stdout; also prints the encoder's
 * fingerprint and, for an independent check of the hashes, alert ids and arms.
 *   alert_tool write confluent|single-object|plain SCHEMA_ID FILE
 *   alert_tool fingerprint
 *   alert_tool ids */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "rng.h"

#define T0  1700006400000LL
#define DAY 86400000LL

static int die(const char *msg)
{
    fprintf(stderr, "alert_tool: %s\n", msg);
    return 1;
}

static model_t *mkmodel(void)
{
    char err[128];
    model_t *m = model_new(FEAT_DIM, 4, 7, NULL, err, sizeof err);
    if (!m)
        return NULL;
    enum { N = 256 };
    static float z[N * FEAT_DIM], y[N];
    rng_t r;
    rng_seed(&r, 42);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < FEAT_DIM; j++)
            z[i * FEAT_DIM + j] = (float)rng_normal(&r);
        y[i] = z[i * FEAT_DIM] - z[i * FEAT_DIM + 2] > 0 ? 1.0f : 0.0f;
    }
    if (lr_update(model_logreg(m), z, y, N, NULL) != 0 ||
        km_partial_fit(model_kmeans(m), z, N) != 0) {
        model_destroy(m);
        return NULL;
    }
    model_touch(m, N);
    return m;
}

/* Alerts the policy builds for a few users with histories, at ticks and on events. */
static size_t policy_alerts(alert_t *out, size_t cap)
{
    cfg_t *cfg = cfg_new();
    char err[256];
    if (!cfg || cfg_set(cfg, "alert.actions", "0:high=call \"now\",*:medium=mail,2:*=sms ✉",
                        "alert_tool", err, sizeof err) != 0)
        return 0;
    cfg->alert_threshold = 0.6;
    cfg->model_min_examples = 10;
    alert_policy_t *ap = alert_policy_new(cfg, err, sizeof err);
    model_t *m = mkmodel();
    cfg_destroy(cfg);
    size_t n = 0;
    rng_t r;
    rng_seed(&r, 9);
    static const char *const users[] = {
        "u-1", "alice", "Zoë \"quoted\" \\ back", "日本語ユーザー", "tab\there", "x"};
    for (size_t u = 0; ap && m && u < sizeof users / sizeof users[0] && n < cap; u++) {
        feat_state_t st;
        feat_state_init(&st);
        ev_event_t ev;
        memset(&ev, 0, sizeof ev);
        snprintf(ev.user_id, sizeof ev.user_id, "%s", users[u]);
        ev.user_id_len = (uint16_t)strlen(ev.user_id);
        for (int i = 0; i < 12; i++) {
            ev.type = (ev_type_t)rng_below(&r, EV_TYPE_COUNT);
            ev.amount = ev.type == EV_PURCHASE ? 10 + rng_uniform(&r) * 100 : 0;
            ev.event_time_ms = T0 - (int64_t)rng_below(&r, 60) * DAY;
            feat_apply(&st, &ev);
        }
        for (int k = 0; k < 3 && n < cap; k++) {
            float x[FEAT_DIM], z[FEAT_DIM], p;
            int seg;
            int64_t t = T0 + k * 20 * DAY;
            feat_vector(&st, t, x);
            model_score(m, x, NULL, 1, z, &p, &seg, NULL);
            alert_input_t in = {.user_id = users[u],
                                .trigger = {.is_event = k == 2,
                                            .tick_ms = t,
                                            .partition = (int32_t)u,
                                            .offset = 1000 + k},
                                .event_time_ms = t,
                                .p = 0.6 + 0.4 * ((double)(u * 3 + (size_t)k) / 18.0),
                                .seg = k == 1 ? -1 : seg,
                                .z = z,
                                .state = &st,
                                .model = m};
            if (alert_policy_consider(ap, &in, &out[n]) == 1)
                n++;
        }
    }
    alert_policy_destroy(ap);
    model_destroy(m);
    return n;
}

/* Hand-made alerts at the edges of every field type. */
static size_t edge_alerts(alert_t *out, size_t cap)
{
    size_t n = 0;
    static const double values[] = {0.0, -0.0, 1e300, -1e-300, 5e-324, 0.1, 123456789.125};
    for (int k = 0; k < 4 && n < cap; k++, n++) {
        alert_t *a = &out[n];
        memset(a, 0, sizeof *a);
        alert_trigger_t t = {
            .is_event = k & 1, .tick_ms = -DAY * k, .partition = 7, .offset = INT64_MAX - k};
        if (k == 0) {
            memset(a->user_id, 'L', EV_USER_ID_MAX); /* exactly the maximum length */
        } else {
            static const char *const ids[] = {"", "e\u0301 😀", "ctl \x01\x1f end", "\"\\/"};
            snprintf(a->user_id, sizeof a->user_id, "%s", ids[k]);
        }
        alert_make_id(&t, a->user_id, strlen(a->user_id), a->alert_id);
        a->event_time_ms = k == 2 ? 0 : (k == 3 ? 253402300799999LL /* 9999-12-31 */ : -DAY * k);
        a->churn_probability = k == 1 ? 0.0 : 1.0 / (k + 1);
        a->risk_bucket = (alert_bucket_t)(k % 3);
        a->segment_id = k == 3 ? 4095 : k - 1;
        memset(a->segment_label, k == 0 ? 'S' : 0, sizeof a->segment_label - 1);
        if (k)
            snprintf(a->segment_label, sizeof a->segment_label, "%s", k == 1 ? "" : "average");
        memset(a->recommended_action, 'A', sizeof a->recommended_action - 1);
        a->n_factors = k % (ALERT_TOP_FACTORS + 1);
        for (int j = 0; j < a->n_factors; j++) {
            a->top_factors[j].feature = feat_info[(j * 7 + k) % FEAT_DIM].name;
            a->top_factors[j].contribution = values[(j + k) % 7] * (j % 2 ? -1 : 1);
            a->top_factors[j].value = values[(j + k + 3) % 7];
            a->top_factors[j].direction = j % 2 ? "falling" : (k == 3 ? "" : "high");
        }
        a->model_version = k == 3 ? INT64_MAX : 100 + k; /* apart from the policy's 1 */
        a->arm = (alert_arm_t)(k % 2);
        for (int i = 0; i < FEAT_DIM; i++)
            a->features[i] = values[(i + k) % 7];
        a->kind = (alert_kind_t)(k % 3); /* unknown too: the decoder's view of an old alert */
        a->trigger = (alert_trigger_kind_t)((k + 1) % 3);
        a->created_at_ms = k == 3 ? a->event_time_ms : a->event_time_ms + k * 1000;
    }
    return n;
}

static int cmd_write(const char *framing, const char *id_text, const char *path)
{
    ev_wire_t wire;
    if (ev_wire_parse(framing, &wire) != 0 || wire == EV_WIRE_AUTO)
        return die("bad framing");
    char err[256];
    alert_encoder_t *enc = alert_encoder_new(wire, (int32_t)atol(id_text), err, sizeof err);
    if (!enc)
        return die(err);
    static alert_t alerts[64];
    size_t n = policy_alerts(alerts, 32);
    if (n < 8)
        return die("the policy built too few alerts");
    n += edge_alerts(alerts + n, 64 - n);
    FILE *f = fopen(path, "wb");
    if (!f)
        return die("cannot open the output file");
    static char json[16384];
    for (size_t i = 0; i < n; i++) {
        const void *buf;
        size_t len;
        if (alert_encode(enc, &alerts[i], &buf, &len) != 0)
            return die("alert_encode failed");
        uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                          (uint8_t)len};
        fwrite(hdr, 1, 4, f);
        fwrite(buf, 1, len, f);
        if (alert_to_json(&alerts[i], json, sizeof json) < 0)
            return die("alert_to_json failed");
        puts(json);
    }
    alert_encoder_destroy(enc);
    return fclose(f) == 0 ? 0 : die("write failed");
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "write") == 0)
        return cmd_write(argv[2], argv[3], argv[4]);
    if (argc == 2 && strcmp(argv[1], "fingerprint") == 0) {
        char err[256];
        alert_encoder_t *enc = alert_encoder_new(EV_WIRE_SINGLE_OBJECT, 0, err, sizeof err);
        if (!enc)
            return die(err);
        printf("%016llx\n", (unsigned long long)alert_encoder_fingerprint(enc));
        alert_encoder_destroy(enc);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "ids") == 0) {
        static const char *const users[] = {"u-1", "Zoë", "a|b", ""};
        for (int u = 0; u < 4; u++) {
            alert_trigger_t t = {.is_event = 0, .tick_ms = T0 + u * DAY};
            char id[ALERT_ID_LEN + 1];
            alert_make_id(&t, users[u], strlen(users[u]), id);
            printf("tick %s %lld %s\n", id, (long long)t.tick_ms, users[u]);
            t = (alert_trigger_t){.is_event = 1, .partition = u, .offset = -5 + u * 1000};
            alert_make_id(&t, users[u], strlen(users[u]), id);
            printf("event %s %d %lld\n", id, u, (long long)t.offset);
        }
        for (int i = 0; i < 200; i++) {
            char uid[32];
            snprintf(uid, sizeof uid, "user-%d", i);
            printf("arm %s %s\n", alert_arm_name(alert_arm_of("churnstream", uid, strlen(uid), 10)),
                   uid);
        }
        return 0;
    }
    fprintf(stderr, "usage: alert_tool write FRAMING SCHEMA_ID FILE | fingerprint | ids\n");
    return 2;
}
