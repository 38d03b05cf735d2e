/* `churnstream gen`: synthetic events (planted churners, or a BG/NBD or Pareto/NBD process),
 * written to an Avro container file (or a CSV) or produced to a Kafka topic (key = user_id,
 * chosen wire framing, idempotent producer, optional pacing), plus the ground-truth CSV. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cmd_gen.h"
#include "commands.h"
#include "outfile.h"
#include "log.h"

#define GEN_PROGRESS_EVERY_NS 250000000LL

static volatile sig_atomic_t gen_stop;

static void gen_on_signal(int sig)
{
    (void)sig;
    gen_stop = 1;
}

/* FILE.avro or FILE.csv -> FILE.truth.csv (or FILE + ".truth.csv" without the extension). */
static char *default_truth_path(const char *out_path)
{
    size_t n = strlen(out_path);
    const char *dot = strrchr(out_path, '.');
    const char *slash = strrchr(out_path, '/');
    if (dot && (!slash || dot > slash) && (strcmp(dot, ".avro") == 0 || strcmp(dot, ".csv") == 0))
        n = (size_t)(dot - out_path);
    char *p = malloc(n + sizeof(".truth.csv"));
    if (p) {
        memcpy(p, out_path, n);
        memcpy(p + n, ".truth.csv", sizeof(".truth.csv"));
    }
    return p;
}

/* ---- CSV sink ---------------------------------------------------------------------- */

/* The events format of ../shared/tools/backtest_score.py (--events); generated ids hold no
 * comma or quote and amounts are whole cents, so %.15g prints them exactly. */
static of_t *csv_open(const char *path, char *errstr, size_t errstr_size)
{
    of_t *of = of_open(path, errstr, errstr_size);
    if (of)
        fputs("user_id,ts_ms,event_type,amount\n", of_file(of));
    return of;
}

