//! One simulated server: versioned entries behind two lock-free indexes.
//!
//! # Layout
//!
//! Each stored key has one [`Slot`] per server: its *entry key* (the key's
//! 4-byte big-endian ring position followed by the key bytes) and an
//! [`ArcCell`] holding its current `Arc<Versioned>`. Two indexes point at the
//! same slot:
//!
//! * an [`OrderedSet`] (a crossbeam skiplist) ordered by entry key, which is
//!   (position, key) order, so the entries a ring range owns are one
//!   contiguous range scan: what migration, compaction and
//!   [`Server::entries`] walk;
//! * a [`PointIndex`] (a papaya hash table) hashed by entry key: what every
//!   point operation (`get`, `put`, `delete`, read repair, a migration's
//!   writes) uses. A skiplist search at a few hundred thousand entries
//!   follows a chain of cache misses; a hash probe takes one or two.
//!
//! A key keeps the same slot for as long as it is stored, and a write
//! replaces the version inside it with a compare-and-swap. The skiplist's
//! own `insert` would unlink the old node before linking the new one, and a
//! reader could find the key missing in between; swapping inside the slot
//! closes that gap, so a key that exists before and after an overwrite is
//! never seen missing.
//!
//! # Keeping the two indexes in step
//!
//! The hash index decides which slot a key has: a new slot is linked there
//! first, with an insert that fails if the key is present, and only then in
//! the skiplist. A slot leaves in three steps: its version is swapped for the
//! *retired* marker (a compare-and-swap from the version compaction decided
//! on, or from whatever it holds when a migration drops it), then it is
//! removed from the hash index, then from the skiplist, each removal only if
//! that index still holds this very slot. So:
//!
//! * a write never lands in a slot on its way out: it either swapped its
//!   version in before the marker, and the removal's compare-and-swap fails
//!   (compaction keeps the entry), or it finds the marker, finishes the
//!   unlinking itself and links a fresh slot;
//! * a slot that the skiplist still holds under a key whose hash-index slot
//!   is another one is always retired, so a writer linking its fresh slot may
//!   unlink it;
//! * readers treat the marker as absent. Compaction retires only tombstones
//!   every replica agrees on, and a migration retires only entries no
//!   operation reads any more, so that absence is never a lost write.
//!
//! A scan of the skiplist can miss a slot whose writer has linked it in the
//! hash index but not yet in the skiplist. Migrations only scan ranges no
//! in-flight write can reach that way (see [`crate::migration`]), and the
//! fresh version of such a slot is never one compaction would remove.
//!
//! One `Arc<Versioned>` is shared by every replica a write reaches, so a value
//! is stored once however many replicas hold it.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc as StdArc;

use bytes::Bytes;

use crate::clock::{Clock, Timestamp};
use crate::compaction::Watermark;
use crate::config::Config;
use crate::error::Error;
use crate::key_hash::KeyHashing;
use crate::ring::{ring_position, ServerId};
use crate::sync::{Arc, ArcCell, ArcGuard, AtomicU64, OrderedSet, Ordering, PointIndex, SetEntry};
use crate::version::Versioned;

