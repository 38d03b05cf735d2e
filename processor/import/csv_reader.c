/* CSV record reader: a byte-at-a-time state machine over a gzread() buffer. Simple and fast
 * enough (the 45 MB Online Retail file parses in well under a second); fields are built in
 * one growable byte buffer and only turned into pointers when the record is complete, so a
 * realloc never leaves a dangling field pointer. */
#include "csv_reader.h"
#include "grow.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define RD_CHUNK_BYTES (64 * 1024)
/* A quoted field may span at most this many lines: beyond it a stray quote is far likelier
 * than a legitimate multi-line cell, and reading on would merge the rest of the file into
 * one field (issue 11). */
#define RD_QUOTED_MAX_LINES      100
#define RD_QUOTED_MAX_LINES_TEXT "100"

struct imp_reader_s {
    gzFile gz;
    int delim;
    unsigned char in[RD_CHUNK_BYTES];
    int in_len, in_pos;
    int eof, err;
    int truncated;   /* gzip stream ended early (Z_BUF_ERROR: "unexpected end of file") */
    long line_no;    /* line of the next byte to read */
    long quote_line; /* where the unterminated quoted field opened */

    char *buf; /* field bytes, each field NUL-terminated */
    size_t buf_len, buf_cap;
    size_t *starts; /* offsets of fields in buf */
    size_t *lens;
    char **fields;
    int nfields;
    size_t fields_cap;
};

imp_reader_t *imp_reader_open(const char *path, int delimiter, char *errstr, size_t errstr_size)
{
    imp_reader_t *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    errno = 0;
    r->gz = gzopen(path, "rb");
    if (!r->gz) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s", path,
                 errno ? strerror(errno) : "out of memory");
        free(r);
        return NULL;
    }
    gzbuffer(r->gz, 128 * 1024);
    r->delim = delimiter;
    r->line_no = 1;
    return r;
}

void imp_reader_close(imp_reader_t *r)
{
    if (!r)
        return;
    if (r->gz)
        gzclose(r->gz);
    free(r->buf);
    free(r->starts);
    free(r->lens);
    free(r->fields);
    free(r);
}

/* Next byte, or -1 at end of input / on error (r->err set). */
static int rd_getc(imp_reader_t *r)
{
    if (r->in_pos < r->in_len)
        return r->in[r->in_pos++];
    if (r->eof)
        return -1;
    int n = gzread(r->gz, r->in, sizeof(r->in));
    if (n <= 0) {
        r->eof = 1;
        int zerr = Z_OK;
        gzerror(r->gz, &zerr);
        /* zlib reports a cut-off gzip member as a clean end (gzread returns 0) and only
         * gzerror() says Z_BUF_ERROR: without this check a truncated .csv.gz reads as a
         * shorter complete file and its events are silently lost. */
        if (n < 0)
            r->err = 1;
        else if (zerr == Z_BUF_ERROR)
            r->truncated = 1;
        return -1;
    }
    r->in_len = n;
    r->in_pos = 1;
    return r->in[0];
}

static int rd_peek(imp_reader_t *r)
{
    int c = rd_getc(r);
    if (c >= 0)
        r->in_pos--; /* rd_getc just returned in[in_pos-1], so stepping back is safe */
    return c;
}

static int rd_put(imp_reader_t *r, char c)
{
    if (CS_GROW(r->buf, r->buf_cap, r->buf_len + 2, 1024) != 0)
        return -1;
    r->buf[r->buf_len++] = c;
    return 0;
}

static int rd_field_begin(imp_reader_t *r)
{
    if (r->nfields >= INT_MAX ||
        CS_GROW3(r->starts, r->lens, r->fields, r->fields_cap, (size_t)r->nfields + 1, 16) != 0)
        return -1;
    r->starts[r->nfields++] = r->buf_len;
    return 0;
}

static int rd_field_end(imp_reader_t *r)
{
    size_t start = r->starts[r->nfields - 1];
    r->lens[r->nfields - 1] = r->buf_len - start;
    return rd_put(r, '\0');
}

/* Whitespace mode: fields are runs of non-blank bytes; blank-only lines are skipped. */
static int rd_next_ws(imp_reader_t *r, int *got)
{
    int c, in_field = 0;
    *got = 0;
    while ((c = rd_getc(r)) >= 0) {
        if (c == '\n') {
            r->line_no++;
            break;
        }
        if (c == ' ' || c == '\t' || c == '\r') {
            if (in_field && rd_field_end(r) < 0)
                return -1;
            in_field = 0;
            continue;
        }
        if (!in_field) {
            if (rd_field_begin(r) < 0)
                return -1;
            in_field = 1;
        }
        if (rd_put(r, (char)c) < 0)
            return -1;
    }
    if (in_field && rd_field_end(r) < 0)
        return -1;
    *got = r->nfields > 0;
    return 0;
}

