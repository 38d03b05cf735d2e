/* Redis Cluster arithmetic without a connection: CRC16 (XMODEM), the hash tag rule and
 * key -> slot, as in the Redis Cluster specification, and the parsing of the redirection
 * errors (MOVED, ASK, TRYAGAIN, CLUSTERDOWN). Pure functions, unit tested against the
 * specification's vector and a real cluster's CLUSTER KEYSLOT. */
#include "redis_cluster.h"

#include <stdlib.h>
#include <string.h>

uint16_t rcl_crc16(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

void rcl_hash_part(const char *key, size_t len, const char **part, size_t *part_len)
{
    *part = key;
    *part_len = len;
    const char *open = memchr(key, '{', len);
    if (!open)
        return;
    size_t start = (size_t)(open - key) + 1;
    const char *close = memchr(key + start, '}', len - start);
    /* "{}" (nothing between) or no closing brace: the whole key is hashed. */
    if (!close || close == key + start)
        return;
    *part = key + start;
    *part_len = (size_t)(close - (key + start));
}

int rcl_keyslot(const char *key, size_t len)
{
    const char *p;
    size_t n;
    rcl_hash_part(key, len, &p, &n);
    return rcl_crc16(p, n) & (RCL_SLOTS - 1);
}

/* "<slot> <host>:<port>" after MOVED/ASK; the host may be an IPv6 address (last ':'). */
static int parse_target(const char *s, size_t len, rcl_redir_t *out)
{
    char buf[300];
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    long slot = strtol(buf, &end, 10);
    if (end == buf || *end != ' ' || slot < 0 || slot >= RCL_SLOTS)
        return -1;
    char *hp = end + 1;
    char *colon = strrchr(hp, ':');
    if (!colon || colon == hp)
        return -1;
    char *pend;
    long port = strtol(colon + 1, &pend, 10);
    if (pend == colon + 1 || (*pend != '\0' && *pend != ' ' && *pend != '\r') || port <= 0 ||
        port > 65535)
        return -1;
    size_t hl = (size_t)(colon - hp);
    if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') { /* [::1]:7000 */
        hp++;
        hl -= 2;
    }
    if (hl >= sizeof(out->host))
        return -1;
    memcpy(out->host, hp, hl);
    out->host[hl] = '\0';
    out->slot = (int)slot;
    out->port = (int)port;
    return 0;
}

static int starts(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(s, word, n) == 0 && (len == n || s[n] == ' ');
}

rcl_redir_kind_t rcl_parse_redirect(const char *err, size_t len, rcl_redir_t *out)
{
    memset(out, 0, sizeof(*out));
    out->slot = -1;
    if (!err)
        return RCL_REDIR_NONE;
    if (starts(err, len, "MOVED") || starts(err, len, "ASK")) {
        rcl_redir_kind_t k = err[0] == 'M' ? RCL_REDIR_MOVED : RCL_REDIR_ASK;
        size_t skip = k == RCL_REDIR_MOVED ? 6 : 4;
        if (len <= skip || parse_target(err + skip, len - skip, out) != 0) {
            memset(out, 0, sizeof(*out));
            out->slot = -1;
            return RCL_REDIR_NONE;
        }
        out->kind = k;
        return k;
    }
    if (starts(err, len, "TRYAGAIN"))
        out->kind = RCL_REDIR_TRYAGAIN;
    else if (starts(err, len, "CLUSTERDOWN"))
        out->kind = RCL_REDIR_CLUSTERDOWN;
    return out->kind;
}
