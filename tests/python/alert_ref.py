"""An independent Python reference of the alert id and holdout arm definitions
(processor/alerts/alert_id.c): SipHash-2-4 (Aumasson & Bernstein) and the two derivations, shared by
the alert tests so both check the C code against one reimplementation."""
import struct

M64 = (1 << 64) - 1


def siphash24(key, msg):
    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & M64

    def rnd():
        v[0] = (v[0] + v[1]) & M64; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M64; v[3] = rotl(v[3], 16); v[3] ^= v[2]
        v[0] = (v[0] + v[3]) & M64; v[3] = rotl(v[3], 21); v[3] ^= v[0]
        v[2] = (v[2] + v[1]) & M64; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32)

    tail = len(msg) % 8
    blocks = msg[:len(msg) - tail] + msg[len(msg) - tail:] + bytes(8 - tail - 1) + bytes([len(msg) & 0xFF])
    for (m,) in struct.iter_unpack("<Q", blocks):
        v[3] ^= m
        rnd(); rnd()
        v[0] ^= m
    v[2] ^= 0xFF
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def alert_id(msg):
    """32 hex digits: two SipHash halves of b"tick|<uid>|<tick_ms>" or b"event|<p>|<off>"."""
    return "%016x%016x" % (siphash24(b"cs-alert-id-hi-0", msg), siphash24(b"cs-alert-id-lo-0", msg))


def arm_of(salt, uid, holdout_percent):
    """holdout when SipHash(salt 0x00 uid) % 10000 < percent in basis points."""
    h = siphash24(b"cs-holdout-arm-0", salt + b"\x00" + uid.encode())
    return "holdout" if h % 10000 < round(holdout_percent * 100) else "treatment"
