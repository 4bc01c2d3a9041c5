#![cfg(loom)]
//! Exhaustive loom models of ringkv's data path racing membership changes.
//!
//! Each model builds a tiny cluster (2 or 3 servers, K 1, R 1 or 2) inside
//! `loom::model`, races public API calls from two or three threads, and
//! checks one property afterwards (and, for reads, during). Keys are chosen
//! by [`key_where`] so that the membership change really moves them.
//!
//! Read repair is off in every model: a repairing `get` would write the
//! newest version back and could mask a lost or misplaced write that the
//! model is meant to see. Read repair racing membership changes has models of
//! its own once it is part of the protocol under test.
//!
//! The number of executions each model explores is printed when the suite
//! runs with `--nocapture`; README.md records them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use loom::thread;
use ringkv::{Bytes, Cluster, Config, Timestamp, Versioned};
use ringkv_loom_tests::key_where;

fn config(replication: usize) -> Config {
    Config {
        vnodes: 1,
        replication,
        read_repair: false,
        ..Config::default()
    }
}

/// Runs `f` under loom with at most `bound` preemptions per execution
/// (`None`: exhaustive) and prints how many executions were explored.
fn model(name: &str, bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let runs = Arc::new(AtomicUsize::new(0));
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = bound;
    let counter = Arc::clone(&runs);
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "model {name}: {} executions, preemption bound {bound:?}",
        runs.load(Ordering::Relaxed)
    );
}

/// Asserts that `key` lives on exactly its preference list and nowhere else,
/// and that every replica holds `expected`.
fn assert_placed(cluster: &Cluster, key: &str, expected: &Versioned) {
    let replicas = cluster.replicas(key);
    for id in cluster.servers() {
        let held = cluster.server(&id).unwrap().get(key);
        if replicas.contains(&id) {
            assert_eq!(held.as_ref(), Some(expected), "{key} on replica {id}");
        } else {
            assert_eq!(held, None, "{key} outside its preference list, on {id}");
        }
    }
}

fn value(cluster: &Cluster, key: &str) -> Option<Bytes> {
    cluster.get(key).unwrap()
}

fn spawn<T: Send + 'static>(
    cluster: &Arc<Cluster>,
    f: impl FnOnce(&Cluster) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let cluster = Arc::clone(cluster);
    thread::spawn(move || f(&cluster))
}

/// Model 1: a put racing the leave of the key's replica: the acknowledged value is
/// readable afterwards and lives on exactly its preference list.
///
/// Explored: exhaustive (no preemption bound), 1 126 executions (measured with `--nocapture`).
#[test]
fn put_racing_leave() {
    let key = key_where((&["a", "b"], 1, 1), (&["b"], 1, 1), |old, _| {
        old.contains("a")
    });
    model("put_racing_leave", None, move || {
        let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
        let k = key.clone();
        let writer = spawn(&cluster, move |c| c.put(&k, "v").unwrap());
        cluster.leave("a").unwrap();
        let timestamp = writer.join().unwrap();

        assert_eq!(value(&cluster, &key).as_deref(), Some(&b"v"[..]));
        let expected = Versioned {
            timestamp,
            value: Some(Bytes::from("v")),
        };
        assert_placed(&cluster, &key, &expected);
    });
}

/// Model 2: a put racing a join that moves the key to the joining server (the old
/// replica stays in the cluster and must lose it): the acknowledged value is
/// readable afterwards and lives on exactly its preference list.
///
/// Explored: exhaustive (no preemption bound), 308 executions (measured with `--nocapture`).
#[test]
fn put_racing_join() {
    let key = key_where((&["a", "b"], 1, 1), (&["a", "b", "c"], 1, 1), |_, new| {
        new.contains("c")
    });
    model("put_racing_join", None, move || {
        let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
        let k = key.clone();
        let writer = spawn(&cluster, move |c| c.put(&k, "v").unwrap());
        cluster.join("c").unwrap();
        let timestamp = writer.join().unwrap();

        assert_eq!(value(&cluster, &key).as_deref(), Some(&b"v"[..]));
        let expected = Versioned {
            timestamp,
            value: Some(Bytes::from("v")),
        };
        assert_placed(&cluster, &key, &expected);
    });
}

