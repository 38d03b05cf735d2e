/* Exact ROC AUCs (Mann-Whitney, tied scores given their average rank) of one score column,
 * in bounded memory: the keys are buffered, and when the buffer is full it is sorted and
 * written as a run to an unlinked file under $TMPDIR (default /tmp); the AUCs come from one
 * k-way merge of the runs at the end. Several AUCs over subsets of the same keys (the whole
 * set, the second half of the ticks, ...) come from that one merge: a key's payload says
 * which subsets it belongs to.
 *
 * Memory: the buffer (at most buf_keys keys of 8 bytes, plus as many again while a run is
 * sorted) and, in the merge, one 32 KiB read buffer per run. Disk: 8 bytes per key. */
#ifndef CS_AUC_SPILL_H
#define CS_AUC_SPILL_H

#include <stddef.h>
#include <stdint.h>

#define AUC_SETS_MAX 5

/* The rank sums of up to AUC_SETS_MAX subsets over keys fed in ascending score order (the
 * score as cs_float_key): feed each key with the bitmask of the subsets it is in. The
 * results are those of sorting each subset alone, bit for bit (ranks are exact integers,
 * and the groups of tied scores are summed in the same order). */
typedef struct auc_acc_s {
    int nsets, has_group;
    uint32_t group_key;                              /* the current group's score */
    size_t m[AUC_SETS_MAX], pos[AUC_SETS_MAX];       /* its members and positives, per set */
    size_t rank[AUC_SETS_MAX];                       /* members before the group, per set */
    double rank_sum[AUC_SETS_MAX], n1[AUC_SETS_MAX]; /* positives' rank sum and count */
} auc_acc_t;

void auc_acc_init(auc_acc_t *a, int nsets);
void auc_acc_add(auc_acc_t *a, uint32_t score_key, unsigned members, int y);
/* out[0..nsets): each subset's AUC, NaN when it lacks a class. */
void auc_acc_result(auc_acc_t *a, double *out);

typedef struct auc_spill_s auc_spill_t;

/* A spill of at most buf_keys keys in memory (>= 1024). NULL on out of memory. */
auc_spill_t *as_new(size_t buf_keys);
/* Adds a score with its payload (bit 0: the label; the other bits the caller's). 0, or -1
 * with as_error (out of memory, the spill file could not be created or written). */
int as_add(auc_spill_t *s, float score, uint32_t payload);
/* The AUCs of nsets subsets (member(payload, ctx) gives a key's bitmask) into out[0..nsets).
 * Consumes the keys (the spill is empty after). 0, or -1 with as_error. */
int as_result(auc_spill_t *s, int nsets, unsigned (*member)(uint32_t payload, void *ctx), void *ctx,
              double *out);
/* Runs written to disk so far (0 while everything fits in the buffer). */
size_t as_runs(const auc_spill_t *s);
const char *as_error(const auc_spill_t *s);
void as_free(auc_spill_t *s);

#endif
