/* GET /v1/users/{id} behind the daemon's HTTP server: the user_view JSON from a Redis
 * connection and a model copy of its own, so requests never share state with the batch loop
 * (they run on the HTTP server's threads). */
#ifndef CS_USER_API_H
#define CS_USER_API_H

#include <stddef.h>

#include "config.h"

/* How often, at most, the cached model is checked against Redis's (st_redis_model_stamp)
 * and reloaded when it changed: answers use a model at most this much older than the
 * committed one. */
#define UA_MODEL_CHECK_MS 1000

typedef struct ua_s ua_t;

/* Borrows cfg (it must outlive the ua_t); connects to Redis at the first request (and again
 * after an error). NULL with errstr set on a bad alert.* configuration or out of memory. */
ua_t *ua_new(const cfg_t *cfg, char *errstr, size_t errstr_size);
/* Closes the connection, frees the model copy; NULL is a no-op. */
void ua_destroy(ua_t *ua);

/* One request, thread-safe (requests are serialized on a mutex): user_id is already decoded
 * and checked (uv_decode_id); at is the decoded `at` argument or NULL (= now, wall clock).
 * Returns the HTTP status, with a JSON body in *body (malloc'd; NULL only when out of
 * memory): 200 the user (uv_user_json), 400 a bad `at`, 404 an unknown user, 503 Redis
 * unreachable or failing (the error named). */
int ua_get_user(void *ua, const char *user_id, size_t len, const char *at, char **body);

#endif
