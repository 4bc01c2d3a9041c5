//! Migration: `join` and `leave` on loaded clusters, against the textbook
//! store migrating by a full scan of every server.
//!
//! Clusters of N 10 and N 100 servers (K 10, R 3) hold 100k or 1M keys
//! (16-byte keys, 100-byte values, so 3 entries per key). Groups:
//!
//! * `join/{keys}/N{n}`: add server `joiner`; the untimed step after each
//!   measured join removes it again, so every join starts from the same
//!   state;
//! * `leave/{keys}/N{n}`: remove server `s003`, re-added untimed;
//! * `insert-one-server/{entries}`: `Server::apply` of a fresh key on a
//!   lone server holding as many entries as one server of the cluster:
//!   the yardstick for the time per moved entry.
//!
//! Each group holds `ringkv` and `full-scan` (the textbook store of the
//! `ops` benchmark: every entry of every server is read and its old and
//! new preference lists recomputed). The table printed at the end gives
//! the entries each change copied and dropped, the time per moved entry,
//! and the speedups over the full scan.
//!
//! Run: `cargo bench --bench migration` (about 6 minutes; most of it is the
//! full-scan baseline at 1M keys). `RINGKV_BENCH_QUICK=1` divides the sizes
//! by ten.

mod common;

use std::cell::Cell;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use ringkv::{Bytes, Config, Migration, Timestamp, Versioned};

use common::locked::Locked;
use common::textbook::Moved;
use common::{
    assert_same_placement, cluster_of, count_label, estimate_ns, fmt_ns, key, preload, server_ids,
    Refill, Scale,
};

const VNODES: usize = 10;
const REPLICATION: usize = 3;
const JOINER: &str = "joiner";
const LEAVER: &str = "s003";
static VALUE: [u8; 100] = [7; 100];

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn config(replication: usize) -> Config {
    Config {
        vnodes: VNODES,
        replication,
        ..Config::default()
    }
}

fn value() -> Bytes {
    Bytes::from_static(&VALUE)
}

/// One configuration's results, for the table.
struct Row {
    keys: u64,
    servers: usize,
    join: Option<Migration>,
    leave: Option<Migration>,
    join_scan: Option<Moved>,
    leave_scan: Option<Moved>,
    join_group: String,
    leave_group: String,
    insert_group: String,
}

/// Slow groups: one warm-up run, ten samples of one run each.
fn configure(group: &mut Group<'_>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(100));
}

/// Times `change` (a join or a leave), undoing it with `undo` untimed
/// after each run; keeps what the last run reported.
fn bench_change<T: Copy>(
    group: &mut Group<'_>,
    name: &str,
    report: &Cell<Option<T>>,
    change: impl Fn() -> T,
    undo: impl Fn(),
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let moved = change();
                elapsed += start.elapsed();
                report.set(Some(moved));
                undo();
            }
            elapsed
        })
    });
}

fn main() {
    let scale = Scale::from_env();
    let mut c = Criterion::default().configure_from_args();
    let started = std::time::SystemTime::now();
    let mut rows = Vec::new();
    // Server sizes whose fresh insert has been measured.
    let mut measured: Vec<u64> = Vec::new();

    for keys in [scale.keys(100_000), scale.keys(1_000_000)] {
        for servers in [10usize, 100] {
            let ids = server_ids(servers);
            let label = format!("{}/N{servers}", count_label(keys));
            let cluster = cluster_of(config(REPLICATION), &ids);
            let scan = Locked::new(&ids, VNODES, REPLICATION);
            assert_same_placement("full-scan", |k| cluster.replicas(k), |k| scan.replicas(k));
            preload(&cluster, 0..keys, |_| value());
            preload(&scan, 0..keys, |_| value());

            let mut row = Row {
                keys,
                servers,
                join: None,
                leave: None,
                join_scan: None,
                leave_scan: None,
                join_group: format!("join/{label}"),
                leave_group: format!("leave/{label}"),
                insert_group: String::new(),
            };

            let (ours, theirs) = (Cell::new(None), Cell::new(None));
            let mut group = c.benchmark_group(&row.join_group);
            configure(&mut group);
            bench_change(
                &mut group,
                "ringkv",
                &ours,
                || cluster.join(JOINER).expect("a new id joins"),
                || {
                    cluster.leave(JOINER).expect("the joiner leaves");
                },
            );
            bench_change(
                &mut group,
                "full-scan",
                &theirs,
                || scan.join(JOINER),
                || {
                    scan.leave(JOINER);
                },
            );
            group.finish();
            (row.join, row.join_scan) = (ours.get(), theirs.get());

            let (ours, theirs) = (Cell::new(None), Cell::new(None));
            let mut group = c.benchmark_group(&row.leave_group);
            configure(&mut group);
            bench_change(
                &mut group,
                "ringkv",
                &ours,
                || cluster.leave(LEAVER).expect("a member leaves"),
                || {
                    cluster.join(LEAVER).expect("it joins again");
                },
            );
            bench_change(
                &mut group,
                "full-scan",
                &theirs,
                || scan.leave(LEAVER),
                || {
                    scan.join(LEAVER);
                },
            );
            group.finish();
            (row.leave, row.leave_scan) = (ours.get(), theirs.get());

            // The data is where it started: same servers, same entries.
            assert_eq!(cluster.servers(), ids);
            let held: Vec<usize> = ids
                .iter()
                .map(|id| cluster.server(id).expect("a member").len())
                .collect();
            assert_eq!(
                held,
                scan.lens(),
                "ringkv and the full scan hold the same entries"
            );
            drop((cluster, scan));

            // One fresh insert into one server holding as many entries as
            // a server of this cluster.
            let per_server = keys * REPLICATION as u64 / servers as u64;
            row.insert_group = format!("insert-one-server/{}", count_label(per_server));
            if !measured.contains(&per_server) {
                bench_insert(&mut c, scale, &row.insert_group, per_server);
                measured.push(per_server);
            }
            rows.push(row);
        }
    }

    c.final_summary();
    println!("{}", render(&rows, started));
}

