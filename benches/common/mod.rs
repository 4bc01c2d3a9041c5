//! Code the benchmark binaries share: the baselines, keys and values, a
//! multi-thread timer, run sizes, and the ratio table printed after a run.
//!
//! Each bench binary uses a different part of this module.
#![allow(dead_code)]

pub(crate) mod btree_ring;
pub(crate) mod dashmap_store;
pub(crate) mod locked;
pub(crate) mod textbook;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime};

use ringkv::{Bytes, Cluster, ServerId};

use self::textbook::{ReplicaMap, Textbook};

/// How big and how long a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    /// `cargo test --benches` (no `--bench` argument): criterion runs each
    /// benchmark once; sizes are tiny so the check takes seconds.
    Test,
    /// `RINGKV_BENCH_QUICK=1` or `-- --quick`: sizes divided by ten and
    /// short measurements, for iterating.
    Quick,
    /// The sizes and times BENCHMARKS.md reports.
    Full,
}

impl Scale {
    pub(crate) fn from_env() -> Scale {
        let args: Vec<String> = std::env::args().collect();
        let has = |flag: &str| args.iter().any(|a| a == flag);
        let quick_env =
            std::env::var("RINGKV_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if !has("--bench") || has("--test") || has("--list") {
            Scale::Test
        } else if quick_env || has("--quick") {
            Scale::Quick
        } else {
            Scale::Full
        }
    }

    /// A key count: as given at full scale.
    pub(crate) fn keys(self, full: u64) -> u64 {
        match self {
            Scale::Full => full,
            Scale::Quick => full / 10,
            Scale::Test => (full / 1000).max(100),
        }
    }

    /// A measurement time: as given at full scale, shortened otherwise.
    pub(crate) fn time(self, full: Duration) -> Duration {
        match self {
            Scale::Full => full,
            Scale::Quick => full / 4,
            Scale::Test => Duration::from_millis(10),
        }
    }
}

