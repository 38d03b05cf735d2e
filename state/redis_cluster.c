/* Redis Cluster routing of the Redis store: the slot map (CLUSTER SLOTS), one connection
 * per node, the routing of an operation to the master of its partition's slot, and the
 * following of redirections (MOVED: map update; ASK: ASKING on the target, once;
 * TRYAGAIN/CLUSTERDOWN: bounded retries with backoff).
 *
 * The store keeps working on st->conn and st->prefix as in single mode: rcl_route swaps the
 * routed node's connection into st->conn (the previous one goes back to its node) and sets
 * st->prefix to "<state.prefix>{pN}:". Invariants: at most one node's connection lives in
 * st->conn (nodes[active].conn is then a stale copy, never used); the counters of st->conn
 * are the store's totals and stay in st->conn across swaps; every key an operation sends
 * starts with st->prefix, so all keys of one routed operation share the tag's slot
 * (CROSSSLOT cannot happen; rcl_route asserts the tag's slot is the one routed to). */
#include "grow.h"
#include "log.h"
#include "redis_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RCL_MAX_ATTEMPTS 30 /* per operation: ~6 s of backoff in all (rcl_retry) */

int rcl_wrap(const st_redis_t *st)
{
    return st->cl && !st->cl->routed;
}

int rcl_enter(st_redis_t *st)
{
    int was = st->cl->routed;
    st->cl->routed = 1;
    return was;
}

void rcl_leave(st_redis_t *st, int was)
{
    st->cl->routed = was;
}

void rcl_counters(const st_redis_t *st, rcl_counters_t *out)
{
    if (st->cl)
        *out = st->cl->k;
    else
        memset(out, 0, sizeof(*out));
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A node's connection settings: the template's credentials at host:port. */
static int node_conn_init(const rcl_t *cl, rc_conn_t *c, const char *host, int port)
{
    memset(c, 0, sizeof(*c));
    c->host = strdup(host);
    c->user = dup_or_null(cl->tmpl.user);
    c->password = dup_or_null(cl->tmpl.password);
    if (!c->host || (cl->tmpl.user && !c->user) || (cl->tmpl.password && !c->password)) {
        rc_fini(c);
        return -1;
    }
    c->port = port;
    c->connect_timeout_ms = cl->tmpl.connect_timeout_ms;
    c->command_timeout_ms = cl->tmpl.command_timeout_ms;
    snprintf(c->addr, sizeof(c->addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return 0;
}

/* The node at host:port, added (not connected) when new. -1 on OOM. */
static int node_index(st_redis_t *st, const char *host, int port)
{
    rcl_t *cl = st->cl;
    for (size_t i = 0; i < cl->n_nodes; i++) {
        const rc_conn_t *c = (int)i == cl->active ? &st->conn : &cl->nodes[i].conn;
        if (c->port == port && strcmp(c->host, host) == 0)
            return (int)i;
    }
    if (cl->n_nodes >= RCL_NO_NODE)
        return -1;
    if (CS_GROW(cl->nodes, cl->cap_nodes, cl->n_nodes + 1, 8) != 0)
        return -1;
    if (node_conn_init(cl, &cl->nodes[cl->n_nodes].conn, host, port) != 0)
        return -1;
    return (int)cl->n_nodes++;
}

/* Makes node i's connection st->conn, keeping the counters where they are. */
void rcl_node_select(st_redis_t *st, int i)
{
    rcl_t *cl = st->cl;
    if (cl->active == i)
        return;
    uint64_t cmds = st->conn.commands, rts = st->conn.round_trips, wait = st->conn.wait_us;
    if (cl->active >= 0)
        cl->nodes[cl->active].conn = st->conn;
    st->conn = cl->nodes[i].conn;
    memset(&cl->nodes[i].conn, 0, sizeof(cl->nodes[i].conn)); /* stale copy: owned by st */
    st->conn.commands = cmds;
    st->conn.round_trips = rts;
    st->conn.wait_us = wait;
    cl->active = i;
}

/* Host of one CLUSTER SLOTS endpoint: "" or "?" (unknown endpoint) means the node asked. */
static int endpoint(const redisReply *e, const rc_conn_t *asked, char *host, size_t cap, int *port)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    const redisReply *h = e->element[0];
    if (h->len == 0 || (h->len == 1 && h->str[0] == '?'))
        snprintf(host, cap, "%s", asked->host);
    else
        snprintf(host, cap, "%.*s", (int)h->len, h->str);
    *port = (int)e->element[1]->integer;
    return 0;
}

/* Reads CLUSTER SLOTS on st->conn and rebuilds the slot map. */
static int refresh_on_active(st_redis_t *st, char *errstr, size_t errstr_size)
{
    rcl_t *cl = st->cl;
    rc_args_str(&st->args, "CLUSTER");
    rc_args_str(&st->args, "SLOTS");
    redisReply *r = rc_command(&st->conn, &st->args, "CLUSTER SLOTS", errstr, errstr_size);
    if (!r)
        return -1;
    int rc = 0;
    uint16_t *map = malloc(sizeof(cl->slot_node));
    if (!map || r->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errstr_size, "redis %s: CLUSTER SLOTS: %s", st->conn.addr,
                 map ? "unexpected reply (is redis.cluster right? the server must run with "
                       "cluster-enabled yes)"
                     : "out of memory");
        rc = -1;
        goto out;
    }
    for (size_t s = 0; s < RCL_SLOTS; s++)
        map[s] = RCL_NO_NODE;
    for (size_t i = 0; i < r->elements && rc == 0; i++) {
        const redisReply *e = r->element[i];
        char host[256];
        int port, node;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            endpoint(e->element[2], &st->conn, host, sizeof(host), &port) != 0) {
            snprintf(errstr, errstr_size, "redis %s: CLUSTER SLOTS: malformed entry %zu",
                     st->conn.addr, i);
            rc = -1;
            break;
        }
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if ((node = node_index(st, host, port)) < 0) {
            snprintf(errstr, errstr_size, "out of memory");
            rc = -1;
            break;
        }
        for (long long s = lo < 0 ? 0 : lo; s <= hi && s < RCL_SLOTS; s++)
            map[s] = (uint16_t)node;
    }
    if (rc == 0)
        memcpy(cl->slot_node, map, sizeof(cl->slot_node));
    cl->k.map_refreshes++;
out:
    free(map);
    freeReplyObject(r);
    return rc;
}

