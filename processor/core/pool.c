/* The thread team of pool.h. Each loop is a generation: the owner publishes (fn, ctx, n,
 * grain) and bumps `gen` under the mutex; then every thread, the owner included, takes
 * ranges of `grain` iterations from an atomic cursor until none is left (a thread slowed
 * down, by the decoder sharing its core say, simply takes fewer), and each worker counts
 * itself done; the owner waits for the count. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct worker_s {
    struct cs_pool_s *pool;
    pthread_t thread;
} worker_t;

struct cs_pool_s {
    int threads;
    worker_t *workers; /* threads - 1 */
    int started;       /* workers running */
    pthread_mutex_t mu;
    pthread_cond_t go;   /* gen moved or stop */
    pthread_cond_t done; /* finished grew */
    uint64_t gen;
    int finished; /* workers done with generation gen */
    int stop;
    void (*fn)(void *ctx, size_t lo, size_t hi);
    void *ctx;
    size_t n, grain;
    _Atomic size_t next; /* the first iteration not taken yet */
};

/* Takes ranges from the cursor until the loop is exhausted. */
static void take(cs_pool_t *p)
{
    for (;;) {
        size_t lo = atomic_fetch_add(&p->next, p->grain);
        if (lo >= p->n)
            return;
        size_t hi = p->n - lo < p->grain ? p->n : lo + p->grain;
        p->fn(p->ctx, lo, hi);
    }
}

static void *work(void *arg)
{
    worker_t *me = arg;
    cs_pool_t *p = me->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        take(p);
        pthread_mutex_lock(&p->mu);
        if (++p->finished == p->threads - 1)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

cs_pool_t *cs_pool_new(int threads)
{
    cs_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (p->threads > 1 && !(p->workers = calloc((size_t)p->threads - 1, sizeof(*p->workers)))) {
        cs_pool_destroy(p);
        return NULL;
    }
    for (int w = 1; w < p->threads; w++) {
        worker_t *k = &p->workers[w - 1];
        k->pool = p;
        if (pthread_create(&k->thread, NULL, work, k) != 0) {
            cs_pool_destroy(p);
            return NULL;
        }
        p->started++;
    }
    return p;
}

void cs_pool_destroy(cs_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int w = 0; w < p->started; w++)
        pthread_join(p->workers[w].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p);
}

int cs_pool_threads(const cs_pool_t *p)
{
    return p ? p->threads : 1;
}

void cs_pool_for(cs_pool_t *p, size_t n, size_t min_per_thread,
                 void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx)
{
    if (n == 0)
        return;
    if (!p || p->threads < 2 || n < 2 * min_per_thread) {
        fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    /* ranges of about an eighth of a thread's share: small enough to balance, large enough
     * that the cursor is touched rarely */
    p->grain = n / ((size_t)p->threads * 8);
    if (p->grain < min_per_thread)
        p->grain = min_per_thread;
    atomic_store(&p->next, 0);
    p->finished = 0;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    take(p);
    pthread_mutex_lock(&p->mu);
    while (p->finished < p->threads - 1)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int cs_pool_default_threads(int cap)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    if (n > cap)
        n = cap;
    return n < 1 ? 1 : n;
}