/// A count for labels: 10k, 100k, 1M.
pub(crate) fn count_label(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// A byte size for labels: 100B, 64KiB, 1MiB.
pub(crate) fn size_label(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{}MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}

/// Key number `i`: `key:` and twelve decimal digits, 16 bytes. Built on the
/// stack in a few nanoseconds, the same way for every store.
#[inline]
pub(crate) fn key(mut i: u64) -> [u8; 16] {
    let mut bytes = *b"key:000000000000";
    let mut at = bytes.len();
    while i > 0 && at > 4 {
        at -= 1;
        bytes[at] = b'0' + (i % 10) as u8;
        i /= 10;
    }
    bytes
}

/// SplitMix64: a fast, seedable generator for picking keys and operations.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Server ids `s000`, `s001`, ...
pub(crate) fn server_ids(n: usize) -> Vec<ServerId> {
    (0..n).map(|i| ServerId::from(format!("s{i:03}"))).collect()
}

/// A cluster of the servers `ids` under `config`.
pub(crate) fn cluster_of(config: ringkv::Config, ids: &[ServerId]) -> Cluster {
    Cluster::new(config, ids.iter().map(ServerId::to_string)).expect("a valid cluster")
}

/// The store operations the operation benchmarks drive, implemented by
/// ringkv and by the textbook baselines.
pub(crate) trait Kv: Sync {
    fn put(&self, key: &[u8], value: Bytes);
    fn get(&self, key: &[u8]) -> Option<Bytes>;
}

impl Kv for Cluster {
    #[inline]
    fn put(&self, key: &[u8], value: Bytes) {
        Cluster::put(self, key, value).expect("bench keys and values are within the limits");
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Option<Bytes> {
        Cluster::get(self, key).expect("bench keys are within the limits")
    }
}

impl<M: ReplicaMap> Kv for Textbook<M> {
    #[inline]
    fn put(&self, key: &[u8], value: Bytes) {
        Textbook::put(self, key, value);
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Option<Bytes> {
        Textbook::get(self, key)
    }
}

/// Writes keys `range` with `value(i)`, split over two threads.
pub(crate) fn preload<S: Kv>(
    store: &S,
    range: std::ops::Range<u64>,
    value: impl Fn(u64) -> Bytes + Sync,
) {
    let mid = range.start + (range.end - range.start) / 2;
    std::thread::scope(|scope| {
        for part in [range.start..mid, mid..range.end] {
            let value = &value;
            scope.spawn(move || {
                for i in part {
                    store.put(&key(i), value(i));
                }
            });
        }
    });
}

/// Panics unless `ours` and `theirs` give the same preference list for a
/// thousand keys: a benchmark comparing different work would be worthless.
pub(crate) fn assert_same_placement(
    what: &str,
    ours: impl Fn(&[u8]) -> Vec<ServerId>,
    theirs: impl Fn(&[u8]) -> Vec<ServerId>,
) {
    for i in 0..1000u64 {
        let k = key(i.wrapping_mul(7919));
        assert_eq!(
            ours(&k),
            theirs(&k),
            "{what}: placement differs for key {:?}",
            String::from_utf8_lossy(&k)
        );
    }
}

/// Runs `work(thread, count)` on `threads` threads that start together, and
/// returns the wall time from the start until the last one finishes.
/// `iters` operations are split evenly between the threads; one thread runs
/// on the caller's thread, without spawning.
pub(crate) fn timed<F>(threads: usize, iters: u64, work: F) -> Duration
where
    F: Fn(usize, u64) + Sync,
{
    if threads == 1 {
        let start = Instant::now();
        work(0, iters);
        return start.elapsed();
    }

    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let share = iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
                let (barrier, work) = (&barrier, &work);
                scope.spawn(move || {
                    barrier.wait();
                    work(t, share);
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().expect("a benchmark thread panicked");
        }
        start.elapsed()
    })
}

/// A store that puts of fresh keys keep growing, rebuilt (untimed) from its
/// preloaded state whenever it has grown by half, so while measured it
/// holds between N and 1.5 N keys. The first build happens in
/// [`Refill::new`], before criterion starts timing.
pub(crate) struct Refill<S, B> {
    build: B,
    store: Option<S>,
    keys: u64,
    grown: u64,
    cap: u64,
}

impl<S: Sync, B: Fn() -> S> Refill<S, B> {
    /// Builds the first store; `keys` is how many `build` preloads.
    pub(crate) fn new(keys: u64, build: B) -> Refill<S, B> {
        Refill {
            store: Some(build()),
            build,
            keys,
            grown: 0,
            cap: (keys / 2).max(1),
        }
    }

    /// Times `iters` calls of `put(store, key number)` on `threads`
    /// threads, with key numbers the store does not hold.
    pub(crate) fn run(
        &mut self,
        iters: u64,
        threads: usize,
        put: impl Fn(&S, usize, u64) + Sync,
    ) -> Duration {
        let mut remaining = iters;
        let mut elapsed = Duration::ZERO;
        while remaining > 0 {
            if self.grown >= self.cap {
                // Drop the grown store before building, to bound memory.
                self.store = None;
                self.store = Some((self.build)());
                self.grown = 0;
            }
            let chunk = remaining.min(self.cap - self.grown);
            let store = self.store.as_ref().expect("built in new or above");
            let base = self.keys + self.grown;
            elapsed += timed(threads, chunk, |t, count| {
                for j in 0..count {
                    put(store, t, base + t as u64 + j * threads as u64);
                }
            });
            self.grown += chunk;
            remaining -= chunk;
        }
        elapsed
    }
}

/// Where criterion writes its results, found the way criterion finds it.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion")
}

fn safe(name: &str) -> String {
    name.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_")
}

/// Criterion's headline estimate (the slope, or the mean under flat
/// sampling) in nanoseconds per iteration, if it was written after
/// `since`: a benchmark that did not run in this process has none.
pub(crate) fn estimate_ns(group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(safe(group))
        .join(safe(function))
        .join("new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("slope")
        .filter(|slope| !slope.is_null())
        .or_else(|| json.get("mean"))?
        .get("point_estimate")?
        .as_f64()
}

/// Nanoseconds, printed with a unit a reader can scan.
pub(crate) fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// One line of a ratio table: ringkv's time over a baseline's, in one group.
struct Comparison {
    group: String,
    ours: String,
    theirs: String,
    /// The largest ratio the target allows, if there is a target.
    target: Option<f64>,
}

/// The ratio table a bench binary prints when it is done: for each
/// comparison, both times as criterion estimated them, the ratio
/// (ringkv / baseline; below 1 means ringkv is faster) and the target.
pub(crate) struct Ratios {
    title: String,
    started: SystemTime,
    rows: Vec<Comparison>,
}

impl Ratios {
    pub(crate) fn new(title: &str) -> Ratios {
        Ratios {
            title: title.to_owned(),
            started: SystemTime::now(),
            rows: Vec::new(),
        }
    }

    /// When the run began; estimates older than this are from another run.
    pub(crate) fn started(&self) -> SystemTime {
        self.started
    }

    /// Records that `ours` is compared with `theirs` in `group`, with an
    /// optional largest allowed ratio.
    pub(crate) fn compare(&mut self, group: &str, ours: &str, theirs: &str, target: Option<f64>) {
        self.rows.push(Comparison {
            group: group.to_owned(),
            ours: ours.to_owned(),
            theirs: theirs.to_owned(),
            target,
        });
    }

    /// The table as Markdown; rows whose benchmarks did not run are left out.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n## {} — ratios (ringkv / baseline; < 1 is faster)\n",
            self.title
        );
        let _ = writeln!(out, "| group | ringkv | baseline | ratio | target | met |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        let mut shown = 0;
        for row in &self.rows {
            let (Some(ours), Some(theirs)) = (
                estimate_ns(&row.group, &row.ours, self.started),
                estimate_ns(&row.group, &row.theirs, self.started),
            ) else {
                continue;
            };
            shown += 1;
            let ratio = ours / theirs;
            let (target, met) = match row.target {
                Some(max) => (
                    format!("≤ {max:.2}"),
                    if ratio <= max { "yes" } else { "**no**" },
                ),
                None => ("—".to_owned(), ""),
            };
            let _ = writeln!(
                out,
                "| {} | {} ({}) | {} ({}) | {:.2} | {} | {} |",
                row.group,
                fmt_ns(ours),
                row.ours,
                fmt_ns(theirs),
                row.theirs,
                ratio,
                target,
                met
            );
        }
        if shown == 0 {
            out.push_str("(no estimates from this run: test mode, or filtered out)\n");
        }
        out
    }
}
