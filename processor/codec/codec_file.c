/* Avro object container files of Event records: the writer (deflate, reader schema) used by
 * `gen` and `import`, and the reader used by `replay`, whose writer schema may be an evolved
 * Event resolved through the same decode plan as wire messages. The file's structure (header,
 * block sizes, sync markers) is checked before Avro-C reads it; records inside blocks are not
 * pre-walked like Kafka messages (a block may be compressed), Avro-C's allocations are
 * capped instead (cs_avro_cap_allocations). */
#include "codec_internal.h"
#include "outfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#define CS_FILE_BLOCK_BYTES (64 * 1024)

struct ev_file_writer_s {
    avro_file_writer_t w;
    of_t *out; /* the target (temporary file renamed into place at close, or written through) */
    uint8_t body[CS_EVENT_BODY_MAX];
};

ev_file_writer_t *ev_file_writer_open(const char *path, char *errstr, size_t errstr_size)
{
    ev_file_writer_t *fw = calloc(1, sizeof *fw);
    avro_schema_t schema = cs_reader_schema_new(errstr, errstr_size);
    if (!fw || !schema) {
        if (!fw)
            snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    /* Open the FILE ourselves (Avro-C's path variant refuses to overwrite, "wbx") through
     * of_open, which never replaces a device or FIFO; Avro-C must not close it
     * (should_close = 0): of_commit() publishes it after the last block. */
    if (!(fw->out = of_open(path, errstr, errstr_size)))
        goto fail;
    if (avro_file_writer_create_with_codec_fp(of_file(fw->out), path, 0, schema, &fw->w, "deflate",
                                              CS_FILE_BLOCK_BYTES) != 0) {
        snprintf(errstr, errstr_size, "%s: %s", path, avro_strerror());
        goto fail;
    }
    avro_schema_decref(schema);
    return fw;
fail:
    if (schema)
        avro_schema_decref(schema);
    if (fw)
        of_abort(fw->out);
    free(fw);
    return NULL;
}

int ev_file_writer_append(ev_file_writer_t *fw, const ev_event_t *ev, char *errstr,
                          size_t errstr_size)
{
    int n = cs_encode_body(ev, fw->body);
    if (n < 0) {
        snprintf(errstr, errstr_size, "event not encodable (event type or user_id_len)");
        return -1;
    }
    if (avro_file_writer_append_encoded(fw->w, fw->body, n) != 0) {
        snprintf(errstr, errstr_size, "append: %s", avro_strerror());
        return -1;
    }
    return 0;
}

int ev_file_writer_close(ev_file_writer_t *fw, char *errstr, size_t errstr_size)
{
    if (!fw)
        return 0;
    int rc = 0;
    if (avro_file_writer_flush(fw->w) != 0) {
        snprintf(errstr, errstr_size, "flush: %s", avro_strerror());
        rc = -1;
    }
    if (avro_file_writer_close(fw->w) != 0 && rc == 0) {
        snprintf(errstr, errstr_size, "close: %s", avro_strerror());
        rc = -1;
    }
    if (rc == 0)
        rc = of_commit(fw->out, errstr, errstr_size);
    else
        of_abort(fw->out);
    free(fw);
    return rc;
}

void ev_file_writer_abort(ev_file_writer_t *fw)
{
    if (!fw)
        return;
    avro_file_writer_close(fw->w); /* should_close = 0: the FILE stays ours */
    of_abort(fw->out);
    free(fw);
}

/* ---- reader ----
 * Avro-C trusts the lengths in a container file: a mutated block size, metadata length or
 * string length makes it allocate that much before it finds the input short (ASan:
 * allocation-size-too-big), and its binary reader leaks the buffer when the read then fails
 * (read_bytes/read_string in libavro 1.11: the 1,904-byte leaks of issue 11 are libavro's,
 * not churnstream's). So for the codecs Avro-C writes by default (null, deflate) the file is
 * read here: the header and every block's count, size and sync marker are checked against
 * the file's real size at open (a truncated file is refused before its first event), a
 * block is inflated with a bound, and each record is walked against the writer schema
 * (cs_walk_check, the same guard as Kafka messages) before Avro-C reads it from memory.
 * Other codecs (snappy, xz) go through Avro-C's own reader after the same structure check,
 * with its allocations capped (cs_avro_cap_allocations). */

#define CS_FILE_BLOCK_MAX_BYTES ((int64_t)64 << 20) /* a block inflated: larger is refused */

enum { CODEC_NULL, CODEC_DEFLATE, CODEC_OTHER };

struct ev_file_reader_s {
    char *path;
    FILE *fp;             /* own reader */
    avro_file_reader_t r; /* Avro-C's reader (CODEC_OTHER) */
    cs_plan_t *plan;
    avro_reader_t mem; /* memory reader over one record */
    int codec;
    uint8_t sync[16];
    uint8_t *raw, *data; /* the block as stored; inflated (data == raw for null) */
    size_t raw_cap, data_cap, data_len, pos;
    int64_t objects_left, block_no, object_no, block_at;
};

typedef struct scan_s {
    FILE *fp;
    const char *path;
    int64_t size; /* bytes in the file */
    char *errstr;
    size_t errstr_size;
} scan_t;

static int64_t scan_pos(scan_t *sc)
{
    return (int64_t)ftello(sc->fp);
}

/* Avro long (zigzag varint, at most 10 bytes); -1 at the end of the file or on a bad varint. */
static int scan_long(scan_t *sc, int64_t *out, const char *what)
{
    uint64_t v = 0;
    int64_t at = scan_pos(sc);
    for (int shift = 0; shift < 70; shift += 7) {
        int c = getc(sc->fp);
        if (c == EOF) {
            snprintf(sc->errstr, sc->errstr_size,
                     "%s: truncated Avro container file: %s at byte %lld is cut off", sc->path,
                     what, (long long)at);
            return -1;
        }
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    snprintf(sc->errstr, sc->errstr_size,
             "%s: corrupt Avro container file: %s at byte %lld is not a varint", sc->path, what,
             (long long)at);
    return -1;
}

/* A length read at byte `at` must fit in what is left of the file (minus `reserve`). */
static int scan_len_fits(scan_t *sc, int64_t len, int64_t reserve, const char *what, int64_t at)
{
    int64_t left = sc->size - scan_pos(sc) - reserve;
    if (len < 0) {
        snprintf(sc->errstr, sc->errstr_size,
                 "%s: corrupt Avro container file: %s at byte %lld is negative (%lld)", sc->path,
                 what, (long long)at, (long long)len);
        return -1;
    }
    if (len > left) {
        snprintf(sc->errstr, sc->errstr_size,
                 "%s: truncated or corrupt Avro container file: %s at byte %lld says %lld "
                 "bytes, only %lld left in the file",
                 sc->path, what, (long long)at, (long long)len, (long long)(left < 0 ? 0 : left));
        return -1;
    }
    return 0;
}

static int scan_read(scan_t *sc, void *buf, size_t n, const char *what)
{
    int64_t at = scan_pos(sc);
    if (fread(buf, 1, n, sc->fp) == n)
        return 0;
    snprintf(sc->errstr, sc->errstr_size,
             "%s: truncated Avro container file: %s at byte %lld is cut off", sc->path, what,
             (long long)at);
    return -1;
}

/* Checks the whole file's structure; fills the header's sync marker, codec and (malloc'd,
 * caller frees) writer schema JSON, and leaves fp at the first block. */
/* One metadata entry (key, value) of the header: keeps avro.schema (malloc'd) and the codec,
 * skips the rest. 0, or -1 with sc's errstr set (or errno). */
static int scan_meta_entry(scan_t *sc, int *codec, char **schema_json)
{
    int64_t klen, vlen, kat = scan_pos(sc), vat;
    char key[32] = "";
    if (scan_long(sc, &klen, "a metadata key length") != 0 ||
        scan_len_fits(sc, klen, 0, "a metadata key length", kat) != 0)
        return -1;
    size_t keep = klen < (int64_t)sizeof(key) - 1 ? (size_t)klen : sizeof(key) - 1;
    if (scan_read(sc, key, keep, "a metadata key") != 0 ||
        fseeko(sc->fp, klen - (int64_t)keep, SEEK_CUR) != 0)
        return -1;
    vat = scan_pos(sc);
    if (scan_long(sc, &vlen, "a metadata value length") != 0 ||
        scan_len_fits(sc, vlen, 0, "a metadata value length", vat) != 0)
        return -1;
    if (strcmp(key, "avro.schema") == 0 && !*schema_json) {
        if (!(*schema_json = malloc((size_t)vlen + 1))) {
            snprintf(sc->errstr, sc->errstr_size, "out of memory");
            return -1;
        }
        if (scan_read(sc, *schema_json, (size_t)vlen, "the schema") != 0)
            return -1;
        (*schema_json)[vlen] = '\0';
        return 0;
    }
    if (strcmp(key, "avro.codec") != 0)
        return fseeko(sc->fp, vlen, SEEK_CUR) != 0 ? -1 : 0;
    /* Avro-C knows null, deflate, snappy and lzma; anything else would reach its error path,
     * which leaks: refused here. */
    char name[16] = "";
    if (vlen < (int64_t)sizeof(name) && scan_read(sc, name, (size_t)vlen, "the codec name") != 0)
        return -1;
    if (vlen == 0 || strcmp(name, "null") == 0)
        *codec = CODEC_NULL;
    else if (strcmp(name, "deflate") == 0)
        *codec = CODEC_DEFLATE;
    else if (strcmp(name, "snappy") == 0 || strcmp(name, "lzma") == 0)
        *codec = CODEC_OTHER;
    else {
        snprintf(sc->errstr, sc->errstr_size,
                 "%s: Avro container file with an unsupported codec at byte %lld (null, "
                 "deflate, snappy and lzma are read)",
                 sc->path, (long long)vat);
        return -1;
    }
    return 0;
}

/* The header's metadata: a map of string -> bytes in blocks. 0, or -1. */
static int scan_header(scan_t *sc, int *codec, char **schema_json)
{
    for (;;) {
        int64_t at = scan_pos(sc), n, bytes;
        if (scan_long(sc, &n, "the header's metadata count") != 0)
            return -1;
        if (n == 0)
            break;
        if (n < 0) {
            n = -n;
            if (scan_long(sc, &bytes, "the header's metadata block size") != 0)
                return -1;
        }
        if (n > sc->size) {
            snprintf(sc->errstr, sc->errstr_size,
                     "%s: corrupt Avro container file: %lld metadata entries at byte %lld",
                     sc->path, (long long)n, (long long)at);
            return -1;
        }
        for (int64_t i = 0; i < n; i++)
            if (scan_meta_entry(sc, codec, schema_json) != 0)
                return -1;
    }
    if (!*schema_json) {
        snprintf(sc->errstr, sc->errstr_size,
                 "%s: corrupt Avro container file: no avro.schema in the header", sc->path);
        return -1;
    }
    return 0;
}

/* The blocks (object count, byte size, data, sync marker) until the end of the file: each
 * must be plausible and end with the header's sync marker. 0, or -1. */
static int scan_blocks(scan_t *sc, const uint8_t sync[16], int codec)
{
    uint8_t got[16];
    for (int64_t block = 1;; block++) {
        int64_t at = scan_pos(sc), count, bytes;
        if (at == sc->size)
            return 0;
        if (scan_long(sc, &count, "a block's object count") != 0 ||
            scan_long(sc, &bytes, "a block's byte size") != 0 ||
            scan_len_fits(sc, bytes, 16, "a block's byte size", at) != 0)
            return -1;
        /* Every record takes at least one byte; deflate packs at most ~1032 bytes in one:
         * a larger count is corruption, not data. */
        if (count < 0 || count > (codec == CODEC_NULL ? bytes : bytes * 1100 + 1)) {
            snprintf(sc->errstr, sc->errstr_size,
                     "%s: corrupt Avro container file: block %lld at byte %lld says %lld "
                     "objects in %lld bytes",
                     sc->path, (long long)block, (long long)at, (long long)count, (long long)bytes);
            return -1;
        }
        if (fseeko(sc->fp, bytes, SEEK_CUR) != 0 || fread(got, 1, 16, sc->fp) != 16 ||
            memcmp(got, sync, 16) != 0) {
            snprintf(sc->errstr, sc->errstr_size,
                     "%s: corrupt Avro container file: block %lld at byte %lld does not end "
                     "with the header's sync marker",
                     sc->path, (long long)block, (long long)at);
            return -1;
        }
    }
}

static int scan_container(FILE *fp, const char *path, uint8_t sync[16], int *codec,
                          char **schema_json, char *errstr, size_t errstr_size)
{
    scan_t sc = {fp, path, 0, errstr, errstr_size};
    char magic[4];
    *codec = CODEC_NULL;
    *schema_json = NULL;
    if (fseeko(fp, 0, SEEK_END) != 0 || (sc.size = (int64_t)ftello(fp)) < 0 ||
        fseeko(fp, 0, SEEK_SET) != 0) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "Obj\x01", 4) != 0) {
        snprintf(errstr, errstr_size, "%s: not an Avro container file (no Obj\\x01 magic)", path);
        return -1;
    }
    if (scan_header(&sc, codec, schema_json) != 0 ||
        scan_read(&sc, sync, 16, "the header's sync marker") != 0)
        goto fail;
    int64_t first = scan_pos(&sc);
    if (scan_blocks(&sc, sync, *codec) != 0)
        goto fail;
    if (fseeko(fp, first, SEEK_SET) != 0) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (errstr[0] == '\0')
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
    free(*schema_json);
    *schema_json = NULL;
    return -1;
}

