/* The thread team of pool.h. Each loop is a generation: the owner publishes (fn, ctx, n)
 * and bumps `gen` under the mutex; worker w (1..threads-1) runs share w of that generation
 * and counts itself done; the owner runs share 0 and waits for the count. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct worker_s {
    struct cs_pool_s *pool;
    int index;
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
    size_t n;
};

static void share(const cs_pool_t *p, int w, size_t *lo, size_t *hi)
{
    *lo = p->n * (size_t)w / (size_t)p->threads;
    *hi = p->n * (size_t)(w + 1) / (size_t)p->threads;
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
        size_t lo, hi;
        share(p, me->index, &lo, &hi);
        pthread_mutex_unlock(&p->mu);
        if (lo < hi)
            p->fn(p->ctx, lo, hi);
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
        k->index = w;
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
    p->finished = 0;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    size_t lo, hi;
    share(p, 0, &lo, &hi);
    fn(ctx, lo, hi);
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
