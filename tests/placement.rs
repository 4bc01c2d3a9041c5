//! Placement: where keys land on the ring, checked against known answers.
//!
//! The known answers live in `tests/vectors/placement.json`. They are produced
//! by `tests/vectors/gen_vectors.py`, a second implementation of the placement
//! rule in plain Python (standard library only, MD5 from `hashlib`) that shares
//! no code with the crate. When the crate and the script agree on every vector,
//! both read the rule the same way; when they disagree, the failure names the
//! case and the key so the two can be compared by hand. The script's docstring
//! describes the JSON format and which edge cases each vector pins down. To
//! regenerate the file after changing the script:
//!
//! ```text
//! python3 tests/vectors/gen_vectors.py
//! ```
//!
//! The rule, for reference: a byte string's position is the last four bytes of
//! its MD5 digest read big-endian; server `id` owns vnodes `"{id}-{i}"` for
//! `i < vnodes`; vnodes are ordered by (position, id byte-wise, i); a key's
//! preference list walks clockwise from the first vnode strictly after the key
//! and collects `min(replication, servers)` distinct servers in walk order.
//!
//! The tests after the vector tests check properties that hold for any correct
//! ring (list length, membership, join and leave undoing each other, input
//! order not mattering) on pseudo-random keys, so they do not depend on the
//! file.

use std::collections::BTreeSet;

use ringkv::{ring_position, Cluster, Config, ServerId};
use serde_json::Value;

/// The vectors, compiled in so the test does not depend on the working directory.
const VECTORS: &str = include_str!("vectors/placement.json");

/// Longest key in the vectors is 256 bytes; leave room above it.
const MAX_KEY_LEN: usize = 1024;

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("tests/vectors/placement.json is not valid JSON")
}

/// Decodes lowercase or uppercase hex. The vectors store keys as hex because
/// many of them are not UTF-8.
fn decode_hex(text: &str) -> Vec<u8> {
    fn nibble(digit: u8) -> u8 {
        match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            b'A'..=b'F' => digit - b'A' + 10,
            _ => panic!("invalid hex digit {:?} in vectors", digit as char),
        }
    }

    let digits = text.as_bytes();
    assert!(digits.len() % 2 == 0, "odd-length hex {text:?} in vectors");
    digits
        .chunks_exact(2)
        .map(|pair| nibble(pair[0]) << 4 | nibble(pair[1]))
        .collect()
}

fn field<'a>(record: &'a Value, name: &str) -> &'a Value {
    record
        .get(name)
        .unwrap_or_else(|| panic!("vector record lacks field {name:?}: {record}"))
}

fn str_field<'a>(record: &'a Value, name: &str) -> &'a str {
    field(record, name)
        .as_str()
        .unwrap_or_else(|| panic!("field {name:?} is not a string: {record}"))
}

fn u64_field(record: &Value, name: &str) -> u64 {
    field(record, name)
        .as_u64()
        .unwrap_or_else(|| panic!("field {name:?} is not an unsigned integer: {record}"))
}

fn usize_field(record: &Value, name: &str) -> usize {
    usize::try_from(u64_field(record, name)).expect("vector count fits in usize")
}

fn array_field<'a>(record: &'a Value, name: &str) -> &'a [Value] {
    field(record, name)
        .as_array()
        .unwrap_or_else(|| panic!("field {name:?} is not an array: {record}"))
}

fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.as_str().expect("expected a string in vectors").to_owned())
        .collect()
}

fn config(vnodes: usize, replication: usize) -> Config {
    Config {
        vnodes,
        replication,
        max_key_len: MAX_KEY_LEN,
        ..Config::default()
    }
}

fn cluster<S: AsRef<str>>(servers: &[S], vnodes: usize, replication: usize) -> Cluster {
    let ids = servers.iter().map(|s| s.as_ref().to_owned());
    Cluster::new(config(vnodes, replication), ids).unwrap_or_else(|e| {
        panic!("building a cluster of {vnodes} vnodes, R = {replication} failed: {e}")
    })
}

fn names(ids: &[ServerId]) -> Vec<String> {
    ids.iter().map(|id| id.as_ref().to_owned()).collect()
}

/// A small deterministic generator (SplitMix64), so property tests see the
/// same keys on every run without a dependency on `rand`.
struct Keys(u64);

