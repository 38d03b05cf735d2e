/* The Redis store's operations that span partitions, in cluster mode: the outbox (one hash
 * per partition: load, claim, remove, unclaim), `inspect` of one user and `forget`. Each
 * runs the single-node operation once per partition, routed to that partition's slot
 * (RCL_CALL), and merges the results. Which partitions: those whose keys SCAN finds on the
 * masters (rcl_scan_partitions), for the outbox also those committed since. */
#include "redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds found[] to the known outbox partitions. */
static int note_outbox_parts(rcl_t *cl, const int32_t *found, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rcl_parts_add(&cl->ob_parts, &cl->n_ob_parts, &cl->cap_ob_parts, found[i]) != 0)
            return -1;
    return 0;
}

static int discover_outboxes(st_redis_t *st, char *errstr, size_t errstr_size)
{
    int32_t *found;
    size_t n;
    if (rcl_scan_partitions(st, "outbox*", &found, &n, errstr, errstr_size) != 0)
        return -1;
    int rc = note_outbox_parts(st->cl, found, n);
    free(found);
    if (rc != 0)
        snprintf(errstr, errstr_size, "out of memory");
    return rc;
}

/* Moves b's entries to the end of a (b is left empty). */
static int outbox_append(st_outbox_t *a, st_outbox_t *b)
{
    size_t n = a->n + b->n;
    char **ids = realloc(a->ids, (n + 1) * sizeof(*ids));
    if (ids)
        a->ids = ids;
    char **uids = realloc(a->user_ids, (n + 1) * sizeof(*uids));
    if (uids)
        a->user_ids = uids;
    uint8_t **vals = realloc(a->values, (n + 1) * sizeof(*vals));
    if (vals)
        a->values = vals;
    size_t *lens = realloc(a->lens, (n + 1) * sizeof(*lens));
    if (lens)
        a->lens = lens;
    if (!ids || !uids || !vals || !lens)
        return -1;
    for (size_t i = 0; i < b->n; i++) {
        a->ids[a->n + i] = b->ids[i];
        a->user_ids[a->n + i] = b->user_ids[i];
        a->values[a->n + i] = b->values[i];
        a->lens[a->n + i] = b->lens[i];
    }
    a->n = n;
    b->n = 0;
    st_redis_outbox_free(b);
    return 0;
}