/// Model 3: an overwrite racing a get, on a stable ring with one replica (so no
/// second replica can cover a gap): the get returns the old or the new value,
/// never `None`.
///
/// Explored: exhaustive (no preemption bound), 697 executions (measured with `--nocapture`).
#[test]
fn overwrite_racing_get() {
    model("overwrite_racing_get", None, || {
        let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
        cluster.put("k", "old").unwrap();
        let writer = spawn(&cluster, |c| c.put("k", "new").unwrap());
        let seen = value(&cluster, "k");
        assert!(
            seen.as_deref() == Some(b"old") || seen.as_deref() == Some(b"new"),
            "get saw {seen:?}"
        );
        writer.join().unwrap();
    });
}

/// Model 4a: a get racing a join that moves the key, written (twice) before: never
/// `None`, never the older value.
///
/// Explored: preemption bound 3, 148 executions (measured with `--nocapture`).
#[test]
fn get_racing_join() {
    let key = key_where((&["a", "b"], 1, 1), (&["a", "b", "c"], 1, 1), |_, new| {
        new.contains("c")
    });
    model("get_racing_join", Some(3), move || {
        let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
        cluster.put(&key, "old").unwrap();
        cluster.put(&key, "new").unwrap();
        let k = key.clone();
        let reader = spawn(&cluster, move |c| value(c, &k));
        cluster.join("c").unwrap();
        assert_eq!(reader.join().unwrap().as_deref(), Some(&b"new"[..]));
    });
}

/// Model 4b: a get racing the leave of the key's replica, on a key written (twice)
/// before: never `None`, never the older value.
///
/// Explored: preemption bound 3, 181 executions (measured with `--nocapture`).
#[test]
fn get_racing_leave() {
    let key = key_where((&["a", "b"], 1, 1), (&["b"], 1, 1), |old, _| {
        old.contains("a")
    });
    model("get_racing_leave", Some(3), move || {
        let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
        cluster.put(&key, "old").unwrap();
        cluster.put(&key, "new").unwrap();
        let k = key.clone();
        let reader = spawn(&cluster, move |c| value(c, &k));
        cluster.leave("a").unwrap();
        assert_eq!(reader.join().unwrap().as_deref(), Some(&b"new"[..]));
    });
}

/// Model 4c: a get racing a leave when the replicas disagree: the newest version
/// is only on the leaving replica (written there with `Server::apply`, as
/// after a lost message). The migration must merge from every old replica,
/// so neither the racing get nor a later one returns the older version.
///
/// Explored: preemption bound 3, 487 executions (measured with `--nocapture`).
#[test]
fn get_racing_leave_of_the_only_newest_replica() {
    let servers = ["a", "b", "c"];
    let key = key_where((&servers, 1, 2), (&servers, 1, 2), |_, _| true);
    let list = ringkv_loom_tests::preference(&servers, 1, 2, key.as_bytes());
    // The second replica holds the newest version and leaves, so a copy that
    // read the first replica alone would lose it.
    let (first, second) = (list[0].clone(), list[1].clone());
    model(
        "get_racing_leave_of_the_only_newest_replica",
        Some(3),
        move || {
            let cluster = Arc::new(Cluster::new(config(2), ["a", "b", "c"]).unwrap());
            let older = Versioned {
                timestamp: Timestamp(10),
                value: Some(Bytes::from("old")),
            };
            let newer = Versioned {
                timestamp: Timestamp(20),
                value: Some(Bytes::from("new")),
            };
            cluster.server(&first).unwrap().apply(&key, older).unwrap();
            cluster.server(&second).unwrap().apply(&key, newer).unwrap();
            let k = key.clone();
            let reader = spawn(&cluster, move |c| value(c, &k));
            cluster.leave(&second).unwrap();
            assert_eq!(reader.join().unwrap().as_deref(), Some(&b"new"[..]));
            assert_eq!(value(&cluster, &key).as_deref(), Some(&b"new"[..]));
        },
    );
}

