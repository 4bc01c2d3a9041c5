//! Operations: put, get and mixes on ringkv and on the two textbook
//! baselines, with 1 and 2 threads.
//!
//! Every store is a cluster of 10 servers, 10 vnodes each, 3 replicas, with
//! the same keys (`key:` and 12 digits, 16 bytes) preloaded. Cases:
//! 100 B values with 100k and 1M keys, 64 KiB values with 10k keys. Groups
//! are named `{workload}/{value}-{keys}/{threads}t`, each holding `ringkv`,
//! `locked` (one `RwLock<HashMap>` per server) and `dashmap` (one `DashMap`
//! per server):
//!
//! * `get`: a uniformly random preloaded key;
//! * `put-overwrite`: a new value for a uniformly random preloaded key;
//! * `put-fresh`: a key the store does not hold; the store is rebuilt
//!   (untimed) whenever it has grown by half, so it holds between N and
//!   1.5 N keys while measured;
//! * `mix-90-10` and `mix-50-50`: gets and overwrites, 90 % or 50 % gets.
//!
//! Times are per operation; with 2 threads, wall time over operations done
//! by both (so perfect scaling halves it).
//!
//! Run: `cargo bench --bench ops`; `RINGKV_BENCH_QUICK=1` for a quick pass.

mod common;

use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput};
use ringkv::{Bytes, Cluster, Config};

use common::dashmap_store::Sharded;
use common::locked::Locked;
use common::{
    assert_same_placement, cluster_of, count_label, key, preload, server_ids, size_label, timed,
    Kv, Ratios, Refill, Rng, Scale,
};

const SERVERS: usize = 10;
const VNODES: usize = 10;
const REPLICATION: usize = 3;
const THREADS: [usize; 2] = [1, 2];

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// What one benchmark does per operation.
#[derive(Clone, Copy, Debug)]
enum Workload {
    Get,
    Overwrite,
    /// Gets and overwrites; this percentage of operations are overwrites.
    Mix(u64),
}

impl Workload {
    fn name(self) -> String {
        match self {
            Workload::Get => "get".to_owned(),
            Workload::Overwrite => "put-overwrite".to_owned(),
            Workload::Mix(writes) => format!("mix-{}-{}", 100 - writes, writes),
        }
    }
}

/// One size case: how many keys, how long their values.
#[derive(Clone, Copy, Debug)]
struct Case {
    keys: u64,
    value_len: usize,
}

impl Case {
    fn label(self) -> String {
        format!("{}-{}", size_label(self.value_len), count_label(self.keys))
    }
}

fn config() -> Config {
    Config {
        vnodes: VNODES,
        replication: REPLICATION,
        ..Config::default()
    }
}

/// The three stores of one case, preloaded with the same keys and values.
struct Stores {
    ringkv: Cluster,
    locked: Locked,
    dashmap: Sharded,
}

impl Stores {
    fn new(keys: u64, values: &[Bytes]) -> Stores {
        let ids = server_ids(SERVERS);
        let stores = Stores {
            ringkv: cluster_of(config(), &ids),
            locked: Locked::new(&ids, VNODES, REPLICATION),
            dashmap: Sharded::new(&ids, VNODES, REPLICATION),
        };
        assert_same_placement(
            "locked",
            |k| stores.ringkv.replicas(k),
            |k| stores.locked.replicas(k),
        );
        assert_same_placement(
            "dashmap",
            |k| stores.ringkv.replicas(k),
            |k| stores.dashmap.replicas(k),
        );
        let value = |i: u64| values[i as usize].clone();
        preload(&stores.ringkv, 0..keys, value);
        preload(&stores.locked, 0..keys, value);
        preload(&stores.dashmap, 0..keys, value);
        assert_eq!(stores.locked.lens(), stores.dashmap.lens());
        stores
    }
}

/// Runs `iters` operations of `workload` on `store` over `threads` threads.
/// `round` seeds the key choice, so each store sees the same key sequence.
fn drive<S: Kv>(
    store: &S,
    workload: Workload,
    keys: u64,
    threads: usize,
    iters: u64,
    round: u64,
    put_values: &[Bytes],
) -> Duration {
    timed(threads, iters, |t, count| {
        let mut rng = Rng::new(round << 8 | t as u64);
        let value = &put_values[t];
        match workload {
            Workload::Get => {
                for _ in 0..count {
                    black_box(store.get(&key(rng.below(keys))));
                }
            }
            Workload::Overwrite => {
                for _ in 0..count {
                    store.put(&key(rng.below(keys)), value.clone());
                }
            }
            Workload::Mix(writes) => {
                for _ in 0..count {
                    let write = rng.below(100) < writes;
                    let k = key(rng.below(keys));
                    if write {
                        store.put(&k, value.clone());
                    } else {
                        black_box(store.get(&k));
                    }
                }
            }
        }
    })
}