int rcl_outbox_load(st_redis_t *st, st_outbox_t *out, char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    if (discover_outboxes(st, errstr, errstr_size) != 0)
        return -1;
    for (size_t i = 0; i < st->cl->n_ob_parts; i++) {
        st_outbox_t one;
        int rc;
        RCL_CALL(st, st->cl->ob_parts[i], rc, st_redis_outbox_load(st, &one, errstr, errstr_size),
                 errstr, errstr_size);
        if (rc != 0) {
            st_redis_outbox_free(out);
            return -1;
        }
        if (outbox_append(out, &one) != 0) {
            st_redis_outbox_free(&one);
            st_redis_outbox_free(out);
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
    }
    return 0;
}

int rcl_outbox_remove(st_redis_t *st, const char *const *ids, size_t n, char *errstr,
                      size_t errstr_size)
{
    /* An id lives in one partition's outbox; HDEL/SREM of an absent id are no-ops. */
    for (size_t i = 0; i < st->cl->n_ob_parts && n; i++) {
        int rc;
        RCL_CALL(st, st->cl->ob_parts[i], rc,
                 st_redis_outbox_remove(st, ids, n, errstr, errstr_size), errstr, errstr_size);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int rcl_outbox_claim(st_redis_t *st, const char *const *ids, size_t n, uint8_t *claimed,
                     char *errstr, size_t errstr_size)
{
    uint8_t *one = malloc(n ? n : 1);
    if (!one) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    memset(claimed, 0, n);
    /* Each partition's script claims the ids its outbox holds: the union is the answer. */
    for (size_t i = 0; i < st->cl->n_ob_parts && n; i++) {
        int rc;
        RCL_CALL(st, st->cl->ob_parts[i], rc,
                 st_redis_outbox_claim(st, ids, n, one, errstr, errstr_size), errstr, errstr_size);
        if (rc != 0) {
            free(one);
            return -1;
        }
        for (size_t k = 0; k < n; k++)
            claimed[k] |= one[k];
    }
    free(one);
    return 0;
}

int rcl_outbox_unclaim_all(st_redis_t *st, char *errstr, size_t errstr_size)
{
    if (discover_outboxes(st, errstr, errstr_size) != 0)
        return -1;
    for (size_t i = 0; i < st->cl->n_ob_parts; i++) {
        int rc;
        RCL_CALL(st, st->cl->ob_parts[i], rc, st_redis_outbox_unclaim_all(st, errstr, errstr_size),
                 errstr, errstr_size);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Partitions that may hold something of the user: every partition with stored offsets (a
 * record expired or never stored still leaves alerts or index entries there) and every
 * partition holding the user's record. */
static int user_partitions(st_redis_t *st, const char *user_id, int32_t **parts, size_t *n,
                           char *errstr, size_t errstr_size)
{
    size_t ul = strlen(user_id), o = 2;
    char *g = malloc(2 * ul + 3);
    int32_t *more = NULL;
    size_t nmore = 0;
    if (!g) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    memcpy(g, "u:", 2);
    for (size_t i = 0; i < ul; i++) {
        char ch = user_id[i];
        if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
            g[o++] = '\\';
        g[o++] = ch;
    }
    g[o] = '\0';
    int rc = -1;
    if (rcl_scan_partitions(st, "offsets", parts, n, errstr, errstr_size) != 0)
        goto out;
    if (rcl_scan_partitions(st, g, &more, &nmore, errstr, errstr_size) != 0)
        goto out;
    int32_t *all = realloc(*parts, (*n + nmore + 1) * sizeof(*all));
    if (!all) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    *parts = all;
    for (size_t i = 0; i < nmore; i++) {
        size_t j = 0;
        while (j < *n && all[j] != more[i])
            j++;
        if (j == *n)
            all[(*n)++] = more[i];
    }
    rc = 0;
out:
    if (rc != 0) {
        free(*parts);
        *parts = NULL;
        *n = 0;
    }
    free(more);
    free(g);
    return rc;
}

/* GET of the user's record in each partition in parts[] (one round trip each). */
static int get_in(st_redis_t *st, const char *user_id, const int32_t *parts, size_t n,
                  user_rec_t *rec, int *found, char *errstr, size_t errstr_size)
{
    int rc = 0;
    for (size_t i = 0; i < n && !*found && rc == 0; i++)
        RCL_CALL(st, parts[i], rc, st_redis_get_user(st, user_id, rec, found, errstr, errstr_size),
                 errstr, errstr_size);
    return rc;
}

/* The partitions with stored offsets, scanned again into cl->known_parts (a lookup then
 * costs one GET per partition, not a SCAN of the keyspace). 0, or -1 with errstr. */
static int rescan_known(st_redis_t *st, char *errstr, size_t errstr_size)
{
    rcl_t *cl = st->cl;
    int32_t *parts;
    size_t n;
    if (rcl_scan_partitions(st, "offsets", &parts, &n, errstr, errstr_size) != 0)
        return -1;
    free(cl->known_parts);
    cl->known_parts = parts;
    cl->n_known_parts = n;
    cl->known_scanned = 1;
    return 0;
}

int rcl_get_user(st_redis_t *st, const char *user_id, user_rec_t *rec, int *found, char *errstr,
                 size_t errstr_size)
{
    rcl_t *cl = st->cl;
    *found = 0;
    /* The partitions with stored offsets, scanned once: a lookup costs one GET per partition,
     * not a SCAN of the keyspace. Not found there: scan again (a new partition), then look
     * for the record itself (a partition whose offsets are gone). */
    if (cl->known_scanned && get_in(st, user_id, cl->known_parts, cl->n_known_parts, rec, found,
                                    errstr, errstr_size) != 0)
        return -1;
    if (*found)
        return 0;
    if (rescan_known(st, errstr, errstr_size) != 0)
        return -1;
    if (get_in(st, user_id, cl->known_parts, cl->n_known_parts, rec, found, errstr, errstr_size) !=
        0)
        return -1;
    if (*found)
        return 0;
    int32_t *parts;
    size_t n;
    if (user_partitions(st, user_id, &parts, &n, errstr, errstr_size) != 0)
        return -1;
    int rc = get_in(st, user_id, parts, n, rec, found, errstr, errstr_size);
    free(parts);
    return rc;
}

/* The record and the score hash from the first partition in parts[] holding the record. */
static int read_in(st_redis_t *st, const char *user_id, size_t len, const int32_t *parts, size_t n,
                   user_rec_t *rec, int *found, st_fields_t *score, char *errstr,
                   size_t errstr_size)
{
    int rc = 0;
    for (size_t i = 0; i < n && !*found && rc == 0; i++) {
        st_fields_free(score);
        RCL_CALL(st, parts[i], rc,
                 st_redis_read_user(st, user_id, len, rec, found, score, errstr, errstr_size),
                 errstr, errstr_size);
    }
    return rc;
}

int rcl_read_user(st_redis_t *st, const char *user_id, size_t len, user_rec_t *rec, int *found,
                  st_fields_t *score, char *errstr, size_t errstr_size)
{
    rcl_t *cl = st->cl;
    *found = 0;
    memset(score, 0, sizeof(*score));
    /* As rcl_get_user: the known partitions first, then a rescan for new ones. */
    if (cl->known_scanned && read_in(st, user_id, len, cl->known_parts, cl->n_known_parts, rec,
                                     found, score, errstr, errstr_size) != 0)
        return -1;
    if (*found)
        return 0;
    if (rescan_known(st, errstr, errstr_size) != 0)
        return -1;
    return read_in(st, user_id, len, cl->known_parts, cl->n_known_parts, rec, found, score, errstr,
                   errstr_size);
}

int rcl_forget(st_redis_t *st, const char *user_id, st_forget_t *out, char *errstr,
               size_t errstr_size)
{
    st_forget_t sum = {0};
    int32_t *parts;
    size_t n;
    if (out)
        *out = sum;
    if (user_partitions(st, user_id, &parts, &n, errstr, errstr_size) != 0)
        return -1;
    int any = 0, rc = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        st_forget_t one = {0};
        RCL_CALL(st, parts[i], rc, st_redis_forget(st, user_id, &one, errstr, errstr_size), errstr,
                 errstr_size);
        if (rc < 0)
            break;
        any |= rc;
        sum.record |= one.record;
        sum.seen_entries += one.seen_entries;
        sum.outbox_alerts += one.outbox_alerts;
        sum.outbox_in_flight += one.outbox_in_flight;
    }
    free(parts);
    if (out)
        *out = sum;
    return rc < 0 ? -1 : any;
}