/// Model 4d: the same below R servers: the newest version is only on the
/// leaving replica and nobody gains its range (R 2, two servers). The leave
/// must hand the leaving replica's entries to the replica that stays, so
/// neither the racing get nor a later one returns the older version.
///
/// Explored: preemption bound 3, 253 executions (measured with `--nocapture`).
#[test]
fn get_racing_leave_below_r_of_the_only_newest_replica() {
    model(
        "get_racing_leave_below_r_of_the_only_newest_replica",
        Some(3),
        || {
            let cluster = Arc::new(Cluster::new(config(2), ["a", "b"]).unwrap());
            let older = Versioned {
                timestamp: Timestamp(10),
                value: Some(Bytes::from("old")),
            };
            let newer = Versioned {
                timestamp: Timestamp(20),
                value: Some(Bytes::from("new")),
            };
            cluster.server("b").unwrap().apply("k", older).unwrap();
            cluster.server("a").unwrap().apply("k", newer).unwrap();
            let reader = spawn(&cluster, |c| value(c, "k"));
            cluster.leave("a").unwrap();
            assert_eq!(reader.join().unwrap().as_deref(), Some(&b"new"[..]));
            assert_eq!(value(&cluster, "k").as_deref(), Some(&b"new"[..]));
        },
    );
}

/// Model 5: monotonic reads: a put racing the leave of the key's replica while a
/// third thread reads twice. The second read never returns an older version
/// than the first (and neither returns `None`).
///
/// Explored: preemption bound 3, 19 873 executions (measured with `--nocapture`).
#[test]
fn monotonic_reads_across_leave() {
    let key = key_where((&["a", "b"], 1, 1), (&["b"], 1, 1), |old, _| {
        old.contains("a")
    });
    model("monotonic_reads_across_leave", Some(3), move || {
        let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
        cluster.put(&key, "old").unwrap();
        let k = key.clone();
        let writer = spawn(&cluster, move |c| c.put(&k, "new").unwrap());
        let k = key.clone();
        let reader = spawn(&cluster, move |c| {
            let first = c.get_versioned(&k).unwrap().expect("key exists");
            let second = c.get_versioned(&k).unwrap().expect("key exists");
            assert!(
                second.timestamp >= first.timestamp,
                "read {second:?} after {first:?}"
            );
        });
        cluster.leave("a").unwrap();
        writer.join().unwrap();
        reader.join().unwrap();
    });
}

/// Model 6: a delete racing a put, both with client timestamps, on two replicas:
/// every replica converges on the last-write-wins winner, whichever arrives
/// first. Run for the delete newer, the put newer, and a tie (the tombstone
/// wins ties).
///
/// Explored: preemption bound 3, 211 + 218 + 211 executions (measured with `--nocapture`).
#[test]
fn delete_racing_put_converges() {
    for (put_at, delete_at) in [(10, 20), (20, 10), (15, 15)] {
        model("delete_racing_put_converges", Some(3), move || {
            let cluster = Arc::new(Cluster::new(config(2), ["a", "b"]).unwrap());
            let deleter = spawn(&cluster, move |c| {
                c.delete_at("k", Timestamp(delete_at)).unwrap()
            });
            cluster.put_at("k", "v", Timestamp(put_at)).unwrap();
            deleter.join().unwrap();

            let winner = if delete_at >= put_at {
                Versioned {
                    timestamp: Timestamp(delete_at),
                    value: None,
                }
            } else {
                Versioned {
                    timestamp: Timestamp(put_at),
                    value: Some(Bytes::from("v")),
                }
            };
            assert_placed(&cluster, "k", &winner);
        });
    }
}

/// Model 7a: two puts racing on one existing key, two replicas: both replicas
/// converge on the put with the later timestamp, and a later get returns it.
///
/// Explored: preemption bound 3, 1 088 executions (measured with `--nocapture`).
#[test]
fn racing_overwrites_converge() {
    model("racing_overwrites_converge", Some(3), || {
        let cluster = Arc::new(Cluster::new(config(2), ["a", "b"]).unwrap());
        cluster.put("k", "first").unwrap();
        let other = spawn(&cluster, |c| (c.put("k", "x").unwrap(), Bytes::from("x")));
        let mine = (cluster.put("k", "y").unwrap(), Bytes::from("y"));
        let theirs = other.join().unwrap();

        let (timestamp, bytes) = std::cmp::max(mine, theirs);
        assert_eq!(value(&cluster, "k"), Some(bytes.clone()));
        assert_placed(
            &cluster,
            "k",
            &Versioned {
                timestamp,
                value: Some(bytes),
            },
        );
    });
}

