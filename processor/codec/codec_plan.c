/* Decode plan for one writer schema: Avro-C's resolved writer plus the two things Avro-C 1.11
 * gets wrong for schema evolution. (1) It refuses a reader field the writer lacks even when
 * the field has a default, so the plan resolves against the reader schema restricted to the
 * writer's fields and fills defaults itself. (2) It copies enum *indices* from writer to
 * reader without looking at symbol names (a writer with a new or reordered symbol silently
 * becomes another event type), so the plan maps writer symbols to ev_type_t by name, with
 * unknown symbols falling back to the enum default `other`. */
#include "codec_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_USER_ID, F_EVENT_TIME, F_EVENT_TYPE, F_AMOUNT, F_ITEM_ID, F_CATEGORY, F_CHANNEL, F_COUNT };

/* Reader fields and whether the reader schema gives them a default (schemas/event.avsc:
 * amount 0.0, optional strings null). A test checks this table against the schema. */
static const struct {
    const char *name;
    int has_default;
} plan_fields[F_COUNT] = {
    {"user_id", 0}, {"event_time", 0}, {"event_type", 0}, {"amount", 1},
    {"item_id", 1}, {"category", 1},   {"channel", 1},
};

struct cs_plan_s {
    avro_schema_t writer;     /* ref */
    avro_schema_t eff_reader; /* reader fields the writer also has, reader order */
    avro_value_iface_t *reader_iface, *resolver_iface;
    avro_value_t reader_value, resolved_value; /* reused for every message */
    int field_index[F_COUNT];                  /* in eff_reader; -1 = use the default */
    ev_type_t *enum_map;                       /* writer symbol index -> event type */
    int enum_count;
    cs_walk_t *walk;
    cs_direct_t *direct; /* NULL: every datum takes the general path */
    uint64_t fingerprint;
};

/* The writer's EventType enum: the field's type, or the enum branch of a union. */
static avro_schema_t writer_event_enum(avro_schema_t field)
{
    field = cs_schema_unlink(field);
    if (field && avro_typeof(field) == AVRO_ENUM)
        return field;
    if (field && avro_typeof(field) == AVRO_UNION) {
        for (size_t i = 0; i < avro_schema_union_size(field); i++) {
            avro_schema_t b = cs_schema_unlink(avro_schema_union_branch(field, (int)i));
            if (avro_typeof(b) == AVRO_ENUM)
                return b;
        }
    }
    return NULL;
}

cs_plan_t *cs_plan_new(avro_schema_t writer, avro_schema_t reader, char *errstr, size_t errstr_size)
{
    cs_plan_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    writer = cs_schema_unlink(writer);
    p->writer = avro_schema_incref(writer);
    if (avro_typeof(writer) != AVRO_RECORD || strcmp(avro_schema_name(writer), "Event") != 0) {
        snprintf(errstr, errstr_size, "writer schema is not a record named Event");
        goto fail;
    }
    if (cs_schema_fingerprint(writer, &p->fingerprint) != 0) {
        snprintf(errstr, errstr_size, "cannot build the writer schema's canonical form");
        goto fail;
    }

    p->eff_reader = avro_schema_record(avro_schema_name(reader), avro_schema_namespace(reader));
    if (!p->eff_reader) {
        snprintf(errstr, errstr_size, "cannot build reader view: %s", avro_strerror());
        goto fail;
    }
    int n_eff = 0;
    for (int f = 0; f < F_COUNT; f++) {
        p->field_index[f] = -1;
        if (avro_schema_record_field_get_index(writer, plan_fields[f].name) < 0) {
            if (!plan_fields[f].has_default) {
                snprintf(errstr, errstr_size,
                         "writer schema lacks field %s, which has no default in the reader",
                         plan_fields[f].name);
                goto fail;
            }
            continue;
        }
        avro_schema_t rf = avro_schema_record_field_get(reader, plan_fields[f].name);
        if (!rf || avro_schema_record_field_append(p->eff_reader, plan_fields[f].name, rf)) {
            snprintf(errstr, errstr_size, "cannot build reader view for field %s",
                     plan_fields[f].name);
            goto fail;
        }
        p->field_index[f] = n_eff++;
    }

    avro_schema_t wenum =
        writer_event_enum(avro_schema_record_field_get(writer, plan_fields[F_EVENT_TYPE].name));
    if (!wenum) {
        snprintf(errstr, errstr_size, "writer field event_type is not an enum");
        goto fail;
    }
    p->enum_count = avro_schema_enum_number_of_symbols(wenum);
    p->enum_map = calloc(p->enum_count > 0 ? (size_t)p->enum_count : 1, sizeof *p->enum_map);
    if (!p->enum_map) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    for (int i = 0; i < p->enum_count; i++) {
        ev_type_t t;
        p->enum_map[i] = ev_type_parse(avro_schema_enum_get(wenum, i), &t) == 0 ? t : EV_OTHER;
    }

    p->reader_iface = avro_generic_class_from_schema(p->eff_reader);
    if (!p->reader_iface) {
        snprintf(errstr, errstr_size, "reader class: %s", avro_strerror());
        goto fail;
    }
    p->resolver_iface = avro_resolved_writer_new(writer, p->eff_reader);
    if (!p->resolver_iface) {
        snprintf(errstr, errstr_size, "writer schema does not resolve against Event: %s",
                 avro_strerror());
        goto fail;
    }
    if (avro_generic_value_new(p->reader_iface, &p->reader_value) != 0) {
        snprintf(errstr, errstr_size, "reader value: %s", avro_strerror());
        goto fail;
    }
    if (avro_resolved_writer_new_value(p->resolver_iface, &p->resolved_value) != 0) {
        snprintf(errstr, errstr_size, "resolved value: %s", avro_strerror());
        goto fail;
    }
    avro_resolved_writer_set_dest(&p->resolved_value, &p->reader_value);

    p->walk = cs_walk_new(writer, errstr, errstr_size);
    if (!p->walk)
        goto fail;
    p->direct = cs_direct_new(writer, p->walk);
    return p;
fail:
    cs_plan_destroy(p);
    return NULL;
}

