//! The plain ring a textbook store would write: vnodes in a `BTreeMap`, and a
//! walk per lookup that collects distinct servers.
//!
//! It follows ringkv's placement rule to the letter (position = last four
//! bytes of the MD5 digest, big-endian; vnodes `"{id}-{i}"` ordered by
//! (position, id, i); the list starts at the first vnode strictly after the
//! key and collects min(R, N) distinct servers clockwise), so a benchmark
//! that compares it with `Cluster::replicas` compares the same job done two
//! ways: walked per call here, precomputed per vnode in ringkv.

use std::collections::BTreeMap;
use std::ops::Bound;

use ringkv::{ring_position, ServerId};

/// The most replicas a [`Preference`] holds; the benchmarks use R = 3.
pub(crate) const MAX_REPLICATION: usize = 8;

/// A preference list as indices into [`BTreeRing::servers`], on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Preference {
    len: usize,
    servers: [u32; MAX_REPLICATION],
}

impl Preference {
    pub(crate) fn as_slice(&self) -> &[u32] {
        &self.servers[..self.len]
    }

    pub(crate) fn contains(&self, server: u32) -> bool {
        self.as_slice().contains(&server)
    }
}

/// Vnodes keyed by (position, server index, vnode number); the value is the
/// server index. Server indices follow the sorted ids, so ordering by index
/// is ordering by id, as the rule asks.
#[derive(Debug)]
pub(crate) struct BTreeRing {
    vnodes: BTreeMap<(u32, u32, u32), u32>,
    servers: Vec<ServerId>,
    replication: usize,
}

impl BTreeRing {
    /// A ring of `servers` (any order, distinct) with `vnodes` vnodes each,
    /// replicating min(`replication`, N) times.
    pub(crate) fn new(servers: &[ServerId], vnodes: usize, replication: usize) -> BTreeRing {
        assert!(replication <= MAX_REPLICATION, "raise MAX_REPLICATION");
        let mut servers = servers.to_vec();
        servers.sort();

        let mut ring = BTreeMap::new();
        for (index, id) in servers.iter().enumerate() {
            for i in 0..vnodes {
                let position = ring_position(format!("{id}-{i}"));
                ring.insert((position, index as u32, i as u32), index as u32);
            }
        }
        BTreeRing {
            vnodes: ring,
            replication: replication.min(servers.len()),
            servers,
        }
    }

    /// Server ids, sorted; a [`Preference`] holds indices into this.
    pub(crate) fn servers(&self) -> &[ServerId] {
        &self.servers
    }

    /// The preference list of a key at `position`: a range query for the
    /// first vnode strictly after it, then a clockwise walk (wrapping once)
    /// until enough distinct servers are found.
    #[inline]
    pub(crate) fn preference(&self, position: u32) -> Preference {
        let after = (
            Bound::Excluded((position, u32::MAX, u32::MAX)),
            Bound::Unbounded,
        );
        let mut list = Preference {
            len: 0,
            servers: [0; MAX_REPLICATION],
        };
        for &server in self
            .vnodes
            .range(after)
            .chain(self.vnodes.iter())
            .map(|(_, s)| s)
        {
            if !list.contains(server) {
                list.servers[list.len] = server;
                list.len += 1;
                if list.len == self.replication {
                    break;
                }
            }
        }
        list
    }

    /// The preference list of `key` as ids, the shape `Cluster::replicas`
    /// returns: one MD5, one walk, one `Vec`.
    #[inline]
    pub(crate) fn replicas(&self, key: &[u8]) -> Vec<ServerId> {
        let list = self.preference(ring_position(key));
        list.as_slice()
            .iter()
            .map(|&index| self.servers[index as usize].clone())
            .collect()
    }
}
