//! Stand-ins for a `--cfg loom` build, built on loom's primitives.
//!
//! They keep the interfaces of [`super::real`] and no stronger guarantees than
//! the structures they replace; the module docs of [`super`] list what each
//! one models.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::ops::{Bound, Deref};

pub(crate) use loom::sync::atomic::{fence, AtomicU64, Ordering};
pub(crate) use loom::sync::{Arc, Mutex};

/// Every wait loop yields to loom, so the model checker can schedule the
/// thread being waited for.
pub(crate) fn backoff(_spins: &mut u32) {
    loom::thread::yield_now();
}

/// Stand-in for `ArcSwap`: a counted pointer behind a loom mutex.
pub(crate) struct ArcCell<T>(Mutex<Arc<T>>);

/// Stand-in for arc-swap's guard: a counted reference, so a swapped-out
/// value's `strong_count` includes every reader that still holds it.
pub(crate) struct ArcGuard<T>(Arc<T>);

impl<T> Deref for ArcGuard<T> {
    type Target = Arc<T>;

    fn deref(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T> ArcCell<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Self(Mutex::new(value))
    }

    pub(crate) fn load(&self) -> ArcGuard<T> {
        ArcGuard(Arc::clone(&self.0.lock().unwrap()))
    }

    pub(crate) fn swap(&self, new: Arc<T>) -> Arc<T> {
        std::mem::replace(&mut *self.0.lock().unwrap(), new)
    }

    pub(crate) fn compare_and_swap(&self, current: &Arc<T>, new: Arc<T>) -> bool {
        let mut slot = self.0.lock().unwrap();
        if Arc::ptr_eq(&slot, current) {
            *slot = new;
            true
        } else {
            false
        }
    }
}

struct Node<T> {
    value: T,
}

/// Stand-in for `SkipSet`: a `BTreeMap` behind a loom mutex, taken once per
/// step so other threads interleave between the steps of a scan.
pub(crate) struct OrderedSet<T>(Mutex<Nodes<T>>);

type Nodes<T> = BTreeMap<T, Arc<Node<T>>>;

/// A handle on one element; it stays readable after the element is removed.
pub(crate) struct SetEntry<'a, T> {
    set: &'a OrderedSet<T>,
    node: Arc<Node<T>>,
}

impl<T: Ord + Clone> OrderedSet<T> {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(BTreeMap::new()))
    }

    fn entry(&self, node: Arc<Node<T>>) -> SetEntry<'_, T> {
        SetEntry { set: self, node }
    }

    pub(crate) fn get(&self, probe: &T) -> Option<SetEntry<'_, T>> {
        let node = self.0.lock().unwrap().get(probe).cloned();
        node.map(|node| self.entry(node))
    }

    /// Inserts `value` unless an element equal to it is there; either way,
    /// returns the element now in the set.
    pub(crate) fn get_or_insert(&self, value: T) -> SetEntry<'_, T> {
        let mut set = self.0.lock().unwrap();
        let node = match set.get(&value) {
            Some(existing) => Arc::clone(existing),
            None => {
                let node = Arc::new(Node {
                    value: value.clone(),
                });
                set.insert(value, Arc::clone(&node));
                node
            }
        };
        drop(set);
        self.entry(node)
    }

    /// One element per step, the mutex released in between: not a snapshot.
    pub(crate) fn range(
        &self,
        start: &T,
        end: Option<T>,
    ) -> impl Iterator<Item = SetEntry<'_, T>> + '_ {
        self.walk(Bound::Included(start.clone()), end)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = SetEntry<'_, T>> + '_ {
        self.walk(Bound::Unbounded, None)
    }

    /// Elements from `first` on and before `end`, one per step.
    fn walk(&self, first: Bound<T>, end: Option<T>) -> impl Iterator<Item = SetEntry<'_, T>> + '_ {
        let mut lower = first;
        std::iter::from_fn(move || {
            let set = self.0.lock().unwrap();
            let upper = end.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
            let (element, node) = set.range::<T, _>((lower.as_ref(), upper)).next()?;
            lower = Bound::Excluded(element.clone());
            let node = Arc::clone(node);
            drop(set);
            Some(self.entry(node))
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl<T: Ord> SetEntry<'_, T> {
    pub(crate) fn value(&self) -> &T {
        &self.node.value
    }

    pub(crate) fn remove(&self) -> bool {
        let mut set = self.set.0.lock().unwrap();
        let linked = set
            .get(&self.node.value)
            .is_some_and(|node| Arc::ptr_eq(node, &self.node));
        if linked {
            set.remove(&self.node.value);
        }
        linked
    }
}

/// Stand-in for the papaya hash index: a `HashMap` behind a loom mutex, one
/// step per operation, each operation linearizable as papaya's are.
pub(crate) struct PointIndex<T, S>(Mutex<HashMap<Box<[u8]>, T, S>>);

impl<T: Clone + Borrow<[u8]>, S: BuildHasher> PointIndex<T, S> {
    pub(crate) fn with_hasher(hashing: S) -> Self {
        Self(Mutex::new(HashMap::with_hasher(hashing)))
    }

    /// Runs `f` on a clone of the element under `key`, after releasing the
    /// mutex: other threads may remove the element while `f` runs, as with
    /// papaya.
    pub(crate) fn with<R>(&self, key: &[u8], f: impl FnOnce(&T) -> R) -> Option<R> {
        let element = self.0.lock().unwrap().get(key).cloned()?;
        Some(f(&element))
    }

    pub(crate) fn try_insert(&self, value: T) -> bool {
        let mut index = self.0.lock().unwrap();
        let key: &[u8] = value.borrow();
        if index.contains_key(key) {
            return false;
        }
        index.insert(Box::from(key), value);
        true
    }

    pub(crate) fn remove_if(&self, key: &[u8], mut pred: impl FnMut(&T) -> bool) -> bool {
        let mut index = self.0.lock().unwrap();
        if index.get(key).is_some_and(&mut pred) {
            index.remove(key);
            true
        } else {
            false
        }
    }
}
