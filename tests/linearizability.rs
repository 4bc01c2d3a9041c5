//! Linearizability of ringkv's per-key histories, recorded with real threads
//! while servers join and leave and tombstones are compacted.
//!
//! Each run builds a small cluster (3 to 5 servers, R 1 to 3, K 1 to 4),
//! starts three client threads doing put, get and delete on three keys, and
//! a membership thread that joins and leaves servers (and, in some runs,
//! compacts) until the clients are done. Clients keep going until the
//! membership thread has made a minimum number of changes, so every run
//! races changes against operations whatever the scheduling. Every operation
//! records the instants it was called and returned, from one shared counter;
//! the history is split by key and each key's history is checked against a
//! register with the checker in `linearizability/checker.rs`.
//!
//! Why a plain register: the cluster stamps writes with a clock whose
//! timestamps are unique and increase in real time, keeps the newest version
//! under last-write-wins, and reads every replica. A value is written at
//! most once (clients write unique values), a delete empties the register,
//! and compaction only removes tombstones every replica agrees on, so a get
//! after a compacted delete still answers `None`.
//!
//! The checker's own tests are in `linearizability/checker_tests.rs`. The
//! long run is ignored by default:
//! `cargo test --release --test linearizability -- --ignored --nocapture`,
//! with `RINGKV_LINEARIZABILITY_OPS` setting each client's operations
//! (default [`LONG_OPS`]).

#[path = "linearizability/checker.rs"]
mod checker;
#[path = "linearizability/checker_tests.rs"]
mod checker_tests;
#[path = "linearizability/register.rs"]
mod register;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv::{Bytes, Cluster, Config, Timestamp};

use checker::{check, validate, Operation, Verdict};
use register::{Answer, Call, Register};

/// Operations each client makes at least in the long, ignored run.
const LONG_OPS: usize = 50_000;

/// What the harness drives: a key-value store, as clients see it.
trait Store: Sync {
    fn put(&self, key: &str, value: Bytes);
    fn delete(&self, key: &str);
    fn get(&self, key: &str) -> Option<Bytes>;
}

impl Store for Cluster {
    fn put(&self, key: &str, value: Bytes) {
        Cluster::put(self, key, value).expect("a valid put");
    }

    fn delete(&self, key: &str) {
        Cluster::delete(self, key).expect("a valid delete");
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        Cluster::get(self, key).expect("a valid get")
    }
}

/// The shape of one recorded run.
#[derive(Clone, Copy, Debug)]
struct Workload {
    clients: usize,
    keys: usize,
    /// Operations each client makes at least.
    min_ops: usize,
    /// Background changes (joins, leaves) to wait for before clients stop.
    min_changes: usize,
    seed: u64,
}

/// An operation on one key, as recorded.
type Op = Operation<Call, Answer>;

/// The operations a client runs: a seeded random mix over the keys, with
/// values unique to the client and the step.
struct Script {
    rng: StdRng,
    client: usize,
    keys: usize,
    step: usize,
}

impl Script {
    fn new(workload: &Workload, client: usize) -> Script {
        Script {
            rng: StdRng::seed_from_u64(workload.seed.wrapping_mul(1_000_003) + client as u64),
            client,
            keys: workload.keys,
            step: 0,
        }
    }
}

impl Iterator for Script {
    type Item = (usize, Call);

    fn next(&mut self) -> Option<(usize, Call)> {
        let key = self.rng.gen_range(0..self.keys);
        let call = match self.rng.gen_range(0..10) {
            0..=3 => Call::Put(Bytes::from(format!("c{}-{}", self.client, self.step))),
            4 | 5 => Call::Delete,
            _ => Call::Get,
        };
        self.step += 1;
        Some((key, call))
    }
}

fn key_name(key: usize) -> String {
    format!("key-{key}")
}

