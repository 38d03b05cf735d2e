/* Wire decoding: framing detection, writer-schema lookup (Confluent id, single-object
 * fingerprint, or the reader schema for plain binary) and one cached decode plan per writer
 * schema.
 *
 * Schema directory convention (schemas.dir): every file named <id>.avsc, <id> a decimal
 * int32, is the writer schema of Confluent id <id> and is also known by its fingerprint.
 * Other *.avsc files holding a record named Event are known by fingerprint only; other
 * files are ignored (so the repository's schemas/ works as a directory). Id 1 is the
 * built-in reader schema unless the directory has its own 1.avsc. All files are loaded
 * when the decoder is created; a file that does not resolve against Event fails creation. */
#include "codec_internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct {
    uint64_t key; /* Confluent id or fingerprint */
    cs_plan_t *plan;
} dec_index_t;

struct ev_decoder_s {
    avro_schema_t reader;
    avro_reader_t mem; /* one memory reader, re-pointed at each message */
    cs_plan_t **plans; /* owned; plans[0] is the reader schema's own plan */
    size_t nplans;
    dec_index_t *by_id, *by_fp; /* sorted by key for bsearch */
    size_t nid, nfp;
};

static int index_cmp(const void *a, const void *b)
{
    uint64_t x = ((const dec_index_t *)a)->key, y = ((const dec_index_t *)b)->key;
    return x < y ? -1 : x > y;
}

static cs_plan_t *index_find(const dec_index_t *ix, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix[mid].key == key)
            return ix[mid].plan;
        if (ix[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int index_add(dec_index_t **ix, size_t *n, uint64_t key, cs_plan_t *plan)
{
    for (size_t i = 0; i < *n; i++)
        if ((*ix)[i].key == key)
            return 0; /* first one wins: the same schema twice, or id 1 overridden */
    dec_index_t *nx = realloc(*ix, (*n + 1) * sizeof **ix);
    if (!nx)
        return -1;
    nx[*n].key = key;
    nx[*n].plan = plan;
    *ix = nx;
    (*n)++;
    return 0;
}

/* Returns the plan for writer, reusing an existing plan with the same fingerprint. */
static cs_plan_t *decoder_plan_for(ev_decoder_t *d, avro_schema_t writer, char *errstr,
                                   size_t errstr_size)
{
    uint64_t fp;
    if (cs_schema_fingerprint(writer, &fp) == 0) {
        for (size_t i = 0; i < d->nplans; i++)
            if (cs_plan_fingerprint(d->plans[i]) == fp)
                return d->plans[i];
    }
    cs_plan_t **np = realloc(d->plans, (d->nplans + 1) * sizeof *np);
    if (!np) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    d->plans = np;
    cs_plan_t *p = cs_plan_new(writer, d->reader, errstr, errstr_size);
    if (p)
        d->plans[d->nplans++] = p;
    return p;
}

/* "123.avsc" -> 123; -1 for any other name. */
static int64_t schema_file_id(const char *name)
{
    size_t n = strlen(name);
    if (n < 6 || n > 15 || strcmp(name + n - 5, ".avsc") != 0)
        return -1;
    int64_t id = 0;
    for (size_t i = 0; i < n - 5; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        id = id * 10 + (name[i] - '0');
    }
    return id <= INT32_MAX ? id : -1;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int decoder_load_dir(ev_decoder_t *d, const char *dir, char *errstr, size_t errstr_size)
{
    DIR *dh = opendir(dir);
    if (!dh) {
        snprintf(errstr, errstr_size, "schemas.dir %s: cannot open directory", dir);
        return -1;
    }
    char **names = NULL;
    size_t nnames = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".avsc") != 0)
            continue;
        char **nn = realloc(names, (nnames + 1) * sizeof *nn);
        if (!nn || !(nn[nnames] = strdup(de->d_name))) {
            names = nn ? nn : names;
            snprintf(errstr, errstr_size, "out of memory");
            rc = -1;
            break;
        }
        names = nn;
        nnames++;
    }
    closedir(dh);
    if (rc == 0)
        qsort(names, nnames, sizeof *names, name_cmp); /* deterministic order and errors */

    for (size_t i = 0; rc == 0 && i < nnames; i++) {
        char path[4096], err[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int64_t id = schema_file_id(names[i]);
        avro_schema_t s = cs_schema_load_file(path, errstr, errstr_size);
        if (!s) {
            rc = -1;
            break;
        }
        if (id < 0 && (avro_typeof(s) != AVRO_RECORD || strcmp(avro_schema_name(s), "Event"))) {
            log_debug("codec", "schemas.dir: skipping %s (not an Event schema)", path);
            avro_schema_decref(s);
            continue;
        }
        cs_plan_t *p = decoder_plan_for(d, s, err, sizeof err);
        avro_schema_decref(s);
        if (!p) {
            snprintf(errstr, errstr_size, "%s: %s", path, err);
            rc = -1;
            break;
        }
        if ((id >= 0 && index_add(&d->by_id, &d->nid, (uint64_t)id, p)) ||
            index_add(&d->by_fp, &d->nfp, cs_plan_fingerprint(p), p)) {
            snprintf(errstr, errstr_size, "out of memory");
            rc = -1;
        }
    }
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    return rc;
}

ev_decoder_t *ev_decoder_new(const char *schemas_dir, char *errstr, size_t errstr_size)
{
    static const char dummy[1];
    ev_decoder_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    d->reader = cs_reader_schema_new(errstr, errstr_size);
    if (!d->reader)
        goto fail;
    d->mem = avro_reader_memory(dummy, 0);
    if (!d->mem) {
        snprintf(errstr, errstr_size, "avro_reader_memory: %s", avro_strerror());
        goto fail;
    }
    if (!decoder_plan_for(d, d->reader, errstr, errstr_size))
        goto fail;
    if (schemas_dir && decoder_load_dir(d, schemas_dir, errstr, errstr_size) != 0)
        goto fail;
    /* built-in entries go last so the directory's 1.avsc wins */
    if (index_add(&d->by_id, &d->nid, 1, d->plans[0]) ||
        index_add(&d->by_fp, &d->nfp, cs_plan_fingerprint(d->plans[0]), d->plans[0])) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    qsort(d->by_id, d->nid, sizeof *d->by_id, index_cmp);
    qsort(d->by_fp, d->nfp, sizeof *d->by_fp, index_cmp);
    return d;
fail:
    ev_decoder_destroy(d);
    return NULL;
}

void ev_decoder_destroy(ev_decoder_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nplans; i++)
        cs_plan_destroy(d->plans[i]);
    free(d->plans);
    free(d->by_id);
    free(d->by_fp);
    if (d->mem)
        avro_reader_free(d->mem);
    if (d->reader)
        avro_schema_decref(d->reader);
    free(d);
}

