#!/usr/bin/env python3
"""Generate the known answers for ringkv's placement rule.

This script is a second, deliberately plain implementation of the placement
rule, written against the rule's definition rather than against the crate. The
integration test `tests/placement.rs` compares the crate with its output, so a
disagreement means one of the two misreads the rule. The script needs only the
Python 3 standard library; run it from anywhere:

    python3 tests/vectors/gen_vectors.py

It rewrites `placement.json` beside itself. The output depends on nothing but
this file, so running it twice gives byte-identical JSON.

The placement rule
------------------
* The position of a byte string `s` on the ring is its MD5 digest read as a
  128-bit big-endian integer, modulo 2**32; that is, the last four bytes of the
  digest read big-endian.
* A server with id `id` owns K vnodes, named `f"{id}-{i}"` for i in 0..K. Each
  vnode sits at the position of its name's UTF-8 bytes.
* The ring orders vnodes by (position, server id compared byte-wise, i).
* A key's preference list starts at the first vnode whose position is strictly
  greater than the key's position, wrapping to the first vnode past the end.
  It walks clockwise and collects each server the first time one of its vnodes
  is passed, stopping once min(R, N) servers are collected (N = server count).
  The list keeps walk order: its first entry is the primary replica.

Format of placement.json
------------------------
{
  "rule": str,                  # the rule above in one sentence, for readers
  "generator": str,             # how to regenerate the file
  "positions": [                # ring positions of assorted byte strings
    {"key_hex": str,            # the bytes, lowercase hex ("" for empty)
     "position": int,           # their ring position, 0 <= position < 2**32
     "note": str}, ...          # why this string is here
  ],
  "cases": [                    # cluster configurations
    {"name": str,
     "servers": [str, ...],     # server ids in the order to pass them in; not
                                # sorted, so that order must not matter
     "vnodes": int,             # K
     "replication": int,        # R, possibly larger than N
     "ring": [[position, id, i], ...],
                                # every vnode in ring order; present only when
                                # N <= 5, to let a reader trace a walk by hand
     "keys": [
       {"key_hex": str,
        "position": int,        # the key's ring position
        "replicas": [str, ...], # the expected preference list, in walk order
        "note": str}, ...       # why this key is here
     ]}, ...
  ]
}

Edge cases the vectors pin down
-------------------------------
* The empty key, non-UTF-8 bytes, a 256-byte key and multi-byte UTF-8.
* Keys whose position equals a vnode's position exactly. A vnode's own name
  hashes to that vnode's position, so using the name as the key lands exactly
  on it; the walk must begin at the next vnode, not at this one.
* The key that lands on the last vnode in ring order, whose walk must wrap to
  the first vnode.
* R larger than N, where the list is clamped to all N servers.
* Two vnodes at the same position. `t9695-0` and `t123259-0` both hash to
  3887920449 (found by a birthday search over names `t{n}-0`), so the
  tie-break on server id decides their order. Byte-wise, "t123259" sorts
  before "t9695", the opposite of both numeric and length order, so a ring that
  breaks ties any other way disagrees with these vectors.
* Server ids of varied length, with dashes, and with upper case letters, which
  sort before lower case ones byte-wise.
"""

import hashlib
import json
import os

RING_SIZE = 2**32

# The two vnode names that collide; see "Edge cases" above.
TIE_IDS = ("t9695", "t123259")
TIE_POSITION = 3887920449


def ring_position(data):
    """Position of `data` (bytes) on the ring, straight from the definition."""
    return int(hashlib.md5(data).hexdigest(), 16) % RING_SIZE


def vnode_name(server, i):
    return f"{server}-{i}".encode("utf-8")


def build_ring(servers, vnodes):
    """All vnodes as (position, id, i), in ring order.

    The id is compared as UTF-8 bytes so the order is byte-wise even for ids
    outside ASCII (for UTF-8 this equals code point order, but bytes say so
    directly).
    """
    ring = [(ring_position(vnode_name(s, i)), s, i) for s in servers for i in range(vnodes)]
    ring.sort(key=lambda v: (v[0], v[1].encode("utf-8"), v[2]))
    return ring


def first_vnode_after(ring, position):
    """Index of the first vnode strictly past `position`, wrapping to 0.

    A linear scan keeps this an obviously correct transcription of the rule;
    the rings here hold at most a thousand vnodes.
    """
    for index, (vnode_position, _, _) in enumerate(ring):
        if vnode_position > position:
            return index
    return 0


