//! Cluster configuration.

use std::time::Duration;

use crate::error::Error;

/// The most virtual nodes one server may have.
pub const MAX_VNODES: usize = 1024;

/// The most servers one cluster may have.
pub const MAX_SERVERS: usize = 4096;

/// How a [`Cluster`](crate::Cluster) places, replicates and bounds its data.
///
/// A plain struct: build it with a literal over the defaults.
///
/// ```
/// let config = ringkv::Config { vnodes: 4, ..ringkv::Config::default() };
/// assert_eq!(config.replication, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Virtual nodes per server (K), 1 to [`MAX_VNODES`]. More vnodes spread
    /// load more evenly and make a membership change touch more, smaller
    /// ranges. Default 10.
    pub vnodes: usize,
    /// Replicas per key (R), at least 1; above the number of servers it means
    /// every server. Default 3.
    pub replication: usize,
    /// Longest key accepted, in bytes. Default 256.
    pub max_key_len: usize,
    /// Longest value accepted, in bytes. Default 1 MiB.
    pub max_value_len: usize,
    /// How far ahead of wall-clock time a client timestamp may be. A write
    /// further ahead is refused, so one client cannot drag the cluster's
    /// clock away for good. Default one minute. Whatever the skew, nothing
    /// past [`Timestamp::LATEST`](crate::Timestamp::LATEST) is accepted.
    pub max_clock_skew: Duration,
    /// Whether [`Cluster::get`](crate::Cluster::get) writes the newest version
    /// back to replicas it found stale or missing. Default on.
    pub read_repair: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            vnodes: 10,
            replication: 3,
            max_key_len: 256,
            max_value_len: 1 << 20,
            max_clock_skew: Duration::from_secs(60),
            read_repair: true,
        }
    }
}

impl Config {
    /// Checks the parts of the configuration that can be wrong on their own.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.vnodes == 0 {
            return Err(Error::ZeroVnodes);
        }
        if self.vnodes > MAX_VNODES {
            return Err(Error::TooManyVnodes {
                vnodes: self.vnodes,
                max: MAX_VNODES,
            });
        }
        if self.replication == 0 {
            return Err(Error::ZeroReplication);
        }
        Ok(())
    }
}