ev_file_reader_t *ev_file_reader_open(const char *path, char *errstr, size_t errstr_size)
{
    char err[512];
    char *json = NULL;
    ev_file_reader_t *fr = calloc(1, sizeof *fr);
    avro_schema_t reader = cs_reader_schema_new(errstr, errstr_size);
    avro_schema_t writer = NULL;
    if (!fr || !reader || !(fr->path = strdup(path))) {
        if (reader)
            snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (!(fr->fp = fopen(path, "rb"))) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        goto fail;
    }
    errstr[0] = '\0';
    if (scan_container(fr->fp, path, fr->sync, &fr->codec, &json, errstr, errstr_size) != 0)
        goto fail;
    if (fr->codec == CODEC_OTHER) {
        /* Avro-C reads (and decompresses) itself, from the start of the checked file. */
        free(json);
        json = NULL;
        if (fseeko(fr->fp, 0, SEEK_SET) != 0 || avro_file_reader_fp(fr->fp, path, 1, &fr->r) != 0) {
            snprintf(errstr, errstr_size, "%s: not an Avro container file: %s", path,
                     avro_strerror());
            fr->fp = NULL; /* Avro-C closed it (should_close) */
            fr->r = NULL;
            goto fail;
        }
        fr->fp = NULL;
        writer = avro_file_reader_get_writer_schema(fr->r); /* new reference */
    } else if (avro_schema_from_json_length(json, strlen(json), &writer) != 0) {
        snprintf(errstr, errstr_size, "%s: the header's writer schema: %s", path, avro_strerror());
        writer = NULL;
        goto fail;
    }
    free(json);
    json = NULL;
    fr->plan = cs_plan_new(writer, reader, err, sizeof err);
    if (!fr->plan) {
        snprintf(errstr, errstr_size, "%s: %s", path, err);
        goto fail;
    }
    if (!(fr->mem = avro_reader_memory("", 0))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    avro_schema_decref(writer);
    avro_schema_decref(reader);
    return fr;
fail:
    free(json);
    if (writer)
        avro_schema_decref(writer);
    if (reader)
        avro_schema_decref(reader);
    ev_file_reader_close(fr);
    return NULL;
}

static int grow(uint8_t **buf, size_t *cap, size_t want)
{
    if (want <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64 * 1024;
    while (c < want)
        c *= 2;
    uint8_t *b = realloc(*buf, c);
    if (!b)
        return -1;
    *buf = b;
    *cap = c;
    return 0;
}

/* Raw deflate (RFC 1951, no zlib header: the Avro spec), bounded by CS_FILE_BLOCK_MAX_BYTES. */
static int inflate_block(ev_file_reader_t *fr, size_t raw_len, char *why, size_t why_size)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK) {
        snprintf(why, why_size, "cannot start inflate");
        return -1;
    }
    zs.next_in = fr->raw;
    zs.avail_in = (uInt)raw_len;
    size_t out = 0;
    int zrc = Z_OK;
    while (zrc != Z_STREAM_END) {
        if (out == fr->data_cap) {
            if ((int64_t)fr->data_cap >= CS_FILE_BLOCK_MAX_BYTES) {
                snprintf(why, why_size, "inflates to more than %lld bytes",
                         (long long)CS_FILE_BLOCK_MAX_BYTES);
                inflateEnd(&zs);
                return -1;
            }
            if (grow(&fr->data, &fr->data_cap, fr->data_cap + 1) != 0) {
                snprintf(why, why_size, "out of memory");
                inflateEnd(&zs);
                return -1;
            }
        }
        zs.next_out = fr->data + out;
        zs.avail_out = (uInt)(fr->data_cap - out);
        zrc = inflate(&zs, Z_NO_FLUSH);
        out = fr->data_cap - zs.avail_out;
        if (zrc != Z_OK && zrc != Z_STREAM_END) {
            snprintf(why, why_size, "deflate data: %s",
                     zs.msg               ? zs.msg
                     : zrc == Z_BUF_ERROR ? "cut off"
                                          : "invalid");
            inflateEnd(&zs);
            return -1;
        }
    }
    inflateEnd(&zs);
    fr->data_len = out;
    return 0;
}