/// Model 7b: two puts racing to create one key, two replicas: both race to insert
/// the key's entry, and the later timestamp must still win on each replica.
///
/// Explored: preemption bound 3, 400 executions (measured with `--nocapture`).
#[test]
fn racing_inserts_converge() {
    model("racing_inserts_converge", Some(3), || {
        let cluster = Arc::new(Cluster::new(config(2), ["a", "b"]).unwrap());
        let other = spawn(&cluster, |c| (c.put("k", "x").unwrap(), Bytes::from("x")));
        let mine = (cluster.put("k", "y").unwrap(), Bytes::from("y"));
        let theirs = other.join().unwrap();

        let (timestamp, bytes) = std::cmp::max(mine, theirs);
        assert_eq!(value(&cluster, "k"), Some(bytes.clone()));
        assert_placed(
            &cluster,
            "k",
            &Versioned {
                timestamp,
                value: Some(bytes),
            },
        );
    });
}

/// Model 8: a join racing a leave, from two threads: both finish (in either
/// order), the ring has the expected members, and every key written before
/// is readable and lives on exactly its preference list.
///
/// Explored: exhaustive (no preemption bound), 6 executions (measured with `--nocapture`).
#[test]
fn join_racing_leave() {
    model("join_racing_leave", None, || {
        let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
        let keys = ["k0", "k1", "k2"];
        let written: Vec<Timestamp> = keys.iter().map(|k| cluster.put(k, *k).unwrap()).collect();
        let joiner = spawn(&cluster, |c| c.join("c").unwrap());
        cluster.leave("a").unwrap();
        joiner.join().unwrap();

        assert_eq!(cluster.servers(), ["b", "c"]);
        for (key, timestamp) in keys.iter().zip(written) {
            assert_eq!(value(&cluster, key).as_deref(), Some(key.as_bytes()));
            let expected = Versioned {
                timestamp,
                value: Some(Bytes::from(*key)),
            };
            assert_placed(&cluster, key, &expected);
        }
    });
}

/// Model 9: a put racing the compaction of the key's tombstone, on two
/// replicas: the put is never lost, whichever replica compaction reaches
/// first. Compaction claims a slot before unlinking its node, so a put
/// cannot be merged into a node on its way out.
///
/// Explored: preemption bound 3, 1 262 executions (measured with `--nocapture`).
#[test]
fn put_racing_compaction() {
    model("put_racing_compaction", Some(3), || {
        let cluster = Arc::new(Cluster::new(config(2), ["a", "b"]).unwrap());
        cluster.put("k", "old").unwrap();
        let deleted = cluster.delete("k").unwrap();
        let writer = spawn(&cluster, |c| c.put("k", "new").unwrap());
        cluster.compact(Timestamp(deleted.0 + 1)).unwrap();
        let timestamp = writer.join().unwrap();

        assert_eq!(value(&cluster, "k").as_deref(), Some(&b"new"[..]));
        let expected = Versioned {
            timestamp,
            value: Some(Bytes::from("new")),
        };
        assert_placed(&cluster, "k", &expected);
    });
}

/// Model 10: a late write with an old client timestamp racing the compaction
/// of a newer delete: the write is refused or loses to the tombstone, and
/// the deleted key never comes back, on any replica.
///
/// Explored: preemption bound 3, 43 executions (measured with `--nocapture`).
#[test]
fn old_write_racing_compaction() {
    model("old_write_racing_compaction", Some(3), || {
        let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
        cluster.put("k", "v").unwrap();
        let deleted = cluster.delete("k").unwrap();
        let late = Timestamp(deleted.0 - 1);
        let writer = spawn(&cluster, move |c| c.put_at("k", "late", late));
        cluster.compact(Timestamp(deleted.0 + 1)).unwrap();
        let outcome = writer.join().unwrap();

        assert!(
            matches!(
                outcome,
                Ok(()) | Err(ringkv::Error::TimestampCompacted { .. })
            ),
            "{outcome:?}"
        );
        assert_eq!(value(&cluster, "k"), None);
        for id in cluster.servers() {
            let held = cluster.server(&id).unwrap().get("k");
            assert!(
                held.as_ref().is_none_or(Versioned::is_tombstone),
                "{id} holds {held:?}"
            );
        }
    });
}

