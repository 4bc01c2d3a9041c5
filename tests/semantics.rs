//! Single-key semantics of the data path, on a stable ring.
//!
//! Covers: the `Config` defaults; the cluster clock (strictly increasing,
//! unique across threads, advanced by client timestamps from `put_at`,
//! `delete_at` and `Server::apply`); last-write-wins on each replica
//! (greater timestamp wins; on a tie a tombstone beats a value and the larger
//! bytes win; an equal version is not a win); deletes as tombstones on every
//! replica that an older write cannot undo; `get` returning the newest
//! version across replicas, with and without read repair; a value stored once
//! however many replicas hold it; the empty key and keys at the length
//! limits; replication above the server count; and a 100-server ring.
//!
//! Membership changes are in `migration.rs`, threads racing each other in
//! `concurrency.rs`, refused input in `bad_input.rs`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{assert_placement, cluster, key, load, with_replication};
use ringkv::{Bytes, Cluster, Config, Timestamp, Versioned};

/// Thirty seconds, in the clock's microseconds: well inside the default skew.
const THIRTY_SECONDS: u64 = 30_000_000;

fn value(bytes: &'static str) -> Option<Bytes> {
    Some(Bytes::from_static(bytes.as_bytes()))
}

/// What each replica of `key` holds, in preference-list order.
fn on_replicas(cluster: &Cluster, key: &str) -> Vec<Option<Versioned>> {
    cluster
        .replicas(key)
        .iter()
        .map(|id| cluster.server(id).expect("a replica is a server").get(key))
        .collect()
}

/// The ids of the servers that are not on `key`'s preference list.
fn non_replicas(cluster: &Cluster, key: &str) -> Vec<String> {
    let replicas = cluster.replicas(key);
    cluster
        .servers()
        .iter()
        .filter(|id| !replicas.contains(id))
        .map(|id| id.to_string())
        .collect()
}

#[test]
fn config_defaults_are_the_documented_ones() {
    let config = Config::default();
    assert_eq!(config.vnodes, 10);
    assert_eq!(config.replication, 3);
    assert_eq!(config.max_key_len, 256);
    assert_eq!(config.max_value_len, 1 << 20);
    assert_eq!(config.max_clock_skew, Duration::from_secs(60));
    assert!(config.read_repair);

    let cluster = cluster(4, Config::default());
    assert_eq!(cluster.config(), &config);
}

#[test]
fn put_then_get_reads_the_value_from_exactly_its_replicas() {
    let cluster = cluster(5, Config::default());
    let written = cluster.put("k", "v").unwrap();

    assert_eq!(cluster.get("k").unwrap(), value("v"));
    assert_eq!(
        cluster.get_versioned("k").unwrap(),
        Some(Versioned {
            timestamp: written,
            value: value("v"),
        })
    );
    let replicas = cluster.replicas("k");
    assert_eq!(replicas.len(), 3);
    assert_eq!(
        replicas.iter().collect::<BTreeSet<_>>().len(),
        3,
        "replicas are distinct: {replicas:?}"
    );
    for held in on_replicas(&cluster, "k") {
        assert_eq!(held.unwrap().value, value("v"));
    }
    for id in non_replicas(&cluster, "k") {
        assert_eq!(cluster.server(&id).unwrap().get("k"), None, "on {id}");
        assert!(cluster.server(&id).unwrap().is_empty(), "on {id}");
    }

    assert_eq!(cluster.get("never written").unwrap(), None);
    assert_eq!(cluster.get_versioned("never written").unwrap(), None);
}

