/* Decode throughput: the codec (ev_decode per wire format, ev_file_reader on a container
 * file) beside the raw Avro-C loop on the same bytes in the same process (avro_value_read
 * into a generic value of the schema: no framing, no resolution, no validation, no
 * extraction). Prints one JSON object on stdout; progress on stderr. See bench/README.md. */
#include <avro.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "codec_internal.h"
#include "gen.h"

/* Every message of one wire format, back to back in one arena. */
typedef struct msgs_s {
    uint8_t *arena;
    size_t *off, *len;
    size_t n;
    size_t header_bytes; /* framing bytes before the Avro body (0 for plain) */
} msgs_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_decode: %s: %s\n", what, detail);
    exit(1);
}

/* The first n events of a deterministic generated stream (1,000,000 fit in 4000 users x
 * 365 days). Returned array is malloc'd; the caller frees it. */
static ev_event_t *make_events(size_t n)
{
    gen_params_t gp;
    gen_params_default(&gp);
    gp.users = 4000;
    gp.days = 365;
    gp.seed = 1;
    char err[256];
    gen_t *g = gen_new(&gp, err, sizeof err);
    if (!g)
        die("gen_new", err);
    ev_event_t *evs = malloc(n * sizeof(*evs));
    if (!evs)
        die("make_events", "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (gen_next(g, &evs[i]) != 1)
            die("make_events", "the generator ran out of events: ask for fewer (--events)");
    }
    gen_destroy(g);
    return evs;
}

static void encode_all(const ev_event_t *evs, size_t n, ev_wire_t wire, msgs_t *m)
{
    char err[256];
    ev_encoder_t *enc = ev_encoder_new(wire, 1, err, sizeof err);
    if (!enc)
        die("ev_encoder_new", err);
    size_t cap = n * 96, used = 0;
    m->arena = malloc(cap);
    m->off = malloc(n * sizeof(size_t));
    m->len = malloc(n * sizeof(size_t));
    if (!m->arena || !m->off || !m->len)
        die("encode_all", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const void *buf;
        size_t len;
        if (ev_encode(enc, &evs[i], &buf, &len) != 0)
            die("ev_encode", ev_wire_name(wire));
        if (used + len > cap) {
            cap *= 2;
            if (!(m->arena = realloc(m->arena, cap)))
                die("encode_all", "out of memory");
        }
        memcpy(m->arena + used, buf, len);
        m->off[i] = used;
        m->len[i] = len;
        used += len;
    }
    m->n = n;
    m->header_bytes = wire == EV_WIRE_CONFLUENT ? 5 : wire == EV_WIRE_SINGLE_OBJECT ? 10 : 0;
    ev_encoder_destroy(enc);
}

static void msgs_free(msgs_t *m)
{
    free(m->arena);
    free(m->off);
    free(m->len);
}

/* Passes over all messages until min_s has elapsed (at least one pass): events/s. The first
 * pass checks every result, so a decoder that rejects the data cannot look fast. */
static double time_codec(ev_decoder_t *dec, ev_wire_t wire, const msgs_t *m, double min_s)
{
    ev_event_t ev;
    char why[256];
    size_t done = 0;
    double t0 = now_s(), el;
    do {
        for (size_t i = 0; i < m->n; i++) {
            ev_reason_t r =
                ev_decode(dec, wire, m->arena + m->off[i], m->len[i], &ev, why, sizeof why);
            if (r != EV_OK)
                die("ev_decode", why);
        }
        done += m->n;
        el = now_s() - t0;
    } while (el < min_s);
    return (double)done / el;
}

/* The raw Avro-C loop on the bodies of the same messages (framing bytes skipped). */
static double time_raw(avro_value_t *val, const msgs_t *m, double min_s)
{
    avro_reader_t rd = avro_reader_memory(NULL, 0);
    if (!rd)
        die("avro_reader_memory", avro_strerror());
    size_t done = 0;
    double t0 = now_s(), el;
    do {
        for (size_t i = 0; i < m->n; i++) {
            avro_reader_memory_set_source(rd, (const char *)m->arena + m->off[i] + m->header_bytes,
                                          (int64_t)(m->len[i] - m->header_bytes));
            if (avro_value_read(rd, val) != 0)
                die("avro_value_read", avro_strerror());
        }
        done += m->n;
        el = now_s() - t0;
    } while (el < min_s);
    avro_reader_free(rd);
    return (double)done / el;
}

