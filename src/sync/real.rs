//! The primitives of a normal build: thin wrappers with no cost of their own.

use std::ops::Bound;

pub(crate) use std::sync::atomic::{fence, AtomicU64, Ordering};
pub(crate) use std::sync::{Arc, Mutex};

/// Waits a little before the caller checks its condition again: a yield for
/// the first rounds, then short sleeps so a long wait does not burn a core.
pub(crate) fn backoff(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    if *spins < 64 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

/// An atomically replaceable `Arc<T>`: [`arc_swap::ArcSwap`].
pub(crate) struct ArcCell<T>(arc_swap::ArcSwap<T>);

/// What [`ArcCell::load`] hands out: a cheap, short-lived reference.
pub(crate) type ArcGuard<T> = arc_swap::Guard<Arc<T>>;

impl<T> ArcCell<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Self(arc_swap::ArcSwap::new(value))
    }

    /// The current value. Keep the guard for one operation only.
    #[inline]
    pub(crate) fn load(&self) -> ArcGuard<T> {
        self.0.load()
    }

    /// Publishes `new` and returns the previous value. When this returns,
    /// every reader still using the previous value is counted in its
    /// `Arc::strong_count` (see [`super::wait_until_unique`]).
    pub(crate) fn swap(&self, new: Arc<T>) -> Arc<T> {
        self.0.swap(new)
    }

    /// Replaces the value with `new` if it is still `current` (compared by
    /// pointer). Returns whether it did.
    #[inline]
    pub(crate) fn compare_and_swap(&self, current: &Arc<T>, new: Arc<T>) -> bool {
        let previous = self.0.compare_and_swap(current, new);
        Arc::ptr_eq(&previous, current)
    }
}

/// An ordered concurrent map from encoded keys to `V`:
/// [`crossbeam_skiplist::SkipMap`].
pub(crate) struct OrderedMap<V>(crossbeam_skiplist::SkipMap<Box<[u8]>, V>);

/// A handle on one entry of an [`OrderedMap`]; it stays readable after the
/// entry is removed.
pub(crate) struct MapEntry<'a, V>(crossbeam_skiplist::map::Entry<'a, Box<[u8]>, V>);

impl<V: Send + 'static> OrderedMap<V> {
    pub(crate) fn new() -> Self {
        Self(crossbeam_skiplist::SkipMap::new())
    }

    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Option<MapEntry<'_, V>> {
        self.0.get(key).map(MapEntry)
    }

    /// The entry for `key`, inserting `make()` first if there is none.
    /// `make` may run even when another thread's entry wins the race.
    pub(crate) fn get_or_insert_with(
        &self,
        key: Box<[u8]>,
        make: impl FnOnce() -> V,
    ) -> MapEntry<'_, V> {
        MapEntry(self.0.get_or_insert_with(key, make))
    }

    /// Entries with `start <= key < end`, in key order. Not a snapshot:
    /// entries inserted or removed meanwhile may or may not be seen.
    ///
    /// Walks with `lower_bound` and `Entry::next` rather than `SkipMap::range`:
    /// in crossbeam-skiplist 0.1.3 the `Range` iterator keeps a reference on
    /// the nodes it passes, so a node scanned by a migration and removed
    /// afterwards was never freed (crossbeam issue 1178, fixed upstream but
    /// not released). Entry handles release theirs when dropped.
    pub(crate) fn range(
        &self,
        start: &[u8],
        end: Option<Box<[u8]>>,
    ) -> impl Iterator<Item = MapEntry<'_, V>> + '_ {
        let mut next = self.0.lower_bound(Bound::Included(start));
        std::iter::from_fn(move || {
            let entry = next.take()?;
            if end.as_deref().is_some_and(|end| **entry.key() >= *end) {
                return None;
            }
            next = entry.next();
            Some(MapEntry(entry))
        })
    }

    /// Every entry, in key order; see [`OrderedMap::range`].
    pub(crate) fn iter(&self) -> impl Iterator<Item = MapEntry<'_, V>> + '_ {
        self.range(&[], None)
    }

    /// Number of entries; approximate while inserts and removals race it.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl<V: Send + 'static> MapEntry<'_, V> {
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        self.0.key()
    }

    #[inline]
    pub(crate) fn value(&self) -> &V {
        self.0.value()
    }

    /// Unlinks the entry. Returns true if this call removed it.
    pub(crate) fn remove(&self) -> bool {
        self.0.remove()
    }
}
