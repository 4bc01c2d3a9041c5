//! The guarantees under concurrency, exercised with real threads.
//!
//! Covers, each while another thread joins and leaves servers:
//!
//! 1. read-your-writes: writers that own disjoint keys read back every put
//!    and delete they just made, exactly;
//! 2. monotonic reads: per key, the timestamp a reader gets never decreases,
//!    and is never older than a write acknowledged before the read began;
//! 3. a key overwritten concurrently, which exists before and after every
//!    overwrite, is never read as missing;
//! 4. at the end, every acknowledged last write reads back and every entry
//!    lives exactly on its key's preference list (no write lost to a
//!    migration, no stray copy left by one, read repair included).
//!
//! Also: a server found by `server(id)` while it leaves stays found until it
//! is gone, is gone for good afterwards, and its handle ends up empty; a
//! joining server, once found, stays found.
//!
//! The threads start together at a barrier and run bounded loops; nothing is
//! asserted about timing. Each test takes a few seconds at most in a debug
//! build. `soak` runs the same workload longer and is ignored by default:
//! `cargo test --release --test concurrency -- --ignored`, scaled by the
//! `RINGKV_SOAK_SCALE` environment variable (default [`SOAK_SCALE`]).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use common::{assert_placement, cluster, load, with_replication};
use ringkv::{Bytes, Cluster, Timestamp, Versioned};

/// How much longer than the default run the ignored soak test runs.
const SOAK_SCALE: usize = 50;

/// One workload: how many threads of each kind, and how long each runs.
#[derive(Clone, Copy, Debug)]
struct Workload {
    servers: usize,
    /// Replicas per key. With one, every membership change moves a key's only
    /// copy, so a read that misses the data in flight shows as missing.
    replication: usize,
    /// Threads that own keys and check read-your-writes.
    writers: usize,
    keys_per_writer: usize,
    /// Writes each writer makes at least; all keep writing until the
    /// membership thread has made `min_changes`.
    writes_per_writer: usize,
    /// Keys that exist throughout and are overwritten concurrently.
    hot_keys: usize,
    overwriters: usize,
    /// Like `writes_per_writer`, for the overwriters.
    overwrites_per_thread: usize,
    /// Threads that read the hot keys until the writers are done.
    readers: usize,
    /// Bystander keys loaded before the run, so migrations move real data.
    cold_keys: usize,
    /// Membership changes: at least this many, and more until the writers
    /// are done.
    min_changes: usize,
}

impl Workload {
    fn default_run() -> Workload {
        Workload {
            servers: 5,
            replication: 3,
            writers: 2,
            keys_per_writer: 40,
            writes_per_writer: 1_500,
            hot_keys: 8,
            overwriters: 2,
            overwrites_per_thread: 1_500,
            readers: 2,
            cold_keys: 1_000,
            min_changes: 8,
        }
    }

    fn scaled(scale: usize) -> Workload {
        let base = Workload::default_run();
        Workload {
            writes_per_writer: base.writes_per_writer * scale,
            overwrites_per_thread: base.overwrites_per_thread * scale,
            cold_keys: base.cold_keys * scale.min(20),
            min_changes: base.min_changes * scale,
            ..base
        }
    }
}

/// Upper bound on every loop that runs until another thread says stop.
const LOOP_CAP: usize = 10_000_000;

/// What the threads of one run tell each other.
#[derive(Default)]
struct Progress {
    /// Membership changes made so far.
    churned: AtomicUsize,
    /// Every writing thread has finished.
    written: AtomicBool,
    /// A thread panicked: the others stop at their next check, so a failing
    /// test reports its failure instead of running to the loop caps.
    failed: AtomicBool,
}

impl Progress {
    fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// Sets its flag if it is dropped by a panic unwinding its thread.
struct RaiseOnPanic<'a>(&'a AtomicBool);

impl Drop for RaiseOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// Sets its flag when dropped, whether the scope ended normally or by a
/// panic, so a thread waiting for the flag always stops.
struct Finished<'a>(&'a AtomicBool);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

fn hot_key(i: usize) -> String {
    format!("hot-{i}")
}

/// Whether a writing thread that made `i` writes may stop: it has made its
/// share, and the membership thread has made its minimum number of changes,
/// so every one of those changes raced some writes.
fn may_stop(i: usize, quota: usize, work: &Workload, progress: &Progress) -> bool {
    progress.failed()
        || (i >= quota && progress.churned.load(Ordering::Acquire) >= work.min_changes)
}