/// Times `Server::apply` of a fresh key on a lone server preloaded with
/// `entries` entries (rebuilt, untimed, when it has grown by half).
fn bench_insert(c: &mut Criterion, scale: Scale, group_name: &str, entries: u64) {
    let ids = server_ids(1);
    let mut group = c.benchmark_group(group_name);
    group
        .sample_size(20)
        .warm_up_time(scale.time(Duration::from_millis(300)))
        .measurement_time(scale.time(Duration::from_secs(1)));
    let mut refill = Refill::new(entries, || {
        let lone = cluster_of(config(1), &ids);
        preload(&lone, 0..entries, |_| value());
        let server = lone.server(&ids[0]).expect("the lone server");
        // A client timestamp from the wall clock, read once.
        (lone, server, Timestamp::wall())
    });
    group.bench_function("ringkv", |b| {
        b.iter_custom(|iters| {
            refill.run(iters, 1, |(_, server, timestamp), _, i| {
                let version = Versioned {
                    timestamp: *timestamp,
                    value: Some(value()),
                };
                server.apply(key(i), version).expect("within the limits");
            })
        })
    });
    group.finish();
}

/// The migration tables, from criterion's estimates of this run.
fn render(rows: &[Row], started: std::time::SystemTime) -> String {
    let mut out = String::new();
    for (what, group_of, ours_of, theirs_of) in [
        (
            "join",
            (|r: &Row| r.join_group.clone()) as fn(&Row) -> String,
            (|r: &Row| r.join) as fn(&Row) -> Option<Migration>,
            (|r: &Row| r.join_scan) as fn(&Row) -> Option<Moved>,
        ),
        (
            "leave",
            |r: &Row| r.leave_group.clone(),
            |r: &Row| r.leave,
            |r: &Row| r.leave_scan,
        ),
    ] {
        let _ = writeln!(out, "\n## migration — {what}\n");
        let _ = writeln!(
            out,
            "| keys | N | stored entries | copied | dropped | ringkv | per moved entry | \
             fresh insert | per moved / insert (≤ 3) | full scan | speedup (≥ 8 at N 10, \
             ≥ 50 at N 100) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
        let mut shown = 0;
        for row in rows {
            let group = group_of(row);
            let (Some(ours), Some(theirs), Some(moved), Some(_)) = (
                estimate_ns(&group, "ringkv", started),
                estimate_ns(&group, "full-scan", started),
                ours_of(row),
                theirs_of(row),
            ) else {
                continue;
            };
            let insert = estimate_ns(&row.insert_group, "ringkv", started);
            shown += 1;
            let entries = moved.copied + moved.dropped;
            let per_moved = ours / entries.max(1) as f64;
            let speedup = theirs / ours;
            let needed = if row.servers <= 10 { 8.0 } else { 50.0 };
            let (insert_text, insert_ratio) = match insert {
                Some(insert) => {
                    let ratio = per_moved / insert;
                    let met = if ratio <= 3.0 { "" } else { " **miss**" };
                    (fmt_ns(insert), format!("{ratio:.2}{met}"))
                }
                None => ("—".to_owned(), "—".to_owned()),
            };
            let speed_met = if speedup >= needed { "" } else { " **miss**" };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1}x{} |",
                count_label(row.keys),
                row.servers,
                row.keys * REPLICATION as u64,
                moved.copied,
                moved.dropped,
                fmt_ns(ours),
                fmt_ns(per_moved),
                insert_text,
                insert_ratio,
                fmt_ns(theirs),
                speedup,
                speed_met
            );
        }
        if shown == 0 {
            out.push_str("(no estimates from this run: test mode, or filtered out)\n");
        }
    }
    out
}
