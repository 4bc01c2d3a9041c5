//! The ringkv simulator: loads a cluster from several client threads, runs
//! a mix of gets and puts while servers join and leave, then reads every key
//! back and checks it against the last write its client saw acknowledged.
//!
//! ```text
//! cargo run --release --example simulate -- --help
//! ```
//!
//! Phases:
//!
//! 1. **load**: each client writes each of its keys once.
//! 2. **mixed**: clients run random gets and puts (`--read-share` of them
//!    gets) while a separate thread makes `--churn` membership changes,
//!    alternating a join of a new server and a leave of a random one, spread
//!    over the phase. Every get is checked: never missing, never older than
//!    the last write of the key acknowledged before it began.
//! 3. **verify**: every key is read back and compared with its last
//!    acknowledged version; then the placement invariant is checked.
//!
//! The report gives throughput, latency percentiles per kind of operation,
//! the spread of entries over the servers before and after churn, and what
//! each membership change moved. It ends with `verified: <N> keys, lost: <M>`.
//!
//! Exit codes: 0 when nothing was lost, no read was stale and the placement
//! invariant holds; 1 otherwise (or if the plot cannot be written); 2 for a
//! bad option or a configuration ringkv refuses.
//!
//! The checks themselves have unit tests (they must be able to fail); plain
//! `cargo test` only builds examples, so run them with
//! `cargo test --example simulate`.

mod churn;
mod options;
mod placement;
mod plot;
mod stats;
mod workload;

use std::fmt;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use ringkv::{Cluster, Config};

use crate::churn::Change;
use crate::options::Options;
use crate::placement::PlacementCheck;
use crate::stats::{Distribution, Latencies};
use crate::workload::{Client, Keyspace, Mixed};

fn main() -> ExitCode {
    let options = Options::parse();
    match simulate(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(failure) => {
            eprintln!("simulate: {failure}");
            failure.exit_code()
        }
    }
}

/// Why the simulation could not run to its report.
#[derive(Debug)]
enum Failure {
    /// ringkv refused the configuration.
    Config(ringkv::Error),
    /// An operation failed during the run.
    Run(ringkv::Error),
}

impl Failure {
    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Config(_) => ExitCode::from(2),
            Failure::Run(_) => ExitCode::from(1),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Config(error) => write!(f, "invalid configuration: {error}"),
            Failure::Run(error) => write!(f, "operation failed: {error}"),
        }
    }
}

/// Wall time and operation count of one phase.
struct PhaseTime {
    name: &'static str,
    ops: u64,
    elapsed: Duration,
}

/// Runs every phase and prints the report. `Ok(false)` means a check failed.
fn simulate(options: &Options) -> Result<bool, Failure> {
    let config = Config {
        vnodes: usize::try_from(options.vnodes).unwrap_or(usize::MAX),
        replication: usize::try_from(options.replication).unwrap_or(usize::MAX),
        ..Config::default()
    };
    let cluster = Cluster::new(config, (0..options.servers).map(|i| format!("s{i}")))
        .map_err(Failure::Config)?;

    // Clap bounds keys, threads and value size well inside usize.
    let key_count = options.keys as usize;
    let threads = options.threads as usize;
    let value_size = options.value_size as usize;
    println!(
        "ringkv simulate: {} servers, K = {}, R = {}, {} keys of {} bytes, {} client threads, \
         read share {}, {} membership changes, seed {}",
        options.servers,
        options.vnodes,
        options.replication,
        key_count,
        value_size,
        threads,
        options.read_share,
        options.churn,
        options.seed,
    );

    let keyspace = Keyspace::generate(key_count, threads, options.seed);
    let mut clients: Vec<Client<'_>> = (0..threads)
        .map(|thread| Client::new(&cluster, &keyspace, thread, options.seed, value_size))
        .collect();
    let mut phases = Vec::new();

    phase("load", key_count as u64, &mut phases, |bar| {
        on_every_client(&mut clients, |client| client.load(bar))?;
        Ok(((), key_count as u64))
    })?;
    let after_load = Distribution::measure("after load", &cluster, key_count);

    let changes = phase("mixed", options.mixed_ops(), &mut phases, |bar| {
        mixed_phase(options, &cluster, &mut clients, bar)
    })?;
    let after_churn = Distribution::measure("after churn", &cluster, key_count);

    let verdicts = phase("verify", key_count as u64, &mut phases, |bar| {
        let verdicts = on_every_client(&mut clients, |client| client.verify(bar))?;
        Ok((verdicts, key_count as u64))
    })?;
    let lost: u64 = verdicts.iter().map(|(lost, _)| lost).sum();

    let placement = phase("placement", key_count as u64, &mut phases, |bar| {
        Ok((
            placement::check(&cluster, &keyspace.keys, bar),
            key_count as u64,
        ))
    })?;

    // The report.
    let mut latencies = Latencies::new();
    for client in &clients {
        latencies.merge(&client.latencies);
    }
    println!();
    print_phases(&phases);
    println!();
    latencies.print();
    println!();
    Distribution::print_header();
    after_load.print_row();
    after_churn.print_row();
    println!();
    if changes.is_empty() {
        println!("membership changes: none");
    } else {
        println!("membership changes (under load):");
        churn::print(&changes);
    }
    println!();
    let stale = print_read_checks(&clients, &changes, &cluster);
    print_placement(&placement);
    let plotted = match &options.plot {
        Some(path) => draw_plot(path, &after_load, &after_churn),
        None => true,
    };
    for (_, examples) in &verdicts {
        for example in examples {
            println!(
                "  lost {}: last acknowledged write at {}, read back {}",
                example.key,
                example.expected,
                describe(example.found)
            );
        }
    }
    println!("verified: {key_count} keys, lost: {lost}");

    Ok(lost == 0 && stale == 0 && placement.holds() && plotted)
}

