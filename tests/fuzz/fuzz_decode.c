/* libFuzzer target for the event decoder: the first input byte picks the declared framing
 * (auto, confluent, single-object, plain), the rest is the Kafka message. Writer schemas come
 * from tests/fixtures/schemas (CS_FUZZ_SCHEMAS overrides), so evolved-schema plans are fuzzed
 * too. Any event that decodes must survive encode -> decode unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static ev_decoder_t *dec;
static ev_encoder_t *enc;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Freeing everything before LeakSanitizer's exit check means anything still reported was
 * really lost, not merely held by the long-lived decoder. */
static void fuzz_cleanup(void)
{
    ev_decoder_destroy(dec);
    ev_encoder_destroy(enc);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    const char *dir = getenv("CS_FUZZ_SCHEMAS");
    dec = ev_decoder_new(dir ? dir : "tests/fixtures/schemas", err, sizeof err);
    enc = ev_encoder_new(EV_WIRE_PLAIN, 0, err, sizeof err);
    if (!dec || !enc) {
        fprintf(stderr, "fuzz_decode: %s\n", err);
        abort();
    }
    atexit(fuzz_cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const ev_wire_t wires[4] = {EV_WIRE_AUTO, EV_WIRE_CONFLUENT, EV_WIRE_SINGLE_OBJECT,
                                       EV_WIRE_PLAIN};
    ev_event_t ev, again;
    char why[256];
    ev_reason_t r = ev_decode(dec, wires[data[0] & 3], data + 1, size - 1, &ev, why, sizeof why);
    if (r < EV_OK || r >= EV_ERR_COUNT)
        abort();
    if (r != EV_OK)
        return 0;
    const void *buf;
    size_t len;
    if (ev_encode(enc, &ev, &buf, &len) != 0)
        abort();
    if (ev_decode(dec, EV_WIRE_PLAIN, buf, len, &again, why, sizeof why) != EV_OK ||
        memcmp(&ev, &again, sizeof ev) != 0)
        abort(); /* decode is not the inverse of encode */
    return 0;
}
