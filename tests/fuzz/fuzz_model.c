/* libFuzzer target for the model snapshot decoder (the bytes of the Redis model key or a
 * --model-in file). The input is the snapshot's body: the harness wraps it in a valid header
 * (magic, this build's format version, the total length) and a correct CRC-32, so mutations
 * reach the section parsers instead of stopping at the checksum. Every input is either
 * refused with a message or decodes to a model whose encoding decodes again to the same
 * bytes (encode . decode is a fixed point after one round). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = 16 + size + 4;
    uint8_t *buf = malloc(len);
    if (!buf)
        return 0;
    memcpy(buf, "CSMD", 4);
    put_le(buf + 4, MODEL_FORMAT_VERSION, 4);
    put_le(buf + 8, len, 8);
    memcpy(buf + 16, data, size);
    put_le(buf + len - 4, (uint32_t)crc32_z(0L, buf, len - 4), 4);
    char err[512] = "";
    model_t *m = model_decode(buf, len, err, sizeof err);
    if (!m) {
        if (!err[0])
            abort();
    } else {
        uint8_t *e1 = NULL, *e2 = NULL;
        size_t n1 = 0, n2 = 0;
        if (model_encode(m, &e1, &n1) != 0)
            abort();
        model_t *m2 = model_decode(e1, n1, err, sizeof err);
        if (!m2 || model_encode(m2, &e2, &n2) != 0 || n1 != n2 || memcmp(e1, e2, n1) != 0)
            abort();
        model_destroy(m2);
        free(e1);
        free(e2);
        model_destroy(m);
    }
    free(buf);
    return 0;
}
