/* Threaded sweeps (engine.h: eng_params_t.threads, sink.prepare) against the one-thread
 * engine: on random logs of hundreds of users, arriving in order or shuffled within the
 * lateness, with whole and bounded sweeps, the sink sees exactly the same calls in the same
 * order (visits, scores with their feature rows, labels), every sweep score carries what
 * prepare computed for that very snapshot, and the team's second thread really prepared
 * some of them. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "rng.h"
#include "store_mem.h"

#define UNIT_MS 1000LL
#define NUSERS  700
#define NEVENTS 6000

typedef struct call_s {
    char kind; /* 'v' visited, 's' score, 'l' label */
    int user;
    int64_t t_ms; /* tick, or now_ms of a visit */
    int y;
    uint64_t x_hash; /* of the feature row, 0 for visits */
} call_t;

typedef struct prep_s {
    uint64_t key; /* hash of the snapshot it was prepared for */
    pthread_t by;
} prep_t;

typedef struct sink_state_s {
    call_t *calls;
    size_t n, cap;
    size_t prepared_scores; /* score calls that came with s->prep */
    size_t by_other_thread; /* of those, prepared off the caller's thread */
    pthread_t caller;
} sink_state_t;

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static uint64_t row_hash(const float *x)
{
    uint64_t h = 0;
    for (int i = 0; i < FEAT_DIM; i++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof(b));
        h = mix(h, b);
    }
    return h;
}

static uint64_t snapshot_key(const eng_snapshot_t *s)
{
    return mix(mix(row_hash(s->x), (uint64_t)atoi(s->user_id + 1)), (uint64_t)s->tick_ms);
}

static void push(sink_state_t *st, call_t c)
{
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 4096;
        st->calls = realloc(st->calls, st->cap * sizeof(*st->calls));
        assert_non_null(st->calls);
    }
    st->calls[st->n++] = c;
}

static void on_prepare(void *opaque, const eng_snapshot_t *s, void *out)
{
    (void)opaque;
    prep_t p = {.key = snapshot_key(s), .by = pthread_self()};
    memcpy(out, &p, sizeof(p));
}

static void on_score(void *opaque, const eng_snapshot_t *s)
{
    sink_state_t *st = opaque;
    if (s->prep) {
        prep_t p;
        memcpy(&p, s->prep, sizeof(p));
        assert_true(p.key == snapshot_key(s));
        st->prepared_scores++;
        st->by_other_thread += !pthread_equal(p.by, st->caller);
    }
    push(st, (call_t){'s', atoi(s->user_id + 1), s->tick_ms, -1, row_hash(s->x)});
}

static void on_label(void *opaque, const eng_snapshot_t *s)
{
    push(opaque, (call_t){'l', atoi(s->user_id + 1), s->tick_ms, s->y, row_hash(s->x)});
}

static void on_visited(void *opaque, const char *uid, user_rec_t *rec, int64_t now_ms)
{
    (void)rec;
    push(opaque, (call_t){'v', atoi(uid + 1), now_ms, 0, 0});
}

typedef struct log_s {
    ev_event_t *ev;
    int n;
    eng_params_t p;
    int64_t end_ms;
} log_t;

typedef struct arrival_s {
    int64_t key;
    int index;
} arrival_t;

static int cmp_arrival(const void *x, const void *y)
{
    const arrival_t *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->index - b->index;
}

/* Users with Poisson-ish activity over 300 units, a tenth of them gone after a while. */
static void random_log(rng_t *rng, log_t *lg, int shuffled, int bounded)
{
    lg->p = (eng_params_t){.tick_ms = 7 * UNIT_MS,
                           .horizon_ms = 30 * UNIT_MS,
                           .lookback_ms = 40 * UNIT_MS,
                           .lateness_ms = shuffled ? 3 * UNIT_MS : 0,
                           .sweep_slice_ms = bounded ? 25 * UNIT_MS : 0,
                           .max_visits = bounded ? 400 : 0};
    lg->n = NEVENTS;
    lg->ev = calloc(NEVENTS, sizeof(*lg->ev));
    assert_non_null(lg->ev);
    const int64_t base = 1700000000000LL;
    for (int i = 0; i < lg->n; i++) {
        ev_event_t *e = &lg->ev[i];
        int u = (int)rng_below(rng, NUSERS);
        e->user_id_len = (uint16_t)snprintf(e->user_id, sizeof(e->user_id), "u%d", u);
        int64_t span = u % 10 == 0 ? 120 : 300;
        e->event_time_ms = base + (int64_t)rng_below(rng, (uint64_t)span * 4) * UNIT_MS / 4;
        uint64_t r = rng_below(rng, 10);
        e->type = r == 0 ? EV_REFUND : r < 5 ? EV_PURCHASE : EV_PAGE_VIEW;
        e->amount = 1.0 + (double)rng_below(rng, 100);
    }
    /* arrival: by time, plus a delay below the lateness when shuffled (stable) */
    arrival_t *a = malloc(lg->n * sizeof(*a));
    ev_event_t *sorted = malloc(lg->n * sizeof(*sorted));
    assert_non_null(a);
    assert_non_null(sorted);
    for (int i = 0; i < lg->n; i++)
        a[i] =
            (arrival_t){lg->ev[i].event_time_ms +
                            (shuffled ? (int64_t)rng_below(rng, (uint64_t)lg->p.lateness_ms) : 0),
                        i};
    qsort(a, (size_t)lg->n, sizeof(*a), cmp_arrival);
    for (int i = 0; i < lg->n; i++)
        sorted[i] = lg->ev[a[i].index];
    free(lg->ev);
    free(a);
    lg->ev = sorted;
    lg->end_ms = base + 320 * UNIT_MS;
}

