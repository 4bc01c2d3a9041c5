//! What the data path loads once per operation: the placement of the data
//! (one ring, or two while a membership change is in flight) and the
//! compaction watermark, published together as one immutable snapshot.
//!
//! Publishing a snapshot and waiting until nobody holds the one it replaced
//! ([`publish`]) is the grace period both membership changes
//! ([`crate::migration`]) and compaction ([`crate::compaction`]) rely on.

use std::sync::Arc as StdArc;

use crate::compaction::Watermark;
use crate::ring::Ring;
use crate::store::Server;
use crate::sync::{wait_until_unique, Arc, ArcCell};

/// A placement of the data: a ring and the server behind each of its server
/// indices.
#[derive(Clone)]
pub(crate) struct Placement {
    pub(crate) ring: StdArc<Ring>,
    pub(crate) servers: StdArc<[StdArc<Server>]>,
}

impl Placement {
    /// The replicas of a key at `position`, in preference-list order.
    #[inline]
    pub(crate) fn replicas(&self, position: u32) -> impl Iterator<Item = &StdArc<Server>> + '_ {
        self.ring
            .preference(position)
            .iter()
            .map(move |&index| &self.servers[index as usize])
    }

    /// The server with `id`, if it is part of this placement.
    pub(crate) fn server(&self, id: &str) -> Option<&StdArc<Server>> {
        let index = self
            .ring
            .servers()
            .binary_search_by(|probe| probe.as_str().cmp(id))
            .ok()?;
        Some(&self.servers[index])
    }
}

/// What the data path loads once per operation.
pub(crate) struct Snapshot {
    /// The placement reads and writes go to, and that `replicas()` reports.
    pub(crate) current: Placement,
    /// While a change is in flight, the placement it moves away from.
    pub(crate) previous: Option<Placement>,
    /// Client writes at or below it are refused: tombstones older than it
    /// may have been compacted away.
    pub(crate) watermark: Watermark,
    /// A server whose `leave` is finishing (its ranges are being dropped):
    /// no longer read or written, but still found by `Cluster::server`
    /// until `leave` returns.
    pub(crate) departing: Option<StdArc<Server>>,
}

impl Snapshot {
    pub(crate) fn stable(current: Placement, watermark: Watermark) -> Snapshot {
        Snapshot {
            current,
            previous: None,
            watermark,
            departing: None,
        }
    }

    /// Calls `visit` on every replica an operation on a key at `position`
    /// must reach: the current preference list, then (while a change is in
    /// flight) the servers only the previous list has. That order is what
    /// keeps reads monotonic across the switch; see the module docs.
    #[inline]
    pub(crate) fn for_each_replica<'s>(
        &'s self,
        position: u32,
        mut visit: impl FnMut(&'s StdArc<Server>),
    ) {
        for server in self.current.replicas(position) {
            visit(server);
        }
        if let Some(previous) = &self.previous {
            for server in previous.replicas(position) {
                let also_current = self
                    .current
                    .replicas(position)
                    .any(|current| StdArc::ptr_eq(current, server));
                if !also_current {
                    visit(server);
                }
            }
        }
    }
}

/// Publishes `snapshot` and waits until no operation holds the one it
/// replaced (see [`wait_until_unique`]).
pub(crate) fn publish(cell: &ArcCell<Snapshot>, snapshot: Snapshot) {
    let replaced = cell.swap(Arc::new(snapshot));
    wait_until_unique(&replaced);
}
