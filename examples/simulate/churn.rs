//! Membership changes under load: joins and leaves, alternating, made by
//! their own thread while the clients run the mixed phase.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv::{Cluster, Error, Migration};

use crate::workload::Mixed;

/// How often the churn thread looks at the clients' progress.
const POLL: Duration = Duration::from_micros(200);

/// One join or leave and what it cost.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) joined: bool,
    pub(crate) server: String,
    pub(crate) migration: Migration,
    pub(crate) elapsed: Duration,
    /// Client operations completed while it ran (counted in batches).
    pub(crate) ops_meanwhile: u64,
    pub(crate) servers_after: usize,
}

/// Makes `count` membership changes spread evenly over `total_ops` client
/// operations: change j starts once the clients have done
/// (j + 1) / (count + 1) of them. Even changes join a new server
/// `s{next_id}`, `s{next_id + 1}`, ...; odd ones make a server drawn from the
/// current ones leave. A leave never takes the last server.
///
/// Sets `shared.churn_finished` when it returns, whatever happened.
pub(crate) fn run(
    cluster: &Cluster,
    count: u64,
    total_ops: u64,
    mut next_id: u64,
    seed: u64,
    shared: &Mixed,
) -> Result<Vec<Change>, Error> {
    let result = make_changes(cluster, count, total_ops, &mut next_id, seed, shared);
    shared.churn_finished.store(true, Ordering::Relaxed);
    result
}

fn make_changes(
    cluster: &Cluster,
    count: u64,
    total_ops: u64,
    next_id: &mut u64,
    seed: u64,
    shared: &Mixed,
) -> Result<Vec<Change>, Error> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc4a2_11e5_0f3b_97d1);
    let mut changes = Vec::new();
    for j in 0..count {
        let start_at = (total_ops as u128 * (j as u128 + 1) / (count as u128 + 1)) as u64;
        while shared.done.load(Ordering::Relaxed) < start_at {
            if shared.failed.load(Ordering::Relaxed) {
                return Ok(changes);
            }
            thread::sleep(POLL);
        }

        let servers = cluster.servers();
        let join = j % 2 == 0 || servers.len() == 1;
        let server = if join {
            *next_id += 1;
            format!("s{}", *next_id - 1)
        } else {
            servers[rng.gen_range(0..servers.len())].to_string()
        };

        let ops_before = shared.done.load(Ordering::Relaxed);
        shared.changing.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let migration = if join {
            cluster.join(server.as_str())
        } else {
            cluster.leave(&server)
        };
        let elapsed = started.elapsed();
        shared.changing.store(false, Ordering::Relaxed);

        changes.push(Change {
            joined: join,
            server,
            migration: migration?,
            elapsed,
            ops_meanwhile: shared.done.load(Ordering::Relaxed) - ops_before,
            servers_after: cluster.servers().len(),
        });
    }
    Ok(changes)
}

/// Prints one line per change.
pub(crate) fn print(changes: &[Change]) {
    println!(
        "{:<3} {:<6} {:<7} {:>9} {:>9} {:>9} {:>10} {:>14} {:>8}",
        "#",
        "change",
        "server",
        "copied",
        "dropped",
        "scanned",
        "time (ms)",
        "ops meanwhile",
        "servers"
    );
    for (index, change) in changes.iter().enumerate() {
        println!(
            "{:<3} {:<6} {:<7} {:>9} {:>9} {:>9} {:>10.1} {:>14} {:>8}",
            index + 1,
            if change.joined { "join" } else { "leave" },
            change.server,
            change.migration.copied,
            change.migration.dropped,
            change.migration.scanned,
            change.elapsed.as_secs_f64() * 1000.0,
            change.ops_meanwhile,
            change.servers_after,
        );
    }
}