static int csv_append(of_t *of, const ev_event_t *ev, char *errstr, size_t errstr_size)
{
    if (fprintf(of_file(of), "%s,%lld,%s,%.15g\n", ev->user_id, (long long)ev->event_time_ms,
                ev_type_name(ev->type), ev->amount) < 0) {
        snprintf(errstr, errstr_size, "%s: write failed: %s", of_path(of), strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- progress ---------------------------------------------------------------------- */

typedef struct gen_progress_s {
    int enabled;
    int64_t t0_ns, last_ns;
} gen_progress_t;

static void progress_tick(gen_progress_t *pr, const gen_t *g, int days, int force)
{
    if (!pr->enabled)
        return;
    int64_t t = gen_now_ns();
    if (!force && t - pr->last_ns < GEN_PROGRESS_EVERY_NS)
        return;
    pr->last_ns = t;
    int done;
    int64_t events;
    gen_progress(g, &done, &events);
    double secs = (double)(t - pr->t0_ns) / 1e9;
    fprintf(stderr, "\rgen: %lld events, %.0f events/s, day %d/%d (%.0f%%)   ", (long long)events,
            secs > 0 ? (double)events / secs : 0.0, done, days, 100.0 * done / days);
    if (force)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- the sink: a file (Avro or CSV) or a topic -------------------------------------- */

typedef struct gen_sink_s {
    ev_file_writer_t *fw; /* --out FILE.avro */
    of_t *csv;            /* --out FILE.csv */
    ev_encoder_t *enc;    /* a topic: the wire encoder and the producer */
    gen_kafka_t kafka;
} gen_sink_t;

static int sink_open(gen_sink_t *k, cfg_t *cfg, const gen_opts_t *o, char *err, size_t errsz)
{
    memset(k, 0, sizeof(*k));
    if (o->csv_out)
        return (k->csv = csv_open(o->out_path, err, errsz)) ? 0 : -1;
    if (o->out_path)
        return (k->fw = ev_file_writer_open(o->out_path, err, errsz)) ? 0 : -1;
    k->enc = ev_encoder_new(o->wire, o->schema_id, err, errsz);
    if (!k->enc || gen_kafka_open(cfg, o->topic, &k->kafka, err, errsz) < 0)
        return -1;
    k->kafka.event_timestamps = o->event_timestamps; /* gen_kafka_open zeroed it */
    return 0;
}

static int sink_put(gen_sink_t *k, const ev_event_t *ev, int64_t n, char *err, size_t errsz)
{
    if (k->csv)
        return csv_append(k->csv, ev, err, errsz);
    if (k->fw)
        return ev_file_writer_append(k->fw, ev, err, errsz);
    const void *buf;
    size_t len;
    if (ev_encode(k->enc, ev, &buf, &len) < 0) {
        snprintf(err, errsz, "cannot encode event %lld (user %s)", (long long)n, ev->user_id);
        return -1;
    }
    return gen_kafka_produce(&k->kafka, ev, buf, len, err, errsz);
}

/* Commits the file, or waits for every delivery. */
static int sink_finish(gen_sink_t *k, char *err, size_t errsz)
{
    int rc;
    if (k->csv) {
        rc = of_commit(k->csv, err, errsz);
        k->csv = NULL;
    } else if (k->fw) {
        rc = ev_file_writer_close(k->fw, err, errsz);
        k->fw = NULL;
    } else {
        rc = gen_kafka_finish(&k->kafka, err, errsz);
    }
    return rc;
}

/* Frees what is left: an unfinished file is removed (nothing half-written stays). */
static void sink_close(gen_sink_t *k)
{
    if (k->fw)
        ev_file_writer_abort(k->fw);
    if (k->csv)
        of_abort(k->csv);
    ev_encoder_destroy(k->enc);
    gen_kafka_close(&k->kafka);
}

/* ---- the command ------------------------------------------------------------------- */

/* Generates every event into the sink; the number written in *n. -1 with err. */
static int generate(gen_t *g, gen_sink_t *k, const gen_opts_t *o, int64_t *n, char *err,
                    size_t errsz)
{
    gen_progress_t pr = {.enabled = !o->quiet && isatty(STDERR_FILENO)};
    pr.t0_ns = pr.last_ns = gen_now_ns();
    ev_event_t ev;
    int rc = 0;
    int64_t last_ms = INT64_MIN;
    *n = 0;
    while (!gen_stop && (rc = gen_next(g, &ev)) == 1) {
        if (o->wall_clock) { /* non-decreasing even if the clock steps back */
            int64_t now_ms = gen_now_wall_ms();
            ev.event_time_ms = last_ms = now_ms > last_ms ? now_ms : last_ms;
        }
        if (sink_put(k, &ev, *n, err, errsz) < 0)
            return -1;
        if (k->enc && o->rate_eps > 0)
            gen_kafka_pace(&k->kafka, o->rate_eps, pr.t0_ns, *n + 1, &gen_stop);
        ++*n;
        if ((*n & 1023) == 0)
            progress_tick(&pr, g, o->params.days, 0);
    }
    if (!gen_stop && rc < 0) {
        snprintf(err, errsz, "out of memory generating events");
        return -1;
    }
    progress_tick(&pr, g, o->params.days, 1);
    return 0;
}

int cmd_gen(cfg_t *cfg, int argc, char **argv)
{
    gen_opts_t o;
    int prc = gen_parse_args(cfg, argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? 0 : 2;

    char err[1024] = "";
    gen_t *g = gen_new(&o.params, err, sizeof(err));
    if (!g) {
        fprintf(stderr, "churnstream gen: %s\n", err);
        return 2;
    }
    int status = 1;
    char *truth_owned = NULL;
    const char *truth = o.truth_path;
    /* With --out - (stdout) there is no "next to it": the truth only goes where --truth says,
     * and never to stdout as well, where it would interleave with the Avro bytes. */
    if (!truth && o.out_path && strcmp(o.out_path, "-") != 0)
        truth = truth_owned = default_truth_path(o.out_path);
    if (truth && o.out_path && strcmp(truth, "-") == 0 && strcmp(o.out_path, "-") == 0) {
        fprintf(stderr, "churnstream gen: --out - and --truth - would both write to stdout\n");
        gen_destroy(g);
        return 2;
    }
    gen_sink_t sink;
    memset(&sink, 0, sizeof(sink));
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = gen_on_signal;
    sigemptyset(&sa.sa_mask);
    gen_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    /* The truth is known before the first event, so it is written first: a failed run
     * still leaves it, and an unwritable path fails before any work. */
    int64_t t0 = gen_now_ns(), n = 0;
    if ((truth && gen_truth_write(g, truth, err, sizeof(err)) < 0) ||
        sink_open(&sink, cfg, &o, err, sizeof(err)) < 0 ||
        generate(g, &sink, &o, &n, err, sizeof(err)) < 0 ||
        sink_finish(&sink, err, sizeof(err)) < 0)
        goto done;
    static const char *const process_names[] = {"planted", "bgnbd", "paretonbd"};
    log_info("gen",
             "%s: %lld events, %lld users, %d days, seed %llu, process %s -> %s %s, truth %s, "
             "%.2f s",
             gen_stop ? "interrupted (what was generated is delivered)" : "done", (long long)n,
             (long long)o.params.users, o.params.days, (unsigned long long)o.params.seed,
             process_names[o.params.process], o.out_path ? "file" : "topic",
             o.out_path ? o.out_path : o.topic, truth ? truth : "(none)",
             (double)(gen_now_ns() - t0) / 1e9);
    status = gen_stop ? 1 : 0;
    err[0] = '\0';

done:
    if (status != 0 && err[0])
        fprintf(stderr, "churnstream gen: %s\n", err);
    sink_close(&sink);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(truth_owned);
    gen_destroy(g);
    return status;
}