/// Writer `t`: puts and deletes its own keys, checking after each that
/// `get_versioned` returns exactly what it wrote. Returns its last version of
/// each key.
fn writer(
    cluster: &Cluster,
    t: usize,
    work: &Workload,
    progress: &Progress,
) -> BTreeMap<Bytes, Versioned> {
    let mut last = BTreeMap::new();
    for i in 0..LOOP_CAP {
        if may_stop(i, work.writes_per_writer, work, progress) {
            break;
        }
        let k = Bytes::from(format!("w{t}-{}", i % work.keys_per_writer));
        let version = if i % 5 == 4 {
            let timestamp = cluster.delete(&k).unwrap();
            assert_eq!(cluster.get(&k).unwrap(), None, "{k:?} after delete {i}");
            Versioned {
                timestamp,
                value: None,
            }
        } else {
            let value = Bytes::from(format!("w{t}-{i}"));
            let timestamp = cluster.put(&k, value.clone()).unwrap();
            Versioned {
                timestamp,
                value: Some(value),
            }
        };
        assert_eq!(
            cluster.get_versioned(&k).unwrap().as_ref(),
            Some(&version),
            "writer {t} does not read its write {i} of {k:?}"
        );
        last.insert(k, version);
    }
    last
}

/// Overwriter `o`: puts to the hot keys, publishing each acknowledged
/// timestamp in `acked` for the readers. Returns its last version of each.
fn overwriter(
    cluster: &Cluster,
    o: usize,
    work: &Workload,
    acked: &[AtomicU64],
    progress: &Progress,
) -> BTreeMap<Bytes, Versioned> {
    let mut last = BTreeMap::new();
    for i in 0..LOOP_CAP {
        if may_stop(i, work.overwrites_per_thread, work, progress) {
            break;
        }
        let j = (i * 7 + o) % work.hot_keys;
        let value = Bytes::from(format!("o{o}-{i}"));
        let timestamp = cluster.put(hot_key(j), value.clone()).unwrap();
        acked[j].fetch_max(timestamp.0, Ordering::Release);
        last.insert(
            Bytes::from(hot_key(j)),
            Versioned {
                timestamp,
                value: Some(value),
            },
        );
    }
    last
}

/// Reader: reads every hot key in turn until the writers are done, checking that each read
/// finds a value, no older than the last one it read of that key and no older
/// than any write acknowledged before the read began. Returns how many reads
/// it made.
fn reader(cluster: &Cluster, work: &Workload, acked: &[AtomicU64], progress: &Progress) -> usize {
    let mut seen = vec![Timestamp(0); work.hot_keys];
    let mut reads = 0;
    for round in 0..LOOP_CAP {
        // Checked before the round, so one full round runs after the writers
        // finish.
        let last_round = progress.written.load(Ordering::Acquire) || progress.failed();
        for (j, seen) in seen.iter_mut().enumerate() {
            let floor = Timestamp(acked[j].load(Ordering::Acquire));
            let k = hot_key(j);
            let Some(version) = cluster.get_versioned(&k).unwrap() else {
                panic!("{k} read as missing in round {round}");
            };
            assert!(
                version.value.is_some(),
                "{k} read as deleted in round {round}"
            );
            assert!(
                version.timestamp >= *seen,
                "{k} went back in time: {} after {}",
                version.timestamp,
                seen
            );
            assert!(
                version.timestamp >= floor,
                "{k} read at {} after a write at {floor} was acknowledged",
                version.timestamp
            );
            *seen = version.timestamp;
            assert!(cluster.get(&k).unwrap().is_some(), "{k} missing via get");
            reads += 2;
        }
        if last_round {
            break;
        }
    }
    reads
}

/// Membership: cycles through joining a new server, making an original one
/// leave, bringing it back and making the new one leave, at least
/// `min_changes` times and until the writers are done, counting them in
/// `progress`.
fn churn(cluster: &Cluster, work: &Workload, progress: &Progress) {
    let churned = &progress.churned;
    for round in 0..LOOP_CAP {
        let enough = churned.load(Ordering::Acquire) >= work.min_changes
            && progress.written.load(Ordering::Acquire);
        if enough || progress.failed() {
            break;
        }
        let visitor = format!("m{round}");
        let original = format!("s{:02}", round % work.servers);
        cluster.join(visitor.as_str()).unwrap();
        churned.fetch_add(1, Ordering::Release);
        cluster.leave(&original).unwrap();
        churned.fetch_add(1, Ordering::Release);
        cluster.join(original.as_str()).unwrap();
        churned.fetch_add(1, Ordering::Release);
        cluster.leave(&visitor).unwrap();
        churned.fetch_add(1, Ordering::Release);
    }
}

