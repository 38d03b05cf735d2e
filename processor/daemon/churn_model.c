/* The churn handler's model (churn_internal.h): loading it, and when several instances
 * share it (model.sync_interval > 0) the journals each batch commits and the merges.
 *
 * Shared mode: an instance learns locally as it always does, and its pipelines also record
 * that learning per partition (model_journal.h). A batch commits each partition's journal
 * entry in that partition's transaction, with its state and offset, instead of the model;
 * so a crash, a rollback or a rebalance neither loses nor doubles a learnt example. Every
 * sync interval an instance merges every pending entry of every partition into the stored
 * model (store_redis.h: under WATCH, with per-partition marks, each entry exactly once) and
 * replaces its local model by the merged one, which holds its own learning as well.
 * Entries are merged in order of the watermark their batch reached (a k-way merge of the
 * partitions' runs, each kept in sequence order), so instances at different event times
 * interleave roughly as one instance would have seen them.
 * Entry bytes: "CSJ1" | i64 LE watermark (ms) | the journal (model_journal.h). */
#include "churn_internal.h"
#include "grow.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define J_MAGIC  "CSJ1"
#define J_HEADER 12

void chn_model_drop(chn_t *ch)
{
    model_destroy(ch->model);
    ch->model = NULL;
}

static int check_dim(const model_t *m, char *err, size_t errsz)
{
    if (model_dim(m) == FEAT_DIM)
        return 0;
    snprintf(err, errsz, "stored model has %d features, this build has %d", model_dim(m), FEAT_DIM);
    return -1;
}

/* What the model starts from when Redis holds none: --model-in, else a new model. */
static model_t *base_model(const chn_t *ch, char *err, size_t errsz)
{
    model_t *m = ch->model_in ? model_load_file(ch->model_in, err, errsz)
                              : pl_model_new(ch->cfg, err, errsz);
    if (m && check_dim(m, err, errsz) != 0) {
        model_destroy(m);
        return NULL;
    }
    return m;
}

/* A stored model's bytes, decoded for this build; NULL with err. */
static model_t *decoded(const uint8_t *bytes, size_t len, char *err, size_t errsz)
{
    model_t *m = model_decode(bytes, len, err, errsz);
    if (m && check_dim(m, err, errsz) != 0) {
        model_destroy(m);
        m = NULL;
    }
    return m;
}

static int entry_ok(const st_journal_entry_t *e)
{
    return e->len >= J_HEADER && memcmp(e->bytes, J_MAGIC, 4) == 0;
}

/* The watermark the entry's batch reached (INT64_MIN: none yet, or no header). */
static int64_t entry_watermark(const st_journal_entry_t *e)
{
    if (!entry_ok(e))
        return INT64_MIN;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | e->bytes[4 + i];
    return (int64_t)v;
}

/* order[] = the entries (sorted by partition, then seq) merged by watermark: each
 * partition's run stays in sequence order; the next entry is the run head with the lowest
 * watermark, ties to the lower partition. */
