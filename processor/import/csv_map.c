/* The importer's column mapping: parsing --preset/--map/--delimiter into an imp_spec_t,
 * resolving header names, and turning one CSV record into event fields (times parsed in
 * UTC with strptime + timegm, numbers with strtod, event types from the schema's symbols). */
#include "csv_map.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const imp_drop_names[IMP_DROP_COUNT] = {
    "wrong_columns", "no_user_id", "bad_user_id", "bad_time", "bad_number",
};

const char *imp_drop_name(imp_drop_t d)
{
    return (d >= 0 && d < IMP_DROP_COUNT) ? imp_drop_names[d] : "unknown";
}

/* ---- value parsers ---------------------------------------------------------------- */

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static int only_blanks(const char *s)
{
    return *skip_blanks(s) == '\0';
}

static int is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int mon0)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return mon0 == 1 && is_leap(year) ? 29 : dim[mon0];
}

/* strptime accepts 31 for any month and timegm silently normalizes 2024-02-30 to March 1;
 * a date that does not exist is a data error, so it is rejected here. */
static int tm_valid(struct tm *tm)
{
    if (tm->tm_mday == 0)
        tm->tm_mday = 1; /* format without a day, e.g. "%Y-%m" */
    if (tm->tm_mon < 0 || tm->tm_mon > 11)
        return 0;
    return tm->tm_mday <= days_in_month(tm->tm_year + 1900, tm->tm_mon);
}

/* After the strptime part: optional ".fff" fraction, optional zone (iso only: "Z",
 * +hh:mm / -hhmm, or " UTC" / " GMT" as exports of BigQuery, Spark and pandas write it),
 * then blanks only. Adds the fraction and subtracts the offset. */
static int parse_time_tail(const char *end, int allow_zone, int64_t *ms)
{
    if (*end == '.' && isdigit((unsigned char)end[1])) {
        double scale = 100.0, frac_ms = 0.0;
        for (end++; isdigit((unsigned char)*end); end++) {
            frac_ms += (*end - '0') * scale;
            scale /= 10.0;
        }
        *ms += (int64_t)frac_ms;
    }
    if (allow_zone) {
        const char *z = skip_blanks(end);
        if (*end == 'Z') {
            end++;
        } else if (strncmp(z, "UTC", 3) == 0 || strncmp(z, "GMT", 3) == 0) {
            end = z + 3;
        } else if ((*end == '+' || *end == '-') && isdigit((unsigned char)end[1])) {
            int sign = *end == '-' ? -1 : 1, hh, mm;
            if (sscanf(end + 1, "%2d:%2d", &hh, &mm) == 2)
                end += 6;
            else if (sscanf(end + 1, "%2d%2d", &hh, &mm) == 2)
                end += 5;
            else
                return -1;
            if (hh > 23 || mm > 59)
                return -1;
            *ms -= sign * ((int64_t)hh * 3600 + mm * 60) * 1000;
        }
    }
    return only_blanks(end) ? 0 : -1;
}

static int parse_strptime(const char *format, const char *text, int allow_zone, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(text, format, &tm);
    if (!end || !tm_valid(&tm))
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
        return -1;
    int64_t ms = (int64_t)t * 1000;
    if (parse_time_tail(end, allow_zone, &ms) < 0)
        return -1;
    *out = ms;
    return 0;
}

int imp_parse_time(imp_time_kind_t kind, const char *format, const char *text, int64_t *out_ms)
{
    static const char *const iso_formats[] = {
        "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d",
    };
    text = skip_blanks(text);
    if (*text == '\0')
        return -1;
    switch (kind) {
    case IMP_TIME_EPOCH_MS:
    case IMP_TIME_EPOCH_S: {
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (end == text || errno || !isfinite(v) || !only_blanks(end))
            return -1;
        if (kind == IMP_TIME_EPOCH_S)
            v *= 1000.0;
        if (fabs(v) > 9.0e15) /* beyond 2^53 ms the value is not an exact integer */
            return -1;
        *out_ms = (int64_t)llround(v);
        return 0;
    }
    case IMP_TIME_STRPTIME:
        return parse_strptime(format, text, 0, out_ms);
    case IMP_TIME_ISO:
        for (size_t i = 0; i < sizeof(iso_formats) / sizeof(iso_formats[0]); i++) {
            if (parse_strptime(iso_formats[i], text, 1, out_ms) == 0)
                return 0;
        }
        return -1;
    }
    return -1;
}

