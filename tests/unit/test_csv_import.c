/* Importer tests: the CSV reader (quotes, CRLF, blanks, ws), time and number parsing, the
 * --map parser, the loader (bad rows, strict mode, stable sort) and the Online Retail preset
 * on a fixture cut from the real file (and on the full file when it is present). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "csv_import.h"
#include "csv_map.h"
#include "csv_reader.h"

/* Writes text to a fresh temporary file (gzip-compressed when gz) and returns its path in
 * path (PATH_MAX-ish buffer). */
static void write_temp(char *path, size_t size, const char *text, int gz)
{
    snprintf(path, size, "/tmp/cs_test_csv_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    if (gz) {
        close(fd);
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        if (*text)
            assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        size_t n = strlen(text);
        assert_int_equal(write(fd, text, n), (ssize_t)n);
        close(fd);
    }
}

static void fixture_path(char *path, size_t size, const char *name)
{
    const char *root = getenv("CS_SOURCE_DIR");
    snprintf(path, size, "%s%stests/fixtures/csv/%s", root ? root : "", root ? "/" : "", name);
}

/* ---- reader ------------------------------------------------------------------------ */

/* Records are rendered as "L<line>:f1|f2|..." joined by newlines; a read error ends the
 * text with "ERR:" and the error up to its first ';'. */
static void render_all(const char *path, int delim, char *out, size_t size)
{
    char err[256];
    imp_reader_t *r = imp_reader_open(path, delim, err, sizeof(err));
    assert_non_null(r);
    imp_record_t rec;
    int rc;
    size_t len = 0;
    out[0] = '\0';
    while ((rc = imp_reader_next(r, &rec, err, sizeof(err))) == 1) {
        len += (size_t)snprintf(out + len, size - len, "%sL%ld:", len ? "\n" : "", rec.line_no);
        for (int i = 0; i < rec.nfields; i++) {
            assert_int_equal(strlen(rec.fields[i]), rec.lens[i]);
            len += (size_t)snprintf(out + len, size - len, "%s%s", i ? "|" : "", rec.fields[i]);
        }
    }
    if (rc < 0) {
        char *semi = strchr(err, ';');
        if (semi)
            *semi = '\0';
        len += (size_t)snprintf(out + len, size - len, "%sERR:%s", len ? "\n" : "", err);
    }
    assert_true(rc == 0 || rc == -1);
    imp_reader_close(r);
}

static void test_reader_table(void **state)
{
    static const struct {
        const char *name, *input;
        int delim;
        const char *want;
    } cases[] = {
        {"lf", "a,b,c\n1,2,3\n", ',', "L1:a|b|c\nL2:1|2|3"},
        {"crlf", "a,b\r\n1,2\r\n", ',', "L1:a|b\nL2:1|2"},
        {"no final newline", "a,b\n1,2", ',', "L1:a|b\nL2:1|2"},
        {"quoted delimiter", "x,\"a,b\",y\n", ',', "L1:x|a,b|y"},
        {"doubled quote", "\"say \"\"hi\"\"\",2\n", ',', "L1:say \"hi\"|2"},
        {"quoted newline", "\"two\nlines\",1\nnext,2\n", ',', "L1:two\nlines|1\nL3:next|2"},
        {"quoted crlf kept", "\"a\r\nb\",1\r\n", ',', "L1:a\r\nb|1"},
        {"empty fields", "a,,c\n,\n", ',', "L1:a||c\nL2:|"},
        {"blank lines skipped", "\n\na\n\r\n\nb\n", ',', "L3:a\nL6:b"},
        {"empty quoted field is a record", "\"\"\n", ',', "L1:"},
        {"quote inside field literal", "ab\"c,d\n", ',', "L1:ab\"c|d"},
        {"semicolon", "a;b,c;d\n", ';', "L1:a|b,c|d"},
        {"tab", "a\tb c\n", '\t', "L1:a|b c"},
        {"ws runs", "  a   b\tc  \n   \n d e\r\n", IMP_DELIM_WS, "L1:a|b|c\nL3:d|e"},
        {"ws no final newline", "x y", IMP_DELIM_WS, "L1:x|y"},
        /* issue 11: an unterminated quote fails, naming the line where it opened, instead
         * of swallowing the rest of the file into one field */
        {"unterminated quote", "a,ok\nb,\"open\nmore\nc,d\n", ',',
         "L1:a|ok\nERR:line 2: a quoted field opened here is not closed before the end of the "
         "file"},
        {"empty input", "", ',', ""},
    };
    char path[64], got[512];
    for (int gz = 0; gz <= 1; gz++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            write_temp(path, sizeof(path), cases[i].input, gz);
            render_all(path, cases[i].delim, got, sizeof(got));
            if (strcmp(got, cases[i].want) != 0)
                fail_msg("case \"%s\" (gz=%d): got [%s], want [%s]", cases[i].name, gz, got,
                         cases[i].want);
            unlink(path);
        }
    }
}

/* Issue 11: a truncated .csv.gz is an error naming the truncation, never a shorter file. */
static void test_reader_truncated_gzip(void **state)
{
    char text[64 * 1024], path[64], err[256];
    size_t len = 0;
    for (int i = 0; len + 64 < sizeof text; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "u%d,2024-01-01,%d\n", i % 97, i);
    write_temp(path, sizeof(path), text, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size * 6 / 10), 0);
    imp_reader_t *r = imp_reader_open(path, ',', err, sizeof(err));
    assert_non_null(r);
    imp_record_t rec;
    int rc, n = 0;
    while ((rc = imp_reader_next(r, &rec, err, sizeof(err))) == 1)
        n++;
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "truncated gzip input"));
    assert_non_null(strstr(err, "unexpected end of file"));
    assert_true(n > 0);
    imp_reader_close(r);
    unlink(path);
}