def preference_list(ring, server_count, replication, key):
    """The expected replicas of `key`, in walk order."""
    want = min(replication, server_count)
    start = first_vnode_after(ring, ring_position(key))
    found = []
    for step in range(len(ring)):
        _, server, _ = ring[(start + step) % len(ring)]
        if server not in found:
            found.append(server)
            if len(found) == want:
                break
    return found


def position_vectors():
    """Assorted byte strings and their positions, each with a reason."""
    entries = [
        (b"", "empty string"),
        (b"a", "single ASCII byte"),
        (b"b", "single ASCII byte"),
        (b"A", "upper case differs from lower case"),
        (b"0", "ASCII digit"),
        (b" ", "space"),
        (b"hello", "ASCII word"),
        (b"world", "ASCII word"),
        (b"ringkv", "ASCII word"),
        (b"replica", "ASCII word"),
        (b"The quick brown fox jumps over the lazy dog", "classic MD5 test phrase"),
        (b"user:42", "key with punctuation"),
        (b"user:43", "differs from the previous in one byte"),
        (b"a-0", "vnode name"),
        (b"a-1", "vnode name"),
        (b"a-9", "vnode name"),
        (b"a-10", "vnode name with two-digit index"),
        (b"s0-0", "vnode name"),
        (b"s99-9", "vnode name"),
        (b"node-10-3", "vnode name of an id that contains a dash"),
        (b"alpha-0", "vnode name"),
        (b"t9695-0", "collides with t123259-0"),
        (b"t123259-0", "collides with t9695-0"),
        (b"\x00", "single zero byte"),
        (b"\x00\x00\x00\x00", "four zero bytes"),
        (b"\xff", "single 0xff byte, not UTF-8"),
        (b"\xff\xfe\xfd\xfc", "descending high bytes, not UTF-8"),
        (b"\x80abc", "stray continuation byte, not UTF-8"),
        (b"\xc3\x28", "invalid two-byte UTF-8 sequence"),
        (b"a\x00b", "embedded zero byte"),
        (b"\n", "newline"),
        (bytes(range(16)), "bytes 0 to 15"),
        (bytes(range(256)), "all 256 byte values, a 256-byte key"),
        (b"x" * 1000, "1000 bytes, longer than the default key limit"),
        ("ключ".encode("utf-8"), "Cyrillic, two bytes per character"),
        ("鍵".encode("utf-8"), "CJK, three bytes"),
        ("🔑".encode("utf-8"), "emoji, four bytes"),
        ("café".encode("utf-8"), "precomposed e-acute"),
        ("cafe\u0301".encode("utf-8"), "e plus combining acute; other bytes, other position"),
        ("ñode-0".encode("utf-8"), "vnode-style name with a non-ASCII id"),
    ]
    return [
        {"key_hex": data.hex(), "position": ring_position(data), "note": note}
        for data, note in entries
    ]


# Keys tried in every case, beyond the ones chosen from the case's own ring.
COMMON_KEYS = [
    (b"", "empty key"),
    (b"a", "single byte"),
    (b"hello", "ASCII word"),
    (b"user:42", "typical key"),
    (b"\x00", "zero byte"),
    (b"\xff\xfe\xfd\xfc", "not UTF-8"),
    (bytes(range(256)), "256-byte key"),
    ("ключ".encode("utf-8"), "multi-byte UTF-8"),
    ("🔑".encode("utf-8"), "four-byte UTF-8"),
]

KEYS_PER_CASE = 30