fn bench_shared<S: Kv>(
    group: &mut Group<'_>,
    name: &str,
    store: &S,
    (workload, case, threads): (Workload, Case, usize),
    put_values: &[Bytes],
) {
    let round = Cell::new(0u64);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            round.set(round.get() + 1);
            drive(
                store,
                workload,
                case.keys,
                threads,
                iters,
                round.get(),
                put_values,
            )
        })
    });
}

fn bench_fresh<S: Kv>(
    group: &mut Group<'_>,
    name: &str,
    build: impl Fn() -> S,
    case: Case,
    threads: usize,
    put_values: &[Bytes],
) {
    let mut refill = Refill::new(case.keys, build);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            refill.run(iters, threads, |store, t, i| {
                store.put(&key(i), put_values[t].clone());
            })
        })
    });
}

fn configure(group: &mut Group<'_>, scale: Scale) {
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(scale.time(Duration::from_millis(500)))
        .measurement_time(scale.time(Duration::from_millis(1500)));
}

fn main() {
    let scale = Scale::from_env();
    let mut c = Criterion::default().configure_from_args();
    let mut ratios = Ratios::new("ops");

    let cases = [
        Case {
            keys: scale.keys(100_000),
            value_len: 100,
        },
        Case {
            keys: scale.keys(1_000_000),
            value_len: 100,
        },
        Case {
            keys: scale.keys(10_000),
            value_len: 64 << 10,
        },
    ];

    for case in cases {
        // One buffer per key, shared by the three stores; one per thread
        // for the puts.
        let values: Vec<Bytes> = (0..case.keys)
            .map(|i| Bytes::from(vec![i as u8; case.value_len]))
            .collect();
        let put_values: Vec<Bytes> = (0..2)
            .map(|t| Bytes::from(vec![0xa0 + t as u8; case.value_len]))
            .collect();
        let ids = server_ids(SERVERS);
        let preloaded = |i: u64| values[i as usize].clone();

        for threads in THREADS {
            let group_name = format!("put-fresh/{}/{threads}t", case.label());
            let mut group = c.benchmark_group(&group_name);
            configure(&mut group, scale);
            // Shorter: every second measured grows the store.
            group.measurement_time(scale.time(Duration::from_secs(1)));
            bench_fresh(
                &mut group,
                "ringkv",
                || {
                    let store = cluster_of(config(), &ids);
                    preload(&store, 0..case.keys, preloaded);
                    store
                },
                case,
                threads,
                &put_values,
            );
            bench_fresh(
                &mut group,
                "locked",
                || {
                    let store = Locked::new(&ids, VNODES, REPLICATION);
                    preload(&store, 0..case.keys, preloaded);
                    store
                },
                case,
                threads,
                &put_values,
            );
            bench_fresh(
                &mut group,
                "dashmap",
                || {
                    let store = Sharded::new(&ids, VNODES, REPLICATION);
                    preload(&store, 0..case.keys, preloaded);
                    store
                },
                case,
                threads,
                &put_values,
            );
            group.finish();
            let target = (threads == 1).then_some(2.5);
            ratios.compare(&group_name, "ringkv", "locked", target);
            ratios.compare(&group_name, "ringkv", "dashmap", None);
        }

        let stores = Stores::new(case.keys, &values);
        for workload in [
            Workload::Get,
            Workload::Overwrite,
            Workload::Mix(10),
            Workload::Mix(50),
        ] {
            for threads in THREADS {
                let group_name = format!("{}/{}/{threads}t", workload.name(), case.label());
                let mut group = c.benchmark_group(&group_name);
                configure(&mut group, scale);
                let run = (workload, case, threads);
                bench_shared(&mut group, "ringkv", &stores.ringkv, run, &put_values);
                bench_shared(&mut group, "locked", &stores.locked, run, &put_values);
                bench_shared(&mut group, "dashmap", &stores.dashmap, run, &put_values);
                group.finish();

                // The targets against the locked baseline.
                let target = match (workload, threads) {
                    (Workload::Get | Workload::Mix(10), 1) => Some(1.2),
                    (Workload::Get | Workload::Mix(10), _) => Some(1.0),
                    (Workload::Overwrite, 1) => Some(1.2),
                    (Workload::Overwrite, _) => Some(1.0),
                    _ => None,
                };
                ratios.compare(&group_name, "ringkv", "locked", target);
                ratios.compare(&group_name, "ringkv", "dashmap", None);
            }
        }
    }

    c.final_summary();
    println!("{}", ratios.render());
}
