/* Schemas for the codec: the built-in reader schema (schemas/event.avsc, embedded by the
 * Makefile into $(BUILD)/gen/event_avsc.h), schema files, and the Parsing Canonical Form with
 * its CRC-64-AVRO fingerprint, which Avro-C 1.11 does not compute. */
#include "codec_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_avsc.h" /* defines cs_event_avsc_json[] */

/* Avro-C allocates whatever a length in its input says (a string, a block) before it knows
 * the input is that long; one mutated byte asks for exabytes (ASan: allocation-size-too-big,
 * a plain build: a failed malloc). Nothing churnstream reads legitimately needs more than
 * this in one piece, so larger requests fail and Avro-C reports an error. Same semantics as
 * Avro-C's default allocator otherwise (realloc/free), so memory allocated before the cap
 * was installed is freed correctly. */
#define CS_AVRO_MAX_ALLOC_BYTES ((size_t)256 << 20)

static void *capped_alloc(void *user_data, void *ptr, size_t osize, size_t nsize)
{
    (void)user_data;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (nsize > CS_AVRO_MAX_ALLOC_BYTES)
        return NULL;
    return realloc(ptr, nsize);
}

static pthread_once_t cap_once = PTHREAD_ONCE_INIT;
static void cap_install(void)
{
    avro_set_allocator(capped_alloc, NULL);
}

void cs_avro_cap_allocations(void)
{
    pthread_once(&cap_once, cap_install);
}

avro_schema_t cs_reader_schema_new(char *errstr, size_t errstr_size)
{
    cs_avro_cap_allocations();
    avro_schema_t s = NULL;
    if (avro_schema_from_json_length(cs_event_avsc_json, strlen(cs_event_avsc_json), &s) != 0) {
        snprintf(errstr, errstr_size, "built-in schemas/event.avsc: %s", avro_strerror());
        return NULL;
    }
    return s;
}

/* Schema files are small; anything above this is not a schema and is refused before it
 * is read into memory. */
#define CS_SCHEMA_FILE_MAX_BYTES (1 << 20)

avro_schema_t cs_schema_load_file(const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *json = malloc(CS_SCHEMA_FILE_MAX_BYTES + 1);
    size_t n = json ? fread(json, 1, CS_SCHEMA_FILE_MAX_BYTES + 1, f) : 0;
    int read_err = ferror(f);
    fclose(f);
    if (!json || read_err || n > CS_SCHEMA_FILE_MAX_BYTES) {
        snprintf(errstr, errstr_size, "%s: %s", path,
                 !json      ? "out of memory"
                 : read_err ? "read error"
                            : "larger than 1 MiB");
        free(json);
        return NULL;
    }
    json[n] = '\0';
    avro_schema_t s = NULL;
    if (avro_schema_from_json_length(json, n, &s) != 0) {
        snprintf(errstr, errstr_size, "%s: not a valid Avro schema: %s", path, avro_strerror());
        s = NULL;
    }
    free(json);
    return s;
}

/* ---- Parsing Canonical Form (Avro spec 1.11, "Parsing Canonical Form for Schemas") ----
 * [STRIP] docs, aliases, defaults, logicalType and every other attribute; [FULLNAMES];
 * [ORDER] name, type, fields, symbols, items, values, size; [PRIMITIVES] as bare strings;
 * a named type already written is referenced by its fullname. Avro-C only accepts names
 * matching [A-Za-z_][A-Za-z0-9_]*, so no string needs JSON escaping. */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
    avro_schema_t seen[64]; /* named types already written (fullname references) */
    int nseen;
} pcf_buf_t;