/// Runs `work` and checks the end state.
fn run(work: Workload) {
    let cluster = cluster(work.servers, with_replication(work.replication));
    let mut expected = load(&cluster, work.cold_keys);
    for j in 0..work.hot_keys {
        let timestamp = cluster.put(hot_key(j), "initial").unwrap();
        expected.insert(
            Bytes::from(hot_key(j)),
            Versioned {
                timestamp,
                value: Some(Bytes::from_static(b"initial")),
            },
        );
    }
    let acked: Vec<AtomicU64> = (0..work.hot_keys).map(|_| AtomicU64::new(0)).collect();
    let progress = Progress::default();
    let producers = work.writers + work.overwriters;
    let start = Barrier::new(producers + work.readers + 1);

    let written = std::thread::scope(|scope| {
        let (cluster, work, acked, progress, start) = (&cluster, &work, &acked, &progress, &start);
        let producer_handles: Vec<_> = (0..work.writers)
            .map(|t| {
                scope.spawn(move || {
                    let _guard = RaiseOnPanic(&progress.failed);
                    start.wait();
                    writer(cluster, t, work, progress)
                })
            })
            .chain((0..work.overwriters).map(|o| {
                scope.spawn(move || {
                    let _guard = RaiseOnPanic(&progress.failed);
                    start.wait();
                    overwriter(cluster, o, work, acked, progress)
                })
            }))
            .collect();
        let reader_handles: Vec<_> = (0..work.readers)
            .map(|_| {
                scope.spawn(move || {
                    let _guard = RaiseOnPanic(&progress.failed);
                    start.wait();
                    reader(cluster, work, acked, progress)
                })
            })
            .collect();
        let churner = scope.spawn(move || {
            let _guard = RaiseOnPanic(&progress.failed);
            start.wait();
            churn(cluster, work, progress);
        });

        let written: Vec<BTreeMap<Bytes, Versioned>> = producer_handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        progress.written.store(true, Ordering::Release);
        for h in reader_handles {
            assert!(h.join().unwrap() > 0);
        }
        churner.join().unwrap();
        written
    });

    // The newest acknowledged write of each key: for a hot key, the latest of
    // the overwriters' last writes (timestamps are unique).
    for last in written {
        for (k, version) in last {
            let newest = expected.entry(k).or_insert_with(|| version.clone());
            if version.timestamp > newest.timestamp {
                *newest = version;
            }
        }
    }
    for (k, version) in &expected {
        assert_eq!(
            cluster.get_versioned(k).unwrap().as_ref(),
            Some(version),
            "{k:?} lost its last acknowledged write"
        );
    }
    assert_placement(&cluster, &expected);
    let changes = progress.churned.load(Ordering::Acquire);
    assert!(changes >= work.min_changes);
    assert_eq!(cluster.stats().membership_changes, changes as u64);
    let mut servers = cluster.servers();
    servers.sort();
    assert_eq!(
        servers,
        common::ids(work.servers),
        "the churn put back every server"
    );
}

#[test]
fn writers_read_their_own_writes_while_membership_changes() {
    run(Workload {
        replication: 1,
        hot_keys: 1,
        overwriters: 0,
        readers: 0,
        writers: 3,
        ..Workload::default_run()
    });
}

#[test]
fn reads_are_monotonic_and_never_miss_a_key_while_membership_changes() {
    run(Workload {
        replication: 1,
        writers: 0,
        overwriters: 2,
        readers: 2,
        ..Workload::default_run()
    });
}

#[test]
fn everything_at_once() {
    run(Workload::default_run());
}

#[test]
#[ignore = "soak: minutes in a debug build; scale with RINGKV_SOAK_SCALE"]
fn soak() {
    let scale = std::env::var("RINGKV_SOAK_SCALE")
        .ok()
        .map(|s| s.parse().expect("RINGKV_SOAK_SCALE is a positive integer"))
        .unwrap_or(SOAK_SCALE);
    for replication in [1, 2, 3] {
        run(Workload {
            replication,
            ..Workload::scaled(scale)
        });
    }
}

/// Loads a cluster big enough that a membership change takes a while, and
/// returns what it holds. One replica per key, so a read that misses data in
/// flight finds nothing.
fn big_cluster() -> (Cluster, BTreeMap<Bytes, Versioned>) {
    let cluster = cluster(10, with_replication(1));
    let expected = load(&cluster, 5_000);
    (cluster, expected)
}

/// An empty cluster of `ids`: its `replicas()` are what a cluster with the
/// same members reports, since placement depends on the ids alone.
fn twin(ids: &[String]) -> Cluster {
    Cluster::new(with_replication(1), ids.iter().cloned()).unwrap()
}

/// Checks what `servers()` and then `replicas(key)` report while a
/// membership change from `old` to `new` may be in flight: each is one of
/// the two rings, and once `servers()` reports the new ring, `replicas()`
/// does too (every later snapshot has the new ring as its current one).
fn assert_ring_is_old_or_new(cluster: &Cluster, key: &Bytes, old: &Cluster, new: &Cluster) {
    let servers = cluster.servers();
    let list = cluster.replicas(key);
    if servers == new.servers() {
        assert_eq!(
            list,
            new.replicas(key),
            "servers() is new, replicas() is not"
        );
    } else {
        assert_eq!(servers, old.servers(), "servers() is neither ring");
        assert!(
            list == old.replicas(key) || list == new.replicas(key),
            "replicas() is neither ring's: {list:?}"
        );
    }
}

