/* Writes the events of an Avro container file as CSV (user_id,event_time_ms,type,amount;
 * type = the ev_type_t index) through the codec's reader, for the Python baselines, which
 * need every event's time (label times, the pure-Python feature loop) and would spend
 * minutes decoding millions of records with fastavro. */
#include <stdio.h>
#include <stdlib.h>

#include "codec.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: dump_events FILE.avro OUT.csv\n", stderr);
        return 2;
    }
    char err[512];
    ev_file_reader_t *r = ev_file_reader_open(argv[1], err, sizeof err);
    if (!r) {
        fprintf(stderr, "dump_events: %s\n", err);
        return 1;
    }
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        ev_file_reader_close(r);
        return 1;
    }
    /* A big buffer: millions of short lines. */
    static char buf[1 << 20];
    setvbuf(out, buf, _IOFBF, sizeof buf);
    fputs("user_id,event_time_ms,type,amount\n", out);
    ev_event_t ev;
    ev_reason_t reason;
    int got;
    long long n = 0, bad = 0;
    while ((got = ev_file_reader_next(r, &ev, &reason, err, sizeof err)) == 1) {
        if (reason != EV_OK) { /* replay rejects these too: leave them out */
            bad++;
            continue;
        }
        /* user ids from gen and import hold no commas or quotes; refuse any that do */
        for (const char *c = ev.user_id; *c; c++)
            if (*c == ',' || *c == '"' || *c == '\n') {
                fprintf(stderr, "dump_events: user_id needs CSV quoting: %s\n", ev.user_id);
                return 1;
            }
        fprintf(out, "%s,%lld,%d,%.17g\n", ev.user_id, (long long)ev.event_time_ms, (int)ev.type,
                ev.amount);
        n++;
    }
    ev_file_reader_close(r);
    if (got < 0) {
        fprintf(stderr, "dump_events: %s\n", err);
        return 1;
    }
    if (fclose(out) != 0) {
        perror(argv[2]);
        return 1;
    }
    fprintf(stderr, "dump_events: %lld events, %lld rejected\n", n, bad);
    return 0;
}
