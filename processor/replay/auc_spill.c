/* Exact AUCs by external merge sort (see auc_spill.h). A key is the score's cs_float_key in
 * its upper 32 bits and the caller's payload in the lower ones; only the upper half is
 * sorted on (the order inside a group of tied scores does not change a rank sum). */
#include "auc_spill.h"

#include "grow.h"
#include "radix.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_KEYS 4096 /* one run's read buffer in the merge: 32 KiB */

#define KEY_SCORE(k) ((uint32_t)((k) >> 32))

void auc_acc_init(auc_acc_t *a, int nsets)
{
    memset(a, 0, sizeof(*a));
    a->nsets = nsets;
}

static void acc_flush(auc_acc_t *a)
{
    for (int s = 0; s < a->nsets; s++) {
        size_t m = a->m[s], rank = a->rank[s];
        if (!m)
            continue;
        double avg_rank = (double)(rank + 1 + rank + m) / 2.0; /* ranks rank+1 .. rank+m */
        a->rank_sum[s] += avg_rank * (double)a->pos[s];
        a->n1[s] += (double)a->pos[s];
        a->rank[s] += m;
        a->m[s] = a->pos[s] = 0;
    }
}

void auc_acc_add(auc_acc_t *a, uint32_t score_key, unsigned members, int y)
{
    if (a->has_group && score_key != a->group_key)
        acc_flush(a);
    a->has_group = 1;
    a->group_key = score_key;
    for (int s = 0; s < a->nsets; s++) {
        if (members & (1u << s)) {
            a->m[s]++;
            a->pos[s] += (size_t)(y != 0);
        }
    }
}

void auc_acc_result(auc_acc_t *a, double *out)
{
    acc_flush(a);
    a->has_group = 0;
    for (int s = 0; s < a->nsets; s++) {
        double n1 = a->n1[s], n0 = (double)a->rank[s] - n1;
        out[s] = n1 == 0 || n0 == 0 ? NAN : (a->rank_sum[s] - n1 * (n1 + 1) / 2) / (n1 * n0);
    }
}

typedef struct run_s {
    off_t off; /* where its keys start in the file */
    size_t n;  /* its keys */
} run_t;

struct auc_spill_s {
    uint64_t *buf; /* keys not yet spilled, unsorted */
    size_t n, cap, max;
    int fd; /* -1 until the first spill */
    off_t end;
    run_t *runs;
    size_t nruns, capruns;
    char err[256];
};

auc_spill_t *as_new(size_t buf_keys)
{
    auc_spill_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->max = buf_keys < 1024 ? 1024 : buf_keys;
    s->fd = -1;
    return s;
}

size_t as_runs(const auc_spill_t *s)
{
    return s->nruns;
}

const char *as_error(const auc_spill_t *s)
{
    return s->err;
}

void as_free(auc_spill_t *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->buf);
    free(s->runs);
    free(s);
}

static uint64_t key_score(const uint64_t *k, int word)
{
    (void)word;
    return *k & ~(uint64_t)0xffffffffu;
}

/* Sorts buf[0..n) by score, ascending. -1 on out of memory. */
static int sort_keys(uint64_t *buf, size_t n)
{
    if (n < 2)
        return 0;
    uint64_t *tmp = malloc(n * sizeof(*tmp));
    size_t(*count)[256] = calloc(8, sizeof(*count));
    if (tmp && count)
        CS_RADIX_SORT(uint64_t, buf, tmp, n, 1, count, key_score);
    free(count);
    free(tmp);
    return tmp && count ? 0 : -1;
}

static int open_spill(auc_spill_t *s)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/churnstream-auc-XXXXXX", dir && *dir ? dir : "/tmp");
    s->fd = mkstemp(path);
    if (s->fd < 0) {
        snprintf(s->err, sizeof s->err, "cannot create a metrics spill file in %s: %s",
                 dir && *dir ? dir : "/tmp", strerror(errno));
        return -1;
    }
    unlink(path); /* gone from the directory; the space is freed when the fd closes */
    return 0;
}

