/* libFuzzer target for the JSON lines event parser (replay of .jsonl files): any bytes as one
 * line. Every parse either rejects with a reason and a message, or yields an event whose user
 * id is non-empty, NUL-free valid UTF-8 of the stated length, and whose optional strings are
 * NUL-terminated within their buffers. The same bytes parse to the same result twice. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so ASan sees any read past the line's end. */
    char *line = malloc(size ? size : 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    ev_event_t ev, ev2;
    char why[256] = "", why2[256] = "";
    ev_reason_t r = jl_parse_event(line, size, &ev, why, sizeof why);
    ev_reason_t r2 = jl_parse_event(line, size, &ev2, why2, sizeof why2);
    if (r != r2 || strcmp(why, why2) != 0)
        abort();
    if (r != EV_OK) {
        if (!why[0] || !memchr(why, '\0', sizeof why))
            abort();
    } else {
        if (ev.user_id_len == 0 || strlen(ev.user_id) != ev.user_id_len ||
            !ev_utf8_valid(ev.user_id, ev.user_id_len, NULL))
            abort();
        if ((ev.has_item_id && !memchr(ev.item_id, '\0', sizeof ev.item_id)) ||
            (ev.has_category && !memchr(ev.category, '\0', sizeof ev.category)) ||
            (ev.has_channel && !memchr(ev.channel, '\0', sizeof ev.channel)))
            abort();
        if (ev.event_time_ms != ev2.event_time_ms || strcmp(ev.user_id, ev2.user_id) != 0)
            abort();
    }
    free(line);
    return 0;
}