/* One full pass over a container file through the codec; returns events/s, *count events. */
static double file_codec_pass(const char *path, size_t *count)
{
    char err[512];
    ev_file_reader_t *r = ev_file_reader_open(path, err, sizeof err);
    if (!r)
        die("ev_file_reader_open", err);
    ev_event_t ev;
    ev_reason_t reason;
    size_t n = 0;
    int got;
    double t0 = now_s();
    while ((got = ev_file_reader_next(r, &ev, &reason, err, sizeof err)) == 1)
        n++;
    double el = now_s() - t0;
    if (got < 0)
        die(path, err);
    ev_file_reader_close(r);
    *count = n;
    return (double)n / el;
}

/* One full pass with Avro-C alone: avro_file_reader_read_value into a generic value of the
 * file's writer schema (what DESIGN.md section 10 calls "Avro-C alone"). */
static double file_raw_pass(const char *path, size_t *count)
{
    avro_file_reader_t r;
    if (avro_file_reader(path, &r) != 0)
        die(path, avro_strerror());
    avro_schema_t wschema = avro_file_reader_get_writer_schema(r);
    avro_value_iface_t *iface = avro_generic_class_from_schema(wschema);
    avro_value_t val;
    if (!iface || avro_generic_value_new(iface, &val) != 0)
        die("avro_generic_value_new", avro_strerror());
    size_t n = 0;
    int rc;
    double t0 = now_s();
    while ((rc = avro_file_reader_read_value(r, &val)) == 0)
        n++;
    double el = now_s() - t0;
    if (rc != EOF)
        die(path, avro_strerror());
    avro_value_decref(&val);
    avro_value_iface_decref(iface);
    avro_schema_decref(wschema);
    avro_file_reader_close(r);
    *count = n;
    return (double)n / el;
}

/* Repeats file passes until min_s has elapsed; events/s over all passes. */
static double time_file(double (*pass)(const char *, size_t *), const char *path, double min_s,
                        size_t expect)
{
    size_t done = 0, n;
    double el = 0;
    do {
        double rate = pass(path, &n);
        if (expect && n != expect)
            die(path, "pass read a different number of events");
        done += n;
        el += (double)n / rate;
    } while (el < min_s);
    return (double)done / el;
}

static void usage(FILE *out)
{
    fputs("usage: bench_decode [--events N] [--runs R] [--min-seconds S] [--tmpdir DIR]\n"
          "       bench_decode --file FILE.avro [--runs R]\n"
          "\n"
          "First form: N generated events (default 500000) encoded in each wire format and\n"
          "written to a container file; per run, the codec and the raw Avro-C loop decode\n"
          "the same bytes, each for at least S seconds (default 1). Second form: per run,\n"
          "one pass over FILE with Avro-C alone and one with the codec (replay's reader).\n"
          "Output: one JSON object on stdout, events/s per run.\n",
          out);
}