/// What the cluster's servers share: the configuration, the clock, the
/// compaction watermark and the retired-slot marker.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    /// The compaction watermark ([`Watermark::encode`]d), for
    /// [`Server::apply`], which does not load a ring snapshot. The data path
    /// reads the snapshot's copy instead.
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
            watermark: AtomicU64::new(Watermark::NONE.encode()),
            retired: Arc::new(Versioned {
                timestamp: Timestamp(u64::MAX),
                value: None,
            }),
        }
    }

    /// The compaction watermark as [`Server::apply`] sees it.
    pub(crate) fn watermark(&self) -> Watermark {
        // Pairs with the `Release` store in `raise_watermark`: an `apply`
        // that sees the new watermark also sees the clock moved past it.
        Watermark::decode(self.watermark.load(Ordering::Acquire))
    }

    /// Raises the watermark seen by [`Server::apply`] to at least `to`.
    /// (The encoding preserves order, so `fetch_max` raises it.)
    pub(crate) fn raise_watermark(&self, to: Watermark) {
        self.watermark.fetch_max(to.encode(), Ordering::Release);
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

/// A key's entry on one server: its entry key and its current version.
pub(crate) struct Slot {
    key: SlotKey,
    version: ArcCell<Versioned>,
}

/// Entry keys up to this long are stored inside the slot.
const SLOT_INLINE: usize = 30;

/// A slot's entry key: inside the slot when short, so a hash-index probe
/// compares keys without following one more pointer; on the heap otherwise.
enum SlotKey {
    Inline { len: u8, bytes: [u8; SLOT_INLINE] },
    Heap(Box<[u8]>),
}

impl SlotKey {
    fn new(entry_key: &[u8]) -> SlotKey {
        if entry_key.len() <= SLOT_INLINE {
            let mut bytes = [0u8; SLOT_INLINE];
            bytes[..entry_key.len()].copy_from_slice(entry_key);
            SlotKey::Inline {
                len: entry_key.len() as u8,
                bytes,
            }
        } else {
            SlotKey::Heap(Box::from(entry_key))
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            SlotKey::Inline { len, bytes } => &bytes[..*len as usize],
            SlotKey::Heap(bytes) => bytes,
        }
    }
}

/// A shared reference to a [`Slot`] that compares and hashes as the slot's
/// entry key, so the hash index can be searched with a borrowed `[u8]`.
///
/// The count is `std`'s in both builds: it only decides when the slot's
/// memory is freed, and nothing in the protocol reads it.
#[derive(Clone)]
pub(crate) struct SlotRef(StdArc<Slot>);

impl SlotRef {
    fn new(entry_key: &[u8], version: Arc<Versioned>) -> SlotRef {
        SlotRef(StdArc::new(Slot {
            key: SlotKey::new(entry_key),
            version: ArcCell::new(version),
        }))
    }

    fn ptr_eq(&self, other: &SlotRef) -> bool {
        StdArc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for SlotRef {
    type Target = Slot;

    #[inline]
    fn deref(&self) -> &Slot {
        &self.0
    }
}

impl Borrow<[u8]> for SlotRef {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.0.key()
    }
}

impl PartialEq for SlotRef {
    fn eq(&self, other: &SlotRef) -> bool {
        self.0.key() == other.0.key()
    }
}

impl Eq for SlotRef {}

impl Hash for SlotRef {
    // Must hash as the `[u8]` it borrows as, so lookups by `[u8]` find it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key().hash(state);
    }
}

/// A slot as the ordered index holds it: the key's ring position beside the
/// pointer to the slot.
///
/// A skiplist search compares the element at every node it passes; with the
/// position inline it decides on the position alone, and follows the
/// pointer to compare key bytes only when two keys share a position. That
/// saves a cache miss per node visited, at 8 bytes per entry.
///
/// `slot` is `None` only in a *probe*, which orders before every key at its
/// position and is used to start or end a range scan; the index never holds
/// a probe.
#[derive(Clone)]
pub(crate) struct RingSlot {
    position: u32,
    slot: Option<SlotRef>,
}

impl RingSlot {
    fn new(slot: SlotRef) -> RingSlot {
        RingSlot {
            position: position_of(slot.key()),
            slot: Some(slot),
        }
    }

    /// The probe that orders before every key at `position`.
    fn before(position: u32) -> RingSlot {
        RingSlot {
            position,
            slot: None,
        }
    }

    /// The slot of an element of the index (never a probe).
    #[inline]
    fn slot(&self) -> &SlotRef {
        self.slot
            .as_ref()
            .expect("the ordered index holds slots, never probes")
    }
}

impl PartialEq for RingSlot {
    fn eq(&self, other: &RingSlot) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for RingSlot {}

impl PartialOrd for RingSlot {
    fn partial_cmp(&self, other: &RingSlot) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RingSlot {
    /// Entry-key order: (position, key bytes), a probe first at its position.
    #[inline]
    fn cmp(&self, other: &RingSlot) -> std::cmp::Ordering {
        self.position
            .cmp(&other.position)
            .then_with(|| match (&self.slot, &other.slot) {
                (Some(mine), Some(theirs)) => mine.key().cmp(theirs.key()),
                (mine, theirs) => mine.is_some().cmp(&theirs.is_some()),
            })
    }
}

/// A handle on one entry of a server, from a scan in ring order.
pub(crate) struct Entry<'a>(SetEntry<'a, RingSlot>);

impl Entry<'_> {
    /// The entry key: position, then key bytes.
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        self.slot().key()
    }

    #[inline]
    fn slot(&self) -> &SlotRef {
        self.0.value().slot()
    }
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
    /// The entry key: position, then key bytes.
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        self.key.as_bytes()
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
    /// Every slot, in entry-key order: for range scans.
    ordered: OrderedSet<RingSlot>,
    /// Every slot, hashed by entry key: for point operations. It decides
    /// which slot a key has; see the module docs.
    index: PointIndex<SlotRef, KeyHashing>,
    shared: StdArc<Shared>,
}

