/* User id -> dense position index (FNV-1a, linear probing), shared by the in-memory store
 * and the Redis batch cache. The owner keeps the ids in its own dense arrays; the index only
 * holds slots (position + 1, 0 = empty) and reads id i back through the owner's key function. */
#ifndef CS_UID_INDEX_H
#define CS_UID_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct uid_index_s {
    uint32_t *slots; /* owned; position + 1, 0 = empty */
    size_t nslots;   /* power of two, kept >= 2 x the positions by the owner */
} uid_index_t;

/* Writes id i of the owner (not necessarily NUL-terminated) and its length. */
typedef void (*uid_key_fn)(const void *owner, size_t i, const char **id, size_t *len);

/* The slot holding id, or the empty slot where it would go. nslots > 0. */
size_t uid_index_slot(const uid_index_t *ix, const char *id, size_t len, uid_key_fn key,
                      const void *owner);
/* Rebuilds the slots for positions 0..n-1, resized to nslots (0 = keep the size; a removal
 * under linear probing is done this way). 0, or -1 on out of memory (index unchanged). */
int uid_index_rebuild(uid_index_t *ix, size_t nslots, size_t n, uid_key_fn key, const void *owner);
/* Frees the slots; the struct may be reused. */
void uid_index_free(uid_index_t *ix);

#endif
