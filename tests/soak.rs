//! Soak: minutes of mixed load while servers join and leave and tombstones
//! are compacted, checking that nothing acknowledged is lost and that memory
//! stays bounded.
//!
//! Ignored by default; run it with
//! `cargo test --release --test soak -- --ignored --nocapture`. It runs for
//! [`DEFAULT_SECS`] seconds, or `RINGKV_SOAK_SECS`.
//!
//! # The load
//!
//! Each writer owns a sliding window of [`WINDOW`] keys. It keeps creating
//! fresh keys at the front; each key that falls out of the back is deleted
//! and never written again (*retired*), so without compaction tombstones
//! would pile up without bound. Inside the window it overwrites, deletes and
//! reads back its own keys, checking each read against its last acknowledged
//! write. Readers read keys around every writer's window. One thread joins
//! and leaves servers without pause; another compacts periodically.
//!
//! # What is checked
//!
//! * Read-your-writes for every writer read, during the run.
//! * After every compaction, the entries held by all servers stay under
//!   (R + 1) × (keys in the windows + keys retired since just before the
//!   compaction began): every tombstone of a key retired earlier is gone, so
//!   the count does not grow with the run's length. (R + 1, because a
//!   join copies a range to the new server before the old replica drops it.)
//! * At the end, after a final compaction with nothing running: every
//!   window key reads back its last acknowledged write, every server holds
//!   exactly the live keys it replicates at their last versions, and no
//!   tombstone is left.
//! * Live heap bytes (counted by this binary's global allocator) and the
//!   process's resident set in the last third of the run stay, beyond a
//!   tolerance, within the most the run needed before (after the windows
//!   filled). A leak of the entries that migrations and compaction scan and
//!   remove (the crossbeam-skiplist 0.1.3 range iterator leak, crossbeam
//!   issue 1178, which ringkv works around) would show here as steady
//!   growth. Writers retire keys no faster than compaction removes their
//!   tombstones (at most [`MAX_BACKLOG`] waiting), so the memory the load
//!   itself needs is bounded whatever the scheduling; comparing two medians
//!   of an unbounded backlog failed on a busy host with and without a
//!   leak.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::assert_placement;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv::{Bytes, Cluster, Config, Timestamp, Versioned};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is only a statistic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// How long the soak runs unless `RINGKV_SOAK_SECS` says otherwise.
const DEFAULT_SECS: u64 = 180;
const WRITERS: usize = 3;
const READERS: usize = 1;
/// Keys each writer keeps alive at once.
const WINDOW: usize = 2_000;
const REPLICATION: usize = 3;
const VNODES: usize = 8;
/// The membership thread keeps the cluster between these sizes.
const MIN_SERVERS: usize = 3;
const MAX_SERVERS: usize = 7;
/// Pause between compactions.
const COMPACT_EVERY: Duration = Duration::from_millis(500);
/// Keys retired but not yet covered by a finished compaction, at most:
/// writers wait before retiring more (see [`writer`]).
const MAX_BACKLOG: u64 = 20_000;
/// Samples of memory and entries taken over the run.
const SAMPLES: u32 = 90;
/// Allowed growth of the median live heap in the last third of the run over
/// its highest sample before: a fraction of that, plus a constant for
/// crossbeam-epoch garbage and allocator noise.
const HEAP_GROWTH: (f64, usize) = (0.25, 4 << 20);
/// The same for the resident set, which also holds the allocator's free
/// pages and so moves more.
const RSS_GROWTH: (f64, usize) = (0.5, 32 << 20);
/// Slack on the entry bound: `Server::len` is exact only with no write
/// racing it, and a few writes are always in flight.
const LEN_SLACK: usize = 64;

fn key_name(writer: usize, id: u64) -> String {
    format!("w{writer}-{id}")
}

/// What the threads share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Each writer's next key id: the front of its window.
    fronts: [AtomicU64; WRITERS],
    /// Writers whose window has filled.
    filled: AtomicUsize,
    /// Retirements begun and acknowledged (the delete returned).
    retire_started: AtomicU64,
    retire_acked: AtomicU64,
    /// Retirements acknowledged before the last finished compaction began:
    /// their tombstones are gone.
    compacted_through: AtomicU64,
    /// Operations completed, by writers and readers.
    ops: AtomicU64,
    changes: AtomicU64,
    compactions: AtomicU64,
    compacted: AtomicU64,
    /// The largest entry count seen after a compaction, and the bound then.
    max_entries: AtomicUsize,
    max_retired_since: AtomicU64,
}

/// Sets `stop` if its thread panics, so the others end and the panic is
/// reported instead of the run continuing to its end.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

fn stopped(shared: &Shared) -> bool {
    shared.stop.load(Ordering::Acquire)
}