impl Server {
    pub(crate) fn new(id: ServerId, shared: StdArc<Shared>) -> Server {
        Server {
            id,
            ordered: OrderedSet::new(),
            index: PointIndex::with_hasher(KeyHashing::new()),
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
    /// Cost: one MD5 and one hash-table lookup.
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
        self.shared.watermark().check(version.timestamp)?;

        self.shared.clock.observe(version.timestamp);
        let entry_key = EntryKey::new(ring_position(key), key);
        let merged = self.merge(&entry_key, &Arc::new(version));
        Ok(merged != Merge::Stale)
    }

    /// Entries held, tombstones included. Exact when no write races it.
    pub fn len(&self) -> usize {
        self.ordered.len()
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
        self.iter().filter_map(|entry| {
            let version = self.live(&entry)?;
            let key = Bytes::copy_from_slice(&entry.key()[4..]);
            Some((key, Versioned::clone(&version)))
        })
    }

    /// The version a slot holds, unless it has been retired.
    #[inline]
    fn live_slot(&self, slot: &Slot) -> Option<ArcGuard<Versioned>> {
        let version = slot.version.load();
        if Arc::ptr_eq(&version, &self.shared.retired) {
            None
        } else {
            Some(version)
        }
    }

    /// The version an entry holds, unless it has been retired.
    #[inline]
    pub(crate) fn live(&self, entry: &Entry<'_>) -> Option<ArcGuard<Versioned>> {
        self.live_slot(entry.slot())
    }

    /// The current version under `entry_key`.
    #[inline]
    pub(crate) fn load(&self, entry_key: &[u8]) -> Option<ArcGuard<Versioned>> {
        self.index
            .with(entry_key, |slot| self.live_slot(slot))
            .flatten()
    }

    /// Merges `version` under `entry_key` with last-write-wins.
    ///
    /// Lock-free. The loop repeats only when the slot found was retired (this
    /// call then finishes unlinking it, as any thread may, and links a fresh
    /// one) or when another writer linked the key's first slot in between.
    pub(crate) fn merge(&self, entry_key: &[u8], version: &Arc<Versioned>) -> Merge {
        let retired = &self.shared.retired;
        loop {
            let found = self
                .index
                .with(entry_key, |slot| match slot.merge(version, retired) {
                    SlotMerge::Won => Some(Merge::Replaced),
                    SlotMerge::Lost => Some(Merge::Stale),
                    SlotMerge::Retired => {
                        self.unlink(slot);
                        None
                    }
                });
            match found {
                Some(Some(merge)) => return merge,
                Some(None) => continue,
                None => {}
            }

            let fresh = SlotRef::new(entry_key, Arc::clone(version));
            if self.index.try_insert(SlotRef::clone(&fresh)) {
                self.link(fresh);
                return Merge::Inserted;
            }
            // Another writer linked the key first: merge into its slot.
        }
    }

    /// Links a slot the hash index already holds into the skiplist.
    fn link(&self, fresh: SlotRef) {
        loop {
            let entry = self
                .ordered
                .get_or_insert(RingSlot::new(SlotRef::clone(&fresh)));
            if entry.value().slot().ptr_eq(&fresh) {
                return;
            }
            // The node of a retired slot whose unlinking another thread has
            // not finished (the hash index held no other slot for the key
            // when `fresh` went in, so this one left it, and only retired
            // slots leave it). Finish it, then try again.
            entry.remove();
        }
    }

    /// Removes a retired slot from both indexes, each only if it still holds
    /// this very slot. Any thread may call it, any number of times.
    fn unlink(&self, slot: &SlotRef) {
        self.index.remove_if(slot.key(), |held| held.ptr_eq(slot));
        if let Some(entry) = self.ordered.get(&RingSlot::new(SlotRef::clone(slot))) {
            if entry.value().slot().ptr_eq(slot) {
                entry.remove();
            }
        }
    }

    /// Retires the slot under `entry_key` if it still holds exactly
    /// `expected`, then unlinks it. Returns whether this call retired it. A
    /// writer that swapped a newer version in first wins and the entry stays;
    /// a writer that finds the slot retired links a fresh one.
    pub(crate) fn retire(&self, entry_key: &[u8], expected: &Arc<Versioned>) -> bool {
        self.index
            .with(entry_key, |slot| {
                let retired = Arc::clone(&self.shared.retired);
                if !slot.version.compare_and_swap(expected, retired) {
                    return false;
                }
                self.unlink(slot);
                true
            })
            .unwrap_or(false)
    }

    /// Retires an entry whatever version it holds, then unlinks it; for
    /// entries no operation reads or writes any more (a migration's drop).
    /// Returns whether this call retired it.
    pub(crate) fn discard(&self, entry: &Entry<'_>) -> bool {
        let slot = entry.slot();
        let retired = &self.shared.retired;
        loop {
            let current = slot.version.load();
            if Arc::ptr_eq(&current, retired) {
                return false;
            }
            if slot.version.compare_and_swap(&current, Arc::clone(retired)) {
                break;
            }
        }
        self.index.remove_if(slot.key(), |held| held.ptr_eq(slot));
        entry.0.remove();
        true
    }

    /// Every entry in ring order, for a full scan. Not a snapshot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        self.ordered.iter().map(Entry)
    }

    /// Entries whose ring position is in `start..end` (`None`: to the end of
    /// the ring). Not a snapshot; see [`OrderedSet::range`].
    pub(crate) fn range(
        &self,
        start: u32,
        end: Option<u32>,
    ) -> impl Iterator<Item = Entry<'_>> + '_ {
        let end = end.map(RingSlot::before);
        self.ordered.range(&RingSlot::before(start), end).map(Entry)
    }

    /// Removes every entry, for a server that has left the cluster.
    pub(crate) fn clear(&self) {
        for entry in self.iter() {
            self.discard(&entry);
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
