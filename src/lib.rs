//! An in-process, lock-free, replicated key-value store placed on an MD5
//! consistent-hashing ring.
//!
//! A [`Cluster`] simulates N servers (direct calls, no network). Each server
//! has K virtual nodes on a 2^32 ring; a key lives on the R distinct servers
//! that follow its ring position clockwise (its *preference list*, R clamped
//! to N). Writes carry timestamps and replicas keep the newest under
//! last-write-wins; deletes write tombstones; [`Cluster::get`] reads every
//! replica and returns the newest version. [`Cluster::join`] and
//! [`Cluster::leave`] move only the ring ranges whose replica set changed,
//! found by range scans of each server's ordered index.
//!
//! ```
//! use ringkv::{Cluster, Config, Timestamp};
//!
//! let cluster = Cluster::new(Config { replication: 2, ..Config::default() }, ["a", "b", "c"])?;
//! let written = cluster.put("k", "v1")?;
//! assert_eq!(cluster.replicas("k").len(), 2);
//!
//! // A client timestamp older than the stored version loses.
//! cluster.put_at("k", "stale", Timestamp(written.0 - 1))?;
//! assert_eq!(cluster.get("k")?.as_deref(), Some(&b"v1"[..]));
//!
//! cluster.delete("k")?;
//! assert_eq!(cluster.get("k")?, None);
//! cluster.leave("b")?;
//! assert_eq!(cluster.servers(), ["a", "c"]);
//! # Ok::<(), ringkv::Error>(())
//! ```
//!
//! # Placement
//!
//! The ring position of a byte string is the last four bytes of its MD5
//! digest, big-endian ([`ring_position`]). Server `id` has vnodes named
//! `"{id}-{i}"` for `i` in `0..K`, ordered by (position, id, i). A key's
//! preference list starts at the first vnode strictly after the key's
//! position, wrapping, and collects distinct servers until min(R, N) are
//! found. [`Cluster::replicas`] returns it.
//!
//! # Guarantees under concurrency
//!
//! Any number of threads may call put, get and delete while others call join
//! and leave.
//!
//! 1. No acknowledged write is lost, whatever membership change races it.
//! 2. A `get` never returns something older than a write acknowledged before
//!    it began, nor older than an earlier `get` of the same key returned,
//!    including while a migration is in flight.
//! 3. A key that exists before and after an overwrite is never observed
//!    missing.
//! 4. The data path takes no lock and never waits. Membership changes run one
//!    at a time and wait for operations on the previous ring to finish; no
//!    public API holds a ring snapshot beyond one call, so that wait ends.
//!
//! The protocol behind these (a transitional ring whose replica sets are the
//! union of the old and new ones, RCU-style grace periods, copy before the
//! switch and drop after it) is described in the `migration` module source
//! and checked exhaustively by the loom models in `loom-tests/`.
//!
//! # Costs
//!
//! A lookup of a key's replicas is one MD5 plus one binary search over the
//! vnode positions. `put` and `get` add one hash-table operation per
//! replica (a new key also costs one skiplist insert per replica: each
//! server keeps its entries in a skiplist too, in ring order, for the range
//! scans of migration).
//! A value is stored once however many replicas hold it. A membership change
//! reads only the entries of the ranges that move.
//!
//! # Model checking with loom
//!
//! Built with `RUSTFLAGS="--cfg loom"`, every synchronization primitive ringkv
//! uses comes from [loom](https://docs.rs/loom) 0.7, so a dependent crate can
//! create a `Cluster` inside its own `loom::model` and have loom explore
//! ringkv's real protocol together with its own code.

mod clock;
mod cluster;
mod compaction;
mod config;
mod error;
mod key_hash;
mod migration;
mod ring;
mod snapshot;
mod store;
mod sync;
mod version;

pub use bytes::Bytes;

pub use crate::clock::Timestamp;
pub use crate::cluster::{Cluster, Stats};
pub use crate::config::{Config, MAX_SERVERS, MAX_VNODES};
pub use crate::error::Error;
pub use crate::migration::Migration;
pub use crate::ring::{ring_position, ServerId};
pub use crate::store::Server;
pub use crate::version::Versioned;
