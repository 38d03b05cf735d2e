/* The model snapshot (model.h): the parts' sections framed into one checksummed, versioned
 * byte string (magic, format version, total length, header, sections, CRC-32), its strict
 * decoder, and atomic snapshot files. */
#include "model_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "model_wire.h"
#include "outfile.h"

/* Section layout: u64 names_version, then per segment u8 valid and, when valid, u8 arch,
 * u16 label length, the label's bytes (no NUL). */
static void names_encode(const model_t *m, mw_buf_t *b)
{
    mw_put_u64(b, m->names_version);
    for (int i = 0; i < m->k; i++) {
        mw_put_u8(b, m->names[i].valid);
        if (!m->names[i].valid)
            continue;
        size_t n = strlen(m->names[i].label);
        mw_put_u8(b, m->names[i].arch);
        uint8_t len[2] = {(uint8_t)n, (uint8_t)(n >> 8)};
        mw_put_bytes(b, len, 2);
        mw_put_bytes(b, m->names[i].label, n);
    }
}

static int names_decode(model_t *m, mw_reader_t *r)
{
    if (m->k != km_k(m->km)) /* the header's k is checked against k-means below, too */
        return -1;
    if (!(m->names = calloc((size_t)(m->k > 0 ? m->k : 1), sizeof(*m->names))))
        return -1;
    m->names_version = mw_get_u64(r);
    for (int i = 0; i < m->k && !r->failed; i++) {
        uint8_t valid = mw_get_u8(r);
        if (valid > 1)
            return -1;
        if (!valid)
            continue;
        m->names[i].valid = 1;
        m->names[i].arch = mw_get_u8(r);
        size_t n = (size_t)mw_get_u8(r);
        n |= (size_t)mw_get_u8(r) << 8;
        if (r->failed || n >= MODEL_SEG_NAME_MAX || n > r->len - r->off)
            return -1;
        memcpy(m->names[i].label, r->p + r->off, n);
        r->off += n;
        if (memchr(m->names[i].label, 0, n))
            return -1; /* the label has no NUL inside */
    }
    return r->failed ? -1 : 0;
}

int model_encode(const model_t *m, uint8_t **buf, size_t *len)
{
    mw_buf_t b = {0};
    mw_put_bytes(&b, MODEL_MAGIC, 4);
    mw_put_u32(&b, MODEL_FORMAT_VERSION);
    mw_put_u64(&b, 0); /* total length, patched below */
    mw_put_u32(&b, (uint32_t)m->dim);
    mw_put_u32(&b, (uint32_t)m->k);
    mw_put_u64(&b, m->seed);
    mw_put_u64(&b, m->version);
    mw_put_u64(&b, m->examples_seen);
    sc_encode(m->sc, &b);
    km_encode(m->km, &b);
    lr_encode(m->lr, &b);
    pm_encode(m->pm, &b);
    cal_encode(m->cal, &b);
    ex_encode(m->ex, &b);
    names_encode(m, &b);
    ex_encode_shapes(m->ex, &b);
    if (mw_reserve(&b, 4) < 0) {
        free(b.data);
        return -1;
    }
    uint64_t total = b.len + 4;
    for (int i = 0; i < 8; i++)
        b.data[8 + i] = (uint8_t)(total >> (8 * i));
    uint32_t crc = (uint32_t)crc32_z(0L, b.data, b.len);
    mw_put_u32(&b, crc);
    *buf = b.data;
    *len = b.len;
    return 0;
}