void cs_plan_destroy(cs_plan_t *p)
{
    if (!p)
        return;
    /* the resolved value holds a reference to reader_value: drop it first */
    if (p->resolved_value.self)
        avro_value_decref(&p->resolved_value);
    if (p->reader_value.self)
        avro_value_decref(&p->reader_value);
    if (p->resolver_iface)
        avro_value_iface_decref(p->resolver_iface);
    if (p->reader_iface)
        avro_value_iface_decref(p->reader_iface);
    if (p->eff_reader)
        avro_schema_decref(p->eff_reader);
    if (p->writer)
        avro_schema_decref(p->writer);
    cs_direct_destroy(p->direct);
    cs_walk_destroy(p->walk);
    free(p->enum_map);
    free(p);
}

int cs_plan_is_direct(const cs_plan_t *p)
{
    return p->direct != NULL;
}

uint64_t cs_plan_fingerprint(const cs_plan_t *p)
{
    return p->fingerprint;
}

avro_value_t *cs_plan_resolved_value(cs_plan_t *p)
{
    return &p->resolved_value;
}

static int get_field(cs_plan_t *p, int f, avro_value_t *out)
{
    return avro_value_get_by_index(&p->reader_value, (size_t)p->field_index[f], out, NULL);
}

/* Optional string field: the reader union is ["null","string"], branch 1 holds the string. */
static int get_optional(cs_plan_t *p, int f, cs_raw_str_t *out)
{
    avro_value_t u, branch;
    int disc;
    size_t size;
    *out = (cs_raw_str_t){0};
    if (p->field_index[f] < 0)
        return 0;
    if (get_field(p, f, &u) || avro_value_get_discriminant(&u, &disc))
        return -1;
    if (disc != 1)
        return 0;
    if (avro_value_get_current_branch(&u, &branch) ||
        avro_value_get_string(&branch, &out->s, &size))
        return -1;
    out->has = 1;
    out->len = size ? size - 1 : 0; /* size counts the NUL */
    return 0;
}

ev_reason_t cs_plan_extract(cs_plan_t *p, ev_event_t *out, char *why, size_t why_size)
{
    avro_value_t v;
    size_t size;
    cs_raw_event_t raw = {0};
    if (get_field(p, F_USER_ID, &v) || avro_value_get_string(&v, &raw.user_id.s, &size) ||
        get_field(p, F_EVENT_TIME, &v) || avro_value_get_long(&v, &raw.event_time_ms) ||
        get_field(p, F_EVENT_TYPE, &v) || avro_value_get_enum(&v, &raw.type_index) ||
        (p->field_index[F_AMOUNT] >= 0 &&
         (get_field(p, F_AMOUNT, &v) || avro_value_get_double(&v, &raw.amount))) ||
        get_optional(p, F_ITEM_ID, &raw.item_id) || get_optional(p, F_CATEGORY, &raw.category) ||
        get_optional(p, F_CHANNEL, &raw.channel)) {
        memset(out, 0, sizeof *out);
        snprintf(why, why_size, "resolved value: %s", avro_strerror());
        return EV_ERR_UNDECODABLE;
    }
    raw.user_id.has = 1;
    raw.user_id.len = size ? size - 1 : 0;
    return cs_plan_validate(p, &raw, out, why, why_size);
}

/* Copies at most cap bytes of an optional string, cutting back to a UTF-8 boundary so a
 * truncated value stays valid UTF-8, and stopping at an embedded NUL so the C string and
 * its re-encoding agree. */
