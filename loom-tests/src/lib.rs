//! Shared helpers for ringkv's loom models (see `tests/models.rs`).
//!
//! Keys are chosen before a model starts, with the placement rule computed
//! here from [`ringkv::ring_position`] alone: building a `Cluster` outside
//! `loom::model` is not allowed under `--cfg loom`, and choosing keys by hand
//! would silently stop exercising the race if the rule changed.

use std::collections::BTreeSet;

/// The preference list of `key` on a ring of `servers` with `vnodes` vnodes
/// each and replication `replication`, walked the slow way.
pub fn preference(servers: &[&str], vnodes: usize, replication: usize, key: &[u8]) -> Vec<String> {
    let mut ring: Vec<(u32, &str, usize)> = servers
        .iter()
        .flat_map(|&id| {
            (0..vnodes).map(move |i| (ringkv::ring_position(format!("{id}-{i}")), id, i))
        })
        .collect();
    ring.sort();
    let position = ringkv::ring_position(key);
    let start = ring.iter().position(|v| v.0 > position).unwrap_or(0);
    let wanted = replication.min(servers.len());
    let mut list: Vec<String> = Vec::new();
    for step in 0..ring.len() {
        let id = ring[(start + step) % ring.len()].1;
        if !list.iter().any(|have| have == id) {
            list.push(id.to_owned());
        }
        if list.len() == wanted {
            break;
        }
    }
    list
}

/// The first key `"k0"`, `"k1"`, ... whose preference lists before and after
/// a change satisfy `moves`. Panics if none of the first 10 000 does.
pub fn key_where(
    before: (&[&str], usize, usize),
    after: (&[&str], usize, usize),
    moves: impl Fn(&BTreeSet<String>, &BTreeSet<String>) -> bool,
) -> String {
    (0..10_000)
        .map(|i| format!("k{i}"))
        .find(|key| {
            let old: BTreeSet<String> = preference(before.0, before.1, before.2, key.as_bytes())
                .into_iter()
                .collect();
            let new: BTreeSet<String> = preference(after.0, after.1, after.2, key.as_bytes())
                .into_iter()
                .collect();
            moves(&old, &new)
        })
        .expect("some key among the first 10 000 moves as asked")
}
