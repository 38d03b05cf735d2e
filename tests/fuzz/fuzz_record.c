/* libFuzzer target for the per-user record decoder (the bytes a Redis store hands back, which
 * a bad actor with Redis access, a bit flip or a foreign writer can make anything). Every
 * input is either rejected with a message or decodes to a record whose encoding is a fixed
 * point (decode, encode again: the same bytes), and, when the input is of the current
 * version, equals the input: encodings are canonical (features/feat.h), so anything else is
 * a decoder that accepted a non-canonical form or lost information. An older version is
 * migrated (re-encoded as the current one), so only the fixed point applies to it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1); /* exactly size bytes: ASan sees overreads */
    if (!in)
        return 0;
    memcpy(in, data, size);
    user_rec_t rec;
    char err[256] = "";
    if (user_rec_decode(&rec, in, size, err, sizeof err) != 0) {
        if (!err[0])
            abort();
    } else {
        uint8_t out[USER_REC_MAX_BYTES], out2[USER_REC_MAX_BYTES];
        size_t n = user_rec_encode(&rec, out, sizeof out);
        user_rec_t rec2;
        if (n == 0 || user_rec_decode(&rec2, out, n, err, sizeof err) != 0 ||
            user_rec_encode(&rec2, out2, sizeof out2) != n || memcmp(out, out2, n) != 0)
            abort();
        if (size > 0 && in[0] == USER_REC_VERSION && (n != size || memcmp(out, in, size) != 0))
            abort();
    }
    free(in);
    return 0;
}
