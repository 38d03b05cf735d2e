/* Unit tests for the Avro codec: exact bytes, round trips in every framing, every reject
 * reason from a crafted message, truncation at every length, evolved writer schemas
 * (tests/fixtures/schemas/<id>.avsc) by Confluent id and fingerprint, container files.
 * Run from the repository root (the Makefile does). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "codec_internal.h"

#define FIXTURES "tests/fixtures/schemas"
/* CRC-64-AVRO of the reader schema's canonical form; cross-checked against fastavro in
 * tests/python/test_avro_interop.py (wire bytes 95 d9 59 57 72 f9 e1 39). */
#define READER_FP 0x39e1f9725759d995ULL

static ev_event_t mk(const char *uid, int64_t t, ev_type_t type, double amount, const char *item,
                     const char *cat, const char *chan)
{
    ev_event_t ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.user_id, sizeof ev.user_id, "%s", uid);
    ev.user_id_len = (uint16_t)strlen(ev.user_id);
    ev.event_time_ms = t;
    ev.type = type;
    ev.amount = amount;
    if (item) {
        ev.has_item_id = 1;
        snprintf(ev.item_id, sizeof ev.item_id, "%s", item);
    }
    if (cat) {
        ev.has_category = 1;
        snprintf(ev.category, sizeof ev.category, "%s", cat);
    }
    if (chan) {
        ev.has_channel = 1;
        snprintf(ev.channel, sizeof ev.channel, "%s", chan);
    }
    return ev;
}

static void assert_event_equal(const ev_event_t *a, const ev_event_t *b)
{
    assert_int_equal(a->user_id_len, b->user_id_len);
    assert_memory_equal(a->user_id, b->user_id, a->user_id_len + 1);
    assert_int_equal(a->event_time_ms, b->event_time_ms);
    assert_int_equal(a->type, b->type);
    assert_memory_equal(&a->amount, &b->amount, sizeof a->amount); /* bit-exact, -0.0 too */
    assert_int_equal(a->has_item_id, b->has_item_id);
    assert_int_equal(a->has_category, b->has_category);
    assert_int_equal(a->has_channel, b->has_channel);
    assert_string_equal(a->item_id, b->item_id);
    assert_string_equal(a->category, b->category);
    assert_string_equal(a->channel, b->channel);
}

static ev_decoder_t *decoder(const char *dir)
{
    char err[512] = "";
    ev_decoder_t *d = ev_decoder_new(dir, err, sizeof err);
    if (!d)
        fail_msg("ev_decoder_new(%s): %s", dir ? dir : "NULL", err);
    return d;
}

/* ---- names ---- */

static void test_names(void **state)
{
    static const struct {
        ev_reason_t r;
        const char *code;
    } reasons[] = {
        {EV_OK, "ok"},
        {EV_ERR_UNDECODABLE, "undecodable"},
        {EV_ERR_UNKNOWN_SCHEMA, "unknown_schema"},
        {EV_ERR_MISSING_USER_ID, "missing_user_id"},
        {EV_ERR_USER_ID_TOO_LONG, "user_id_too_long"},
        {EV_ERR_NON_FINITE_AMOUNT, "non_finite_amount"},
        {EV_ERR_TIME_OUT_OF_WINDOW, "time_out_of_window"},
        {EV_ERR_INVALID_UTF8, "invalid_utf8"},
        {EV_ERR_COUNT, "unknown"},
    };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        assert_string_equal(ev_reason_code(reasons[i].r), reasons[i].code);

    static const struct {
        const char *name;
        int rc;
        ev_wire_t w;
    } wires[] = {
        {"auto", 0, EV_WIRE_AUTO},
        {"confluent", 0, EV_WIRE_CONFLUENT},
        {"single-object", 0, EV_WIRE_SINGLE_OBJECT},
        {"plain", 0, EV_WIRE_PLAIN},
        {"Plain", -1, EV_WIRE_AUTO},
        {"", -1, EV_WIRE_AUTO},
    };
    for (size_t i = 0; i < sizeof wires / sizeof wires[0]; i++) {
        ev_wire_t w = EV_WIRE_AUTO;
        assert_int_equal(ev_wire_parse(wires[i].name, &w), wires[i].rc);
        assert_int_equal(w, wires[i].w);
        if (wires[i].rc == 0)
            assert_string_equal(ev_wire_name(w), wires[i].name);
    }
}

/* ---- schemas ---- */

static void test_fingerprint(void **state)
{
    char err[256];
    avro_schema_t r = cs_reader_schema_new(err, sizeof err);
    assert_non_null(r);
    uint64_t fp = 0;
    assert_int_equal(cs_schema_fingerprint(r, &fp), 0);
    assert_true(fp == READER_FP);
    avro_schema_decref(r);
    /* spec primitives: "int" and "string" (values from the Java reference implementation) */
    assert_true(cs_rabin64("\"int\"", 5) == 0x7275d51a3f395c8fULL);
    assert_true(cs_rabin64("", 0) == 0xc15d213aa4d7a795ULL);
}

static void test_embedded_schema_matches_file(void **state)
{
    FILE *f = fopen("schemas/event.avsc", "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(buf, cs_event_avsc_json);
}

static void test_decoder_dir_errors(void **state)
{
    char dir[] = "/tmp/cs_codec_XXXXXX", path[512], err[512];
    assert_non_null(mkdtemp(dir));
    static const struct {
        const char *file, *json, *want; /* want: substring of errstr */
    } cases[] = {
        {"7.avsc",
         "{\"type\":\"record\",\"name\":\"Event\",\"fields\":[{\"name\":\"event_time\","
         "\"type\":\"long\"}]}",
         "7.avsc: writer schema lacks field user_id"},
        {"8.avsc", "{not json", "8.avsc: not a valid Avro schema"},
        {"9.avsc", "\"string\"", "9.avsc: writer schema is not a record named Event"},
        {"10.avsc",
         "{\"type\":\"record\",\"name\":\"Event\",\"fields\":[{\"name\":\"user_id\","
         "\"type\":\"long\"},{\"name\":\"event_time\",\"type\":\"long\"},{\"name\":"
         "\"event_type\",\"type\":{\"type\":\"enum\",\"name\":\"EventType\","
         "\"symbols\":[\"x\"]}}]}",
         "10.avsc: writer schema does not resolve against Event"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].file);
        FILE *f = fopen(path, "w");
        fputs(cases[i].json, f);
        fclose(f);
        err[0] = '\0';
        assert_null(ev_decoder_new(dir, err, sizeof err));
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: errstr \"%s\" lacks \"%s\"", i, err, cases[i].want);
        unlink(path);
    }
    /* unrelated non-id files are ignored; a missing directory is an error */
    snprintf(path, sizeof path, "%s/alert.avsc", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"type\":\"record\",\"name\":\"ChurnAlert\",\"fields\":[]}", f);
    fclose(f);
    ev_decoder_destroy(decoder(dir));
    unlink(path);
    rmdir(dir);
    assert_null(ev_decoder_new("/nonexistent/schemas", err, sizeof err));
    /* the repository's schemas/ works as a directory (alert skipped, event deduplicated) */
    ev_decoder_destroy(decoder("schemas"));
}

