/* Replay's output files (replay_internal.h): scores, alerts, snapshots and rejects, each
 * written to a temporary file and published only when the run succeeds (rejects always).
 * Alerts reach their file through the JSON-lines alert sink (sink.h), the interface `run`'s
 * Kafka sink implements too. */
#include "replay_internal.h"

#include <stdio.h>

#include "feat.h"

int rp_open_outputs(const rp_opts_t *o, outputs_t *out, char *errstr, size_t errstr_size)
{
    if (o->scores_out) {
        if (!(out->scores = of_open(o->scores_out, errstr, errstr_size)))
            return -1;
        out->scores_f = of_file(out->scores);
        fputs("user_id,tick_ms,score\n", out->scores_f);
    }
    if (o->alerts_out) {
        if (!(out->alerts = of_open(o->alerts_out, errstr, errstr_size)) ||
            alert_sink_jsonl(&out->alerts_sink, of_file(out->alerts), o->alerts_out, errstr,
                             errstr_size) != 0)
            return -1;
    }
    if (o->snapshots_out) {
        if (!(out->snapshots = of_open(o->snapshots_out, errstr, errstr_size)))
            return -1;
        out->snapshots_f = of_file(out->snapshots);
        fputs("user_id,tick_ms,y,score", out->snapshots_f);
        for (int i = 0; i < FEAT_DIM; i++)
            fprintf(out->snapshots_f, ",%s", feat_info[i].name);
        fputc('\n', out->snapshots_f);
    }
    if (o->rejects_out) {
        if (!(out->rejects = of_open(o->rejects_out, errstr, errstr_size)))
            return -1;
        out->rejects_f = of_file(out->rejects);
        fputs("reason,user_id,event_time_ms,detail\n", out->rejects_f);
    }
    return 0;
}

/* Outputs are published only when the run succeeded (a failed run leaves the previous
 * files); the rejects are published either way: they describe the input read so far, which
 * is what a failed run needs explained. Returns rc, or -1 when publishing failed. */
int rp_close_outputs(outputs_t *out, int rc, char *errstr, size_t errstr_size)
{
    if (rc == 0 && alert_sink_flush(&out->alerts_sink, errstr, errstr_size) != 0)
        rc = -1;
    alert_sink_close(&out->alerts_sink);
    of_t *outs[] = {out->scores, out->alerts, out->snapshots};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        if (rc == 0 && of_commit(outs[i], errstr, errstr_size) != 0)
            rc = -1;
        else if (rc != 0)
            of_abort(outs[i]);
    }
    char rej_err[512];
    if (of_commit(out->rejects, rej_err, sizeof rej_err) != 0 && rc == 0) {
        snprintf(errstr, errstr_size, "%s", rej_err);
        rc = -1;
    }
    return rc;
}