static int corrupt(ev_file_reader_t *fr, const char *why, char *errstr, size_t errstr_size)
{
    if (fr->object_no)
        snprintf(errstr, errstr_size,
                 "%s: corrupt Avro container file: block %lld at byte %lld, object %lld: %s",
                 fr->path, (long long)fr->block_no, (long long)fr->block_at,
                 (long long)fr->object_no, why);
    else
        snprintf(errstr, errstr_size,
                 "%s: corrupt Avro container file: block %lld at byte %lld: %s", fr->path,
                 (long long)fr->block_no, (long long)fr->block_at, why);
    return -1;
}

/* Loads the next block with objects; 0 at the end of the file, -1 when corrupt. */
static int next_block(ev_file_reader_t *fr, char *errstr, size_t errstr_size)
{
    char why[256];
    scan_t sc = {fr->fp, fr->path, 0, errstr, errstr_size};
    for (;;) {
        int64_t count, bytes;
        int c = getc(fr->fp);
        if (c == EOF)
            return 0;
        ungetc(c, fr->fp);
        fr->block_no++;
        fr->object_no = 0;
        fr->block_at = scan_pos(&sc);
        /* The structure was checked at open; a file changed since is caught here too. */
        if (scan_long(&sc, &count, "a block's object count") != 0 ||
            scan_long(&sc, &bytes, "a block's byte size") != 0)
            return -1;
        if (count < 0 || bytes < 0 || bytes > CS_FILE_BLOCK_MAX_BYTES)
            return corrupt(fr, "bad object count or byte size", errstr, errstr_size);
        if (grow(&fr->raw, &fr->raw_cap, (size_t)bytes + 1) != 0) {
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        uint8_t got[16];
        if (fread(fr->raw, 1, (size_t)bytes, fr->fp) != (size_t)bytes ||
            fread(got, 1, 16, fr->fp) != 16)
            return corrupt(fr, "cut off (the file changed since it was opened?)", errstr,
                           errstr_size);
        if (memcmp(got, fr->sync, 16) != 0)
            return corrupt(fr, "no sync marker after it", errstr, errstr_size);
        if (fr->codec == CODEC_DEFLATE) {
            if (inflate_block(fr, (size_t)bytes, why, sizeof why) != 0)
                return corrupt(fr, why, errstr, errstr_size);
        } else {
            if (grow(&fr->data, &fr->data_cap, (size_t)bytes + 1) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
            }
            memcpy(fr->data, fr->raw, (size_t)bytes);
            fr->data_len = (size_t)bytes;
        }
        fr->pos = 0;
        fr->objects_left = count;
        if (count > 0)
            return 1;
        if (fr->data_len != 0)
            return corrupt(fr, "bytes in a block of 0 objects", errstr, errstr_size);
    }
}

int ev_file_reader_next(ev_file_reader_t *fr, ev_event_t *ev, ev_reason_t *reason, char *errstr,
                        size_t errstr_size)
{
    char why[256];
    if (fr->r) {
        int rc = avro_file_reader_read_value(fr->r, cs_plan_resolved_value(fr->plan));
        if (rc == EOF)
            return 0;
        if (rc != 0) {
            snprintf(errstr, errstr_size, "%s: corrupt container file: %s", fr->path,
                     avro_strerror());
            return -1;
        }
        *reason = cs_plan_extract(fr->plan, ev, why, sizeof why);
        if (*reason != EV_OK)
            snprintf(errstr, errstr_size, "%s", why);
        return 1;
    }
    if (fr->objects_left == 0) {
        if (fr->pos != fr->data_len)
            return corrupt(fr, "bytes left after its last object", errstr, errstr_size);
        int rc = next_block(fr, errstr, errstr_size);
        if (rc <= 0)
            return rc;
    }
    fr->object_no++;
    const uint8_t *b = fr->data + fr->pos;
    size_t left = fr->data_len - fr->pos;
    /* Records carry no length: the decode says how many bytes this one took. */
    int64_t used;
    why[0] = '\0';
    *reason = cs_plan_decode_next(fr->plan, fr->mem, b, left, &used, ev, why, sizeof why);
    if (used < 0 || *reason == EV_ERR_UNDECODABLE)
        return corrupt(fr, why, errstr, errstr_size);
    fr->pos += (size_t)used;
    fr->objects_left--;
    if (*reason != EV_OK)
        snprintf(errstr, errstr_size, "%s", why);
    return 1;
}

void ev_file_reader_close(ev_file_reader_t *fr)
{
    if (!fr)
        return;
    if (fr->r)
        avro_file_reader_close(fr->r);
    if (fr->fp)
        fclose(fr->fp);
    if (fr->mem)
        avro_reader_free(fr->mem);
    cs_plan_destroy(fr->plan);
    free(fr->raw);
    free(fr->data);
    free(fr->path);
    free(fr);
}
