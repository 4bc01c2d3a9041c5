//! Stand-ins for a `--cfg loom` build, built on loom's primitives.
//!
//! They keep the interfaces of [`super::real`] and no stronger guarantees than
//! the structures they replace; the module docs of [`super`] list what each
//! one models.

use std::collections::BTreeMap;
use std::ops::{Bound, Deref};

pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
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

struct Node<V> {
    key: Box<[u8]>,
    value: V,
    removed: AtomicBool,
}

/// Stand-in for `SkipMap`: a `BTreeMap` behind a loom mutex, taken once per
/// step so other threads interleave between the steps of a scan.
pub(crate) struct OrderedMap<V>(Mutex<Nodes<V>>);

type Nodes<V> = BTreeMap<Box<[u8]>, Arc<Node<V>>>;

/// A handle on one entry; it stays readable after the entry is removed.
pub(crate) struct MapEntry<'a, V> {
    map: &'a OrderedMap<V>,
    node: Arc<Node<V>>,
}

impl<V> OrderedMap<V> {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(BTreeMap::new()))
    }

    fn entry(&self, node: Arc<Node<V>>) -> MapEntry<'_, V> {
        MapEntry { map: self, node }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<MapEntry<'_, V>> {
        let node = self.0.lock().unwrap().get(key).cloned();
        node.map(|node| self.entry(node))
    }

    /// Builds the value before looking, and throws it away if the key is
    /// already there, as the skiplist may.
    pub(crate) fn get_or_insert_with(
        &self,
        key: Box<[u8]>,
        make: impl FnOnce() -> V,
    ) -> MapEntry<'_, V> {
        let built = make();
        let mut map = self.0.lock().unwrap();
        let node = match map.get(&key) {
            Some(existing) => Arc::clone(existing),
            None => {
                let node = Arc::new(Node {
                    key: key.clone(),
                    value: built,
                    removed: AtomicBool::new(false),
                });
                map.insert(key, Arc::clone(&node));
                node
            }
        };
        drop(map);
        self.entry(node)
    }

    /// One entry per step, the mutex released in between: not a snapshot.
    pub(crate) fn range(
        &self,
        start: &[u8],
        end: Option<Box<[u8]>>,
    ) -> impl Iterator<Item = MapEntry<'_, V>> + '_ {
        let start: Box<[u8]> = Box::from(start);
        let mut after: Option<Box<[u8]>> = None;
        std::iter::from_fn(move || {
            let map = self.0.lock().unwrap();
            let lower = match &after {
                Some(key) => Bound::Excluded(&**key),
                None => Bound::Included(&*start),
            };
            let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let (key, node) = map.range::<[u8], _>((lower, upper)).next()?;
            after = Some(key.clone());
            let node = Arc::clone(node);
            drop(map);
            Some(self.entry(node))
        })
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = MapEntry<'_, V>> + '_ {
        self.range(&[], None)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl<V> MapEntry<'_, V> {
    pub(crate) fn key(&self) -> &[u8] {
        &self.node.key
    }

    pub(crate) fn value(&self) -> &V {
        &self.node.value
    }

    pub(crate) fn remove(&self) -> bool {
        let mut map = self.map.0.lock().unwrap();
        let linked = map
            .get(&self.node.key)
            .is_some_and(|node| Arc::ptr_eq(node, &self.node));
        if linked {
            map.remove(&self.node.key);
            self.node.removed.store(true, Ordering::Release);
        }
        linked
    }
}
