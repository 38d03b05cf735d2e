/* The column map of churnstream's own CSV layouts, found by header names when neither
 * --preset nor --map is given (csv_import.h, imp_auto_map). The layouts: `gen --out x.csv`
 * writes user_id,ts_ms,event_type,amount; the shared scorer (backtest_score.py) reads the
 * same or event_time (ISO-8601) instead of ts_ms. Nothing is guessed beyond exact names:
 * any other header gets an error that says which --map it needs. Header names are matched
 * by imp_header_find, the same match --map's names get. */
#include "csv_import.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

int imp_header_find(const imp_record_t *header, const char *name)
{
    for (int i = 0; header && i < header->nfields; i++) {
        const char *h = header->fields[i];
        if (i == 0 && (unsigned char)h[0] == 0xEF && (unsigned char)h[1] == 0xBB &&
            (unsigned char)h[2] == 0xBF)
            h += 3; /* UTF-8 byte order mark written by spreadsheet exports */
        while (*h == ' ' || *h == '\t')
            h++;
        size_t hl = strlen(h);
        while (hl > 0 && (h[hl - 1] == ' ' || h[hl - 1] == '\t'))
            hl--;
        if (hl == strlen(name) && strncmp(h, name, hl) == 0)
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
    int user = imp_header_find(&h, "user_id"), type = imp_header_find(&h, "event_type"),
        ms = imp_header_find(&h, "ts_ms"), iso = imp_header_find(&h, "event_time"),
        amount = imp_header_find(&h, "amount");
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

void imp_check_epoch_unit(imp_time_kind_t kind, int64_t ms, const char *text)
{
    static int warned; /* once per process: one look-alike is enough to tell */
    /* 1e9 .. 1e10 is 2001-09-09 .. 2286 as seconds, 1970-01-12 .. 1970-04-26 as milliseconds */
    if (warned || kind != IMP_TIME_EPOCH_MS || ms < 1000000000LL || ms >= 10000000000LL)
        return;
    warned = 1;
    log_warn("import",
             "event time \"%.40s\" read as epoch milliseconds falls in 1970: it looks like epoch "
             "seconds; if so, map the column as epoch_s, e.g. --map "
             "'user_id=user_id,event_time=ts_ms:epoch_s,event_type=event_type,amount=amount'",
             text);
}