/* ---- exact bytes and round trips ---- */

static void test_encode_exact_bytes(void **state)
{
    ev_event_t ev = mk("ab", 1, EV_PURCHASE, 1.0, NULL, "c", NULL);
    static const uint8_t body[] = {0x04, 'a', 'b',  0x02, 0x0a, 0,    0,    0,   0,
                                   0,    0,   0xf0, 0x3f, 0x00, 0x02, 0x02, 'c', 0x00};
    static const uint8_t conf_hdr[] = {0x00, 0x00, 0x00, 0x01, 0x07};
    static const uint8_t so_hdr[] = {0xC3, 0x01, 0x95, 0xd9, 0x59, 0x57, 0x72, 0xf9, 0xe1, 0x39};
    static const struct {
        ev_wire_t w;
        const uint8_t *hdr;
        size_t hdr_len;
    } cases[] = {
        {EV_WIRE_PLAIN, NULL, 0},
        {EV_WIRE_CONFLUENT, conf_hdr, sizeof conf_hdr},
        {EV_WIRE_SINGLE_OBJECT, so_hdr, sizeof so_hdr},
    };
    char err[256];
    for (size_t i = 0; i < 3; i++) {
        ev_encoder_t *e = ev_encoder_new(cases[i].w, 263, err, sizeof err);
        assert_non_null(e);
        const void *buf;
        size_t len;
        assert_int_equal(ev_encode(e, &ev, &buf, &len), 0);
        assert_int_equal(len, cases[i].hdr_len + sizeof body);
        if (cases[i].hdr_len)
            assert_memory_equal(buf, cases[i].hdr, cases[i].hdr_len);
        assert_memory_equal((const uint8_t *)buf + cases[i].hdr_len, body, sizeof body);
        ev_encoder_destroy(e);
    }
    assert_null(ev_encoder_new(EV_WIRE_AUTO, 1, err, sizeof err));
    /* zig-zag varints at the edges */
    static const struct {
        int64_t t;
        uint8_t bytes[10];
        size_t n;
    } longs[] = {
        {0, {0x00}, 1},
        {-1, {0x01}, 1},
        {63, {0x7e}, 1},
        {-64, {0x7f}, 1},
        {64, {0x80, 0x01}, 2},
        {INT64_MAX, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
        {INT64_MIN, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    };
    uint8_t out[CS_EVENT_BODY_MAX];
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        ev = mk("a", longs[i].t, EV_SESSION_START, 0, NULL, NULL, NULL);
        int n = cs_encode_body(&ev, out);
        assert_int_equal(n, 2 + longs[i].n + 1 + 8 + 3);
        assert_memory_equal(out + 2, longs[i].bytes, longs[i].n);
    }
    ev = mk("a", 0, EV_TYPE_COUNT, 0, NULL, NULL, NULL);
    assert_int_equal(cs_encode_body(&ev, out), -1);
}

static ev_event_t round_trip_events[8];

static void fill_round_trip_events(void)
{
    char big[EV_USER_ID_MAX + 1];
    memset(big, 'u', EV_USER_ID_MAX);
    big[EV_USER_ID_MAX] = '\0';
    round_trip_events[0] = mk("u1", 1700000000000LL, EV_PAGE_VIEW, 0.0, NULL, NULL, NULL);
    round_trip_events[1] = mk("ü-ß-日本", -5, EV_PURCHASE, 19.99, "sku-1", "books", "web");
    round_trip_events[2] = mk(big, INT64_MAX, EV_OTHER, -0.0, "", "", "");
    round_trip_events[3] = mk("x", INT64_MIN, EV_SUBSCRIPTION_CANCEL, 1e308, NULL, "c", NULL);
    round_trip_events[4] = mk("q\"\\", 0, EV_REFUND, -4.9e-324, "i", NULL, "email");
    round_trip_events[5] = mk("s", 42, EV_SESSION_START, 3.5, NULL, NULL, "ios");
    round_trip_events[6] = mk("t", 43, EV_COUPON_REDEEM, 2.25, "i", "c", NULL);
    round_trip_events[7] = mk("v", 44, EV_SUPPORT_TICKET, 0.5, NULL, NULL, NULL);
}

static void test_round_trip_all_framings(void **state)
{
    ev_decoder_t *d = decoder(NULL);
    fill_round_trip_events();
    const ev_wire_t wires[] = {EV_WIRE_CONFLUENT, EV_WIRE_SINGLE_OBJECT, EV_WIRE_PLAIN};
    char err[256], why[256];
    for (size_t w = 0; w < 3; w++) {
        ev_encoder_t *e = ev_encoder_new(wires[w], 1, err, sizeof err);
        for (size_t i = 0; i < 8; i++) {
            const void *buf;
            size_t len;
            ev_event_t out;
            assert_int_equal(ev_encode(e, &round_trip_events[i], &buf, &len), 0);
            /* both auto-detected and declared framing */
            assert_int_equal(ev_decode(d, EV_WIRE_AUTO, buf, len, &out, why, sizeof why), EV_OK);
            assert_event_equal(&out, &round_trip_events[i]);
            assert_int_equal(ev_decode(d, wires[w], buf, len, &out, why, sizeof why), EV_OK);
            assert_event_equal(&out, &round_trip_events[i]);
        }
        ev_encoder_destroy(e);
    }
    ev_decoder_destroy(d);
}

static void test_optional_strings_truncated(void **state)
{
    /* a 200-byte item_id written by someone else is kept to EV_STR_MAX bytes, cut back to a
     * UTF-8 boundary ("é" is 2 bytes: 127 x 'a' + "é..." must not keep half of it) */
    uint8_t msg[512], *p = msg;
    *p++ = 0x02, *p++ = 'u';               /* user_id "u" */
    *p++ = 0x00;                           /* event_time 0 */
    *p++ = 0x00;                           /* session_start */
    memset(p, 0, 8), p += 8;               /* amount 0 */
    *p++ = 0x02, *p++ = 0x90, *p++ = 0x03; /* item_id branch 1, length 200 */
    memset(p, 'a', 127), p += 127;
    for (int i = 0; i < 73 / 2; i++)
        *p++ = 0xc3, *p++ = 0xa9; /* "é" x 36 = 72 bytes */
    *p++ = 'z';                   /* 127 + 72 + 1 = 200 */
    *p++ = 0x00, *p++ = 0x00;     /* category, channel null */
    ev_decoder_t *d = decoder(NULL);
    ev_event_t out;
    char why[256];
    assert_int_equal(ev_decode(d, EV_WIRE_PLAIN, msg, (size_t)(p - msg), &out, why, sizeof why),
                     EV_OK);
    assert_int_equal(out.has_item_id, 1);
    assert_int_equal(strlen(out.item_id), 127);
    assert_memory_equal(out.item_id, msg + 15, 127);
    /* an embedded NUL ends an optional string (C string and re-encoding agree) */
    static const uint8_t nul[] = {0x02, 'u', 0x00, 0x00, 0,   0,    0,   0,    0,   0,
                                  0,    0,   0x02, 0x06, 'a', 0x00, 'b', 0x00, 0x00};
    assert_int_equal(ev_decode(d, EV_WIRE_PLAIN, nul, sizeof nul, &out, why, sizeof why), EV_OK);
    assert_int_equal(out.has_item_id, 1);
    assert_string_equal(out.item_id, "a");
    assert_int_equal(out.item_id[2], '\0');
    ev_decoder_destroy(d);
}

/* ---- rejects ---- */

typedef struct {
    const char *name;
    ev_wire_t wire;
    uint8_t bytes[80];
    size_t len;
    ev_reason_t want;
} reject_case_t;

/* Body of {user_id "u", event_time 0, session_start, amount, nulls} with amount bytes given. */
#define BODY_AMOUNT(b0, b1, b2, b3, b4, b5, b6, b7)                                                \
    0x02, 'u', 0x00, 0x00, b0, b1, b2, b3, b4, b5, b6, b7, 0x00, 0x00, 0x00
#define BODY_OK BODY_AMOUNT(0, 0, 0, 0, 0, 0, 0, 0)

static const reject_case_t reject_cases[] = {
    {"valid plain (control)", EV_WIRE_PLAIN, {BODY_OK}, 15, EV_OK},
    {"valid confluent id 1 (control)", EV_WIRE_AUTO, {0, 0, 0, 0, 1, BODY_OK}, 20, EV_OK},
    {"empty message", EV_WIRE_AUTO, {0}, 0, EV_ERR_UNDECODABLE},
    {"confluent header only", EV_WIRE_CONFLUENT, {0, 0, 0, 0, 1}, 5, EV_ERR_UNDECODABLE},
    {"confluent 3 bytes", EV_WIRE_CONFLUENT, {0, 0, 0}, 3, EV_ERR_UNDECODABLE},
    {"confluent wrong magic", EV_WIRE_CONFLUENT, {1, 0, 0, 0, 1, BODY_OK}, 20, EV_ERR_UNDECODABLE},
    {"confluent unknown id 99", EV_WIRE_AUTO, {0, 0, 0, 0, 99, BODY_OK}, 20, EV_ERR_UNKNOWN_SCHEMA},
    {"confluent negative id",
     EV_WIRE_AUTO,
     {0, 0xff, 0xff, 0xff, 0xff, BODY_OK},
     20,
     EV_ERR_UNKNOWN_SCHEMA},
    {"single-object unknown fingerprint",
     EV_WIRE_AUTO,
     {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, BODY_OK},
     25,
     EV_ERR_UNKNOWN_SCHEMA},
    {"single-object reader fingerprint (control)",
     EV_WIRE_AUTO,
     {0xC3, 0x01, 0x95, 0xd9, 0x59, 0x57, 0x72, 0xf9, 0xe1, 0x39, BODY_OK},
     25,
     EV_OK},
    {"single-object short header",
     EV_WIRE_SINGLE_OBJECT,
     {0xC3, 0x01, 0x95},
     3,
     EV_ERR_UNDECODABLE},
    {"single-object wrong marker",
     EV_WIRE_SINGLE_OBJECT,
     {0xC3, 0x02, 0x95, 0xd9, 0x59, 0x57, 0x72, 0xf9, 0xe1, 0x39, BODY_OK},
     25,
     EV_ERR_UNDECODABLE},
    {"empty user_id",
     EV_WIRE_PLAIN,
     {0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00},
     14,
     EV_ERR_MISSING_USER_ID},
    {"NUL inside user_id",
     EV_WIRE_PLAIN,
     {0x04, 'u', 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00},
     16,
     EV_ERR_UNDECODABLE},
    {"amount NaN",
     EV_WIRE_PLAIN,
     {BODY_AMOUNT(0, 0, 0, 0, 0, 0, 0xf8, 0x7f)},
     15,
     EV_ERR_NON_FINITE_AMOUNT},
    {"amount +inf",
     EV_WIRE_PLAIN,
     {BODY_AMOUNT(0, 0, 0, 0, 0, 0, 0xf0, 0x7f)},
     15,
     EV_ERR_NON_FINITE_AMOUNT},
    {"amount -inf",
     EV_WIRE_PLAIN,
     {BODY_AMOUNT(0, 0, 0, 0, 0, 0, 0xf0, 0xff)},
     15,
     EV_ERR_NON_FINITE_AMOUNT},
    {"garbage text", EV_WIRE_AUTO, "hello, world", 12, EV_ERR_UNDECODABLE},
    {"trailing byte", EV_WIRE_PLAIN, {BODY_OK, 0x00}, 16, EV_ERR_UNDECODABLE},
    {"huge string length",
     EV_WIRE_PLAIN,
     {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 'u'},
     9,
     EV_ERR_UNDECODABLE},
    {"negative string length", EV_WIRE_PLAIN, {0x03, 'u', 0x00, 0x00}, 4, EV_ERR_UNDECODABLE},
    {"11-byte varint",
     EV_WIRE_PLAIN,
     {0x02, 'u', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
     13,
     EV_ERR_UNDECODABLE},
    {"10th varint byte too big",
     EV_WIRE_PLAIN,
     {0x02, 'u', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
      0x00, 0,   0,    0,    0,    0,    0,    0,    0,    0x00, 0x00, 0x00},
     24,
     EV_ERR_UNDECODABLE},
    {"enum index 11",
     EV_WIRE_PLAIN,
     {0x02, 'u', 0x00, 0x16, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00},
     15,
     EV_ERR_UNDECODABLE},
    {"enum index -1",
     EV_WIRE_PLAIN,
     {0x02, 'u', 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00},
     15,
     EV_ERR_UNDECODABLE},
    {"union branch 2",
     EV_WIRE_PLAIN,
     {0x02, 'u', 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x00, 0x00},
     15,
     EV_ERR_UNDECODABLE},
    {"union branch -1",
     EV_WIRE_PLAIN,
     {0x02, 'u', 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00},
     15,
     EV_ERR_UNDECODABLE},
    {"declared plain, confluent bytes",
     EV_WIRE_PLAIN,
     {0, 0, 0, 0, 1, BODY_OK},
     20,
     EV_ERR_UNDECODABLE},
};

static void test_reject_reasons(void **state)
{
    ev_decoder_t *d = decoder(NULL);
    for (size_t i = 0; i < sizeof reject_cases / sizeof reject_cases[0]; i++) {
        const reject_case_t *c = &reject_cases[i];
        ev_event_t out;
        char why[256] = "";
        ev_reason_t r = ev_decode(d, c->wire, c->len ? c->bytes : (const uint8_t *)"", c->len, &out,
                                  why, sizeof why);
        if (r != c->want)
            fail_msg("%s: got %s (%s), want %s", c->name, ev_reason_code(r), why,
                     ev_reason_code(c->want));
        if (r != EV_OK && why[0] == '\0')
            fail_msg("%s: no detail in why", c->name);
    }
    ev_decoder_destroy(d);
}

/* The detail must name what is wrong, not what the guessed framing stumbled over: a
 * framing header with an unknown magic byte (issue 11, item 13). */
static void test_reject_messages(void **state)
{
    static const struct {
        const char *name;
        uint8_t bytes[24];
        size_t len;
        const char *want;
    } cases[] = {
        {"magic 0x05", {0x05, 0, 0, 0, 1, BODY_OK}, 20, "wrong magic byte 0x05"},
        {"magic 0x01", {0x01, 0, 0, 0, 1, BODY_OK}, 20, "wrong magic byte 0x01"},
        {"C3 without 01", {0xC3, 0x02, BODY_OK}, 17, "wrong magic byte 0xc3"},
    };
    ev_decoder_t *d = decoder(NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ev_event_t out;
        char why[256] = "";
        ev_reason_t r =
            ev_decode(d, EV_WIRE_AUTO, cases[i].bytes, cases[i].len, &out, why, sizeof why);
        if (r != EV_ERR_UNDECODABLE || !strstr(why, cases[i].want))
            fail_msg("%s: got %s \"%s\", want undecodable naming \"%s\"", cases[i].name,
                     ev_reason_code(r), why, cases[i].want);
    }
    ev_decoder_destroy(d);
}

/* The window reason names the bound it used; before any watermark it must not print the
 * INT64_MIN sentinel (issue 11, item 13). */
static void test_time_window_why(void **state)
{
    static const struct {
        int64_t t, wm, now, past, future;
        const char *want;
    } cases[] = {
        {4000000000000LL, INT64_MIN, 1700000000000LL, 0, 86400000,
         "the wall clock 1700000000000 (no watermark yet)"},

        {4000000000000LL, 1700000000000LL, INT64_MIN, 0, 86400000,
         "after the watermark 1700000000000"},
        {4000000000000LL, 1700000000000LL, 1800000000000LL, 0, 86400000,
         "the wall clock 1800000000000 (ahead of the watermark 1700000000000)"},
        {1000, 1700000000000LL, 1700000000000LL, 86400000, 86400000,
         "events.max_past (86400000 ms) before the watermark 1700000000000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ev_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.event_time_ms = cases[i].t;
        assert_int_equal(
            ev_check_time(&ev, cases[i].wm, cases[i].now, cases[i].past, cases[i].future),
            EV_ERR_TIME_OUT_OF_WINDOW);
        char why[256] = "";
        ev_time_window_why(&ev, cases[i].wm, cases[i].now, cases[i].past, cases[i].future, why,
                           sizeof why);
        if (!strstr(why, cases[i].want) || strstr(why, "-9223372036854775808"))
            fail_msg("case %zu: \"%s\" does not name \"%s\"", i, why, cases[i].want);
    }
}

static void test_user_id_length_limits(void **state)
{
    static const struct {
        size_t len;
        ev_reason_t want;
    } cases[] = {{1, EV_OK},
                 {255, EV_OK},
                 {256, EV_OK},
                 {257, EV_ERR_USER_ID_TOO_LONG},
                 {5000, EV_ERR_USER_ID_TOO_LONG}};
    ev_decoder_t *d = decoder(NULL);
    static uint8_t msg[6000];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *p = msg;
        uint64_t z = (uint64_t)cases[i].len << 1;
        while (z >= 0x80)
            *p++ = (uint8_t)(z | 0x80), z >>= 7;
        *p++ = (uint8_t)z;
        memset(p, 'k', cases[i].len), p += cases[i].len;
        memset(p, 0, 2 + 8 + 3), p += 2 + 8 + 3;
        ev_event_t out;
        char why[256];
        assert_int_equal(ev_decode(d, EV_WIRE_PLAIN, msg, (size_t)(p - msg), &out, why, sizeof why),
                         cases[i].want);
        if (cases[i].want == EV_OK)
            assert_int_equal(out.user_id_len, cases[i].len);
    }
    ev_decoder_destroy(d);
}

/* Issue 11: Avro strings must be UTF-8; a user_id that is not goes to the DLQ as
 * invalid_utf8 (a NUL stays undecodable), never into Redis. */
static void test_user_id_utf8(void **state)
{
    static const struct {
        const char *id;
        size_t len;
        ev_reason_t want;
    } cases[] = {
        {"caf\xc3\xa9", 5, EV_OK},
        {"\xf0\x9f\x98\x80", 4, EV_OK},
        {"\xff", 1, EV_ERR_INVALID_UTF8},
        {"ab\xc3", 3, EV_ERR_INVALID_UTF8},       /* cut sequence */
        {"\xc0\xaf", 2, EV_ERR_INVALID_UTF8},     /* overlong '/' */
        {"\xed\xa0\x80", 3, EV_ERR_INVALID_UTF8}, /* surrogate */
        {"a\0b", 3, EV_ERR_UNDECODABLE},
    };
    ev_decoder_t *d = decoder(NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t msg[64], *p = msg;
        *p++ = (uint8_t)(cases[i].len << 1);
        memcpy(p, cases[i].id, cases[i].len), p += cases[i].len;
        memset(p, 0, 2 + 8 + 3), p += 2 + 8 + 3;
        ev_event_t out;
        char why[256] = "";
        ev_reason_t r = ev_decode(d, EV_WIRE_PLAIN, msg, (size_t)(p - msg), &out, why, sizeof why);
        if (r != cases[i].want)
            fail_msg("case %zu: got %s (%s), want %s", i, ev_reason_code(r), why,
                     ev_reason_code(cases[i].want));
        if (r == EV_ERR_INVALID_UTF8 && !strstr(why, "not valid UTF-8"))
            fail_msg("case %zu: why \"%s\"", i, why);
    }
    ev_decoder_destroy(d);
}

static void test_truncated_every_length(void **state)
{
    ev_decoder_t *d = decoder(NULL);
    fill_round_trip_events();
    const ev_wire_t wires[] = {EV_WIRE_CONFLUENT, EV_WIRE_SINGLE_OBJECT, EV_WIRE_PLAIN};
    char err[256], why[256];
    size_t checked = 0;
    for (size_t w = 0; w < 3; w++) {
        ev_encoder_t *e = ev_encoder_new(wires[w], 1, err, sizeof err);
        for (size_t i = 0; i < 8; i++) {
            const void *buf;
            size_t len;
            assert_int_equal(ev_encode(e, &round_trip_events[i], &buf, &len), 0);
            uint8_t copy[1024];
            memcpy(copy, buf, len);
            for (size_t cut = 0; cut < len; cut++) {
                /* a heap copy of exactly cut bytes, so ASan sees any over-read */
                uint8_t *m = malloc(cut ? cut : 1);
                memcpy(m, copy, cut);
                ev_event_t out;
                ev_reason_t r = ev_decode(d, wires[w], m, cut, &out, why, sizeof why);
                if (r != EV_ERR_UNDECODABLE)
                    fail_msg("%s event %zu cut at %zu/%zu: %s", ev_wire_name(wires[w]), i, cut, len,
                             ev_reason_code(r));
                free(m);
                checked++;
            }
        }
        ev_encoder_destroy(e);
    }
    assert_true(checked > 1000);
    ev_decoder_destroy(d);
}

/* Every single-byte mutation of valid messages must decode or be rejected, never crash or
 * leak (this test is mostly for the sanitizer and valgrind runs). */
static void test_mutations_never_crash(void **state)
{
    ev_decoder_t *d = decoder(FIXTURES);
    fill_round_trip_events();
    char err[256], why[256];
    const uint8_t values[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xc3, 0xfe, 0xff};
    size_t counts[EV_ERR_COUNT] = {0};
    ev_encoder_t *e = ev_encoder_new(EV_WIRE_CONFLUENT, 1, err, sizeof err);
    for (size_t i = 0; i < 8; i++) {
        const void *buf;
        size_t len;
        ev_encode(e, &round_trip_events[i], &buf, &len);
        for (size_t pos = 0; pos < len; pos++) {
            for (size_t v = 0; v < sizeof values; v++) {
                uint8_t *m = malloc(len);
                memcpy(m, buf, len);
                m[pos] = values[v];
                ev_event_t out;
                ev_reason_t r = ev_decode(d, EV_WIRE_AUTO, m, len, &out, why, sizeof why);
                assert_true(r >= EV_OK && r < EV_ERR_COUNT);
                counts[r]++;
                free(m);
            }
        }
    }
    assert_true(counts[EV_OK] > 0 && counts[EV_ERR_UNDECODABLE] > 0 &&
                counts[EV_ERR_UNKNOWN_SCHEMA] > 0);
    ev_encoder_destroy(e);
    ev_decoder_destroy(d);
}

/* ---- time window ---- */

static void test_check_time(void **state)
{
#define D 86400000LL
    static const struct {
        int64_t t, watermark, now, past, future;
        ev_reason_t want;
    } cases[] = {
        {1000000, 1000000, INT64_MIN, 100, 100, EV_OK},
        {999900, 1000000, INT64_MIN, 100, 100, EV_OK},
        {999899, 1000000, INT64_MIN, 100, 100, EV_ERR_TIME_OUT_OF_WINDOW},
        {1000100, 1000000, INT64_MIN, 100, 100, EV_OK},
        {1000101, 1000000, INT64_MIN, 100, 100, EV_ERR_TIME_OUT_OF_WINDOW},
        {-5000000, 1000000, INT64_MIN, 0, 100, EV_OK},         /* past bound disabled */
        {INT64_MAX, 1000000, INT64_MIN, 100, 0, EV_OK},        /* future bound disabled */
        {INT64_MIN, INT64_MIN, INT64_MIN, 1, 1, EV_OK},        /* no watermark, no clock */
        {INT64_MIN, -1000000, INT64_MIN, INT64_MAX, 1, EV_OK}, /* saturating lower bound */
        {INT64_MAX, 1000000, INT64_MIN, 1, INT64_MAX, EV_OK},  /* saturating upper bound */
        {INT64_MIN + 1, 0, INT64_MIN, INT64_MAX, 1, EV_OK},    /* lower bound exactly */
        {INT64_MIN, 0, INT64_MIN, INT64_MAX, 1, EV_ERR_TIME_OUT_OF_WINDOW},
        /* a replayed log: 31 quiet days after the watermark, long before the wall clock */
        {40 * D, 9 * D, 20000 * D, 30 * D, 1 * D, EV_OK},
        /* ... but not past the wall clock's own bound */
        {20002 * D, 9 * D, 20000 * D, 30 * D, 1 * D, EV_ERR_TIME_OUT_OF_WINDOW},
        /* live: watermark near now; now + 1d is the limit */
        {20001 * D, 20000 * D - 1000, 20000 * D, 30 * D, 1 * D, EV_OK},
        {20001 * D + 1, 20000 * D - 1000, 20000 * D, 30 * D, 1 * D, EV_ERR_TIME_OUT_OF_WINDOW},
        /* no watermark yet: only the clock bounds the future */
        {20002 * D, INT64_MIN, 20000 * D, 30 * D, 1 * D, EV_ERR_TIME_OUT_OF_WINDOW},
        {5 * D, INT64_MIN, 20000 * D, 30 * D, 1 * D, EV_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ev_event_t ev = mk("u", cases[i].t, EV_OTHER, 0, NULL, NULL, NULL);
        ev_reason_t r =
            ev_check_time(&ev, cases[i].watermark, cases[i].now, cases[i].past, cases[i].future);
        if (r != cases[i].want)
            fail_msg("case %zu: got %s", i, ev_reason_code(r));
    }
#undef D
}

/* ---- evolved writer schemas ---- */

typedef struct {
    const char *user_id;
    int64_t time;
    const char *symbol;
    double amount;
    const char *item, *category, *channel, *device;
} writer_rec_t;

/* Sets a field of whatever type the writer schema gives it; fields the writer lacks are
 * skipped (that is the point of the evolved schemas). */
static void set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f, b;
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
        return;
    if (avro_value_get_type(&f) == AVRO_UNION) {
        avro_schema_t u = avro_value_get_schema(&f);
        for (size_t i = 0; i < avro_schema_union_size(u); i++) {
            avro_type_t t = avro_typeof(avro_schema_union_branch(u, (int)i));
            if ((s && t == AVRO_STRING) || (!s && t == AVRO_NULL)) {
                assert_int_equal(avro_value_set_branch(&f, (int)i, &b), 0);
                if (s)
                    assert_int_equal(avro_value_set_string(&b, s), 0);
                else
                    assert_int_equal(avro_value_set_null(&b), 0);
                return;
            }
        }
        fail_msg("no branch for %s", name);
    }
    if (s)
        assert_int_equal(avro_value_set_string(&f, s), 0);
}

static size_t writer_encode(avro_schema_t ws, const writer_rec_t *w, uint8_t *buf, size_t cap)
{
    avro_value_iface_t *cls = avro_generic_class_from_schema(ws);
    avro_value_t rec, f;
    assert_int_equal(avro_generic_value_new(cls, &rec), 0);
    set_str(&rec, "user_id", w->user_id);
    if (avro_value_get_by_name(&rec, "event_time", &f, NULL) == 0)
        assert_int_equal(avro_value_set_long(&f, w->time), 0);
    if (avro_value_get_by_name(&rec, "event_type", &f, NULL) == 0) {
        int idx = avro_schema_enum_get_by_name(avro_value_get_schema(&f), w->symbol);
        assert_true(idx >= 0);
        assert_int_equal(avro_value_set_enum(&f, idx), 0);
    }
    if (avro_value_get_by_name(&rec, "amount", &f, NULL) == 0) {
        if (avro_value_get_type(&f) == AVRO_FLOAT)
            assert_int_equal(avro_value_set_float(&f, (float)w->amount), 0);
        else
            assert_int_equal(avro_value_set_double(&f, w->amount), 0);
    }
    set_str(&rec, "item_id", w->item);
    set_str(&rec, "category", w->category);
    set_str(&rec, "channel", w->channel);
    set_str(&rec, "device", w->device);
    avro_writer_t aw = avro_writer_memory((const char *)buf, (int64_t)cap);
    assert_int_equal(avro_value_write(aw, &rec), 0);
    size_t n = (size_t)avro_writer_tell(aw);
    avro_writer_free(aw);
    avro_value_decref(&rec);
    avro_value_iface_decref(cls);
    return n;
}

typedef struct {
    int id;
    writer_rec_t in;
    ev_event_t want;
} evolved_case_t;

static void test_evolved_writers(void **state)
{
    const evolved_case_t cases[] = {
        /* v2: "wishlist" inserted before "search": indices shift, names must still match */
        {2,
         {"a", 10, "search", 1.5, "i", NULL, "web", "ios"},
         mk("a", 10, EV_SEARCH, 1.5, "i", NULL, "web")},
        {2,
         {"a", 11, "wishlist", 0, NULL, NULL, NULL, NULL},
         mk("a", 11, EV_OTHER, 0, NULL, NULL, NULL)},
        {2, {"a", 12, "share", 2, NULL, "c", NULL, "x"}, mk("a", 12, EV_OTHER, 2, NULL, "c", NULL)},
        {2,
         {"a", 13, "other", 0, NULL, NULL, NULL, NULL},
         mk("a", 13, EV_OTHER, 0, NULL, NULL, NULL)},
        {2,
         {"a", 14, "subscription_cancel", 0, NULL, NULL, NULL, NULL},
         mk("a", 14, EV_SUBSCRIPTION_CANCEL, 0, NULL, NULL, NULL)},
        /* v3: reordered subset of symbols, no amount / optionals -> reader defaults */
        {3,
         {"b", 20, "purchase", 99, "i", "c", "w", NULL},
         mk("b", 20, EV_PURCHASE, 0, NULL, NULL, NULL)},
        {3,
         {"b", 21, "session_start", 0, NULL, NULL, NULL, NULL},
         mk("b", 21, EV_SESSION_START, 0, NULL, NULL, NULL)},
        /* v4: float amount promoted, plain-string item_id, reversed category union */
        {4,
         {"c", 30, "refund", 0.25, "sku", "cat", NULL, NULL},
         mk("c", 30, EV_REFUND, 0.25, "sku", "cat", NULL)},
        {4,
         {"c", 31, "page_view", -8, "", NULL, NULL, NULL},
         mk("c", 31, EV_PAGE_VIEW, -8, "", NULL, NULL)},
        /* the reader itself through id 1 */
        {1,
         {"d", 40, "purchase", 5, NULL, "x", "y", NULL},
         mk("d", 40, EV_PURCHASE, 5, NULL, "x", "y")},
    };
    ev_decoder_t *d = decoder(FIXTURES);
    char err[512], why[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const evolved_case_t *c = &cases[i];
        char path[256];
        snprintf(path, sizeof path, FIXTURES "/%d.avsc", c->id);
        avro_schema_t ws = c->id == 1 ? cs_reader_schema_new(err, sizeof err)
                                      : cs_schema_load_file(path, err, sizeof err);
        assert_non_null(ws);
        uint64_t fp;
        assert_int_equal(cs_schema_fingerprint(ws, &fp), 0);
        uint8_t msg[600];
        size_t n = writer_encode(ws, &c->in, msg + 10, sizeof msg - 10);
        avro_schema_decref(ws);

        ev_event_t out;
        /* Confluent: header right before the body */
        uint8_t *conf = msg + 5;
        conf[0] = 0, conf[1] = 0, conf[2] = 0, conf[3] = 0, conf[4] = (uint8_t)c->id;
        ev_reason_t r = ev_decode(d, EV_WIRE_AUTO, conf, n + 5, &out, why, sizeof why);
        if (r != EV_OK)
            fail_msg("case %zu confluent: %s (%s)", i, ev_reason_code(r), why);
        assert_event_equal(&out, &c->want);
        /* single-object: fingerprint of the writer schema */
        msg[0] = 0xC3, msg[1] = 0x01;
        for (int k = 0; k < 8; k++)
            msg[2 + k] = (uint8_t)(fp >> (8 * k));
        r = ev_decode(d, EV_WIRE_AUTO, msg, n + 10, &out, why, sizeof why);
        if (r != EV_OK)
            fail_msg("case %zu single-object: %s (%s)", i, ev_reason_code(r), why);
        assert_event_equal(&out, &c->want);
    }
    ev_decoder_destroy(d);
}

/* ---- container files ---- */

static void test_file_round_trip_10000(void **state)
{
    char path[] = "/tmp/cs_codec_file_XXXXXX", err[512];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    fill_round_trip_events();
    enum { N = 10000 };
    ev_file_writer_t *w = ev_file_writer_open(path, err, sizeof err);
    assert_non_null(w);
    for (int i = 0; i < N; i++) {
        ev_event_t ev = round_trip_events[i % 8];
        ev.event_time_ms ^= i; /* distinct times, no overflow at the edges */
        assert_int_equal(ev_file_writer_append(w, &ev, err, sizeof err), 0);
    }
    assert_int_equal(ev_file_writer_close(w, err, sizeof err), 0);

    ev_file_reader_t *r = ev_file_reader_open(path, err, sizeof err);
    if (!r)
        fail_msg("open: %s", err);
    ev_event_t out;
    ev_reason_t reason;
    int n = 0, rc;
    while ((rc = ev_file_reader_next(r, &out, &reason, err, sizeof err)) == 1) {
        ev_event_t want = round_trip_events[n % 8];
        want.event_time_ms ^= n;
        assert_int_equal(reason, EV_OK);
        assert_event_equal(&out, &want);
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, N);
    ev_file_reader_close(r);
    assert_int_equal(ev_file_writer_close(NULL, err, sizeof err), 0);
    ev_file_reader_close(NULL);
    unlink(path);
}

static void test_file_evolved_writer(void **state)
{
    char path[] = "/tmp/cs_codec_file_XXXXXX", err[512];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    avro_schema_t ws = cs_schema_load_file(FIXTURES "/2.avsc", err, sizeof err);
    assert_non_null(ws);
    FILE *fp = fopen(path, "wb");
    avro_file_writer_t aw;
    assert_int_equal(avro_file_writer_create_with_codec_fp(fp, path, 1, ws, &aw, "null", 4096), 0);
    const writer_rec_t in[] = {
        {"a", 1, "wishlist", 1, NULL, NULL, NULL, "d"},
        {"b", 2, "search", 2, "i", NULL, NULL, NULL},
        {"", 3, "purchase", 3, NULL, NULL, NULL, NULL}, /* decodes, fails validation */
        {"c", 4, "share", 4, NULL, "c", "ch", NULL},
    };
    const ev_event_t want[] = {
        mk("a", 1, EV_OTHER, 1, NULL, NULL, NULL),
        mk("b", 2, EV_SEARCH, 2, "i", NULL, NULL),
        mk("", 0, EV_OTHER, 0, NULL, NULL, NULL),
        mk("c", 4, EV_OTHER, 4, NULL, "c", "ch"),
    };
    for (size_t i = 0; i < 4; i++) {
        uint8_t buf[512];
        size_t n = writer_encode(ws, &in[i], buf, sizeof buf);
        assert_int_equal(avro_file_writer_append_encoded(aw, buf, (int64_t)n), 0);
    }
    assert_int_equal(avro_file_writer_close(aw), 0);
    avro_schema_decref(ws);

    ev_file_reader_t *r = ev_file_reader_open(path, err, sizeof err);
    if (!r)
        fail_msg("open: %s", err);
    for (size_t i = 0; i < 4; i++) {
        ev_event_t out;
        ev_reason_t reason;
        assert_int_equal(ev_file_reader_next(r, &out, &reason, err, sizeof err), 1);
        if (i == 2) {
            assert_int_equal(reason, EV_ERR_MISSING_USER_ID);
            continue;
        }
        assert_int_equal(reason, EV_OK);
        assert_event_equal(&out, &want[i]);
    }
    ev_event_t out;
    ev_reason_t reason;
    assert_int_equal(ev_file_reader_next(r, &out, &reason, err, sizeof err), 0);
    ev_file_reader_close(r);
    unlink(path);
}

static void test_file_errors(void **state)
{
    char err[512], path[] = "/tmp/cs_codec_file_XXXXXX";
    assert_null(ev_file_reader_open("/nonexistent/x.avro", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.avro"));
    assert_null(ev_file_writer_open("/nonexistent/dir/x.avro", err, sizeof err));
    int fd = mkstemp(path);
    assert_true(write(fd, "not avro at all", 15) == 15);
    close(fd);
    assert_null(ev_file_reader_open(path, err, sizeof err));
    assert_non_null(strstr(err, "not an Avro container file"));
    /* a valid file cut in the middle of its last data block is corrupt, not a clean EOF
     * (enough events for several 64 KiB blocks, so the first block still opens) */
    ev_file_writer_t *w = ev_file_writer_open(path, err, sizeof err);
    fill_round_trip_events();
    for (int i = 0; i < 20000; i++)
        ev_file_writer_append(w, &round_trip_events[i % 8], err, sizeof err);
    assert_int_equal(ev_file_writer_close(w, err, sizeof err), 0);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path, size - 40), 0);
    /* A truncated file is refused before its first event, naming the file and the cut: a
     * replay of the readable part would look complete (issue 11, item 11). */
    ev_file_reader_t *r = ev_file_reader_open(path, err, sizeof err);
    if (r || !strstr(err, path) || !strstr(err, "truncated"))
        fail_msg("truncated file: %s", r ? "opened" : err);
    unlink(path);
}

static size_t put_varint(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80)
        p[n++] = (uint8_t)(z | 0x80), z >>= 7;
    p[n++] = (uint8_t)z;
    return n;
}

/* Mutated and truncated container files (issue 11, item 11: ASan allocation-size-too-big
 * and a leak inside libavro on 81 of 300): every one must open-and-read or fail with an
 * error, never crash, allocate without bound or leak (this test runs under
 * `make SANITIZE=address,undefined test-unit`). */
static void test_file_mutations(void **state)
{
    char err[512], path[] = "/tmp/cs_codec_mut_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ev_file_writer_t *w = ev_file_writer_open(path, err, sizeof err);
    fill_round_trip_events();
    for (int i = 0; i < 6000; i++)
        ev_file_writer_append(w, &round_trip_events[i % 8], err, sizeof err);
    assert_int_equal(ev_file_writer_close(w, err, sizeof err), 0);
    FILE *f = fopen(path, "rb");
    static uint8_t good[1 << 20], bad[(1 << 20) + 32];
    size_t size = fread(good, 1, sizeof good, f);
    fclose(f);
    assert_true(size > 1000 && size < sizeof good);
    /* Where the first block starts: after the header's sync marker (its first copy). */
    size_t hdr = 0;
    for (size_t i = 4; i + 16 <= size && !hdr; i++)
        for (size_t j = i + 16; j + 16 <= size; j++)
            if (memcmp(good + i, good + j, 16) == 0) {
                hdr = i + 16;
                break;
            }
    assert_true(hdr > 0);
    uint64_t x = 88172645463325252ULL;
    int opened = 0, refused = 0, read_errors = 0;
    for (int k = 0; k < 400; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = size;
        memcpy(bad, good, size);
        switch (k % 5) {
        case 0: /* truncated anywhere */
            n = (size_t)(x % size);
            break;
        case 1: /* one byte anywhere */
            bad[x % size] = (uint8_t)(x >> 32);
            break;
        case 2: /* one byte in the header */
            bad[x % hdr] = (uint8_t)(x >> 32);
            break;
        case 3: { /* the first block's byte size, or its count, made huge or negative */
            uint8_t tmp[32];
            int64_t big[] = {INT64_MAX / 2, -5, (int64_t)1 << 40, 1 << 30};
            size_t m = put_varint(tmp, big[(x >> 8) % 4]);
            size_t at = hdr + ((x >> 16) & 1 ? 0 : 1); /* count, or inside it -> the size */
            memcpy(bad + at, tmp, m);
            break;
        }
        default: /* a string length inside the first block made huge (uncompressed: none) */
            bad[hdr + 4 + x % 64] = 0xff;
            bad[hdr + 5 + x % 64] = 0xff;
            break;
        }
        FILE *o = fopen(path, "wb");
        assert_true(fwrite(bad, 1, n, o) == n);
        fclose(o);
        ev_file_reader_t *r = ev_file_reader_open(path, err, sizeof err);
        if (!r) {
            refused++;
            assert_true(err[0] != '\0');
            continue;
        }
        opened++;
        ev_event_t out;
        ev_reason_t reason;
        int rc;
        while ((rc = ev_file_reader_next(r, &out, &reason, err, sizeof err)) == 1)
            ;
        read_errors += rc < 0;
        ev_file_reader_close(r);
    }
    print_message("mutations: %d refused at open, %d opened (%d of them failed while reading)\n",
                  refused, opened, read_errors);
    assert_true(refused > 0);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_embedded_schema_matches_file),
        cmocka_unit_test(test_decoder_dir_errors),
        cmocka_unit_test(test_encode_exact_bytes),
        cmocka_unit_test(test_round_trip_all_framings),
        cmocka_unit_test(test_optional_strings_truncated),
        cmocka_unit_test(test_reject_reasons),
        cmocka_unit_test(test_user_id_length_limits),
        cmocka_unit_test(test_user_id_utf8),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_mutations_never_crash),
        cmocka_unit_test(test_check_time),
        cmocka_unit_test(test_reject_messages),
        cmocka_unit_test(test_time_window_why),
        cmocka_unit_test(test_evolved_writers),
        cmocka_unit_test(test_file_round_trip_10000),
        cmocka_unit_test(test_file_evolved_writer),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
