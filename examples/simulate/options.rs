//! The command line.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use clap::builder::RangedI64ValueParser;
use clap::Parser;

/// Command-line options. Clap checks every number before anything runs, so
/// a bad value is a usage message and exit code 2, not a panic; ringkv's own
/// limits (such as at most `MAX_VNODES` vnodes) are reported the same way.
#[derive(Debug, Parser)]
#[command(
    name = "simulate",
    about = "Loads a ringkv cluster from several threads, changes its membership under load, \
             and checks that no acknowledged write was lost."
)]
pub(crate) struct Options {
    /// Servers at the start, named s0, s1, ...
    #[arg(long, default_value_t = 10, allow_negative_numbers = true,
          value_parser = count(1..=ringkv::MAX_SERVERS as i64))]
    pub(crate) servers: u64,

    /// Virtual nodes per server (K); ringkv accepts up to 1024.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true,
          value_parser = count(1..=1 << 20))]
    pub(crate) vnodes: u64,

    /// Replicas per key (R); above the number of servers it means all of them.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true,
          value_parser = count(1..=ringkv::MAX_SERVERS as i64))]
    pub(crate) replication: u64,

    /// Distinct keys, written once each in the load phase.
    #[arg(long, default_value_t = 200_000, allow_negative_numbers = true,
          value_parser = count(1..=100_000_000))]
    pub(crate) keys: u64,

    /// Client threads; each owns a disjoint share of the keys.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true,
          value_parser = count(1..=1024))]
    pub(crate) threads: u64,

    /// Bytes per value, up to ringkv's default limit of 1 MiB.
    #[arg(long, default_value_t = 64, allow_negative_numbers = true,
          value_parser = count(0..=1 << 20))]
    pub(crate) value_size: u64,

    /// Fraction of gets in the mixed phase, from 0 to 1; the rest are puts.
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true,
          value_parser = parse_share)]
    pub(crate) read_share: f64,

    /// Operations in the mixed phase, all threads together [default: 2 x keys].
    #[arg(long, allow_negative_numbers = true, value_parser = count(1..=1 << 40))]
    pub(crate) ops: Option<u64>,

    /// Membership changes during the mixed phase: a join, then a leave, and so on.
    #[arg(long, default_value_t = 4, allow_negative_numbers = true,
          value_parser = count(0..=100_000))]
    pub(crate) churn: u64,

    /// Seed for keys, values, operation choices and which servers leave.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub(crate) seed: u64,

    /// Draw entries per server, after load and after churn, as an SVG bar chart.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
}

impl Options {
    /// Operations in the mixed phase.
    pub(crate) fn mixed_ops(&self) -> u64 {
        self.ops.unwrap_or(self.keys.saturating_mul(2))
    }
}

/// A whole number in `range`. Parsed as signed, so "-5" is reported as out
/// of range rather than as a malformed number.
fn count(range: RangeInclusive<i64>) -> RangedI64ValueParser<u64> {
    RangedI64ValueParser::new().range(range)
}

/// A fraction from 0 to 1.
fn parse_share(text: &str) -> Result<f64, String> {
    let share: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&share) {
        Ok(share)
    } else {
        Err(format!("{text} is not a fraction from 0 to 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("simulate").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_documented_run() {
        let options = parse(&[]).unwrap();
        assert_eq!(
            (options.servers, options.vnodes, options.replication),
            (10, 10, 3)
        );
        assert_eq!((options.keys, options.threads), (200_000, 2));
        assert_eq!(options.mixed_ops(), 400_000);
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_option() {
        for args in [
            &["--servers", "0"][..],
            &["--replication", "0"],
            &["--keys", "many"],
            &["--value-size", "-5"],
            &["--read-share", "1.5"],
            &["--threads", "0"],
        ] {
            let error = parse(args).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
            assert!(error.to_string().contains(args[0]), "{error}");
        }
    }
}
