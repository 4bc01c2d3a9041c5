//! One simulated server: an ordered, lock-free index of versioned entries.
//!
//! # Layout
//!
//! Entries live in an [`OrderedMap`] (a crossbeam skiplist) keyed by the
//! *entry key*: the key's 4-byte big-endian ring position followed by the key
//! bytes. Byte order on entry keys is (position, key) order, so the entries a
//! ring range owns are one contiguous range scan, and a point lookup needs
//! only a borrowed `[u8]`, built on the stack for short keys.
//!
//! Each entry holds an [`ArcCell`] with its current `Arc<Versioned>`. A key
//! keeps the same node for as long as it is stored, and a write replaces the
//! version inside it with a compare-and-swap. The skiplist's own `insert`
//! would unlink the old node before linking the new one, and a reader could
//! find the key missing in between; swapping inside the node closes that gap,
//! so a key that exists before and after an overwrite is never seen missing.
//!
//! One `Arc<Versioned>` is shared by every replica a write reaches, so a value
//! is stored once however many replicas hold it.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc as StdArc;

use bytes::Bytes;

use crate::clock::{Clock, Timestamp};
use crate::config::Config;
use crate::error::Error;
use crate::ring::{ring_position, ServerId};
use crate::sync::{Arc, ArcCell, ArcGuard, AtomicU64, MapEntry, OrderedMap, Ordering};
use crate::version::Versioned;

/// What the cluster's servers share: the configuration, the clock, the
/// compaction watermark and the retired-slot marker.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    /// The compaction watermark, for [`Server::apply`], which does not load
    /// a ring snapshot. The data path reads the snapshot's copy instead.
    watermark: AtomicU64,
    /// The version a slot holds once compaction has claimed it for removal.
    /// Only its address matters: it is never read as a version.
    retired: Arc<Versioned>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Shared {
        Shared {
            config,
            clock: Clock::new(),
            watermark: AtomicU64::new(0),
            retired: Arc::new(Versioned {
                timestamp: Timestamp(u64::MAX),
                value: None,
            }),
        }
    }

    /// The compaction watermark as [`Server::apply`] sees it.
    pub(crate) fn watermark(&self) -> Timestamp {
        // Pairs with the `Release` store in `raise_watermark`: an `apply`
        // that sees the new watermark also sees the clock moved past it.
        Timestamp(self.watermark.load(Ordering::Acquire))
    }

    /// Raises the watermark seen by [`Server::apply`] to at least `to`.
    pub(crate) fn raise_watermark(&self, to: Timestamp) {
        self.watermark.fetch_max(to.0, Ordering::Release);
    }

    /// Refuses a client timestamp at or below the compaction watermark.
    pub(crate) fn check_watermark(
        &self,
        timestamp: Timestamp,
        watermark: Timestamp,
    ) -> Result<(), Error> {
        if timestamp <= watermark {
            return Err(Error::TimestampCompacted {
                timestamp,
                watermark,
            });
        }
        Ok(())
    }

    /// Refuses a key longer than the configured limit.
    pub(crate) fn check_key(&self, key: &[u8]) -> Result<(), Error> {
        if key.len() > self.config.max_key_len {
            return Err(Error::KeyTooLong {
                len: key.len(),
                max: self.config.max_key_len,
            });
        }
        Ok(())
    }

    /// Refuses a value longer than the configured limit.
    pub(crate) fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        if value.len() > self.config.max_value_len {
            return Err(Error::ValueTooLong {
                len: value.len(),
                max: self.config.max_value_len,
            });
        }
        Ok(())
    }

    /// Refuses a client timestamp too far ahead of wall-clock time.
    pub(crate) fn check_timestamp(&self, timestamp: Timestamp) -> Result<(), Error> {
        let horizon = Clock::horizon(self.config.max_clock_skew);
        if timestamp > horizon {
            return Err(Error::TimestampTooFarAhead {
                timestamp,
                horizon,
                max_skew: self.config.max_clock_skew,
            });
        }
        Ok(())
    }
}

/// How a merge into one replica went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merge {
    /// The replica held nothing for the key; it now holds the version.
    Inserted,
    /// The version superseded the one the replica held.
    Replaced,
    /// The replica already held this version or one that supersedes it.
    Stale,
}

/// Short keys are encoded on the stack; this many bytes of key fit.
const INLINE_KEY: usize = 60;

/// An entry key: 4-byte big-endian ring position, then the key bytes.
pub(crate) enum EntryKey {
    Inline {
        len: u8,
        bytes: [u8; 4 + INLINE_KEY],
    },
    Heap(Box<[u8]>),
}

