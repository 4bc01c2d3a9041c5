//! Baseline (b): the textbook store with one `DashMap` per server.

use dashmap::DashMap;
use ringkv::Versioned;

use super::textbook::{merge_into, Entry, Merge, ReplicaMap, Textbook};

/// The textbook store, each server a `DashMap` (default shards and hasher).
pub(crate) type Sharded = Textbook<ShardedMap>;

/// One server's entries in a sharded concurrent map.
#[derive(Default)]
pub(crate) struct ShardedMap(DashMap<Box<[u8]>, Entry>);

impl ReplicaMap for ShardedMap {
    #[inline]
    fn read_newest(&self, key: &[u8], newest: &mut Option<Versioned>) {
        if let Some(entry) = self.0.get(key) {
            // Counter timestamps are unique: equal means the same write.
            if newest
                .as_ref()
                .is_none_or(|best| entry.version.timestamp > best.timestamp)
            {
                *newest = Some(entry.version.clone());
            }
        }
    }

    #[inline]
    fn merge(&self, key: &[u8], position: u32, version: &Versioned) -> Merge {
        if let Some(mut entry) = self.0.get_mut(key) {
            return merge_into(&mut entry, version);
        }
        // Another writer may insert the key between the two calls; the
        // entry API settles that race under the shard's lock.
        let mut inserted = false;
        let mut entry = self.0.entry(Box::from(key)).or_insert_with(|| {
            inserted = true;
            Entry {
                position,
                version: version.clone(),
            }
        });
        if inserted {
            Merge::Inserted
        } else {
            merge_into(&mut entry, version)
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn retain(&self, mut keep: impl FnMut(&[u8], &Entry) -> bool) {
        self.0.retain(|key, entry| keep(key, entry));
    }
}