impl Keys {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A key of 0 to 40 arbitrary bytes; short and empty keys come up often.
    fn key(&mut self) -> Vec<u8> {
        let len = (self.next_u64() % 41) as usize;
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    fn take(seed: u64, count: usize) -> Vec<Vec<u8>> {
        let mut keys = Keys(seed);
        (0..count).map(|_| keys.key()).collect()
    }
}

#[test]
fn ring_position_matches_vectors() {
    let vectors = vectors();
    let entries = array_field(&vectors, "positions");
    assert!(!entries.is_empty(), "no position vectors");

    let mut mismatches = Vec::new();
    for entry in entries {
        let key = decode_hex(str_field(entry, "key_hex"));
        let expected = u64_field(entry, "position");
        let actual = ring_position(&key);
        if u64::from(actual) != expected {
            mismatches.push(format!(
                "key {} ({}): expected {expected}, got {actual}",
                str_field(entry, "key_hex"),
                str_field(entry, "note"),
            ));
        }
    }

    assert!(
        mismatches.is_empty(),
        "position mismatches:\n{}",
        mismatches.join("\n")
    );
}

/// The listed rings are redundant with the preference lists; checking them
/// confirms that vnode names are `"{id}-{i}"` hashed as UTF-8 and that the
/// file's ring order is the documented one, which is what makes the listings
/// trustworthy for tracing a failure by hand.
#[test]
fn vector_rings_follow_vnode_naming_and_order() {
    let vectors = vectors();
    let mut listed = 0;

    for case in array_field(&vectors, "cases") {
        let Some(ring) = case.get("ring").and_then(Value::as_array) else {
            continue;
        };
        let name = str_field(case, "name");
        let servers = strings(array_field(case, "servers"));
        let vnodes = usize_field(case, "vnodes");
        assert_eq!(
            ring.len(),
            servers.len() * vnodes,
            "case {name:?}: ring size"
        );

        let entries: Vec<(u32, String, usize)> = ring
            .iter()
            .map(|entry| {
                let parts = entry.as_array().expect("ring entry is an array");
                let position = parts[0].as_u64().expect("ring position");
                let id = parts[1].as_str().expect("ring server id").to_owned();
                let i = parts[2].as_u64().expect("ring vnode index");
                let position = u32::try_from(position).expect("ring position fits in u32");
                (
                    position,
                    id,
                    usize::try_from(i).expect("vnode index fits in usize"),
                )
            })
            .collect();

        for (position, id, i) in &entries {
            assert_eq!(
                ring_position(format!("{id}-{i}")),
                *position,
                "case {name:?}: vnode {id}-{i}"
            );
        }

        // `String`'s `Ord` is byte-wise, which is the order the rule asks for.
        let mut sorted = entries.clone();
        sorted.sort();
        assert_eq!(entries, sorted, "case {name:?}: ring listing out of order");
        listed += 1;
    }

    assert!(listed > 0, "no case lists its ring");
}

#[test]
fn preference_lists_match_vectors() {
    let vectors = vectors();
    let mut checked = 0;
    let mut mismatches = Vec::new();

    for case in array_field(&vectors, "cases") {
        let name = str_field(case, "name");
        let servers = strings(array_field(case, "servers"));
        let vnodes = usize_field(case, "vnodes");
        let replication = usize_field(case, "replication");
        let cluster = cluster(&servers, vnodes, replication);

        for entry in array_field(case, "keys") {
            let hex = str_field(entry, "key_hex");
            let key = decode_hex(hex);
            let expected = strings(array_field(entry, "replicas"));

            // A wrong position would make every list below it wrong too;
            // report it as the cause rather than leave the reader to infer it.
            let position = ring_position(&key);
            if u64::from(position) != u64_field(entry, "position") {
                mismatches.push(format!(
                    "case {name:?}, key {hex}: position {position}, expected {}",
                    u64_field(entry, "position")
                ));
            }

            let actual = names(&cluster.replicas(key.as_slice()));
            if actual != expected {
                mismatches.push(format!(
                    "case {name:?} (N = {}, K = {vnodes}, R = {replication}), key {hex} \
                     at {position} ({}): expected {expected:?}, got {actual:?}",
                    servers.len(),
                    str_field(entry, "note"),
                ));
            }
            checked += 1;
        }
    }

    assert!(checked > 0, "no preference-list vectors");
    assert!(
        mismatches.is_empty(),
        "{} of {checked} preference lists differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Guards the vector file itself: a regenerated file that silently dropped
/// the clamped, tied or large cases would still pass the test above.
#[test]
fn vectors_cover_the_edge_cases() {
    let vectors = vectors();
    let cases = array_field(&vectors, "cases");

    let sizes: BTreeSet<usize> = cases
        .iter()
        .map(|c| array_field(c, "servers").len())
        .collect();
    for n in [1, 2, 3, 5, 10, 100] {
        assert!(sizes.contains(&n), "no case with {n} servers");
    }

    let vnodes: BTreeSet<usize> = cases.iter().map(|c| usize_field(c, "vnodes")).collect();
    let replication: BTreeSet<usize> = cases
        .iter()
        .map(|c| usize_field(c, "replication"))
        .collect();
    for k in [1, 2, 4, 10] {
        assert!(vnodes.contains(&k), "no case with {k} vnodes per server");
    }
    for r in [1, 2, 3, 5] {
        assert!(replication.contains(&r), "no case with replication {r}");
    }

    let clamped = cases
        .iter()
        .any(|c| usize_field(c, "replication") > array_field(c, "servers").len());
    assert!(clamped, "no case with replication above the server count");

    let keys = cases.iter().flat_map(|c| array_field(c, "keys"));
    let empty_key = keys.clone().any(|k| str_field(k, "key_hex").is_empty());
    assert!(empty_key, "no case tries the empty key");

    // A key that equals a vnode name sits exactly on that vnode.
    let on_vnode = keys
        .clone()
        .any(|k| str_field(k, "note").starts_with("the name of"));
    assert!(on_vnode, "no key sits exactly on a vnode");
    let tied = keys
        .clone()
        .any(|k| str_field(k, "note").contains("tied vnode"));
    assert!(tied, "no key sits on two vnodes at the same position");
}

#[test]
fn servers_lists_every_member_sorted_by_id() {
    let given = ["node-10", "b", "Zeta", "alpha", "node-2", "s3"];
    let cluster = cluster(&given, 4, 3);

    let mut expected: Vec<String> = given.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names(&cluster.servers()), expected);

    for id in cluster.servers() {
        assert_eq!(
            id.to_string(),
            id.as_ref(),
            "Display and AsRef<str> disagree"
        );
    }
}

#[test]
fn preference_list_has_min_r_n_distinct_members() {
    let keys = Keys::take(0x5eed_0001, 200);

    for n in [1, 2, 3, 5, 10] {
        let servers: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        for vnodes in [1, 3, 10] {
            for replication in 1..=6 {
                let cluster = cluster(&servers, vnodes, replication);
                let members: BTreeSet<String> = names(&cluster.servers()).into_iter().collect();
                let want = replication.min(n);

                for key in &keys {
                    let list = names(&cluster.replicas(key.as_slice()));
                    let context =
                        format!("N = {n}, K = {vnodes}, R = {replication}, key {key:02x?}");
                    assert_eq!(list.len(), want, "{context}: {list:?}");

                    let distinct: BTreeSet<&String> = list.iter().collect();
                    assert_eq!(distinct.len(), list.len(), "{context}: repeats in {list:?}");
                    assert!(
                        list.iter().all(|id| members.contains(id)),
                        "{context}: {list:?} names a server outside {members:?}"
                    );
                }
            }
        }
    }
}

/// Adding a server inserts its vnodes between existing ones and moves nothing
/// else, so each key's new list is its old list with the new server spliced in
/// somewhere (and the tail trimmed back to R).
#[test]
fn join_only_splices_the_new_server_into_lists() {
    let servers = ["s0", "s1", "s2", "s3", "s4"];
    let cluster = cluster(&servers, 10, 3);
    let keys = Keys::take(0x5eed_0002, 500);
    let before: Vec<Vec<String>> = keys
        .iter()
        .map(|k| names(&cluster.replicas(k.as_slice())))
        .collect();

    cluster.join("x").expect("joining a new server succeeds");

    let mut gained = 0;
    for (key, old) in keys.iter().zip(&before) {
        let new = cluster.replicas(key.as_slice());
        let has_new = new.iter().any(|id| id == "x");
        let rest: Vec<String> = names(&new).into_iter().filter(|id| id != "x").collect();
        let kept = if has_new { new.len() - 1 } else { new.len() };
        assert_eq!(
            rest,
            old[..kept],
            "key {key:02x?}: before {old:?}, after join {:?}",
            names(&new)
        );
        gained += usize::from(has_new);
    }

    // With six servers and R = 3 about half of the keys should gain `x`; a
    // handful would already mean the join took effect.
    assert!(
        gained > 50,
        "only {gained} of 500 keys placed a replica on the new server"
    );
}

#[test]
fn join_then_leave_restores_every_preference_list() {
    let servers = ["s0", "s1", "s2", "s3", "s4"];
    let cluster = cluster(&servers, 10, 3);
    let keys = Keys::take(0x5eed_0003, 500);
    let before: Vec<Vec<String>> = keys
        .iter()
        .map(|k| names(&cluster.replicas(k.as_slice())))
        .collect();

    cluster.join("x").expect("joining a new server succeeds");
    let moved = keys
        .iter()
        .zip(&before)
        .filter(|(k, old)| names(&cluster.replicas(k.as_slice())) != **old)
        .count();
    assert!(moved > 0, "joining x changed no preference list");

    cluster.leave("x").expect("leaving after joining succeeds");
    for (key, old) in keys.iter().zip(&before) {
        assert_eq!(
            &names(&cluster.replicas(key.as_slice())),
            old,
            "key {key:02x?} did not return to its placement before the join"
        );
    }
    assert_eq!(names(&cluster.servers()), servers);
}

#[test]
fn placement_does_not_depend_on_server_order() {
    let ascending: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    let descending: Vec<String> = ascending.iter().rev().cloned().collect();
    // An interleaving that is neither sorted nor reversed: 0, 7, 14, 1, 8, ...
    let interleaved: Vec<String> = (0..20).map(|i| format!("s{}", (i * 7) % 20)).collect();

    let clusters = [
        cluster(&ascending, 10, 3),
        cluster(&descending, 10, 3),
        cluster(&interleaved, 10, 3),
    ];

    let first = names(&clusters[0].servers());
    for other in &clusters[1..] {
        assert_eq!(names(&other.servers()), first);
    }

    for key in Keys::take(0x5eed_0004, 500) {
        let expected = names(&clusters[0].replicas(key.as_slice()));
        for other in &clusters[1..] {
            assert_eq!(
                names(&other.replicas(key.as_slice())),
                expected,
                "key {key:02x?}"
            );
        }
    }
}