static void merge_order(const st_journal_entry_t *e, size_t n, size_t *order)
{
    size_t *head = malloc((n + 1) * sizeof(*head)), *end = malloc((n + 1) * sizeof(*end));
    size_t runs = 0;
    if (!head || !end) { /* out of memory: partition order (still a valid merge) */
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        free(head);
        free(end);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (i == 0 || e[i].partition != e[i - 1].partition) {
            head[runs] = i;
            end[runs++] = i + 1;
        } else {
            end[runs - 1] = i + 1;
        }
    for (size_t q = 0; q < n; q++) {
        size_t best = runs;
        for (size_t r = 0; r < runs; r++)
            if (head[r] < end[r] &&
                (best == runs || entry_watermark(&e[head[r]]) < entry_watermark(&e[head[best]])))
                best = r;
        order[q] = head[best]++;
    }
    free(head);
    free(end);
}

/* Replays the entries not skipped onto m in merge order. n when all went in, else the index
 * of the first entry that would not (corrupt; m then holds part of it). */
static size_t replay_all(model_t *m, const st_journal_entry_t *e, size_t n, const size_t *order,
                         const uint8_t *skip)
{
    for (size_t q = 0; q < n; q++) {
        const st_journal_entry_t *x = &e[order[q]];
        char why[256] = "header";
        if (skip[order[q]])
            continue;
        log_debug("model", "merging partition %d entry %llu", (int)x->partition,
                  (unsigned long long)x->seq);
        if (!entry_ok(x) ||
            model_replay(m, x->bytes + J_HEADER, x->len - J_HEADER, why, sizeof why) != 0) {
            log_error("model",
                      "journal of partition %d, entry %llu (%zu bytes): %s; merged without it "
                      "(the learning it held is lost)",
                      (int)x->partition, (unsigned long long)x->seq, x->len, why);
            return order[q];
        }
    }
    return n;
}

/* st_merge_fn: the stored model (or the base) with the entries replayed, encoded. A corrupt
 * entry is logged and left out (the merge starts again without it), so one bad entry
 * cannot stop every later merge. */
static int merge_cb(void *ctx, const uint8_t *stored, size_t len, const st_journal_entry_t *e,
                    size_t n, uint8_t **out, size_t *out_len, int64_t *mark, char *err,
                    size_t errsz)
{
    const chn_t *ch = ctx;
    size_t *order = malloc((n + 1) * sizeof(*order));
    uint8_t *skip = calloc(n + 1, 1);
    int rc = -1;
    if (!order || !skip) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    merge_order(e, n, order);
    for (;;) {
        model_t *m = stored ? decoded(stored, len, err, errsz) : base_model(ch, err, errsz);
        if (!m)
            goto out;
        pl_configure_model(ch->cfg, m);
        size_t bad = replay_all(m, e, n, order, skip);
        if (bad < n) {
            skip[bad] = 1;
            model_destroy(m);
            continue;
        }
        rc = model_encode(m, out, out_len);
        if (rc != 0)
            snprintf(err, errsz, "out of memory");
        model_destroy(m);
        for (size_t i = 0; i < n; i++) /* the latest event time whose labels are in */
            if (!skip[i] && entry_watermark(&e[i]) > *mark)
                *mark = entry_watermark(&e[i]);
        break;
    }
out:
    free(order);
    free(skip);
    return rc;
}

/* Merges every pending journal into Redis's model: of the assigned partitions, of those this
 * instance wrote to since its last merge, and of every partition merged before (the store
 * reads those from the marks). 0, -1 with err. */
static int merge(chn_t *ch, st_merge_result_t *res, char *err, size_t errsz)
{
    size_t n = ch->nassigned + ch->n_j_known;
    if (CS_GROW(ch->merge_parts, ch->cap_merge_parts, n + 1, 16) != 0) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    memcpy(ch->merge_parts, ch->assigned, ch->nassigned * sizeof(*ch->assigned));
    memcpy(ch->merge_parts + ch->nassigned, ch->j_known, ch->n_j_known * sizeof(*ch->j_known));
    if (st_redis_model_merge(ch->st, ch->merge_parts, n, merge_cb, ch, res, err, errsz) != 0) {
        ch->merges_failed++;
        return -1;
    }
    ch->merges_ok++;
    ch->merged_entries += res->entries;
    ch->n_j_known = 0; /* the marks name them from now on */
    if (res->entries)
        log_debug("model", "merged %zu journal entries of %zu partitions (%zu races lost)",
                  res->entries, res->partitions, res->conflicts);
    return 0;
}

int chn_model_load(chn_t *ch, char *err, size_t errsz)
{
    if (ch->model)
        return 0;
    /* Shared: what this and other instances learnt is in the journals until merged, and the
     * merge hands back the stored model. Else the stored model as it is. */
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ch->shared) {
        st_merge_result_t res;
        if (merge(ch, &res, err, errsz) != 0)
            return -1;
        buf = res.model;
        len = res.model_len;
    } else if (st_redis_load_model(ch->st, &buf, &len, err, errsz) != 0) {
        return -1;
    }
    ch->last_sync_ms = chn_wall_ms();
    if (buf) {
        if (!(ch->model = decoded(buf, len, err, errsz))) {
            free(buf);
            return -1;
        }
        free(ch->model_bytes);
        ch->model_bytes = buf;
        ch->model_len = len;
        log_info("run", "model version %llu loaded from Redis",
                 (unsigned long long)model_version(ch->model));
    } else {
        if (!(ch->model = base_model(ch, err, errsz)))
            return -1;
        if (ch->model_in)
            log_info("run", "warm start from %s: model version %llu, %llu examples", ch->model_in,
                     (unsigned long long)model_version(ch->model),
                     (unsigned long long)model_examples_seen(ch->model));
        /* the rollback point is what a failed first batch returns to */
        free(ch->model_bytes);
        ch->model_bytes = NULL;
        if (model_encode(ch->model, &ch->model_bytes, &ch->model_len) != 0) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
    }
    ch->model_version_committed = model_version(ch->model);
    return 0;
}

