//! The textbook locked design of ringkv's store, the baseline every
//! operation and migration benchmark measures against.
//!
//! Same job as `ringkv::Cluster`: MD5 placement by the same rule, R replicas
//! per key, last-write-wins versions (`ringkv::Versioned`, value shared by
//! the replicas), a get that reads all R replicas. Built the way one would
//! write it first:
//!
//! * the ring is a [`BTreeRing`] behind an `RwLock`, walked on every call;
//!   the read lock is held for the whole operation, so a membership change
//!   (which takes it for writing) cannot race a put and lose it;
//! * each server is one map behind a lock ([`ReplicaMap`]: a
//!   `RwLock<HashMap>` in [`crate::common::locked`], a `DashMap` in
//!   [`crate::common::dashmap_store`]);
//! * timestamps come from one atomic counter, so they are unique and a get
//!   can pick the newest replica by timestamp alone;
//! * `join` and `leave` stop the world and scan every entry of every server,
//!   recomputing the old and new preference lists of each (the entry keeps
//!   its ring position, so no MD5 is redone).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use ringkv::{ring_position, Bytes, ServerId, Timestamp, Versioned};

use super::btree_ring::BTreeRing;

/// One stored replica: the key's ring position (kept for migration) and its
/// current version.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) position: u32,
    pub(crate) version: Versioned,
}

/// How a merge into one replica went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merge {
    Inserted,
    Replaced,
    Stale,
}

/// Merges `version` into `slot` under last-write-wins.
pub(crate) fn merge_into(slot: &mut Entry, version: &Versioned) -> Merge {
    if version.supersedes(&slot.version) {
        slot.version = version.clone();
        Merge::Replaced
    } else {
        Merge::Stale
    }
}

/// The per-server map of a textbook store.
pub(crate) trait ReplicaMap: Default + Send + Sync {
    /// If this replica holds `key` with a later timestamp than `newest`,
    /// replaces `newest` with a clone of it.
    fn read_newest(&self, key: &[u8], newest: &mut Option<Versioned>);

    /// Merges `version` under last-write-wins.
    fn merge(&self, key: &[u8], position: u32, version: &Versioned) -> Merge;

    /// Entries held.
    fn len(&self) -> usize;

    /// Visits every entry, keeping those for which `keep` returns true.
    fn retain(&self, keep: impl FnMut(&[u8], &Entry) -> bool);
}

/// One server of a textbook store.
struct Shard<M> {
    id: ServerId,
    map: M,
}

/// The ring and the servers, replaced together by a membership change.
struct Membership<M> {
    ring: BTreeRing,
    /// In the order of `ring.servers()` (sorted by id).
    servers: Vec<Arc<Shard<M>>>,
}

/// What a full-scan membership change moved, counted like
/// `ringkv::Migration`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Moved {
    /// Entries written to a server that did not hold the key.
    pub(crate) copied: u64,
    /// Entries removed from servers that stay.
    pub(crate) dropped: u64,
    /// Entries read: every entry of every server.
    pub(crate) scanned: u64,
}

/// The textbook store over per-server maps `M`.
pub(crate) struct Textbook<M> {
    membership: RwLock<Membership<M>>,
    clock: AtomicU64,
    vnodes: usize,
    replication: usize,
}

impl<M: ReplicaMap> Textbook<M> {
    pub(crate) fn new(servers: &[ServerId], vnodes: usize, replication: usize) -> Textbook<M> {
        Textbook {
            membership: RwLock::new(Self::membership(servers, Vec::new(), vnodes, replication)),
            clock: AtomicU64::new(0),
            vnodes,
            replication,
        }
    }

