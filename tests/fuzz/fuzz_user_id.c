/* libFuzzer target for the id parsing of GET /v1/users/{id} (uv_decode_id) and the `at`
 * argument (uv_parse_time). The decoded id must fit its buffer, be NUL-terminated at *len,
 * hold no NUL and be valid UTF-8; re-encoding it fully as %XX must decode to the same bytes;
 * a small output buffer must be refused, never overrun. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "user_view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *raw = malloc(size + 1); /* the path as MHD hands it: NUL-terminated */
    if (!raw)
        return 0;
    memcpy(raw, data, size);
    raw[size] = '\0';
    char id[EV_USER_ID_MAX + 1], why[128];
    size_t len = 12345;
    if (uv_decode_id(raw, id, sizeof(id), &len, why, sizeof(why)) == 0) {
        if (len == 0 || len > EV_USER_ID_MAX || id[len] != '\0' || strlen(id) != len ||
            !ev_utf8_valid(id, len, NULL))
            abort();
        char enc[3 * EV_USER_ID_MAX + 1], back[EV_USER_ID_MAX + 1];
        for (size_t i = 0; i < len; i++)
            snprintf(enc + 3 * i, 4, "%%%02X", (unsigned char)id[i]);
        size_t blen;
        if (uv_decode_id(enc, back, sizeof(back), &blen, why, sizeof(why)) != 0 || blen != len ||
            memcmp(back, id, len) != 0)
            abort();
        char small[4];
        size_t slen;
        int rc = uv_decode_id(raw, small, sizeof(small), &slen, why, sizeof(why));
        if ((rc == 0) != (len < sizeof(small)))
            abort();
    } else if (len != 0 || why[0] == '\0') {
        abort();
    }
    int64_t t;
    (void)uv_parse_time(raw, &t);
    free(raw);
    return 0;
}
