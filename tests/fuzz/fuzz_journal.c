/* libFuzzer target for model journal replay (model_journal.h: the entries the daemon reads
 * back from Redis and merges into the shared model). Every input is either refused with a
 * message naming the op, or replays onto a fresh model whose snapshot then encodes and
 * decodes again (the replay leaves a valid model). The model is small (4 features, 3
 * segments) so each run is fast; a LEARN op of another dimension is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    model_t *m = model_new(4, 3, 1, NULL, err, sizeof err);
    if (!m)
        abort();
    model_set_class_balance(m, 1);
    err[0] = '\0';
    if (model_replay(m, data, size, err, sizeof err) != 0) {
        if (strncmp(err, "model journal: op", 17) != 0)
            abort();
    } else {
        uint8_t *b = NULL;
        size_t n = 0;
        if (model_encode(m, &b, &n) != 0)
            abort();
        model_t *back = model_decode(b, n, err, sizeof err);
        if (!back)
            abort(); /* a replayed model must stay a valid snapshot */
        model_destroy(back);
        free(b);
    }
    model_destroy(m);
    return 0;
}