/* Rereads the map from the active node, else from any node that answers. */
static int refresh(st_redis_t *st, char *errstr, size_t errstr_size)
{
    rcl_t *cl = st->cl;
    if (cl->active >= 0 && st->conn.ctx && refresh_on_active(st, errstr, errstr_size) == 0)
        return 0;
    for (size_t i = 0; i < cl->n_nodes; i++) {
        rcl_node_select(st, (int)i);
        if (!st->conn.ctx && rc_connect(&st->conn, errstr, errstr_size) != 0)
            continue;
        if (refresh_on_active(st, errstr, errstr_size) == 0)
            return 0;
    }
    return -1;
}

int rcl_init(st_redis_t *st, const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    if (cfg->redis_db != 0) {
        snprintf(errstr, errstr_size,
                 "redis.cluster: redis.db must be 0 (a cluster has one "
                 "database), got %d",
                 cfg->redis_db);
        return -1;
    }
    if (strpbrk(st->prefix, "{}")) {
        snprintf(errstr, errstr_size,
                 "redis.cluster: state.prefix \"%s\" must not contain '{' or "
                 "'}' (the partition's hash tag follows it)",
                 st->prefix);
        return -1;
    }
    rcl_t *cl = calloc(1, sizeof(*cl));
    /* Room for the longest tag: "{p-2147483648}:" or "{model}:". */
    char *pfx = cl ? malloc(st->prefix_len + 24) : NULL;
    if (!cl || !pfx || rc_init(&cl->tmpl, cfg, errstr, errstr_size) != 0) {
        free(cl);
        free(pfx);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    cl->base = st->prefix;
    cl->base_len = st->prefix_len;
    memcpy(pfx, cl->base, cl->base_len + 1);
    st->prefix = pfx;
    cl->active = -1;
    cl->ask_node = -1;
    for (size_t s = 0; s < RCL_SLOTS; s++)
        cl->slot_node[s] = RCL_NO_NODE;
    st->cl = cl;
    /* The seed connection becomes a node: the one of its own address. */
    int seed = node_index(st, st->conn.host, st->conn.port);
    if (seed < 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1; /* st_redis_destroy frees what is here */
    }
    rc_fini(&cl->nodes[seed].conn);
    cl->nodes[seed].conn = st->conn; /* the connected seed; node_select moves it back */
    memset(&st->conn, 0, sizeof(st->conn));
    cl->active = -1;
    rcl_node_select(st, seed);
    return refresh(st, errstr, errstr_size);
}

void rcl_destroy(st_redis_t *st)
{
    rcl_t *cl = st->cl;
    if (!cl)
        return;
    for (size_t i = 0; i < cl->n_nodes; i++)
        if ((int)i != cl->active)
            rc_fini(&cl->nodes[i].conn);
    free(cl->nodes);
    free(cl->ob_parts);
    free(cl->known_parts);
    free(cl->last_prog);
    free(cl->last_prog_ok);
    rc_fini(&cl->tmpl);
    free(st->prefix);
    st->prefix = cl->base; /* the store frees it */
    st->prefix_len = cl->base_len;
    free(cl);
    st->cl = NULL;
}

int rcl_reconnect(st_redis_t *st, char *errstr, size_t errstr_size)
{
    rcl_t *cl = st->cl;
    char first[512] = "";
    for (size_t i = 0; i < cl->n_nodes; i++) {
        rcl_node_select(st, (int)i);
        if (rc_connect(&st->conn, errstr, errstr_size) != 0) {
            if (!first[0])
                snprintf(first, sizeof(first), "%s", errstr);
            continue;
        }
        if (refresh_on_active(st, errstr, errstr_size) == 0)
            return 0;
    }
    if (first[0])
        snprintf(errstr, errstr_size, "%s", first);
    return -1;
}

int rcl_route(st_redis_t *st, int32_t partition, char *errstr, size_t errstr_size)
{
    rcl_t *cl = st->cl;
    char tag[24];
    if (partition == RCL_MODEL_PARTITION)
        snprintf(tag, sizeof(tag), "{model}:");
    else
        snprintf(tag, sizeof(tag), "{p%d}:", (int)partition);
    size_t tl = strlen(tag);
    memcpy(st->prefix + cl->base_len, tag, tl + 1);
    st->prefix_len = cl->base_len + tl;
    int slot = rcl_keyslot(tag, tl);
    /* Every key is prefix + something: its hash part is the tag (the base has no brace). */
    assert(rcl_keyslot(st->prefix, st->prefix_len) == slot);
    int node = cl->ask_node;
    cl->ask_node = -1;
    int asking = node >= 0;
    if (node < 0) {
        if (cl->slot_node[slot] == RCL_NO_NODE && refresh(st, errstr, errstr_size) != 0)
            return -1;
        if (cl->slot_node[slot] == RCL_NO_NODE) {
            snprintf(errstr, errstr_size,
                     "redis cluster: slot %d (partition tag %.*s) has no master: is the cluster "
                     "complete (cluster_state:ok)?",
                     slot, (int)tl - 1, tag);
            return -1;
        }
        node = cl->slot_node[slot];
    }
    rcl_node_select(st, node);
    if (!st->conn.ctx && rc_connect(&st->conn, errstr, errstr_size) != 0)
        return -1;
    memset(&st->conn.redirect, 0, sizeof(st->conn.redirect));
    st->conn.asking = asking;
    st->conn.asking_unread = 0;
    st->conn.in_multi = 0;
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int rcl_retry(st_redis_t *st, int attempt, char *errstr, size_t errstr_size)
{
    rcl_t *cl = st->cl;
    rcl_redir_t r = st->conn.redirect;
    st->conn.asking = 0;
    if (st->conn.asking_unread && st->conn.ctx) {
        /* ASKING replies nobody read: the stream is out of step. */
        redisFree(st->conn.ctx);
        st->conn.ctx = NULL;
    }
    st->conn.asking_unread = 0;
    if (r.kind == RCL_REDIR_NONE)
        return 0;
    if (attempt + 1 >= RCL_MAX_ATTEMPTS) {
        size_t l = strlen(errstr);
        snprintf(errstr + l, errstr_size - l, " (redis cluster: gave up after %d redirections)",
                 attempt + 1);
        return 0;
    }
    int backoff = 5 << (attempt < 6 ? attempt : 6);
    if (backoff > 250)
        backoff = 250;
    int node;
    switch (r.kind) {
    case RCL_REDIR_MOVED:
        cl->k.moved++;
        log_info("state", "redis cluster: slot %d MOVED from %s to %s:%d (slot map updated)",
                 r.slot, st->conn.addr, r.host, r.port);
        if ((node = node_index(st, r.host, r.port)) < 0)
            return 0;
        cl->slot_node[r.slot] = (uint16_t)node;
        break;
    case RCL_REDIR_ASK:
        cl->k.ask++;
        log_info("state", "redis cluster: slot %d migrating, ASK %s:%d (ASKING, once)", r.slot,
                 r.host, r.port);
        if ((node = node_index(st, r.host, r.port)) < 0)
            return 0;
        cl->ask_node = node;
        break;
    case RCL_REDIR_TRYAGAIN:
        cl->k.tryagain++;
        log_debug("state", "redis cluster: TRYAGAIN on %s, retrying in %d ms", st->conn.addr,
                  backoff);
        sleep_ms(backoff);
        break;
    default:
        cl->k.clusterdown++;
        log_warn("state", "redis cluster: CLUSTERDOWN on %s, retrying in %d ms", st->conn.addr,
                 backoff);
        sleep_ms(backoff);
        refresh(st, errstr, errstr_size); /* best effort: the next route says what is wrong */
        break;
    }
    return 1;
}