static void pcf_put(pcf_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 512;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void pcf_fullname(pcf_buf_t *b, avro_schema_t s)
{
    const char *ns = avro_schema_namespace(s);
    pcf_put(b, "\"");
    if (ns && *ns) {
        pcf_put(b, ns);
        pcf_put(b, ".");
    }
    pcf_put(b, avro_schema_name(s));
    pcf_put(b, "\"");
}

/* Returns 1 when s was written before (and writes the reference), else records it. */
static int pcf_named_ref(pcf_buf_t *b, avro_schema_t s)
{
    for (int i = 0; i < b->nseen; i++) {
        if (b->seen[i] == s) {
            pcf_fullname(b, s);
            return 1;
        }
    }
    if (b->nseen == (int)(sizeof b->seen / sizeof b->seen[0]))
        b->oom = 1; /* absurdly many named types: refuse rather than mis-fingerprint */
    else
        b->seen[b->nseen++] = s;
    return 0;
}

/* The canonical form of a primitive type ("\"string\"", ...), NULL for the others. */
static const char *pcf_primitive(avro_type_t t)
{
    switch (t) {
    case AVRO_STRING:
        return "\"string\"";
    case AVRO_BYTES:
        return "\"bytes\"";
    case AVRO_INT32:
        return "\"int\"";
    case AVRO_INT64:
        return "\"long\"";
    case AVRO_FLOAT:
        return "\"float\"";
    case AVRO_DOUBLE:
        return "\"double\"";
    case AVRO_BOOLEAN:
        return "\"boolean\"";
    case AVRO_NULL:
        return "\"null\"";
    default:
        return NULL;
    }
}

static void pcf_write(pcf_buf_t *b, avro_schema_t s, int depth)
{
    char num[32];
    if (b->oom || depth > CS_WALK_MAX_DEPTH) {
        b->oom = 1;
        return;
    }
    const char *prim = pcf_primitive(avro_typeof(s));
    if (prim) {
        pcf_put(b, prim);
        return;
    }
    switch (avro_typeof(s)) {
    case AVRO_LINK:
        pcf_fullname(b, avro_schema_link_target(s));
        return;
    case AVRO_RECORD: {
        if (pcf_named_ref(b, s))
            return;
        pcf_put(b, "{\"name\":");
        pcf_fullname(b, s);
        pcf_put(b, ",\"type\":\"record\",\"fields\":[");
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++) {
            pcf_put(b, i ? ",{\"name\":\"" : "{\"name\":\"");
            pcf_put(b, avro_schema_record_field_name(s, (int)i));
            pcf_put(b, "\",\"type\":");
            pcf_write(b, avro_schema_record_field_get_by_index(s, (int)i), depth + 1);
            pcf_put(b, "}");
        }
        pcf_put(b, "]}");
        return;
    }
    case AVRO_ENUM: {
        if (pcf_named_ref(b, s))
            return;
        pcf_put(b, "{\"name\":");
        pcf_fullname(b, s);
        pcf_put(b, ",\"type\":\"enum\",\"symbols\":[");
        int n = avro_schema_enum_number_of_symbols(s);
        for (int i = 0; i < n; i++) {
            pcf_put(b, i ? ",\"" : "\"");
            pcf_put(b, avro_schema_enum_get(s, i));
            pcf_put(b, "\"");
        }
        pcf_put(b, "]}");
        return;
    }
    case AVRO_FIXED:
        if (pcf_named_ref(b, s))
            return;
        pcf_put(b, "{\"name\":");
        pcf_fullname(b, s);
        snprintf(num, sizeof num, "%lld", (long long)avro_schema_fixed_size(s));
        pcf_put(b, ",\"type\":\"fixed\",\"size\":");
        pcf_put(b, num);
        pcf_put(b, "}");
        return;
    case AVRO_ARRAY:
        pcf_put(b, "{\"type\":\"array\",\"items\":");
        pcf_write(b, avro_schema_array_items(s), depth + 1);
        pcf_put(b, "}");
        return;
    case AVRO_MAP:
        pcf_put(b, "{\"type\":\"map\",\"values\":");
        pcf_write(b, avro_schema_map_values(s), depth + 1);
        pcf_put(b, "}");
        return;
    case AVRO_UNION: {
        pcf_put(b, "[");
        size_t n = avro_schema_union_size(s);
        for (size_t i = 0; i < n; i++) {
            if (i)
                pcf_put(b, ",");
            pcf_write(b, avro_schema_union_branch(s, (int)i), depth + 1);
        }
        pcf_put(b, "]");
        return;
    }
    default:
        b->oom = 1;
        return;
    }
}

char *cs_schema_canonical_form(avro_schema_t schema)
{
    pcf_buf_t b;
    memset(&b, 0, sizeof b);
    pcf_write(&b, schema, 0);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* CRC-64-AVRO: the spec's reference algorithm, table built on each call (load time only). */
#define CS_RABIN_EMPTY 0xc15d213aa4d7a795ULL

uint64_t cs_rabin64(const void *buf, size_t len)
{
    uint64_t table[256];
    for (int i = 0; i < 256; i++) {
        uint64_t fp = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (CS_RABIN_EMPTY & (0 - (fp & 1)));
        table[i] = fp;
    }
    const uint8_t *p = buf;
    uint64_t fp = CS_RABIN_EMPTY;
    for (size_t i = 0; i < len; i++)
        fp = (fp >> 8) ^ table[(fp ^ p[i]) & 0xff];
    return fp;
}

int cs_schema_fingerprint(avro_schema_t schema, uint64_t *out)
{
    char *pcf = cs_schema_canonical_form(schema);
    if (!pcf)
        return -1;
    *out = cs_rabin64(pcf, strlen(pcf));
    free(pcf);
    return 0;
}

avro_schema_t cs_schema_unlink(avro_schema_t s)
{
    while (s && avro_typeof(s) == AVRO_LINK)
        s = avro_schema_link_target(s);
    return s;
}
