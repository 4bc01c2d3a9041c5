//! The one place ringkv takes its synchronization primitives from.
//!
//! Every atomic, fence, shared pointer, pointer cell and ordered map the
//! protocol touches is imported from here, never from `std` directly. A normal
//! build re-exports the real thing at no cost: `std`'s atomics,
//! [`arc_swap::ArcSwap`] for pointer cells and [`crossbeam_skiplist::SkipMap`]
//! for each server's ordered index. A build with `RUSTFLAGS="--cfg loom"`
//! swaps in stand-ins built on [loom](https://docs.rs/loom) primitives, so the
//! protocol code in [`crate::cluster`] and [`crate::migration`] is the same
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
//! * [`OrderedMap`] (for `SkipMap`):
//!   - `get_or_insert_with` always builds the value and may throw it away
//!     when the key is already present, as the skiplist may;
//!   - range iteration is not a snapshot: it takes one entry at a time, and
//!     other threads run between entries, so an entry inserted or removed
//!     during a scan may or may not be seen;
//!   - an entry handle stays readable after its entry was removed, and
//!     [`MapEntry::remove`] reports whether this call unlinked it.
//!
//!   Not modelled: the skiplist's "replace gap" (`insert` of an existing key
//!   unlinks the old node before linking the new one). ringkv never replaces
//!   a node: it keeps one node per key and swaps the version inside it, so the
//!   operation with the gap is never called. Also not modelled: two racing
//!   removals of one key both returning `Some` (crossbeam-skiplist 0.1.3).
//!   ringkv's removals are serialized by the membership lock, and the counts
//!   it reports come from [`MapEntry::remove`] on one handle.
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
