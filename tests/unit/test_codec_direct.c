/* The direct decoder against the general path (walk, Avro-C's resolver, extract): for the
 * reader schema and evolved writers (extra fields of every kind, reordered fields, reversed
 * and plain optional strings, more enum symbols), random events including bad ones (empty,
 * long, NUL and non-UTF-8 user ids, non-finite amounts, long optional strings) and random
 * mutations of their bytes, both paths give the same reason, the same event bytes and the
 * same error text; a container record's length comes out the same. Writers with type
 * promotions keep the general path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec_internal.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static int below(int n)
{
    return (int)(next() % (uint64_t)n);
}

/* A writer's fields as this test encodes them. */
typedef enum {
    W_UID,
    W_TIME,
    W_TYPE,
    W_AMOUNT,
    W_OPT_NULL_FIRST, /* ["null","string"] */
    W_OPT_STR_FIRST,  /* ["string","null"] */
    W_OPT_PLAIN,      /* "string" */
    W_NULL,
    W_INT,
    W_BOOL,
    W_FLOAT,
    W_BYTES,
    W_MAP_LONG,
    W_ARRAY_REC, /* array of {a: int, b: string} */
    W_FIXED4,
    W_UNION_NULL_INT,
} wkind_t;

typedef struct writer_s {
    const char *json;
    wkind_t kinds[16];
    int n;
    int enum_size;
    int direct; /* expected: the direct path applies */
} writer_t;

#define EV_ENUM                                                                                    \
    "{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":[\"session_start\",\"page_view\","      \
    "\"search\",\"add_to_cart\",\"remove_from_cart\",\"purchase\",\"refund\",\"support_ticket\","  \
    "\"coupon_redeem\",\"subscription_cancel\",\"other\"],\"default\":\"other\"}"
#define EV_ENUM_EVOLVED                                                                            \
    "{\"type\":\"enum\",\"name\":\"EventType\",\"symbols\":[\"wishlist_add\",\"purchase\","        \
    "\"page_view\",\"session_start\",\"search\",\"other\",\"refund\",\"add_to_cart\"],"            \
    "\"default\":\"other\"}"
#define REC(fields)                                                                                \
    "{\"type\":\"record\",\"name\":\"Event\",\"namespace\":\"io.churnstream\",\"fields\":[" fields \
    "]}"

static const writer_t writers[] = {
    {REC("{\"name\":\"user_id\",\"type\":\"string\"},"
         "{\"name\":\"event_time\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-"
         "millis\"}},"
         "{\"name\":\"event_type\",\"type\":" EV_ENUM "},"
         "{\"name\":\"amount\",\"type\":\"double\",\"default\":0.0},"
         "{\"name\":\"item_id\",\"type\":[\"null\",\"string\"],\"default\":null},"
         "{\"name\":\"category\",\"type\":[\"null\",\"string\"],\"default\":null},"
         "{\"name\":\"channel\",\"type\":[\"null\",\"string\"],\"default\":null}"),
     {W_UID, W_TIME, W_TYPE, W_AMOUNT, W_OPT_NULL_FIRST, W_OPT_NULL_FIRST, W_OPT_NULL_FIRST},
     7,
     11,
     1},
    {REC("{\"name\":\"extra_map\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
         "{\"name\":\"channel\",\"type\":\"string\"},"
         "{\"name\":\"event_type\",\"type\":" EV_ENUM_EVOLVED "},"
         "{\"name\":\"n\",\"type\":\"int\"},"
         "{\"name\":\"user_id\",\"type\":\"string\"},"
         "{\"name\":\"flag\",\"type\":\"boolean\"},"
         "{\"name\":\"items\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
         "\"name\":\"Line\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\","
         "\"type\":\"string\"}]}}},"
         "{\"name\":\"category\",\"type\":[\"string\",\"null\"]},"
         "{\"name\":\"event_time\",\"type\":\"long\"},"
         "{\"name\":\"f\",\"type\":\"float\"},"
         "{\"name\":\"raw\",\"type\":\"bytes\"},"
         "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F4\",\"size\":4}},"
         "{\"name\":\"maybe\",\"type\":[\"null\",\"int\"]},"
         "{\"name\":\"nothing\",\"type\":\"null\"}"),
     {W_MAP_LONG, W_OPT_PLAIN, W_TYPE, W_INT, W_UID, W_BOOL, W_ARRAY_REC, W_OPT_STR_FIRST, W_TIME,
      W_FLOAT, W_BYTES, W_FIXED4, W_UNION_NULL_INT, W_NULL},
     14,
     8,
     1},
    /* item_id as the null type, amount and the other optionals absent */
    {REC("{\"name\":\"user_id\",\"type\":\"string\"},"
         "{\"name\":\"item_id\",\"type\":\"null\"},"
         "{\"name\":\"event_time\",\"type\":\"long\"},"
         "{\"name\":\"event_type\",\"type\":" EV_ENUM "}"),
     {W_UID, W_NULL, W_TIME, W_TYPE},
     4,
     11,
     1},
    /* promotions: int event_time, float amount: the general path only */
    {REC("{\"name\":\"user_id\",\"type\":\"string\"},"
         "{\"name\":\"event_time\",\"type\":\"int\"},"
         "{\"name\":\"event_type\",\"type\":" EV_ENUM "},"
         "{\"name\":\"amount\",\"type\":\"float\"}"),
     {W_UID, W_INT, W_TYPE, W_FLOAT},
     4,
     11,
     0},
};

static uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
    return cs_put_string(p, s, n);
}

