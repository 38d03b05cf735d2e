/* libFuzzer target for the CSV reader and mapper (import and replay of CSV files): the first
 * input byte picks the delimiter (',', ';', tab, runs of blanks) and the mapping (header
 * names as in the Online Retail preset, or 1-based indexes without a header); the rest is
 * the file, given to imp_load() through a memfd (plain or, when it starts with the gzip
 * magic, gzip). Every load either fails with a message or yields events that are sorted,
 * carry valid UTF-8 user ids without NUL, and add up with the drops to the rows read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "csv_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const imp_result_t *res)
{
    int64_t dropped = 0;
    for (int d = 0; d < IMP_DROP_COUNT; d++)
        dropped += res->dropped[d];
    if ((int64_t)res->n_events + dropped != res->rows_read)
        abort();
    int64_t prev = INT64_MIN;
    ev_event_t ev;
    for (size_t i = 0; i < res->n_events; i++) {
        imp_result_get(res, i, &ev);
        if (ev.event_time_ms < prev || ev.user_id_len == 0 ||
            strlen(ev.user_id) != ev.user_id_len ||
            !ev_utf8_valid(ev.user_id, ev.user_id_len, NULL))
            abort();
        prev = ev.event_time_ms;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const delims[] = {",", ";", "tab", "ws"};
    static const char *const maps[] = {
        NULL, /* the Online Retail preset: header names */
        "user_id=1,event_time=2,amount=3*4,event_type=5,item_id=6,category=7,channel=8",
        "user_id=1,event_time=2:epoch_ms,event_type=purchase",
        "user_id=a,event_time=t:%Y-%m-%d,amount=x,event_type=e",
    };
    uint8_t sel = data[0];
    const char *delim = delims[sel & 3];
    int map_i = (sel >> 2) & 3;
    int no_header = map_i == 1 || map_i == 2;
    char err[512];
    imp_spec_t spec;
    if (imp_spec_parse(&spec, map_i == 0 ? "online-retail" : NULL, maps[map_i], delim, no_header,
                       err, sizeof err) != 0)
        abort(); /* every spec above is valid */
    spec.strict = (sel >> 4) & 1;

    int fd = memfd_create("fuzz_csv", 0);
    if (fd < 0)
        return 0;
    if (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    imp_result_t res;
    if (imp_load(&spec, path, &res, err, sizeof err) == 0) {
        check(&res);
        imp_result_free(&res);
    } else if (err[0] == '\0') {
        abort(); /* a failure always says why */
    }
    close(fd);
    return 0;
}