    /// A membership of `ids`, reusing the shards in `keep` by id.
    fn membership(
        ids: &[ServerId],
        keep: Vec<Arc<Shard<M>>>,
        vnodes: usize,
        replication: usize,
    ) -> Membership<M> {
        let ring = BTreeRing::new(ids, vnodes, replication);
        let servers = ring
            .servers()
            .iter()
            .map(|id| match keep.iter().find(|shard| shard.id == *id) {
                Some(shard) => Arc::clone(shard),
                None => Arc::new(Shard {
                    id: id.clone(),
                    map: M::default(),
                }),
            })
            .collect();
        Membership { ring, servers }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Membership<M>> {
        self.membership
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `value` under `key` on its R replicas with a fresh timestamp.
    #[inline]
    pub(crate) fn put(&self, key: &[u8], value: Bytes) {
        let position = ring_position(key);
        // A statistic-like counter: uniqueness is all it provides.
        let timestamp = Timestamp(self.clock.fetch_add(1, Ordering::Relaxed) + 1);
        let version = Versioned {
            timestamp,
            value: Some(value),
        };
        let membership = self.read();
        for &server in membership.ring.preference(position).as_slice() {
            membership.servers[server as usize]
                .map
                .merge(key, position, &version);
        }
    }

    /// The newest value of `key` across its R replicas.
    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Option<Bytes> {
        let position = ring_position(key);
        let membership = self.read();
        let mut newest = None;
        for &server in membership.ring.preference(position).as_slice() {
            membership.servers[server as usize]
                .map
                .read_newest(key, &mut newest);
        }
        newest.and_then(|version| version.value)
    }

    /// The preference list of `key`, as `Cluster::replicas` gives it.
    pub(crate) fn replicas(&self, key: &[u8]) -> Vec<ServerId> {
        self.read().ring.replicas(key)
    }

    /// Entries held by each server, in id order.
    pub(crate) fn lens(&self) -> Vec<usize> {
        self.read().servers.iter().map(|s| s.map.len()).collect()
    }

    /// Adds a server; see [`Textbook::change`].
    pub(crate) fn join(&self, id: &str) -> Moved {
        let mut ids: Vec<ServerId> = self.read().ring.servers().to_vec();
        assert!(!ids.iter().any(|s| s == id), "{id} is already a member");
        ids.push(ServerId::from(id));
        self.change(&ids, None)
    }

    /// Removes a server; see [`Textbook::change`].
    pub(crate) fn leave(&self, id: &str) -> Moved {
        let ids: Vec<ServerId> = self
            .read()
            .ring
            .servers()
            .iter()
            .filter(|s| *s != id)
            .cloned()
            .collect();
        self.change(&ids, Some(id))
    }

    /// Moves to the membership `ids`: with the ring's write lock held (no
    /// operation runs), scans every entry of every server, copies it to the
    /// servers of its new preference list that were not on the old one,
    /// and removes it from a server that stays but is no longer on the list.
    /// Every old replica merges its copy, as ringkv does, so a newer version
    /// held by one replica wins.
    fn change(&self, ids: &[ServerId], leaving: Option<&str>) -> Moved {
        let mut membership = self
            .membership
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let next = Self::membership(
            ids,
            membership.servers.clone(),
            self.vnodes,
            self.replication,
        );

        // Old server index -> new server index (None: the leaving server).
        let to_new: Vec<Option<u32>> = membership
            .servers
            .iter()
            .map(|shard| {
                next.servers
                    .iter()
                    .position(|s| Arc::ptr_eq(s, shard))
                    .map(|i| i as u32)
            })
            .collect();

        let mut moved = Moved::default();
        for (old_index, shard) in membership.servers.iter().enumerate() {
            let stays = to_new[old_index];
            shard.map.retain(|key, entry| {
                moved.scanned += 1;
                let before = membership.ring.preference(entry.position);
                let after = next.ring.preference(entry.position);
                for &gainer in after.as_slice() {
                    // This shard holds the entry, whether it is on the old
                    // list or received it earlier in this scan.
                    let held = stays == Some(gainer)
                        || before
                            .as_slice()
                            .iter()
                            .any(|&old| to_new[old as usize] == Some(gainer));
                    if !held {
                        let target = &next.servers[gainer as usize].map;
                        if target.merge(key, entry.position, &entry.version) == Merge::Inserted {
                            moved.copied += 1;
                        }
                    }
                }
                match stays {
                    Some(index) if !after.contains(index) => {
                        moved.dropped += 1;
                        false
                    }
                    // A leaving server keeps its entries until it is discarded.
                    _ => true,
                }
            });
        }
        debug_assert!(leaving.is_none_or(|id| next.ring.servers().iter().all(|s| s != id)));
        *membership = next;
        moved
    }
}