/* Issue 11: a quoted field spanning more than 100 lines is a stray quote: an error naming
 * the line where it opened, not the rest of the file merged into one field. */
static void test_reader_quote_bound(void **state)
{
    char text[8192], path[64], err[256];
    size_t len = (size_t)snprintf(text, sizeof text, "a,b\nc,\"stray\n");
    for (int i = 0; i < 150; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "r%d,x\n", i);
    snprintf(text + len, sizeof text - len, "\"closed much later\",y\n");
    for (int gz = 0; gz <= 1; gz++) {
        write_temp(path, sizeof(path), text, gz);
        imp_reader_t *r = imp_reader_open(path, ',', err, sizeof(err));
        assert_non_null(r);
        imp_record_t rec;
        assert_int_equal(imp_reader_next(r, &rec, err, sizeof(err)), 1);
        assert_int_equal(imp_reader_next(r, &rec, err, sizeof(err)), -1);
        assert_string_equal(err, "line 2: a quoted field opened here is not closed within 100 "
                                 "lines; fix the stray quote (\"\" inside a quoted field is a "
                                 "literal quote)");
        imp_reader_close(r);
        unlink(path);
    }
}

/* Issue 11: a NUL byte inside a user id rejects the row; it never cuts the id short (which
 * would merge "ab\0c" into user "ab"). */
