/* Pipeline: engine sink -> predictor, and the caller's hooks. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>

struct pl_s {
    eng_t *eng;
    pred_t *pred; /* borrowed */
    pl_hooks_t hooks;
    int oom;
};

static void on_score(void *opaque, const eng_snapshot_t *s)
{
    pl_t *pl = opaque;
    int seg;
    float p = pred_score(pl->pred, s->x, &seg, NULL);
    if (pl->hooks.scored)
        pl->hooks.scored(pl->hooks.opaque, s, p, seg);
}

static void on_label(void *opaque, const eng_snapshot_t *s)
{
    pl_t *pl = opaque;
    if (pl->hooks.labelled)
        pl->hooks.labelled(pl->hooks.opaque, s);
    if (pred_label(pl->pred, s->tick_ms, s->x, s->y) != 0)
        pl->oom = 1;
}

static void on_tick_done(void *opaque, int64_t tick_ms)
{
    pl_t *pl = opaque;
    if (pl->hooks.tick_done)
        pl->hooks.tick_done(pl->hooks.opaque, tick_ms);
}

pl_t *pl_new(const cfg_t *cfg, pred_t *pred, const eng_store_t *store, const pl_hooks_t *hooks,
             char *errstr, size_t errstr_size)
{
    pl_t *pl = calloc(1, sizeof(*pl));
    if (!pl) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pl->pred = pred;
    pl->hooks = *hooks;
    eng_sink_t sink = {.opaque = pl, .score = on_score, .label = on_label,
                       .tick_done = on_tick_done};
    eng_params_t ep = {.tick_ms = cfg->tick_interval_ms, .horizon_ms = cfg->label_horizon_ms,
                       .lookback_ms = cfg->label_lookback_ms,
                       .lateness_ms = cfg->events_allowed_lateness_ms};
    if (!(pl->eng = eng_new(&ep, store, &sink, errstr, errstr_size))) {
        free(pl);
        return NULL;
    }
    return pl;
}

void pl_destroy(pl_t *pl)
{
    if (!pl)
        return;
    eng_destroy(pl->eng);
    free(pl);
}

void pl_event(pl_t *pl, const ev_event_t *ev)
{
    eng_event(pl->eng, ev);
}

/* Ticks before the next positive resolution have every label: calibration may use them. */
static void complete_ticks(pl_t *pl)
{
    eng_progress_t pr;
    eng_get_progress(pl->eng, &pr);
    if (pr.positives_next_ms != ENG_NO_TIME)
        pred_ticks_complete(pl->pred, pr.positives_next_ms - 1);
}

int pl_batch_end(pl_t *pl, int64_t watermark_ms)
{
    /* Learn what is known, then move the watermark; the sweeps' positives are learnt too,
     * so the next batch is scored by a model that has seen every label known so far. */
    if (pred_flush(pl->pred) != 0)
        pl->oom = 1;
    eng_advance(pl->eng, watermark_ms);
    if (pred_flush(pl->pred) != 0)
        pl->oom = 1;
    complete_ticks(pl);
    return pl->oom ? -1 : 0;
}

int pl_finish(pl_t *pl, int64_t end_ms)
{
    if (pred_flush(pl->pred) != 0)
        pl->oom = 1;
    eng_finish(pl->eng, end_ms);
    if (pred_flush(pl->pred) != 0)
        pl->oom = 1;
    complete_ticks(pl);
    return pl->oom ? -1 : 0;
}

eng_t *pl_engine(pl_t *pl)
{
    return pl->eng;
}