/// Dropped by each client thread when it ends: the last one out, or any
/// that panics, sets `done`, so the background thread always stops.
/// (A panic in the background thread sets `abort` instead, through
/// [`AbortOnPanic`], so the clients stop waiting for its changes.)
struct ClientExit<'a> {
    remaining: &'a AtomicUsize,
    done: &'a AtomicBool,
}

impl Drop for ClientExit<'_> {
    fn drop(&mut self) {
        let last = self.remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        if last || std::thread::panicking() {
            self.done.store(true, Ordering::Release);
        }
    }
}

/// Sets its flag if its thread panics.
struct AbortOnPanic<'a>(&'a AtomicBool);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// Runs `workload` against `store` while `background` runs on its own
/// thread, and returns each key's history.
///
/// `background` is called with a flag that becomes true once every client
/// is done, and a counter of changes it made, which it must keep current;
/// clients keep going until it reaches `min_changes`. Instants come from one
/// counter that every call and return increments (an acquire-release
/// read-modify-write), so `a.ret < b.call` means `a` returned before `b` was
/// called.
fn record<S: Store>(
    store: &S,
    workload: &Workload,
    background: impl FnOnce(&AtomicBool, &AtomicUsize) + Send,
) -> Vec<Vec<Op>> {
    let clock = AtomicU64::new(0);
    let tick = || clock.fetch_add(1, Ordering::AcqRel);
    let changes = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let abort = AtomicBool::new(false);
    let clients_left = AtomicUsize::new(workload.clients);
    let start = Barrier::new(workload.clients + 1);
    let recorded: Mutex<Vec<(usize, Op)>> = Mutex::new(Vec::new());

    std::thread::scope(|scope| {
        for client in 0..workload.clients {
            let (tick, changes, start, recorded) = (&tick, &changes, &start, &recorded);
            let (clients_left, done, abort) = (&clients_left, &done, &abort);
            scope.spawn(move || {
                let _exit = ClientExit {
                    remaining: clients_left,
                    done,
                };
                let mut mine = Vec::new();
                start.wait();
                for (step, (key, input)) in Script::new(workload, client).enumerate() {
                    let enough = changes.load(Ordering::Acquire) >= workload.min_changes;
                    if (step >= workload.min_ops && enough) || abort.load(Ordering::Acquire) {
                        break;
                    }
                    let name = key_name(key);
                    let call = tick();
                    let output = match &input {
                        Call::Put(value) => {
                            store.put(&name, value.clone());
                            Answer::Done
                        }
                        Call::Delete => {
                            store.delete(&name);
                            Answer::Done
                        }
                        Call::Get => Answer::Read(store.get(&name)),
                    };
                    let ret = tick();
                    mine.push((
                        key,
                        Operation {
                            client,
                            call,
                            ret,
                            input,
                            output,
                        },
                    ));
                }
                recorded.lock().unwrap().extend(mine);
            });
        }
        scope.spawn(|| {
            let _abort = AbortOnPanic(&abort);
            start.wait();
            background(&done, &changes);
        });
    });

    let mut histories = vec![Vec::new(); workload.keys];
    for (key, op) in recorded.into_inner().unwrap() {
        histories[key].push(op);
    }
    histories
}

/// Joins and leaves servers until `done`, keeping between `min` and `max`
/// servers; after each change, compacts everything older than the clock's
/// last timestamp if `compact` is set. Returns the changes made and the
/// replica entries compaction removed.
fn churn(
    cluster: &Cluster,
    seed: u64,
    (min, max): (usize, usize),
    compact: bool,
    done: &AtomicBool,
    changes: &AtomicUsize,
) -> (usize, u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut joined = 0usize;
    let mut compacted = 0u64;
    while !done.load(Ordering::Acquire) {
        let servers = cluster.servers();
        let leave = servers.len() > min && (servers.len() >= max || rng.gen_bool(0.5));
        if leave {
            let victim = &servers[rng.gen_range(0..servers.len())];
            cluster.leave(victim).expect("a listed server can leave");
        } else {
            cluster
                .join(format!("joined-{joined}"))
                .expect("a fresh id can join");
            joined += 1;
        }
        changes.fetch_add(1, Ordering::Release);

        if compact {
            compacted += cluster
                .compact(Timestamp(cluster.last_timestamp().0))
                .expect("the clock's last timestamp is not in the future");
        }
    }
    (changes.load(Ordering::Relaxed), compacted)
}