impl EntryKey {
    pub(crate) fn new(position: u32, key: &[u8]) -> EntryKey {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0u8; 4 + INLINE_KEY];
            bytes[..4].copy_from_slice(&position.to_be_bytes());
            bytes[4..4 + key.len()].copy_from_slice(key);
            EntryKey::Inline {
                len: (4 + key.len()) as u8,
                bytes,
            }
        } else {
            let mut bytes = Vec::with_capacity(4 + key.len());
            bytes.extend_from_slice(&position.to_be_bytes());
            bytes.extend_from_slice(key);
            EntryKey::Heap(bytes.into_boxed_slice())
        }
    }

    /// The ring position the key was encoded with.
    pub(crate) fn position(&self) -> u32 {
        position_of(self)
    }
}

impl Deref for EntryKey {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            EntryKey::Inline { len, bytes } => &bytes[..*len as usize],
            EntryKey::Heap(bytes) => bytes,
        }
    }
}

/// The ring position an encoded entry key starts with.
pub(crate) fn position_of(entry_key: &[u8]) -> u32 {
    u32::from_be_bytes(
        entry_key[..4]
            .try_into()
            .expect("entry keys start with a position"),
    )
}

/// The value each skiplist node holds: the key's current version.
pub(crate) struct Slot {
    version: ArcCell<Versioned>,
}

/// How a merge into one slot went.
enum SlotMerge {
    Won,
    Lost,
    /// Compaction claimed the slot and is unlinking its node: the write must
    /// go to a fresh node.
    Retired,
}

impl Slot {
    #[inline]
    pub(crate) fn load(&self) -> ArcGuard<Versioned> {
        self.version.load()
    }

    /// Swaps `version` in if it supersedes the current one. Lock-free: a
    /// failed compare-and-swap means another writer changed the slot, and the
    /// loop re-reads it.
    fn merge(&self, version: &Arc<Versioned>, retired: &Arc<Versioned>) -> SlotMerge {
        let mut current = self.version.load();
        loop {
            if Arc::ptr_eq(&current, retired) {
                return SlotMerge::Retired;
            }
            if !version.supersedes(&current) {
                return SlotMerge::Lost;
            }
            if self.version.compare_and_swap(&current, Arc::clone(version)) {
                return SlotMerge::Won;
            }
            current = self.version.load();
        }
    }
}

/// One simulated server: a replica of the ring ranges it owns.
///
/// Every method is lock-free and safe to call from any thread. Reading a
/// server directly shows that replica alone, tombstones included; the
/// cluster's [`get`](crate::Cluster::get) is what reconciles replicas.
pub struct Server {
    id: ServerId,
    entries: OrderedMap<Slot>,
    shared: StdArc<Shared>,
}

impl Server {
    pub(crate) fn new(id: ServerId, shared: StdArc<Shared>) -> Server {
        Server {
            id,
            entries: OrderedMap::new(),
            shared,
        }
    }

    /// The server's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The server's id as a cheap-to-clone [`ServerId`].
    pub fn server_id(&self) -> &ServerId {
        &self.id
    }