/* Delimited mode with RFC 4180 quotes. A quote only opens a quoted field at the start of a
 * field; text after a closing quote is kept literally (lenient, like Python's csv). */
static int rd_next_delim(imp_reader_t *r, int *got, int *unterminated)
{
    int c, any = 0, quoted = 0, saw_quote = 0;
    long quote_line = 0;
    *got = 0;
    *unterminated = 0;
    if (rd_field_begin(r) < 0)
        return -1;
    int at_field_start = 1;
    for (;;) {
        c = rd_getc(r);
        if (c < 0) {
            if (quoted) {
                r->quote_line = quote_line;
                *unterminated = 1;
            }
            break;
        }
        any = 1;
        if (quoted) {
            if (c == '"') {
                if (rd_peek(r) == '"') {
                    rd_getc(r);
                    if (rd_put(r, '"') < 0)
                        return -1;
                } else {
                    quoted = 0;
                }
                continue;
            }
            if (c == '\n' && ++r->line_no - quote_line > RD_QUOTED_MAX_LINES) {
                r->quote_line = quote_line;
                *unterminated = 1;
                break;
            }
            if (rd_put(r, (char)c) < 0)
                return -1;
            continue;
        }
        if (c == '"' && at_field_start) {
            quote_line = r->line_no;
            quoted = 1;
            saw_quote = 1;
            at_field_start = 0;
            continue;
        }
        if (c == r->delim) {
            if (rd_field_end(r) < 0 || rd_field_begin(r) < 0)
                return -1;
            at_field_start = 1;
            continue;
        }
        if (c == '\r') {
            int n = rd_peek(r);
            if (n == '\n' || n < 0)
                continue; /* CRLF (or a final CR): the LF ends the record */
        }
        if (c == '\n') {
            r->line_no++;
            break;
        }
        at_field_start = 0;
        if (rd_put(r, (char)c) < 0)
            return -1;
    }
    if (rd_field_end(r) < 0)
        return -1;
    /* A blank line is one empty unquoted field; it is not a record ("" on a line is). */
    *got = any && !(r->nfields == 1 && r->lens[0] == 0 && !saw_quote);
    return 0;
}

int imp_reader_next(imp_reader_t *r, imp_record_t *rec, char *errstr, size_t errstr_size)
{
    for (;;) {
        int got = 0, unterminated = 0, rc;
        long first_line = r->line_no;
        r->buf_len = 0;
        r->nfields = 0;
        if (r->delim == IMP_DELIM_WS)
            rc = rd_next_ws(r, &got);
        else
            rc = rd_next_delim(r, &got, &unterminated);
        if (rc < 0) {
            snprintf(errstr, errstr_size, "out of memory reading line %ld", first_line);
            return -1;
        }
        if (r->err) {
            int zerr = 0;
            const char *msg = gzerror(r->gz, &zerr);
            snprintf(errstr, errstr_size, "read error near line %ld: %s", first_line,
                     zerr == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (r->truncated) {
            snprintf(errstr, errstr_size,
                     "truncated gzip input after line %ld (unexpected end of file): the file "
                     "is incomplete; nothing was used",
                     r->line_no);
            return -1;
        }
        if (unterminated) {
            /* Reading on would swallow the rest of the file into one field: stop, naming
             * the line where the quote opened. */
            snprintf(errstr, errstr_size,
                     "line %ld: a quoted field opened here is not closed %s; fix the stray "
                     "quote (\"\" inside a quoted field is a literal quote)",
                     r->quote_line,
                     r->eof && r->in_pos >= r->in_len ? "before the end of the file"
                                                      : "within " RD_QUOTED_MAX_LINES_TEXT
                                                        " lines");
            return -1;
        }
        if (!got) {
            if (r->eof && r->in_pos >= r->in_len)
                return 0;
            continue; /* blank line */
        }
        for (int i = 0; i < r->nfields; i++)
            r->fields[i] = r->buf + r->starts[i];
        rec->nfields = r->nfields;
        rec->fields = r->fields;
        rec->lens = r->lens;
        rec->line_no = first_line;
        return 1;
    }
}