/// Writer `w`: creates, overwrites, deletes, retires and reads back its own
/// keys until stopped. Returns its window: each key id with the last
/// version it acknowledged.
fn writer(cluster: &Cluster, w: usize, shared: &Shared) -> VecDeque<(u64, Versioned)> {
    let _guard = StopOnPanic(&shared.stop);
    let mut rng = StdRng::seed_from_u64(w as u64);
    let mut window: VecDeque<(u64, Versioned)> = VecDeque::with_capacity(WINDOW + 1);
    let mut next_id = 0u64;
    let mut seq = 0u64;
    let mut value_for = |key: &str, rng: &mut StdRng| {
        seq += 1;
        let padding = rng.gen_range(0..96);
        Bytes::from(format!("{key}:{seq}:{:x<padding$}", ""))
    };

    let mut ops = 0u64;
    while !stopped(shared) {
        let roll = rng.gen_range(0..100);
        if roll < 10 || window.is_empty() {
            let key = key_name(w, next_id);
            let value = value_for(&key, &mut rng);
            let timestamp = cluster.put(&key, value.clone()).unwrap();
            window.push_back((
                next_id,
                Versioned {
                    timestamp,
                    value: Some(value),
                },
            ));
            next_id += 1;
            shared.fronts[w].store(next_id, Ordering::Relaxed);

            if window.len() > WINDOW {
                // Back-pressure: retire no faster than compaction removes
                // tombstones. Without it the backlog, and the memory it
                // holds, follows how the host schedules seven threads on
                // two cores, and the memory checks would measure that
                // rather than a leak.
                while !stopped(shared)
                    && shared.retire_started.load(Ordering::SeqCst)
                        >= shared.compacted_through.load(Ordering::SeqCst) + MAX_BACKLOG
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let (old, _) = window.pop_front().expect("the window is not empty");
                shared.retire_started.fetch_add(1, Ordering::SeqCst);
                cluster.delete(key_name(w, old)).unwrap();
                shared.retire_acked.fetch_add(1, Ordering::SeqCst);
                ops += 1;
            } else if window.len() == WINDOW {
                shared.filled.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            let slot = rng.gen_range(0..window.len());
            let (id, last) = &mut window[slot];
            let key = key_name(w, *id);
            if roll < 60 {
                let value = value_for(&key, &mut rng);
                let timestamp = cluster.put(&key, value.clone()).unwrap();
                *last = Versioned {
                    timestamp,
                    value: Some(value),
                };
            } else if roll < 75 {
                let timestamp = cluster.delete(&key).unwrap();
                *last = Versioned {
                    timestamp,
                    value: None,
                };
            } else {
                assert_eq!(
                    cluster.get(&key).unwrap(),
                    last.value,
                    "writer {w} does not read its last write of {key}"
                );
            }
        }
        ops += 1;
        if ops % 1024 == 0 {
            shared.ops.fetch_add(1024, Ordering::Relaxed);
        }
    }
    window
}

/// Reader: reads keys in and just around every writer's window, checking
/// that whatever it finds was written for that key.
fn reader(cluster: &Cluster, r: usize, shared: &Shared) {
    let _guard = StopOnPanic(&shared.stop);
    let mut rng = StdRng::seed_from_u64(1_000 + r as u64);
    let mut ops = 0u64;
    while !stopped(shared) {
        let w = rng.gen_range(0..WRITERS);
        let front = shared.fronts[w].load(Ordering::Relaxed);
        let id = rng.gen_range(front.saturating_sub(2 * WINDOW as u64)..front + 2);
        let key = key_name(w, id);
        if let Some(value) = cluster.get(&key).unwrap() {
            let prefix = format!("{key}:");
            assert!(
                value.starts_with(prefix.as_bytes()),
                "{key} read a value written for another key: {value:?}"
            );
        }
        ops += 1;
        if ops % 1024 == 0 {
            shared.ops.fetch_add(1024, Ordering::Relaxed);
        }
    }
}

/// Joins and leaves servers, without pause, until stopped.
fn churn(cluster: &Cluster, shared: &Shared) {
    let _guard = StopOnPanic(&shared.stop);
    let mut rng = StdRng::seed_from_u64(2_000);
    let mut joined = 0usize;
    while !stopped(shared) {
        let servers = cluster.servers();
        let leave =
            servers.len() > MIN_SERVERS && (servers.len() >= MAX_SERVERS || rng.gen_bool(0.5));
        if leave {
            let victim = &servers[rng.gen_range(0..servers.len())];
            cluster.leave(victim).unwrap();
        } else {
            cluster.join(format!("joined-{joined}")).unwrap();
            joined += 1;
        }
        shared.changes.fetch_add(1, Ordering::Relaxed);
    }
}

/// Entries held by the servers of the current ring, tombstones included.
fn entries(cluster: &Cluster) -> usize {
    cluster
        .servers()
        .iter()
        .filter_map(|id| cluster.server(id))
        .map(|server| server.len())
        .sum()
}

/// Compacts every [`COMPACT_EVERY`] until stopped, and after each
/// compaction checks that the entries held stay under the bound in the
/// module docs.
fn compactor(cluster: &Cluster, shared: &Shared) {
    let _guard = StopOnPanic(&shared.stop);
    while !stopped(shared) {
        std::thread::sleep(COMPACT_EVERY);

        // Every key whose retirement was acknowledged before this load has
        // a tombstone older than the cutoff on every replica: the
        // acknowledgement happens-before the load, so the clock read below
        // has seen the delete's timestamp.
        let acked = shared.retire_acked.load(Ordering::SeqCst);
        let cutoff = Timestamp(cluster.last_timestamp().0 + 1);
        let removed = cluster.compact(cutoff).unwrap();
        let held = entries(cluster);
        let started = shared.retire_started.load(Ordering::SeqCst);

        let retired_since = started - acked;
        let bound = (REPLICATION + 1) * (WRITERS * (WINDOW + 1) + retired_since as usize);
        assert!(
            held <= bound + LEN_SLACK,
            "{held} entries after compacting below {cutoff}: more than \
             (R + 1) x ({WRITERS} x ({WINDOW} + 1) window keys + {retired_since} \
             keys retired since) + {LEN_SLACK}; tombstones are piling up"
        );
        shared.compacted_through.store(acked, Ordering::SeqCst);
        shared.compactions.fetch_add(1, Ordering::Relaxed);
        shared.compacted.fetch_add(removed, Ordering::Relaxed);
        shared.max_entries.fetch_max(held, Ordering::Relaxed);
        shared
            .max_retired_since
            .fetch_max(retired_since, Ordering::Relaxed);
    }
}

/// The process's resident set in bytes, from `/proc/self/status`; `None`
/// where that file does not exist.
fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn live_heap() -> usize {
    usize::try_from(LIVE.load(Ordering::Relaxed)).unwrap_or(0)
}

/// One sample of the run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    seconds: f64,
    ops: u64,
    entries: usize,
    heap: usize,
    rss: Option<usize>,
    changes: u64,
    compactions: u64,
    /// Every writer's window had filled when the sample was taken.
    warm: bool,
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn median(mut values: Vec<usize>) -> usize {
    values.sort_unstable();
    values[values.len() / 2]
}

/// Checks that the median of `metric` over the last third of the warm
/// samples exceeds the highest sample of the first two thirds by no more
/// than `growth`, and prints both.
///
/// The load is bounded but not steady: how many tombstones wait for the
/// next compaction moves with the scheduling, so memory moves too. What
/// must not happen is that the run needs more as it goes on: a leak makes
/// the last third outgrow everything before it.
fn assert_no_growth(
    name: &str,
    warm: &[Sample],
    metric: impl Fn(&Sample) -> usize,
    growth: (f64, usize),
) {
    let third = warm.len() / 3;
    let earlier = warm[..warm.len() - third]
        .iter()
        .map(&metric)
        .max()
        .expect("at least nine warm samples");
    let last = median(warm[warm.len() - third..].iter().map(&metric).collect());
    let allowed = earlier + (earlier as f64 * growth.0) as usize + growth.1;
    println!(
        "{name}: at most {:.1} MiB in the first two thirds, median {:.1} MiB in the last \
         (allowed {:.1} MiB)",
        mib(earlier),
        mib(last),
        mib(allowed)
    );
    assert!(
        last <= allowed,
        "{name} grew from at most {earlier} to a median of {last} bytes in the last third \
         of the run"
    );
}

#[test]
#[ignore = "minutes long: cargo test --release --test soak -- --ignored --nocapture"]
fn soak_loses_nothing_and_stays_bounded() {
    let seconds: u64 = std::env::var("RINGKV_SOAK_SECS")
        .ok()
        .map(|s| s.parse().expect("RINGKV_SOAK_SECS is a number of seconds"))
        .unwrap_or(DEFAULT_SECS);
    let duration = Duration::from_secs(seconds);
    let heap_before = live_heap();

    let config = Config {
        replication: REPLICATION,
        vnodes: VNODES,
        ..Config::default()
    };
    let cluster =
        Cluster::new(config, ["s0", "s1", "s2", "s3", "s4"]).expect("a valid configuration");
    let shared = Shared::default();
    let start = Barrier::new(WRITERS + READERS + 3);

    let mut samples: Vec<Sample> = Vec::new();
    let windows: Vec<VecDeque<(u64, Versioned)>> = std::thread::scope(|scope| {
        let (cluster, shared, start) = (&cluster, &shared, &start);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                scope.spawn(move || {
                    start.wait();
                    writer(cluster, w, shared)
                })
            })
            .collect();
        for r in 0..READERS {
            scope.spawn(move || {
                start.wait();
                reader(cluster, r, shared);
            });
        }
        scope.spawn(move || {
            start.wait();
            churn(cluster, shared);
        });
        scope.spawn(move || {
            start.wait();
            compactor(cluster, shared);
        });

        start.wait();
        let began = Instant::now();
        let interval = duration / SAMPLES;
        println!(
            "{:>7} {:>11} {:>8} {:>9} {:>9} {:>7} {:>11}",
            "seconds", "ops", "entries", "heap MiB", "RSS MiB", "changes", "compactions"
        );
        while began.elapsed() < duration && !stopped(shared) {
            std::thread::sleep(interval.min(duration.saturating_sub(began.elapsed())));
            let sample = Sample {
                seconds: began.elapsed().as_secs_f64(),
                ops: shared.ops.load(Ordering::Relaxed),
                entries: entries(cluster),
                heap: live_heap(),
                rss: resident_bytes(),
                changes: shared.changes.load(Ordering::Relaxed),
                compactions: shared.compactions.load(Ordering::Relaxed),
                warm: shared.filled.load(Ordering::Relaxed) == WRITERS,
            };
            if samples.len() % (SAMPLES as usize / 15).max(1) == 0 {
                println!(
                    "{:>7.1} {:>11} {:>8} {:>9.1} {:>9.1} {:>7} {:>11}",
                    sample.seconds,
                    sample.ops,
                    sample.entries,
                    mib(sample.heap),
                    sample.rss.map_or(f64::NAN, mib),
                    sample.changes,
                    sample.compactions
                );
            }
            samples.push(sample);
        }
        shared.stop.store(true, Ordering::Release);
        writers
            .into_iter()
            .map(|writer| writer.join().expect("a writer panicked"))
            .collect()
    });

    // Nothing runs now. One more compaction removes every tombstone: each
    // acknowledged delete is on all of its key's replicas.
    let cutoff = Timestamp(cluster.last_timestamp().0 + 1);
    let removed = cluster.compact(cutoff).unwrap();
    let ops = shared.ops.load(Ordering::Relaxed);
    println!(
        "{ops} operations, {} membership changes, {} compactions removing {} entries \
         (then {removed} more), {} keys retired",
        shared.changes.load(Ordering::Relaxed),
        shared.compactions.load(Ordering::Relaxed),
        shared.compacted.load(Ordering::Relaxed),
        shared.retire_acked.load(Ordering::Relaxed),
    );
    println!(
        "entries after a compaction: at most {} (window keys x R = {}); \
         at most {} keys retired during one compaction",
        shared.max_entries.load(Ordering::Relaxed),
        WRITERS * WINDOW * REPLICATION,
        shared.max_retired_since.load(Ordering::Relaxed),
    );
    assert!(
        shared.compactions.load(Ordering::Relaxed) > 0
            && shared.changes.load(Ordering::Relaxed) > 0,
        "the run was too short to compact or churn"
    );

    // Every window key reads back its last acknowledged write.
    let mut live: BTreeMap<Bytes, Versioned> = BTreeMap::new();
    for (w, window) in windows.iter().enumerate() {
        for (id, last) in window {
            let key = key_name(w, *id);
            assert_eq!(
                cluster.get(&key).unwrap(),
                last.value,
                "{key} lost its last acknowledged write"
            );
            if last.value.is_some() {
                live.insert(Bytes::from(key), last.clone());
            }
        }
    }
    // No tombstone survived the final compaction, and what is left is
    // exactly the live keys, on exactly their replicas, at their versions.
    for id in cluster.servers() {
        let server = cluster.server(&id).expect("a listed server is found");
        let tombstone = server.entries().find(|(_, version)| version.is_tombstone());
        if let Some((key, version)) = tombstone {
            panic!("server {id} still holds a tombstone for {key:?} ({version:?})");
        }
    }
    assert_placement(&cluster, &live);
    println!(
        "at the end: {} live keys, {} entries",
        live.len(),
        entries(&cluster)
    );

    let warm: Vec<Sample> = samples.into_iter().filter(|s| s.warm).collect();
    assert!(
        warm.len() >= 9,
        "only {} samples after the windows filled; run longer",
        warm.len()
    );
    assert_no_growth("live heap", &warm, |s| s.heap, HEAP_GROWTH);
    if warm.iter().all(|s| s.rss.is_some()) {
        assert_no_growth("resident set", &warm, |s| s.rss.unwrap_or(0), RSS_GROWTH);
    }

    let heap_with_cluster = live_heap();
    drop(windows);
    drop(live);
    drop(cluster);
    println!(
        "live heap: {:.1} MiB before the cluster, {:.1} MiB at the end, \
         {:.1} MiB after dropping it",
        mib(heap_before),
        mib(heap_with_cluster),
        mib(live_heap())
    );
}