    /// The version this replica holds for `key`, tombstones included, or
    /// `None` if it holds nothing (a key longer than the configured limit is
    /// never stored, so it reads as `None`).
    ///
    /// Cost: one MD5 and one skiplist lookup.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<Versioned> {
        let key = key.as_ref();
        let entry_key = EntryKey::new(ring_position(key), key);
        self.load(&entry_key)
            .map(|version| Versioned::clone(&version))
    }

    /// Merges `version` into this replica only, under last-write-wins, and
    /// returns `Ok(true)` if it won (the replica now holds it).
    ///
    /// This bypasses the ring: it writes here whether or not this server is on
    /// the key's preference list, which makes it the tool for creating
    /// divergence in tests and for feeding a replica from outside. Like
    /// [`Cluster::put_at`](crate::Cluster::put_at), it refuses a key or value
    /// over the limits, a timestamp too far ahead, and a timestamp at or
    /// below the compaction watermark, and it advances the cluster's clock
    /// past the timestamp.
    ///
    /// Unlike `put_at`, it does not take part in the ring's grace periods: an
    /// `apply` racing [`Cluster::compact`](crate::Cluster::compact) may pass
    /// the watermark check just before the watermark rises. Calls made after
    /// `compact` returns see the new watermark.
    pub fn apply(&self, key: impl AsRef<[u8]>, version: Versioned) -> Result<bool, Error> {
        let key = key.as_ref();
        self.shared.check_key(key)?;
        if let Some(value) = &version.value {
            self.shared.check_value(value)?;
        }
        self.shared.check_timestamp(version.timestamp)?;
        self.shared
            .check_watermark(version.timestamp, self.shared.watermark())?;

        self.shared.clock.observe(version.timestamp);
        let entry_key = EntryKey::new(ring_position(key), key);
        let merged = self.merge(&entry_key, &Arc::new(version));
        Ok(merged != Merge::Stale)
    }

    /// Entries held, tombstones included. Exact when no write races it.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the server holds no entry at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry this replica holds, tombstones included, as
    /// `(key, version)` pairs in ring order (by position, then key).
    ///
    /// Not a snapshot: entries written or removed during the iteration may or
    /// may not appear. Each item copies its key; the value is shared.
    pub fn entries(&self) -> impl Iterator<Item = (Bytes, Versioned)> + '_ {
        self.entries.iter().filter_map(|entry| {
            let version = self.live(&entry)?;
            let key = Bytes::copy_from_slice(&entry.key()[4..]);
            Some((key, Versioned::clone(&version)))
        })
    }

    /// The version an entry holds, unless compaction has claimed it.
    #[inline]
    pub(crate) fn live(&self, entry: &MapEntry<'_, Slot>) -> Option<ArcGuard<Versioned>> {
        let version = entry.value().load();
        if Arc::ptr_eq(&version, &self.shared.retired) {
            None
        } else {
            Some(version)
        }
    }

    /// The current version under `entry_key`.
    #[inline]
    pub(crate) fn load(&self, entry_key: &[u8]) -> Option<ArcGuard<Versioned>> {
        self.live(&self.entries.get(entry_key)?)
    }

    /// Merges `version` under `entry_key` with last-write-wins.
    ///
    /// Lock-free. The loop repeats only when the entry found was claimed by
    /// compaction; this call then finishes unlinking it (any thread may) and
    /// writes a fresh node, so a write racing compaction is never lost.
    pub(crate) fn merge(&self, entry_key: &[u8], version: &Arc<Versioned>) -> Merge {
        let retired = &self.shared.retired;
        loop {
            if let Some(entry) = self.entries.get(entry_key) {
                match entry.value().merge(version, retired) {
                    SlotMerge::Won => return Merge::Replaced,
                    SlotMerge::Lost => return Merge::Stale,
                    SlotMerge::Retired => {
                        entry.remove();
                        continue;
                    }
                }
            }

            let entry = self
                .entries
                .get_or_insert_with(Box::from(entry_key), || Slot {
                    version: ArcCell::new(Arc::clone(version)),
                });
            // The skiplist may have built our slot and thrown it away because
            // another writer inserted the key first. Our `Arc` can only be in
            // the slot if our node was linked, so pointer equality tells.
            if Arc::ptr_eq(&entry.value().load(), version) {
                return Merge::Inserted;
            }
            match entry.value().merge(version, retired) {
                SlotMerge::Won => return Merge::Replaced,
                SlotMerge::Lost => return Merge::Stale,
                SlotMerge::Retired => {
                    entry.remove();
                }
            }
        }
    }

    /// Claims the entry under `entry_key` for removal if it still holds
    /// exactly `expected`, then unlinks it. Returns whether this call removed
    /// it. A writer that swapped a newer version in first wins and the entry
    /// stays; a writer that finds the claimed slot writes a fresh node.
    pub(crate) fn retire(&self, entry_key: &[u8], expected: &Arc<Versioned>) -> bool {
        let Some(entry) = self.entries.get(entry_key) else {
            return false;
        };
        let retired = Arc::clone(&self.shared.retired);
        if !entry.value().version.compare_and_swap(expected, retired) {
            return false;
        }
        entry.remove();
        true
    }

    /// Every entry in ring order, for a full scan. Not a snapshot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = MapEntry<'_, Slot>> + '_ {
        self.entries.iter()
    }

    /// Entries whose ring position is in `start..end` (`None`: to the end of
    /// the ring). Not a snapshot; see [`OrderedMap::range`].
    pub(crate) fn range(
        &self,
        start: u32,
        end: Option<u32>,
    ) -> impl Iterator<Item = MapEntry<'_, Slot>> + '_ {
        let end = end.map(|end| Box::from(end.to_be_bytes()));
        self.entries.range(&start.to_be_bytes(), end)
    }

    /// Removes every entry, for a server that has left the cluster.
    pub(crate) fn clear(&self) {
        for entry in self.entries.iter() {
            entry.remove();
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.id)
            .field("entries", &self.len())
            .finish()
    }
}
