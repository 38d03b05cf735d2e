/* CSV -> events: a column mapping (from a preset or --map), an in-memory loader that returns
 * the events sorted by event time (stable), and the bad-row report. Used by `import` (which
 * writes an Avro container file) and by `replay` (which can read a CSV directly). */
#ifndef CS_CSV_IMPORT_H
#define CS_CSV_IMPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "csv_reader.h"
#include "event.h"

#define IMP_NAME_MAX     64 /* bytes of a header name in --map */
#define IMP_FORMAT_MAX   64 /* bytes of a strptime format */
#define IMP_BAD_LIST_MAX 10 /* bad rows listed by line; the rest are only counted */

typedef enum {
    IMP_COL_NONE = 0, /* not mapped */
    IMP_COL_INDEX,    /* 0-based index (the text is 1-based) */
    IMP_COL_NAME,     /* header name, resolved to an index when the header is read */
} imp_col_kind_t;

typedef struct imp_col_s {
    imp_col_kind_t kind;
    int index; /* 0-based; valid for IMP_COL_INDEX, and for NAME after resolution */
    char name[IMP_NAME_MAX];
} imp_col_t;

typedef enum {
    IMP_TIME_ISO = 0, /* default: %Y-%m-%d[ T]%H:%M:%S[Z] or %Y-%m-%d */
    IMP_TIME_STRPTIME,
    IMP_TIME_EPOCH_MS,
    IMP_TIME_EPOCH_S, /* may have a fraction: 1700000000.25 */
} imp_time_kind_t;

/* The mapping. A plain value (no heap): copy freely, nothing to free. */
typedef struct imp_spec_s {
    int delimiter;  /* byte, or IMP_DELIM_WS (0) for runs of blanks */
    int has_header; /* first record names the columns */
    int strict;     /* the first bad row fails the load */

    imp_col_t user_id, event_time, amount, amount_factor, event_type;
    imp_col_t item_id, category, channel;
    imp_time_kind_t time_kind;
    char time_format[IMP_FORMAT_MAX]; /* IMP_TIME_STRPTIME */
    int event_type_is_const;          /* event_type column unused, type = event_type_const */
    ev_type_t event_type_const;

    /* Preset behaviour. */
    int user_id_integer;      /* "17850.0" -> "17850"; any other fraction is a bad row */
    int empty_user_is_filter; /* rows without a user are dropped silently, not bad rows */
    imp_col_t refund_col;     /* when set, a value starting with refund_prefix makes a refund */
    char refund_prefix[8];
    int refund_amount_abs; /* refunds carry |amount|: the money returned, as a positive */
    /* Online Retail II's header (Invoice, Price, Customer ID) is read as Online Retail's
     * (InvoiceNo, UnitPrice, CustomerID) when the latter's names are missing. */
    int retail_ii_names;
} imp_spec_t;

/* Parses the mapping. preset: NULL or "online-retail"; map: NULL or
 * "user_id=COL,event_time=COL[:FORMAT],amount=COL[*COL],event_type=COL|SYMBOL[,item_id=COL,
 * category=COL,channel=COL]" where COL is a 1-based index or a header name and FORMAT is a
 * strptime format, "epoch_ms" or "epoch_s"; map entries override the preset's. delimiter:
 * NULL (","), one byte, "\t"/"tab", or "ws". Returns 0, or -1 with errstr set. */
int imp_spec_parse(imp_spec_t *spec, const char *preset, const char *map, const char *delimiter,
                   int no_header, char *errstr, size_t errstr_size);

/* Index of the header column named `name` (blanks around it and a leading UTF-8 byte order
 * mark ignored, as --map's names are matched), or -1; header may be NULL. */
int imp_header_find(const imp_record_t *header, const char *name);
/* Warns once per process when an epoch-milliseconds time looks like epoch seconds (a value
 * that is 2001..2286 in seconds, the first months of 1970 in milliseconds). */
void imp_check_epoch_unit(imp_time_kind_t kind, int64_t ms, const char *text);

/* The map of churnstream's own CSV layouts when neither --preset nor --map is given: reads
 * the header of path (with --delimiter's value, NULL for ",") and, when it names user_id,
 * event_type and ts_ms (epoch ms) or event_time (ISO-8601), plus amount if present, writes
 * the equivalent --map text into map. Returns 0, or -1 with errstr saying what --map the
 * file needs (or why it cannot be read). */
int imp_auto_map(const char *path, const char *delimiter, char *map, size_t map_size, char *errstr,
                 size_t errstr_size);

/* Why a row was dropped. IMP_DROP_NO_USER under a preset that filters is not a bad row. */
typedef enum {
    IMP_DROP_COLUMNS = 0, /* wrong column count (an unterminated quote fails the load) */
    IMP_DROP_NO_USER,     /* empty user_id */
    IMP_DROP_BAD_USER,    /* user_id too long, or not an integer under user_id_integer */
    IMP_DROP_BAD_TIME,
    IMP_DROP_BAD_NUMBER,
    IMP_DROP_COUNT
} imp_drop_t;

const char *imp_drop_name(imp_drop_t d);

typedef struct imp_bad_row_s {
    long line_no;
    imp_drop_t reason;
    char detail[96];
} imp_bad_row_t;

typedef struct imp_store_s imp_store_t;

/* Load result. Statistics are public; events are reached through imp_result_get(). */
typedef struct imp_result_s {
    size_t n_events;
    int64_t rows_read; /* data records, header excluded */
    int64_t dropped[IMP_DROP_COUNT];
    int64_t bad_rows; /* dropped rows that are errors (see IMP_DROP_NO_USER) */
    imp_bad_row_t bad[IMP_BAD_LIST_MAX];
    int n_bad_listed;
    int64_t by_type[EV_TYPE_COUNT];
    size_t n_users;
    int64_t time_min_ms, time_max_ms; /* valid when n_events > 0 */
    imp_store_t *store;               /* compact records and string pool */
} imp_result_t;

/* Reads path (gzip or plain) with the mapping and fills *out (zeroed first) with every good
 * row as an event, sorted by event time; rows with equal times keep their file order.
 * Returns 0, or -1 with errstr set on an I/O error, a mapping error (unknown header name,
 * column out of range) or, in strict mode, the first bad row ("FILE:LINE: ..."). On -1
 * *out holds nothing to free. */
int imp_load(const imp_spec_t *spec, const char *path, imp_result_t *out, char *errstr,
             size_t errstr_size);

/* Fills *ev with event i (0 <= i < n_events) in time order. */
void imp_result_get(const imp_result_t *res, size_t i, ev_event_t *ev);

/* Writes the human-readable summary (rows, events, drops by reason, listed bad rows,
 * users, time range). */
void imp_result_print_summary(const imp_result_t *res, const char *path, FILE *out);

/* Frees what imp_load allocated; the struct itself belongs to the caller. */
void imp_result_free(imp_result_t *res);

#endif
