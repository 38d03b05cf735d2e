#!/usr/bin/env python3
"""For test_hostile_daemon.sh's forget case: reads a daemon's alert outbox from Redis with a
minimal RESP client (the values are binary: u16 LE user-id length, the user id, the alert).
  outbox_peek.py PORT PREFIX top-user   the user with the most alerts in the outbox that no
                                        daemon has claimed yet, and that count
  outbox_peek.py PORT PREFIX count      alerts in the outbox, claimed ones
"""
import collections
import socket
import sys


def command(sock, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    f = sock.makefile("rb")
    return read(f)


def read(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"*":
        return [read(f) for _ in range(int(rest))]
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b":":
        return int(rest)
    if kind == b"-":
        raise RuntimeError(rest.decode())
    return rest


def main():
    port, prefix, what = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        flat = command(s, b"HGETALL", prefix + b"outbox")
        claimed = set(command(s, b"SMEMBERS", prefix + b"outbox:sending"))
    outbox = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
    if what == "count":
        print(len(outbox), len(claimed & set(outbox)))
        return 0
    per_user = collections.Counter()
    claimed_users = set()
    for aid, v in outbox.items():
        uid = v[2:2 + int.from_bytes(v[:2], "little")].decode()
        if aid in claimed:
            claimed_users.add(uid)
        else:
            per_user[uid] += 1
    if not per_user:
        print("- 0")
        return 0
    uid, n = per_user.most_common(1)[0]
    print(uid, n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