/* Names public event logs use for the schema's activity types (Retail Rocket's view /
 * addtocart / transaction, the REES46 store logs' view / cart). Only activity to activity:
 * refund and subscription_cancel, which are not activity (DESIGN.md), are taken by their
 * schema names alone, so no synonym moves a label. */
static const struct {
    const char *name;
    ev_type_t type;
} type_synonyms[] = {
    {"view", EV_PAGE_VIEW},         {"pageview", EV_PAGE_VIEW},
    {"product_view", EV_PAGE_VIEW}, {"cart", EV_ADD_TO_CART},
    {"addtocart", EV_ADD_TO_CART},  {"removefromcart", EV_REMOVE_FROM_CART},
    {"transaction", EV_PURCHASE},   {"order", EV_PURCHASE},
    {"session", EV_SESSION_START},
};

int imp_event_type(const char *text, ev_type_t *out)
{
    char sym[32];
    size_t n = strlen(text);
    if (n >= sizeof(sym))
        return -1;
    for (size_t i = 0; i <= n; i++) {
        char c = (char)tolower((unsigned char)text[i]);
        sym[i] = c == '-' || c == ' ' ? '_' : c;
    }
    if (ev_type_parse(sym, out) == 0)
        return 0;
    for (size_t i = 0; i < sizeof(type_synonyms) / sizeof(type_synonyms[0]); i++)
        if (strcmp(sym, type_synonyms[i].name) == 0) {
            *out = type_synonyms[i].type;
            return 0;
        }
    return -1;
}

int imp_parse_number(const char *text, int decimal_comma, double *out)
{
    text = skip_blanks(text);
    if (*text == '\0') {
        *out = 0.0;
        return 0;
    }
    /* "12,5": the decimal comma of European exports, when one ',' and no '.' (the copy is
     * bounded: a longer field is no number anyway). */
    char buf[64];
    const char *comma = decimal_comma ? strchr(text, ',') : NULL;
    if (comma && !strchr(comma + 1, ',') && !strchr(text, '.') && strlen(text) < sizeof buf) {
        memcpy(buf, text, strlen(text) + 1);
        buf[comma - text] = '.';
        text = buf;
    }
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || !only_blanks(end) || !isfinite(v) || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

/* ---- spec parsing ------------------------------------------------------------------ */

static int parse_col(const char *text, size_t len, imp_col_t *col, const char *key, char *errstr,
                     size_t errstr_size)
{
    memset(col, 0, sizeof(*col));
    if (len == 0) {
        snprintf(errstr, errstr_size, "--map: %s: empty column", key);
        return -1;
    }
    size_t i = 0;
    while (i < len && isdigit((unsigned char)text[i]))
        i++;
    if (i == len) {
        long v = strtol(text, NULL, 10);
        if (v < 1 || v > 100000) {
            snprintf(errstr, errstr_size,
                     "--map: %s: column index %.*s out of range (columns count from 1)", key,
                     (int)len, text);
            return -1;
        }
        col->kind = IMP_COL_INDEX;
        col->index = (int)v - 1;
        return 0;
    }
    if (len >= IMP_NAME_MAX) {
        snprintf(errstr, errstr_size, "--map: %s: column name longer than %d bytes", key,
                 IMP_NAME_MAX - 1);
        return -1;
    }
    col->kind = IMP_COL_NAME;
    memcpy(col->name, text, len);
    col->name[len] = '\0';
    return 0;
}

/* Length of a map entry starting at s: up to the next ',' followed by "name=" (a letter or
 * '_' then letters, digits, '_'), so strptime formats such as "%d,%m,%Y" may hold commas. */
static size_t map_entry_len(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p != ',' || !(isalpha((unsigned char)p[1]) || p[1] == '_'))
            continue;
        const char *q = p + 1;
        while (isalnum((unsigned char)*q) || *q == '_')
            q++;
        if (*q == '=')
            return (size_t)(p - s);
    }
    return strlen(s);
}

