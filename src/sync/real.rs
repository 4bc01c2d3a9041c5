//! The primitives of a normal build: thin wrappers with no cost of their own.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
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

/// An ordered concurrent set of `T`: [`crossbeam_skiplist::SkipSet`].
pub(crate) struct OrderedSet<T>(crossbeam_skiplist::SkipSet<T>);

/// A handle on one element of an [`OrderedSet`]; it stays readable after the
/// element is removed.
pub(crate) struct SetEntry<'a, T>(crossbeam_skiplist::set::Entry<'a, T>);

impl<T: Ord + Send + 'static> OrderedSet<T> {
    pub(crate) fn new() -> Self {
        Self(crossbeam_skiplist::SkipSet::new())
    }

    /// The element equal to `probe`.
    #[inline]
    pub(crate) fn get(&self, probe: &T) -> Option<SetEntry<'_, T>> {
        self.0.get(probe).map(SetEntry)
    }

    /// The element equal to `value`, inserting `value` first if there is none.
    pub(crate) fn get_or_insert(&self, value: T) -> SetEntry<'_, T> {
        SetEntry(self.0.get_or_insert(value))
    }

    /// Elements with `start <= element < end` (`None`: no upper bound), in
    /// order. Not a snapshot: elements inserted or removed meanwhile may or
    /// may not be seen.
    ///
    /// Walks with `lower_bound` and `Entry::next` rather than `SkipSet::range`:
    /// in crossbeam-skiplist 0.1.3 the `Range` iterator keeps a reference on
    /// the nodes it passes, so a node scanned by a migration and removed
    /// afterwards was never freed (crossbeam issue 1178, fixed upstream but
    /// not released). Entry handles release theirs when dropped.
    pub(crate) fn range(
        &self,
        start: &T,
        end: Option<T>,
    ) -> impl Iterator<Item = SetEntry<'_, T>> + '_ {
        walk(self.0.lower_bound(Bound::Included(start)), end)
    }

    /// Every element, in order; see [`OrderedSet::range`].
    pub(crate) fn iter(&self) -> impl Iterator<Item = SetEntry<'_, T>> + '_ {
        walk(self.0.front(), None)
    }

    /// Number of elements; approximate while inserts and removals race it.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Steps from `first` with `Entry::next` until an element at or past `end`.
fn walk<'a, T: Ord + Send + 'static>(
    first: Option<crossbeam_skiplist::set::Entry<'a, T>>,
    end: Option<T>,
) -> impl Iterator<Item = SetEntry<'a, T>> + 'a {
    let mut next = first;
    std::iter::from_fn(move || {
        let entry = next.take()?;
        if end.as_ref().is_some_and(|end| entry.value() >= end) {
            return None;
        }
        next = entry.next();
        Some(SetEntry(entry))
    })
}

impl<T: Ord + Send + 'static> SetEntry<'_, T> {
    #[inline]
    pub(crate) fn value(&self) -> &T {
        self.0.value()
    }

    /// Unlinks the element. Returns true if this call removed it.
    pub(crate) fn remove(&self) -> bool {
        self.0.remove()
    }
}

/// A concurrent hash set of `T`, each found by the bytes it borrows as:
/// [`papaya::HashMap`] (with unit values, for its conditional operations).
/// Lock-free for lookups and for inserts and removals.
pub(crate) struct PointIndex<T, S>(papaya::HashMap<T, (), S>);

impl<T: Hash + Eq + Borrow<[u8]> + Send + Sync, S: BuildHasher> PointIndex<T, S> {
    pub(crate) fn with_hasher(hashing: S) -> Self {
        Self(papaya::HashMap::with_hasher(hashing))
    }

    /// Runs `f` on the element under `key`, if any. The element may be removed
    /// concurrently while `f` runs; it stays valid until `f` returns.
    #[inline]
    pub(crate) fn with<R>(&self, key: &[u8], f: impl FnOnce(&T) -> R) -> Option<R> {
        let guard = self.0.guard();
        let (element, ()) = self.0.get_key_value(key, &guard)?;
        Some(f(element))
    }

    /// Inserts `value` if no element has its key. Returns whether it did.
    #[inline]
    pub(crate) fn try_insert(&self, value: T) -> bool {
        let guard = self.0.guard();
        self.0.try_insert(value, (), &guard).is_ok()
    }

    /// Removes the element under `key` if `pred` holds for it, in one atomic
    /// step. Returns whether it did.
    pub(crate) fn remove_if(&self, key: &[u8], mut pred: impl FnMut(&T) -> bool) -> bool {
        let guard = self.0.guard();
        matches!(
            self.0.remove_if(key, |element, ()| pred(element), &guard),
            Ok(Some(_))
        )
    }
}
