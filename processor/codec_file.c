/* Avro object container files of Event records: the writer (deflate, reader schema) used by
 * `gen` and `import`, and the reader used by `replay`, whose writer schema may be an evolved
 * Event resolved through the same decode plan as wire messages. Container files are trusted
 * input (local files), so records inside blocks are not pre-walked like Kafka messages. */
#include "codec_internal.h"
#include "outfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct ev_file_reader_s {
    avro_file_reader_t r;
    cs_plan_t *plan;
    char *path; /* for errors: a corrupt block is reported with the file's name */
};

ev_file_reader_t *ev_file_reader_open(const char *path, char *errstr, size_t errstr_size)
{
    char err[512];
    ev_file_reader_t *fr = calloc(1, sizeof *fr);
    avro_schema_t reader = cs_reader_schema_new(errstr, errstr_size);
    avro_schema_t writer = NULL;
    if (!fr || !reader || !(fr->path = strdup(path))) {
        if (!fr || reader)
            snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        goto fail;
    }
    /* Avro-C leaks its block reader when the header is bad: refuse non-Avro files first */
    char magic[4];
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "Obj\x01", 4) != 0 ||
        fseek(fp, 0, SEEK_SET) != 0) {
        snprintf(errstr, errstr_size, "%s: not an Avro container file (no Obj\\x01 magic)", path);
        fclose(fp);
        goto fail;
    }
    if (avro_file_reader_fp(fp, path, 1, &fr->r) != 0) {
        snprintf(errstr, errstr_size, "%s: not an Avro container file: %s", path, avro_strerror());
        fr->r = NULL; /* Avro-C closed fp (should_close) */
        goto fail;
    }
    writer = avro_file_reader_get_writer_schema(fr->r); /* new reference */
    fr->plan = cs_plan_new(writer, reader, err, sizeof err);
    if (!fr->plan) {
        snprintf(errstr, errstr_size, "%s: %s", path, err);
        goto fail;
    }
    avro_schema_decref(writer);
    avro_schema_decref(reader);
    return fr;
fail:
    if (writer)
        avro_schema_decref(writer);
    if (reader)
        avro_schema_decref(reader);
    ev_file_reader_close(fr);
    return NULL;
}

int ev_file_reader_next(ev_file_reader_t *fr, ev_event_t *ev, ev_reason_t *reason, char *errstr,
                        size_t errstr_size)
{
    char why[256];
    int rc = avro_file_reader_read_value(fr->r, cs_plan_resolved_value(fr->plan));
    if (rc == EOF)
        return 0;
    if (rc != 0) {
        snprintf(errstr, errstr_size, "%s: corrupt or truncated container file: %s", fr->path,
                 avro_strerror());
        return -1;
    }
    *reason = cs_plan_extract(fr->plan, ev, why, sizeof why);
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
    cs_plan_destroy(fr->plan);
    free(fr->path);
    free(fr);
}