model_t *model_decode(const uint8_t *buf, size_t len, char *errstr, size_t errstr_size)
{
    char part_err[200] = "";
    if (len < 8) {
        snprintf(errstr, errstr_size, "model: truncated: %zu bytes, a snapshot starts with 8", len);
        return NULL;
    }
    if (memcmp(buf, MODEL_MAGIC, 4) != 0) {
        snprintf(errstr, errstr_size, "model: not a churnstream model (bad magic bytes)");
        return NULL;
    }
    mw_reader_t r = {.p = buf, .len = len, .off = 4};
    uint32_t format = mw_get_u32(&r);
    if (format < MODEL_FORMAT_OLDEST || format > MODEL_FORMAT_VERSION) {
        snprintf(errstr, errstr_size,
                 "model: unsupported snapshot format version %u (this build reads %d..%d); "
                 "retrain or convert the model",
                 format, MODEL_FORMAT_OLDEST, MODEL_FORMAT_VERSION);
        return NULL;
    }
    if (len < MODEL_HEADER_BYTES + 4) {
        snprintf(errstr, errstr_size, "model: truncated: %zu bytes, the header alone is %d", len,
                 MODEL_HEADER_BYTES + 4);
        return NULL;
    }
    uint64_t total = mw_get_u64(&r);
    if (total > len) {
        snprintf(errstr, errstr_size, "model: truncated: %zu of %llu bytes", len,
                 (unsigned long long)total);
        return NULL;
    }
    if (total < len) {
        snprintf(errstr, errstr_size, "model: %zu trailing bytes after a %llu-byte snapshot",
                 len - (size_t)total, (unsigned long long)total);
        return NULL;
    }
    uint32_t stored_crc = (uint32_t)buf[len - 4] | (uint32_t)buf[len - 3] << 8 |
                          (uint32_t)buf[len - 2] << 16 | (uint32_t)buf[len - 1] << 24;
    if ((uint32_t)crc32_z(0L, buf, len - 4) != stored_crc) {
        snprintf(errstr, errstr_size, "model: checksum mismatch (corrupted snapshot)");
        return NULL;
    }
    r.len = len - 4; /* sections must end exactly at the checksum */
    model_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(errstr, errstr_size, "model: out of memory");
        return NULL;
    }
    uint32_t dim = mw_get_u32(&r), k = mw_get_u32(&r);
    m->dim = (int)(dim & 0x7fffffff);
    m->k = (int)(k & 0x7fffffff);
    m->seed = mw_get_u64(&r);
    m->version = mw_get_u64(&r);
    m->examples_seen = mw_get_u64(&r);
    const char *part = NULL;
    if (!(m->sc = sc_decode(&r, part_err, sizeof(part_err))))
        part = "scaler";
    else if (!(m->km = km_decode(&r, part_err, sizeof(part_err))))
        part = "kmeans";
    else if (!(m->lr = lr_decode(&r, part_err, sizeof(part_err))))
        part = "logreg";
    else if (!(m->pm = pm_decode(&r, part_err, sizeof(part_err))))
        part = "metrics";
    else if (!(m->cal = cal_decode(&r, part_err, sizeof(part_err))))
        part = "calibration";
    else if (!(m->ex = ex_decode(&r, (int)format, part_err, sizeof(part_err))))
        part = "experts";
    else if (names_decode(m, &r) != 0) {
        snprintf(part_err, sizeof(part_err), "corrupt or truncated");
        part = "segment names";
    } else if (format >= 6 && ex_decode_shapes(m->ex, &r) != 0) {
        snprintf(part_err, sizeof(part_err), "corrupt or truncated");
        part = "shapes";
    }
    if (part) {
        snprintf(errstr, errstr_size, "model: bad %s section: %s", part, part_err);
        goto fail;
    }
    if (sc_dim(m->sc) != m->dim || km_dim(m->km) != m->dim || km_k(m->km) != m->k ||
        lr_dim(m->lr) != m->dim || (uint32_t)m->dim != dim || (uint32_t)m->k != k) {
        snprintf(errstr, errstr_size,
                 "model: section shapes disagree with the header (dim %u, k %u)", dim, k);
        goto fail;
    }
    if (r.off != r.len) {
        snprintf(errstr, errstr_size, "model: %zu unparsed bytes before the checksum",
                 r.len - r.off);
        goto fail;
    }
    return m;
fail:
    model_destroy(m);
    return NULL;
}

int model_save_file(const model_t *m, const char *path, char *errstr, size_t errstr_size)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (model_encode(m, &buf, &len) < 0) {
        snprintf(errstr, errstr_size, "%s: out of memory encoding the model", path);
        return -1;
    }
    /* of_open: atomic replace of a regular file, write-through for a device or FIFO. */
    int rc = -1;
    of_t *of = of_open(path, errstr, errstr_size);
    if (!of)
        goto out;
    if (fwrite(buf, 1, len, of_file(of)) != len) {
        snprintf(errstr, errstr_size, "%s: write failed: %s", path, strerror(errno));
        of_abort(of);
        goto out;
    }
    if (of_commit(of, errstr, errstr_size) != 0)
        goto out;
    rc = 0;
out:
    free(buf);
    return rc;
}

model_t *model_load_file(const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > MODEL_MAX_BYTES) {
                snprintf(errstr, errstr_size, "%s: larger than %llu bytes, not a model", path,
                         (unsigned long long)MODEL_MAX_BYTES);
                goto fail;
            }
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                snprintf(errstr, errstr_size, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(errstr, errstr_size, "%s: read failed: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    f = NULL;
    char inner[256];
    model_t *m = model_decode(buf, len, inner, sizeof(inner));
    if (!m)
        snprintf(errstr, errstr_size, "%s: %s", path, inner);
    free(buf);
    return m;
fail:
    if (f)
        fclose(f);
    free(buf);
    return NULL;
}
