//! The errors ringkv reports for bad input.

use std::fmt;
use std::time::Duration;

use crate::clock::Timestamp;

/// Why an operation was refused. An operation that returns an error has
/// changed nothing: no replica, no ring, no clock.
///
/// Each message names the limit that was broken and the input that broke it.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The key is longer than [`Config::max_key_len`](crate::Config::max_key_len).
    KeyTooLong {
        /// Length of the key, in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The value is longer than [`Config::max_value_len`](crate::Config::max_value_len).
    ValueTooLong {
        /// Length of the value, in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A client timestamp is further ahead of wall-clock time than
    /// [`Config::max_clock_skew`](crate::Config::max_clock_skew) allows, or
    /// past [`Timestamp::LATEST`].
    TimestampTooFarAhead {
        /// The timestamp the client brought.
        timestamp: Timestamp,
        /// The latest timestamp accepted when it was checked.
        horizon: Timestamp,
        /// The configured skew.
        max_skew: Duration,
    },
    /// A client timestamp is at or below the compaction watermark: tombstones
    /// older than it may be gone, so the write could bring a deleted key back.
    TimestampCompacted {
        /// The timestamp the client brought.
        timestamp: Timestamp,
        /// The watermark set by [`Cluster::compact`](crate::Cluster::compact).
        watermark: Timestamp,
    },
    /// [`Config::vnodes`](crate::Config::vnodes) is zero.
    ZeroVnodes,
    /// [`Config::vnodes`](crate::Config::vnodes) is above [`crate::MAX_VNODES`].
    TooManyVnodes {
        /// The configured number.
        vnodes: usize,
        /// The limit.
        max: usize,
    },
    /// [`Config::replication`](crate::Config::replication) is zero.
    ZeroReplication,
    /// [`Cluster::new`](crate::Cluster::new) was given no servers.
    NoServers,
    /// The cluster would have more than [`crate::MAX_SERVERS`] servers.
    TooManyServers {
        /// How many servers the cluster would have.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A server id is the empty string.
    EmptyServerId,
    /// A server id is already in the cluster (or repeated in the list given
    /// to [`Cluster::new`](crate::Cluster::new)).
    DuplicateServer {
        /// The repeated id.
        id: String,
    },
    /// [`Cluster::leave`](crate::Cluster::leave) named a server that is not
    /// in the cluster.
    UnknownServer {
        /// The id given.
        id: String,
    },
    /// [`Cluster::leave`](crate::Cluster::leave) named the only server left;
    /// its data would have nowhere to go.
    LastServer {
        /// The id given.
        id: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::KeyTooLong { len, max } => {
                write!(
                    f,
                    "key of {len} bytes is longer than max_key_len ({max} bytes)"
                )
            }
            Error::ValueTooLong { len, max } => write!(
                f,
                "value of {len} bytes is longer than max_value_len ({max} bytes)"
            ),
            Error::TimestampTooFarAhead {
                timestamp,
                horizon,
                max_skew,
            } => write!(
                f,
                "timestamp {timestamp} µs is more than max_clock_skew ({max_skew:?}) ahead of \
                 wall-clock time, or past Timestamp::LATEST (latest accepted: {horizon} µs)"
            ),
            Error::TimestampCompacted {
                timestamp,
                watermark,
            } => write!(
                f,
                "timestamp {timestamp} µs is at or below the compaction watermark \
                 {watermark} µs; writes that old could bring compacted deletes back"
            ),
            Error::ZeroVnodes => f.write_str("vnodes is 0; every server needs at least one"),
            Error::TooManyVnodes { vnodes, max } => {
                write!(f, "vnodes is {vnodes}, above the limit of {max}")
            }
            Error::ZeroReplication => {
                f.write_str("replication is 0; every key needs at least one replica")
            }
            Error::NoServers => f.write_str("the server list is empty; a cluster needs one"),
            Error::TooManyServers { count, max } => {
                write!(f, "{count} servers is above the limit of {max}")
            }
            Error::EmptyServerId => f.write_str("server id is the empty string"),
            Error::DuplicateServer { id } => write!(f, "server {id:?} is already in the cluster"),
            Error::UnknownServer { id } => write!(f, "server {id:?} is not in the cluster"),
            Error::LastServer { id } => write!(
                f,
                "server {id:?} is the last one in the cluster and cannot leave"
            ),
        }
    }
}

impl std::error::Error for Error {}
