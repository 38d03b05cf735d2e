/* Importer internals shared by the loader and the tests: value parsers (times, numbers),
 * header resolution and the mapping of one CSV record to event fields. */
#ifndef CS_CSV_MAP_H
#define CS_CSV_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "csv_import.h"
#include "csv_reader.h"

/* One mapped row. String pointers alias the record's fields (trimmed in place): valid until
 * the next imp_reader_next(). */
typedef struct imp_row_s {
    const char *user_id;
    size_t user_id_len;
    ev_type_t type;
    int64_t time_ms;
    double amount;
    const char *item_id, *category, *channel; /* NULL when unmapped or empty */
} imp_row_t;

/* Parses text (surrounding blanks ignored) as a UTC time of the given kind. Returns 0 with
 * *out_ms set, or -1 when the text does not match or names an impossible date. */
int imp_parse_time(imp_time_kind_t kind, const char *format, const char *text, int64_t *out_ms);
/* An event type column's value: a schema symbol in any case, '-' or ' ' read as '_'
 * ("Add-To-Cart"), or a common synonym of an activity type (view, pageview, product_view ->
 * page_view; cart, addtocart -> add_to_cart; removefromcart -> remove_from_cart;
 * transaction, order -> purchase; session -> session_start). 0, or -1 (the caller maps it
 * to other). */
int imp_event_type(const char *text, ev_type_t *out);

/* Parses a finite decimal number (blanks ignored; empty text is 0). With decimal_comma (files
 * not delimited by ','), a number with one ',' and no '.' reads the comma as the decimal
 * point ("12,5" = 12.5); a ',' is never a thousands separator. Returns 0 or -1. */
int imp_parse_number(const char *text, int decimal_comma, double *out);

/* Resolves header names to indexes and checks every mapped index against ncols, the column
 * count of the header (or of the first record without a header). header may be NULL when
 * the spec has no header. Returns 0, or -1 with errstr naming the column. */
int imp_map_resolve(imp_spec_t *spec, const imp_record_t *header, int ncols, char *errstr,
                    size_t errstr_size);

/* Maps one data record (spec resolved, record with ncols columns expected). Returns 0, or -1
 * with *reason and a human-readable detail. */
int imp_map_row(const imp_spec_t *spec, int ncols, imp_record_t *rec, imp_row_t *row,
                imp_drop_t *reason, char *detail, size_t detail_size);

#endif
