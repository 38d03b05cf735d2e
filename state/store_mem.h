/* In-memory user store for replay and tests: a hash map user_id -> user record, and a scan
 * of the last-activity array for the engine's range queries (O(users) per sweep, which at
 * one sweep per tick costs far less than the events themselves). Ranges visit users in
 * (last activity, id bytes) order, as the Redis store does, so both give the same model. */
#ifndef CS_STORE_MEM_H
#define CS_STORE_MEM_H

#include <stddef.h>

#include "store.h"
#include "user.h"

typedef struct st_mem_s st_mem_t;

/* Returns an empty store, NULL on out of memory. */
st_mem_t *st_mem_new(void);
/* Frees the store, its records and ids; NULL is a no-op. */
void st_mem_destroy(st_mem_t *st);

/* Fills *ops so the engine uses this store. The store must outlive the engine. */
void st_mem_engine_ops(st_mem_t *st, store_ops_t *ops);

size_t st_mem_count(const st_mem_t *st);
/* The i-th user (0 <= i < count, in first-seen order). Pointers are valid until the next
 * insertion. */
const char *st_mem_user_id(const st_mem_t *st, size_t i);
user_rec_t *st_mem_at(st_mem_t *st, size_t i);
/* Inserts an empty record if absent; returns it (NULL only on out of memory). */
user_rec_t *st_mem_get(st_mem_t *st, const char *user_id, size_t len);

#endif