static int parse_time_spec(imp_spec_t *spec, const char *fmt, size_t len, char *errstr,
                           size_t errstr_size)
{
    if (len == 6 && strncmp(fmt, "epoch_", 6) == 0) {
        snprintf(errstr, errstr_size, "--map: event_time: empty epoch unit");
        return -1;
    }
    if (len == 8 && strncmp(fmt, "epoch_ms", 8) == 0) {
        spec->time_kind = IMP_TIME_EPOCH_MS;
    } else if (len == 7 && strncmp(fmt, "epoch_s", 7) == 0) {
        spec->time_kind = IMP_TIME_EPOCH_S;
    } else if (len == 3 && strncmp(fmt, "iso", 3) == 0) {
        spec->time_kind = IMP_TIME_ISO;
    } else {
        if (len == 0 || len >= IMP_FORMAT_MAX || !memchr(fmt, '%', len)) {
            snprintf(errstr, errstr_size,
                     "--map: event_time: format \"%.*s\" must be a strptime format such as "
                     "%%Y-%%m-%%d, or epoch_ms, epoch_s, iso",
                     (int)len, fmt);
            return -1;
        }
        spec->time_kind = IMP_TIME_STRPTIME;
        memcpy(spec->time_format, fmt, len);
        spec->time_format[len] = '\0';
    }
    return 0;
}

static int parse_map_entry(imp_spec_t *spec, const char *s, size_t len, char *errstr,
                           size_t errstr_size)
{
    const char *eq = memchr(s, '=', len);
    if (!eq) {
        snprintf(errstr, errstr_size, "--map: \"%.*s\": expected key=COLUMN", (int)len, s);
        return -1;
    }
    size_t klen = (size_t)(eq - s), vlen = len - klen - 1;
    const char *v = eq + 1;
    char key[32];
    snprintf(key, sizeof(key), "%.*s", (int)(klen < 31 ? klen : 31), s);

    if (strcmp(key, "user_id") == 0)
        return parse_col(v, vlen, &spec->user_id, key, errstr, errstr_size);
    if (strcmp(key, "item_id") == 0)
        return parse_col(v, vlen, &spec->item_id, key, errstr, errstr_size);
    if (strcmp(key, "category") == 0)
        return parse_col(v, vlen, &spec->category, key, errstr, errstr_size);
    if (strcmp(key, "channel") == 0)
        return parse_col(v, vlen, &spec->channel, key, errstr, errstr_size);
    if (strcmp(key, "event_time") == 0) {
        const char *colon = memchr(v, ':', vlen);
        size_t clen = colon ? (size_t)(colon - v) : vlen;
        if (parse_col(v, clen, &spec->event_time, key, errstr, errstr_size) < 0)
            return -1;
        if (!colon) {
            spec->time_kind = IMP_TIME_ISO;
            return 0;
        }
        return parse_time_spec(spec, colon + 1, vlen - clen - 1, errstr, errstr_size);
    }
    if (strcmp(key, "amount") == 0) {
        const char *star = memchr(v, '*', vlen);
        size_t alen = star ? (size_t)(star - v) : vlen;
        if (parse_col(v, alen, &spec->amount, key, errstr, errstr_size) < 0)
            return -1;
        memset(&spec->amount_factor, 0, sizeof(spec->amount_factor));
        if (!star)
            return 0;
        if (memchr(star + 1, '*', vlen - alen - 1)) {
            snprintf(errstr, errstr_size,
                     "--map: amount: only COLUMN or COLUMN*COLUMN is supported");
            return -1;
        }
        return parse_col(star + 1, vlen - alen - 1, &spec->amount_factor, key, errstr, errstr_size);
    }
    if (strcmp(key, "event_type") == 0) {
        char sym[32];
        ev_type_t t;
        if (vlen < sizeof(sym)) {
            memcpy(sym, v, vlen);
            sym[vlen] = '\0';
            if (ev_type_parse(sym, &t) == 0) {
                spec->event_type_is_const = 1;
                spec->event_type_const = t;
                memset(&spec->event_type, 0, sizeof(spec->event_type));
                return 0;
            }
        }
        spec->event_type_is_const = 0;
        return parse_col(v, vlen, &spec->event_type, key, errstr, errstr_size);
    }
    snprintf(errstr, errstr_size,
             "--map: unknown key \"%s\" (expected user_id, event_time, amount, event_type, "
             "item_id, category, channel)",
             key);
    return -1;
}

