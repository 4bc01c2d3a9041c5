//! Tombstone compaction: removing deletes every replica agrees on, without
//! ever bringing deleted data back.
//!
//! # The rule
//!
//! [`Cluster::compact(older_than)`](crate::Cluster::compact) removes a
//! replica's tombstone `t` when `t` is older than the cutoff and every
//! current replica of its key holds `t` or a version that supersedes it. A
//! replica holding an older live value, or nothing, keeps every other
//! replica's tombstone alive: that tombstone is still what suppresses the old
//! value (a read repair will spread it first).
//!
//! Entries a server holds off their key's preference list (*strays*: only
//! `Server::apply` creates them) are handled first. A stray that some replica
//! of its key supersedes or equals is removed, tombstone or value: it can
//! never be read again, and once the replicas' tombstone is gone nothing
//! would suppress an older stray value if its server later took the key
//! over. Any other stray (newer than everything the replicas hold) stays.
//!
//! # Why nothing comes back
//!
//! * *Late old writes.* Before scanning, compaction raises the cluster's
//!   watermark to the cutoff and publishes it in a new ring snapshot, then
//!   waits out the grace period. Client writes (`put_at`, `delete_at`) check
//!   their timestamp against the watermark of the snapshot they hold, so
//!   every write at or below the cutoff either finished before the scan or
//!   is refused. Clock-stamped writes are always above it: the clock is moved
//!   past the cutoff before the snapshot is published, and such writes take
//!   their timestamp after loading the snapshot.
//! * *Writes racing the removal.* A replica's entry is removed in two steps:
//!   its slot's version is compare-and-swapped from the tombstone to a
//!   *retired* marker, and then the node is unlinked. A write that swapped a
//!   newer version in first makes the claim fail, and the entry stays. A
//!   write that finds the marker unlinks the node itself and writes a fresh
//!   one; readers treat the marker as absent (it replaced a tombstone every
//!   replica agreed on). So no write is ever merged into a node on its way out.
//! * *Migrations.* Compaction takes the membership mutex, so it never runs
//!   while a range is being copied or dropped; it queues behind membership
//!   changes, as they queue behind each other.
//!
//! # Compared with Cassandra and Riak
//!
//! Cassandra keeps a tombstone for `gc_grace_seconds` and relies on repair
//! having run within that window; a replica that missed the delete and comes
//! back later can resurrect the data. Riak's default delete mode reaps a
//! tombstone shortly after all primary replicas acknowledge it, and a late
//! write with an older vector clock can still reappear. ringkv checks the
//! replicas directly instead of trusting a time window, and closes the late
//! write hole with the watermark: a write older than the cutoff is refused
//! with [`Error::TimestampCompacted`](crate::Error::TimestampCompacted) rather
//! than accepted and silently resurrecting a key.
//!
//! # Cost
//!
//! One full scan of every server, plus one lookup per replica for each key
//! whose first replica holds something. Data path operations keep running.

use std::sync::Arc as StdArc;

use crate::error::Error;
use crate::snapshot::Placement;
use crate::store::{position_of, Entry, Server};
use crate::sync::ArcGuard;
use crate::version::Versioned;
use crate::Timestamp;

/// The compaction watermark: the highest cutoff any compaction ran with, or
/// none before the first. Client writes at or below it are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Watermark(Option<Timestamp>);

impl Watermark {
    /// No compaction yet: every timestamp is accepted.
    pub(crate) const NONE: Watermark = Watermark(None);

    /// The watermark after a compaction through `cutoff`; it never goes
    /// down.
    pub(crate) fn raised_to(self, cutoff: Timestamp) -> Watermark {
        Watermark(Some(self.0.map_or(cutoff, |current| current.max(cutoff))))
    }

    /// Whether a version at `timestamp` is at or below the watermark: a
    /// write there is refused, and a tombstone there may be being compacted.
    #[inline]
    pub(crate) fn covers(self, timestamp: Timestamp) -> bool {
        self.0.is_some_and(|watermark| timestamp <= watermark)
    }

