/* The column map of churnstream's own CSV layouts, found by header names when neither
 * --preset nor --map is given (csv_import.h, imp_auto_map). The layouts: `gen --out x.csv`
 * writes user_id,ts_ms,event_type,amount; the shared scorer (backtest_score.py) reads the
 * same or event_time (ISO-8601) instead of ts_ms. Nothing is guessed beyond exact names:
 * any other header gets an error that says which --map it needs. */
#include "csv_import.h"

#include <stdio.h>
#include <string.h>

/* Index of the column named `name` (exact, after trimming blanks), or -1. */
static int find(const imp_record_t *h, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < h->nfields; i++) {
        const char *f = h->fields[i];
        size_t len = h->lens[i];
        while (len > 0 && (*f == ' ' || *f == '\t')) {
            f++;
            len--;
        }
        while (len > 0 && (f[len - 1] == ' ' || f[len - 1] == '\t' || f[len - 1] == '\r'))
            len--;
        if (len == n && memcmp(f, name, n) == 0)
            return i;
    }
    return -1;
}

int imp_auto_map(const char *path, const char *delimiter, char *map, size_t map_size, char *errstr,
                 size_t errstr_size)
{
    /* The delimiter exactly as --delimiter parses it (any valid map will do for that). */
    imp_spec_t probe;
    if (imp_spec_parse(&probe, NULL, "user_id=1,event_time=2,event_type=3", delimiter, 0, errstr,
                       errstr_size) != 0)
        return -1;
    imp_reader_t *r = imp_reader_open(path, probe.delimiter, errstr, errstr_size);
    if (!r)
        return -1;
    imp_record_t h;
    int rc = imp_reader_next(r, &h, errstr, errstr_size);
    if (rc <= 0) {
        if (rc == 0)
            snprintf(errstr, errstr_size, "%s: empty file (no header line)", path);
        imp_reader_close(r);
        return -1;
    }
    int user = find(&h, "user_id"), type = find(&h, "event_type"), ms = find(&h, "ts_ms"),
        iso = find(&h, "event_time"), amount = find(&h, "amount");
    if (user < 0 || type < 0 || (ms < 0 && iso < 0)) {
        char names[160] = "";
        size_t len = 0;
        for (int i = 0; i < h.nfields && i < 8 && len + 1 < sizeof(names); i++) {
            int k =
                snprintf(names + len, sizeof(names) - len, "%s%.24s", i ? "," : "", h.fields[i]);
            if (k < 0)
                break;
            len += (size_t)k < sizeof(names) - len ? (size_t)k : sizeof(names) - len - 1;
        }
        snprintf(errstr, errstr_size,
                 "%s: no --map or --preset, and the header (%s%s) does not name the columns "
                 "churnstream maps by itself (user_id, event_type, and ts_ms in epoch ms or "
                 "event_time in ISO-8601; amount optional); give --map, e.g. --map "
                 "user_id=1,event_time=2:%%Y-%%m-%%d,event_type=3,amount=4",
                 path, names, h.nfields > 8 ? ",..." : "");
        imp_reader_close(r);
        return -1;
    }
    imp_reader_close(r);
    int n = snprintf(map, map_size, "user_id=user_id,event_type=event_type,event_time=%s%s",
                     ms >= 0 ? "ts_ms:epoch_ms" : "event_time:iso",
                     amount >= 0 ? ",amount=amount" : "");
    if (n < 0 || (size_t)n >= map_size) {
        snprintf(errstr, errstr_size, "%s: map buffer too small", path);
        return -1;
    }
    return 0;
}
