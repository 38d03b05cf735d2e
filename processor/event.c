/* Event type names, shared by the decoder, the CSV importer, the generator and reports. */
#include "event.h"

#include <string.h>

static const char *const ev_type_names[EV_TYPE_COUNT] = {
    "session_start", "page_view",      "search",          "add_to_cart",
    "remove_from_cart", "purchase",    "refund",          "support_ticket",
    "coupon_redeem", "subscription_cancel", "other",
};

const char *ev_type_name(ev_type_t t)
{
    return (t >= 0 && t < EV_TYPE_COUNT) ? ev_type_names[t] : "other";
}

int ev_type_parse(const char *name, ev_type_t *out)
{
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        if (strcmp(name, ev_type_names[i]) == 0) {
            *out = (ev_type_t)i;
            return 0;
        }
    }
    return -1;
}
