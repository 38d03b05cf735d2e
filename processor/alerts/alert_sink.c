/* The alert sink interface's calls (sink.h) and its JSON-lines file implementation, which
 * writes one alert_to_json line per alert in the order alerts are emitted: replay's
 * --alerts-out, read back by `compose` and `respond`. The stream belongs to the caller; the
 * sink keeps the first failure so that one check at flush covers the whole run. */
#include "sink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSONL_LINE_MAX 8192 /* an alert_t's JSON is about 2 KiB at its largest */

int alert_sink_emit(const alert_sink_t *s, const alert_t *a)
{
    return s && s->emit ? s->emit(s->self, a) : 0;
}

int alert_sink_flush(const alert_sink_t *s, char *errstr, size_t errstr_size)
{
    return s && s->flush ? s->flush(s->self, errstr, errstr_size) : 0;
}

void alert_sink_close(alert_sink_t *s)
{
    if (!s)
        return;
    if (s->close)
        s->close(s->self);
    memset(s, 0, sizeof(*s));
}

typedef struct jsonl_sink_s {
    FILE *f;
    char *name;
    char error[256]; /* the first failure, "" while none */
} jsonl_sink_t;

static int jsonl_emit(void *self, const alert_t *a)
{
    jsonl_sink_t *js = self;
    char line[JSONL_LINE_MAX];
    if (alert_to_json(a, line, sizeof(line)) < 0) {
        if (!js->error[0])
            snprintf(js->error, sizeof(js->error),
                     "%s: alert %s has no JSON form (a number that is not finite)", js->name,
                     a->alert_id);
        return -1;
    }
    if (fprintf(js->f, "%s\n", line) < 0) {
        if (!js->error[0])
            snprintf(js->error, sizeof(js->error), "%s: write failed: %s", js->name,
                     strerror(errno));
        return -1;
    }
    return 0;
}

static int jsonl_flush(void *self, char *errstr, size_t errstr_size)
{
    jsonl_sink_t *js = self;
    if (!js->error[0] && (fflush(js->f) != 0 || ferror(js->f)))
        snprintf(js->error, sizeof(js->error), "%s: write failed: %s", js->name, strerror(errno));
    if (js->error[0]) {
        snprintf(errstr, errstr_size, "%s", js->error);
        return -1;
    }
    return 0;
}

static void jsonl_close(void *self)
{
    jsonl_sink_t *js = self;
    if (!js)
        return;
    free(js->name);
    free(js);
}

int alert_sink_jsonl(alert_sink_t *out, FILE *f, const char *name, char *errstr, size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    jsonl_sink_t *js = calloc(1, sizeof(*js));
    if (!js || !(js->name = strdup(name ? name : "alerts"))) {
        free(js);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    js->f = f;
    *out =
        (alert_sink_t){.self = js, .emit = jsonl_emit, .flush = jsonl_flush, .close = jsonl_close};
    return 0;
}