/* Framing detection is unambiguous for any valid Event: plain binary starts with the
 * user_id length, and 0x00 (empty id) or 0xC3 0x01 (length -98) are never valid there. */
static ev_wire_t detect_wire(const uint8_t *b, size_t len)
{
    if (len >= 1 && b[0] == 0x00)
        return EV_WIRE_CONFLUENT;
    if (len >= 2 && b[0] == 0xC3 && b[1] == 0x01)
        return EV_WIRE_SINGLE_OBJECT;
    return EV_WIRE_PLAIN;
}

ev_reason_t ev_decode(ev_decoder_t *dec, ev_wire_t wire, const void *buf, size_t len,
                      ev_event_t *out, char *why, size_t why_size)
{
    const uint8_t *b = buf;
    cs_plan_t *plan;
    if (len == 0 || !b) {
        snprintf(why, why_size, "empty message");
        return EV_ERR_UNDECODABLE;
    }
    int auto_wire = wire == EV_WIRE_AUTO;
    if (auto_wire)
        wire = detect_wire(b, len);
    switch (wire) {
    case EV_WIRE_CONFLUENT: {
        if (len < 5 || b[0] != 0x00) {
            snprintf(why, why_size, "not Confluent framing (magic byte 0 + 4-byte id)");
            return EV_ERR_UNDECODABLE;
        }
        uint32_t id = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
        plan = index_find(dec->by_id, dec->nid, id);
        if (!plan) {
            snprintf(why, why_size, "schema id %u not in schemas.dir", id);
            return EV_ERR_UNKNOWN_SCHEMA;
        }
        b += 5;
        len -= 5;
        break;
    }
    case EV_WIRE_SINGLE_OBJECT: {
        if (len < 10 || b[0] != 0xC3 || b[1] != 0x01) {
            snprintf(why, why_size, "not single-object encoding (C3 01 + 8-byte fingerprint)");
            return EV_ERR_UNDECODABLE;
        }
        uint64_t fp = 0;
        for (int i = 7; i >= 0; i--)
            fp = fp << 8 | b[2 + i];
        plan = index_find(dec->by_fp, dec->nfp, fp);
        if (!plan) {
            snprintf(why, why_size, "schema fingerprint %016llx not in schemas.dir",
                     (unsigned long long)fp);
            return EV_ERR_UNKNOWN_SCHEMA;
        }
        b += 10;
        len -= 10;
        break;
    }
    case EV_WIRE_PLAIN:
        /* Guessed framing with an odd first byte: a plain Event starts with the user_id
         * length, whose zigzag encoding is never odd (negative), so this is a framing
         * header with a magic byte we do not know, and the message should say so. */
        if (auto_wire && (b[0] & 1)) {
            snprintf(why, why_size,
                     "wrong magic byte 0x%02x: expected 0x00 (Confluent framing), C3 01 "
                     "(single-object encoding) or plain Avro (whose first byte is never odd)",
                     b[0]);
            return EV_ERR_UNDECODABLE;
        }
        plan = dec->plans[0];
        break;
    default:
        snprintf(why, why_size, "bad wire format");
        return EV_ERR_UNDECODABLE;
    }
    return cs_plan_decode(plan, dec->mem, b, len, out, why, why_size);
}
