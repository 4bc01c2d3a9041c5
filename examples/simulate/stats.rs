//! What the simulator measures: latency histograms per kind of operation and
//! the spread of entries over the servers.

use std::time::Duration;

use hdrhistogram::Histogram;
use ringkv::Cluster;

/// The kinds of operation timed, one histogram each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// A put of the load phase.
    LoadPut,
    /// A put of the mixed phase, started while no membership change ran.
    Put,
    /// A get of the mixed phase, started while no membership change ran.
    Get,
    /// A put of the mixed phase, started while a join or leave ran.
    PutDuringChange,
    /// A get of the mixed phase, started while a join or leave ran.
    GetDuringChange,
    /// A get of the verification pass.
    VerifyGet,
}

impl Op {
    /// Every kind, in report order.
    pub(crate) const ALL: [Op; 6] = [
        Op::LoadPut,
        Op::Put,
        Op::Get,
        Op::PutDuringChange,
        Op::GetDuringChange,
        Op::VerifyGet,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Op::LoadPut => "put (load)",
            Op::Put => "put (mixed)",
            Op::Get => "get (mixed)",
            Op::PutDuringChange => "put (mixed, during change)",
            Op::GetDuringChange => "get (mixed, during change)",
            Op::VerifyGet => "get (verify)",
        }
    }

    /// Position in [`Op::ALL`], which lists the kinds in declaration order.
    fn index(self) -> usize {
        self as usize
    }
}

/// Highest latency a histogram tracks exactly; longer ones are clamped to it.
const MAX_TRACKED_NANOS: u64 = 60_000_000_000;

/// One latency histogram (nanoseconds, three significant digits) per [`Op`].
pub(crate) struct Latencies {
    histograms: Vec<Histogram<u64>>,
}

impl Latencies {
    pub(crate) fn new() -> Latencies {
        let histograms = Op::ALL
            .iter()
            .map(|_| {
                Histogram::new_with_bounds(1, MAX_TRACKED_NANOS, 3)
                    .expect("bounds 1..60 s with 3 digits are valid for hdrhistogram")
            })
            .collect();
        Latencies { histograms }
    }

    pub(crate) fn record(&mut self, op: Op, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.histograms[op.index()].saturating_record(nanos.max(1));
    }

    pub(crate) fn merge(&mut self, other: &Latencies) {
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = mine.add(theirs);
        }
    }

    pub(crate) fn get(&self, op: Op) -> &Histogram<u64> {
        &self.histograms[op.index()]
    }

    /// Prints count, p50, p99, p99.9 and max per kind, in microseconds.
    pub(crate) fn print(&self) {
        println!(
            "{:<28} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "latency (µs)", "count", "p50", "p99", "p99.9", "max"
        );
        for op in Op::ALL {
            let histogram = self.get(op);
            if histogram.is_empty() {
                println!("{:<28} {:>9}", op.label(), 0);
                continue;
            }
            let micros = |nanos: u64| nanos as f64 / 1000.0;
            println!(
                "{:<28} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>10.1}",
                op.label(),
                histogram.len(),
                micros(histogram.value_at_quantile(0.5)),
                micros(histogram.value_at_quantile(0.99)),
                micros(histogram.value_at_quantile(0.999)),
                micros(histogram.max()),
            );
        }
    }
}

/// Entries held by each server at one moment, against the ideal share.
pub(crate) struct Distribution {
    /// What the moment was ("after load", ...).
    pub(crate) title: String,
    /// (server id, entries), shorter ids first, so s2 comes before s10.
    pub(crate) servers: Vec<(String, u64)>,
    /// keys x min(R, N) / N: what every server would hold on a perfect ring.
    pub(crate) ideal: f64,
}

impl Distribution {
    /// Counts the entries of every server. Exact only while nothing writes.
    pub(crate) fn measure(title: &str, cluster: &Cluster, keys: usize) -> Distribution {
        let mut servers: Vec<(String, u64)> = cluster
            .servers()
            .iter()
            .filter_map(|id| cluster.server(id.as_str()))
            .map(|server| (server.id().to_owned(), server.len() as u64))
            .collect();
        servers.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        let n = servers.len().max(1);
        let replicas = cluster.config().replication.min(n);
        Distribution {
            title: title.to_owned(),
            servers,
            ideal: keys as f64 * replicas as f64 / n as f64,
        }
    }

    fn min(&self) -> u64 {
        self.servers.iter().map(|&(_, n)| n).min().unwrap_or(0)
    }

    fn max(&self) -> u64 {
        self.servers.iter().map(|&(_, n)| n).max().unwrap_or(0)
    }

    /// Population standard deviation of the entries per server.
    fn std_dev(&self) -> f64 {
        let n = self.servers.len() as f64;
        let mean = self.servers.iter().map(|&(_, c)| c as f64).sum::<f64>() / n;
        let variance = self
            .servers
            .iter()
            .map(|&(_, c)| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        variance.sqrt()
    }

    pub(crate) fn print_header() {
        println!(
            "{:<22} {:>7} {:>9} {:>17} {:>17} {:>16}",
            "entries per server", "servers", "ideal", "min", "max", "std dev"
        );
    }

    /// One row; min, max and standard deviation also relative to the ideal.
    pub(crate) fn print_row(&self) {
        let relative = |value: f64| 100.0 * (value - self.ideal) / self.ideal;
        let min = self.min();
        let max = self.max();
        let std_dev = self.std_dev();
        println!(
            "{:<22} {:>7} {:>9.0} {:>8} ({:>+6.1}%) {:>8} ({:>+6.1}%) {:>8.0} ({:>5.1}%)",
            self.title,
            self.servers.len(),
            self.ideal,
            min,
            relative(min as f64),
            max,
            relative(max as f64),
            std_dev,
            100.0 * std_dev / self.ideal,
        );
    }
}
