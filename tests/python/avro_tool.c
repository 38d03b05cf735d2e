/* Test helper for tests/python/test_avro_interop.py: writes deterministic events through the
 * codec (framed messages or a container file) and prints them as JSON lines, reads messages
 * and container files written by fastavro and prints what the codec decoded, prints the
 * reader schema's canonical form and fingerprint, and times decoding (informal numbers).
 * Message files are a sequence of 4-byte big-endian lengths, each followed by a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "codec_internal.h"

static void json_str(FILE *o, const char *s, size_t n)
{
    fputc('"', o);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20)
            fprintf(o, "\\u%04x", c);
        else
            fputc(c, o);
    }
    fputc('"', o);
}

static void json_opt(FILE *o, const char *key, int has, const char *s)
{
    fprintf(o, ",\"%s\":", key);
    if (has)
        json_str(o, s, strlen(s));
    else
        fputs("null", o);
}

static void print_event(FILE *o, const ev_event_t *ev)
{
    fputs("{\"user_id\":", o);
    json_str(o, ev->user_id, ev->user_id_len);
    fprintf(o, ",\"event_time\":%lld,\"event_type\":\"%s\",\"amount\":%.17g",
            (long long)ev->event_time_ms, ev_type_name(ev->type), ev->amount);
    json_opt(o, "item_id", ev->has_item_id, ev->item_id);
    json_opt(o, "category", ev->has_category, ev->category);
    json_opt(o, "channel", ev->has_channel, ev->channel);
    fputc('}', o);
}

/* Event i of the deterministic test sequence: every type, edge-case strings and numbers. */
static void make_event(int i, ev_event_t *ev)
{
    static const char *const users[] = {"u-1", "alice", "Zoë \"quoted\" \\ back", "日本語ユーザー",
                                        "x"};
    static const double amounts[] = {0.0, 19.99, -5.5, 1e300, 0.1, 123456789.125, -0.0};
    memset(ev, 0, sizeof *ev);
    if (i % 50 == 7) {
        memset(ev->user_id, 'L', EV_USER_ID_MAX); /* exactly the maximum length */
        ev->user_id_len = EV_USER_ID_MAX;
    } else {
        int n = snprintf(ev->user_id, sizeof ev->user_id, "%s-%d",
                         users[i % (int)(sizeof users / sizeof users[0])], i);
        ev->user_id_len = (uint16_t)n;
    }
    ev->type = (ev_type_t)(i % EV_TYPE_COUNT);
    ev->event_time_ms = 1700000000000LL + (int64_t)i * 37013 - (i % 3 == 0 ? 86400000LL : 0);
    ev->amount = amounts[i % (int)(sizeof amounts / sizeof amounts[0])];
    if (i % 2) {
        ev->has_item_id = 1;
        snprintf(ev->item_id, sizeof ev->item_id, "sku-%d", i * 7);
    }
    if (i % 3) {
        ev->has_category = 1;
        snprintf(ev->category, sizeof ev->category, "%s", i % 3 == 1 ? "books" : "électronique");
    }
    if (i % 5 == 0) {
        ev->has_channel = 1;
        snprintf(ev->channel, sizeof ev->channel, "%s", i % 10 ? "web" : "");
    }
}

static int parse_wire(const char *s, ev_wire_t *w)
{
    if (ev_wire_parse(s, w) != 0) {
        fprintf(stderr, "unknown wire %s\n", s);
        return -1;
    }
    return 0;
}

static int cmd_write_msgs(ev_wire_t wire, int32_t id, int n, const char *out)
{
    char err[256];
    ev_encoder_t *enc = ev_encoder_new(wire, id, err, sizeof err);
    FILE *f = fopen(out, "wb");
    if (!enc || !f) {
        fprintf(stderr, "write-msgs: %s\n", enc ? out : err);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        ev_event_t ev;
        const void *buf;
        size_t len;
        make_event(i, &ev);
        if (ev_encode(enc, &ev, &buf, &len) != 0)
            return 1;
        uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                          (uint8_t)len};
        fwrite(hdr, 1, 4, f);
        fwrite(buf, 1, len, f);
        print_event(stdout, &ev);
        fputc('\n', stdout);
    }
    ev_encoder_destroy(enc);
    return fclose(f) == 0 ? 0 : 1;
}