/// Stamps `WRITES` puts and deletes on the same few keys from each of
/// `THREADS` threads, and checks that each thread's timestamps increase and
/// that no timestamp was issued twice.
fn assert_unique_stamps_across_threads(cluster: &Cluster) {
    const THREADS: usize = 4;
    const WRITES: usize = 2_000;
    let floor = cluster.last_timestamp();

    let stamps: Vec<Vec<Timestamp>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    (0..WRITES)
                        .map(|i| {
                            if (i + t) % 4 == 0 {
                                cluster.delete(key(i % 10)).unwrap()
                            } else {
                                cluster.put(key(i % 10), "v").unwrap()
                            }
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    for thread in &stamps {
        assert!(thread[0] > floor);
        assert!(
            thread.windows(2).all(|pair| pair[0] < pair[1]),
            "one thread's timestamps increase"
        );
    }
    let all: BTreeSet<Timestamp> = stamps.iter().flatten().copied().collect();
    assert_eq!(all.len(), THREADS * WRITES, "no timestamp issued twice");
    assert_eq!(cluster.last_timestamp(), *all.last().unwrap());
}

#[test]
fn clock_timestamps_strictly_increase_within_a_thread() {
    let cluster = cluster(3, Config::default());
    let mut last = cluster.last_timestamp();
    for i in 0..2_000 {
        // Halfway, a client timestamp moves the clock ahead of wall time, so
        // the rest are issued by the logical part of the clock.
        if i == 1_000 {
            let future = Timestamp(Timestamp::wall().0 + THIRTY_SECONDS);
            cluster.put_at("ahead", "v", future).unwrap();
            last = future;
        }
        let stamped = if i % 3 == 0 {
            cluster.delete(key(i)).unwrap()
        } else {
            cluster.put(key(i), "v").unwrap()
        };
        assert!(stamped > last, "{stamped} after {last}");
        assert_eq!(cluster.last_timestamp(), stamped);
        last = stamped;
    }
}

#[test]
fn clock_timestamps_are_unique_across_threads() {
    let cluster = cluster(3, Config::default());
    assert_unique_stamps_across_threads(&cluster);
}

#[test]
fn clock_timestamps_are_unique_across_threads_ahead_of_wall_time() {
    let cluster = cluster(3, Config::default());
    // Every timestamp from here on comes from the logical part of the clock.
    let future = Timestamp(Timestamp::wall().0 + THIRTY_SECONDS);
    cluster.put_at("ahead", "v", future).unwrap();
    assert_unique_stamps_across_threads(&cluster);
    assert!(cluster.last_timestamp().0 < future.0 + THIRTY_SECONDS);
}

#[test]
fn put_at_advances_the_clock_so_a_later_put_wins() {
    let cluster = cluster(4, Config::default());
    let future = Timestamp(Timestamp::wall().0 + THIRTY_SECONDS);

    cluster.put_at("k", "client", future).unwrap();
    assert_eq!(cluster.get("k").unwrap(), value("client"));
    assert!(cluster.last_timestamp() >= future);

    let later = cluster.put("k", "server").unwrap();
    assert!(later > future, "{later} after {future}");
    assert_eq!(cluster.get("k").unwrap(), value("server"));
    for held in on_replicas(&cluster, "k") {
        assert_eq!(held.unwrap().timestamp, later);
    }
}

#[test]
fn delete_at_advances_the_clock_so_a_later_put_wins() {
    let cluster = cluster(4, Config::default());
    cluster.put("k", "old").unwrap();
    let future = Timestamp(Timestamp::wall().0 + THIRTY_SECONDS);

    cluster.delete_at("k", future).unwrap();
    assert_eq!(cluster.get("k").unwrap(), None);

    let later = cluster.put("k", "back").unwrap();
    assert!(later > future);
    assert_eq!(cluster.get("k").unwrap(), value("back"));
}

#[test]
fn server_apply_advances_the_clock_so_a_later_put_wins() {
    let cluster = cluster(4, Config::default());
    let future = Timestamp(Timestamp::wall().0 + THIRTY_SECONDS);
    let replica = cluster.replicas("k")[0].clone();

    let won = cluster
        .server(&replica)
        .unwrap()
        .apply(
            "k",
            Versioned {
                timestamp: future,
                value: value("applied"),
            },
        )
        .unwrap();
    assert!(won);
    assert_eq!(cluster.get("k").unwrap(), value("applied"));

    let later = cluster.put("k", "put").unwrap();
    assert!(later > future);
    assert_eq!(cluster.get("k").unwrap(), value("put"));
    for held in on_replicas(&cluster, "k") {
        assert_eq!(held.unwrap().value, value("put"));
    }
}

#[test]
fn a_past_timestamp_does_not_move_the_clock_back() {
    let cluster = cluster(3, Config::default());
    let first = cluster.put("a", "1").unwrap();
    cluster.put_at("b", "2", Timestamp(1)).unwrap();
    cluster.delete_at("c", Timestamp(2)).unwrap();
    assert_eq!(cluster.last_timestamp(), first);
    assert!(cluster.put("d", "3").unwrap() > first);
}

#[test]
fn an_older_client_write_loses_to_the_stored_version() {
    let cluster = cluster(4, Config::default());
    let written = cluster.put("k", "new").unwrap();

    cluster
        .put_at("k", "stale", Timestamp(written.0 - 1))
        .unwrap();
    assert_eq!(cluster.get("k").unwrap(), value("new"));
    cluster.delete_at("k", Timestamp(written.0 - 1)).unwrap();
    assert_eq!(cluster.get("k").unwrap(), value("new"));
    for held in on_replicas(&cluster, "k") {
        assert_eq!(
            held,
            Some(Versioned {
                timestamp: written,
                value: value("new"),
            })
        );
    }
}

#[test]
fn a_newer_client_write_wins() {
    let cluster = cluster(4, Config::default());
    let written = cluster.put("k", "old").unwrap();
    let newer = Timestamp(written.0 + 10);
    cluster.put_at("k", "new", newer).unwrap();
    assert_eq!(
        cluster.get_versioned("k").unwrap(),
        Some(Versioned {
            timestamp: newer,
            value: value("new"),
        })
    );
}

#[test]
fn timestamp_tie_between_values_keeps_the_larger_bytes_in_any_order() {
    let at = Timestamp(Timestamp::wall().0 - THIRTY_SECONDS);
    for order in [["abc", "abd"], ["abd", "abc"], ["ab", "abc"], ["abc", "ab"]] {
        let cluster = cluster(4, Config::default());
        for v in order {
            cluster.put_at("k", v, at).unwrap();
        }
        let larger = order.iter().max().unwrap().as_bytes();
        assert_eq!(
            cluster.get("k").unwrap().as_deref(),
            Some(larger),
            "{order:?}"
        );
        for held in on_replicas(&cluster, "k") {
            assert_eq!(held.unwrap().value.as_deref(), Some(larger), "{order:?}");
        }
    }
}

#[test]
fn timestamp_tie_between_tombstone_and_value_keeps_the_tombstone_in_any_order() {
    let at = Timestamp(Timestamp::wall().0 - THIRTY_SECONDS);
    for tombstone_first in [true, false] {
        let cluster = cluster(4, Config::default());
        if tombstone_first {
            cluster.delete_at("k", at).unwrap();
            cluster.put_at("k", "zzz", at).unwrap();
        } else {
            cluster.put_at("k", "zzz", at).unwrap();
            cluster.delete_at("k", at).unwrap();
        }
        assert_eq!(cluster.get("k").unwrap(), None, "{tombstone_first}");
        let tombstone = Versioned {
            timestamp: at,
            value: None,
        };
        assert_eq!(cluster.get_versioned("k").unwrap(), Some(tombstone.clone()));
        for held in on_replicas(&cluster, "k") {
            assert_eq!(held, Some(tombstone.clone()));
        }
    }
}

#[test]
fn apply_reports_whether_the_version_won_on_that_replica() {
    let cluster = cluster(4, Config::default());
    let server = cluster.server("s00").unwrap();
    let at = Timestamp(Timestamp::wall().0 - THIRTY_SECONDS);
    let version = |ts: u64, v: Option<Bytes>| Versioned {
        timestamp: Timestamp(ts),
        value: v,
    };

    assert!(server.apply("k", version(at.0, value("b"))).unwrap());
    // The same version again: not a win, even as a separate allocation.
    assert!(!server.apply("k", version(at.0, value("b"))).unwrap());
    // Same timestamp, smaller bytes: loses; larger bytes: wins.
    assert!(!server.apply("k", version(at.0, value("a"))).unwrap());
    assert!(server.apply("k", version(at.0, value("c"))).unwrap());
    // Same timestamp, tombstone: wins; the same tombstone again: does not.
    assert!(server.apply("k", version(at.0, None)).unwrap());
    assert!(!server.apply("k", version(at.0, None)).unwrap());
    assert!(!server.apply("k", version(at.0, value("zzz"))).unwrap());
    // Older loses, newer wins.
    assert!(!server.apply("k", version(at.0 - 1, value("zzz"))).unwrap());
    assert!(server.apply("k", version(at.0 + 1, value("d"))).unwrap());

    assert_eq!(server.get("k"), Some(version(at.0 + 1, value("d"))));
    assert_eq!(server.len(), 1);
}

#[test]
fn apply_writes_only_the_server_it_is_called_on() {
    let cluster = cluster(5, Config::default());
    let outsider = non_replicas(&cluster, "k").remove(0);
    let at = Timestamp(Timestamp::wall().0 - THIRTY_SECONDS);
    let stray = Versioned {
        timestamp: at,
        value: value("stray"),
    };

    assert!(cluster
        .server(&outsider)
        .unwrap()
        .apply("k", stray.clone())
        .unwrap());
    assert_eq!(cluster.server(&outsider).unwrap().get("k"), Some(stray));
    for held in on_replicas(&cluster, "k") {
        assert_eq!(held, None);
    }
    // The cluster reads the preference list only.
    assert_eq!(cluster.get("k").unwrap(), None);
}

#[test]
fn delete_writes_a_tombstone_to_every_replica() {
    let cluster = cluster(5, Config::default());
    cluster.put("k", "v").unwrap();
    let deleted = cluster.delete("k").unwrap();

    assert_eq!(cluster.get("k").unwrap(), None);
    let tombstone = Versioned {
        timestamp: deleted,
        value: None,
    };
    assert_eq!(cluster.get_versioned("k").unwrap(), Some(tombstone.clone()));
    for held in on_replicas(&cluster, "k") {
        assert_eq!(held, Some(tombstone.clone()));
    }
    assert!(tombstone.is_tombstone());
}

#[test]
fn delete_of_an_absent_key_still_leaves_tombstones() {
    let cluster = cluster(5, Config::default());
    let deleted = cluster.delete("ghost").unwrap();
    for held in on_replicas(&cluster, "ghost") {
        assert_eq!(
            held,
            Some(Versioned {
                timestamp: deleted,
                value: None,
            })
        );
    }
    // An older write that arrives afterwards does not create the key.
    cluster
        .put_at("ghost", "late", Timestamp(deleted.0 - 1))
        .unwrap();
    assert_eq!(cluster.get("ghost").unwrap(), None);
}

#[test]
fn an_older_write_never_resurrects_a_deleted_key() {
    let cluster = cluster(5, Config::default());
    let written = cluster.put("k", "v").unwrap();
    let deleted = cluster.delete("k").unwrap();
    assert!(deleted > written);

    // Every way of bringing an older version: the cluster, and each replica.
    cluster.put_at("k", "zombie", written).unwrap();
    cluster
        .put_at("k", "zombie", Timestamp(deleted.0 - 1))
        .unwrap();
    for id in cluster.replicas("k") {
        let won = cluster
            .server(&id)
            .unwrap()
            .apply(
                "k",
                Versioned {
                    timestamp: Timestamp(deleted.0 - 1),
                    value: value("zombie"),
                },
            )
            .unwrap();
        assert!(!won, "on {id}");
    }
    assert_eq!(cluster.get("k").unwrap(), None);
    for held in on_replicas(&cluster, "k") {
        assert!(held.unwrap().is_tombstone());
    }

    // A newer write does bring it back.
    cluster.put("k", "alive").unwrap();
    assert_eq!(cluster.get("k").unwrap(), value("alive"));
}

/// Gives the replica at `replica` (index in `key`'s preference list) a version
/// the others do not have, which must win there.
fn diverge(cluster: &Cluster, key: &str, newest: Versioned, replica: usize) {
    let id = cluster.replicas(key)[replica].clone();
    assert!(cluster.server(&id).unwrap().apply(key, newest).unwrap());
}

#[test]
fn get_returns_the_newest_version_across_replicas_without_repairing() {
    let config = Config {
        read_repair: false,
        ..Config::default()
    };
    for replica in 0..3 {
        let cluster = cluster(5, config.clone());
        let written = cluster.put("k", "old").unwrap();
        let newest = Versioned {
            timestamp: Timestamp(written.0 + 1),
            value: value("new"),
        };
        diverge(&cluster, "k", newest.clone(), replica);

        let before = on_replicas(&cluster, "k");
        assert_eq!(cluster.get("k").unwrap(), value("new"), "replica {replica}");
        assert_eq!(cluster.get_versioned("k").unwrap(), Some(newest));
        assert_eq!(on_replicas(&cluster, "k"), before, "nothing repaired");
        assert_eq!(cluster.stats().read_repairs, 0);
    }
}

#[test]
fn get_repairs_stale_and_missing_replicas() {
    let cluster = cluster(5, Config::default());
    let written = cluster.put("k", "old").unwrap();
    let newest = Versioned {
        timestamp: Timestamp(written.0 + 1),
        value: value("new"),
    };
    diverge(&cluster, "k", newest.clone(), 1);

    assert_eq!(cluster.get("k").unwrap(), value("new"));
    assert_eq!(cluster.stats().read_repairs, 2);
    for held in on_replicas(&cluster, "k") {
        assert_eq!(held, Some(newest.clone()));
    }
    // Agreeing replicas need no repair.
    assert_eq!(cluster.get("k").unwrap(), value("new"));
    assert_eq!(cluster.stats().read_repairs, 2);

    // A key only one replica holds is copied to the two that miss it.
    let at = Timestamp(Timestamp::wall().0 - THIRTY_SECONDS);
    let lonely = Versioned {
        timestamp: at,
        value: value("lonely"),
    };
    diverge(&cluster, "m", lonely.clone(), 2);
    assert_eq!(cluster.get("m").unwrap(), value("lonely"));
    assert_eq!(cluster.stats().read_repairs, 4);
    for held in on_replicas(&cluster, "m") {
        assert_eq!(held, Some(lonely.clone()));
    }
}

#[test]
fn get_is_none_when_the_newest_version_is_a_tombstone_on_one_replica() {
    let config = Config {
        read_repair: false,
        ..Config::default()
    };
    let cluster = cluster(5, config);
    let written = cluster.put("k", "v").unwrap();
    let tombstone = Versioned {
        timestamp: Timestamp(written.0 + 1),
        value: None,
    };
    diverge(&cluster, "k", tombstone.clone(), 2);

    assert_eq!(cluster.get("k").unwrap(), None);
    assert_eq!(cluster.get_versioned("k").unwrap(), Some(tombstone));
}

#[test]
fn get_ignores_an_older_tombstone_on_one_replica() {
    let config = Config {
        read_repair: false,
        ..Config::default()
    };
    let cluster = cluster(5, config);
    let at = Timestamp(Timestamp::wall().0 - THIRTY_SECONDS);
    let tombstone = Versioned {
        timestamp: Timestamp(at.0 - 1),
        value: None,
    };
    let written = Versioned {
        timestamp: at,
        value: value("v"),
    };
    // Each replica position in turn holds the older tombstone.
    for (i, k) in ["k0", "k1", "k2"].into_iter().enumerate() {
        for replica in 0..3 {
            let version = if replica == i {
                tombstone.clone()
            } else {
                written.clone()
            };
            diverge(&cluster, k, version, replica);
        }
        assert_eq!(cluster.get(k).unwrap(), value("v"), "{k}");
        assert_eq!(cluster.get_versioned(k).unwrap(), Some(written.clone()));
    }
}

#[test]
fn a_value_is_stored_once_however_many_replicas_hold_it() {
    let cluster = cluster(5, Config::default());
    let payload = Bytes::from(vec![7u8; 4096]);
    let address = payload.as_ptr();
    cluster.put("k", payload).unwrap();

    let pointers: Vec<*const u8> = on_replicas(&cluster, "k")
        .into_iter()
        .map(|held| held.unwrap().value.unwrap().as_ptr())
        .collect();
    assert_eq!(pointers.len(), 3);
    for pointer in &pointers {
        assert_eq!(*pointer, address, "a replica copied the value");
    }
    assert_eq!(cluster.get("k").unwrap().unwrap().as_ptr(), address);

    // Read repair shares the stored buffer too.
    let fresh = Bytes::from(vec![9u8; 64]);
    let fresh_address = fresh.as_ptr();
    let id = cluster.replicas("k")[1].clone();
    let newer = Timestamp(cluster.last_timestamp().0 + 1);
    cluster
        .server(&id)
        .unwrap()
        .apply(
            "k",
            Versioned {
                timestamp: newer,
                value: Some(fresh),
            },
        )
        .unwrap();
    assert_eq!(cluster.get("k").unwrap().unwrap().as_ptr(), fresh_address);
    for held in on_replicas(&cluster, "k") {
        assert_eq!(held.unwrap().value.unwrap().as_ptr(), fresh_address);
    }
}

#[test]
fn the_empty_key_is_a_key() {
    let cluster = cluster(5, Config::default());
    assert_eq!(cluster.replicas("").len(), 3);
    assert_eq!(cluster.get("").unwrap(), None);

    let written = cluster.put("", "nothing").unwrap();
    assert_eq!(cluster.get(b"").unwrap(), value("nothing"));
    assert_eq!(cluster.get("x").unwrap(), None, "distinct from other keys");
    for held in on_replicas(&cluster, "") {
        assert_eq!(held.unwrap().timestamp, written);
    }
    let entries: Vec<(Bytes, Versioned)> = cluster
        .server(&cluster.replicas("")[0])
        .unwrap()
        .entries()
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, Bytes::new());

    cluster.delete("").unwrap();
    assert_eq!(cluster.get("").unwrap(), None);
    for held in on_replicas(&cluster, "") {
        assert!(held.unwrap().is_tombstone());
    }
}

#[test]
fn keys_and_values_at_the_limits_are_accepted() {
    let config = Config {
        max_key_len: 200,
        max_value_len: 1000,
        ..Config::default()
    };
    let cluster = cluster(5, config);
    // Short, medium and limit-length keys, including ones that differ only in
    // their last byte and ones that are prefixes of each other.
    let mut keys: Vec<Vec<u8>> = vec![vec![b'x'; 200], vec![b'x'; 199], vec![0u8; 1]];
    let mut last = vec![b'y'; 200];
    last[199] = b'z';
    keys.push(last);
    keys.push(vec![b'y'; 60]);
    keys.push(vec![b'y'; 61]);
    keys.push((0..=255u8).take(200).collect());

    let mut expected = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        let v = Bytes::from(vec![i as u8; 1000]);
        let timestamp = cluster.put(k, v.clone()).unwrap();
        expected.insert(
            Bytes::from(k.clone()),
            Versioned {
                timestamp,
                value: Some(v),
            },
        );
    }
    for (k, version) in &expected {
        assert_eq!(cluster.get_versioned(k).unwrap().as_ref(), Some(version));
    }
    assert_placement(&cluster, &expected);

    cluster.delete_at(&keys[0], Timestamp(1)).unwrap();
    cluster.put_at(&keys[1], "", Timestamp(1)).unwrap();
    assert_eq!(cluster.get(&keys[0]).unwrap().unwrap().len(), 1000);
}