int main(int argc, char **argv)
{
    size_t nev = 500000;
    int runs = 3;
    double min_s = 1.0;
    const char *file = NULL, *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    static const struct option longopts[] = {{"events", required_argument, 0, 'n'},
                                             {"runs", required_argument, 0, 'r'},
                                             {"min-seconds", required_argument, 0, 's'},
                                             {"file", required_argument, 0, 'f'},
                                             {"tmpdir", required_argument, 0, 't'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            nev = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            runs = atoi(optarg);
            break;
        case 's':
            min_s = atof(optarg);
            break;
        case 'f':
            file = optarg;
            break;
        case 't':
            tmpdir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (nev < 1 || runs < 1 || optind != argc) {
        usage(stderr);
        return 2;
    }

    if (file) {
        printf("{\"file\":\"%s\",\"runs\":[", file);
        size_t n = 0;
        for (int r = 0; r < runs; r++) {
            /* Raw first, then the codec: each run pairs the two back to back. */
            double raw = file_raw_pass(file, &n);
            size_t n2;
            double codec = file_codec_pass(file, &n2);
            if (n2 != n)
                die(file, "the codec and Avro-C read different numbers of events");
            fprintf(stderr,
                    "bench_decode: run %d/%d: %zu events, Avro-C %.0f ev/s, codec %.0f ev/s\n",
                    r + 1, runs, n, raw, codec);
            printf("%s{\"events\":%zu,\"raw_eps\":%.1f,\"codec_eps\":%.1f}", r ? "," : "", n, raw,
                   codec);
            fflush(stdout);
        }
        printf("]}\n");
        return 0;
    }

    char err[512];
    fprintf(stderr, "bench_decode: generating %zu events\n", nev);
    ev_event_t *evs = make_events(nev);
    static const ev_wire_t wires[] = {EV_WIRE_CONFLUENT, EV_WIRE_SINGLE_OBJECT, EV_WIRE_PLAIN};
    enum { NW = sizeof wires / sizeof wires[0] };
    msgs_t msgs[NW];
    size_t body_bytes = 0;
    for (int w = 0; w < NW; w++)
        encode_all(evs, nev, wires[w], &msgs[w]);
    for (size_t i = 0; i < nev; i++)
        body_bytes += msgs[2].len[i];

    char path[4096];
    snprintf(path, sizeof path, "%s/bench_decode.%ld.avro", tmpdir, (long)getpid());
    ev_file_writer_t *fw = ev_file_writer_open(path, err, sizeof err);
    if (!fw)
        die("ev_file_writer_open", err);
    for (size_t i = 0; i < nev; i++)
        if (ev_file_writer_append(fw, &evs[i], err, sizeof err) != 0)
            die("ev_file_writer_append", err);
    if (ev_file_writer_close(fw, err, sizeof err) != 0)
        die("ev_file_writer_close", err);
    free(evs);

    ev_decoder_t *dec = ev_decoder_new(NULL, err, sizeof err);
    if (!dec)
        die("ev_decoder_new", err);
    avro_schema_t schema = cs_reader_schema_new(err, sizeof err);
    if (!schema)
        die("reader schema", err);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t val;
    if (!iface || avro_generic_value_new(iface, &val) != 0)
        die("avro_generic_value_new", avro_strerror());

    printf("{\"events\":%zu,\"mean_body_bytes\":%.1f,\"min_seconds\":%.2f,\"runs\":[", nev,
           (double)body_bytes / (double)nev, min_s);
    for (int r = 0; r < runs; r++) {
        printf("%s{", r ? "," : "");
        for (int w = 0; w < NW; w++) {
            double codec = time_codec(dec, wires[w], &msgs[w], min_s);
            double raw = time_raw(&val, &msgs[w], min_s);
            fprintf(stderr, "bench_decode: run %d/%d: %-13s codec %.0f ev/s, Avro-C %.0f ev/s\n",
                    r + 1, runs, ev_wire_name(wires[w]), codec, raw);
            printf("\"%s\":{\"codec_eps\":%.1f,\"raw_eps\":%.1f},", ev_wire_name(wires[w]), codec,
                   raw);
        }
        double codec = time_file(file_codec_pass, path, min_s, nev);
        double raw = time_file(file_raw_pass, path, min_s, nev);
        fprintf(stderr, "bench_decode: run %d/%d: %-13s codec %.0f ev/s, Avro-C %.0f ev/s\n", r + 1,
                runs, "container", codec, raw);
        printf("\"container\":{\"codec_eps\":%.1f,\"raw_eps\":%.1f}}", codec, raw);
        fflush(stdout);
    }
    printf("]}\n");

    avro_value_decref(&val);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    ev_decoder_destroy(dec);
    for (int w = 0; w < NW; w++)
        msgs_free(&msgs[w]);
    if (unlink(path) != 0)
        fprintf(stderr, "bench_decode: %s: %s\n", path, strerror(errno));
    return 0;
}