/// Checks one key's history; on failure, panics with the search's longest
/// order and the operations around where it got stuck.
fn assert_linearizable(history: &[Op], what: &str) {
    match check(&Register, history) {
        Verdict::Linearizable(order) => {
            if let Err(why) = validate(&Register, history, &order) {
                panic!("{what}: the checker returned an illegal order: {why}");
            }
        }
        Verdict::NotLinearizable { longest, stuck } => {
            let stuck_op = &history[stuck];
            let mut nearby: Vec<&Op> = history
                .iter()
                .filter(|op| op.ret + 40 >= stuck_op.call && op.call <= stuck_op.ret + 40)
                .collect();
            nearby.sort_by_key(|op| op.call);
            let tail: Vec<&Op> = longest
                .iter()
                .rev()
                .take(8)
                .rev()
                .map(|&op| &history[op])
                .collect();
            panic!(
                "{what}: not linearizable ({} operations).\n\
                 The longest legal order has {} operations, ending with\n{tail:#?}\n\
                 after which nothing fits before\n{stuck_op:?}\n\
                 Operations around it:\n{nearby:#?}",
                history.len(),
                longest.len(),
            );
        }
    }
}

/// One recorded run against a cluster: its configuration and what the
/// membership thread does.
#[derive(Clone, Copy, Debug)]
struct Run {
    servers: usize,
    replication: usize,
    vnodes: usize,
    read_repair: bool,
    compact: bool,
}

impl Run {
    /// A small configuration drawn from `seed`.
    fn drawn(seed: u64, compact: bool) -> Run {
        let mut rng = StdRng::seed_from_u64(seed);
        Run {
            servers: rng.gen_range(3..=5),
            replication: rng.gen_range(1..=3),
            vnodes: rng.gen_range(1..=4),
            read_repair: rng.gen_bool(0.75),
            compact,
        }
    }
}

/// Totals over many runs, printed at the end of a test.
#[derive(Debug, Default)]
struct Totals {
    runs: usize,
    histories: usize,
    operations: usize,
    longest_history: usize,
    changes: usize,
    /// Replica entries (tombstones) compaction removed.
    compacted: u64,
}

/// Records one run against a fresh cluster and checks every key's history.
fn run_and_check(run: Run, workload: &Workload, totals: &mut Totals) {
    let config = Config {
        vnodes: run.vnodes,
        replication: run.replication,
        read_repair: run.read_repair,
        ..Config::default()
    };
    let ids: Vec<String> = (0..run.servers).map(|i| format!("s{i}")).collect();
    let cluster = Cluster::new(config, ids).expect("a valid cluster");

    let outcome = Mutex::new((0, 0));
    let histories = record(&cluster, workload, |done, changes| {
        let made = churn(&cluster, workload.seed, (2, 6), run.compact, done, changes);
        *outcome.lock().unwrap() = made;
    });
    let (changes, compacted) = outcome.into_inner().unwrap();
    assert!(
        changes >= workload.min_changes,
        "{run:?}: {changes} changes"
    );

    for (key, history) in histories.iter().enumerate() {
        let what = format!("seed {}, {run:?}, {}", workload.seed, key_name(key));
        assert_linearizable(history, &what);
        totals.operations += history.len();
        totals.longest_history = totals.longest_history.max(history.len());
    }
    totals.runs += 1;
    totals.histories += histories.len();
    totals.changes += changes;
    totals.compacted += compacted;
}