    /// Refuses a client write at or below the watermark.
    #[inline]
    pub(crate) fn check(self, timestamp: Timestamp) -> Result<(), Error> {
        match self.0 {
            Some(watermark) if timestamp <= watermark => Err(Error::TimestampCompacted {
                timestamp,
                watermark,
            }),
            _ => Ok(()),
        }
    }

    /// The cutoff, if a compaction has run.
    pub(crate) fn get(self) -> Option<Timestamp> {
        self.0
    }

    /// The watermark in one word, for an atomic: 0 for none, else the cutoff
    /// plus one (cutoffs are at most [`Timestamp::LATEST`], so this does not
    /// overflow).
    pub(crate) fn encode(self) -> u64 {
        self.0.map_or(0, |watermark| watermark.0 + 1)
    }

    /// The inverse of [`Watermark::encode`].
    pub(crate) fn decode(word: u64) -> Watermark {
        Watermark(word.checked_sub(1).map(Timestamp))
    }
}

/// Removes, on every server of `placement`, the stray entries the key's
/// replicas supersede, then the tombstones older than `older_than` that
/// every replica of their key agrees on. Returns how many entries were
/// removed.
///
/// The caller holds the membership mutex and has published the watermark
/// and waited out the grace period.
pub(crate) fn compact(placement: &Placement, older_than: Timestamp) -> u64 {
    // Strays first: once a tombstone is gone, nothing would tell an older
    // stray value that it was deleted.
    let mut removed = 0;
    for server in placement.servers.iter() {
        for entry in server.iter() {
            let key = entry.key();
            let on_list = placement
                .replicas(position_of(key))
                .any(|replica| StdArc::ptr_eq(replica, server));
            if !on_list {
                removed += compact_stray(placement, server, &entry);
            }
        }
    }

    // Each key is decided once, when its first replica is scanned, from one
    // reading of all its replicas; if the first replica holds nothing, no
    // tombstone of the key can go.
    for server in placement.servers.iter() {
        for entry in server.iter() {
            let key = entry.key();
            let first = placement
                .replicas(position_of(key))
                .next()
                .expect("a preference list is never empty");
            if StdArc::ptr_eq(first, server) {
                removed += compact_key(placement, key, older_than);
            }
        }
    }
    removed
}

/// Removes a stray entry (held by `server`, which is not on its key's
/// preference list) if some replica of the key holds a version that
/// supersedes or equals it. Such a stray can never be read again: should
/// `server` become a replica, the migration merges the newer version into
/// it. Any other stray stays.
fn compact_stray(placement: &Placement, server: &Server, entry: &Entry<'_>) -> u64 {
    let Some(stray) = server.live(entry) else {
        return 0;
    };
    let key = entry.key();
    // Versions only grow on each replica, so "superseded" stays true.
    let superseded = placement.replicas(position_of(key)).any(|replica| {
        replica
            .load(key)
            .is_some_and(|held| **held == **stray || held.supersedes(&stray))
    });
    u64::from(superseded && server.retire(key, &stray))
}
/// Reads every replica of one key once, and removes the tombstones the rule
/// allows.
fn compact_key(placement: &Placement, key: &[u8], older_than: Timestamp) -> u64 {
    let replicas: Vec<(&Server, Option<ArcGuard<Versioned>>)> = placement
        .replicas(position_of(key))
        .map(|replica| (&**replica, replica.load(key)))
        .collect();

    // Versions only grow on each replica while compaction holds the
    // membership mutex, so a condition true of this reading stays true.
    let mut removed = 0;
    for (server, version) in &replicas {
        let Some(tombstone) = version else { continue };
        if !tombstone.is_tombstone() || tombstone.timestamp >= older_than {
            continue;
        }
        let everyone_has_it = replicas.iter().all(|(_, other)| match other {
            Some(other) => !tombstone.supersedes(other),
            None => false,
        });
        if everyone_has_it && server.retire(key, tombstone) {
            removed += 1;
        }
    }
    removed
}