/* A user id: usually fine, sometimes empty, too long, with a NUL or a bad UTF-8 byte. */
static size_t make_uid(char *buf)
{
    int k = below(20);
    size_t n = k == 0 ? 0 : k == 1 ? 256 + (size_t)below(40) : 1 + (size_t)below(30);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + below(26));
    if (n > 2 && k == 2)
        buf[below((int)n)] = '\0';
    if (n > 2 && k == 3)
        buf[below((int)n)] = (char)0xff;
    if (n > 3 && k == 4) { /* a 2-byte UTF-8 character */
        buf[0] = (char)0xc3;
        buf[1] = (char)0xa9;
    }
    return n;
}

static uint8_t *put_optional_value(uint8_t *p, char *tmp)
{
    size_t n = below(8) == 0 ? 120 + (size_t)below(40) : (size_t)below(12);
    for (size_t i = 0; i < n; i++)
        tmp[i] = (char)(below(10) == 0 ? 0xc3 : 'a' + below(26));
    return put_str(p, tmp, n);
}

/* Encodes one random datum of writer w into buf; returns its length. */
static size_t encode(const writer_t *w, uint8_t *buf)
{
    uint8_t *p = buf;
    char tmp[400];
    for (int i = 0; i < w->n; i++) {
        switch (w->kinds[i]) {
        case W_UID:
            p = put_str(p, tmp, make_uid(tmp));
            break;
        case W_TIME:
            p = cs_put_long(p, (int64_t)(next() % 4000000000000ULL) - (below(10) == 0 ? 1 : 0));
            break;
        case W_TYPE:
            p = cs_put_long(p, below(w->enum_size));
            break;
        case W_AMOUNT: {
            double v =
                below(10) == 0 ? (below(2) ? 1.0 / 0.0 : 0.0 / 0.0) : (double)below(10000) / 7;
            p = cs_put_double(p, v);
            break;
        }
        case W_OPT_NULL_FIRST:
        case W_OPT_STR_FIRST: {
            int present = below(3) != 0;
            int branch = (w->kinds[i] == W_OPT_NULL_FIRST) == present;
            p = cs_put_long(p, branch);
            if (present)
                p = put_optional_value(p, tmp);
            break;
        }
        case W_OPT_PLAIN:
            p = put_optional_value(p, tmp);
            break;
        case W_NULL:
            break;
        case W_INT:
            p = cs_put_long(p, (int32_t)next());
            break;
        case W_BOOL:
            *p++ = (uint8_t)below(2);
            break;
        case W_FLOAT:
            memset(p, below(256), 4);
            p += 4;
            break;
        case W_BYTES:
            p = put_str(p, "\x01\x02\x03", (size_t)below(4));
            break;
        case W_MAP_LONG: {
            int n = below(3);
            if (n) {
                p = cs_put_long(p, n);
                for (int k = 0; k < n; k++) {
                    p = put_str(p, "key", 3);
                    p = cs_put_long(p, (int64_t)next());
                }
            }
            p = cs_put_long(p, 0);
            break;
        }
        case W_ARRAY_REC: {
            int n = below(3);
            if (n) {
                p = cs_put_long(p, n);
                for (int k = 0; k < n; k++) {
                    p = cs_put_long(p, k);
                    p = put_str(p, "line", 4);
                }
            }
            p = cs_put_long(p, 0);
            break;
        }
        case W_FIXED4:
            memcpy(p, "abcd", 4);
            p += 4;
            break;
        case W_UNION_NULL_INT:
            if (below(2)) {
                p = cs_put_long(p, 1);
                p = cs_put_long(p, below(1000));
            } else {
                p = cs_put_long(p, 0);
            }
            break;
        }
    }
    return (size_t)(p - buf);
}

