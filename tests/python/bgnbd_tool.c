/* Helper for tests/python/test_bgnbd_reference.py (and by hand): drives processor/models/bgnbd.c on
 * summaries read from stdin, one row per line "x t_x T [w]" (w defaults to 1).
 *
 *   bgnbd_tool fit [MAX_ITER [r alpha a b]]  fit (default start: bgnbd_params_default), prints
 *                                            one JSON object: params, loglik, se, iterations
 *   bgnbd_tool eval r alpha a b h            per row: "ll p_alive p_none expected" (%.17g)
 *   bgnbd_tool loglik r alpha a b            total weighted LL of the rows (%.17g)
 *   bgnbd_tool bench USERS DAYS SEED         simulated integer-day log (Online Retail's fit in
 *                                            days), cold and warm-started fit times
 * Not installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgnbd.h"
#include "rng.h"

static int read_rows(bgnbd_table_t *t, double **rows, size_t *n)
{
    char line[256];
    size_t cap = 0;
    *n = 0;
    while (fgets(line, sizeof(line), stdin)) {
        double v[4] = {0, 0, 0, 1};
        int k = sscanf(line, "%lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3]);
        if (k < 3)
            continue;
        if (t && bgnbd_table_add(t, v[0], v[1], v[2], v[3]) != 0) {
            fprintf(stderr, "bgnbd_tool: bad row: %s", line);
            return -1;
        }
        if (rows) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 1024;
                double *p = realloc(*rows, cap * 4 * sizeof(double));
                if (!p)
                    return -1;
                *rows = p;
            }
            memcpy(*rows + 4 * *n, v, sizeof(v));
        }
        (*n)++;
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this thread: what the fit costs, whatever else shares the cores. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Gamma(shape k, scale 1): Marsaglia-Tsang, boosted by U^(1/k) for k < 1. */
static double gamma_draw(rng_t *r, double k)
{
    double boost = 1;
    if (k < 1) {
        boost = pow(rng_uniform(r), 1 / k);
        k += 1;
    }
    double d = k - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double z = rng_normal(r), v = 1 + c * z;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = rng_uniform(r);
        if (log(u) < 0.5 * z * z + d - d * v + d * log(v))
            return boost * d * v;
    }
}

/* One user first active on day `first` of a `days`-long log: integer-day summary at day
 * `tick` (> first) of a BG/NBD customer with rate lambda per day and drop-out p. */
typedef struct user_s {
    double lambda, p;
    int first;
    int alive;
    double next; /* continuous time of the next activity */
    int x, last_day;
} user_t;