/* 1 when a merged model holding labels up to event time mark would look ahead of this
 * instance: during a catch-up, instances move through event time at different speeds, and
 * one behind would score its snapshots with labels of weeks it has not reached (measured in
 * README, Scaling out). Within one tick it takes the model (a live group's instances differ
 * by seconds); a lagging one keeps learning locally until it is there. */
static int ahead_of(const chn_t *ch, int64_t mark)
{
    return mark != INT64_MIN &&
           (ch->watermark_ms == INT64_MIN || mark > ch->watermark_ms + ch->cfg->tick_interval_ms);
}

void chn_model_sync(chn_t *ch, int64_t now, int force)
{
    if (!ch->shared || !ch->model ||
        (!force && now - ch->last_sync_ms < ch->cfg->model_sync_interval_ms))
        return;
    ch->last_sync_ms = now;
    char err[512];
    st_merge_result_t res;
    if (merge(ch, &res, err, sizeof err) != 0) {
        log_warn("model",
                 "merge of the shared model failed (local learning goes on, the "
                 "journals wait in Redis; next try in model.sync_interval): %s",
                 err);
        return;
    }
    model_t *m = NULL;
    if (res.model && !force) { /* at stop the merge is all that is wanted */
        if (ahead_of(ch, res.mark))
            ch->merges_held_back++;
        else if (!(m = decoded(res.model, res.model_len, err, sizeof err)))
            log_warn("model", "the merged model does not load (keeping the local one): %s", err);
    }
    free(res.model);
    if (!m)
        return; /* nothing merged yet, ahead of this instance, or stopping */
    pl_configure_model(ch->cfg, m);
    model_swap(ch->model, m); /* the pipelines keep their pointer */
    model_destroy(m);
    ch->model_version_committed = model_version(ch->model);
}

int chn_journals_stage(chn_t *ch, st_commit_t *c)
{
    ch->n_j = 0;
    if (!ch->shared)
        return 0;
    if (CS_GROW4(ch->c_jparts, ch->c_jseqs, ch->c_jbufs, ch->c_jlens, ch->cap_j, ch->nparts + 1,
                 8) != 0)
        return -1;
    for (size_t i = 0; i < ch->nparts; i++) {
        const mj_t *j = pl_journal(ch->parts[i].pl);
        if (!j || j->ops == 0)
            continue;
        if (mj_failed(j))
            return -1;
        uint8_t *b = malloc(J_HEADER + j->b.len);
        if (!b)
            return -1;
        memcpy(b, J_MAGIC, 4);
        uint64_t wm = (uint64_t)ch->watermark_ms;
        for (int k = 0; k < 8; k++)
            b[4 + k] = (uint8_t)(wm >> (8 * k));
        memcpy(b + J_HEADER, j->b.data, j->b.len);
        ch->c_jparts[ch->n_j] = ch->parts[i].partition;
        ch->c_jseqs[ch->n_j] = ch->parts[i].jseq;
        ch->c_jbufs[ch->n_j] = b;
        ch->c_jlens[ch->n_j++] = J_HEADER + j->b.len;
    }
    c->n_journals = ch->n_j;
    c->journal_partitions = ch->c_jparts;
    c->journal_seqs = ch->c_jseqs;
    c->journal_bytes = (const uint8_t *const *)ch->c_jbufs;
    c->journal_lens = ch->c_jlens;
    return 0;
}

void chn_journals_done(chn_t *ch, int ok)
{
    for (size_t i = 0; i < ch->n_j; i++) {
        free(ch->c_jbufs[i]);
        chn_part_t *p = ok ? chn_part_find(ch, ch->c_jparts[i]) : NULL;
        if (p) {
            size_t k = 0;
            while (k < ch->n_j_known && ch->j_known[k] != p->partition)
                k++;
            if (k == ch->n_j_known &&
                CS_GROW(ch->j_known, ch->cap_j_known, ch->n_j_known + 1, 8) == 0)
                ch->j_known[ch->n_j_known++] = p->partition;
            log_debug("model",
                      "journal of partition %d: entry %llu committed (%llu rows, %zu bytes)",
                      (int)p->partition, (unsigned long long)p->jseq,
                      (unsigned long long)pl_journal(p->pl)->rows, ch->c_jlens[i]);
            p->jseq++;
            mj_clear(pl_journal(p->pl));
        }
    }
    ch->n_j = 0;
}
