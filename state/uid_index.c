/* uid_index: FNV-1a open addressing over an owner's dense arrays. */
#include "uid_index.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_id(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

size_t uid_index_slot(const uid_index_t *ix, const char *id, size_t len, uid_key_fn key,
                      const void *owner)
{
    size_t mask = ix->nslots - 1, s = (size_t)hash_id(id, len) & mask;
    for (;; s = (s + 1) & mask) {
        uint32_t v = ix->slots[s];
        if (v == 0)
            return s;
        const char *k;
        size_t klen;
        key(owner, v - 1, &k, &klen);
        if (klen == len && memcmp(k, id, len) == 0)
            return s;
    }
}

int uid_index_rebuild(uid_index_t *ix, size_t nslots, size_t n, uid_key_fn key, const void *owner)
{
    if (nslots == 0 || nslots == ix->nslots) {
        if (ix->nslots)
            memset(ix->slots, 0, ix->nslots * sizeof(*ix->slots));
    } else {
        uint32_t *slots = calloc(nslots, sizeof(*slots));
        if (!slots)
            return -1;
        free(ix->slots);
        ix->slots = slots;
        ix->nslots = nslots;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t klen;
        key(owner, i, &k, &klen);
        ix->slots[uid_index_slot(ix, k, klen, key, owner)] = (uint32_t)(i + 1);
    }
    return 0;
}

void uid_index_free(uid_index_t *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->nslots = 0;
}