#[test]
fn a_leaving_server_is_found_until_it_goes_then_never_again_and_ends_empty() {
    let (cluster, expected) = big_cluster();
    let handle = cluster.server("s03").unwrap();
    assert!(!handle.is_empty());
    let mut ids = common::ids(10);
    let old = twin(&ids);
    ids.retain(|id| id != "s03");
    let new = twin(&ids);
    let left = AtomicBool::new(false);
    let start = Barrier::new(2);

    let polls = std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            start.wait();
            let mut gone = false;
            let mut polls = 0usize;
            let mut keys = expected.iter().cycle();
            for _ in 0..LOOP_CAP {
                let finished = left.load(Ordering::Acquire);
                match cluster.server("s03") {
                    Some(found) => {
                        assert!(!gone, "s03 came back after it was gone");
                        assert!(Arc::ptr_eq(&found, &handle), "another server named s03");
                    }
                    None => {
                        gone = true;
                        // Once gone, the ring it was read from never had it.
                        assert!(!cluster.servers().iter().any(|id| id.as_str() == "s03"));
                    }
                }
                let (k, version) = keys.next().unwrap();
                assert_ring_is_old_or_new(&cluster, k, &old, &new);
                // Reads meanwhile see every write made before the leave.
                assert_eq!(cluster.get_versioned(k).unwrap().as_ref(), Some(version));
                polls += 1;
                if finished {
                    assert!(gone, "s03 still found after its leave returned");
                    break;
                }
            }
            polls
        });

        let migration = {
            let _finished = Finished(&left);
            start.wait();
            cluster.leave("s03").unwrap()
        };
        assert!(migration.copied > 0);
        poller.join().unwrap()
    });

    assert!(polls > 0);
    assert!(cluster.server("s03").is_none());
    assert_eq!(handle.len(), 0, "the leaving server's handle is emptied");
    assert_eq!(handle.entries().count(), 0);
    assert_placement(&cluster, &expected);
}

#[test]
fn a_joining_server_once_found_stays_found() {
    let (cluster, expected) = big_cluster();
    let mut ids = common::ids(10);
    let old = twin(&ids);
    ids.push("new".to_owned());
    let new = twin(&ids);
    let joined = AtomicBool::new(false);
    let start = Barrier::new(2);

    std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            start.wait();
            let mut found: Option<Arc<ringkv::Server>> = None;
            let mut keys = expected.iter().cycle();
            for _ in 0..LOOP_CAP {
                let finished = joined.load(Ordering::Acquire);
                match (cluster.server("new"), &found) {
                    (Some(now), None) => {
                        assert_eq!(now.id(), "new");
                        // The ring that has it is the one servers() reports.
                        assert!(cluster.servers().iter().any(|id| id.as_str() == "new"));
                        found = Some(now);
                    }
                    (Some(now), Some(first)) => assert!(Arc::ptr_eq(&now, first)),
                    (None, Some(_)) => panic!("the joining server disappeared"),
                    (None, None) => {}
                }
                let (k, version) = keys.next().unwrap();
                assert_ring_is_old_or_new(&cluster, k, &old, &new);
                if found.is_some() {
                    // Found means the new ring is current.
                    assert_eq!(cluster.replicas(k), new.replicas(k));
                }
                assert_eq!(cluster.get_versioned(k).unwrap().as_ref(), Some(version));
                if finished {
                    assert!(found.is_some(), "not found after its join returned");
                    break;
                }
            }
        });

        {
            let _finished = Finished(&joined);
            start.wait();
            cluster.join("new").unwrap();
        }
        poller.join().unwrap();
    });

    assert_placement(&cluster, &expected);
}

#[test]
fn membership_changes_from_two_threads_run_one_at_a_time() {
    let cluster = cluster(4, with_replication(3));
    let expected = load(&cluster, 1_000);
    let start = Barrier::new(2);

    std::thread::scope(|scope| {
        for t in 0..2 {
            let (cluster, start) = (&cluster, &start);
            scope.spawn(move || {
                start.wait();
                for round in 0..6 {
                    let id = format!("t{t}-{round}");
                    cluster.join(id.as_str()).unwrap();
                    if round % 2 == 1 {
                        cluster.leave(&id).unwrap();
                    }
                }
            });
        }
    });

    assert_eq!(cluster.servers().len(), 4 + 6);
    assert_eq!(cluster.stats().membership_changes, 2 * (6 + 3));
    assert_placement(&cluster, &expected);
}
