/* The Kafka alert sink (kafka_sink.h): stages a batch's encoded alerts for the Redis outbox
 * and, once the batch committed, lists them for the daemon's producer. It owns the alert
 * encoder and the staged copies; the producer, the outbox claims and the delivery reports
 * stay in dm_producer.c and churn_handler.c, unchanged. */
#include "kafka_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "log.h"

typedef struct ks_alert_s {
    char id[ALERT_ID_LEN + 1];
    char user_id[EV_USER_ID_MAX + 1];
    uint8_t *value; /* the encoded alert, owned */
    size_t len;
    int arm, bucket;
    alert_kind_t kind;
    alert_trigger_kind_t trigger;
} ks_alert_t;

typedef struct ks_s {
    alert_encoder_t *enc;
    ks_alert_t *alerts; /* staged, in emission order */
    size_t n, cap;
    int oom;
    /* the commit's outbox arrays (ks_outbox) */
    const char **ob_ids, **ob_uids;
    const uint8_t **ob_vals;
    size_t *ob_lens;
    size_t cap_ob;
    /* what the last flush handed over (ks_handed) */
    dm_alert_t *handed;
    size_t n_handed, cap_handed;
} ks_t;

static int ks_emit(void *self, const alert_t *a)
{
    ks_t *ks = self;
    const void *buf;
    size_t len;
    if (alert_encode(ks->enc, a, &buf, &len) != 0) {
        log_error("alerts", "alert %s for user %s cannot be encoded: dropped", a->alert_id,
                  a->user_id);
        return -1;
    }
    uint8_t *value = malloc(len);
    if (!value || CS_GROW(ks->alerts, ks->cap, ks->n + 1, 64) != 0) {
        free(value);
        ks->oom = 1;
        return -1;
    }
    memcpy(value, buf, len);
    ks_alert_t *x = &ks->alerts[ks->n++];
    x->value = value;
    x->len = len;
    memcpy(x->id, a->alert_id, sizeof(x->id));
    snprintf(x->user_id, sizeof(x->user_id), "%s", a->user_id);
    x->arm = (int)a->arm;
    x->bucket = (int)a->risk_bucket;
    x->kind = a->kind;
    x->trigger = a->trigger;
    return 0;
}

/* After the batch's commit: the staged alerts, as the producer takes them. */
static int ks_flush(void *self, char *errstr, size_t errstr_size)
{
    ks_t *ks = self;
    ks->n_handed = 0;
    if (CS_GROW(ks->handed, ks->cap_handed, ks->n, 64) != 0) {
        snprintf(errstr, errstr_size,
                 "out of memory handing %zu alerts to the producer (they stay in the outbox "
                 "and are re-sent at the next start)",
                 ks->n);
        return -1;
    }
    for (size_t i = 0; i < ks->n; i++) {
        const ks_alert_t *a = &ks->alerts[i];
        ks->handed[i] = (dm_alert_t){.id = a->id,
                                     .key = a->user_id,
                                     .key_len = strlen(a->user_id),
                                     .value = a->value,
                                     .len = a->len,
                                     .arm = a->arm,
                                     .bucket = a->bucket,
                                     .kind = alert_kind_name(a->kind),
                                     .trigger = alert_trigger_name(a->trigger)};
    }
    ks->n_handed = ks->n;
    return 0;
}

/* Frees the staged alerts' encodings; the arrays stay for the next batch. */
static void free_staged(ks_t *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->alerts[i].value);
    ks->n = ks->n_handed = 0;
    ks->oom = 0;
}

static void ks_close(void *self)
{
    ks_t *ks = self;
    if (!ks)
        return;
    free_staged(ks);
    free(ks->alerts);
    free(ks->ob_ids);
    free(ks->ob_uids);
    free(ks->ob_vals);
    free(ks->ob_lens);
    free(ks->handed);
    alert_encoder_destroy(ks->enc);
    free(ks);
}

int ks_open(alert_sink_t *out, const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    ks_t *ks = calloc(1, sizeof(*ks));
    if (!ks) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    ev_wire_t framing = cfg->alerts_framing == CFG_FRAMING_PLAIN           ? EV_WIRE_PLAIN
                        : cfg->alerts_framing == CFG_FRAMING_SINGLE_OBJECT ? EV_WIRE_SINGLE_OBJECT
                                                                           : EV_WIRE_CONFLUENT;
    if (!(ks->enc = alert_encoder_new(framing, cfg->alerts_schema_id, errstr, errstr_size))) {
        free(ks);
        return -1;
    }
    *out = (alert_sink_t){.self = ks, .emit = ks_emit, .flush = ks_flush, .close = ks_close};
    return 0;
}

/* The sink's state, or NULL when s is not a Kafka sink. */
static ks_t *ks_of(const alert_sink_t *s)
{
    return s && s->emit == ks_emit ? s->self : NULL;
}

void ks_clear(alert_sink_t *s)
{
    ks_t *ks = ks_of(s);
    if (ks)
        free_staged(ks);
}

int ks_out_of_memory(const alert_sink_t *s)
{
    const ks_t *ks = ks_of(s);
    return ks ? ks->oom : 0;
}

int ks_outbox(alert_sink_t *s, st_commit_t *c)
{
    ks_t *ks = ks_of(s);
    c->n_outbox = 0;
    if (!ks)
        return 0;
    if (CS_GROW4(ks->ob_ids, ks->ob_uids, ks->ob_vals, ks->ob_lens, ks->cap_ob, ks->n + 1, 64) != 0)
        return -1;
    for (size_t i = 0; i < ks->n; i++) {
        ks->ob_ids[i] = ks->alerts[i].id;
        ks->ob_uids[i] = ks->alerts[i].user_id;
        ks->ob_vals[i] = ks->alerts[i].value;
        ks->ob_lens[i] = ks->alerts[i].len;
    }
    c->n_outbox = ks->n;
    c->outbox_ids = ks->ob_ids;
    c->outbox_user_ids = ks->ob_uids;
    c->outbox_values = ks->ob_vals;
    c->outbox_lens = ks->ob_lens;
    return 0;
}

const dm_alert_t *ks_handed(const alert_sink_t *s, size_t *n)
{
    const ks_t *ks = ks_of(s);
    *n = ks ? ks->n_handed : 0;
    return ks ? ks->handed : NULL;
}