/* Sorts the buffer and appends it to the file as one run. */
static int spill(auc_spill_t *s)
{
    if (s->fd < 0 && open_spill(s) != 0)
        return -1;
    if (sort_keys(s->buf, s->n) != 0 || CS_GROW(s->runs, s->capruns, s->nruns + 1, 16) != 0) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return -1;
    }
    const char *p = (const char *)s->buf;
    size_t left = s->n * sizeof(*s->buf);
    off_t at = s->end;
    while (left > 0) {
        ssize_t w = pwrite(s->fd, p, left, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(s->err, sizeof s->err, "metrics spill file: write failed: %s",
                     w < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        p += w;
        left -= (size_t)w;
        at += w;
    }
    s->runs[s->nruns++] = (run_t){.off = s->end, .n = s->n};
    s->end = at;
    s->n = 0;
    return 0;
}

int as_add(auc_spill_t *s, float score, uint32_t payload)
{
    if (s->n == s->cap) {
        if (s->cap == s->max) {
            if (spill(s) != 0)
                return -1;
        } else {
            size_t cap = s->cap ? s->cap * 2 : 1024;
            if (cap > s->max)
                cap = s->max;
            uint64_t *p = realloc(s->buf, cap * sizeof(*p));
            if (!p) {
                snprintf(s->err, sizeof s->err, "out of memory");
                return -1;
            }
            s->buf = p;
            s->cap = cap;
        }
    }
    s->buf[s->n++] = (uint64_t)cs_float_key(score) << 32 | payload;
    return 0;
}

/* One run's cursor in the merge: its unread keys are buf[pos..len) then left on disk. */
typedef struct reader_s {
    uint64_t *buf;
    size_t pos, len, left;
    off_t off;
} reader_t;

static int reader_fill(auc_spill_t *s, reader_t *r)
{
    size_t want = r->left < READ_KEYS ? r->left : READ_KEYS, got = 0;
    while (got < want * sizeof(uint64_t)) {
        ssize_t n = pread(s->fd, (char *)r->buf + got, want * sizeof(uint64_t) - got, r->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(s->err, sizeof s->err, "metrics spill file: read failed: %s",
                     n < 0 ? strerror(errno) : "short file");
            return -1;
        }
        got += (size_t)n;
        r->off += n;
    }
    r->pos = 0;
    r->len = want;
    r->left -= want;
    return 0;
}

static uint32_t reader_score(const reader_t *r)
{
    return KEY_SCORE(r->buf[r->pos]);
}

/* Min-heap of reader indices by their current score. */
static void heap_down(reader_t *rd, size_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && reader_score(&rd[h[l]]) < reader_score(&rd[h[m]]))
            m = l;
        if (l + 1 < n && reader_score(&rd[h[l + 1]]) < reader_score(&rd[h[m]]))
            m = l + 1;
        if (m == i)
            return;
        size_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* The k-way merge of the runs on disk and the sorted buffer (a run in memory). */
static int merge(auc_spill_t *s, auc_acc_t *acc, unsigned (*member)(uint32_t, void *), void *ctx)
{
    size_t k = s->nruns + 1, nh = 0;
    reader_t *rd = calloc(k, sizeof(*rd));
    size_t *heap = calloc(k, sizeof(*heap));
    uint64_t *bufs = malloc((s->nruns ? s->nruns : 1) * READ_KEYS * sizeof(*bufs));
    int rc = -1;
    if (!rd || !heap || !bufs) {
        snprintf(s->err, sizeof s->err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < s->nruns; i++) {
        rd[i] =
            (reader_t){.buf = bufs + i * READ_KEYS, .left = s->runs[i].n, .off = s->runs[i].off};
        if (reader_fill(s, &rd[i]) != 0)
            goto out;
    }
    rd[s->nruns] = (reader_t){.buf = s->buf, .len = s->n};
    for (size_t i = 0; i < k; i++)
        if (rd[i].pos < rd[i].len)
            heap[nh++] = i;
    for (size_t i = nh; i-- > 0;)
        heap_down(rd, heap, nh, i);
    while (nh > 0) {
        reader_t *r = &rd[heap[0]];
        uint64_t key = r->buf[r->pos++];
        uint32_t payload = (uint32_t)key;
        auc_acc_add(acc, KEY_SCORE(key), member(payload, ctx), (int)(payload & 1u));
        if (r->pos == r->len && r->left > 0 && reader_fill(s, r) != 0)
            goto out;
        if (r->pos == r->len)
            heap[0] = heap[--nh];
        heap_down(rd, heap, nh, 0);
    }
    rc = 0;
out:
    free(bufs);
    free(heap);
    free(rd);
    return rc;
}

int as_result(auc_spill_t *s, int nsets, unsigned (*member)(uint32_t payload, void *ctx), void *ctx,
              double *out)
{
    auc_acc_t acc;
    auc_acc_init(&acc, nsets);
    if (sort_keys(s->buf, s->n) != 0) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return -1;
    }
    if (merge(s, &acc, member, ctx) != 0)
        return -1;
    auc_acc_result(&acc, out);
    s->n = s->nruns = 0;
    s->end = 0; /* the next runs overwrite the file from its start */
    return 0;
}
