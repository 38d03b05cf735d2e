/* Replay's read-ahead thread (replay_prefetch.h): a ring of RPP_BLOCKS blocks that the
 * thread fills in order and the consumer empties in order. Counters, not flags: block b
 * (b counted from 0 since the start) lives in slot b % RPP_BLOCKS; the thread may fill it
 * once the consumer has released block b - RPP_BLOCKS, and the consumer may read it once
 * `filled` > b. Both counters only grow, under the mutex. */
#include "replay_prefetch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rpp_item_s {
    ev_event_t ev;
    ev_lens_t lens; /* measured by the thread, so the consumer's copy needs no strlen */
    ev_reason_t reason;
    char why[256];
} rpp_item_t;

typedef struct rpp_block_s {
    rpp_item_t item[RPP_BLOCK];
    size_t n;      /* items filled */
    int end;       /* 1: the source goes on after the block; 0: it ended; -1: error */
    char err[256]; /* the source's errstr when end is -1 */
} rpp_block_t;

struct rpp_s {
    rpf_next_fn next;
    void *src;
    rpp_block_t *blocks; /* RPP_BLOCKS */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled on every change of filled, released or stop */
    size_t filled;     /* blocks the thread has published */
    size_t released;   /* blocks the consumer has finished */
    int stop;
    int started; /* 1 running, -1 could not start */
    pthread_t thread;
    size_t pos; /* the consumer's next item in block `released` */
    int have;   /* the consumer has seen block `released` published */
};

rpp_t *rpp_new(rpf_next_fn next, void *src)
{
    rpp_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (!(p->blocks = malloc(RPP_BLOCKS * sizeof(*p->blocks)))) {
        free(p);
        return NULL;
    }
    p->next = next;
    p->src = src;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

/* Fills one block from the source; returns its end (1 = more to come). */
static int fill(rpp_t *p, rpp_block_t *b)
{
    b->n = 0;
    b->err[0] = '\0';
    while (b->n < RPP_BLOCK) {
        rpp_item_t *it = &b->item[b->n];
        it->why[0] = '\0';
        int rc =
            p->next(p->src, &it->ev, &it->reason, it->why, sizeof(it->why), b->err, sizeof(b->err));
        if (rc != 1)
            return rc < 0 ? -1 : 0;
        ev_lens(&it->ev, &it->lens);
        b->n++;
    }
    return 1;
}

static void *run(void *arg)
{
    rpp_t *p = arg;
    for (size_t k = 0;; k++) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && k - p->released >= RPP_BLOCKS)
            pthread_cond_wait(&p->cv, &p->mu);
        int stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            return NULL;
        rpp_block_t *b = &p->blocks[k % RPP_BLOCKS];
        b->end = fill(p, b); /* the slot is ours: the consumer released block k - RPP_BLOCKS */
        pthread_mutex_lock(&p->mu);
        p->filled = k + 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (b->end != 1)
            return NULL;
    }
}

int rpp_next(void *rpp, ev_event_t *ev, ev_reason_t *reason, char *why, size_t why_size,
             char *errstr, size_t errstr_size)
{
    rpp_t *p = rpp;
    if (p->started == 0)
        p->started = pthread_create(&p->thread, NULL, run, p) == 0 ? 1 : -1;
    if (p->started < 0) {
        snprintf(errstr, errstr_size, "cannot start the read-ahead thread");
        return -1;
    }
    for (;;) {
        if (!p->have) {
            pthread_mutex_lock(&p->mu);
            while (p->filled <= p->released)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            p->have = 1;
        }
        const rpp_block_t *b = &p->blocks[p->released % RPP_BLOCKS];
        if (p->pos < b->n) {
            const rpp_item_t *it = &b->item[p->pos++];
            ev_copy_sized(ev, &it->ev, &it->lens);
            *reason = it->reason;
            if (it->why[0])
                snprintf(why, why_size, "%s", it->why);
            else if (why_size > 0)
                why[0] = '\0';
            return 1;
        }
        if (b->end != 1) { /* kept: every later call returns the same */
            if (b->end < 0)
                snprintf(errstr, errstr_size, "%s", b->err);
            return b->end;
        }
        pthread_mutex_lock(&p->mu);
        p->released++;
        p->pos = 0;
        p->have = 0;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

void rpp_destroy(rpp_t *p)
{
    if (!p)
        return;
    if (p->started == 1) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->blocks);
    free(p);
}
