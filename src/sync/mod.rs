//! The one place ringkv takes its synchronization primitives from.
//!
//! Every atomic, fence, shared pointer, pointer cell and concurrent index the
//! protocol touches is imported from here, never from `std` directly. A normal
//! build re-exports the real thing at no cost: `std`'s atomics,
//! [`arc_swap::ArcSwap`] for pointer cells, [`crossbeam_skiplist::SkipSet`]
//! for each server's ordered index and [`papaya::HashMap`] for its hash
//! index. A build with `RUSTFLAGS="--cfg loom"` swaps in stand-ins built on
//! [loom](https://docs.rs/loom) primitives, so the protocol code in
//! [`crate::cluster`], [`crate::store`] and [`crate::migration`] is the same
//! code in both builds and loom explores its interleavings.
//!
//! # What the loom stand-ins model
//!
//! A stand-in that is stronger than the structure it replaces would prove the
//! protocol against a map ringkv does not use, so each one keeps the weak
//! spots the protocol has to live with:
//!
//! * [`ArcCell`] (for `ArcSwap`): `load`, `swap` and `compare_and_swap` are
//!   linearizable, as arc-swap's are. `load` hands out a counted reference, so
//!   [`Arc::strong_count`] of a swapped-out value counts every reader still
//!   holding it, which is what arc-swap guarantees once `swap` has returned.
//!   loom's `strong_count` is stronger than `std`'s (it is not a `Relaxed`
//!   load), so the `Acquire` fence in [`wait_until_unique`] is argued in its
//!   comment rather than checked by loom.
//! * [`OrderedSet`] (for `SkipSet`):
//!   - range iteration is not a snapshot: it takes one element at a time, and
//!     other threads run between elements, so an element inserted or removed
//!     during a scan may or may not be seen;
//!   - an entry handle stays readable after its element was removed, and
//!     [`SetEntry::remove`] reports whether this call unlinked it;
//!   - `get_or_insert` returns the element already there, if any, and drops
//!     the one it was given.
//! * [`PointIndex`] (for papaya's `HashMap`): each operation is one
//!   linearizable step, as papaya's are; `with` runs its closure after the
//!   step, so the element may be removed by another thread while the
//!   closure uses it, as with papaya, whose guard only keeps it allocated.
//!
//! Not modelled: the skiplist's "replace gap" (`insert` of an existing key
//! unlinks the old node before linking the new one). ringkv never replaces
//! an element: it keeps one slot per key and swaps the version inside it, so
//! the operation with the gap is never called. Also not modelled: two racing
//! removals of one key both returning `Some` (crossbeam-skiplist 0.1.3).
//! ringkv removes an element through its own entry handle and counts a
//! removal by the compare-and-swap that retired the slot, not by what the
//! skiplist reports.
//!
//! The membership [`Mutex`] is `std`'s (loom's under loom); it is never taken
//! on the data path.

#[cfg(not(loom))]
mod real;
#[cfg(not(loom))]
pub(crate) use real::*;

#[cfg(loom)]
mod model;
#[cfg(loom)]
pub(crate) use model::*;

/// Spins until `arc` is the only strong reference to its value: the end of
/// an RCU-style grace period.
///
/// Called right after `arc` was swapped out of an [`ArcCell`]. At that point
/// every reader that loaded it holds a counted reference (arc-swap converts
/// outstanding guards into references before `swap` returns), and no new
/// reader can load it. So once the count reaches one, every operation that
/// used the old snapshot has finished.
///
/// Readers release their reference with a `Release` decrement (`Arc`'s drop);
/// `strong_count` may read the count with a `Relaxed` load, so the `Acquire`
/// fence after it is what makes every write those readers made before
/// dropping their reference happen-before whatever the caller does next.
///
/// Waits are short (one data-path operation), so it yields first and sleeps
/// only if a reader was descheduled while holding its snapshot.
pub(crate) fn wait_until_unique<T>(arc: &Arc<T>) {
    let mut spins = 0u32;
    while Arc::strong_count(arc) > 1 {
        backoff(&mut spins);
    }
    fence(Ordering::Acquire);
}
