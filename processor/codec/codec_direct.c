/* The direct decoder (see codec_internal.h): a per-writer program of one step per writer
 * field, run over the bytes in one pass. */
#include "codec_internal.h"

#include <stdlib.h>
#include <string.h>

typedef enum {
    STEP_WALK,     /* a field the reader does not use (or a null): walked, bounds-checked */
    STEP_USER_ID,  /* string */
    STEP_TIME,     /* long */
    STEP_TYPE,     /* enum: the writer's index */
    STEP_AMOUNT,   /* double */
    STEP_OPT_PAIR, /* ["null","string"] or ["string","null"] into an optional string */
    STEP_OPT_STR,  /* a plain string into an optional string */
} step_kind_t;

typedef struct step_s {
    uint8_t kind;
    uint8_t null_branch; /* STEP_OPT_PAIR: the null branch's index (0 or 1) */
    uint8_t target;      /* STEP_OPT_*: 0 item_id, 1 category, 2 channel */
    uint32_t enum_size;  /* STEP_TYPE */
} step_t;

struct cs_direct_s {
    const cs_walk_t *walk; /* borrowed from the plan */
    step_t *steps;         /* one per writer field, in writer order */
    size_t nsteps;
};

/* The step for an optional string field of writer type t, or -1 when not eligible. */
static int optional_step(avro_schema_t t, step_t *st)
{
    avro_type_t k = avro_typeof(t);
    if (k == AVRO_NULL) {
        st->kind = STEP_WALK; /* always absent: the reader's default */
        return 0;
    }
    if (k == AVRO_STRING) {
        st->kind = STEP_OPT_STR;
        return 0;
    }
    if (k != AVRO_UNION || avro_schema_union_size(t) != 2)
        return -1;
    avro_type_t b0 = avro_typeof(cs_schema_unlink(avro_schema_union_branch(t, 0)));
    avro_type_t b1 = avro_typeof(cs_schema_unlink(avro_schema_union_branch(t, 1)));
    if (!((b0 == AVRO_NULL && b1 == AVRO_STRING) || (b0 == AVRO_STRING && b1 == AVRO_NULL)))
        return -1;
    st->kind = STEP_OPT_PAIR;
    st->null_branch = b0 == AVRO_NULL ? 0 : 1;
    return 0;
}

/* The step of writer field `name` of type t; -1 when its type is not the reader's own. */
static int field_step(const char *name, avro_schema_t t, step_t *st)
{
    static const char *const optional[] = {"item_id", "category", "channel"};
    avro_type_t k = avro_typeof(t);
    memset(st, 0, sizeof *st);
    if (strcmp(name, "user_id") == 0) {
        st->kind = STEP_USER_ID;
        return k == AVRO_STRING ? 0 : -1;
    }
    if (strcmp(name, "event_time") == 0) {
        st->kind = STEP_TIME;
        return k == AVRO_INT64 ? 0 : -1;
    }
    if (strcmp(name, "event_type") == 0) {
        st->kind = STEP_TYPE;
        st->enum_size = k == AVRO_ENUM ? (uint32_t)avro_schema_enum_number_of_symbols(t) : 0;
        return k == AVRO_ENUM ? 0 : -1;
    }
    if (strcmp(name, "amount") == 0) {
        st->kind = STEP_AMOUNT;
        return k == AVRO_DOUBLE ? 0 : -1;
    }
    for (uint8_t i = 0; i < 3; i++) {
        if (strcmp(name, optional[i]) == 0) {
            st->target = i;
            return optional_step(t, st);
        }
    }
    st->kind = STEP_WALK;
    return 0;
}

cs_direct_t *cs_direct_new(avro_schema_t writer, const cs_walk_t *walk)
{
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    return NULL; /* doubles are read by memcpy: little-endian hosts only */
#endif
    writer = cs_schema_unlink(writer);
    if (!writer || avro_typeof(writer) != AVRO_RECORD)
        return NULL;
    size_t n = avro_schema_record_size(writer);
    if (n != cs_walk_fields(walk))
        return NULL;
    cs_direct_t *d = calloc(1, sizeof *d);
    if (!d || !(d->steps = calloc(n ? n : 1, sizeof *d->steps))) {
        cs_direct_destroy(d);
        return NULL;
    }
    d->walk = walk;
    d->nsteps = n;
    for (size_t i = 0; i < n; i++) {
        const char *name = avro_schema_record_field_name(writer, (int)i);
        avro_schema_t t = cs_schema_unlink(avro_schema_record_field_get_by_index(writer, (int)i));
        if (!name || !t || field_step(name, t, &d->steps[i]) != 0) {
            cs_direct_destroy(d);
            return NULL;
        }
    }
    return d;
}

void cs_direct_destroy(cs_direct_t *d)
{
    if (!d)
        return;
    free(d->steps);
    free(d);
}

/* A string's bytes: length varint, then that many bytes. */
static int read_string(cs_cursor_t *c, cs_raw_str_t *out)
{
    int64_t n;
    if (cs_read_varint(c, 10, &n) != 0 || n < 0 || n > c->end - c->p)
        return -1;
    out->s = (const char *)c->p;
    out->len = (size_t)n;
    out->has = 1;
    c->p += n;
    return 0;
}

/* The optional string a step writes (step_t.target). */
static cs_raw_str_t *optional_of(cs_raw_event_t *raw, uint8_t target)
{
    return target == 0 ? &raw->item_id : target == 1 ? &raw->category : &raw->channel;
}

static int run_step(const cs_direct_t *d, size_t i, cs_cursor_t *c, cs_raw_event_t *raw)
{
    const step_t *st = &d->steps[i];
    int64_t v;
    switch ((step_kind_t)st->kind) {
    case STEP_WALK:
        return cs_walk_field(d->walk, i, c);
    case STEP_USER_ID:
        return read_string(c, &raw->user_id);
    case STEP_TIME:
        return cs_read_varint(c, 10, &raw->event_time_ms);
    case STEP_TYPE:
        if (cs_read_varint(c, 5, &v) != 0 || v < 0 || v >= (int64_t)st->enum_size)
            return -1;
        raw->type_index = (int)v;
        return 0;
    case STEP_AMOUNT:
        if (c->end - c->p < 8)
            return -1;
        memcpy(&raw->amount, c->p, 8); /* IEEE 754 little-endian, as this host */
        c->p += 8;
        return 0;
    case STEP_OPT_PAIR:
        if (cs_read_varint(c, 10, &v) != 0 || (v != 0 && v != 1))
            return -1;
        if (v == st->null_branch)
            return 0; /* absent, as cs_direct_read's zeroed start says */
        return read_string(c, optional_of(raw, st->target));
    case STEP_OPT_STR:
        return read_string(c, optional_of(raw, st->target));
    }
    return -1;
}

int cs_direct_read(const cs_direct_t *d, const uint8_t *buf, size_t len, cs_raw_event_t *raw,
                   size_t *used)
{
    cs_cursor_t c = {buf, buf, buf + len, NULL, 0};
    memset(raw, 0, sizeof *raw);
    for (size_t i = 0; i < d->nsteps; i++)
        if (run_step(d, i, &c, raw) != 0)
            return -1;
    *used = (size_t)(c.p - buf);
    return 0;
}