static void copy_truncated(char *dst, size_t cap, const char *src, size_t len)
{
    const char *nul = memchr(src, '\0', len);
    if (nul)
        len = (size_t)(nul - src);
    if (len > cap) {
        len = cap;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void copy_optional(const cs_raw_str_t *r, uint8_t *has, char *dst)
{
    *has = r->has;
    dst[0] = '\0';
    if (r->has)
        copy_truncated(dst, EV_STR_MAX, r->s, r->len);
}

ev_reason_t cs_plan_validate(const cs_plan_t *p, const cs_raw_event_t *raw, ev_event_t *out,
                             char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    const char *s = raw->user_id.s;
    size_t uid_len = raw->user_id.len;
    /* The time first, so a rejected event still says when it happened (replay's
     * --rejects-out, the DLQ detail). */
    out->event_time_ms = raw->event_time_ms;
    if (uid_len == 0) {
        snprintf(why, why_size, "user_id is empty");
        return EV_ERR_MISSING_USER_ID;
    }
    if (uid_len > EV_USER_ID_MAX) {
        snprintf(why, why_size, "user_id is %zu bytes, more than %d", uid_len, EV_USER_ID_MAX);
        /* Keep the first EV_USER_ID_MAX bytes (cut on a UTF-8 boundary) so the reject can be
         * traced to its user; the event itself is never applied. */
        size_t keep = EV_USER_ID_MAX;
        while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
            keep--;
        if (!memchr(s, '\0', keep) && ev_utf8_valid(s, keep, NULL)) {
            memcpy(out->user_id, s, keep);
            out->user_id_len = (uint16_t)keep;
        }
        return EV_ERR_USER_ID_TOO_LONG;
    }
    if (memchr(s, '\0', uid_len)) {
        /* the id becomes a Redis key and a CSV cell: an embedded NUL would alias users */
        snprintf(why, why_size, "user_id contains a NUL byte");
        return EV_ERR_UNDECODABLE;
    }
    size_t bad_at;
    if (!ev_utf8_valid(s, uid_len, &bad_at)) {
        /* Avro strings are UTF-8: a raw byte would become a Redis key no consumer can
         * read back, and an alert whose user (U+FFFD) matches nobody. */
        snprintf(why, why_size, "user_id is not valid UTF-8 (byte %zu)", bad_at);
        return EV_ERR_INVALID_UTF8;
    }
    memcpy(out->user_id, s, uid_len);
    out->user_id_len = (uint16_t)uid_len;
    /* the writer's index; the walk checked its range */
    int e = raw->type_index;
    out->type = (e >= 0 && e < p->enum_count) ? p->enum_map[e] : EV_OTHER;
    out->amount = raw->amount;
    copy_optional(&raw->item_id, &out->has_item_id, out->item_id);
    copy_optional(&raw->category, &out->has_category, out->category);
    copy_optional(&raw->channel, &out->has_channel, out->channel);
    if (!isfinite(out->amount)) {
        snprintf(why, why_size, "amount is not finite");
        return EV_ERR_NON_FINITE_AMOUNT;
    }
    return EV_OK;
}

int64_t cs_plan_datum_len(const cs_plan_t *p, const uint8_t *buf, size_t len, char *why,
                          size_t why_size)
{
    return cs_walk_check(p->walk, buf, len, why, why_size);
}

ev_reason_t cs_plan_decode_general(cs_plan_t *p, avro_reader_t reader, const uint8_t *buf,
                                   size_t len, ev_event_t *out, char *why, size_t why_size)
{
    int64_t used = cs_walk_check(p->walk, buf, len, why, why_size);
    if (used < 0)
        return EV_ERR_UNDECODABLE;
    if ((size_t)used != len) {
        /* a complete record followed by more bytes is a framing error, not padding */
        snprintf(why, why_size, "%zu trailing bytes after the record", len - (size_t)used);
        return EV_ERR_UNDECODABLE;
    }
    avro_reader_memory_set_source(reader, (const char *)buf, (int64_t)len);
    if (avro_value_read(reader, &p->resolved_value) != 0) {
        snprintf(why, why_size, "avro: %s", avro_strerror());
        return EV_ERR_UNDECODABLE;
    }
    return cs_plan_extract(p, out, why, why_size);
}

ev_reason_t cs_plan_decode(cs_plan_t *p, avro_reader_t reader, const uint8_t *buf, size_t len,
                           ev_event_t *out, char *why, size_t why_size)
{
    cs_raw_event_t raw;
    size_t used;
    if (p->direct && cs_direct_read(p->direct, buf, len, &raw, &used) == 0 && used == len)
        return cs_plan_validate(p, &raw, out, why, why_size);
    return cs_plan_decode_general(p, reader, buf, len, out, why, why_size);
}

ev_reason_t cs_plan_decode_next(cs_plan_t *p, avro_reader_t reader, const uint8_t *buf, size_t len,
                                int64_t *used, ev_event_t *out, char *why, size_t why_size)
{
    cs_raw_event_t raw;
    size_t n;
    if (p->direct && cs_direct_read(p->direct, buf, len, &raw, &n) == 0) {
        *used = (int64_t)n;
        return cs_plan_validate(p, &raw, out, why, why_size);
    }
    *used = cs_plan_datum_len(p, buf, len, why, why_size);
    if (*used < 0)
        return EV_ERR_UNDECODABLE;
    return cs_plan_decode_general(p, reader, buf, (size_t)*used, out, why, why_size);
}
