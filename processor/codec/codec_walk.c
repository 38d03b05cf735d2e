/* Bounds-checking walk over Avro binary before Avro-C sees it. Avro-C 1.11 mallocs a
 * string/bytes length straight from the wire (a 5-byte varint can ask for terabytes), loops
 * on huge block counts, negates INT64_MIN block counts, and has no way to report trailing
 * bytes. This walk checks every length, count, branch and symbol index against the writer
 * schema and the bytes left, so Avro-C only ever reads data whose shape is known good. */
#include "codec_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t type;         /* avro_type_t */
    uint8_t may_be_empty; /* encoded size can be 0 bytes (null, empty record) */
    uint32_t nkids;       /* record fields, union branches; array/map: 1 */
    uint32_t kid0;        /* first child in cs_walk_t.kids */
    int64_t size;         /* fixed: bytes; enum: number of symbols */
} walk_node_t;

#define WALK_MAX_NAMED 64

struct cs_walk_s {
    walk_node_t *nodes;
    uint32_t nnodes, nodes_cap;
    uint32_t *kids;
    uint32_t nkids, kids_cap;
    /* compile-time memo of named types, so recursive schemas compile to a cycle */
    avro_schema_t named[WALK_MAX_NAMED];
    uint32_t named_node[WALK_MAX_NAMED];
    int nnamed;
    int failed;
};

static int64_t node_new(cs_walk_t *w, avro_type_t type)
{
    if (w->nnodes == w->nodes_cap) {
        uint32_t cap = w->nodes_cap ? w->nodes_cap * 2 : 32;
        walk_node_t *n = realloc(w->nodes, cap * sizeof *n);
        if (!n)
            return -1;
        w->nodes = n;
        w->nodes_cap = cap;
    }
    walk_node_t *n = &w->nodes[w->nnodes];
    memset(n, 0, sizeof *n);
    n->type = (uint8_t)type;
    return w->nnodes++;
}

static int kids_append(cs_walk_t *w, const uint32_t *ids, uint32_t n, uint32_t *first)
{
    if (w->nkids + n > w->kids_cap) {
        uint32_t cap = w->kids_cap ? w->kids_cap : 32;
        while (cap < w->nkids + n)
            cap *= 2;
        uint32_t *k = realloc(w->kids, cap * sizeof *k);
        if (!k)
            return -1;
        w->kids = k;
        w->kids_cap = cap;
    }
    memcpy(w->kids + w->nkids, ids, n * sizeof *ids);
    *first = w->nkids;
    w->nkids += n;
    return 0;
}

static int64_t compile(cs_walk_t *w, avro_schema_t s, int depth);

/* Compiles n children given by get(s, i) and attaches them to node id. */
static int compile_kids(cs_walk_t *w, int64_t id, avro_schema_t s, size_t n,
                        avro_schema_t (*get)(avro_schema_t, size_t), int depth)
{
    uint32_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp)
        return -1;
    int empty = 1;
    for (size_t i = 0; i < n; i++) {
        int64_t k = compile(w, get(s, i), depth + 1);
        if (k < 0) {
            free(tmp);
            return -1;
        }
        tmp[i] = (uint32_t)k;
        empty = empty && w->nodes[k].may_be_empty;
    }
    uint32_t first = 0;
    int rc = kids_append(w, tmp, (uint32_t)n, &first);
    free(tmp);
    if (rc != 0)
        return -1;
    w->nodes[id].nkids = (uint32_t)n;
    w->nodes[id].kid0 = first;
    if (avro_typeof(s) == AVRO_RECORD)
        w->nodes[id].may_be_empty = (uint8_t)empty;
    return 0;
}

static avro_schema_t get_field(avro_schema_t s, size_t i)
{
    return avro_schema_record_field_get_by_index(s, (int)i);
}
static avro_schema_t get_branch(avro_schema_t s, size_t i)
{
    return avro_schema_union_branch(s, (int)i);
}
static avro_schema_t get_items(avro_schema_t s, size_t i)
{
    (void)i;
    return avro_schema_array_items(s);
}
static avro_schema_t get_values(avro_schema_t s, size_t i)
{
    (void)i;
    return avro_schema_map_values(s);
}

static int64_t compile(cs_walk_t *w, avro_schema_t s, int depth)
{
    if (depth > CS_WALK_MAX_DEPTH)
        return -1;
    s = cs_schema_unlink(s);
    avro_type_t t = avro_typeof(s);
    int named = t == AVRO_RECORD || t == AVRO_ENUM || t == AVRO_FIXED;
    if (named) {
        for (int i = 0; i < w->nnamed; i++)
            if (w->named[i] == s)
                return w->named_node[i];
    }
    int64_t id = node_new(w, t);
    if (id < 0)
        return -1;
    if (named) {
        if (w->nnamed == WALK_MAX_NAMED)
            return -1;
        w->named[w->nnamed] = s;
        w->named_node[w->nnamed++] = (uint32_t)id;
    }
    switch (t) {
    case AVRO_NULL:
        w->nodes[id].may_be_empty = 1;
        return id;
    case AVRO_BOOLEAN:
    case AVRO_INT32:
    case AVRO_INT64:
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
    case AVRO_BYTES:
    case AVRO_STRING:
        return id;
    case AVRO_FIXED:
        w->nodes[id].size = avro_schema_fixed_size(s);
        w->nodes[id].may_be_empty = w->nodes[id].size == 0;
        return id;
    case AVRO_ENUM:
        w->nodes[id].size = avro_schema_enum_number_of_symbols(s);
        return id;
    case AVRO_RECORD:
        return compile_kids(w, id, s, avro_schema_record_size(s), get_field, depth) ? -1 : id;
    case AVRO_UNION:
        return compile_kids(w, id, s, avro_schema_union_size(s), get_branch, depth) ? -1 : id;
    case AVRO_ARRAY:
        return compile_kids(w, id, s, 1, get_items, depth) ? -1 : id;
    case AVRO_MAP:
        return compile_kids(w, id, s, 1, get_values, depth) ? -1 : id;
    default:
        return -1;
    }
}