/* Both paths on buf[0..len): same reason, event bytes and error text. */
static void compare(cs_plan_t *plan, avro_reader_t rd, const uint8_t *buf, size_t len)
{
    ev_event_t a, b; /* untouched by a datum that cannot be walked: start equal */
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    char why_a[256] = "", why_b[256] = "";
    ev_reason_t ra = cs_plan_decode(plan, rd, buf, len, &a, why_a, sizeof why_a);
    ev_reason_t rb = cs_plan_decode_general(plan, rd, buf, len, &b, why_b, sizeof why_b);
    assert_int_equal(ra, rb);
    assert_memory_equal(&a, &b, sizeof a);
    if (ra != EV_OK)
        assert_string_equal(why_a, why_b);
}

static void run_writer(const writer_t *w, int rounds)
{
    char err[256];
    avro_schema_t reader = cs_reader_schema_new(err, sizeof err), writer = NULL;
    assert_non_null(reader);
    assert_int_equal(avro_schema_from_json_length(w->json, strlen(w->json), &writer), 0);
    cs_plan_t *plan = cs_plan_new(writer, reader, err, sizeof err);
    if (!plan)
        fail_msg("plan: %s", err);
    assert_int_equal(cs_plan_is_direct(plan), w->direct);
    avro_reader_t rd = avro_reader_memory("", 0);
    uint8_t buf[8192], two[16384];
    int ok = 0;
    for (int r = 0; r < rounds; r++) {
        size_t len = encode(w, buf);
        compare(plan, rd, buf, len);
        ev_event_t e;
        char why[256];
        ok += cs_plan_decode(plan, rd, buf, len, &e, why, sizeof why) == EV_OK;
        /* a container block: the first record's length, then the second record */
        size_t len2 = encode(w, two + len);
        memcpy(two, buf, len);
        int64_t used = 0;
        ev_reason_t rn = cs_plan_decode_next(plan, rd, two, len + len2, &used, &e, why, sizeof why);
        assert_int_equal(used, (int64_t)len);
        assert_int_equal(rn, cs_plan_decode_general(plan, rd, buf, len, &e, why, sizeof why));
        /* mutations: flipped bytes, a cut, trailing bytes */
        for (int m = 0; m < 8; m++) {
            uint8_t mut[8200];
            size_t n = len;
            memcpy(mut, buf, len);
            int how = below(3);
            if (how == 0 && n > 0)
                mut[below((int)n)] ^= (uint8_t)(1 + below(255));
            else if (how == 1 && n > 0)
                n = (size_t)below((int)n);
            else
                mut[n++] = (uint8_t)below(256);
            compare(plan, rd, mut, n);
        }
    }
    assert_true(ok > rounds / 3); /* the valid events are the common case */
    avro_reader_free(rd);
    cs_plan_destroy(plan);
    avro_schema_decref(writer);
    avro_schema_decref(reader);
}

static void test_reader_schema(void **state)
{
    (void)state;
    run_writer(&writers[0], 4000);
}

static void test_evolved_writer(void **state)
{
    (void)state;
    run_writer(&writers[1], 4000);
}

static void test_sparse_writer(void **state)
{
    (void)state;
    run_writer(&writers[2], 2000);
}

static void test_promotions_take_the_general_path(void **state)
{
    (void)state;
    run_writer(&writers[3], 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_schema),
        cmocka_unit_test(test_evolved_writer),
        cmocka_unit_test(test_sparse_writer),
        cmocka_unit_test(test_promotions_take_the_general_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