static void preset_online_retail(imp_spec_t *spec)
{
    /* /work/shared/data/README.md: drop rows without CustomerID, user = CustomerID as an
     * integer, one purchase per line with amount = Quantity * UnitPrice, C invoices are
     * refunds (amount kept as the positive refunded money). */
    spec->user_id = (imp_col_t){.kind = IMP_COL_NAME, .name = "CustomerID"};
    spec->event_time = (imp_col_t){.kind = IMP_COL_NAME, .name = "InvoiceDate"};
    spec->time_kind = IMP_TIME_STRPTIME;
    snprintf(spec->time_format, sizeof(spec->time_format), "%%Y-%%m-%%d %%H:%%M:%%S");
    spec->amount = (imp_col_t){.kind = IMP_COL_NAME, .name = "Quantity"};
    spec->amount_factor = (imp_col_t){.kind = IMP_COL_NAME, .name = "UnitPrice"};
    spec->event_type_is_const = 1;
    spec->event_type_const = EV_PURCHASE;
    spec->item_id = (imp_col_t){.kind = IMP_COL_NAME, .name = "StockCode"};
    spec->user_id_integer = 1;
    spec->empty_user_is_filter = 1;
    spec->refund_col = (imp_col_t){.kind = IMP_COL_NAME, .name = "InvoiceNo"};
    snprintf(spec->refund_prefix, sizeof(spec->refund_prefix), "C");
    spec->refund_amount_abs = 1;
    spec->retail_ii_names = 1;
}

/* The preset's names in Online Retail II (UCI 502, 2009-2011: the same shop's log with
 * renamed columns), used when the header has "Customer ID" and no "CustomerID": a column
 * named by an Online Retail name (the preset's, or a --map entry's) takes the II name. */
static void retail_ii_rename(imp_spec_t *spec, const imp_record_t *header)
{
    static const char *const names[][2] = {
        {"CustomerID", "Customer ID"}, {"UnitPrice", "Price"}, {"InvoiceNo", "Invoice"}};
    if (!spec->retail_ii_names || !header || imp_header_find(header, "CustomerID") >= 0 ||
        imp_header_find(header, "Customer ID") < 0)
        return;
    imp_col_t *cols[] = {&spec->user_id, &spec->amount_factor, &spec->refund_col};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (cols[i]->kind == IMP_COL_NAME && strcmp(cols[i]->name, names[k][0]) == 0)
                snprintf(cols[i]->name, sizeof(cols[i]->name), "%s", names[k][1]);
}

static int uses_name(const imp_col_t *c)
{
    return c->kind == IMP_COL_NAME;
}

