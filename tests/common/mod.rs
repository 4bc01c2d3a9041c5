//! Helpers shared by the integration tests: building clusters, taking a copy
//! of every server's contents, and checking the placement invariant.
//!
//! Each test crate uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::BTreeMap;

use ringkv::{Bytes, Cluster, Config, ServerId, Versioned};

/// Server ids `s00`, `s01`, ... (zero-padded so they sort in creation order).
pub(crate) fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("s{i:02}")).collect()
}

/// A cluster of `n` servers named by [`ids`].
pub(crate) fn cluster(n: usize, config: Config) -> Cluster {
    Cluster::new(config, ids(n)).expect("a valid configuration and server list")
}

/// The `i`-th test key.
pub(crate) fn key(i: usize) -> String {
    format!("key-{i}")
}

/// Every server's entries, by server id, in the order `entries()` yields them.
pub(crate) type Contents = BTreeMap<String, Vec<(Bytes, Versioned)>>;

/// A copy of what every current server holds. Only meaningful when nothing
/// writes concurrently.
pub(crate) fn contents(cluster: &Cluster) -> Contents {
    cluster
        .servers()
        .iter()
        .map(|id| {
            let server = cluster.server(id).expect("a listed server is found");
            (id.to_string(), server.entries().collect())
        })
        .collect()
}

/// Checks, with no write in flight, that every entry any server holds lives
/// on a server of its key's preference list, that `len()` agrees with
/// `entries()`, and that every key in `expected` is held by every one of its
/// replicas at exactly the expected version.
///
/// `expected` maps each key the test wrote to its newest version; keys the
/// test never wrote must not appear anywhere.
pub(crate) fn assert_placement(cluster: &Cluster, expected: &BTreeMap<Bytes, Versioned>) {
    // One preference-list lookup per key.
    let lists: BTreeMap<&Bytes, Vec<ServerId>> =
        expected.keys().map(|k| (k, cluster.replicas(k))).collect();

    let mut held = 0usize;
    for id in cluster.servers() {
        let server = cluster.server(&id).expect("a listed server is found");
        let entries: Vec<(Bytes, Versioned)> = server.entries().collect();
        assert_eq!(
            server.len(),
            entries.len(),
            "server {id}: len() disagrees with entries()"
        );
        for (key, version) in &entries {
            let Some(list) = lists.get(key) else {
                panic!("server {id} holds {key:?}, which the test never wrote");
            };
            assert!(
                list.contains(&id),
                "server {id} holds {key:?}, which is not on its preference list {list:?}"
            );
            assert_eq!(
                expected.get(key),
                Some(version),
                "server {id} holds a stale or unexpected version of {key:?}"
            );
        }
        held += entries.len();
    }

    // Every (key, replica) pair was seen above, if the counts agree.
    let wanted: usize = lists.values().map(Vec::len).sum();
    assert_eq!(held, wanted, "entries held vs. (key, replica) pairs");
}

/// A default configuration with `replication` replicas.
pub(crate) fn with_replication(replication: usize) -> Config {
    Config {
        replication,
        ..Config::default()
    }
}

/// Writes `count` keys (`key(0)`..) with value `"v{i}"` and returns what each
/// replica should now hold.
pub(crate) fn load(cluster: &Cluster, count: usize) -> BTreeMap<Bytes, Versioned> {
    (0..count)
        .map(|i| {
            let value = Bytes::from(format!("v{i}"));
            let timestamp = cluster.put(key(i), value.clone()).expect("valid put");
            (
                Bytes::from(key(i)),
                Versioned {
                    timestamp,
                    value: Some(value),
                },
            )
        })
        .collect()
}