cs_walk_t *cs_walk_new(avro_schema_t writer, char *errstr, size_t errstr_size)
{
    cs_walk_t *w = calloc(1, sizeof *w);
    if (!w || compile(w, writer, 0) != 0) {
        /* the root is always node 0, so success returns exactly 0 */
        snprintf(errstr, errstr_size,
                 "writer schema too deep, too many named types or unsupported type");
        cs_walk_destroy(w);
        return NULL;
    }
    return w;
}

void cs_walk_destroy(cs_walk_t *w)
{
    if (!w)
        return;
    free(w->nodes);
    free(w->kids);
    free(w);
}

static int need(cs_cursor_t *c, int64_t n, const char *what)
{
    if (n < 0 || n > c->end - c->p)
        return cs_cursor_fail(c, what);
    c->p += n;
    return 0;
}

static int walk(const cs_walk_t *w, uint32_t id, cs_cursor_t *c, int depth)
{
    const walk_node_t *n = &w->nodes[id];
    int64_t v;
    if (depth > CS_WALK_MAX_DEPTH)
        return cs_cursor_fail(c, "nesting too deep");
    switch ((avro_type_t)n->type) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        if (c->p >= c->end)
            return cs_cursor_fail(c, "truncated boolean");
        if (*c->p > 1)
            return cs_cursor_fail(c, "boolean not 0 or 1");
        c->p++;
        return 0;
    case AVRO_INT32:
        return cs_read_varint(c, 5, &v);
    case AVRO_INT64:
        return cs_read_varint(c, 10, &v);
    case AVRO_FLOAT:
        return need(c, 4, "truncated float");
    case AVRO_DOUBLE:
        return need(c, 8, "truncated double");
    case AVRO_BYTES:
    case AVRO_STRING:
        if (cs_read_varint(c, 10, &v))
            return -1;
        return need(c, v, v < 0 ? "negative string/bytes length" : "string/bytes length past end");
    case AVRO_FIXED:
        return need(c, n->size, "truncated fixed");
    case AVRO_ENUM:
        if (cs_read_varint(c, 5, &v))
            return -1;
        return (v < 0 || v >= n->size) ? cs_cursor_fail(c, "enum index out of range") : 0;
    case AVRO_RECORD:
        for (uint32_t i = 0; i < n->nkids; i++)
            if (walk(w, w->kids[n->kid0 + i], c, depth + 1))
                return -1;
        return 0;
    case AVRO_UNION:
        if (cs_read_varint(c, 10, &v))
            return -1;
        if (v < 0 || v >= (int64_t)n->nkids)
            return cs_cursor_fail(c, "union branch out of range");
        return walk(w, w->kids[n->kid0 + (uint32_t)v], c, depth + 1);
    case AVRO_ARRAY:
    case AVRO_MAP: {
        uint32_t item = w->kids[n->kid0];
        int item_empty = w->nodes[item].may_be_empty && n->type == AVRO_ARRAY;
        for (;;) {
            int64_t count, block_bytes;
            if (cs_read_varint(c, 10, &count))
                return -1;
            if (count == 0)
                return 0;
            if (count < 0) {
                if (count == INT64_MIN)
                    return cs_cursor_fail(c, "block count out of range");
                count = -count;
                if (cs_read_varint(c, 10, &block_bytes))
                    return -1;
                if (block_bytes < 0 || block_bytes > c->end - c->p)
                    return cs_cursor_fail(c, "block size past end");
            }
            /* every item of a non-empty type costs at least one byte */
            if (item_empty ? count > CS_WALK_MAX_EMPTY_ITEMS : count > c->end - c->p)
                return cs_cursor_fail(c, "block count past end");
            for (int64_t i = 0; i < count; i++) {
                if (n->type == AVRO_MAP) {
                    if (cs_read_varint(c, 10, &v) ||
                        need(c, v, v < 0 ? "negative map key length" : "map key past end"))
                        return -1;
                }
                if (walk(w, item, c, depth + 1))
                    return -1;
            }
        }
    }
    default:
        return cs_cursor_fail(c, "unsupported type");
    }
}

int cs_walk_field(const cs_walk_t *w, size_t i, cs_cursor_t *c)
{
    return walk(w, w->kids[w->nodes[0].kid0 + i], c, 1);
}

size_t cs_walk_fields(const cs_walk_t *w)
{
    return w->nodes[0].nkids;
}

int64_t cs_walk_check(const cs_walk_t *w, const uint8_t *buf, size_t len, char *why,
                      size_t why_size)
{
    cs_cursor_t c = {buf, buf, buf + len, why, why_size};
    if (walk(w, 0, &c, 0) != 0)
        return -1;
    return c.p - c.start;
}