/// Runs one phase under a progress bar of `len` steps and records its wall
/// time. `work` returns its result and the number of operations it made.
fn phase<T>(
    name: &'static str,
    len: u64,
    phases: &mut Vec<PhaseTime>,
    work: impl FnOnce(&ProgressBar) -> Result<(T, u64), Failure>,
) -> Result<T, Failure> {
    let bar = progress_bar(name, len);
    let started = Instant::now();
    let (result, ops) = work(&bar)?;
    phases.push(PhaseTime {
        name,
        ops,
        elapsed: started.elapsed(),
    });
    bar.finish();
    Ok(result)
}

/// The mixed phase: every client runs its share of the operations while
/// the churn thread changes the membership. Returns the changes made and
/// the operations done.
fn mixed_phase(
    options: &Options,
    cluster: &Cluster,
    clients: &mut [Client<'_>],
    bar: &ProgressBar,
) -> Result<(Vec<Change>, u64), Failure> {
    let total_ops = options.mixed_ops();
    let threads = clients.len();
    let mixed = Mixed::default();
    let changes = thread::scope(|scope| {
        let churn = scope.spawn(|| {
            churn::run(
                cluster,
                options.churn,
                total_ops,
                options.servers,
                options.seed,
                &mixed,
            )
        });
        let workers: Vec<_> = clients
            .iter_mut()
            .enumerate()
            .map(|(index, client)| {
                let quota = share(total_ops, threads, index);
                let mixed = &mixed;
                scope.spawn(move || client.mixed(quota, options.read_share, mixed, bar))
            })
            .collect();

        let mut outcome: Result<(), ringkv::Error> = Ok(());
        for worker in workers {
            outcome = outcome.and(join(worker));
        }
        outcome.and(join(churn))
    })
    .map_err(Failure::Run)?;
    Ok((changes, mixed.done.into_inner()))
}

/// Draws the `--plot` chart; reports a failure and returns false if it
/// cannot.
fn draw_plot(path: &Path, after_load: &Distribution, after_churn: &Distribution) -> bool {
    match plot::draw(path, &[after_load, after_churn]) {
        Ok(()) => {
            println!("plot: {}", path.display());
            true
        }
        Err(error) => {
            eprintln!("simulate: cannot draw {}: {error}", path.display());
            false
        }
    }
}

/// Runs `work` on every client, each on its own thread, and collects the
/// results in client order; the first error wins.
fn on_every_client<'a, T, W>(clients: &mut [Client<'a>], work: W) -> Result<Vec<T>, Failure>
where
    T: Send,
    W: Fn(&mut Client<'a>) -> Result<T, ringkv::Error> + Sync,
{
    thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = clients
            .iter_mut()
            .map(|client| scope.spawn(move || work(client)))
            .collect();
        handles.into_iter().map(join).collect::<Result<Vec<T>, _>>()
    })
    .map_err(Failure::Run)
}

/// Joins a scoped thread, passing a panic on.
fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Client `index`'s part of `total` operations split over `threads`.
fn share(total: u64, threads: usize, index: usize) -> u64 {
    let threads = threads as u64;
    let index = index as u64;
    total / threads + u64::from(index < total % threads)
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(phase: &'static str, len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix:>9} {elapsed:>4} [{wide_bar}] {human_pos}/{human_len}, eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    ProgressBar::new(len).with_style(style).with_prefix(phase)
}

fn print_phases(phases: &[PhaseTime]) {
    println!(
        "{:<10} {:>10} {:>10} {:>12}",
        "phase", "ops", "time (s)", "ops/s"
    );
    for phase in phases {
        let seconds = phase.elapsed.as_secs_f64();
        println!(
            "{:<10} {:>10} {:>10.3} {:>12.0}",
            phase.name,
            phase.ops,
            seconds,
            phase.ops as f64 / seconds.max(f64::MIN_POSITIVE),
        );
    }
}

/// Prints the freshness checks of the mixed phase and returns how many
/// reads failed them.
fn print_read_checks(clients: &[Client<'_>], changes: &[Change], cluster: &Cluster) -> u64 {
    let checked: u64 = clients.iter().map(|client| client.reads_checked).sum();
    let stale: u64 = clients.iter().map(|client| client.stale_reads).sum();
    println!(
        "mixed-phase reads checked: {checked}, stale or missing: {stale} \
         ({} membership changes made, {} read repairs)",
        changes.len(),
        cluster.stats().read_repairs,
    );
    for example in clients.iter().flat_map(|client| &client.stale_examples) {
        println!(
            "  stale read of {}: expected at least {}, got {}",
            example.key,
            example.floor,
            describe(example.found)
        );
    }
    stale
}

fn print_placement(placement: &PlacementCheck) {
    if placement.holds() {
        println!(
            "placement: ok, each of {} servers holds exactly the keys whose replicas() include it \
             ({} entries)",
            placement.servers, placement.expected
        );
    } else {
        println!(
            "placement: VIOLATED on {} servers: {} of {} expected entries missing, {} stray \
             entries",
            placement.servers, placement.missing, placement.expected, placement.stray
        );
    }
}

fn describe(found: Option<ringkv::Timestamp>) -> String {
    match found {
        Some(timestamp) => format!("a version at {timestamp}"),
        None => "nothing".to_owned(),
    }
}