int imp_spec_parse(imp_spec_t *spec, const char *preset, const char *map, const char *delimiter,
                   int no_header, char *errstr, size_t errstr_size)
{
    memset(spec, 0, sizeof(*spec));
    spec->delimiter = ',';
    spec->has_header = !no_header;
    spec->event_type_const = EV_OTHER;

    if (preset && *preset) {
        if (strcmp(preset, "online-retail") == 0) {
            preset_online_retail(spec);
        } else {
            snprintf(errstr, errstr_size, "--preset: unknown preset \"%s\" (known: online-retail)",
                     preset);
            return -1;
        }
    }
    if (delimiter) {
        if (strcmp(delimiter, "ws") == 0) {
            spec->delimiter = IMP_DELIM_WS;
        } else if (strcmp(delimiter, "tab") == 0 || strcmp(delimiter, "\\t") == 0) {
            spec->delimiter = '\t';
        } else if (strlen(delimiter) == 1 && delimiter[0] != '"' && delimiter[0] != '\n' &&
                   delimiter[0] != '\r') {
            spec->delimiter = (unsigned char)delimiter[0];
        } else {
            snprintf(errstr, errstr_size,
                     "--delimiter: expected one character, \"tab\" or \"ws\", got \"%s\"",
                     delimiter);
            return -1;
        }
    }
    /* Entries override the preset's, but two entries for one key are a mistake (which one
     * was meant?), never a silent last-wins. */
    const char *seen[16];
    size_t seen_len[16], n_seen = 0;
    for (const char *p = map; p && *p;) {
        size_t len = map_entry_len(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        for (size_t i = 0; eq && i < n_seen; i++) {
            if (seen_len[i] == klen && memcmp(seen[i], p, klen) == 0) {
                snprintf(errstr, errstr_size, "--map: key \"%.*s\" is given twice",
                         (int)(klen < 40 ? klen : 40), p);
                return -1;
            }
        }
        if (parse_map_entry(spec, p, len, errstr, errstr_size) < 0)
            return -1;
        if (n_seen < sizeof seen / sizeof seen[0]) {
            seen[n_seen] = p;
            seen_len[n_seen++] = klen;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (spec->user_id.kind == IMP_COL_NONE || spec->event_time.kind == IMP_COL_NONE ||
        (!spec->event_type_is_const && spec->event_type.kind == IMP_COL_NONE)) {
        snprintf(errstr, errstr_size,
                 "--map: user_id, event_time and event_type are required, e.g. "
                 "--map user_id=1,event_time=2:%%Y-%%m-%%d,amount=3,event_type=purchase "
                 "(or use --preset online-retail)");
        return -1;
    }
    if (!spec->has_header) {
        const imp_col_t *cols[] = {&spec->user_id,       &spec->event_time, &spec->amount,
                                   &spec->amount_factor, &spec->event_type, &spec->item_id,
                                   &spec->category,      &spec->channel,    &spec->refund_col};
        for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
            if (uses_name(cols[i])) {
                snprintf(errstr, errstr_size,
                         "--map: column \"%s\" is a header name but --no-header is set; use "
                         "its 1-based index",
                         cols[i]->name);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- header resolution and row mapping --------------------------------------------- */

static int resolve_col(imp_col_t *col, const imp_record_t *header, int ncols, char *errstr,
                       size_t errstr_size)
{
    if (col->kind == IMP_COL_NONE)
        return 0;
    if (col->kind == IMP_COL_NAME) {
        int i = imp_header_find(header, col->name);
        if (i >= 0) {
            col->index = i;
            return 0;
        }
        snprintf(errstr, errstr_size, "no column named \"%s\" in the header (%d columns)",
                 col->name, header ? header->nfields : 0);
        return -1;
    }
    if (col->index >= ncols) {
        snprintf(errstr, errstr_size, "column %d out of range: the %s has %d columns",
                 col->index + 1, header ? "header" : "first row", ncols);
        return -1;
    }
    return 0;
}

int imp_map_resolve(imp_spec_t *spec, const imp_record_t *header, int ncols, char *errstr,
                    size_t errstr_size)
{
    imp_col_t *cols[] = {&spec->user_id,       &spec->event_time, &spec->amount,
                         &spec->amount_factor, &spec->event_type, &spec->item_id,
                         &spec->category,      &spec->channel,    &spec->refund_col};
    retail_ii_rename(spec, header);
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        if (resolve_col(cols[i], header, ncols, errstr, errstr_size) < 0)
            return -1;
    }
    return 0;
}

/* Trims blanks in place (the record's buffer is ours until the next read). */
static char *trim(char *s)
{
    s = (char *)skip_blanks(s);
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* An optional string column: NULL when unmapped or empty; cut to at most EV_STR_MAX bytes
 * without splitting a UTF-8 sequence. */
static const char *opt_str(imp_record_t *rec, const imp_col_t *col)
{
    if (col->kind == IMP_COL_NONE)
        return NULL;
    char *s = trim(rec->fields[col->index]);
    size_t n = strlen(s);
    if (n == 0)
        return NULL;
    if (n > EV_STR_MAX) {
        n = EV_STR_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        s[n] = '\0';
    }
    return s;
}

static int fail(imp_drop_t *reason, imp_drop_t r, char *detail, size_t detail_size, const char *fmt,
                const char *arg)
{
    *reason = r;
    snprintf(detail, detail_size, fmt, arg);
    return -1;
}

int imp_map_row(const imp_spec_t *spec, int ncols, imp_record_t *rec, imp_row_t *row,
                imp_drop_t *reason, char *detail, size_t detail_size)
{
    if (rec->nfields != ncols) {
        *reason = IMP_DROP_COLUMNS;
        snprintf(detail, detail_size, "expected %d columns, got %d", ncols, rec->nfields);
        return -1;
    }

    /* A NUL inside the cell would cut the id short at strlen() and merge users: compare
     * with the cell's real length before anything else. */
    if (memchr(rec->fields[spec->user_id.index], '\0', rec->lens[spec->user_id.index]))
        return fail(reason, IMP_DROP_BAD_USER, detail, detail_size, "user_id contains a NUL byte%s",
                    "");
    char *uid = trim(rec->fields[spec->user_id.index]);
    size_t ulen = strlen(uid);
    size_t bad_at;
    if (!ev_utf8_valid(uid, ulen, &bad_at)) {
        char at[32];
        snprintf(at, sizeof at, "%zu", bad_at);
        return fail(reason, IMP_DROP_BAD_USER, detail, detail_size,
                    "user_id is not valid UTF-8 (byte %s)", at);
    }
    if (ulen == 0)
        return fail(reason, IMP_DROP_NO_USER, detail, detail_size, "empty user_id%s", "");
    if (spec->user_id_integer) {
        /* "17850.0" -> "17850": the Online Retail export stores ids as floats. */
        size_t digits = 0;
        while (digits < ulen && isdigit((unsigned char)uid[digits]))
            digits++;
        size_t k = digits;
        if (k < ulen && uid[k] == '.') {
            k++;
            while (k < ulen && uid[k] == '0')
                k++;
        }
        if (digits == 0 || k != ulen)
            return fail(reason, IMP_DROP_BAD_USER, detail, detail_size,
                        "user_id \"%.40s\" is not an integer", uid);
        uid[digits] = '\0';
        ulen = digits;
    }
    if (ulen > EV_USER_ID_MAX)
        return fail(reason, IMP_DROP_BAD_USER, detail, detail_size,
                    "user_id longer than 256 bytes%s", "");
    row->user_id = uid;
    row->user_id_len = ulen;

    const char *ts = rec->fields[spec->event_time.index];
    if (imp_parse_time(spec->time_kind, spec->time_format, ts, &row->time_ms) < 0)
        return fail(reason, IMP_DROP_BAD_TIME, detail, detail_size, "cannot parse time \"%.40s\"",
                    ts);
    imp_check_epoch_unit(spec->time_kind, row->time_ms, ts);

    row->amount = 0.0;
    if (spec->amount.kind != IMP_COL_NONE) {
        const char *a = rec->fields[spec->amount.index];
        const int decimal_comma = spec->delimiter != ',';
        if (imp_parse_number(a, decimal_comma, &row->amount) < 0)
            return fail(reason, IMP_DROP_BAD_NUMBER, detail, detail_size,
                        "cannot parse number \"%.40s\"", a);
        if (spec->amount_factor.kind != IMP_COL_NONE) {
            double f;
            const char *b = rec->fields[spec->amount_factor.index];
            if (imp_parse_number(b, decimal_comma, &f) < 0)
                return fail(reason, IMP_DROP_BAD_NUMBER, detail, detail_size,
                            "cannot parse number \"%.40s\"", b);
            row->amount *= f;
            if (!isfinite(row->amount))
                return fail(reason, IMP_DROP_BAD_NUMBER, detail, detail_size, "amount overflows%s",
                            "");
        }
    }

    if (spec->event_type_is_const) {
        row->type = spec->event_type_const;
    } else {
        const char *v = trim(rec->fields[spec->event_type.index]);
        if (imp_event_type(v, &row->type) < 0)
            row->type = EV_OTHER; /* unknown symbols resolve to the enum default, as in Avro */
    }
    if (spec->refund_col.kind != IMP_COL_NONE) {
        const char *v = skip_blanks(rec->fields[spec->refund_col.index]);
        if (strncmp(v, spec->refund_prefix, strlen(spec->refund_prefix)) == 0) {
            row->type = EV_REFUND;
            if (spec->refund_amount_abs)
                row->amount = fabs(row->amount);
        }
    }
    row->item_id = opt_str(rec, &spec->item_id);
    row->category = opt_str(rec, &spec->category);
    row->channel = opt_str(rec, &spec->channel);
    return 0;
}