static int bench(int users, int days, uint64_t seed)
{
    const bgnbd_params_t truth = {0.7195, 9.4310 * 7, 0.000485, 124.45};
    rng_t rg;
    rng_seed(&rg, seed);
    user_t *u = calloc((size_t)users, sizeof(*u));
    if (!u)
        return 1;
    for (int i = 0; i < users; i++) {
        u[i].lambda = gamma_draw(&rg, truth.r) / truth.alpha;
        double ga = gamma_draw(&rg, truth.a), gb = gamma_draw(&rg, truth.b);
        u[i].p = ga / (ga + gb);
        u[i].first = (int)rng_below(&rg, (uint64_t)days);
        u[i].alive = 1;
        u[i].next = u[i].first - log(1 - rng_uniform(&rg)) / u[i].lambda;
        u[i].last_day = u[i].first;
    }
    bgnbd_table_t *t = bgnbd_table_new();
    bgnbd_params_t p;
    bgnbd_params_default(&p);
    bgnbd_fit_info_t info;
    double cold_ms = 0, cold_cpu = 0, warm_sum = 0, warm_max = 0, warm_cpu_sum = 0,
           warm_cpu_max = 0;
    int warm_n = 0, warm_iter_max = 0;
    /* Simulate day by day; from day days-30 on, refit at each daily tick (warm). */
    for (int day = 1; day <= days; day++) {
        for (int i = 0; i < users; i++) {
            while (u[i].alive && u[i].next < day) {
                int d = (int)u[i].next;
                if (d > u[i].last_day) {
                    u[i].x++;
                    u[i].last_day = d;
                }
                if (rng_uniform(&rg) < u[i].p)
                    u[i].alive = 0;
                u[i].next += -log(1 - rng_uniform(&rg)) / u[i].lambda;
            }
        }
        if (day < days - 30)
            continue;
        bgnbd_table_clear(t);
        double c0 = cpu_ms();
        for (int i = 0; i < users; i++)
            if (u[i].first < day)
                bgnbd_table_add(t, u[i].x, u[i].last_day - u[i].first, day - u[i].first, 1);
        double t1 = now_ms(), c1 = cpu_ms();
        int cold = day == days - 30;
        if (cold)
            bgnbd_params_default(&p);
        if (bgnbd_fit(t, &p, 50, &info) != 0)
            return 1;
        double t2 = now_ms(), c2 = cpu_ms();
        if (cold) {
            cold_ms = t2 - t1;
            cold_cpu = c2 - c1;
            printf("tick day %d: %zu rows for %.0f users (table build %.1f ms cpu); cold fit "
                   "%.1f ms cpu (%.1f wall), %d iterations, LL %.4f\n",
                   day, bgnbd_table_rows(t), bgnbd_table_weight(t), c1 - c0, cold_cpu, cold_ms,
                   info.iterations, info.loglik);
        } else {
            warm_sum += t2 - t1;
            warm_max = t2 - t1 > warm_max ? t2 - t1 : warm_max;
            warm_cpu_sum += c2 - c1;
            warm_cpu_max = c2 - c1 > warm_cpu_max ? c2 - c1 : warm_cpu_max;
            warm_iter_max = info.iterations > warm_iter_max ? info.iterations : warm_iter_max;
            warm_n++;
        }
    }
    printf("last tick: %zu rows; fit r=%.4f alpha=%.3f a=%.3g b=%.4g (se %.3g %.3g %.3g %.3g)\n",
           bgnbd_table_rows(t), p.r, p.alpha, p.a, p.b, info.se[0], info.se[1], info.se[2],
           info.se[3]);
    printf("warm-started daily refits: %d, cpu mean %.2f ms max %.2f ms; wall mean %.2f ms max "
           "%.2f ms; max %d iterations\n",
           warm_n, warm_cpu_sum / warm_n, warm_cpu_max, warm_sum / warm_n, warm_max, warm_iter_max);
    bgnbd_table_destroy(t);
    free(u);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "fit") == 0) {
        bgnbd_table_t *t = bgnbd_table_new();
        size_t n;
        if (!t || read_rows(t, NULL, &n))
            return 1;
        int max_iter = argc >= 3 ? atoi(argv[2]) : 100;
        bgnbd_params_t p;
        bgnbd_params_default(&p);
        if (argc >= 7)
            p = (bgnbd_params_t){atof(argv[3]), atof(argv[4]), atof(argv[5]), atof(argv[6])};
        bgnbd_fit_info_t info;
        double t0 = now_ms();
        int rc = bgnbd_fit(t, &p, max_iter, &info);
        double ms = now_ms() - t0;
        if (rc != 0) {
            printf("{\"rc\": %d}\n", rc);
            return 0;
        }
        printf("{\"rc\": 0, \"r\": %.17g, \"alpha\": %.17g, \"a\": %.17g, \"b\": %.17g, "
               "\"loglik\": %.17g, \"iterations\": %d, \"converged\": %d, "
               "\"se\": [%.17g, %.17g, %.17g, %.17g], \"rows\": %zu, \"fit_ms\": %.3f}\n",
               p.r, p.alpha, p.a, p.b, info.loglik, info.iterations, info.converged, info.se[0],
               info.se[1], info.se[2], info.se[3], bgnbd_table_rows(t), ms);
        bgnbd_table_destroy(t);
        return 0;
    }
    if (argc == 7 && strcmp(argv[1], "eval") == 0) {
        bgnbd_params_t p = {atof(argv[2]), atof(argv[3]), atof(argv[4]), atof(argv[5])};
        double h = atof(argv[6]), *rows = NULL;
        size_t n;
        if (read_rows(NULL, &rows, &n))
            return 1;
        for (size_t i = 0; i < n; i++) {
            double *v = rows + 4 * i;
            printf("%.17g %.17g %.17g %.17g\n", bgnbd_loglik(&p, v[0], v[1], v[2]),
                   bgnbd_p_alive(&p, v[0], v[1], v[2]), bgnbd_p_none(&p, v[0], v[1], v[2], h),
                   bgnbd_expected(&p, v[0], v[1], v[2], h));
        }
        free(rows);
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "loglik") == 0) {
        bgnbd_params_t p = {atof(argv[2]), atof(argv[3]), atof(argv[4]), atof(argv[5])};
        bgnbd_table_t *t = bgnbd_table_new();
        size_t n;
        if (!t || read_rows(t, NULL, &n))
            return 1;
        printf("%.17g\n", bgnbd_table_loglik(t, &p));
        bgnbd_table_destroy(t);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "bench") == 0)
        return bench(atoi(argv[2]), atoi(argv[3]), strtoull(argv[4], NULL, 10));
    fprintf(stderr, "usage: bgnbd_tool fit [MAX_ITER [r alpha a b]] | eval r alpha a b h | "
                    "loglik r alpha a b | bench USERS DAYS SEED  (rows on stdin: x t_x T [w])\n");
    return 2;
}
