/* The churn pipeline as the daemon's batch handler (daemon.h): decode and validate, one
 * pipeline (engine + shared model + alert policy) per assigned partition on the Redis user
 * store, and one MULTI/EXEC per batch holding the user records, the last-seen index, each
 * partition's next offset and engine progress, the model snapshot and the alert outbox
 * (DESIGN.md sections 1 and 7). A failed commit rolls the in-memory model and engines back to
 * what Redis holds, so a retry or a restart recomputes exactly the same batch. */
#ifndef CS_CHURN_HANDLER_H
#define CS_CHURN_HANDLER_H

#include <stddef.h>

#include "config.h"
#include "daemon.h"

typedef struct chn_s chn_t;

/* Connects to Redis and prepares the decoder, the alert policy and encoder. The model is
 * loaded at the first assignment: from Redis when it holds one, else from model_in (a
 * `replay --model-out` file: warm start), else a new model. Keeps cfg (must outlive it);
 * copies model_in. NULL with errstr set. */
chn_t *chn_new(const cfg_t *cfg, const char *model_in, char *errstr, size_t errstr_size);
void chn_destroy(chn_t *ch);

/* Fills *out with the handler callbacks (opaque = ch). */
void chn_handler(chn_t *ch, dm_handler_t *out);

#endif