static void run(const log_t *lg, int threads, uint64_t batch_seed, sink_state_t *st)
{
    st_mem_t *mem = st_mem_new();
    assert_non_null(mem);
    store_ops_t ops;
    st_mem_engine_ops(mem, &ops);
    eng_sink_t sink = {.opaque = st,
                       .score = on_score,
                       .label = on_label,
                       .visited = on_visited,
                       .prepare = on_prepare,
                       .prep_bytes = sizeof(prep_t)};
    cs_pool_t *team = cs_pool_new(threads);
    assert_non_null(team);
    eng_params_t p = lg->p;
    p.pool = team;
    char err[128];
    eng_t *eng = eng_new(&p, &ops, &sink, err, sizeof(err));
    assert_non_null(eng);
    st->caller = pthread_self();
    rng_t rng;
    rng_seed(&rng, batch_seed);
    int64_t max_seen = INT64_MIN;
    int batch = 0, batch_size = 1 + (int)rng_below(&rng, 200);
    for (int k = 0; k < lg->n; k++) {
        const ev_event_t *e = &lg->ev[k];
        eng_event(eng, e, NULL);
        if (e->event_time_ms > max_seen)
            max_seen = e->event_time_ms;
        if (++batch == batch_size) {
            eng_advance(eng, max_seen - lg->p.lateness_ms);
            batch = 0;
            batch_size = 1 + (int)rng_below(&rng, 200);
        }
    }
    eng_finish(eng, lg->end_ms);
    eng_destroy(eng);
    cs_pool_destroy(team);
    st_mem_destroy(mem);
}

static void check(int shuffled, int bounded)
{
    size_t total = 0, prepared = 0, other = 0;
    for (int seed = 1; seed <= 4; seed++) {
        rng_t rng;
        rng_seed(&rng, (uint64_t)seed * 104729 + (uint64_t)(2 * shuffled + bounded));
        log_t lg;
        random_log(&rng, &lg, shuffled, bounded);
        sink_state_t one = {0}, two = {0};
        run(&lg, 1, (uint64_t)seed, &one);
        run(&lg, 2, (uint64_t)seed, &two);
        assert_int_equal(one.prepared_scores, 0);
        if (one.n != two.n)
            fail_msg("seed %d: %zu calls alone, %zu threaded", seed, one.n, two.n);
        for (size_t i = 0; i < one.n; i++) {
            const call_t *a = &one.calls[i], *b = &two.calls[i];
            if (a->kind != b->kind || a->user != b->user || a->t_ms != b->t_ms || a->y != b->y ||
                a->x_hash != b->x_hash)
                fail_msg("seed %d: call %zu differs: %c u%d t %lld alone, %c u%d t %lld threaded",
                         seed, i, a->kind, a->user, (long long)a->t_ms, b->kind, b->user,
                         (long long)b->t_ms);
        }
        total += one.n;
        prepared += two.prepared_scores;
        other += two.by_other_thread;
        free(one.calls);
        free(two.calls);
        free(lg.ev);
    }
    /* The comparison must cover the threaded path, not fall back to the inline one. */
    assert_true(total > 20000);
    assert_true(prepared > 2000);
    assert_true(other > 500);
    print_message("%s%s: %zu calls alike, %zu scores prepared, %zu by the second thread\n",
                  shuffled ? "shuffled" : "in order", bounded ? ", bounded sweeps" : "", total,
                  prepared, other);
}

static void test_in_order(void **state)
{
    (void)state;
    check(0, 0);
}

static void test_shuffled(void **state)
{
    (void)state;
    check(1, 0);
}

static void test_bounded(void **state)
{
    (void)state;
    check(1, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_shuffled),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