static int cmd_write_file(int n, const char *out)
{
    char err[256];
    ev_file_writer_t *w = ev_file_writer_open(out, err, sizeof err);
    if (!w) {
        fprintf(stderr, "write-file: %s\n", err);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        ev_event_t ev;
        make_event(i, &ev);
        if (ev_file_writer_append(w, &ev, err, sizeof err) != 0) {
            fprintf(stderr, "write-file: %s\n", err);
            return 1;
        }
        print_event(stdout, &ev);
        fputc('\n', stdout);
    }
    return ev_file_writer_close(w, err, sizeof err) == 0 ? 0 : 1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int cmd_read_msgs(ev_wire_t wire, const char *dir, const char *in)
{
    char err[512], why[256];
    size_t len;
    uint8_t *b = slurp(in, &len);
    ev_decoder_t *d = ev_decoder_new(strcmp(dir, "-") ? dir : NULL, err, sizeof err);
    if (!b || !d) {
        fprintf(stderr, "read-msgs: %s\n", d ? in : err);
        return 1;
    }
    for (size_t off = 0; off + 4 <= len;) {
        size_t n =
            (size_t)b[off] << 24 | (size_t)b[off + 1] << 16 | (size_t)b[off + 2] << 8 | b[off + 3];
        off += 4;
        if (n > len - off)
            return 1;
        ev_event_t ev;
        ev_reason_t r = ev_decode(d, wire, b + off, n, &ev, why, sizeof why);
        off += n;
        printf("{\"reason\":\"%s\",\"event\":", ev_reason_code(r));
        if (r == EV_OK)
            print_event(stdout, &ev);
        else
            fputs("null", stdout);
        puts("}");
    }
    ev_decoder_destroy(d);
    free(b);
    return 0;
}

static int cmd_read_file(const char *in)
{
    char err[512];
    ev_file_reader_t *r = ev_file_reader_open(in, err, sizeof err);
    if (!r) {
        fprintf(stderr, "read-file: %s\n", err);
        return 1;
    }
    ev_event_t ev;
    ev_reason_t reason;
    int rc;
    while ((rc = ev_file_reader_next(r, &ev, &reason, err, sizeof err)) == 1) {
        printf("{\"reason\":\"%s\",\"event\":", ev_reason_code(reason));
        if (reason == EV_OK)
            print_event(stdout, &ev);
        else
            fputs("null", stdout);
        puts("}");
    }
    ev_file_reader_close(r);
    if (rc < 0)
        fprintf(stderr, "read-file: %s\n", err);
    return rc < 0 ? 1 : 0;
}

/* Prints "<fingerprint hex as 64-bit value> <canonical form>" of a schema file ('-' = the
 * built-in reader schema). */
static int cmd_canonical(const char *path)
{
    char err[512];
    avro_schema_t s = strcmp(path, "-") ? cs_schema_load_file(path, err, sizeof err)
                                        : cs_reader_schema_new(err, sizeof err);
    if (!s) {
        fprintf(stderr, "canonical: %s\n", err);
        return 1;
    }
    char *pcf = cs_schema_canonical_form(s);
    uint64_t fp = 0;
    cs_schema_fingerprint(s, &fp);
    printf("%016llx %s\n", (unsigned long long)fp, pcf ? pcf : "");
    free(pcf);
    avro_schema_decref(s);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Informal decode rates (events/s) per framing; the real benchmark lives in bench/. */
static int cmd_bench(int n)
{
    char err[256], why[256];
    ev_decoder_t *d = ev_decoder_new(NULL, err, sizeof err);
    const ev_wire_t wires[] = {EV_WIRE_CONFLUENT, EV_WIRE_SINGLE_OBJECT, EV_WIRE_PLAIN};
    enum { NMSG = 1024 };
    static uint8_t msgs[NMSG][1024];
    static size_t lens[NMSG];
    for (int w = 0; w < 3; w++) {
        ev_encoder_t *enc = ev_encoder_new(wires[w], 1, err, sizeof err);
        for (int i = 0; i < NMSG; i++) {
            ev_event_t ev;
            const void *buf;
            make_event(i, &ev);
            ev_encode(enc, &ev, &buf, &lens[i]);
            memcpy(msgs[i], buf, lens[i]);
        }
        ev_encoder_destroy(enc);
        ev_event_t out;
        double t0 = now_s();
        long bad = 0;
        for (int i = 0; i < n; i++)
            bad += ev_decode(d, EV_WIRE_AUTO, msgs[i % NMSG], lens[i % NMSG], &out, why,
                             sizeof why) != EV_OK;
        double dt = now_s() - t0;
        printf("%s: %.0f events/s (%d events, %ld rejected)\n", ev_wire_name(wires[w]), n / dt, n,
               bad);
    }
    ev_decoder_destroy(d);
    return 0;
}

int main(int argc, char **argv)
{
    ev_wire_t wire;
    if (argc >= 6 && strcmp(argv[1], "write-msgs") == 0 && parse_wire(argv[2], &wire) == 0)
        return cmd_write_msgs(wire, atoi(argv[3]), atoi(argv[4]), argv[5]);
    if (argc >= 4 && strcmp(argv[1], "write-file") == 0)
        return cmd_write_file(atoi(argv[2]), argv[3]);
    if (argc >= 5 && strcmp(argv[1], "read-msgs") == 0 && parse_wire(argv[2], &wire) == 0)
        return cmd_read_msgs(wire, argv[3], argv[4]);
    if (argc >= 3 && strcmp(argv[1], "read-file") == 0)
        return cmd_read_file(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "canonical") == 0)
        return cmd_canonical(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "bench") == 0)
        return cmd_bench(argc >= 3 ? atoi(argv[2]) : 1000000);
    fprintf(stderr, "usage: avro_tool write-msgs WIRE ID N OUT | write-file N OUT |\n"
                    "       read-msgs WIRE SCHEMAS_DIR|- IN | read-file IN |\n"
                    "       canonical SCHEMA.avsc|- | bench [N]\n");
    return 2;
}