def chosen_vnodes(ring):
    """Indices of the vnodes whose names become keys in a case.

    The first and last vnode in ring order are always chosen (the last one
    forces a wrap), plus evenly spread ones and every vnode at the tie
    position, up to six in all.
    """
    picks = [0, len(ring) - 1]
    picks += [len(ring) * k // 4 for k in (1, 2, 3)]
    picks += [index for index, v in enumerate(ring) if v[0] == TIE_POSITION]
    unique = []
    for index in picks:
        if index not in unique:
            unique.append(index)
    return unique


def probe_landing_on(ring, target):
    """A deterministic key whose walk starts at vnode index `target`.

    Such a key sits in the arc just before that vnode, so it checks the arc
    boundary from the other side than the vnode-name keys do. Returns None if
    no probe among the first 20000 lands there, which happens only for
    very short arcs.
    """
    for n in range(20000):
        key = f"probe-{n}".encode("utf-8")
        if first_vnode_after(ring, ring_position(key)) == target:
            return key
    return None


def case(name, servers, vnodes, replication):
    ring = build_ring(servers, vnodes)
    keys = list(COMMON_KEYS)

    for index in chosen_vnodes(ring):
        position, server, i = ring[index]
        label = vnode_name(server, i).decode("utf-8")
        if position == TIE_POSITION:
            note = f"the name of tied vnode {label}; the walk skips both tied vnodes"
        elif index == len(ring) - 1:
            note = f"the name of the last vnode, {label}; the walk wraps to the first vnode"
        else:
            note = f"the name of vnode {index} in ring order, {label}; the walk starts after it"
        keys.append((vnode_name(server, i), note))
        probe = probe_landing_on(ring, index)
        if probe is not None:
            keys.append((probe, f"lands just before vnode {server}-{i}, so the walk starts there"))

    n = 0
    while len(keys) < KEYS_PER_CASE:
        keys.append((f"key-{n}".encode("utf-8"), "filler"))
        n += 1

    out = {
        "name": name,
        "servers": servers,
        "vnodes": vnodes,
        "replication": replication,
    }
    if len(servers) <= 5:
        out["ring"] = [[position, server, i] for position, server, i in ring]
    out["keys"] = [
        {
            "key_hex": key.hex(),
            "position": ring_position(key),
            "replicas": preference_list(ring, len(servers), replication, key),
            "note": note,
        }
        for key, note in keys
    ]
    return out


def numbered(count, reverse=False):
    ids = [f"s{i}" for i in range(count)]
    return ids[::-1] if reverse else ids


def cases():
    varied = ["alpha", "b", "node-10", "Zeta", "node-2"]
    return [
        case("one server, one vnode", ["solo"], 1, 1),
        case("one server, R > N", ["s0"], 4, 3),
        case("two servers, varied ids", ["b", "alpha"], 2, 2),
        case("two servers, R > N", numbered(2), 10, 5),
        case("three servers, defaults", numbered(3), 10, 3),
        case("three servers, dashed ids, R = 1", ["node-10", "node-2", "node-1"], 4, 1),
        case("five servers, varied ids", varied, 4, 3),
        case("five servers, one vnode each, R = N", numbered(5, reverse=True), 1, 5),
        case("tied vnodes, R = 2", ["m", TIE_IDS[0], TIE_IDS[1]], 1, 2),
        case("tied vnodes, R = 1", [TIE_IDS[0], "a", TIE_IDS[1], "z"], 1, 1),
        case("ten servers, defaults", numbered(10), 10, 3),
        case(
            "ten servers, varied ids and a tie, R = 5",
            varied + ["node-1", "s3", TIE_IDS[0], TIE_IDS[1], "x"],
            2,
            5,
        ),
        case("hundred servers, defaults", numbered(100, reverse=True), 10, 3),
        case("hundred servers, one vnode each, R = 5", numbered(100), 1, 5),
        case("hundred servers, two vnodes, R = 2", numbered(100), 2, 2),
    ]


def is_flat(value):
    """True for a list of scalars, or an object whose fields are all flat or scalar."""
    if isinstance(value, list):
        return all(not isinstance(v, (list, dict)) for v in value)
    if isinstance(value, dict):
        return all(not isinstance(v, (list, dict)) or is_flat(v) for v in value.values())
    return True


def render(value, depth=0):
    """JSON text with one record per line, so diffs of the file stay readable.

    Plain `json.dumps(indent=...)` would spread each key record over eight
    lines; here anything flat (a key record, a ring entry, a server list) is
    written on a single line and only the containers above it are indented.
    """
    if is_flat(value):
        return json.dumps(value, ensure_ascii=False)
    pad = " " * (depth + 1)
    if isinstance(value, list):
        items = [pad + render(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"
    items = [
        pad + json.dumps(k, ensure_ascii=False) + ": " + render(v, depth + 1)
        for k, v in value.items()
    ]
    return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"


def main():
    # The tie cases are only meaningful while the collision holds.
    tied = {ring_position(vnode_name(s, 0)) for s in TIE_IDS}
    assert tied == {TIE_POSITION}, "the chosen tie ids no longer collide"

    document = {
        "rule": (
            "position = last 4 bytes of MD5, big-endian; vnodes '{id}-{i}' ordered by "
            "(position, id bytes, i); replicas = distinct servers met walking clockwise "
            "from the first vnode strictly after the key, min(R, N) of them"
        ),
        "generator": "python3 tests/vectors/gen_vectors.py",
        "positions": position_vectors(),
        "cases": cases(),
    }
    text = render(document) + "\n"

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "placement.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {path}: {len(text.encode('utf-8'))} bytes, "
          f"{len(document['positions'])} positions, {len(document['cases'])} cases")


if __name__ == "__main__":
    main()