/// Model 10b: a stray older value (on a server off the key's preference
/// list, written with `Server::apply`) and a compaction of the newer delete,
/// racing a get; then the stray's holder takes over the key. Compaction must
/// remove the stray before the tombstone that supersedes it, or the deleted
/// key comes back.
///
/// Explored: preemption bound 3, 140 executions (measured with `--nocapture`).
#[test]
fn stray_value_outlives_no_compacted_delete() {
    let key = key_where((&["a", "b"], 1, 1), (&["a"], 1, 1), |old, _| {
        old.contains("b")
    });
    model(
        "stray_value_outlives_no_compacted_delete",
        Some(3),
        move || {
            let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
            let stray = Versioned {
                timestamp: Timestamp(10),
                value: Some(Bytes::from("stray")),
            };
            cluster.server("a").unwrap().apply(&key, stray).unwrap();
            let deleted = cluster.delete(&key).unwrap();
            let k = key.clone();
            let reader = spawn(&cluster, move |c| value(c, &k));
            cluster.compact(Timestamp(deleted.0 + 1)).unwrap();
            assert_eq!(reader.join().unwrap(), None);

            cluster.leave("b").unwrap();
            assert_eq!(value(&cluster, &key), None);
            assert_eq!(cluster.server("a").unwrap().get(&key), None);
        },
    );
}

/// Model 11: read repair racing a leave. The replicas disagree (the newer
/// version is only on the replica that stays); a get during the leave finds
/// the leaving replica stale and repairs it. The repair is a write under the
/// get's snapshot, so the leave waits for it: afterwards the leaving server
/// holds nothing, and the key lives on exactly its new preference list.
///
/// Explored: preemption bound 3, 569 executions (measured with `--nocapture`).
#[test]
fn read_repair_racing_leave() {
    let servers = ["a", "b", "c"];
    let key = key_where((&servers, 1, 2), (&servers, 1, 2), |_, _| true);
    let list = ringkv_loom_tests::preference(&servers, 1, 2, key.as_bytes());
    let (stays, leaves) = (list[0].clone(), list[1].clone());
    model("read_repair_racing_leave", Some(3), move || {
        let config = Config {
            read_repair: true,
            ..config(2)
        };
        let cluster = Arc::new(Cluster::new(config, ["a", "b", "c"]).unwrap());
        let older = Versioned {
            timestamp: Timestamp(10),
            value: Some(Bytes::from("old")),
        };
        let newer = Versioned {
            timestamp: Timestamp(20),
            value: Some(Bytes::from("new")),
        };
        cluster.server(&leaves).unwrap().apply(&key, older).unwrap();
        cluster
            .server(&stays)
            .unwrap()
            .apply(&key, newer.clone())
            .unwrap();
        let departing = cluster.server(&leaves).unwrap();
        let k = key.clone();
        let reader = spawn(&cluster, move |c| value(c, &k));
        cluster.leave(&leaves).unwrap();

        assert_eq!(reader.join().unwrap().as_deref(), Some(&b"new"[..]));
        assert!(
            departing.is_empty(),
            "the departed server holds {:?}",
            departing.get(&key)
        );
        assert_placed(&cluster, &key, &newer);
    });
}

/// Model 12: a put racing a leave and then a join, back to back. Every
/// snapshot publication must wait out its grace period, including the last
/// one of `leave`; otherwise the join's first wait checks the wrong snapshot
/// and the put, still running on an older one, lands after the join's copy.
///
/// Explored: preemption bound 3, 200 executions (measured with `--nocapture`).
#[test]
fn put_racing_leave_then_join() {
    // After the leave, "b" holds everything; the join then moves the key to "c".
    let key = key_where((&["b"], 1, 1), (&["b", "c"], 1, 1), |_, new| {
        new.contains("c")
    });
    model("put_racing_leave_then_join", Some(3), move || {
        let cluster = Arc::new(Cluster::new(config(1), ["a", "b"]).unwrap());
        let k = key.clone();
        let writer = spawn(&cluster, move |c| c.put(&k, "v").unwrap());
        cluster.leave("a").unwrap();
        cluster.join("c").unwrap();
        let timestamp = writer.join().unwrap();

        assert_eq!(value(&cluster, &key).as_deref(), Some(&b"v"[..]));
        let expected = Versioned {
            timestamp,
            value: Some(Bytes::from("v")),
        };
        assert_placed(&cluster, &key, &expected);
    });
}
