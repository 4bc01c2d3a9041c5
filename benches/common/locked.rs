//! Baseline (a): the textbook store with one `RwLock<HashMap>` per server.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use ringkv::Versioned;

use super::textbook::{merge_into, Entry, Merge, ReplicaMap, Textbook};

/// The textbook store, each server a `RwLock<HashMap>` (std's default hasher).
pub(crate) type Locked = Textbook<LockedMap>;

/// One server's entries behind one reader-writer lock.
#[derive(Default)]
pub(crate) struct LockedMap(RwLock<HashMap<Box<[u8]>, Entry>>);

impl ReplicaMap for LockedMap {
    #[inline]
    fn read_newest(&self, key: &[u8], newest: &mut Option<Versioned>) {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get(key) {
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
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get_mut(key) {
            return merge_into(entry, version);
        }
        map.insert(
            Box::from(key),
            Entry {
                position,
                version: version.clone(),
            },
        );
        Merge::Inserted
    }

    fn len(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn retain(&self, mut keep: impl FnMut(&[u8], &Entry) -> bool) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, entry| keep(key, entry));
    }
}
