/* Replay's event sources (replay_internal.h): an Avro container file, a CSV through the
 * import mapping, JSON lines, or a Kafka topic's time range, all read as one stream of
 * events (or reject reasons) in file order. */
#include "replay_internal.h"

#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int input_is_jsonl(const rp_opts_t *o)
{
    return ends_with(o->input, ".jsonl") || ends_with(o->input, ".jsonl.gz") ||
           ends_with(o->input, ".ndjson") || ends_with(o->input, ".json");
}

static int input_is_csv(const rp_opts_t *o)
{
    return strncmp(o->input, "kafka:", 6) != 0 && !input_is_jsonl(o) &&
           (o->preset || o->map || ends_with(o->input, ".csv") || ends_with(o->input, ".csv.gz") ||
            ends_with(o->input, ".tsv"));
}

/* The CSV mapping: --preset/--map, else the columns of churnstream's own layouts by header
 * name (imp_auto_map). */
static int csv_spec(const rp_opts_t *o, imp_spec_t *spec, char *errstr, size_t errstr_size)
{
    char map[256];
    const char *m = o->map;
    if (!o->preset && !o->map && !o->no_header) {
        if (imp_auto_map(o->input, o->delimiter, map, sizeof(map), errstr, errstr_size) != 0)
            return -1;
        m = map;
    }
    return imp_spec_parse(spec, o->preset, m, o->delimiter, o->no_header, errstr, errstr_size);
}

static int source_next(void *src, ev_event_t *ev, ev_reason_t *reason, char *why, size_t why_size,
                       char *errstr, size_t errstr_size);

int rp_source_open(source_t *src, const cfg_t *cfg, const rp_opts_t *o, char *errstr,
                   size_t errstr_size)
{
    memset(src, 0, sizeof(*src));
    if (strncmp(o->input, "kafka:", 6) == 0) {
        src->kafka = ks_load(cfg, o->input + 6, o->from_ms, o->to_ms, 30000, errstr, errstr_size);
        return src->kafka ? 0 : -1;
    }
    if (input_is_jsonl(o) || !input_is_csv(o)) {
        if (input_is_jsonl(o))
            src->jsonl = jl_reader_open(o->input, errstr, errstr_size);
        else
            src->avro = ev_file_reader_open(o->input, errstr, errstr_size);
        if (!src->jsonl && !src->avro)
            return -1;
        /* Only with a second CPU to run on: on one, the hand-off costs about 5% of a replay
         * and overlaps nothing. */
        if (cs_pool_default_threads(2) > 1 && !(src->ahead = rpp_new(source_next, src))) {
            rp_source_close(src);
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        return 0;
    }
    imp_spec_t spec;
    if (csv_spec(o, &spec, errstr, errstr_size) != 0)
        return -1;
    src->is_csv = 1;
    if (imp_load(&spec, o->input, &src->csv, errstr, errstr_size) != 0)
        return -1;
    if (src->csv.bad_rows > 0)
        imp_result_print_summary(&src->csv, o->input, stderr);
    return 0;
}

int rp_check_opts(const rp_opts_t *o, char *errstr, size_t errstr_size)
{
    imp_spec_t spec;
    if (input_is_csv(o) && csv_spec(o, &spec, errstr, errstr_size) != 0)
        return -1;
    return 0;
}

/* 1 with *ev, 0 at the end, -1 on a corrupt input. Called by the read-ahead thread for the
 * Avro and JSON lines sources. */
static int source_next(void *opaque, ev_event_t *ev, ev_reason_t *reason, char *why,
                       size_t why_size, char *errstr, size_t errstr_size)
{
    source_t *src = opaque;
    if (src->kafka) {
        if (src->kafka_next >= ks_count(src->kafka))
            return 0;
        *reason = ks_get(src->kafka, src->kafka_next++, ev, why, why_size);
        return 1;
    }
    if (src->jsonl) {
        long line_no;
        int rc = jl_reader_next(src->jsonl, ev, reason, why, why_size, &line_no);
        if (rc < 0)
            snprintf(errstr, errstr_size, "%s", why);
        else if (rc > 0 && *reason != EV_OK) {
            size_t n = strlen(why);
            snprintf(why + n, why_size - n, " (line %ld)", line_no);
        }
        return rc;
    }
    if (!src->is_csv)
        return ev_file_reader_next(src->avro, ev, reason, errstr, errstr_size);
    if (src->csv_next >= src->csv.n_events)
        return 0;
    imp_result_get(&src->csv, src->csv_next++, ev);
    *reason = EV_OK;
    return 1;
}

int rp_source_next_cb(void *src, ev_event_t *ev, ev_reason_t *reason, char *why, size_t why_size,
                      char *errstr, size_t errstr_size)
{
    source_t *s = src;
    if (s->ahead)
        return rpp_next(s->ahead, ev, reason, why, why_size, errstr, errstr_size);
    return source_next(src, ev, reason, why, why_size, errstr, errstr_size);
}

/* Events in the input when known up front (CSV and Kafka are loaded whole), else 0. */
size_t rp_source_total(const source_t *src)
{
    if (src->kafka)
        return ks_count(src->kafka);
    if (src->is_csv)
        return src->csv.n_events;
    return 0;
}

void rp_source_close(source_t *src)
{
    rpp_destroy(src->ahead); /* first: the thread reads the decoders below */
    src->ahead = NULL;
    if (src->kafka)
        ks_destroy(src->kafka);
    else if (src->jsonl)
        jl_reader_close(src->jsonl);
    else if (src->is_csv)
        imp_result_free(&src->csv);
    else
        ev_file_reader_close(src->avro);
}