static void test_load_nul_in_user_id(void **state)
{
    static const char csv[] = "u,t\nab\0c,2024-01-01\nab,2024-01-02\n";
    char path[64], err[256];
    snprintf(path, sizeof path, "/tmp/cs_test_csv_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, csv, sizeof csv - 1), (ssize_t)(sizeof csv - 1));
    close(fd);
    imp_spec_t spec;
    assert_int_equal(imp_spec_parse(&spec, NULL, "user_id=u,event_time=t,event_type=search", NULL,
                                    0, err, sizeof(err)),
                     0);
    imp_result_t res;
    assert_int_equal(imp_load(&spec, path, &res, err, sizeof(err)), 0);
    assert_int_equal(res.rows_read, 2);
    assert_int_equal(res.n_events, 1);
    assert_int_equal(res.dropped[IMP_DROP_BAD_USER], 1);
    assert_string_equal(res.bad[0].detail, "user_id contains a NUL byte");
    assert_int_equal(res.bad[0].line_no, 2);
    imp_result_free(&res);
    unlink(path);
}

static void test_reader_long_record(void **state)
{
    /* Fields and records beyond the initial buffer sizes (1 KiB, 16 fields, 64 KiB chunk). */
    size_t n = 200000;
    char *text = malloc(n + 64);
    assert_non_null(text);
    size_t len = 0;
    for (int f = 0; f < 40; f++)
        len += (size_t)sprintf(text + len, "f%d,", f);
    memset(text + len, 'x', n - len);
    strcpy(text + n, "\nz\n");
    char path[64], err[128];
    write_temp(path, sizeof(path), text, 0);
    imp_reader_t *r = imp_reader_open(path, ',', err, sizeof(err));
    assert_non_null(r);
    imp_record_t rec;
    assert_int_equal(imp_reader_next(r, &rec, err, sizeof(err)), 1);
    assert_int_equal(rec.nfields, 41);
    assert_string_equal(rec.fields[39], "f39");
    assert_int_equal(rec.lens[40], n - len);
    assert_int_equal(imp_reader_next(r, &rec, err, sizeof(err)), 1);
    assert_int_equal(rec.line_no, 2);
    assert_string_equal(rec.fields[0], "z");
    assert_int_equal(imp_reader_next(r, &rec, err, sizeof(err)), 0);
    imp_reader_close(r);
    imp_reader_close(NULL);
    unlink(path);
    free(text);
}

static void test_reader_missing_file(void **state)
{
    char err[256];
    assert_null(imp_reader_open("/nonexistent/x.csv", ',', err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/x.csv: cannot open"));
}

/* ---- value parsers ----------------------------------------------------------------- */

static void test_parse_time_table(void **state)
{
    static const struct {
        imp_time_kind_t kind;
        const char *format, *text;
        int ok;
        int64_t want_ms;
    } cases[] = {
        {IMP_TIME_ISO, NULL, "2024-01-01 00:00:00", 1, 1704067200000LL},
        {IMP_TIME_ISO, NULL, "2024-01-01T12:34:56Z", 1, 1704112496000LL},
        {IMP_TIME_ISO, NULL, "2024-01-01T12:34:56.789Z", 1, 1704112496789LL},
        {IMP_TIME_ISO, NULL, "2024-01-01T12:34:56+01:00", 1, 1704108896000LL},
        {IMP_TIME_ISO, NULL, "2024-01-01T12:34:56-0130", 1, 1704117896000LL},
        {IMP_TIME_ISO, NULL, "2024-01-01 12:34", 1, 1704112440000LL},
        {IMP_TIME_ISO, NULL, "  2024-01-01  ", 1, 1704067200000LL},
        {IMP_TIME_ISO, NULL, "2019-10-01 00:00:04 UTC", 1, 1569888004000LL},
        {IMP_TIME_ISO, NULL, "2019-10-01T00:00:04GMT", 1, 1569888004000LL},
        {IMP_TIME_ISO, NULL, "2019-10-01 00:00:04 UTC+1", 0, 0},
        {IMP_TIME_ISO, NULL, "2019-10-01 00:00:04 CET", 0, 0},
        {IMP_TIME_ISO, NULL, "2024-13-01", 0, 0},
        {IMP_TIME_ISO, NULL, "yesterday", 0, 0},
        {IMP_TIME_ISO, NULL, "", 0, 0},
        {IMP_TIME_STRPTIME, "%Y%m%d", "20240131", 1, 1706659200000LL},
        {IMP_TIME_STRPTIME, "%Y%m%d", "20240131x", 0, 0},
        {IMP_TIME_STRPTIME, "%Y%m%d", "20240230", 0, 0},
        {IMP_TIME_STRPTIME, "%Y-%m-%d", "2024-02-29", 1, 1709164800000LL},
        {IMP_TIME_STRPTIME, "%Y-%m-%d", "2023-02-29", 0, 0},
        {IMP_TIME_STRPTIME, "%Y-%m-%d %H:%M:%S", "2010-12-01 08:26:00", 1, 1291191960000LL},
        {IMP_TIME_STRPTIME, "%d/%m/%Y %H:%M", "01/12/2010 08:26", 1, 1291191960000LL},
        {IMP_TIME_STRPTIME, "%Y-%m-%d %H:%M:%S", "2010-12-01 25:26:00", 0, 0},
        {IMP_TIME_STRPTIME, "%Y-%m-%d", "1970-01-01", 1, 0},
        {IMP_TIME_EPOCH_MS, NULL, "1704067200123", 1, 1704067200123LL},
        {IMP_TIME_EPOCH_MS, NULL, " 42 ", 1, 42},
        {IMP_TIME_EPOCH_MS, NULL, "12abc", 0, 0},
        {IMP_TIME_EPOCH_MS, NULL, "", 0, 0},
        {IMP_TIME_EPOCH_MS, NULL, "nan", 0, 0},
        {IMP_TIME_EPOCH_S, NULL, "1704067200", 1, 1704067200000LL},
        {IMP_TIME_EPOCH_S, NULL, "1704067200.5", 1, 1704067200500LL},
        {IMP_TIME_EPOCH_S, NULL, "1e300", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        int rc = imp_parse_time(cases[i].kind, cases[i].format, cases[i].text, &ms);
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("case %zu \"%s\": rc %d", i, cases[i].text, rc);
        if (cases[i].ok && ms != cases[i].want_ms)
            fail_msg("case %zu \"%s\": got %lld want %lld", i, cases[i].text, (long long)ms,
                     (long long)cases[i].want_ms);
    }
}

static void test_parse_number_table(void **state)
{
    static const struct {
        const char *text;
        int decimal_comma, ok;
        double want;
    } cases[] = {
        {"2.55", 0, 1, 2.55}, {" -12 ", 0, 1, -12.0},   {"", 0, 1, 0.0},    {"1e3", 0, 1, 1000.0},
        {"1,5", 0, 0, 0},     {"abc", 0, 0, 0},         {"inf", 0, 0, 0},   {"nan", 0, 0, 0},
        {"1e999", 0, 0, 0},   {"3.", 0, 1, 3.0},        {"  ", 0, 1, 0.0},  {"0x10", 0, 1, 16.0},
        {"1,5", 1, 1, 1.5},   {" -0,25 ", 1, 1, -0.25}, {"12", 1, 1, 12.0}, {"2.55", 1, 1, 2.55},
        {"1,234.5", 1, 0, 0}, {"1,2,3", 1, 0, 0},       {",", 1, 0, 0},     {"1,", 1, 1, 1.0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double v = -99;
        int rc = imp_parse_number(cases[i].text, cases[i].decimal_comma, &v);
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("case \"%s\" (decimal comma %d): rc %d", cases[i].text, cases[i].decimal_comma,
                     rc);
        if (cases[i].ok && v != cases[i].want)
            fail_msg("case \"%s\": got %g", cases[i].text, v);
    }
}

/* ---- spec parsing ------------------------------------------------------------------ */

static void test_spec_parse_errors(void **state)
{
    static const struct {
        const char *preset, *map, *delim;
        int no_header;
        const char *want_err;
    } cases[] = {
        {"nope", NULL, NULL, 0, "unknown preset \"nope\""},
        {NULL, NULL, NULL, 0, "user_id, event_time and event_type are required"},
        {NULL, "user_id=1,event_time=2", NULL, 0, "are required"},
        {NULL, "user_id=1,event_time=2,event_type=3,colour=4", NULL, 0, "unknown key \"colour\""},
        /* issue 11: a key given twice is an error, not last-wins */
        {NULL, "user_id=1,event_time=2,event_type=3,user_id=4", NULL, 0,
         "--map: key \"user_id\" is given twice"},
        {"online-retail", "amount=1,amount=2", NULL, 0, "--map: key \"amount\" is given twice"},
        {NULL, "user_id=0,event_time=2,event_type=purchase", NULL, 0, "column index 0"},
        {NULL, "user_id=,event_time=2,event_type=purchase", NULL, 0, "user_id: empty column"},
        {NULL, "user_id=1,event_time=2:dd/mm,event_type=purchase", NULL, 0,
         "must be a strptime format"},
        {NULL, "user_id=1,event_time=2,amount=3*4*5,event_type=purchase", NULL, 0,
         "only COLUMN or COLUMN*COLUMN"},
        {NULL, "user_id=cust,event_time=2,event_type=purchase", NULL, 1,
         "\"cust\" is a header name but --no-header"},
        {NULL, "user_id=1,event_time=2,event_type=purchase", "ab", 0, "--delimiter"},
        {NULL, "user_id=1,event_time=2,event_type=purchase", "\"", 0, "--delimiter"},
        {NULL, "user_id=1 event_time=2", NULL, 0, "are required"},
        {NULL, "justtext", NULL, 0, "expected key=COLUMN"},
        {"online-retail", NULL, NULL, 1, "\"CustomerID\" is a header name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        imp_spec_t spec;
        char err[512] = "";
        int rc = imp_spec_parse(&spec, cases[i].preset, cases[i].map, cases[i].delim,
                                cases[i].no_header, err, sizeof(err));
        if (rc != -1 || !strstr(err, cases[i].want_err))
            fail_msg("case %zu: rc %d err [%s], want [%s]", i, rc, err, cases[i].want_err);
    }
}

static void test_spec_parse_ok(void **state)
{
    imp_spec_t s;
    char err[256];
    /* A format with a comma and a header name with a space: the split only happens at
     * ",key=" for a known key. */
    assert_int_equal(imp_spec_parse(&s, NULL,
                                    "user_id=Customer Id,event_time=3:%d,%m,%Y,amount=4*5,"
                                    "event_type=purchase,channel=6",
                                    ";", 0, err, sizeof(err)),
                     0);
    assert_int_equal(s.delimiter, ';');
    assert_int_equal(s.has_header, 1);
    assert_int_equal(s.user_id.kind, IMP_COL_NAME);
    assert_string_equal(s.user_id.name, "Customer Id");
    assert_int_equal(s.event_time.kind, IMP_COL_INDEX);
    assert_int_equal(s.event_time.index, 2);
    assert_int_equal(s.time_kind, IMP_TIME_STRPTIME);
    assert_string_equal(s.time_format, "%d,%m,%Y");
    assert_int_equal(s.amount.index, 3);
    assert_int_equal(s.amount_factor.kind, IMP_COL_INDEX);
    assert_int_equal(s.amount_factor.index, 4);
    assert_int_equal(s.event_type_is_const, 1);
    assert_int_equal(s.event_type_const, EV_PURCHASE);
    assert_int_equal(s.channel.index, 5);
    assert_int_equal(s.item_id.kind, IMP_COL_NONE);

    assert_int_equal(imp_spec_parse(&s, NULL, "user_id=1,event_time=2:epoch_s,event_type=kind",
                                    "ws", 0, err, sizeof(err)),
                     0);
    assert_int_equal(s.delimiter, IMP_DELIM_WS);
    assert_int_equal(s.has_header, 1);
    assert_int_equal(s.time_kind, IMP_TIME_EPOCH_S);
    assert_int_equal(s.event_type_is_const, 0);
    assert_int_equal(s.event_type.kind, IMP_COL_NAME);
    assert_int_equal(s.amount.kind, IMP_COL_NONE);

    assert_int_equal(imp_spec_parse(&s, NULL, "user_id=1,event_time=2:epoch_ms,event_type=3", "tab",
                                    1, err, sizeof(err)),
                     0);
    assert_int_equal(s.delimiter, '\t');
    assert_int_equal(s.time_kind, IMP_TIME_EPOCH_MS);

    /* The preset, with a --map override of one field. */
    assert_int_equal(
        imp_spec_parse(&s, "online-retail", "channel=Country", NULL, 0, err, sizeof(err)), 0);
    assert_string_equal(s.user_id.name, "CustomerID");
    assert_string_equal(s.amount.name, "Quantity");
    assert_string_equal(s.amount_factor.name, "UnitPrice");
    assert_string_equal(s.channel.name, "Country");
    assert_int_equal(s.user_id_integer, 1);
    assert_int_equal(s.empty_user_is_filter, 1);
    assert_string_equal(s.refund_prefix, "C");
}

/* Event type values: schema symbols in any case and with '-' or ' ', and the synonyms of
 * public logs, all activity; refund and subscription_cancel only by their own names. */
static void test_event_type_names(void **state)
{
    static const struct {
        const char *text;
        int ok;
        ev_type_t want;
    } cases[] = {
        {"purchase", 1, EV_PURCHASE},
        {"Add-To-Cart", 1, EV_ADD_TO_CART},
        {"page view", 1, EV_PAGE_VIEW},
        {"view", 1, EV_PAGE_VIEW},
        {"cart", 1, EV_ADD_TO_CART},
        {"addtocart", 1, EV_ADD_TO_CART},
        {"remove_from_cart", 1, EV_REMOVE_FROM_CART},
        {"transaction", 1, EV_PURCHASE},
        {"ORDER", 1, EV_PURCHASE},
        {"refund", 1, EV_REFUND},
        {"subscription_cancel", 1, EV_SUBSCRIPTION_CANCEL},
        {"return", 0, EV_OTHER},
        {"cancel", 0, EV_OTHER},
        {"teleport", 0, EV_OTHER},
        {"", 0, EV_OTHER},
        {"a_type_name_longer_than_the_buffer_of_32", 0, EV_OTHER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ev_type_t t = EV_OTHER;
        int rc = imp_event_type(cases[i].text, &t);
        if (rc != (cases[i].ok ? 0 : -1) || (cases[i].ok && t != cases[i].want))
            fail_msg("\"%s\": rc %d type %d", cases[i].text, rc, (int)t);
    }
}

/* ---- loader ------------------------------------------------------------------------ */

/* Events rendered as "user type time amount item" lines for exact comparison. */
static void render_events(const imp_result_t *res, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < res->n_events; i++) {
        ev_event_t ev;
        imp_result_get(res, i, &ev);
        assert_int_equal(strlen(ev.user_id), ev.user_id_len);
        len +=
            (size_t)snprintf(out + len, size - len, "%s%s %s %lld %g", len ? "\n" : "", ev.user_id,
                             ev_type_name(ev.type), (long long)ev.event_time_ms, ev.amount);
        if (ev.has_item_id)
            len += (size_t)snprintf(out + len, size - len, " i=%s", ev.item_id);
        if (ev.has_category)
            len += (size_t)snprintf(out + len, size - len, " c=%s", ev.category);
        if (ev.has_channel)
            len += (size_t)snprintf(out + len, size - len, " ch=%s", ev.channel);
    }
}

typedef struct load_case_s {
    const char *name, *csv, *map, *delim;
    int no_header, strict;
    int rc;
    const char *want_err; /* substring, rc == -1 */
    int64_t rows_read, bad_rows;
    const char *bad_lines; /* "3:bad_time,5:wrong_columns" */
    const char *want_events;
} load_case_t;

static const load_case_t load_cases[] = {
    {"header names, stable sort",
     "id,t,amt,kind\n"
     "b,2024-01-02,1.5,purchase\n"
     "a,2024-01-01,2,page_view\n"
     "c,2024-01-02,3,SEARCH\n"
     "a,2024-01-01,4,teleport\n",
     "user_id=id,event_time=t,amount=amt,event_type=kind", NULL, 0, 0, 0, NULL, 4, 0, "",
     "a page_view 1704067200000 2\n"
     "a other 1704067200000 4\n"
     "b purchase 1704153600000 1.5\n"
     "c search 1704153600000 3"},
    {"no header, indexes, product, optional strings",
     "u1;20240105;3;2.5;sku1;toys;\n"
     "u2;20240104;2;-1;;;app\n",
     "user_id=1,event_time=2:%Y%m%d,amount=3*4,event_type=purchase,item_id=5,category=6,"
     "channel=7",
     ";", 1, 0, 0, NULL, 2, 0, "",
     "u2 purchase 1704326400000 -2 ch=app\n"
     "u1 purchase 1704412800000 7.5 i=sku1 c=toys"},
    {"ws delimiter, epoch seconds",
     "user ts kind\n"
     "x 1704067200 refund\n"
     "  y\t1704067201.25   coupon_redeem  \n",
     "user_id=user,event_time=ts:epoch_s,event_type=kind", "ws", 0, 0, 0, NULL, 2, 0, "",
     "x refund 1704067200000 0\n"
     "y coupon_redeem 1704067201250 0"},
    {"bad rows counted by line",
     "u,t,a\n"
     "a,2024-01-01,1\n"
     "b,2024-01-01\n"
     "c,someday,1\n"
     ",2024-01-01,1\n"
     "d,2024-01-01,x1\n"
     "\n"
     "e,2024-01-01,1,extra\n"
     "f,2024-01-03,2\n",
     "user_id=u,event_time=t,amount=a,event_type=purchase", NULL, 0, 0, 0, NULL, 7, 5,
     "3:wrong_columns,4:bad_time,5:no_user_id,6:bad_number,8:wrong_columns",
     "a purchase 1704067200000 1\n"
     "f purchase 1704240000000 2"},
    {"strict stops at the first bad row", "u,t\na,2024-01-01\nb,2024-99-01\nc,x\n",
     "user_id=u,event_time=t,event_type=purchase", NULL, 0, 1, -1,
     ":3: bad_time: cannot parse time \"2024-99-01\" (--strict)", 0, 0, NULL, NULL},
    {"strict accepts a clean file", "u,t\na,2024-01-01\n",
     "user_id=u,event_time=t,event_type=purchase", NULL, 0, 1, 0, NULL, 1, 0, "",
     "a purchase 1704067200000 0"},
    {"unknown header name", "u,t\na,2024-01-01\n", "user_id=user,event_time=t,event_type=purchase",
     NULL, 0, 0, -1, ":1: no column named \"user\" in the header (2 columns)", 0, 0, NULL, NULL},
    {"index out of range", "a,2024-01-01\n", "user_id=1,event_time=2,event_type=3", NULL, 1, 0, -1,
     ":1: column 3 out of range: the first row has 2 columns", 0, 0, NULL, NULL},
    {"quoted fields and crlf",
     "\"user\",\"when\",\"amount\"\r\n"
     "\"a,1\",\"2024-01-01 10:00:00\",\"1\"\"\"\r\n"
     "\"b\"\"q\",2024-01-01 09:00:00,\"2.5\"\r\n",
     "user_id=user,event_time=when,amount=amount,event_type=purchase", NULL, 0, 0, 0, NULL, 2, 1,
     "2:bad_number", "b\"q purchase 1704099600000 2.5"},
    {"header only", "u,t\n", "user_id=u,event_time=t,event_type=purchase", NULL, 0, 0, 0, NULL, 0,
     0, "", ""},
    /* decimal commas in a file not delimited by ',' (Excel's European CSV); a quoted "1,5"
     * of a comma-delimited file stays a bad number (it may be a thousands separator) */
    {"decimal comma, semicolons",
     "u;t;q;p\n"
     "a;2024-01-01;2;12,5\n"
     "b;2024-01-02;1,5;0,25\n"
     "c;2024-01-03;1;1.234,5\n",
     "user_id=u,event_time=t,amount=q*p,event_type=purchase", ";", 0, 0, 0, NULL, 3, 1,
     "4:bad_number",
     "a purchase 1704067200000 25\n"
     "b purchase 1704153600000 0.375"},
    {"no decimal comma with commas", "u,t,a\na,2024-01-01,\"1,5\"\n",
     "user_id=u,event_time=t,amount=a,event_type=purchase", NULL, 0, 0, 0, NULL, 1, 1,
     "2:bad_number", ""},
    /* issue 11: user ids must be UTF-8 (Avro strings), else the row is rejected */
    {"non-UTF-8 user ids",
     "u,t\n\xff\xfe,2024-01-01\nok\xc3\xa9,2024-01-01\nx\xc3(,2024-01-01\n\xed\xa0\x80,2024-01-"
     "01\n",
     "user_id=u,event_time=t,event_type=purchase", NULL, 0, 0, 0, NULL, 4, 3,
     "2:bad_user_id,4:bad_user_id,5:bad_user_id", "ok\xc3\xa9 purchase 1704067200000 0"},
};

static void run_load_case(const load_case_t *c, int gz)
{
    char path[64], err[512] = "", got[2048], lines[512];
    imp_spec_t spec;
    if (imp_spec_parse(&spec, NULL, c->map, c->delim, c->no_header, err, sizeof(err)) < 0)
        fail_msg("%s: spec: %s", c->name, err);
    spec.strict = c->strict;
    write_temp(path, sizeof(path), c->csv, gz);
    imp_result_t res;
    int rc = imp_load(&spec, path, &res, err, sizeof(err));
    if (rc != c->rc)
        fail_msg("%s: rc %d (%s)", c->name, rc, err);
    if (rc < 0) {
        if (!strstr(err, c->want_err) || strncmp(err, path, strlen(path)) != 0)
            fail_msg("%s: err [%s], want [%s]", c->name, err, c->want_err);
        assert_null(res.store);
        unlink(path);
        return;
    }
    assert_int_equal(res.rows_read, c->rows_read);
    assert_int_equal(res.bad_rows, c->bad_rows);
    size_t len = 0;
    lines[0] = '\0';
    for (int i = 0; i < res.n_bad_listed; i++)
        len += (size_t)snprintf(lines + len, sizeof(lines) - len, "%s%ld:%s", i ? "," : "",
                                res.bad[i].line_no, imp_drop_name(res.bad[i].reason));
    if (strcmp(lines, c->bad_lines) != 0)
        fail_msg("%s: bad lines [%s], want [%s]", c->name, lines, c->bad_lines);
    render_events(&res, got, sizeof(got));
    if (strcmp(got, c->want_events) != 0)
        fail_msg("%s: events\n[%s]\nwant\n[%s]", c->name, got, c->want_events);
    int64_t dropped = 0;
    for (int d = 0; d < IMP_DROP_COUNT; d++)
        dropped += res.dropped[d];
    assert_int_equal((int64_t)res.n_events + dropped, res.rows_read);
    imp_result_free(&res);
    unlink(path);
}

static void test_load_table(void **state)
{
    for (int gz = 0; gz <= 1; gz++)
        for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]); i++)
            run_load_case(&load_cases[i], gz);
}

static void test_load_bad_rows_listed_then_counted(void **state)
{
    /* 13 bad rows: the first IMP_BAD_LIST_MAX are listed by line, all are counted. */
    char csv[1024] = "u,t\n", path[64], err[256];
    for (int i = 0; i < 13; i++)
        strcat(csv, "x,not-a-time\n");
    strcat(csv, "y,2024-01-01\n");
    write_temp(path, sizeof(path), csv, 0);
    imp_spec_t spec;
    assert_int_equal(imp_spec_parse(&spec, NULL, "user_id=u,event_time=t,event_type=search", NULL,
                                    0, err, sizeof(err)),
                     0);
    imp_result_t res;
    assert_int_equal(imp_load(&spec, path, &res, err, sizeof(err)), 0);
    assert_int_equal(res.bad_rows, 13);
    assert_int_equal(res.dropped[IMP_DROP_BAD_TIME], 13);
    assert_int_equal(res.n_bad_listed, IMP_BAD_LIST_MAX);
    for (int i = 0; i < IMP_BAD_LIST_MAX; i++)
        assert_int_equal(res.bad[i].line_no, i + 2);
    assert_int_equal(res.n_events, 1);
    char *buf = NULL;
    size_t blen = 0;
    FILE *mem = open_memstream(&buf, &blen);
    imp_result_print_summary(&res, "in.csv", mem);
    fclose(mem);
    assert_non_null(strstr(buf, "rows read:    14\n"));
    assert_non_null(strstr(buf, "rows dropped: 13 (bad_time 13)\n"));
    assert_non_null(strstr(buf, "  line 2: bad_time: cannot parse time \"not-a-time\"\n"));
    assert_non_null(strstr(buf, "  ... and 3 more\n"));
    assert_non_null(strstr(buf, "users:        1\n"));
    assert_non_null(strstr(buf, "time range:   2024-01-01T00:00:00Z .. 2024-01-01T00:00:00Z"));
    free(buf);
    imp_result_free(&res);
    imp_result_free(&res); /* idempotent */
    unlink(path);
}

static void test_load_sort_stability_large(void **state)
{
    /* 5000 rows with times drawn from 7 values, out of order: sorted by time, and within a
     * time in file order (the user id carries the row number). */
    char path[64], err[256];
    size_t cap = 5000 * 32 + 16, len = 0;
    char *csv = malloc(cap);
    assert_non_null(csv);
    for (int i = 0; i < 5000; i++)
        len += (size_t)snprintf(csv + len, cap - len, "r%05d,%d\n", i, (i * 7919) % 7);
    write_temp(path, sizeof(path), csv, 1);
    free(csv);
    imp_spec_t spec;
    assert_int_equal(imp_spec_parse(&spec, NULL, "user_id=1,event_time=2:epoch_ms,event_type=other",
                                    NULL, 1, err, sizeof(err)),
                     0);
    imp_result_t res;
    assert_int_equal(imp_load(&spec, path, &res, err, sizeof(err)), 0);
    assert_int_equal(res.n_events, 5000);
    assert_int_equal(res.n_users, 5000);
    ev_event_t prev, ev;
    imp_result_get(&res, 0, &prev);
    for (size_t i = 1; i < res.n_events; i++) {
        imp_result_get(&res, i, &ev);
        assert_true(ev.event_time_ms >= prev.event_time_ms);
        if (ev.event_time_ms == prev.event_time_ms)
            assert_true(strcmp(prev.user_id, ev.user_id) < 0);
        prev = ev;
    }
    assert_int_equal(res.time_min_ms, 0);
    assert_int_equal(res.time_max_ms, 6);
    imp_result_free(&res);
    unlink(path);
}

/* ---- Online Retail ----------------------------------------------------------------- */

static void check_retail_fixture(const char *path)
{
    imp_spec_t spec;
    char err[256];
    assert_int_equal(imp_spec_parse(&spec, "online-retail", NULL, NULL, 0, err, sizeof(err)), 0);
    spec.strict = 1; /* rows without CustomerID are filtered, not errors */
    imp_result_t res;
    if (imp_load(&spec, path, &res, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(res.rows_read, 34);
    assert_int_equal(res.dropped[IMP_DROP_NO_USER], 3);
    assert_int_equal(res.bad_rows, 0);
    assert_int_equal(res.n_events, 31);
    assert_int_equal(res.by_type[EV_PURCHASE], 28);
    assert_int_equal(res.by_type[EV_REFUND], 3);
    assert_int_equal(res.n_users, 7);
    assert_int_equal(res.time_min_ms, 1291191960000LL);
    assert_int_equal(res.time_max_ms, 1323435000000LL);

    static const struct {
        size_t i;
        const char *user;
        ev_type_t type;
        int64_t t_ms;
        double amount;
        const char *item;
    } want[] = {
        {0, "17850", EV_PURCHASE, 1291191960000LL, 6 * 2.55, "85123A"},
        {20, "15311", EV_PURCHASE, 1291196460000LL, 2 * 2.1, "82567"},
        {21, "14527", EV_REFUND, 1291196460000LL, 27.5, "D"},
        {22, "15311", EV_REFUND, 1291196940000LL, 4.65, "35004C"},
        {23, "17548", EV_REFUND, 1291199040000LL, 12 * 1.65, "22556"},
        {24, "16210", EV_PURCHASE, 1291206420000LL, 48 * 2.1, "22041"},
        {30, "12680", EV_PURCHASE, 1323435000000LL, 3 * 4.95, "22138"},
    };
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        ev_event_t ev;
        imp_result_get(&res, want[k].i, &ev);
        assert_string_equal(ev.user_id, want[k].user);
        assert_int_equal(ev.type, want[k].type);
        assert_int_equal(ev.event_time_ms, want[k].t_ms);
        if (ev.amount != want[k].amount)
            fail_msg("event %zu: amount %.17g want %.17g", want[k].i, ev.amount, want[k].amount);
        assert_int_equal(ev.has_item_id, 1);
        assert_string_equal(ev.item_id, want[k].item);
        assert_int_equal(ev.has_category, 0);
        assert_int_equal(ev.has_channel, 0);
    }
    imp_result_free(&res);
}

static void test_online_retail_fixture(void **state)
{
    char path[512], gzpath[64];
    fixture_path(path, sizeof(path), "online_retail_sample.csv");
    check_retail_fixture(path);

    /* Same bytes, gzip-compressed. */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    write_temp(gzpath, sizeof(gzpath), text, 1);
    check_retail_fixture(gzpath);
    unlink(gzpath);

    /* Online Retail II names the same columns Invoice, Price and Customer ID: the preset
     * reads that header as well, with the same events. */
    static const char old_header[] =
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country";
    static const char ii_header[] =
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country";
    assert_memory_equal(text, old_header, sizeof(old_header) - 1);
    char ii[8192 + 16];
    snprintf(ii, sizeof(ii), "%s%s", ii_header, text + sizeof(old_header) - 1);
    write_temp(gzpath, sizeof(gzpath), ii, 0);
    check_retail_fixture(gzpath);
    /* A --map entry naming another column is not renamed. */
    imp_spec_t spec;
    char err[256];
    assert_int_equal(
        imp_spec_parse(&spec, "online-retail", "item_id=Description", NULL, 0, err, sizeof(err)),
        0);
    imp_result_t res;
    assert_int_equal(imp_load(&spec, gzpath, &res, err, sizeof(err)), 0);
    assert_int_equal(res.n_events, 31);
    ev_event_t ev;
    imp_result_get(&res, 0, &ev);
    assert_string_equal(ev.user_id, "17850");
    assert_string_equal(ev.item_id, "WHITE HANGING HEART T-LIGHT HOLDER");
    imp_result_free(&res);
    unlink(gzpath);
}

static void test_online_retail_bad_customer_id(void **state)
{
    static const char csv[] =
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "1,A,x,2,2010-12-01 08:26:00,1.5,17850.5,UK\n"
        "2,B,x,2,2010-12-01 08:26:00,1.5,abc,UK\n"
        "3,C,x,2,2010-12-01 08:26:00,1.5,12345.00,UK\n"
        "4,D,x,2,2010-12-01 08:26:00,1.5,12346,UK\n";
    char path[64], err[256], got[512];
    write_temp(path, sizeof(path), csv, 0);
    imp_spec_t spec;
    assert_int_equal(imp_spec_parse(&spec, "online-retail", NULL, NULL, 0, err, sizeof(err)), 0);
    imp_result_t res;
    assert_int_equal(imp_load(&spec, path, &res, err, sizeof(err)), 0);
    assert_int_equal(res.bad_rows, 2);
    assert_int_equal(res.dropped[IMP_DROP_BAD_USER], 2);
    assert_int_equal(res.bad[0].line_no, 2);
    assert_string_equal(res.bad[0].detail, "user_id \"17850.5\" is not an integer");
    render_events(&res, got, sizeof(got));
    assert_string_equal(got, "12345 purchase 1291191960000 3 i=C\n"
                             "12346 purchase 1291191960000 3 i=D");
    imp_result_free(&res);
    unlink(path);
}

static void test_online_retail_full_file(void **state)
{
    /* The shared data folder: CS_SHARED (set by tests/run-all.sh), else the workplace path.
     * Missing data is a failure, not a skip: the counts below are an acceptance figure. */
    const char *shared = getenv("CS_SHARED") ? getenv("CS_SHARED") : "/work/shared";
    char FULL_RETAIL[4096];
    snprintf(FULL_RETAIL, sizeof(FULL_RETAIL), "%s/data/online_retail.csv.gz", shared);
    if (access(FULL_RETAIL, R_OK) != 0)
        fail_msg("%s not readable: set CS_SHARED to the shared folder", FULL_RETAIL);
    imp_spec_t spec;
    char err[256];
    assert_int_equal(imp_spec_parse(&spec, "online-retail", NULL, NULL, 0, err, sizeof(err)), 0);
    imp_result_t res;
    if (imp_load(&spec, FULL_RETAIL, &res, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(res.rows_read, 541909);
    assert_int_equal(res.dropped[IMP_DROP_NO_USER], 135080);
    assert_int_equal(res.bad_rows, 0);
    assert_int_equal(res.n_events, 406829);
    assert_int_equal(res.by_type[EV_PURCHASE], 397924);
    assert_int_equal(res.by_type[EV_REFUND], 8905);
    assert_int_equal(res.n_users, 4372);
    assert_int_equal(res.time_min_ms, 1291191960000LL); /* 2010-12-01 08:26:00 */
    assert_int_equal(res.time_max_ms, 1323435000000LL); /* 2011-12-09 12:50:00 */
    imp_result_free(&res);
}

/* churnstream's own layouts map themselves by header names (imp_auto_map); anything else
 * gets an error that names the header and asks for --map. */
static void test_auto_map(void **state)
{
    (void)state;
    char path[64], map[256], err[512];
    write_temp(path, sizeof(path),
               "user_id,ts_ms,event_type,amount\nu1,1704112322940,purchase,19.33\n", 0);
    assert_int_equal(imp_auto_map(path, NULL, map, sizeof(map), err, sizeof(err)), 0);
    assert_string_equal(map, "user_id=user_id,event_type=event_type,event_time=ts_ms:epoch_ms,"
                             "amount=amount");
    imp_spec_t spec;
    assert_int_equal(imp_spec_parse(&spec, NULL, map, NULL, 0, err, sizeof(err)), 0);
    imp_result_t res;
    assert_int_equal(imp_load(&spec, path, &res, err, sizeof(err)), 0);
    assert_int_equal(res.n_events, 1);
    ev_event_t ev;
    imp_result_get(&res, 0, &ev);
    assert_int_equal(ev.event_time_ms, 1704112322940LL);
    assert_int_equal(ev.type, EV_PURCHASE);
    imp_result_free(&res);
    unlink(path);
    /* event_time in ISO-8601, columns in another order, no amount, gzip, a ';' delimiter */
    write_temp(path, sizeof(path),
               " event_type ; event_time ;user_id\npage_view;2017-01-07T18:55:24Z;7\n", 1);
    assert_int_equal(imp_auto_map(path, ";", map, sizeof(map), err, sizeof(err)), 0);
    assert_string_equal(map, "user_id=user_id,event_type=event_type,event_time=event_time:iso");
    unlink(path);
    /* a spreadsheet export's byte order mark before the first name, as --map's names */
    write_temp(path, sizeof(path), "\xEF\xBB\xBFuser_id,ts_ms,event_type\nu1,1,purchase\n", 0);
    assert_int_equal(imp_auto_map(path, NULL, map, sizeof(map), err, sizeof(err)), 0);
    assert_string_equal(map, "user_id=user_id,event_type=event_type,event_time=ts_ms:epoch_ms");
    unlink(path);
    /* a header without the names: the error shows it and asks for --map */
    write_temp(path, sizeof(path), "customer,date,what\n1,2020-01-01,purchase\n", 0);
    assert_int_equal(imp_auto_map(path, NULL, map, sizeof(map), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "(customer,date,what)"));
    assert_non_null(strstr(err, "give --map"));
    unlink(path);
    write_temp(path, sizeof(path), "", 0);
    assert_int_equal(imp_auto_map(path, NULL, map, sizeof(map), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "empty file"));
    unlink(path);
    assert_int_equal(imp_auto_map("/nonexistent/x.csv", NULL, map, sizeof(map), err, sizeof(err)),
                     -1);
    assert_int_equal(imp_auto_map(path, "xy", map, sizeof(map), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--delimiter"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_table),
        cmocka_unit_test(test_reader_long_record),
        cmocka_unit_test(test_reader_truncated_gzip),
        cmocka_unit_test(test_reader_quote_bound),
        cmocka_unit_test(test_load_nul_in_user_id),
        cmocka_unit_test(test_reader_missing_file),
        cmocka_unit_test(test_parse_time_table),
        cmocka_unit_test(test_event_type_names),
        cmocka_unit_test(test_parse_number_table),
        cmocka_unit_test(test_spec_parse_errors),
        cmocka_unit_test(test_spec_parse_ok),
        cmocka_unit_test(test_load_table),
        cmocka_unit_test(test_load_bad_rows_listed_then_counted),
        cmocka_unit_test(test_load_sort_stability_large),
        cmocka_unit_test(test_online_retail_fixture),
        cmocka_unit_test(test_online_retail_bad_customer_id),
        cmocka_unit_test(test_online_retail_full_file),
        cmocka_unit_test(test_auto_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
