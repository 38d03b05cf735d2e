/* CSV record reader for the importer: plain or gzip input (zlib reads both), LF or CRLF,
 * RFC 4180 quoting ("a,b", "" escapes, newlines inside quotes) for single-character
 * delimiters, or runs of blanks as the delimiter ("ws"). One record per call. */
#ifndef CS_CSV_READER_H
#define CS_CSV_READER_H

#include <stddef.h>

#define IMP_DELIM_WS 0 /* delimiter value meaning "runs of spaces/tabs", no quoting */

typedef struct imp_reader_s imp_reader_t;

/* One record. Pointers alias the reader's buffers: valid until the next imp_reader_next()
 * or imp_reader_close(). Fields are NUL-terminated with quotes removed. */
typedef struct imp_record_s {
    int nfields;
    char **fields;
    size_t *lens;
    long line_no; /* 1-based line where the record starts */
} imp_record_t;

/* Opens path (gzip or plain text). delimiter is a byte such as ',' ';' '\t' '|', or
 * IMP_DELIM_WS. Returns NULL with errstr set when the file cannot be opened. */
imp_reader_t *imp_reader_open(const char *path, int delimiter, char *errstr, size_t errstr_size);
/* Reads the next non-blank record into *rec. Returns 1, 0 at end of input, or -1 (errstr
 * set) on a read error, a truncated gzip stream ("truncated gzip input ...") or a quoted
 * field that is not closed before the end of the file or within 100 lines ("line N: a
 * quoted field opened here is not closed ...", N = the line of the opening quote): both
 * would otherwise lose the rest of the file silently. */
int imp_reader_next(imp_reader_t *r, imp_record_t *rec, char *errstr, size_t errstr_size);
/* Closes the file and frees the reader; NULL is a no-op. */
void imp_reader_close(imp_reader_t *r);

#endif