fn short_workload(seed: u64) -> Workload {
    Workload {
        clients: 3,
        keys: 3,
        min_ops: 200,
        min_changes: 6,
        seed,
    }
}

/// Runs per test in the default suite.
const RUNS: u64 = 20;

#[test]
fn histories_under_churn_are_linearizable() {
    let mut totals = Totals::default();
    for seed in 0..RUNS {
        run_and_check(Run::drawn(seed, false), &short_workload(seed), &mut totals);
    }
    println!("churn: {totals:?}");
}

#[test]
fn histories_under_churn_and_compaction_are_linearizable() {
    let mut totals = Totals::default();
    for seed in 1_000..1_000 + RUNS {
        run_and_check(Run::drawn(seed, true), &short_workload(seed), &mut totals);
    }
    // Deletes are a fifth of the operations: the runs have tombstones to
    // compact, so compaction raced the clients' puts into those keys.
    assert!(totals.compacted > 0, "compaction never removed a tombstone");
    println!("churn and compaction: {totals:?}");
}

#[test]
#[ignore = "long: run with --release --ignored"]
fn long_histories_are_linearizable() {
    let ops = std::env::var("RINGKV_LINEARIZABILITY_OPS")
        .ok()
        .map(|ops| ops.parse().expect("RINGKV_LINEARIZABILITY_OPS is a number"))
        .unwrap_or(LONG_OPS);
    let mut totals = Totals::default();
    for seed in 0..8 {
        let workload = Workload {
            min_ops: ops,
            min_changes: 50,
            ..short_workload(2_000 + seed)
        };
        let run = Run::drawn(2_000 + seed, seed % 2 == 1);
        run_and_check(run, &workload, &mut totals);
        println!("{run:?}: {totals:?}");
    }
}

/// A broken store: only the first put of each key takes effect; later puts
/// and deletes are acknowledged and dropped.
#[derive(Default)]
struct FirstWriteOnly {
    values: Mutex<HashMap<String, Bytes>>,
}

impl Store for FirstWriteOnly {
    fn put(&self, key: &str, value: Bytes) {
        self.values
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_insert(value);
    }

    fn delete(&self, _key: &str) {}

    fn get(&self, key: &str) -> Option<Bytes> {
        self.values.lock().unwrap().get(key).cloned()
    }
}

#[test]
fn the_harness_catches_a_store_that_drops_overwrites() {
    let workload = Workload {
        min_changes: 0,
        ..short_workload(42)
    };
    // Why a violation is certain, whatever the scheduling: the put that
    // took effect first for a key is its client's first put of that key
    // (an earlier one would have taken effect instead). If that client's
    // script later puts the key again and then reads it, the read returns a
    // value overwritten by a put that returned before the read was called.
    for client in 0..workload.clients {
        for key in 0..workload.keys {
            let calls: Vec<Call> = Script::new(&workload, client)
                .take(workload.min_ops)
                .filter(|(k, _)| *k == key)
                .map(|(_, call)| call)
                .collect();
            let first_put = calls.iter().position(|c| matches!(c, Call::Put(_)));
            let second_put = first_put.and_then(|first| {
                Some(
                    first
                        + 1
                        + calls[first + 1..]
                            .iter()
                            .position(|c| matches!(c, Call::Put(_)))?,
                )
            });
            let read_after = second_put
                .and_then(|second| calls[second + 1..].iter().position(|c| *c == Call::Get));
            assert!(
                read_after.is_some(),
                "client {client}'s script must put key {key} twice and then read it"
            );
        }
    }

    let store = FirstWriteOnly::default();
    let histories = record(&store, &workload, |_, _| {});
    for (key, history) in histories.iter().enumerate() {
        assert!(
            !check(&Register, history).is_linearizable(),
            "{} of a store that drops overwrites passed the checker",
            key_name(key)
        );
    }
}