#[test]
fn an_empty_value_is_not_a_tombstone() {
    let cluster = cluster(3, Config::default());
    cluster.put("k", Bytes::new()).unwrap();
    assert_eq!(cluster.get("k").unwrap(), Some(Bytes::new()));
    assert!(!cluster.get_versioned("k").unwrap().unwrap().is_tombstone());
}

#[test]
fn replication_above_the_server_count_means_every_server() {
    let cluster = cluster(3, with_replication(7));
    let expected = load(&cluster, 200);
    for k in expected.keys() {
        let mut replicas = cluster.replicas(k);
        replicas.sort();
        assert_eq!(replicas, cluster.servers());
    }
    for id in cluster.servers() {
        assert_eq!(cluster.server(&id).unwrap().len(), 200);
    }
    assert_placement(&cluster, &expected);
}

#[test]
fn replication_one_keeps_one_copy() {
    let cluster = cluster(4, with_replication(1));
    let expected = load(&cluster, 300);
    let total: usize = cluster
        .servers()
        .iter()
        .map(|id| cluster.server(id).unwrap().len())
        .sum();
    assert_eq!(total, 300);
    assert_placement(&cluster, &expected);
}

#[test]
fn a_hundred_servers_with_ten_vnodes_each_work() {
    let cluster = cluster(100, Config::default());
    assert_eq!(cluster.servers().len(), 100);
    let expected = load(&cluster, 2_000);
    for k in expected.keys() {
        let replicas = cluster.replicas(k);
        assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3);
    }
    for (k, version) in &expected {
        assert_eq!(cluster.get_versioned(k).unwrap().as_ref(), Some(version));
    }
    // Most servers get some of 2,000 keys: the ring is not degenerate.
    let used = cluster
        .servers()
        .iter()
        .filter(|id| !cluster.server(id).unwrap().is_empty())
        .count();
    assert!(used >= 90, "only {used} of 100 servers hold data");
    assert_placement(&cluster, &expected);
}

#[test]
fn servers_lists_ids_sorted_and_server_finds_each() {
    let cluster = Cluster::new(Config::default(), ["c", "a", "b"]).unwrap();
    assert_eq!(cluster.servers(), ["a", "b", "c"]);
    for id in ["a", "b", "c"] {
        assert_eq!(cluster.server(id).unwrap().id(), id);
    }
    assert!(cluster.server("d").is_none());
    assert!(cluster.server("").is_none());
}

#[test]
fn a_timestamp_displays_as_its_microseconds() {
    assert_eq!(Timestamp(7).to_string(), "7");
    assert_eq!(Timestamp(u64::MAX).to_string(), u64::MAX.to_string());
    assert_eq!(format!("{:>4}", Timestamp(7)), "   7");
}
